//! `#[task(...)]` on a free `async fn`: a one-task workflow, as Python's `@hatchet.task` / TS `hatchet.task`.
//!
//! ```text
//! #[task(name = "greet", retries = 2, on_events = ["user:created"])]
//! pub async fn greet(ctx: &Context, input: &User) -> Result<Greeting, StepError> { .. }
//! ```
//!
//! keeps the function and declares `pub struct Greet;` (the function name in `PascalCase`), a `#[workflow]`
//! whose single step calls the function. The workflow and its task are both named `name` (default: the
//! function name), as Python names a standalone task. Options are those of `#[workflow]` and the step options
//! Python's `hatchet.task` / `hatchet.durable_task` take; `concurrency` applies to the task, as in Python.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{FnArg, ItemFn, Meta, ReturnType};

use super::{fallback, generate, with_error};
use crate::ctxt::Ctxt;
use crate::parse::{self, options};
use crate::suggest::{did_you_mean, one_of};
use crate::validate;

/// Options of `#[task]` that configure its single step (all others configure the workflow).
pub(crate) const STEP_OPTIONS: &[&str] = &[
    "retries",
    "backoff_factor",
    "backoff_max",
    "execution_timeout",
    "schedule_timeout",
    "concurrency",
    "rate_limit",
    "worker_label",
    "durable",
    "slots",
];

/// Every option `#[task]` accepts, in the order error messages list them.
pub(crate) fn option_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = vec!["name"];
    names.extend(parse::workflow_option_names().filter(|n| !matches!(*n, "name" | "concurrency")));
    names.extend(STEP_OPTIONS);
    names
}

/// `#[task(args)] item`.
pub(crate) fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(function) = syn::parse2::<ItemFn>(item.clone()) else {
        let err = syn::Error::new(
            Span::call_site(),
            "`#[task]` goes on a free `async fn`: `#[task] async fn greet(ctx: &Context, input: &Input) -> Result<Output, StepError>`",
        );
        return with_error(item, &err);
    };
    if let Err(err) = check_signature(&function) {
        return with_error(item, &err);
    }
    let cx = Ctxt::new();
    let metas = options::parse_list(&cx, args);
    let mut workflow_metas = Vec::new();
    let mut step_metas = Vec::new();
    let mut explicit_name = None;
    let all = option_names();
    for meta in metas {
        let key = options::key(&meta);
        if key == "name" {
            explicit_name = Some(meta.clone());
            workflow_metas.push(meta.clone());
            step_metas.push(meta);
        } else if STEP_OPTIONS.contains(&key.as_str()) {
            step_metas.push(meta);
        } else if all.contains(&key.as_str()) {
            workflow_metas.push(meta);
        } else {
            cx.error_spanned_by(
                meta.path(),
                format!(
                    "unknown `#[task]` option `{key}`{}\nvalid options are: {}",
                    did_you_mean(&key, all.iter().copied()),
                    one_of(all.iter().copied())
                ),
            );
        }
    }
    let fn_ident = &function.sig.ident;
    let name = fn_ident.to_string().trim_start_matches("r#").to_owned();
    if explicit_name.is_none() {
        // Python names the workflow and the task after the function.
        let meta: Meta = syn::parse_quote!(name = #name);
        workflow_metas.push(meta.clone());
        step_metas.push(meta);
    }
    let struct_ident = format_ident!(
        "{}",
        crate::naming::pascal_case(&name),
        span = fn_ident.span()
    );
    let vis = &function.vis;
    let wrapper = wrapper(&function);
    let item_impl: syn::ItemImpl = syn::parse_quote! {
        impl #struct_ident {
            #[step(#(#step_metas),*)]
            #wrapper
        }
    };
    let workflow_args = quote!(#(#workflow_metas),*);
    let mut model = parse::workflow(&cx, workflow_args, &item_impl);
    // The `#[step]` above is ours, not the user's: there is no import of it to resolve.
    model.attribute_paths.clear();
    model.standalone = true;
    validate::check(&cx, &model);
    let expansion = match cx.check() {
        Ok(()) => generate(&model),
        Err(errors) => fallback::expand(&model, &errors),
    };
    let doc = format!(
        " The `{name}` standalone task (a one-task workflow) declared by `#[task]` on [`{fn_ident}`]: register it with `worker.workflow({struct_ident})`, trigger it with `{struct_ident}::client(&client)`."
    );
    quote! {
        #[allow(clippy::unused_async)]
        #function

        #[doc = #doc]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #struct_ident;

        #expansion
    }
}

/// `async fn f(&self, a0: A0, a1: A1) -> R { f(a0, a1).await }`: the step method calling the user's function,
/// with the user's types (and spans), so type errors point at the function's signature.
fn wrapper(function: &ItemFn) -> TokenStream {
    let ident = &function.sig.ident;
    let output = &function.sig.output;
    let (params, names): (Vec<TokenStream>, Vec<syn::Ident>) = function
        .sig
        .inputs
        .iter()
        .enumerate()
        .filter_map(|(i, arg)| match arg {
            FnArg::Typed(typed) => {
                let name = format_ident!("__acf_arg{}", i);
                let ty = &typed.ty;
                Some((quote!(#name: #ty), name))
            }
            FnArg::Receiver(_) => None,
        })
        .unzip();
    quote! {
        #[doc(hidden)]
        async fn #ident(&self, #(#params),*) #output {
            #ident(#(#names),*).await
        }
    }
}

/// The function's own shape: async, free (no receiver), not generic, `(ctx, input)`, with a return type.
fn check_signature(function: &ItemFn) -> Result<(), syn::Error> {
    let sig = &function.sig;
    // The same accumulator as parsing, so every problem of the signature shows in one compile.
    let cx = Ctxt::new();
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "`#[task]` functions must be `async fn`; add `async` before `fn`",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            "tasks cannot be generic: the worker calls them with a concrete input type",
        );
    }
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        cx.error_spanned_by(
            receiver,
            "`#[task]` goes on a free function; for a method, use `#[step]` inside a `#[workflow]` impl block",
        );
    } else if sig.inputs.len() != 2 {
        let message = format!(
            "a task takes `ctx: &Context, input: &Input`; `{}` takes {} argument(s)",
            sig.ident,
            sig.inputs.len()
        );
        match sig.inputs.iter().nth(2) {
            Some(extra) => cx.error_spanned_by(extra, message),
            None => cx.error_at(sig.paren_token.span.join(), message),
        }
    }
    if let ReturnType::Default = sig.output {
        cx.error_spanned_by(
            &sig.ident,
            format!(
                "`{}` has no return type; tasks return `Result<Output, Error>`, e.g. `-> Result<Greeting, StepError>`",
                sig.ident
            ),
        );
    }
    cx.check()
}
