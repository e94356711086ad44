//! Hatchet duration strings (`500ms`, `1m30s`, `1.5s`, `2h`): the registration regex
//! `^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ms|s|m|h))+$` with Go `time.ParseDuration` semantics.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected e.g. \"500ms\", \"30s\", \"1m30s\" or \"2h\"")]
pub struct DurationError(pub String);

/// Parses a Hatchet duration string. Empty strings are rejected (callers apply their own default).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
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

/// Renders a duration the way Python's formatter does for display (`"1m"`, `"90s"`, `"2h"`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    if secs != 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hatchet_forms() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("3.s").unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "", "5", "1d", "1w", "s", ".s", "1..2s", "-1s", "1 s", "1us", "1m 2s", "abc",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn formats_like_python() {
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }
}
