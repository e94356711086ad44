//! Model → tokens. The user's impl is always re-emitted (minus our attributes); generated items refer
//! to the runtime only through absolute paths under `__private`.

mod assertions;
mod client;
mod dispatch;
mod fallback;
mod paths;
mod registration;
mod task;
mod types;

#[cfg(test)]
pub(crate) use task::option_names as task_option_names;
pub(crate) use task::task;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Item;

use crate::ctxt::Ctxt;
use crate::model::{StepKind, Workflow};
use crate::{parse, validate};

/// `#[workflow(args)] item`.
pub(crate) fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        // Unparsable input (often mid-edit): give it back untouched so rustc reports the real syntax error.
        Err(err) => return with_error(item, &err),
    };
    let Item::Impl(item_impl) = parsed else {
        let err = syn::Error::new(
            item_keyword(&parsed),
            "`#[workflow]` goes on an inherent impl block: `#[workflow] impl MyWorkflow { ... }`",
        );
        return with_error(item, &err);
    };
    let cx = Ctxt::new();
    let model = parse::workflow(&cx, args, &item_impl);
    validate::check(&cx, &model);
    let output = match cx.check() {
        Ok(()) => generate(&model),
        Err(errors) => fallback::expand(&model, &errors),
    };
    debug_dump(&model, &output);
    output
}

/// `ACF_MACROS_DEBUG=1` prints every `#[workflow]` expansion to stderr, `ACF_MACROS_DEBUG=OrderPipeline` only
/// that type's. Off (and silent) unless set; the variable is read at expansion time, so touch the file or
/// `cargo clean -p` the crate to see it again.
fn debug_dump(wf: &Workflow<'_>, output: &TokenStream) {
    let Some(wanted) = std::env::var_os("ACF_MACROS_DEBUG") else {
        return;
    };
    let type_name = wf.type_ident.map(ToString::to_string).unwrap_or_default();
    if wanted == "1" || wanted == type_name.as_str() {
        eprintln!("#[workflow] expansion for `{type_name}`:\n{output}");
    }
}

fn generate(wf: &Workflow<'_>) -> TokenStream {
    let private = paths::Private::new(wf.options.krate.as_ref());
    let stripped = parse::strip_attributes(wf.original);
    let self_ty = wf.self_ty;
    let name = registration::workflow_name(wf);
    let client = client::expand(wf, &name);
    let checks = assertions::checks(wf);
    let definition = registration::definition(wf);
    let dispatch = dispatch::body(wf, &name);
    let resolve = resolve_attributes(wf);
    let constants = step_constants(wf);
    quote! {
        #stripped

        #[doc(hidden)]
        #[allow(unused_qualifications, clippy::absolute_paths, clippy::used_underscore_binding)]
        const _: () = {
            use #private as __acf;

            #resolve

            #constants

            #client

            #[automatically_derived]
            impl __acf::Workflow for #self_ty {
                fn name(&self) -> &str {
                    #name
                }

                fn definition(&self) -> __acf::WorkflowDefinition {
                    #checks
                    #definition
                }

                fn dispatch<'__acf>(
                    &'__acf self,
                    __acf_step: &'__acf str,
                    __acf_ctx: __acf::Context,
                ) -> __acf::BoxFuture<'__acf, __acf::StepResult> {
                    #dispatch
                }
            }
        };
    }
}

/// One associated constant per step, `Type::STEP_NAME: &str = "<readable id>"`, so code naming a step (a
/// handler reading a parent's output, a test) cannot drift from the declaration. Also emitted when the workflow
/// has errors, so uses of the constants do not add follow-on errors.
pub(crate) fn step_constants(wf: &Workflow<'_>) -> TokenStream {
    if wf.type_ident.is_none()
        || wf.original.trait_.is_some()
        || !wf.original.generics.params.is_empty()
    {
        return TokenStream::new();
    }
    let self_ty = wf.self_ty;
    let constants = wf.all_steps().map(|step| {
        let ident = step.ident();
        let name = syn::Ident::new(
            &ident.to_string().trim_start_matches("r#").to_uppercase(),
            ident.span(),
        );
        let id = step.readable_id();
        let doc = format!(
            " The readable id of the `{ident}` {} (`\"{id}\"`).",
            match step.kind {
                StepKind::Step => "step",
                StepKind::OnFailure => "failure handler",
                StepKind::OnSuccess => "success handler",
            }
        );
        quote! {
            #[doc = #doc]
            pub const #name: &'static str = #id;
        }
    });
    quote! {
        #[automatically_derived]
        impl #self_ty {
            #(#constants)*
        }
    }
}

/// The marker argument of a resolution-only invocation (see [`resolve_attributes`]).
const RESOLVE_MARKER: &str = "__acf_resolve";

/// Invokes each of our method attributes once, by the path the user wrote, on an empty item. The workflow
/// macro strips them before rustc resolves them, so without this `use acf_sdk::step;` would be reported as
/// unused, and a missing import would go unnoticed. The invocations expand to nothing.
pub(crate) fn resolve_attributes(wf: &Workflow<'_>) -> TokenStream {
    let marker = syn::Ident::new(RESOLVE_MARKER, Span::call_site());
    let paths = &wf.attribute_paths;
    quote! {
        #(
            #[#paths(#marker)]
            const _: () = ();
        )*
    }
}

/// `#[step]` or `#[on_failure]` outside a `#[workflow]` impl: the item unchanged, plus an error on the attribute.
pub(crate) fn misplaced(kind: StepKind, args: TokenStream, item: TokenStream) -> TokenStream {
    let is_marker = matches!(syn::parse2::<syn::Ident>(args), Ok(ident) if ident == RESOLVE_MARKER);
    if is_marker {
        return TokenStream::new();
    }
    let message = format!(
        "`{}` must be on a method inside a `#[workflow]` impl block; add `#[workflow]` to the enclosing `impl`",
        kind.attribute()
    );
    // For an attribute macro the call site is the attribute itself: the narrowest token to blame.
    with_error(item, &syn::Error::new(Span::call_site(), message))
}

/// The user's tokens unchanged, followed by the error.
fn with_error(mut item: TokenStream, err: &syn::Error) -> TokenStream {
    item.extend(err.to_compile_error());
    item
}

/// The leading keyword of a non-impl item, so the error underlines `struct`/`fn`/... rather than the whole item.
fn item_keyword(item: &Item) -> Span {
    use syn::spanned::Spanned as _;
    match item {
        Item::Struct(s) => s.struct_token.span,
        Item::Enum(e) => e.enum_token.span,
        Item::Fn(f) => f.sig.fn_token.span,
        Item::Trait(t) => t.trait_token.span,
        Item::Mod(m) => m.mod_token.span,
        other => other.span(),
    }
}
