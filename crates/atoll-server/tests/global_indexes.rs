//! Global secondary indexes created with their table, against the real
//! binary: CreateTable and DescribeTable with GSIs (PAY_PER_REQUEST and
//! PROVISIONED), ListTables and DeleteTable; index maintenance by PutItem,
//! UpdateItem, DeleteItem and BatchWriteItem; Query and Scan on an index
//! (key conditions, order, Select, filters, paging through ties, parallel
//! scans); read and write validation; ReturnConsumedCapacity=INDEXES; and
//! indexes that converge again after restarts and SIGKILL.
//!
//! A GSI is eventually consistent: after a write, an index read may lag.
//! Index contents are therefore checked through [`Table::converge`], which
//! polls until each index equals its view of the table (or fails with a
//! diff), never after a fixed sleep.
//!
//! Expectations come from DynamoDB's documentation and the research notes
//! (`docs/research/secondary-indexes.md` §1, §2, §4, §5).

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, Capacity, ConsumedCapacity, DeleteRequest, GlobalSecondaryIndex,
    KeyType, Projection, ProjectionType, ProvisionedThroughput, PutRequest,
    ReturnConsumedCapacity as Rcc, ScalarAttributeType as Sat, Select, TableDescription,
    WriteRequest,
};
use common::*;
use serde_json::{Value, json};

type Item = HashMap<String, AttributeValue>;
type Name = &'static str;
type Names = &'static [Name];
type Gsis = &'static [Gsi];

const VE: &str = "ValidationException";
const OOM: &str = "One or more parameter values were invalid: ";
/// How long an index may lag behind its table.
const CONVERGE_WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// A global secondary index: name, hash key, range key, projected
/// non-key attributes (`None` for ALL, `Some([])` for KEYS_ONLY), and
/// (read, write) units on PROVISIONED tables. `n` is a number attribute,
/// all others are strings.
#[derive(Clone, Copy, Debug)]
struct Gsi(Name, Name, Option<Name>, Option<Names>, Option<(i64, i64)>);

/// The standard table's (`pk` S HASH, `sk` S RANGE, PAY_PER_REQUEST): a
/// hash-only ALL index, a hash+range INCLUDE index on the same hash key,
/// and a KEYS_ONLY index whose range key is the table's sort key.
const STANDARD: [Gsi; 3] = [
    Gsi("by_g", "g", None, None, None),
    Gsi("by_gn", "g", Some("n"), Some(&["x"]), None),
    Gsi("by_ts", "t", Some("sk"), Some(&[]), None),
];

/// The PROVISIONED table's (`pk` S HASH only): an index whose range key is
/// the table's hash key, and a KEYS_ONLY index on a number.
const PROVISIONED: [Gsi; 2] = [
    Gsi("by_kind", "kind", Some("pk"), None, Some((3, 4))),
    Gsi("by_n", "n", None, Some(&[]), Some((1, 2))),
];

impl Gsi {
    fn keys(&self) -> Vec<Name> {
        std::iter::once(self.1).chain(self.2).collect()
    }

    fn projection_type(&self) -> ProjectionType {
        match self.3 {
            None => ProjectionType::All,
            Some([]) => ProjectionType::KeysOnly,
            Some(_) => ProjectionType::Include,
        }
    }

    fn definition(&self) -> GlobalSecondaryIndex {
        let include = self.3.filter(|a| !a.is_empty());
        let include = include.map(|a| a.iter().map(|a| a.to_string()).collect());
        let projection = Projection::builder().set_non_key_attributes(include);
        let projection = projection.projection_type(self.projection_type());
        let mut index = GlobalSecondaryIndex::builder().index_name(self.0);
        for (key, key_type) in self.keys().into_iter().zip([KeyType::Hash, KeyType::Range]) {
            index = index.key_schema(key_element(key, key_type));
        }
        let index = index.set_provisioned_throughput(self.4.map(throughput));
        index.projection(projection.build()).build().unwrap()
    }

    /// DescribeTable's JSON for it: ACTIVE, and empty.
    fn described(&self, table_arn: &str) -> Value {
        let (name, (read, write)) = (self.0, self.4.unwrap_or((0, 0)));
        let key = |(a, t): (&Name, &str)| json!({"AttributeName": a, "KeyType": t});
        let keys: Vec<Value> = self.keys().iter().zip(["HASH", "RANGE"]).map(key).collect();
        let mut projection = json!({"ProjectionType": self.projection_type().as_str()});
        if let Some(include @ [_, ..]) = self.3 {
            projection["NonKeyAttributes"] = json!(include);
        }
        let arn = format!("{table_arn}/index/{name}");
        json!({
            "IndexName": name, "KeySchema": keys, "Projection": projection, "IndexStatus": "ACTIVE",
            "ProvisionedThroughput":
                {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": read, "WriteCapacityUnits": write},
            "IndexSizeBytes": 0, "ItemCount": 0, "IndexArn": arn
        })
    }

    /// What it holds of the table items `items` (in no order): the items
    /// with all its key attributes, of their types (a sparse index), each
    /// projected to the table keys `table_keys`, the index keys and the
    /// INCLUDE attributes, or whole for ALL.
    fn view(&self, table_keys: &[Name], items: &[Item]) -> Vec<Item> {
        let keys = self.keys();
        let typed = |it: &Item, a: &str| {
            let pair = (it.get(a), a == "n");
            matches!(
                pair,
                (Some(AttributeValue::N(_)), true) | (Some(AttributeValue::S(_)), false)
            )
        };
        let projects = |a: &String| match self.3 {
            None => true,
            Some(include) => [table_keys, &keys, include].concat().contains(&a.as_str()),
        };
        let entry = |it: &Item| -> Item {
            let projected = it.iter().filter(|(a, _)| projects(a));
            projected.map(|(a, v)| (a.clone(), v.clone())).collect()
        };
        let indexed = items.iter().filter(|it| keys.iter().all(|a| typed(it, a)));
        indexed.map(entry).collect()
    }
}

fn throughput((read, write): (i64, i64)) -> ProvisionedThroughput {
    let units = ProvisionedThroughput::builder().read_capacity_units(read);
    units.write_capacity_units(write).build().unwrap()
}

/// An item (or key) from `"pk sk name=value ..."`: the words without `=`
/// are `pk`, then `sk`; `n` holds a number, every other attribute a string.
fn row(spec: &str) -> Item {
    let mut positional = ["pk", "sk"].into_iter();
    let mut it = Item::new();
    for word in spec.split_whitespace() {
        match word.split_once('=') {
            Some(("n", value)) => it.insert("n".into(), n(value)),
            Some((name, value)) => it.insert(name.into(), s(value)),
            None => it.insert(positional.next().unwrap().into(), s(word)),
        };
    }
    it
}

/// Expression attribute values from `"g=a v=3"`: `:g` = "a", `:v` = 3
/// (values that parse as numbers are numbers); none from `""`.
fn values(spec: &str) -> Option<Item> {
    let value = |v: &str| if v.parse::<f64>().is_ok() { n(v) } else { s(v) };
    let pairs = spec.split_whitespace().map(|w| w.split_once('=').unwrap());
    let values: Item = pairs.map(|(a, v)| (format!(":{a}"), value(v))).collect();
    (!values.is_empty()).then_some(values)
}

fn put_request(spec: &str) -> WriteRequest {
    let put = PutRequest::builder().set_item(Some(row(spec))).build();
    WriteRequest::builder().put_request(put.unwrap()).build()
}

fn delete_request(key: &str) -> WriteRequest {
    let delete = DeleteRequest::builder().set_key(Some(row(key))).build();
    let request = WriteRequest::builder().delete_request(delete.unwrap());
    request.build()
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

/// The table keys of items, as `"pk sk"` (`"pk"` without a sort key).
fn keys(items: &[Item]) -> Vec<String> {
    let text = |a: &str, it: &Item| it.get(a).map(|v| v.as_s().unwrap().clone());
    let key = |it: &Item| [text("pk", it), text("sk", it)].into_iter().flatten();
    let key = |it: &Item| key(it).collect::<Vec<_>>().join(" ");
    items.iter().map(key).collect()
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort_unstable();
    lines
}

/// Whether the values of `attribute` in `items` are in index order.
fn in_order(items: &[Item], attribute: &str, forward: bool) -> bool {
    let number = |v: &AttributeValue| v.as_n().ok().map(|n| n.parse::<f64>().unwrap());
    let text = |v: &AttributeValue| v.as_s().unwrap().as_bytes().to_vec();
    items.windows(2).all(|w| {
        let (a, b) = (&w[0][attribute], &w[1][attribute]);
        let o = match (number(a), number(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => text(a).cmp(&text(b)),
        };
        if forward { o.is_le() } else { o.is_ge() }
    })
}

/// Checks a page's LastEvaluatedKey: exactly the attributes `want` (sorted,
/// with spaces; unchecked if empty) with the values of its last item.
#[track_caller]
fn check_last_key(lek: &Item, items: &[Item], want: &str) {
    let last = items.last().unwrap();
    for attribute in want.split_whitespace() {
        assert_eq!(lek[attribute], last[attribute], "{attribute} of {lek:?}");
    }
    assert!(want.is_empty() || names(lek) == want, "{lek:?}");
}

/// Runs a Query or Scan (built by `$make`) page after page, checking each
/// LastEvaluatedKey with [`check_last_key`]: (page count, all items).
macro_rules! all_pages {
    ($make:expr, $lek:expr) => {{
        let (mut pages, mut items, mut start) = (0_usize, Vec::<Item>::new(), None);
        loop {
            let out = ok($make().set_exclusive_start_key(start).send().await);
            pages += 1;
            start = out.last_evaluated_key;
            let page = out.items.unwrap_or_default();
            if let Some(key) = &start {
                check_last_key(key, &page, $lek);
            }
            items.extend(page);
            if start.is_none() {
                break (pages, items);
            }
            assert!(pages < 1_000, "paging does not end");
        }
    }};
}

/// The table keys of what one query page returns.
async fn keys_of(query: QueryFluentBuilder) -> Vec<String> {
    keys(ok(query.send().await).items())
}

/// A table with global indexes, keys `keys` (`pk`, and maybe `sk`).
struct Table {
    client: Client,
    /// The server's address, for raw requests.
    addr: String,
    name: Name,
    keys: Names,
    indexes: Gsis,
    /// CreateTable's answer.
    created: TableDescription,
}

impl Table {
    /// The standard table ([`STANDARD`]), PAY_PER_REQUEST.
    async fn create(server: &TestServer, name: Name) -> Table {
        Self::create_with(server, name, &["pk", "sk"], &STANDARD).await
    }

    /// PROVISIONED (5, 5) if the indexes have units, else PAY_PER_REQUEST.
    async fn create_with(server: &TestServer, name: Name, keys: Names, indexes: Gsis) -> Table {
        let (client, addr) = (server.client(), server.addr().to_string());
        let mut request = client.create_table().table_name(name);
        request = match indexes[0].4 {
            Some(_) => request.provisioned_throughput(throughput((5, 5))),
            None => request.billing_mode(BillingMode::PayPerRequest),
        };
        for (key, key_type) in keys.iter().zip([KeyType::Hash, KeyType::Range]) {
            request = request.key_schema(key_element(key, key_type));
        }
        let mut defined: Vec<Name> = Vec::new();
        let index_keys = indexes.iter().flat_map(Gsi::keys);
        for attribute in keys.iter().copied().chain(index_keys) {
            if !defined.contains(&attribute) {
                defined.push(attribute);
                let ty = if attribute == "n" { Sat::N } else { Sat::S };
                request = request.attribute_definitions(attr_def(attribute, ty));
            }
        }
        for index in indexes {
            request = request.global_secondary_indexes(index.definition());
        }
        let created = ok(request.send().await).table_description.unwrap();
        let statuses = created.global_secondary_indexes().iter();
        let statuses = statuses.map(|d| d.index_status().unwrap().as_str());
        let creating = vec!["CREATING"; indexes.len()];
        assert_eq!(statuses.collect::<Vec<_>>(), creating, "CreateTable");
        wait_active(&client, name).await;
        Table {
            client,
            addr,
            name,
            keys,
            indexes,
            created,
        }
    }

    /// The same table through the server `server` (after a restart).
    async fn reopen(self, server: &TestServer) -> Table {
        let (client, addr) = (server.client(), server.addr().to_string());
        wait_active(&client, self.name).await;
        let mut table = self;
        (table.client, table.addr) = (client, addr);
        table
    }

    /// DescribeTable's `Table`, as JSON.
    fn describe(&self) -> Value {
        let request = RawRequest::op("DescribeTable", &json!({ "TableName": self.name }));
        raw(&self.addr, &request).json()["Table"].take()
    }

    fn index(&self, name: &str) -> &Gsi {
        self.indexes.iter().find(|i| i.0 == name).unwrap()
    }

    async fn put(&self, spec: &str) {
        let request = self.client.put_item().table_name(self.name);
        ok(request.set_item(Some(row(spec))).send().await);
    }

    /// An UpdateItem of `key` with `expression` and the values `spec`.
    fn update_item(&self, key: &str, expression: &str, spec: &str) -> UpdateItemFluentBuilder {
        let request = self.client.update_item().table_name(self.name);
        let request = request
            .set_key(Some(row(key)))
            .set_expression_attribute_values(values(spec));
        request.update_expression(expression)
    }

    async fn update(&self, key: &str, expression: &str, spec: &str) {
        ok(self.update_item(key, expression, spec).send().await);
    }

    async fn delete(&self, key: &str) {
        let request = self.client.delete_item().table_name(self.name);
        ok(request.set_key(Some(row(key))).send().await);
    }

    async fn get(&self, key: &str) -> Option<Item> {
        let request = self.client.get_item().table_name(self.name);
        let request = request.consistent_read(true).set_key(Some(row(key)));
        ok(request.send().await).item
    }

    /// A Query of index `index`: key condition `condition`, values `spec`.
    fn query(&self, index: &str, condition: &str, spec: &str) -> QueryFluentBuilder {
        let request = self.client.query().table_name(self.name).index_name(index);
        let request = request.key_condition_expression(condition);
        request.set_expression_attribute_values(values(spec))
    }

    fn scan(&self, index: &str) -> ScanFluentBuilder {
        self.client.scan().table_name(self.name).index_name(index)
    }

    /// Every entry of index `index` whose hash key is `value`, in order.
    async fn partition(&self, index: &str, value: &AttributeValue, forward: bool) -> Vec<Item> {
        let query = self.query(index, "#h = :h", "").scan_index_forward(forward);
        let query = query.expression_attribute_names("#h", self.index(index).1);
        let query = query.expression_attribute_values(":h", value.clone());
        all_pages!(|| query.clone(), "").1
    }

    /// The table keys in partition `g` of `by_g`, sorted.
    async fn by_g(&self, g: &str) -> Vec<String> {
        sorted(keys(&self.partition("by_g", &s(g), true).await))
    }

    /// Polls until a full Scan of every index equals the index's view of a
    /// Scan of the table, then checks each index partition's Query in both
    /// directions; fails with a diff after [`CONVERGE_WITHIN`]. Returns the
    /// table's items.
    async fn converge(&self) -> Vec<Item> {
        let deadline = Instant::now() + CONVERGE_WITHIN;
        let table = self.client.scan().table_name(self.name);
        loop {
            let items = all_pages!(|| table.clone().consistent_read(true), "").1;
            let mut diffs = String::new();
            for index in self.indexes {
                let want = shown(&index.view(self.keys, &items));
                let got = shown(&all_pages!(|| self.scan(index.0), "").1);
                let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
                let unexpected: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
                if got != want {
                    let (name, had, should) = (index.0, got.len(), want.len());
                    diffs += &format!("{name}: {had} entries for {should} in the table\n");
                    diffs += &format!("missing: {missing:#?}\nunexpected: {unexpected:#?}\n");
                }
            }
            if diffs.is_empty() {
                for index in self.indexes {
                    let entries = index.view(self.keys, &items);
                    self.check_partitions(index, &entries).await;
                }
                return items;
            }
            let late = Instant::now() >= deadline;
            assert!(!late, "{}: not converged after 10 s:\n{diffs}", self.name);
            tokio::time::sleep(POLL).await;
        }
    }

    /// A Query of each hash key value of `index` returns exactly its
    /// entries of `entries`, ordered by the index range key.
    async fn check_partitions(&self, index: &Gsi, entries: &[Item]) {
        let mut partitions: BTreeMap<String, Vec<Item>> = BTreeMap::new();
        for entry in entries {
            let value = format!("{:?}", entry[index.1]);
            partitions.entry(value).or_default().push(entry.clone());
        }
        for want in partitions.values() {
            let value = &want[0][index.1];
            for forward in [true, false] {
                let got = self.partition(index.0, value, forward).await;
                let what = format!("{} {value:?} forward={forward}", index.0);
                assert_eq!(shown(&got), shown(want), "{what}");
                let range = index.2.unwrap_or(index.1);
                assert!(in_order(&got, range, forward), "{what}: {got:#?}");
            }
        }
    }

    /// Polls DescribeTable until each index's ItemCount is the number of
    /// entries in its view of `items`, with IndexSizeBytes > 0 exactly when
    /// there are some.
    async fn wait_item_counts(&self, items: &[Item]) {
        let deadline = Instant::now() + CONVERGE_WITHIN;
        let count = |i: &Gsi| json!([i.0, i.view(self.keys, items).len()]);
        let want: Vec<Value> = self.indexes.iter().map(count).collect();
        let stats = |d: &Value| json!([d["IndexName"], d["ItemCount"]]);
        let sized = |d: &Value| (d["ItemCount"] == 0) == (d["IndexSizeBytes"] == 0);
        loop {
            let desc = self.describe();
            let described = desc["GlobalSecondaryIndexes"].as_array().unwrap();
            let got: Vec<Value> = described.iter().map(stats).collect();
            if got == want && described.iter().all(sized) {
                return;
            }
            let late = Instant::now() >= deadline;
            assert!(!late, "ItemCount: {got:?} for {want:?}\n{described:#?}");
            tokio::time::sleep(POLL).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn describe_table_shows_global_indexes_and_list_tables_hides_theirs() {
    let table = Table::create(shared_server(), "gsi-describe").await;
    let desc = table.describe();
    assert_eq!(desc["TableStatus"], "ACTIVE");
    let arn = desc["TableArn"].as_str().unwrap();
    let want: Vec<Value> = STANDARD.iter().map(|i| i.described(arn)).collect();
    assert_eq!(desc["GlobalSecondaryIndexes"], json!(want));
    let defs = desc["AttributeDefinitions"].as_array().unwrap().iter();
    let defs = sorted(defs.map(|d| d["AttributeName"].to_string()).collect());
    assert_eq!(defs.join(" "), r#""g" "n" "pk" "sk" "t""#);
    assert_eq!(desc.get("LocalSecondaryIndexes"), None);
    // ItemCount and IndexSizeBytes follow the writes.
    for i in 0..9 {
        let t = ["t=e", ""][i % 2];
        let g = i % 3;
        table.put(&format!("p k{i} g=g{g} n={i} x=x{i} {t}")).await;
    }
    table.put("p k9 memo=unindexed").await;
    let items = table.converge().await;
    table.wait_item_counts(&items).await;
    // ListTables lists the user's tables, never the indexes' hidden ones.
    let listed = ok(table.client.list_tables().send().await).table_names;
    let listed = listed.unwrap();
    assert!(listed.iter().any(|name| name == table.name), "{listed:?}");
    assert!(!listed.iter().any(|name| name.contains('/')), "{listed:?}");
    // "For indexes that were created during a CreateTable operation, the
    // Backfilling attribute does not appear" (GlobalSecondaryIndexDescription).
    let created = table.created.global_secondary_indexes().iter();
    let backfilling: Vec<_> = created.map(|d| d.backfilling()).collect();
    assert_eq!(backfilling, [None; 3], "Backfilling in CreateTable");
}

#[tokio::test]
async fn provisioned_global_indexes_have_their_throughput_and_page_on_table_keys() {
    let server = shared_server();
    let table = Table::create_with(server, "gsi-provisioned", &["pk"], &PROVISIONED).await;
    let desc = table.describe();
    let arn = desc["TableArn"].as_str().unwrap();
    let want: Vec<Value> = PROVISIONED.iter().map(|i| i.described(arn)).collect();
    assert_eq!(desc["GlobalSecondaryIndexes"], json!(want));
    for i in 0..25 {
        table.put(&format!("id{i:02} kind=k n={}", i % 4)).await;
    }
    for spec in ["o1 kind=other n=9", "o2 kind=other", "o3 n=1", "o4"] {
        table.put(spec).await;
    }
    let items = table.converge().await;
    table.wait_item_counts(&items).await;
    // The range key is the table's hash key: LastEvaluatedKey names it once.
    let (pages, got) = all_pages!(|| table.scan("by_kind").limit(10), "kind pk");
    assert!(pages >= 3, "27 entries, 10 a page: {pages} pages");
    assert_eq!(shown(&got), shown(&PROVISIONED[0].view(&["pk"], &items)));
    let ids = |all: Vec<usize>| all.iter().map(|i| format!("id{i:02}")).collect::<Vec<_>>();
    let kind = table.query("by_kind", "kind = :k", "k=k").limit(7);
    let (_, got) = all_pages!(|| kind.clone().scan_index_forward(false), "kind pk");
    assert_eq!(keys(&got), ids((0..25).rev().collect()));
    let condition = "kind = :k AND begins_with(pk, :p)";
    let starting = table.query("by_kind", condition, "k=k p=id1");
    assert_eq!(keys_of(starting).await, ids((10..20).collect()));
    // A number-keyed KEYS_ONLY index.
    let entries = ok(table.query("by_n", "n = :n", "n=1").send().await).items;
    let entries = entries.unwrap();
    let mut want = ids((0..25).filter(|i| i % 4 == 1).collect());
    want.push("o3".into());
    assert_eq!(sorted(keys(&entries)), want);
    assert!(entries.iter().all(|e| names(e) == "n pk"), "{entries:?}");
}

#[tokio::test]
async fn delete_table_takes_its_global_indexes_and_a_new_table_starts_empty() {
    let table = Table::create(shared_server(), "gsi-recreate").await;
    for i in 0..5 {
        table.put(&format!("p k{i} g=old n={i} t=t")).await;
    }
    table.converge().await;
    let client = table.client.clone();
    ok(client.delete_table().table_name(table.name).send().await);
    let deadline = Instant::now() + Duration::from_secs(10);
    let describe = client.describe_table().table_name(table.name);
    while describe.clone().send().await.is_ok() {
        assert!(Instant::now() < deadline, "not gone after 10 s");
        tokio::time::sleep(POLL).await;
    }
    let err = api_error(table.query("by_g", "g = :g", "g=old").send().await);
    assert_eq!(err.code, "ResourceNotFoundException", "{err:?}");
    let listed = ok(client.list_tables().send().await).table_names.unwrap();
    let left = |name: &String| name == table.name || name.contains('/');
    assert!(!listed.iter().any(left), "{listed:?}");
    // The same name, again with global indexes: nothing of the old table.
    let table = Table::create(shared_server(), "gsi-recreate").await;
    for index in &STANDARD {
        assert_eq!(ok(table.scan(index.0).send().await).count, 0, "{index:?}");
    }
    table.wait_item_counts(&[]).await;
    table.put("p k0 g=new n=1").await;
    assert_eq!(table.converge().await.len(), 1);
    assert_eq!(table.by_g("new").await, ["p k0"]);
    assert_eq!(table.by_g("old").await, Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// Maintenance
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_write_keeps_the_global_indexes_converging_to_the_table() {
    let table = Table::create(shared_server(), "gsi-maintain").await;
    for spec in [
        "p a g=red n=1 t=x x=x1 memo=m1",
        "p b g=red n=2 x=x2",
        "p c g=blue n=3 t=y",
        "p d n=4 t=x",
        "p e g=red memo=m5",
        "q a g=blue n=1 t=z x=x6",
    ] {
        table.put(spec).await;
    }
    table.converge().await;
    assert_eq!(table.by_g("red").await, ["p a", "p b", "p e"]);
    // The index partition key changes: the entry moves.
    table.update("p a", "SET g = :g", "g=green").await;
    table.converge().await;
    assert_eq!(table.by_g("green").await, ["p a"]);
    assert_eq!(table.by_g("red").await, ["p b", "p e"]);
    // Only the index sort key changes.
    table.update("p b", "SET n = :n", "n=-5").await;
    table.converge().await;
    let red = table.partition("by_gn", &s("red"), true).await;
    assert_eq!(red, [row("p b g=red n=-5 x=x2")]);
    // A key attribute removed: the item leaves by_g and by_gn, not by_ts.
    table.update("p c", "REMOVE g", "").await;
    table.converge().await;
    assert_eq!(table.by_g("blue").await, ["q a"]);
    // A projected non-key attribute (x is in by_gn), then one by_gn does
    // not project (memo: only by_g, which projects ALL, has it).
    table.update("p b", "SET x = :x", "x=x2b").await;
    table.update("p a", "SET memo = :m", "m=m1b").await;
    table.converge().await;
    let green = table.partition("by_gn", &s("green"), true).await;
    assert_eq!(green, [row("p a g=green n=1 x=x1")]);
    let green = table.partition("by_g", &s("green"), true).await;
    assert_eq!(green, [row("p a g=green n=1 t=x x=x1 memo=m1b")]);
    // A key attribute added: the item enters the index.
    table.update("p d", "SET g = :g", "g=red").await;
    // Many items with the same index keys.
    for i in 0..12 {
        table.put(&format!("r k{i:02} g=shared n=7 t=x")).await;
    }
    table.converge().await;
    assert_eq!(table.by_g("shared").await.len(), 12);
    let shared = table.partition("by_gn", &s("shared"), false).await;
    assert_eq!(shared.len(), 12);
    assert_eq!(table.partition("by_ts", &s("x"), true).await.len(), 14);
    // A refused conditional write changes no index.
    let refused = table.update_item("p e", "SET g = :g", "g=blue");
    let refused = refused.condition_expression("attribute_not_exists(pk)");
    let err = api_error(refused.send().await);
    assert_eq!(err.code, "ConditionalCheckFailedException");
    // PutItem replaces the whole item; DeleteItem removes its entries.
    table.put("p a t=x").await;
    table.delete("p b").await;
    table.converge().await;
    assert_eq!(table.by_g("green").await, Vec::<String>::new());
    assert_eq!(table.by_g("red").await, ["p d", "p e"]);
    // BatchWriteItem puts and deletes; an item moves out of "shared".
    let writes = vec![
        put_request("p f g=red n=0 t=w x=x7"),
        put_request("r k00 g=other n=1"),
        delete_request("r k01"),
        delete_request("p zz"),
    ];
    let batch = table.client.batch_write_item();
    let out = ok(batch.request_items(table.name, writes).send().await);
    assert!(out.unprocessed_items.unwrap_or_default().is_empty());
    let items = table.converge().await;
    assert_eq!(items.len(), 17);
    assert_eq!(table.by_g("shared").await.len(), 10);
    assert_eq!(table.by_g("red").await, ["p d", "p e", "p f"]);
    table.wait_item_counts(&items).await;
}

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

#[tokio::test]
async fn index_queries_use_the_index_keys_select_and_filters() {
    let table = Table::create(shared_server(), "gsi-query").await;
    for spec in [
        "p k1 g=a n=1 t=s x=x1 memo=m1",
        "p k2 g=a n=2 t=s x=x2 memo=m2",
        "p k3 g=a n=3 x=x3",
        "p k10 g=a n=10 t=s memo=m4",
        "p k5 g=b n=2 t=s",
        "q k1 g=a n=-1 t=z x=x6",
        "q k2 t=s",
    ] {
        table.put(spec).await;
    }
    let items = table.converge().await;
    // Key conditions on the index keys, in both directions.
    for spec in [
        "by_gn | g = :g | g=a | q k1,p k1,p k2,p k3,p k10",
        "by_gn | g = :g AND n < :v | g=a v=3 | q k1,p k1,p k2",
        "by_gn | g = :g AND n BETWEEN :lo AND :hi | g=a lo=2 hi=10 | p k2,p k3,p k10",
        "by_gn | g = :g AND n = :v | g=b v=2 | p k5",
        "by_ts | t = :t AND begins_with(sk, :p) | t=s p=k1 | p k1,p k10",
        "by_ts | t = :t AND sk > :k | t=s k=k2 | p k5",
    ] {
        let [index, condition, values, want] = spec.split(" | ").collect::<Vec<_>>()[..] else {
            panic!("{spec}")
        };
        let query = table.query(index, condition, values);
        assert_eq!(keys_of(query.clone()).await.join(","), want, "{condition}");
        let mut backward = keys_of(query.scan_index_forward(false)).await;
        backward.reverse();
        assert_eq!(backward.join(","), want, "{condition}, backward");
    }
    // What entries hold: the default is ALL_PROJECTED_ATTRIBUTES.
    let a = || table.query("by_gn", "g = :g", "g=a");
    let entries = ok(a().send().await).items.unwrap();
    let with_x = "g n pk sk x";
    let entry_names: Vec<String> = entries.iter().map(names).collect();
    assert_eq!(entry_names, [with_x, with_x, with_x, with_x, "g n pk sk"]);
    let projected = ok(a().select(Select::AllProjectedAttributes).send().await);
    assert_eq!(projected.items.unwrap(), entries);
    let keys_only = ok(table.query("by_ts", "t = :t", "t=s").send().await);
    let keys_only: Vec<String> = keys_only.items().iter().map(names).collect();
    assert_eq!(keys_only, ["pk sk t"; 5]);
    // ALL_ATTRIBUTES on an ALL index: whole items.
    let by_g = || table.query("by_g", "g = :g", "g=a");
    let whole = ok(by_g().select(Select::AllAttributes).send().await).items;
    let in_a = items.into_iter().filter(|it| it.get("g") == Some(&s("a")));
    assert_eq!(shown(&whole.unwrap()), shown(&in_a.collect::<Vec<_>>()));
    let count = ok(a().select(Select::Count).send().await);
    assert_eq!((count.count, count.scanned_count), (5, 5));
    assert_eq!(count.items, None);
    let picked = table.query("by_gn", "g = :g AND n = :v", "g=a v=2");
    let picked = ok(picked.projection_expression("pk, x").send().await).items;
    assert_eq!(picked.unwrap(), [item([("pk", s("p")), ("x", s("x2"))])]);
    // Filters on non-key attributes, on Query and Scan.
    let memo = by_g().filter_expression("attribute_exists(memo)");
    let memo = ok(memo.send().await);
    assert_eq!(sorted(keys(memo.items())), ["p k1", "p k10", "p k2"]);
    assert_eq!((memo.count, memo.scanned_count), (3, 5));
    let x2 = table.query("by_gn", "g = :g", "g=a x=x2");
    let x2 = ok(x2.filter_expression("x = :x").send().await);
    assert_eq!(
        (keys(x2.items()), x2.scanned_count),
        (vec!["p k2".into()], 5)
    );
    let scan = table
        .scan("by_gn")
        .set_expression_attribute_values(values("x=x"));
    let scan = ok(scan.filter_expression("begins_with(x, :x)").send().await);
    assert_eq!(sorted(keys(scan.items())), ["p k1", "p k2", "p k3", "q k1"]);
    assert_eq!((scan.count, scan.scanned_count), (4, 6));
}

#[tokio::test]
async fn index_reads_page_through_ties_and_scan_segments_once() {
    let table = Table::create(shared_server(), "gsi-pages").await;
    // Ten entries tie on both index keys (over two table partitions).
    for i in 0..10 {
        let pk = ["p", "q"][i % 2];
        table.put(&format!("{pk} t{i} g=same n=5 t=t")).await;
    }
    for i in 0..4 {
        table.put(&format!("p u{i} g=same n={} t=t", i * 3)).await;
    }
    for spec in ["r a g=else n=1", "r b g=else", "r c n=2", "r d x=1"] {
        table.put(spec).await;
    }
    let items = table.converge().await;
    let same = table.query("by_gn", "g = :g", "g=same");
    let whole = ok(same.clone().send().await).items.unwrap();
    assert_eq!(whole.len(), 14);
    for (limit, forward) in [(3, true), (3, false), (1, true), (4, false)] {
        let same = same.clone().limit(limit).scan_index_forward(forward);
        let (pages, got) = all_pages!(|| same.clone(), "g n pk sk");
        let what = format!("limit {limit}, forward={forward}, {pages} pages");
        assert!(pages >= 14 / limit as usize, "{what}");
        assert_eq!(shown(&got), shown(&whole), "{what}: each entry once");
        assert!(in_order(&got, "n", forward), "{what}: {got:?}");
    }
    // A hash-only index pages through its one partition as well.
    let by_g = table.query("by_g", "g = :g", "g=same").limit(4);
    assert_eq!(all_pages!(|| by_g.clone(), "g pk sk").1.len(), 14);
    // Scans: whole, paged, and in 4 parallel segments: each entry once.
    let leks = [
        ("by_gn", "g n pk sk"),
        ("by_g", "g pk sk"),
        ("by_ts", "pk sk t"),
    ];
    for (index, lek) in leks {
        let want = shown(&table.index(index).view(&["pk", "sk"], &items));
        let one = ok(table.scan(index).send().await);
        assert_eq!(shown(one.items()), want, "{index}: one scan");
        let (pages, paged) = all_pages!(|| table.scan(index).limit(4), lek);
        assert!(pages >= want.len() / 4, "{index}: {pages} pages");
        assert_eq!(shown(&paged), want, "{index}: paged scan");
        let mut segments = Vec::new();
        for segment in 0..4 {
            let scan = table.scan(index).segment(segment).total_segments(4);
            segments.extend(all_pages!(|| scan.clone().limit(2), lek).1);
        }
        assert_eq!(shown(&segments), want, "{index}: parallel scan");
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn global_index_reads_are_validated() {
    let table = Table::create(shared_server(), "gsi-read-errors").await;
    table.put("p a g=a n=1 t=t").await;
    table.converge().await;
    let query = |index: &str| table.query(index, "g = :g", "g=a");
    let consistent = "Consistent reads are not supported on global secondary indexes";
    let result = query("by_g").consistent_read(true).send().await;
    assert_error(result, VE, consistent);
    let result = table.scan("by_ts").consistent_read(true).send().await;
    assert_error(result, VE, consistent);
    let whole = |index: &str| {
        format!(
            "{OOM}Select type ALL_ATTRIBUTES is not supported for global secondary index {index} because its projection type is not ALL"
        )
    };
    let result = query("by_gn").select(Select::AllAttributes).send().await;
    assert_error(result, VE, &whole("by_gn"));
    let select = table.scan("by_ts").select(Select::AllAttributes);
    assert_error(select.send().await, VE, &whole("by_ts"));
    // A global index never fetches what it does not project (LocalStack
    // issue 478 quotes DynamoDB's message).
    let unprojected = query("by_gn")
        .projection_expression("pk, x, memo.deep, #o, memo.more")
        .expression_attribute_names("#o", "other");
    let message = format!("{OOM}Global secondary index by_gn does not project [memo, other]");
    assert_error(unprojected.send().await, VE, &message);
    let projected = query("by_gn").projection_expression("pk, sk, g, n, x");
    assert_eq!(ok(projected.send().await).count, 1);
    let keys_only = table.scan("by_ts").projection_expression("t, g");
    let message = format!("{OOM}Global secondary index by_ts does not project [g]");
    assert_error(keys_only.send().await, VE, &message);
    let missing = "The table does not have the specified index: nope";
    assert_error(query("nope").send().await, VE, missing);
    assert_error(table.scan("nope").send().await, VE, missing);
    // The key condition is checked against the index's keys.
    let on_table_key = table.query("by_g", "pk = :p", "p=p").send().await;
    let message = "Query condition missed key schema element: g";
    assert_error(on_table_key, VE, message);
    // A start key must hold the table's and the index's keys.
    let start = query("by_gn").set_exclusive_start_key(Some(row("p a g=a")));
    let message = "The provided starting key is invalid";
    assert_error(start.send().await, VE, message);
    // Eventually consistent reads of the same indexes work.
    let result = query("by_g").consistent_read(false).send().await;
    assert_eq!(ok(result).count, 1);
    assert_eq!(ok(table.scan("by_ts").send().await).count, 1);
}

#[tokio::test]
async fn writes_with_unusable_global_index_keys_are_refused() {
    let table = Table::create(shared_server(), "gsi-bad-keys").await;
    table.put("p a g=ok n=1").await;
    let with = |spec: &str, attribute: &str, v: AttributeValue| {
        let mut it = row(spec);
        it.insert(attribute.to_string(), v);
        let request = table.client.put_item().table_name(table.name);
        request.set_item(Some(it)).send()
    };
    let mismatch = |key: &str, expected: &str, actual: &str, index: &str| {
        format!(
            "{OOM}Type mismatch for Index Key {key} Expected: {expected} Actual: {actual} IndexName: {index}"
        )
    };
    // g is a key of by_g and by_gn: the first index by name is reported.
    let g_number = mismatch("g", "S", "N", "by_g");
    assert_error(with("p a", "g", n("1")).await, VE, &g_number);
    assert_error(with("p b", "g", n("1")).await, VE, &g_number);
    let n_string = mismatch("n", "N", "S", "by_gn");
    assert_error(with("p b g=ok", "n", s("1")).await, VE, &n_string);
    let empty_put = "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: by_g, IndexKey: g";
    assert_error(with("p b", "g", s("")).await, VE, empty_put);
    let mut empty = row("p c");
    empty.insert("g".into(), s(""));
    let put = PutRequest::builder().set_item(Some(empty)).build().unwrap();
    let writes = vec![WriteRequest::builder().put_request(put).build()];
    let batch = table.client.batch_write_item();
    let result = batch.request_items(table.name, writes).send().await;
    assert_error(result, VE, empty_put);
    let set = |v: AttributeValue| {
        let request = table.update_item("p a", "SET g = :v", "");
        request.expression_attribute_values(":v", v).send()
    };
    assert_error(set(n("5")).await, VE, &g_number);
    let empty_update = "One or more parameter values are not valid. The update expression attempted to update a secondary index key to a value that is not supported. The AttributeValue for a key attribute cannot contain an empty string value.";
    assert_error(set(s("")).await, VE, empty_update);
    // Nothing was written, to the table or its indexes.
    assert_eq!(table.get("p a").await, Some(row("p a g=ok n=1")));
    assert_eq!(table.get("p b").await, None);
    assert_eq!(table.get("p c").await, None);
    assert_eq!(table.converge().await, [row("p a g=ok n=1")]);
    assert_eq!(table.by_g("ok").await, ["p a"]);
}

// ---------------------------------------------------------------------------
// Capacity and durability
// ---------------------------------------------------------------------------

/// The global index units of an INDEXES report, after checking its total
/// (and that it has no local index units).
#[track_caller]
fn global_units(consumed: Option<ConsumedCapacity>, table: &str) -> BTreeMap<String, f64> {
    let consumed = consumed.expect("ConsumedCapacity");
    assert_eq!(consumed.table_name(), Some(table));
    assert_eq!(consumed.local_secondary_indexes(), None);
    let on_table = consumed.table().and_then(|t| t.capacity_units());
    let indexes = consumed.global_secondary_indexes().into_iter().flatten();
    let units = |(name, c): (&String, &Capacity)| (name.clone(), c.capacity_units().unwrap());
    let units: BTreeMap<String, f64> = indexes.map(units).collect();
    let total = on_table.unwrap_or(0.0) + units.values().sum::<f64>();
    assert_eq!(consumed.capacity_units(), Some(total), "{consumed:?}");
    units
}

fn units<const N: usize>(pairs: [(&str, f64); N]) -> BTreeMap<String, f64> {
    BTreeMap::from(pairs.map(|(name, u)| (name.to_string(), u)))
}

#[tokio::test]
async fn capacity_is_reported_per_global_index() {
    let table = Table::create(shared_server(), "gsi-capacity").await;
    let put = |spec: &str| {
        let request = table.client.put_item().table_name(table.name);
        let request = request.set_item(Some(row(spec)));
        request.return_consumed_capacity(Rcc::Indexes).send()
    };
    let out = ok(put("p a g=a n=1 t=s x=x1").await);
    let on_table = out.consumed_capacity.as_ref().unwrap().table().unwrap();
    assert_eq!(on_table.capacity_units(), Some(1.0));
    let each = units([("by_g", 1.0), ("by_gn", 1.0), ("by_ts", 1.0)]);
    assert_eq!(global_units(out.consumed_capacity, table.name), each);
    // As documented (GSI.html#GSI.Writes): no write where an index's entry
    // stays as it was; two where its key changes (a delete and a put).
    let update = |expression: &str, spec: &str| {
        let request = table.update_item("p a", expression, spec);
        request.return_consumed_capacity(Rcc::Indexes).send()
    };
    let out = ok(update("SET memo = :m", "m=m").await);
    let all = units([("by_g", 1.0)]);
    assert_eq!(global_units(out.consumed_capacity, table.name), all);
    let out = ok(update("SET g = :g", "g=b").await);
    let moved = units([("by_g", 2.0), ("by_gn", 2.0)]);
    assert_eq!(global_units(out.consumed_capacity, table.name), moved);
    let out = ok(put("p z memo=none").await);
    assert_eq!(global_units(out.consumed_capacity, table.name), units([]));
    table.converge().await;
    // Reads of an index report that index.
    let query = |rcc: Rcc| {
        let request = table.query("by_g", "g = :g", "g=b");
        request.return_consumed_capacity(rcc).send()
    };
    let out = ok(query(Rcc::Indexes).await);
    assert_eq!(out.count, 1);
    let read = global_units(out.consumed_capacity, table.name);
    assert_eq!(read.keys().collect::<Vec<_>>(), ["by_g"]);
    assert!(read["by_g"] > 0.0, "{read:?}");
    let scan = table.scan("by_gn").return_consumed_capacity(Rcc::Indexes);
    let read = global_units(ok(scan.send().await).consumed_capacity, table.name);
    assert_eq!(read.keys().collect::<Vec<_>>(), ["by_gn"]);
    let consumed = ok(query(Rcc::Total).await).consumed_capacity.unwrap();
    assert!(consumed.capacity_units().is_some_and(|units| units > 0.0));
    let breakdown = consumed.global_secondary_indexes();
    assert_eq!(breakdown, None, "TOTAL has no per-index breakdown");
}

#[tokio::test]
async fn global_indexes_converge_after_restarts_and_sigkill() {
    let (mut dir, tmp) = (tempfile::Builder::new(), env!("CARGO_TARGET_TMPDIR"));
    let dir = dir.prefix("atoll-e2e-gsi-").tempdir_in(tmp).unwrap();
    let data = dir.path().join("data");
    let server = TestServer::start_in(&data);
    let table = Table::create(&server, "gsi-durable").await;
    for i in 0..10 {
        let g = i % 3;
        table.put(&format!("p k{i} g=g{g} n={i} t=t x=x{i}")).await;
    }
    let before = table.converge().await;

    // A clean stop and a restart.
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM: {status:?}\n{}", server.stderr());
    drop(server);
    let server = TestServer::start_in(&data);
    let table = table.reopen(&server).await;
    assert_eq!(shown(&table.converge().await), shown(&before));

    // A burst of acknowledged writes, then SIGKILL at once: the index
    // changes not shipped yet wait in the durable outbox.
    let mut burst = tokio::task::JoinSet::new();
    let failed = |e: &dyn std::error::Error| format!("{e:?}");
    for i in 0..40 {
        let it = row(&format!("b k{i:02} g=g{} n={i} t=u x=y{i}", i % 5));
        let request = table.client.put_item().table_name(table.name);
        let request = request.set_item(Some(it));
        burst.spawn(async move { request.send().await.map(|_| ()).map_err(|e| failed(&e)) });
    }
    for i in 0..5 {
        let (key, values) = (format!("p k{i}"), format!("g=moved n={}", 100 + i));
        let request = table.update_item(&key, "SET g = :g, n = :n", &values);
        burst.spawn(async move { request.send().await.map(|_| ()).map_err(|e| failed(&e)) });
    }
    for i in 5..8 {
        let request = table.client.delete_item().table_name(table.name);
        let request = request.set_key(Some(row(&format!("p k{i}"))));
        burst.spawn(async move { request.send().await.map(|_| ()).map_err(|e| failed(&e)) });
    }
    let request = table.update_item("p k8", "REMOVE g", "");
    burst.spawn(async move { request.send().await.map(|_| ()).map_err(|e| failed(&e)) });
    while let Some(done) = burst.join_next().await {
        assert_eq!(done.unwrap(), Ok(()), "a write of the burst");
    }
    server.kill9();
    drop(server);
    let server = TestServer::start_in(&data);
    let table = table.reopen(&server).await;
    let items = table.converge().await;
    assert_eq!(items.len(), 10 - 3 + 40, "acknowledged writes");
    let moved = ["p k0", "p k1", "p k2", "p k3", "p k4"];
    assert_eq!(table.by_g("moved").await, moved);
    assert_eq!(STANDARD[0].view(&["pk", "sk"], &items).len(), 46);
    // The indexes are still maintained after the restart.
    table.update("p k9", "SET g = :g", "g=moved").await;
    table.delete("b k00").await;
    let items = table.converge().await;
    assert_eq!(table.by_g("moved").await.len(), 6);
    table.wait_item_counts(&items).await;
}

/// A hash-only KEYS_ONLY index on `attribute`, for the limit test.
fn keys_only_index(name: &str, attribute: &str) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_element(attribute, KeyType::Hash))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_global_index_limit_is_configurable() {
    let server = TestServer::start_with_args(&["--max-global-indexes", "2"]);
    let client = server.client();
    let create = |name: &str, indexes: usize| {
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("pk", KeyType::Hash))
            .attribute_definitions(attr_def("pk", Sat::S));
        for i in 0..indexes {
            request = request
                .attribute_definitions(attr_def(&format!("a{i}"), Sat::S))
                .global_secondary_indexes(keys_only_index(&format!("gsi{i}"), &format!("a{i}")));
        }
        request.send()
    };
    assert_error(
        create("gsi-limit-three", 3).await,
        "ValidationException",
        "One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of 2",
    );
    ok(create("gsi-limit-two", 2).await);
    let added = client
        .update_table()
        .table_name("gsi-limit-two")
        .attribute_definitions(attr_def("a9", Sat::S))
        .global_secondary_index_updates(
            aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                .create(
                    aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
                        .index_name("gsi9")
                        .key_schema(key_element("a9", KeyType::Hash))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::KeysOnly)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    assert_error(
        added,
        "LimitExceededException",
        "Subscriber limit exceeded: Number of global secondary indexes exceeds per-table limit of 2",
    );
}
