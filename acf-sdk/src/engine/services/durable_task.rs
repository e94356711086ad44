//! `v1.V1Dispatcher`: the `DurableTask` bidi stream and the legacy durable-event API.

use super::{BoxStream, Guarded, lazy_headers, parse_id, trigger_spec};
use crate::engine::Shared;
use crate::engine::durable_log::{DurableStream, LegacyListener};
use crate::engine::validation::durable_conditions;
use crate::proto::v1::durable_task_request::Message as In;
use crate::proto::v1::durable_task_response::Message as Out;
use crate::proto::v1::v1_dispatcher_server::V1Dispatcher;
use crate::proto::v1::{
    DurableEvent, DurableEventLogEntryRef, DurableTaskErrorResponse, DurableTaskErrorType,
    DurableTaskRequest, DurableTaskResponse, ListenForDurableEventRequest,
    RegisterDurableEventRequest, RegisterDurableEventResponse,
};
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::mpsc::unbounded_channel;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

pub(crate) struct DurableSvc(pub(crate) Arc<Shared>);

fn handle(shared: &Shared, stream: u64, message: In) {
    match message {
        In::RegisterWorker(r) => shared.lock().durable_register(stream, r.worker_id),
        In::WaitFor(w) => {
            let conds =
                durable_conditions(&w.wait_for_conditions.clone().unwrap_or_default(), false);
            match conds {
                Ok(conds) => shared.mutate(|state, now| {
                    state.durable_wait_for(
                        stream,
                        &w.durable_task_external_id,
                        w.invocation_count,
                        conds,
                        now,
                    );
                }),
                Err(e) => reject(
                    shared,
                    stream,
                    &w.durable_task_external_id,
                    w.invocation_count,
                    e.to_string(),
                ),
            }
        }
        In::Memo(m) => shared.mutate(|state, _| {
            state.durable_memo(
                stream,
                &m.durable_task_external_id,
                m.invocation_count,
                m.key,
                m.payload,
            );
        }),
        In::CompleteMemo(c) => {
            let r = c.r#ref.unwrap_or_default();
            shared.mutate(|state, _| {
                state.durable_complete_memo(&r.durable_task_external_id, r.node_id, c.payload)
            });
        }
        In::TriggerRuns(t) => {
            let specs = t
                .trigger_opts
                .iter()
                .map(trigger_spec)
                .collect::<Result<Vec<_>, _>>();
            match specs {
                Ok(specs) => shared.mutate(|state, now| {
                    state.durable_trigger_runs(
                        stream,
                        &t.durable_task_external_id,
                        t.invocation_count,
                        specs,
                        now,
                    );
                }),
                Err(e) => reject(
                    shared,
                    stream,
                    &t.durable_task_external_id,
                    t.invocation_count,
                    e.message().to_owned(),
                ),
            }
        }
        In::WorkerStatus(s) => {
            let waiting = s
                .waiting_entries
                .into_iter()
                .map(|e| (e.durable_task_external_id, e.invocation_count, e.node_id))
                .collect();
            shared.lock().durable_worker_status(stream, waiting);
        }
        In::EvictInvocation(e) => shared.mutate(|state, _| {
            state.durable_evict(stream, &e.durable_task_external_id, e.invocation_count);
        }),
    }
}

/// Answers an invalid durable request with an `error` message (the stream stays open).
fn reject(shared: &Shared, stream: u64, task: &str, invocation: i32, message: String) {
    shared.lock().durable_send(
        stream,
        Out::Error(DurableTaskErrorResponse {
            r#ref: Some(DurableEventLogEntryRef {
                durable_task_external_id: task.to_owned(),
                invocation_count: invocation,
                branch_id: 1,
                node_id: 0,
            }),
            error_type: DurableTaskErrorType::Unspecified as i32,
            error_message: message,
        }),
    );
}

#[tonic::async_trait]
impl V1Dispatcher for DurableSvc {
    type DurableTaskStream = BoxStream<DurableTaskResponse>;

    async fn durable_task(
        &self,
        request: Request<Streaming<DurableTaskRequest>>,
    ) -> Result<Response<Self::DurableTaskStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = unbounded_channel();
        let stream = self.0.next_stream_id();
        self.0
            .lock()
            .durable
            .streams
            .insert(stream, DurableStream { worker: None, tx });
        let shared = self.0.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = inbound.next().await {
                if let Some(message) = req.message {
                    handle(&shared, stream, message);
                }
            }
        });
        let shared = self.0.clone();
        let out = Guarded::new(UnboundedReceiverStream::new(rx), move || {
            shared.lock().durable.streams.remove(&stream);
        });
        lazy_headers(Box::pin(
            out.take_until(self.0.shutdown.clone().cancelled_owned()),
        ))
        .await
    }

    async fn register_durable_event(
        &self,
        request: Request<RegisterDurableEventRequest>,
    ) -> Result<Response<RegisterDurableEventResponse>, Status> {
        let req = request.into_inner();
        let task = parse_id("task_id", &req.task_id)?;
        let conds = durable_conditions(&req.conditions.unwrap_or_default(), true)
            .map_err(|e| Status::invalid_argument(format!("Invalid request: {e}")))?;
        self.0.mutate(|state, now| {
            if !state.tasks.contains_key(&task) {
                return Err(Status::not_found(format!("task run {task} not found")));
            }
            state.legacy_register(task, req.signal_key, conds, now);
            Ok(())
        })?;
        Ok(Response::new(RegisterDurableEventResponse {}))
    }

    type ListenForDurableEventStream = BoxStream<DurableEvent>;

    async fn listen_for_durable_event(
        &self,
        request: Request<Streaming<ListenForDurableEventRequest>>,
    ) -> Result<Response<Self::ListenForDurableEventStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = unbounded_channel();
        let id = self.0.next_stream_id();
        self.0.lock().durable.legacy_listeners.insert(
            id,
            LegacyListener {
                tx,
                awaited: HashSet::new(),
            },
        );
        let shared = self.0.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = inbound.next().await {
                // Bad ids are skipped silently, as Hatchet does on this stream.
                let Ok(task) = Uuid::parse_str(&req.task_id) else {
                    continue;
                };
                shared.lock().legacy_listen(id, task, req.signal_key);
            }
        });
        let shared = self.0.clone();
        let out = Guarded::new(UnboundedReceiverStream::new(rx), move || {
            shared.lock().durable.legacy_listeners.remove(&id);
        });
        lazy_headers(Box::pin(
            out.take_until(self.0.shutdown.clone().cancelled_owned()),
        ))
        .await
    }
}
