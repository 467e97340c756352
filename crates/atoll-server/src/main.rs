//! `atoll`: the Atoll database server and its tools.

mod config;
mod serve;

use clap::{Parser, Subcommand};

/// Atoll: a DynamoDB-compatible, distributed NoSQL database.
#[derive(Parser)]
#[command(name = "atoll", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node serving the DynamoDB API (single node by default).
    Serve(config::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("atoll: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
