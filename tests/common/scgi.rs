//! A raw SCGI client for the tests, written from the SCGI protocol text alone
//! (shared/specs/scgi-protocol.txt), independent of wsgid's codec: a netstring of
//! `name NUL value NUL` headers with CONTENT_LENGTH first, then the body; the server
//! answers with a CGI response and closes the connection.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use super::fcgi::{CgiResponse, Request, READ_TIMEOUT};

/// A netstring (SCGI §4): "len:" + bytes + ",".
pub fn netstring(payload: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v.push(b',');
    v
}

/// Header pairs as sent, in the given order, with no checks.
pub fn header_block(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (n, val) in pairs {
        v.extend_from_slice(n);
        v.push(0);
        v.extend_from_slice(val);
        v.push(0);
    }
    v
}

/// The header pairs of `req` as SCGI §3 orders them: CONTENT_LENGTH first (the request's
/// own value if it has one, else the body length), then SCGI "1", then the rest.
pub fn pairs(req: &Request) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cl = req
        .param("CONTENT_LENGTH")
        .filter(|v| !v.is_empty())
        .map(|v| v.to_vec())
        .unwrap_or_else(|| req.body.len().to_string().into_bytes());
    let mut out = vec![
        (b"CONTENT_LENGTH".to_vec(), cl),
        (b"SCGI".to_vec(), b"1".to_vec()),
    ];
    out.extend(
        req.params
            .iter()
            .filter(|(n, _)| n != b"CONTENT_LENGTH" && n != b"SCGI")
            .cloned(),
    );
    out
}

/// The whole request: netstring header then body.
pub fn encode(req: &Request) -> Vec<u8> {
    let mut v = netstring(&header_block(&pairs(req)));
    v.extend_from_slice(&req.body);
    v
}

/// Connects, sends `bytes` (ignoring a write error: the server may answer and close before
/// reading everything), and reads until the server closes. Panics if it does not close
/// within the read timeout.
pub fn exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    let _ = s.write_all(bytes);
    read_all(&mut s)
}

pub fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(READ_TIMEOUT))
        .expect("set read timeout");
    s.set_write_timeout(Some(READ_TIMEOUT))
        .expect("set write timeout");
    s
}

/// Reads to EOF (a reset after some data counts as the end); panics on timeout.
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return out
            }
            Err(e) => panic!(
                "wsgid did not finish the SCGI response ({e}); got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// One request on a fresh connection; the parsed CGI response.
pub fn request(addr: &str, req: &Request) -> CgiResponse {
    CgiResponse::parse(&exchange(addr, &encode(req)))
}

/// Sends raw bytes and parses what comes back (until the server closes) as a CGI
/// response.
pub fn raw_request(addr: &str, bytes: &[u8]) -> CgiResponse {
    CgiResponse::parse(&exchange(addr, bytes))
}

/// Connects and closes without sending anything.
pub fn empty_connection(addr: &str) {
    let s = connect(addr);
    let _ = s.shutdown(Shutdown::Both);
}

/// Sends `bytes` and reads one response that carries a Content-Length (wsgid's own error
/// responses do), without waiting for the server to close. Panics on timeout.
pub fn exchange_sized(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(at) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..at]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(len) = len {
                if out.len() >= at + 4 + len {
                    return out;
                }
            }
        }
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "no complete response from wsgid ({e}); got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}
