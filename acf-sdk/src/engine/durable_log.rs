//! Durable task event logs behind the `DurableTask` stream (reference §6.1): each durable call
//! (wait_for, memo, trigger_runs) of an invocation occupies the next log node; a replay (higher
//! invocation count) walks the same nodes and already-completed ones complete at once.
//! Also the legacy `RegisterDurableEvent` / `ListenForDurableEvent` signals (§6.2).

use crate::engine::conditions::WaitOwner;
use crate::engine::lifecycle::TriggerSpec;
use crate::engine::model::ConditionDef;
use crate::engine::state::{State, TaskStatus};
use crate::proto::v1::durable_task_response::Message as Out;
use crate::proto::v1::{
    DurableEvent, DurableEventLogEntryRef, DurableTaskErrorResponse, DurableTaskErrorType,
    DurableTaskEventLogEntryCompletedResponse, DurableTaskEventMemoAckResponse,
    DurableTaskEventTriggerRunsAckResponse, DurableTaskEventWaitForAckResponse,
    DurableTaskEvictionAckResponse, DurableTaskResponse, DurableTaskResponseRegisterWorker,
    DurableTaskRunAckEntry, DurableTaskServerEvictNotice,
};
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;
use uuid::Uuid;

/// Branch id of every node (the engine does not branch logs).
const BRANCH: i64 = 1;

/// What a log node records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A `wait_for`.
    Wait,
    /// A memo with its key.
    Memo(Vec<u8>),
    /// A spawned child run.
    Child(Uuid),
}

impl EntryKind {
    fn name(&self) -> &'static str {
        match self {
            Self::Wait => "wait_for",
            Self::Memo(_) => "memo",
            Self::Child(_) => "trigger_runs",
        }
    }
}

/// Result of a completed node.
#[derive(Debug, Clone)]
pub(crate) struct EntryResult {
    /// JSON payload.
    pub(crate) payload: Vec<u8>,
    /// Error text when the node failed (failed child run).
    pub(crate) error: Option<String>,
}

/// One log node.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Node id (1-based).
    pub(crate) node_id: i64,
    /// Kind.
    pub(crate) kind: EntryKind,
    /// Result once completed.
    pub(crate) result: Option<EntryResult>,
}

/// A task's durable log.
#[derive(Debug, Default)]
pub(crate) struct DurableLog {
    /// Nodes in call order.
    pub(crate) entries: Vec<Entry>,
    /// Next call index per invocation.
    pub(crate) cursors: HashMap<i32, usize>,
    /// Stream that last carried a call for this task (completions are pushed there).
    pub(crate) stream: Option<u64>,
}

/// An open `DurableTask` stream.
#[derive(Debug)]
pub(crate) struct DurableStream {
    /// Worker registered on it.
    pub(crate) worker: Option<Uuid>,
    /// Sink.
    pub(crate) tx: UnboundedSender<Result<DurableTaskResponse, tonic::Status>>,
}

/// An open legacy `ListenForDurableEvent` stream.
#[derive(Debug)]
pub(crate) struct LegacyListener {
    /// Sink.
    pub(crate) tx: UnboundedSender<Result<DurableEvent, tonic::Status>>,
    /// Awaited (task, signal key) pairs not yet delivered.
    pub(crate) awaited: HashSet<(Uuid, String)>,
}

fn entry_ref(task: Uuid, invocation: i32, node_id: i64) -> DurableEventLogEntryRef {
    DurableEventLogEntryRef {
        durable_task_external_id: task.to_string(),
        invocation_count: invocation,
        branch_id: BRANCH,
        node_id,
    }
}

fn completed(task: Uuid, invocation: i32, node_id: i64, result: &EntryResult) -> Out {
    Out::EntryCompleted(DurableTaskEventLogEntryCompletedResponse {
        r#ref: Some(entry_ref(task, invocation, node_id)),
        payload: result.payload.clone(),
        is_failure: result.error.is_some(),
        error_message: result.error.clone(),
        satisfied_order: None,
    })
}

/// Outcome of claiming the next log node.
enum Claim {
    New(i64),
    Existing(Entry),
}

/// The durable side's connections: open `DurableTask` streams, legacy listeners and the legacy results
/// they wait for.
#[derive(Debug, Default)]
pub(crate) struct DurableChannels {
    /// Open `DurableTask` streams by stream id.
    pub(crate) streams: HashMap<u64, DurableStream>,
    /// Legacy durable results by (task, signal key).
    pub(crate) legacy_results: HashMap<(Uuid, String), Vec<u8>>,
    /// Legacy durable listeners: stream id → sink and awaited keys.
    pub(crate) legacy_listeners: HashMap<u64, LegacyListener>,
}

impl DurableChannels {
    /// Ends every stream and listener with `UNAVAILABLE` (engine shutdown).
    pub(crate) fn close_all(&mut self) {
        for (_, stream) in self.streams.drain() {
            let _ = stream.tx.send(Err(tonic::Status::unavailable(
                "stream closed by the engine",
            )));
        }
        for (_, listener) in self.legacy_listeners.drain() {
            let _ = listener.tx.send(Err(tonic::Status::unavailable(
                "stream closed by the engine",
            )));
        }
    }
}

impl State {
    /// Sends a message on a durable stream (dropping the stream if it is gone).
    pub(crate) fn durable_send(&mut self, stream: u64, message: Out) {
        let gone = self.durable.streams.get(&stream).is_some_and(|s| {
            s.tx.send(Ok(DurableTaskResponse {
                message: Some(message),
            }))
            .is_err()
        });
        if gone {
            self.durable.streams.remove(&stream);
        }
    }

    /// `register_worker`.
    pub(crate) fn durable_register(&mut self, stream: u64, worker_id: String) {
        if let (Some(s), Ok(id)) = (
            self.durable.streams.get_mut(&stream),
            Uuid::parse_str(&worker_id),
        ) {
            s.worker = Some(id);
        }
        self.durable_send(
            stream,
            Out::RegisterWorker(DurableTaskResponseRegisterWorker { worker_id }),
        );
    }

    /// Checks task and invocation; on mismatch answers with an error or eviction notice.
    fn durable_guard(&mut self, stream: u64, task: &str, invocation: i32) -> Option<(Uuid, i32)> {
        let invocation = invocation.max(1);
        let parsed = Uuid::parse_str(task)
            .ok()
            .filter(|id| self.tasks.contains_key(id));
        let Some(id) = parsed else {
            self.durable_send(
                stream,
                Out::Error(DurableTaskErrorResponse {
                    r#ref: Some(DurableEventLogEntryRef {
                        durable_task_external_id: task.to_owned(),
                        invocation_count: invocation,
                        branch_id: BRANCH,
                        node_id: 0,
                    }),
                    error_type: DurableTaskErrorType::Unspecified as i32,
                    error_message: format!("durable task {task} not found"),
                }),
            );
            return None;
        };
        let current = self.tasks[&id].invocation;
        if invocation != current {
            self.durable_send(
                stream,
                Out::ServerEvict(DurableTaskServerEvictNotice {
                    durable_task_external_id: task.to_owned(),
                    invocation_count: invocation,
                    reason: format!("stale invocation {invocation}; current is {current}"),
                }),
            );
            return None;
        }
        if let Some(t) = self.tasks.get_mut(&id) {
            t.durable.stream = Some(stream);
        }
        Some((id, invocation))
    }

    fn claim(
        &mut self,
        stream: u64,
        task: Uuid,
        invocation: i32,
        kind: EntryKind,
    ) -> Option<Claim> {
        let t = self.tasks.get_mut(&task)?;
        let cursor = t.durable.cursors.entry(invocation).or_insert(0);
        let index = *cursor;
        *cursor += 1;
        match t.durable.entries.get(index) {
            Some(existing) => {
                let same = match (&existing.kind, &kind) {
                    (EntryKind::Child(_), EntryKind::Child(_))
                    | (EntryKind::Wait, EntryKind::Wait) => true,
                    (a, b) => a == b,
                };
                if same {
                    return Some(Claim::Existing(existing.clone()));
                }
                let message = format!(
                    "non-determinism at node {}: recorded {}, replay issued {}",
                    existing.node_id,
                    existing.kind.name(),
                    kind.name()
                );
                let node_id = existing.node_id;
                self.durable_send(
                    stream,
                    Out::Error(DurableTaskErrorResponse {
                        r#ref: Some(entry_ref(task, invocation, node_id)),
                        error_type: DurableTaskErrorType::Nondeterminism as i32,
                        error_message: message,
                    }),
                );
                None
            }
            None => {
                let node_id = i64::try_from(index).unwrap_or(i64::MAX - 1) + 1;
                t.durable.entries.push(Entry {
                    node_id,
                    kind,
                    result: None,
                });
                Some(Claim::New(node_id))
            }
        }
    }

    /// `wait_for`: acks with the node, completes it when the conditions fire.
    pub(crate) fn durable_wait_for(
        &mut self,
        stream: u64,
        task: &str,
        invocation: i32,
        conds: Vec<ConditionDef>,
        now: Instant,
    ) {
        let Some((task, invocation)) = self.durable_guard(stream, task, invocation) else {
            return;
        };
        match self.claim(stream, task, invocation, EntryKind::Wait) {
            None => {}
            Some(Claim::Existing(entry)) => {
                self.durable_send(
                    stream,
                    Out::WaitForAck(DurableTaskEventWaitForAckResponse {
                        r#ref: Some(entry_ref(task, invocation, entry.node_id)),
                    }),
                );
                if let Some(result) = &entry.result {
                    self.durable_send(stream, completed(task, invocation, entry.node_id, result));
                }
            }
            Some(Claim::New(node)) => {
                self.durable_send(
                    stream,
                    Out::WaitForAck(DurableTaskEventWaitForAckResponse {
                        r#ref: Some(entry_ref(task, invocation, node)),
                    }),
                );
                let n = conds.len();
                self.create_wait(WaitOwner::Durable { task, node }, conds, vec![None; n], now);
            }
        }
    }

    /// `memo`: acks whether the key already has a result.
    pub(crate) fn durable_memo(
        &mut self,
        stream: u64,
        task: &str,
        invocation: i32,
        key: Vec<u8>,
        payload: Option<Vec<u8>>,
    ) {
        let Some((task, invocation)) = self.durable_guard(stream, task, invocation) else {
            return;
        };
        match self.claim(stream, task, invocation, EntryKind::Memo(key)) {
            None => {}
            Some(Claim::Existing(entry)) => {
                let result = entry.result.clone();
                self.durable_send(
                    stream,
                    Out::MemoAck(DurableTaskEventMemoAckResponse {
                        r#ref: Some(entry_ref(task, invocation, entry.node_id)),
                        memo_already_existed: result.is_some(),
                        memo_result_payload: result.as_ref().map(|r| r.payload.clone()),
                    }),
                );
                if let Some(result) = &result {
                    self.durable_send(stream, completed(task, invocation, entry.node_id, result));
                }
            }
            Some(Claim::New(node)) => {
                self.durable_send(
                    stream,
                    Out::MemoAck(DurableTaskEventMemoAckResponse {
                        r#ref: Some(entry_ref(task, invocation, node)),
                        memo_already_existed: false,
                        memo_result_payload: None,
                    }),
                );
                if let Some(payload) = payload {
                    self.complete_durable_entry(task, node, payload, None);
                }
            }
        }
    }

    /// `complete_memo`: stores the computed memo value.
    pub(crate) fn durable_complete_memo(&mut self, task: &str, node: i64, payload: Vec<u8>) {
        if let Ok(task) = Uuid::parse_str(task) {
            self.complete_durable_entry(task, node, payload, None);
        }
    }

    /// `trigger_runs`: spawns (or finds, on replay) the children and acks their nodes.
    pub(crate) fn durable_trigger_runs(
        &mut self,
        stream: u64,
        task: &str,
        invocation: i32,
        specs: Vec<TriggerSpec>,
        now: Instant,
    ) {
        let Some((task, invocation)) = self.durable_guard(stream, task, invocation) else {
            return;
        };
        let mut entries = Vec::new();
        let mut already = Vec::new();
        for mut spec in specs {
            let claim = self.claim(stream, task, invocation, EntryKind::Child(Uuid::nil()));
            let (node, run_id) = match claim {
                None => return,
                Some(Claim::Existing(entry)) => {
                    let EntryKind::Child(run) = entry.kind else {
                        return;
                    };
                    if let Some(result) = &entry.result {
                        already.push((entry.node_id, result.clone()));
                    }
                    (entry.node_id, run)
                }
                Some(Claim::New(node)) => {
                    spec.origin.durable_parent = Some((task, node));
                    spec.origin.parent_task.get_or_insert(task);
                    match self.trigger(spec, now) {
                        Ok(run) => {
                            if let Some(entry) = self.tasks.get_mut(&task).and_then(|t| {
                                t.durable.entries.iter_mut().find(|e| e.node_id == node)
                            }) {
                                entry.kind = EntryKind::Child(run);
                            }
                            // A deduplicated child may already be finished.
                            if let Some(outcome) =
                                self.runs.get(&run).and_then(|r| r.outcome.clone())
                            {
                                let failed = outcome.results.iter().find_map(|r| r.error.clone());
                                let payload = if failed.is_some() {
                                    Vec::new()
                                } else {
                                    child_payload(&outcome)
                                };
                                self.complete_durable_entry(task, node, payload, failed);
                            }
                            (node, run)
                        }
                        Err(e) => {
                            self.complete_durable_entry(
                                task,
                                node,
                                Vec::new(),
                                Some(e.to_string()),
                            );
                            (node, Uuid::nil())
                        }
                    }
                }
            };
            entries.push(DurableTaskRunAckEntry {
                node_id: node,
                branch_id: BRANCH,
                workflow_run_external_id: run_id.to_string(),
            });
        }
        self.durable_send(
            stream,
            Out::TriggerRunsAck(DurableTaskEventTriggerRunsAckResponse {
                durable_task_external_id: task.to_string(),
                invocation_count: invocation,
                run_entries: entries,
            }),
        );
        for (node, result) in already {
            self.durable_send(stream, completed(task, invocation, node, &result));
        }
    }

    /// `worker_status`: re-delivers completed nodes the worker still awaits; evicts stale invocations.
    pub(crate) fn durable_worker_status(&mut self, stream: u64, waiting: Vec<(String, i32, i64)>) {
        for (task, invocation, node) in waiting {
            let Some(id) = Uuid::parse_str(&task).ok() else {
                continue;
            };
            let Some(t) = self.tasks.get_mut(&id) else {
                continue;
            };
            // A reconnected worker polls from a new stream: route later completions there too.
            t.durable.stream = Some(stream);
            let invocation = invocation.max(1);
            if invocation != t.invocation {
                self.durable_send(
                    stream,
                    Out::ServerEvict(DurableTaskServerEvictNotice {
                        durable_task_external_id: task,
                        invocation_count: invocation,
                        reason: "invocation is no longer current".into(),
                    }),
                );
                continue;
            }
            let result = t
                .durable
                .entries
                .iter()
                .find(|e| e.node_id == node)
                .and_then(|e| e.result.clone());
            if let Some(result) = result {
                self.durable_send(stream, completed(id, invocation, node, &result));
            }
        }
    }

    /// `evict_invocation`: frees the slot of a waiting durable task; it is re-queued (next
    /// invocation) when one of its nodes completes.
    pub(crate) fn durable_evict(&mut self, stream: u64, task: &str, invocation: i32) {
        if let Ok(id) = Uuid::parse_str(task)
            && self.tasks.get(&id).is_some_and(|t| {
                t.invocation == invocation.max(1) && matches!(t.status(), TaskStatus::Running(_))
            })
        {
            self.release_slots(id);
            if let Some(t) = self.tasks.get_mut(&id) {
                t.set_status(TaskStatus::Evicted);
            }
        }
        self.durable_send(
            stream,
            Out::EvictionAck(DurableTaskEvictionAckResponse {
                invocation_count: invocation,
                durable_task_external_id: task.to_owned(),
            }),
        );
    }

    /// Completes a log node and pushes `entry_completed` to the task's stream.
    pub(crate) fn complete_durable_entry(
        &mut self,
        task: Uuid,
        node: i64,
        payload: Vec<u8>,
        error: Option<String>,
    ) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        let Some(entry) = t.durable.entries.iter_mut().find(|e| e.node_id == node) else {
            return;
        };
        if entry.result.is_some() {
            return;
        }
        let result = EntryResult { payload, error };
        entry.result = Some(result.clone());
        let (invocation, stream, evicted) = (
            t.invocation,
            t.durable.stream,
            *t.status() == TaskStatus::Evicted,
        );
        if evicted {
            if let Some(t) = self.tasks.get_mut(&task) {
                t.invocation += 1;
            }
            self.enqueue(task, Instant::now());
            return;
        }
        if let Some(stream) = stream {
            self.durable_send(stream, completed(task, invocation, node, &result));
        }
    }

    /// Legacy: registers a signal's conditions.
    pub(crate) fn legacy_register(
        &mut self,
        task: Uuid,
        signal_key: String,
        conds: Vec<ConditionDef>,
        now: Instant,
    ) {
        if self
            .durable
            .legacy_results
            .contains_key(&(task, signal_key.clone()))
        {
            return;
        }
        let n = conds.len();
        self.create_wait(
            WaitOwner::Legacy { task, signal_key },
            conds,
            vec![None; n],
            now,
        );
    }

    /// Legacy: a listener awaits a signal.
    pub(crate) fn legacy_listen(&mut self, listener: u64, task: Uuid, signal_key: String) {
        let data = self
            .durable
            .legacy_results
            .get(&(task, signal_key.clone()))
            .cloned();
        let Some(l) = self.durable.legacy_listeners.get_mut(&listener) else {
            return;
        };
        match data {
            Some(data) => {
                let _ = l.tx.send(Ok(DurableEvent {
                    task_id: task.to_string(),
                    signal_key,
                    data,
                }));
            }
            None => {
                l.awaited.insert((task, signal_key));
            }
        }
    }

    /// Legacy: a signal's conditions fired.
    pub(crate) fn legacy_completed(&mut self, task: Uuid, signal_key: &str, data: Vec<u8>) {
        let key = (task, signal_key.to_owned());
        for l in self.durable.legacy_listeners.values_mut() {
            if l.awaited.remove(&key) {
                let _ = l.tx.send(Ok(DurableEvent {
                    task_id: task.to_string(),
                    signal_key: signal_key.to_owned(),
                    data: data.clone(),
                }));
            }
        }
        self.durable.legacy_results.insert(key, data);
    }
}

/// `{task: output}` of a finished child run.
pub(crate) fn child_payload(outcome: &crate::proto::WorkflowRunEvent) -> Vec<u8> {
    let mut map = serde_json::Map::new();
    for r in &outcome.results {
        let value = r
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        map.insert(r.task_name.clone(), value);
    }
    serde_json::to_vec(&serde_json::Value::Object(map)).unwrap_or_default()
}
