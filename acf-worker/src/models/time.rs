//! Timestamps in the original worker's JSON form.
//!
//! Pydantic writes a UTC datetime as `2025-01-15T10:30:00Z`, adding `.ffffff` only when the microseconds are
//! non-zero. Python datetimes carry microseconds, so values are truncated to microseconds on creation and on
//! parsing: a value read back always writes the same text again.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

use super::error::TimestampError;

/// The current UTC time, truncated to microseconds (Python's precision).
pub fn now_utc() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Formats a UTC time exactly as pydantic's JSON mode does.
pub fn format_timestamp(at: &DateTime<Utc>) -> String {
    let micros = at.timestamp_subsec_micros();
    let seconds = at.format("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        format!("{seconds}Z")
    } else {
        format!("{seconds}.{micros:06}Z")
    }
}

/// Parses an ISO-8601 / RFC 3339 time with an offset (`Z` or `+hh:mm`) into UTC.
///
/// A time without an offset is refused: the original silently mixed naive and aware times in one turn.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, TimestampError> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(at) => Ok(at.with_timezone(&Utc).trunc_subsecs(6)),
        Err(_) if text.parse::<NaiveDateTime>().is_ok() => {
            Err(TimestampError::MissingOffset(text.to_owned()))
        }
        Err(_) => Err(TimestampError::Invalid(text.to_owned())),
    }
}

/// `#[serde(with = "...")]` adapter for `DateTime<Utc>` fields.
pub mod serde_timestamp {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the pydantic form.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_timestamp(at))
    }

    /// Reads an offset-carrying ISO-8601 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_timestamp(&text).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "...")]` adapter for `Option<DateTime<Utc>>` fields (`null` when absent).
pub mod serde_timestamp_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the pydantic form, or `null`.
    pub fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_str(&super::format_timestamp(at)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads an offset-carrying ISO-8601 time, or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| super::parse_timestamp(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}
