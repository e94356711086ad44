//! Hatchet's REST API — the subset the official Python and TypeScript SDKs call from their public
//! API — and the dashboard, served over HTTP/1 on the engine's gRPC port.
//!
//! Paths, JSON shapes, status codes and bearer auth follow Hatchet's OpenAPI spec
//! (`api-contracts/openapi`); errors are `APIErrors` (`{"errors":[{"description":..}]}`).
//! Anything else under `/api/` answers `501` with an error naming the endpoint, so nothing is
//! silently accepted. The SDKs find the API through the token's `server_url` claim, which is the
//! engine's own address.

mod dashboard;
mod query;
mod resources;
mod runs;
mod schedules;
mod views;

use crate::engine::Shared;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// Shared state of every handler.
type Ctx = State<Arc<Shared>>;

/// A handler's JSON answer.
type ApiResult = Result<axum::Json<Value>, ApiError>;

/// An error answered as Hatchet's `APIErrors`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    description: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            status,
            description: description.into(),
            field: None,
        }
    }

    /// `400` naming the offending field.
    pub(crate) fn field(field: &str, description: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            description: format!("{field}: {description}"),
            field: Some(field.to_owned()),
        }
    }

    /// `400`.
    pub(crate) fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }

    /// `409`.
    pub(crate) fn conflict(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, description)
    }

    /// `404`.
    pub(crate) fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "description": self.description, "code": self.status.as_u16() });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        (self.status, axum::Json(json!({ "errors": [error] }))).into_response()
    }
}

/// Parses a path id.
pub(crate) fn parse_uuid(field: &str, value: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value)
        .map_err(|_| ApiError::field(field, format!("must be a UUID, got {value:?}")))
}

/// Parses a JSON request body; unknown fields and type errors are `400` naming the field.
pub(crate) fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("request body is required"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// Checks the path's tenant and parses the id of a resource under it (`field` names the id in errors).
pub(crate) fn tenant_resource_id(
    shared: &Shared,
    tenant: &str,
    field: &str,
    raw: &str,
) -> Result<Uuid, ApiError> {
    check_tenant(shared, tenant)?;
    parse_uuid(field, raw)
}

/// A lookup in the engine's state whose miss is the REST API's `404`.
trait OrNotFound<T> {
    /// The found value, or `404` with `"{what} {id} not found"`.
    fn or_not_found(self, what: &str, id: impl std::fmt::Display) -> Result<T, ApiError>;
}

impl<T> OrNotFound<T> for Option<T> {
    fn or_not_found(self, what: &str, id: impl std::fmt::Display) -> Result<T, ApiError> {
        self.ok_or_else(|| ApiError::not_found(format!("{what} {id}")))
    }
}

/// Checks that the path's tenant is the engine's tenant.
pub(crate) fn check_tenant(shared: &Shared, tenant: &str) -> Result<(), ApiError> {
    let id = parse_uuid("tenant", tenant)?;
    if id == shared.keys.tenant_id() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("tenant {id} is not the engine's tenant"),
        ))
    }
}

/// Requires a valid engine token (`Authorization: Bearer <token>`).
async fn require_token(State(shared): Ctx, request: Request, next: Next) -> Response {
    if authorized(&shared, request.headers()) {
        next.run(request).await
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid auth token").into_response()
    }
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    shared.keys.check_header(value)
}

/// Unknown routes: `501` naming the endpoint under `/api/`, gRPC's `UNIMPLEMENTED` for gRPC
/// requests, `404` otherwise.
async fn fallback(shared: Arc<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return tonic::Status::unimplemented(format!("unknown method {}", uri.path()))
            .into_http::<axum::body::Body>()
            .into_response();
    }
    if uri.path().starts_with("/api/") {
        if !authorized(&shared, &headers) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "invalid auth token").into_response();
        }
        tracing::debug!(%method, path = uri.path(), "rest_endpoint_not_implemented");
        return ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "{method} {} is not implemented by the embedded engine",
                uri.path()
            ),
        )
        .into_response();
    }
    ApiError::not_found(format!("{method} {}", uri.path())).into_response()
}

/// The gRPC services' router extended with the REST API, the dashboard and the fallback.
pub(crate) fn app(shared: Arc<Shared>, grpc: Router) -> Router {
    let api = Router::new()
        .merge(runs::routes())
        .merge(resources::routes())
        .merge(schedules::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ))
        .merge(dashboard::routes())
        .with_state(shared.clone());
    grpc.merge(api)
        .fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
            let shared = shared.clone();
            async move { fallback(shared, method, uri, headers).await }
        })
}
