//! A raw FastCGI client for the tests, written from the FastCGI 1.0 specification alone
//! (shared/specs/fastcgi-spec.txt) and sharing no code with wsgid's own codec, so the two
//! cannot agree on a mistake.
//!
//! It builds any record, well-formed or not (any version, type, id, padding; name/value
//! lengths in their 1- or 4-byte form, or cut short), multiplexes requests on one
//! connection, keeps connections open, and reads back STDOUT / STDERR / END_REQUEST /
//! GET_VALUES_RESULT / UNKNOWN_TYPE records. [`Request`] and [`CgiResponse`] (CGI params
//! and the CGI response a gateway sends back) are shared with the SCGI client.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

// Record types, FastCGI §8.
pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;
pub const DATA: u8 = 8;
pub const GET_VALUES: u8 = 9;
pub const GET_VALUES_RESULT: u8 = 10;
pub const UNKNOWN_TYPE: u8 = 11;

// Roles and flags, FastCGI §5.1 / §8.
pub const RESPONDER: u16 = 1;
pub const AUTHORIZER: u16 = 2;
pub const FILTER: u16 = 3;
pub const KEEP_CONN: u8 = 1;

// protocolStatus values, FastCGI §5.5.
pub const REQUEST_COMPLETE: u8 = 0;
pub const CANT_MPX_CONN: u8 = 1;
pub const OVERLOADED: u8 = 2;
pub const UNKNOWN_ROLE: u8 = 3;

/// Largest contentLength of one record (FastCGI §3.3).
pub const MAX_CONTENT: usize = 65535;

/// How long any single read may block before the test fails (generous: busy CI machines).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A record with an explicit version and padding (FastCGI §3.3), content up to 65535 bytes.
pub fn raw_record(version: u8, rtype: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    assert!(
        content.len() <= MAX_CONTENT,
        "test bug: record content too long"
    );
    let mut v = Vec::with_capacity(8 + content.len() + padding as usize);
    v.push(version);
    v.push(rtype);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&(content.len() as u16).to_be_bytes());
    v.push(padding);
    v.push(0); // reserved
    v.extend_from_slice(content);
    // Padding bytes are arbitrary (§3.3); make them visible garbage.
    v.extend(std::iter::repeat_n(0xAA, padding as usize));
    v
}

/// A version-1 record without padding.
pub fn record(rtype: u8, id: u16, content: &[u8]) -> Vec<u8> {
    raw_record(1, rtype, id, content, 0)
}

/// A version-1 record with `padding` padding bytes.
pub fn record_padded(rtype: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    raw_record(1, rtype, id, content, padding)
}

/// A stream (PARAMS, STDIN...): `data` in records of at most `chunk` bytes, then the empty
/// record that ends the stream (§3.3 "Stream records").
pub fn stream(rtype: u8, id: u16, data: &[u8], chunk: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for c in data.chunks(chunk.clamp(1, MAX_CONTENT)) {
        v.extend(record(rtype, id, c));
    }
    v.extend(record(rtype, id, b""));
    v
}

/// A stream cut at the given content sizes (cycled), each record with `padding` bytes, then
/// the empty record.
pub fn stream_cut(rtype: u8, id: u16, data: &[u8], sizes: &[usize], padding: u8) -> Vec<u8> {
    let mut v = Vec::new();
    let mut rest = data;
    let mut k = 0;
    while !rest.is_empty() {
        let n = sizes[k % sizes.len()].clamp(1, MAX_CONTENT).min(rest.len());
        v.extend(record_padded(rtype, id, &rest[..n], padding));
        rest = &rest[n..];
        k += 1;
    }
    v.extend(record(rtype, id, b""));
    v
}

/// FCGI_BEGIN_REQUEST (§5.1).
pub fn begin_request(id: u16, role: u16, flags: u8) -> Vec<u8> {
    let r = role.to_be_bytes();
    record(BEGIN_REQUEST, id, &[r[0], r[1], flags, 0, 0, 0, 0, 0])
}

/// FCGI_ABORT_REQUEST (§5.4).
pub fn abort_request(id: u16) -> Vec<u8> {
    record(ABORT_REQUEST, id, b"")
}

/// A name/value length field: one byte up to 127, else four with the high bit set (§3.4);
/// `long` forces the four-byte form.
pub fn length_field(len: usize, long: bool) -> Vec<u8> {
    if len < 0x80 && !long {
        vec![len as u8]
    } else {
        assert!(len < 0x8000_0000, "test bug: length over 31 bits");
        ((len as u32) | 0x8000_0000).to_be_bytes().to_vec()
    }
}

/// One name/value pair in the shortest encoding.
pub fn name_value(name: &[u8], value: &[u8]) -> Vec<u8> {
    name_value_with(name, value, false, false)
}

/// One name/value pair, choosing the four-byte form for the name and/or the value length.
pub fn name_value_with(name: &[u8], value: &[u8], long_name: bool, long_value: bool) -> Vec<u8> {
    let mut v = length_field(name.len(), long_name);
    v.extend(length_field(value.len(), long_value));
    v.extend_from_slice(name);
    v.extend_from_slice(value);
    v
}

/// Encodes pairs back to back, shortest form.
pub fn encode_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    pairs.iter().flat_map(|(n, v)| name_value(n, v)).collect()
}

/// Decodes the name/value pairs of one complete buffer (e.g. GET_VALUES_RESULT content).
/// Panics on a malformed buffer.
pub fn decode_pairs(mut buf: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fn len(buf: &mut &[u8]) -> usize {
        let b = *buf;
        assert!(!b.is_empty(), "truncated length");
        if b[0] & 0x80 == 0 {
            *buf = &b[1..];
            b[0] as usize
        } else {
            assert!(b.len() >= 4, "truncated 4-byte length");
            *buf = &b[4..];
            (u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]])) as usize
        }
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let n = len(&mut buf);
        let v = len(&mut buf);
        assert!(buf.len() >= n + v, "pair runs past the end of the buffer");
        out.push((buf[..n].to_vec(), buf[n..n + v].to_vec()));
        buf = &buf[n + v..];
    }
    out
}

/// One record as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub version: u8,
    pub rtype: u8,
    pub id: u16,
    pub content: Vec<u8>,
    pub padding: u8,
}

/// How a read of the next record ended.
#[derive(Debug)]
pub enum Next {
    Record(Record),
    /// The server closed the connection at a record boundary (or reset it).
    Closed,
    /// The server closed the connection inside a record.
    Truncated(Vec<u8>),
}

/// Everything the server sent for one request id.
#[derive(Debug, Default, Clone)]
pub struct Response {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The records of this request, in arrival order.
    pub records: Vec<Record>,
    /// END_REQUEST appStatus and protocolStatus, if it arrived.
    pub end: Option<(u32, u8)>,
    /// The raw 8 content bytes of END_REQUEST.
    pub end_content: Vec<u8>,
}

impl Response {
    /// The CGI response carried on STDOUT. Panics unless END_REQUEST arrived.
    pub fn cgi(&self) -> CgiResponse {
        assert!(self.end.is_some(), "no END_REQUEST: {self:?}");
        CgiResponse::parse(&self.stdout)
    }

    /// STDOUT records (including the empty one that ends the stream).
    pub fn stdout_records(&self) -> Vec<&Record> {
        self.records.iter().filter(|r| r.rtype == STDOUT).collect()
    }
}

/// A FastCGI connection to the server under test.
pub struct Client {
    pub stream: TcpStream,
    rbuf: Vec<u8>,
    /// Records read while looking for another request's, kept for later.
    stash: VecDeque<Record>,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Client::over(stream)
    }

    /// Connects with a receive buffer of `bytes` (the kernel grows none while nothing is
    /// read), so that what the server sends backs up into its own buffers quickly.
    pub fn connect_small(addr: &str, bytes: usize) -> Client {
        let addr: std::net::SocketAddr = addr.parse().expect("a host:port address");
        let s = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        s.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        s.connect(&addr.into())
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Client::over(s.into())
    }

    fn over(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(READ_TIMEOUT))
            .expect("set write timeout");
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            rbuf: Vec::new(),
            stash: VecDeque::new(),
        }
    }

    /// Writes bytes; panics if the server is gone.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to wsgid: {e}"));
    }

    /// Writes bytes; an error (server gone) is returned, not a panic.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads until `n` bytes are buffered. Ok(false) on EOF/reset before that.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        let mut buf = [0u8; 65536];
        while self.rbuf.len() < n {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(k) => self.rbuf.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(false)
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The next record from the wire (stashed records are not consulted).
    pub fn next(&mut self) -> Next {
        match self.fill(8) {
            Ok(true) => {}
            Ok(false) if self.rbuf.is_empty() => return Next::Closed,
            Ok(false) => return Next::Truncated(std::mem::take(&mut self.rbuf)),
            Err(e) => panic!("reading a record header from wsgid: {e}"),
        }
        let h = &self.rbuf[..8];
        let clen = u16::from_be_bytes([h[4], h[5]]) as usize;
        let plen = h[6] as usize;
        match self.fill(8 + clen + plen) {
            Ok(true) => {}
            Ok(false) => return Next::Truncated(std::mem::take(&mut self.rbuf)),
            Err(e) => panic!("reading a record body from wsgid: {e}"),
        }
        let rec = Record {
            version: self.rbuf[0],
            rtype: self.rbuf[1],
            id: u16::from_be_bytes([self.rbuf[2], self.rbuf[3]]),
            content: self.rbuf[8..8 + clen].to_vec(),
            padding: plen as u8,
        };
        self.rbuf.drain(..8 + clen + plen);
        Next::Record(rec)
    }

    /// Puts a record back, to be returned by later reads.
    pub fn stash_record(&mut self, r: Record) {
        self.stash.push_back(r);
    }

    /// The next record (stash first); panics on EOF.
    pub fn read_record(&mut self) -> Record {
        if let Some(r) = self.stash.pop_front() {
            return r;
        }
        match self.next() {
            Next::Record(r) => r,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    /// Reads the records of request `id` until its END_REQUEST; records of other ids are
    /// stashed for later calls. Panics if the connection ends first.
    pub fn read_response(&mut self, id: u16) -> Response {
        let (resp, end) = self.collect(id);
        match end {
            None => resp,
            Some(how) => panic!(
                "connection ended ({how:?}) before END_REQUEST for {id}; got so far: {}",
                String::from_utf8_lossy(&resp.stdout)
            ),
        }
    }

    /// Like `read_response`, but returns what arrived when the connection ends first,
    /// with how it ended (`Some(Next::Closed)` or `Some(Next::Truncated(..))`).
    pub fn collect(&mut self, id: u16) -> (Response, Option<Next>) {
        let mut resp = Response::default();
        let mut i = 0;
        while i < self.stash.len() {
            if self.stash[i].id == id {
                let r = self.stash.remove(i).expect("index checked");
                if Self::absorb(&mut resp, r) {
                    return (resp, None);
                }
            } else {
                i += 1;
            }
        }
        loop {
            match self.next() {
                Next::Record(r) if r.id == id => {
                    if Self::absorb(&mut resp, r) {
                        return (resp, None);
                    }
                }
                Next::Record(r) => self.stash.push_back(r),
                end => return (resp, Some(end)),
            }
        }
    }

    /// Adds a record to a response; true when it was END_REQUEST.
    fn absorb(resp: &mut Response, r: Record) -> bool {
        assert_eq!(
            r.version, 1,
            "wsgid sent a record with version {}",
            r.version
        );
        let done = match r.rtype {
            STDOUT => {
                resp.stdout.extend_from_slice(&r.content);
                false
            }
            STDERR => {
                resp.stderr.extend_from_slice(&r.content);
                false
            }
            END_REQUEST => {
                assert_eq!(r.content.len(), 8, "END_REQUEST body must be 8 bytes");
                let c = &r.content;
                resp.end = Some((u32::from_be_bytes([c[0], c[1], c[2], c[3]]), c[4]));
                resp.end_content = c.clone();
                true
            }
            t => panic!("unexpected record type {t} for request {}", r.id),
        };
        resp.records.push(r);
        done
    }

    /// Sends a whole request (BEGIN_REQUEST, PARAMS, STDIN) and reads its response.
    pub fn request(&mut self, id: u16, keep_conn: bool, req: &Request) -> Response {
        self.send(&req.encode(id, keep_conn));
        self.read_response(id)
    }

    /// Waits until the server closes the connection; returns the records it sent before.
    /// Panics if it stays open for `secs`.
    pub fn expect_closed(&mut self, secs: u64) -> Vec<Record> {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(secs)))
            .expect("set read timeout");
        let mut got: Vec<Record> = self.stash.drain(..).collect();
        let start = Instant::now();
        loop {
            match self.fill(self.rbuf.len() + 1) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => panic!(
                    "wsgid did not close the connection within {secs}s ({e}, {:?})",
                    start.elapsed()
                ),
            }
        }
        let mut rest = std::mem::take(&mut self.rbuf);
        while rest.len() >= 8 {
            let clen = u16::from_be_bytes([rest[4], rest[5]]) as usize;
            let plen = rest[6] as usize;
            if rest.len() < 8 + clen + plen {
                break;
            }
            got.push(Record {
                version: rest[0],
                rtype: rest[1],
                id: u16::from_be_bytes([rest[2], rest[3]]),
                content: rest[8..8 + clen].to_vec(),
                padding: plen as u8,
            });
            rest.drain(..8 + clen + plen);
        }
        got
    }

    /// True if the server has not closed the connection within `wait` (it may send).
    pub fn still_open(&mut self, wait: Duration) -> bool {
        self.stream
            .set_read_timeout(Some(wait))
            .expect("set read timeout");
        let mut b = [0u8; 1];
        let open = match self.stream.peek(&mut b) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        self.stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set read timeout");
        open
    }

    /// Closes both directions at once (a front end giving up on the connection).
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// CGI params and a body: what a front end sends for one HTTP request. Names and values
/// are bytes; order is kept and repeated names are allowed.
#[derive(Debug, Clone)]
pub struct Request {
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    /// FastCGI: send the empty STDIN record that ends the body.
    pub stdin_end: bool,
    /// FastCGI: send STDIN at all (false models front ends that omit it on GET).
    pub send_stdin: bool,
}

impl Request {
    /// A request for `uri` ("/path?query") with the params nginx's stock fastcgi_params
    /// send, SERVER_NAME "localhost" and Host "example.test".
    pub fn new(method: &str, uri: &str) -> Request {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, q),
            None => (uri, ""),
        };
        let mut r = Request {
            params: Vec::new(),
            body: Vec::new(),
            stdin_end: true,
            send_stdin: true,
        };
        for (k, v) in [
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("SERVER_SOFTWARE", "wsgid-tests"),
            ("REQUEST_METHOD", method),
            ("REQUEST_URI", uri),
            ("DOCUMENT_URI", path),
            ("QUERY_STRING", query),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "8080"),
            ("SERVER_ADDR", "127.0.0.1"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", "40000"),
            ("HTTP_HOST", "example.test"),
        ] {
            r.params.push((k.into(), v.into()));
        }
        r
    }

    pub fn get(uri: &str) -> Request {
        Request::new("GET", uri)
    }

    /// A POST with `body` and its CONTENT_LENGTH.
    pub fn post(uri: &str, body: &[u8]) -> Request {
        Request::new("POST", uri)
            .set("CONTENT_TYPE", "application/octet-stream")
            .set("CONTENT_LENGTH", &body.len().to_string())
            .body(body)
    }

    /// Replaces every param `name` by one with `value` (appended if absent).
    pub fn set(self, name: &str, value: &str) -> Request {
        self.set_bytes(name.as_bytes(), value.as_bytes())
    }

    pub fn set_bytes(mut self, name: &[u8], value: &[u8]) -> Request {
        if let Some(i) = self.params.iter().position(|(n, _)| n == name) {
            self.params[i].1 = value.to_vec();
            let mut k = i + 1;
            while k < self.params.len() {
                if self.params[k].0 == name {
                    self.params.remove(k);
                } else {
                    k += 1;
                }
            }
        } else {
            self.params.push((name.to_vec(), value.to_vec()));
        }
        self
    }

    /// Appends a param even if the name exists (repeated header fields).
    pub fn add(mut self, name: &str, value: &str) -> Request {
        self.params.push((name.into(), value.into()));
        self
    }

    pub fn add_bytes(mut self, name: &[u8], value: &[u8]) -> Request {
        self.params.push((name.to_vec(), value.to_vec()));
        self
    }

    pub fn remove(mut self, name: &str) -> Request {
        self.params.retain(|(n, _)| n != name.as_bytes());
        self
    }

    pub fn body(mut self, body: &[u8]) -> Request {
        self.body = body.to_vec();
        self
    }

    /// No STDIN records at all (not even the empty one).
    pub fn no_stdin(mut self) -> Request {
        self.send_stdin = false;
        self
    }

    /// Sum of name and value lengths (what max_params_bytes bounds).
    pub fn params_bytes(&self) -> usize {
        self.params.iter().map(|(n, v)| n.len() + v.len()).sum()
    }

    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The encoded PARAMS stream content (without records).
    pub fn params_stream(&self) -> Vec<u8> {
        encode_pairs(&self.params)
    }

    /// BEGIN_REQUEST + PARAMS (records of up to 65535 bytes) + STDIN (+ its end).
    pub fn encode(&self, id: u16, keep_conn: bool) -> Vec<u8> {
        let mut v = begin_request(id, RESPONDER, if keep_conn { KEEP_CONN } else { 0 });
        v.extend(stream(PARAMS, id, &self.params_stream(), MAX_CONTENT));
        if self.send_stdin {
            for c in self.body.chunks(MAX_CONTENT) {
                v.extend(record(STDIN, id, c));
            }
            if self.stdin_end {
                v.extend(record(STDIN, id, b""));
            }
        }
        v
    }
}

/// A one-shot FastCGI request on a fresh connection (no KEEP_CONN, id 1).
pub fn request(addr: &str, req: &Request) -> Response {
    let mut c = Client::connect(addr);
    c.request(1, false, req)
}

/// A CGI response (RFC 3875 §6): header lines, a blank line, the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgiResponse {
    pub status: u16,
    /// The whole Status value ("200 OK").
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    /// The header block as sent, up to and including the blank line.
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

impl CgiResponse {
    /// Parses a CGI response; panics (with the bytes) when it is not one.
    pub fn parse(raw: &[u8]) -> CgiResponse {
        let at = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "no end of headers in response: {:?}",
                    String::from_utf8_lossy(raw)
                )
            });
        let head = &raw[..at + 4];
        let text = std::str::from_utf8(&raw[..at])
            .unwrap_or_else(|_| panic!("non-UTF-8 header block: {:?}", &raw[..at]));
        let mut headers = Vec::new();
        for line in text.split("\r\n") {
            let (n, v) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {line:?} in {text:?}"));
            headers.push((n.to_string(), v.trim_start().to_string()));
        }
        let status_line = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("status"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "200 OK".into());
        let status = status_line[..3]
            .parse()
            .unwrap_or_else(|_| panic!("bad status {status_line:?}"));
        CgiResponse {
            status,
            status_line,
            headers,
            head: head.to_vec(),
            body: raw[at + 4..].to_vec(),
        }
    }

    /// The value of the first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status_line,
                self.text()
            )
        })
    }
}

/// `n` bytes of the fixtures' pattern (byte i is i % 251).
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

// ---- Utilities shared by the protocol and WSGI tests ------------------------------------

/// Waits until `path` exists and is non-empty; returns its text. Panics after `secs`.
pub fn wait_for_file(path: &std::path::Path, secs: u64) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        if Instant::now() > end {
            panic!("{} was never written (close() not called?)", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// sha256 of `data` as lowercase hex, computed by coreutils' sha256sum (independent of
/// the code under test).
pub fn sha256_hex(data: &[u8]) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    let mut stdin = child.stdin.take().expect("sha256sum stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("sha256sum output");
    writer
        .join()
        .expect("writer thread")
        .expect("write to sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum printed a digest")
        .to_string()
}

/// `wsgiref.validate` reports a server-side violation by raising AssertionError inside the
/// app (logged as an application error), by a WSGIWarning, or by a complaint when a
/// response iterable is garbage collected without close() having been called.
pub fn assert_validator_quiet(log: &str) {
    for bad in [
        "AssertionError",
        "WSGIWarning",
        "garbage collected without being closed",
    ] {
        assert!(
            !log.contains(bad),
            "wsgiref.validate complained ({bad}); log:\n{log}"
        );
    }
}

/// Pseudo-random bytes (xorshift), reproducible from `seed`.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
