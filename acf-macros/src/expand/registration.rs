//! The workflow definition as a builder chain over the macro-free API, with every option resolved to a
//! literal at expansion time, so the macro registers exactly what the hand-written builder would.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};

use super::types;
use crate::model::{
    Comparator, Condition, ConditionAction, ConditionKind, IdempotencyMethod, IntOrExpr,
    LabelValue, RateLimit, RateLimitDuration, Step, Sticky, StrOrConst, Strategy, WorkerLabel,
    Workflow,
};
use crate::naming;

/// The registered workflow name: `name = "..."`, else the type name in kebab case.
pub(crate) fn workflow_name(wf: &Workflow<'_>) -> String {
    match (&wf.options.name, wf.type_ident) {
        (Some(name), _) => name.value(),
        (None, Some(ident)) => naming::kebab_case(&ident.to_string()),
        (None, None) => String::new(),
    }
}

/// The expression building the `WorkflowDefinition`.
pub(crate) fn definition(wf: &Workflow<'_>) -> TokenStream {
    let name = workflow_name(wf);
    let o = &wf.options;
    let description = o.description.iter().map(|d| quote!(.description(#d)));
    let events = o.on_events.iter().map(|e| quote!(.on_event(#e)));
    let crons = o.cron.iter().map(|c| quote!(.on_cron(#c)));
    let sticky = o.sticky.as_ref().map(|s| {
        let variant = match s.value {
            Sticky::Soft => quote!(Soft),
            Sticky::Hard => quote!(Hard),
        };
        quote!(.sticky(__acf::StickyStrategy::#variant))
    });
    let priority = o.default_priority.as_ref().map(|p| {
        let variant = match p.value {
            1 => quote!(Low),
            2 => quote!(Medium),
            _ => quote!(High),
        };
        quote!(.default_priority(__acf::Priority::#variant))
    });
    let limits: Vec<TokenStream> = o.concurrency.iter().map(concurrency).collect();
    let concurrency = match limits.as_slice() {
        [] => None,
        [single] => Some(quote!(.concurrency(__acf::WorkflowConcurrency::Single(#single)))),
        several => {
            Some(quote!(.concurrency(__acf::WorkflowConcurrency::List(::std::vec![#(#several),*]))))
        }
    };
    let schema = types::input_type(wf)
        .map(|input| quote!(.input_json_schema(__acf::input_schema::<#input>())));
    let tasks = wf.steps.iter().map(|step| {
        let task = task(wf, step);
        quote!(.task(#task))
    });
    let on_failure = wf.on_failure.first().map(|step| {
        let task = task(wf, step);
        quote!(.on_failure(#task))
    });
    // Python's `on_success_task`: a last task whose parents are every leaf, registered after the others.
    let on_success = wf.on_success.first().map(|step| {
        let task = task(wf, step);
        let leaves = wf.leaves().into_iter().map(Step::readable_id);
        quote!(.task(#task.parents([#(#leaves),*])))
    });
    let extra = extra_options(wf);
    quote! {
        __acf::WorkflowDefinition::new(#name)
            #(#description)*
            #(#events)*
            #(#crons)*
            #sticky
            #priority
            #concurrency
            #extra
            #schema
            #(#tasks)*
            #on_success
            #on_failure
    }
}

/// `version`, `cron_input`, default filters and idempotency.
fn extra_options(wf: &Workflow<'_>) -> TokenStream {
    let o = &wf.options;
    let version = o.version.iter().map(|v| quote!(.version(#v)));
    // Checked to be a JSON object at expansion time, so parsing it again cannot fail.
    let cron_input = o.cron_input.iter().map(|input| {
        quote!(.cron_input(__acf::serde_json::from_str(#input).expect("checked by #[workflow]")))
    });
    let filters = o.default_filters.iter().map(|f| {
        let expression = f
            .expression
            .as_ref()
            .map(syn::LitStr::value)
            .unwrap_or_default();
        let scope = f.scope.as_ref().map(syn::LitStr::value).unwrap_or_default();
        let payload = f.payload.as_ref().map_or_else(
            || quote!(__acf::serde_json::Map::new()),
            |p| quote!(__acf::serde_json::from_str(#p).expect("checked by #[workflow]")),
        );
        quote! {
            .default_filter(__acf::DefaultFilter {
                expression: ::std::string::String::from(#expression),
                scope: ::std::string::String::from(#scope),
                payload: #payload,
            })
        }
    });
    let idempotency = o.idempotency.as_ref().map(|i| {
        let expression = i
            .expression
            .as_ref()
            .map(syn::LitStr::value)
            .unwrap_or_default();
        let ttl = Literal::u64_unsuffixed(i.ttl.map_or(0, |t| t.millis));
        // Python always states the method (its TTL- and status-based configs); `ttl` is the default.
        let method = match i
            .method
            .as_ref()
            .map_or(IdempotencyMethod::Ttl, |m| m.value)
        {
            IdempotencyMethod::Ttl => {
                quote!(::core::option::Option::Some(__acf::IdempotencyMethod::Ttl))
            }
            IdempotencyMethod::Status => quote!(::core::option::Option::Some(
                __acf::IdempotencyMethod::Status
            )),
        };
        quote! {
            .idempotency(__acf::Idempotency {
                expression: ::std::string::String::from(#expression),
                ttl: __acf::Duration::from_millis(#ttl),
                method: #method,
            })
        }
    });
    quote! {
        #(#version)*
        #(#cron_input)*
        #(#filters)*
        #idempotency
    }
}

/// A `Concurrency` value; without an expression, Python's single global group (`'constant'`).
fn concurrency(c: &crate::model::Concurrency) -> TokenStream {
    // A constant is passed as written: rustc checks it is a `&str` (at the user's path), registration
    // checks its CEL.
    let expression = match &c.expression {
        None => quote!("'constant'"),
        Some(StrOrConst::Lit(lit)) => {
            let text = lit.value();
            quote!(#text)
        }
        Some(StrOrConst::Const(path)) => {
            quote_spanned!(syn::spanned::Spanned::span(path)=> { let __acf_key: &str = #path; __acf_key })
        }
    };
    let max_runs = Literal::i32_unsuffixed(c.max_runs.as_ref().map_or(1, |m| m.value));
    let strategy = match c
        .strategy
        .as_ref()
        .map_or(Strategy::GroupRoundRobin, |s| s.value)
    {
        Strategy::GroupRoundRobin => quote!(GroupRoundRobin),
        Strategy::CancelInProgress => quote!(CancelInProgress),
        Strategy::CancelNewest => quote!(CancelNewest),
    };
    quote!(__acf::Concurrency::new(#expression, #max_runs, __acf::ConcurrencyLimitStrategy::#strategy))
}

/// One `TaskDefinition`; options left unset keep the macro-free API's (Python's) defaults.
fn task(wf: &Workflow<'_>, step: &Step<'_>) -> TokenStream {
    let o = &step.options;
    let id = step.readable_id();
    let parents = (!o.parents.is_empty()).then(|| {
        let ids = o.parents.iter().map(|p| parent_readable_id(wf, p));
        quote!(.parents([#(#ids),*]))
    });
    let retries = o.retries.as_ref().map(|r| {
        let n = Literal::i32_unsuffixed(r.value);
        quote!(.retries(#n))
    });
    let backoff = backoff(step);
    let execution_timeout = o.execution_timeout.map(|d| {
        let ms = Literal::u64_unsuffixed(d.millis);
        quote!(.execution_timeout(__acf::Duration::from_millis(#ms)))
    });
    let schedule_timeout = o.schedule_timeout.map(|d| {
        let ms = Literal::u64_unsuffixed(d.millis);
        quote!(.schedule_timeout(__acf::Duration::from_millis(#ms)))
    });
    let task_limits = o.concurrency.iter().map(|c| {
        let limit = concurrency(c);
        quote!(.concurrency(#limit))
    });
    let rate_limits = o.rate_limits.iter().map(|r| {
        let limit = rate_limit(r);
        quote!(.rate_limit(#limit))
    });
    let labels = o.worker_labels.iter().map(worker_label);
    let durable = o.durable.map(|_| quote!(.durable(true)));
    let slots = (!o.slots.is_empty()).then(|| {
        let default_kind = if o.durable.is_some() {
            "durable"
        } else {
            "default"
        };
        let entries = o.slots.iter().map(|slot| {
            let kind = slot
                .kind
                .as_ref()
                .map_or_else(|| default_kind.to_owned(), ToString::to_string);
            let units = Literal::i32_unsuffixed(slot.units.value);
            quote!((::std::string::String::from(#kind), #units))
        });
        quote!(.slot_requests([#(#entries),*]))
    });
    let conditions = o.conditions.iter().flat_map(|clause| {
        let method = match clause.action {
            ConditionAction::WaitFor => quote!(wait_for),
            ConditionAction::SkipIf => quote!(skip_if),
            ConditionAction::CancelIf => quote!(cancel_if),
        };
        clause.groups.iter().map(move |group| {
            let members = group.iter().map(|c| condition(wf, c));
            quote!(.#method(__acf::ConditionGroup::any([#(#members),*])))
        })
    });
    let task = quote! {
        __acf::TaskDefinition::new(#id)
            #parents
            #retries
            #execution_timeout
            #schedule_timeout
            #(#task_limits)*
            #(#rate_limits)*
            #(#labels)*
            #durable
            #slots
            #(#conditions)*
    };
    match backoff {
        None => task,
        Some(fields) => quote!({
            let mut __acf_task = #task;
            #fields
            __acf_task
        }),
    }
}

/// One `Condition`, with the SDK's default readable data key unless `key = "..."` overrides it.
fn condition(wf: &Workflow<'_>, c: &Condition) -> TokenStream {
    let base = match &c.kind {
        ConditionKind::Sleep(d) => {
            let ms = Literal::u64_unsuffixed(d.millis);
            quote!(__acf::Condition::sleep(__acf::Duration::from_millis(#ms)))
        }
        ConditionKind::Event { key, filter, scope } => {
            let filter = filter.iter().map(|f| quote!(.filter(#f)));
            let scope = scope.iter().map(|s| quote!(.scope(#s)));
            quote!(__acf::Condition::event(#key) #(#filter)* #(#scope)*)
        }
        ConditionKind::Parent { parent, expression } => {
            let parent = parent_readable_id(wf, parent);
            let expression = expression.as_ref().map_or_else(
                || quote!(::core::option::Option::None),
                |e| quote!(::core::option::Option::Some(::std::string::String::from(#e))),
            );
            quote!(__acf::Condition::parent(#parent, #expression))
        }
    };
    match &c.key {
        Some(key) => quote!(#base.key(#key)),
        None => base,
    }
}

/// Backoff factor and maximum are independent optional fields on the wire (Python sets each only when given),
/// so they are assigned directly rather than through the paired `backoff(factor, max)` setter.
fn backoff(step: &Step<'_>) -> Option<TokenStream> {
    let o = &step.options;
    if o.backoff_factor.is_none() && o.backoff_max.is_none() {
        return None;
    }
    let factor = o.backoff_factor.as_ref().map(|f| {
        #[allow(clippy::cast_possible_truncation)]
        // validated to 1..=1000; the wire field is a 32-bit float
        let factor = Literal::f32_unsuffixed(f.value as f32);
        quote!(__acf_task.backoff_factor = ::core::option::Option::Some(#factor);)
    });
    let max = o.backoff_max.as_ref().map(|m| {
        let seconds = Literal::u64_unsuffixed(m.millis / 1000);
        quote!(__acf_task.backoff_max_seconds = ::core::option::Option::Some(#seconds);)
    });
    Some(quote!(#factor #max))
}

/// A parent's readable id: its `name = "..."` override if any, else its method name (lower-cased).
fn parent_readable_id(wf: &Workflow<'_>, parent: &syn::Ident) -> String {
    wf.steps
        .iter()
        .find(|s| s.ident() == parent)
        .map_or_else(|| parent.to_string().to_lowercase(), Step::readable_id)
}

fn int_or_expr(value: &IntOrExpr) -> TokenStream {
    match value {
        IntOrExpr::Int(n) => {
            let n = Literal::i32_unsuffixed(*n);
            quote!(__acf::IntOrExpr::Int(#n))
        }
        IntOrExpr::Expr(e) => quote!(__acf::IntOrExpr::Expr(::std::string::String::from(#e))),
    }
}

fn rate_limit(r: &RateLimit) -> TokenStream {
    let (key, dynamic) = match (&r.key, &r.dynamic_key) {
        (_, Some(dynamic)) => (dynamic.value(), true),
        (Some(key), None) => (key.value(), false),
        (None, None) => (String::new(), false),
    };
    let units = int_or_expr(r.units.as_ref().map_or(&IntOrExpr::Int(1), |u| &u.value));
    let limit = r.limit.as_ref().map_or_else(
        || quote!(::core::option::Option::None),
        |limit| {
            let limit = int_or_expr(&limit.value);
            quote!(::core::option::Option::Some(#limit))
        },
    );
    let duration = match r
        .duration
        .as_ref()
        .map_or(RateLimitDuration::Minute, |d| d.value)
    {
        RateLimitDuration::Second => quote!(Second),
        RateLimitDuration::Minute => quote!(Minute),
        RateLimitDuration::Hour => quote!(Hour),
        RateLimitDuration::Day => quote!(Day),
        RateLimitDuration::Week => quote!(Week),
        RateLimitDuration::Month => quote!(Month),
        RateLimitDuration::Year => quote!(Year),
    };
    quote! {
        __acf::RateLimit {
            key: ::std::string::String::from(#key),
            dynamic: #dynamic,
            units: #units,
            limit: #limit,
            duration: __acf::RateLimitDuration::#duration,
        }
    }
}

fn worker_label(l: &WorkerLabel) -> TokenStream {
    let key = l.key.as_ref().map(syn::LitStr::value).unwrap_or_default();
    let value = match l.value.as_ref().map(|v| &v.value) {
        Some(LabelValue::Int(n)) => {
            let n = Literal::i32_unsuffixed(*n);
            quote!(__acf::LabelValue::Int(#n))
        }
        Some(LabelValue::Str(s)) => quote!(__acf::LabelValue::Str(::std::string::String::from(#s))),
        None => quote!(__acf::LabelValue::Str(::std::string::String::new())),
    };
    let required = l.required.then(|| quote!(.required()));
    let weight = l.weight.as_ref().map(|w| {
        let w = Literal::i32_unsuffixed(w.value);
        quote!(.weight(#w))
    });
    let comparator = l.comparator.as_ref().map(|c| {
        let variant = match c.value {
            Comparator::Equal => quote!(Equal),
            Comparator::NotEqual => quote!(NotEqual),
            Comparator::GreaterThan => quote!(GreaterThan),
            Comparator::GreaterThanOrEqual => quote!(GreaterThanOrEqual),
            Comparator::LessThan => quote!(LessThan),
            Comparator::LessThanOrEqual => quote!(LessThanOrEqual),
        };
        quote!(.comparator(__acf::WorkerLabelComparator::#variant))
    });
    quote! {
        .desired_label(#key, __acf::DesiredWorkerLabel::new(#value) #required #weight #comparator)
    }
}
