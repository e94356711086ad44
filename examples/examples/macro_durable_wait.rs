//! A `#[step(durable)]` waiting for a user event OR a timeout; one run gets its event, one times out. The
//! workflow itself is in `examples/src/macro_durable_wait.rs`.
//!
//! `cargo run -p acf-examples --example macro_durable_wait`

use acf_examples::macro_durable_wait::Answer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let outcome = acf_examples::macro_durable_wait::run().await?;
    for (session, answer) in [("s-42", outcome.answered), ("s-7", outcome.unanswered)] {
        match answer {
            Answer::Replied { text } => println!("{session}: the event fired first: {text:?}"),
            Answer::TimedOut => println!("{session}: the timeout fired first"),
        }
    }
    Ok(())
}
