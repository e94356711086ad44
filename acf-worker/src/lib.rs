//! acf-worker: the ACF logical-turn worker (`ruche-worker`) built on acf-sdk.
pub mod events;
pub mod models;
