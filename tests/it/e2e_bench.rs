//! Benchmark of the session mutex on the shared Redis (ignored by default; see BENCHMARKS.md): acquire+release pairs
//! per second, compared with `redis-benchmark` at the same concurrency. The turns benchmark is `scripts/bench turns`
//! (`tests/benches/turns.rs`).
//!
//! `cargo test --release -p acf-tests --test it e2e_bench::mutex -- --ignored --nocapture --test-threads 1`
//!
//! Knobs: `ACF_BENCH_CONCURRENCY` (50), `ACF_BENCH_PAIRS` (400).

use acf_tests::{e2e_support, env_count};

use std::time::{Duration, Instant};

use acf_worker::mutex::LockOptions;
use e2e_support::redis_backend;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run explicitly with --ignored --nocapture"]
async fn mutex_acquire_release_pairs_per_second() {
    let concurrency = env_count("ACF_BENCH_CONCURRENCY", 50);
    let pairs_each = env_count("ACF_BENCH_PAIRS", 400);
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
    let requests = concurrency * pairs_each * 2;
    let set = redis_benchmark_rate(
        concurrency,
        requests,
        &["SET", "lock:__rand_int__", "tok", "NX", "PX", "5000"],
    );
    let release = redis_benchmark_rate(
        concurrency,
        requests,
        &[
            "EVAL",
            "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end",
            "1",
            "lock:__rand_int__",
            "tok",
        ],
    );
    // One pair costs one SET and one release: the pair rate is the harmonic combination of the two.
    let floor = 1.0 / (1.0 / set + 1.0 / release);
    println!(
        "BENCH mutex floor: redis-benchmark SET NX PX {set:.0} req/s, release EVAL {release:.0} req/s -> {floor:.0} pairs/s; \
         mutex / floor = {:.2}x",
        mutex_rate / floor
    );
}

/// Runs `command` `requests` times from `concurrency` clients with `redis-benchmark` (quiet, keys drawn
/// from 100 000 random ones) and returns its requests per second.
fn redis_benchmark_rate(concurrency: usize, requests: usize, command: &[&str]) -> f64 {
    let output = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", "6379"])
        .args(["-c", &concurrency.to_string(), "-n", &requests.to_string()])
        .args(["-q", "-r", "100000"])
        .args(command)
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
