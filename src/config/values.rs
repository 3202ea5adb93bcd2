//! The value syntaxes shared by the command line and the configuration file: listen
//! addresses, byte sizes, durations, socket modes, `NAME=VALUE` pairs, mount points and
//! trusted proxies (`parse_trusted_proxy`, defined with the rules that use it).
//!
//! Each parser returns a message that says what was expected, so both the CLI and the file
//! loader can put the option's name in front of it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::settings::{Listen, ListenAddr, OffloadMode, Protocol, WORKER_SPEC_ENV};
pub use crate::environ::forwarded::parse_trusted_proxy;

/// The longest duration any timeout accepts: one year, in milliseconds.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 3600 * 1000;

/// The widest permission mode a Unix socket may be given.
pub const MAX_SOCKET_MODE: u32 = 0o777;

/// Parses `host:port`, `[v6]:port`, `unix:/path` or `fd:N`.
///
/// Hosts are IP literals; `localhost` is accepted as 127.0.0.1. A relative `unix:` path is
/// returned as written; the caller resolves it.
pub fn parse_listen_addr(s: &str) -> Result<ListenAddr, String> {
    const FORMS: &str = "expected host:port, [v6]:port, unix:/path or fd:N";
    if let Some(path) = s.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(format!("{s:?}: empty socket path ({FORMS})"));
        }
        if path.contains('\0') {
            return Err(format!("{s:?}: socket path contains a NUL byte"));
        }
        return Ok(ListenAddr::Unix(PathBuf::from(path)));
    }
    if let Some(n) = s.strip_prefix("fd:") {
        return match n.parse::<i32>() {
            Ok(fd) if fd >= 0 => Ok(ListenAddr::Fd(fd)),
            _ => Err(format!(
                "{s:?}: fd:N needs a non-negative file descriptor number"
            )),
        };
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(ListenAddr::Tcp(addr));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(ListenAddr::Tcp(SocketAddr::from((
                Ipv4Addr::LOCALHOST,
                port,
            ))));
        }
    }
    let hint = if s.starts_with('/') {
        format!("; for a Unix socket write unix:{s}")
    } else if s.matches(':').count() > 1 && !s.starts_with('[') {
        "; write IPv6 addresses in brackets, e.g. [::1]:9000".to_string()
    } else if !s.contains(':') {
        "; a port is required, e.g. 127.0.0.1:9000".to_string()
    } else {
        "; the host must be an IP address or localhost".to_string()
    };
    Err(format!("{s:?} is not a listen address ({FORMS}){hint}"))
}

/// Parses `fastcgi:ADDR` or `scgi:ADDR` (the `listen` key and `--listen`).
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    let (protocol, addr) = if let Some(a) = s.strip_prefix("fastcgi:") {
        (Protocol::Fastcgi, a)
    } else if let Some(a) = s.strip_prefix("scgi:") {
        (Protocol::Scgi, a)
    } else {
        return Err(format!(
            "{s:?} does not say its protocol: write fastcgi:ADDR or scgi:ADDR, such as \
             \"fastcgi:127.0.0.1:9000\" or \"scgi:unix:/run/wsgid/app.sock\""
        ));
    };
    Ok(Listen {
        protocol,
        addr: parse_listen_addr(addr)?,
    })
}

/// Checks an app's name: 1 to 64 letters, digits, `_`, `-` and `.`, starting with a
/// letter or digit (it names the app in logs, process titles and `wsgid status`).
pub fn check_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a name: 1 to 64 letters, digits, '_', '-' or '.', starting with a \
             letter or digit"
        ))
    }
}

/// Writes an address the way `parse_listen_addr` reads it.
pub fn format_listen_addr(addr: &ListenAddr) -> String {
    match addr {
        ListenAddr::Tcp(a) => a.to_string(),
        ListenAddr::Unix(p) => format!("unix:{}", p.display()),
        ListenAddr::Fd(n) => format!("fd:{n}"),
    }
}

/// The size suffixes, each with its power of 1024 (as a shift).
const SIZE_UNITS: [(&str, u32); 6] = [
    ("K", 10),
    ("M", 20),
    ("G", 30),
    ("T", 40),
    ("P", 50),
    ("E", 60),
];

/// Parses a byte size: a whole number, optionally followed by `K`, `M`, `G`, `T`, `P` or `E`
/// (powers of 1024; `KiB`, `MiB`, ... and a plain `B` are accepted too, in any case).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || {
        format!("{s:?} is not a size (expected bytes, optionally with a K, M, G, T, P or E suffix)")
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .filter(|u| !u.is_empty())
        .unwrap_or(&unit);
    let shift = match unit {
        "" | "B" => 0,
        u => match SIZE_UNITS.iter().find(|(name, _)| *name == u) {
            Some(&(_, shift)) => shift,
            None => return Err(bad()),
        },
    };
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is too large"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Writes a byte size the way `parse_size` reads it, in the largest unit that divides it:
/// `8G`, `300K`, `1000`; one below a whole unit is written `4G-1`.
pub fn format_size(n: u64) -> String {
    for &(name, shift) in SIZE_UNITS.iter().rev() {
        let unit = 1u64 << shift;
        if n >= unit && n % unit == 0 {
            return format!("{}{name}", n / unit);
        }
        if n >= unit && (n % unit) == unit - 1 {
            return format!("{}{name}-1", n / unit + 1);
        }
    }
    n.to_string()
}

/// A body limit: a size, or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub Option<u64>);

/// Parses `--max-body`: a size (see `parse_size`) or `unlimited`.
pub fn parse_body_limit(s: &str) -> Result<BodyLimit, String> {
    if s.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(BodyLimit(None));
    }
    parse_size(s)
        .map(|n| BodyLimit(Some(n)))
        .map_err(|e| format!("{e}, or \"unlimited\""))
}

/// Parses a duration: seconds (fractions allowed), or a number with an `ms`, `s`, `m`, `h`
/// or `d` suffix. Returns milliseconds, rounded to the nearest one.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = t.strip_suffix('d') {
        (n, 86400.0)
    } else {
        (t, 1.0)
    };
    let num = num.trim();
    let plain = !num.is_empty() && num.chars().all(|c| c.is_ascii_digit() || c == '.');
    match num.parse::<f64>() {
        Ok(v) if plain => seconds_to_ms(v * scale).map_err(|e| format!("{s:?}: {e}")),
        _ => Err(format!(
            "{s:?} is not a duration (expected seconds such as 30 or 0.5, or 250ms, 2m, 1h, 1d)"
        )),
    }
}

/// Converts a number of seconds to milliseconds, checking it is finite, not negative and
/// at most `MAX_DURATION_MS`.
pub fn seconds_to_ms(secs: f64) -> Result<u64, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err("a duration must be a non-negative number of seconds".into());
    }
    let ms = (secs * 1000.0).round();
    if ms > MAX_DURATION_MS as f64 {
        return Err(format!(
            "a duration may be at most {} seconds",
            MAX_DURATION_MS / 1000
        ));
    }
    Ok(ms as u64)
}

/// Parses an octal permission mode such as `0660`, `660` or `0o660`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    let bad = || format!("{s:?} is not an octal mode such as 0660");
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(bad());
    }
    let mode = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
    check_mode(mode)
}

/// Checks a mode carries only permission bits.
pub fn check_mode(mode: u32) -> Result<u32, String> {
    if mode > MAX_SOCKET_MODE {
        return Err(format!(
            "mode {mode:#o} has bits beyond the permission bits (at most 0777)"
        ));
    }
    Ok(mode)
}

/// Parses `NAME=VALUE`.
pub fn parse_env_pair(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    check_env_name(name)?;
    check_env_value(name, value)?;
    Ok((name.to_string(), value.to_string()))
}

/// Checks an environment variable name can be set and is not one wsgid uses itself.
pub fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(format!(
            "{name:?} is not an environment variable name (it must be non-empty, without '=' or NUL)"
        ));
    }
    if name == WORKER_SPEC_ENV {
        return Err(format!("{name} is reserved for wsgid itself"));
    }
    Ok(())
}

/// Checks an environment variable value can be set.
pub fn check_env_value(name: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("the value of {name} contains a NUL byte"));
    }
    Ok(())
}

/// Parses an `offload` mode: `x-accel-redirect`, `x-sendfile` or `off`.
pub fn parse_offload(s: &str) -> Result<OffloadMode, String> {
    match s.to_ascii_lowercase().as_str() {
        "x-accel-redirect" => Ok(OffloadMode::XAccelRedirect),
        "x-sendfile" => Ok(OffloadMode::XSendfile),
        "off" => Ok(OffloadMode::Off),
        _ => Err(format!(
            "{s:?}: expected \"x-accel-redirect\", \"x-sendfile\" or \"off\""
        )),
    }
}

/// Parses `PATH=URI` (an `offload_map` entry; split at the first `=`, so a path holding
/// one is written in the configuration file). Both sides are checked in `resolve`.
pub fn parse_offload_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((path, target)) if !path.is_empty() && !target.is_empty() => {
            Ok((path.to_string(), target.to_string()))
        }
        _ => Err(format!(
            "{s:?} is not PATH=URI (such as /srv/media=/_protected/media)"
        )),
    }
}

/// Normalises a mount point (the SCRIPT_NAME prefix): `""` and `"/"` mean the root and give
/// `""`; anything else must start with `/`, loses one trailing `/`, and may contain no empty,
/// `.` or `..` segment and no control character.
pub fn normalize_mount(s: &str) -> Result<String, String> {
    if s.is_empty() || s == "/" {
        return Ok(String::new());
    }
    if !s.starts_with('/') {
        return Err(format!("{s:?} must start with \"/\""));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(format!("{s:?} contains a control character"));
    }
    let trimmed = s.strip_suffix('/').unwrap_or(s);
    for segment in trimmed[1..].split('/') {
        match segment {
            "" => return Err(format!("{s:?} contains an empty segment (\"//\")")),
            "." | ".." => return Err(format!("{s:?} contains a {segment:?} segment")),
            _ => {}
        }
    }
    Ok(trimmed.to_string())
}

/// A byte size from the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

/// A duration from the configuration file, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub u64);

/// A socket mode from the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

/// One string or a list of strings (`fastcgi = "unix:/run/app.sock"` or `fastcgi = [...]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, SocketAddrV6};

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_addr("127.0.0.1:9000"),
            Ok(ListenAddr::Tcp("127.0.0.1:9000".parse().unwrap()))
        );
        assert_eq!(
            parse_listen_addr("[::1]:9000"),
            Ok(ListenAddr::Tcp(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::LOCALHOST,
                9000,
                0,
                0
            ))))
        );
        assert_eq!(
            parse_listen_addr("localhost:8000"),
            Ok(ListenAddr::Tcp("127.0.0.1:8000".parse().unwrap()))
        );
        assert_eq!(
            parse_listen_addr("0.0.0.0:0"),
            Ok(ListenAddr::Tcp("0.0.0.0:0".parse().unwrap()))
        );
        assert_eq!(
            parse_listen_addr("unix:/run/app.sock"),
            Ok(ListenAddr::Unix("/run/app.sock".into()))
        );
        assert_eq!(
            parse_listen_addr("unix:rel/app.sock"),
            Ok(ListenAddr::Unix("rel/app.sock".into()))
        );
        assert_eq!(parse_listen_addr("fd:3"), Ok(ListenAddr::Fd(3)));
        assert_eq!(parse_listen_addr("fd:0"), Ok(ListenAddr::Fd(0)));
        for s in ["127.0.0.1:9000", "[::1]:9000", "unix:/run/a.sock", "fd:3"] {
            let addr = parse_listen_addr(s).unwrap();
            assert_eq!(format_listen_addr(&addr), s);
        }
    }

    #[test]
    fn bad_listen_addresses() {
        for bad in [
            "",
            "unix:",
            "fd:",
            "fd:-1",
            "fd:x",
            "9000",
            "127.0.0.1",
            "127.0.0.1:65536",
            "::1:9000",
            "example.com:80",
            "/run/app.sock",
            "tcp:127.0.0.1:9000",
            "unix:/a\0b",
        ] {
            assert!(parse_listen_addr(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_listen_addr("/run/a.sock")
            .unwrap_err()
            .contains("unix:/run/a.sock"));
        assert!(parse_listen_addr("::1:9000")
            .unwrap_err()
            .contains("brackets"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64K"), Ok(64 * 1024));
        assert_eq!(parse_size("64k"), Ok(64 * 1024));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("3G"), Ok(3 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("2P"), Ok(2 << 50));
        assert_eq!(parse_size("8E"), Ok(8 << 60));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "K",
            "-1",
            "1.5M",
            "1KB",
            "1 X",
            "18446744073709551616",
            "16777216T",
            "16E",
            "1X",
            "1iB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_body_limit("unlimited"), Ok(BodyLimit(None)));
        assert_eq!(parse_body_limit("10M"), Ok(BodyLimit(Some(10 << 20))));
        assert!(parse_body_limit("lots").is_err());
    }

    #[test]
    fn sizes_written_back() {
        for (n, s) in [
            (0, "0"),
            (1000, "1000"),
            (1024, "1K"),
            (300 << 10, "300K"),
            (8 << 30, "8G"),
            (u64::from(u32::MAX), "4G-1"),
            (i64::MAX as u64, "8E-1"),
            (u64::MAX, "16E-1"),
            (1023, "1023"),
        ] {
            assert_eq!(format_size(n), s);
            if !s.contains('-') {
                assert_eq!(parse_size(s), Ok(n));
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30"), Ok(30_000));
        assert_eq!(parse_duration_ms("0.5"), Ok(500));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1500));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("1.5d"), Ok(129_600_000));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert_eq!(parse_duration_ms("0.0004"), Ok(0));
        assert_eq!(parse_duration_ms("31536000"), Ok(MAX_DURATION_MS));
        for bad in [
            "", "-1", "x", "1x", "h", "d", "nan", "inf", "1e3", "31536001", "s", "ms", "366d",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o666"), Ok(0o666));
        assert_eq!(parse_mode("0777"), Ok(0o777));
        assert_eq!(parse_mode("0"), Ok(0));
        for bad in [
            "",
            "0o",
            "888",
            "1777",
            "04755",
            "rw-rw----",
            "07777",
            "00000",
        ] {
            assert!(parse_mode(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn env_pairs() {
        assert_eq!(
            parse_env_pair("A=b=c"),
            Ok(("A".to_string(), "b=c".to_string()))
        );
        assert_eq!(parse_env_pair("A="), Ok(("A".to_string(), String::new())));
        assert!(parse_env_pair("A").is_err());
        assert!(parse_env_pair("=x").is_err());
        assert!(parse_env_pair("WSGID_WORKER_SPEC={}").is_err());
        assert!(parse_env_pair("A=\0").is_err());
    }

    #[test]
    fn mounts() {
        assert_eq!(normalize_mount(""), Ok(String::new()));
        assert_eq!(normalize_mount("/"), Ok(String::new()));
        assert_eq!(normalize_mount("/app"), Ok("/app".into()));
        assert_eq!(normalize_mount("/app/"), Ok("/app".into()));
        assert_eq!(normalize_mount("/a/b"), Ok("/a/b".into()));
        assert_eq!(normalize_mount("/caf\u{e9}"), Ok("/caf\u{e9}".into()));
        for bad in [
            "app", "//", "/a//b", "/app//", "/./a", "/a/..", "/a/./", "/a\nb", " /a",
        ] {
            assert!(normalize_mount(bad).is_err(), "{bad:?} accepted");
        }
    }
}
