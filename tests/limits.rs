//! Every request limit of wsgid at its boundary and one past it, by default and set on
//! the command line (--max-params-bytes, --max-params, --max-scgi-header, --max-body), and
//! the read and idle timeouts. Past a limit the front end gets a 4xx where the protocol
//! allows it (431 for params and headers, 413 for bodies), the log names the limit's key,
//! and the worker goes on serving. Apps: fixtures/conformance.py.

mod common;

use std::io::Write;
use std::time::Duration;

use common::fcgi::{self, *};
use common::{scgi, Daemon};

const APP: &str = "conformance:application";

const TOO_LARGE_431: &str = "Status: 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 35\r\n\r\n431 Request Header Fields Too Large";
const TOO_LARGE_413: &str = "Status: 413 Content Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\n\r\n413 Content Too Large";

fn start(args: &[&str]) -> Daemon {
    Daemon::builder(APP).fastcgi().scgi().args(args).start()
}

fn fa(d: &Daemon) -> &str {
    d.fcgi.as_deref().expect("fastcgi address")
}

fn sa(d: &Daemon) -> &str {
    d.scgi.as_deref().expect("scgi address")
}

/// GET /close padded with an HTTP_X_FILL param so that its params total `bytes`.
fn with_params_bytes(bytes: usize) -> Request {
    let base = Request::get("/close");
    let fill = bytes - base.params_bytes() - "HTTP_X_FILL".len();
    let r = base.add("HTTP_X_FILL", &"f".repeat(fill));
    assert_eq!(r.params_bytes(), bytes);
    r
}

/// The same for SCGI, whose header also carries CONTENT_LENGTH and SCGI.
fn scgi_with_params_bytes(bytes: usize) -> Request {
    let base = Request::get("/close");
    let have: usize = scgi::pairs(&base)
        .iter()
        .map(|(n, v)| n.len() + v.len())
        .sum();
    let fill = bytes - have - "HTTP_X_FILL".len();
    let r = base.add("HTTP_X_FILL", &"f".repeat(fill));
    assert_eq!(
        scgi::pairs(&r)
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>(),
        bytes
    );
    r
}

/// GET /close with extra params so that it has exactly `count` of them.
fn with_params_count(count: usize, scgi_extra: usize) -> Request {
    let mut r = Request::get("/close");
    let mut i = 0;
    while r.params.len() + scgi_extra < count {
        r = r.add(&format!("HTTP_X_P{i}"), "v");
        i += 1;
    }
    r
}

/// One FastCGI request on `c` (KEEP_CONN): the raw STDOUT after a clean END_REQUEST.
fn fcgi_stdout(c: &mut Client, id: u16, req: &Request) -> String {
    let resp = c.request(id, true, req);
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)));
    String::from_utf8_lossy(&resp.stdout).into_owned()
}

/// The first response of an SCGI exchange: wsgid's own responses carry a Content-Length.
/// (What may follow it is checked by `refused_scgi_request_is_answered_once`.)
fn first_response(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).into_owned();
    let r = CgiResponse::parse(raw);
    let len: usize = r
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length: {text}"));
    text[..r.head.len() + len].to_string()
}

fn still_serves(d: &Daemon) {
    let r = fcgi::request(fa(d), &Request::get("/close")).cgi();
    assert_eq!(r.body, b"one two", "FastCGI after the limit");
    let r = scgi::request(sa(d), &Request::get("/close"));
    assert_eq!(r.body, b"one two", "SCGI after the limit");
}

#[test]
fn help_names_every_limit_option() {
    let (st, out) = Daemon::builder("").arg("--help").run();
    assert!(st.success(), "{out}");
    for opt in [
        "--max-params-bytes",
        "--max-params ",
        "--max-scgi-header",
        "--max-body",
        "--read-timeout",
        "--send-timeout",
        "--idle-timeout",
        "--max-connections",
        "--max-in-flight",
    ] {
        assert!(out.contains(opt), "--help lacks {opt}:\n{out}");
    }
}

#[test]
fn max_params_bytes_default_is_256k() {
    let d = start(&[]);
    let mut c = Client::connect(fa(&d));
    let at = fcgi_stdout(&mut c, 1, &with_params_bytes(256 * 1024));
    assert!(at.ends_with("\r\n\r\none two"), "{at}");
    let past = fcgi_stdout(&mut c, 2, &with_params_bytes(256 * 1024 + 1));
    assert_eq!(past, TOO_LARGE_431);
    d.wait_log("max_params_bytes", 20);
    // KEEP_CONN: the same connection serves the next request.
    assert!(fcgi_stdout(&mut c, 3, &Request::get("/close")).ends_with("one two"));
    still_serves(&d);
}

#[test]
fn max_params_bytes_option_fastcgi() {
    let d = start(&["--max-params-bytes", "2000"]);
    let mut c = Client::connect(fa(&d));
    assert!(fcgi_stdout(&mut c, 1, &with_params_bytes(2000)).ends_with("one two"));
    assert_eq!(
        fcgi_stdout(&mut c, 1, &with_params_bytes(2001)),
        TOO_LARGE_431
    );
    d.wait_log("max_params_bytes", 20);
    still_serves(&d);
}

#[test]
fn max_params_bytes_option_scgi() {
    let d = start(&["--max-params-bytes", "2000"]);
    let r = scgi::request(sa(&d), &scgi_with_params_bytes(2000));
    assert_eq!(r.body, b"one two");
    let raw = scgi::exchange_sized(sa(&d), &scgi::encode(&scgi_with_params_bytes(2001)));
    assert_eq!(first_response(&raw), TOO_LARGE_431);
    still_serves(&d);
}

#[test]
fn scgi_limit_log_names_the_key() {
    let d = start(&[
        "--max-params-bytes",
        "2000",
        "--max-params",
        "20",
        "--max-scgi-header",
        "3000",
        "--max-body",
        "10",
    ]);
    let keyed = |key: &str| {
        d.log().lines().any(|l| {
            l.contains("SCGI")
                && l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|w| w == key)
        })
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "max_params_bytes",
            scgi::encode(&scgi_with_params_bytes(2001)),
        ),
        ("max_params", scgi::encode(&with_params_count(21, 2))),
        ("max_scgi_header", scgi_header_of(3001)),
        (
            "max_body",
            scgi::encode(&Request::post("/echo", &[b'b'; 11])),
        ),
    ];
    for (key, wire) in cases {
        let _ = scgi::exchange_sized(sa(&d), &wire);
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while !keyed(key) && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(keyed(key), "no SCGI log line names {key}:\n{}", d.log());
    }
}

#[test]
fn max_params_count_default_is_1000() {
    let d = start(&[]);
    let mut c = Client::connect(fa(&d));
    let at = with_params_count(1000, 0);
    assert_eq!(at.params.len(), 1000);
    assert!(fcgi_stdout(&mut c, 1, &at).ends_with("one two"));
    assert_eq!(
        fcgi_stdout(&mut c, 1, &with_params_count(1001, 0)),
        TOO_LARGE_431
    );
    d.wait_log("max_params", 20);
    still_serves(&d);
}

#[test]
fn max_params_count_option() {
    let d = start(&["--max-params", "20"]);
    let mut c = Client::connect(fa(&d));
    assert!(fcgi_stdout(&mut c, 1, &with_params_count(20, 0)).ends_with("one two"));
    assert_eq!(
        fcgi_stdout(&mut c, 1, &with_params_count(21, 0)),
        TOO_LARGE_431
    );
    let log = d.wait_log("limit=\"max_params\"", 20);
    assert!(log.contains("max_params"));
    // SCGI counts its CONTENT_LENGTH and SCGI headers too.
    let at = with_params_count(20, 2);
    assert_eq!(scgi::pairs(&at).len(), 20);
    assert_eq!(scgi::request(sa(&d), &at).body, b"one two");
    let past = with_params_count(21, 2);
    let raw = scgi::exchange_sized(sa(&d), &scgi::encode(&past));
    assert_eq!(first_response(&raw), TOO_LARGE_431);
    still_serves(&d);
}

/// GET /close whose SCGI header (the netstring's content) is exactly `len` bytes.
fn scgi_header_of(len: usize) -> Vec<u8> {
    let base = Request::get("/close");
    let have = scgi::header_block(&scgi::pairs(&base)).len();
    let fill = len - have - "HTTP_X_FILL".len() - 2;
    let r = base.add("HTTP_X_FILL", &"h".repeat(fill));
    let block = scgi::header_block(&scgi::pairs(&r));
    assert_eq!(block.len(), len);
    scgi::netstring(&block)
}

#[test]
fn max_scgi_header_option() {
    let d = start(&["--max-scgi-header", "1000"]);
    let raw = scgi::exchange(sa(&d), &scgi_header_of(1000));
    assert!(
        String::from_utf8_lossy(&raw).ends_with("\r\n\r\none two"),
        "{raw:?}"
    );
    let raw = scgi::exchange_sized(sa(&d), &scgi_header_of(1001));
    assert_eq!(first_response(&raw), TOO_LARGE_431);
    d.wait_log("breaks the max_scgi_header limit", 20);
    still_serves(&d);
}

#[test]
fn max_scgi_header_default_is_256k() {
    let d = start(&[]);
    let raw = scgi::exchange(sa(&d), &scgi_header_of(256 * 1024));
    assert!(String::from_utf8_lossy(&raw).ends_with("\r\n\r\none two"));
    let raw = scgi::exchange_sized(sa(&d), &scgi_header_of(256 * 1024 + 1));
    assert_eq!(first_response(&raw), TOO_LARGE_431);
    still_serves(&d);
}

#[test]
fn max_body_option_with_content_length() {
    let d = start(&["--max-body", "1000"]);
    let mut c = Client::connect(fa(&d));
    let at = c.request(1, true, &Request::post("/echo", &[b'a'; 1000]));
    assert_eq!(at.cgi().body, vec![b'a'; 1000]);
    // Refused from CONTENT_LENGTH alone, before any body byte is read.
    assert_eq!(
        fcgi_stdout(&mut c, 1, &Request::post("/echo", &[b'b'; 1001])),
        TOO_LARGE_413
    );
    d.wait_log("max_body", 20);
    assert!(fcgi_stdout(&mut c, 2, &Request::get("/close")).ends_with("one two"));
    // SCGI.
    let r = scgi::request(sa(&d), &Request::post("/echo", &[b'c'; 1000]));
    assert_eq!(r.body, vec![b'c'; 1000]);
    let raw = scgi::exchange_sized(
        sa(&d),
        &scgi::encode(&Request::post("/echo", &[b'd'; 1001])),
    );
    assert_eq!(first_response(&raw), TOO_LARGE_413);
    still_serves(&d);
}

#[test]
fn max_body_option_with_streamed_body() {
    // No CONTENT_LENGTH: the limit applies to the STDIN bytes as they arrive.
    let d = start(&["--max-body", "1000"]);
    let mut c = Client::connect(fa(&d));
    let unknown = |n: usize| {
        Request::new("POST", "/echo")
            .body(&vec![b's'; n])
            .remove("CONTENT_LENGTH")
    };
    let at = c.request(1, true, &unknown(1000));
    assert_eq!(at.cgi().body, vec![b's'; 1000]);
    let past = c.request(2, true, &unknown(1001));
    assert_eq!(past.end, Some((0, REQUEST_COMPLETE)));
    let r = past.cgi();
    assert_eq!(r.status_line, "413 Content Too Large");
    assert_eq!(r.body, b"Request body too large\n");
    d.wait_log("max_body", 20);
    assert!(fcgi_stdout(&mut c, 3, &Request::get("/close")).ends_with("one two"));
    still_serves(&d);
}

#[test]
fn read_timeout_closes_a_connection_whose_params_stall() {
    let d = start(&["--read-timeout", "1"]);
    // FastCGI: BEGIN_REQUEST and part of PARAMS, then nothing.
    let mut c = Client::connect(fa(&d));
    c.send(&begin_request(1, RESPONDER, KEEP_CONN));
    c.send(&record(
        PARAMS,
        1,
        &Request::get("/close").params_stream()[..30],
    ));
    assert!(c.still_open(Duration::from_millis(200)));
    let got = c.expect_closed(20);
    assert!(got.is_empty(), "{got:?}");
    d.wait_log("read timeout", 20);
    // SCGI: half a netstring, then nothing.
    let mut s = scgi::connect(sa(&d));
    s.write_all(b"100:CONTENT_LENGTH\x000\x00").expect("send");
    let raw = scgi::read_all(&mut s);
    assert!(raw.is_empty(), "{raw:?}");
    still_serves(&d);
}

#[test]
fn read_timeout_fails_a_request_whose_body_stalls_with_408() {
    let d = start(&["--read-timeout", "1"]);
    let mut c = Client::connect(fa(&d));
    let req = Request::post("/echo", &[b'x'; 100]);
    let mut wire = begin_request(1, RESPONDER, 0);
    wire.extend(stream(PARAMS, 1, &req.params_stream(), 65535));
    wire.extend(record(STDIN, 1, &[b'x'; 10]));
    c.send(&wire);
    let resp = c.read_response(1);
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)));
    let r = resp.cgi();
    assert_eq!(r.status_line, "408 Request Timeout");
    assert_eq!(r.body, b"Request body timed out\n");
    d.wait_log("read timeout", 20);
    d.wait_log("echo-read-failed", 20);
    still_serves(&d);
}

#[test]
fn idle_timeout_closes_idle_connections_only() {
    let d = start(&["--idle-timeout", "1"]);
    // A keep-alive connection after its request.
    let mut kept = Client::connect(fa(&d));
    assert!(fcgi_stdout(&mut kept, 1, &Request::get("/close")).ends_with("one two"));
    // A connection that never sends anything.
    let mut silent = Client::connect(fa(&d));
    // A connection in the middle of a request: the read timeout (60 s) applies, not this.
    let mut busy = Client::connect(fa(&d));
    busy.send(&begin_request(1, RESPONDER, KEEP_CONN));
    busy.send(&record(
        PARAMS,
        1,
        &Request::get("/close").params_stream()[..30],
    ));
    assert!(kept.expect_closed(20).is_empty());
    assert!(silent.expect_closed(20).is_empty());
    assert!(
        busy.still_open(Duration::from_millis(1500)),
        "a connection mid-request was closed by the idle timeout"
    );
    // It can still complete its request.
    let rest = &Request::get("/close").params_stream()[30..];
    busy.send(&record(PARAMS, 1, rest));
    busy.send(&record(PARAMS, 1, b""));
    busy.send(&record(STDIN, 1, b""));
    assert_eq!(busy.read_response(1).cgi().body, b"one two");
    still_serves(&d);
}

#[test]
fn default_idle_timeout_keeps_connections_for_longer_than_two_seconds() {
    let d = start(&[]);
    let mut c = Client::connect(fa(&d));
    assert!(fcgi_stdout(&mut c, 1, &Request::get("/close")).ends_with("one two"));
    assert!(
        c.still_open(Duration::from_millis(2500)),
        "closed before the 60 s default"
    );
    assert!(fcgi_stdout(&mut c, 2, &Request::get("/close")).ends_with("one two"));
}

#[test]
fn refused_scgi_request_is_answered_once() {
    // The header is refused at its length; the rest of it arrives in later reads.
    let d = start(&["--max-scgi-header", "1000"]);
    let mut s = scgi::connect(sa(&d));
    let wire = scgi_header_of(200_000);
    for piece in wire.chunks(20_000) {
        if s.write_all(piece).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Whatever arrives within 3 s (the connection may or may not be closed by then).
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("set read timeout");
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match std::io::Read::read(&mut s, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(String::from_utf8_lossy(&raw), TOO_LARGE_431);
}

#[test]
fn max_in_flight_refuses_with_503_past_the_limit() {
    let d = start(&["--threads", "1", "--max-in-flight", "1"]);
    let mut busy = Client::connect(fa(&d));
    busy.send(&Request::get("/stream?n=30&delay=0.05").encode(1, false));
    let first = busy.read_record();
    assert_eq!(first.rtype, STDOUT);
    // One request in the worker already: the next one is refused, not queued.
    let r = fcgi::request(fa(&d), &Request::get("/close"));
    assert_eq!(r.end, Some((0, REQUEST_COMPLETE)));
    assert_eq!(r.cgi().status, 503);
    d.wait_log("max_in_flight", 20);
    assert_clean(busy.read_response(1));
    still_serves(&d);
}

fn assert_clean(r: Response) {
    assert_eq!(r.end, Some((0, REQUEST_COMPLETE)));
}

#[test]
fn max_connections_holds_new_connections_until_one_closes() {
    let d = start(&["--max-connections", "1"]);
    let mut first = Client::connect(fa(&d));
    assert!(fcgi_stdout(&mut first, 1, &Request::get("/close")).ends_with("one two"));
    // The kernel queues a second connection, but wsgid does not take it while the first
    // is open.
    let mut second = Client::connect(fa(&d));
    second.send(&Request::get("/close").encode(1, false));
    assert!(
        second.still_open(Duration::from_millis(700)),
        "the second connection was closed"
    );
    let mut probe = [0u8; 1];
    second.stream.set_nonblocking(true).expect("nonblocking");
    assert!(
        second.stream.peek(&mut probe).is_err(),
        "answered past max_connections"
    );
    second.stream.set_nonblocking(false).expect("blocking");
    d.wait_log("connection limit reached", 20);
    first.close();
    let r = second.read_response(1);
    assert_eq!(r.cgi().body, b"one two");
}

#[test]
fn connections_closed_in_the_middle_of_params_are_let_go() {
    // Each front-end connection begins a request and closes before its params end (some
    // with no PARAMS at all, some inside the stream): none of them may keep a connection
    // slot, or `--max-connections` fills for good.
    let mut d = start(&["--max-connections", "5", "--graceful-timeout", "60"]);
    for k in 0..20 {
        let mut c = Client::connect(fa(&d));
        let mut wire = begin_request(1, RESPONDER, KEEP_CONN);
        if k % 2 == 1 {
            wire.extend(record(PARAMS, 1, &name_value(b"REQUEST_METHOD", b"GET")));
        }
        c.send(&wire);
        c.close();
    }
    still_serves(&d);
    d.wait_log("before a request's params were complete", 20);
    // Nothing is left in flight, so stopping does not wait out the grace period.
    let st = d.stop_with(nix::sys::signal::Signal::SIGTERM, 20);
    assert!(st.success(), "{st:?}");
}

#[test]
fn connections_waiting_while_descriptors_ran_out_are_accepted_once_they_are_back() {
    let d = start(&[]);
    let mut hog = Client::connect(fa(&d));
    let held = fcgi_stdout(&mut hog, 1, &Request::get("/raw/fd-hog"));
    assert!(held.contains("holding "), "{held}");
    // These wait in the listen queue: accept() fails while the worker has no descriptor.
    let mut waiting: Vec<Client> = (0..2).map(|_| Client::connect(fa(&d))).collect();
    for c in &mut waiting {
        c.send(&Request::get("/close").encode(1, false));
    }
    d.wait_log("accept failed", 20);
    std::thread::sleep(Duration::from_millis(1000)); // several retries, one log line
    let released = fcgi_stdout(&mut hog, 2, &Request::get("/raw/fd-hog?release=1"));
    assert!(released.contains("released "), "{released}");
    // No new connection arrives to raise the listener's readiness: the retry must take
    // the waiting ones by itself.
    for c in &mut waiting {
        assert_eq!(c.read_response(1).cgi().body, b"one two");
    }
    let log = d.wait_log("accepting connections again", 20);
    assert_eq!(
        log.matches("accept failed").count(),
        1,
        "the shortage was logged more than once in its first seconds:\n{log}"
    );
}

#[test]
fn send_timeout_frees_the_threads_of_front_ends_that_stop_reading() {
    // Both Python threads are paused on responses nobody reads: only the send timeout lets
    // a third request through.
    let d = start(&["--threads", "2", "--send-timeout", "1"]);
    let dir = common::scratch("send-timeout");
    let markers: Vec<_> = (0..2).map(|k| dir.join(format!("closed-{k}"))).collect();
    let stalled: Vec<Client> = markers
        .iter()
        .map(|m| {
            let mut c = Client::connect(fa(&d));
            let uri = format!("/endless?marker={}", m.display());
            c.send(&Request::get(&uri).encode(1, false));
            assert_eq!(c.read_record().rtype, STDOUT);
            c
        })
        .collect();
    let r = fcgi::request(fa(&d), &Request::get("/close")).cgi();
    assert_eq!(r.body, b"one two");
    for m in &markers {
        let text = wait_for_file(m, 20);
        assert!(text.starts_with("closed after "), "{text}");
    }
    let log = d.wait_log("send timeout", 20);
    assert!(
        log.contains("send_timeout"),
        "the log does not name the limit:\n{log}"
    );
    // What the stalled front ends still read ends without END_REQUEST: cut off.
    for mut c in stalled {
        let (resp, end) = c.collect(1);
        assert!(end.is_some(), "ended cleanly: {:?}", resp.end);
    }
}

#[test]
fn send_timeout_spares_a_front_end_that_reads_slowly() {
    // 8 KiB every 100 ms: the socket's send buffer drains too slowly to turn writable
    // within the timeout, but it does drain.
    let d = start(&["--send-timeout", "3"]);
    let mut c = Client::connect(fa(&d));
    c.send(&Request::get("/endless").encode(1, false));
    let mut buf = [0u8; 8192];
    let mut got = 0usize;
    let end = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < end {
        let n = std::io::Read::read(&mut c.stream, &mut buf).expect("read the stream");
        assert!(n > 0, "closed after {got} bytes:\n{}", d.log());
        got += n;
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = d.log();
    assert!(
        !log.contains("send timeout"),
        "a reading front end timed out:\n{log}"
    );
}

#[test]
fn requests_whose_connections_die_while_they_wait_stay_counted_and_never_run() {
    let d = start(&["--threads", "1", "--max-in-flight", "4"]);
    let dir = common::scratch("dead-queued");
    // The only thread is busy with a response nobody reads.
    let mut busy = Client::connect(fa(&d));
    busy.send(&Request::get("/endless").encode(1, false));
    assert_eq!(busy.read_record().rtype, STDOUT);
    // Three requests queue behind it, then their connections are reset.
    let markers: Vec<_> = (0..3).map(|k| dir.join(format!("seen-{k}"))).collect();
    let queued: Vec<Client> = markers
        .iter()
        .map(|m| {
            let mut c = Client::connect(fa(&d));
            let uri = format!("/close?seen={}", m.display());
            c.send(&Request::get(&uri).encode(1, false));
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000)); // read and queued by the worker
    for c in queued {
        socket2::SockRef::from(&c.stream)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
        drop(c); // a reset
    }
    // They still hold their places: the next request is refused, not queued behind them.
    let r = fcgi::request(fa(&d), &Request::get("/close")).cgi();
    assert_eq!(r.status, 503, "{}", r.text());
    // Once the thread is free, they are dropped without running the app.
    busy.close();
    still_serves(&d);
    for m in &markers {
        assert!(
            !m.exists(),
            "the app ran a request whose connection was gone"
        );
    }
}

#[test]
fn read_timeout_spares_a_slow_app_whose_request_is_complete() {
    // The request is complete (CONTENT_LENGTH 0; this front end sends no STDIN record at
    // all, like hiawatha), the app just takes longer than the read timeout.
    let d = start(&["--read-timeout", "1"]);
    let mut c = Client::connect(fa(&d));
    let req = Request::get("/stream?n=3&delay=1.2")
        .set("CONTENT_LENGTH", "0")
        .no_stdin();
    let r = c.request(1, true, &req);
    assert_eq!(r.end, Some((0, REQUEST_COMPLETE)));
    assert_eq!(r.cgi().text(), "chunk 0\nchunk 1\nchunk 2\n");
    // And with a complete body, a slow app.
    let req = Request::post("/stream?n=3&delay=1.2", b"complete body");
    let r = c.request(2, true, &req);
    assert_eq!(r.cgi().text(), "chunk 0\nchunk 1\nchunk 2\n");
    // An app error after the read timeout is still a 500, not a 408.
    let req = Request::get("/raise-before?sleep=1.5")
        .set("CONTENT_LENGTH", "0")
        .no_stdin();
    let r = c.request(3, true, &req);
    assert_eq!(r.cgi().status_line, "500 Internal Server Error");
    let log = d.log();
    assert!(
        !log.contains("read timeout"),
        "a complete request timed out:\n{log}"
    );
}
