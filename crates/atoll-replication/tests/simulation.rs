//! Deterministic simulation of a replicated group: three nodes on in-memory
//! storage, a simulated network with seeded delays, message loss, cut links
//! and node crashes, and a client writing through whichever node leads.
//! Everything runs on one thread with Tokio's clock paused, so a run is a
//! function of its seed: the same seed gives the same trace, and a failing
//! seed replays exactly.
//!
//! Seeds: `SIM_SEEDS=1,2,3` (default: a few, for CI); `SIM_STEPS` sets the
//! length of each run.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use std::sync::Arc;
use std::time::Duration;

use atoll_replication::sim::{Faults, SimNetwork};
use atoll_replication::{Group, NodeId, NodeOptions, RaftNode};
use atoll_storage::Storage;
use common::Kv;

const GROUP: u64 = 7;
const NODES: [NodeId; 3] = [1, 2, 3];

struct SimNode {
    storage: Storage,
    kv: Arc<Kv>,
    node: Option<Arc<RaftNode>>,
    group: Option<Group<Option<Vec<u8>>>>,
}

/// What one run did and saw.
struct Run {
    trace: Vec<String>,
    acknowledged: Vec<String>,
    crashes: u32,
    partitions: u32,
}

fn members() -> BTreeMap<NodeId, String> {
    NODES.iter().map(|id| (*id, format!("sim-{id}"))).collect()
}

fn open_node(id: NodeId, storage: &Storage, network: &Arc<SimNetwork>, seed: u64) -> Arc<RaftNode> {
    let node = RaftNode::open(
        storage.clone(),
        NodeOptions {
            node_id: id,
            advertise_addr: format!("sim-{id}"),
            rng_seed: Some(seed),
            simulated_network: Some(network.clone()),
            snapshot_every_entries: 40,
            log_entries_kept_after_snapshot: 5,
            group_ready_timeout: Duration::from_secs(60),
            ..NodeOptions::default()
        },
    )
    .expect("node");
    network.register(&node);
    node
}

async fn restart(sim: &mut SimNode, id: NodeId, network: &Arc<SimNetwork>, seed: u64) {
    let node = open_node(id, &sim.storage, network, seed);
    // Recovers the group from storage without waiting for a leader: the
    // node may come back into a partition.
    let group = node
        .join_group(GROUP, sim.kv.clone())
        .await
        .expect("group recovers");
    sim.node = Some(node);
    sim.group = Some(group);
}

fn simulate(seed: u64, steps: u32) -> Run {
    let panics_before = atoll_replication::sim::panics_so_far();
    let run = simulate_run(seed, steps);
    assert_eq!(
        atoll_replication::sim::panics_so_far(),
        panics_before,
        "seed {seed}: a task panicked during the run (see above)"
    );
    run
}

fn simulate_run(seed: u64, steps: u32) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let network = SimNetwork::new(seed);
        let mut nodes: BTreeMap<NodeId, SimNode> = NODES
            .iter()
            .map(|id| {
                let storage = Storage::in_memory();
                let kv = Arc::new(Kv {
                    keyspace: storage.keyspace("kv").expect("keyspace"),
                });
                let sim = SimNode {
                    storage,
                    kv,
                    node: None,
                    group: None,
                };
                (*id, sim)
            })
            .collect();
        // All three start together: each waits for a leader, which needs the others.
        let opened: Vec<(NodeId, Arc<RaftNode>)> = NODES
            .iter()
            .map(|id| (*id, open_node(*id, &nodes[id].storage, &network, seed)))
            .collect();
        let starts = opened
            .iter()
            .map(|(id, node)| node.start_replicated_group(GROUP, nodes[id].kv.clone(), members()));
        let groups = futures_util::future::join_all(starts).await;
        for ((id, node), group) in opened.into_iter().zip(groups) {
            let sim = nodes.get_mut(&id).expect("node");
            sim.node = Some(node);
            sim.group = Some(group.expect("group starts"));
        }

        let mut run = Run {
            trace: Vec::new(),
            acknowledged: Vec::new(),
            crashes: 0,
            partitions: 0,
        };
        let mut down: Option<NodeId> = None;
        for step in 0..steps {
            match network.draw(100) {
                // Change the network's faults.
                0..=4 => {
                    let mut faults = Faults {
                        loss_percent: network.draw(15),
                        max_delay_ms: network.draw(40),
                        ..Faults::default()
                    };
                    if network.draw(2) == 0 {
                        let isolated = NODES[network.draw(3) as usize];
                        for other in NODES.iter().filter(|n| **n != isolated) {
                            faults
                                .cut
                                .insert((isolated.min(*other), isolated.max(*other)));
                        }
                        run.partitions += 1;
                    }
                    network.set_faults(faults);
                }
                // Crash a node (one at a time), or bring the crashed one back.
                5..=7 => match down.take() {
                    Some(id) => {
                        network.record(format!("restart {id}"));
                        let sim = nodes.get_mut(&id).expect("node");
                        restart(sim, id, &network, seed ^ u64::from(step)).await;
                    }
                    None => {
                        let id = NODES[network.draw(3) as usize];
                        network.record(format!("crash {id}"));
                        let sim = nodes.get_mut(&id).expect("node");
                        sim.group = None;
                        if let Some(node) = sim.node.take() {
                            node.stop(false).await;
                        }
                        down = Some(id);
                        run.crashes += 1;
                    }
                },
                // Write through the node that believes it leads.
                _ => {
                    let leader = nodes
                        .values()
                        .filter_map(|sim| sim.group.as_ref())
                        .find(|group| group.is_leader())
                        .cloned();
                    if let Some(group) = leader {
                        let command = format!("w{step}={seed}");
                        let proposal = group.propose(bytes::Bytes::from(command.clone()));
                        match tokio::time::timeout(Duration::from_secs(3), proposal).await {
                            Ok(Ok(_)) => {
                                network.record(format!("ack {command}"));
                                run.acknowledged.push(format!("w{step}"));
                            }
                            Ok(Err(e)) => network.record(format!("failed {command}: {e}")),
                            Err(_) => network.record(format!("timed out {command}")),
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(network.draw(60))).await;
        }

        // Heal everything and let the group settle.
        network.set_faults(Faults::default());
        if let Some(id) = down.take() {
            let sim = nodes.get_mut(&id).expect("node");
            restart(sim, id, &network, seed ^ 0xfeed).await;
        }
        let settle_deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let leader = loop {
            assert!(
                tokio::time::Instant::now() < settle_deadline,
                "seed {seed}: no leader committed a write within 120 s of healing"
            );
            let leader = nodes
                .values()
                .filter_map(|sim| sim.group.as_ref())
                .find(|group| group.is_leader())
                .cloned();
            if let Some(leader) = leader {
                // A write of the new term commits everything before it.
                if leader
                    .propose(bytes::Bytes::from_static(b"final=1"))
                    .await
                    .is_ok()
                {
                    break leader;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let last = leader.applied_index().unwrap_or(0);
        for (id, sim) in &nodes {
            let group = sim.group.as_ref().expect("every node runs");
            group
                .wait_applied(last, Duration::from_secs(60))
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: node {id} did not catch up: {e}"));
            for key in &run.acknowledged {
                let value = sim.kv.keyspace.get(key.as_bytes()).expect("read");
                assert!(
                    value.is_some(),
                    "seed {seed}: acknowledged write {key} is missing on node {id}"
                );
            }
        }
        for sim in nodes.values() {
            if let Some(node) = &sim.node {
                node.stop(false).await;
            }
        }
        run.trace = network.trace();
        run
    })
}

fn seeds() -> Vec<u64> {
    std::env::var("SIM_SEEDS")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![1, 2, 3, 4])
}

fn steps() -> u32 {
    std::env::var("SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

#[test]
fn no_acknowledged_write_is_lost_under_simulated_faults() {
    for seed in seeds() {
        let run = simulate(seed, steps());
        println!(
            "seed {seed}: {} writes acknowledged, {} crashes, {} partitions, {} messages",
            run.acknowledged.len(),
            run.crashes,
            run.partitions,
            run.trace.len()
        );
        assert!(
            !run.acknowledged.is_empty(),
            "seed {seed}: nothing was written"
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    let seed = seeds().first().copied().unwrap_or(1);
    let first = simulate(seed, steps());
    let second = simulate(seed, steps());
    assert_eq!(first.acknowledged, second.acknowledged);
    if let Some(at) = first
        .trace
        .iter()
        .zip(&second.trace)
        .position(|(a, b)| a != b)
    {
        for i in at.saturating_sub(8)..(at + 4).min(first.trace.len()).min(second.trace.len()) {
            eprintln!("{i}: {:<40} | {}", first.trace[i], second.trace[i]);
        }
        panic!(
            "seed {seed}: the runs diverge at event {at}: {:?} vs {:?}",
            first.trace[at], second.trace[at]
        );
    }
    assert_eq!(first.trace.len(), second.trace.len());
    // A different seed takes a different course.
    assert_ne!(simulate(seed + 1, steps()).trace, first.trace);
}
