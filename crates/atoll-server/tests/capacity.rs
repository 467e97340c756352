//! ReturnConsumedCapacity against the real binary: the units DynamoDB
//! charges for GetItem, PutItem, UpdateItem, DeleteItem, BatchGetItem,
//! BatchWriteItem, Query and Scan, in the TOTAL and INDEXES shapes.
//!
//! Expectations come from DynamoDB's documentation and the research notes
//! (`/work/research/item-api-behaviour.md` §1.7, §5): reads cost
//! ceil(size / 4 KB) (halved when eventually consistent, a missing item
//! costs the minimum), writes ceil(max(old, new) / 1 KB), Query and Scan
//! ceil(Σ evaluated sizes / 4 KB) before filter and projection. No response
//! carries ReadCapacityUnits or WriteCapacityUnits.
//!
//! Items here hold only strings, so their sizes are exact: the sum of the
//! UTF-8 lengths of names and values.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Capacity, ConsumedCapacity, DeleteRequest, KeysAndAttributes, PutRequest,
    ReturnConsumedCapacity as Rcc, ScalarAttributeType as Sat, Select, WriteRequest,
};
use common::*;

type Item = HashMap<String, AttributeValue>;

fn client() -> Client {
    shared_server().client()
}

/// An item of exactly `size` bytes with hash key `pk`.
fn sized(pk: &str, size: usize) -> Item {
    let fixed = "pk".len() + pk.len() + "d".len();
    assert!(size >= fixed);
    item([("pk", s(pk)), ("d", s(&"x".repeat(size - fixed)))])
}

/// An item of exactly `size` bytes with keys `pk` and `sk`.
fn sized2(pk: &str, sk: &str, size: usize) -> Item {
    let fixed = "pk".len() + pk.len() + "sk".len() + sk.len() + "d".len();
    assert!(size >= fixed);
    item([
        ("pk", s(pk)),
        ("sk", s(sk)),
        ("d", s(&"x".repeat(size - fixed))),
    ])
}

fn key(pk: &str) -> Item {
    item([("pk", s(pk))])
}

fn total(table: &str, units: f64) -> ConsumedCapacity {
    ConsumedCapacity::builder()
        .table_name(table)
        .capacity_units(units)
        .build()
}

/// INDEXES on a table without indexes: the total and a Table member.
fn indexes(table: &str, units: f64) -> ConsumedCapacity {
    ConsumedCapacity::builder()
        .table_name(table)
        .capacity_units(units)
        .table(Capacity::builder().capacity_units(units).build())
        .build()
}

async fn put(client: &Client, table: &str, it: Item) {
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(it))
        .send()
        .await);
}

// ---------------------------------------------------------------------------
// GetItem
// ---------------------------------------------------------------------------

async fn get_capacity(
    client: &Client,
    table: &str,
    pk: &str,
    consistent: bool,
    rcc: Option<Rcc>,
) -> Option<ConsumedCapacity> {
    ok(client
        .get_item()
        .table_name(table)
        .set_key(Some(key(pk)))
        .consistent_read(consistent)
        .set_return_consumed_capacity(rcc)
        .send()
        .await)
    .consumed_capacity
}

#[tokio::test]
async fn get_item_units() {
    let client = client();
    let table = "cap-get";
    create_table(&client, table, Sat::S, None).await;
    let sizes = [100, 4096, 4097, 8192, 8193];
    for size in sizes {
        put(&client, table, sized(&format!("i{size}"), size)).await;
    }
    // (key, strongly consistent units)
    let cases = [
        ("i100", 1.0),
        ("i4096", 1.0),
        ("i4097", 2.0),
        ("i8192", 2.0),
        ("i8193", 3.0),
        ("missing", 1.0),
    ];
    for (pk, strong) in cases {
        for (consistent, units) in [(true, strong), (false, strong / 2.0)] {
            assert_eq!(
                get_capacity(&client, table, pk, consistent, Some(Rcc::Total)).await,
                Some(total(table, units)),
                "{pk} consistent={consistent} TOTAL"
            );
            assert_eq!(
                get_capacity(&client, table, pk, consistent, Some(Rcc::Indexes)).await,
                Some(indexes(table, units)),
                "{pk} consistent={consistent} INDEXES"
            );
        }
    }
    assert_eq!(
        get_capacity(&client, table, "i100", true, Some(Rcc::None)).await,
        None
    );
    assert_eq!(get_capacity(&client, table, "i100", true, None).await, None);
    // A projection does not make the read cheaper.
    let out = ok(client
        .get_item()
        .table_name(table)
        .key("pk", s("i8193"))
        .projection_expression("pk")
        .return_consumed_capacity(Rcc::Total)
        .send()
        .await);
    assert_eq!(out.item, Some(key("i8193")));
    assert_eq!(out.consumed_capacity, Some(total(table, 1.5)));
}

// ---------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------

async fn put_capacity(
    client: &Client,
    table: &str,
    it: Item,
    rcc: Rcc,
) -> Option<ConsumedCapacity> {
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(it))
        .return_consumed_capacity(rcc)
        .send()
        .await)
    .consumed_capacity
}

#[tokio::test]
async fn put_item_units() {
    let client = client();
    let table = "cap-put";
    create_table(&client, table, Sat::S, None).await;
    // (item written, units): 1 per started KB of the larger of the old and
    // the new item.
    let cases = [
        (sized("a", 100), 1.0),
        (sized("b", 1024), 1.0),
        (sized("c", 1025), 2.0),
        (sized("d", 3000), 3.0),
        // Replacing: the larger of old and new.
        (sized("c", 100), 2.0),
        (sized("c", 100), 1.0),
        (sized("d", 5000), 5.0),
        (sized("b", 1024), 1.0),
    ];
    for (i, (it, units)) in cases.into_iter().enumerate() {
        let rcc = if i % 2 == 0 { Rcc::Total } else { Rcc::Indexes };
        let want = if i % 2 == 0 {
            total(table, units)
        } else {
            indexes(table, units)
        };
        assert_eq!(
            put_capacity(&client, table, it, rcc).await,
            Some(want),
            "case {i}"
        );
    }
    assert_eq!(
        put_capacity(&client, table, sized("e", 10), Rcc::None).await,
        None
    );
}

#[tokio::test]
async fn update_item_units() {
    let client = client();
    let table = "cap-update";
    create_table(&client, table, Sat::S, None).await;
    let update = |pk: &'static str, expression: &'static str, value: Option<usize>| {
        let client = client.clone();
        async move {
            ok(client
                .update_item()
                .table_name(table)
                .key("pk", s(pk))
                .update_expression(expression)
                .set_expression_attribute_values(
                    value.map(|len| item([(":v", s(&"x".repeat(len)))])),
                )
                .return_consumed_capacity(Rcc::Total)
                .send()
                .await)
            .consumed_capacity
        }
    };
    // Creating an item of 1,024 bytes ("pk" "a" "d" + 1,020): 1 unit.
    assert_eq!(
        update("a", "SET d = :v", Some(1020)).await,
        Some(total(table, 1.0))
    );
    // Growing it to 1,025 bytes: 2.
    assert_eq!(
        update("a", "SET d = :v", Some(1021)).await,
        Some(total(table, 2.0))
    );
    // Shrinking it: still the larger (old) size.
    assert_eq!(update("a", "REMOVE d", None).await, Some(total(table, 2.0)));
    // Creating an item of 1,025 bytes at once: 2.
    assert_eq!(
        update("b", "SET d = :v", Some(1021)).await,
        Some(total(table, 2.0))
    );
    // A small update of a 2,049-byte item: 3.
    put(&client, table, sized("c", 2049)).await;
    assert_eq!(
        update("c", "SET e = :v", Some(1)).await,
        Some(total(table, 3.0))
    );
    // INDEXES.
    let out = ok(client
        .update_item()
        .table_name(table)
        .key("pk", s("c"))
        .update_expression("REMOVE e")
        .return_consumed_capacity(Rcc::Indexes)
        .send()
        .await);
    assert_eq!(out.consumed_capacity, Some(indexes(table, 3.0)));
}

#[tokio::test]
async fn delete_item_units() {
    let client = client();
    let table = "cap-delete";
    create_table(&client, table, Sat::S, None).await;
    put(&client, table, sized("small", 100)).await;
    put(&client, table, sized("big", 2049)).await;
    let delete = |pk: &'static str, rcc: Rcc| {
        let client = client.clone();
        async move {
            ok(client
                .delete_item()
                .table_name(table)
                .key("pk", s(pk))
                .return_consumed_capacity(rcc)
                .send()
                .await)
            .consumed_capacity
        }
    };
    assert_eq!(delete("big", Rcc::Total).await, Some(total(table, 3.0)));
    assert_eq!(
        delete("small", Rcc::Indexes).await,
        Some(indexes(table, 1.0))
    );
    // A missing item costs 1.
    assert_eq!(delete("missing", Rcc::Total).await, Some(total(table, 1.0)));
    assert_eq!(delete("missing", Rcc::None).await, None);
}

// ---------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------

fn by_table(list: Option<Vec<ConsumedCapacity>>) -> HashMap<String, ConsumedCapacity> {
    let list = list.expect("ConsumedCapacity present");
    let n = list.len();
    let map: HashMap<String, ConsumedCapacity> = list
        .into_iter()
        .map(|c| (c.table_name.clone().expect("TableName"), c))
        .collect();
    assert_eq!(map.len(), n, "one entry per table");
    map
}

#[tokio::test]
async fn batch_get_item_units() {
    let client = client();
    let (t1, t2) = ("cap-bget-one", "cap-bget-two");
    create_table(&client, t1, Sat::S, None).await;
    create_table(&client, t2, Sat::S, None).await;
    for t in [t1, t2] {
        put(&client, t, sized("small", 10)).await;
        put(&client, t, sized("big", 4097)).await;
    }
    let request = |rcc: Rcc| {
        client
            .batch_get_item()
            .request_items(
                t1,
                KeysAndAttributes::builder()
                    .keys(key("big"))
                    .keys(key("small"))
                    .keys(key("missing"))
                    .build()
                    .unwrap(),
            )
            .request_items(
                t2,
                KeysAndAttributes::builder()
                    .keys(key("big"))
                    .keys(key("small"))
                    .keys(key("missing"))
                    .consistent_read(true)
                    .build()
                    .unwrap(),
            )
            .return_consumed_capacity(rcc)
    };
    // t1, eventually consistent: 1 + 0.5 + 0.5; t2, strongly: 2 + 1 + 1.
    let out = ok(request(Rcc::Total).send().await);
    assert_eq!(out.responses.as_ref().unwrap()[t1].len(), 2);
    assert_eq!(
        by_table(out.consumed_capacity),
        HashMap::from([
            (t1.to_string(), total(t1, 2.0)),
            (t2.to_string(), total(t2, 4.0)),
        ])
    );
    let out = ok(request(Rcc::Indexes).send().await);
    assert_eq!(
        by_table(out.consumed_capacity),
        HashMap::from([
            (t1.to_string(), indexes(t1, 2.0)),
            (t2.to_string(), indexes(t2, 4.0)),
        ])
    );
    let out = ok(request(Rcc::None).send().await);
    assert_eq!(out.consumed_capacity, None);
    // One missing key alone: the minimum.
    let out = ok(client
        .batch_get_item()
        .request_items(
            t1,
            KeysAndAttributes::builder()
                .keys(key("nobody"))
                .build()
                .unwrap(),
        )
        .return_consumed_capacity(Rcc::Total)
        .send()
        .await);
    assert_eq!(out.consumed_capacity, Some(vec![total(t1, 0.5)]));
}

fn put_req(it: Item) -> WriteRequest {
    WriteRequest::builder()
        .put_request(PutRequest::builder().set_item(Some(it)).build().unwrap())
        .build()
}

fn del_req(k: Item) -> WriteRequest {
    WriteRequest::builder()
        .delete_request(DeleteRequest::builder().set_key(Some(k)).build().unwrap())
        .build()
}

#[tokio::test]
async fn batch_write_item_units() {
    let client = client();
    let (t1, t2) = ("cap-bwrite-one", "cap-bwrite-two");
    create_table(&client, t1, Sat::S, None).await;
    create_table(&client, t2, Sat::S, None).await;
    put(&client, t2, sized("old", 2100)).await;
    put(&client, t2, sized("replaced", 3000)).await;
    let out = ok(client
        .batch_write_item()
        .request_items(t1, vec![put_req(sized("a", 1500)), del_req(key("missing"))])
        .request_items(
            t2,
            vec![
                put_req(sized("b", 10)),
                del_req(key("old")),
                put_req(sized("replaced", 20)),
            ],
        )
        .return_consumed_capacity(Rcc::Total)
        .send()
        .await);
    // t1: 2 + 1; t2: 1 + 3 + 3 (the replaced item was 3,000 bytes).
    assert_eq!(
        by_table(out.consumed_capacity),
        HashMap::from([
            (t1.to_string(), total(t1, 3.0)),
            (t2.to_string(), total(t2, 7.0)),
        ])
    );
    let out = ok(client
        .batch_write_item()
        .request_items(t1, vec![put_req(sized("c", 10)), put_req(sized("d", 1025))])
        .return_consumed_capacity(Rcc::Indexes)
        .send()
        .await);
    assert_eq!(out.consumed_capacity, Some(vec![indexes(t1, 3.0)]));
    let out = ok(client
        .batch_write_item()
        .request_items(t1, vec![put_req(sized("e", 10))])
        .return_consumed_capacity(Rcc::None)
        .send()
        .await);
    assert_eq!(out.consumed_capacity, None);
}

// ---------------------------------------------------------------------------
// Query and Scan
// ---------------------------------------------------------------------------

#[tokio::test]
async fn query_and_scan_units() {
    let client = client();
    let table = "cap-query";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    // Partition p: 2,000 + 2,000 + 2,000 + 4,000 = 10,000 bytes, 3 × 4 KB.
    for (sk, size) in [("1", 2000), ("2", 2000), ("3", 2000), ("4", 4000)] {
        put(&client, table, sized2("p", sk, size)).await;
    }
    // Partition q: one item of 4,097 bytes.
    put(&client, table, sized2("q", "1", 4097)).await;

    let query = |pk: &str, consistent: bool| {
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(pk))
            .consistent_read(consistent)
            .return_consumed_capacity(Rcc::Total)
    };
    let cc = |out: aws_sdk_dynamodb::operation::query::QueryOutput| out.consumed_capacity;
    assert_eq!(
        cc(ok(query("p", true).send().await)),
        Some(total(table, 3.0))
    );
    assert_eq!(
        cc(ok(query("p", false).send().await)),
        Some(total(table, 1.5))
    );
    assert_eq!(
        cc(ok(query("q", true).send().await)),
        Some(total(table, 2.0))
    );
    assert_eq!(
        cc(ok(query("q", false).send().await)),
        Some(total(table, 1.0))
    );
    // Neither a filter that matches nothing nor a projection nor COUNT
    // makes it cheaper.
    let out = ok(query("p", true)
        .filter_expression("d = :nothing")
        .expression_attribute_values(":nothing", s("nothing"))
        .send()
        .await);
    assert_eq!(out.count, 0);
    assert_eq!(out.consumed_capacity, Some(total(table, 3.0)));
    assert_eq!(
        cc(ok(query("p", false)
            .projection_expression("sk")
            .send()
            .await)),
        Some(total(table, 1.5))
    );
    assert_eq!(
        cc(ok(query("p", true).select(Select::Count).send().await)),
        Some(total(table, 3.0))
    );
    // Only what was evaluated counts: Limit 2 reads 4,000 bytes.
    assert_eq!(
        cc(ok(query("p", true).limit(2).send().await)),
        Some(total(table, 1.0))
    );
    // The last two (2,000 + 4,000 = 6,000 bytes), eventually consistent.
    assert_eq!(
        cc(ok(query("p", false)
            .key_condition_expression("pk = :p AND sk >= :three")
            .expression_attribute_values(":three", s("3"))
            .send()
            .await)),
        Some(total(table, 1.0))
    );
    // An empty result costs the minimum.
    assert_eq!(
        cc(ok(query("nobody", false).send().await)),
        Some(total(table, 0.5))
    );
    assert_eq!(
        cc(ok(query("nobody", true).send().await)),
        Some(total(table, 1.0))
    );
    // INDEXES and NONE.
    assert_eq!(
        cc(ok(query("p", true)
            .return_consumed_capacity(Rcc::Indexes)
            .send()
            .await)),
        Some(indexes(table, 3.0))
    );
    assert_eq!(
        cc(ok(query("p", true)
            .return_consumed_capacity(Rcc::None)
            .send()
            .await)),
        None
    );

    // Scan: the whole table is 14,097 bytes, 4 × 4 KB.
    let scan = |consistent: bool| {
        client
            .scan()
            .table_name(table)
            .consistent_read(consistent)
            .return_consumed_capacity(Rcc::Total)
    };
    assert_eq!(
        ok(scan(true).send().await).consumed_capacity,
        Some(total(table, 4.0))
    );
    assert_eq!(
        ok(scan(false).send().await).consumed_capacity,
        Some(total(table, 2.0))
    );
    let out = ok(scan(false)
        .filter_expression("sk = :none")
        .expression_attribute_values(":none", s("none"))
        .projection_expression("pk")
        .send()
        .await);
    assert_eq!((out.count, out.scanned_count), (0, 5));
    assert_eq!(out.consumed_capacity, Some(total(table, 2.0)));
    assert_eq!(
        ok(scan(true)
            .return_consumed_capacity(Rcc::Indexes)
            .send()
            .await)
        .consumed_capacity,
        Some(indexes(table, 4.0))
    );
    // An empty table.
    let empty = "cap-scan-empty";
    create_table(&client, empty, Sat::S, None).await;
    let out = ok(client
        .scan()
        .table_name(empty)
        .return_consumed_capacity(Rcc::Total)
        .send()
        .await);
    assert_eq!(out.consumed_capacity, Some(total(empty, 0.5)));
}
