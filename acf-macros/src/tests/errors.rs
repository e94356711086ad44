//! The rendered messages of each compile-time check (spans and carets are covered by the UI tests,
//! `tests/it/macros_ui.rs`).

use proc_macro2::TokenStream;
use quote::quote;

use super::messages_of;

/// Every `compile_error!` message the workflow macro emits for `args` and `item`, in order.
fn messages(args: TokenStream, item: TokenStream) -> String {
    messages_of(&crate::expand::workflow(args, item))
}

#[test]
fn unknown_step_option() {
    insta::assert_snapshot!(
        "unknown_step_option",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step(retry = 3)]
                async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn unknown_workflow_option() {
    insta::assert_snapshot!(
        "unknown_workflow_option",
        messages(
            quote!(nmae = "x"),
            quote! {
            impl W {
                #[step]
                async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn duplicate_option() {
    insta::assert_snapshot!(
        "duplicate_option",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step(retries = 1, retries = 2)]
                async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn bad_durations() {
    insta::assert_snapshot!(
        "bad_durations",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step(execution_timeout = "2d", schedule_timeout = "1.5s", backoff_max = "30")]
                async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn not_async_and_wrong_receiver() {
    insta::assert_snapshot!(
        "not_async_and_wrong_receiver",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step]
                fn a(&mut self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                #[step]
                async fn b(self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn invalid_names() {
    insta::assert_snapshot!(
        "invalid_names",
        messages(
            quote!(name = "my workflow"),
            quote! {
            impl W {
                #[step(name = "a:b")]
                async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn duplicate_step() {
    insta::assert_snapshot!(
        "duplicate_step",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step]
                async fn fetch(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                #[step(name = "FETCH")]
                async fn fetch_again(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn unknown_parent_suggests_nearest() {
    insta::assert_snapshot!(
        "unknown_parent_suggests_nearest",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step]
                async fn fetch(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                #[step(parents = [fecth])]
                async fn parse(&self, ctx: &Context, input: &In, fetched: &u8) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn cycle_reports_every_edge() {
    insta::assert_snapshot!(
        "cycle_reports_every_edge",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step(parents = [c])]
                async fn a(&self, ctx: &Context, input: &In, c: &u8) -> Result<Out, E> { todo!() }
                #[step(parents = [a])]
                async fn b(&self, ctx: &Context, input: &In, a: &u8) -> Result<Out, E> { todo!() }
                #[step(parents = [b])]
                async fn c(&self, ctx: &Context, input: &In, b: &u8) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn parent_argument_count() {
    insta::assert_snapshot!(
        "parent_argument_count",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step]
                async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                #[step]
                async fn b(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                #[step(parents = [a, b])]
                async fn too_few(&self, ctx: &Context, input: &In, a: &u8) -> Result<Out, E> { todo!() }
                #[step(parents = [a])]
                async fn too_many(&self, ctx: &Context, input: &In, a: &u8, b: &u8) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn two_on_failure() {
    insta::assert_snapshot!(
        "two_on_failure",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step]
                async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                #[on_failure]
                async fn first(&self, ctx: &Context, input: &In) -> Result<(), E> { todo!() }
                #[on_failure]
                async fn second(&self, ctx: &Context, input: &In) -> Result<(), E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn option_values_out_of_range() {
    insta::assert_snapshot!(
        "option_values_out_of_range",
        messages(
            quote!(
                default_priority = 7,
                concurrency(
                    expression = "input.k",
                    max_runs = 0,
                    strategy = "queue_newest"
                ),
                sticky = "firm",
                cron = ["@daily", "* *"]
            ),
            quote! {
            impl W {
                #[step(retries = -1, backoff_factor = 0.5, slots = 0, rate_limit(units = 1), worker_label(key = "gpu"), worker_label(key = "gpu", value = 1, comparator = "equals"))]
                async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn missing_context_input_and_return() {
    insta::assert_snapshot!(
        "missing_context_input_and_return",
        messages(
            quote!(),
            quote! {
            impl W {
                #[step]
                async fn a(&self) {}
            }
                }
        )
    );
}

#[test]
fn not_an_inherent_impl() {
    insta::assert_snapshot!(
        "not_an_inherent_impl",
        messages(
            quote!(),
            quote! {
            impl<T> Trait for W<T> {
                #[step]
                async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn no_steps() {
    insta::assert_snapshot!(
        "no_steps",
        messages(
            quote!(),
            quote! {
            impl W {
                fn helper(&self) {}
            }
                }
        )
    );
}

#[test]
fn helper_parent_and_on_failure_options() {
    insta::assert_snapshot!(
        "helper_parent_and_on_failure_options",
        messages(
            quote!(),
            quote! {
            impl W {
                fn helper(&self) {}
                #[step(parents = [helper, cleanup])]
                async fn a(&self, ctx: &Context, input: &In, h: &u8, c: &u8) -> Result<Out, E> { todo!() }
                #[on_failure(parents = [a], durable)]
                async fn cleanup(&self, ctx: &Context, input: &In, extra: &u8) -> Result<(), E> { todo!() }
            }
                }
        )
    );
}

#[test]
fn step_outside_a_workflow() {
    let output = crate::expand::misplaced(
        crate::model::StepKind::Step,
        quote!(),
        quote!(
            async fn a(&self) {}
        ),
    );
    let file: syn::File = syn::parse2(output).expect("item and error parse");
    assert_eq!(
        file.items.len(),
        2,
        "the item is kept and the error follows it"
    );
    insta::assert_snapshot!(
        "step_outside_a_workflow",
        quote::ToTokens::to_token_stream(&file.items[1]).to_string()
    );
}

#[test]
fn resolution_marker_expands_to_nothing() {
    let output = crate::expand::misplaced(
        crate::model::StepKind::OnFailure,
        quote!(__acf_resolve),
        quote!(
            const _: () = ();
        ),
    );
    assert!(output.is_empty(), "{output}");
}
