//! Values that must never reach a log line or a `Debug` dump.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Text shown instead of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A secret string (API keys, tokens). `Debug` and `Display` print `[REDACTED]`; use [`Secret::expose`] to read it.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A connection URL that may embed a password (`redis://user:pass@host:6379/0`).
/// `Debug` and `Display` replace the password with `[REDACTED]`; [`ConnectionUrl::expose`] gives the full URL.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The full URL, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `[REDACTED]`.
    pub fn redacted(&self) -> String {
        redact_url_password(&self.0)
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionUrl({:?})", self.redacted())
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces the password of `scheme://user:password@host...` with `[REDACTED]`; other text is returned unchanged.
/// A comma-separated list of URLs (a Redis Cluster's nodes) has each URL's password replaced.
pub fn redact_url_password(url: &str) -> String {
    // A comma starts a new URL only where a scheme follows: a password may contain commas too.
    let mut urls: Vec<&str> = Vec::new();
    let mut start = 0;
    for (at, _) in url.match_indices(',') {
        if url[at + 1..]
            .split(',')
            .next()
            .is_some_and(|next| next.contains("://"))
        {
            urls.push(&url[start..at]);
            start = at + 1;
        }
    }
    if start == 0 {
        return redact_one_url(url);
    }
    urls.push(&url[start..]);
    urls.into_iter()
        .map(redact_one_url)
        .collect::<Vec<_>>()
        .join(",")
}

fn redact_one_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // The last `@` ends the user info: passwords may themselves contain `@`.
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &authority[..at];
    let Some(colon) = user_info.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:{REDACTED}{}",
        &url[..scheme_end],
        &user_info[..colon],
        &rest[at..]
    )
}

/// Key names whose values are secret or personal, matched case-insensitively and exactly.
const SECRET_KEYS: [&str; 27] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "private_key",
    "access_token",
    "refresh_token",
    "bearer",
    "cookie",
    "set_cookie",
    "client_secret",
    "email",
    "emails",
    "phone",
    "ssn",
    "social_security",
    "credit_card",
    "card_number",
    "cvv",
    "pin",
    "hatchet_client_token",
];

/// Suffixes that make any key secret (`hatchet_api_key`, `db_password`, `refresh_token`...). `_key` alone is not
/// one of them: `session_key`, `lock_key` and `idempotency_key` are identifiers that logs must keep.
const SECRET_SUFFIXES: [&str; 7] = [
    "_token",
    "_secret",
    "_password",
    "_passwd",
    "_api_key",
    "_apikey",
    "_credentials",
];

/// True when a field or configuration key of this name must be redacted.
pub fn is_secret_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_KEYS.contains(&name.as_str())
        || SECRET_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}
