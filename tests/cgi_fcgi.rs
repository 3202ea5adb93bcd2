//! wsgid against an independent FastCGI client: `cgi-fcgi` from the reference C library
//! (Debian package libfcgi-bin), which turns its CGI environment and stdin into a FastCGI
//! request and prints the CGI response. Apps: fixtures/conformance.py.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::fcgi::{noise, CgiResponse};
use common::Daemon;

const CGI_FCGI: &str = "/usr/bin/cgi-fcgi";

/// Runs `cgi-fcgi -bind -connect ADDR` with exactly `env` as its environment and `stdin`
/// as the request body; returns its stdout.
fn cgi_fcgi(addr: &str, env: &[(&str, &str)], stdin: &[u8]) -> Vec<u8> {
    assert!(
        Path::new(CGI_FCGI).exists(),
        "{CGI_FCGI} is missing: install Debian's libfcgi-bin (apt-get install libfcgi-bin)"
    );
    let mut cmd = Command::new(CGI_FCGI);
    cmd.args(["-bind", "-connect", addr])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run cgi-fcgi");
    let mut pipe = child.stdin.take().expect("cgi-fcgi stdin");
    let body = stdin.to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&body));
    let out = child.wait_with_output().expect("cgi-fcgi output");
    writer
        .join()
        .expect("stdin writer")
        .expect("write cgi-fcgi stdin");
    assert!(
        out.status.success(),
        "cgi-fcgi failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn start() -> Daemon {
    Daemon::builder("conformance:application").fastcgi().start()
}

#[test]
fn cgi_fcgi_get() {
    let d = start();
    let addr = d.fcgi.as_deref().expect("fastcgi address");
    let out = cgi_fcgi(
        addr,
        &[
            ("REQUEST_METHOD", "GET"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/environ"),
            ("QUERY_STRING", "from=cgi-fcgi"),
            ("REQUEST_URI", "/environ?from=cgi-fcgi"),
            ("SERVER_NAME", "cgi.example"),
            ("SERVER_PORT", "8081"),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("REMOTE_ADDR", "192.0.2.7"),
            ("HTTP_HOST", "cgi.example:8081"),
        ],
        b"",
    );
    let r = CgiResponse::parse(&out);
    assert_eq!(r.status_line, "200 OK");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let env = r.json();
    let cgi = &env["cgi"];
    for (k, v) in [
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", "/environ"),
        ("QUERY_STRING", "from=cgi-fcgi"),
        ("SERVER_NAME", "cgi.example"),
        ("SERVER_PORT", "8081"),
        ("REMOTE_ADDR", "192.0.2.7"),
        ("HTTP_HOST", "cgi.example:8081"),
    ] {
        assert_eq!(cgi[k], v, "{k}");
    }
    assert_eq!(env["nonstr"], serde_json::json!({}));
    common::fcgi::assert_validator_quiet(&d.log());
}

#[test]
fn cgi_fcgi_post_100k() {
    let d = start();
    let addr = d.fcgi.as_deref().expect("fastcgi address");
    let body = noise(100 * 1024, 100);
    let len = body.len().to_string();
    let out = cgi_fcgi(
        addr,
        &[
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/echo"),
            ("QUERY_STRING", ""),
            ("REQUEST_URI", "/echo"),
            ("CONTENT_LENGTH", &len),
            ("CONTENT_TYPE", "application/octet-stream"),
            ("SERVER_NAME", "cgi.example"),
            ("SERVER_PORT", "8081"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ],
        &body,
    );
    let r = CgiResponse::parse(&out);
    assert_eq!(r.status_line, "200 OK");
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "echoed body differs");
    common::fcgi::assert_validator_quiet(&d.log());
}
