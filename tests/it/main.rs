//! The workspace's integration tests, in one binary (one link of tonic, tokio, redis and the engine instead of one
//! per file). Each module is one area; the support code lives in the `acf_tests` library.
//!
//! Run one area with a filter, e.g. `cargo test -p acf-tests --test it -- sdk_worker::`.

mod e2e_bench;
mod e2e_demo;
mod e2e_new_message;
mod e2e_python;
mod e2e_serialization;
mod e2e_turns;
mod e2e_worker_loss;
mod engine_dashboard;
mod engine_grpc;
mod engine_python;
mod engine_registration;
mod engine_rest;
mod engine_rest_ts;
mod engine_ts;
mod macros_conditions_e2e;
mod macros_definition;
mod macros_e2e;
mod macros_parity;
mod macros_parity_conditions;
mod macros_shadowing;
mod macros_ui;
mod proto_conformance;
mod run_examples;
mod sdk_client;
mod sdk_durable;
mod sdk_idle;
mod sdk_interop;
mod sdk_legacy;
mod sdk_lifecycle;
mod sdk_request_parity;
mod sdk_resilience;
mod sdk_tls;
mod sdk_typed_options;
mod sdk_worker;
