//! The messages of the checks on conditions, standalone tasks, the success handler, the remaining workflow
//! options and step outputs (spans are covered by the UI tests,
//! `tests/it/macros_ui.rs`).

use proc_macro2::TokenStream;
use quote::quote;

use super::messages_of;

fn workflow(args: TokenStream, item: TokenStream) -> String {
    messages_of(&crate::expand::workflow(args, item))
}

#[test]
fn condition_mistakes() {
    insta::assert_snapshot!(
        // Without the `cel` feature CEL strings are checked at registration, not here.
        if cfg!(feature = "cel") {
            "condition_mistakes"
        } else {
            "condition_mistakes_without_cel"
        },
        workflow(
            quote!(),
            quote! {
                impl W {
                    #[step]
                    async fn check(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                    #[step]
                    async fn price(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                    #[step(
                        parents = [check],
                        wait_for = [
                            slep("1s"),
                            any(),
                            any(sleep("1s"), any(event("a"))),
                            "10s",
                            sleep("500ms"),
                            sleep(),
                            event(filter = "input.ok"),
                            event("a", filtr = "x", scope = ""),
                            event("", filter = "input.ok =="),
                            event(scope = "a", "b"),
                            event("c", scope = "a", scope = "b"),
                            event("d", filter = true),
                        ],
                        skip_if = [parent(chek, "output.ok"), parent(price), parent("check"), parent(check, "output.x >")],
                        cancel_if = [event("k"), event("k")]
                    )]
                    async fn charge(&self, ctx: &Context, input: &In, c: &Out) -> Result<Out, E> { todo!() }
                    #[step(skip_if = parent(check))]
                    async fn orphan(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                }
            }
        )
    );
}

#[test]
fn workflow_option_mistakes() {
    insta::assert_snapshot!(
        // Without the `cel` feature CEL strings are checked at registration, not here.
        if cfg!(feature = "cel") {
            "workflow_option_mistakes"
        } else {
            "workflow_option_mistakes_without_cel"
        },
        workflow(
            quote!(
                cron_input = "{nope}",
                concurrency(expression = "input.", max_runs = 1),
                concurrency(expression = 5, max_runs = 1),
                default_filter(expression = "input.vip &&"),
                default_filter(scope = "s", payload = "[1]"),
                idempotency(method = "lru", ttl = "0s")
            ),
            quote! {
                impl W {
                    #[step(rate_limit(dynamic_key = "input.(", limit = 1))]
                    async fn only(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                }
            }
        )
    );
}

#[test]
fn non_object_outputs() {
    insta::assert_snapshot!(
        "non_object_outputs",
        workflow(
            quote!(),
            quote! {
                impl W {
                    #[step]
                    async fn a(&self, ctx: &Context, input: &In) -> Result<u32, E> { todo!() }
                    #[step]
                    async fn b(&self, ctx: &Context, input: &In) -> ::std::result::Result<Vec<Out>, E> { todo!() }
                    #[step]
                    async fn c(&self, ctx: &Context, input: &In) -> Result<Option<String>, E> { todo!() }
                    #[step]
                    async fn d(&self, ctx: &Context, input: &In) -> Result<(u8, u8), E> { todo!() }
                    #[step]
                    async fn e(&self, ctx: &Context, input: &In) -> Result<&'static str, E> { todo!() }
                    #[step]
                    async fn ok_unit(&self, ctx: &Context, input: &In) -> Result<(), E> { todo!() }
                    #[step]
                    async fn ok_struct(&self, ctx: &Context, input: &In) -> Result<Option<Out>, E> { todo!() }
                    #[step]
                    async fn ok_value(&self, ctx: &Context, input: &In) -> Result<serde_json::Value, E> { todo!() }
                }
            }
        )
    );
}

#[test]
fn on_success_mistakes() {
    insta::assert_snapshot!(
        "on_success_mistakes",
        workflow(
            quote!(),
            quote! {
                impl W {
                    #[step]
                    async fn a(&self, ctx: &Context, input: &In) -> Result<Out, E> { todo!() }
                    #[step(parents = [done])]
                    async fn b(&self, ctx: &Context, input: &In, d: &Out) -> Result<Out, E> { todo!() }
                    #[on_success(parents = [a], wait_for = sleep("1s"))]
                    async fn done(&self, ctx: &Context, input: &In, extra: &Out) -> Result<(), E> { todo!() }
                    #[on_success]
                    async fn again(&self, ctx: &Context, input: &In) -> Result<(), E> { todo!() }
                }
            }
        )
    );
}

#[test]
fn task_mistakes() {
    let bad_options = messages_of(&crate::expand::task(
        quote!(
            retry = 2,
            parents = [x],
            wait_for = sleep("1s"),
            execution_timeout = "15 seconds"
        ),
        quote! {
            async fn greet(ctx: &Context, input: &In) -> Result<String, E> { todo!() }
        },
    ));
    let bad_signature = messages_of(&crate::expand::task(
        quote!(),
        quote! {
            fn greet<T>(ctx: &Context) {}
        },
    ));
    let not_a_function = messages_of(&crate::expand::task(
        quote!(),
        quote!(
            struct Greet;
        ),
    ));
    insta::assert_snapshot!(
        "task_mistakes",
        format!("{bad_options}\n===\n{bad_signature}\n===\n{not_a_function}")
    );
}
