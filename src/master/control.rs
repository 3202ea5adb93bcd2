//! The control socket: a Unix socket, mode 0600, on which the master answers `wsgid
//! status` and `wsgid reload [APP]`. One request line per connection (`status`, `reload`,
//! `reload NAME`), one JSON line back, then the connection closes.
//!
//! The master is single-threaded: connections are non-blocking, each bounded in size
//! (`MAX_REQUEST` bytes), in number (`MAX_CONNECTIONS`) and in time (`TIMEOUT` to send
//! its line; the answer is written with the same bound). Only the master's own user and
//! root may use it: the socket's mode says so, and each peer's credentials are checked.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::sys::stat::{umask, Mode};

use super::listeners::{bind_unix, SocketFile, SocketPerms};

/// The longest request line.
pub const MAX_REQUEST: usize = 256;
/// Connections waiting for their request line at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take to send its line, and the answer to be taken.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Status,
    /// Reload every app, or the one named.
    Reload(Option<String>),
}

impl Request {
    pub fn parse(line: &str) -> Result<Request, String> {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        match words.as_slice() {
            ["status"] => Ok(Request::Status),
            ["reload"] => Ok(Request::Reload(None)),
            ["reload", name] => Ok(Request::Reload(Some(name.to_string()))),
            _ => Err(format!("unknown request {line:?}")),
        }
    }

    /// The line a client sends.
    pub fn line(&self) -> String {
        match self {
            Request::Status => "status\n".into(),
            Request::Reload(None) => "reload\n".into(),
            Request::Reload(Some(name)) => format!("reload {name}\n"),
        }
    }
}

/// A connection waiting for its request line.
struct Waiting {
    stream: UnixStream,
    line: Vec<u8>,
    deadline: Instant,
}

pub struct Control {
    listener: UnixListener,
    _file: SocketFile,
    path: PathBuf,
    waiting: Vec<Waiting>,
}

impl Control {
    /// Binds `path` (a stale socket there is replaced) with mode 0600: the socket is made
    /// under umask 077, so no other user can connect even before its mode is set.
    pub fn bind(path: &Path) -> Result<Control, String> {
        let old = umask(Mode::from_bits_truncate(0o077));
        let bound = bind_unix(path, &SocketPerms::mode(0o600));
        umask(old);
        let (fd, file): (OwnedFd, SocketFile) =
            bound.map_err(|e| format!("control socket: {e}"))?;
        let listener = UnixListener::from(fd);
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
        Ok(Control {
            listener,
            _file: file,
            path: path.to_path_buf(),
            waiting: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What to poll for reading: the socket and the connections waiting.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        std::iter::once(self.listener.as_fd()).chain(self.waiting.iter().map(|w| w.stream.as_fd()))
    }

    /// When the oldest waiting connection times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.deadline).min()
    }

    /// Accepts what is waiting, reads what has arrived, closes connections that timed out
    /// or broke a rule; returns the requests that are complete, each with its connection
    /// for `answer`.
    pub fn take_requests(&mut self, now: Instant) -> Vec<(UnixStream, Result<Request, String>)> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!("control socket: accept: {e}");
                    break;
                }
            }
        }
        let mut done = Vec::new();
        let mut still = Vec::with_capacity(self.waiting.len());
        for mut w in std::mem::take(&mut self.waiting) {
            match read_line(&mut w) {
                Ok(Some(line)) => done.push((w.stream, Request::parse(&line))),
                Ok(None) if now < w.deadline => still.push(w),
                Ok(None) => tracing::debug!("control socket: a client sent no request in time"),
                Err(e) => tracing::debug!("control socket: {e}"),
            }
        }
        self.waiting = still;
        done
    }

    fn admit(&mut self, stream: UnixStream, now: Instant) {
        // Only this user and root: the mode says so; the credentials make sure.
        let me = nix::unistd::geteuid().as_raw();
        match getsockopt(&stream, PeerCredentials) {
            Ok(c) if c.uid() == me || c.uid() == 0 => {}
            Ok(c) => {
                tracing::warn!(
                    "control socket: refused a client running as uid {} (pid {})",
                    c.uid(),
                    c.pid()
                );
                return;
            }
            Err(e) => {
                tracing::warn!("control socket: cannot tell who connected: {e}");
                return;
            }
        }
        if self.waiting.len() >= MAX_CONNECTIONS {
            tracing::warn!(
                "control socket: {MAX_CONNECTIONS} clients are waiting already; one more closed"
            );
            return;
        }
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        self.waiting.push(Waiting {
            stream,
            line: Vec::new(),
            deadline: now + TIMEOUT,
        });
    }
}

/// Reads what has arrived; Some(line) once the newline is in.
fn read_line(w: &mut Waiting) -> Result<Option<String>, String> {
    let mut buf = [0u8; MAX_REQUEST];
    loop {
        match w.stream.read(&mut buf) {
            Ok(0) => return Err("a client left before its request was complete".into()),
            Ok(n) => {
                w.line.extend_from_slice(&buf[..n]);
                if let Some(end) = w.line.iter().position(|&b| b == b'\n') {
                    return String::from_utf8(w.line[..end].to_vec())
                        .map(Some)
                        .map_err(|_| "a request that is not UTF-8".into());
                }
                if w.line.len() > MAX_REQUEST {
                    return Err(format!("a request longer than {MAX_REQUEST} bytes"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// Writes `reply` (one JSON line) and closes the connection; a client that does not take
/// it within `TIMEOUT` loses it.
pub fn answer(mut stream: UnixStream, reply: &str) {
    let sent = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .and_then(|()| stream.write_all(reply.as_bytes()))
        .and_then(|()| stream.write_all(b"\n"));
    if let Err(e) = sent {
        tracing::debug!("control socket: answer not taken: {e}");
    }
}

/// Sends `request` to the master at `path` and returns its answer line.
pub fn ask(path: &Path, request: &Request) -> Result<String, String> {
    let shown = path.display();
    let mut s = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            format!("no wsgid answers on {shown}: {e}")
        }
        io::ErrorKind::PermissionDenied => {
            format!("{shown}: {e} (only the user wsgid runs as, and root, may use it)")
        }
        _ => format!("{shown}: {e}"),
    })?;
    // A reload answers once the new workers are started: allow for slow imports.
    let wait = Duration::from_secs(30);
    s.set_read_timeout(Some(wait))
        .and_then(|()| s.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("{shown}: {e}"))?;
    s.write_all(request.line().as_bytes())
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut reply = String::new();
    s.take(16 << 20)
        .read_to_string(&mut reply)
        .map_err(|e| format!("{shown}: no answer: {e}"))?;
    if reply.is_empty() {
        return Err(format!(
            "{shown}: the master closed the connection without an answer"
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(Request::parse("status"), Ok(Request::Status));
        assert_eq!(Request::parse(" reload "), Ok(Request::Reload(None)));
        assert_eq!(
            Request::parse("reload blog"),
            Ok(Request::Reload(Some("blog".into())))
        );
        assert!(Request::parse("reload a b").is_err());
        assert!(Request::parse("").is_err());
        for r in [Request::Status, Request::Reload(Some("x".into()))] {
            assert_eq!(Request::parse(r.line().trim_end()), Ok(r));
        }
    }
}
