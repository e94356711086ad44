//! The engine's `action_payload` for `START_STEP_RUN` (`V1StepRunData`): input, parent outputs, triggers.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// Decoded `action_payload`. Unknown keys are tolerated, `null` input becomes `{}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct StepRunData {
    /// The workflow input.
    #[serde(default, deserialize_with = "null_as_empty_object")]
    pub input: Value,
    /// Completed parents' outputs, by readable id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub parents: Map<String, Value>,
    /// Satisfied conditions' data by `readable_data_key`, plus `filter_payload`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub triggers: Map<String, Value>,
    /// Failed upstream tasks' errors (on-failure tasks), by readable id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub step_run_errors: BTreeMap<String, String>,
}

impl StepRunData {
    /// Parses the payload string; an empty string is an empty payload.
    pub fn parse(payload: &str) -> Result<Self, serde_json::Error> {
        if payload.trim().is_empty() {
            return Ok(Self {
                input: Value::Object(Map::new()),
                ..Self::default()
            });
        }
        serde_json::from_str(payload)
    }
}

fn null_as_empty_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v) => v,
    })
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_payload_with_nulls_and_extras() {
        let p = StepRunData::parse(
            r#"{"input":null,"triggered_by":"manual","parents":{"a":{"x":1}},
                "triggers":{"filter_payload":null},"user_data":null,"overrides":null}"#,
        )
        .unwrap();
        assert_eq!(p.input, serde_json::json!({}));
        assert_eq!(p.parents["a"], serde_json::json!({"x": 1}));
        assert!(p.triggers.contains_key("filter_payload"));
        assert!(p.step_run_errors.is_empty());
    }

    #[test]
    fn empty_payload_is_empty_input() {
        assert_eq!(StepRunData::parse("").unwrap().input, serde_json::json!({}));
    }
}
