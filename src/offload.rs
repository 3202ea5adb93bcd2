//! Offloading a file response to the front end: a `wsgi.file_wrapper` response over a
//! regular file becomes an `X-Accel-Redirect: URI` (nginx) or `X-Sendfile: PATH` (Apache
//! mod_xsendfile, lighttpd) header with an empty body, and the front end sends the file
//! itself, so the worker neither reads it nor holds a Python thread while it goes out.
//!
//! A file is offloaded only when the front end would send exactly what wsgid would have:
//! a 200 response whose headers the app has not already given one of these headers, read
//! from its start, with no Content-Length other than the file's size, and a path that
//! still names the very file the app opened (`file_path`), inside a directory of
//! `offload_map` (with `X-Sendfile`, any path when the map is empty). Anything else is
//! served by wsgid as usual: a file outside every mapped directory is never named to the
//! front end.
//!
//! The header's path part is percent-encoded (all but `A-Z a-z 0-9 - . _ ~ /`): nginx,
//! lighttpd and mod_xsendfile (`XSendFileUnescape`, on by default) decode it, so a name
//! with spaces, `?`, `%`, newlines or bytes outside ASCII neither breaks the header nor
//! names another file.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::sys::stat::FileStat;

use crate::config::{Offload, OffloadMode};

/// Why a file response is served by wsgid instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The status is not 200: the front end would send its own.
    Status,
    /// The app gave an X-Accel-Redirect or X-Sendfile header itself.
    AppHeader,
    /// Part of the response went out already (through write()).
    Started,
    /// The file is not read from its start.
    Position,
    /// The app's Content-Length is not the file's size.
    ContentLength,
    /// The descriptor has no path (an anonymous or unreachable file).
    NoPath,
    /// The path no longer names the file the app opened (deleted, renamed over, replaced).
    Changed,
    /// The file is outside every directory of offload_map.
    Unmapped,
    /// X-Sendfile and a path that is not UTF-8, which lighttpd refuses.
    NotUtf8,
}

impl Kept {
    pub fn reason(self) -> &'static str {
        match self {
            Kept::Status => "the status is not 200",
            Kept::AppHeader => "the application set X-Accel-Redirect or X-Sendfile itself",
            Kept::Started => "part of the response was written already",
            Kept::Position => "the file is not read from its start",
            Kept::ContentLength => "Content-Length is not the file's size",
            Kept::NoPath => "the file has no path",
            Kept::Changed => "the file's path no longer names it (deleted or replaced)",
            Kept::Unmapped => "the file is outside every offload_map directory",
            Kept::NotUtf8 => "the file's path is not UTF-8",
        }
    }
}

/// The header each offloaded file gets, and what names it.
#[derive(Debug)]
pub struct Offloader {
    header: &'static str,
    xaccel: bool,
    /// Longest path first, so the most specific directory wins.
    prefixes: Vec<Prefix>,
    /// X-Sendfile with an empty map: what is put before every path (the chroot directory,
    /// which the front end sees and the workers do not).
    root: Vec<u8>,
}

#[derive(Debug)]
struct Prefix {
    path: Vec<u8>,
    target: Vec<u8>,
}

impl Offloader {
    /// None when offloading is off. The map's directories are matched as written and, when
    /// a symbolic link is on the way, as resolved here (the path a descriptor reports is the
    /// resolved one); `chroot` is where the workers are chrooted to, if anywhere.
    pub fn new(config: &Offload, chroot: Option<&Path>) -> Option<Offloader> {
        let (header, xaccel) = match config.mode {
            OffloadMode::Off => return None,
            OffloadMode::XAccelRedirect => ("X-Accel-Redirect", true),
            OffloadMode::XSendfile => ("X-Sendfile", false),
        };
        let mut prefixes = Vec::new();
        for (path, target) in &config.map {
            let target = target.as_bytes().to_vec();
            if let Ok(real) = std::fs::canonicalize(path) {
                let real = real.into_os_string().into_vec();
                if real != path.as_bytes() {
                    prefixes.push(Prefix {
                        path: real,
                        target: target.clone(),
                    });
                }
            }
            prefixes.push(Prefix {
                path: path.as_bytes().to_vec(),
                target,
            });
        }
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.path.len()));
        let root = match chroot {
            Some(c) => {
                let c = c.as_os_str().as_bytes();
                c.strip_suffix(b"/").unwrap_or(c).to_vec()
            }
            None => Vec::new(),
        };
        Some(Offloader {
            header,
            xaccel,
            prefixes,
            root,
        })
    }

    /// The header (name, value) that hands the file at `path` (absolute, as `file_path`
    /// gives it) to the front end.
    pub fn header(&self, path: &[u8]) -> Result<(&'static str, String), Kept> {
        if !is_clean(path) {
            return Err(Kept::NoPath);
        }
        if self.prefixes.is_empty() {
            // X-Sendfile over every file (an empty map is refused with X-Accel-Redirect).
            if self.xaccel {
                return Err(Kept::Unmapped);
            }
            let mut full = self.root.clone();
            full.extend_from_slice(path);
            return self.sendfile(full);
        }
        let (prefix, rest) = self
            .prefixes
            .iter()
            .find_map(|p| below(path, &p.path).map(|rest| (p, rest)))
            .ok_or(Kept::Unmapped)?;
        let target = match (prefix.target.last(), rest.first()) {
            (Some(b'/'), Some(b'/')) => &prefix.target[..prefix.target.len() - 1],
            _ => &prefix.target[..],
        };
        if self.xaccel {
            // The URI was checked when the configuration was read; only the file's part
            // needs encoding.
            let mut value = String::from_utf8_lossy(target).into_owned();
            encode_into(rest, &mut value);
            Ok((self.header, value))
        } else {
            let mut full = target.to_vec();
            full.extend_from_slice(rest);
            self.sendfile(full)
        }
    }

    fn sendfile(&self, full: Vec<u8>) -> Result<(&'static str, String), Kept> {
        if std::str::from_utf8(&full).is_err() {
            return Err(Kept::NotUtf8);
        }
        let mut value = String::with_capacity(full.len());
        encode_into(&full, &mut value);
        Ok((self.header, value))
    }
}

/// What follows `prefix` in `path` ("" or "/..."), when `path` is `prefix` or below it:
/// `/srv/media2/x` is not below `/srv/media`.
fn below<'a>(path: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if prefix == b"/" {
        return path.starts_with(b"/").then_some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with(b"/")).then_some(rest)
}

/// Appends `bytes` percent-encoded: every byte but `A-Z a-z 0-9 - . _ ~ /`.
fn encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// An absolute path with no empty, `.` or `..` segment.
fn is_clean(path: &[u8]) -> bool {
    path == b"/"
        || (path.starts_with(b"/")
            && !path[1..]
                .split(|&b| b == b'/')
                .any(|seg| seg.is_empty() || seg == b"." || seg == b".."))
}

/// The path of the regular file open on `fd` (whose `fstat` is `st`), when that path still
/// names it: the kernel's name for the descriptor, absolute, with no `.` or `..` segment,
/// whose `stat` is the same file (same device and inode). A file deleted after it was
/// opened ("... (deleted)"), or one whose name now belongs to another file, has none.
pub fn file_path(fd: BorrowedFd<'_>, st: &FileStat) -> Result<Vec<u8>, Kept> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| Kept::NoPath)?
        .into_os_string()
        .into_vec();
    if !is_clean(&link) {
        return Err(Kept::NoPath);
    }
    let now =
        nix::sys::stat::stat(Path::new(OsStr::from_bytes(&link))).map_err(|_| Kept::Changed)?;
    if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
        return Err(Kept::Changed);
    }
    Ok(link)
}

/// The response lines of a rendered header block ("Status: ...\r\nName: value\r\n...\r\n"),
/// without their line ends (wsgid's own rendering: no value holds CR or LF).
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

fn is_named(line: &[u8], name: &[u8]) -> bool {
    line.len() > name.len()
        && line[name.len()] == b':'
        && line[..name.len()].eq_ignore_ascii_case(name)
}

/// Whether the header block allows offloading: status 200, and neither X-Accel-Redirect
/// nor X-Sendfile among the app's headers (those pass through as they are).
pub fn check_head(head: &[u8]) -> Result<(), Kept> {
    let mut lines = lines(head);
    if !lines.next().is_some_and(|l| l.starts_with(b"Status: 200 ")) {
        return Err(Kept::Status);
    }
    if lines.any(|l| is_named(l, b"x-accel-redirect") || is_named(l, b"x-sendfile")) {
        return Err(Kept::AppHeader);
    }
    Ok(())
}

/// The header block with `name: value` added and Content-Length left out (the body is
/// empty; the front end sets the file's).
pub fn offloaded_head(head: &[u8], name: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + name.len() + value.len() + 4);
    for line in lines(head).filter(|l| !is_named(l, b"content-length")) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offloader(mode: OffloadMode, map: &[(&str, &str)], chroot: Option<&str>) -> Offloader {
        let config = Offload {
            mode,
            map: map
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
        };
        Offloader::new(&config, chroot.map(Path::new)).expect("not off")
    }

    fn accel(map: &[(&str, &str)], path: &[u8]) -> Result<String, Kept> {
        offloader(OffloadMode::XAccelRedirect, map, None)
            .header(path)
            .map(|(name, value)| {
                assert_eq!(name, "X-Accel-Redirect");
                value
            })
    }

    fn sendfile(map: &[(&str, &str)], chroot: Option<&str>, path: &[u8]) -> Result<String, Kept> {
        offloader(OffloadMode::XSendfile, map, chroot)
            .header(path)
            .map(|(name, value)| {
                assert_eq!(name, "X-Sendfile");
                value
            })
    }

    const MEDIA: &[(&str, &str)] = &[("/nonexistent/srv/media", "/_protected/media")];

    #[test]
    fn off_is_none() {
        assert!(Offloader::new(&Offload::default(), None).is_none());
    }

    #[test]
    fn a_mapped_file_becomes_its_uri() {
        assert_eq!(
            accel(MEDIA, b"/nonexistent/srv/media/a/b.pdf").as_deref(),
            Ok("/_protected/media/a/b.pdf")
        );
        // The mapped path itself (a map entry may name one file).
        assert_eq!(
            accel(MEDIA, b"/nonexistent/srv/media").as_deref(),
            Ok("/_protected/media")
        );
        // A URI with a trailing slash gets no double slash.
        assert_eq!(
            accel(&[("/nonexistent/m", "/p/")], b"/nonexistent/m/x").as_deref(),
            Ok("/p/x")
        );
        // The whole file system.
        assert_eq!(
            accel(&[("/", "/all")], b"/etc/x").as_deref(),
            Ok("/all/etc/x")
        );
    }

    #[test]
    fn nothing_outside_the_map_is_named() {
        for path in [
            &b"/nonexistent/srv/media2/a"[..],
            b"/nonexistent/srv/medi",
            b"/nonexistent/srv",
            b"/etc/passwd",
        ] {
            assert_eq!(accel(MEDIA, path), Err(Kept::Unmapped), "{path:?}");
        }
        for path in [
            &b"/nonexistent/srv/media/../../../etc/passwd"[..],
            b"/nonexistent/srv/media/./a",
            b"/nonexistent/srv/media//a",
            b"nonexistent/srv/media/a",
        ] {
            assert_eq!(accel(MEDIA, path), Err(Kept::NoPath), "{path:?}");
        }
    }

    #[test]
    fn the_longest_prefix_wins() {
        let map = [
            ("/nonexistent/srv", "/all"),
            ("/nonexistent/srv/media/private", "/private"),
        ];
        assert_eq!(
            accel(&map, b"/nonexistent/srv/media/private/x").as_deref(),
            Ok("/private/x")
        );
        assert_eq!(
            accel(&map, b"/nonexistent/srv/media/public/x").as_deref(),
            Ok("/all/media/public/x")
        );
    }

    #[test]
    fn unsafe_bytes_are_percent_encoded() {
        let v = accel(
            MEDIA,
            b"/nonexistent/srv/media/a b\r\nX-Evil: 1?x=%41#\xff\xe9.bin",
        )
        .unwrap();
        assert_eq!(
            v,
            "/_protected/media/a%20b%0D%0AX-Evil%3A%201%3Fx%3D%2541%23%FF%E9.bin"
        );
        assert!(v.bytes().all(|b| b.is_ascii_graphic()), "{v}");
        let v = sendfile(&[], None, "/srv/caf\u{e9} 1.txt".as_bytes()).unwrap();
        assert_eq!(v, "/srv/caf%C3%A9%201.txt");
    }

    #[test]
    fn x_sendfile_names_the_path() {
        assert_eq!(
            sendfile(&[], None, b"/srv/files/a.bin").as_deref(),
            Ok("/srv/files/a.bin")
        );
        // Chrooted workers: the front end sees the chroot's directory first.
        assert_eq!(
            sendfile(&[], Some("/var/jail/"), b"/srv/a.bin").as_deref(),
            Ok("/var/jail/srv/a.bin")
        );
        // With a map, only what it lists, under the path the front end sees.
        let map = [("/nonexistent/app/media", "/srv/site/media")];
        assert_eq!(
            sendfile(&map, None, b"/nonexistent/app/media/x").as_deref(),
            Ok("/srv/site/media/x")
        );
        assert_eq!(sendfile(&map, None, b"/etc/x"), Err(Kept::Unmapped));
        // lighttpd refuses a path that is not UTF-8 once decoded.
        assert_eq!(sendfile(&[], None, b"/srv/\xff"), Err(Kept::NotUtf8));
    }

    #[test]
    fn a_prefix_through_a_symbolic_link_matches_the_resolved_path() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let map = [(link.to_str().unwrap(), "/p")];
        let real = std::fs::canonicalize(&real).unwrap();
        let file = real.join("x.bin");
        assert_eq!(
            accel(&map, file.as_os_str().as_bytes()).as_deref(),
            Ok("/p/x.bin")
        );
    }

    #[test]
    fn the_path_of_a_descriptor() {
        use std::os::fd::AsFd;
        let dir = tempfile::tempdir().unwrap();
        let dir_path = std::fs::canonicalize(dir.path()).unwrap();
        let path = dir_path.join("a\nb \u{e9}.bin");
        std::fs::write(&path, b"x").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let st = nix::sys::stat::fstat(&f).unwrap();
        assert_eq!(
            file_path(f.as_fd(), &st),
            Ok(path.as_os_str().as_bytes().to_vec())
        );
        // Renamed: its new name.
        let moved = dir_path.join("moved.bin");
        std::fs::rename(&path, &moved).unwrap();
        assert_eq!(
            file_path(f.as_fd(), &st),
            Ok(moved.as_os_str().as_bytes().to_vec())
        );
        // Another file put in its place: refused.
        let f2 = std::fs::File::open(&moved).unwrap();
        let st2 = nix::sys::stat::fstat(&f2).unwrap();
        std::fs::remove_file(&moved).unwrap();
        std::fs::write(&moved, b"other").unwrap();
        assert_eq!(file_path(f2.as_fd(), &st2), Err(Kept::Changed));
        // Deleted: refused.
        let gone = dir_path.join("gone.bin");
        std::fs::write(&gone, b"x").unwrap();
        let f3 = std::fs::File::open(&gone).unwrap();
        let st3 = nix::sys::stat::fstat(&f3).unwrap();
        std::fs::remove_file(&gone).unwrap();
        assert_eq!(file_path(f3.as_fd(), &st3), Err(Kept::Changed));
    }

    const HEAD: &[u8] = b"Status: 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: 5\r\n\
        Content-Disposition: attachment; filename=\"a.pdf\"\r\ncontent-length: 5\r\n\r\n";

    #[test]
    fn the_header_block_loses_content_length_and_gains_the_header() {
        assert_eq!(check_head(HEAD), Ok(()));
        let out = offloaded_head(HEAD, "X-Accel-Redirect", "/p/a.pdf");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Status: 200 OK\r\nContent-Type: application/pdf\r\n\
             Content-Disposition: attachment; filename=\"a.pdf\"\r\n\
             X-Accel-Redirect: /p/a.pdf\r\n\r\n"
        );
    }

    #[test]
    fn only_a_200_without_the_apps_own_header() {
        assert_eq!(
            check_head(b"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n"),
            Err(Kept::Status)
        );
        assert_eq!(check_head(b"Status: 2000 OK\r\n\r\n"), Err(Kept::Status));
        for h in ["X-Accel-Redirect", "x-sendfile", "X-SENDFILE"] {
            let head = format!("Status: 200 OK\r\n{h}: /x\r\n\r\n");
            assert_eq!(check_head(head.as_bytes()), Err(Kept::AppHeader), "{h}");
        }
        // A name that only starts like one is no such header.
        assert_eq!(
            check_head(b"Status: 200 OK\r\nX-Sendfile-Type: x\r\n\r\n"),
            Ok(())
        );
    }
}
