//! Type checks rustc performs for us: every step takes the workflow's input type (a failure or success handler may
//! take `Option` of it), and every parent argument
//! has the parent's output type. Each check is spanned on the user's type, and the runtime's traits carry
//! `#[diagnostic::on_unimplemented]`, so the error reads as ours and points at the right token.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;

use super::types::{input_type, return_type, value_type};
use crate::model::Workflow;

/// Statements in a never-called closure inside the trait impl (so `Self` in user types still resolves).
pub(crate) fn checks(wf: &Workflow<'_>) -> TokenStream {
    let mut out = Vec::new();
    if let Some(expected) = input_type(wf) {
        for step in wf.steps.iter().skip(1) {
            if let Some(arg) = step.args.get(1) {
                let (ty, _) = value_type(&arg.ty);
                out.push(quote_spanned! {ty.span()=>
                    __acf::assert_same_input::<#ty, #expected>();
                });
            }
        }
        // A handler may also take `Option<Input>`: it runs even when the first step refused the input.
        for handler in wf.on_failure.iter().chain(&wf.on_success) {
            if let Some(arg) = handler.args.get(1) {
                let (ty, _) = value_type(&arg.ty);
                out.push(quote_spanned! {ty.span()=>
                    __acf::assert_handler_input::<#ty, #expected>();
                });
            }
        }
    }
    for step in &wf.steps {
        for (arg, parent) in step.parent_args().iter().zip(&step.options.parents) {
            let Some(parent_step) = wf.steps.iter().find(|s| s.ident() == parent) else {
                continue;
            };
            let Some(parent_return) = return_type(parent_step) else {
                continue;
            };
            let (ty, _) = value_type(&arg.ty);
            out.push(quote_spanned! {ty.span()=>
                __acf::assert_parent_argument::<#ty, <#parent_return as __acf::StepReturn>::Output>();
            });
        }
    }
    if out.is_empty() {
        return TokenStream::new();
    }
    quote! {
        let _ = || {
            #(#out)*
        };
    }
}
