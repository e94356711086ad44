//! Holding the session lock across steps: acquiring it, re-validating it at the start of every later step (a
//! retried or re-assigned step may run long after the lease was handed out), and keeping it and the step's
//! execution timeout alive while a long step runs.

use std::sync::Arc;
use std::time::Duration;

use acf_sdk::{Context, StepError};
use tokio::task::JoinHandle;

use super::LogicalTurnWorkflow;
use crate::mutex::{Heartbeat, HeartbeatReport, Lease, LockOutcome};

impl LogicalTurnWorkflow {
    /// Acquires the session's lock with the configured blocking wait. Contention and an unreachable backend are
    /// retryable (`mutex_acquisition_failed`); the engine retries with the configured backoff.
    pub(crate) async fn lock(&self, session_key: &str) -> Result<Lease, StepError> {
        let started = std::time::Instant::now();
        match self.mutex.acquire(session_key, self.settings.lock).await {
            Ok(lease) => {
                self.lock_taken(&lease, started.elapsed());
                Ok(lease)
            }
            Err(error) => {
                tracing::warn!(session_key, %error, retryable = error.is_retryable(), "mutex_acquisition_failed");
                let failure = StepError::msg(format!("mutex_acquisition_failed: {error}"));
                Err(if error.is_retryable() {
                    failure
                } else {
                    failure.into_non_retryable()
                })
            }
        }
    }

    /// Records a lock acquired after `waited`.
    pub(crate) fn lock_taken(&self, lease: &Lease, waited: Duration) {
        self.metrics.lock_acquired(waited);
        tracing::info!(
            session_key = %lease.session_key,
            lock_key = %lease.key,
            fence = lease.fence,
            "mutex_acquired"
        );
    }

    /// Makes sure the run still holds its lock: extends `lease` by token, or, when the lock expired while the run
    /// was away (a worker died, a retry waited), acquires it again. The returned lease is the one to use from now on.
    pub(crate) async fn revalidate(&self, lease: &Lease) -> Result<Lease, StepError> {
        match self.mutex.extend(lease, self.settings.lock.ttl).await {
            Ok(LockOutcome::Applied) => Ok(lease.clone()),
            Ok(LockOutcome::NotOwned) => {
                self.metrics.lock_lost();
                tracing::warn!(session_key = %lease.session_key, fence = lease.fence, "mutex_reacquiring");
                self.lock(&lease.session_key).await
            }
            Err(error) => {
                tracing::warn!(session_key = %lease.session_key, %error, "mutex_extend_failed");
                Err(StepError::msg(format!(
                    "cannot confirm the session lock: {error}"
                )))
            }
        }
    }

    /// [`Self::revalidate`] with `read` sent beside it on the shared connection (one round trip for both). When the
    /// lock had expired and was taken again, `read` runs once more: what it read before is not what the new lock
    /// guards.
    pub(crate) async fn revalidate_beside<T, F, Fut>(
        &self,
        lease: &Lease,
        read: F,
    ) -> (Result<Lease, StepError>, T)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        let (revalidated, value) = tokio::join!(self.revalidate(lease), read());
        match revalidated {
            Ok(now) if now.token != lease.token => {
                let value = read().await;
                (Ok(now), value)
            }
            other => (other, value),
        }
    }

    /// Releases `lease` by token; a lock that is already gone or owned by someone else is left alone.
    pub(crate) async fn unlock(&self, lease: &Lease) -> bool {
        match self.mutex.release(lease).await {
            Ok(LockOutcome::Applied) => {
                tracing::info!(session_key = %lease.session_key, lock_key = %lease.key, fence = lease.fence, "mutex_released");
                true
            }
            Ok(LockOutcome::NotOwned) => false,
            Err(error) => {
                // The lock expires by its TTL; fencing already protects the next holder from this run.
                tracing::error!(session_key = %lease.session_key, %error, "mutex_release_failed");
                false
            }
        }
    }

    /// [`Self::unlock`] when the run holds a lease.
    pub(crate) async fn unlock_opt(&self, lease: Option<&Lease>) -> bool {
        match lease {
            Some(lease) => self.unlock(lease).await,
            None => false,
        }
    }

    /// Extends the lease and the step's execution timeout every heartbeat interval until stopped. With a
    /// `deadline` (the brain's), the step's timeout is never extended past it.
    pub(crate) fn keep_alive(
        &self,
        ctx: &Context,
        lease: &Lease,
        deadline: Option<tokio::time::Instant>,
    ) -> KeepAlive {
        let every = self.settings.heartbeat_interval;
        let heartbeat = Heartbeat::start(
            Arc::clone(&self.mutex),
            lease.clone(),
            self.settings.lock.ttl,
            every,
        );
        let ctx = ctx.clone();
        let refresher = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
                    return;
                }
                // Adding one interval per interval keeps the deadline a constant distance ahead.
                if let Err(error) = ctx.refresh_timeout(every).await {
                    tracing::warn!(%error, step = ctx.step_name(), "step_timeout_refresh_failed");
                }
            }
        });
        KeepAlive {
            heartbeat,
            refresher,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The background extension of one step's lease and timeout.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    heartbeat: Heartbeat,
    refresher: JoinHandle<()>,
    metrics: Arc<crate::metrics::TurnMetrics>,
}

impl KeepAlive {
    /// Stops both extensions.
    pub(crate) async fn stop(self) -> HeartbeatReport {
        self.refresher.abort();
        let report = self.heartbeat.stop().await;
        if report.lost {
            self.metrics.lock_lost();
        }
        report
    }
}

/// Milliseconds of a duration, saturated.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
