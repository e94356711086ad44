//! Turning assigned actions into running steps: slots, STARTED/COMPLETED/FAILED reports echoing
//! `retry_count`, panics, non-retryable errors, and `CANCEL_STEP_RUN` (token, then abort after a grace period,
//! nothing reported).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::FutureExt;
use serde_json::{Map, Value};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::backend::RunBackend;
use super::metrics::Outcome;
use super::state::{Running, Shared, lock};
use crate::context::{Context, RunInfo, StepRunData};
use crate::proto::{ActionType, AssignedAction, StepActionEvent, StepActionEventType};
use crate::retry::RetryPolicy;
use crate::step_error::{StepError, StepErrorKind};

/// Handles one message of the action stream without blocking the stream reader.
pub(crate) fn handle(shared: &Arc<Shared>, action: AssignedAction) {
    match ActionType::try_from(action.action_type) {
        Ok(ActionType::StartStepRun) => start(shared, action),
        Ok(ActionType::CancelStepRun) => cancel(shared, &action),
        other => {
            tracing::warn!(action_type = ?other, action_id = %action.action_id, "unsupported action type ignored")
        }
    }
}

fn key(action: &AssignedAction) -> (String, i32) {
    (action.task_run_external_id.clone(), action.retry_count)
}

fn cancel(shared: &Arc<Shared>, action: &AssignedAction) {
    let mut running = lock(&shared.running);
    let Some(entry) = running.get_mut(&key(action)) else {
        tracing::debug!(task_run_id = %action.task_run_external_id, "cancel for a step not running here");
        return;
    };
    tracing::info!(task_run_id = %action.task_run_external_id, "step cancelled by the engine");
    entry.cancelled.store(true, Ordering::SeqCst);
    entry.cancel.cancel();
    if let Some(abort) = entry.abort.clone() {
        let grace = shared.options.cancel_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            abort.abort();
        });
    }
}

fn start(shared: &Arc<Shared>, action: AssignedAction) {
    let shared = Arc::clone(shared);
    let cancel = CancellationToken::new();
    let cancelled = Arc::new(AtomicBool::new(false));
    lock(&shared.running).insert(
        key(&action),
        Running {
            cancel: cancel.clone(),
            cancelled: Arc::clone(&cancelled),
            abort: None,
        },
    );
    if let Some(limit) = shared.client.config().terminate_worker_after_num_tasks
        && shared.count_started() >= limit
    {
        tracing::info!(limit, "task limit reached: the worker stops taking work");
        shared.stop_taking_work.cancel();
    }
    tokio::spawn(async move {
        run(&shared, action, cancel, cancelled).await;
    });
}

async fn acquire(
    shared: &Shared,
    requests: &std::collections::BTreeMap<String, i32>,
) -> Vec<(String, OwnedSemaphorePermit, i64)> {
    let mut permits = Vec::new();
    for (slot, n) in requests {
        let Some(sem) = shared.slots.get(slot) else {
            continue;
        };
        let n = u32::try_from(*n).unwrap_or(1).max(1);
        if let Ok(p) = Arc::clone(sem).acquire_many_owned(n).await {
            shared.metrics.add_slots_in_use(slot, i64::from(n));
            permits.push((slot.clone(), p, i64::from(n)));
        }
    }
    permits
}

async fn run(
    shared: &Arc<Shared>,
    action: AssignedAction,
    cancel: CancellationToken,
    cancelled: Arc<AtomicBool>,
) {
    let begun = Instant::now();
    let k = key(&action);
    let Some(entry) = shared.actions.get(&action.action_id) else {
        // Python ignores unknown actions and lets them time out; failing them at once is kinder.
        let err = StepError::from_kind(StepErrorKind::UnknownAction(action.action_id.clone()));
        report_failure(shared, &action, &err).await;
        shared
            .metrics
            .record(&action.action_id, Outcome::Failed, begun.elapsed());
        lock(&shared.running).remove(&k);
        return;
    };
    let permits = acquire(shared, &entry.slot_requests).await;
    if shared.options.send_started {
        // STARTED goes out beside the step and is never awaited, not even by the final report: like the Python
        // SDK (whose action listener sends every event as its own task), the two calls race. Hatchet records
        // STARTED for observability and ignores it once the attempt is finished, so waiting for it would only
        // add a round trip to every step. The graceful shutdown waits for it (`Shared::reports`).
        let reports = shared.reports.clone();
        let shared = Arc::clone(shared);
        let action = action.clone();
        reports.spawn(async move {
            let started = StepActionEventType::StepEventTypeStarted;
            send(
                &shared,
                &action,
                started,
                String::new(),
                // Python sends an explicit `false` on STARTED and COMPLETED.
                Some(false),
                RetryPolicy::once(),
            )
            .await;
        });
    }

    let metadata: Map<String, Value> = action
        .additional_metadata
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let info = RunInfo {
        workflow_name: entry.workflow_name.clone(),
        step_name: entry.step.clone(),
        action_id: action.action_id.clone(),
        workflow_run_id: action.workflow_run_id.clone(),
        task_run_external_id: action.task_run_external_id.clone(),
        task_id: action.task_id.clone(),
        job_run_id: action.job_run_id.clone(),
        retry_count: action.retry_count,
        worker_id: shared.worker_id().unwrap_or_default(),
        priority: action.priority,
        durable_invocation_count: action
            .durable_task_invocation_count
            .filter(|c| *c > 0)
            .unwrap_or(1),
        parent_workflow_run_id: action.parent_workflow_run_id.clone(),
        child_index: action.child_workflow_index,
        child_key: action.child_workflow_key.clone(),
        triggering_event_key: action.triggering_event_key.clone(),
        durable: entry.durable,
        namespace: shared.client.config().namespace.clone(),
    };
    let backend = Arc::new(RunBackend::new(Arc::clone(shared), permits));
    let outcome = match StepRunData::parse(&action.action_payload) {
        Err(e) => Err(StepError::decode(&entry.step, "action payload", e)),
        Ok(data) => {
            let ctx = Context::new(
                info.clone(),
                data,
                metadata,
                cancel,
                Arc::clone(&backend) as _,
            );
            let workflow = Arc::clone(&entry.workflow);
            let step = entry.step.clone();
            let lines = shared.log_lines.get().cloned();
            let fut = crate::log_layer::scope(&info, lines, async move {
                std::panic::AssertUnwindSafe(workflow.dispatch(&step, ctx))
                    .catch_unwind()
                    .await
            });
            let handle = tokio::spawn(fut);
            if let Some(r) = lock(&shared.running).get_mut(&k) {
                r.abort = Some(handle.abort_handle());
                if r.cancelled.load(Ordering::SeqCst) {
                    // Cancelled before the step started: abort after the grace period like any other.
                    let abort = handle.abort_handle();
                    let grace = shared.options.cancel_grace;
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        abort.abort();
                    });
                }
            }
            match handle.await {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(panicked(shared, &entry.step, panic.as_ref())),
                Err(join) if join.is_panic() => {
                    Err(panicked(shared, &entry.step, join.into_panic().as_ref()))
                }
                Err(_) => Err(StepError::from_kind(StepErrorKind::Cancelled(
                    "aborted after the cancellation grace period (worker shutdown)".to_owned(),
                ))),
            }
        }
    };
    if cancelled.load(Ordering::SeqCst) {
        // The engine already finalised a cancelled run: report nothing.
        shared
            .metrics
            .record(&action.action_id, Outcome::Cancelled, begun.elapsed());
    } else {
        match outcome {
            Ok(output) => {
                send(
                    shared,
                    &action,
                    StepActionEventType::StepEventTypeCompleted,
                    crate::workflow::json_text(&output),
                    Some(false),
                    RetryPolicy::action_events(),
                )
                .await;
                shared
                    .metrics
                    .record(&action.action_id, Outcome::Completed, begun.elapsed());
            }
            Err(err) => {
                report_failure(shared, &action, &err).await;
                shared
                    .metrics
                    .record(&action.action_id, Outcome::Failed, begun.elapsed());
            }
        }
    }
    backend.release_local_slots();
    // Only now: a drain waits for this entry, so the report has gone out before the worker unsubscribes.
    lock(&shared.running).remove(&k);
}

fn panicked(shared: &Shared, step: &str, payload: &(dyn std::any::Any + Send)) -> StepError {
    shared.metrics.inc_panics();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(step, %message, "step panicked");
    StepError::from_kind(StepErrorKind::Panicked {
        step: step.to_owned(),
        message,
    })
}

pub(crate) async fn report_failure(shared: &Arc<Shared>, action: &AssignedAction, err: &StepError) {
    tracing::warn!(action_id = %action.action_id, task_run_id = %action.task_run_external_id, error = %crate::error::Report(err.source_error()), "step failed");
    send(
        shared,
        action,
        StepActionEventType::StepEventTypeFailed,
        err.to_report(),
        Some(err.is_non_retryable()),
        RetryPolicy::action_events(),
    )
    .await;
}

async fn send(
    shared: &Shared,
    action: &AssignedAction,
    event_type: StepActionEventType,
    payload: String,
    should_not_retry: Option<bool>,
    policy: RetryPolicy,
) {
    let event = StepActionEvent {
        worker_id: shared.worker_id().unwrap_or_default(),
        job_id: action.job_id.clone(),
        job_run_id: action.job_run_id.clone(),
        task_id: action.task_id.clone(),
        task_run_external_id: action.task_run_external_id.clone(),
        action_id: action.action_id.clone(),
        event_timestamp: Some(crate::client::now_timestamp()),
        event_type: event_type as i32,
        event_payload: payload,
        retry_count: Some(action.retry_count),
        should_not_retry,
        retry_after_ms: None,
    };
    let client = shared
        .client
        .connection()
        .dispatcher_for(event.event_payload.len());
    let result = policy
        .run("Dispatcher/SendStepActionEvent", || {
            let mut client = client.clone();
            let event = event.clone();
            async move { client.send_step_action_event(event).await }
        })
        .await;
    if let Err(e) = result {
        // The engine will time the step out; nothing else can be done from here.
        tracing::error!(action_id = %action.action_id, event = ?event_type, error = %crate::error::Report(&e), "cannot report step event");
    }
}
