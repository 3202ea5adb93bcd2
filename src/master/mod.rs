//! The master process: opens the listeners, starts and supervises the workers, handles
//! signals. It never initialises Python.
//!
//! `run` serves; `check` starts, for each application, one worker that loads it and exits
//! (`--check`).
//! Exit statuses: `EXIT_OK` after a clean stop, `EXIT_FAILURE` when a listener cannot be
//! opened, a file an application needs is out of its user's reach, or a worker fails
//! before it is ready, `EXIT_USAGE` for configuration errors, including an application that
//! would run as root without `allow_root` and a user this master may not switch to.
//! `--check` exits `EXIT_FAILURE` for every problem.

pub mod backoff;
pub mod control;
pub mod listeners;
pub mod notify;
pub mod pool;
pub mod privileges;
pub mod recycle;
mod reload;
pub mod signals;
pub mod spawn;
pub mod status;
pub mod supervise;
pub mod usage;
pub mod watch;
pub mod worker;

use std::process::ExitCode;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};

use crate::config::resolve::Config;
use crate::config::{Settings, WorkerSpec};
use listeners::{ActivationEnv, SocketPerms};
use signals::Signals;
use spawn::Image;
use supervise::{describe, Supervisor};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Serves every application of `config` until SIGTERM or SIGINT. With one application and
/// no listener configured, uses one passed in on fd 0 or by systemd socket activation.
pub fn run(mut config: Config, load: supervise::Loader) -> ExitCode {
    if let [settings] = config.apps.as_mut_slice() {
        if settings.listen.is_empty() {
            match listeners::detect_inherited(&ActivationEnv::from_process()) {
                Ok(found) if !found.is_empty() => settings.listen = found,
                Ok(_) => {
                    tracing::error!("no listener: give --fastcgi or --scgi");
                    return ExitCode::from(EXIT_USAGE);
                }
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
    }
    // Before anything is bound: an application that may not run as configured.
    let several = config.apps.len() > 1;
    let mut found = privileges::Problems::default();
    for settings in &config.apps {
        let of = app_prefix(settings, several);
        let app = privileges::check(settings, spawn::python(settings).ok().as_deref());
        found
            .refused
            .extend(app.refused.into_iter().map(|e| format!("{of}{e}")));
        found
            .files
            .extend(app.files.into_iter().map(|e| format!("{of}{e}")));
    }
    for e in found.refused.iter().chain(&found.files) {
        tracing::error!("{e}");
    }
    if !found.refused.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    if !found.files.is_empty() {
        return ExitCode::from(EXIT_FAILURE);
    }
    // Listeners first, every application's: inherited descriptor numbers must be checked
    // before the master opens descriptors of its own.
    let mut opened = Vec::with_capacity(config.apps.len());
    for settings in &config.apps {
        match listeners::open_all(&settings.listen, &SocketPerms::of(settings)) {
            Ok(l) => opened.push(l),
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    }
    // What the master was started with beyond its listeners (a front end's or a shell's
    // descriptors) is not the applications' to have.
    close_on_exec_from(3);
    let mut apps = Vec::with_capacity(config.apps.len());
    for (settings, listeners) in config.apps.into_iter().zip(opened) {
        match Image::find(&settings) {
            Ok(image) => {
                let of = app_prefix(&settings, several);
                tracing::info!("{of}workers run as {}", privileges::describe(&settings));
                apps.push((settings, image, listeners));
            }
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    }
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let control = match &config.control_socket {
        Some(path) => match control::Control::bind(path) {
            Ok(c) => {
                tracing::info!("control socket on {}", c.path().display());
                Some(c)
            }
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        },
        None => None,
    };
    ExitCode::from(Supervisor::new(apps, signals, load, control).run())
}

/// Marks every descriptor from `first` on close-on-exec, so that workers inherit only what
/// `spawn` passes them on purpose. Listeners the master adopted are among them: `spawn`
/// clears the flag in each worker for those it passes.
fn close_on_exec_from(first: i32) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        tracing::warn!("cannot list /proc/self/fd: workers may inherit stray descriptors");
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD only sets the descriptor's close-on-exec flag, touching no memory;
        // a number that is not open (the one that listed /proc/self/fd, closed by now)
        // fails with EBADF, which changes nothing.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// `--check`: checks that every listener could be opened (`listeners::probe`), then starts
/// one worker that loads the application without serving, and reports every problem found.
pub fn check(config: Config) -> ExitCode {
    close_on_exec_from(3);
    let mut problems: Vec<String> = Vec::new();
    let several = config.apps.len() > 1;
    for settings in config.apps {
        let of = app_prefix(&settings, several);
        problems.extend(
            settings
                .listen
                .iter()
                .filter_map(|l| listeners::probe(l).err())
                .map(|e| format!("{of}{e}")),
        );
        let found = privileges::check(&settings, spawn::python(&settings).ok().as_deref());
        let blocked = !found.is_empty();
        problems.extend(
            found
                .refused
                .into_iter()
                .chain(found.files)
                .map(|e| format!("{of}{e}")),
        );
        match Image::find(&settings) {
            // A worker is not started when it would run as it may not.
            Ok(_) if blocked => {}
            Ok(image) => {
                if let Err(e) = check_app(&image, settings) {
                    problems.push(format!("{of}{e}"));
                }
            }
            Err(e) => problems.push(format!("{of}{e}")),
        }
    }
    if problems.is_empty() {
        println!("configuration OK");
        return ExitCode::from(EXIT_OK);
    }
    for p in &problems {
        eprintln!("wsgid: {p}");
    }
    let n = problems.len();
    eprintln!(
        "configuration check failed: {n} problem{}",
        if n == 1 { "" } else { "s" }
    );
    ExitCode::from(EXIT_FAILURE)
}

/// `app NAME: ` before a problem of one of several applications, else nothing.
fn app_prefix(settings: &Settings, several: bool) -> String {
    if several {
        format!("app {}: ", settings.name)
    } else {
        String::new()
    }
}

/// Starts a worker that loads the application and exits; Err says how it failed (the
/// worker itself logs why).
fn check_app(image: &Image, settings: Settings) -> Result<(), String> {
    let spec = WorkerSpec {
        settings,
        listeners: Vec::new(),
        index: 0,
        ready_fd: None,
        board: None,
        check_only: true,
        max_requests: None,
    };
    let spawned = spawn::spawn_worker(image, spec, false)
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    loop {
        match waitpid(spawned.pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                return Err(format!("the worker {}", describe(status, false)));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(format!("waitpid: {e}")),
        }
    }
}
