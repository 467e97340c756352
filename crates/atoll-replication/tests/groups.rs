//! A group commits, applies, survives restarts and is destroyed, on the real engine.

use std::sync::Arc;

use atoll_replication::{ApplyContext, ApplyOutput, GroupStateMachine, NodeOptions, RaftNode};
use atoll_storage::{Keyspace, Storage, StorageError, StorageOptions};

/// A key-value state machine: a command "key=value" sets key and returns the old value.
struct Kv {
    keyspace: Keyspace,
}

impl GroupStateMachine for Kv {
    fn apply(
        &self,
        ctx: &mut ApplyContext,
        _log_index: u64,
        command: &[u8],
    ) -> Result<ApplyOutput, StorageError> {
        let text = String::from_utf8_lossy(command);
        let (key, value) = text.split_once('=').unwrap_or((&text, ""));
        let old = ctx.get(&self.keyspace, key.as_bytes())?.map(|v| v.to_vec());
        ctx.put(
            &self.keyspace,
            key.as_bytes().to_vec(),
            value.as_bytes().to_vec(),
        );
        Ok(ApplyOutput::new(old))
    }
}

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
        assert_eq!(*first.downcast::<Option<Vec<u8>>>().unwrap(), None);
        let second = group
            .propose(bytes::Bytes::from_static(b"a=2"))
            .await
            .unwrap();
        assert_eq!(
            *second.downcast::<Option<Vec<u8>>>().unwrap(),
            Some(b"1".to_vec())
        );

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
    assert_eq!(
        *after.downcast::<Option<Vec<u8>>>().unwrap(),
        Some(b"2".to_vec())
    );
    node.destroy_group(7, kv.clone()).await.unwrap();
    assert!(node.group(7).is_none());
}
