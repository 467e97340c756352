//! A group commits, applies, survives restarts and is destroyed, on the real engine.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use atoll_replication::{NodeOptions, RaftNode};
use atoll_storage::{Storage, StorageOptions};
use common::Kv;

fn open(dir: &std::path::Path) -> (Arc<RaftNode>, Storage, Arc<Kv>) {
    let storage = Storage::open(dir, StorageOptions::default()).expect("storage");
    let node = RaftNode::open(
        storage.clone(),
        NodeOptions {
            snapshot_every_entries: 50,
            ..NodeOptions::default()
        },
    )
    .expect("node");
    let kv = Arc::new(Kv {
        keyspace: storage.keyspace("kv").expect("keyspace"),
    });
    (node, storage, kv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_apply_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (node, _storage, kv) = open(dir.path());
        let group = node.start_group(7, kv.clone()).await.expect("start");
        let first = group
            .propose(bytes::Bytes::from_static(b"a=1"))
            .await
            .unwrap();
        assert_eq!(first, None);
        let second = group
            .propose(bytes::Bytes::from_static(b"a=2"))
            .await
            .unwrap();
        assert_eq!(second, Some(b"1".to_vec()));

        // Concurrent proposals, enough to pass several snapshots and purges.
        let mut tasks = Vec::new();
        for i in 0..200 {
            let group = group.clone();
            tasks.push(tokio::spawn(async move {
                group
                    .propose(bytes::Bytes::from(format!("k{i}=v{i}")))
                    .await
                    .expect("propose");
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        group.read_barrier().await.unwrap();
        assert_eq!(
            kv.keyspace.get(b"k199").unwrap().as_deref(),
            Some(&b"v199"[..])
        );
        node.shutdown().await;
    }
    let (node, _storage, kv) = open(dir.path());
    let group = node.start_group(7, kv.clone()).await.expect("restart");
    for i in 0..200 {
        let key = format!("k{i}");
        assert_eq!(
            kv.keyspace.get(key.as_bytes()).unwrap().map(|v| v.to_vec()),
            Some(format!("v{i}").into_bytes())
        );
    }
    let after = group
        .propose(bytes::Bytes::from_static(b"a=3"))
        .await
        .unwrap();
    assert_eq!(after, Some(b"2".to_vec()));
    node.destroy_group(7).await.unwrap();
    assert!(node.group::<atoll_replication::Untyped>(7).is_none());
}
