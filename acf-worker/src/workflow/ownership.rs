//! The run's responsibility for its own message, which every run carries in its input.
//!
//! The invariant, enforced here: a run ends only when its own message is answered, absorbed into a committed turn,
//! or recorded as failed; otherwise it fails (and is retried) or hands the message on to a run that will take it
//! (its session is marked due at once in the [`crate::stores::PendingIndex`], and a sweep triggers that run).
//! A message the store no longer has (it lost its data) is recorded again from the input: a missing record is
//! never a reason to drop a message.

use acf_sdk::StepError;

use super::LogicalTurnWorkflow;
use crate::liveness::{count, metrics, now_ms, offset_ms, route_json};
use crate::models::{ValidatedInput, now_utc};
use crate::stores::StoredMessage;

impl LogicalTurnWorkflow {
    /// The run's own message as stored, recording it (pending) from the input when the store does not have it:
    /// the run was triggered without intake, or the store lost it. Recording goes through intake's path, so the
    /// open index and the session inbox are rebuilt with it.
    pub(crate) async fn own_message(
        &self,
        input: &ValidatedInput,
    ) -> Result<StoredMessage, StepError> {
        for _ in 0..3 {
            if let Some(message) = self
                .stores
                .messages
                .get(&input.session_key, input.message_id)
                .await?
            {
                return Ok(message);
            }
            let message = StoredMessage::pending(
                input.message_id,
                input.session_key.clone(),
                input.channel.clone(),
                input.message_content.clone(),
                now_utc(),
            );
            if self.stores.accept_message(&message).await? {
                count(&metrics().messages_re_recorded);
                tracing::warn!(
                    message_id = %input.message_id,
                    session_key = %input.session_key,
                    "message_recorded_by_run"
                );
                self.mark_due(input, self.settings.pending_grace, true)
                    .await?;
            }
            // Someone else stored it between the two calls: read their copy.
        }
        Err(StepError::msg(format!(
            "message {} can neither be read nor recorded",
            input.message_id
        )))
    }

    /// Makes a sweep look at the session `after` from now. With `keep_earlier`, an earlier due time stands (a
    /// hand-on, or a run that merely started); without, it is replaced (a run holding the lock works on the
    /// session, so a busy session is not re-triggered meanwhile).
    pub(crate) async fn mark_due(
        &self,
        input: &ValidatedInput,
        after: std::time::Duration,
        keep_earlier: bool,
    ) -> Result<(), StepError> {
        self.stores
            .pending
            .mark_due(
                &input.session_key,
                &route_json(input),
                now_ms().saturating_add(offset_ms(after)),
                keep_earlier,
            )
            .await?;
        Ok(())
    }

    /// The end-of-run check of the invariant: when the run's own message is still open (or was lost), hand it on
    /// by making its session due at once. An error fails the step, so the run is retried rather than ending with
    /// the message unaccounted for.
    pub(crate) async fn settle_own_message(
        &self,
        input: &ValidatedInput,
        why: &'static str,
    ) -> Result<(), StepError> {
        let own = self.own_message(input).await?;
        if !own.status.is_open() {
            return Ok(());
        }
        self.mark_due(input, std::time::Duration::ZERO, true)
            .await?;
        count(&metrics().hand_ons);
        tracing::warn!(
            message_id = %input.message_id,
            session_key = %input.session_key,
            status = own.status.as_str(),
            reason = why,
            "message_handed_on"
        );
        Ok(())
    }
}
