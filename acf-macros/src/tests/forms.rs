//! Expansion snapshots of the declaration forms added for conditions, standalone tasks, the success handler
//! and the remaining workflow options.

use proc_macro2::TokenStream;
use quote::quote;

fn unparse(output: &TokenStream) -> String {
    let file: syn::File = syn::parse2(output.clone())
        .unwrap_or_else(|err| panic!("expansion does not parse ({err}):\n{output}"));
    prettyplease::unparse(&file)
}

fn workflow(args: TokenStream, item: TokenStream) -> String {
    unparse(&crate::expand::workflow(args, item))
}

fn task(args: TokenStream, item: TokenStream) -> String {
    unparse(&crate::expand::task(args, item))
}

#[test]
fn every_condition_form() {
    insta::assert_snapshot!(
        "every_condition_form",
        workflow(
            quote!(),
            quote! {
                impl Gated {
                    #[step]
                    async fn check(&self, ctx: &Context, input: &Order) -> Result<Checked, StepError> {
                        ::core::todo!()
                    }
                    #[step(
                        parents = [check],
                        wait_for = [
                            any(sleep("90s"), event("order:approved", filter = "input.ok", scope = "tenant-1")),
                            parent(check, "output.total > 0"),
                        ],
                        skip_if = parent(check, "output.total == 0", key = "empty"),
                        cancel_if = any(event("order:cancelled"), sleep("1h", key = "too-late"))
                    )]
                    async fn charge(&self, ctx: &Context, input: &Order, checked: &Checked) -> Result<Charged, StepError> {
                        ::core::todo!()
                    }
                    #[step(parents = [check], wait_for = parent(check))]
                    async fn log(&self, ctx: &Context, input: &Order, checked: &Checked) -> Result<(), StepError> {
                        ::core::todo!()
                    }
                }
            }
        )
    );
}

#[test]
fn remaining_workflow_options_and_const_key() {
    insta::assert_snapshot!(
        "remaining_workflow_options_and_const_key",
        workflow(
            quote!(
                version = "v3",
                cron_input = r#"{"id": 0}"#,
                concurrency(expression = keys::SESSION_KEY, max_runs = 1),
                default_filter(
                    expression = "input.vip",
                    scope = "vip",
                    payload = r#"{"tier": 1}"#
                ),
                default_filter(expression = "true", scope = "all"),
                idempotency(expression = "input.id", ttl = "10m", method = "status")
            ),
            quote! {
                impl Orders {
                    #[step]
                    async fn check(&self, ctx: &Context, input: &Order) -> Result<Checked, StepError> {
                        ::core::todo!()
                    }
                }
            }
        )
    );
}

#[test]
fn on_success_after_every_leaf() {
    insta::assert_snapshot!(
        "on_success_after_every_leaf",
        workflow(
            quote!(),
            quote! {
                impl Fanout {
                    #[step]
                    async fn root(&self, ctx: &Context, input: &In) -> Result<A, StepError> {
                        ::core::todo!()
                    }
                    #[step(parents = [root])]
                    async fn left(&self, ctx: &Context, input: &In, root: &A) -> Result<B, StepError> {
                        ::core::todo!()
                    }
                    #[step(parents = [root])]
                    async fn right(&self, ctx: &Context, input: &In, root: &A) -> Result<C, StepError> {
                        ::core::todo!()
                    }
                    #[on_success(retries = 2)]
                    async fn notify(&self, ctx: &Context, input: &In) -> Result<(), StepError> {
                        ::core::todo!()
                    }
                }
            }
        )
    );
}

#[test]
fn standalone_task() {
    insta::assert_snapshot!(
        "standalone_task",
        task(
            quote!(
                retries = 2,
                on_events = ["user:created"],
                concurrency(expression = "input.id", max_runs = 3),
                durable
            ),
            quote! {
                pub async fn send_greeting(ctx: &Context, input: &User) -> Result<Greeting, StepError> {
                    ::core::todo!()
                }
            }
        )
    );
}

#[test]
fn standalone_task_with_errors_keeps_the_function_and_type() {
    insta::assert_snapshot!(
        "standalone_task_with_errors",
        task(
            quote!(retries = -1),
            quote! {
                async fn greet(ctx: &Context, input: &User) -> Result<Greeting, StepError> {
                    ::core::todo!()
                }
            }
        )
    );
}
