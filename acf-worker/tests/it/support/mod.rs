//! Shared helpers for the mutex, stores and brain tests: the shared Redis URL, unique names, and a private
//! `redis-server` for fault scenarios (stop, restart) that must not disturb the shared instance.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Redis every test may use, with unique key prefixes.
pub const SHARED_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A name no other test run uses.
pub fn unique(label: &str) -> String {
    format!("test-{label}-{}", uuid::Uuid::new_v4().simple())
}

/// A session key unique to this test run.
pub fn unique_session(label: &str) -> String {
    acf_worker::mutex::session_key(&unique(label), "agent", "user", "webchat")
}

/// The commit of turn `turn_id` under `lease` (its session and fence): complete, answering `message_ids` on
/// `channel` with `response` alone (no segments, side effects or next hint), as a concurrent turn would commit it.
pub fn answer_commit(
    lease: &acf_worker::mutex::Lease,
    turn_id: uuid::Uuid,
    channel: &str,
    message_ids: &[uuid::Uuid],
    response: &str,
) -> acf_worker::stores::TurnCommit {
    let now = acf_worker::models::now_utc();
    let record = acf_worker::stores::TurnRecord {
        turn_id,
        session_key: lease.session_key.clone(),
        channel: channel.to_owned(),
        turn_number: 0,
        outcome: acf_worker::models::TurnOutcome::Complete,
        message_ids: message_ids.to_vec(),
        response: Some(response.to_owned()),
        segments: Vec::new(),
        error: None,
        fence: lease.fence,
        started_at: now,
        committed_at: now,
        side_effects: Vec::new(),
    };
    acf_worker::stores::TurnCommit {
        record,
        next_hint: None,
    }
}

/// A TCP port that was free a moment ago, for a server a test starts. It is taken below the kernel's ephemeral
/// range (`ip_local_port_range`, 32768 and up by default): a port the kernel handed out for `bind(0)` is also one
/// it hands to outgoing connections, and with the suite's hundreds of connections one took a private Redis's port
/// between the check and the server's own bind (CI: "redis-server on port 41347 did not start").
pub fn free_port() -> u16 {
    use std::hash::BuildHasher;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    // Never the same port twice in this process: a cluster asks for six before starting any server.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let random = std::collections::hash_map::RandomState::new();
    for attempt in 0u32..1000 {
        let port =
            low + u16::try_from(random.hash_one(attempt) % u64::from(high - low)).unwrap_or(0);
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free TCP port in {low}..{high}");
}

/// Waits until the `redis-server` just spawned as `child` accepts connections on `port`; fails at once, with its
/// exit status, when it exits instead (a port taken meanwhile, say), or after 10 s.
pub(crate) fn wait_listening(child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("redis-server on port {port} exited at start ({status})");
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} did not start within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `127.0.0.1:{port}` on a port that was free a moment ago.
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A private `redis-server` on its own port, killed on drop: non-persistent ([`RedisServer::start`]), or
/// persisting every write to its append-only file ([`RedisServer::persistent`]).
pub struct RedisServer {
    port: u16,
    /// The data directory of a persistent server, kept across restarts.
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a non-persistent server (a restart loses its data) on a free port and waits until it accepts
    /// connections.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Starts a server with an append-only file synced on every write (a restart keeps its data) on a free port
    /// and waits until it accepts connections.
    pub fn persistent() -> Self {
        Self::launch(Some(tempfile::tempdir().expect("a data directory")))
    }

    fn launch(dir: Option<tempfile::TempDir>) -> Self {
        let mut server = Self {
            port: free_port(),
            dir,
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (a non-persistent one loses its data: it never saves).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (stopping it first if needed), on the same data when persistent.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new("redis-server");
        command.args([
            "--port",
            &self.port.to_string(),
            "--save",
            "",
            "--bind",
            "127.0.0.1",
        ]);
        match &self.dir {
            Some(dir) => command
                .args(["--appendonly", "yes", "--appendfsync", "always"])
                .arg("--dir")
                .arg(dir.path()),
            None => command.args(["--appendonly", "no"]),
        };
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        wait_listening(&mut child, self.port);
        self.child = Some(child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A plain connection for inspecting raw keys.
pub async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable")
}

pub mod backends;
pub mod cli;
pub mod cluster;
pub mod fleet;
pub mod http;
