//! A `tracing` layer that forwards events emitted inside a step to the engine (`PutLog`), attached to the
//! step's task run, through the bounded queue of the worker running that step (full queue = the line is
//! dropped and counted, never blocking the step).
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(acf_sdk::log_layer::EngineLogLayer::new())
//!     .init();
//! ```
//! Each running worker drains its own queue (unless `HATCHET_CLIENT_DISABLE_LOG_CAPTURE` is set), so with
//! several workers in one process (two engines, or tests) a line reaches the engine that ran its step.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context as LayerContext;

use crate::context::{LogLevel, RunInfo};

/// What the layer needs of the step a task is running: where its lines go and what they attach to.
struct StepScope {
    task_run_external_id: String,
    retry_count: i32,
    /// The running worker's queue; `None` when log capture is off.
    lines: Option<mpsc::Sender<LogLine>>,
}

tokio::task_local! {
    static CURRENT_STEP: StepScope;
}

/// Runs `fut` as the body of the step described by `info`; events inside it go to `lines`.
pub(crate) fn scope<F: Future>(
    info: &RunInfo,
    lines: Option<mpsc::Sender<LogLine>>,
    fut: F,
) -> impl Future<Output = F::Output> + use<F> {
    let step = StepScope {
        task_run_external_id: info.task_run_external_id.clone(),
        retry_count: info.retry_count,
        lines,
    };
    CURRENT_STEP.scope(step, fut)
}

/// One forwarded line.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub task_run_external_id: String,
    pub retry_count: i32,
    pub level: LogLevel,
    pub message: String,
}

/// Lines dropped (over every worker of the process) because a queue was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Lines dropped because the queue was full.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// The layer. Events outside a step are ignored.
#[derive(Debug, Clone, Default)]
pub struct EngineLogLayer {
    min_level: Option<tracing::Level>,
}

impl EngineLogLayer {
    /// A layer forwarding INFO and above (each worker's queue holds `HATCHET_CLIENT_LOG_QUEUE_SIZE` lines).
    pub fn new() -> Self {
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
        let Ok(Some((tx, task_run_external_id, retry_count))) = CURRENT_STEP.try_with(|s| {
            s.lines
                .clone()
                .map(|tx| (tx, s.task_run_external_id.clone(), s.retry_count))
        }) else {
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
        if tx.try_send(line).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::prelude::*;

    use super::*;

    #[tokio::test]
    async fn forwards_only_events_inside_a_step_to_its_workers_queue() {
        let (tx, mut rx) = mpsc::channel(16);
        let (other_tx, mut other_rx) = mpsc::channel(16);
        let subscriber = tracing_subscriber::registry().with(EngineLogLayer::new());
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::info!(target: "app", "outside");
        let info = RunInfo {
            task_run_external_id: "t1".into(),
            retry_count: 2,
            ..RunInfo::default()
        };
        scope(&info, Some(tx), async {
            tracing::warn!(target: "app", user = "ann", "inside")
        })
        .await;
        let other = RunInfo {
            task_run_external_id: "t2".into(),
            ..RunInfo::default()
        };
        scope(&other, Some(other_tx), async {
            tracing::info!(target: "app", "other worker")
        })
        .await;
        scope(&info, None, async {
            tracing::info!(target: "app", "capture off")
        })
        .await;
        tracing::debug!("ignored");
        let line = rx.try_recv().unwrap();
        assert_eq!(
            (line.task_run_external_id.as_str(), line.retry_count),
            ("t1", 2)
        );
        assert_eq!(line.level, LogLevel::Warn);
        assert_eq!(line.message, "inside user=ann");
        assert!(rx.try_recv().is_err());
        assert_eq!(other_rx.try_recv().unwrap().task_run_external_id, "t2");
        assert!(other_rx.try_recv().is_err());
    }
}
