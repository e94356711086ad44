//! Redis implementations of the stores, all on one [`RedisStores`].

mod audit;
mod commit;
mod connect;
mod effects;
mod inbox;
mod messages;
mod pending;
mod scripts;
mod session;

use std::sync::{Arc, Mutex};

use redis::Script;
use tokio::sync::Semaphore;

use self::connect::RedisClient;
pub use self::connect::{RedisConnectOptions, RedisConnection, cluster_nodes, connect_redis};
use super::error::StoreError;
use super::settings::{Keys, StoreSettings};
use crate::mutex::KeyLayout;

/// Every store trait on Redis. Cloning is cheap; clones share connections.
#[derive(Clone)]
pub struct RedisStores {
    client: RedisClient,
    conn: RedisConnection,
    keys: Keys,
    settings: StoreSettings,
    scripts: Arc<Scripts>,
    /// Idle dedicated connections for blocking inbox reads, which must not stall the shared connection.
    blocking: Arc<Mutex<Vec<RedisConnection>>>,
    /// One permit per dedicated blocking connection that may be open ([`StoreSettings::blocking_connections`]).
    /// A wait holds its permit while its connection is busy, including a `BLPOP` still pending after the wait's
    /// deadline; idle connections hold none.
    blocking_permits: Arc<Semaphore>,
}

struct Scripts {
    insert_message: Script,
    accept_message: Script,
    open_messages: Script,
    absorb: Script,
    release_absorbed: Script,
    record_arrival: Script,
    commit: Script,
    publish_outbox: Script,
    finish_outbox: Script,
    claim_due: Script,
    mark_due: Script,
    settle_versioned: Script,
    settle: Script,
    epoch: Script,
    record_effect: Script,
}

impl std::fmt::Debug for RedisStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStores")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RedisStores {
    /// Connects to `url` (one server, or a Redis Cluster: see [`connect_redis`]) and checks it answers.
    pub async fn connect(
        url: &str,
        settings: StoreSettings,
        options: &RedisConnectOptions,
    ) -> Result<Self, StoreError> {
        let client = RedisClient::open(url, options).map_err(StoreError::unavailable("connect"))?;
        if matches!(client, RedisClient::Cluster(_)) {
            check_cluster_names(&settings)?;
        }
        let conn = connect::connect_client(&client, options)
            .await
            .map_err(StoreError::unavailable("connect"))?;
        Ok(Self::new(client, conn, settings))
    }

    /// Uses an existing connection (e.g. the mutex's); `client` opens the dedicated blocking connections.
    fn new(client: RedisClient, conn: RedisConnection, settings: StoreSettings) -> Self {
        let blocking_connections = settings
            .blocking_connections
            .clamp(1, Semaphore::MAX_PERMITS);
        Self {
            client,
            keys: Keys::new(&settings, conn.layout()),
            conn,
            settings,
            scripts: Arc::new(Scripts {
                insert_message: Script::new(&scripts::insert_message()),
                accept_message: Script::new(&scripts::accept_message()),
                open_messages: Script::new(scripts::OPEN_MESSAGES),
                absorb: Script::new(&scripts::absorb()),
                release_absorbed: Script::new(scripts::RELEASE_ABSORBED),
                record_arrival: Script::new(&scripts::record_arrival()),
                commit: Script::new(&scripts::commit()),
                publish_outbox: Script::new(scripts::PUBLISH_OUTBOX),
                finish_outbox: Script::new(scripts::FINISH_OUTBOX),
                claim_due: Script::new(pending::CLAIM_DUE),
                mark_due: Script::new(pending::MARK_DUE),
                settle_versioned: Script::new(pending::SETTLE_VERSIONED),
                settle: Script::new(pending::SETTLE),
                epoch: Script::new(pending::EPOCH),
                record_effect: Script::new(&effects::record_effect()),
            }),
            blocking: Arc::new(Mutex::new(Vec::new())),
            blocking_permits: Arc::new(Semaphore::new(blocking_connections)),
        }
    }

    /// The shared connection (hand it to [`crate::mutex::RedisSessionMutex::new`] to share it).
    pub fn connection(&self) -> RedisConnection {
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

    /// The key layout in use (hash-tagged session keys on a cluster).
    pub fn layout(&self) -> KeyLayout {
        self.keys.layout
    }

    fn conn(&self) -> RedisConnection {
        self.conn.clone()
    }
}

/// On a cluster the key prefix and the stream name become parts of hash tags (see [`Keys`]); a brace in them
/// would move the tag and scatter the keys a script touches across slots.
fn check_cluster_names(settings: &StoreSettings) -> Result<(), StoreError> {
    for (field, value) in [
        ("storage.session.key_prefix", &settings.key_prefix),
        ("storage.session.response_stream", &settings.response_stream),
    ] {
        if value.contains(['{', '}']) {
            return Err(StoreError::InvalidRequest(format!(
                "{field} `{value}` contains a brace, which a Redis Cluster reads as a hash tag"
            )));
        }
    }
    Ok(())
}
