//! BatchWriteItem and BatchGetItem against the real binary.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, ScalarAttributeType as Sat,
    WriteRequest,
};
use common::*;

type Item = HashMap<String, AttributeValue>;

fn client() -> Client {
    shared_server().client()
}

fn put_req(it: Item) -> WriteRequest {
    WriteRequest::builder()
        .put_request(PutRequest::builder().set_item(Some(it)).build().unwrap())
        .build()
}

fn del_req(key: Item) -> WriteRequest {
    WriteRequest::builder()
        .delete_request(DeleteRequest::builder().set_key(Some(key)).build().unwrap())
        .build()
}

fn keys(list: Vec<Item>, consistent: bool) -> KeysAndAttributes {
    KeysAndAttributes::builder()
        .set_keys(Some(list))
        .consistent_read(consistent)
        .build()
        .unwrap()
}

fn pk(v: &str) -> Item {
    item([("pk", s(v))])
}

async fn get(client: &Client, table: &str, key: Item) -> Option<Item> {
    ok(client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await)
    .item
}

fn sorted(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_by_key(|i| format!("{:?}", i.get("pk")) + &format!("{:?}", i.get("sk")));
    items
}

#[tokio::test]
async fn batch_write_puts_and_deletes_across_two_tables() {
    let client = client();
    let (t1, t2) = ("batch-w-one", "batch-w-two");
    create_table(&client, t1, Sat::S, None).await;
    create_table(&client, t2, Sat::N, Some(Sat::S)).await;
    ok(client
        .put_item()
        .table_name(t1)
        .set_item(Some(item([("pk", s("doomed"))])))
        .send()
        .await);
    ok(client
        .put_item()
        .table_name(t2)
        .set_item(Some(item([("pk", n("1")), ("sk", s("doomed"))])))
        .send()
        .await);

    let t1_items: Vec<Item> = (0..10)
        .map(|i| item([("pk", s(&format!("a{i}"))), ("v", n(&i.to_string()))]))
        .collect();
    let t2_items: Vec<Item> = (0..10)
        .map(|i| {
            item([
                ("pk", n("1")),
                ("sk", s(&format!("s{i}"))),
                ("data", b(&[i as u8; 3])),
            ])
        })
        .collect();
    let mut w1: Vec<WriteRequest> = t1_items.iter().cloned().map(put_req).collect();
    w1.push(del_req(pk("doomed")));
    w1.push(del_req(pk("never-existed")));
    let mut w2: Vec<WriteRequest> = t2_items.iter().cloned().map(put_req).collect();
    w2.push(del_req(item([("pk", n("1.0")), ("sk", s("doomed"))])));

    let out = ok(client
        .batch_write_item()
        .request_items(t1, w1)
        .request_items(t2, w2)
        .send()
        .await);
    assert_eq!(
        out.unprocessed_items().map(HashMap::len),
        Some(0),
        "UnprocessedItems must be {{}}"
    );

    for it in &t1_items {
        assert_eq!(
            get(&client, t1, pk(&it["pk"].as_s().unwrap().clone()))
                .await
                .as_ref(),
            Some(it)
        );
    }
    for it in &t2_items {
        let key = item([("pk", n("1")), ("sk", it["sk"].clone())]);
        assert_eq!(get(&client, t2, key).await.as_ref(), Some(it));
    }
    assert!(get(&client, t1, pk("doomed")).await.is_none());
    assert!(
        get(&client, t2, item([("pk", n("1")), ("sk", s("doomed"))]))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn batch_write_accepts_25_requests_and_refuses_26() {
    let client = client();
    let (t1, t2) = ("batch-w-25", "batch-w-25b");
    create_table(&client, t1, Sat::S, None).await;
    create_table(&client, t2, Sat::S, None).await;
    let reqs = |prefix: &str, count: usize| -> Vec<WriteRequest> {
        (0..count)
            .map(|i| put_req(pk(&format!("{prefix}{i}"))))
            .collect()
    };

    let out = ok(client
        .batch_write_item()
        .request_items(t1, reqs("ok", 25))
        .send()
        .await);
    assert_eq!(out.unprocessed_items().map(HashMap::len), Some(0));
    for i in 0..25 {
        assert!(
            get(&client, t1, pk(&format!("ok{i}"))).await.is_some(),
            "ok{i} missing"
        );
    }

    let err = api_error(
        client
            .batch_write_item()
            .request_items(t1, reqs("one-table", 26))
            .send()
            .await,
    );
    assert_eq!(err.code, "ValidationException");
    assert!(
        err.message.starts_with("1 validation error detected: Value '{")
            && err.message.ends_with(
                "}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: \
                 [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"
            ),
        "{}",
        err.message
    );
    assert!(
        get(&client, t1, pk("one-table0")).await.is_none(),
        "refused batch wrote an item"
    );

    // 13 + 13 over two tables: each list is fine, the total is not.
    assert_error(
        client
            .batch_write_item()
            .request_items(t1, reqs("two-tables", 13))
            .request_items(t2, reqs("two-tables", 13))
            .send()
            .await,
        "ValidationException",
        "Too many items requested for the BatchWriteItem call",
    );
    assert!(
        get(&client, t1, pk("two-tables0")).await.is_none(),
        "refused batch wrote an item"
    );
    assert!(
        get(&client, t2, pk("two-tables0")).await.is_none(),
        "refused batch wrote an item"
    );

    // An empty list for a table is refused by the same constraint.
    let err = api_error(
        client
            .batch_write_item()
            .request_items(t1, vec![])
            .send()
            .await,
    );
    assert_eq!(err.code, "ValidationException");
    assert!(
        err.message
            .contains("Member must have length greater than or equal to 1"),
        "{}",
        err.message
    );

    assert_error(
        client
            .batch_write_item()
            .set_request_items(Some(HashMap::new()))
            .send()
            .await,
        "ValidationException",
        "The requestItems parameter is required for BatchWriteItem",
    );
}

#[tokio::test]
async fn batch_write_refuses_duplicate_keys() {
    let client = client();
    let table = "batch-w-dups";
    create_table(&client, table, Sat::S, Some(Sat::N)).await;
    let key = |p: &str, sk: &str| item([("pk", s(p)), ("sk", n(sk))]);
    let msg = "Provided list of item keys contains duplicates";
    let cases: Vec<Vec<WriteRequest>> = vec![
        vec![put_req(key("a", "1")), put_req(key("a", "1"))],
        vec![put_req(key("a", "1")), del_req(key("a", "1"))],
        vec![del_req(key("a", "1")), put_req(key("a", "1"))],
        vec![del_req(key("a", "1")), del_req(key("a", "1"))],
        // Same item written with other, non-key attributes.
        vec![
            put_req(item([("pk", s("a")), ("sk", n("1")), ("v", s("x"))])),
            put_req(item([("pk", s("a")), ("sk", n("1")), ("v", s("y"))])),
        ],
    ];
    for reqs in cases {
        assert_error(
            client
                .batch_write_item()
                .request_items(table, reqs)
                .send()
                .await,
            "ValidationException",
            msg,
        );
    }
    assert!(
        get(&client, table, key("a", "1")).await.is_none(),
        "refused batch wrote an item"
    );

    // Same hash key, different sort keys: not duplicates.
    let out = ok(client
        .batch_write_item()
        .request_items(table, vec![put_req(key("a", "1")), put_req(key("a", "2"))])
        .send()
        .await);
    assert_eq!(out.unprocessed_items().map(HashMap::len), Some(0));
    assert!(get(&client, table, key("a", "2")).await.is_some());
}

#[tokio::test]
async fn batch_write_errors() {
    let client = client();
    let table = "batch-w-errors";
    create_table(&client, table, Sat::S, None).await;

    // Missing table, checked before duplicates.
    assert_error(
        client
            .batch_write_item()
            .request_items("batch-w-missing", vec![put_req(pk("a")), put_req(pk("a"))])
            .send()
            .await,
        "ResourceNotFoundException",
        "Requested resource not found",
    );
    // One missing table fails the whole batch.
    assert_error(
        client
            .batch_write_item()
            .request_items(table, vec![put_req(pk("not-written"))])
            .request_items("batch-w-missing", vec![put_req(pk("a"))])
            .send()
            .await,
        "ResourceNotFoundException",
        "Requested resource not found",
    );
    assert!(get(&client, table, pk("not-written")).await.is_none());

    let mismatch = "The provided key element does not match the schema";
    for it in [
        item([("other", s("x"))]),
        item([("pk", n("1"))]),
        item([("pk", ss_val(&["a"]))]),
    ] {
        assert_error(
            client
                .batch_write_item()
                .request_items(table, vec![put_req(it)])
                .send()
                .await,
            "ValidationException",
            mismatch,
        );
    }
    assert_error(
        client
            .batch_write_item()
            .request_items(
                table,
                vec![del_req(item([("pk", s("a")), ("extra", s("b"))]))],
            )
            .send()
            .await,
        "ValidationException",
        mismatch,
    );
    // Size limit, also before the table lookup.
    let big = item([("pk", s("big")), ("data", s(&"q".repeat(409_601 - 9)))]);
    for t in [table, "batch-w-missing"] {
        assert_error(
            client
                .batch_write_item()
                .request_items(t, vec![put_req(big.clone())])
                .send()
                .await,
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
        );
    }
    let fits = item([("pk", s("big")), ("data", s(&"q".repeat(409_600 - 9)))]);
    ok(client
        .batch_write_item()
        .request_items(table, vec![put_req(fits.clone())])
        .send()
        .await);
    let stored = get(&client, table, pk("big")).await;
    assert!(stored == Some(fits), "stored item differs");

    assert_error(
        client
            .batch_write_item()
            .request_items(
                table,
                vec![put_req(item([("pk", s("a")), ("v", n("1.2.3"))]))],
            )
            .send()
            .await,
        "ValidationException",
        "The parameter cannot be converted to a numeric value: 1.2.3",
    );
}

fn ss_val(v: &[&str]) -> AttributeValue {
    AttributeValue::Ss(v.iter().map(|x| x.to_string()).collect())
}

#[tokio::test]
async fn batch_get_across_tables() {
    let client = client();
    let (t1, t2) = ("batch-g-one", "batch-g-two");
    create_table(&client, t1, Sat::S, None).await;
    create_table(&client, t2, Sat::B, Some(Sat::N)).await;
    let t1_items: Vec<Item> = (0..5)
        .map(|i| item([("pk", s(&format!("k{i}"))), ("i", n(&i.to_string()))]))
        .collect();
    let t2_items: Vec<Item> = (0..3)
        .map(|i| {
            item([
                ("pk", b(b"bin")),
                ("sk", n(&i.to_string())),
                ("m", AttributeValue::M(item([("x", s("y"))]))),
            ])
        })
        .collect();
    let writes1 = t1_items.iter().cloned().map(put_req).collect();
    let writes2 = t2_items.iter().cloned().map(put_req).collect();
    ok(client
        .batch_write_item()
        .request_items(t1, writes1)
        .request_items(t2, writes2)
        .send()
        .await);

    let mut k1: Vec<Item> = (0..5).map(|i| pk(&format!("k{i}"))).collect();
    k1.push(pk("absent-1"));
    k1.push(pk("absent-2"));
    let mut k2: Vec<Item> = (0..3)
        .map(|i| item([("pk", b(b"bin")), ("sk", n(&format!("{i}.0")))]))
        .collect();
    k2.push(item([("pk", b(b"bin")), ("sk", n("99"))]));

    for consistent in [true, false] {
        let out = ok(client
            .batch_get_item()
            .request_items(t1, keys(k1.clone(), consistent))
            .request_items(t2, keys(k2.clone(), consistent))
            .send()
            .await);
        assert_eq!(
            out.unprocessed_keys().map(HashMap::len),
            Some(0),
            "UnprocessedKeys must be {{}}"
        );
        let responses = out.responses().expect("Responses");
        assert_eq!(sorted(responses[t1].clone()), sorted(t1_items.clone()));
        assert_eq!(sorted(responses[t2].clone()), sorted(t2_items.clone()));
        assert_eq!(responses.len(), 2);
    }

    // A table whose keys all miss still appears, with no items.
    let out = ok(client
        .batch_get_item()
        .request_items(t1, keys(vec![pk("absent-1")], true))
        .send()
        .await);
    assert_eq!(
        out.responses().and_then(|r| r.get(t1)).map(Vec::len),
        Some(0)
    );
}

#[tokio::test]
async fn batch_get_key_limits_and_errors() {
    let client = client();
    let (t1, t2) = ("batch-g-limits", "batch-g-limits-b");
    create_table(&client, t1, Sat::S, None).await;
    create_table(&client, t2, Sat::S, None).await;
    ok(client
        .put_item()
        .table_name(t1)
        .set_item(Some(item([("pk", s("k7"))])))
        .send()
        .await);
    let many = |count: usize| -> Vec<Item> { (0..count).map(|i| pk(&format!("k{i}"))).collect() };

    let out = ok(client
        .batch_get_item()
        .request_items(t1, keys(many(100), false))
        .send()
        .await);
    assert_eq!(
        out.responses().and_then(|r| r.get(t1)).cloned(),
        Some(vec![pk("k7")])
    );
    assert_eq!(out.unprocessed_keys().map(HashMap::len), Some(0));

    assert_error(
        client
            .batch_get_item()
            .request_items(t1, keys(many(101), false))
            .send()
            .await,
        "ValidationException",
        &format!(
            "1 validation error detected: Value at 'RequestItems.{t1}.member.Keys' failed to satisfy constraint: \
             Member must have length less than or equal to 100"
        ),
    );
    assert_error(
        client
            .batch_get_item()
            .request_items(t1, keys(many(60), false))
            .request_items(t2, keys(many(41), false))
            .send()
            .await,
        "ValidationException",
        "Too many items requested for the BatchGetItem call",
    );
    assert_error(
        client
            .batch_get_item()
            .request_items(t1, keys(vec![pk("a"), pk("b"), pk("a")], false))
            .send()
            .await,
        "ValidationException",
        "Provided list of item keys contains duplicates",
    );
    assert_error(
        client
            .batch_get_item()
            .request_items("batch-g-missing", keys(vec![pk("a")], false))
            .send()
            .await,
        "ResourceNotFoundException",
        "Requested resource not found",
    );
    assert_error(
        client
            .batch_get_item()
            .request_items(t1, keys(vec![pk("a")], false))
            .request_items("batch-g-missing", keys(vec![pk("a")], false))
            .send()
            .await,
        "ResourceNotFoundException",
        "Requested resource not found",
    );
    for bad in [
        item([("pk", n("1"))]),
        item([("pk", s("a")), ("x", s("b"))]),
        item([("nope", s("a"))]),
    ] {
        assert_error(
            client
                .batch_get_item()
                .request_items(t1, keys(vec![bad], false))
                .send()
                .await,
            "ValidationException",
            "The provided key element does not match the schema",
        );
    }
    assert_error(
        client
            .batch_get_item()
            .set_request_items(Some(HashMap::new()))
            .send()
            .await,
        "ValidationException",
        "The requestItems parameter is required for BatchGetItem",
    );
}

#[tokio::test]
async fn batches_of_large_items() {
    let client = client();
    let table = "batch-large";
    create_table(&client, table, Sat::S, None).await;
    // 25 items of 400 KB: a 10 MB request and a 10 MB response, both within
    // DynamoDB's 16 MB.
    let big = |i: usize| {
        let pk = format!("large-{i:02}");
        let fill = char::from(b'a' + u8::try_from(i).unwrap());
        let data = fill.to_string().repeat(400_000);
        item([("pk", s(&pk)), ("data", s(&data))])
    };
    let writes = (0..25).map(|i| put_req(big(i))).collect();
    let out = ok(client
        .batch_write_item()
        .request_items(table, writes)
        .send()
        .await);
    assert_eq!(out.unprocessed_items().map(HashMap::len), Some(0));

    let all_keys = (0..25).map(|i| pk(&format!("large-{i:02}"))).collect();
    let out = ok(client
        .batch_get_item()
        .request_items(table, keys(all_keys, true))
        .send()
        .await);
    assert_eq!(out.unprocessed_keys().map(HashMap::len), Some(0));
    let got = sorted(out.responses().expect("Responses")[table].clone());
    assert_eq!(got.len(), 25);
    for (i, it) in got.iter().enumerate() {
        assert!(*it == big(i), "item {i} differs");
    }
}
