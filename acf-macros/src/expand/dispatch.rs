//! `Workflow::dispatch`: one arm per lower-cased readable id, decoding the input and parent outputs into the
//! types the step declares, calling the method and encoding its output.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;

use super::types::{input_type, return_type, value_type};
use crate::model::{Step, StepKind, Workflow};

/// The body of `fn dispatch<'a>(&'a self, __acf_step: &'a str, __acf_ctx: Context) -> BoxFuture<'a, StepResult>`.
pub(crate) fn body(wf: &Workflow<'_>, workflow_name: &str) -> TokenStream {
    let arms = wf
        .steps
        .iter()
        .chain(wf.on_failure.first())
        .chain(wf.on_success.first())
        .map(|step| arm(wf, step));
    quote! {
        __acf::Box::pin(async move {
            match __acf_step {
                #(#arms)*
                _ => __acf::Err(__acf::unknown_step(#workflow_name, __acf_step)),
            }
        })
    }
}

fn arm(wf: &Workflow<'_>, step: &Step<'_>) -> TokenStream {
    let id = step.readable_id();
    let self_ty = wf.self_ty;
    let method = step.ident();
    let mut decodes = Vec::new();
    let mut call_args = Vec::new();
    // The context comes first: borrowed, or moved when the step takes it by value (decoding is done by then).
    // Spanned on the declared type, so a wrong context type is reported there.
    if let Some(ctx_arg) = step.args.first() {
        let (_, borrowed) = value_type(&ctx_arg.ty);
        call_args.push(if borrowed {
            quote_spanned!(ctx_arg.ty.span()=> &__acf_ctx)
        } else {
            quote_spanned!(ctx_arg.ty.span()=> __acf_ctx)
        });
    }
    if let Some(input_arg) = step.args.get(1) {
        let (ty, borrowed) = value_type(&input_arg.ty);
        let expected = input_type(wf).filter(|_| step.kind != StepKind::Step);
        // A handler's input may be `Option<Input>` (see `HandlerInput`).
        decodes.push(if let Some(expected) = expected {
            quote_spanned! {input_arg.ty.span()=>
                let __acf_input: #ty =
                    __acf::decode_handler_input::<#ty, #expected>(&__acf_ctx, #id)?;
            }
        } else {
            quote_spanned! {input_arg.ty.span()=>
                let __acf_input: #ty = __acf::decode_input::<#ty>(&__acf_ctx, #id)?;
            }
        });
        call_args.push(if borrowed {
            quote!(&__acf_input)
        } else {
            quote!(__acf_input)
        });
    }
    for (i, (arg, parent)) in step
        .parent_args()
        .iter()
        .zip(&step.options.parents)
        .enumerate()
    {
        let (ty, borrowed) = value_type(&arg.ty);
        let var = format_ident!("__acf_parent_{}", i);
        let parent_id = wf
            .steps
            .iter()
            .find(|s| s.ident() == parent)
            .map_or_else(|| parent.to_string(), Step::readable_id);
        decodes.push(quote_spanned! {arg.ty.span()=>
            let #var: #ty = __acf::decode_parent::<#ty>(&__acf_ctx, #id, #parent_id)?;
        });
        call_args.push(if borrowed {
            quote!(&#var)
        } else {
            quote!(#var)
        });
    }
    // Bound as a value before the call: the method is then "used as a value", so clippy's `unused_async`
    // does not ask the user to drop an `async` the macro requires. The call is spanned on the method name,
    // so a signature that does not fit these arguments is reported there.
    let call = quote_spanned! {method.span()=>
        __acf_method(self, #(#call_args),*).await
    };
    // The return value is annotated with the declared type and projected through `StepReturn` spanned on that
    // type, so a non-`Result` return or an unconvertible error is reported once, at the user's type.
    let output = if let Some(ret) = return_type(step) {
        // `?` included: its conversion also names the projected type.
        let project = quote_spanned! {ret.span()=>
            <#ret as __acf::StepReturn>::into_step_result(__acf_return)?
        };
        quote! {
            let __acf_return: #ret = #call;
            let __acf_output = #project;
        }
    } else {
        quote! {
            let __acf_output = __acf::StepReturn::into_step_result(#call)?;
        }
    };
    // An output type that is not `Serialize` is reported at the declared return type.
    let encode_span = return_type(step).map_or_else(|| method.span(), syn::spanned::Spanned::span);
    let encode = quote_spanned!(encode_span=> __acf::encode_output(#id, &__acf_output));
    quote! {
        #id => {
            #(#decodes)*
            let __acf_method = <#self_ty>::#method;
            #output
            #encode
        }
    }
}
