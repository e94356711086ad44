//! Benchmark (not a test): logical turns on the embedded engine, the Rust SDK worker and the shared Redis, in one
//! process (see BENCHMARKS.md). Each of SESSIONS sessions sends MESSAGES messages through intake, the next one when
//! the previous one was answered (so every run is a turn); window 200 ms, echo brain.
//!
//! ```sh
//! scripts/bench turns SESSIONS MESSAGES      # = cargo bench -p acf-tests --bench turns -- SESSIONS MESSAGES
//! ```
//!
//! Prints where a turn's time goes, then, last, the machine-readable line
//! `BENCH turns sessions=<n> messages=<n> turns_per_s=<x> overhead_p50_ms=<x> overhead_p99_ms=<x>
//! window_error_p99_ms=<x> cpu_ms_per_turn=<x> answered_once=<true|false>`. Knob: `ACF_BENCH_SLOTS` (worker
//! slots, 4 × max(sessions, 100)).

use acf_tests::e2e_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acf_worker::workflow::{Accumulated, AgentOutcome};
use e2e_support::{Harness, Mode, User};

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

/// Time this process's threads spent runnable but waiting for a CPU so far, in ms (`/proc/self/task/*/schedstat`,
/// second field; threads that ended are not counted). On a machine shared with other work this is the part of the
/// latency no code change removes.
fn runqueue_wait_ms() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e6
}

/// Wall time of each worker step (`ruche.step` spans, from creation to close), by step name, in ms: with the
/// turn's total it tells the steps' own time from the time between them (engine dispatch, reports, delivery).
#[derive(Default)]
struct StepTimes(Mutex<HashMap<String, Vec<f64>>>);

struct Began {
    step: String,
    at: Instant,
}

impl StepTimes {
    /// Installs the timer as the global subscriber; `None` when another one is installed already (the breakdown is
    /// then not printed).
    fn install() -> Option<Arc<Self>> {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::prelude::*;
        let times = Arc::new(Self::default());
        let layer = StepLayer(times.clone()).with_filter(tracing_subscriber::filter::filter_fn(
            |meta| meta.name() == "ruche.step",
        ));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .ok()
            .map(|()| times)
    }

    fn take(&self) -> HashMap<String, Vec<f64>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct StepLayer(Arc<StepTimes>);

impl<S> tracing_subscriber::Layer<S> for StepLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct StepName(String);
        impl tracing::field::Visit for StepName {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "step" {
                    value.clone_into(&mut self.0);
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "step" {
                    self.0 = format!("{value:?}").trim_matches('"').to_owned();
                }
            }
        }
        let mut name = StepName(String::new());
        attrs.record(&mut name);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Began {
                step: name.0,
                at: Instant::now(),
            });
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(began) = extensions.get::<Began>() else {
            return;
        };
        let ms = began.at.elapsed().as_secs_f64() * 1000.0;
        (self.0).0.lock().unwrap().entry(began.step.clone()).or_default().push(ms);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let count = |at: usize, default: usize| {
        args.get(at)
            .map(|v| v.parse::<usize>().ok().filter(|n| *n > 0).expect("SESSIONS and MESSAGES are positive integers"))
            .unwrap_or(default)
    };
    let (sessions, messages) = (count(0, 20), count(1, 25));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(turns(sessions, messages));
}

/// Sessions talking at once; each sends its next message when the previous one was answered.
async fn turns(sessions: usize, messages: usize) {
    let slots = u32::try_from(env_or("ACF_BENCH_SLOTS", sessions.max(100) * 4)).unwrap_or(u32::MAX);
    let step_times = StepTimes::install();
    let h = Arc::new(Harness::start(Mode::Echo(Duration::ZERO), WINDOW_MS, slots).await);
    if let Some(times) = &step_times {
        times.take();
    }
    let cpu_before = process_cpu_ms();
    let runqueue_before = runqueue_wait_ms();
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
                let intake = sent.elapsed().as_secs_f64() * 1000.0;
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
                    intake,
                    waited,
                ));
            }
            (user.session_key(), sent_ids, turns)
        }));
    }
    let mut overheads = Vec::new();
    let mut lateness = Vec::new();
    let mut intakes = Vec::new();
    let mut waits = Vec::new();
    let mut sent = Vec::new();
    for task in tasks {
        let (session_key, ids, turns) = task.await.unwrap();
        sent.push((session_key, ids));
        for (overhead, late, intake, waited) in turns {
            overheads.push(overhead);
            lateness.push(late);
            intakes.push(intake);
            waits.push(waited);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_ms = process_cpu_ms() - cpu_before;
    let runqueue_ms = runqueue_wait_ms() - runqueue_before;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    overheads.sort_by(f64::total_cmp);
    lateness.sort_by(f64::total_cmp);
    intakes.sort_by(f64::total_cmp);
    waits.sort_by(f64::total_cmp);
    let turns = overheads.len();

    // Every message answered exactly once, checked on the response stream the gateway reads.
    let entries = h
        .backend
        .stores
        .responses
        .read_after("0", turns * 2 + 1_000)
        .await
        .expect("the response stream");
    let mut answers: HashMap<String, usize> = HashMap::new();
    for (_, entry) in &entries {
        for id in &entry.message_ids {
            *answers.entry(id.to_string()).or_default() += 1;
        }
    }
    // Each session waits for an answer before its next message, so every turn has exactly one message.
    let answered_once = entries.len() == turns
        && entries
            .iter()
            .all(|(_, entry)| entry.status == acf_worker::models::TurnOutcome::Complete)
        && sent
            .iter()
            .flat_map(|(_, ids)| ids)
            .all(|id| answers.get(id) == Some(&1));

    // Where a turn's time goes: intake, each step's own time (the window and the brain taken out), and the rest
    // (engine dispatch of four steps, step reports, result delivery).
    if let Some(times) = &step_times {
        let mut steps = times.take();
        let p50 = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            if v.is_empty() { f64::NAN } else { percentile(v, 50.0) }
        };
        let mut line = format!("BENCH turns breakdown (p50 ms): intake {:.2}", percentile(&intakes, 50.0));
        let mut inside = percentile(&intakes, 50.0);
        for step in ["acquire_mutex", "accumulate", "run_agent", "commit_and_respond"] {
            let mut v = steps.remove(step).unwrap_or_default();
            let mut own = p50(&mut v);
            if step == "accumulate" {
                own -= percentile(&waits, 50.0);
            }
            inside += own;
            line.push_str(&format!(", {step} {own:.2} ({} spans)", v.len()));
        }
        line.push_str(&format!(
            ", between steps (engine dispatch, reports, result delivery) {:.2}",
            percentile(&overheads, 50.0) - inside
        ));
        println!("{line}");
    }

    println!(
        "BENCH turns: {turns} turns ({sessions} sessions x {messages}), window {WINDOW_MS} ms, echo brain, {slots} slots: \
         {:.1} turns/s over {elapsed:.2} s; overhead beyond window+brain p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         window closed late by p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; process CPU {cpu_ms:.0} ms ({:.0}% of one core), \
         waiting for a CPU {:.2} ms per turn; load average {}; {} response entries",
        turns as f64 / elapsed,
        percentile(&overheads, 50.0),
        percentile(&overheads, 90.0),
        percentile(&overheads, 99.0),
        overheads[turns - 1],
        percentile(&lateness, 50.0),
        percentile(&lateness, 99.0),
        lateness[turns - 1],
        cpu_ms / elapsed / 10.0,
        runqueue_ms / turns as f64,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
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

