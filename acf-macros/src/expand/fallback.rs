//! What a workflow with errors expands to: the user's impl (minus our attributes), the errors, and a minimal
//! `Workflow` impl, so IDEs keep completing the type and code that registers the workflow elsewhere gets no
//! follow-on "trait not implemented" errors. The stub never runs: the errors stop compilation.

use proc_macro2::TokenStream;
use quote::quote;

use super::paths::Private;
use super::registration::workflow_name;
use crate::model::Workflow;
use crate::parse;

pub(crate) fn expand(wf: &Workflow<'_>, errors: &syn::Error) -> TokenStream {
    let stripped = parse::strip_attributes(wf.original);
    let errors = errors.to_compile_error();
    let resolve = super::resolve_attributes(wf);
    let constants = super::step_constants(wf);
    let private = Private::new(wf.options.krate.as_ref());
    // Only for a plain named type: for a trait or generic impl the stub would add errors of its own.
    let plain = wf.original.trait_.is_none()
        && wf.original.generics.params.is_empty()
        && wf.type_ident.is_some();
    let stub = plain.then(|| {
        let self_ty = wf.self_ty;
        let name = workflow_name(wf);
        quote! {
            #[automatically_derived]
            impl __acf::Workflow for #self_ty {
                fn name(&self) -> &str {
                    #name
                }

                fn definition(&self) -> __acf::WorkflowDefinition {
                    __acf::WorkflowDefinition::new(#name)
                }

                fn dispatch<'__acf>(
                    &'__acf self,
                    __acf_step: &'__acf str,
                    _: __acf::Context,
                ) -> __acf::BoxFuture<'__acf, __acf::StepResult> {
                    __acf::Box::pin(async move { __acf::Err(__acf::unknown_step(#name, __acf_step)) })
                }
            }
        }
    });
    quote! {
        #stripped

        #[doc(hidden)]
        const _: () = {
            use #private as __acf;

            #resolve
            #constants
            #stub
        };

        #errors
    }
}
