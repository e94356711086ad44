//! Duration strings as the engine expects them (`^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ms|s|m|h))+$`): the one parser
//! (the engine validates registrations with it) and the two formatters.

use std::time::Duration;

/// Formats a duration exactly like the Python SDK's `timedelta_to_expr`: whole hours if divisible by 3600 s,
/// else whole minutes if divisible by 60 s, else whole seconds; sub-second parts are truncated (so `0` → `0h`,
/// 60 s → `1m`, 90 s → `90s`, 500 ms → `0h`).
pub fn python_expr(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// Formats a duration without losing sub-second precision, for engine calls where Python's truncation would be
/// wrong (e.g. `RefreshTimeout` with `1500ms`): whole-unit forms when exact, otherwise milliseconds.
pub fn precise_expr(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        python_expr(duration)
    } else {
        format!("{}ms", duration.as_millis().max(1))
    }
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected e.g. \"500ms\", \"30s\", \"1m30s\" or \"2h\"")]
pub struct DurationError(pub String);

/// Parses a Hatchet duration string (`1h30m`, `1.5s`, `250ms`) with Go `time.ParseDuration` semantics, as the
/// engine validates registrations. Empty strings are rejected (callers apply their own default).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_owned());
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &text[start..i];
        if !valid_number(number) {
            return Err(err());
        }
        let value: f64 = number.parse().map_err(|_| err())?;
        let rest = &text[i..];
        let (unit_secs, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else {
            return Err(err());
        };
        total += value * unit_secs;
        i += len;
    }
    // Durations beyond ~30 years are nonsense for a scheduler and would overflow Instant arithmetic.
    if !total.is_finite() || total > 1.0e9 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(total))
}

/// `[0-9]+(\.[0-9]*)?` or `\.[0-9]+`.
fn valid_number(number: &str) -> bool {
    match number.split_once('.') {
        None => !number.is_empty(),
        Some((int, frac)) => !frac.contains('.') && (!int.is_empty() || !frac.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_formatter_matches_timedelta_to_expr() {
        assert_eq!(python_expr(Duration::from_secs(60)), "1m");
        assert_eq!(python_expr(Duration::from_secs(90)), "90s");
        assert_eq!(python_expr(Duration::from_secs(300)), "5m");
        assert_eq!(python_expr(Duration::from_secs(7200)), "2h");
        assert_eq!(python_expr(Duration::from_secs(86_400)), "24h");
        assert_eq!(python_expr(Duration::from_millis(1500)), "1s");
        assert_eq!(python_expr(Duration::from_millis(500)), "0h");
    }

    #[test]
    fn precise_keeps_milliseconds() {
        assert_eq!(precise_expr(Duration::from_millis(1500)), "1500ms");
        assert_eq!(precise_expr(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn parses_engine_literals() {
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("3.s"), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "", "5", "1d", "1w", "s", ".s", "1..2s", "-1s", "1 s", "1us", "1m 2s", "abc", "2d",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }
}
