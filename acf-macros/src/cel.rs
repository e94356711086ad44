//! CEL expressions parsed at expansion time with the parser the embedded engine uses (the `cel` crate), so a
//! syntax error in a filter, a condition or a concurrency key fails the build instead of the registration or
//! the run. Only syntax is checked: which variables exist (`input`, `output`, `additional_metadata`, ...)
//! depends on where the engine evaluates the expression.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Why `expression` does not parse, or `None` when it does.
pub(crate) fn parse_error(expression: &str) -> Option<String> {
    if expression.trim().is_empty() {
        return Some("the expression is empty".to_owned());
    }
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

#[cfg(test)]
mod tests {
    use super::parse_error;

    #[test]
    fn accepts_valid_and_reports_invalid_expressions() {
        assert_eq!(parse_error("output.total > 0 && input.ok"), None);
        assert_eq!(parse_error("'constant'"), None);
        assert!(parse_error("output.total >").is_some());
        assert!(parse_error("input.(x").is_some());
        assert!(parse_error("  ").is_some());
    }
}
