//! Opening the configured backend, and settings conversions from the configuration sections.

use crate::support;

use std::time::Duration;

use acf_worker::brain::{self, BrainError};
use acf_worker::config::{
    BrainKind, BrainSettings, CadenceSettings, ConnectionUrl, LockSettings, SessionStoreSettings,
    StoreBackend,
};
use acf_worker::models::time::now_utc;
use acf_worker::mutex::LockOptions;
use acf_worker::stores::{Backend, StoreError, StoreSettings, StoredMessage};
use support::{SHARED_REDIS_URL, free_port, raw_connection, unique, unique_session};
use uuid::Uuid;

fn config(backend: StoreBackend, url: &str) -> SessionStoreSettings {
    SessionStoreSettings {
        backend,
        connection_url: ConnectionUrl::new(url),
        key_prefix: unique("backend"),
        pool_size: 3,
        message_ttl_seconds: 120,
        session_ttl_seconds: 60,
        record_ttl_seconds: 90,
        inbox_ttl_seconds: 30,
        response_stream: "out".into(),
        response_stream_max_len: 77,
        cadence: CadenceSettings {
            max_samples: 7,
            max_gap_ms: 9_000,
        },
        ..SessionStoreSettings::default()
    }
}

#[test]
fn store_settings_follow_the_configuration() {
    let config = config(StoreBackend::Redis, SHARED_REDIS_URL);
    let settings = StoreSettings::from(&config);
    assert_eq!(settings.key_prefix, config.key_prefix);
    assert_eq!(settings.message_ttl, Duration::from_secs(120));
    assert_eq!(settings.session_ttl, Duration::from_secs(60));
    assert_eq!(settings.record_ttl, Duration::from_secs(90));
    assert_eq!(settings.inbox_ttl, Duration::from_secs(30));
    assert_eq!(settings.response_stream, "out");
    assert_eq!(settings.response_stream_max_len, 77);
    assert_eq!(settings.cadence.max_samples, 7);
    assert_eq!(settings.cadence.max_gap, Duration::from_secs(9));
    assert_eq!(
        settings.blocking_connections, 3,
        "pool_size caps inbox waits"
    );
}

#[test]
fn lock_options_follow_the_configuration() {
    let options = LockOptions::from(&LockSettings {
        ttl_ms: 45_000,
        blocking_timeout_ms: 0,
        heartbeat_interval_ms: 15_000,
    });
    assert_eq!(options.ttl, Duration::from_secs(45));
    assert_eq!(options.wait, Duration::ZERO);
}

async fn round_trip(backend: &Backend) -> StoredMessage {
    let session = unique_session("backend");
    let message = StoredMessage::pending(Uuid::new_v4(), &session, "api", "hi", now_utc());
    assert!(backend.stores.messages.insert(&message).await.unwrap());
    let lease = backend
        .mutex
        .acquire(
            &session,
            LockOptions::new(Duration::from_secs(5), Duration::ZERO),
        )
        .await
        .unwrap();
    let absorbed = backend
        .stores
        .messages
        .absorb(&lease, Uuid::new_v4(), &[message.id])
        .await;
    assert_eq!(
        absorbed.unwrap(),
        [message.id],
        "the mutex and the stores share fences"
    );
    backend.mutex.release(&lease).await.unwrap();
    message
}

#[tokio::test]
async fn the_memory_backend_opens() {
    let backend = Backend::open(&config(StoreBackend::Memory, "redis://unused:1"))
        .await
        .unwrap();
    round_trip(&backend).await;
}

#[tokio::test]
async fn the_redis_backend_opens_with_the_configured_prefix_and_ttl() {
    let config = config(StoreBackend::Redis, SHARED_REDIS_URL);
    let backend = Backend::open(&config).await.unwrap();
    let message = round_trip(&backend).await;
    let mut raw = raw_connection(SHARED_REDIS_URL).await;
    let key = format!("{}:msg:{}", config.key_prefix, message.id);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        ttl > 100_000 && ttl <= 120_000,
        "message TTL {ttl} ms at `{key}`"
    );
}

#[tokio::test]
async fn an_unreachable_redis_backend_is_a_clear_error() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let err = Backend::open(&config(StoreBackend::Redis, &url))
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                operation: "connect",
                ..
            }
        ),
        "got {err:?}"
    );
}

#[test]
fn the_configured_brain_is_built() {
    let echo = brain::from_settings(&BrainSettings::default()).unwrap();
    assert_eq!(echo.name(), "echo");
    let http = brain::from_settings(&BrainSettings {
        kind: BrainKind::Http,
        url: Some(ConnectionUrl::new("http://127.0.0.1:9/brain")),
        timeout_ms: 1_000,
        ..BrainSettings::default()
    })
    .unwrap();
    assert_eq!(http.name(), "http");
    let missing_url = brain::from_settings(&BrainSettings {
        kind: BrainKind::Http,
        url: None,
        timeout_ms: 1_000,
        ..BrainSettings::default()
    });
    assert!(
        matches!(missing_url, Err(BrainError::Failed(message)) if message.contains("brain.url"))
    );
}
