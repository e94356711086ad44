//! The workflow's trigger payload as it arrives, and its validation at the boundary.
//!
//! [`TurnInput`] is the payload as sent (raw JSON). The steps receive a [`ValidatedInput`], which the SDK decodes
//! once per step from the run's input through the [`Deserialize`] impl below: a payload that does not follow the
//! contract (a missing key, a number where a string belongs, an id that is not a UUID) is a decode error, which
//! the SDK makes non-retryable, and its text names the field. Decoding straight into [`WorkflowInput`] would
//! report a missing key without the contract's wording; the content-length cap depends on configuration, so
//! `acquire_mutex` checks it (see [`ValidatedInput::check_content_length`]).

use std::borrow::Cow;

use acf_sdk::json_kind;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::models::{InputError, ValidatedInput, WorkflowInput};

/// The seed's trigger payload: `tenant_id`, `agent_id`, `interlocutor_id`, `channel`, `message_id`,
/// `message_content` (strings; the four ids are UUIDs) and an optional `session_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TurnInput(Value);

const REQUIRED: [&str; 6] = [
    "tenant_id",
    "agent_id",
    "interlocutor_id",
    "channel",
    "message_id",
    "message_content",
];

impl TurnInput {
    /// A payload from typed fields.
    pub fn new(input: &WorkflowInput) -> Self {
        // A struct of strings always serialises.
        Self(serde_json::to_value(input).unwrap_or(Value::Null))
    }

    /// A payload from raw JSON (validated later, by the run).
    pub fn from_json(value: Value) -> Self {
        Self(value)
    }

    /// The raw JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// Checks the payload: an object with the six required string fields (the content may be empty), an optional
    /// string or null `session_key`, UUID ids, a usable channel and content within `max_content_chars`.
    pub fn validate(&self, max_content_chars: usize) -> Result<ValidatedInput, InputError> {
        let input = self.decode()?;
        input.check_content_length(max_content_chars)?;
        Ok(input)
    }

    /// [`validate`](Self::validate) without the content-length cap: what the steps receive.
    fn decode(&self) -> Result<ValidatedInput, InputError> {
        let object = self
            .0
            .as_object()
            .ok_or_else(|| InputError::new("input", "must be a JSON object"))?;
        let text = |field: &'static str| required_string(object, field);
        let input = WorkflowInput {
            tenant_id: text(REQUIRED[0])?,
            agent_id: text(REQUIRED[1])?,
            interlocutor_id: text(REQUIRED[2])?,
            channel: text(REQUIRED[3])?,
            message_id: text(REQUIRED[4])?,
            message_content: text(REQUIRED[5])?,
            session_key: optional_string(object, "session_key")?,
        };
        input.validate_fields()
    }
}

/// The steps' input: decoded (by the SDK, once per step) from the run's payload with [`TurnInput`]'s contract;
/// a refusal is an error whose text names the field.
impl<'de> Deserialize<'de> for ValidatedInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        TurnInput(Value::deserialize(deserializer)?)
            .decode()
            .map_err(serde::de::Error::custom)
    }
}

fn required_string(object: &Map<String, Value>, field: &'static str) -> Result<String, InputError> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(text.clone()),
        None | Some(Value::Null) => Err(InputError::new(field, "is required")),
        Some(other) => Err(InputError::new(
            field,
            format!("must be a string, got {}", json_kind(other)),
        )),
    }
}

fn optional_string(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, InputError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(InputError::new(
            field,
            format!("must be a string or null, got {}", json_kind(other)),
        )),
    }
}

/// The payload contract, registered as the workflow's input schema.
impl schemars::JsonSchema for ValidatedInput {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("LogicalTurnInput")
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "title": "LogicalTurnInput",
            "type": "object",
            "required": REQUIRED,
            "properties": {
                "tenant_id": { "type": "string", "format": "uuid" },
                "agent_id": { "type": "string", "format": "uuid" },
                "interlocutor_id": { "type": "string", "format": "uuid" },
                "channel": { "type": "string", "minLength": 1 },
                "message_id": { "type": "string", "format": "uuid" },
                "message_content": { "type": "string" },
                "session_key": { "type": ["string", "null"] }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn valid() -> Value {
        json!({
            "tenant_id": "6f1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f60",
            "agent_id": "7a1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f61",
            "interlocutor_id": "8b1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f62",
            "channel": "web",
            "message_id": "9c1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f63",
            "message_content": "hello",
        })
    }

    fn error_field(value: Value) -> &'static str {
        TurnInput::from_json(value).validate(100).unwrap_err().field
    }

    #[test]
    fn accepts_the_seed_payload_and_builds_the_session_key() {
        let input = TurnInput::from_json(valid()).validate(100).unwrap();
        assert_eq!(
            input.session_key,
            "6f1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f60:7a1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f61:8b1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f62:web"
        );
        let mut explicit = valid();
        explicit["session_key"] = json!("custom");
        let input = TurnInput::from_json(explicit).validate(100).unwrap();
        assert_eq!(input.session_key, "custom");
    }

    #[test]
    fn every_refusal_names_its_field() {
        let mut missing = valid();
        missing.as_object_mut().unwrap().remove("channel");
        assert_eq!(error_field(missing), "channel");
        let mut wrong_type = valid();
        wrong_type["message_content"] = json!(42);
        assert_eq!(error_field(wrong_type), "message_content");
        let mut not_uuid = valid();
        not_uuid["agent_id"] = json!("agent-7");
        assert_eq!(error_field(not_uuid), "agent_id");
        let mut bad_key = valid();
        bad_key["session_key"] = json!(["a"]);
        assert_eq!(error_field(bad_key), "session_key");
        let mut too_long = valid();
        too_long["message_content"] = json!("x".repeat(101));
        assert_eq!(error_field(too_long), "message_content");
        assert_eq!(error_field(json!("text")), "input");
    }

    #[test]
    fn the_steps_input_decodes_with_the_same_contract_without_the_length_cap() {
        let mut long = valid();
        long["message_content"] = json!("x".repeat(101));
        let input: ValidatedInput = serde_json::from_value(long).unwrap();
        assert_eq!(input.channel, "web");
        assert_eq!(
            input.check_content_length(100).unwrap_err().field,
            "message_content"
        );
        let mut missing = valid();
        missing.as_object_mut().unwrap().remove("channel");
        let error = serde_json::from_value::<ValidatedInput>(missing).unwrap_err();
        assert!(
            error.to_string().contains("`channel`: is required"),
            "{error}"
        );
    }

    #[test]
    fn the_error_text_names_the_field() {
        let mut not_uuid = valid();
        not_uuid["message_id"] = json!("m-1");
        let text = TurnInput::from_json(not_uuid)
            .validate(100)
            .unwrap_err()
            .to_string();
        assert!(text.contains("`message_id`"), "{text}");
    }
}
