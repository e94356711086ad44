//! Building the configured brain.

use std::sync::Arc;

use super::{Brain, BrainError, EchoBrain, HttpBrain, HttpBrainConfig};
use crate::config::{BrainKind, BrainSettings};

/// The brain `[brain]` selects: `echo`, or `http` posting to `brain.url` with `brain.timeout_ms`, `brain.api_key`
/// as the bearer token and `brain.headers`.
pub fn from_settings(settings: &BrainSettings) -> Result<Arc<dyn Brain>, BrainError> {
    match settings.kind {
        BrainKind::Echo => Ok(Arc::new(EchoBrain)),
        BrainKind::Http => {
            let url = settings.url.as_ref().ok_or_else(|| {
                BrainError::Failed("`brain.url` is required when `brain.kind` = \"http\"".into())
            })?;
            Ok(Arc::new(HttpBrain::new(HttpBrainConfig {
                url: url.expose().to_owned(),
                timeout: settings.timeout(),
                bearer_token: settings.api_key.as_ref().map(|key| key.expose().to_owned()),
                headers: settings
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.expose().to_owned()))
                    .collect(),
            })?))
        }
    }
}
