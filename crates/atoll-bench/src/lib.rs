//! `atoll bench`: a YCSB-style load generator for any DynamoDB endpoint.
//!
//! It signs every request with SigV4, keeps one keep-alive connection per
//! concurrent worker, builds request bodies by splicing keys into prepared
//! JSON, and reports throughput, errors by type, latency percentiles, and its
//! own CPU use (so a reader can tell when the client is the bottleneck).

mod client;
mod distribution;
mod null_server;
mod report;
mod runner;
mod sigv4;
mod stream_read;
mod workload;

use std::time::Duration;

use clap::{Args, Subcommand};

pub use distribution::Distribution;
pub use runner::{DataSet, Length, RunSpec, Target};
pub use workload::Workload;

/// Errors of the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The endpoint could not be reached.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// A request failed at the HTTP level (not a DynamoDB error answer).
    #[error("request failed: {0}")]
    Request(String),
}

/// Where and as whom to send requests.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Endpoint URL; several, separated by commas, spread the connections
    /// over the nodes of a cluster.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8000",
        env = "ATOLL_BENCH_ENDPOINT"
    )]
    pub endpoint: String,
    /// Table to use.
    #[arg(long, default_value = "bench")]
    pub table: String,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Access key id to sign with.
    #[arg(long, default_value = "bench", env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    /// Secret key to sign with.
    #[arg(
        long,
        default_value = "bench",
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub secret_key: String,
}

/// Shape of the data set (the same values for `load` and `run`).
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Items in the data set.
    #[arg(long, default_value_t = 100_000)]
    pub items: u64,
    /// Partition keys the items spread over.
    #[arg(long, default_value_t = 1_000)]
    pub partitions: u64,
    /// Approximate item size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub item_size: usize,
}

impl DataArgs {
    fn data_set(&self) -> DataSet {
        DataSet {
            items: self.items,
            partitions: self.partitions,
            item_size_bytes: self.item_size,
        }
    }
}

/// `atoll bench` subcommands.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Create the benchmark table (hash pk S, range sk S, on-demand) and wait until ACTIVE.
    Setup {
        /// The endpoint and table.
        #[command(flatten)]
        target: TargetArgs,
        /// Global secondary indexes to give the table (0 to 2): `gsi1`
        /// (hash sk, range pk, KEYS_ONLY), `gsi2` (the same keys, ALL), so
        /// every write also writes one entry per index.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
        gsis: u8,
        /// A stream of this view type (KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or
        /// NEW_AND_OLD_IMAGES), so every write also writes a stream record.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Read the table's whole stream, as one consumer does (every shard
    /// from its start, GetRecords of up to 1,000 records): records/s.
    StreamRead {
        /// The endpoint and table.
        #[command(flatten)]
        target: TargetArgs,
        /// Print the report as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Write the data set.
    Load {
        /// The endpoint and table.
        #[command(flatten)]
        target: TargetArgs,
        /// The data set.
        #[command(flatten)]
        data: DataArgs,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Items per request: 1 sends PutItem, 2-25 send BatchWriteItem.
        #[arg(long, default_value_t = 1)]
        batch: u64,
        /// Print the report as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Run a workload against the loaded data set.
    Run {
        /// The endpoint and table.
        #[command(flatten)]
        target: TargetArgs,
        /// The data set.
        #[command(flatten)]
        data: DataArgs,
        /// Workload: a, b, c, d, e, f (YCSB), write (100% PutItem), query,
        /// txn2 or txn10 (100% TransactWriteItems of 2 or 10 items).
        #[arg(long, value_enum, default_value = "c")]
        workload: Workload,
        /// Key distribution.
        #[arg(long, value_enum, default_value = "zipfian")]
        distribution: Distribution,
        /// Concurrent connections, each with one request in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds to measure (ignored with --operations).
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
        /// Operations to measure instead of a duration.
        #[arg(long)]
        operations: Option<u64>,
        /// Unmeasured seconds before measuring.
        #[arg(long, default_value_t = 5.0)]
        warmup: f64,
        /// Print the report as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Serve `{}` to every request: the HTTP ceiling of this machine for comparison.
    NullServer {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8009")]
        listen: String,
    },
}

fn target(args: &TargetArgs) -> Result<Target, BenchError> {
    Target::new(
        &args.endpoint,
        &args.table,
        &args.region,
        &args.access_key,
        &args.secret_key,
    )
}

fn seconds(value: f64) -> Result<Duration, BenchError> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| BenchError::Usage(format!("not a duration: {value}")))
}

fn print(report: &report::Report, json: bool) {
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
}

/// Runs a bench command to completion.
pub async fn execute(command: BenchCommand) -> Result<(), BenchError> {
    match command {
        BenchCommand::Setup {
            target: args,
            gsis,
            stream,
        } => runner::setup(&target(&args)?, gsis, stream.as_deref()).await,
        BenchCommand::StreamRead { target: args, json } => {
            let read = stream_read::read_stream(&target(&args)?).await?;
            match json {
                true => println!("{}", read.json()),
                false => println!("{}", read.text()),
            }
            Ok(())
        }
        BenchCommand::Load {
            target: args,
            data,
            concurrency,
            batch,
            json,
        } => {
            let report =
                runner::load(&target(&args)?, &data.data_set(), concurrency, batch, !json).await?;
            print(&report, json);
            Ok(())
        }
        BenchCommand::Run {
            target: args,
            data,
            workload,
            distribution,
            concurrency,
            duration,
            operations,
            warmup,
            json,
        } => {
            let spec = RunSpec {
                workload,
                distribution,
                concurrency,
                length: match operations {
                    Some(n) => Length::Operations(n),
                    None => Length::Duration(seconds(duration)?),
                },
                warmup: seconds(warmup)?,
                data: data.data_set(),
            };
            let report = runner::run(&target(&args)?, &spec, !json).await?;
            print(&report, json);
            Ok(())
        }
        BenchCommand::NullServer { listen } => null_server::serve(&listen).await,
    }
}
