//! Step output encoding shared by the builder and the macro expansion.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::step_error::{StepError, StepErrorKind};

/// Encodes a step output as the JSON object the engine requires. `()`/`None` (JSON `null`) become `{}`;
/// anything that is not an object, or that contains a NUL character (rejected by the engine), is a
/// non-retryable error naming the step.
pub fn encode_output<T: Serialize + ?Sized>(step: &str, output: &T) -> Result<Value, StepError> {
    let encode_err = |reason: String| {
        StepError::from_kind(StepErrorKind::Encode {
            step: step.to_owned(),
            reason,
        })
    };
    let value = serde_json::to_value(output).map_err(|e| encode_err(e.to_string()))?;
    let value = match value {
        Value::Null => Value::Object(Map::new()),
        v @ Value::Object(_) => v,
        other => {
            return Err(encode_err(format!(
                "a step output must serialize to a JSON object (a struct or map), got {}",
                json_kind(&other)
            )));
        }
    };
    if contains_nul(&value) {
        return Err(encode_err(
            "output contains a NUL character (\\u0000), which the engine rejects".to_owned(),
        ));
    }
    Ok(value)
}

/// The compact JSON text of `value`, byte for byte what its `Display` prints, written straight into a buffer
/// (`Display` goes through the formatter one token at a time).
pub(crate) fn json_text<T: Serialize + ?Sized>(value: &T) -> String {
    // A `Value` or a struct of borrowed `Value`s: maps with string keys, nothing that can fail to serialize.
    serde_json::to_string(value).unwrap_or_default()
}

/// How a refusal names a JSON value's kind (`null`, `a boolean`, `a number`, `a string`, `an array`,
/// `an object`), so the SDK's and its users' messages read the same: `must be a string, got a number`.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn contains_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(contains_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_pass_unit_becomes_empty_object() {
        assert_eq!(
            encode_output("s", &serde_json::json!({"a": 1})).unwrap(),
            serde_json::json!({"a": 1})
        );
        assert_eq!(encode_output("s", &()).unwrap(), serde_json::json!({}));
    }

    #[test]
    fn non_objects_and_nul_fail_without_retry() {
        let e = encode_output("s", &5).unwrap_err();
        assert!(e.is_non_retryable());
        assert!(e.to_string().contains("got a number"), "{e}");
        assert!(encode_output("s", &serde_json::json!({"a": "x\u{0}"})).is_err());
    }
}
