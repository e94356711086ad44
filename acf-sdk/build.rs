//! Compiles `proto/` with protox (no system `protoc`) and tonic-prost-build (filled in by the engine issue).
fn main() {}
