//! `wait_for` / `skip_if` / `cancel_if` on a `#[step]`:
//!
//! ```text
//! wait_for = sleep("10s")                                   one condition
//! wait_for = any(sleep("10s"), event("order:approved"))     one or-group: any member satisfies it
//! wait_for = [parent(check, "output.ok"), any(...)]         all of the list (each entry is its own group)
//! ```
//!
//! with `sleep("10s")`, `event("key", filter = "CEL", scope = "...")` and `parent(step, "CEL over output")`, each
//! taking an optional `key = "..."` (the readable data key the outcome is reported under).

use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprCall, ExprLit, Lit, LitStr};

use super::{duration, options};
use crate::ctxt::Ctxt;
use crate::model::{Condition, ConditionAction, ConditionClause, ConditionKind, DurationLit};
use crate::suggest::{did_you_mean, one_of};

const FUNCTIONS: [&str; 4] = ["sleep", "event", "parent", "any"];

const FORMS: &str = r#"`sleep("10s")`, `event("order:approved", filter = "input.ok", scope = "...")`, `parent(step, "output.total > 0")`, `any(...)` of those, or a list `[...]` of any of these (all must hold)"#;

/// Reads the value of one condition option.
pub(crate) fn parse(cx: &Ctxt, action: ConditionAction, value: &Expr) -> ConditionClause {
    let groups = match value {
        Expr::Array(array) => array
            .elems
            .iter()
            .filter_map(|elem| group(cx, elem))
            .collect(),
        other => group(cx, other).into_iter().collect(),
    };
    ConditionClause { action, groups }
}

/// One and-ed entry: `any(...)` or a single condition.
fn group(cx: &Ctxt, expr: &Expr) -> Option<Vec<Condition>> {
    let call = call_of(cx, expr)?;
    if function_name(call).as_deref() == Some("any") {
        if call.args.is_empty() {
            cx.error_spanned_by(
                call,
                "`any()` needs at least one condition, e.g. `any(sleep(\"10s\"), event(\"order:approved\"))`",
            );
            return None;
        }
        let members = call
            .args
            .iter()
            .filter_map(|arg| {
                let inner = call_of(cx, arg)?;
                if function_name(inner).as_deref() == Some("any") {
                    cx.error_spanned_by(
                        &inner.func,
                        "`any(...)` cannot be nested: list every alternative in one `any(...)`",
                    );
                    return None;
                }
                condition(cx, inner)
            })
            .collect();
        Some(members)
    } else {
        condition(cx, call).map(|c| vec![c])
    }
}

fn call_of<'e>(cx: &Ctxt, expr: &'e Expr) -> Option<&'e ExprCall> {
    match expr {
        Expr::Call(call) => Some(call),
        Expr::Paren(paren) => call_of(cx, &paren.expr),
        Expr::Group(group) => call_of(cx, &group.expr),
        other => {
            cx.error_spanned_by(other, format!("expected a condition: {FORMS}"));
            None
        }
    }
}

fn function_name(call: &ExprCall) -> Option<String> {
    match &*call.func {
        Expr::Path(path) if path.qself.is_none() => path.path.get_ident().map(ToString::to_string),
        _ => None,
    }
}

fn condition(cx: &Ctxt, call: &ExprCall) -> Option<Condition> {
    let Some(name) = function_name(call) else {
        cx.error_spanned_by(&call.func, format!("expected a condition: {FORMS}"));
        return None;
    };
    let args = Args::split(cx, call);
    if args.malformed {
        return None; // reported; the shape checks below would only repeat it
    }
    let kind = match name.as_str() {
        "sleep" => sleep(cx, call, &args),
        "event" => event(cx, call, &args),
        "parent" => parent(cx, call, &args),
        other => {
            cx.error_spanned_by(
                &call.func,
                format!(
                    "unknown condition `{other}`{}\nconditions are: {}",
                    did_you_mean(other, FUNCTIONS),
                    one_of(FUNCTIONS)
                ),
            );
            return None;
        }
    }?;
    Some(Condition {
        span: call.span(),
        kind,
        key: args.named(cx, "key"),
    })
}

/// A condition call's arguments: positional ones first, then `name = "literal"` ones.
struct Args<'e> {
    positional: Vec<&'e Expr>,
    named: Vec<(String, &'e Expr, Span)>,
    /// A positional argument after a named one (already reported).
    malformed: bool,
}

impl<'e> Args<'e> {
    fn split(cx: &Ctxt, call: &'e ExprCall) -> Self {
        let mut positional = Vec::new();
        let mut named = Vec::new();
        let mut malformed = false;
        for arg in &call.args {
            match arg {
                Expr::Assign(assign) => {
                    let name = match &*assign.left {
                        Expr::Path(path) => path.path.get_ident().map(ToString::to_string),
                        _ => None,
                    };
                    match name {
                        Some(name) if named.iter().any(|(seen, _, _)| *seen == name) => {
                            cx.error_spanned_by(
                                &assign.left,
                                format!("duplicate argument `{name}`; set it once"),
                            );
                        }
                        Some(name) => named.push((name, &*assign.right, assign.left.span())),
                        None => cx.error_spanned_by(&assign.left, "expected an argument name"),
                    }
                }
                other if named.is_empty() => positional.push(other),
                other => {
                    malformed = true;
                    cx.error_spanned_by(
                        other,
                        "positional arguments come before named ones (`name = value`)",
                    );
                }
            }
        }
        Args {
            positional,
            named,
            malformed,
        }
    }

    /// A named string argument, consumed (so leftovers can be reported as unknown).
    fn named(&self, cx: &Ctxt, name: &str) -> Option<LitStr> {
        let (_, value, _) = self.named.iter().find(|(n, _, _)| n == name)?;
        lit_str(cx, value, name)
    }

    /// Reports named arguments outside `allowed`.
    fn only(&self, cx: &Ctxt, function: &str, allowed: &[&'static str]) {
        for (name, _, span) in &self.named {
            if !allowed.contains(&name.as_str()) {
                cx.error_at(
                    *span,
                    format!(
                        "unknown `{function}` argument `{name}`{}\n`{function}` takes: {}",
                        did_you_mean(name, allowed.iter().copied()),
                        one_of(allowed.iter().copied())
                    ),
                );
            }
        }
    }
}

fn lit_str(cx: &Ctxt, expr: &Expr, what: &str) -> Option<LitStr> {
    options::lit_str_or(cx, expr, || format!("`{what}` takes a string literal"))
}

fn sleep(cx: &Ctxt, call: &ExprCall, args: &Args<'_>) -> Option<ConditionKind> {
    args.only(cx, "sleep", &["key"]);
    let [duration] = args.positional.as_slice() else {
        cx.error_spanned_by(call, "`sleep` takes one duration, e.g. `sleep(\"10s\")`");
        return None;
    };
    let lit = lit_str(cx, duration, "sleep")?;
    match duration::parse_millis(&lit.value()) {
        Ok(millis) => Some(ConditionKind::Sleep(DurationLit {
            millis,
            span: lit.span(),
        })),
        Err(message) => {
            cx.error_spanned_by(&lit, message);
            None
        }
    }
}

fn event(cx: &Ctxt, call: &ExprCall, args: &Args<'_>) -> Option<ConditionKind> {
    args.only(cx, "event", &["filter", "scope", "key"]);
    let [key] = args.positional.as_slice() else {
        cx.error_spanned_by(
            call,
            "`event` takes the event key, then optional `filter = \"CEL\"` and `scope = \"...\"`, e.g. `event(\"order:approved\", filter = \"input.ok\")`",
        );
        return None;
    };
    Some(ConditionKind::Event {
        key: lit_str(cx, key, "event")?,
        filter: args.named(cx, "filter"),
        scope: args.named(cx, "scope"),
    })
}

fn parent(cx: &Ctxt, call: &ExprCall, args: &Args<'_>) -> Option<ConditionKind> {
    args.only(cx, "parent", &["key"]);
    let (step, expression) = match args.positional.as_slice() {
        [step] => (*step, None),
        [step, expression] => (*step, lit_str(cx, expression, "parent").map(Some)?),
        _ => {
            cx.error_spanned_by(
                call,
                "`parent` takes a parent step and an optional CEL expression over its `output`, e.g. `parent(check, \"output.total > 0\")`",
            );
            return None;
        }
    };
    let parent = match step {
        Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
            path.path.get_ident().cloned()?
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            options::quoted_parent(cx, s);
            return None;
        }
        other => {
            cx.error_spanned_by(
                other,
                "expected the parent step's method name, e.g. `parent(check, \"output.ok\")`",
            );
            return None;
        }
    };
    Some(ConditionKind::Parent { parent, expression })
}
