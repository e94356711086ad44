//! Structured logs: one JSON object per line on stdout (or human-readable lines), level from configuration,
//! secrets redacted by key name, ids and timestamps written untouched.
//!
//! # Call-site convention
//!
//! The event name is the `tracing` **message**, in snake_case; everything else is a named field:
//!
//! ```
//! # let session_key = "t:a:i:web"; let lock_key = "sesslock:t:a:i:web"; let fence = 3_u64;
//! tracing::info!(session_key, lock_key = %lock_key, fence, "mutex_acquired");
//! ```
//!
//! gives `{"timestamp":"…Z","level":"info","event":"mutex_acquired","session_key":"t:a:i:web",
//! "lock_key":"sesslock:t:a:i:web","fence":3}`. Use `%` for ids, errors and times (their `Display` text), plain
//! values for numbers and booleans, and no interpolation in the message. Fields of enclosing spans are included,
//! the event's own fields win on a name clash. Levels are written as `trace`, `debug`, `info`, `warning`, `error`.

mod fields;
mod layer;

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

pub use self::layer::EventLayer;
pub use crate::config::{LogFormat, LogLevel, LoggingConfig};

/// Dependencies whose debug output is transport chatter; they are capped at `info` even when the worker logs at
/// `debug` or `trace`.
const CHATTY_TARGETS: [&str; 6] = ["h2", "hyper", "hyper_util", "tower", "tonic", "rustls"];

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A global subscriber (or `log` bridge) is already installed.
    #[error("logging is already initialised")]
    AlreadyInitialised(#[from] tracing_subscriber::util::TryInitError),
}

/// The level filter for `config`: the configured level for everything, chatty transport crates capped at `info`.
pub fn filter(config: &LoggingConfig) -> Targets {
    let level = LevelFilter::from_level(config.level.as_tracing());
    CHATTY_TARGETS
        .iter()
        .fold(Targets::new().with_default(level), |targets, target| {
            targets.with_target(*target, level.min(LevelFilter::INFO))
        })
}

/// The filtered layer writing `config.format` lines to `make_writer`. Tests pass a capturing writer.
pub fn layer<S, W>(config: &LoggingConfig, make_writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    EventLayer::new(config.format, make_writer).with_filter(filter(config))
}

/// Installs the global subscriber writing to stdout, and bridges the `log` crate into it.
pub fn init(config: &LoggingConfig) -> Result<(), LoggingError> {
    init_with(config, None)
}

/// [`init`], plus `spans` (the trace exporter's layer, see [`crate::telemetry`]) on the same subscriber.
pub fn init_with(
    config: &LoggingConfig,
    spans: Option<Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>>,
) -> Result<(), LoggingError> {
    tracing_subscriber::registry()
        .with(spans)
        .with(layer(config, std::io::stdout))
        .try_init()?;
    Ok(())
}
