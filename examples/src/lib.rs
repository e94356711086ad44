//! Runnable examples for acf-sdk live in `examples/examples/`.
