//! One application's workers: `processes` slots, each holding the worker that serves, and
//! while it is being replaced its successor (started, not yet ready) and the workers it
//! replaced (told to stop, finishing what they hold). A replacement is graceful: the
//! successor is accepting before its predecessor stops accepting, on the listening sockets
//! they share, so no connection waits on a worker that is going away.
//!
//! A worker is replaced when it dies (with backoff: `backoff`), and when it is recycled
//! (`recycle`: its requests, memory, CPU time or age, or a stuck request), which is no
//! failure and does not back off.

use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal as Sig};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use super::backoff::Backoff;
use super::listeners::Listener;
use super::recycle::{self, Reason};
use super::spawn::{spawn_worker, Image};
use super::status::{self, AppStatus, WorkerStatus};
use super::supervise::{describe, STOP_MARGIN};
use super::usage::{self, Units};
use super::watch::Watch;
use super::worker::Worker;
use crate::board::Board;
use crate::config::{BoardPlace, InheritedListener, Settings, WorkerSpec};

pub struct Pool {
    /// "" or "NAME ", before "worker N" in the log.
    label: String,
    settings: Settings,
    /// Open for the workers to inherit; shared with the pool that replaces this one on a
    /// reload (a socket is closed, and its file removed, when no pool holds it).
    listeners: Vec<Rc<Listener>>,
    /// This pool's number, unique in the master's life.
    pub generation: u64,
    /// The pool this one replaces once all its workers are ready (a reload).
    pub replaces: Option<u64>,
    pub started: Instant,
    /// Told to stop (replaced, removed, or failed to start on a reload): until when its
    /// workers may finish, and whether they were killed after it.
    retiring: Option<(Instant, bool)>,
    image: Image,
    inherited: Vec<InheritedListener>,
    slots: Vec<Slot>,
    /// The connection board (two slots per position, see `BoardPlace`) and the
    /// descriptor workers map.
    board: Option<(Board, OwnedFd)>,
    units: Units,
    /// When memory and CPU time are read next (with `max_rss` or `max_cpu_time` set).
    next_usage_check: Option<Instant>,
    /// `reload_on`'s files, as they were when this pool started.
    pub watch: Option<Watch>,
}

/// One of the `processes` worker positions.
struct Slot {
    index: usize,
    current: Option<Worker>,
    successor: Option<(Worker, Reason)>,
    retiring: Vec<Worker>,
    backoff: Backoff,
    /// When a dead worker is replaced.
    respawn_at: Option<Instant>,
    /// A replacement that could not be started, and when it is tried again.
    retry: Option<(Reason, Instant)>,
    /// Some worker in this slot has been ready (startup needs each slot ready once).
    ever_ready: bool,
    /// Workers that held this position before the current one, and why the last left.
    restarts: u64,
    last_restart: Option<String>,
}

/// What an exit meant for the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exited {
    /// Not one of this pool's workers.
    NotOurs,
    Handled,
    /// A worker died before it was ever ready while wsgid starts: wsgid cannot serve.
    Fatal,
}

/// Where the supervisor is, as far as a pool needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Running,
    Stopping,
}

impl Pool {
    pub fn new(
        settings: Settings,
        image: Image,
        listeners: Vec<Rc<Listener>>,
        generation: u64,
        replaces: Option<u64>,
    ) -> Pool {
        let n = settings.processes;
        let settings_reload_on = settings.reload_on.clone();
        let inherited = listeners.iter().map(|l| l.inherited()).collect();
        let slots = (0..n)
            .map(|index| Slot {
                index,
                current: None,
                successor: None,
                retiring: Vec::new(),
                backoff: Backoff::default(),
                respawn_at: None,
                retry: None,
                ever_ready: false,
                restarts: 0,
                last_restart: None,
            })
            .collect();
        let board = Board::create(2 * n, listeners.len())
            .map_err(|e| {
                tracing::warn!(
                    "no connection board: workers will not spread connections, and wsgid \
                     status will not show their requests: {e}"
                )
            })
            .ok();
        let next_usage_check = recycle::watches_usage(&settings.recycle)
            .then(|| Instant::now() + recycle::CHECK_INTERVAL);
        Pool {
            label: if settings.name.is_empty() {
                String::new()
            } else {
                format!("{} ", settings.name)
            },
            settings,
            listeners,
            generation,
            replaces,
            started: Instant::now(),
            retiring: None,
            image,
            inherited,
            slots,
            board,
            units: Units::of_this_system(),
            next_usage_check,
            watch: Watch::new(&settings_reload_on),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn listeners(&self) -> &[Rc<Listener>] {
        &self.listeners
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Where this pool is: `Stopping` once wsgid stops or the pool retires, `Starting`
    /// until each of its slots has had a ready worker.
    pub fn phase(&self, wsgid_stopping: bool) -> Phase {
        if wsgid_stopping || self.retiring.is_some() {
            Phase::Stopping
        } else if !self.all_ready_once() {
            Phase::Starting
        } else {
            Phase::Running
        }
    }

    pub fn is_retiring(&self) -> bool {
        self.retiring.is_some()
    }

    /// Tells every worker to stop (SIGTERM: no new connections, finish what they hold
    /// within the graceful timeout); they are killed a second after it.
    pub fn retire(&mut self, now: Instant) {
        if self.retiring.is_some() {
            return;
        }
        let graceful = Duration::from_millis(self.settings.timeouts.graceful_ms);
        self.retiring = Some((now + graceful + STOP_MARGIN, false));
        self.signal_all(Sig::SIGTERM);
    }

    /// Starts every slot's first worker; false (logged) if one could not be started.
    pub fn start_all(&mut self) -> bool {
        (0..self.slots.len()).all(|i| {
            let board_slot = i;
            match self.spawn(i, board_slot) {
                Some(w) => {
                    self.slots[i].current = Some(w);
                    true
                }
                None => false,
            }
        })
    }

    /// Every slot has had a ready worker.
    pub fn all_ready_once(&self) -> bool {
        self.slots.iter().all(|s| s.ever_ready)
    }

    /// Workers alive, whatever their state.
    pub fn live(&self) -> usize {
        self.slots
            .iter()
            .map(|s| {
                usize::from(s.current.is_some())
                    + usize::from(s.successor.is_some())
                    + s.retiring.len()
            })
            .sum()
    }

    fn workers(&self) -> impl Iterator<Item = &Worker> {
        self.slots.iter().flat_map(|s| {
            s.current
                .iter()
                .chain(s.successor.as_ref().map(|(w, _)| w))
                .chain(s.retiring.iter())
        })
    }

    /// The report pipes to wait on.
    pub fn report_pipes(&self) -> impl Iterator<Item = &std::fs::File> {
        self.workers().filter_map(Worker::report_pipe)
    }

    /// Sends `sig` to every worker; with SIGTERM or SIGINT, stops replacing them.
    pub fn signal_all(&mut self, sig: Sig) {
        if sig != Sig::SIGKILL {
            for slot in &mut self.slots {
                slot.respawn_at = None;
                slot.retry = None;
            }
        }
        for (i, w) in self.slots.iter().flat_map(|s| {
            s.current
                .iter()
                .chain(s.successor.as_ref().map(|(w, _)| w))
                .chain(s.retiring.iter())
                .map(move |w| (s.index, w))
        }) {
            signal(&self.label, i, w.pid, sig);
        }
    }

    /// The next time `advance` has something to do.
    pub fn next_timer(&self) -> Option<Instant> {
        if let Some((deadline, killed)) = self.retiring {
            return (!killed).then_some(deadline);
        }
        let lifetime = self
            .settings
            .recycle
            .max_lifetime_ms
            .map(Duration::from_millis);
        let mut next = self.next_usage_check;
        if let Some(w) = &self.watch {
            next = Some(next.map_or(w.next(), |n| n.min(w.next())));
        }
        for s in &self.slots {
            let mut consider = |t: Option<Instant>| {
                if let Some(t) = t {
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                }
            };
            consider(s.respawn_at);
            consider(s.retry.map(|(_, t)| t));
            for w in &s.retiring {
                consider(w.retiring);
            }
            if let (Some(max), Some(w), None) = (lifetime, &s.current, &s.successor) {
                if w.ready {
                    consider(Some(w.started + max));
                }
            }
        }
        next
    }

    /// Reads every report pipe and acts on it: a successor that became ready takes over
    /// from its predecessor; a worker that asks to be replaced gets a successor.
    pub fn read_reports(&mut self, phase: Phase) {
        for i in 0..self.slots.len() {
            self.read_slot(i, phase);
        }
    }

    fn read_slot(&mut self, i: usize, phase: Phase) {
        let slot = &mut self.slots[i];
        for w in &mut slot.retiring {
            let who = who(&self.label, i, w.pid);
            // Retiring workers may still ask (a stuck request): they are going already.
            let _ = w.read_report(&who);
        }
        if let Some(w) = &mut slot.current {
            let news = w.read_report(&who(&self.label, i, w.pid));
            if news.ready {
                slot.ever_ready = true;
                if phase == Phase::Starting {
                    tracing::debug!("{} ready", who(&self.label, i, w.pid));
                } else {
                    tracing::info!("{} ready", who(&self.label, i, w.pid));
                }
            }
            // Acted on by `advance`: the worker asks once, whatever the pool is doing now.
            if news.replace.is_some() {
                w.wants_replacement = news.replace;
            }
        }
        let slot = &mut self.slots[i];
        if let Some((w, reason)) = &mut slot.successor {
            let news = w.read_report(&who(&self.label, i, w.pid));
            if news.ready {
                let reason = *reason;
                self.take_over(i, reason);
            }
        }
    }

    /// Starts a successor for slot `i`'s worker.
    fn replace(&mut self, i: usize, reason: Reason) {
        let Some(current) = &self.slots[i].current else {
            return;
        };
        let old = current.pid;
        let board_slot = self.other_board_slot(i, current.board_slot);
        tracing::info!(
            "{}: {reason}; starting its replacement",
            who(&self.label, i, old)
        );
        match self.spawn(i, board_slot) {
            Some(w) => self.slots[i].successor = Some((w, reason)),
            None => self.retry_later(i, reason),
        }
    }

    fn retry_later(&mut self, i: usize, reason: Reason) {
        let slot = &mut self.slots[i];
        let delay = slot.backoff.after_exit(Duration::ZERO);
        slot.retry = Some((reason, Instant::now() + delay));
    }

    /// Slot `i`'s successor is ready: it becomes the slot's worker, and the one it replaces
    /// is told to stop (SIGTERM: no new connections, finish what it holds).
    fn take_over(&mut self, i: usize, reason: Reason) {
        let graceful = Duration::from_millis(self.settings.timeouts.graceful_ms);
        let slot = &mut self.slots[i];
        let Some((new, _)) = slot.successor.take() else {
            return;
        };
        slot.ever_ready = true;
        let new_pid = new.pid;
        match slot.current.replace(new) {
            Some(mut old) => {
                tracing::info!(
                    "{} replaced by pid {new_pid} ({reason}); it finishes its requests",
                    who(&self.label, i, old.pid)
                );
                signal(&self.label, i, old.pid, Sig::SIGTERM);
                slot.restarts += 1;
                slot.last_restart = Some(reason.to_string());
                old.retiring = Some(Instant::now() + graceful + STOP_MARGIN);
                slot.retiring.push(old);
            }
            None => tracing::info!("{} ready", who(&self.label, i, new_pid)),
        }
    }

    /// The board slot of a second worker in position `i`, beside one on `taken`.
    fn other_board_slot(&self, i: usize, taken: usize) -> usize {
        let n = self.slots.len();
        if taken == i {
            i + n
        } else {
            i
        }
    }

    /// Starts a worker for position `i` posting on `board_slot`; None (logged) if it could
    /// not be started.
    fn spawn(&mut self, i: usize, board_slot: usize) -> Option<Worker> {
        let n = self.slots.len();
        if let Some((board, _)) = &self.board {
            board.reset(board_slot);
        }
        let spec = WorkerSpec {
            settings: self.settings.clone(),
            listeners: self.inherited.clone(),
            index: i,
            ready_fd: None,
            board: self.board.as_ref().map(|(_, fd)| BoardPlace {
                fd: fd.as_raw_fd(),
                slots: 2 * n,
                slot: board_slot,
            }),
            check_only: false,
            max_requests: recycle::max_requests(&self.settings.recycle),
        };
        match spawn_worker(&self.image, spec, true) {
            Ok(spawned) => {
                tracing::info!("{} started", who(&self.label, i, spawned.pid));
                Some(Worker::new(spawned.pid, spawned.ready, board_slot))
            }
            Err(e) => {
                tracing::error!("cannot start {}worker {i}: {e}", self.label);
                None
            }
        }
    }

    /// Acts on the exit of `pid`, if it is one of this pool's workers.
    pub fn on_exit(&mut self, pid: Pid, status: WaitStatus, phase: Phase) -> Exited {
        let Some(i) = self.slots.iter().position(|s| {
            s.current.as_ref().is_some_and(|w| w.pid == pid)
                || s.successor.as_ref().is_some_and(|(w, _)| w.pid == pid)
                || s.retiring.iter().any(|w| w.pid == pid)
        }) else {
            return Exited::NotOurs;
        };
        // What it reported just before it exited counts (LOADED in particular).
        self.read_slot(i, phase);
        let slot = &mut self.slots[i];
        if let Some(at) = slot.retiring.iter().position(|w| w.pid == pid) {
            let w = slot.retiring.swap_remove(at);
            self.vacate(w.board_slot);
            tracing::info!(
                "{} (replaced) {}",
                who(&self.label, i, pid),
                describe(status, w.loaded)
            );
            return Exited::Handled;
        }
        if slot.successor.as_ref().is_some_and(|(w, _)| w.pid == pid) {
            let Some((w, reason)) = slot.successor.take() else {
                return Exited::Handled;
            };
            self.vacate(w.board_slot);
            let how = describe(status, w.loaded);
            if phase == Phase::Stopping {
                tracing::info!("{} {how}", who(&self.label, i, pid));
                return Exited::Handled;
            }
            if self.slots[i].current.is_some() {
                self.retry_later(i, reason);
                let delay = self.slots[i].retry.map_or(0.0, |(_, t)| {
                    t.saturating_duration_since(Instant::now()).as_secs_f64()
                });
                tracing::error!(
                    "{} (a replacement) {how} before it was ready; the worker it was to \
                     replace goes on serving; trying again in {delay:.1} s",
                    who(&self.label, i, pid)
                );
                return Exited::Handled;
            }
            // Its predecessor died meanwhile: this is a dead slot now.
            return self.dead(i, pid, status, w, phase);
        }
        let Some(w) = slot.current.take() else {
            return Exited::Handled;
        };
        self.vacate(w.board_slot);
        let slot = &mut self.slots[i];
        slot.retry = None;
        if let Some((successor, _)) = slot.successor.take() {
            if phase != Phase::Stopping {
                tracing::error!(
                    "{} {}; its replacement (pid {}) is starting",
                    who(&self.label, i, pid),
                    describe(status, w.loaded),
                    successor.pid
                );
            }
            // The successor takes the slot over once ready, with nothing to retire.
            slot.current = Some(successor);
            return Exited::Handled;
        }
        self.dead(i, pid, status, w, phase)
    }

    /// Slot `i` has no worker left after `w` (pid `pid`) exited: replaced with backoff.
    fn dead(&mut self, i: usize, pid: Pid, status: WaitStatus, w: Worker, phase: Phase) -> Exited {
        let slot = &mut self.slots[i];
        let how = describe(status, w.loaded);
        match phase {
            Phase::Stopping => {
                tracing::info!("{} {how}", who(&self.label, i, pid));
                Exited::Handled
            }
            Phase::Starting if !slot.ever_ready => {
                tracing::error!(
                    "{} {how} before it was ready; stopping",
                    who(&self.label, i, pid)
                );
                Exited::Fatal
            }
            Phase::Starting | Phase::Running => {
                slot.restarts += 1;
                slot.last_restart = Some(how.clone());
                let delay = slot.backoff.after_exit(w.started.elapsed());
                slot.respawn_at = Some(Instant::now() + delay);
                let delay = delay.as_secs_f64();
                match status {
                    WaitStatus::Exited(_, 0) => {
                        tracing::info!(
                            "{} {how}; replacing it in {delay} s",
                            who(&self.label, i, pid)
                        )
                    }
                    _ => tracing::error!(
                        "{} {how}; replacing it in {delay} s",
                        who(&self.label, i, pid)
                    ),
                }
                Exited::Handled
            }
        }
    }

    fn vacate(&self, board_slot: usize) {
        if let Some((board, _)) = &self.board {
            board.vacate(board_slot);
        }
    }

    /// Starts due respawns and replacements, recycles workers past their limits, and kills
    /// replaced workers that outstayed the graceful timeout. Only while running.
    pub fn advance(&mut self, now: Instant) {
        if let Some((deadline, killed)) = self.retiring {
            if !killed && now >= deadline {
                tracing::warn!(
                    "{} of a retired pool did not stop in time; killing",
                    super::supervise::plural(self.live(), "worker")
                );
                self.signal_all(Sig::SIGKILL);
                self.retiring = Some((deadline, true));
            }
            return;
        }
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            if slot.current.is_none()
                && slot.successor.is_none()
                && slot.respawn_at.is_some_and(|t| t <= now)
            {
                slot.respawn_at = None;
                let taken: Vec<usize> = slot.retiring.iter().map(|w| w.board_slot).collect();
                let board_slot = if taken.contains(&i) {
                    i + self.slots.len()
                } else {
                    i
                };
                match self.spawn(i, board_slot) {
                    Some(w) => self.slots[i].current = Some(w),
                    None => {
                        let slot = &mut self.slots[i];
                        let delay = slot.backoff.after_exit(Duration::ZERO);
                        slot.respawn_at = Some(Instant::now() + delay);
                    }
                }
            }
            let slot = &mut self.slots[i];
            let asked = slot.current.as_ref().and_then(|w| w.wants_replacement);
            if let (Some(reason), None, None) = (asked, &slot.successor, slot.retry) {
                if let Some(w) = &mut slot.current {
                    w.wants_replacement = None;
                }
                self.replace(i, reason);
            }
            let slot = &mut self.slots[i];
            if let Some((reason, at)) = slot.retry {
                if at <= now && slot.successor.is_none() {
                    slot.retry = None;
                    self.replace(i, reason);
                }
            }
            for w in &mut self.slots[i].retiring {
                if w.retiring.is_some_and(|t| t <= now) {
                    w.retiring = None;
                    tracing::warn!(
                        "{} (replaced) did not finish within the graceful timeout; killing it",
                        who(&self.label, i, w.pid)
                    );
                    signal(&self.label, i, w.pid, Sig::SIGKILL);
                }
            }
        }
        self.check_limits(now);
    }

    /// Carries the restart counts of `old`, the pool this one replaces on a reload, over
    /// to the same positions, the reload counted as one more.
    pub fn inherit_history(&mut self, old: &Pool) {
        for (new, old) in self.slots.iter_mut().zip(&old.slots) {
            new.restarts = old.restarts + 1;
            new.last_restart = Some("reload".into());
        }
    }

    /// What `wsgid status` shows of this pool.
    pub fn status(&self) -> AppStatus {
        let now = Instant::now();
        let state = if self.retiring.is_some() {
            "retiring"
        } else if self.all_ready_once() {
            "serving"
        } else {
            "starting"
        };
        let mut workers = Vec::new();
        for slot in &self.slots {
            let current = slot.current.iter().map(|w| (w, false));
            let successor = slot.successor.iter().map(|(w, _)| (w, false));
            let retiring = slot.retiring.iter().map(|w| (w, true));
            for (w, replaced) in current.chain(successor).chain(retiring) {
                let posted = self
                    .board
                    .as_ref()
                    .map(|(b, _)| b.read(w.board_slot))
                    .unwrap_or_default();
                let usage = usage::read(w.pid, self.units);
                let state = if replaced || self.retiring.is_some() {
                    "draining"
                } else if w.ready {
                    "serving"
                } else {
                    "starting"
                };
                workers.push(WorkerStatus {
                    index: slot.index,
                    pid: w.pid.as_raw(),
                    uid: status::uid_of(w.pid.as_raw()),
                    state: state.into(),
                    requests: posted.taken,
                    in_flight: posted.in_flight,
                    connections: posted.connections,
                    rss_bytes: usage.map(|u| u.rss_bytes),
                    cpu_s: usage.map(|u| u.cpu.as_secs_f64()),
                    age_s: now.saturating_duration_since(w.started).as_secs_f64(),
                    restarts: slot.restarts,
                    last_restart: slot.last_restart.clone(),
                });
            }
        }
        AppStatus {
            name: self.settings.name.clone(),
            app: self.settings.app.clone(),
            state: state.into(),
            listen: self.listeners.iter().map(|l| l.describe()).collect(),
            workers,
        }
    }

    /// Replaces serving workers past `max_lifetime`, `max_rss` or `max_cpu_time`.
    fn check_limits(&mut self, now: Instant) {
        let limits = self.settings.recycle;
        let read_usage = self.next_usage_check.is_some_and(|t| t <= now);
        if read_usage {
            self.next_usage_check = Some(now + recycle::CHECK_INTERVAL);
        }
        if limits.max_lifetime_ms.is_none() && !read_usage {
            return;
        }
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            let Some(w) = &slot.current else { continue };
            if !w.ready || slot.successor.is_some() || slot.retry.is_some() {
                continue;
            }
            let usage = if read_usage {
                usage::read(w.pid, self.units)
            } else {
                None
            };
            if let Some(reason) = recycle::due(&limits, w.started, now, usage) {
                self.replace(i, reason);
            }
        }
    }
}

/// "worker 0 (pid 1234)", or "blog worker 0 (pid 1234)" for the app named blog.
fn who(label: &str, i: usize, pid: Pid) -> String {
    format!("{label}worker {i} (pid {pid})")
}

fn signal(label: &str, i: usize, pid: Pid, sig: Sig) {
    if let Err(e) = kill(pid, sig) {
        if e != Errno::ESRCH {
            tracing::warn!("cannot send {sig} to {}: {e}", who(label, i, pid));
        }
    }
}
