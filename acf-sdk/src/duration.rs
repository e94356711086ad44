//! Duration strings as the engine expects them (`^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ms|s|m|h))+$`).

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

/// Parses a duration literal as accepted by the engine (`1h30m`, `1.5s`, `250ms`); `None` if invalid.
pub fn parse(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let (scale, unit_len) = if tail.starts_with("ms") {
            (0.001, 2)
        } else if tail.starts_with('s') {
            (1.0, 1)
        } else if tail.starts_with('m') {
            (60.0, 1)
        } else if tail.starts_with('h') {
            (3600.0, 1)
        } else {
            return None;
        };
        total += value * scale;
        rest = &tail[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
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
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("2d"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("s"), None);
    }
}
