//! The supervision loop: starts each application's workers (`pool`), waits until each is
//! ready, keeps them serving (replacing the dead with backoff and the recycled gracefully),
//! and on SIGTERM or SIGINT forwards the signal, waits for the workers to finish their
//! requests, kills stragglers, and returns the exit status.
//!
//! The loop is single-threaded and sleeps in poll(2) on the signals' self-pipe and the
//! workers' report pipes, or until the next timer (a respawn, a recycling check, a
//! deadline); every wake-up re-reads signals, report pipes and exited children.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal as Sig;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use super::listeners::Listener;
use super::notify::notify;
use super::pool::{self, Exited, Pool};
use super::signals::{Signal, Signals};
use super::spawn::Image;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::config::{Settings, EXIT_APP_LOAD_FAILED};
use std::os::fd::AsFd;

/// Added to the graceful and interrupt timeouts before stragglers are killed: the workers
/// apply the timeout themselves, the master only backs them up.
pub const STOP_MARGIN: Duration = Duration::from_secs(1);

/// How long the master waits for killed workers to be reaped before it exits anyway.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

pub struct Supervisor {
    pools: Vec<Pool>,
    signals: Signals,
    phase: Phase,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for every worker to be ready for the first time.
    Starting,
    Running,
    /// Workers were signalled; once none is left the master exits with `exit`.
    Stopping {
        deadline: Instant,
        killed: bool,
        exit: u8,
    },
}

impl Phase {
    fn of_pools(self) -> pool::Phase {
        match self {
            Phase::Starting => pool::Phase::Starting,
            Phase::Running => pool::Phase::Running,
            Phase::Stopping { .. } => pool::Phase::Stopping,
        }
    }
}

impl Supervisor {
    /// A supervisor of one pool per application, each with its image and its opened
    /// listeners.
    pub fn new(apps: Vec<(Settings, Image, Vec<Listener>)>, signals: Signals) -> Supervisor {
        Supervisor {
            pools: apps
                .into_iter()
                .map(|(settings, image, listeners)| Pool::new(settings, image, listeners))
                .collect(),
            signals,
            phase: Phase::Starting,
        }
    }

    /// Runs until the workers are stopped; returns the exit status. The listeners (and their
    /// socket files) are closed when the supervisor is dropped.
    pub fn run(mut self) -> u8 {
        for p in &mut self.pools {
            let s = p.settings();
            let name = if s.name.is_empty() {
                String::new()
            } else {
                format!(" (app {})", s.name)
            };
            tracing::info!(
                "starting {} for {}{name}",
                plural(s.processes, "worker"),
                s.app
            );
        }
        if !self.pools.iter_mut().all(Pool::start_all) {
            self.begin_stop(Sig::SIGTERM, self.interrupt_timeout(), EXIT_FAILURE);
        }
        loop {
            for signal in self.signals.take() {
                self.on_signal(signal);
            }
            let phase = self.phase.of_pools();
            for p in &mut self.pools {
                p.read_reports(phase);
            }
            self.reap();
            if let Some(exit) = self.advance() {
                return exit;
            }
            self.wait();
        }
    }

    /// The longest of the pools' graceful timeouts.
    fn graceful_timeout(&self) -> Duration {
        let ms = self
            .pools
            .iter()
            .map(|p| p.settings().timeouts.graceful_ms)
            .max();
        Duration::from_millis(ms.unwrap_or(0))
    }

    /// The longest of the pools' interrupt timeouts.
    fn interrupt_timeout(&self) -> Duration {
        let ms = self
            .pools
            .iter()
            .map(|p| p.settings().timeouts.interrupt_ms)
            .max();
        Duration::from_millis(ms.unwrap_or(0))
    }

    fn live(&self) -> usize {
        self.pools.iter().map(Pool::live).sum()
    }

    fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::Term => {
                if matches!(self.phase, Phase::Stopping { .. }) {
                    tracing::info!("SIGTERM: already stopping");
                    return;
                }
                let t = self.graceful_timeout();
                tracing::info!(
                    "SIGTERM: stopping {} (graceful timeout {:.3} s)",
                    plural(self.live(), "worker"),
                    t.as_secs_f64()
                );
                self.begin_stop(Sig::SIGTERM, t, EXIT_OK);
            }
            Signal::Int => {
                let t = self.interrupt_timeout();
                tracing::info!(
                    "SIGINT: stopping {} (interrupt timeout {:.3} s)",
                    plural(self.live(), "worker"),
                    t.as_secs_f64()
                );
                let exit = match self.phase {
                    Phase::Stopping { exit, .. } => exit,
                    _ => EXIT_OK,
                };
                self.begin_stop(Sig::SIGINT, t, exit);
            }
            Signal::Hup => {
                tracing::warn!("SIGHUP: reloading is not supported yet; ignored");
            }
        }
    }

    /// Signals every worker and stops respawning. Called again while stopping, it signals
    /// again and only ever brings the deadline closer.
    fn begin_stop(&mut self, sig: Sig, timeout: Duration, exit: u8) {
        let deadline = Instant::now() + timeout + STOP_MARGIN;
        match &mut self.phase {
            Phase::Stopping {
                deadline: d,
                killed,
                ..
            } => {
                if *killed {
                    return;
                }
                *d = (*d).min(deadline);
            }
            phase => {
                *phase = Phase::Stopping {
                    deadline,
                    killed: false,
                    exit,
                };
                notify("STOPPING=1");
            }
        }
        for p in &mut self.pools {
            p.signal_all(sig);
        }
    }

    /// Collects every exited child.
    fn reap(&mut self) {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("waitpid: {e}");
                    return;
                }
                Ok(status) => status,
            };
            let Some(pid) = status.pid() else { continue };
            if !matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                continue;
            }
            let phase = self.phase.of_pools();
            let mut outcome = Exited::NotOurs;
            for p in &mut self.pools {
                outcome = p.on_exit(pid, status, phase);
                if outcome != Exited::NotOurs {
                    break;
                }
            }
            match outcome {
                Exited::NotOurs => {
                    tracing::debug!("reaped unknown child {pid}: {}", describe(status, false))
                }
                Exited::Handled => {}
                Exited::Fatal => {
                    self.begin_stop(Sig::SIGTERM, self.interrupt_timeout(), EXIT_FAILURE)
                }
            }
        }
    }

    /// Moves the phase on and lets the pools start due replacements; returns the exit
    /// status once done.
    fn advance(&mut self) -> Option<u8> {
        let now = Instant::now();
        match self.phase {
            Phase::Starting if self.pools.iter().all(Pool::all_ready_once) => {
                self.phase = Phase::Running;
                let listening: Vec<String> = self
                    .pools
                    .iter()
                    .flat_map(|p| p.listeners().iter().map(Listener::describe))
                    .collect();
                let workers = self.pools.iter().map(|p| p.settings().processes).sum();
                let status = format!(
                    "{}, listening on {}",
                    plural(workers, "worker"),
                    listening.join(", ")
                );
                tracing::info!("wsgid ready: {status}");
                notify(&format!("READY=1\nSTATUS={status}"));
            }
            Phase::Stopping {
                deadline,
                killed,
                exit,
            } => {
                if self.live() == 0 {
                    tracing::info!("stopped");
                    return Some(exit);
                }
                if now >= deadline {
                    if killed {
                        tracing::error!(
                            "{} did not exit after SIGKILL; exiting anyway",
                            plural(self.live(), "worker")
                        );
                        return Some(exit);
                    }
                    tracing::warn!(
                        "{} did not stop in time; killing",
                        plural(self.live(), "worker")
                    );
                    for p in &mut self.pools {
                        p.signal_all(Sig::SIGKILL);
                    }
                    self.phase = Phase::Stopping {
                        deadline: now + KILL_WAIT,
                        killed: true,
                        exit,
                    };
                }
                return None;
            }
            _ => {}
        }
        for p in &mut self.pools {
            p.advance(now);
        }
        None
    }

    /// Sleeps until a signal, a report, or the next timer.
    fn wait(&self) {
        let next = match self.phase {
            Phase::Stopping { deadline, .. } => Some(deadline),
            _ => self.pools.iter().filter_map(Pool::next_timer).min(),
        };
        let timeout = match next {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
        for p in &self.pools {
            fds.extend(
                p.report_pipes()
                    .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN)),
            );
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::error!("poll: {e}");
                // Do not spin if poll keeps failing.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// "exited with status 3 (the application failed to load)", "was killed by SIGSEGV"; for
/// a worker that had `loaded` its application, "exited with status 3 while serving" (the
/// application ended the process itself, with os._exit() or a crash).
pub fn describe(status: WaitStatus, loaded: bool) -> String {
    let serving = if loaded { " while serving" } else { "" };
    match status {
        WaitStatus::Exited(_, 0) => "exited cleanly (status 0)".into(),
        WaitStatus::Exited(_, code) if code == i32::from(EXIT_APP_LOAD_FAILED) && !loaded => {
            format!("exited with status {code} (the application failed to load)")
        }
        WaitStatus::Exited(_, code) => format!("exited with status {code}{serving}"),
        WaitStatus::Signaled(_, sig, core) => format!(
            "was killed by {}{}{serving}",
            sig.as_str(),
            if core { " (core dumped)" } else { "" }
        ),
        other => format!("changed state: {other:?}"),
    }
}

/// "1 worker", "2 workers".
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::Pid;

    #[test]
    fn exit_statuses_are_described() {
        let pid = Pid::from_raw(1);
        let exited = |code| WaitStatus::Exited(pid, code);
        assert_eq!(describe(exited(0), false), "exited cleanly (status 0)");
        assert_eq!(describe(exited(0), true), "exited cleanly (status 0)");
        assert_eq!(
            describe(exited(3), false),
            "exited with status 3 (the application failed to load)"
        );
        assert_eq!(describe(exited(1), false), "exited with status 1");
        assert_eq!(
            describe(WaitStatus::Signaled(pid, Sig::SIGSEGV, true), false),
            "was killed by SIGSEGV (core dumped)"
        );
        assert_eq!(
            describe(WaitStatus::Signaled(pid, Sig::SIGKILL, false), false),
            "was killed by SIGKILL"
        );
    }

    /// Once the application has loaded, status 3 (which the app can give itself, with
    /// os._exit(3)) is no failure to load.
    #[test]
    fn exits_after_loading_say_so() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            describe(WaitStatus::Exited(pid, 3), true),
            "exited with status 3 while serving"
        );
        assert_eq!(
            describe(WaitStatus::Exited(pid, 1), true),
            "exited with status 1 while serving"
        );
        assert_eq!(
            describe(WaitStatus::Signaled(pid, Sig::SIGSEGV, true), true),
            "was killed by SIGSEGV (core dumped) while serving"
        );
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "worker"), "1 worker");
        assert_eq!(plural(4, "worker"), "4 workers");
    }
}
