//! Shared harness of the engine interop tests: one embedded engine per test, Python SDK worker
//! processes (killed with their process group on drop), raw gRPC clients and the JSON-lines records
//! the Python tasks write into a per-test directory.

use crate::peer::Background;
use crate::python::{PythonScript, script};
use acf_sdk::engine::{EngineBuilder, EngineHandle};
use acf_sdk::proto::WorkerRegisterRequest;
use acf_sdk::proto::dispatcher_client::DispatcherClient;
use acf_sdk::proto::v1::admin_service_client::AdminServiceClient;
use acf_sdk::proto::v1::{
    CancelTasksRequest, GetRunDetailsRequest, GetRunDetailsResponse, RunStatus,
    TriggerWorkflowRequest,
};
use acf_sdk::proto::workflow_service_client::WorkflowServiceClient;
use serde_json::Value;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Adds `authorization: bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// An authenticated channel.
pub type Authed = InterceptedService<Channel, Bearer>;

/// A Python worker process (its process group SIGKILLed on drop).
pub struct PyWorker {
    /// The worker name given to the SDK.
    pub name: String,
    process: Background,
}

impl PyWorker {
    /// SIGKILLs the worker's whole process group.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// One engine, its temp directory and the Python workers of a test.
pub struct Harness {
    /// The embedded engine.
    pub engine: EngineHandle,
    /// Where the Python tasks write their records.
    pub dir: TempDir,
    /// The Python workers started so far.
    pub workers: Vec<PyWorker>,
}

impl Harness {
    /// Starts an engine with Hatchet's defaults.
    pub async fn start() -> Self {
        Self::with(acf_sdk::engine::Engine::builder()).await
    }

    /// Starts an engine from a configured builder.
    pub async fn with(builder: EngineBuilder) -> Self {
        let engine = builder.start().await.expect("engine starts");
        Self {
            engine,
            dir: tempfile::tempdir().expect("temp dir"),
            workers: Vec::new(),
        }
    }

    fn script(&self, name: &str) -> PythonScript {
        PythonScript::new(script(name))
            .env("ACF_TEST_DIR", self.dir.path())
            .envs(self.engine.client_env())
    }

    /// Spawns `interop_worker.py <name> <slots> <workflows>`; output goes to `<dir>/<name>.log`.
    pub fn worker(&mut self, name: &str, slots: u32, workflows: &[&str]) -> usize {
        let process = self
            .script("interop_worker.py")
            .arg(name)
            .arg(slots.to_string())
            .arg(workflows.join(","))
            .spawn(self.dir.path().join(format!("{name}.log")));
        self.workers.push(PyWorker {
            name: name.to_owned(),
            process,
        });
        self.workers.len() - 1
    }

    /// Runs `interop_client.py <args>` (off the async runtime) and returns its `RESULT` JSON.
    pub async fn client(&self, args: &[&str]) -> Value {
        let mut s = self
            .script("interop_client.py")
            .timeout(Duration::from_secs(90));
        for a in args {
            s = s.arg(a);
        }
        let out = s.run_async().await;
        out.assert_success();
        let line = out.result_line().unwrap_or_else(|| {
            panic!(
                "client printed no RESULT line\nstdout:\n{}\nstderr:\n{}\n{}",
                out.stdout,
                out.stderr,
                self.logs()
            )
        });
        serde_json::from_str(line).expect("RESULT is JSON")
    }

    /// Every worker log, for failure messages.
    pub fn logs(&self) -> String {
        self.workers
            .iter()
            .map(|w| format!("---- worker {} ----\n{}", w.name, w.process.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Records written by the Python tasks to `<dir>/<name>.jsonl`.
    pub fn records(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.jsonl")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until `pred` holds for the records of `name`.
    pub async fn wait_records(
        &self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.records(name);
            if pred(&records) {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {name} records; got {records:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn channel(&self) -> Authed {
        connect(&self.engine).await
    }

    /// Triggers a run through `WorkflowService/TriggerWorkflow`.
    pub async fn trigger(&self, workflow: &str, input: Value) -> String {
        let mut client = WorkflowServiceClient::new(self.channel().await);
        let req = TriggerWorkflowRequest {
            name: workflow.into(),
            input: input.to_string(),
            ..Default::default()
        };
        client
            .trigger_workflow(req)
            .await
            .expect("trigger")
            .into_inner()
            .workflow_run_id
    }

    /// `GetRunDetails`.
    pub async fn details(&self, run: &str) -> GetRunDetailsResponse {
        let mut client = AdminServiceClient::new(self.channel().await);
        client
            .get_run_details(GetRunDetailsRequest {
                external_id: run.into(),
            })
            .await
            .expect("details")
            .into_inner()
    }

    /// Polls `GetRunDetails` until the run is done.
    pub async fn wait_run(&self, run: &str, timeout: Duration) -> GetRunDetailsResponse {
        let deadline = Instant::now() + timeout;
        loop {
            let details = self.details(run).await;
            if details.done {
                return details;
            }
            assert!(
                Instant::now() < deadline,
                "run {run} not done after {timeout:?}: {details:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `v1.AdminService/CancelTasks` for a run.
    pub async fn cancel(&self, run: &str) -> Vec<String> {
        let mut client = AdminServiceClient::new(self.channel().await);
        let req = CancelTasksRequest {
            external_ids: vec![run.into()],
            filter: None,
        };
        client
            .cancel_tasks(req)
            .await
            .expect("cancel")
            .into_inner()
            .cancelled_tasks
    }
}

/// The status of a finished run as the enum.
pub fn status(details: &GetRunDetailsResponse) -> RunStatus {
    RunStatus::try_from(details.status).expect("known status")
}

/// A task's output as JSON.
pub fn output(details: &GetRunDetailsResponse, task: &str) -> Value {
    let bytes = details
        .task_runs
        .get(task)
        .and_then(|t| t.output.clone())
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

impl Harness {
    /// Waits until a workflow was registered (its worker is up).
    pub async fn wait_registered(&self, workflow: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self
            .engine
            .registered_workflows()
            .iter()
            .any(|w| w.name == workflow)
        {
            assert!(
                Instant::now() < deadline,
                "{workflow} never registered\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An authenticated channel to an engine.
pub async fn connect(engine: &EngineHandle) -> Authed {
    connect_with(engine.addr(), &engine.token()).await
}

/// An authenticated channel with an explicit token.
pub async fn connect_with(addr: std::net::SocketAddr, token: &str) -> Authed {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("engine reachable");
    let token: MetadataValue<Ascii> = format!("bearer {token}").parse().expect("header");
    InterceptedService::new(channel, Bearer(token))
}

/// Registers a raw worker named `name` for `actions` on the `default` service with `slots` (slot type →
/// count) and returns the id the engine gave it.
pub async fn register_worker(
    client: &mut DispatcherClient<Authed>,
    name: &str,
    actions: &[&str],
    slots: &[(&str, i32)],
) -> String {
    let req = WorkerRegisterRequest {
        worker_name: name.into(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        services: vec!["default".into()],
        slot_config: slots.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        ..Default::default()
    };
    client
        .register(req)
        .await
        .expect("register")
        .into_inner()
        .worker_id
}

/// `tests/python/rest_api.py <mode> <worker>` against `engine`, its records under `dir`: `worker` mode
/// serves the `RestDag` workflow, `client` mode runs the REST checks against that worker.
pub fn rest_api_script(
    engine: &EngineHandle,
    dir: &std::path::Path,
    mode: &str,
    worker: &str,
) -> PythonScript {
    PythonScript::new(script("rest_api.py"))
        .env("ACF_TEST_DIR", dir)
        .arg(mode)
        .arg(worker)
        .envs(engine.client_env())
}
