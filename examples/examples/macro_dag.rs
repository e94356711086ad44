//! A three-step DAG declared with the `#[workflow]`, `#[step]` and `#[on_failure]` macros, run on an embedded
//! engine through the generated typed client. The workflow itself is in `examples/src/macro_dag.rs`.
//!
//! `cargo run -p acf-examples --example macro_dag`

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let outcome = acf_examples::macro_dag::run().await?;
    println!("receipt: {:?}", outcome.receipt);
    println!("failed run: {}", outcome.failed_run_error);
    println!("on_failure saw: {}", outcome.on_failure_report);
    Ok(())
}
