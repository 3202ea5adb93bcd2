//! The mount mismatch warning of a running wsgid: a front end whose path params disagree
//! with the configured mount (a SCRIPT_NAME the request path does not start with, or only
//! requests outside the mount) gets one warning per listener, naming the line that fixes
//! it, whichever worker serves the requests; a correct setup gets none.

mod common;

use common::fcgi::{self, Request};
use common::{scgi, Daemon};

const APP: &str = "frontend_app";

/// What each warning starts with.
const MARK: &str = "mount mismatch on ";

/// The requests outside the mount that the warning waits for (the worker's
/// `OUTSIDE_BEFORE_WARNING`).
const OUTSIDE_BEFORE_WARNING: usize = 3;

/// The warnings logged so far, with the listener each names.
fn warnings(d: &Daemon) -> Vec<String> {
    d.log()
        .lines()
        .filter(|l| l.contains(MARK))
        .map(str::to_owned)
        .collect()
}

/// The warnings about listener `name` ("fastcgi 127.0.0.1:PORT").
fn about(d: &Daemon, name: &str) -> Vec<String> {
    let on = format!("{MARK}{name}:");
    warnings(d)
        .into_iter()
        .filter(|l| l.contains(&on))
        .collect()
}

/// Waits until each of `names` has been warned about, then a little longer for any
/// second warning, and returns each one's warnings.
fn settled(d: &Daemon, names: &[String]) -> Vec<Vec<String>> {
    for name in names {
        d.wait_log(&format!("{MARK}{name}:"), 10);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    names.iter().map(|n| about(d, n)).collect()
}

/// Sends `req` `times` times to each listener, each on a connection of its own (so that
/// the connections spread over the workers); the statuses.
fn send(d: &Daemon, req: &Request, times: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..times {
        statuses.push(
            fcgi::request(d.fcgi.as_deref().expect("fcgi"), req)
                .cgi()
                .status,
        );
        statuses.push(scgi::request(d.scgi.as_deref().expect("scgi"), req).status);
    }
    statuses
}

fn names(d: &Daemon) -> Vec<String> {
    vec![
        format!("fastcgi {}", d.fcgi.as_deref().expect("fcgi")),
        format!("scgi {}", d.scgi.as_deref().expect("scgi")),
    ]
}

/// What nginx sends for `/app/x` from `location /app/ { rewrite ^/app(/.*)$ $1 break;
/// include fastcgi_params; }`: $uri and $fastcgi_script_name are the rewritten `/x`,
/// REQUEST_URI is what the client asked for.
fn stripped_by_the_front_end() -> Request {
    Request::get("/app/x?q=1")
        .set("DOCUMENT_URI", "/x")
        .set("SCRIPT_NAME", "/x")
}

fn one_each(per_listener: &[Vec<String>]) {
    for w in per_listener {
        assert_eq!(w.len(), 1, "one warning per listener: {per_listener:#?}");
        assert!(w[0].contains(" WARN "), "{}", w[0]);
    }
}

/// (a) with the mount left at the root and no configuration file: the application is
/// served `/x` for `/app/x`; the warning says to start wsgid with `--mount /app` and to
/// stop stripping the prefix. Two workers, one warning per listener.
#[test]
fn a_stripped_prefix_is_warned_once_per_listener_naming_the_option() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .args(&["--processes", "2"])
        .start();
    let statuses = send(&d, &stripped_by_the_front_end(), 6);
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let per_listener = settled(&d, &names(&d));
    one_each(&per_listener);
    for w in per_listener.iter().flatten() {
        assert!(
            w.contains("SCRIPT_NAME \"/x\" with REQUEST_URI \"/app/x?q=1\""),
            "{w}"
        );
        assert!(w.contains("start wsgid with --mount /app"), "{w}");
        assert!(
            w.contains("rewrite"),
            "the front end's side of the fix: {w}"
        );
    }
    assert_eq!(warnings(&d).len(), 2, "{}", d.log());
}

/// (b) with `--mount /app` and a front end that forwards paths without it: the first
/// requests on each listener all get 404; one short of the limit says nothing, at it
/// one warning per listener naming `--mount /app`, past it no more.
#[test]
fn requests_only_outside_the_mount_are_warned_at_the_limit_naming_the_option() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .args(&["--mount", "/app"])
        .start();
    let outside = Request::get("/x");
    let statuses = send(&d, &outside, OUTSIDE_BEFORE_WARNING - 1);
    assert!(statuses.iter().all(|&s| s == 404), "{statuses:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(warnings(&d), Vec::<String>::new(), "one short of the limit");
    send(&d, &outside, 1);
    send(&d, &outside, 2 * OUTSIDE_BEFORE_WARNING);
    let per_listener = settled(&d, &names(&d));
    one_each(&per_listener);
    for w in per_listener.iter().flatten() {
        assert!(
            w.contains(&format!(
                "the first {OUTSIDE_BEFORE_WARNING} requests were all outside the mount point \"/app\""
            )),
            "{w}"
        );
        assert!(w.contains("the last: GET /x"), "{w}");
        assert!(w.contains("change --mount /app to"), "{w}");
        assert!(
            w.contains("location /app/"),
            "the front end's side of the fix: {w}"
        );
    }
}

/// A setup that is right: requests inside the mount, then outside ones (lighttpd at
/// `"/app"` forwards `/appx/z`; clients ask for anything): no warning at all.
#[test]
fn outside_requests_after_one_inside_are_not_warned() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .args(&["--mount", "/app"])
        .start();
    let statuses = send(&d, &Request::get("/x"), OUTSIDE_BEFORE_WARNING - 1);
    assert!(statuses.iter().all(|&s| s == 404), "{statuses:?}");
    assert!(send(&d, &Request::get("/app/x"), 1)
        .iter()
        .all(|&s| s == 200));
    let statuses = send(&d, &Request::get("/appx/z"), 3 * OUTSIDE_BEFORE_WARNING);
    assert!(statuses.iter().all(|&s| s == 404), "{statuses:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(warnings(&d), Vec::<String>::new(), "{}", d.log());
}

/// With the mount from a configuration file, both warnings name the file and the line of
/// its `mount` key.
#[test]
fn warnings_name_the_file_and_line_of_the_mount_key() {
    let dir = common::scratch("mount-config");
    let conf = dir.join("wsgid.toml");
    std::fs::write(
        &conf,
        "# the application\nthreads = 2\n\nmount = \"/app\"\n",
    )
    .expect("write config");
    let conf = conf.display().to_string();
    let d = Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .args(&["--config", &conf])
        .start();
    // On the FastCGI listener, only requests outside; on the SCGI one, a stripped prefix.
    let fcgi_addr = d.fcgi.clone().expect("fcgi");
    let scgi_addr = d.scgi.clone().expect("scgi");
    for _ in 0..OUTSIDE_BEFORE_WARNING + 2 {
        assert_eq!(
            fcgi::request(&fcgi_addr, &Request::get("/x")).cgi().status,
            404
        );
    }
    let static_script_name = stripped_by_the_front_end()
        .set("SCRIPT_NAME", "/app")
        .set("PATH_INFO", "/x");
    assert_eq!(scgi::request(&scgi_addr, &static_script_name).status, 404);
    let names = names(&d);
    let per_listener = settled(&d, &names);
    one_each(&per_listener);
    let place = format!("{conf}:4");
    let outside = &per_listener[0][0];
    assert!(
        outside.contains(&format!("change mount = \"/app\" at {place} to")),
        "{outside}"
    );
    let mismatch = &per_listener[1][0];
    assert!(
        mismatch.contains("SCRIPT_NAME \"/app\" with DOCUMENT_URI \"/x\""),
        "{mismatch}"
    );
    // The mount is right; the front end is to change.
    assert!(
        mismatch.contains("keep the mount point as it is"),
        "{mismatch}"
    );
}

/// An `[[app]]` table without a mount: the warning says which table to add it to.
#[test]
fn an_unset_mount_is_to_be_added_to_the_app_table() {
    let dir = common::scratch("mount-table");
    let conf = dir.join("wsgid.toml");
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    std::fs::write(
        &conf,
        format!("threads = 2\n\n[[app]]\nname = \"site\"\napp = \"{APP}\"\nfastcgi = \"{addr}\"\n"),
    )
    .expect("write config");
    let conf = conf.display().to_string();
    let d = Daemon::builder("")
        .cwd(&common::fixtures())
        .args(&["--config", &conf])
        .start();
    assert_eq!(
        fcgi::request(&addr, &stripped_by_the_front_end())
            .cgi()
            .status,
        200
    );
    let per_listener = settled(&d, &[format!("fastcgi {addr}")]);
    one_each(&per_listener);
    let w = &per_listener[0][0];
    assert!(
        w.contains(&format!(
            "add mount = \"/app\" to the [[app]] table at {conf}:3"
        )),
        "{w}"
    );
}
