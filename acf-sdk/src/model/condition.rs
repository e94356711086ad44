//! Conditions: DAG `wait_for` / `skip_if` / `cancel_if` on a task, and durable waits inside a running step.
//!
//! Conditions in one [`ConditionGroup`] share an or-group: any of them satisfies the group ("event OR timeout").
//! Separate groups are AND-ed. This mirrors Python's `or_(...)`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::duration;

/// One condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Satisfied after a duration (engine timers are ~1 s accurate).
    Sleep {
        /// How long.
        duration: Duration,
        /// Key under which the outcome is reported (default `sleep:<expr>`).
        readable_data_key: String,
    },
    /// Satisfied by a pushed event with this key (namespaced at registration), optional CEL filter and scope.
    UserEvent {
        /// Event key, without namespace.
        event_key: String,
        /// CEL over `input` (the event payload); empty = always.
        expression: Option<String>,
        /// Key under which the event payload is reported (default: the event key).
        readable_data_key: String,
        /// Only events pushed with this scope match (without it, any scope matches).
        scope: Option<String>,
        /// With a scope: events of that key and scope seen since this instant also match.
        consider_events_since: Option<DateTime<Utc>>,
    },
    /// Satisfied by a parent's output (DAG only), optionally filtered by CEL over `output`.
    Parent {
        /// The parent task name.
        parent: String,
        /// CEL over the parent's `output`.
        expression: Option<String>,
        /// Key under which the outcome is reported (default `<parent>[:<expr>]`).
        readable_data_key: String,
    },
}

impl Condition {
    /// A sleep condition with Python's default key `sleep:<expr>` (identical to Python's for whole seconds;
    /// sub-second durations keep their milliseconds instead of collapsing to `0h`).
    pub fn sleep(duration: Duration) -> Self {
        Self::Sleep {
            duration,
            readable_data_key: format!("sleep:{}", duration::precise_expr(duration)),
        }
    }

    /// A user-event condition keyed by the event key (Python's default).
    pub fn event(event_key: impl Into<String>) -> Self {
        let event_key = event_key.into();
        Self::UserEvent {
            readable_data_key: event_key.clone(),
            event_key,
            expression: None,
            scope: None,
            consider_events_since: None,
        }
    }

    /// A parent-output condition.
    pub fn parent(parent: impl Into<String>, expression: Option<String>) -> Self {
        let parent = parent.into().to_lowercase();
        let readable_data_key = match &expression {
            Some(e) => format!("{parent}:{e}"),
            None => parent.clone(),
        };
        Self::Parent {
            parent,
            expression,
            readable_data_key,
        }
    }

    /// Adds a CEL filter (user-event and parent conditions; ignored for sleeps).
    #[must_use]
    pub fn filter(mut self, cel: impl Into<String>) -> Self {
        match &mut self {
            Self::UserEvent { expression, .. } | Self::Parent { expression, .. } => {
                *expression = Some(cel.into())
            }
            Self::Sleep { .. } => {}
        }
        self
    }

    /// Restricts a user-event condition to events pushed with `scope`.
    #[must_use]
    pub fn scope(mut self, value: impl Into<String>) -> Self {
        if let Self::UserEvent { scope, .. } = &mut self {
            *scope = Some(value.into());
        }
        self
    }

    /// Lets a scoped user-event condition match events seen since `since`.
    #[must_use]
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        if let Self::UserEvent {
            consider_events_since,
            ..
        } = &mut self
        {
            *consider_events_since = Some(since);
        }
        self
    }

    /// Overrides the key under which the outcome is reported.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        match &mut self {
            Self::Sleep {
                readable_data_key, ..
            }
            | Self::UserEvent {
                readable_data_key, ..
            }
            | Self::Parent {
                readable_data_key, ..
            } => *readable_data_key = key.into(),
        }
        self
    }

    /// The key under which the outcome is reported.
    pub fn readable_data_key(&self) -> &str {
        match self {
            Self::Sleep {
                readable_data_key, ..
            }
            | Self::UserEvent {
                readable_data_key, ..
            }
            | Self::Parent {
                readable_data_key, ..
            } => readable_data_key,
        }
    }
}

/// Conditions that share one or-group (any of them satisfies the group).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConditionGroup {
    /// The alternatives.
    pub conditions: Vec<Condition>,
}

impl ConditionGroup {
    /// An or-group of the given conditions.
    pub fn any(conditions: impl IntoIterator<Item = Condition>) -> Self {
        Self {
            conditions: conditions.into_iter().collect(),
        }
    }
}

impl From<Condition> for ConditionGroup {
    fn from(condition: Condition) -> Self {
        Self {
            conditions: vec![condition],
        }
    }
}

/// Python's `or_(...)`: every condition in one shared or-group.
pub fn or(conditions: impl IntoIterator<Item = Condition>) -> ConditionGroup {
    ConditionGroup::any(conditions)
}

/// What a task does when its conditions fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionAction {
    /// `wait_for`: queue the task when satisfied.
    Queue,
    /// `cancel_if`: cancel the task when satisfied.
    Cancel,
    /// `skip_if`: skip the task when satisfied.
    Skip,
}
