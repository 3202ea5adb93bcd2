//! Load generator that plays a front-end web server against a FastCGI or SCGI backend.
//!
//! FastCGI mode behaves like nginx with `fastcgi_keep_conn on` and upstream keepalive:
//! `--connections` connections, each on its own thread with a blocking socket and one
//! request in flight, each request a GET with the params nginx's stock `fastcgi_params`
//! sends (see `common`), read until FCGI_END_REQUEST. Without `--keep-conn` every request
//! opens its own connection without FCGI_KEEP_CONN (FastCGI §5.1: the application then
//! closes it). `--scgi` sends the same params as an SCGI request on a new connection each
//! time and reads the response until the backend closes (SCGI §3).
//!
//! Every response is checked: FastCGI records, END_REQUEST status, the CGI `Status:`
//! header and the body length announced by `Content-Length`. Whatever fails is counted by
//! kind and reported, never a panic. Latency runs from writing the request (from connecting,
//! when the request opens its connection) to the end of the response.
//!
//! ```text
//! cargo bench --bench fcgi_load -- --addr 127.0.0.1:9000 --connections 16 --duration 10 --keep-conn
//! cargo bench --bench fcgi_load -- --addr unix:/tmp/wsgid.sock --scgi --duration 5
//! ```
//!
//! The last line of output is machine-readable:
//! `RESULT name=... rps=... p50_us=... p99_us=... max_us=... requests=... errors=...`.
//! With no `--addr` (as under a plain `cargo bench` or `cargo test --all-targets`) there is
//! no backend to measure, and it says so and exits 0.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use wsgid::protocol::fastcgi::client::{
    encode_begin_request, encode_params, encode_stdin, ResponseDecoder, ResponseEvent,
};
use wsgid::protocol::fastcgi::RESPONDER;
use wsgid::protocol::scgi;

/// Most connections one run opens at once (one thread each).
const MAX_CONNECTIONS: usize = 4096;
/// Longest run, in seconds (warm-up included).
const MAX_DURATION: f64 = 3600.0;
/// Largest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The request id of every FastCGI request: like nginx, one request per connection at a time.
const REQUEST_ID: u16 = 1;
/// Pause after a failed connect before the next attempt, so that a dead backend is not
/// hammered in a tight loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

#[derive(Debug, Parser)]
#[command(
    name = "fcgi_load",
    about = "FastCGI/SCGI load generator (nginx-like requests)"
)]
struct Args {
    /// Backend address: host:port or unix:/path
    #[arg(long, value_name = "ADDR")]
    addr: Option<String>,
    /// Concurrent connections, one thread each
    #[arg(long, value_name = "N", default_value_t = 16)]
    connections: usize,
    /// Measured seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring starts
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    warmup: f64,
    /// FastCGI: keep each connection open across requests (FCGI_KEEP_CONN)
    #[arg(long)]
    keep_conn: bool,
    /// Speak SCGI instead of FastCGI (a new connection per request)
    #[arg(long)]
    scgi: bool,
    /// Request target (path and optional ?query)
    #[arg(long, value_name = "URI", default_value = "/")]
    uri: String,
    /// Expected HTTP status; any other counts as an error
    #[arg(long, value_name = "CODE", default_value_t = 200)]
    expect_status: u16,
    /// Socket connect/read/write timeout in seconds; a timeout counts as an error
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    timeout: f64,
    /// Name in the RESULT line [default: fastcgi-kc-N, fastcgi-N or scgi-N]
    #[arg(long)]
    name: Option<String>,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(addr) = args.addr.as_deref() else {
        println!("fcgi_load: no --addr given, nothing to measure (benches/run.sh runs it)");
        return ExitCode::SUCCESS;
    };
    match run(&args, addr) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fcgi_load: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the load; Ok(false) when not a single request succeeded.
fn run(args: &Args, addr: &str) -> Result<bool, String> {
    if args.connections == 0 || args.connections > MAX_CONNECTIONS {
        return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
    }
    let in_range = |s: f64| s.is_finite() && (0.0..=MAX_DURATION).contains(&s);
    if !in_range(args.duration) || args.duration == 0.0 || !in_range(args.warmup) {
        return Err(format!(
            "--duration must be in (0, {MAX_DURATION}] and --warmup in [0, {MAX_DURATION}]"
        ));
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= MAX_DURATION) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    if !args.uri.starts_with('/') || args.uri.bytes().any(|b| b.is_ascii_control()) {
        return Err("--uri must start with / and hold no control characters".into());
    }
    let target = Target::parse(addr)?;
    let proto = if args.scgi {
        Proto::Scgi
    } else if args.keep_conn {
        Proto::FastcgiKeepConn
    } else {
        Proto::Fastcgi
    };
    let request: Arc<[u8]> = encode_request(proto, &args.uri).into();
    let name = args.name.clone().unwrap_or_else(|| {
        let base = match proto {
            Proto::FastcgiKeepConn => "fastcgi-kc",
            Proto::Fastcgi => "fastcgi",
            Proto::Scgi => "scgi",
        };
        format!("{base}-{}", args.connections)
    });

    let timeout = Duration::from_secs_f64(args.timeout);
    let start = Instant::now();
    let window = Window {
        from: start + Duration::from_secs_f64(args.warmup),
        until: start + Duration::from_secs_f64(args.warmup + args.duration),
    };
    let mut handles = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let client = Client {
            target: target.clone(),
            proto,
            request: Arc::clone(&request),
            expect_status: args.expect_status,
            timeout,
            window,
        };
        let h = thread::Builder::new()
            .name(format!("conn-{i}"))
            .stack_size(256 * 1024)
            .spawn(move || client.run())
            .map_err(|e| format!("cannot start thread {i}: {e}"))?;
        handles.push(h);
    }
    let mut total = Stats::new();
    let mut lost = 0;
    for h in handles {
        match h.join() {
            Ok(s) => total.merge(&s),
            Err(_) => lost += 1,
        }
    }
    let secs = args.duration;
    let ok = total.hist.count();
    let errors = total.errors.iter().sum::<u64>() + lost;
    let rps = ok as f64 / secs;
    let mode = match proto {
        Proto::FastcgiKeepConn => "FastCGI, FCGI_KEEP_CONN",
        Proto::Fastcgi => "FastCGI, a connection per request",
        Proto::Scgi => "SCGI, a connection per request",
    };
    println!(
        "fcgi_load: {addr} ({mode}), {} connections, GET {}, {secs} s measured after {} s warm-up",
        args.connections, args.uri, args.warmup
    );
    println!("  requests  {ok} ok, {rps:.1} req/s");
    println!(
        "  latency   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        fmt_ns(total.hist.quantile(0.50)),
        fmt_ns(total.hist.quantile(0.90)),
        fmt_ns(total.hist.quantile(0.99)),
        fmt_ns(total.hist.quantile(0.999)),
        fmt_ns(total.hist.max()),
    );
    let kinds: Vec<String> = ErrorKind::ALL
        .iter()
        .zip(total.errors.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    if lost > 0 {
        println!("  threads   {lost} died");
    }
    if kinds.is_empty() {
        println!("  errors    {errors}");
    } else {
        println!("  errors    {errors} ({})", kinds.join(", "));
    }
    if let Some(msg) = &total.first_error {
        println!("  first error: {msg}");
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "RESULT name={name} rps={rps:.1} p50_us={:.1} p99_us={:.1} max_us={:.1} requests={ok} errors={errors}",
        us(total.hist.quantile(0.50)),
        us(total.hist.quantile(0.99)),
        us(total.hist.max()),
    );
    Ok(ok > 0)
}

fn fmt_ns(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.3} ms", ns as f64 / 1e6)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    FastcgiKeepConn,
    Fastcgi,
    Scgi,
}

/// The bytes of one request, identical for every request of a run.
fn encode_request(proto: Proto, uri: &str) -> Vec<u8> {
    let owned = common::nginx_params(uri);
    let params: Vec<(&[u8], &[u8])> = owned
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let mut out = Vec::with_capacity(1024);
    match proto {
        Proto::FastcgiKeepConn | Proto::Fastcgi => {
            let keep = proto == Proto::FastcgiKeepConn;
            encode_begin_request(REQUEST_ID, RESPONDER, keep, &mut out);
            encode_params(REQUEST_ID, &params, &mut out);
            encode_stdin(REQUEST_ID, b"", &mut out);
        }
        Proto::Scgi => {
            // nginx's scgi_params send CONTENT_LENGTH and SCGI themselves; encode_request
            // puts its own first, as SCGI §3 requires, and skips ours.
            scgi::encode_request(&params, b"", &mut out);
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Target {
    fn parse(addr: &str) -> Result<Target, String> {
        if let Some(path) = addr.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path".into());
            }
            return Ok(Target::Unix(path.into()));
        }
        addr.to_socket_addrs()
            .map_err(|e| format!("cannot resolve {addr}: {e}"))?
            .next()
            .map(Target::Tcp)
            .ok_or_else(|| format!("{addr} resolves to no address"))
    }

    fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        match self {
            Target::Tcp(sa) => {
                let s = TcpStream::connect_timeout(sa, timeout)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                Ok(Stream::Tcp(s))
            }
            Target::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                Ok(Stream::Unix(s))
            }
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    /// The connection could not be opened.
    Connect,
    /// A socket read or write timed out.
    Timeout,
    /// The backend closed the connection before the response was complete.
    Eof,
    /// Reset, broken pipe or any other socket error.
    Io,
    /// Not a valid FastCGI record stream, a wrong request id, or data after END_REQUEST.
    Protocol,
    /// END_REQUEST with a protocolStatus other than FCGI_REQUEST_COMPLETE or a non-zero
    /// appStatus (FastCGI §5.5).
    EndStatus,
    /// No parsable CGI response head, or a body that does not match Content-Length.
    BadResponse,
    /// An HTTP status other than the expected one.
    Status,
}

impl ErrorKind {
    const ALL: [ErrorKind; 8] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Eof,
        ErrorKind::Io,
        ErrorKind::Protocol,
        ErrorKind::EndStatus,
        ErrorKind::BadResponse,
        ErrorKind::Status,
    ];

    fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Eof => "closed early",
            ErrorKind::Io => "socket error",
            ErrorKind::Protocol => "protocol",
            ErrorKind::EndStatus => "end status",
            ErrorKind::BadResponse => "bad response",
            ErrorKind::Status => "http status",
        }
    }

    fn from_io(e: &io::Error) -> ErrorKind {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ErrorKind::Timeout,
            io::ErrorKind::UnexpectedEof => ErrorKind::Eof,
            _ => ErrorKind::Io,
        }
    }
}

/// A failed request: its kind and a description for the report.
struct Failure {
    kind: ErrorKind,
    what: String,
}

impl Failure {
    fn new(kind: ErrorKind, what: impl Into<String>) -> Failure {
        Failure {
            kind,
            what: what.into(),
        }
    }

    fn io(doing: &str, e: &io::Error) -> Failure {
        Failure::new(ErrorKind::from_io(e), format!("{doing}: {e}"))
    }
}

/// The part of a run whose results count (after the warm-up).
#[derive(Debug, Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.from && t <= self.until
    }
}

/// One connection's loop.
struct Client {
    target: Target,
    proto: Proto,
    request: Arc<[u8]>,
    expect_status: u16,
    timeout: Duration,
    window: Window,
}

impl Client {
    fn run(self) -> Stats {
        let mut stats = Stats::new();
        let mut conn: Option<Stream> = None;
        let mut buf = vec![0u8; 64 * 1024];
        while Instant::now() < self.window.until {
            let t0 = Instant::now();
            let mut stream = match conn.take() {
                Some(s) => s,
                None => match self.target.connect(self.timeout) {
                    Ok(s) => s,
                    Err(e) => {
                        let f = Failure::new(ErrorKind::Connect, e.to_string());
                        stats.fail(t0, &self.window, f);
                        thread::sleep(CONNECT_BACKOFF);
                        continue;
                    }
                },
            };
            let result = match self.proto {
                Proto::Scgi => self.scgi_exchange(&mut stream, &mut buf),
                Proto::Fastcgi | Proto::FastcgiKeepConn => {
                    self.fastcgi_exchange(&mut stream, &mut buf)
                }
            };
            let done = Instant::now();
            match result {
                Ok(()) => {
                    if self.window.contains(done) {
                        stats.hist.record(duration_ns(done - t0));
                    }
                    if self.proto == Proto::FastcgiKeepConn {
                        conn = Some(stream);
                    }
                }
                // The connection is in an unknown state: drop it and open another.
                Err(f) => stats.fail(t0, &self.window, f),
            }
        }
        stats
    }

    /// One FastCGI request and its whole response, up to END_REQUEST.
    fn fastcgi_exchange(&self, stream: &mut Stream, buf: &mut [u8]) -> Result<(), Failure> {
        stream
            .write_all(&self.request)
            .map_err(|e| Failure::io("write", &e))?;
        let mut dec = ResponseDecoder::new();
        let mut resp = Response::new();
        loop {
            let n = match stream.read(buf) {
                Ok(0) => return Err(Failure::new(ErrorKind::Eof, "closed before END_REQUEST")),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::io("read", &e)),
            };
            dec.receive(&buf[..n])
                .map_err(|e| Failure::new(ErrorKind::Protocol, e.to_string()))?;
            while let Some(ev) = dec.poll() {
                match ev {
                    ResponseEvent::Stdout { id, data } if id == REQUEST_ID => resp.feed(&data)?,
                    ResponseEvent::Stderr { id, .. } if id == REQUEST_ID => {}
                    ResponseEvent::End {
                        id,
                        app_status,
                        protocol_status,
                    } if id == REQUEST_ID => {
                        if protocol_status != 0 || app_status != 0 {
                            return Err(Failure::new(
                                ErrorKind::EndStatus,
                                format!(
                                    "END_REQUEST protocolStatus {protocol_status} appStatus {app_status}"
                                ),
                            ));
                        }
                        // One request in flight: nothing may follow its END_REQUEST.
                        if dec.poll().is_some() || dec.buffered() > 0 {
                            return Err(Failure::new(
                                ErrorKind::Protocol,
                                "data after END_REQUEST",
                            ));
                        }
                        return resp.finish(self.expect_status);
                    }
                    other => {
                        return Err(Failure::new(
                            ErrorKind::Protocol,
                            format!("unexpected record {other:?}"),
                        ))
                    }
                }
            }
        }
    }

    /// One SCGI request; the response ends when the backend closes (SCGI §3).
    fn scgi_exchange(&self, stream: &mut Stream, buf: &mut [u8]) -> Result<(), Failure> {
        stream
            .write_all(&self.request)
            .map_err(|e| Failure::io("write", &e))?;
        let mut resp = Response::new();
        loop {
            match stream.read(buf) {
                Ok(0) => return resp.finish(self.expect_status),
                Ok(n) => resp.feed(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::io("read", &e)),
            }
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A CGI response (RFC 3875 §6) as it streams in: the head is kept until its blank line,
/// the body only counted.
struct Response {
    head: Vec<u8>,
    head_done: bool,
    body: u64,
}

impl Response {
    fn new() -> Response {
        Response {
            head: Vec::with_capacity(256),
            head_done: false,
            body: 0,
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), Failure> {
        if self.head_done {
            self.body += data.len() as u64;
            return Ok(());
        }
        let before = self.head.len();
        self.head.extend_from_slice(data);
        if let Some(end) = head_end(&self.head, before) {
            self.body += (self.head.len() - end) as u64;
            self.head.truncate(end);
            self.head_done = true;
        } else if self.head.len() > MAX_HEAD {
            return Err(Failure::new(
                ErrorKind::BadResponse,
                format!("response head over {MAX_HEAD} bytes"),
            ));
        }
        Ok(())
    }

    /// Checks the complete response.
    fn finish(&self, expect_status: u16) -> Result<(), Failure> {
        if !self.head_done {
            return Err(Failure::new(
                ErrorKind::BadResponse,
                "response ended inside its head",
            ));
        }
        let text = String::from_utf8_lossy(&self.head);
        let mut status = None;
        let mut location = false;
        let mut length = None;
        // The head ends with its blank line.
        for (i, line) in text.lines().take_while(|l| !l.is_empty()).enumerate() {
            let bad = || Failure::new(ErrorKind::BadResponse, format!("bad head line {line:?}"));
            // An SCGI backend may answer with an HTTP status line instead of Status:.
            if i == 0 && line.starts_with("HTTP/") {
                let code = line.split(' ').nth(1).ok_or_else(bad)?;
                status = Some(parse_status(code).ok_or_else(bad)?);
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(bad());
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("status") {
                status = Some(parse_status(value).ok_or_else(bad)?);
            } else if name.eq_ignore_ascii_case("location") {
                location = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<u64>().map_err(|_| bad())?);
            }
        }
        // RFC 3875 §6.3.3: no Status means 200, or 302 with a Location.
        let status = status.unwrap_or(if location { 302 } else { 200 });
        if status != expect_status {
            return Err(Failure::new(
                ErrorKind::Status,
                format!("status {status}, expected {expect_status}"),
            ));
        }
        if let Some(len) = length {
            if len != self.body {
                return Err(Failure::new(
                    ErrorKind::BadResponse,
                    format!("Content-Length {len} but {} body bytes", self.body),
                ));
            }
        }
        Ok(())
    }
}

/// The three leading digits of a status value ("200 OK" → 200).
fn parse_status(v: &str) -> Option<u16> {
    let code = v.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || (v.len() > 3 && !v[3..].starts_with(' ')) {
        return None;
    }
    code.parse().ok()
}

/// End of the head (after its blank line, CRLF or bare LF) in `buf`, searching from a little
/// before `from` so that a terminator split across reads is found.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let tail = &buf[start..];
    for i in 0..tail.len() {
        if tail[i..].starts_with(b"\r\n\r\n") {
            return Some(start + i + 4);
        }
        if tail[i..].starts_with(b"\n\n") {
            return Some(start + i + 2);
        }
    }
    None
}

/// One thread's results.
struct Stats {
    hist: Histogram,
    errors: [u64; ErrorKind::ALL.len()],
    first_error: Option<String>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            hist: Histogram::new(),
            errors: [0; ErrorKind::ALL.len()],
            first_error: None,
        }
    }

    /// Counts a failed request that started after the warm-up (one still in flight when
    /// the window closes counts too: it may never have ended); remembers the first one.
    fn fail(&mut self, started: Instant, window: &Window, f: Failure) {
        if self.first_error.is_none() {
            self.first_error = Some(format!("{}: {}", f.kind.name(), f.what));
        }
        if started >= window.from {
            self.errors[f.kind as usize] += 1;
        }
    }

    fn merge(&mut self, other: &Stats) {
        self.hist.merge(&other.hist);
        for (a, b) in self.errors.iter_mut().zip(other.errors.iter()) {
            *a += b;
        }
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }
}

/// Log-linear latency histogram in nanoseconds: exact below 64 ns, then 32 buckets per
/// power of two (at most 1/32 = 3.1 % relative error). The maximum is kept exactly.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < 2 * SUB {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros(); // >= SUB_BITS + 1
        let shift = exp - SUB_BITS;
        // (v >> shift) is in [SUB, 2 * SUB).
        ((shift as u64 + 1) * SUB + ((v >> shift) - SUB)) as usize
    }

    /// Smallest and largest value of bucket `i`.
    fn bounds(i: usize) -> (u64, u64) {
        let i = i as u64;
        if i < 2 * SUB {
            return (i, i);
        }
        let shift = i / SUB - 1;
        let low = (SUB + i % SUB) << shift;
        (low, low + ((1u64 << shift) - 1))
    }

    fn record(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    fn count(&self) -> u64 {
        self.total
    }

    fn max(&self) -> u64 {
        self.max
    }

    /// The value below which a fraction `q` of the samples lie (bucket midpoint, never
    /// above the maximum); 0 for no samples.
    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = Self::bounds(i);
                return (lo + (hi - lo) / 2).min(self.max);
            }
        }
        self.max
    }
}
