//! `ruche-worker run --embedded` with no work: `acf_worker_ready` is logged once the worker is listening,
//! and SIGTERM stops the idle worker promptly with exit 0 (the embedded engine, like Hatchet, sends no
//! stream headers before the first action, so this is the path an idle worker takes against Hatchet).

use crate::support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::cli::{Running, lines, sigterm, until, worker};

#[test]
fn an_idle_ruche_worker_is_ready_then_exits_0_promptly_on_sigterm() {
    let child = worker()
        .args(["run", "--embedded", "--bind", &support::free_addr()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let rx = lines(&mut running.0);
    let mut seen = Vec::new();
    until(&rx, &mut seen, Duration::from_secs(60), |l| {
        l.contains("acf_worker_ready")
    });
    let registered = seen
        .iter()
        .position(|l| l.contains("workflow_registered"))
        .expect("workflow_registered logged");
    let ready = seen
        .iter()
        .position(|l| l.contains("acf_worker_ready"))
        .unwrap();
    assert!(registered < ready, "{}", seen.join("\n"));

    let signalled = Instant::now();
    sigterm(&running.0);
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "the idle ruche-worker ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = signalled.elapsed();
    for line in rx.try_iter() {
        seen.push(line);
    }
    assert_eq!(status.code(), Some(0), "{}", seen.join("\n"));
    // The bound for an idle worker, with slack for the process teardown of a debug build.
    assert!(
        took < Duration::from_millis(1500),
        "exited {took:?} after SIGTERM"
    );
    assert!(
        seen.iter().any(|l| l.contains("acf_worker_stopped")),
        "{}",
        seen.join("\n")
    );
}

/// `start_worker` registers each of its workflows once (its own early `PutWorkflow`, which names the engine on
/// failure; the SDK worker sends no second one), is ready while idle, and stops promptly after `Unsubscribe`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_worker_registers_each_workflow_once_and_unsubscribes_on_stop() {
    use acf_worker::config::{Settings, StoreBackend};

    let engine = acf_sdk::engine::Engine::builder()
        .record_requests(true)
        .start()
        .await
        .unwrap();
    let env: std::collections::HashMap<String, String> = engine.client_env().into_iter().collect();
    let client =
        acf_sdk::Client::new(acf_sdk::ClientConfig::from_lookup(|k| env.get(k).cloned()).unwrap())
            .unwrap();
    let mut settings = Settings::default();
    settings.storage.session.backend = StoreBackend::Memory;
    let (_backend, workflow) = acf_worker::run::open_workflow(&settings).await.unwrap();
    let running = acf_worker::run::start_worker(&client, workflow, &settings)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), running.handle().ready())
        .await
        .expect("an idle worker is ready");
    let puts = engine
        .requests()
        .iter()
        .filter(|r| r.rpc == "v1.AdminService/PutWorkflow")
        .count();
    let registered = engine.registered_workflows().len();
    assert_eq!(registered, 2, "logical-turn and new-message-intake");
    assert_eq!(puts, registered, "one PutWorkflow per workflow per start");
    let stopping = Instant::now();
    running.stop().await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "an idle worker stops promptly: {:?}",
        stopping.elapsed()
    );
    assert!(
        engine
            .requests()
            .iter()
            .any(|r| r.rpc == "Dispatcher/Unsubscribe"),
        "the worker says goodbye"
    );
    engine.shutdown().await;
}
