//! Worker metrics, rendered in the Prometheus text format by the health server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the step-duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

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

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters and gauges of one worker.
#[derive(Default)]
pub struct Metrics {
    slots_in_use: Mutex<BTreeMap<String, i64>>,
    slots_total: Mutex<BTreeMap<String, i64>>,
    outcomes: Mutex<BTreeMap<(String, Outcome), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    reconnects: AtomicU64,
    heartbeat_failures: AtomicU64,
    panics: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Declares a slot type's capacity.
    pub fn set_slots_total(&self, slot: &str, total: i64) {
        lock(&self.slots_total).insert(slot.to_owned(), total);
    }

    /// Adjusts the slots in use of a slot type.
    pub fn add_slots_in_use(&self, slot: &str, delta: i64) {
        *lock(&self.slots_in_use).entry(slot.to_owned()).or_default() += delta;
    }

    /// Slots in use of a slot type.
    pub fn slots_in_use(&self, slot: &str) -> i64 {
        lock(&self.slots_in_use).get(slot).copied().unwrap_or(0)
    }

    /// Records a finished attempt.
    pub fn record(&self, action: &str, outcome: Outcome, elapsed: Duration) {
        *lock(&self.outcomes)
            .entry((action.to_owned(), outcome))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut durations = lock(&self.durations);
        let h = durations.entry(action.to_owned()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Number of attempts of `action` that ended with `outcome`.
    pub fn outcomes(&self, action: &str, outcome: Outcome) -> u64 {
        lock(&self.outcomes)
            .get(&(action.to_owned(), outcome))
            .copied()
            .unwrap_or(0)
    }

    /// Counts a listener reconnect.
    pub fn inc_reconnects(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Listener reconnects so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Counts a failed heartbeat.
    pub fn inc_heartbeat_failures(&self) {
        self.heartbeat_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a panicking step.
    pub fn inc_panics(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str(
            "# HELP hatchet_worker_slots_in_use Slots currently taken by running steps.\n",
        );
        out.push_str("# TYPE hatchet_worker_slots_in_use gauge\n");
        for (slot, v) in lock(&self.slots_in_use).iter() {
            let _ = writeln!(
                out,
                "hatchet_worker_slots_in_use{{slot=\"{}\"}} {v}",
                esc(slot)
            );
        }
        out.push_str("# HELP hatchet_worker_slots Configured slots per slot type.\n");
        out.push_str("# TYPE hatchet_worker_slots gauge\n");
        for (slot, v) in lock(&self.slots_total).iter() {
            let _ = writeln!(out, "hatchet_worker_slots{{slot=\"{}\"}} {v}", esc(slot));
        }
        out.push_str("# HELP hatchet_worker_tasks_total Finished step attempts by outcome.\n");
        out.push_str("# TYPE hatchet_worker_tasks_total counter\n");
        for ((action, outcome), v) in lock(&self.outcomes).iter() {
            let _ = writeln!(
                out,
                "hatchet_worker_tasks_total{{action=\"{}\",outcome=\"{}\"}} {v}",
                esc(action),
                outcome.label()
            );
        }
        out.push_str("# HELP hatchet_worker_step_duration_seconds Step run time.\n");
        out.push_str("# TYPE hatchet_worker_step_duration_seconds histogram\n");
        for (action, h) in lock(&self.durations).iter() {
            let a = esc(action);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "hatchet_worker_step_duration_seconds_bucket{{action=\"{a}\",le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "hatchet_worker_step_duration_seconds_bucket{{action=\"{a}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "hatchet_worker_step_duration_seconds_sum{{action=\"{a}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "hatchet_worker_step_duration_seconds_count{{action=\"{a}\"}} {}",
                h.count
            );
        }
        for (name, help, v) in [
            (
                "hatchet_worker_reconnects_total",
                "Action stream reconnects.",
                &self.reconnects,
            ),
            (
                "hatchet_worker_heartbeat_failures_total",
                "Failed heartbeats.",
                &self.heartbeat_failures,
            ),
            (
                "hatchet_worker_panics_total",
                "Steps that panicked.",
                &self.panics,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.set_slots_total("default", 10);
        m.add_slots_in_use("default", 2);
        m.record("wf:step", Outcome::Completed, Duration::from_millis(20));
        m.record("wf:step", Outcome::Failed, Duration::from_secs(2));
        m.inc_reconnects();
        let text = m.render();
        assert!(text.contains("hatchet_worker_slots_in_use{slot=\"default\"} 2"));
        assert!(
            text.contains("hatchet_worker_tasks_total{action=\"wf:step\",outcome=\"completed\"} 1")
        );
        assert!(text.contains(
            "hatchet_worker_step_duration_seconds_bucket{action=\"wf:step\",le=\"0.025\"} 1"
        ));
        assert!(text.contains("hatchet_worker_step_duration_seconds_count{action=\"wf:step\"} 2"));
        assert!(text.contains("hatchet_worker_reconnects_total 1"));
        assert_eq!(m.outcomes("wf:step", Outcome::Failed), 1);
    }
}
