//! Sans-I/O codecs for the two gateway protocols wsgid speaks: bytes in, events out.
//!
//! Nothing here touches a socket, a clock or Python. The worker's I/O loop feeds received
//! bytes into a codec, takes decoded events out, and writes the bytes the codec (or the
//! `encode_*` helpers) produce. This keeps the codecs small, deterministic, property-tested
//! and fuzzed (see `fuzz/`).

pub mod fastcgi;
pub mod params;
pub mod scgi;

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
