//! `#[step(...)]` and `#[on_failure(...)]` options.

use syn::{Expr, ExprLit, Lit, Meta};

use super::concurrency;
use super::conditions;
use super::duration;
use super::options::{self, OptionSpec};
use crate::ctxt::Ctxt;
use crate::model::{
    Comparator, ConditionAction, DurationLit, IntOrExpr, LabelValue, RateLimit, RateLimitDuration,
    SlotRequest, Spanned, StepKind, StepOptions, WorkerLabel,
};

/// An option given at most once.
const fn once<T>(name: &'static str, read: fn(&Ctxt, &mut T, &Meta)) -> OptionSpec<T> {
    OptionSpec {
        name,
        repeatable: false,
        read,
    }
}

/// An option that may be given several times.
const fn repeatable<T>(name: &'static str, read: fn(&Ctxt, &mut T, &Meta)) -> OptionSpec<T> {
    OptionSpec {
        name,
        repeatable: true,
        read,
    }
}

const NAME: OptionSpec<StepOptions> = once("name", read_name);
const PARENTS: OptionSpec<StepOptions> = once("parents", read_parents);
const RETRIES: OptionSpec<StepOptions> = once("retries", read_retries);
const BACKOFF_FACTOR: OptionSpec<StepOptions> = once("backoff_factor", read_backoff_factor);
const BACKOFF_MAX: OptionSpec<StepOptions> = once("backoff_max", read_backoff_max);
const EXECUTION_TIMEOUT: OptionSpec<StepOptions> =
    once("execution_timeout", read_execution_timeout);
const SCHEDULE_TIMEOUT: OptionSpec<StepOptions> = once("schedule_timeout", read_schedule_timeout);
const CONCURRENCY: OptionSpec<StepOptions> = repeatable("concurrency", read_concurrency);
const RATE_LIMIT: OptionSpec<StepOptions> = repeatable("rate_limit", read_rate_limit);
const WORKER_LABEL: OptionSpec<StepOptions> = repeatable("worker_label", read_worker_label);
const DURABLE: OptionSpec<StepOptions> = once("durable", read_durable);
const SLOTS: OptionSpec<StepOptions> = once("slots", read_slots);
const WAIT_FOR: OptionSpec<StepOptions> = once("wait_for", read_wait_for);
const SKIP_IF: OptionSpec<StepOptions> = once("skip_if", read_skip_if);
const CANCEL_IF: OptionSpec<StepOptions> = once("cancel_if", read_cancel_if);

/// Every `#[step]` option, in the order the error messages list them.
const STEP_SPECS: &[OptionSpec<StepOptions>] = &[
    NAME,
    PARENTS,
    RETRIES,
    BACKOFF_FACTOR,
    BACKOFF_MAX,
    EXECUTION_TIMEOUT,
    SCHEDULE_TIMEOUT,
    CONCURRENCY,
    RATE_LIMIT,
    WORKER_LABEL,
    DURABLE,
    SLOTS,
    WAIT_FOR,
    SKIP_IF,
    CANCEL_IF,
];

/// `#[on_failure]` / `#[on_success]` run after the DAG has failed / succeeded: they have no parents of their
/// own, no conditions and are never durable (Python's `on_failure_task` / `on_success_task` take the same).
const ON_FAILURE_SPECS: &[OptionSpec<StepOptions>] = &[
    NAME,
    RETRIES,
    BACKOFF_FACTOR,
    BACKOFF_MAX,
    EXECUTION_TIMEOUT,
    SCHEDULE_TIMEOUT,
    CONCURRENCY,
    RATE_LIMIT,
    WORKER_LABEL,
    SLOTS,
];

const RATE_LIMIT_SPECS: &[OptionSpec<RateLimit>] = &[
    once("key", read_rl_key),
    once("dynamic_key", read_rl_dynamic_key),
    once("units", read_rl_units),
    once("limit", read_rl_limit),
    once("duration", read_rl_duration),
];

const WORKER_LABEL_SPECS: &[OptionSpec<WorkerLabel>] = &[
    once("key", read_wl_key),
    once("value", read_wl_value),
    once("required", read_wl_required),
    once("weight", read_wl_weight),
    once("comparator", read_wl_comparator),
];

/// The names of the options of `#[step]`, `#[on_failure]` or `#[on_success]`.
#[cfg(test)]
pub(crate) fn names(kind: StepKind) -> impl Iterator<Item = &'static str> {
    specs(kind).iter().map(|spec| spec.name)
}

fn specs(kind: StepKind) -> &'static [OptionSpec<StepOptions>] {
    match kind {
        StepKind::Step => STEP_SPECS,
        StepKind::OnFailure | StepKind::OnSuccess => ON_FAILURE_SPECS,
    }
}

/// Reads the arguments of `#[step(...)]` or `#[on_failure(...)]`.
pub(crate) fn parse(cx: &Ctxt, kind: StepKind, metas: &[Meta]) -> StepOptions {
    let mut options = StepOptions::default();
    options::read_options(cx, kind.attribute(), specs(kind), metas, &mut options);
    options
}

fn read_name(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    o.name = options::value(cx, meta, r#"name = "fetch""#)
        .and_then(|v| options::lit_str(cx, v, r#"name = "fetch""#));
}

fn read_parents(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    if let Some(v) = options::value(cx, meta, "parents = [fetch, parse]") {
        o.parents = options::ident_list(cx, v, "parents = [fetch, parse]");
    }
}

fn read_retries(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    o.retries = options::value(cx, meta, "retries = 3")
        .and_then(|v| options::lit_int(cx, v, "retries = 3"));
}

fn read_backoff_factor(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    o.backoff_factor = options::value(cx, meta, "backoff_factor = 2.0")
        .and_then(|v| options::lit_float(cx, v, "backoff_factor = 2.0"));
}

fn read_backoff_max(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    o.backoff_max = duration_option(cx, meta, r#"backoff_max = "10m""#);
}

fn read_execution_timeout(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    o.execution_timeout = duration_option(cx, meta, r#"execution_timeout = "30s""#);
}

fn read_schedule_timeout(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    o.schedule_timeout = duration_option(cx, meta, r#"schedule_timeout = "5m""#);
}

fn duration_option(cx: &Ctxt, meta: &Meta, example: &str) -> Option<DurationLit> {
    let lit = options::value(cx, meta, example).and_then(|v| options::lit_str(cx, v, example))?;
    match duration::parse_millis(&lit.value()) {
        Ok(millis) => Some(DurationLit {
            millis,
            span: lit.span(),
        }),
        Err(message) => {
            cx.error_spanned_by(&lit, message);
            None
        }
    }
}

fn read_concurrency(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    o.concurrency.extend(concurrency::parse(cx, meta));
}

fn read_wait_for(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    read_condition(cx, o, meta, ConditionAction::WaitFor);
}

fn read_skip_if(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    read_condition(cx, o, meta, ConditionAction::SkipIf);
}

fn read_cancel_if(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    read_condition(cx, o, meta, ConditionAction::CancelIf);
}

fn read_condition(cx: &Ctxt, o: &mut StepOptions, meta: &Meta, action: ConditionAction) {
    const EXAMPLE: &str = r#"wait_for = any(sleep("10s"), event("order:approved"))"#;
    if let Some(value) = options::value(cx, meta, EXAMPLE) {
        o.conditions.push(conditions::parse(cx, action, value));
    }
}

fn read_durable(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    o.durable = options::flag(cx, meta);
}

fn read_slots(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    const EXAMPLE: &str = "slots = 2` or `slots(default = 1, gpu = 1)";
    match meta {
        Meta::NameValue(nv) => {
            if let Some(units) = options::lit_int(cx, &nv.value, EXAMPLE) {
                o.slots.push(SlotRequest { kind: None, units });
            }
        }
        Meta::List(_) => {
            for entry in options::nested(cx, meta, EXAMPLE).unwrap_or_default() {
                let Some(kind) = entry.path().get_ident().cloned() else {
                    cx.error_spanned_by(
                        entry.path(),
                        format!("expected a slot kind name, e.g. `{EXAMPLE}`"),
                    );
                    continue;
                };
                if o.slots.iter().any(|slot| slot.kind.as_ref() == Some(&kind)) {
                    cx.error_spanned_by(
                        &kind,
                        format!("duplicate slot kind `{kind}`; set it once"),
                    );
                    continue;
                }
                if let Some(units) = options::value(cx, &entry, EXAMPLE)
                    .and_then(|v| options::lit_int(cx, v, EXAMPLE))
                {
                    o.slots.push(SlotRequest {
                        kind: Some(kind),
                        units,
                    });
                }
            }
        }
        Meta::Path(path) => cx.error_spanned_by(path, format!("expected `{EXAMPLE}`")),
    }
}

fn read_rate_limit(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    const EXAMPLE: &str = r#"rate_limit(key = "openai", units = 1)"#;
    let limit = read_nested(
        cx,
        meta,
        "rate_limit",
        EXAMPLE,
        RATE_LIMIT_SPECS,
        |keyword| RateLimit {
            keyword,
            key: None,
            dynamic_key: None,
            units: None,
            limit: None,
            duration: None,
        },
    );
    o.rate_limits.extend(limit);
}

/// A nested option list `attribute(...)` read by `specs` into the value `init` makes from the keyword's span
/// (`None`, with an error, when `meta` is not a list).
fn read_nested<T>(
    cx: &Ctxt,
    meta: &Meta,
    attribute: &str,
    example: &str,
    specs: &[OptionSpec<T>],
    init: impl FnOnce(proc_macro2::Span) -> T,
) -> Option<T> {
    let metas = options::nested(cx, meta, example)?;
    let mut value = init(syn::spanned::Spanned::span(meta.path()));
    options::read_options(cx, attribute, specs, &metas, &mut value);
    Some(value)
}

fn read_rl_key(cx: &Ctxt, r: &mut RateLimit, meta: &Meta) {
    r.key = options::value(cx, meta, r#"key = "openai""#)
        .and_then(|v| options::lit_str(cx, v, r#"key = "openai""#));
}

fn read_rl_dynamic_key(cx: &Ctxt, r: &mut RateLimit, meta: &Meta) {
    const EXAMPLE: &str = r#"dynamic_key = "input.user_id""#;
    r.dynamic_key =
        options::value(cx, meta, EXAMPLE).and_then(|v| options::lit_str(cx, v, EXAMPLE));
}

fn read_rl_units(cx: &Ctxt, r: &mut RateLimit, meta: &Meta) {
    r.units = options::value(cx, meta, "units = 1").and_then(|v| int_or_expr(cx, v, "units = 1"));
}

fn read_rl_limit(cx: &Ctxt, r: &mut RateLimit, meta: &Meta) {
    r.limit = options::value(cx, meta, "limit = 10").and_then(|v| int_or_expr(cx, v, "limit = 10"));
}

fn read_rl_duration(cx: &Ctxt, r: &mut RateLimit, meta: &Meta) {
    const CHOICES: &[(&str, RateLimitDuration)] = &[
        ("second", RateLimitDuration::Second),
        ("minute", RateLimitDuration::Minute),
        ("hour", RateLimitDuration::Hour),
        ("day", RateLimitDuration::Day),
        ("week", RateLimitDuration::Week),
        ("month", RateLimitDuration::Month),
        ("year", RateLimitDuration::Year),
    ];
    r.duration = options::value(cx, meta, r#"duration = "minute""#)
        .and_then(|v| options::choice(cx, v, "rate limit window", CHOICES));
}

/// An integer literal, or a string literal holding a CEL expression.
fn int_or_expr(cx: &Ctxt, expr: &Expr, example: &str) -> Option<Spanned<IntOrExpr>> {
    str_or_int(cx, expr, example, IntOrExpr::Expr, IntOrExpr::Int)
}

/// A string literal or an integer literal, wrapped in the matching variant of `T`; anything else is
/// reported as not an integer (the string form is the less common one).
fn str_or_int<T>(
    cx: &Ctxt,
    expr: &Expr,
    example: &str,
    string: fn(String) -> T,
    int: fn(i32) -> T,
) -> Option<Spanned<T>> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(Spanned {
            value: string(s.value()),
            span: s.span(),
        }),
        _ => options::lit_int(cx, expr, example).map(|i| Spanned {
            value: int(i.value),
            span: i.span,
        }),
    }
}

fn read_worker_label(cx: &Ctxt, o: &mut StepOptions, meta: &Meta) {
    const EXAMPLE: &str = r#"worker_label(key = "gpu", value = "a100", required)"#;
    let label = read_nested(
        cx,
        meta,
        "worker_label",
        EXAMPLE,
        WORKER_LABEL_SPECS,
        |keyword| WorkerLabel {
            keyword,
            key: None,
            value: None,
            required: false,
            weight: None,
            comparator: None,
        },
    );
    o.worker_labels.extend(label);
}

fn read_wl_key(cx: &Ctxt, l: &mut WorkerLabel, meta: &Meta) {
    l.key = options::value(cx, meta, r#"key = "gpu""#)
        .and_then(|v| options::lit_str(cx, v, r#"key = "gpu""#));
}

fn read_wl_value(cx: &Ctxt, l: &mut WorkerLabel, meta: &Meta) {
    const EXAMPLE: &str = r#"value = "a100"` or `value = 4"#;
    l.value = options::value(cx, meta, EXAMPLE)
        .and_then(|v| str_or_int(cx, v, EXAMPLE, LabelValue::Str, LabelValue::Int));
}

fn read_wl_required(cx: &Ctxt, l: &mut WorkerLabel, meta: &Meta) {
    l.required = options::flag(cx, meta).is_some();
}

fn read_wl_weight(cx: &Ctxt, l: &mut WorkerLabel, meta: &Meta) {
    l.weight = options::value(cx, meta, "weight = 100")
        .and_then(|v| options::lit_int(cx, v, "weight = 100"));
}

fn read_wl_comparator(cx: &Ctxt, l: &mut WorkerLabel, meta: &Meta) {
    const CHOICES: &[(&str, Comparator)] = &[
        ("equal", Comparator::Equal),
        ("not_equal", Comparator::NotEqual),
        ("greater_than", Comparator::GreaterThan),
        ("greater_than_or_equal", Comparator::GreaterThanOrEqual),
        ("less_than", Comparator::LessThan),
        ("less_than_or_equal", Comparator::LessThanOrEqual),
    ];
    l.comparator = options::value(cx, meta, r#"comparator = "equal""#)
        .and_then(|v| options::choice(cx, v, "comparator", CHOICES));
}
