//! Test harness shared by the integration tests: starts the real `wsgid` binary on free
//! loopback ports (or Unix sockets), waits until it accepts connections, captures its log,
//! and stops it on drop. Protocol clients and front-end helpers live in the submodules.
#![allow(dead_code)]

pub mod apache;
pub mod fcgi;
pub mod frontend;
pub mod lighttpd;
pub mod load;
pub mod matrix;
pub mod scgi;
pub mod server;
pub mod stage;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The virtualenv with the test dependencies (Django, Flask): $WSGID_TEST_VENV or ./.venv.
pub fn venv() -> PathBuf {
    match std::env::var_os("WSGID_TEST_VENV") {
        Some(v) => PathBuf::from(v),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"),
    }
}

/// A loopback port nobody listens on right now, below Linux's ephemeral range
/// (32768-60999): a port the kernel hands out for an outgoing connection or a bind to port 0
/// could be taken by the many connections the tests open before wsgid or a front end binds
/// it. Each test process walks its own stretch of 20000-32767, skipping ports in use.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20000;
    const SPAN: u32 = 12768;
    static NEXT: AtomicUsize = AtomicUsize::new(usize::MAX);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    let _ = NEXT.compare_exchange(
        usize::MAX,
        start as usize,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst) as u32 % SPAN;
        let port = (FIRST + n) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A fresh scratch directory for one test: removed when dropped, unless the thread is
/// panicking (a failing test keeps its files for a look). Derefs to its `Path`.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Gives up the guard: the directory stays, for the caller to remove or keep.
    pub fn keep(self) -> PathBuf {
        let mut me = std::mem::ManuallyDrop::new(self);
        std::mem::take(&mut me.0)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh scratch directory for one test; keep the returned guard alive while it is used.
#[must_use = "the directory is removed when the guard is dropped"]
pub fn scratch(name: &str) -> Scratch {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "wsgid-test-{}-{}-{}",
        name,
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    Scratch(d)
}

pub struct Daemon {
    child: Option<Child>,
    /// "127.0.0.1:PORT" of the first FastCGI listener, if any.
    pub fcgi: Option<String>,
    /// "127.0.0.1:PORT" of the first SCGI listener, if any.
    pub scgi: Option<String>,
    log_path: PathBuf,
    /// Holds the log's directory; declared last so it goes after the daemon has stopped.
    _log_dir: Scratch,
}

pub struct Builder {
    exe: PathBuf,
    app: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cwd: PathBuf,
    fcgi: Option<String>,
    scgi: Option<String>,
    wait_for: Vec<String>,
    /// Pass `--allow-root` when the tests run as root (see `Builder::root_args`).
    allow_root: bool,
    /// A descriptor the daemon inherits, as from a careless parent.
    stray: Option<i32>,
}

/// Whether the tests run as root (as in CI).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl Daemon {
    /// A daemon serving `app` (e.g. "validated:application" from fixtures/), run from the
    /// fixtures folder.
    pub fn builder(app: &str) -> Builder {
        Builder {
            exe: PathBuf::from(env!("CARGO_BIN_EXE_wsgid")),
            app: app.to_string(),
            args: Vec::new(),
            envs: Vec::new(),
            cwd: fixtures(),
            fcgi: None,
            scgi: None,
            wait_for: Vec::new(),
            allow_root: true,
            stray: None,
        }
    }

    /// FastCGI + SCGI on free ports, default settings.
    pub fn start(app: &str) -> Daemon {
        Daemon::builder(app).fastcgi().scgi().start()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (or panics after `secs`).
    pub fn wait_log(&self, needle: &str, secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            if Instant::now() > end {
                panic!("log never contained {needle:?}; log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `sig` to the master and waits for it to exit (panics after `secs`).
    pub fn stop_with(&mut self, sig: nix::sys::signal::Signal, secs: u64) -> ExitStatus {
        let mut child = self.child.take().expect("daemon already stopped");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, sig);
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = child.try_wait().expect("wait for wsgid") {
                return st;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "wsgid did not exit within {secs}s of {sig:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Builder {
    /// No `--allow-root` even as root: for tests of wsgid's refusal to run an application
    /// as root.
    pub fn without_allow_root(mut self) -> Builder {
        self.allow_root = false;
        self
    }

    /// `--allow-root` when the tests run as root and the test neither gave a user nor asked
    /// for none: wsgid refuses to run an application as root without it, and the tests'
    /// applications are not about users.
    fn root_args(&self) -> Option<&'static str> {
        let user_given = self
            .args
            .iter()
            .any(|a| a == "--user" || a.starts_with("--user="));
        (self.allow_root && !user_given && is_root()).then_some("--allow-root")
    }

    /// Runs this copy of the wsgid binary instead of the one cargo built.
    pub fn exe(mut self, path: &Path) -> Builder {
        self.exe = path.to_path_buf();
        self
    }

    /// Leaves descriptor `fd` of the test open in wsgid, as a parent that does not set
    /// close-on-exec would.
    pub fn stray_fd(mut self, fd: i32) -> Builder {
        self.stray = Some(fd);
        self
    }

    pub fn arg(mut self, a: &str) -> Builder {
        self.args.push(a.to_string());
        self
    }

    pub fn args(mut self, a: &[&str]) -> Builder {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Builder {
        self.envs.push((k.to_string(), v.to_string()));
        self
    }

    pub fn cwd(mut self, d: &Path) -> Builder {
        self.cwd = d.to_path_buf();
        self
    }

    /// Listen for FastCGI on a free loopback port.
    pub fn fastcgi(mut self) -> Builder {
        let a = format!("127.0.0.1:{}", free_port());
        self.args.push("--fastcgi".into());
        self.args.push(a.clone());
        self.wait_for.push(a.clone());
        self.fcgi.get_or_insert(a);
        self
    }

    /// Listen for SCGI on a free loopback port.
    pub fn scgi(mut self) -> Builder {
        let a = format!("127.0.0.1:{}", free_port());
        self.args.push("--scgi".into());
        self.args.push(a.clone());
        self.wait_for.push(a.clone());
        self.scgi.get_or_insert(a);
        self
    }

    /// Starts wsgid and waits (up to 30 s) until every TCP listener accepts and the log
    /// says the workers are ready. Panics with the log if it exits first.
    pub fn start(self) -> Daemon {
        let log_dir = scratch("log");
        let log_path = log_dir.join("wsgid.log");
        let log = std::fs::File::create(&log_path).expect("create log file");
        let log2 = log.try_clone().expect("clone log file");
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args)
            .args(self.root_args())
            .args((!self.app.is_empty()).then_some(&self.app))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .env(
                "RUST_LOG",
                std::env::var("WSGID_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env_remove("WSGID_WORKER_SPEC");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        if let Some(fd) = self.stray {
            // SAFETY: between fork and exec, one async-signal-safe fcntl on a number of
            // this process, clearing its close-on-exec flag in the child only.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawn wsgid");
        let mut d = Daemon {
            child: Some(child),
            fcgi: self.fcgi,
            scgi: self.scgi,
            log_path,
            _log_dir: log_dir,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("wsgid exited early ({st}); log:\n{}", d.log());
            }
            let listening = self.wait_for.iter().all(|a| TcpStream::connect(a).is_ok());
            if listening && d.log().contains("ready") {
                return d;
            }
            if Instant::now() > end {
                panic!("wsgid not ready within 30s; log:\n{}", d.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Runs wsgid to completion (for --check, --help, config errors): (status, output).
    pub fn run(self) -> (ExitStatus, String) {
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args)
            .args(self.root_args())
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .env_remove("WSGID_WORKER_SPEC");
        if !self.app.is_empty() {
            cmd.arg(&self.app);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run wsgid");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status, text)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_child(c);
        }
    }
}

/// SIGTERM, up to 5 s to exit, then SIGKILL: how every test stops a process it started.
pub fn stop_child(mut c: Child) {
    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Reads a whole stream to its end (for tests that expect the server to close).
pub fn read_to_end(mut s: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    v
}

/// The live children of process `parent` (its workers), from /proc.
pub fn children(parent: u32) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        // Field 4, after the parenthesised command name: the parent's pid.
        let after = stat.rsplit(')').next().unwrap_or_default();
        let mut fields = after.split_whitespace();
        let state = fields.next();
        if fields.next() == Some(parent.to_string().as_str()) && state != Some("Z") {
            found.insert(name);
        }
    }
    found
}
