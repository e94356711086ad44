//! One shared `SubscribeToWorkflowRuns` stream per client: every awaited run id is written to it, and the
//! engine answers once per run when it finishes. Reconnects with backoff and re-sends outstanding ids.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::channel::Connection;
use crate::error::{Error, Result};
use crate::proto::{SubscribeToWorkflowRunsRequest, WorkflowRunEvent};
use crate::retry::RetryPolicy;

type Waiters = HashMap<String, Vec<oneshot::Sender<WorkflowRunEvent>>>;

#[derive(Default)]
struct State {
    waiters: Waiters,
    sender: Option<mpsc::UnboundedSender<SubscribeToWorkflowRunsRequest>>,
    /// Whether the stream task is alive (connected or reconnecting): exactly one at a time.
    running: bool,
}

/// The shared run-result listener.
#[derive(Clone)]
pub(crate) struct RunListener {
    conn: Connection,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for RunListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunListener")
    }
}

fn request(run_id: &str) -> SubscribeToWorkflowRunsRequest {
    SubscribeToWorkflowRunsRequest {
        workflow_run_id: run_id.to_owned(),
    }
}

impl RunListener {
    pub(crate) fn new(conn: Connection) -> Self {
        Self {
            conn,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the run's `WorkflowRunEvent`.
    pub(crate) async fn wait(&self, run_id: &str) -> Result<WorkflowRunEvent> {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.lock();
            state.waiters.entry(run_id.to_owned()).or_default().push(tx);
            let sent = state
                .sender
                .as_ref()
                .is_some_and(|s| s.send(request(run_id)).is_ok());
            if !sent && !state.running {
                // No stream task: start one; it subscribes every outstanding id (including this one). A task
                // that is reconnecting re-sends every outstanding id itself.
                state.running = true;
                let this = self.clone();
                tokio::spawn(async move { this.run().await });
            }
        }
        rx.await
            .map_err(|_| Error::Closed("the run listener stopped".into()))
    }

    async fn run(self) {
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
            retry_not_found: false,
        };
        let mut failures = 0u32;
        loop {
            let (tx, rx) = mpsc::unbounded_channel();
            {
                let mut state = self.lock();
                if state.waiters.is_empty() {
                    state.sender = None;
                    state.running = false;
                    return;
                }
                for id in state.waiters.keys() {
                    let _ = tx.send(request(id));
                }
                state.sender = Some(tx);
            }
            let mut client = self.conn.dispatcher();
            // The engine answers the open only with the first finished run (grpc-go sends no headers before
            // it); the ids were queued above, so waiting for it is waiting for that result.
            match client
                .subscribe_to_workflow_runs(UnboundedReceiverStream::new(rx))
                .await
            {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(event) => {
                                failures = 0;
                                self.deliver(&event);
                            }
                            Err(status) => {
                                tracing::debug!(code = ?status.code(), "run listener stream error");
                                break;
                            }
                        }
                    }
                }
                Err(status) => {
                    tracing::debug!(code = ?status.code(), "cannot open the run listener stream")
                }
            }
            {
                let mut state = self.lock();
                state.sender = None;
                if state.waiters.is_empty() {
                    state.running = false;
                    return;
                }
            }
            failures += 1;
            tokio::time::sleep(policy.delay(failures)).await;
        }
    }

    fn deliver(&self, event: &WorkflowRunEvent) {
        let waiters = self.lock().waiters.remove(&event.workflow_run_id);
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(event.clone());
        }
    }
}
