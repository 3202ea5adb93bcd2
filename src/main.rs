//! wsgid's entry point. One binary plays both roles: started by a user or a service manager
//! it is the master (command line, configuration, supervision); exec'd by the master with
//! `WSGID_WORKER_SPEC` in its environment it is a worker.
//!
//! Master and workers share stderr, so every log line carries its process: `master[PID]`
//! or `worker-N[PID]`, after the timestamp.

use std::ffi::OsString;
use std::fmt;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::EnvFilter;

use wsgid::config::cli::Cli;
use wsgid::config::resolve::{self, Context, DEFAULT_LOG_LEVEL};
use wsgid::config::{WorkerSpec, EXIT_APP_LOAD_FAILED, WORKER_SPEC_ENV};
use wsgid::master::{self, EXIT_FAILURE, EXIT_USAGE};

fn main() -> ExitCode {
    if let Some(raw) = std::env::var_os(WORKER_SPEC_ENV) {
        // Removed before any thread exists, so nothing can read the environment
        // concurrently, and so the application and its subprocesses never see it.
        std::env::remove_var(WORKER_SPEC_ENV);
        return worker_main(raw);
    }
    master_main()
}

fn worker_main(raw: OsString) -> ExitCode {
    let spec = raw
        .to_str()
        .ok_or_else(|| "not valid UTF-8".to_string())
        .and_then(|s| serde_json::from_str::<WorkerSpec>(s).map_err(|e| e.to_string()));
    match spec {
        Ok(spec) => {
            init_logging(&spec.settings.log_level, format!("worker-{}", spec.index));
            wsgid::worker::run(spec)
        }
        Err(e) => {
            init_logging(DEFAULT_LOG_LEVEL, "worker".into());
            tracing::error!("invalid {WORKER_SPEC_ENV}: {e}");
            ExitCode::from(EXIT_APP_LOAD_FAILED)
        }
    }
}

fn master_main() -> ExitCode {
    // Usage errors exit 2 here; --help and --version exit 0.
    let cli = Cli::parse();
    // --check promises 0 or 1.
    let config_error = if cli.check { EXIT_FAILURE } else { EXIT_USAGE };
    let settings = match Context::from_process().and_then(|ctx| resolve::resolve(&cli, &ctx)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wsgid: {e}");
            return ExitCode::from(config_error);
        }
    };
    init_logging(&settings.log_level, "master".into());
    if cli.check {
        master::check(settings)
    } else {
        master::run(settings)
    }
}

/// Logs to stderr, filtered by `filter` (already validated by the master; an invalid one
/// falls back to the default).
fn init_logging(filter: &str, role: String) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_LEVEL));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_timer(Stamp {
            role,
            pid: std::process::id(),
        })
        .try_init();
}

/// The timestamp, followed by which process wrote the line.
struct Stamp {
    role: String,
    pid: u32,
}

impl FormatTime for Stamp {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        SystemTime.format_time(w)?;
        write!(w, " {}[{}]", self.role, self.pid)
    }
}
