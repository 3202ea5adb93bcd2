//! The supervision loop: starts the workers, waits until each is ready, replaces those that
//! die (with backoff, vacating their slot on the connection board), and on SIGTERM or SIGINT
//! forwards the signal, waits for the workers to finish their requests, kills stragglers,
//! and returns the exit status.
//!
//! The loop is single-threaded and sleeps in poll(2) on the signals' self-pipe and the
//! workers' ready pipes; every wake-up re-reads signals, ready pipes and exited children.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal as Sig};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::backoff::Backoff;
use super::listeners::Listener;
use super::notify::notify;
use super::signals::{Signal, Signals};
use super::spawn::{spawn_worker, Image};
use super::{EXIT_FAILURE, EXIT_OK};
use crate::board::Board;
use crate::config::{InheritedListener, Settings, WorkerSpec, EXIT_APP_LOAD_FAILED, LOADED, READY};

/// Added to the graceful and interrupt timeouts before stragglers are killed: the workers
/// apply the timeout themselves, the master only backs them up.
pub const STOP_MARGIN: Duration = Duration::from_secs(1);

/// How long the master waits for killed workers to be reaped before it exits anyway.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

pub struct Supervisor {
    settings: Settings,
    /// What workers are started from.
    image: Image,
    listeners: Vec<Listener>,
    inherited: Vec<InheritedListener>,
    signals: Signals,
    slots: Vec<Slot>,
    phase: Phase,
    /// With more than one worker: the connection board and the descriptor workers map.
    board: Option<(Board, OwnedFd)>,
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

/// One of the `processes` worker positions.
struct Slot {
    index: usize,
    worker: Option<Worker>,
    backoff: Backoff,
    respawn_at: Option<Instant>,
    /// Some worker in this slot has been ready (startup needs each slot ready once).
    ever_ready: bool,
}

struct Worker {
    pid: Pid,
    started: Instant,
    /// Open until the ready byte or end of file arrives.
    ready_pipe: Option<File>,
    /// It loaded the application: a later exit is not a failure to load.
    loaded: bool,
    ready: bool,
}

impl Supervisor {
    pub fn new(
        settings: Settings,
        image: Image,
        listeners: Vec<Listener>,
        signals: Signals,
    ) -> Supervisor {
        let inherited = listeners.iter().map(Listener::inherited).collect();
        let slots = (0..settings.processes)
            .map(|index| Slot {
                index,
                worker: None,
                backoff: Backoff::default(),
                respawn_at: None,
                ever_ready: false,
            })
            .collect();
        let board = if settings.processes > 1 {
            Board::create(settings.processes)
                .map_err(|e| {
                    tracing::warn!("no connection board, workers will not spread connections: {e}")
                })
                .ok()
        } else {
            None
        };
        Supervisor {
            settings,
            image,
            listeners,
            inherited,
            signals,
            slots,
            phase: Phase::Starting,
            board,
        }
    }

    /// Runs until the workers are stopped; returns the exit status. The listeners (and their
    /// socket files) are closed when the supervisor is dropped.
    pub fn run(mut self) -> u8 {
        tracing::info!(
            "starting {} for {}",
            plural(self.settings.processes, "worker"),
            self.settings.app
        );
        for i in 0..self.slots.len() {
            if !self.start(i) {
                self.begin_stop(Sig::SIGTERM, self.interrupt_timeout(), EXIT_FAILURE);
                break;
            }
        }
        loop {
            for signal in self.signals.take() {
                self.on_signal(signal);
            }
            for i in 0..self.slots.len() {
                self.read_ready(i);
            }
            self.reap();
            if let Some(exit) = self.advance() {
                return exit;
            }
            self.wait();
        }
    }

    fn interrupt_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.timeouts.interrupt_ms)
    }

    /// Starts the worker of slot `i`; false (logged) if it could not be started.
    fn start(&mut self, i: usize) -> bool {
        let spec = WorkerSpec {
            settings: self.settings.clone(),
            listeners: self.inherited.clone(),
            index: i,
            ready_fd: None,
            board_fd: self.board.as_ref().map(|(_, fd)| fd.as_raw_fd()),
            check_only: false,
        };
        match spawn_worker(&self.image, spec, true) {
            Ok(spawned) => {
                tracing::info!("worker {i} (pid {}) started", spawned.pid);
                self.slots[i].worker = Some(Worker {
                    pid: spawned.pid,
                    started: Instant::now(),
                    ready_pipe: spawned.ready,
                    loaded: false,
                    ready: false,
                });
                true
            }
            Err(e) => {
                tracing::error!("cannot start worker {i}: {e}");
                false
            }
        }
    }

    fn on_signal(&mut self, signal: Signal) {
        let t = self.settings.timeouts;
        match signal {
            Signal::Term => {
                if matches!(self.phase, Phase::Stopping { .. }) {
                    tracing::info!("SIGTERM: already stopping");
                    return;
                }
                tracing::info!(
                    "SIGTERM: stopping {} (graceful timeout {:.3} s)",
                    plural(self.live(), "worker"),
                    t.graceful_ms as f64 / 1000.0
                );
                self.begin_stop(Sig::SIGTERM, Duration::from_millis(t.graceful_ms), EXIT_OK);
            }
            Signal::Int => {
                tracing::info!(
                    "SIGINT: stopping {} (interrupt timeout {:.3} s)",
                    plural(self.live(), "worker"),
                    t.interrupt_ms as f64 / 1000.0
                );
                let exit = match self.phase {
                    Phase::Stopping { exit, .. } => exit,
                    _ => EXIT_OK,
                };
                self.begin_stop(Sig::SIGINT, self.interrupt_timeout(), exit);
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
                for slot in &mut self.slots {
                    slot.respawn_at = None;
                }
            }
        }
        self.signal_all(sig);
    }

    fn signal_all(&self, sig: Sig) {
        for slot in &self.slots {
            if let Some(w) = &slot.worker {
                if let Err(e) = kill(w.pid, sig) {
                    if e != Errno::ESRCH {
                        tracing::warn!(
                            "cannot send {sig} to worker {} (pid {}): {e}",
                            slot.index,
                            w.pid
                        );
                    }
                }
            }
        }
    }

    fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.worker.is_some()).count()
    }

    /// Reads slot `i`'s ready pipe, if it is still open: `LOADED`, then `READY`.
    fn read_ready(&mut self, i: usize) {
        let starting = matches!(self.phase, Phase::Starting);
        let slot = &mut self.slots[i];
        let Some(w) = &mut slot.worker else { return };
        let Some(pipe) = &mut w.ready_pipe else {
            return;
        };
        let mut bytes = [0u8; 2];
        match pipe.read(&mut bytes) {
            Ok(n @ 1..) => {
                for &byte in &bytes[..n] {
                    match byte {
                        LOADED => w.loaded = true,
                        READY => {
                            w.loaded = true;
                            w.ready = true;
                        }
                        other => tracing::warn!(
                            "worker {i} (pid {}): unexpected byte {other:#04x} on its ready pipe",
                            w.pid
                        ),
                    }
                }
                // Without READY yet, the pipe stays in the poll for it.
                if w.ready {
                    w.ready_pipe = None;
                    slot.ever_ready = true;
                    if starting {
                        tracing::debug!("worker {i} (pid {}) ready", w.pid);
                    } else {
                        tracing::info!("worker {i} (pid {}) ready", w.pid);
                    }
                }
            }
            Ok(0) => {
                w.ready_pipe = None;
                tracing::debug!("worker {i} (pid {}) closed its ready pipe unready", w.pid);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                w.ready_pipe = None;
                tracing::warn!("worker {i} (pid {}): ready pipe: {e}", w.pid);
            }
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
            match self
                .slots
                .iter()
                .position(|s| s.worker.as_ref().is_some_and(|w| w.pid == pid))
            {
                Some(i) => self.on_exit(i, status),
                None => tracing::debug!("reaped unknown child {pid}: {}", describe(status, false)),
            }
        }
    }

    fn on_exit(&mut self, i: usize, status: WaitStatus) {
        // The ready byte may have arrived just before the exit.
        self.read_ready(i);
        let slot = &mut self.slots[i];
        let Some(w) = slot.worker.take() else { return };
        if let Some((board, _)) = &self.board {
            board.vacate(i);
        }
        let how = describe(status, w.loaded);
        let pid = w.pid;
        match self.phase {
            Phase::Stopping { .. } => tracing::info!("worker {i} (pid {pid}) {how}"),
            Phase::Starting if !slot.ever_ready => {
                tracing::error!("worker {i} (pid {pid}) {how} before it was ready; stopping");
                self.begin_stop(Sig::SIGTERM, self.interrupt_timeout(), EXIT_FAILURE);
            }
            Phase::Starting | Phase::Running => {
                let delay = slot.backoff.after_exit(w.started.elapsed());
                slot.respawn_at = Some(Instant::now() + delay);
                let delay = delay.as_secs_f64();
                match status {
                    WaitStatus::Exited(_, 0) => {
                        tracing::info!("worker {i} (pid {pid}) {how}; replacing it in {delay} s")
                    }
                    _ => tracing::error!("worker {i} (pid {pid}) {how}; replacing it in {delay} s"),
                }
            }
        }
    }

    /// Moves the phase on and starts due replacements; returns the exit status once done.
    fn advance(&mut self) -> Option<u8> {
        let now = Instant::now();
        match self.phase {
            Phase::Starting if self.slots.iter().all(|s| s.ever_ready) => {
                self.phase = Phase::Running;
                let listening: Vec<String> =
                    self.listeners.iter().map(Listener::describe).collect();
                let status = format!(
                    "{}, listening on {}",
                    plural(self.slots.len(), "worker"),
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
                    self.signal_all(Sig::SIGKILL);
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
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            if slot.worker.is_some() || slot.respawn_at.is_none_or(|t| t > now) {
                continue;
            }
            slot.respawn_at = None;
            if !self.start(i) {
                let slot = &mut self.slots[i];
                let delay = slot.backoff.after_exit(Duration::ZERO);
                slot.respawn_at = Some(Instant::now() + delay);
            }
        }
        None
    }

    /// Sleeps until a signal, a ready byte, or the next timer (a respawn or a deadline).
    fn wait(&self) {
        let next = match self.phase {
            Phase::Stopping { deadline, .. } => Some(deadline),
            _ => self.slots.iter().filter_map(|s| s.respawn_at).min(),
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
        for slot in &self.slots {
            if let Some(pipe) = slot.worker.as_ref().and_then(|w| w.ready_pipe.as_ref()) {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
            }
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
