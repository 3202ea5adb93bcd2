//! Application side of one FastCGI transport connection: a decoder state machine that turns
//! the bytes a front end sends into request events.
//!
//! Records are parsed straight from the caller's buffer when a whole record is present;
//! only a record cut by a read boundary is buffered. PARAMS streams are decoded pair by pair
//! as they arrive (a pair may be split anywhere, even inside its length fields), so limits
//! are enforced on each declared length before its bytes are buffered. Management records
//! and refused BEGIN_REQUESTs are answered by the codec itself (see [`Connection::receive`]).
//!
//! The codec also owns each request's lifecycle (`crate::protocol::lifecycle`): the
//! application side tells it how a request ended ([`Connection::end`]) and is told whether
//! the connection stays open, so FCGI_KEEP_CONN, aborts before the params are complete and
//! the END_REQUEST of a broken response are decided here.

use std::collections::VecDeque;
use std::mem;

use super::{
    encode_end_record, encode_header, write_name_value, Capabilities, Header, PairHeader, Pairs,
    ProtocolError, ProtocolStatus, ABORT_REQUEST, AUTHORIZER, BEGIN_REQUEST, DATA, END_REQUEST,
    GET_VALUES, GET_VALUES_RESULT, HEADER_LEN, KEEP_CONN, MAX_CONNS_NAME, MAX_CONTENT,
    MAX_REQS_NAME, MPXS_CONNS_NAME, NULL_REQUEST_ID, PARAMS, RESPONDER, STDERR, STDIN, STDOUT,
    UNKNOWN_TYPE, VERSION_1,
};
use crate::protocol::lifecycle::{Next, Outcome, Role};
use crate::protocol::{parse_decimal_saturating, LimitKind, Limits, Params};

/// What the decoder found, in arrival order.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// The PARAMS stream of a request is complete (empty PARAMS record seen). An
    /// Authorizer request has no body (FastCGI §6.3): its `StdinEnd` follows at once, and
    /// whatever FCGI_STDIN the front end sends for it is ignored.
    Request { id: u16, role: Role, params: Params },
    /// Content of one non-empty FCGI_STDIN record of an active request.
    Stdin { id: u16, data: Vec<u8> },
    /// The empty FCGI_STDIN record: end of the body.
    StdinEnd { id: u16 },
    /// FCGI_ABORT_REQUEST for a request already handed on (`Request` or `Rejected`
    /// emitted) and not yet ended. One aborted while its params were still arriving never
    /// began: the codec ends it itself, with no event (FastCGI §5.4).
    Abort { id: u16 },
    /// The request broke a limit; from now on the codec silently discards its PARAMS/STDIN.
    /// The caller answers (e.g. a 4xx on STDOUT, END_REQUEST included) and then calls
    /// [`Connection::end`].
    Rejected { id: u16, limit: LimitKind },
    /// A BEGIN_REQUEST was refused by the codec itself (unknown role, no multiplexing,
    /// overloaded) and its END_REQUEST is queued in the codec's output; told for the log.
    /// Without FCGI_KEEP_CONN the connection then closes ([`Connection::wants_close`]).
    Refused { id: u16, status: ProtocolStatus },
}

/// Where the decoder is inside the byte stream.
#[derive(Debug, Clone, Copy)]
enum Rx {
    /// Collecting the 8 header bytes (`hdr_have` of them are in `hdr_buf`).
    Header,
    /// `left` content bytes of the record still to come, handled by `sink`.
    Content {
        hdr: Header,
        left: usize,
        sink: Sink,
    },
    /// `left` padding bytes still to skip (FastCGI §3.3: receivers skip paddingData).
    Padding { left: usize },
}

/// What to do with the content of the current record, decided from its header.
#[derive(Debug, Clone, Copy)]
enum Sink {
    /// Ignore the content (inactive id, DATA, discarded request, unknown type).
    Skip,
    /// Part of the PARAMS stream of request `id`.
    Params(u16),
    /// A STDIN record of request `id` (empty: end of the body).
    Stdin(u16),
    /// FCGI_ABORT_REQUEST for `id`; its content is ignored.
    Abort(u16),
    /// A management record of a type we do not know: answer FCGI_UNKNOWN_TYPE.
    UnknownManagement,
    /// A discrete record handled once whole (BEGIN_REQUEST, GET_VALUES).
    Discrete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Receiving the PARAMS stream.
    Params,
    /// `Request` emitted; receiving STDIN.
    Body,
    /// Empty STDIN seen; further STDIN is ignored.
    Ended,
    /// `Rejected` emitted; PARAMS and STDIN are discarded.
    Discard,
}

/// One active request (begun, not yet finished by the application).
#[derive(Debug)]
struct Req {
    id: u16,
    keep_conn: bool,
    role: Role,
    phase: Phase,
    params: Params,
    /// Sum of name and value lengths decoded so far (what `max_params_bytes` bounds).
    params_bytes: usize,
    /// Bytes of a name/value pair split across records, at most 8 + `max_params_bytes`.
    carry: Vec<u8>,
    /// Whether `params` got its capacity hint yet.
    sized: bool,
    /// STDIN bytes received so far.
    body: u64,
}

impl Req {
    /// Checks a pair's declared lengths against the limits before its bytes are taken.
    fn check(&self, h: &PairHeader, limits: &Limits) -> Result<(), LimitKind> {
        if self.params.len() >= limits.max_params {
            return Err(LimitKind::ParamsCount);
        }
        // Saturating: a 4-byte length declares up to 2^31-1 bytes.
        let bytes = self
            .params_bytes
            .saturating_add(h.name_len)
            .saturating_add(h.value_len);
        if bytes > limits.max_params_bytes {
            return Err(LimitKind::ParamsBytes);
        }
        Ok(())
    }

    fn push(&mut self, h: &PairHeader, pair: &[u8]) {
        self.params
            .push_joined(&pair[h.fields..h.total()], h.name_len);
        self.params_bytes += h.name_len + h.value_len;
    }

    /// Decodes the next piece of the PARAMS stream (FastCGI §3.4, §5.2).
    fn feed_params(&mut self, chunk: &[u8], limits: &Limits) -> Result<(), LimitKind> {
        let mut rest = chunk;
        // First complete a pair left over from an earlier record.
        while !self.carry.is_empty() {
            let need = match PairHeader::decode(&self.carry) {
                Ok(h) => {
                    self.check(&h, limits)?;
                    if self.carry.len() >= h.total() {
                        let carry = mem::take(&mut self.carry);
                        self.push(&h, &carry);
                        self.carry = carry;
                        self.carry.clear();
                        break;
                    }
                    h.total()
                }
                Err(need) => need,
            };
            if rest.is_empty() {
                return Ok(());
            }
            let take = (need - self.carry.len()).min(rest.len());
            self.carry.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        // Then take whole pairs straight from the record.
        while !rest.is_empty() {
            match PairHeader::decode(rest) {
                Ok(h) => {
                    self.check(&h, limits)?;
                    let total = h.total();
                    if rest.len() < total {
                        // Grow with the data actually received, not with what a length
                        // field merely declares.
                        self.carry.reserve(total.min(MAX_CONTENT));
                        self.carry.extend_from_slice(rest);
                        return Ok(());
                    }
                    self.push(&h, &rest[..total]);
                    rest = &rest[total..];
                }
                Err(_) => {
                    self.carry.extend_from_slice(rest);
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Decoder for one transport connection, application side.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    caps: Capabilities,
    rx: Rx,
    hdr_buf: [u8; HEADER_LEN],
    hdr_have: usize,
    /// Content of a STDIN or discrete record that arrived in pieces.
    partial: Vec<u8>,
    reqs: Vec<Req>,
    events: VecDeque<Event>,
    out: Vec<u8>,
    failed: Option<ProtocolError>,
    /// A record header was read: the connection is past its first bytes.
    started: bool,
    /// A request without FCGI_KEEP_CONN has ended: the connection closes once its output
    /// is written (FastCGI §5.1).
    closing: bool,
}

impl Connection {
    pub fn new(limits: Limits, caps: Capabilities) -> Self {
        Connection {
            limits,
            caps,
            rx: Rx::Header,
            hdr_buf: [0; HEADER_LEN],
            hdr_have: 0,
            partial: Vec::new(),
            reqs: Vec::new(),
            events: VecDeque::new(),
            out: Vec::new(),
            failed: None,
            started: false,
            closing: false,
        }
    }

    /// Feed bytes read from the socket (any split: 1 byte at a time must work). Decodes every
    /// complete record. Management records (request id 0) are answered internally by
    /// queuing output: FCGI_GET_VALUES -> FCGI_GET_VALUES_RESULT with only the asked-for
    /// known variables (FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS as "0"/"1"), unknown
    /// management types -> FCGI_UNKNOWN_TYPE. BEGIN_REQUEST with a role other than
    /// RESPONDER or AUTHORIZER (FILTER, FastCGI §6.4, or an unknown role) ->
    /// END_REQUEST{FCGI_UNKNOWN_ROLE} queued, request not created.
    ///
    /// Err = the connection is unusable (bad version, BEGIN_REQUEST for an id already
    /// active, malformed name/value lengths inside PARAMS, a record type that only an
    /// application sends such as STDOUT, STDIN before PARAMS complete...); the caller closes
    /// it. Once an error is returned, every later call returns it again.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.receive_inner(data);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the codec's own pending output (management replies, refused
    /// BEGIN_REQUESTs, the END_REQUEST of requests it ended) to `out` and clears it.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// The application side is done with request `id`; later records for it are ignored
    /// (FastCGI §3.3: records for inactive ids are ignored). With [`Outcome::Complete`] the
    /// caller has written the whole response, END_REQUEST included. With
    /// [`Outcome::Broken`], when other requests share the connection, the codec queues an
    /// END_REQUEST with appStatus 1 in its output (the front end ends that request as an
    /// error and the others go on); when none does, the connection must close without
    /// lingering, so the front end sees the response cut off. An unknown id changes nothing.
    ///
    /// Returns what the connection does next: [`Next::Close`] once any request without
    /// FCGI_KEEP_CONN has ended (FastCGI §5.1).
    pub fn end(&mut self, id: u16, outcome: Outcome) -> Next {
        let Some(i) = self.req_index(id) else {
            return self.next();
        };
        let req = self.reqs.swap_remove(i);
        if outcome == Outcome::Broken {
            if self.reqs.is_empty() {
                return Next::CloseHard;
            }
            encode_end_record(id, 1, ProtocolStatus::RequestComplete, &mut self.out);
        }
        if !req.keep_conn {
            self.closing = true;
        }
        self.next()
    }

    /// Whether the connection closes once its output is written and no request is left:
    /// a request without FCGI_KEEP_CONN has ended or was refused (FastCGI §5.1).
    pub fn wants_close(&self) -> bool {
        self.closing
    }

    fn next(&self) -> Next {
        if self.closing {
            Next::Close
        } else {
            Next::Keep
        }
    }

    /// The front end closed its side of the connection. A request whose PARAMS stream had
    /// not ended can never start (FastCGI §5.2: the application needs the whole stream):
    /// it is forgotten. Returns how many were. Requests already handed on stay active
    /// until `finish`.
    pub fn receive_eof(&mut self) -> usize {
        let before = self.reqs.len();
        self.reqs.retain(|r| r.phase != Phase::Params);
        before - self.reqs.len()
    }

    /// Requests begun and not yet finished.
    pub fn active_requests(&self) -> usize {
        self.reqs.len()
    }

    fn receive_inner(&mut self, mut data: &[u8]) -> Result<(), ProtocolError> {
        while !data.is_empty() {
            match self.rx {
                Rx::Header => {
                    let raw = match data.split_first_chunk::<HEADER_LEN>() {
                        Some((h, rest)) if self.hdr_have == 0 => {
                            data = rest;
                            *h
                        }
                        _ => {
                            let have = self.hdr_have;
                            let take = (HEADER_LEN - have).min(data.len());
                            self.hdr_buf[have..have + take].copy_from_slice(&data[..take]);
                            self.hdr_have += take;
                            data = &data[take..];
                            if self.hdr_have < HEADER_LEN {
                                return Ok(());
                            }
                            self.hdr_have = 0;
                            self.hdr_buf
                        }
                    };
                    self.start_record(&raw)?;
                }
                Rx::Content { hdr, left, sink } => {
                    let (chunk, rest) = data.split_at(left.min(data.len()));
                    data = rest;
                    self.content(hdr, sink, chunk, left - chunk.len())?;
                }
                Rx::Padding { left } => {
                    let n = left.min(data.len());
                    data = &data[n..];
                    self.rx = if n == left {
                        Rx::Header
                    } else {
                        Rx::Padding { left: left - n }
                    };
                }
            }
        }
        Ok(())
    }

    fn start_record(&mut self, raw: &[u8; HEADER_LEN]) -> Result<(), ProtocolError> {
        let hdr = Header::parse(raw);
        if hdr.version != VERSION_1 {
            if !self.started && crate::protocol::looks_like_http(raw) {
                return Err(ProtocolError::http_request());
            }
            return Err(ProtocolError::new(format!(
                "unsupported FastCGI version {} (expected 1)",
                hdr.version
            )));
        }
        self.started = true;
        let sink = self.classify(&hdr)?;
        let len = hdr.content_length as usize;
        self.rx = Rx::Content {
            hdr,
            left: len,
            sink,
        };
        if len == 0 {
            self.content(hdr, sink, &[], 0)?;
        }
        Ok(())
    }

    fn req_index(&self, id: u16) -> Option<usize> {
        self.reqs.iter().position(|r| r.id == id)
    }

    /// Decides from the header alone what to do with a record.
    fn classify(&mut self, hdr: &Header) -> Result<Sink, ProtocolError> {
        let id = hdr.request_id;
        let len = hdr.content_length as usize;
        match hdr.record_type {
            // FastCGI Appendix A: these only flow from the application to the front end.
            END_REQUEST | STDOUT | STDERR | GET_VALUES_RESULT | UNKNOWN_TYPE => {
                Err(ProtocolError::new(format!(
                    "record type {} is only sent by applications",
                    hdr.record_type
                )))
            }
            // FastCGI §4.1 / §4.2: management records use the null request id.
            GET_VALUES if id == NULL_REQUEST_ID => Ok(Sink::Discrete),
            _ if id == NULL_REQUEST_ID => Ok(Sink::UnknownManagement),
            BEGIN_REQUEST => {
                // FastCGI §5.1: FCGI_BeginRequestBody is 8 bytes.
                if len != 8 {
                    return Err(ProtocolError::new(format!(
                        "FCGI_BEGIN_REQUEST with {len} content bytes (expected 8)"
                    )));
                }
                Ok(Sink::Discrete)
            }
            ABORT_REQUEST => Ok(Sink::Abort(id)),
            PARAMS => {
                let Some(i) = self.req_index(id) else {
                    return Ok(Sink::Skip);
                };
                let max_bytes = self.limits.max_params_bytes;
                let max_count = self.limits.max_params;
                let req = &mut self.reqs[i];
                if req.phase != Phase::Params {
                    return Ok(Sink::Skip);
                }
                if !req.sized && len > 0 {
                    req.sized = true;
                    req.params =
                        Params::with_capacity(len.min(max_bytes), (len / 16 + 1).min(max_count));
                }
                Ok(Sink::Params(id))
            }
            STDIN => {
                let Some(i) = self.req_index(id) else {
                    return Ok(Sink::Skip);
                };
                match self.reqs[i].phase {
                    // FastCGI §6.2: PARAMS comes first; a STDIN record before its end
                    // means the front end and we disagree about the framing.
                    Phase::Params => Err(ProtocolError::new(format!(
                        "FCGI_STDIN for request {id} before its FCGI_PARAMS stream ended"
                    ))),
                    Phase::Body => {
                        let body = self.reqs[i].body.saturating_add(len as u64);
                        if self.limits.max_body.is_some_and(|max| body > max) {
                            self.reject(i, LimitKind::Body);
                            return Ok(Sink::Skip);
                        }
                        self.reqs[i].body = body;
                        Ok(Sink::Stdin(id))
                    }
                    // Extra STDIN after its end (seen from real front ends) or for a
                    // rejected request: ignored.
                    Phase::Ended | Phase::Discard => Ok(Sink::Skip),
                }
            }
            // DATA belongs to the Filter role (FastCGI §6.4); a Responder ignores it.
            DATA => Ok(Sink::Skip),
            // GET_VALUES with a request id, or a type from a later protocol revision.
            _ => Ok(Sink::Skip),
        }
    }

    /// Handles `chunk`, the next piece of the current record's content; `left` content bytes
    /// remain after it. Called once with an empty chunk for an empty record.
    fn content(
        &mut self,
        hdr: Header,
        sink: Sink,
        chunk: &[u8],
        left: usize,
    ) -> Result<(), ProtocolError> {
        let total = hdr.content_length as usize;
        let whole = chunk.len() == total;
        let first = chunk.len() + left == total;
        self.rx = if left > 0 {
            Rx::Content { hdr, left, sink }
        } else if hdr.padding_length > 0 {
            Rx::Padding {
                left: hdr.padding_length as usize,
            }
        } else {
            Rx::Header
        };
        match sink {
            Sink::Skip => {}
            Sink::Params(id) => {
                let Some(i) = self.req_index(id) else {
                    return Ok(());
                };
                if self.reqs[i].phase != Phase::Params {
                    return Ok(());
                }
                if total == 0 {
                    return self.params_end(i);
                }
                if let Err(kind) = self.reqs[i].feed_params(chunk, &self.limits) {
                    self.reject(i, kind);
                }
            }
            Sink::Stdin(id) => {
                if total == 0 {
                    if let Some(i) = self.req_index(id) {
                        if self.reqs[i].phase == Phase::Body {
                            self.reqs[i].phase = Phase::Ended;
                            self.events.push_back(Event::StdinEnd { id });
                        }
                    }
                    return Ok(());
                }
                let data = if whole {
                    chunk.to_vec()
                } else {
                    if first {
                        self.partial.clear();
                        self.partial.reserve(total);
                    }
                    self.partial.extend_from_slice(chunk);
                    if left > 0 {
                        return Ok(());
                    }
                    mem::take(&mut self.partial)
                };
                // The application may have finished the request while the record arrived.
                if let Some(i) = self.req_index(id) {
                    if self.reqs[i].phase == Phase::Body {
                        self.events.push_back(Event::Stdin { id, data });
                    }
                }
            }
            Sink::Abort(id) => {
                // FastCGI §5.4; an abort for an inactive id is ignored (§3.3).
                if left == 0 {
                    if let Some(i) = self.req_index(id) {
                        self.abort(i);
                    }
                }
            }
            Sink::UnknownManagement => {
                if left == 0 {
                    // FastCGI §4.2.
                    encode_header(UNKNOWN_TYPE, NULL_REQUEST_ID, 8, &mut self.out);
                    self.out
                        .extend_from_slice(&[hdr.record_type, 0, 0, 0, 0, 0, 0, 0]);
                }
            }
            Sink::Discrete => {
                if whole {
                    return self.discrete(&hdr, chunk);
                }
                if first {
                    self.partial.clear();
                }
                self.partial.extend_from_slice(chunk);
                if left == 0 {
                    let buf = mem::take(&mut self.partial);
                    let r = self.discrete(&hdr, &buf);
                    self.partial = buf;
                    return r;
                }
            }
        }
        Ok(())
    }

    /// A whole BEGIN_REQUEST or GET_VALUES record.
    fn discrete(&mut self, hdr: &Header, content: &[u8]) -> Result<(), ProtocolError> {
        if hdr.record_type == GET_VALUES {
            return self.get_values(content);
        }
        // BEGIN_REQUEST, FastCGI §5.1; classify() checked the 8-byte length.
        let id = hdr.request_id;
        let (role, flags) = match content {
            [r1, r0, flags, ..] => (u16::from_be_bytes([*r1, *r0]), *flags),
            _ => return Err(ProtocolError::new("short FCGI_BEGIN_REQUEST")),
        };
        if self.req_index(id).is_some() {
            return Err(ProtocolError::new(format!(
                "FCGI_BEGIN_REQUEST for request {id}, which is already active"
            )));
        }
        let keep_conn = flags & KEEP_CONN != 0;
        let role = match role {
            RESPONDER => Some(Role::Responder),
            AUTHORIZER => Some(Role::Authorizer),
            // FILTER (§6.4) needs the file's data stream, which a WSGI app has no way to
            // read; any other value is no role at all.
            _ => None,
        };
        let refused = match role {
            None => Err(ProtocolStatus::UnknownRole),
            Some(_) if !self.caps.mpxs_conns && !self.reqs.is_empty() => {
                Err(ProtocolStatus::CantMpxConn)
            }
            Some(_) if self.reqs.len() >= self.caps.max_reqs => Err(ProtocolStatus::Overloaded),
            Some(role) => Ok(role),
        };
        match refused {
            Ok(role) => self.reqs.push(Req {
                id,
                keep_conn,
                role,
                phase: Phase::Params,
                params: Params::new(),
                params_bytes: 0,
                carry: Vec::new(),
                sized: false,
                body: 0,
            }),
            // FastCGI §5.5: refused before it began, so there is no stream to close.
            Err(status) => {
                encode_end_record(id, 0, status, &mut self.out);
                if !keep_conn {
                    self.closing = true;
                }
                self.events.push_back(Event::Refused { id, status });
            }
        }
        Ok(())
    }

    /// FastCGI §4.1: answer only the variables asked for that we know, each once.
    fn get_values(&mut self, content: &[u8]) -> Result<(), ProtocolError> {
        let mut answered = [false; 3];
        let mut body = Vec::new();
        for pair in Pairs::new(content) {
            let (name, _) = pair?;
            let (slot, value) = match name {
                MAX_CONNS_NAME => (0, self.caps.max_conns.to_string()),
                MAX_REQS_NAME => (1, self.caps.max_reqs.to_string()),
                MPXS_CONNS_NAME => (2, u8::from(self.caps.mpxs_conns).to_string()),
                _ => continue,
            };
            if !mem::replace(&mut answered[slot], true) {
                write_name_value(name, value.as_bytes(), &mut body);
            }
        }
        // Three short pairs: far below MAX_CONTENT.
        encode_header(
            GET_VALUES_RESULT,
            NULL_REQUEST_ID,
            body.len() as u16,
            &mut self.out,
        );
        self.out.extend_from_slice(&body);
        Ok(())
    }

    /// The empty PARAMS record of request `reqs[i]`: the stream is complete (FastCGI §5.2).
    fn params_end(&mut self, i: usize) -> Result<(), ProtocolError> {
        let req = &mut self.reqs[i];
        if !req.carry.is_empty() {
            return Err(ProtocolError::new(format!(
                "FCGI_PARAMS stream of request {} ends inside a name-value pair",
                req.id
            )));
        }
        let declared = req
            .params
            .get(b"CONTENT_LENGTH")
            .and_then(parse_decimal_saturating);
        if let (Some(max), Some(len)) = (self.limits.max_body, declared) {
            if len > max {
                self.reject(i, LimitKind::Body);
                return Ok(());
            }
        }
        let req = &mut self.reqs[i];
        req.carry = Vec::new();
        self.events.push_back(Event::Request {
            id: req.id,
            role: req.role,
            params: mem::take(&mut req.params),
        });
        if req.role == Role::Authorizer {
            // FastCGI §6.3: an Authorizer gets the request's params and no body.
            req.phase = Phase::Ended;
            self.events.push_back(Event::StdinEnd { id: req.id });
        } else {
            req.phase = Phase::Body;
        }
        Ok(())
    }

    /// FCGI_ABORT_REQUEST for `reqs[i]` (FastCGI §5.4). A request still receiving its
    /// params was never handed on: it ends here, with its END_REQUEST queued. Any other is
    /// the application's to stop.
    fn abort(&mut self, i: usize) {
        let req = &self.reqs[i];
        if req.phase != Phase::Params {
            self.events.push_back(Event::Abort { id: req.id });
            return;
        }
        let (id, keep_conn) = (req.id, req.keep_conn);
        self.reqs.swap_remove(i);
        encode_end_record(id, 0, ProtocolStatus::RequestComplete, &mut self.out);
        if !keep_conn {
            self.closing = true;
        }
    }

    /// Request `reqs[i]` broke `limit`: tell the caller and discard the rest of its input.
    fn reject(&mut self, i: usize, limit: LimitKind) {
        let req = &mut self.reqs[i];
        req.phase = Phase::Discard;
        req.params = Params::new();
        req.carry = Vec::new();
        self.events.push_back(Event::Rejected { id: req.id, limit });
    }
}
