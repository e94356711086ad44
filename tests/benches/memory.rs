//! Benchmark (not a test): the memory of `ruche-worker run --embedded` on in-memory stores (the self-contained
//! `test` configuration), as a child process. TURNS turns over SESSIONS sessions (round robin, channel `api`,
//! echo brain) at RATE turns/s, then a soak of SOAK_SECONDS with no traffic. The store TTLs are set (through
//! `RUCHE_STORAGE__SESSION__*_TTL_SECONDS`) between the length of the turns and the soak, so every session is
//! still held when the turns end and has expired before the soak ends.
//!
//! ```sh
//! scripts/bench memory [TURNS] [SESSIONS] [RATE] [SOAK_SECONDS]   # defaults 100000 10000 200 600
//! # = cargo build --release -p acf-worker --bin ruche-worker
//! #   cargo bench -p acf-tests --bench memory -- TURNS SESSIONS RATE SOAK_SECONDS
//! ```
//!
//! Samples the child's RSS (`VmRSS` of `/proc/<pid>/status`) every second and prints RSS at start, after the turns
//! and at the end of the soak, the soak's slope, bytes per idle session and per in-flight turn, then, last,
//! `BENCH memory turns=<n> sessions=<n> rss_start_mb=<x> rss_after_turns_mb=<x> rss_end_mb=<x>
//! soak_slope_kb_per_min=<x> bytes_per_idle_session=<x> answered=<n>`. Exits non-zero unless every turn was
//! answered. The worker binary: `ACF_BENCH_WORKER_BIN`, else `ruche-worker` next to the bench's `deps/`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use acf_sdk::{Client, ClientConfig};
use acf_worker::intake;
use acf_worker::models::{TurnOutcome, WorkflowInput, WorkflowOutput};
use acf_worker::mutex::MemorySessionMutex;
use acf_worker::stores::{StoreSettings, Stores};
use acf_worker::workflow::LogicalTurnWorkflow;
use uuid::Uuid;

/// Slots of the worker: a turn holds one through its accumulation window (200 ms on `api`), so this covers
/// RATE × window turns in flight with room to spare at the default 200 turns/s.
const WORKER_CONCURRENCY: &str = "100";
/// How long a turn may take to be answered before it counts as unanswered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// The benchmark's parameters.
struct Params {
    turns: usize,
    sessions: usize,
    rate: f64,
    soak: Duration,
}

impl Params {
    fn from_args() -> Self {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        let number = |at: usize, default: u64| {
            args.get(at).map_or(default, |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .expect("TURNS SESSIONS RATE SOAK_SECONDS are positive integers")
            })
        };
        Self {
            turns: usize::try_from(number(0, 100_000)).expect("TURNS fits"),
            sessions: usize::try_from(number(1, 10_000)).expect("SESSIONS fits"),
            rate: number(2, 200) as f64,
            soak: Duration::from_secs(number(3, 600)),
        }
    }

    /// How long sending the turns takes at the rate.
    fn sending(&self) -> Duration {
        Duration::from_secs_f64(self.turns as f64 / self.rate)
    }

    /// The store TTL: at least the sending time (nothing expires before the turns end) and a quarter of the way
    /// from there to the soak's length, leaving the sweep (every quarter TTL, at most 60 s) time to free
    /// everything before the soak ends. A soak shorter than the sending gets half the soak.
    fn ttl_seconds(&self) -> u64 {
        let (sending, soak) = (self.sending().as_secs() + 1, self.soak.as_secs());
        if soak > sending {
            sending + (soak - sending) / 4
        } else {
            (soak / 2).max(1)
        }
    }
}

/// One RSS sample: seconds since the child started serving, RSS in bytes, turns in flight.
#[derive(Clone, Copy)]
struct Sample {
    at: f64,
    rss: u64,
    in_flight: usize,
}

/// The resident set of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc (Linux)");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .expect("VmRSS in kB")
        * 1024
}

/// Least-squares slope of RSS over time, bytes per second (0 with fewer than two samples).
fn slope(samples: &[Sample]) -> f64 {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return 0.0;
    }
    let mean_t = samples.iter().map(|s| s.at).sum::<f64>() / n;
    let mean_r = samples.iter().map(|s| s.rss as f64).sum::<f64>() / n;
    let cov: f64 = samples
        .iter()
        .map(|s| (s.at - mean_t) * (s.rss as f64 - mean_r))
        .sum();
    let var: f64 = samples.iter().map(|s| (s.at - mean_t).powi(2)).sum();
    if var == 0.0 { 0.0 } else { cov / var }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The worker binary: `ACF_BENCH_WORKER_BIN`, else `ruche-worker` in the profile directory this bench runs from.
fn worker_bin() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("ACF_BENCH_WORKER_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the bench's path");
    let profile = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps");
    profile.join("ruche-worker")
}

/// Kills the child on drop, so a failed bench leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Finished runs the embedded engine keeps during the bench (`--retained-runs`).
const ENGINE_RETAINED_RUNS: &str = "1000";

/// Starts `ruche-worker run --embedded` on in-memory stores with `ttl_seconds` for every store TTL; returns it and
/// the HATCHET_CLIENT_* exports it printed.
fn start_worker(ttl_seconds: u64) -> (Running, HashMap<String, String>) {
    let ttl = ttl_seconds.to_string();
    let bind = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let mut command = Command::new(worker_bin());
    command
        .args(["run", "--embedded", "--bind", &bind])
        .env("RUCHE_ENV", "test")
        .env("RUCHE_STORAGE__SESSION__BACKEND", "memory")
        .env(
            "RUCHE_JOBS__HATCHET__WORKER_CONCURRENCY",
            WORKER_CONCURRENCY,
        )
        .env("RUCHE_OBSERVABILITY__LOGGING__LEVEL", "warning")
        // The engine's history of finished runs (default 50 000, ~30 KB each for a turn) would dominate RSS and
        // hide what the worker and its stores hold: keep a small window of it.
        .env("RUCHE_ENGINE_RETAINED_RUNS", ENGINE_RETAINED_RUNS)
        .env_remove("HATCHET_CLIENT_TOKEN")
        .env_remove("HATCHET_CLIENT_HOST_PORT")
        .env_remove("RUCHE_CONFIG_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for kind in ["SESSION", "MESSAGE", "RECORD", "INBOX"] {
        command.env(format!("RUCHE_STORAGE__SESSION__{kind}_TTL_SECONDS"), &ttl);
    }
    let mut child = Running(
        command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", worker_bin().display())),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    // Reads every line for as long as the child runs, so its stdout never fills up.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut exports = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !exports.contains_key("HATCHET_CLIENT_TOKEN") || exports.len() < 5 {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the worker prints its exports within 60 s");
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            exports.insert(name.to_owned(), value.to_owned());
        }
    }
    (child, exports)
}

/// Sends turns and counts answers. Each turn is a message from its own session's interlocutor.
struct Sender {
    client: Client,
    stores: Stores,
    answered: AtomicUsize,
    failed: AtomicUsize,
    in_flight: AtomicUsize,
}

impl Sender {
    /// Sends message `n` of `session` and waits for its answer; true when the turn completed. The first failure
    /// is printed.
    async fn turn(&self, session: usize, n: usize) -> bool {
        let outcome = self.answer(session, n).await;
        if let Err(error) = &outcome
            && self.failed.fetch_add(1, Ordering::Relaxed) == 0
        {
            eprintln!("BENCH memory: turn {n} of session {session} not answered: {error}");
        }
        outcome.is_ok()
    }

    async fn answer(&self, session: usize, n: usize) -> Result<(), String> {
        let input = WorkflowInput {
            tenant_id: "6f1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f60".into(),
            agent_id: "7a1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f61".into(),
            interlocutor_id: Uuid::from_u128(
                0x8b1c_2a56_0000_0000_0000_0000_0000_0000 + session as u128,
            )
            .to_string(),
            channel: "api".into(),
            message_id: Uuid::new_v4().to_string(),
            message_content: format!("message {n} of session {session}"),
            session_key: None,
        };
        let submitted = intake::submit(&self.stores, &self.client, &input, 16_000)
            .await
            .map_err(|err| format!("submit: {}", acf_sdk::error::Report(&err)))?;
        let out = tokio::time::timeout(ANSWER_TIMEOUT, submitted.run.result())
            .await
            .map_err(|_| format!("no answer within {ANSWER_TIMEOUT:?}"))?
            .map_err(|err| format!("run: {}", acf_sdk::error::Report(&err)))?;
        let output: WorkflowOutput = out
            .step(LogicalTurnWorkflow::COMMIT_AND_RESPOND)
            .map_err(|err| format!("output: {}", acf_sdk::error::Report(&err)))?;
        match output.status {
            TurnOutcome::Complete => Ok(()),
            other => Err(format!("ended {} ({:?})", other.as_str(), output.error)),
        }
    }
}

fn main() {
    let params = Params::from_args();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(bench(params));
}

async fn bench(params: Params) {
    let ttl = params.ttl_seconds();
    let (child, exports) = start_worker(ttl);
    let pid = child.0.id();
    let client = Client::new(
        ClientConfig::from_lookup(|k| exports.get(k).cloned()).expect("the exported config"),
    )
    .expect("a client");
    // The sending side's own stores (intake stores the message before triggering); short-lived, like the child's.
    let store_ttl = Duration::from_secs(ttl);
    let settings = StoreSettings {
        message_ttl: store_ttl,
        session_ttl: store_ttl,
        record_ttl: store_ttl,
        inbox_ttl: store_ttl,
        ..StoreSettings::default()
    };
    let sender = Arc::new(Sender {
        client,
        stores: Stores::memory(&MemorySessionMutex::new(), settings),
        answered: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
    });

    // A warm-up turn (its own session) shows the worker serves before the baseline is taken; its workflow is
    // registered a moment after the exports are printed, and triggers fail until then.
    let ready_by = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0;
    while sender.answer(usize::MAX >> 1, attempt).await.is_err() {
        assert!(
            Instant::now() < ready_by,
            "the worker answers a warm-up turn within 60 s"
        );
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let origin = Instant::now();
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let sampler = {
        let (samples, sender) = (samples.clone(), sender.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let sample = Sample {
                    at: origin.elapsed().as_secs_f64(),
                    rss: rss_bytes(pid),
                    in_flight: sender.in_flight.load(Ordering::Relaxed),
                };
                samples.lock().unwrap().push(sample);
            }
        })
    };
    let rss_start = rss_bytes(pid);
    println!(
        "BENCH memory: {} turns over {} sessions at {} turns/s, then a {} s soak; store TTLs {ttl} s; worker pid {pid}, \
         RSS at start {:.1} MB",
        params.turns,
        params.sessions,
        params.rate,
        params.soak.as_secs(),
        mb(rss_start)
    );

    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / params.rate));
    let mut tasks = Vec::with_capacity(params.turns);
    for n in 0..params.turns {
        pace.tick().await;
        let sender = sender.clone();
        sender.in_flight.fetch_add(1, Ordering::Relaxed);
        tasks.push(tokio::spawn(async move {
            if sender.turn(n % params.sessions, n / params.sessions).await {
                sender.answered.fetch_add(1, Ordering::Relaxed);
            }
            sender.in_flight.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    for task in tasks {
        task.await.expect("a turn task");
    }
    let turns_done = origin.elapsed().as_secs_f64();
    let answered = sender.answered.load(Ordering::Relaxed);
    // Let the last turns' runs finish their bookkeeping (mutex release, events) before the after-turns figure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_turns = rss_bytes(pid);
    println!(
        "BENCH memory: turns sent and answered in {turns_done:.1} s ({answered}/{} answered); RSS after the turns {:.1} MB",
        params.turns,
        mb(rss_after_turns)
    );

    let soak_start = origin.elapsed().as_secs_f64();
    tokio::time::sleep(params.soak).await;
    sampler.abort();
    let rss_end = rss_bytes(pid);
    drop(child);

    let samples = samples.lock().unwrap().clone();
    let during_turns: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at <= turns_done)
        .collect();
    let soak: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at >= soak_start)
        .collect();
    // Everything written during the turns has expired, and been swept, this long after the soak started.
    let sweep = (ttl as f64 / 4.0).clamp(0.01, 60.0);
    let expired_at = turns_done + ttl as f64 + sweep;
    let tail: Vec<Sample> = soak
        .iter()
        .copied()
        .filter(|s| s.at >= expired_at)
        .collect();
    let soak_slope = slope(&soak);
    let idle_session = (rss_after_turns as f64 - rss_start as f64) / params.sessions as f64;
    // In flight: the sample holding most turns at once during the turns, against the RSS once they were all answered.
    let per_in_flight = during_turns
        .iter()
        .filter(|s| s.in_flight > 0)
        .max_by_key(|s| s.in_flight)
        .map(|peak| {
            let extra = peak.rss.saturating_sub(rss_after_turns) as f64;
            (extra / peak.in_flight as f64, peak.in_flight)
        });
    let peak_rss = samples.iter().map(|s| s.rss).max().unwrap_or(rss_end);
    println!(
        "BENCH memory: RSS start {:.1} MB, after the turns {:.1} MB, peak {:.1} MB, end of soak {:.1} MB; soak slope \
         {:.1} KB/min over {} samples; after expiry (from {:.0} s into the soak) {}",
        mb(rss_start),
        mb(rss_after_turns),
        mb(peak_rss),
        mb(rss_end),
        soak_slope * 60.0 / 1024.0,
        soak.len(),
        expired_at - soak_start,
        if tail.len() >= 2 {
            format!(
                "slope {:.1} KB/min over {} samples",
                slope(&tail) * 60.0 / 1024.0,
                tail.len()
            )
        } else {
            "too few samples for a slope (soak shorter than TTL + sweep)".to_owned()
        },
    );
    println!(
        "BENCH memory: {idle_session:.0} bytes per idle session ((after turns - start) / sessions, before expiry); {}",
        match per_in_flight {
            Some((bytes, peak)) => format!(
                "{bytes:.0} bytes per in-flight turn ((RSS at the busiest sample - after turns) / {peak} turns in flight; \
                 0 when the allocator kept the memory)"
            ),
            None => "no sample caught a turn in flight".to_owned(),
        }
    );
    println!(
        "BENCH memory turns={} sessions={} rss_start_mb={:.1} rss_after_turns_mb={:.1} rss_end_mb={:.1} \
         soak_slope_kb_per_min={:.1} bytes_per_idle_session={idle_session:.0} answered={answered}",
        params.turns,
        params.sessions,
        mb(rss_start),
        mb(rss_after_turns),
        mb(rss_end),
        soak_slope * 60.0 / 1024.0,
    );
    if answered != params.turns {
        eprintln!(
            "scripts/bench memory: {} of {} turns were not answered",
            params.turns - answered,
            params.turns
        );
        std::process::exit(1);
    }
}
