//! Deterministic simulation of routing: three cluster nodes on in-memory
//! storage, joined by the replication crate's simulated network (Raft
//! messages and the forwarded requests between nodes alike), with seeded
//! delays, lost messages and lost answers, cut links, and nodes that crash
//! and restart. Clients write and read through random nodes, so most
//! requests are forwarded to a leader; the history they record is checked.
//! Everything runs on one thread with Tokio's clock paused: a seed's run is
//! the same every time, so a failing seed replays.
//!
//! The check: each key has one writer, which writes 1, 2, 3, ... in turn,
//! so the register's value only grows. A consistent read returns at least
//! every write acknowledged before it began and at most what was attempted
//! before it ended, and never less than a read that ended before it began;
//! after healing, each key holds at least its last acknowledged write. A
//! write that failed counts as possibly applied (its outcome may be unknown).
//!
//! Seeds: `SIM_SEEDS=1,2,3` (default: two, for CI); `SIM_STEPS` sets the
//! number of nemesis steps (about 100 ms of simulated time each);
//! `SIM_TRACE_FILE=PATH` writes a failing run's whole trace there.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atoll_cluster::data::{BatchWrite, ItemKey};
use atoll_cluster::{Cluster, ClusterOptions};
use atoll_model::{AttributeValue, Item, Number, item_size_bytes};
use atoll_replication::sim::{Faults, SimNetwork};
use atoll_replication::{NodeId, NodeOptions};
use atoll_storage::Storage;

/// The nodes that form the cluster.
const NODES: [NodeId; 3] = [1, 2, 3];
/// A node that joins the running cluster (`--join`) a third of the way in:
/// it holds no partition replica at first (three nodes hold them all), so
/// it forwards what it is given until leaders move replicas onto it.
const JOINER: NodeId = 4;
const ALL_NODES: [NodeId; 4] = [1, 2, 3, JOINER];
const TABLE: &str = "sim";
const CLIENTS: u64 = 3;
const KEYS_PER_CLIENT: u64 = 2;
/// Partitions split past this size: a few dozen filler items.
const SPLIT_SIZE_BYTES: u64 = 4000;
/// Filler items carry this much padding.
const FILLER_PADDING_BYTES: usize = 100;
/// A request that takes longer counts as failed (its outcome unknown).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// After healing, the cluster must serve every key within this.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// SplitMix64, for the clients' own choices (each client has its own, so
/// they do not depend on the order in which tasks run).
struct Draws(u64);

impl Draws {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn key_name(key: u64) -> String {
    format!("k{key}")
}

/// One client request and what came of it. `start` and `end` are ticks of
/// a logical clock shared by the run (one thread: a total order).
#[derive(Clone, Debug)]
enum Op {
    Write {
        key: u64,
        value: u64,
        start: u64,
        end: u64,
        acknowledged: bool,
    },
    Read {
        key: u64,
        start: u64,
        end: u64,
        /// The value read (0: no item).
        value: u64,
    },
    /// A write of filler item `n` (written once, never changed).
    Fill { n: u64, acknowledged: bool },
}

/// The nodes that run now.
type Running = Arc<Mutex<BTreeMap<NodeId, Arc<Cluster>>>>;

struct Sim {
    seed: u64,
    network: Arc<SimNetwork>,
    storages: BTreeMap<NodeId, Storage>,
    running: Running,
    clock: Arc<AtomicU64>,
    history: Arc<Mutex<Vec<Op>>>,
}

fn options(
    sim_seed: u64,
    id: NodeId,
    incarnation: u64,
    network: &Arc<SimNetwork>,
) -> ClusterOptions {
    ClusterOptions {
        node: NodeOptions {
            node_id: id,
            advertise_addr: format!("sim-{id}"),
            rng_seed: Some(sim_seed ^ (id << 32) ^ incarnation),
            simulated_network: Some(network.clone()),
            group_ready_timeout: Duration::from_secs(30),
            ..NodeOptions::default()
        },
        initial_members: if id == JOINER {
            BTreeMap::new()
        } else {
            NODES.iter().map(|n| (*n, format!("sim-{n}"))).collect()
        },
        join: (id == JOINER).then(|| format!("sim-{}", 1 + incarnation % 3)),
        api_addr: format!("sim-api-{id}"),
        // Splits by size (the filler grows the table through several), not
        // by load (rates follow the clock); no rebuilds (three nodes only).
        split_size_bytes: SPLIT_SIZE_BYTES,
        split_check_interval: Duration::from_millis(300),
        split_load_ops_per_second: 0.0,
        dead_node_after: Duration::from_secs(24 * 3600),
        ..ClusterOptions::default()
    }
}

impl Sim {
    fn node(&self, id: NodeId) -> Option<Arc<Cluster>> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Starts node `id` on its storage in the background; it joins the
    /// running set once it serves (a quorum must answer first).
    fn start(&self, id: NodeId, incarnation: u64) {
        let storage = self.storages[&id].clone();
        let options = options(self.seed, id, incarnation, &self.network);
        let running = self.running.clone();
        let network = self.network.clone();
        tokio::spawn(async move {
            match Cluster::open(storage, options).await {
                Ok(cluster) => {
                    network.record(format!("node {id} serves"));
                    running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, cluster);
                }
                Err(e) => network.record(format!("node {id} failed to start: {e}")),
            }
        });
    }

    async fn crash(&self, id: NodeId) {
        let cluster = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(cluster) = cluster {
            self.network.record(format!("crash {id}"));
            cluster.crash().await;
        }
    }
}

async fn write(
    cluster: &Arc<Cluster>,
    key: &str,
    value: u64,
    padding_bytes: usize,
) -> Result<(), String> {
    let table = cluster
        .catalog()
        .active_table(TABLE)
        .map_err(|e| e.to_string())?;
    let pk = AttributeValue::S(key.to_string());
    let mut item = Item::new();
    item.insert("pk".into(), pk.clone());
    item.insert("v".into(), AttributeValue::N(Number::from(value as i64)));
    if padding_bytes > 0 {
        item.insert("pad".into(), AttributeValue::S("x".repeat(padding_bytes)));
    }
    let key = ItemKey::of(&table.key_schema, &item).map_err(|e| e.to_string())?;
    let writes = vec![BatchWrite::put(key, &item, item_size_bytes(&item) as u32)];
    let data = cluster.data_plane();
    match tokio::time::timeout(REQUEST_TIMEOUT, data.write_batch(&table, writes)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

async fn read(cluster: &Arc<Cluster>, key: &str) -> Result<u64, String> {
    let table = cluster
        .catalog()
        .active_table(TABLE)
        .map_err(|e| e.to_string())?;
    let mut key_item = Item::new();
    key_item.insert("pk".into(), AttributeValue::S(key.to_string()));
    let key = ItemKey::of(&table.key_schema, &key_item).map_err(|e| e.to_string())?;
    let data = cluster.data_plane();
    let item = tokio::time::timeout(REQUEST_TIMEOUT, data.get_item(&table, &key, true))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    match item.as_ref().and_then(|item| item.get("v")) {
        None => Ok(0),
        Some(AttributeValue::N(v)) => v.to_string().parse().map_err(|_| format!("bad value {v}")),
        Some(other) => Err(format!("bad value {other:?}")),
    }
}

/// One client: writes its own keys (1, 2, 3, ... each) and reads any key,
/// through a random running node, until `stop`.
async fn client(sim: Arc<Sim>, client: u64, stop: Arc<AtomicBool>) {
    let mut draws = Draws(sim.seed ^ (client << 40) ^ 0xc11e);
    let mut next_value: BTreeMap<u64, u64> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(draws.below(50))).await;
        let node = ALL_NODES[draws.below(4) as usize];
        let Some(cluster) = sim.node(node) else {
            continue;
        };
        let start = sim.clock.fetch_add(1, Ordering::SeqCst);
        let op = if draws.below(2) == 0 {
            let key = client * KEYS_PER_CLIENT + draws.below(KEYS_PER_CLIENT);
            let value = next_value.entry(key).or_insert(0);
            *value += 1;
            let value = *value;
            let outcome = write(&cluster, &key_name(key), value, 0).await;
            sim.network.record(format!(
                "client {client} via {node}: write k{key}={value} {}",
                if outcome.is_ok() { "ok" } else { "failed" }
            ));
            Op::Write {
                key,
                value,
                start,
                end: sim.clock.fetch_add(1, Ordering::SeqCst),
                acknowledged: outcome.is_ok(),
            }
        } else {
            let key = draws.below(CLIENTS * KEYS_PER_CLIENT);
            match read(&cluster, &key_name(key)).await {
                Ok(value) => {
                    sim.network
                        .record(format!("client {client} via {node}: read k{key}={value}"));
                    Op::Read {
                        key,
                        start,
                        end: sim.clock.fetch_add(1, Ordering::SeqCst),
                        value,
                    }
                }
                Err(_) => {
                    sim.network
                        .record(format!("client {client} via {node}: read k{key} failed"));
                    continue;
                }
            }
        };
        sim.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(op);
    }
}

/// Writes filler items `f1`, `f2`, ... (about 110 bytes each), one attempt
/// each, through random nodes until `stop`: they grow the table past the
/// split size again and again while the other clients work.
async fn filler(sim: Arc<Sim>, stop: Arc<AtomicBool>) {
    let mut draws = Draws(sim.seed ^ 0xf111);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(draws.below(40))).await;
        let node = ALL_NODES[draws.below(4) as usize];
        let Some(cluster) = sim.node(node) else {
            continue;
        };
        n += 1;
        let acknowledged = write(&cluster, &format!("f{n}"), n, FILLER_PADDING_BYTES)
            .await
            .is_ok();
        sim.network.record(format!(
            "filler via {node}: f{n} {}",
            if acknowledged { "ok" } else { "failed" }
        ));
        sim.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Op::Fill { n, acknowledged });
    }
}

/// Checks the history of one key (see the module's description); returns
/// what is wrong.
fn check_key(key: u64, ops: &[&Op], final_value: u64) -> Vec<String> {
    let mut wrong = Vec::new();
    let writes: Vec<(u64, u64, u64, bool)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Write {
                value,
                start,
                end,
                acknowledged,
                ..
            } => Some((*value, *start, *end, *acknowledged)),
            Op::Read { .. } | Op::Fill { .. } => None,
        })
        .collect();
    let acknowledged_before = |tick: u64| {
        writes
            .iter()
            .filter(|(_, _, end, acknowledged)| *acknowledged && *end < tick)
            .map(|(value, ..)| *value)
            .max()
            .unwrap_or(0)
    };
    let attempted_before = |tick: u64| {
        writes
            .iter()
            .filter(|(_, start, ..)| *start < tick)
            .map(|(value, ..)| *value)
            .max()
            .unwrap_or(0)
    };
    let reads: Vec<(u64, u64, u64)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Read {
                start, end, value, ..
            } => Some((*start, *end, *value)),
            Op::Write { .. } | Op::Fill { .. } => None,
        })
        .collect();
    for (start, end, value) in &reads {
        let low = acknowledged_before(*start);
        let high = attempted_before(*end);
        if *value < low || *value > high {
            wrong.push(format!(
                "k{key}: read [{start}, {end}] returned {value}, outside [{low}, {high}]"
            ));
        }
        let earlier = reads
            .iter()
            .filter(|(_, other_end, _)| other_end < start)
            .map(|(_, _, v)| *v)
            .max()
            .unwrap_or(0);
        if *value < earlier {
            wrong.push(format!(
                "k{key}: read [{start}, {end}] returned {value} after a read returned {earlier}"
            ));
        }
    }
    let low = acknowledged_before(u64::MAX);
    let high = attempted_before(u64::MAX);
    if final_value < low || final_value > high {
        wrong.push(format!(
            "k{key}: holds {final_value} after healing, outside [{low}, {high}]"
        ));
    }
    wrong
}

/// What one run did and saw.
struct Run {
    trace: Vec<String>,
    acknowledged_writes: usize,
    reads: usize,
    crashes: u32,
    partitions: u32,
    /// Partitions of the table at the end (it splits as the filler grows it).
    table_partitions: usize,
    /// Requests answered through the node that joined.
    via_joiner: usize,
    /// Replicas the node that joined holds at the end (moved for balance).
    joiner_replicas: usize,
}

fn simulate(seed: u64, steps: u32) -> Run {
    let panics_before = atoll_replication::sim::panics_so_far();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let run = runtime.block_on(simulate_run(seed, steps));
    drop(runtime);
    assert_eq!(
        atoll_replication::sim::panics_so_far(),
        panics_before,
        "seed {seed}: a task panicked during the run (see above)"
    );
    run
}

async fn simulate_run(seed: u64, steps: u32) -> Run {
    let network = SimNetwork::new(seed);
    let sim = Arc::new(Sim {
        seed,
        network: network.clone(),
        storages: ALL_NODES
            .iter()
            .map(|id| (*id, Storage::in_memory()))
            .collect(),
        running: Running::default(),
        clock: Arc::default(),
        history: Arc::default(),
    });
    for id in NODES {
        sim.start(id, 0);
    }
    let started = tokio::time::Instant::now();
    while sim.running.lock().unwrap_or_else(|e| e.into_inner()).len() < NODES.len() {
        assert!(
            started.elapsed() < SETTLE_TIMEOUT,
            "seed {seed}: the nodes did not start: {:#?}",
            network.trace()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = sim.node(1).expect("node 1 runs");
    first
        .create_table(common::definition(TABLE))
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: CreateTable: {e}"));
    for id in NODES {
        let cluster = sim.node(id).expect("node runs");
        while cluster.catalog().active_table(TABLE).is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(sim.clone(), c, stop.clone())))
        .chain([tokio::spawn(filler(sim.clone(), stop.clone()))])
        .collect();
    let (mut crashes, mut partitions) = (0, 0);
    let mut down: Option<NodeId> = None;
    let mut incarnation = 0;
    for step in 0..steps {
        if step == steps / 3 {
            network.record(format!("node {JOINER} joins"));
            sim.start(JOINER, 0);
        }
        tokio::time::sleep(Duration::from_millis(network.draw(200))).await;
        match network.draw(100) {
            0..=9 => {
                let mut faults = Faults {
                    loss_percent: network.draw(10),
                    max_delay_ms: network.draw(30),
                    ..Faults::default()
                };
                if network.draw(2) == 0 {
                    let isolated = ALL_NODES[network.draw(4) as usize];
                    for other in ALL_NODES.iter().filter(|n| **n != isolated) {
                        faults
                            .cut
                            .insert((isolated.min(*other), isolated.max(*other)));
                    }
                    partitions += 1;
                }
                network.set_faults(faults);
            }
            // One node down at a time. Only a running node crashes: one
            // still starting has its storage open already, and a second
            // start on that storage would be two processes on one disk.
            10..=14 => match down.take() {
                Some(id) => {
                    incarnation += 1;
                    network.record(format!("restart {id}"));
                    sim.start(id, incarnation);
                }
                None => {
                    let id = ALL_NODES[network.draw(4) as usize];
                    if sim.node(id).is_some() {
                        sim.crash(id).await;
                        down = Some(id);
                        crashes += 1;
                    }
                }
            },
            _ => {}
        }
    }

    // Heal: no faults, every node up; then each key is read once more.
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("client task");
    }
    network.set_faults(Faults::default());
    if let Some(id) = down.take() {
        sim.start(id, incarnation + 1);
    }
    let healed = tokio::time::Instant::now();
    let mut finals = BTreeMap::new();
    for key in 0..CLIENTS * KEYS_PER_CLIENT {
        loop {
            assert!(
                healed.elapsed() < SETTLE_TIMEOUT,
                "seed {seed}: k{key} not readable within {SETTLE_TIMEOUT:?} of healing"
            );
            let node = sim.node(NODES[(key % 3) as usize]);
            if let Some(cluster) = node
                && let Ok(value) = read(&cluster, &key_name(key)).await
            {
                finals.insert(key, value);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let history = std::mem::take(&mut *sim.history.lock().unwrap_or_else(|e| e.into_inner()));
    let mut wrong = Vec::new();
    for key in 0..CLIENTS * KEYS_PER_CLIENT {
        let ops: Vec<&Op> = history
            .iter()
            .filter(|op| match op {
                Op::Write { key: k, .. } | Op::Read { key: k, .. } => *k == key,
                Op::Fill { .. } => false,
            })
            .collect();
        wrong.extend(check_key(key, &ops, finals[&key]));
    }
    // Every acknowledged filler item is there, through whichever node.
    let settled = sim.node(1).expect("node 1 runs after healing");
    for op in &history {
        if let Op::Fill {
            n,
            acknowledged: true,
        } = op
        {
            match read(&settled, &format!("f{n}")).await {
                Ok(value) if value == *n => {}
                other => wrong.push(format!("acknowledged filler f{n} reads {other:?}")),
            }
        }
    }
    let partitions_now = settled
        .catalog()
        .active_table(TABLE)
        .map(|t| t.partitions.len())
        .unwrap_or(0);
    network.record(format!("{partitions_now} partitions"));
    let joiner_replicas = settled
        .report()
        .nodes
        .iter()
        .find(|n| n.id == JOINER)
        .map_or(0, |n| n.replica_count);
    network.record(format!("node {JOINER} holds {joiner_replicas} replicas"));
    if !wrong.is_empty()
        && let Some(path) = std::env::var_os("SIM_TRACE_FILE")
    {
        let _ = std::fs::write(&path, network.trace().join("\n"));
    }
    assert!(
        wrong.is_empty(),
        "seed {seed}: the history is not linearizable:\n{}\ntrace tail:\n{}",
        wrong.join("\n"),
        network
            .trace()
            .iter()
            .rev()
            .take(60)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    for id in ALL_NODES {
        sim.crash(id).await;
    }
    let keys_written: BTreeSet<u64> = history
        .iter()
        .filter_map(|op| match op {
            Op::Write {
                key,
                acknowledged: true,
                ..
            } => Some(*key),
            _ => None,
        })
        .collect();
    network.record(format!("keys written: {keys_written:?}"));
    Run {
        trace: network.trace(),
        acknowledged_writes: history
            .iter()
            .filter(|op| {
                matches!(
                    op,
                    Op::Write {
                        acknowledged: true,
                        ..
                    }
                )
            })
            .count(),
        reads: history
            .iter()
            .filter(|op| matches!(op, Op::Read { .. }))
            .count(),
        crashes,
        partitions,
        table_partitions: partitions_now,
        joiner_replicas,
        via_joiner: network
            .trace()
            .iter()
            .filter(|event| {
                event.contains(&format!(" via {JOINER}: ")) && !event.ends_with("failed")
            })
            .count(),
    }
}

fn seeds() -> Vec<u64> {
    std::env::var("SIM_SEEDS")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![1, 2])
}

fn steps() -> u32 {
    std::env::var("SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150)
}

#[test]
fn routed_requests_stay_linearizable_under_simulated_faults() {
    for seed in seeds() {
        let run = simulate(seed, steps());
        println!(
            "seed {seed}: {} writes acknowledged, {} consistent reads, {} requests through the node that joined, {} replicas moved onto it, {} crashes, {} network partitions, {} table partitions, {} events",
            run.acknowledged_writes,
            run.reads,
            run.via_joiner,
            run.joiner_replicas,
            run.crashes,
            run.partitions,
            run.table_partitions,
            run.trace.len()
        );
        assert!(
            run.via_joiner > 0,
            "seed {seed}: the node that joined answered nothing"
        );
        assert!(
            run.acknowledged_writes > 0 && run.reads > 0,
            "seed {seed}: the clients got nothing done"
        );
    }
}

#[test]
fn a_routing_seed_replays_exactly() {
    let seed = seeds().first().copied().unwrap_or(1);
    let first = simulate(seed, steps());
    let second = simulate(seed, steps());
    if let Some(at) = first
        .trace
        .iter()
        .zip(&second.trace)
        .position(|(a, b)| a != b)
    {
        for i in at.saturating_sub(8)..(at + 4).min(first.trace.len()).min(second.trace.len()) {
            eprintln!("{i}: {:<60} | {}", first.trace[i], second.trace[i]);
        }
        panic!(
            "seed {seed}: the runs diverge at event {at}: {:?} vs {:?}",
            first.trace[at], second.trace[at]
        );
    }
    assert_eq!(first.trace.len(), second.trace.len());
}
