//! Hatchet's gRPC contract, generated from our own wire-identical `.proto` files in `acf-sdk/proto/`.
//!
//! # Layout
//!
//! Hatchet declares two kinds of files, and the module tree mirrors them:
//!
//! * **No package** — `dispatcher.proto`, `events.proto`, `workflows.proto`. Their types and services
//!   live directly here, and their gRPC paths carry no package prefix (`/Dispatcher/ListenV2`,
//!   `/EventsService/Push`, `/WorkflowService/TriggerWorkflow`). Examples:
//!   [`AssignedAction`], [`dispatcher_client::DispatcherClient`],
//!   `dispatcher_server::DispatcherServer`, [`events_service_client::EventsServiceClient`],
//!   [`workflow_service_client::WorkflowServiceClient`].
//! * **Package `v1`** — `v1/workflows.proto` (`v1.AdminService`), `v1/dispatcher.proto`
//!   (`v1.V1Dispatcher`) and the shared `v1/shared/condition.proto` / `v1/shared/trigger.proto`. They
//!   live in [`v1`], e.g. [`v1::admin_service_client::AdminServiceClient`],
//!   `v1::v1_dispatcher_server::V1DispatcherServer`, [`v1::CreateWorkflowVersionRequest`].
//!
//! The package-less code refers to `super::v1::…` (for instance `WorkflowService/TriggerWorkflow`
//! takes a [`v1::TriggerWorkflowRequest`]), which is why both are generated into this one module.
//!
//! Every file compiles to client code, and to server code (the `*_server` modules) with the `engine` feature,
//! whose embedded engine serves them. [`FILE_DESCRIPTOR_SET`] embeds the encoded
//! descriptors (including `google/protobuf/timestamp.proto`) for reflection and conformance checks.

// Generated code: prost writes the proto comments as docs but not on every item, and its output is
// not written to clippy's taste.
#![allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    unused_qualifications,
    rust_2018_idioms
)]

/// Package `v1`: the v1 admin service, the durable-task dispatcher and the shared condition and
/// trigger messages.
pub mod v1 {
    tonic::include_proto!("v1");
}

tonic::include_proto!("_");

/// The encoded `google.protobuf.FileDescriptorSet` of every file in `acf-sdk/proto/`, plus its
/// imports, with the file names Hatchet's own descriptors use (`dispatcher.proto`,
/// `v1/workflows.proto`, …).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/hatchet_descriptor.bin"));
