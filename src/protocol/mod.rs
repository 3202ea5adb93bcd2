//! Sans-I/O codecs for the two gateway protocols wsgid speaks: bytes in, events out.
//!
//! Nothing here touches a socket, a clock or Python. The worker's I/O loop feeds received
//! bytes into a codec, takes decoded events out, and writes the bytes the codec (or the
//! `encode_*` helpers) produce. This keeps the codecs small, deterministic, property-tested
//! and fuzzed (see `fuzz/`). The codecs also own the request lifecycle (`lifecycle`):
//! whether a connection stays open after a request, how an aborted or broken one ends.

pub mod fastcgi;
pub mod lifecycle;
pub mod params;
pub mod scgi;

pub use lifecycle::{Next, Outcome, Role};
pub use params::Params;

/// Explicit limits applied while decoding a request. Every limit is documented in
/// wsgid(8) and wsgid.toml(5) and has a test at and past its boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of all parameter names and values of one request.
    pub max_params_bytes: usize,
    /// Number of parameters of one request.
    pub max_params: usize,
    /// Length of the SCGI netstring header (the number before the colon).
    pub max_scgi_header: usize,
    /// Request body size; `None` means unlimited.
    pub max_body: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_params_bytes: 256 * 1024,
            max_params: 1000,
            max_scgi_header: 256 * 1024,
            max_body: None,
        }
    }
}

/// Which limit a request broke; named in the log line and in the error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    ParamsBytes,
    ParamsCount,
    ScgiHeader,
    Body,
}

impl LimitKind {
    /// The configuration key of this limit, as written in logs.
    pub fn key(self) -> &'static str {
        match self {
            LimitKind::ParamsBytes => "max_params_bytes",
            LimitKind::ParamsCount => "max_params",
            LimitKind::ScgiHeader => "max_scgi_header",
            LimitKind::Body => "max_body",
        }
    }

    /// The HTTP status a front end should relay for this limit.
    pub fn status(self) -> &'static str {
        match self {
            LimitKind::ParamsBytes | LimitKind::ParamsCount | LimitKind::ScgiHeader => {
                "431 Request Header Fields Too Large"
            }
            LimitKind::Body => "413 Content Too Large",
        }
    }
}

/// The longest HTTP method `looks_like_http` takes (`PROPPATCH` and the like fit).
pub(crate) const MAX_METHOD: usize = 16;

/// Whether `start`, the first bytes a client sent, begin an HTTP/1 request line
/// (`GET / HTTP/1.1`): a method of upper-case letters followed by a space. A FastCGI record
/// starts with version 1 and an SCGI request with a digit, so a web browser or `curl`
/// pointed straight at wsgid's port is told apart from a malformed front end.
pub fn looks_like_http(start: &[u8]) -> bool {
    let method = start.iter().take_while(|b| b.is_ascii_uppercase()).count();
    (1..=MAX_METHOD).contains(&method) && start.get(method) == Some(&b' ')
}

/// What an HTTP client that connected to a FastCGI or SCGI port is answered: a complete
/// HTTP/1.0 response, closed by the connection's end, saying a web server belongs in
/// front of wsgid.
macro_rules! not_an_http_port {
    ($a_protocol:literal, $protocol:literal, $passes:literal) => {
        concat!(
            "HTTP/1.0 400 Bad Request\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Connection: close\r\n",
            "\r\n",
            "This is ",
            $a_protocol,
            " port (wsgid), not an HTTP one: a web server must be in front of it, taking ",
            "the HTTP requests and passing them on over ",
            $protocol,
            " (",
            $passes,
            ").\n"
        )
        .as_bytes()
    };
}

/// The answer to an HTTP request on a FastCGI port.
pub const NOT_HTTP_FASTCGI: &[u8] = not_an_http_port!(
    "a FastCGI",
    "FastCGI",
    "nginx fastcgi_pass, Apache mod_proxy_fcgi"
);
/// The answer to an HTTP request on an SCGI port.
pub const NOT_HTTP_SCGI: &[u8] =
    not_an_http_port!("an SCGI", "SCGI", "nginx scgi_pass, Apache mod_proxy_scgi");

/// A non-empty run of ASCII digits (leading zeros allowed) that fits in u64: the form of
/// CONTENT_LENGTH in SCGI (§3) and in CGI (RFC 3875 §4.1.2). A number too large for u64 is
/// `None`, like any other malformed one: where the value is used as a length.
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The same syntax as [`parse_decimal`], but a number too large for u64 reads as
/// `u64::MAX` rather than `None`: where the value is only compared with a limit (a declared
/// CONTENT_LENGTH against `max_body`), a huge one is over any limit, not malformed.
pub fn parse_decimal_saturating(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_lines_are_recognised() {
        for http in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"GET / H",
            b"POST /x",
            b"OPTIONS * HTTP/1.1",
            b"OPTIONS ",
            b"CONNECT example.com:443 HTTP/1.1",
            b"PRI * HTTP/2.0",
            b"PROPFIND /dav HTTP/1.1",
        ] {
            assert!(looks_like_http(http), "{:?}", String::from_utf8_lossy(http));
        }
        for other in [
            &b""[..],
            b"GET",
            b" GET /",
            b"get / HTTP/1.1",
            b"\x01\x01\x00\x01\x00\x08\x00\x00",
            b"70:CONTENT_LENGTH",
            b"G\x00T /",
            b"VERYLONGMETHODNAMEXX / HTTP/1.1",
        ] {
            assert!(
                !looks_like_http(other),
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn not_an_http_port_is_a_whole_response() {
        for (reply, protocol) in [(NOT_HTTP_FASTCGI, "a FastCGI"), (NOT_HTTP_SCGI, "an SCGI")] {
            let text = std::str::from_utf8(reply).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{text}");
            assert!(head.contains("Connection: close"), "{text}");
            assert!(
                body.starts_with(&format!("This is {protocol} port (wsgid)")),
                "{text}"
            );
            assert!(
                body.contains("a web server must be in front of it"),
                "{text}"
            );
        }
    }

    #[test]
    fn decimals_checked_and_saturating() {
        for parse in [parse_decimal, parse_decimal_saturating] {
            assert_eq!(parse(b"0"), Some(0));
            assert_eq!(parse(b"007"), Some(7));
            assert_eq!(parse(b"18446744073709551615"), Some(u64::MAX));
            for bad in [&b""[..], b"-1", b"+1", b"1 ", b" 1", b"1.0", b"0x10"] {
                assert_eq!(parse(bad), None, "{bad:?}");
            }
        }
        let past = b"18446744073709551616";
        assert_eq!(parse_decimal(past), None);
        assert_eq!(parse_decimal_saturating(past), Some(u64::MAX));
        let far_past = b"99999999999999999999999999999999";
        assert_eq!(parse_decimal(far_past), None);
        assert_eq!(parse_decimal_saturating(far_past), Some(u64::MAX));
    }
}
