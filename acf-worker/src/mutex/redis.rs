//! [`SessionMutex`] on Redis: `SET NX PX` with a random token, Lua compare-and-act for extend and release.

use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{
    KeyLayout, Lease, LockOutcome, MutexError, SessionMutex, log_not_owned, new_token, scripts,
    ttl_millis,
};
use crate::stores::RedisConnection;

/// Redis-backed session mutex. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisSessionMutex {
    conn: RedisConnection,
    layout: KeyLayout,
    acquire: Script,
    extend: Script,
    release: Script,
    is_current: Script,
}

impl std::fmt::Debug for RedisSessionMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionMutex").finish_non_exhaustive()
    }
}

impl RedisSessionMutex {
    /// Uses an existing connection (typically shared with the Redis stores); the key layout follows the
    /// connection (hash-tagged keys on a cluster).
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            layout: conn.layout(),
            conn,
            acquire: Script::new(scripts::ACQUIRE),
            extend: Script::new(scripts::EXTEND),
            release: Script::new(scripts::RELEASE),
            is_current: Script::new(&scripts::is_current()),
        }
    }

    /// Connects to `url` (see [`crate::stores::connect_redis`]) with
    /// [`crate::stores::RedisConnectOptions::default`].
    pub async fn connect(url: &str) -> Result<Self, MutexError> {
        let conn =
            crate::stores::connect_redis(url, &crate::stores::RedisConnectOptions::default())
                .await
                .map_err(|error| MutexError::Unavailable {
                    operation: "connect",
                    key: String::new(),
                    error,
                })?;
        Ok(Self::new(conn))
    }
}

fn unavailable<'k>(
    operation: &'static str,
    key: &'k str,
) -> impl FnOnce(redis::RedisError) -> MutexError + 'k {
    move |error| {
        tracing::error!(operation, key, error = %error, "mutex_backend_unavailable");
        MutexError::Unavailable {
            operation,
            key: key.to_owned(),
            error,
        }
    }
}

#[async_trait]
impl SessionMutex for RedisSessionMutex {
    async fn try_acquire(
        &self,
        session_key: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, MutexError> {
        let ttl_ms = ttl_millis(ttl)?;
        let key = self.layout.lock_key(session_key);
        let token = new_token();
        let fence: u64 = self
            .acquire
            .key(&key)
            .key(self.layout.fence_key(session_key))
            .arg(&token)
            .arg(ttl_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable("acquire", &key))?;
        if fence == 0 {
            return Ok(None);
        }
        Ok(Some(Lease {
            session_key: session_key.to_owned(),
            key,
            token,
            fence,
            ttl_ms,
        }))
    }

    async fn extend(&self, lease: &Lease, ttl: Duration) -> Result<LockOutcome, MutexError> {
        let ttl_ms = ttl_millis(ttl)?;
        let applied: i64 = self
            .extend
            .key(&lease.key)
            .arg(&lease.token)
            .arg(ttl_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable("extend", &lease.key))?;
        if applied == 1 {
            tracing::debug!(lock_key = %lease.key, ttl_ms, "mutex_extended");
            Ok(LockOutcome::Applied)
        } else {
            log_not_owned("extend", lease);
            Ok(LockOutcome::NotOwned)
        }
    }

    async fn release(&self, lease: &Lease) -> Result<LockOutcome, MutexError> {
        let deleted: i64 = self
            .release
            .key(&lease.key)
            .arg(&lease.token)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable("release", &lease.key))?;
        if deleted == 1 {
            tracing::debug!(lock_key = %lease.key, "mutex_released");
            Ok(LockOutcome::Applied)
        } else {
            log_not_owned("release", lease);
            Ok(LockOutcome::NotOwned)
        }
    }

    async fn is_locked(&self, session_key: &str) -> Result<bool, MutexError> {
        let key = self.layout.lock_key(session_key);
        let count: i64 = self
            .conn
            .clone()
            .exists(&key)
            .await
            .map_err(unavailable("is_locked", &key))?;
        Ok(count > 0)
    }

    async fn force_release(&self, session_key: &str) -> Result<bool, MutexError> {
        let key = self.layout.lock_key(session_key);
        let deleted: i64 = self
            .conn
            .clone()
            .del(&key)
            .await
            .map_err(unavailable("force_release", &key))?;
        tracing::warn!(session_key, lock_key = %key, existed = deleted > 0, "mutex_force_released");
        Ok(deleted > 0)
    }

    async fn current_fence(&self, session_key: &str) -> Result<u64, MutexError> {
        let key = self.layout.fence_key(session_key);
        let fence: Option<u64> = self
            .conn
            .clone()
            .get(&key)
            .await
            .map_err(unavailable("current_fence", &key))?;
        Ok(fence.unwrap_or(0))
    }

    async fn is_current(&self, lease: &Lease) -> Result<bool, MutexError> {
        let current: i64 = self
            .is_current
            .key(&lease.key)
            .key(lease.fence_key())
            .arg(&lease.token)
            .arg(lease.fence)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable("is_current", &lease.key))?;
        Ok(current == 1)
    }
}
