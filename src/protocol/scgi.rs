//! SCGI request decoder (server side) and request encoder (client side), sans-I/O.
//!
//! An SCGI connection carries exactly one request (SCGI §2): a netstring (SCGI §4) whose
//! interpretation is the header block, `name NUL value NUL` pairs (SCGI §3), followed by
//! `CONTENT_LENGTH` body bytes. The peer then waits for the response and the server closes
//! the connection. [`Connection`] takes received bytes in any split, checks every rule and
//! limit as early as it can, and yields [`Event`]s; it never touches a socket.
//!
//! Deliberate departures from the letter of SCGI §3, each because real front ends need it:
//! - Duplicate names are accepted and kept in order: nginx sends a repeated request header
//!   as a repeated `HTTP_*` param (see shared/frontends/headers-by-front-end.md). Only a
//!   repeated `CONTENT_LENGTH` is refused, since the body framing depends on it.
//! - A missing `SCGI` header is accepted (some clients omit it); present, it must be "1".

use std::collections::VecDeque;

use super::lifecycle::{Next, Outcome};
use super::{parse_decimal, LimitKind, Limits, Params};

/// A netstring length longer than this many digits is refused as malformed, whatever the
/// configured `max_scgi_header` (20 digits already exceed `u64::MAX`).
const MAX_LEN_DIGITS: u32 = 20;

/// Name of the header that must come first (SCGI §3).
const CONTENT_LENGTH: &[u8] = b"CONTENT_LENGTH";
/// Name of the header that must carry "1" (SCGI §3).
const SCGI: &[u8] = b"SCGI";

/// What the decoder has recognised, in order.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// The netstring header is complete and valid.
    Request { params: Params, content_length: u64 },
    /// Body bytes (never past content_length).
    Body(Vec<u8>),
    /// content_length body bytes have arrived (emitted right after Request when it is 0).
    BodyEnd,
}

/// Why a request was refused. After an error the connection is finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScgiError {
    /// Not a valid netstring / header (reason for the log).
    Malformed(&'static str),
    /// A limit was broken (max_scgi_header, max_params_bytes, max_params, max_body).
    Limit(LimitKind),
    /// The connection opened with an HTTP request line: an HTTP client (a browser, `curl`)
    /// connected straight to the SCGI port. It is answered with [`ScgiError::http_reply`].
    Http,
}

impl ScgiError {
    /// The HTTP status to answer with, where an answer is still possible.
    pub fn status(&self) -> &'static str {
        match self {
            ScgiError::Malformed(_) | ScgiError::Http => "400 Bad Request",
            ScgiError::Limit(kind) => kind.status(),
        }
    }

    /// The bytes to send back to an HTTP client, instead of an SCGI response: a plain-text
    /// HTTP/1.0 400 saying this is an SCGI port. None for other errors.
    pub fn http_reply(&self) -> Option<&'static [u8]> {
        matches!(self, ScgiError::Http).then_some(super::NOT_HTTP_SCGI)
    }
}

impl std::fmt::Display for ScgiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScgiError::Malformed(why) => write!(f, "malformed SCGI request: {why}"),
            ScgiError::Limit(kind) => write!(f, "SCGI request exceeds {}", kind.key()),
            ScgiError::Http => f.write_str(
                "an HTTP request arrived on an SCGI port: HTTP clients must go to a web server \
                 in front of wsgid (nginx scgi_pass, Apache mod_proxy_scgi), which passes \
                 their requests on over SCGI",
            ),
        }
    }
}

impl std::error::Error for ScgiError {}

/// Where the decoder is within the one request of a connection.
#[derive(Debug)]
enum State {
    /// Reading the netstring's decimal length (SCGI §4): `value` so far, from `digits` digits.
    Len { value: usize, digits: u32 },
    /// The connection opened with `letters` upper-case letters instead of a length: an
    /// HTTP method, if a space follows (`crate::protocol::looks_like_http`).
    Method { letters: usize },
    /// Collecting the netstring's `len` bytes into `Connection::buf`.
    Header { len: usize },
    /// Expecting the ',' that closes the netstring; the header is in `Connection::buf`.
    Comma,
    /// Passing body bytes through until `remaining` is 0.
    Body { remaining: u64 },
    /// The request is complete; later bytes are ignored (the body is bounded by
    /// CONTENT_LENGTH, see shared/specs/README.md pitfall 8).
    Done,
    /// A request was refused; the same error is reported again on any further input.
    Failed(ScgiError),
}

/// Server side of one SCGI connection.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    state: State,
    /// Header bytes, used only when the header arrives in more than one piece.
    buf: Vec<u8>,
    events: VecDeque<Event>,
    pristine: bool,
}

impl Connection {
    pub fn new(limits: Limits) -> Self {
        Connection {
            limits,
            state: State::Len {
                value: 0,
                digits: 0,
            },
            buf: Vec::new(),
            events: VecDeque::new(),
            pristine: true,
        }
    }

    /// Feed bytes (any split; byte-at-a-time must work). After an Err the connection is done
    /// (the caller sends an error response where it can and closes).
    pub fn receive(&mut self, data: &[u8]) -> Result<(), ScgiError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        if data.is_empty() {
            return Ok(());
        }
        self.pristine = false;
        self.advance(data).map_err(|e| self.fail(e))
    }

    /// The next decoded event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The peer closed: Err(Malformed) if a header or body was cut short, Ok if nothing was
    /// ever sent (an empty connection is harmless) or the request was complete.
    ///
    /// Empty connections happen in practice: Apache mod_proxy_scgi opens one and closes it
    /// unused before answering 411 to a chunked upload (shared/frontends/README.md §6).
    pub fn receive_eof(&mut self) -> Result<(), ScgiError> {
        let err = match &self.state {
            _ if self.pristine => return Ok(()),
            State::Done => return Ok(()),
            State::Failed(e) => return Err(e.clone()),
            State::Len { .. } | State::Method { .. } | State::Header { .. } | State::Comma => {
                ScgiError::Malformed("connection closed inside the header")
            }
            State::Body { .. } => {
                ScgiError::Malformed("connection closed before the end of the body")
            }
        };
        Err(self.fail(err))
    }

    /// The application side is done with the connection's request. SCGI carries one
    /// request per connection (SCGI §2), so the connection always closes after it: with a
    /// lingering close when the response is whole, at once when it broke off (SCGI has no
    /// end-of-response marker, so only a cut connection tells the front end it is
    /// incomplete).
    pub fn end(&mut self, outcome: Outcome) -> Next {
        match outcome {
            Outcome::Complete => Next::Close,
            Outcome::Broken => Next::CloseHard,
        }
    }

    /// True once nothing at all has been received.
    pub fn is_pristine(&self) -> bool {
        self.pristine
    }

    fn fail(&mut self, e: ScgiError) -> ScgiError {
        self.state = State::Failed(e.clone());
        self.buf = Vec::new();
        e
    }

    fn advance(&mut self, mut data: &[u8]) -> Result<(), ScgiError> {
        while let Some(&first) = data.first() {
            match self.state {
                State::Len { value, digits } => {
                    if digits == 0 && first.is_ascii_uppercase() {
                        // Not a length: perhaps an HTTP request line.
                        self.state = State::Method { letters: 0 };
                        continue;
                    }
                    data = &data[1..];
                    self.state = self.length_byte(value, digits, first)?;
                }
                State::Method { letters } => {
                    data = &data[1..];
                    // `looks_like_http`'s rule, a byte at a time: 1 to MAX_METHOD upper-case
                    // letters (the first one is why this state was entered), then a space.
                    self.state = match first {
                        b'A'..=b'Z' if letters < super::MAX_METHOD => State::Method {
                            letters: letters + 1,
                        },
                        b' ' => return Err(ScgiError::Http),
                        _ => {
                            return Err(ScgiError::Malformed(
                                "netstring length is not a decimal number",
                            ))
                        }
                    };
                }
                State::Header { len } => {
                    if self.buf.is_empty() && data.len() > len {
                        // Fast path: header and its ',' in one piece, parsed in place.
                        if data[len] != b',' {
                            return Err(ScgiError::Malformed("netstring not terminated by ','"));
                        }
                        let (params, content_length) = parse_header(&data[..len], &self.limits)?;
                        data = &data[len + 1..];
                        self.start_request(params, content_length)?;
                    } else {
                        let take = (len - self.buf.len()).min(data.len());
                        // Grows with what arrives, so a peer that announces a long header
                        // and stalls holds no more memory than it sent.
                        self.buf.extend_from_slice(&data[..take]);
                        data = &data[take..];
                        if self.buf.len() == len {
                            self.state = State::Comma;
                        }
                    }
                }
                State::Comma => {
                    if first != b',' {
                        return Err(ScgiError::Malformed("netstring not terminated by ','"));
                    }
                    data = &data[1..];
                    let header = std::mem::take(&mut self.buf);
                    let (params, content_length) = parse_header(&header, &self.limits)?;
                    self.start_request(params, content_length)?;
                }
                State::Body { remaining } => {
                    let take = usize::try_from(remaining).map_or(data.len(), |r| r.min(data.len()));
                    self.events.push_back(Event::Body(data[..take].to_vec()));
                    data = &data[take..];
                    let remaining = remaining - take as u64;
                    if remaining == 0 {
                        self.events.push_back(Event::BodyEnd);
                        self.state = State::Done;
                    } else {
                        self.state = State::Body { remaining };
                    }
                }
                State::Done => return Ok(()),
                State::Failed(ref e) => return Err(e.clone()),
            }
        }
        Ok(())
    }

    /// One byte of the netstring length `[len]":"` (SCGI §4): ASCII digits, no leading
    /// zeros ("0" itself only for the empty string), refused as soon as the value exceeds
    /// `max_scgi_header`.
    fn length_byte(&self, value: usize, digits: u32, byte: u8) -> Result<State, ScgiError> {
        match byte {
            b'0'..=b'9' => {
                if digits == 1 && value == 0 {
                    return Err(ScgiError::Malformed("leading zero in the netstring length"));
                }
                if digits >= MAX_LEN_DIGITS {
                    return Err(ScgiError::Malformed("netstring length has too many digits"));
                }
                let value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(usize::from(byte - b'0')))
                    .filter(|&v| v <= self.limits.max_scgi_header)
                    .ok_or(ScgiError::Limit(LimitKind::ScgiHeader))?;
                Ok(State::Len {
                    value,
                    digits: digits + 1,
                })
            }
            b':' if digits == 0 => Err(ScgiError::Malformed("empty netstring length")),
            b':' if value == 0 => Ok(State::Comma),
            b':' => Ok(State::Header { len: value }),
            _ => Err(ScgiError::Malformed(
                "netstring length is not a decimal number",
            )),
        }
    }

    fn start_request(&mut self, params: Params, content_length: u64) -> Result<(), ScgiError> {
        if self.limits.max_body.is_some_and(|max| content_length > max) {
            return Err(ScgiError::Limit(LimitKind::Body));
        }
        self.events.push_back(Event::Request {
            params,
            content_length,
        });
        if content_length == 0 {
            self.events.push_back(Event::BodyEnd);
            self.state = State::Done;
        } else {
            self.state = State::Body {
                remaining: content_length,
            };
        }
        Ok(())
    }
}

/// Parses the netstring's interpretation: `(name NUL value NUL)*` with non-empty names,
/// CONTENT_LENGTH first with a decimal value (SCGI §3). Enforces `max_params` and
/// `max_params_bytes` (names plus values, NULs not counted, as for FastCGI).
fn parse_header(header: &[u8], limits: &Limits) -> Result<(Params, u64), ScgiError> {
    let mut params = Params::with_capacity(header.len(), 32.min(limits.max_params));
    let mut content_length = None;
    let mut bytes = 0usize;
    let mut rest = header;
    while !rest.is_empty() {
        let (name, after) =
            split_nul(rest).ok_or(ScgiError::Malformed("header name not terminated by NUL"))?;
        let (value, after) =
            split_nul(after).ok_or(ScgiError::Malformed("header value not terminated by NUL"))?;
        rest = after;
        if name.is_empty() {
            return Err(ScgiError::Malformed("empty header name"));
        }
        if params.len() >= limits.max_params {
            return Err(ScgiError::Limit(LimitKind::ParamsCount));
        }
        bytes += name.len() + value.len();
        if bytes > limits.max_params_bytes {
            return Err(ScgiError::Limit(LimitKind::ParamsBytes));
        }
        if params.is_empty() {
            if name != CONTENT_LENGTH {
                return Err(ScgiError::Malformed("first header is not CONTENT_LENGTH"));
            }
            content_length = Some(parse_decimal(value).ok_or(ScgiError::Malformed(
                "CONTENT_LENGTH is not a decimal number",
            ))?);
        } else if name == CONTENT_LENGTH {
            return Err(ScgiError::Malformed("repeated CONTENT_LENGTH header"));
        } else if name == SCGI && value != b"1" {
            return Err(ScgiError::Malformed("SCGI header is not \"1\""));
        }
        params.push(name, value);
    }
    let content_length = content_length.ok_or(ScgiError::Malformed("no CONTENT_LENGTH header"))?;
    Ok((params, content_length))
}

/// Splits at the first NUL: (before, after). None when there is no NUL.
fn split_nul(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = s.iter().position(|&b| b == 0)?;
    Some((&s[..at], &s[at + 1..]))
}

/// Client side, for tests and the load generator: encode a request (netstring header,
/// CONTENT_LENGTH first then SCGI=1 then the rest) and its body.
///
/// `CONTENT_LENGTH` is always `body.len()` and `SCGI` always "1": pairs in `params` with
/// either name are skipped. Names must be non-empty and neither names nor values may
/// contain NUL (SCGI §3); that is the caller's duty.
pub fn encode_request(params: &[(&[u8], &[u8])], body: &[u8], out: &mut Vec<u8>) {
    let is_ours = |name: &[u8]| name == CONTENT_LENGTH || name == SCGI;
    debug_assert!(params
        .iter()
        .all(|(n, v)| !n.is_empty() && !n.contains(&0) && !v.contains(&0)));
    let cl = body.len().to_string();
    let len = CONTENT_LENGTH.len()
        + cl.len()
        + SCGI.len()
        + 1
        + 4
        + params
            .iter()
            .filter(|(n, _)| !is_ours(n))
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum::<usize>();
    out.reserve(len + 24 + body.len());
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b':');
    for (name, value) in [(CONTENT_LENGTH, cl.as_bytes()), (SCGI, &b"1"[..])]
        .into_iter()
        .chain(params.iter().copied().filter(|(n, _)| !is_ours(n)))
    {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out.push(b',');
    out.extend_from_slice(body);
}

#[cfg(test)]
#[path = "scgi_tests.rs"]
mod tests;
