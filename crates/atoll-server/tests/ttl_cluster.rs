//! Time to Live on a three-node `atoll dev-cluster` under failure: a table
//! with a stream and a global index holds 600 items, half of them expired;
//! Time to Live is turned on and the node leading the table's partition is
//! `kill -9`ed at once. The next leader sweeps: every expired item (and
//! only those) goes from the table and its index, each with exactly one
//! REMOVE record naming the service, read through the live nodes.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The test holds `exclusive()` (a std mutex) for its whole run, across
// awaits: every test has its own runtime, so this only serialises the tests.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType, PutRequest,
    ScalarAttributeType, Select, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification, WriteRequest,
};
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, ShardIteratorType};
use common::cluster::*;
use common::*;

const TABLE: &str = "ttl_failover";
const ITEMS: usize = 600;
/// Each leader sweeps this often.
const SWEEP_MS: &str = "300";
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The expired items are gone from the table and the index within this of
/// the kill (a new leader's election, then a few sweeps).
const GONE_WITHIN: Duration = Duration::from_secs(60);

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn create_table(client: &Client) -> Result<(), String> {
    let by_g = GlobalSecondaryIndex::builder()
        .index_name("by_g")
        .key_schema(key_element("g", KeyType::Hash))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(|e| e.to_string())?;
    let request = client
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(by_g)
        .stream_specification(stream);
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("ResourceInUse") => Ok(()),
        Err(e) => Err(error_text(e)),
    }
}

async fn active(client: &Client) -> Result<(), String> {
    let out = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(error_text)?;
    match out.table().and_then(|t| t.table_status()) {
        Some(TableStatus::Active) => Ok(()),
        other => Err(format!("table {other:?}")),
    }
}

/// Items counted by a Scan of the table (consistent) or of the index.
async fn count(client: &Client, index: Option<&str>) -> Result<i32, String> {
    let (mut total, mut start) = (0, None);
    loop {
        let out = client
            .scan()
            .table_name(TABLE)
            .set_index_name(index.map(str::to_string))
            .set_consistent_read(index.is_none().then_some(true))
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(error_text)?;
        total += out.count;
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(total),
        }
    }
}

/// The keys of the stream's REMOVE records, with how many each, read
/// through the node at `endpoint` (every shard from TRIM_HORIZON); fails if
/// one does not name the service.
async fn service_removes(endpoint: &str) -> Result<BTreeMap<String, usize>, String> {
    let client = retrying_client(endpoint);
    let streams = streams_client_at(endpoint);
    let arn = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(error_text)?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or("no stream")?;
    let described = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .map_err(error_text)?;
    let mut removes = BTreeMap::new();
    for shard in described
        .stream_description
        .ok_or("no description")?
        .shards()
    {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(error_text)?
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .map_err(error_text)?;
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                if record.event_name().map(|e| e.as_str()) != Some("REMOVE") {
                    continue;
                }
                let identity = record.user_identity().ok_or("a REMOVE without identity")?;
                if identity.principal_id() != Some("dynamodb.amazonaws.com") {
                    return Err(format!("a REMOVE by {identity:?}"));
                }
                if let Some(StreamValue::S(pk)) = record
                    .dynamodb()
                    .and_then(|d| d.keys())
                    .and_then(|k| k.get("pk"))
                {
                    *removes.entry(pk.clone()).or_insert(0) += 1;
                }
            }
            iterator = page.next_shard_iterator;
        }
    }
    Ok(removes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_items_go_after_the_sweeping_leader_is_killed() {
    let _exclusive = exclusive();
    let began = Instant::now();
    let cluster = DevCluster::start(3, &["--ttl-sweep-interval-ms", SWEEP_MS]);
    let fail = |what: String| -> ! { panic!("{what}\n{}", cluster.logs()) };
    let clients: BTreeMap<u8, Client> = cluster
        .ids()
        .map(|id| (id, retrying_client(cluster.endpoint(id))))
        .collect();
    retry(SETTLE_TIMEOUT, || create_table(&clients[&1]))
        .await
        .unwrap_or_else(|e| fail(format!("CreateTable: {e}")));
    for client in clients.values() {
        retry(SETTLE_TIMEOUT, || active(client))
            .await
            .unwrap_or_else(|e| fail(format!("not ACTIVE: {e}")));
    }

    // 600 items: even ones expired a minute ago, odd ones in an hour.
    let now = now_seconds();
    let mut expired = BTreeSet::new();
    let items: Vec<WriteRequest> = (0..ITEMS)
        .map(|i| {
            let pk = format!("item-{i:03}");
            let expiry = if i % 2 == 0 { now - 60 } else { now + 3600 };
            if i % 2 == 0 {
                expired.insert(pk.clone());
            }
            let put = PutRequest::builder()
                .item("pk", s(&pk))
                .item("g", s(&format!("g{}", i % 5)))
                .item("exp", n(&expiry.to_string()))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for chunk in items.chunks(25) {
        retry(SETTLE_TIMEOUT, || async {
            let out = clients[&1]
                .batch_write_item()
                .request_items(TABLE, chunk.to_vec())
                .send()
                .await
                .map_err(error_text)?;
            match out.unprocessed_items.unwrap_or_default().is_empty() {
                true => Ok(()),
                false => Err("unprocessed items".to_string()),
            }
        })
        .await
        .unwrap_or_else(|e| fail(format!("BatchWriteItem: {e}")));
    }

    // Time to Live on, and the leader of the table's partition killed at once.
    let report = admin(cluster.endpoint(1)).await;
    let leader = partitions(&report, TABLE)
        .first()
        .and_then(|p| p["leader"].as_u64())
        .unwrap_or_else(|| fail(format!("no leader of {TABLE}")));
    let victim = u8::try_from(leader).unwrap();
    let survivor = cluster.ids().find(|id| *id != victim).unwrap();
    ok(clients[&survivor]
        .update_time_to_live()
        .table_name(TABLE)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("exp")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await);
    cluster.kill9(victim);
    let killed_at = Instant::now();
    eprintln!("TTL on; kill -9 node {victim}, the leader of {TABLE}");

    let live: Vec<u8> = cluster.ids().filter(|id| *id != victim).collect();
    let client = &clients[&live[0]];
    let table_left = retry(GONE_WITHIN, || async {
        match count(client, None).await? {
            left if left == (ITEMS / 2) as i32 => Ok(left),
            left => Err(format!("{left} items in the table")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(format!("the expired items are not gone: {e}")));
    let took = killed_at.elapsed();
    retry(GONE_WITHIN, || async {
        match count(client, Some("by_g")).await? {
            left if left == (ITEMS / 2) as i32 => Ok(left),
            left => Err(format!("{left} entries in the index")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(format!("the index still holds expired items: {e}")));
    eprintln!("{table_left} items left {took:?} after the kill");

    let removes = retry(GONE_WITHIN, || async {
        let removes = service_removes(cluster.endpoint(live[1])).await?;
        match removes.len() == expired.len() {
            true => Ok(removes),
            false => Err(format!("{} REMOVE records so far", removes.len())),
        }
    })
    .await
    .unwrap_or_else(|e| fail(format!("stream: {e}")));
    let removed: BTreeSet<String> = removes.keys().cloned().collect();
    assert_eq!(removed, expired, "REMOVE records are the expired items");
    assert!(
        removes.values().all(|n| *n == 1),
        "one REMOVE each: {:?}",
        removes.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    eprintln!("done after {:?}", began.elapsed());
}
