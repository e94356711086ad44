//! The connection supervisor: `Register`, one `ListenV2` stream and a separate 4 s `Heartbeat` task;
//! reconnects with jittered backoff on stream error, EOF and heartbeat `FAILED_PRECONDITION`, re-registers
//! (workflows included) when the engine no longer knows the worker (`NOT_FOUND`, e.g. after an engine
//! restart), and gives up after too many consecutive failures.
//!
//! Hatchet's dispatcher (grpc-go) sends the `ListenV2` response headers only with the first action, so the
//! open of an idle worker's stream never completes: it is raced against stop and reconnect like the stream
//! itself, and readiness is "`ListenV2` requested and a heartbeat accepted", not "headers received".

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::dispatch;
use super::state::Shared;
use super::version::EngineVersion;
use crate::error::{Error, Result};
use crate::model::LabelValue;
use crate::proto::{
    GetVersionRequest, HeartbeatRequest, RuntimeInfo, WorkerLabels, WorkerListenRequest,
    WorkerRegisterRequest,
};
use crate::retry::RetryPolicy;

/// Signals between the heartbeat task and the listener.
pub(crate) struct Signals {
    /// The heartbeat asks the listener to drop the stream of session `n` (value = session id).
    reconnect: watch::Sender<u64>,
    /// The engine forgot the worker: register again.
    reregister: AtomicBool,
    /// Sends a heartbeat now: when a `ListenV2` is requested, which is right after `Register`.
    kick: tokio::sync::Notify,
    session: std::sync::atomic::AtomicU64,
    /// The session whose `ListenV2` has been requested, and when. A heartbeat the engine accepts after
    /// that makes the worker ready: a grpc-go engine sends no response headers on an idle stream, so
    /// "headers received" cannot be what readiness waits for.
    listening: std::sync::Mutex<Option<(u64, Instant)>>,
}

impl Signals {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            reconnect: watch::channel(0).0,
            reregister: AtomicBool::new(false),
            kick: tokio::sync::Notify::new(),
            session: std::sync::atomic::AtomicU64::new(0),
            listening: std::sync::Mutex::new(None),
        })
    }

    fn listening(&self) -> Option<(u64, Instant)> {
        *self
            .listening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_listening(&self, value: Option<(u64, Instant)>) {
        *self
            .listening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }
}

/// How long after a `ListenV2` request a `FAILED_PRECONDITION` heartbeat answer is taken as the engine not
/// having seen the new stream yet (the two requests race) rather than as a dead stream.
const LISTEN_SETTLE: Duration = Duration::from_secs(2);

/// Python's `GetVersion`: 3 attempts, 30 s deadline; `UNIMPLEMENTED` means a legacy engine.
pub(crate) async fn engine_version(shared: &Shared) -> EngineVersion {
    let client = shared.client.connection().dispatcher();
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::unary(3, false)
    };
    let result = policy
        .run("Dispatcher/GetVersion", || {
            let mut client = client.clone();
            let mut request = tonic::Request::new(GetVersionRequest {});
            request.set_timeout(Duration::from_secs(30));
            async move { client.get_version(request).await }
        })
        .await;
    match result {
        Ok(r) => EngineVersion::parse(&r.into_inner().version),
        Err(e) => {
            tracing::warn!(error = %e, "GetVersion failed: assuming a legacy engine");
            EngineVersion::default()
        }
    }
}

/// Registers every workflow (`PutWorkflow`).
pub(crate) async fn put_workflows(shared: &Shared) -> Result<()> {
    for workflow in &shared.workflows {
        shared.client.register(workflow.as_ref()).await?;
    }
    Ok(())
}

async fn register(shared: &Shared) -> Result<String> {
    let version = shared.engine_version();
    let legacy = !version.supports_slot_config();
    let mut labels: HashMap<String, WorkerLabels> = shared
        .client
        .config()
        .worker_preset_labels
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                WorkerLabels {
                    str_value: Some(v.clone()),
                    int_value: None,
                },
            )
        })
        .collect();
    for (k, v) in &shared.labels {
        let label = match v {
            LabelValue::Str(s) => WorkerLabels {
                str_value: Some(s.clone()),
                int_value: None,
            },
            LabelValue::Int(i) => WorkerLabels {
                str_value: None,
                int_value: Some(*i),
            },
        };
        labels.insert(k.clone(), label);
    }
    let request = WorkerRegisterRequest {
        worker_name: shared.name.clone(),
        actions: shared.actions.keys().cloned().collect(),
        services: vec!["default".to_owned()],
        // Never both: the engine rejects `slots` together with `slot_config`.
        slots: legacy.then(|| shared.slot_config.values().sum()),
        labels,
        webhook_id: None,
        runtime_info: Some(RuntimeInfo {
            sdk_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            language: None,
            // Python fills in its interpreter's version; ours is the compiler's (see build.rs).
            language_version: Some(env!("ACF_RUSTC_VERSION").to_owned()),
            os: Some(std::env::consts::OS.to_owned()),
            extra: Some("acf-sdk (Rust)".to_owned()),
        }),
        slot_config: if legacy {
            HashMap::new()
        } else {
            shared.slot_config.clone().into_iter().collect()
        },
    };
    let mut client = shared.client.connection().dispatcher();
    let mut req = tonic::Request::new(request);
    req.set_timeout(Duration::from_secs(30));
    let response = client
        .register(req)
        .await
        .map_err(Error::rpc("Dispatcher/Register"))?;
    Ok(response.into_inner().worker_id)
}

/// Python's listener backoff: `min(0.1·2^n + U(0, 0.1), 5)` seconds.
fn backoff(failures: u32) -> Duration {
    let base = 0.1 * f64::from(1u32 << failures.min(10));
    Duration::from_secs_f64((base + rand::rng().random_range(0.0..0.1)).min(5.0))
}

/// Runs the heartbeat until `stop`: one as each `ListenV2` is requested (kicked; the first right after
/// `Register`), then every `heartbeat_interval`.
pub(crate) async fn heartbeat(shared: Arc<Shared>, signals: Arc<Signals>, stop: CancellationToken) {
    let mut misses = 0u32;
    let mut retry_soon = false;
    loop {
        let wait = if std::mem::take(&mut retry_soon) {
            Duration::from_millis(250)
        } else {
            shared.options.heartbeat_interval
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = signals.kick.notified() => {}
        }
        let Some(worker_id) = shared.worker_id() else {
            continue;
        };
        let session = signals.session.load(Ordering::SeqCst);
        let listening = signals.listening();
        let mut client = shared.client.connection().dispatcher();
        let mut request = tonic::Request::new(HeartbeatRequest {
            worker_id,
            heartbeat_at: Some(crate::client::now_timestamp()),
        });
        request.set_timeout(Duration::from_secs(5));
        let answer = tokio::select! {
            () = stop.cancelled() => return,
            answer = client.heartbeat(request) => answer,
        };
        match answer {
            Ok(_) => {
                misses = 0;
                if listening.is_some_and(|(s, _)| s == session) {
                    shared.set_status(|s| {
                        if !s.stream_connected {
                            tracing::debug!(
                                session,
                                "worker ready (listening, heartbeat accepted)"
                            );
                        }
                        s.stream_connected = true;
                        s.last_error = None;
                    });
                }
            }
            Err(status) => {
                shared.metrics.inc_heartbeat_failures();
                misses += 1;
                let draining = shared.status().draining;
                match status.code() {
                    // Sent while the engine had not yet seen the new stream: ask again shortly.
                    Code::FailedPrecondition
                        if listening.is_some_and(|(s, at)| {
                            s == session && at.elapsed() < LISTEN_SETTLE
                        }) =>
                    {
                        retry_soon = true;
                    }
                    // The engine no longer sees our stream: reopen it now rather than wait for an error.
                    Code::FailedPrecondition if !draining => {
                        tracing::warn!(
                            "heartbeat rejected: action stream not active; reconnecting"
                        );
                        let _ = signals.reconnect.send(session);
                    }
                    Code::NotFound if !draining => {
                        tracing::warn!(
                            "heartbeat: worker unknown to the engine; registering again"
                        );
                        signals.reregister.store(true, Ordering::SeqCst);
                        let _ = signals.reconnect.send(session);
                    }
                    Code::Unimplemented => {
                        tracing::warn!("engine does not implement Heartbeat; stopping heartbeats");
                        return;
                    }
                    _ if misses >= 5 => {
                        tracing::warn!(misses, code = ?status.code(), "heartbeats failing")
                    }
                    _ => tracing::debug!(code = ?status.code(), "heartbeat failed"),
                }
            }
        }
    }
}

/// Why a listening session ends.
enum Ended {
    /// The worker stops.
    Stop,
    /// The heartbeat asked this session to reconnect: the engine rejected its heartbeat.
    Reconnect,
    /// The engine ended or failed the stream, for this reason.
    Lost(String),
}

/// Resolves when the worker stops or the heartbeat asks session `session` to reconnect; requests for
/// other (older) sessions are skipped. In both phases of a session, opening and streaming, these
/// end it.
async fn interrupted(
    stop: &CancellationToken,
    reconnect: &mut watch::Receiver<u64>,
    session: u64,
) -> Ended {
    let requested = async {
        while reconnect.changed().await.is_ok() {
            if *reconnect.borrow_and_update() == session {
                return;
            }
        }
        // The sender lives in `Signals`, which the listener holds: this is never reached.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = stop.cancelled() => Ended::Stop,
        () = requested => Ended::Reconnect,
    }
}

/// The reason a stream call failed. `NOT_FOUND` means the engine forgot the worker (it restarted):
/// the next attempt registers again.
fn lost(signals: &Signals, call: &str, status: &tonic::Status) -> String {
    if status.code() == Code::NotFound {
        signals.reregister.store(true, Ordering::SeqCst);
    }
    format!("{call}: {} {}", status.code(), status.message())
}

/// Keeps the worker registered and listening until `stop` (returns `Ok`) or until the consecutive failure
/// budget is exhausted (returns an error).
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    signals: Arc<Signals>,
    stop: CancellationToken,
) -> Result<()> {
    let mut failures = 0u32;
    let mut reconnect_rx = signals.reconnect.subscribe();
    let mut first = true;
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        if !first {
            if failures > shared.options.max_consecutive_failures {
                let reason = shared
                    .status()
                    .last_error
                    .unwrap_or_else(|| "connection lost".to_owned());
                return Err(Error::Worker(format!(
                    "giving up after {} consecutive connection failures: {reason}",
                    failures - 1
                )));
            }
            shared.metrics.inc_reconnects();
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(backoff(failures)) => {}
            }
        }
        first = false;

        let reregister = signals.reregister.swap(false, Ordering::SeqCst);
        if reregister || shared.worker_id().is_none() {
            shared.set_worker_id(None);
            let registered = async {
                // `run` registered the workflows once before the first `Register`; only an engine that
                // forgot the worker (restarted) needs them again.
                if reregister {
                    put_workflows(&shared).await?;
                }
                register(&shared).await
            }
            .await;
            match registered {
                Ok(id) => {
                    tracing::info!(worker_id = %id, worker = %shared.name, "worker registered");
                    shared.set_worker_id(Some(id));
                }
                Err(e) => {
                    let error = crate::error::Report(&e).to_string();
                    tracing::warn!(%error, "cannot register the worker");
                    shared.set_status(|s| s.last_error = Some(error));
                    if reregister {
                        // Keep the workflows owed to the engine for the next attempt.
                        signals.reregister.store(true, Ordering::SeqCst);
                    }
                    failures += 1;
                    continue;
                }
            }
        }
        let Some(worker_id) = shared.worker_id() else {
            continue;
        };

        let session = signals.session.fetch_add(1, Ordering::SeqCst) + 1;
        // A fresh connection per (re)connect, as Python does.
        let mut client = shared.client.connection().dedicated().dispatcher();
        let mut request = tonic::Request::new(WorkerListenRequest { worker_id });
        if let Some(t) = shared.client.config().listener_v2_timeout {
            request.set_timeout(t);
        }
        let opened = Instant::now();
        signals.set_listening(Some((session, opened)));
        // The first heartbeat goes out now, right after `Register` (as Python's does) and together with the
        // `ListenV2` request; once the engine accepts it the worker is ready.
        signals.kick.notify_one();
        let mut open = Box::pin(client.listen_v2(request));
        // A grpc-go engine answers the open only with the first action, so an idle worker stays in this
        // phase: it must still stop, reconnect and count as listening.
        let opening = tokio::select! {
            ended = interrupted(&stop, &mut reconnect_rx, session) => Err(ended),
            opened = &mut open => opened
                .map(tonic::Response::into_inner)
                .map_err(|status| Ended::Lost(lost(&signals, "ListenV2", &status))),
        };
        drop(open);
        let ended = match opening {
            Ok(mut stream) => {
                tracing::debug!(session, "action stream open");
                loop {
                    tokio::select! {
                        ended = interrupted(&stop, &mut reconnect_rx, session) => break ended,
                        item = stream.next() => match item {
                            Some(Ok(action)) => {
                                failures = 0;
                                dispatch::handle(&shared, action);
                            }
                            Some(Err(status)) => {
                                break Ended::Lost(lost(&signals, "stream error", &status));
                            }
                            None => break Ended::Lost("stream ended by the engine".to_owned()),
                        },
                    }
                }
            }
            Err(ended) => ended,
        };
        let ended = match ended {
            Ended::Stop => {
                signals.set_listening(None);
                shared.set_status(|s| s.stream_connected = false);
                return Ok(());
            }
            Ended::Reconnect => "heartbeat rejected (stream not active)".to_owned(),
            Ended::Lost(reason) => reason,
        };
        signals.set_listening(None);
        tracing::warn!(reason = %ended, "action stream lost; reconnecting");
        shared.set_status(|s| {
            s.stream_connected = false;
            s.last_error = Some(ended);
        });
        // A stream that lived a while is not part of a failure streak (as Python resets after 5 s).
        if opened.elapsed() > Duration::from_secs(5) {
            failures = 0;
        }
        failures += 1;
    }
}
