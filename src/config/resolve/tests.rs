//! Tests of merging and validation: precedence, path anchoring, app specs, limits at and
//! past their boundaries, and error messages that name the option.

use super::*;
use clap::Parser;

fn ctx() -> Context {
    Context {
        cwd: PathBuf::from("/home/u/site"),
        rust_log: None,
    }
}

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("wsgid").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn run(args: &[&str]) -> Result<Settings, ConfigError> {
    merge(&cli(args), None, &ctx())
}

fn with_file(args: &[&str], toml: &str) -> Result<Settings, ConfigError> {
    let file = FileConfig::parse(toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
    merge(
        &cli(args),
        Some((&file, Path::new("/etc/wsgid/site.toml"))),
        &ctx(),
    )
}

fn err(r: Result<Settings, ConfigError>) -> String {
    match r {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e.0,
    }
}

#[test]
fn defaults() {
    let s = run(&["mysite.wsgi:application", "--fastcgi", "127.0.0.1:9000"]).unwrap();
    assert_eq!(s.app, "mysite.wsgi:application");
    assert_eq!(
        s.listen,
        vec![Listen {
            protocol: Protocol::Fastcgi,
            addr: ListenAddr::Tcp("127.0.0.1:9000".parse().unwrap())
        }]
    );
    assert_eq!(s.processes, 1);
    assert_eq!(s.threads, 8);
    assert_eq!(s.mount, "");
    assert_eq!(s.socket_mode, 0o660);
    assert_eq!(s.chdir, None);
    assert!(s.pythonpath.is_empty());
    assert_eq!(s.virtualenv, None);
    assert!(s.env.is_empty());
    assert_eq!(s.limits, LimitsConfig::default());
    assert_eq!(s.timeouts, Timeouts::default());
    assert_eq!(s.max_connections, 10_000);
    assert_eq!(s.max_in_flight, 1000);
    assert_eq!(s.output_buffer, 256 * 1024);
    assert_eq!(s.input_buffer, 1024 * 1024);
    assert_eq!(s.log_level, "info");
}

/// Every invalid value is reported at once, one per line, in the order of the options.
#[test]
fn every_problem_is_reported() {
    let e = err(with_file(
        &["--processes", "0", "--mount", "app"],
        "threads = 2000\nscgi = [\"nowhere\"]\nmax_body = 0\nidle_timeout = 0\n",
    ));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "no application: give APP (module:callable, or a path to a .py or .wsgi file) or \
             set app in the configuration file",
            "scgi in /etc/wsgid/site.toml: \"nowhere\" is not a listen address (expected \
             host:port, [v6]:port, unix:/path or fd:N); a port is required, e.g. 127.0.0.1:9000",
            "--processes: must be between 1 and 1024 (got 0)",
            "threads in /etc/wsgid/site.toml: must be between 1 and 1024 (got 2000)",
            "--mount: \"app\" must start with \"/\"",
            "max_body in /etc/wsgid/site.toml: must be at least 1 byte, or \"unlimited\"",
            "idle_timeout in /etc/wsgid/site.toml: must be at least 1 ms (got 0 ms)",
        ],
        "{e}"
    );
    let e = err(run(&[
        "a:b",
        "--fastcgi",
        "127.0.0.1:9000",
        "--scgi",
        "127.0.0.1:9000",
        "--fastcgi",
        &format!("unix:/{}", "a".repeat(107)),
    ]));
    assert_eq!(e.lines().count(), 2, "{e}");
}

#[test]
fn no_listener_is_left_to_the_master() {
    assert!(run(&["a:b"]).unwrap().listen.is_empty());
}

#[test]
fn app_is_required() {
    let e = err(run(&["--fastcgi", "127.0.0.1:9000"]));
    assert!(e.starts_with("no application"), "{e}");
    assert_eq!(with_file(&[], "app = \"a:b\"").unwrap().app, "a:b");
    assert_eq!(with_file(&["c:d"], "app = \"a:b\"").unwrap().app, "c:d");
}

#[test]
fn command_line_wins_over_file() {
    let s = with_file(
        &["--threads", "3", "--max-body", "unlimited", "--mount", "/x"],
        r#"
        app = "a:b"
        processes = 4
        threads = 2
        max_body = "1M"
        mount = "/y"
        socket_mode = 0o600
        idle_timeout = 5
        log_level = "debug"
        "#,
    )
    .unwrap();
    assert_eq!(s.processes, 4);
    assert_eq!(s.threads, 3);
    assert_eq!(s.limits.max_body, None);
    assert_eq!(s.mount, "/x");
    assert_eq!(s.socket_mode, 0o600);
    assert_eq!(s.timeouts.idle_ms, 5000);
    assert_eq!(s.log_level, "debug");
}

#[test]
fn command_line_lists_replace_file_lists() {
    let toml = r#"
        app = "a:b"
        fastcgi = ["127.0.0.1:9000"]
        scgi = ["127.0.0.1:4000"]
        pythonpath = ["/a", "/b"]
        env = { A = "1", B = "2" }
    "#;
    let s = with_file(&[], toml).unwrap();
    assert_eq!(s.listen.len(), 2);
    assert_eq!(s.listen[1].protocol, Protocol::Scgi);
    assert_eq!(s.pythonpath, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    assert_eq!(s.env.len(), 2);

    let s = with_file(
        &[
            "--fastcgi",
            "127.0.0.1:9001",
            "--pythonpath",
            "/c",
            "--env",
            "C=3",
        ],
        toml,
    )
    .unwrap();
    assert_eq!(
        s.listen,
        vec![Listen {
            protocol: Protocol::Fastcgi,
            addr: ListenAddr::Tcp("127.0.0.1:9001".parse().unwrap())
        }]
    );
    assert_eq!(s.pythonpath, vec![PathBuf::from("/c")]);
    assert_eq!(s.env, BTreeMap::from([("C".to_string(), "3".to_string())]));

    // --scgi alone also replaces the file's fastcgi listeners.
    let s = with_file(&["--scgi", "unix:/run/s.sock"], toml).unwrap();
    assert_eq!(s.listen.len(), 1);
    assert_eq!(s.listen[0].protocol, Protocol::Scgi);
}

#[test]
fn repeated_env_on_command_line_last_wins() {
    let s = run(&["a:b", "--env", "A=1", "--env", "A=2"]).unwrap();
    assert_eq!(s.env.get("A").map(String::as_str), Some("2"));
}

#[test]
fn relative_paths_are_anchored_by_source() {
    let s = run(&[
        "a:b",
        "--chdir",
        "app",
        "--pythonpath",
        "./lib",
        "--virtualenv",
        "../venv",
        "--fastcgi",
        "unix:run/a.sock",
    ])
    .unwrap();
    assert_eq!(s.chdir, Some(PathBuf::from("/home/u/site/app")));
    assert_eq!(s.pythonpath, vec![PathBuf::from("/home/u/site/lib")]);
    assert_eq!(s.virtualenv, Some(PathBuf::from("/home/u/site/../venv")));
    assert_eq!(
        s.listen[0].addr,
        ListenAddr::Unix("/home/u/site/run/a.sock".into())
    );

    let s = with_file(
        &[],
        r#"
        app = "a:b"
        chdir = "app"
        pythonpath = ["lib", "/abs"]
        virtualenv = "/srv/venv"
        scgi = "unix:a.sock"
        "#,
    )
    .unwrap();
    assert_eq!(s.chdir, Some(PathBuf::from("/etc/wsgid/app")));
    assert_eq!(
        s.pythonpath,
        vec![PathBuf::from("/etc/wsgid/lib"), PathBuf::from("/abs")]
    );
    assert_eq!(s.virtualenv, Some(PathBuf::from("/srv/venv")));
    assert_eq!(
        s.listen[0].addr,
        ListenAddr::Unix("/etc/wsgid/a.sock".into())
    );

    let e = err(with_file(&[], "app = \"a:b\"\nchdir = \"\""));
    assert_eq!(e, "chdir in /etc/wsgid/site.toml: the path is empty");
}

#[test]
fn app_specs() {
    let base = Path::new("/srv");
    assert_eq!(
        resolve_app("mysite.wsgi:application", base).unwrap(),
        "mysite.wsgi:application"
    );
    assert_eq!(resolve_app("app", base).unwrap(), "app");
    assert_eq!(
        resolve_app("pkg.app:make.app", base).unwrap(),
        "pkg.app:make.app"
    );
    assert_eq!(resolve_app("app.py", base).unwrap(), "/srv/app.py");
    assert_eq!(
        resolve_app("app.py:other", base).unwrap(),
        "/srv/app.py:other"
    );
    assert_eq!(
        resolve_app("./x/app.wsgi", base).unwrap(),
        "/srv/x/app.wsgi"
    );
    assert_eq!(
        resolve_app("/abs/app.wsgi:app", base).unwrap(),
        "/abs/app.wsgi:app"
    );
    assert_eq!(resolve_app("x/y", base).unwrap(), "/srv/x/y");
    for bad in [
        "",
        ":app",
        "app:",
        "my-site:app",
        "app:1x",
        "app:a-b",
        "a..b:app",
        "app:app()",
    ] {
        assert!(resolve_app(bad, base).is_err(), "{bad:?} accepted");
    }

    // A .wsgi name is a file only when such a file exists; else a module (Django's layout).
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(resolve_app("site.wsgi", dir.path()).unwrap(), "site.wsgi");
    std::fs::write(dir.path().join("site.wsgi"), "").unwrap();
    assert_eq!(
        resolve_app("site.wsgi", dir.path()).unwrap(),
        format!("{}/site.wsgi", dir.path().display())
    );

    // File apps are anchored like other paths.
    assert_eq!(run(&["app.py"]).unwrap().app, "/home/u/site/app.py");
    assert_eq!(
        with_file(&[], "app = \"app.py\"").unwrap().app,
        "/etc/wsgid/app.py"
    );
    let e = err(run(&["bad-name"]));
    assert!(e.starts_with("APP: \"bad-name\""), "{e}");
}

#[test]
fn counts_at_and_past_their_bounds() {
    assert_eq!(run(&["a:b", "--processes", "1"]).unwrap().processes, 1);
    assert_eq!(
        run(&["a:b", "--processes", "1024"]).unwrap().processes,
        1024
    );
    assert_eq!(
        err(run(&["a:b", "--processes", "0"])),
        "--processes: must be between 1 and 1024 (got 0)"
    );
    assert_eq!(
        err(run(&["a:b", "--processes", "1025"])),
        "--processes: must be between 1 and 1024 (got 1025)"
    );
    assert_eq!(run(&["a:b", "--threads", "1024"]).unwrap().threads, 1024);
    assert!(err(run(&["a:b", "--threads", "1025"])).starts_with("--threads: "));
    assert_eq!(
        err(with_file(&[], "app = \"a:b\"\nthreads = 0")),
        "threads in /etc/wsgid/site.toml: must be between 1 and 1024 (got 0)"
    );
    for opt in ["--max-params", "--max-connections", "--max-in-flight"] {
        assert!(run(&["a:b", opt, "1"]).is_ok(), "{opt} 1");
        let e = err(run(&["a:b", opt, "0"]));
        assert_eq!(e, format!("{opt}: must be at least 1 (got 0)"));
    }
}

/// max_requests means what it means in gunicorn and uWSGI: replace a worker after N
/// requests, 0 being never; the other recycling limits are checked too.
#[test]
fn recycling_limits() {
    let s = run(&["a:b", "--max-requests", "5", "--max-requests-jitter", "2"]).unwrap();
    assert_eq!(s.recycle.max_requests, Some(5));
    assert_eq!(s.recycle.max_requests_jitter, 2);
    let s = run(&["a:b", "--max-requests", "0"]).unwrap();
    assert_eq!(s.recycle, Recycle::default());
    let s = with_file(
        &[],
        "app = \"a:b\"\nmax_requests = 7\nmax_rss = \"64M\"\nmax_cpu_time = \"1h\"\n\
         max_lifetime = \"1d\"",
    )
    .unwrap();
    assert_eq!(
        s.recycle,
        Recycle {
            max_requests: Some(7),
            max_requests_jitter: 0,
            max_rss: Some(64 << 20),
            max_cpu_time_ms: Some(3_600_000),
            max_lifetime_ms: Some(86_400_000),
        }
    );
    // At and past the boundaries.
    assert!(run(&["a:b", "--max-lifetime", "1"]).is_ok());
    let e = err(run(&["a:b", "--max-lifetime", "0.999"]));
    assert_eq!(e, "--max-lifetime: must be at least 1000 ms (got 999 ms)");
    let e = err(run(&["a:b", "--max-cpu-time", "0"]));
    assert_eq!(e, "--max-cpu-time: must be at least 1000 ms (got 0 ms)");
    assert!(run(&["a:b", "--max-rss", "1"]).is_ok());
    let e = err(run(&["a:b", "--max-rss", "0"]));
    assert_eq!(e, "--max-rss: must be at least 1 byte");
}

#[test]
fn sizes_at_and_past_their_bounds() {
    for opt in [
        "--max-params-bytes",
        "--max-scgi-header",
        "--output-buffer",
        "--input-buffer",
    ] {
        assert!(run(&["a:b", opt, "1"]).is_ok(), "{opt} 1");
        let e = err(run(&["a:b", opt, "0"]));
        assert_eq!(e, format!("{opt}: must be at least 1 byte"));
    }
    let s = run(&["a:b", "--max-params-bytes", "64K", "--max-body", "1"]).unwrap();
    assert_eq!(s.limits.max_params_bytes, 65536);
    assert_eq!(s.limits.max_body, Some(1));
    assert!(err(run(&["a:b", "--max-body", "0"])).starts_with("--max-body: "));
    assert!(err(with_file(&[], "app = \"a:b\"\nmax_body = 0")).starts_with("max_body in "));
}

/// Every limit stops at what the code serving it can represent (offsets and counters of
/// fixed width), with an error that says so, rather than being taken and overflowing later.
#[test]
fn limits_are_capped_at_what_this_build_can_hold() {
    let four_g = "4294967295";
    let s = run(&[
        "a:b",
        "--max-params-bytes",
        four_g,
        "--max-scgi-header",
        four_g,
        "--max-params",
        four_g,
        "--max-connections",
        "4294967294",
        "--output-buffer",
        "9223372036854775807",
    ])
    .unwrap();
    assert_eq!(s.limits.max_params_bytes, u32::MAX as usize);
    assert_eq!(s.limits.max_scgi_header, u32::MAX as usize);
    assert_eq!(s.limits.max_params, u32::MAX as usize);
    assert_eq!(s.max_connections, u32::MAX as usize - 1);
    assert_eq!(s.output_buffer, isize::MAX as usize);

    assert_eq!(
        err(run(&["a:b", "--max-params-bytes", "8G"])),
        "--max-params-bytes: 8G is above the largest this build can hold, 4G-1"
    );
    assert_eq!(
        err(run(&["a:b", "--max-params-bytes", "4G"])),
        "--max-params-bytes: 4G is above the largest this build can hold, 4G-1"
    );
    assert_eq!(
        err(with_file(&[], "app = \"a:b\"\nmax_scgi_header = \"1T\"")),
        "max_scgi_header in /etc/wsgid/site.toml: 1T is above the largest this build can \
         hold, 4G-1"
    );
    assert_eq!(
        err(run(&["a:b", "--max-params", "4294967296"])),
        "--max-params: 4294967296 is above the largest this build can hold, 4294967295"
    );
    assert_eq!(
        err(run(&["a:b", "--max-connections", "4294967295"])),
        "--max-connections: 4294967295 is above the largest this build can hold, 4294967294"
    );
    for opt in ["--output-buffer", "--input-buffer"] {
        assert_eq!(
            err(run(&["a:b", opt, "8E"])),
            format!("{opt}: 8E is above the largest this build can hold, 8E-1")
        );
    }
    // A body is counted in u64: every size is representable, and the most is a limit too.
    let s = run(&["a:b", "--max-body", "18446744073709551615"]).unwrap();
    assert_eq!(s.limits.max_body, Some(u64::MAX));
}

#[test]
fn timeouts_at_and_past_their_bounds() {
    let s = run(&[
        "a:b",
        "--idle-timeout",
        "1ms",
        "--read-timeout",
        "0.001",
        "--send-timeout",
        "2.5",
        "--graceful-timeout",
        "0",
        "--interrupt-timeout",
        "0",
    ])
    .unwrap();
    assert_eq!(
        s.timeouts,
        Timeouts {
            idle_ms: 1,
            read_ms: 1,
            send_ms: 2_500,
            graceful_ms: 0,
            interrupt_ms: 0,
            request_ms: None,
            request_grace_ms: 10_000,
        }
    );
    let s = run(&[
        "a:b",
        "--request-timeout",
        "1ms",
        "--request-timeout-grace",
        "0",
    ])
    .unwrap();
    assert_eq!(
        (s.timeouts.request_ms, s.timeouts.request_grace_ms),
        (Some(1), 0)
    );
    assert_eq!(
        err(run(&["a:b", "--request-timeout", "0"])),
        "--request-timeout: must be at least 1 ms (got 0 ms)"
    );
    assert_eq!(
        err(run(&["a:b", "--idle-timeout", "0"])),
        "--idle-timeout: must be at least 1 ms (got 0 ms)"
    );
    assert!(err(run(&["a:b", "--read-timeout", "0.0001"])).starts_with("--read-timeout"));
    assert_eq!(
        err(run(&["a:b", "--send-timeout", "0"])),
        "--send-timeout: must be at least 1 ms (got 0 ms)"
    );
}

#[test]
fn mount_points() {
    assert_eq!(run(&["a:b", "--mount", "/"]).unwrap().mount, "");
    assert_eq!(run(&["a:b", "--mount", ""]).unwrap().mount, "");
    assert_eq!(run(&["a:b", "--mount", "/app/"]).unwrap().mount, "/app");
    assert!(err(run(&["a:b", "--mount", "app"])).starts_with("--mount: "));
    assert!(err(run(&["a:b", "--mount", "/a/../b"])).starts_with("--mount: "));
    assert!(err(with_file(&[], "app = \"a:b\"\nmount = \"//x\"")).starts_with("mount in "));
}

#[test]
fn listeners_checked() {
    let e = err(run(&[
        "a:b",
        "--fastcgi",
        "127.0.0.1:9000",
        "--scgi",
        "127.0.0.1:9000",
    ]));
    assert_eq!(e, "--scgi: 127.0.0.1:9000 is given more than once");
    let e = err(run(&["a:b", "--fastcgi", "fd:3", "--fastcgi", "fd:3"]));
    assert!(e.contains("fd:3 is given more than once"), "{e}");
    // Ephemeral ports are distinct sockets.
    assert_eq!(
        run(&["a:b", "--fastcgi", "127.0.0.1:0", "--scgi", "127.0.0.1:0"])
            .unwrap()
            .listen
            .len(),
        2
    );
    let e = err(with_file(&[], "app = \"a:b\"\nscgi = [\"nowhere\"]"));
    assert!(e.starts_with("scgi in /etc/wsgid/site.toml: "), "{e}");

    // sun_path: 107 bytes fit, 108 do not.
    let fits = format!("unix:/{}", "a".repeat(106));
    assert!(run(&["a:b", "--fastcgi", &fits]).is_ok());
    let long = format!("unix:/{}", "a".repeat(107));
    let e = err(run(&["a:b", "--fastcgi", &long]));
    assert!(e.contains("108 bytes long; at most 107"), "{e}");
}

#[test]
fn env_checked() {
    let e = err(with_file(&[], "app = \"a:b\"\nenv = { \"A=B\" = \"1\" }"));
    assert!(e.starts_with("env in /etc/wsgid/site.toml: "), "{e}");
    let e = err(with_file(
        &[],
        "app = \"a:b\"\nenv = { WSGID_WORKER_SPEC = \"{}\" }",
    ));
    assert!(e.contains("reserved"), "{e}");
}

#[test]
fn log_level_precedence() {
    let mut c = ctx();
    c.rust_log = Some("wsgid=debug".into());
    let s = merge(&cli(&["a:b"]), None, &c).unwrap();
    assert_eq!(s.log_level, "wsgid=debug");
    let s = merge(&cli(&["a:b", "--log-level", "warn"]), None, &c).unwrap();
    assert_eq!(s.log_level, "warn");
    c.rust_log = Some("   ".into());
    assert_eq!(merge(&cli(&["a:b"]), None, &c).unwrap().log_level, "info");
    c.rust_log = Some("[[[".into());
    let e = merge(&cli(&["a:b"]), None, &c).unwrap_err().0;
    assert!(e.starts_with("RUST_LOG: "), "{e}");
    let e = err(run(&["a:b", "--log-level", "wsgid=loud"]));
    assert!(e.starts_with("--log-level: "), "{e}");
}

#[test]
fn resolve_reads_the_file_relative_to_cwd() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.toml"), "app = \"app.py\"\nthreads = 2\n").unwrap();
    let c = Context {
        cwd: dir.path().to_path_buf(),
        rust_log: None,
    };
    let config = resolve(&cli(&["--config", "w.toml"]), &c).unwrap();
    assert_eq!(config.apps.len(), 1);
    let s = &config.apps[0];
    assert_eq!(s.threads, 2);
    assert_eq!(s.app, format!("{}/app.py", dir.path().display()));
    let e = resolve(&cli(&["--config", "missing.toml"]), &c)
        .unwrap_err()
        .0;
    assert!(e.starts_with("cannot read configuration file"), "{e}");

    // The file's problems and the others come together; a refused app is not also missing.
    std::fs::write(
        dir.path().join("bad.toml"),
        "app = 3\nthreads = \"two\"\nmax_lifetime = 0\nprocesses = 0\n",
    )
    .unwrap();
    let e = resolve(&cli(&["--config", "bad.toml"]), &c).unwrap_err().0;
    let file = dir.path().join("bad.toml");
    let file = file.display();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert_eq!(
        lines[0],
        format!("app in {file}, line 1: expected a string, got the number 3")
    );
    assert!(
        lines[1].starts_with(&format!("threads in {file}, line 2: ")),
        "{e}"
    );
    assert!(
        lines[2].starts_with(&format!("processes in {file}: ")),
        "{e}"
    );
    assert!(
        lines[3].starts_with(&format!("max_lifetime in {file}: ")),
        "{e}"
    );
}

fn resolve_in(dir: &Path, args: &[&str]) -> Result<Config, ConfigError> {
    let c = Context {
        cwd: dir.to_path_buf(),
        rust_log: None,
    };
    resolve(&cli(args), &c)
}

/// [[app]] tables: each app inherits the top level, its own keys win, the command line
/// wins over both; relative paths are anchored at the file that declares the app.
#[test]
fn several_apps() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("conf.d/b.toml"),
        "[[app]]\nname = \"b\"\napp = \"b.py\"\nlisten = [\"scgi:unix:b.sock\"]\nthreads = 3\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wsgid.toml"),
        "threads = 4\nlog_level = \"debug\"\ninclude = \"conf.d/*.toml\"\n\
         control_socket = \"ctl.sock\"\n\
         [[app]]\nname = \"a\"\napp = \"a:app\"\n\
         listen = [\"fastcgi:127.0.0.1:9000\", \"scgi:127.0.0.1:9001\"]\nmax_requests = 5\n",
    )
    .unwrap();
    let c = resolve_in(dir.path(), &["--config", "wsgid.toml", "--processes", "2"]).unwrap();
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.control_socket, Some(dir.path().join("ctl.sock")));
    let [a, b] = c.apps.as_slice() else {
        panic!("{:?}", c.apps)
    };
    assert_eq!((a.name.as_str(), a.threads, a.processes), ("a", 4, 2));
    assert_eq!((b.name.as_str(), b.threads, b.processes), ("b", 3, 2));
    assert_eq!(a.recycle.max_requests, Some(5));
    assert_eq!(b.recycle.max_requests, None);
    assert_eq!(
        a.listen,
        vec![
            Listen {
                protocol: Protocol::Fastcgi,
                addr: ListenAddr::Tcp("127.0.0.1:9000".parse().unwrap())
            },
            Listen {
                protocol: Protocol::Scgi,
                addr: ListenAddr::Tcp("127.0.0.1:9001".parse().unwrap())
            }
        ]
    );
    assert_eq!(b.app, format!("{}/conf.d/b.py", dir.path().display()));
    assert_eq!(
        b.listen[0].addr,
        ListenAddr::Unix(dir.path().join("conf.d/b.sock"))
    );
}

/// Two apps with one name, one socket given to two apps, an app without a name or a
/// listener, and per-app options on the command line are each reported, all at once.
#[test]
fn apps_are_checked_against_each_other() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wsgid.toml"),
        "[[app]]\nname = \"a\"\napp = \"a:app\"\nfastcgi = \"127.0.0.1:9000\"\n\
         [[app]]\nname = \"a\"\napp = \"b:app\"\nlisten = [\"fastcgi:127.0.0.1:9000\"]\n\
         [[app]]\napp = \"c:app\"\n\
         [[app]]\nname = \"bad name\"\napp = \"d:app\"\nlisten = [\"127.0.0.1:1\"]\n",
    )
    .unwrap();
    let e = resolve_in(
        dir.path(),
        &["--config", "wsgid.toml", "x:y", "--fastcgi", "127.0.0.1:2"],
    )
    .unwrap_err()
    .0;
    let f = dir.path().join("wsgid.toml");
    let f = f.display();
    for wanted in [
        format!("APP, --fastcgi: {f} declares [[app]] tables"),
        format!("the [[app]] table at {f}, line 9 has no name"),
        format!("the [[app]] table at {f}, line 9 has no listener"),
        format!("name (app bad name) in {f}: \"bad name\" is not a name"),
        format!("listen (app bad name) in {f}: \"127.0.0.1:1\" does not say its protocol"),
        "two apps are named a".to_string(),
        "127.0.0.1:9000 is given to two apps, a and a".to_string(),
    ] {
        assert!(
            e.lines().any(|l| l.starts_with(&wanted)),
            "no {wanted:?} in:\n{e}"
        );
    }
}

#[test]
fn trusted_proxies_from_the_file_and_the_command_line() {
    use crate::config::TrustedProxy::{self, Net, Unix};
    let net = |a: &str, bits: u8| Net {
        addr: a.parse().unwrap(),
        bits,
    };
    let entries = |s: &Settings| s.trusted_proxies.entries().to_vec();
    let run = |args: &[&str], toml: &str| merge_for_test(args, toml, "/etc/wsgid/site.toml", "/");
    // None by default.
    assert!(run(&[], "").unwrap().trusted_proxies.is_empty());
    let toml = "trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\", \"::1\", \"unix\"]";
    let want: Vec<TrustedProxy> = vec![
        net("10.0.0.0", 8),
        net("127.0.0.1", 32),
        net("::1", 128),
        Unix,
    ];
    assert_eq!(entries(&run(&[], toml).unwrap()), want);
    // Comma-separated, repeated, or both; the command line's list replaces the file's.
    for args in [
        &["--trusted-proxies", "192.168.0.0/16,fd00::/8"][..],
        &[
            "--trusted-proxies",
            "192.168.0.0/16",
            "--trusted-proxies",
            "fd00::/8",
        ],
        &[
            "--trusted-proxies",
            "192.168.0.0/16",
            "--trusted-proxies=fd00::/8,192.168.0.0/16",
        ],
    ] {
        assert_eq!(
            entries(&run(args, toml).unwrap()),
            vec![net("192.168.0.0", 16), net("fd00::", 8)],
            "{args:?}"
        );
    }
    // An empty list in the file is none.
    assert!(run(&[], "trusted_proxies = []")
        .unwrap()
        .trusted_proxies
        .is_empty());

    // A bad entry names the option, or the key, its line and the item.
    let e = Cli::try_parse_from(["wsgid", "a:b", "--trusted-proxies", "10.0.0.0/8,10.1.0.0/8"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--trusted-proxies"), "{e}");
    assert!(e.contains("write 10.0.0.0/8"), "{e}");
    let e =
        Cli::try_parse_from(["wsgid", "a:b", "--trusted-proxies", "proxy.example"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    for (toml, message) in [
        (
            "trusted_proxies = \"10.0.0.0/8\"",
            "trusted_proxies, line 1: expected a list of addresses, ranges or \"unix\", such as \
             [\"10.0.0.0/8\", \"::1\", \"unix\"], got the string \"10.0.0.0/8\"",
        ),
        (
            "\ntrusted_proxies = [\"::1\", \"10.0.0.0/33\"]",
            "trusted_proxies, line 2: item 2 of the list: \"10.0.0.0/33\": the prefix length \
             must be a number from 0 to 32",
        ),
        (
            "trusted_proxies = [\"::1\", 10]",
            "trusted_proxies, line 1: expected a list of addresses, ranges or \"unix\", such as \
             [\"10.0.0.0/8\", \"::1\", \"unix\"], got a list whose item 2 is the number 10",
        ),
    ] {
        assert_eq!(FileConfig::parse(toml).unwrap_err(), message, "{toml}");
    }

    // At most MAX_TRUSTED_PROXIES entries, counted once repeats are dropped.
    let list = |n: usize, repeat: usize| {
        let mut v: Vec<String> = (0..n)
            .map(|i| format!("\"10.{}.{}.0/24\"", i / 256, i % 256))
            .collect();
        v.extend((0..repeat).map(|_| "\"10.0.0.0/24\"".to_string()));
        format!("trusted_proxies = [{}]", v.join(", "))
    };
    let s = run(&[], &list(MAX_TRUSTED_PROXIES, 5)).unwrap();
    assert_eq!(s.trusted_proxies.entries().len(), MAX_TRUSTED_PROXIES);
    let e = err(run(&[], &list(MAX_TRUSTED_PROXIES + 1, 0)));
    assert_eq!(
        e,
        format!(
            "trusted_proxies in /etc/wsgid/site.toml: {} entries; at most \
             {MAX_TRUSTED_PROXIES} may be given",
            MAX_TRUSTED_PROXIES + 1
        )
    );

    // The list reaches a worker as it was configured.
    let s = run(&[], toml).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    let back: Settings = serde_json::from_str(&json).unwrap();
    assert_eq!(back.trusted_proxies, s.trusted_proxies);
}

/// Where `mount` came from, for the mount mismatch warning: the command line, the file and
/// line of its key (an inherited one's in the main file), or where it would go.
#[test]
fn mount_origins() {
    assert_eq!(
        run(&["a:b", "--mount", "/x"]).unwrap().mount_origin,
        MountOrigin::Cli
    );
    assert_eq!(run(&["a:b"]).unwrap().mount_origin, MountOrigin::Unset);
    assert_eq!(
        with_file(&["--mount", "/x"], "app = \"a:b\"\nmount = \"/y\"\n")
            .unwrap()
            .mount_origin,
        MountOrigin::Cli
    );
    assert_eq!(
        with_file(&[], "app = \"a:b\"\n\nmount = \"/y\"\n")
            .unwrap()
            .mount_origin,
        MountOrigin::File {
            path: "/etc/wsgid/site.toml".into(),
            line: Some(3)
        }
    );
    assert_eq!(
        with_file(&[], "app = \"a:b\"\n").unwrap().mount_origin,
        MountOrigin::UnsetInFile {
            path: "/etc/wsgid/site.toml".into(),
            table_line: None
        }
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    let drop_in = dir.path().join("conf.d/b.toml");
    std::fs::write(
        &drop_in,
        "# b\n[[app]]\nname = \"b\"\napp = \"b:app\"\nscgi = \"127.0.0.1:9002\"\n\
         mount = \"/b\"\n[[app]]\nname = \"c\"\napp = \"c:app\"\nscgi = \"127.0.0.1:9003\"\n",
    )
    .unwrap();
    let main = dir.path().join("wsgid.toml");
    std::fs::write(
        &main,
        "include = \"conf.d/*.toml\"\n\
         [[app]]\nname = \"a\"\napp = \"a:app\"\nfastcgi = \"127.0.0.1:9000\"\n",
    )
    .unwrap();
    let c = resolve_in(dir.path(), &["--config", "wsgid.toml"]).unwrap();
    let origins: Vec<&MountOrigin> = c.apps.iter().map(|a| &a.mount_origin).collect();
    assert_eq!(
        origins,
        [
            &MountOrigin::UnsetInFile {
                path: main.display().to_string(),
                table_line: Some(2)
            },
            &MountOrigin::File {
                path: drop_in.display().to_string(),
                line: Some(6)
            },
            &MountOrigin::UnsetInFile {
                path: drop_in.display().to_string(),
                table_line: Some(7)
            },
        ]
    );

    // A mount at the top level is every app's default: its line in the main file.
    std::fs::write(
        &main,
        "include = \"conf.d/*.toml\"\nmount = \"/top\"\n\
         [[app]]\nname = \"a\"\napp = \"a:app\"\nfastcgi = \"127.0.0.1:9000\"\n",
    )
    .unwrap();
    let c = resolve_in(dir.path(), &["--config", "wsgid.toml"]).unwrap();
    let top = MountOrigin::File {
        path: main.display().to_string(),
        line: Some(2),
    };
    assert_eq!(c.apps[0].mount_origin, top);
    assert_eq!(
        c.apps[2].mount_origin, top,
        "inherited by the drop-in's app c"
    );
    assert_eq!(c.apps[2].mount, "/top");
}
