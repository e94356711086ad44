//! Arguments of `ruche-worker` and its subcommands.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// Where an embedded engine listens by default: Hatchet's own gRPC port, on loopback.
pub const DEFAULT_ENGINE_ADDR: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    7077,
));

/// The ACF logical-turn worker: durable conversational turns on Hatchet.
#[derive(Debug, Parser)]
#[command(name = "ruche-worker", version, about)]
pub struct Cli {
    /// What to do (default: `run`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The subcommand, `run` when none was given.
    pub fn command(self) -> Command {
        self.command.unwrap_or(Command::Run(RunArgs::default()))
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the logical-turn workflow (Hatchet from HATCHET_CLIENT_* and `[jobs.hatchet]`).
    Run(RunArgs),
    /// Run a sample multi-session conversation on an embedded engine with the echo brain, print every turn, exit.
    Demo {
        /// Use the configured Redis (`[storage.session]`) instead of in-memory stores (also selected by
        /// `RUCHE_STORAGE__SESSION__BACKEND=redis`).
        #[arg(long)]
        redis: bool,
        /// Log at the configured level instead of `warning` (logs are JSON lines on stdout).
        #[arg(long)]
        verbose: bool,
        /// Print the engine's dashboard URL and keep the engine running after the conversation
        /// until Ctrl-C, so its runs can be browsed.
        #[arg(long)]
        dashboard: bool,
    },
    /// Submit one message: store it, signal its session, trigger its run.
    Send(SendArgs),
    /// Run only the embedded engine and print the HATCHET_CLIENT_* exports for workers and clients.
    Engine(EngineArgs),
}

/// `run` options.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Start the embedded engine in this process and connect to it (prints its token).
    #[arg(long)]
    pub embedded: bool,
    /// With `--embedded`: the engine's listen address.
    #[arg(long, default_value_t = DEFAULT_ENGINE_ADDR)]
    pub bind: SocketAddr,
    /// With `--embedded`: token signing secret, so tokens survive a restart (random otherwise).
    #[arg(long, env = "RUCHE_ENGINE_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// With `--embedded`: how many finished runs the engine keeps for lookups and its dashboard, which bounds
    /// its memory (the engine's default, 50 000, when omitted).
    #[arg(long, env = "RUCHE_ENGINE_RETAINED_RUNS")]
    pub retained_runs: Option<usize>,
}

/// `send` options: the seed's trigger payload.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Tenant id (UUID).
    #[arg(long)]
    pub tenant_id: String,
    /// Agent id (UUID).
    #[arg(long)]
    pub agent_id: String,
    /// Interlocutor id (UUID).
    #[arg(long)]
    pub interlocutor_id: String,
    /// Channel (`whatsapp`, `web`, ...).
    #[arg(long)]
    pub channel: String,
    /// Message text.
    #[arg(long = "message", short = 'm')]
    pub message_content: String,
    /// Message id (UUID; a new one when omitted).
    #[arg(long)]
    pub message_id: Option<String>,
    /// Explicit session key (default `{tenant}:{agent}:{interlocutor}:{channel}`).
    #[arg(long)]
    pub session_key: Option<String>,
    /// Wait for the run and print its output as JSON.
    #[arg(long)]
    pub wait: bool,
}

/// `engine` options.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Listen address.
    #[arg(long, default_value_t = DEFAULT_ENGINE_ADDR)]
    pub bind: SocketAddr,
    /// Token signing secret, so tokens survive a restart (random otherwise).
    #[arg(long, env = "RUCHE_ENGINE_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// How many finished runs the engine keeps for lookups and its dashboard, which bounds its memory (the
    /// engine's default, 50 000, when omitted).
    #[arg(long, env = "RUCHE_ENGINE_RETAINED_RUNS")]
    pub retained_runs: Option<usize>,
}

impl Default for RunArgs {
    fn default() -> Self {
        Self {
            embedded: false,
            bind: DEFAULT_ENGINE_ADDR,
            token_secret: None,
            retained_runs: None,
        }
    }
}
