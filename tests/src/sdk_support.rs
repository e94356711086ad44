//! Shared helpers of the `sdk_*` tests: an embedded engine, a client for it, a worker in the background.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use acf_sdk::engine::{Engine, EngineHandle};
use acf_sdk::{Client, ClientConfig, WorkerBuilder, WorkerHandle};

/// Starts an engine on a free port.
pub async fn engine() -> EngineHandle {
    Engine::builder().start().await.expect("engine starts")
}

/// Starts an engine on a free port that records every request it receives (`EngineHandle::requests`).
pub async fn recording_engine() -> EngineHandle {
    Engine::builder()
        .record_requests(true)
        .start()
        .await
        .expect("engine starts")
}

/// A client configured from the engine's `client_env()` (plus `extra` variables).
pub fn client_with(engine: &EngineHandle, extra: &[(&str, &str)]) -> Client {
    let extra = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    client_from_env(engine.client_env().into_iter().chain(extra))
}

/// A client configured from `HATCHET_CLIENT_*` variables (an engine's `client_env()`, taken where the
/// engine handle is not at hand, e.g. on another runtime); later entries override earlier ones.
pub fn client_from_env(env: impl IntoIterator<Item = (String, String)>) -> Client {
    let env: HashMap<String, String> = env.into_iter().collect();
    Client::new(ClientConfig::from_lookup(|k| env.get(k).cloned()).expect("config"))
        .expect("client")
}

/// A client for the engine.
pub fn client(engine: &EngineHandle) -> Client {
    client_with(engine, &[])
}

/// Runs the worker in the background (signals off); returns its handle and join handle.
pub fn spawn(
    builder: WorkerBuilder,
) -> (WorkerHandle, tokio::task::JoinHandle<acf_sdk::Result<()>>) {
    let worker = builder
        .handle_signals(false)
        .build()
        .expect("worker builds");
    let handle = worker.handle();
    (handle, tokio::spawn(worker.run()))
}

/// A worker running in the background (see [`serve`]).
pub struct ServedWorker {
    /// The running worker's handle (status, shutdown).
    pub handle: WorkerHandle,
    join: tokio::task::JoinHandle<acf_sdk::Result<()>>,
}

impl ServedWorker {
    /// Shuts the worker down and waits (30 s at most) for it to exit cleanly.
    ///
    /// # Panics
    ///
    /// When it does not exit in time or exits with an error.
    pub async fn stop(self) {
        self.handle.shutdown();
        within(30, self.join)
            .await
            .expect("the worker task")
            .expect("a clean exit");
    }
}

/// Runs the worker in the background (signals off, see [`spawn`]) and waits until it is [`ready`].
pub async fn serve(builder: WorkerBuilder) -> ServedWorker {
    let (handle, join) = spawn(builder);
    ready(&handle).await;
    ServedWorker { handle, join }
}

/// Waits until the worker is ready (registered, stream connected).
pub async fn ready(handle: &WorkerHandle) {
    eventually(Duration::from_secs(20), || async {
        handle.status().not_ready_reason().is_none()
    })
    .await;
}

/// Polls `cond` every 20 ms until it holds; panics after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < timeout,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `fut` with a generous deadline (loaded CI boxes).
pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("timed out")
}

/// A boxed gRPC response stream, as the fake engines' streaming methods return.
pub type BoxStream<T> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, tonic::Status>> + Send>>;

/// The parts of a scripted Hatchet dispatcher that a fake-engine test varies; [`FakeDispatcher`] answers
/// everything else (`UNIMPLEMENTED`, and an empty `Unsubscribe`).
#[tonic::async_trait]
pub trait ScriptedDispatcher: Send + Sync + 'static {
    /// `Register`.
    async fn register(
        &self,
        request: acf_sdk::proto::WorkerRegisterRequest,
    ) -> Result<acf_sdk::proto::WorkerRegisterResponse, tonic::Status>;
    /// `ListenV2`.
    async fn listen_v2(&self) -> Result<BoxStream<acf_sdk::proto::AssignedAction>, tonic::Status>;
    /// `Heartbeat`: accepted by default.
    async fn heartbeat(&self) -> Result<acf_sdk::proto::HeartbeatResponse, tonic::Status> {
        Ok(acf_sdk::proto::HeartbeatResponse {})
    }
    /// `SendStepActionEvent`: unimplemented by default.
    async fn step_action_event(
        &self,
        _event: acf_sdk::proto::StepActionEvent,
    ) -> Result<acf_sdk::proto::ActionEventResponse, tonic::Status> {
        Err(tonic::Status::unimplemented("x"))
    }
    /// The engine version `GetVersion` reports.
    fn version(&self) -> &'static str;
}

/// Serves a [`ScriptedDispatcher`] as Hatchet's `Dispatcher` service.
pub struct FakeDispatcher<T>(pub T);

/// Hatchet's `Dispatcher` service for a scripted fake, gzip both ways (as the engine).
pub fn fake_dispatcher_server<T: ScriptedDispatcher>(
    fake: T,
) -> acf_sdk::proto::dispatcher_server::DispatcherServer<FakeDispatcher<T>> {
    use tonic::codec::CompressionEncoding::Gzip;
    acf_sdk::proto::dispatcher_server::DispatcherServer::new(FakeDispatcher(fake))
        .accept_compressed(Gzip)
        .send_compressed(Gzip)
}

/// A client for a fake engine listening on `addr` (unsigned token, no TLS).
pub fn fake_engine_client(addr: std::net::SocketAddr) -> Client {
    let token = acf_sdk::config::unsigned_token(&serde_json::json!({
        "sub": uuid::Uuid::nil().to_string(),
        "server_url": "http://localhost",
        "grpc_broadcast_address": addr.to_string(),
    }));
    let config = ClientConfig::from_token(token)
        .unwrap()
        .with_tls_strategy(acf_sdk::config::TlsStrategy::None);
    Client::new(config).unwrap()
}

mod fake_dispatcher {
    use acf_sdk::proto::dispatcher_server::Dispatcher;
    use acf_sdk::proto::*;
    use tonic::{Request, Response, Status, Streaming};

    use super::{BoxStream, FakeDispatcher, ScriptedDispatcher};

    #[tonic::async_trait]
    impl<T: ScriptedDispatcher> Dispatcher for FakeDispatcher<T> {
        async fn register(
            &self,
            r: Request<WorkerRegisterRequest>,
        ) -> Result<Response<WorkerRegisterResponse>, Status> {
            self.0.register(r.into_inner()).await.map(Response::new)
        }
        type ListenStream = BoxStream<AssignedAction>;
        async fn listen(
            &self,
            _: Request<WorkerListenRequest>,
        ) -> Result<Response<Self::ListenStream>, Status> {
            Err(Status::unimplemented("listen"))
        }
        type ListenV2Stream = BoxStream<AssignedAction>;
        async fn listen_v2(
            &self,
            _: Request<WorkerListenRequest>,
        ) -> Result<Response<Self::ListenV2Stream>, Status> {
            self.0.listen_v2().await.map(Response::new)
        }
        async fn heartbeat(
            &self,
            _: Request<HeartbeatRequest>,
        ) -> Result<Response<HeartbeatResponse>, Status> {
            self.0.heartbeat().await.map(Response::new)
        }
        type SubscribeToWorkflowEventsStream = BoxStream<WorkflowEvent>;
        async fn subscribe_to_workflow_events(
            &self,
            _: Request<SubscribeToWorkflowEventsRequest>,
        ) -> Result<Response<Self::SubscribeToWorkflowEventsStream>, Status> {
            Err(Status::unimplemented("subscribe"))
        }
        type SubscribeToWorkflowRunsStream = BoxStream<WorkflowRunEvent>;
        async fn subscribe_to_workflow_runs(
            &self,
            _: Request<Streaming<SubscribeToWorkflowRunsRequest>>,
        ) -> Result<Response<Self::SubscribeToWorkflowRunsStream>, Status> {
            Err(Status::unimplemented("subscribe"))
        }
        async fn send_step_action_event(
            &self,
            r: Request<StepActionEvent>,
        ) -> Result<Response<ActionEventResponse>, Status> {
            self.0
                .step_action_event(r.into_inner())
                .await
                .map(Response::new)
        }
        async fn send_batch_action_event(
            &self,
            _: Request<BatchActionEvent>,
        ) -> Result<Response<ActionEventResponse>, Status> {
            Err(Status::unimplemented("x"))
        }
        async fn send_group_key_action_event(
            &self,
            _: Request<GroupKeyActionEvent>,
        ) -> Result<Response<ActionEventResponse>, Status> {
            Err(Status::unimplemented("x"))
        }
        async fn put_overrides_data(
            &self,
            _: Request<OverridesData>,
        ) -> Result<Response<OverridesDataResponse>, Status> {
            Err(Status::unimplemented("x"))
        }
        async fn unsubscribe(
            &self,
            _: Request<WorkerUnsubscribeRequest>,
        ) -> Result<Response<WorkerUnsubscribeResponse>, Status> {
            Ok(Response::new(WorkerUnsubscribeResponse::default()))
        }
        async fn refresh_timeout(
            &self,
            _: Request<RefreshTimeoutRequest>,
        ) -> Result<Response<RefreshTimeoutResponse>, Status> {
            Err(Status::unimplemented("x"))
        }
        async fn release_slot(
            &self,
            _: Request<ReleaseSlotRequest>,
        ) -> Result<Response<ReleaseSlotResponse>, Status> {
            Err(Status::unimplemented("x"))
        }
        async fn restore_evicted_task(
            &self,
            _: Request<RestoreEvictedTaskRequest>,
        ) -> Result<Response<RestoreEvictedTaskResponse>, Status> {
            Err(Status::unimplemented("x"))
        }
        async fn upsert_worker_labels(
            &self,
            _: Request<UpsertWorkerLabelsRequest>,
        ) -> Result<Response<UpsertWorkerLabelsResponse>, Status> {
            Err(Status::unimplemented("x"))
        }
        async fn get_version(
            &self,
            _: Request<GetVersionRequest>,
        ) -> Result<Response<GetVersionResponse>, Status> {
            Ok(Response::new(GetVersionResponse {
                version: self.0.version().into(),
            }))
        }
    }
}
