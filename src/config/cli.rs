//! The command line. Every option here has a key of the same name (with `_` for `-`) in the
//! configuration file; `resolve` merges the two, the command line winning.
//!
//! Values are parsed here, so a malformed one is reported by clap with the option's name and
//! exit status 2; range checks happen in `resolve`, once for both sources.

use std::path::PathBuf;

use clap::Parser;

use super::settings::{Listen, ListenAddr, OffloadMode, TrustedProxy};
use super::values::{
    parse_body_limit, parse_duration_ms, parse_env_pair, parse_listen, parse_listen_addr,
    parse_mode, parse_offload, parse_offload_pair, parse_size, parse_trusted_proxy, BodyLimit,
};

const AFTER_HELP: &str = "\
ADDR is host:port, [v6]:port, unix:/path or fd:N (an inherited listening socket).
With no --fastcgi or --scgi, wsgid serves FastCGI on a listening socket passed as fd 0
(mod_fcgid, lighttpd bin-path, cgi-fcgi -start) or on systemd's LISTEN_FDS.
Sizes take K, M, G, T, P, E suffixes (powers of 1024); durations are seconds
(0.5, 250ms, 2m, 1h, 1d).

Signals: SIGTERM finishes in-flight requests then exits; SIGINT and SIGQUIT do the same
with a shorter timeout; SIGHUP reloads the configuration and replaces every worker.
Exit status: 0 clean, 1 failure, 2 usage or configuration error.
See wsgid(8) and wsgid.toml(5).";

/// wsgid command line.
#[derive(Debug, Default, Clone, Parser)]
#[command(
    name = "wsgid",
    version,
    about = "Host a Python WSGI application behind a web server, over FastCGI or SCGI",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// The WSGI application: module:callable (e.g. mysite.wsgi:application), or a path to a
    /// .py/.wsgi file whose `application` is served (path.py:name for another callable)
    #[arg(value_name = "APP")]
    pub app: Option<String>,

    /// The callable that answers FastCGI AUTHORIZER requests, in the same forms as APP
    /// [default: APP itself]
    #[arg(long, value_name = "APP")]
    pub authorizer: Option<String>,

    /// The application's name, in logs, process titles and `wsgid status` [default: none]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Listen on fastcgi:ADDR or scgi:ADDR (repeatable)
    #[arg(long, value_name = "PROTOCOL:ADDR", value_parser = parse_listen)]
    pub listen: Vec<Listen>,

    /// Listen for FastCGI on ADDR (repeatable)
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub fastcgi: Vec<ListenAddr>,

    /// Listen for SCGI on ADDR (repeatable)
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub scgi: Vec<ListenAddr>,

    /// Worker processes [default: 1]
    #[arg(long, value_name = "N")]
    pub processes: Option<usize>,

    /// Python threads per worker process [default: 8]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// URL path the application is mounted at (its SCRIPT_NAME) [default: / (the root)]
    #[arg(long, value_name = "PATH")]
    pub mount: Option<String>,

    /// Permissions (octal) of the Unix sockets wsgid creates [default: 0660]
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub socket_mode: Option<u32>,

    /// Directory workers change to before loading the application
    #[arg(long, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// Directory added to Python's sys.path (repeatable)
    #[arg(long, value_name = "DIR")]
    pub pythonpath: Vec<PathBuf>,

    /// Virtual environment whose Python packages the application uses
    #[arg(long, value_name = "DIR")]
    pub virtualenv: Option<PathBuf>,

    /// Extra environment variable for workers (repeatable)
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,

    /// Unix socket on which the master answers `wsgid status` and `wsgid reload`
    /// [default: none]
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// TOML configuration file; options given here override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Load the configuration and the application, report problems, and exit 0 or 1
    #[arg(long)]
    pub check: bool,

    /// Largest total size of one request's parameters [default: 256K]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_params_bytes: Option<u64>,

    /// Largest number of parameters in one request [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_params: Option<usize>,

    /// Largest SCGI header (netstring) [default: 256K]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_scgi_header: Option<u64>,

    /// Largest request body, or "unlimited" [default: unlimited]
    #[arg(long, value_name = "BYTES", value_parser = parse_body_limit)]
    pub max_body: Option<BodyLimit>,

    /// Close a connection idle for this long [default: 60]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration_ms)]
    pub idle_timeout: Option<u64>,

    /// Fail a request whose parameters or body stop arriving for this long [default: 60]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration_ms)]
    pub read_timeout: Option<u64>,

    /// Close a connection whose front end takes no response bytes for this long [default: 60]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration_ms)]
    pub send_timeout: Option<u64>,

    /// On SIGTERM, how long in-flight requests may take to finish [default: 30]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration_ms)]
    pub graceful_timeout: Option<u64>,

    /// On SIGINT, how long in-flight requests may take to finish [default: 3]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration_ms)]
    pub interrupt_timeout: Option<u64>,

    /// Time out a request still running this long after its parameters were read: 504 to
    /// the front end, wsgid.RequestTimeout raised in its thread [default: none]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration_ms)]
    pub request_timeout: Option<u64>,

    /// After a request timed out, how long its thread may take to return before the
    /// worker is replaced, gracefully [default: 10]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration_ms)]
    pub request_timeout_grace: Option<u64>,

    /// Connections one worker process holds open at once [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Requests one worker process holds at once, running or waiting for a thread
    /// [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,

    /// Reload the app (new workers, gracefully) when FILE changes: its time, size or inode
    /// (repeatable)
    #[arg(long, value_name = "FILE")]
    pub reload_on: Vec<PathBuf>,

    /// Replace a worker, gracefully, after it has taken N requests (0: never) [default: 0]
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,

    /// Add up to N to each worker's --max-requests, drawn per worker, so that workers
    /// started together are not replaced together [default: 0]
    #[arg(long, value_name = "N")]
    pub max_requests_jitter: Option<u64>,

    /// Replace a worker, gracefully, once its resident memory exceeds this [default: none]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_rss: Option<u64>,

    /// Replace a worker, gracefully, once it has used this much CPU time [default: none]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration_ms)]
    pub max_cpu_time: Option<u64>,

    /// Replace a worker, gracefully, once it is this old [default: none]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration_ms)]
    pub max_lifetime: Option<u64>,

    /// Response bytes buffered per request before the application is paused [default: 256K]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub output_buffer: Option<u64>,

    /// Request body bytes buffered per request before reading pauses [default: 1M]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub input_buffer: Option<u64>,

    /// Log filter: error, warn, info, debug, trace, or tracing directives such as
    /// "wsgid=debug" [default: $RUST_LOG, else info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// User (name or number) the workers run as [default: wsgid's own]
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Group (name or number) the workers run as [default: the user's primary group]
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Supplementary groups of the workers, comma-separated (repeatable) [default: none]
    #[arg(long, value_name = "GROUP,...", value_delimiter = ',')]
    pub supplementary_groups: Vec<String>,

    /// umask (octal) of the workers [default: wsgid's own]
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub umask: Option<u32>,

    /// Directory the workers chroot to; other paths are then inside it ("": none)
    /// [default: none]
    #[arg(long, value_name = "DIR", value_parser = path_or_empty())]
    pub chroot: Option<PathBuf>,

    /// Let the application run as root (wsgid started as root and no other user given)
    #[arg(long)]
    pub allow_root: bool,

    /// Refuse an application file, or its directory, writable by others than its user or root
    #[arg(long)]
    pub check_ownership: bool,

    /// Owner (name or number) of the Unix sockets wsgid creates [default: wsgid's user]
    #[arg(long, value_name = "USER")]
    pub socket_owner: Option<String>,

    /// Group (name or number) of the Unix sockets wsgid creates [default: wsgid's group]
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// Hand wsgi.file_wrapper responses over regular files to the front end to send:
    /// x-accel-redirect (nginx), x-sendfile (Apache mod_xsendfile, lighttpd) or off
    /// [default: off]
    #[arg(long, value_name = "MODE", value_parser = parse_offload)]
    pub offload: Option<OffloadMode>,

    /// A directory whose files may be offloaded, and what the front end is told for it: the
    /// URI of nginx's internal location (x-accel-redirect) or the path the front end sees
    /// (x-sendfile) (repeatable) [default: none]
    #[arg(long, value_name = "PATH=URI", value_parser = parse_offload_pair)]
    pub offload_map: Vec<(String, String)>,

    /// Front-end clients whose X-Forwarded-For, -Proto, -Host and -Prefix headers are
    /// applied: addresses, ranges (10.0.0.0/8, fd00::/8) or unix, comma-separated
    /// (repeatable) [default: none]
    #[arg(long, value_name = "ADDR[/BITS],...", value_delimiter = ',', value_parser = parse_trusted_proxy)]
    pub trusted_proxies: Vec<TrustedProxy>,
}

/// A path, which may be empty (clap's own path parser refuses "").
fn path_or_empty() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("wsgid").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn full_command_line() {
        let cli = parse(&[
            "mysite.wsgi:application",
            "--fastcgi",
            "127.0.0.1:9000",
            "--scgi",
            "unix:/run/a.sock",
            "--fastcgi",
            "fd:3",
            "--processes",
            "4",
            "--threads",
            "16",
            "--mount",
            "/app",
            "--socket-mode",
            "0666",
            "--env",
            "A=1",
            "--env",
            "B=2",
            "--pythonpath",
            "/x",
            "--pythonpath",
            "/y",
            "--max-body",
            "10M",
            "--max-params-bytes",
            "64K",
            "--idle-timeout",
            "2.5",
            "--interrupt-timeout",
            "500ms",
            "--check",
        ])
        .unwrap();
        assert_eq!(cli.app.as_deref(), Some("mysite.wsgi:application"));
        assert_eq!(cli.fastcgi.len(), 2);
        assert_eq!(cli.fastcgi[1], ListenAddr::Fd(3));
        assert_eq!(cli.scgi, vec![ListenAddr::Unix("/run/a.sock".into())]);
        assert_eq!(cli.processes, Some(4));
        assert_eq!(cli.threads, Some(16));
        assert_eq!(cli.socket_mode, Some(0o666));
        assert_eq!(cli.env.len(), 2);
        assert_eq!(cli.pythonpath.len(), 2);
        assert_eq!(cli.max_body, Some(BodyLimit(Some(10 << 20))));
        assert_eq!(cli.max_params_bytes, Some(64 << 10));
        assert_eq!(cli.idle_timeout, Some(2500));
        assert_eq!(cli.interrupt_timeout, Some(500));
        assert!(cli.check);
    }

    #[test]
    fn app_is_optional_at_parse_time() {
        let cli = parse(&["--config", "/etc/wsgid.toml"]).unwrap();
        assert_eq!(cli.app, None);
        assert_eq!(cli.config, Some(PathBuf::from("/etc/wsgid.toml")));
    }

    #[test]
    fn malformed_values_are_usage_errors() {
        for args in [
            &["app", "--fastcgi", "nowhere"][..],
            &["app", "--processes", "two"],
            &["app", "--processes", "-1"],
            &["app", "--socket-mode", "999"],
            &["app", "--max-body", "big"],
            &["app", "--idle-timeout", "soon"],
            &["app", "--env", "NOEQUALS"],
            &["app", "--unknown-option"],
            &["app", "other"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
        let e = parse(&["app", "--max-body", "big"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--max-body"), "{e}");
    }
}
