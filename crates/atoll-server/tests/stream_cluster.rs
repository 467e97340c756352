//! DynamoDB Streams on a three-node `atoll dev-cluster` under failure:
//! four writers put new versions of ~300 items (and sometimes delete them)
//! while the table splits by size and the node leading most of its
//! partitions is `kill -9`ed; once the writes stop, a consumer reads the
//! whole stream through the live nodes (DescribeStream paged, every shard
//! from TRIM_HORIZON, parents before children) and every acknowledged
//! write must show exactly once, in order, as the record it made; no
//! record twice, sequence numbers growing within each shard.
//!
//! The consumer is `aws-sdk-dynamodbstreams`, one client per live node,
//! built like `common::sdk_client` (no retries: the consumer retries a
//! failed call through the next live node itself).

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The test holds `exclusive()` (a std mutex) for its whole run, across
// awaits: every test has its own runtime, so this only serialises the tests.
#![allow(clippy::await_holding_lock)]

mod common;

use std::cmp::Ordering as Order;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    BillingMode, KeyType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
};
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue as StreamValue, Record, Shard, ShardIteratorType, StreamStatus,
};
use common::cluster::*;
use common::*;
use serde_json::Value;

const TABLE: &str = "stream_failover";
const ITEMS: usize = 300;
/// Items in play when the writes begin; the rest join over `GROW_FOR`.
const FIRST_ITEMS: usize = 60;
const GROW_FOR: Duration = Duration::from_secs(12);
const WRITERS: usize = 4;
/// Padding of each item (`pad`): ~400-byte items, so that 300 of them
/// are well over `SPLIT_BYTES`.
const PAD: usize = 380;
/// One write in this many (to an item already written) is a DeleteItem.
const DELETE_ONE_IN: usize = 6;
/// Partitions split past this size; checked every `CHECK_MS`.
const SPLIT_BYTES: &str = "32768";
const CHECK_MS: &str = "250";
/// The writers run this long in all...
const WRITE_FOR: Duration = Duration::from_secs(15);
/// ...and the node leading most of the table's partitions is killed this
/// long after they started.
const KILL_AFTER: Duration = Duration::from_secs(3);
/// One write is retried (through the live nodes) until acknowledged, for
/// at most this long; one attempt may take at most `ATTEMPT_TIMEOUT`.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Table creation and routing reach every node within this.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// One Streams call may take at most this...
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// ...and is retried through the live nodes for at most this.
const CALL_DEADLINE: Duration = Duration::from_secs(15);
/// The consumer finds every acknowledged write's record within this of
/// starting (it reads again, from where it stopped, while some are
/// missing: an open shard read "to its end" from a replica that lags).
const CONSUME_WITHIN: Duration = Duration::from_secs(20);
/// Once every record is read, the live nodes' shard lists must agree
/// within this (a replica may be behind).
const AGREE_WITHIN: Duration = Duration::from_secs(3);
/// A shard DescribeStream showed closed must end (no NextShardIterator)
/// within this of reading it.
const CLOSED_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Between two empty reads of a shard.
const EMPTY_PAUSE: Duration = Duration::from_millis(100);
/// DescribeStream and GetRecords page with these limits, so that paging
/// (ExclusiveStartShardId, NextShardIterator) is exercised.
const DESCRIBE_PAGE: i32 = 4;
const RECORDS_PAGE: i32 = 250;

fn pk_of(i: usize) -> String {
    format!("item-{i:03}")
}

fn seed() -> u64 {
    let seed = RandomState::new().hash_one(0u8);
    eprintln!("seed {seed:#x}");
    seed
}

// ---------------------------------------------------------------------------
// Table set-up
// ---------------------------------------------------------------------------

/// `pk` S HASH, on demand, a NEW_AND_OLD_IMAGES stream. A CreateTable
/// retried after it took effect answers ResourceInUse: done.
async fn create_stream_table(client: &Client) -> Result<(), String> {
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
        .stream_specification(stream);
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
        Err(e) => Err(error_text(e)),
    }
}

/// The table's LatestStreamArn, once DescribeTable through `client` shows
/// the table ACTIVE with its stream enabled.
async fn active_stream(client: &Client) -> Result<String, String> {
    let out = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(error_text)?;
    let table = out.table().ok_or("no table in DescribeTable")?;
    if table.table_status() != Some(&TableStatus::Active) {
        return Err(format!("table {:?}", table.table_status()));
    }
    let spec = table.stream_specification();
    if !spec.is_some_and(|s| s.stream_enabled()) {
        return Err(format!("stream specification {spec:?}"));
    }
    table
        .latest_stream_arn()
        .map(str::to_string)
        .ok_or_else(|| "no LatestStreamArn".to_string())
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

/// One write, as sent (again) until acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    /// PutItem `{pk, v: version, pad}`: a new version of the item.
    Put(u64),
    Delete,
}

/// How an attempt failed.
enum Failure {
    /// This test's mistake (ValidationException): fatal.
    Fatal(String),
    /// Nothing was sent (connection refused): it did not apply.
    Refused(String),
    /// It may or may not have applied (a timeout, a 5xx, a lost answer).
    Ambiguous(String),
}

/// Sends `write` of `pk` once (the client does not retry, so that every
/// attempt's outcome is seen here).
async fn send_write(client: &Client, pk: &str, write: Write) -> Result<(), Failure> {
    match write {
        Write::Put(version) => client
            .put_item()
            .table_name(TABLE)
            .item("pk", s(pk))
            .item("v", n(&version.to_string()))
            .item("pad", s(&"x".repeat(PAD)))
            .send()
            .await
            .map(|_| ())
            .map_err(classify),
        Write::Delete => client
            .delete_item()
            .table_name(TABLE)
            .key("pk", s(pk))
            .send()
            .await
            .map(|_| ())
            .map_err(classify),
    }
}

fn classify<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let fatal = e.code() == Some("ValidationException");
    let text = error_text(e);
    if fatal {
        Failure::Fatal(text)
    } else if text.contains("Connection refused") {
        Failure::Refused(text)
    } else {
        Failure::Ambiguous(text)
    }
}

/// What the writers saw.
#[derive(Default)]
struct Ledger {
    /// Per item, its acknowledged writes in order.
    history: BTreeMap<String, Vec<Write>>,
    /// Items one of whose attempts failed ambiguously (it may have
    /// applied, maybe late): the first such error.
    ambiguous: BTreeMap<String, String>,
    acknowledged: usize,
    puts: usize,
    deletes: usize,
    ambiguous_attempts: usize,
    refused_attempts: usize,
    /// A sample of the failed attempts' errors.
    errors: Vec<String>,
    slowest: Duration,
    /// Writes not acknowledged within `WRITE_DEADLINE`, or refused as
    /// invalid (fatal).
    gave_up: Vec<String>,
}

struct Writers {
    clients: BTreeMap<u8, Client>,
    /// The killed node (0: none yet); writers leave it alone.
    dead: AtomicU8,
    running: AtomicBool,
    ledger: Mutex<Ledger>,
}

impl Writers {
    fn live(&self) -> Vec<u8> {
        let dead = self.dead.load(Ordering::SeqCst);
        self.clients
            .keys()
            .copied()
            .filter(|id| *id != dead)
            .collect()
    }

    /// Sends `write` to `pk` through the live nodes in turn until one
    /// acknowledges it; records the outcome.
    async fn write_until_acknowledged(&self, pk: &str, write: Write, turn: &mut usize) {
        let began = Instant::now();
        loop {
            let live = self.live();
            let node = live[*turn % live.len()];
            *turn += 1;
            let attempt =
                tokio::time::timeout(ATTEMPT_TIMEOUT, send_write(&self.clients[&node], pk, write))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure::Ambiguous(format!(
                            "no answer within {ATTEMPT_TIMEOUT:?}"
                        )))
                    });
            let done = {
                let mut ledger = self.ledger.lock().unwrap();
                let describe = |e: &str| {
                    let e: String = e.chars().take(240).collect();
                    format!("{write:?} of {pk} through node {node}: {e}")
                };
                let failed = match attempt {
                    Ok(()) => {
                        ledger
                            .history
                            .entry(pk.to_string())
                            .or_default()
                            .push(write);
                        ledger.acknowledged += 1;
                        match write {
                            Write::Put(_) => ledger.puts += 1,
                            Write::Delete => ledger.deletes += 1,
                        }
                        ledger.slowest = ledger.slowest.max(began.elapsed());
                        None
                    }
                    Err(Failure::Fatal(e)) => {
                        ledger.gave_up.push(describe(&e));
                        return;
                    }
                    Err(Failure::Refused(e)) => {
                        ledger.refused_attempts += 1;
                        Some(describe(&e))
                    }
                    Err(Failure::Ambiguous(e)) => {
                        ledger.ambiguous_attempts += 1;
                        let e = describe(&e);
                        ledger
                            .ambiguous
                            .entry(pk.to_string())
                            .or_insert_with(|| e.clone());
                        Some(e)
                    }
                };
                match failed {
                    None => true,
                    Some(e) if began.elapsed() > WRITE_DEADLINE => {
                        ledger.gave_up.push(e);
                        true
                    }
                    Some(e) => {
                        if ledger.errors.len() < 20 {
                            ledger.errors.push(e);
                        }
                        false
                    }
                }
            };
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writer `w` owns the items `i % WRITERS == w` (so an item's writes
    /// are ordered). The items in play grow with time (`active_items`),
    /// so that the table keeps growing and splitting through the run.
    /// Every put is a new version (`v` one more than the item's last), so
    /// that no put leaves the item as it was.
    async fn run(self: Arc<Self>, w: usize, seed: u64, began: Instant) {
        let mut rng = Rng::new(seed);
        let mut turn = w;
        let mut versions = [0u64; ITEMS];
        let mut written = [false; ITEMS];
        while self.running.load(Ordering::SeqCst) {
            let active = active_items(began.elapsed());
            let owned: Vec<usize> = (w..active).step_by(WRITERS).collect();
            let fresh = owned.iter().copied().find(|i| !written[*i]);
            let i = match fresh {
                Some(i) if rng.below(3) == 0 => i,
                _ => owned[rng.below(owned.len())],
            };
            let write = if written[i] && rng.below(DELETE_ONE_IN) == 0 {
                Write::Delete
            } else {
                versions[i] += 1;
                Write::Put(versions[i])
            };
            written[i] = true;
            self.write_until_acknowledged(&pk_of(i), write, &mut turn)
                .await;
            if !self.ledger.lock().unwrap().gave_up.is_empty() {
                return;
            }
        }
    }
}

/// How many items are in play `elapsed` into the writes: `FIRST_ITEMS`,
/// then more and more until all `ITEMS` after `GROW_FOR`.
fn active_items(elapsed: Duration) -> usize {
    let grown = (ITEMS - FIRST_ITEMS) as f64 * (elapsed.as_secs_f64() / GROW_FOR.as_secs_f64());
    (FIRST_ITEMS + grown as usize).min(ITEMS)
}

// ---------------------------------------------------------------------------
// Expected and seen changes
// ---------------------------------------------------------------------------

/// What a record says happened to its item: its event and the `v` of its
/// images.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Change {
    event: String,
    new_v: Option<u64>,
    old_v: Option<u64>,
}

impl Change {
    /// `I3` (INSERT of v3), `M4<3` (MODIFY from v3 to v4), `R<4` (REMOVE
    /// of v4).
    fn short(&self) -> String {
        let v = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        match self.event.as_str() {
            "INSERT" if self.old_v.is_none() => format!("I{}", v(self.new_v)),
            "MODIFY" => format!("M{}<{}", v(self.new_v), v(self.old_v)),
            "REMOVE" if self.new_v.is_none() => format!("R<{}", v(self.old_v)),
            other => format!("{other}(new {:?}, old {:?})", self.new_v, self.old_v),
        }
    }
}

/// The records an item's acknowledged writes make, in order: a put makes
/// an INSERT or a MODIFY (it always changes the item: a new `v`), a delete
/// a REMOVE if there was an item, nothing otherwise.
fn expected_changes(history: &[Write]) -> Vec<Change> {
    let mut current: Option<u64> = None;
    let mut out = Vec::new();
    for write in history {
        match *write {
            Write::Put(version) => {
                let event = if current.is_some() {
                    "MODIFY"
                } else {
                    "INSERT"
                };
                out.push(Change {
                    event: event.into(),
                    new_v: Some(version),
                    old_v: current,
                });
                current = Some(version);
            }
            Write::Delete => {
                if let Some(old) = current.take() {
                    out.push(Change {
                        event: "REMOVE".into(),
                        new_v: None,
                        old_v: Some(old),
                    });
                }
            }
        }
    }
    out
}

/// A record as the consumer read it.
#[derive(Clone, Debug)]
struct Seen {
    change: Change,
    shard: String,
    sequence: String,
}

/// How an item's records compare with what its writes should have made.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Complete,
    /// So far a strict prefix: the rest may still come (a lagging replica).
    Missing,
    /// Different, whatever comes later.
    Wrong,
}

fn compare<T: PartialEq>(want: &[T], got: &[T]) -> Verdict {
    if want == got {
        Verdict::Complete
    } else if got.len() < want.len() && want[..got.len()] == *got {
        Verdict::Missing
    } else {
        Verdict::Wrong
    }
}

/// An item without an ambiguous attempt: its records are exactly its
/// writes' changes. An item with one: an attempt may have applied (even
/// after the write's acknowledged retry), adding records (and then a later
/// delete may find nothing to remove), so only the acknowledged puts are
/// checked: each version's first record, in order.
fn verdict(history: &[Write], seen: &[Seen], ambiguous: bool) -> Verdict {
    if !ambiguous {
        let got: Vec<Change> = seen.iter().map(|s| s.change.clone()).collect();
        return compare(&expected_changes(history), &got);
    }
    let want: Vec<u64> = history
        .iter()
        .filter_map(|w| match w {
            Write::Put(v) => Some(*v),
            Write::Delete => None,
        })
        .collect();
    let mut firsts: Vec<u64> = Vec::new();
    for v in seen.iter().filter_map(|s| s.change.new_v) {
        if !firsts.contains(&v) {
            firsts.push(v);
        }
    }
    compare(&want, &firsts)
}

// ---------------------------------------------------------------------------
// The consumer
// ---------------------------------------------------------------------------

/// A DynamoDB Streams client of the node at `endpoint` (no retries: the
/// consumer retries a failed call through the next live node itself).
fn streams_client(endpoint: &str) -> StreamsClient {
    streams_client_at(endpoint)
}

/// Compares two sequence numbers as the big integers they are.
fn sequence_cmp(a: &str, b: &str) -> Order {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn is_sequence_number(text: &str) -> bool {
    (21..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// A record's item key, change, sequence number and eventID; checks its
/// shape (the images are the item as written).
fn parse_record(record: &Record) -> Result<(String, Change, String, String), String> {
    let dynamodb = record.dynamodb().ok_or("no dynamodb")?;
    let pk = match dynamodb.keys().and_then(|keys| keys.get("pk")) {
        Some(StreamValue::S(pk)) => pk.clone(),
        other => return Err(format!("Keys.pk is {other:?}")),
    };
    let sequence = dynamodb
        .sequence_number()
        .filter(|s| is_sequence_number(s))
        .ok_or("no SequenceNumber of 21 to 40 digits")?
        .to_string();
    let event_id = record
        .event_id()
        .filter(|id| !id.is_empty())
        .ok_or("no eventID")?
        .to_string();
    let event = record
        .event_name()
        .ok_or("no eventName")?
        .as_str()
        .to_string();
    let version =
        |name: &str, image: Option<&HashMap<String, StreamValue>>| -> Result<Option<u64>, String> {
            let Some(image) = image else {
                return Ok(None);
            };
            if !matches!(image.get("pk"), Some(StreamValue::S(key)) if *key == pk) {
                return Err(format!("{name}.pk is not the key"));
            }
            if !matches!(image.get("pad"), Some(StreamValue::S(pad)) if pad.len() == PAD) {
                return Err(format!("{name}.pad is not as written"));
            }
            match image.get("v") {
                Some(StreamValue::N(v)) => v
                    .parse()
                    .map(Some)
                    .map_err(|e| format!("{name}.v.N {v:?}: {e}")),
                other => Err(format!("{name}.v is {other:?}")),
            }
        };
    let change = Change {
        event,
        new_v: version("NewImage", dynamodb.new_image())?,
        old_v: version("OldImage", dynamodb.old_image())?,
    };
    Ok((pk, change, sequence, event_id))
}

/// A shard as DescribeStream shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ShardInfo {
    parent: Option<String>,
    start: String,
    end: Option<String>,
}

/// A shard of a DescribeStream answer: its id and range.
fn parse_shard(shard: &Shard) -> Result<(String, ShardInfo), String> {
    let id = shard
        .shard_id()
        .ok_or_else(|| format!("a shard without ShardId: {shard:?}"))?
        .to_string();
    let range = shard.sequence_number_range();
    let info = ShardInfo {
        parent: shard.parent_shard_id().map(str::to_string),
        start: range
            .and_then(|r| r.starting_sequence_number())
            .ok_or_else(|| format!("a shard without StartingSequenceNumber: {shard:?}"))?
            .to_string(),
        end: range
            .and_then(|r| r.ending_sequence_number())
            .map(str::to_string),
    };
    Ok((id, info))
}

/// How far the consumer read a shard.
#[derive(Default)]
struct Progress {
    /// Where to go on from (an open shard read to its end so far).
    iterator: Option<String>,
    /// Read to its end: it is closed.
    drained: bool,
    records: usize,
    last_sequence: Option<String>,
    event_ids: BTreeSet<String>,
}

/// The consumer: reads the stream through the live nodes, keeping every
/// record per item in read order, and what went wrong.
struct Consumer {
    /// The live nodes and a client of each.
    nodes: Vec<(u8, StreamsClient)>,
    arn: String,
    turn: usize,
    shards: BTreeMap<String, ShardInfo>,
    progress: BTreeMap<String, Progress>,
    per_key: BTreeMap<String, Vec<Seen>>,
    /// eventID -> (shard, sequence number) of the record that had it.
    event_ids: HashMap<String, (String, String)>,
    /// Records of different shards with the same eventID (DynamoDB's are
    /// globally unique; this test requires them unique per shard).
    shared_event_ids: usize,
    shared_event_id_examples: Vec<String>,
    /// Records that break an invariant (fatal).
    problems: Vec<String>,
    records: usize,
    calls: usize,
    failed_calls: usize,
    get_records_calls: usize,
    empty_reads: usize,
    passes: usize,
    /// Shards left for a later pass, their parent not read to its end.
    deferred: BTreeSet<String>,
    /// How the live nodes' shard lists differed in the last pass.
    disagreement: Option<String>,
    /// A sample of the failed calls' errors.
    call_errors: Vec<String>,
    /// When every item's records were complete, from the start.
    complete_after: Option<Duration>,
}

impl Consumer {
    /// `op` (named `what`) through live node `node` if given, else
    /// through the live nodes in turn; retried for `CALL_DEADLINE`.
    async fn call<T, F, Fut>(&mut self, node: Option<usize>, what: &str, op: F) -> Result<T, String>
    where
        F: Fn(StreamsClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let deadline = Instant::now() + CALL_DEADLINE;
        let mut errors = Vec::new();
        loop {
            let (id, client) = self.nodes[node.unwrap_or(self.turn) % self.nodes.len()].clone();
            self.turn += 1;
            self.calls += 1;
            let attempt = tokio::time::timeout(CALL_TIMEOUT, op(client))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {CALL_TIMEOUT:?}")));
            match attempt {
                Ok(out) => return Ok(out),
                Err(e) => {
                    self.failed_calls += 1;
                    let e: String = e.chars().take(300).collect();
                    let e = format!("{what} via node {id}: {e}");
                    if self.call_errors.len() < 10 {
                        self.call_errors.push(e.clone());
                    }
                    if errors.len() < 6 {
                        errors.push(e);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("{what} failing for {CALL_DEADLINE:?}: {errors:#?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// DescribeStream through every live node, page by page. The shards
    /// the first live node lists are the ones read (a shard seen closed
    /// stays closed); the others' lists must name the same shards (a shard
    /// id is the same whichever replica answers), else `disagreement` says
    /// how they differ.
    async fn describe(&mut self) -> Result<(), String> {
        let mut views: Vec<(u8, BTreeMap<String, ShardInfo>)> = Vec::new();
        for at in 0..self.nodes.len() {
            let node = self.nodes[at].0;
            let view = self.describe_via(at).await?;
            views.push((node, view));
        }
        let (first, primary) = &views[0];
        self.disagreement = None;
        for (node, view) in &views[1..] {
            if view.keys().eq(primary.keys()) {
                continue;
            }
            let only = |a: &BTreeMap<String, ShardInfo>, b: &BTreeMap<String, ShardInfo>| {
                a.iter()
                    .filter(|(id, _)| !b.contains_key(*id))
                    .map(|(id, info)| format!("{id} (parent {:?})", info.parent))
                    .collect::<Vec<_>>()
            };
            self.disagreement = Some(format!(
                "shards only node {first} lists: {:#?}\nshards only node {node} lists: {:#?}",
                only(primary, view),
                only(view, primary)
            ));
        }
        let primary = views.swap_remove(0);
        for (id, info) in primary.1 {
            self.learn_shard(primary.0, id, info);
        }
        Ok(())
    }

    /// Every shard DescribeStream lists through live node `at`, paging
    /// with ExclusiveStartShardId.
    async fn describe_via(&mut self, at: usize) -> Result<BTreeMap<String, ShardInfo>, String> {
        let node = self.nodes[at].0;
        let mut view = BTreeMap::new();
        let mut start: Option<String> = None;
        for _ in 0..1000 {
            let (arn, after) = (self.arn.clone(), start.clone());
            let describe = |client: StreamsClient| {
                let (arn, after) = (arn.clone(), after.clone());
                async move {
                    client
                        .describe_stream()
                        .stream_arn(arn)
                        .limit(DESCRIBE_PAGE)
                        .set_exclusive_start_shard_id(after)
                        .send()
                        .await
                        .map_err(error_text)
                }
            };
            let what = format!("DescribeStream after {start:?}");
            let out = self.call(Some(at), &what, describe).await?;
            let description = out
                .stream_description
                .ok_or_else(|| format!("DescribeStream via node {node}: no StreamDescription"))?;
            if description.stream_status() != Some(&StreamStatus::Enabled) {
                self.problems.push(format!(
                    "DescribeStream via node {node}: StreamStatus {:?}",
                    description.stream_status()
                ));
            }
            let listed = description.shards();
            if listed.len() > DESCRIBE_PAGE as usize {
                self.problems.push(format!(
                    "DescribeStream via node {node}: {} shards on a page of Limit {DESCRIBE_PAGE}",
                    listed.len()
                ));
            }
            for shard in listed {
                let (id, info) = parse_shard(shard)?;
                if view.insert(id.clone(), info).is_some() {
                    self.problems
                        .push(format!("DescribeStream via node {node} lists {id} twice"));
                }
            }
            match description.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_string()),
                None => return Ok(view),
            }
        }
        Err(format!(
            "DescribeStream via node {node} does not stop paging"
        ))
    }

    /// Adds shard `id` as node `node` described it to the shards known.
    fn learn_shard(&mut self, node: u8, id: String, info: ShardInfo) {
        match self.shards.get_mut(&id) {
            None => {
                self.shards.insert(id, info);
            }
            Some(known) if known.parent != info.parent || known.start != info.start => {
                self.problems.push(format!(
                    "shard {id} changed: {known:?}, then via node {node} {info:?}"
                ));
            }
            Some(known) => match (&known.end, &info.end) {
                (None, Some(_)) => known.end = info.end,
                (Some(a), Some(b)) if a != b => self.problems.push(format!(
                    "shard {id} ends at {a}, then via node {node} at {b}"
                )),
                // Closed, then open: a replica behind the one seen before.
                _ => {}
            },
        }
    }

    /// Reads every shard not read to its end yet, parents before
    /// children: a shard whose parent is listed waits until the parent is
    /// read to its end (else for the next pass).
    async fn read_pass(&mut self) -> Result<(), String> {
        let mut visited: BTreeSet<String> = BTreeSet::new();
        loop {
            let next = self
                .shards
                .iter()
                .find(|(id, info)| {
                    let drained = |id: &String| self.progress.get(id).is_some_and(|p| p.drained);
                    let parent_done = match &info.parent {
                        Some(parent) if self.shards.contains_key(parent) => drained(parent),
                        _ => true,
                    };
                    !visited.contains(*id) && !drained(id) && parent_done
                })
                .map(|(id, _)| id.clone());
            let Some(id) = next else { break };
            visited.insert(id.clone());
            self.read_shard(&id).await?;
        }
        self.deferred = self
            .shards
            .keys()
            .filter(|id| !visited.contains(*id))
            .filter(|id| !self.progress.get(*id).is_some_and(|p| p.drained))
            .cloned()
            .collect();
        Ok(())
    }

    /// Reads shard `id` from where it was left (TRIM_HORIZON the first
    /// time) until it ends (no NextShardIterator) or, open, two reads in a
    /// row find nothing.
    async fn read_shard(&mut self, id: &str) -> Result<(), String> {
        let info = self.shards[id].clone();
        let saved = self.progress.get(id).and_then(|p| p.iterator.clone());
        let mut iterator = match saved {
            Some(iterator) => iterator,
            None => {
                let arn = self.arn.clone();
                let get_iterator = |client: StreamsClient| {
                    let (arn, shard) = (arn.clone(), id.to_string());
                    async move {
                        client
                            .get_shard_iterator()
                            .stream_arn(arn)
                            .shard_id(shard)
                            .shard_iterator_type(ShardIteratorType::TrimHorizon)
                            .send()
                            .await
                            .map_err(error_text)
                    }
                };
                let what = format!("GetShardIterator of {id}");
                self.call(None, &what, get_iterator)
                    .await?
                    .shard_iterator
                    .ok_or_else(|| format!("no ShardIterator for {id}"))?
            }
        };
        let began = Instant::now();
        let mut empties = 0;
        loop {
            let from = iterator.clone();
            let get_records = |client: StreamsClient| {
                let from = from.clone();
                async move {
                    client
                        .get_records()
                        .shard_iterator(from)
                        .limit(RECORDS_PAGE)
                        .send()
                        .await
                        .map_err(error_text)
                }
            };
            let what = format!("GetRecords of {id}");
            let out = self.call(None, &what, get_records).await?;
            self.get_records_calls += 1;
            let records = out.records.unwrap_or_else(|| {
                self.problems
                    .push(format!("GetRecords of {id}: an answer without Records"));
                Vec::new()
            });
            if records.len() > RECORDS_PAGE as usize {
                self.problems.push(format!(
                    "GetRecords of {id}: {} records for Limit {RECORDS_PAGE}",
                    records.len()
                ));
            }
            for record in &records {
                self.take(id, &info, record);
            }
            let progress = self.progress.entry(id.to_string()).or_default();
            let Some(next) = out.next_shard_iterator else {
                progress.drained = true;
                progress.iterator = None;
                return Ok(());
            };
            iterator = next;
            progress.iterator = Some(iterator.clone());
            if !records.is_empty() {
                empties = 0;
                continue;
            }
            empties += 1;
            self.empty_reads += 1;
            if info.end.is_none() && empties >= 2 {
                return Ok(()); // open, and caught up
            }
            if info.end.is_some() && began.elapsed() > CLOSED_DRAIN_TIMEOUT {
                self.problems.push(format!(
                    "shard {id}, closed ({info:?}), still answers no records with a NextShardIterator {CLOSED_DRAIN_TIMEOUT:?} into its read ({} records read)",
                    progress.records
                ));
                return Ok(());
            }
            tokio::time::sleep(EMPTY_PAUSE).await;
        }
    }

    /// Checks one record of shard `id` and files it under its item.
    fn take(&mut self, id: &str, info: &ShardInfo, record: &Record) {
        let (pk, change, sequence, event_id) = match parse_record(record) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.problems
                    .push(format!("shard {id}: a malformed record ({e}): {record:?}"));
                return;
            }
        };
        self.records += 1;
        let before_start = sequence_cmp(&sequence, &info.start) == Order::Less;
        let after_end = info
            .end
            .as_ref()
            .is_some_and(|end| sequence_cmp(&sequence, end) == Order::Greater);
        if before_start || after_end {
            self.problems.push(format!(
                "shard {id}: record {sequence} ({pk} {}) outside the shard's range {info:?}",
                change.short()
            ));
        }
        let progress = self.progress.entry(id.to_string()).or_default();
        if let Some(last) = &progress.last_sequence
            && sequence_cmp(&sequence, last) != Order::Greater
        {
            self.problems.push(format!(
                "shard {id}: record {sequence} ({pk} {}) after record {last}",
                change.short()
            ));
        }
        progress.last_sequence = Some(sequence.clone());
        progress.records += 1;
        if !progress.event_ids.insert(event_id.clone()) {
            self.problems.push(format!(
                "shard {id}: eventID {event_id} twice (again at record {sequence})"
            ));
        }
        let place = (id.to_string(), sequence.clone());
        if let Some((shard, other)) = self.event_ids.insert(event_id.clone(), place)
            && shard != id
        {
            self.shared_event_ids += 1;
            if self.shared_event_id_examples.len() < 5 {
                self.shared_event_id_examples.push(format!(
                    "eventID {event_id}: shard {shard} record {other} and shard {id} record {sequence} ({pk} {})",
                    change.short()
                ));
            }
        }
        self.per_key.entry(pk).or_default().push(Seen {
            change,
            shard: id.to_string(),
            sequence,
        });
    }

    /// Each item's verdict (items with records but no writes count as wrong).
    fn verdicts(&self, ledger: &Ledger) -> BTreeMap<String, Verdict> {
        let keys: BTreeSet<&String> = ledger.history.keys().chain(self.per_key.keys()).collect();
        keys.into_iter()
            .map(|pk| {
                let history = ledger.history.get(pk).map_or(&[][..], Vec::as_slice);
                let seen = self.per_key.get(pk).map_or(&[][..], Vec::as_slice);
                let ambiguous = ledger.ambiguous.contains_key(pk);
                (pk.clone(), verdict(history, seen, ambiguous))
            })
            .collect()
    }

    /// Reads the stream, pass after pass, until every item's records are
    /// complete (or one is wrong for good), or `CONSUME_WITHIN` passes.
    async fn consume(&mut self, ledger: &Ledger) -> Result<(), String> {
        let began = Instant::now();
        let deadline = began + CONSUME_WITHIN;
        loop {
            self.passes += 1;
            self.describe().await?;
            self.read_pass().await?;
            let verdicts = self.verdicts(ledger);
            let missing = verdicts
                .values()
                .filter(|v| **v == Verdict::Missing)
                .count();
            let wrong = verdicts
                .iter()
                .filter(|(pk, v)| **v == Verdict::Wrong && !ledger.ambiguous.contains_key(*pk))
                .count();
            eprintln!(
                "consumer pass {}: {} shards known, {} records so far, {missing} items still missing records, {wrong} wrong, {} shards deferred, the live nodes list {} shards",
                self.passes,
                self.shards.len(),
                self.records,
                self.deferred.len(),
                if self.disagreement.is_some() {
                    "different"
                } else {
                    "the same"
                }
            );
            let complete = missing == 0 && self.deferred.is_empty();
            if complete && self.complete_after.is_none() {
                self.complete_after = Some(began.elapsed());
            }
            // The nodes' shard lists may differ while a replica catches up.
            let agreement_settled = self.disagreement.is_none()
                || self
                    .complete_after
                    .is_some_and(|at| began.elapsed() >= at + AGREE_WITHIN);
            if (complete && agreement_settled) || wrong > 0 || Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// An item's records for a message: `M4<3@shard#seq`, the shard and
/// sequence number shortened.
fn show_seen(seen: &[Seen]) -> String {
    let parts: Vec<String> = seen
        .iter()
        .map(|s| {
            let shard = s.shard.rsplit('-').next().unwrap_or(&s.shard);
            let sequence = s.sequence.trim_start_matches('0');
            format!("{}@{shard}#{sequence}", s.change.short())
        })
        .collect();
    format!("[{}]", parts.join(" "))
}

fn show_changes(changes: &[Change]) -> String {
    let parts: Vec<String> = changes.iter().map(Change::short).collect();
    format!("[{}]", parts.join(" "))
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

/// Partition counts and leaders of the table in an admin report.
fn layout(report: &Value) -> String {
    let parts = partitions(report, TABLE);
    let leaders: Vec<String> = parts
        .iter()
        .map(|p| {
            format!(
                "g{}:{}:{}B",
                p["group_id"],
                p["leader"].as_u64().map_or("-".into(), |l| l.to_string()),
                p["size_bytes"]
            )
        })
        .collect();
    format!(
        "{TABLE}: {} partition(s) [group:leader:size] {leaders:?}",
        parts.len()
    )
}

/// The scenario: writes that keep making new versions of items (and
/// deleting some), the table splitting by size, the node leading most of
/// its partitions killed `KILL_AFTER` into the writes; once they stop,
/// the stream holds each acknowledged write's record exactly once, in
/// order, in shards that chain parent to child.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_records_survive_leader_kill_and_splits_exactly_once_in_order() {
    let _exclusive = exclusive();
    let began = Instant::now();
    let cluster = DevCluster::start(
        3,
        &[
            "--partition-split-bytes",
            SPLIT_BYTES,
            "--partition-check-ms",
            CHECK_MS,
        ],
    );
    let fail = |what: String| -> ! { panic!("{what}\n{}", cluster.logs()) };
    let clients: BTreeMap<u8, Client> = cluster.ids().map(|id| (id, cluster.client(id))).collect();
    retry(SETTLE_TIMEOUT, || create_stream_table(&clients[&1]))
        .await
        .unwrap_or_else(|e| fail(format!("CreateTable: {e}")));
    let mut arns = BTreeSet::new();
    for (id, client) in &clients {
        let arn = retry(SETTLE_TIMEOUT, || active_stream(client))
            .await
            .unwrap_or_else(|e| fail(format!("not ACTIVE with a stream through node {id}: {e}")));
        arns.insert(arn);
    }
    assert_eq!(arns.len(), 1, "the nodes name different streams: {arns:?}");
    let arn = arns.pop_first().unwrap();
    eprintln!(
        "3 nodes serving, {TABLE} ACTIVE with stream {arn} on every node after {:?}",
        began.elapsed()
    );

    // The writers.
    let seed = seed();
    let writers = Arc::new(Writers {
        clients: clients.clone(),
        dead: AtomicU8::new(0),
        running: AtomicBool::new(true),
        ledger: Mutex::new(Ledger::default()),
    });
    let writing = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let writers = writers.clone();
            let seed = seed
                .wrapping_add(w as u64)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
            tokio::spawn(writers.run(w, seed, writing))
        })
        .collect();

    // While they write: watch the layout (noting every split), and kill
    // the node leading most of the table's partitions at KILL_AFTER.
    let mut killed: Option<u8> = None;
    let mut count = 1;
    let mut splits: Vec<String> = Vec::new();
    while writing.elapsed() < WRITE_FOR {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let observer = cluster.ids().find(|id| Some(*id) != killed).unwrap();
        let report = admin(cluster.endpoint(observer)).await;
        let now = partitions(&report, TABLE).len();
        if now != count {
            let when = if killed.is_some() { "after" } else { "before" };
            splits.push(format!(
                "{:?} ({when} the kill): {count} -> {now} partitions",
                writing.elapsed()
            ));
            count = now;
        }
        if killed.is_none() && writing.elapsed() >= KILL_AFTER {
            let mut leading: BTreeMap<u64, usize> = BTreeMap::new();
            for part in partitions(&report, TABLE) {
                if let Some(leader) = part["leader"].as_u64() {
                    *leading.entry(leader).or_insert(0) += 1;
                }
            }
            let Some((&leader, _)) = leading.iter().max_by_key(|(_, count)| **count) else {
                continue; // no leader known right now: look again
            };
            let victim = u8::try_from(leader).expect("node id");
            eprintln!(
                "kill -9 node {victim}, leading {leading:?} of {TABLE}'s partitions, {:?} into the writes; {} writes acknowledged so far; {}",
                writing.elapsed(),
                writers.ledger.lock().unwrap().acknowledged,
                layout(&report)
            );
            cluster.kill9(victim);
            writers.dead.store(victim, Ordering::SeqCst);
            killed = Some(victim);
        }
    }
    writers.running.store(false, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("writer task");
    }
    let killed = killed.unwrap_or_else(|| fail("no leader of the table to kill".into()));
    {
        let ledger = writers.ledger.lock().unwrap();
        eprintln!(
            "writers stopped after {:?}: {} writes acknowledged ({} puts, {} deletes) to {} items; {} ambiguous and {} refused attempts (retried), {} items with an ambiguous attempt; slowest write {:?}; first errors: {:#?}",
            writing.elapsed(),
            ledger.acknowledged,
            ledger.puts,
            ledger.deletes,
            ledger.history.len(),
            ledger.ambiguous_attempts,
            ledger.refused_attempts,
            ledger.ambiguous.len(),
            ledger.slowest,
            ledger.errors.iter().take(8).collect::<Vec<_>>()
        );
        eprintln!("splits seen while writing: {splits:#?}");
        if !ledger.gave_up.is_empty() {
            fail(format!(
                "writes not acknowledged within {WRITE_DEADLINE:?}: {:#?}",
                ledger.gave_up
            ));
        }
        assert!(
            ledger.acknowledged > ITEMS,
            "only {} writes acknowledged",
            ledger.acknowledged
        );
    }

    // The consumer, through the live nodes.
    let live: Vec<u8> = cluster.ids().filter(|id| *id != killed).collect();
    let mut consumer = Consumer {
        nodes: live
            .iter()
            .map(|id| (*id, streams_client(cluster.endpoint(*id))))
            .collect(),
        arn,
        turn: 0,
        shards: BTreeMap::new(),
        progress: BTreeMap::new(),
        per_key: BTreeMap::new(),
        event_ids: HashMap::new(),
        shared_event_ids: 0,
        shared_event_id_examples: Vec::new(),
        problems: Vec::new(),
        records: 0,
        calls: 0,
        failed_calls: 0,
        get_records_calls: 0,
        empty_reads: 0,
        passes: 0,
        deferred: BTreeSet::new(),
        disagreement: None,
        call_errors: Vec::new(),
        complete_after: None,
    };
    let consuming = Instant::now();
    let ledger = writers.ledger.lock().unwrap();
    if let Err(e) = consumer.consume(&ledger).await {
        fail(format!("the stream is unreadable: {e}"));
    }
    let took = consuming.elapsed();

    // Figures.
    let closed = consumer.shards.values().filter(|s| s.end.is_some()).count();
    let children: Vec<(&String, &String)> = consumer
        .shards
        .iter()
        .filter_map(|(id, s)| s.parent.as_ref().map(|p| (id, p)))
        .collect();
    let per_shard: Vec<String> = consumer
        .shards
        .iter()
        .map(|(id, s)| {
            let p = consumer.progress.get(id);
            format!(
                "{id} parent {} {} {} records",
                s.parent.as_deref().unwrap_or("-"),
                if s.end.is_some() { "closed" } else { "open" },
                p.map_or(0, |p| p.records)
            )
        })
        .collect();
    eprintln!(
        "consumer read {} records of {} items from {} shards ({closed} closed, {} with a parent) in {took:?}: {} passes, {} GetRecords calls ({} empty), {} calls in all ({} failed and retried: {:#?}); every record read after {:?}; shards (as node {} lists them): {per_shard:#?}",
        consumer.records,
        consumer.per_key.len(),
        consumer.shards.len(),
        children.len(),
        consumer.passes,
        consumer.get_records_calls,
        consumer.empty_reads,
        consumer.calls,
        consumer.failed_calls,
        consumer.call_errors,
        consumer.complete_after,
        live[0]
    );

    // The table split, and its shards chain parent to child.
    let report = admin(cluster.endpoint(live[0])).await;
    eprintln!("final layout (node {}): {}", live[0], layout(&report));
    let mut failures = Vec::new();
    if partitions(&report, TABLE).len() < 2 {
        failures.push(format!("the table did not split: {}", layout(&report)));
    }
    if children.is_empty() {
        failures.push(format!("no shard has a ParentShardId: {per_shard:#?}"));
    }
    let orphans: Vec<String> = children
        .iter()
        .filter(|(_, parent)| !consumer.shards.contains_key(*parent))
        .map(|(id, parent)| format!("{id} (parent {parent})"))
        .collect();
    let open_parents: Vec<&String> = children
        .iter()
        .filter(|(_, parent)| {
            consumer
                .shards
                .get(*parent)
                .is_some_and(|p| p.end.is_none())
        })
        .map(|(id, _)| *id)
        .collect();
    if !open_parents.is_empty() {
        eprintln!("children whose parent DescribeStream last showed open: {open_parents:?}");
    }

    // Every item's records against its acknowledged writes.
    let verdicts = consumer.verdicts(&ledger);
    let (mut wrong, mut uncertain) = (Vec::new(), Vec::new());
    for (pk, verdict) in &verdicts {
        let history = ledger.history.get(pk).map_or(&[][..], Vec::as_slice);
        let seen = consumer.per_key.get(pk).map_or(&[][..], Vec::as_slice);
        let want = expected_changes(history);
        let got: Vec<Change> = seen.iter().map(|s| s.change.clone()).collect();
        let line = format!(
            "{pk}: {verdict:?}: acknowledged writes make {}, the stream has {}",
            show_changes(&want),
            show_seen(seen)
        );
        let ambiguous = ledger.ambiguous.get(pk);
        if *verdict != Verdict::Complete {
            // An ambiguous item too: its acknowledged puts are missing or
            // out of order.
            wrong.push(match ambiguous {
                Some(why) => format!("{line} (an attempt was ambiguous: {why})"),
                None => line,
            });
        } else if let Some(why) = ambiguous
            && want != got
        {
            uncertain.push(format!("{line} (an attempt was ambiguous: {why})"));
        }
    }
    let matched = verdicts
        .values()
        .filter(|v| **v == Verdict::Complete)
        .count();
    eprintln!(
        "{matched} of {} items' records match their writes; {} ambiguous items differ (printed, not failed): {uncertain:#?}",
        verdicts.len(),
        uncertain.len()
    );
    // DynamoDB documents an eventID as unique: across shards too.
    if consumer.shared_event_ids > 0 {
        failures.push(format!(
            "{} records share their eventID with a record of another shard, e.g. {:#?}",
            consumer.shared_event_ids, consumer.shared_event_id_examples
        ));
    }
    eprintln!(
        "done after {:?} in all (consumer {took:?})",
        began.elapsed()
    );
    if !consumer.problems.is_empty() {
        failures.push(format!(
            "records or shards break the rules: {:#?}",
            consumer.problems
        ));
    }
    if !wrong.is_empty() {
        failures.push(format!(
            "{} items' records differ from their acknowledged writes (within {CONSUME_WITHIN:?} of reading): {wrong:#?}",
            wrong.len()
        ));
    }
    if !consumer.deferred.is_empty() {
        failures.push(format!(
            "shards never read, their parent never ended: {:?}",
            consumer.deferred
        ));
    }
    if let Some(disagreement) = &consumer.disagreement {
        failures.push(format!(
            "the live nodes list different shards (DescribeStream, last pass):\n{disagreement}"
        ));
    }
    if !orphans.is_empty() {
        failures.push(format!("children of unlisted parents: {orphans:?}"));
    }
    if !failures.is_empty() {
        fail(failures.join("\n"));
    }
}
