//! acf-sdk: a wire-exact Hatchet client and worker runtime, with an embedded Hatchet-compatible engine
//! behind the `engine` feature.

#[cfg(feature = "engine")]
pub mod engine;
pub mod proto;
