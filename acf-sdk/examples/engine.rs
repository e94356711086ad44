//! Runs the embedded Hatchet-compatible engine until Ctrl-C and prints the client environment.
//!
//! ```sh
//! cargo run -p acf-sdk --features engine --example engine -- --port 7077 [--bind 0.0.0.0] [--secret S]
//! ```

use acf_sdk::engine::Engine;
use std::net::{IpAddr, SocketAddr};

fn usage() -> ! {
    eprintln!("usage: engine [--port N] [--bind IP] [--secret SECRET]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut port: u16 = 7070;
    let mut ip: IpAddr = [127, 0, 0, 1].into();
    let mut secret: Option<String> = std::env::var("ACF_ENGINE_SECRET").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--port" => port = value.parse().unwrap_or_else(|_| usage()),
            "--bind" => ip = value.parse().unwrap_or_else(|_| usage()),
            "--secret" => secret = Some(value),
            _ => usage(),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut builder = Engine::builder().bind(SocketAddr::new(ip, port));
    if let Some(secret) = secret {
        builder = builder.token_secret(secret.into_bytes());
    }
    let engine = match builder.start().await {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("engine failed to start: {e}");
            std::process::exit(1);
        }
    };
    for (key, value) in engine.client_env() {
        println!("export {key}={value}");
    }
    println!("# dashboard: {}", engine.dashboard_url());
    if tokio::signal::ctrl_c().await.is_err() {
        eprintln!("could not listen for Ctrl-C; stopping");
    }
    engine.shutdown().await;
}
