//! `atoll`: the Atoll database server and its tools.

mod admin;
mod config;
mod dev_cluster;
mod logging;
mod serve;

use clap::{Parser, Subcommand};

// The request path allocates many small, short-lived objects (JSON values,
// items, keys); mimalloc serves them with far less contention and
// fragmentation than glibc's malloc on this workload (measured with perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Serve(Box<config::ServeArgs>),
    /// Benchmark any DynamoDB endpoint with YCSB-style workloads.
    Bench {
        #[command(subcommand)]
        command: atoll_bench::BenchCommand,
    },
    /// Show a running node's view: nodes, tables, partitions, leaders, sizes, request rates.
    Admin(admin::AdminArgs),
    /// Start a local cluster of N node processes on 127.0.0.x, for trying Atoll and for tests.
    DevCluster(dev_cluster::DevClusterArgs),
}

fn bench(command: atoll_bench::BenchCommand) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(atoll_bench::execute(command))?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    atoll_cluster::arm_fail_points_from_env();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args).map_err(Into::into),
        Command::Bench { command } => bench(command),
        Command::Admin(args) => admin::run(args),
        Command::DevCluster(args) => dev_cluster::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("atoll: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
