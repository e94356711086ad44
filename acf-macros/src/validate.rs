//! Semantic checks over the model. One function per rule, each stating the rule above it; all of
//! them run, so every problem is reported in one compile.

use std::collections::BTreeMap;

use proc_macro2::Span;
use syn::{FnArg, ImplItem, ReturnType};

use crate::ctxt::Ctxt;
use crate::model::{Condition, ConditionKind, IntOrExpr, Step, StrOrConst, Workflow};
use crate::naming;
use crate::suggest::did_you_mean;

/// Runs every rule.
pub(crate) fn check(cx: &Ctxt, wf: &Workflow<'_>) {
    check_workflow_name(cx, wf);
    check_has_steps(cx, wf);
    check_event_keys(cx, wf);
    check_cron(cx, wf);
    check_workflow_ranges(cx, wf);
    check_single_handlers(cx, wf);
    check_workflow_cel(cx, wf);
    check_cron_input(cx, wf);
    check_default_filters(cx, wf);
    check_idempotency(cx, wf);
    for step in wf.all_steps() {
        check_async(cx, step);
        check_receiver(cx, step);
        check_not_generic(cx, step);
        check_context_and_input(cx, step);
        check_return_type(cx, step);
        check_step_name(cx, wf, step);
        check_step_ranges(cx, step);
        check_rate_limits(cx, step);
        check_worker_labels(cx, step);
        check_output_is_an_object(cx, step);
        check_conditions(cx, step);
    }
    check_unique_steps(cx, wf);
    check_reserved_names(cx, wf);
    check_parents_exist(cx, wf);
    check_duplicate_parents(cx, wf);
    check_parent_arguments(cx, wf);
    check_on_failure_arguments(cx, wf);
    check_condition_parents(cx, wf);
    check_acyclic(cx, wf);
}

/// The workflow name (explicit or the kebab-cased type name) must match `^[a-zA-Z0-9.\-_]+$`.
fn check_workflow_name(cx: &Ctxt, wf: &Workflow<'_>) {
    let Some(name) = &wf.options.name else {
        return;
    };
    check_name_text(cx, &name.value(), name.span(), "workflow name");
}

fn check_name_text(cx: &Ctxt, text: &str, span: Span, what: &str) {
    if text.is_empty() {
        cx.error_at(
            span,
            format!("{what} is empty; use letters, digits, `.`, `-` and `_`"),
        );
    } else if let Some(c) = naming::invalid_char(text) {
        cx.error_at(
            span,
            format!("{what} `{text}` contains {c:?}; Hatchet names use only letters, digits, `.`, `-` and `_`"),
        );
    }
}

/// Hatchet requires at least one task per workflow.
fn check_has_steps(cx: &Ctxt, wf: &Workflow<'_>) {
    // A trait impl is already rejected; "no steps" on top of that would be noise.
    if wf.steps.is_empty() && wf.original.trait_.is_none() {
        cx.error_spanned_by(
            wf.self_ty,
            "a workflow needs at least one `#[step]` method, e.g. `#[step] async fn run(&self, ctx: &Context, input: &Input) -> Result<Output, Error>`",
        );
    }
}

/// Event keys are matched literally by the engine; an empty key can never fire.
fn check_event_keys(cx: &Ctxt, wf: &Workflow<'_>) {
    for key in &wf.options.on_events {
        if key.value().trim().is_empty() {
            cx.error_spanned_by(
                key,
                "event key is empty; write the key pushed by producers, e.g. \"order:created\"",
            );
        }
    }
}

/// Cron triggers have five fields (or six with seconds); the engine rejects `@daily`-style descriptors.
fn check_cron(cx: &Ctxt, wf: &Workflow<'_>) {
    for cron in &wf.options.cron {
        let text = cron.value();
        if text.trim_start().starts_with('@') {
            cx.error_spanned_by(cron, format!("cron descriptor `{text}` is not accepted by the engine; write the fields, e.g. \"0 0 * * *\" for daily"));
            continue;
        }
        let fields = text.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            cx.error_spanned_by(
                cron,
                format!("cron expression `{text}` has {fields} fields; expected 5 (minute hour day month weekday) or 6 (with seconds first)"),
            );
        }
    }
}

/// `default_priority` is 1..=3 and `max_runs` at least 1, as the engine validates them.
fn check_workflow_ranges(cx: &Ctxt, wf: &Workflow<'_>) {
    if let Some(priority) = &wf.options.default_priority
        && !(1..=3).contains(&priority.value)
    {
        cx.error_at(
            priority.span,
            "`default_priority` must be 1 (low), 2 (medium) or 3 (high)",
        );
    }
    check_max_runs(cx, &wf.options.concurrency);
}

/// A concurrency group admits at least one run.
fn check_max_runs(cx: &Ctxt, limits: &[crate::model::Concurrency]) {
    for max_runs in limits.iter().filter_map(|c| c.max_runs.as_ref()) {
        if max_runs.value < 1 {
            cx.error_at(max_runs.span, "`max_runs` must be at least 1");
        }
    }
}

/// A workflow has at most one failure handler and one success handler (Python: "Only one
/// on-success task is allowed").
fn check_single_handlers(cx: &Ctxt, wf: &Workflow<'_>) {
    check_single_handler(cx, &wf.on_failure, "on_failure", "failure");
    check_single_handler(cx, &wf.on_success, "on_success", "success");
}

/// Every `#[attribute]` handler after the first is an error naming the first.
fn check_single_handler(cx: &Ctxt, handlers: &[Step<'_>], attribute: &str, role: &str) {
    let Some((first, rest)) = handlers.split_first() else {
        return;
    };
    for extra in rest {
        cx.error_spanned_by(
            extra.attr,
            format!("only one `#[{attribute}]` method is allowed per workflow; `{}` is already the {role} handler", first.ident()),
        );
    }
}

/// Reports `text` (a CEL expression written at `span`) when it does not parse.
fn check_cel(cx: &Ctxt, lit: &syn::LitStr, what: &str) {
    if let Some(problem) = crate::cel::parse_error(&lit.value()) {
        cx.error_spanned_by(
            lit,
            format!("invalid CEL in {what} `{}`: {problem}", lit.value()),
        );
    }
}

/// Literal CEL expressions of the workflow (concurrency keys) parse; constants are checked at registration.
fn check_workflow_cel(cx: &Ctxt, wf: &Workflow<'_>) {
    check_concurrency_cel(cx, &wf.options.concurrency);
}

fn check_concurrency_cel(cx: &Ctxt, limits: &[crate::model::Concurrency]) {
    for limit in limits {
        if let Some(StrOrConst::Lit(lit)) = &limit.expression {
            check_cel(cx, lit, "the concurrency expression");
        }
    }
}

/// What `cron_input` / a filter `payload` must be: a JSON object (Hatchet hands it to runs as their input).
fn check_json_object(cx: &Ctxt, lit: &syn::LitStr, what: &str) {
    match serde_json::from_str::<serde_json::Value>(&lit.value()) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => cx.error_spanned_by(
            lit,
            format!("{what} must be a JSON object, e.g. `r#\"{{\"batch\": 100}}\"#`"),
        ),
        Err(err) => cx.error_spanned_by(lit, format!("{what} is not valid JSON: {err}")),
    }
}

/// `cron_input` is the JSON object cron-triggered runs receive as input.
fn check_cron_input(cx: &Ctxt, wf: &Workflow<'_>) {
    if let Some(input) = &wf.options.cron_input {
        check_json_object(cx, input, "`cron_input`");
    }
}

/// A default filter has a CEL `expression` and a `scope`; its optional `payload` is a JSON object.
fn check_default_filters(cx: &Ctxt, wf: &Workflow<'_>) {
    for filter in &wf.options.default_filters {
        match &filter.expression {
            Some(expression) => check_cel(cx, expression, "the filter expression"),
            None => cx.error_at(filter.keyword, r#"`default_filter` needs `expression = "<CEL>"`, e.g. `default_filter(expression = "input.priority > 2", scope = "tenant-1")`"#),
        }
        if filter.scope.is_none() {
            cx.error_at(filter.keyword, r#"`default_filter` needs `scope = "..."`: events pushed with that scope are matched by the filter"#);
        }
        if let Some(payload) = &filter.payload {
            check_json_object(cx, payload, "the filter `payload`");
        }
    }
}

/// Idempotency needs the CEL key and how long a key is held.
fn check_idempotency(cx: &Ctxt, wf: &Workflow<'_>) {
    let Some(idempotency) = &wf.options.idempotency else {
        return;
    };
    match &idempotency.expression {
        Some(expression) => check_cel(cx, expression, "the idempotency expression"),
        None => cx.error_at(idempotency.keyword, r#"`idempotency` needs `expression = "<CEL key>"`, e.g. `idempotency(expression = "input.order_id", ttl = "10m")`"#),
    }
    // A `ttl` that did not parse (zero, bad unit) is already reported.
    match &idempotency.ttl {
        Some(_) => {}
        None if idempotency.ttl_given => {}
        None => cx.error_at(idempotency.keyword, r#"`idempotency` needs `ttl = "10m"`: how long a key is held (with `method = "status"`, the fallback once the run is gone)"#),
    }
}

/// Hatchet stores a step's output as a JSON object (the Python SDK raises `IllegalTaskOutputError` for
/// anything but a dict, a Pydantic model or a dataclass). Types that can never serialise to an object are
/// refused here; others (aliases, `serde_json::Value`) are still checked when the step returns.
fn check_output_is_an_object(cx: &Ctxt, step: &Step<'_>) {
    let ReturnType::Type(_, ty) = &step.method.sig.output else {
        return;
    };
    let Some(output) = result_output(ty) else {
        return;
    };
    if let Some(what) = non_object(output) {
        cx.error_spanned_by(
            output,
            format!(
                "a step output must serialize to a JSON object, and {what} does not: Hatchet stores each step's output as a JSON object (the Python SDK refuses anything but a dict, a model or a dataclass); return a struct with named fields (e.g. `struct Output {{ value: ... }}`), a map, or `()` for no output"
            ),
        );
    }
}

/// `T` of a return type written `Result<T, ..>` (any path ending in `Result` with a type argument).
fn result_output(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// What the type serialises to when that is never a JSON object, judged from its spelling.
fn non_object(ty: &syn::Type) -> Option<String> {
    const SCALARS: &[&str] = &[
        "bool", "char", "str", "String", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16",
        "i32", "i64", "i128", "isize", "f32", "f64",
    ];
    const SEQUENCES: &[&str] = &["Vec", "VecDeque", "HashSet", "BTreeSet", "LinkedList"];
    const WRAPPERS: &[&str] = &["Option", "Box", "Arc", "Rc", "Cow"];
    match ty {
        syn::Type::Paren(inner) => non_object(&inner.elem),
        syn::Type::Group(inner) => non_object(&inner.elem),
        syn::Type::Reference(reference) => non_object(&reference.elem),
        syn::Type::Array(_) | syn::Type::Slice(_) => Some("an array".to_owned()),
        syn::Type::Tuple(tuple) if !tuple.elems.is_empty() => {
            Some("a tuple (a JSON array)".to_owned())
        }
        syn::Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let name = last.ident.to_string();
            if SCALARS.contains(&name.as_str()) {
                Some(format!("`{name}`"))
            } else if SEQUENCES.contains(&name.as_str()) {
                Some(format!("`{name}` (a JSON array)"))
            } else if WRAPPERS.contains(&name.as_str()) {
                let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                    return None;
                };
                args.args.iter().find_map(|arg| match arg {
                    syn::GenericArgument::Type(inner) => non_object(inner),
                    _ => None,
                })
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Each condition is well formed: sleeps in whole seconds, events with a key, CEL that parses, and no two
/// conditions of a step reporting under the same key.
fn check_conditions(cx: &Ctxt, step: &Step<'_>) {
    let mut keys: Vec<String> = Vec::new();
    for condition in step
        .options
        .conditions
        .iter()
        .flat_map(|c| c.groups.iter().flatten())
    {
        match &condition.kind {
            ConditionKind::Sleep(duration) => {
                if duration.millis == 0 || duration.millis % 1000 != 0 {
                    cx.error_at(
                        duration.span,
                        "a sleep condition is sent in whole seconds (at least 1s); use `s`, `m` or `h` units",
                    );
                }
            }
            ConditionKind::Event { key, filter, scope } => {
                if key.value().trim().is_empty() {
                    cx.error_spanned_by(key, "event key is empty; write the key pushed by producers, e.g. \"order:approved\"");
                }
                if let Some(filter) = filter {
                    check_cel(cx, filter, "the event filter");
                }
                if let Some(scope) = scope
                    && scope.value().is_empty()
                {
                    cx.error_spanned_by(
                        scope,
                        "`scope` is empty; omit it to match events of any scope",
                    );
                }
            }
            ConditionKind::Parent { expression, .. } => {
                if let Some(expression) = expression {
                    check_cel(cx, expression, "the parent condition");
                }
            }
        }
        let key = condition_key(step, condition);
        if keys.contains(&key) {
            cx.error_at(
                condition.span,
                format!("two conditions of `{}` report under the key `{key}`; give one a distinct `key = \"...\"`", step.ident()),
            );
        } else {
            keys.push(key);
        }
    }
    for limit in &step.options.rate_limits {
        if let Some(dynamic) = &limit.dynamic_key {
            check_cel(cx, dynamic, "the rate limit key");
        }
    }
    check_concurrency_cel(cx, &step.options.concurrency);
}

/// The readable data key a condition reports under, as the SDK computes it (`Condition::sleep` / `event` /
/// `parent`); only compared for duplicates here.
fn condition_key(step: &Step<'_>, condition: &Condition) -> String {
    if let Some(key) = &condition.key {
        return key.value();
    }
    match &condition.kind {
        ConditionKind::Sleep(duration) => format!("sleep:{}ms", duration.millis),
        ConditionKind::Event { key, .. } => key.value(),
        ConditionKind::Parent { parent, expression } => {
            let _ = step;
            match expression {
                Some(e) => format!("{}:{}", parent.to_string().to_lowercase(), e.value()),
                None => parent.to_string().to_lowercase(),
            }
        }
    }
}

/// A parent condition names one of the step's declared parents: the engine only evaluates it against the
/// output of a parent.
fn check_condition_parents(cx: &Ctxt, wf: &Workflow<'_>) {
    for step in &wf.steps {
        let parents = &step.options.parents;
        for condition in step
            .options
            .conditions
            .iter()
            .flat_map(|c| c.groups.iter().flatten())
        {
            let ConditionKind::Parent { parent, .. } = &condition.kind else {
                continue;
            };
            if parents.contains(parent) {
                continue;
            }
            let name = parent.to_string();
            let message = if step.ident() == parent {
                format!(
                    "`{name}` cannot condition on its own output; a parent condition names one of its `parents`"
                )
            } else if parents.is_empty() {
                format!(
                    "`parent({name}, ...)` needs `{name}` to be a parent, but `{}` has no parents; add `parents = [{name}]`",
                    step.ident()
                )
            } else if wf.steps.iter().any(|s| s.ident() == parent) {
                format!(
                    "`{name}` is a step but not a parent of `{}`; add it to `parents = [...]` to condition on its output",
                    step.ident()
                )
            } else {
                let names = names(parents);
                format!(
                    "unknown parent `{name}` in a parent condition: it must name one of `{}`'s parents ({}){}",
                    step.ident(),
                    crate::suggest::one_of(names.iter().map(String::as_str)),
                    did_you_mean(&name, names.iter().map(String::as_str))
                )
            };
            cx.error_spanned_by(parent, message);
        }
    }
}

/// The names of `idents` (parents), for [`crate::suggest::one_of`] and [`did_you_mean`].
fn names(idents: &[syn::Ident]) -> Vec<String> {
    idents.iter().map(ToString::to_string).collect()
}

/// Steps run on the async worker runtime: they must be `async fn`.
fn check_async(cx: &Ctxt, step: &Step<'_>) {
    if step.method.sig.asyncness.is_none() {
        cx.error_spanned_by(
            step.method.sig.fn_token,
            format!(
                "`{}` methods must be `async fn`; add `async` before `fn`",
                step.kind.attribute()
            ),
        );
    }
}

/// Steps take `&self`: the workflow value is shared by concurrent runs, so it cannot be borrowed mutably or moved.
fn check_receiver(cx: &Ctxt, step: &Step<'_>) {
    let sig = &step.method.sig;
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => {
            if receiver.reference.is_none() || receiver.colon_token.is_some() {
                cx.error_spanned_by(receiver, "steps take `&self`: the workflow value is shared by concurrent runs and cannot be moved");
            } else if let Some(mutability) = receiver.mutability {
                cx.error_spanned_by(mutability, "steps take `&self`, not `&mut self`: the workflow value is shared by concurrent runs; use interior mutability for state");
            }
        }
        Some(FnArg::Typed(first)) => {
            cx.error_spanned_by(first, "steps take `&self` as their first argument, e.g. `async fn fetch(&self, ctx: &Context, input: &Input)`");
        }
        None => cx.error_at(
            sig.paren_token.span.join(),
            "steps take `&self, ctx: &Context, input: &Input`; this method has no arguments",
        ),
    }
}

/// The worker calls steps with concrete types, so they cannot have their own generic parameters.
fn check_not_generic(cx: &Ctxt, step: &Step<'_>) {
    let generics = &step.method.sig.generics;
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        cx.error_spanned_by(
            generics,
            "steps cannot be generic: the worker calls them with concrete input and parent types",
        );
    }
}

/// After `&self`, a step takes the context and then the workflow input.
fn check_context_and_input(cx: &Ctxt, step: &Step<'_>) {
    let has_receiver = matches!(step.method.sig.inputs.first(), Some(FnArg::Receiver(_)));
    if !has_receiver {
        return; // already reported by check_receiver; a second error about the same list would be noise
    }
    let missing = match step.args.len() {
        0 => "`ctx: &Context, input: &Input`",
        1 => "`input: &Input`",
        _ => return,
    };
    cx.error_at(
        step.method.sig.paren_token.span.join(),
        format!("`{}` is missing {missing}; a step takes `&self, ctx: &Context, input: &Input`, then one argument per parent", step.ident()),
    );
}

/// A step returns `Result<Output, Error>`; the output is what children and the run's result receive.
fn check_return_type(cx: &Ctxt, step: &Step<'_>) {
    if let ReturnType::Default = step.method.sig.output {
        cx.error_spanned_by(
            &step.method.sig.ident,
            format!("`{}` has no return type; steps return `Result<Output, Error>`, e.g. `-> Result<Summary, StepError>`", step.ident()),
        );
    }
}

/// Explicit step names follow the same character rules as workflow names.
fn check_step_name(cx: &Ctxt, wf: &Workflow<'_>, step: &Step<'_>) {
    // A standalone task's step shares the workflow's name, which is checked (and reported) once already.
    if wf.standalone {
        return;
    }
    if let Some(name) = &step.options.name {
        check_name_text(cx, &name.value(), name.span(), "step name");
    }
}

/// Numeric options within the ranges the engine accepts.
fn check_step_ranges(cx: &Ctxt, step: &Step<'_>) {
    let o = &step.options;
    check_max_runs(cx, &o.concurrency);
    if let Some(retries) = &o.retries
        && retries.value < 0
    {
        cx.error_at(retries.span, "`retries` cannot be negative");
    }
    if let Some(factor) = &o.backoff_factor
        && !(1.0..=1000.0).contains(&factor.value)
    {
        cx.error_at(factor.span, "`backoff_factor` must be between 1 and 1000");
    }
    if let Some(max) = &o.backoff_max {
        if max.millis % 1000 != 0 {
            cx.error_at(
                max.span,
                "`backoff_max` is sent in whole seconds; use `s`, `m` or `h` units",
            );
        } else if max.millis > 86_400_000 {
            cx.error_at(max.span, "`backoff_max` is at most 24h");
        }
    }
    for slot in &o.slots {
        if slot.units.value < 1 {
            cx.error_at(slot.units.span, "a slot request must be at least 1");
        }
    }
}

/// A rate limit has exactly one of `key` and `dynamic_key`; a dynamic key needs a `limit`.
fn check_rate_limits(cx: &Ctxt, step: &Step<'_>) {
    for limit in &step.options.rate_limits {
        match (&limit.key, &limit.dynamic_key) {
            (None, None) => cx.error_at(
                limit.keyword,
                r#"`rate_limit` needs `key = "..."` (a static limit) or `dynamic_key = "<CEL>"`, e.g. `rate_limit(key = "openai", units = 1)`"#,
            ),
            (Some(_), Some(dynamic)) => cx.error_spanned_by(dynamic, "`rate_limit` takes `key` or `dynamic_key`, not both"),
            (None, Some(dynamic)) if limit.limit.is_none() => cx.error_spanned_by(
                dynamic,
                "a `dynamic_key` rate limit needs `limit = N` (or a CEL string): the engine creates the limit on first use",
            ),
            _ => {}
        }
        if let Some(units) = &limit.units
            && matches!(units.value, IntOrExpr::Int(n) if n < 1)
        {
            cx.error_at(units.span, "`units` must be at least 1");
        }
    }
}

/// A desired worker label needs a key and a value, and each key appears once per step.
fn check_worker_labels(cx: &Ctxt, step: &Step<'_>) {
    let mut seen: Vec<String> = Vec::new();
    for label in &step.options.worker_labels {
        match &label.key {
            None => cx.error_at(label.keyword, r#"`worker_label` needs `key = "..."`, e.g. `worker_label(key = "gpu", value = "a100")`"#),
            Some(key) if seen.contains(&key.value()) => {
                cx.error_spanned_by(key, format!("duplicate worker label `{}` on this step", key.value()));
            }
            Some(key) => seen.push(key.value()),
        }
        if label.value.is_none() {
            cx.error_at(
                label.keyword,
                r#"`worker_label` needs `value = "..."` or `value = N`"#,
            );
        }
    }
}

/// Readable ids (explicit name or method name, lower-cased) are unique within the workflow.
fn check_unique_steps(cx: &Ctxt, wf: &Workflow<'_>) {
    let mut seen: BTreeMap<String, &Step<'_>> = BTreeMap::new();
    for step in wf.all_steps() {
        let id = step.readable_id();
        if let Some(first) = seen.get(&id) {
            let span = step
                .options
                .name
                .as_ref()
                .map_or_else(|| step.ident().span(), syn::LitStr::span);
            cx.error_at(
                span,
                format!(
                    "duplicate step `{id}`: method `{}` already registers it (step names are compared lower-cased); rename one with `name = \"...\"`",
                    first.ident()
                ),
            );
        } else {
            seen.insert(id, step);
        }
    }
}

/// The macro adds an inherent `client` constructor to the type; a method of that name would clash with it.
fn check_reserved_names(cx: &Ctxt, wf: &Workflow<'_>) {
    for item in &wf.original.items {
        if let ImplItem::Fn(method) = item
            && method.sig.ident == "client"
        {
            cx.error_spanned_by(
                &method.sig.ident,
                "`client` is generated by `#[workflow]` (the typed trigger client, `Self::client(&client)`); rename this method",
            );
        }
    }
}

/// Every parent names a `#[step]` method of the same impl block.
fn check_parents_exist(cx: &Ctxt, wf: &Workflow<'_>) {
    let step_names: Vec<String> = wf.steps.iter().map(|s| s.ident().to_string()).collect();
    for step in &wf.steps {
        for parent in &step.options.parents {
            let name = parent.to_string();
            if step_names.contains(&name) {
                continue;
            }
            let is_method = wf
                .original
                .items
                .iter()
                .any(|item| matches!(item, ImplItem::Fn(f) if f.sig.ident == name));
            let message = if wf.on_failure.iter().any(|f| f.ident() == parent) {
                format!("`{name}` is the `#[on_failure]` handler and cannot be a parent")
            } else if wf.on_success.iter().any(|f| f.ident() == parent) {
                format!("`{name}` is the `#[on_success]` handler and cannot be a parent")
            } else if is_method {
                format!("`{name}` is not a step; add `#[step]` to it to use it as a parent")
            } else {
                format!(
                    "unknown parent `{name}`: parents name `#[step]` methods of this impl block{}",
                    did_you_mean(&name, step_names.iter().map(String::as_str))
                )
            };
            cx.error_spanned_by(parent, message);
        }
    }
}

/// A parent is listed once.
fn check_duplicate_parents(cx: &Ctxt, wf: &Workflow<'_>) {
    for step in &wf.steps {
        for (i, parent) in step.options.parents.iter().enumerate() {
            if step.options.parents[..i].contains(parent) {
                cx.error_spanned_by(parent, format!("parent `{parent}` is listed twice"));
            }
        }
    }
}

/// After `ctx` and `input`, a step takes exactly one argument per parent, in `parents` order.
fn check_parent_arguments(cx: &Ctxt, wf: &Workflow<'_>) {
    for step in &wf.steps {
        if step.args.len() < 2 {
            continue; // reported by check_context_and_input
        }
        let parents = &step.options.parents;
        let args = step.parent_args();
        for extra in args.iter().skip(parents.len()) {
            let message = if parents.is_empty() {
                format!(
                    "unexpected argument: `{}` has no parents, so it takes only `ctx` and `input`; add `parents = [...]` to the `#[step]` to receive parent outputs",
                    step.ident()
                )
            } else {
                format!(
                    "unexpected argument: `{}` has {} parent(s) ({}), so it takes {} argument(s) after `input`",
                    step.ident(),
                    parents.len(),
                    crate::suggest::one_of(names(parents).iter().map(String::as_str)),
                    parents.len()
                )
            };
            cx.error_spanned_by(extra, message);
        }
        for parent in parents.iter().skip(args.len()) {
            cx.error_spanned_by(
                parent,
                format!(
                    "`{}` lists parent `{parent}` but has no argument for its output; add `{parent}: &<output of {parent}>` to the signature, in `parents` order",
                    step.ident()
                ),
            );
        }
    }
}

/// The failure and success handlers receive the context and the input only.
fn check_on_failure_arguments(cx: &Ctxt, wf: &Workflow<'_>) {
    for handler in &wf.on_failure {
        for extra in handler.args.iter().skip(2) {
            cx.error_spanned_by(extra, "unexpected argument: the `#[on_failure]` handler takes only `ctx` and `input`; read step errors from the context");
        }
    }
    for handler in &wf.on_success {
        for extra in handler.args.iter().skip(2) {
            cx.error_spanned_by(extra, "unexpected argument: the `#[on_success]` handler takes only `ctx` and `input`; read step outputs with `ctx.parent_output(Self::STEP)`");
        }
    }
}

/// Parents form a DAG. Every edge that lies on a cycle is reported at its parent identifier, with the cycle it closes.
fn check_acyclic(cx: &Ctxt, wf: &Workflow<'_>) {
    let index: BTreeMap<String, usize> = wf
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.ident().to_string(), i))
        .collect();
    // edges[child] = parents of child (indices), ignoring unknown parents (reported elsewhere).
    let edges: Vec<Vec<usize>> = wf
        .steps
        .iter()
        .map(|s| {
            s.options
                .parents
                .iter()
                .filter_map(|p| index.get(&p.to_string()).copied())
                .collect()
        })
        .collect();
    for (child, step) in wf.steps.iter().enumerate() {
        for parent_ident in &step.options.parents {
            let Some(&parent) = index.get(&parent_ident.to_string()) else {
                continue;
            };
            // The edge child -> parent is on a cycle iff child is reachable from parent.
            let Some(path) = path_between(&edges, parent, child) else {
                continue;
            };
            let chain: Vec<String> = std::iter::once(child)
                .chain(path)
                .map(|i| format!("`{}`", wf.steps[i].ident()))
                .collect();
            let message = if parent == child {
                format!(
                    "`{}` lists itself as a parent; a step cannot wait for its own output",
                    step.ident()
                )
            } else {
                format!(
                    "dependency cycle: {} (`a -> b` means `a` lists `b` in `parents`); remove one of these parents",
                    chain.join(" -> ")
                )
            };
            cx.error_spanned_by(parent_ident, message);
        }
    }
}

/// Shortest path `from` ..= `to` following parent edges (breadth-first, so the reported cycle is minimal).
fn path_between(edges: &[Vec<usize>], from: usize, to: usize) -> Option<Vec<usize>> {
    let mut previous: Vec<Option<usize>> = vec![None; edges.len()];
    let mut visited = vec![false; edges.len()];
    let mut queue = std::collections::VecDeque::from([from]);
    visited[from] = true;
    while let Some(node) = queue.pop_front() {
        if node == to {
            let mut path = vec![to];
            let mut cursor = to;
            while let Some(prev) = previous[cursor] {
                path.push(prev);
                cursor = prev;
            }
            path.reverse();
            return Some(path);
        }
        for &next in &edges[node] {
            if !visited[next] {
                visited[next] = true;
                previous[next] = Some(node);
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::path_between;

    #[test]
    fn finds_the_shortest_cycle_path() {
        // 0 -> 1 -> 2 -> 0, and 1 -> 0 directly.
        let edges = vec![vec![1], vec![2, 0], vec![0]];
        assert_eq!(path_between(&edges, 1, 0), Some(vec![1, 0]));
        assert_eq!(path_between(&edges, 0, 2), Some(vec![0, 1, 2]));
        assert_eq!(path_between(&[vec![1], vec![]], 1, 0), None);
    }
}
