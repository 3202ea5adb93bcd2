//! FastCGI protocol conformance of a running wsgid, driven by the raw client in
//! tests/common/fcgi.rs: roles, streams spanning records, keep-alive, multiplexing,
//! aborts, management records, output framing, front ends that omit or close things, and
//! malformed input. Apps: fixtures/conformance.py.

mod common;

use std::io::Write;
use std::time::Duration;

use common::fcgi::*;
use common::{scratch, Daemon};

const APP: &str = "conformance:application";

fn start() -> Daemon {
    Daemon::builder(APP).fastcgi().start()
}

fn addr(d: &Daemon) -> &str {
    d.fcgi.as_deref().expect("fastcgi address")
}

fn end_request_bytes(id: u16, app_status: u32, protocol_status: u8) -> Record {
    let mut content = app_status.to_be_bytes().to_vec();
    content.extend_from_slice(&[protocol_status, 0, 0, 0]);
    Record {
        version: 1,
        rtype: END_REQUEST,
        id,
        content,
        padding: 0,
    }
}

/// Asserts a normal, complete response: STDOUT records, the empty STDOUT that ends the
/// stream, then END_REQUEST{0, FCGI_REQUEST_COMPLETE} (FastCGI §5.3, §5.5, §6.2).
fn assert_clean_end(resp: &Response, id: u16) {
    let n = resp.records.len();
    assert!(n >= 2, "too few records: {:?}", resp.records);
    let last = &resp.records[n - 1];
    assert_eq!(
        (last.rtype, last.id, &last.content[..]),
        (END_REQUEST, id, &[0u8, 0, 0, 0, 0, 0, 0, 0][..]),
        "END_REQUEST must carry appStatus 0 and FCGI_REQUEST_COMPLETE"
    );
    let before = &resp.records[n - 2];
    assert_eq!((before.rtype, before.content.len()), (STDOUT, 0));
    assert!(resp.records[..n - 2]
        .iter()
        .all(|r| r.rtype == STDOUT && !r.content.is_empty()));
}

#[test]
fn end_request_reports_request_complete_and_app_status_0() {
    let d = start();
    let resp = request(addr(&d), &Request::get("/close"));
    assert_clean_end(&resp, 1);
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)));
    let cgi = resp.cgi();
    assert_eq!(cgi.status_line, "200 OK");
    assert_eq!(cgi.body, b"one two");
    assert!(resp.stderr.is_empty());
    assert_validator_quiet(&d.log());
}

#[test]
fn unknown_roles_get_end_request_unknown_role() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    for (id, role) in [(3u16, FILTER), (4, 0), (5, 0xffff)] {
        c.send(&begin_request(id, role, KEEP_CONN));
        // A front end that goes on sending the request anyway: ignored (§3.3, inactive id).
        c.send(&stream(
            PARAMS,
            id,
            &Request::get("/environ").params_stream(),
            1000,
        ));
        c.send(&record(STDIN, id, b""));
        let (resp, end) = c.collect(id);
        assert!(end.is_none(), "connection ended after role {role}");
        assert_eq!(
            resp.records,
            vec![end_request_bytes(id, 0, UNKNOWN_ROLE)],
            "role {role}: only END_REQUEST{{FCGI_UNKNOWN_ROLE}}, no output"
        );
    }
    // The connection is still good for a Responder request.
    let resp = c.request(9, true, &Request::get("/close"));
    assert_eq!(resp.cgi().body, b"one two");
}

/// Cuts `data` into records at the given offsets (plus wherever needed to stay within
/// 65535 bytes), with `padding` on every other record, then the empty record.
fn cut_at(rtype: u8, id: u16, data: &[u8], points: &[usize], padding: u8) -> Vec<u8> {
    let mut cuts: Vec<usize> = points.iter().copied().filter(|&p| p < data.len()).collect();
    let mut p = 0;
    while p < data.len() {
        cuts.push(p);
        p += 60_000;
    }
    cuts.push(data.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut v = Vec::new();
    for (k, w) in cuts.windows(2).enumerate() {
        let pad = if k % 2 == 1 { padding } else { 0 };
        v.extend(record_padded(rtype, id, &data[w[0]..w[1]], pad));
    }
    v.extend(record(rtype, id, b""));
    v
}

#[test]
fn params_span_records_split_inside_length_fields() {
    let d = start();
    let big: Vec<u8> = (0..70_000).map(|i| b'a' + (i % 26) as u8).collect();
    let v127 = vec![b'x'; 127];
    let v128 = vec![b'y'; 128];
    let name127 = format!("HTTP_{}", "A".repeat(122)); // 127 bytes
    let name128 = format!("HTTP_{}", "B".repeat(123)); // 128 bytes
    assert_eq!((name127.len(), name128.len()), (127, 128));

    let base = Request::get("/environ");
    let mut stream_bytes = base.params_stream();
    let mut points = Vec::new();
    // Each pair starts at `at`: cut after 1 and 3 bytes of it, i.e. inside its length
    // fields whether they are 1 or 4 bytes long.
    let mut push = |pair: Vec<u8>, points: &mut Vec<usize>| {
        let at = stream_bytes.len();
        points.extend([at + 1, at + 3, at + 6]);
        stream_bytes.extend(pair);
    };
    push(name_value(b"HTTP_X_BIG", &big), &mut points);
    push(name_value(b"HTTP_X_V127", &v127), &mut points);
    push(name_value(b"HTTP_X_V128", &v128), &mut points);
    push(name_value(name127.as_bytes(), b"n127"), &mut points);
    push(name_value(name128.as_bytes(), b"n128"), &mut points);
    push(
        name_value_with(b"HTTP_X_LONG_FORM", b"short", true, true),
        &mut points,
    );
    push(
        name_value_with(b"HTTP_X_LONG_NAME_ONLY", b"v", true, false),
        &mut points,
    );
    push(name_value(b"HTTP_X_EMPTY", b""), &mut points);
    // The 1- and 4-byte boundary encodings really are what we meant to send.
    assert_eq!(name_value(b"N", &v127)[..2], [1, 127]);
    assert_eq!(name_value(b"N", &v128)[..5], [1, 0x80, 0, 0, 128]);

    let mut wire = begin_request(1, RESPONDER, 0);
    wire.extend(cut_at(PARAMS, 1, &stream_bytes, &points, 9));
    wire.extend(record(STDIN, 1, b""));
    let mut c = Client::connect(addr(&d));
    c.send(&wire);
    let resp = c.read_response(1);
    assert_clean_end(&resp, 1);
    let env = resp.cgi().json();
    let cgi = &env["cgi"];
    let s = |k: &str| cgi[k].as_str().map(str::to_owned);
    assert_eq!(s("HTTP_X_BIG").map(|v| v.into_bytes()), Some(big));
    assert_eq!(s("HTTP_X_V127").map(|v| v.into_bytes()), Some(v127));
    assert_eq!(s("HTTP_X_V128").map(|v| v.into_bytes()), Some(v128));
    assert_eq!(s(&name127).as_deref(), Some("n127"));
    assert_eq!(s(&name128).as_deref(), Some("n128"));
    assert_eq!(s("HTTP_X_LONG_FORM").as_deref(), Some("short"));
    assert_eq!(s("HTTP_X_LONG_NAME_ONLY").as_deref(), Some("v"));
    assert_eq!(s("HTTP_X_EMPTY").as_deref(), Some(""));
    assert_eq!(s("REQUEST_METHOD").as_deref(), Some("GET"));
    assert_eq!(s("PATH_INFO").as_deref(), Some("/environ"));
    assert_validator_quiet(&d.log());
}

#[test]
fn stdin_spans_many_records_with_padding() {
    let d = start();
    let body = noise(300_000, 7);
    let req = Request::post("/echo", &body);
    let mut wire = begin_request(1, RESPONDER, 0);
    wire.extend(stream(PARAMS, 1, &req.params_stream(), 13));
    wire.extend(stream_cut(
        STDIN,
        1,
        &body,
        &[1, 2, 3, 4096, 65535, 17, 30_000, 8],
        5,
    ));
    let mut c = Client::connect(addr(&d));
    c.send(&wire);
    let resp = c.read_response(1);
    assert_clean_end(&resp, 1);
    let cgi = resp.cgi();
    assert_eq!(cgi.status, 200);
    assert!(cgi.body == body, "echoed body differs");
    assert_validator_quiet(&d.log());
}

#[test]
fn keep_conn_serves_100_requests_on_one_connection() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    for i in 0..100u16 {
        let id = 1 + i % 3; // ids are reused once their request ended
        let body = format!("request number {i}");
        let resp = c.request(id, true, &Request::post("/echo", body.as_bytes()));
        assert_clean_end(&resp, id);
        assert_eq!(resp.cgi().body, body.as_bytes(), "request {i}");
    }
    assert!(
        c.still_open(Duration::from_millis(300)),
        "KEEP_CONN connection was closed"
    );
    assert_validator_quiet(&d.log());
}

/// A worker thread reuses the last request's environ keys and short values by position:
/// whatever changes from one request to the next on a connection (values short and long,
/// back to an earlier value, names moved to other positions, names added and gone) must
/// reach the app as sent.
#[test]
fn environ_values_follow_each_request_on_a_kept_connection() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--threads", "1"])
        .start();
    let mut c = Client::connect(addr(&d));
    let long_a = "a".repeat(300);
    let long_b = "b".repeat(300);
    let edge = "e".repeat(128);
    let cases: Vec<Request> = vec![
        Request::get("/environ").set("HTTP_X_V", "one"),
        Request::get("/environ").set("HTTP_X_V", "two"),
        Request::get("/environ").set("HTTP_X_V", "one"),
        Request::get("/environ").set("HTTP_X_V", &long_a),
        Request::get("/environ").set("HTTP_X_V", &long_b),
        Request::get("/environ").set("HTTP_X_V", &edge),
        Request::get("/environ").set("HTTP_X_V", &edge[1..]),
        Request::get("/environ").set("HTTP_X_V", ""),
        // The same names in another order, one gone, one new.
        Request::get("/environ")
            .remove("HTTP_X_V")
            .set("HTTP_X_W", "w")
            .set("HTTP_X_V", "last"),
        Request::get("/environ").set("QUERY_STRING", "q=1"),
    ];
    for (i, req) in cases.iter().enumerate() {
        let resp = c.request(1, true, req);
        assert_clean_end(&resp, 1);
        let env = resp.cgi().json();
        let cgi = &env["cgi"];
        let got = |k: &str| cgi[k].as_str().map(str::to_owned);
        let sent = |k: &str| {
            req.param(k)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        for name in [
            "HTTP_X_V",
            "HTTP_X_W",
            "QUERY_STRING",
            "HTTP_HOST",
            "REQUEST_URI",
        ] {
            assert_eq!(got(name), sent(name), "request {i}, {name}");
        }
    }
    assert_validator_quiet(&d.log());
}

#[test]
fn without_keep_conn_server_closes_after_end_request() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    let resp = c.request(1, false, &Request::get("/close"));
    assert_clean_end(&resp, 1);
    let after = c.expect_closed(20);
    assert!(after.is_empty(), "records after END_REQUEST: {after:?}");
}

#[test]
fn multiplexed_requests_with_interleaved_records() {
    let d = start();
    let ids = [1u16, 2, 0x1234];
    let bodies: Vec<Vec<u8>> = ids
        .iter()
        .map(|&id| noise(5000 + id as usize, id as u64))
        .collect();
    // Request 0 streams slowly, so the others finish while it is still running.
    let reqs = [
        Request::get("/stream?n=5&delay=0.05"),
        Request::post("/echo", &bodies[1]),
        Request::post("/echo", &bodies[2]),
    ];
    let per_request: Vec<Vec<Vec<u8>>> = ids
        .iter()
        .zip(&reqs)
        .map(|(&id, req)| {
            let mut recs = vec![begin_request(id, RESPONDER, KEEP_CONN)];
            for c in req.params_stream().chunks(100) {
                recs.push(record(PARAMS, id, c));
            }
            recs.push(record(PARAMS, id, b""));
            for c in req.body.chunks(1000) {
                recs.push(record(STDIN, id, c));
            }
            recs.push(record(STDIN, id, b""));
            recs
        })
        .collect();
    let mut wire = Vec::new();
    let most = per_request.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..most {
        for recs in &per_request {
            if let Some(r) = recs.get(k) {
                wire.extend_from_slice(r);
            }
        }
    }
    let mut c = Client::connect(addr(&d));
    c.send(&wire);
    // Read in reverse order: the stash must keep the other requests' records.
    let r3 = c.read_response(ids[2]);
    let r2 = c.read_response(ids[1]);
    let r1 = c.read_response(ids[0]);
    for (r, &id) in [&r1, &r2, &r3].iter().zip(&ids) {
        assert_clean_end(r, id);
    }
    assert_eq!(r2.cgi().body, bodies[1]);
    assert_eq!(r3.cgi().body, bodies[2]);
    assert_eq!(
        r1.cgi().text(),
        "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n"
    );
    // The same connection still takes a request.
    let r = c.request(7, true, &Request::get("/close"));
    assert_eq!(r.cgi().body, b"one two");
    assert_validator_quiet(&d.log());
}

#[test]
fn abort_request_during_streaming_calls_close_and_ends_request() {
    let d = start();
    let marker_dir = scratch("abort");
    let marker = marker_dir.join("closed");
    let mut c = Client::connect(addr(&d));
    let uri = format!("/stream?n=2000&delay=0.02&marker={}", marker.display());
    c.send(&Request::get(&uri).encode(1, true));
    // Wait for the response to be under way.
    let first = c.read_record();
    assert_eq!((first.rtype, first.id), (STDOUT, 1));
    assert!(!first.content.is_empty());
    c.send(&abort_request(1));
    let (resp, end) = c.collect(1);
    assert!(end.is_none(), "connection ended instead of END_REQUEST");
    assert_eq!(
        resp.records.last(),
        Some(&end_request_bytes(1, 0, REQUEST_COMPLETE)),
        "END_REQUEST after FCGI_ABORT_REQUEST (FastCGI §5.4)"
    );
    let text = wait_for_file(&marker, 20);
    let sent: usize = text
        .trim_start_matches("closed after ")
        .trim_end_matches(" chunks")
        .parse()
        .unwrap_or_else(|_| panic!("marker text {text:?}"));
    assert!(sent < 2000, "the app ran to completion despite the abort");
    // Everything received is a prefix of the full body.
    let mut all = first.content.clone();
    all.extend_from_slice(&resp.stdout);
    let cgi = CgiResponse::parse(&all);
    let full: String = (0..2000).map(|i| format!("chunk {i}\n")).collect();
    assert!(full.as_bytes().starts_with(&cgi.body));
    // KEEP_CONN: the connection goes on.
    let r = c.request(2, true, &Request::get("/close"));
    assert_eq!(r.cgi().body, b"one two");
    assert_validator_quiet(&d.log());
}

#[test]
fn abort_before_params_complete_ends_request() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    c.send(&begin_request(1, RESPONDER, KEEP_CONN));
    c.send(&record(
        PARAMS,
        1,
        &Request::get("/environ").params_stream()[..40],
    ));
    c.send(&abort_request(1));
    let resp = c.read_response(1);
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)));
    assert!(
        resp.stdout.is_empty(),
        "no output for a request never started"
    );
    let r = c.request(1, true, &Request::get("/close"));
    assert_eq!(r.cgi().body, b"one two");
}

#[test]
fn get_values_reports_configured_limits() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--max-connections", "77", "--max-in-flight", "33"])
        .start();
    let mut c = Client::connect(addr(&d));
    let mut ask = Vec::new();
    for n in [
        &b"FCGI_MAX_CONNS"[..],
        b"FCGI_UNKNOWN_VARIABLE",
        b"FCGI_MAX_REQS",
        b"FCGI_MPXS_CONNS",
    ] {
        ask.extend(name_value(n, b""));
    }
    c.send(&record(GET_VALUES, 0, &ask));
    let r = c.read_record();
    assert_eq!((r.version, r.rtype, r.id), (1, GET_VALUES_RESULT, 0));
    let mut got = decode_pairs(&r.content);
    got.sort();
    let want: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"FCGI_MAX_CONNS".to_vec(), b"77".to_vec()),
        (b"FCGI_MAX_REQS".to_vec(), b"33".to_vec()),
        (b"FCGI_MPXS_CONNS".to_vec(), b"1".to_vec()),
    ];
    assert_eq!(got, want, "GET_VALUES_RESULT (FastCGI §4.1)");
    // A management record does not disturb requests on the same connection.
    let resp = c.request(1, true, &Request::get("/close"));
    assert_eq!(resp.cgi().body, b"one two");
}

#[test]
fn unknown_management_record_type_gets_unknown_type() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    for (t, padding) in [(12u8, 0u8), (42, 5), (255, 0)] {
        c.send(&record_padded(t, 0, b"some content", padding));
        let r = c.read_record();
        assert_eq!(
            (r.version, r.rtype, r.id, r.content.clone()),
            (1, UNKNOWN_TYPE, 0, vec![t, 0, 0, 0, 0, 0, 0, 0]),
            "FCGI_UNKNOWN_TYPE for type {t} (FastCGI §4.2)"
        );
    }
    let resp = c.request(1, true, &Request::get("/close"));
    assert_eq!(resp.cgi().body, b"one two");
}

#[test]
fn output_larger_than_a_record_is_split() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    for (uri, n) in [
        // One 200000-byte block from the app, and many 64 KiB ones.
        ("/bytes?n=200000&chunk=200000&cl=1", 200_000usize),
        ("/bytes?n=300000", 300_000),
    ] {
        let resp = c.request(1, true, &Request::get(uri));
        assert_clean_end(&resp, 1);
        let data: Vec<&Record> = resp
            .stdout_records()
            .into_iter()
            .filter(|r| !r.content.is_empty())
            .collect();
        assert!(
            data.len() >= n.div_ceil(MAX_CONTENT),
            "{uri}: {} STDOUT records for {n} bytes",
            data.len()
        );
        assert!(data.iter().all(|r| r.content.len() <= MAX_CONTENT));
        let cgi = resp.cgi();
        assert!(cgi.body == pattern(n), "{uri}: body differs");
    }
    assert_validator_quiet(&d.log());
}

#[test]
fn get_without_any_stdin_record_is_answered() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    // CONTENT_LENGTH 0 and not even the empty STDIN record (hiawatha#22), the app reads
    // the body; then the next request on the same connection.
    let req = Request::get("/input?mode=readall")
        .set("CONTENT_LENGTH", "0")
        .no_stdin();
    let resp = c.request(1, true, &req);
    assert_clean_end(&resp, 1);
    let j = resp.cgi().json();
    assert_eq!(j["pieces"], serde_json::json!([""]));
    assert_eq!(j["after"], "");
    // CONTENT_LENGTH '' (nginx on GET) and no STDIN, app not reading the body.
    let req = Request::get("/environ")
        .set("CONTENT_LENGTH", "")
        .no_stdin();
    let resp = c.request(2, true, &req);
    assert_eq!(resp.cgi().status, 200);
    // A late empty STDIN for the finished request is ignored; the connection goes on.
    c.send(&record(STDIN, 2, b""));
    let resp = c.request(3, true, &Request::get("/close"));
    assert_eq!(resp.cgi().body, b"one two");
    assert_validator_quiet(&d.log());
}

#[test]
fn unknown_length_body_is_read_to_the_empty_stdin() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    for (id, cl) in [(1u16, Some("")), (2, None)] {
        let mut req = Request::new("POST", "/input?mode=readall").body(b"");
        req = match cl {
            Some(v) => req.set("CONTENT_LENGTH", v),
            None => req.remove("CONTENT_LENGTH"),
        };
        let mut wire = begin_request(id, RESPONDER, KEEP_CONN);
        wire.extend(stream(PARAMS, id, &req.params_stream(), 65535));
        for part in [&b"streamed "[..], b"in ", b"three records"] {
            wire.extend(record(STDIN, id, part));
        }
        wire.extend(record(STDIN, id, b""));
        c.send(&wire);
        let resp = c.read_response(id);
        assert_clean_end(&resp, id);
        let j = resp.cgi().json();
        assert_eq!(
            j["pieces"],
            serde_json::json!(["streamed in three records"]),
            "CONTENT_LENGTH {cl:?}"
        );
        assert_eq!(j["after"], "");
        assert_eq!(j["input_terminated"], true);
        assert_eq!(j["content_length"], serde_json::Value::Null);
    }
    assert_validator_quiet(&d.log());
}

/// Starts a request on its own connection that waits for the rest of its body: a request
/// in flight while something else happens. Finish it with `finish_pending`.
fn start_pending(d: &Daemon) -> Client {
    let mut c = Client::connect(addr(d));
    let req = Request::post("/echo", b"0123456789");
    let mut wire = begin_request(1, RESPONDER, 0);
    wire.extend(stream(PARAMS, 1, &req.params_stream(), 65535));
    wire.extend(record(STDIN, 1, b"01234"));
    c.send(&wire);
    c
}

fn finish_pending(mut c: Client) {
    c.send(&record(STDIN, 1, b"56789"));
    c.send(&record(STDIN, 1, b""));
    let resp = c.read_response(1);
    assert_clean_end(&resp, 1);
    assert_eq!(resp.cgi().body, b"0123456789");
}

#[test]
fn front_end_closing_mid_response_calls_close_and_spares_others() {
    let d = start();
    let pending = start_pending(&d);
    let marker_dir = scratch("close-mid");
    let marker = marker_dir.join("closed");
    let mut c = Client::connect(addr(&d));
    let uri = format!("/stream?n=2000&delay=0.02&marker={}", marker.display());
    c.send(&Request::get(&uri).encode(1, false));
    let first = c.read_record();
    assert_eq!(first.rtype, STDOUT);
    c.close(); // no FCGI_ABORT_REQUEST: the front end just closes (cherokee#84)
    let text = wait_for_file(&marker, 20);
    assert!(text.starts_with("closed after "), "{text}");
    finish_pending(pending);
    assert_eq!(
        request(addr(&d), &Request::get("/close")).cgi().body,
        b"one two"
    );
    assert_validator_quiet(&d.log());
}

#[test]
fn front_end_closing_mid_body_wakes_the_app() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    let req = Request::post("/echo", &[b'z'; 1000]);
    let mut wire = begin_request(1, RESPONDER, 0);
    wire.extend(stream(PARAMS, 1, &req.params_stream(), 65535));
    wire.extend(record(STDIN, 1, &[b'z'; 10]));
    c.send(&wire);
    std::thread::sleep(Duration::from_millis(200)); // let the app block in read()
    c.close();
    // The app's read() fails instead of waiting for ever.
    d.wait_log("echo-read-failed", 20);
    assert_eq!(
        request(addr(&d), &Request::get("/close")).cgi().body,
        b"one two"
    );
}

/// Sends `bad` on a fresh connection while another request is in flight on a second
/// connection: the bad connection is closed with a log line containing `why`, the other
/// request completes, and the worker serves new connections.
fn assert_malformed_closes(bad: &[u8], why: &str) {
    let d = start();
    let pending = start_pending(&d);
    let mut c = Client::connect(addr(&d));
    let _ = c.try_send(bad);
    let got = c.expect_closed(20);
    assert!(
        got.iter()
            .all(|r| r.rtype != STDOUT || r.content.is_empty()),
        "a malformed request produced output: {got:?}"
    );
    let log = d.wait_log(why, 20);
    assert!(
        log.contains("malformed FastCGI input"),
        "no log line about the malformed input:\n{log}"
    );
    finish_pending(pending);
    assert_eq!(
        request(addr(&d), &Request::get("/close")).cgi().body,
        b"one two"
    );
}

#[test]
fn malformed_bad_version_closes_only_that_connection() {
    let mut bad = raw_record(2, BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0], 0);
    bad.extend(stream(
        PARAMS,
        1,
        &Request::get("/close").params_stream(),
        65535,
    ));
    assert_malformed_closes(&bad, "version 2");
}

#[test]
fn malformed_version_0_mid_connection_closes_it() {
    // A good request first, then a record with version 0 (a framing desync).
    let mut bad = begin_request(1, RESPONDER, KEEP_CONN);
    bad.extend(stream(
        PARAMS,
        1,
        &Request::get("/environ").params_stream(),
        65535,
    ));
    bad.extend(raw_record(0, STDIN, 1, b"", 0));
    assert_malformed_closes(&bad, "version 0");
}

#[test]
fn malformed_pair_running_past_the_params_stream_closes_connection() {
    // CVE-2025-23016 style: a value length (65536, 4-byte form) running past the end of
    // the PARAMS stream; only 10 bytes of it follow before the empty PARAMS record.
    let mut params = Request::get("/environ").params_stream();
    params.extend(length_field(7, false));
    params.extend(length_field(65536, true));
    params.extend(b"HTTP_X_0123456789");
    let mut bad = begin_request(1, RESPONDER, 0);
    bad.extend(stream(PARAMS, 1, &params, 65535));
    bad.extend(record(STDIN, 1, b""));
    assert_malformed_closes(&bad, "name-value pair");
}

#[test]
fn malformed_truncated_length_field_closes_connection() {
    // Two bytes of a four-byte length, then the end of the stream.
    let mut params = Request::get("/environ").params_stream();
    params.extend([0x80, 0x00]);
    let mut bad = begin_request(1, RESPONDER, 0);
    bad.extend(stream(PARAMS, 1, &params, 65535));
    bad.extend(record(STDIN, 1, b""));
    assert_malformed_closes(&bad, "name-value pair");
}

#[test]
fn malformed_stdin_before_params_end_closes_connection() {
    let mut bad = begin_request(1, RESPONDER, 0);
    bad.extend(record(PARAMS, 1, &Request::get("/environ").params_stream()));
    bad.extend(record(STDIN, 1, b"body before the params ended"));
    assert_malformed_closes(&bad, "before its FCGI_PARAMS stream ended");
}

#[test]
fn malformed_begin_request_length_closes_connection() {
    let bad = record(BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0]);
    assert_malformed_closes(&bad, "expected 8");
}

#[test]
fn malformed_application_record_type_from_front_end_closes_connection() {
    let mut bad = begin_request(1, RESPONDER, 0);
    bad.extend(record(STDOUT, 1, b"Status: 200 OK\r\n\r\n"));
    assert_malformed_closes(&bad, "only sent by applications");
}

#[test]
fn malformed_second_begin_request_for_active_id_closes_connection() {
    let mut bad = begin_request(1, RESPONDER, KEEP_CONN);
    bad.extend(begin_request(1, RESPONDER, KEEP_CONN));
    assert_malformed_closes(&bad, "already active");
}

#[test]
fn huge_declared_lengths_are_refused_without_waiting_for_them() {
    // Lengths of 2^31-1 (the largest the format can express): refused as soon as they are
    // read, with 431, without buffering or waiting for 4 GiB; the connection goes on.
    let d = start();
    let mut c = Client::connect(addr(&d));
    let mut params = Request::get("/environ").params_stream();
    params.extend(length_field(0x7fff_ffff, true));
    params.extend(length_field(0x7fff_ffff, true));
    params.extend(b"HTTP_X_");
    let mut wire = begin_request(1, RESPONDER, KEEP_CONN);
    wire.extend(record(PARAMS, 1, &params));
    c.send(&wire);
    let resp = c.read_response(1);
    assert_clean_end(&resp, 1);
    assert_eq!(resp.cgi().status, 431);
    d.wait_log("max_params_bytes", 20);
    // The rest of that request's stream is ignored; the connection takes the next one.
    c.send(&record(
        PARAMS,
        1,
        b"garbage that belongs to the refused request",
    ));
    c.send(&record(PARAMS, 1, b""));
    c.send(&record(STDIN, 1, b""));
    let resp = c.request(2, true, &Request::get("/close"));
    assert_eq!(resp.cgi().body, b"one two");
}

#[test]
fn every_record_padded_and_sent_one_byte_at_a_time() {
    let d = start();
    let body = b"padded body".to_vec();
    let req = Request::post("/echo", &body);
    let mut wire = record_padded(BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0], 255);
    wire.extend(stream_cut(PARAMS, 1, &req.params_stream(), &[50], 3));
    // stream_cut's final empty record has no padding: add one that has.
    wire.truncate(wire.len() - 8);
    wire.extend(record_padded(PARAMS, 1, b"", 7));
    wire.extend(record_padded(STDIN, 1, &body, 1));
    wire.extend(record_padded(STDIN, 1, b"", 200));
    let mut c = Client::connect(addr(&d));
    for b in &wire {
        c.send(std::slice::from_ref(b));
    }
    let resp = c.read_response(1);
    assert_clean_end(&resp, 1);
    assert_eq!(resp.cgi().body, body);
    assert_validator_quiet(&d.log());
}

#[test]
fn refused_role_without_keep_conn_closes_the_connection() {
    // FastCGI §5.1: with FCGI_KEEP_CONN zero the application closes the connection after
    // responding to the request, and END_REQUEST{FCGI_UNKNOWN_ROLE} is the response.
    let d = start();
    let mut c = Client::connect(addr(&d));
    c.send(&begin_request(1, FILTER, 0));
    let got = c.expect_closed(20);
    assert_eq!(got, vec![end_request_bytes(1, 0, UNKNOWN_ROLE)]);
}

#[test]
fn abort_of_one_multiplexed_request_spares_the_other() {
    let d = start();
    let marker_dir = scratch("abort-one");
    let marker = marker_dir.join("closed");
    let mut c = Client::connect(addr(&d));
    let slow = format!("/stream?n=2000&delay=0.02&marker={}", marker.display());
    c.send(&Request::get(&slow).encode(1, true));
    c.send(&Request::get("/stream?n=20&delay=0.02").encode(2, true));
    // Both under way.
    let mut seen = [false, false];
    let mut early = Vec::new();
    while !(seen[0] && seen[1]) {
        let Next::Record(r) = c.next() else {
            panic!("connection ended")
        };
        seen[(r.id - 1) as usize] = true;
        early.push(r);
    }
    for r in early {
        c.stash_record(r);
    }
    c.send(&abort_request(1));
    let aborted = c.read_response(1);
    assert_eq!(aborted.end, Some((0, REQUEST_COMPLETE)));
    wait_for_file(&marker, 20);
    let other = c.read_response(2);
    assert_clean_end(&other, 2);
    let want: String = (0..20).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(other.cgi().text(), want);
    assert_validator_quiet(&d.log());
}

#[test]
fn large_responses_to_a_slow_reader_arrive_intact() {
    // Output larger than the per-request buffer, two requests interleaving on one
    // connection, and a reader that starts late: backpressure, not loss or corruption.
    let d = start();
    let mut c = Client::connect(addr(&d));
    c.send(&Request::get("/bytes?n=6000000").encode(1, true));
    c.send(&Request::get("/bytes?n=4000000&chunk=1000000").encode(2, true));
    std::thread::sleep(Duration::from_millis(800));
    let r2 = c.read_response(2);
    let r1 = c.read_response(1);
    assert_clean_end(&r1, 1);
    assert_clean_end(&r2, 2);
    assert!(
        r1.cgi().body == pattern(6_000_000),
        "request 1 body differs"
    );
    assert!(
        r2.cgi().body == pattern(4_000_000),
        "request 2 body differs"
    );
    assert_validator_quiet(&d.log());
}

#[test]
fn malformed_get_values_closes_connection() {
    // A name/value pair that runs past the end of the GET_VALUES record.
    let mut content = name_value(b"FCGI_MAX_CONNS", b"");
    content.extend([0x80, 0, 0, 100, 0]);
    assert_malformed_closes(&record(GET_VALUES, 0, &content), "name-value pair");
}

#[test]
fn request_followed_by_a_half_close_is_still_answered() {
    // Some clients shut down their sending side once the request is out.
    let d = start();
    let mut c = Client::connect(addr(&d));
    c.send(&Request::post("/echo", b"half closed").encode(1, false));
    c.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    let resp = c.read_response(1);
    assert_clean_end(&resp, 1);
    assert_eq!(resp.cgi().body, b"half closed");
    assert!(c.expect_closed(20).is_empty());
}

#[test]
fn early_response_without_reading_the_body_keeps_the_connection_usable() {
    // The app answers a 32 MiB upload without reading it (more than the input buffer and the socket buffers), and
    // the front end goes on sending the body, then a second request on the connection.
    let d = start();
    let mut c = Client::connect(addr(&d));
    let mut w = c.stream.try_clone().expect("clone socket");
    let mut wire = Request::post("/ignore-body?sleep=0.3", &vec![b'u'; 32 << 20]).encode(1, true);
    wire.extend(Request::get("/close").encode(2, true));
    let writer = std::thread::spawn(move || w.write_all(&wire));
    let r1 = c.read_response(1);
    assert_clean_end(&r1, 1);
    assert_eq!(r1.cgi().body, b"body ignored");
    let r2 = c.read_response(2);
    assert_clean_end(&r2, 2);
    assert_eq!(r2.cgi().body, b"one two");
    writer
        .join()
        .expect("writer thread")
        .expect("the front end could not send its whole request");
}

#[test]
fn early_response_without_keep_conn_drains_the_body() {
    // Without KEEP_CONN the server closes after the response; the front end still sending
    // the body must not see a reset (lingering close, uWSGI#614).
    let d = start();
    let mut c = Client::connect(addr(&d));
    let mut w = c.stream.try_clone().expect("clone socket");
    let wire = Request::post("/ignore-body?sleep=0.3", &vec![b'u'; 32 << 20]).encode(1, false);
    let writer = std::thread::spawn(move || w.write_all(&wire));
    let r = c.read_response(1);
    assert_clean_end(&r, 1);
    assert_eq!(r.cgi().body, b"body ignored");
    writer
        .join()
        .expect("writer thread")
        .expect("the front end could not send its whole request");
    assert!(c.expect_closed(20).is_empty());
}

#[test]
fn abort_while_the_app_waits_for_the_body() {
    let d = start();
    let mut c = Client::connect(addr(&d));
    let req = Request::post("/echo", &[b'q'; 1000]);
    let mut wire = begin_request(1, RESPONDER, KEEP_CONN);
    wire.extend(stream(PARAMS, 1, &req.params_stream(), 65535));
    wire.extend(record(STDIN, 1, &[b'q'; 10]));
    c.send(&wire);
    std::thread::sleep(Duration::from_millis(200)); // the app blocks in read()
    c.send(&abort_request(1));
    let resp = c.read_response(1);
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)));
    d.wait_log("echo-read-failed", 20);
    // The rest of the aborted request's body is ignored; the connection goes on.
    c.send(&record(STDIN, 1, &[b'q'; 990]));
    c.send(&record(STDIN, 1, b""));
    let r = c.request(2, true, &Request::get("/close"));
    assert_eq!(r.cgi().body, b"one two");
}

#[test]
fn fifty_multiplexed_requests_with_two_threads() {
    // More requests in flight on one connection than Python threads: they queue.
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--threads", "2"])
        .start();
    let mut c = Client::connect(addr(&d));
    let mut wire = Vec::new();
    for id in 1..=50u16 {
        let body = format!("body of request {id}");
        wire.extend(Request::post("/echo", body.as_bytes()).encode(id, true));
    }
    c.send(&wire);
    for id in (1..=50u16).rev() {
        let r = c.read_response(id);
        assert_clean_end(&r, id);
        assert_eq!(r.cgi().text(), format!("body of request {id}"));
    }
    assert_validator_quiet(&d.log());
}

/// `curl` straight at the FastCGI port: the HTTP client gets a short plain-text HTTP 400
/// saying a web server must be in front, the log says so (not "FastCGI version 71"), and
/// the worker goes on serving FastCGI.
#[test]
fn an_http_client_is_told_to_put_a_web_server_in_front() {
    let d = start();
    let mut s = std::net::TcpStream::connect(addr(&d)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    )
    .unwrap();
    let reply = String::from_utf8(common::read_to_end(&mut s)).unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 400 Bad Request\r\n"),
        "{reply:?}"
    );
    assert!(
        reply.contains("\r\n\r\nThis is a FastCGI port (wsgid), not an HTTP one: a web server must be in front of it"),
        "{reply:?}"
    );
    let log = d.wait_log("an HTTP request arrived on a FastCGI port", 10);
    assert!(!log.contains("version 71"), "{log}");
    let r = request(addr(&d), &Request::get("/close"));
    assert_eq!(r.cgi().status, 200);
}

/// A request multiplexed past `--max-in-flight` on one connection is refused with
/// FCGI_OVERLOADED, and the log says so, as it does for the 503 past the same limit.
#[test]
fn overloaded_refusals_are_logged() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--max-in-flight", "2"])
        .start();
    let mut c = Client::connect(addr(&d));
    // Two requests begun and left waiting for their params; a third is one too many.
    for id in [1, 2, 3] {
        c.send(&begin_request(id, RESPONDER, KEEP_CONN));
    }
    let r = c.read_record();
    assert_eq!(r, end_request_bytes(3, 0, OVERLOADED));
    let log = d.wait_log("FCGI_OVERLOADED", 10);
    assert!(
        log.contains("request refused (FCGI_OVERLOADED): server busy: this connection already holds max_in_flight requests"),
        "{log}"
    );
    assert!(log.contains("max_in_flight=2"), "{log}");
    // A hundred more on the same connection: still one line at warn.
    for _ in 0..100 {
        c.send(&begin_request(3, RESPONDER, KEEP_CONN));
    }
    for _ in 0..100 {
        assert_eq!(c.read_record(), end_request_bytes(3, 0, OVERLOADED));
    }
    let log = d.log();
    assert_eq!(
        log.matches("request refused (FCGI_OVERLOADED)").count(),
        1,
        "{log}"
    );
    // The two it holds are still served.
    for id in [1, 2] {
        c.send(&stream(
            PARAMS,
            id,
            &Request::get("/close").params_stream(),
            1000,
        ));
        c.send(&record(STDIN, id, b""));
    }
    for id in [1, 2] {
        let (resp, _) = c.collect(id);
        assert_eq!(resp.cgi().body, b"one two");
    }
}
