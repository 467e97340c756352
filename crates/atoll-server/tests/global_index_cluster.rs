//! Global secondary indexes on a three-node `atoll dev-cluster` under
//! failure: concurrent writers keep changing the index keys of ~300 items
//! while the leader of the base table's partition is `kill -9`ed and the
//! indexes' hidden tables split by size; once the writes stop, every index
//! must converge to the projection of a consistent Scan of the table
//! within `CONVERGE_WITHIN`. A second test kills the node that founds a
//! split-off index partition the moment it logs the split; a third adds an
//! index online under the writes and kills the node building it in the
//! middle of its backfill.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The test holds `exclusive()` (a std mutex) for its whole run, across
// awaits: every test has its own runtime, so this only serialises the tests.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus, KeyType, Projection,
    ProjectionType, ReturnValue, ScalarAttributeType, TableStatus,
};
use common::cluster::*;
use common::*;

type Item = HashMap<String, AttributeValue>;

const TABLE: &str = "gsi_failover";
/// The index the third test adds online: `by_v`'s twin (KEYS_ONLY on `v`).
const ONLINE_INDEX: &str = "by_v_online";
const ITEMS: usize = 300;
/// Items in play when the writes begin; the rest join over `GROW_FOR`.
const FIRST_ITEMS: usize = 60;
const GROW_FOR: Duration = Duration::from_secs(12);
const WRITERS: usize = 4;
/// The `g` values (the `by_g` index's partition keys).
const G_VALUES: [&str; 5] = ["g0", "g1", "g2", "g3", "g4"];
/// Padding of `v` (the `by_v` index's partition key, projected into
/// `by_g`): ~400-byte index entries, so that 300 items put well over
/// `SPLIT_BYTES` into each index's hidden table (and the base table).
const V_PADDING: usize = 380;
/// Partitions (of every table, the hidden index tables included) split
/// past this size; checked every `CHECK_MS`.
const SPLIT_BYTES: &str = "32768";
const CHECK_MS: &str = "250";
/// The writers run this long in all...
const WRITE_FOR: Duration = Duration::from_secs(15);
/// ...and the node leading the base table's partition(s) is killed this
/// long after they started.
const KILL_AFTER: Duration = Duration::from_secs(3);
/// One write is retried (through the live nodes) until acknowledged, for
/// at most this long; one attempt may take at most `ATTEMPT_TIMEOUT`.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The documented bound: after the last write is acknowledged, both
/// indexes equal the projection of a consistent Scan of the table within
/// this. Measured on a 2-core machine (debug build, a compile running
/// alongside): 0.4 to 1.4 s over six passing runs of the first test.
const CONVERGE_WITHIN: Duration = Duration::from_secs(30);
/// Table creation and routing reach every node within this.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// One page of a Scan or Query may take at most this while converging
/// (a read stuck on a partition without a leader must not eat the bound).
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Index reads page with this Limit, so that paging crosses partitions.
const PAGE: i32 = 64;

fn pk_of(i: usize) -> String {
    format!("item-{i:03}")
}

fn random_g(rng: &mut Rng) -> AttributeValue {
    s(G_VALUES[rng.below(G_VALUES.len())])
}

fn random_n(rng: &mut Rng) -> AttributeValue {
    n(&rng.below(100_000).to_string())
}

fn random_v(rng: &mut Rng) -> AttributeValue {
    s(&format!("v{:016x}-{}", rng.next(), "x".repeat(V_PADDING)))
}

// ---------------------------------------------------------------------------
// Table set-up
// ---------------------------------------------------------------------------

fn gsi(name: &str, keys: &[(&str, KeyType)], projection: Projection) -> GlobalSecondaryIndex {
    let mut builder = GlobalSecondaryIndex::builder()
        .index_name(name)
        .projection(projection);
    for (attribute, key_type) in keys {
        builder = builder.key_schema(key_element(attribute, key_type.clone()));
    }
    builder.build().unwrap()
}

/// `pk` S HASH; `by_g`: `g` S HASH + `n` N RANGE, INCLUDE `v`; `by_v`:
/// `v` S HASH, KEYS_ONLY. A CreateTable retried after it took effect
/// answers ResourceInUse, which counts as done.
async fn create_indexed_table(client: &Client) -> Result<(), String> {
    let by_g = gsi(
        "by_g",
        &[("g", KeyType::Hash), ("n", KeyType::Range)],
        Projection::builder()
            .projection_type(ProjectionType::Include)
            .non_key_attributes("v")
            .build(),
    );
    let by_v = gsi(
        "by_v",
        &[("v", KeyType::Hash)],
        Projection::builder()
            .projection_type(ProjectionType::KeysOnly)
            .build(),
    );
    let request = client
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .attribute_definitions(attr_def("n", ScalarAttributeType::N))
        .attribute_definitions(attr_def("v", ScalarAttributeType::S))
        .global_secondary_indexes(by_g)
        .global_secondary_indexes(by_v);
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
        Err(e) => Err(error_text(e)),
    }
}

/// Whether DescribeTable through `client` shows the table and both its
/// indexes ACTIVE.
async fn active(client: &Client) -> Result<(), String> {
    let out = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(error_text)?;
    let table = out.table().ok_or("no table in DescribeTable")?;
    let indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            (
                i.index_name().unwrap_or_default(),
                i.index_status().cloned(),
            )
        })
        .collect();
    let all_active = indexes.len() == 2
        && indexes
            .iter()
            .all(|(_, status)| *status == Some(IndexStatus::Active));
    if table.table_status() == Some(&TableStatus::Active) && all_active {
        Ok(())
    } else {
        Err(format!(
            "table {:?}, indexes {indexes:?}",
            table.table_status()
        ))
    }
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

/// One write, as sent (again) until acknowledged.
#[derive(Clone, Debug)]
enum Write {
    Put(Item),
    /// UpdateItem: the update expression and its values.
    Update(String, Item),
    Delete,
}

/// A random write to `pk`: puts (some without `g` or `v`: sparse),
/// updates that move `g`/`n` or `v`, REMOVE of `g` or `v`, deletes.
fn random_write(rng: &mut Rng, pk: &str) -> Write {
    let values = |pairs: Vec<(&str, AttributeValue)>| -> Item {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    };
    match rng.below(100) {
        0..40 => {
            let mut it = item([("pk", s(pk)), ("n", random_n(rng))]);
            if rng.below(10) != 0 {
                it.insert("g".into(), random_g(rng));
            }
            if rng.below(10) != 0 {
                it.insert("v".into(), random_v(rng));
            }
            Write::Put(it)
        }
        40..65 => Write::Update(
            "SET g = :g, n = :n".into(),
            values(vec![(":g", random_g(rng)), (":n", random_n(rng))]),
        ),
        65..78 => Write::Update("SET v = :v".into(), values(vec![(":v", random_v(rng))])),
        78..86 => Write::Update("REMOVE g".into(), Item::new()),
        86..90 => Write::Update(
            "REMOVE v SET n = :n".into(),
            values(vec![(":n", random_n(rng))]),
        ),
        _ => Write::Delete,
    }
}

/// Sends `write` once; on success, the item as it now is (`None`: no item).
async fn send_write(client: &Client, pk: &str, write: &Write) -> Result<Option<Item>, String> {
    let key = item([("pk", s(pk))]);
    match write {
        Write::Put(it) => {
            let request = client
                .put_item()
                .table_name(TABLE)
                .set_item(Some(it.clone()));
            request.send().await.map_err(error_fail)?;
            Ok(Some(it.clone()))
        }
        Write::Update(expression, values) => {
            let request = client
                .update_item()
                .table_name(TABLE)
                .set_key(Some(key))
                .update_expression(expression)
                .set_expression_attribute_values((!values.is_empty()).then(|| values.clone()))
                .return_values(ReturnValue::AllNew);
            let out = request.send().await.map_err(error_fail)?;
            Ok(out.attributes.filter(|a| !a.is_empty()))
        }
        Write::Delete => {
            let request = client.delete_item().table_name(TABLE).set_key(Some(key));
            request.send().await.map_err(error_fail)?;
            Ok(None)
        }
    }
}

/// A failed attempt: ValidationException is this test's mistake (fatal),
/// everything else is retried.
fn error_fail<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let fatal = e.code() == Some("ValidationException");
    let text = error_text(e);
    if fatal { format!("FATAL {text}") } else { text }
}

/// What the writers saw.
#[derive(Default)]
struct Ledger {
    /// The item as of the last acknowledged write (`None`: deleted).
    last: BTreeMap<String, Option<Item>>,
    /// Keys one of whose attempts failed (its outcome unknown to us).
    ambiguous: BTreeMap<String, usize>,
    acknowledged: usize,
    failed_attempts: usize,
    /// A sample of the failed attempts' errors.
    errors: Vec<String>,
    slowest: Duration,
    /// Writes not acknowledged within `WRITE_DEADLINE` (fatal).
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
    async fn write_until_acknowledged(&self, pk: &str, write: &Write, turn: &mut usize) {
        let began = Instant::now();
        loop {
            let live = self.live();
            let node = live[*turn % live.len()];
            *turn += 1;
            let attempt =
                tokio::time::timeout(ATTEMPT_TIMEOUT, send_write(&self.clients[&node], pk, write))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")));
            let done = {
                let mut ledger = self.ledger.lock().unwrap();
                match attempt {
                    Ok(now) => {
                        ledger.last.insert(pk.to_string(), now);
                        ledger.acknowledged += 1;
                        ledger.slowest = ledger.slowest.max(began.elapsed());
                        true
                    }
                    Err(e) => {
                        ledger.failed_attempts += 1;
                        *ledger.ambiguous.entry(pk.to_string()).or_insert(0) += 1;
                        let e = format!("{write:?} to {pk} through node {node}: {e}");
                        if e.contains("FATAL") || began.elapsed() > WRITE_DEADLINE {
                            ledger.gave_up.push(e);
                            true
                        } else {
                            if ledger.errors.len() < 20 {
                                ledger.errors.push(e);
                            }
                            false
                        }
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
    /// are ordered and its last acknowledged one is its state). The items
    /// in play grow with time (`active_items`), each first written by a
    /// whole put, so that the tables keep growing and splitting through
    /// the run; between those, random writes to the items in play.
    async fn run(self: Arc<Self>, w: usize, seed: u64, began: Instant) {
        let mut rng = Rng::new(seed);
        let mut turn = w;
        let mut written = [false; ITEMS];
        while self.running.load(Ordering::SeqCst) {
            let active = active_items(began.elapsed());
            let owned: Vec<usize> = (w..active).step_by(WRITERS).collect();
            let fresh = owned.iter().copied().find(|i| !written[*i]);
            let i = match fresh {
                Some(i) if rng.below(3) == 0 => i,
                _ => owned[rng.below(owned.len())],
            };
            let pk = pk_of(i);
            let write = if written[i] {
                random_write(&mut rng, &pk)
            } else {
                Write::Put(item([
                    ("pk", s(&pk)),
                    ("g", random_g(&mut rng)),
                    ("n", random_n(&mut rng)),
                    ("v", random_v(&mut rng)),
                ]))
            };
            written[i] = true;
            self.write_until_acknowledged(&pk, &write, &mut turn).await;
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
// Reads and the expected indexes
// ---------------------------------------------------------------------------

/// Every item of a Scan of the table (`index: None`, ConsistentRead) or
/// of an index (eventually consistent), page after page.
async fn scan_all(client: &Client, index: Option<&str>) -> Result<Vec<Item>, String> {
    let (mut items, mut start) = (Vec::new(), None);
    for _ in 0..10_000 {
        let request = client
            .scan()
            .table_name(TABLE)
            .set_index_name(index.map(str::to_string))
            .set_consistent_read(index.is_none().then_some(true))
            .limit(PAGE)
            .set_exclusive_start_key(start);
        let out = tokio::time::timeout(READ_TIMEOUT, request.send())
            .await
            .map_err(|_| format!("no answer within {READ_TIMEOUT:?}"))?
            .map_err(error_text)?;
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
    Err(format!("Scan of {index:?} does not stop paging"))
}

/// Every `by_g` entry under `g`, by Query, page after page.
async fn query_by_g(client: &Client, g: &str) -> Result<Vec<Item>, String> {
    let (mut items, mut start) = (Vec::new(), None);
    for _ in 0..10_000 {
        let request = client
            .query()
            .table_name(TABLE)
            .index_name("by_g")
            .key_condition_expression("g = :g")
            .expression_attribute_values(":g", s(g))
            .limit(PAGE)
            .set_exclusive_start_key(start);
        let out = tokio::time::timeout(READ_TIMEOUT, request.send())
            .await
            .map_err(|_| format!("no answer within {READ_TIMEOUT:?}"))?
            .map_err(error_text)?;
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
    Err(format!("Query of by_g for {g} does not stop paging"))
}

/// An item as one line, attributes in name order: what entries compare by.
fn render(it: &Item) -> String {
    let sorted: BTreeMap<&String, &AttributeValue> = it.iter().collect();
    let parts: Vec<String> = sorted
        .into_iter()
        .map(|(name, value)| match value {
            AttributeValue::S(v) => format!("{name}=S:{v}"),
            AttributeValue::N(v) => format!("{name}=N:{v}"),
            other => format!("{name}={other:?}"),
        })
        .collect();
    parts.join(" ")
}

/// Sorted lines (a multiset: an entry returned twice is a difference).
fn rendered(items: &[Item]) -> Vec<String> {
    let mut lines: Vec<String> = items.iter().map(render).collect();
    lines.sort();
    lines
}

/// `by_g`'s view of the table: items with `g` (S) and `n` (N), projected
/// to `pk`, `g`, `n` and `v`.
fn by_g_view(items: &[Item]) -> Vec<Item> {
    items
        .iter()
        .filter(|it| {
            matches!(it.get("g"), Some(AttributeValue::S(_)))
                && matches!(it.get("n"), Some(AttributeValue::N(_)))
        })
        .map(|it| {
            it.iter()
                .filter(|(a, _)| ["pk", "g", "n", "v"].contains(&a.as_str()))
                .map(|(a, v)| (a.clone(), v.clone()))
                .collect()
        })
        .collect()
}

/// `by_v`'s view of the table: items with `v` (S), projected to `pk`, `v`.
fn by_v_view(items: &[Item]) -> Vec<Item> {
    items
        .iter()
        .filter(|it| matches!(it.get("v"), Some(AttributeValue::S(_))))
        .map(|it| {
            it.iter()
                .filter(|(a, _)| ["pk", "v"].contains(&a.as_str()))
                .map(|(a, v)| (a.clone(), v.clone()))
                .collect()
        })
        .collect()
}

/// A line shortened for messages (the `v` padding hides nothing).
fn short(line: &str) -> String {
    line.replace(&"x".repeat(V_PADDING), "x…")
}

/// What is missing from an index and what it holds too much of; empty if
/// equal.
fn difference(what: &str, want: &[String], got: &[String]) -> String {
    if want == got {
        return String::new();
    }
    let mut missing = want.to_vec();
    let mut unexpected = Vec::new();
    for line in got {
        match missing.iter().position(|w| w == line) {
            Some(at) => {
                missing.remove(at);
            }
            None => unexpected.push(line.clone()),
        }
    }
    let show =
        |lines: &[String]| -> Vec<String> { lines.iter().take(15).map(|l| short(l)).collect() };
    format!(
        "{what}: {} entries, the table's view has {}; {} missing {:#?}, {} unexpected {:#?}\n",
        got.len(),
        want.len(),
        missing.len(),
        show(&missing),
        unexpected.len(),
        show(&unexpected),
    )
}

/// One comparison: a consistent Scan of the table through `base_node`,
/// then each index through every node of `via`; the differences (empty:
/// converged) and the table's items.
async fn compare(
    clients: &BTreeMap<u8, Client>,
    base_node: u8,
    via: &[u8],
    online: bool,
) -> Result<(String, Vec<Item>), String> {
    let table = scan_all(&clients[&base_node], None)
        .await
        .map_err(|e| format!("Scan of the table through node {base_node}: {e}"))?;
    let want_g = rendered(&by_g_view(&table));
    let want_v = rendered(&by_v_view(&table));
    let mut diff = String::new();
    for node in via {
        let client = &clients[node];
        let scanned_g = scan_all(client, Some("by_g"))
            .await
            .map_err(|e| format!("Scan of by_g through node {node}: {e}"))?;
        diff += &difference(
            &format!("by_g Scan via node {node}"),
            &want_g,
            &rendered(&scanned_g),
        );
        let mut queried_g = Vec::new();
        for g in G_VALUES {
            let found = query_by_g(client, g)
                .await
                .map_err(|e| format!("Query of by_g for {g} through node {node}: {e}"))?;
            queried_g.extend(found);
        }
        diff += &difference(
            &format!("by_g Queries via node {node}"),
            &want_g,
            &rendered(&queried_g),
        );
        let scanned_v = scan_all(client, Some("by_v"))
            .await
            .map_err(|e| format!("Scan of by_v through node {node}: {e}"))?;
        diff += &difference(
            &format!("by_v Scan via node {node}"),
            &want_v,
            &rendered(&scanned_v),
        );
        if online {
            let scanned = scan_all(client, Some(ONLINE_INDEX))
                .await
                .map_err(|e| format!("Scan of {ONLINE_INDEX} through node {node}: {e}"))?;
            diff += &difference(
                &format!("{ONLINE_INDEX} Scan via node {node}"),
                &want_v,
                &rendered(&scanned),
            );
        }
    }
    Ok((diff, table))
}

/// Partition counts and leaders of every table in an admin report.
fn layout(report: &serde_json::Value) -> String {
    let mut out = String::new();
    for table in report["tables"].as_array().into_iter().flatten() {
        let name = table["name"].as_str().unwrap_or("?");
        let parts = partitions(report, name);
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
        out += &format!(
            "  {name}: {} partition(s) [group:leader:size] {leaders:?}\n",
            parts.len()
        );
    }
    out
}

/// The hidden index tables of `TABLE` and their partition counts.
fn index_partitions(report: &serde_json::Value) -> BTreeMap<String, usize> {
    report["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .filter(|name| name.starts_with(&format!("{TABLE}/index/")))
        .map(|name| (name.to_string(), partitions(report, name).len()))
        .collect()
}

// ---------------------------------------------------------------------------
// The steps both tests take
// ---------------------------------------------------------------------------

/// A three-node dev-cluster whose partitions split past `SPLIT_BYTES`, with
/// the indexed table ACTIVE on every node, and a retrying client per node.
async fn start() -> (DevCluster, BTreeMap<u8, Client>) {
    start_with_env(&[]).await
}

/// `start`, the nodes run with environment variables `env`.
async fn start_with_env(env: &[(&str, &str)]) -> (DevCluster, BTreeMap<u8, Client>) {
    let began = Instant::now();
    let cluster = DevCluster::start_with_env(
        3,
        &[
            "--partition-split-bytes",
            SPLIT_BYTES,
            "--partition-check-ms",
            CHECK_MS,
        ],
        env,
    );
    let fail = |what: String| -> ! { panic!("{what}\n{}", cluster.logs()) };
    let clients: BTreeMap<u8, Client> = cluster
        .ids()
        .map(|id| (id, retrying_client(cluster.endpoint(id))))
        .collect();
    retry(SETTLE_TIMEOUT, || create_indexed_table(&clients[&1]))
        .await
        .unwrap_or_else(|e| fail(format!("CreateTable: {e}")));
    for (id, client) in &clients {
        retry(SETTLE_TIMEOUT, || active(client))
            .await
            .unwrap_or_else(|e| fail(format!("not ACTIVE through node {id}: {e}")));
    }
    eprintln!(
        "3 nodes serving, table and indexes ACTIVE on every node after {:?}",
        began.elapsed()
    );
    (cluster, clients)
}

/// Starts the `WRITERS` writer tasks.
fn start_writers(
    clients: &BTreeMap<u8, Client>,
    seed: u64,
) -> (Arc<Writers>, Vec<tokio::task::JoinHandle<()>>, Instant) {
    let writers = Arc::new(Writers {
        clients: clients.clone(),
        dead: AtomicU8::new(0),
        running: AtomicBool::new(true),
        ledger: Mutex::new(Ledger::default()),
    });
    let began = Instant::now();
    let tasks = (0..WRITERS)
        .map(|w| {
            let writers = writers.clone();
            let seed = seed
                .wrapping_add(w as u64)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
            tokio::spawn(writers.run(w, seed, began))
        })
        .collect();
    (writers, tasks, began)
}

/// Stops the writers and checks that each write was acknowledged;
/// returns when the last one was.
async fn stop_writers(
    cluster: &DevCluster,
    writers: &Writers,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    began: Instant,
) -> Instant {
    writers.running.store(false, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("writer task");
    }
    let stopped = Instant::now();
    let ledger = writers.ledger.lock().unwrap();
    eprintln!(
        "writers stopped after {:?}: {} writes acknowledged, {} failed attempts (retried), slowest write {:?}; first errors: {:#?}",
        began.elapsed(),
        ledger.acknowledged,
        ledger.failed_attempts,
        ledger.slowest,
        ledger
            .errors
            .iter()
            .take(8)
            .map(|e| short(e))
            .collect::<Vec<_>>()
    );
    assert!(
        ledger.gave_up.is_empty(),
        "writes not acknowledged within {WRITE_DEADLINE:?}: {:#?}\n{}",
        ledger.gave_up.iter().map(|e| short(e)).collect::<Vec<_>>(),
        cluster.logs()
    );
    assert!(
        ledger.acknowledged > ITEMS,
        "only {} writes acknowledged",
        ledger.acknowledged
    );
    stopped
}

/// Polls until each index, read through every live node, equals the
/// projection of a consistent Scan of the table; fails after
/// `CONVERGE_WITHIN` from `stopped` with the difference (or the failing
/// read), the layout and the logs. Returns the table's items and how long
/// convergence took.
async fn converge(
    cluster: &DevCluster,
    clients: &BTreeMap<u8, Client>,
    live: &[u8],
    stopped: Instant,
    online: bool,
) -> (Vec<Item>, Duration) {
    let mut rounds = 0;
    loop {
        rounds += 1;
        let base_node = live[rounds % live.len()];
        let (what, last) = match compare(clients, base_node, live, online).await {
            Ok((diff, table)) if diff.is_empty() => {
                let took = stopped.elapsed();
                eprintln!(
                    "CONVERGED {took:?} after the writes stopped ({rounds} comparison rounds); {} items, {} by_g entries, {} by_v entries",
                    table.len(),
                    by_g_view(&table).len(),
                    by_v_view(&table).len()
                );
                return (table, took);
            }
            Ok((diff, _)) => ("indexes still differ from the table", diff),
            Err(e) => ("reads still fail", e),
        };
        if stopped.elapsed() > CONVERGE_WITHIN {
            let report = admin(cluster.endpoint(live[0])).await;
            panic!(
                "{what} {CONVERGE_WITHIN:?} after the writes stopped ({rounds} rounds):\n{last}\nlayout (node {}):\n{}\n{}",
                live[0],
                layout(&report),
                cluster.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// After convergence: both hidden index tables are there and split, every
/// partition of every table has a leader other than `killed`, and the
/// table holds each item as its last acknowledged write left it.
async fn check_end_state(
    cluster: &DevCluster,
    (live, killed): (&[u8], u8),
    writers: &Writers,
    table_items: &[Item],
    index_count: usize,
) {
    let report = admin(cluster.endpoint(live[0])).await;
    eprintln!("final layout (node {}):\n{}", live[0], layout(&report));
    let index_tables = index_partitions(&report);
    assert_eq!(
        index_tables.len(),
        index_count,
        "hidden index tables: {index_tables:?}"
    );
    assert!(
        index_tables.values().any(|n| *n > 1),
        "no index table split (partitions {index_tables:?}):\n{}",
        layout(&report)
    );
    for table in report["tables"].as_array().into_iter().flatten() {
        let name = table["name"].as_str().unwrap_or("?");
        for part in partitions(&report, name) {
            let leader = part["leader"].as_u64();
            assert!(
                leader.is_some_and(|l| l != u64::from(killed)),
                "partition {} of {name} has leader {leader:?} (node {killed} was killed):\n{}",
                part["group_id"],
                layout(&report)
            );
        }
    }

    // The table holds every item as its last acknowledged write left it.
    // An item one of whose attempts failed may legitimately differ (that
    // attempt's outcome is unknown to the writer), so those only print.
    let ledger = writers.ledger.lock().unwrap();
    let scanned: BTreeMap<String, String> = table_items
        .iter()
        .map(|it| match it.get("pk") {
            Some(AttributeValue::S(pk)) => (pk.clone(), render(it)),
            other => panic!("an item without a string pk: {other:?}"),
        })
        .collect();
    let (mut wrong, mut uncertain) = (Vec::new(), Vec::new());
    for i in 0..ITEMS {
        let pk = pk_of(i);
        let want = ledger
            .last
            .get(&pk)
            .cloned()
            .flatten()
            .map(|it| render(&it));
        let got = scanned.get(&pk).cloned();
        if want != got {
            let line = format!(
                "{pk}: last acknowledged {:?}, table {:?}",
                want.as_deref().map(short),
                got.as_deref().map(short)
            );
            if ledger.ambiguous.contains_key(&pk) {
                uncertain.push(line);
            } else {
                wrong.push(line);
            }
        }
    }
    if !uncertain.is_empty() {
        eprintln!(
            "items that differ from their last acknowledged write after a failed attempt: {uncertain:#?}"
        );
    }
    assert!(
        wrong.is_empty(),
        "items that differ from their last acknowledged write: {wrong:#?}\n{}",
        cluster.logs()
    );
}

fn seed() -> u64 {
    let seed = RandomState::new().hash_one(0u8);
    eprintln!("seed {seed:#x}");
    seed
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

/// The scenario: writes that keep moving items between index keys (and in
/// and out of the sparse indexes), the node leading the base table's
/// partition(s) killed `KILL_AFTER` into them, the hidden index tables
/// splitting by size throughout (before and after the kill: the items in
/// play grow for `GROW_FOR`). Once the writes stop, both indexes equal
/// the table's projection within `CONVERGE_WITHIN`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn global_indexes_converge_after_leader_kill_and_index_splits_under_writes() {
    let _exclusive = exclusive();
    let began = Instant::now();
    let (cluster, clients) = start().await;
    let (writers, tasks, writing) = start_writers(&clients, seed());

    // While they write: watch the layout (noting every split of the index
    // tables), and kill the base table's leader at KILL_AFTER.
    let mut killed: Option<u8> = None;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut index_splits: Vec<String> = Vec::new();
    while writing.elapsed() < WRITE_FOR {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let observer = cluster.ids().find(|id| Some(*id) != killed).unwrap();
        let report = admin(cluster.endpoint(observer)).await;
        for (name, count) in index_partitions(&report) {
            let before = counts.insert(name.clone(), count).unwrap_or(1);
            if count > before {
                let when = match killed {
                    None => "before the kill",
                    Some(_) => "after the kill",
                };
                index_splits.push(format!(
                    "{:?} ({when}): {} {before} -> {count} partitions",
                    writing.elapsed(),
                    &name[TABLE.len()..]
                ));
            }
        }
        if killed.is_none() && writing.elapsed() >= KILL_AFTER {
            // The node leading the most of the base table's partitions.
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
                "kill -9 node {victim}, leading {leading:?} of {TABLE}'s partitions, {:?} into the writes; {} writes acknowledged so far; layout:\n{}",
                writing.elapsed(),
                writers.ledger.lock().unwrap().acknowledged,
                layout(&report)
            );
            // Writers still send to it until it is gone, and see it fail.
            cluster.kill9(victim);
            writers.dead.store(victim, Ordering::SeqCst);
            killed = Some(victim);
        }
    }
    let stopped = stop_writers(&cluster, &writers, tasks, writing).await;
    eprintln!("index splits seen while writing: {index_splits:#?}");
    let killed = killed.unwrap_or_else(|| panic!("no leader of the base table to kill"));
    let live: Vec<u8> = cluster.ids().filter(|id| *id != killed).collect();

    let (table_items, took) = converge(&cluster, &clients, &live, stopped, false).await;
    check_end_state(&cluster, (&live, killed), &writers, &table_items, 2).await;
    assert!(took <= CONVERGE_WITHIN, "converged only after {took:?}");
    eprintln!("done after {:?} in all", began.elapsed());
}

/// The riskiest moment of the scenario above, on purpose: the node that
/// just split an index partition (it led the parent, so it founds the new
/// partition's Raft group) is killed the moment it logs the split, while
/// the writes go on. The new partition must still get a leader from the
/// two live replicas, and the indexes converge as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_index_partition_split_off_just_before_its_founder_is_killed_gets_a_leader() {
    const SPLIT_LINE: &str = "split partition table=gsi_failover/index/";
    /// The first index split comes within this (the tables grow past
    /// `SPLIT_BYTES` about 3 s into the writes).
    const SPLIT_WITHIN: Duration = Duration::from_secs(12);
    /// The writes go on this long after the kill.
    const WRITE_AFTER_KILL: Duration = Duration::from_secs(3);
    let _exclusive = exclusive();
    let began = Instant::now();
    let (cluster, clients) = start().await;
    let (writers, tasks, writing) = start_writers(&clients, seed());

    // Tail the node logs; kill -9 the first node that logs an index split.
    let (victim, line) = loop {
        let found = cluster.ids().find_map(|id| {
            let log = cluster.node_log(id);
            let line = log.lines().find(|l| l.contains(SPLIT_LINE))?.to_string();
            Some((id, line))
        });
        if let Some(found) = found {
            break found;
        }
        if writing.elapsed() > SPLIT_WITHIN {
            panic!(
                "no index partition split within {SPLIT_WITHIN:?} of writes\n{}",
                cluster.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    cluster.kill9(victim);
    writers.dead.store(victim, Ordering::SeqCst);
    eprintln!(
        "kill -9 node {victim} {:?} into the writes, right after it logged:\n  {line}",
        writing.elapsed()
    );
    tokio::time::sleep(WRITE_AFTER_KILL).await;
    let stopped = stop_writers(&cluster, &writers, tasks, writing).await;
    let live: Vec<u8> = cluster.ids().filter(|id| *id != victim).collect();

    let (table_items, took) = converge(&cluster, &clients, &live, stopped, false).await;
    check_end_state(&cluster, (&live, victim), &writers, &table_items, 2).await;
    assert!(took <= CONVERGE_WITHIN, "converged only after {took:?}");
    eprintln!("done after {:?} in all", began.elapsed());
}

/// Adds `ONLINE_INDEX` through `client` (a retried Create that already
/// took effect answers that the index exists: done).
async fn create_online_index(client: &Client) -> Result<(), String> {
    let action = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
        .index_name(ONLINE_INDEX)
        .key_schema(key_element("v", KeyType::Hash))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let update = aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
        .create(action)
        .build();
    let request = client
        .update_table()
        .table_name(TABLE)
        .attribute_definitions(attr_def("v", ScalarAttributeType::S))
        .global_secondary_index_updates(update);
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.message().is_some_and(|m| m.contains("already exists")) => Ok(()),
        Err(e) => Err(error_text(e)),
    }
}

/// `ONLINE_INDEX`'s status and Backfilling flag through `client`.
async fn online_index_state(
    client: &Client,
) -> Result<(Option<IndexStatus>, Option<bool>), String> {
    let out = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(error_text)?;
    let index = out
        .table()
        .and_then(|t| {
            t.global_secondary_indexes()
                .iter()
                .find(|i| i.index_name() == Some(ONLINE_INDEX))
        })
        .ok_or_else(|| format!("no {ONLINE_INDEX} in DescribeTable"))?;
    Ok((index.index_status().cloned(), index.backfilling()))
}

/// An index added online while the writes go on, and the node building it
/// (the catalog's leader) `kill -9`ed in the middle of its backfill: the
/// next leader of the catalog takes the build up, the index becomes
/// ACTIVE, and once the writes stop all three indexes converge to the
/// table. A fail point holds the build for `BACKFILL_HOLD` with
/// `Backfilling` true, so the kill lands inside the build every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_index_built_online_survives_the_kill_of_the_node_building_it() {
    const BUILD_LINE: &str = "building global index";
    /// The build holds this long with Backfilling true, each time it starts.
    const BACKFILL_HOLD: &str = "gsi-backfill-hold-ms=return(3000)";
    /// The index is added this long into the writes...
    const CREATE_AFTER: Duration = Duration::from_secs(2);
    /// ...and is ACTIVE within this after the kill (the new catalog
    /// leader's election, its next look, the hold again, the backfill).
    const ACTIVE_WITHIN: Duration = Duration::from_secs(60);
    let _exclusive = exclusive();
    let began = Instant::now();
    let (cluster, clients) = start_with_env(&[("FAILPOINTS", BACKFILL_HOLD)]).await;
    let fail = |what: String| -> ! { panic!("{what}\n{}", cluster.logs()) };
    let (writers, tasks, writing) = start_writers(&clients, seed());
    tokio::time::sleep(CREATE_AFTER).await;
    retry(SETTLE_TIMEOUT, || create_online_index(&clients[&1]))
        .await
        .unwrap_or_else(|e| fail(format!("UpdateTable Create: {e}")));

    // The builder logs that it builds; once the index shows Backfilling
    // (the build holds there), kill the builder.
    let builder = retry(SETTLE_TIMEOUT, || async {
        cluster
            .ids()
            .find(|id| cluster.node_log(*id).contains(BUILD_LINE))
            .ok_or_else(|| "no node builds the index yet".to_string())
    })
    .await
    .unwrap_or_else(|e| fail(e));
    let watcher = cluster.ids().find(|id| *id != builder).unwrap();
    let state = retry(SETTLE_TIMEOUT, || async {
        match online_index_state(&clients[&watcher]).await? {
            state @ (Some(IndexStatus::Creating), Some(true)) => Ok(state),
            other => Err(format!("{ONLINE_INDEX} is {other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(format!("never backfilling: {e}")));
    eprintln!(
        "kill -9 node {builder} (building {ONLINE_INDEX}: {state:?}) {:?} into the writes",
        writing.elapsed()
    );
    cluster.kill9(builder);
    writers.dead.store(builder, Ordering::SeqCst);
    let killed_at = Instant::now();
    let live: Vec<u8> = cluster.ids().filter(|id| *id != builder).collect();

    // Another node takes the build up; the writes go on meanwhile.
    retry(ACTIVE_WITHIN, || async {
        match online_index_state(&clients[&live[0]]).await? {
            (Some(IndexStatus::Active), None) => Ok(()),
            other => Err(format!("{ONLINE_INDEX} is {other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(format!("not ACTIVE {ACTIVE_WITHIN:?} after the kill: {e}")));
    let rebuilt_by: Vec<u8> = live
        .iter()
        .copied()
        .filter(|id| cluster.node_log(*id).contains(BUILD_LINE))
        .collect();
    eprintln!(
        "{ONLINE_INDEX} ACTIVE {:?} after the kill, built again by node(s) {rebuilt_by:?}",
        killed_at.elapsed()
    );
    assert!(!rebuilt_by.is_empty(), "no live node took the build up");
    let stopped = stop_writers(&cluster, &writers, tasks, writing).await;

    let (table_items, took) = converge(&cluster, &clients, &live, stopped, true).await;
    check_end_state(&cluster, (&live, builder), &writers, &table_items, 3).await;
    assert!(took <= CONVERGE_WITHIN, "converged only after {took:?}");
    eprintln!("done after {:?} in all", began.elapsed());
}
