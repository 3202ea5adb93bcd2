//! The requests every front end is tested with, and what the application behind it must
//! see: one list, so nginx, Apache, lighttpd and the spawned and socket-activated setups
//! are held to the same SCRIPT_NAME, PATH_INFO, QUERY_STRING and body.
//!
//! The application is fixtures/frontend_app.py, served by wsgid at the same mount point
//! the front end forwards (`/` or `/app`). [`run`] sends every case of [`cases`] through
//! the front end's HTTP port and collects every difference before failing, so one run
//! shows the whole picture for that front end. [`run_all`] also checks that wsgid logged no
//! mount mismatch warning: a stock setup must not be taken for a wrong one.

use std::fmt::Write as _;

use super::frontend::{pseudo_random, sha256_hex, Body, Client, Response};
use super::Daemon;

/// One front end in front of a wsgid serving fixtures/frontend_app.py.
#[derive(Debug, Clone)]
pub struct FrontEnd {
    /// Named in failure messages: "nginx fastcgi_pass", "Apache mod_proxy_scgi", ...
    pub name: String,
    /// The front end's HTTP port on 127.0.0.1.
    pub port: u16,
    /// Where the front end forwards to the application, and wsgid's `mount`: "/" or
    /// "/app".
    pub mount: String,
    /// Whether the front end takes a chunked request body. Some answer 411 Length Required
    /// to one themselves, which the matrix then checks (the upload must not reach the
    /// application): Apache mod_proxy_scgi (SCGI needs CONTENT_LENGTH up front), and
    /// lighttpd with `server.stream-request-body = 2` (it streams only a body whose length
    /// it knows; lighttpd 1.4.69 passes a chunked body on only if it has all of it at once).
    pub chunked_uploads: bool,
}

impl FrontEnd {
    pub fn new(name: &str, port: u16, mount: &str) -> FrontEnd {
        FrontEnd {
            name: name.to_string(),
            port,
            mount: mount.to_string(),
            chunked_uploads: true,
        }
    }

    /// This front end refuses chunked uploads itself (see [`FrontEnd::chunked_uploads`]).
    pub fn without_chunked_uploads(mut self) -> FrontEnd {
        self.chunked_uploads = false;
        self
    }

    /// The URL prefix of the mount: "" at the root, "/app" at /app.
    fn prefix(&self) -> &str {
        self.mount.trim_end_matches('/')
    }
}

/// The wsgid the matrix tests talk to through a front end: fixtures/frontend_app.py at
/// `mount`, over FastCGI and SCGI on loopback ports; with those two addresses.
pub fn backend(mount: &str) -> (Daemon, String, String) {
    let mut b = Daemon::builder("frontend_app").fastcgi().scgi();
    if mount != "/" {
        b = b.args(&["--mount", mount]);
    }
    let daemon = b.start();
    let fcgi = daemon.fcgi.clone().expect("FastCGI address");
    let scgi = daemon.scgi.clone().expect("SCGI address");
    (daemon, fcgi, scgi)
}

/// What the application must have seen, or that it must not have been reached at all.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Answered by the application with this report (fields left `None` are not checked).
    Seen(Sees),
    /// Never reached the application: any answer without its `X-Frontend-App` header and
    /// with a status of 400 or more.
    NotReached,
    /// `/big`: the application's pattern, this many bytes, intact.
    Pattern(usize),
}

/// The fields of the application's report a case checks.
#[derive(Debug, Clone, Default)]
pub struct Sees {
    pub script_name: String,
    pub path_info: String,
    /// PATH_INFO's bytes read as UTF-8 (PEP 3333 hands them over as latin-1).
    pub path_info_utf8: Option<String>,
    pub query_string: String,
    pub x_dup: Option<String>,
    pub cookie: Option<String>,
    /// The body the front end passed on: its length and SHA-256 (empty body if `None`).
    pub body: Option<(usize, String)>,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub method: &'static str,
    /// The request target, already including the mount prefix.
    pub target: String,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: Body,
    pub expect: Expect,
}

/// Size of the POST bodies: 1 MiB, the default body limit of nginx, and more than any
/// front end keeps in memory.
pub const POST_BYTES: usize = 1 << 20;
/// Size of the large response: larger than the buffers of any front end (nginx's default
/// fastcgi_buffers hold 32 KiB; Apache and lighttpd spill to disk past a few MiB).
pub const BIG_BYTES: usize = 8 << 20;

/// The cases for `fe`, whose application is at `fe.mount`.
pub fn cases(fe: &FrontEnd) -> Vec<Case> {
    let p = fe.prefix().to_string();
    let at_root = p.is_empty();
    // What the application sees as SCRIPT_NAME: "" at the root (PEP 3333), else the mount.
    let sees = |path_info: &str| Sees {
        script_name: p.clone(),
        path_info: path_info.to_string(),
        ..Sees::default()
    };
    let get = |name, target: String, expect| Case {
        name,
        method: "GET",
        target,
        headers: Vec::new(),
        body: Body::Empty,
        expect: Expect::Seen(expect),
    };
    let mut cases = vec![
        get(
            "query string",
            format!("{p}/x/y?q=1&r=%20&s=a%2Fb&t=caf%C3%A9"),
            Sees {
                query_string: "q=1&r=%20&s=a%2Fb&t=caf%C3%A9".to_string(),
                ..sees("/x/y")
            },
        ),
        get(
            "percent-encoded UTF-8",
            format!("{p}/caf%C3%A9/%E2%9C%93"),
            Sees {
                path_info_utf8: Some("/café/✓".to_string()),
                ..sees("/cafÃ©/â\u{9c}\u{93}")
            },
        ),
        get(
            "double slashes",
            format!("{p}//double//slash"),
            sees("/double/slash"),
        ),
        get(
            "repeated headers",
            format!("{p}/headers"),
            Sees {
                x_dup: Some("a, b".to_string()),
                cookie: Some("a=1; b=2".to_string()),
                ..sees("/headers")
            },
        ),
        get("httpoxy", format!("{p}/proxy"), sees("/proxy")),
    ];
    // The repeated-header case sends them; the httpoxy case sends a Proxy header.
    cases[3].headers = vec![("X-Dup", "a"), ("X-Dup", "b"), ("Cookie", "a=1; b=2")];
    cases[4].headers = vec![("Proxy", "http://attacker.example:3128")];
    if at_root {
        cases.push(get("the root", "/".to_string(), sees("/")));
    } else {
        cases.push(get("the bare mount", p.clone(), sees("")));
        cases.push(get("the mount with a slash", format!("{p}/"), sees("/")));
        cases.push(Case {
            name: "a path sharing only the mount's prefix",
            method: "GET",
            target: format!("{p}x/z"),
            headers: Vec::new(),
            body: Body::Empty,
            expect: Expect::NotReached,
        });
    }
    let body = pseudo_random(POST_BYTES, 14);
    let digest = (body.len(), sha256_hex(&body));
    cases.push(Case {
        name: "1 MiB POST",
        method: "POST",
        target: format!("{p}/upload"),
        headers: vec![("Content-Type", "application/octet-stream")],
        body: Body::Bytes(body.clone()),
        expect: Expect::Seen(Sees {
            body: Some(digest.clone()),
            ..sees("/upload")
        }),
    });
    cases.push(Case {
        name: "chunked upload",
        method: "POST",
        target: format!("{p}/upload"),
        headers: vec![("Content-Type", "application/octet-stream")],
        body: Body::Chunked(body, 16 * 1024),
        expect: if fe.chunked_uploads {
            Expect::Seen(Sees {
                body: Some(digest),
                ..sees("/upload")
            })
        } else {
            Expect::NotReached
        },
    });
    cases.push(Case {
        name: "large response",
        method: "GET",
        target: format!("{p}/big?n={BIG_BYTES}"),
        headers: Vec::new(),
        body: Body::Empty,
        expect: Expect::Pattern(BIG_BYTES),
    });
    cases
}

/// The bytes fixtures/frontend_app.py sends for `/big?n=N`.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 256) as u8).collect()
}

/// Sends every case through `fe` and panics listing every difference from what the
/// application must see.
pub fn run(fe: &FrontEnd) {
    let mut failures = String::new();
    for case in cases(fe) {
        let mut client = Client::new(fe.port);
        let headers: Vec<(&str, &str)> = case.headers.clone();
        let r = client.send(case.method, &case.target, &headers, case.body.clone());
        if let Err(why) = check(&case, &r) {
            let _ = writeln!(
                failures,
                "- {} ({} {}): {why}",
                case.name, case.method, case.target
            );
        }
    }
    assert!(
        failures.is_empty(),
        "through {} (mount {}), the application did not see what it must:\n{failures}",
        fe.name,
        fe.mount
    );
}

/// What wsgid's mount mismatch warning starts with.
pub const MOUNT_WARNING: &str = "mount mismatch on ";

/// [`run`] through each front end in turn; on a failure prints `logs` (wsgid's) first.
/// Then checks that wsgid, behind these front ends set up as they should be, logged no
/// mount mismatch warning.
pub fn run_all(front_ends: &[FrontEnd], logs: &dyn Fn() -> String) {
    for fe in front_ends {
        if let Err(e) = std::panic::catch_unwind(|| run(fe)) {
            eprintln!("---- wsgid log ----\n{}", logs());
            std::panic::resume_unwind(e);
        }
    }
    let names: Vec<&str> = front_ends.iter().map(|fe| fe.name.as_str()).collect();
    assert_no_mount_warning(&names.join(", "), &logs());
}

/// Panics when wsgid's `log`, behind `front_ends` set up as they should be, holds a mount
/// mismatch warning.
pub fn assert_no_mount_warning(front_ends: &str, log: &str) {
    let warned: Vec<&str> = log.lines().filter(|l| l.contains(MOUNT_WARNING)).collect();
    assert!(
        warned.is_empty(),
        "a mount mismatch warning behind {front_ends}, set up as they should be:\n{}",
        warned.join("\n")
    );
}

/// Whether `r` is what `case` expects; otherwise what differs.
fn check(case: &Case, r: &Response) -> Result<(), String> {
    let from_app = r.header("x-frontend-app") == Some("1");
    match &case.expect {
        Expect::NotReached => {
            if from_app || r.status < 400 {
                return Err(format!(
                    "reached the application (status {}, body {})",
                    r.status,
                    short(&r.text())
                ));
            }
            Ok(())
        }
        Expect::Pattern(n) => {
            if r.status != 200 || !from_app {
                return Err(format!("status {}, body {}", r.status, short(&r.text())));
            }
            if r.body.len() != *n {
                return Err(format!("{} bytes, not {n}", r.body.len()));
            }
            if r.body != pattern(*n) {
                return Err("the bytes differ from the application's pattern".to_string());
            }
            Ok(())
        }
        Expect::Seen(want) => {
            if r.status != 200 || !from_app {
                return Err(format!("status {}, body {}", r.status, short(&r.text())));
            }
            let got: serde_json::Value = serde_json::from_slice(&r.body)
                .map_err(|e| format!("not the application's JSON ({e}): {}", r.text()))?;
            let mut diffs = Vec::new();
            let mut field = |key: &str, want: Option<&str>| {
                let got = got.get(key).and_then(|v| v.as_str());
                if got != want {
                    diffs.push(format!("{key} {got:?}, want {want:?}"));
                }
            };
            field("SCRIPT_NAME", Some(&want.script_name));
            field("PATH_INFO", Some(&want.path_info));
            field("QUERY_STRING", Some(&want.query_string));
            if want.path_info_utf8.is_some() {
                field("PATH_INFO_UTF8", want.path_info_utf8.as_deref());
            }
            if want.x_dup.is_some() {
                field("HTTP_X_DUP", want.x_dup.as_deref());
            }
            if want.cookie.is_some() {
                field("HTTP_COOKIE", want.cookie.as_deref());
            }
            // httpoxy: a client's Proxy header must never become HTTP_PROXY.
            field("HTTP_PROXY", None);
            let (len, sha) = want.body.clone().unwrap_or_else(|| (0, sha256_hex(b"")));
            let got_len = got.get("body_length").and_then(|v| v.as_u64());
            if got_len != Some(len as u64) {
                diffs.push(format!("body length {got_len:?}, want {len}"));
            }
            let got_sha = got.get("body_sha256").and_then(|v| v.as_str());
            if got_sha != Some(sha.as_str()) {
                diffs.push("body SHA-256 differs".to_string());
            }
            if diffs.is_empty() {
                Ok(())
            } else {
                Err(diffs.join("; "))
            }
        }
    }
}

fn short(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    format!("{t:?}")
}
