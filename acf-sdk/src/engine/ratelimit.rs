//! Rate limits: fixed windows of `limit` units per key. Static keys get their limit from
//! `PutRateLimit`; dynamic keys evaluate `key_expr` / `units_expr` / `limit_values_expr` over the
//! run input. Units are taken when a task is assigned; a task whose units do not fit stays queued
//! until its window resets. Keys without a known limit are not limited.

use crate::engine::expr;
use crate::engine::state::State;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The engine's rate limits: what `PutRateLimit` declared and what each key used in its window.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    /// Static limits: key → (units per window, window).
    declared: HashMap<String, (i64, Duration)>,
    /// Usage per key.
    buckets: HashMap<String, Bucket>,
}

impl RateLimits {
    /// Declares (or replaces) the static limit of `key` (`PutRateLimit`).
    pub(crate) fn declare(&mut self, key: String, limit: i64, window: Duration) {
        self.declared.insert(key, (limit, window));
    }

    /// The bucket a claim draws from (created on first use), its window refreshed; `None` for a key
    /// without a known limit.
    fn bucket(&mut self, claim: &Claim, now: Instant) -> Option<&mut Bucket> {
        let (limit, window) = match (self.declared.get(&claim.key), claim.dynamic) {
            (Some(fixed), _) => *fixed,
            (None, Some(dynamic)) => dynamic,
            (None, None) => return None,
        };
        let bucket = self.buckets.entry(claim.key.clone()).or_insert(Bucket {
            limit,
            window,
            used: 0,
            started: now,
        });
        bucket.limit = limit;
        bucket.window = window;
        if now.saturating_duration_since(bucket.started) >= bucket.window {
            bucket.used = 0;
            bucket.started = now;
        }
        Some(bucket)
    }

    /// Whether every claim fits in its window now.
    fn fits(&mut self, claims: &[Claim], now: Instant) -> bool {
        claims.iter().all(|claim| {
            self.bucket(claim, now)
                .is_none_or(|bucket| bucket.used + claim.units <= bucket.limit)
        })
    }

    /// Takes the claims' units.
    fn consume(&mut self, claims: &[Claim], now: Instant) {
        for claim in claims {
            if let Some(bucket) = self.bucket(claim, now) {
                bucket.used += claim.units;
            }
        }
    }
}

/// A task's claim on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    /// Evaluated key.
    pub(crate) key: String,
    /// Units taken at assignment.
    pub(crate) units: i64,
    /// Limit and window for dynamic keys.
    pub(crate) dynamic: Option<(i64, Duration)>,
}

/// The usage of one key in its current window.
#[derive(Debug, Clone)]
struct Bucket {
    /// Units per window.
    limit: i64,
    /// Window length.
    window: Duration,
    /// Units taken in the current window.
    used: i64,
    /// Start of the current window.
    started: Instant,
}

/// Whether a queued task may start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RateCheck {
    /// All its claims fit.
    Allowed,
    /// Some window is full; try later.
    Denied,
    /// A rate-limit expression failed: the task fails with this message.
    Failed(String),
}

fn int(value: &cel::Value) -> Option<i64> {
    match value {
        cel::Value::Int(i) => Some(*i),
        cel::Value::UInt(u) => i64::try_from(*u).ok(),
        cel::Value::Float(f) => Some(*f as i64),
        cel::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl State {
    fn claims(&self, task_id: Uuid) -> Result<Vec<Claim>, String> {
        let Some(task) = self.tasks.get(&task_id) else {
            return Ok(Vec::new());
        };
        let Some(def) = self.task_def(task) else {
            return Ok(Vec::new());
        };
        if def.rate_limits.is_empty() {
            return Ok(Vec::new());
        }
        let run = self.runs.get(&task.run_id);
        let input = run
            .map(|r| {
                if r.input.is_null() {
                    json!({})
                } else {
                    r.input.clone()
                }
            })
            .unwrap_or_else(|| json!({}));
        let metadata = run.map(|r| r.metadata.clone()).unwrap_or_else(|| json!({}));
        let vars: [(&str, &Value); 2] = [("input", &input), ("additional_metadata", &metadata)];
        def.rate_limits
            .iter()
            .map(|r| {
                let key = match &r.key_expr {
                    Some(e) => {
                        expr::eval_string(e, &vars).map_err(|e| format!("rate limit key: {e}"))?
                    }
                    None => r.key.clone(),
                };
                let units = match (&r.units_expr, r.units) {
                    (Some(e), _) => {
                        int(&expr::eval(e, &vars).map_err(|e| format!("rate limit units: {e}"))?)
                            .ok_or_else(|| {
                                format!("rate limit units expression {e:?} must return an integer")
                            })?
                    }
                    (None, units) => i64::from(units.unwrap_or(1)),
                };
                let limit = match r.limit_expr.as_deref().map(str::trim) {
                    None | Some("" | "-1") => None,
                    Some(e) => Some(
                        int(&expr::eval(e, &vars)
                            .map_err(|err| format!("rate limit value: {err}"))?)
                        .ok_or_else(|| {
                            format!("rate limit expression {e:?} must return an integer")
                        })?,
                    ),
                };
                Ok(Claim {
                    key,
                    units,
                    dynamic: limit.map(|l| (l, r.window)),
                })
            })
            .collect()
    }

    /// Checks a queued task's rate limits.
    pub(crate) fn rate_check(&mut self, task_id: Uuid, now: Instant) -> RateCheck {
        let claims = match self.claims(task_id) {
            Ok(c) => c,
            Err(message) => return RateCheck::Failed(message),
        };
        if self.rate_limits.fits(&claims, now) {
            RateCheck::Allowed
        } else {
            RateCheck::Denied
        }
    }

    /// Takes the units of an assigned task.
    pub(crate) fn rate_consume(&mut self, task_id: Uuid, now: Instant) {
        let claims = self.claims(task_id).unwrap_or_default();
        self.rate_limits.consume(&claims, now);
    }
}
