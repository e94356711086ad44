//! `concurrency(expression = "...", max_runs = N, strategy = "...")`, on workflows and on steps (repeatable).

use syn::Meta;

use super::options::{self, OptionSpec};
use crate::ctxt::Ctxt;
use crate::model::{Concurrency, StrOrConst, Strategy};

const CONCURRENCY_SPECS: &[OptionSpec<Concurrency>] = &[
    OptionSpec {
        name: "expression",
        repeatable: false,
        read: read_expression,
    },
    OptionSpec {
        name: "max_runs",
        repeatable: false,
        read: read_max_runs,
    },
    OptionSpec {
        name: "strategy",
        repeatable: false,
        read: read_strategy,
    },
];

/// Reads one `concurrency(...)` option.
pub(crate) fn parse(cx: &Ctxt, meta: &Meta) -> Option<Concurrency> {
    const EXAMPLE: &str = r#"concurrency(expression = "input.user_id", max_runs = 1, strategy = "group_round_robin")"#;
    let metas = options::nested(cx, meta, EXAMPLE)?;
    let mut concurrency = Concurrency {
        keyword: syn::spanned::Spanned::span(meta.path()),
        expression: None,
        max_runs: None,
        strategy: None,
    };
    options::read_options(
        cx,
        "concurrency",
        CONCURRENCY_SPECS,
        &metas,
        &mut concurrency,
    );
    if concurrency.expression.is_none() && concurrency.max_runs.is_none() {
        cx.error_at(
            concurrency.keyword,
            format!(
                "`concurrency` needs an `expression` (a CEL group key) or `max_runs` (one global group), e.g. `{EXAMPLE}`"
            ),
        );
    }
    Some(concurrency)
}

/// A CEL string literal, or a path to a `&str` constant holding one (so a key shared with other code is
/// stated once).
fn read_expression(cx: &Ctxt, c: &mut Concurrency, meta: &Meta) {
    const EXAMPLE: &str = r#"expression = "input.user_id"` or `expression = SESSION_KEY"#;
    let Some(value) = options::value(cx, meta, EXAMPLE) else {
        return;
    };
    c.expression = match value {
        syn::Expr::Path(path) if path.qself.is_none() => Some(StrOrConst::Const(path.path.clone())),
        other => options::lit_str(cx, other, EXAMPLE).map(StrOrConst::Lit),
    };
}

fn read_max_runs(cx: &Ctxt, c: &mut Concurrency, meta: &Meta) {
    c.max_runs = options::value(cx, meta, "max_runs = 1")
        .and_then(|v| options::lit_int(cx, v, "max_runs = 1"));
}

fn read_strategy(cx: &Ctxt, c: &mut Concurrency, meta: &Meta) {
    const CHOICES: &[(&str, Strategy)] = &[
        ("group_round_robin", Strategy::GroupRoundRobin),
        ("cancel_in_progress", Strategy::CancelInProgress),
        ("cancel_newest", Strategy::CancelNewest),
    ];
    let Some(v) = options::value(cx, meta, r#"strategy = "group_round_robin""#) else {
        return;
    };
    // The engine rejects the deprecated strategies; say so instead of "unknown".
    if let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(s),
        ..
    }) = v
        && matches!(s.value().as_str(), "drop_newest" | "queue_newest")
    {
        cx.error_spanned_by(
            s,
            format!("`{}` is deprecated and rejected by the engine; use `cancel_newest`, `cancel_in_progress` or `group_round_robin`", s.value()),
        );
        return;
    }
    c.strategy = options::choice(cx, v, "concurrency strategy", CHOICES);
}
