//! CEL expressions parsed at expansion time with the parser the embedded engine uses (the `cel` crate), so a
//! syntax error in a filter, a condition or a concurrency key fails the build instead of the registration or
//! the run. Only syntax is checked: which variables exist (`input`, `output`, `additional_metadata`, ...)
//! depends on where the engine evaluates the expression.
//!
//! The parser (the `cel` crate and its ANTLR runtime) is compiled only with this crate's `cel` feature, which
//! acf-sdk's `cel-check` (and so its `engine`) feature turns on; without it only emptiness is checked here and
//! the engine reports a syntax error when the workflow registers.

/// Why `expression` does not parse, or `None` when it does.
pub(crate) fn parse_error(expression: &str) -> Option<String> {
    if expression.trim().is_empty() {
        return Some("the expression is empty".to_owned());
    }
    syntax_error(expression)
}

/// Why the CEL parser rejects `expression`.
#[cfg(feature = "cel")]
fn syntax_error(expression: &str) -> Option<String> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    // The generated ANTLR parser can panic on pathological input; a panic must not abort the compiler.
    match catch_unwind(AssertUnwindSafe(|| {
        cel::parser::Parser::new().parse(expression)
    })) {
        Ok(Ok(_)) => None,
        Ok(Err(errors)) => Some(
            errors
                .errors
                .iter()
                .map(|e| format!("{}:{}: {}", e.pos.0, e.pos.1, e.msg))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(_) => Some("the CEL parser could not read it".to_owned()),
    }
}

/// Without the parser, syntax is left to the engine.
#[cfg(not(feature = "cel"))]
fn syntax_error(_expression: &str) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::parse_error;

    #[test]
    fn rejects_empty_expressions() {
        assert!(parse_error("  ").is_some());
        assert_eq!(parse_error("output.total > 0 && input.ok"), None);
    }

    #[cfg(feature = "cel")]
    #[test]
    fn accepts_valid_and_reports_invalid_expressions() {
        assert_eq!(parse_error("output.total > 0 && input.ok"), None);
        assert_eq!(parse_error("'constant'"), None);
        assert!(parse_error("output.total >").is_some());
        assert!(parse_error("input.(x").is_some());
    }
}
