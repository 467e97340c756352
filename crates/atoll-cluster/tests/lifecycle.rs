//! Table lifecycle and routing on the real engine, across restarts.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use atoll_cluster::data::{BatchWrite, ItemKey};
use atoll_cluster::{Cluster, ClusterError, ClusterOptions, TableUpdate};
use atoll_model::{AttributeValue, Item, item_size_bytes, partition_token};
use atoll_replication::{NodeOptions, fail_points};
use atoll_storage::{Storage, StorageOptions};
use common::definition;

async fn open(dir: &std::path::Path) -> Arc<Cluster> {
    let storage = Storage::open(dir, StorageOptions::default()).expect("storage");
    Cluster::open(
        storage,
        ClusterOptions {
            node: NodeOptions::default(),
            ..ClusterOptions::default()
        },
    )
    .await
    .expect("cluster")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_items_survive_restarts_and_deletion_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let pk = AttributeValue::S("k".into());
    let mut item = Item::new();
    item.insert("pk".into(), pk.clone());
    let row_key = ItemKey::of(&definition("orders").key_schema, &item).unwrap();
    {
        let cluster = open(dir.path()).await;
        let created = cluster.create_table(definition("orders")).await.unwrap();
        assert_eq!(created.partitions.len(), 1);
        assert!(matches!(
            cluster.create_table(definition("orders")).await,
            Err(ClusterError::TableExists(_))
        ));
        let table = cluster.catalog().active_table("orders").unwrap();
        cluster
            .data_plane()
            .write_batch(
                &table,
                vec![BatchWrite::put(
                    row_key.clone(),
                    &item,
                    item_size_bytes(&item) as u32,
                )],
            )
            .await
            .unwrap();
        let updated = cluster
            .update_table(
                "orders",
                TableUpdate {
                    deletion_protection: Some(true),
                    ..TableUpdate::default()
                },
            )
            .await
            .unwrap();
        assert!(updated.deletion_protection);
        cluster.shutdown().await;
    }
    let cluster = open(dir.path()).await;
    let table = cluster.catalog().active_table("orders").unwrap();
    assert_eq!(
        cluster
            .data_plane()
            .get_item(&table, &row_key, true)
            .await
            .unwrap(),
        Some(item)
    );
    assert_eq!(cluster.table_stats(&table).await.item_count, 1);
    assert!(matches!(
        cluster.delete_table("orders").await,
        Err(ClusterError::DeletionProtected(_))
    ));
    cluster
        .update_table(
            "orders",
            TableUpdate {
                deletion_protection: Some(false),
                ..TableUpdate::default()
            },
        )
        .await
        .unwrap();
    let keyspace = table.keyspace.clone();
    cluster.delete_table("orders").await.unwrap();
    assert!(cluster.catalog().table("orders").is_none());
    assert!(!cluster.storage().keyspace_exists(&keyspace));
    cluster.shutdown().await;
    drop(cluster);
    let cluster = open(dir.path()).await;
    assert!(cluster.catalog().table_names().is_empty());
}

/// Writes items `k0..k{count}` to `table` one batch each, returning (token, key) per item.
async fn write_items(
    cluster: &Arc<Cluster>,
    name: &str,
    count: usize,
) -> Vec<(u64, ItemKey, Item)> {
    let table = cluster.catalog().active_table(name).unwrap();
    let mut written = Vec::new();
    for i in 0..count {
        let pk = AttributeValue::S(format!("k{i}"));
        let mut item = Item::new();
        item.insert("pk".into(), pk.clone());
        let row_key = ItemKey::of(&table.key_schema, &item).unwrap();
        let token = partition_token(&pk).unwrap();
        cluster
            .data_plane()
            .write_batch(
                &table,
                vec![BatchWrite::put(
                    row_key.clone(),
                    &item,
                    item_size_bytes(&item) as u32,
                )],
            )
            .await
            .unwrap();
        written.push((token, row_key, item));
    }
    written.sort_by_key(|(token, ..)| *token);
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_stopped_after_its_fence_is_finished_by_the_next_check_or_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = || ClusterOptions {
        node: NodeOptions::default(),
        split_check_interval: std::time::Duration::from_millis(30),
        split_load_ops_per_second: 0.0,
        ..ClusterOptions::default()
    };
    let open_with = |dir: std::path::PathBuf| async move {
        let storage = Storage::open(&dir, StorageOptions::default()).expect("storage");
        Cluster::open(storage, options()).await.expect("cluster")
    };
    let cluster = open_with(dir.path().to_path_buf()).await;
    cluster.create_table(definition("halves")).await.unwrap();
    let items = write_items(&cluster, "halves", 60).await;
    let group = cluster.catalog().table("halves").unwrap().partitions[0].group_id;

    // The split stops after the partition's log fenced the upper half off,
    // before the catalog heard of it.
    let at_token = items[30].0;
    let fence_only = fail_points::arm("split-after-fence", "return").unwrap();
    assert!(
        cluster
            .split_partition("halves", group, at_token)
            .await
            .is_err()
    );
    drop(fence_only);
    // A write into the fenced half still succeeds: the periodic check
    // records the split and starts the new partition while the write retries.
    let table = cluster.catalog().active_table("halves").unwrap();
    let (_, row_key, item) = items[45].clone();
    cluster
        .data_plane()
        .write_batch(
            &table,
            vec![BatchWrite::put(
                row_key,
                &item,
                item_size_bytes(&item) as u32,
            )],
        )
        .await
        .unwrap();
    let table = cluster.catalog().active_table("halves").unwrap();
    assert_eq!(table.partitions.len(), 2);
    assert_eq!(table.partitions[1].start_token, at_token);
    assert_eq!(cluster.table_stats(&table).await.item_count, 60);

    // Again, then a restart instead of the periodic check.
    let upper_group = table.partitions[1].group_id;
    let at_token = items[50].0;
    let fence_only = fail_points::arm("split-after-fence", "return").unwrap();
    assert!(
        cluster
            .split_partition("halves", upper_group, at_token)
            .await
            .is_err()
    );
    drop(fence_only);
    cluster.shutdown().await;
    drop(cluster);
    let cluster = open_with(dir.path().to_path_buf()).await;
    let table = cluster.catalog().active_table("halves").unwrap();
    assert_eq!(table.partitions.len(), 3);
    assert_eq!(table.partitions[2].start_token, at_token);
    assert_eq!(cluster.table_stats(&table).await.item_count, 60);
    for (_, row_key, item) in &items {
        assert_eq!(
            cluster
                .data_plane()
                .get_item(&table, row_key, true)
                .await
                .unwrap()
                .as_ref(),
            Some(item)
        );
    }
    cluster.shutdown().await;
}

/// The first log index of `group` still stored on this node, if any.
fn first_log_index(cluster: &Cluster, group: u64) -> Option<u64> {
    let log = cluster
        .storage()
        .log_keyspace("raft_log")
        .expect("log keyspace");
    let (key, _) = log.prefix(&group.to_be_bytes()).next()?.expect("log entry");
    let index: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(index))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_off_partition_purges_the_start_of_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::open(
        Storage::open(dir.path(), StorageOptions::default()).expect("storage"),
        ClusterOptions {
            node: NodeOptions::default(),
            split_load_ops_per_second: 0.0,
            ..ClusterOptions::default()
        },
    )
    .await
    .expect("cluster");
    cluster.create_table(definition("purged")).await.unwrap();
    let items = write_items(&cluster, "purged", 40).await;
    let parent = cluster.catalog().table("purged").unwrap().partitions[0].group_id;
    // A partition that never split keeps its log from the start.
    assert_eq!(first_log_index(&cluster, parent), Some(0));
    cluster
        .split_partition("purged", parent, items[20].0)
        .await
        .unwrap();
    let child = cluster.catalog().table("purged").unwrap().partitions[1].group_id;
    // The split-off partition's state came from the handoff, not its log:
    // its log's start goes, so no replica could ever be sent it in place
    // of a snapshot.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let led = |cluster: &Cluster| {
        cluster.report().tables[0]
            .partitions
            .iter()
            .any(|p| p.group_id == child && p.leader.is_some())
    };
    while !led(&cluster) {
        assert!(
            std::time::Instant::now() < deadline,
            "the split-off partition has no leader"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    while first_log_index(&cluster, child) == Some(0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the split-off partition still holds its log from index {:?}",
            first_log_index(&cluster, child)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cluster.shutdown().await;
}
