//! OpenTelemetry traces (cargo feature `otel`, off by default).
//!
//! With the feature, `ruche-worker` exports spans over OTLP/gRPC with the standard `opentelemetry-otlp` exporter
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is
//! not `true`, `OTEL_TRACES_EXPORTER` is not `none`). The exporter reads the other standard variables itself
//! (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`, ...), the resource reads `OTEL_SERVICE_NAME` (default
//! `ruche-worker`) and `OTEL_RESOURCE_ATTRIBUTES`, the sampler `OTEL_TRACES_SAMPLER`. Only the `grpc` protocol is
//! built in: another `OTEL_EXPORTER_OTLP_PROTOCOL` is refused at startup.
//!
//! Spans: `ruche.intake` (a gateway submitting a message), one `ruche.step` per workflow step, `ruche.brain`
//! around the brain call with the HTTP brain's client span (`POST`) inside it, and `ruche.commit`. The context
//! travels as a W3C `traceparent` in the run's Hatchet `additional_metadata` (the key the official SDKs'
//! instrumentors use), so every step of a run, in whatever worker process, joins the trace its intake started;
//! the HTTP brain receives a `traceparent` header. Without the feature the spans still exist for `tracing` but
//! nothing is exported or propagated.

use serde_json::{Map, Value};

/// The `additional_metadata` key carrying the W3C trace context, as the official SDKs' instrumentors write it.
pub const TRACEPARENT_KEY: &str = "traceparent";

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A standard variable holds a value this build cannot honour.
    #[error("`{variable}` = `{value}` is not supported; accepted: {accepted}")]
    Unsupported {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        accepted: &'static str,
    },
    /// The exporter could not be built.
    #[cfg(feature = "otel")]
    #[error("cannot build the OTLP span exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The installed tracer provider; [`Telemetry::shutdown`] flushes the spans still buffered.
#[derive(Debug, Default)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are being exported.
    pub fn is_enabled(&self) -> bool {
        #[cfg(feature = "otel")]
        {
            self.provider.is_some()
        }
        #[cfg(not(feature = "otel"))]
        {
            false
        }
    }

    /// Flushes and stops the exporter (call it inside the Tokio runtime's lifetime, before exiting).
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(Err(error)) = self.provider.map(|provider| provider.shutdown()) {
            tracing::warn!(error = %acf_sdk::error::Report(&error), "trace_export_shutdown_failed");
        }
    }
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::SpanExporter;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::Layer as _;

    use super::{Map, TRACEPARENT_KEY, Telemetry, TelemetryError, Value};

    /// A boxed layer for any subscriber built on `tracing_subscriber::Registry`.
    pub type OtelLayer =
        Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

    /// Builds the exporter and its `tracing` layer when the standard variables in `lookup` ask for traces.
    /// Must run inside a Tokio runtime (the gRPC channel lives on it).
    pub fn init(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(Telemetry, Option<OtelLayer>), TelemetryError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let disabled =
            var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let exporter_none = var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none");
        let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
        if disabled || exporter_none || endpoint.is_none() {
            return Ok((Telemetry::default(), None));
        }
        for variable in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(value) = var(variable).filter(|value| value.trim() != "grpc") {
                return Err(TelemetryError::Unsupported {
                    variable,
                    value,
                    accepted: "grpc",
                });
            }
        }
        // The exporter reads OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout, compression) itself.
        let exporter = SpanExporter::builder().with_tonic().build()?;
        let mut resource = Resource::builder();
        if var("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("ruche-worker");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        // Only the worker's own spans: transport crates' spans are noise, and the exporter's own gRPC calls
        // would otherwise trace themselves.
        let only_ours = tracing_subscriber::filter::Targets::new()
            .with_target("acf_worker", tracing::Level::INFO);
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("ruche-worker"))
            .with_filter(only_ours);
        Ok((
            Telemetry {
                provider: Some(provider),
            },
            Some(Box::new(layer)),
        ))
    }

    /// The current span's context as a W3C `traceparent` (and `tracestate`), when it is being traced.
    pub(crate) fn current_trace_headers() -> Vec<(String, String)> {
        let context = tracing::Span::current().context();
        let mut carrier = std::collections::HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        carrier.into_iter().collect()
    }

    /// Makes `span` a child of the trace context in a run's `additional_metadata`, when it carries one.
    pub(crate) fn adopt_parent(span: &tracing::Span, metadata: &Map<String, Value>) {
        let Some(traceparent) = metadata.get(TRACEPARENT_KEY).and_then(Value::as_str) else {
            return;
        };
        let mut carrier = std::collections::HashMap::new();
        carrier.insert(TRACEPARENT_KEY.to_owned(), traceparent.to_owned());
        if let Some(state) = metadata.get("tracestate").and_then(Value::as_str) {
            carrier.insert("tracestate".to_owned(), state.to_owned());
        }
        let parent = TraceContextPropagator::new().extract(&carrier);
        let _ = span.set_parent(parent);
    }
}

#[cfg(feature = "otel")]
pub use otel::{OtelLayer, init};

/// The W3C trace headers of the current span (empty without the `otel` feature or outside a traced span).
pub(crate) fn trace_headers() -> Vec<(String, String)> {
    #[cfg(feature = "otel")]
    {
        otel::current_trace_headers()
    }
    #[cfg(not(feature = "otel"))]
    {
        Vec::new()
    }
}

/// A span for one workflow step, child of the trace its run's metadata carries. It names the run's message (the
/// `message_id` intake puts in the metadata; empty for a run triggered otherwise), so a step's log lines and timing
/// can be tied to the message they serve.
pub(crate) fn step_span(step: &'static str, metadata: &Map<String, Value>) -> tracing::Span {
    let message_id = metadata
        .get("message_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let span = tracing::info_span!("ruche.step", otel.name = %format!("ruche.step {step}"), step, message_id);
    continue_trace(&span, metadata);
    span
}

/// Makes `span` continue the trace whose `traceparent` `metadata` carries (a run's, or an event's as the
/// official SDKs' instrumentors push it); nothing without one or without the `otel` feature.
pub(crate) fn continue_trace(span: &tracing::Span, metadata: &Map<String, Value>) {
    #[cfg(feature = "otel")]
    otel::adopt_parent(span, metadata);
    #[cfg(not(feature = "otel"))]
    let _ = (span, metadata);
}
