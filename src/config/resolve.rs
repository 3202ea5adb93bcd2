//! Merges the command line over the configuration file over the defaults, validates the
//! result, and produces the `Settings` the master runs and hands to every worker.
//!
//! Rules:
//! - a value given on the command line wins over the file's; list options given on the
//!   command line (`--pythonpath`, `--env`, `--offload-map`, `--trusted-proxies`) replace
//!   the file's list, and any `--fastcgi` or `--scgi` replaces all the file's listeners
//!   (both `fastcgi` and `scgi`);
//! - relative paths are anchored at the working directory when they come from the command
//!   line and at the file's directory when they come from the file, so every path in
//!   `Settings` is absolute;
//! - `Settings::app` is either a module spec (`pkg.module:callable`, no `/`) or an absolute
//!   file path (`/srv/app.wsgi`, `/srv/app.py:callable`);
//! - an invalid value is reported with the option that set it (`--processes` or
//!   `processes in /etc/wsgid.toml`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use super::cli::Cli;
use super::file::FileConfig;
use super::files;
use super::settings::{
    LimitsConfig, Listen, ListenAddr, MountOrigin, Protocol, Recycle, Settings, Timeouts,
    TrustedProxies,
};
use super::values::{
    check_env_name, check_env_value, check_name, format_listen_addr, format_size, normalize_mount,
    parse_listen, parse_listen_addr, BodyLimit, OneOrMany,
};
use crate::protocol::Params;

/// Worker processes when none is configured.
pub const DEFAULT_PROCESSES: usize = 1;
/// Python threads per worker when none is configured: enough for requests that wait on I/O
/// (databases, HTTP calls, which release the GIL) to overlap, and cheap while idle (a
/// parked thread costs its stack and nothing else).
pub const DEFAULT_THREADS: usize = 8;
/// The most worker processes one wsgid runs.
pub const MAX_PROCESSES: usize = 1024;
/// The most Python threads one worker runs.
pub const MAX_THREADS: usize = 1024;
/// Permissions of the Unix sockets wsgid creates: owner and group may connect, others not.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1000;
pub const DEFAULT_OUTPUT_BUFFER: usize = 256 * 1024;
pub const DEFAULT_INPUT_BUFFER: usize = 1024 * 1024;
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Longest Unix socket path, in bytes (`sun_path` holds 108 bytes with the final NUL).
pub const MAX_UNIX_PATH: usize = 107;

// The largest value of each limit that the code serving it can represent, checked here so
// that no limit can be set past what its counters and offsets hold.
/// A request's names and values are kept in one `Params`, with `u32` offsets.
pub const MAX_PARAMS_BYTES: usize = Params::MAX_BYTES;
/// Pairs are numbered with `u32`.
pub const MAX_PARAMS: usize = Params::MAX_COUNT;
/// The SCGI header is one buffer parsed into one `Params`.
pub const MAX_SCGI_HEADER: usize = Params::MAX_BYTES;
/// A worker posts its connection count on the board in a `u32` slot.
pub const MAX_CONNECTIONS: usize = crate::board::MAX_COUNT;
/// The shortest `max_lifetime` and `max_cpu_time`: a worker replaced more often than this
/// would spend its life loading the application.
pub const MIN_RECYCLE_MS: u64 = 1000;
/// Buffered bytes are counted against the lengths of `Vec`s, which hold at most
/// `isize::MAX` bytes.
pub const MAX_BUFFER: usize = isize::MAX as usize;
/// Entries of `trusted_proxies`, each matched against every request from a proxy.
pub const MAX_TRUSTED_PROXIES: usize = crate::environ::forwarded::MAX_TRUSTED_PROXIES;

/// What resolution needs from the process: where relative command-line paths are anchored,
/// and the `RUST_LOG` fallback for the log filter.
#[derive(Debug, Clone)]
pub struct Context {
    pub cwd: PathBuf,
    pub rust_log: Option<String>,
}

impl Context {
    /// The context of the running process.
    pub fn from_process() -> Result<Context, ConfigError> {
        let cwd = std::env::current_dir()
            .map_err(|e| ConfigError(format!("cannot determine the working directory: {e}")))?;
        Ok(Context {
            cwd,
            rust_log: std::env::var("RUST_LOG").ok(),
        })
    }
}

/// A usage or configuration error, worded for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// What wsgid runs: one or more applications, and what the master itself needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub apps: Vec<Settings>,
    /// Where the master answers `wsgid status` and `wsgid reload`.
    pub control_socket: Option<PathBuf>,
    /// The master's own log filter.
    pub log_level: String,
}

/// Options that describe one application: with `[[app]]` tables in the file they belong
/// there.
const PER_APP_OPTIONS: [&str; 6] = [
    "APP",
    "--authorizer",
    "--name",
    "--listen",
    "--fastcgi",
    "--scgi",
];

/// Loads `--config` if given (with what it includes), then merges the command line over
/// each application it declares (see `merge`), and checks the applications against each
/// other: distinct names, no socket given to two of them.
pub fn resolve(cli: &Cli, ctx: &Context) -> Result<Config, ConfigError> {
    let Some(path) = &cli.config else {
        let settings = merge(cli, None, ctx)?;
        return Ok(Config {
            control_socket: cli.control_socket.as_ref().map(|p| anchor(&ctx.cwd, p)),
            log_level: settings.log_level.clone(),
            apps: vec![settings],
        });
    };
    // The file's problems and the merge's are reported together.
    let path = anchor(&ctx.cwd, path);
    let (loaded, mut problems) = files::load(&path).map_err(ConfigError)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let control_socket = match (&cli.control_socket, &loaded.control_socket) {
        (Some(p), _) => Some(anchor(&ctx.cwd, p)),
        (None, Some(p)) => Some(anchor(dir, p)),
        (None, None) => None,
    };
    let mut apps = Vec::new();
    if loaded.apps.is_empty() {
        match merge(cli, Some((&loaded.top, &path)), ctx) {
            Ok(settings) => apps.push(settings),
            Err(e) => problems.push(e.0),
        }
    } else {
        let given: Vec<&str> = [
            cli.app.is_some(),
            cli.authorizer.is_some(),
            cli.name.is_some(),
            !cli.listen.is_empty(),
            !cli.fastcgi.is_empty(),
            !cli.scgi.is_empty(),
        ]
        .iter()
        .zip(PER_APP_OPTIONS)
        .filter_map(|(&set, name)| set.then_some(name))
        .collect();
        if !given.is_empty() {
            problems.push(format!(
                "{}: {} declares [[app]] tables, so each app's own settings belong there",
                given.join(", "),
                path.display()
            ));
        }
        // Reported above; each app keeps its own.
        let cli = &Cli {
            app: None,
            authorizer: None,
            name: None,
            listen: Vec::new(),
            fastcgi: Vec::new(),
            scgi: Vec::new(),
            ..cli.clone()
        };
        for table in &loaded.apps {
            let label = table.config.name.clone().unwrap_or_default();
            let place = format!(
                "the [[app]] table at {}, line {}",
                table.file.display(),
                table.line
            );
            if table.config.name.is_none() && !table.config.rejected.iter().any(|k| k == "name") {
                problems.push(format!("{place} has no name: set name = \"...\""));
            }
            match merge_app(cli, Some((&table.config, &table.file)), ctx, Some(&label)) {
                Ok(mut settings) => {
                    // An unset mount would go in this app's own table.
                    if let MountOrigin::UnsetInFile { table_line, .. } = &mut settings.mount_origin
                    {
                        *table_line = Some(table.line);
                    }
                    if settings.listen.is_empty() {
                        let app = match label.as_str() {
                            "" => String::new(),
                            name => format!(" (app {name})"),
                        };
                        problems.push(format!(
                            "{place}{app} has no listener: set listen, fastcgi or scgi"
                        ));
                    }
                    apps.push(settings);
                }
                Err(e) => problems.push(e.0),
            }
        }
        problems.extend(clashes(&apps));
    }
    let m = Merger {
        file_path: Some(&path),
        cwd: &ctx.cwd,
        file_dir: dir.to_path_buf(),
        app_label: None,
    };
    let log_level = match m.log_level(cli, &loaded.top, ctx) {
        Ok(l) => l,
        Err(e) => {
            if !problems.contains(&e.0) {
                problems.push(e.0);
            }
            DEFAULT_LOG_LEVEL.to_string()
        }
    };
    if !problems.is_empty() {
        return Err(ConfigError(problems.join("\n")));
    }
    Ok(Config {
        apps,
        control_socket,
        log_level,
    })
}

/// Two applications with one name, or one socket given to two applications.
fn clashes(apps: &[Settings]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, a) in apps.iter().enumerate() {
        for b in &apps[i + 1..] {
            if !a.name.is_empty() && a.name == b.name {
                problems.push(format!("two apps are named {}", a.name));
            }
            for l in &a.listen {
                let ephemeral = matches!(&l.addr, ListenAddr::Tcp(t) if t.port() == 0);
                if !ephemeral && b.listen.iter().any(|m| m.addr == l.addr) {
                    problems.push(format!(
                        "{} is given to two apps, {} and {}",
                        format_listen_addr(&l.addr),
                        a.name,
                        b.name
                    ));
                }
            }
        }
    }
    problems
}

/// Merges the command line over a parsed configuration file (with its absolute path) over
/// the defaults, and validates the result. Every invalid value is reported, one per line,
/// not only the first.
pub fn merge(
    cli: &Cli,
    file: Option<(&FileConfig, &Path)>,
    ctx: &Context,
) -> Result<Settings, ConfigError> {
    merge_app(cli, file, ctx, None)
}

/// `merge` for the application called `label` among several (messages name it).
pub fn merge_app(
    cli: &Cli,
    file: Option<(&FileConfig, &Path)>,
    ctx: &Context,
    label: Option<&str>,
) -> Result<Settings, ConfigError> {
    let empty = FileConfig::default();
    let (f, file_path) = match file {
        Some((f, p)) => (f, Some(p)),
        None => (&empty, None),
    };
    let m = Merger {
        file_path,
        cwd: &ctx.cwd,
        file_dir: file_path
            .and_then(Path::parent)
            .map_or_else(|| ctx.cwd.clone(), Path::to_path_buf),
        app_label: label.map(str::to_string),
    };
    let mut problems = Problems::default();

    let name = match m.pick("name", cli.name.clone(), f.name.clone()) {
        Some(p) => problems
            .take(check_name(&p.value).map_err(|e| p.err(e)))
            .map(|()| p.value)
            .unwrap_or_default(),
        None => String::new(),
    };

    let app = match m.pick("app", cli.app.clone(), f.app.clone()) {
        Some(app) => {
            problems.take(resolve_app(&app.value, m.base(app.from_cli)).map_err(|e| app.err(e)))
        }
        // Refused in the file: that problem is reported already.
        None if f.rejected.iter().any(|k| k == "app") => None,
        None => {
            problems.add(ConfigError(
                "no application: give APP (module:callable, or a path to a .py or .wsgi file) \
                 or set app in the configuration file"
                    .into(),
            ));
            None
        }
    };

    let listen = m.listeners(cli, f, &mut problems);

    let processes = problems
        .take(count(
            m.pick("processes", cli.processes, f.processes),
            DEFAULT_PROCESSES,
            MAX_PROCESSES,
        ))
        .unwrap_or(DEFAULT_PROCESSES);
    let threads = problems
        .take(count(
            m.pick("threads", cli.threads, f.threads),
            DEFAULT_THREADS,
            MAX_THREADS,
        ))
        .unwrap_or(DEFAULT_THREADS);

    let (mount, mount_origin) = match m.pick("mount", cli.mount.clone(), f.mount.clone()) {
        Some(p) => (
            problems
                .take(normalize_mount(&p.value).map_err(|e| p.err(e)))
                .unwrap_or_default(),
            m.mount_origin(p.from_cli, f),
        ),
        None => (
            String::new(),
            match file_path {
                Some(path) => MountOrigin::UnsetInFile {
                    path: path.display().to_string(),
                    table_line: None,
                },
                None => MountOrigin::Unset,
            },
        ),
    };
    let socket_mode = m
        .pick("socket_mode", cli.socket_mode, f.socket_mode.map(|m| m.0))
        .map_or(DEFAULT_SOCKET_MODE, |p| p.value);

    let chdir = problems
        .take(m.path(m.pick("chdir", cli.chdir.clone(), f.chdir.clone())))
        .flatten();
    let virtualenv = problems
        .take(m.path(m.pick("virtualenv", cli.virtualenv.clone(), f.virtualenv.clone())))
        .flatten();
    let pythonpath = match m.pick(
        "pythonpath",
        non_empty(cli.pythonpath.clone()),
        f.pythonpath.clone(),
    ) {
        Some(p) => p
            .value
            .iter()
            .filter_map(|dir| problems.take(m.path(Some(p.with(dir.clone())))).flatten())
            .collect(),
        None => Vec::new(),
    };
    let env = problems.take(m.env(cli, f)).unwrap_or_default();
    let reload_on = match m.pick(
        "reload_on",
        non_empty(cli.reload_on.clone()),
        f.reload_on.clone(),
    ) {
        Some(p) => p
            .value
            .iter()
            .filter_map(|file| problems.take(m.path(Some(p.with(file.clone())))).flatten())
            .collect(),
        None => Vec::new(),
    };

    let defaults = LimitsConfig::default();
    let limits = LimitsConfig {
        max_params_bytes: problems
            .take(size(
                m.pick(
                    "max_params_bytes",
                    cli.max_params_bytes,
                    f.max_params_bytes.map(|s| s.0),
                ),
                defaults.max_params_bytes,
                MAX_PARAMS_BYTES,
            ))
            .unwrap_or(defaults.max_params_bytes),
        max_params: problems
            .take(count_within(
                m.pick("max_params", cli.max_params, f.max_params),
                defaults.max_params,
                MAX_PARAMS,
            ))
            .unwrap_or(defaults.max_params),
        max_scgi_header: problems
            .take(size(
                m.pick(
                    "max_scgi_header",
                    cli.max_scgi_header,
                    f.max_scgi_header.map(|s| s.0),
                ),
                defaults.max_scgi_header,
                MAX_SCGI_HEADER,
            ))
            .unwrap_or(defaults.max_scgi_header),
        max_body: match m.pick("max_body", cli.max_body, f.max_body) {
            None => defaults.max_body,
            Some(p) => match p.value {
                BodyLimit(Some(0)) => {
                    problems.add(p.err("must be at least 1 byte, or \"unlimited\"".into()));
                    defaults.max_body
                }
                BodyLimit(limit) => limit,
            },
        },
    };

    let t = Timeouts::default();
    let mut timeout = |key: &str,
                       cli: Option<u64>,
                       file: Option<super::values::Millis>,
                       default: u64,
                       min: u64| {
        problems
            .take(millis(m.pick(key, cli, file.map(|d| d.0)), default, min))
            .unwrap_or(default)
    };
    let mut timeouts = Timeouts {
        idle_ms: timeout(
            "idle_timeout",
            cli.idle_timeout,
            f.idle_timeout,
            t.idle_ms,
            1,
        ),
        read_ms: timeout(
            "read_timeout",
            cli.read_timeout,
            f.read_timeout,
            t.read_ms,
            1,
        ),
        send_ms: timeout(
            "send_timeout",
            cli.send_timeout,
            f.send_timeout,
            t.send_ms,
            1,
        ),
        graceful_ms: timeout(
            "graceful_timeout",
            cli.graceful_timeout,
            f.graceful_timeout,
            t.graceful_ms,
            0,
        ),
        interrupt_ms: timeout(
            "interrupt_timeout",
            cli.interrupt_timeout,
            f.interrupt_timeout,
            t.interrupt_ms,
            0,
        ),
        request_ms: None,
        request_grace_ms: timeout(
            "request_timeout_grace",
            cli.request_timeout_grace,
            f.request_timeout_grace,
            t.request_grace_ms,
            0,
        ),
    };
    timeouts.request_ms = problems
        .take(
            m.pick(
                "request_timeout",
                cli.request_timeout,
                f.request_timeout.map(|d| d.0),
            )
            .map(|p| millis(Some(p), 0, 1))
            .transpose(),
        )
        .flatten();

    let recycle = Recycle {
        // 0 is gunicorn's and uWSGI's "never".
        max_requests: m
            .pick("max_requests", cli.max_requests, f.max_requests)
            .and_then(|p| (p.value > 0).then_some(p.value)),
        max_requests_jitter: m
            .pick(
                "max_requests_jitter",
                cli.max_requests_jitter,
                f.max_requests_jitter,
            )
            .map_or(0, |p| p.value),
        max_rss: problems
            .take(
                m.pick("max_rss", cli.max_rss, f.max_rss.map(|s| s.0))
                    .map(|p| size(Some(p), 0, usize::MAX).map(|n| n as u64))
                    .transpose(),
            )
            .flatten(),
        max_cpu_time_ms: problems
            .take(
                m.pick(
                    "max_cpu_time",
                    cli.max_cpu_time,
                    f.max_cpu_time.map(|d| d.0),
                )
                .map(|p| millis(Some(p), 0, MIN_RECYCLE_MS))
                .transpose(),
            )
            .flatten(),
        max_lifetime_ms: problems
            .take(
                m.pick(
                    "max_lifetime",
                    cli.max_lifetime,
                    f.max_lifetime.map(|d| d.0),
                )
                .map(|p| millis(Some(p), 0, MIN_RECYCLE_MS))
                .transpose(),
            )
            .flatten(),
    };

    let max_connections = problems
        .take(count_within(
            m.pick("max_connections", cli.max_connections, f.max_connections),
            DEFAULT_MAX_CONNECTIONS,
            MAX_CONNECTIONS,
        ))
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    // A counter of requests held, compared with this: any usize is representable.
    let max_in_flight = problems
        .take(count_within(
            m.pick("max_in_flight", cli.max_in_flight, f.max_in_flight),
            DEFAULT_MAX_IN_FLIGHT,
            usize::MAX,
        ))
        .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    let output_buffer = problems
        .take(size(
            m.pick(
                "output_buffer",
                cli.output_buffer,
                f.output_buffer.map(|s| s.0),
            ),
            DEFAULT_OUTPUT_BUFFER,
            MAX_BUFFER,
        ))
        .unwrap_or(DEFAULT_OUTPUT_BUFFER);
    let authorizer = m
        .pick("authorizer", cli.authorizer.clone(), f.authorizer.clone())
        .and_then(|a| {
            problems.take(resolve_app(&a.value, m.base(a.from_cli)).map_err(|e| a.err(e)))
        });
    let input_buffer = problems
        .take(size(
            m.pick(
                "input_buffer",
                cli.input_buffer,
                f.input_buffer.map(|s| s.0),
            ),
            DEFAULT_INPUT_BUFFER,
            MAX_BUFFER,
        ))
        .unwrap_or(DEFAULT_INPUT_BUFFER);
    let log_level = problems
        .take(m.log_level(cli, f, ctx))
        .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string());

    let privileges = privileges::privileges(&m, cli, f, &mut problems);
    let offload = offload::offload(&m, cli, f, &mut problems);
    let trusted_proxies = problems.take(m.trusted_proxies(cli, f)).unwrap_or_default();

    problems.into_result()?;
    // Without problems, the application was given and is valid.
    let Some(app) = app else {
        return Err(ConfigError("no application".into()));
    };
    Ok(Settings {
        name,
        app,
        authorizer,
        listen,
        processes,
        threads,
        mount,
        mount_origin,
        socket_mode,
        chdir,
        pythonpath,
        virtualenv,
        env,
        limits,
        timeouts,
        recycle,
        reload_on,
        max_connections,
        max_in_flight,
        output_buffer,
        input_buffer,
        log_level,
        privileges,
        offload,
        trusted_proxies,
    })
}

/// The problems found so far, reported together.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, e: ConfigError) {
        self.0.push(e.0);
    }

    /// The value, or None with its problem noted.
    fn take<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        r.map_err(|e| self.add(e)).ok()
    }

    /// Ok when there is none; else every problem, one per line.
    fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.0.join("\n")))
        }
    }
}

/// A value and where it came from, for error messages.
struct Picked<T> {
    value: T,
    from_cli: bool,
    /// `--max-body` or `max_body in /etc/wsgid.toml`.
    name: String,
}

impl<T> Picked<T> {
    fn err(&self, msg: String) -> ConfigError {
        ConfigError(format!("{}: {msg}", self.name))
    }

    fn with<U>(&self, value: U) -> Picked<U> {
        Picked {
            value,
            from_cli: self.from_cli,
            name: self.name.clone(),
        }
    }
}

struct Merger<'a> {
    file_path: Option<&'a Path>,
    cwd: &'a Path,
    file_dir: PathBuf,
    /// The application's name, among several.
    app_label: Option<String>,
}

impl Merger<'_> {
    fn pick<T>(&self, key: &str, cli: Option<T>, file: Option<T>) -> Option<Picked<T>> {
        match (cli, file) {
            (Some(value), _) => Some(self.origin(key, true).with(value)),
            (None, Some(value)) => Some(self.origin(key, false).with(value)),
            (None, None) => None,
        }
    }

    /// Names `key` as given on the command line or in the file.
    fn origin(&self, key: &str, from_cli: bool) -> Picked<()> {
        let name = match (from_cli, self.file_path) {
            (true, _) if key == "app" => "APP".to_string(),
            (true, _) => format!("--{}", key.replace('_', "-")),
            (false, Some(p)) => match &self.app_label {
                Some(app) if !app.is_empty() => format!("{key} (app {app}) in {}", p.display()),
                _ => format!("{key} in {}", p.display()),
            },
            (false, None) => key.to_string(),
        };
        Picked {
            value: (),
            from_cli,
            name,
        }
    }

    /// Where a `mount` that was given came from: the command line, or the file and line
    /// of its key.
    fn mount_origin(&self, from_cli: bool, f: &FileConfig) -> MountOrigin {
        if from_cli {
            return MountOrigin::Cli;
        }
        let path = f
            .files
            .get("mount")
            .map(PathBuf::as_path)
            .or(self.file_path)
            .map_or_else(String::new, |p| p.display().to_string());
        MountOrigin::File {
            path,
            line: f.lines.get("mount").copied(),
        }
    }

    /// Where relative paths from this source are anchored.
    fn base(&self, from_cli: bool) -> &Path {
        if from_cli {
            self.cwd
        } else {
            &self.file_dir
        }
    }

    /// An absolute, UTF-8 path (paths travel to workers as JSON strings).
    fn path(&self, p: Option<Picked<PathBuf>>) -> Result<Option<PathBuf>, ConfigError> {
        let Some(p) = p else { return Ok(None) };
        if p.value.as_os_str().is_empty() {
            return Err(p.err("the path is empty".into()));
        }
        let abs = anchor(self.base(p.from_cli), &p.value);
        if abs.to_str().is_none() {
            return Err(p.err(format!("{} is not valid UTF-8", abs.display())));
        }
        Ok(Some(abs))
    }

    /// The listeners given, each checked; a bad one is noted in `problems` and left out.
    fn listeners(&self, cli: &Cli, f: &FileConfig, problems: &mut Problems) -> Vec<Listen> {
        let mut given: Vec<(Protocol, ListenAddr, Picked<()>)> = Vec::new();
        if !cli.fastcgi.is_empty() || !cli.scgi.is_empty() || !cli.listen.is_empty() {
            for l in &cli.listen {
                given.push((l.protocol, l.addr.clone(), self.origin("listen", true)));
            }
            for (protocol, addrs, key) in [
                (Protocol::Fastcgi, &cli.fastcgi, "fastcgi"),
                (Protocol::Scgi, &cli.scgi, "scgi"),
            ] {
                for addr in addrs {
                    given.push((protocol, addr.clone(), self.origin(key, true)));
                }
            }
        } else {
            if let Some(origin) = self.pick("listen", None, f.listen.clone()) {
                for s in &origin.value {
                    if let Some(l) = problems.take(parse_listen(s).map_err(|e| origin.err(e))) {
                        given.push((l.protocol, l.addr, origin.with(())));
                    }
                }
            }
            for (protocol, addrs, key) in [
                (Protocol::Fastcgi, &f.fastcgi, "fastcgi"),
                (Protocol::Scgi, &f.scgi, "scgi"),
            ] {
                let Some(origin) = self.pick(key, None, addrs.clone().map(OneOrMany::into_vec))
                else {
                    continue;
                };
                for s in &origin.value {
                    if let Some(addr) =
                        problems.take(parse_listen_addr(s).map_err(|e| origin.err(e)))
                    {
                        given.push((protocol, addr, origin.with(())));
                    }
                }
            }
        }

        let mut listen: Vec<Listen> = Vec::with_capacity(given.len());
        for (protocol, addr, origin) in given {
            let addr = match addr {
                ListenAddr::Unix(path) => {
                    let abs = anchor(self.base(origin.from_cli), &path);
                    let len = abs.as_os_str().len();
                    if len > MAX_UNIX_PATH {
                        problems.add(origin.err(format!(
                            "unix socket path {} is {len} bytes long; at most {MAX_UNIX_PATH} fit",
                            abs.display()
                        )));
                        continue;
                    }
                    if abs.to_str().is_none() {
                        problems.add(origin.err(format!("{} is not valid UTF-8", abs.display())));
                        continue;
                    }
                    ListenAddr::Unix(abs)
                }
                other => other,
            };
            let ephemeral = matches!(&addr, ListenAddr::Tcp(a) if a.port() == 0);
            if !ephemeral && listen.iter().any(|l| l.addr == addr) {
                problems.add(origin.err(format!(
                    "{} is given more than once",
                    format_listen_addr(&addr)
                )));
                continue;
            }
            listen.push(Listen { protocol, addr });
        }
        listen
    }

    fn env(&self, cli: &Cli, f: &FileConfig) -> Result<BTreeMap<String, String>, ConfigError> {
        let cli_env = non_empty(cli.env.clone()).map(|pairs| pairs.into_iter().collect());
        let Some(p) = self.pick("env", cli_env, f.env.clone()) else {
            return Ok(BTreeMap::new());
        };
        for (name, value) in &p.value {
            check_env_name(name).map_err(|e| p.err(e))?;
            check_env_value(name, value).map_err(|e| p.err(e))?;
        }
        Ok(p.value)
    }

    /// The command line's list, else the file's; at most `MAX_TRUSTED_PROXIES` entries
    /// once repeats are dropped.
    fn trusted_proxies(&self, cli: &Cli, f: &FileConfig) -> Result<TrustedProxies, ConfigError> {
        let Some(p) = self.pick(
            "trusted_proxies",
            non_empty(cli.trusted_proxies.clone()),
            f.trusted_proxies.clone(),
        ) else {
            return Ok(TrustedProxies::default());
        };
        let list = TrustedProxies::new(p.value.iter().copied());
        let n = list.entries().len();
        if n > MAX_TRUSTED_PROXIES {
            return Err(p.err(format!(
                "{n} entries; at most {MAX_TRUSTED_PROXIES} may be given"
            )));
        }
        Ok(list)
    }

    fn log_level(&self, cli: &Cli, f: &FileConfig, ctx: &Context) -> Result<String, ConfigError> {
        let picked = self
            .pick("log_level", cli.log_level.clone(), f.log_level.clone())
            .or_else(|| {
                let from_env = ctx.rust_log.clone().filter(|s| !s.trim().is_empty())?;
                Some(Picked {
                    value: from_env,
                    from_cli: true,
                    name: "RUST_LOG".into(),
                })
            });
        let Some(p) = picked else {
            return Ok(DEFAULT_LOG_LEVEL.to_string());
        };
        tracing_subscriber::EnvFilter::try_new(&p.value)
            .map_err(|e| p.err(format!("{:?} is not a log filter: {e}", p.value)))?;
        Ok(p.value)
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// A count between 1 and `max`, a bound wsgid sets.
fn count(p: Option<Picked<usize>>, default: usize, max: usize) -> Result<usize, ConfigError> {
    let Some(p) = p else { return Ok(default) };
    if p.value < 1 || p.value > max {
        return Err(p.err(format!("must be between 1 and {max} (got {})", p.value)));
    }
    Ok(p.value)
}

/// A count of at least 1 and at most `cap`, the largest the code can represent.
fn count_within(
    p: Option<Picked<usize>>,
    default: usize,
    cap: usize,
) -> Result<usize, ConfigError> {
    let Some(p) = p else { return Ok(default) };
    if p.value < 1 {
        return Err(p.err(format!("must be at least 1 (got {})", p.value)));
    }
    if p.value > cap {
        return Err(p.err(format!(
            "{} is above the largest this build can hold, {cap}",
            p.value
        )));
    }
    Ok(p.value)
}

/// A byte size of at least 1 and at most `cap`, the largest the code can represent.
fn size(p: Option<Picked<u64>>, default: usize, cap: usize) -> Result<usize, ConfigError> {
    let Some(p) = p else { return Ok(default) };
    if p.value < 1 {
        return Err(p.err("must be at least 1 byte".into()));
    }
    match usize::try_from(p.value) {
        Ok(n) if n <= cap => Ok(n),
        _ => Err(p.err(format!(
            "{} is above the largest this build can hold, {}",
            format_size(p.value),
            format_size(cap as u64)
        ))),
    }
}

/// A duration in milliseconds of at least `min`.
fn millis(p: Option<Picked<u64>>, default: u64, min: u64) -> Result<u64, ConfigError> {
    let Some(p) = p else { return Ok(default) };
    if p.value < min {
        return Err(p.err(format!("must be at least {min} ms (got {} ms)", p.value)));
    }
    Ok(p.value)
}

/// `base/path` unless `path` is absolute, with `.` components removed.
pub fn anchor(base: &Path, path: &Path) -> PathBuf {
    base.join(path)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Checks an application spec and makes a file path absolute. A spec names a file when it
/// contains `/`, ends in `.py`, or ends in `.wsgi` and such a file exists (Django's
/// `mysite.wsgi:application` is a module); otherwise it is a dotted module name.
pub fn resolve_app(app: &str, base: &Path) -> Result<String, String> {
    let (target, callable) = match app.rsplit_once(':') {
        Some((target, callable)) if !callable.contains('/') => (target, Some(callable)),
        _ => (app, None),
    };
    if target.is_empty() {
        return Err(format!(
            "{app:?}: expected module:callable or a path to a .py or .wsgi file"
        ));
    }
    if let Some(c) = callable {
        if !is_dotted_name(c) {
            return Err(format!("{app:?}: {c:?} is not a Python name"));
        }
    }
    let is_file = target.contains('/')
        || target.ends_with(".py")
        || (target.ends_with(".wsgi") && base.join(target).is_file());
    if !is_file {
        if !is_dotted_name(target) {
            return Err(format!(
                "{app:?}: {target:?} is neither a module name nor a path \
                 (a file must end in .py or .wsgi, or contain a /)"
            ));
        }
        return Ok(app.to_string());
    }
    let path = anchor(base, Path::new(target));
    let path = path
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", path.display()))?;
    Ok(match callable {
        Some(c) => format!("{path}:{c}"),
        None => path.to_string(),
    })
}

/// `name` or `pkg.name`: Python identifiers joined by dots.
fn is_dotted_name(s: &str) -> bool {
    s.split('.').all(|part| {
        let mut chars = part.chars();
        matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
            && chars.all(|c| c == '_' || c.is_alphanumeric())
    })
}

mod offload;
mod privileges;
#[cfg(test)]
mod tests;

/// Settings from command-line `args` (after an app spec and a FastCGI address) over the
/// TOML text `toml`, read as the file `file`, run from `cwd`: what the tests of each
/// group of keys merge.
#[cfg(test)]
fn merge_for_test(
    args: &[&str],
    toml: &str,
    file: &str,
    cwd: &str,
) -> Result<Settings, ConfigError> {
    use clap::Parser;
    let cli = Cli::try_parse_from(
        ["wsgid", "app:application", "--fastcgi", "127.0.0.1:9000"]
            .into_iter()
            .chain(args.iter().copied()),
    )
    .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let parsed = FileConfig::parse(toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
    let ctx = Context {
        cwd: PathBuf::from(cwd),
        rust_log: None,
    };
    merge(&cli, Some((&parsed, Path::new(file))), &ctx)
}
