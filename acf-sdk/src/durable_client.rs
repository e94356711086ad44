//! Durable waits over the `v1.V1Dispatcher/DurableTask` stream (engines ≥ v0.80.0), or the legacy
//! `RegisterDurableEvent` + `ListenForDurableEvent` pair on older engines.
//!
//! One stream per worker. A wait is `wait_for` → `wait_for_ack` (gives the log entry's branch/node) →
//! `entry_completed` for that entry. Completions may arrive before the ack is processed (buffered), and after a
//! reconnect only the 1 s `worker_status` poll delivers them, so the poll runs whenever a wait is pending.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::context::{RunInfo, WaitResult, decode_wait_payload};
use crate::error::{Error, Result};
use crate::model::{ConditionGroup, push_condition};
use crate::proto::v1::{
    self, DurableEventListenerConditions, DurableTaskAwaitedCompletedEntry, DurableTaskRequest,
    DurableTaskRequestRegisterWorker, DurableTaskWaitForRequest, DurableTaskWorkerStatusRequest,
    ListenForDurableEventRequest, RegisterDurableEventRequest, durable_task_request,
    durable_task_response,
};
use crate::worker::Shared;

type EntryKey = (String, i32, i64, i64);
type InvocationKey = (String, i32);
type AckWaiter = oneshot::Sender<Result<(i64, i64)>>;

#[derive(Default)]
struct State {
    acks: HashMap<InvocationKey, VecDeque<AckWaiter>>,
    /// `wait_for` requests not yet acknowledged: re-sent after a reconnect.
    unacked: Vec<(InvocationKey, DurableTaskRequest)>,
    completions: HashMap<EntryKey, oneshot::Sender<Result<Value>>>,
    early: HashMap<EntryKey, Result<Value>>,
    outbound: Option<mpsc::UnboundedSender<DurableTaskRequest>>,
    /// Legacy mode: waiters by (task run id, signal key), and the subscription stream.
    legacy: HashMap<(String, String), oneshot::Sender<Result<Value>>>,
    legacy_outbound: Option<mpsc::UnboundedSender<ListenForDurableEventRequest>>,
}

/// The worker's durable-wait client. It holds what it needs from the worker (the Hatchet client and a
/// watch on the worker's registration id) rather than a pointer back into the worker's state.
pub(crate) struct DurableClient {
    client: Client,
    /// The worker's current registration id (it changes when the worker re-registers).
    worker_id: tokio::sync::watch::Receiver<Option<String>>,
    legacy: bool,
    /// Fired when the worker stops: ends the stream tasks, even while an open is still unanswered.
    closed: CancellationToken,
    state: Mutex<State>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A replay-stable or-group UUID: the same (task run, wait, group) gets the same id on every invocation.
fn group_id(task_run: &str, wait_seq: u32, group: usize) -> String {
    let digest = Sha256::digest(format!("acf-durable\0{task_run}\0{wait_seq}\0{group}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn conditions(
    info: &RunInfo,
    groups: &[ConditionGroup],
    wait_seq: u32,
) -> DurableEventListenerConditions {
    let mut all = v1::TaskConditions::default();
    for (i, group) in groups.iter().enumerate() {
        let id = group_id(&info.task_run_external_id, wait_seq, i);
        for c in &group.conditions {
            // Durable waits ignore the action; CREATE (0) is what Python leaves there.
            push_condition(
                &mut all,
                c,
                v1::Action::Create as i32,
                &id,
                &info.namespace,
                true,
            );
        }
    }
    DurableEventListenerConditions {
        sleep_conditions: all.sleep_conditions,
        user_event_conditions: all.user_event_conditions,
    }
}

impl DurableClient {
    /// The worker's client, created (and its stream task started) on first use.
    pub(crate) async fn for_worker(shared: &Arc<Shared>) -> Result<Arc<Self>> {
        let client = shared
            .durable
            .get_or_init(|| async {
                let legacy = !shared.engine_version().supports_durable_stream();
                Arc::new(Self {
                    client: shared.client.clone(),
                    worker_id: shared.worker_id.subscribe(),
                    legacy,
                    closed: CancellationToken::new(),
                    state: Mutex::new(State::default()),
                })
            })
            .await;
        Ok(Arc::clone(client))
    }

    /// Ends the stream tasks (the worker stopped).
    pub(crate) fn close(&self) {
        self.closed.cancel();
    }

    fn worker_id(&self) -> String {
        self.worker_id.borrow().clone().unwrap_or_default()
    }

    /// Registers the wait and resolves with the condition that fired.
    pub(crate) async fn wait_for(
        self: &Arc<Self>,
        info: &RunInfo,
        groups: &[ConditionGroup],
        seq: u32,
    ) -> Result<WaitResult> {
        let conditions = conditions(info, groups, seq);
        let raw = if self.legacy {
            self.wait_legacy(info, conditions, seq).await?
        } else {
            self.wait_stream(info, conditions).await?
        };
        Ok(decode_wait_payload(raw))
    }

    fn send(self: &Arc<Self>, state: &mut State, request: &DurableTaskRequest) {
        let sent = state
            .outbound
            .as_ref()
            .is_some_and(|tx| tx.send(request.clone()).is_ok());
        if !sent && state.outbound.is_none() {
            // First use (or the stream task ended): start it; it sends the queued requests.
            state.outbound = Some(mpsc::unbounded_channel().0);
            let this = Arc::clone(self);
            tokio::spawn(async move { this.run_stream().await });
        }
    }

    async fn wait_stream(
        self: &Arc<Self>,
        info: &RunInfo,
        conditions: DurableEventListenerConditions,
    ) -> Result<Value> {
        let inv: InvocationKey = (
            info.task_run_external_id.clone(),
            info.durable_invocation_count,
        );
        let request = DurableTaskRequest {
            message: Some(durable_task_request::Message::WaitFor(
                DurableTaskWaitForRequest {
                    invocation_count: inv.1,
                    durable_task_external_id: inv.0.clone(),
                    wait_for_conditions: Some(conditions),
                    label: None,
                },
            )),
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        {
            let mut state = lock(&self.state);
            state.acks.entry(inv.clone()).or_default().push_back(ack_tx);
            state.unacked.push((inv.clone(), request.clone()));
            self.send(&mut state, &request);
        }
        let (branch, node) = tokio::time::timeout(Duration::from_secs(60), ack_rx)
            .await
            .map_err(|_| {
                Error::Closed("the engine did not acknowledge the durable wait within 60 s".into())
            })?
            .map_err(|_| Error::Closed("the durable stream stopped".into()))??;
        let entry: EntryKey = (inv.0.clone(), inv.1, branch, node);
        let (done_tx, done_rx) = oneshot::channel();
        {
            let mut state = lock(&self.state);
            if let Some(early) = state.early.remove(&entry) {
                return early;
            }
            state.completions.insert(entry.clone(), done_tx);
            let status = self.status_request(&state);
            self.send(&mut state, &status);
        }
        done_rx
            .await
            .map_err(|_| Error::Closed("the durable stream stopped".into()))?
    }

    fn status_request(&self, state: &State) -> DurableTaskRequest {
        let worker_id = self.worker_id();
        DurableTaskRequest {
            message: Some(durable_task_request::Message::WorkerStatus(
                DurableTaskWorkerStatusRequest {
                    worker_id,
                    waiting_entries: state
                        .completions
                        .keys()
                        .map(
                            |(task, inv, branch, node)| DurableTaskAwaitedCompletedEntry {
                                durable_task_external_id: task.clone(),
                                branch_id: *branch,
                                node_id: *node,
                                invocation_count: *inv,
                            },
                        )
                        .collect(),
                    received_satisfied_orders: Vec::new(),
                },
            )),
        }
    }

    /// Keeps one `DurableTask` stream open while waits are pending; reconnects after errors.
    async fn run_stream(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            if self.closed.is_cancelled() {
                return;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let worker_id = self.worker_id();
            let register = DurableTaskRequest {
                message: Some(durable_task_request::Message::RegisterWorker(
                    DurableTaskRequestRegisterWorker { worker_id },
                )),
            };
            {
                let mut state = lock(&self.state);
                let _ = tx.send(register);
                for (_, request) in &state.unacked {
                    let _ = tx.send(request.clone());
                }
                let _ = tx.send(self.status_request(&state));
                state.outbound = Some(tx.clone());
            }
            let poller = {
                let this = Arc::clone(&self);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    loop {
                        tick.tick().await;
                        let state = lock(&this.state);
                        if state.completions.is_empty() {
                            continue;
                        }
                        if tx.send(this.status_request(&state)).is_err() {
                            return;
                        }
                    }
                })
            };
            let mut client = self.client.connection().dedicated().v1_dispatcher();
            // Raced against the worker stopping: a grpc-go engine sends the response headers only with its
            // first message.
            let opened = tokio::select! {
                () = self.closed.cancelled() => {
                    poller.abort();
                    return;
                }
                opened = client.durable_task(UnboundedReceiverStream::new(rx)) => opened,
            };
            match opened {
                Ok(response) => {
                    let mut stream = std::pin::pin!(futures::StreamExt::take_until(
                        response.into_inner(),
                        self.closed.clone().cancelled_owned()
                    ));
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(msg) => {
                                failures = 0;
                                self.on_message(msg);
                            }
                            Err(status) => {
                                tracing::warn!(code = ?status.code(), "durable stream error");
                                break;
                            }
                        }
                    }
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), "cannot open the durable stream")
                }
            }
            poller.abort();
            if self.closed.is_cancelled() {
                return;
            }
            {
                let mut state = lock(&self.state);
                // Pending acks fail (Python does the same); their waits are re-issued on the next attempt.
                for (_, waiters) in state.acks.drain() {
                    for w in waiters {
                        let _ = w.send(Err(Error::Closed(
                            "the durable stream was interrupted".into(),
                        )));
                    }
                }
                state.unacked.clear();
                state.outbound = None;
                if state.completions.is_empty() {
                    return;
                }
                state.outbound = Some(mpsc::unbounded_channel().0);
            }
            failures += 1;
            tokio::time::sleep(Duration::from_millis(500).saturating_mul(failures.min(6))).await;
        }
    }

    fn on_message(&self, msg: v1::DurableTaskResponse) {
        use durable_task_response::Message;
        let mut state = lock(&self.state);
        match msg.message {
            Some(Message::WaitForAck(ack)) => {
                let Some(r) = ack.r#ref else { return };
                let inv = (r.durable_task_external_id.clone(), r.invocation_count);
                if let Some(pos) = state.unacked.iter().position(|(k, _)| *k == inv) {
                    state.unacked.remove(pos);
                }
                if let Some(w) = state.acks.get_mut(&inv).and_then(VecDeque::pop_front) {
                    let _ = w.send(Ok((r.branch_id, r.node_id)));
                }
            }
            Some(Message::EntryCompleted(done)) => {
                let Some(r) = done.r#ref else { return };
                let key = (
                    r.durable_task_external_id,
                    r.invocation_count,
                    r.branch_id,
                    r.node_id,
                );
                let result = if done.is_failure {
                    Err(Error::Closed(
                        done.error_message
                            .unwrap_or_else(|| "durable wait failed".into()),
                    ))
                } else {
                    Ok(serde_json::from_slice(&done.payload).unwrap_or(Value::Null))
                };
                match state.completions.remove(&key) {
                    Some(w) => {
                        let _ = w.send(result);
                    }
                    None => {
                        state.early.insert(key, result);
                    }
                }
            }
            Some(Message::Error(err)) => {
                let nondeterminism =
                    err.error_type == v1::DurableTaskErrorType::Nondeterminism as i32;
                let make = || {
                    if nondeterminism {
                        Error::Nondeterminism(err.error_message.clone())
                    } else {
                        Error::Closed(format!("durable task error: {}", err.error_message))
                    }
                };
                let Some(r) = err.r#ref.clone() else { return };
                let inv = (r.durable_task_external_id.clone(), r.invocation_count);
                if let Some(w) = state.acks.get_mut(&inv).and_then(VecDeque::pop_front) {
                    state.unacked.retain(|(k, _)| *k != inv);
                    let _ = w.send(Err(make()));
                } else if let Some(w) =
                    state
                        .completions
                        .remove(&(inv.0, inv.1, r.branch_id, r.node_id))
                {
                    let _ = w.send(Err(make()));
                }
            }
            Some(Message::ServerEvict(notice)) => {
                tracing::info!(task_run_id = %notice.durable_task_external_id, reason = %notice.reason, "durable invocation evicted");
                let stale: Vec<EntryKey> = state
                    .completions
                    .keys()
                    .filter(|(t, i, _, _)| {
                        *t == notice.durable_task_external_id && *i == notice.invocation_count
                    })
                    .cloned()
                    .collect();
                for key in stale {
                    if let Some(w) = state.completions.remove(&key) {
                        let _ = w.send(Err(Error::Cancelled));
                    }
                }
            }
            _ => {}
        }
    }

    /// Legacy engines: unary registration under a signal key, result through `ListenForDurableEvent`.
    async fn wait_legacy(
        self: &Arc<Self>,
        info: &RunInfo,
        conditions: DurableEventListenerConditions,
        seq: u32,
    ) -> Result<Value> {
        let signal_key = format!("acf-wait-{seq}");
        let mut client = self.client.connection().v1_dispatcher();
        let mut request = tonic::Request::new(RegisterDurableEventRequest {
            task_id: info.task_run_external_id.clone(),
            signal_key: signal_key.clone(),
            conditions: Some(conditions),
        });
        request.set_timeout(Duration::from_secs(5));
        client
            .register_durable_event(request)
            .await
            .map_err(Error::rpc("v1.V1Dispatcher/RegisterDurableEvent"))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut state = lock(&self.state);
            state
                .legacy
                .insert((info.task_run_external_id.clone(), signal_key.clone()), tx);
            let subscribe = ListenForDurableEventRequest {
                task_id: info.task_run_external_id.clone(),
                signal_key,
            };
            let sent = state
                .legacy_outbound
                .as_ref()
                .is_some_and(|s| s.send(subscribe).is_ok());
            if !sent {
                state.legacy_outbound = Some(mpsc::unbounded_channel().0);
                let this = Arc::clone(self);
                tokio::spawn(async move { this.run_legacy_stream().await });
            }
        }
        rx.await
            .map_err(|_| Error::Closed("the durable listener stopped".into()))?
    }

    async fn run_legacy_stream(self: Arc<Self>) {
        loop {
            if self.closed.is_cancelled() {
                return;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            {
                let mut state = lock(&self.state);
                for (task_id, signal_key) in state.legacy.keys() {
                    let _ = tx.send(ListenForDurableEventRequest {
                        task_id: task_id.clone(),
                        signal_key: signal_key.clone(),
                    });
                }
                state.legacy_outbound = Some(tx);
            }
            let mut client = self.client.connection().dedicated().v1_dispatcher();
            let opened = tokio::select! {
                () = self.closed.cancelled() => return,
                opened = client.listen_for_durable_event(UnboundedReceiverStream::new(rx)) => opened,
            };
            if let Ok(response) = opened {
                let mut stream = std::pin::pin!(futures::StreamExt::take_until(
                    response.into_inner(),
                    self.closed.clone().cancelled_owned(),
                ));
                while let Some(Ok(event)) = stream.next().await {
                    let waiter = lock(&self.state)
                        .legacy
                        .remove(&(event.task_id, event.signal_key));
                    if let Some(w) = waiter {
                        let _ = w.send(Ok(
                            serde_json::from_slice(&event.data).unwrap_or(Value::Null)
                        ));
                    }
                }
            }
            if self.closed.is_cancelled() {
                return;
            }
            {
                let mut state = lock(&self.state);
                state.legacy_outbound = None;
                if state.legacy.is_empty() {
                    return;
                }
                state.legacy_outbound = Some(mpsc::unbounded_channel().0);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
