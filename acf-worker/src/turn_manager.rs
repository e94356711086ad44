//! The accumulation window: how long to wait for more messages before a turn is processed.
//!
//! Pure and synchronous. [`TurnManager::suggest_wait_ms`] reproduces the original Python `suggest_wait_ms`
//! exactly, quirks included (they are pinned by the reference tests):
//! * shape classification uses the trimmed text, but the punctuation check of "explicit completion" looks at the
//!   raw text, so `"x.  "` is complete-looking yet gets no -300 ms;
//! * the entity rule has no word boundary (`"I already paid"` ends with `id`);
//! * an empty custom channel table falls back to the standard table (Python's `table or DEFAULTS`);
//! * the clamp is `max(min, min(value, max))`, so `min` wins when the bounds are inverted;
//! * with the default 200 ms floor the result is never 0, even on `email`/`api` whose base is 0.
//!
//! Whitespace follows Python's `str.isspace`, which also counts U+001C..=U+001F.

use std::collections::HashMap;

pub use crate::models::{AccumulationHint, MessageShape, UserCadenceStats};

/// Base window, in ms, for a channel missing from the table.
pub const UNKNOWN_CHANNEL_WAIT_MS: u64 = 800;

/// Texts that count as a bare greeting (after trimming and lowercasing; exact match).
pub const GREETINGS: [&str; 10] = [
    "hi",
    "hello",
    "hey",
    "hiya",
    "good morning",
    "good afternoon",
    "good evening",
    "morning",
    "afternoon",
    "evening",
];

/// The standard per-channel base windows, in ms.
pub const STANDARD_CHANNEL_DEFAULTS: [(&str, u64); 10] = [
    ("whatsapp", 1200),
    ("telegram", 1000),
    ("sms", 800),
    ("web", 600),
    ("webchat", 600),
    ("email", 0),
    ("voice", 0),
    ("slack", 800),
    ("teams", 800),
    ("api", 0),
];

const FRAGMENT_ENDINGS: [&str; 4] = ["...", ",", "-", ":"];
const ENTITY_WORDS: [&str; 4] = ["order", "ticket", "case", "id"];
const COMPLETION_PUNCTUATION: [char; 3] = ['.', '?', '!'];
const POLITE_ENDINGS: [&str; 3] = ["please", "thanks", "thank you"];
const EXPLICIT_COMPLETION_REDUCTION_MS: i64 = 300;
const MIN_CADENCE_SAMPLES: u64 = 5;

/// Computes accumulation windows from channel, message shape, cadence, brain hint and message count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnManager {
    min_wait_ms: u64,
    max_wait_ms: u64,
    channel_defaults: HashMap<String, u64>,
}

impl Default for TurnManager {
    /// The `[accumulation]` defaults: bounds 200..=3000 ms and the standard channel table.
    fn default() -> Self {
        crate::config::AccumulationSettings::default().turn_manager()
    }
}

impl TurnManager {
    /// A manager with the given bounds and channel table.
    ///
    /// A non-empty table *replaces* the standard one (channels missing from it get 800 ms); an empty table means
    /// "use the standard one", as in the original.
    pub fn new<K: Into<String>>(
        min_wait_ms: u64,
        max_wait_ms: u64,
        channel_defaults: impl IntoIterator<Item = (K, u64)>,
    ) -> Self {
        let mut table: HashMap<String, u64> = channel_defaults
            .into_iter()
            .map(|(channel, wait)| (channel.into(), wait))
            .collect();
        if table.is_empty() {
            table = standard_channel_defaults();
        }
        Self {
            min_wait_ms,
            max_wait_ms,
            channel_defaults: table,
        }
    }

    /// Lower bound of the window, in ms.
    pub fn min_wait_ms(&self) -> u64 {
        self.min_wait_ms
    }

    /// Upper bound of the window, in ms.
    pub fn max_wait_ms(&self) -> u64 {
        self.max_wait_ms
    }

    /// The base window for a channel (800 ms when the channel is not in the table).
    pub fn channel_default_ms(&self, channel: &str) -> u64 {
        self.channel_defaults
            .get(channel)
            .copied()
            .unwrap_or(UNKNOWN_CHANNEL_WAIT_MS)
    }

    /// How long to wait for another message after `content` arrived, in ms.
    ///
    /// `messages_in_turn` counts the messages already in the turn, this one included; 0 behaves like 1.
    pub fn suggest_wait_ms(
        &self,
        content: &str,
        channel: &str,
        cadence: Option<&UserCadenceStats>,
        hint: Option<&AccumulationHint>,
        messages_in_turn: usize,
    ) -> u64 {
        let min = saturating_i64(self.min_wait_ms);
        let mut base = saturating_i64(self.channel_default_ms(channel));
        base += analyze_message_shape(content).wait_adjustment_ms();
        if has_explicit_completion(content) {
            base = min.max(base - EXPLICIT_COMPLETION_REDUCTION_MS);
        }
        base = adapt_to_user_cadence(base, cadence);
        base += hint_adjustment_ms(hint);
        if messages_in_turn > 1 {
            // Python computes `0.8 ** k` with C `pow`; `powf` reproduces its rounding, repeated multiplication does not.
            let exponent = (messages_in_turn - 1) as f64;
            base = (base as f64 * 0.8_f64.powf(exponent)) as i64;
        }
        self.clamp(base)
    }

    /// `max(min, min(value, max))`, as the original wrote it.
    pub fn clamp(&self, value: i64) -> u64 {
        let clamped = value
            .min(saturating_i64(self.max_wait_ms))
            .max(saturating_i64(self.min_wait_ms));
        u64::try_from(clamped).unwrap_or(0)
    }
}

/// The standard channel table as an owned map.
pub fn standard_channel_defaults() -> HashMap<String, u64> {
    STANDARD_CHANNEL_DEFAULTS
        .iter()
        .map(|(channel, wait)| ((*channel).to_owned(), *wait))
        .collect()
}

/// Classifies how complete a message looks. The first matching rule wins.
pub fn analyze_message_shape(text: &str) -> MessageShape {
    let trimmed = py_trim(text);
    let lower = trimmed.to_lowercase();
    if GREETINGS.contains(&lower.as_str()) {
        MessageShape::GreetingOnly
    } else if FRAGMENT_ENDINGS
        .iter()
        .any(|ending| trimmed.ends_with(ending))
    {
        MessageShape::Fragment
    } else if ends_with_entity_reference(&lower) {
        MessageShape::IncompleteEntity
    } else if py_split(trimmed).count() < 3 && !has_explicit_completion(trimmed) {
        MessageShape::PossiblyIncomplete
    } else {
        MessageShape::LikelyComplete
    }
}

/// True when the raw text ends with `.`, `?` or `!`, or its trimmed lowercase form ends with `please`, `thanks`
/// or `thank you` (suffix match, no word boundary).
pub fn has_explicit_completion(text: &str) -> bool {
    let lower = py_trim(text).to_lowercase();
    text.ends_with(COMPLETION_PUNCTUATION)
        || POLITE_ENDINGS.iter().any(|ending| lower.ends_with(ending))
}

/// Python's `re.search(r"(order|ticket|case|id)\s*#?\s*$", lower)`: an entity word, optional spaces, an optional
/// `#`, optional spaces, end of text. No word boundary before the entity word.
fn ends_with_entity_reference(lower: &str) -> bool {
    let rest = lower.trim_end_matches(py_is_space);
    let rest = rest
        .strip_suffix('#')
        .map_or(rest, |before| before.trim_end_matches(py_is_space));
    ENTITY_WORDS.iter().any(|word| rest.ends_with(word))
}

/// Blends the base 60/40 with the user's typical gap, `(p50 + p95) / 2`, once 5 samples exist.
pub fn adapt_to_user_cadence(base: i64, cadence: Option<&UserCadenceStats>) -> i64 {
    match cadence {
        Some(stats) if stats.sample_count >= MIN_CADENCE_SAMPLES => {
            let typical = (u128::from(stats.inter_message_p50_ms)
                + u128::from(stats.inter_message_p95_ms))
                / 2;
            (base as f64 * 0.6 + typical as f64 * 0.4) as i64
        }
        _ => base,
    }
}

/// +1000 when a required field is awaited, else +500 when a follow-up is expected, else -200 when the brain is
/// more than 80% sure the input is complete, else 0.
pub fn hint_adjustment_ms(hint: Option<&AccumulationHint>) -> i64 {
    match hint {
        None => 0,
        Some(hint) if hint.awaiting_required_field => 1000,
        Some(hint) if hint.expects_followup => 500,
        Some(hint) if hint.input_complete_confidence > 0.8 => -200,
        Some(_) => 0,
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Python's `str.isspace`: Unicode White_Space plus the separators U+001C..=U+001F.
fn py_is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_trim(text: &str) -> &str {
    text.trim_matches(py_is_space)
}

fn py_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(py_is_space).filter(|word| !word.is_empty())
}
