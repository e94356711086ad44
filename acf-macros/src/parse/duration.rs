//! Duration literals (`"30s"`, `"5m"`, `"1h30m"`, `"500ms"`), resolved to milliseconds at expansion time.

const UNITS: [(&str, u64); 4] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

const EXAMPLES: &str = r#"e.g. "30s", "5m", "1h30m", "500ms""#;

/// Parses a duration literal into milliseconds; the error is the user-facing message.
pub(crate) fn parse_millis(text: &str) -> Result<u64, String> {
    if text.trim().is_empty() {
        return Err(format!(
            "empty duration; write a number followed by `ms`, `s`, `m` or `h`, {EXAMPLES}"
        ));
    }
    let mut rest = text;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(match rest.chars().next() {
                Some('.') => format!(
                    "fractional durations are not supported in `{text}`; use a smaller unit, e.g. \"1500ms\" for 1.5s"
                ),
                Some(c) if c.is_whitespace() => {
                    format!("unexpected whitespace in duration `{text}`; {EXAMPLES}")
                }
                _ => format!("expected a number in duration `{text}`; {EXAMPLES}"),
            });
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.chars().take_while(char::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(match after.chars().next() {
                Some('.') => format!(
                    "fractional durations are not supported in `{text}`; use a smaller unit, e.g. \"1500ms\" for 1.5s"
                ),
                None => format!(
                    "missing unit after `{number}` in duration `{text}`; units are `ms`, `s`, `m`, `h`, {EXAMPLES}"
                ),
                Some(_) => format!(
                    "expected a unit after `{number}` in duration `{text}`; units are `ms`, `s`, `m`, `h`"
                ),
            });
        }
        let Some(&(_, factor)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            let hint = match unit {
                "d" | "w" | "y" => {
                    " (the engine accepts hours at most: write \"48h\" for two days)"
                }
                "sec" | "secs" | "min" | "mins" | "hr" | "hrs" => " (use the short forms)",
                _ => "",
            };
            return Err(format!(
                "unknown unit `{unit}` in duration `{text}`; units are `ms`, `s`, `m`, `h`{hint}"
            ));
        };
        let value: u64 = number
            .parse()
            .map_err(|_| format!("number `{number}` in duration `{text}` is too large"))?;
        total = value
            .checked_mul(factor)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
        rest = after;
    }
    if total == 0 {
        return Err(format!(
            "duration `{text}` is zero; a timeout must be positive, {EXAMPLES}"
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn accepts_documented_forms() {
        assert_eq!(parse_millis("30s"), Ok(30_000));
        assert_eq!(parse_millis("5m"), Ok(300_000));
        assert_eq!(parse_millis("1h30m"), Ok(5_400_000));
        assert_eq!(parse_millis("500ms"), Ok(500));
        assert_eq!(parse_millis("1m30s250ms"), Ok(90_250));
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(parse_millis("").unwrap_err().contains("empty duration"));
        assert!(
            parse_millis("30")
                .unwrap_err()
                .contains("missing unit after `30`")
        );
        assert!(parse_millis("2d").unwrap_err().contains("unknown unit `d`"));
        assert!(parse_millis("1.5s").unwrap_err().contains("fractional"));
        assert!(
            parse_millis("5 m")
                .unwrap_err()
                .contains("expected a unit after `5`")
        );
        assert!(parse_millis("0s").unwrap_err().contains("zero"));
        assert!(
            parse_millis("abc")
                .unwrap_err()
                .contains("expected a number")
        );
        assert!(
            parse_millis("99999999999999999999h")
                .unwrap_err()
                .contains("too large")
        );
    }
}
