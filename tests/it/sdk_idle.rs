//! An idle worker against an engine that, like Hatchet's grpc-go dispatcher, sends a stream's response
//! headers only with its first message: the worker is ready within a second, heartbeats right after
//! `Register` and then on its interval, registers its workflows once, and a worker process exits 0 within a
//! second of SIGTERM after sending `Unsubscribe`.

use acf_tests::sdk_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acf_sdk::engine::RecordedRequest;
use acf_sdk::proto::{WorkerListenRequest, WorkerUnsubscribeRequest};
use acf_sdk::{Context, StepError, TaskDefinition, WorkflowBuilder};
use sdk_support::{client, recording_engine, spawn, within};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the issue demands ("ready within 1 s", "exits within 1 s of SIGTERM").
const BOUND: Duration = Duration::from_secs(1);

fn idle_workflow() -> acf_sdk::FnWorkflow {
    WorkflowBuilder::new("idle-wf")
        .task(
            TaskDefinition::new("never"),
            |_: Value, _ctx: Context| async move { Ok::<_, StepError>(json!({})) },
        )
        .build()
        .unwrap()
}

fn of(requests: &[RecordedRequest], rpc: &str) -> Vec<RecordedRequest> {
    requests.iter().filter(|r| r.rpc == rpc).cloned().collect()
}

/// The status code of `GET path` on the health server.
async fn http_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_is_ready_within_a_second() {
    let engine = recording_engine().await;
    let client = client(&engine);
    let started = Instant::now();
    let (handle, join) = spawn(
        client
            .worker("idle-ready")
            .health_server(Some(([127, 0, 0, 1], 0).into()))
            .workflow(idle_workflow()),
    );
    let ready_at = loop {
        if let Some(addr) = handle.health_addr()
            && http_status(addr, "/readyz").await == 200
        {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never ready: {:?}",
            handle.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(ready_at < BOUND, "ready after {ready_at:?}");
    // Nothing was ever sent on the action stream, so the engine has not answered its open: readiness came
    // from the ListenV2 request (on its own fresh connection, so it may land just after the heartbeat) and
    // an accepted heartbeat.
    sdk_support::eventually(BOUND, || async {
        of(&engine.requests(), "Dispatcher/ListenV2").len() == 1
    })
    .await;
    handle.shutdown();
    within(5, join).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_start_right_after_register_then_follow_the_interval() {
    let engine = recording_engine().await;
    let client = client(&engine);
    let interval = Duration::from_secs(2);
    let (handle, join) = spawn(
        client
            .worker("idle-heartbeat")
            .heartbeat_interval(interval)
            .workflow(idle_workflow()),
    );
    within(10, handle.ready()).await;
    tokio::time::sleep(interval + interval / 2).await;
    let requests = engine.requests();
    let register = of(&requests, "Dispatcher/Register");
    assert_eq!(register.len(), 1, "one Register per start");
    let beats = of(&requests, "Dispatcher/Heartbeat");
    assert!(beats.len() >= 2, "{} heartbeats", beats.len());
    let first = beats[0].at.duration_since(register[0].at);
    assert!(
        first < interval / 2,
        "first heartbeat {first:?} after Register, not right after it"
    );
    let gap = beats[1].at.duration_since(beats[0].at);
    assert!(
        gap >= interval - Duration::from_millis(200) && gap < interval * 2,
        "second heartbeat {gap:?} after the first, interval {interval:?}"
    );
    // Each workflow is registered once per worker start.
    assert_eq!(engine.registered_workflows().len(), 1);
    assert_eq!(of(&requests, "v1.AdminService/PutWorkflow").len(), 1);
    handle.shutdown();
    within(5, join).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_process_unsubscribes_and_exits_0_within_a_second_of_sigterm() {
    let engine = recording_engine().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_idle_worker"))
        .envs(engine.client_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the worker process reports READY");
    let addr: std::net::SocketAddr = line
        .strip_prefix("READY ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {line:?}"));
    assert_eq!(http_status(addr, "/readyz").await, 200);

    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the idle worker ignored SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let took = signalled.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(took < BOUND, "exited {took:?} after SIGTERM");

    let requests = engine.requests();
    let listen: WorkerListenRequest = of(&requests, "Dispatcher/ListenV2")[0].decode().unwrap();
    let unsubscribes = of(&requests, "Dispatcher/Unsubscribe");
    assert_eq!(unsubscribes.len(), 1, "exactly one Unsubscribe");
    let unsubscribe: WorkerUnsubscribeRequest = unsubscribes[0].decode().unwrap();
    assert_eq!(unsubscribe.worker_id, listen.worker_id);
}
