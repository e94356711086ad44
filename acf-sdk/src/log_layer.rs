//! A `tracing` layer that forwards events emitted inside a step to the engine (`PutLog`), attached to the
//! step's task run, through a bounded queue (full queue = the line is dropped and counted, never blocking the
//! step).
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(acf_sdk::log_layer::EngineLogLayer::new())
//!     .init();
//! ```
//! A running worker drains the queue (unless `HATCHET_CLIENT_DISABLE_LOG_CAPTURE` is set).

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context as LayerContext;

use crate::context::{LogLevel, RunInfo};

tokio::task_local! {
    static CURRENT_STEP: RunInfo;
}

/// Runs `fut` as the body of the step described by `info` (events inside it are forwarded).
pub(crate) fn scope<F: Future>(info: RunInfo, fut: F) -> impl Future<Output = F::Output> {
    CURRENT_STEP.scope(info, fut)
}

/// One forwarded line.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub task_run_external_id: String,
    pub retry_count: i32,
    pub level: LogLevel,
    pub message: String,
}

struct Queue {
    tx: Mutex<Option<mpsc::Sender<LogLine>>>,
    rx: Mutex<Option<mpsc::Receiver<LogLine>>>,
    dropped: AtomicU64,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

fn queue() -> &'static Queue {
    QUEUE.get_or_init(|| Queue {
        tx: Mutex::new(None),
        rx: Mutex::new(None),
        dropped: AtomicU64::new(0),
    })
}

/// Creates the queue (capacity from the first caller) if it does not exist yet.
fn ensure_queue(capacity: usize) {
    let q = queue();
    let mut tx =
        q.tx.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    if tx.is_none() {
        let (s, r) = mpsc::channel(capacity.max(1));
        *tx = Some(s);
        *q.rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
    }
}

/// Takes the receiving end (one worker per process drains it).
pub(crate) fn take_receiver(capacity: usize) -> Option<mpsc::Receiver<LogLine>> {
    ensure_queue(capacity);
    queue()
        .rx
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Lines dropped because the queue was full.
pub fn dropped_lines() -> u64 {
    queue().dropped.load(Ordering::Relaxed)
}

/// The layer. Events outside a step are ignored.
#[derive(Debug, Clone, Default)]
pub struct EngineLogLayer {
    min_level: Option<tracing::Level>,
}

impl EngineLogLayer {
    /// A layer forwarding INFO and above (queue of 1000 lines unless a worker configured another size).
    pub fn new() -> Self {
        ensure_queue(1000);
        Self {
            min_level: Some(tracing::Level::INFO),
        }
    }

    /// Forwards events at `level` and above.
    #[must_use]
    pub fn with_min_level(mut self, level: tracing::Level) -> Self {
        self.min_level = Some(level);
        self
    }
}

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EngineLogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        let level = *event.metadata().level();
        if self.min_level.is_some_and(|min| level > min) {
            return;
        }
        // Our own client's logs would loop back into PutLog.
        if event.metadata().target().starts_with("acf_sdk") {
            return;
        }
        let Ok((task_run_external_id, retry_count)) =
            CURRENT_STEP.try_with(|s| (s.task_run_external_id.clone(), s.retry_count))
        else {
            return;
        };
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let level = match level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        };
        let line = LogLine {
            task_run_external_id,
            retry_count,
            level,
            message: visitor.0,
        };
        let q = queue();
        let tx =
            q.tx.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
        if let Some(tx) = tx
            && tx.try_send(line).is_err()
        {
            q.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::prelude::*;

    use super::*;

    #[tokio::test]
    async fn forwards_only_events_inside_a_step() {
        let rx = take_receiver(16);
        let subscriber = tracing_subscriber::registry().with(EngineLogLayer::new());
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::info!(target: "app", "outside");
        let info = RunInfo {
            task_run_external_id: "t1".into(),
            retry_count: 2,
            ..RunInfo::default()
        };
        scope(info, async {
            tracing::warn!(target: "app", user = "ann", "inside")
        })
        .await;
        tracing::debug!("ignored");
        let mut rx = rx.expect("first receiver");
        let line = rx.try_recv().unwrap();
        assert_eq!(
            (line.task_run_external_id.as_str(), line.retry_count),
            ("t1", 2)
        );
        assert_eq!(line.level, LogLevel::Warn);
        assert_eq!(line.message, "inside user=ann");
        assert!(rx.try_recv().is_err());
    }
}
