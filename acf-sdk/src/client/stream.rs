//! Following a run: its events (`Dispatcher/SubscribeToWorkflowEvents`) and the chunks its steps stream with
//! [`Context::put_stream`](crate::Context::put_stream).

use futures::{Stream, StreamExt};

use super::Client;
use crate::error::{Error, Result};
use crate::proto::{
    ResourceEventType, ResourceType, SubscribeToWorkflowEventsRequest, WorkflowEvent,
};

impl Client {
    /// Every event of a run until the engine hangs up (the run finished).
    ///
    /// The subscription is requested before this returns, but it does not wait for the engine's answer:
    /// Hatchet (grpc-go) sends the stream's response headers only with its first event, so waiting for them
    /// would block until the run produces one. An error opening the stream arrives as the stream's first
    /// item.
    pub async fn run_events(
        &self,
        run_id: &str,
    ) -> Result<impl Stream<Item = Result<WorkflowEvent>> + use<>> {
        const RPC: &str = "Dispatcher/SubscribeToWorkflowEvents";
        let request = SubscribeToWorkflowEventsRequest {
            workflow_run_id: Some(run_id.to_owned()),
            additional_meta_key: None,
            additional_meta_value: None,
        };
        let mut client = self.connection().dispatcher();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // The open runs in its own task so the request goes out now; it ends when the caller drops the
        // stream (the channel closes) or the engine hangs up.
        tokio::spawn(async move {
            let opened = tokio::select! {
                () = tx.closed() => return,
                opened = client.subscribe_to_workflow_events(request) => opened,
            };
            let mut stream = match opened {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    let _ = tx.send(Err(Error::from_status(RPC, status)));
                    return;
                }
            };
            loop {
                let item = tokio::select! {
                    () = tx.closed() => return,
                    item = stream.next() => item,
                };
                let Some(item) = item else { return };
                let item = item.map_err(Error::rpc(RPC));
                let last = !matches!(&item, Ok(e) if !e.hangup);
                if tx.send(item).is_err() || last {
                    return;
                }
            }
        });
        // `hangup` marks the last event; the stream ends after it.
        Ok(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
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
