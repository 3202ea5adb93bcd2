//! Listening sockets: binding TCP and Unix sockets, adopting inherited ones (`fd:N`, a
//! listening socket on fd 0, systemd's `LISTEN_FDS`), and removing the Unix socket files
//! wsgid created when it exits.
//!
//! The master opens every listener before it starts a worker and keeps them open, unchanged,
//! for its whole life; workers inherit them. A stale Unix socket file (nobody listening) is
//! replaced; a live one, or anything that is not a socket, is left alone and reported.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{getsockopt, sockopt, SockType};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::config::values::format_listen_addr;
use crate::config::{InheritedListener, Listen, ListenAddr, Protocol, Settings};

/// Pending connections the kernel queues per listener (`listen(2)` backlog).
pub const BACKLOG: i32 = 1024;

/// The descriptor a spawning front end (mod_fcgid, lighttpd `bin-path`, `cgi-fcgi -start`)
/// passes its listening socket on (FastCGI §2.2, `FCGI_LISTENSOCK_FILENO`).
pub const FCGI_LISTENSOCK_FILENO: RawFd = 0;

/// First descriptor of systemd socket activation (`SD_LISTEN_FDS_START`).
pub const SD_LISTEN_FDS_START: RawFd = 3;

/// The most descriptors accepted from `LISTEN_FDS`.
pub const MAX_LISTEN_FDS: usize = 256;

/// Environment variables of systemd socket activation; workers do not see them.
pub const SOCKET_ACTIVATION_ENV: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// An open listening socket.
#[derive(Debug)]
pub struct Listener {
    fd: ListenerFd,
    pub protocol: Protocol,
    /// The address it listens on, as far as the kernel can tell (a TCP port 0 is resolved);
    /// `ListenAddr::Fd` for an unnamed inherited socket.
    pub addr: ListenAddr,
    /// Set for `fd:N` and other inherited sockets.
    pub inherited_fd: Option<RawFd>,
    /// The socket file to remove on exit, for Unix sockets wsgid bound itself.
    _file: Option<SocketFile>,
}

#[derive(Debug)]
enum ListenerFd {
    Bound(OwnedFd),
    Inherited(BorrowedFd<'static>),
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            ListenerFd::Bound(fd) => fd.as_fd(),
            ListenerFd::Inherited(fd) => *fd,
        }
    }
}

impl Listener {
    /// What a worker is told about this listener.
    pub fn inherited(&self) -> InheritedListener {
        InheritedListener {
            fd: self.as_fd().as_raw_fd(),
            protocol: self.protocol,
            addr: self.addr.clone(),
        }
    }

    /// `fastcgi 127.0.0.1:9000`, `scgi unix:/run/app.sock`, `fastcgi fd:0 (unix:/x.sock)`.
    pub fn describe(&self) -> String {
        let protocol = match self.protocol {
            Protocol::Fastcgi => "fastcgi",
            Protocol::Scgi => "scgi",
        };
        match (self.inherited_fd, &self.addr) {
            (Some(n), ListenAddr::Fd(_)) | (None, &ListenAddr::Fd(n)) => {
                format!("{protocol} fd:{n}")
            }
            (Some(n), addr) => format!("{protocol} fd:{n} ({})", format_listen_addr(addr)),
            (None, addr) => format!("{protocol} {}", format_listen_addr(addr)),
        }
    }
}

/// Opens every configured listener and returns them in order. Call it before the master
/// creates any descriptor of its own: inherited descriptors (`fd:N`) are adopted first, so
/// a number that was not inherited cannot name a socket wsgid itself just opened. On error,
/// those already opened are closed (and their socket files removed) as they drop.
pub fn open_all(listen: &[Listen], perms: &SocketPerms) -> Result<Vec<Listener>, String> {
    let mut opened: Vec<Option<Listener>> = listen.iter().map(|_| None).collect();
    let inherited_first = listen
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l.addr, ListenAddr::Fd(_)))
        .chain(
            listen
                .iter()
                .enumerate()
                .filter(|(_, l)| !matches!(l.addr, ListenAddr::Fd(_))),
        );
    for (i, l) in inherited_first {
        opened[i] = Some(open(l, perms)?);
    }
    Ok(opened.into_iter().flatten().collect())
}

fn open(l: &Listen, perms: &SocketPerms) -> Result<Listener, String> {
    match &l.addr {
        ListenAddr::Tcp(addr) => {
            let fd = bind_tcp(*addr).map_err(|e| bind_error(&l.addr, e))?;
            let actual = local_addr(fd.as_fd()).unwrap_or_else(|| l.addr.clone());
            Ok(Listener {
                fd: ListenerFd::Bound(fd),
                protocol: l.protocol,
                addr: actual,
                inherited_fd: None,
                _file: None,
            })
        }
        ListenAddr::Unix(path) => {
            let (fd, file) = bind_unix(path, perms)?;
            Ok(Listener {
                fd: ListenerFd::Bound(fd),
                protocol: l.protocol,
                addr: l.addr.clone(),
                inherited_fd: None,
                _file: Some(file),
            })
        }
        ListenAddr::Fd(n) => adopt(*n, l.protocol, &format!("fd:{n}")),
    }
}

/// Checks that `l` could be opened now, keeping nothing open and leaving nothing behind
/// (`--check`): a TCP address is bound for a moment (so one in use, or a privileged port, is
/// reported), a Unix socket's directory must exist and be writable and its path be free or
/// hold a stale socket, an inherited descriptor must be a listening stream socket.
pub fn probe(l: &Listen) -> Result<(), String> {
    match &l.addr {
        ListenAddr::Tcp(addr) => bind_tcp(*addr)
            .map(drop)
            .map_err(|e| bind_error(&l.addr, e)),
        ListenAddr::Unix(path) => {
            if let Some(e) = unix_dir_problem(path) {
                return Err(e);
            }
            inspect_socket_path(path).map(drop)
        }
        ListenAddr::Fd(n) => adopt(*n, l.protocol, &format!("fd:{n}")).map(drop),
    }
}

/// What keeps wsgid from creating a socket file at `path` in its directory: the directory is
/// missing, is not a directory, or is not writable by this user. None when it looks fine.
fn unix_dir_problem(path: &Path) -> Option<String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("/"),
    };
    let shown = path.display();
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(format!(
            "cannot listen on unix:{shown}: the directory {} does not exist",
            dir.display()
        )),
        Err(e) => Some(format!(
            "cannot listen on unix:{shown}: cannot inspect {}: {e}",
            dir.display()
        )),
        Ok(m) if !m.is_dir() => Some(format!(
            "cannot listen on unix:{shown}: {} is not a directory",
            dir.display()
        )),
        Ok(_) => nix::unistd::access(
            dir,
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
        )
        .err()
        .map(|e| {
            format!(
                "cannot listen on unix:{shown}: wsgid's user cannot create files in {} ({})",
                dir.display(),
                e.desc()
            )
        }),
    }
}

fn bind_error(addr: &ListenAddr, e: io::Error) -> String {
    let addr = format_listen_addr(addr);
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => format!("cannot listen on {addr}: address in use"),
        Some(libc::EACCES) => format!(
            "cannot listen on {addr}: permission denied (ports below 1024 need root or \
             CAP_NET_BIND_SERVICE)"
        ),
        Some(libc::EADDRNOTAVAIL) => {
            format!("cannot listen on {addr}: no such local address")
        }
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

/// Binds a TCP listener: SO_REUSEADDR (restarts do not wait out TIME_WAIT), IPV6_V6ONLY on
/// IPv6 sockets (`[::]:9000` does not also take IPv4's port), backlog `BACKLOG`.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<OwnedFd> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The owner, group and mode given to the Unix sockets wsgid creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketPerms {
    pub mode: u32,
    /// None: the master's user (or group) keeps it.
    pub owner: Option<u32>,
    pub group: Option<u32>,
}

impl SocketPerms {
    /// Only a mode; owner and group are the master's.
    pub fn mode(mode: u32) -> SocketPerms {
        SocketPerms {
            mode,
            owner: None,
            group: None,
        }
    }

    /// What `settings` configures (`socket_mode`, `socket_owner`, `socket_group`).
    pub fn of(settings: &Settings) -> SocketPerms {
        let p = &settings.privileges;
        SocketPerms {
            mode: settings.socket_mode,
            owner: p.socket_owner.as_ref().map(|u| u.id),
            group: p.socket_group.as_ref().map(|g| g.id),
        }
    }
}

/// Binds a Unix listener at `path`, replacing a stale socket file, and gives the file its
/// owner, group and mode (`perms`) before the socket listens (until then, connecting is
/// refused anyway).
pub fn bind_unix(path: &Path, perms: &SocketPerms) -> Result<(OwnedFd, SocketFile), String> {
    let mode = perms.mode;
    let shown = path.display();
    clear_stale_socket(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)
        .map_err(|e| format!("cannot create a socket for unix:{shown}: {e}"))?;
    let addr = SockAddr::unix(path).map_err(|e| format!("unix:{shown}: {e}"))?;
    socket.bind(&addr).map_err(|e| match e.raw_os_error() {
        Some(libc::EADDRINUSE) => format!("cannot listen on unix:{shown}: address in use"),
        _ => {
            unix_dir_problem(path).unwrap_or_else(|| format!("cannot listen on unix:{shown}: {e}"))
        }
    })?;
    let meta = fs::symlink_metadata(path)
        .map_err(|e| format!("cannot stat unix:{shown} after binding it: {e}"))?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    if perms.owner.is_some() || perms.group.is_some() {
        // Not following a link: the socket file was created just now, by this bind.
        std::os::unix::fs::lchown(path, perms.owner, perms.group).map_err(|e| {
            let mut to = Vec::new();
            to.extend(
                perms
                    .owner
                    .map(|u| format!("owner {}", super::privileges::accounts::user_id(u).name)),
            );
            to.extend(
                perms
                    .group
                    .map(|g| format!("group {}", super::privileges::accounts::group_id(g).name)),
            );
            format!("cannot give unix:{shown} {}: {e}", to.join(" and "))
        })?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set mode {mode:04o} on {shown}: {e}"))?;
    socket
        .listen(BACKLOG)
        .map_err(|e| format!("cannot listen on unix:{shown}: {e}"))?;
    Ok((socket.into(), file))
}

/// Makes `path` free for binding: nothing there is fine; a socket nobody listens on is
/// removed; a socket somebody listens on, or anything other than a socket, is an error.
pub fn clear_stale_socket(path: &Path) -> Result<(), String> {
    let shown = path.display();
    match inspect_socket_path(path)? {
        AtPath::Nothing => Ok(()),
        AtPath::StaleSocket => match fs::remove_file(path) {
            Ok(()) => {
                tracing::info!("removed stale socket {shown}");
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove stale socket {shown}: {e}")),
        },
    }
}

/// What is at a Unix socket path that may be bound.
enum AtPath {
    Nothing,
    /// A socket nobody listens on (left by a crash): it may be replaced.
    StaleSocket,
}

/// Looks at `path` without changing anything: Err for a socket somebody listens on, for
/// anything other than a socket, and when it cannot be told.
fn inspect_socket_path(path: &Path) -> Result<AtPath, String> {
    let shown = path.display();
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AtPath::Nothing),
        Err(e) => return Err(format!("cannot inspect {shown}: {e}")),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "cannot listen on unix:{shown}: the path exists and is not a socket (not removing it)"
        ));
    }
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .map_err(|e| format!("cannot create a socket: {e}"))?;
    let addr = SockAddr::unix(path).map_err(|e| format!("unix:{shown}: {e}"))?;
    match probe.connect(&addr) {
        Ok(()) => Err(in_use(path)),
        Err(e) => match e.raw_os_error() {
            // A full backlog: somebody is listening.
            Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => Err(in_use(path)),
            Some(libc::ECONNREFUSED) => Ok(AtPath::StaleSocket),
            Some(libc::ENOENT) => Ok(AtPath::Nothing),
            _ => Err(format!("cannot tell whether {shown} is in use: {e}")),
        },
    }
}

fn in_use(path: &Path) -> String {
    format!(
        "cannot listen on unix:{}: address in use (another server is listening on {})",
        path.display(),
        path.display()
    )
}

/// A Unix socket file wsgid created; removed on drop if the path still names that file.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino => {
                if let Err(e) = fs::remove_file(&self.path) {
                    tracing::warn!("cannot remove {}: {e}", self.path.display());
                }
            }
            Ok(_) => tracing::debug!(
                "{} was replaced by another file; leaving it",
                self.path.display()
            ),
            Err(_) => {}
        }
    }
}

/// Checks `fd` is a listening stream socket.
fn check_listening(fd: BorrowedFd<'_>) -> Result<(), String> {
    match getsockopt(&fd, sockopt::SockType) {
        Ok(SockType::Stream) => {}
        Ok(other) => return Err(format!("is a {other:?} socket, not a stream socket")),
        Err(Errno::ENOTSOCK) => return Err("is not a socket".into()),
        Err(e) => return Err(format!("cannot be inspected: {e}")),
    }
    match getsockopt(&fd, sockopt::AcceptConn) {
        Ok(true) => Ok(()),
        Ok(false) => Err("is a socket that is not listening (Accept=yes is not supported)".into()),
        Err(e) => Err(format!("cannot be inspected: {e}")),
    }
}

/// Adopts inherited descriptor `n` as a listener after checking it listens.
fn adopt(n: RawFd, protocol: Protocol, what: &str) -> Result<Listener, String> {
    let fd =
        crate::inherit::borrow(n).ok_or_else(|| format!("{what}: descriptor {n} is not open"))?;
    check_listening(fd).map_err(|e| format!("{what}: descriptor {n} {e}"))?;
    Ok(Listener {
        fd: ListenerFd::Inherited(fd),
        protocol,
        addr: local_addr(fd).unwrap_or(ListenAddr::Fd(n)),
        inherited_fd: Some(n),
        _file: None,
    })
}

/// The address a socket is bound to, if it has a name.
pub fn local_addr(fd: BorrowedFd<'_>) -> Option<ListenAddr> {
    let name = SockRef::from(&fd).local_addr().ok()?;
    if let Some(addr) = name.as_socket() {
        return Some(ListenAddr::Tcp(addr));
    }
    name.as_pathname()
        .map(|p| ListenAddr::Unix(p.to_path_buf()))
}

/// The environment variables `detect_inherited` reads.
#[derive(Debug, Default, Clone)]
pub struct ActivationEnv {
    pub listen_pid: Option<String>,
    pub listen_fds: Option<String>,
    pub listen_fdnames: Option<String>,
}

impl ActivationEnv {
    pub fn from_process() -> ActivationEnv {
        ActivationEnv {
            listen_pid: std::env::var("LISTEN_PID").ok(),
            listen_fds: std::env::var("LISTEN_FDS").ok(),
            listen_fdnames: std::env::var("LISTEN_FDNAMES").ok(),
        }
    }
}

/// Finds listeners passed in by whoever started wsgid, for when none is configured:
/// a listening socket on fd 0 (FastCGI), else systemd's `LISTEN_FDS` when `LISTEN_PID`
/// names this process (FastCGI, or SCGI for a descriptor whose `LISTEN_FDNAMES` entry is
/// `scgi`). Returns an empty list when there are none.
pub fn detect_inherited(env: &ActivationEnv) -> Result<Vec<Listen>, String> {
    if crate::inherit::borrow(FCGI_LISTENSOCK_FILENO).is_some_and(|fd| check_listening(fd).is_ok())
    {
        return Ok(vec![Listen {
            protocol: Protocol::Fastcgi,
            addr: ListenAddr::Fd(FCGI_LISTENSOCK_FILENO),
        }]);
    }
    let (Some(pid), Some(count)) = (&env.listen_pid, &env.listen_fds) else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        tracing::debug!("LISTEN_PID={pid} is not this process; ignoring LISTEN_FDS");
        return Ok(Vec::new());
    }
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_FDS={count:?} is not a number"))?;
    if count > MAX_LISTEN_FDS {
        return Err(format!(
            "LISTEN_FDS={count}: at most {MAX_LISTEN_FDS} descriptors are supported"
        ));
    }
    let names: Vec<&str> = env
        .listen_fdnames
        .as_deref()
        .map(|n| n.split(':').collect())
        .unwrap_or_default();
    Ok((0..count)
        .map(|i| {
            let protocol = match names.get(i) {
                Some(name) if name.eq_ignore_ascii_case("scgi") => Protocol::Scgi,
                _ => Protocol::Fastcgi,
            };
            Listen {
                protocol,
                addr: ListenAddr::Fd(SD_LISTEN_FDS_START + i as RawFd),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn unix_socket_is_created_with_mode_and_removed_on_drop() {
        let dir = temp();
        let path = dir.path().join("a.sock");
        let l = open(
            &Listen {
                protocol: Protocol::Scgi,
                addr: ListenAddr::Unix(path.clone()),
            },
            &SocketPerms::mode(0o640),
        )
        .unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(l.describe(), format!("scgi unix:{}", path.display()));
        UnixStream::connect(&path).unwrap();
        drop(l);
        assert!(!path.exists());
    }

    /// The owner and group are given before the mode; a master that is not root may only
    /// give its socket to a group it is in.
    #[test]
    fn unix_socket_gets_its_owner_and_group() {
        let dir = temp();
        let path = dir.path().join("owned.sock");
        let root = nix::unistd::geteuid().is_root();
        let perms = SocketPerms {
            mode: 0o660,
            owner: root.then_some(65534),
            group: Some(if root {
                65534
            } else {
                nix::unistd::getegid().as_raw()
            }),
        };
        let (_fd, _file) = bind_unix(&path, &perms).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(Some(meta.gid()), perms.group);
        if root {
            assert_eq!(meta.uid(), 65534);
        } else {
            let other = SocketPerms {
                owner: Some(0),
                ..perms
            };
            let e = bind_unix(&dir.path().join("root.sock"), &other).unwrap_err();
            assert!(e.starts_with("cannot give unix:"), "{e}");
            assert!(e.contains("owner root"), "{e}");
        }
    }

    #[test]
    fn stale_socket_is_replaced() {
        let dir = temp();
        let path = dir.path().join("stale.sock");
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let (_fd, _file) = bind_unix(&path, &SocketPerms::mode(0o660)).unwrap();
        UnixStream::connect(&path).unwrap();
    }

    #[test]
    fn live_socket_is_refused() {
        let dir = temp();
        let path = dir.path().join("live.sock");
        let _live = UnixListener::bind(&path).unwrap();
        let e = bind_unix(&path, &SocketPerms::mode(0o660)).unwrap_err();
        assert!(
            e.contains("address in use (another server is listening on"),
            "{e}"
        );
        assert!(path.exists());
        UnixStream::connect(&path).unwrap();
    }

    #[test]
    fn non_socket_is_refused_and_kept() {
        let dir = temp();
        let path = dir.path().join("file");
        fs::write(&path, "data").unwrap();
        let e = bind_unix(&path, &SocketPerms::mode(0o660)).unwrap_err();
        assert!(e.contains("is not a socket (not removing it)"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "data");

        let link = dir.path().join("link.sock");
        let target = dir.path().join("target.sock");
        let _live = UnixListener::bind(&target).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(bind_unix(&link, &SocketPerms::mode(0o660)).is_err());
        assert!(link.exists());
    }

    #[test]
    fn socket_file_replaced_by_another_is_left_alone() {
        let dir = temp();
        let path = dir.path().join("a.sock");
        // The bound socket keeps its inode allocated, so the new file gets another one.
        let (_fd, file) = bind_unix(&path, &SocketPerms::mode(0o660)).unwrap();
        fs::remove_file(&path).unwrap();
        let _other = UnixListener::bind(&path).unwrap();
        drop(file);
        assert!(path.exists());
    }

    #[test]
    fn missing_directory_is_reported() {
        let dir = temp();
        let path = dir.path().join("no/such/dir/a.sock");
        let e = bind_unix(&path, &SocketPerms::mode(0o660)).unwrap_err();
        let want = format!(
            "cannot listen on unix:{}: the directory {} does not exist",
            path.display(),
            dir.path().join("no/such/dir").display()
        );
        assert_eq!(e, want);
        let unix = |path: &Path| Listen {
            protocol: Protocol::Fastcgi,
            addr: ListenAddr::Unix(path.to_path_buf()),
        };
        assert_eq!(probe(&unix(&path)), Err(want));
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let e = probe(&unix(&file.join("a.sock"))).unwrap_err();
        assert!(e.ends_with("is not a directory"), "{e}");
    }

    /// `--check`'s look at a listener opens nothing for good and leaves nothing behind.
    #[test]
    fn probing_keeps_nothing() {
        let dir = temp();
        let path = dir.path().join("a.sock");
        let unix = Listen {
            protocol: Protocol::Scgi,
            addr: ListenAddr::Unix(path.clone()),
        };
        assert_eq!(probe(&unix), Ok(()));
        assert!(!path.exists(), "probing created the socket file");
        // A stale socket would be replaced: fine, and still there.
        drop(UnixListener::bind(&path).unwrap());
        assert_eq!(probe(&unix), Ok(()));
        assert!(path.exists(), "probing removed the stale socket");
        fs::remove_file(&path).unwrap();
        let live = UnixListener::bind(&path).unwrap();
        assert!(probe(&unix).unwrap_err().contains("address in use"));
        drop(live);

        let first = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let Some(ListenAddr::Tcp(addr)) = local_addr(first.as_fd()) else {
            panic!()
        };
        let tcp = Listen {
            protocol: Protocol::Fastcgi,
            addr: ListenAddr::Tcp(addr),
        };
        assert_eq!(
            probe(&tcp),
            Err(format!("cannot listen on {addr}: address in use"))
        );
        drop(first);
        assert_eq!(probe(&tcp), Ok(()));
        // The port is free again after the probe.
        bind_tcp(addr).unwrap();
    }

    #[test]
    fn tcp_port_zero_reports_the_real_port() {
        let l = open(
            &Listen {
                protocol: Protocol::Fastcgi,
                addr: ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
            },
            &SocketPerms::mode(0o660),
        )
        .unwrap();
        let ListenAddr::Tcp(addr) = l.addr else {
            panic!("{:?}", l.addr)
        };
        assert_ne!(addr.port(), 0);
        std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(l.inherited().addr, ListenAddr::Tcp(addr));
    }

    #[test]
    fn tcp_address_in_use() {
        let first = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let Some(ListenAddr::Tcp(addr)) = local_addr(first.as_fd()) else {
            panic!()
        };
        let e = bind_tcp(addr).unwrap_err();
        assert_eq!(
            bind_error(&ListenAddr::Tcp(addr), e),
            format!("cannot listen on {addr}: address in use")
        );
    }

    #[test]
    fn ipv6_is_v6_only() {
        let Ok(fd) = bind_tcp("[::1]:0".parse().unwrap()) else {
            return; // no IPv6 on this machine
        };
        let only = SockRef::from(&fd).only_v6().unwrap();
        assert!(only);
    }

    #[test]
    fn fd_must_be_a_listening_stream_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let n = l.as_raw_fd();
        let adopted = open(
            &Listen {
                protocol: Protocol::Fastcgi,
                addr: ListenAddr::Fd(n),
            },
            &SocketPerms::mode(0o660),
        )
        .unwrap();
        assert_eq!(adopted.addr, ListenAddr::Tcp(l.local_addr().unwrap()));
        assert_eq!(adopted.inherited().fd, n);
        assert!(adopted
            .describe()
            .starts_with(&format!("fastcgi fd:{n} (127.0.0.1:")));

        let file = fs::File::open("/dev/null").unwrap();
        let e = adopt(file.as_raw_fd(), Protocol::Fastcgi, "fd:x").unwrap_err();
        assert!(e.ends_with("is not a socket"), "{e}");

        let (a, _b) = UnixStream::pair().unwrap();
        let e = adopt(a.as_raw_fd(), Protocol::Fastcgi, "fd:x").unwrap_err();
        assert!(e.contains("not listening"), "{e}");

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = adopt(udp.as_raw_fd(), Protocol::Fastcgi, "fd:x").unwrap_err();
        assert!(e.contains("not a stream socket"), "{e}");

        let e = adopt(1_000_000, Protocol::Fastcgi, "fd:1000000").unwrap_err();
        assert!(e.ends_with("is not open"), "{e}");
    }

    #[test]
    fn open_all_keeps_the_configured_order() {
        let inherited = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = [
            Listen {
                protocol: Protocol::Scgi,
                addr: ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
            },
            Listen {
                protocol: Protocol::Fastcgi,
                addr: ListenAddr::Fd(inherited.as_raw_fd()),
            },
        ];
        let opened = open_all(&listen, &SocketPerms::mode(0o660)).unwrap();
        assert_eq!(opened.len(), 2);
        assert_eq!(opened[0].protocol, Protocol::Scgi);
        assert_eq!(opened[0].inherited_fd, None);
        assert_eq!(opened[1].inherited_fd, Some(inherited.as_raw_fd()));
    }

    #[test]
    fn socket_activation_env() {
        let me = std::process::id().to_string();
        let env = ActivationEnv {
            listen_pid: Some(me.clone()),
            listen_fds: Some("3".into()),
            listen_fdnames: Some("main:scgi:x".into()),
        };
        // The test harness's fd 0 is not a listening socket.
        let found = detect_inherited(&env).unwrap();
        assert_eq!(
            found,
            vec![
                Listen {
                    protocol: Protocol::Fastcgi,
                    addr: ListenAddr::Fd(3)
                },
                Listen {
                    protocol: Protocol::Scgi,
                    addr: ListenAddr::Fd(4)
                },
                Listen {
                    protocol: Protocol::Fastcgi,
                    addr: ListenAddr::Fd(5)
                },
            ]
        );
        let other = ActivationEnv {
            listen_pid: Some("1".into()),
            ..env.clone()
        };
        assert!(detect_inherited(&other).unwrap().is_empty());
        assert!(detect_inherited(&ActivationEnv::default())
            .unwrap()
            .is_empty());
        let bad = ActivationEnv {
            listen_fds: Some("many".into()),
            ..env.clone()
        };
        assert!(detect_inherited(&bad).is_err());
        let at_max = ActivationEnv {
            listen_fds: Some(MAX_LISTEN_FDS.to_string()),
            listen_fdnames: None,
            ..env.clone()
        };
        assert_eq!(detect_inherited(&at_max).unwrap().len(), MAX_LISTEN_FDS);
        let past_max = ActivationEnv {
            listen_fds: Some((MAX_LISTEN_FDS + 1).to_string()),
            ..env
        };
        assert!(detect_inherited(&past_max).is_err());
    }
}
