//! Scaling out: three `ruche-worker run` processes on one engine and one Redis (the shared server with a key prefix
//! of their own, or a private three-master Redis Cluster) share the turns of many sessions; one is SIGKILLed
//! mid-run. Every message must be answered exactly once on the response stream, and every worker must have
//! committed turns (the load was spread, not served by one).

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use acf_sdk::engine::Engine;
use acf_worker::models::Conversation;
use acf_worker::models::TurnOutcome;
use acf_worker::stores::{Backend, RedisConnectOptions, StoreSettings};
use support::fleet::{StreamChecker, WorkerProcess, client_of, still_open, submit, worker_env};
use uuid::Uuid;

const SESSIONS: usize = 30;
const MESSAGES_PER_SESSION: usize = 6;
/// Turns the worker logs as committed by itself for the first time (a replayed commit logs `first_commit: false`).
const FIRST_COMMIT: &str = r#""first_commit":true"#;

fn first_commits(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains(r#""event":"turn_committed""#) && line.contains(FIRST_COMMIT))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_the_load_and_survive_losing_one() {
    three_workers_lose_one(support::SHARED_REDIS_URL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_a_redis_cluster() {
    let cluster = support::cluster::RedisCluster::start();
    three_workers_lose_one(&cluster.url()).await;
}

async fn three_workers_lose_one(redis_url: &str) {
    let prefix = support::unique("scale");
    // A dead worker's running steps are re-queued once it has been silent for as long as it stays eligible for new
    // work (Hatchet's 5 s). A shorter re-queue delay would re-queue live workers' steps between their 4 s
    // heartbeats, and strand the steps assigned to a dead worker after its re-queue until their timeout.
    let engine = Engine::builder()
        .heartbeat_eligibility(Duration::from_secs(5))
        .reassign_after(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let client = client_of(&engine);
    let logs = tempfile::tempdir().unwrap();
    let mut env = worker_env(&engine, redis_url, &prefix);
    env.extend(
        [
            ("RUCHE_SESSION__LOCK__TTL_MS", "2000"),
            ("RUCHE_SESSION__LOCK__BLOCKING_TIMEOUT_MS", "300"),
            ("RUCHE_SESSION__LOCK__HEARTBEAT_INTERVAL_MS", "400"),
            ("RUCHE_ACCUMULATION__MIN_WAIT_MS", "50"),
            ("RUCHE_ACCUMULATION__MAX_WAIT_MS", "200"),
            ("RUCHE_ACCUMULATION__MAX_WINDOW_MS", "600"),
            // Few slots per worker, so one worker cannot take every session's run at once.
            ("RUCHE_JOBS__HATCHET__WORKER_CONCURRENCY", "8"),
            ("RUCHE_JOBS__HATCHET__RETRY_MAX_ATTEMPTS", "5"),
            ("RUCHE_JOBS__HATCHET__RETRY_BACKOFF_SECONDS", "1"),
            ("RUCHE_LIVENESS__SWEEP_INTERVAL_MS", "200"),
            ("RUCHE_LIVENESS__PENDING_GRACE_MS", "2000"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let mut workers: Vec<WorkerProcess> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            WorkerProcess::start(env.clone(), logs.path().join(format!("worker-{name}.log")))
        })
        .collect();
    for worker in &workers {
        worker.wait_ready().await;
    }
    let backend = Backend::redis(
        redis_url,
        StoreSettings {
            key_prefix: prefix.clone(),
            ..StoreSettings::default()
        },
        &RedisConnectOptions::default(),
    )
    .await
    .unwrap();

    let checker = StreamChecker::start(&backend);

    // Rounds over every session, 15 ms between messages; worker a is killed a third of the way through, while
    // it holds turns in every stage, and not restarted.
    let sessions: Vec<Conversation> = (0..SESSIONS).map(|_| Conversation::new()).collect();
    let total = SESSIONS * MESSAGES_PER_SESSION;
    let t0 = Instant::now();
    let mut submitted: Vec<Uuid> = Vec::with_capacity(total);
    let mut sends = Vec::with_capacity(total);
    let mut killed_with = None;
    for n in 0..total {
        if n == total / 3 {
            // The kill must find worker a mid-work, with turns of its own committed: on a loaded machine its first
            // commits can lag the sends, so wait for one (bounded) rather than kill an idle worker.
            let busy_by = Instant::now() + Duration::from_secs(20);
            while first_commits(&workers[0].log()) == 0 && Instant::now() < busy_by {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            killed_with = Some(first_commits(&workers[0].log()));
            workers[0].kill();
            eprintln!("worker a killed at {:?} after {n} messages", t0.elapsed());
        }
        let input = sessions[n % SESSIONS].message(&format!("message {n}"));
        submitted.push(input.message_id.parse().unwrap());
        let (backend, client) = (backend.clone(), client.clone());
        sends.push(tokio::spawn(async move {
            submit(&backend, &client, &input).await;
        }));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    for send in sends {
        send.await.unwrap();
    }

    // Generous for a loaded machine; only a failure waits this long.
    let seen = checker
        .finish(
            submitted.iter().copied(),
            Duration::from_secs(60),
            Duration::from_secs(1),
        )
        .await;
    let mut problems = Vec::new();
    for id in &submitted {
        match seen.deliveries.get(id).map(Vec::as_slice) {
            None | Some([]) => problems.push(format!("message {id} never answered")),
            Some([(_, TurnOutcome::Complete, _)]) => {}
            Some(other) => problems.push(format!("message {id} delivered as {other:?}")),
        }
    }
    for (i, open) in still_open(&backend, &sessions).await {
        problems.push(format!("session {i}: {} message(s) still open", open.len()));
    }
    let commits: BTreeMap<&str, usize> = ["a", "b", "c"]
        .into_iter()
        .zip(workers.iter().map(|w| first_commits(&w.log())))
        .collect();
    let last = seen
        .deliveries
        .iter()
        .flat_map(|(id, ds)| ds.iter().map(move |(at, _, _)| (*at, *id)))
        .max();
    eprintln!(
        "{total} messages over {SESSIONS} sessions: {} turns, the last answered {:?} after the first send \
         ({:?}), first commits per worker {commits:?}",
        seen.entries.len(),
        last.map(|(at, _)| at - t0),
        last.map(|(_, id)| id),
    );
    let killed_with = killed_with.expect("worker a was killed");
    if killed_with == 0 {
        problems.push("worker a committed nothing before it was killed".into());
    }
    for (name, count) in &commits {
        if *count == 0 {
            problems.push(format!("worker {name} committed no turn"));
        }
    }
    if !problems.is_empty() {
        let logs = logs.keep();
        panic!(
            "scale-out failed; worker logs in {}:\n{}",
            logs.display(),
            problems.join("\n")
        );
    }
    workers.clear();
    engine.shutdown().await;
    if std::env::var_os("SCALE_KEEP_LOGS").is_some() {
        eprintln!("worker logs kept in {}", logs.keep().display());
    }
}
