//! `EventsService`: event ingestion (triggers and durable/DAG waits), task logs and stream chunks.

use super::{check_priority, check_size, parse_id, parse_json, parse_object};
use crate::engine::Shared;
use crate::engine::lifecycle::timestamp;
use crate::engine::state::StoredEvent;
use crate::proto::events_service_server::EventsService;
use crate::proto::{
    BulkPushEventRequest, Event, Events, PushEventRequest, PutLogRequest, PutLogResponse,
    PutStreamEventRequest, PutStreamEventResponse, ReplayEventRequest, ResourceEventType,
};
use std::sync::Arc;
use std::time::SystemTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// BulkPush accepts 1..1000 events.
const MAX_BULK: usize = 1000;
/// Log lines are limited to 10 000 characters.
const MAX_LOG_CHARS: usize = 10_000;

pub(crate) struct EventsSvc(pub(crate) Arc<Shared>);

fn validate(req: &PushEventRequest) -> Result<(StoredEvent, Option<i32>), Status> {
    if req.key.is_empty() {
        return Err(Status::invalid_argument("Invalid request: key is required"));
    }
    let payload = parse_json("payload", &req.payload, serde_json::json!({}))?;
    let metadata = parse_object(
        "additional_metadata",
        req.additional_metadata.as_deref().unwrap_or(""),
    )?;
    let priority = check_priority(req.priority)?;
    Ok((
        StoredEvent {
            id: Uuid::new_v4(),
            key: req.key.clone(),
            payload,
            metadata,
            scope: req.scope.clone().filter(|s| !s.is_empty()),
            at: SystemTime::now(),
        },
        priority,
    ))
}

impl EventsSvc {
    fn ingest(&self, events: Vec<(StoredEvent, Option<i32>)>) -> Vec<Event> {
        let tenant = self.0.mutate(|state, now| {
            for (event, priority) in &events {
                state.push_event(event, *priority, now);
            }
            state.tenant_id
        });
        events
            .into_iter()
            .map(|(e, _)| Event {
                tenant_id: tenant.to_string(),
                event_id: e.id.to_string(),
                key: e.key,
                payload: e.payload.to_string(),
                event_timestamp: Some(timestamp(e.at)),
                additional_metadata: Some(e.metadata.to_string()),
                scope: None,
            })
            .collect()
    }
}

#[tonic::async_trait]
impl EventsService for EventsSvc {
    async fn push(&self, request: Request<PushEventRequest>) -> Result<Response<Event>, Status> {
        let req = request.into_inner();
        self.0.record("EventsService/Push", &req);
        check_size(&req)?;
        let event = validate(&req)?;
        let mut out = self.ingest(vec![event]);
        out.pop()
            .map(Response::new)
            .ok_or_else(|| Status::internal("event was not stored"))
    }

    async fn bulk_push(
        &self,
        request: Request<BulkPushEventRequest>,
    ) -> Result<Response<Events>, Status> {
        let req = request.into_inner();
        self.0.record("EventsService/BulkPush", &req);
        check_size(&req)?;
        if req.events.is_empty() || req.events.len() > MAX_BULK {
            return Err(Status::invalid_argument(format!(
                "Invalid request: events must hold 1..{MAX_BULK} entries"
            )));
        }
        let events = req
            .events
            .iter()
            .map(validate)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(Events {
            events: self.ingest(events),
        }))
    }

    async fn replay_single_event(
        &self,
        _: Request<ReplayEventRequest>,
    ) -> Result<Response<Event>, Status> {
        Err(Status::unimplemented(
            "ReplaySingleEvent is not implemented",
        ))
    }

    async fn put_log(
        &self,
        request: Request<PutLogRequest>,
    ) -> Result<Response<PutLogResponse>, Status> {
        let req = request.into_inner();
        check_size(&req)?;
        let task = parse_id("task_run_external_id", &req.task_run_external_id)?;
        let chars = req.message.chars().count();
        if chars == 0 || chars > MAX_LOG_CHARS {
            return Err(Status::invalid_argument(format!(
                "Invalid request: message must be 1..{MAX_LOG_CHARS} characters"
            )));
        }
        if let Some(level) = &req.level
            && !["INFO", "ERROR", "WARN", "DEBUG"].contains(&level.as_str())
        {
            return Err(Status::invalid_argument(format!(
                "Invalid request: level {level:?} must be one of INFO, ERROR, WARN, DEBUG"
            )));
        }
        if !req.metadata.is_empty() {
            parse_object("metadata", &req.metadata)?;
        }
        if let Some(t) = self.0.lock().tasks.get_mut(&task) {
            t.log_lines += 1;
        }
        tracing::debug!(task = %task, level = req.level.as_deref().unwrap_or("INFO"), message = %req.message, "task log");
        Ok(Response::new(PutLogResponse {}))
    }

    async fn put_stream_event(
        &self,
        request: Request<PutStreamEventRequest>,
    ) -> Result<Response<PutStreamEventResponse>, Status> {
        let req = request.into_inner();
        check_size(&req)?;
        let task = parse_id("task_run_external_id", &req.task_run_external_id)?;
        if !req.metadata.is_empty() {
            parse_object("metadata", &req.metadata)?;
        }
        let chunk = String::from_utf8_lossy(&req.message).into_owned();
        self.0
            .lock()
            .emit_step_indexed(task, ResourceEventType::Stream, chunk, req.event_index);
        Ok(Response::new(PutStreamEventResponse {}))
    }
}
