//! The worker's reactor: one mio poll over the inherited listeners, every connection, the
//! waker Python threads use, and the shutdown signals. It is not a thread of its own:
//! whichever thread leads (see `lead`) runs its `turn`s, always detached from the
//! interpreter, and takes the requests a turn decoded.
//!
//! With sibling workers on the same listeners, a worker holding clearly more connections
//! than the least loaded of them leaves new ones to it, taking one itself per `SHARE_WAIT`
//! they wait (`crate::board`).
//!
//! Timeouts are checked by a sweep once a second (idle keep-alive connections, requests whose
//! params or body stop arriving, front ends that take none of the output owed to them,
//! lingering closes), which costs O(connections) per second and nothing per request.
//! `request_timeout` has a timer of its own, finer than the sweep (`request_timeout`).

mod request_timeout;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::SIGINT;
use signal_hook_mio::v1_0::Signals;
use tracing::{debug, info, warn};

use super::conn::{Codec, Conn, Verdict};
use super::exchange::Abort;
use super::exchange::Job;
use super::notify::Note;
use super::stream::Listener;
use super::Listening;
use super::Shared;
use crate::board::Board;
use crate::config::{Protocol, Settings};
use crate::protocol::fastcgi::{self, Capabilities};
use crate::protocol::{scgi, Limits};
use request_timeout::RequestTimer;

/// The signals a worker stops on. Registered before Python starts: a `signal` module
/// imported later then finds wsgid's handlers in place and installs none of its own.
pub fn stop_signals() -> io::Result<Signals> {
    Signals::new([signal_hook::consts::SIGTERM, SIGINT])
}

const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const CONN_BASE: usize = 1 << 16;
const TICK: Duration = Duration::from_secs(1);
/// While stopping, how long a connection that has sent nothing yet is kept for the request
/// its front end is about to send.
const FRESH_GRACE: Duration = Duration::from_secs(1);
const READ_CHUNK: usize = 256 * 1024;
/// While stopping with no connection left, how often the reactor looks whether the
/// requests still held by threads are done.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// Connections accepted per listener per loop turn when there are sibling workers. Every
/// worker is woken for a new connection on the shared socket; taking a few at a time and
/// going back to the loop lets the others take theirs, so a burst (nginx opening its
/// keep-alive pool) is spread over the workers instead of pinned to whichever woke first.
/// A worker alone takes every waiting connection: with all its threads in requests it
/// turns the loop only as often as a request ends, and a few connections per turn would
/// leave new ones (nginx opens one per request beyond its keep-alive pool) waiting in the
/// backlog behind requests that came later.
const ACCEPT_BATCH: usize = 4;
/// How many connections more than its least loaded sibling a worker holds before it leaves
/// new ones to that sibling (`crate::board`).
const SHARE_SLACK: usize = 2;
/// While it leaves waiting connections to a sibling, a worker takes one more itself per
/// `SHARE_WAIT` (the sibling may be in a long request, or not scheduled), rather than all of
/// them after one wait: while a sibling runs an app's slow first request, the other would
/// take a front end's whole keep-alive pool, and keep it.
const SHARE_WAIT: Duration = Duration::from_millis(10);
/// After accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM), how soon
/// the listener is tried again: the connections already waiting raise no new readiness
/// edge, so without a timer they would wait for the next connection to arrive.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// During such a shortage, at most one log line per this interval.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

pub struct ListenerSlot {
    pub listener: Listener,
    pub protocol: Protocol,
    pub listening: Arc<Listening>,
}

pub struct EventLoop {
    poll: Poll,
    listeners: Vec<ListenerSlot>,
    listening: bool,
    conns: Vec<Option<Conn>>,
    gens: Vec<u32>,
    free: Vec<usize>,
    count: usize,
    sh: Shared,
    signals: Signals,
    limits: Limits,
    caps: Capabilities,
    idle: Duration,
    read: Duration,
    send: Duration,
    graceful: Duration,
    interrupt: Duration,
    max_connections: usize,
    deadline: Option<Instant>,
    /// Listeners whose last turn stopped at ACCEPT_BATCH (more may be waiting; edge-
    /// triggered readiness will not report them again).
    accept_more: Vec<usize>,
    /// ACCEPT_BATCH, or no limit for a worker without siblings.
    accept_batch: usize,
    /// With sibling workers: the connection board, and this worker's slot on it.
    board: Option<(Arc<Board>, usize)>,
    /// Listeners whose waiting connections were left to a sibling: tried again every turn,
    /// and at the latest when the step of `SHARE_WAIT` ends.
    deferred: Vec<usize>,
    /// When the current step of leaving waiting connections to a sibling began.
    deferred_since: Option<Instant>,
    /// Listeners whose accept() failed for lack of resources, tried again at `accept_retry`.
    accept_failed: Vec<usize>,
    accept_retry: Option<Instant>,
    /// While accept() fails for lack of resources.
    shortage: Option<Shortage>,
    next_sweep: Instant,
    /// With `request_timeout` set: its timer.
    timer: Option<RequestTimer>,
    /// When the last turn started.
    last_turn: Instant,
    events: Events,
    buf: Vec<u8>,
    notes: Vec<Note>,
    spare: Vec<u8>,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every connection finished, and every request taken was done with.
    Drained,
    /// The grace period ran out with requests still running.
    TimedOut,
}

impl EventLoop {
    pub fn new(
        poll: Poll,
        listeners: Vec<ListenerSlot>,
        sh: Shared,
        settings: &Settings,
        mut signals: Signals,
        board: Option<(Arc<Board>, usize)>,
    ) -> io::Result<EventLoop> {
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let t = settings.timeouts;
        let mut el = EventLoop {
            poll,
            listeners,
            listening: false,
            conns: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            count: 0,
            sh,
            signals,
            limits: settings.limits.into(),
            caps: Capabilities {
                max_conns: settings.max_connections,
                max_reqs: settings.max_in_flight,
                mpxs_conns: true,
            },
            idle: Duration::from_millis(t.idle_ms),
            read: Duration::from_millis(t.read_ms),
            send: Duration::from_millis(t.send_ms),
            graceful: Duration::from_millis(t.graceful_ms),
            interrupt: Duration::from_millis(t.interrupt_ms),
            max_connections: settings.max_connections.max(1),
            deadline: None,
            accept_more: Vec::new(),
            accept_batch: if settings.processes > 1 {
                ACCEPT_BATCH
            } else {
                usize::MAX
            },
            board,
            deferred: Vec::new(),
            deferred_since: None,
            accept_failed: Vec::new(),
            accept_retry: None,
            shortage: None,
            next_sweep: Instant::now() + TICK,
            timer: t.request_ms.map(|ms| {
                RequestTimer::new(
                    Duration::from_millis(ms),
                    Duration::from_millis(t.request_grace_ms),
                )
            }),
            last_turn: Instant::now(),
            events: Events::with_capacity(1024),
            buf: vec![0u8; READ_CHUNK],
            notes: Vec::with_capacity(64),
            spare: Vec::new(),
        };
        el.set_listening(true);
        Ok(el)
    }

    /// How long since the last turn started.
    pub fn since_turn(&self) -> Duration {
        self.last_turn.elapsed()
    }

    /// Requests decoded by the last turns, for Python threads to run.
    pub fn ready(&mut self) -> &mut Vec<Job> {
        &mut self.sh.ready
    }

    fn set_listening(&mut self, on: bool) {
        if on == self.listening {
            return;
        }
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let r = if on {
                self.poll
                    .registry()
                    .register(&mut l.listener, Token(i), Interest::READABLE)
            } else {
                self.poll.registry().deregister(&mut l.listener)
            };
            if let Err(e) = r {
                warn!(error = %e, "cannot change listener registration");
            }
        }
        self.listening = on;
        self.post_count();
    }

    /// Posts this worker's connection count on the board (or that it does not accept).
    fn post_count(&self) {
        if let Some((board, me)) = &self.board {
            if self.listening {
                board.set(*me, self.count);
            } else {
                board.vacate(*me);
            }
        }
    }

    /// Whether to leave the connections waiting on listener `i` to a sibling: yes while this
    /// worker holds more than `SHARE_SLACK` connections more than its least loaded accepting
    /// sibling, except for one connection each time they have waited `SHARE_WAIT`.
    fn leave_to_sibling(&mut self, i: usize) -> bool {
        let Some((board, me)) = &self.board else {
            return false;
        };
        let Some(fewest) = board.fewest_besides(*me) else {
            return false;
        };
        if self.count <= fewest.saturating_add(SHARE_SLACK) {
            self.deferred_since = None;
            return false;
        }
        let now = Instant::now();
        let since = *self.deferred_since.get_or_insert(now);
        if now.duration_since(since) >= SHARE_WAIT {
            // Left waiting a whole step: take one, and start the next step.
            self.deferred_since = Some(now);
            return false;
        }
        if !self.deferred.contains(&i) {
            self.deferred.push(i);
        }
        true
    }

    /// Sends what Python threads finished since the last turn, without polling.
    pub fn flush_notes(&mut self) {
        self.sh.notifier.drain(&mut self.notes);
        let mut notes = std::mem::take(&mut self.notes);
        for note in notes.drain(..) {
            self.on_note(note);
        }
        self.notes = notes;
    }

    /// One turn: finished output out first, then one poll (blocking until something happens
    /// or the next sweep, unless work is already waiting), its events, the notes that came
    /// in meanwhile, pending accepts, the sweep and the shutdown checks. Some(exit) ends
    /// the worker.
    /// `done` is the leader's own reason to stop (a waiting request's condition): when the
    /// notes already met it, the poll does not block.
    pub fn turn(&mut self, block: bool, done: &dyn Fn() -> bool) -> Option<Exit> {
        self.flush_notes();
        let now = Instant::now();
        self.last_turn = now;
        let mut timeout = self.next_sweep.saturating_duration_since(now);
        if !block || done() {
            timeout = Duration::ZERO;
        }
        if let Some(d) = self.deadline {
            timeout = timeout.min(d.saturating_duration_since(now));
            if self.count == 0 {
                // Only threads still in requests of closed connections (one past
                // request_timeout, stuck) keep the worker: a thread that finishes one
                // tells nobody, so look again soon.
                timeout = timeout.min(DRAIN_POLL);
            }
        }
        if !self.accept_more.is_empty() || !self.sh.ready.is_empty() {
            timeout = Duration::ZERO;
        }
        if let (Some(since), false) = (self.deferred_since, self.deferred.is_empty()) {
            timeout = timeout.min((since + SHARE_WAIT).saturating_duration_since(now));
        }
        if let Some(at) = self.accept_retry {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Some(at) = self.next_request_timer() {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        // Announce the blocking poll so a Python thread's note wakes it; a note that came in
        // since the flush above makes this poll a non-blocking one instead.
        let announced = !timeout.is_zero() && self.sh.notifier.begin_poll();
        if !announced {
            timeout = Duration::ZERO;
        }
        let polled = self.poll.poll(&mut self.events, Some(timeout));
        if announced {
            self.sh.notifier.end_poll();
        }
        if let Err(e) = polled {
            if e.kind() != io::ErrorKind::Interrupted {
                warn!(error = %e, "poll failed");
            }
            return None;
        }
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for ev in events.iter() {
            match ev.token() {
                WAKER => {}
                SIGNALS => self.on_signals(),
                Token(i) if i < CONN_BASE => self.accept(i),
                Token(t) => {
                    let slot = t - CONN_BASE;
                    let Some(conn) = self.conns.get_mut(slot).and_then(|c| c.as_mut()) else {
                        continue;
                    };
                    let buf = &mut self.buf;
                    let mut verdict = Verdict::Keep;
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        let closed = ev.is_read_closed() || ev.is_error();
                        verdict = conn.on_readable(&mut self.sh, buf, closed);
                    }
                    if verdict == Verdict::Keep && (ev.is_writable() || ev.is_write_closed()) {
                        verdict = conn.after_progress(&mut self.sh);
                    }
                    if verdict == Verdict::Keep && std::mem::take(&mut conn.resume_read) {
                        verdict = conn.on_readable(&mut self.sh, buf, true);
                    }
                    self.settle(slot, verdict);
                }
            }
        }
        self.events = events;
        self.flush_notes();
        let retry = match self.accept_retry {
            Some(at) if Instant::now() >= at => {
                self.accept_retry = None;
                std::mem::take(&mut self.accept_failed)
            }
            _ => Vec::new(),
        };
        let again = [
            std::mem::take(&mut self.accept_more),
            std::mem::take(&mut self.deferred),
            retry,
        ];
        for i in again.into_iter().flatten() {
            if self.listening {
                self.accept(i);
            }
        }
        let now = Instant::now();
        if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now + TICK;
        }
        if self.timer.is_some() {
            self.time_requests(now);
        }
        if self.deadline.is_some() {
            self.close_idle();
            if self.count == 0 && self.sh.in_flight.load(Ordering::Relaxed) == 0 {
                return Some(Exit::Drained);
            }
            if self.deadline.is_some_and(|d| now >= d) {
                warn!(
                    connections = self.count,
                    "grace period over; abandoning requests still running"
                );
                for slot in 0..self.conns.len() {
                    if let Some(c) = self.conns[slot].as_mut() {
                        c.abort_all(Abort::Shutdown);
                        self.close(slot);
                    }
                }
                return Some(Exit::TimedOut);
            }
        }
        None
    }

    fn on_signals(&mut self) {
        let mut grace = None;
        for sig in self.signals.pending() {
            let g = if sig == SIGINT {
                self.interrupt
            } else {
                self.graceful
            };
            grace = Some(grace.map_or(g, |x: Duration| x.min(g)));
            info!(
                signal = if sig == SIGINT { "SIGINT" } else { "SIGTERM" },
                "stopping: no new connections, finishing requests in flight"
            );
        }
        let Some(grace) = grace else { return };
        let d = Instant::now() + grace;
        self.deadline = Some(self.deadline.map_or(d, |x| x.min(d)));
        self.sh.stopping = true;
        self.set_listening(false);
        self.listeners.clear();
        for c in self.conns.iter_mut().flatten() {
            c.close_after_flush = true;
        }
        self.close_idle();
    }

    /// While stopping: close connections with nothing in flight. What a connection holds
    /// unread is read first (a request already sent is served, not cut off), and one that
    /// has not sent a byte yet is kept for `FRESH_GRACE` after it was accepted: a front end
    /// writes its request right after it connects.
    fn close_idle(&mut self) {
        let now = Instant::now();
        for slot in 0..self.conns.len() {
            let Some(c) = self.conns[slot].as_mut() else {
                continue;
            };
            if !c.is_idle() {
                continue;
            }
            let verdict = c.on_readable(&mut self.sh, &mut self.buf, true);
            let close = verdict == Verdict::Close
                || self.conns[slot].as_ref().is_some_and(|c| {
                    c.is_idle()
                        && (c.read_any
                            || now.saturating_duration_since(c.last_active) >= FRESH_GRACE)
                });
            if close {
                self.close(slot);
            } else {
                self.settle(slot, Verdict::Keep);
            }
        }
    }

    fn accept(&mut self, i: usize) {
        for _ in 0..self.accept_batch {
            if self.count >= self.max_connections {
                warn!(
                    max_connections = self.max_connections,
                    "connection limit reached; not accepting until one closes"
                );
                self.set_listening(false);
                return;
            }
            if self.leave_to_sibling(i) {
                return;
            }
            let Some(l) = self.listeners.get(i) else {
                return;
            };
            let stream = match l.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing waits: the next connection's wait starts afresh.
                    self.deferred_since = None;
                    return;
                }
                // Interrupted, or an error of the waiting connection itself (reset, or a
                // network error accept(2) passes on): take the next one.
                Err(e) if e.kind() == io::ErrorKind::Interrupted || connection_error(&e) => {
                    continue
                }
                Err(e) => {
                    self.accept_failed(i, &e);
                    return;
                }
            };
            if let Some(s) = self.shortage.take() {
                info!(failures = s.failures, "accepting connections again");
            }
            let codec = match l.protocol {
                Protocol::Fastcgi => {
                    Codec::Fastcgi(fastcgi::Connection::new(self.limits, self.caps))
                }
                Protocol::Scgi => Codec::Scgi(scgi::Connection::new(self.limits)),
            };
            let listening = l.listening.clone();
            let slot = match self.free.pop() {
                Some(s) => s,
                None => {
                    self.conns.push(None);
                    self.gens.push(0);
                    self.conns.len() - 1
                }
            };
            let key = (slot, self.gens[slot]);
            let mut conn = Conn::new(stream, key, codec, listening);
            if let Err(e) = self.poll.registry().register(
                &mut conn.stream,
                Token(CONN_BASE + slot),
                Interest::READABLE,
            ) {
                warn!(error = %e, "cannot register connection");
                self.free.push(slot);
                continue;
            }
            conn.interest = Some((true, false));
            self.conns[slot] = Some(conn);
            self.count += 1;
            self.post_count();
        }
        // The batch ran out before EAGAIN: come back for the rest on the next turn.
        if !self.accept_more.contains(&i) {
            self.accept_more.push(i);
        }
    }

    /// accept() failed for another reason than an empty queue or a connection's own error
    /// (EMFILE and friends): try listener `i` again after `ACCEPT_RETRY`, logging once per
    /// `ACCEPT_LOG_EVERY`.
    fn accept_failed(&mut self, i: usize, e: &io::Error) {
        let now = Instant::now();
        if !self.accept_failed.contains(&i) {
            self.accept_failed.push(i);
        }
        self.accept_retry.get_or_insert(now + ACCEPT_RETRY);
        let s = self.shortage.get_or_insert(Shortage {
            logged: None,
            unlogged: 0,
            failures: 0,
        });
        s.failures += 1;
        if s.logged
            .is_some_and(|at| now.duration_since(at) < ACCEPT_LOG_EVERY)
        {
            s.unlogged += 1;
            return;
        }
        warn!(
            error = %e,
            failures_since_last_line = s.unlogged,
            "accept failed; waiting connections are tried again every {} ms",
            ACCEPT_RETRY.as_millis()
        );
        s.logged = Some(now);
        s.unlogged = 0;
    }

    fn on_note(&mut self, note: Note) {
        match note {
            Note::Output {
                conn: (slot, gen),
                id,
            } => {
                if self.gens.get(slot) != Some(&gen) {
                    return;
                }
                let Some(c) = self.conns[slot].as_mut() else {
                    return;
                };
                c.pull_output(&mut self.sh, id, &mut self.spare);
                let v = c.after_progress(&mut self.sh);
                self.settle(slot, v);
            }
            Note::ResumeReading { conn: (slot, gen) } => {
                if self.gens.get(slot) != Some(&gen) {
                    return;
                }
                let Some(c) = self.conns[slot].as_mut() else {
                    return;
                };
                if c.read_paused && !c.reqs.iter().any(|r| r.ex.input_paused()) {
                    c.read_paused = false;
                    // Edge-triggered readiness may have fired while paused: read now.
                    let v = c.on_readable(&mut self.sh, &mut self.buf, true);
                    self.settle(slot, v);
                }
            }
        }
    }

    /// Applies a verdict: close, or bring the registered interest up to date.
    fn settle(&mut self, slot: usize, verdict: Verdict) {
        if verdict == Verdict::Close {
            self.close(slot);
            return;
        }
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        let want = c.wanted_interest();
        if c.interest == Some(want) {
            return;
        }
        let reg = self.poll.registry();
        let token = Token(CONN_BASE + slot);
        let res = match (want, c.interest.is_some()) {
            ((false, false), true) => reg.deregister(&mut c.stream).map(|_| None),
            ((false, false), false) => Ok(None),
            ((r, w), registered) => {
                let i = match (r, w) {
                    (true, true) => Interest::READABLE | Interest::WRITABLE,
                    (true, false) => Interest::READABLE,
                    _ => Interest::WRITABLE,
                };
                let res = if registered {
                    reg.reregister(&mut c.stream, token, i)
                } else {
                    reg.register(&mut c.stream, token, i)
                };
                res.map(|_| Some((r, w)))
            }
        };
        match res {
            Ok(i) => c.interest = i,
            Err(e) => {
                warn!(error = %e, "cannot update connection registration");
                self.close(slot);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        let Some(mut c) = self.conns.get_mut(slot).and_then(|c| c.take()) else {
            return;
        };
        if c.interest.is_some() {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
        if !c.reqs.is_empty() {
            c.abort_all(Abort::Disconnected);
            if let Some(timer) = &mut self.timer {
                timer.adopt(c.reqs.iter().map(|r| &r.ex));
            }
        }
        self.gens[slot] = self.gens[slot].wrapping_add(1);
        self.free.push(slot);
        self.count -= 1;
        if !self.listening && !self.sh.stopping && self.count < self.max_connections {
            self.set_listening(true);
        }
        self.post_count();
    }

    fn sweep(&mut self, now: Instant) {
        if let Some((board, me)) = &self.board {
            let in_flight = self.sh.in_flight.load(std::sync::atomic::Ordering::Relaxed);
            board.post(*me, self.sh.taken, in_flight as u64);
        }
        for slot in 0..self.conns.len() {
            let Some(c) = self.conns[slot].as_mut() else {
                continue;
            };
            if let Some(d) = c.lingering {
                if now >= d {
                    self.close(slot);
                }
                continue;
            }
            if c.owed_since.is_some() {
                // A front end that reads slowly frees room in the socket's send buffer
                // without the socket turning writable (that waits for a third of it free):
                // write what fits now, which counts as its taking output.
                let v = c.after_progress(&mut self.sh);
                self.settle(slot, v);
            }
            let Some(c) = self.conns[slot].as_mut() else {
                continue;
            };
            if c.owed_since
                .is_some_and(|t| now.duration_since(t) > self.send)
            {
                warn!(
                    send_timeout_ms = self.send.as_millis() as u64,
                    requests = c.reqs.len(),
                    owed_bytes = c.pending_write(),
                    "send timeout: the front end took no output for {:?}; closing connection",
                    self.send
                );
                c.abort_all(Abort::SendTimeout);
                self.close(slot);
                continue;
            }
            let idle_conn = c.reqs.is_empty() && !c.mid_request() && c.pending_write() == 0;
            if idle_conn {
                if now.duration_since(c.last_active) > self.idle {
                    debug!("closing idle connection");
                    self.close(slot);
                }
                continue;
            }
            // Not reading on purpose (a full body buffer, output the front end has not
            // taken, its end already seen) is no read timeout.
            if c.read_paused
                || c.write_full
                || c.peer_eof
                || now.duration_since(c.last_read) <= self.read
            {
                continue;
            }
            if c.mid_request() && c.reqs.is_empty() {
                warn!(
                    read_timeout_ms = self.read.as_millis() as u64,
                    "read timeout: request params incomplete; closing connection"
                );
                self.close(slot);
                continue;
            }
            for r in &c.reqs {
                if !r.ex.input_complete() {
                    warn!(id = r.id, "read timeout: request body stopped arriving");
                    r.ex.fail_input(Abort::ReadTimeout);
                }
            }
        }
    }
}

/// A run of accept() failures for lack of resources.
struct Shortage {
    /// When the last line about it was logged.
    logged: Option<Instant>,
    /// Failures since that line.
    unlogged: u64,
    /// Failures in all.
    failures: u64,
}

/// Errors of one waiting connection that accept(2) reports, which say nothing about the
/// listener: accept(2) asks to treat them like EAGAIN and take the next connection.
fn connection_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionAborted
        || matches!(
            e.raw_os_error(),
            Some(
                libc::EPROTO
                    | libc::ENOPROTOOPT
                    | libc::EHOSTDOWN
                    | libc::ENONET
                    | libc::EHOSTUNREACH
                    | libc::EOPNOTSUPP
                    | libc::ENETUNREACH
                    | libc::ENETDOWN
            )
        )
}
