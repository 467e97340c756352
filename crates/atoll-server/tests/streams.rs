//! DynamoDB Streams against the real binary, through `aws-sdk-dynamodbstreams`
//! on the DynamoDB port (`DynamoDBStreams_20120810.*`): the stream a table is
//! created with (DescribeTable, ListStreams, DescribeStream and DynamoDB's
//! formats of labels, ARNs, shard ids and sequence numbers); the records
//! writes make (one per actual item change, none for a write that changes
//! nothing), in order, with the images each view type keeps; the four
//! iterator types, GetRecords' Limit and its empty reads; a stream turned off
//! (its shards closed, still readable) and on again (a new stream); the
//! errors of the Streams operations; and records that survive a restart.
//!
//! Expectations come from DynamoDB's documented and observed behaviour
//! (`docs/research/streams-ttl.md` §2-§5), not from Atoll's code.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, DeleteRequest, KeyType, PutRequest, ScalarAttributeType as Sat,
    StreamSpecification, StreamViewType as TableViewType, TableDescription, WriteRequest,
};
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::operation::list_streams::ListStreamsOutput;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue as StreamValue, Record, Shard, ShardIteratorType as Iter, StreamDescription,
    StreamStatus,
};
use common::*;
use serde_json::{Map, Value, json};

type Item = HashMap<String, AttributeValue>;

const VE: &str = "ValidationException";
const RNF: &str = "ResourceNotFoundException";
/// A stream label: UTC time of the enabling request, milliseconds, no zone
/// (`9` is any digit).
const LABEL_SHAPE: &str = "9999-99-99T99:99:99.999";
/// What follows `shardId-`: 20 digits of epoch milliseconds, a dash and 8
/// lowercase hexadecimal digits (`x`).
const SHARD_ID_SHAPE: &str = "99999999999999999999-xxxxxxxx";
/// How long records may take to show in the stream.
const VISIBLE_WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// Clients and tables
// ---------------------------------------------------------------------------

/// A DynamoDB Streams client for `server` (see `TestServer::streams_client`).
fn streams_client(server: &TestServer) -> StreamsClient {
    server.streams_client()
}

fn spec(enabled: bool, view: Option<&str>) -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(enabled)
        .set_stream_view_type(view.map(TableViewType::from))
        .build()
        .unwrap()
}

/// Creates an on-demand table with a `pk` S hash key and a stream of
/// `view` (a StreamViewType name); returns its LatestStreamArn once ACTIVE.
async fn create_stream_table(client: &Client, name: &str, view: &str) -> String {
    ok(client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S))
        .stream_specification(spec(true, Some(view)))
        .send()
        .await);
    wait_active(client, name).await;
    describe_table(client, name)
        .await
        .latest_stream_arn()
        .expect("a table created with a stream has a LatestStreamArn")
        .to_string()
}

async fn describe_table(client: &Client, name: &str) -> TableDescription {
    ok(client.describe_table().table_name(name).send().await)
        .table
        .expect("DescribeTable has Table")
}

async fn put(client: &Client, table: &str, item: Item) {
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await);
}

/// `SET #a = :v` on the item with key `pk`.
async fn set(client: &Client, table: &str, pk: &str, attr: &str, value: AttributeValue) {
    ok(client
        .update_item()
        .table_name(table)
        .key("pk", s(pk))
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", attr)
        .expression_attribute_values(":v", value)
        .send()
        .await);
}

async fn delete(client: &Client, table: &str, pk: &str) {
    ok(client
        .delete_item()
        .table_name(table)
        .key("pk", s(pk))
        .send()
        .await);
}

fn put_request(it: Item) -> WriteRequest {
    WriteRequest::builder()
        .put_request(PutRequest::builder().set_item(Some(it)).build().unwrap())
        .build()
}

fn delete_request(pk: &str) -> WriteRequest {
    WriteRequest::builder()
        .delete_request(
            DeleteRequest::builder()
                .set_key(Some(item([("pk", s(pk))])))
                .build()
                .unwrap(),
        )
        .build()
}

// ---------------------------------------------------------------------------
// Reading streams
// ---------------------------------------------------------------------------

async fn describe_stream(streams: &StreamsClient, arn: &str) -> StreamDescription {
    ok(streams.describe_stream().stream_arn(arn).send().await)
        .stream_description
        .expect("DescribeStream has StreamDescription")
}

async fn shards(streams: &StreamsClient, arn: &str) -> Vec<Shard> {
    describe_stream(streams, arn).await.shards().to_vec()
}

/// The stream's one open shard (a new single-partition table has one).
async fn open_shard(streams: &StreamsClient, arn: &str) -> String {
    let open: Vec<String> = shards(streams, arn)
        .await
        .iter()
        .filter(|shard| ending(shard).is_none())
        .map(|shard| shard.shard_id().unwrap().to_string())
        .collect();
    assert_eq!(open.len(), 1, "open shards of {arn}: {open:?}");
    open.into_iter().next().unwrap()
}

fn starting(shard: &Shard) -> Option<&str> {
    shard
        .sequence_number_range()
        .and_then(|range| range.starting_sequence_number())
}

fn ending(shard: &Shard) -> Option<&str> {
    shard
        .sequence_number_range()
        .and_then(|range| range.ending_sequence_number())
}

async fn iterator(
    streams: &StreamsClient,
    arn: &str,
    shard: &str,
    kind: Iter,
    sequence: Option<&str>,
) -> String {
    ok(streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_sequence_number(sequence.map(str::to_string))
        .send()
        .await)
    .shard_iterator
    .expect("GetShardIterator has ShardIterator")
}

/// Reads from `iterator` until a read comes back empty or the shard ends;
/// returns the records and the last NextShardIterator (`None`: the shard is
/// closed and was read to its end).
async fn drain(streams: &StreamsClient, iterator: String) -> (Vec<Record>, Option<String>) {
    let mut records = Vec::new();
    let mut it = iterator;
    loop {
        let out = ok(streams.get_records().shard_iterator(it).send().await);
        let page = out.records.unwrap_or_default();
        let empty = page.is_empty();
        records.extend(page);
        match out.next_shard_iterator {
            Some(next) if !empty => it = next,
            next => return (records, next),
        }
    }
}

/// Every record of the stream, shard by shard from TRIM_HORIZON, read again
/// until there are at least `at_least` (or [`VISIBLE_WITHIN`] passed).
async fn read_stream(streams: &StreamsClient, arn: &str, at_least: usize) -> Vec<Record> {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let mut records = Vec::new();
        for shard in shards(streams, arn).await {
            let shard = shard.shard_id().unwrap();
            let it = iterator(streams, arn, shard, Iter::TrimHorizon, None).await;
            records.extend(drain(streams, it).await.0);
        }
        if records.len() >= at_least || Instant::now() >= deadline {
            return records;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Reads from `iterator` until at least `at_least` records came (or
/// [`VISIBLE_WITHIN`] passed) and then an empty read.
async fn read_from(streams: &StreamsClient, iterator: String, at_least: usize) -> Vec<Record> {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    let mut records = Vec::new();
    let mut next = iterator;
    loop {
        let (more, after) = drain(streams, next).await;
        records.extend(more);
        let Some(after) = after else { return records };
        if records.len() >= at_least || Instant::now() >= deadline {
            return records;
        }
        next = after;
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------
// Records as a reader sees them
// ---------------------------------------------------------------------------

/// What a record says changed: event name, keys and images as DynamoDB
/// JSON (`None`: the member is absent).
#[derive(Debug, PartialEq)]
struct Change {
    event: String,
    keys: Value,
    new: Option<Value>,
    old: Option<Value>,
}

fn change(event: &str, keys: Value, new: Option<Value>, old: Option<Value>) -> Change {
    Change {
        event: event.to_string(),
        keys,
        new,
        old,
    }
}

fn changes(records: &[Record]) -> Vec<Change> {
    records
        .iter()
        .map(|record| {
            let d = record.dynamodb().expect("a record has dynamodb");
            Change {
                event: record
                    .event_name()
                    .map_or("<none>", |e| e.as_str())
                    .to_string(),
                keys: d.keys().map_or(Value::Null, image),
                new: d.new_image().map(image),
                old: d.old_image().map(image),
            }
        })
        .collect()
}

fn image(map: &HashMap<String, StreamValue>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect::<Map<String, Value>>(),
    )
}

fn value(v: &StreamValue) -> Value {
    match v {
        StreamValue::S(v) => json!({"S": v}),
        StreamValue::N(v) => json!({"N": v}),
        StreamValue::Bool(v) => json!({"BOOL": v}),
        StreamValue::Null(v) => json!({"NULL": v}),
        StreamValue::Ss(v) => json!({"SS": v}),
        StreamValue::Ns(v) => json!({"NS": v}),
        StreamValue::L(v) => json!({"L": v.iter().map(value).collect::<Vec<_>>()}),
        StreamValue::M(v) => json!({"M": image(v)}),
        other => json!({"unexpected": format!("{other:?}")}),
    }
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// `text` has `shape`'s length and, position by position, a digit where
/// `shape` has `9`, a lowercase hex digit where it has `x`, and the same
/// character elsewhere.
fn has_shape(text: &str, shape: &str) -> bool {
    text.len() == shape.len()
        && text.bytes().zip(shape.bytes()).all(|(t, s)| match s {
            b'9' => t.is_ascii_digit(),
            b'x' => t.is_ascii_digit() || (b'a'..=b'f').contains(&t),
            _ => t == s,
        })
}

fn is_sequence_number(text: &str) -> bool {
    (21..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// Sequence numbers compare as big integers.
fn cmp_sequence(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn sequence(record: &Record) -> &str {
    record
        .dynamodb()
        .and_then(|d| d.sequence_number())
        .expect("a record has a SequenceNumber")
}

/// What every record of a user's write shows, whatever its event; and
/// sequence numbers that grow strictly, eventIDs that differ.
#[track_caller]
fn check_records(records: &[Record], view: &str) {
    let now = unix_now();
    let mut ids = BTreeSet::new();
    for record in records {
        let id = record.event_id().unwrap_or_default();
        assert!(has_shape(id, &"x".repeat(32)), "eventID {id:?}: {record:?}");
        assert!(ids.insert(id), "eventID {id} twice");
        assert_eq!(record.event_version(), Some("1.1"), "{record:?}");
        assert_eq!(record.event_source(), Some("aws:dynamodb"), "{record:?}");
        assert_eq!(record.aws_region(), Some(REGION), "{record:?}");
        assert!(
            record.user_identity().is_none(),
            "userIdentity on a user's write: {record:?}"
        );
        let d = record.dynamodb().expect("a record has dynamodb");
        assert_eq!(
            d.stream_view_type().map(|v| v.as_str()),
            Some(view),
            "{record:?}"
        );
        assert!(
            d.size_bytes().is_some_and(|n| n > 0),
            "SizeBytes: {record:?}"
        );
        let seq = sequence(record);
        assert!(is_sequence_number(seq), "SequenceNumber {seq:?}");
        let created = d
            .approximate_creation_date_time()
            .expect("ApproximateCreationDateTime")
            .secs();
        assert!(
            (now - created).abs() <= 60,
            "ApproximateCreationDateTime {created}, now {now}"
        );
    }
    for pair in records.windows(2) {
        let (a, b) = (sequence(&pair[0]), sequence(&pair[1]));
        assert_eq!(
            cmp_sequence(a, b),
            Ordering::Less,
            "sequence numbers not increasing: {a} then {b}"
        );
    }
}

fn keys(pk: &str) -> Value {
    json!({"pk": {"S": pk}})
}

// ---------------------------------------------------------------------------
// The stream of a new table
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_table_created_with_a_stream_shows_it_everywhere() {
    let server = shared_server();
    let (client, streams) = (server.client(), streams_client(server));
    let name = "streams-describe";
    let arn = create_stream_table(&client, name, "NEW_AND_OLD_IMAGES").await;

    // DescribeTable: the stream's ARN is the table's, /stream/, its label.
    let table = describe_table(&client, name).await;
    let label = table.latest_stream_label().expect("LatestStreamLabel");
    assert!(has_shape(label, LABEL_SHAPE), "LatestStreamLabel {label:?}");
    let table_arn = table.table_arn().expect("TableArn");
    assert_eq!(arn, format!("{table_arn}/stream/{label}"));
    let stream_spec = table.stream_specification().expect("StreamSpecification");
    assert!(stream_spec.stream_enabled());
    assert_eq!(
        stream_spec.stream_view_type().map(|v| v.as_str()),
        Some("NEW_AND_OLD_IMAGES")
    );

    // ListStreams, with no arguments and with the table's name.
    let listed = |out: ListStreamsOutput| {
        out.streams()
            .iter()
            .map(|s| {
                (
                    s.stream_arn().unwrap_or_default().to_string(),
                    s.table_name().unwrap_or_default().to_string(),
                    s.stream_label().unwrap_or_default().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let ours = (arn.clone(), name.to_string(), label.to_string());
    let all = listed(ok(streams.list_streams().send().await));
    assert!(all.contains(&ours), "ListStreams {all:?} lacks {ours:?}");
    let of_table = listed(ok(streams.list_streams().table_name(name).send().await));
    assert_eq!(of_table, vec![ours]);

    // DescribeStream.
    let description = describe_stream(&streams, &arn).await;
    assert_eq!(description.stream_arn(), Some(arn.as_str()));
    assert_eq!(description.stream_label(), Some(label));
    assert_eq!(description.stream_status(), Some(&StreamStatus::Enabled));
    assert_eq!(
        description.stream_view_type().map(|v| v.as_str()),
        Some("NEW_AND_OLD_IMAGES")
    );
    assert_eq!(description.table_name(), Some(name));
    let key_schema: Vec<(&str, &str)> = description
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(key_schema, [("pk", "HASH")]);
    let created = description
        .creation_request_date_time()
        .expect("CreationRequestDateTime")
        .secs();
    assert!((unix_now() - created).abs() <= 60, "created at {created}");
    assert!(
        description.last_evaluated_shard_id().is_none(),
        "LastEvaluatedShardId with one page of shards"
    );
    let shards = description.shards();
    assert!(!shards.is_empty(), "no shards: {description:?}");
    for shard in shards {
        let id = shard.shard_id().unwrap_or_default();
        let shape_ok = id
            .strip_prefix("shardId-")
            .is_some_and(|rest| has_shape(rest, SHARD_ID_SHAPE));
        assert!(shape_ok, "ShardId {id:?}");
        // Consumers (the Kinesis adapter) read the middle part as the
        // shard's creation time in epoch milliseconds.
        let opened_ms: i64 = id[8..28].parse().unwrap();
        assert!(
            (unix_now() - opened_ms / 1000).abs() <= 60,
            "ShardId {id} opened at {opened_ms} ms"
        );
        let start = starting(shard).unwrap_or_default();
        assert!(
            is_sequence_number(start),
            "StartingSequenceNumber {start:?}"
        );
        assert_eq!(ending(shard), None, "an open shard has no end: {shard:?}");
        assert_eq!(shard.parent_shard_id(), None, "{shard:?}");
    }
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

#[tokio::test]
async fn each_item_change_makes_one_record_in_order() {
    let server = shared_server();
    let (client, streams) = (server.client(), streams_client(server));
    let name = "streams-records";
    let arn = create_stream_table(&client, name, "NEW_AND_OLD_IMAGES").await;

    let a1 = json!({"pk": {"S": "a"}, "v": {"S": "one"}, "n": {"N": "7"}});
    let a2 = json!({"pk": {"S": "a"}, "v": {"S": "two"}, "n": {"N": "7"}});
    let b = json!({"pk": {"S": "b"}, "v": {"S": "three"}});
    let c = json!({"pk": {"S": "c"}, "w": {"S": "x"}});
    let item_a1 = || item([("pk", s("a")), ("v", s("one")), ("n", n("7"))]);

    put(&client, name, item_a1()).await; // INSERT
    put(&client, name, item_a1()).await; // the same item: nothing
    set(&client, name, "a", "v", s("two")).await; // MODIFY, whole items
    set(&client, name, "a", "v", s("two")).await; // the same value: nothing
    delete(&client, name, "a").await; // REMOVE
    delete(&client, name, "a").await; // a missing item: nothing
    delete(&client, name, "never").await; // a missing item: nothing
    set(&client, name, "b", "v", s("three")).await; // creates it: INSERT
    let batch = ok(client
        .batch_write_item()
        .request_items(
            name,
            vec![
                put_request(item([("pk", s("c")), ("w", s("x"))])),
                delete_request("b"),
                delete_request("also-never"),
            ],
        )
        .send()
        .await);
    assert!(
        batch.unprocessed_items().is_none_or(|u| u.is_empty()),
        "{batch:?}"
    );

    let records = read_stream(&streams, &arn, 6).await;
    check_records(&records, "NEW_AND_OLD_IMAGES");
    let mut seen = changes(&records);
    assert_eq!(seen.len(), 6, "records: {seen:#?}");
    // The batch's two items are different keys: DynamoDB orders records
    // per item only, so its two records may come either way.
    seen[4..].sort_by_key(|c| c.keys.to_string());
    assert_eq!(
        seen,
        [
            change("INSERT", keys("a"), Some(a1.clone()), None),
            change("MODIFY", keys("a"), Some(a2.clone()), Some(a1)),
            change("REMOVE", keys("a"), None, Some(a2)),
            change("INSERT", keys("b"), Some(b.clone()), None),
            change("REMOVE", keys("b"), None, Some(b)),
            change("INSERT", keys("c"), Some(c), None),
        ]
    );
}

#[tokio::test]
async fn view_types_choose_what_records_show() {
    let server = shared_server();
    let (client, streams) = (server.client(), streams_client(server));
    let k1 = json!({"pk": {"S": "k"}, "x": {"S": "1"}});
    let k2 = json!({"pk": {"S": "k"}, "x": {"S": "2"}});
    let cases = [
        (
            "streams-view-keys",
            "KEYS_ONLY",
            [
                change("INSERT", keys("k"), None, None),
                change("MODIFY", keys("k"), None, None),
                change("REMOVE", keys("k"), None, None),
            ],
        ),
        (
            "streams-view-new",
            "NEW_IMAGE",
            [
                change("INSERT", keys("k"), Some(k1.clone()), None),
                change("MODIFY", keys("k"), Some(k2.clone()), None),
                change("REMOVE", keys("k"), None, None),
            ],
        ),
        (
            "streams-view-old",
            "OLD_IMAGE",
            [
                change("INSERT", keys("k"), None, None),
                change("MODIFY", keys("k"), None, Some(k1.clone())),
                change("REMOVE", keys("k"), None, Some(k2.clone())),
            ],
        ),
    ];
    for (name, view, expected) in cases {
        let arn = create_stream_table(&client, name, view).await;
        put(&client, name, item([("pk", s("k")), ("x", s("1"))])).await;
        put(&client, name, item([("pk", s("k")), ("x", s("2"))])).await;
        delete(&client, name, "k").await;
        let records = read_stream(&streams, &arn, 3).await;
        check_records(&records, view);
        assert_eq!(changes(&records), expected, "{view}");
        if view == "KEYS_ONLY" {
            // SizeBytes is the size of what the record holds: here the key,
            // "pk" (2 bytes) and "k" (1 byte).
            let sizes: Vec<_> = records
                .iter()
                .map(|r| r.dynamodb().unwrap().size_bytes())
                .collect();
            assert_eq!(sizes, [Some(3), Some(3), Some(3)]);
        }
    }
}

// ---------------------------------------------------------------------------
// Iterators
// ---------------------------------------------------------------------------

#[tokio::test]
async fn iterators_start_where_they_are_asked_to() {
    let server = shared_server();
    let (client, streams) = (server.client(), streams_client(server));
    let name = "streams-iterators";
    let arn = create_stream_table(&client, name, "KEYS_ONLY").await;
    let shard = open_shard(&streams, &arn).await;
    let pks = |records: &[Record]| -> Vec<Value> {
        changes(records).into_iter().map(|c| c.keys).collect()
    };

    for pk in ["k1", "k2", "k3", "k4"] {
        put(&client, name, item([("pk", s(pk))])).await;
    }
    let all = read_stream(&streams, &arn, 4).await;
    assert_eq!(pks(&all), [keys("k1"), keys("k2"), keys("k3"), keys("k4")]);

    // LATEST, then a write: that write's record only.
    let latest = iterator(&streams, &arn, &shard, Iter::Latest, None).await;
    put(&client, name, item([("pk", s("k5"))])).await;
    let after_latest = read_from(&streams, latest, 1).await;
    assert_eq!(pks(&after_latest), [keys("k5")]);
    let all = read_stream(&streams, &arn, 5).await;
    check_records(&all, "KEYS_ONLY");
    assert_eq!(all.len(), 5);
    assert_eq!(after_latest, all[4..]);
    let seq: Vec<&str> = all.iter().map(sequence).collect();

    // AT_SEQUENCE_NUMBER starts with that record, AFTER_SEQUENCE_NUMBER
    // with the next one.
    let at = iterator(&streams, &arn, &shard, Iter::AtSequenceNumber, Some(seq[2])).await;
    let from_at = drain(&streams, at).await.0;
    assert_eq!(from_at, all[2..]);
    let after = iterator(
        &streams,
        &arn,
        &shard,
        Iter::AfterSequenceNumber,
        Some(seq[2]),
    )
    .await;
    let from_after = drain(&streams, after).await.0;
    assert_eq!(from_after, all[3..]);

    // Limit 2: two records, and a NextShardIterator that goes on from there.
    let mut it = iterator(&streams, &arn, &shard, Iter::TrimHorizon, None).await;
    let mut pages = Vec::new();
    for _ in 0..3 {
        let out = ok(streams
            .get_records()
            .shard_iterator(it)
            .limit(2)
            .send()
            .await);
        pages.push(out.records().to_vec());
        it = out.next_shard_iterator.expect("an open shard goes on");
    }
    assert_eq!(
        pages,
        [all[0..2].to_vec(), all[2..4].to_vec(), all[4..].to_vec()]
    );

    // Read to the end of an open shard: Records [] (present) and a next
    // iterator, which later gives the next write's record, once.
    let out = ok(streams.get_records().shard_iterator(it).send().await);
    assert_eq!(out.records.as_ref().map(Vec::len), Some(0), "{out:?}");
    let it = out
        .next_shard_iterator
        .expect("an empty read of an open shard has a NextShardIterator");
    put(&client, name, item([("pk", s("k6"))])).await;
    let later = read_from(&streams, it, 1).await;
    assert_eq!(pks(&later), [keys("k6")]);
    check_records(&[all, later].concat(), "KEYS_ONLY");
}

// ---------------------------------------------------------------------------
// Turning a stream off and on
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_disabled_stream_stays_readable_and_enabling_makes_a_new_one() {
    let server = shared_server();
    let (client, streams) = (server.client(), streams_client(server));
    let name = "streams-flip";
    let first = create_stream_table(&client, name, "KEYS_ONLY").await;
    let first_label = describe_table(&client, name)
        .await
        .latest_stream_label()
        .unwrap()
        .to_string();
    put(&client, name, item([("pk", s("before"))])).await;
    assert_eq!(read_stream(&streams, &first, 1).await.len(), 1);

    ok(client
        .update_table()
        .table_name(name)
        .stream_specification(spec(false, None))
        .send()
        .await);
    wait_active(&client, name).await;

    // The old stream: DISABLED, its shards closed.
    let description = describe_stream(&streams, &first).await;
    assert_eq!(description.stream_status(), Some(&StreamStatus::Disabled));
    assert_eq!(
        description.stream_view_type().map(|v| v.as_str()),
        Some("KEYS_ONLY")
    );
    assert_eq!(description.table_name(), Some(name));
    assert!(!description.shards().is_empty());
    for shard in description.shards() {
        let end = ending(shard).unwrap_or_else(|| panic!("a shard still open: {shard:?}"));
        assert!(is_sequence_number(end), "EndingSequenceNumber {end:?}");
        let start = starting(shard).unwrap_or_default();
        assert_ne!(cmp_sequence(end, start), Ordering::Less, "{shard:?}");
    }
    // The table keeps naming it, without a StreamSpecification.
    let table = describe_table(&client, name).await;
    assert_eq!(table.latest_stream_arn(), Some(first.as_str()));
    assert_eq!(table.latest_stream_label(), Some(first_label.as_str()));
    assert_eq!(table.stream_specification(), None);

    // A write now makes no record; the closed shard reads to its end with
    // no NextShardIterator.
    put(&client, name, item([("pk", s("while-off"))])).await;
    let shard = description.shards()[0].shard_id().unwrap().to_string();
    let it = iterator(&streams, &first, &shard, Iter::TrimHorizon, None).await;
    let out = ok(streams.get_records().shard_iterator(it).send().await);
    assert_eq!(
        changes(out.records()),
        [change("INSERT", keys("before"), None, None)]
    );
    assert_eq!(
        out.next_shard_iterator, None,
        "a closed shard read to its end"
    );

    // Enabling again (another view type): a new stream.
    let updated = ok(client
        .update_table()
        .table_name(name)
        .stream_specification(spec(true, Some("NEW_IMAGE")))
        .send()
        .await);
    let second = updated
        .table_description()
        .and_then(|t| t.latest_stream_arn())
        .expect("UpdateTable's answer names the new stream")
        .to_string();
    assert_ne!(second, first);
    wait_active(&client, name).await;
    let table = describe_table(&client, name).await;
    assert_eq!(table.latest_stream_arn(), Some(second.as_str()));
    let second_label = table.latest_stream_label().unwrap_or_default();
    assert!(has_shape(second_label, LABEL_SHAPE), "{second_label:?}");
    assert_ne!(second_label, first_label);
    assert!(
        second.ends_with(&format!("/stream/{second_label}")),
        "{second}"
    );
    let spec_now = table.stream_specification().expect("StreamSpecification");
    assert!(spec_now.stream_enabled());
    assert_eq!(
        spec_now.stream_view_type().map(|v| v.as_str()),
        Some("NEW_IMAGE")
    );

    let listed: BTreeSet<String> = ok(streams.list_streams().table_name(name).send().await)
        .streams()
        .iter()
        .map(|s| s.stream_arn().unwrap_or_default().to_string())
        .collect();
    assert_eq!(listed, BTreeSet::from([first.clone(), second.clone()]));
    let description = describe_stream(&streams, &second).await;
    assert_eq!(description.stream_status(), Some(&StreamStatus::Enabled));
    assert_eq!(
        description.stream_view_type().map(|v| v.as_str()),
        Some("NEW_IMAGE")
    );

    // Writes go to the new stream only.
    put(&client, name, item([("pk", s("after"))])).await;
    let records = read_stream(&streams, &second, 1).await;
    check_records(&records, "NEW_IMAGE");
    assert_eq!(
        changes(&records),
        [change(
            "INSERT",
            keys("after"),
            Some(json!({"pk": {"S": "after"}})),
            None
        )]
    );
    assert_eq!(
        changes(&read_stream(&streams, &first, 1).await),
        [change("INSERT", keys("before"), None, None)]
    );
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn streams_errors() {
    let server = shared_server();
    let (client, streams) = (server.client(), streams_client(server));
    let name = "streams-errors";
    let arn = create_stream_table(&client, name, "NEW_AND_OLD_IMAGES").await;
    let shard = open_shard(&streams, &arn).await;
    put(&client, name, item([("pk", s("x"))])).await;

    // Not a stream ARN at all (but of a legal length).
    assert_error(
        streams
            .describe_stream()
            .stream_arn("this-is-not-a-stream-arn-this-is-not-one-either")
            .send()
            .await,
        VE,
        "Invalid StreamArn",
    );
    // A well-formed ARN of a table that does not exist.
    let missing = arn.replace(&format!(":table/{name}/"), ":table/streams-no-such-table/");
    assert_ne!(missing, arn);
    assert_error(
        streams.describe_stream().stream_arn(&missing).send().await,
        RNF,
        &format!("Requested resource not found: Stream: {missing} not found"),
    );
    // A well-formed shard id the stream does not have.
    assert_error(
        streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id("shardId-00000000000000000001-00000000")
            .shard_iterator_type(Iter::TrimHorizon)
            .send()
            .await,
        RNF,
        "Requested resource not found: Shard does not exist",
    );
    // A sequence number missing where it is needed, given where it is not.
    let start = shards(&streams, &arn).await[0]
        .sequence_number_range()
        .and_then(|r| r.starting_sequence_number())
        .unwrap()
        .to_string();
    for (kind, sequence) in [
        (Iter::AtSequenceNumber, None),
        (Iter::AfterSequenceNumber, None),
        (Iter::TrimHorizon, Some(start.clone())),
        (Iter::Latest, Some(start.clone())),
    ] {
        let err = api_error(
            streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(&shard)
                .shard_iterator_type(kind.clone())
                .set_sequence_number(sequence.clone())
                .send()
                .await,
        );
        assert_eq!(err.code, VE, "{kind:?} with {sequence:?}: {err:?}");
    }
    // GetRecords' Limit is 1 to 1000.
    let it = iterator(&streams, &arn, &shard, Iter::TrimHorizon, None).await;
    for limit in [1001, 0, -1] {
        let err = api_error(
            streams
                .get_records()
                .shard_iterator(&it)
                .limit(limit)
                .send()
                .await,
        );
        assert_eq!(err.code, VE, "Limit {limit}: {err:?}");
        assert!(
            err.message.to_lowercase().contains("limit"),
            "Limit {limit}: {err:?}"
        );
    }
    let out = ok(streams
        .get_records()
        .shard_iterator(it)
        .limit(1000)
        .send()
        .await);
    assert_eq!(out.records().len(), 1);
    // Iterators that are not iterators.
    for junk in [
        "this-is-not-a-shard-iterator-this-is-not-one-either".to_string(),
        format!("{arn}|1|AAAAAAAAAAEvJp6D+zaQ"),
    ] {
        let err = api_error(streams.get_records().shard_iterator(&junk).send().await);
        assert_eq!(err.code, VE, "{junk}: {err:?}");
    }
}

// ---------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------

#[tokio::test]
async fn records_survive_a_restart() {
    let mut server = TestServer::start();
    let (client, streams) = (server.client(), streams_client(&server));
    let name = "streams-restart";
    let arn = create_stream_table(&client, name, "NEW_AND_OLD_IMAGES").await;
    put(&client, name, item([("pk", s("a")), ("v", s("1"))])).await;
    set(&client, name, "a", "v", s("2")).await;
    put(&client, name, item([("pk", s("b"))])).await;
    delete(&client, name, "a").await;
    let before = read_stream(&streams, &arn, 4).await;
    assert_eq!(before.len(), 4);
    let shards_before = shards(&streams, &arn).await;
    let shard = open_shard(&streams, &arn).await;
    let it = iterator(&streams, &arn, &shard, Iter::TrimHorizon, None).await;
    let first_two = ok(streams
        .get_records()
        .shard_iterator(it)
        .limit(2)
        .send()
        .await);
    assert_eq!(first_two.records(), &before[..2]);
    let saved = first_two.next_shard_iterator.expect("NextShardIterator");

    server.restart();
    let (client, streams) = (server.client(), streams_client(&server));
    wait_active(&client, name).await;

    assert_eq!(shards(&streams, &arn).await, shards_before);
    let after = read_stream(&streams, &arn, 4).await;
    assert_eq!(after, before);
    let seq1 = Some(sequence(&before[1]));
    let at = iterator(&streams, &arn, &shard, Iter::AtSequenceNumber, seq1).await;
    assert_eq!(drain(&streams, at).await.0, before[1..]);
    let after_1 = iterator(&streams, &arn, &shard, Iter::AfterSequenceNumber, seq1).await;
    assert_eq!(drain(&streams, after_1).await.0, before[2..]);
    // An iterator made before the restart goes on where it stopped.
    assert_eq!(drain(&streams, saved).await.0, before[2..]);

    // New writes follow the old records.
    put(&client, name, item([("pk", s("c"))])).await;
    let all = read_stream(&streams, &arn, 5).await;
    check_records(&all, "NEW_AND_OLD_IMAGES");
    assert_eq!(all[..4], before[..]);
    assert_eq!(
        changes(&all[4..]),
        [change(
            "INSERT",
            keys("c"),
            Some(json!({"pk": {"S": "c"}})),
            None
        )]
    );
}

/// Retention, shortened to seconds: records past it are trimmed (through
/// each partition's log), TRIM_HORIZON then starts after them, an iterator
/// or sequence number before the trim is TrimmedDataAccessException, and a
/// stream turned off is listed and readable only until its retention ends.
#[tokio::test]
async fn records_past_the_retention_are_trimmed() {
    const RETENTION_MS: u64 = 2_000;
    let server = TestServer::start_with_args(&[
        "--stream-retention-ms",
        "2000",
        "--ttl-sweep-interval-ms",
        "200",
    ]);
    let (client, streams) = (server.client(), streams_client(&server));
    let table = "streams-retention";
    let arn = create_stream_table(&client, table, "KEYS_ONLY").await;
    put(&client, table, item([("pk", s("old-1"))])).await;
    put(&client, table, item([("pk", s("old-2"))])).await;
    let shard = open_shard(&streams, &arn).await;
    let old = read_stream(&streams, &arn, 2).await;
    assert_eq!(old.len(), 2);
    let first_sequence = sequence(&old[0]).to_string();
    let early = iterator(&streams, &arn, &shard, Iter::TrimHorizon, None).await;

    // Past the retention a new write comes; the old records go.
    tokio::time::sleep(Duration::from_millis(RETENTION_MS + 200)).await;
    put(&client, table, item([("pk", s("new-1"))])).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let kept = loop {
        let records = read_stream(&streams, &arn, 1).await;
        let pks: Vec<Value> = changes(&records).into_iter().map(|c| c.keys).collect();
        if pks == [keys("new-1")] {
            break records;
        }
        assert!(
            Instant::now() < deadline,
            "the old records were not trimmed: {pks:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(kept.len(), 1);
    let trimmed = "The data you are trying to access has been trimmed";
    let read = streams.get_records().shard_iterator(early).send().await;
    assert_error(read, "TrimmedDataAccessException", trimmed);
    let at = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(&shard)
        .shard_iterator_type(Iter::AtSequenceNumber)
        .sequence_number(&first_sequence)
        .send()
        .await;
    assert_error(at, "TrimmedDataAccessException", trimmed);

    // A stream turned off stays listed for its retention, then goes.
    ok(client
        .update_table()
        .table_name(table)
        .stream_specification(spec(false, None))
        .send()
        .await);
    let listed = |arn: String| {
        let streams = streams.clone();
        async move {
            let out = ok(streams.list_streams().table_name(table).send().await);
            out.streams()
                .iter()
                .any(|s| s.stream_arn() == Some(arn.as_str()))
        }
    };
    assert!(
        listed(arn.clone()).await,
        "a stream just turned off is listed"
    );
    assert_eq!(
        describe_stream(&streams, &arn).await.stream_status(),
        Some(&aws_sdk_dynamodbstreams::types::StreamStatus::Disabled)
    );
    tokio::time::sleep(Duration::from_millis(RETENTION_MS + 200)).await;
    assert!(!listed(arn.clone()).await, "retention over: not listed");
    let gone = streams.describe_stream().stream_arn(&arn).send().await;
    assert_error(
        gone,
        "ResourceNotFoundException",
        &format!("Requested resource not found: Stream: {arn} not found"),
    );
}
