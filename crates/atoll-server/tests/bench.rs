//! `atoll bench` against the real server: setup creates the table, load
//! writes every item (one PutItem each, or BatchWriteItem batches), and a
//! run reports operations without errors, as text and as one JSON line.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use common::*;

fn bench(endpoint: &str, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .arg("bench")
        .args(args)
        .args(["--endpoint", endpoint])
        .output()
        .expect("run atoll bench");
    assert!(
        output.status.success(),
        "atoll bench {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json_line(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().expect("a report line");
    serde_json::from_str(line).expect("the report is one JSON line")
}

async fn count_items(server: &TestServer, table: &str) -> i32 {
    let client = server.client();
    let mut count = 0;
    let mut start = None;
    loop {
        let page = ok(client
            .scan()
            .table_name(table)
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await);
        count += page.count();
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return count;
        }
    }
}

#[tokio::test]
async fn setup_load_and_run_against_the_server() {
    let server = TestServer::start();
    let endpoint = server.endpoint().to_string();
    let data = ["--items", "260", "--partitions", "7", "--item-size", "300"];

    bench(&endpoint, &["setup", "--table", "single"]);
    let loaded = bench(
        &endpoint,
        &[&["load", "--table", "single", "--json"][..], &data[..]].concat(),
    );
    let report = json_line(&loaded);
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert_eq!(count_items(&server, "single").await, 260);

    bench(&endpoint, &["setup", "--table", "batched"]);
    let batch_args = ["load", "--table", "batched", "--batch", "25", "--json"];
    let loaded = bench(&endpoint, &[&batch_args[..], &data[..]].concat());
    let report = json_line(&loaded);
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert_eq!(count_items(&server, "batched").await, 260);

    // The batched load wrote the same items as the single one.
    let key = |table: &str| {
        server
            .client()
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("p3".into()))
            .key("sk", AttributeValue::S("s000000000003".into()))
            .consistent_read(true)
            .send()
    };
    let single = ok(key("single").await).item().cloned();
    let batched = ok(key("batched").await).item().cloned();
    assert!(single.is_some(), "item 3 is loaded");
    assert_eq!(single, batched);

    let run_args = [
        "run",
        "--table",
        "single",
        "--workload",
        "a",
        "--operations",
        "300",
        "--warmup",
        "0",
        "--concurrency",
        "4",
        "--json",
    ];
    let run = bench(&endpoint, &[&run_args[..], &data[..]].concat());
    let report = json_line(&run);
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert!(
        report["ops_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );

    let refused = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(["bench", "load", "--batch", "26", "--endpoint", &endpoint])
        .output()
        .expect("run atoll bench");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--batch must be between 1 and 25"));
}
