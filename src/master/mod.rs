//! The master process: opens the listeners, starts and supervises the workers, handles
//! signals. It never initialises Python.
//!
//! `run` serves; `check` starts one worker that loads the application and exits (`--check`).
//! Exit statuses: `EXIT_OK` after a clean stop, `EXIT_FAILURE` when a listener cannot be
//! opened, a file the application needs is out of its user's reach, or a worker fails
//! before it is ready, `EXIT_USAGE` for configuration errors, including an application that
//! would run as root without `allow_root` and a user this master may not switch to.
//! `--check` exits `EXIT_FAILURE` for every problem.

pub mod backoff;
pub mod listeners;
pub mod notify;
pub mod privileges;
pub mod signals;
pub mod spawn;
pub mod supervise;

use std::process::ExitCode;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};

use crate::config::{Settings, WorkerSpec};
use listeners::{ActivationEnv, SocketPerms};
use signals::Signals;
use spawn::Image;
use supervise::{describe, Supervisor};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Serves `settings` until SIGTERM or SIGINT. With no listener configured, uses one passed
/// in on fd 0 or by systemd socket activation.
pub fn run(mut settings: Settings) -> ExitCode {
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
    // Before anything is bound: an application that may not run as configured.
    let python = spawn::python(&settings).ok();
    let found = privileges::check(&settings, python.as_deref());
    for e in found.refused.iter().chain(&found.files) {
        tracing::error!("{e}");
    }
    if !found.refused.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    if !found.files.is_empty() {
        return ExitCode::from(EXIT_FAILURE);
    }
    // Listeners first: inherited descriptor numbers must be checked before the master
    // opens descriptors of its own.
    let listeners = match listeners::open_all(&settings.listen, &SocketPerms::of(&settings)) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let image = match Image::find(&settings) {
        Ok(image) => image,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    tracing::info!("workers run as {}", privileges::describe(&settings));
    ExitCode::from(Supervisor::new(settings, image, listeners, signals).run())
}

/// `--check`: checks that every listener could be opened (`listeners::probe`), then starts
/// one worker that loads the application without serving, and reports every problem found.
pub fn check(settings: Settings) -> ExitCode {
    let mut problems: Vec<String> = settings
        .listen
        .iter()
        .filter_map(|l| listeners::probe(l).err())
        .collect();
    let found = privileges::check(&settings, spawn::python(&settings).ok().as_deref());
    let blocked = !found.is_empty();
    problems.extend(found.refused);
    problems.extend(found.files);
    match Image::find(&settings) {
        // A worker is not started when it would run as it may not.
        Ok(_) if blocked => {}
        Ok(image) => {
            if let Err(e) = check_app(&image, settings) {
                problems.push(e);
            }
        }
        Err(e) => problems.push(e),
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

/// Starts a worker that loads the application and exits; Err says how it failed (the
/// worker itself logs why).
fn check_app(image: &Image, settings: Settings) -> Result<(), String> {
    let spec = WorkerSpec {
        settings,
        listeners: Vec::new(),
        index: 0,
        ready_fd: None,
        board_fd: None,
        check_only: true,
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
