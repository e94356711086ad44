//! Redis implementations of the stores, all on one [`RedisStores`].

mod audit;
mod commit;
mod connect;
mod inbox;
mod messages;
mod pending;
mod scripts;
mod session;

use std::sync::{Arc, Mutex};

use redis::Script;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use tokio::sync::Semaphore;

pub use self::connect::{RedisConnectOptions, connect_redis};
use super::error::StoreError;
use super::settings::{Keys, StoreSettings};

/// Every store trait on Redis. Cloning is cheap; clones share connections.
#[derive(Clone)]
pub struct RedisStores {
    client: redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    settings: StoreSettings,
    scripts: Arc<Scripts>,
    /// Idle dedicated connections for blocking inbox reads, which must not stall the shared connection.
    blocking: Arc<Mutex<Vec<MultiplexedConnection>>>,
    /// One permit per dedicated blocking connection that may be open ([`StoreSettings::blocking_connections`]).
    /// A wait holds its permit while its connection is busy, including a `BLPOP` still pending after the wait's
    /// deadline; idle connections hold none.
    blocking_permits: Arc<Semaphore>,
}

struct Scripts {
    insert_message: Script,
    absorb: Script,
    release_absorbed: Script,
    record_arrival: Script,
    commit: Script,
    claim_due: Script,
    settle: Script,
    epoch: Script,
}

impl std::fmt::Debug for RedisStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStores")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RedisStores {
    /// Connects to `url` and checks the server answers.
    pub async fn connect(
        url: &str,
        settings: StoreSettings,
        options: &RedisConnectOptions,
    ) -> Result<Self, StoreError> {
        let client = connect::redis_client(url).map_err(StoreError::unavailable("connect"))?;
        let conn = connect_redis(url, options)
            .await
            .map_err(StoreError::unavailable("connect"))?;
        Ok(Self::new(client, conn, settings))
    }

    /// Uses an existing connection (e.g. the mutex's); `client` opens the dedicated blocking connections.
    pub fn new(client: redis::Client, conn: ConnectionManager, settings: StoreSettings) -> Self {
        let blocking_connections = settings
            .blocking_connections
            .clamp(1, Semaphore::MAX_PERMITS);
        Self {
            client,
            conn,
            keys: Keys::new(&settings),
            settings,
            scripts: Arc::new(Scripts {
                insert_message: Script::new(scripts::INSERT_MESSAGE),
                absorb: Script::new(&scripts::absorb()),
                release_absorbed: Script::new(scripts::RELEASE_ABSORBED),
                record_arrival: Script::new(scripts::RECORD_ARRIVAL),
                commit: Script::new(&scripts::commit()),
                claim_due: Script::new(pending::CLAIM_DUE),
                settle: Script::new(pending::SETTLE),
                epoch: Script::new(pending::EPOCH),
            }),
            blocking: Arc::new(Mutex::new(Vec::new())),
            blocking_permits: Arc::new(Semaphore::new(blocking_connections)),
        }
    }

    /// The shared connection (hand it to [`crate::mutex::RedisSessionMutex::new`] to share it).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A session mutex on the same connection (the fences it hands out are the ones these stores check).
    pub fn session_mutex(&self) -> crate::mutex::RedisSessionMutex {
        crate::mutex::RedisSessionMutex::new(self.conn.clone())
    }

    /// The settings in use.
    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}
