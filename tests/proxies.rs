//! `--trusted-proxies` on a running wsgid: X-Forwarded-For, -Proto, -Host and -Prefix are
//! applied to the environ of a request whose REMOTE_ADDR is a trusted proxy, over FastCGI
//! and SCGI, and never to anyone else's; through a real nginx, `unix` trusts the clients
//! of nginx's own Unix-socket listener and not its TCP clients. App:
//! fixtures/conformance.py (its environ dump, under wsgiref.validate).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

use common::fcgi::{self, assert_validator_quiet, Request};
use common::frontend::{self, parse_response, Nginx, Pass, Response, Site};
use common::{free_port, scgi, scratch, Daemon};

const APP: &str = "conformance:application";

/// What a proxy in front of the front end says about the original request.
fn forwarded(req: Request) -> Request {
    req.add(
        "HTTP_X_FORWARDED_FOR",
        "198.51.100.9, 203.0.113.7, 10.0.0.2",
    )
    .add("HTTP_X_FORWARDED_PROTO", "https")
    .add("HTTP_X_FORWARDED_HOST", "www.example.org")
    .add("HTTP_X_FORWARDED_PREFIX", "/shop")
}

/// The environ dump of `req` over FastCGI and over SCGI.
fn both(d: &Daemon, req: &Request) -> [(&'static str, Value); 2] {
    let f = fcgi::request(d.fcgi.as_deref().expect("fastcgi address"), req).cgi();
    assert_eq!(f.status, 200, "{}", f.text());
    let s = scgi::request(d.scgi.as_deref().expect("scgi address"), req);
    assert_eq!(s.status, 200, "{}", s.text());
    [("fastcgi", f.json()), ("scgi", s.json())]
}

/// The environ wsgid builds from `req` without applying any X-Forwarded-* header.
fn assert_not_applied(env: &Value, remote: &str, how: &str) {
    let cgi = &env["cgi"];
    assert_eq!(cgi["REMOTE_ADDR"], remote, "{how}");
    assert_eq!(cgi["REMOTE_PORT"], "40000", "{how}");
    assert_eq!(env["wsgi"]["url_scheme"], "http", "{how}");
    assert_eq!(cgi.get("HTTPS"), None, "{how}");
    assert_eq!(cgi["HTTP_HOST"], "example.test", "{how}");
    assert_eq!(cgi["SERVER_NAME"], "localhost", "{how}");
    assert_eq!(cgi["SERVER_PORT"], "8080", "{how}");
    assert_eq!(cgi["SCRIPT_NAME"], "/app", "{how}");
    assert_eq!(cgi["PATH_INFO"], "/environ", "{how}");
    assert_eq!(env["url"], "http://example.test/app/environ?q=1", "{how}");
    // The headers are there for the application to see, like any header.
    assert_eq!(
        cgi["HTTP_X_FORWARDED_FOR"], "198.51.100.9, 203.0.113.7, 10.0.0.2",
        "{how}"
    );
    assert_eq!(cgi["HTTP_X_FORWARDED_PREFIX"], "/shop", "{how}");
}

#[test]
fn forwarded_headers_apply_from_trusted_proxies_only() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .args(&[
            "--mount",
            "/app",
            "--trusted-proxies",
            "10.0.0.0/8,::1",
            "--trusted-proxies",
            "unix",
        ])
        .start();
    let req = |remote: Option<&str>| {
        let r = forwarded(Request::get("/app/environ?q=1"));
        match remote {
            Some(a) => r.set("REMOTE_ADDR", a),
            None => r.remove("REMOTE_ADDR"),
        }
    };

    // From a trusted proxy: the client's address, scheme, host and the proxy's prefix.
    for remote in [Some("10.0.0.1"), Some("::1"), Some("unix:"), None] {
        for (proto, env) in both(&d, &req(remote)) {
            let how = format!("{proto} from {remote:?}");
            let cgi = &env["cgi"];
            assert_eq!(cgi["REMOTE_ADDR"], "203.0.113.7", "{how}");
            assert_eq!(cgi.get("REMOTE_PORT"), None, "{how}");
            assert_eq!(env["wsgi"]["url_scheme"], "https", "{how}");
            assert_eq!(cgi["HTTPS"], "on", "{how}");
            assert_eq!(cgi["REQUEST_SCHEME"], "https", "{how}");
            assert_eq!(cgi["HTTP_HOST"], "www.example.org", "{how}");
            assert_eq!(cgi["SERVER_NAME"], "www.example.org", "{how}");
            assert_eq!(cgi["SERVER_PORT"], "443", "{how}");
            assert_eq!(cgi["SCRIPT_NAME"], "/shop/app", "{how}");
            assert_eq!(cgi["PATH_INFO"], "/environ", "{how}");
            // The URL the application rebuilds is the one the client asked for.
            assert_eq!(
                env["url"], "https://www.example.org/shop/app/environ?q=1",
                "{how}"
            );
        }
    }

    // From anyone else: nothing is applied.
    for remote in ["127.0.0.1", "192.0.2.1", "11.0.0.1", "::2"] {
        for (proto, env) in both(&d, &req(Some(remote))) {
            assert_not_applied(&env, remote, &format!("{proto} from {remote}"));
        }
    }

    // A prefix that tries to climb out of the mount, or to become another site, is
    // ignored; the rest still applies.
    for prefix in [
        "/..",
        "/%2e%2e/x",
        "//evil.example",
        "/%2F%2Fevil.example",
        "http://evil.example/",
        "/a%00",
        "/a%0d%0aX:%201",
        "/\\evil.example",
    ] {
        let r = req(Some("10.0.0.1")).set("HTTP_X_FORWARDED_PREFIX", prefix);
        for (proto, env) in both(&d, &r) {
            let how = format!("{proto} with prefix {prefix:?}");
            assert_eq!(env["cgi"]["SCRIPT_NAME"], "/app", "{how}");
            assert_eq!(env["cgi"]["PATH_INFO"], "/environ", "{how}");
            assert_eq!(env["cgi"]["REMOTE_ADDR"], "203.0.113.7", "{how}");
        }
    }
    // A bad host or scheme is ignored too.
    let r = req(Some("10.0.0.1"))
        .set("HTTP_X_FORWARDED_HOST", "evil.example/x")
        .set("HTTP_X_FORWARDED_PROTO", "javascript");
    for (proto, env) in both(&d, &r) {
        assert_eq!(env["cgi"]["HTTP_HOST"], "example.test", "{proto}");
        assert_eq!(env["wsgi"]["url_scheme"], "http", "{proto}");
        assert_eq!(env["cgi"]["SCRIPT_NAME"], "/shop/app", "{proto}");
    }
    assert_validator_quiet(&d.log());
}

/// Without --trusted-proxies nothing is applied, whoever sends the headers.
#[test]
fn without_trusted_proxies_nothing_is_applied() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .args(&["--mount", "/app"])
        .start();
    for remote in ["127.0.0.1", "10.0.0.1", "unix:"] {
        let r = forwarded(Request::get("/app/environ?q=1")).set("REMOTE_ADDR", remote);
        for (proto, env) in both(&d, &r) {
            assert_not_applied(&env, remote, &format!("{proto} from {remote}"));
        }
    }
}

/// One HTTP/1.1 GET over nginx's Unix-socket listener, read to its end.
fn get_over_unix(sock: &std::path::Path, head: &str) -> Response {
    let mut s = UnixStream::connect(sock).expect("connect to nginx's unix socket");
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    s.write_all(head.as_bytes()).expect("send the request");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
        .unwrap_or_else(|e| panic!("bad response ({e}): {:?}", String::from_utf8_lossy(&raw)))
}

/// nginx listening on TCP and on a Unix socket, in front of wsgid with
/// `--trusted-proxies unix`: a client of the Unix socket (a proxy on nginx's host; nginx
/// sends REMOTE_ADDR "unix:") has its X-Forwarded-* headers applied, a TCP client
/// (REMOTE_ADDR 127.0.0.1) does not, although wsgid's own listener is the same.
#[test]
fn unix_trusts_the_clients_of_nginx_unix_socket_only() {
    let backend = format!("127.0.0.1:{}", free_port());
    let d = Daemon::builder(APP)
        .args(&["--fastcgi", &backend, "--mount", "/app"])
        .args(&["--trusted-proxies", "unix"])
        .start();
    let port = free_port();
    let dir = scratch("nginx").keep(); // removed by Nginx's drop, when the test passed
    let sock = dir.join("http.sock");
    let site = Site::new(Pass::FastCgi, &backend, "/app").server_name("localhost");
    let tcp_listen = format!("listen 127.0.0.1:{port};");
    let conf = frontend::render(&site, port, &dir).replace(
        &tcp_listen,
        &format!("{tcp_listen}\n        listen unix:{};", sock.display()),
    );
    let nginx = Nginx::start_conf(&conf, port, dir);

    let head = "GET /app/environ?q=1 HTTP/1.1\r\nHost: backend.internal\r\n\
                X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n\
                X-Forwarded-Host: www.example.org\r\nX-Forwarded-Prefix: /shop\r\n\
                Connection: close\r\n\r\n";
    let r = get_over_unix(&sock, head);
    assert_eq!(r.status, 200, "{}", r.text());
    let env = r.json();
    let cgi = &env["cgi"];
    assert_eq!(cgi["REMOTE_ADDR"], "203.0.113.7");
    assert_eq!(env["wsgi"]["url_scheme"], "https");
    assert_eq!(cgi["SERVER_NAME"], "www.example.org");
    assert_eq!(cgi["SCRIPT_NAME"], "/shop/app");
    assert_eq!(cgi["PATH_INFO"], "/environ");
    assert_eq!(env["url"], "https://www.example.org/shop/app/environ?q=1");

    let r = frontend::raw_request(port, head.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let env = r.json();
    let cgi = &env["cgi"];
    assert_eq!(cgi["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(env["wsgi"]["url_scheme"], "http");
    assert_eq!(cgi["HTTP_HOST"], "backend.internal");
    assert_eq!(cgi["SCRIPT_NAME"], "/app");
    assert_eq!(cgi["HTTP_X_FORWARDED_FOR"], "203.0.113.7");
    assert_eq!(env["url"], "http://backend.internal/app/environ?q=1");
    drop(nginx);
    assert_validator_quiet(&d.log());
}
