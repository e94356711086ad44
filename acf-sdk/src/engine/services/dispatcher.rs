//! `Dispatcher`: worker registration, the `ListenV2` action stream, heartbeats, task lifecycle
//! events, timeouts/slots/labels, and the run result and run event subscriptions.

use super::{BoxStream, Guarded, check_size, lazy_headers, parse_id};
use crate::duration;
use crate::engine::Shared;
use crate::engine::model::DEFAULT_SLOT_TYPE;
use crate::engine::state::{EventFilter, EventSub, State, TaskStatus, Worker, WorkerMsg};
use crate::engine::validation::valid_name;
use crate::engine::{ENGINE_VERSION, lifecycle::timestamp};
use crate::proto::dispatcher_server::Dispatcher;
use crate::proto::{
    ActionEventResponse, AssignedAction, BatchActionEvent, GetVersionRequest, GetVersionResponse,
    GroupKeyActionEvent, HeartbeatRequest, HeartbeatResponse, OverridesData, OverridesDataResponse,
    RefreshTimeoutRequest, RefreshTimeoutResponse, ReleaseSlotRequest, ReleaseSlotResponse,
    ResourceEventType, RestoreEvictedTaskRequest, RestoreEvictedTaskResponse, StepActionEvent,
    StepActionEventType, SubscribeToWorkflowEventsRequest, SubscribeToWorkflowRunsRequest,
    UpsertWorkerLabelsRequest, UpsertWorkerLabelsResponse, WorkerLabels, WorkerListenRequest,
    WorkerRegisterRequest, WorkerRegisterResponse, WorkerUnsubscribeRequest,
    WorkerUnsubscribeResponse, WorkflowEvent, WorkflowRunEvent,
};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc::unbounded_channel;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

/// Default slot capacity when a worker sends neither `slot_config` nor `slots`.
const DEFAULT_SLOTS: i32 = 100;

pub(crate) struct DispatcherSvc(pub(crate) Arc<Shared>);

fn label_value(l: &WorkerLabels) -> crate::engine::model::LabelValue {
    use crate::engine::model::LabelValue;
    match (l.int_value, &l.str_value) {
        (Some(i), _) => LabelValue::Int(i),
        (None, s) => LabelValue::Str(s.clone().unwrap_or_default()),
    }
}

/// One lifecycle report of a task attempt (`StepActionEvent` or a batch item).
struct Report<'a> {
    kind: i32,
    payload: &'a str,
    retry_count: Option<i32>,
    should_not_retry: bool,
    retry_after_ms: Option<i64>,
}

/// Applies one lifecycle event of a task attempt.
fn apply_step_event(
    state: &mut State,
    task_id: Uuid,
    report: &Report<'_>,
    now: Instant,
) -> Result<(), Status> {
    let Report {
        kind,
        payload,
        retry_count,
        should_not_retry,
        retry_after_ms,
    } = *report;
    let Some(task) = state.tasks.get(&task_id) else {
        return Err(Status::invalid_argument(format!(
            "task run {task_id} not found"
        )));
    };
    let current = matches!(task.status(), TaskStatus::Running(_))
        && retry_count.is_none_or(|r| r == task.retry_count);
    match StepActionEventType::try_from(kind).unwrap_or(StepActionEventType::StepEventTypeUnknown) {
        StepActionEventType::StepEventTypeStarted if current => {
            // Some SDKs report STARTED more than once per attempt; the history keeps one.
            let repeated = state.tasks.get(&task_id).is_some_and(|t| {
                t.history
                    .last()
                    .is_some_and(|e| e.kind == "STARTED" && e.retry_count == t.retry_count)
            });
            if !repeated {
                state.note(task_id, "STARTED", "task started on the worker");
            }
            state.emit_step(task_id, ResourceEventType::Started, String::new());
        }
        StepActionEventType::StepEventTypeCompleted if current => {
            let output = if payload.trim().is_empty() {
                Ok(json!({}))
            } else if payload.contains("\\u0000") || payload.contains('\0') {
                Err("output contains NUL characters (\\u0000), which are not allowed".to_owned())
            } else {
                serde_json::from_str::<Value>(payload)
                    .map_err(|e| format!("output is not valid JSON: {e}"))
            };
            match output {
                Ok(output) => state.complete_task(task_id, output, now),
                Err(message) => state.fail_attempt(task_id, message, false, now),
            }
        }
        StepActionEventType::StepEventTypeFailed if current => {
            let text = payload.replace('\0', "<NUL character removed>");
            let retry_after =
                retry_after_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
            state.fail_attempt_after(task_id, text, should_not_retry, retry_after, now);
        }
        StepActionEventType::StepEventTypeCancelled => {
            state.cancel_task(task_id, "Task was cancelled by the worker", now)
        }
        // Stale attempts, ACKNOWLEDGED and UNKNOWN are accepted and ignored, as Hatchet does.
        _ => {}
    }
    Ok(())
}

impl DispatcherSvc {
    fn open_listen(
        &self,
        worker_id: &str,
        server_heartbeats: bool,
    ) -> Result<BoxStream<AssignedAction>, Status> {
        let id = parse_id("worker_id", worker_id)?;
        let (tx, rx) = unbounded_channel();
        let stream_id = self.0.next_stream_id();
        self.0.mutate(|state, now| {
            let worker = state
                .workers
                .get_mut(&id)
                .ok_or_else(|| Status::not_found("worker not found"))?;
            worker.streams.push((stream_id, tx.clone()));
            worker.had_stream = true;
            if server_heartbeats {
                worker.last_heartbeat = now;
            }
            Ok::<_, Status>(())
        })?;
        if server_heartbeats {
            // Listen (v0): the server heartbeats on the worker's behalf while the stream is open.
            let shared = self.0.clone();
            let probe = tx.clone();
            tokio::spawn(async move {
                while !probe.is_closed() {
                    tokio::time::sleep(Duration::from_secs(4)).await;
                    if let Some(w) = shared.lock().workers.get_mut(&id) {
                        w.last_heartbeat = Instant::now();
                        w.reassigned = false;
                    }
                }
            });
        }
        drop(tx);
        let shared = self.0.clone();
        let stream = UnboundedReceiverStream::new(rx).map(|m| match m {
            WorkerMsg::Action(a) => Ok(*a),
            WorkerMsg::Close => Err(Status::unavailable("stream closed by the engine")),
        });
        let shutdown = self.0.shutdown.clone().cancelled_owned();
        let guarded = Guarded::new(stream.take_until(shutdown), move || {
            if let Some(w) = shared.lock().workers.get_mut(&id) {
                w.streams.retain(|(sid, _)| *sid != stream_id);
            }
        });
        Ok(Box::pin(guarded))
    }
}

#[tonic::async_trait]
impl Dispatcher for DispatcherSvc {
    async fn register(
        &self,
        request: Request<WorkerRegisterRequest>,
    ) -> Result<Response<WorkerRegisterResponse>, Status> {
        let req = request.into_inner();
        self.0.record("Dispatcher/Register", &req);
        check_size(&req)?;
        if !valid_name(&req.worker_name) {
            return Err(Status::invalid_argument(format!(
                "Invalid request: worker_name {:?} must match ^[a-zA-Z0-9.\\-_]+$",
                req.worker_name
            )));
        }
        if req.slots.is_some() && !req.slot_config.is_empty() {
            return Err(Status::invalid_argument(
                "Invalid request: slots and slot_config are mutually exclusive",
            ));
        }
        if let Some((k, _)) = req.slot_config.iter().find(|(_, v)| **v < 0) {
            return Err(Status::invalid_argument(format!(
                "Invalid request: slot_config[{k}] must be >= 0"
            )));
        }
        let (slots, legacy_pool) = match (req.slots, req.slot_config.is_empty()) {
            (Some(n), _) => (
                HashMap::from([(DEFAULT_SLOT_TYPE.to_owned(), n.max(0))]),
                true,
            ),
            (None, true) => (
                HashMap::from([(DEFAULT_SLOT_TYPE.to_owned(), DEFAULT_SLOTS)]),
                false,
            ),
            (None, false) => (req.slot_config.clone(), false),
        };
        let id = Uuid::new_v4();
        let tenant = self.0.mutate(|state, now| {
            state.workers.insert(
                id,
                Worker {
                    name: req.worker_name.clone(),
                    actions: req.actions.iter().map(|a| a.to_lowercase()).collect(),
                    slots,
                    legacy_pool,
                    used: HashMap::new(),
                    last_heartbeat: now,
                    streams: Vec::new(),
                    had_stream: false,
                    paused: false,
                    labels: req
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), label_value(v)))
                        .collect(),
                    last_assigned: 0,
                    reassigned: false,
                    registered_at: SystemTime::now(),
                },
            );
            state.tenant_id
        });
        tracing::info!(worker = %id, name = %req.worker_name, "worker registered");
        Ok(Response::new(WorkerRegisterResponse {
            tenant_id: tenant.to_string(),
            worker_id: id.to_string(),
            worker_name: req.worker_name,
        }))
    }

    type ListenStream = BoxStream<AssignedAction>;

    async fn listen(
        &self,
        request: Request<WorkerListenRequest>,
    ) -> Result<Response<Self::ListenStream>, Status> {
        self.0.record("Dispatcher/Listen", request.get_ref());
        lazy_headers(self.open_listen(&request.get_ref().worker_id, true)?).await
    }

    type ListenV2Stream = BoxStream<AssignedAction>;

    async fn listen_v2(
        &self,
        request: Request<WorkerListenRequest>,
    ) -> Result<Response<Self::ListenV2Stream>, Status> {
        self.0.record("Dispatcher/ListenV2", request.get_ref());
        lazy_headers(self.open_listen(&request.get_ref().worker_id, false)?).await
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.0.record("Dispatcher/Heartbeat", request.get_ref());
        let id = parse_id("worker_id", &request.get_ref().worker_id)?;
        self.0.mutate(|state, now| {
            let worker = state
                .workers
                .get_mut(&id)
                .ok_or_else(|| Status::not_found("worker not found"))?;
            worker.streams.retain(|(_, tx)| !tx.is_closed());
            if worker.streams.is_empty() && worker.had_stream {
                return Err(Status::failed_precondition(
                    "Heartbeat rejected: worker stream is not active",
                ));
            }
            worker.last_heartbeat = now;
            worker.reassigned = false;
            Ok(())
        })?;
        Ok(Response::new(HeartbeatResponse {}))
    }

    type SubscribeToWorkflowEventsStream = BoxStream<WorkflowEvent>;

    async fn subscribe_to_workflow_events(
        &self,
        request: Request<SubscribeToWorkflowEventsRequest>,
    ) -> Result<Response<Self::SubscribeToWorkflowEventsStream>, Status> {
        let req = request.into_inner();
        let filter = match (
            &req.workflow_run_id,
            &req.additional_meta_key,
            &req.additional_meta_value,
        ) {
            (Some(run), _, _) if !run.is_empty() => {
                EventFilter::Run(parse_id("workflow_run_id", run)?)
            }
            (_, Some(k), Some(v)) => EventFilter::Meta(k.clone(), v.clone()),
            _ => {
                return Err(Status::invalid_argument(
                    "Invalid request: workflow_run_id or additional_meta_key and additional_meta_value is required",
                ));
            }
        };
        let (tx, rx) = unbounded_channel();
        {
            let mut state = self.0.lock();
            let finished = match &filter {
                EventFilter::Run(id) => state
                    .runs
                    .get(id)
                    .filter(|r| r.state.is_final())
                    .map(|r| (r.id, r.state)),
                EventFilter::Meta(..) => None,
            };
            match finished.and_then(|(id, s)| state.final_event(id, s)) {
                Some(event) => {
                    let _ = tx.send(event);
                }
                None => state.event_subs.push(EventSub { filter, tx }),
            }
        }
        // Recorded once subscribed, so a test seeing the request knows no later event is missed.
        self.0.record("Dispatcher/SubscribeToWorkflowEvents", &req);
        let stream = futures::stream::unfold((rx, false), |(mut rx, done)| async move {
            if done {
                return None;
            }
            let event = rx.recv().await?;
            let hangup = event.hangup;
            Some((Ok(event), (rx, hangup)))
        });
        lazy_headers(Box::pin(
            stream.take_until(self.0.shutdown.clone().cancelled_owned()),
        ))
        .await
    }

    type SubscribeToWorkflowRunsStream = BoxStream<WorkflowRunEvent>;

    async fn subscribe_to_workflow_runs(
        &self,
        request: Request<Streaming<SubscribeToWorkflowRunsRequest>>,
    ) -> Result<Response<Self::SubscribeToWorkflowRunsStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = unbounded_channel::<WorkflowRunEvent>();
        let shared = self.0.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = inbound.next().await {
                // Bad ids are skipped silently, as Hatchet does on this stream.
                let Ok(id) = Uuid::parse_str(&req.workflow_run_id) else {
                    continue;
                };
                let mut state = shared.lock();
                match state.runs.get(&id).and_then(|r| r.outcome.clone()) {
                    Some(outcome) => {
                        let _ = tx.send(crate::engine::completion::fit_for_stream(&outcome));
                    }
                    None => state.run_waiters.entry(id).or_default().push(tx.clone()),
                }
            }
        });
        let stream = UnboundedReceiverStream::new(rx).map(Ok);
        lazy_headers(Box::pin(
            stream.take_until(self.0.shutdown.clone().cancelled_owned()),
        ))
        .await
    }

    async fn send_step_action_event(
        &self,
        request: Request<StepActionEvent>,
    ) -> Result<Response<ActionEventResponse>, Status> {
        let ev = request.into_inner();
        self.0.record("Dispatcher/SendStepActionEvent", &ev);
        check_size(&ev)?;
        let task = parse_id("task_run_external_id", &ev.task_run_external_id)?;
        let tenant = self.0.mutate(|state, now| {
            let report = Report {
                kind: ev.event_type,
                payload: &ev.event_payload,
                retry_count: ev.retry_count,
                should_not_retry: ev.should_not_retry.unwrap_or(false),
                retry_after_ms: ev.retry_after_ms,
            };
            apply_step_event(state, task, &report, now).map(|()| state.tenant_id)
        })?;
        Ok(Response::new(ActionEventResponse {
            tenant_id: tenant.to_string(),
            worker_id: ev.worker_id,
        }))
    }

    async fn send_batch_action_event(
        &self,
        request: Request<BatchActionEvent>,
    ) -> Result<Response<ActionEventResponse>, Status> {
        let ev = request.into_inner();
        check_size(&ev)?;
        let items = ev
            .items
            .iter()
            .map(|i| {
                parse_id("items.task_run_external_id", &i.task_run_external_id).map(|id| (id, i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tenant = self.0.mutate(|state, now| {
            for (task, item) in &items {
                let report = Report {
                    kind: ev.event_type,
                    payload: &item.event_payload,
                    retry_count: item.retry_count,
                    should_not_retry: item.should_not_retry.unwrap_or(false),
                    retry_after_ms: item.retry_after_ms,
                };
                apply_step_event(state, *task, &report, now)?;
            }
            Ok::<_, Status>(state.tenant_id)
        })?;
        Ok(Response::new(ActionEventResponse {
            tenant_id: tenant.to_string(),
            worker_id: ev.worker_id,
        }))
    }

    async fn send_group_key_action_event(
        &self,
        _: Request<GroupKeyActionEvent>,
    ) -> Result<Response<ActionEventResponse>, Status> {
        Err(Status::unimplemented(
            "SendGroupKeyActionEvent is not implemented in v1 engines",
        ))
    }

    async fn put_overrides_data(
        &self,
        _: Request<OverridesData>,
    ) -> Result<Response<OverridesDataResponse>, Status> {
        Ok(Response::new(OverridesDataResponse {}))
    }

    async fn unsubscribe(
        &self,
        request: Request<WorkerUnsubscribeRequest>,
    ) -> Result<Response<WorkerUnsubscribeResponse>, Status> {
        self.0.record("Dispatcher/Unsubscribe", request.get_ref());
        let worker_id = request.into_inner().worker_id;
        let id = parse_id("worker_id", &worker_id)?;
        let tenant = self.0.mutate(|state, _| {
            let worker = state
                .workers
                .get_mut(&id)
                .ok_or_else(|| Status::not_found("worker not found"))?;
            worker.paused = true;
            Ok::<_, Status>(state.tenant_id)
        })?;
        Ok(Response::new(WorkerUnsubscribeResponse {
            tenant_id: tenant.to_string(),
            worker_id,
        }))
    }

    async fn refresh_timeout(
        &self,
        request: Request<RefreshTimeoutRequest>,
    ) -> Result<Response<RefreshTimeoutResponse>, Status> {
        let req = request.into_inner();
        let task = parse_id("task_run_external_id", &req.task_run_external_id)?;
        let by = duration::parse(&req.increment_timeout_by).map_err(|e| {
            Status::invalid_argument(format!("Invalid request: increment_timeout_by: {e}"))
        })?;
        let at = self.0.mutate(|state, now| {
            let t = state
                .tasks
                .get_mut(&task)
                .ok_or_else(|| Status::not_found("task run not found"))?;
            let (deadline, generation) = t
                .extend_deadline(by)
                .ok_or_else(|| Status::not_found("task run is not running"))?;
            state.timers.arm(
                deadline,
                crate::engine::timers::TimerKind::ExecTimeout { task, generation },
            );
            Ok::<_, Status>(SystemTime::now() + deadline.saturating_duration_since(now))
        })?;
        Ok(Response::new(RefreshTimeoutResponse {
            timeout_at: Some(timestamp(at)),
        }))
    }

    async fn release_slot(
        &self,
        request: Request<ReleaseSlotRequest>,
    ) -> Result<Response<ReleaseSlotResponse>, Status> {
        let task = parse_id(
            "task_run_external_id",
            &request.get_ref().task_run_external_id,
        )?;
        self.0.mutate(|state, _| {
            if !state.tasks.contains_key(&task) {
                return Err(Status::not_found("task run not found"));
            }
            state.release_slots(task);
            Ok(())
        })?;
        Ok(Response::new(ReleaseSlotResponse {}))
    }

    async fn restore_evicted_task(
        &self,
        request: Request<RestoreEvictedTaskRequest>,
    ) -> Result<Response<RestoreEvictedTaskResponse>, Status> {
        let task = parse_id(
            "task_run_external_id",
            &request.get_ref().task_run_external_id,
        )?;
        let requeued = self.0.mutate(|state, now| {
            let t = state
                .tasks
                .get_mut(&task)
                .ok_or_else(|| Status::not_found("task run not found"))?;
            if *t.status() != TaskStatus::Evicted {
                return Ok(false);
            }
            t.invocation += 1;
            state.enqueue(task, now);
            Ok::<_, Status>(true)
        })?;
        Ok(Response::new(RestoreEvictedTaskResponse { requeued }))
    }

    async fn upsert_worker_labels(
        &self,
        request: Request<UpsertWorkerLabelsRequest>,
    ) -> Result<Response<UpsertWorkerLabelsResponse>, Status> {
        let req = request.into_inner();
        let id = parse_id("worker_id", &req.worker_id)?;
        let tenant = self.0.mutate(|state, _| {
            let worker = state
                .workers
                .get_mut(&id)
                .ok_or_else(|| Status::not_found("worker not found"))?;
            for (k, v) in &req.labels {
                worker.labels.insert(k.clone(), label_value(v));
            }
            Ok::<_, Status>(state.tenant_id)
        })?;
        Ok(Response::new(UpsertWorkerLabelsResponse {
            tenant_id: tenant.to_string(),
            worker_id: req.worker_id,
        }))
    }

    async fn get_version(
        &self,
        _: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        Ok(Response::new(GetVersionResponse {
            version: ENGINE_VERSION.to_owned(),
        }))
    }
}
