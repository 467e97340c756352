//! Local secondary indexes against the real binary: CreateTable and
//! DescribeTable with LSIs and their validation messages; index maintenance
//! by PutItem, UpdateItem, DeleteItem and BatchWriteItem (each index always
//! equals its view of the table: sparse, ordered by the index sort key with
//! ties broken by the table sort key); what index reads return (projections,
//! Select, ProjectionExpression, ConsistentRead); paging on index keys for
//! Query, Scan and parallel Scan; index errors; index key validation on
//! writes; item collection metrics and the item collection size limit;
//! ReturnConsumedCapacity=INDEXES; and indexes surviving restarts.
//!
//! Expectations come from DynamoDB's documentation and the research notes
//! (`docs/research/secondary-indexes.md` §1, §2, §4, §5).

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, DeleteRequest, ItemCollectionMetrics, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, PutRequest, ReturnConsumedCapacity as Rcc,
    ReturnItemCollectionMetrics as Ricm, ScalarAttributeType as Sat, Select, TableDescription,
    WriteRequest,
};
use common::*;
use serde_json::json;

type Item = HashMap<String, AttributeValue>;

/// Projected non-key attributes: `None` for ALL, `Some([])` for KEYS_ONLY.
type Projected = Option<&'static [&'static str]>;

const VE: &str = "ValidationException";
const OOM: &str = "One or more parameter values were invalid: ";
const FULL: &str = "ItemCollectionSizeLimitExceededException";

/// What DynamoDB answers for a key condition on the table sort key when
/// querying an LSI: as for a table, where `pk = :p AND other = :v` names
/// the schema's range key as missing, the index's range key is reported
/// (dynalite actions/query.js; Alternator test_key_condition_expression.py).
const TABLE_SORT_KEY_ON_INDEX: &str = "Query condition missed key schema element: n";

/// The indexes of the standard test table: name, range key, projection.
const INDEXES: [(&str, &str, Projected); 3] = [
    ("by_n", "n", None),
    ("by_s", "s", Some(&[])),
    ("by_t", "t", Some(&["extra"])),
];

fn projection_type(projected: Projected) -> ProjectionType {
    match projected {
        None => ProjectionType::All,
        Some([]) => ProjectionType::KeysOnly,
        Some(_) => ProjectionType::Include,
    }
}

fn lsi(name: &str, hash: &str, range: &str, projected: Projected) -> LocalSecondaryIndex {
    let projection = Projection::builder()
        .projection_type(projection_type(projected))
        .set_non_key_attributes(
            projected
                .filter(|a| !a.is_empty())
                .map(|attributes| attributes.iter().map(|a| a.to_string()).collect()),
        );
    LocalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_element(hash, KeyType::Hash))
        .key_schema(key_element(range, KeyType::Range))
        .projection(projection.build())
        .build()
        .unwrap()
}

/// An item (or key) from `"pk sk name=value ..."`: `n` holds a number,
/// every other attribute a string.
fn row(spec: &str) -> Item {
    let mut words = spec.split_whitespace();
    let (pk, sk) = (words.next().unwrap(), words.next().unwrap());
    let mut it = item([("pk", s(pk)), ("sk", s(sk))]);
    for word in words {
        let (name, value) = word.split_once('=').unwrap();
        it.insert(name.into(), if name == "n" { n(value) } else { s(value) });
    }
    it
}

fn put_request(it: Item) -> WriteRequest {
    let put = PutRequest::builder().set_item(Some(it)).build().unwrap();
    WriteRequest::builder().put_request(put).build()
}

fn delete_request(key: &str) -> WriteRequest {
    let delete = DeleteRequest::builder().set_key(Some(row(key)));
    WriteRequest::builder()
        .delete_request(delete.build().unwrap())
        .build()
}

fn sks(items: &[Item]) -> Vec<String> {
    let sk = |it: &Item| match it.get("sk") {
        Some(AttributeValue::S(sk)) => sk.clone(),
        other => panic!("no string sk in {it:?}: {other:?}"),
    };
    items.iter().map(sk).collect()
}

/// The attribute names of an item, sorted, with spaces between.
fn names(it: &Item) -> String {
    let mut names: Vec<&str> = it.keys().map(String::as_str).collect();
    names.sort_unstable();
    names.join(" ")
}

/// Index order of two key values of one type (numbers by value).
fn order(a: &AttributeValue, b: &AttributeValue) -> Ordering {
    let number = |text: &str| text.parse::<f64>().unwrap();
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => number(x).total_cmp(&number(y)),
        (AttributeValue::S(x), AttributeValue::S(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => panic!("cannot order {a:?} and {b:?}"),
    }
}

/// What index `index` holds of one partition's items, in index order, as a
/// Query with the default Select returns it.
fn index_view(table_items: &[Item], index: &str) -> Vec<Item> {
    let (_, range, projected) = INDEXES.iter().find(|(name, ..)| *name == index).unwrap();
    let projects = |a: &str| match projected {
        None => true,
        Some(non_key) => ["pk", "sk", *range].contains(&a) || non_key.contains(&a),
    };
    let mut entries: Vec<Item> = table_items
        .iter()
        .filter(|it| it.contains_key(*range))
        .map(|it| {
            let projected = it.iter().filter(|(a, _)| projects(a));
            projected.map(|(a, v)| (a.clone(), v.clone())).collect()
        })
        .collect();
    entries.sort_by(|a, b| order(&a[*range], &b[*range]).then(order(&a["sk"], &b["sk"])));
    entries
}

fn items_of(pages: &[QueryOutput]) -> Vec<Item> {
    pages.iter().flat_map(|p| p.items().to_vec()).collect()
}

/// Runs a query page after page until no LastEvaluatedKey comes back.
async fn query_pages(make: impl Fn() -> QueryFluentBuilder) -> Vec<QueryOutput> {
    let mut pages = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = ok(make().set_exclusive_start_key(start.take()).send().await);
        start = out.last_evaluated_key.clone();
        pages.push(out);
        if start.is_none() {
            return pages;
        }
        assert!(pages.len() < 1_000, "paging does not end");
    }
}

/// Runs a scan page after page; returns the pages and all their items.
async fn scan_pages(make: impl Fn() -> ScanFluentBuilder) -> (Vec<ScanOutput>, Vec<Item>) {
    let mut pages: Vec<ScanOutput> = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = ok(make().set_exclusive_start_key(start.take()).send().await);
        start = out.last_evaluated_key.clone();
        pages.push(out);
        if start.is_none() {
            let items = pages.iter().flat_map(|p| p.items().to_vec()).collect();
            return (pages, items);
        }
        assert!(pages.len() < 1_000, "paging does not end");
    }
}

/// A table with the standard indexes: `pk` S HASH, `sk` S RANGE, and the
/// LSIs of [`INDEXES`] on `n` (N), `s` and `t` (S).
struct Table {
    client: Client,
    name: &'static str,
}

impl Table {
    async fn create(client: Client, name: &'static str) -> Table {
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("pk", KeyType::Hash))
            .key_schema(key_element("sk", KeyType::Range));
        for (attribute, ty) in [("pk", Sat::S), ("sk", Sat::S), ("n", Sat::N), ("s", Sat::S)] {
            request = request.attribute_definitions(attr_def(attribute, ty));
        }
        request = request.attribute_definitions(attr_def("t", Sat::S));
        for (index, range, projected) in INDEXES {
            request = request.local_secondary_indexes(lsi(index, "pk", range, projected));
        }
        let created = ok(request.send().await).table_description.unwrap();
        assert_eq!(created.local_secondary_indexes().len(), 3);
        wait_active(&client, name).await;
        Table { client, name }
    }

    /// The same table through the server `server` (after a restart).
    async fn reopen(&self, server: &TestServer) -> Table {
        let client = server.client();
        wait_active(&client, self.name).await;
        Table {
            client,
            name: self.name,
        }
    }

    async fn describe(&self) -> TableDescription {
        let request = self.client.describe_table().table_name(self.name);
        ok(request.send().await).table.unwrap()
    }

    fn put_item(&self, it: Item) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(self.name)
            .set_item(Some(it))
    }

    fn update_item(&self, key: &str) -> UpdateItemFluentBuilder {
        let request = self.client.update_item().table_name(self.name);
        request.set_key(Some(row(key)))
    }

    fn delete_item(&self, key: &str) -> DeleteItemFluentBuilder {
        let request = self.client.delete_item().table_name(self.name);
        request.set_key(Some(row(key)))
    }

    fn scan(&self, index: &str) -> ScanFluentBuilder {
        self.client.scan().table_name(self.name).index_name(index)
    }

    /// A Query of partition `pk` of the table, or of its index `index`.
    fn query(&self, index: Option<&str>, pk: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(self.name)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(pk))
    }

    async fn put(&self, spec: &str) {
        ok(self.put_item(row(spec)).send().await);
    }

    async fn update(&self, key: &str, expr: &str, values: &[(&str, AttributeValue)]) {
        let mut request = self.update_item(key).update_expression(expr);
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        ok(request.send().await);
    }

    async fn delete(&self, key: &str) {
        ok(self.delete_item(key).send().await);
    }

    async fn get(&self, key: &str) -> Option<Item> {
        let request = self.client.get_item().table_name(self.name);
        let request = request.consistent_read(true).set_key(Some(row(key)));
        ok(request.send().await).item
    }

    /// Every item a query of partition `pk`, changed by `tweak`, returns.
    async fn pages(
        &self,
        index: Option<&str>,
        pk: &str,
        tweak: impl Fn(QueryFluentBuilder) -> QueryFluentBuilder,
    ) -> Vec<Item> {
        items_of(&query_pages(|| tweak(self.query(index, pk))).await)
    }

    /// Every item of partition `pk` (of the table, or of index `index`).
    async fn all(&self, index: Option<&str>, pk: &str, forward: bool) -> Vec<Item> {
        let tweak = |q: QueryFluentBuilder| q.scan_index_forward(forward);
        self.pages(index, pk, tweak).await
    }

    /// The sort keys of partition `pk` in `index`, in index order.
    async fn sks(&self, index: &str, pk: &str) -> Vec<String> {
        sks(&self.all(Some(index), pk, true).await)
    }

    /// Asserts that each index holds exactly its view of the table's
    /// partition `pk`, in both directions; returns the table's items.
    async fn assert_indexes_match(&self, pk: &str) -> Vec<Item> {
        let items = self.all(None, pk, true).await;
        for (index, ..) in INDEXES {
            let mut want = index_view(&items, index);
            let got = self.all(Some(index), pk, true).await;
            assert_eq!(got, want, "{index} ascending");
            want.reverse();
            let got = self.all(Some(index), pk, false).await;
            assert_eq!(got, want, "{index} descending");
        }
        items
    }
}

// ---------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn describe_table_shows_local_indexes() {
    let table = Table::create(shared_server().client(), "lsi-describe").await;
    let desc = table.describe().await;
    let defs = desc
        .attribute_definitions()
        .iter()
        .map(|d| d.attribute_name());
    let mut defs: Vec<&str> = defs.collect();
    defs.sort_unstable();
    assert_eq!(defs, ["n", "pk", "s", "sk", "t"]);
    let table_arn = desc.table_arn().unwrap();
    assert_eq!(desc.local_secondary_indexes().len(), 3);
    for (name, range, projected) in INDEXES {
        let mut lsis = desc.local_secondary_indexes().iter();
        let lsi = lsis.find(|l| l.index_name() == Some(name)).expect(name);
        let key_schema = [
            key_element("pk", KeyType::Hash),
            key_element(range, KeyType::Range),
        ];
        assert_eq!(lsi.key_schema(), key_schema, "{name}");
        let projection = lsi.projection().unwrap();
        let ty = projection_type(projected);
        assert_eq!(projection.projection_type(), Some(&ty), "{name}");
        let non_key = projected.unwrap_or_default();
        assert_eq!(projection.non_key_attributes(), non_key, "{name}");
        let arn = format!("{table_arn}/index/{name}");
        assert_eq!(lsi.index_arn(), Some(arn.as_str()));
        assert!(lsi.index_size_bytes().is_some_and(|b| b >= 0), "{name}");
        assert!(lsi.item_count().is_some_and(|c| c >= 0), "{name}");
    }
    // On the wire: an LSI has neither IndexStatus nor ProvisionedThroughput.
    let request = RawRequest::op("DescribeTable", &json!({ "TableName": table.name }));
    let body = raw(shared_server().addr(), &request).json();
    let wire = body["Table"]["LocalSecondaryIndexes"].as_array().unwrap();
    assert_eq!(wire.len(), 3);
    for lsi in wire {
        let object = lsi.as_object().unwrap();
        let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
        fields.sort_unstable();
        let want = "IndexArn IndexName IndexSizeBytes ItemCount KeySchema Projection";
        assert_eq!(fields.join(" "), want, "{lsi}");
    }
}

#[tokio::test]
async fn invalid_local_index_definitions_are_refused() {
    let client = shared_server().client();
    let base = |name: &str| {
        client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("pk", KeyType::Hash))
            .attribute_definitions(attr_def("pk", Sat::S))
    };
    let with_range = |name: &str| {
        base(name)
            .key_schema(key_element("sk", KeyType::Range))
            .attribute_definitions(attr_def("sk", Sat::S))
    };
    // A table without a range key.
    let request = base("lsi-v-hash-only")
        .attribute_definitions(attr_def("n", Sat::N))
        .local_secondary_indexes(lsi("by_n", "pk", "n", None));
    let message = "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex";
    assert_error(request.send().await, VE, &format!("{OOM}{message}"));
    // An index whose hash key is not the table's.
    let request = with_range("lsi-v-hash")
        .attribute_definitions(attr_def("other", Sat::S))
        .attribute_definitions(attr_def("n", Sat::N))
        .local_secondary_indexes(lsi("by_other", "other", "n", None));
    let message = "Index KeySchema does not have the same leading hash key as table KeySchema for index: by_other. index hash key: other, table hash key: pk";
    assert_error(request.send().await, VE, &format!("{OOM}{message}"));
    // Six indexes.
    let mut request = with_range("lsi-v-six");
    for i in 1..=6 {
        let (name, range) = (format!("idx{i}"), format!("a{i}"));
        request = request
            .attribute_definitions(attr_def(&range, Sat::S))
            .local_secondary_indexes(lsi(&name, "pk", &range, None));
    }
    let message = "Number of LocalSecondaryIndexes exceeds per-table limit of 5";
    assert_error(request.send().await, VE, &format!("{OOM}{message}"));
    for name in ["lsi-v-hash-only", "lsi-v-hash", "lsi-v-six"] {
        let err = api_error(client.describe_table().table_name(name).send().await);
        assert_eq!(err.code, "ResourceNotFoundException", "{name} was created");
    }
}

// ---------------------------------------------------------------------------
// Maintenance
// ---------------------------------------------------------------------------

#[tokio::test]
async fn writes_keep_every_local_index_equal_to_the_table() {
    let table = Table::create(shared_server().client(), "lsi-maintain").await;
    for spec in [
        "p a n=10 s=m t=x extra=e1 memo=o1",
        "p b n=9 s=a",
        "p c n=-1 t=b extra=e3",
        "p d n=9 s=z memo=o4",
        "p e s=k t=a",
        "p f n=2.5 extra=e6",
        "q a n=1 s=a t=a",
    ] {
        table.put(spec).await;
    }
    table.assert_indexes_match("p").await;
    // Numeric order, ties broken by the table sort key; sparse indexes.
    assert_eq!(table.sks("by_n", "p").await, ["c", "f", "b", "d", "a"]);
    assert_eq!(table.sks("by_s", "p").await, ["b", "e", "a", "d"]);
    assert_eq!(table.sks("by_t", "p").await, ["e", "c", "a"]);
    // A key condition on the index's sort key.
    let between = table
        .query(Some("by_n"), "p")
        .key_condition_expression("pk = :p AND n BETWEEN :lo AND :hi")
        .expression_attribute_values(":lo", n("2"))
        .expression_attribute_values(":hi", n("9"));
    assert_eq!(sks(ok(between.send().await).items()), ["f", "b", "d"]);

    // UpdateItem moves, removes and adds entries and changes projected values.
    let values = [(":v", n("-5")), (":e", s("e1b"))];
    let expr = "SET n = :v, extra = :e REMOVE t";
    table.update("p a", expr, &values).await;
    let expr = "REMOVE n SET t = :t";
    table.update("p b", expr, &[(":t", s("c"))]).await;
    table.update("p e", "SET n = :v", &[(":v", n("9"))]).await;
    let values = [(":v", n("100")), (":s", s("g"))];
    table.update("p g", "SET n = :v, s = :s", &values).await;
    table.assert_indexes_match("p").await;
    let order = ["a", "c", "f", "d", "e", "g"];
    assert_eq!(table.sks("by_n", "p").await, order);
    // A refused conditional update changes no index.
    let refused = table
        .update_item("p c")
        .update_expression("SET n = :v")
        .condition_expression("attribute_not_exists(pk)")
        .expression_attribute_values(":v", n("50"));
    let err = api_error(refused.send().await);
    assert_eq!(err.code, "ConditionalCheckFailedException");
    assert_eq!(table.sks("by_n", "p").await, order);

    // PutItem replaces the whole item; DeleteItem removes its entries.
    table.put("p d t=d").await;
    table.delete("p f").await;
    table.assert_indexes_match("p").await;
    assert_eq!(table.sks("by_n", "p").await, ["a", "c", "e", "g"]);

    // BatchWriteItem puts and deletes.
    let writes = vec![
        put_request(row("p h n=0 s=b t=t")),
        put_request(row("p i memo=none")),
        delete_request("p c"),
        delete_request("p zz"),
    ];
    let batch = table.client.batch_write_item();
    let out = ok(batch.request_items(table.name, writes).send().await);
    assert!(out.unprocessed_items.unwrap_or_default().is_empty());
    let items = table.assert_indexes_match("p").await;
    assert_eq!(sks(&items), ["a", "b", "d", "e", "g", "h", "i"]);
    assert_eq!(table.sks("by_n", "p").await, ["a", "h", "e", "g"]);
    // The other partition never changed.
    let other = table.all(Some("by_n"), "q", true).await;
    assert_eq!(other, [row("q a n=1 s=a t=a")]);
}

// ---------------------------------------------------------------------------
// What index reads return
// ---------------------------------------------------------------------------

#[tokio::test]
async fn index_reads_return_projected_attributes_unless_asked_for_more() {
    let table = Table::create(shared_server().client(), "lsi-project").await;
    for i in 1..=3 {
        let spec = format!("p k{i} n={i} s=s{i} t=t{i} extra=x{i} memo=o{i}");
        table.put(&spec).await;
    }
    let full = table.all(None, "p", true).await;
    assert_eq!(full.len(), 3);
    // The default is ALL_PROJECTED_ATTRIBUTES.
    let all = table.all(Some("by_n"), "p", true).await;
    assert_eq!(all, full, "ALL: whole items");
    let keys_only = table.all(Some("by_s"), "p", true).await;
    assert_eq!(keys_only, index_view(&full, "by_s"));
    let keys_only_names = keys_only.iter().map(names).collect::<Vec<_>>();
    assert_eq!(keys_only_names, ["pk s sk"; 3]);
    let include = table.all(Some("by_t"), "p", true).await;
    assert_eq!(include, index_view(&full, "by_t"));
    let include_names = include.iter().map(names).collect::<Vec<_>>();
    assert_eq!(include_names, ["extra pk sk t"; 3]);
    let by_s = Some("by_s");
    let projected = |q: QueryFluentBuilder| q.select(Select::AllProjectedAttributes);
    assert_eq!(table.pages(by_s, "p", projected).await, keys_only);
    // ALL_ATTRIBUTES on a KEYS_ONLY index fetches whole items from the table.
    let all_attributes = |q: QueryFluentBuilder| q.select(Select::AllAttributes);
    assert_eq!(table.pages(by_s, "p", all_attributes).await, full);
    // COUNT returns the count only.
    let count = table.query(Some("by_t"), "p").select(Select::Count);
    let out = ok(count.send().await);
    assert_eq!((out.count, out.scanned_count, out.items), (3, 3, None));
    // A projection naming an attribute the index does not hold fetches it.
    let memo_s = |q: QueryFluentBuilder| q.projection_expression("memo, s");
    let got = table.pages(by_s, "p", memo_s).await;
    let want = (1..=3).map(|i| item([("memo", s(&format!("o{i}"))), ("s", s(&format!("s{i}")))]));
    assert_eq!(got, want.collect::<Vec<_>>());
    // Strongly consistent reads are allowed on an LSI.
    let consistent = |q: QueryFluentBuilder| q.consistent_read(true);
    assert_eq!(table.pages(Some("by_t"), "p", consistent).await, include);
    let out = ok(table.scan("by_s").consistent_read(true).send().await);
    assert_eq!(out.items(), keys_only, "a KEYS_ONLY scan");
}

// ---------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------

#[tokio::test]
async fn index_queries_page_on_table_and_index_keys() {
    let table = Table::create(shared_server().client(), "lsi-pages").await;
    for (i, v) in ["3", "1", "2", "1", "3", "2", "1"].into_iter().enumerate() {
        table.put(&format!("p k{i} n={v}")).await;
    }
    table.put("p k7").await;
    table.put("q k0 n=1").await;
    let ascending = ["k1", "k3", "k6", "k2", "k5", "k0", "k4"];
    for forward in [true, false] {
        let by_n = || table.query(Some("by_n"), "p");
        let pages = query_pages(|| by_n().limit(2).scan_index_forward(forward)).await;
        assert_eq!(pages.len(), 4, "7 entries, 2 a page");
        for page in &pages[..3] {
            assert_eq!(page.count, 2);
            let lek = page.last_evaluated_key.as_ref().unwrap();
            assert_eq!(names(lek), "n pk sk", "LastEvaluatedKey {lek:?}");
            let last = page.items().last().unwrap();
            for attr in ["n", "pk", "sk"] {
                assert_eq!(lek[attr], last[attr], "LastEvaluatedKey {attr}");
            }
        }
        let mut want = ascending.to_vec();
        if !forward {
            want.reverse();
        }
        assert_eq!(sks(&items_of(&pages)), want, "forward={forward}");
    }
    // A start key without the index key is not one of this index's keys.
    let by_n = table.query(Some("by_n"), "p");
    let request = by_n.set_exclusive_start_key(Some(row("p k1")));
    let message = "The provided starting key is invalid";
    assert_error(request.send().await, VE, message);
}

#[tokio::test]
async fn index_scans_return_each_indexed_item_once() {
    let table = Table::create(shared_server().client(), "lsi-scan").await;
    let mut indexed = BTreeSet::new();
    for i in 0..24 {
        let key = format!("r{} k{i:02}", i % 5);
        if i % 3 == 0 {
            table.put(&key).await;
        } else {
            table.put(&format!("{key} n={}", i % 4)).await;
            indexed.insert(key);
        }
    }
    let assert_each_once = |items: Vec<Item>, what: &str| {
        let mut keys = BTreeSet::new();
        for it in items {
            assert_eq!(names(&it), "n pk sk", "{what}: not a by_n entry");
            let (AttributeValue::S(pk), AttributeValue::S(sk)) = (&it["pk"], &it["sk"]) else {
                panic!("{what}: bad keys in {it:?}");
            };
            assert!(keys.insert(format!("{pk} {sk}")), "{what}: {it:?} twice");
        }
        assert_eq!(keys, indexed, "{what}");
    };
    let one = ok(table.scan("by_n").send().await);
    assert_each_once(one.items().to_vec(), "one scan");
    let (pages, items) = scan_pages(|| table.scan("by_n").limit(3)).await;
    assert!(pages.len() >= 6, "16 entries, 3 a page: {}", pages.len());
    for lek in pages.iter().filter_map(|p| p.last_evaluated_key.as_ref()) {
        assert_eq!(names(lek), "n pk sk", "LastEvaluatedKey {lek:?}");
    }
    assert_each_once(items, "paged scan");
    let mut segments = Vec::new();
    for segment in 0..3 {
        let make = || table.scan("by_n").segment(segment).total_segments(3);
        segments.extend(scan_pages(|| make().limit(2)).await.1);
    }
    assert_each_once(segments, "parallel scan");
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn index_reads_are_validated_against_the_index() {
    let table = Table::create(shared_server().client(), "lsi-errors").await;
    table.put("p a n=1").await;
    let missing = "The table does not have the specified index: nope";
    assert_error(table.query(Some("nope"), "p").send().await, VE, missing);
    assert_error(table.scan("nope").send().await, VE, missing);
    // The key condition is checked against the index's key schema.
    let on_table_sort_key = table
        .query(Some("by_n"), "p")
        .key_condition_expression("pk = :p AND sk = :v")
        .expression_attribute_values(":v", s("a"));
    let result = on_table_sort_key.send().await;
    assert_error(result, VE, TABLE_SORT_KEY_ON_INDEX);
    let without_hash = table
        .query(Some("by_n"), "p")
        .key_condition_expression("n = :p")
        .expression_attribute_values(":p", n("1"));
    let message = "Query condition missed key schema element: pk";
    assert_error(without_hash.send().await, VE, message);
    // The index sort key is a key attribute: no filter on it.
    let filtered = table
        .query(Some("by_n"), "p")
        .filter_expression("n > :z")
        .expression_attribute_values(":z", n("0"));
    let message =
        "Filter Expression can only contain non-primary key attributes: Primary key attribute: n";
    assert_error(filtered.send().await, VE, message);
}

#[tokio::test]
async fn writes_with_unusable_index_keys_are_refused() {
    let table = Table::create(shared_server().client(), "lsi-keys").await;
    table.put("p a n=1 s=x").await;
    let with = |spec: &str, attribute: &str, v: AttributeValue| {
        let mut it = row(spec);
        it.insert(attribute.to_string(), v);
        table.put_item(it).send()
    };
    let mismatch = |actual: &str| {
        format!("{OOM}Type mismatch for Index Key n Expected: N Actual: {actual} IndexName: by_n")
    };
    assert_error(with("p a s=x", "n", s("1")).await, VE, &mismatch("S"));
    let boolean = AttributeValue::Bool(true);
    assert_error(with("p a s=x", "n", boolean).await, VE, &mismatch("BOOL"));
    assert_error(with("p b", "n", s("2")).await, VE, &mismatch("S"));
    let empty_put = "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: by_s, IndexKey: s";
    assert_error(with("p a n=1", "s", s("")).await, VE, empty_put);
    let set = |expr: &str, v: AttributeValue| {
        let request = table.update_item("p a").update_expression(expr);
        request.expression_attribute_values(":v", v).send()
    };
    assert_error(set("SET n = :v", s("7")).await, VE, &mismatch("S"));
    let empty_update = "One or more parameter values are not valid. The update expression attempted to update a secondary index key to a value that is not supported. The AttributeValue for a key attribute cannot contain an empty string value.";
    assert_error(set("SET s = :v", s("")).await, VE, empty_update);
    // Nothing was written: the table and its indexes still hold the old item.
    assert_eq!(table.get("p a").await, Some(row("p a n=1 s=x")));
    assert_eq!(table.get("p b").await, None);
    let items = table.assert_indexes_match("p").await;
    assert_eq!(items, [row("p a n=1 s=x")]);
    assert_eq!(table.sks("by_n", "p").await, ["a"]);
}

// ---------------------------------------------------------------------------
// Item collections
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_collection(metrics: Option<ItemCollectionMetrics>, pk: &str) {
    let metrics = metrics.expect("ItemCollectionMetrics");
    let key = item([("pk", s(pk))]);
    assert_eq!(metrics.item_collection_key(), Some(&key));
    let range = metrics.size_estimate_range_gb();
    assert_eq!(range.len(), 2, "SizeEstimateRangeGB {range:?}");
    let ordered = 0.0 <= range[0] && range[0] <= range[1] && range[1] > 0.0;
    assert!(ordered, "SizeEstimateRangeGB {range:?}");
}

#[tokio::test]
async fn writes_report_item_collection_metrics_on_request() {
    let table = Table::create(shared_server().client(), "lsi-metrics").await;
    let put = |metrics: Option<Ricm>| {
        let request = table.put_item(row("p a n=1"));
        request.set_return_item_collection_metrics(metrics).send()
    };
    let out = ok(put(Some(Ricm::Size)).await);
    assert_collection(out.item_collection_metrics, "p");
    let update = table
        .update_item("p b")
        .update_expression("SET n = :v")
        .expression_attribute_values(":v", n("2"))
        .return_item_collection_metrics(Ricm::Size);
    assert_collection(ok(update.send().await).item_collection_metrics, "p");
    let delete = table.delete_item("p b");
    let out = ok(delete
        .return_item_collection_metrics(Ricm::Size)
        .send()
        .await);
    assert_collection(out.item_collection_metrics, "p");
    let batch = table
        .client
        .batch_write_item()
        .request_items(table.name, vec![put_request(row("q a"))])
        .return_item_collection_metrics(Ricm::Size);
    let mut per_table = ok(batch.send().await).item_collection_metrics.unwrap();
    let collections = per_table.remove(table.name).expect("the table's metrics");
    assert!(!collections.is_empty());
    for metrics in collections {
        assert_collection(Some(metrics), "q");
    }
    // NONE, or nothing asked: no metrics.
    let out = ok(put(Some(Ricm::None)).await);
    assert_eq!(out.item_collection_metrics, None);
    assert_eq!(ok(put(None).await).item_collection_metrics, None);
    // A table without local indexes has no item collections to report.
    let plain = "lsi-metrics-plain";
    create_table(&table.client, plain, Sat::S, Some(Sat::S)).await;
    let request = table
        .client
        .put_item()
        .table_name(plain)
        .set_item(Some(row("p a")));
    let out = ok(request
        .return_item_collection_metrics(Ricm::Size)
        .send()
        .await);
    assert_eq!(out.item_collection_metrics, None);
}

#[tokio::test]
async fn a_full_item_collection_refuses_writes_until_items_are_deleted() {
    let server = TestServer::start_with_args(&["--item-collection-limit-bytes", "20000"]);
    let table = Table::create(server.client(), "lsi-full").await;
    // About 3 KB, twice over with its by_n entry.
    let big = |pk: &str, i: usize| {
        let mut it = row(&format!("{pk} k{i:02} n={}", 10 + i));
        it.insert("d".into(), s(&"x".repeat(3000)));
        table.put_item(it).send()
    };
    let mut written = 0;
    let err = loop {
        assert!(written < 20, "20 items of 3 KB fit in 20 000 bytes");
        let result = big("full", written).await;
        if result.is_err() {
            break api_error(result);
        }
        written += 1;
    };
    assert_eq!(err.code, FULL, "{err:?}");
    assert!(
        written >= 2,
        "only {written} items of 3 KB fit in 20 000 bytes"
    );
    assert_eq!(table.get(&format!("full k{written:02}")).await, None);
    assert_eq!(table.sks("by_n", "full").await.len(), written);
    // An UpdateItem that would grow the collection is refused too.
    let update = table
        .update_item("full zz")
        .update_expression("SET d = :d")
        .expression_attribute_values(":d", s(&"y".repeat(3000)));
    assert_eq!(api_error(update.send().await).code, FULL);
    assert_eq!(table.get("full zz").await, None);
    // Other item collections are not affected.
    ok(big("other", 0).await);
    // Deleting items makes room again.
    table.delete("full k00").await;
    table.delete("full k01").await;
    ok(big("full", written).await);
    assert_eq!(table.sks("by_n", "full").await.len(), written - 1);
    table.assert_indexes_match("full").await;
}

// ---------------------------------------------------------------------------
// Capacity and durability
// ---------------------------------------------------------------------------

#[tokio::test]
async fn index_queries_report_index_capacity() {
    let table = Table::create(shared_server().client(), "lsi-capacity").await;
    table.put("p a n=1").await;
    let query = |rcc: Rcc| {
        let request = table.query(Some("by_n"), "p");
        request.return_consumed_capacity(rcc).send()
    };
    let out = ok(query(Rcc::Indexes).await);
    assert_eq!(out.count, 1);
    let consumed = out.consumed_capacity.unwrap();
    assert_eq!(consumed.table_name(), Some(table.name));
    let total = consumed.capacity_units().unwrap();
    let lsis = consumed.local_secondary_indexes().unwrap();
    assert_eq!(lsis.keys().collect::<Vec<_>>(), ["by_n"]);
    let index_units = lsis["by_n"].capacity_units().unwrap();
    let plausible = index_units > 0.0 && total >= index_units;
    assert!(plausible, "total {total}, by_n {index_units}");
    let consumed = ok(query(Rcc::Total).await).consumed_capacity.unwrap();
    assert!(consumed.capacity_units().is_some_and(|units| units > 0.0));
    let breakdown = consumed.local_secondary_indexes();
    assert_eq!(breakdown, None, "TOTAL has no per-index breakdown");
}

#[tokio::test]
async fn local_indexes_survive_restarts() {
    let dir = tempfile::Builder::new()
        .prefix("atoll-e2e-lsi-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let data = dir.path().join("data");
    let server = TestServer::start_in(&data);
    let table = Table::create(server.client(), "lsi-durable").await;
    for (sk, v) in [("a", "3"), ("b", "1"), ("c", "2"), ("d", "1")] {
        table
            .put(&format!("p {sk} n={v} s={sk} t={v} extra={sk}"))
            .await;
    }
    table.update("p a", "SET n = :v", &[(":v", n("0"))]).await;
    table.delete("p c").await;
    let before = table.assert_indexes_match("p").await;
    assert_eq!(table.sks("by_n", "p").await, ["a", "b", "d"]);

    // SIGKILL: acknowledged writes and their index entries survive.
    server.kill9();
    drop(server);
    let server = TestServer::start_in(&data);
    let table = table.reopen(&server).await;
    assert_eq!(table.describe().await.local_secondary_indexes().len(), 3);
    assert_eq!(table.assert_indexes_match("p").await, before);
    assert_eq!(table.sks("by_n", "p").await, ["a", "b", "d"]);
    // Indexes are still maintained after the restart.
    table.update("p a", "SET n = :v", &[(":v", n("5"))]).await;
    let after = table.assert_indexes_match("p").await;
    assert_eq!(table.sks("by_n", "p").await, ["b", "d", "a"]);

    // A clean stop keeps them as well.
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM: {status:?}\n{}", server.stderr());
    drop(server);
    let server = TestServer::start_in(&data);
    let table = table.reopen(&server).await;
    assert_eq!(table.assert_indexes_match("p").await, after);
    assert_eq!(table.sks("by_n", "p").await, ["b", "d", "a"]);
}
