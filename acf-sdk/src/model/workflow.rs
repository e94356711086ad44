//! A workflow definition: name, triggers, options and tasks; validated before registration.

use std::collections::BTreeSet;

use super::options::{DefaultFilter, Idempotency, Priority, StickyStrategy, WorkflowConcurrency};
use super::task::TaskDefinition;

/// Registration options of a workflow. Build with [`WorkflowDefinition::new`] and the chained setters.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowDefinition {
    /// Workflow name, case kept (the namespace is prepended at registration).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Version label (ignored by v1 engines, which version by content).
    pub version: Option<String>,
    /// Event keys that trigger the workflow (namespaced at registration).
    pub on_events: Vec<String>,
    /// Cron expressions (5 or 6 fields).
    pub on_crons: Vec<String>,
    /// Input of cron-triggered runs.
    pub cron_input: Option<serde_json::Value>,
    /// Tasks in declaration order.
    pub tasks: Vec<TaskDefinition>,
    /// Task run when any task fails.
    pub on_failure: Option<TaskDefinition>,
    /// Sticky assignment.
    pub sticky: Option<StickyStrategy>,
    /// Default run priority (Python default `Low` = 1).
    pub default_priority: Priority,
    /// Workflow-level concurrency.
    pub concurrency: Option<WorkflowConcurrency>,
    /// Event filters created with the workflow.
    pub default_filters: Vec<DefaultFilter>,
    /// JSON Schema of the input type.
    pub input_json_schema: Option<serde_json::Value>,
    /// Idempotency configuration.
    pub idempotency: Option<Idempotency>,
}

/// A definition the engine would reject (checked locally so the error names the problem precisely).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// A name does not match `^[a-zA-Z0-9.\-_]+$`.
    #[error(
        "invalid {what} name `{name}`: only ASCII letters, digits, `.`, `-` and `_` are allowed"
    )]
    InvalidName {
        /// `workflow` or `task`.
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// No tasks.
    #[error("workflow `{0}` has no tasks")]
    NoTasks(String),
    /// Two tasks share a name.
    #[error("workflow `{workflow}`: duplicate task `{task}`")]
    DuplicateTask {
        /// Workflow name.
        workflow: String,
        /// Duplicated task name.
        task: String,
    },
    /// A parent is not a task of the workflow.
    #[error("workflow `{workflow}`: task `{task}` has unknown parent `{parent}`")]
    UnknownParent {
        /// Workflow name.
        workflow: String,
        /// Task name.
        task: String,
        /// Missing parent.
        parent: String,
    },
    /// The parent graph has a cycle.
    #[error("workflow `{workflow}`: tasks form a cycle through `{task}`")]
    Cycle {
        /// Workflow name.
        workflow: String,
        /// A task on the cycle.
        task: String,
    },
    /// Two conditions of a task report under the same key.
    #[error("task `{task}`: duplicate condition key `{key}`")]
    DuplicateConditionKey {
        /// Task name.
        task: String,
        /// Duplicated key.
        key: String,
    },
    /// An option is out of the range the engine accepts.
    #[error("task `{task}`: {message}")]
    OutOfRange {
        /// Task name.
        task: String,
        /// What is wrong.
        message: String,
    },
}

/// Whether `name` matches the engine's name regex `^[a-zA-Z0-9.\-_]+$`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl WorkflowDefinition {
    /// An empty workflow with Python's defaults (priority 1, no triggers).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            version: None,
            on_events: Vec::new(),
            on_crons: Vec::new(),
            cron_input: None,
            tasks: Vec::new(),
            on_failure: None,
            sticky: None,
            default_priority: Priority::Low,
            concurrency: None,
            default_filters: Vec::new(),
            input_json_schema: None,
            idempotency: None,
        }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the version label (Python's `version`; v1 engines version workflows by content).
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Adds an event trigger.
    #[must_use]
    pub fn on_event(mut self, key: impl Into<String>) -> Self {
        self.on_events.push(key.into());
        self
    }

    /// Adds a cron trigger.
    #[must_use]
    pub fn on_cron(mut self, cron: impl Into<String>) -> Self {
        self.on_crons.push(cron.into());
        self
    }

    /// Sets the input of cron runs.
    #[must_use]
    pub fn cron_input(mut self, input: serde_json::Value) -> Self {
        self.cron_input = Some(input);
        self
    }

    /// Adds a task.
    #[must_use]
    pub fn task(mut self, task: TaskDefinition) -> Self {
        self.tasks.push(task);
        self
    }

    /// Sets the on-failure task. Its name is registered and dispatched verbatim; the Python SDK names a failure
    /// handler `<function>-on-failure`, and `#[on_failure]` does the same, so name it that way here too when both
    /// SDKs must register identical workflows.
    #[must_use]
    pub fn on_failure(mut self, task: TaskDefinition) -> Self {
        self.on_failure = Some(task);
        self
    }

    /// Sets sticky assignment.
    #[must_use]
    pub fn sticky(mut self, sticky: StickyStrategy) -> Self {
        self.sticky = Some(sticky);
        self
    }

    /// Sets the default priority.
    #[must_use]
    pub fn default_priority(mut self, priority: Priority) -> Self {
        self.default_priority = priority;
        self
    }

    /// Sets workflow concurrency.
    #[must_use]
    pub fn concurrency(mut self, concurrency: WorkflowConcurrency) -> Self {
        self.concurrency = Some(concurrency);
        self
    }

    /// Adds a default event filter.
    #[must_use]
    pub fn default_filter(mut self, filter: DefaultFilter) -> Self {
        self.default_filters.push(filter);
        self
    }

    /// Sets the input JSON Schema.
    #[must_use]
    pub fn input_json_schema(mut self, schema: serde_json::Value) -> Self {
        self.input_json_schema = Some(schema);
        self
    }

    /// Sets idempotency.
    #[must_use]
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Some(idempotency);
        self
    }

    /// All tasks including the on-failure task.
    pub fn all_tasks(&self) -> impl Iterator<Item = &TaskDefinition> {
        self.tasks.iter().chain(self.on_failure.iter())
    }

    /// Checks what the engine would reject, so registration fails with a precise message.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        let wf = &self.name;
        if !is_valid_name(wf) {
            return Err(DefinitionError::InvalidName {
                what: "workflow",
                name: wf.clone(),
            });
        }
        if self.tasks.is_empty() {
            return Err(DefinitionError::NoTasks(wf.clone()));
        }
        let mut names = BTreeSet::new();
        for task in self.all_tasks() {
            if !is_valid_name(&task.name) {
                return Err(DefinitionError::InvalidName {
                    what: "task",
                    name: task.name.clone(),
                });
            }
            if !names.insert(task.name.as_str()) {
                return Err(DefinitionError::DuplicateTask {
                    workflow: wf.clone(),
                    task: task.name.clone(),
                });
            }
            validate_ranges(task)?;
            let mut keys = BTreeSet::new();
            for (_, group) in &task.conditions {
                for c in &group.conditions {
                    if !keys.insert(c.readable_data_key()) {
                        return Err(DefinitionError::DuplicateConditionKey {
                            task: task.name.clone(),
                            key: c.readable_data_key().to_owned(),
                        });
                    }
                }
            }
        }
        for task in &self.tasks {
            for parent in &task.parents {
                if !self.tasks.iter().any(|t| &t.name == parent) {
                    return Err(DefinitionError::UnknownParent {
                        workflow: wf.clone(),
                        task: task.name.clone(),
                        parent: parent.clone(),
                    });
                }
            }
        }
        self.check_acyclic()
    }

    /// Kahn's algorithm over the parent edges; any task left over sits on a cycle.
    fn check_acyclic(&self) -> Result<(), DefinitionError> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        loop {
            let ready: Vec<&str> = self
                .tasks
                .iter()
                .filter(|t| !done.contains(t.name.as_str()))
                .filter(|t| t.parents.iter().all(|p| done.contains(p.as_str())))
                .map(|t| t.name.as_str())
                .collect();
            if ready.is_empty() {
                break;
            }
            done.extend(ready);
        }
        match self.tasks.iter().find(|t| !done.contains(t.name.as_str())) {
            Some(t) => Err(DefinitionError::Cycle {
                workflow: self.name.clone(),
                task: t.name.clone(),
            }),
            None => Ok(()),
        }
    }
}

fn validate_ranges(task: &TaskDefinition) -> Result<(), DefinitionError> {
    let err = |message: String| {
        Err(DefinitionError::OutOfRange {
            task: task.name.clone(),
            message,
        })
    };
    if task.retries < 0 {
        return err(format!("retries must be >= 0, got {}", task.retries));
    }
    if let Some(f) = task.backoff_factor
        && !(1.0..=1000.0).contains(&f)
    {
        return err(format!("backoff factor must be in 1..=1000, got {f}"));
    }
    if let Some(m) = task.backoff_max_seconds
        && !(1..=86_400).contains(&m)
    {
        return err(format!("backoff max seconds must be in 1..=86400, got {m}"));
    }
    if let Some(bad) = task
        .effective_slot_requests()
        .iter()
        .find(|(_, v)| **v <= 0)
    {
        return err(format!(
            "slot request `{}` must be > 0, got {}",
            bad.0, bad.1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Condition;

    fn wf() -> WorkflowDefinition {
        WorkflowDefinition::new("Order-Flow")
            .task(TaskDefinition::new("Start"))
            .task(TaskDefinition::new("finish").parents(["start"]))
    }

    #[test]
    fn valid_dag_passes_and_names_are_lowercased() {
        let wf = wf();
        wf.validate().unwrap();
        assert_eq!(wf.tasks[0].name, "start");
    }

    #[test]
    fn rejects_unknown_parent_cycle_duplicates_and_bad_names() {
        let e = wf()
            .task(TaskDefinition::new("x").parents(["nope"]))
            .validate()
            .unwrap_err();
        assert!(matches!(e, DefinitionError::UnknownParent { ref parent, .. } if parent == "nope"));
        let cyc = WorkflowDefinition::new("c")
            .task(TaskDefinition::new("a").parents(["b"]))
            .task(TaskDefinition::new("b").parents(["a"]));
        assert!(matches!(cyc.validate(), Err(DefinitionError::Cycle { .. })));
        assert!(matches!(
            wf().task(TaskDefinition::new("start")).validate(),
            Err(DefinitionError::DuplicateTask { .. })
        ));
        assert!(matches!(
            WorkflowDefinition::new("has space")
                .task(TaskDefinition::new("a"))
                .validate(),
            Err(DefinitionError::InvalidName {
                what: "workflow",
                ..
            })
        ));
        assert!(matches!(
            WorkflowDefinition::new("e").validate(),
            Err(DefinitionError::NoTasks(_))
        ));
    }

    #[test]
    fn rejects_out_of_range_and_duplicate_condition_keys() {
        let bad = WorkflowDefinition::new("w").task(TaskDefinition::new("a").backoff(0.5, 10));
        assert!(matches!(
            bad.validate(),
            Err(DefinitionError::OutOfRange { .. })
        ));
        let dup = WorkflowDefinition::new("w").task(
            TaskDefinition::new("a")
                .wait_for(Condition::event("k"))
                .skip_if(Condition::event("k")),
        );
        assert!(matches!(
            dup.validate(),
            Err(DefinitionError::DuplicateConditionKey { .. })
        ));
    }
}
