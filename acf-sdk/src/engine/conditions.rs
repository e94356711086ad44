//! Condition waits: sleeps and user events grouped by `or_group_id` (same group = OR, different
//! groups = AND), event scopes, `consider_events_since` lookbacks and CEL filters (reference §4.2, §6.3).

use crate::engine::expr;
use crate::engine::model::{CondAction, CondKind, ConditionDef};
use crate::engine::state::{State, StoredEvent};
use crate::engine::timers::TimerKind;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::time::Instant;
use uuid::Uuid;

/// Who is waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WaitOwner {
    /// A DAG task's `wait_for` / `skip_if` / `cancel_if`.
    Dag(Uuid),
    /// A durable task's `wait_for` log entry.
    Durable {
        /// Task.
        task: Uuid,
        /// Node id of the log entry.
        node: i64,
    },
    /// A legacy `RegisterDurableEvent` signal.
    Legacy {
        /// Task.
        task: Uuid,
        /// Signal key.
        signal_key: String,
    },
}

/// A set of conditions being waited on.
#[derive(Debug, Clone)]
pub(crate) struct Wait {
    /// Owner.
    pub(crate) owner: WaitOwner,
    /// Conditions.
    pub(crate) conds: Vec<ConditionDef>,
    /// Data of satisfied conditions.
    pub(crate) satisfied: Vec<Option<Value>>,
}

impl Wait {
    /// Whether the conditions with `action` (all conditions when `None`) fire: every distinct
    /// or-group among them has a satisfied member.
    pub(crate) fn fires(&self, action: Option<CondAction>) -> bool {
        let relevant: Vec<usize> = (0..self.conds.len())
            .filter(|i| action.is_none_or(|a| self.conds[*i].action == a))
            .collect();
        if relevant.is_empty() {
            return false;
        }
        let groups: HashSet<&str> = relevant
            .iter()
            .map(|i| self.conds[*i].or_group.as_str())
            .collect();
        groups.iter().all(|g| {
            relevant
                .iter()
                .any(|i| self.conds[*i].or_group == *g && self.satisfied[*i].is_some())
        })
    }

    /// Whether any condition has `action`.
    pub(crate) fn has(&self, action: CondAction) -> bool {
        self.conds.iter().any(|c| c.action == action)
    }

    /// `readable_data_key → data` of the satisfied conditions (with `action` when given).
    pub(crate) fn satisfied_map(&self, action: Option<CondAction>) -> Map<String, Value> {
        let mut out = Map::new();
        for (cond, data) in self.conds.iter().zip(&self.satisfied) {
            if let Some(data) = data
                && action.is_none_or(|a| cond.action == a)
                && !out.contains_key(&cond.readable_data_key)
            {
                out.insert(cond.readable_data_key.clone(), data.clone());
            }
        }
        out
    }

    /// The durable completion payload: `{"CREATE": {"<key>": [<data>]}}`.
    pub(crate) fn durable_payload(&self) -> Value {
        let mut create = Map::new();
        for (key, data) in self.satisfied_map(None) {
            create.insert(key, Value::Array(vec![data]));
        }
        json!({ "CREATE": create })
    }
}

/// Whether a user-event condition accepts an event: same key, scope rule, CEL filter over the payload.
pub(crate) fn event_matches(cond: &ConditionDef, event: &StoredEvent) -> bool {
    let CondKind::UserEvent { key, scope, .. } = &cond.kind else {
        return false;
    };
    if *key != event.key {
        return false;
    }
    if let Some(scope) = scope
        && event.scope.as_deref() != Some(scope.as_str())
    {
        return false;
    }
    let output = json!({});
    expr::eval_bool(
        &cond.expression,
        &[("input", &event.payload), ("output", &output)],
    )
    .unwrap_or(false)
}

impl State {
    /// Starts waiting on `conds` (some possibly pre-satisfied), arming sleeps and applying
    /// lookbacks; resolves immediately when already satisfied. Returns the wait id.
    pub(crate) fn create_wait(
        &mut self,
        owner: WaitOwner,
        conds: Vec<ConditionDef>,
        mut satisfied: Vec<Option<Value>>,
        now: Instant,
    ) -> Uuid {
        let id = Uuid::new_v4();
        satisfied.resize(conds.len(), None);
        for (i, cond) in conds.iter().enumerate() {
            if satisfied[i].is_some() {
                continue;
            }
            match &cond.kind {
                CondKind::Sleep { duration, .. } => {
                    self.timers
                        .arm(now + *duration, TimerKind::Sleep { wait: id, cond: i });
                }
                CondKind::UserEvent {
                    scope: Some(_),
                    since: Some(since),
                    ..
                } => {
                    satisfied[i] = self
                        .events
                        .iter()
                        .find(|e| e.at >= *since && event_matches(cond, e))
                        .map(|e| e.payload.clone());
                }
                _ => {}
            }
        }
        self.waits.insert(
            id,
            Wait {
                owner,
                conds,
                satisfied,
            },
        );
        self.resolve_wait(id, now);
        id
    }

    /// Offers a pushed event to every pending wait.
    pub(crate) fn offer_event_to_waits(&mut self, event: &StoredEvent, now: Instant) {
        let mut touched = Vec::new();
        for (id, wait) in &mut self.waits {
            let mut hit = false;
            for (i, cond) in wait.conds.iter().enumerate() {
                if wait.satisfied[i].is_none() && event_matches(cond, event) {
                    wait.satisfied[i] = Some(event.payload.clone());
                    hit = true;
                }
            }
            if hit {
                touched.push(*id);
            }
        }
        for id in touched {
            self.resolve_wait(id, now);
        }
    }

    /// A sleep condition elapsed.
    pub(crate) fn fire_sleep(&mut self, wait_id: Uuid, cond: usize, now: Instant) {
        let Some(wait) = self.waits.get_mut(&wait_id) else {
            return;
        };
        if let Some(CondKind::Sleep { text, .. }) = wait.conds.get(cond).map(|c| &c.kind)
            && wait.satisfied[cond].is_none()
        {
            wait.satisfied[cond] = Some(json!({ "sleep_duration": text }));
            self.resolve_wait(wait_id, now);
        }
    }

    /// Acts on a wait whose conditions may now fire.
    fn resolve_wait(&mut self, wait_id: Uuid, now: Instant) {
        let Some(wait) = self.waits.get(&wait_id) else {
            return;
        };
        match wait.owner.clone() {
            WaitOwner::Dag(task) => {
                let decision = if wait.fires(Some(CondAction::Cancel)) {
                    Some((CondAction::Cancel, Map::new()))
                } else if wait.fires(Some(CondAction::Skip)) {
                    Some((CondAction::Skip, Map::new()))
                } else if wait.fires(Some(CondAction::Queue)) || !wait.has(CondAction::Queue) {
                    Some((
                        CondAction::Queue,
                        wait.satisfied_map(Some(CondAction::Queue)),
                    ))
                } else {
                    None
                };
                if let Some((action, triggers)) = decision {
                    self.waits.remove(&wait_id);
                    self.dag_conditions_resolved(task, action, triggers, now);
                }
            }
            WaitOwner::Durable { task, node } => {
                if wait.fires(None) {
                    let payload = wait.durable_payload();
                    self.waits.remove(&wait_id);
                    let bytes = serde_json::to_vec(&payload).unwrap_or_default();
                    self.complete_durable_entry(task, node, bytes, None);
                }
            }
            WaitOwner::Legacy { task, signal_key } => {
                if wait.fires(None) {
                    let payload = wait.durable_payload();
                    self.waits.remove(&wait_id);
                    let bytes = serde_json::to_vec(&payload).unwrap_or_default();
                    self.legacy_completed(task, &signal_key, bytes);
                }
            }
        }
    }

    /// Drops every wait owned by `task` (task finished or cancelled).
    pub(crate) fn drop_waits_of(&mut self, task: Uuid) {
        self.waits.retain(|_, w| match &w.owner {
            WaitOwner::Dag(t) => *t != task,
            WaitOwner::Durable { task: t, .. } | WaitOwner::Legacy { task: t, .. } => *t != task,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn cond(key: &str, group: &str, kind: CondKind) -> ConditionDef {
        ConditionDef {
            readable_data_key: key.into(),
            action: CondAction::Create,
            or_group: group.into(),
            expression: String::new(),
            kind,
        }
    }

    fn event_cond(key: &str, group: &str, scope: Option<&str>) -> ConditionDef {
        cond(
            key,
            group,
            CondKind::UserEvent {
                key: key.into(),
                scope: scope.map(Into::into),
                since: None,
            },
        )
    }

    fn sleep_cond(group: &str) -> ConditionDef {
        cond(
            "sleep:1s",
            group,
            CondKind::Sleep {
                duration: Duration::from_secs(1),
                text: "1s".into(),
            },
        )
    }

    fn event(key: &str, scope: Option<&str>, payload: Value) -> StoredEvent {
        StoredEvent {
            id: Uuid::new_v4(),
            key: key.into(),
            payload,
            metadata: json!({}),
            scope: scope.map(Into::into),
            at: SystemTime::now(),
        }
    }

    #[test]
    fn same_group_is_or_different_groups_are_and() {
        let mut or = Wait {
            owner: WaitOwner::Dag(Uuid::nil()),
            conds: vec![sleep_cond("g"), event_cond("e", "g", None)],
            satisfied: vec![None, None],
        };
        assert!(!or.fires(None));
        or.satisfied[1] = Some(json!({"x": 1}));
        assert!(or.fires(None));
        assert_eq!(or.durable_payload(), json!({"CREATE": {"e": [{"x": 1}]}}));

        let mut and = Wait {
            owner: WaitOwner::Dag(Uuid::nil()),
            conds: vec![sleep_cond("g1"), event_cond("e", "g2", None)],
            satisfied: vec![None, Some(json!({}))],
        };
        assert!(!and.fires(None));
        and.satisfied[0] = Some(json!({"sleep_duration": "1s"}));
        assert!(and.fires(None));
    }

    #[test]
    fn scope_and_expression_rules() {
        let scoped = event_cond("msg", "g", Some("conv-1"));
        assert!(event_matches(
            &scoped,
            &event("msg", Some("conv-1"), json!({}))
        ));
        assert!(!event_matches(
            &scoped,
            &event("msg", Some("conv-2"), json!({}))
        ));
        assert!(!event_matches(&scoped, &event("msg", None, json!({}))));
        assert!(!event_matches(
            &scoped,
            &event("other", Some("conv-1"), json!({}))
        ));
        let unscoped = event_cond("msg", "g", None);
        assert!(event_matches(
            &unscoped,
            &event("msg", Some("anything"), json!({}))
        ));
        let mut filtered = event_cond("msg", "g", None);
        filtered.expression = "input.n > 1".into();
        assert!(event_matches(
            &filtered,
            &event("msg", None, json!({"n": 2}))
        ));
        assert!(!event_matches(
            &filtered,
            &event("msg", None, json!({"n": 1}))
        ));
        assert!(
            !event_matches(&filtered, &event("msg", None, json!({}))),
            "eval errors never match"
        );
    }
}
