//! Partitions split by size while the table is in use: with a small split
//! threshold, concurrent PutItem, BatchWriteItem, conditional UpdateItem and
//! strongly consistent GetItem run while the table's one partition becomes
//! many. No request fails, and afterwards every item, the item count, Scan
//! (paged, and as parallel segments), Query and a LastEvaluatedKey taken
//! before the splits are all right — also after a crash and restart.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, PutRequest, ScalarAttributeType as Sat, Select, WriteRequest,
};
use common::*;

const TABLE: &str = "splitting";
const PARTITION_KEYS: usize = 40;
const ITEMS_PER_KEY: usize = 20;
/// Items written before the first Scan page is taken (below the threshold).
const EARLY_ITEMS: usize = 40;

type Key = (String, i64);

fn key_of(pk: usize, sk: usize) -> Key {
    (format!("p{pk:02}"), sk as i64)
}

fn item_of((pk, sk): &Key) -> HashMap<String, AttributeValue> {
    item([
        ("pk", s(pk)),
        ("sk", n(&sk.to_string())),
        ("payload", s(&"x".repeat(400))),
        ("count", n("0")),
    ])
}

fn key_attrs((pk, sk): &Key) -> HashMap<String, AttributeValue> {
    item([("pk", s(pk)), ("sk", n(&sk.to_string()))])
}

fn parse_key(attrs: &HashMap<String, AttributeValue>) -> Key {
    let pk = attrs["pk"].as_s().expect("pk").clone();
    let sk = attrs["sk"].as_n().expect("sk").parse().expect("number");
    (pk, sk)
}

/// The item under `key`, read strongly consistent.
async fn get(client: &Client, key: &Key) -> Option<HashMap<String, AttributeValue>> {
    ok(client
        .get_item()
        .table_name(TABLE)
        .set_key(Some(key_attrs(key)))
        .consistent_read(true)
        .send()
        .await)
    .item()
    .cloned()
}

async fn put(client: &Client, key: &Key) {
    ok(client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item_of(key)))
        .send()
        .await);
}

/// Every key of a full Scan, paging with `limit` from `start`.
async fn scan_keys(
    client: &Client,
    limit: i32,
    start: Option<HashMap<String, AttributeValue>>,
    segment: Option<(i32, i32)>,
) -> Vec<Key> {
    let mut keys = Vec::new();
    let mut start = start;
    loop {
        let mut request = client
            .scan()
            .table_name(TABLE)
            .limit(limit)
            .set_exclusive_start_key(start);
        if let Some((segment, total)) = segment {
            request = request.segment(segment).total_segments(total);
        }
        let page = ok(request.send().await);
        keys.extend(page.items().iter().map(parse_key));
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return keys;
        }
    }
}

async fn verify_table(client: &Client, all: &BTreeSet<Key>) {
    let described = ok(client.describe_table().table_name(TABLE).send().await);
    let table = described.table().expect("table");
    assert_eq!(table.item_count(), Some(all.len() as i64), "ItemCount");

    let scanned = scan_keys(client, 37, None, None).await;
    let unique: BTreeSet<Key> = scanned.iter().cloned().collect();
    assert_eq!(
        scanned.len(),
        unique.len(),
        "a paged Scan returned an item twice"
    );
    assert_eq!(&unique, all, "a paged Scan missed or invented items");

    let mut segments = Vec::new();
    for segment in 0..3 {
        segments.extend(scan_keys(client, 50, None, Some((segment, 3))).await);
    }
    let union: BTreeSet<Key> = segments.iter().cloned().collect();
    assert_eq!(segments.len(), union.len(), "parallel segments overlap");
    assert_eq!(&union, all, "parallel segments do not cover the table");

    for pk in 0..PARTITION_KEYS {
        let pk = key_of(pk, 0).0;
        let counted = ok(client
            .query()
            .table_name(TABLE)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&pk))
            .select(Select::Count)
            .consistent_read(true)
            .send()
            .await);
        let expected = all.iter().filter(|(p, _)| *p == pk).count();
        assert_eq!(counted.count() as usize, expected, "Query of {pk}");
    }
    for key in all.iter().step_by(7) {
        let got = get(client, key).await.expect("item is there");
        assert_eq!(got["payload"].as_s().map(|p| p.len()), Ok(400));
    }
}

fn atoll_admin(server: &TestServer, json: bool) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_atoll"));
    command.args(["admin", "--endpoint", server.endpoint()]);
    if json {
        command.arg("--json");
    }
    let output = command.output().expect("run atoll admin");
    assert!(
        output.status.success(),
        "atoll admin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `atoll admin` shows the partitions: contiguous token ranges covering
/// every token, item counts adding up, this node leading each.
fn verify_admin_view(server: &TestServer, items: u64) {
    let report: serde_json::Value =
        serde_json::from_str(&atoll_admin(server, true)).expect("admin JSON");
    let table = report["tables"]
        .as_array()
        .and_then(|tables| tables.iter().find(|t| t["name"] == TABLE))
        .expect("the table in the admin view");
    let partitions = table["partitions"].as_array().expect("partitions");
    assert!(partitions.len() >= 5, "{table}");
    let token = |p: &serde_json::Value, field: &str| {
        u64::from_str_radix(p[field].as_str().expect("token"), 16).expect("hex token")
    };
    assert_eq!(token(&partitions[0], "start_token"), 0);
    assert_eq!(
        token(&partitions[partitions.len() - 1], "end_token"),
        u64::MAX
    );
    for pair in partitions.windows(2) {
        assert_eq!(
            token(&pair[0], "end_token") + 1,
            token(&pair[1], "start_token")
        );
    }
    let counted: u64 = partitions
        .iter()
        .map(|p| p["item_count"].as_u64().expect("count"))
        .sum();
    assert_eq!(counted, items);
    for p in partitions {
        assert_eq!(p["leader"], 1, "{p}");
        assert_eq!(p["replicas"], serde_json::json!([1]), "{p}");
    }
    let text = atoll_admin(server, false);
    assert!(
        text.contains(&format!(
            "table {TABLE} (ACTIVE, {} partitions)",
            partitions.len()
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_split_under_load_and_everything_stays_right() {
    let mut server = TestServer::start_with_args(&[
        "--partition-split-bytes",
        "30000",
        "--partition-check-ms",
        "20",
    ]);
    let client = server.client();
    create_table(&client, TABLE, Sat::S, Some(Sat::N)).await;

    let all_keys: Vec<Key> = (0..ITEMS_PER_KEY)
        .flat_map(|sk| (0..PARTITION_KEYS).map(move |pk| key_of(pk, sk)))
        .collect();
    let (early, late) = all_keys.split_at(EARLY_ITEMS);
    for key in early {
        put(&client, key).await;
    }
    // A page taken before any split; it is continued after many.
    let first_page = ok(client.scan().table_name(TABLE).limit(10).send().await);
    let first_keys: Vec<Key> = first_page.items().iter().map(parse_key).collect();
    let resume_from = first_page.last_evaluated_key().cloned();
    assert!(resume_from.is_some());

    // Writers: single puts and batches of 25 over the late keys.
    let (singles, batched) = late.split_at(late.len() / 2);
    let mut tasks = Vec::new();
    for chunk in singles.chunks(singles.len().div_ceil(4)) {
        let (client, chunk) = (client.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for key in &chunk {
                put(&client, key).await;
                // Read back at once, strongly consistent: acknowledged means there.
                let got = get(&client, key).await;
                assert!(got.is_some(), "{key:?} vanished after its put");
            }
        }));
    }
    {
        let (client, batched) = (client.clone(), batched.to_vec());
        tasks.push(tokio::spawn(async move {
            for chunk in batched.chunks(25) {
                let requests = chunk
                    .iter()
                    .map(|key| {
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .set_item(Some(item_of(key)))
                                    .build()
                                    .expect("put request"),
                            )
                            .build()
                    })
                    .collect();
                let out = ok(client
                    .batch_write_item()
                    .request_items(TABLE, requests)
                    .send()
                    .await);
                assert!(
                    out.unprocessed_items().is_none_or(|u| u.is_empty()),
                    "unprocessed items"
                );
            }
        }));
    }
    // Conditional updates of the early items while the map changes.
    {
        let (client, early) = (client.clone(), early.to_vec());
        tasks.push(tokio::spawn(async move {
            for round in 1..=3 {
                for key in &early {
                    ok(client
                        .update_item()
                        .table_name(TABLE)
                        .set_key(Some(key_attrs(key)))
                        .update_expression("SET #c = #c + :one")
                        .condition_expression("attribute_exists(pk) AND #c = :before")
                        .expression_attribute_names("#c", "count")
                        .expression_attribute_values(":one", n("1"))
                        .expression_attribute_values(":before", n(&(round - 1).to_string()))
                        .send()
                        .await);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a client task failed");
    }
    // Let the last splits of the load finish.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let splits = server.stderr().matches("split partition").count();
    eprintln!("{splits} splits");
    assert!(
        splits >= 4,
        "expected several splits, saw {splits}:\n{}",
        server.stderr()
    );

    let all: BTreeSet<Key> = all_keys.iter().cloned().collect();
    verify_table(&client, &all).await;
    verify_admin_view(&server, all.len() as u64);
    for key in early.iter().step_by(5) {
        let got = get(&client, key).await;
        assert_eq!(
            got.as_ref()
                .and_then(|i| i["count"].as_n().ok())
                .map(String::as_str),
            Some("3")
        );
    }

    // The page taken before the splits continues after them: together with
    // the first page it covers every early item once, and only real items.
    let rest = scan_keys(&client, 25, resume_from, None).await;
    let mut seen: BTreeSet<Key> = first_keys.iter().cloned().collect();
    for key in &rest {
        assert!(seen.insert(key.clone()), "{key:?} came back twice");
        assert!(all.contains(key));
    }
    for key in early {
        assert!(seen.contains(key), "{key:?} was skipped after the splits");
    }

    // A crash and restart keeps the partition map, ranges and counts.
    server.restart();
    let client = server.client();
    verify_table(&client, &all).await;

    // Deleting the split table removes every partition; a new table of the
    // same name starts empty, with one partition.
    ok(client.delete_table().table_name(TABLE).send().await);
    create_table(&client, TABLE, Sat::S, Some(Sat::N)).await;
    assert!(scan_keys(&client, 100, None, None).await.is_empty());
    let report: serde_json::Value =
        serde_json::from_str(&atoll_admin(&server, true)).expect("admin JSON");
    assert_eq!(
        report["tables"][0]["partitions"].as_array().map(Vec::len),
        Some(1)
    );
}
