//! SessionMutex behaviour, run against real Redis and the in-memory implementation with the same test bodies.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use acf_worker::mutex::{
    KeyLayout, LockOptions, LockOutcome, MemorySessionMutex, MutexError, RedisSessionMutex,
    SessionMutex, lock_key, session_key,
};
use support::{RedisServer, SHARED_REDIS_URL, free_port, raw_connection, unique_session};

async fn redis_mutex() -> Arc<dyn SessionMutex> {
    Arc::new(
        RedisSessionMutex::connect(SHARED_REDIS_URL)
            .await
            .expect("shared redis reachable"),
    )
}

fn memory_mutex() -> Arc<dyn SessionMutex> {
    Arc::new(MemorySessionMutex::new())
}

fn opts(ttl_ms: u64, wait_ms: u64) -> LockOptions {
    LockOptions::new(
        Duration::from_millis(ttl_ms),
        Duration::from_millis(wait_ms),
    )
}

/// Declares one test per backend for a shared async body `fn(Arc<dyn SessionMutex>)`, and one running every body on
/// a Redis Cluster.
macro_rules! both_backends {
    ($($body:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $body() {
                    super::$body(super::redis_mutex().await).await;
                }
            )*
        }
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $body() {
                    super::$body(super::memory_mutex()).await;
                }
            )*
        }
        /// Every body in turn on one private three-master Redis Cluster (hash-tagged lock and fence keys).
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn on_a_redis_cluster() {
            let cluster = support::cluster::RedisCluster::start();
            let mutex: Arc<dyn SessionMutex> = Arc::new(
                RedisSessionMutex::connect(&cluster.url())
                    .await
                    .expect("the cluster answers"),
            );
            $(
                eprintln!("on a Redis Cluster: {}", stringify!($body));
                $body(Arc::clone(&mutex)).await;
            )*
        }
    };
}

both_backends!(
    concurrent_acquirers_never_overlap,
    expiry_frees_a_dead_holders_lock,
    stale_holder_can_neither_release_nor_extend,
    extension_keeps_the_lock_alive_past_its_ttl,
    contention_is_a_typed_error_after_the_wait,
    zero_wait_is_a_single_attempt,
    release_is_idempotent_and_frees_the_lock,
    force_release_removes_any_holder,
    fences_increase_and_track_currency,
    zero_ttl_is_rejected,
);

async fn concurrent_acquirers_never_overlap(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("overlap");
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let mutex = Arc::clone(&mutex);
        let session = session.clone();
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            for _ in 0..3 {
                let lease = mutex
                    .acquire(&session, opts(10_000, 30_000))
                    .await
                    .expect("acquire within the wait");
                let start = Instant::now();
                tokio::time::sleep(Duration::from_millis(3)).await;
                let end = Instant::now();
                assert_eq!(
                    mutex.release(&lease).await.expect("release"),
                    LockOutcome::Applied
                );
                held.push((start, end, lease.fence));
            }
            held
        }));
    }
    let mut intervals = Vec::new();
    for task in tasks {
        intervals.extend(task.await.expect("task finished"));
    }
    assert_eq!(intervals.len(), 36);
    intervals.sort_by_key(|(start, _, _)| *start);
    for pair in intervals.windows(2) {
        let (_, end_a, fence_a) = pair[0];
        let (start_b, _, fence_b) = pair[1];
        assert!(end_a <= start_b, "two holders overlapped");
        assert!(
            fence_b > fence_a,
            "fences must increase with each acquisition ({fence_a} then {fence_b})"
        );
    }
    assert!(!mutex.is_locked(&session).await.unwrap());
}

async fn expiry_frees_a_dead_holders_lock(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("expiry");
    let dead = mutex
        .acquire(&session, opts(200, 0))
        .await
        .expect("first acquire");
    // The holder "dies": it never releases. A second worker must get the lock once the TTL runs out.
    let started = Instant::now();
    let next = mutex
        .acquire(&session, opts(5_000, 5_000))
        .await
        .expect("lock freed by expiry");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "the lock was free before its TTL ran out"
    );
    assert!(next.fence > dead.fence);
    assert_ne!(next.token, dead.token);
    mutex.release(&next).await.unwrap();
}

async fn stale_holder_can_neither_release_nor_extend(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("stale");
    let stale = mutex.acquire(&session, opts(100, 0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = mutex
        .acquire(&session, opts(10_000, 0))
        .await
        .expect("expired lock is free");

    assert_eq!(mutex.release(&stale).await.unwrap(), LockOutcome::NotOwned);
    assert_eq!(
        mutex.extend(&stale, Duration::from_secs(60)).await.unwrap(),
        LockOutcome::NotOwned
    );
    assert!(
        mutex.is_locked(&session).await.unwrap(),
        "the stale release must not delete the new holder's lock"
    );
    assert!(!mutex.is_current(&stale).await.unwrap());
    assert!(mutex.is_current(&fresh).await.unwrap());
    // The stale extend did not stretch the new holder's lock to 60 s either: it still expires on its own TTL.
    assert!(
        mutex
            .try_acquire(&session, Duration::from_secs(1))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(mutex.release(&fresh).await.unwrap(), LockOutcome::Applied);
    assert!(!mutex.is_locked(&session).await.unwrap());
}

async fn extension_keeps_the_lock_alive_past_its_ttl(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("extend");
    let lease = mutex.acquire(&session, opts(400, 0)).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1_200) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            mutex
                .extend(&lease, Duration::from_millis(400))
                .await
                .unwrap(),
            LockOutcome::Applied
        );
        assert!(
            mutex
                .try_acquire(&session, Duration::from_secs(1))
                .await
                .unwrap()
                .is_none(),
            "lock lost while extended"
        );
    }
    // Three TTLs have passed; the lock is still ours.
    assert!(mutex.is_locked(&session).await.unwrap());
    assert!(mutex.is_current(&lease).await.unwrap());
    // Once the heartbeat stops, the lock expires.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!mutex.is_locked(&session).await.unwrap());
}

async fn contention_is_a_typed_error_after_the_wait(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("contended");
    let holder = mutex.acquire(&session, opts(10_000, 0)).await.unwrap();
    let started = Instant::now();
    let err = mutex
        .acquire(&session, opts(10_000, 300))
        .await
        .expect_err("lock is held");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "gave up early after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "overshot the wait: {waited:?}"
    );
    match err {
        MutexError::Contended { key, waited_ms } => {
            assert!(is_lock_key_of(&key, &session), "{key}");
            assert!(waited_ms >= 300);
        }
        other => panic!("expected Contended, got {other:?}"),
    }
    assert!(err_is_retryable(&session, &mutex).await);
    mutex.release(&holder).await.unwrap();
}

/// The lock key of `session` in one of the two layouts (one server, or a cluster's hash tag).
fn is_lock_key_of(key: &str, session: &str) -> bool {
    key == lock_key(session) || key == KeyLayout::Cluster.lock_key(session)
}

async fn err_is_retryable(session: &str, mutex: &Arc<dyn SessionMutex>) -> bool {
    mutex
        .acquire(session, opts(1_000, 0))
        .await
        .expect_err("still held")
        .is_retryable()
}

async fn zero_wait_is_a_single_attempt(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("nowait");
    let lease = mutex
        .acquire(&session, opts(10_000, 0))
        .await
        .expect("free lock taken on the single attempt");
    let started = Instant::now();
    assert!(matches!(
        mutex.acquire(&session, opts(10_000, 0)).await,
        Err(MutexError::Contended { .. })
    ));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a zero wait must not block"
    );
    mutex.release(&lease).await.unwrap();
}

async fn release_is_idempotent_and_frees_the_lock(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("release");
    let lease = mutex.acquire(&session, opts(10_000, 0)).await.unwrap();
    assert!(mutex.is_locked(&session).await.unwrap());
    assert_eq!(mutex.release(&lease).await.unwrap(), LockOutcome::Applied);
    assert_eq!(mutex.release(&lease).await.unwrap(), LockOutcome::NotOwned);
    assert!(!mutex.is_locked(&session).await.unwrap());
    let again = mutex
        .acquire(&session, opts(10_000, 0))
        .await
        .expect("released lock is free at once");
    mutex.release(&again).await.unwrap();
}

async fn force_release_removes_any_holder(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("force");
    let lease = mutex.acquire(&session, opts(10_000, 0)).await.unwrap();
    assert!(mutex.force_release(&session).await.unwrap());
    assert!(!mutex.is_locked(&session).await.unwrap());
    assert!(
        !mutex.force_release(&session).await.unwrap(),
        "nothing left to delete"
    );
    // The evicted holder's lease stays current until someone else acquires: no conflicting writer exists yet.
    assert!(mutex.is_current(&lease).await.unwrap());
    let next = mutex.acquire(&session, opts(10_000, 0)).await.unwrap();
    assert!(!mutex.is_current(&lease).await.unwrap());
    mutex.release(&next).await.unwrap();
}

async fn fences_increase_and_track_currency(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("fence");
    assert_eq!(mutex.current_fence(&session).await.unwrap(), 0);
    let first = mutex.acquire(&session, opts(10_000, 0)).await.unwrap();
    // A new counter is seeded from the clock (microseconds), so fences survive a Redis data loss.
    let seed_floor = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap() - 60_000_000;
    assert!(
        first.fence > seed_floor,
        "fence {} not seeded from the clock",
        first.fence
    );
    assert_eq!(mutex.current_fence(&session).await.unwrap(), first.fence);
    assert!(is_lock_key_of(&first.key, &session), "{}", first.key);
    assert_eq!(first.session_key, session);
    assert_eq!(first.ttl_ms, 10_000);
    assert!(mutex.is_current(&first).await.unwrap());
    mutex.release(&first).await.unwrap();
    // Released but not replaced: still current (nobody can have written since).
    assert!(mutex.is_current(&first).await.unwrap());
    let second = mutex.acquire(&session, opts(10_000, 0)).await.unwrap();
    assert_eq!(second.fence, first.fence + 1);
    assert_eq!(mutex.current_fence(&session).await.unwrap(), second.fence);
    assert!(!mutex.is_current(&first).await.unwrap());
    // A forged lease with the right fence but a wrong token is not current while the real holder holds the lock.
    let forged = acf_worker::mutex::Lease {
        token: "forged".into(),
        ..second.clone()
    };
    assert!(!mutex.is_current(&forged).await.unwrap());
    mutex.release(&second).await.unwrap();
}

async fn zero_ttl_is_rejected(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("zero-ttl");
    let err = mutex
        .acquire(&session, opts(0, 0))
        .await
        .expect_err("zero TTL");
    assert!(matches!(err, MutexError::InvalidTtl));
    assert!(!err.is_retryable());
    assert!(!mutex.is_locked(&session).await.unwrap());
}

#[test]
fn keys_match_the_python_worker() {
    let session = session_key("tenant-123", "agent-456", "customer-789", "whatsapp");
    assert_eq!(session, "tenant-123:agent-456:customer-789:whatsapp");
    assert_eq!(
        lock_key(&session),
        "sesslock:tenant-123:agent-456:customer-789:whatsapp"
    );
    assert_eq!(
        acf_worker::mutex::fence_key(&session),
        "sessfence:tenant-123:agent-456:customer-789:whatsapp"
    );
    // On a Redis Cluster the session key is a hash tag, so the lock, the fence and the session's data share a slot.
    assert_eq!(
        KeyLayout::Cluster.lock_key(&session),
        "sesslock:{tenant-123:agent-456:customer-789:whatsapp}"
    );
    assert_eq!(
        KeyLayout::Cluster.fence_key(&session),
        "sessfence:{tenant-123:agent-456:customer-789:whatsapp}"
    );
    for channel in ["web", "whatsapp", "sms", "email", "api", "slack"] {
        let key = session_key(
            "9b2f6c1e-3d4a-4b5c-8d9e-0f1a2b3c4d5e",
            "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
            "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
            channel,
        );
        let parts: Vec<&str> = key.split(':').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[3], channel);
    }
}

#[tokio::test]
async fn redis_lock_value_is_the_token_with_a_ttl() {
    let mutex = RedisSessionMutex::connect(SHARED_REDIS_URL).await.unwrap();
    let session = unique_session("raw");
    let lease = mutex.acquire(&session, opts(5_000, 0)).await.unwrap();
    let mut raw = raw_connection(SHARED_REDIS_URL).await;
    let value: String = redis::cmd("GET")
        .arg(&lease.key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        value, lease.token,
        "the lock stores only the token, like redis-py"
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&lease.key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 5_000, "PTTL {pttl}");
    mutex.release(&lease).await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(lease.fence_key())
        .query_async(&mut raw)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_python_holder_blocks_us_and_makes_our_old_lease_stale() {
    let mutex = RedisSessionMutex::connect(SHARED_REDIS_URL).await.unwrap();
    let session = unique_session("python");
    let ours = mutex.acquire(&session, opts(100, 0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The Python worker takes the lock its own way: SET NX PX with its token, no fence.
    let mut raw = raw_connection(SHARED_REDIS_URL).await;
    let set: Option<String> = redis::cmd("SET")
        .arg(lock_key(&session))
        .arg("python-token")
        .arg("NX")
        .arg("PX")
        .arg(10_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(set.as_deref(), Some("OK"));
    assert!(
        !mutex.is_current(&ours).await.unwrap(),
        "a foreign holder makes our expired lease stale"
    );
    assert!(matches!(
        mutex.acquire(&session, opts(1_000, 50)).await,
        Err(MutexError::Contended { .. })
    ));
    assert_eq!(mutex.release(&ours).await.unwrap(), LockOutcome::NotOwned);
    let value: String = redis::cmd("GET")
        .arg(lock_key(&session))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(value, "python-token");
    let _: () = redis::cmd("DEL")
        .arg(lock_key(&session))
        .arg(ours.fence_key())
        .query_async(&mut raw)
        .await
        .unwrap();
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let err = RedisSessionMutex::connect(&url)
        .await
        .expect_err("nothing listens on that port");
    assert!(
        matches!(
            err,
            MutexError::Unavailable {
                operation: "connect",
                ..
            }
        ),
        "got {err:?}"
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains("unavailable"), "message: {err}");
}

#[tokio::test]
async fn a_lost_server_fails_operations_then_recovers() {
    let mut server = RedisServer::start();
    let mutex = RedisSessionMutex::connect(&server.url()).await.unwrap();
    let session = unique_session("lost");
    let lease = mutex.acquire(&session, opts(10_000, 0)).await.unwrap();
    server.stop();
    let err = mutex
        .acquire(&session, opts(10_000, 0))
        .await
        .expect_err("server is down");
    assert!(
        matches!(
            err,
            MutexError::Unavailable {
                operation: "acquire",
                ..
            }
        ),
        "got {err:?}"
    );
    assert!(matches!(
        mutex.release(&lease).await,
        Err(MutexError::Unavailable { .. })
    ));
    server.restart();
    // The restarted server kept nothing (no persistence); the mutex reconnects on its own.
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        match mutex.acquire(&session, opts(10_000, 0)).await {
            Ok(lease) => break lease,
            Err(MutexError::Unavailable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("mutex did not recover: {other:?}"),
        }
    };
    assert!(
        again.fence > lease.fence,
        "fences keep increasing although the server lost the counter"
    );
    assert!(!mutex.is_current(&lease).await.unwrap());
    assert_eq!(mutex.release(&again).await.unwrap(), LockOutcome::Applied);
}

#[tokio::test]
async fn memory_table_runs_writes_only_for_current_leases() {
    let mutex = MemorySessionMutex::new();
    let table = mutex.table();
    let session = unique_session("table");
    let old = mutex.acquire(&session, opts(50, 0)).await.unwrap();
    assert_eq!(table.with_current(&old, || 7), Some(7));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let new = mutex.acquire(&session, opts(10_000, 0)).await.unwrap();
    let mut ran = false;
    assert_eq!(table.with_current(&old, || ran = true), None);
    assert!(!ran, "a stale lease's write must not run");
    assert_eq!(table.with_current(&new, || 8), Some(8));
}
