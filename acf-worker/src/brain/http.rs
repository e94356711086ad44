//! A brain that delegates to an HTTP endpoint.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument as _;
use uuid::Uuid;

use super::{Brain, BrainError, BrainResult, ResponseSegment, TurnContext, TurnMessage};
use crate::config::{REDACTED, redact_url_password};
use crate::events::{AcfEvent, AcfEventType};
use crate::models::{AccumulationHint, LogicalTurn, SideEffect};

/// Longest excerpt of an error body kept in [`BrainError::Status`].
const BODY_EXCERPT_CHARS: usize = 512;

/// Headers the worker sets itself, which `brain.headers` may not override.
pub const RESERVED_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "content-length",
    "host",
    "traceparent",
    "tracestate",
];

/// Where and how the HTTP brain calls its endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpBrainConfig {
    /// Endpoint receiving the `POST`.
    pub url: String,
    /// Limit on the whole exchange (connect, send, answer).
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer …` when set.
    pub bearer_token: Option<String>,
    /// Extra static headers sent with every request (values are treated as secrets: never printed).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for HttpBrainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, _)| (name.as_str(), REDACTED))
            .collect();
        f.debug_struct("HttpBrainConfig")
            .field("url", &redact_url_password(&self.url))
            .field("timeout", &self.timeout)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| REDACTED),
            )
            .field("headers", &headers)
            .finish()
    }
}

/// Answers turns by `POST`ing them as JSON to a configured URL.
///
/// The contract is published as JSON Schemas in `acf-worker/schemas/` (`brain-request.schema.json`,
/// `brain-response.schema.json`); the crate's tests validate what the worker sends and accepts against them.
///
/// # Request
///
/// `POST {url}` with `Content-Type: application/json`, `Authorization: Bearer {brain.api_key}` when configured,
/// every `brain.headers` entry, and a W3C `traceparent` when traces are on:
///
/// ```json
/// {
///   "tenant_id": "6f1c2a56-…", "agent_id": "…", "interlocutor_id": "…",
///   "channel": "whatsapp",
///   "session_key": "tenant:agent:interlocutor:channel",
///   "turn_id": "…", "turn_number": 3,
///   "messages": [{ "id": "…", "content": "hi", "received_at": "2025-01-15T10:30:00Z" }],
///   "has_pending_messages": false,
///   "turn_group_id": "…",
///   "idempotency_key_format": "{tool_name}:{business_key}:turn_group:…",
///   "side_effects": [{ "effect_type": "tool_call", "policy": "irreversible", "tool_name": "create_order", … }],
///   "turn": { "id": "…", "session_key": "…", "messages": ["…"], "status": "processing", … }
/// }
/// ```
///
/// `turn_number` is the number the turn gets when it commits (1 for a session's first); `messages` are the turn's
/// messages in order; `has_pending_messages` is the answer of [`TurnContext::has_pending_messages`] when the
/// request was sent; `side_effects` are the effects earlier attempts of this turn recorded
/// ([`TurnContext::side_effects`]: empty on a first attempt); `idempotency_key_format` is the key a tool call
/// should carry, with `{tool_name}` and `{business_key}` to fill in ([`TurnContext::idempotency_key`]); `turn` is
/// the [`LogicalTurn`] in the original worker's JSON form.
///
/// # Response
///
/// A 2xx status with a JSON object:
///
/// ```json
/// {
///   "response": "Sure, what is your order number?",
///   "segments": [{ "content": "Sure, what is your order number?", "segment_type": "text", "metadata": {} }],
///   "accumulation_hint": { "awaiting_required_field": true, "expected_input_type": "order_number" },
///   "expects_more_input": true,
///   "events": [{ "type": "tool.executed", "payload": { "tool_name": "lookup" } }]
/// }
/// ```
///
/// * At least one of `response` and `segments` is required. Without `segments`, the response is one `text`
///   segment; without `response`, it is the concatenation of the segments' contents; with both, `response` must
///   equal that concatenation.
/// * `accumulation_hint` (optional) follows [`AccumulationHint`]'s fields, each optional;
///   `input_complete_confidence` must be within 0.0 to 1.0.
/// * `expects_more_input` defaults to false.
/// * `events` (optional) are emitted through [`TurnContext::emit_event`] for this turn, in order; `type` is an ACF
///   event value, `payload` an object (default empty). A `tool.executed` event records a side effect on the turn
///   (`payload.tool_name`, `payload.policy`, `payload.idempotency_key`). Events are taken from any answer whose
///   body is a JSON object with a valid `events` array, also a non-2xx one or one whose other fields are
///   malformed: a tool that ran is on record even when the brain failed afterwards.
/// * Unknown fields are ignored.
///
/// # Errors
///
/// No answer within the timeout: [`BrainError::Timeout`]. A non-2xx status: [`BrainError::Status`] with the start of
/// the body. Not JSON, or not following the rules above: [`BrainError::Malformed`]. Unreachable endpoint:
/// [`BrainError::Transport`]. A context without routing ids or turn number: [`BrainError::Failed`].
#[derive(Debug, Clone)]
pub struct HttpBrain {
    client: reqwest::Client,
    config: HttpBrainConfig,
}

impl HttpBrain {
    /// A brain for `config`. Fails when a header name or value is not valid HTTP, or names a reserved header.
    pub fn new(config: HttpBrainConfig) -> Result<Self, BrainError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                BrainError::Failed(format!(
                    "brain.headers: `{name}` is not a valid header name"
                ))
            })?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(BrainError::Failed(format!(
                    "brain.headers: `{name}` is set by the worker itself and cannot be configured"
                )));
            }
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                BrainError::Failed(format!(
                    "brain.headers.{name}: the value is not a valid header value"
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .default_headers(headers)
            .build()
            .map_err(BrainError::Transport)?;
        Ok(Self { client, config })
    }
}

/// The request body; `brain-request.schema.json` documents it.
#[derive(Serialize)]
struct Request<'a> {
    tenant_id: Uuid,
    agent_id: Uuid,
    interlocutor_id: Uuid,
    channel: &'a str,
    session_key: &'a str,
    turn_id: Uuid,
    turn_number: u64,
    messages: &'a [TurnMessage],
    has_pending_messages: bool,
    turn_group_id: Uuid,
    idempotency_key_format: String,
    side_effects: &'a [SideEffect],
    turn: &'a LogicalTurn,
}

/// The `events` of any answer, read before the rest is judged.
#[derive(Deserialize)]
struct ReplyEvents {
    #[serde(default)]
    events: Vec<ReplyEvent>,
}

#[derive(Deserialize)]
struct Reply {
    response: Option<String>,
    segments: Option<Vec<ResponseSegment>>,
    accumulation_hint: Option<AccumulationHint>,
    #[serde(default)]
    expects_more_input: bool,
    /// Validated with the rest (a malformed list makes the answer malformed); emitted from [`ReplyEvents`].
    #[serde(default, rename = "events")]
    _events: Vec<ReplyEvent>,
}

#[derive(Deserialize)]
struct ReplyEvent {
    #[serde(rename = "type")]
    event_type: AcfEventType,
    #[serde(default)]
    payload: Map<String, Value>,
}

impl Reply {
    /// The brain's result (the events were emitted already, see [`ReplyEvents`]).
    fn into_result(self) -> Result<BrainResult, BrainError> {
        let mut result = match (self.response, self.segments) {
            (None, None) => {
                return Err(BrainError::Malformed(
                    "neither `response` nor `segments` is present".into(),
                ));
            }
            (Some(response), None) => BrainResult::text(response),
            (None, Some(segments)) => BrainResult::from_segments(segments),
            (Some(response), Some(segments)) => {
                let result = BrainResult::from_segments(segments);
                if result.response != response {
                    return Err(BrainError::Malformed(
                        "`response` differs from the concatenation of the `segments` contents"
                            .into(),
                    ));
                }
                result
            }
        };
        if let Some(hint) = &self.accumulation_hint {
            hint.validate()
                .map_err(|err| BrainError::Malformed(format!("accumulation_hint: {err}")))?;
        }
        result.accumulation_hint = self.accumulation_hint;
        result.expects_more_input = self.expects_more_input;
        Ok(result)
    }
}

fn classify(error: reqwest::Error, timeout: Duration) -> BrainError {
    if error.is_timeout() {
        BrainError::Timeout { timeout }
    } else {
        BrainError::Transport(error)
    }
}

#[async_trait]
impl Brain for HttpBrain {
    fn name(&self) -> &str {
        "http"
    }

    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError> {
        let timeout = self.config.timeout;
        let routing = ctx.routing().ok_or_else(|| {
            BrainError::Failed("the turn context has no tenant, agent and interlocutor ids".into())
        })?;
        let turn_number = ctx
            .turn_number()
            .ok_or_else(|| BrainError::Failed("the turn context has no turn number".into()))?;
        let body = Request {
            tenant_id: routing.tenant_id,
            agent_id: routing.agent_id,
            interlocutor_id: routing.interlocutor_id,
            channel: ctx.channel(),
            session_key: ctx.session_key(),
            turn_id: ctx.turn().id(),
            turn_number,
            messages: ctx.messages(),
            has_pending_messages: ctx.has_pending_messages().await,
            turn_group_id: ctx.turn().turn_group_id(),
            idempotency_key_format: ctx.idempotency_key("{tool_name}", "{business_key}"),
            side_effects: ctx.side_effects(),
            turn: ctx.turn(),
        };
        let span = tracing::info_span!(
            "http.client",
            otel.name = "POST",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = "POST",
            url.full = %redact_url_password(&self.config.url),
            http.response.status_code = tracing::field::Empty,
        );
        let exchange = async {
            let mut request = self.client.post(&self.config.url).json(&body);
            if let Some(token) = &self.config.bearer_token {
                request = request.bearer_auth(token);
            }
            // The brain continues the turn's trace from this client span.
            for (name, value) in crate::telemetry::trace_headers() {
                request = request.header(name, value);
            }
            let response = request.send().await?;
            let status = response.status();
            tracing::Span::current().record("http.response.status_code", status.as_u16());
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        };
        let (status, text) = exchange.instrument(span.clone()).await.map_err(|err| {
            span.record("otel.status_code", "ERROR");
            classify(err, timeout)
        })?;
        if !status.is_success() {
            span.record("otel.status_code", "ERROR");
        }
        // Tools may have run even if the answer is an error: their events are recorded first.
        if let Ok(ReplyEvents { events }) = serde_json::from_str(&text) {
            for event in events {
                let turn = ctx.turn();
                let event = AcfEvent::new(event.event_type, turn.id(), turn.session_key())
                    .with_payload(Value::Object(event.payload));
                ctx.emit_event(event).await?;
            }
        }
        if !status.is_success() {
            return Err(BrainError::Status {
                status: status.as_u16(),
                body: text.chars().take(BODY_EXCERPT_CHARS).collect(),
            });
        }
        let reply: Reply =
            serde_json::from_str(&text).map_err(|err| BrainError::Malformed(err.to_string()))?;
        reply.into_result()
    }
}
