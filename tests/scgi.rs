//! SCGI protocol conformance of a running wsgid, driven by the raw client in
//! tests/common/scgi.rs: a normal request, the body bounded by CONTENT_LENGTH, refused
//! headers and netstrings (400), empty connections, and the close after the response.
//! Apps: fixtures/conformance.py.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::fcgi::{assert_validator_quiet, Request};
use common::scgi::*;
use common::Daemon;

const APP: &str = "conformance:application";

fn start() -> Daemon {
    Daemon::builder(APP).scgi().start()
}

fn addr(d: &Daemon) -> &str {
    d.scgi.as_deref().expect("scgi address")
}

type Pair = (Vec<u8>, Vec<u8>);

fn pair(n: &str, v: &str) -> Pair {
    (n.into(), v.into())
}

/// Lines the daemon logged at WARN or ERROR level.
fn complaints(d: &Daemon) -> Vec<String> {
    d.log()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(str::to_owned)
        .collect()
}

const BAD_REQUEST: &str = "Status: 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 15\r\n\r\n400 Bad Request";

#[test]
fn normal_request_gets_the_exact_response() {
    let d = start();
    let raw = exchange(
        addr(&d),
        &encode(&Request::post("/echo", b"hello over scgi")),
    );
    assert_eq!(
        String::from_utf8_lossy(&raw),
        "Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\r\nhello over scgi"
    );
    let env = request(addr(&d), &Request::get("/environ?x=1")).json();
    assert_eq!(env["cgi"]["REQUEST_METHOD"], "GET");
    assert_eq!(env["cgi"]["QUERY_STRING"], "x=1");
    assert_eq!(env["cgi"]["PATH_INFO"], "/environ");
    assert_eq!(env["cgi"]["SCGI"], "1");
    assert_eq!(env["cgi"]["CONTENT_LENGTH"], "0");
    assert_validator_quiet(&d.log());
}

#[test]
fn body_is_bounded_by_content_length() {
    let d = start();
    let req = Request::post("/input?mode=read&n=4", b"hello").set("QUERY_STRING", "mode=read&n=4");
    let mut wire = encode(&req);
    wire.extend_from_slice(b"EXTRA BYTES THAT ARE NOT PART OF THE BODY");
    let j = raw_request(addr(&d), &wire).json();
    assert_eq!(j["pieces"], serde_json::json!(["hell", "o"]));
    assert_eq!(j["after"], "");
    assert_eq!(j["content_length"], "5");
    assert_validator_quiet(&d.log());
}

#[test]
fn body_arriving_in_pieces_is_read_to_content_length() {
    let d = start();
    let body = common::fcgi::noise(200_000, 3);
    let wire = encode(&Request::post("/echo", &body));
    let mut s = connect(addr(&d));
    for piece in wire.chunks(7001) {
        s.write_all(piece).expect("send");
        s.flush().expect("flush");
    }
    let r = common::fcgi::CgiResponse::parse(&read_all(&mut s));
    assert_eq!(r.status, 200);
    assert!(r.body == body, "echoed body differs");
}

#[test]
fn missing_or_misplaced_content_length_is_400() {
    let d = start();
    let cases: Vec<(&str, Vec<Pair>)> = vec![
        (
            "missing",
            vec![
                pair("SCGI", "1"),
                pair("REQUEST_METHOD", "GET"),
                pair("REQUEST_URI", "/environ"),
            ],
        ),
        (
            "not first",
            vec![
                pair("SCGI", "1"),
                pair("CONTENT_LENGTH", "0"),
                pair("REQUEST_METHOD", "GET"),
                pair("REQUEST_URI", "/environ"),
            ],
        ),
        (
            "repeated",
            vec![
                pair("CONTENT_LENGTH", "0"),
                pair("SCGI", "1"),
                pair("CONTENT_LENGTH", "0"),
                pair("REQUEST_METHOD", "GET"),
                pair("REQUEST_URI", "/environ"),
            ],
        ),
        (
            "not a number",
            vec![
                pair("CONTENT_LENGTH", "12a"),
                pair("SCGI", "1"),
                pair("REQUEST_METHOD", "GET"),
                pair("REQUEST_URI", "/environ"),
            ],
        ),
        ("empty header", vec![]),
    ];
    for (what, pairs) in cases {
        let raw = exchange_sized(addr(&d), &netstring(&header_block(&pairs)));
        assert_eq!(String::from_utf8_lossy(&raw), BAD_REQUEST, "{what}");
    }
    let log = d.log();
    assert!(
        log.contains("CONTENT_LENGTH"),
        "no reason in the log:\n{log}"
    );
    // The worker still serves.
    assert_eq!(request(addr(&d), &Request::get("/close")).body, b"one two");
}

#[test]
fn bad_netstring_is_400() {
    let d = start();
    let good = header_block(&pairs(&Request::get("/environ")));
    let mut no_comma = format!("{}:", good.len()).into_bytes();
    no_comma.extend_from_slice(&good);
    no_comma.push(b';');
    let mut leading_zero = format!("0{}:", good.len()).into_bytes();
    leading_zero.extend_from_slice(&good);
    leading_zero.push(b',');
    let mut short = format!("{}:", good.len() - 1).into_bytes();
    short.extend_from_slice(&good); // the length is one short: no ',' where expected
    short.push(b',');
    let mut unterminated = good.clone();
    unterminated.pop(); // the last value lacks its NUL
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length not a number", b"abc:xyz,".to_vec()),
        ("empty length", b":,".to_vec()),
        ("no comma", no_comma),
        ("leading zero", leading_zero),
        ("length too short", short),
        ("value not NUL-terminated", netstring(&unterminated)),
        ("space in length", b" 12:".to_vec()),
    ];
    for (what, wire) in cases {
        let raw = exchange_sized(addr(&d), &wire);
        assert_eq!(String::from_utf8_lossy(&raw), BAD_REQUEST, "{what}");
    }
    d.wait_log("request rejected: malformed SCGI request", 20);
    assert_eq!(request(addr(&d), &Request::get("/close")).body, b"one two");
}

#[test]
fn refused_request_connection_is_closed_after_the_400() {
    let d = start();
    for wire in [&b"abc:xyz,"[..], b"0:,"] {
        let mut s = connect(addr(&d));
        s.write_all(wire).expect("send");
        // SCGI ends every response by closing the connection (SCGI §3): the front end
        // waits for that close, so it must come right after the 400, not at read_timeout.
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set read timeout");
        let raw = read_all(&mut s);
        assert_eq!(String::from_utf8_lossy(&raw), BAD_REQUEST);
    }
    let log = d.log();
    assert!(
        !log.contains("read timeout"),
        "closed by the read timeout:\n{log}"
    );
}

#[test]
fn empty_connections_are_harmless_and_not_logged_as_problems() {
    let d = start();
    // A first request, so the log has settled.
    assert_eq!(request(addr(&d), &Request::get("/close")).body, b"one two");
    let before = complaints(&d);
    for _ in 0..5 {
        empty_connection(addr(&d));
    }
    // Let the worker notice the closes, then check it still serves.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(request(addr(&d), &Request::get("/close")).body, b"one two");
    assert_eq!(complaints(&d), before, "empty connections were logged");
}

#[test]
fn server_closes_the_connection_after_the_response() {
    let d = start();
    let mut s = connect(addr(&d));
    // Send the request and keep our side open: the server must close first.
    s.write_all(&encode(&Request::get("/close"))).expect("send");
    let start = Instant::now();
    let raw = read_all(&mut s);
    assert_eq!(
        String::from_utf8_lossy(&raw),
        "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\none two"
    );
    assert!(start.elapsed() < Duration::from_secs(25));
}

#[test]
fn request_followed_by_a_half_close_is_still_answered() {
    let d = start();
    let mut s = connect(addr(&d));
    s.write_all(&encode(&Request::post("/echo", b"half closed")))
        .expect("send");
    s.shutdown(std::net::Shutdown::Write).expect("half close");
    let raw = read_all(&mut s);
    assert_eq!(
        String::from_utf8_lossy(&raw),
        "Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\r\nhalf closed"
    );
}

#[test]
fn early_response_drains_the_rest_of_the_body() {
    // The app answers a 32 MiB upload without reading it; the front end, still sending,
    // must see neither a reset nor a stall (lingering close, uWSGI#614).
    let d = start();
    let mut s = connect(addr(&d));
    let mut w = s.try_clone().expect("clone socket");
    let wire = encode(&Request::post(
        "/ignore-body?sleep=0.3",
        &vec![b'u'; 32 << 20],
    ));
    let writer = std::thread::spawn(move || w.write_all(&wire));
    let raw = read_all(&mut s);
    assert_eq!(
        String::from_utf8_lossy(&raw),
        "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nbody ignored"
    );
    writer
        .join()
        .expect("writer thread")
        .expect("the front end could not send its whole request");
}

/// `curl` straight at the SCGI port: a plain-text HTTP 400 saying a web server must be in
/// front, and a log line that says so.
#[test]
fn an_http_client_is_told_to_put_a_web_server_in_front() {
    let d = start();
    let mut s = std::net::TcpStream::connect(addr(&d)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let reply = String::from_utf8(common::read_to_end(&mut s)).unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 400 Bad Request\r\n"),
        "{reply:?}"
    );
    assert!(
        reply.contains("This is an SCGI port (wsgid), not an HTTP one"),
        "{reply:?}"
    );
    d.wait_log("an HTTP request arrived on an SCGI port", 10);
}
