//! Expansion snapshots: the generated code for one scenario each, formatted with prettyplease.

use proc_macro2::TokenStream;
use quote::quote;

fn expand(args: TokenStream, item: TokenStream) -> String {
    let output = crate::expand::workflow(args, item);
    let file: syn::File = syn::parse2(output.clone())
        .unwrap_or_else(|err| panic!("expansion does not parse ({err}):\n{output}"));
    prettyplease::unparse(&file)
}

#[test]
fn single_step_defaults() {
    insta::assert_snapshot!(
        "single_step_defaults",
        expand(
            quote!(),
            quote! {
                impl SendEmail {
                    #[step]
                    async fn send(&self, ctx: &Context, input: &Email) -> Result<Sent, StepError> {
                        ::core::todo!()
                    }
                }
            }
        )
    );
}
