//! The embedded engine over raw gRPC with a hand-driven worker: auth, status codes for bad input,
//! the worker lifecycle, subscriptions, stream drops, restarts and the durable-task stream.

use acf_tests::engine_support;

use acf_sdk::engine::{ENGINE_VERSION, Engine, EngineHandle};
use acf_sdk::proto::dispatcher_client::DispatcherClient;
use acf_sdk::proto::events_service_client::EventsServiceClient;
use acf_sdk::proto::v1::admin_service_client::AdminServiceClient;
use acf_sdk::proto::v1::durable_task_request::Message as DurIn;
use acf_sdk::proto::v1::durable_task_response::Message as DurOut;
use acf_sdk::proto::v1::v1_dispatcher_client::V1DispatcherClient;
use acf_sdk::proto::v1::{
    BaseMatchCondition, CreateTaskOpts, CreateWorkflowVersionRequest,
    DurableEventListenerConditions, DurableEventLogEntryRef, DurableTaskAwaitedCompletedEntry,
    DurableTaskCompleteMemoRequest, DurableTaskMemoRequest, DurableTaskRequest,
    DurableTaskRequestRegisterWorker, DurableTaskResponse, DurableTaskWaitForRequest,
    DurableTaskWorkerStatusRequest, GetRunDetailsRequest, ListenForDurableEventRequest,
    RegisterDurableEventRequest, SleepMatchCondition, TriggerWorkflowRequest,
    UserEventMatchCondition,
};
use acf_sdk::proto::workflow_service_client::WorkflowServiceClient;
use acf_sdk::proto::{
    ActionType, AssignedAction, GetVersionRequest, GroupKeyActionEvent, HeartbeatRequest,
    PushEventRequest, PutStreamEventRequest, RefreshTimeoutRequest, ResourceEventType,
    ResourceType, StepActionEvent, StepActionEventType, SubscribeToWorkflowEventsRequest,
    SubscribeToWorkflowRunsRequest, WorkerListenRequest, WorkerRegisterRequest,
};
use engine_support::{Authed, connect, connect_with, register_worker};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Code, Streaming};

const WAIT: Duration = Duration::from_secs(10);

/// A server stream whose items are read from the returned channel stream. The open runs in its own task:
/// like Hatchet's grpc-go dispatcher, the engine sends a stream's response headers only with its first
/// message, so awaiting the open would block until the engine has something to say.
type Opened<T> = UnboundedReceiverStream<Result<T, tonic::Status>>;

fn open_stream<T: Send + 'static>(
    open: impl Future<Output = Result<tonic::Response<Streaming<T>>, tonic::Status>> + Send + 'static,
) -> Opened<T> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = match open.await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let _ = tx.send(Err(status));
                return;
            }
        };
        while let Some(item) = stream.next().await {
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    UnboundedReceiverStream::new(rx)
}

/// Heartbeats until the engine accepts one: right after a `ListenV2` request the engine may not have seen
/// the new stream yet.
async fn heartbeat_until_accepted(client: &mut DispatcherClient<Authed>, worker_id: &str) {
    let hb = HeartbeatRequest {
        worker_id: worker_id.to_owned(),
        heartbeat_at: None,
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Err(status) = client.heartbeat(hb.clone()).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "heartbeat never accepted: {status}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the engine has received `rpc` (the engine records requests).
async fn received(engine: &EngineHandle, rpc: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !engine.requests().iter().any(|r| r.rpc == rpc) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{rpc} never received"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn task(name: &str, parents: &[&str]) -> CreateTaskOpts {
    CreateTaskOpts {
        readable_id: name.into(),
        action: format!("rustwf:{name}"),
        timeout: "30s".into(),
        parents: parents.iter().map(|p| (*p).to_string()).collect(),
        ..Default::default()
    }
}

async fn put(ch: &Authed, name: &str, tasks: Vec<CreateTaskOpts>) -> Result<(), tonic::Status> {
    let req = CreateWorkflowVersionRequest {
        name: name.into(),
        tasks,
        ..Default::default()
    };
    AdminServiceClient::new(ch.clone())
        .put_workflow(req)
        .await
        .map(|_| ())
}

async fn trigger(ch: &Authed, name: &str, input: Value) -> String {
    let req = TriggerWorkflowRequest {
        name: name.into(),
        input: input.to_string(),
        ..Default::default()
    };
    WorkflowServiceClient::new(ch.clone())
        .trigger_workflow(req)
        .await
        .expect("trigger")
        .into_inner()
        .workflow_run_id
}

/// A worker driven by the test.
struct Worker {
    id: String,
    client: DispatcherClient<Authed>,
    actions: Opened<AssignedAction>,
}

impl Worker {
    async fn start(ch: &Authed, actions: &[&str], slots: &[(&str, i32)]) -> Self {
        let mut client = DispatcherClient::new(ch.clone());
        let id = register_worker(&mut client, "rust-test-worker", actions, slots).await;
        let mut listener = client.clone();
        let request = WorkerListenRequest {
            worker_id: id.clone(),
        };
        let actions = open_stream(async move { listener.listen_v2(request).await });
        heartbeat_until_accepted(&mut client, &id).await;
        Self {
            id,
            client,
            actions,
        }
    }

    async fn next(&mut self) -> AssignedAction {
        tokio::time::timeout(WAIT, self.actions.next())
            .await
            .expect("an action in time")
            .expect("stream open")
            .expect("action")
    }

    async fn event(
        &mut self,
        a: &AssignedAction,
        kind: StepActionEventType,
        payload: &str,
    ) -> Result<(), tonic::Status> {
        let ev = StepActionEvent {
            worker_id: self.id.clone(),
            job_id: a.job_id.clone(),
            job_run_id: a.job_run_id.clone(),
            task_id: a.task_id.clone(),
            task_run_external_id: a.task_run_external_id.clone(),
            action_id: a.action_id.clone(),
            event_type: kind as i32,
            event_payload: payload.into(),
            retry_count: Some(a.retry_count),
            ..Default::default()
        };
        self.client.send_step_action_event(ev).await.map(|_| ())
    }
}

#[tokio::test]
async fn missing_and_forged_tokens_are_unauthenticated() {
    let engine = Engine::builder().start().await.unwrap();
    let other = Engine::builder().start().await.unwrap();
    let plain = tonic::transport::Channel::from_shared(format!("http://{}", engine.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let err = DispatcherClient::new(plain)
        .get_version(GetVersionRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "invalid auth token");
    let forged = connect_with(engine.addr(), &other.token()).await;
    let err = DispatcherClient::new(forged)
        .get_version(GetVersionRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let ok = DispatcherClient::new(connect(&engine).await)
        .get_version(GetVersionRequest {})
        .await
        .unwrap();
    assert_eq!(ok.into_inner().version, ENGINE_VERSION);
    let env: HashMap<String, String> = engine.client_env().into_iter().collect();
    assert_eq!(env["HATCHET_CLIENT_HOST_PORT"], engine.addr().to_string());
    assert_eq!(env["HATCHET_CLIENT_TLS_STRATEGY"], "none");
}

#[tokio::test]
async fn bad_requests_get_the_reference_status_codes() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    let mut wf = WorkflowServiceClient::new(ch.clone());
    let mut admin = AdminServiceClient::new(ch.clone());
    let mut events = EventsServiceClient::new(ch.clone());
    let mut dispatcher = DispatcherClient::new(ch.clone());

    let err = wf
        .trigger_workflow(TriggerWorkflowRequest {
            name: "Nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "workflow names not found: Nope")
    );

    put(&ch, "Good", vec![task("a", &[])]).await.unwrap();
    let bad_json = TriggerWorkflowRequest {
        name: "Good".into(),
        input: "{not json".into(),
        ..Default::default()
    };
    assert_eq!(
        wf.trigger_workflow(bad_json).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let nul = TriggerWorkflowRequest {
        name: "Good".into(),
        input: r#"{"a":"\u0000"}"#.into(),
        ..Default::default()
    };
    assert_eq!(
        wf.trigger_workflow(nul).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let prio = TriggerWorkflowRequest {
        name: "Good".into(),
        priority: Some(5),
        ..Default::default()
    };
    assert_eq!(
        wf.trigger_workflow(prio).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    let err = put(&ch, "Cyclic", vec![task("a", &["b"]), task("b", &["a"])])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("parents"), "{}", err.message());
    let err = put(&ch, "bad name", vec![task("a", &[])])
        .await
        .unwrap_err();
    assert!(err.message().starts_with("name:"), "{}", err.message());

    let unknown = uuid::Uuid::new_v4().to_string();
    let err = admin
        .get_run_details(GetRunDetailsRequest {
            external_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = admin
        .get_run_details(GetRunDetailsRequest {
            external_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let ev = StepActionEvent {
        task_run_external_id: unknown.clone(),
        event_type: 2,
        ..Default::default()
    };
    assert_eq!(
        dispatcher
            .send_step_action_event(ev)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let hb = HeartbeatRequest {
        worker_id: unknown.clone(),
        heartbeat_at: None,
    };
    assert_eq!(
        dispatcher.heartbeat(hb).await.unwrap_err().code(),
        Code::NotFound
    );
    let gk = GroupKeyActionEvent::default();
    assert_eq!(
        dispatcher
            .send_group_key_action_event(gk)
            .await
            .unwrap_err()
            .code(),
        Code::Unimplemented
    );

    let push = PushEventRequest {
        key: "k".into(),
        payload: "[1,".into(),
        ..Default::default()
    };
    assert_eq!(
        events.push(push).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let huge = PushEventRequest {
        key: "k".into(),
        payload: format!("{{\"x\":\"{}\"}}", "y".repeat(5 << 20)),
        ..Default::default()
    };
    assert_eq!(
        events.push(huge).await.unwrap_err().code(),
        Code::ResourceExhausted
    );
    let bulk = acf_sdk::proto::BulkPushEventRequest { events: vec![] };
    assert_eq!(
        events.bulk_push(bulk).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // Nothing above wedged the engine.
    assert!(dispatcher.get_version(GetVersionRequest {}).await.is_ok());
    let run = trigger(&ch, "Good", json!({})).await;
    assert!(
        admin
            .get_run_details(GetRunDetailsRequest { external_id: run })
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn worker_lifecycle_results_and_run_events() {
    let engine = Engine::builder()
        .record_requests(true)
        .start()
        .await
        .unwrap();
    let ch = connect(&engine).await;
    put(&ch, "RustWf", vec![task("one", &[]), task("two", &["one"])])
        .await
        .unwrap();
    let mut worker = Worker::start(&ch, &["RustWf:One", "rustwf:two"], &[("default", 4)]).await;
    let run = trigger(&ch, "RustWf", json!({"n": 3})).await;

    let mut subscriber = DispatcherClient::new(ch.clone());
    let request = SubscribeToWorkflowEventsRequest {
        workflow_run_id: Some(run.clone()),
        ..Default::default()
    };
    let mut events =
        open_stream(async move { subscriber.subscribe_to_workflow_events(request).await });
    received(&engine, "Dispatcher/SubscribeToWorkflowEvents").await;
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(SubscribeToWorkflowRunsRequest {
        workflow_run_id: run.clone(),
    })
    .unwrap();
    let mut subscriber = DispatcherClient::new(ch.clone());
    let mut results = open_stream(async move {
        subscriber
            .subscribe_to_workflow_runs(UnboundedReceiverStream::new(rx))
            .await
    });

    let one = worker.next().await;
    assert_eq!(one.action_id, "rustwf:one", "action ids are lower-cased");
    assert_eq!(one.action_type, ActionType::StartStepRun as i32);
    let payload: Value = serde_json::from_str(&one.action_payload).unwrap();
    assert_eq!(payload["input"], json!({"n": 3}));
    worker
        .event(&one, StepActionEventType::StepEventTypeStarted, "")
        .await
        .unwrap();
    let chunk = PutStreamEventRequest {
        task_run_external_id: one.task_run_external_id.clone(),
        message: b"partial".to_vec(),
        event_index: Some(0),
        ..Default::default()
    };
    EventsServiceClient::new(ch.clone())
        .put_stream_event(chunk)
        .await
        .unwrap();
    worker
        .event(
            &one,
            StepActionEventType::StepEventTypeCompleted,
            r#"{"v": 1}"#,
        )
        .await
        .unwrap();
    let two = worker.next().await;
    let payload: Value = serde_json::from_str(&two.action_payload).unwrap();
    assert_eq!(payload["parents"], json!({"one": {"v": 1}}));
    worker
        .event(&two, StepActionEventType::StepEventTypeCompleted, "")
        .await
        .unwrap();

    let finished = tokio::time::timeout(WAIT, results.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(finished.workflow_run_id, run);
    let outputs: HashMap<String, Option<String>> = finished
        .results
        .iter()
        .map(|r| (r.task_name.clone(), r.output.clone()))
        .collect();
    assert_eq!(outputs["one"].as_deref(), Some(r#"{"v":1}"#));
    assert_eq!(outputs["two"].as_deref(), Some("{}"));

    let mut seen = Vec::new();
    while let Some(Ok(ev)) = tokio::time::timeout(WAIT, events.next()).await.unwrap() {
        seen.push(ev);
    }
    let stream = seen
        .iter()
        .find(|e| e.event_type == ResourceEventType::Stream as i32)
        .expect("stream chunk event");
    assert_eq!(stream.event_payload, "partial");
    assert_eq!(stream.resource_type, ResourceType::StepRun as i32);
    let last = seen.last().unwrap();
    assert!(last.hangup);
    assert_eq!(last.resource_type, ResourceType::WorkflowRun as i32);
    assert_eq!(last.event_type, ResourceEventType::Completed as i32);

    // A late subscriber still gets the result.
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(SubscribeToWorkflowRunsRequest {
        workflow_run_id: run.clone(),
    })
    .unwrap();
    let mut late = DispatcherClient::new(ch.clone())
        .subscribe_to_workflow_runs(UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let again = tokio::time::timeout(WAIT, late.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(again.results.len(), 2);
}

#[tokio::test]
async fn dropped_streams_force_a_reconnect() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    put(&ch, "RustWf", vec![task("one", &[])]).await.unwrap();
    let mut worker = Worker::start(&ch, &["rustwf:one"], &[]).await;
    engine.drop_worker_streams();
    let err = tokio::time::timeout(WAIT, worker.actions.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let hb = HeartbeatRequest {
        worker_id: worker.id.clone(),
        heartbeat_at: None,
    };
    let err = worker.client.heartbeat(hb.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "Heartbeat rejected: worker stream is not active"
    );
    let mut listener = worker.client.clone();
    let request = WorkerListenRequest {
        worker_id: worker.id.clone(),
    };
    worker.actions = open_stream(async move { listener.listen_v2(request).await });
    heartbeat_until_accepted(&mut worker.client, &hb.worker_id).await;
    trigger(&ch, "RustWf", json!({})).await;
    assert_eq!(worker.next().await.action_id, "rustwf:one");
}

#[tokio::test]
async fn restarted_engine_with_the_same_secret_accepts_old_tokens() {
    let first: EngineHandle = Engine::builder()
        .token_secret(b"stable".to_vec())
        .start()
        .await
        .unwrap();
    let (addr, token) = (first.addr(), first.token());
    first.shutdown().await;
    let second = Engine::builder()
        .bind(addr)
        .token_secret(b"stable".to_vec())
        .start()
        .await
        .expect("port can be re-bound");
    let version = DispatcherClient::new(connect_with(addr, &token).await)
        .get_version(GetVersionRequest {})
        .await
        .unwrap();
    assert_eq!(version.into_inner().version, ENGINE_VERSION);
    second.shutdown().await;
}

#[tokio::test]
async fn refresh_timeout_extends_the_deadline() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    let mut short = task("one", &[]);
    short.timeout = "1s".into();
    put(&ch, "RustWf", vec![short]).await.unwrap();
    let mut worker = Worker::start(&ch, &["rustwf:one"], &[]).await;
    trigger(&ch, "RustWf", json!({})).await;
    let a = worker.next().await;
    let req = RefreshTimeoutRequest {
        task_run_external_id: a.task_run_external_id.clone(),
        increment_timeout_by: "2s".into(),
    };
    let at = worker
        .client
        .refresh_timeout(req)
        .await
        .unwrap()
        .into_inner()
        .timeout_at
        .unwrap();
    let left = std::time::SystemTime::try_from(at)
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        left > Duration::from_millis(2000),
        "deadline only {left:?} away"
    );
    let bad = RefreshTimeoutRequest {
        task_run_external_id: a.task_run_external_id.clone(),
        increment_timeout_by: "2 days".into(),
    };
    assert_eq!(
        worker.client.refresh_timeout(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    // Without the refresh the task would be cancelled after 1 s; it is cancelled after ~3 s.
    let quiet = tokio::time::timeout(Duration::from_millis(1500), worker.actions.next()).await;
    assert!(quiet.is_err(), "no cancel before the refreshed deadline");
    let cancel = worker.next().await;
    assert_eq!(cancel.action_type, ActionType::CancelStepRun as i32);
}

struct Durable {
    tx: mpsc::UnboundedSender<DurableTaskRequest>,
    rx: Streaming<DurableTaskResponse>,
}

impl Durable {
    async fn open(ch: &Authed, worker: &str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        // RegisterWorker goes first: its answer is the stream's first message, which brings the headers.
        let register = DurIn::RegisterWorker(DurableTaskRequestRegisterWorker {
            worker_id: worker.into(),
        });
        tx.send(DurableTaskRequest {
            message: Some(register),
        })
        .unwrap();
        let out = V1DispatcherClient::new(ch.clone())
            .durable_task(UnboundedReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let mut d = Self { tx, rx: out };
        assert!(matches!(d.recv().await, DurOut::RegisterWorker(_)));
        d
    }
    fn send(&mut self, m: DurIn) {
        self.tx
            .send(DurableTaskRequest { message: Some(m) })
            .unwrap();
    }
    async fn recv(&mut self) -> DurOut {
        tokio::time::timeout(WAIT, self.rx.next())
            .await
            .expect("durable reply in time")
            .unwrap()
            .unwrap()
            .message
            .unwrap()
    }
}

fn base(key: &str, group: &str) -> Option<BaseMatchCondition> {
    Some(BaseMatchCondition {
        readable_data_key: key.into(),
        or_group_id: group.into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn durable_stream_memo_wait_for_and_worker_status() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    let mut d = task("waiter", &[]);
    d.is_durable = true;
    d.slot_requests = HashMap::from([("durable".into(), 1)]);
    put(&ch, "RustWf", vec![d]).await.unwrap();
    let mut worker = Worker::start(&ch, &["rustwf:waiter"], &[("durable", 5)]).await;
    trigger(&ch, "RustWf", json!({})).await;
    let a = worker.next().await;
    assert_eq!(a.durable_task_invocation_count, Some(1));
    let task = a.task_run_external_id.clone();
    let mut stream = Durable::open(&ch, &worker.id).await;

    stream.send(DurIn::Memo(DurableTaskMemoRequest {
        invocation_count: 1,
        durable_task_external_id: task.clone(),
        key: b"k".to_vec(),
        payload: None,
    }));
    let DurOut::MemoAck(ack) = stream.recv().await else {
        panic!("memo ack expected")
    };
    assert!(!ack.memo_already_existed);
    let memo_ref = ack.r#ref.unwrap();
    stream.send(DurIn::CompleteMemo(DurableTaskCompleteMemoRequest {
        r#ref: Some(memo_ref.clone()),
        payload: b"{\"m\":1}".to_vec(),
        memo_key: b"k".to_vec(),
    }));
    let DurOut::EntryCompleted(done) = stream.recv().await else {
        panic!("memo completion expected")
    };
    assert_eq!(done.r#ref.unwrap().node_id, memo_ref.node_id);

    let group = uuid::Uuid::new_v4().to_string();
    let conditions = DurableEventListenerConditions {
        sleep_conditions: vec![SleepMatchCondition {
            base: base("sleep:30s", &group),
            sleep_for: "30s".into(),
        }],
        user_event_conditions: vec![UserEventMatchCondition {
            base: base("msg", &group),
            user_event_key: "msg".into(),
            event_scope: Some("s1".into()),
            consider_events_since: None,
        }],
    };
    stream.send(DurIn::WaitFor(DurableTaskWaitForRequest {
        invocation_count: 1,
        durable_task_external_id: task.clone(),
        wait_for_conditions: Some(conditions),
        label: None,
    }));
    let DurOut::WaitForAck(ack) = stream.recv().await else {
        panic!("wait ack expected")
    };
    let wait_ref: DurableEventLogEntryRef = ack.r#ref.unwrap();
    assert_eq!(wait_ref.node_id, memo_ref.node_id + 1);

    let mut events = EventsServiceClient::new(ch.clone());
    let push = |scope: &str| PushEventRequest {
        key: "msg".into(),
        payload: r#"{"hi": 1}"#.into(),
        scope: Some(scope.into()),
        ..Default::default()
    };
    events.push(push("other")).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.rx.next())
            .await
            .is_err(),
        "another scope must not wake the waiter"
    );
    events.push(push("s1")).await.unwrap();
    let DurOut::EntryCompleted(done) = stream.recv().await else {
        panic!("completion expected")
    };
    let body: Value = serde_json::from_slice(&done.payload).unwrap();
    assert_eq!(body, json!({"CREATE": {"msg": [{"hi": 1}]}}));

    // worker_status re-delivers completed entries (the path after a reconnect).
    let status = DurableTaskWorkerStatusRequest {
        worker_id: worker.id.clone(),
        waiting_entries: vec![DurableTaskAwaitedCompletedEntry {
            durable_task_external_id: task.clone(),
            branch_id: wait_ref.branch_id,
            node_id: wait_ref.node_id,
            invocation_count: 1,
        }],
        received_satisfied_orders: vec![],
    };
    stream.send(DurIn::WorkerStatus(status));
    assert!(matches!(stream.recv().await, DurOut::EntryCompleted(_)));
    // A call from an invocation that is not the current one is answered with an eviction notice.
    stream.send(DurIn::Memo(DurableTaskMemoRequest {
        invocation_count: 7,
        durable_task_external_id: task.clone(),
        key: b"x".to_vec(),
        payload: None,
    }));
    assert!(matches!(stream.recv().await, DurOut::ServerEvict(_)));
}

#[tokio::test]
async fn legacy_durable_events() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    put(&ch, "RustWf", vec![task("one", &[])]).await.unwrap();
    let mut worker = Worker::start(&ch, &["rustwf:one"], &[]).await;
    trigger(&ch, "RustWf", json!({})).await;
    let a = worker.next().await;
    let mut v1 = V1DispatcherClient::new(ch.clone());
    let bad = RegisterDurableEventRequest {
        task_id: a.task_run_external_id.clone(),
        signal_key: "sleep:1s-0".into(),
        conditions: Some(DurableEventListenerConditions {
            sleep_conditions: vec![SleepMatchCondition {
                base: base("sleep:1s", "not-a-uuid"),
                sleep_for: "1s".into(),
            }],
            user_event_conditions: vec![],
        }),
    };
    assert_eq!(
        v1.register_durable_event(bad.clone())
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let mut good = bad;
    good.conditions.as_mut().unwrap().sleep_conditions[0].base =
        base("sleep:1s", &uuid::Uuid::new_v4().to_string());
    good.conditions.as_mut().unwrap().sleep_conditions[0].sleep_for = "200ms".into();
    v1.register_durable_event(good).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(ListenForDurableEventRequest {
        task_id: a.task_run_external_id.clone(),
        signal_key: "sleep:1s-0".into(),
    })
    .unwrap();
    let mut out = v1
        .listen_for_durable_event(UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let event = tokio::time::timeout(WAIT, out.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let data: Value = serde_json::from_slice(&event.data).unwrap();
    assert_eq!(
        data,
        json!({"CREATE": {"sleep:1s": [{"sleep_duration": "200ms"}]}})
    );
}

#[tokio::test]
async fn durable_children_and_admin_triggers() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    let mut parent = task("parent", &[]);
    parent.is_durable = true;
    parent.slot_requests = HashMap::from([("durable".into(), 1)]);
    put(&ch, "RustWf", vec![parent]).await.unwrap();
    put(
        &ch,
        "ChildWf",
        vec![CreateTaskOpts {
            action: "childwf:child".into(),
            ..task("child", &[])
        }],
    )
    .await
    .unwrap();
    let mut worker = Worker::start(
        &ch,
        &["rustwf:parent", "childwf:child"],
        &[("default", 5), ("durable", 5)],
    )
    .await;
    // v1.AdminService/TriggerWorkflowRun takes JSON bytes.
    let req = acf_sdk::proto::v1::TriggerWorkflowRunRequest {
        workflow_name: "RustWf".into(),
        input: br#"{"p": true}"#.to_vec(),
        ..Default::default()
    };
    let run = AdminServiceClient::new(ch.clone())
        .trigger_workflow_run(req)
        .await
        .unwrap()
        .into_inner()
        .external_id;
    let a = worker.next().await;
    assert_eq!(a.workflow_run_id, run);
    let mut stream = Durable::open(&ch, &worker.id).await;
    let child_req = TriggerWorkflowRequest {
        name: "ChildWf".into(),
        input: r#"{"c": 1}"#.into(),
        parent_id: Some(run.clone()),
        parent_task_run_external_id: Some(a.task_run_external_id.clone()),
        child_index: Some(0),
        ..Default::default()
    };
    stream.send(DurIn::TriggerRuns(
        acf_sdk::proto::v1::DurableTaskTriggerRunsRequest {
            invocation_count: 1,
            durable_task_external_id: a.task_run_external_id.clone(),
            trigger_opts: vec![child_req],
        },
    ));
    let DurOut::TriggerRunsAck(ack) = stream.recv().await else {
        panic!("trigger ack expected")
    };
    assert_eq!(ack.run_entries.len(), 1);
    let child = worker.next().await;
    assert_eq!(
        child.workflow_run_id,
        ack.run_entries[0].workflow_run_external_id
    );
    assert_eq!(child.parent_workflow_run_id.as_deref(), Some(run.as_str()));
    assert_eq!(child.child_workflow_index, Some(0));
    worker
        .event(
            &child,
            StepActionEventType::StepEventTypeCompleted,
            r#"{"out": 2}"#,
        )
        .await
        .unwrap();
    let DurOut::EntryCompleted(done) = stream.recv().await else {
        panic!("child completion expected")
    };
    assert_eq!(done.r#ref.unwrap().node_id, ack.run_entries[0].node_id);
    assert!(!done.is_failure);
    let body: Value = serde_json::from_slice(&done.payload).unwrap();
    assert_eq!(body, json!({"child": {"out": 2}}));
    // Cancelling the parent run through CancelTasks sends CANCEL_STEP_RUN to the worker.
    let cancelled = AdminServiceClient::new(ch.clone())
        .cancel_tasks(acf_sdk::proto::v1::CancelTasksRequest {
            external_ids: vec![run.clone()],
            filter: None,
        })
        .await
        .unwrap()
        .into_inner()
        .cancelled_tasks;
    assert_eq!(cancelled, vec![a.task_run_external_id.clone()]);
    let cancel = worker.next().await;
    assert_eq!(cancel.action_type, ActionType::CancelStepRun as i32);
    assert_eq!(cancel.task_run_external_id, a.task_run_external_id);
}

#[tokio::test]
async fn release_slot_frees_capacity_and_unsubscribe_stops_new_work() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    put(&ch, "RustWf", vec![task("one", &[])]).await.unwrap();
    let mut worker = Worker::start(&ch, &["rustwf:one"], &[("default", 1)]).await;
    trigger(&ch, "RustWf", json!({})).await;
    trigger(&ch, "RustWf", json!({})).await;
    let first = worker.next().await;
    let quiet = tokio::time::timeout(Duration::from_millis(300), worker.actions.next()).await;
    assert!(quiet.is_err(), "one slot: the second run waits");
    let release = acf_sdk::proto::ReleaseSlotRequest {
        task_run_external_id: first.task_run_external_id.clone(),
    };
    worker.client.release_slot(release).await.unwrap();
    let second = worker.next().await;
    assert_ne!(second.task_run_external_id, first.task_run_external_id);
    // The released task still reports its result.
    worker
        .event(&first, StepActionEventType::StepEventTypeCompleted, "{}")
        .await
        .unwrap();
    worker
        .event(&second, StepActionEventType::StepEventTypeCompleted, "{}")
        .await
        .unwrap();
    let unsubscribe = acf_sdk::proto::WorkerUnsubscribeRequest {
        worker_id: worker.id.clone(),
    };
    worker.client.unsubscribe(unsubscribe).await.unwrap();
    trigger(&ch, "RustWf", json!({})).await;
    let quiet = tokio::time::timeout(Duration::from_millis(300), worker.actions.next()).await;
    assert!(quiet.is_err(), "an unsubscribed worker gets no new work");
}

#[tokio::test]
async fn durable_replay_after_a_retry_reuses_the_log() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    let mut d = task("replayed", &[]);
    d.is_durable = true;
    d.retries = 1;
    d.slot_requests = HashMap::from([("durable".into(), 1)]);
    put(&ch, "RustWf", vec![d]).await.unwrap();
    let mut worker = Worker::start(&ch, &["rustwf:replayed"], &[("durable", 5)]).await;
    trigger(&ch, "RustWf", json!({})).await;
    let first = worker.next().await;
    let task = first.task_run_external_id.clone();
    let mut stream = Durable::open(&ch, &worker.id).await;
    let memo = |inv: i32| {
        DurIn::Memo(DurableTaskMemoRequest {
            invocation_count: inv,
            durable_task_external_id: task.clone(),
            key: b"now".to_vec(),
            payload: None,
        })
    };
    let sleep = |inv: i32| {
        DurIn::WaitFor(DurableTaskWaitForRequest {
            invocation_count: inv,
            durable_task_external_id: task.clone(),
            wait_for_conditions: Some(DurableEventListenerConditions {
                sleep_conditions: vec![SleepMatchCondition {
                    base: base("sleep:200ms", &uuid::Uuid::new_v4().to_string()),
                    sleep_for: "200ms".into(),
                }],
                user_event_conditions: vec![],
            }),
            label: None,
        })
    };

    // Invocation 1: memo computed, sleep elapses, then the attempt fails.
    stream.send(memo(1));
    let DurOut::MemoAck(ack) = stream.recv().await else {
        panic!("memo ack")
    };
    stream.send(DurIn::CompleteMemo(DurableTaskCompleteMemoRequest {
        r#ref: ack.r#ref.clone(),
        payload: b"\"t0\"".to_vec(),
        memo_key: b"now".to_vec(),
    }));
    assert!(matches!(stream.recv().await, DurOut::EntryCompleted(_)));
    stream.send(sleep(1));
    assert!(matches!(stream.recv().await, DurOut::WaitForAck(_)));
    let DurOut::EntryCompleted(slept) = stream.recv().await else {
        panic!("sleep completion")
    };
    worker
        .event(&first, StepActionEventType::StepEventTypeFailed, "boom")
        .await
        .unwrap();

    // Invocation 2 replays: the memo exists and the sleep is already satisfied.
    let second = worker.next().await;
    assert_eq!(second.retry_count, 1);
    assert_eq!(second.durable_task_invocation_count, Some(2));
    stream.send(memo(2));
    let DurOut::MemoAck(again) = stream.recv().await else {
        panic!("memo ack on replay")
    };
    assert!(again.memo_already_existed);
    assert_eq!(again.memo_result_payload.as_deref(), Some(&b"\"t0\""[..]));
    assert_eq!(
        again.r#ref.as_ref().unwrap().node_id,
        ack.r#ref.as_ref().unwrap().node_id
    );
    assert!(matches!(stream.recv().await, DurOut::EntryCompleted(_)));
    stream.send(sleep(2));
    assert!(matches!(stream.recv().await, DurOut::WaitForAck(_)));
    let DurOut::EntryCompleted(replayed) = stream.recv().await else {
        panic!("immediate completion")
    };
    assert_eq!(replayed.payload, slept.payload);
    assert_eq!(replayed.r#ref.unwrap().invocation_count, 2);
    // The old invocation is stale now.
    stream.send(memo(1));
    assert!(matches!(stream.recv().await, DurOut::ServerEvict(_)));
    // Calls beyond the recorded log open new nodes.
    stream.send(DurIn::Memo(DurableTaskMemoRequest {
        invocation_count: 2,
        durable_task_external_id: task.clone(),
        key: b"later".to_vec(),
        payload: None,
    }));
    let DurOut::MemoAck(fresh) = stream.recv().await else {
        panic!("memo ack for a new node")
    };
    assert!(!fresh.memo_already_existed);
    assert_eq!(fresh.r#ref.unwrap().node_id, 3);
}

#[tokio::test]
async fn v0_listen_and_upserted_labels() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    put(&ch, "RustWf", vec![task("one", &[])]).await.unwrap();
    let mut client = DispatcherClient::new(ch.clone());
    let req = WorkerRegisterRequest {
        worker_name: "legacy-worker".into(),
        actions: vec!["rustwf:one".into()],
        slots: Some(2),
        ..Default::default()
    };
    let id = client.register(req).await.unwrap().into_inner().worker_id;
    // Legacy `Listen`: the server heartbeats for the worker, no Heartbeat calls needed.
    let mut listener = client.clone();
    let request = WorkerListenRequest {
        worker_id: id.clone(),
    };
    let mut actions = open_stream(async move { listener.listen(request).await });
    let labels = acf_sdk::proto::UpsertWorkerLabelsRequest {
        worker_id: id.clone(),
        labels: HashMap::from([(
            "zone".to_owned(),
            acf_sdk::proto::WorkerLabels {
                str_value: Some("eu".into()),
                int_value: None,
            },
        )]),
    };
    client.upsert_worker_labels(labels).await.unwrap();
    let wanted = |zone: &str| TriggerWorkflowRequest {
        name: "RustWf".into(),
        desired_worker_labels: HashMap::from([(
            "zone".to_owned(),
            acf_sdk::proto::v1::DesiredWorkerLabels {
                str_value: Some(zone.into()),
                required: Some(true),
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    let mut wf = WorkflowServiceClient::new(ch.clone());
    wf.trigger_workflow(wanted("us")).await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), actions.next()).await;
    assert!(
        quiet.is_err(),
        "a required label the worker lacks keeps the run queued"
    );
    let run = wf
        .trigger_workflow(wanted("eu"))
        .await
        .unwrap()
        .into_inner()
        .workflow_run_id;
    let action = tokio::time::timeout(WAIT, actions.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(action.workflow_run_id, run);
}

#[tokio::test]
async fn scheduled_runs_start_at_their_time() {
    let engine = Engine::builder().start().await.unwrap();
    let ch = connect(&engine).await;
    put(&ch, "RustWf", vec![task("one", &[])]).await.unwrap();
    let mut worker = Worker::start(&ch, &["rustwf:one"], &[]).await;
    let at = std::time::SystemTime::now() + Duration::from_millis(600);
    let mut req = acf_sdk::proto::ScheduleWorkflowRequest {
        name: "RustWf".into(),
        schedules: vec![Default::default()],
        input: r#"{"scheduled": true}"#.into(),
        ..Default::default()
    };
    let since_epoch = at.duration_since(std::time::UNIX_EPOCH).unwrap();
    req.schedules[0].seconds = i64::try_from(since_epoch.as_secs()).unwrap();
    req.schedules[0].nanos = i32::try_from(since_epoch.subsec_nanos()).unwrap();
    let version = WorkflowServiceClient::new(ch.clone())
        .schedule_workflow(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.scheduled_workflows.len(), 1);
    let early = tokio::time::timeout(Duration::from_millis(300), worker.actions.next()).await;
    assert!(early.is_err(), "nothing before the scheduled time");
    let action = worker.next().await;
    assert!(std::time::SystemTime::now() >= at - Duration::from_millis(50));
    let payload: Value = serde_json::from_str(&action.action_payload).unwrap();
    assert_eq!(payload["input"], json!({"scheduled": true}));
}
