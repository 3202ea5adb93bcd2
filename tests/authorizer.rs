//! The FastCGI AUTHORIZER role (FastCGI 1.0 §6.3): a front end asks the app whether a
//! request may pass. Over a raw FastCGI connection first (what the app is called with,
//! the denial and the grant as sent, a separate `--authorizer`, FILTER refused), then end
//! to end: Apache mod_authnz_fcgi and lighttpd's `"mode" => "authorizer"` guarding a
//! static directory with fixtures/authz_app.py's user database (Basic credentials and a
//! session cookie), from the examples in conf.d/.
//!
//! Needs Apache (Debian: apache2) and lighttpd for the end-to-end tests.

mod common;

use common::fcgi::*;
use common::Daemon;

/// How Apache mod_authnz_fcgi asks: no FCGI_KEEP_CONN, no SCRIPT_NAME, PATH_INFO or
/// CONTENT_LENGTH, and no FCGI_STDIN at all.
fn ask(uri: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut req = Request::get(uri)
        .remove("DOCUMENT_URI")
        .add("FCGI_ROLE", "AUTHORIZER");
    for (k, v) in headers {
        req = req.add(k, v);
    }
    let mut v = begin_request(1, AUTHORIZER, 0);
    v.extend(stream(PARAMS, 1, &req.params_stream(), MAX_CONTENT));
    v
}

fn start(args: &[&str]) -> Daemon {
    Daemon::builder("authz_app:application")
        .args(args)
        .fastcgi()
        .start()
}

fn addr(d: &Daemon) -> &str {
    d.fcgi.as_deref().expect("fastcgi address")
}

/// The authorizer's answer to `bytes` on a fresh connection, which wsgid then closes
/// (no FCGI_KEEP_CONN).
fn answer(d: &Daemon, bytes: &[u8]) -> (Response, CgiResponse) {
    let mut c = Client::connect(addr(d));
    c.send(bytes);
    let resp = c.read_response(1);
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)), "{resp:?}");
    let cgi = resp.cgi();
    assert!(c.expect_closed(10).is_empty());
    (resp, cgi)
}

const ALICE: &str = "Basic YWxpY2U6d29uZGVybGFuZA=="; // alice:wonderland
const MALLORY: &str = "Basic bWFsbG9yeTptYWxsb3J5"; // mallory:mallory

#[test]
fn a_grant_carries_variables_and_the_mount_does_not_apply() {
    // Mounted at /app, asked about /private/…: not the app's URL, and no 404.
    let d = start(&["--mount", "/app"]);
    for (headers, via) in [
        (vec![("HTTP_AUTHORIZATION", ALICE)], "basic"),
        (
            vec![("REMOTE_USER", "alice"), ("REMOTE_PASSWD", "wonderland")],
            "basic",
        ),
        (
            vec![("HTTP_COOKIE", "theme=dark; session=alice-token")],
            "cookie",
        ),
    ] {
        let (_, cgi) = answer(&d, &ask("/private/secret.txt?x=1", &headers));
        assert_eq!(cgi.status, 200, "{}", cgi.text());
        for (name, want) in [
            ("Variable-REMOTE_USER", "alice"),
            ("Variable-AUTH_VIA", via),
            ("Variable-SEEN_ROLE", "authorizer"),
            ("Variable-SEEN_SCRIPT_NAME", ""),
            ("Variable-SEEN_PATH_INFO", "/private/secret.txt"),
            ("Variable-SEEN_BODY", "0"),
        ] {
            assert_eq!(cgi.header(name), Some(want), "{name}: {:?}", cgi.headers);
        }
    }
    // An ordinary request to the same app: a responder, at its mount.
    let resp = request(addr(&d), &Request::get("/app/who"));
    let seen = resp.cgi().json();
    assert_eq!(seen["wsgid.role"], "responder", "{seen}");
    assert_eq!(seen["SCRIPT_NAME"], "/app", "{seen}");
    assert_eq!(seen["PATH_INFO"], "/who", "{seen}");
    assert_eq!(
        request(addr(&d), &Request::get("/private/x")).cgi().status,
        404,
        "the mount still applies to responders"
    );
    // Three authorizer requests outside the mount came first: they are no sign of a
    // mount that does not fit the front end.
    assert!(!d.log().contains("mount mismatch"), "{}", d.log());
}

#[test]
fn a_denial_is_sent_whole_status_headers_and_body_in_one_record() {
    let d = start(&[]);
    let (resp, cgi) = answer(&d, &ask("/private/a", &[]));
    assert_eq!(cgi.status, 401);
    assert_eq!(
        cgi.header("WWW-Authenticate"),
        Some(r#"Basic realm="authz_app""#)
    );
    assert_eq!(
        cgi.text(),
        "authz_app: who are you? (401 from the authorizer)\n"
    );
    // Apache keeps as the denial's body only what came in the record that ended the
    // headers: status, headers and body travel in one STDOUT record (then the empty one).
    let records = resp.stdout_records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].content, resp.stdout);

    let (_, cgi) = answer(&d, &ask("/private/a", &[("HTTP_AUTHORIZATION", MALLORY)]));
    assert_eq!(cgi.status, 403);
    assert_eq!(
        cgi.text(),
        "authz_app: mallory may not see /private/a (403 from the authorizer)\n"
    );
    // Outside /private, mallory passes.
    let (_, cgi) = answer(&d, &ask("/public/a", &[("HTTP_AUTHORIZATION", MALLORY)]));
    assert_eq!(cgi.status, 200);
    assert_eq!(cgi.header("Variable-REMOTE_USER"), Some("mallory"));
}

#[test]
fn an_authorizer_gets_no_body_whatever_the_front_end_sends() {
    let d = start(&[]);
    // A CONTENT_LENGTH, STDIN records and their end: none of it is a body (§6.3).
    let mut bytes = ask(
        "/private/a",
        &[
            ("HTTP_COOKIE", "session=alice-token"),
            ("CONTENT_LENGTH", "5"),
        ],
    );
    bytes.extend(record(STDIN, 1, b"hello"));
    bytes.extend(record(STDIN, 1, b""));
    let (_, cgi) = answer(&d, &bytes);
    assert_eq!(cgi.status, 200, "{}", cgi.text());
    assert_eq!(cgi.header("Variable-SEEN_BODY"), Some("0"));
    assert!(!d.log().contains("ERROR"), "{}", d.log());
}

#[test]
fn with_keep_conn_authorizer_and_responder_requests_share_a_connection() {
    let d = start(&[]);
    let mut c = Client::connect(addr(&d));
    for round in 0..3 {
        let mut bytes = ask("/private/a", &[("HTTP_COOKIE", "session=alice-token")]);
        bytes[10] = KEEP_CONN; // the flags of FCGI_BeginRequestBody, after the header
        c.send(&bytes);
        let cgi = c.read_response(1).cgi();
        assert_eq!(cgi.status, 200, "round {round}: {}", cgi.text());
        let resp = c.request(2, true, &Request::post("/echo", b"body"));
        let seen = resp.cgi().json();
        assert_eq!(seen["wsgid.role"], "responder", "{seen}");
        assert_eq!(seen["body"], 4, "{seen}");
    }
    assert!(c.still_open(std::time::Duration::from_millis(200)));
}

#[test]
fn a_separate_authorizer_callable_answers_authorizer_requests() {
    let d = Daemon::builder("authz_app:responder_only")
        .args(&["--authorizer", "authz_app:check"])
        .fastcgi()
        .start();
    let (_, cgi) = answer(&d, &ask("/private/a", &[("HTTP_AUTHORIZATION", ALICE)]));
    assert_eq!(cgi.status, 200, "{}\n{}", cgi.text(), d.log());
    assert_eq!(cgi.header("Variable-SEEN_ROLE"), Some("authorizer"));
    let seen = request(addr(&d), &Request::get("/x")).cgi().json();
    assert_eq!(seen["wsgid.role"], "responder", "{seen}");
    assert!(!d.log().contains("asked as"), "{}", d.log());
}

#[test]
fn an_authorizer_that_does_not_load_stops_wsgid_with_the_reason() {
    let (status, out) = Daemon::builder("authz_app:application")
        .args(&["--authorizer", "authz_app:nothing_here", "--check"])
        .fastcgi()
        .run();
    assert!(!status.success(), "{out}");
    assert!(out.contains("nothing_here"), "{out}");
    let (status, out) = Daemon::builder("authz_app:application")
        .args(&["--authorizer", "authz_app:USERS", "--check"])
        .fastcgi()
        .run();
    assert!(!status.success(), "{out}");
    assert!(out.contains("not callable"), "{out}");
}

#[test]
fn filter_requests_are_refused_with_unknown_role() {
    let d = start(&[]);
    let mut c = Client::connect(addr(&d));
    let mut bytes = begin_request(1, FILTER, 0);
    bytes.extend(stream(
        PARAMS,
        1,
        &Request::get("/x").params_stream(),
        MAX_CONTENT,
    ));
    c.send(&bytes);
    let got = c.expect_closed(10);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rtype, END_REQUEST);
    assert_eq!(got[0].content, [0, 0, 0, 0, UNKNOWN_ROLE, 0, 0, 0]);
}

/// What a client gets through a front end guarding /private with the app, for each way of
/// (not) proving who it is; `basic` sends `Authorization: Basic …`.
fn guarded(port: u16, path: &str, basic: Option<&str>, cookie: Option<&str>) -> HttpResponse {
    let mut c = common::frontend::Client::new(port);
    if let Some(token) = cookie {
        c.cookies.push(("session".into(), token.into()));
    }
    let headers: Vec<(&str, &str)> = basic.map(|b| ("Authorization", b)).into_iter().collect();
    c.send("GET", path, &headers, common::frontend::Body::Empty)
}

use common::frontend::Response as HttpResponse;

/// The checks every front end passes: alice gets the file by password and by cookie,
/// mallory gets the authorizer's 403, a stranger or a wrong password its 401 — each with
/// the authorizer's own body.
fn check_guard(port: u16, logs: &dyn Fn() -> String) {
    let file = "/private/secret.txt";
    for (basic, cookie) in [(Some(ALICE), None), (None, Some("alice-token"))] {
        let r = guarded(port, file, basic, cookie);
        assert_eq!(
            r.status,
            200,
            "{basic:?} {cookie:?}: {}\n{}",
            r.text(),
            logs()
        );
        assert_eq!(r.text(), "the secret\n");
    }
    for (basic, cookie, status, body) in [
        (
            None,
            None,
            401,
            "authz_app: who are you? (401 from the authorizer)\n",
        ),
        (
            Some("Basic YWxpY2U6d3Jvbmc="), // alice:wrong
            None,
            401,
            "authz_app: who are you? (401 from the authorizer)\n",
        ),
        (
            None,
            Some("forged"),
            401,
            "authz_app: who are you? (401 from the authorizer)\n",
        ),
        (
            Some(MALLORY),
            None,
            403,
            "authz_app: mallory may not see /private/secret.txt (403 from the authorizer)\n",
        ),
        (
            None,
            Some("mallory-token"),
            403,
            "authz_app: mallory may not see /private/secret.txt (403 from the authorizer)\n",
        ),
    ] {
        let r = guarded(port, file, basic, cookie);
        assert_eq!(
            r.status,
            status,
            "{basic:?} {cookie:?}: {}\n{}",
            r.text(),
            logs()
        );
        assert_eq!(r.text(), body, "{basic:?} {cookie:?}\n{}", logs());
        assert!(!r.text().contains("the secret"));
        if status == 401 {
            // Apache with AuthType Basic adds its own challenge (AuthName) beside it.
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.contains(r#"Basic realm="authz_app""#),
                "{basic:?} {cookie:?}: {challenge:?}"
            );
        }
    }
}

/// A directory with the file /private guards.
fn private_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let private = dir.join("private");
    std::fs::create_dir_all(&private).expect("create private dir");
    std::fs::write(private.join("secret.txt"), "the secret\n").expect("write secret");
    private
}

#[test]
fn apache_mod_authnz_fcgi_guards_a_static_directory() {
    let d = start(&[]);
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/apache-authorizer.conf"),
    )
    .expect("read conf.d/apache-authorizer.conf");
    let port = common::free_port();
    let dir = common::scratch("apache-authorizer").keep();
    let private = private_dir(&dir);
    let mut conf = example.clone();
    for (from, to) in [
        (
            "<VirtualHost *:80>".to_string(),
            format!("<VirtualHost 127.0.0.1:{port}>"),
        ),
        ("127.0.0.1:9002".to_string(), addr(&d).to_string()),
        (
            "/srv/mysite/private".to_string(),
            private.display().to_string(),
        ),
    ] {
        assert!(example.contains(&from), "the example lost {from:?}");
        conf = conf.replace(&from, &to);
    }
    let apache = common::apache::Apache::start_conf(&conf, vec![port], dir);
    let logs = || format!("{}\n{}", d.log(), apache.error_log());
    check_guard(port, &logs);
}

#[test]
fn lighttpd_mode_authorizer_guards_a_static_directory() {
    use common::lighttpd::{give_to_lighttpd, Lighttpd};
    let d = start(&[]);
    let port = addr(&d).rsplit(':').next().expect("port").to_string();
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/lighttpd-authorizer.conf"),
    )
    .expect("read conf.d/lighttpd-authorizer.conf");
    let docroot = common::scratch("lighttpd-authorizer").keep();
    let private = private_dir(&docroot);
    give_to_lighttpd(&docroot);
    give_to_lighttpd(&private);
    give_to_lighttpd(&private.join("secret.txt"));
    let mut conf = example.clone();
    for (from, to) in [
        (
            "\"port\" => 9002,".to_string(),
            format!("\"port\" => {port},"),
        ),
        (
            "\"docroot\" => \"/srv/mysite\",".to_string(),
            format!("\"docroot\" => \"{}\",", docroot.display()),
        ),
    ] {
        assert!(example.contains(&from), "the example lost {from:?}");
        conf = conf.replace(&from, &to);
    }
    let lighttpd = Lighttpd::start_conf(&conf, Vec::new(), Lighttpd::scratch());
    let logs = || format!("{}\n{}", d.log(), lighttpd.error_log());
    check_guard(lighttpd.base_port, &logs);
    std::fs::remove_dir_all(&docroot).ok();
}
