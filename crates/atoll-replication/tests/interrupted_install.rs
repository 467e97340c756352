//! A snapshot whose install stops half-way, after part of the import is
//! written (as when the node crashes), is imported again when the node
//! starts: the replica ends with the leader's state, not a mix of old and
//! new. A test binary of its own: the fail point it sets is process-wide.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_replication::{NodeId, NodeOptions, RaftNode, fail_points};
use atoll_storage::{Storage, StorageOptions};
use common::Kv;

const GROUP: u64 = 21;

/// Bytes of each value: 160 of them outgrow one batch of an import (8 MiB)
/// and one chunk on the wire (4 MiB).
const VALUE_BYTES: usize = 64 * 1024;
const KEYS: usize = 160;

fn open(dir: &Path, id: NodeId, listen: &str) -> (Arc<RaftNode>, Arc<Kv>) {
    let storage = Storage::open(dir, StorageOptions::default()).expect("storage");
    let node = RaftNode::open(
        storage.clone(),
        NodeOptions {
            node_id: id,
            raft_listen_addr: Some(listen.to_string()),
            snapshot_every_entries: 20,
            log_entries_kept_after_snapshot: 5,
            ..NodeOptions::default()
        },
    )
    .expect("node");
    let kv = Arc::new(Kv {
        keyspace: storage.keyspace("kv").expect("keyspace"),
    });
    (node, kv)
}

fn big_keys(kv: &Kv) -> usize {
    kv.keyspace
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .filter(|pair| {
            pair.as_ref()
                .is_ok_and(|(key, value)| key.starts_with(b"big") && value.len() == VALUE_BYTES)
        })
        .count()
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_cut_short_is_finished_at_the_next_start() {
    // Logs to the test's output when `RUST_LOG` asks (e.g. `openraft=info`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<(Arc<RaftNode>, Arc<Kv>)> = (0..3)
        .map(|i| open(dirs[i].path(), i as NodeId + 1, "127.0.0.1:0"))
        .collect();
    let members: BTreeMap<NodeId, String> = nodes
        .iter()
        .map(|(node, _)| (node.node_id(), node.raft_addr().unwrap().to_string()))
        .collect();
    let starts = nodes
        .iter()
        .map(|(node, kv)| node.start_replicated_group(GROUP, kv.clone(), members.clone()));
    let groups: Vec<_> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .map(|started| started.expect("group starts"))
        .collect();
    let mut leader = None;
    eventually("a leader is elected", || {
        leader = groups[0].current_leader();
        leader.is_some() && groups.iter().all(|g| g.current_leader() == leader)
    })
    .await;
    let leader_at = (0..3)
        .find(|i| Some(nodes[*i].0.node_id()) == leader)
        .unwrap();
    let behind_at = (leader_at + 1) % 3;
    let leader_group = groups[leader_at].clone();
    let propose = |command: String| {
        let group = leader_group.clone();
        async move { group.propose(bytes::Bytes::from(command)).await.unwrap() }
    };
    propose("small=1".into()).await;

    // One follower stops; the leader writes enough to snapshot and purge,
    // and more than one import batch's worth.
    nodes[behind_at].0.shutdown().await;
    let (node, kv) = nodes.remove(behind_at);
    drop((node, kv, groups));
    let value = "x".repeat(VALUE_BYTES);
    for index in 0..KEYS {
        propose(format!("big{index:03}={value}")).await;
    }
    // Purged for sure (openraft may hold a purge back a while).
    leader_group.compact_log().await.unwrap();

    // It comes back and gets a snapshot, whose import stops after its
    // first batch.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let import_cut = fail_points::arm("snapshot-import-interrupted", "return").unwrap();
    let behind_dir = dirs[behind_at].path();
    let behind_id = behind_at as NodeId + 1;
    let (node, kv) = open(behind_dir, behind_id, &members[&behind_id]);
    let start = {
        let (node, kv, members) = (node.clone(), kv.clone(), members.clone());
        tokio::spawn(async move {
            let _ = node.start_replicated_group(GROUP, kv, members).await;
        })
    };
    let kept = behind_dir
        .join("spool")
        .join(format!("group-{GROUP}.snapshot"));
    eventually("the import is cut short", || {
        kept.exists() && big_keys(&kv) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let partial = big_keys(&kv);
    assert!(
        partial < KEYS,
        "the whole import landed ({partial} keys) before the fault"
    );
    start.abort();
    node.shutdown().await;
    drop((node, kv));
    drop(import_cut);
    assert!(kept.exists(), "the snapshot kept for the install is gone");

    // At its next start the node imports the kept snapshot again, before
    // the group runs: cut off from its peers, it has it all at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let isolated = fail_points::arm("raft-isolate", &format!("return({behind_id})")).unwrap();
    let (node, kv) = open(behind_dir, behind_id, &members[&behind_id]);
    let group = node
        .join_group(GROUP, kv.clone())
        .await
        .expect("the group opens");
    assert_eq!(big_keys(&kv), KEYS);
    assert_eq!(
        kv.keyspace.get(b"small").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert!(!kept.exists(), "the kept snapshot outlived its install");
    let leftovers: Vec<_> = std::fs::read_dir(behind_dir.join("spool"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "spool files left: {leftovers:?}");

    // Back in touch, it follows the log from the snapshot on.
    drop(isolated);
    propose("after=2".into()).await;
    eventually("the write after the snapshot arrives", || {
        kv.keyspace.get(b"after").unwrap().as_deref() == Some(&b"2"[..])
    })
    .await;
    assert!(group.applied_index().is_some());
    node.shutdown().await;
    for (node, _) in nodes {
        node.shutdown().await;
    }
}
