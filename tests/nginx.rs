//! End to end through the real nginx: an HTTP client → nginx (Debian's stock
//! fastcgi_params / scgi_params) → wsgid → Django or Flask from the test virtualenv.
//!
//! Each test starts its own wsgid and nginx on free loopback ports. The matrix: both
//! frameworks over FastCGI (one connection per request), FastCGI with `fastcgi_keep_conn on`
//! and an upstream `keepalive` pool, and SCGI; each at `/` and mounted at `/app`, where every
//! URL the framework generates must carry the `/app` prefix (SCRIPT_NAME). Then 5 MiB
//! uploads (hash compared) buffered and streamed, the empty SERVER_NAME nginx sends without
//! `server_name`, and Unix sockets whose mode lets nginx's unprivileged workers connect.
//! Last, the request matrix every front end passes (tests/common/matrix.rs) through each
//! way nginx passes requests on, at `/` and at `/app`.
//!
//! Needs nginx (Debian: nginx-light) and the virtualenv of fixtures/requirements.txt
//! ($WSGID_TEST_VENV or ./.venv; scripts/test creates it).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use common::frontend::{
    connections_to, pseudo_random, raw_request, sha256_hex, Body, Client, Nginx, Pass, Response,
    Site,
};
use common::{fixtures, scratch, venv, Daemon};

/// A wsgid and the nginx in front of it; on a failing test, prints wsgid's log (nginx
/// prints its own config and error log).
struct Stack {
    nginx: Nginx,
    daemon: Daemon,
    /// The mount point as a URL prefix: "" for the root, "/app" when mounted there.
    prefix: String,
    /// Held by the Django stacks: tells the shared database whether this test failed.
    _db: Option<DjangoDb>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- wsgid log ----\n{}", self.daemon.log());
        }
    }
}

impl Stack {
    fn client(&self) -> Client {
        self.nginx.client()
    }

    /// `path` below the mount point.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

/// The test virtualenv, checked for the packages the fixtures import.
fn test_venv() -> PathBuf {
    let v = venv();
    let ok = std::fs::read_dir(v.join("lib")).ok().is_some_and(|dirs| {
        dirs.flatten().any(|d| {
            let sp = d.path().join("site-packages");
            sp.join("django").is_dir() && sp.join("flask").is_dir()
        })
    });
    assert!(
        ok,
        "no virtualenv with Django and Flask at {} (set WSGID_TEST_VENV, or run scripts/test, \
         which creates ./.venv from fixtures/requirements.txt)",
        v.display()
    );
    v
}

/// Starts wsgid (FastCGI and SCGI on loopback ports) serving `app` with the test
/// virtualenv, and nginx passing `mount` to it with `pass`.
fn stack(app: &str, pythonpath: &Path, extra: &[&str], pass: Pass, mount: &str) -> Stack {
    stack_with(app, pythonpath, extra, pass, mount, true)
}

fn stack_with(
    app: &str,
    pythonpath: &Path,
    extra: &[&str],
    pass: Pass,
    mount: &str,
    request_buffering: bool,
) -> Stack {
    let venv = test_venv();
    let mut b = Daemon::builder(app)
        .fastcgi()
        .scgi()
        .cwd(pythonpath)
        .arg("--virtualenv")
        .arg(&venv.display().to_string())
        .arg("--pythonpath")
        .arg(&pythonpath.display().to_string())
        .args(extra);
    if mount != "/" {
        b = b.args(&["--mount", mount]);
    }
    let daemon = b.start();
    let backend = match pass {
        Pass::FastCgi | Pass::FastCgiKeepConn => daemon.fcgi.clone(),
        Pass::Scgi => daemon.scgi.clone(),
    }
    .expect("wsgid listener address");
    let site = Site::new(pass, &backend, mount).request_buffering(request_buffering);
    let nginx = Nginx::start(&site);
    let prefix = if mount == "/" {
        String::new()
    } else {
        mount.to_string()
    };
    Stack {
        nginx,
        daemon,
        prefix,
        _db: None,
    }
}

/// The port of a "127.0.0.1:PORT" address.
fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

#[track_caller]
fn assert_contains(r: &Response, needle: &str) {
    let text = r.text();
    assert!(
        text.contains(needle),
        "expected {needle:?} in the {} response:\n{text}",
        r.status
    );
}

// ---------------------------------------------------------------------------------------
// Django

const DJANGO_ADMIN_PASSWORD: &str = "wsgid-admin-pw-42";

/// The fixture site's database file: migrated, with a superuser `admin`, once per test
/// run, in a scratch directory of its own.
static DJANGO_DB: OnceLock<PathBuf> = OnceLock::new();
/// Whether a test that used [`DJANGO_DB`] failed.
static DJANGO_DB_FAILED: AtomicBool = AtomicBool::new(false);

/// A test's use of the shared Django database: when dropped while the test panics, the
/// database's directory is kept at exit for a look, as a failing test's scratch directory
/// is.
struct DjangoDb(&'static Path);

impl Drop for DjangoDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            DJANGO_DB_FAILED.store(true, Ordering::SeqCst);
        }
    }
}

/// Run at the test binary's exit: removes the database's directory unless a test that used
/// it failed. Every Django test of the run shares it, so no one test's end can.
extern "C" fn remove_django_db() {
    if DJANGO_DB_FAILED.load(Ordering::SeqCst) {
        return;
    }
    if let Some(dir) = DJANGO_DB.get().and_then(|db| db.parent()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The fixture site's database, for one test (SQLite serialises the Django tests' few
/// writes).
fn django_db() -> DjangoDb {
    let db = DJANGO_DB.get_or_init(|| {
        // Not removed on drop: the Django tests running after this one use it too.
        let db = scratch("django-db").keep().join("site.sqlite3");
        // SAFETY: atexit only records the pointer of a function that takes no arguments,
        // touches only statics and cannot unwind (remove_django_db ignores every error).
        let registered = unsafe { libc::atexit(remove_django_db) };
        assert_eq!(registered, 0, "atexit failed");
        let python = test_venv().join("bin/python");
        let site = fixtures().join("django_site");
        let run = |args: &[&str]| {
            let out = Command::new(&python)
                .arg("manage.py")
                .args(args)
                .current_dir(&site)
                .env("DJANGO_SITE_DB", &db)
                .env("DJANGO_SUPERUSER_PASSWORD", DJANGO_ADMIN_PASSWORD)
                .output()
                .expect("run manage.py");
            assert!(
                out.status.success(),
                "manage.py {args:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["migrate", "--noinput", "-v0"]);
        run(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.org",
        ]);
        // Tells djsite/wsgi.py the tables exist.
        std::fs::write(db.with_extension("sqlite3.migrated"), b"").expect("write marker");
        db
    });
    DjangoDb(db)
}

/// The fixture site behind nginx. Loaded by file path: the module spec Django documents
/// (`djsite.wsgi:application`) is covered by `django_module_spec` below.
fn django(pass: Pass, mount: &str) -> Stack {
    django_spec("djsite/wsgi.py:application", pass, mount)
}

fn django_spec(spec: &str, pass: Pass, mount: &str) -> Stack {
    let db = django_db();
    let env = format!("DJANGO_SITE_DB={}", db.0.display());
    let mut s = stack(
        spec,
        &fixtures().join("django_site"),
        &["--env", &env],
        pass,
        mount,
    );
    s._db = Some(db);
    s
}

/// Home page and the ~5 KB template page: content, and links made by reverse()/{% url %}.
fn django_pages(s: &Stack) {
    let p = &s.prefix;
    let mut c = s.client();
    let r = c.get(&s.url("/"));
    r.expect_status(200);
    assert_contains(&r, "<h1>wsgid fixture site</h1>");
    assert_contains(&r, &format!(r#"<a id="nav-page" href="{p}/page/">"#));
    assert_contains(&r, &format!(r#"<a id="nav-admin" href="{p}/admin/">"#));

    let r = c.get(&s.url("/page/"));
    r.expect_status(200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        (4500..6000).contains(&r.body.len()),
        "template page is {} bytes, expected about 5 KB",
        r.body.len()
    );
    assert_contains(&r, "<title>Catalogue | wsgid fixture site</title>");
    assert_contains(
        &r,
        &format!(r#"<p id="summary">30 items, rendered by Django on {p}/page/.</p>"#),
    );
    assert_contains(&r, "<td>WSG-0030</td><td>Item Number 30</td><td>75.70</td>");
    assert_contains(
        &r,
        &format!(r#"<td><a href="{p}/form/?sku=WSG-0017">order</a></td>"#),
    );
    assert_eq!(r.text().matches("<tr class=").count(), 30);
    assert!(r.text().ends_with("</html>\n"), "page cut short");
}

/// The admin: the login redirect and the login page, with /app on every link.
fn django_admin_pages(s: &Stack) {
    let p = &s.prefix;
    let mut c = s.client();
    let r = c.get(&s.url("/admin/"));
    r.expect_status(302);
    assert_eq!(
        r.header("location"),
        Some(format!("{p}/admin/login/?next={p}/admin/").as_str())
    );

    let r = c.get(&s.url("/admin/login/?next=/admin/"));
    r.expect_status(200);
    assert_contains(&r, "<title>Log in | Django site admin</title>");
    assert_contains(
        &r,
        &format!(r#"<form action="{p}/admin/login/?next=/admin/" method="post" id="login-form">"#),
    );
    assert_contains(&r, r#"name="csrfmiddlewaretoken""#);
    assert_contains(&r, r#"name="username""#);
    assert_contains(&r, r#"name="password""#);
    // STATIC_URL is relative, so Django prefixes it with SCRIPT_NAME too.
    assert_contains(
        &r,
        &format!(r#"<link rel="stylesheet" href="{p}/static/admin/css/base.css">"#),
    );
    assert!(c.cookie("csrftoken").is_some(), "no csrftoken cookie");
}

/// The hidden CSRF field of a Django form page.
fn csrf_field(r: &Response) -> String {
    let text = r.text();
    let marker = r#"name="csrfmiddlewaretoken" value=""#;
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("no csrfmiddlewaretoken field in:\n{text}"))
        + marker.len();
    let len = text[start..].find('"').expect("end of csrf token");
    text[start..start + len].to_string()
}

/// A form POST succeeds with the CSRF cookie and hidden field, and gets 403 without them.
fn django_csrf_form(s: &Stack) {
    let p = &s.prefix;
    let mut c = s.client();
    let r = c.get(&s.url("/form/"));
    r.expect_status(200);
    assert_contains(
        &r,
        &format!(r#"<form id="greeting" method="post" action="{p}/form/">"#),
    );
    let token = csrf_field(&r);
    assert!(c.cookie("csrftoken").is_some(), "no csrftoken cookie");

    let r = c.post_form(
        &s.url("/form/"),
        &[
            ("csrfmiddlewaretoken", &token),
            ("name", "Ada Lovelace"),
            ("comment", "über & more"),
        ],
    );
    r.expect_status(302);
    let done = format!("{p}/form/done/?name=Ada+Lovelace");
    assert_eq!(r.header("location"), Some(done.as_str()));
    let r = c.get(&done);
    r.expect_status(200);
    assert_contains(&r, r#"<h1 id="thanks">Thanks, Ada Lovelace!</h1>"#);

    // An invalid form with a valid token is the view's 400, not CSRF's 403.
    let r = c.post_form(&s.url("/form/"), &[("csrfmiddlewaretoken", &token)]);
    r.expect_status(400);
    assert_contains(&r, "This field is required.");

    // Cookie but no hidden field: 403.
    let r = c.post_form(&s.url("/form/"), &[("name", "Mallory")]);
    r.expect_status(403);
    assert_contains(&r, "CSRF verification failed. Request aborted.");

    // No cookie, no field: 403.
    let mut stranger = s.client();
    let r = stranger.post_form(&s.url("/form/"), &[("name", "Mallory")]);
    r.expect_status(403);
    assert_contains(&r, "CSRF verification failed. Request aborted.");

    // Hidden field without the cookie it belongs to: 403.
    let r = stranger.post_form(
        &s.url("/form/"),
        &[("csrfmiddlewaretoken", &token), ("name", "Mallory")],
    );
    r.expect_status(403);
}

/// Logging in to the admin: a POST that writes a session to the database, the redirect to
/// the admin index under the prefix, and the index page with the session cookie.
fn django_admin_login(s: &Stack) {
    let p = &s.prefix;
    let mut c = s.client();
    let next = format!("{p}/admin/");
    let r = c.get(&s.url(&format!("/admin/login/?next={next}")));
    r.expect_status(200);
    let token = csrf_field(&r);
    let r = c.post_form(
        &s.url(&format!("/admin/login/?next={next}")),
        &[
            ("csrfmiddlewaretoken", &token),
            ("username", "admin"),
            ("password", DJANGO_ADMIN_PASSWORD),
            ("next", &next),
        ],
    );
    r.expect_status(302);
    assert_eq!(r.header("location"), Some(next.as_str()));
    assert!(
        c.cookie("sessionid").is_some(),
        "no session cookie after login"
    );
    let r = c.get(&next);
    r.expect_status(200);
    assert_contains(&r, "<title>Site administration | Django site admin</title>");
    assert_contains(&r, &format!(r#"<a href="{p}/admin/auth/user/">Users</a>"#));
}

fn django_all(s: &Stack) {
    django_pages(s);
    django_admin_pages(s);
    django_csrf_form(s);
    django_admin_login(s);
}

/// The connections to wsgid's FastCGI port so far (the harness's readiness probes
/// included), to compare with a later count.
fn fcgi_connections(s: &Stack) -> BTreeSet<u16> {
    connections_to(port_of(s.daemon.fcgi.as_deref().expect("FastCGI address")))
}

/// With `fastcgi_keep_conn on` + `keepalive`, 50 more requests all succeed, and everything
/// since `before` went over at most the pool's 4 connections.
fn assert_connections_reused(s: &Stack, before: &BTreeSet<u16>) {
    let mut c = s.client();
    for i in 0..50 {
        let r = c.get(&s.url(&format!("/page/?n={i}")));
        r.expect_status(200);
        assert_contains(&r, "<p id=\"end\">End of catalogue.</p>");
    }
    let now = fcgi_connections(s);
    let new: Vec<_> = now.difference(before).collect();
    assert!(
        !new.is_empty() && new.len() <= 4,
        "nginx opened {} connections to wsgid for all these requests ({new:?}); expected \
         1 to 4 (the keepalive pool)",
        new.len()
    );
}

/// Without keep-conn nginx opens one connection per request (and the count shows it).
fn assert_connection_per_request(s: &Stack) {
    let before = fcgi_connections(s).len();
    let mut c = s.client();
    for _ in 0..10 {
        c.get(&s.url("/")).expect_status(200);
    }
    let after = fcgi_connections(s).len();
    assert!(
        after >= before + 10,
        "10 requests without keep-conn showed {} new connections",
        after.saturating_sub(before)
    );
}

#[test]
fn django_fastcgi_root() {
    let s = django(Pass::FastCgi, "/");
    django_all(&s);
    assert_connection_per_request(&s);
}

#[test]
fn django_fastcgi_app() {
    let s = django(Pass::FastCgi, "/app");
    django_all(&s);
}

#[test]
fn django_fastcgi_keep_conn_root() {
    let s = django(Pass::FastCgiKeepConn, "/");
    let before = fcgi_connections(&s);
    django_all(&s);
    assert_connections_reused(&s, &before);
}

#[test]
fn django_fastcgi_keep_conn_app() {
    let s = django(Pass::FastCgiKeepConn, "/app");
    let before = fcgi_connections(&s);
    django_all(&s);
    assert_connections_reused(&s, &before);
}

#[test]
fn django_scgi_root() {
    let s = django(Pass::Scgi, "/");
    django_all(&s);
}

#[test]
fn django_scgi_app() {
    let s = django(Pass::Scgi, "/app");
    django_all(&s);
}

/// `package.wsgi:application`, as Django's deployment docs and `wsgid --help` spell it: a
/// dotted module whose last part happens to be `wsgi`, not a file called `djsite.wsgi`.
#[test]
fn django_module_spec() {
    let s = django_spec("djsite.wsgi:application", Pass::FastCgi, "/app");
    django_pages(&s);
}

/// Runs `django_module_spec` alone in a child test process whose temporary directory is
/// `tmp`, with `envs` added: its output, and the names of the Django database directories
/// it left in `tmp`.
fn django_test_in_child(tmp: &Path, envs: &[(&str, &Path)]) -> (std::process::Output, Vec<String>) {
    let exe = std::env::current_exe().expect("this test binary's path");
    let out = Command::new(exe)
        .args(["--exact", "django_module_spec"])
        .env("TMPDIR", tmp)
        .envs(envs.iter().copied())
        .output()
        .expect("run the test binary");
    let left = std::fs::read_dir(tmp)
        .expect("read the child's temporary directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("wsgid-test-django-db-"))
        .collect();
    (out, left)
}

/// The shared database's directory goes when the test binary exits after its Django tests
/// passed, like every passing test's scratch directory.
#[test]
fn django_db_removed_when_the_tests_pass() {
    let tmp = scratch("django-db-pass");
    let (out, left) = django_test_in_child(&tmp, &[]);
    assert!(
        out.status.success(),
        "the child test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(left, Vec::<String>::new(), "left in {}", tmp.display());
}

/// ... and stays, migrated, for a look when one of them failed (here: nginx cannot start).
#[test]
fn django_db_kept_when_a_test_fails() {
    let tmp = scratch("django-db-fail");
    let no_nginx = tmp.join("no-nginx");
    let (out, left) = django_test_in_child(&tmp, &[("NGINX", &no_nginx)]);
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "the child test passed:\n{output}");
    assert!(
        output.contains("cannot run"),
        "not nginx's failure:\n{output}"
    );
    assert_eq!(
        left.len(),
        1,
        "database directories left: {left:?}\n{output}"
    );
    let db = tmp.join(&left[0]).join("site.sqlite3.migrated");
    assert!(db.exists(), "{} is missing", db.display());
}

// ---------------------------------------------------------------------------------------
// Flask

fn flask(pass: Pass, mount: &str) -> Stack {
    stack("flask_app:app", &fixtures(), &[], pass, mount)
}

fn flask_all(s: &Stack) {
    let p = &s.prefix;
    let mut c = s.client();

    let r = c.get(&s.url("/"));
    r.expect_status(200);
    assert_contains(&r, &format!(r#"<a id="hello" href="{p}/hello/world">"#));
    assert_contains(&r, &format!(r#"<a id="echo" href="{p}/echo">"#));
    assert_contains(&r, &format!(r#"<a id="go" href="{p}/go">"#));

    let r = c.get(&s.url("/hello/world"));
    r.expect_status(200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text(), "Hello, world!");

    // The request path as the application sees it.
    let r = c.get(&s.url("/environ?x=1"));
    r.expect_status(200);
    let env = r.json();
    assert_eq!(env["SCRIPT_NAME"], p.as_str());
    assert_eq!(env["PATH_INFO"], "/environ");
    assert_eq!(env["QUERY_STRING"], "x=1");
    assert_eq!(env["REQUEST_METHOD"], "GET");

    // The form echo.
    let r = c.get(&s.url("/echo"));
    r.expect_status(200);
    assert_contains(&r, &format!(r#"<form method="post" action="{p}/echo">"#));
    let r = c.post_form(
        &s.url("/echo?q=1&q=2"),
        &[("name", "Ada"), ("comment", "a b&c=d ü"), ("name", "Grace")],
    );
    r.expect_status(200);
    assert_eq!(
        r.json(),
        serde_json::json!({
            "form": {"name": ["Ada", "Grace"], "comment": ["a b&c=d ü"]},
            "args": {"q": ["1", "2"]},
        })
    );

    // The redirect: Location carries the mount point.
    let r = c.get(&s.url("/go"));
    r.expect_status(302);
    let loc = format!("{p}/hello/redirected");
    assert_eq!(r.header("location"), Some(loc.as_str()));
    let r = c.get(&loc);
    r.expect_status(200);
    assert_eq!(r.text(), "Hello, redirected!");

    // Flask's own 404, from inside the mount point.
    let r = c.get(&s.url("/no/such/page"));
    r.expect_status(404);
    assert_contains(&r, "Not Found");
}

#[test]
fn flask_fastcgi_root() {
    flask_all(&flask(Pass::FastCgi, "/"));
}

#[test]
fn flask_fastcgi_app() {
    flask_all(&flask(Pass::FastCgi, "/app"));
}

/// Flask over FastCGI with keep-conn: 22 requests reuse the upstream keepalive pool.
fn flask_keep_conn(mount: &str) {
    let s = flask(Pass::FastCgiKeepConn, mount);
    let before = fcgi_connections(&s);
    flask_all(&s);
    flask_all(&s);
    let new = fcgi_connections(&s).difference(&before).count();
    assert!(
        (1..=4).contains(&new),
        "{new} connections for 22 requests; expected 1 to 4 (the keepalive pool)"
    );
}

#[test]
fn flask_fastcgi_keep_conn_root() {
    flask_keep_conn("/");
}

#[test]
fn flask_fastcgi_keep_conn_app() {
    flask_keep_conn("/app");
}

#[test]
fn flask_scgi_root() {
    flask_all(&flask(Pass::Scgi, "/"));
}

#[test]
fn flask_scgi_app() {
    flask_all(&flask(Pass::Scgi, "/app"));
}

// ---------------------------------------------------------------------------------------
// Large request bodies

const UPLOAD_LEN: usize = 5 * 1024 * 1024;

/// The 5 MiB payload and its SHA-256.
fn payload() -> &'static (Vec<u8>, String) {
    static P: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    P.get_or_init(|| {
        let data = pseudo_random(UPLOAD_LEN, 0x5753_4749_445f_7570);
        let hash = sha256_hex(&data);
        assert_eq!(hash.len(), 64, "sha256sum output");
        (data, hash)
    })
}

/// POSTs the payload to /upload; returns the application's report of what it read.
fn post_upload(s: &Stack, body: Body) -> serde_json::Value {
    let mut c = s.client();
    let r = c.send(
        "POST",
        &s.url("/upload"),
        &[("Content-Type", "application/octet-stream")],
        body,
    );
    r.expect_status(200);
    r.json()
}

/// POSTs the payload to /upload and checks that the application read every byte, in
/// order. Returns the application's report.
fn upload(s: &Stack, body: Body) -> serde_json::Value {
    let (_, hash) = payload();
    let j = post_upload(s, body);
    assert_eq!(j["length"], UPLOAD_LEN, "bytes the application read: {j}");
    assert_eq!(
        j["sha256"],
        hash.as_str(),
        "SHA-256 of what the application read: {j}"
    );
    j
}

fn with_length() -> Body {
    Body::Bytes(payload().0.clone())
}

fn chunked() -> Body {
    Body::Chunked(payload().0.clone(), 64 * 1024)
}

#[test]
fn upload_5mib_fastcgi() {
    let s = flask(Pass::FastCgi, "/");
    let j = upload(&s, with_length());
    assert_eq!(j["content_length"], UPLOAD_LEN.to_string());
    // nginx buffers a chunked upload, then sends it with its length.
    let j = upload(&s, chunked());
    assert_eq!(j["content_length"], UPLOAD_LEN.to_string());
}

#[test]
fn upload_5mib_fastcgi_keep_conn() {
    // Two in a row over a kept connection: the record framing survives 5 MiB bodies.
    let s = flask(Pass::FastCgiKeepConn, "/");
    upload(&s, with_length());
    upload(&s, with_length());
    let r = s.client().get("/hello/after");
    r.expect_status(200);
    assert_eq!(r.text(), "Hello, after!");
}

#[test]
fn upload_5mib_scgi() {
    let s = flask(Pass::Scgi, "/");
    let j = upload(&s, with_length());
    assert_eq!(j["content_length"], UPLOAD_LEN.to_string());
    upload(&s, chunked());
}

#[test]
fn upload_5mib_fastcgi_unbuffered() {
    let s = stack_with("flask_app:app", &fixtures(), &[], Pass::FastCgi, "/", false);
    // Streamed with its length.
    let j = upload(&s, with_length());
    assert_eq!(j["content_length"], UPLOAD_LEN.to_string());
    // Streamed chunked: nginx sends no CONTENT_LENGTH at all, so the application reads to
    // the end of the stream, which wsgi.input_terminated announces.
    let j = upload(&s, chunked());
    assert!(
        j["content_length"].is_null(),
        "CONTENT_LENGTH should be absent for a streamed chunked body: {j}"
    );
    assert_eq!(j["input_terminated"], true, "{j}");
}

/// nginx 1.22 with `scgi_request_buffering off` sends as CONTENT_LENGTH the bytes it has
/// read so far, not the length of the body (nginx/nginx#1118), then streams the rest. SCGI
/// frames the body by CONTENT_LENGTH alone, so the application sees exactly that prefix:
/// wsgid must bound `wsgi.input` by it, answer, drop the excess, and stay healthy. (The
/// nginx example config tells users to leave scgi_request_buffering on.)
#[test]
fn upload_5mib_scgi_unbuffered_gets_what_nginx_announces() {
    let s = stack_with("flask_app:app", &fixtures(), &[], Pass::Scgi, "/", false);
    let data = &payload().0;
    for body in [with_length(), chunked()] {
        let j = post_upload(&s, body);
        let announced: usize = j["content_length"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("SCGI always carries CONTENT_LENGTH: {j}"));
        assert!(announced <= UPLOAD_LEN, "{j}");
        assert_eq!(j["length"], announced, "read exactly CONTENT_LENGTH: {j}");
        assert_eq!(
            j["sha256"],
            sha256_hex(&data[..announced]).as_str(),
            "the bytes read are the start of the body: {j}"
        );
    }
    let r = s.client().get("/hello/after");
    r.expect_status(200);
    assert_eq!(r.text(), "Hello, after!");
}

// ---------------------------------------------------------------------------------------
// SERVER_NAME

/// Without `server_name`, nginx's stock params send SERVER_NAME ''. PEP 3333 requires a
/// non-empty one: wsgid falls back to the Host (nginx's `$host`), then to its own address.
fn server_name_fallback(pass: Pass) {
    let s = flask(pass, "/");
    assert!(
        !s.nginx.config().contains("server_name"),
        "config must leave server_name out"
    );
    let r = s.client().get("/environ");
    r.expect_status(200);
    let env = r.json();
    assert_eq!(env["SERVER_NAME"], "127.0.0.1", "{env}");
    assert_eq!(env["SERVER_PORT"], s.nginx.port.to_string(), "{env}");

    // HTTP/1.0 with no Host header: nginx's $host is the (empty) server name too.
    let r = raw_request(
        s.nginx.port,
        b"GET /environ HTTP/1.0\r\nUser-Agent: wsgid-test\r\n\r\n",
    );
    r.expect_status(200);
    let env = r.json();
    assert_eq!(env["SERVER_NAME"], "127.0.0.1", "{env}");
    assert_eq!(env["SERVER_PORT"], s.nginx.port.to_string(), "{env}");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.0", "{env}");
}

#[test]
fn server_name_empty_fastcgi() {
    server_name_fallback(Pass::FastCgi);
}

#[test]
fn server_name_empty_scgi() {
    server_name_fallback(Pass::Scgi);
}

#[test]
fn server_name_configured_passes_through() {
    let d = Daemon::builder("flask_app:app")
        .fastcgi()
        .arg("--virtualenv")
        .arg(&test_venv().display().to_string())
        .arg("--pythonpath")
        .arg(&fixtures().display().to_string())
        .start();
    let site = Site::new(
        Pass::FastCgi,
        d.fcgi.as_deref().expect("FastCGI address"),
        "/",
    )
    .server_name("wsgid.example");
    let nginx = Nginx::start(&site);
    let s = Stack {
        nginx,
        daemon: d,
        prefix: String::new(),
        _db: None,
    };
    let r = s.client().get("/environ");
    r.expect_status(200);
    assert_eq!(r.json()["SERVER_NAME"], "wsgid.example");
}

// ---------------------------------------------------------------------------------------
// Unix sockets

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// nginx started as root runs its workers as `nobody`; `--socket-mode 0666` lets them
/// connect to sockets wsgid (also root here) creates. Over FastCGI and SCGI.
#[test]
fn unix_sockets_with_socket_mode() {
    let dir = scratch("unix");
    let fcgi = dir.join("fcgi.sock");
    let scgi = dir.join("scgi.sock");
    let d = Daemon::builder("hello.py")
        .arg("--fastcgi")
        .arg(&format!("unix:{}", fcgi.display()))
        .arg("--scgi")
        .arg(&format!("unix:{}", scgi.display()))
        .args(&["--socket-mode", "0666"])
        .start();
    for sock in [&fcgi, &scgi] {
        let mode = std::fs::metadata(sock)
            .unwrap_or_else(|e| panic!("{}: {e}", sock.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o666, "mode of {}", sock.display());
    }
    let f = Nginx::start(&Site::new(
        Pass::FastCgi,
        &format!("unix:{}", fcgi.display()),
        "/",
    ));
    let s = Nginx::start(&Site::new(
        Pass::Scgi,
        &format!("unix:{}", scgi.display()),
        "/",
    ));
    for n in [&f, &s] {
        let r = n.client().get("/");
        if r.status != 200 {
            eprintln!("---- wsgid log ----\n{}", d.log());
        }
        r.expect_status(200);
        assert_eq!(r.text(), "Hello, world!\n");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
}

/// The other side of the test above: with an owner-only socket, nginx's `nobody` workers
/// are refused (only meaningful when the test runs as root).
#[test]
fn unix_socket_mode_0600_refuses_nginx_workers() {
    if !is_root() {
        eprintln!("skipped: nginx's workers switch user only when it starts as root");
        return;
    }
    let dir = scratch("unix-0600");
    let fcgi = dir.join("fcgi.sock");
    let _d = Daemon::builder("hello.py")
        .arg("--fastcgi")
        .arg(&format!("unix:{}", fcgi.display()))
        .args(&["--socket-mode", "0600"])
        .start();
    let n = Nginx::start(&Site::new(
        Pass::FastCgi,
        &format!("unix:{}", fcgi.display()),
        "/",
    ));
    let r = n.client().get("/");
    r.expect_status(502);
    let log = n.error_log();
    assert!(
        log.contains("(13: Permission denied) while connecting to upstream"),
        "error.log:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------
// The example nginx config shipped in conf.d/

/// conf.d/nginx-wsgid.conf, with its addresses pointed at three wsgid instances (the app
/// at /, at /app and over SCGI at /legacy), serves all three, and shows its own error page
/// for the application's 500 where it intercepts errors.
#[test]
fn conf_d_nginx_example_serves_its_three_locations() {
    let venv = test_venv();
    let venv = venv.display().to_string();
    let pythonpath = fixtures().display().to_string();
    let dir = scratch("nginx-example");
    let legacy_sock = dir.join("legacy.sock");
    let start = |b: common::Builder, mount: Option<&str>| {
        let b = b.args(&["--virtualenv", &venv, "--pythonpath", &pythonpath]);
        match mount {
            Some(m) => b.args(&["--mount", m]).start(),
            None => b.start(),
        }
    };
    let root = start(Daemon::builder("flask_app:app").fastcgi(), None);
    let app = start(Daemon::builder("flask_app:app").fastcgi(), Some("/app"));
    let legacy = start(
        Daemon::builder("flask_app:app")
            .arg("--scgi")
            .arg(&format!("unix:{}", legacy_sock.display()))
            .args(&["--socket-mode", "0666"]),
        Some("/legacy"),
    );

    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/nginx-wsgid.conf"),
    )
    .expect("read conf.d/nginx-wsgid.conf");
    let port = common::free_port();
    let snippet = example
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
        .replace(
            "127.0.0.1:9000",
            root.fcgi.as_deref().expect("FastCGI address"),
        )
        .replace(
            "127.0.0.1:9001",
            app.fcgi.as_deref().expect("FastCGI address"),
        )
        .replace(
            "unix:/run/wsgid/legacy.sock",
            &format!("unix:{}", legacy_sock.display()),
        )
        .replace("/srv/mysite/errors/", &format!("{}/errors/", dir.display()));
    std::fs::create_dir_all(dir.join("errors")).expect("create errors dir");
    std::fs::write(dir.join("errors/50x.html"), "nginx's own error page\n").expect("write 50x");
    for (from, to) in [
        ("listen 80;", "listen"),
        ("127.0.0.1:9000", "upstream"),
        ("127.0.0.1:9001", "/app"),
        ("unix:/run/wsgid/legacy.sock", "/legacy"),
        ("fastcgi_intercept_errors on;", "error page"),
        ("/srv/mysite/errors/", "error page"),
    ] {
        assert!(
            example.contains(from),
            "the example lost its {to} line {from:?}"
        );
    }
    std::fs::write(dir.join("nginx-wsgid.conf"), snippet).expect("write snippet");
    // The snippet's `include fastcgi_params` is relative to the config's directory.
    for params in ["fastcgi_params", "scgi_params"] {
        let _ = std::os::unix::fs::symlink(Path::new("/etc/nginx").join(params), dir.join(params));
    }
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/client_body;\n    \
         fastcgi_temp_path {d}/fastcgi_temp;\n    scgi_temp_path {d}/scgi_temp;\n    \
         proxy_temp_path {d}/proxy_temp;\n    uwsgi_temp_path {d}/uwsgi_temp;\n    \
         include {d}/nginx-wsgid.conf;\n}}\n"
    );
    let nginx = Nginx::start_conf(&conf, port, dir.to_path_buf());
    let mut c = nginx.client();
    for (prefix, daemon) in [("", &root), ("/app", &app), ("/legacy", &legacy)] {
        let r = c.get(&format!("{prefix}/"));
        if r.status != 200 {
            eprintln!("---- wsgid log ----\n{}", daemon.log());
        }
        r.expect_status(200);
        assert_contains(
            &r,
            &format!(r#"<a id="hello" href="{prefix}/hello/world">"#),
        );
        let r = c.get(&format!("{prefix}/environ"));
        r.expect_status(200);
        let env = r.json();
        assert_eq!(env["SCRIPT_NAME"], prefix, "{env}");
        assert_eq!(env["PATH_INFO"], "/environ", "{env}");
        assert_eq!(env["SERVER_NAME"], "example.org", "{env}");
    }
    // fastcgi_intercept_errors at /: the application's 500 becomes nginx's page, its 404
    // passes as it is; at /app (no interception) the application's 500 passes too.
    let r = c.get("/fail");
    r.expect_status(500);
    assert_eq!(r.text(), "nginx's own error page\n");
    let r = c.get("/no-such-page");
    r.expect_status(404);
    assert!(r.text().contains("Not Found"), "{}", r.text());
    let r = c.get("/app/fail");
    r.expect_status(500);
    assert!(r.text().contains("Internal Server Error"), "{}", r.text());
    // /app without its slash: nginx redirects to /app/.
    let r = c.get("/app");
    r.expect_status(301);
    assert!(
        r.header("location").is_some_and(|l| l.ends_with("/app/")),
        "{:?}",
        r.headers
    );
    for (prefix, daemon) in [("/", &root), ("/app", &app), ("/legacy", &legacy)] {
        common::matrix::assert_no_mount_warning(
            &format!("conf.d/nginx-wsgid.conf at {prefix}"),
            &daemon.log(),
        );
    }
}

// ---------------------------------------------------------------------------------------
// The request matrix every front end passes (tests/common/matrix.rs)

/// One wsgid (FastCGI and SCGI) serving fixtures/frontend_app.py at `mount`, and one nginx
/// with a server per way of passing requests on: fastcgi_pass, with keep-conn and an
/// upstream keepalive pool, with request buffering off, and scgi_pass. The location at
/// /app is `location /app`, so nginx forwards the bare mount and `/appx`, and wsgid's mount
/// rule is what keeps `/appx` from the application.
fn nginx_matrix(mount: &str) {
    let (daemon, fcgi, scgi) = common::matrix::backend(mount);
    let sites = [
        ("nginx fastcgi_pass", Site::new(Pass::FastCgi, &fcgi, mount)),
        (
            "nginx fastcgi_pass, fastcgi_keep_conn on + keepalive",
            Site::new(Pass::FastCgiKeepConn, &fcgi, mount),
        ),
        (
            "nginx fastcgi_pass, fastcgi_request_buffering off",
            Site::new(Pass::FastCgi, &fcgi, mount).request_buffering(false),
        ),
        ("nginx scgi_pass", Site::new(Pass::Scgi, &scgi, mount)),
    ];
    let (_nginx, ports) = Nginx::start_many(
        &sites
            .iter()
            .map(|(_, s)| s.clone().bare_mount())
            .collect::<Vec<_>>(),
    );
    let front_ends: Vec<_> = sites
        .iter()
        .zip(&ports)
        .map(|((name, _), port)| common::matrix::FrontEnd::new(name, *port, mount))
        .collect();
    common::matrix::run_all(&front_ends, &|| daemon.log());
}

#[test]
fn matrix_nginx_root() {
    nginx_matrix("/");
}

#[test]
fn matrix_nginx_app() {
    nginx_matrix("/app");
}

/// nginx terminating TLS: the stock params send HTTPS=on, and the application sees
/// wsgi.url_scheme "https" over FastCGI and SCGI alike; plain HTTP beside it stays "http".
#[test]
fn tls_front_end_gives_https_scheme() {
    let daemon = Daemon::builder("frontend_app").fastcgi().scgi().start();
    let fcgi = daemon.fcgi.clone().expect("FastCGI address");
    let scgi = daemon.scgi.clone().expect("SCGI address");
    let dir = scratch("nginx-tls");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("run openssl (Debian: openssl, which ca-certificates brings)");
    assert!(made.status.success(), "openssl: {made:?}");
    let (tls_fcgi, tls_scgi, plain) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let d = dir.display();
    let server = |port: u16, ssl: bool, pass: &str, backend: &str| {
        let (listen, certs) = if ssl {
            (
                format!("{port} ssl"),
                format!("ssl_certificate {d}/cert.pem;\n ssl_certificate_key {d}/key.pem;"),
            )
        } else {
            (port.to_string(), String::new())
        };
        format!(
            "server {{ listen 127.0.0.1:{listen}; {certs}\n location / {{ include /etc/nginx/{pass}_params; {pass}_pass {backend}; }} }}\n"
        )
    };
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log {d}/access.log;\n client_body_temp_path {d}/client_body;\n \
         fastcgi_temp_path {d}/fastcgi_temp;\n scgi_temp_path {d}/scgi_temp;\n \
         proxy_temp_path {d}/proxy_temp;\n uwsgi_temp_path {d}/uwsgi_temp;\n{}{}{}}}\n",
        server(tls_fcgi, true, "fastcgi", &fcgi),
        server(tls_scgi, true, "scgi", &scgi),
        server(plain, false, "fastcgi", &fcgi),
    );
    let _nginx = Nginx::start_conf(&conf, plain, dir.to_path_buf());
    for (scheme, port) in [("https", tls_fcgi), ("https", tls_scgi), ("http", plain)] {
        let out = Command::new("curl")
            .args(["-sk", "--max-time", "20"])
            .arg(format!("{scheme}://127.0.0.1:{port}/x"))
            .output()
            .expect("run curl");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{scheme} on {port}: not the application's JSON ({e}): {:?}; wsgid log:\n{}",
                out,
                daemon.log()
            )
        });
        assert_eq!(report["url_scheme"], scheme, "{report}");
    }
}
