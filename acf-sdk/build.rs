//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and tonic-prost-build (client code, and
//! server code with the `engine` feature, which serves it), and writes the encoded `FileDescriptorSet` to `$OUT_DIR/hatchet_descriptor.bin`.
//!
//! Hatchet's descriptors name the package-less files `dispatcher.proto`, `events.proto` and
//! `workflows.proto` (each compiled from its own directory) while the `v1/…` files are named relative
//! to the contracts root. The include paths below reproduce exactly those names, so our descriptors
//! can be compared one to one with the ones inside the Python SDK.

use std::path::PathBuf;

/// Directories whose files are named relative to themselves; the contracts root comes last.
const INCLUDE_DIRS: &[&str] = &[
    "proto/dispatcher",
    "proto/events",
    "proto/workflows",
    "proto",
];

/// File names as Hatchet's descriptors spell them.
const FILES: &[&str] = &[
    "dispatcher.proto",
    "events.proto",
    "workflows.proto",
    "v1/shared/condition.proto",
    "v1/shared/trigger.proto",
    "v1/workflows.proto",
    "v1/dispatcher.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // `runtime_info.language_version` of `Register`: the compiler that built the SDK.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ACF_RUSTC_VERSION={version}");

    let mut compiler = protox::Compiler::new(INCLUDE_DIRS)?;
    // Source info carries the proto comments into the generated rustdoc; imports
    // (google/protobuf/timestamp.proto) make the embedded set self-contained for reflection.
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(FILES)?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("hatchet_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    // prost-build maps the well-known types to prost-types, but still needs their descriptors to
    // decide which derives a message containing a Timestamp can have: pass the whole set.
    // Only the embedded engine serves these protos; without it the server stubs (and tonic's server
    // features they need) are not built.
    let server = std::env::var_os("CARGO_FEATURE_ENGINE").is_some();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(server)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
