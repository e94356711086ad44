//! A `#[step(durable)]` that waits for a user event OR a timeout (run it with
//! `cargo run -p acf-examples --example macro_durable_wait`).
//!
//! The wait is recorded by the engine, not held in the worker's memory: a durable step can wait for hours,
//! and survives the worker restarting. Two runs show both branches: one gets its reply, the other times out.

use std::time::Duration;

use acf_sdk::JsonSchema;
use acf_sdk::{Context, PushOptions, StepError, step, workflow};
use serde::{Deserialize, Serialize};

/// The run input.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone)]
#[schemars(crate = "acf_sdk::schemars")]
pub struct Question {
    /// The conversation; only `reply` events pushed with this scope wake the run.
    pub session: String,
    /// How long to wait for the reply, in milliseconds.
    pub timeout_ms: u64,
}

/// Which branch of the wait fired (the output of the only step, hence the typed result of a run).
///
/// Step outputs must serialise to JSON objects, hence the internal `branch` tag.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "branch", rename_all = "snake_case")]
pub enum Answer {
    /// The `reply` event came first; `text` is from its payload.
    Replied {
        /// The reply.
        text: String,
    },
    /// The timeout fired first.
    TimedOut,
}

/// The workflow type (registered as "ask").
pub struct Ask;

/// Key of the event the step waits for.
const REPLY: &str = "reply";

#[workflow]
impl Ask {
    /// `durable` makes this a durable task, which is what allows the waits on its [`Context`].
    #[step(durable, execution_timeout = "2m")]
    async fn await_reply(&self, ctx: &Context, question: &Question) -> Result<Answer, StepError> {
        // One call, two conditions in an or-group: the first `reply` event in this session's scope, or the
        // timeout. `Some(payload)` means the event won, `None` the timeout.
        let reply = ctx
            .wait_for_event(
                REPLY,
                Some(&question.session),
                None, // an optional CEL filter over the payload, e.g. `input.text != ""`
                Some(Duration::from_millis(question.timeout_ms)),
            )
            .await?;
        Ok(match reply {
            Some(payload) => Answer::Replied {
                text: payload["text"].as_str().unwrap_or_default().to_owned(),
            },
            None => Answer::TimedOut,
        })
    }
}

/// What [`run`] observed.
#[derive(Debug)]
pub struct Outcome {
    /// The run whose reply was pushed.
    pub answered: Answer,
    /// The run nobody replied to.
    pub unanswered: Answer,
}

/// Starts an embedded engine and a worker serving [`Ask`]; runs one question that gets a reply and one that
/// times out, and returns both answers.
pub async fn run() -> Result<Outcome, Box<dyn std::error::Error>> {
    let (_engine, client) = crate::local_engine().await?;
    let worker = client
        .worker("macro-durable-worker")
        .handle_signals(false)
        .workflow(Ask)
        .build()?;
    let handle = worker.handle();
    let running = tokio::spawn(worker.run());
    // Triggers name the workflow, so let the worker register it (and connect) first.
    tokio::time::timeout(Duration::from_secs(30), async {
        while handle.status().not_ready_reason().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .map_err(|_| "the worker did not become ready")?;

    let ask = Ask::client(&client);

    // Event branch. Trigger without waiting, then push the reply. An event only wakes waits that already
    // exist, and from here we cannot tell when the step has reached its wait; so the reply is pushed again
    // every 200 ms until the run finishes (the step takes the first one, the others match nothing).
    let run = ask
        .run_no_wait(Question {
            session: "s-42".into(),
            timeout_ms: 60_000,
        })
        .await?;
    let result = ask.result(&run);
    tokio::pin!(result);
    let mut every = tokio::time::interval(Duration::from_millis(200));
    let answered = loop {
        tokio::select! {
            answer = &mut result => break answer?,
            _ = every.tick() => {
                // Another session's reply would not wake this run: the scope must match.
                let scope = PushOptions::default().scope("s-42");
                client.push(REPLY, serde_json::json!({ "text": "hi there" }), scope).await?;
            }
        }
    };

    // Timeout branch: nobody replies in session s-7, so the wait ends after one second.
    let unanswered = ask
        .run(Question {
            session: "s-7".into(),
            timeout_ms: 1_000,
        })
        .await?;

    handle.shutdown();
    running.await??;
    Ok(Outcome {
        answered,
        unanswered,
    })
}
