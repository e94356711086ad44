//! Drains this worker's `tracing` log queue ([`crate::log_layer`]) into `PutLog`.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::state::Shared;
use crate::proto::PutLogRequest;
use crate::retry::RetryPolicy;

/// Creates the worker's log queue (its sender goes into every step's scope) and forwards what arrives.
pub(crate) fn spawn_forwarder(shared: &Arc<Shared>, stop: CancellationToken) {
    let (tx, mut rx) = mpsc::channel(shared.client.config().log_queue_size.max(1));
    if shared.log_lines.set(tx).is_err() {
        return; // already forwarding (a worker runs once)
    }
    let connection = shared.client.connection().clone();
    tokio::spawn(async move {
        loop {
            let line = tokio::select! {
                () = stop.cancelled() => return,
                line = rx.recv() => match line { Some(l) => l, None => return },
            };
            let mut message = line.message;
            if let Some((cut, _)) = message.char_indices().nth(10_000) {
                message.truncate(cut);
            }
            if message.is_empty() {
                continue;
            }
            let request = PutLogRequest {
                task_run_external_id: line.task_run_external_id,
                created_at: Some(crate::client::now_timestamp()),
                message,
                level: Some(line.level.as_str().to_owned()),
                metadata: String::new(),
                task_retry_count: Some(line.retry_count),
            };
            let client = connection.events_for(request.message.len());
            let result = RetryPolicy::unary(3, false)
                .run("EventsService/PutLog", || {
                    let mut client = client.clone();
                    let request = request.clone();
                    async move { client.put_log(request).await }
                })
                .await;
            if let Err(e) = result {
                // Not through `tracing` at a level the layer would forward: avoid feedback loops.
                tracing::debug!(error = %crate::error::Report(&e), "cannot forward a log line");
            }
        }
    });
}
