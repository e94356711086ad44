//! Attribute macros for acf workflows: `#[workflow]`, `#[step]`, `#[on_failure]`, `#[on_success]` and `#[task]`.
//!
//! Use them through `acf_sdk`, which re-exports them with the user-facing documentation. This crate
//! only holds the entry points; the pipeline is parse → model → validate → expand.

// Held to serde/thiserror strictness; CI's `-D warnings` makes these errors.
#![warn(clippy::pedantic)]

mod cel;
mod ctxt;
mod expand;
mod model;
mod naming;
mod parse;
mod suggest;
mod validate;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Implemented in `acf-macros`; documented at its re-export, `acf_sdk::workflow`.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::workflow(args.into(), item.into()).into()
}

/// Implemented in `acf-macros`; documented at its re-export, `acf_sdk::step`.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced(model::StepKind::Step, args.into(), item.into()).into()
}

/// Implemented in `acf-macros`; documented at its re-export, `acf_sdk::on_failure`.
#[proc_macro_attribute]
pub fn on_failure(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced(model::StepKind::OnFailure, args.into(), item.into()).into()
}

/// Implemented in `acf-macros`; documented at its re-export, `acf_sdk::on_success`.
#[proc_macro_attribute]
pub fn on_success(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced(model::StepKind::OnSuccess, args.into(), item.into()).into()
}

/// Implemented in `acf-macros`; documented at its re-export, `acf_sdk::task`.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::task(args.into(), item.into()).into()
}
