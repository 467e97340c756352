//! Time to Live against the real binary: UpdateTimeToLive and
//! DescribeTimeToLive with DynamoDB's checks and texts, and expiry — 1,000
//! items, of which those whose expiry passed (and only those: not values
//! over five years old, not strings) disappear from the table and its
//! global index within the configured sweep, each with exactly one REMOVE
//! stream record that names the service.
//!
//! Expectations come from DynamoDB's documentation and observed behaviour
//! (`docs/research/streams-ttl.md` §6).

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType,
    PutRequest, ScalarAttributeType as Sat, Select, StreamSpecification, StreamViewType,
    TimeToLiveSpecification, TimeToLiveStatus, WriteRequest,
};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use common::*;

const VE: &str = "ValidationException";
/// Sweeps every half second, so that expiry shows within a few seconds.
const SWEEP_MS: &str = "500";
/// Expired items are gone within this (a few sweeps, with room for a
/// loaded machine).
const GONE_WITHIN: Duration = Duration::from_secs(30);

fn spec(attribute: &str, enabled: bool) -> TimeToLiveSpecification {
    TimeToLiveSpecification::builder()
        .attribute_name(attribute)
        .enabled(enabled)
        .build()
        .unwrap()
}

async fn simple_table(client: &Client, name: &str) {
    ok(client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S))
        .send()
        .await);
}

async fn status(client: &Client, table: &str) -> (Option<TimeToLiveStatus>, Option<String>) {
    let out = ok(client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await);
    let description = out.time_to_live_description().unwrap();
    (
        description.time_to_live_status().cloned(),
        description.attribute_name().map(str::to_string),
    )
}

#[tokio::test]
async fn time_to_live_settings_are_checked_as_dynamodb_checks_them() {
    let server = TestServer::start_with_args(&["--ttl-change-interval-ms", "1500"]);
    let client = server.client();
    let table = "ttl-settings";
    simple_table(&client, table).await;
    assert_eq!(
        status(&client, table).await,
        (Some(TimeToLiveStatus::Disabled), None)
    );
    let update = |attribute: &str, enabled: bool| {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec(attribute, enabled))
            .send()
    };
    // Disabling what was never enabled.
    assert_error(
        update("exp", false).await,
        VE,
        "TimeToLive is already disabled",
    );
    // An empty attribute name (the SDK does not check lengths).
    assert_error(
        update("", true).await,
        VE,
        "1 validation error detected: Value '' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
    let answer = ok(update("exp", true).await);
    let echoed = answer.time_to_live_specification().unwrap();
    assert_eq!((echoed.attribute_name(), echoed.enabled()), ("exp", true));
    assert_eq!(
        status(&client, table).await,
        (Some(TimeToLiveStatus::Enabled), Some("exp".into()))
    );
    assert_error(
        update("exp", true).await,
        VE,
        "TimeToLive is already enabled",
    );
    let other = "TimeToLive is active on a different AttributeName: current AttributeName is exp";
    assert_error(update("other", true).await, VE, other);
    assert_error(update("other", false).await, VE, other);
    // A right change too soon after the last one.
    assert_error(
        update("exp", false).await,
        VE,
        "Time to live has been modified multiple times within a fixed interval",
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    ok(update("exp", false).await);
    assert_eq!(
        status(&client, table).await,
        (Some(TimeToLiveStatus::Disabled), None)
    );
    // Missing tables.
    let missing = "Requested resource not found: Table: ttl-nope not found";
    let result = client
        .update_time_to_live()
        .table_name("ttl-nope")
        .time_to_live_specification(spec("exp", true))
        .send()
        .await;
    assert_error(result, "ResourceNotFoundException", missing);
    let result = client
        .describe_time_to_live()
        .table_name("ttl-nope")
        .send()
        .await;
    assert_error(result, "ResourceNotFoundException", missing);
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Item `i` and whether it is expired: a quarter long past (expired), a
/// quarter in the future, and a tenth each over five years old, as a
/// string, and without the attribute (none of those expire).
fn ttl_item(i: usize, now: i64) -> (BTreeMap<String, AttributeValue>, bool) {
    let mut it = BTreeMap::from([
        ("pk".to_string(), s(&format!("k{i:04}"))),
        ("g".to_string(), s(&format!("g{}", i % 7))),
    ]);
    let (expiry, expired) = match i % 10 {
        0..=4 => (Some(n(&(now - 60 - i as i64).to_string())), true),
        5 | 6 => (Some(n(&(now + 3600).to_string())), false),
        7 => (Some(n(&(now - 6 * 365 * 24 * 3600).to_string())), false),
        8 => (Some(s(&(now - 60).to_string())), false),
        _ => (None, false),
    };
    if let Some(expiry) = expiry {
        it.insert("exp".to_string(), expiry);
    }
    (it, expired)
}

async fn count(client: &Client, table: &str, index: Option<&str>) -> i32 {
    let (mut total, mut start) = (0, None);
    loop {
        let out = ok(client
            .scan()
            .table_name(table)
            .set_index_name(index.map(str::to_string))
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await);
        total += out.count;
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return total,
        }
    }
}

#[tokio::test]
async fn expired_items_go_from_the_table_its_index_and_leave_one_service_record_each() {
    let server = TestServer::start_with_args(&["--ttl-sweep-interval-ms", SWEEP_MS]);
    let (client, streams) = (server.client(), server.streams_client());
    let table = "ttl-expiry";
    let by_g = GlobalSecondaryIndex::builder()
        .index_name("by_g")
        .key_schema(key_element("g", KeyType::Hash))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .unwrap();
    ok(client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S))
        .attribute_definitions(attr_def("g", Sat::S))
        .global_secondary_indexes(by_g)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await);
    let now = now_seconds();
    let mut expired: BTreeSet<String> = BTreeSet::new();
    let items: Vec<(BTreeMap<String, AttributeValue>, bool)> =
        (0..1000).map(|i| ttl_item(i, now)).collect();
    for chunk in items.chunks(25) {
        let writes: Vec<WriteRequest> = chunk
            .iter()
            .map(|(it, _)| {
                let put = PutRequest::builder()
                    .set_item(Some(it.clone().into_iter().collect()))
                    .build()
                    .unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let out = ok(client
            .batch_write_item()
            .request_items(table, writes)
            .send()
            .await);
        assert!(out.unprocessed_items.unwrap_or_default().is_empty());
    }
    for (it, is_expired) in &items {
        if *is_expired && let Some(AttributeValue::S(pk)) = it.get("pk") {
            expired.insert(pk.clone());
        }
    }
    assert_eq!(expired.len(), 500);
    // Expired items are read until the sweep deletes them.
    let before = ok(client
        .get_item()
        .table_name(table)
        .key("pk", s("k0000"))
        .send()
        .await);
    assert!(
        before.item.is_some(),
        "an expired item is read until deleted"
    );

    let enabled_at = Instant::now();
    ok(client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec("exp", true))
        .send()
        .await);
    loop {
        let left = count(&client, table, None).await;
        if left == 500 {
            break;
        }
        assert!(
            enabled_at.elapsed() < GONE_WITHIN,
            "{left} items left {GONE_WITHIN:?} after TTL was enabled (500 should stay)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = enabled_at.elapsed();
    eprintln!("500 expired items deleted {took:?} after TTL was enabled");
    // The index follows (it is eventually consistent).
    loop {
        let entries = count(&client, table, Some("by_g")).await;
        if entries == 500 {
            break;
        }
        assert!(
            enabled_at.elapsed() < GONE_WITHIN,
            "the index still holds {entries} entries"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Which items stay: exactly the unexpired ones.
    for (it, is_expired) in items.iter().step_by(37) {
        let key = it.get("pk").unwrap().clone();
        let got = ok(client
            .get_item()
            .table_name(table)
            .key("pk", key)
            .send()
            .await);
        assert_eq!(got.item.is_none(), *is_expired, "{it:?}");
    }

    // One REMOVE per expired item, marked as the service's, with its old image.
    let arn = ok(client.describe_table().table_name(table).send().await)
        .table
        .and_then(|t| t.latest_stream_arn)
        .unwrap();
    let described = ok(streams.describe_stream().stream_arn(&arn).send().await);
    let mut removes: BTreeMap<String, usize> = BTreeMap::new();
    for shard in described.stream_description.unwrap().shards() {
        let mut iterator = ok(streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await)
        .shard_iterator;
        while let Some(current) = iterator {
            let page = ok(streams.get_records().shard_iterator(current).send().await);
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                let event = record.event_name().map(|e| e.as_str().to_string());
                if event.as_deref() != Some("REMOVE") {
                    assert!(
                        record.user_identity().is_none(),
                        "a user write names no identity"
                    );
                    continue;
                }
                let identity = record
                    .user_identity()
                    .expect("a TTL REMOVE names the service");
                assert_eq!(identity.r#type(), Some("Service"));
                assert_eq!(identity.principal_id(), Some("dynamodb.amazonaws.com"));
                let data = record.dynamodb().unwrap();
                let old = data.old_image().expect("the old image");
                assert!(old.contains_key("exp"), "{old:?}");
                if let Some(aws_sdk_dynamodbstreams::types::AttributeValue::S(pk)) =
                    data.keys().and_then(|k| k.get("pk"))
                {
                    *removes.entry(pk.clone()).or_insert(0) += 1;
                }
            }
            iterator = page.next_shard_iterator;
        }
    }
    let removed: BTreeSet<String> = removes.keys().cloned().collect();
    assert_eq!(removed, expired, "REMOVE records are the expired items");
    assert!(removes.values().all(|n| *n == 1), "one REMOVE each");
}
