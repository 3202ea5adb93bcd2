//! The systemd notification protocol (sd_notify(3)): one datagram of `KEY=VALUE` lines to
//! the socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
//! Without `NOTIFY_SOCKET` nothing is sent.
//!
//! What the master says, and when: `STATUS=` as it starts its workers; `READY=1` (with
//! `MAINPID=` and the status) once every worker is ready; `RELOADING=1` (with
//! `MONOTONIC_USEC=`, which `Type=notify-reload` requires) when a reload begins, and
//! `READY=1` again once its new workers serve or it failed; `STOPPING=1` when it stops.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. `"READY=1"`) if wsgid runs under a service manager that asked for it.
pub fn notify(state: &str) {
    if let Some(socket) = std::env::var_os("NOTIFY_SOCKET") {
        if let Err(e) = send(&socket, state) {
            tracing::warn!("cannot notify the service manager: {e}");
        }
    }
}

/// `READY=1`: every worker serves; `status` says what runs.
pub fn ready(status: &str) -> String {
    format!(
        "READY=1\nMAINPID={}\n{}",
        std::process::id(),
        status_line(status)
    )
}

/// `RELOADING=1`: a reload began (a `READY=1` follows once it is over).
pub fn reloading(status: &str) -> String {
    format!(
        "RELOADING=1\nMONOTONIC_USEC={}\n{}",
        monotonic_usec(),
        status_line(status)
    )
}

/// `STOPPING=1`: the master is stopping its workers.
pub fn stopping(status: &str) -> String {
    format!("STOPPING=1\n{}", status_line(status))
}

/// `STATUS=` with `status` on one line (a newline would end the field).
pub fn status_line(status: &str) -> String {
    format!("STATUS={}", status.replace('\n', "; "))
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC=` with.
fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => {
            let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
            secs * 1_000_000 + nanos / 1_000
        }
        Err(_) => 0,
    }
}

/// Sends `state` to the notification socket `socket`.
pub fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    let addr = match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(socket)?,
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1\nSTATUS=ok").unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");
    }

    #[test]
    fn sends_to_an_abstract_name() {
        let name = format!("wsgid-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        send(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn messages() {
        let pid = std::process::id();
        assert_eq!(
            ready("1 worker, listening on fastcgi fd:3"),
            format!("READY=1\nMAINPID={pid}\nSTATUS=1 worker, listening on fastcgi fd:3")
        );
        assert_eq!(
            stopping("stopping 2 workers"),
            "STOPPING=1\nSTATUS=stopping 2 workers"
        );
        assert_eq!(status_line("a\nb"), "STATUS=a; b");
        let before = monotonic_usec();
        let r = reloading("reloading");
        let usec: u64 = r
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(before > 0 && usec >= before, "{r}");
        assert!(r.starts_with("RELOADING=1\n") && r.ends_with("\nSTATUS=reloading"));
    }

    #[test]
    fn missing_socket_is_an_error() {
        assert!(send(OsStr::new("/nonexistent/notify"), "READY=1").is_err());
    }
}
