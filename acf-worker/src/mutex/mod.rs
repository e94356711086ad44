//! Per-session mutual exclusion with fencing.
//!
//! A session (`{tenant}:{agent}:{interlocutor}:{channel}`) is processed by one holder at a time. The lock lives at
//! `sesslock:{session_key}` and its value is the holder's random token, exactly as the Python worker's redis-py lock
//! stores it, so a Rust and a Python worker can share a Redis. Every successful acquisition also increments
//! `sessfence:{session_key}` in the same atomic step; the new value is the lease's *fence*. Stores accept a write
//! only while the writer's fence is still the latest one (see [`Lease`] and [`SessionMutex::is_current`]), which
//! is what stops a holder whose lease silently expired from overwriting its successor's work.
//!
//! The fence counter key has no TTL (one integer per session, like the session itself): letting it expire would
//! restart fences and let an old lease match again. A missing counter (new session, or a Redis that lost its data)
//! is seeded from the server clock in microseconds, so fences keep increasing across such a loss.
//! [`Heartbeat`] keeps a lease alive while a long step runs.

mod heartbeat;
mod memory;
mod redis;
mod scripts;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use self::heartbeat::{Heartbeat, HeartbeatReport};
pub use self::memory::{MemoryLockTable, MemorySessionMutex};
pub use self::redis::RedisSessionMutex;
pub(crate) use self::scripts::FENCE_GUARD_LUA;

/// Prefix of the lock key, shared with the Python worker.
pub const LOCK_KEY_PREFIX: &str = "sesslock:";
/// Prefix of the fencing counter key. It is outside the `sesslock:` space so that no session key can collide with it.
pub const FENCE_KEY_PREFIX: &str = "sessfence:";

/// Builds the session key `{tenant}:{agent}:{interlocutor}:{channel}`; parts are inserted verbatim, as in Python.
pub fn session_key(
    tenant_id: &str,
    agent_id: &str,
    interlocutor_id: &str,
    channel: &str,
) -> String {
    crate::models::build_session_key(tenant_id, agent_id, interlocutor_id, channel)
}

/// The lock key of a session on one Redis server (the Python worker's format): `sesslock:{session_key}`.
pub fn lock_key(session_key: &str) -> String {
    KeyLayout::Standalone.lock_key(session_key)
}

/// The fencing counter key of a session on one Redis server: `sessfence:{session_key}`.
pub fn fence_key(session_key: &str) -> String {
    KeyLayout::Standalone.fence_key(session_key)
}

/// How a session's keys are named on Redis.
///
/// A script may only touch keys of one hash slot on a Redis Cluster, and every fenced write touches the lock, the
/// fence and the session's data together. So on a cluster the session key is written in braces (a hash tag) in
/// every key of the session, e.g. `sesslock:{t:a:i:web}`: Redis hashes only the text between the first `{` and
/// the next `}`, so all of them land in one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyLayout {
    /// One Redis server: session keys verbatim (`sesslock:t:a:i:web`), as the Python worker names them.
    #[default]
    Standalone,
    /// A Redis Cluster: session keys as hash tags (`sesslock:{t:a:i:web}`).
    Cluster,
}

impl KeyLayout {
    /// The session key as it appears in the session's keys: verbatim, or in braces on a cluster.
    pub fn session_part(self, session_key: &str) -> String {
        match self {
            Self::Standalone => session_key.to_owned(),
            Self::Cluster => format!("{{{session_key}}}"),
        }
    }

    /// The lock key of a session.
    pub fn lock_key(self, session_key: &str) -> String {
        format!("{LOCK_KEY_PREFIX}{}", self.session_part(session_key))
    }

    /// The fencing counter key of a session.
    pub fn fence_key(self, session_key: &str) -> String {
        format!("{FENCE_KEY_PREFIX}{}", self.session_part(session_key))
    }
}

/// Proof of holding a session's lock. It is plain data so a workflow step can hand it to later steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The session this lease covers.
    pub session_key: String,
    /// The lock key (`sesslock:{session_key}`, see [`KeyLayout`]).
    pub key: String,
    /// The random value stored in the lock; only its bearer may extend or release it.
    pub token: String,
    /// Fencing number: strictly greater than every fence handed out earlier for this session.
    pub fence: u64,
    /// Time to live the lock was acquired (or last extended) with, in milliseconds.
    pub ttl_ms: u64,
}

impl Lease {
    /// The fencing counter key of this lease's session, in the layout of its lock key (`sesslock:` becomes
    /// `sessfence:`).
    pub fn fence_key(&self) -> String {
        match self.key.strip_prefix(LOCK_KEY_PREFIX) {
            Some(session_part) => format!("{FENCE_KEY_PREFIX}{session_part}"),
            None => fence_key(&self.session_key),
        }
    }
}

/// How long a lock lives and how long `acquire` may wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// Lock time to live; a holder that neither extends nor releases loses the lock after this.
    pub ttl: Duration,
    /// Longest time `acquire` keeps retrying. Zero means exactly one attempt (the Python worker could not express that).
    pub wait: Duration,
}

impl LockOptions {
    /// Options with the given TTL and blocking wait.
    pub fn new(ttl: Duration, wait: Duration) -> Self {
        Self { ttl, wait }
    }

    fn validate(&self) -> Result<u64, MutexError> {
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        if ttl_ms == 0 {
            return Err(MutexError::InvalidTtl);
        }
        Ok(ttl_ms)
    }
}

impl From<&crate::config::LockSettings> for LockOptions {
    fn from(config: &crate::config::LockSettings) -> Self {
        Self::new(config.ttl(), config.blocking_timeout())
    }
}

/// Result of a token-checked `extend` or `release`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOutcome {
    /// The caller owned the lock and the operation was applied.
    Applied,
    /// The lock has expired or belongs to someone else; nothing was changed.
    NotOwned,
}

/// Errors of the session mutex.
#[derive(Debug, thiserror::Error)]
pub enum MutexError {
    /// Another holder kept the lock for the whole blocking wait.
    #[error("session lock `{key}` is held by another worker; gave up after waiting {waited_ms} ms")]
    Contended {
        /// The lock key.
        key: String,
        /// How long the caller waited.
        waited_ms: u64,
    },
    /// The lock backend could not be reached or answered with an error.
    // The cause is printed (not exposed as `source()`): lock errors are logged and become step failures
    // through their `Display`.
    #[error(
        "session lock backend unavailable during {operation} on `{key}`: {}",
        acf_sdk::error::Report(.error)
    )]
    Unavailable {
        /// The operation that failed (`acquire`, `extend`, ...).
        operation: &'static str,
        /// The key involved.
        key: String,
        /// The backend error.
        error: ::redis::RedisError,
    },
    /// A lock TTL of zero was requested.
    #[error("session lock TTL must be at least 1 ms")]
    InvalidTtl,
}

impl MutexError {
    /// True when retrying later can succeed (contention or an unreachable backend).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, MutexError::InvalidTtl)
    }
}

/// Bounds of the jittered pause between acquisition attempts. Small, because turns of one session follow each
/// other closely and a waiter should notice a release quickly; jittered so waiters do not retry in lockstep.
const POLL_MIN: Duration = Duration::from_millis(4);
const POLL_MAX: Duration = Duration::from_millis(24);

/// A per-session lock with tokens and fencing. Implementations: [`RedisSessionMutex`], [`MemorySessionMutex`].
#[async_trait]
pub trait SessionMutex: Send + Sync {
    /// One acquisition attempt: `Some(lease)` if the lock was free, `None` if someone holds it.
    async fn try_acquire(
        &self,
        session_key: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, MutexError>;

    /// Sets the remaining lifetime of the caller's lock to `ttl`, only if `lease.token` still owns it.
    async fn extend(&self, lease: &Lease, ttl: Duration) -> Result<LockOutcome, MutexError>;

    /// Deletes the lock only if `lease.token` still owns it. Releasing twice is harmless (`NotOwned`).
    async fn release(&self, lease: &Lease) -> Result<LockOutcome, MutexError>;

    /// Whether anyone holds the session's lock.
    async fn is_locked(&self, session_key: &str) -> Result<bool, MutexError>;

    /// Admin operation: deletes the lock whoever holds it. Returns whether a lock existed.
    async fn force_release(&self, session_key: &str) -> Result<bool, MutexError>;

    /// The latest fence handed out for the session (0 if never locked).
    async fn current_fence(&self, session_key: &str) -> Result<u64, MutexError>;

    /// Whether a write by this lease's bearer is still allowed: no later acquisition happened (the fence is the
    /// latest) and no other token holds the lock. An expired lease that nobody replaced is still current, because no
    /// conflicting holder can exist; stores apply this same rule atomically with their writes.
    async fn is_current(&self, lease: &Lease) -> Result<bool, MutexError>;

    /// Acquires the lock, retrying with small jittered pauses until `options.wait` has elapsed.
    async fn acquire(&self, session_key: &str, options: LockOptions) -> Result<Lease, MutexError> {
        options.validate()?;
        let started = Instant::now();
        let deadline = started + options.wait;
        loop {
            if let Some(lease) = self.try_acquire(session_key, options.ttl).await? {
                tracing::debug!(session_key, lock_key = %lease.key, fence = lease.fence, "mutex_acquired");
                return Ok(lease);
            }
            let now = Instant::now();
            if now >= deadline {
                let waited_ms =
                    u64::try_from(now.duration_since(started).as_millis()).unwrap_or(u64::MAX);
                tracing::warn!(session_key, waited_ms, "mutex_acquisition_timed_out");
                return Err(MutexError::Contended {
                    key: lock_key(session_key),
                    waited_ms,
                });
            }
            let pause = rand::rng().random_range(POLL_MIN..=POLL_MAX);
            tokio::time::sleep(pause.min(deadline - now)).await;
        }
    }
}

/// Logs a token-checked operation that found the lock owned by someone else (or expired).
fn log_not_owned(operation: &'static str, lease: &Lease) {
    tracing::warn!(
        operation,
        session_key = %lease.session_key,
        lock_key = %lease.key,
        fence = lease.fence,
        "mutex_not_owned"
    );
}

fn ttl_millis(ttl: Duration) -> Result<u64, MutexError> {
    LockOptions::new(ttl, Duration::ZERO).validate()
}

fn new_token() -> String {
    // 128 random bits as lowercase hex: the same shape redis-py uses for its lock tokens.
    uuid::Uuid::new_v4().simple().to_string()
}
