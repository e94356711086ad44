//! `ruche-worker`: parse arguments, load configuration, set up logging, run the subcommand. Exit 0 on success
//! (including a drained shutdown after SIGINT/SIGTERM), 1 with a message on stderr otherwise.

use std::process::ExitCode;

use acf_worker::cli::{Cli, Command};
use acf_worker::config::{self, LogLevel};
use clap::Parser;

fn main() -> ExitCode {
    let command = Cli::parse().command();
    let loaded = match config::load() {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("ruche-worker: configuration error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut logging = loaded.settings.observability.logging.clone();
    if matches!(command, Command::Demo { verbose: false, .. }) {
        // The demo's transcript is the output; only problems are logged alongside it.
        logging.level = LogLevel::Warning;
    }
    if let Err(error) = acf_worker::logging::init(&logging) {
        eprintln!("ruche-worker: cannot set up logging: {error}");
        return ExitCode::FAILURE;
    }
    tracing::debug!(config_dir = %loaded.config_dir.display(), env = %loaded.env_name, overrides = ?loaded.overrides, "config_loaded");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ruche-worker: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(acf_worker::cli::execute(command, &loaded.settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "acf_worker_failed");
            eprintln!("ruche-worker: {error}");
            ExitCode::FAILURE
        }
    }
}
