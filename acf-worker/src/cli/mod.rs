//! `ruche-worker` command line: argument parsing and one small function per subcommand. Every subcommand returns
//! a [`CliError`]; `main` prints it and exits 1.

mod args;
mod commands;

pub use args::{Cli, Command, EngineArgs, RunArgs, SendArgs};
pub use commands::{CliError, execute};
