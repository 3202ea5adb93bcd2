//! One front-end connection inside the reactor: its socket, its codec, the requests it
//! has in flight, and its write buffer. Turns codec events into dispatched requests and
//! exchange output into socket writes; ends connections with a lingering close so a front
//! end still sending a body never sees a reset.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::exchange::{Abort, Ending, Exchange, InFlight, Job, Received};
use super::framing::Framing;
use super::stream::Stream;
use super::Listening;
use super::Shared;
use crate::protocol::fastcgi::{self, ProtocolStatus};
use crate::protocol::{scgi, Next, Outcome, Params, Role};

/// How long a closing connection keeps reading (and discarding) what the front end still
/// sends after the response, before closing anyway.
pub const LINGER: Duration = Duration::from_secs(2);

pub enum Codec {
    Fastcgi(fastcgi::Connection),
    Scgi(scgi::Connection),
}

pub struct Req {
    pub id: u16,
    pub ex: Arc<Exchange>,
}

/// What the loop should do with the connection after a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Close,
}

pub struct Conn {
    pub stream: Stream,
    pub key: (usize, u32),
    pub codec: Codec,
    /// The listener it was accepted on.
    pub listening: Arc<Listening>,
    pub reqs: Vec<Req>,
    pub wbuf: Vec<u8>,
    pub wpos: usize,
    /// Reads paused because a request's body buffer is full.
    pub read_paused: bool,
    /// Reads paused because reading made the write buffer hold `output_buffer` bytes or
    /// more that the front end has not taken (management replies, refusals, error
    /// responses): they wait until it does, so one connection's output stays bounded.
    pub write_full: bool,
    pub peer_eof: bool,
    /// Some bytes have been read from the front end.
    pub read_any: bool,
    /// Close once the write buffer is flushed and no request is left.
    pub close_after_flush: bool,
    /// Close without lingering (the response must look broken to the front end).
    pub close_hard: bool,
    /// Write side shut down; reading and discarding until EOF or this deadline.
    pub lingering: Option<Instant>,
    pub last_read: Instant,
    pub last_active: Instant,
    /// Since when the front end has taken none of the output owed to it (None: nothing is
    /// owed), for the send timeout.
    pub owed_since: Option<Instant>,
    /// Request ids whose output waits for the write buffer to drain.
    pub deferred: Vec<u16>,
    /// Currently registered interest: (readable, writable); None = not registered.
    pub interest: Option<(bool, bool)>,
    /// An SCGI request was dispatched (SCGI carries one request per connection).
    pub scgi_dispatched: bool,
    /// The request was refused with an error response; what else arrives is discarded.
    pub refused: bool,
    /// A refusal with FCGI_OVERLOADED was logged at warn for this connection.
    pub overload_logged: bool,
    /// Reads were unpaused outside a readiness event: the loop must read now, as
    /// edge-triggered readiness will not fire again for data already waiting.
    pub resume_read: bool,
}

impl Conn {
    pub fn new(stream: Stream, key: (usize, u32), codec: Codec, listening: Arc<Listening>) -> Conn {
        let now = Instant::now();
        Conn {
            stream,
            key,
            codec,
            listening,
            reqs: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            read_paused: false,
            write_full: false,
            peer_eof: false,
            read_any: false,
            close_after_flush: false,
            close_hard: false,
            lingering: None,
            last_read: now,
            last_active: now,
            owed_since: None,
            deferred: Vec::new(),
            interest: None,
            scgi_dispatched: false,
            refused: false,
            resume_read: false,
            overload_logged: false,
        }
    }

    pub fn pending_write(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// The interest this connection needs now.
    pub fn wanted_interest(&self) -> (bool, bool) {
        let read = !self.read_paused && !self.write_full && !self.peer_eof;
        (read, self.pending_write() > 0)
    }

    /// True while the front end still owes bytes of a request: one not handed to Python
    /// yet, or one whose body has not all arrived.
    fn awaiting_body(&self) -> bool {
        self.mid_request() || self.reqs.iter().any(|r| !r.ex.input_complete())
    }

    /// Nothing in flight: no request received or running, no output owed.
    pub fn is_idle(&self) -> bool {
        self.reqs.is_empty() && !self.mid_request() && self.pending_write() == 0
    }

    /// True while a request is being received but has not been handed to Python yet
    /// (for the read timeout), or no request is in progress at all (for the idle timeout).
    pub fn mid_request(&self) -> bool {
        match &self.codec {
            Codec::Fastcgi(c) => c.active_requests() > self.reqs.len(),
            Codec::Scgi(c) => !c.is_pristine() && !self.scgi_dispatched && !self.refused,
        }
    }

    /// Reads everything available and processes it. `to_eagain` forces reading until
    /// EAGAIN or EOF (when the peer's FIN may already be queued behind the data, or after
    /// reads were resumed); otherwise a short read ends the call.
    pub fn on_readable(&mut self, sh: &mut Shared, buf: &mut [u8], to_eagain: bool) -> Verdict {
        loop {
            if self.read_paused || self.peer_eof {
                return Verdict::Keep;
            }
            if self.write_full {
                return Verdict::Keep;
            }
            match self.stream.read(buf) {
                Ok(0) => {
                    self.peer_eof = true;
                    return self.on_eof(sh);
                }
                Ok(n) => {
                    self.read_any = true;
                    self.last_read = Instant::now();
                    self.last_active = self.last_read;
                    if self.lingering.is_some() {
                        continue; // discarding what the front end still sends
                    }
                    if self.refused {
                        continue; // the error response is out or on its way; discard the rest
                    }
                    if self.feed(sh, &buf[..n]) == Verdict::Close {
                        return Verdict::Close;
                    }
                    if self.awaiting_body() {
                        self.stream.quickack();
                    }
                    if n < buf.len() && !to_eagain {
                        // A short read took everything the socket held. Readiness is
                        // edge-triggered, and every later arrival (data or FIN) raises a new
                        // edge, so there is no need for one more read() to see EAGAIN.
                        return Verdict::Keep;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Verdict::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!(error = %e, "read failed; closing connection");
                    self.abort_all(Abort::Disconnected);
                    return Verdict::Close;
                }
            }
        }
    }

    fn on_eof(&mut self, sh: &mut Shared) -> Verdict {
        if self.lingering.is_some() {
            return Verdict::Close;
        }
        if self.refused {
            return self.after_progress(sh);
        }
        match &mut self.codec {
            Codec::Scgi(c) => {
                if let Err(e) = c.receive_eof() {
                    if !self.scgi_dispatched {
                        warn!(reason = ?e, "SCGI connection closed mid-request");
                        return Verdict::Close;
                    }
                }
                if !self.scgi_dispatched {
                    return Verdict::Close; // an empty connection: harmless
                }
            }
            Codec::Fastcgi(c) => {
                let dropped = c.receive_eof();
                if dropped > 0 {
                    warn!(
                        requests = dropped,
                        "FastCGI connection closed before a request's params were complete; \
                         request dropped"
                    );
                }
            }
        }
        // The front end closed its side. Requests still waiting for body bytes can never
        // get them: that is an abort (front ends close instead of sending ABORT_REQUEST).
        // Requests with their whole body may still be answered if only the read side closed.
        for r in &self.reqs {
            if !r.ex.input_complete() {
                r.ex.abort(Abort::Disconnected);
            }
        }
        self.after_progress(sh)
    }

    /// Feeds received bytes to the codec and acts on its events.
    fn feed(&mut self, sh: &mut Shared, data: &[u8]) -> Verdict {
        let owed = self.wbuf.len();
        match &mut self.codec {
            Codec::Fastcgi(c) => {
                if let Err(e) = c.receive(data) {
                    if let Some(reply) = e.http_reply() {
                        return self.refuse_http(sh, &e, reply);
                    }
                    warn!(reason = %e.reason, "malformed FastCGI input; closing connection");
                    self.abort_all(Abort::Disconnected);
                    return Verdict::Close;
                }
                while let Some(ev) = c_poll_fcgi(&mut self.codec) {
                    self.on_fastcgi(sh, ev);
                }
                if let Codec::Fastcgi(c) = &mut self.codec {
                    if c.has_output() {
                        c.take_output(&mut self.wbuf);
                    }
                    // A refusal or an abort the codec answered itself ended a request
                    // without FCGI_KEEP_CONN.
                    if c.wants_close() {
                        self.close_after_flush = true;
                    }
                }
            }
            Codec::Scgi(c) => {
                let res = c.receive(data);
                while let Some(ev) = c_poll_scgi(&mut self.codec) {
                    self.on_scgi(sh, ev);
                }
                if let Err(e) = res {
                    if self.scgi_dispatched {
                        warn!("{e}; closing connection");
                        self.abort_all(Abort::Disconnected);
                        return Verdict::Close;
                    }
                    if let Some(reply) = e.http_reply() {
                        return self.refuse_http(sh, &e, reply);
                    }
                    match &e {
                        scgi::ScgiError::Limit(limit) => warn!(
                            limit = limit.key(),
                            "request rejected: it breaks the {} limit ({e})",
                            limit.key()
                        ),
                        scgi::ScgiError::Malformed(_) | scgi::ScgiError::Http => {
                            warn!("request rejected: {e}")
                        }
                    }
                    Framing::Scgi.simple_response(e.status(), e.status(), &mut self.wbuf);
                    self.refused = true;
                    self.close_after_flush = true;
                }
            }
        }
        // Reading made the connection owe more (management replies, refusals) and it owes
        // `output_buffer` already: read no more until the front end takes it. One read
        // answers at most twice its size (an 8-byte unknown-type record gets a 16-byte
        // reply), so this bounds the write buffer. Body bytes owe nothing and go on
        // arriving (bounded by the input buffer), so a front end that sends a whole body
        // before it reads is never stopped by the response the app streams meanwhile.
        if self.wbuf.len() > owed && self.pending_write() >= sh.output_buffer {
            self.write_full = true;
        }
        self.after_progress(sh)
    }

    /// An HTTP client connected to this FastCGI or SCGI port: answer it with the codec's
    /// plain-text reply, then close (discarding what else it sends).
    fn refuse_http(&mut self, sh: &mut Shared, e: &dyn std::fmt::Display, reply: &[u8]) -> Verdict {
        warn!("{e}; answered 400 and closed the connection");
        self.wbuf.extend_from_slice(reply);
        self.refused = true;
        self.close_after_flush = true;
        self.after_progress(sh)
    }

    fn on_fastcgi(&mut self, sh: &mut Shared, ev: fastcgi::Event) {
        use fastcgi::Event as E;
        match ev {
            E::Request { id, role, params } => {
                self.dispatch(sh, id, role, params, Framing::Fastcgi { id })
            }
            E::Stdin { id, data } => {
                if let Some(r) = self.reqs.iter().find(|r| r.id == id) {
                    if r.ex.push_input(data) {
                        self.read_paused = true;
                    }
                }
            }
            E::StdinEnd { id } => {
                if let Some(r) = self.reqs.iter().find(|r| r.id == id) {
                    r.ex.end_input();
                }
            }
            E::Abort { id } => {
                // A request the worker answered itself (a rejection) is already over.
                if let Some(r) = self.reqs.iter().find(|r| r.id == id) {
                    debug!(id, "FCGI_ABORT_REQUEST");
                    r.ex.abort(Abort::Requested);
                }
            }
            E::Refused { id, status } => {
                // Once per connection at warn: a front end can send such records by the
                // thousand, 16 bytes each.
                if status == ProtocolStatus::Overloaded && !self.overload_logged {
                    self.overload_logged = true;
                    warn!(
                        id,
                        max_in_flight = sh.max_in_flight,
                        "request refused (FCGI_OVERLOADED): server busy: this connection \
                         already holds max_in_flight requests (further refusals on it are \
                         logged at debug)"
                    );
                } else {
                    debug!(id, ?status, "FCGI_BEGIN_REQUEST refused");
                }
            }
            E::Rejected { id, limit } => {
                warn!(
                    limit = limit.key(),
                    id,
                    "request rejected: it breaks the {} limit",
                    limit.key()
                );
                if let Some(r) = self.reqs.iter().find(|r| r.id == id) {
                    r.ex.fail_input(Abort::BodyTooLarge);
                } else {
                    let framing = Framing::Fastcgi { id };
                    framing.simple_response(limit.status(), limit.status(), &mut self.wbuf);
                    self.end_request(id, Outcome::Complete);
                }
            }
        }
    }

    fn on_scgi(&mut self, sh: &mut Shared, ev: scgi::Event) {
        match ev {
            scgi::Event::Request { params, .. } => {
                self.scgi_dispatched = true;
                self.dispatch(sh, 0, Role::Responder, params, Framing::Scgi);
            }
            scgi::Event::Body(data) => {
                if let Some(r) = self.reqs.first() {
                    if r.ex.push_input(data) {
                        self.read_paused = true;
                    }
                }
            }
            scgi::Event::BodyEnd => {
                if let Some(r) = self.reqs.first() {
                    r.ex.end_input();
                }
            }
        }
    }

    /// Hands a decoded request to a Python thread, or answers it here when the worker
    /// cannot take it.
    fn dispatch(&mut self, sh: &mut Shared, id: u16, role: Role, params: Params, framing: Framing) {
        // While stopping, a request that arrives on a connection already held is served
        // (the connection then closes): when the worker is being replaced, refusing it
        // would fail a request its successor was there to take.
        let refuse = if sh.in_flight.load(std::sync::atomic::Ordering::Relaxed) >= sh.max_in_flight
        {
            Some("server busy: max_in_flight reached")
        } else {
            None
        };
        if let Some(why) = refuse {
            warn!(id, "request refused: {why}");
            framing.simple_response("503 Service Unavailable", why, &mut self.wbuf);
            self.end_request(id, Outcome::Complete);
            return;
        }
        let ex = Exchange::new(
            self.key,
            sh.notifier.clone(),
            sh.input_buffer,
            sh.output_buffer,
            Received {
                params,
                role,
                framing,
                // The read that completed the params: no clock read of its own.
                at: self.last_read,
            },
            sh.spare_buffers.take(),
        );
        if let Some(limit) = sh.request_timeout {
            // Later requests' deadlines come after the earliest one already set.
            sh.request_check.get_or_insert(self.last_read + limit);
        }
        let job = Job {
            exchange: ex.clone(),
            listening: self.listening.clone(),
            counted: InFlight::count(&sh.in_flight),
        };
        // `max_in_flight` above bounds this queue.
        sh.ready.push(job);
        sh.count_taken();
        self.reqs.push(Req { id, ex });
    }

    /// A request on this connection is over (the output it got is in `wbuf`): the codec
    /// says what that means for the connection (`crate::protocol::lifecycle`).
    fn end_request(&mut self, id: u16, outcome: Outcome) {
        let next = match &mut self.codec {
            Codec::Fastcgi(c) => {
                let next = c.end(id, outcome);
                c.take_output(&mut self.wbuf);
                next
            }
            Codec::Scgi(c) => c.end(outcome),
        };
        match next {
            Next::Keep => {}
            Next::Close => self.close_after_flush = true,
            Next::CloseHard => {
                self.close_after_flush = true;
                self.close_hard = true;
            }
        }
    }

    /// Moves a request's output into the write buffer (or defers it while the buffer is
    /// full) and ends the request when its output is complete.
    pub fn pull_output(&mut self, sh: &mut Shared, id: u16, spare: &mut Vec<u8>) {
        if self.pending_write() >= sh.output_buffer {
            if !self.deferred.contains(&id) {
                self.deferred.push(id);
            }
            return;
        }
        let Some(pos) = self.reqs.iter().position(|r| r.id == id) else {
            return;
        };
        let ended = self.reqs[pos].ex.take_output(spare);
        if self.pending_write() == 0 {
            self.wbuf.clear();
            self.wpos = 0;
            std::mem::swap(&mut self.wbuf, spare);
        } else {
            self.wbuf.extend_from_slice(spare);
        }
        let Some((ending, left)) = ended else { return };
        sh.spare_buffers.recycle(left);
        self.reqs.swap_remove(pos);
        // The finished request may have held reads paused (its body buffer was full and
        // the app answered without reading it): whatever still arrives is discarded now.
        if self.read_paused && !self.reqs.iter().any(|r| r.ex.input_paused()) {
            self.read_paused = false;
            self.resume_read = true;
        }
        self.last_active = Instant::now();
        self.end_request(
            id,
            match ending {
                Ending::Complete => Outcome::Complete,
                Ending::Broken => Outcome::Broken,
            },
        );
    }

    /// Writes what is buffered. Err = the connection is dead.
    pub fn flush(&mut self) -> io::Result<()> {
        let start = self.wpos;
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
            self.owed_since = None;
            return Ok(());
        }
        if self.wpos > start || self.owed_since.is_none() {
            self.owed_since = Some(Instant::now());
        }
        if self.wpos > 1 << 20 {
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
        Ok(())
    }

    /// After any progress: flush, take deferred output, and decide whether to close.
    pub fn after_progress(&mut self, sh: &mut Shared) -> Verdict {
        let mut spare = Vec::new();
        loop {
            if let Err(e) = self.flush() {
                debug!(error = %e, "write failed; closing connection");
                self.abort_all(Abort::Disconnected);
                return Verdict::Close;
            }
            if self.deferred.is_empty() || self.pending_write() >= sh.output_buffer {
                break;
            }
            let ids = std::mem::take(&mut self.deferred);
            for id in ids {
                self.pull_output(sh, id, &mut spare);
            }
        }
        if self.write_full && self.pending_write() < sh.output_buffer {
            // The front end took enough: read again, now (readiness is edge-triggered).
            self.write_full = false;
            self.resume_read = true;
        }
        if self.pending_write() > 0 {
            return Verdict::Keep;
        }
        if self.close_hard {
            self.abort_all(Abort::Disconnected);
            return Verdict::Close;
        }
        let done = self.reqs.is_empty() && !self.mid_request();
        if done && (self.close_after_flush || (self.peer_eof && self.lingering.is_none())) {
            if self.peer_eof {
                return Verdict::Close;
            }
            if self.lingering.is_none() {
                self.stream.shutdown_write();
                self.lingering = Some(Instant::now() + LINGER);
            }
        }
        Verdict::Keep
    }

    pub fn abort_all(&mut self, why: Abort) {
        for r in &self.reqs {
            r.ex.abort(why);
        }
    }
}

fn c_poll_fcgi(codec: &mut Codec) -> Option<fastcgi::Event> {
    match codec {
        Codec::Fastcgi(c) => c.poll_event(),
        Codec::Scgi(_) => None,
    }
}

fn c_poll_scgi(codec: &mut Codec) -> Option<scgi::Event> {
    match codec {
        Codec::Scgi(c) => c.poll_event(),
        Codec::Fastcgi(_) => None,
    }
}
