//! Who runs the reactor: leader/follower over the worker's threads.
//!
//! A request never crosses threads: handing it from an I/O thread to a Python thread and
//! its answer back would take two wake-ups (a futex and an eventfd, each a context switch),
//! more than the rest of a small request. The Python threads take turns at the reactor
//! instead (the leader/follower pattern; benches/PROFILE.md has the measurements):
//!
//! - An idle Python thread *leads*: it polls, reads and decodes until a turn yields a
//!   request, then leaves the reactor, runs the request, and on finishing sends the answer
//!   itself and leads again (no wake-up either way). With one thread, a keep-alive request
//!   costs one `epoll_wait`, one read and one write; with more, as long as requests are
//!   short, the same.
//! - Requests a turn decodes beyond the first are queued for whichever thread comes first:
//!   usually the leader itself, back from its request (under the GIL, more runnable threads
//!   would only take turns at it, with a context switch each).
//! - Leaving the reactor, or queueing requests, wakes nobody (waking a thread per request
//!   is what this avoids). Instead one idle thread, the *standby*, parks with a
//!   [`STANDBY_TICK`] timeout while requests run. When a whole tick passed with no turn of
//!   the reactor it leads; when requests sat in the queue for a whole tick it wakes a
//!   thread for each and takes one. A request that blocks (a sleep, a database) so holds up
//!   the others for at most a tick. Once it has seen the worker quiet, the standby parks
//!   without a timeout, and the next thread to leave the reactor for a request wakes it.
//! - The roles stay put while requests are short: a standby whose tick saw a turn parks
//!   again without trying the reactor (it is free only because its leader is in a
//!   request, and that leader comes back to it), and a thread woken because nobody stood
//!   by is made the standby rather than a new leader. Passing leadership around at every
//!   tick would make every thread take turns, each with a context switch and a cold
//!   cache.
//! - A thread back from a request when no turn has run for a tick (every thread was busy)
//!   polls once before taking a queued request, so new connections are not left waiting
//!   behind the queue.
//! - A Python thread waiting mid-request (for body bytes, or for room in its output buffer)
//!   leads while it waits if nobody else does ([`wait_io`]).
//! - The *guardian* (the worker's main thread, never attached to Python) covers the case
//!   where every Python thread is busy in the app and nobody leads: it checks every
//!   [`GUARD_TICK`] whether a turn has run, and if none has, leads until a Python thread is
//!   free. Signals, timeouts and slow clients are then served within a tick.
//!
//! Lock order: reactor, then `ctl`; the reverse only ever uses `try_lock` on the reactor.
//! A thread parks only after registering itself in `ctl` and failing a second `try_lock`,
//! and a leader checks `ctl` after releasing the reactor, so no wake-up is lost.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, Thread};
use std::time::Duration;

use super::event_loop::{EventLoop, Exit};
use super::exchange::Job;
use super::notify::Notifier;
use crate::python::App;

/// How often the guardian checks that somebody runs the reactor.
pub const GUARD_TICK: Duration = Duration::from_millis(50);
/// How often the standby checks, while requests run, that somebody runs the reactor.
pub const STANDBY_TICK: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Ctl {
    jobs: VecDeque<Job>,
    /// Python threads parked with nothing to do.
    idle: Vec<Thread>,
    /// Python threads parked mid-request, waiting for the reactor to make progress.
    io_waiting: Vec<Thread>,
    /// The idle thread that parks with a timeout while requests run.
    standby: Option<thread::ThreadId>,
    /// The standby parks without a timeout (nothing was running): wake it when a request
    /// starts.
    standby_slow: bool,
    /// Python threads running a request.
    busy: usize,
    /// Requests ever taken from `jobs` (with `jobs.len()`, tells whether the oldest queued
    /// request is still the same one).
    taken: u64,
    guardian: Option<Thread>,
    /// The guardian holds the reactor: a thread that parks must poke the poll.
    guardian_leading: bool,
    exit: Option<Exit>,
}

impl Ctl {
    /// Takes the oldest queued request for the calling thread.
    fn take(&mut self) -> Option<Job> {
        let job = self.jobs.pop_front()?;
        self.busy += 1;
        self.taken += 1;
        Some(job)
    }
}

pub struct Core {
    reactor: Mutex<EventLoop>,
    ctl: Mutex<Ctl>,
    notifier: Arc<Notifier>,
    /// Turns run so far (the guardian's sign of life).
    turns: AtomicU64,
}

type Reactor<'a> = MutexGuard<'a, EventLoop>;

thread_local! {
    /// The core a Python thread serves, for waits deep inside a request.
    static CORE: RefCell<Option<Arc<Core>>> = const { RefCell::new(None) };
}

impl Core {
    pub fn new(reactor: EventLoop, notifier: Arc<Notifier>) -> Arc<Core> {
        Arc::new(Core {
            reactor: Mutex::new(reactor),
            ctl: Mutex::new(Ctl::default()),
            notifier,
            turns: AtomicU64::new(0),
        })
    }

    fn ctl(&self) -> MutexGuard<'_, Ctl> {
        // Plain data: a panic while holding it leaves it consistent.
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reactor, if nobody holds it and the worker has not exited.
    fn try_lead(&self) -> Option<Reactor<'_>> {
        let g = match self.reactor.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        if self.ctl().exit.is_some() {
            return None;
        }
        Some(g)
    }

    fn turn(&self, r: &mut Reactor<'_>, block: bool) -> Option<Exit> {
        self.turn_until(r, block, &|| false)
    }

    fn turn_until(
        &self,
        r: &mut Reactor<'_>,
        block: bool,
        done: &dyn Fn() -> bool,
    ) -> Option<Exit> {
        self.turns.fetch_add(1, Ordering::Relaxed);
        let exit = r.turn(block, done);
        if let Some(e) = exit {
            self.set_exit(e);
        }
        exit
    }

    fn set_exit(&self, e: Exit) {
        let mut guard = self.ctl();
        let c = &mut *guard;
        c.exit.get_or_insert(e);
        let all: Vec<Thread> = c
            .idle
            .drain(..)
            .chain(c.io_waiting.drain(..))
            .chain(c.guardian.clone())
            .collect();
        drop(guard);
        for t in all {
            t.unpark();
        }
    }

    fn exited(&self) -> Option<Exit> {
        self.ctl().exit
    }

    /// Takes a queued request.
    fn take_job(&self) -> Option<Job> {
        self.ctl().take()
    }

    /// The standby found requests queued and none taken for a whole tick: every thread that
    /// would take them is blocked in its own request. Wakes as many idle threads as there
    /// are such requests (the caller takes one itself).
    fn unstick(&self) {
        let c = self.ctl();
        let n = c.jobs.len().saturating_sub(1);
        wake_idle(c, n);
    }

    fn run(&self, app: &App, job: Job) {
        app.run(job);
        let mut c = self.ctl();
        c.busy = c.busy.saturating_sub(1);
    }

    /// Leads until a request comes and runs it; false when the worker exited instead.
    fn lead_and_run(&self, app: &App, r: Reactor<'_>) -> bool {
        match self.lead_for_work(r) {
            Some(job) => {
                self.run(app, job);
                true
            }
            None => false,
        }
    }

    /// Queues the requests the last turns decoded. With `keep_one` the caller takes the
    /// oldest queued request (returned) and the rest wait for it or the standby; without (a
    /// leader that will not run them), parked threads are woken for them.
    fn publish(&self, r: &mut Reactor<'_>, keep_one: bool) -> Option<Job> {
        let ready = r.ready();
        if ready.is_empty() {
            return if keep_one { self.take_job() } else { None };
        }
        let mut c = self.ctl();
        c.jobs.extend(ready.drain(..));
        if keep_one {
            return c.take();
        }
        let n = c.jobs.len();
        wake_idle(c, n);
        None
    }

    /// Leaves the reactor to run (or go on with) a request. Wakes a thread parked for I/O
    /// (it needs the reactor now), else makes sure the standby watches: a slow standby is
    /// told a request runs; with no standby, an idle thread is made the standby and woken
    /// to watch with a tick.
    fn release(&self, r: Reactor<'_>) {
        drop(r);
        self.deliver_notes();
        let mut c = self.ctl();
        if c.exit.is_some() {
            return;
        }
        let next = if let Some(t) = c.io_waiting.pop() {
            Some(t)
        } else if let Some(id) = c.standby {
            if std::mem::take(&mut c.standby_slow) {
                c.idle.iter().find(|t| t.id() == id).cloned()
            } else {
                None
            }
        } else if let Some(t) = c.idle.last().cloned() {
            // Left in `idle`, as a standby is, so that it wakes as one whose tick passed.
            c.standby = Some(t.id());
            c.standby_slow = false;
            Some(t)
        } else {
            None
        };
        drop(c);
        if let Some(t) = next {
            t.unpark();
        }
    }

    /// After letting go of the reactor: a thread that posted a note (a finished response,
    /// a paused read to resume) while we held it, and found the reactor taken, left its
    /// delivery to us. Unless somebody holds the reactor again (and will turn or come
    /// through here), flush the notes now: otherwise they wait for the next turn, which
    /// with every thread in a request is the next request's end or the guardian's tick.
    fn deliver_notes(&self) {
        while self.notifier.pending() {
            let Some(mut r) = self.try_lead() else {
                return;
            };
            r.flush_notes();
            // Reading again after a resume may have decoded requests.
            self.publish(&mut r, false);
        }
    }

    /// Leaves the reactor to a parked thread right away (the guardian, once one registers).
    fn hand_over(&self, r: Reactor<'_>) {
        drop(r);
        self.deliver_notes();
        let mut c = self.ctl();
        let next = c.io_waiting.pop().or_else(|| c.idle.pop());
        drop(c);
        if let Some(t) = next {
            t.unpark();
        }
    }

    /// Registers the current thread as parked (idle or waiting for I/O). None when it
    /// must not park: the worker exited, or (for idle threads) a job is waiting, unless
    /// `queue_moving` (a standby that saw queued requests being taken); else the park's
    /// timeout: the standby's tick, unless `quiet` (its last tick saw no turn and no request
    /// running) and still no request runs.
    fn register(
        &self,
        me: &Thread,
        io: bool,
        queue_moving: bool,
        quiet: bool,
    ) -> Option<Option<Duration>> {
        let mut c = self.ctl();
        if c.exit.is_some() || (!io && !queue_moving && !c.jobs.is_empty()) {
            // Off to take a request: whoever registers next stands by.
            if c.standby == Some(me.id()) {
                c.standby = None;
                c.standby_slow = false;
            }
            return None;
        }
        let mut timeout = None;
        if io {
            c.io_waiting.push(me.clone());
        } else {
            c.idle.push(me.clone());
            if c.standby.is_none() || c.standby == Some(me.id()) {
                c.standby = Some(me.id());
                // Slow only once the worker is seen quiet: a standby that went slow whenever
                // no request happened to run would be woken by the next one, many times a
                // second under load.
                c.standby_slow = quiet && c.busy == 0;
                if !c.standby_slow {
                    timeout = Some(STANDBY_TICK);
                }
            }
        }
        let poke = c.guardian_leading;
        drop(c);
        if poke {
            self.notifier.poke();
        }
        Some(timeout)
    }

    /// Unregisters the current thread; true when it was still registered as idle (its
    /// park timed out or woke spuriously, rather than somebody popping it to wake it).
    fn unregister(&self, me: &Thread) -> bool {
        self.unpark_done(me, false)
    }

    /// After a park: no longer parked; the standby keeps its role when `keep_standby`.
    fn unpark_done(&self, me: &Thread, keep_standby: bool) -> bool {
        let mut c = self.ctl();
        let before = c.idle.len();
        c.idle.retain(|t| t.id() != me.id());
        let still = c.idle.len() != before;
        c.io_waiting.retain(|t| t.id() != me.id());
        if !keep_standby && c.standby == Some(me.id()) {
            c.standby = None;
            c.standby_slow = false;
        }
        still
    }

    /// Runs turns until one yields a request (returned, the reactor released) or the
    /// worker exits (None).
    fn lead_for_work(&self, mut r: Reactor<'_>) -> Option<Job> {
        loop {
            if self.turn(&mut r, true).is_some() {
                return None;
            }
            if let Some(job) = self.publish(&mut r, true) {
                self.release(r);
                return Some(job);
            }
        }
    }

    /// Runs turns until `ready()` (a waiting request's condition) holds or the worker exits.
    fn lead_while(&self, mut r: Reactor<'_>, ready: &dyn Fn() -> bool) {
        while !ready() {
            if self.turn_until(&mut r, true, ready).is_some() {
                return;
            }
            self.publish(&mut r, false);
        }
        self.release(r);
    }
}

/// A Python thread's life: run queued requests, otherwise lead, otherwise park. Called
/// detached from the interpreter; `app.run` attaches for each request.
pub fn python_thread(core: Arc<Core>, app: &App) {
    CORE.with(|c| *c.borrow_mut() = Some(core.clone()));
    let me = thread::current();
    // The standby's tick passed while the reactor kept turning: park again at once.
    let mut stand_by = false;
    // The standby's last tick saw no turn and no request running.
    let mut quiet = false;
    loop {
        let standing = std::mem::take(&mut stand_by);
        if !standing {
            if let Some(mut r) = core.try_lead() {
                // Send what our last request left (no wake-up needed: we are the reactor).
                // When nobody has turned the reactor for a while (every thread was in a
                // request), look at the sockets too before taking a queued request: new
                // connections and requests must not wait for the queue to drain.
                let job = if r.since_turn() >= STANDBY_TICK {
                    if core.turn(&mut r, false).is_some() {
                        return;
                    }
                    core.publish(&mut r, true)
                } else {
                    r.flush_notes();
                    core.publish(&mut r, true)
                };
                match job {
                    Some(job) => {
                        core.release(r);
                        core.run(app, job);
                    }
                    None if core.lead_and_run(app, r) => {}
                    None => return,
                }
                continue;
            }
            if let Some(job) = core.take_job() {
                core.run(app, job);
                continue;
            }
        }
        let turns = core.turns.load(Ordering::Relaxed);
        let taken = core.ctl().taken;
        let Some(timeout) = core.register(&me, false, standing, quiet) else {
            if core.exited().is_some() {
                return;
            }
            continue;
        };
        // Registered first, tried second: a leader that released in between sees us. Not
        // a standby whose tick saw a turn: the reactor is free because its leader is in a
        // request and will come back to it; if it does not, the next tick sees no turn.
        let reactor = if standing { None } else { core.try_lead() };
        if let Some(r) = reactor {
            core.unregister(&me);
            if !core.lead_and_run(app, r) {
                return;
            }
            continue;
        }
        match timeout {
            Some(t) => thread::park_timeout(t),
            None => thread::park(),
        }
        // A standby whose tick passed while the reactor kept turning stays the standby
        // (giving the role up even briefly would make leaders wake somebody for it).
        let ticked = core.unpark_done(&me, true);
        if core.exited().is_some() {
            return;
        }
        // Requests queued and none taken for a whole tick: the threads that would take them
        // are blocked in their own.
        let stuck = {
            let c = core.ctl();
            !c.jobs.is_empty() && c.taken == taken
        };
        let turned = core.turns.load(Ordering::Relaxed) != turns;
        stand_by = ticked && !stuck && turned;
        quiet = ticked && !turned && core.ctl().busy == 0;
        if !stand_by {
            core.unregister(&me);
        }
        if stuck {
            core.unstick();
        }
    }
}

/// Waits (detached from the interpreter) until `ready()`, or spuriously earlier: leads the
/// reactor meanwhile if nobody does, else parks until the leader unparks this thread (a
/// change of the request's state, or leadership handed over).
pub fn wait_io(ready: &dyn Fn() -> bool) {
    let Some(core) = CORE.with(|c| c.borrow().clone()) else {
        // Not a pool thread (nothing else waits on an exchange): whoever changes the state
        // unparks us.
        thread::park();
        return;
    };
    if let Some(r) = core.try_lead() {
        core.lead_while(r, ready);
        return;
    }
    let me = thread::current();
    if core.register(&me, true, false, false).is_none() {
        return;
    }
    if let Some(r) = core.try_lead() {
        core.unregister(&me);
        core.lead_while(r, ready);
        return;
    }
    if !ready() {
        thread::park();
    }
    core.unregister(&me);
}

/// Wakes up to `n` idle threads, letting go of `c` first.
fn wake_idle(mut c: MutexGuard<'_, Ctl>, n: usize) {
    let n = n.min(c.idle.len());
    if n == 0 {
        return;
    }
    let wake: Vec<Thread> = c.idle.drain(..n).collect();
    drop(c);
    for t in wake {
        t.unpark();
    }
}

/// The worker's main thread once the pool runs: makes sure somebody leads, and returns how
/// the worker ended.
pub fn guardian(core: &Core) -> Exit {
    core.ctl().guardian = Some(thread::current());
    let mut seen = u64::MAX;
    loop {
        thread::park_timeout(GUARD_TICK);
        if let Some(e) = core.exited() {
            return e;
        }
        let turns = core.turns.load(Ordering::Relaxed);
        if turns != seen {
            seen = turns;
            continue;
        }
        let Some(mut r) = core.try_lead() else {
            continue;
        };
        core.ctl().guardian_leading = true;
        loop {
            {
                let c = core.ctl();
                if !c.idle.is_empty() || !c.io_waiting.is_empty() {
                    break;
                }
            }
            if let Some(e) = core.turn(&mut r, true) {
                return e;
            }
            core.publish(&mut r, false);
        }
        core.ctl().guardian_leading = false;
        core.hand_over(r);
        seen = core.turns.load(Ordering::Relaxed);
    }
}
