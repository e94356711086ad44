//! Workflow idempotency (`CreateWorkflowVersionRequest.idempotency`): a trigger whose CEL key (over `input`
//! and `additional_metadata`) matches a key still held by an earlier run of the same workflow is refused with
//! `ALREADY_EXISTS "idempotency key collision"` and a `v1.IdempotencyCollisionError` status detail naming the
//! existing run, as Hatchet does; the official SDKs turn that detail into their `IdempotencyCollisionError`.
//!
//! How long a key is held:
//! * `TTL`: for `ttl_ms` after the run that took it was triggered, whatever that run's outcome.
//! * `STATUS`: until the run that took it fails or is cancelled (a retry of a failed operation may go
//!   ahead), and at most `ttl_ms` (the SDKs' `fallback_ttl`). A queued, running or completed run holds it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prost::Message as _;
use uuid::Uuid;

use crate::engine::state::RunState;
use crate::error::{RpcStatus, detail_type_url};
use crate::proto::v1::{
    BulkTriggerIdempotencyCollisionError, IdempotencyCollisionError, IdempotencyConfig,
};

/// Prune expired holds once this many are kept, so a long-lived engine does not grow without bound.
const PRUNE_AT: usize = 4096;

/// A workflow's validated idempotency rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyDef {
    /// CEL expression giving the key (a string).
    pub(crate) expression: String,
    /// How long a key is held at most.
    pub(crate) ttl: Duration,
    /// When a held key is released early.
    pub(crate) method: Method,
}

/// `IdempotencyMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Held for the TTL.
    Ttl,
    /// Held until the run fails or is cancelled, at most the TTL.
    Status,
}

impl IdempotencyDef {
    /// Validates `config`, naming the offending field under `idempotency`.
    pub(crate) fn from_proto(config: &IdempotencyConfig) -> Result<Self, (&'static str, String)> {
        if config.expression.trim().is_empty() {
            return Err(("idempotency.expression", "must not be empty".into()));
        }
        crate::engine::expr::check(&config.expression)
            .map_err(|e| ("idempotency.expression", e.to_string()))?;
        let ttl_ms = u64::try_from(config.ttl_ms)
            .ok()
            .filter(|ms| *ms >= 1)
            .ok_or_else(|| ("idempotency.ttl_ms", "must be at least 1".to_owned()))?;
        let method = match config.method {
            None | Some(0) => Method::Ttl,
            Some(1) => Method::Status,
            Some(other) => {
                return Err((
                    "idempotency.method",
                    format!("unknown IdempotencyMethod {other} (TTL = 0, STATUS = 1)"),
                ));
            }
        };
        Ok(Self {
            expression: config.expression.clone(),
            ttl: Duration::from_millis(ttl_ms),
            method,
        })
    }
}

/// A key held by a run.
#[derive(Debug, Clone, Copy)]
struct Hold {
    run: Uuid,
    until: Instant,
    method: Method,
}

/// Keys held per (workflow name, key).
#[derive(Debug, Default)]
pub(crate) struct Holds(HashMap<(String, String), Hold>);

impl Holds {
    /// Takes `key` for `run` of `workflow`, or returns the run that still holds it. `state_of` tells a
    /// holding run's state (`None` once the run is no longer kept, which releases a `STATUS` key).
    pub(crate) fn claim(
        &mut self,
        workflow: &str,
        key: String,
        rule: &IdempotencyDef,
        run: Uuid,
        now: Instant,
        state_of: impl Fn(Uuid) -> Option<RunState>,
    ) -> Result<(), Uuid> {
        let slot = (workflow.to_owned(), key);
        if let Some(hold) = self.0.get(&slot) {
            let released = match hold.method {
                Method::Ttl => false,
                Method::Status => !matches!(
                    state_of(hold.run),
                    Some(RunState::Pending | RunState::Running | RunState::Completed)
                ),
            };
            if now < hold.until && !released {
                return Err(hold.run);
            }
        }
        if self.0.len() >= PRUNE_AT {
            self.0.retain(|_, hold| now < hold.until);
        }
        self.0.insert(
            slot,
            Hold {
                run,
                until: now + rule.ttl,
                method: rule.method,
            },
        );
        Ok(())
    }
}

const MESSAGE: &str = "idempotency key collision";

fn already_exists(detail_type: &str, detail: Vec<u8>) -> tonic::Status {
    let status = RpcStatus {
        code: tonic::Code::AlreadyExists as i32,
        message: MESSAGE.to_owned(),
        details: vec![prost_types::Any {
            type_url: detail_type_url(detail_type),
            value: detail,
        }],
    };
    tonic::Status::with_details(
        tonic::Code::AlreadyExists,
        MESSAGE,
        status.encode_to_vec().into(),
    )
}

/// The status a single trigger's collision is answered with.
pub(crate) fn collision_status(existing: Uuid, colliding: Uuid) -> tonic::Status {
    let detail = IdempotencyCollisionError {
        existing_run_external_id: existing.to_string(),
        colliding_run_external_id: colliding.to_string(),
    };
    already_exists("IdempotencyCollisionError", detail.encode_to_vec())
}

/// The status a bulk trigger with collisions is answered with: the runs that were created and the collisions.
pub(crate) fn bulk_collision_status(
    successful: Vec<String>,
    collisions: Vec<(Uuid, Uuid)>,
) -> tonic::Status {
    let detail = BulkTriggerIdempotencyCollisionError {
        successful_workflow_run_external_ids: successful,
        collisions: collisions
            .into_iter()
            .map(|(existing, colliding)| IdempotencyCollisionError {
                existing_run_external_id: existing.to_string(),
                colliding_run_external_id: colliding.to_string(),
            })
            .collect(),
    };
    already_exists(
        "BulkTriggerIdempotencyCollisionError",
        detail.encode_to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: Method) -> IdempotencyDef {
        IdempotencyDef {
            expression: "input.id".into(),
            ttl: Duration::from_secs(60),
            method,
        }
    }

    #[test]
    fn a_ttl_key_is_held_for_its_ttl_whatever_the_outcome() {
        let mut holds = Holds::default();
        let now = Instant::now();
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let failed = |_| Some(RunState::Failed);
        assert_eq!(
            holds.claim("wf", "k".into(), &rule(Method::Ttl), first, now, failed),
            Ok(())
        );
        assert_eq!(
            holds.claim("wf", "k".into(), &rule(Method::Ttl), second, now, failed),
            Err(first)
        );
        assert_eq!(
            holds.claim("other", "k".into(), &rule(Method::Ttl), second, now, failed),
            Ok(()),
            "keys are per workflow"
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(
            holds.claim("wf", "k".into(), &rule(Method::Ttl), second, later, failed),
            Ok(())
        );
    }

    #[test]
    fn a_status_key_is_released_by_failure_or_cancellation_only() {
        let now = Instant::now();
        for (state, held) in [
            (Some(RunState::Pending), true),
            (Some(RunState::Running), true),
            (Some(RunState::Completed), true),
            (Some(RunState::Failed), false),
            (Some(RunState::Cancelled), false),
            (None, false),
        ] {
            let mut holds = Holds::default();
            let first = Uuid::new_v4();
            let status = rule(Method::Status);
            holds
                .claim("wf", "k".into(), &status, first, now, |_| state)
                .unwrap();
            let again = holds.claim("wf", "k".into(), &status, Uuid::new_v4(), now, |_| state);
            assert_eq!(again.is_err(), held, "{state:?}");
        }
    }

    #[test]
    fn configs_are_validated_by_field() {
        let config = |expression: &str, ttl_ms, method| IdempotencyConfig {
            expression: expression.into(),
            ttl_ms,
            method,
        };
        assert_eq!(
            IdempotencyDef::from_proto(&config("input.id", 1000, Some(1)))
                .unwrap()
                .method,
            Method::Status
        );
        assert_eq!(
            IdempotencyDef::from_proto(&config("", 1000, None))
                .unwrap_err()
                .0,
            "idempotency.expression"
        );
        assert_eq!(
            IdempotencyDef::from_proto(&config("input.", 1000, None))
                .unwrap_err()
                .0,
            "idempotency.expression"
        );
        assert_eq!(
            IdempotencyDef::from_proto(&config("input.id", 0, None))
                .unwrap_err()
                .0,
            "idempotency.ttl_ms"
        );
        assert_eq!(
            IdempotencyDef::from_proto(&config("input.id", 10, Some(7)))
                .unwrap_err()
                .0,
            "idempotency.method"
        );
    }

    #[test]
    fn a_collision_carries_the_detail_the_sdks_decode() {
        let (existing, colliding) = (Uuid::new_v4(), Uuid::new_v4());
        let status = collision_status(existing, colliding);
        assert_eq!(status.code(), tonic::Code::AlreadyExists);
        assert_eq!(status.message(), "idempotency key collision");
        let decoded = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(decoded.code, tonic::Code::AlreadyExists as i32);
        let any = &decoded.details[0];
        assert_eq!(
            any.type_url,
            "type.googleapis.com/v1.IdempotencyCollisionError"
        );
        let detail = IdempotencyCollisionError::decode(any.value.as_slice()).unwrap();
        assert_eq!(detail.colliding_run_external_id, colliding.to_string());
        match crate::Error::from_status("WorkflowService/TriggerWorkflow", status) {
            crate::Error::IdempotencyCollision { existing_run_id } => {
                assert_eq!(existing_run_id, existing.to_string());
            }
            other => panic!("the SDK decodes the detail: {other:?}"),
        }
        let bulk = bulk_collision_status(vec!["created".into()], vec![(existing, colliding)]);
        match crate::Error::from_status("WorkflowService/BulkTriggerWorkflow", bulk) {
            crate::Error::BulkIdempotencyCollision {
                created_run_ids,
                existing_run_ids,
            } => {
                assert_eq!(created_run_ids, ["created"]);
                assert_eq!(existing_run_ids, [existing.to_string()]);
            }
            other => panic!("the SDK decodes the bulk detail: {other:?}"),
        }
    }
}
