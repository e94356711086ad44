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
