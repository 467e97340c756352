//! Query and Scan against the real binary: every sort-key operator on S, N
//! and B sort keys, order and direction, Limit and paging to exhaustion, the
//! 1 MB page, filters after Limit, projections, Select, key-condition and
//! ExclusiveStartKey errors, the legacy parameters, full and parallel scans.
//!
//! Expectations come from DynamoDB's documentation and the research notes
//! (`/work/research/item-api-behaviour.md` §1, §2, §7). Query and Scan
//! errors carry no `1 validation error detected: ` envelope unless a
//! message says so.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ComparisonOperator as Op, Condition, ConditionalOperator, PutRequest,
    ScalarAttributeType as Sat, Select, WriteRequest,
};
use common::*;

type Item = HashMap<String, AttributeValue>;

const VE: &str = "ValidationException";

/// Placeholder values of one request.
type Values<'a> = Vec<(&'a str, AttributeValue)>;

fn client() -> Client {
    shared_server().client()
}

fn list(v: Vec<AttributeValue>) -> AttributeValue {
    AttributeValue::L(v)
}

fn map<const N: usize>(pairs: [(&str, AttributeValue); N]) -> AttributeValue {
    AttributeValue::M(item(pairs))
}

fn cond(op: Op, values: Vec<AttributeValue>) -> Condition {
    Condition::builder()
        .comparison_operator(op)
        .set_attribute_value_list((!values.is_empty()).then_some(values))
        .build()
        .expect("condition")
}

/// Writes items with BatchWriteItem, 25 at a time.
async fn load(client: &Client, table: &str, items: Vec<Item>) {
    for chunk in items.chunks(25) {
        let requests = chunk
            .iter()
            .map(|it| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(it.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        let out = ok(client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await);
        assert!(
            out.unprocessed_items.unwrap_or_default().is_empty(),
            "unprocessed items"
        );
    }
}

/// Runs a query page after page until no LastEvaluatedKey comes back.
async fn query_pages(make: impl Fn() -> QueryFluentBuilder) -> Vec<QueryOutput> {
    let mut pages = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let mut request = make();
        if let Some(key) = start.take() {
            request = request.set_exclusive_start_key(Some(key));
        }
        let out = ok(request.send().await);
        let next = out.last_evaluated_key.clone();
        pages.push(out);
        match next {
            Some(key) => start = Some(key),
            None => return pages,
        }
        assert!(pages.len() < 2_000, "paging does not end");
    }
}

async fn scan_pages(make: impl Fn() -> ScanFluentBuilder) -> Vec<ScanOutput> {
    let mut pages = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let mut request = make();
        if let Some(key) = start.take() {
            request = request.set_exclusive_start_key(Some(key));
        }
        let out = ok(request.send().await);
        let next = out.last_evaluated_key.clone();
        pages.push(out);
        match next {
            Some(key) => start = Some(key),
            None => return pages,
        }
        assert!(pages.len() < 2_000, "paging does not end");
    }
}

fn query_items(pages: &[QueryOutput]) -> Vec<Item> {
    pages.iter().flat_map(|p| p.items().to_vec()).collect()
}

fn scan_items(pages: &[ScanOutput]) -> Vec<Item> {
    pages.iter().flat_map(|p| p.items().to_vec()).collect()
}

fn attr(items: &[Item], name: &str) -> Vec<AttributeValue> {
    items
        .iter()
        .map(|it| {
            it.get(name)
                .unwrap_or_else(|| panic!("no {name} in {it:?}"))
                .clone()
        })
        .collect()
}

fn key_of(it: &Item) -> Item {
    it.iter()
        .filter(|(k, _)| *k == "pk" || *k == "sk")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// Sort-key operators
// ---------------------------------------------------------------------------

/// The sort keys of partition `p` for one key condition (all pages).
async fn sort_keys(
    client: &Client,
    table: &str,
    condition: &str,
    values: &[(&str, AttributeValue)],
    forward: bool,
) -> Vec<AttributeValue> {
    let pages = query_pages(|| {
        let mut q = client
            .query()
            .table_name(table)
            .key_condition_expression(condition)
            .scan_index_forward(forward);
        for (k, v) in values {
            q = q.expression_attribute_values(*k, v.clone());
        }
        q
    })
    .await;
    attr(&query_items(&pages), "sk")
}

#[tokio::test]
async fn string_sort_key_operators() {
    let client = client();
    let table = "qs-sort-s";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    // Byte order: "Z" < "a" < "ab" < "abc" < "abd" < "b" < "ba" < "c" < "é".
    let sorted = ["Z", "a", "ab", "abc", "abd", "b", "ba", "c", "é"];
    let mut items: Vec<Item> = ["c", "ab", "é", "Z", "abd", "a", "ba", "abc", "b"]
        .iter()
        .map(|k| item([("pk", s("p")), ("sk", s(k)), ("v", s(k))]))
        .collect();
    // Other partitions never show up.
    items.extend(
        ["a", "b", "z"]
            .iter()
            .map(|k| item([("pk", s("q")), ("sk", s(k))])),
    );
    items.push(item([("pk", s("pp")), ("sk", s("b"))]));
    load(&client, table, items).await;
    let strs = |v: &[&str]| v.iter().map(|x| s(x)).collect::<Vec<_>>();
    let p = || (":p", s("p"));
    let cases: Vec<(&str, Values, Vec<&str>)> = vec![
        ("pk = :p", vec![p()], sorted.to_vec()),
        (
            "pk = :p AND sk = :v",
            vec![p(), (":v", s("ab"))],
            vec!["ab"],
        ),
        ("pk = :p AND sk = :v", vec![p(), (":v", s("abx"))], vec![]),
        (
            "pk = :p AND sk < :v",
            vec![p(), (":v", s("b"))],
            vec!["Z", "a", "ab", "abc", "abd"],
        ),
        (
            "pk = :p AND sk <= :v",
            vec![p(), (":v", s("b"))],
            vec!["Z", "a", "ab", "abc", "abd", "b"],
        ),
        (
            "pk = :p AND sk > :v",
            vec![p(), (":v", s("b"))],
            vec!["ba", "c", "é"],
        ),
        (
            "pk = :p AND sk >= :v",
            vec![p(), (":v", s("b"))],
            vec!["b", "ba", "c", "é"],
        ),
        (
            "pk = :p AND sk BETWEEN :lo AND :hi",
            vec![p(), (":lo", s("ab")), (":hi", s("b"))],
            vec!["ab", "abc", "abd", "b"],
        ),
        (
            "pk = :p AND sk BETWEEN :lo AND :hi",
            vec![p(), (":lo", s("aa")), (":hi", s("aa"))],
            vec![],
        ),
        (
            "pk = :p AND begins_with(sk, :v)",
            vec![p(), (":v", s("ab"))],
            vec!["ab", "abc", "abd"],
        ),
        (
            "pk = :p AND begins_with(sk, :v)",
            vec![p(), (":v", s("é"))],
            vec!["é"],
        ),
        // The value on the left, clauses in any order, parentheses.
        (
            "pk = :p AND :v <= sk",
            vec![p(), (":v", s("b"))],
            vec!["b", "ba", "c", "é"],
        ),
        (
            "pk = :p AND :v > sk",
            vec![p(), (":v", s("ab"))],
            vec!["Z", "a"],
        ),
        (":p = pk AND sk < :v", vec![p(), (":v", s("a"))], vec!["Z"]),
        ("sk > :v AND pk = :p", vec![p(), (":v", s("c"))], vec!["é"]),
        (
            "(pk = :p) AND (sk BETWEEN :lo AND :hi)",
            vec![p(), (":lo", s("b")), (":hi", s("c"))],
            vec!["b", "ba", "c"],
        ),
    ];
    for (condition, values, want) in &cases {
        let got = sort_keys(&client, table, condition, values, true).await;
        assert_eq!(got, strs(want), "{condition}");
        // ScanIndexForward=false: the same items, reversed.
        let got = sort_keys(&client, table, condition, values, false).await;
        let mut reversed = strs(want);
        reversed.reverse();
        assert_eq!(got, reversed, "{condition} backwards");
    }
    // Name placeholders.
    let out = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("#p = :p AND begins_with(#s, :v)")
        .expression_attribute_names("#p", "pk")
        .expression_attribute_names("#s", "sk")
        .expression_attribute_values(":p", s("p"))
        .expression_attribute_values(":v", s("a"))
        .consistent_read(true)
        .send()
        .await);
    assert_eq!(attr(out.items(), "sk"), strs(&["a", "ab", "abc", "abd"]));
    assert_eq!((out.count, out.scanned_count), (4, 4));
    assert_eq!(out.last_evaluated_key, None);
    // Whole items come back.
    assert_eq!(
        out.items()[0],
        item([("pk", s("p")), ("sk", s("a")), ("v", s("a"))])
    );
    // A partition with no items: an empty list, not a missing one.
    let out = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("nobody"))
        .send()
        .await);
    assert_eq!(out.items, Some(vec![]));
    assert_eq!((out.count, out.scanned_count), (0, 0));
    assert_eq!(out.last_evaluated_key, None);
}

#[tokio::test]
async fn number_sort_key_operators() {
    let client = client();
    let table = "qs-sort-n";
    create_table(&client, table, Sat::S, Some(Sat::N)).await;
    let written = ["10", "-1.5", "1E10", "0", "100", "-100", "0.25", "2"];
    load(
        &client,
        table,
        written
            .iter()
            .map(|k| item([("pk", s("p")), ("sk", n(k))]))
            .collect(),
    )
    .await;
    let nums = |v: &[&str]| v.iter().map(|x| n(x)).collect::<Vec<_>>();
    let p = || (":p", s("p"));
    let cases: Vec<(&str, Values, Vec<&str>)> = vec![
        (
            "pk = :p",
            vec![p()],
            vec!["-100", "-1.5", "0", "0.25", "2", "10", "100", "10000000000"],
        ),
        (
            "pk = :p AND sk = :v",
            vec![p(), (":v", n("0.250"))],
            vec!["0.25"],
        ),
        (
            "pk = :p AND sk < :v",
            vec![p(), (":v", n("0"))],
            vec!["-100", "-1.5"],
        ),
        (
            "pk = :p AND sk <= :v",
            vec![p(), (":v", n("0"))],
            vec!["-100", "-1.5", "0"],
        ),
        (
            "pk = :p AND sk > :v",
            vec![p(), (":v", n("9.99"))],
            vec!["10", "100", "10000000000"],
        ),
        (
            "pk = :p AND sk >= :v",
            vec![p(), (":v", n("1E2"))],
            vec!["100", "10000000000"],
        ),
        (
            "pk = :p AND sk BETWEEN :lo AND :hi",
            vec![p(), (":lo", n("-1.5")), (":hi", n("2"))],
            vec!["-1.5", "0", "0.25", "2"],
        ),
        (
            "pk = :p AND :v < sk",
            vec![p(), (":v", n("100"))],
            vec!["10000000000"],
        ),
    ];
    for (condition, values, want) in &cases {
        let got = sort_keys(&client, table, condition, values, true).await;
        assert_eq!(got, nums(want), "{condition}");
        let got = sort_keys(&client, table, condition, values, false).await;
        let mut reversed = nums(want);
        reversed.reverse();
        assert_eq!(got, reversed, "{condition} backwards");
    }
}

#[tokio::test]
async fn binary_sort_key_operators() {
    let client = client();
    let table = "qs-sort-b";
    create_table(&client, table, Sat::S, Some(Sat::B)).await;
    let sorted: Vec<&[u8]> = vec![
        &[0x00],
        &[0x01],
        &[0x01, 0x02],
        &[0x7f],
        &[0x80],
        &[0xff],
        &[0xff, 0x00],
    ];
    let mut shuffled = sorted.clone();
    shuffled.reverse();
    shuffled.swap(1, 4);
    load(
        &client,
        table,
        shuffled
            .iter()
            .map(|k| item([("pk", s("p")), ("sk", b(k))]))
            .collect(),
    )
    .await;
    let bins = |v: &[&[u8]]| v.iter().map(|x| b(x)).collect::<Vec<_>>();
    let p = || (":p", s("p"));
    let cases: Vec<(&str, Values, Vec<&[u8]>)> = vec![
        ("pk = :p", vec![p()], sorted.clone()),
        (
            "pk = :p AND sk = :v",
            vec![p(), (":v", b(&[0x7f]))],
            vec![&[0x7f]],
        ),
        // Unsigned bytes: 0x80 and 0xff sort after 0x7f.
        (
            "pk = :p AND sk > :v",
            vec![p(), (":v", b(&[0x7f]))],
            vec![&[0x80], &[0xff], &[0xff, 0x00]],
        ),
        (
            "pk = :p AND sk >= :v",
            vec![p(), (":v", b(&[0xff]))],
            vec![&[0xff], &[0xff, 0x00]],
        ),
        (
            "pk = :p AND sk < :v",
            vec![p(), (":v", b(&[0x01, 0x02]))],
            vec![&[0x00], &[0x01]],
        ),
        (
            "pk = :p AND sk <= :v",
            vec![p(), (":v", b(&[0x01, 0x02]))],
            vec![&[0x00], &[0x01], &[0x01, 0x02]],
        ),
        (
            "pk = :p AND sk BETWEEN :lo AND :hi",
            vec![p(), (":lo", b(&[0x01, 0x00])), (":hi", b(&[0x80]))],
            vec![&[0x01, 0x02], &[0x7f], &[0x80]],
        ),
        (
            "pk = :p AND begins_with(sk, :v)",
            vec![p(), (":v", b(&[0x01]))],
            vec![&[0x01], &[0x01, 0x02]],
        ),
        (
            "pk = :p AND begins_with(sk, :v)",
            vec![p(), (":v", b(&[0xff]))],
            vec![&[0xff], &[0xff, 0x00]],
        ),
    ];
    for (condition, values, want) in &cases {
        let got = sort_keys(&client, table, condition, values, true).await;
        assert_eq!(got, bins(want), "{condition}");
        let got = sort_keys(&client, table, condition, values, false).await;
        let mut reversed = bins(want);
        reversed.reverse();
        assert_eq!(got, reversed, "{condition} backwards");
    }
}

#[tokio::test]
async fn number_and_binary_partition_keys() {
    let client = client();
    let (tn, tb) = ("qs-hash-n", "qs-hash-b");
    create_table(&client, tn, Sat::N, None).await;
    create_table(&client, tb, Sat::B, Some(Sat::N)).await;
    // Numbers are keys by value: "1.50" and "15E-1" name the same item.
    ok(client
        .put_item()
        .table_name(tn)
        .set_item(Some(item([("pk", n("1.50")), ("v", s("a"))])))
        .send()
        .await);
    let out = ok(client
        .query()
        .table_name(tn)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", n("15E-1"))
        .send()
        .await);
    assert_eq!(out.items(), &[item([("pk", n("1.5")), ("v", s("a"))])]);
    load(
        &client,
        tb,
        (0..3)
            .flat_map(|i| {
                [&[0u8][..], &[0xff, 0x00][..]]
                    .into_iter()
                    .map(move |p| item([("pk", b(p)), ("sk", n(&i.to_string()))]))
            })
            .collect(),
    )
    .await;
    let out = ok(client
        .query()
        .table_name(tb)
        .key_condition_expression("pk = :p AND sk > :zero")
        .expression_attribute_values(":p", b(&[0xff, 0x00]))
        .expression_attribute_values(":zero", n("0"))
        .send()
        .await);
    assert_eq!(
        out.items(),
        &[
            item([("pk", b(&[0xff, 0x00])), ("sk", n("1"))]),
            item([("pk", b(&[0xff, 0x00])), ("sk", n("2"))]),
        ]
    );
}

// ---------------------------------------------------------------------------
// Limit, paging, 1 MB pages
// ---------------------------------------------------------------------------

#[tokio::test]
async fn query_pages_through_a_partition_with_limit() {
    let client = client();
    let table = "qs-paging";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    let keys: Vec<String> = (0..47).map(|i| format!("i{i:03}")).collect();
    let mut items: Vec<Item> = keys
        .iter()
        .map(|k| item([("pk", s("p")), ("sk", s(k)), ("v", s(k))]))
        .collect();
    items.extend((0..5).map(|i| item([("pk", s("other")), ("sk", s(&format!("i{i:03}")))])));
    load(&client, table, items).await;

    for forward in [true, false] {
        let pages = query_pages(|| {
            client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s("p"))
                .scan_index_forward(forward)
                .limit(5)
        })
        .await;
        let mut want: Vec<AttributeValue> = keys.iter().map(|k| s(k)).collect();
        if !forward {
            want.reverse();
        }
        // The union is every item once, in order.
        assert_eq!(attr(&query_items(&pages), "sk"), want, "forward {forward}");
        assert_eq!(pages.len(), 10, "forward {forward}");
        for (i, page) in pages.iter().enumerate() {
            let expected_count = if i < 9 { 5 } else { 2 };
            assert_eq!(
                (page.count, page.scanned_count),
                (expected_count, expected_count)
            );
            // Each LastEvaluatedKey is the key of the page's last item.
            if i < 9 {
                assert_eq!(
                    page.last_evaluated_key.as_ref(),
                    Some(&key_of(page.items().last().unwrap()))
                );
            }
        }
    }

    // With a range condition and another Limit.
    let pages = query_pages(|| {
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p AND sk > :v")
            .expression_attribute_values(":p", s("p"))
            .expression_attribute_values(":v", s("i010"))
            .limit(7)
    })
    .await;
    let want: Vec<AttributeValue> = keys[11..].iter().map(|k| s(k)).collect();
    assert_eq!(attr(&query_items(&pages), "sk"), want);

    // The start key need not exist: the page starts strictly after it (or
    // before it, backwards).
    let out = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .exclusive_start_key("pk", s("p"))
        .exclusive_start_key("sk", s("i0105"))
        .limit(2)
        .send()
        .await);
    assert_eq!(attr(out.items(), "sk"), vec![s("i011"), s("i012")]);
    let out = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .exclusive_start_key("pk", s("p"))
        .exclusive_start_key("sk", s("i011"))
        .scan_index_forward(false)
        .limit(2)
        .send()
        .await);
    assert_eq!(attr(out.items(), "sk"), vec![s("i010"), s("i009")]);

    // Paging goes on when the item of the LastEvaluatedKey is deleted
    // between two pages.
    let first = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .limit(20)
        .send()
        .await);
    let lek = first
        .last_evaluated_key
        .clone()
        .expect("a LastEvaluatedKey");
    assert_eq!(lek, item([("pk", s("p")), ("sk", s("i019"))]));
    ok(client
        .delete_item()
        .table_name(table)
        .set_key(Some(lek.clone()))
        .send()
        .await);
    let rest = query_pages(|| {
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .exclusive_start_key("pk", lek["pk"].clone())
            .exclusive_start_key("sk", lek["sk"].clone())
            .limit(20)
    })
    .await;
    let want: Vec<AttributeValue> = keys[20..].iter().map(|k| s(k)).collect();
    assert_eq!(attr(&query_items(&rest), "sk"), want);
}

/// ~100 KB items: a page ends with the item that takes it to 1 MB
/// (1,048,576 bytes) of evaluated data, and LastEvaluatedKey is its key.
#[tokio::test]
async fn pages_stop_at_one_megabyte() {
    let client = client();
    let table = "qs-one-mb";
    create_table(&client, table, Sat::S, Some(Sat::N)).await;
    for i in 1..=30 {
        // 3 ("pk" + "p") + 4 ("sk" + a 1-2 digit number) + 6 ("filler") +
        // 99,987 = 100,000 bytes.
        let it = item([
            ("pk", s("p")),
            ("sk", n(&i.to_string())),
            ("filler", s(&"d".repeat(99_987))),
        ]);
        ok(client
            .put_item()
            .table_name(table)
            .set_item(Some(it))
            .send()
            .await);
    }
    let sk_key = |i: u32| item([("pk", s("p")), ("sk", n(&i.to_string()))]);
    // 10 items are 1,000,000 bytes; the 11th passes 1 MB and ends the page.
    let pages = query_pages(|| {
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
    })
    .await;
    let counts: Vec<i32> = pages.iter().map(|p| p.count).collect();
    assert_eq!(counts, vec![11, 11, 8]);
    assert_eq!(pages[0].last_evaluated_key, Some(sk_key(11)));
    assert_eq!(pages[1].last_evaluated_key, Some(sk_key(22)));
    assert_eq!(
        attr(&query_items(&pages), "sk"),
        (1..=30).map(|i| n(&i.to_string())).collect::<Vec<_>>()
    );

    // A page of 1,100,000 bytes costs ceil(1,100,000 / 4,096) = 269 units,
    // halved when eventually consistent.
    for (consistent, units) in [(true, 269.0), (false, 134.5)] {
        let out = ok(client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .consistent_read(consistent)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await);
        assert_eq!(out.count, 11);
        assert_eq!(
            out.consumed_capacity.and_then(|c| c.capacity_units),
            Some(units),
            "consistent {consistent}"
        );
    }

    // The filter and the projection do not change what a page evaluates.
    let out = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .filter_expression("attribute_not_exists(filler)")
        .expression_attribute_values(":p", s("p"))
        .send()
        .await);
    assert_eq!((out.count, out.scanned_count), (0, 11));
    assert_eq!(out.items, Some(vec![]));
    assert_eq!(out.last_evaluated_key, Some(sk_key(11)));
    let out = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .projection_expression("sk")
        .expression_attribute_values(":p", s("p"))
        .send()
        .await);
    assert_eq!(out.count, 11);
    assert_eq!(out.items()[0], item([("sk", n("1"))]));
    assert_eq!(out.last_evaluated_key, Some(sk_key(11)));
    let out = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .select(Select::Count)
        .send()
        .await);
    assert_eq!((out.count, out.scanned_count, out.items), (11, 11, None));
    assert_eq!(out.last_evaluated_key, Some(sk_key(11)));
    // Whichever of Limit and 1 MB comes first ends the page.
    let out = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .limit(5)
        .send()
        .await);
    assert_eq!(out.count, 5);
    assert_eq!(out.last_evaluated_key, Some(sk_key(5)));
    let out = ok(client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .scan_index_forward(false)
        .limit(20)
        .send()
        .await);
    assert_eq!(out.count, 11);
    assert_eq!(out.last_evaluated_key, Some(sk_key(20)));

    // Scan pages the same way.
    let pages = scan_pages(|| client.scan().table_name(table)).await;
    let counts: Vec<i32> = pages.iter().map(|p| p.count).collect();
    assert_eq!(counts, vec![11, 11, 8]);
    assert_eq!(pages[0].last_evaluated_key, Some(sk_key(11)));
}

#[tokio::test]
async fn filters_apply_after_limit() {
    let client = client();
    let table = "qs-filter-limit";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    load(
        &client,
        table,
        (0..10)
            .map(|i| {
                item([
                    ("pk", s("p")),
                    ("sk", s(&format!("{i:03}"))),
                    ("parity", s(if i % 2 == 0 { "even" } else { "odd" })),
                    ("n", n(&i.to_string())),
                ])
            })
            .collect(),
    )
    .await;
    let q = || {
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
    };
    // Limit 4 evaluates 000..003; the filter keeps 000 and 002.
    let out = ok(q()
        .filter_expression("parity = :even")
        .expression_attribute_values(":even", s("even"))
        .limit(4)
        .send()
        .await);
    assert_eq!((out.count, out.scanned_count), (2, 4));
    assert_eq!(attr(out.items(), "sk"), vec![s("000"), s("002")]);
    assert_eq!(
        out.last_evaluated_key,
        Some(item([("pk", s("p")), ("sk", s("003"))]))
    );
    // A page may match nothing and still go on.
    let out = ok(q()
        .filter_expression("n > :big")
        .expression_attribute_values(":big", n("100"))
        .limit(3)
        .send()
        .await);
    assert_eq!((out.count, out.scanned_count), (0, 3));
    assert_eq!(out.items, Some(vec![]));
    assert_eq!(
        out.last_evaluated_key,
        Some(item([("pk", s("p")), ("sk", s("002"))]))
    );
    // Without Limit: Count is what matched, ScannedCount what was read.
    let out = ok(q()
        .filter_expression("parity = :odd AND n >= :three")
        .expression_attribute_values(":odd", s("odd"))
        .expression_attribute_values(":three", n("3"))
        .send()
        .await);
    assert_eq!((out.count, out.scanned_count), (4, 10));
    assert_eq!(
        attr(out.items(), "sk"),
        vec![s("003"), s("005"), s("007"), s("009")]
    );
    assert_eq!(out.last_evaluated_key, None);
    // Select COUNT with a filter.
    let out = ok(q()
        .filter_expression("parity = :even")
        .expression_attribute_values(":even", s("even"))
        .select(Select::Count)
        .send()
        .await);
    assert_eq!((out.count, out.scanned_count, out.items), (5, 10, None));
}

// ---------------------------------------------------------------------------
// Projection, Select, ConsistentRead
// ---------------------------------------------------------------------------

#[tokio::test]
async fn projection_select_and_consistent_read() {
    let client = client();
    let table = "qs-projection";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    let full = item([
        ("pk", s("p")),
        ("sk", s("a")),
        ("a", s("a")),
        ("b", s("b")),
        ("m", map([("x", n("1")), ("y", n("2"))])),
        ("l", list(vec![n("0"), n("1"), n("2")])),
        ("status", s("on")),
    ]);
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(full.clone()))
        .send()
        .await);
    let q = || {
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .consistent_read(true)
    };
    // Only the named paths come back, keys included only when named.
    let out = ok(q()
        .projection_expression("a, m.x, l[1], #st, nope")
        .expression_attribute_names("#st", "status")
        .send()
        .await);
    assert_eq!(
        out.items(),
        &[item([
            ("a", s("a")),
            ("m", map([("x", n("1"))])),
            ("l", list(vec![n("1")])),
            ("status", s("on")),
        ])]
    );
    let out = ok(q()
        .projection_expression("sk, l[2], l[0]")
        .select(Select::SpecificAttributes)
        .send()
        .await);
    assert_eq!(
        out.items(),
        &[item([("sk", s("a")), ("l", list(vec![n("0"), n("2")]))])]
    );
    // Nothing to project: the item still counts, as an empty map.
    let out = ok(q().projection_expression("nope, l[7]").send().await);
    assert_eq!((out.count, out.items), (1, Some(vec![HashMap::new()])));
    let out = ok(q().select(Select::AllAttributes).send().await);
    assert_eq!(out.items(), std::slice::from_ref(&full));
    let out = ok(q().select(Select::Count).send().await);
    assert_eq!((out.count, out.scanned_count, out.items), (1, 1, None));
    let out = ok(client
        .scan()
        .table_name(table)
        .select(Select::Count)
        .send()
        .await);
    assert_eq!((out.count, out.scanned_count, out.items), (1, 1, None));
    let out = ok(client
        .scan()
        .table_name(table)
        .projection_expression("m.y, b")
        .send()
        .await);
    assert_eq!(
        out.items(),
        &[item([("b", s("b")), ("m", map([("y", n("2"))]))])]
    );

    // A strongly consistent read sees the write just acknowledged.
    for i in 0..5 {
        let v = format!("v{i}");
        ok(client
            .put_item()
            .table_name(table)
            .set_item(Some(item([("pk", s("p")), ("sk", s("c")), ("v", s(&v))])))
            .send()
            .await);
        let out = ok(q()
            .key_condition_expression("pk = :p AND sk = :c")
            .expression_attribute_values(":c", s("c"))
            .send()
            .await);
        assert_eq!(out.items()[0]["v"], s(&v));
    }
}

#[tokio::test]
async fn select_errors() {
    let client = client();
    let table = "qs-select-errors";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    let q = || {
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
    };
    assert_error(
        q().select(Select::SpecificAttributes).send().await,
        VE,
        "1 validation error detected: Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
    );
    assert_error(
        q().select(Select::AllAttributes)
            .projection_expression("a")
            .send()
            .await,
        VE,
        "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES",
    );
    assert_error(
        q().select(Select::Count)
            .projection_expression("a")
            .send()
            .await,
        VE,
        "Cannot specify the ProjectionExpression when choosing to get only the Count",
    );
    assert_error(
        q().select(Select::AllProjectedAttributes).send().await,
        VE,
        "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
    );
    assert_error(
        q().select(Select::AllProjectedAttributes)
            .projection_expression("a")
            .send()
            .await,
        VE,
        "Cannot specify the ProjectionExpression when choosing to get ALL_PROJECTED_ATTRIBUTES",
    );
    assert_error(
        q().projection_expression("a, a.b").send().await,
        VE,
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
    );
    // Scan: the SPECIFIC_ATTRIBUTES text comes bare.
    assert_error(
        client
            .scan()
            .table_name(table)
            .select(Select::SpecificAttributes)
            .send()
            .await,
        VE,
        "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
    );
    assert_error(
        client
            .scan()
            .table_name(table)
            .select(Select::Count)
            .projection_expression("a")
            .send()
            .await,
        VE,
        "Cannot specify the ProjectionExpression when choosing to get only the Count",
    );
    assert_error(
        client
            .scan()
            .table_name(table)
            .select(Select::AllProjectedAttributes)
            .send()
            .await,
        VE,
        "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
    );
}

// ---------------------------------------------------------------------------
// Key-condition and ExclusiveStartKey errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn key_condition_errors() {
    let client = client();
    let table = "qs-kce-errors";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    let err = api_error(client.query().table_name(table).send().await);
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        (
            VE,
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
        )
    );
    let p = || (":p", s("p"));
    let cases: Vec<(&str, Values, &str)> = vec![
        (
            "",
            vec![],
            "Invalid KeyConditionExpression: The expression can not be empty;",
        ),
        (
            "((pk = :p))",
            vec![p()],
            "Invalid KeyConditionExpression: The expression has redundant parentheses;",
        ),
        (
            "sk = :v",
            vec![(":v", s("a"))],
            "Query condition missed key schema element: pk",
        ),
        (
            "extra = :v",
            vec![(":v", s("a"))],
            "Query condition missed key schema element: pk",
        ),
        (
            "pk = :p AND foo = :f",
            vec![p(), (":f", s("a"))],
            "Query condition missed key schema element: sk",
        ),
        (
            "pk = :p AND sk > :a AND foo = :f",
            vec![p(), (":a", s("a")), (":f", s("a"))],
            "The number of query conditions (3) exceeds the number of key attributes defined in the schema (2)",
        ),
        (
            "pk = :p AND sk > :a AND sk < :b",
            vec![p(), (":a", s("a")), (":b", s("b"))],
            "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key",
        ),
        ("pk > :p", vec![p()], "Query key condition not supported"),
        (
            "begins_with(pk, :p)",
            vec![p()],
            "Query key condition not supported",
        ),
        (
            "pk = :n",
            vec![(":n", n("1"))],
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "pk = :p AND sk > :n",
            vec![p(), (":n", n("1"))],
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "pk = :p AND begins_with(sk, :n)",
            vec![p(), (":n", n("1"))],
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
        ),
        (
            "pk = :p AND sk BETWEEN :b AND :a",
            vec![p(), (":a", s("a")), (":b", s("b"))],
            "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {S:b}, upper bound operand: AttributeValue: {S:a}",
        ),
        (
            "pk = :p AND sk > :v",
            vec![p()],
            "Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v",
        ),
        (
            "pk = :p",
            vec![p(), (":unused", s("x"))],
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
        ),
    ];
    let mut wrong = Vec::new();
    for (condition, values, message) in &cases {
        let mut q = client
            .query()
            .table_name(table)
            .key_condition_expression(*condition);
        for (k, v) in values {
            q = q.expression_attribute_values(*k, v.clone());
        }
        let err = api_error(q.send().await);
        if (err.code.as_str(), err.message.as_str()) != (VE, *message) {
            wrong.push(format!(
                "{condition:?}:\n  got  {}: {}\n  want {VE}: {message}",
                err.code, err.message
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // A filter on a key attribute is refused in Query.
    for (filter, attribute) in [("sk > :v", "sk"), ("attribute_exists(pk) OR a = :v", "pk")] {
        assert_error(
            client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :p")
                .filter_expression(filter)
                .expression_attribute_values(":p", s("p"))
                .expression_attribute_values(":v", s("a"))
                .send()
                .await,
            VE,
            &format!(
                "Filter Expression can only contain non-primary key attributes: Primary key attribute: {attribute}"
            ),
        );
    }
    // Limit 0.
    assert_error(
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .limit(0)
            .send()
            .await,
        VE,
        "1 validation error detected: Value at 'Limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    // A valid query on a missing table.
    assert_error(
        client
            .query()
            .table_name("qs-kce-no-such-table")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .send()
            .await,
        "ResourceNotFoundException",
        "Requested resource not found",
    );
}

#[tokio::test]
async fn key_condition_operand_types() {
    let client = client();
    let table = "qs-kce-types";
    create_table(&client, table, Sat::S, Some(Sat::N)).await;
    let t = AttributeValue::Bool(true);
    let cases: Vec<(&str, AttributeValue, &str)> = vec![
        // Checked against the schema after the table is found.
        (
            "pk = :p AND begins_with(sk, :v)",
            s("1"),
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "pk = :p AND sk = :v",
            t.clone(),
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        // Checked on the expression alone: begins_with wants S or B, an
        // ordering comparison cannot take a BOOL.
        (
            "pk = :p AND begins_with(sk, :v)",
            n("1"),
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
        ),
        (
            "pk = :p AND sk < :v",
            t.clone(),
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: BOOL",
        ),
        (
            "pk = :p AND :v >= sk",
            t.clone(),
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: >=, operand type: BOOL",
        ),
    ];
    let mut wrong = Vec::new();
    for (condition, value, message) in &cases {
        let err = api_error(
            client
                .query()
                .table_name(table)
                .key_condition_expression(*condition)
                .expression_attribute_values(":p", s("p"))
                .expression_attribute_values(":v", value.clone())
                .send()
                .await,
        );
        if (err.code.as_str(), err.message.as_str()) != (VE, *message) {
            wrong.push(format!(
                "{condition:?} with {value:?}:\n  got  {}: {}\n  want {VE}: {message}",
                err.code, err.message
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn unknown_index_and_nested_key_paths() {
    let client = client();
    let table = "qs-index-and-key-paths";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    assert_error(
        client
            .query()
            .table_name(table)
            .index_name("nope")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .send()
            .await,
        VE,
        "The table does not have the specified index: nope",
    );
    assert_error(
        client
            .scan()
            .table_name(table)
            .index_name("nope")
            .send()
            .await,
        VE,
        "The table does not have the specified index: nope",
    );
    assert_error(
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .projection_expression("sk.x")
            .expression_attribute_values(":p", s("p"))
            .send()
            .await,
        VE,
        "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: sk",
    );
    assert_error(
        client
            .scan()
            .table_name(table)
            .filter_expression("pk[0] = :v")
            .expression_attribute_values(":v", s("p"))
            .send()
            .await,
        VE,
        "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: pk",
    );
}

#[tokio::test]
async fn exclusive_start_key_errors() {
    let client = client();
    let table = "qs-esk-errors";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    let q = |condition: &str| {
        client
            .query()
            .table_name(table)
            .key_condition_expression(condition)
            .expression_attribute_values(":p", s("p"))
    };
    assert_error(
        q("pk = :p").exclusive_start_key("bad", s("p")).send().await,
        VE,
        "The provided starting key is invalid",
    );
    assert_error(
        q("pk = :p")
            .exclusive_start_key("pk", s("p"))
            .exclusive_start_key("other", s("a"))
            .send()
            .await,
        VE,
        "The provided starting key is invalid",
    );
    assert_error(
        q("pk = :p")
            .exclusive_start_key("pk", s("p"))
            .exclusive_start_key("sk", n("1"))
            .send()
            .await,
        VE,
        "The provided key element does not match the schema",
    );
    assert_error(
        q("pk = :p")
            .exclusive_start_key("pk", s("elsewhere"))
            .exclusive_start_key("sk", s("a"))
            .send()
            .await,
        VE,
        "The provided starting key is outside query boundaries based on provided conditions",
    );
    assert_error(
        q("pk = :p AND sk < :v")
            .expression_attribute_values(":v", s("m"))
            .exclusive_start_key("pk", s("p"))
            .exclusive_start_key("sk", s("z"))
            .send()
            .await,
        VE,
        "The provided starting key does not match the range key predicate",
    );
    // Scan words the key-count error differently.
    assert_error(
        client
            .scan()
            .table_name(table)
            .exclusive_start_key("pk", s("p"))
            .send()
            .await,
        VE,
        "The provided starting key is invalid: The provided key element does not match the schema",
    );
    // A key value no key may hold says why, behind the same prefix.
    let empty = "The provided starting key is invalid: One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk";
    assert_error(
        q("pk = :p")
            .exclusive_start_key("pk", s(""))
            .exclusive_start_key("sk", s("a"))
            .send()
            .await,
        VE,
        empty,
    );
    assert_error(
        client
            .scan()
            .table_name(table)
            .exclusive_start_key("pk", s(""))
            .exclusive_start_key("sk", s("a"))
            .send()
            .await,
        VE,
        empty,
    );
    assert_error(
        client
            .scan()
            .table_name(table)
            .exclusive_start_key("pk", s(&"p".repeat(2049)))
            .exclusive_start_key("sk", s("a"))
            .send()
            .await,
        VE,
        "The provided starting key is invalid: One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
    );
}

// ---------------------------------------------------------------------------
// Legacy Query parameters
// ---------------------------------------------------------------------------

#[tokio::test]
async fn legacy_key_conditions_query_filter_and_attributes_to_get() {
    let client = client();
    let table = "qs-legacy-query";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    load(
        &client,
        table,
        ["a", "ab", "b", "bb", "c"]
            .iter()
            .enumerate()
            .map(|(i, k)| {
                item([
                    ("pk", s("p")),
                    ("sk", s(k)),
                    ("x", n(&i.to_string())),
                    ("y", s("y")),
                ])
            })
            .collect(),
    )
    .await;
    let out = ok(client
        .query()
        .table_name(table)
        .key_conditions("pk", cond(Op::Eq, vec![s("p")]))
        .key_conditions("sk", cond(Op::Between, vec![s("ab"), s("bb")]))
        .query_filter("x", cond(Op::Gt, vec![n("1")]))
        .attributes_to_get("sk")
        .attributes_to_get("x")
        .send()
        .await);
    assert_eq!(
        out.items(),
        &[
            item([("sk", s("b")), ("x", n("2"))]),
            item([("sk", s("bb")), ("x", n("3"))]),
        ]
    );
    assert_eq!((out.count, out.scanned_count), (2, 3));
    // BEGINS_WITH on the sort key; an OR of two filter conditions.
    let out = ok(client
        .query()
        .table_name(table)
        .key_conditions("pk", cond(Op::Eq, vec![s("p")]))
        .key_conditions("sk", cond(Op::BeginsWith, vec![s("b")]))
        .query_filter("x", cond(Op::Eq, vec![n("2")]))
        .query_filter("y", cond(Op::Eq, vec![s("y")]))
        .conditional_operator(ConditionalOperator::Or)
        .scan_index_forward(false)
        .send()
        .await);
    assert_eq!(attr(out.items(), "sk"), vec![s("bb"), s("b")]);
    // ... and AND.
    let out = ok(client
        .query()
        .table_name(table)
        .key_conditions("pk", cond(Op::Eq, vec![s("p")]))
        .query_filter("x", cond(Op::Le, vec![n("2")]))
        .query_filter("y", cond(Op::NotNull, vec![]))
        .send()
        .await);
    assert_eq!(attr(out.items(), "sk"), vec![s("a"), s("ab"), s("b")]);

    // Errors.
    let mixing = |legacy: &str, expressions: &str| {
        format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{legacy}}} Expression parameters: {{{expressions}}}"
        )
    };
    assert_error(
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .key_conditions("pk", cond(Op::Eq, vec![s("p")]))
            .send()
            .await,
        VE,
        &mixing("KeyConditions", "KeyConditionExpression"),
    );
    assert_error(
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .query_filter("x", cond(Op::Eq, vec![n("1")]))
            .send()
            .await,
        VE,
        &mixing("QueryFilter", "KeyConditionExpression"),
    );
    assert_error(
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .attributes_to_get("x")
            .projection_expression("y")
            .send()
            .await,
        VE,
        &mixing(
            "AttributesToGet",
            "ProjectionExpression, KeyConditionExpression",
        ),
    );
    assert_error(
        client
            .query()
            .table_name(table)
            .key_conditions("pk", cond(Op::Eq, vec![s("p")]))
            .query_filter("sk", cond(Op::Eq, vec![s("a")]))
            .send()
            .await,
        VE,
        "QueryFilter can only contain non-primary key attributes: Primary key attribute: sk",
    );
    assert_error(
        client
            .query()
            .table_name(table)
            .key_conditions("pk", cond(Op::Eq, vec![s("p")]))
            .key_conditions("sk", cond(Op::Ne, vec![s("a")]))
            .send()
            .await,
        VE,
        "Attempted conditional constraint is not an indexable operation",
    );
    assert_error(
        client
            .query()
            .table_name(table)
            .key_conditions("sk", cond(Op::Eq, vec![s("a")]))
            .send()
            .await,
        VE,
        "Query condition missed key schema element: pk",
    );
    assert_error(
        client
            .query()
            .table_name(table)
            .key_conditions("pk", cond(Op::Eq, vec![s("p")]))
            .key_conditions("sk", cond(Op::Between, vec![s("b"), s("a")]))
            .send()
            .await,
        VE,
        "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
    );
    assert_error(
        client
            .query()
            .table_name(table)
            .key_conditions("pk", cond(Op::Eq, vec![s("p")]))
            .attributes_to_get("x")
            .attributes_to_get("x")
            .send()
            .await,
        VE,
        "One or more parameter values were invalid: Duplicate value in attribute name: x",
    );
}

// ---------------------------------------------------------------------------
// Scan
// ---------------------------------------------------------------------------

async fn scan_table(client: &Client, table: &str, count: usize) -> Vec<Item> {
    create_table(client, table, Sat::N, None).await;
    let items: Vec<Item> = (0..count)
        .map(|i| {
            item([
                ("pk", n(&i.to_string())),
                ("v", n(&(i % 10).to_string())),
                ("tag", s(if i % 3 == 0 { "x" } else { "y" })),
                ("pad", s(&"p".repeat(i))),
            ])
        })
        .collect();
    load(client, table, items.clone()).await;
    items
}

fn pk_set(items: &[Item]) -> BTreeSet<i64> {
    items
        .iter()
        .map(|it| match &it["pk"] {
            AttributeValue::N(v) => v.parse().unwrap(),
            other => panic!("pk {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn scan_whole_table_filters_projection_and_paging() {
    let client = client();
    let table = "qs-scan";
    let items = scan_table(&client, table, 60).await;
    let all: BTreeSet<i64> = (0..60).collect();

    // One request: every item, whole.
    let out = ok(client.scan().table_name(table).send().await);
    assert_eq!((out.count, out.scanned_count), (60, 60));
    assert_eq!(out.last_evaluated_key, None);
    let mut got = out.items().to_vec();
    got.sort_by_key(|it| pk_set(std::slice::from_ref(it)).into_iter().next());
    assert_eq!(got, items);

    // Paging with Limit: every item exactly once, in the same order as the
    // single scan.
    let order = attr(out.items(), "pk");
    for limit in [1, 7, 59] {
        let pages = scan_pages(|| client.scan().table_name(table).limit(limit)).await;
        let got = scan_items(&pages);
        assert_eq!(attr(&got, "pk"), order, "limit {limit}");
        for page in &pages[..pages.len() - 1] {
            assert_eq!(page.count, limit);
            assert_eq!(
                page.last_evaluated_key.as_ref(),
                Some(&item([("pk", page.items().last().unwrap()["pk"].clone())]))
            );
        }
    }
    // Paging goes on when the item of the LastEvaluatedKey is deleted
    // between two pages.
    let first = ok(client.scan().table_name(table).limit(25).send().await);
    let lek = first
        .last_evaluated_key
        .clone()
        .expect("a LastEvaluatedKey");
    let rest_before = scan_items(
        &scan_pages(|| {
            client
                .scan()
                .table_name(table)
                .exclusive_start_key("pk", lek["pk"].clone())
        })
        .await,
    );
    ok(client
        .delete_item()
        .table_name(table)
        .set_key(Some(lek.clone()))
        .send()
        .await);
    let rest_after = scan_items(
        &scan_pages(|| {
            client
                .scan()
                .table_name(table)
                .exclusive_start_key("pk", lek["pk"].clone())
                .limit(6)
        })
        .await,
    );
    assert_eq!(rest_after, rest_before);
    assert_eq!(first.items().len() + rest_after.len(), 60);
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(
            items
                .iter()
                .find(|it| it["pk"] == lek["pk"])
                .unwrap()
                .clone(),
        ))
        .send()
        .await);

    // Limit equal to the table size still returns a LastEvaluatedKey; the
    // next page is empty and ends the scan.
    let pages = scan_pages(|| client.scan().table_name(table).limit(60)).await;
    let counts: Vec<i32> = pages.iter().map(|p| p.count).collect();
    assert_eq!(counts, vec![60, 0]);
    assert_eq!(pages[1].items, Some(vec![]));
    assert_eq!(pages[1].last_evaluated_key, None);

    // A filter (which may name the key in Scan), counted after Limit.
    let out = ok(client
        .scan()
        .table_name(table)
        .filter_expression("v = :seven AND pk < :fifty")
        .expression_attribute_values(":seven", n("7"))
        .expression_attribute_values(":fifty", n("50"))
        .send()
        .await);
    assert_eq!((out.count, out.scanned_count), (5, 60));
    assert_eq!(pk_set(out.items()), BTreeSet::from([7, 17, 27, 37, 47]));
    let pages = scan_pages(|| {
        client
            .scan()
            .table_name(table)
            .filter_expression("tag = :x")
            .expression_attribute_values(":x", s("x"))
            .limit(9)
    })
    .await;
    assert_eq!(pages.len(), 7);
    assert!(pages[..6].iter().all(|p| p.scanned_count == 9));
    let got = scan_items(&pages);
    assert_eq!(
        pk_set(&got),
        all.iter().copied().filter(|i| i % 3 == 0).collect()
    );
    assert_eq!(got.len(), 20);
    // Projection.
    let out = ok(client
        .scan()
        .table_name(table)
        .projection_expression("tag")
        .filter_expression("pk = :one")
        .expression_attribute_values(":one", n("1"))
        .send()
        .await);
    assert_eq!(out.items(), &[item([("tag", s("y"))])]);
    // A filter's operand error fires even on an empty table.
    let empty = "qs-scan-empty";
    create_table(&client, empty, Sat::S, None).await;
    assert_error(
        client
            .scan()
            .table_name(empty)
            .filter_expression("begins_with(#p, :n)")
            .expression_attribute_names("#p", "pk")
            .expression_attribute_values(":n", n("1"))
            .send()
            .await,
        VE,
        "Invalid FilterExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
    );
    let out = ok(client.scan().table_name(empty).send().await);
    assert_eq!(
        (out.count, out.scanned_count, out.items),
        (0, 0, Some(vec![]))
    );
}

#[tokio::test]
async fn parallel_scan_segments_cover_the_table_once() {
    let client = client();
    let table = "qs-parallel";
    let items = scan_table(&client, table, 60).await;
    let all = pk_set(&items);
    for total in [1, 2, 3, 7, 64, 1000] {
        let mut tasks = tokio::task::JoinSet::new();
        let segments: Vec<i32> = (0..total).collect();
        for chunk in segments.chunks((total as usize).div_ceil(8)) {
            let chunk = chunk.to_vec();
            let client = client.clone();
            tasks.spawn(async move {
                let mut found = Vec::new();
                for segment in chunk {
                    let pages = scan_pages(|| {
                        client
                            .scan()
                            .table_name(table)
                            .segment(segment)
                            .total_segments(total)
                            .limit(4)
                    })
                    .await;
                    found.push((
                        segment,
                        pk_set(&scan_items(&pages)),
                        scan_items(&pages).len(),
                    ));
                }
                found
            });
        }
        let mut union = BTreeSet::new();
        let mut seen = 0;
        let mut non_empty = 0;
        while let Some(found) = tasks.join_next().await {
            for (segment, keys, len) in found.expect("segment task") {
                assert_eq!(
                    keys.len(),
                    len,
                    "duplicates within segment {segment}/{total}"
                );
                assert!(
                    union.is_disjoint(&keys),
                    "segment {segment}/{total} overlaps another"
                );
                seen += len;
                non_empty += usize::from(len > 0);
                union.extend(keys);
            }
        }
        assert_eq!(union, all, "segments of {total} miss items");
        assert_eq!(seen, 60, "segments of {total}");
        if total > 1 {
            assert!(
                non_empty > 1,
                "{total} segments put every item in one segment"
            );
        }
    }
}

#[tokio::test]
async fn segment_errors() {
    let client = client();
    let table = "qs-segment-errors";
    let _ = scan_table(&client, table, 20).await;
    let cases = [
        (
            Some(0),
            None,
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        ),
        (
            Some(1),
            None,
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        ),
        (
            None,
            Some(2),
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        ),
        (
            Some(5),
            Some(5),
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 5 is not less than TotalSegments: 5",
        ),
        (
            Some(-1),
            Some(2),
            "1 validation error detected: Value '-1' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0",
        ),
        (
            Some(0),
            Some(0),
            "1 validation error detected: Value '0' at 'totalSegments' failed to satisfy constraint: Member must have value greater than or equal to 1",
        ),
    ];
    for (segment, total, message) in cases {
        assert_error(
            client
                .scan()
                .table_name(table)
                .set_segment(segment)
                .set_total_segments(total)
                .send()
                .await,
            VE,
            message,
        );
    }
    let err = api_error(
        client
            .scan()
            .table_name(table)
            .segment(0)
            .total_segments(1_000_001)
            .send()
            .await,
    );
    assert!(
        err.code == VE && err.message.contains("totalSegments") && err.message.contains("1000000"),
        "{err:?}"
    );
    // The largest segment count is accepted.
    ok(client
        .scan()
        .table_name(table)
        .segment(999_999)
        .total_segments(1_000_000)
        .send()
        .await);
    // A start key from another segment is refused.
    let pages = scan_pages(|| client.scan().table_name(table).segment(1).total_segments(2)).await;
    let in_one = scan_items(&pages);
    assert!(!in_one.is_empty(), "segment 1 of 2 holds none of 20 items");
    assert_error(
        client
            .scan()
            .table_name(table)
            .segment(0)
            .total_segments(2)
            .exclusive_start_key("pk", in_one[0]["pk"].clone())
            .send()
            .await,
        VE,
        "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct Segment. TotalSegments: 2 Segment: 0",
    );
}

#[tokio::test]
async fn legacy_scan_filter() {
    let client = client();
    let table = "qs-legacy-scan";
    let _ = scan_table(&client, table, 30).await;
    let out = ok(client
        .scan()
        .table_name(table)
        .scan_filter("v", cond(Op::Eq, vec![n("3")]))
        .scan_filter("pk", cond(Op::Lt, vec![n("20")]))
        .attributes_to_get("pk")
        .send()
        .await);
    assert_eq!(pk_set(out.items()), BTreeSet::from([3, 13]));
    assert!(out.items().iter().all(|it| it.len() == 1));
    assert_eq!(out.scanned_count, 30);
    let out = ok(client
        .scan()
        .table_name(table)
        .scan_filter("v", cond(Op::Eq, vec![n("3")]))
        .scan_filter("pk", cond(Op::Lt, vec![n("2")]))
        .conditional_operator(ConditionalOperator::Or)
        .send()
        .await);
    assert_eq!(pk_set(out.items()), BTreeSet::from([0, 1, 3, 13, 23]));
    let out = ok(client
        .scan()
        .table_name(table)
        .scan_filter("pk", cond(Op::In, vec![n("4"), n("5"), n("99")]))
        .send()
        .await);
    assert_eq!(pk_set(out.items()), BTreeSet::from([4, 5]));
    let out = ok(client
        .scan()
        .table_name(table)
        .scan_filter(
            "pad",
            cond(Op::BeginsWith, vec![s("ppppppppppppppppppppppppppp")]),
        )
        .send()
        .await);
    assert_eq!(pk_set(out.items()), BTreeSet::from([27, 28, 29]));
    assert_error(
        client
            .scan()
            .table_name(table)
            .scan_filter("v", cond(Op::Eq, vec![n("3")]))
            .filter_expression("v = :v")
            .expression_attribute_values(":v", n("3"))
            .send()
            .await,
        VE,
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {ScanFilter} Expression parameters: {FilterExpression}",
    );
    assert_error(
        client
            .scan()
            .table_name(table)
            .scan_filter("v", cond(Op::Eq, vec![n("3")]))
            .expression_attribute_values(":v", n("3"))
            .send()
            .await,
        VE,
        "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null",
    );
    assert_error(
        client
            .scan()
            .table_name(table)
            .scan_filter("v", cond(Op::Between, vec![n("3")]))
            .send()
            .await,
        VE,
        "One or more parameter values were invalid: Invalid number of argument(s) for the BETWEEN ComparisonOperator",
    );
}

/// Operators a key condition cannot use (item-api-behaviour.md §1.4: no
/// `Invalid KeyConditionExpression: ` prefix on this family).
#[tokio::test]
async fn key_condition_operators_that_are_not_allowed() {
    let client = client();
    let table = "qs-kce-operators";
    create_table(&client, table, Sat::S, Some(Sat::S)).await;
    let cases = [
        ("pk = :p OR sk = :v", "OR"),
        ("pk = :p AND sk <> :v", "<>"),
        ("pk = :p AND NOT sk = :v", "NOT"),
        ("pk = :p AND sk IN (:v)", "IN"),
        ("pk = :p AND contains(sk, :v)", "contains"),
    ];
    let mut wrong = Vec::new();
    for (condition, operator) in cases {
        let err = api_error(
            client
                .query()
                .table_name(table)
                .key_condition_expression(condition)
                .expression_attribute_values(":p", s("p"))
                .expression_attribute_values(":v", s("a"))
                .send()
                .await,
        );
        let want = format!("Invalid operator used in KeyConditionExpression: {operator}");
        if (err.code.as_str(), err.message.as_str()) != (VE, want.as_str()) {
            wrong.push(format!(
                "{condition:?}:\n  got  {}: {}\n  want {VE}: {want}",
                err.code, err.message
            ));
        }
    }
    let err = api_error(
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p AND attribute_exists(sk)")
            .expression_attribute_values(":p", s("p"))
            .send()
            .await,
    );
    let want = "Invalid operator used in KeyConditionExpression: attribute_exists";
    if err.message != want {
        wrong.push(format!(
            "attribute_exists:\n  got  {}\n  want {want}",
            err.message
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
