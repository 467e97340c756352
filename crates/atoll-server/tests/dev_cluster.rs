//! `atoll dev-cluster`: three node processes come up, serve one table
//! together, survive `kill -9` of one node, and all stop on Ctrl-C.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use common::cluster::{DevCluster, alive, retry};
use common::*;

/// Table creation and routing may take a moment to reach every node.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// After a node is killed, its leaderships must move within this.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

async fn put(client: &Client, table: &str, pk: &str, value: &str) -> Result<(), String> {
    let req = client.put_item().table_name(table);
    let req = req.set_item(Some(item([("pk", s(pk)), ("v", s(value))])));
    req.send()
        .await
        .map(drop)
        .map_err(|e| DisplayErrorContext(&e).to_string())
}

/// ConsistentRead GetItem; `Ok(None)` is an answer, not a failure to retry.
async fn get(
    client: &Client,
    table: &str,
    pk: &str,
) -> Result<Option<HashMap<String, AttributeValue>>, String> {
    let req = client
        .get_item()
        .table_name(table)
        .key("pk", s(pk))
        .consistent_read(true);
    match req.send().await {
        Ok(out) => Ok(out.item().cloned()),
        Err(e) => Err(DisplayErrorContext(&e).to_string()),
    }
}

#[test]
fn dev_cluster_serves_survives_a_crash_and_stops_on_ctrl_c() {
    // Every stdout line must be a node line; three of them, one per node.
    let mut cluster = DevCluster::start(3, &[]);
    let endpoint = |id: u8| cluster.endpoint(id).to_string();
    let pids: BTreeMap<u8, libc::pid_t> =
        cluster.ids().map(|id| (id, cluster.node_pid(id))).collect();
    let pid = |id: u8| pids[&id];

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let (c1, c2, c3) = (sdk_client(&endpoint(1)), sdk_client(&endpoint(2)), sdk_client(&endpoint(3)));
        let table = "dev_cluster";
        create_table(&c1, table, ScalarAttributeType::S, None).await;

        let result = retry(SETTLE_TIMEOUT, || put(&c2, table, "k1", "one")).await;
        result.unwrap_or_else(|e| panic!("PutItem through node 2 failed for {SETTLE_TIMEOUT:?}: {e}\n{}", cluster.logs()));
        let got = retry(SETTLE_TIMEOUT, || get(&c3, table, "k1")).await;
        let got = got.unwrap_or_else(|e| panic!("GetItem through node 3 failed for {SETTLE_TIMEOUT:?}: {e}\n{}", cluster.logs()));
        assert_eq!(got, Some(item([("pk", s("k1")), ("v", s("one"))])), "consistent read through node 3 after an acknowledged put through node 2");

        // Node 3 crashes; nodes 1 and 2 are still a quorum.
        cluster.kill9(3);
        for (pk, value) in [("k1", "two"), ("k2", "three")] {
            let result = retry(FAILOVER_TIMEOUT, || put(&c1, table, pk, value)).await;
            result.unwrap_or_else(|e| panic!("PutItem {pk} through node 1 after kill -9 of node 3 did not succeed within {FAILOVER_TIMEOUT:?}: {e}\n{}", cluster.logs()));
            let got = retry(FAILOVER_TIMEOUT, || get(&c2, table, pk)).await;
            let got = got.unwrap_or_else(|e| panic!("GetItem {pk} through node 2 after kill -9 of node 3 did not succeed within {FAILOVER_TIMEOUT:?}: {e}\n{}", cluster.logs()));
            assert_eq!(got, Some(item([("pk", s(pk)), ("v", s(value))])), "consistent read through node 2 after kill -9 of node 3");
        }
    });

    // dev-cluster notices the crash, does not restart node 3, keeps running.
    let crash_line = format!(
        "atoll dev-cluster: node 3 (pid {}) exited: signal 9",
        pid(3)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cluster.stderr().contains(&crash_line) {
        assert!(
            Instant::now() < deadline,
            "dev-cluster did not report {crash_line:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        cluster.exited().is_none(),
        "dev-cluster exited after one node crashed\n{}",
        cluster.logs()
    );
    assert!(
        cluster.next_line().is_none(),
        "unexpected stdout after start-up (a restarted node?)"
    );

    // Ctrl-C: dev-cluster stops the remaining nodes and exits 0.
    cluster.signal(libc::SIGINT);
    let status = cluster.wait_exit(EXIT_TIMEOUT);
    let status = status.unwrap_or_else(|| {
        panic!(
            "dev-cluster still running {EXIT_TIMEOUT:?} after SIGINT\n{}",
            cluster.logs()
        )
    });
    assert!(
        status.success(),
        "dev-cluster exited with {status} after SIGINT\n{}",
        cluster.logs()
    );
    for id in 1..=3 {
        assert!(
            !alive(pid(id)),
            "node {id} (pid {}) still runs after dev-cluster exited",
            pid(id)
        );
    }
}
