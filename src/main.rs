//! wsgid's entry point: the master (command line, configuration, supervision). Workers are
//! not this binary: each is the Python interpreter with wsgid's library loaded into it
//! (`master::spawn`).

use std::process::ExitCode;

use clap::Parser;

use wsgid::config::cli::Cli;
use wsgid::config::resolve::{self, Context};
use wsgid::master::{self, EXIT_FAILURE, EXIT_USAGE};

fn main() -> ExitCode {
    // `wsgid status`, `wsgid reload`: a client of a running master.
    let first = std::env::args_os().nth(1);
    if first.is_some_and(|a| wsgid::ctl::COMMANDS.iter().any(|c| a == *c)) {
        return wsgid::ctl::main(std::env::args_os().collect());
    }
    // Usage errors exit 2 here; --help and --version exit 0.
    let cli = Cli::parse();
    // --check promises 0 or 1.
    let config_error = if cli.check { EXIT_FAILURE } else { EXIT_USAGE };
    let ctx = match Context::from_process() {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("wsgid: {e}");
            return ExitCode::from(config_error);
        }
    };
    let config = match resolve::resolve(&cli, &ctx) {
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
        // A reload reads the configuration the same way, from the same command line.
        let load = Box::new(move || resolve::resolve(&cli, &ctx).map_err(|e| e.0));
        master::run(config, load)
    }
}
