//! `atoll-faults`: starts a local cluster as separate processes with a proxy
//! on every inter-node link, runs concurrent clients while a nemesis kills,
//! pauses, restarts and partitions nodes, then checks the history: with
//! `--workload register` (single-item operations) that it is linearizable
//! (and so that no acknowledged write was lost); with `--workload bank`
//! (transfers and audits as transactions) the invariants serializable
//! transactions keep (see `bank.rs`).
//!
//! Exit code: 0 linearizable (or every invariant held), 1 violation,
//! 2 harness error, 3 undecided (the checker's budget ran out).

mod bank;
mod nodes;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atoll_faults::checker::{CheckOptions, KeyVerdict, Verdict, check};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use nodes::Cluster;

/// Flags of the harness.
#[derive(Parser, Debug)]
#[command(name = "atoll-faults")]
struct Args {
    /// The atoll binary to run.
    #[arg(long)]
    atoll_bin: PathBuf,
    /// Nodes (3 or 5).
    #[arg(long, default_value_t = 3)]
    nodes: u8,
    /// Seconds of workload under faults.
    #[arg(long, default_value_t = 60)]
    duration_s: u64,
    /// Seed of the workload's and the nemesis's choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Items the clients share.
    #[arg(long, default_value_t = 6)]
    keys: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6)]
    clients: usize,
    /// Faults to inject, from kill, stop, restart, partition.
    #[arg(
        long,
        default_value = "kill,stop,restart,partition",
        value_delimiter = ','
    )]
    faults: Vec<String>,
    /// Working directory (data and logs); a temporary one by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The nodes' `--dead-node-after-ms`: by default longer than any run,
    /// so replicas stay put; a few seconds has faults rebuild replicas on
    /// other nodes and the returning nodes drop theirs.
    #[arg(long, default_value_t = 600_000)]
    dead_node_after_ms: u64,
    /// What the clients do: `register` (single-item operations, checked
    /// for linearizability) or `bank` (transactions, checked for their
    /// invariants).
    #[arg(long, default_value = "register")]
    workload: String,
    /// Accounts of the bank workload.
    #[arg(long, default_value_t = 8)]
    accounts: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("atoll-faults: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("atoll-faults: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<u8, Box<dyn std::error::Error>> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            std::env::temp_dir().join(format!("atoll-faults-{}-{}", std::process::id(), args.seed))
        }
    };
    std::fs::create_dir_all(&dir)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let cluster = Arc::new(
        Cluster::start(
            &args.atoll_bin,
            args.nodes,
            &dir,
            args.dead_node_after_ms,
            &node_args(&args),
            &mut rng,
        )
        .await?,
    );
    println!("{} nodes serving; logs in {}", args.nodes, dir.display());
    let outcome = exercise(&args, &cluster, &mut rng).await;
    cluster.stop_all().await;
    outcome
}

/// The nodes' extra flags for the workload: the bank's transactions are
/// recovered a second after their coordinator goes quiet.
fn node_args(args: &Args) -> Vec<String> {
    match args.workload.as_str() {
        "bank" => vec!["--transaction-recovery-ms".into(), "1000".into()],
        _ => Vec::new(),
    }
}

/// Kills, pauses, restarts and partitions nodes at random until a few
/// seconds before `deadline`; returns how many faults of each kind.
async fn nemesis(
    args: &Args,
    cluster: &Arc<Cluster>,
    rng: &mut StdRng,
    started: Instant,
    deadline: Instant,
) -> Result<BTreeMap<String, u32>, Box<dyn std::error::Error>> {
    let mut faults: BTreeMap<String, u32> = BTreeMap::new();
    while Instant::now() + Duration::from_secs(8) < deadline {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..3000))).await;
        let Some(kind) = args.faults.get(rng.gen_range(0..args.faults.len().max(1))) else {
            break;
        };
        let node = rng.gen_range(1..=args.nodes);
        let hold = Duration::from_millis(rng.gen_range(1500..4000));
        let at = started.elapsed().as_secs_f64();
        println!("{at:7.2}s {kind} node {node} for {hold:?}");
        cluster.inject(kind, node, hold).await?;
        *faults.entry(kind.clone()).or_default() += 1;
    }
    Ok(faults)
}

/// The bank workload under the nemesis, then its checks.
async fn exercise_bank(
    args: &Args,
    cluster: &Arc<Cluster>,
    rng: &mut StdRng,
) -> Result<u8, Box<dyn std::error::Error>> {
    let accounts = args.accounts.max(2);
    bank::open_bank(cluster, accounts).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration_s);
    let history = Arc::new(Mutex::new(bank::BankHistory::default()));
    let clients: Vec<_> = (0..args.clients)
        .map(|client| {
            let seed = rng.r#gen::<u64>();
            tokio::spawn(bank::bank_client(
                client,
                cluster.clone(),
                accounts,
                seed,
                deadline,
                history.clone(),
            ))
        })
        .collect();
    let faults = nemesis(args, cluster, rng, started, deadline).await?;
    for client in clients {
        client.await?;
    }
    cluster.heal_all().await?;
    println!("faults: {faults:?}");
    let wrong = bank::check_bank(cluster, accounts, &history).await;
    if wrong.is_empty() {
        println!("result: every invariant held");
        return Ok(0);
    }
    println!("result: VIOLATED");
    for problem in &wrong {
        println!("  {problem}");
    }
    Ok(1)
}

async fn exercise(
    args: &Args,
    cluster: &Arc<Cluster>,
    rng: &mut StdRng,
) -> Result<u8, Box<dyn std::error::Error>> {
    if args.workload == "bank" {
        return exercise_bank(args, cluster, rng).await;
    }
    workload::create_table(cluster).await?;
    let started = Instant::now();
    let history = Arc::new(Mutex::new(Vec::new()));
    let deadline = started + Duration::from_secs(args.duration_s);
    let clients: Vec<_> = (0..args.clients)
        .map(|client| {
            let seed = rng.r#gen::<u64>();
            tokio::spawn(workload::client_loop(
                client,
                cluster.clone(),
                args.keys,
                seed,
                started,
                deadline,
                history.clone(),
            ))
        })
        .collect();
    let faults = nemesis(args, cluster, rng, started, deadline).await?;
    for client in clients {
        client.await?;
    }
    cluster.heal_all().await?;
    workload::final_reads(cluster, args.keys, started, &history).await;
    let history = history.lock().map_err(|_| "history lock poisoned")?.clone();
    let (mut ok, mut failed, mut unknown) = (0, 0, 0);
    for operation in &history {
        match operation.outcome {
            atoll_faults::checker::Outcome::Ok(_) => ok += 1,
            atoll_faults::checker::Outcome::Fail => failed += 1,
            atoll_faults::checker::Outcome::Unknown => unknown += 1,
        }
    }
    println!(
        "history: {} operations ({ok} ok, {failed} failed, {unknown} unknown) on {} keys; faults: {faults:?}",
        history.len(),
        args.keys
    );
    let report = check(&history, &CheckOptions::default())?;
    let code = match report.verdict() {
        Verdict::Linearizable => {
            println!("result: linearizable");
            0
        }
        Verdict::Violation => {
            println!("result: NOT linearizable");
            for key in &report.keys {
                if let KeyVerdict::Violation(counterexample) = &key.verdict {
                    println!("{counterexample}");
                }
            }
            1
        }
        Verdict::Unknown => {
            println!("result: undecided (checker budget exceeded)");
            3
        }
    };
    Ok(code)
}
