//! Signals and the graceful shutdown sequence: stop taking work, drain running steps up to a deadline,
//! cancel and report stragglers, stop heartbeats, `Unsubscribe`. A second signal forces exit.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::state::{Shared, lock};
use crate::error::{Error, Result};
use crate::proto::WorkerUnsubscribeRequest;

/// First SIGTERM/SIGINT → graceful (or forced if configured); second → forced.
pub(crate) fn watch_signals(
    graceful: CancellationToken,
    force: CancellationToken,
    force_first: bool,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        // Listen once for the whole lifetime, so a second signal arriving right after the first is not lost.
        let mut signals = Signals::new();
        let mut seen = 0;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = signals.next() => {}
            }
            seen += 1;
            if seen == 1 && !force_first {
                tracing::info!("shutdown signal: draining (send it again to force)");
                graceful.cancel();
            } else {
                tracing::warn!("shutdown signal: forcing exit");
                graceful.cancel();
                force.cancel();
                return;
            }
        }
    });
}

#[cfg(unix)]
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

#[cfg(unix)]
impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Self(Some((term, int))),
            _ => {
                tracing::warn!("cannot install SIGTERM/SIGINT handlers");
                Self(None)
            }
        }
    }

    async fn next(&mut self) {
        match &mut self.0 {
            Some((term, int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> Self {
        Self
    }

    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Waits for running steps up to the drain timeout; then cancels the rest, gives them the cancellation grace
/// period, aborts them (the dispatcher reports them as failed, retryable) and waits for the reports.
pub(crate) async fn drain(shared: &Arc<Shared>, force: &CancellationToken) -> Result<()> {
    shared.set_status(|s| s.draining = true);
    let running = lock(&shared.running).len();
    tracing::info!(running, timeout = ?shared.options.drain_timeout, "draining");
    let deadline = tokio::time::Instant::now() + shared.options.drain_timeout;
    if !wait_idle(shared, deadline, force).await {
        if force.is_cancelled() {
            abort_all(shared);
            return Err(Error::Worker("forced shutdown".into()));
        }
        let stragglers: Vec<_> = {
            let running = lock(&shared.running);
            running
                .values()
                .map(|r| (r.cancel.clone(), r.abort.clone()))
                .collect()
        };
        tracing::warn!(
            count = stragglers.len(),
            "drain deadline reached: cancelling remaining steps"
        );
        for (token, _) in &stragglers {
            token.cancel();
        }
        let grace = tokio::time::Instant::now() + shared.options.cancel_grace;
        if !wait_idle(shared, grace, force).await {
            for (_, abort) in &stragglers {
                if let Some(a) = abort {
                    a.abort();
                }
            }
            // Their FAILED reports are sent by the dispatcher; give them time to go out.
            let reports = tokio::time::Instant::now() + Duration::from_secs(10);
            wait_idle(shared, reports, force).await;
        }
    }
    if force.is_cancelled() {
        abort_all(shared);
        return Err(Error::Worker("forced shutdown".into()));
    }
    flush_reports(shared, force).await;
    Ok(())
}

/// How long the graceful shutdown waits for STARTED reports still on their way once every step has finished.
const REPORT_FLUSH: Duration = Duration::from_secs(5);

/// Waits for the reports sent beside steps (each is one call with its own deadline) so a drained worker leaves
/// none unsent; bounded, and cut short by a forced exit.
async fn flush_reports(shared: &Shared, force: &CancellationToken) {
    shared.reports.close();
    if shared.reports.is_empty() {
        return;
    }
    tokio::select! {
        flushed = tokio::time::timeout(REPORT_FLUSH, shared.reports.wait()) => {
            if flushed.is_err() {
                tracing::warn!(pending = shared.reports.len(), "step_reports_unflushed");
            }
        }
        () = force.cancelled() => {}
    }
}

/// True once no step is running; false at the deadline or on force.
async fn wait_idle(
    shared: &Shared,
    deadline: tokio::time::Instant,
    force: &CancellationToken,
) -> bool {
    loop {
        if lock(&shared.running).is_empty() {
            return true;
        }
        if force.is_cancelled() || tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            () = force.cancelled() => {}
        }
    }
}

/// Aborts every running step without reporting (forced exit).
pub(crate) fn abort_all(shared: &Shared) {
    for r in lock(&shared.running).values() {
        r.cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
        r.cancel.cancel();
        if let Some(a) = &r.abort {
            a.abort();
        }
    }
}

/// `Unsubscribe` (5 s), best effort.
pub(crate) async fn unsubscribe(shared: &Shared) {
    let Some(worker_id) = shared.worker_id() else {
        return;
    };
    let mut client = shared.client.connection().dispatcher();
    let mut request = tonic::Request::new(WorkerUnsubscribeRequest { worker_id });
    request.set_timeout(Duration::from_secs(5));
    if let Err(status) = client.unsubscribe(request).await {
        tracing::debug!(code = ?status.code(), "unsubscribe failed");
    }
}
