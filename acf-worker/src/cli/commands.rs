//! One function per subcommand.

use std::io::Write;

use uuid::Uuid;

use super::args::{Command, RunArgs, SendArgs};
use crate::config::Settings;
use crate::intake::{self, IntakeError};
use crate::models::{WorkflowInput, WorkflowOutput};
use crate::run::{self, RunError};
use crate::stores::Backend;
#[cfg(feature = "embedded")]
use embedded::{demo, engine, run_embedded};

/// Why a subcommand failed (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Starting or running the worker failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The demo failed.
    #[cfg(feature = "embedded")]
    #[error("demo failed")]
    Demo(#[from] crate::demo::DemoError),
    /// `send` could not submit the message.
    #[error("send failed")]
    Intake(#[from] IntakeError),
    /// `send --wait`: the run failed.
    #[error("the run failed")]
    RunResult(#[source] acf_sdk::Error),
    /// The embedded engine could not start.
    #[cfg(feature = "embedded")]
    #[error("cannot start the embedded engine")]
    Engine(#[from] acf_sdk::engine::EngineError),
    /// The subcommand needs the embedded engine, which this build leaves out.
    #[cfg(not(feature = "embedded"))]
    #[error(
        "`{0}` needs the embedded engine: build ruche-worker with the `embedded` feature (on by default)"
    )]
    NoEmbeddedEngine(&'static str),
    /// Writing to stdout failed.
    #[error("cannot write output")]
    Output(#[from] std::io::Error),
    /// The demo ran but something in it went wrong.
    #[cfg(feature = "embedded")]
    #[error("demo finished with {0} failed run(s)")]
    DemoFailures(usize),
}

/// Runs `command` with the loaded settings.
pub async fn execute(command: Command, settings: &Settings) -> Result<(), CliError> {
    match command {
        Command::Run(args) => run(&args, settings).await,
        Command::Demo {
            redis, dashboard, ..
        } => demo(settings, redis, dashboard).await,
        Command::Send(args) => send(&args, settings).await,
        Command::Engine(args) => engine(&args).await,
    }
}

async fn run(args: &RunArgs, settings: &Settings) -> Result<(), CliError> {
    if !args.embedded {
        return Ok(run::run_worker(settings).await?);
    }
    run_embedded(args, settings).await
}

#[cfg(not(feature = "embedded"))]
async fn run_embedded(_: &RunArgs, _: &Settings) -> Result<(), CliError> {
    Err(CliError::NoEmbeddedEngine("run --embedded"))
}

#[cfg(not(feature = "embedded"))]
async fn demo(_: &Settings, _: bool, _: bool) -> Result<(), CliError> {
    Err(CliError::NoEmbeddedEngine("demo"))
}

#[cfg(not(feature = "embedded"))]
async fn engine(_: &super::args::EngineArgs) -> Result<(), CliError> {
    Err(CliError::NoEmbeddedEngine("engine"))
}

async fn send(args: &SendArgs, settings: &Settings) -> Result<(), CliError> {
    let client = run::client_from_settings(settings)?;
    let backend = Backend::open(&settings.storage.session)
        .await
        .map_err(RunError::from)?;
    let input = WorkflowInput {
        tenant_id: args.tenant_id.clone(),
        agent_id: args.agent_id.clone(),
        interlocutor_id: args.interlocutor_id.clone(),
        channel: args.channel.clone(),
        message_id: args
            .message_id
            .clone()
            .unwrap_or_else(|| Uuid::new_v4().to_string()),
        message_content: args.message_content.clone(),
        session_key: args.session_key.clone(),
    };
    let submitted = intake::submit(
        &backend.stores,
        &client,
        &input,
        settings.accumulation.max_message_chars,
    )
    .await?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "{}",
        serde_json::json!({
            "message_id": submitted.message_id,
            "session_key": submitted.session_key,
            "run_id": submitted.run.run_id,
        })
    )?;
    if args.wait {
        let output: WorkflowOutput = submitted
            .run
            .result()
            .await
            .and_then(|o| o.step(crate::workflow::LogicalTurnWorkflow::COMMIT_AND_RESPOND))
            .map_err(CliError::RunResult)?;
        writeln!(
            out,
            "{}",
            serde_json::to_string(&output).unwrap_or_default()
        )?;
    }
    Ok(())
}

/// The subcommands running the in-process engine.
#[cfg(feature = "embedded")]
mod embedded {
    use std::collections::HashMap;
    use std::io::Write;

    use acf_sdk::engine::{Engine, EngineError, EngineHandle};
    use acf_sdk::{Client, ClientConfig};

    use super::CliError;
    use crate::cli::args::{EngineArgs, RunArgs};
    use crate::config::Settings;
    use crate::demo;
    use crate::models::TurnOutcome;
    use crate::run::{self, RunError};

    pub(super) async fn run_embedded(args: &RunArgs, settings: &Settings) -> Result<(), CliError> {
        run::log_starting(settings);
        let engine =
            start_engine(args.bind, args.token_secret.as_deref(), args.retained_runs).await?;
        print_exports(&engine)?;
        let client = embedded_client(&engine)?;
        let result = run::serve(&client, settings).await;
        engine.shutdown().await;
        Ok(result?)
    }

    pub(super) async fn demo(
        settings: &Settings,
        redis: bool,
        dashboard: bool,
    ) -> Result<(), CliError> {
        // The shipped default.toml names Redis for production use; the demo only uses it when asked explicitly, by the
        // flag or by selecting the backend in the environment.
        let redis = redis
            || std::env::var("RUCHE_STORAGE__SESSION__BACKEND")
                .is_ok_and(|b| b.eq_ignore_ascii_case("redis"));
        let mut out = std::io::stdout();
        let report = demo::run_demo_with(settings, redis, dashboard, &mut out).await?;
        out.flush()?;
        match report.count(TurnOutcome::Failed) {
            0 => Ok(()),
            failed => Err(CliError::DemoFailures(failed)),
        }
    }

    pub(super) async fn engine(args: &EngineArgs) -> Result<(), CliError> {
        let engine =
            start_engine(args.bind, args.token_secret.as_deref(), args.retained_runs).await?;
        print_exports(&engine)?;
        let signal = run::next_signal().await;
        tracing::info!(signal, "shutdown_signal_received");
        engine.shutdown().await;
        Ok(())
    }

    async fn start_engine(
        bind: std::net::SocketAddr,
        secret: Option<&str>,
        retained_runs: Option<usize>,
    ) -> Result<EngineHandle, EngineError> {
        let mut builder = Engine::builder().bind(bind);
        if let Some(secret) = secret {
            builder = builder.token_secret(secret.as_bytes().to_vec());
        }
        if let Some(runs) = retained_runs {
            builder = builder.retained_runs(runs);
        }
        builder.start().await
    }

    /// Prints `export NAME=value` lines a shell can `eval`.
    fn print_exports(engine: &EngineHandle) -> std::io::Result<()> {
        let mut out = std::io::stdout();
        for (name, value) in engine.client_env() {
            writeln!(out, "export {name}={value}")?;
        }
        writeln!(out, "# dashboard: {}", engine.dashboard_url())?;
        out.flush()
    }

    fn embedded_client(engine: &EngineHandle) -> Result<Client, RunError> {
        let env: HashMap<String, String> = engine.client_env().into_iter().collect();
        let client = ClientConfig::from_lookup(|k| env.get(k).cloned())
            .map_err(acf_sdk::Error::from)
            .and_then(Client::new)
            .map_err(RunError::Client)?;
        tracing::info!(server_url = %client.config().host_port, "hatchet_client_initialized");
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use acf_sdk::error::Report;

    use super::CliError;
    use crate::intake::IntakeError;
    use crate::mutex::MutexError;
    use crate::run::RunError;
    use crate::stores::StoreError;

    fn json() -> serde_json::Error {
        serde_json::from_str::<u32>("\"x\"").unwrap_err()
    }

    fn redis() -> redis::RedisError {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused").into()
    }

    /// What `ruche-worker` prints walks each error's `source()` chain: no message may repeat its
    /// cause's text, and the leaf causes still appear.
    #[test]
    fn errors_print_each_cause_once() {
        let chains: Vec<(CliError, &str)> = vec![
            (
                CliError::Intake(IntakeError::Store(StoreError::Encode {
                    what: "message",
                    error: json(),
                })),
                "invalid type",
            ),
            (
                CliError::Run(RunError::Register {
                    host_port: "127.0.0.1:7077".into(),
                    source: acf_sdk::Error::Json(json()),
                }),
                "invalid type",
            ),
            (
                CliError::Run(RunError::Store(StoreError::Unavailable {
                    operation: "connect",
                    error: redis(),
                })),
                "connection refused",
            ),
            (
                CliError::RunResult(acf_sdk::Error::Json(json())),
                "invalid type",
            ),
        ];
        for (error, leaf) in &chains {
            let report = Report(error);
            assert!(std::error::Error::source(error).is_some(), "{report}");
            assert_eq!(report.repeated_cause(), None, "{report}");
            assert_eq!(report.to_string().matches(leaf).count(), 1, "{report}");
        }
        // Leaf errors print their backend cause themselves and expose no source.
        let lock = MutexError::Unavailable {
            operation: "acquire",
            key: "sesslock:t:a:i:web".into(),
            error: redis(),
        };
        assert!(std::error::Error::source(&lock).is_none());
        assert!(lock.to_string().contains("connection refused"), "{lock}");
    }
}
