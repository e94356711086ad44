//! The logical-turn workflow's trigger input and final output, and the `new_message` event payload.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::InputError;
use super::time::serde_timestamp_opt;

/// Builds the session key `{tenant}:{agent}:{interlocutor}:{channel}` (the Python worker's order and text).
pub fn build_session_key(
    tenant_id: &str,
    agent_id: &str,
    interlocutor_id: &str,
    channel: &str,
) -> String {
    format!("{tenant_id}:{agent_id}:{interlocutor_id}:{channel}")
}

/// Workflow trigger payload, with the original's keys. All ids travel as strings; [`WorkflowInput::validate`]
/// turns them into a [`ValidatedInput`] at the boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowInput {
    /// Tenant id (UUID text).
    pub tenant_id: String,
    /// Agent id (UUID text).
    pub agent_id: String,
    /// Interlocutor (end user) id (UUID text).
    pub interlocutor_id: String,
    /// Channel name (`whatsapp`, `web`, ...).
    pub channel: String,
    /// Id of the message that triggered the run (UUID text).
    pub message_id: String,
    /// Text of that message.
    pub message_content: String,
    /// Explicit session key; when empty the key is built from the ids and channel.
    #[serde(default)]
    pub session_key: Option<String>,
}

/// One conversation: an interlocutor talking with a tenant's agent on a channel (so one session). Builds the
/// trigger payload of each new message with a fresh message id: what a gateway, the demo and the tests send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Tenant id (UUID text).
    pub tenant_id: String,
    /// Agent id (UUID text).
    pub agent_id: String,
    /// Interlocutor id (UUID text).
    pub interlocutor_id: String,
    /// Channel name.
    pub channel: String,
}

impl Conversation {
    /// A conversation between these ids on `channel`.
    pub fn between(
        tenant_id: impl Into<String>,
        agent_id: impl Into<String>,
        interlocutor_id: impl Into<String>,
        channel: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            agent_id: agent_id.into(),
            interlocutor_id: interlocutor_id.into(),
            channel: channel.into(),
        }
    }

    /// A conversation with fresh ids (a session of its own) on `web`.
    pub fn new() -> Self {
        Self::between(
            Uuid::new_v4().to_string(),
            Uuid::new_v4().to_string(),
            Uuid::new_v4().to_string(),
            "web",
        )
    }

    /// The payload of a new message saying `text` (a fresh message id).
    pub fn message(&self, text: &str) -> WorkflowInput {
        WorkflowInput {
            tenant_id: self.tenant_id.clone(),
            agent_id: self.agent_id.clone(),
            interlocutor_id: self.interlocutor_id.clone(),
            channel: self.channel.clone(),
            message_id: Uuid::new_v4().to_string(),
            message_content: text.to_owned(),
            session_key: None,
        }
    }

    /// The session key its messages serialise on.
    pub fn session_key(&self) -> String {
        build_session_key(
            &self.tenant_id,
            &self.agent_id,
            &self.interlocutor_id,
            &self.channel,
        )
    }
}

impl Default for Conversation {
    fn default() -> Self {
        Self::new()
    }
}

/// A [`WorkflowInput`] whose ids parsed and whose session key is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedInput {
    /// Tenant id.
    pub tenant_id: Uuid,
    /// Agent id.
    pub agent_id: Uuid,
    /// Interlocutor id.
    pub interlocutor_id: Uuid,
    /// Channel name (non-empty, no `:`).
    pub channel: String,
    /// Triggering message id.
    pub message_id: Uuid,
    /// Triggering message text.
    pub message_content: String,
    /// The session key the run serialises on.
    pub session_key: String,
}

impl WorkflowInput {
    /// The explicit `session_key` when non-empty, otherwise `{tenant}:{agent}:{interlocutor}:{channel}`.
    pub fn session_key(&self) -> String {
        match self.session_key.as_deref() {
            Some(key) if !key.is_empty() => key.to_owned(),
            _ => build_session_key(
                &self.tenant_id,
                &self.agent_id,
                &self.interlocutor_id,
                &self.channel,
            ),
        }
    }

    /// Checks every field, naming the first offending one: the ids must be UUIDs, the channel must be non-empty
    /// and free of `:` (it is a session-key component), and the content must not exceed `max_content_chars`.
    pub fn validate(&self, max_content_chars: usize) -> Result<ValidatedInput, InputError> {
        let valid = self.validate_fields()?;
        valid.check_content_length(max_content_chars)?;
        Ok(valid)
    }

    /// [`validate`](Self::validate) without the content-length cap, which depends on configuration: what a
    /// payload must satisfy whatever the worker's settings (the workflow's steps receive this, decoded once).
    pub fn validate_fields(&self) -> Result<ValidatedInput, InputError> {
        let tenant_id = parse_uuid("tenant_id", &self.tenant_id)?;
        let agent_id = parse_uuid("agent_id", &self.agent_id)?;
        let interlocutor_id = parse_uuid("interlocutor_id", &self.interlocutor_id)?;
        if self.channel.trim().is_empty() {
            return Err(InputError::new("channel", "must not be empty"));
        }
        if self.channel.contains(':') {
            return Err(InputError::new(
                "channel",
                "must not contain `:` (it separates session-key parts)",
            ));
        }
        let message_id = parse_uuid("message_id", &self.message_id)?;
        Ok(ValidatedInput {
            tenant_id,
            agent_id,
            interlocutor_id,
            channel: self.channel.clone(),
            message_id,
            message_content: self.message_content.clone(),
            session_key: self.session_key(),
        })
    }
}

impl ValidatedInput {
    /// Refuses a message text longer than `max_content_chars` characters (`[accumulation] max_message_chars`).
    pub fn check_content_length(&self, max_content_chars: usize) -> Result<(), InputError> {
        let chars = self.message_content.chars().count();
        if chars > max_content_chars {
            return Err(InputError::new(
                "message_content",
                format!("{chars} characters exceeds the maximum of {max_content_chars}"),
            ));
        }
        Ok(())
    }
}

fn parse_uuid(field: &'static str, value: &str) -> Result<Uuid, InputError> {
    Uuid::parse_str(value)
        .map_err(|err| InputError::new(field, format!("`{value}` is not a UUID ({err})")))
}

/// How a run ended. Serialised as the original's status strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    /// The brain answered and the turn was committed.
    Complete,
    /// The run failed; `error` says why.
    Failed,
    /// A newer turn replaced this one.
    Superseded,
    /// The run's message was absorbed by another run's turn, so this run did nothing.
    Absorbed,
}

impl TurnOutcome {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
            Self::Absorbed => "absorbed",
        }
    }
}

/// Final result of a run, with the original's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowOutput {
    /// The logical turn's id.
    pub turn_id: Uuid,
    /// How the run ended.
    pub status: TurnOutcome,
    /// The response text when complete.
    #[serde(default)]
    pub response: Option<String>,
    /// The error text when failed (the original lost it; this one always carries it).
    #[serde(default)]
    pub error: Option<String>,
    /// Messages in the turn.
    #[serde(default)]
    pub message_count: usize,
}

/// Payload of a `new_message` event sent to a run that is accumulating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// The message id.
    pub message_id: Uuid,
    /// The message text (empty when missing).
    #[serde(default)]
    pub content: String,
    /// When the message arrived; `None` means "use the receiver's clock". Naive times are refused.
    #[serde(default, with = "serde_timestamp_opt")]
    pub timestamp: Option<DateTime<Utc>>,
}
