//! The typed sections of the worker configuration, and the one place their defaults are written: the `Default`
//! impls here. `config/default.toml` spells the same values for operators (a test keeps the two equal), and the
//! runtime types built from configuration (`StoreSettings`, `TurnLimits`, `TurnManager`, `WorkflowOptions`) take
//! their defaults from these impls instead of repeating the numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::secret::{ConnectionUrl, Secret};

/// All worker settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `[jobs]`.
    pub jobs: JobsSettings,
    /// `[storage]`.
    pub storage: StorageSettings,
    /// `[session]`.
    pub session: SessionSettings,
    /// `[accumulation]`.
    pub accumulation: AccumulationSettings,
    /// `[brain]`.
    pub brain: BrainSettings,
    /// `[liveness]`.
    pub liveness: LivenessSettings,
    /// `[events]`.
    pub events: EventsSettings,
    /// `[observability]`.
    pub observability: ObservabilitySettings,
}

/// `[jobs]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct JobsSettings {
    /// `[jobs.hatchet]`.
    pub hatchet: HatchetSettings,
}

/// `[jobs.hatchet]`: how the worker reaches Hatchet and how its steps retry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct HatchetSettings {
    /// Start the Hatchet worker; `false` is a startup error for `ruche-worker run`.
    pub enabled: bool,
    /// Engine address.
    pub server_url: String,
    /// Client token. Set it through `RUCHE_JOBS__HATCHET__API_KEY`; never commit it to a file.
    pub api_key: Option<Secret>,
    /// Concurrent step runs (worker slots), 1 to 100.
    pub worker_concurrency: u32,
    /// Attempts per step (Hatchet `retries` = this - 1), 1 to 10. Unset: each step's `#[step(retries)]`.
    pub retry_max_attempts: Option<u32>,
    /// Cap on one retry delay in seconds, 1 to 3600. Unset: each step's `#[step(backoff_max)]`.
    pub retry_backoff_seconds: Option<u64>,
    /// `true` serialises a session's runs with the per-session concurrency key (one run at a time per session);
    /// `false` leaves serialisation to the session mutex alone. Unset: the workflow's declared concurrency (the
    /// per-session key).
    pub session_concurrency: Option<bool>,
}

impl Default for HatchetSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            server_url: "http://localhost:7077".to_owned(),
            api_key: None,
            worker_concurrency: 10,
            retry_max_attempts: None,
            retry_backoff_seconds: None,
            session_concurrency: None,
        }
    }
}

impl HatchetSettings {
    /// Hatchet's per-step `retries` value (attempts after the first), when configured.
    pub fn retries(&self) -> Option<u32> {
        self.retry_max_attempts.map(|n| n.saturating_sub(1))
    }
}

/// `[storage]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    /// `[storage.session]`.
    pub session: SessionStoreSettings,
}

/// Where session data, messages, turn records and responses live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Redis at `connection_url` (also used by the session mutex).
    Redis,
    /// In-process memory: tests and single-process local runs.
    Memory,
}

impl StoreBackend {
    /// Accepted spellings, for error messages.
    pub const ACCEPTED: &'static [&'static str] = &["redis", "memory"];
}

impl<'de> Deserialize<'de> for StoreBackend {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        match value.as_str() {
            "redis" => Ok(Self::Redis),
            // `inmemory` is what the original's test.toml and setup guide used; accept it instead of failing.
            "memory" | "inmemory" => Ok(Self::Memory),
            _ => Err(serde::de::Error::unknown_variant(&value, Self::ACCEPTED)),
        }
    }
}

/// `[storage.session]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionStoreSettings {
    /// `redis` or `memory`.
    pub backend: StoreBackend,
    /// Redis URL, shared by the stores and the session mutex. Passwords are redacted when printed.
    pub connection_url: ConnectionUrl,
    /// The most dedicated Redis connections open at once for blocking inbox waits (`BLPOP`, one per accumulating
    /// run that is waiting for more messages), idle or busy, 1 to 1000. Idle ones are reused. A wait that finds
    /// all of them busy waits for one within its own deadline (the time counts against its window) and meanwhile
    /// only takes entries already queued. Other commands, and the session mutex, share one multiplexed
    /// connection that this does not limit. Set it to at least the number of runs expected to accumulate at once
    /// (per worker process); unused with the `memory` backend.
    pub pool_size: u32,
    /// Seconds to wait when connecting to Redis, 1 to 3600 (an inbox wait is bounded by its own deadline instead).
    pub pool_timeout_seconds: u64,
    /// Prefix of every store key. The `sesslock:` lock keys are not prefixed (shared with the Python worker).
    pub key_prefix: String,
    /// Lifetime of session state after its last update.
    pub session_ttl_seconds: u64,
    /// Lifetime of stored messages.
    pub message_ttl_seconds: u64,
    /// Lifetime of audit turn records and commit markers.
    pub record_ttl_seconds: u64,
    /// Lifetime of an unread session inbox.
    pub inbox_ttl_seconds: u64,
    /// Response stream name, under the prefix (`{key_prefix}:{response_stream}`).
    pub response_stream: String,
    /// Approximate cap on the response stream's length.
    pub response_stream_max_len: u64,
    /// `[storage.session.cadence]`.
    pub cadence: CadenceSettings,
}

impl Default for SessionStoreSettings {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Redis,
            connection_url: ConnectionUrl::new("redis://127.0.0.1:6379"),
            pool_size: 10,
            pool_timeout_seconds: 30,
            key_prefix: "session".to_owned(),
            session_ttl_seconds: 604_800,
            message_ttl_seconds: 604_800,
            record_ttl_seconds: 604_800,
            inbox_ttl_seconds: 1_800,
            response_stream: "responses".to_owned(),
            response_stream_max_len: 100_000,
            cadence: CadenceSettings::default(),
        }
    }
}

impl SessionStoreSettings {
    /// Session state lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_seconds)
    }
    /// Message lifetime.
    pub fn message_ttl(&self) -> Duration {
        Duration::from_secs(self.message_ttl_seconds)
    }
    /// Audit record lifetime.
    pub fn record_ttl(&self) -> Duration {
        Duration::from_secs(self.record_ttl_seconds)
    }
    /// Inbox lifetime.
    pub fn inbox_ttl(&self) -> Duration {
        Duration::from_secs(self.inbox_ttl_seconds)
    }
    /// Connection timeout.
    pub fn pool_timeout(&self) -> Duration {
        Duration::from_secs(self.pool_timeout_seconds)
    }
}

/// `[storage.session.cadence]`: learning a user's typing rhythm from message gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CadenceSettings {
    /// Most recent gaps kept per session, 1 to 10000.
    pub max_samples: usize,
    /// Gaps longer than this (ms) are pauses, not typing rhythm, and are not sampled.
    pub max_gap_ms: u64,
}

impl Default for CadenceSettings {
    fn default() -> Self {
        Self {
            max_samples: 50,
            max_gap_ms: 30_000,
        }
    }
}

/// `[session]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SessionSettings {
    /// `[session.lock]`.
    pub lock: LockSettings,
}

/// `[session.lock]`: the per-session mutex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LockSettings {
    /// Lock time to live in ms (at least 100); the holder's heartbeat keeps extending it.
    pub ttl_ms: u64,
    /// How long acquiring may wait for a busy lock, in ms. 0 means exactly one attempt.
    pub blocking_timeout_ms: u64,
    /// How often the holder extends its lock, in ms; must be below `ttl_ms`.
    pub heartbeat_interval_ms: u64,
}

impl Default for LockSettings {
    fn default() -> Self {
        Self {
            ttl_ms: 30_000,
            blocking_timeout_ms: 5_000,
            heartbeat_interval_ms: 10_000,
        }
    }
}

impl LockSettings {
    /// Lock TTL.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }
    /// Blocking wait.
    pub fn blocking_timeout(&self) -> Duration {
        Duration::from_millis(self.blocking_timeout_ms)
    }
    /// Heartbeat period.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
}

/// `[accumulation]`: the adaptive window and the per-turn caps.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AccumulationSettings {
    /// Lower bound of one wait, ms. 0 lets `email`/`api` skip accumulation.
    pub min_wait_ms: u64,
    /// Upper bound of one wait, ms (at least `min_wait_ms`, at most 60000).
    pub max_wait_ms: u64,
    /// Per-channel base waits, ms. Empty means the standard table; a non-empty table replaces it.
    pub channel_defaults: BTreeMap<String, u64>,
    /// Most messages one turn may absorb, the first included (1 to 1000).
    pub max_messages_per_turn: usize,
    /// Longest time from a turn's first message to an absorbed one, ms (at least `max_wait_ms`).
    pub max_window_ms: u64,
    /// Longest message text accepted, in characters.
    pub max_message_chars: usize,
}

impl Default for AccumulationSettings {
    fn default() -> Self {
        Self {
            min_wait_ms: 200,
            max_wait_ms: 3_000,
            channel_defaults: BTreeMap::new(),
            max_messages_per_turn: 50,
            max_window_ms: 60_000,
            max_message_chars: 16_000,
        }
    }
}

impl AccumulationSettings {
    /// The per-turn caps for [`crate::models::LogicalTurn::absorb_message`].
    pub fn turn_limits(&self) -> crate::models::TurnLimits {
        crate::models::TurnLimits {
            max_messages: self.max_messages_per_turn,
            max_window_ms: self.max_window_ms,
        }
    }

    /// A [`crate::turn_manager::TurnManager`] with these bounds and channel table.
    pub fn turn_manager(&self) -> crate::turn_manager::TurnManager {
        crate::turn_manager::TurnManager::new(
            self.min_wait_ms,
            self.max_wait_ms,
            self.channel_defaults
                .iter()
                .map(|(channel, wait)| (channel.clone(), *wait)),
        )
    }
}

/// Which brain answers turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrainKind {
    /// Deterministic echo (the default).
    Echo,
    /// POSTs the turn as JSON to `brain.url`.
    Http,
}

/// `[brain]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BrainSettings {
    /// `echo` or `http`.
    pub kind: BrainKind,
    /// Endpoint for `http` (required then). May carry credentials, so it is redacted when printed.
    pub url: Option<ConnectionUrl>,
    /// Request timeout, ms (1 to 600000).
    pub timeout_ms: u64,
    /// Sent to an `http` brain as `Authorization: Bearer {api_key}`. Set it through `RUCHE_BRAIN__API_KEY`;
    /// never commit it to a file.
    pub api_key: Option<Secret>,
    /// Extra static headers sent to an `http` brain with every request, name to value. Values are redacted when
    /// printed. `authorization` (use `api_key`), `content-type`, `content-length`, `host`, `traceparent` and
    /// `tracestate` are set by the worker and refused here.
    pub headers: BTreeMap<String, Secret>,
}

impl Default for BrainSettings {
    fn default() -> Self {
        Self {
            kind: BrainKind::Echo,
            url: None,
            timeout_ms: 30_000,
            api_key: None,
            headers: BTreeMap::new(),
        }
    }
}

impl BrainSettings {
    /// Request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// `[liveness]`: how pending messages are guaranteed a run (see the README's "Delivery guarantee").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LivenessSettings {
    /// How often each worker sweeps the due-time index, ms (100 to 600000).
    pub sweep_interval_ms: u64,
    /// How long a session with open messages is left to its runs before a sweep re-triggers one, ms (100 to
    /// 3600000). Also the pause between two re-triggers of the same session.
    pub pending_grace_ms: u64,
    /// Most sessions one sweep claims (1 to 10000).
    pub sweep_batch: usize,
}

impl Default for LivenessSettings {
    fn default() -> Self {
        Self {
            sweep_interval_ms: 5_000,
            pending_grace_ms: 60_000,
            sweep_batch: 100,
        }
    }
}

impl LivenessSettings {
    /// Sweep period.
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_millis(self.sweep_interval_ms)
    }
    /// Grace before a re-trigger.
    pub fn pending_grace(&self) -> Duration {
        Duration::from_millis(self.pending_grace_ms)
    }
}

/// `[events]`: where routed ACF events go. Side effects of `tool.executed` events are recorded on their turn
/// whatever is configured here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct EventsSettings {
    /// The built-in sinks events are routed to, each at most once (empty: routed nowhere).
    pub sinks: Vec<EventSink>,
    /// The patterns the sinks listen to: `*`, `category.*` or an exact type such as `tool.executed`.
    pub patterns: Vec<String>,
    /// How many entries the events stream keeps (older ones are trimmed), at least 1.
    pub stream_max_len: u64,
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            sinks: vec![EventSink::Log],
            patterns: vec!["*".to_owned()],
            stream_max_len: 100_000,
        }
    }
}

/// A built-in event sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSink {
    /// The log: one `acf_event_emitted` line per event.
    Log,
    /// The store's events stream, `{storage.session.key_prefix}:events` on Redis.
    RedisStream,
    /// The Hatchet stream of the run that emitted the event (`PutStreamEvent`).
    HatchetStream,
}

impl EventSink {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::RedisStream => "redis_stream",
            Self::HatchetStream => "hatchet_stream",
        }
    }
}

/// `[observability]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ObservabilitySettings {
    /// `[observability.logging]`.
    pub logging: LoggingConfig,
}

/// `[observability.logging]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LoggingConfig {
    /// Lowest level written.
    pub level: LogLevel,
    /// Line format.
    pub format: LogFormat,
}

/// Log level. Accepted case-insensitively: `trace`, `debug`, `info`, `warning` (or `warn`), `error`, `critical`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debug and above.
    Debug,
    /// Info and above (default).
    #[default]
    Info,
    /// Warnings and errors.
    Warning,
    /// Errors only.
    Error,
    /// Errors only (`tracing` has no level above error; kept for the original's spelling).
    Critical,
}

impl LogLevel {
    /// Accepted spellings, for error messages.
    pub const ACCEPTED: &'static [&'static str] = &[
        "trace", "debug", "info", "warning", "warn", "error", "critical",
    ];

    /// The matching `tracing` filter level.
    pub fn as_tracing(self) -> tracing::Level {
        match self {
            Self::Trace => tracing::Level::TRACE,
            Self::Debug => tracing::Level::DEBUG,
            Self::Info => tracing::Level::INFO,
            Self::Warning => tracing::Level::WARN,
            Self::Error | Self::Critical => tracing::Level::ERROR,
        }
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        match value.to_ascii_lowercase().as_str() {
            "trace" => Ok(Self::Trace),
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warning" | "warn" => Ok(Self::Warning),
            "error" => Ok(Self::Error),
            "critical" => Ok(Self::Critical),
            _ => Err(serde::de::Error::unknown_variant(&value, Self::ACCEPTED)),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (default).
    #[default]
    Json,
    /// Human-readable lines, for a terminal.
    Console,
}
