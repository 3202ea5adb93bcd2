//! `--request-timeout`: a request still running that long after its params were read gets
//! 504 (or, once its headers went out, a visibly broken response), its Python thread gets
//! `wsgid.RequestTimeout`, and a thread that does not come back within
//! `--request-timeout-grace` (blocked in C) gets its worker replaced gracefully. The worker
//! otherwise goes on serving, with the same threads. App: fixtures/timeout_app.py.

mod common;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::fcgi::{self, wait_for_file, Client, Next, Request};
use common::{scgi, Daemon, Scratch};

const APP: &str = "timeout_app:application";

/// A daemon serving the timeout app over FastCGI and SCGI, recording into `markers`.
fn start(markers: &Path, args: &[&str]) -> Daemon {
    Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .env("WSGID_TEST_MARKERS", markers.to_str().expect("utf-8 path"))
        .args(args)
        .start()
}

fn fa(d: &Daemon) -> String {
    d.fcgi.clone().expect("fastcgi address")
}

fn get(addr: &str, uri: &str) -> (u16, String) {
    let r = fcgi::request(addr, &Request::get(uri)).cgi();
    (r.status, r.text())
}

/// `get`, again while the answer is 503: with --max-in-flight 1, the last request counts
/// until its thread lets go of it, just after its response went out.
fn get_when_free(addr: &str, uri: &str) -> (u16, String) {
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, body) = get(addr, uri);
        if status != 503 {
            return (status, body);
        }
        assert!(Instant::now() < end, "{uri}: still 503 after two seconds");
        thread::sleep(Duration::from_millis(20));
    }
}

/// What a fixture request recorded: (how it ended, its thread id, its pid).
fn marker(dir: &Scratch, name: &str) -> (String, u64, u32) {
    let text = wait_for_file(&dir.join(name), 20);
    let mut f = text.split_whitespace();
    let how = f.next().unwrap_or_default().to_string();
    let tid = f.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let pid = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (how, tid, pid)
}

/// (thread id, pid) that served `/tid`.
fn tid(addr: &str) -> (u64, u32) {
    let (status, body) = get(addr, "/tid");
    assert_eq!(status, 200, "{body}");
    let mut f = body.split(' ').map(|s| s.parse::<u64>().unwrap_or(0));
    let t = f.next().unwrap_or(0);
    (t, f.next().unwrap_or(0) as u32)
}

/// The lines of `log` that contain `needle`.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

/// Python code that never checks anything is interrupted: 504 near the timeout, the warn
/// line, `wsgid.RequestTimeout` seen by the app (past its `except Exception:`), a
/// concurrent request served meanwhile, and the same worker serving on.
#[test]
fn a_request_looping_in_python_gets_504_and_the_exception() {
    let dir = common::scratch("rt-spin");
    let d = start(&dir, &["--request-timeout", "1", "--threads", "2"]);
    let addr = fa(&d);
    let (_, pid) = tid(&addr);
    let a = addr.clone();
    let spin = thread::spawn(move || {
        let t0 = Instant::now();
        let r = fcgi::request(&a, &Request::get("/spin?spin")).cgi();
        (r, t0.elapsed())
    });
    thread::sleep(Duration::from_millis(200));
    // Shares the interpreter with the loop, and is served while it runs.
    assert_eq!(get(&addr, "/busy?busy&0.3"), (200, "done".to_string()));
    let (r, took) = spin.join().unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.text().contains("Gateway Timeout"), "{}", r.text());
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_millis(1600),
        "504 after {took:?}"
    );
    let (how, _, spin_pid) = marker(&dir, "spin");
    assert_eq!(how, "wsgid.RequestTimeout");
    assert_eq!(marker(&dir, "busy").0, "finished");
    assert_eq!(spin_pid, pid);
    let log = d.wait_log("the application was interrupted", 10);
    let warned = lines_with(&log, "request timeout: running for ");
    assert_eq!(warned.len(), 1, "{log}");
    assert!(warned[0].contains("WARN"), "{log}");
    assert!(warned[0].contains("GET /spin?spin (fcgi 1)"), "{log}");
    assert!(
        warned[0].contains("past request_timeout (1.000 s)"),
        "{log}"
    );
    assert!(warned[0].contains("answered 504 Gateway Timeout"), "{log}");
    // Where the application was when it was interrupted.
    assert!(log.contains("in _spin"), "{log}");
    // The same worker serves on, and nobody asked to replace it.
    for _ in 0..5 {
        assert_eq!(tid(&addr).1, pid);
    }
    assert!(!log.contains("replacement"), "{log}");
}

/// The thread that got the exception serves the next requests normally (nothing left
/// pending in it), and the timed-out request no longer counts against --max-in-flight.
#[test]
fn the_interrupted_thread_serves_the_next_request() {
    let dir = common::scratch("rt-reuse");
    let d = start(
        &dir,
        &[
            "--request-timeout",
            "0.8",
            "--threads",
            "1",
            "--max-in-flight",
            "1",
        ],
    );
    let addr = fa(&d);
    let (status, _) = get(&addr, "/spin?spin");
    assert_eq!(status, 504);
    let (how, spin_tid, _) = marker(&dir, "spin");
    assert_eq!(how, "wsgid.RequestTimeout");
    // The thread lets go of the job just after the application recorded the exception:
    // from then on the request no longer counts.
    let (status, served) = get_when_free(&addr, "/tid");
    assert_eq!(status, 200, "{served}");
    assert!(
        served.starts_with(&format!("{spin_tid} ")),
        "a single thread, the one that was interrupted: {served} against {spin_tid}"
    );
    // Python code for most of the limit: no exception left over from the last request.
    assert_eq!(
        get_when_free(&addr, "/busy?busy&0.5"),
        (200, "done".to_string())
    );
    let (how, busy_tid, _) = marker(&dir, "busy");
    assert_eq!((how.as_str(), busy_tid), ("finished", spin_tid));
    // And a second timeout on the same thread works as the first.
    assert_eq!(get_when_free(&addr, "/spin?spin2").0, 504);
    assert_eq!(marker(&dir, "spin2").0, "wsgid.RequestTimeout");
    assert_eq!(
        get_when_free(&addr, "/busy?busy2&0.2"),
        (200, "done".to_string())
    );
}

/// A request blocked in wsgi.input.read() for body bytes that never come ends at the
/// request timeout, well before the read timeout, and near it, not at the next whole
/// second: the read raises RequestTimeout.
#[test]
fn a_request_waiting_for_its_body_ends_at_the_timeout() {
    let dir = common::scratch("rt-read");
    // One thread: the next requests run on the one that was interrupted.
    let d = start(
        &dir,
        &[
            "--request-timeout",
            "1.5",
            "--read-timeout",
            "30",
            "--threads",
            "1",
        ],
    );
    let mut c = Client::connect(&fa(&d));
    let req = Request::post("/read?read", &[b'x'; 100]);
    let mut bytes = fcgi::begin_request(1, fcgi::RESPONDER, fcgi::KEEP_CONN);
    bytes.extend(fcgi::stream(fcgi::PARAMS, 1, &req.params_stream(), 65535));
    bytes.extend(fcgi::record(fcgi::STDIN, 1, &[b'x'; 10]));
    let t0 = Instant::now();
    c.send(&bytes);
    let r = c.read_response(1);
    let took = t0.elapsed();
    assert_eq!(r.end, Some((0, fcgi::REQUEST_COMPLETE)));
    assert_eq!(r.cgi().status, 504, "{}", r.cgi().text());
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_millis(1800),
        "504 after {took:?}"
    );
    assert_eq!(marker(&dir, "read").0, "wsgid.RequestTimeout");
    let log = d.wait_log("the application was interrupted", 10);
    assert!(log.contains("while reading the request body"), "{log}");
    // The connection serves its next request, and the thread runs Python code with no
    // exception left over (raised once, by the read).
    let next = c.request(2, true, &Request::get("/busy?after&0.2"));
    assert_eq!(next.cgi().text(), "done");
    assert_eq!(marker(&dir, "after").0, "finished");
    assert_eq!(
        lines_with(&d.log(), "RequestTimeout").len(),
        2,
        "{}",
        d.log()
    );

    // SCGI: the same, and the connection closes after the 504.
    let mut s = scgi::connect(d.scgi.as_deref().expect("scgi address"));
    let whole = scgi::encode(&Request::post("/read?scgi", &[b'y'; 100]));
    use std::io::Write;
    s.write_all(&whole[..whole.len() - 90]).unwrap();
    let t0 = Instant::now();
    let got = scgi::read_all(&mut s);
    let took = t0.elapsed();
    let r = fcgi::CgiResponse::parse(&got);
    assert_eq!(r.status, 504, "{}", String::from_utf8_lossy(&got));
    assert!(took < Duration::from_millis(1800), "504 after {took:?}");
    assert_eq!(marker(&dir, "scgi").0, "wsgid.RequestTimeout");
}

/// A request whose front end reset the connection while its thread loops in Python is
/// still timed: nobody gets a response, but the thread gets the exception and serves on.
#[test]
fn a_request_whose_connection_closed_is_still_timed() {
    let dir = common::scratch("rt-gone");
    let d = start(&dir, &["--request-timeout", "1", "--threads", "1"]);
    let mut c = Client::connect(&fa(&d));
    c.send(&Request::get("/spin?gone").encode(1, true));
    thread::sleep(Duration::from_millis(300));
    // A reset: the connection is gone at once, not half-closed.
    socket2::SockRef::from(&c.stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(c);
    let (how, t, _) = marker(&dir, "gone");
    assert_eq!(how, "wsgid.RequestTimeout");
    let log = d.wait_log("the application was interrupted", 10);
    assert!(log.contains("its connection was closed already"), "{log}");
    let (served, _) = tid(&fa(&d));
    assert_eq!(served, t);
}

/// Once the headers and a first block went out, a stalled response is cut off: the
/// connection closes without END_REQUEST, so the front end cannot take it for complete.
/// Sharing its connection with another request, it ends with a non-zero app status
/// instead, and the other request is served.
#[test]
fn a_response_stalled_after_its_headers_is_cut_off() {
    let dir = common::scratch("rt-stall");
    let d = start(&dir, &["--request-timeout", "1"]);
    let mut c = Client::connect(&fa(&d));
    c.send(&Request::get("/stall?stall").encode(1, true));
    let (r, end) = c.collect(1);
    assert!(r.end.is_none(), "a complete response: {r:?}");
    assert!(matches!(end, Some(Next::Closed)), "{end:?}");
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.starts_with("Status: 200 OK\r\n"), "{out}");
    assert!(out.ends_with("first block\n"), "{out}");
    assert_eq!(marker(&dir, "stall").0, "wsgid.RequestTimeout");
    let log = d.wait_log("the application was interrupted", 10);
    assert!(log.contains("its response had started: cut off"), "{log}");

    // Multiplexed: the stalled request ends with app status 1, its neighbour is served.
    let mut c = Client::connect(&fa(&d));
    c.send(&Request::get("/stall?stall2").encode(1, true));
    thread::sleep(Duration::from_millis(600));
    c.send(&Request::get("/sleep?nap&0.8").encode(2, true));
    let stalled = c.read_response(1);
    assert_eq!(stalled.end, Some((1, fcgi::REQUEST_COMPLETE)));
    assert!(String::from_utf8_lossy(&stalled.stdout).ends_with("first block\n"));
    let nap = c.read_response(2);
    assert_eq!(nap.cgi().status, 200);
    assert_eq!(nap.cgi().text(), "slept");
    assert_eq!(marker(&dir, "stall2").0, "wsgid.RequestTimeout");
    assert_eq!(marker(&dir, "nap").0, "finished");
    assert!(c.still_open(Duration::from_millis(200)));
}

/// A thread blocked in C (time.sleep) past the timeout and its grace: the worker asks to be
/// replaced, the master starts a successor and stops the old worker gracefully, and
/// another request the old worker holds completes.
#[test]
fn a_request_blocked_in_c_gets_its_worker_replaced() {
    let dir = common::scratch("rt-stuck");
    let d = start(
        &dir,
        &[
            "--request-timeout",
            "2",
            "--request-timeout-grace",
            "1",
            "--graceful-timeout",
            "4",
        ],
    );
    let addr = fa(&d);
    let (_, old) = tid(&addr);
    let a = addr.clone();
    let stuck = thread::spawn(move || {
        let t0 = Instant::now();
        let r = get(&a, "/sleep?stuck&60");
        (r, t0.elapsed())
    });
    d.wait_log("sleep started pid=", 10);
    let ((status, _), took) = stuck.join().unwrap();
    assert_eq!(status, 504);
    assert!(took < Duration::from_millis(2600), "504 after {took:?}");
    // In flight on the old worker when it asks for its replacement, and within its own
    // timeout.
    let a = addr.clone();
    let other = thread::spawn(move || get(&a, "/sleep?other&1.7"));
    let log = d.wait_log("asking the master for a replacement", 10);
    let asked = lines_with(&log, "asking the master for a replacement");
    assert_eq!(asked.len(), 1, "{log}");
    assert!(asked[0].contains("ERROR"), "{log}");
    assert!(asked[0].contains("GET /sleep?stuck&60 (fcgi 1)"), "{log}");
    assert_eq!(other.join().unwrap(), (200, "slept".to_string()));
    let (how, _, other_pid) = marker(&dir, "other");
    assert_eq!((how.as_str(), other_pid), ("finished", old));
    let end = Instant::now() + Duration::from_secs(20);
    while tid(&addr).1 == old {
        assert!(
            Instant::now() < end,
            "pid {old} was never replaced:\n{}",
            d.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let log = d.log();
    assert!(
        log.contains(&format!(
            "(pid {old}): a request is stuck past request_timeout; starting its replacement"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("(pid {old}) replaced by pid")),
        "{log}"
    );
    assert!(
        !log.contains("replacing it in"),
        "treated as a crash:\n{log}"
    );
    // The stuck thread never came back: the old worker gives up on it after its grace.
    d.wait_log("grace period over; abandoning requests still running", 15);
}

/// A request finishing just under the limit is untouched; so are quick ones.
#[test]
fn a_request_under_the_timeout_is_untouched() {
    let dir = common::scratch("rt-under");
    let d = start(&dir, &["--request-timeout", "1"]);
    let addr = fa(&d);
    assert_eq!(get(&addr, "/busy?busy&0.85"), (200, "done".to_string()));
    assert_eq!(marker(&dir, "busy").0, "finished");
    assert_eq!(get(&addr, "/sleep?nap&0.85"), (200, "slept".to_string()));
    for _ in 0..50 {
        assert_eq!(get(&addr, "/tid").0, 200);
    }
    let r = scgi::request(
        d.scgi.as_deref().expect("scgi"),
        &Request::get("/busy?sbusy&0.5"),
    );
    assert_eq!(r.status, 200);
    thread::sleep(Duration::from_millis(1200));
    let log = d.log();
    assert!(!log.contains("request timeout"), "{log}");
    assert!(!log.contains("RequestTimeout"), "{log}");
}

/// Applications import the module wsgid, whose RequestTimeout is a BaseException (so that
/// `except Exception:` does not swallow it).
#[test]
fn the_wsgid_module_names_its_exceptions() {
    let dir = common::scratch("rt-module");
    let d = start(&dir, &[]);
    assert_eq!(
        get(&fa(&d), "/wsgid"),
        (200, "BaseException OSError".to_string())
    );
    let (st, out) = Daemon::builder("").arg("--help").run();
    assert!(st.success(), "{out}");
    assert!(out.contains("--request-timeout "), "{out}");
    assert!(out.contains("--request-timeout-grace"), "{out}");
}
