//! [`SessionInbox`] on Redis: a list per session (`{prefix}:inbox:{session_key}`) of JSON [`InboxEntry`]s,
//! `RPUSH` to add, `BLPOP` to wait.
//!
//! A `BLPOP` occupies its connection until it returns, so waits run on dedicated connections, never on the shared
//! one. At most [`StoreSettings::blocking_connections`] (`storage.session.pool_size`) of them are open at once,
//! idle or busy: each busy connection holds a permit of a semaphore, a wait that finds every permit taken waits
//! for one within its own deadline (that time counts against its window; an entry already queued when it starts
//! waiting, or when the deadline passes, is taken without blocking), and a finished wait's connection is kept idle
//! for the next.
//! Each is named `{key_prefix}:inbox-wait` (`CLIENT SETNAME`; bytes Redis refuses in a name become `_`), so
//! `CLIENT LIST` shows them.
//!
//! The server's own timeout for blocked clients is only as precise as its event loop (100 ms at the default
//! `hz 10`), so the deadline is kept locally: when it passes first, the wait returns `None` at once and a
//! background task collects the still-pending reply, pushes a late-popped entry back to the head of the list and
//! recycles the connection, holding the permit until then. No entry is lost to a timed-out wait.
//!
//! [`StoreSettings::blocking_connections`]: crate::stores::StoreSettings::blocking_connections

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::{RedisConnection, RedisStores};
use crate::stores::settings::millis;
use crate::stores::{InboxEntry, SessionInbox, StoreError};

/// Extra time given to the server's own `BLPOP` timeout so the local deadline always fires first.
const SERVER_TIMEOUT_SLACK: Duration = Duration::from_millis(250);

fn parse_entry(text: &str) -> Result<InboxEntry, StoreError> {
    serde_json::from_str(text).map_err(|err| StoreError::corrupt("inbox entry", err))
}

/// The client name of the dedicated blocking connections of stores with `key_prefix`.
fn blocking_client_name(key_prefix: &str) -> String {
    format!("{key_prefix}:inbox-wait")
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect()
}

/// A dedicated connection checked out for one wait, with the permit that counts it against the cap.
struct Checkout {
    conn: RedisConnection,
    permit: OwnedSemaphorePermit,
    /// Taken from the idle connections (it may have died since), rather than opened for this wait.
    pooled: bool,
}

impl RedisStores {
    /// A permit and a dedicated connection (an idle one, or a new one), or `None` when `deadline` passed while
    /// every permit was taken.
    async fn blocking_connection(&self, deadline: Instant) -> Result<Option<Checkout>, StoreError> {
        let permits = self.blocking_permits.clone();
        let permit = match tokio::time::timeout_at(deadline, permits.acquire_owned()).await {
            Ok(permit) => permit.map_err(|err| StoreError::corrupt("inbox wait permits", err))?,
            Err(_elapsed) => {
                tracing::debug!(
                    cap = self.settings.blocking_connections,
                    "inbox_wait_pool_exhausted"
                );
                return Ok(None);
            }
        };
        let idle = self.idle_blocking().pop();
        if let Some(conn) = idle {
            return Ok(Some(Checkout {
                conn,
                permit,
                pooled: true,
            }));
        }
        // No response timeout: a blocking read legitimately waits for the whole window.
        let mut conn = self
            .client
            .blocking_connection()
            .await
            .map_err(StoreError::unavailable("inbox wait"))?;
        // The name only helps operators (`CLIENT LIST`); a server refusing it does not stop the wait.
        let name = blocking_client_name(&self.settings.key_prefix);
        if let Err(error) = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&name)
            .query_async::<()>(&mut conn)
            .await
        {
            tracing::warn!(client_name = %name, error = %acf_sdk::error::Report(&error), "inbox_wait_client_name_refused");
        }
        Ok(Some(Checkout {
            conn,
            permit,
            pooled: false,
        }))
    }

    fn idle_blocking(&self) -> std::sync::MutexGuard<'_, Vec<RedisConnection>> {
        self.blocking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `conn` for the next wait, then frees its permit. Idle connections never outnumber the permits: each
    /// was opened under a permit while none was idle.
    fn recycle(
        blocking: &Mutex<Vec<RedisConnection>>,
        conn: RedisConnection,
        permit: OwnedSemaphorePermit,
    ) {
        blocking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(conn);
        drop(permit);
    }

    /// Takes the oldest entry without blocking (on the shared connection).
    async fn pop_now(&self, key: &str) -> Result<Option<InboxEntry>, StoreError> {
        let popped: Option<String> = self
            .conn()
            .lpop(key, None)
            .await
            .map_err(StoreError::unavailable("inbox wait"))?;
        popped.as_deref().map(parse_entry).transpose()
    }

    /// One `BLPOP` on the checked-out connection, bounded by the local `deadline`.
    async fn blocking_pop(
        &self,
        key: &str,
        deadline: Instant,
        checkout: Checkout,
    ) -> Result<Option<InboxEntry>, StoreError> {
        let Checkout {
            mut conn, permit, ..
        } = checkout;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let server_timeout = (remaining + SERVER_TIMEOUT_SLACK).as_secs_f64();
        let blpop_key = key.to_owned();
        // The task owns the permit with the connection: a `BLPOP` still pending after the deadline keeps counting
        // against the cap until its reply arrives.
        let mut pending = tokio::spawn(async move {
            let reply: redis::RedisResult<Option<(String, String)>> =
                conn.blpop(&blpop_key, server_timeout).await;
            (conn, permit, reply)
        });
        tokio::select! {
            joined = &mut pending => {
                let (conn, permit, reply) =
                    joined.map_err(|err| StoreError::corrupt("inbox wait task", err))?;
                // A failed connection is dropped (freeing its permit), not recycled.
                let popped = reply.map_err(StoreError::unavailable("inbox wait"))?;
                Self::recycle(&self.blocking, conn, permit);
                popped.map(|(_, text)| parse_entry(&text)).transpose()
            }
            () = tokio::time::sleep_until(deadline) => {
                let blocking = self.blocking.clone();
                let mut shared = self.conn();
                let key = key.to_owned();
                tokio::spawn(async move {
                    let Ok((conn, permit, reply)) = pending.await else { return };
                    match reply {
                        Ok(Some((_, text))) => {
                            // Popped after the caller stopped waiting: put it back where it was.
                            if let Err(error) = shared.lpush::<_, _, i64>(&key, &text).await {
                                tracing::error!(inbox = %key, error = %acf_sdk::error::Report(&error), "inbox_entry_requeue_failed");
                            }
                            Self::recycle(&blocking, conn, permit);
                        }
                        Ok(None) => Self::recycle(&blocking, conn, permit),
                        Err(error) => tracing::warn!(inbox = %key, error = %acf_sdk::error::Report(&error), "inbox_wait_connection_dropped"),
                    }
                });
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl SessionInbox for RedisStores {
    async fn push(&self, session_key: &str, entry: &InboxEntry) -> Result<(), StoreError> {
        let key = self.keys.inbox(session_key);
        let text = serde_json::to_string(entry).map_err(StoreError::encode("inbox entry"))?;
        let _: () = redis::pipe()
            .rpush(&key, text)
            .ignore()
            .pexpire(
                &key,
                i64::try_from(millis(self.settings.inbox_ttl)).unwrap_or(i64::MAX),
            )
            .ignore()
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("inbox push"))?;
        Ok(())
    }

    async fn wait(
        &self,
        session_key: &str,
        deadline: Instant,
    ) -> Result<Option<InboxEntry>, StoreError> {
        let key = self.keys.inbox(session_key);
        if deadline <= Instant::now() {
            return self.pop_now(&key).await;
        }
        if self.blocking_permits.available_permits() == 0 {
            // Every dedicated connection is busy: an entry already queued needs none.
            if let Some(entry) = self.pop_now(&key).await? {
                return Ok(Some(entry));
            }
        }
        let Some(checkout) = self.blocking_connection(deadline).await? else {
            // Every dedicated connection stayed busy until the deadline: take what is queued, if anything.
            return self.pop_now(&key).await;
        };
        let pooled = checkout.pooled;
        match self.blocking_pop(&key, deadline, checkout).await {
            Err(StoreError::Unavailable { .. }) if pooled => {
                // An idle connection died (e.g. Redis restarted); the others likely did too. Start afresh once.
                self.idle_blocking().clear();
                match self.blocking_connection(deadline).await? {
                    Some(checkout) => self.blocking_pop(&key, deadline, checkout).await,
                    None => self.pop_now(&key).await,
                }
            }
            other => other,
        }
    }

    async fn drain(&self, session_key: &str) -> Result<Vec<InboxEntry>, StoreError> {
        let key = self.keys.inbox(session_key);
        let (texts,): (Vec<String>,) = redis::pipe()
            .atomic()
            .lrange(&key, 0, -1)
            .del(&key)
            .ignore()
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("inbox drain"))?;
        texts.iter().map(|text| parse_entry(text)).collect()
    }
}
