//! Against an engine older than v0.78.23 / v0.80.0 (a scripted fake): the worker registers with the
//! deprecated `slots` (never together with `slot_config`), durable waits use `RegisterDurableEvent` +
//! `ListenForDurableEvent`, and step events echo the action's `retry_count`.

use acf_tests::sdk_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use acf_sdk::proto::events_service_server::{EventsService, EventsServiceServer};
use acf_sdk::proto::v1::admin_service_server::{AdminService, AdminServiceServer};
use acf_sdk::proto::v1::v1_dispatcher_server::{V1Dispatcher, V1DispatcherServer};
use acf_sdk::proto::v1::*;
use acf_sdk::proto::*;
use acf_sdk::{Context, StepError, TaskDefinition, WorkflowBuilder};
use sdk_support::{
    BoxStream, ScriptedDispatcher, eventually, fake_dispatcher_server, fake_engine_client, spawn,
    within,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::CompressionEncoding::Gzip;
use tonic::{Request, Response, Status, Streaming};

#[derive(Default)]
struct Seen {
    register: Option<WorkerRegisterRequest>,
    events: Vec<StepActionEvent>,
    durable_registrations: Vec<RegisterDurableEventRequest>,
    listens: Vec<ListenForDurableEventRequest>,
    logs: Vec<PutLogRequest>,
}

#[derive(Clone)]
struct Legacy(Arc<Mutex<Seen>>);

const TASK_RUN: &str = "6f1d3c3e-7a60-4f5e-9d3b-0d7f1f6f4b11";

fn lock(l: &Legacy) -> std::sync::MutexGuard<'_, Seen> {
    l.0.lock().unwrap()
}

#[tonic::async_trait]
impl ScriptedDispatcher for Legacy {
    async fn register(&self, r: WorkerRegisterRequest) -> Result<WorkerRegisterResponse, Status> {
        lock(self).register = Some(r);
        Ok(WorkerRegisterResponse {
            tenant_id: uuid::Uuid::nil().to_string(),
            worker_id: "0b6c5d43-1c7e-4ad1-8a55-3c2f8f0e2a10".into(),
            worker_name: "legacy".into(),
        })
    }
    async fn listen_v2(&self) -> Result<BoxStream<AssignedAction>, Status> {
        // One durable assignment (third attempt), then silence.
        let action = AssignedAction {
            tenant_id: uuid::Uuid::nil().to_string(),
            workflow_run_id: "2b1a0c7e-0c55-4f4c-9d1c-7f7e5a1d2c33".into(),
            job_id: "s".into(),
            job_name: "waiter".into(),
            job_run_id: TASK_RUN.into(),
            task_id: "s".into(),
            task_run_external_id: TASK_RUN.into(),
            action_id: "legacy-wf:waiter".into(),
            action_type: ActionType::StartStepRun as i32,
            action_payload: r#"{"input":{"scope":"c1"},"parents":{},"triggers":{}}"#.into(),
            task_name: "waiter".into(),
            retry_count: 2,
            ..AssignedAction::default()
        };
        let first = tokio_stream::once(Ok(action));
        Ok(Box::pin(tokio_stream::StreamExt::chain(
            first,
            tokio_stream::pending(),
        )))
    }
    async fn step_action_event(&self, e: StepActionEvent) -> Result<ActionEventResponse, Status> {
        lock(self).events.push(e);
        Ok(ActionEventResponse::default())
    }
    fn version(&self) -> &'static str {
        "v0.70.1"
    }
}

#[tonic::async_trait]
impl AdminService for Legacy {
    async fn put_workflow(
        &self,
        r: Request<CreateWorkflowVersionRequest>,
    ) -> Result<Response<CreateWorkflowVersionResponse>, Status> {
        Ok(Response::new(CreateWorkflowVersionResponse {
            id: "v".into(),
            workflow_id: r.into_inner().name,
        }))
    }
    async fn cancel_tasks(
        &self,
        _: Request<CancelTasksRequest>,
    ) -> Result<Response<CancelTasksResponse>, Status> {
        Err(Status::unimplemented("x"))
    }
    async fn replay_tasks(
        &self,
        _: Request<ReplayTasksRequest>,
    ) -> Result<Response<ReplayTasksResponse>, Status> {
        Err(Status::unimplemented("x"))
    }
    async fn trigger_workflow_run(
        &self,
        _: Request<TriggerWorkflowRunRequest>,
    ) -> Result<Response<TriggerWorkflowRunResponse>, Status> {
        Err(Status::unimplemented("x"))
    }
    async fn get_run_details(
        &self,
        _: Request<GetRunDetailsRequest>,
    ) -> Result<Response<GetRunDetailsResponse>, Status> {
        Err(Status::unimplemented("x"))
    }
    async fn branch_durable_task(
        &self,
        _: Request<BranchDurableTaskRequest>,
    ) -> Result<Response<BranchDurableTaskResponse>, Status> {
        Err(Status::unimplemented("x"))
    }
}

#[tonic::async_trait]
impl EventsService for Legacy {
    async fn push(&self, _: Request<PushEventRequest>) -> Result<Response<Event>, Status> {
        Err(Status::unimplemented("x"))
    }
    async fn bulk_push(
        &self,
        _: Request<BulkPushEventRequest>,
    ) -> Result<Response<Events>, Status> {
        Err(Status::unimplemented("x"))
    }
    async fn replay_single_event(
        &self,
        _: Request<ReplayEventRequest>,
    ) -> Result<Response<Event>, Status> {
        Err(Status::unimplemented("x"))
    }
    async fn put_log(&self, r: Request<PutLogRequest>) -> Result<Response<PutLogResponse>, Status> {
        lock(self).logs.push(r.into_inner());
        Ok(Response::new(PutLogResponse {}))
    }
    async fn put_stream_event(
        &self,
        _: Request<PutStreamEventRequest>,
    ) -> Result<Response<PutStreamEventResponse>, Status> {
        Err(Status::unimplemented("x"))
    }
}

#[tonic::async_trait]
impl V1Dispatcher for Legacy {
    type DurableTaskStream = BoxStream<DurableTaskResponse>;
    async fn durable_task(
        &self,
        _: Request<Streaming<DurableTaskRequest>>,
    ) -> Result<Response<Self::DurableTaskStream>, Status> {
        Err(Status::unimplemented(
            "an old engine has no DurableTask stream",
        ))
    }
    async fn register_durable_event(
        &self,
        r: Request<RegisterDurableEventRequest>,
    ) -> Result<Response<RegisterDurableEventResponse>, Status> {
        lock(self).durable_registrations.push(r.into_inner());
        Ok(Response::new(RegisterDurableEventResponse {}))
    }
    type ListenForDurableEventStream = BoxStream<DurableEvent>;
    async fn listen_for_durable_event(
        &self,
        r: Request<Streaming<ListenForDurableEventRequest>>,
    ) -> Result<Response<Self::ListenForDurableEventStream>, Status> {
        let mut incoming = r.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let this = self.clone();
        tokio::spawn(async move {
            while let Ok(Some(sub)) = incoming.message().await {
                lock(&this).listens.push(sub.clone());
                let data = json!({"CREATE": {"reply": [{"text": "legacy hello"}]}})
                    .to_string()
                    .into_bytes();
                let _ = tx
                    .send(Ok(DurableEvent {
                        task_id: sub.task_id,
                        signal_key: sub.signal_key,
                        data,
                    }))
                    .await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_engine_gets_legacy_slots_and_legacy_durable_waits() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Legacy(Arc::new(Mutex::new(Seen::default())));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(fake_dispatcher_server(fake.clone()))
            .add_service(
                AdminServiceServer::new(fake.clone())
                    .accept_compressed(Gzip)
                    .send_compressed(Gzip),
            )
            .add_service(
                V1DispatcherServer::new(fake.clone())
                    .accept_compressed(Gzip)
                    .send_compressed(Gzip),
            )
            .add_service(
                EventsServiceServer::new(fake.clone())
                    .accept_compressed(Gzip)
                    .send_compressed(Gzip),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let client = fake_engine_client(addr);
    let wf = WorkflowBuilder::new("legacy-wf")
        .task(
            TaskDefinition::new("waiter").durable(true),
            |input: Value, ctx: Context| async move {
                let scope = input["scope"].as_str().unwrap_or_default().to_owned();
                // Both reach PutLog: the context call directly, the tracing event through the log layer.
                ctx.log("waiting for a reply").await?;
                tracing::warn!(target: "app", scope = %scope, "traced inside the step");
                let got = ctx
                    .wait_for_event("reply", Some(&scope), None, Some(Duration::from_secs(30)))
                    .await?;
                Ok::<_, StepError>(json!({ "got": got }))
            },
        )
        .build()
        .unwrap();
    use tracing_subscriber::prelude::*;
    // Global: steps run on the runtime's worker threads. Lines route to the worker that ran the step, so the
    // other tests of this binary are not affected.
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(acf_sdk::log_layer::EngineLogLayer::new()),
    )
    .expect("first subscriber");
    let (handle, join) = spawn(client.worker("legacy").durable_slots(5).workflow(wf));

    eventually(Duration::from_secs(20), || async {
        lock(&fake)
            .events
            .iter()
            .any(|e| e.event_type == StepActionEventType::StepEventTypeCompleted as i32)
    })
    .await;
    eventually(Duration::from_secs(20), || async {
        lock(&fake).logs.len() >= 2
    })
    .await;
    {
        let seen = lock(&fake);
        let logs: Vec<_> = seen
            .logs
            .iter()
            .map(|l| (l.message.as_str(), l.level.as_deref(), l.task_retry_count))
            .collect();
        assert!(
            logs.contains(&("waiting for a reply", Some("INFO"), Some(2))),
            "{logs:?}"
        );
        assert!(
            logs.contains(&("traced inside the step scope=c1", Some("WARN"), Some(2))),
            "{logs:?}"
        );
        assert!(seen.logs.iter().all(|l| l.task_run_external_id == TASK_RUN));
        let register = seen.register.as_ref().unwrap();
        assert_eq!(
            register.slots,
            Some(5),
            "legacy engines get the deprecated `slots`"
        );
        assert!(
            register.slot_config.is_empty(),
            "never `slots` together with `slot_config`"
        );
        assert_eq!(register.actions, ["legacy-wf:waiter"]);

        let reg = &seen.durable_registrations[0];
        assert_eq!(reg.task_id, TASK_RUN);
        let conditions = reg.conditions.as_ref().unwrap();
        let event = &conditions.user_event_conditions[0];
        let sleep = &conditions.sleep_conditions[0];
        assert_eq!(event.user_event_key, "reply");
        assert_eq!(event.event_scope.as_deref(), Some("c1"));
        assert_eq!(sleep.sleep_for, "30s");
        // Event OR timeout: one shared or-group.
        assert_eq!(
            event.base.as_ref().unwrap().or_group_id,
            sleep.base.as_ref().unwrap().or_group_id
        );
        assert_eq!(seen.listens[0].signal_key, reg.signal_key);

        let completed = seen
            .events
            .iter()
            .find(|e| e.event_type == StepActionEventType::StepEventTypeCompleted as i32)
            .unwrap();
        assert_eq!(
            completed.retry_count,
            Some(2),
            "events echo the attempt's retry_count"
        );
        assert_eq!(completed.task_run_external_id, TASK_RUN);
        let output: Value = serde_json::from_str(&completed.event_payload).unwrap();
        assert_eq!(output, json!({ "got": { "text": "legacy hello" } }));
    }

    handle.shutdown();
    within(30, join).await.unwrap().unwrap();
    server.abort();
}
