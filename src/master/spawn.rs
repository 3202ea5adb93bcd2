//! Starting one worker process: fork and exec the Python interpreter with a bootstrap that
//! loads wsgid's library (`libwsgid.so`) as an extension module and runs the worker in it,
//! with the worker's `WorkerSpec` as JSON in `WSGID_WORKER_SPEC`, and the listeners, the
//! library, the connection board and the write end of a ready pipe inherited at their
//! current descriptor numbers, and its privileges dropped (`privileges::child`) before the
//! exec.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::{pipe2, Pid};

use super::listeners::SOCKET_ACTIVATION_ENV;
use super::privileges::{self, accounts, Failed, Plan, Step};
use crate::config::{Settings, WorkerSpec, WORKER_SPEC_ENV};

/// What `python -c` runs in a worker. `sys.argv[1]` is the descriptor of wsgid's library.
/// SIGINT goes back to its default first, so that the worker's own handler (installed over
/// it) does not chain to Python's KeyboardInterrupt; the spec leaves `os.environ` (and the
/// process environment) before any application code runs; `sys.argv` becomes `[""]`, and
/// `sys.path` loses the "" that `-c` puts first (`python::prepare` puts the working
/// directory there).
const BOOTSTRAP: &str = "\
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
from importlib.machinery import ExtensionFileLoader
from importlib.util import module_from_spec, spec_from_loader
fd = int(sys.argv[1])
loader = ExtensionFileLoader('_wsgid_worker', f'/proc/self/fd/{fd}')
worker = module_from_spec(spec_from_loader('_wsgid_worker', loader))
loader.exec_module(worker)
os.close(fd)
spec = os.environ.pop('WSGID_WORKER_SPEC')
sys.argv[:] = ['']
if sys.path and sys.path[0] == '':
    del sys.path[0]
worker.run(spec)
";

/// The library's file name, as cargo builds it.
const LIBRARY: &str = "libwsgid.so";

/// What every worker is started from, found once when the master starts.
#[derive(Debug)]
pub struct Image {
    /// The interpreter's executable (`python::interpreter`), as seen inside the chroot.
    python: PathBuf,
    /// wsgid's library, kept open: workers started later load this file even if the one on
    /// disk was replaced since (an upgrade), so master and workers always match.
    library: File,
    /// The privilege drop each worker makes, prepared once.
    plan: Arc<Plan>,
}

/// The interpreter workers exec for `settings`, as seen inside the chroot if there is one.
pub fn python(settings: &Settings) -> Result<PathBuf, String> {
    let chroot = settings.privileges.chroot.as_deref();
    let Some(venv) = &settings.virtualenv else {
        return crate::python::interpreter(None);
    };
    // The virtualenv's version is read where the master sees it.
    crate::python::interpreter(Some(&privileges::outside(chroot, venv)))?;
    Ok(venv.join("bin").join("python"))
}

impl Image {
    /// The interpreter for `settings`, and the library that came with this binary: the
    /// first found of [`places`].
    pub fn find(settings: &Settings) -> Result<Image, String> {
        let chroot = settings.privileges.chroot.as_deref();
        let python = python(settings)?;
        if !privileges::outside(chroot, &python).is_file() {
            return Err(match chroot {
                Some(root) => format!(
                    "no Python interpreter at {} inside the chroot {}",
                    python.display(),
                    root.display()
                ),
                None => format!("no Python interpreter at {}", python.display()),
            });
        }
        let plan = Plan::prepare(&settings.privileges, settings.chdir.as_deref())?;
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find wsgid's own executable: {e}"))?;
        let places = places(exe.parent().unwrap_or(Path::new("/")));
        for path in &places {
            match File::open(path) {
                Ok(library) => {
                    let meta = library
                        .metadata()
                        .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
                    if let Some(e) = privileges::library_problem(settings, path, &meta) {
                        return Err(e);
                    }
                    return Ok(Image {
                        python,
                        library,
                        plan: Arc::new(plan),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
            }
        }
        let tried: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
        Err(format!(
            "wsgid's worker library is missing: none of {}",
            tried.join(", ")
        ))
    }
}

/// What a worker could not do, in words: `step` failed with `e`.
fn failed_step(settings: &Settings, step: Step, e: &io::Error) -> String {
    let p = &settings.privileges;
    let user = || {
        p.account
            .as_ref()
            .map_or_else(String::new, |a| accounts::describe_user(&a.user))
    };
    let shown = |path: &Option<PathBuf>| {
        path.as_deref()
            .unwrap_or(Path::new(""))
            .display()
            .to_string()
    };
    match step {
        Step::Chroot => format!("cannot chroot to {}: {e}", shown(&p.chroot)),
        Step::Chdir if p.account.is_some() => {
            format!(
                "cannot change to {} as user {}: {e}",
                shown(&settings.chdir),
                user()
            )
        }
        Step::Chdir => format!("cannot change to {}: {e}", shown(&settings.chdir)),
        Step::Bounding => format!("cannot drop the capability bounding set: {e}"),
        Step::Ambient => format!("cannot clear the ambient capabilities: {e}"),
        Step::Groups => format!(
            "cannot set the supplementary groups of user {}: {e}",
            user()
        ),
        Step::Gid => format!(
            "cannot switch to group {}: {e}",
            p.account
                .as_ref()
                .map_or_else(String::new, |a| accounts::describe_group(&a.group))
        ),
        Step::Uid => format!("cannot switch to user {}: {e}", user()),
        Step::Capabilities => format!("cannot drop the capabilities: {e}"),
        Step::NoNewPrivs => format!("cannot set no_new_privs: {e}"),
    }
}

/// Where the library may be, in order, for a binary in `dir`: `deps/` beside it, in
/// cargo's build directory (where cargo rebuilds the library whenever it rebuilds the
/// binary, also for `cargo run`, `cargo test` and `cargo build --bin wsgid`, which do not
/// copy it up); next to it (a plain `cargo build`, or a copy); `../lib/wsgid/` (an
/// installed layout).
fn places(dir: &Path) -> [PathBuf; 3] {
    [
        dir.join("deps").join(LIBRARY),
        dir.join(LIBRARY),
        dir.join("../lib/wsgid").join(LIBRARY),
    ]
}

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
/// and `NOTIFY_SOCKET` variables meant for the master (and with `HOME`, `USER` and `LOGNAME`
/// of the user it switches to, unless `env` sets them); it runs with the privileges
/// `privileges::child` leaves it, starts in `settings.chdir` when set, in its own process
/// group (a terminal's Ctrl-C reaches the master, which forwards it once), and receives
/// SIGTERM if the master dies.
pub fn spawn_worker(
    image: &Image,
    mut spec: WorkerSpec,
    with_ready_pipe: bool,
) -> io::Result<Spawned> {
    let library = image.library.as_raw_fd();
    let mut inherit: Vec<RawFd> = spec.listeners.iter().map(|l| l.fd).collect();
    inherit.push(library);
    inherit.extend(spec.board.map(|b| b.fd));
    let mut ready_pair: Option<(OwnedFd, OwnedFd)> = None;
    if with_ready_pipe {
        let (rd, wr) = pipe2(OFlag::O_CLOEXEC)?;
        spec.ready_fd = Some(wr.as_raw_fd());
        inherit.push(wr.as_raw_fd());
        ready_pair = Some((rd, wr));
    }
    let json = serde_json::to_string(&spec).map_err(io::Error::other)?;

    // argv[0] stays the interpreter's path: Python finds its prefix (and a virtualenv's
    // pyvenv.cfg) from it. The worker then retitles itself `wsgid: worker N`.
    let mut cmd = Command::new(&image.python);
    cmd.args(["-c", BOOTSTRAP, &library.to_string()]);
    if let Some(a) = &spec.settings.privileges.account {
        if a.user.id != nix::unistd::geteuid().as_raw() {
            cmd.env("USER", &a.user.name).env("LOGNAME", &a.user.name);
            if let Some(home) = &a.home {
                cmd.env("HOME", home);
            }
        }
    }
    cmd.envs(&spec.settings.env)
        .env(WORKER_SPEC_ENV, json)
        .env_remove(NOTIFY_ENV);
    for name in SOCKET_ACTIVATION_ENV {
        cmd.env_remove(name);
    }
    // Not `current_dir`: std enters it before the closure below runs, which would be outside
    // the chroot and as the master's user; the plan enters it after both.
    let master = nix::unistd::getpid().as_raw();
    // Which step of the privilege drop failed, if one did: one byte from the child.
    let (report_rd, report_wr) = pipe2(OFlag::O_CLOEXEC)?;
    let report = report_wr.as_raw_fd();
    let plan = Arc::clone(&image.plan);
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe functions may be called. It calls fcntl, setpgid, write, prctl and
    // getppid, and `Plan::apply` (chroot, chdir, prctl, setgroups, setresgid, setresuid,
    // umask, capset: all async-signal-safe system calls), on values computed before the
    // fork, and does not allocate: `inherit` and the plan were built in the parent and are
    // only read, and an error is made from a raw errno, which allocates nothing.
    //
    // The listeners, the library, the connection board and the ready pipe's write end keep
    // their descriptor numbers: their FD_CLOEXEC flag is cleared here, in the child only, so
    // exec passes them on while every other descriptor of the master (created close-on-exec)
    // is closed.
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
            if let Err(Failed { step, errno }) = plan.apply() {
                let byte = step as u8;
                // The parent reads it once spawn has failed; if it cannot be written, the
                // error is reported without its step.
                let _ = libc::write(report, (&byte as *const u8).cast(), 1);
                return Err(io::Error::from_raw_os_error(errno));
            }
            // The parent-death signal applies to the thread that forked; the master is
            // single-threaded. It is set after the credential change, which clears it.
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
    let spawned = cmd.spawn();
    drop(report_wr);
    let child = spawned.map_err(|e| {
        let mut byte = [0u8; 1];
        let step = match nix::unistd::read(&report_rd, &mut byte) {
            Ok(1) => Step::from_u8(byte[0]),
            _ => None,
        };
        match step {
            Some(step) => io::Error::new(e.kind(), failed_step(&spec.settings, step, &e)),
            None => e,
        }
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
