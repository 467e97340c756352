//! A group replicated on three nodes over the TCP transport, each node with
//! its own storage: one leader is elected, writes commit on a quorum and
//! apply on every replica, followers refuse writes naming the leader, the
//! group survives the loss of its leader, and the old leader catches up
//! when it comes back.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_replication::{Group, NodeId, NodeOptions, RaftNode, ReplicationError, fail_points};

/// A group of the key-value state machine the tests drive.
type KvGroup = Group<Option<Vec<u8>>>;
use atoll_storage::{Storage, StorageOptions};
use common::Kv;

const GROUP: u64 = 11;

struct Replica {
    id: NodeId,
    node: Arc<RaftNode>,
    kv: Arc<Kv>,
}

/// Logs to the test's output when `RUST_LOG` asks (e.g. `openraft=info`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn open(dir: &Path, id: NodeId, listen: &str) -> Replica {
    open_with(dir, id, listen, NodeOptions::default())
}

fn open_with(dir: &Path, id: NodeId, listen: &str, options: NodeOptions) -> Replica {
    let storage = Storage::open(dir, StorageOptions::default()).expect("storage");
    let node = RaftNode::open(
        storage.clone(),
        NodeOptions {
            node_id: id,
            raft_listen_addr: Some(listen.to_string()),
            ..options
        },
    )
    .expect("node");
    let kv = Arc::new(Kv {
        keyspace: storage.keyspace("kv").expect("keyspace"),
    });
    Replica { id, node, kv }
}

async fn start_all(replicas: &[&Replica], members: &BTreeMap<NodeId, String>) -> Vec<KvGroup> {
    let starts = replicas.iter().map(|replica| {
        replica
            .node
            .start_replicated_group(GROUP, replica.kv.clone(), members.clone())
    });
    futures_util::future::join_all(starts)
        .await
        .into_iter()
        .map(|started| started.expect("group starts"))
        .collect()
}

/// Waits until every replica names the same leader, one of `candidates`.
async fn agreed_leader(groups: &[&KvGroup], candidates: &[NodeId]) -> NodeId {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leaders: Vec<Option<NodeId>> = groups.iter().map(|g| g.current_leader()).collect();
        if let Some(Some(leader)) = leaders.first()
            && leaders.iter().all(|l| *l == Some(*leader))
            && candidates.contains(leader)
        {
            return *leader;
        }
        assert!(Instant::now() < deadline, "no agreed leader: {leaders:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `replica` has applied the write of `key` (10 s at most: an
/// acknowledged write that never shows up is lost).
async fn wait_for(replica: &Replica, key: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(replica, key).as_deref() != Some(expected) {
        assert!(
            Instant::now() < deadline,
            "node {} did not apply {key}={expected}",
            replica.id
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn value(replica: &Replica, key: &str) -> Option<String> {
    replica
        .kv
        .keyspace
        .get(key.as_bytes())
        .expect("read")
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Writes `count` keys concurrently, each retried on the leader a refusal
/// names (or again after a pause while there is none), as a router would.
async fn write_many(groups: &BTreeMap<NodeId, KvGroup>, first: NodeId, prefix: &str, count: usize) {
    let writes = (0..count).map(|i| {
        let command = bytes::Bytes::from(format!("{prefix}{i}=v{i}"));
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut target = first;
            loop {
                let group = groups.get(&target).expect("a known node");
                match group.propose(command.clone()).await {
                    Ok(_) => return,
                    Err(ReplicationError::NotLeader { leader, .. }) => {
                        assert!(Instant::now() < deadline, "no leader took {prefix}{i}");
                        match leader {
                            Some(leader) if groups.contains_key(&leader) => target = leader,
                            _ => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                    Err(e) => panic!("write of {prefix}{i} failed: {e}"),
                }
            }
        }
    });
    futures_util::future::join_all(writes).await;
}

/// Three running replicas of group `GROUP` and who leads it.
struct Trio {
    replicas: Vec<Replica>,
    members: BTreeMap<NodeId, String>,
    /// Each replica's group, in the order of `replicas`.
    groups: Vec<KvGroup>,
    by_id: BTreeMap<NodeId, KvGroup>,
    leader: NodeId,
}

/// Starts nodes `first_id..first_id + 3` on loopback, each on its own
/// directory of `dirs`, and group `GROUP` on all three; returns once they
/// agree on a leader.
async fn start_trio(
    dirs: &[tempfile::TempDir],
    first_id: NodeId,
    options: impl Fn() -> NodeOptions,
) -> Trio {
    let replicas: Vec<Replica> = (0..3)
        .map(|i| {
            open_with(
                dirs[i].path(),
                first_id + i as NodeId,
                "127.0.0.1:0",
                options(),
            )
        })
        .collect();
    let members: BTreeMap<NodeId, String> = replicas
        .iter()
        .map(|r| (r.id, r.node.raft_addr().expect("listening").to_string()))
        .collect();
    let groups = start_all(&replicas.iter().collect::<Vec<_>>(), &members).await;
    let ids: Vec<NodeId> = replicas.iter().map(|r| r.id).collect();
    let leader = agreed_leader(&groups.iter().collect::<Vec<_>>(), &ids).await;
    let by_id = replicas
        .iter()
        .zip(&groups)
        .map(|(replica, group)| (replica.id, group.clone()))
        .collect();
    Trio {
        replicas,
        members,
        groups,
        by_id,
        leader,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_elect_replicate_fail_over_and_catch_up() {
    init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let Trio {
        mut replicas,
        members,
        groups,
        by_id,
        leader,
    } = start_trio(&dirs, 1, NodeOptions::default).await;
    let leader_at = (leader - 1) as usize;
    let follower_at = (leader_at + 1) % 3;

    // A follower refuses a write and names the leader.
    match groups[follower_at]
        .propose(bytes::Bytes::from_static(b"x=1"))
        .await
    {
        Err(ReplicationError::NotLeader {
            leader: Some(named),
            ..
        }) => assert_eq!(named, leader),
        other => panic!("a follower accepted or failed oddly: {other:?}"),
    }

    write_many(&by_id, leader, "a", 100).await;
    // Acknowledged on a quorum; every replica applies it soon after.
    for replica in &replicas {
        wait_for(replica, "a99", "v99").await;
        for i in 0..100 {
            assert_eq!(value(replica, &format!("a{i}")), Some(format!("v{i}")));
        }
    }

    // The leader's node stops as if it crashed (no hand-off): the other two
    // elect a new leader when their timers fire, and go on.
    let old_leader = &replicas[leader_at];
    let old_addr = members[&old_leader.id].clone();
    let stopped_at = Instant::now();
    old_leader.node.stop(false).await;
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader_at).collect();
    let surviving_groups: Vec<&KvGroup> = survivors.iter().map(|i| &groups[*i]).collect();
    let survivor_ids: Vec<NodeId> = survivors.iter().map(|i| replicas[*i].id).collect();
    let new_leader = agreed_leader(&surviving_groups, &survivor_ids).await;
    let mut surviving = by_id.clone();
    surviving.remove(&old_leader.id);
    write_many(&surviving, new_leader, "b", 50).await;
    let failover = stopped_at.elapsed();
    eprintln!(
        "failover (leader crashed -> 50 writes acknowledged by the new leader): {failover:?}"
    );
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );

    // The old leader restarts on its old address and catches up from the log.
    drop((groups, by_id, surviving));
    let Replica { id, node, kv } = replicas.remove(leader_at);
    drop((node, kv));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let back = open(dirs[leader_at].path(), id, &old_addr);
    let rejoined = back
        .node
        .start_replicated_group(GROUP, back.kv.clone(), members.clone())
        .await
        .expect("the old leader rejoins");
    wait_for(&back, "b49", "v49").await;
    assert_eq!(value(&back, "b0"), Some("v0".to_string()));
    assert_eq!(value(&back, "a99"), Some("v99".to_string()));
    assert_ne!(rejoined.current_leader(), None);
}

/// What a peer sends is untrusted: an oversized length prefix or a frame
/// that is not a Raft message closes that connection, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_raft_port_closes_the_connection_only() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let replica = open(dir.path(), 1, "127.0.0.1:0");
    let addr = replica.node.raft_addr().expect("listening");
    let group = replica
        .node
        .start_group(GROUP, replica.kv.clone())
        .await
        .expect("group");

    let hostile: [&[u8]; 3] = [
        &u32::MAX.to_be_bytes(),
        &[0, 0, 0, 4, 0xff, 0xfe, 0xfd, 0xfc],
        &[0, 0, 0, 2],
    ];
    for bytes in hostile {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(bytes).await.expect("send");
        stream.shutdown().await.expect("half-close");
        let mut reply = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply))
            .await
            .expect("the node closes the connection");
        assert!(
            read.is_err() || reply.is_empty(),
            "answered garbage: {reply:?}"
        );
    }
    group
        .propose(bytes::Bytes::from_static(b"still=serving"))
        .await
        .expect("the node still serves");
    assert_eq!(value(&replica, "still"), Some("serving".to_string()));
    replica.node.shutdown().await;
}

/// A follower that was down while the leader snapshotted and purged its
/// log catches up from a snapshot sent over the transport, then from the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_purged_log_catches_up_from_a_snapshot() {
    init_tracing();
    let options = || NodeOptions {
        snapshot_every_entries: 20,
        log_entries_kept_after_snapshot: 5,
        ..NodeOptions::default()
    };
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let Trio {
        mut replicas,
        members,
        groups,
        by_id,
        leader,
    } = start_trio(&dirs, 1, options).await;
    write_many(&by_id, leader, "a", 10).await;

    // A follower stops; the other two go on far past several snapshots.
    let behind_at = (0..3)
        .find(|i| replicas[*i].id != leader)
        .expect("a follower");
    let behind_id = replicas[behind_at].id;
    let behind_addr = members[&behind_id].clone();
    replicas[behind_at].node.shutdown().await;
    let mut up = by_id.clone();
    up.remove(&behind_id);
    for round in 0..8 {
        write_many(&up, leader, &format!("b{round}-"), 25).await;
    }
    for replica in replicas.iter().filter(|r| r.id != behind_id) {
        wait_for(replica, "b7-24", "v24").await;
    }

    // It comes back: the entries it misses are purged, so only a snapshot helps.
    drop((groups, by_id, up));
    let Replica { id, node, kv } = replicas.remove(behind_at);
    drop((node, kv));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let back = open_with(dirs[behind_at].path(), id, &behind_addr, options());
    back.node
        .start_replicated_group(GROUP, back.kv.clone(), members.clone())
        .await
        .expect("the follower rejoins");
    wait_for(&back, "b7-24", "v24").await;
    for key in ["a0", "a9", "b0-0", "b3-17", "b7-0"] {
        let expected = format!("v{}", key.rsplit(['-', 'a']).next().unwrap_or_default());
        assert_eq!(value(&back, key), Some(expected), "{key}");
    }
    // And it keeps up from the log afterwards.
    let mut groups: BTreeMap<NodeId, KvGroup> = BTreeMap::new();
    for replica in &replicas {
        groups.insert(replica.id, replica.node.group(GROUP).expect("group"));
    }
    write_many(&groups, leader, "c", 5).await;
    wait_for(&back, "c4", "v4").await;
}

/// Writes `count` keys, each retried on whichever live node leads (as a
/// router would) until acknowledged; returns the acknowledged keys.
async fn write_through_faults(
    live: &BTreeMap<NodeId, KvGroup>,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let writes = (0..count).map(|i| {
        let key = format!("{prefix}{i}");
        let command = bytes::Bytes::from(format!("{key}=v{i}"));
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            let ids: Vec<NodeId> = live.keys().copied().collect();
            let mut target = ids[i % ids.len()];
            let mut attempt = 0usize;
            loop {
                assert!(Instant::now() < deadline, "no live node took {key}");
                let group = &live[&target];
                match group.propose(command.clone()).await {
                    // Acknowledged: durable on a quorum.
                    Ok(_) => return key,
                    Err(ReplicationError::NotLeader {
                        leader: Some(leader),
                        ..
                    }) if live.contains_key(&leader) => target = leader,
                    // No leader yet, or the outcome is unknown: the same
                    // key=value again is harmless.
                    Err(_) => {
                        attempt += 1;
                        target = ids[(i + attempt) % ids.len()];
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
    });
    futures_util::future::join_all(writes).await
}

/// Rounds of writes while one node at a time is stopped (sometimes the
/// leader) and brought back, with snapshots and purges under way: every
/// acknowledged write ends up on every replica. Seeds choose the victims;
/// `FAULT_SEEDS=1,2,3` runs others, and a failing seed replays its victims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_nodes_stopping_and_returning() {
    init_tracing();
    let seeds: Vec<u64> = std::env::var("FAULT_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![7, 11]);
    for seed in seeds {
        run_fault_rounds(seed).await;
    }
}

async fn run_fault_rounds(seed: u64) {
    let options = || NodeOptions {
        snapshot_every_entries: 25,
        log_entries_kept_after_snapshot: 5,
        ..NodeOptions::default()
    };
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas: Vec<Option<Replica>> = (0..3)
        .map(|i| {
            Some(open_with(
                dirs[i].path(),
                i as NodeId + 1,
                "127.0.0.1:0",
                options(),
            ))
        })
        .collect();
    let members: BTreeMap<NodeId, String> = replicas
        .iter()
        .flatten()
        .map(|r| (r.id, r.node.raft_addr().expect("listening").to_string()))
        .collect();
    start_all(&replicas.iter().flatten().collect::<Vec<_>>(), &members).await;

    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut acknowledged = Vec::new();
    for round in 0..8 {
        let down = replicas.iter().position(Option::is_none);
        match down {
            None => {
                let victim = (next() % 3) as usize;
                if let Some(replica) = replicas[victim].take() {
                    // Half the stops are crashes, half hand off leadership first.
                    replica.node.stop(next() % 2 == 0).await;
                }
            }
            Some(at) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let id = at as NodeId + 1;
                let back = open_with(dirs[at].path(), id, &members[&id], options());
                back.node
                    .start_replicated_group(GROUP, back.kv.clone(), members.clone())
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed}: node {id} rejoins: {e}"));
                replicas[at] = Some(back);
            }
        }
        let live: BTreeMap<NodeId, KvGroup> = replicas
            .iter()
            .flatten()
            .map(|r| (r.id, r.node.group(GROUP).expect("group")))
            .collect();
        acknowledged.extend(write_through_faults(&live, &format!("s{seed}r{round}-"), 30).await);
    }
    if let Some(at) = replicas.iter().position(Option::is_none) {
        let id = at as NodeId + 1;
        let back = open_with(dirs[at].path(), id, &members[&id], options());
        back.node
            .start_replicated_group(GROUP, back.kv.clone(), members.clone())
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: node {id} rejoins: {e}"));
        replicas[at] = Some(back);
    }
    // Writes of a round commit in any order: wait for each one.
    for replica in replicas.iter().flatten() {
        for key in &acknowledged {
            let i = key.rsplit('-').next().unwrap_or_default();
            wait_for(replica, key, &format!("v{i}")).await;
        }
    }
    for replica in replicas.iter().flatten() {
        replica.node.shutdown().await;
    }
}

/// A replica lost for good is rebuilt on another node: the leader adds the
/// new node, which catches up from a snapshot, and swaps it for the lost one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_replica_is_rebuilt_on_a_new_node() {
    init_tracing();
    let options = || NodeOptions {
        snapshot_every_entries: 20,
        log_entries_kept_after_snapshot: 5,
        ..NodeOptions::default()
    };
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let Trio {
        mut replicas,
        by_id: mut live,
        leader,
        ..
    } = start_trio(&dirs[..3], 1, options).await;
    write_many(&live, leader, "a", 60).await;

    // A follower is gone for good.
    let lost_at = (0..3)
        .find(|i| replicas[*i].id != leader)
        .expect("a follower");
    let lost = replicas.remove(lost_at);
    lost.node.shutdown().await;
    live.remove(&lost.id);

    // Node 4 joins and replaces it.
    let new = open_with(dirs[3].path(), 4, "127.0.0.1:0", options());
    let new_group = new
        .node
        .join_group(GROUP, new.kv.clone())
        .await
        .expect("node 4 hosts the group");
    let new_addr = new.node.raft_addr().expect("listening").to_string();
    live[&leader]
        .replace_voter(lost.id, 4, new_addr)
        .await
        .expect("the replica is replaced");
    let mut voters = live[&leader].voters();
    voters.sort_unstable();
    let mut expected: Vec<NodeId> = replicas.iter().map(|r| r.id).chain([4]).collect();
    expected.sort_unstable();
    assert_eq!(voters, expected);

    live.insert(4, new_group);
    write_many(&live, leader, "b", 20).await;
    for key in ["a0", "a59", "b19"] {
        let i = key.trim_start_matches(['a', 'b']);
        wait_for(&new, key, &format!("v{i}")).await;
    }
    for i in 0..60 {
        assert_eq!(value(&new, &format!("a{i}")), Some(format!("v{i}")));
    }
}

/// A node asked to stop hands its leadership to a caught-up voter before it
/// goes: when `shutdown` returns, another replica already leads and takes
/// writes, with no election timeout to wait out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_leader_hands_off_its_leadership() {
    init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let Trio {
        replicas,
        mut by_id,
        leader,
        ..
    } = start_trio(&dirs, 1, NodeOptions::default).await;
    write_many(&by_id, leader, "a", 20).await;

    let stopping = replicas.iter().find(|r| r.id == leader).expect("leader");
    let started = Instant::now();
    stopping.node.shutdown().await;
    by_id.remove(&leader);
    let successor = by_id
        .iter()
        .find(|(id, group)| group.current_leader() == Some(**id))
        .map(|(id, _)| *id);
    let Some(successor) = successor else {
        panic!("no replica leads right after the leader's shutdown");
    };
    write_many(&by_id, successor, "b", 20).await;
    eprintln!(
        "hand-off (shutdown of the leader's node -> 20 writes acknowledged): {:?}",
        started.elapsed()
    );
    for replica in replicas.iter().filter(|r| r.id != leader) {
        wait_for(replica, "b19", "v19").await;
    }
}

/// A network partition cuts the leader off: the majority elects another
/// leader and goes on; nothing the cut-off leader accepts meanwhile is
/// acknowledged or survives; when the partition heals it follows the new
/// leader and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_cannot_commit_and_rejoins_after_healing() {
    init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // Fail points are process-wide: ids no other test uses keep the
    // isolation from reaching the nodes of tests running alongside.
    let Trio {
        replicas,
        by_id,
        leader,
        ..
    } = start_trio(&dirs, 101, NodeOptions::default).await;
    write_many(&by_id, leader, "a", 10).await;

    let isolated = fail_points::arm("raft-isolate", &format!("return({leader})")).unwrap();
    // The cut-off leader takes a write it can never commit.
    let stranded = {
        let group = by_id[&leader].clone();
        tokio::spawn(async move {
            tokio::time::timeout(
                Duration::from_secs(3),
                group.propose(bytes::Bytes::from_static(b"stranded=yes")),
            )
            .await
        })
    };
    let mut majority = by_id.clone();
    majority.remove(&leader);
    let majority_ids: Vec<NodeId> = majority.keys().copied().collect();
    let majority_groups: Vec<&KvGroup> = majority.values().collect();
    let new_leader = agreed_leader(&majority_groups, &majority_ids).await;
    write_many(&majority, new_leader, "b", 20).await;
    let stranded = stranded.await.expect("task");
    assert!(
        !matches!(stranded, Ok(Ok(_))),
        "a write on the cut-off leader was acknowledged"
    );

    drop(isolated);
    for replica in &replicas {
        wait_for(replica, "b19", "v19").await;
        wait_for(replica, "a9", "v9").await;
    }
    let old = replicas
        .iter()
        .find(|r| r.id == leader)
        .expect("old leader");
    let deadline = Instant::now() + Duration::from_secs(10);
    while by_id[&leader].current_leader() == Some(leader) {
        assert!(
            Instant::now() < deadline,
            "the old leader still thinks it leads"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    write_many(&by_id, new_leader, "c", 5).await;
    wait_for(old, "c4", "v4").await;
    for replica in &replicas {
        assert_eq!(value(replica, "stranded"), None, "node {}", replica.id);
    }
}
