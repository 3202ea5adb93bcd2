//! A real lighttpd for the end-to-end tests: `lighttpd -D -f CONF` with a config rendered
//! into a scratch directory (its own pid file, logs and upload directory), each handler in
//! a `$SERVER["socket"]` block on a loopback port of its own, so one lighttpd serves every
//! shape of a test without one handler leaking into another.
//!
//! lighttpd runs in the foreground as a child of the test and is stopped on drop; a test
//! that panicked gets its config, its error log and its standard error (where the backends
//! it spawned with `bin-path` log) printed. Started as root it switches to www-data, as
//! Debian's lighttpd does, so socket and file permissions are exercised for real: the
//! directories it writes to after the switch (logs, uploads, spawned backends' sockets)
//! are given to www-data.

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, is_root, scratch};

/// The user lighttpd switches to when started as root (Debian's).
pub const USER: &str = "www-data";

/// Which lighttpd module passes requests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// mod_fastcgi: `fastcgi.server`.
    FastCgi,
    /// mod_scgi: `scgi.server`.
    Scgi,
}

impl Module {
    fn directive(self) -> &'static str {
        match self {
            Module::FastCgi => "fastcgi.server",
            Module::Scgi => "scgi.server",
        }
    }
}

/// One application behind lighttpd, in a `$SERVER["socket"]` block of its own.
#[derive(Debug, Clone)]
pub struct Handler {
    pub module: Module,
    /// wsgid's listener: "127.0.0.1:PORT" or "unix:/path".
    pub backend: String,
    /// The prefix lighttpd forwards: "/" or "/app" (no trailing slash).
    pub mount: String,
    /// `server.stream-request-body = 2`: the body goes on to wsgid as it arrives instead
    /// of after lighttpd has read all of it (lighttpd's default).
    pub stream_request_body: bool,
}

impl Handler {
    pub fn new(module: Module, backend: &str, mount: &str) -> Handler {
        Handler {
            module,
            backend: backend.to_string(),
            mount: mount.to_string(),
            stream_request_body: false,
        }
    }

    pub fn streaming(mut self) -> Handler {
        self.stream_request_body = true;
        self
    }

    /// The handler's `$SERVER["socket"]` block for `port`.
    pub fn block(&self, port: u16) -> String {
        let mut body = String::new();
        if self.stream_request_body {
            body.push_str("    server.stream-request-body = 2\n");
        }
        let _ = writeln!(
            body,
            "    {} = ( \"{}\" => (( {}, \"check-local\" => \"disable\" )) )",
            self.module.directive(),
            self.mount,
            backend_params(&self.backend)
        );
        socket_block(port, &body)
    }
}

/// `"host" => "127.0.0.1", "port" => 9000` for "127.0.0.1:9000", `"socket" => "/x.sock"`
/// for "unix:/x.sock".
pub fn backend_params(backend: &str) -> String {
    if let Some(path) = backend.strip_prefix("unix:") {
        return format!("\"socket\" => \"{path}\"");
    }
    let (host, port) = backend
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {backend:?}"));
    format!("\"host\" => \"{host}\", \"port\" => {port}")
}

/// `body` (directives, one a line) in a block that applies to connections to `port` only.
pub fn socket_block(port: u16, body: &str) -> String {
    format!("$SERVER[\"socket\"] == \"127.0.0.1:{port}\" {{\n{body}}}\n")
}

/// What every config starts with; `@DIR@` is the scratch directory, `@PORT@` the base port
/// (no handler: each shape is a `$SERVER["socket"]` block on a port of its own).
const BASE: &str = "\
server.document-root = \"@DIR@/www\"
server.bind = \"127.0.0.1\"
server.port = @PORT@
server.pid-file = \"@DIR@/lighttpd.pid\"
server.errorlog = \"@DIR@/log/error.log\"
server.upload-dirs = ( \"@DIR@/upload\" )
server.modules = ( \"mod_accesslog\" )
accesslog.filename = \"@DIR@/log/access.log\"
@USER@";

/// The lighttpd executable: $LIGHTTPD, else /usr/sbin/lighttpd, else `lighttpd` on PATH.
pub fn lighttpd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LIGHTTPD") {
        return PathBuf::from(p);
    }
    let sbin = Path::new("/usr/sbin/lighttpd");
    if sbin.exists() {
        return sbin.to_path_buf();
    }
    PathBuf::from("lighttpd")
}

/// www-data's uid and gid, when the tests run as root (lighttpd switches to it then).
fn switched_user() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name(USER)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no user {USER} (Debian's base system has it)"));
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// Gives `path` to the user lighttpd runs as (when it switches users), so it can write
/// there after the switch.
pub fn give_to_lighttpd(path: &Path) {
    if let Some((uid, gid)) = switched_user() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// A running lighttpd, stopped on drop.
pub struct Lighttpd {
    child: Option<Child>,
    /// The ports of its `$SERVER["socket"]` blocks, in the order they were given.
    pub ports: Vec<u16>,
    /// The port of `server.port`, outside every block: what top-level directives serve.
    pub base_port: u16,
    /// Its scratch directory (config, logs, pid file, uploads); removed after lighttpd
    /// stops, when the test passed.
    pub dir: PathBuf,
}

impl Lighttpd {
    /// Starts one lighttpd serving each handler on a port of its own (`ports`, in the
    /// order of `handlers`).
    pub fn start(handlers: &[Handler]) -> Lighttpd {
        let ports: Vec<u16> = handlers.iter().map(|_| free_port()).collect();
        let mut blocks = String::from("server.modules += ( \"mod_fastcgi\", \"mod_scgi\" )\n");
        for (h, port) in handlers.iter().zip(&ports) {
            blocks.push_str(&h.block(*port));
        }
        Lighttpd::start_conf(&blocks, ports, Lighttpd::scratch())
    }

    /// A fresh scratch directory for [`Lighttpd::start_conf`], kept after a failing test.
    pub fn scratch() -> PathBuf {
        scratch("lighttpd").keep()
    }

    /// Starts lighttpd with [`BASE`] followed by `conf` (directives and `$SERVER["socket"]`
    /// blocks for `ports`), everything inside `dir`, and waits (up to 10 s) until every
    /// port accepts connections. `dir` is removed on drop when the test passed.
    pub fn start_conf(conf: &str, ports: Vec<u16>, dir: PathBuf) -> Lighttpd {
        for sub in ["www", "log", "upload"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create lighttpd dir");
        }
        give_to_lighttpd(&dir.join("log"));
        give_to_lighttpd(&dir.join("upload"));
        let base_port = free_port();
        let user = match switched_user() {
            Some(_) => format!("server.username = \"{USER}\"\nserver.groupname = \"{USER}\"\n"),
            None => String::new(),
        };
        let full = BASE
            .replace("@USER@", &user)
            .replace("@PORT@", &base_port.to_string())
            .replace("@DIR@", &dir.display().to_string())
            + conf;
        let conf_path = dir.join("lighttpd.conf");
        std::fs::write(&conf_path, &full).expect("write lighttpd.conf");
        let out = std::fs::File::create(dir.join("stderr.log")).expect("create stderr log");
        let err = out.try_clone().expect("clone stderr log");
        let bin = lighttpd_bin();
        // As under systemd: a near-empty environment, which the backends lighttpd spawns
        // inherit.
        let child = Command::new(&bin)
            .arg("-D")
            .arg("-f")
            .arg(&conf_path)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): install lighttpd (Debian: apt-get install lighttpd) \
                     or set LIGHTTPD to its path",
                    bin.display()
                )
            });
        let mut l = Lighttpd {
            child: Some(child),
            ports,
            base_port,
            dir,
        };
        let end = Instant::now() + Duration::from_secs(10);
        let mut waiting: Vec<u16> = l.ports.clone();
        waiting.push(base_port);
        loop {
            if let Some(st) = l.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                l.child = None;
                panic!("lighttpd exited early ({st})");
            }
            waiting.retain(|p| TcpStream::connect(("127.0.0.1", *p)).is_err());
            if waiting.is_empty() {
                return l;
            }
            if Instant::now() > end {
                panic!("lighttpd not listening on {waiting:?} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// lighttpd's error log so far.
    pub fn error_log(&self) -> String {
        self.read("log/error.log")
    }

    /// lighttpd's standard error so far: where the backends it spawned write their logs.
    pub fn stderr(&self) -> String {
        self.read("stderr.log")
    }

    /// The rendered config.
    pub fn config(&self) -> String {
        self.read("lighttpd.conf")
    }

    /// lighttpd's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `sig` to lighttpd (SIGUSR1: graceful restart; SIGINT: graceful stop).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal lighttpd");
    }

    /// Stops lighttpd (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            super::stop_child(c);
        }
    }
}

impl Drop for Lighttpd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- lighttpd config ----\n{}\n---- lighttpd error.log ----\n{}\n\
                 ---- lighttpd stderr (and its spawned backends') ----\n{}",
                self.config(),
                self.error_log(),
                self.stderr()
            );
        }
        self.stop();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
