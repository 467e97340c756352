//! Tests of the catalog state machine.
use atoll_model::table::{
    BillingMode, KeyAttribute, KeySchema, ScalarType, TableClass, Throughput,
};
use atoll_storage::{Durability, Storage};

use super::*;

fn catalog(storage: &Storage) -> CatalogStateMachine {
    CatalogStateMachine::open(storage.keyspace("catalog").unwrap()).unwrap()
}

/// A CREATING table `name` (id `id-<name>`, keyspace `t_<name>`).
pub(super) fn definition(name: &str) -> TableDefinition {
    let key = KeyAttribute {
        name: "pk".into(),
        scalar_type: ScalarType::S,
    };
    TableDefinition {
        name: name.into(),
        table_id: format!("id-{name}"),
        region: "us-east-1".into(),
        key_schema: KeySchema {
            partition_key: key.clone(),
            sort_key: None,
        },
        attribute_definitions: vec![key],
        billing_mode: BillingMode::PayPerRequest,
        throughput: Throughput::default(),
        last_on_demand_switch_ms: None,
        table_class: TableClass::Standard,
        deletion_protection: false,
        stream: None,
        tags: Vec::new(),
        created_ms: 0,
        status: TableStatus::Creating,
        keyspace: format!("t_{name}"),
        partitions: Vec::new(),
        local_indexes: Vec::new(),
        global_indexes: Vec::new(),
        index_of: None,
        global_index_epoch: 0,
        stream_epoch: 0,
        stream_closed_ms: None,
        time_to_live: None,
        past_streams: Vec::new(),
    }
}

fn run(storage: &Storage, work: impl FnOnce(&mut ApplyContext)) {
    let mut ctx = ApplyContext::new();
    work(&mut ctx);
    storage
        .commit(ctx.into_batch(), Durability::Buffered)
        .unwrap();
}

#[test]
fn an_export_replaces_another_catalog() {
    let create = |name: &str| CatalogCommand::CreateTable {
        definition: Box::new(definition(name)),
    };
    let (leader_storage, follower_storage) = (Storage::in_memory(), Storage::in_memory());
    let (leader, follower) = (catalog(&leader_storage), catalog(&follower_storage));
    run(&leader_storage, |ctx| {
        for name in ["a", "b"] {
            leader.execute(ctx, create(name)).unwrap().unwrap();
        }
    });
    run(&follower_storage, |ctx| {
        follower.execute(ctx, create("stale")).unwrap().unwrap();
    });

    let view = leader_storage.read_view();
    atoll_replication::transfer_state(&leader, &view, &follower, &follower_storage).unwrap();
    let names = |c: &CatalogStateMachine| -> Vec<String> {
        c.tables().iter().map(|t| t.name.clone()).collect()
    };
    assert_eq!(names(&follower), vec!["a", "b"]);
    // The next table gets a group id the leader has not used.
    let reopened = catalog(&follower_storage);
    assert_eq!(names(&reopened), vec!["a", "b"]);
    run(&follower_storage, |ctx| {
        let created = reopened
            .execute(ctx, create("c"))
            .unwrap()
            .unwrap()
            .unwrap();
        let used: Vec<u64> = leader
            .tables()
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.group_id))
            .collect();
        assert!(!used.contains(&created.partitions[0].group_id));
    });
}

#[test]
fn placements_survive_a_reopen() {
    let storage = Storage::in_memory();
    let catalog_before = catalog(&storage);
    run(&storage, |ctx| {
        for node_id in [1, 2, 3] {
            let node = NodeRecord {
                node_id,
                cluster_addr: format!("n{node_id}:1"),
                api_addr: format!("n{node_id}:2"),
                zone: None,
            };
            catalog_before
                .execute(ctx, CatalogCommand::RegisterNode { node })
                .unwrap()
                .unwrap();
        }
        catalog_before
            .execute(
                ctx,
                CatalogCommand::CreateTableBy {
                    definition: Box::new(definition("t")),
                    proposer: 2,
                },
            )
            .unwrap()
            .unwrap();
    });
    let parent = catalog_before.tables()[0].partitions[0].group_id;
    run(&storage, |ctx| {
        catalog_before
            .execute(
                ctx,
                CatalogCommand::SetStatus {
                    name: "t".into(),
                    table_id: "id-t".into(),
                    status: TableStatus::Active,
                },
            )
            .unwrap()
            .unwrap();
    });
    run(&storage, |ctx| {
        catalog_before
            .execute(
                ctx,
                CatalogCommand::SplitPartitionBy {
                    name: "t".into(),
                    table_id: "id-t".into(),
                    group_id: parent,
                    at_token: 1 << 63,
                    founder: 3,
                },
            )
            .unwrap()
            .unwrap();
    });
    let child = catalog_before.tables()[0].partitions[1].group_id;
    let reopened = catalog(&storage);
    assert_eq!(reopened.origin(parent).founder, 2, "created by node 2");
    assert_eq!(
        reopened.origin(child),
        GroupOrigin {
            founder: 3,
            split_from: Some(parent)
        }
    );
    assert_eq!(reopened.replicas(child), vec![1, 2, 3]);
    assert_eq!(reopened.nodes().len(), 3);
}

#[test]
fn a_node_is_forgotten_only_once_no_partition_names_it_and_never_returns() {
    let storage = Storage::in_memory();
    let catalog = catalog(&storage);
    let node = |node_id: u64| NodeRecord {
        node_id,
        cluster_addr: format!("n{node_id}:1"),
        api_addr: format!("n{node_id}:2"),
        zone: None,
    };
    run(&storage, |ctx| {
        for id in [1, 2, 3, 4] {
            let registered = catalog.execute(ctx, CatalogCommand::RegisterNode { node: node(id) });
            assert!(matches!(registered, Ok(Ok(None))));
        }
        let leaving = catalog.execute(ctx, CatalogCommand::SetNodeLeaving { node_id: 2 });
        assert!(matches!(leaving, Ok(Ok(None))));
        let created = catalog.execute(
            ctx,
            CatalogCommand::CreateTableBy {
                definition: Box::new(definition("t")),
                proposer: 1,
            },
        );
        assert!(matches!(created, Ok(Ok(Some(_)))));
    });
    assert!(catalog.is_leaving(2));
    let group = catalog.tables()[0].partitions[0].group_id;
    // New partitions leave the leaving node out.
    let mut placed = catalog.replicas(group);
    placed.sort_unstable();
    assert_eq!(placed, vec![1, 3, 4]);
    // Node 3 still holds a replica: it cannot be forgotten.
    run(&storage, |ctx| {
        let refused = catalog.execute(ctx, CatalogCommand::RemoveNode { node_id: 3 });
        assert!(matches!(refused, Ok(Err(Rejection::InUse))));
        let removed = catalog.execute(ctx, CatalogCommand::RemoveNode { node_id: 2 });
        assert!(matches!(removed, Ok(Ok(None))));
    });
    let reopened = super::CatalogStateMachine::open(storage.keyspace("catalog").unwrap()).unwrap();
    for c in [&catalog, &reopened] {
        let ids: Vec<u64> = c.nodes().iter().map(|n| n.node_id).collect();
        assert_eq!(ids, vec![1, 3, 4]);
        assert!(c.is_removed(2) && !c.is_leaving(2));
    }
    run(&storage, |ctx| {
        let again = reopened.execute(ctx, CatalogCommand::RegisterNode { node: node(2) });
        assert!(matches!(again, Ok(Err(Rejection::NodeRemoved))));
    });
    assert_eq!(reopened.nodes().len(), 3);
}

#[test]
fn a_node_id_is_admitted_as_one_incarnation_only() {
    let storage = Storage::in_memory();
    let catalog = catalog(&storage);
    let admit = |c: &CatalogStateMachine, incarnation: u64| {
        let mut outcome = None;
        run(&storage, |ctx| {
            outcome = Some(c.execute(
                ctx,
                CatalogCommand::AdmitNode {
                    node_id: 5,
                    incarnation,
                },
            ));
        });
        outcome
    };
    assert!(matches!(admit(&catalog, 11), Some(Ok(Ok(None)))));
    // A retried join of the same incarnation is admitted again.
    assert!(matches!(admit(&catalog, 11), Some(Ok(Ok(None)))));
    // The same id after losing its data (a new incarnation) is not, even
    // after the catalog reopens.
    let reopened = super::CatalogStateMachine::open(storage.keyspace("catalog").unwrap()).unwrap();
    assert_eq!(reopened.admitted_incarnation(5), Some(11));
    assert!(matches!(
        admit(&reopened, 12),
        Some(Ok(Err(Rejection::Exists)))
    ));
    assert_eq!(reopened.admitted_incarnation(5), Some(11));
}

#[test]
fn a_stream_an_earlier_version_stored_counts_as_the_first_stream_change() {
    let mut old = definition("streamed");
    old.stream = Some(atoll_model::table::StreamSettings {
        enabled: true,
        view_type: Some("KEYS_ONLY".into()),
        label: Some("2026-01-01T00:00:00.000".into()),
    });
    old.stream_epoch = 0;
    let bytes = codec::encode(&old).unwrap();
    assert_eq!(super::decode_table(&bytes).unwrap().stream_epoch, 1);
    // A table without a stream, or one whose changes were counted, stays.
    let plain = codec::encode(&definition("plain")).unwrap();
    assert_eq!(super::decode_table(&plain).unwrap().stream_epoch, 0);
    old.stream_epoch = 3;
    let counted = codec::encode(&old).unwrap();
    assert_eq!(super::decode_table(&counted).unwrap().stream_epoch, 3);
}
