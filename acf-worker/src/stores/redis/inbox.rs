//! [`SessionInbox`] on Redis: a list per session (`{prefix}:inbox:{session_key}`) of JSON [`InboxEntry`]s,
//! `RPUSH` to add, `BLPOP` to wait.
//!
//! A `BLPOP` occupies its connection until it returns, so waits run on dedicated connections, never on the shared
//! one. The server's own timeout for blocked clients is only as precise as its event loop (100 ms at the default
//! `hz 10`), so the deadline is kept locally: when it passes first, the wait returns `None` at once and a
//! background task collects the still-pending reply, pushes a late-popped entry back to the head of the list and
//! recycles the connection. No entry is lost to a timed-out wait.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use tokio::time::Instant;

use super::RedisStores;
use crate::stores::settings::millis;
use crate::stores::{InboxEntry, SessionInbox, StoreError};

/// Idle blocking connections kept for reuse.
const MAX_IDLE_BLOCKING: usize = 32;
/// Extra time given to the server's own `BLPOP` timeout so the local deadline always fires first.
const SERVER_TIMEOUT_SLACK: Duration = Duration::from_millis(250);

fn parse_entry(text: &str) -> Result<InboxEntry, StoreError> {
    serde_json::from_str(text).map_err(|err| StoreError::corrupt("inbox entry", err))
}

impl RedisStores {
    /// An idle blocking connection (`true`) or a new one (`false`).
    async fn blocking_connection(&self) -> Result<(MultiplexedConnection, bool), StoreError> {
        let idle = self.idle_blocking().pop();
        if let Some(conn) = idle {
            return Ok((conn, true));
        }
        // No response timeout: a blocking read legitimately waits for the whole window.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(StoreError::unavailable("inbox wait"))?;
        Ok((conn, false))
    }

    fn idle_blocking(&self) -> std::sync::MutexGuard<'_, Vec<MultiplexedConnection>> {
        self.blocking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn recycle(
        blocking: &std::sync::Mutex<Vec<MultiplexedConnection>>,
        conn: MultiplexedConnection,
    ) {
        let mut idle = blocking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE_BLOCKING {
            idle.push(conn);
        }
    }

    /// One `BLPOP` on `conn`, bounded by the local `deadline`.
    async fn blocking_pop(
        &self,
        key: &str,
        deadline: Instant,
        mut conn: MultiplexedConnection,
    ) -> Result<Option<InboxEntry>, StoreError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let server_timeout = (remaining + SERVER_TIMEOUT_SLACK).as_secs_f64();
        let blpop_key = key.to_owned();
        let mut pending = tokio::spawn(async move {
            let reply: redis::RedisResult<Option<(String, String)>> =
                conn.blpop(&blpop_key, server_timeout).await;
            (conn, reply)
        });
        tokio::select! {
            joined = &mut pending => {
                let (conn, reply) = joined.map_err(|err| StoreError::corrupt("inbox wait task", err))?;
                // A failed connection is dropped, not recycled.
                let popped = reply.map_err(StoreError::unavailable("inbox wait"))?;
                Self::recycle(&self.blocking, conn);
                popped.map(|(_, text)| parse_entry(&text)).transpose()
            }
            () = tokio::time::sleep_until(deadline) => {
                let blocking = self.blocking.clone();
                let mut shared = self.conn();
                let key = key.to_owned();
                tokio::spawn(async move {
                    let Ok((conn, reply)) = pending.await else { return };
                    match reply {
                        Ok(Some((_, text))) => {
                            // Popped after the caller stopped waiting: put it back where it was.
                            if let Err(error) = shared.lpush::<_, _, i64>(&key, &text).await {
                                tracing::error!(inbox = %key, %error, "inbox_entry_requeue_failed");
                            }
                            Self::recycle(&blocking, conn);
                        }
                        Ok(None) => Self::recycle(&blocking, conn),
                        Err(error) => tracing::warn!(inbox = %key, %error, "inbox_wait_connection_dropped"),
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
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let popped: Option<String> = self
                .conn()
                .lpop(&key, None)
                .await
                .map_err(StoreError::unavailable("inbox wait"))?;
            return popped.as_deref().map(parse_entry).transpose();
        }
        let (conn, pooled) = self.blocking_connection().await?;
        match self.blocking_pop(&key, deadline, conn).await {
            Err(StoreError::Unavailable { .. }) if pooled => {
                // An idle connection died (e.g. Redis restarted); the others likely did too. Start afresh once.
                self.idle_blocking().clear();
                let (conn, _) = self.blocking_connection().await?;
                self.blocking_pop(&key, deadline, conn).await
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
