//! `wsgid status` and `wsgid reload`: a client of a running master's control socket
//! (`master::control`), found with `--control-socket` or in the `--config` file's
//! `control_socket`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::files;
use crate::config::resolve::anchor;
use crate::master::control::{ask, Request};
use crate::master::status::{table, Status};
use crate::master::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// The words that make the command line a client's rather than the master's.
pub const COMMANDS: [&str; 2] = ["status", "reload"];

#[derive(Debug, Parser)]
#[command(name = "wsgid", about = "Ask a running wsgid how it is, or to reload")]
struct Ctl {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Where {
    /// The master's control socket
    #[arg(long, value_name = "PATH")]
    control_socket: Option<PathBuf>,
    /// The configuration file whose control_socket to use
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every app and worker: pid, user, state, requests, in flight, memory, CPU, age,
    /// restarts
    Status {
        /// Print the master's JSON answer as it is
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: Where,
    },
    /// Reload the configuration and replace every worker (or those of APP), gracefully,
    /// as SIGHUP does
    Reload {
        /// Only this app
        app: Option<String>,
        #[command(flatten)]
        at: Where,
    },
}

/// Runs the client for `args` (the whole command line, program name first).
pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    let ctl = match Ctl::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let (request, at, json) = match ctl.command {
        Command::Status { json, at } => (Request::Status, at, json),
        Command::Reload { app, at } => (Request::Reload(app), at, false),
    };
    let path = match socket_path(&at) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("wsgid: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let reply = match ask(&path, &request) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wsgid: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match request {
        Request::Status if json => {
            print!("{reply}");
            ExitCode::from(EXIT_OK)
        }
        Request::Status => match serde_json::from_str::<Status>(&reply) {
            Ok(status) => {
                print!("{}", table(&status));
                ExitCode::from(EXIT_OK)
            }
            Err(e) => {
                eprintln!("wsgid: cannot read the master's answer ({e}): {reply}");
                ExitCode::from(EXIT_FAILURE)
            }
        },
        Request::Reload(_) => {
            let v: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
            match (
                v["ok"].as_bool(),
                v["message"].as_str(),
                v["error"].as_str(),
            ) {
                (Some(true), Some(m), _) => {
                    println!("{m}");
                    ExitCode::from(EXIT_OK)
                }
                (_, _, Some(e)) => {
                    for line in e.lines() {
                        eprintln!("wsgid: {line}");
                    }
                    ExitCode::from(EXIT_FAILURE)
                }
                _ => {
                    eprintln!("wsgid: cannot read the master's answer: {reply}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
    }
}

/// `--control-socket`, or the `control_socket` of `--config`.
fn socket_path(at: &Where) -> Result<PathBuf, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
    if let Some(p) = &at.control_socket {
        return Ok(anchor(&cwd, p));
    }
    let Some(config) = &at.config else {
        return Err("give --control-socket PATH, or --config FILE with control_socket set".into());
    };
    let config = anchor(&cwd, config);
    let (loaded, _) = files::load(&config)?;
    let dir = config.parent().unwrap_or(std::path::Path::new("/"));
    loaded
        .control_socket
        .map(|p| anchor(dir, &p))
        .ok_or_else(|| format!("{} sets no control_socket", config.display()))
}
