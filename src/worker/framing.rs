//! Frames response bytes for the connection's protocol: FastCGI STDOUT records and
//! END_REQUEST (FastCGI §5.3, §5.5), or the raw CGI response stream for SCGI (SCGI §3: the
//! response is written as is and the connection closed).

use crate::protocol::fastcgi::{self, ProtocolStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Fastcgi { id: u16 },
    Scgi,
}

impl Framing {
    /// Appends response bytes (CGI headers or body) framed for the wire.
    pub fn body(self, data: &[u8], out: &mut Vec<u8>) {
        match self {
            Framing::Fastcgi { id } => fastcgi::encode_stdout(id, data, out),
            Framing::Scgi => out.extend_from_slice(data),
        }
    }

    /// Appends the CGI header block, when it is still owed, then body bytes, straight into
    /// `out` (FastCGI: in the same records, so a short response is one STDOUT record).
    pub fn head_and_body(self, head: Option<&[u8]>, body: &[u8], out: &mut Vec<u8>) {
        match (self, head) {
            (Framing::Fastcgi { id }, Some(h)) => fastcgi::encode_stdout_parts(id, h, body, out),
            (_, Some(h)) => {
                self.body(h, out);
                self.body(body, out);
            }
            (_, None) => self.body(body, out),
        }
    }

    /// Appends what ends the response (FastCGI: empty STDOUT + END_REQUEST; SCGI: nothing,
    /// the connection close ends it).
    pub fn end(self, app_status: u32, out: &mut Vec<u8>) {
        if let Framing::Fastcgi { id } = self {
            fastcgi::encode_end_request(id, app_status, ProtocolStatus::RequestComplete, out);
        }
    }

    /// A complete short plain-text response from wsgid itself (errors, 404 outside the mount).
    pub fn simple_response(self, status: &str, text: &str, out: &mut Vec<u8>) {
        let head = format!(
            "Status: {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        self.head_and_body(Some(head.as_bytes()), text.as_bytes(), out);
        self.end(0, out);
    }
}
