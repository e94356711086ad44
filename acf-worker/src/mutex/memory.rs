//! In-process [`SessionMutex`] with the same semantics as the Redis one, for the embedded default and tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    Lease, LockOutcome, MutexError, SessionMutex, fence_key, lock_key, log_not_owned, new_token,
    ttl_millis,
};

#[derive(Debug)]
struct Held {
    token: String,
    expires_at: Instant,
}

#[derive(Debug, Default)]
struct Table {
    locks: HashMap<String, Held>,
    fences: HashMap<String, u64>,
}

impl Table {
    /// The live holder of `key`, dropping an expired entry as Redis would.
    fn holder(&mut self, key: &str) -> Option<&Held> {
        let expired = self
            .locks
            .get(key)
            .is_some_and(|held| held.expires_at <= Instant::now());
        if expired {
            self.locks.remove(key);
        }
        self.locks.get(key)
    }
}

/// Lock and fence state shared by a [`MemorySessionMutex`] and the in-memory stores, so that fenced store writes
/// see the same fences the mutex hands out (Redis gets this for free by sharing a server).
#[derive(Debug, Default)]
pub struct MemoryLockTable {
    inner: Mutex<Table>,
}

impl MemoryLockTable {
    /// An empty table.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the table cannot leave it half-updated (every update is a single insert or
        // remove), so a poisoned table is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `write` while no acquisition can interleave, only if `lease` is still current (see
    /// [`SessionMutex::is_current`]). Returns `None`, without running `write`, for a stale lease.
    pub fn with_current<R>(&self, lease: &Lease, write: impl FnOnce() -> R) -> Option<R> {
        let mut table = self.lock();
        if !is_current_in(&mut table, lease) {
            return None;
        }
        let result = write();
        drop(table);
        Some(result)
    }
}

fn is_current_in(table: &mut Table, lease: &Lease) -> bool {
    if table
        .fences
        .get(&fence_key(&lease.session_key))
        .copied()
        .unwrap_or(0)
        != lease.fence
    {
        return false;
    }
    table
        .holder(&lease.key)
        .is_none_or(|held| held.token == lease.token)
}

/// In-memory session mutex. Clones share the same table.
#[derive(Debug, Clone, Default)]
pub struct MemorySessionMutex {
    table: Arc<MemoryLockTable>,
}

impl MemorySessionMutex {
    /// A mutex with its own, fresh table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A mutex over an existing table (pass the same table to the in-memory stores).
    pub fn with_table(table: Arc<MemoryLockTable>) -> Self {
        Self { table }
    }

    /// The table this mutex uses.
    pub fn table(&self) -> Arc<MemoryLockTable> {
        Arc::clone(&self.table)
    }
}

#[async_trait]
impl SessionMutex for MemorySessionMutex {
    async fn try_acquire(
        &self,
        session_key: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, MutexError> {
        let ttl_ms = ttl_millis(ttl)?;
        let key = lock_key(session_key);
        let mut table = self.table.lock();
        if table.holder(&key).is_some() {
            return Ok(None);
        }
        let token = new_token();
        table.locks.insert(
            key.clone(),
            Held {
                token: token.clone(),
                expires_at: Instant::now() + ttl,
            },
        );
        // Same seeding as the Redis script: a new counter starts at the clock in microseconds.
        let fence = table
            .fences
            .entry(fence_key(session_key))
            .or_insert_with(|| clock_micros().saturating_sub(1));
        *fence += 1;
        Ok(Some(Lease {
            session_key: session_key.to_owned(),
            key,
            token,
            fence: *fence,
            ttl_ms,
        }))
    }

    async fn extend(&self, lease: &Lease, ttl: Duration) -> Result<LockOutcome, MutexError> {
        ttl_millis(ttl)?;
        let mut table = self.table.lock();
        let owned = table
            .holder(&lease.key)
            .is_some_and(|held| held.token == lease.token);
        if owned && let Some(held) = table.locks.get_mut(&lease.key) {
            held.expires_at = Instant::now() + ttl;
            return Ok(LockOutcome::Applied);
        }
        drop(table);
        log_not_owned("extend", lease);
        Ok(LockOutcome::NotOwned)
    }

    async fn release(&self, lease: &Lease) -> Result<LockOutcome, MutexError> {
        let mut table = self.table.lock();
        if table
            .holder(&lease.key)
            .is_some_and(|held| held.token == lease.token)
        {
            table.locks.remove(&lease.key);
            return Ok(LockOutcome::Applied);
        }
        drop(table);
        log_not_owned("release", lease);
        Ok(LockOutcome::NotOwned)
    }

    async fn is_locked(&self, session_key: &str) -> Result<bool, MutexError> {
        Ok(self.table.lock().holder(&lock_key(session_key)).is_some())
    }

    async fn force_release(&self, session_key: &str) -> Result<bool, MutexError> {
        let key = lock_key(session_key);
        let mut table = self.table.lock();
        let existed = table.holder(&key).is_some();
        table.locks.remove(&key);
        drop(table);
        tracing::warn!(session_key, lock_key = %key, existed, "mutex_force_released");
        Ok(existed)
    }

    async fn current_fence(&self, session_key: &str) -> Result<u64, MutexError> {
        Ok(self
            .table
            .lock()
            .fences
            .get(&fence_key(session_key))
            .copied()
            .unwrap_or(0))
    }

    async fn is_current(&self, lease: &Lease) -> Result<bool, MutexError> {
        Ok(is_current_in(&mut self.table.lock(), lease))
    }
}

fn clock_micros() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0)
}
