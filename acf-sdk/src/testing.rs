//! Running steps and whole workflows in-process, without an engine (the Rust counterpart of Python's
//! `mock_run`, plus a durable-wait simulation Python does not have).
//!
//! * [`TestContext`] builds a [`Context`] with any input, parent outputs, retry count, metadata and a
//!   cancellation token; engine calls (`log`, `put_stream`, `refresh_timeout`, `release_slot`, pushes) are
//!   recorded in a [`TestRecorder`].
//! * Durable waits resolve against events given with [`TestContext::event`]: a group is satisfied by its first
//!   matching event (same key and, if the condition is scoped, same scope), otherwise by its sleep, which
//!   fires at once in virtual time. A wait that nothing can satisfy fails instead of hanging. CEL filters are
//!   not evaluated here.
//! * [`run_workflow`] runs a workflow's DAG in dependency order, with retries and the on-failure step.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::context::{Context, LogLevel, RunInfo, StepBackend, StepRunData, WaitResult};
use crate::error::{Error, Result};
use crate::model::{Condition, ConditionGroup};
use crate::step_error::StepError;
use crate::workflow::Workflow;

/// Everything a step did through its context in a test.
#[derive(Debug, Default)]
pub struct TestRecorder {
    state: Mutex<Recorded>,
}

/// The recorded calls.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recorded {
    /// `(level, message)` of each log line.
    pub logs: Vec<(LogLevel, String)>,
    /// Stream chunks in order.
    pub stream: Vec<Vec<u8>>,
    /// Timeout refreshes.
    pub refreshes: Vec<Duration>,
    /// Number of `release_slot` calls.
    pub slot_releases: usize,
    /// Durable waits: the keys of the fired conditions, in order.
    pub waits: Vec<String>,
    /// Total virtual time slept by durable sleeps that fired.
    pub slept: Duration,
    /// Events pushed from the step: `(key, payload, scope)`.
    pub pushed: Vec<(String, Value, Option<String>)>,
    /// Child runs spawned from the step: `(workflow, input, child_index)`.
    pub children: Vec<(String, Value, i32)>,
}

impl TestRecorder {
    /// A snapshot of what was recorded.
    pub fn recorded(&self) -> Recorded {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Recorded) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[derive(Debug, Clone)]
struct TestEvent {
    key: String,
    scope: Option<String>,
    payload: Value,
}

struct TestBackend {
    recorder: Arc<TestRecorder>,
    events: Mutex<Vec<TestEvent>>,
}

impl TestBackend {
    fn satisfy(&self, group: &ConditionGroup) -> Option<(String, Value, Duration)> {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        for condition in &group.conditions {
            if let Condition::UserEvent {
                event_key,
                scope,
                readable_data_key,
                ..
            } = condition
            {
                let found = events
                    .iter()
                    .position(|e| &e.key == event_key && (scope.is_none() || scope == &e.scope));
                if let Some(i) = found {
                    let event = events.remove(i);
                    return Some((readable_data_key.clone(), event.payload, Duration::ZERO));
                }
            }
        }
        group.conditions.iter().find_map(|c| match c {
            Condition::Sleep {
                duration,
                readable_data_key,
            } => Some((
                readable_data_key.clone(),
                json!({ "sleep_duration": crate::duration::precise_expr(*duration) }),
                *duration,
            )),
            _ => None,
        })
    }
}

impl StepBackend for TestBackend {
    fn log<'a>(
        &'a self,
        _: &'a RunInfo,
        message: String,
        level: LogLevel,
    ) -> BoxFuture<'a, Result<()>> {
        self.recorder.with(|r| r.logs.push((level, message)));
        async { Ok(()) }.boxed()
    }

    fn put_stream<'a>(
        &'a self,
        _: &'a RunInfo,
        data: Vec<u8>,
        _index: i64,
    ) -> BoxFuture<'a, Result<()>> {
        self.recorder.with(|r| r.stream.push(data));
        async { Ok(()) }.boxed()
    }

    fn refresh_timeout<'a>(
        &'a self,
        _: &'a RunInfo,
        by: Duration,
    ) -> BoxFuture<'a, Result<DateTime<Utc>>> {
        self.recorder.with(|r| r.refreshes.push(by));
        let deadline = Utc::now() + chrono::Duration::from_std(by).unwrap_or_default();
        async move { Ok(deadline) }.boxed()
    }

    fn release_slot<'a>(&'a self, _: &'a RunInfo) -> BoxFuture<'a, Result<()>> {
        self.recorder.with(|r| r.slot_releases += 1);
        async { Ok(()) }.boxed()
    }

    fn wait_for<'a>(
        &'a self,
        info: &'a RunInfo,
        groups: Vec<ConditionGroup>,
        _wait_seq: u32,
    ) -> BoxFuture<'a, Result<WaitResult>> {
        async move {
            let mut fired = Map::new();
            let mut first = None;
            let mut slept = Duration::ZERO;
            for group in &groups {
                let (key, data, time) = self.satisfy(group).ok_or_else(|| {
                    Error::Closed(format!(
                        "test harness: a durable wait of step `{}` can never be satisfied (no matching event, no sleep)",
                        info.step_name
                    ))
                })?;
                slept = slept.max(time);
                fired.insert(key.clone(), json!([data.clone()]));
                first.get_or_insert((key, data));
            }
            let (key, data) = first.unwrap_or_default();
            self.recorder.with(|r| {
                r.waits.push(key.clone());
                r.slept += slept;
            });
            Ok(WaitResult { key, data, raw: json!({ "CREATE": fired }) })
        }
        .boxed()
    }

    fn push_event<'a>(
        &'a self,
        _: &'a RunInfo,
        key: String,
        payload: Value,
        scope: Option<String>,
    ) -> BoxFuture<'a, Result<()>> {
        self.recorder.with(|r| r.pushed.push((key, payload, scope)));
        async { Ok(()) }.boxed()
    }

    fn trigger_child<'a>(
        &'a self,
        workflow: String,
        input: Value,
        options: crate::client::TriggerOptions,
    ) -> BoxFuture<'a, Result<crate::client::WorkflowRunRef>> {
        // Recorded for assertions; there is no engine to run the child.
        let index = options.parent.as_ref().map_or(0, |p| p.2);
        self.recorder
            .with(|r| r.children.push((workflow, input, index)));
        async {
            Err(Error::Closed(
                "test harness: child runs need an engine (the spawn is recorded in TestRecorder::children)".into(),
            ))
        }
        .boxed()
    }
}

/// Builder of a [`Context`] for unit tests.
///
/// ```
/// use acf_sdk::testing::TestContext;
/// let t = TestContext::new(serde_json::json!({"n": 2})).step("double").parent_output("start", serde_json::json!({"k": 1}));
/// let ctx = t.build();
/// let n: serde_json::Value = ctx.input().unwrap();
/// assert_eq!(n["n"], 2);
/// assert_eq!(ctx.parent_json("start").unwrap()["k"], 1);
/// ```
#[derive(Clone)]
pub struct TestContext {
    info: RunInfo,
    data: StepRunData,
    metadata: Map<String, Value>,
    cancel: CancellationToken,
    events: Vec<TestEvent>,
    recorder: Arc<TestRecorder>,
}

impl TestContext {
    /// A context whose workflow input is `input` (serialised to JSON; `null` becomes `{}`).
    pub fn new(input: impl Serialize) -> Self {
        let input = match serde_json::to_value(input) {
            Ok(Value::Null) | Err(_) => Value::Object(Map::new()),
            Ok(v) => v,
        };
        let run_id = uuid::Uuid::new_v4().to_string();
        Self {
            info: RunInfo {
                workflow_name: "test".to_owned(),
                step_name: "step".to_owned(),
                action_id: "test:step".to_owned(),
                workflow_run_id: run_id,
                task_run_external_id: uuid::Uuid::new_v4().to_string(),
                priority: 1,
                durable_invocation_count: 1,
                ..RunInfo::default()
            },
            data: StepRunData {
                input,
                ..StepRunData::default()
            },
            metadata: Map::new(),
            cancel: CancellationToken::new(),
            events: Vec::new(),
            recorder: Arc::new(TestRecorder::default()),
        }
    }

    /// Sets the step name (lower-cased, as registered).
    #[must_use]
    pub fn step(mut self, name: &str) -> Self {
        self.info.step_name = name.to_lowercase();
        self.info.action_id = format!(
            "{}:{}",
            self.info.workflow_name.to_lowercase(),
            self.info.step_name
        );
        self
    }

    /// Adds a parent output.
    #[must_use]
    pub fn parent_output(mut self, parent: &str, output: impl Serialize) -> Self {
        let value = serde_json::to_value(output).unwrap_or(Value::Null);
        self.data.parents.insert(parent.to_lowercase(), value);
        self
    }

    /// Sets the attempt index.
    #[must_use]
    pub fn retry_count(mut self, retry_count: i32) -> Self {
        self.info.retry_count = retry_count;
        self
    }

    /// Adds an additional-metadata entry.
    #[must_use]
    pub fn metadata(mut self, key: &str, value: impl Serialize) -> Self {
        self.metadata.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// Adds the data of a satisfied DAG condition (or `filter_payload`).
    #[must_use]
    pub fn trigger(mut self, key: &str, data: impl Serialize) -> Self {
        self.data.triggers.insert(
            key.to_owned(),
            serde_json::to_value(data).unwrap_or(Value::Null),
        );
        self
    }

    /// Adds an upstream failure (for on-failure steps).
    #[must_use]
    pub fn step_run_error(mut self, task: &str, error: &str) -> Self {
        self.data
            .step_run_errors
            .insert(task.to_owned(), error.to_owned());
        self
    }

    /// Marks the step durable (enables `sleep_for` / `wait_for_event`).
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.info.durable = durable;
        self
    }

    /// Makes an event available to durable waits.
    #[must_use]
    pub fn event(mut self, key: &str, scope: Option<&str>, payload: impl Serialize) -> Self {
        self.events.push(TestEvent {
            key: key.to_owned(),
            scope: scope.map(str::to_owned),
            payload: serde_json::to_value(payload).unwrap_or(Value::Null),
        });
        self
    }

    /// The token that cancels contexts built from this builder.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The recorder shared by contexts built from this builder.
    pub fn recorder(&self) -> Arc<TestRecorder> {
        Arc::clone(&self.recorder)
    }

    /// Builds the context.
    pub fn build(&self) -> Context {
        let backend = TestBackend {
            recorder: Arc::clone(&self.recorder),
            events: Mutex::new(self.events.clone()),
        };
        Context::new(
            self.info.clone(),
            self.data.clone(),
            self.metadata.clone(),
            self.cancel.clone(),
            Arc::new(backend),
        )
    }
}

/// A failed in-process run: the step that failed for good, its error, and the on-failure step's outcome.
#[derive(Debug)]
pub struct TestRunFailure {
    /// The failing step.
    pub step: String,
    /// Its last error.
    pub error: StepError,
    /// Output (or error) of the on-failure step, if the workflow has one.
    pub on_failure: Option<Result<Value, StepError>>,
    /// Outputs of the steps that completed before the failure.
    pub outputs: BTreeMap<String, Value>,
    /// Attempts made per step that ran (completed steps and the failing one), by step name.
    pub attempts: BTreeMap<String, i32>,
}

/// Runs a workflow in-process, without an engine: every step in dependency order (each sees its parents'
/// outputs), retrying retryable failures up to the step's `retries` with an increasing retry count (at once:
/// backoff is not simulated), and, after a final failure, the on-failure step, which sees the failing step's
/// error and every completed step's output as a parent output, as under the engine. Durable waits use the
/// events of `base` (see [`TestContext::event`]).
///
/// Besides tests, this is the supported way to run a workflow once without Hatchet (a local check, a demo):
/// build the workflow as the worker would, optionally [`configured`](Workflow::configured), and pass its input
/// in `base`. Returns every step's output by step name.
pub async fn run_workflow<W: Workflow + ?Sized>(
    workflow: &W,
    base: TestContext,
) -> std::result::Result<BTreeMap<String, Value>, Box<TestRunFailure>> {
    let definition = workflow.definition();
    let mut base = base;
    base.info.workflow_name.clone_from(&definition.name);
    let mut outputs: BTreeMap<String, Value> = BTreeMap::new();
    let mut attempts: BTreeMap<String, i32> = BTreeMap::new();
    let mut pending: Vec<_> = definition.tasks.clone();
    while !pending.is_empty() {
        let Some(pos) = pending
            .iter()
            .position(|t| t.parents.iter().all(|p| outputs.contains_key(p)))
        else {
            break; // unreachable for validated definitions (no cycles, known parents)
        };
        let task = pending.remove(pos);
        let mut attempt = 0;
        loop {
            let mut t = base
                .clone()
                .step(&task.name)
                .retry_count(attempt)
                .durable(task.durable);
            for parent in &task.parents {
                t = t.parent_output(parent, &outputs[parent]);
            }
            attempts.insert(task.name.clone(), attempt + 1);
            match workflow.dispatch(&task.name, t.build()).await {
                Ok(out) => {
                    outputs.insert(task.name.clone(), out);
                    break;
                }
                Err(e) if !e.is_non_retryable() && attempt < task.retries => attempt += 1,
                Err(error) => {
                    let on_failure = match &definition.on_failure {
                        Some(f) => {
                            let mut t = base
                                .clone()
                                .step(&f.name)
                                .step_run_error(&task.name, &error.to_report());
                            for (step, output) in &outputs {
                                t = t.parent_output(step, output);
                            }
                            Some(workflow.dispatch(&f.name, t.build()).await)
                        }
                        None => None,
                    };
                    return Err(Box::new(TestRunFailure {
                        step: task.name.clone(),
                        error,
                        on_failure,
                        outputs,
                        attempts,
                    }));
                }
            }
        }
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::model::TaskDefinition;
    use crate::workflow::WorkflowBuilder;

    #[derive(Serialize, Deserialize)]
    struct In {
        n: i64,
    }
    #[derive(Serialize, Deserialize)]
    struct Out {
        v: i64,
    }

    #[tokio::test]
    async fn runs_a_dag_with_typed_parents_and_retries() {
        let attempts = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&attempts);
        let wf = WorkflowBuilder::new("math")
            .task(
                TaskDefinition::new("double"),
                |i: In, ctx: Context| async move {
                    ctx.log("doubling").await?;
                    Ok::<_, StepError>(Out { v: i.n * 2 })
                },
            )
            .task(
                TaskDefinition::new("plus_one")
                    .parents(["double"])
                    .retries(2),
                move |_: In, ctx: Context| {
                    let seen = Arc::clone(&seen);
                    async move {
                        // Fails on the first attempt, succeeds on the retry.
                        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                            return Err(StepError::msg("flaky"));
                        }
                        assert_eq!(ctx.retry_count(), 1);
                        let d: Out = ctx.parent_output("double")?;
                        Ok(Out { v: d.v + 1 })
                    }
                },
            )
            .build()
            .unwrap();
        let base = TestContext::new(In { n: 20 });
        let out = run_workflow(&wf, base.clone()).await.unwrap();
        assert_eq!(out["plus_one"], json!({"v": 41}));
        // Declared child first: dependency order, not declaration order, decides.
        let reversed = WorkflowBuilder::new("rev")
            .task(
                TaskDefinition::new("second").parents(["first"]),
                |_: In, ctx: Context| async move {
                    let f: Out = ctx.parent_output("first")?;
                    Ok::<_, StepError>(Out { v: f.v + 1 })
                },
            )
            .task(
                TaskDefinition::new("first"),
                |i: In, _ctx: Context| async move { Ok::<_, StepError>(Out { v: i.n }) },
            )
            .build()
            .unwrap();
        let out = run_workflow(&reversed, TestContext::new(In { n: 1 }))
            .await
            .unwrap();
        assert_eq!(out["second"], json!({"v": 2}));
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert_eq!(
            base.recorder().recorded().logs,
            vec![(LogLevel::Info, "doubling".to_owned())]
        );
    }

    #[tokio::test]
    async fn non_retryable_failure_runs_on_failure_and_decode_errors_name_the_field() {
        let wf = WorkflowBuilder::new("w")
            .task(
                TaskDefinition::new("first"),
                |i: In, _ctx: Context| async move { Ok::<_, StepError>(Out { v: i.n }) },
            )
            .task(
                TaskDefinition::new("boom").parents(["first"]).retries(5),
                |_: In, _ctx: Context| async move {
                    Err::<Out, _>(StepError::non_retryable("card declined"))
                },
            )
            .on_failure(
                TaskDefinition::new("cleanup"),
                |_: Value, ctx: Context| async move {
                    let first: Out = ctx.parent_output("first")?;
                    Ok::<_, StepError>(json!({
                        "saw": ctx.step_run_errors().keys().cloned().collect::<Vec<_>>(),
                        "first": first.v,
                        "workflow": ctx.info().workflow_name,
                    }))
                },
            )
            .build()
            .unwrap();
        let fail = run_workflow(&wf, TestContext::new(In { n: 1 }))
            .await
            .unwrap_err();
        assert_eq!(fail.step, "boom");
        assert!(fail.error.is_non_retryable());
        assert_eq!(
            fail.attempts["boom"], 1,
            "a non-retryable error is not retried"
        );
        assert_eq!(
            fail.on_failure.unwrap().unwrap(),
            json!({"saw": ["boom"], "first": 1, "workflow": "w"})
        );

        let fail = run_workflow(&wf, TestContext::new(json!({"n": "x"})))
            .await
            .unwrap_err();
        let text = fail.error.to_string();
        assert!(
            text.starts_with("step `first`: cannot decode input"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn durable_waits_resolve_by_scoped_event_or_virtual_timeout() {
        let t = TestContext::new(json!({})).durable(true).event(
            "msg",
            Some("other"),
            json!({"text": "no"}),
        );
        let ctx = t.build();
        // The only event has another scope: the timeout fires (in virtual time).
        let r = ctx
            .wait_for_event("msg", Some("mine"), None, Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(r, None);
        assert_eq!(t.recorder().recorded().slept, Duration::from_secs(5));

        let t = TestContext::new(json!({})).durable(true).event(
            "msg",
            Some("mine"),
            json!({"text": "hi"}),
        );
        let r = t
            .build()
            .wait_for_event("msg", Some("mine"), None, Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(r, Some(json!({"text": "hi"})));

        let err = TestContext::new(json!({}))
            .build()
            .sleep_for(Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotDurable(_)));
        let err = TestContext::new(json!({}))
            .durable(true)
            .build()
            .wait_for_event("x", None, None, None)
            .await;
        assert!(err.is_err());
    }

    #[tokio::test]
    async fn cancellation_ends_a_wait() {
        let t = TestContext::new(json!({})).durable(true);
        t.cancellation_token().cancel();
        let err = t
            .build()
            .sleep_for(Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled));
    }
}

#[cfg(test)]
mod child_tests {
    use super::*;

    #[tokio::test]
    async fn child_spawns_are_numbered_and_recorded() {
        let t = TestContext::new(json!({})).metadata("trace", "t1");
        let ctx = t.build();
        for n in 0..2 {
            let r = ctx
                .spawn_child(
                    "child",
                    json!({ "n": n }),
                    crate::client::TriggerOptions::default(),
                )
                .await;
            assert!(r.is_err());
        }
        let children = t.recorder().recorded().children;
        assert_eq!(
            children,
            vec![
                ("child".into(), json!({"n": 0}), 0),
                ("child".into(), json!({"n": 1}), 1)
            ]
        );
    }
}
