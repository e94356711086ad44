//! The `tracing` layer that writes one line per event.

use std::io::Write;

use serde_json::Value;
use tracing::{Event, Level, Subscriber, span};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::fields::Fields;
use crate::config::LogFormat;
use crate::models::{format_timestamp, now_utc};

/// Keys every JSON line starts with; an event field with one of these names is written as `field.{name}`.
const RESERVED: [&str; 3] = ["timestamp", "level", "event"];

/// Writes each event as one line to `W`: a JSON object (`timestamp`, `level`, `event`, then the fields of the
/// enclosing spans and of the event, flat) or, for [`LogFormat::Console`], `timestamp LEVEL event key=value ...`.
/// Secret-named fields are written as `[REDACTED]`; every other value is written exactly as recorded.
#[derive(Debug, Clone)]
pub struct EventLayer<W> {
    format: LogFormat,
    make_writer: W,
}

impl<W> EventLayer<W> {
    /// A layer writing `format` lines to `make_writer`.
    pub fn new(format: LogFormat, make_writer: W) -> Self {
        Self {
            format,
            make_writer,
        }
    }
}

/// Python logging's level names, lowercase, as the original wrote them.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warning",
        Level::ERROR => "error",
    }
}

impl<S, W> Layer<S> for EventLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<Fields>() {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    fields.extend_from(span_fields);
                }
            }
        }
        event.record(&mut fields);
        let metadata = event.metadata();
        let level = level_name(metadata.level());
        let name = fields
            .message
            .take()
            .unwrap_or_else(|| metadata.name().to_owned());
        let mut line = match self.format {
            LogFormat::Json => json_line(level, &name, &fields),
            LogFormat::Console => console_line(level, &name, &fields),
        };
        line.push('\n');
        // One write per line keeps lines whole when several threads log at once.
        let mut writer = self.make_writer.make_writer_for(metadata);
        let _ = writer.write_all(line.as_bytes());
    }
}

fn json_line(level: &str, event: &str, fields: &Fields) -> String {
    let mut line = String::with_capacity(128);
    line.push('{');
    push_pair(
        &mut line,
        "timestamp",
        &Value::String(format_timestamp(&now_utc())),
    );
    line.push(',');
    push_pair(&mut line, "level", &Value::String(level.to_owned()));
    line.push(',');
    push_pair(&mut line, "event", &Value::String(event.to_owned()));
    for (name, value) in &fields.entries {
        line.push(',');
        if RESERVED.contains(&name.as_str()) {
            push_pair(&mut line, &format!("field.{name}"), value);
        } else {
            push_pair(&mut line, name, value);
        }
    }
    line.push('}');
    line
}

fn push_pair(line: &mut String, key: &str, value: &Value) {
    line.push_str(&Value::String(key.to_owned()).to_string());
    line.push(':');
    line.push_str(&value.to_string());
}

fn console_line(level: &str, event: &str, fields: &Fields) -> String {
    let mut line = format!(
        "{} {:<7} {event}",
        format_timestamp(&now_utc()),
        level.to_uppercase()
    );
    for (name, value) in &fields.entries {
        match value {
            Value::String(text) => line.push_str(&format!(" {name}={text}")),
            other => line.push_str(&format!(" {name}={other}")),
        }
    }
    line
}
