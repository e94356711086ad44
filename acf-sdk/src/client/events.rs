//! Pushing events (`EventsService/Push`, `BulkPush`).

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Client, encode_input, now_timestamp};
use crate::error::Result;
use crate::model::Priority;
use crate::proto;

/// Options of an event push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Additional metadata (always sent, `{}` at minimum).
    pub additional_metadata: Map<String, Value>,
    /// Priority of runs the event triggers.
    pub priority: Option<Priority>,
    /// Scope: matched by scoped filters and scoped durable waits.
    pub scope: Option<String>,
}

impl PushOptions {
    /// Sets the scope.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn metadata(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.additional_metadata
            .insert(key.to_owned(), value.into());
        self
    }
}

impl Client {
    pub(crate) fn push_request(
        &self,
        key: &str,
        payload: &Value,
        options: &PushOptions,
    ) -> proto::PushEventRequest {
        let payload = match payload {
            Value::Null => "{}".to_owned(),
            v => v.to_string(),
        };
        proto::PushEventRequest {
            key: self.config().apply_namespace(key),
            payload,
            event_timestamp: Some(now_timestamp()),
            additional_metadata: Some(
                Value::Object(options.additional_metadata.clone()).to_string(),
            ),
            priority: options.priority.map(Priority::as_i32),
            scope: options.scope.clone(),
        }
    }

    /// Pushes an event (key namespaced like Python); returns the event id.
    pub async fn push(
        &self,
        key: &str,
        payload: impl Serialize,
        options: PushOptions,
    ) -> Result<String> {
        let request = self.push_request(key, &encode_input(payload)?, &options);
        let client = self.connection().events_for(request.payload.len());
        let event = self
            .unary_policy()
            .run("EventsService/Push", || {
                let mut client = client.clone();
                let request = request.clone();
                async move { client.push(request).await }
            })
            .await?;
        Ok(event.into_inner().event_id)
    }

    /// Pushes events in batches of at most 1000 (`BulkPush`); returns their ids in order.
    pub async fn bulk_push(
        &self,
        events: Vec<(String, Value, PushOptions)>,
    ) -> Result<Vec<String>> {
        let size: usize = events.iter().map(|(_, p, _)| p.to_string().len()).sum();
        let client = self.connection().events_for(size);
        let mut ids = Vec::with_capacity(events.len());
        for chunk in events.chunks(1000) {
            let request = proto::BulkPushEventRequest {
                events: chunk
                    .iter()
                    .map(|(k, p, o)| self.push_request(k, p, o))
                    .collect(),
            };
            let response = self
                .unary_policy()
                .run("EventsService/BulkPush", || {
                    let mut client = client.clone();
                    let request = request.clone();
                    async move { client.bulk_push(request).await }
                })
                .await?;
            ids.extend(response.into_inner().events.into_iter().map(|e| e.event_id));
        }
        Ok(ids)
    }
}
