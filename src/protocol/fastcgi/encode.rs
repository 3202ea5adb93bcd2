//! Application-side output: the FCGI_STDOUT, FCGI_STDERR and FCGI_END_REQUEST records a
//! response is made of (FastCGI §5.3, §5.5). No padding is written (it is optional,
//! FastCGI §3.3).

use super::{encode_end_record, encode_header, encode_stream, ProtocolStatus, STDERR, STDOUT};

/// Appends `data` as FCGI_STDOUT records of at most `MAX_CONTENT` bytes each; empty data
/// writes nothing (the empty record that ends the stream comes from
/// [`encode_end_request`]).
pub fn encode_stdout(id: u16, data: &[u8], out: &mut Vec<u8>) {
    encode_stream(STDOUT, id, data, out);
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
