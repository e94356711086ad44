//! Keeping a lease alive while a long step (the brain) runs.
//!
//! The original worker's extend could never succeed, so a slow brain silently outlived its 300 s lock. A
//! [`Heartbeat`] extends the lease by token at a fixed interval and notices when the lock was lost, so the step
//! can refuse to commit (fencing refuses it anyway) and say why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Lease, LockOutcome, SessionMutex};

/// What a heartbeat did while it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatReport {
    /// Successful extensions.
    pub extensions: u32,
    /// Extensions that failed because the backend was unavailable (the heartbeat kept trying).
    pub errors: u32,
    /// The lock was found owned by someone else or expired; the heartbeat stopped extending.
    pub lost: bool,
}

/// A background task extending one lease until stopped or dropped.
#[derive(Debug)]
pub struct Heartbeat {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<HeartbeatReport>>,
    lost: Arc<AtomicBool>,
}

impl Heartbeat {
    /// Extends `lease` to `ttl` every `every` (choose `every` well below `ttl`, e.g. a third).
    pub fn start(
        mutex: Arc<dyn SessionMutex>,
        lease: Lease,
        ttl: Duration,
        every: Duration,
    ) -> Self {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let lost = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&lost);
        let task = tokio::spawn(async move {
            let mut report = HeartbeatReport::default();
            loop {
                tokio::select! {
                    _ = &mut stopped => return report,
                    () = tokio::time::sleep(every) => {}
                }
                match mutex.extend(&lease, ttl).await {
                    Ok(LockOutcome::Applied) => report.extensions += 1,
                    Ok(LockOutcome::NotOwned) => {
                        tracing::warn!(session_key = %lease.session_key, fence = lease.fence, "mutex_lost");
                        flag.store(true, Ordering::Release);
                        report.lost = true;
                        return report;
                    }
                    Err(error) => {
                        tracing::warn!(session_key = %lease.session_key, error = %acf_sdk::error::Report(&error), "mutex_extend_failed");
                        report.errors += 1;
                    }
                }
            }
        });
        Self {
            stop: Some(stop),
            task: Some(task),
            lost,
        }
    }

    /// Whether the heartbeat found the lock lost.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Stops extending and reports what happened.
    pub async fn stop(mut self) -> HeartbeatReport {
        if let Some(stop) = self.stop.take() {
            // The task may already have ended after losing the lock; then there is no receiver.
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|_| HeartbeatReport {
                lost: self.is_lost(),
                ..HeartbeatReport::default()
            }),
            None => HeartbeatReport::default(),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
