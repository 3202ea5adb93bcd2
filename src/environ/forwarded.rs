//! `X-Forwarded-For`, `-Proto`, `-Host` and `-Prefix`, applied to the environ when the
//! request came to the front end from a proxy the application trusts (`trusted_proxies`).
//!
//! The front end's own `REMOTE_ADDR` param names its client: the browser, or a proxy (a
//! load balancer, a CDN, a TLS terminator) that forwarded the request and described the
//! original one in `X-Forwarded-*` headers. Those headers reach the environ as
//! `HTTP_X_FORWARDED_*` like any other; anyone can send them, so they are applied only
//! when `REMOTE_ADDR` is in the list (see [`TrustedProxies::trusts_remote`]), and never
//! otherwise. wsgid's own listener plays no part: the front end connects to it, and the
//! front end passes its clients' headers on as they came, so a Unix-socket listener says
//! nothing about who wrote them.
//!
//! What a trusted request's headers change ([`apply`]):
//! - `X-Forwarded-For`: REMOTE_ADDR becomes the right-most address that is not itself a
//!   trusted proxy, walking from the right (each proxy appends the address of its own
//!   client, so the entries right of that one were written by trusted proxies and the ones
//!   left of it by whoever the client is; those are never read). When every entry is
//!   trusted, the left-most. The header is ignored (REMOTE_ADDR stays the proxy's) when
//!   an entry the walk reads is not an address, when the walk stops at a `unix:` entry
//!   (trusted when `unix` is listed, but never an address for REMOTE_ADDR), or past
//!   [`MAX_HOPS`] entries. A port
//!   given with the address (`192.0.2.1:4711`, `[2001:db8::1]:4711`) becomes REMOTE_PORT;
//!   without one REMOTE_PORT, which was the proxy's, is removed.
//! - `X-Forwarded-Proto`: `http` or `https` (any case) becomes `wsgi.url_scheme`, and HTTPS
//!   is set to `on` or removed, REQUEST_SCHEME (when sent) set to match, so CGI-style code
//!   reading HTTPS (`wsgiref.util.guess_scheme`) agrees. Anything else is ignored.
//! - `X-Forwarded-Host`: a host name (letters, digits, `-`, `.`, `_`; at most
//!   [`MAX_HOST`] bytes), IPv4 address or bracketed IPv6 address, with an optional port
//!   (1 to 65535), becomes HTTP_HOST (as sent) and SERVER_NAME; SERVER_PORT becomes its
//!   port, or without one the default port of the request's (forwarded) scheme. Anything
//!   else is ignored.
//! - `X-Forwarded-Prefix`: the path under which the proxy exposes the application is put
//!   in front of SCRIPT_NAME (as werkzeug's `ProxyFix(x_prefix=1)` does), so the
//!   configured mount stays its tail and PATH_INFO is untouched: the header can add to the
//!   URLs the application builds, but never move its root or change what it routes. The
//!   value must be an absolute URI path: starting with `/`, of RFC 3986 path characters
//!   and `%XX` escapes (§3.3); it is percent-decoded, like every path in the environ, and
//!   the decoded path must hold no empty (`//`), `.` or `..` segment, no control
//!   character and no backslash (browsers read `\` as `/`, so `/\host` would be a
//!   scheme-relative URL). One trailing `/` is dropped; `/` alone adds nothing. Anything
//!   else (`//evil.example`, `http://evil.example/`, `/a/../b`, `/%2e%2e`, `/a%00`) is
//!   ignored.
//!
//! Each header may be a comma-separated list (RFC 9110 §5.6.1) or be repeated, which the
//! environ joins (rule 2 of the parent module). For `-Proto`, `-Host` and `-Prefix` the
//! right-most entry counts: the one the nearest proxy wrote, as `ProxyFix` with its
//! default of one proxy reads them.
//!
//! Nothing here runs unless the list is non-empty: the worker calls [`apply`] only then,
//! so an application without trusted proxies builds its environ exactly as before.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::Environ;
use crate::protocol::Params;

/// The most `X-Forwarded-For` entries walked, from the right: a chain of proxies longer
/// than this is not a deployment but a header written to make the walk long.
pub const MAX_HOPS: usize = 32;

/// The longest host name `X-Forwarded-Host` may carry, in bytes (a DNS name has at most
/// 253 characters, RFC 1035 §2.3.4).
pub const MAX_HOST: usize = 255;

/// The most entries `trusted_proxies` may hold (each request from a trusted proxy is
/// matched against every one).
pub const MAX_TRUSTED_PROXIES: usize = 1024;

/// One entry of `trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrustedProxy {
    /// An address range: its network address (no bit set past `bits`) and prefix length.
    /// A single address is a range of 32 (IPv4) or 128 (IPv6) bits. IPv4-mapped IPv6
    /// ranges are held as IPv4.
    Net { addr: IpAddr, bits: u8 },
    /// Front-end clients with no IP address: REMOTE_ADDR absent, empty, or `unix:...`
    /// (nginx's `$remote_addr` for a client of a `listen unix:` socket), that is, a proxy
    /// on the front end's own host; and `unix:` entries of `X-Forwarded-For`.
    Unix,
}

impl std::fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustedProxy::Net { addr, bits } => write!(f, "{addr}/{bits}"),
            TrustedProxy::Unix => f.write_str("unix"),
        }
    }
}

/// Parses a `trusted_proxies` entry: `ADDR`, `ADDR/BITS` (IPv4 or IPv6, no host bit set
/// past the prefix) or `unix`.
pub fn parse_trusted_proxy(s: &str) -> Result<TrustedProxy, String> {
    const FORMS: &str =
        "expected an address, an address range such as 10.0.0.0/8 or fd00::/8, or unix";
    let t = s.trim();
    if t.eq_ignore_ascii_case("unix") {
        return Ok(TrustedProxy::Unix);
    }
    let (addr, bits) = match t.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (t, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not a trusted proxy ({FORMS})"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => match b.parse::<u8>() {
            Ok(n) if n <= max && !b.starts_with('+') => n,
            _ => {
                return Err(format!(
                    "{s:?}: the prefix length must be a number from 0 to {max}"
                ))
            }
        },
    };
    let (addr, bits) = match addr {
        IpAddr::V6(v6) if bits >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), bits - 96),
            None => (addr, bits),
        },
        _ => (addr, bits),
    };
    if !Net::new(addr, bits).is_network_address(addr) {
        let network = Net::new(addr, bits).network();
        return Err(format!(
            "{s:?} has bits set past the first {bits}: write {network}/{bits}"
        ));
    }
    Ok(TrustedProxy::Net { addr, bits })
}

/// The proxies whose `X-Forwarded-*` headers are applied, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedProxies {
    entries: Vec<TrustedProxy>,
}

impl TrustedProxies {
    /// The list, each entry once, in the order given.
    pub fn new(given: impl IntoIterator<Item = TrustedProxy>) -> TrustedProxies {
        let mut entries: Vec<TrustedProxy> = Vec::new();
        for e in given {
            if !entries.contains(&e) {
                entries.push(e);
            }
        }
        TrustedProxies { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[TrustedProxy] {
        &self.entries
    }

    /// Whether the front end's client, the REMOTE_ADDR param it sent (`None`: none), is a
    /// trusted proxy: an IP address inside a listed range (an IPv4-mapped IPv6 address as
    /// its IPv4 address), or with `unix` listed, no address at all (absent, empty, or
    /// starting with `unix:`). Anything else, an unparsable address included, is not.
    pub fn trusts_remote(&self, remote_addr: Option<&[u8]>) -> bool {
        match remote_addr {
            None | Some(b"") => self.trusts_unix(),
            Some(v) if v.starts_with(b"unix:") => self.trusts_unix(),
            Some(v) => parse_ip(v).is_some_and(|ip| self.trusts_ip(ip)),
        }
    }

    fn trusts_unix(&self) -> bool {
        self.entries.contains(&TrustedProxy::Unix)
    }

    /// Whether `ip` is inside a listed range.
    pub fn trusts_ip(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        self.entries.iter().any(|e| match *e {
            TrustedProxy::Net { addr, bits } => Net::new(addr, bits).contains(ip),
            TrustedProxy::Unix => false,
        })
    }

    fn trusts_hop(&self, hop: &Hop) -> bool {
        match hop {
            Hop::Ip(ip, _) => self.trusts_ip(*ip),
            Hop::Unix => self.trusts_unix(),
        }
    }
}

/// An address range as bits and a mask, for matching.
#[derive(Clone, Copy)]
enum Net {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Net {
    fn new(addr: IpAddr, bits: u8) -> Net {
        match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(bits.into()))
                    .unwrap_or(0);
                Net::V4 {
                    net: u32::from(a) & mask,
                    mask,
                }
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(bits.into()))
                    .unwrap_or(0);
                Net::V6 {
                    net: u128::from(a) & mask,
                    mask,
                }
            }
        }
    }

    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == net,
            (Net::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == net,
            _ => false,
        }
    }

    fn is_network_address(self, addr: IpAddr) -> bool {
        match (self, addr) {
            (Net::V4 { net, .. }, IpAddr::V4(a)) => u32::from(a) == net,
            (Net::V6 { net, .. }, IpAddr::V6(a)) => u128::from(a) == net,
            _ => false,
        }
    }

    fn network(self) -> IpAddr {
        match self {
            Net::V4 { net, .. } => IpAddr::V4(Ipv4Addr::from(net)),
            Net::V6 { net, .. } => IpAddr::V6(Ipv6Addr::from(net)),
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports for
/// an IPv4 client) as its IPv4 address; any other address as it is.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An IP address written alone (`192.0.2.1`, `2001:db8::1`), or None.
fn parse_ip(b: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// One entry of `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    /// An address, with the port when one was given.
    Ip(IpAddr, Option<u16>),
    /// `unix:...`: a client of a proxy's Unix socket.
    Unix,
}

/// One `X-Forwarded-For` entry, surrounding blanks removed: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `unix:...`. None for anything else
/// (`unknown`, a name, an empty entry).
fn parse_hop(entry: &[u8]) -> Option<Hop> {
    let e = trim_blanks(entry);
    if e.starts_with(b"unix:") {
        return Some(Hop::Unix);
    }
    if let Some(rest) = e.strip_prefix(b"[") {
        let end = rest.iter().position(|&b| b == b']')?;
        let ip: Ipv6Addr = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
        let port = match &rest[end + 1..] {
            b"" => None,
            tail => Some(parse_port(tail.strip_prefix(b":")?)?),
        };
        return Some(Hop::Ip(IpAddr::V6(ip), port));
    }
    if let Some(ip) = parse_ip(e) {
        return Some(Hop::Ip(ip, None));
    }
    // IPv4 with a port: exactly one colon.
    let colon = e.iter().position(|&b| b == b':')?;
    let ip: Ipv4Addr = std::str::from_utf8(&e[..colon]).ok()?.parse().ok()?;
    Some(Hop::Ip(IpAddr::V4(ip), Some(parse_port(&e[colon + 1..])?)))
}

/// A port: 1 to 5 digits, at most 65535.
fn parse_port(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 5 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `b` without leading and trailing spaces and tabs (RFC 9110 §5.6.3, OWS).
fn trim_blanks(b: &[u8]) -> &[u8] {
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !blank(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !blank(c)).map_or(start, |i| i + 1);
    &b[start..end]
}

/// The right-most entry of a comma-separated list, blanks removed.
fn last_entry(value: &[u8]) -> &[u8] {
    trim_blanks(value.rsplit(|&b| b == b',').next().unwrap_or(value))
}

/// The client address `X-Forwarded-For` gives (module doc), from the values of its
/// occurrences in arrival order; None when the header is to be ignored.
fn forwarded_client(values: &[&[u8]], trusted: &TrustedProxies) -> Option<(IpAddr, Option<u16>)> {
    let mut walked = 0;
    let mut leftmost = None;
    for value in values.iter().rev() {
        for entry in value.rsplit(|&b| b == b',') {
            walked += 1;
            if walked > MAX_HOPS {
                return None;
            }
            let hop = parse_hop(entry)?;
            if !trusted.trusts_hop(&hop) {
                return ip_of(hop);
            }
            leftmost = Some(hop);
        }
    }
    leftmost.and_then(ip_of)
}

/// The address of a hop REMOTE_ADDR may become: only an IP address.
fn ip_of(hop: Hop) -> Option<(IpAddr, Option<u16>)> {
    match hop {
        Hop::Ip(ip, port) => Some((unmapped(ip), port)),
        Hop::Unix => None,
    }
}

/// The scheme `X-Forwarded-Proto` gives, or None.
fn forwarded_scheme(value: &[u8]) -> Option<&'static str> {
    let v = last_entry(value);
    if v.eq_ignore_ascii_case(b"https") {
        Some("https")
    } else if v.eq_ignore_ascii_case(b"http") {
        Some("http")
    } else {
        None
    }
}

/// A valid `X-Forwarded-Host` entry: the whole entry, its host (brackets kept for IPv6)
/// and its port.
#[derive(Debug, PartialEq, Eq)]
struct ForwardedHost<'a> {
    host_header: &'a [u8],
    name: &'a [u8],
    port: Option<&'a [u8]>,
}

/// The host `X-Forwarded-Host` gives (module doc), or None.
fn forwarded_host(value: &[u8]) -> Option<ForwardedHost<'_>> {
    let v = last_entry(value);
    let (name, port) = if v.starts_with(b"[") {
        let end = v.iter().position(|&b| b == b']')?;
        let inner = std::str::from_utf8(&v[1..end]).ok()?;
        inner.parse::<Ipv6Addr>().ok()?;
        let port = match &v[end + 1..] {
            b"" => None,
            tail => Some(tail.strip_prefix(b":")?),
        };
        (&v[..end + 1], port)
    } else {
        let (name, port) = match v.iter().position(|&b| b == b':') {
            Some(colon) => (&v[..colon], Some(&v[colon + 1..])),
            None => (v, None),
        };
        let name_ok = !name.is_empty()
            && name.len() <= MAX_HOST
            && name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !name_ok {
            return None;
        }
        (name, port)
    };
    if let Some(p) = port {
        if parse_port(p).is_none_or(|n| n == 0) {
            return None;
        }
    }
    Some(ForwardedHost {
        host_header: v,
        name,
        port,
    })
}

/// The decoded prefix `X-Forwarded-Prefix` gives (module doc), without a trailing `/`;
/// None when the header is to be ignored or adds nothing.
fn forwarded_prefix(value: &[u8]) -> Option<Vec<u8>> {
    let raw = last_entry(value);
    if !raw.starts_with(b"/") || !is_uri_path(raw) {
        return None;
    }
    let decoded = super::percent_decode(raw);
    let path = decoded.strip_suffix(b"/").unwrap_or(&decoded);
    if path.is_empty() {
        return None;
    }
    let clean = path.iter().all(|&b| b != b'\\' && b != 0x7f && b >= 0x20)
        && path[1..]
            .split(|&b| b == b'/')
            .all(|segment| !matches!(segment, b"" | b"." | b".."));
    clean.then(|| path.to_vec())
}

/// Whether every byte of `s` is an RFC 3986 path character (§3.3: unreserved, sub-delims,
/// `:`, `@`, `/`) or part of a `%XX` escape.
fn is_uri_path(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'%' {
            let hex = |k: usize| s.get(k).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&c)) {
            return false;
        }
        i += 1;
    }
    true
}

/// What the request's `X-Forwarded-*` params and REMOTE_ADDR hold.
#[derive(Default)]
struct Sent<'a> {
    remote_addr: Option<&'a [u8]>,
    /// Every `X-Forwarded-For` occurrence, in arrival order.
    forwarded_for: Vec<&'a [u8]>,
    proto: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
    prefix: Option<&'a [u8]>,
}

impl<'a> Sent<'a> {
    /// The last occurrence of each (a repeated header's entries are in its last one's
    /// right-most place), and every `X-Forwarded-For`.
    fn read(params: &'a Params) -> Sent<'a> {
        let mut sent = Sent::default();
        for (name, value) in params.iter() {
            let slot = match name {
                b"REMOTE_ADDR" => &mut sent.remote_addr,
                b"HTTP_X_FORWARDED_FOR" => {
                    sent.forwarded_for.push(value);
                    continue;
                }
                b"HTTP_X_FORWARDED_PROTO" => &mut sent.proto,
                b"HTTP_X_FORWARDED_HOST" => &mut sent.host,
                b"HTTP_X_FORWARDED_PREFIX" => &mut sent.prefix,
                _ => continue,
            };
            *slot = Some(value);
        }
        sent
    }
}

/// Applies the `X-Forwarded-*` headers of a request to its environ `env` (built from
/// `params` by [`super::build`]) when its REMOTE_ADDR is a trusted proxy (module doc);
/// leaves `env` as it is otherwise. The worker calls it only when `trusted` is not empty.
pub fn apply<'a>(env: &mut Environ<'a>, params: &'a Params, trusted: &TrustedProxies) {
    let sent = Sent::read(params);
    if !trusted.trusts_remote(sent.remote_addr) {
        return;
    }
    let client = match sent.forwarded_for.as_slice() {
        [] => None,
        values => forwarded_client(values, trusted),
    };
    let scheme = sent.proto.and_then(forwarded_scheme);
    let host = sent.host.and_then(forwarded_host);
    let prefix = sent.prefix.and_then(forwarded_prefix);
    if client.is_none() && scheme.is_none() && host.is_none() && prefix.is_none() {
        return;
    }
    if let Some(s) = scheme {
        env.url_scheme = s;
    }
    let https = env.url_scheme == "https";
    let remote_addr: Option<Cow<'a, [u8]>> =
        client.map(|(ip, _)| Cow::Owned(ip.to_string().into_bytes()));
    let remote_port = client.and_then(|(_, port)| port.map(|p| p.to_string().into_bytes()));
    let server_port: Option<Cow<'a, [u8]>> = host.as_ref().map(|h| match h.port {
        Some(p) => Cow::Borrowed(p),
        None if https => Cow::Borrowed(&b"443"[..]),
        None => Cow::Borrowed(&b"80"[..]),
    });

    let mut seen = Seen::default();
    let mut drop_https = false;
    let mut drop_remote_port = false;
    for (name, value) in env.vars.iter_mut() {
        match &**name {
            b"REMOTE_ADDR" => {
                seen.remote_addr = true;
                if let Some(a) = &remote_addr {
                    *value = a.clone();
                }
            }
            b"REMOTE_PORT" if client.is_some() => {
                seen.remote_port = true;
                match &remote_port {
                    Some(p) => *value = Cow::Owned(p.clone()),
                    None => drop_remote_port = true,
                }
            }
            b"HTTPS" if scheme.is_some() => {
                seen.https = true;
                if https {
                    *value = Cow::Borrowed(b"on");
                } else {
                    drop_https = true;
                }
            }
            b"REQUEST_SCHEME" => {
                if let Some(s) = scheme {
                    *value = Cow::Borrowed(s.as_bytes());
                }
            }
            b"HTTP_HOST" => {
                seen.http_host = true;
                if let Some(h) = &host {
                    *value = Cow::Borrowed(h.host_header);
                }
            }
            b"SERVER_NAME" => {
                if let Some(h) = &host {
                    *value = Cow::Borrowed(h.name);
                }
            }
            b"SERVER_PORT" => {
                if let Some(p) = &server_port {
                    *value = p.clone();
                }
            }
            b"SCRIPT_NAME" => {
                if let Some(p) = &prefix {
                    let mut joined = Vec::with_capacity(p.len() + value.len());
                    joined.extend_from_slice(p);
                    joined.extend_from_slice(value);
                    *value = Cow::Owned(joined);
                }
            }
            _ => {}
        }
    }
    if drop_https || drop_remote_port {
        env.vars.retain(|(name, _)| match &**name {
            b"HTTPS" => !drop_https,
            b"REMOTE_PORT" => !drop_remote_port,
            _ => true,
        });
    }
    let vars = &mut env.vars;
    if let (Some(a), false) = (remote_addr, seen.remote_addr) {
        vars.push((Cow::Borrowed(b"REMOTE_ADDR"), a));
    }
    if let (Some(p), false) = (remote_port, seen.remote_port) {
        vars.push((Cow::Borrowed(b"REMOTE_PORT"), Cow::Owned(p)));
    }
    if let (Some(h), false) = (&host, seen.http_host) {
        vars.push((Cow::Borrowed(b"HTTP_HOST"), Cow::Borrowed(h.host_header)));
    }
    if scheme.is_some() && https && !seen.https {
        vars.push((Cow::Borrowed(b"HTTPS"), Cow::Borrowed(b"on")));
    }
}

/// Which of the variables [`apply`] may set were already in the environ.
#[derive(Default)]
struct Seen {
    remote_addr: bool,
    remote_port: bool,
    https: bool,
    http_host: bool,
}
