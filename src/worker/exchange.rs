//! The state one request shares between the reactor and the Python thread running it.
//!
//! Request body bytes flow reactor → Python through a bounded queue (`input_buffer` bytes;
//! past that the reactor stops reading from the connection). Response bytes, already framed
//! for the connection's protocol, flow Python → reactor through a buffer bounded by
//! `output_buffer` bytes: past that the Python thread waits, detached from the interpreter,
//! so a slow client pauses the app instead of growing memory. An abort (FCGI_ABORT_REQUEST,
//! a connection gone, a timeout, a broken limit) wakes the waiter.
//!
//! A Python thread that has to wait leads the reactor itself when nobody does (the
//! notifier's `wait_io`), so a worker with a single thread still makes progress on the body
//! it is reading or the response it is writing.
//!
//! A request past `request_timeout` is ended by the reactor itself ([`Exchange::time_out`]):
//! the Python thread may be stuck and never come back to end it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::Instant;

use super::framing::Framing;
use super::notify::Notifier;
use crate::protocol::{Params, Role};

/// One request, ready to run.
pub struct Job {
    /// The request, its params and framing included.
    pub exchange: Arc<Exchange>,
    /// The listener its connection was accepted on.
    pub listening: Arc<super::Listening>,
    /// Keeps the request counted while the job exists.
    pub counted: InFlight,
}

/// Counts a request as in flight from its dispatch until the Python thread that takes its
/// job is done with it, or the job is dropped unrun, whatever happens to its connection
/// meanwhile: what `max_in_flight` bounds (a request whose connection is gone still holds
/// its params while it waits for a thread).
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn count(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a request can no longer be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// FCGI_ABORT_REQUEST from the front end: END_REQUEST is still owed.
    Requested,
    /// The connection is gone: nothing more can be written.
    Disconnected,
    /// No body bytes arrived within the read timeout.
    ReadTimeout,
    /// The front end took none of the output owed to it within the send timeout.
    SendTimeout,
    /// The body broke `max_body`.
    BodyTooLarge,
    /// The worker is stopping and the grace period ran out.
    Shutdown,
    /// The request ran past `request_timeout`: the reactor ended it.
    RequestTimeout,
}

impl Abort {
    pub fn reason(self) -> &'static str {
        match self {
            Abort::Requested => "aborted by the front end",
            Abort::Disconnected => "connection closed",
            Abort::ReadTimeout => "request body read timeout",
            Abort::SendTimeout => "the front end took no output within send_timeout",
            Abort::BodyTooLarge => "request body larger than max_body",
            Abort::Shutdown => "worker shutting down",
            Abort::RequestTimeout => "the request ran past request_timeout",
        }
    }
}

/// How the reactor should end the request once its output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Output complete (it includes END_REQUEST for FastCGI).
    Complete,
    /// The app failed after headers were sent: the response must look broken to the front
    /// end, so the connection is closed without ending the request cleanly.
    Broken,
}

#[derive(Default)]
struct State {
    input: VecDeque<Vec<u8>>,
    input_offset: usize,
    input_buffered: usize,
    /// Body bytes pushed so far, against `content_length`.
    input_received: u64,
    input_eof: bool,
    /// The reactor stopped reading this connection because `input_buffered` is high.
    input_paused: bool,
    output: Vec<u8>,
    ending: Option<Ending>,
    /// The reactor has this exchange in its pending queue already.
    queued: bool,
    /// The Python thread waiting for a change (only then is an unpark worth its system
    /// call).
    waiter: Option<Thread>,
    /// Bumped by every change a waiter may be waiting for.
    version: u64,
    /// Nothing more can be written (the front end aborted or is gone).
    abort: Option<Abort>,
    /// Nothing more can be read (timeout, body limit); the response may still be written.
    input_error: Option<Abort>,
    /// The reactor has taken output of this request: its headers may be on the wire.
    delivered: bool,
}

pub struct Exchange {
    /// Connection slot and generation, so a notification for a closed connection whose
    /// slot was reused is recognised as stale.
    pub conn: (usize, u32),
    state: Mutex<State>,
    notifier: Arc<Notifier>,
    input_limit: usize,
    output_limit: usize,
    /// CONTENT_LENGTH when the front end gave one.
    content_length: Option<u64>,
    /// The request's params, as decoded (the environ borrows from them).
    params: Params,
    /// What the front end asks of the app (FastCGI §6).
    role: Role,
    framing: Framing,
    /// When the read that completed the params happened: what `request_timeout` counts
    /// from.
    pub started: Instant,
    /// The Python thread running the request (`PyThread_get_thread_ident`), 0 when none
    /// does (not started, or done). Set only while `request_timeout` is, and only with the
    /// interpreter attached, so that the one that interrupts the thread, also attached,
    /// sees it still in this request.
    runner: AtomicU64,
    /// `wsgid.RequestTimeout` was raised in the runner, or is pending there (changed only
    /// with the interpreter attached, like `runner`).
    interrupted: AtomicBool,
}

/// A request as the reactor decoded it.
pub struct Received {
    pub params: Params,
    pub role: Role,
    pub framing: Framing,
    /// When the read that completed the params happened.
    pub at: Instant,
}

/// Outcome of a wait for body bytes.
pub enum Input {
    Data(Vec<u8>),
    Eof,
    Aborted(Abort),
}

impl Exchange {
    pub fn new(
        conn: (usize, u32),
        notifier: Arc<Notifier>,
        input_limit: usize,
        output_limit: usize,
        request: Received,
        output: Vec<u8>,
    ) -> Arc<Exchange> {
        let Received {
            params,
            role,
            framing,
            at: started,
        } = request;
        // The body is complete once CONTENT_LENGTH bytes arrived, even if a front end never
        // sends the empty FCGI_STDIN (an unparseable length is the environ's 400, later).
        // An Authorizer request has no body whatever length it names (FastCGI §6.3).
        let content_length = match role {
            Role::Responder => params
                .get(b"CONTENT_LENGTH")
                .and_then(crate::protocol::parse_decimal),
            Role::Authorizer => None,
        };
        Arc::new(Exchange {
            conn,
            state: Mutex::new(State {
                output,
                ..State::default()
            }),
            notifier,
            input_limit: input_limit.max(1),
            output_limit: output_limit.max(1),
            content_length,
            params,
            role,
            framing,
            started,
            runner: AtomicU64::new(0),
            interrupted: AtomicBool::new(false),
        })
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// FastCGI request id (0 for SCGI).
    fn id(&self) -> u16 {
        match self.framing {
            Framing::Fastcgi { id } => id,
            Framing::Scgi => 0,
        }
    }

    /// "GET /path?q (fcgi 1)", for log lines about this request; formatted only when a line
    /// is written.
    pub fn ident(&self) -> Ident<'_> {
        Ident(self)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it; the state is plain
        // data and stays consistent for our purposes.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Releases the lock until the state changes (or, spuriously, earlier: callers loop).
    fn wait<'a>(&'a self, mut g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let seen = g.version;
        g.waiter = Some(std::thread::current());
        drop(g);
        self.notifier.wait_io(&|| self.lock().version != seen);
        let mut g = self.lock();
        g.waiter = None;
        g
    }

    /// Records a change, releases the lock and wakes the Python thread if it is waiting.
    fn wake(&self, mut g: MutexGuard<'_, State>) {
        g.version = g.version.wrapping_add(1);
        let waiter = g.waiter.take();
        drop(g);
        if let Some(t) = waiter {
            t.unpark();
        }
    }

    // ---- reactor side ----------------------------------------------------------------

    /// Queues body bytes. Returns true when the buffer is over its limit and the reactor
    /// should stop reading the connection until `input_resumable`.
    pub fn push_input(&self, data: Vec<u8>) -> bool {
        let mut g = self.lock();
        if g.abort.is_some() || g.ending.is_some() {
            return false;
        }
        g.input_buffered += data.len();
        g.input_received += data.len() as u64;
        g.input.push_back(data);
        let over = g.input_buffered > self.input_limit;
        if over {
            g.input_paused = true;
        }
        self.wake(g);
        over
    }

    pub fn end_input(&self) {
        let mut g = self.lock();
        g.input_eof = true;
        self.wake(g);
    }

    /// True while this exchange holds the connection's reads paused.
    pub fn input_paused(&self) -> bool {
        self.lock().input_paused
    }

    pub fn input_complete(&self) -> bool {
        let g = self.lock();
        g.input_eof
            || g.abort.is_some()
            || g.input_error.is_some()
            || g.ending.is_some()
            || self.content_length.is_some_and(|cl| g.input_received >= cl)
    }

    /// Fails further reads of the body; the app may still answer (e.g. with 413 or 408).
    pub fn fail_input(&self, why: Abort) {
        let mut g = self.lock();
        if g.input_error.is_none() {
            g.input_error = Some(why);
        }
        g.input.clear();
        g.input_buffered = 0;
        self.wake(g);
    }

    /// The input failure, if any (for the response the app's error turns into).
    pub fn input_error(&self) -> Option<Abort> {
        self.lock().input_error
    }

    pub fn abort(&self, why: Abort) {
        let mut g = self.lock();
        if g.abort.is_none() {
            g.abort = Some(why);
        }
        g.input.clear();
        g.input_buffered = 0;
        g.output.clear(); // whole records only: nothing partial is ever left in this buffer
        self.wake(g);
    }

    /// The request's last output was handed over (`finish_with` was called).
    pub fn is_finished(&self) -> bool {
        self.lock().ending.is_some()
    }

    pub fn aborted(&self) -> Option<Abort> {
        self.lock().abort
    }

    /// Takes the framed output written so far (swapping in `spare` to reuse allocations).
    /// Once the request has ended: how, and the buffer it leaves behind, for another
    /// request. Wakes the Python thread if it waits for room.
    pub fn take_output(&self, spare: &mut Vec<u8>) -> Option<(Ending, Vec<u8>)> {
        let mut g = self.lock();
        g.queued = false;
        spare.clear();
        std::mem::swap(&mut g.output, spare);
        if !spare.is_empty() {
            g.delivered = true;
        }
        let ended = g.ending.map(|e| (e, std::mem::take(&mut g.output)));
        self.wake(g);
        ended
    }

    // ---- Python thread side (call these detached from the interpreter) ----------------

    /// Waits for body bytes; returns at most `max` bytes.
    pub fn read_input(&self, max: usize) -> Input {
        let mut g = self.lock();
        loop {
            if let Some(a) = g.abort.or(g.input_error) {
                return Input::Aborted(a);
            }
            if let Some(front) = g.input.front() {
                let off = g.input_offset;
                let avail = front.len() - off;
                let data = if off == 0 && avail <= max {
                    g.input_offset = 0;
                    g.input.pop_front().unwrap_or_default()
                } else {
                    let n = avail.min(max);
                    let chunk = front[off..off + n].to_vec();
                    if n == avail {
                        g.input.pop_front();
                        g.input_offset = 0;
                    } else {
                        g.input_offset += n;
                    }
                    chunk
                };
                g.input_buffered -= data.len();
                let resume = g.input_paused && g.input_buffered <= self.input_limit / 2;
                if resume {
                    g.input_paused = false;
                }
                drop(g);
                if resume {
                    self.notifier.resume_reading(self.conn);
                }
                return Input::Data(data);
            }
            if g.input_eof {
                return Input::Eof;
            }
            g = self.wait(g);
        }
    }

    /// Appends framed output produced by `f` directly into the shared buffer. Returns
    /// Ok(true) when the buffer is now over its limit and the caller should `wait_room`
    /// (detached from the interpreter). Err when the request was aborted.
    pub fn append(&self, f: impl FnOnce(&mut Vec<u8>)) -> Result<bool, Abort> {
        let mut g = self.lock();
        if let Some(a) = g.abort {
            return Err(a);
        }
        f(&mut g.output);
        self.schedule(&mut g);
        Ok(g.output.len() > self.output_limit)
    }

    /// Waits until the output buffer is back under its limit.
    pub fn wait_room(&self) -> Result<(), Abort> {
        let mut g = self.lock();
        loop {
            if let Some(a) = g.abort {
                return Err(a);
            }
            if g.output.len() <= self.output_limit {
                return Ok(());
            }
            g = self.wait(g);
        }
    }

    /// Appends the last output (even after an abort: FastCGI still owes END_REQUEST after
    /// FCGI_ABORT_REQUEST, §5.4) and ends the request, unless it has ended already (the
    /// reactor ends a request past `request_timeout` itself).
    pub fn finish_with(&self, ending: Ending, f: impl FnOnce(&mut Vec<u8>)) {
        let mut g = self.lock();
        if g.ending.is_some() {
            return;
        }
        f(&mut g.output);
        g.ending = Some(ending);
        self.schedule(&mut g);
    }

    /// Ends a request the front end aborted or left: FastCGI still owes END_REQUEST after
    /// FCGI_ABORT_REQUEST (§5.4); for a closed connection the bytes go nowhere.
    pub fn end_stopped(&self) {
        let framing = self.framing;
        self.finish_with(Ending::Complete, |out| framing.end(0, out));
    }

    /// Ends the request with a short plain-text response from wsgid itself (an error, or
    /// 404 outside the mount point).
    pub fn answer(&self, status: &str, text: &str) {
        let framing = self.framing;
        self.finish_with(Ending::Complete, |out| {
            framing.simple_response(status, text, out)
        });
    }

    // ---- request_timeout --------------------------------------------------------------

    /// Ends a request past `request_timeout`, from the reactor, whatever its Python thread
    /// is doing: what it wrote and did not hand over yet is dropped, its waits for body
    /// bytes or for room end, and whatever it does with the request from now on fails with
    /// [`Abort::RequestTimeout`]. The response is a 504 if none of it was handed over yet;
    /// otherwise it is left broken (the front end must not take it for complete). The
    /// reactor takes the output (`take_output`) right after. None when the request had
    /// ended already (its output is on its way); else the ending and whether it is a 504.
    pub fn time_out(&self) -> Option<(Ending, bool)> {
        let mut g = self.lock();
        if g.ending.is_some() {
            return None;
        }
        let stopped = g.abort.is_some();
        g.abort.get_or_insert(Abort::RequestTimeout);
        g.input.clear();
        g.input_buffered = 0;
        g.output.clear();
        let (ending, answered) = if stopped {
            // Aborted by the front end, or its connection gone: nobody waits for a response,
            // but FastCGI still owes END_REQUEST (bytes to nowhere when the connection is
            // gone).
            self.framing.end(0, &mut g.output);
            (Ending::Complete, false)
        } else if g.delivered {
            (Ending::Broken, false)
        } else {
            self.framing.simple_response(
                "504 Gateway Timeout",
                "Gateway Timeout: the request took too long\n",
                &mut g.output,
            );
            (Ending::Complete, true)
        };
        g.ending = Some(ending);
        // The reactor takes the output itself: no note.
        g.queued = true;
        self.wake(g);
        Some((ending, answered))
    }

    /// The Python thread running this request (see `runner`), 0 if none.
    pub fn runner(&self) -> u64 {
        self.runner.load(Ordering::Relaxed)
    }

    /// Records the thread that runs the request (its id), or that it is done with it (0).
    /// Call with the interpreter attached.
    pub fn set_runner(&self, thread: u64) {
        self.runner.store(thread, Ordering::Relaxed);
    }

    /// Marks the runner as interrupted; true if it was already (the exception is pending
    /// there, or was raised). Call with the interpreter attached.
    pub fn mark_interrupted(&self) -> bool {
        self.interrupted.swap(true, Ordering::Relaxed)
    }

    /// The runner was interrupted (see `mark_interrupted`).
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    fn schedule(self: &Exchange, g: &mut MutexGuard<'_, State>) {
        if !g.queued {
            g.queued = true;
            self.notifier.output_ready(self.conn, self.id());
        }
    }
}

/// Text with its control characters escaped (`\n`, `\u{1b}`), for log lines.
struct Escaped<'a>(std::borrow::Cow<'a, str>);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// The request an [`Exchange`] serves, as log lines name it: the method, REQUEST_URI (else
/// PATH_INFO) and the protocol with the FastCGI request id.
pub struct Ident<'a>(&'a Exchange);

impl std::fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.0.params;
        /// The value as text, control characters escaped: a newline in a request line
        /// must not start a forged log line.
        fn text(v: Option<&[u8]>) -> Escaped<'_> {
            Escaped(String::from_utf8_lossy(v.unwrap_or(b"")))
        }
        let uri = match p.get(b"REQUEST_URI") {
            Some(u) if !u.is_empty() => Some(u),
            _ => p.get(b"PATH_INFO"),
        };
        write!(f, "{} {}", text(p.get(b"REQUEST_METHOD")), text(uri))?;
        match self.0.framing {
            Framing::Fastcgi { id } => write!(f, " (fcgi {id})"),
            Framing::Scgi => write!(f, " (scgi)"),
        }
    }
}
