//! Syntax → model: reads `#[workflow(...)]`, finds our method attributes, and records every error in
//! the [`Ctxt`] instead of stopping at the first.

mod concurrency;
mod conditions;
mod duration;
pub(crate) mod options;
mod step_args;
mod workflow_args;

use proc_macro2::TokenStream;
use syn::{Attribute, FnArg, ImplItem, ItemImpl, Meta, Type};

use crate::ctxt::Ctxt;
use crate::model::{Step, StepKind, Workflow};

/// Which of our method attributes `attr` is, matched on the last path segment so that
/// `#[step]`, `#[acf_sdk::step]` and renamed re-exports all work.
pub(crate) fn method_attribute(attr: &Attribute) -> Option<StepKind> {
    let last = attr.path().segments.last()?;
    if last.ident == "step" {
        Some(StepKind::Step)
    } else if last.ident == "on_failure" {
        Some(StepKind::OnFailure)
    } else if last.ident == "on_success" {
        Some(StepKind::OnSuccess)
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) use step_args::names as step_option_names;
pub(crate) use workflow_args::names as workflow_option_names;

/// Builds the model of a `#[workflow]` impl block.
pub(crate) fn workflow<'a>(cx: &Ctxt, args: TokenStream, item: &'a ItemImpl) -> Workflow<'a> {
    let options = workflow_args::parse(cx, &options::parse_list(cx, args));
    check_impl_shape(cx, item);
    let type_ident = match &*item.self_ty {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map(|segment| &segment.ident)
        }
        other => {
            cx.error_spanned_by(
                other,
                "`#[workflow]` needs a named type, e.g. `impl OrderPipeline { ... }`",
            );
            None
        }
    };
    let mut steps = Vec::new();
    let mut on_failure = Vec::new();
    let mut on_success = Vec::new();
    let mut attribute_paths: Vec<&syn::Path> = Vec::new();
    for impl_item in &item.items {
        let ImplItem::Fn(method) = impl_item else {
            reject_on_non_method(cx, impl_item);
            continue;
        };
        let mut ours = method
            .attrs
            .iter()
            .filter_map(|attr| method_attribute(attr).map(|kind| (kind, attr)));
        let Some((kind, attr)) = ours.next() else {
            continue;
        };
        if !attribute_paths.contains(&attr.path()) {
            attribute_paths.push(attr.path());
        }
        for (_, extra) in ours {
            cx.error_spanned_by(
                extra,
                "a method carries at most one of `#[step]`, `#[on_failure]` and `#[on_success]`; remove this attribute",
            );
        }
        let metas = match &attr.meta {
            Meta::Path(_) => Vec::new(),
            Meta::List(list) => options::parse_list(cx, list.tokens.clone()),
            Meta::NameValue(nv) => {
                cx.error_spanned_by(
                    nv,
                    format!("expected `#[{0}]` or `#[{0}(...)]`", kind.name()),
                );
                Vec::new()
            }
        };
        let step = Step {
            kind,
            method,
            attr,
            options: step_args::parse(cx, kind, &metas),
            args: method
                .sig
                .inputs
                .iter()
                .filter_map(|arg| match arg {
                    FnArg::Typed(typed) => Some(typed),
                    FnArg::Receiver(_) => None,
                })
                .collect(),
        };
        match kind {
            StepKind::Step => steps.push(step),
            StepKind::OnFailure => on_failure.push(step),
            StepKind::OnSuccess => on_success.push(step),
        }
    }
    Workflow {
        original: item,
        self_ty: &item.self_ty,
        type_ident,
        options,
        steps,
        on_failure,
        on_success,
        standalone: false,
        attribute_paths,
    }
}

/// The block must be a plain inherent impl: the macro generates trait impls for the type itself.
fn check_impl_shape(cx: &Ctxt, item: &ItemImpl) {
    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(
            path,
            "`#[workflow]` goes on an inherent impl block (`impl MyWorkflow { ... }`), not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &item.generics,
            "generic workflows are not supported: a workflow registers one fixed definition; use a concrete type",
        );
    }
}

fn reject_on_non_method(cx: &Ctxt, impl_item: &ImplItem) {
    let attrs: &[Attribute] = match impl_item {
        ImplItem::Const(c) => &c.attrs,
        ImplItem::Type(t) => &t.attrs,
        ImplItem::Macro(m) => &m.attrs,
        _ => &[],
    };
    for attr in attrs {
        if let Some(kind) = method_attribute(attr) {
            cx.error_spanned_by(
                attr,
                format!(
                    "`{}` can only be applied to an `async fn` method",
                    kind.attribute()
                ),
            );
        }
    }
}

/// The impl block with our attributes removed, re-emitted exactly as written otherwise, except that
/// steps allow `clippy::unused_async`: the macro requires `async` even for a step that never awaits.
pub(crate) fn strip_attributes(item: &ItemImpl) -> ItemImpl {
    let mut stripped = item.clone();
    for impl_item in &mut stripped.items {
        let attrs = match impl_item {
            ImplItem::Fn(f) => {
                if f.attrs.iter().any(|attr| method_attribute(attr).is_some()) {
                    f.attrs
                        .push(syn::parse_quote!(#[allow(clippy::unused_async)]));
                }
                &mut f.attrs
            }
            ImplItem::Const(c) => &mut c.attrs,
            ImplItem::Type(t) => &mut t.attrs,
            ImplItem::Macro(m) => &mut m.attrs,
            _ => continue,
        };
        attrs.retain(|attr| method_attribute(attr).is_none());
    }
    stripped
}
