//! `#[workflow(...)]` options.

use syn::{Meta, Path};

use super::concurrency;
use super::duration;
use super::options::{self, OptionSpec};
use crate::ctxt::Ctxt;
use crate::model::{
    DefaultFilter, DurationLit, Idempotency, IdempotencyMethod, Sticky, WorkflowOptions,
};

/// Every `#[workflow]` option, in the order the error messages list them.
const SPECS: &[OptionSpec<WorkflowOptions>] = &[
    OptionSpec {
        name: "name",
        repeatable: false,
        read: read_name,
    },
    OptionSpec {
        name: "description",
        repeatable: false,
        read: read_description,
    },
    OptionSpec {
        name: "on_events",
        repeatable: false,
        read: read_on_events,
    },
    OptionSpec {
        name: "cron",
        repeatable: false,
        read: read_cron,
    },
    OptionSpec {
        name: "concurrency",
        repeatable: true,
        read: read_concurrency,
    },
    OptionSpec {
        name: "sticky",
        repeatable: false,
        read: read_sticky,
    },
    OptionSpec {
        name: "default_priority",
        repeatable: false,
        read: read_default_priority,
    },
    OptionSpec {
        name: "version",
        repeatable: false,
        read: read_version,
    },
    OptionSpec {
        name: "cron_input",
        repeatable: false,
        read: read_cron_input,
    },
    OptionSpec {
        name: "default_filter",
        repeatable: true,
        read: read_default_filter,
    },
    OptionSpec {
        name: "idempotency",
        repeatable: false,
        read: read_idempotency,
    },
    OptionSpec {
        name: "crate",
        repeatable: false,
        read: read_crate,
    },
];

/// Reads the arguments of `#[workflow(...)]`.
pub(crate) fn parse(cx: &Ctxt, metas: &[Meta]) -> WorkflowOptions {
    let mut options = WorkflowOptions::default();
    options::read_options(cx, "#[workflow]", SPECS, metas, &mut options);
    options
}

/// The names of every `#[workflow]` option, for `#[task]`, which takes them alongside the step options.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    SPECS.iter().map(|spec| spec.name)
}

fn read_version(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    o.version = options::value(cx, meta, r#"version = "v2""#)
        .and_then(|v| options::lit_str(cx, v, r#"version = "v2""#));
}

fn read_cron_input(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    const EXAMPLE: &str = r##"cron_input = r#"{"batch": 100}"#"##;
    o.cron_input = options::value(cx, meta, EXAMPLE).and_then(|v| options::lit_str(cx, v, EXAMPLE));
}

const DEFAULT_FILTER_SPECS: &[OptionSpec<DefaultFilter>] = &[
    OptionSpec {
        name: "expression",
        repeatable: false,
        read: |cx, f, meta| {
            f.expression = str_option(cx, meta, r#"expression = "input.priority > 2""#);
        },
    },
    OptionSpec {
        name: "scope",
        repeatable: false,
        read: |cx, f, meta| {
            f.scope = str_option(cx, meta, r#"scope = "tenant-1""#);
        },
    },
    OptionSpec {
        name: "payload",
        repeatable: false,
        read: |cx, f, meta| {
            f.payload = str_option(cx, meta, r##"payload = r#"{"vip": true}"#"##);
        },
    },
];

fn str_option(cx: &Ctxt, meta: &Meta, example: &str) -> Option<syn::LitStr> {
    options::value(cx, meta, example).and_then(|v| options::lit_str(cx, v, example))
}

fn read_default_filter(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    const EXAMPLE: &str =
        r#"default_filter(expression = "input.priority > 2", scope = "tenant-1")"#;
    let Some(metas) = options::nested(cx, meta, EXAMPLE) else {
        return;
    };
    let mut filter = DefaultFilter {
        keyword: syn::spanned::Spanned::span(meta.path()),
        expression: None,
        scope: None,
        payload: None,
    };
    options::read_options(
        cx,
        "default_filter",
        DEFAULT_FILTER_SPECS,
        &metas,
        &mut filter,
    );
    o.default_filters.push(filter);
}

const IDEMPOTENCY_SPECS: &[OptionSpec<Idempotency>] = &[
    OptionSpec {
        name: "expression",
        repeatable: false,
        read: |cx, i, meta| {
            i.expression = str_option(cx, meta, r#"expression = "input.order_id""#);
        },
    },
    OptionSpec {
        name: "ttl",
        repeatable: false,
        read: read_idempotency_ttl,
    },
    OptionSpec {
        name: "method",
        repeatable: false,
        read: |cx, i, meta| {
            const CHOICES: &[(&str, IdempotencyMethod)] = &[
                ("ttl", IdempotencyMethod::Ttl),
                ("status", IdempotencyMethod::Status),
            ];
            i.method = options::value(cx, meta, r#"method = "ttl""#)
                .and_then(|v| options::choice(cx, v, "idempotency method", CHOICES));
        },
    },
];

fn read_idempotency_ttl(cx: &Ctxt, i: &mut Idempotency, meta: &Meta) {
    i.ttl_given = true;
    let Some(lit) = str_option(cx, meta, r#"ttl = "10m""#) else {
        return;
    };
    match duration::parse_millis(&lit.value()) {
        Ok(millis) => {
            i.ttl = Some(DurationLit {
                millis,
                span: lit.span(),
            });
        }
        Err(message) => cx.error_spanned_by(&lit, message),
    }
}

fn read_idempotency(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    const EXAMPLE: &str = r#"idempotency(expression = "input.order_id", ttl = "10m")"#;
    let Some(metas) = options::nested(cx, meta, EXAMPLE) else {
        return;
    };
    let mut idempotency = Idempotency {
        keyword: syn::spanned::Spanned::span(meta.path()),
        expression: None,
        ttl: None,
        ttl_given: false,
        method: None,
    };
    options::read_options(
        cx,
        "idempotency",
        IDEMPOTENCY_SPECS,
        &metas,
        &mut idempotency,
    );
    o.idempotency = Some(idempotency);
}

fn read_name(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    o.name = options::value(cx, meta, r#"name = "order-pipeline""#)
        .and_then(|v| options::lit_str(cx, v, r#"name = "order-pipeline""#));
}

fn read_description(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    o.description = options::value(cx, meta, r#"description = "...""#)
        .and_then(|v| options::lit_str(cx, v, r#"description = "...""#));
}

fn read_on_events(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    const EXAMPLE: &str = r#"on_events = ["order:created"]"#;
    if let Some(v) = options::value(cx, meta, EXAMPLE) {
        o.on_events = options::str_list(cx, v, EXAMPLE);
    }
}

fn read_concurrency(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    o.concurrency.extend(concurrency::parse(cx, meta));
}

fn read_cron(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    const EXAMPLE: &str = r#"cron = ["0 * * * *"]"#;
    if let Some(v) = options::value(cx, meta, EXAMPLE) {
        o.cron = options::str_list(cx, v, EXAMPLE);
    }
}

fn read_sticky(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    const CHOICES: &[(&str, Sticky)] = &[("soft", Sticky::Soft), ("hard", Sticky::Hard)];
    o.sticky = options::value(cx, meta, r#"sticky = "soft""#)
        .and_then(|v| options::choice(cx, v, "sticky strategy", CHOICES));
}

fn read_default_priority(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    o.default_priority = options::value(cx, meta, "default_priority = 2")
        .and_then(|v| options::lit_int(cx, v, "default_priority = 2"));
}

fn read_crate(cx: &Ctxt, o: &mut WorkflowOptions, meta: &Meta) {
    const EXAMPLE: &str = r#"crate = "::my_reexport::acf_sdk""#;
    let Some(lit) =
        options::value(cx, meta, EXAMPLE).and_then(|v| options::lit_str(cx, v, EXAMPLE))
    else {
        return;
    };
    match lit.parse::<Path>() {
        Ok(path) => o.krate = Some(path),
        Err(_) => cx.error_spanned_by(
            &lit,
            format!("`crate` must be a path to the acf_sdk crate, e.g. `{EXAMPLE}`"),
        ),
    }
}
