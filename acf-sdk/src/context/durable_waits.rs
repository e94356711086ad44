//! Durable operations of a step: sleeps and event waits recorded by the engine, replay-safe across retries.
//!
//! Replay safety: each wait of an invocation is issued in program order; on a retry the engine matches the
//! same sequence of waits against its durable log and answers already-satisfied waits at once. Steps must
//! therefore issue the same waits in the same order on every attempt (no branching on wall-clock time).

use std::time::Duration;

use serde_json::Value;

use super::{Context, WaitResult};
use crate::error::{Error, Result};
use crate::model::{Condition, ConditionGroup};

impl Context {
    fn ensure_durable(&self) -> Result<()> {
        if self.info().durable {
            Ok(())
        } else {
            Err(Error::NotDurable(self.step_name().to_owned()))
        }
    }

    /// Waits until every group is satisfied (groups are AND-ed, the conditions inside one group OR-ed) and
    /// returns the condition that fired. Cancelling the step ends the wait with [`Error::Cancelled`].
    pub async fn wait_for(&self, groups: Vec<ConditionGroup>) -> Result<WaitResult> {
        self.ensure_durable()?;
        let seq = self.next_wait_seq();
        let token = self.cancellation_token().clone();
        tokio::select! {
            biased;
            () = token.cancelled() => Err(Error::Cancelled),
            r = self.backend().wait_for(self.info(), groups, seq) => r,
        }
    }

    /// Sleeps durably (the engine's timer survives worker restarts; ~1 s precision).
    pub async fn sleep_for(&self, duration: Duration) -> Result<()> {
        self.wait_for(vec![Condition::sleep(duration).into()])
            .await
            .map(|_| ())
    }

    /// Waits for an event with `key` (namespaced like pushes), optionally restricted to `scope` and filtered by
    /// a CEL `filter` over the event payload (`input`). With a `timeout`, the event and the timeout share one
    /// or-group: returns `Some(payload)` if the event came first, `None` if the timeout fired.
    pub async fn wait_for_event(
        &self,
        key: &str,
        scope: Option<&str>,
        filter: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Option<Value>> {
        let mut event = Condition::event(key);
        if let Some(scope) = scope {
            event = event.scope(scope);
        }
        if let Some(filter) = filter {
            event = event.filter(filter);
        }
        let event_key = event.readable_data_key().to_owned();
        let mut group = vec![event];
        if let Some(timeout) = timeout {
            group.push(Condition::sleep(timeout));
        }
        let result = self.wait_for(vec![ConditionGroup::any(group)]).await?;
        Ok((result.key == event_key).then_some(result.data))
    }
}
