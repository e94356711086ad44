//! Key layout and lifetimes of stored data.

use std::time::Duration;

use crate::mutex::KeyLayout;

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
    /// The `[storage.session]` defaults (see [`crate::config`]: one source for every default).
    fn default() -> Self {
        Self::from(&crate::config::SessionStoreSettings::default())
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
    /// The `[storage.session.cadence]` defaults.
    fn default() -> Self {
        StoreSettings::default().cadence
    }
}

/// Builds store keys from the prefix, in a [`KeyLayout`]. On one server (the default) keys are
/// `{prefix}:{kind}:{session_key}` and `{prefix}:{kind}:{id}`, as the Python worker names them. On a cluster every
/// key of a session carries the session key as a hash tag, per-id keys included
/// (`{prefix}:msg:{{session_key}}:{id}`), so one session's keys share a slot; the due index's keys share the tag
/// `{prefix}`; the response stream keeps its name, and the markers that make its entries unique per turn share
/// its slot (`{{prefix}:{stream}}:sent:{turn_id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    prefix: String,
    stream: String,
    pub(crate) layout: KeyLayout,
}

impl Keys {
    pub(crate) fn new(settings: &StoreSettings, layout: KeyLayout) -> Self {
        Self {
            prefix: settings.key_prefix.clone(),
            stream: format!("{}:{}", settings.key_prefix, settings.response_stream),
            layout,
        }
    }
    fn session(&self, kind: &str, session_key: &str) -> String {
        format!(
            "{}:{kind}:{}",
            self.prefix,
            self.layout.session_part(session_key)
        )
    }
    /// The part of a session's per-id keys before the id: the session is part of it on a cluster only.
    fn of_session_prefix(&self, kind: &str, session_key: &str) -> String {
        match self.layout {
            KeyLayout::Standalone => format!("{}:{kind}:", self.prefix),
            KeyLayout::Cluster => format!("{}:{kind}:{{{session_key}}}:", self.prefix),
        }
    }
    /// A per-id key of a session's record.
    fn of_session(&self, kind: &str, session_key: &str, id: uuid::Uuid) -> String {
        format!("{}{id}", self.of_session_prefix(kind, session_key))
    }
    pub(crate) fn message(&self, session_key: &str, id: uuid::Uuid) -> String {
        self.of_session("msg", session_key, id)
    }
    /// [`Self::message`] without the id (a script completes it).
    pub(crate) fn message_prefix(&self, session_key: &str) -> String {
        self.of_session_prefix("msg", session_key)
    }
    pub(crate) fn open_messages(&self, session_key: &str) -> String {
        self.session("open", session_key)
    }
    pub(crate) fn state(&self, session_key: &str) -> String {
        self.session("state", session_key)
    }
    pub(crate) fn gaps(&self, session_key: &str) -> String {
        self.session("gaps", session_key)
    }
    pub(crate) fn inbox(&self, session_key: &str) -> String {
        self.session("inbox", session_key)
    }
    pub(crate) fn turn(&self, session_key: &str, turn_id: uuid::Uuid) -> String {
        self.of_session("turn", session_key, turn_id)
    }
    /// The events stream routed ACF events are appended to (the `redis_stream` sink).
    pub(crate) fn events_stream(&self) -> String {
        format!("{}:events", self.prefix)
    }
    /// The side effects recorded for a turn in progress (a list of JSON entries).
    pub(crate) fn turn_effects(&self, session_key: &str, turn_id: uuid::Uuid) -> String {
        self.of_session("turn_effects", session_key, turn_id)
    }
    pub(crate) fn session_turns(&self, session_key: &str) -> String {
        self.session("turns", session_key)
    }
    pub(crate) fn failure(&self, session_key: &str, turn_id: uuid::Uuid) -> String {
        self.of_session("failure", session_key, turn_id)
    }
    pub(crate) fn session_failures(&self, session_key: &str) -> String {
        self.session("failures", session_key)
    }
    pub(crate) fn commit(&self, session_key: &str, turn_id: uuid::Uuid) -> String {
        self.of_session("commit", session_key, turn_id)
    }
    /// Cluster only: a committed turn's response entry until it is on the stream (a hash of its fields).
    pub(crate) fn outbox(&self, session_key: &str, turn_id: uuid::Uuid) -> String {
        self.of_session("outbox", session_key, turn_id)
    }
    /// The index keys' common part: `{prefix}` on one server, `{{prefix}}` (a hash tag) on a cluster, where
    /// the due index's scripts touch all of them at once.
    fn index(&self, kind: &str) -> String {
        match self.layout {
            KeyLayout::Standalone => format!("{}:{kind}", self.prefix),
            KeyLayout::Cluster => format!("{{{}}}:{kind}", self.prefix),
        }
    }
    /// The due-time index of sessions with messages that may need a run (sorted set scored by due time, ms).
    pub(crate) fn due(&self) -> String {
        self.index("due")
    }
    /// Per session, the routing part of a trigger payload (hash field = session key).
    pub(crate) fn due_routes(&self) -> String {
        self.index("due:routes")
    }
    /// Cluster only: per session, a counter bumped by every `mark_due`, so a settle that checked the session's
    /// open messages (in another slot) removes it only if nobody marked it due meanwhile.
    pub(crate) fn due_versions(&self) -> String {
        self.index("due:versions")
    }
    /// The data epoch: a random value written once; its disappearance means the store lost its data.
    pub(crate) fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }
    pub(crate) fn response_stream(&self) -> &str {
        &self.stream
    }
    /// Cluster only: the marker of `turn_id`'s entry on the response stream, in the stream's slot.
    pub(crate) fn sent(&self, turn_id: uuid::Uuid) -> String {
        format!("{{{}}}:sent:{turn_id}", self.stream)
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
