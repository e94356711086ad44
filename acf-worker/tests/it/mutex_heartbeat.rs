//! The lease heartbeat, on Redis and in memory.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use acf_worker::mutex::{Heartbeat, LockOptions, SessionMutex};
use support::{SHARED_REDIS_URL, unique_session};

macro_rules! both_backends {
    ($($body:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    let mutex = acf_worker::mutex::RedisSessionMutex::connect(super::SHARED_REDIS_URL).await.unwrap();
                    super::$body(std::sync::Arc::new(mutex)).await;
                }
            )*
        }
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(std::sync::Arc::new(acf_worker::mutex::MemorySessionMutex::new())).await;
                }
            )*
        }
    };
}

both_backends!(
    a_heartbeat_keeps_a_slow_holder_locked,
    a_heartbeat_notices_a_lost_lock
);

const TTL: Duration = Duration::from_millis(300);

async fn a_heartbeat_keeps_a_slow_holder_locked(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("heartbeat");
    let lease = mutex
        .acquire(&session, LockOptions::new(TTL, Duration::ZERO))
        .await
        .unwrap();
    let heartbeat = Heartbeat::start(
        mutex.clone(),
        lease.clone(),
        TTL,
        Duration::from_millis(100),
    );
    // A "brain" four TTLs long.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(!heartbeat.is_lost());
    assert!(
        mutex.try_acquire(&session, TTL).await.unwrap().is_none(),
        "the lock must still be held"
    );
    let report = heartbeat.stop().await;
    assert!(!report.lost);
    assert!(
        report.extensions >= 5,
        "only {} extensions",
        report.extensions
    );
    assert_eq!(report.errors, 0);
    // Stopped: the lock now runs out on its own.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!mutex.is_locked(&session).await.unwrap());
}

async fn a_heartbeat_notices_a_lost_lock(mutex: Arc<dyn SessionMutex>) {
    let session = unique_session("heartbeat-lost");
    let lease = mutex
        .acquire(&session, LockOptions::new(TTL, Duration::ZERO))
        .await
        .unwrap();
    let heartbeat = Heartbeat::start(mutex.clone(), lease, TTL, Duration::from_millis(50));
    mutex.force_release(&session).await.unwrap();
    let thief = mutex
        .acquire(
            &session,
            LockOptions::new(Duration::from_secs(10), Duration::ZERO),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(heartbeat.is_lost());
    let report = heartbeat.stop().await;
    assert!(report.lost);
    // The heartbeat never touched the new holder's lock.
    assert!(mutex.is_current(&thief).await.unwrap());
    assert!(mutex.try_acquire(&session, TTL).await.unwrap().is_none());
    mutex.release(&thief).await.unwrap();
}
