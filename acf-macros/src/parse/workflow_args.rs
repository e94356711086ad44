//! `#[workflow(...)]` options.

use syn::{Meta, Path};

use super::concurrency;
use super::options::{self, OptionSpec};
use crate::ctxt::Ctxt;
use crate::model::{Sticky, WorkflowOptions};

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
