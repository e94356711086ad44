//! Configuration errors. Messages name the key and, where it helps, the accepted values; they never contain a
//! secret's value.

use std::path::PathBuf;

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `RUCHE_CONFIG_DIR` names a directory that does not exist.
    #[error("RUCHE_CONFIG_DIR `{0}` is not a directory")]
    MissingConfigDir(PathBuf),
    /// The required `default.toml` is absent.
    #[error("default configuration file not found: `{0}`")]
    MissingDefaultFile(PathBuf),
    /// `RUCHE_ENV` is not a plain name.
    #[error(
        "RUCHE_ENV `{0}` is invalid; accepted: a non-empty name of letters, digits, `-` and `_`"
    )]
    InvalidEnvName(String),
    /// A file or variable could not be parsed, or a value has the wrong type or an unknown variant.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// Values parsed but break a rule; each entry names its key.
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl ConfigError {
    /// Renders every figment error as `` `key.path`: problem (in source) ``, without echoing the offending value
    /// when it could be a secret.
    pub(crate) fn from_figment(error: figment::Error) -> Self {
        let messages: Vec<String> = error.into_iter().map(|e| describe(&e)).collect();
        Self::Parse(messages.join("; "))
    }
}

fn describe(error: &figment::Error) -> String {
    let key = error.path.join(".");
    let kind = if key.split('.').any(super::is_secret_key) {
        // The kind may quote the value (`invalid type: found string "hunter2"`): keep only its category.
        "invalid value (hidden: secret key)".to_owned()
    } else if let figment::error::Kind::UnknownVariant(found, accepted) = &error.kind {
        format!("unknown value `{found}`; accepted: {}", accepted.join(", "))
    } else {
        error.kind.to_string()
    };
    let source = error.metadata.as_ref().map(|md| {
        md.source.as_ref().map_or_else(
            || md.name.to_string(),
            |source| format!("{} {source}", md.name),
        )
    });
    match (key.is_empty(), source) {
        (true, Some(source)) => format!("{kind} (in {source})"),
        (true, None) => kind,
        (false, Some(source)) => format!("`{key}`: {kind} (in {source})"),
        (false, None) => format!("`{key}`: {kind}"),
    }
}
