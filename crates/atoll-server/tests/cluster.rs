//! A cluster as its users see it: nodes that join raise the replication
//! factor and then take a share of the replicas, a decommissioned node
//! leaves for good, a dead catalog voter is replaced by a node that joined, a dead
//! node's replicas are rebuilt on another node, a rolling
//! restart under load fails no request, and a table that splits keeps every
//! item on every node.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Each test holds `exclusive()` (a std mutex) for its whole run, across
// awaits: every test has its own runtime, so this only serialises the tests.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType, TableStatus};
use common::cluster::*;
use common::*;

type Item = HashMap<String, AttributeValue>;

/// A table created through one node is visible on the others within this.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);
/// An eventually consistent read catches up within this.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// xorshift64*: enough randomness for picking keys and nodes.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        Rng(RandomState::new().hash_one(0u8) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

fn error_text<E: std::error::Error + 'static>(e: E) -> String {
    DisplayErrorContext(&e).to_string()
}

/// Polls DescribeTable through `client` until the table is ACTIVE; a
/// ResourceNotFound while the new table reaches this node counts as not yet.
async fn wait_visible(client: &Client, table: &str) -> Result<(), String> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let last = match client.describe_table().table_name(table).send().await {
            Ok(out) if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) => {
                return Ok(());
            }
            Ok(out) => format!("status {:?}", out.table().and_then(|t| t.table_status())),
            Err(e) => error_text(e),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "table {table} not ACTIVE within {SETTLE_TIMEOUT:?}: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put(client: &Client, table: &str, item: &Item) -> Result<(), String> {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item.clone()))
        .send()
        .await
        .map(drop)
        .map_err(error_text)
}

async fn get(
    client: &Client,
    table: &str,
    pk: &str,
    consistent: bool,
) -> Result<Option<Item>, String> {
    client
        .get_item()
        .table_name(table)
        .key("pk", s(pk))
        .consistent_read(consistent)
        .send()
        .await
        .map(|out| out.item().cloned())
        .map_err(error_text)
}

/// Every `pk` of `table` through `client`: a paged Scan of `Limit 50`.
/// Fails on a duplicate key (a page boundary read twice).
async fn scan_keys(
    client: &Client,
    table: &str,
    consistent: bool,
) -> Result<BTreeSet<String>, String> {
    let mut keys = BTreeSet::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .limit(50)
            .consistent_read(consistent)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(error_text)?;
        for item in out.items() {
            let Some(AttributeValue::S(pk)) = item.get("pk") else {
                return Err(format!("item without a string pk: {item:?}"));
            };
            if !keys.insert(pk.clone()) {
                return Err(format!("Scan returned {pk} twice"));
            }
        }
        match out.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => return Ok(keys),
        }
    }
}

/// Retries `check` until it passes or `timeout` runs out; returns the last
/// failure then.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Checks that `client` reads exactly `expected` (pk → item) from `table`:
/// a GetItem of every item and a paged Scan.
async fn reads_exactly(
    client: &Client,
    table: &str,
    expected: &BTreeMap<String, Item>,
    consistent: bool,
) -> Result<(), String> {
    for (pk, item) in expected {
        let got = get(client, table, pk, consistent).await?;
        if got.as_ref() != Some(item) {
            return Err(format!("GetItem {table}/{pk}: {got:?}, expected {item:?}"));
        }
    }
    let keys = scan_keys(client, table, consistent).await?;
    if keys.len() != expected.len() || !keys.iter().eq(expected.keys()) {
        let missing: Vec<_> = expected.keys().filter(|k| !keys.contains(*k)).collect();
        let extra: Vec<_> = keys.iter().filter(|k| !expected.contains_key(*k)).collect();
        return Err(format!(
            "Scan of {table} found {} items, expected {}; missing {missing:?}, unexpected {extra:?}",
            keys.len(),
            expected.len()
        ));
    }
    Ok(())
}

/// Waits until every partition of `table` has exactly the replicas `ids`
/// in node `node`'s admin view.
async fn replicas_become(
    cluster: &ServeCluster,
    node: u8,
    table: &str,
    ids: &[u64],
    timeout: Duration,
) -> Result<(), String> {
    let endpoint = cluster.endpoint(node);
    eventually(timeout, || async {
        let report = admin(&endpoint).await;
        let parts = partitions(&report, table);
        let all_there = !parts.is_empty()
            && parts.iter().all(|p| {
                let mut held = replicas(p);
                held.sort_unstable();
                held == ids
            });
        if all_there {
            Ok(())
        } else {
            Err(format!(
                "{table}'s replicas are not {ids:?} in node {node}'s view: {report:#}"
            ))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_that_join_raise_the_replication_factor() {
    const TABLE: &str = "joined";
    const LONE_TABLES: [&str; 3] = ["lone_a", "lone_b", "lone_c"];
    const ITEMS: usize = 40;
    /// Leaderships move one per node every 5 s.
    const BALANCE_TIMEOUT: Duration = Duration::from_secs(40);
    const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
    /// A snapshot to the new replica and a catalog change, per partition.
    const GROWTH_TIMEOUT: Duration = Duration::from_secs(30);
    /// Three replicas and a catalog seat move, then the node is forgotten.
    const DECOMMISSION_TIMEOUT: Duration = Duration::from_secs(40);
    let _exclusive = exclusive();
    let began = Instant::now();
    let mut cluster = ServeCluster::start_alone(4, &[]);
    let client_of = |cluster: &ServeCluster, id: u8| retrying_client(&cluster.endpoint(id));
    let fail = |cluster: &ServeCluster, what: String| -> ! { panic!("{what}\n{}", cluster.logs()) };
    create_table(&client_of(&cluster, 1), TABLE, ScalarAttributeType::S, None).await;
    // More tables, all led by the lone node until others join.
    for table in LONE_TABLES {
        create_table(&client_of(&cluster, 1), table, ScalarAttributeType::S, None).await;
    }
    let mut expected = BTreeMap::new();
    for i in 0..ITEMS {
        let item = item([("pk", s(&format!("item-{i:03}"))), ("n", n(&i.to_string()))]);
        if let Err(e) = put(&client_of(&cluster, 1), TABLE, &item).await {
            fail(&cluster, format!("PutItem on the lone node: {e}"));
        }
        expected.insert(format!("item-{i:03}"), item);
    }
    replicas_become(&cluster, 1, TABLE, &[1], GROWTH_TIMEOUT)
        .await
        .unwrap_or_else(|e| fail(&cluster, e));

    // Each node that joins gets a copy of every partition, up to three.
    tokio::task::block_in_place(|| cluster.join(2, JOIN_TIMEOUT));
    replicas_become(&cluster, 2, TABLE, &[1, 2], GROWTH_TIMEOUT)
        .await
        .unwrap_or_else(|e| fail(&cluster, e));
    tokio::task::block_in_place(|| cluster.join(3, JOIN_TIMEOUT));
    replicas_become(&cluster, 3, TABLE, &[1, 2, 3], GROWTH_TIMEOUT)
        .await
        .unwrap_or_else(|e| fail(&cluster, e));
    for table in LONE_TABLES {
        replicas_become(&cluster, 3, table, &[1, 2, 3], GROWTH_TIMEOUT)
            .await
            .unwrap_or_else(|e| fail(&cluster, e));
    }
    eprintln!("3 replicas after {:?}", began.elapsed());

    // The four partitions' leaderships, all on node 1 so far, spread out:
    // two on node 1 at most, one at least on each of the others.
    let endpoint = cluster.endpoint(1);
    eventually(BALANCE_TIMEOUT, || async {
        let report = admin(&endpoint).await;
        let mut leading = BTreeMap::new();
        for table in LONE_TABLES.iter().chain([&TABLE]) {
            for partition in partitions(&report, table) {
                if let Some(leader) = partition["leader"].as_u64() {
                    *leading.entry(leader).or_insert(0) += 1;
                }
            }
        }
        let spread = leading.get(&1).copied().unwrap_or(0) <= 2
            && leading.contains_key(&2)
            && leading.contains_key(&3);
        if spread {
            Ok(())
        } else {
            Err(format!("leaderships by node: {leading:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| fail(&cluster, format!("leaderships not balanced: {e}")));
    eprintln!("leaderships balanced after {:?}", began.elapsed());
    let report = admin(&cluster.endpoint(3)).await;
    let nodes = report["nodes"].as_array().map_or(0, Vec::len);
    assert_eq!(nodes, 3, "node 3's admin view lists every node: {report:#}");

    // A fourth node joins a cluster whose partitions all have three copies:
    // replicas move onto it until every node holds three of the twelve,
    // and every item is still there, read through the new node.
    tokio::task::block_in_place(|| cluster.join(4, JOIN_TIMEOUT));
    let endpoint = cluster.endpoint(4);
    eventually(BALANCE_TIMEOUT, || async {
        let report = admin(&endpoint).await;
        let held: BTreeMap<u64, u64> = report["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| Some((n["id"].as_u64()?, n["replica_count"].as_u64()?)))
            .collect();
        if held.len() == 4 && held.values().all(|count| *count == 3) {
            Ok(())
        } else {
            Err(format!("replicas by node: {held:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| fail(&cluster, format!("replicas not balanced: {e}")));
    eprintln!("replicas balanced onto node 4 after {:?}", began.elapsed());
    reads_exactly(&client_of(&cluster, 4), TABLE, &expected, true)
        .await
        .unwrap_or_else(|e| fail(&cluster, format!("after the moves: {e}")));
    // Every node's admin view counts the table's items, the one node that
    // holds no replica of its partition too (it asks one that does).
    for id in 1..=4 {
        let report = admin(&cluster.endpoint(id)).await;
        let counted: u64 = partitions(&report, TABLE)
            .iter()
            .filter_map(|p| p["item_count"].as_u64())
            .sum();
        assert_eq!(
            counted,
            expected.len() as u64,
            "{TABLE}'s items in node {id}'s admin view: {report:#}"
        );
    }

    // A table created through one node is there at once through the
    // others: a lookup that misses first catches up with the catalog.
    let (through_1, through_2, through_3) = (
        sdk_client(&cluster.endpoint(1)),
        sdk_client(&cluster.endpoint(2)),
        sdk_client(&cluster.endpoint(3)),
    );
    through_1
        .create_table()
        .table_name("instant")
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| fail(&cluster, format!("CreateTable: {}", error_text(e))));
    let listed = through_2
        .list_tables()
        .send()
        .await
        .unwrap_or_else(|e| fail(&cluster, format!("ListTables: {}", error_text(e))));
    assert!(
        listed.table_names().iter().any(|t| t == "instant"),
        "ListTables through node 2 right after CreateTable through node 1: {:?}",
        listed.table_names()
    );
    through_3
        .describe_table()
        .table_name("instant")
        .send()
        .await
        .unwrap_or_else(|e| {
            fail(
                &cluster,
                format!("DescribeTable through node 3: {}", error_text(e)),
            )
        });

    // Node 2, a catalog voter holding three replicas, is decommissioned
    // through the CLI: its replicas and its catalog seat move to the other
    // nodes, the cluster forgets it, it stops by itself, and its id cannot
    // come back. Every item is still there.
    let admin_cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_atoll"))
            .args(["admin", "--endpoint", &cluster.endpoint(3)])
            .args(args)
            .output()
            .expect("run atoll admin")
    };
    let unknown = admin_cli(&["decommission", "9"]);
    assert!(
        !unknown.status.success()
            && String::from_utf8_lossy(&unknown.stderr).contains("node 9 is not a registered node"),
        "decommissioning an unknown node: {unknown:?}"
    );
    let started = admin_cli(&["decommission", "2"]);
    assert!(
        started.status.success()
            && String::from_utf8_lossy(&started.stdout).contains("node 2 is leaving"),
        "atoll admin decommission 2: {started:?}"
    );
    let endpoint = cluster.endpoint(3);
    eventually(DECOMMISSION_TIMEOUT, || async {
        let report = admin(&endpoint).await;
        let nodes: Vec<u64> = report["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["id"].as_u64())
            .collect();
        let placements: Vec<Vec<u64>> = report["tables"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["partitions"].as_array().cloned().unwrap_or_default())
            .map(|p| replicas(&p))
            .collect();
        let drained = placements.iter().all(|r| r.len() == 3 && !r.contains(&2));
        if nodes == [1, 3, 4] && drained {
            Ok(())
        } else {
            Err(format!("nodes {nodes:?}, replicas {placements:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| fail(&cluster, format!("node 2 not decommissioned: {e}")));
    eprintln!("node 2 decommissioned after {:?}", began.elapsed());
    let exited = tokio::task::block_in_place(|| cluster.wait_exit(2, DECOMMISSION_TIMEOUT));
    assert!(
        exited.is_some_and(|status| status.success()),
        "node 2 did not stop by itself once decommissioned: {exited:?}\n{}",
        cluster.logs()
    );
    reads_exactly(&client_of(&cluster, 3), TABLE, &expected, true)
        .await
        .unwrap_or_else(|e| fail(&cluster, format!("after decommissioning node 2: {e}")));
    let (refused, log) = tokio::task::block_in_place(|| cluster.start_refused(2, JOIN_TIMEOUT));
    assert!(
        refused.is_some_and(|status| !status.success()) && log.contains("was decommissioned"),
        "a decommissioned node started again: {refused:?}\n{log}"
    );

    // Without the node that started alone, the others hold a quorum of the
    // catalog and of every partition: tables are created, items written,
    // and every item is read from the replicas that joined.
    tokio::task::block_in_place(|| cluster.kill9(1));
    let survivor = client_of(&cluster, 3);
    create_table(&survivor, "after_join", ScalarAttributeType::S, None).await;
    for i in ITEMS..ITEMS + 10 {
        let item = item([("pk", s(&format!("item-{i:03}"))), ("n", n(&i.to_string()))]);
        if let Err(e) = put(&survivor, TABLE, &item).await {
            fail(&cluster, format!("PutItem with node 1 down: {e}"));
        }
        expected.insert(format!("item-{i:03}"), item);
    }
    reads_exactly(&client_of(&cluster, 3), TABLE, &expected, true)
        .await
        .unwrap_or_else(|e| fail(&cluster, format!("with node 1 down: {e}")));

    // The first node restarts as a member (no flags name the others) and
    // catches up.
    tokio::task::block_in_place(|| cluster.restart(1, JOIN_TIMEOUT));
    let first = client_of(&cluster, 1);
    eventually(CATCH_UP_TIMEOUT, || {
        reads_exactly(&first, TABLE, &expected, false)
    })
    .await
    .unwrap_or_else(|e| fail(&cluster, format!("node 1 after its restart: {e}")));
    wait_visible(&first, "after_join")
        .await
        .unwrap_or_else(|e| fail(&cluster, e));
    eprintln!("done after {:?}", began.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_catalog_voter_is_replaced_by_a_node_that_joined() {
    const TABLE: &str = "voters";
    const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
    /// Dead-node time (2 s), then a voter change and the replica rebuild.
    const REPAIR_TIMEOUT: Duration = Duration::from_secs(30);
    let _exclusive = exclusive();
    let began = Instant::now();
    let mut cluster = ServeCluster::start_alone(4, &["--dead-node-after-ms", "2000"]);
    let fail = |cluster: &ServeCluster, what: String| -> ! { panic!("{what}\n{}", cluster.logs()) };
    // Nodes 2 and 3 join as catalog voters, node 4 as a learner.
    for id in 2..=4 {
        tokio::task::block_in_place(|| cluster.join(id, JOIN_TIMEOUT));
    }
    let client_of = |cluster: &ServeCluster, id: u8| retrying_client(&cluster.endpoint(id));
    create_table(&client_of(&cluster, 3), TABLE, ScalarAttributeType::S, None).await;
    let first = item([("pk", s("k")), ("v", n("1"))]);
    put(&client_of(&cluster, 3), TABLE, &first)
        .await
        .unwrap_or_else(|e| fail(&cluster, format!("PutItem: {e}")));

    // Node 1 dies for good: node 4 takes its catalog seat, and a replica of
    // the table's partition moves to it.
    tokio::task::block_in_place(|| cluster.kill9(1));
    replicas_become(&cluster, 3, TABLE, &[2, 3, 4], REPAIR_TIMEOUT)
        .await
        .unwrap_or_else(|e| fail(&cluster, e));
    eprintln!("node 1 replaced after {:?}", began.elapsed());
    let endpoint = cluster.endpoint(3);
    eventually(REPAIR_TIMEOUT, || async {
        let report = admin(&endpoint).await;
        let down: Vec<u64> = report["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["down"].as_bool() == Some(true))
            .filter_map(|n| n["id"].as_u64())
            .collect();
        if down == [1] {
            Ok(())
        } else {
            Err(format!("nodes marked down: {down:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| fail(&cluster, e));

    // Then node 2 dies too. Two of the three catalog voters (3 and 4) and
    // of the partition's replicas remain: tables are still created, items
    // still written and read. With node 1 still a voter, nothing would be.
    tokio::task::block_in_place(|| cluster.kill9(2));
    let survivor = client_of(&cluster, 4);
    create_table(&survivor, "after_two_deaths", ScalarAttributeType::S, None).await;
    let second = item([("pk", s("k")), ("v", n("2"))]);
    put(&survivor, TABLE, &second)
        .await
        .unwrap_or_else(|e| fail(&cluster, format!("PutItem with nodes 1 and 2 dead: {e}")));
    let got = get(&client_of(&cluster, 3), TABLE, "k", true)
        .await
        .unwrap_or_else(|e| fail(&cluster, format!("GetItem with nodes 1 and 2 dead: {e}")));
    assert_eq!(got, Some(second), "the item after two deaths");

    // The table node 1 held a replica of goes while it is down. Node 1
    // comes back: it follows the catalog again (as a learner), is marked
    // up, and deletes that replica's Raft state.
    survivor
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap_or_else(|e| fail(&cluster, format!("DeleteTable: {}", error_text(e))));
    tokio::task::block_in_place(|| cluster.restart(1, JOIN_TIMEOUT));
    let endpoint = cluster.endpoint(4);
    eventually(REPAIR_TIMEOUT, || async {
        let report = admin(&endpoint).await;
        let node_1_down = report["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["id"].as_u64() == Some(1))
            .map(|n| n["down"].clone());
        match node_1_down {
            Some(serde_json::Value::Bool(false)) => Ok(()),
            other => Err(format!("node 1 down: {other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&cluster, e));
    wait_visible(&client_of(&cluster, 1), "after_two_deaths")
        .await
        .unwrap_or_else(|e| fail(&cluster, e));
    assert!(
        cluster
            .node_log(1)
            .contains("deleted the Raft state of a partition no longer placed here"),
        "node 1 kept the state of a dropped table's replica:\n{}",
        cluster.logs()
    );
    eprintln!("done after {:?}", began.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_nodes_replicas_are_rebuilt_on_another_node() {
    const TABLES: [&str; 3] = ["rebuild_a", "rebuild_b", "rebuild_c"];
    const ITEMS: usize = 50;
    /// Silence, dead-node time (2 s), election, snapshot and catalog change.
    const REBUILD_TIMEOUT: Duration = Duration::from_secs(30);
    let _exclusive = exclusive();
    let began = Instant::now();
    let cluster = DevCluster::start(4, &["--dead-node-after-ms", "2000"]);
    let clients: BTreeMap<u8, Client> = cluster.ids().map(|id| (id, cluster.client(id))).collect();
    let fail = |what: String| -> ! { panic!("{what}\n{}", cluster.logs()) };
    eprintln!("4 nodes serving after {:?}", began.elapsed());

    // Three tables, created through nodes 1-3, written through all four.
    let mut expected: BTreeMap<&str, BTreeMap<String, Item>> = BTreeMap::new();
    for (t, table) in TABLES.iter().enumerate() {
        create_table(
            &clients[&(t as u8 + 1)],
            table,
            ScalarAttributeType::S,
            None,
        )
        .await;
        for client in clients.values() {
            wait_visible(client, table)
                .await
                .unwrap_or_else(|e| fail(e));
        }
    }
    for (t, table) in TABLES.iter().enumerate() {
        let items = expected.entry(table).or_default();
        for i in 0..ITEMS {
            let pk = format!("k{i:03}");
            let item = item([
                ("pk", s(&pk)),
                ("v", s(&format!("{table}-{i}"))),
                ("n", n(&i.to_string())),
            ]);
            let node = ((t * ITEMS + i) % 4) as u8 + 1;
            put(&clients[&node], table, &item)
                .await
                .unwrap_or_else(|e| fail(format!("PutItem {table}/{pk} through node {node}: {e}")));
            items.insert(pk, item);
        }
    }

    // Each table's partition has 3 of the 4 nodes; the victim is a node
    // other than 1 with replicas, preferably one leading some of them.
    let report = admin(cluster.endpoint(1)).await;
    let mut before: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut load: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for table in TABLES {
        let parts = partitions(&report, table);
        assert_eq!(
            parts.len(),
            1,
            "{table} should have one partition: {report:#}"
        );
        let ids = replicas(&parts[0]);
        assert_eq!(ids.len(), 3, "{table} should have 3 replicas: {report:#}");
        for id in &ids {
            load.entry(*id).or_default().1 += 1;
        }
        if let Some(leader) = parts[0]["leader"].as_u64() {
            load.entry(leader).or_default().0 += 1;
        }
        before.insert(table, ids);
    }
    let victim = load
        .iter()
        .filter(|(id, (_, replicas))| **id != 1 && *replicas > 0)
        .max_by_key(|(id, (leads, replicas))| (*leads, *replicas, std::cmp::Reverse(**id)))
        .map(|(id, _)| *id)
        .unwrap_or_else(|| fail(format!("no node but 1 holds replicas: {report:#}")));
    eprintln!(
        "{} items written after {:?}; replicas {before:?}; killing node {victim} (leads, replicas) = {:?}",
        TABLES.len() * ITEMS,
        began.elapsed(),
        load[&victim]
    );
    let victim_u8 = u8::try_from(victim).expect("node id fits u8");
    cluster.kill9(victim_u8);
    let killed = Instant::now();

    // Node 1 sees every partition back at three replicas, none on the victim.
    let mut after: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut last_report;
    loop {
        last_report = admin(cluster.endpoint(1)).await;
        after.clear();
        let mut done = true;
        for table in TABLES {
            let parts = partitions(&last_report, table);
            for part in &parts {
                let ids = replicas(part);
                let distinct: BTreeSet<u64> = ids.iter().copied().collect();
                done &= ids.len() == 3 && distinct.len() == 3 && !ids.contains(&victim);
            }
            done &= parts.len() == 1;
            if let Some(part) = parts.first() {
                after.insert(table, replicas(part));
            }
        }
        if done {
            break;
        }
        if killed.elapsed() > REBUILD_TIMEOUT {
            fail(format!(
                "node {victim}'s replicas not rebuilt within {REBUILD_TIMEOUT:?}; node 1's admin view: {last_report:#}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "replicas rebuilt {:?} after the kill: {after:?}",
        killed.elapsed()
    );
    for table in TABLES {
        let new: Vec<u64> = after[table]
            .iter()
            .filter(|id| !before[table].contains(id))
            .copied()
            .collect();
        let expected_new = usize::from(before[table].contains(&victim));
        assert_eq!(
            new.len(),
            expected_new,
            "{table}: replicas {:?} before, {:?} after losing node {victim}",
            before[table],
            after[table]
        );
    }

    // Strongly consistent reads through node 1, then eventually consistent
    // ones served by each replica: the rebuilt one must hold every item.
    let survivors: Vec<u8> = cluster.ids().filter(|id| *id != victim_u8).collect();
    let check_all = |expected: BTreeMap<&'static str, BTreeMap<String, Item>>,
                     when: &'static str| {
        let (clients, after, fail) = (&clients, &after, &fail);
        async move {
            for table in TABLES {
                reads_exactly(&clients[&1], table, &expected[table], true)
                    .await
                    .unwrap_or_else(|e| {
                        fail(format!("{when}, consistent reads through node 1: {e}"))
                    });
                for id in &after[table] {
                    let node = u8::try_from(*id).expect("node id fits u8");
                    let client = &clients[&node];
                    eventually(CATCH_UP_TIMEOUT, || {
                        reads_exactly(client, table, &expected[table], false)
                    })
                    .await
                    .unwrap_or_else(|e| {
                        fail(format!(
                            "{when}, eventually consistent reads through replica node {node}: {e}"
                        ))
                    });
                }
            }
        }
    };
    check_all(expected.clone(), "after the rebuild").await;

    // New writes reach the new replica set.
    for (t, table) in TABLES.iter().enumerate() {
        let items = expected.get_mut(table).expect("table");
        for i in ITEMS..ITEMS + 10 {
            let pk = format!("k{i:03}");
            let item = item([
                ("pk", s(&pk)),
                ("v", s(&format!("{table}-{i}-new"))),
                ("n", n(&i.to_string())),
            ]);
            let node = survivors[(t + i) % survivors.len()];
            put(&clients[&node], table, &item)
                .await
                .unwrap_or_else(|e| {
                    fail(format!(
                        "PutItem {table}/{pk} through node {node} after the rebuild: {e}"
                    ))
                });
            let other = survivors[(t + i + 1) % survivors.len()];
            let got = get(&clients[&other], table, &pk, true)
                .await
                .unwrap_or_else(|e| {
                    fail(format!("GetItem {table}/{pk} through node {other}: {e}"))
                });
            assert_eq!(
                got.as_ref(),
                Some(&item),
                "{table}/{pk} read through node {other} after a put through node {node}"
            );
            items.insert(pk, item);
        }
        // An update that only removes, on a key no item has, creates
        // nothing on any replica (DynamoDB's rule, applied in every
        // replica's state machine); check_all would see a stray item.
        for node in &survivors {
            clients[node]
                .update_item()
                .table_name(*table)
                .key("pk", s(&format!("ghost-{node}")))
                .update_expression("REMOVE v, m.x")
                .send()
                .await
                .unwrap_or_else(|e| {
                    fail(format!(
                        "REMOVE-only UpdateItem through node {node}: {}",
                        error_text(e)
                    ))
                });
        }
    }
    check_all(expected, "after writes to the rebuilt replica set").await;
    eprintln!("done after {:?}", began.elapsed());
}

/// What the load of the rolling restart test did and saw.
#[derive(Default)]
struct Ledger {
    /// Acknowledged increments per counter key.
    increments: HashMap<String, u64>,
    /// The last acknowledged value per put key (each key has one writer).
    puts: HashMap<String, String>,
    requests: u64,
    /// The longest a request took (retries included), and how many took
    /// over a second: how close the SDK's retries came to giving up.
    slowest: Duration,
    slow: u64,
    failures: Vec<String>,
    /// Consistent reads that missed an increment acknowledged before them.
    stale: Vec<String>,
}

impl Ledger {
    fn count(&mut self, took: Duration) {
        self.requests += 1;
        self.slowest = self.slowest.max(took);
        self.slow += u64::from(took > Duration::from_secs(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_load_fails_no_request() {
    const TABLE: &str = "rolling";
    const COUNTERS: usize = 16;
    const WRITERS: usize = 4;
    const READERS: usize = 2;
    const STOP_TIMEOUT: Duration = Duration::from_secs(20);
    const RESTART_TIMEOUT: Duration = Duration::from_secs(60);
    // Between taking a node out of service and stopping it: long enough
    // for clients that picked it just before to have connected.
    const DEREGISTRATION_DELAY: Duration = Duration::from_millis(300);
    let _exclusive = exclusive();
    let began = Instant::now();
    let mut cluster = ServeCluster::start(3, &[]);
    eprintln!("3 nodes serving after {:?}", began.elapsed());
    let endpoints: Vec<String> = (1..=3).map(|id| cluster.endpoint(id)).collect();
    create_table(
        &sdk_client(&endpoints[0]),
        TABLE,
        ScalarAttributeType::S,
        None,
    )
    .await;
    for endpoint in &endpoints {
        if let Err(e) = wait_visible(&sdk_client(endpoint), TABLE).await {
            panic!("{e}\n{}", cluster.logs());
        }
    }

    // Each request goes to a random node in service. As a load balancer
    // would, the test takes a node out of service shortly before stopping
    // it (requests already sent to it must still be answered: it drains
    // them) and puts it back once it serves again; a client that connects
    // to a stopped node gets connection refused for as long as it is down.
    let clients: Arc<Vec<Client>> =
        Arc::new(endpoints.iter().map(|e| retrying_client(e)).collect());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let running = Arc::new(AtomicBool::new(true));
    // The id of the node out of service, 0 for none.
    let out_of_service = Arc::new(AtomicUsize::new(0));
    let pick = |rng: &mut Rng, out_of_service: &AtomicUsize| loop {
        let node = rng.below(3);
        if node + 1 != out_of_service.load(Ordering::SeqCst) {
            return node;
        }
    };
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (clients, ledger, running) = (clients.clone(), ledger.clone(), running.clone());
        let out_of_service = out_of_service.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new();
            let mut seq = 0u64;
            while running.load(Ordering::SeqCst) {
                let node = pick(&mut rng, &out_of_service);
                let sent = Instant::now();
                let client = &clients[node];
                let (what, result) = if rng.below(2) == 0 {
                    seq += 1;
                    let key = format!("w{writer}-{}", rng.below(8));
                    let value = format!("{writer}-{seq}");
                    let item = item([("pk", s(&key)), ("v", s(&value))]);
                    let result = put(client, TABLE, &item).await;
                    if result.is_ok() {
                        ledger.lock().unwrap().puts.insert(key.clone(), value);
                    }
                    (format!("PutItem {key}"), result)
                } else {
                    let key = format!("c{}", rng.below(COUNTERS));
                    let result = client
                        .update_item()
                        .table_name(TABLE)
                        .key("pk", s(&key))
                        .update_expression("ADD cnt :one")
                        .condition_expression("attribute_not_exists(pk) OR cnt >= :zero")
                        .expression_attribute_values(":one", n("1"))
                        .expression_attribute_values(":zero", n("0"))
                        .send()
                        .await
                        .map(drop)
                        .map_err(error_text);
                    if result.is_ok() {
                        *ledger
                            .lock()
                            .unwrap()
                            .increments
                            .entry(key.clone())
                            .or_default() += 1;
                    }
                    (format!("UpdateItem {key}"), result)
                };
                let mut ledger = ledger.lock().unwrap();
                ledger.count(sent.elapsed());
                if let Err(e) = result {
                    ledger
                        .failures
                        .push(format!("{what} through node {}: {e}", node + 1));
                }
            }
        }));
    }
    for _ in 0..READERS {
        let (clients, ledger, running) = (clients.clone(), ledger.clone(), running.clone());
        let out_of_service = out_of_service.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new();
            while running.load(Ordering::SeqCst) {
                let node = pick(&mut rng, &out_of_service);
                let sent = Instant::now();
                let key = format!("c{}", rng.below(COUNTERS));
                let acked_before = ledger.lock().unwrap().increments.get(&key).copied().unwrap_or(0);
                let result = get(&clients[node], TABLE, &key, true).await;
                let mut ledger = ledger.lock().unwrap();
                ledger.count(sent.elapsed());
                match result {
                    Ok(got) => {
                        let value = got
                            .as_ref()
                            .and_then(|item| item.get("cnt"))
                            .map_or(Ok(0), |cnt| match cnt {
                                AttributeValue::N(v) => v.parse::<u64>().map_err(|_| format!("{cnt:?}")),
                                other => Err(format!("{other:?}")),
                            });
                        match value {
                            Ok(value) if value >= acked_before => {}
                            Ok(value) => ledger.stale.push(format!(
                                "{key} through node {}: cnt {value}, but {acked_before} increments were acknowledged before the read",
                                node + 1
                            )),
                            Err(bad) => ledger.failures.push(format!("GetItem {key}: bad cnt {bad}")),
                        }
                    }
                    Err(e) => ledger.failures.push(format!("GetItem {key} through node {}: {e}", node + 1)),
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in 1..=3u8 {
        let requests = ledger.lock().unwrap().requests;
        out_of_service.store(usize::from(id), Ordering::SeqCst);
        tokio::time::sleep(DEREGISTRATION_DELAY).await;
        let stopping = Instant::now();
        let status = tokio::task::block_in_place(|| cluster.stop(id, STOP_TIMEOUT));
        let stopped_in = stopping.elapsed();
        assert!(
            status.success(),
            "node {id} exited with {status} after SIGTERM\n{}",
            cluster.logs()
        );
        tokio::task::block_in_place(|| cluster.restart(id, RESTART_TIMEOUT));
        out_of_service.store(0, Ordering::SeqCst);
        eprintln!(
            "node {id}: stopped in {stopped_in:?}, serving again {:?} after SIGTERM ({requests} requests so far)",
            stopping.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.store(false, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("load task");
    }

    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let total_increments: u64 = ledger.increments.values().sum();
    eprintln!(
        "{} requests ({} increments, {} put keys; slowest {:?}, {} over 1 s), {} failed, {} stale reads; {:?} in all",
        ledger.requests,
        total_increments,
        ledger.puts.len(),
        ledger.slowest,
        ledger.slow,
        ledger.failures.len(),
        ledger.stale.len(),
        began.elapsed()
    );
    assert!(
        ledger.requests > 100,
        "only {} requests ran",
        ledger.requests
    );
    assert!(
        ledger.failures.is_empty() && ledger.stale.is_empty(),
        "{} of {} requests failed: {:#?}\nstale consistent reads: {:#?}\n{}",
        ledger.failures.len(),
        ledger.requests,
        ledger.failures.iter().take(20).collect::<Vec<_>>(),
        ledger.stale.iter().take(20).collect::<Vec<_>>(),
        cluster.logs()
    );

    // Every acknowledged write is there, each increment exactly once.
    let client = sdk_client(&endpoints[0]);
    let mut wrong = Vec::new();
    for c in 0..COUNTERS {
        let key = format!("c{c}");
        let acked = ledger.increments.get(&key).copied().unwrap_or(0);
        let got = get(&client, TABLE, &key, true)
            .await
            .unwrap_or_else(|e| panic!("GetItem {key}: {e}\n{}", cluster.logs()));
        let cnt = got.as_ref().and_then(|item| item.get("cnt")).cloned();
        let expected = (acked > 0).then(|| n(&acked.to_string()));
        if cnt != expected {
            wrong.push(format!(
                "{key}: cnt {cnt:?}, {acked} increments acknowledged"
            ));
        }
    }
    for (key, value) in &ledger.puts {
        let got = get(&client, TABLE, key, true)
            .await
            .unwrap_or_else(|e| panic!("GetItem {key}: {e}\n{}", cluster.logs()));
        let v = got.as_ref().and_then(|item| item.get("v")).cloned();
        if v != Some(s(value)) {
            wrong.push(format!("{key}: v {v:?}, last acknowledged put {value:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "after the rolling restart: {wrong:#?}\n{}",
        cluster.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_splits_across_the_cluster_and_keeps_every_item() {
    const TABLE: &str = "splitting";
    const ITEMS: usize = 600;
    const WRITERS: usize = 6;
    const SPLIT_TIMEOUT: Duration = Duration::from_secs(20);
    let _exclusive = exclusive();
    let began = Instant::now();
    let cluster = DevCluster::start(
        3,
        &[
            "--partition-split-bytes",
            "20000",
            "--partition-check-ms",
            "200",
        ],
    );
    let clients: BTreeMap<u8, Client> = cluster.ids().map(|id| (id, cluster.client(id))).collect();
    let fail = |what: String| -> ! { panic!("{what}\n{}", cluster.logs()) };
    eprintln!("3 nodes serving after {:?}", began.elapsed());
    create_table(&clients[&1], TABLE, ScalarAttributeType::S, None).await;
    for client in clients.values() {
        wait_visible(client, TABLE)
            .await
            .unwrap_or_else(|e| fail(e));
    }

    // ~300-byte items from concurrent writers through every node.
    let item_of = |i: usize| {
        let pk = format!("item-{i:04}");
        let payload: String = format!("{i:04}-").repeat(56);
        item([
            ("pk", s(&pk)),
            ("payload", s(&payload)),
            ("n", n(&i.to_string())),
        ])
    };
    let next = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (clients, next) = (clients.clone(), next.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= ITEMS {
                        return failures;
                    }
                    let node = (i % 3) as u8 + 1;
                    if let Err(e) = put(&clients[&node], TABLE, &item_of(i)).await {
                        failures.push(format!("PutItem item-{i:04} through node {node}: {e}"));
                    }
                }
            })
        })
        .collect();
    let mut failures = Vec::new();
    for writer in writers {
        failures.extend(writer.await.expect("writer"));
    }
    if !failures.is_empty() {
        fail(format!(
            "{} of {ITEMS} puts failed: {:#?}",
            failures.len(),
            &failures[..failures.len().min(20)]
        ));
    }
    eprintln!("{ITEMS} items written after {:?}", began.elapsed());

    let written = Instant::now();
    let report = loop {
        let report = admin(cluster.endpoint(1)).await;
        if partitions(&report, TABLE).len() >= 4 {
            break report;
        }
        if written.elapsed() > SPLIT_TIMEOUT {
            fail(format!(
                "fewer than 4 partitions {SPLIT_TIMEOUT:?} after the writes: {report:#}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let parts = partitions(&report, TABLE);
    eprintln!(
        "{} partitions {:?} after the writes",
        parts.len(),
        written.elapsed()
    );
    for part in &parts {
        let ids: BTreeSet<u64> = replicas(part).into_iter().collect();
        assert_eq!(
            ids,
            BTreeSet::from([1, 2, 3]),
            "replicas of partition {part}: {report:#}"
        );
    }

    // Every item through every node, strongly consistent; paged Scans
    // through every node, strongly and eventually consistent.
    let expected: Arc<BTreeMap<String, Item>> = Arc::new(
        (0..ITEMS)
            .map(|i| {
                let item = item_of(i);
                let Some(AttributeValue::S(pk)) = item.get("pk") else {
                    unreachable!()
                };
                (pk.clone(), item)
            })
            .collect(),
    );
    let keys: Vec<String> = expected.keys().cloned().collect();
    let readers: Vec<_> = (0..WRITERS)
        .map(|worker| {
            let (clients, expected) = (clients.clone(), expected.clone());
            let keys: Vec<String> = keys.iter().skip(worker).step_by(WRITERS).cloned().collect();
            tokio::spawn(async move {
                let mut wrong = Vec::new();
                for (node, client) in &clients {
                    for pk in &keys {
                        match get(client, TABLE, pk, true).await {
                            Ok(got) if got.as_ref() == expected.get(pk) => {}
                            Ok(got) => wrong.push(format!("{pk} through node {node}: {got:?}")),
                            Err(e) => wrong.push(format!("{pk} through node {node}: {e}")),
                        }
                    }
                }
                wrong
            })
        })
        .collect();
    let mut wrong = Vec::new();
    for reader in readers {
        wrong.extend(reader.await.expect("reader"));
    }
    if !wrong.is_empty() {
        fail(format!(
            "{} consistent GetItems wrong: {:#?}",
            wrong.len(),
            &wrong[..wrong.len().min(20)]
        ));
    }
    for (node, client) in &clients {
        let keys = scan_keys(client, TABLE, true)
            .await
            .unwrap_or_else(|e| fail(format!("consistent Scan through node {node}: {e}")));
        assert_eq!(keys.len(), ITEMS, "consistent Scan through node {node}");
        assert!(
            keys.iter().eq(expected.keys()),
            "consistent Scan through node {node} found other keys"
        );
        let eventual = || async {
            let keys = scan_keys(client, TABLE, false).await?;
            match keys.len() {
                ITEMS => Ok(()),
                found => Err(format!(
                    "eventually consistent Scan through node {node}: {found} items"
                )),
            }
        };
        eventually(CATCH_UP_TIMEOUT, eventual)
            .await
            .unwrap_or_else(|e| fail(e));
    }
    let described = clients[&3]
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap_or_else(|e| fail(format!("DescribeTable through node 3: {}", error_text(e))));
    let table = described.table().expect("TableDescription");
    assert_eq!(table.table_name(), Some(TABLE));
    assert_eq!(table.table_status(), Some(&TableStatus::Active));

    // Each node's admin view: the same partitions, all items accounted for.
    let starts = |report: &serde_json::Value| -> Vec<String> {
        partitions(report, TABLE)
            .iter()
            .map(|p| p["start_token"].to_string())
            .collect()
    };
    let reference = admin(cluster.endpoint(1)).await;
    for node in cluster.ids() {
        let check = || async {
            let report = admin(cluster.endpoint(node)).await;
            let items: u64 = partitions(&report, TABLE)
                .iter()
                .filter_map(|p| p["item_count"].as_u64())
                .sum();
            if starts(&report) != starts(&reference) || items != ITEMS as u64 {
                return Err(format!(
                    "node {node}'s admin view: {items} items in partitions {:?}, node 1's: {:?}: {report:#}",
                    starts(&report),
                    starts(&reference)
                ));
            }
            Ok(())
        };
        eventually(CATCH_UP_TIMEOUT, check)
            .await
            .unwrap_or_else(|e| fail(e));
    }
    eprintln!("done after {:?}", began.elapsed());
}

/// A write sent to a node that does not lead the item's partition is
/// forwarded to the leader; both nodes log their part of it under the
/// client's `x-amzn-RequestId`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_request_is_logged_under_its_request_id_on_both_nodes() {
    use aws_sdk_dynamodb::operation::RequestId;
    const LOG_FILTER: &str =
        "info,atoll_api=debug,atoll_cluster=debug,openraft=warn,fjall=warn,lsm_tree=warn";
    let _exclusive = exclusive();
    let cluster = DevCluster::start(3, &["--log-level", LOG_FILTER]);
    let table = "traced";
    create_table(&cluster.client(1), table, ScalarAttributeType::S, None).await;
    for id in cluster.ids() {
        wait_visible(&cluster.client(id), table)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    // The leader may move between the look and the write: try again then.
    let mut last = String::new();
    for attempt in 0..5 {
        let report = admin(cluster.endpoint(1)).await;
        let leader = partitions(&report, table)
            .first()
            .and_then(|p| p["leader"].as_u64())
            .and_then(|id| u8::try_from(id).ok());
        let Some(leader) = leader else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let via = cluster.ids().find(|id| *id != leader).expect("three nodes");
        let out = cluster
            .client(via)
            .put_item()
            .table_name(table)
            .item("pk", s(&format!("traced-{attempt}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutItem: {}", DisplayErrorContext(e)));
        let request_id = out.request_id().expect("x-amzn-RequestId").to_string();
        let logged = |node: u8| cluster.node_log(node).contains(&request_id);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(logged(via) && logged(leader)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if logged(via) && logged(leader) {
            let line = cluster
                .node_log(leader)
                .lines()
                .find(|line| line.contains(&request_id))
                .unwrap_or_default()
                .to_string();
            assert!(line.contains("forwarded"), "{line}");
            return;
        }
        last = format!(
            "request {request_id} through node {via} (leader {leader}): logged by via {}, by leader {}",
            logged(via),
            logged(leader)
        );
    }
    panic!("{last}\n{}", cluster.logs());
}
