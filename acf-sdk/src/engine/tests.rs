//! Scheduler and lifecycle unit tests on the bare state (no gRPC, no Python): time is passed in
//! explicitly, so timers, backoffs and liveness are tested deterministically.

use crate::engine::lifecycle::TriggerSpec;
use crate::engine::state::{RunOrigin, RunState, State, TaskStatus, Timing, Worker, WorkerMsg};
use crate::engine::validation;
use crate::proto::v1::{
    BaseMatchCondition, Concurrency, CreateTaskOpts, CreateWorkflowVersionRequest,
    SleepMatchCondition, TaskConditions,
};
use crate::proto::{ActionType, AssignedAction};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use uuid::Uuid;

/// An empty engine state and the instant the test starts at.
fn fresh() -> (Instant, State) {
    (
        Instant::now(),
        State::new(Uuid::new_v4(), Timing::default()),
    )
}

/// Registers `wf`, one task `a`, limited to one run per value of `expression` with the proto's
/// `limit_strategy`.
fn register_one_run_per_key(state: &mut State, expression: &str, limit_strategy: i32) {
    let mut req = workflow(vec![task("a", &[])]);
    req.concurrency = Some(Concurrency {
        expression: expression.into(),
        max_runs: Some(1),
        limit_strategy: Some(limit_strategy),
        ..Default::default()
    });
    register(state, &req);
}

fn task(name: &str, parents: &[&str]) -> CreateTaskOpts {
    CreateTaskOpts {
        readable_id: name.into(),
        action: format!("wf:{name}"),
        timeout: "10s".into(),
        parents: parents.iter().map(|p| (*p).to_string()).collect(),
        ..Default::default()
    }
}

fn register(state: &mut State, req: &CreateWorkflowVersionRequest) {
    let def = validation::workflow(req, Uuid::new_v4()).expect("valid workflow");
    state.workflows.insert(req.name.clone(), Arc::new(def));
}

fn workflow(tasks: Vec<CreateTaskOpts>) -> CreateWorkflowVersionRequest {
    CreateWorkflowVersionRequest {
        name: "wf".into(),
        tasks,
        ..Default::default()
    }
}

/// Task `a`, retried `retries` times with exponential backoff by `backoff_factor`.
fn retried_task(retries: i32, backoff_factor: f32) -> CreateTaskOpts {
    CreateTaskOpts {
        retries,
        backoff_factor: Some(backoff_factor),
        ..task("a", &[])
    }
}

/// Registers `wf` with `task` (task `a`) as its only task and adds a 5-slot worker for it;
/// returns that worker's messages.
fn serve_one_task(
    state: &mut State,
    now: Instant,
    task: CreateTaskOpts,
) -> UnboundedReceiver<WorkerMsg> {
    register(state, &workflow(vec![task]));
    add_worker(state, now, &["wf:a"], 5).1
}

fn add_worker(
    state: &mut State,
    now: Instant,
    actions: &[&str],
    slots: i32,
) -> (Uuid, UnboundedReceiver<WorkerMsg>) {
    let (tx, rx) = unbounded_channel();
    let id = Uuid::new_v4();
    state.workers.insert(
        id,
        Worker {
            name: "w".into(),
            actions: actions.iter().map(|a| (*a).to_string()).collect(),
            slots: HashMap::from([("default".to_owned(), slots)]),
            legacy_pool: false,
            used: HashMap::new(),
            last_heartbeat: now,
            streams: vec![(1, tx)],
            had_stream: true,
            paused: false,
            labels: HashMap::new(),
            last_assigned: 0,
            reassigned: false,
            registered_at: std::time::SystemTime::now(),
        },
    );
    (id, rx)
}

/// A trigger of `workflow` with `input`: no metadata, priority or origin.
fn trigger_spec(workflow: &str, input: Value) -> TriggerSpec {
    TriggerSpec {
        workflow: workflow.into(),
        input,
        metadata: json!({}),
        priority: None,
        origin: RunOrigin::default(),
    }
}

/// Triggers the run and schedules at once, as the engine's services do.
fn start(state: &mut State, now: Instant, spec: TriggerSpec) -> Uuid {
    let id = state.trigger(spec, now).expect("trigger");
    state.schedule(now);
    id
}

fn trigger(state: &mut State, now: Instant, input: Value, priority: Option<i32>) -> Uuid {
    let spec = TriggerSpec {
        priority,
        ..trigger_spec("wf", input)
    };
    start(state, now, spec)
}

fn drain(rx: &mut UnboundedReceiver<WorkerMsg>) -> Vec<AssignedAction> {
    let mut out = Vec::new();
    while let Ok(WorkerMsg::Action(a)) = rx.try_recv() {
        out.push(*a);
    }
    out
}

fn task_id(a: &AssignedAction) -> Uuid {
    Uuid::parse_str(&a.task_run_external_id).unwrap()
}

fn payload(a: &AssignedAction) -> Value {
    serde_json::from_str(&a.action_payload).unwrap()
}

#[test]
fn dag_children_wait_for_every_parent_and_see_their_outputs() {
    let (now, mut s) = fresh();
    register(
        &mut s,
        &workflow(vec![
            task("a", &[]),
            task("b", &["a"]),
            task("c", &["a", "b"]),
        ]),
    );
    let (_, mut rx) = add_worker(&mut s, now, &["wf:a", "wf:b", "wf:c"], 10);
    let run = trigger(&mut s, now, json!({"x": 1}), None);
    let first = drain(&mut rx);
    assert_eq!(
        first
            .iter()
            .map(|a| a.action_id.as_str())
            .collect::<Vec<_>>(),
        vec!["wf:a"]
    );
    let p = payload(&first[0]);
    assert_eq!(p["input"], json!({"x": 1}));
    assert_eq!(p["triggered_by"], json!("manual"));
    assert_eq!(p["parents"], json!({}));
    assert_eq!(p["triggers"], json!({"filter_payload": null}));
    assert_eq!(p["user_data"], Value::Null);
    assert!(p.get("step_run_errors").is_none());

    s.complete_task(task_id(&first[0]), json!({"a": 1}), now);
    s.schedule(now);
    let second = drain(&mut rx);
    assert_eq!(second.len(), 1, "c must wait for b");
    assert_eq!(second[0].action_id, "wf:b");
    assert_eq!(payload(&second[0])["parents"], json!({"a": {"a": 1}}));

    s.complete_task(task_id(&second[0]), json!({"b": 2}), now);
    s.schedule(now);
    let third = drain(&mut rx);
    assert_eq!(third[0].action_id, "wf:c");
    assert_eq!(
        payload(&third[0])["parents"],
        json!({"a": {"a": 1}, "b": {"b": 2}})
    );
    assert_eq!(
        payload(&third[0])["dag_parent_task_run_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    s.complete_task(task_id(&third[0]), json!({}), now);
    assert_eq!(s.runs[&run].state, RunState::Completed);
    assert_eq!(s.runs[&run].outcome.as_ref().unwrap().results.len(), 3);
}

#[test]
fn slots_bound_concurrent_assignments() {
    let (now, mut s) = fresh();
    register(&mut s, &workflow(vec![task("a", &[])]));
    let (worker, mut rx) = add_worker(&mut s, now, &["wf:a"], 2);
    for _ in 0..3 {
        trigger(&mut s, now, json!({}), None);
    }
    let got = drain(&mut rx);
    assert_eq!(got.len(), 2);
    assert_eq!(s.workers[&worker].used["default"], 2);
    s.complete_task(task_id(&got[0]), json!({}), now);
    s.schedule(now);
    assert_eq!(drain(&mut rx).len(), 1);
}

#[test]
fn higher_priority_is_assigned_first() {
    let (now, mut s) = fresh();
    register(&mut s, &workflow(vec![task("a", &[])]));
    let low = trigger(&mut s, now, json!({}), Some(1));
    let high = trigger(&mut s, now, json!({}), Some(3));
    let (_, mut rx) = add_worker(&mut s, now, &["wf:a"], 1);
    s.schedule(now);
    let got = drain(&mut rx);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].workflow_run_id, high.to_string());
    assert_eq!(got[0].priority, 3);
    assert_ne!(got[0].workflow_run_id, low.to_string());
}

#[test]
fn stale_heartbeat_gets_no_work_and_silent_worker_loses_its_tasks() {
    let (now, mut s) = fresh();
    let mut t = task("a", &[]);
    t.timeout = "5m".into();
    register(&mut s, &workflow(vec![t]));
    let (stale, mut stale_rx) = add_worker(&mut s, now, &["wf:a"], 5);
    s.workers.get_mut(&stale).unwrap().last_heartbeat = now - Duration::from_secs(6);
    trigger(&mut s, now, json!({}), None);
    assert!(
        drain(&mut stale_rx).is_empty(),
        "heartbeat older than 5 s: not eligible"
    );

    let (alive, mut alive_rx) = add_worker(&mut s, now, &["wf:a"], 5);
    s.schedule(now);
    let got = drain(&mut alive_rx);
    assert_eq!(got.len(), 1);
    // The worker goes silent: after 30 s its task is re-queued with the same retry count.
    let (_, mut third_rx) = add_worker(&mut s, now + Duration::from_secs(31), &["wf:a"], 5);
    s.tick(now + Duration::from_secs(31));
    let moved = drain(&mut third_rx);
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].task_run_external_id, got[0].task_run_external_id);
    assert_eq!(moved[0].retry_count, 0);
    assert_eq!(s.workers[&alive].used["default"], 0);
}

#[test]
fn a_worker_declared_lost_gets_no_work_until_it_heartbeats_again() {
    // Re-queueing after 1 s of silence while a worker stays eligible for 5 s (the chaos tests' settings): the
    // re-queued task must not go back to the silent worker, where nothing would re-queue it again.
    let (now, mut s) = fresh();
    s.timing.reassign_after = Duration::from_secs(1);
    let mut t = task("a", &[]);
    t.timeout = "5m".into();
    register(&mut s, &workflow(vec![t]));
    let (silent, mut silent_rx) = add_worker(&mut s, now, &["wf:a"], 5);
    trigger(&mut s, now, json!({}), None);
    let first = drain(&mut silent_rx);
    assert_eq!(first.len(), 1);

    let later = now + Duration::from_millis(1500);
    s.tick(later);
    assert!(
        drain(&mut silent_rx).is_empty(),
        "the re-queued task went back to the worker that lost it"
    );
    trigger(&mut s, later, json!({}), None);
    assert!(
        drain(&mut silent_rx).is_empty(),
        "a lost worker got new work"
    );

    let (_, mut alive_rx) = add_worker(&mut s, later, &["wf:a"], 5);
    s.tick(later);
    let moved = drain(&mut alive_rx);
    assert_eq!(moved.len(), 2, "both tasks go to the live worker");
    assert!(
        moved
            .iter()
            .any(|a| a.task_run_external_id == first[0].task_run_external_id)
    );

    // A heartbeat makes the worker eligible again.
    let w = s.workers.get_mut(&silent).unwrap();
    w.last_heartbeat = later;
    w.reassigned = false;
    trigger(&mut s, later, json!({}), None);
    assert_eq!(
        drain(&mut silent_rx).len() + drain(&mut alive_rx).len(),
        1,
        "the third task goes to one of the two eligible workers"
    );
}

#[test]
fn retries_back_off_and_should_not_retry_is_final() {
    let (now, mut s) = fresh();
    let mut t = retried_task(2, 2.0);
    t.backoff_max_seconds = Some(60);
    let mut rx = serve_one_task(&mut s, now, t);
    let run = trigger(&mut s, now, json!({}), None);
    let a = drain(&mut rx).remove(0);
    s.fail_attempt(task_id(&a), "boom".into(), false, now);
    s.tick(now + Duration::from_millis(1900));
    assert!(drain(&mut rx).is_empty(), "first retry waits 2^1 = 2 s");
    s.tick(now + Duration::from_millis(2050));
    let retry = drain(&mut rx).remove(0);
    assert_eq!(retry.retry_count, 1);
    s.fail_attempt(task_id(&retry), "fatal".into(), true, now);
    assert_eq!(s.runs[&run].state, RunState::Failed);
    let results = &s.runs[&run].outcome.as_ref().unwrap().results;
    assert_eq!(results[0].error.as_deref(), Some("fatal"));
}

#[test]
fn execution_timeout_cancels_on_the_worker_then_retries() {
    let (now, mut s) = fresh();
    let mut t = task("a", &[]);
    t.timeout = "2s".into();
    t.retries = 1;
    let mut rx = serve_one_task(&mut s, now, t);
    trigger(&mut s, now, json!({}), None);
    let a = drain(&mut rx).remove(0);
    s.tick(now + Duration::from_millis(1950));
    assert!(drain(&mut rx).is_empty());
    s.tick(now + Duration::from_millis(2040));
    let msgs = drain(&mut rx);
    assert_eq!(msgs[0].action_type, ActionType::CancelStepRun as i32);
    assert_eq!(msgs[0].task_run_external_id, a.task_run_external_id);
    assert_eq!(msgs[0].action_payload, "");
    assert_eq!(msgs[1].action_type, ActionType::StartStepRun as i32);
    assert_eq!(msgs[1].retry_count, 1);
    let task = &s.tasks[&task_id(&a)];
    assert_eq!(task.error.as_deref(), Some("Task exceeded timeout of 2s"));
}

#[test]
fn schedule_timeout_cancels_unassigned_tasks() {
    let (now, mut s) = fresh();
    let mut t = task("a", &[]);
    t.schedule_timeout = Some("1s".into());
    register(&mut s, &workflow(vec![t]));
    let run = trigger(&mut s, now, json!({}), None);
    s.tick(now + Duration::from_millis(1040));
    assert_eq!(s.runs[&run].state, RunState::Cancelled);
    assert!(s.queue.is_empty());
}

#[test]
fn on_failure_task_receives_step_run_errors() {
    let (now, mut s) = fresh();
    let mut req = workflow(vec![task("a", &[]), task("b", &["a"])]);
    req.on_failure_task = Some(task("cleanup", &[]));
    register(&mut s, &req);
    let (_, mut rx) = add_worker(&mut s, now, &["wf:a", "wf:b", "wf:cleanup"], 5);
    let run = trigger(&mut s, now, json!({}), None);
    let a = drain(&mut rx).remove(0);
    s.fail_attempt(task_id(&a), "broken".into(), false, now);
    s.schedule(now);
    let cleanup = drain(&mut rx).remove(0);
    assert_eq!(cleanup.action_id, "wf:cleanup");
    assert_eq!(payload(&cleanup)["step_run_errors"], json!({"a": "broken"}));
    assert_eq!(
        s.runs[&run].state,
        RunState::Running,
        "the run waits for its on-failure task"
    );
    s.complete_task(task_id(&cleanup), json!({"cleaned": true}), now);
    assert_eq!(s.runs[&run].state, RunState::Failed);
}

#[test]
fn cancel_newest_rejects_runs_over_the_limit_per_key() {
    let (now, mut s) = fresh();
    register_one_run_per_key(&mut s, "input.k", 4);
    let first = trigger(&mut s, now, json!({"k": "x"}), None);
    let second = trigger(&mut s, now, json!({"k": "x"}), None);
    let other = trigger(&mut s, now, json!({"k": "y"}), None);
    assert_eq!(s.runs[&first].state, RunState::Running);
    assert_eq!(s.runs[&second].state, RunState::Cancelled);
    assert_eq!(s.runs[&other].state, RunState::Running);
}

#[test]
fn cancel_in_progress_cancels_the_running_holder() {
    let (now, mut s) = fresh();
    register_one_run_per_key(&mut s, "'all'", 0);
    let (_, mut rx) = add_worker(&mut s, now, &["wf:a"], 5);
    let first = trigger(&mut s, now, json!({}), None);
    let a = drain(&mut rx).remove(0);
    let second = trigger(&mut s, now, json!({}), None);
    let msgs = drain(&mut rx);
    assert_eq!(msgs[0].action_type, ActionType::CancelStepRun as i32);
    assert_eq!(msgs[0].task_run_external_id, a.task_run_external_id);
    assert_eq!(msgs[1].workflow_run_id, second.to_string());
    assert_eq!(s.runs[&first].state, RunState::Cancelled);
}

/// A task queued once a 1 s sleep condition (`sleep:1s`) fires.
fn sleeping_task(name: &str) -> CreateTaskOpts {
    let mut t = task(name, &[]);
    t.conditions = Some(TaskConditions {
        sleep_conditions: vec![SleepMatchCondition {
            base: Some(BaseMatchCondition {
                readable_data_key: "sleep:1s".into(),
                action: 1,
                ..Default::default()
            }),
            sleep_for: "1s".into(),
        }],
        ..Default::default()
    });
    t
}

#[test]
fn sleep_condition_queues_the_task_when_it_fires() {
    let (now, mut s) = fresh();
    let mut rx = serve_one_task(&mut s, now, sleeping_task("a"));
    trigger(&mut s, now, json!({}), None);
    assert!(drain(&mut rx).is_empty());
    s.tick(now + Duration::from_millis(1030));
    let a = drain(&mut rx).remove(0);
    assert_eq!(
        payload(&a)["triggers"]["sleep:1s"],
        json!({"sleep_duration": "1s"})
    );
}

#[test]
fn every_status_transition_bumps_the_generation() {
    // Waiting and Blocked used to be set without a bump; each transition now moves the generation on,
    // so a timer armed for any earlier state is recognisably stale.
    let (now, mut s) = fresh();
    let mut rx = serve_one_task(&mut s, now, sleeping_task("a"));
    let run = trigger(&mut s, now, json!({}), None);
    let id = s.runs[&run].tasks[0];
    assert_eq!(*s.tasks[&id].status(), TaskStatus::Waiting);
    assert_eq!(s.tasks[&id].generation(), 1, "Pending -> Waiting");
    s.tick(now + Duration::from_millis(1030));
    assert_eq!(drain(&mut rx).len(), 1);
    assert!(matches!(s.tasks[&id].status(), TaskStatus::Running(_)));
    assert_eq!(
        s.tasks[&id].generation(),
        4,
        "Waiting -> Blocked -> Queued -> Running"
    );
}

fn event(key: &str, scope: Option<&str>, payload: Value) -> crate::engine::state::StoredEvent {
    crate::engine::state::StoredEvent {
        id: Uuid::new_v4(),
        key: key.into(),
        payload,
        metadata: json!({}),
        scope: scope.map(Into::into),
        at: std::time::SystemTime::now(),
    }
}

#[test]
fn event_filters_decide_which_pushes_trigger_and_set_filter_payload() {
    let (now, mut s) = fresh();
    let mut req = workflow(vec![task("a", &[])]);
    req.event_triggers = vec!["order".into()];
    req.default_filters = vec![crate::proto::v1::DefaultFilter {
        expression: "input.x == 1".into(),
        scope: "tenant-1".into(),
        payload: Some(br#"{"p": 1}"#.to_vec()),
    }];
    register(&mut s, &req);
    let (_, mut rx) = add_worker(&mut s, now, &["wf:a"], 5);
    // How many runs a push triggers.
    let mut push = |key: &str, scope: Option<&str>, input: Value| {
        s.push_event(&event(key, scope, input), None, now).len()
    };
    assert_eq!(push("order", Some("tenant-1"), json!({"x": 1})), 1);
    assert_eq!(push("order", Some("tenant-1"), json!({"x": 2})), 0);
    assert_eq!(push("order", None, json!({"x": 1})), 0);
    assert_eq!(push("other", Some("tenant-1"), json!({"x": 1})), 0);
    s.schedule(now);
    let a = drain(&mut rx).remove(0);
    assert_eq!(payload(&a)["triggers"]["filter_payload"], json!({"p": 1}));
    assert_eq!(payload(&a)["input"], json!({"x": 1}));
    assert_eq!(a.triggering_event_key.as_deref(), Some("order"));
}

#[test]
fn lookback_satisfies_a_scoped_wait_with_an_earlier_event() {
    use crate::engine::conditions::WaitOwner;
    use crate::engine::model::{CondAction, CondKind, ConditionDef};
    let (now, mut s) = fresh();
    let since = std::time::SystemTime::now() - Duration::from_secs(5);
    s.push_event(&event("msg", Some("conv"), json!({"n": 1})), None, now);
    let cond = |scope: Option<&str>, since: Option<std::time::SystemTime>| ConditionDef {
        readable_data_key: "msg".into(),
        action: CondAction::Create,
        or_group: "g".into(),
        expression: "input.n == 1".into(),
        kind: CondKind::UserEvent {
            key: "msg".into(),
            scope: scope.map(Into::into),
            since,
        },
    };
    let task = Uuid::new_v4();
    let key = |k: &str| (task, k.to_owned());
    s.create_wait(
        WaitOwner::Legacy {
            task,
            signal_key: "with".into(),
        },
        vec![cond(Some("conv"), Some(since))],
        vec![],
        now,
    );
    s.create_wait(
        WaitOwner::Legacy {
            task,
            signal_key: "no-since".into(),
        },
        vec![cond(Some("conv"), None)],
        vec![],
        now,
    );
    s.create_wait(
        WaitOwner::Legacy {
            task,
            signal_key: "no-scope".into(),
        },
        vec![cond(None, Some(since))],
        vec![],
        now,
    );
    assert!(s.durable.legacy_results.contains_key(&key("with")));
    assert!(
        !s.durable.legacy_results.contains_key(&key("no-since")),
        "lookback needs a since"
    );
    assert!(
        !s.durable.legacy_results.contains_key(&key("no-scope")),
        "lookback needs a scope"
    );
    // A later matching event satisfies the remaining waits; a non-matching one does not.
    s.push_event(&event("msg", Some("conv"), json!({"n": 2})), None, now);
    assert!(!s.durable.legacy_results.contains_key(&key("no-since")));
    s.push_event(&event("msg", Some("conv"), json!({"n": 1})), None, now);
    assert!(s.durable.legacy_results.contains_key(&key("no-since")));
    assert!(s.durable.legacy_results.contains_key(&key("no-scope")));
}

#[test]
fn cancelled_waiting_and_pending_tasks_finish_the_run() {
    let (now, mut s) = fresh();
    register(&mut s, &workflow(vec![task("a", &[]), task("b", &["a"])]));
    let (worker, mut rx) = add_worker(&mut s, now, &["wf:a", "wf:b"], 5);
    let run = trigger(&mut s, now, json!({}), None);
    let a = drain(&mut rx).remove(0);
    s.cancel_run(run, now);
    let cancel = drain(&mut rx).remove(0);
    assert_eq!(cancel.action_type, ActionType::CancelStepRun as i32);
    assert_eq!(cancel.task_run_external_id, a.task_run_external_id);
    assert_eq!(s.runs[&run].state, RunState::Cancelled);
    assert_eq!(s.workers[&worker].used["default"], 0);
    // A late COMPLETED from the worker is ignored.
    assert!(s.tasks[&task_id(&a)].status().is_final());
}

#[test]
fn only_the_most_recent_finished_runs_are_retained() {
    let (now, mut s) = fresh();
    s.retained_runs = 2;
    register(&mut s, &workflow(vec![task("a", &[])]));
    let (_, mut rx) = add_worker(&mut s, now, &["wf:a"], 10);
    let runs: Vec<Uuid> = (0..3)
        .map(|_| trigger(&mut s, now, json!({}), None))
        .collect();
    for a in drain(&mut rx) {
        s.complete_task(task_id(&a), json!({}), now);
    }
    assert!(
        !s.runs.contains_key(&runs[0]),
        "the oldest finished run is forgotten"
    );
    assert!(s.runs.contains_key(&runs[1]) && s.runs.contains_key(&runs[2]));
    assert_eq!(s.tasks.len(), 2);
}

#[test]
fn oversized_run_results_are_trimmed_for_the_stream() {
    use crate::engine::completion::fit_for_stream;
    use crate::proto::{StepRunResult, WorkflowRunEvent};
    let big = "x".repeat(5 << 20);
    let result = |error: Option<&str>, output: Option<&str>| StepRunResult {
        task_run_external_id: "t".into(),
        task_name: "a".into(),
        job_run_id: "t".into(),
        error: error.map(Into::into),
        output: output.map(Into::into),
    };
    let small = WorkflowRunEvent {
        results: vec![result(None, Some("{}"))],
        ..Default::default()
    };
    assert_eq!(fit_for_stream(&small), small);
    let big_error = WorkflowRunEvent {
        results: vec![result(Some(&big), None)],
        ..Default::default()
    };
    let fitted = fit_for_stream(&big_error);
    assert_eq!(
        fitted.results[0].error.as_deref(),
        Some("Error is too large to send over the Hatchet stream.")
    );
    let big_output = WorkflowRunEvent {
        results: vec![result(None, Some(&big))],
        ..Default::default()
    };
    assert!(fit_for_stream(&big_output).results.is_empty());
}

#[test]
fn a_payload_too_large_for_workers_fails_the_task() {
    let (now, mut s) = fresh();
    let mut rx = serve_one_task(&mut s, now, task("a", &[]));
    let run = trigger(&mut s, now, json!({"blob": "x".repeat(5 << 20)}), None);
    assert!(drain(&mut rx).is_empty());
    assert_eq!(s.runs[&run].state, RunState::Failed);
    let error = s.runs[&run].outcome.as_ref().unwrap().results[0]
        .error
        .clone()
        .unwrap();
    assert!(error.contains("exceeds the 4 MiB message limit"), "{error}");
}

#[test]
fn worker_labels_route_tasks_and_triggers_override_them() {
    use crate::engine::model::LabelValue;
    use crate::proto::v1::DesiredWorkerLabels;
    let (now, mut s) = fresh();
    let mut t = task("a", &[]);
    t.worker_labels = HashMap::from([(
        "model".to_owned(),
        DesiredWorkerLabels {
            str_value: Some("fancy".into()),
            required: Some(true),
            ..Default::default()
        },
    )]);
    register(&mut s, &workflow(vec![t]));
    let (plain, mut plain_rx) = add_worker(&mut s, now, &["wf:a"], 5);
    let (fancy, mut fancy_rx) = add_worker(&mut s, now, &["wf:a"], 5);
    s.workers
        .get_mut(&fancy)
        .unwrap()
        .labels
        .insert("model".into(), LabelValue::Str("fancy".into()));
    s.workers
        .get_mut(&plain)
        .unwrap()
        .labels
        .insert("model".into(), LabelValue::Str("plain".into()));
    for _ in 0..3 {
        trigger(&mut s, now, json!({}), None);
    }
    assert!(
        drain(&mut plain_rx).is_empty(),
        "a required label excludes the other worker"
    );
    assert_eq!(drain(&mut fancy_rx).len(), 3);
    // A trigger's desired label for the same key replaces the task's.
    let spec = TriggerSpec {
        origin: RunOrigin {
            desired_labels: validation::desired_labels(&HashMap::from([(
                "model".to_owned(),
                DesiredWorkerLabels {
                    str_value: Some("plain".into()),
                    required: Some(true),
                    ..Default::default()
                },
            )])),
            ..RunOrigin::default()
        },
        ..trigger_spec("wf", json!({}))
    };
    start(&mut s, now, spec);
    assert_eq!(drain(&mut plain_rx).len(), 1);
    assert!(drain(&mut fancy_rx).is_empty());
}

#[test]
fn a_task_no_worker_can_take_does_not_block_others_of_its_action() {
    use crate::proto::v1::DesiredWorkerLabels;
    let (now, mut s) = fresh();
    let mut rx = serve_one_task(&mut s, now, task("a", &[]));
    let picky = TriggerSpec {
        priority: Some(3),
        origin: RunOrigin {
            desired_labels: validation::desired_labels(&HashMap::from([(
                "gpu".to_owned(),
                DesiredWorkerLabels {
                    int_value: Some(1),
                    required: Some(true),
                    ..Default::default()
                },
            )])),
            ..RunOrigin::default()
        },
        ..trigger_spec("wf", json!({}))
    };
    s.trigger(picky, now).unwrap();
    let plain = trigger(&mut s, now, json!({}), Some(1));
    let got = drain(&mut rx);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].workflow_run_id, plain.to_string());
}

#[test]
fn a_replay_issuing_a_different_call_is_non_deterministic() {
    use crate::engine::durable_log::DurableStream;
    use crate::proto::v1::DurableTaskErrorType;
    use crate::proto::v1::durable_task_response::Message as Out;
    let (now, mut s) = fresh();
    let mut t = task("a", &[]);
    t.is_durable = true;
    let mut rx = serve_one_task(&mut s, now, t);
    s.workers.values_mut().for_each(|w| {
        w.slots.insert("durable".into(), 5);
    });
    trigger(&mut s, now, json!({}), None);
    let a = drain(&mut rx).remove(0);
    let (tx, mut out) = unbounded_channel();
    s.durable
        .streams
        .insert(7, DurableStream { worker: None, tx });
    let task = a.task_run_external_id.clone();
    s.durable_memo(7, &task, 1, b"k".to_vec(), Some(b"1".to_vec()));
    s.tasks.get_mut(&task_id(&a)).unwrap().invocation = 2;
    let sleep = validation::durable_conditions(
        &crate::proto::v1::DurableEventListenerConditions {
            sleep_conditions: vec![SleepMatchCondition {
                base: None,
                sleep_for: "1s".into(),
            }],
            user_event_conditions: vec![],
        },
        false,
    )
    .unwrap();
    s.durable_wait_for(7, &task, 2, sleep, now);
    let mut last = None;
    while let Ok(Ok(msg)) = out.try_recv() {
        last = msg.message;
    }
    let Some(Out::Error(error)) = last else {
        panic!("expected a nondeterminism error, got {last:?}")
    };
    assert_eq!(
        error.error_type,
        DurableTaskErrorType::Nondeterminism as i32
    );
    assert_eq!(error.r#ref.unwrap().node_id, 1);
}

#[test]
fn retry_after_from_the_worker_replaces_the_backoff() {
    let (now, mut s) = fresh();
    let mut rx = serve_one_task(&mut s, now, retried_task(1, 10.0));
    trigger(&mut s, now, json!({}), None);
    let a = drain(&mut rx).remove(0);
    s.fail_attempt_after(
        task_id(&a),
        "later".into(),
        false,
        Some(Duration::from_millis(300)),
        now,
    );
    s.tick(now + Duration::from_millis(250));
    assert!(drain(&mut rx).is_empty());
    s.tick(now + Duration::from_millis(330));
    assert_eq!(
        drain(&mut rx)[0].retry_count,
        1,
        "retried after 300 ms, not after 10 s"
    );
}

#[test]
fn static_rate_limits_hold_tasks_until_the_window_resets() {
    use crate::proto::v1::CreateTaskRateLimit;
    let (now, mut s) = fresh();
    s.rate_limits
        .declare("api".into(), 2, Duration::from_secs(1));
    let mut t = task("a", &[]);
    t.rate_limits = vec![CreateTaskRateLimit {
        key: "api".into(),
        units: Some(1),
        limit_values_expr: Some("-1".into()),
        ..Default::default()
    }];
    register(&mut s, &workflow(vec![t]));
    let (_, mut rx) = add_worker(&mut s, now, &["wf:a"], 10);
    for _ in 0..3 {
        trigger(&mut s, now, json!({}), None);
    }
    assert_eq!(drain(&mut rx).len(), 2, "2 units per second");
    s.tick(now + Duration::from_millis(500));
    assert!(drain(&mut rx).is_empty());
    s.tick(now + Duration::from_millis(1010));
    assert_eq!(drain(&mut rx).len(), 1, "the next window admits the third");
}

#[test]
fn dynamic_rate_limits_are_keyed_by_cel() {
    use crate::proto::v1::CreateTaskRateLimit;
    let (now, mut s) = fresh();
    let mut t = task("a", &[]);
    t.rate_limits = vec![CreateTaskRateLimit {
        key: "input.user".into(),
        key_expr: Some("input.user".into()),
        units: Some(1),
        limit_values_expr: Some("1".into()),
        duration: Some(2),
        ..Default::default()
    }];
    register(&mut s, &workflow(vec![t]));
    let (_, mut rx) = add_worker(&mut s, now, &["wf:a"], 10);
    for user in ["ann", "ann", "bob"] {
        trigger(&mut s, now, json!({"user": user}), None);
    }
    let started: Vec<Value> = drain(&mut rx)
        .iter()
        .map(|a| payload(a)["input"]["user"].clone())
        .collect();
    assert_eq!(
        started,
        vec![json!("ann"), json!("bob")],
        "one run per user per hour"
    );
    let bad = trigger(&mut s, now, json!({}), None);
    assert_eq!(
        s.runs[&bad].state,
        RunState::Failed,
        "a key expression that fails fails the task"
    );
}

fn register_checked(
    state: &mut State,
    req: &CreateWorkflowVersionRequest,
) -> Result<(), validation::ValidationError> {
    let def = validation::workflow(req, Uuid::new_v4())?;
    state.register_workflow(Arc::new(def))
}

fn trigger_named(state: &mut State, now: Instant, workflow: &str, input: Value) -> Uuid {
    start(state, now, trigger_spec(workflow, input))
}

fn limited(name: &str, limit: Concurrency) -> CreateWorkflowVersionRequest {
    let mut t = task("a", &[]);
    t.action = format!("{}:a", name.to_lowercase());
    t.concurrency = vec![limit];
    CreateWorkflowVersionRequest {
        name: name.into(),
        tasks: vec![t],
        ..Default::default()
    }
}

fn started(rx: &mut UnboundedReceiver<WorkerMsg>) -> Vec<String> {
    drain(rx)
        .into_iter()
        .filter(|a| a.action_type == ActionType::StartStepRun as i32)
        .map(|a| a.workflow_run_id)
        .collect()
}

fn run_task(s: &State, run: Uuid) -> Uuid {
    s.runs[&run].tasks[0]
}

#[test]
fn max_runs_expression_sets_the_limit_per_key_and_bad_results_fail_the_task() {
    let (now, mut s) = fresh();
    let req = limited(
        "Dyn",
        Concurrency {
            expression: "input.account".into(),
            max_runs: Some(1),
            limit_strategy: Some(3),
            max_runs_expression: Some("input.tier == 'premium' ? 2 : 1".into()),
            ..Default::default()
        },
    );
    register_checked(&mut s, &req).unwrap();
    let (_, mut rx) = add_worker(&mut s, now, &["dyn:a"], 10);
    let premium: Vec<Uuid> = (0..3)
        .map(|_| {
            trigger_named(
                &mut s,
                now,
                "Dyn",
                json!({"account": "p", "tier": "premium"}),
            )
        })
        .collect();
    let basic: Vec<Uuid> = (0..2)
        .map(|_| trigger_named(&mut s, now, "Dyn", json!({"account": "b", "tier": "basic"})))
        .collect();
    let ran = started(&mut rx);
    assert_eq!(
        ran,
        vec![
            premium[0].to_string(),
            premium[1].to_string(),
            basic[0].to_string()
        ]
    );
    s.complete_task(run_task(&s, premium[0]), json!({}), now);
    s.schedule(now);
    assert_eq!(started(&mut rx), vec![premium[2].to_string()]);

    let negative = limited(
        "Neg",
        Concurrency {
            expression: "'k'".into(),
            max_runs_expression: Some("input.n".into()),
            limit_strategy: Some(3),
            ..Default::default()
        },
    );
    register_checked(&mut s, &negative).unwrap();
    let failed = trigger_named(&mut s, now, "Neg", json!({"n": -1}));
    let t = &s.tasks[&run_task(&s, failed)];
    assert_eq!(s.runs[&failed].state, RunState::Failed, "{:?}", t.error);
    assert!(
        t.error.as_deref().unwrap_or("").contains("max runs"),
        "{:?}",
        t.error
    );
}

#[test]
fn a_tenant_scoped_limit_is_shared_by_every_workflow_naming_it_and_updated_in_place() {
    let (now, mut s) = fresh();
    let shared = |max: i32| Concurrency {
        expression: "'all'".into(),
        max_runs: Some(max),
        limit_strategy: Some(3),
        name: Some("crm".into()),
        is_tenant_scoped: Some(true),
        ..Default::default()
    };
    register_checked(&mut s, &limited("SyncA", shared(1))).unwrap();
    register_checked(&mut s, &limited("SyncB", shared(1))).unwrap();
    let (_, mut rx) = add_worker(&mut s, now, &["synca:a", "syncb:a"], 10);
    let a = trigger_named(&mut s, now, "SyncA", json!({}));
    let b = trigger_named(&mut s, now, "SyncB", json!({}));
    assert_eq!(started(&mut rx), vec![a.to_string()], "B shares A's limit");
    s.complete_task(run_task(&s, a), json!({}), now);
    s.schedule(now);
    assert_eq!(started(&mut rx), vec![b.to_string()]);

    // Re-registering any workflow naming the limit updates it for all of them.
    register_checked(&mut s, &limited("SyncA", shared(2))).unwrap();
    let b2 = trigger_named(&mut s, now, "SyncB", json!({}));
    assert_eq!(started(&mut rx), vec![b2.to_string()], "limit is now 2");

    // An unnamed workflow-scoped limit with the same expression is independent.
    let mut own = shared(1);
    own.name = None;
    own.is_tenant_scoped = None;
    register_checked(&mut s, &limited("Own", own)).unwrap();
    let (_, mut rx2) = add_worker(&mut s, now, &["own:a"], 10);
    let o = trigger_named(&mut s, now, "Own", json!({}));
    assert_eq!(started(&mut rx2), vec![o.to_string()]);
}

#[test]
fn tenant_scoped_limits_ordered_differently_are_refused() {
    let mut s = State::new(Uuid::new_v4(), Timing::default());
    let named = |name: &str| Concurrency {
        expression: "'k'".into(),
        limit_strategy: Some(3),
        name: Some(name.into()),
        is_tenant_scoped: Some(true),
        ..Default::default()
    };
    let mut first = limited("First", named("x"));
    first.tasks[0].concurrency.push(named("y"));
    register_checked(&mut s, &first).unwrap();
    let mut second = limited("Second", named("y"));
    second.tasks[0].concurrency.push(named("x"));
    let err = register_checked(&mut s, &second).unwrap_err();
    assert_eq!(err.field, "concurrency");
    assert!(err.message.contains("ordered differently"), "{err}");
    assert!(!s.workflows.contains_key("Second"));
}

#[test]
fn cancel_queued_except_newest_and_oldest_keep_one_waiting() {
    for (strategy, keeps_newest) in [(5, true), (6, false)] {
        let now = Instant::now();
        let mut s = State::new(Uuid::new_v4(), Timing::default());
        let req = limited(
            "Cq",
            Concurrency {
                expression: "input.group".into(),
                max_runs: Some(1),
                limit_strategy: Some(strategy),
                ..Default::default()
            },
        );
        register_checked(&mut s, &req).unwrap();
        let (_, mut rx) = add_worker(&mut s, now, &["cq:a"], 10);
        let runs: Vec<Uuid> = (0..3)
            .map(|_| trigger_named(&mut s, now, "Cq", json!({"group": "g"})))
            .collect();
        assert_eq!(started(&mut rx), vec![runs[0].to_string()]);
        let (kept, dropped) = if keeps_newest {
            (runs[2], runs[1])
        } else {
            (runs[1], runs[2])
        };
        assert_eq!(s.runs[&dropped].state, RunState::Cancelled, "{strategy}");
        assert_eq!(s.runs[&kept].state, RunState::Running, "{strategy}");
        s.complete_task(run_task(&s, runs[0]), json!({}), now);
        s.schedule(now);
        assert_eq!(started(&mut rx), vec![kept.to_string()], "{strategy}");
    }
}

#[test]
fn sticky_strategies_decide_how_the_desired_worker_counts() {
    let now = Instant::now();
    for (sticky, expect_pinned) in [(Some(1), true), (Some(0), false), (None, false)] {
        let mut s = State::new(Uuid::new_v4(), Timing::default());
        let mut req = workflow(vec![task("a", &[])]);
        req.sticky = sticky;
        register_checked(&mut s, &req).unwrap();
        let (busy, _busy_rx) = add_worker(&mut s, now, &["wf:a"], 0);
        let (_free, mut free_rx) = add_worker(&mut s, now, &["wf:a"], 5);
        let spec = TriggerSpec {
            origin: RunOrigin {
                desired_worker: Some(busy),
                ..Default::default()
            },
            ..trigger_spec("wf", json!({}))
        };
        start(&mut s, now, spec);
        let assigned = drain(&mut free_rx).len();
        // HARD waits for the (full) desired worker; SOFT and none fall back to a free one.
        assert_eq!(assigned == 0, expect_pinned, "sticky {sticky:?}");
    }
}

#[test]
fn an_idempotency_key_refuses_a_second_trigger_until_its_run_fails() {
    use crate::engine::lifecycle::TriggerError;
    let mut state = State::new(Uuid::new_v4(), Timing::default());
    let now = Instant::now();
    let mut r = workflow(vec![task("a", &[])]);
    r.idempotency = Some(crate::proto::v1::IdempotencyConfig {
        expression: "input.id".into(),
        ttl_ms: 60_000,
        method: Some(1),
    });
    register(&mut state, &r);
    let spec = |id: Value| trigger_spec("wf", json!({ "id": id }));
    let first = state.trigger(spec(json!("order-1")), now).unwrap();
    match state.trigger(spec(json!("order-1")), now) {
        Err(TriggerError::IdempotencyCollision { existing, .. }) => assert_eq!(existing, first),
        other => panic!("expected a collision, got {other:?}"),
    }
    state
        .trigger(spec(json!("order-2")), now)
        .expect("another key");
    assert!(
        matches!(
            state.trigger(spec(json!(7)), now),
            Err(TriggerError::IdempotencyKey(_))
        ),
        "a key that is not a string is refused"
    );
    state.runs.get_mut(&first).unwrap().state = RunState::Failed;
    state
        .trigger(spec(json!("order-1")), now)
        .expect("a failed run releases a STATUS key");
}

#[test]
fn unsupported_registration_fields_are_refused_by_name() {
    let mut r = workflow(vec![task("a", &[])]);
    r.tasks[0].batch = Some(crate::proto::v1::TaskBatchConfig {
        batch_max_size: 5,
        ..Default::default()
    });
    let e = validation::workflow(&r, Uuid::nil()).unwrap_err();
    assert_eq!(e.field, "tasks[0].batch");
    let mut r = workflow(vec![task("a", &[])]);
    r.concurrency_arr = vec![Concurrency {
        expression: "'k'".into(),
        is_tenant_scoped: Some(true),
        ..Default::default()
    }];
    assert_eq!(
        validation::workflow(&r, Uuid::nil()).unwrap_err().field,
        "concurrency_arr[0].name"
    );
    let mut r = workflow(vec![task("a", &[])]);
    r.tasks[0].concurrency = vec![Concurrency {
        expression: "'k'".into(),
        max_runs_expression: Some("input.(".into()),
        ..Default::default()
    }];
    assert_eq!(
        validation::workflow(&r, Uuid::nil()).unwrap_err().field,
        "tasks[0].concurrency[0].max_runs_expression"
    );
    let twice = Concurrency {
        expression: "'k'".into(),
        name: Some("n".into()),
        is_tenant_scoped: Some(true),
        ..Default::default()
    };
    let mut r = workflow(vec![task("a", &[])]);
    r.tasks[0].concurrency = vec![twice.clone(), twice];
    assert_eq!(
        validation::workflow(&r, Uuid::nil()).unwrap_err().field,
        "tasks[0].concurrency"
    );
    let mut r = workflow(vec![task("a", &[])]);
    r.concurrency = Some(Concurrency {
        expression: "'k'".into(),
        limit_strategy: Some(2),
        ..Default::default()
    });
    assert_eq!(
        validation::workflow(&r, Uuid::nil()).unwrap_err().field,
        "concurrency.limit_strategy"
    );
}

#[tokio::test]
async fn the_builder_bounds_the_finished_runs_kept() {
    let engine = super::Engine::builder()
        .retained_runs(3)
        .start()
        .await
        .unwrap();
    assert_eq!(engine.shared.lock().retained_runs, 3);
    engine.shutdown().await;
    // Zero would forget a run the moment it finishes, before its result can be read: at least one is kept.
    let engine = super::Engine::builder()
        .retained_runs(0)
        .start()
        .await
        .unwrap();
    assert_eq!(engine.shared.lock().retained_runs, 1);
    engine.shutdown().await;
}
