//! The engine-backed [`StepBackend`] of a step run on this worker.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use super::state::{Shared, lock};
use crate::channel::AuthedChannel;
use crate::client::{PushOptions, now_timestamp};
use crate::context::{LogLevel, RunInfo, StepBackend, WaitResult};
use crate::error::{Error, Result};
use crate::model::ConditionGroup;
use crate::proto::events_service_client::EventsServiceClient;
use crate::proto::{
    PutLogRequest, PutStreamEventRequest, RefreshTimeoutRequest, ReleaseSlotRequest,
};
use crate::retry::RetryPolicy;

pub(crate) struct RunBackend {
    shared: Arc<Shared>,
    permits: Mutex<Vec<(String, OwnedSemaphorePermit, i64)>>,
}

impl RunBackend {
    pub(crate) fn new(
        shared: Arc<Shared>,
        permits: Vec<(String, OwnedSemaphorePermit, i64)>,
    ) -> Self {
        Self {
            shared,
            permits: Mutex::new(permits),
        }
    }

    /// Returns the step's slots to the worker (once: after `release_slot` or when the step ends).
    pub(crate) fn release_local_slots(&self) {
        for (slot, permit, n) in lock(&self.permits).drain(..) {
            self.shared.metrics.add_slots_in_use(&slot, -n);
            drop(permit);
        }
    }

    fn policy(&self) -> RetryPolicy {
        self.shared.client.unary_policy()
    }

    /// One `EventsService` call of about `bytes` under the unary retry policy; the response is dropped.
    async fn events_call<R, T, F, Fut>(
        &self,
        rpc: &'static str,
        request: R,
        bytes: usize,
        call: F,
    ) -> Result<()>
    where
        R: Clone,
        F: Fn(EventsServiceClient<AuthedChannel>, R) -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let client = self.shared.client.connection().events_for(bytes);
        self.policy()
            .run(rpc, || call(client.clone(), request.clone()))
            .await
            .map(|_| ())
    }
}

impl StepBackend for RunBackend {
    fn log<'a>(
        &'a self,
        info: &'a RunInfo,
        message: String,
        level: LogLevel,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let request = PutLogRequest {
                task_run_external_id: info.task_run_external_id.clone(),
                created_at: Some(now_timestamp()),
                message,
                level: Some(level.as_str().to_owned()),
                metadata: String::new(),
                task_retry_count: Some(info.retry_count),
            };
            let bytes = request.message.len();
            self.events_call(
                "EventsService/PutLog",
                request,
                bytes,
                |mut client, request| async move { client.put_log(request).await },
            )
            .await
        }
        .boxed()
    }

    fn put_stream<'a>(
        &'a self,
        info: &'a RunInfo,
        data: Vec<u8>,
        index: i64,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let request = PutStreamEventRequest {
                task_run_external_id: info.task_run_external_id.clone(),
                created_at: Some(now_timestamp()),
                message: data,
                metadata: String::new(),
                event_index: Some(index),
            };
            let bytes = request.message.len();
            self.events_call(
                "EventsService/PutStreamEvent",
                request,
                bytes,
                |mut client, request| async move { client.put_stream_event(request).await },
            )
            .await
        }
        .boxed()
    }

    fn refresh_timeout<'a>(
        &'a self,
        info: &'a RunInfo,
        by: Duration,
    ) -> BoxFuture<'a, Result<DateTime<Utc>>> {
        async move {
            let request = RefreshTimeoutRequest {
                task_run_external_id: info.task_run_external_id.clone(),
                increment_timeout_by: crate::duration::precise_expr(by),
            };
            let mut client = self.shared.client.connection().dispatcher();
            let response = client
                .refresh_timeout(request)
                .await
                .map_err(Error::rpc("Dispatcher/RefreshTimeout"))?
                .into_inner();
            let at = response.timeout_at.unwrap_or_default();
            Ok(
                DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(0))
                    .unwrap_or_default(),
            )
        }
        .boxed()
    }

    fn release_slot<'a>(&'a self, info: &'a RunInfo) -> BoxFuture<'a, Result<()>> {
        async move {
            let request = ReleaseSlotRequest {
                task_run_external_id: info.task_run_external_id.clone(),
            };
            let mut client = self.shared.client.connection().dispatcher();
            client
                .release_slot(request)
                .await
                .map_err(Error::rpc("Dispatcher/ReleaseSlot"))?;
            self.release_local_slots();
            Ok(())
        }
        .boxed()
    }

    fn wait_for<'a>(
        &'a self,
        info: &'a RunInfo,
        groups: Vec<ConditionGroup>,
        wait_seq: u32,
    ) -> BoxFuture<'a, Result<WaitResult>> {
        async move {
            let durable = crate::durable_client::DurableClient::for_worker(&self.shared).await?;
            durable.wait_for(info, &groups, wait_seq).await
        }
        .boxed()
    }

    fn push_event<'a>(
        &'a self,
        info: &'a RunInfo,
        key: String,
        payload: Value,
        scope: Option<String>,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let mut options = PushOptions {
                scope,
                ..PushOptions::default()
            };
            options.additional_metadata.insert(
                "hatchet__source_workflow_run_id".into(),
                json!(info.workflow_run_id),
            );
            options.additional_metadata.insert(
                "hatchet__source_step_run_id".into(),
                json!(info.task_run_external_id),
            );
            self.shared
                .client
                .push(&key, payload, options)
                .await
                .map(|_| ())
        }
        .boxed()
    }

    fn trigger_child<'a>(
        &'a self,
        workflow: String,
        input: Value,
        options: crate::client::TriggerOptions,
    ) -> BoxFuture<'a, Result<crate::client::WorkflowRunRef>> {
        async move { self.shared.client.trigger(&workflow, input, options).await }.boxed()
    }
}
