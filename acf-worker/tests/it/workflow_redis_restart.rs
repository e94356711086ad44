//! Redis restarts in the middle of a turn (a persistent Redis: append-only file, fsync always): the lease
//! heartbeat rides over the outage, the connections come back, and the turn is answered once.

use crate::workflow_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acf_worker::models::TurnOutcome;
use acf_worker::stores::{Backend, MessageStatus, RedisConnectOptions, StoreSettings};
use workflow_support::{Behaviour, Conversation, TestBrain, accept, payload, run_turn, workflow};

/// A private `redis-server` persisting every write to its append-only file, restartable on the same port and data.
struct PersistentRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PersistentRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PersistentRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_survives_a_redis_restart_while_the_brain_runs() {
    let mut redis = PersistentRedis::start();
    let backend = Backend::redis(
        &redis.url(),
        StoreSettings::default(),
        &RedisConnectOptions::default(),
    )
    .await
    .unwrap();
    let brain = TestBrain::new(Behaviour::Echo(Duration::from_millis(2_000)));
    let wf = workflow(&backend, brain.clone(), 200);
    let conversation = Conversation::new();
    let input = conversation.message("still there?");
    accept(&backend, &input).await;
    let run = {
        let input = input.clone();
        tokio::spawn(async move { run_turn(&wf, &payload(&input)).await })
    };
    // The window (200 ms) has closed and the brain is thinking when Redis goes away for half a second.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(brain.calls(), 1);
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();

    let run = run.await.unwrap();
    let output = run.result.expect("the run completes");
    assert_eq!(output.status, TurnOutcome::Complete);
    assert_eq!(output.response.as_deref(), Some("Echo: still there?"));
    assert_eq!(brain.calls(), 1, "the brain ran once");
    let session = conversation.session_key();
    let responses = backend.stores.responses.read_after("0", 100).await.unwrap();
    assert_eq!(
        responses
            .iter()
            .filter(|(_, e)| e.session_key == session)
            .count(),
        1
    );
    let message = backend
        .stores
        .messages
        .get(&session, input.message_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        message.status,
        MessageStatus::Processed {
            turn_id: output.turn_id
        }
    );
    assert!(!backend.mutex.is_locked(&session).await.unwrap());

    // The next message after the restart is a normal turn.
    let next = conversation.message("and now?");
    let output = run_turn(&workflow(&backend, brain.clone(), 200), &payload(&next))
        .await
        .result
        .expect("run");
    assert_eq!(output.response.as_deref(), Some("Echo: and now?"));
}
