//! The floor under a FastCGI backend's CPU per request: a responder without Python,
//! environ or params decoding, which answers every request with what `fixtures/hello.py`
//! answers under wsgid. One thread, one mio reactor (edge-triggered, like wsgid's), and per
//! request the least any backend must do: one read, finding the end of the request's
//! records, one write. Its CPU per request is what the kernel's socket work costs on the
//! machine, which no backend can go below.
//!
//! ```text
//! cargo bench --bench floor -- 127.0.0.1:9000
//! cargo bench --bench floor -- unix:/tmp/floor.sock
//! ```
//!
//! A Unix socket is made readable and writable by everybody (nginx's worker processes run
//! as another user when nginx is started as root).
//!
//! With no address (as under a plain `cargo bench` or `cargo test --all-targets`) there is
//! nothing to serve, and it says so and exits 0. It runs until killed.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use mio::{Events, Interest, Poll, Token};
use wsgid::master::listeners::{self, SocketFile};
use wsgid::protocol::fastcgi::{encode_end_request, encode_stdout, ProtocolStatus};
use wsgid::worker::stream::{Listener, Stream};

const LISTENER: Token = Token(usize::MAX);
/// FastCGI record types (FastCGI 1.0 §8).
const BEGIN_REQUEST: u8 = 1;
const STDIN: u8 = 5;
/// What fixtures/hello.py answers, as wsgid frames it: head and body in one record.
const RESPONSE: &[u8] = b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 14\r\n\r\nHello, world!\n";

/// A listener for `addr`: "host:port", or "unix:PATH" (open to every user), bound as the
/// wsgid master binds its own (same backlog and options; a stale socket file is replaced,
/// anything else at the path refused) and adopted as a worker adopts it. For a Unix socket,
/// also the guard that removes its file when dropped.
fn bind(addr: &str) -> io::Result<(Listener, Option<SocketFile>)> {
    let (fd, file) = match addr.strip_prefix("unix:") {
        Some(path) => {
            let (fd, file) =
                listeners::bind_unix(Path::new(path), &listeners::SocketPerms::mode(0o666))
                    .map_err(io::Error::other)?;
            (fd, Some(file))
        }
        None => {
            let addr: SocketAddr = addr.parse().map_err(io::Error::other)?;
            (listeners::bind_tcp(addr)?, None)
        }
    };
    Ok((Listener::from_fd(fd)?, file))
}

struct Conn {
    stream: Stream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The last BEGIN_REQUEST asked to keep the connection (FCGI_KEEP_CONN).
    keep: bool,
    close_after_write: bool,
}

fn main() -> ExitCode {
    let Some(addr) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        println!(
            "floor: no address to listen on (cargo bench --bench floor -- HOST:PORT|unix:PATH)"
        );
        return ExitCode::SUCCESS;
    };
    match serve(&addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(addr: &str) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let (mut listener, _socket_file) = bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept(&poll, &mut listener, &mut conns)?;
                continue;
            }
            let i = ev.token().0;
            let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            let open = (!ev.is_readable() || read(conn, &mut buf)) && write(conn);
            if !open {
                if let Some(mut c) = conns[i].take() {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
            }
        }
    }
}

fn accept(poll: &Poll, listener: &mut Listener, conns: &mut Vec<Option<Conn>>) -> io::Result<()> {
    loop {
        let mut stream = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        let i = conns.iter().position(Option::is_none).unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns[i] = Some(Conn {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            keep: false,
            close_after_write: false,
        });
    }
}

/// Reads what arrived (a short read means the socket is drained: a later byte brings a new
/// edge) and queues an answer for every request whose records are complete. False when
/// the peer closed or the connection failed.
fn read(conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                conn.input.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    let mut at = 0;
    while let Some(h) = conn.input.get(at..at + 8) {
        let (kind, id) = (h[1], u16::from_be_bytes([h[2], h[3]]));
        let content = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let end = at + 8 + content + usize::from(h[6]);
        if conn.input.len() < end {
            break;
        }
        if kind == BEGIN_REQUEST && content >= 3 {
            conn.keep = conn.input[at + 10] & 1 == 1;
        }
        if kind == STDIN && content == 0 {
            encode_stdout(id, RESPONSE, &mut conn.output);
            encode_end_request(id, 0, ProtocolStatus::RequestComplete, &mut conn.output);
            conn.close_after_write |= !conn.keep;
        }
        at = end;
    }
    conn.input.drain(..at);
    true
}

/// Writes what is queued; false when the connection is to be closed.
fn write(conn: &mut Conn) -> bool {
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    !conn.close_after_write
}
