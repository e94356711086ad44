//! A fleet of real `ruche-worker run` processes on an in-test engine, and a checker reading the response stream
//! as a channel gateway would. Shared by the chaos and scale-out tests.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acf_sdk::engine::EngineHandle;
use acf_sdk::{Client, ClientConfig};
use acf_worker::intake::{self, IntakeError};
use acf_worker::models::{Conversation, TurnOutcome, WorkflowInput};
use acf_worker::stores::{Backend, ResponseEntry, StoredMessage};
use uuid::Uuid;

use super::cli::BIN;

/// The environment of a `ruche-worker run` on `engine`, with Redis at `redis_url` under `key_prefix`, the test
/// configuration and JSON logs at `info`. Callers add their own settings (later entries win).
pub fn worker_env(
    engine: &EngineHandle,
    redis_url: &str,
    key_prefix: &str,
) -> Vec<(String, String)> {
    let mut env = engine.client_env();
    env.extend(
        [
            ("RUCHE_ENV", "test"),
            (
                "RUCHE_CONFIG_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            ),
            ("RUCHE_OBSERVABILITY__LOGGING__LEVEL", "info"),
            ("RUCHE_STORAGE__SESSION__BACKEND", "redis"),
            ("RUCHE_STORAGE__SESSION__CONNECTION_URL", redis_url),
            ("RUCHE_STORAGE__SESSION__KEY_PREFIX", key_prefix),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env
}

/// One `ruche-worker run` process, restartable, SIGKILLed on drop. Its stdout and stderr are appended to `log`.
pub struct WorkerProcess {
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl WorkerProcess {
    /// Starts the process with exactly `env` (plus `PATH`).
    pub fn start(env: Vec<(String, String)>, log: PathBuf) -> Self {
        let mut worker = Self {
            env,
            log,
            child: None,
        };
        worker.restart();
        worker
    }

    /// Starts the process again (killing it first if it runs).
    pub fn restart(&mut self) {
        self.kill();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BIN)
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("ruche-worker starts");
        self.child = Some(child);
    }

    /// SIGKILL: no drain, no lock release, no failure report.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. `-STOP`) to the running process.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Waits until the worker logged `acf_worker_ready` (connected and registered).
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains("acf_worker_ready") {
            assert!(
                Instant::now() < deadline,
                "worker {} never became ready:\n{}",
                self.log.display(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.kill();
    }
}

/// What the checker saw on the response stream.
#[derive(Default)]
pub struct Seen {
    /// Per message: (read time, status, turn id) of every entry naming it.
    pub deliveries: HashMap<Uuid, Vec<(Instant, TurnOutcome, Uuid)>>,
    /// Stream entry ids already counted: concurrent readers may read the same entries.
    pub entries: HashSet<String>,
    /// The newest entry id read.
    pub last_id: String,
}

impl Seen {
    /// Nothing seen yet: reading starts at the beginning of the stream.
    pub fn from_start() -> Self {
        Self {
            last_id: "0".into(),
            ..Self::default()
        }
    }
}

/// Reads the entries after `seen.last_id` (one batch) and counts them.
pub async fn read_stream(backend: &Backend, seen: &Mutex<Seen>) {
    let after = seen.lock().unwrap().last_id.clone();
    let Ok(entries) = backend.stores.responses.read_after(&after, 1_000).await else {
        return;
    };
    let now = Instant::now();
    let mut seen = seen.lock().unwrap();
    for (id, entry) in entries {
        if !seen.entries.insert(id.clone()) {
            continue;
        }
        let ResponseEntry {
            status,
            message_ids,
            turn_id,
            ..
        } = entry;
        for message in message_ids {
            seen.deliveries
                .entry(message)
                .or_default()
                .push((now, status, turn_id));
        }
        if parse_id(&id) > parse_id(&seen.last_id) {
            seen.last_id = id;
        }
    }
}

/// A stream entry id as `(ms, seq)`, for ordering.
fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Submits like a gateway: retried until the message is stored (a failed trigger after storing is handed on by
/// intake itself, so it counts as submitted).
pub async fn submit(backend: &Backend, client: &Client, input: &WorkflowInput) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match intake::submit(&backend.stores, client, input, 16_000).await {
            Ok(_) | Err(IntakeError::Trigger(_)) => return,
            Err(error) => {
                assert!(Instant::now() < deadline, "intake never succeeded: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A client of `engine`.
pub fn client_of(engine: &EngineHandle) -> Client {
    let env: HashMap<String, String> = engine.client_env().into_iter().collect();
    Client::new(ClientConfig::from_lookup(|k| env.get(k).cloned()).unwrap()).unwrap()
}

/// Waits until `count` workflows are registered (each worker registers two).
pub async fn wait_registered(engine: &EngineHandle, count: usize) {
    let registered = Instant::now();
    while engine.registered_workflows().len() < count {
        assert!(
            registered.elapsed() < Duration::from_secs(30),
            "the workers did not register"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the response stream every 10 ms in the background, as a gateway would, into a [`Seen`].
pub struct StreamChecker {
    backend: Backend,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
}

impl StreamChecker {
    /// Starts reading from the beginning of `backend`'s stream.
    pub fn start(backend: &Backend) -> Self {
        let seen = Arc::new(Mutex::new(Seen::from_start()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (backend, seen, stop) = (backend.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    read_stream(&backend, &seen).await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        Self {
            backend: backend.clone(),
            seen,
            stop,
            reader,
        }
    }

    /// Reads what is on the stream now, besides the background reads.
    pub async fn read_now(&self) {
        read_stream(&self.backend, &self.seen).await;
    }

    /// Waits until every message of `ids` was delivered or `timeout` passed, then `settle` longer to catch late
    /// duplicates; stops reading and returns everything seen. Only a failure waits the whole `timeout`.
    pub async fn finish(
        self,
        ids: impl IntoIterator<Item = Uuid>,
        timeout: Duration,
        settle: Duration,
    ) -> Seen {
        let ids: Vec<Uuid> = ids.into_iter().collect();
        let deadline = Instant::now() + timeout;
        loop {
            let missing = {
                let seen = self.seen.lock().unwrap();
                ids.iter()
                    .filter(|id| !seen.deliveries.contains_key(id))
                    .count()
            };
            if missing == 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(settle).await;
        self.stop.store(true, Ordering::Relaxed);
        self.reader.await.unwrap();
        read_stream(&self.backend, &self.seen).await;
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// The sessions (by index) whose messages the store still holds open.
pub async fn still_open(
    backend: &Backend,
    sessions: &[Conversation],
) -> Vec<(usize, Vec<StoredMessage>)> {
    let mut open = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        let left = backend
            .stores
            .messages
            .open_messages(&s.session_key())
            .await
            .unwrap();
        if !left.is_empty() {
            open.push((i, left));
        }
    }
    open
}
