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
//! window_error_p99_ms=<x> cpu_ms_per_turn=<x> answered_once=<true|false>`. Knobs: `ACF_BENCH_SLOTS` (worker
//! slots, 4 × max(sessions, 100)), `ACF_BENCH_START` (`spread`: first messages spread over one window, the
//! default; `together`: all at once, in lockstep), `ACF_BENCH_PROBES` (set: also measure Redis and engine round
//! trips during the run).

use acf_tests::{e2e_support, env_count};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acf_worker::models::Conversation;
use acf_worker::workflow::{Accumulated, AgentOutcome};
use e2e_support::{Harness, Mode};

/// Fixed accumulation window, ms.
const WINDOW_MS: u64 = 200;

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

/// When each worker step of each message ran (`ruche.step` spans, creation to close, keyed by the span's
/// `message_id` and `step`): with the bench's own timestamps this splits a turn into intake, the steps' own time and
/// the time between steps (engine dispatch, STARTED/COMPLETED reports, result delivery).
#[derive(Default)]
struct StepTimes(Mutex<HashMap<(String, String), (Instant, Instant)>>);

struct Began {
    message_id: String,
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
        let layer =
            StepLayer(times.clone()).with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.name() == "ruche.step"
            }));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .ok()
            .map(|()| times)
    }

    fn get(&self, message_id: &str, step: &str) -> Option<(Instant, Instant)> {
        self.0
            .lock()
            .unwrap()
            .get(&(message_id.to_owned(), step.to_owned()))
            .copied()
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
        #[derive(Default)]
        struct Fields {
            step: String,
            message_id: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "step" => value.clone_into(&mut self.step),
                    "message_id" => value.clone_into(&mut self.message_id),
                    _ => {}
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let text = format!("{value:?}").trim_matches('"').to_owned();
                match field.name() {
                    "step" => self.step = text,
                    "message_id" => self.message_id = text,
                    _ => {}
                }
            }
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Began {
                message_id: fields.message_id,
                step: fields.step,
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
        let key = (began.message_id.clone(), began.step.clone());
        (self.0)
            .0
            .lock()
            .unwrap()
            .insert(key, (began.at, Instant::now()));
    }
}

/// The steps of a turn, in order.
const STEPS: [&str; 4] = [
    "acquire_mutex",
    "accumulate",
    "run_agent",
    "commit_and_respond",
];

/// One answered message's timeline.
struct Turn {
    message_id: String,
    /// Which of its session's messages this was (0 = the session's first).
    index: usize,
    sent: Instant,
    submitted: Instant,
    answered: Instant,
    waited_ms: f64,
    brain_ms: f64,
    late_ms: f64,
}

impl Turn {
    fn overhead_ms(&self) -> f64 {
        ms(self.answered - self.sent) - self.waited_ms - self.brain_ms
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints the p50 of each part of a turn: intake, then for each step the time before it started (trigger or the
/// previous step's end to this step's start: engine dispatch, the previous step's COMPLETED, the action push) and
/// its own time (the window and brain taken out), then result delivery (the last step's end to the answer).
fn print_breakdown(times: &StepTimes, turns: &[Turn]) {
    let mut parts: Vec<(String, Vec<f64>)> = Vec::new();
    let mut push = |name: String, value: f64| match parts.iter_mut().find(|(n, _)| *n == name) {
        Some((_, values)) => values.push(value),
        None => parts.push((name, vec![value])),
    };
    let mut complete = 0;
    // The slowest turn's parts too: where a tail turn's time went is not where a median one's does.
    let slowest = turns
        .iter()
        .max_by(|a, b| a.overhead_ms().total_cmp(&b.overhead_ms()));
    let mut slowest_parts: Vec<String> = Vec::new();
    for turn in turns {
        let is_slowest = slowest.is_some_and(|s| std::ptr::eq(s, turn));
        let mut push = |name: String, value: f64| {
            if is_slowest {
                slowest_parts.push(format!("{name} {value:.2}"));
            }
            push(name, value);
        };
        let spans: Option<Vec<(Instant, Instant)>> = STEPS
            .iter()
            .map(|step| times.get(&turn.message_id, step))
            .collect();
        let Some(spans) = spans else { continue };
        complete += 1;
        push("intake".into(), ms(turn.submitted - turn.sent));
        let mut previous = turn.submitted;
        for (step, (start, end)) in STEPS.iter().zip(&spans) {
            push(
                format!("before {step}"),
                ms(start.saturating_duration_since(previous)),
            );
            let mut own = ms(*end - *start);
            if *step == "accumulate" {
                own -= turn.waited_ms;
            }
            if *step == "run_agent" {
                own -= turn.brain_ms;
            }
            push(format!("{step} itself"), own);
            previous = *end;
        }
        push(
            "result delivery".into(),
            ms(turn.answered.saturating_duration_since(previous)),
        );
    }
    let line: Vec<String> = parts
        .iter_mut()
        .map(|(name, values)| {
            values.sort_by(f64::total_cmp);
            format!("{name} {:.2}", percentile(values, 50.0))
        })
        .collect();
    println!(
        "BENCH turns breakdown (p50 ms over {complete} turns): {}",
        line.join(", ")
    );
    if let Some(slowest) = slowest.filter(|_| !slowest_parts.is_empty()) {
        println!(
            "BENCH turns breakdown of the slowest turn (overhead {:.2} ms): {}",
            slowest.overhead_ms(),
            slowest_parts.join(", ")
        );
    }
}

/// The five largest overheads and which message of its session each turn was (a session's first turns meet cold
/// paths: new session state, first scripts, first streams).
fn print_slowest(turns: &[Turn]) {
    let mut by_overhead: Vec<&Turn> = turns.iter().collect();
    by_overhead.sort_by(|a, b| b.overhead_ms().total_cmp(&a.overhead_ms()));
    let top: Vec<String> = by_overhead
        .iter()
        .take(5)
        .map(|t| format!("{:.2} ms (message {})", t.overhead_ms(), t.index))
        .collect();
    println!("BENCH turns slowest: {}", top.join(", "));
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let count = |at: usize, default: usize| {
        args.get(at)
            .map(|v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .expect("SESSIONS and MESSAGES are positive integers")
            })
            .unwrap_or(default)
    };
    let (sessions, messages) = (count(0, 20), count(1, 25));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(turns(sessions, messages));
}

/// Deletes the keys under `prefix` and the sessions' lock and fence keys (`sesslock:`/`sessfence:`, outside the
/// prefix); returns how many went.
async fn remove_keys(prefix: &str, session_keys: &[String]) -> usize {
    use redis::AsyncCommands as _;
    let client = redis::Client::open(e2e_support::REDIS_URL).expect("the Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("a connection to the shared Redis");
    let mut keys: Vec<String> = Vec::new();
    {
        let mut scan = conn
            .scan_match::<_, String>(format!("{prefix}:*"))
            .await
            .expect("SCAN");
        while let Some(key) = futures::StreamExt::next(&mut scan).await {
            keys.push(key.expect("a key from SCAN"));
        }
    }
    for session_key in session_keys {
        keys.push(format!("sesslock:{session_key}"));
        keys.push(format!("sessfence:{session_key}"));
    }
    let mut removed = 0;
    for batch in keys.chunks(1_000) {
        let n: usize = conn.unlink(batch).await.expect("UNLINK");
        removed += n;
    }
    removed
}

/// Round trips measured beside the turns, every 10 ms, when `ACF_BENCH_PROBES` is set: a read on the stores'
/// shared Redis connection and a `GetVersion` on the client's channel to the engine. Under load they show
/// whether a turn's wait is in Redis, in the engine, or in neither (then: the worker's own runtime). Off by
/// default: at a few turns per second the probes' own CPU would count in `cpu_ms_per_turn`.
struct Probe {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<(Vec<f64>, Vec<f64>)>,
}

impl Probe {
    fn start(h: &Arc<Harness>) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let stores = h.backend.stores.clone();
        let mut dispatcher = h.client.connection().dispatcher();
        let task = tokio::spawn(async move {
            let (mut redis, mut engine) = (Vec::new(), Vec::new());
            let mut every = tokio::time::interval(Duration::from_millis(10));
            loop {
                tokio::select! {
                    _ = stopped.changed() => return (redis, engine),
                    _ = every.tick() => {}
                }
                let at = Instant::now();
                stores
                    .sessions
                    .get("bench-probe")
                    .await
                    .expect("probe read");
                redis.push(ms(at.elapsed()));
                let at = Instant::now();
                dispatcher
                    .get_version(acf_sdk::proto::GetVersionRequest {})
                    .await
                    .expect("probe GetVersion");
                engine.push(ms(at.elapsed()));
            }
        });
        Self { stop, task }
    }

    async fn finish(self) -> String {
        let _ = self.stop.send(true);
        let (mut redis, mut engine) = self.task.await.expect("probe task");
        redis.sort_by(f64::total_cmp);
        engine.sort_by(f64::total_cmp);
        let line = |values: &[f64]| {
            if values.is_empty() {
                return "none".to_owned();
            }
            format!(
                "p50 {:.2} ms, p99 {:.2} ms",
                percentile(values, 50.0),
                percentile(values, 99.0)
            )
        };
        format!(
            "BENCH turns probes ({} each, every 10 ms during the turns): Redis read on the shared connection {}; \
             engine GetVersion on the client's channel {}",
            redis.len(),
            line(&redis),
            line(&engine)
        )
    }
}

/// Whether `ACF_BENCH_START=together` asks for every session's first message at the same instant (default:
/// `spread`, over one window).
fn start_together() -> bool {
    match std::env::var("ACF_BENCH_START").as_deref() {
        Err(_) | Ok("spread") => false,
        Ok("together") => true,
        Ok(other) => panic!("ACF_BENCH_START is `spread` (default) or `together`, not `{other}`"),
    }
}

/// Sessions talking at once; each sends its next message when the previous one was answered.
async fn turns(sessions: usize, messages: usize) {
    let slots =
        u32::try_from(env_count("ACF_BENCH_SLOTS", sessions.max(100) * 4)).unwrap_or(u32::MAX);
    let step_times = StepTimes::install();
    let h = Arc::new(Harness::start(Mode::Echo(Duration::ZERO), WINDOW_MS, slots).await);
    let cpu_before = process_cpu_ms();
    let runqueue_before = runqueue_wait_ms();
    let started = Instant::now();
    let mut tasks = Vec::new();
    let together = start_together();
    for index in 0..sessions {
        let h = h.clone();
        // Independent users do not start typing at the same instant: the first messages are spread over one
        // window (session i starts i/SESSIONS of a window late), after which each session keeps its own pace.
        // `ACF_BENCH_START=together` starts them all at once, so the sessions move in lockstep and every step
        // runs as a burst of SESSIONS (the thundering-herd case).
        let offset = if together {
            Duration::ZERO
        } else {
            Duration::from_millis(WINDOW_MS) * u32::try_from(index).unwrap_or(u32::MAX)
                / u32::try_from(sessions).unwrap_or(u32::MAX)
        };
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let user = Conversation::new();
            let mut turns = Vec::new();
            let mut session_key = String::new();
            for n in 0..messages {
                let sent = Instant::now();
                let input = user.message(&format!("message {n}"));
                session_key = input.session_key();
                let submitted = h.send(&input).await;
                let submitted_at = Instant::now();
                let out = submitted.run.result().await.expect("run");
                let answered = Instant::now();
                let accumulated: Accumulated = out.step("accumulate").unwrap();
                let agent: AgentOutcome = out.step("run_agent").unwrap();
                turns.push(Turn {
                    message_id: input.message_id.clone(),
                    index: n,
                    sent,
                    submitted: submitted_at,
                    answered,
                    waited_ms: accumulated.waited_us as f64 / 1000.0,
                    brain_ms: agent.brain_ms as f64,
                    late_ms: accumulated.window_late_us as f64 / 1000.0,
                });
            }
            (session_key, turns)
        }));
    }
    let probe = std::env::var_os("ACF_BENCH_PROBES").map(|_| Probe::start(&h));
    let mut turns = Vec::new();
    let mut session_keys = Vec::new();
    for task in tasks {
        let (session_key, session_turns) = task.await.unwrap();
        session_keys.push(session_key);
        turns.extend(session_turns);
    }
    let probe = match probe {
        Some(probe) => Some(probe.finish().await),
        None => None,
    };
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_ms = process_cpu_ms() - cpu_before;
    let runqueue_ms = runqueue_wait_ms() - runqueue_before;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut overheads: Vec<f64> = turns.iter().map(Turn::overhead_ms).collect();
    let mut lateness: Vec<f64> = turns.iter().map(|t| t.late_ms).collect();
    overheads.sort_by(f64::total_cmp);
    lateness.sort_by(f64::total_cmp);
    if let Some(times) = &step_times {
        print_breakdown(times, &turns);
    }
    print_slowest(&turns);
    let sent: Vec<&String> = turns.iter().map(|t| &t.message_id).collect();
    let turns = turns.len();

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
        && sent.iter().all(|id| answers.get(id.as_str()) == Some(&1));

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
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        entries.len(),
    );
    if let Some(probe) = probe {
        println!("{probe}");
    }
    // A run leaves about ten keys per turn behind, kept for days by their TTLs: remove them, so that the shared
    // Redis (and the next run measured on it) does not carry every earlier run's keyspace.
    let removed = remove_keys(&h.prefix, &session_keys).await;
    println!("BENCH turns: removed the run's {removed} Redis keys");
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
