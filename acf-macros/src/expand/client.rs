//! `MyWorkflow::client(&client)`: a typed trigger client whose input is the workflow input and whose result is
//! the output of the single leaf step, or a tuple of the leaves' outputs (declaration order) when there are several.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;

use super::types::{input_type, return_type};
use crate::model::{Step, Workflow};

/// The inherent `client` constructor. The trigger client needs `Input: Serialize` and `Output: DeserializeOwned`;
/// its call is spanned on the leaf's return type, where a missing `Deserialize` (the usual omission) belongs.
pub(crate) fn expand(wf: &Workflow<'_>, workflow_name: &str) -> TokenStream {
    let Some(input) = input_type(wf) else {
        return TokenStream::new();
    };
    let leaves: Vec<&Step<'_>> = wf.leaves();
    let outputs: Vec<TokenStream> = leaves
        .iter()
        .filter_map(|leaf| {
            return_type(leaf)
                .map(|ty| quote_spanned!(ty.span()=> <#ty as __acf::StepReturn>::Output))
        })
        .collect();
    let ids: Vec<String> = leaves.iter().map(|leaf| leaf.readable_id()).collect();
    let self_ty = wf.self_ty;
    // The signature names the leaves' output types through `StepReturn`; spanned on the first leaf's return
    // type, an invalid return type is reported there (once, deduplicated with the dispatch's report).
    let signature_span = leaves
        .first()
        .copied()
        .and_then(return_type)
        .map_or_else(proc_macro2::Span::call_site, syn::spanned::Spanned::span);
    let (output, constructor) = match (outputs.as_slice(), ids.as_slice()) {
        ([output], [id]) => (
            output.clone(),
            quote_spanned! {signature_span=>
                __acf::TypedWorkflowClient::new(client, #workflow_name, ::core::option::Option::Some(#id))
            },
        ),
        _ => (
            quote!((#(#outputs,)*)),
            quote_spanned! {signature_span=>
                __acf::TypedWorkflowClient::with_decoder(client, #workflow_name, |__acf_run| {
                    __acf::Ok((#(__acf::decode_run_output::<#outputs>(__acf_run, #ids)?,)*))
                })
            },
        ),
    };
    // Behind a local alias, the signature stays a plain path: clippy's `type_complexity` has nothing to say
    // about generated code in the user's span, and the alias is inlined by rustdoc.
    let alias = quote_spanned!(signature_span=> __AcfClient);
    let leaf_list = ids
        .iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let doc = format!(
        " A typed client that triggers the `{workflow_name}` workflow and returns the output of its leaf step(s) ({leaf_list})."
    );
    quote! {
        type __AcfClient = __acf::TypedWorkflowClient<#input, #output>;

        #[automatically_derived]
        impl #self_ty {
            #[doc = #doc]
            pub fn client(client: &__acf::Client) -> #alias {
                #constructor
            }
        }
    }
}
