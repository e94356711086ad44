//! What a workflow with errors expands to: the user's impl (minus our attributes) and the errors,
//! so IDEs keep completing the type and rustc adds no follow-on errors about missing methods.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::Workflow;
use crate::parse;

pub(crate) fn expand(wf: &Workflow<'_>, errors: &syn::Error) -> TokenStream {
    let stripped = parse::strip_attributes(wf.original);
    let errors = errors.to_compile_error();
    let resolve = super::resolve_attributes(wf);
    quote! {
        #stripped
        const _: () = {
            #resolve
        };
        #errors
    }
}
