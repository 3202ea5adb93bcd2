//! wsgid's entry point: the master (command line, configuration, supervision). Workers are
//! not this binary: each is the Python interpreter with wsgid's library loaded into it
//! (`master::spawn`).

use std::process::ExitCode;

use clap::Parser;

use wsgid::config::cli::Cli;
use wsgid::config::resolve::{self, Context};
use wsgid::master::{self, EXIT_FAILURE, EXIT_USAGE};

fn main() -> ExitCode {
    // Usage errors exit 2 here; --help and --version exit 0.
    let cli = Cli::parse();
    // --check promises 0 or 1.
    let config_error = if cli.check { EXIT_FAILURE } else { EXIT_USAGE };
    let config = match Context::from_process().and_then(|ctx| resolve::resolve(&cli, &ctx)) {
        Ok(c) => c,
        Err(e) => {
            // One problem per line.
            for problem in e.to_string().lines() {
                eprintln!("wsgid: {problem}");
            }
            return ExitCode::from(config_error);
        }
    };
    wsgid::logging::init(&config.log_level, "master".into());
    if cli.check {
        master::check(config)
    } else {
        master::run(config)
    }
}
