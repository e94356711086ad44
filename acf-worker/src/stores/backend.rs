//! Opening the configured backend: the session mutex and the stores that check its fences.

use std::sync::Arc;
use std::time::Duration;

use super::{CadenceSettings, RedisConnectOptions, RedisStores, StoreError, StoreSettings, Stores};
use crate::config::{SessionStoreSettings, StoreBackend};
use crate::mutex::{MemorySessionMutex, SessionMutex};

impl From<&SessionStoreSettings> for StoreSettings {
    fn from(config: &SessionStoreSettings) -> Self {
        Self {
            key_prefix: config.key_prefix.clone(),
            message_ttl: config.message_ttl(),
            session_ttl: config.session_ttl(),
            record_ttl: config.record_ttl(),
            inbox_ttl: config.inbox_ttl(),
            response_stream: config.response_stream.clone(),
            response_stream_max_len: config.response_stream_max_len,
            cadence: CadenceSettings {
                max_samples: config.cadence.max_samples,
                max_gap: Duration::from_millis(config.cadence.max_gap_ms),
            },
            blocking_connections: usize::try_from(config.pool_size).unwrap_or(usize::MAX),
        }
    }
}

impl From<&SessionStoreSettings> for RedisConnectOptions {
    fn from(config: &SessionStoreSettings) -> Self {
        Self {
            connect_timeout: config.pool_timeout(),
            ..Self::default()
        }
    }
}

/// A session mutex and the stores sharing its fences, on one backend.
#[derive(Clone)]
pub struct Backend {
    /// The session mutex.
    pub mutex: Arc<dyn SessionMutex>,
    /// The stores.
    pub stores: Stores,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

impl Backend {
    /// In-memory mutex and stores.
    pub fn memory(settings: StoreSettings) -> Self {
        let mutex = MemorySessionMutex::new();
        let stores = Stores::memory(&mutex, settings);
        Self {
            mutex: Arc::new(mutex),
            stores,
        }
    }

    /// Redis mutex and stores on one connection to `url`.
    pub async fn redis(
        url: &str,
        settings: StoreSettings,
        options: &RedisConnectOptions,
    ) -> Result<Self, StoreError> {
        let stores = RedisStores::connect(url, settings, options).await?;
        let mutex = stores.session_mutex();
        Ok(Self {
            mutex: Arc::new(mutex),
            stores: Stores::from_backend(Arc::new(stores)),
        })
    }

    /// The backend `[storage.session]` selects (`redis` at `connection_url`, or `memory`).
    pub async fn open(config: &SessionStoreSettings) -> Result<Self, StoreError> {
        let settings = StoreSettings::from(config);
        match config.backend {
            StoreBackend::Memory => {
                tracing::info!(backend = "memory", key_prefix = %settings.key_prefix, "session_store_created");
                Ok(Self::memory(settings))
            }
            StoreBackend::Redis => {
                let backend =
                    Self::redis(config.connection_url.expose(), settings, &config.into()).await?;
                tracing::info!(backend = "redis", url = %config.connection_url, "session_store_created");
                Ok(backend)
            }
        }
    }
}
