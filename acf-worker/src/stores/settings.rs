//! Key layout and lifetimes of stored data.

use std::time::Duration;

/// Store configuration: key prefix, TTLs, response stream and cadence learning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// Prefix of every store key (`{prefix}:msg:{id}`, ...). The lock keys are not prefixed: they are shared with
    /// the Python worker.
    pub key_prefix: String,
    /// Lifetime of messages and of a session's open-message index.
    pub message_ttl: Duration,
    /// Lifetime of session state after its last update.
    pub session_ttl: Duration,
    /// Lifetime of audit records (turn and failure records) and of commit markers (a commit retried after this
    /// could deliver again).
    pub record_ttl: Duration,
    /// Lifetime of an unread inbox after its last push.
    pub inbox_ttl: Duration,
    /// Name of the response stream, without the prefix (`{prefix}:{response_stream}`).
    pub response_stream: String,
    /// Approximate cap on the response stream's length (`XADD MAXLEN ~`).
    pub response_stream_max_len: u64,
    /// How cadence is learned from message gaps.
    pub cadence: CadenceSettings,
    /// Redis only: the most dedicated connections open at once for blocking inbox waits (`BLPOP`), idle or busy;
    /// at least 1. Commands share one multiplexed connection and are not limited. A wait beyond the cap waits for
    /// a free connection within its own deadline. From `storage.session.pool_size`.
    pub blocking_connections: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            key_prefix: "session".to_owned(),
            message_ttl: Duration::from_secs(7 * 24 * 3600),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            record_ttl: Duration::from_secs(7 * 24 * 3600),
            inbox_ttl: Duration::from_secs(1800),
            response_stream: "responses".to_owned(),
            response_stream_max_len: 100_000,
            cadence: CadenceSettings::default(),
            blocking_connections: 10,
        }
    }
}

/// Cadence learning parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CadenceSettings {
    /// Number of most recent gaps kept per session.
    pub max_samples: usize,
    /// Gaps longer than this are pauses between conversations, not typing rhythm, and are not sampled.
    pub max_gap: Duration,
}

impl Default for CadenceSettings {
    fn default() -> Self {
        Self {
            max_samples: 50,
            max_gap: Duration::from_secs(30),
        }
    }
}

/// Builds store keys from the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    prefix: String,
    stream: String,
}

impl Keys {
    pub(crate) fn new(settings: &StoreSettings) -> Self {
        Self {
            prefix: settings.key_prefix.clone(),
            stream: format!("{}:{}", settings.key_prefix, settings.response_stream),
        }
    }
    pub(crate) fn message(&self, id: uuid::Uuid) -> String {
        format!("{}:msg:{id}", self.prefix)
    }
    pub(crate) fn open_messages(&self, session_key: &str) -> String {
        format!("{}:open:{session_key}", self.prefix)
    }
    pub(crate) fn state(&self, session_key: &str) -> String {
        format!("{}:state:{session_key}", self.prefix)
    }
    pub(crate) fn gaps(&self, session_key: &str) -> String {
        format!("{}:gaps:{session_key}", self.prefix)
    }
    pub(crate) fn inbox(&self, session_key: &str) -> String {
        format!("{}:inbox:{session_key}", self.prefix)
    }
    pub(crate) fn turn(&self, turn_id: uuid::Uuid) -> String {
        format!("{}:turn:{turn_id}", self.prefix)
    }
    /// The events stream routed ACF events are appended to (the `redis_stream` sink).
    pub(crate) fn events_stream(&self) -> String {
        format!("{}:events", self.prefix)
    }
    /// The side effects recorded for a turn in progress (a list of JSON entries).
    pub(crate) fn turn_effects(&self, turn_id: uuid::Uuid) -> String {
        format!("{}:turn_effects:{turn_id}", self.prefix)
    }
    pub(crate) fn session_turns(&self, session_key: &str) -> String {
        format!("{}:turns:{session_key}", self.prefix)
    }
    pub(crate) fn failure(&self, turn_id: uuid::Uuid) -> String {
        format!("{}:failure:{turn_id}", self.prefix)
    }
    pub(crate) fn session_failures(&self, session_key: &str) -> String {
        format!("{}:failures:{session_key}", self.prefix)
    }
    pub(crate) fn commit(&self, turn_id: uuid::Uuid) -> String {
        format!("{}:commit:{turn_id}", self.prefix)
    }
    /// The due-time index of sessions with messages that may need a run (sorted set scored by due time, ms).
    pub(crate) fn due(&self) -> String {
        format!("{}:due", self.prefix)
    }
    /// Per session, the routing part of a trigger payload (hash field = session key).
    pub(crate) fn due_routes(&self) -> String {
        format!("{}:due:routes", self.prefix)
    }
    /// The data epoch: a random value written once; its disappearance means the store lost its data.
    pub(crate) fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }
    pub(crate) fn response_stream(&self) -> &str {
        &self.stream
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
