//! Worker metrics on `prometheus-client`: one [`Registry`] per worker, rendered in the OpenMetrics text format by
//! the health server's `/metrics`. Applications add their own metrics to the same registry with
//! [`Metrics::register`], so one scrape returns both.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the step-duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a step attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Reported COMPLETED.
    Completed,
    /// Reported FAILED.
    Failed,
    /// Cancelled by the engine (nothing reported).
    Cancelled,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SlotLabels {
    slot: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    action: String,
    outcome: &'static str,
}

fn step_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The metrics of one worker, and the registry they are exposed from.
pub struct Metrics {
    registry: Mutex<Registry>,
    slots_in_use: Family<SlotLabels, Gauge>,
    slots_total: Family<SlotLabels, Gauge>,
    outcomes: Family<OutcomeLabels, Counter>,
    durations: Family<ActionLabels, Histogram, fn() -> Histogram>,
    reconnects: Counter<u64, AtomicU64>,
    heartbeat_failures: Counter<u64, AtomicU64>,
    panics: Counter<u64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            registry: Mutex::new(Registry::default()),
            slots_in_use: Family::default(),
            slots_total: Family::default(),
            outcomes: Family::default(),
            durations: Family::new_with_constructor(step_histogram),
            reconnects: Counter::default(),
            heartbeat_failures: Counter::default(),
            panics: Counter::default(),
        };
        metrics.register(|registry| {
            registry.register(
                "hatchet_worker_slots_in_use",
                "Slots currently taken by running steps",
                metrics.slots_in_use.clone(),
            );
            registry.register(
                "hatchet_worker_slots",
                "Configured slots per slot type",
                metrics.slots_total.clone(),
            );
            registry.register(
                "hatchet_worker_tasks",
                "Finished step attempts by outcome",
                metrics.outcomes.clone(),
            );
            registry.register(
                "hatchet_worker_step_duration_seconds",
                "Step run time",
                metrics.durations.clone(),
            );
            registry.register(
                "hatchet_worker_reconnects",
                "Action stream reconnects",
                metrics.reconnects.clone(),
            );
            registry.register(
                "hatchet_worker_heartbeat_failures",
                "Failed heartbeats",
                metrics.heartbeat_failures.clone(),
            );
            registry.register(
                "hatchet_worker_panics",
                "Steps that panicked",
                metrics.panics.clone(),
            );
        });
        metrics
    }
}

impl Metrics {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds metrics to this worker's registry: `register(|registry| registry.register(name, help, metric))`.
    /// Metrics registered here appear on the health server's `/metrics` with the worker's own.
    pub fn register<R>(&self, register: impl FnOnce(&mut Registry) -> R) -> R {
        register(&mut self.registry())
    }

    /// Declares a slot type's capacity.
    pub fn set_slots_total(&self, slot: &str, total: i64) {
        self.slots_total
            .get_or_create(&SlotLabels { slot: slot.into() })
            .set(total);
    }

    /// Adjusts the slots in use of a slot type.
    pub fn add_slots_in_use(&self, slot: &str, delta: i64) {
        self.slots_in_use
            .get_or_create(&SlotLabels { slot: slot.into() })
            .inc_by(delta);
    }

    /// Slots in use of a slot type.
    pub fn slots_in_use(&self, slot: &str) -> i64 {
        self.slots_in_use
            .get_or_create(&SlotLabels { slot: slot.into() })
            .get()
    }

    /// Records a finished attempt.
    pub fn record(&self, action: &str, outcome: Outcome, elapsed: Duration) {
        self.outcomes
            .get_or_create(&OutcomeLabels {
                action: action.into(),
                outcome: outcome.label(),
            })
            .inc();
        self.durations
            .get_or_create(&ActionLabels {
                action: action.into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Number of attempts of `action` that ended with `outcome`.
    pub fn outcomes(&self, action: &str, outcome: Outcome) -> u64 {
        self.outcomes
            .get_or_create(&OutcomeLabels {
                action: action.into(),
                outcome: outcome.label(),
            })
            .get()
    }

    /// Counts a listener reconnect.
    pub fn inc_reconnects(&self) {
        self.reconnects.inc();
    }

    /// Listener reconnects so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.get()
    }

    /// Counts a failed heartbeat.
    pub fn inc_heartbeat_failures(&self) {
        self.heartbeat_failures.inc();
    }

    /// Counts a panicking step.
    pub fn inc_panics(&self) {
        self.panics.inc();
    }

    /// The OpenMetrics text exposition of the whole registry (content type [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_registry_including_registered_extras() {
        let m = Metrics::default();
        m.set_slots_total("default", 10);
        m.add_slots_in_use("default", 2);
        m.record("wf:step", Outcome::Completed, Duration::from_millis(20));
        m.record("wf:step", Outcome::Failed, Duration::from_secs(2));
        m.inc_reconnects();
        let extra: Counter = Counter::default();
        m.register(|r| r.register("app_things", "Things", extra.clone()));
        extra.inc_by(3);
        let text = m.render();
        assert!(
            text.contains("hatchet_worker_slots_in_use{slot=\"default\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hatchet_worker_tasks_total{action=\"wf:step\",outcome=\"completed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "hatchet_worker_step_duration_seconds_bucket{le=\"0.025\",action=\"wf:step\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("hatchet_worker_step_duration_seconds_count{action=\"wf:step\"} 2"));
        assert!(text.contains("hatchet_worker_reconnects_total 1"));
        assert!(text.contains("app_things_total 3"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(m.outcomes("wf:step", Outcome::Failed), 1);
    }
}
