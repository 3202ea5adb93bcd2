//! The name/value parameters of one request (FastCGI PARAMS or the SCGI header), stored in
//! one contiguous buffer with an index, so decoding a request does one growing allocation
//! instead of two per parameter.
//!
//! Order is kept; a repeated name keeps every occurrence (front ends do repeat names: nginx
//! sends a repeated request header as a repeated `HTTP_*` param). `get` returns the last
//! occurrence, which is the one that wins for configured params such as SCRIPT_NAME.

use std::ops::Range;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    data: Vec<u8>,
    index: Vec<(u32, u32, u32)>, // (name start, value start, value end); name ends at value start
}

impl Params {
    /// The most bytes of names and values one `Params` holds: offsets are `u32`. The
    /// configuration caps `max_params_bytes` and `max_scgi_header` at this (`config::resolve`),
    /// and the codecs stop a request at those limits before pushing past them.
    pub const MAX_BYTES: usize = u32::MAX as usize;

    /// The most pairs one `Params` holds: pairs are numbered with `u32` (the environ's
    /// duplicate finder keeps `u32::MAX` for an empty slot, and numbers stop at one below).
    /// The configuration caps `max_params` at this.
    pub const MAX_COUNT: usize = u32::MAX as usize;

    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(bytes: usize, count: usize) -> Self {
        Params {
            data: Vec::with_capacity(bytes),
            index: Vec::with_capacity(count),
        }
    }

    /// Appends one pair. Callers keep to `Limits` before pushing, whose byte and count limits
    /// are at most [`Params::MAX_BYTES`] and [`Params::MAX_COUNT`], so the offsets fit.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        debug_assert!(self.data.len() + name.len() + value.len() <= Params::MAX_BYTES);
        let start = self.data.len() as u32;
        self.data.extend_from_slice(name);
        let mid = self.data.len() as u32;
        self.data.extend_from_slice(value);
        self.index.push((start, mid, self.data.len() as u32));
    }

    /// Appends one pair given as its name and value back to back (as a FastCGI name-value
    /// pair carries them): one copy instead of two. `name_len` must not exceed its length.
    /// The same bounds as for [`Params::push`] apply.
    pub fn push_joined(&mut self, name_value: &[u8], name_len: usize) {
        debug_assert!(self.data.len() + name_value.len() <= Params::MAX_BYTES);
        let start = self.data.len() as u32;
        self.data.extend_from_slice(name_value);
        let mid = start + name_len.min(name_value.len()) as u32;
        self.index.push((start, mid, self.data.len() as u32));
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Total bytes of names and values.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Every name and value byte, back to back in arrival order (no separators), for checks
    /// that look at all of them at once.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The `i`-th pair in arrival order.
    pub fn pair(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let &(s, m, e) = self.index.get(i)?;
        Some((&self.data[range(s, m)], &self.data[range(m, e)]))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> + '_ {
        self.index
            .iter()
            .map(move |&(s, m, e)| (&self.data[range(s, m)], &self.data[range(m, e)]))
    }

    /// The value of the last occurrence of `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

fn range(a: u32, b: u32) -> Range<usize> {
    a as usize..b as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_last_wins() {
        let mut p = Params::new();
        p.push(b"A", b"1");
        p.push(b"B", b"");
        p.push(b"A", b"2");
        assert_eq!(p.len(), 3);
        assert_eq!(p.get(b"A"), Some(&b"2"[..]));
        assert_eq!(p.get(b"B"), Some(&b""[..]));
        assert_eq!(p.get(b"C"), None);
        let all: Vec<_> = p.iter().collect();
        assert_eq!(all[0], (&b"A"[..], &b"1"[..]));
        assert_eq!(p.pair(2), Some((&b"A"[..], &b"2"[..])));
        assert_eq!(p.bytes(), 5);
    }

    #[test]
    fn joined_pairs_split_at_the_name_length() {
        let mut p = Params::new();
        p.push_joined(b"HTTP_HOSTexample", 9);
        p.push_joined(b"EMPTY", 5);
        p.push_joined(b"value-only", 0);
        p.push(b"A", b"1");
        let all: Vec<_> = p.iter().collect();
        assert_eq!(
            all,
            [
                (&b"HTTP_HOST"[..], &b"example"[..]),
                (b"EMPTY", b""),
                (b"", b"value-only"),
                (b"A", b"1"),
            ]
        );
        // A name length past the bytes is clamped, not a panic later.
        p.push_joined(b"AB", 5);
        assert_eq!(p.pair(4), Some((&b"AB"[..], &b""[..])));
    }
}
