//! UpdateTable's `GlobalSecondaryIndexUpdates` on live tables, against the
//! real binary: an index created online on a table that holds data (the
//! answer, the build while writes go on, a sparse index that skips
//! wrong-typed keys, index reads once ACTIVE); an index deleted online
//! (the answer, the attribute definitions it leaves behind, the table
//! serving throughout); a GSI's provisioned throughput changed (the answer,
//! the decrease counter) and the checks of such updates; billing mode
//! switches of a table with GSIs; and the one-online-change-at-a-time rule
//! with the checks of a Create.
//!
//! An index build runs in the background after UpdateTable answers, and a
//! GSI is eventually consistent: states are polled (DescribeTable until the
//! index is ACTIVE or gone) and index contents are compared with the table
//! by [`converge`], which polls until they are equal, never after a fixed
//! sleep.
//!
//! Expectations come from DynamoDB's documentation and the research notes
//! (`docs/research/secondary-indexes.md` §2, §3).

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CreateGlobalSecondaryIndexAction,
    DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndex, GlobalSecondaryIndexDescription,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, LocalSecondaryIndex,
    Projection, ProjectionType, ProvisionedThroughput, PutRequest, ScalarAttributeType as Sat,
    TableDescription, TableStatus, UpdateGlobalSecondaryIndexAction, WriteRequest,
};
use common::*;

type Item = HashMap<String, AttributeValue>;
type Units = Option<(i64, i64)>;

const VE: &str = "ValidationException";
const RNF: &str = "ResourceNotFoundException";
const LIMIT: &str = "LimitExceededException";
const OOM: &str = "One or more parameter values were invalid: ";
const ONE_AT_A_TIME: &str = "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table";
/// How long an index may take to be built or dropped.
const CHANGE_WITHIN: Duration = Duration::from_secs(60);
/// How long an index may lag behind its table.
const CONVERGE_WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
/// A fail point that holds the first step of an index build (activating
/// its hidden table) this long, so that the build is certainly still
/// running when the test acts; it holds each CreateTable as long.
const HOLD_BUILDS: &str = "table-activate-hold-ms=return(700)";

// ---------------------------------------------------------------------------
// Index definitions
// ---------------------------------------------------------------------------

/// A global secondary index: name, (hash key, type), optional (range key,
/// type), and projected non-key attributes (`None` for ALL, `Some([])` for
/// KEYS_ONLY). Types are `"S"`, `"N"` or `"B"`.
#[derive(Clone, Copy, Debug)]
struct Gsi {
    name: &'static str,
    hash: (&'static str, &'static str),
    range: Option<(&'static str, &'static str)>,
    include: Option<&'static [&'static str]>,
}

const fn gsi(
    name: &'static str,
    hash: (&'static str, &'static str),
    range: Option<(&'static str, &'static str)>,
    include: Option<&'static [&'static str]>,
) -> Gsi {
    Gsi {
        name,
        hash,
        range,
        include,
    }
}

impl Gsi {
    fn keys(&self) -> Vec<(&'static str, &'static str)> {
        std::iter::once(self.hash).chain(self.range).collect()
    }

    fn key_schema(&self) -> Vec<KeySchemaElement> {
        let types = [KeyType::Hash, KeyType::Range];
        let keys = self.keys().into_iter().zip(types);
        keys.map(|((name, _), key_type)| key_element(name, key_type))
            .collect()
    }

    fn projection(&self) -> Projection {
        let (kind, include) = match self.include {
            None => (ProjectionType::All, None),
            Some([]) => (ProjectionType::KeysOnly, None),
            Some(names) => {
                let names = names.iter().map(|a| a.to_string()).collect();
                (ProjectionType::Include, Some(names))
            }
        };
        let projection = Projection::builder().projection_type(kind);
        projection.set_non_key_attributes(include).build()
    }

    /// The AttributeDefinitions of its keys.
    fn definitions(&self) -> Vec<AttributeDefinition> {
        let keys = self.keys().into_iter();
        keys.map(|(name, ty)| attr_def(name, Sat::from(ty)))
            .collect()
    }

    /// Its definition for CreateTable.
    fn definition(&self, units: Units) -> GlobalSecondaryIndex {
        let index = GlobalSecondaryIndex::builder().index_name(self.name);
        let index = index.set_key_schema(Some(self.key_schema()));
        let index = index.set_provisioned_throughput(units.map(throughput));
        index.projection(self.projection()).build().unwrap()
    }

    /// A `Create` of it for UpdateTable.
    fn create(&self, units: Units) -> GlobalSecondaryIndexUpdate {
        let action = CreateGlobalSecondaryIndexAction::builder().index_name(self.name);
        let action = action.set_key_schema(Some(self.key_schema()));
        let action = action.set_provisioned_throughput(units.map(throughput));
        let action = action.projection(self.projection()).build().unwrap();
        GlobalSecondaryIndexUpdate::builder().create(action).build()
    }

    /// What it holds of the table items `items` (in no order): the items
    /// with all its key attributes, of their types (a sparse index that
    /// skips wrong-typed keys), each projected to the table keys
    /// `table_keys`, the index keys and the INCLUDE attributes, or whole
    /// for ALL.
    fn view(&self, table_keys: &[&str], items: &[Item]) -> Vec<Item> {
        let keys = self.keys();
        let typed = |it: &Item, (name, ty): (&str, &str)| {
            matches!(
                (it.get(name), ty),
                (Some(AttributeValue::S(_)), "S")
                    | (Some(AttributeValue::N(_)), "N")
                    | (Some(AttributeValue::B(_)), "B")
            )
        };
        let key_names: Vec<&str> = keys.iter().map(|(name, _)| *name).collect();
        let projects = |a: &str| match self.include {
            None => true,
            Some(include) => [table_keys, &key_names, include].concat().contains(&a),
        };
        let entry = |it: &Item| -> Item {
            let projected = it.iter().filter(|(a, _)| projects(a));
            projected.map(|(a, v)| (a.clone(), v.clone())).collect()
        };
        let indexed = items.iter().filter(|it| keys.iter().all(|k| typed(it, *k)));
        indexed.map(entry).collect()
    }
}

fn throughput((read, write): (i64, i64)) -> ProvisionedThroughput {
    let units = ProvisionedThroughput::builder().read_capacity_units(read);
    units.write_capacity_units(write).build().unwrap()
}

/// An `Update` of index `name`'s throughput for UpdateTable.
fn update(name: &str, units: Units) -> GlobalSecondaryIndexUpdate {
    let action = UpdateGlobalSecondaryIndexAction::builder().index_name(name);
    let action = action.set_provisioned_throughput(units.map(throughput));
    let update = GlobalSecondaryIndexUpdate::builder();
    update.update(action.build().unwrap()).build()
}

/// A `Delete` of index `name` for UpdateTable.
fn delete(name: &str) -> GlobalSecondaryIndexUpdate {
    let action = DeleteGlobalSecondaryIndexAction::builder().index_name(name);
    let delete = GlobalSecondaryIndexUpdate::builder();
    delete.delete(action.build().unwrap()).build()
}

/// A KEYS_ONLY local index whose range key is the string `range`.
fn lsi(name: &str, range: &str) -> LocalSecondaryIndex {
    let projection = Projection::builder().projection_type(ProjectionType::KeysOnly);
    LocalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_element("pk", KeyType::Hash))
        .key_schema(key_element(range, KeyType::Range))
        .projection(projection.build())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

/// A table to create: `pk` (S) HASH and, with `sorted`, `sk` (S) RANGE;
/// PROVISIONED with `units`, else PAY_PER_REQUEST.
struct Spec {
    name: &'static str,
    sorted: bool,
    units: Units,
    /// Local indexes: (name, string range key).
    lsis: &'static [(&'static str, &'static str)],
    /// Global indexes with their units (on a PROVISIONED table).
    gsis: &'static [(Gsi, Units)],
}

impl Spec {
    /// Creates the table and waits until it and its indexes are ACTIVE.
    async fn create(&self, client: &Client) {
        let mut request = client.create_table().table_name(self.name);
        request = match self.units {
            Some(units) => request.provisioned_throughput(throughput(units)),
            None => request.billing_mode(BillingMode::PayPerRequest),
        };
        request = request
            .key_schema(key_element("pk", KeyType::Hash))
            .attribute_definitions(attr_def("pk", Sat::S));
        if self.sorted {
            request = request
                .key_schema(key_element("sk", KeyType::Range))
                .attribute_definitions(attr_def("sk", Sat::S));
        }
        let mut defined = vec!["pk", "sk"];
        for &(name, range) in self.lsis {
            request = request.local_secondary_indexes(lsi(name, range));
            if !defined.contains(&range) {
                defined.push(range);
                request = request.attribute_definitions(attr_def(range, Sat::S));
            }
        }
        for (index, units) in self.gsis {
            request = request.global_secondary_indexes(index.definition(*units));
            for (key, ty) in index.keys() {
                if !defined.contains(&key) {
                    defined.push(key);
                    request = request.attribute_definitions(attr_def(key, Sat::from(ty)));
                }
            }
        }
        ok(request.send().await);
        wait_active(client, self.name).await;
        let all_active = |d: &TableDescription| {
            let indexes = d.global_secondary_indexes().iter();
            indexes
                .map(|i| i.index_status())
                .all(|s| s == Some(&IndexStatus::Active))
        };
        wait_for(client, self.name, "indexes ACTIVE", all_active).await;
    }
}

async fn describe(client: &Client, table: &str) -> TableDescription {
    let out = ok(client.describe_table().table_name(table).send().await);
    out.table.unwrap()
}

/// Polls DescribeTable until `done` holds (for [`CHANGE_WITHIN`] at most).
async fn wait_for(
    client: &Client,
    table: &str,
    what: &str,
    done: impl Fn(&TableDescription) -> bool,
) -> TableDescription {
    let deadline = Instant::now() + CHANGE_WITHIN;
    loop {
        let desc = describe(client, table).await;
        if done(&desc) {
            return desc;
        }
        let late = Instant::now() >= deadline;
        assert!(
            !late,
            "{table}: not {what} after {CHANGE_WITHIN:?}: {desc:#?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn find_index<'a>(
    desc: &'a TableDescription,
    name: &str,
) -> Option<&'a GlobalSecondaryIndexDescription> {
    let mut indexes = desc.global_secondary_indexes().iter();
    indexes.find(|i| i.index_name() == Some(name))
}

#[track_caller]
fn index<'a>(desc: &'a TableDescription, name: &str) -> &'a GlobalSecondaryIndexDescription {
    let found = find_index(desc, name);
    found.unwrap_or_else(|| panic!("no index {name} in {desc:#?}"))
}

/// Each global index's name and status, in the order described.
fn statuses(desc: &TableDescription) -> Vec<(String, String)> {
    let indexes = desc.global_secondary_indexes().iter();
    let status = |i: &GlobalSecondaryIndexDescription| {
        let status = i.index_status().map(|s| s.as_str().to_string());
        (
            i.index_name().unwrap().to_string(),
            status.unwrap_or_default(),
        )
    };
    indexes.map(status).collect()
}

/// (index, status) pairs as [`statuses`] gives them.
fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let pair = |(index, status): &(&str, &str)| (index.to_string(), status.to_string());
    list.iter().map(pair).collect()
}

/// An index's (ReadCapacityUnits, WriteCapacityUnits).
#[track_caller]
fn rw(desc: &TableDescription, name: &str) -> (i64, i64) {
    let (read, write, _) = units(desc, name);
    (read, write)
}

/// An index's (ReadCapacityUnits, WriteCapacityUnits, NumberOfDecreasesToday).
#[track_caller]
fn units(desc: &TableDescription, name: &str) -> (i64, i64, i64) {
    let pt = index(desc, name).provisioned_throughput().unwrap();
    let read = pt.read_capacity_units().unwrap();
    let write = pt.write_capacity_units().unwrap();
    (read, write, pt.number_of_decreases_today().unwrap())
}

/// The table's own (ReadCapacityUnits, WriteCapacityUnits).
fn table_units(desc: &TableDescription) -> (i64, i64) {
    let pt = desc.provisioned_throughput().unwrap();
    let read = pt.read_capacity_units().unwrap();
    (read, pt.write_capacity_units().unwrap())
}

fn billing_mode(desc: &TableDescription) -> Option<&BillingMode> {
    desc.billing_mode_summary().and_then(|s| s.billing_mode())
}

/// AttributeDefinitions as sorted `"name TYPE"` lines.
fn definitions(desc: &TableDescription) -> Vec<String> {
    let defined = desc.attribute_definitions().iter();
    let line =
        |d: &AttributeDefinition| format!("{} {}", d.attribute_name(), d.attribute_type().as_str());
    sorted(defined.map(line).collect())
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort_unstable();
    lines
}

// ---------------------------------------------------------------------------
// Items and reads
// ---------------------------------------------------------------------------

/// Writes `items` with BatchWriteItem, 25 a request, 4 requests at a time.
async fn batch_put(client: &Client, table: &str, items: Vec<Item>) {
    let requests: Vec<WriteRequest> = items
        .into_iter()
        .map(|it| {
            let put = PutRequest::builder().set_item(Some(it)).build().unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    let batches: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    for group in batches.chunks(4) {
        let mut sent = tokio::task::JoinSet::new();
        for batch in group {
            let request = client
                .batch_write_item()
                .request_items(table, batch.clone());
            sent.spawn(async move { ok(request.send().await) });
        }
        while let Some(out) = sent.join_next().await {
            let unprocessed = out.unwrap().unprocessed_items.unwrap_or_default();
            assert!(unprocessed.is_empty(), "unprocessed: {unprocessed:?}");
        }
    }
}

/// Every item of the table (consistent) or of index `index`, all pages.
async fn scan_all(client: &Client, table: &str, index: Option<&str>) -> Vec<Item> {
    let (mut items, mut start) = (Vec::new(), None);
    loop {
        let scan = client
            .scan()
            .table_name(table)
            .set_index_name(index.map(Into::into));
        let scan = scan.consistent_read(index.is_none()).limit(100);
        let out = ok(scan.set_exclusive_start_key(start).send().await);
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// Every entry of index `index` whose `attribute` (its hash key) is `value`.
async fn query_all(
    client: &Client,
    table: &str,
    index: &str,
    attribute: &str,
    value: &AttributeValue,
) -> Vec<Item> {
    let (mut items, mut start) = (Vec::new(), None);
    loop {
        let query = client.query().table_name(table).index_name(index);
        let query = query.key_condition_expression("#h = :h").limit(50);
        let query = query.expression_attribute_names("#h", attribute);
        let query = query.expression_attribute_values(":h", value.clone());
        let out = ok(query.set_exclusive_start_key(start).send().await);
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// Items as sorted lines (`g=S("a") pk=S("p") ...`, attributes sorted):
/// equal exactly when they hold the same items.
fn shown(items: &[Item]) -> Vec<String> {
    let show = |it: &Item| sorted(it.iter().map(|(a, v)| format!("{a}={v:?}")).collect());
    sorted(items.iter().map(|it| show(it).join(" ")).collect())
}

/// The attribute names of an item, sorted, with spaces between.
fn names(it: &Item) -> String {
    sorted(it.keys().cloned().collect()).join(" ")
}

/// Polls until a Scan of each index in `indexes` equals the index's view
/// of a Scan of the table, then checks that a Query of each index hash
/// key value returns exactly its entries; fails with a diff after
/// [`CONVERGE_WITHIN`]. Returns the table's items.
async fn converge(client: &Client, table: &str, table_keys: &[&str], indexes: &[Gsi]) -> Vec<Item> {
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        let items = scan_all(client, table, None).await;
        let mut diffs = String::new();
        for index in indexes {
            let want = shown(&index.view(table_keys, &items));
            let got = shown(&scan_all(client, table, Some(index.name)).await);
            if got != want {
                let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
                let unexpected: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
                let (name, had, should) = (index.name, got.len(), want.len());
                diffs += &format!("{name}: {had} entries for {should} in the table\n");
                diffs += &format!("missing: {missing:#?}\nunexpected: {unexpected:#?}\n");
            }
        }
        if diffs.is_empty() {
            for index in indexes {
                let attribute = index.hash.0;
                let mut partitions: BTreeMap<String, Vec<Item>> = BTreeMap::new();
                for entry in index.view(table_keys, &items) {
                    let value = format!("{:?}", entry[attribute]);
                    partitions.entry(value).or_default().push(entry);
                }
                for want in partitions.values() {
                    let value = &want[0][attribute];
                    let got = query_all(client, table, index.name, attribute, value).await;
                    let what = format!("{} {attribute} = {value:?}", index.name);
                    assert_eq!(shown(&got), shown(want), "Query of {what}");
                }
            }
            return items;
        }
        let late = Instant::now() >= deadline;
        assert!(
            !late,
            "{table}: not converged after {CONVERGE_WITHIN:?}:\n{diffs}"
        );
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------
// Creating an index online
// ---------------------------------------------------------------------------

/// The index built online: a string hash key, a number range key, and one
/// included attribute (`y` is never projected).
const BY_GN: Gsi = gsi("by_gn", ("g", "S"), Some(("n", "N")), Some(&["x"]));

/// Item `i` of the table before the index exists: no `g` (i % 10 of 0, 1),
/// `g` a number (2: wrong type), no `n` (3), `n` a string (4: wrong type),
/// or both keys of their index types.
fn seed_item(i: usize) -> Item {
    let mut it = item([
        ("pk", s(&format!("p{}", i % 20))),
        ("sk", s(&format!("k{i:03}"))),
        ("x", s(&format!("x{i}"))),
        ("y", s(&format!("y{i}"))),
    ]);
    let g = s(&format!("g{}", i % 7));
    let (g, num) = match i % 10 {
        0 | 1 => (None, Some(n(&i.to_string()))),
        2 => (Some(n(&i.to_string())), Some(n(&i.to_string()))),
        3 => (Some(g), None),
        4 => (Some(g), Some(s(&i.to_string()))),
        _ => (Some(g), Some(n(&i.to_string()))),
    };
    it.extend(g.map(|g| ("g".to_string(), g)));
    it.extend(num.map(|num| ("n".to_string(), num)));
    it
}

/// Whether seed item `i` has an index key of the wrong type.
fn wrong_typed(i: usize) -> bool {
    matches!(i % 10, 2 | 4)
}

/// One writer's share of the writes that run while the index is built:
/// each pass changes each of its items (seed items with keys of the right
/// types or none, and new ones) by a put that sets the index key, an
/// update that sets or changes it, one that removes it, a delete, an
/// update of other attributes, or a put without it. Passes go on until
/// `built` is set, then one more runs. Returns (writes, writes done before
/// `built` was set).
async fn write_while_building(
    client: Client,
    table: &'static str,
    writer: usize,
    built: Arc<AtomicBool>,
) -> (usize, usize) {
    let seeds = (0..300).filter(|i| i % 4 == writer && !wrong_typed(*i));
    let fresh = (300..340).filter(|i| i % 4 == writer);
    let targets: Vec<usize> = seeds.chain(fresh).collect();
    let (mut writes, mut during) = (0, 0);
    for pass in 0.. {
        let last = built.load(Ordering::SeqCst);
        for &i in &targets {
            let key = item([
                ("pk", s(&format!("p{}", i % 20))),
                ("sk", s(&format!("k{i:03}"))),
            ]);
            let tag = format!("{i}.{pass}");
            let update = || {
                let request = client.update_item().table_name(table);
                request.set_key(Some(key.clone()))
            };
            let put = |extra: Vec<(&str, AttributeValue)>| {
                let mut it = key.clone();
                it.extend(extra.into_iter().map(|(a, v)| (a.to_string(), v)));
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(it))
                    .send()
            };
            let g = s(&format!("w{}", (i + pass) % 5));
            let number = n(&(i + 1000 * pass).to_string());
            match (i + pass) % 6 {
                0 => {
                    let x = s(&format!("x{tag}"));
                    ok(put(vec![("g", g), ("n", number), ("x", x), ("y", s(&tag))]).await);
                }
                1 => {
                    let request = update().update_expression("SET g = :g, n = :n, x = :x");
                    let request = request.expression_attribute_values(":g", g);
                    let request = request.expression_attribute_values(":n", number);
                    let request = request.expression_attribute_values(":x", s(&tag));
                    ok(request.send().await);
                }
                2 => {
                    ok(update().update_expression("REMOVE g").send().await);
                }
                3 => {
                    let request = client.delete_item().table_name(table);
                    ok(request.set_key(Some(key.clone())).send().await);
                }
                4 => {
                    let request = update().update_expression("SET x = :x, y = :y");
                    let request = request.expression_attribute_values(":x", s(&tag));
                    let request = request.expression_attribute_values(":y", s(&tag));
                    ok(request.send().await);
                }
                _ => {
                    ok(put(vec![("n", number), ("x", s(&tag))]).await);
                }
            }
            writes += 1;
            if !built.load(Ordering::SeqCst) {
                during += 1;
            }
        }
        if last {
            break;
        }
        assert!(pass < 1_000, "the build does not end");
    }
    (writes, during)
}

#[tokio::test]
async fn an_index_created_online_is_backfilled_while_writes_go_on() {
    // The build is held at its first step, so the writes below overlap it.
    let server = TestServer::start_with_fail_points(HOLD_BUILDS);
    let client = server.client();
    let table = "gsi-online-create";
    let spec = Spec {
        name: table,
        sorted: true,
        units: None,
        lsis: &[],
        gsis: &[],
    };
    spec.create(&client).await;
    batch_put(&client, table, (0..300).map(seed_item).collect()).await;
    let before = describe(&client, table).await;
    assert_eq!(definitions(&before), ["pk S", "sk S"]);
    assert_eq!(before.global_secondary_indexes, None);

    let request = client.update_table().table_name(table);
    let request = request.set_attribute_definitions(Some(BY_GN.definitions()));
    let request = request.global_secondary_index_updates(BY_GN.create(None));
    let answer = ok(request.send().await).table_description.unwrap();
    assert_eq!(answer.table_status(), Some(&TableStatus::Updating));
    assert_eq!(definitions(&answer), ["g S", "n N", "pk S", "sk S"]);
    let arn = before.table_arn().unwrap();
    assert_eq!(answer.table_arn(), Some(arn));
    let [created] = answer.global_secondary_indexes() else {
        panic!("one index: {answer:#?}");
    };
    assert_eq!(created.index_name(), Some("by_gn"));
    assert_eq!(created.index_status(), Some(&IndexStatus::Creating));
    assert_eq!(created.backfilling(), Some(false), "{created:#?}");
    assert_eq!(created.key_schema(), BY_GN.key_schema());
    assert_eq!(created.projection(), Some(&BY_GN.projection()));
    let index_arn = format!("{arn}/index/by_gn");
    assert_eq!(created.index_arn(), Some(index_arn.as_str()));
    assert_eq!(units(&answer, "by_gn"), (0, 0, 0), "on demand");
    assert_eq!(
        (created.item_count(), created.index_size_bytes()),
        (Some(0), Some(0))
    );

    // Writes run until the index is ACTIVE, and a pass more.
    let built = Arc::new(AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let write = write_while_building(client.clone(), table, writer, Arc::clone(&built));
        writers.spawn(write);
    }
    let deadline = Instant::now() + CHANGE_WITHIN;
    let mut creating_seen = 0;
    let active = loop {
        let desc = describe(&client, table).await;
        let by_gn = index(&desc, "by_gn");
        match by_gn.index_status() {
            Some(IndexStatus::Creating) => {
                // "Backfilling" is there while an added index is CREATING.
                assert!(by_gn.backfilling().is_some(), "{by_gn:#?}");
                creating_seen += 1;
            }
            Some(IndexStatus::Active) => break desc,
            other => panic!("by_gn is {other:?} while being built: {desc:#?}"),
        }
        assert!(
            Instant::now() < deadline,
            "not ACTIVE after 60 s: {desc:#?}"
        );
        tokio::time::sleep(POLL).await;
    };
    built.store(true, Ordering::SeqCst);
    assert!(creating_seen > 0, "the build was never seen CREATING");
    let by_gn = index(&active, "by_gn");
    assert_eq!(by_gn.backfilling(), None, "Backfilling once ACTIVE");
    assert_eq!(by_gn.key_schema(), BY_GN.key_schema());
    assert_eq!(by_gn.projection(), Some(&BY_GN.projection()));
    assert_eq!(by_gn.index_arn(), Some(index_arn.as_str()));
    let (mut writes, mut during) = (0, 0);
    while let Some(done) = writers.join_next().await {
        let (all, before_active) = done.unwrap();
        (writes, during) = (writes + all, during + before_active);
    }
    assert!(during > 0, "no write ran while the index was built");
    assert!(writes > during, "no write ran after the index was built");

    let items = converge(&client, table, &["pk", "sk"], &[BY_GN]).await;
    let desc = describe(&client, table).await;
    assert_eq!(desc.table_status(), Some(&TableStatus::Active));
    assert_eq!(statuses(&desc), pairs(&[("by_gn", "ACTIVE")]));
    assert_eq!(definitions(&desc), ["g S", "n N", "pk S", "sk S"]);
    // The 60 items with a wrong-typed key, never written since, are in
    // the table and not in the index; so are items without the keys.
    let wrong = |it: &Item| {
        let g_number = matches!(it.get("g"), Some(AttributeValue::N(_)));
        g_number || matches!(it.get("n"), Some(AttributeValue::S(_)))
    };
    assert_eq!(items.iter().filter(|it| wrong(it)).count(), 60);
    let keyless = items.iter().filter(|it| !it.contains_key("g")).count();
    assert!(keyless > 0, "no item without g");
    let entries = scan_all(&client, table, Some("by_gn")).await;
    assert!(!entries.is_empty(), "an empty index");
    // Entries hold the table keys, the index keys and `x` only.
    let shapes: Vec<String> = entries.iter().map(names).collect();
    assert!(shapes.iter().all(|s| s == "g n pk sk x"), "{shapes:?}");

    let query = client.query().table_name(table).index_name("by_gn");
    let query = query.key_condition_expression("g = :g");
    let g = entries[0]["g"].clone();
    let query = query.expression_attribute_values(":g", g.clone());
    let consistent = query.clone().consistent_read(true).send().await;
    let message = "Consistent reads are not supported on global secondary indexes";
    assert_error(consistent, VE, message);
    let eventual = ok(query.send().await).items.unwrap();
    let want = entries
        .iter()
        .filter(|e| e["g"] == g)
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(shown(&eventual), shown(&want));
}

// ---------------------------------------------------------------------------
// Deleting an index online
// ---------------------------------------------------------------------------

const BY_AB: Gsi = gsi("by_ab", ("a", "S"), Some(("b", "N")), None);
const BY_B: Gsi = gsi("by_b", ("b", "N"), None, Some(&[]));
const BY_C: Gsi = gsi("by_c", ("c", "S"), Some(("sk", "S")), Some(&["a"]));

/// Reads and writes of a table in the background until stopped: puts of
/// items with every index key, consistent reads of each, table queries and
/// deletes; any error fails the test.
struct Traffic {
    stop: Arc<AtomicBool>,
    /// Requests answered so far.
    done: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(client: &Client, table: &'static str) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let (client, go_on, count) = (client.clone(), Arc::clone(&stop), Arc::clone(&done));
        let task = tokio::spawn(async move {
            let mut k = 0_usize;
            while !go_on.load(Ordering::SeqCst) {
                k += 1;
                let pk = s(&format!("t{}", k % 3));
                let key = item([("pk", pk.clone()), ("sk", s(&format!("s{k}")))]);
                let mut it = key.clone();
                it.extend([
                    ("a".to_string(), s(&format!("ta{}", k % 2))),
                    ("b".to_string(), n(&(k % 5).to_string())),
                    ("c".to_string(), s("tc")),
                    ("l".to_string(), s(&format!("l{k}"))),
                ]);
                let put = client.put_item().table_name(table);
                ok(put.set_item(Some(it.clone())).send().await);
                count.fetch_add(1, Ordering::SeqCst);
                let get = client.get_item().table_name(table).set_key(Some(key));
                let got = ok(get.consistent_read(true).send().await).item;
                assert_eq!(got, Some(it), "the table reads back what was written");
                count.fetch_add(1, Ordering::SeqCst);
                let query = client.query().table_name(table).consistent_read(true);
                let query = query.key_condition_expression("pk = :p");
                let query = query.expression_attribute_values(":p", pk);
                assert!(ok(query.send().await).count > 0);
                count.fetch_add(1, Ordering::SeqCst);
                if k.is_multiple_of(3) {
                    let old = format!("s{}", k - 2);
                    let old = item([("pk", s(&format!("t{}", (k - 2) % 3))), ("sk", s(&old))]);
                    let delete = client.delete_item().table_name(table).set_key(Some(old));
                    ok(delete.send().await);
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Traffic { stop, done, task }
    }

    fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Stops it; fails if any of its requests failed.
    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
    }
}

/// Polls DescribeTable until index `gone`, DELETING meanwhile, is no
/// longer listed, and checks that `traffic` had requests answered while
/// it was DELETING.
async fn wait_gone_under(
    traffic: &Traffic,
    client: &Client,
    table: &str,
    gone: &str,
) -> TableDescription {
    let deadline = Instant::now() + CHANGE_WITHIN;
    let at_answer = traffic.done();
    let mut while_deleting = at_answer;
    loop {
        let done = traffic.done();
        let desc = describe(client, table).await;
        let Some(deleting) = find_index(&desc, gone) else {
            let served = while_deleting - at_answer;
            assert!(served > 0, "no request answered while {gone} was DELETING");
            return desc;
        };
        assert_eq!(deleting.index_status(), Some(&IndexStatus::Deleting));
        while_deleting = done;
        let late = Instant::now() >= deadline;
        assert!(!late, "{gone} not gone after {CHANGE_WITHIN:?}: {desc:#?}");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn an_index_deleted_online_goes_and_takes_its_unused_attributes() {
    // Each deletion is held a while, so the traffic overlaps it.
    let server = TestServer::start_with_fail_points("table-delete-hold-ms=return(500)");
    let client = server.client();
    let table = "gsi-online-delete";
    let spec = Spec {
        name: table,
        sorted: true,
        units: None,
        lsis: &[("by_l", "l")],
        gsis: &[(BY_AB, None), (BY_B, None), (BY_C, None)],
    };
    spec.create(&client).await;
    let mut seeds = Vec::new();
    for i in 0..60 {
        let mut it = item([
            ("pk", s(&format!("p{}", i % 6))),
            ("sk", s(&format!("k{i:02}"))),
            ("l", s(&format!("l{i}"))),
            ("v", s(&format!("v{i}"))),
        ]);
        if i % 4 != 0 {
            it.insert("a".into(), s(&format!("a{}", i % 3)));
        }
        if i % 5 != 0 {
            it.insert("b".into(), n(&(i % 4).to_string()));
        }
        if i % 6 != 0 {
            it.insert("c".into(), s(&format!("c{}", i % 5)));
        }
        seeds.push(it);
    }
    batch_put(&client, table, seeds).await;
    converge(&client, table, &["pk", "sk"], &[BY_AB, BY_B, BY_C]).await;
    let desc = describe(&client, table).await;
    let defined = ["a S", "b N", "c S", "l S", "pk S", "sk S"];
    assert_eq!(definitions(&desc), defined);
    let delete_index = |name: &str| {
        let request = client.update_table().table_name(table);
        request.global_secondary_index_updates(delete(name)).send()
    };

    // The table serves reads and writes while by_ab goes.
    let traffic = Traffic::start(&client, table);
    let answer = ok(delete_index("by_ab").await).table_description.unwrap();
    assert_eq!(answer.table_status(), Some(&TableStatus::Updating));
    let want = pairs(&[
        ("by_ab", "DELETING"),
        ("by_b", "ACTIVE"),
        ("by_c", "ACTIVE"),
    ]);
    assert_eq!(statuses(&answer), want);
    // One online change at a time: no other Delete while it is DELETING.
    assert_error(delete_index("by_b").await, LIMIT, ONE_AT_A_TIME);
    let desc = wait_gone_under(&traffic, &client, table, "by_ab").await;
    assert_eq!(desc.table_status(), Some(&TableStatus::Active));
    assert_eq!(
        statuses(&desc),
        pairs(&[("by_b", "ACTIVE"), ("by_c", "ACTIVE")])
    );
    // `a` is a key of no remaining schema; `b` (by_b), `sk` (the table's
    // and by_c's) and `l` (by_l) are.
    assert_eq!(definitions(&desc), ["b N", "c S", "l S", "pk S", "sk S"]);
    assert_eq!(desc.local_secondary_indexes().len(), 1);
    let missing = "The table does not have the specified index: by_ab";
    let query = client.query().table_name(table).index_name("by_ab");
    let query = query.key_condition_expression("a = :a");
    let query = query.expression_attribute_values(":a", s("a1"));
    assert_error(query.send().await, VE, missing);
    let scan = client.scan().table_name(table).index_name("by_ab");
    assert_error(scan.send().await, VE, missing);
    traffic.stop().await;
    // The remaining indexes hold the traffic's writes too.
    converge(&client, table, &["pk", "sk"], &[BY_B, BY_C]).await;

    // The last two go one after the other.
    let traffic = Traffic::start(&client, table);
    for (gone, left) in [("by_b", pairs(&[("by_c", "ACTIVE")])), ("by_c", pairs(&[]))] {
        let answer = ok(delete_index(gone).await).table_description.unwrap();
        assert_eq!(answer.table_status(), Some(&TableStatus::Updating));
        let status = index(&answer, gone).index_status();
        assert_eq!(status, Some(&IndexStatus::Deleting), "{gone}");
        let desc = wait_gone_under(&traffic, &client, table, gone).await;
        assert_eq!(statuses(&desc), left);
    }
    traffic.stop().await;
    let desc = describe(&client, table).await;
    assert_eq!(desc.table_status(), Some(&TableStatus::Active));
    assert_eq!(
        desc.global_secondary_indexes, None,
        "GlobalSecondaryIndexes"
    );
    assert_eq!(definitions(&desc), ["l S", "pk S", "sk S"]);
    let missing = "The table does not have the specified index: by_b";
    let scan = client.scan().table_name(table).index_name("by_b");
    assert_error(scan.send().await, VE, missing);
    // The local index still answers, consistently.
    let query = client.query().table_name(table).index_name("by_l");
    let query = query
        .key_condition_expression("pk = :p")
        .consistent_read(true);
    let query = query.expression_attribute_values(":p", s("p1"));
    assert_eq!(ok(query.send().await).count, 10);
}

// ---------------------------------------------------------------------------
// Throughput updates
// ---------------------------------------------------------------------------

const GIX: Gsi = gsi("gix", ("g", "S"), None, Some(&[]));
const OTHER: Gsi = gsi("other", ("o", "S"), None, Some(&[]));

/// A PROVISIONED (5, 5) table with a local index and two global ones.
fn provisioned(name: &'static str) -> Spec {
    Spec {
        name,
        sorted: true,
        units: Some((5, 5)),
        lsis: &[("lsi_l", "l")],
        gsis: &[(GIX, Some((3, 4))), (OTHER, Some((1, 2)))],
    }
}

#[tokio::test]
async fn an_index_throughput_update_changes_it_and_counts_decreases() {
    let client = shared_server().client();
    let table = "gsi-throughput";
    provisioned(table).create(&client).await;
    let set_gix = |units: (i64, i64)| {
        let request = client.update_table().table_name(table);
        request
            .global_secondary_index_updates(update("gix", Some(units)))
            .send()
    };
    let gix_updating = pairs(&[("gix", "UPDATING"), ("other", "ACTIVE")]);
    let both_active = pairs(&[("gix", "ACTIVE"), ("other", "ACTIVE")]);

    // An increase.
    let answer = ok(set_gix((9, 10)).await).table_description.unwrap();
    assert_eq!(answer.table_status(), Some(&TableStatus::Updating));
    assert_eq!(statuses(&answer), gix_updating);
    assert_eq!(units(&answer, "gix"), (9, 10, 0));
    assert_eq!(units(&answer, "other"), (1, 2, 0));
    let desc = wait_active_indexes(&client, table).await;
    assert_eq!(desc.table_status(), Some(&TableStatus::Active));
    assert_eq!(statuses(&desc), both_active);
    assert_eq!(units(&desc, "gix"), (9, 10, 0));
    assert_eq!(units(&desc, "other"), (1, 2, 0));
    assert_eq!(table_units(&desc), (5, 5));
    let pt = index(&desc, "gix").provisioned_throughput().unwrap();
    assert!(pt.last_increase_date_time().is_some(), "{pt:?}");
    assert_eq!(pt.last_decrease_date_time(), None);

    // A decrease.
    let answer = ok(set_gix((7, 8)).await).table_description.unwrap();
    assert_eq!(answer.table_status(), Some(&TableStatus::Updating));
    assert_eq!(statuses(&answer), gix_updating);
    assert_eq!(rw(&answer, "gix"), (7, 8));
    let desc = wait_active_indexes(&client, table).await;
    assert_eq!(statuses(&desc), both_active);
    assert_eq!(units(&desc, "gix"), (7, 8, 1));
    assert_eq!(units(&desc, "other"), (1, 2, 0));
    let pt = index(&desc, "gix").provisioned_throughput().unwrap();
    assert!(pt.last_decrease_date_time().is_some(), "{pt:?}");
    let table_pt = desc.provisioned_throughput().unwrap();
    assert_eq!(
        table_pt.number_of_decreases_today(),
        Some(0),
        "the table's own"
    );

    // The same values again.
    let message = "The provisioned throughput for the index gix will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for index gix: 7. Requested ReadCapacityUnits: 7. Current WriteCapacityUnits provisioned for index gix: 8. Requested WriteCapacityUnits: 8. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.";
    assert_error(set_gix((7, 8)).await, VE, message);
    let desc = describe(&client, table).await;
    assert_eq!(units(&desc, "gix"), (7, 8, 1));

    // The index is still maintained and read.
    let it = item([("pk", s("p")), ("sk", s("k")), ("g", s("after"))]);
    let put = client.put_item().table_name(table).set_item(Some(it));
    ok(put.send().await);
    converge(&client, table, &["pk", "sk"], &[GIX, OTHER]).await;
    let entries = query_all(&client, table, "gix", "g", &s("after")).await;
    assert_eq!(entries.len(), 1);
}

/// Polls DescribeTable until the table and all its global indexes are ACTIVE.
async fn wait_active_indexes(client: &Client, table: &str) -> TableDescription {
    let active = |d: &TableDescription| {
        let statuses = d
            .global_secondary_indexes()
            .iter()
            .map(|i| i.index_status());
        let indexes = statuses.collect::<Vec<_>>();
        d.table_status() == Some(&TableStatus::Active)
            && indexes.iter().all(|s| *s == Some(&IndexStatus::Active))
    };
    wait_for(client, table, "ACTIVE", active).await
}

#[tokio::test]
async fn index_throughput_updates_are_checked() {
    let client = shared_server().client();
    let table = "gsi-throughput-errors";
    provisioned(table).create(&client).await;
    let send = |change: GlobalSecondaryIndexUpdate| {
        let request = client.update_table().table_name(table);
        request.global_secondary_index_updates(change).send()
    };
    let unknown = "Requested resource not found: Index nope for table gsi-throughput-errors";
    assert_error(send(update("nope", Some((2, 2)))).await, RNF, unknown);
    assert_error(send(delete("nope")).await, RNF, unknown);
    let not_global = "Cannot update an index that is not a GlobalSecondaryIndex: lsi_l";
    assert_error(send(update("lsi_l", Some((2, 2)))).await, VE, not_global);
    let not_global = "Cannot delete an index that is not a GlobalSecondaryIndex: lsi_l";
    assert_error(send(delete("lsi_l")).await, VE, not_global);
    let unspecified = format!("{OOM}ProvisionedThroughput must be specified for index: gix");
    assert_error(send(update("gix", None)).await, VE, &unspecified);
    let zero = "1 validation error detected: Value '0' at 'globalSecondaryIndexUpdates.1.member.update.provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1";
    assert_error(send(update("gix", Some((0, 2)))).await, VE, zero);
    // Nothing changed.
    let desc = describe(&client, table).await;
    assert_eq!(desc.table_status(), Some(&TableStatus::Active));
    assert_eq!(units(&desc, "gix"), (3, 4, 0));
    assert_eq!(units(&desc, "other"), (1, 2, 0));
    assert_eq!(desc.local_secondary_indexes().len(), 1);

    // On demand, an index has no provisioned throughput to update.
    let on_demand = "gsi-throughput-on-demand";
    let spec = Spec {
        name: on_demand,
        sorted: false,
        units: None,
        lsis: &[],
        gsis: &[(GIX, None)],
    };
    spec.create(&client).await;
    let request = client.update_table().table_name(on_demand);
    let request = request.global_secondary_index_updates(update("gix", Some((1, 1))));
    let message = format!(
        "{OOM}The only Updates for index: gix when TableThroughputMode is PAY_PER_REQUEST can be to OnDemandThroughput, WarmThroughput"
    );
    assert_error(request.send().await, VE, &message);
    let desc = describe(&client, on_demand).await;
    assert_eq!(units(&desc, "gix"), (0, 0, 0));
}

// ---------------------------------------------------------------------------
// Billing mode switches
// ---------------------------------------------------------------------------

const BY_ONE: Gsi = gsi("by_one", ("a", "S"), None, Some(&[]));
const BY_TWO: Gsi = gsi("by_two", ("b", "S"), None, None);

#[tokio::test]
async fn billing_mode_switches_carry_the_global_indexes_throughput() {
    let client = shared_server().client();
    let table = "gsi-billing";
    let spec = Spec {
        name: table,
        sorted: false,
        units: Some((5, 5)),
        lsis: &[],
        gsis: &[(BY_ONE, Some((3, 4))), (BY_TWO, Some((5, 6)))],
    };
    spec.create(&client).await;
    let both = |status: &str| pairs(&[("by_one", status), ("by_two", status)]);

    // To on demand: every index's units become 0.
    let request = client.update_table().table_name(table);
    let request = request.billing_mode(BillingMode::PayPerRequest);
    let answer = ok(request.send().await).table_description.unwrap();
    assert_eq!(answer.table_status(), Some(&TableStatus::Updating));
    assert_eq!(billing_mode(&answer), Some(&BillingMode::PayPerRequest));
    assert_eq!(table_units(&answer), (0, 0));
    assert_eq!(statuses(&answer), both("UPDATING"));
    assert_eq!(units(&answer, "by_one"), (0, 0, 0));
    assert_eq!(units(&answer, "by_two"), (0, 0, 0));
    let desc = wait_active_indexes(&client, table).await;
    assert_eq!(billing_mode(&desc), Some(&BillingMode::PayPerRequest));
    assert_eq!(statuses(&desc), both("ACTIVE"));
    assert_eq!(rw(&desc, "by_one"), (0, 0));
    assert_eq!(rw(&desc, "by_two"), (0, 0));

    // Back to provisioned: each index needs its units in the same call.
    let to_provisioned = || {
        let request = client.update_table().table_name(table);
        let request = request.billing_mode(BillingMode::Provisioned);
        let request = request.provisioned_throughput(throughput((4, 4)));
        request.global_secondary_index_updates(update("by_one", Some((2, 3))))
    };
    let missing = format!("{OOM}ProvisionedThroughput must be specified for index: by_two");
    assert_error(to_provisioned().send().await, VE, &missing);
    let desc = describe(&client, table).await;
    assert_eq!(billing_mode(&desc), Some(&BillingMode::PayPerRequest));
    assert_eq!(rw(&desc, "by_two"), (0, 0));
    let request = to_provisioned().global_secondary_index_updates(update("by_two", Some((6, 7))));
    let answer = ok(request.send().await).table_description.unwrap();
    assert_eq!(answer.table_status(), Some(&TableStatus::Updating));
    assert_eq!(billing_mode(&answer), Some(&BillingMode::Provisioned));
    assert_eq!(table_units(&answer), (4, 4));
    assert_eq!(statuses(&answer), both("UPDATING"));
    assert_eq!(rw(&answer, "by_one"), (2, 3));
    assert_eq!(rw(&answer, "by_two"), (6, 7));
    let desc = wait_active_indexes(&client, table).await;
    assert_eq!(billing_mode(&desc), Some(&BillingMode::Provisioned));
    assert_eq!(table_units(&desc), (4, 4));
    assert_eq!(statuses(&desc), both("ACTIVE"));
    assert_eq!(rw(&desc, "by_one"), (2, 3));
    assert_eq!(rw(&desc, "by_two"), (6, 7));

    // With the table's units only, the index's are missing.
    let single = "gsi-billing-single";
    let spec = Spec {
        name: single,
        sorted: false,
        units: None,
        lsis: &[],
        gsis: &[(BY_ONE, None)],
    };
    spec.create(&client).await;
    let request = client.update_table().table_name(single);
    let request = request.billing_mode(BillingMode::Provisioned);
    let request = request.provisioned_throughput(throughput((4, 4)));
    let missing = format!("{OOM}ProvisionedThroughput must be specified for index: by_one");
    assert_error(request.send().await, VE, &missing);
    let desc = describe(&client, single).await;
    assert_eq!(billing_mode(&desc), Some(&BillingMode::PayPerRequest));
    assert_eq!(table_units(&desc), (0, 0));
    assert_eq!(units(&desc, "by_one"), (0, 0, 0));
}

// ---------------------------------------------------------------------------
// One online change at a time, and the checks of a Create
// ---------------------------------------------------------------------------

const BY_A: Gsi = gsi("by_a", ("a", "S"), None, Some(&[]));
const BY_B2: Gsi = gsi("by_b", ("b", "S"), None, Some(&["c"]));
const BY_C2: Gsi = gsi("by_c", ("c", "S"), None, None);

#[tokio::test]
async fn online_index_changes_go_one_at_a_time() {
    // Builds are held at their first step, so a second Create sent right
    // after the first one's answer finds the first still CREATING.
    let server = TestServer::start_with_fail_points(HOLD_BUILDS);
    let client = server.client();
    let table = "gsi-one-at-a-time";
    let spec = Spec {
        name: table,
        sorted: false,
        units: None,
        lsis: &[],
        gsis: &[(BY_A, None)],
    };
    spec.create(&client).await;
    let seeds = (0..2000).map(|i| {
        item([
            ("pk", s(&format!("p{i:04}"))),
            ("a", s(&format!("a{}", i % 4))),
            ("b", s(&format!("b{}", i % 6))),
            ("c", s(&format!("c{}", i % 7))),
        ])
    });
    batch_put(&client, table, seeds.collect()).await;
    let change = |updates: Vec<GlobalSecondaryIndexUpdate>, defined: &[Gsi]| {
        let request = client.update_table().table_name(table);
        let defs: Vec<AttributeDefinition> = defined.iter().flat_map(Gsi::definitions).collect();
        let request = request.set_attribute_definitions((!defs.is_empty()).then_some(defs));
        request
            .set_global_secondary_index_updates(Some(updates))
            .send()
    };

    let two = vec![BY_B2.create(None), BY_C2.create(None)];
    assert_error(change(two, &[BY_B2, BY_C2]).await, LIMIT, ONE_AT_A_TIME);
    let create_and_delete = vec![BY_B2.create(None), delete("by_a")];
    assert_error(
        change(create_and_delete, &[BY_B2]).await,
        LIMIT,
        ONE_AT_A_TIME,
    );
    let exists = "Attempting to create an index which already exists";
    assert_error(change(vec![BY_A.create(None)], &[BY_A]).await, VE, exists);
    let undefined = format!("{OOM}AttributeDefinitions is not specified for index: by_b");
    assert_error(change(vec![BY_B2.create(None)], &[]).await, VE, &undefined);
    // Nothing changed.
    let desc = describe(&client, table).await;
    assert_eq!(statuses(&desc), pairs(&[("by_a", "ACTIVE")]));
    assert_eq!(definitions(&desc), ["a S", "pk S"]);

    let answer = ok(change(vec![BY_B2.create(None)], &[BY_B2]).await);
    let answer = answer.table_description.unwrap();
    let status = index(&answer, "by_b").index_status();
    assert_eq!(status, Some(&IndexStatus::Creating));
    let mut built = vec![BY_A, BY_B2];
    match change(vec![BY_C2.create(None)], &[BY_C2]).await {
        Ok(out) => {
            // Only if by_b was already built (the hold should prevent it):
            // then the refusal cannot be checked, but the answer must show
            // by_b ACTIVE, and by_c is built too.
            eprintln!("by_b was built before the second Create: its refusal is not checked");
            let desc = out.table_description.unwrap();
            assert_eq!(
                index(&desc, "by_b").index_status(),
                Some(&IndexStatus::Active)
            );
            built.push(BY_C2);
        }
        refused => assert_error(refused, LIMIT, ONE_AT_A_TIME),
    }
    let desc = wait_active_indexes(&client, table).await;
    let names: Vec<&str> = built.iter().map(|i| i.name).collect();
    let listed: Vec<String> = statuses(&desc).into_iter().map(|(name, _)| name).collect();
    assert_eq!(listed, names);
    let defined = built
        .iter()
        .flat_map(Gsi::keys)
        .map(|(name, ty)| format!("{name} {ty}"));
    let want = sorted(defined.chain(["pk S".to_string()]).collect());
    assert_eq!(definitions(&desc), want);
    let items = converge(&client, table, &["pk"], &built).await;
    assert_eq!(items.len(), 2000);
}
