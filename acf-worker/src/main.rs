//! `ruche-worker`: parse arguments, load configuration, set up logging, run the subcommand. Exit 0 on success
//! (including a drained shutdown after SIGINT/SIGTERM), 1 with a message on stderr otherwise.

use std::process::ExitCode;

use acf_sdk::error::Report;
use acf_worker::cli::{Cli, Command};
use acf_worker::config::{self, LogLevel};
use acf_worker::telemetry::Telemetry;
use clap::Parser;

fn main() -> ExitCode {
    let command = Cli::parse().command();
    let loaded = match config::load() {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("ruche-worker: configuration error: {}", Report(&error));
            return ExitCode::FAILURE;
        }
    };
    let mut logging = loaded.settings.observability.logging.clone();
    if matches!(command, Command::Demo { verbose: false, .. }) {
        // The demo's transcript is the output; only problems are logged alongside it.
        logging.level = LogLevel::Warning;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ruche-worker: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (telemetry, spans) = match traces(&runtime) {
        Ok(traces) => traces,
        Err(error) => {
            eprintln!("ruche-worker: cannot set up traces: {}", Report(&error));
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = acf_worker::logging::init_with(&logging, spans) {
        eprintln!("ruche-worker: cannot set up logging: {}", Report(&error));
        return ExitCode::FAILURE;
    }
    tracing::debug!(config_dir = %loaded.config_dir.display(), env = %loaded.env_name, overrides = ?loaded.overrides, traces = telemetry.is_enabled(), "config_loaded");
    let result = runtime.block_on(acf_worker::cli::execute(command, &loaded.settings));
    {
        // The exporter's gRPC channel runs on the runtime: flush before the runtime goes.
        let _entered = runtime.enter();
        telemetry.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Each error prints its own message and leaves its cause to `source()`: print the whole chain.
            let error = Report(&error);
            tracing::error!(%error, "acf_worker_failed");
            eprintln!("ruche-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

type SpanLayer =
    Option<Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>>;

/// The trace exporter the standard `OTEL_*` variables ask for (none without the `otel` feature).
fn traces(
    runtime: &tokio::runtime::Runtime,
) -> Result<(Telemetry, SpanLayer), acf_worker::telemetry::TelemetryError> {
    #[cfg(feature = "otel")]
    {
        let _entered = runtime.enter();
        let (telemetry, layer) = acf_worker::telemetry::init(|name| std::env::var(name).ok())?;
        Ok((telemetry, layer))
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = runtime;
        Ok((Telemetry::default(), None))
    }
}
