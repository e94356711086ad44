//! `ruche-worker demo`: the whole product in one process. An embedded Hatchet engine, the worker, in-memory stores
//! (or the configured Redis), the echo brain, and a scripted conversation of three users typing in bursts. Every
//! message goes through intake and gets its own run; the demo prints each committed turn with the messages it
//! absorbed and its response, then how the runs ended.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use acf_sdk::engine::Engine;
use acf_sdk::{Client, ClientConfig};

use crate::brain::EchoBrain;
use crate::config::Settings;
use crate::intake::{self, IntakeError};
use crate::models::{Conversation, TurnOutcome, WorkflowInput, WorkflowOutput};
use crate::run::{RunError, start_worker, workflow_with_brain};
use crate::stores::{Backend, StoreError, StoreSettings, TurnRecord};
use crate::workflow::LogicalTurnWorkflow;

/// The demo's tenant and agent.
const TENANT: &str = "00000000-0000-4000-8000-00000000aaaa";
const AGENT: &str = "00000000-0000-4000-8000-00000000bbbb";

/// One scripted message: who sends what, how long after the demo starts.
struct Line {
    user: &'static str,
    at_ms: u64,
    text: &'static str,
}

/// The users: name, interlocutor id, channel.
const USERS: [(&str, &str, &str); 3] = [
    ("alice", "00000000-0000-4000-8000-0000000a11ce", "whatsapp"),
    ("bob", "00000000-0000-4000-8000-000000000b0b", "web"),
    ("carol", "00000000-0000-4000-8000-00000000ca01", "sms"),
];

/// Alice types in a burst of three, Bob sends one message and a follow-up after his answer, Carol sends two
/// quick messages, and Alice thanks the agent once she has her answer.
const SCRIPT: [Line; 8] = [
    Line {
        user: "alice",
        at_ms: 0,
        text: "hi",
    },
    Line {
        user: "bob",
        at_ms: 80,
        text: "what are your opening hours?",
    },
    Line {
        user: "alice",
        at_ms: 150,
        text: "I need help",
    },
    Line {
        user: "carol",
        at_ms: 200,
        text: "quick question",
    },
    Line {
        user: "alice",
        at_ms: 300,
        text: "with order 123",
    },
    Line {
        user: "carol",
        at_ms: 450,
        text: "do you ship to Canada?",
    },
    Line {
        user: "bob",
        at_ms: 3_500,
        text: "and on Sundays?",
    },
    Line {
        user: "alice",
        at_ms: 4_000,
        text: "thanks!",
    },
];

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Starting the engine or the worker failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Submitting a message failed.
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// Reading the results failed.
    #[error("cannot read the demo's results")]
    Store(#[from] StoreError),
    /// A run did not finish.
    #[error("a run did not finish")]
    RunFailed(#[source] acf_sdk::Error),
    /// Writing the transcript failed.
    #[error("cannot write the transcript")]
    Output(#[from] std::io::Error),
}

/// What the demo did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemoReport {
    /// Messages sent.
    pub messages: usize,
    /// Each run's output, in submission order.
    pub runs: Vec<WorkflowOutput>,
    /// Committed turns per user, in order.
    pub turns: BTreeMap<String, Vec<TurnRecord>>,
}

impl DemoReport {
    /// Runs that ended with `status`.
    pub fn count(&self, status: TurnOutcome) -> usize {
        self.runs.iter().filter(|r| r.status == status).count()
    }
}

/// Runs the demo, writing the transcript to `out`. `use_redis` selects `[storage.session]` instead of memory.
pub async fn run_demo(
    settings: &Settings,
    use_redis: bool,
    out: &mut (dyn Write + Send),
) -> Result<DemoReport, DemoError> {
    run_demo_with(settings, use_redis, false, out).await
}

/// [`run_demo`], optionally (`dashboard`) printing the engine's dashboard URL first and keeping the
/// engine up after the conversation until a shutdown signal.
pub async fn run_demo_with(
    settings: &Settings,
    use_redis: bool,
    dashboard: bool,
    out: &mut (dyn Write + Send),
) -> Result<DemoReport, DemoError> {
    let backend = if use_redis {
        Backend::open(&settings.storage.session)
            .await
            .map_err(RunError::from)?
    } else {
        Backend::memory(StoreSettings::from(&settings.storage.session))
    };
    let engine = Engine::builder().start().await.map_err(RunError::from)?;
    let env: HashMap<String, String> = engine.client_env().into_iter().collect();
    let client = ClientConfig::from_lookup(|k| env.get(k).cloned())
        .map_err(acf_sdk::Error::from)
        .and_then(Client::new)
        .map_err(RunError::Client)?;
    let workflow = workflow_with_brain(&backend, settings, Arc::new(EchoBrain))?;
    writeln!(
        out,
        "ruche-worker demo: embedded Hatchet engine on {}, {} stores, echo brain\n",
        engine.addr(),
        if use_redis { "Redis" } else { "in-memory" }
    )?;
    if dashboard {
        writeln!(out, "dashboard: {}\n", engine.dashboard_url())?;
    }
    let worker = start_worker(&client, workflow, settings).await?;
    let result = converse(&backend, &client, settings, out).await;
    if dashboard {
        writeln!(
            out,
            "\ndashboard still open at {} (Ctrl-C to stop)",
            engine.dashboard_url()
        )?;
        out.flush()?;
        crate::run::next_signal().await;
    }
    worker.stop().await?;
    engine.shutdown().await;
    result
}

async fn converse(
    backend: &Backend,
    client: &Client,
    settings: &Settings,
    out: &mut (dyn Write + Send),
) -> Result<DemoReport, DemoError> {
    let started = tokio::time::Instant::now();
    let mut runs = Vec::new();
    for line in &SCRIPT {
        tokio::time::sleep_until(started + Duration::from_millis(line.at_ms)).await;
        let submitted = intake::submit(
            &backend.stores,
            client,
            &input_for(line),
            settings.accumulation.max_message_chars,
        )
        .await?;
        writeln!(
            out,
            "{:>5} ms  {:<6} > {}",
            started.elapsed().as_millis(),
            line.user,
            line.text
        )?;
        runs.push(submitted.run);
    }
    let mut outputs = Vec::new();
    for run in &runs {
        let output = run.result().await.map_err(DemoError::RunFailed)?;
        outputs.push(
            output
                .step::<WorkflowOutput>(LogicalTurnWorkflow::COMMIT_AND_RESPOND)
                .map_err(DemoError::RunFailed)?,
        );
    }
    let mut report = DemoReport {
        messages: SCRIPT.len(),
        runs: outputs,
        turns: BTreeMap::new(),
    };
    writeln!(out)?;
    for (user, _, _) in USERS {
        let session_key = input_for(&Line {
            user,
            at_ms: 0,
            text: "",
        })
        .session_key();
        let turns = backend.stores.audit.session_turns(&session_key).await?;
        write_turns(backend, user, &turns, out).await?;
        report.turns.insert(user.to_owned(), turns);
    }
    writeln!(
        out,
        "{} messages → {} runs: {} answered a turn, {} found their message already absorbed, {} failed",
        report.messages,
        report.runs.len(),
        report.count(TurnOutcome::Complete),
        report.count(TurnOutcome::Absorbed),
        report.count(TurnOutcome::Failed)
    )?;
    Ok(report)
}

async fn write_turns(
    backend: &Backend,
    user: &str,
    turns: &[TurnRecord],
    out: &mut (dyn Write + Send),
) -> Result<(), DemoError> {
    let session = turns.first().map_or("", |t| t.session_key.as_str());
    writeln!(out, "{user}  ({session})")?;
    for turn in turns {
        let span = (turn.committed_at - turn.started_at).num_milliseconds();
        writeln!(
            out,
            "  turn {}  {} message(s), committed {span} ms after the first",
            turn.turn_number,
            turn.message_ids.len()
        )?;
        for id in &turn.message_ids {
            let text = backend
                .stores
                .messages
                .get(session, *id)
                .await?
                .map(|m| m.content)
                .unwrap_or_default();
            writeln!(out, "    > {text}")?;
        }
        match (&turn.response, &turn.error) {
            (Some(response), _) => writeln!(out, "    < {response}")?,
            (None, Some(error)) => writeln!(out, "    ! failed: {error}")?,
            (None, None) => writeln!(out, "    (no response)")?,
        }
    }
    writeln!(out)?;
    Ok(())
}

fn input_for(line: &Line) -> WorkflowInput {
    let (_, interlocutor, channel) = USERS
        .iter()
        .find(|(name, _, _)| *name == line.user)
        .copied()
        .unwrap_or(USERS[0]);
    Conversation::between(TENANT, AGENT, interlocutor, channel).message(line.text)
}
