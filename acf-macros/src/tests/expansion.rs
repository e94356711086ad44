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

#[test]
fn dag_with_parent_assertions() {
    insta::assert_snapshot!(
        "dag_with_parent_assertions",
        expand(
            quote!(),
            quote! {
                impl Pipeline {
                    #[step]
                    async fn fetch(&self, ctx: &Context, input: &Url) -> Result<Page, StepError> {
                        ::core::todo!()
                    }
                    #[step(parents = [fetch])]
                    async fn parse(&self, ctx: &Context, input: Url, page: Page) -> Result<Doc, StepError> {
                        ::core::todo!()
                    }
                }
            }
        )
    );
}

#[test]
fn every_workflow_option() {
    insta::assert_snapshot!(
        "every_workflow_option",
        expand(
            quote!(
                name = "Orders",
                description = "orders",
                on_events = ["order:created", "order:paid"],
                cron = ["0 * * * *"],
                concurrency(
                    expression = "input.id",
                    max_runs = 3,
                    strategy = "cancel_in_progress"
                ),
                sticky = "hard",
                default_priority = 3
            ),
            quote! {
                impl OrderFlow {
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
fn every_step_option() {
    insta::assert_snapshot!(
        "every_step_option",
        expand(
            quote!(),
            quote! {
                impl Heavy {
                    #[step(
                        name = "Crunch",
                        retries = 2,
                        backoff_factor = 1.5,
                        backoff_max = "2m",
                        execution_timeout = "1h30m",
                        schedule_timeout = "500ms",
                        rate_limit(key = "gpu-minutes", units = 3, duration = "hour"),
                        rate_limit(dynamic_key = "input.user", units = "input.cost", limit = "input.quota"),
                        worker_label(key = "gpu", value = "a100", required),
                        worker_label(key = "memory", value = 64, weight = 10, comparator = "greater_than_or_equal"),
                        durable,
                        slots(durable = 1, gpu = 2)
                    )]
                    async fn crunch(&self, ctx: &Context, input: &Job) -> Result<Report, StepError> {
                        ::core::todo!()
                    }
                }
            }
        )
    );
}

#[test]
fn several_leaves_and_on_failure() {
    insta::assert_snapshot!(
        "several_leaves_and_on_failure",
        expand(
            quote!(),
            quote! {
                impl Fanout {
                    #[step]
                    async fn root(&self, ctx: &Context, input: &Job) -> Result<Seed, StepError> {
                        ::core::todo!()
                    }
                    #[step(parents = [root])]
                    async fn left(&self, ctx: &Context, input: &Job, seed: &Seed) -> Result<Left, StepError> {
                        ::core::todo!()
                    }
                    #[step(parents = [root])]
                    async fn right(&self, ctx: &Context, input: &Job, seed: &Seed) -> Result<Right, StepError> {
                        ::core::todo!()
                    }
                    #[on_failure(retries = 1)]
                    async fn alert(&self, ctx: &Context, input: &Job) -> Result<(), StepError> {
                        ::core::todo!()
                    }
                }
            }
        )
    );
}

#[test]
fn crate_override() {
    insta::assert_snapshot!(
        "crate_override",
        expand(
            quote!(crate = "::my_platform::acf"),
            quote! {
                impl Renamed {
                    #[acf::step]
                    async fn only(&self, ctx: &Context, input: &Job) -> Result<Done, StepError> {
                        ::core::todo!()
                    }
                }
            }
        )
    );
}

#[test]
fn fallback_keeps_the_item() {
    insta::assert_snapshot!(
        "fallback_keeps_the_item",
        expand(
            quote!(),
            quote! {
                impl Broken {
                    #[step(parents = [missing])]
                    async fn only(&self, ctx: &Context, input: &Job, m: &Missing) -> Result<Done, StepError> {
                        ::core::todo!()
                    }
                    fn helper(&self) -> u8 {
                        1
                    }
                }
            }
        )
    );
}

#[test]
fn concurrency_lists_and_task_limits() {
    insta::assert_snapshot!(
        "concurrency_lists_and_task_limits",
        expand(
            quote!(
                concurrency(expression = "input.tenant", max_runs = 5),
                concurrency(max_runs = 100, strategy = "cancel_newest")
            ),
            quote! {
                impl Limited {
                    #[step(concurrency(expression = "input.user", max_runs = 1))]
                    async fn only(&self, ctx: &Context, input: &Job) -> Result<Done, StepError> {
                        ::core::todo!()
                    }
                }
            }
        )
    );
}
