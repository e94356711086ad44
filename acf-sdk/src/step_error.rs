//! Errors a step returns ([`StepError`]) and how they map onto the engine's failure report.
//!
//! `StepError` deliberately does not implement [`std::error::Error`] itself (the same trick `anyhow` uses): that is
//! what allows a blanket `From<E: Error>` so `?` works on any error inside a step. Its causes are kept as a chain
//! of real `Error` values ([`StepError::source_error`]) and it converts into `Box<dyn Error + Send + Sync>`.

use std::error::Error as StdError;
use std::fmt;

/// Boxed, thread-safe error used as the cause of a [`StepError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a step failed. Every variant is reported to the engine as a `FAILED` event with the rendered text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepErrorKind {
    /// The user's code failed (an error returned from the handler): prints as that error, whose causes are
    /// its own `source()` chain.
    #[error(transparent)]
    User(BoxError),
    /// A failure with a plain message.
    #[error("{0}")]
    Message(String),
    /// The workflow input or a parent output could not be decoded into the step's parameter type.
    #[error("step `{step}`: cannot decode {field}")]
    Decode {
        /// Step (task readable id) whose argument failed to decode.
        step: String,
        /// What was decoded: `input`, or ``parent output `NAME` ``.
        field: String,
        /// The serde error, which names the offending JSON path where it can.
        #[source]
        source: serde_json::Error,
    },
    /// The step's output could not be encoded as a JSON object.
    #[error("step `{step}`: cannot encode output: {reason}")]
    Encode {
        /// Step whose output was rejected.
        step: String,
        /// Why (serde error text, or "not a JSON object").
        reason: String,
    },
    /// The step panicked; the panic message is kept.
    #[error("step `{step}` panicked: {message}")]
    Panicked {
        /// Step that panicked.
        step: String,
        /// The panic payload rendered as text.
        message: String,
    },
    /// The worker received an action it has no handler for.
    #[error("no step registered for action `{0}`")]
    UnknownAction(String),
    /// The step was cancelled (engine `CANCEL_STEP_RUN`, or the worker shut down).
    #[error("step cancelled: {0}")]
    Cancelled(String),
}

/// The error type of a step: retryable by default, or non-retryable (sets `should_not_retry` on the wire).
///
/// ```
/// use acf_sdk::StepError;
/// fn parse(n: &str) -> Result<u32, StepError> {
///     // `?` works on any std error; the failure is retried by the engine (if the step has retries).
///     let v: u32 = n.parse()?;
///     if v == 0 {
///         // A permanent failure: the engine will not retry.
///         return Err(StepError::non_retryable("zero is not allowed"));
///     }
///     Ok(v)
/// }
/// assert!(parse("0").unwrap_err().is_non_retryable());
/// assert!(!parse("x").unwrap_err().is_non_retryable());
/// ```
pub struct StepError {
    kind: StepErrorKind,
    non_retryable: bool,
}

impl StepError {
    /// A retryable failure with a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::from_kind(StepErrorKind::Message(message.to_string()))
    }

    /// A non-retryable failure with a message: the engine fails the run without consuming further retries.
    pub fn non_retryable(message: impl fmt::Display) -> Self {
        Self::msg(message).into_non_retryable()
    }

    /// Wraps any error as a retryable failure, keeping it as the source.
    pub fn new(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::from_kind(StepErrorKind::User(Box::new(error)))
    }

    /// Wraps an already boxed error (for example from `anyhow::Error::into()`) as a retryable failure.
    pub fn from_boxed(error: BoxError) -> Self {
        Self::from_kind(StepErrorKind::User(error))
    }

    /// Builds an error from a kind. Decode errors are non-retryable (the same payload decodes the same way).
    pub fn from_kind(kind: StepErrorKind) -> Self {
        let non_retryable = matches!(
            kind,
            StepErrorKind::Decode { .. }
                | StepErrorKind::Encode { .. }
                | StepErrorKind::UnknownAction(_)
        );
        Self {
            kind,
            non_retryable,
        }
    }

    /// A decode error that names the step and the field (`input` or `parent output \`name\``).
    pub fn decode(
        step: impl Into<String>,
        field: impl Into<String>,
        source: serde_json::Error,
    ) -> Self {
        Self::from_kind(StepErrorKind::Decode {
            step: step.into(),
            field: field.into(),
            source,
        })
    }

    /// Marks this error non-retryable.
    #[must_use]
    pub fn into_non_retryable(mut self) -> Self {
        self.non_retryable = true;
        self
    }

    /// Marks this error retryable (undoing the default for decode errors, for instance).
    #[must_use]
    pub fn into_retryable(mut self) -> Self {
        self.non_retryable = false;
        self
    }

    /// Whether the engine must not retry the step (`should_not_retry`).
    pub fn is_non_retryable(&self) -> bool {
        self.non_retryable
    }

    /// The kind of failure.
    pub fn kind(&self) -> &StepErrorKind {
        &self.kind
    }

    /// The failure as a standard error: the user's own error for a user failure (so it can be downcast),
    /// otherwise the kind, whose `source()` chain holds the cause.
    pub fn source_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        match &self.kind {
            StepErrorKind::User(error) => error.as_ref(),
            kind => kind,
        }
    }

    /// The text reported in the `FAILED` event: a Python-parsable header line `<Type>: <message>`, followed by the
    /// cause chain (one `caused by:` line per source).
    pub fn to_report(&self) -> String {
        let ty = if self.non_retryable {
            "NonRetryableException"
        } else {
            "StepError"
        };
        let mut out = format!("{ty}: {}", self.kind);
        for cause in crate::error::shown_causes(&self.kind) {
            out.push_str("\ncaused by: ");
            out.push_str(&cause);
        }
        out
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepError")
            .field("kind", &self.kind)
            .field("non_retryable", &self.non_retryable)
            .finish()
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for StepError {
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

/// Lets a `StepError` flow into code that expects a boxed standard error.
impl From<StepError> for BoxError {
    fn from(error: StepError) -> Self {
        Box::new(error.kind)
    }
}

/// Converts a `Result`'s error into a [`StepError`] with an explicit retry decision.
pub trait ResultExt<T> {
    /// Fails the step without retries if this is an `Err`.
    fn non_retryable(self) -> Result<T, StepError>;
    /// Fails the step (retryable) with the error's text if this is an `Err`; for error types that do not
    /// implement `std::error::Error` (e.g. `anyhow::Error`).
    fn retryable(self) -> Result<T, StepError>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn non_retryable(self) -> Result<T, StepError> {
        self.map_err(StepError::non_retryable)
    }

    fn retryable(self) -> Result<T, StepError> {
        self.map_err(StepError::msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn user_errors_are_retryable_and_keep_their_chain() {
        let err: StepError = Outer(std::io::Error::other("disk full")).into();
        assert!(!err.is_non_retryable());
        assert_eq!(err.to_string(), "outer");
        assert_eq!(err.to_report(), "StepError: outer\ncaused by: disk full");
    }

    #[test]
    fn non_retryable_report_uses_the_python_type_name() {
        let err = StepError::non_retryable("bad card");
        assert!(err.is_non_retryable());
        assert_eq!(err.to_report(), "NonRetryableException: bad card");
    }

    #[test]
    fn decode_errors_name_step_and_field_and_do_not_retry() {
        let source = serde_json::from_str::<u32>("\"x\"").unwrap_err();
        let err = StepError::decode("collect", "parent output `start`", source);
        assert!(err.is_non_retryable());
        assert_eq!(
            err.to_string(),
            "step `collect`: cannot decode parent output `start`"
        );
        assert!(
            err.to_report().starts_with(
                "NonRetryableException: step `collect`: cannot decode parent output `start`\ncaused by: invalid type"
            ),
            "{}",
            err.to_report()
        );
        assert!(!err.into_retryable().is_non_retryable());
    }

    #[test]
    fn result_ext_maps_display_errors() {
        let r: Result<(), &str> = Err("nope");
        let e = r.non_retryable().unwrap_err();
        assert!(e.is_non_retryable());
        assert_eq!(e.to_string(), "nope");
    }
}
