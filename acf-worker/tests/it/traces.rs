//! OpenTelemetry traces across processes: a gateway process (`ruche-worker send`) and a worker process
//! (`ruche-worker run --embedded`) export to a real OTLP/gRPC receiver served here with the official protos; one
//! turn is one trace (intake → each step → brain → HTTP client span, and the commit), and the HTTP brain
//! receives the client span's `traceparent`.

use crate::support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;
use support::cli::{Running, send_args, sigterm, worker};
use support::http::{HttpServer, Reply};
use tokio_stream::wrappers::TcpListenerStream;

/// A span as received, with the service that exported it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn start_receiver() -> (SocketAddr, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let service = TraceServiceServer::new(receiver.clone())
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, receiver)
}

/// A worker command (see [`worker`]) with the HTTP brain at `brain_url`, exporting its spans as `service` to the
/// OTLP receiver at `otlp` quickly (100 ms batches) and compressed.
fn command(otlp: SocketAddr, service: &str, brain_url: &str) -> Command {
    let mut command = worker();
    command
        .env("RUCHE_BRAIN__KIND", "http")
        .env("RUCHE_BRAIN__URL", brain_url)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("OTEL_SERVICE_NAME", service)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    command
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_turn_is_one_trace_across_the_gateway_and_the_worker() {
    if !cfg!(feature = "otel") {
        panic!(
            "this test needs the `otel` feature: cargo test -p acf-worker --features otel (scripts/test passes --all-features)"
        );
    }
    let (otlp, receiver) = start_receiver().await;
    let brain = HttpServer::start(Reply::json(200, &json!({"response": "traced"}))).await;

    let bind = support::free_addr();
    let mut worker = command(otlp, "ruche-worker-under-test", &brain.url);
    worker
        .args(["run", "--embedded", "--bind", &bind])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut running = Running(worker.spawn().unwrap());
    let stdout = running.0.stdout.take().unwrap();
    let exports = tokio::task::spawn_blocking(move || {
        let mut exports = Vec::new();
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        for line in lines.by_ref() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                exports.push((k.to_owned(), v.to_owned()));
            }
            if line.contains("acf_worker_ready") {
                break;
            }
        }
        // Keep draining so the worker never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        exports
    })
    .await
    .unwrap();
    let exported: Vec<&str> = exports.iter().map(|(k, _)| k.as_str()).collect();
    for name in [
        "HATCHET_CLIENT_TOKEN",
        "HATCHET_CLIENT_HOST_PORT",
        "HATCHET_CLIENT_TLS_STRATEGY",
    ] {
        assert!(
            exported.contains(&name),
            "the embedded engine exports {name}: {exported:?}"
        );
    }

    let mut send = command(otlp, "gateway", &brain.url);
    send.envs(exports).args(send_args("trace me"));
    let out = tokio::task::spawn_blocking(move || send.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("traced"));

    // SIGTERM drains the worker, which flushes its spans before exiting.
    sigterm(&running.0);
    let mut child = std::mem::replace(&mut running.0, Command::new("true").spawn().unwrap());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "the worker exits 0 after draining");

    let spans = receiver.spans.lock().unwrap().clone();
    let named =
        |name: &str| -> Vec<&Received> { spans.iter().filter(|r| r.span.name == name).collect() };
    let one = |name: &str| -> &Received {
        let found = named(name);
        assert_eq!(
            found.len(),
            1,
            "exactly one `{name}` span; received: {:?}",
            spans
                .iter()
                .map(|r| (&r.service, &r.span.name))
                .collect::<Vec<_>>()
        );
        found[0]
    };
    let intake = one("ruche.intake");
    assert_eq!(intake.service, "gateway");
    assert!(
        intake.span.parent_span_id.is_empty(),
        "the intake starts the trace"
    );
    let trace_id = intake.span.trace_id.clone();

    let mut steps = HashMap::new();
    for step in [
        "acquire_mutex",
        "accumulate",
        "run_agent",
        "commit_and_respond",
    ] {
        let span = one(&format!("ruche.step {step}"));
        assert_eq!(span.service, "ruche-worker-under-test");
        assert_eq!(
            span.span.trace_id, trace_id,
            "{step} is in the turn's trace"
        );
        assert_eq!(
            span.span.parent_span_id, intake.span.span_id,
            "{step} continues the intake's context from the run's metadata"
        );
        steps.insert(step, span);
    }
    let brain_span = one("ruche.brain");
    assert_eq!(
        brain_span.span.parent_span_id,
        steps["run_agent"].span.span_id
    );
    let client = one("POST");
    assert_eq!(client.span.parent_span_id, brain_span.span.span_id);
    assert_eq!(client.span.kind, SpanKind::Client as i32);
    let commit = one("ruche.commit");
    assert_eq!(
        commit.span.parent_span_id,
        steps["commit_and_respond"].span.span_id
    );
    for span in [brain_span, client, commit] {
        assert_eq!(span.span.trace_id, trace_id);
    }
    assert!(
        spans.iter().all(|r| r.span.trace_id == trace_id),
        "one turn, one trace"
    );

    let requests = brain.requests();
    assert_eq!(requests.len(), 1);
    let traceparent = requests[0]
        .header("traceparent")
        .expect("a traceparent header");
    assert_eq!(
        traceparent,
        format!("00-{}-{}-01", hex(&trace_id), hex(&client.span.span_id)),
        "the brain continues from the HTTP client span"
    );
}

#[cfg(feature = "otel")]
#[test]
fn traces_are_off_without_an_endpoint_and_refuse_an_unsupported_protocol() {
    use acf_worker::telemetry::{TelemetryError, init};
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let (telemetry, layer) = init(vars(&[])).unwrap();
    assert!(!telemetry.is_enabled() && layer.is_none(), "off by default");
    let (telemetry, layer) = init(vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("OTEL_SDK_DISABLED", "true"),
    ]))
    .unwrap();
    assert!(!telemetry.is_enabled() && layer.is_none());
    let error = init(vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ]))
    .err()
    .expect("refused");
    assert!(matches!(error, TelemetryError::Unsupported { .. }));
    assert!(
        error.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
        "{error}"
    );
}
