//! Application-side output: the FCGI_STDOUT, FCGI_STDERR and FCGI_END_REQUEST records a
//! response is made of (FastCGI §5.3, §5.5). No padding is written (it is optional,
//! FastCGI §3.3).

use super::{
    encode_end_record, encode_header, encode_stream, ProtocolStatus, MAX_CONTENT, STDERR, STDOUT,
};

/// Appends `data` as FCGI_STDOUT records of at most `MAX_CONTENT` bytes each; empty data
/// writes nothing (the empty record that ends the stream comes from
/// [`encode_end_request`]).
pub fn encode_stdout(id: u16, data: &[u8], out: &mut Vec<u8>) {
    encode_stream(STDOUT, id, data, out);
}

/// Appends `head` followed by `body` as one FCGI_STDOUT stream: the first record carries
/// the header block and as much of the body as fits, so a short response is one record.
/// A front end may read the header block's record alone: Apache mod_authnz_fcgi keeps as
/// an authorizer's denial only the body bytes that came in the record that ended its
/// headers.
pub fn encode_stdout_parts(id: u16, head: &[u8], body: &[u8], out: &mut Vec<u8>) {
    if head.is_empty() {
        return encode_stdout(id, body, out);
    }
    // A header block is far below 2^16 bytes in practice; a longer one is split as any
    // stream is.
    let Some(room) = MAX_CONTENT.checked_sub(head.len()) else {
        encode_stdout(id, head, out);
        return encode_stdout(id, body, out);
    };
    let (first, rest) = body.split_at(room.min(body.len()));
    // head + first <= MAX_CONTENT = u16::MAX, so the cast is exact.
    out.reserve(super::HEADER_LEN + head.len() + first.len());
    encode_header(STDOUT, id, (head.len() + first.len()) as u16, out);
    out.extend_from_slice(head);
    out.extend_from_slice(first);
    encode_stdout(id, rest, out);
}

/// Appends `data` as FCGI_STDERR records of at most `MAX_CONTENT` bytes each; empty data
/// writes nothing.
pub fn encode_stderr(id: u16, data: &[u8], out: &mut Vec<u8>) {
    encode_stream(STDERR, id, data, out);
}

/// Empty STDOUT record (end of stream) followed by END_REQUEST{app_status, status}
/// (FastCGI §6.2: "After sending all its stdout and stderr data, the Responder application
/// sends a FCGI_END_REQUEST record").
pub fn encode_end_request(id: u16, app_status: u32, status: ProtocolStatus, out: &mut Vec<u8>) {
    out.reserve(24);
    encode_header(STDOUT, id, 0, out);
    encode_end_record(id, app_status, status, out);
}
