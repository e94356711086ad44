//! The response stream's field encoding, shared by publishing, the commit script and reading.

use std::collections::HashMap;

use super::error::StoreError;
use super::types::ResponseEntry;
use crate::models::TurnOutcome;
use crate::models::time::{format_timestamp, parse_timestamp};

/// Fields other than `turn_id` and `turn_number`, which the commit script writes itself.
pub(crate) fn body_fields(
    entry: &ResponseEntry,
) -> Result<Vec<(&'static str, String)>, StoreError> {
    Ok(vec![
        ("session_key", entry.session_key.clone()),
        ("channel", entry.channel.clone()),
        ("status", entry.status.as_str().to_owned()),
        ("response", entry.response.clone()),
        (
            "segments",
            serde_json::to_string(&entry.segments)
                .map_err(StoreError::encode("response segments"))?,
        ),
        (
            "message_ids",
            serde_json::to_string(&entry.message_ids).map_err(StoreError::encode("message ids"))?,
        ),
        ("error", entry.error.clone().unwrap_or_default()),
        ("committed_at", format_timestamp(&entry.committed_at)),
    ])
}

/// Every field of an entry, in stream order.
pub(crate) fn all_fields(entry: &ResponseEntry) -> Result<Vec<(&'static str, String)>, StoreError> {
    let mut fields = vec![
        ("turn_id", entry.turn_id.to_string()),
        ("turn_number", entry.turn_number.to_string()),
    ];
    fields.extend(body_fields(entry)?);
    Ok(fields)
}

/// Decodes an entry from its fields.
pub(crate) fn parse(fields: &HashMap<String, String>) -> Result<ResponseEntry, StoreError> {
    let field = |name: &'static str| {
        fields
            .get(name)
            .ok_or_else(|| StoreError::corrupt("response entry", format!("missing field `{name}`")))
    };
    let bad = |name: &'static str| {
        move |err: &dyn std::fmt::Display| {
            StoreError::corrupt("response entry", format!("field `{name}`: {err}"))
        }
    };
    Ok(ResponseEntry {
        turn_id: field("turn_id")?.parse().map_err(|e| bad("turn_id")(&e))?,
        session_key: field("session_key")?.clone(),
        channel: field("channel")?.clone(),
        turn_number: field("turn_number")?
            .parse()
            .map_err(|e| bad("turn_number")(&e))?,
        status: match fields.get("status").map(String::as_str) {
            None | Some("complete") => TurnOutcome::Complete,
            Some("failed") => TurnOutcome::Failed,
            Some(other) => return Err(bad("status")(&format!("unknown status `{other}`"))),
        },
        response: field("response")?.clone(),
        segments: serde_json::from_str(field("segments")?).map_err(|e| bad("segments")(&e))?,
        message_ids: serde_json::from_str(field("message_ids")?)
            .map_err(|e| bad("message_ids")(&e))?,
        error: fields.get("error").filter(|e| !e.is_empty()).cloned(),
        committed_at: parse_timestamp(field("committed_at")?)
            .map_err(|e| bad("committed_at")(&e))?,
    })
}

/// The fields of one entry of the events stream (`{key_prefix}:events`), in stream order. Routing ids are left out
/// when the event has none.
pub(crate) fn event_fields(
    event: &crate::events::AcfEvent,
) -> Result<Vec<(&'static str, String)>, StoreError> {
    let mut fields = vec![
        ("type", event.event_type.as_str().to_owned()),
        ("turn_id", event.logical_turn_id.to_string()),
        ("session_key", event.session_key.clone()),
        ("timestamp", format_timestamp(&event.timestamp)),
    ];
    for (name, id) in [
        ("tenant_id", event.tenant_id),
        ("agent_id", event.agent_id),
        ("interlocutor_id", event.interlocutor_id),
    ] {
        if let Some(id) = id {
            fields.push((name, id.to_string()));
        }
    }
    fields.push((
        "payload",
        serde_json::to_string(&event.payload).map_err(StoreError::encode("event payload"))?,
    ));
    Ok(fields)
}

/// Decodes an events-stream entry from its fields.
pub(crate) fn parse_event(
    fields: &HashMap<String, String>,
) -> Result<crate::events::AcfEvent, StoreError> {
    let field = |name: &'static str| {
        fields
            .get(name)
            .ok_or_else(|| StoreError::corrupt("event entry", format!("missing field `{name}`")))
    };
    let bad = |name: &'static str, err: &dyn std::fmt::Display| {
        StoreError::corrupt("event entry", format!("field `{name}`: {err}"))
    };
    let id = |name: &'static str| {
        fields
            .get(name)
            .map(|raw| raw.parse::<uuid::Uuid>().map_err(|e| bad(name, &e)))
            .transpose()
    };
    Ok(crate::events::AcfEvent {
        event_type: serde_json::from_value(serde_json::Value::String(field("type")?.clone()))
            .map_err(|e| bad("type", &e))?,
        logical_turn_id: field("turn_id")?.parse().map_err(|e| bad("turn_id", &e))?,
        session_key: field("session_key")?.clone(),
        timestamp: parse_timestamp(field("timestamp")?).map_err(|e| bad("timestamp", &e))?,
        payload: serde_json::from_str(field("payload")?).map_err(|e| bad("payload", &e))?,
        tenant_id: id("tenant_id")?,
        agent_id: id("agent_id")?,
        interlocutor_id: id("interlocutor_id")?,
    })
}
