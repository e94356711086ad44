//! Benchmarks of the logical-turn worker on the embedded engine and the shared Redis (ignored by default; see
//! BENCHMARKS.md):
//!
//! `cargo test --release -p acf-tests --test it e2e_bench:: -- --ignored --nocapture --test-threads 1`
//!
//! * turns per second, and the latency a turn adds beyond its accumulation window and brain time (p50, p99);
//! * session mutex acquire+release pairs per second, to compare with `redis-benchmark` at the same concurrency.
//!
//! Knobs: `ACF_BENCH_SESSIONS` (20), `ACF_BENCH_MESSAGES` (25), `ACF_BENCH_SLOTS` (4 × max(sessions, 100)), `ACF_BENCH_CONCURRENCY` (50), `ACF_BENCH_PAIRS` (400).

use acf_tests::e2e_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use acf_worker::mutex::LockOptions;
use acf_worker::workflow::{Accumulated, AgentOutcome};
use e2e_support::{Harness, Mode, User, redis_backend};

/// Fixed accumulation window, ms.
const WINDOW_MS: u64 = 200;

/// A positive integer from the environment, or `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// CPU time (user + system) this process has used so far, in ms (`/proc/self/stat`, clock ticks of 10 ms).
fn process_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux)");
    // Fields after the `(comm)` one: state is field 3, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')').expect("stat has a comm field") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // The kernel reports these in USER_HZ, 100 on Linux whatever the kernel's own tick.
    ticks * 10.0
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run explicitly with --ignored --nocapture"]
async fn turns_per_second_and_overhead_beyond_window_and_brain() {
    // Sessions talking at once; each sends its next message when the previous one was answered.
    let sessions = env_or("ACF_BENCH_SESSIONS", 20);
    let messages = env_or("ACF_BENCH_MESSAGES", 25);
    let slots = u32::try_from(env_or("ACF_BENCH_SLOTS", sessions.max(100) * 4)).unwrap_or(u32::MAX);
    let h = Arc::new(Harness::start(Mode::Echo(Duration::ZERO), WINDOW_MS, slots).await);
    let cpu_before = process_cpu_ms();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let user = User::new();
            let mut turns = Vec::new();
            let mut sent_ids = Vec::new();
            for n in 0..messages {
                let sent = Instant::now();
                let input = user.says(&format!("message {n}"));
                sent_ids.push(input.message_id.clone());
                let submitted = h.send(&input).await;
                let out = submitted.run.result().await.expect("run");
                let total = sent.elapsed().as_secs_f64() * 1000.0;
                let accumulated: Accumulated = out.step("accumulate").unwrap();
                let agent: AgentOutcome = out.step("run_agent").unwrap();
                let waited = if accumulated.waited_us > 0 {
                    accumulated.waited_us as f64 / 1000.0
                } else {
                    accumulated.waited_ms as f64
                };
                turns.push((
                    total - waited - agent.brain_ms as f64,
                    accumulated.window_late_us as f64 / 1000.0,
                ));
            }
            (user.session_key(), sent_ids, turns)
        }));
    }
    let mut overheads = Vec::new();
    let mut lateness = Vec::new();
    let mut sent = Vec::new();
    for task in tasks {
        let (session_key, ids, turns) = task.await.unwrap();
        sent.push((session_key, ids));
        for (overhead, late) in turns {
            overheads.push(overhead);
            lateness.push(late);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_ms = process_cpu_ms() - cpu_before;
    overheads.sort_by(f64::total_cmp);
    lateness.sort_by(f64::total_cmp);
    let turns = overheads.len();

    // Every message answered exactly once, checked on the response stream the gateway reads.
    let entries = h
        .backend
        .stores
        .responses
        .read_after("0", turns * 2 + 1_000)
        .await
        .expect("the response stream");
    let mut answers: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (_, entry) in &entries {
        for id in &entry.message_ids {
            *answers.entry(id.to_string()).or_default() += 1;
        }
    }
    let answered_once = entries.len() == turns
        && sent
            .iter()
            .flat_map(|(_, ids)| ids)
            .all(|id| answers.get(id) == Some(&1));

    println!(
        "BENCH turns: {turns} turns ({sessions} sessions x {messages}), window {WINDOW_MS} ms, echo brain, {slots} slots: \
         {:.1} turns/s over {elapsed:.2} s; overhead beyond window+brain p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         window closed late by p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; process CPU {cpu_ms:.0} ms ({:.0}% of one core); \
         {} response entries",
        turns as f64 / elapsed,
        percentile(&overheads, 50.0),
        percentile(&overheads, 90.0),
        percentile(&overheads, 99.0),
        overheads[turns - 1],
        percentile(&lateness, 50.0),
        percentile(&lateness, 99.0),
        lateness[turns - 1],
        cpu_ms / elapsed / 10.0,
        entries.len(),
    );
    println!(
        "BENCH turns sessions={sessions} messages={messages} turns_per_s={:.1} overhead_p50_ms={:.2} overhead_p99_ms={:.2} \
         window_error_p99_ms={:.2} cpu_ms_per_turn={:.3} answered_once={answered_once}",
        turns as f64 / elapsed,
        percentile(&overheads, 50.0),
        percentile(&overheads, 99.0),
        percentile(&lateness, 99.0),
        cpu_ms / turns as f64,
    );
    match Arc::try_unwrap(h) {
        Ok(h) => h.stop().await,
        Err(_) => panic!("harness still shared"),
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run explicitly with --ignored --nocapture"]
async fn mutex_acquire_release_pairs_per_second() {
    let concurrency = env_or("ACF_BENCH_CONCURRENCY", 50);
    let pairs_each = env_or("ACF_BENCH_PAIRS", 400);
    let backend = redis_backend().await;
    let options = LockOptions::new(Duration::from_secs(5), Duration::ZERO);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let mutex = backend.mutex.clone();
        tasks.push(tokio::spawn(async move {
            // One session per client: uncontended pairs measure the round trips, not the waiting.
            let session = format!("bench:{}:{client}", uuid::Uuid::new_v4().simple());
            for _ in 0..pairs_each {
                let lease = mutex.acquire(&session, options).await.expect("acquire");
                mutex.release(&lease).await.expect("release");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let pairs = concurrency * pairs_each;
    let mutex_rate = pairs as f64 / started.elapsed().as_secs_f64();
    println!(
        "BENCH mutex: {pairs} acquire+release pairs with {concurrency} concurrent clients: {mutex_rate:.0} pairs/s"
    );

    // The floor, in the same run: `redis-benchmark` at the same concurrency, one command per round trip.
    let requests = (concurrency * pairs_each * 2).to_string();
    let set = redis_benchmark_rate(&[
        "-c",
        &concurrency.to_string(),
        "-n",
        &requests,
        "-q",
        "-r",
        "100000",
        "SET",
        "lock:__rand_int__",
        "tok",
        "NX",
        "PX",
        "5000",
    ]);
    let release = redis_benchmark_rate(&[
        "-c",
        &concurrency.to_string(),
        "-n",
        &requests,
        "-q",
        "-r",
        "100000",
        "EVAL",
        "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end",
        "1",
        "lock:__rand_int__",
        "tok",
    ]);
    // One pair costs one SET and one release: the pair rate is the harmonic combination of the two.
    let floor = 1.0 / (1.0 / set + 1.0 / release);
    println!(
        "BENCH mutex floor: redis-benchmark SET NX PX {set:.0} req/s, release EVAL {release:.0} req/s -> {floor:.0} pairs/s; \
         mutex / floor = {:.2}x",
        mutex_rate / floor
    );
}

/// Runs `redis-benchmark -h 127.0.0.1 -p 6379 <args>` and returns its requests per second.
fn redis_benchmark_rate(args: &[&str]) -> f64 {
    let output = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", "6379"])
        .args(args)
        .output()
        .expect("redis-benchmark (Debian package redis-tools) must be installed");
    let text = String::from_utf8_lossy(&output.stdout);
    // `-q` prints `<name>: <rate> requests per second, ...`; the last such line is the summary.
    text.split(['\r', '\n'])
        .filter_map(|line| line.split(": ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|rate| rate.parse::<f64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no rate in redis-benchmark output: {text}"))
}
