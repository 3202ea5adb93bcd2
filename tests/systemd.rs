//! wsgid under systemd socket activation, driven by the real `systemd-socket-activate(1)`:
//! a FastCGI and an SCGI socket at once, whose names (`--fdname`, as `FileDescriptorName=`
//! in conf.d/wsgid.socket and conf.d/wsgid-scgi.socket) choose the protocol, and a test
//! notification socket (`NOTIFY_SOCKET`) that hears what systemd would: `STATUS=` as the
//! workers start, `READY=1` once they are ready, `RELOADING=1` then `READY=1` around a
//! SIGHUP, `STOPPING=1` on SIGTERM. Requests over both sockets directly and through nginx.
//!
//! systemd-socket-activate binds the sockets and waits for a first connection before it
//! execs wsgid in its own place (so LISTEN_PID is wsgid's pid), as systemd starts a
//! socket-activated service on its first connection: the tests' first request starts wsgid.
//!
//! Needs systemd-socket-activate (Debian: systemd) and nginx (nginx-light).

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::fcgi::{self, Request};
use common::frontend::{Nginx, Pass, Site};
use common::matrix::FrontEnd;
use common::Scratch;

/// The `FileDescriptorName=` of conf.d/UNIT, and that it has a `ListenStream=`.
fn fd_name(unit: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conf.d")
        .join(unit);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        text.lines().any(|l| l.starts_with("ListenStream=")),
        "{unit} has no ListenStream="
    );
    text.lines()
        .find_map(|l| l.strip_prefix("FileDescriptorName="))
        .unwrap_or_else(|| panic!("{unit} has no FileDescriptorName="))
        .trim()
        .to_string()
}

/// The systemd-socket-activate executable: $SYSTEMD_SOCKET_ACTIVATE, else the one on PATH.
fn activate_bin() -> PathBuf {
    std::env::var_os("SYSTEMD_SOCKET_ACTIVATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("systemd-socket-activate"))
}

/// The test's end of `NOTIFY_SOCKET`: every datagram wsgid sends, in order.
struct Notifications {
    socket: UnixDatagram,
    path: PathBuf,
    /// What arrived so far.
    seen: Vec<String>,
}

impl Notifications {
    fn bind(dir: &Path) -> Notifications {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notification socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set a read timeout");
        Notifications {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Reads datagrams until one has the line `line` (or panics after `secs`); returns
    /// the datagrams read by this call, that one last.
    fn until(&mut self, line: &str, secs: u64, log: &dyn Fn() -> String) -> Vec<String> {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(text.clone());
                got.push(text.clone());
                if text.lines().any(|l| l == line) {
                    return got;
                }
            }
            assert!(
                Instant::now() < end,
                "no {line:?} within {secs} s; notifications so far: {:?}; log:\n{}",
                self.seen,
                log()
            );
        }
    }

    /// Every datagram still queued.
    fn rest(&mut self) -> Vec<String> {
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while let Ok(n) = self.socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    }
}

/// The value of `KEY=` in a notification.
fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

/// wsgid started by systemd-socket-activate on two loopback sockets named `names`, with
/// `NOTIFY_SOCKET` pointing at the test's listener; stopped on drop.
struct Activated {
    child: Option<Child>,
    /// "127.0.0.1:PORT" of the sockets, in the order of the names.
    addrs: [String; 2],
    log: PathBuf,
    _dir: Scratch,
}

impl Activated {
    fn start(names: [&str; 2], notify: Option<&Path>, dir: Scratch) -> Activated {
        let addrs = [0, 1].map(|_| format!("127.0.0.1:{}", common::free_port()));
        let log = dir.join("wsgid.log");
        let out = std::fs::File::create(&log).expect("create the log");
        let err = out.try_clone().expect("clone the log");
        let mut cmd = Command::new(activate_bin());
        cmd.args(["-l", &addrs[0], "-l", &addrs[1]])
            .arg(format!("--fdname={}:{}", names[0], names[1]))
            .args(["-E", "RUST_LOG=info"]);
        if let Some(path) = notify {
            cmd.arg("-E")
                .arg(format!("NOTIFY_SOCKET={}", path.display()));
        }
        cmd.arg(env!("CARGO_BIN_EXE_wsgid"))
            .args(["--processes", "2"])
            .args(common::is_root().then_some("--allow-root"))
            .arg("frontend_app")
            .current_dir(common::fixtures())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): install systemd (Debian: apt-get install systemd) or set \
                 SYSTEMD_SOCKET_ACTIVATE to its path",
                activate_bin().display()
            )
        });
        let a = Activated {
            child: Some(child),
            addrs,
            log,
            _dir: dir,
        };
        // Bound by systemd-socket-activate, not yet by wsgid: connecting would start it.
        let end = Instant::now() + Duration::from_secs(10);
        while !a
            .log()
            .contains(&format!("Listening on {} as 4.", a.addrs[1]))
        {
            assert!(
                Instant::now() < end,
                "systemd-socket-activate is not listening; its output:\n{}",
                a.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        a
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// wsgid's pid (systemd-socket-activate execs it in its own place).
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig)
            .expect("signal wsgid");
    }

    /// Waits (up to `secs`) for wsgid to exit.
    fn wait(&mut self, secs: u64) -> ExitStatus {
        let end = Instant::now() + Duration::from_secs(secs);
        let child = self.child.as_mut().expect("wsgid running");
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return st;
            }
            assert!(
                Instant::now() < end,
                "wsgid did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- systemd-socket-activate and wsgid ----\n{}",
                self.log()
            );
        }
        if let Some(c) = self.child.take() {
            common::stop_child(c);
        }
    }
}

/// GET `uri` from frontend_app over FastCGI (`scgi` false) or SCGI at `addr`: its report.
fn get(addr: &str, uri: &str, scgi: bool) -> serde_json::Value {
    let req = Request::get(uri);
    let r = if scgi {
        common::scgi::request(addr, &req)
    } else {
        fcgi::request(addr, &req).cgi()
    };
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The sockets of conf.d/wsgid.socket ("fastcgi") and conf.d/wsgid-scgi.socket ("scgi"),
/// passed by systemd-socket-activate: the first request starts wsgid; `STATUS=` while its
/// workers start, `READY=1` (with `MAINPID=` and what it serves) once both are ready;
/// FastCGI on the one socket and SCGI on the other, directly and through nginx (the
/// request matrix); SIGHUP: `RELOADING=1`, then `READY=1` once the new workers serve;
/// SIGTERM: `STOPPING=1`, exit 0.
#[test]
fn fastcgi_and_scgi_sockets_by_name_with_notifications() {
    let names = [fd_name("wsgid.socket"), fd_name("wsgid-scgi.socket")];
    assert_eq!(names, ["fastcgi", "scgi"]);
    let dir = common::scratch("systemd");
    let mut notes = Notifications::bind(&dir);
    let notify_path = notes.path.clone();
    let mut a = Activated::start([&names[0], &names[1]], Some(&notify_path), dir);
    let (fcgi_addr, scgi_addr) = (a.addrs[0].clone(), a.addrs[1].clone());
    let log_path = a.log.clone();
    let log = move || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The first connection starts wsgid; its request waits for a worker.
    let seen = get(&fcgi_addr, "/first?via=fastcgi", false);
    assert_eq!(seen["PATH_INFO"], "/first");
    assert_eq!(seen["QUERY_STRING"], "via=fastcgi");

    let start = notes.until("READY=1", 30, &log);
    let text = a.log();
    // READY=1 comes once both workers are ready, and after what the master logs so.
    assert_eq!(text.matches("worker ready").count(), 2, "{text}");
    assert!(text.contains("wsgid ready"), "{text}");
    assert_eq!(
        field(&start[0], "STATUS"),
        Some("starting 2 workers for frontend_app"),
        "{start:?}"
    );
    let ready = start.last().expect("READY=1");
    assert_eq!(field(ready, "MAINPID"), Some(a.pid().to_string().as_str()));
    let serving =
        format!("2 workers, listening on fastcgi fd:3 ({fcgi_addr}), scgi fd:4 ({scgi_addr})");
    assert_eq!(field(ready, "STATUS"), Some(serving.as_str()), "{ready}");

    let seen = get(&scgi_addr, "/second?via=scgi", true);
    assert_eq!(seen["PATH_INFO"], "/second");
    assert_eq!(seen["QUERY_STRING"], "via=scgi");

    // Through nginx: fastcgi_pass to the one socket, scgi_pass to the other.
    let sites = [
        Site::new(Pass::FastCgi, &fcgi_addr, "/"),
        Site::new(Pass::Scgi, &scgi_addr, "/"),
    ];
    let (nginx, ports) = Nginx::start_many(&sites);
    let front_ends = [
        FrontEnd::new("nginx fastcgi_pass to fd:3", ports[0], "/"),
        FrontEnd::new("nginx scgi_pass to fd:4", ports[1], "/"),
    ];
    common::matrix::run_all(&front_ends, &|| a.log());
    drop(nginx);

    // SIGHUP: RELOADING=1 at once, READY=1 once the new workers serve.
    a.signal(nix::sys::signal::Signal::SIGHUP);
    let reload = notes.until("READY=1", 30, &log);
    assert_eq!(reload.len(), 2, "{reload:?}");
    assert!(reload[0].lines().any(|l| l == "RELOADING=1"), "{reload:?}");
    assert!(
        field(&reload[0], "MONOTONIC_USEC").is_some_and(|v| v.parse::<u64>().is_ok()),
        "{reload:?}"
    );
    assert_eq!(
        field(&reload[0], "STATUS"),
        Some("reloading the configuration")
    );
    assert!(a.log().contains("new workers ready"), "{}", a.log());
    assert_eq!(
        field(&reload[1], "STATUS"),
        Some(format!("reloaded; {serving}").as_str())
    );
    get(&fcgi_addr, "/after-reload", false);
    get(&scgi_addr, "/after-reload", true);

    // SIGTERM: STOPPING=1, and a clean exit.
    a.signal(nix::sys::signal::Signal::SIGTERM);
    let stop = notes.until("STOPPING=1", 10, &log);
    assert_eq!(stop.len(), 1, "{stop:?}");
    // Two, or up to four while the workers the reload replaced are still finishing.
    let stopping = field(&stop[0], "STATUS").unwrap_or_default();
    assert!(
        stopping.starts_with("stopping: ")
            && stopping.ends_with(" workers finishing their requests"),
        "{stop:?}"
    );
    let status = a.wait(10);
    assert!(status.success(), "{status}; log:\n{}", a.log());
    assert!(
        notes.rest().is_empty(),
        "after STOPPING=1: {:?}",
        notes.seen
    );
}

/// The names choose the protocol, not the order: named the other way round, the first
/// socket speaks SCGI and the second FastCGI.
#[test]
fn fd_names_choose_the_protocol_whatever_the_order() {
    let a = Activated::start(["scgi", "fastcgi"], None, common::scratch("systemd"));
    let seen = get(&a.addrs[0], "/one", true);
    assert_eq!(seen["PATH_INFO"], "/one");
    let seen = get(&a.addrs[1], "/two", false);
    assert_eq!(seen["PATH_INFO"], "/two");
}

/// A reload that fails still ends with `READY=1` (the running workers keep serving), its
/// `STATUS=` saying why: a configuration that does not load, then new workers that cannot
/// start.
#[test]
fn a_failed_reload_ends_ready_saying_why() {
    let dir = common::scratch("systemd-reload");
    let mut notes = Notifications::bind(&dir);
    let marker = dir.join("broken");
    let conf = dir.join("wsgid.toml");
    let port = common::free_port();
    let good = format!(
        "app = \"process_app:application\"\nfastcgi = \"127.0.0.1:{port}\"\nchdir = \"{}\"\n\
         env = {{ WSGID_TEST_FAIL_IF = \"{}\" }}\n",
        common::fixtures().display(),
        marker.display()
    );
    std::fs::write(&conf, &good).expect("write the config");
    let d = common::Daemon::builder("")
        .args(&["--config", &conf.display().to_string()])
        .env("NOTIFY_SOCKET", &notes.path.display().to_string())
        .start();
    let log = || d.log();
    notes.until("READY=1", 30, &log);
    let hup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(d.pid() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .expect("SIGHUP")
    };
    let serving = format!("1 worker, listening on fastcgi 127.0.0.1:{port}");

    std::fs::write(&conf, format!("{good}threads = \"many\"\n")).expect("break the config");
    hup();
    let got = notes.until("READY=1", 20, &log);
    assert!(got[0].lines().any(|l| l == "RELOADING=1"), "{got:?}");
    let status = field(got.last().expect("READY=1"), "STATUS").unwrap_or_default();
    assert!(
        status.starts_with("reload failed (threads in ")
            && status.ends_with(&format!("); the running workers keep serving; {serving}")),
        "{status}"
    );

    std::fs::write(&conf, &good).expect("mend the config");
    std::fs::write(&marker, b"").expect("break the application");
    hup();
    let got = notes.until("READY=1", 20, &log);
    assert!(got[0].lines().any(|l| l == "RELOADING=1"), "{got:?}");
    assert_eq!(
        field(got.last().expect("READY=1"), "STATUS"),
        Some(
            format!(
                "reload failed (the app: the new workers cannot start); the running workers \
                 keep serving; {serving}"
            )
            .as_str()
        )
    );
}
