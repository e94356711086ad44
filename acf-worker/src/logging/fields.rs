//! Collects an event's (and its spans') fields as JSON values, redacting secrets by key name.

use serde_json::Value;
use tracing::field::{Field, Visit};

use crate::config::{REDACTED, is_secret_key};

/// Fields in the order they were recorded. A later field with the same name replaces the earlier value in place,
/// so event fields override span fields without reordering the line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields {
    /// The event's message: by convention, the event name.
    pub(crate) message: Option<String>,
    pub(crate) entries: Vec<(String, Value)>,
}

impl Fields {
    pub(crate) fn insert(&mut self, name: &str, value: Value) {
        // `otel.*` span fields name and classify spans for the trace exporter; they are not log context.
        if name.starts_with("otel.") {
            return;
        }
        let value = if is_secret_field(name) {
            Value::String(REDACTED.to_owned())
        } else {
            value
        };
        match self
            .entries
            .iter_mut()
            .find(|(existing, _)| existing == name)
        {
            Some((_, slot)) => *slot = value,
            None => self.entries.push((name.to_owned(), value)),
        }
    }

    pub(crate) fn extend_from(&mut self, other: &Fields) {
        for (name, value) in &other.entries {
            self.insert(name, value.clone());
        }
    }
}

/// `http.api_key` is judged by its last segment.
fn is_secret_field(name: &str) -> bool {
    is_secret_key(name.rsplit('.').next().unwrap_or(name))
}

/// The `log` bridge adds file, line and module path to every record; only its target is worth a field.
fn is_log_bridge_noise(name: &str) -> bool {
    matches!(name, "log.file" | "log.line" | "log.module_path")
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_value(field, Value::String(value.to_owned()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_value(field, Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_value(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_value(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let value =
            i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.record_value(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let value =
            u64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.record_value(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record_value(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_value(field, Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%x` arrives here wrapped in a Display adapter, so ids and timestamps keep their exact text.
        self.record_value(field, Value::String(format!("{value:?}")));
    }
}

impl Fields {
    fn record_value(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
        } else if !is_log_bridge_noise(name) {
            self.insert(name, value);
        }
    }
}
