//! Offload (`--offload`, `--offload-map`): a `wsgi.file_wrapper` response over a regular
//! file becomes an `X-Accel-Redirect` or `X-Sendfile` header with an empty body, and
//! everything else (files outside the map, not read from their start, deleted or replaced
//! after they were opened, a shorter Content-Length, a status other than 200, a header of
//! the app's own) is served by wsgid as before, straight over FastCGI and SCGI. App:
//! fixtures/offload_app.py.

mod common;

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::fcgi::{self, CgiResponse, Request, REQUEST_COMPLETE};
use common::{scgi, scratch, Daemon, Scratch};

const APP: &str = "offload_app";
const URI: &str = "/_protected/media";

/// `bytes` percent-encoded for a query string.
fn q(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

fn qp(p: &Path) -> String {
    q(p.as_os_str().as_bytes())
}

/// A scratch directory (its real path: the one a descriptor reports) with `media/`, which
/// the tests map, and `media2/` beside it, which only shares its prefix.
struct Tree {
    _dir: Scratch,
    root: PathBuf,
    media: PathBuf,
    media2: PathBuf,
}

fn tree(name: &str) -> Tree {
    let dir = scratch(name);
    let root = std::fs::canonicalize(&*dir).expect("canonical scratch dir");
    let (media, media2) = (root.join("media"), root.join("media2"));
    for d in [&media, &media2] {
        std::fs::create_dir(d).expect("create a media dir");
    }
    Tree {
        _dir: dir,
        root,
        media,
        media2,
    }
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn accel(t: &Tree) -> Daemon {
    let map = format!("{}={URI}", t.media.display());
    Daemon::builder(APP)
        .fastcgi()
        .scgi()
        .args(&["--offload", "x-accel-redirect", "--offload-map", &map])
        .env("RUST_LOG", "wsgid=debug")
        .start()
}

fn get(d: &Daemon, uri: &str) -> CgiResponse {
    let resp = fcgi::request(
        d.fcgi.as_deref().expect("FastCGI address"),
        &Request::get(uri),
    );
    assert_eq!(resp.end, Some((0, REQUEST_COMPLETE)), "{uri}");
    resp.cgi()
}

fn header<'a>(r: &'a CgiResponse, name: &str) -> Vec<&'a str> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The response is the file itself, with no offload header.
#[track_caller]
fn served(r: &CgiResponse, want: &[u8], what: &str) {
    assert_eq!(
        r.status,
        200,
        "{what}: {}",
        String::from_utf8_lossy(&r.head)
    );
    assert!(
        header(r, "x-accel-redirect").is_empty() && header(r, "x-sendfile").is_empty(),
        "{what}: offloaded: {}",
        String::from_utf8_lossy(&r.head)
    );
    assert_eq!(r.body.len(), want.len(), "{what}");
    assert!(r.body == want, "{what}: bytes differ");
}

/// The response is the header `name: value` with no body and no Content-Length.
#[track_caller]
fn offloaded(r: &CgiResponse, name: &str, value: &str, what: &str) {
    let head = String::from_utf8_lossy(&r.head);
    assert_eq!(r.status, 200, "{what}: {head}");
    assert_eq!(header(r, name), vec![value], "{what}: {head}");
    assert!(header(r, "content-length").is_empty(), "{what}: {head}");
    assert!(
        r.body.is_empty(),
        "{what}: a body of {} bytes",
        r.body.len()
    );
}

#[test]
fn x_accel_redirect_names_a_mapped_file_with_an_empty_body() {
    let t = tree("offload-accel");
    let file = t.media.join("report.pdf");
    write(&file, &vec![b'p'; 300_000]);
    write(&t.media.join("sub.bin"), b"x");
    std::fs::create_dir(t.media.join("deep")).expect("mkdir deep");
    write(&t.media.join("deep/er.bin"), b"deeper");
    let d = accel(&t);
    let uri = format!(
        "/file?path={}&type=application/pdf&disposition={}&cl=size",
        qp(&file),
        q(b"attachment; filename=\"report.pdf\"")
    );
    let r = get(&d, &uri);
    offloaded(
        &r,
        "X-Accel-Redirect",
        &format!("{URI}/report.pdf"),
        "fastcgi",
    );
    // What the front end needs for its own response is kept.
    assert_eq!(header(&r, "content-type"), vec!["application/pdf"]);
    assert_eq!(
        header(&r, "content-disposition"),
        vec!["attachment; filename=\"report.pdf\""]
    );
    let r = scgi::request(
        d.scgi.as_deref().expect("SCGI address"),
        &Request::get(&uri),
    );
    offloaded(&r, "X-Accel-Redirect", &format!("{URI}/report.pdf"), "scgi");
    // Without Content-Length, unbuffered, in a subdirectory.
    let r = get(
        &d,
        &format!("/file?raw=1&path={}", qp(&t.media.join("deep/er.bin"))),
    );
    offloaded(
        &r,
        "X-Accel-Redirect",
        &format!("{URI}/deep/er.bin"),
        "FileIO",
    );
    // Opened through a symbolic link from outside the map: the file itself is inside.
    let link = t.root.join("link-in.bin");
    std::os::unix::fs::symlink(t.media.join("sub.bin"), &link).expect("symlink");
    let r = get(&d, &format!("/file?path={}", qp(&link)));
    offloaded(
        &r,
        "X-Accel-Redirect",
        &format!("{URI}/sub.bin"),
        "via a symlink",
    );
    // Renamed inside the map once open: its new name.
    let before = t.media.join("before.bin");
    write(&before, b"moved");
    let after = t.media.join("after.bin");
    let r = get(
        &d,
        &format!("/file?path={}&rename={}", qp(&before), qp(&after)),
    );
    offloaded(
        &r,
        "X-Accel-Redirect",
        &format!("{URI}/after.bin"),
        "renamed",
    );
    d.wait_log(
        "file offloaded: X-Accel-Redirect: /_protected/media/report.pdf",
        10,
    );
}

#[test]
fn files_that_cannot_be_offloaded_as_they_are_are_served_by_wsgid() {
    let t = tree("offload-kept");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let file = t.media.join("a.bin");
    write(&file, &data);
    let beside = t.media2.join("b.bin");
    write(&beside, &data);
    let secret = t.root.join("secret.bin");
    write(&secret, &data);
    std::os::unix::fs::symlink(&secret, t.media.join("link-out.bin")).expect("symlink");
    let d = accel(&t);
    let f = qp(&file);
    for (query, want, what) in [
        (
            format!("path={}", qp(&beside)),
            &data[..],
            "a directory sharing the prefix",
        ),
        (
            format!("path={}", qp(&t.media.join("link-out.bin"))),
            &data[..],
            "a symlink in the map to a file outside it",
        ),
        (
            format!("path={}", qp(&secret)),
            &data[..],
            "outside the map",
        ),
        (
            format!("path={f}&seek=10"),
            &data[10..],
            "not from its start",
        ),
        (
            format!("path={f}&cl=1000"),
            &data[..1000],
            "a shorter Content-Length",
        ),
        (
            format!("path={f}&status={}", q(b"404 Not Found")),
            &data[..],
            "status 404",
        ),
    ] {
        let r = get(&d, &format!("/file?{query}"));
        if what == "status 404" {
            assert_eq!(r.status, 404, "{what}");
            assert!(header(&r, "x-accel-redirect").is_empty(), "{what}");
            assert!(r.body == want, "{what}: bytes differ");
            continue;
        }
        served(&r, want, what);
    }
    // write() before the file: the response had started.
    let r = get(&d, &format!("/file?path={f}&write=1"));
    let mut want = b"x".to_vec();
    want.extend_from_slice(&data);
    served(&r, &want, "after write()");
    // Deleted, or another file put under its name, once open: the front end would find
    // nothing, or the other file.
    for (flag, what) in [("unlink", "deleted"), ("replace", "replaced")] {
        let gone = t.media.join(format!("{flag}.bin"));
        write(&gone, &data);
        let r = get(&d, &format!("/file?path={}&{flag}=1", qp(&gone)));
        served(&r, &data, what);
    }
    // Renamed out of the map once open.
    let moving = t.media.join("moving.bin");
    write(&moving, &data);
    let r = get(
        &d,
        &format!(
            "/file?path={}&rename={}",
            qp(&moving),
            qp(&t.root.join("out.bin"))
        ),
    );
    served(&r, &data, "renamed out of the map");
    // No descriptor.
    let r = get(&d, "/bytesio");
    served(&r, &b"in memory ".repeat(1000), "BytesIO");
    // The app's own header passes as it is, with the file's bytes: never a second one.
    let r = get(
        &d,
        &format!("/file?path={f}&own={}", q(b"X-Accel-Redirect:/elsewhere/a")),
    );
    assert_eq!(header(&r, "x-accel-redirect"), vec!["/elsewhere/a"]);
    assert!(r.body == data, "the app's own header: bytes differ");
    d.wait_log(
        "file not offloaded: the file is outside every offload_map directory",
        10,
    );
}

#[test]
fn names_that_would_break_a_header_are_percent_encoded() {
    let t = tree("offload-names");
    let name: &[u8] = b"a b\r\nX-Evil: 1?x=%41#\xff\xe9.bin";
    let file = t.media.join(std::ffi::OsStr::from_bytes(name));
    write(&file, b"odd");
    let d = accel(&t);
    let r = get(&d, &format!("/file?path={}", qp(&file)));
    offloaded(
        &r,
        "X-Accel-Redirect",
        &format!("{URI}/a%20b%0D%0AX-Evil%3A%201%3Fx%3D%2541%23%FF%E9.bin"),
        "odd name",
    );
    assert!(header(&r, "x-evil").is_empty(), "a header was injected");
}

#[test]
fn x_sendfile_names_the_files_path() {
    let t = tree("offload-sendfile");
    let file = t.media.join("a b.bin");
    write(&file, b"sendfile");
    let odd = t.media.join(std::ffi::OsStr::from_bytes(b"\xff.bin"));
    write(&odd, b"not utf-8");
    let secret = t.root.join("elsewhere.bin");
    write(&secret, b"elsewhere");
    // No map: every file, under its own path.
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--offload", "x-sendfile"])
        .start();
    let r = get(&d, &format!("/file?path={}", qp(&file)));
    let path = format!("{}/a%20b.bin", t.media.display());
    offloaded(&r, "X-Sendfile", &path, "no map");
    let r = get(&d, &format!("/file?path={}", qp(&secret)));
    offloaded(
        &r,
        "X-Sendfile",
        &format!("{}/elsewhere.bin", t.root.display()),
        "no map, anywhere",
    );
    // lighttpd refuses a path that is not UTF-8: wsgid sends it.
    let r = get(&d, &format!("/file?path={}", qp(&odd)));
    served(&r, b"not utf-8", "not UTF-8");
    drop(d);
    // A map: only its directories, under the path the front end sees.
    let map = format!("{}=/srv/front/media", t.media.display());
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--offload", "x-sendfile", "--offload-map", &map])
        .start();
    let r = get(&d, &format!("/file?path={}", qp(&file)));
    offloaded(&r, "X-Sendfile", "/srv/front/media/a%20b.bin", "mapped");
    let r = get(&d, &format!("/file?path={}", qp(&secret)));
    served(&r, b"elsewhere", "outside the map");
}

#[test]
fn off_by_default_and_a_map_is_needed_for_x_accel_redirect() {
    let t = tree("offload-off");
    let file = t.media.join("a.bin");
    write(&file, b"plain");
    let d = Daemon::builder(APP).fastcgi().start();
    served(
        &get(&d, &format!("/file?path={}", qp(&file))),
        b"plain",
        "off",
    );
    let (st, out) = Daemon::builder(APP)
        .args(&["--fastcgi", "127.0.0.1:0", "--offload", "x-accel-redirect"])
        .run();
    assert_eq!(st.code(), Some(2), "{out}");
    assert!(
        out.contains("--offload: x-accel-redirect needs offload_map"),
        "{out}"
    );
}
