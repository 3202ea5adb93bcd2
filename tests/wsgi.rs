//! PEP 3333 semantics of a running wsgid: the environ, wsgi.input, wsgi.errors,
//! start_response validation and exc_info, write(), header timing, Content-Length,
//! close(), wsgi.file_wrapper and error handling. Apps: fixtures/conformance.py, each
//! wrapped in wsgiref.validate except the deliberately invalid ones.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::fcgi::{self, *};
use common::{scgi, scratch, Daemon};

const APP: &str = "conformance:application";

fn start() -> Daemon {
    Daemon::builder(APP).fastcgi().scgi().start()
}

fn fa(d: &Daemon) -> &str {
    d.fcgi.as_deref().expect("fastcgi address")
}

fn sa(d: &Daemon) -> &str {
    d.scgi.as_deref().expect("scgi address")
}

/// One FastCGI request; its CGI response (END_REQUEST required).
fn get(d: &Daemon, req: &Request) -> CgiResponse {
    fcgi::request(fa(d), req).cgi()
}

fn environ(d: &Daemon, req: &Request) -> Value {
    let r = get(d, req);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().expect("port")
}

#[test]
fn environ_has_every_cgi_variable_as_str_and_the_wsgi_keys() {
    let d = start();
    let req = Request::get("/environ/caf\u{e9}?a=1&b=%20")
        .set_bytes(b"DOCUMENT_URI", b"/environ/caf\xe9")
        .set_bytes(b"REQUEST_URI", b"/environ/caf%C3%A9?a=1&b=%20")
        .add_bytes(b"HTTP_X_LATIN", b"caf\xe9 \xff")
        .add("HTTP_USER_AGENT", "wsgid-tests/1.0")
        .add("CUSTOM_VAR", "from the front end");
    for (proto, env) in [
        ("fastcgi", environ(&d, &req)),
        ("scgi", scgi::request(sa(&d), &req).json()),
    ] {
        let cgi = &env["cgi"];
        assert_eq!(env["nonstr"], json!({}), "{proto}: non-str CGI values");
        // Bytes >= 0x80 arrive as the latin-1 code points (PEP 3333 "Unicode Issues").
        assert_eq!(cgi["HTTP_X_LATIN"], "caf\u{e9} \u{ff}", "{proto}");
        assert_eq!(cgi["PATH_INFO"], "/environ/caf\u{e9}", "{proto}");
        assert_eq!(cgi["SCRIPT_NAME"], "", "{proto}");
        for (k, v) in [
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", "a=1&b=%20"),
            ("REQUEST_URI", "/environ/caf%C3%A9?a=1&b=%20"),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "8080"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", "40000"),
            ("HTTP_HOST", "example.test"),
            ("HTTP_USER_AGENT", "wsgid-tests/1.0"),
            ("CUSTOM_VAR", "from the front end"),
        ] {
            assert_eq!(cgi[k], v, "{proto}: {k}");
        }
        let w = &env["wsgi"];
        assert_eq!(w["version"], json!([1, 0]), "{proto}");
        assert_eq!(w["url_scheme"], "http", "{proto}");
        assert_eq!(w["run_once"], false, "{proto}");
        // Defaults: 8 threads, 1 process.
        assert_eq!(w["multithread"], true, "{proto}");
        assert_eq!(w["multiprocess"], false, "{proto}");
        assert_eq!(w["input_terminated"], true, "{proto}");
        assert_eq!(w["has_file_wrapper"], true, "{proto}");
    }
    assert_validator_quiet(&d.log());
}

#[test]
fn url_scheme_is_https_when_https_is_on() {
    let d = start();
    let plain = environ(&d, &Request::get("/environ"));
    assert_eq!(plain["wsgi"]["url_scheme"], "http");
    let tls = environ(&d, &Request::get("/environ").set("HTTPS", "on"));
    assert_eq!(tls["wsgi"]["url_scheme"], "https");
    assert_eq!(tls["cgi"]["HTTPS"], "on");
    let scgi_tls = scgi::request(sa(&d), &Request::get("/environ").set("HTTPS", "on")).json();
    assert_eq!(scgi_tls["wsgi"]["url_scheme"], "https");
}

/// What nginx, Apache (mod_ssl) and lighttpd send for a request they took over TLS:
/// wsgi.url_scheme is https, SERVER_PORT and HTTP_HOST stay theirs, so the URL the app
/// rebuilds (wsgiref.util.request_uri) is the one the client asked for. Over both
/// protocols.
#[test]
fn tls_terminated_at_the_front_end_gives_https_urls() {
    let d = start();
    let tls = |req: Request| {
        req.set("SERVER_NAME", "example.test")
            .set("SERVER_PORT", "443")
            .set("HTTP_HOST", "example.test")
    };
    let cases = [
        // nginx: `HTTPS $https if_not_empty` and `REQUEST_SCHEME $scheme`.
        (
            "nginx",
            tls(Request::get("/environ/x?q=1"))
                .set("REQUEST_SCHEME", "https")
                .set("HTTPS", "on"),
            "https://example.test/environ/x?q=1",
        ),
        // Apache with mod_ssl: HTTPS=on, REQUEST_SCHEME from the core; a non-default
        // port in the Host header as the client sent it.
        (
            "apache",
            tls(Request::get("/environ/x"))
                .set("REQUEST_SCHEME", "https")
                .set("HTTPS", "on")
                .set("SERVER_PORT", "8443")
                .set("HTTP_HOST", "example.test:8443"),
            "https://example.test:8443/environ/x",
        ),
        // Only one of the two, in either spelling.
        (
            "HTTPS only",
            tls(Request::get("/environ/x"))
                .remove("REQUEST_SCHEME")
                .set("HTTPS", "ON"),
            "https://example.test/environ/x",
        ),
        (
            "REQUEST_SCHEME only",
            tls(Request::get("/environ/x")).set("REQUEST_SCHEME", "https"),
            "https://example.test/environ/x",
        ),
        // Without Host, the URL is built from SERVER_NAME and SERVER_PORT.
        (
            "no Host",
            tls(Request::get("/environ/x"))
                .set("REQUEST_SCHEME", "https")
                .set("HTTPS", "on")
                .remove("HTTP_HOST"),
            "https://example.test/environ/x",
        ),
        (
            "plain",
            Request::get("/environ/x").set("SERVER_PORT", "80"),
            "http://example.test/environ/x",
        ),
    ];
    for (front_end, req, url) in cases {
        for (proto, env) in [
            ("fastcgi", environ(&d, &req)),
            ("scgi", scgi::request(sa(&d), &req).json()),
        ] {
            assert_eq!(env["url"], url, "{front_end} over {proto}");
            let scheme = url.split(':').next().unwrap_or_default();
            assert_eq!(
                env["wsgi"]["url_scheme"], scheme,
                "{front_end} over {proto}"
            );
            let sent_port = req
                .params
                .iter()
                .find(|(n, _)| n == b"SERVER_PORT")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
            assert_eq!(
                env["cgi"]["SERVER_PORT"].as_str(),
                sent_port.as_deref(),
                "{front_end} over {proto}"
            );
        }
    }
    assert_validator_quiet(&d.log());
}

#[test]
fn multithread_and_multiprocess_follow_threads_and_processes() {
    for (threads, processes, mt, mp) in [("1", "1", false, false), ("4", "2", true, true)] {
        let d = Daemon::builder(APP)
            .fastcgi()
            .args(&["--threads", threads, "--processes", processes])
            .start();
        let env = environ(&d, &Request::get("/environ"));
        assert_eq!(
            (
                env["wsgi"]["multithread"].clone(),
                env["wsgi"]["multiprocess"].clone()
            ),
            (json!(mt), json!(mp)),
            "--threads {threads} --processes {processes}"
        );
        assert_eq!(env["wsgi"]["run_once"], false);
    }
}

#[test]
fn server_name_falls_back_to_host_then_local_address() {
    let d = start();
    // Empty SERVER_NAME/SERVER_PORT (nginx without server_name): the Host header.
    let env = environ(
        &d,
        &Request::get("/environ")
            .set("SERVER_NAME", "")
            .set("SERVER_PORT", "")
            .set("HTTP_HOST", "h.example:8443"),
    );
    assert_eq!(env["cgi"]["SERVER_NAME"], "h.example");
    assert_eq!(env["cgi"]["SERVER_PORT"], "8443");
    // No SERVER_NAME and no Host: the address wsgid listens on.
    let env = environ(
        &d,
        &Request::get("/environ")
            .remove("SERVER_NAME")
            .remove("SERVER_PORT")
            .remove("HTTP_HOST"),
    );
    assert_eq!(env["cgi"]["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["cgi"]["SERVER_PORT"], port_of(fa(&d)));
    // Over SCGI the local address is the SCGI listener's.
    let env = scgi::request(
        sa(&d),
        &Request::get("/environ")
            .remove("SERVER_NAME")
            .remove("SERVER_PORT")
            .remove("HTTP_HOST"),
    )
    .json();
    assert_eq!(env["cgi"]["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["cgi"]["SERVER_PORT"], port_of(sa(&d)));
    assert_validator_quiet(&d.log());
}

#[test]
fn repeated_headers_are_joined() {
    let d = start();
    let req = Request::get("/environ")
        .add("HTTP_COOKIE", "a=1")
        .add("HTTP_ACCEPT", "text/html")
        .add("HTTP_COOKIE", "b=2")
        .add("HTTP_ACCEPT", "application/json")
        .add("HTTP_COOKIE", "c=3");
    for env in [environ(&d, &req), scgi::request(sa(&d), &req).json()] {
        assert_eq!(env["cgi"]["HTTP_COOKIE"], "a=1; b=2; c=3");
        assert_eq!(env["cgi"]["HTTP_ACCEPT"], "text/html, application/json");
    }
}

#[test]
fn http_content_type_content_length_and_proxy_are_dropped() {
    let d = start();
    let req = Request::post("/environ", b"")
        .set("CONTENT_TYPE", "text/x-real")
        .add("HTTP_CONTENT_TYPE", "text/x-header")
        .add("HTTP_CONTENT_LENGTH", "0")
        .add("HTTP_PROXY", "http://evil.example:3128");
    let env = environ(&d, &req);
    let cgi = env["cgi"].as_object().expect("cgi object");
    for k in ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_PROXY"] {
        assert!(!cgi.contains_key(k), "{k} must not reach the app");
    }
    assert_eq!(cgi["CONTENT_TYPE"], "text/x-real");
    assert_eq!(cgi["CONTENT_LENGTH"], "0");
    assert_validator_quiet(&d.log());
}

/// A request outside `--mount` is not a silent 404: at debug level the log names the
/// request and the mount point.
#[test]
fn a_request_outside_the_mount_is_logged_at_debug() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--mount", "/app", "--log-level", "debug"])
        .start();
    let r = get(&d, &Request::get("/other/x?q=1"));
    assert_eq!(r.status, 404);
    let log = d.wait_log("outside the mount point", 10);
    let line = log
        .lines()
        .find(|l| l.contains("outside the mount point"))
        .expect("the line waited for");
    assert!(line.contains(" DEBUG "), "{line}");
    assert!(line.contains("mount=/app"), "{line}");
    assert!(line.contains("GET /other/x?q=1"), "{line}");
}

#[test]
fn mount_splits_script_name_and_path_info() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .args(&["--mount", "/app"])
        .start();
    let env = environ(&d, &Request::get("/app/x?q=1"));
    assert_eq!(
        (&env["cgi"]["SCRIPT_NAME"], &env["cgi"]["PATH_INFO"]),
        (&json!("/app"), &json!("/x"))
    );
    let env = environ(&d, &Request::get("/app"));
    assert_eq!(
        (&env["cgi"]["SCRIPT_NAME"], &env["cgi"]["PATH_INFO"]),
        (&json!("/app"), &json!(""))
    );
    // Outside the mount point: wsgid answers 404 itself.
    for uri in ["/appx", "/appx/y", "/", "/other/app/x"] {
        let r = get(&d, &Request::get(uri));
        assert_eq!((r.status, r.text().as_str()), (404, "Not Found\n"), "{uri}");
        let r = scgi::request(sa(&d), &Request::get(uri));
        assert_eq!(r.status, 404, "scgi {uri}");
    }
    // A client header cannot move the application's root.
    let spoof = Request::get("/app/x")
        .add("HTTP_SCRIPT_NAME", "/evil")
        .add("HTTP_X_FORWARDED_PREFIX", "/evil")
        .add("HTTP_X_SCRIPT_NAME", "/evil");
    for env in [environ(&d, &spoof), scgi::request(sa(&d), &spoof).json()] {
        assert_eq!(env["cgi"]["SCRIPT_NAME"], "/app");
        assert_eq!(env["cgi"]["PATH_INFO"], "/x");
        assert_eq!(env["cgi"]["HTTP_SCRIPT_NAME"], "/evil");
    }
    assert_validator_quiet(&d.log());
}

#[test]
fn unsafe_request_paths_are_400_logged_and_never_reach_the_app() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .args(&["--mount", "/app"])
        .start();
    let dir = scratch("unsafe-paths");
    let seen = |name: &str| dir.join(name);
    // The params of a request for `uri` marked with `?seen=`, the front end's path params
    // then replaced by `edit`.
    let marked = |name: &str, path: &str, edit: &dyn Fn(Request) -> Request| {
        edit(Request::get(&format!(
            "{path}?seen={}",
            seen(name).display()
        )))
    };
    let no_path_params = |r: Request| r.remove("DOCUMENT_URI");
    let dot = "dot segment in the request path";
    type Case<'a> = (&'a str, &'a str, &'a str, &'a dyn Fn(Request) -> Request);
    let cases: [Case<'_>; 6] = [
        // nginx-style DOCUMENT_URI, as a front end that does not normalise would send it.
        ("doc", "/app/../etc/passwd", dot, &|r| r),
        // Apache/lighttpd-style SCRIPT_NAME + PATH_INFO.
        ("split", "/app/x", dot, &|r: Request| {
            no_path_params(r)
                .set("SCRIPT_NAME", "/app/..")
                .set("PATH_INFO", "/x")
        }),
        // REQUEST_URI alone, decoded by wsgid: `%2e%2e` is "..".
        ("uri", "/app/%2e%2e/x", dot, &no_path_params),
        // A trailing "/..".
        ("trailing", "/app/x/..", dot, &|r| r),
        // NUL decoded from REQUEST_URI.
        (
            "nul-uri",
            "/app/x%00.py",
            "NUL in the request path",
            &no_path_params,
        ),
        // NUL sent as such (FastCGI only: SCGI uses NUL as its separator).
        (
            "nul-name",
            "/app/x",
            "NUL in a param name",
            &|r: Request| r.add_bytes(b"HTTP_X\0A", b"v"),
        ),
    ];
    for (name, path, why, edit) in cases {
        let fcgi_name = format!("{name}-fcgi");
        let r = get(&d, &marked(&fcgi_name, path, edit));
        assert_eq!(
            (r.status_line.as_str(), r.text().as_str()),
            ("400 Bad Request", why),
            "fastcgi {name}"
        );
        // The app writes the marker before it answers, and wsgid answered without it.
        assert!(!seen(&fcgi_name).exists(), "fastcgi {name} reached the app");
        if name != "nul-name" {
            let scgi_name = format!("{name}-scgi");
            let r = scgi::request(sa(&d), &marked(&scgi_name, path, edit));
            assert_eq!(r.status_line, "400 Bad Request", "scgi {name}");
            assert!(!seen(&scgi_name).exists(), "scgi {name} reached the app");
        }
    }
    d.wait_log(&format!("bad request: {dot}"), 20);
    d.wait_log("bad request: NUL in the request path", 20);
    d.wait_log("bad request: NUL in a param name", 20);
    // The refusal names its request, with control characters escaped: a newline in the
    // request line cannot start a forged log line.
    let forged = Request::get("/app/../x").set("REQUEST_URI", "/app/../x\nFORGED wsgid line");
    assert_eq!(get(&d, &forged).status, 400);
    let log = d.wait_log("GET /app/../x\\nFORGED wsgid line (fcgi 1)", 20);
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a request line forged a log line:\n{log}"
    );
    // The same requests with clean paths do reach the app (the marker works), and so do
    // empty segments and names that only contain dots.
    for (name, path, path_info) in [
        ("ok", "/app/x", "/x"),
        ("ok-slashes", "/app//x//", "//x//"),
        (
            "ok-dots",
            "/app/.../.well-known/a..b",
            "/.../.well-known/a..b",
        ),
    ] {
        let r = get(&d, &marked(name, path, &|r| r));
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(wait_for_file(&seen(name), 20), path_info, "{name}");
    }
    assert_validator_quiet(&d.log());
}

const TEXT_BODY: &[u8] = b"line one\nline two is longer\n\nlast line without newline";

fn lines(b: &[u8]) -> Vec<String> {
    b.split_inclusive(|&c| c == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// The app's report for /input?mode=...: (pieces, after).
fn read_input(d: &Daemon, query: &str, req: Request) -> (Vec<String>, String) {
    let mut r = req;
    r.params
        .retain(|(n, _)| n != b"REQUEST_URI" && n != b"QUERY_STRING");
    let r = r
        .set("REQUEST_URI", &format!("/input?{query}"))
        .set("QUERY_STRING", query);
    let j = get(d, &r).json();
    let pieces = j["pieces"]
        .as_array()
        .expect("pieces")
        .iter()
        .map(|p| p.as_str().expect("str piece").to_string())
        .collect();
    (pieces, j["after"].as_str().expect("after").to_string())
}

/// Reads of many sizes over a body in several STDIN records (65,535 bytes each, as the
/// test client sends them): each read gathers the pieces of records it spans, and may end
/// inside a record, whose rest the next read starts with.
#[test]
fn wsgi_input_reads_across_records() {
    let d = start();
    let body: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i * 7 % 26) as u8).collect();
    let text = String::from_utf8(body.clone()).expect("ASCII body");
    for n in [1000, 50_000, 65_535, 65_536, 100_000, 300_000] {
        let query = format!("mode=read&n={n}");
        let (pieces, after) = read_input(&d, &query, Request::post("/input", &body));
        let want: Vec<String> = text
            .as_bytes()
            .chunks(n)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        assert_eq!(pieces.len(), want.len(), "{query}: number of reads");
        assert!(
            pieces == want,
            "{query}: the reads do not give the body back in order"
        );
        assert_eq!(after, "", "{query}: read after the end");
    }
    let (pieces, _) = read_input(&d, "mode=readall", Request::post("/input", &body));
    assert!(pieces == vec![text], "readall over three records");
    assert_validator_quiet(&d.log());
}

#[test]
fn wsgi_input_methods() {
    let d = start();
    let post = || Request::post("/input", TEXT_BODY);
    let text = String::from_utf8_lossy(TEXT_BODY).into_owned();
    let by = |n: usize| -> Vec<String> {
        TEXT_BODY
            .chunks(n)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    };
    let all_lines = lines(TEXT_BODY);
    let limited: Vec<String> = all_lines
        .iter()
        .flat_map(|l| {
            l.as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("mode=read&n=5", by(5)),
        ("mode=read&n=1", by(1)),
        ("mode=read&n=100000", vec![text.clone()]),
        ("mode=readall", vec![text.clone()]),
        ("mode=readnone", vec![text.clone()]),
        ("mode=readline", all_lines.clone()),
        ("mode=readline_limit&limit=4", limited),
        ("mode=readlines", all_lines.clone()),
        (
            // Lines until their total reaches the hint (9 < 10, then 9 + 19 >= 10).
            "mode=readlines_hint&hint=10",
            vec![
                "line one\n|line two is longer\n".into(),
                "\nlast line without newline".into(),
            ],
        ),
        ("mode=iter", all_lines),
    ];
    for (query, want) in cases {
        let (pieces, after) = read_input(&d, query, post());
        assert_eq!(pieces, want, "{query}");
        assert_eq!(after, "", "{query}: read after the end");
    }
    assert_validator_quiet(&d.log());
}

#[test]
fn wsgi_input_never_reads_past_content_length() {
    let d = start();
    // FastCGI: CONTENT_LENGTH 10, STDIN carries 26 bytes.
    let req = Request::post("/input", b"0123456789abcdefghijklmnop").set("CONTENT_LENGTH", "10");
    for query in [
        "mode=readall",
        "mode=readline",
        "mode=read&n=3",
        "mode=iter",
    ] {
        let (pieces, after) = read_input(&d, query, req.clone());
        assert_eq!(pieces.concat(), "0123456789", "{query}");
        assert_eq!(after, "", "{query}");
    }
    // SCGI: bytes after the body are not part of it.
    let mut wire = scgi::encode(
        &Request::post("/input?mode=readall", b"0123456789").set("QUERY_STRING", "mode=readall"),
    );
    wire.extend_from_slice(b"EXTRA BYTES AFTER THE BODY");
    let j = scgi::raw_request(sa(&d), &wire).json();
    assert_eq!(j["pieces"], json!(["0123456789"]));
    assert_eq!(j["after"], "");
    assert_validator_quiet(&d.log());
}

#[test]
fn readline_round_trip_of_1001_lines() {
    // uWSGI t/core/readline: every line sent comes back.
    let d = start();
    let body: Vec<u8> = (0..1001)
        .flat_map(|i| format!("line {i} {}\n", "x".repeat(i % 97)).into_bytes())
        .collect();
    let req = Request::post("/readline", &body);
    let mut wire = begin_request(1, RESPONDER, 0);
    wire.extend(stream(PARAMS, 1, &req.params_stream(), 65535));
    wire.extend(stream(STDIN, 1, &body, 1000)); // records cut mid-line
    let mut c = Client::connect(fa(&d));
    c.send(&wire);
    let r = c.read_response(1).cgi();
    assert!(r.body == body, "FastCGI readline round trip differs");
    let r = scgi::request(sa(&d), &req);
    assert!(r.body == body, "SCGI readline round trip differs");
    assert_validator_quiet(&d.log());
}

#[test]
fn upload_of_20_mib_is_streamed_to_the_app() {
    let d = start();
    let body = noise(20 << 20, 2026);
    let want = format!("{} {}", sha256_hex(&body), body.len());
    let r = get(&d, &Request::post("/sha256", &body));
    assert_eq!(r.text(), want, "FastCGI");
    let r = scgi::request(sa(&d), &Request::post("/sha256", &body));
    assert_eq!(r.text(), want, "SCGI");
    assert_validator_quiet(&d.log());
}

#[test]
fn a_response_streamed_while_the_body_arrives_does_not_stop_the_body() {
    // The app sends 8 MiB before it reads the body; the front end reads the first record
    // of it and then nothing until it has sent the whole body. The response fills every
    // output buffer, and the body must still flow, into the input buffer that can hold it.
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--input-buffer", "16M"])
        .start();
    let (first, body) = (8 << 20, noise(8 << 20, 7));
    let mut c = Client::connect_small(fa(&d), 64 << 10);
    let wire = Request::post(&format!("/echo-stream?first={first}"), &body).encode(1, false);
    let (head, rest) = wire.split_at(wire.len() - body.len() + 65536);
    c.send(head);
    let r1 = c.read_record();
    assert_eq!(r1.rtype, STDOUT);
    std::thread::sleep(Duration::from_millis(300)); // the output buffers fill
    c.send(rest);
    let mut raw = r1.content.clone();
    raw.extend(c.read_response(1).stdout);
    let r = CgiResponse::parse(&raw);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len(), first + body.len());
    assert!(
        r.body[..first].iter().all(|&b| b == 0),
        "the first part differs"
    );
    assert!(r.body[first..] == body, "the echoed body differs");
}

/// The log's lines from the one holding the start of the wsgi.errors record that ends
/// with `named` (its request) to that end, asserting the request is named once: one record.
fn errors_record<'l>(log: &'l str, named: &str, first_line: &str) -> Vec<&'l str> {
    assert_eq!(
        log.matches(named).count(),
        1,
        "{named:?} should end exactly one record:\n{log}"
    );
    let lines: Vec<&str> = log.lines().collect();
    let last = lines
        .iter()
        .position(|l| l.ends_with(&format!(" request={named}")))
        .unwrap_or_else(|| panic!("no line ends with the request {named:?}:\n{log}"));
    let head = format!(" wsgi.errors: {first_line}");
    let first = lines[..=last]
        .iter()
        .rposition(|l| l.ends_with(&head) || l.contains(&format!("{head} request=")))
        .unwrap_or_else(|| panic!("no record starts with {head:?}:\n{log}"));
    let record = lines[first..=last].to_vec();
    // No other record inside: the lines after the first carry no log prefix.
    for l in &record[1..] {
        assert!(
            !l.contains(" WARN "),
            "another record inside {named:?}: {l}\n{log}"
        );
    }
    record
}

#[test]
fn wsgi_errors_give_one_log_record_per_flush_with_their_request() {
    let d = start();
    let r = get(&d, &Request::get("/errors?tag=Tq7"));
    assert_eq!(r.body, b"logged");
    let s = scgi::request(sa(&d), &Request::get("/errors?tag=Sc9"));
    assert_eq!(s.body, b"logged");
    // The request named as "METHOD REQUEST_URI (protocol)", once at the end of each record.
    for (tag, named) in [
        ("Tq7", "GET /errors?tag=Tq7 (fcgi 1)"),
        ("Sc9", "GET /errors?tag=Sc9 (scgi)"),
    ] {
        let log = d.wait_log(&format!("errors-probe-3 {tag}"), 20);
        assert_eq!(log.matches(named).count(), 2, "two flushes:\n{log}");
        let lines: Vec<&str> = log.lines().collect();
        let one = format!(" wsgi.errors: errors-probe-1 {tag} request={named}");
        assert!(
            lines.iter().any(|l| l.ends_with(&one)),
            "the first flush is not a record of its own:\n{log}"
        );
        // The second flush: a write and a writelines, one record of two lines.
        let two = &log[log.find(&format!("errors-probe-2 {tag}")).unwrap_or(0)..];
        let two: Vec<&str> = two.lines().take(2).collect();
        assert_eq!(
            two,
            [
                format!("errors-probe-2 {tag}"),
                format!("errors-probe-3 {tag} request={named}"),
            ],
            "{log}"
        );
    }
    // Not on the wire.
    assert!(!String::from_utf8_lossy(&r.head).contains("errors-probe"));
}

#[test]
fn a_traceback_written_to_wsgi_errors_is_one_log_record() {
    let d = start();
    for (how, tag, proto) in [
        ("print_exc", "Pe1", "fcgi 1"),
        ("logging", "Lg2", "fcgi 1"),
        ("print_exc", "Ps3", "scgi"),
        // The app keeps the stream: what it never flushed is logged as the request ends.
        ("print_exc&keep=1", "Kp4", "fcgi 1"),
    ] {
        let uri = format!("/traceback?how={how}&tag={tag}");
        let body = match proto {
            "scgi" => scgi::request(sa(&d), &Request::get(&uri)).body,
            _ => get(&d, &Request::get(&uri)).body,
        };
        assert_eq!(body, b"logged", "{how} {proto}");
        let named = format!("GET {uri} ({proto})");
        let end = format!("ValueError: traceback-probe {tag} request={named}");
        let log = d.wait_log(&end, 20);
        let first = match how {
            "logging" => format!("logged-probe {tag}"),
            _ => "Traceback (most recent call last):".to_owned(),
        };
        let record = errors_record(&log, &named, &first);
        let text = record[1..].join("\n");
        if how == "logging" {
            assert!(
                text.starts_with("Traceback (most recent call last):\n"),
                "{text}"
            );
        }
        assert!(text.contains(", in traceback_app\n"), "{text}");
        assert!(text.ends_with(&end), "{text}");
    }
}

#[test]
fn invalid_start_response_arguments_give_500_and_never_reach_the_wire() {
    let d = start();
    let routes = [
        (
            "/raw/status-without-reason",
            "ValueError: status must be a 3-digit code",
        ),
        (
            "/raw/status-not-a-number",
            "ValueError: status must be a 3-digit code",
        ),
        (
            "/raw/crlf-in-value",
            "ValueError: header value contains a control character",
        ),
        (
            "/raw/lf-in-value",
            "ValueError: header value contains a control character",
        ),
        (
            "/raw/non-latin1-value",
            "ValueError: header value must be latin-1",
        ),
        (
            "/raw/headers-not-a-list",
            "TypeError: response_headers must be a list",
        ),
        (
            "/raw/header-not-a-tuple",
            "TypeError: each header must be a (name, value) tuple",
        ),
        (
            "/raw/header-value-bytes",
            "TypeError: header value must be a str",
        ),
        ("/raw/bad-header-name", "invalid header name"),
        ("/raw/bad-content-length", "Content-Length must be a number"),
        (
            "/raw/start-response-twice",
            "start_response called a second time",
        ),
        ("/raw/yields-str", "where bytes are required"),
        ("/raw/no-start-response", "without calling start_response"),
    ];
    let mut errors = 0;
    for (uri, why) in routes {
        for (proto, raw) in [
            ("fastcgi", fcgi::request(fa(&d), &Request::get(uri)).stdout),
            (
                "scgi",
                scgi::exchange(sa(&d), &scgi::encode(&Request::get(uri))),
            ),
        ] {
            let r = CgiResponse::parse(&raw);
            assert_eq!(r.status, 500, "{proto} {uri}");
            assert_eq!(r.body, b"Internal Server Error\n", "{proto} {uri}");
            let wire = String::from_utf8_lossy(&raw);
            for bad in [
                "Injected",
                "X-Evil",
                "X-Snow",
                "snow",
                "X Bad",
                "Content-Length: ten",
                "must never be sent",
            ] {
                assert!(!wire.contains(bad), "{proto} {uri}: {bad:?} on the wire");
            }
            assert!(!raw.windows(3).any(|w| w == "\u{2603}".as_bytes()));
        }
        // One error line per request (FastCGI and SCGI), naming what was wrong.
        errors += 2;
        let log = d.wait_log(why, 20);
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while d.log().matches("ERROR").count() < errors && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(d.log().matches("ERROR").count(), errors, "{uri}:\n{log}");
    }
    // The worker still serves.
    assert_eq!(get(&d, &Request::get("/close")).body, b"one two");
}

#[test]
fn exc_info_before_headers_replaces_the_response() {
    let d = start();
    let r = get(&d, &Request::get("/exc-before"));
    assert_eq!(r.status_line, "503 Service Unavailable");
    let replaced: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "X-Replaced")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(replaced, ["yes"]);
    assert_eq!(r.body, b"replaced");
    assert_validator_quiet(&d.log());
}

#[test]
fn exc_info_after_headers_reraises_and_cuts_the_response_off() {
    let d = start();
    let marker_dir = scratch("exc-after");
    let marker = marker_dir.join("closed");
    let uri = format!("/exc-after?marker={}", marker.display());
    // FastCGI, alone on its connection: the stream stops after the first chunk and the
    // connection closes without END_REQUEST, so the front end sees a broken response.
    let mut c = Client::connect(fa(&d));
    c.send(&Request::get(&uri).encode(1, true));
    let (resp, end) = c.collect(1);
    assert!(
        matches!(end, Some(Next::Closed)),
        "expected the connection closed, got {end:?} after {resp:?}"
    );
    assert_eq!(resp.end, None, "a cut-off response must not end cleanly");
    let head_and_body = String::from_utf8_lossy(&resp.stdout).into_owned();
    assert_eq!(
        head_and_body,
        "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst\n"
    );
    // The server re-raised the app's own exception (PEP 3333), and close() ran.
    d.wait_log("exc-after reraised-same=True", 20);
    assert_eq!(wait_for_file(&marker, 20), "closed");
    d.wait_log("original-after-headers", 20);

    // Multiplexed with a request still running: only this request ends, with
    // END_REQUEST{appStatus 1}; the other one completes normally.
    let mut c = Client::connect(fa(&d));
    c.send(&Request::get("/stream?n=2000&delay=0.02").encode(1, true));
    let _ = c.read_record();
    c.send(&Request::get("/exc-after").encode(2, true));
    let broken = c.read_response(2);
    assert_eq!(broken.end, Some((1, REQUEST_COMPLETE)));
    assert_eq!(
        String::from_utf8_lossy(&broken.stdout),
        "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst\n"
    );
    // The other request was not disturbed: it is still streaming (end it with an abort).
    let next = c.read_record();
    assert_eq!((next.rtype, next.id), (STDOUT, 1));
    c.send(&abort_request(1));
    let ok = c.read_response(1);
    assert_eq!(ok.end, Some((0, REQUEST_COMPLETE)));

    // SCGI: the connection closes after the first chunk.
    let raw = scgi::exchange(sa(&d), &scgi::encode(&Request::get("/exc-after")));
    assert_eq!(
        String::from_utf8_lossy(&raw),
        "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst\n"
    );
    assert_validator_quiet(&d.log());
}

#[test]
fn write_callable_and_iterable_keep_their_order() {
    let d = start();
    assert_eq!(get(&d, &Request::get("/write")).body, b"ABCDE");
    assert_eq!(
        scgi::request(sa(&d), &Request::get("/write")).body,
        b"ABCDE"
    );
    assert_validator_quiet(&d.log());
}

#[test]
fn headers_wait_for_the_first_non_empty_chunk() {
    let d = start();
    for raw in [
        fcgi::request(fa(&d), &Request::get("/empty-then-raise")).stdout,
        scgi::exchange(sa(&d), &scgi::encode(&Request::get("/empty-then-raise"))),
    ] {
        let r = CgiResponse::parse(&raw);
        assert_eq!(r.status_line, "500 Internal Server Error");
        assert_eq!(r.body, b"Internal Server Error\n");
        assert!(!String::from_utf8_lossy(&raw).contains("200 OK"));
    }
    d.wait_log("BoomAfterEmptyChunk", 20);
    assert_validator_quiet(&d.log());
}

#[test]
fn content_length_declared_by_the_app_is_honoured() {
    let d = start();
    let resp = fcgi::request(fa(&d), &Request::get("/cl5"));
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)));
    let r = resp.cgi();
    assert_eq!(r.header("Content-Length"), Some("5"));
    assert_eq!(r.body, b"01234");
    let r = scgi::request(sa(&d), &Request::get("/cl5"));
    assert_eq!(r.body, b"01234");
    d.wait_log("more than its Content-Length", 20);
    assert_validator_quiet(&d.log());
}

#[test]
fn close_is_called_after_a_successful_response() {
    let d = start();
    let dir = scratch("close-ok");
    for (proto, m) in [("fastcgi", dir.join("f")), ("scgi", dir.join("s"))] {
        let req = Request::get(&format!("/close?marker={}", m.display()));
        let body = match proto {
            "fastcgi" => get(&d, &req).body,
            _ => scgi::request(sa(&d), &req).body,
        };
        assert_eq!(body, b"one two");
        assert_eq!(wait_for_file(&m, 20), "closed after 2 chunks", "{proto}");
    }
    assert_validator_quiet(&d.log());
}

#[test]
fn close_is_called_when_the_app_fails_mid_iteration() {
    let d = start();
    let marker_dir = scratch("raise-mid");
    let marker = marker_dir.join("closed");
    let mut c = Client::connect(fa(&d));
    c.send(&Request::get(&format!("/raise-mid?marker={}", marker.display())).encode(1, true));
    let (resp, end) = c.collect(1);
    assert!(matches!(end, Some(Next::Closed)), "{end:?}");
    assert_eq!(resp.end, None);
    assert_eq!(
        String::from_utf8_lossy(&resp.stdout),
        "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part\n"
    );
    assert_eq!(wait_for_file(&marker, 20), "closed after 1 chunks");
    d.wait_log("BoomMidIteration", 20);
    assert_eq!(get(&d, &Request::get("/close")).body, b"one two");
    assert_validator_quiet(&d.log());
}

#[test]
fn close_is_called_when_an_scgi_client_goes_away() {
    let d = start();
    let marker_dir = scratch("scgi-gone");
    let marker = marker_dir.join("closed");
    let mut s = scgi::connect(sa(&d));
    use std::io::{Read, Write};
    let uri = format!("/stream?n=2000&delay=0.02&marker={}", marker.display());
    s.write_all(&scgi::encode(&Request::get(&uri)))
        .expect("send");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("first bytes");
    assert!(n > 0);
    drop(s);
    let text = wait_for_file(&marker, 20);
    assert!(text.starts_with("closed after "), "{text}");
    assert_eq!(
        scgi::request(sa(&d), &Request::get("/close")).body,
        b"one two"
    );
}

#[test]
fn file_wrapper_streams_a_5_mib_file() {
    let d = start();
    let dir = scratch("file-wrapper");
    let path = dir.join("data.bin");
    let data = noise(5 << 20, 55);
    std::fs::write(&path, &data).expect("write the test file");
    for route in ["/file-wrapper", "/raw/file-wrapper"] {
        let marker = dir.join(route.replace('/', "_"));
        let uri = format!(
            "{route}?path={}&marker={}",
            path.display(),
            marker.display()
        );
        let resp = fcgi::request(fa(&d), &Request::get(&uri));
        assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)), "{route}");
        let r = resp.cgi();
        assert_eq!(r.status, 200, "{route}: {}", r.text());
        assert_eq!(r.body.len(), data.len(), "{route}");
        assert!(r.body == data, "{route}: file bytes differ");
        // close() of the wrapper closes the file.
        assert_eq!(wait_for_file(&marker, 20), "file closed", "{route}");
        let r = scgi::request(sa(&d), &Request::get(&uri));
        assert!(r.body == data, "scgi {route}: file bytes differ");
        // From the file's current position, and no further than Content-Length.
        for (query, want) in [
            ("seek=1000", &data[1000..]),
            ("seek=1000&cl=5000", &data[1000..6000]),
            ("cl=70000", &data[..70000]),
        ] {
            let uri = format!("{route}?path={}&{query}", path.display());
            let r = get(&d, &Request::get(&uri));
            assert_eq!(r.body.len(), want.len(), "{route}?{query}");
            assert!(r.body == want, "{route}?{query}: bytes differ");
        }
    }
    assert_validator_quiet(&d.log());
}

#[test]
fn file_wrapper_keeps_sending_its_own_file_when_the_descriptor_is_closed_and_reused() {
    // The app's file is closed by another thread mid-response and its descriptor number
    // reused for another file: the rest of the response must still be the first file.
    let d = start();
    let dir = scratch("file-swap");
    let (path, other) = (dir.join("mine.bin"), dir.join("other.bin"));
    let size = 32 << 20; // far more than the socket buffers hold, so the stream is mid-way
    std::fs::write(&path, vec![b'A'; size]).expect("write the served file");
    std::fs::write(&other, vec![b'B'; size]).expect("write the other file");
    let (go, marker) = (dir.join("go"), dir.join("swapped"));
    let uri = format!(
        "/raw/file-swap?path={}&other={}&go={}&marker={}",
        path.display(),
        other.display(),
        go.display(),
        marker.display()
    );
    let mut c = Client::connect(fa(&d));
    c.send(&Request::get(&uri).encode(1, false));
    // Take one record, then stop reading until the file was swapped under the stream.
    let first = c.read_record();
    assert_eq!(first.rtype, STDOUT);
    std::fs::write(&go, b"").expect("write the go file");
    let swapped = wait_for_file(&marker, 20);
    assert!(swapped.starts_with("swapped fd "), "{swapped}");
    let rest = c.read_response(1);
    assert_eq!(rest.end, Some((0, REQUEST_COMPLETE)));
    let mut raw = first.content.clone();
    raw.extend_from_slice(&rest.stdout);
    let r = CgiResponse::parse(&raw);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.body.contains(&b'B'),
        "the response carries bytes of the file opened under the reused descriptor"
    );
    assert_eq!(r.body.len(), size);
}

#[test]
fn file_wrapper_over_bytesio_falls_back_to_iteration() {
    let d = start();
    let r = get(&d, &Request::get("/bytesio?n=100000"));
    assert_eq!(r.status, 200);
    assert!(r.body == pattern(100_000), "BytesIO body differs");
    // fileno() of -1: no descriptor, not a panic.
    let r = get(&d, &Request::get("/raw/bytesio?n=100000&minus=1"));
    assert_eq!(r.status, 200);
    assert!(r.body == pattern(100_000), "fileno() -1 body differs");
    assert_validator_quiet(&d.log());
}

#[test]
fn exception_before_headers_gives_500_without_traceback_on_the_wire() {
    let d = start();
    for raw in [
        fcgi::request(fa(&d), &Request::get("/raise-before")).stdout,
        scgi::exchange(sa(&d), &scgi::encode(&Request::get("/raise-before"))),
    ] {
        let r = CgiResponse::parse(&raw);
        assert_eq!(r.status_line, "500 Internal Server Error");
        assert_eq!(r.body, b"Internal Server Error\n");
        let wire = String::from_utf8_lossy(&raw);
        for leak in [
            "Traceback",
            "BoomBeforeHeaders",
            "secret-traceback-token",
            ".py",
        ] {
            assert!(!wire.contains(leak), "{leak:?} leaked to the client");
        }
    }
    d.wait_log("RuntimeError: BoomBeforeHeaders secret-traceback-token", 20);
    assert_eq!(get(&d, &Request::get("/close")).body, b"one two");
}

#[test]
fn app_errors_are_logged_with_their_traceback() {
    let d = start();
    for uri in ["/raise-before", "/raise-mid"] {
        let mut c = Client::connect(fa(&d));
        c.send(&Request::get(uri).encode(1, false));
        let _ = c.collect(1);
    }
    let log = d.wait_log("BoomMidIteration", 20);
    d.wait_log("BoomBeforeHeaders", 20);
    for needle in [
        "Traceback (most recent call last)",
        "conformance.py",
        "in raise_before_app",
        "in __iter__",
    ] {
        assert!(
            log.contains(needle),
            "{needle:?} missing from the log:\n{log}"
        );
    }
}

#[test]
fn app_exceptions_never_kill_the_worker() {
    let d = start();
    let before = d.log();
    for i in 0..30 {
        let uri = [
            "/raise-before",
            "/empty-then-raise",
            "/raise-mid",
            "/raw/crlf-in-value",
        ][i % 4];
        let mut c = Client::connect(fa(&d));
        c.send(&Request::get(uri).encode(1, false));
        let _ = c.collect(1);
    }
    let r = get(&d, &Request::get("/close"));
    assert_eq!(r.body, b"one two");
    // Same worker: no new one was started.
    let started = |log: &str| log.matches("worker ready").count();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        started(&d.log()),
        started(&before),
        "a worker was restarted"
    );
}

#[test]
fn empty_body_still_sends_the_headers() {
    let d = start();
    let resp = fcgi::request(fa(&d), &Request::get("/no-body"));
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)));
    assert_eq!(
        String::from_utf8_lossy(&resp.stdout),
        "Status: 204 No Content\r\nX-Empty: yes\r\n\r\n"
    );
    let raw = scgi::exchange(sa(&d), &scgi::encode(&Request::get("/no-body")));
    assert_eq!(
        String::from_utf8_lossy(&raw),
        "Status: 204 No Content\r\nX-Empty: yes\r\n\r\n"
    );
    assert_validator_quiet(&d.log());
}

#[test]
fn requests_without_a_method_or_with_a_bad_content_length_are_400() {
    let d = start();
    for req in [
        Request::get("/environ").remove("REQUEST_METHOD"),
        Request::get("/environ").set("REQUEST_METHOD", ""),
        Request::get("/environ").set("CONTENT_LENGTH", "12abc"),
        Request::get("/environ").set("CONTENT_LENGTH", "-1"),
    ] {
        let r = get(&d, &req);
        assert_eq!(r.status_line, "400 Bad Request", "{:?}", req.params);
    }
    d.wait_log("bad request", 20);
    assert_eq!(get(&d, &Request::get("/close")).body, b"one two");
}

#[test]
fn list_responses_and_their_content_length() {
    // A list is the one shape the server may send whole; the validator would hide it.
    let d = start();
    let r = get(&d, &Request::get("/raw/list"));
    assert_eq!(r.body, b"0123456789");
    let r = get(&d, &Request::get("/raw/list?cl=5"));
    assert_eq!(
        (r.header("Content-Length"), &r.body[..]),
        (Some("5"), &b"01234"[..])
    );
    let r = scgi::request(sa(&d), &Request::get("/raw/list?cl=5"));
    assert_eq!(r.body, b"01234");
    d.wait_log("more than its Content-Length", 20);
}

#[test]
fn response_headers_larger_than_a_record() {
    let d = start();
    let resp = fcgi::request(fa(&d), &Request::get("/big-header?n=100000"));
    assert!(resp.stdout_records().len() >= 3, "headers in one record?");
    let r = resp.cgi();
    assert_eq!(r.header("X-Big").map(str::len), Some(100_000));
    assert_eq!(r.body, b"after the big header");
    let r = scgi::request(sa(&d), &Request::get("/big-header?n=100000"));
    assert_eq!(r.header("X-Big").map(str::len), Some(100_000));
    assert_validator_quiet(&d.log());
}

#[test]
fn latin1_header_values_go_out_as_single_bytes() {
    let d = start();
    let resp = fcgi::request(fa(&d), &Request::get("/latin1-header"));
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)));
    assert_eq!(
        resp.stdout,
        b"Status: 200 OK\r\nContent-Type: text/plain\r\nX-Latin: caf\xe9\r\n\r\nok"
    );
    assert_validator_quiet(&d.log());
}

/// A front end that drops the connection mid-body is the client going away, not an
/// application error: wsgi.input raises an OSError the app may let through (or wrap, as
/// Django does), and the log says "client went away" at info level, without a traceback.
#[test]
fn a_client_going_away_mid_body_is_no_application_error() {
    let d = start();
    let dir = scratch("client-gone");
    for (path, raised) in [
        ("/echo", "ClientDisconnected"),
        ("/echo-wrapped", "RuntimeError"),
    ] {
        let mut c = Client::connect(fa(&d));
        let seen = dir.join(&path[1..]);
        let req = Request::post(&format!("{path}?seen={}", seen.display()), &[b'z'; 1000]);
        let mut wire = begin_request(1, RESPONDER, 0);
        wire.extend(stream(PARAMS, 1, &req.params_stream(), 65535));
        wire.extend(record(STDIN, 1, &[b'z'; 10]));
        c.send(&wire);
        // Closed once the app runs (a request whose connection is gone before a thread
        // takes it is dropped unrun).
        wait_for_file(&seen, 20);
        c.close();
        let line = format!("the application stopped with {raised}");
        let log = d.wait_log(&line, 20);
        let went = log
            .lines()
            .find(|l| l.contains(&line))
            .expect("the line waited for");
        assert!(went.contains(" INFO "), "{went}");
        assert!(
            went.contains(
                "client went away: request body unavailable: the client went away \
                 (connection closed)"
            ),
            "{went}"
        );
    }
    let log = d.log();
    assert!(!log.contains("application error"), "{log}");
    assert!(!log.contains("Traceback"), "{log}");
    // The application's own exceptions are still application errors, with a traceback.
    let r = get(&d, &Request::get("/raise-before"));
    assert_eq!(r.status, 500);
    d.wait_log("Traceback", 20);
}
