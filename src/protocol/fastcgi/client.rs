//! Front-end side of FastCGI: encoders for what a web server sends (BEGIN_REQUEST, PARAMS,
//! STDIN, ABORT_REQUEST, GET_VALUES) and a decoder for what an application answers.
//!
//! wsgid itself is the application; this side exists for the load client, the benchmarks
//! and the round-trip property tests.

use super::{
    encode_header, encode_stream, write_name_value, Header, Pairs, ProtocolError, ABORT_REQUEST,
    BEGIN_REQUEST, END_REQUEST, GET_VALUES, GET_VALUES_RESULT, HEADER_LEN, KEEP_CONN, MAX_CONTENT,
    NULL_REQUEST_ID, PARAMS, STDERR, STDIN, STDOUT, UNKNOWN_TYPE, VERSION_1,
};
use std::collections::VecDeque;

/// Appends FCGI_BEGIN_REQUEST (FastCGI §5.1).
pub fn encode_begin_request(id: u16, role: u16, keep_conn: bool, out: &mut Vec<u8>) {
    encode_header(BEGIN_REQUEST, id, 8, out);
    let [r1, r0] = role.to_be_bytes();
    let flags = if keep_conn { KEEP_CONN } else { 0 };
    out.extend_from_slice(&[r1, r0, flags, 0, 0, 0, 0, 0]);
}

/// Appends one name/value pair (FastCGI §3.4): each length in 1 byte up to 127, else in 4
/// bytes with the high bit set.
///
/// # Panics
/// If a length exceeds 2^31 - 1, which the format cannot express.
pub fn encode_name_value(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    write_name_value(name, value, out);
}

/// Appends the whole FCGI_PARAMS stream (FastCGI §5.2): the encoded pairs split across
/// records of at most `MAX_CONTENT` bytes (a pair may straddle records), then the empty
/// PARAMS record that ends the stream.
pub fn encode_params(id: u16, params: &[(&[u8], &[u8])], out: &mut Vec<u8>) {
    let mut stream = Vec::with_capacity(
        params
            .iter()
            .map(|(n, v)| 8 + n.len() + v.len())
            .sum::<usize>(),
    );
    for (name, value) in params {
        write_name_value(name, value, &mut stream);
    }
    encode_stream(PARAMS, id, &stream, out);
    encode_header(PARAMS, id, 0, out);
}

/// Appends `data` as FCGI_STDIN records of at most `MAX_CONTENT` bytes each; empty data
/// appends the empty record that ends the stream (FastCGI §5.3).
pub fn encode_stdin(id: u16, data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        encode_header(STDIN, id, 0, out);
    } else {
        encode_stream(STDIN, id, data, out);
    }
}

/// Appends FCGI_ABORT_REQUEST (FastCGI §5.4).
pub fn encode_abort(id: u16, out: &mut Vec<u8>) {
    encode_header(ABORT_REQUEST, id, 0, out);
}

/// Appends one FCGI_GET_VALUES record asking for `names` (FastCGI §4.1).
///
/// # Panics
/// If the encoded names exceed `MAX_CONTENT` bytes: the record is discrete and cannot span
/// records.
pub fn encode_get_values(names: &[&[u8]], out: &mut Vec<u8>) {
    let mut body = Vec::new();
    for name in names {
        write_name_value(name, b"", &mut body);
    }
    assert!(body.len() <= MAX_CONTENT, "FCGI_GET_VALUES record too long");
    encode_header(GET_VALUES, NULL_REQUEST_ID, body.len() as u16, out);
    out.extend_from_slice(&body);
}

/// What an application sent, record by record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseEvent {
    /// A non-empty FCGI_STDOUT record (empty ones, which end the stream, are not reported).
    Stdout { id: u16, data: Vec<u8> },
    /// A non-empty FCGI_STDERR record.
    Stderr { id: u16, data: Vec<u8> },
    /// FCGI_END_REQUEST (FastCGI §5.5).
    End {
        id: u16,
        app_status: u32,
        protocol_status: u8,
    },
    /// FCGI_GET_VALUES_RESULT (FastCGI §4.1).
    GetValuesResult { pairs: Vec<(Vec<u8>, Vec<u8>)> },
    /// FCGI_UNKNOWN_TYPE (FastCGI §4.2).
    UnknownType { record_type: u8 },
}

/// Decodes the records an application sends to a front end.
#[derive(Debug, Default)]
pub struct ResponseDecoder {
    buf: Vec<u8>,
    events: VecDeque<ResponseEvent>,
    failed: Option<ProtocolError>,
}

impl ResponseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes in any split. Err = not a valid application-to-front-end record stream
    /// (sticky: later calls return it again).
    pub fn receive(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        let r = loop {
            let Some((h, rest)) = self.buf[pos..].split_first_chunk::<HEADER_LEN>() else {
                break Ok(());
            };
            let hdr = Header::parse(h);
            if rest.len() < hdr.body_len() {
                break Ok(());
            }
            let content = &rest[..hdr.content_length as usize];
            match decode_record(&hdr, content) {
                Ok(Some(ev)) => self.events.push_back(ev),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            pos += HEADER_LEN + hdr.body_len();
        };
        self.buf.drain(..pos);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    pub fn poll(&mut self) -> Option<ResponseEvent> {
        self.events.pop_front()
    }

    /// Bytes of an incomplete record held back.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

fn decode_record(hdr: &Header, content: &[u8]) -> Result<Option<ResponseEvent>, ProtocolError> {
    if hdr.version != VERSION_1 {
        return Err(ProtocolError::new(format!(
            "unsupported FastCGI version {}",
            hdr.version
        )));
    }
    let id = hdr.request_id;
    let ev = match (hdr.record_type, content) {
        (STDOUT | STDERR, []) => return Ok(None),
        (STDOUT, data) => ResponseEvent::Stdout {
            id,
            data: data.to_vec(),
        },
        (STDERR, data) => ResponseEvent::Stderr {
            id,
            data: data.to_vec(),
        },
        (END_REQUEST, [a3, a2, a1, a0, status, _, _, _]) => ResponseEvent::End {
            id,
            app_status: u32::from_be_bytes([*a3, *a2, *a1, *a0]),
            protocol_status: *status,
        },
        (GET_VALUES_RESULT, body) => ResponseEvent::GetValuesResult {
            pairs: Pairs::new(body)
                .map(|p| p.map(|(n, v)| (n.to_vec(), v.to_vec())))
                .collect::<Result<_, _>>()?,
        },
        (UNKNOWN_TYPE, [t, _, _, _, _, _, _, _]) => ResponseEvent::UnknownType { record_type: *t },
        (t, _) => {
            return Err(ProtocolError::new(format!(
                "unexpected record type {t} ({} content bytes) from an application",
                content.len()
            )))
        }
    };
    Ok(Some(ev))
}
