//! The resolved settings of one wsgid instance (CLI merged over the TOML file, validated),
//! and the `WorkerSpec` the master hands to each worker it execs.
//!
//! These types are the contract between master and worker: the master serialises a
//! `WorkerSpec` to JSON into the worker's environment (`WORKER_SPEC_ENV`), the worker reads it
//! back before doing anything else.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use crate::environ::forwarded::{TrustedProxies, TrustedProxy};
use crate::protocol::Limits;

/// Name of the environment variable that carries a `WorkerSpec` as JSON to a worker; the
/// worker removes it from its environment before the application is loaded.
pub const WORKER_SPEC_ENV: &str = "WSGID_WORKER_SPEC";

/// Exit status of a worker whose application or Python setup failed to load. Fatal while
/// wsgid starts (so `wsgid badmodule:app` fails at once); later the worker is replaced with
/// backoff. 0 is a clean exit; any other status or a signal is a crash.
pub const EXIT_APP_LOAD_FAILED: u8 = 3;

/// What a worker writes to its ready pipe (`WorkerSpec::ready_fd`) once its application is
/// loaded: an exit after it is not a failure to load.
pub const LOADED: u8 = b'L';
/// What a worker writes to its ready pipe once it serves.
pub const READY: u8 = b'R';
/// What a serving worker writes to its ready pipe to be replaced: it has taken its
/// `max_requests`.
pub const REPLACE_MAX_REQUESTS: u8 = b'N';
/// The same, because a request outlived `request_timeout` and its grace period.
pub const REPLACE_STUCK: u8 = b'T';

/// Gateway protocol of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Fastcgi,
    Scgi,
}

/// Where to listen, as given by the user (`host:port`, `[v6]:port`, `unix:/path`, `fd:N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListenAddr {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
    Fd(i32),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listen {
    pub protocol: Protocol,
    pub addr: ListenAddr,
}

/// Where an application's `mount` comes from, so that a message about it can name the line
/// to change (`worker::mount_watch`). Paths are display strings: settings travel to
/// workers as JSON, and a message needs no more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountOrigin {
    /// `--mount`.
    Cli,
    /// `mount = ...` in this file, at this line (None when not known).
    File { path: String, line: Option<usize> },
    /// Not set, in a configuration file: it would go in this file, in the `[[app]]` table
    /// at `table_line` when the application has one, else at its top level.
    UnsetInFile {
        path: String,
        table_line: Option<usize>,
    },
    /// Not set, and no configuration file: `--mount` would set it.
    Unset,
}

/// Everything a worker needs to know about the application and how to serve it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The application's name among several (in logs, titles, `wsgid status`); "" when
    /// none was given.
    pub name: String,
    /// `module:callable`, `path.py`, or `path.py:callable`.
    pub app: String,
    /// What answers FastCGI AUTHORIZER requests, in the same form as `app`; None: `app`.
    pub authorizer: Option<String>,
    pub listen: Vec<Listen>,
    pub processes: usize,
    pub threads: usize,
    /// The SCRIPT_NAME prefix, normalised: "" for root, else "/x" without a trailing slash.
    pub mount: String,
    /// Where `mount` was set, or where to set it: what the mount mismatch warning names.
    pub mount_origin: MountOrigin,
    /// Permissions of Unix sockets wsgid creates.
    pub socket_mode: u32,
    pub chdir: Option<PathBuf>,
    pub pythonpath: Vec<PathBuf>,
    pub virtualenv: Option<PathBuf>,
    /// Extra environment variables for workers (added to wsgid's own environment).
    pub env: BTreeMap<String, String>,
    pub limits: LimitsConfig,
    pub timeouts: Timeouts,
    /// When a worker is replaced by a fresh one.
    pub recycle: Recycle,
    /// Files whose change reloads the app (absolute).
    pub reload_on: Vec<PathBuf>,
    /// Connections one worker holds open at once (reported as FCGI_MAX_CONNS).
    pub max_connections: usize,
    /// Requests one worker holds at once, running or waiting for a thread (FCGI_MAX_REQS).
    pub max_in_flight: usize,
    /// Bytes of response output buffered per request before the app is paused.
    pub output_buffer: usize,
    /// Bytes of request body buffered per request before reading from the front end pauses.
    pub input_buffer: usize,
    /// tracing filter, e.g. "info" or "wsgid=debug".
    pub log_level: String,
    /// Who the workers run as and what else they are kept from.
    pub privileges: Privileges,
    /// Whether file responses are handed to the front end to send (`crate::offload`).
    pub offload: Offload,
    /// The front-end clients whose `X-Forwarded-*` headers are applied
    /// (`crate::environ::forwarded`); empty: nobody's.
    pub trusted_proxies: TrustedProxies,
}

/// How a `wsgi.file_wrapper` response over a regular file is handed to the front end, which
/// then sends the file itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offload {
    pub mode: OffloadMode,
    /// Which files may be offloaded and what the front end is told for each: a directory
    /// (or file) as the workers see it, absolute and normalised, and what replaces it in
    /// the header, a URI for `X-Accel-Redirect`, a path for `X-Sendfile`. Longest match
    /// wins. Empty with `X-Sendfile`: every file, under its own path.
    pub map: Vec<(String, String)>,
}

/// The header a file response becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffloadMode {
    /// wsgid sends the file.
    #[default]
    Off,
    /// `X-Accel-Redirect: URI` (nginx: an `internal` location aliasing the directory).
    XAccelRedirect,
    /// `X-Sendfile: PATH` (Apache mod_xsendfile, lighttpd `"x-sendfile" => "enable"`).
    XSendfile,
}

/// Who the workers run as, and the other privilege settings (`master::privileges` applies
/// them). Users and groups are looked up by the master while it resolves the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privileges {
    /// The account workers switch to; None: they run as the master's own user and groups.
    pub account: Option<Account>,
    /// The umask workers set; None: the master's, inherited.
    pub umask: Option<u32>,
    /// The directory workers chroot to; the other paths (chdir, virtualenv, pythonpath, the
    /// application file) are then as seen inside it.
    pub chroot: Option<PathBuf>,
    /// The application may run as root (a root master and no other user configured).
    pub allow_root: bool,
    /// Refuse an application file, or its directory, that others than its user or root
    /// could write.
    pub check_ownership: bool,
    /// Owner given to the Unix sockets wsgid creates; None: the master's user.
    pub socket_owner: Option<Id>,
    /// Group given to the Unix sockets wsgid creates; None: the master's group.
    pub socket_group: Option<Id>,
}

/// A user or group: its number, and its name for messages (the number again when the
/// system's database has no name for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Id {
    pub id: u32,
    pub name: String,
}

/// The credentials workers run with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub user: Id,
    /// The primary group: `group` as configured, else the user's own.
    pub group: Id,
    /// The supplementary groups, when configured; None: none when wsgid switches to another
    /// user or group, unchanged otherwise.
    pub groups: Option<Vec<Id>>,
    /// The user's home directory, from the user database (workers get it as `HOME`).
    pub home: Option<PathBuf>,
}

/// Decoding limits (see `protocol::Limits`), as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsConfig {
    pub max_params_bytes: usize,
    pub max_params: usize,
    pub max_scgi_header: usize,
    pub max_body: Option<u64>,
}

impl From<LimitsConfig> for Limits {
    fn from(l: LimitsConfig) -> Limits {
        Limits {
            max_params_bytes: l.max_params_bytes,
            max_params: l.max_params,
            max_scgi_header: l.max_scgi_header,
            max_body: l.max_body,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        LimitsConfig {
            max_params_bytes: l.max_params_bytes,
            max_params: l.max_params,
            max_scgi_header: l.max_scgi_header,
            max_body: l.max_body,
        }
    }
}

/// Timeouts, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// A connection with no request in progress is closed after this long.
    pub idle_ms: u64,
    /// A request whose params or body stop arriving for this long is failed.
    pub read_ms: u64,
    /// A connection whose front end takes none of the output owed to it for this long is
    /// closed, and its requests stopped.
    pub send_ms: u64,
    /// SIGTERM: how long in-flight requests may take to finish.
    pub graceful_ms: u64,
    /// SIGINT: the same, shorter.
    pub interrupt_ms: u64,
    /// A request still running this long after its params were read is timed out: the
    /// front end gets 504 (or a cut-off response), its Python thread `wsgid.RequestTimeout`.
    /// None: no limit.
    pub request_ms: Option<u64>,
    /// How long a timed-out request's thread may take to return before its worker asks to
    /// be replaced.
    pub request_grace_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            idle_ms: 60_000,
            read_ms: 60_000,
            send_ms: 60_000,
            graceful_ms: 30_000,
            interrupt_ms: 3_000,
            request_ms: None,
            request_grace_ms: 10_000,
        }
    }
}

/// When a worker is replaced, gracefully, by a fresh one: its successor starts, and once
/// it serves the old worker stops accepting and finishes what it holds. `None`: never for
/// that reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recycle {
    /// After this many requests (plus up to `max_requests_jitter`, drawn per worker, so
    /// that workers started together are not replaced together).
    pub max_requests: Option<u64>,
    pub max_requests_jitter: u64,
    /// Once its resident memory exceeds this many bytes (checked every
    /// `RECYCLE_CHECK_INTERVAL`).
    pub max_rss: Option<u64>,
    /// Once it has used this much CPU time (user and system), in milliseconds.
    pub max_cpu_time_ms: Option<u64>,
    /// Once it is this old, in milliseconds.
    pub max_lifetime_ms: Option<u64>,
}

/// One listener a worker inherits: an open, listening, non-CLOEXEC file descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InheritedListener {
    pub fd: i32,
    pub protocol: Protocol,
    /// For logs and for SERVER_NAME/SERVER_PORT fallbacks.
    pub addr: ListenAddr,
}

/// Where a worker posts its connection count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardPlace {
    /// The board's descriptor.
    pub fd: i32,
    /// Slots on the board: two per worker position, so that a worker and its replacement
    /// each have their own while both run.
    pub slots: usize,
    /// This worker's.
    pub slot: usize,
}

/// What the master tells a worker it execs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub settings: Settings,
    pub listeners: Vec<InheritedListener>,
    /// 0-based index of this worker among `settings.processes`.
    pub index: usize,
    /// Write end of the worker's report pipe (`worker::report`): `LOADED` once the app is
    /// loaded, `READY` once it serves, then a request to be replaced if it comes to that.
    pub ready_fd: Option<i32>,
    /// The connection board (`crate::board`), when the worker has siblings.
    pub board: Option<BoardPlace>,
    /// Load the app, report, exit 0/1; serve nothing (`wsgid --check`).
    pub check_only: bool,
    /// Ask to be replaced after this many requests: `settings.recycle.max_requests` with
    /// this worker's jitter added.
    pub max_requests: Option<u64>,
}
