//! Worker configuration, layered like the original: `config/default.toml` (required), then
//! `config/{RUCHE_ENV}.toml` (optional, `development` when unset), then `RUCHE_*` environment variables with `__`
//! between nested keys (`RUCHE_JOBS__HATCHET__SERVER_URL`). Tables merge key by key, so one variable changes one
//! leaf; a variable holding JSON (`RUCHE_JOBS='{"hatchet":{...}}'`) sets a whole section. Unknown keys are ignored.
//!
//! The directory is found by [`locate_config_dir`] (see there for the order). Invalid values fail with the key and
//! the accepted values. Secrets ([`Secret`], passwords in [`ConnectionUrl`]s) are redacted in `Debug`, `Display`
//! and error messages.
//!
//! Tests and tools pass an explicit [`EnvVars`] and directory to [`load_from`] instead of mutating the process
//! environment.

mod error;
mod load;
mod secret;
mod sections;
mod validate;

pub use error::ConfigError;
pub use load::{
    CONFIG_DIR_VAR, DEFAULT_ENV, ENV_PREFIX, ENV_VAR, EnvVars, Loaded, NESTING, load, load_from,
    locate_config_dir,
};
pub use secret::{ConnectionUrl, REDACTED, Secret, is_secret_key, redact_url_password};
pub use sections::{
    AccumulationSettings, BrainKind, BrainSettings, CadenceSettings, EventSink, EventsSettings,
    HatchetSettings, JobsSettings, LivenessSettings, LockSettings, LogFormat, LogLevel,
    LoggingConfig, ObservabilitySettings, SessionSettings, SessionStoreSettings, Settings,
    StorageSettings, StoreBackend,
};
