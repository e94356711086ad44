//! The tonic services and what they share: serving, auth, request validation helpers.

mod admin;
mod dispatcher;
mod durable_task;
mod events;
mod workflows;

use crate::engine::Shared;
use crate::engine::lifecycle::TriggerSpec;
use crate::engine::state::{RunOrigin, WorkerMsg};
use crate::proto::dispatcher_server::DispatcherServer;
use crate::proto::events_service_server::EventsServiceServer;
use crate::proto::v1::TriggerWorkflowRequest;
use crate::proto::v1::admin_service_server::AdminServiceServer;
use crate::proto::v1::v1_dispatcher_server::V1DispatcherServer;
use crate::proto::workflow_service_server::WorkflowServiceServer;
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};
use uuid::Uuid;

/// Hatchet's `SERVER_GRPC_MAX_MSG_SIZE` default.
pub(crate) const MAX_MSG: usize = 4 * 1024 * 1024;

/// Transport limit: above ours so oversize messages reach the handlers and get Hatchet's
/// `RESOURCE_EXHAUSTED` instead of tonic's `OUT_OF_RANGE`.
const TRANSPORT_MAX: usize = 64 * 1024 * 1024;

/// A boxed response stream.
pub(crate) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Answers a server-streaming RPC the way Hatchet's grpc-go dispatcher does: the response headers go out
/// only together with the first message (grpc-go never calls `SendHeader` on these streams), so a client
/// that waits for headers before reading learns nothing until there is something to read. tonic sends the
/// headers when the handler returns its `Response`, so the handler waits here for the first item and puts
/// it back in front of the stream. An error before any message becomes a trailers-only error response and
/// a stream that ends first becomes an empty one, as in grpc-go. While waiting the handler stays
/// cancellable: hyper drops it when the client resets the stream or the connection goes away (dropping
/// `stream` runs its cleanup), and every stream given here ends on engine shutdown.
pub(crate) async fn lazy_headers<T: Send + 'static>(
    mut stream: BoxStream<T>,
) -> Result<tonic::Response<BoxStream<T>>, Status> {
    let rest: BoxStream<T> = match stream.next().await {
        Some(Ok(first)) => Box::pin(futures::stream::once(async move { Ok(first) }).chain(stream)),
        Some(Err(status)) => return Err(status),
        None => Box::pin(futures::stream::empty()),
    };
    Ok(tonic::Response::new(rest))
}

pub(crate) async fn serve(shared: Arc<Shared>, listener: tokio::net::TcpListener) {
    let keys = shared.keys.clone();
    let auth = move |mut req: Request<()>| -> Result<Request<()>, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if !keys.check_header(header) {
            return Err(Status::unauthenticated("invalid auth token"));
        }
        mirror_request_compression(&mut req);
        Ok(req)
    };
    let gz = CompressionEncoding::Gzip;
    let dispatcher = DispatcherServer::new(dispatcher::DispatcherSvc(shared.clone()))
        .accept_compressed(gz)
        .send_compressed(gz)
        .max_decoding_message_size(TRANSPORT_MAX)
        .max_encoding_message_size(TRANSPORT_MAX);
    let events = EventsServiceServer::new(events::EventsSvc(shared.clone()))
        .accept_compressed(gz)
        .send_compressed(gz)
        .max_decoding_message_size(TRANSPORT_MAX);
    let workflows = WorkflowServiceServer::new(workflows::WorkflowSvc(shared.clone()))
        .accept_compressed(gz)
        .send_compressed(gz)
        .max_decoding_message_size(TRANSPORT_MAX);
    let admin = AdminServiceServer::new(admin::AdminSvc(shared.clone()))
        .accept_compressed(gz)
        .send_compressed(gz)
        .max_decoding_message_size(TRANSPORT_MAX);
    let durable = V1DispatcherServer::new(durable_task::DurableSvc(shared.clone()))
        .accept_compressed(gz)
        .send_compressed(gz)
        .max_decoding_message_size(TRANSPORT_MAX);
    // TCP_NODELAY on every accepted socket, as Hatchet's Go engine does: without it a small reply queued behind
    // an unacknowledged one waits for the peer's delayed ACK (~40 ms stalls on unary round trips).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    // One port for everything: gRPC (HTTP/2) for the services and HTTP/1 for the REST API and
    // the dashboard, routed by path.
    let grpc = tonic::service::Routes::new(InterceptedService::new(dispatcher, auth.clone()))
        .add_service(InterceptedService::new(events, auth.clone()))
        .add_service(InterceptedService::new(workflows, auth.clone()))
        .add_service(InterceptedService::new(admin, auth.clone()))
        .add_service(InterceptedService::new(durable, auth))
        .into_axum_router();
    let app = crate::engine::rest::app(shared.clone(), grpc);
    let result = tonic::transport::Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_routes(tonic::service::Routes::from(app))
        .serve_with_incoming_shutdown(incoming, shared.shutdown.clone().cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "engine server stopped with an error");
    }
}

/// Answers compressed only a request that came compressed, as Hatchet's grpc-go server does (it replies with
/// the compressor of the request, and uncompressed to an uncompressed one). tonic would otherwise gzip every
/// response and streamed message for any client that merely accepts gzip, which costs far more CPU than the
/// small messages it saves on.
fn mirror_request_compression(req: &mut Request<()>) {
    let compressed = req
        .metadata()
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|encoding| !encoding.is_empty() && encoding != "identity");
    if !compressed {
        req.metadata_mut().remove("grpc-accept-encoding");
    }
}

/// Ends every worker-facing stream so clients reconnect.
pub(crate) fn drop_worker_streams(shared: &Shared) {
    let mut state = shared.lock();
    for worker in state.workers.values_mut() {
        for (_, tx) in worker.streams.drain(..) {
            let _ = tx.send(WorkerMsg::Close);
        }
    }
    state.durable.close_all();
}

/// `RESOURCE_EXHAUSTED` for messages above Hatchet's 4 MiB limit (grpc-go's wording).
pub(crate) fn check_size<M: prost::Message>(msg: &M) -> Result<(), Status> {
    let len = msg.encoded_len();
    if len > MAX_MSG {
        return Err(Status::resource_exhausted(format!(
            "grpc: received message larger than max ({len} vs. {MAX_MSG})"
        )));
    }
    Ok(())
}

/// Parses a UUID field (`INVALID_ARGUMENT` naming the field).
pub(crate) fn parse_id(field: &str, value: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(value).map_err(|_| {
        Status::invalid_argument(format!(
            "Invalid request: {field} must be a valid UUID, got {value:?}"
        ))
    })
}

/// Parses a JSON field: empty → `default`; invalid JSON or NUL characters → `INVALID_ARGUMENT`.
pub(crate) fn parse_json(field: &str, text: &str, default: Value) -> Result<Value, Status> {
    if text.trim().is_empty() {
        return Ok(default);
    }
    if text.contains("\\u0000") || text.contains('\0') {
        return Err(Status::invalid_argument(format!(
            "Invalid request: {field} must not contain NUL characters"
        )));
    }
    serde_json::from_str(text).map_err(|e| {
        Status::invalid_argument(format!("Invalid request: {field} is not valid JSON: {e}"))
    })
}

/// Parses a JSON object field (metadata).
pub(crate) fn parse_object(field: &str, text: &str) -> Result<Value, Status> {
    match parse_json(field, text, serde_json::json!({}))? {
        v @ Value::Object(_) => Ok(v),
        _ => Err(Status::invalid_argument(format!(
            "Invalid request: {field} must be a JSON object"
        ))),
    }
}

/// Checks a priority 1..3.
pub(crate) fn check_priority(priority: Option<i32>) -> Result<Option<i32>, Status> {
    match priority {
        Some(p) if !(1..=3).contains(&p) => Err(Status::invalid_argument(
            "Invalid request: priority must be between 1 and 3",
        )),
        other => Ok(other),
    }
}

/// Validates a `v1.TriggerWorkflowRequest`.
pub(crate) fn trigger_spec(req: &TriggerWorkflowRequest) -> Result<TriggerSpec, Status> {
    if req.name.is_empty() {
        return Err(Status::invalid_argument(
            "Invalid request: name is required",
        ));
    }
    let input = parse_json("input", &req.input, Value::Null)?;
    let metadata = parse_object(
        "additional_metadata",
        req.additional_metadata.as_deref().unwrap_or(""),
    )?;
    let priority = check_priority(req.priority)?;
    let desired_worker = req
        .desired_worker_id
        .as_deref()
        .map(|v| parse_id("desired_worker_id", v))
        .transpose()?;
    let parent_task = req
        .parent_task_run_external_id
        .as_deref()
        .map(|v| parse_id("parent_task_run_external_id", v))
        .transpose()?;
    Ok(TriggerSpec {
        workflow: req.name.clone(),
        input,
        metadata,
        priority,
        origin: RunOrigin {
            parent_run: req.parent_id.clone(),
            parent_task,
            child_index: req.child_index,
            child_key: req.child_key.clone(),
            desired_worker,
            desired_labels: crate::engine::validation::desired_labels(&req.desired_worker_labels),
            ..RunOrigin::default()
        },
    })
}

/// A stream that runs a cleanup when the client goes away (tonic drops the response stream).
pub(crate) struct Guarded<S> {
    inner: Pin<Box<S>>,
    on_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl<S> Guarded<S> {
    pub(crate) fn new(inner: S, on_drop: impl FnOnce() + Send + 'static) -> Self {
        Self {
            inner: Box::pin(inner),
            on_drop: Some(Box::new(on_drop)),
        }
    }
}

impl<S: Stream> Stream for Guarded<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<S> Drop for Guarded<S> {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}
