//! Splits for load: a partition whose request rate stays over the threshold
//! splits at the median token of the requests it saw — not at the middle of
//! its range — and one hot key alone never splits a partition.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{PutRequest, ScalarAttributeType as Sat, Select, WriteRequest};
use common::*;

const TABLE: &str = "hot";
const KEYS: usize = 200;

fn token_of(pk: &str) -> u64 {
    let row_key = atoll_model::encode_row_key(&atoll_model::AttributeValue::S(pk.into()), None)
        .expect("row key");
    u64::from_be_bytes(row_key[..8].try_into().expect("8 bytes"))
}

/// Reads `keys` round-robin from 4 connections for `how_long`.
async fn hammer(client: &Client, keys: &[String], how_long: Duration) {
    let deadline = Instant::now() + how_long;
    let tasks: Vec<_> = (0..4)
        .map(|worker| {
            let (client, keys) = (client.clone(), keys.to_vec());
            tokio::spawn(async move {
                let mut i = worker;
                while Instant::now() < deadline {
                    let pk = &keys[i % keys.len()];
                    let got = ok(client
                        .get_item()
                        .table_name(TABLE)
                        .key("pk", s(pk))
                        .send()
                        .await);
                    assert!(got.item().is_some(), "{pk} is missing");
                    i += 4;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("reader");
    }
}

/// Partition boundaries (start tokens) from the admin view.
fn partition_starts(server: &TestServer) -> Vec<u64> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(["admin", "--json", "--endpoint", server.endpoint()])
        .output()
        .expect("run atoll admin");
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("admin JSON");
    report["tables"]
        .as_array()
        .and_then(|tables| tables.iter().find(|t| t["name"] == TABLE))
        .and_then(|t| t["partitions"].as_array())
        .expect("partitions")
        .iter()
        .map(|p| u64::from_str_radix(p["start_token"].as_str().expect("hex"), 16).expect("token"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_ranges_split_at_the_median_of_their_traffic_and_one_hot_key_does_not() {
    let server = TestServer::start_with_args(&[
        "--partition-split-ops",
        "300",
        "--partition-check-ms",
        "100",
    ]);
    let client = server.client();
    create_table(&client, TABLE, Sat::S, None).await;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
    // Loaded in batches: 8 requests, far below the threshold.
    for chunk in keys.chunks(25) {
        let requests = chunk
            .iter()
            .map(|pk| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .item("pk", s(pk))
                            .item("v", s("value"))
                            .build()
                            .expect("put"),
                    )
                    .build()
            })
            .collect();
        ok(client
            .batch_write_item()
            .request_items(TABLE, requests)
            .send()
            .await);
    }
    assert_eq!(partition_starts(&server), vec![0]);

    // One hot key, well over the threshold for many checks: no split.
    hammer(&client, &keys[7..8], Duration::from_millis(1500)).await;
    assert_eq!(
        partition_starts(&server),
        vec![0],
        "a single hot key split the partition"
    );

    // Traffic over the keys of the lowest quarter of the token space: the
    // split lands among them, far below the middle of the range.
    let quarter = u64::MAX / 4;
    let low: Vec<String> = keys
        .iter()
        .filter(|pk| token_of(pk) < quarter)
        .cloned()
        .collect();
    assert!(low.len() >= 20, "{} keys in the lowest quarter", low.len());
    let deadline = Instant::now() + Duration::from_secs(10);
    let starts = loop {
        hammer(&client, &low, Duration::from_millis(500)).await;
        let starts = partition_starts(&server);
        if starts.len() > 1 {
            break starts;
        }
        assert!(
            Instant::now() < deadline,
            "no split for load:\n{}",
            server.stderr()
        );
    };
    let split_at = starts[1];
    let mut low_tokens: Vec<u64> = low.iter().map(|pk| token_of(pk)).collect();
    low_tokens.sort_unstable();
    assert!(
        split_at > low_tokens[0] && split_at <= low_tokens[low_tokens.len() - 1],
        "split at {split_at:#018x}, outside the hot keys' tokens"
    );
    assert!(server.stderr().contains("stayed over the load threshold"));

    // Every item is still there and counted once.
    let scanned = ok(client
        .scan()
        .table_name(TABLE)
        .select(Select::Count)
        .send()
        .await);
    assert_eq!(scanned.count() as usize, KEYS);
    let described = ok(client.describe_table().table_name(TABLE).send().await);
    assert_eq!(
        described.table().and_then(|t| t.item_count()),
        Some(KEYS as i64)
    );
}
