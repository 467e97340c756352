//! Table lifecycle and routing on the real engine, across restarts.

use std::sync::Arc;

use atoll_cluster::{Cluster, ClusterError, ClusterOptions, TableUpdate};
use atoll_model::table::{
    BillingMode, KeyAttribute, KeySchema, ScalarType, TableClass, TableDefinition, TableStatus,
    Throughput,
};
use atoll_model::{
    AttributeValue, Item, encode_item, encode_row_key, item_size_bytes, partition_token,
};
use atoll_partition::{PartitionCommand, WriteOp};
use atoll_replication::NodeOptions;
use atoll_storage::{Storage, StorageOptions};

fn definition(name: &str) -> TableDefinition {
    let pk = KeyAttribute {
        name: "pk".into(),
        scalar_type: ScalarType::S,
    };
    TableDefinition {
        name: name.into(),
        table_id: String::new(),
        region: "us-east-1".into(),
        key_schema: KeySchema {
            partition_key: pk.clone(),
            sort_key: None,
        },
        attribute_definitions: vec![pk],
        billing_mode: BillingMode::Provisioned,
        throughput: Throughput {
            read_capacity_units: 5,
            write_capacity_units: 5,
            ..Throughput::default()
        },
        last_on_demand_switch_ms: None,
        table_class: TableClass::Standard,
        deletion_protection: false,
        stream: None,
        tags: Vec::new(),
        created_ms: 0,
        status: TableStatus::Creating,
        keyspace: String::new(),
        partitions: Vec::new(),
    }
}

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
    let row_key = encode_row_key(&pk, None).unwrap();
    let token = partition_token(&pk).unwrap();
    let mut item = Item::new();
    item.insert("pk".into(), pk.clone());
    {
        let cluster = open(dir.path()).await;
        let created = cluster.create_table(definition("orders")).await.unwrap();
        assert_eq!(created.partitions.len(), 1);
        assert!(matches!(
            cluster.create_table(definition("orders")).await,
            Err(ClusterError::TableExists(_))
        ));
        let table = cluster.active_table("orders").unwrap();
        cluster
            .write(
                &table,
                token,
                &PartitionCommand::Batch {
                    ops: vec![WriteOp::Put {
                        row_key: row_key.clone(),
                        record: encode_item(&item),
                        size_bytes: item_size_bytes(&item) as u32,
                    }],
                },
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
    let table = cluster.active_table("orders").unwrap();
    assert_eq!(
        cluster
            .read_item(&table, token, &row_key, true)
            .await
            .unwrap(),
        Some(item)
    );
    assert_eq!(cluster.table_stats(&table).item_count, 1);
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
    assert!(cluster.table("orders").is_none());
    assert!(!cluster.storage().keyspace_exists(&keyspace));
    cluster.shutdown().await;
    drop(cluster);
    let cluster = open(dir.path()).await;
    assert!(cluster.table_names().is_empty());
}
