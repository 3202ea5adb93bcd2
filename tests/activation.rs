//! Inherited listeners: a listening socket on fd 0 (how mod_fcgid, lighttpd `bin-path` and
//! `cgi-fcgi -start` spawn a FastCGI backend) and systemd socket activation (LISTEN_FDS,
//! LISTEN_PID, LISTEN_FDNAMES), each with no --fastcgi/--scgi option.

mod common;

use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fcgi::{self, Request};

struct Killed(Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            common::stop_child(c);
        }
    }
}

/// A directory with `wsgid.log` for the daemon's stderr, shown if the test fails.
fn log_file() -> (common::Scratch, Stdio) {
    let dir = common::scratch("activation");
    let f = std::fs::File::create(dir.join("wsgid.log")).unwrap();
    (dir, Stdio::from(f))
}

/// Retries a request until the daemon answers (it starts asynchronously).
fn hello_until_ready(addr: &str, log_dir: &std::path::Path) -> String {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = std::panic::catch_unwind(|| fcgi::request(addr, &Request::get("/")).cgi()) {
            return r.text();
        }
        assert!(
            Instant::now() < end,
            "no answer on {addr}; wsgid's log:\n{}",
            std::fs::read_to_string(log_dir.join("wsgid.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serves_fastcgi_on_a_listening_socket_passed_as_fd_0() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (log, stderr) = log_file();
    let child = Command::new(env!("CARGO_BIN_EXE_wsgid"))
        .arg("hello.py")
        .args(common::is_root().then_some("--allow-root"))
        .current_dir(common::fixtures())
        .env_clear() // mod_fcgid passes almost no environment
        .stdin(Stdio::from(OwnedFd::from(l)))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let _guard = Killed(Some(child));
    assert_eq!(hello_until_ready(&addr, &log), "Hello, world!\n");
}

#[test]
fn serves_systemd_activated_sockets_by_name() {
    let fcgi_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let scgi_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let fcgi_addr = fcgi_l.local_addr().unwrap().to_string();
    let scgi_addr = scgi_l.local_addr().unwrap().to_string();
    let (a, b) = (fcgi_l.as_raw_fd(), scgi_l.as_raw_fd());
    let (log, stderr) = log_file();
    let mut cmd = Command::new("/bin/sh");
    // LISTEN_PID must name the wsgid process itself: the shell exports its own pid, then
    // execs wsgid in its place.
    cmd.args([
        "-c",
        "LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=web:scgi exec \"$0\" hello.py $1",
        env!("CARGO_BIN_EXE_wsgid"),
        if common::is_root() {
            "--allow-root"
        } else {
            ""
        },
    ])
    .current_dir(common::fixtures())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(stderr);
    // SAFETY: between fork and exec only async-signal-safe dup2/close calls, placing the
    // two listeners at fds 3 and 4 as systemd does. They go through fds 100 and 101 first,
    // so it does not matter whether `a` or `b` already is 3 or 4 (dup2 onto itself would
    // keep FD_CLOEXEC; dup2 onto another number clears it).
    unsafe {
        cmd.pre_exec(move || {
            let ok = libc::dup2(a, 100) >= 0
                && libc::dup2(b, 101) >= 0
                && libc::dup2(100, 3) >= 0
                && libc::dup2(101, 4) >= 0;
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(100);
            libc::close(101);
            Ok(())
        });
    }
    let _guard = Killed(Some(cmd.spawn().unwrap()));
    assert_eq!(hello_until_ready(&fcgi_addr, &log), "Hello, world!\n");
    let r = common::scgi::request(&scgi_addr, &Request::get("/"));
    assert_eq!(r.body, b"Hello, world!\n");
}

/// A reload keeps a listener inherited on fd 0: the new workers serve on it (it cannot be
/// bound again, having no address wsgid knows).
#[test]
fn sighup_keeps_a_listener_passed_as_fd_0() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (log, stderr) = log_file();
    let child = Command::new(env!("CARGO_BIN_EXE_wsgid"))
        .arg("process_app:application")
        .args(common::is_root().then_some("--allow-root"))
        .current_dir(common::fixtures())
        .stdin(Stdio::from(OwnedFd::from(l)))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _guard = Killed(Some(child));
    hello_until_ready(&addr, &log);
    let first = fcgi::request(&addr, &Request::get("/pid")).cgi().text();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let now = fcgi::request(&addr, &Request::get("/pid")).cgi().text();
        if now != first {
            break;
        }
        assert!(
            Instant::now() < end,
            "never served by a new worker; log:\n{}",
            std::fs::read_to_string(log.join("wsgid.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(log.join("wsgid.log")).unwrap_or_default();
    assert!(text.contains("new workers ready"), "{text}");
}
