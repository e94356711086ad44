//! The optional health server: `/livez` (process alive), `/readyz` (200 only when registered and the action
//! stream is connected; 503 with the reason otherwise) and `/metrics` (Prometheus text).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::state::Shared;

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

fn route(shared: &Shared, path: &str) -> Response<Full<Bytes>> {
    match path {
        "/livez" => respond(StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" | "/health" => match shared.status().not_ready_reason() {
            None => respond(StatusCode::OK, "text/plain", "ready\n".to_owned()),
            Some(reason) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {reason}\n"),
            ),
        },
        "/metrics" => respond(
            StatusCode::OK,
            super::metrics::CONTENT_TYPE,
            shared.metrics.render(),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    }
}

/// Binds and serves until `stop`; returns the bound address.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { continue };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let response = route(&shared, req.uri().path());
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(local)
}
