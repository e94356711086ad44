//! Following a run: its events (`Dispatcher/SubscribeToWorkflowEvents`) and the chunks its steps stream with
//! [`Context::put_stream`](crate::Context::put_stream).

use futures::{Stream, StreamExt};

use super::Client;
use crate::proto::{
    ResourceEventType, ResourceType, SubscribeToWorkflowEventsRequest, WorkflowEvent,
};
use crate::sdk_error::{Error, Result};

impl Client {
    /// Every event of a run until the engine hangs up (the run finished).
    pub async fn run_events(
        &self,
        run_id: &str,
    ) -> Result<impl Stream<Item = Result<WorkflowEvent>> + use<>> {
        let request = SubscribeToWorkflowEventsRequest {
            workflow_run_id: Some(run_id.to_owned()),
            additional_meta_key: None,
            additional_meta_value: None,
        };
        let mut client = self.connection().dispatcher();
        let stream = client
            .subscribe_to_workflow_events(request)
            .await
            .map_err(|status| Error::Status {
                rpc: "Dispatcher/SubscribeToWorkflowEvents",
                status,
            })?
            .into_inner();
        // `hangup` marks the last event; the stream ends after it.
        let events = stream
            .scan(false, |done, item| {
                if *done {
                    return futures::future::ready(None);
                }
                let item = item.map_err(|status| Error::Status {
                    rpc: "Dispatcher/SubscribeToWorkflowEvents",
                    status,
                });
                if let Ok(e) = &item {
                    *done = e.hangup;
                }
                futures::future::ready(Some(item))
            })
            .boxed();
        Ok(events)
    }

    /// The chunks a run's steps stream, in order, until the run finishes.
    pub async fn stream(
        &self,
        run_id: &str,
    ) -> Result<impl Stream<Item = Result<Vec<u8>>> + use<>> {
        let events = self.run_events(run_id).await?;
        Ok(events.filter_map(|item| {
            futures::future::ready(match item {
                Ok(e)
                    if e.resource_type == ResourceType::StepRun as i32
                        && e.event_type == ResourceEventType::Stream as i32 =>
                {
                    Some(Ok(e.event_payload.into_bytes()))
                }
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            })
        }))
    }
}
