//! FastCGI 1.0 codec: record framing, name/value pairs, and the constants of FastCGI §8.
//!
//! The application side is `conn` (decoding what a front end sends, as a [`Connection`]
//! state machine) and `encode` (the STDOUT/STDERR/END_REQUEST records the application sends
//! back: [`encode_stdout`], [`encode_stderr`], [`encode_end_request`]). [`client`] is the front-end side (encoding requests, decoding
//! responses), used by the load client, the benchmarks and the property tests.
//!
//! Everything here is sans-I/O: bytes in, events and bytes out.

pub mod client;
mod conn;
mod encode;

#[cfg(test)]
mod tests;

use std::fmt;

pub use conn::{Connection, Event};
pub use encode::{encode_end_request, encode_stderr, encode_stdout, encode_stdout_parts};

/// Number of bytes in a record header (FastCGI §8 `FCGI_HEADER_LEN`).
pub const HEADER_LEN: usize = 8;
/// The only protocol version (FastCGI §8 `FCGI_VERSION_1`).
pub const VERSION_1: u8 = 1;
/// Largest `contentLength` of one record (FastCGI §3.3: "Between 0 and 65535 bytes").
pub const MAX_CONTENT: usize = 65535;

// Record types (FastCGI §8).
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

/// The request id of management records (FastCGI §8 `FCGI_NULL_REQUEST_ID`).
pub const NULL_REQUEST_ID: u16 = 0;

/// `flags` bit of FCGI_BeginRequestBody: keep the connection open after the request
/// (FastCGI §5.1).
pub const KEEP_CONN: u8 = 1;

// Roles (FastCGI §8).
pub const RESPONDER: u16 = 1;
pub const AUTHORIZER: u16 = 2;
pub const FILTER: u16 = 3;

// Variable names of FCGI_GET_VALUES / FCGI_GET_VALUES_RESULT (FastCGI §4.1).
pub const MAX_CONNS_NAME: &[u8] = b"FCGI_MAX_CONNS";
pub const MAX_REQS_NAME: &[u8] = b"FCGI_MAX_REQS";
pub const MPXS_CONNS_NAME: &[u8] = b"FCGI_MPXS_CONNS";

/// `protocolStatus` of FCGI_END_REQUEST (FastCGI §5.5).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolStatus {
    /// Normal end of request.
    RequestComplete = 0,
    /// A second concurrent request on a connection that does not multiplex.
    CantMpxConn = 1,
    /// The application ran out of some resource.
    Overloaded = 2,
    /// The front end asked for a role the application does not play.
    UnknownRole = 3,
}

/// What the application tells a front end in FCGI_GET_VALUES_RESULT (FastCGI §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `FCGI_MAX_CONNS`: concurrent transport connections accepted.
    pub max_conns: usize,
    /// `FCGI_MAX_REQS`: concurrent requests accepted (on one connection, for the codec).
    pub max_reqs: usize,
    /// `FCGI_MPXS_CONNS`: whether several requests may share one connection.
    pub mpxs_conns: bool,
}

/// The peer broke the protocol; the connection cannot be used any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub kind: ErrorKind,
    pub reason: String,
}

/// What kind of peer broke the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A front end (or something posing as one) sent malformed FastCGI.
    Malformed,
    /// The connection opened with an HTTP request line: an HTTP client (a browser,
    /// `curl`) connected straight to the FastCGI port. It is answered with
    /// [`ProtocolError::http_reply`] before the connection is closed.
    HttpRequest,
}

impl ProtocolError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        ProtocolError {
            kind: ErrorKind::Malformed,
            reason: reason.into(),
        }
    }

    /// An HTTP client connected to the FastCGI port.
    pub(crate) fn http_request() -> Self {
        ProtocolError {
            kind: ErrorKind::HttpRequest,
            reason: "an HTTP request arrived on a FastCGI port: HTTP clients must go to a web \
                     server in front of wsgid (nginx fastcgi_pass, Apache mod_proxy_fcgi), \
                     which passes their requests on over FastCGI"
                .into(),
        }
    }

    /// The bytes to send back before closing, for an HTTP client: a plain-text HTTP/1.0
    /// 400 saying this is a FastCGI port. None for a malformed front end, which gets no
    /// answer.
    pub fn http_reply(&self) -> Option<&'static [u8]> {
        (self.kind == ErrorKind::HttpRequest).then_some(crate::protocol::NOT_HTTP_FASTCGI)
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Malformed => write!(f, "FastCGI protocol error: {}", self.reason),
            ErrorKind::HttpRequest => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A record header, FCGI_Header of FastCGI §3.3 / §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub record_type: u8,
    pub request_id: u16,
    pub content_length: u16,
    pub padding_length: u8,
}

impl Header {
    /// Reads the eight header bytes (the reserved byte is ignored).
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            version: b[0],
            record_type: b[1],
            request_id: u16::from_be_bytes([b[2], b[3]]),
            content_length: u16::from_be_bytes([b[4], b[5]]),
            padding_length: b[6],
        }
    }

    /// Appends the eight header bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let [i1, i0] = self.request_id.to_be_bytes();
        let [c1, c0] = self.content_length.to_be_bytes();
        out.extend_from_slice(&[
            self.version,
            self.record_type,
            i1,
            i0,
            c1,
            c0,
            self.padding_length,
            0,
        ]);
    }

    /// Content plus padding: the bytes that follow the header.
    pub fn body_len(&self) -> usize {
        self.content_length as usize + self.padding_length as usize
    }
}

/// Appends a version-1 header with no padding for a record of `content_length` bytes.
pub(crate) fn encode_header(
    record_type: u8,
    request_id: u16,
    content_length: u16,
    out: &mut Vec<u8>,
) {
    Header {
        version: VERSION_1,
        record_type,
        request_id,
        content_length,
        padding_length: 0,
    }
    .encode(out);
}

/// Appends `data` as records of `record_type`, each at most [`MAX_CONTENT`] bytes; nothing
/// for empty data.
pub(crate) fn encode_stream(record_type: u8, request_id: u16, data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + HEADER_LEN * data.len().div_ceil(MAX_CONTENT));
    for chunk in data.chunks(MAX_CONTENT) {
        // chunks() yields at most MAX_CONTENT (= u16::MAX) bytes, so the cast is exact.
        encode_header(record_type, request_id, chunk.len() as u16, out);
        out.extend_from_slice(chunk);
    }
}

/// Appends an FCGI_END_REQUEST record (FastCGI §5.5) and nothing else.
pub(crate) fn encode_end_record(
    request_id: u16,
    app_status: u32,
    status: ProtocolStatus,
    out: &mut Vec<u8>,
) {
    encode_header(END_REQUEST, request_id, 8, out);
    let [a3, a2, a1, a0] = app_status.to_be_bytes();
    out.extend_from_slice(&[a3, a2, a1, a0, status as u8, 0, 0, 0]);
}

/// Largest length a name/value length field can carry (31 bits, FastCGI §3.4).
pub const MAX_NAME_VALUE_LEN: usize = 0x7fff_ffff;

/// Appends one length field: 1 byte up to 127, else 4 bytes with the high bit set
/// (FastCGI §3.4).
///
/// # Panics
/// If `len` exceeds [`MAX_NAME_VALUE_LEN`], which the format cannot express.
pub(crate) fn encode_length(len: usize, out: &mut Vec<u8>) {
    assert!(
        len <= MAX_NAME_VALUE_LEN,
        "FastCGI name/value length over 2^31-1"
    );
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes());
    }
}

/// Reads one length field at the start of `buf` (FastCGI §3.4): `Ok((length, field size))`,
/// or `Err(bytes needed)` when `buf` is too short to hold the whole field.
#[inline]
fn decode_length(buf: &[u8]) -> Result<(usize, usize), usize> {
    match buf {
        [] => Err(1),
        [b0, ..] if b0 & 0x80 == 0 => Ok((*b0 as usize, 1)),
        [b0, b1, b2, b3, ..] => Ok((u32::from_be_bytes([b0 & 0x7f, *b1, *b2, *b3]) as usize, 4)),
        _ => Err(4),
    }
}

/// The two length fields that open a name/value pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PairHeader {
    /// Bytes taken by the two length fields (2 to 8).
    pub fields: usize,
    pub name_len: usize,
    pub value_len: usize,
}

impl PairHeader {
    /// Reads the length fields at the start of `buf`, or `Err(n)`: `buf` must hold at least
    /// `n` bytes before they can be read.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<PairHeader, usize> {
        let (name_len, a) = decode_length(buf)?;
        let (value_len, b) = decode_length(&buf[a..]).map_err(|need| a + need)?;
        Ok(PairHeader {
            fields: a + b,
            name_len,
            value_len,
        })
    }

    /// Whole size of the pair: length fields, name and value.
    #[inline]
    pub fn total(&self) -> usize {
        // Each length is below 2^31, so this cannot overflow on 64-bit targets; saturate
        // elsewhere (a saturated size is never present in a buffer, so it reads as "short").
        self.fields
            .saturating_add(self.name_len)
            .saturating_add(self.value_len)
    }
}

/// Appends one name/value pair (FastCGI §3.4).
pub(crate) fn write_name_value(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.reserve(8 + name.len() + value.len());
    encode_length(name.len(), out);
    encode_length(value.len(), out);
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Iterates over the name/value pairs of one complete buffer (a discrete record such as
/// FCGI_GET_VALUES). A pair whose lengths run past the end of the buffer is an error
/// (the class of bug behind CVE-2025-23016).
pub(crate) struct Pairs<'a> {
    buf: &'a [u8],
}

impl<'a> Pairs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Pairs { buf }
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), ProtocolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let malformed = || ProtocolError::new("name-value pair runs past the end of its record");
        let h = match PairHeader::decode(self.buf) {
            Ok(h) => h,
            Err(_) => {
                self.buf = &[];
                return Some(Err(malformed()));
            }
        };
        if self.buf.len() < h.total() {
            self.buf = &[];
            return Some(Err(malformed()));
        }
        let name = &self.buf[h.fields..h.fields + h.name_len];
        let value = &self.buf[h.fields + h.name_len..h.total()];
        self.buf = &self.buf[h.total()..];
        Some(Ok((name, value)))
    }
}
