//! CEL evaluation for concurrency keys, event filters and condition expressions.
//!
//! Expressions are compiled once and kept (see [`compile`]); both compilation and execution run under
//! `catch_unwind`, so no client-supplied expression can take the engine down.

use serde_json::Value;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The expression does not parse.
    #[error("invalid CEL expression {expr:?}: {message}")]
    Parse {
        /// The expression.
        expr: String,
        /// Parser message.
        message: String,
    },
    /// The expression failed at run time.
    #[error("CEL expression {expr:?} failed: {message}")]
    Eval {
        /// The expression.
        expr: String,
        /// Evaluation message.
        message: String,
    },
    /// The result had the wrong type.
    #[error("CEL expression {expr:?} must return a {want}")]
    Type {
        /// The expression.
        expr: String,
        /// Expected type.
        want: &'static str,
    },
}

/// Checks that `expr` parses.
pub(crate) fn check(expr: &str) -> Result<(), ExprError> {
    compile(expr).map(|_| ())
}

/// Compiled programs by expression text. Workflows evaluate the same few expressions (concurrency keys, filters)
/// on every run, and parsing dominates their cost; the cache is emptied when it reaches [`CACHE_CAP`] entries.
static PROGRAMS: LazyLock<Mutex<HashMap<String, Arc<cel::Program>>>> =
    LazyLock::new(Default::default);

/// Most distinct expressions kept compiled.
const CACHE_CAP: usize = 1024;

fn compile(expr: &str) -> Result<Arc<cel::Program>, ExprError> {
    let cache = || PROGRAMS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(program) = cache().get(expr) {
        return Ok(Arc::clone(program));
    }
    let parse_err = |message: String| ExprError::Parse {
        expr: expr.to_owned(),
        message,
    };
    let program = match catch_unwind(|| cel::Program::compile(expr)) {
        Ok(Ok(program)) => Arc::new(program),
        Ok(Err(e)) => return Err(parse_err(e.to_string())),
        Err(_) => return Err(parse_err("parser panicked".to_owned())),
    };
    let mut cache = cache();
    if cache.len() >= CACHE_CAP {
        cache.clear();
    }
    cache.insert(expr.to_owned(), Arc::clone(&program));
    Ok(program)
}

/// Evaluates `expr` with the given JSON variables.
pub(crate) fn eval(expr: &str, vars: &[(&str, &Value)]) -> Result<cel::Value, ExprError> {
    let program = compile(expr)?;
    let eval_err = |message: String| ExprError::Eval {
        expr: expr.to_owned(),
        message,
    };
    let mut context = cel::Context::default();
    for (name, value) in vars {
        context
            .add_variable(*name, (*value).clone())
            .map_err(|e| eval_err(e.to_string()))?;
    }
    match catch_unwind(AssertUnwindSafe(|| program.execute(&context))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(eval_err(e.to_string())),
        Err(_) => Err(eval_err("evaluation panicked".to_owned())),
    }
}

/// Evaluates a boolean expression; an empty expression is `true`.
pub(crate) fn eval_bool(expr: &str, vars: &[(&str, &Value)]) -> Result<bool, ExprError> {
    if expr.trim().is_empty() {
        return Ok(true);
    }
    match eval(expr, vars)? {
        cel::Value::Bool(b) => Ok(b),
        _ => Err(ExprError::Type {
            expr: expr.to_owned(),
            want: "bool",
        }),
    }
}

/// Evaluates a string-valued expression (concurrency keys).
pub fn eval_string(expr: &str, vars: &[(&str, &Value)]) -> Result<String, ExprError> {
    match eval(expr, vars)? {
        cel::Value::String(s) => Ok(s.to_string()),
        _ => Err(ExprError::Type {
            expr: expr.to_owned(),
            want: "string",
        }),
    }
}

/// Evaluates a concurrency `max_runs_expression`: an integer from 0 to `i32::MAX` (0 holds the
/// group); any other result is an error, as in Hatchet.
pub(crate) fn eval_max_runs(expr: &str, vars: &[(&str, &Value)]) -> Result<i32, ExprError> {
    let wrong = || ExprError::Type {
        expr: expr.to_owned(),
        want: "non-negative integer",
    };
    let n: i64 = match eval(expr, vars)? {
        cel::Value::Int(n) => n,
        cel::Value::UInt(n) => i64::try_from(n).map_err(|_| wrong())?,
        _ => return Err(wrong()),
    };
    i32::try_from(n).ok().filter(|n| *n >= 0).ok_or_else(wrong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_keys_and_filters() {
        let input = json!({"group": "a", "n": 3});
        assert_eq!(
            eval_string("input.group", &[("input", &input)]).unwrap(),
            "a"
        );
        assert_eq!(eval_string("'constant'", &[]).unwrap(), "constant");
        assert!(eval_bool("input.n > 2", &[("input", &input)]).unwrap());
        assert!(!eval_bool("input.n > 5", &[("input", &input)]).unwrap());
        assert!(eval_bool("", &[]).unwrap());
    }

    #[test]
    fn max_runs_must_be_a_non_negative_integer() {
        let input = json!({"tier": "premium", "limit": 3, "neg": -2, "zero": 0, "name": "abc"});
        let vars = [("input", &input)];
        assert_eq!(
            eval_max_runs("input.tier == 'premium' ? 10 : 1", &vars),
            Ok(10)
        );
        assert_eq!(eval_max_runs("input.limit", &vars), Ok(3));
        assert_eq!(eval_max_runs("input.zero", &vars), Ok(0));
        assert!(eval_max_runs("input.neg", &vars).is_err());
        assert!(eval_max_runs("input.name", &vars).is_err());
        assert!(eval_max_runs("input.missing", &vars).is_err());
        assert!(eval_max_runs("1.5", &vars).is_err());
    }

    #[test]
    fn reports_errors_without_panicking() {
        assert!(matches!(check("input.("), Err(ExprError::Parse { .. })));
        assert!(matches!(
            eval_string("1 + 1", &[]),
            Err(ExprError::Type { .. })
        ));
        let input = json!({});
        assert!(eval_string("input.missing", &[("input", &input)]).is_err());
        assert!(eval_bool("undefined_var", &[]).is_err());
    }
}
