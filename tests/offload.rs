//! Offload (`--offload`, `--offload-map`): a `wsgi.file_wrapper` response over a regular
//! file becomes an `X-Accel-Redirect` or `X-Sendfile` header with an empty body, and
//! everything else (files outside the map, not read from their start, deleted or replaced
//! after they were opened, a shorter Content-Length, a status other than 200, a header of
//! the app's own) is served by wsgid as before. First straight over FastCGI and SCGI, then
//! end to end through the real nginx, where a file over 100 MiB arrives intact while the
//! worker reads none of it. App: fixtures/offload_app.py.

mod common;

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::fcgi::{self, CgiResponse, Request, REQUEST_COMPLETE};
use common::frontend::{sha256_hex, Nginx};
use common::{children, scgi, scratch, Daemon, Scratch};

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

// ---------------------------------------------------------------------------------------
// Through nginx

/// nginx passing everything to wsgid (FastCGI, keep-conn, an upstream keepalive pool),
/// with the internal location that aliases `media`.
fn nginx(fcgi: &str, media: &Path) -> Nginx {
    let port = common::free_port();
    let dir = scratch("offload-nginx").keep();
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
             access_log {d}/access.log;\n\
             client_body_temp_path {d}/client_body;\n\
             fastcgi_temp_path {d}/fastcgi_temp;\n\
             scgi_temp_path {d}/scgi_temp;\n\
             proxy_temp_path {d}/proxy_temp;\n\
             uwsgi_temp_path {d}/uwsgi_temp;\n\
             upstream wsgid {{ server {fcgi}; keepalive 4; }}\n\
             server {{\n\
                 listen 127.0.0.1:{port};\n\
                 location / {{\n\
                     include /etc/nginx/fastcgi_params;\n\
                     fastcgi_keep_conn on;\n\
                     fastcgi_pass wsgid;\n\
                 }}\n\
                 location {URI}/ {{\n\
                     internal;\n\
                     alias {}/;\n\
                     add_header X-Content-Type-Options nosniff;\n\
                 }}\n\
             }}\n\
         }}\n",
        media.display()
    );
    Nginx::start_conf(&conf, port, dir)
}

/// Bytes the process has read (`rchar` of /proc/PID/io: every read, pread and the like,
/// sockets included) and its CPU time in ms (utime + stime).
fn io_and_cpu(pid: &str) -> (u64, u64) {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("read /proc/PID/io");
    let rchar = io
        .lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("rchar in /proc/PID/io");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // f[0] is field 3 (state): utime is field 14, stime 15.
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (rchar, (f[11] + f[12]) * 1000 / hz)
}

/// A file of `mib` MiB that is not all one byte: 1 MiB of noise, each copy stamped with
/// its index, so a block out of place changes the hash.
fn big_file(path: &Path, mib: usize) {
    use std::io::Write;
    let block = common::frontend::pseudo_random(1 << 20, 77);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create big file"));
    for i in 0..mib {
        f.write_all(&(i as u64).to_le_bytes()).expect("write");
        f.write_all(&block[8..]).expect("write");
    }
    f.flush().expect("flush big file");
}

fn sha256_file(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// A 101 MiB file through nginx: the bytes arrive intact, nginx sends them from disk,
/// and the worker reads under 1 MiB meanwhile (its request, nothing of the file).
#[test]
fn nginx_sends_a_101_mib_file_the_worker_never_reads() {
    let t = tree("offload-big");
    let file = t.media.join("big.bin");
    big_file(&file, 101);
    let want = sha256_file(&file);
    let d = accel(&t);
    let n = nginx(d.fcgi.as_deref().expect("FastCGI address"), &t.media);
    let worker = children(d.pid())
        .into_iter()
        .next()
        .expect("a worker process");
    let mut c = n.client();
    c.get("/hello").expect_status(200);
    let uri = format!(
        "/file?path={}&type=application/x-big&disposition={}&cl=size",
        qp(&file),
        q(b"attachment; filename=\"big.bin\"")
    );
    let (read0, cpu0) = io_and_cpu(&worker);
    let r = c.get(&uri);
    let (read1, cpu1) = io_and_cpu(&worker);
    r.expect_status(200);
    assert_eq!(r.body.len(), 101 << 20);
    assert_eq!(sha256_hex(&r.body), want, "the file's bytes differ");
    assert_eq!(r.header("content-type"), Some("application/x-big"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"big.bin\"")
    );
    assert_eq!(r.header("content-length"), Some("105906176"));
    assert!(r.header("x-accel-redirect").is_none(), "{:?}", r.headers);
    // nginx drops the application's other headers; the internal location adds them.
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    eprintln!(
        "101 MiB file through nginx, offloaded: worker read {} bytes, used {} ms of CPU",
        read1 - read0,
        cpu1 - cpu0
    );
    assert!(
        read1 - read0 < 1 << 20,
        "the worker read {} bytes while nginx sent a 101 MiB file",
        read1 - read0
    );
    // The internal location cannot be asked for directly.
    c.get(&format!("{URI}/big.bin")).expect_status(404);
    // Ranges come from nginx too.
    let r = c.send(
        "GET",
        &uri,
        &[("Range", "bytes=1048576-1048583")],
        common::frontend::Body::Empty,
    );
    r.expect_status(206);
    assert_eq!(r.body, 1u64.to_le_bytes());
    c.get("/hello").expect_status(200);
}

/// Names with spaces, `?`, `%`, a newline and bytes outside ASCII reach the right file
/// through nginx, which decodes the header.
#[test]
fn nginx_finds_files_with_odd_names() {
    let t = tree("offload-nginx-names");
    let d = accel(&t);
    let n = nginx(d.fcgi.as_deref().expect("FastCGI address"), &t.media);
    let mut c = n.client();
    for (i, name) in [
        &b"a b.txt"[..],
        b"q?x=1#f.txt",
        b"pct%41%2e.txt",
        b"line\nbreak.txt",
        "caf\u{e9}.txt".as_bytes(),
        b"latin\xe9.txt",
    ]
    .iter()
    .enumerate()
    {
        let file = t.media.join(std::ffi::OsStr::from_bytes(name));
        let body = format!("file {i}\n");
        write(&file, body.as_bytes());
        let r = c.get(&format!("/file?path={}", qp(&file)));
        r.expect_status(200);
        assert_eq!(r.text(), body, "{:?}", String::from_utf8_lossy(name));
    }
    assert!(
        d.log().matches("file offloaded").count() >= 6,
        "{}",
        d.log()
    );
}

/// An app's own X-Accel-Redirect with a body alongside (1 MiB, more than nginx reads
/// before it redirects): nginx serves the internal location, discards the body, and later
/// requests on the pool are answered.
#[test]
fn nginx_takes_the_apps_own_x_accel_redirect_and_its_body_harms_nothing() {
    let t = tree("offload-own");
    write(&t.media.join("own.txt"), b"from the internal location\n");
    let d = Daemon::builder(APP).fastcgi().start();
    let n = nginx(d.fcgi.as_deref().expect("FastCGI address"), &t.media);
    let mut c = n.client();
    let own = q(format!("X-Accel-Redirect:{URI}/own.txt").as_bytes());
    for round in 0..3 {
        for gen in ["", "&gen=1"] {
            let r = c.get(&format!("/own?own={own}&n={}{gen}", 1 << 20));
            r.expect_status(200);
            assert_eq!(
                r.text(),
                "from the internal location\n",
                "round {round}{gen}"
            );
            c.get("/hello").expect_status(200);
        }
    }
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

// ---------------------------------------------------------------------------------------
// Through lighttpd

/// A running lighttpd (in the foreground, a child of the test), stopped on drop.
struct Lighttpd {
    child: Option<std::process::Child>,
    port: u16,
    dir: PathBuf,
}

impl Drop for Lighttpd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- lighttpd error.log ----\n{}",
                std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
            );
        }
        if let Some(c) = self.child.take() {
            common::stop_child(c);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// lighttpd passing everything to wsgid over FastCGI with X-Sendfile enabled for files
/// under `docroot`.
fn lighttpd(fcgi: &str, docroot: &Path) -> Lighttpd {
    let port = common::free_port();
    let dir = scratch("offload-lighttpd").keep();
    std::fs::create_dir_all(dir.join("www")).expect("create the document root");
    let (host, fport) = fcgi.rsplit_once(':').expect("host:port");
    let conf = format!(
        "server.document-root = \"{d}/www\"\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = {port}\n\
         server.errorlog = \"{d}/error.log\"\n\
         server.modules = (\"mod_fastcgi\")\n\
         fastcgi.server = (\"/\" => ((\n\
             \"host\" => \"{host}\", \"port\" => {fport}, \"check-local\" => \"disable\",\n\
             \"x-sendfile\" => \"enable\", \"x-sendfile-docroot\" => (\"{}/\")\n\
         )))\n",
        docroot.display(),
        d = dir.display(),
    );
    std::fs::write(dir.join("lighttpd.conf"), conf).expect("write lighttpd.conf");
    let log = std::fs::File::create(dir.join("stderr.log")).expect("create stderr log");
    let child = std::process::Command::new("lighttpd")
        .arg("-D")
        .arg("-f")
        .arg(dir.join("lighttpd.conf"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .spawn()
        .expect("run lighttpd (Debian: apt-get install lighttpd)");
    let mut l = Lighttpd {
        child: Some(child),
        port,
        dir,
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = l.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        if exited.is_some() || std::time::Instant::now() > end {
            panic!(
                "lighttpd did not start ({exited:?}): {}",
                std::fs::read_to_string(l.dir.join("stderr.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    l
}

/// X-Sendfile through lighttpd (`"x-sendfile" => "enable"`): a 101 MiB file arrives intact
/// and the worker reads none of it; a name with a space and UTF-8 arrives too (lighttpd
/// decodes the header).
#[test]
fn lighttpd_sends_an_x_sendfile_file_the_worker_never_reads() {
    let t = tree("offload-lighttpd");
    let file = t.media.join("big.bin");
    big_file(&file, 101);
    let want = sha256_file(&file);
    let odd = t.media.join("caf\u{e9} au lait.txt");
    write(&odd, b"odd name\n");
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--offload", "x-sendfile"])
        .env("RUST_LOG", "wsgid=debug")
        .start();
    let l = lighttpd(d.fcgi.as_deref().expect("FastCGI address"), &t.media);
    let worker = children(d.pid())
        .into_iter()
        .next()
        .expect("a worker process");
    let mut c = common::frontend::Client::new(l.port);
    c.get("/hello").expect_status(200);
    let uri = format!("/file?path={}&type=application/x-big&cl=size", qp(&file));
    let (read0, _) = io_and_cpu(&worker);
    let r = c.get(&uri);
    let (read1, _) = io_and_cpu(&worker);
    r.expect_status(200);
    assert_eq!(r.body.len(), 101 << 20);
    assert_eq!(sha256_hex(&r.body), want, "the file's bytes differ");
    assert_eq!(r.header("content-type"), Some("application/x-big"));
    assert!(r.header("x-sendfile").is_none(), "{:?}", r.headers);
    assert!(
        read1 - read0 < 1 << 20,
        "the worker read {} bytes while lighttpd sent a 101 MiB file",
        read1 - read0
    );
    let r = c.get(&format!("/file?path={}", qp(&odd)));
    r.expect_status(200);
    assert_eq!(r.text(), "odd name\n");
    d.wait_log("file offloaded: X-Sendfile: ", 10);
}
