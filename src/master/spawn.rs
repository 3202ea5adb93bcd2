//! Starting one worker process: fork and exec this same binary (`/proc/self/exe`) with the
//! worker's `WorkerSpec` as JSON in `WSGID_WORKER_SPEC`, the listeners and the write end of
//! a ready pipe inherited at their current descriptor numbers.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::{pipe2, Pid};

use super::listeners::SOCKET_ACTIVATION_ENV;
use crate::config::{WorkerSpec, WORKER_SPEC_ENV};

/// The binary workers run: the one the master runs, even if it was replaced on disk since.
const SELF_EXE: &str = "/proc/self/exe";

/// What the parent of a worker needs from the service manager, not the worker.
const NOTIFY_ENV: &str = "NOTIFY_SOCKET";

/// A started worker.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    /// Read end of the ready pipe (non-blocking): one byte arrives when the worker is ready;
    /// end of file without it means the worker gave up. `None` when none was asked for.
    pub ready: Option<File>,
}

/// Starts a worker for `spec` (whose `ready_fd` is filled in here when `with_ready_pipe`).
///
/// The worker gets wsgid's environment plus `spec.settings.env`, less the socket-activation
/// and `NOTIFY_SOCKET` variables meant for the master; it starts in `settings.chdir` when set,
/// in its own process group (a terminal's Ctrl-C reaches the master, which forwards it
/// once), and receives SIGTERM if the master dies.
pub fn spawn_worker(mut spec: WorkerSpec, with_ready_pipe: bool) -> io::Result<Spawned> {
    let mut inherit: Vec<RawFd> = spec.listeners.iter().map(|l| l.fd).collect();
    let mut ready_pair: Option<(OwnedFd, OwnedFd)> = None;
    if with_ready_pipe {
        let (rd, wr) = pipe2(OFlag::O_CLOEXEC)?;
        spec.ready_fd = Some(wr.as_raw_fd());
        inherit.push(wr.as_raw_fd());
        ready_pair = Some((rd, wr));
    }
    let json = serde_json::to_string(&spec).map_err(io::Error::other)?;

    let mut cmd = Command::new(SELF_EXE);
    cmd.arg0(format!("wsgid: worker {}", spec.index))
        .envs(&spec.settings.env)
        .env(WORKER_SPEC_ENV, json)
        .env_remove(NOTIFY_ENV);
    for name in SOCKET_ACTIVATION_ENV {
        cmd.env_remove(name);
    }
    if let Some(dir) = &spec.settings.chdir {
        cmd.current_dir(dir);
    }
    let master = nix::unistd::getpid().as_raw();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe functions may be called. It calls fcntl, setpgid, prctl and getppid
    // (all async-signal-safe system calls) on values computed before the fork, and does not
    // allocate: `inherit` was built in the parent and is only read.
    //
    // The listeners and the ready pipe's write end keep their descriptor numbers: their
    // FD_CLOEXEC flag is cleared here, in the child only, so exec passes them on while every
    // other descriptor of the master (created close-on-exec) is closed.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &inherit {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::setpgid(0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent-death signal applies to the thread that forked; the master is
            // single-threaded. It is cleared if the worker later changes credentials.
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != master {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    };
    let child = cmd.spawn().map_err(|e| match &spec.settings.chdir {
        // std reports a failed chdir in the child as a bare OS error.
        Some(dir) if !dir.is_dir() => {
            io::Error::new(e.kind(), format!("cannot change to {}: {e}", dir.display()))
        }
        _ => e,
    })?;
    let pid = Pid::from_raw(i32::try_from(child.id()).map_err(io::Error::other)?);
    // The master keeps only the read end; the worker holds the only write end now, so end
    // of file means it closed it or exited.
    let ready = match ready_pair {
        Some((rd, wr)) => {
            drop(wr);
            fcntl(&rd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            Some(File::from(rd))
        }
        None => None,
    };
    Ok(Spawned { pid, ready })
}
