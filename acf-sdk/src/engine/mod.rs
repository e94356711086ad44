//! The embedded, in-memory Hatchet-compatible engine (feature `engine`).
//!
//! One tonic server speaks Hatchet's gRPC protocol (`Dispatcher`, `EventsService`,
//! `WorkflowService`, `v1.AdminService`, `v1.V1Dispatcher`) so that the official SDKs and ours can
//! run workflows against it exactly as against a real Hatchet engine.
//!
//! What it is and is not:
//! * **In-memory and single-process.** Nothing is persisted; restarting the engine forgets every
//!   workflow, run and worker (workers re-register on reconnect). With the same
//!   [`EngineBuilder::token_secret`], tokens minted by a previous instance stay valid.
//! * **Timers fire within 50 ms of their deadline** (the timer loop runs every 10 ms). Real Hatchet
//!   polls timers every 1–30 s, so code that passes here may observe coarser timing in production.
//! * **Liveness as Hatchet:** workers get work only with a heartbeat younger than 5 s, and running
//!   tasks of a worker silent for 30 s are re-queued (both adjustable for tests).
//! * **Worker affinity:** task `worker_labels` and trigger `desired_worker_labels` are honoured
//!   (required labels filter workers, weights rank them). A trigger's `desired_worker_id` counts
//!   only under the workflow's `sticky` strategy, as in Hatchet: HARD runs only there (tasks wait
//!   for that worker), SOFT prefers it.
//! * **Rate limits:** static keys (`PutRateLimit`) and dynamic ones (CEL `key_expr`, `units_expr`,
//!   `limit_values_expr`) in fixed windows; units are taken when a task is assigned.
//! * **Concurrency:** all five v1 strategies (`GROUP_ROUND_ROBIN`,
//!   `CANCEL_IN_PROGRESS`, `CANCEL_NEWEST`, `CANCEL_QUEUED_EXCEPT_NEWEST`,
//!   `CANCEL_QUEUED_EXCEPT_OLDEST`) with Hatchet's orderings; `max_runs_expression` (CEL over
//!   `input`, `additional_metadata`, `workflow_run_id`: a non-negative integer, the newest arrival's
//!   value is the group's limit, anything else fails the run or task); tenant-scoped limits
//!   (`name` + `is_tenant_scoped`) shared by every workflow naming them, redefined in place by each
//!   registration, with inconsistent orders across chains refused. A one-task workflow's limits
//!   become its task's, as Hatchet does.
//! * **Schedules:** cron triggers (declared by `PutWorkflow` or created over REST; standard
//!   5-field expressions in UTC) and one-off scheduled runs fire from the timer loop and are listed
//!   by the REST API. They are kept in memory like everything else.
//! * **REST and dashboard:** the same port also speaks HTTP/1 for the subset of Hatchet's REST API
//!   the official SDKs use (module `rest`) and serves a dashboard at `/dashboard`
//!   ([`EngineHandle::dashboard_url`]).
//! * **Idempotency:** a trigger whose CEL key an earlier run still holds is refused
//!   with `ALREADY_EXISTS` and the `IdempotencyCollisionError` detail (bulk: the created runs and the
//!   collisions), which the official SDKs and ours turn into their typed collision errors.
//! * **Refused at registration** (`INVALID_ARGUMENT` naming the field): batch tasks
//!   (`tasks[i].batch`).
//!
//! Remaining differences from Hatchet (v0.106-era engines):
//! * `PauseRateLimit` is acknowledged only; schedules, crons and runs are kept in memory (nothing
//!   survives a restart);
//! * limits of a multi-task workflow gate the whole run (Hatchet's DAG-operator path); Hatchet's
//!   older DAG path refuses tenant-scoped and `max_runs_expression` limits at the workflow level,
//!   this engine accepts them;
//! * a group's limit follows its newest *arriving* holder (DAG tasks arrive when their parents
//!   finish), where Hatchet takes the newest *created* task;
//! * Hatchet ignores worker labels when a sticky strategy applies; here required labels still
//!   filter the desired worker.
//!
//! ```no_run
//! # async fn demo() -> Result<(), acf_sdk::engine::EngineError> {
//! let engine = acf_sdk::engine::Engine::builder().start().await?;
//! for (key, value) in engine.client_env() {
//!     println!("export {key}={value}");
//! }
//! engine.shutdown().await;
//! # Ok(()) }
//! ```

// Module map (all private to the crate; the public surface is re-exported below): `auth` (tokens),
// `validation` -> `model` (registered workflows), `state` (the one lock), `lifecycle` (triggers, gates, DAG
// activation), `completion` (outcomes), `scheduler` (assignment, payloads, timer tick), `timers`,
// `concurrency`, `conditions` (waits), `durable_log` (durable event logs), `idempotency`, `ingest` (events),
// `notify` (run event fan-out), `ratelimit` (rate-limit windows), `schedules` (crons, scheduled runs),
// `rest` (REST API and dashboard) and `services` (one file per gRPC service).
pub(crate) mod auth;
pub(crate) mod completion;
pub(crate) mod concurrency;
pub(crate) mod conditions;
pub(crate) mod durable_log;
pub(crate) mod expr;
pub(crate) mod history;
pub(crate) mod idempotency;
pub(crate) mod ingest;
pub(crate) mod lifecycle;
pub(crate) mod model;
pub(crate) mod notify;
pub(crate) mod queries;
pub(crate) mod ratelimit;
mod rest;
pub(crate) mod scheduler;
pub(crate) mod schedules;
mod services;
pub(crate) mod state;
pub(crate) mod timers;
pub(crate) mod validation;

#[cfg(test)]
mod tests;

pub use expr::{ExprError, eval_string};

use crate::proto::v1::CreateWorkflowVersionRequest;
use auth::TokenKeys;
use state::{State, Timing};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The version reported by `GetVersion`: new enough for slot configs and the `DurableTask` stream.
pub const ENGINE_VERSION: &str = "v0.94.16";

/// How often the timer loop runs (timers fire within 50 ms of their deadline).
const TICK: Duration = Duration::from_millis(10);

/// Errors starting the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The address could not be bound.
    #[error("could not bind {addr}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The engine's own runtime or its thread could not be started.
    #[error("could not start the engine's runtime")]
    Runtime {
        /// Cause.
        source: std::io::Error,
    },
    /// The engine's thread ended before the engine was serving (it panicked).
    #[error("the engine's thread ended before it was serving")]
    ThreadEnded,
}

/// State shared by the services, the timer loop and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    keys: TokenKeys,
    registered: Mutex<Vec<CreateWorkflowVersionRequest>>,
    /// Every request received, when [`EngineBuilder::record_requests`] turned recording on.
    recorded: Option<Mutex<Vec<RecordedRequest>>>,
    stream_ids: AtomicU64,
    shutdown: CancellationToken,
}

/// One request the engine received (see [`EngineBuilder::record_requests`]): what an outside SDK sent,
/// for tests that compare SDKs or assert on the protocol.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `Service/Method`, e.g. `Dispatcher/Heartbeat` or `v1.AdminService/PutWorkflow`.
    pub rpc: &'static str,
    /// The request message, protobuf-encoded (decode it with [`RecordedRequest::decode`]).
    pub message: Vec<u8>,
    /// When the engine received it.
    pub at: Instant,
}

impl RecordedRequest {
    /// Decodes the message as `M`.
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.message.as_slice())
    }
}

impl Shared {
    /// Locks the state (a panic elsewhere never wedges the engine: poisoning is ignored).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs a mutation and then schedules whatever became assignable.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let now = Instant::now();
        let mut state = self.lock();
        let out = f(&mut state, now);
        state.schedule(now);
        out
    }

    /// Records a request when recording is on.
    pub(crate) fn record<M: prost::Message>(&self, rpc: &'static str, message: &M) {
        if let Some(log) = &self.recorded {
            log.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(RecordedRequest {
                    rpc,
                    message: message.encode_to_vec(),
                    at: Instant::now(),
                });
        }
    }

    pub(crate) fn next_stream_id(&self) -> u64 {
        self.stream_ids.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Entry point: `Engine::builder()`.
#[derive(Debug)]
pub struct Engine;

impl Engine {
    /// A builder with Hatchet's defaults, bound to `127.0.0.1:0`.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret: None,
            timing: Timing::default(),
            record: false,
            retained_runs: state::RETAINED_RUNS,
            threads: 1,
        }
    }
}

/// Configures and starts an engine.
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    addr: SocketAddr,
    secret: Option<Vec<u8>>,
    timing: Timing,
    record: bool,
    retained_runs: usize,
    threads: usize,
}

impl EngineBuilder {
    /// Address to listen on (port 0 picks a free port). Default `127.0.0.1:0`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Signing secret for tokens; a restarted engine with the same secret accepts old tokens.
    pub fn token_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Heartbeat age beyond which a worker gets no new work (Hatchet: 5 s).
    pub fn heartbeat_eligibility(mut self, age: Duration) -> Self {
        self.timing.eligibility = age;
        self
    }

    /// Heartbeat silence after which running tasks are re-queued (Hatchet: 30 s).
    pub fn reassign_after(mut self, silence: Duration) -> Self {
        self.timing.reassign_after = silence;
        self
    }

    /// How many finished runs stay available (run lookups, the REST API, the dashboard); older ones are
    /// forgotten, oldest first. Each keeps its tasks' inputs, outputs and events, so this bounds the engine's
    /// memory in a long-running process. Default 50 000 (at least 1).
    pub fn retained_runs(mut self, runs: usize) -> Self {
        self.retained_runs = runs.max(1);
        self
    }

    /// Keeps every request of the worker and trigger protocol (register, listen, heartbeat, step events,
    /// unsubscribe, workflow registration, triggers, schedules, events, run-event subscriptions) for [`EngineHandle::requests`]. Off by default:
    /// the log grows without bound.
    pub fn record_requests(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    /// Threads of the engine's own runtime (default 1, at least 1). The engine never runs on the caller's
    /// runtime: like a Hatchet server it is a separate party, and sharing a work-stealing runtime with the
    /// workers and clients it serves costs them all (every hand-off between engine and worker woke the other
    /// runtime thread: 1.8 ms of CPU per turn there against 1.1 ms on a thread of its own, see BENCHMARKS.md).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Binds and starts serving on a runtime of the engine's own, on its own thread (see
    /// [`EngineBuilder::threads`]); the runtime ends with the [`EngineHandle`].
    pub async fn start(self) -> Result<EngineHandle, EngineError> {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        // The runtime is built and dropped on the engine's thread: a runtime dropped inside the caller's async
        // context would panic.
        std::thread::Builder::new()
            .name("acf-engine".to_owned())
            .spawn(move || {
                let runtime = match self.runtime() {
                    Ok(runtime) => runtime,
                    Err(source) => {
                        let _ = ready_tx.send(Err(EngineError::Runtime { source }));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = self.serve().await;
                    let serving = started.is_ok();
                    if ready_tx.send(started).is_ok() && serving {
                        // Until the handle is dropped; then the runtime ends what is left (connections).
                        let _ = stop_rx.await;
                    }
                });
            })
            .map_err(|source| EngineError::Runtime { source })?;
        let mut handle = ready_rx.await.map_err(|_| EngineError::ThreadEnded)??;
        handle.runtime = Some(stop_tx);
        Ok(handle)
    }

    /// The engine's own runtime: one thread, or [`EngineBuilder::threads`] workers.
    fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        if self.threads == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(self.threads);
            builder
        }
        .enable_all()
        .thread_name("acf-engine")
        .build()
    }

    /// Binds and serves on the current runtime.
    async fn serve(self) -> Result<EngineHandle, EngineError> {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|source| EngineError::Bind {
                addr: self.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| EngineError::Bind {
            addr: self.addr,
            source,
        })?;
        let keys = self.secret.map_or_else(TokenKeys::random, TokenKeys::new);
        let token = keys.mint(&addr.to_string());
        let shared = Arc::new(Shared {
            state: Mutex::new(
                State::new(keys.tenant_id(), self.timing).retaining(self.retained_runs),
            ),
            keys,
            registered: Mutex::new(Vec::new()),
            recorded: self.record.then(|| Mutex::new(Vec::new())),
            stream_ids: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
        });
        let ticker = tokio::spawn(tick_loop(shared.clone()));
        let server = tokio::spawn(services::serve(shared.clone(), listener));
        tracing::info!(%addr, "embedded hatchet engine listening");
        Ok(EngineHandle {
            shared,
            addr,
            token,
            tasks: Mutex::new(vec![ticker, server]),
            runtime: None,
        })
    }
}

async fn tick_loop(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = interval.tick() => shared.lock().tick(Instant::now()),
        }
    }
}

/// A running engine. Dropping it stops the engine.
#[derive(Debug)]
pub struct EngineHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    token: String,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Keeps the engine's runtime (and thread) alive; dropped with the handle.
    runtime: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EngineHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client token (claims `sub`, `server_url`, `grpc_broadcast_address` = [`Self::addr`]).
    pub fn token(&self) -> String {
        self.token.clone()
    }

    /// `HATCHET_CLIENT_TOKEN`, `HATCHET_CLIENT_HOST_PORT`, `HATCHET_CLIENT_TLS_STRATEGY=none`, and
    /// the REST base the SDKs otherwise take from the token's `server_url` claim
    /// (`HATCHET_CLIENT_SERVER_URL` for Python and ours, `HATCHET_CLIENT_API_URL` for TypeScript).
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("HATCHET_CLIENT_TOKEN".into(), self.token.clone()),
            ("HATCHET_CLIENT_HOST_PORT".into(), self.addr.to_string()),
            ("HATCHET_CLIENT_TLS_STRATEGY".into(), "none".into()),
            ("HATCHET_CLIENT_SERVER_URL".into(), self.server_url()),
            ("HATCHET_CLIENT_API_URL".into(), self.server_url()),
        ]
    }

    /// The tenant every token of this engine names (REST paths carry it).
    pub fn tenant_id(&self) -> uuid::Uuid {
        self.shared.keys.tenant_id()
    }

    /// The REST API's base URL (the same port as gRPC).
    pub fn server_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The dashboard's URL; it carries a token in the fragment (never sent to the server), so
    /// treat it like the token.
    pub fn dashboard_url(&self) -> String {
        format!("{}/dashboard#token={}", self.server_url(), self.token)
    }

    /// Every `PutWorkflow` request as received, in order.
    pub fn registered_workflows(&self) -> Vec<CreateWorkflowVersionRequest> {
        self.shared
            .registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The requests received so far, in order (empty unless [`EngineBuilder::record_requests`] is on).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorded.as_ref().map_or_else(Vec::new, |log| {
            log.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
    }

    /// Ends every open `ListenV2` and `DurableTask` stream with `UNAVAILABLE` (workers must reconnect).
    pub fn drop_worker_streams(&self) {
        services::drop_worker_streams(&self.shared);
    }

    /// Stops serving and waits (bounded) for the server to release the port.
    pub async fn shutdown(&self) {
        services::drop_worker_streams(&self.shared);
        self.shared.shutdown.cancel();
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}
