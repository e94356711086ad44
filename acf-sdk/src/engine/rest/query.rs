//! Query strings as Hatchet's clients send them: repeated keys for lists (`statuses=A&statuses=B`,
//! or `statuses[]=A` from some serializers), RFC 3339 times, `key:value` metadata pairs.

use super::{ApiError, parse_uuid};
use std::time::SystemTime;
use uuid::Uuid;

/// The decoded pairs of a query string.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes a raw query string.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.trim_end_matches("[]").to_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of a key.
    pub(crate) fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a key.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `offset` and `limit` of a list, with Hatchet's defaults (from the start, 50 rows).
    pub(crate) fn page(&self) -> Result<(usize, usize), ApiError> {
        Ok((self.usize("offset", 0)?, self.usize("limit", 50)?))
    }

    /// A non-negative integer.
    pub(crate) fn usize(&self, key: &str, default: usize) -> Result<usize, ApiError> {
        match self.one(key) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ApiError::field(key, format!("must be a non-negative integer, got {v:?}"))
            }),
        }
    }

    /// A boolean (`true`/`false`).
    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.one(key) {
            None | Some("") => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::field(
                key,
                format!("must be true or false, got {v:?}"),
            )),
        }
    }

    /// The optional UUID value of `key`; a malformed one is an error naming `key`.
    pub(crate) fn uuid(&self, key: &str) -> Result<Option<Uuid>, ApiError> {
        self.one(key).map(|v| parse_uuid(key, v)).transpose()
    }

    /// An RFC 3339 time.
    pub(crate) fn time(&self, key: &str) -> Result<Option<SystemTime>, ApiError> {
        self.one(key).map(|v| parse_time(key, v)).transpose()
    }

    /// Values checked against an allowed set (enum parameters).
    pub(crate) fn enums(&self, key: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
        let values = self.all(key);
        for v in &values {
            if !allowed.contains(&v.as_str()) {
                return Err(ApiError::field(
                    key,
                    format!("{v:?} is not one of {}", allowed.join(", ")),
                ));
            }
        }
        Ok(values)
    }

    /// `key:value` metadata pairs.
    pub(crate) fn metadata(&self, key: &str) -> Result<Vec<String>, ApiError> {
        let values = self.all(key);
        for v in &values {
            if !v.contains(':') {
                return Err(ApiError::field(key, format!("{v:?} must be key:value")));
            }
        }
        Ok(values)
    }

    /// Fails on any key outside `known` (a filter the engine would otherwise ignore).
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(ApiError::field(k, "is not a supported query parameter")),
            None => Ok(()),
        }
    }
}

/// Parses an RFC 3339 time (a time without offset is taken as UTC).
pub(crate) fn parse_time(field: &str, value: &str) -> Result<SystemTime, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.into());
    }
    chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc().into())
        .map_err(|_| ApiError::field(field, format!("must be an RFC 3339 time, got {value:?}")))
}

/// `V1TaskStatus` values.
pub(crate) const TASK_STATUSES: &[&str] =
    &["QUEUED", "RUNNING", "COMPLETED", "CANCELLED", "FAILED"];
