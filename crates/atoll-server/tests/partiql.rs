//! PartiQL against the real binary, through `aws-sdk-dynamodb`:
//! ExecuteStatement's SELECT (all attributes or named paths, every kind of
//! WHERE condition, a Query in sort-key order when the partition key is
//! fixed and a Scan otherwise, global and local indexes, paging with
//! `Limit` and `NextToken`), INSERT (exact types, never an upsert), UPDATE
//! (never creates; extra conditions; RETURNING; the old item on a failed
//! condition), DELETE, `?` parameters, error texts and consumed capacity;
//! BatchExecuteStatement (up to 25 statements, each answered on its own);
//! and ExecuteTransaction (up to 100 statements, all committed or none,
//! ClientRequestToken idempotency, read transactions).
//!
//! Expectations come from DynamoDB's documented PartiQL and the texts
//! gathered in `docs/research/transactions.md` §5, not from Atoll's code.
//! Every test makes its own tables on one shared server.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::execute_statement::ExecuteStatementError;
use aws_sdk_dynamodb::operation::execute_statement::ExecuteStatementOutput;
use aws_sdk_dynamodb::operation::execute_statement::builders::ExecuteStatementFluentBuilder;
use aws_sdk_dynamodb::operation::execute_transaction::ExecuteTransactionError;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{
    AttributeValue, BatchStatementErrorCodeEnum as Code, BatchStatementRequest, BillingMode,
    GlobalSecondaryIndex, KeyType, LocalSecondaryIndex, ParameterizedStatement, Projection,
    ProjectionType, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure as OnFailure,
    ScalarAttributeType as Sat,
};
use common::*;

type Item = HashMap<String, AttributeValue>;

const VE: &str = "ValidationException";
const CCF: &str = "ConditionalCheckFailedException";
/// The text of a ConditionalCheckFailedException.
const CONDITION_FAILED: &str = "The conditional request failed";
/// The prefix of every syntax error.
const NOT_WELL_FORMED: &str = "Statement wasn't well formed, can't be processed:";
/// An UPDATE or DELETE whose WHERE does not name the whole key.
const WHOLE_KEY: &str = "Where clause does not contain a mandatory equality on all key attributes";
/// `?`s and `Parameters` differ in number.
const PARAMETER_COUNT: &str = "Number of parameters in request and statement don't match.";
/// How long a global index may take to show a write.
const SETTLED_WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(25);

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// ExecuteStatement of `text`.
fn statement(client: &Client, text: &str) -> ExecuteStatementFluentBuilder {
    client.execute_statement().statement(text)
}

/// ExecuteStatement of `text` with its `?`s bound to `parameters`.
fn with_parameters(
    client: &Client,
    text: &str,
    parameters: &[AttributeValue],
) -> ExecuteStatementFluentBuilder {
    statement(client, text).set_parameters(Some(parameters.to_vec()))
}

/// Runs `text` (which must succeed).
async fn exec(client: &Client, text: &str) -> ExecuteStatementOutput {
    ok(statement(client, text).send().await)
}

/// The items of a SELECT, read consistently, every page walked in order.
async fn select(client: &Client, text: &str) -> Vec<Item> {
    select_paged(client, text, None).await.0
}

/// The items of a SELECT read consistently page by page (each of at most
/// `limit` items evaluated), and how many pages it took.
async fn select_paged(client: &Client, text: &str, limit: Option<i32>) -> (Vec<Item>, usize) {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = ok(statement(client, text)
            .consistent_read(true)
            .set_limit(limit)
            .set_next_token(token.take())
            .send()
            .await);
        pages += 1;
        if let Some(limit) = limit {
            assert!(
                out.items().len() <= limit as usize,
                "a page of {} items with Limit {limit}: {out:?}",
                out.items().len()
            );
        }
        items.extend(out.items().iter().cloned());
        match out.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => return (items, pages),
        }
        assert!(pages < 1000, "{text}: NextToken never ends");
    }
}

/// The string values of attribute `name` of `items`, in order.
fn strings(items: &[Item], name: &str) -> Vec<String> {
    items
        .iter()
        .map(|it| match it.get(name) {
            Some(AttributeValue::S(v)) => v.clone(),
            Some(AttributeValue::N(v)) => v.clone(),
            other => panic!("{name} is {other:?} in {it:?}"),
        })
        .collect()
}

/// The same, sorted (for a Scan, whose order is the table's).
fn sorted(items: &[Item], name: &str) -> Vec<String> {
    let mut found = strings(items, name);
    found.sort();
    found
}

fn key(pk: &str) -> Item {
    item([("pk", s(pk))])
}

/// The item with key `key`, read consistently.
async fn read(client: &Client, table: &str, key: Item) -> Option<Item> {
    ok(client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await)
    .item
}

async fn put_item(client: &Client, table: &str, it: Item) {
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(it))
        .send()
        .await);
}

fn list(values: Vec<AttributeValue>) -> AttributeValue {
    AttributeValue::L(values)
}

fn map<const N: usize>(pairs: [(&str, AttributeValue); N]) -> AttributeValue {
    AttributeValue::M(item(pairs))
}

/// The error of an ExecuteStatement call as the SDK models it.
#[track_caller]
fn statement_error<T: Debug>(
    result: Result<T, SdkError<ExecuteStatementError, HttpResponse>>,
) -> ExecuteStatementError {
    match result {
        Ok(out) => panic!("expected an error, got success: {out:?}"),
        Err(e) => e.into_service_error(),
    }
}

/// The TransactionCanceledException of an ExecuteTransaction call.
#[track_caller]
fn transaction_canceled<T: Debug>(
    result: Result<T, SdkError<ExecuteTransactionError, HttpResponse>>,
) -> TransactionCanceledException {
    match result {
        Ok(out) => panic!("expected TransactionCanceledException, got success: {out:?}"),
        Err(e) => match e.into_service_error() {
            ExecuteTransactionError::TransactionCanceledException(e) => e,
            other => panic!("expected TransactionCanceledException, got {other:?}"),
        },
    }
}

/// The message names `expected` in order, and so do the reasons' codes.
#[track_caller]
fn assert_reasons(e: &TransactionCanceledException, expected: &[&str]) {
    let message = format!(
        "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
        expected.join(", ")
    );
    assert_eq!(e.message(), Some(message.as_str()), "{e:?}");
    let codes: Vec<&str> = e
        .cancellation_reasons()
        .iter()
        .map(|reason| reason.code().unwrap_or("<no code>"))
        .collect();
    assert_eq!(codes, expected, "{e:?}");
}

fn batch_statement(text: &str) -> BatchStatementRequest {
    BatchStatementRequest::builder()
        .statement(text)
        .consistent_read(true)
        .build()
        .unwrap()
}

fn transact_statement(text: &str) -> ParameterizedStatement {
    ParameterizedStatement::builder()
        .statement(text)
        .build()
        .unwrap()
}

/// A table with `pk` (S) as hash key, `sk` (S) as range key and a local
/// index `by_lk` on (`pk`, `lk` (S)); or, with `gsi`, a table with `pk`
/// only and a global index `by_g` on `g` (S).
async fn create_indexed_table(client: &Client, name: &str, gsi: bool) {
    let all = || {
        Projection::builder()
            .projection_type(ProjectionType::All)
            .build()
    };
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S));
    req = match gsi {
        true => req
            .attribute_definitions(attr_def("g", Sat::S))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("by_g")
                    .key_schema(key_element("g", KeyType::Hash))
                    .projection(all())
                    .build()
                    .unwrap(),
            ),
        false => req
            .key_schema(key_element("sk", KeyType::Range))
            .attribute_definitions(attr_def("sk", Sat::S))
            .attribute_definitions(attr_def("lk", Sat::S))
            .local_secondary_indexes(
                LocalSecondaryIndex::builder()
                    .index_name("by_lk")
                    .key_schema(key_element("pk", KeyType::Hash))
                    .key_schema(key_element("lk", KeyType::Range))
                    .projection(all())
                    .build()
                    .unwrap(),
            ),
    };
    ok(req.send().await);
    wait_active(client, name).await;
}

// ---------------------------------------------------------------------------
// SELECT
// ---------------------------------------------------------------------------

/// `SELECT *` answers whole items; a projection of top-level and nested
/// paths answers each under the path's last name (`m.nested` as `nested`,
/// `l[1]` as `l`) and leaves every other attribute out; no match is an
/// empty `Items`.
#[tokio::test]
async fn select_returns_whole_items_or_the_projected_paths() {
    let client = shared_server().client();
    let t = "pq-select";
    create_table(&client, t, Sat::S, None).await;
    let full = item([
        ("pk", s("one")),
        ("a", s("alpha")),
        ("b", n("2")),
        ("m", map([("nested", s("deep")), ("other", s("not asked"))])),
        ("l", list(vec![s("zero"), s("first"), s("second")])),
    ]);
    put_item(&client, t, full.clone()).await;
    put_item(&client, t, item([("pk", s("two")), ("a", s("beta"))])).await;

    let star = select(&client, &format!("SELECT * FROM \"{t}\" WHERE pk = 'one'")).await;
    assert_eq!(star, vec![full]);

    let text = format!("SELECT a, m.nested, l[1] FROM \"{t}\" WHERE pk = 'one'");
    let projected = item([("a", s("alpha")), ("nested", s("deep")), ("l", s("first"))]);
    assert_eq!(select(&client, &text).await, vec![projected]);

    let text = format!("SELECT pk, m FROM \"{t}\" WHERE pk = 'one'");
    let out = select(&client, &text).await;
    assert_eq!(out.len(), 1, "{out:?}");
    let mut names: Vec<&str> = out[0].keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["m", "pk"]);

    // Quoted names are names too.
    let text = format!("SELECT \"a\" FROM \"{t}\" WHERE \"pk\" = 'two'");
    assert_eq!(select(&client, &text).await, vec![item([("a", s("beta"))])]);

    let text = format!("SELECT * FROM \"{t}\" WHERE pk = 'nobody'");
    assert_eq!(exec(&client, &text).await.items(), &[] as &[Item]);

    // Without WHERE: every item.
    let all = select(&client, &format!("SELECT * FROM \"{t}\"")).await;
    assert_eq!(sorted(&all, "pk"), ["one", "two"]);
}

/// Every kind of WHERE condition on a Scan (no partition key named):
/// comparisons, IN, BETWEEN, AND/OR/NOT, begins_with, contains,
/// attribute_exists/attribute_not_exists, IS [NOT] MISSING and size().
#[tokio::test]
async fn where_conditions_filter_what_a_scan_reads() {
    let client = shared_server().client();
    let t = "pq-where";
    create_table(&client, t, Sat::S, None).await;
    let names = ["ab", "abc", "bcd", "abcde", "xyz", "zz-top"];
    for (i, name) in names.iter().enumerate() {
        let i = i + 1;
        let mut it = item([
            ("pk", s(&format!("w{i}"))),
            ("n", n(&i.to_string())),
            ("name", s(name)),
        ]);
        if i % 2 == 0 {
            it.insert("opt".into(), s("here"));
        }
        let tags = match i {
            1 | 3 => vec!["red".to_string(), "blue".to_string()],
            _ => vec!["green".to_string()],
        };
        it.insert("tags".into(), AttributeValue::Ss(tags));
        put_item(&client, t, it).await;
    }

    let cases: &[(&str, &[&str])] = &[
        ("n = 3", &["w3"]),
        ("n <> 3", &["w1", "w2", "w4", "w5", "w6"]),
        ("n != 3", &["w1", "w2", "w4", "w5", "w6"]),
        ("n < 3", &["w1", "w2"]),
        ("n <= 3", &["w1", "w2", "w3"]),
        ("n > 4", &["w5", "w6"]),
        ("n >= 5", &["w5", "w6"]),
        ("n IN (1, 4, 6)", &["w1", "w4", "w6"]),
        ("n IN [2, 3]", &["w2", "w3"]),
        ("name IN ('xyz', 'nothing')", &["w5"]),
        ("n BETWEEN 2 AND 4", &["w2", "w3", "w4"]),
        ("n > 1 AND n < 4", &["w2", "w3"]),
        ("n = 1 OR n = 6", &["w1", "w6"]),
        ("NOT (n < 5)", &["w5", "w6"]),
        ("n > 1 AND (n = 2 OR name = 'xyz')", &["w2", "w5"]),
        ("begins_with(name, 'ab')", &["w1", "w2", "w4"]),
        ("contains(name, 'cd')", &["w3", "w4"]),
        ("contains(tags, 'red')", &["w1", "w3"]),
        ("NOT contains(tags, 'red')", &["w2", "w4", "w5", "w6"]),
        ("attribute_exists(opt)", &["w2", "w4", "w6"]),
        ("attribute_not_exists(opt)", &["w1", "w3", "w5"]),
        ("opt IS MISSING", &["w1", "w3", "w5"]),
        ("opt IS NOT MISSING", &["w2", "w4", "w6"]),
        ("size(name) > 3", &["w4", "w6"]),
        ("size(name) <= 2", &["w1"]),
        ("size(tags) = 2", &["w1", "w3"]),
        ("name = 'nothing'", &[]),
    ];
    for (condition, expected) in cases {
        let text = format!("SELECT * FROM \"{t}\" WHERE {condition}");
        let found = select(&client, &text).await;
        assert_eq!(sorted(&found, "pk"), *expected, "WHERE {condition}");
    }
}

/// With the partition key fixed (and optionally a sort-key condition) a
/// SELECT is a Query: items come in sort-key order, whichever order they
/// were written in, and other conditions filter them. Without the
/// partition key it scans every partition.
#[tokio::test]
async fn a_fixed_partition_key_reads_in_sort_key_order() {
    let client = shared_server().client();
    let t = "pq-query";
    create_table(&client, t, Sat::S, Some(Sat::S)).await;
    for (sk, v) in [("d", "4"), ("b", "2"), ("e", "5"), ("a", "1"), ("c", "3")] {
        let row = item([("pk", s("p")), ("sk", s(sk)), ("v", n(v))]);
        put_item(&client, t, row).await;
    }
    for pk in ["q", "r"] {
        put_item(
            &client,
            t,
            item([("pk", s(pk)), ("sk", s("b")), ("v", n("9"))]),
        )
        .await;
    }

    let cases: &[(&str, &[&str])] = &[
        ("pk = 'p'", &["a", "b", "c", "d", "e"]),
        ("'p' = pk", &["a", "b", "c", "d", "e"]),
        ("pk = 'p' AND sk > 'b'", &["c", "d", "e"]),
        ("pk = 'p' AND sk >= 'b'", &["b", "c", "d", "e"]),
        ("pk = 'p' AND sk < 'c'", &["a", "b"]),
        ("pk = 'p' AND sk <= 'c'", &["a", "b", "c"]),
        ("pk = 'p' AND sk = 'd'", &["d"]),
        ("pk = 'p' AND sk BETWEEN 'b' AND 'd'", &["b", "c", "d"]),
        ("pk = 'p' AND begins_with(sk, 'c')", &["c"]),
        ("pk = 'p' AND v > 2", &["c", "d", "e"]),
        ("pk = 'p' AND sk > 'a' AND v < 5", &["b", "c", "d"]),
        ("pk = 'p' AND sk <> 'c'", &["a", "b", "d", "e"]),
        ("pk = 'p' AND sk > 'a' AND sk < 'e'", &["b", "c", "d"]),
        ("pk = 'p' AND 'c' <= sk", &["c", "d", "e"]),
        ("pk = 'nobody'", &[]),
    ];
    for (condition, expected) in cases {
        let text = format!("SELECT * FROM \"{t}\" WHERE {condition}");
        let found = select(&client, &text).await;
        assert_eq!(strings(&found, "sk"), *expected, "WHERE {condition}");
        assert!(
            found.iter().all(|it| it["pk"] == s("p")),
            "WHERE {condition}: {found:?}"
        );
    }

    // No partition key: a Scan over every partition.
    let text = format!("SELECT * FROM \"{t}\" WHERE sk = 'b'");
    assert_eq!(sorted(&select(&client, &text).await, "pk"), ["p", "q", "r"]);
    let text = format!("SELECT * FROM \"{t}\" WHERE pk IN ('q', 'r')");
    assert_eq!(sorted(&select(&client, &text).await, "pk"), ["q", "r"]);
    let text = format!("SELECT * FROM \"{t}\" WHERE pk = 'q' OR v = 1");
    let found = select(&client, &text).await;
    assert_eq!(sorted(&found, "sk"), ["a", "b"]);
}

/// `ORDER BY` the sort key (DynamoDB's SELECT grammar:
/// `[ORDER BY key [DESC|ASC]]`) reads a partition backwards with DESC.
#[tokio::test]
async fn order_by_the_sort_key_descending_reads_backwards() {
    let client = shared_server().client();
    let t = "pq-order-by";
    create_table(&client, t, Sat::S, Some(Sat::S)).await;
    for sk in ["a", "b", "c"] {
        put_item(&client, t, item([("pk", s("p")), ("sk", s(sk))])).await;
    }
    let text = format!("SELECT * FROM \"{t}\" WHERE pk = 'p' ORDER BY sk DESC");
    assert_eq!(
        strings(&select(&client, &text).await, "sk"),
        ["c", "b", "a"]
    );
    let text = format!("SELECT * FROM \"{t}\" WHERE pk = 'p' ORDER BY sk ASC");
    assert_eq!(
        strings(&select(&client, &text).await, "sk"),
        ["a", "b", "c"]
    );
}

/// `"table"."index"` reads a global index (eventually: polled) by its
/// partition key, and a local index in the index's sort-key order.
#[tokio::test]
async fn select_reads_global_and_local_indexes() {
    let client = shared_server().client();
    let global = "pq-gsi";
    create_indexed_table(&client, global, true).await;
    for (pk, g) in [("a", "x"), ("b", "y"), ("c", "x")] {
        let text = format!("INSERT INTO \"{global}\" VALUE {{'pk': '{pk}', 'g': '{g}'}}");
        exec(&client, &text).await;
    }
    let text = format!("SELECT * FROM \"{global}\".\"by_g\" WHERE g = 'x'");
    let deadline = Instant::now() + SETTLED_WITHIN;
    loop {
        let out = exec(&client, &text).await;
        let found = sorted(out.items(), "pk");
        if found == ["a", "c"] {
            assert!(out.items().iter().all(|it| it["g"] == s("x")), "{out:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the global index still answers {found:?}"
        );
        tokio::time::sleep(POLL).await;
    }

    let local = "pq-lsi";
    create_indexed_table(&client, local, false).await;
    // The sort keys' order and the index keys' order are opposite.
    for (sk, lk) in [("1", "c"), ("2", "b"), ("3", "a"), ("4", "d")] {
        let row = item([("pk", s("p")), ("sk", s(sk)), ("lk", s(lk))]);
        put_item(&client, local, row).await;
    }
    let text = format!("SELECT * FROM \"{local}\".\"by_lk\" WHERE pk = 'p'");
    let found = select(&client, &text).await;
    assert_eq!(strings(&found, "lk"), ["a", "b", "c", "d"]);
    assert_eq!(strings(&found, "sk"), ["3", "2", "1", "4"]);
    let text = format!("SELECT sk FROM \"{local}\".\"by_lk\" WHERE pk = 'p' AND lk > 'b'");
    assert_eq!(
        select(&client, &text).await,
        vec![item([("sk", s("1"))]), item([("sk", s("4"))])]
    );
}

// ---------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------

/// `Limit` caps the items read per page (before the WHERE filters them, so
/// a page may hold fewer matches), `NextToken` continues where a page
/// stopped, and walking the tokens to the end yields every matching item
/// exactly once, in sort-key order on a Query.
#[tokio::test]
async fn limit_and_next_token_page_through_every_match_once() {
    let client = shared_server().client();
    let t = "pq-paging";
    create_table(&client, t, Sat::S, Some(Sat::N)).await;
    for i in 0..20 {
        let pk = if i < 12 { "p" } else { "q" };
        let row = item([
            ("pk", s(pk)),
            ("sk", n(&i.to_string())),
            ("v", n(&(i % 4).to_string())),
        ]);
        put_item(&client, t, row).await;
    }

    // A Scan of everything: the first page holds exactly Limit items.
    let text = format!("SELECT * FROM \"{t}\"");
    let first = ok(statement(&client, &text)
        .consistent_read(true)
        .limit(7)
        .send()
        .await);
    assert_eq!(first.items().len(), 7, "{first:?}");
    assert!(first.next_token().is_some(), "{first:?}");
    let (all, pages) = select_paged(&client, &text, Some(7)).await;
    let mut seen: Vec<i64> = strings(&all, "sk")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<i64>>());
    assert!(pages >= 3, "{pages} pages of 7 for 20 items");

    // A filtered Scan: Limit counts the items read, not the matches, so
    // ten matches among twenty items take at least four pages of five.
    let text = format!("SELECT * FROM \"{t}\" WHERE v >= 2");
    let (matched, pages) = select_paged(&client, &text, Some(5)).await;
    let mut seen: Vec<i64> = strings(&matched, "sk")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, [2, 3, 6, 7, 10, 11, 14, 15, 18, 19]);
    assert!(pages >= 4, "{pages} pages of 5 for 20 items read");

    // A Query, paged two at a time: still in sort-key order, once each.
    let text = format!("SELECT * FROM \"{t}\" WHERE pk = 'p'");
    let (rows, pages) = select_paged(&client, &text, Some(2)).await;
    let expected: Vec<String> = (0..12).map(|i| i.to_string()).collect();
    assert_eq!(strings(&rows, "sk"), expected);
    assert!(pages >= 6, "{pages} pages of 2 for 12 items");
    let text = format!("SELECT * FROM \"{t}\" WHERE pk = 'p' AND sk > 3 AND v = 0");
    let (rows, _) = select_paged(&client, &text, Some(3)).await;
    assert_eq!(strings(&rows, "sk"), ["4", "8"]);
}

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

/// `?`s take `Parameters` in order in INSERT, SELECT, UPDATE and DELETE;
/// a count that differs is refused with DynamoDB's text, and an empty
/// `Parameters` list breaks its length constraint.
#[tokio::test]
async fn question_marks_take_the_parameters_in_order() {
    let client = shared_server().client();
    let t = "pq-params";
    create_table(&client, t, Sat::S, None).await;

    let insert = format!("INSERT INTO \"{t}\" VALUE {{'pk': ?, 'n': ?, 'tags': ?}}");
    let tags = AttributeValue::Ss(vec!["x".into()]);
    ok(
        with_parameters(&client, &insert, &[s("k1"), n("10"), tags.clone()])
            .send()
            .await,
    );
    let expected = item([("pk", s("k1")), ("n", n("10")), ("tags", tags.clone())]);
    assert_eq!(read(&client, t, key("k1")).await, Some(expected.clone()));

    let text = format!("SELECT * FROM \"{t}\" WHERE pk = ? AND n > ?");
    let out = ok(with_parameters(&client, &text, &[s("k1"), n("5")])
        .consistent_read(true)
        .send()
        .await);
    assert_eq!(out.items(), &[expected]);
    let out = ok(with_parameters(&client, &text, &[s("k1"), n("10")])
        .consistent_read(true)
        .send()
        .await);
    assert!(out.items().is_empty(), "{out:?}");

    let update = format!("UPDATE \"{t}\" SET n = ? WHERE pk = ?");
    ok(with_parameters(&client, &update, &[n("11"), s("k1")])
        .send()
        .await);
    let expected = item([("pk", s("k1")), ("n", n("11")), ("tags", tags)]);
    assert_eq!(read(&client, t, key("k1")).await, Some(expected));

    let delete = format!("DELETE FROM \"{t}\" WHERE pk = ?");
    ok(with_parameters(&client, &delete, &[s("k1")]).send().await);
    assert_eq!(read(&client, t, key("k1")).await, None);

    // Too few, too many, none at all for a `?`.
    let result = with_parameters(&client, &insert, &[s("k2"), n("1")])
        .send()
        .await;
    assert_error(result, VE, PARAMETER_COUNT);
    let result = with_parameters(&client, &delete, &[s("k2"), s("k3")])
        .send()
        .await;
    assert_error(result, VE, PARAMETER_COUNT);
    let result = statement(&client, &delete).send().await;
    assert_error(result, VE, PARAMETER_COUNT);
    assert_eq!(read(&client, t, key("k2")).await, None);

    let result = with_parameters(&client, &format!("SELECT * FROM \"{t}\""), &[])
        .send()
        .await;
    let err = api_error(result);
    assert_eq!(err.code, VE);
    assert!(
        err.message.contains("'parameters'")
            && err
                .message
                .contains("Member must have length greater than or equal to 1"),
        "{}",
        err.message
    );
    assert_eq!(
        err.message,
        "1 validation error detected: Value '[]' at 'parameters' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
}

// ---------------------------------------------------------------------------
// INSERT
// ---------------------------------------------------------------------------

/// INSERT writes every literal with its exact type (number, bool, null,
/// list, map, string and number sets); an INSERT of a key that exists is
/// DuplicateItemException and leaves the item alone (never an upsert); an
/// INSERT without the key is a ValidationException that writes nothing.
#[tokio::test]
async fn insert_writes_exact_types_and_never_replaces() {
    let client = shared_server().client();
    let t = "pq-insert";
    create_table(&client, t, Sat::S, None).await;
    let text = format!(
        "INSERT INTO \"{t}\" VALUE {{'pk': 'typed', 'n': 1.5, 'neg': -7, 'yes': true, \
         'no': false, 'nothing': null, 'l': [1, 'two', [3]], \
         'm': {{'inner': 'x', 'deep': {{'k': 2}}}}, 'ss': <<'a', 'b'>>, 'ns': <<1, 2>>}}"
    );
    let out = exec(&client, &text).await;
    assert!(out.items().is_empty(), "{out:?}");
    assert!(out.next_token().is_none(), "{out:?}");

    let mut got = read(&client, t, key("typed")).await.expect("inserted item");
    for set in ["ss", "ns"] {
        match got.get_mut(set) {
            Some(AttributeValue::Ss(v) | AttributeValue::Ns(v)) => v.sort(),
            other => panic!("{set} is {other:?}"),
        }
    }
    let expected = item([
        ("pk", s("typed")),
        ("n", n("1.5")),
        ("neg", n("-7")),
        ("yes", AttributeValue::Bool(true)),
        ("no", AttributeValue::Bool(false)),
        ("nothing", AttributeValue::Null(true)),
        ("l", list(vec![n("1"), s("two"), list(vec![n("3")])])),
        (
            "m",
            map([("inner", s("x")), ("deep", map([("k", n("2"))]))]),
        ),
        ("ss", AttributeValue::Ss(vec!["a".into(), "b".into()])),
        ("ns", AttributeValue::Ns(vec!["1".into(), "2".into()])),
    ]);
    assert_eq!(got, expected);

    let clash = format!("INSERT INTO \"{t}\" VALUE {{'pk': 'typed', 'n': 99}}");
    let result = statement(&client, &clash).send().await;
    let err = api_error(result);
    assert_eq!(err.code, "DuplicateItemException", "{err:?}");
    assert_eq!(err.message, "Duplicate primary key exists in table");
    let result = statement(&client, &clash).send().await;
    assert!(
        statement_error(result).is_duplicate_item_exception(),
        "the SDK does not see DuplicateItemException"
    );
    assert_eq!(read(&client, t, key("typed")).await.unwrap()["n"], n("1.5"));

    let keyless = format!("INSERT INTO \"{t}\" VALUE {{'other': 'x'}}");
    let err = api_error(statement(&client, &keyless).send().await);
    assert_eq!(err.code, VE, "{err:?}");
    let all = select(&client, &format!("SELECT * FROM \"{t}\"")).await;
    assert_eq!(sorted(&all, "pk"), ["typed"]);
}

// ---------------------------------------------------------------------------
// UPDATE
// ---------------------------------------------------------------------------

/// UPDATE's SET (a value, `n + 1`, list_append, several clauses) and
/// REMOVE change the item its WHERE names (the key on either side of `=`)
/// and answer no items unless RETURNING asks for the item (`ALL NEW`,
/// `ALL OLD`) or the changed attributes (`MODIFIED OLD`, `MODIFIED NEW`).
#[tokio::test]
async fn update_sets_and_removes_attributes() {
    let client = shared_server().client();
    let t = "pq-update";
    create_table(&client, t, Sat::S, None).await;
    let start = item([
        ("pk", s("k")),
        ("a", s("old")),
        ("n", n("1")),
        ("l", list(vec![n("1"), n("2")])),
        ("gone", s("soon")),
    ]);
    put_item(&client, t, start).await;

    let out = exec(
        &client,
        &format!("UPDATE \"{t}\" SET a = 'x' WHERE pk = 'k'"),
    )
    .await;
    assert!(out.items().is_empty(), "{out:?}");
    exec(
        &client,
        &format!("UPDATE \"{t}\" SET n = n + 1 WHERE 'k' = pk"),
    )
    .await;
    exec(
        &client,
        &format!("UPDATE \"{t}\" SET l = list_append(l, [3]) WHERE pk = 'k'"),
    )
    .await;
    exec(
        &client,
        &format!("UPDATE \"{t}\" REMOVE gone WHERE pk = 'k'"),
    )
    .await;
    exec(
        &client,
        &format!("UPDATE \"{t}\" SET b = 'one', c = 2 SET d = true WHERE pk = 'k'"),
    )
    .await;
    let expected = item([
        ("pk", s("k")),
        ("a", s("x")),
        ("n", n("2")),
        ("l", list(vec![n("1"), n("2"), n("3")])),
        ("b", s("one")),
        ("c", n("2")),
        ("d", AttributeValue::Bool(true)),
    ]);
    assert_eq!(read(&client, t, key("k")).await, Some(expected.clone()));

    let text = format!("UPDATE \"{t}\" SET n = n - 1 WHERE pk = 'k' RETURNING ALL NEW *");
    let out = exec(&client, &text).await;
    let mut new = expected;
    new.insert("n".into(), n("1"));
    assert_eq!(out.items(), &[new.clone()]);
    assert_eq!(read(&client, t, key("k")).await, Some(new.clone()));

    // The other RETURNING forms: the changed attributes before or after,
    // or the whole item before.
    let text = format!("UPDATE \"{t}\" SET a = 'y', n = 7 WHERE pk = 'k' RETURNING MODIFIED OLD *");
    let out = exec(&client, &text).await;
    assert_eq!(out.items(), &[item([("a", s("x")), ("n", n("1"))])]);
    let text = format!("UPDATE \"{t}\" SET a = 'z' WHERE pk = 'k' RETURNING MODIFIED NEW *");
    let out = exec(&client, &text).await;
    assert_eq!(out.items(), &[item([("a", s("z"))])]);
    let text = format!("UPDATE \"{t}\" REMOVE d WHERE pk = 'k' RETURNING ALL OLD *");
    let out = exec(&client, &text).await;
    new.insert("a".into(), s("z"));
    new.insert("n".into(), n("7"));
    assert_eq!(out.items(), &[new.clone()]);
    new.remove("d");
    assert_eq!(read(&client, t, key("k")).await, Some(new));
}

/// UPDATE never creates an item and insists on the whole key: a WHERE
/// without every key attribute is refused; an UPDATE of a missing item,
/// or whose extra condition fails, is ConditionalCheckFailedException and
/// changes nothing, with the old item on the error when
/// ReturnValuesOnConditionCheckFailure is ALL_OLD.
#[tokio::test]
async fn update_needs_the_whole_key_and_an_existing_item() {
    let client = shared_server().client();
    let t = "pq-update-checks";
    create_table(&client, t, Sat::S, Some(Sat::S)).await;
    let row = item([("pk", s("p")), ("sk", s("s")), ("a", s("kept"))]);
    put_item(&client, t, row.clone()).await;
    let row_key = item([("pk", s("p")), ("sk", s("s"))]);

    for condition in ["pk = 'p'", "sk = 's'", "a = 'kept'", "pk = 'p' OR sk = 's'"] {
        let text = format!("UPDATE \"{t}\" SET a = 'changed' WHERE {condition}");
        assert_error(statement(&client, &text).send().await, VE, WHOLE_KEY);
    }

    let text = format!("UPDATE \"{t}\" SET a = 'new' WHERE pk = 'p' AND sk = 'missing'");
    assert_error(
        statement(&client, &text).send().await,
        CCF,
        CONDITION_FAILED,
    );
    let missing = item([("pk", s("p")), ("sk", s("missing"))]);
    assert_eq!(read(&client, t, missing).await, None);

    let text =
        format!("UPDATE \"{t}\" SET a = 'changed' WHERE pk = 'p' AND sk = 's' AND a = 'other'");
    assert_error(
        statement(&client, &text).send().await,
        CCF,
        CONDITION_FAILED,
    );
    assert_eq!(read(&client, t, row_key.clone()).await, Some(row.clone()));

    // The same with ALL_OLD: the error carries the item as it is.
    let result = statement(&client, &text)
        .return_values_on_condition_check_failure(OnFailure::AllOld)
        .send()
        .await;
    match statement_error(result) {
        ExecuteStatementError::ConditionalCheckFailedException(e) => {
            assert_eq!(e.item(), Some(&row), "{e:?}");
        }
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }
    assert_eq!(read(&client, t, row_key.clone()).await, Some(row));

    // A condition that holds lets the update through.
    let text =
        format!("UPDATE \"{t}\" SET a = 'changed' WHERE pk = 'p' AND sk = 's' AND a = 'kept'");
    exec(&client, &text).await;
    let changed = item([("pk", s("p")), ("sk", s("s")), ("a", s("changed"))]);
    assert_eq!(read(&client, t, row_key).await, Some(changed));
}

// ---------------------------------------------------------------------------
// DELETE
// ---------------------------------------------------------------------------

/// DELETE removes the item its key names; an extra condition that fails
/// is ConditionalCheckFailedException and keeps the item; `RETURNING ALL
/// OLD *` answers the deleted item.
#[tokio::test]
async fn delete_removes_the_named_item() {
    let client = shared_server().client();
    let t = "pq-delete";
    create_table(&client, t, Sat::S, None).await;
    for pk in ["a", "b", "c"] {
        put_item(&client, t, item([("pk", s(pk)), ("v", s(pk))])).await;
    }

    let out = exec(&client, &format!("DELETE FROM \"{t}\" WHERE pk = 'a'")).await;
    assert!(out.items().is_empty(), "{out:?}");
    assert_eq!(read(&client, t, key("a")).await, None);

    let text = format!("DELETE FROM \"{t}\" WHERE pk = 'b' AND v = 'not b'");
    assert_error(
        statement(&client, &text).send().await,
        CCF,
        CONDITION_FAILED,
    );
    let b = item([("pk", s("b")), ("v", s("b"))]);
    assert_eq!(read(&client, t, key("b")).await, Some(b));

    let text = format!("DELETE FROM \"{t}\" WHERE pk = 'c' AND v = 'c' RETURNING ALL OLD *");
    let out = exec(&client, &text).await;
    assert_eq!(out.items(), &[item([("pk", s("c")), ("v", s("c"))])]);
    assert_eq!(read(&client, t, key("c")).await, None);

    let text = format!("DELETE FROM \"{t}\" WHERE v = 'b'");
    assert_error(statement(&client, &text).send().await, VE, WHOLE_KEY);
}

// ---------------------------------------------------------------------------
// Errors and capacity
// ---------------------------------------------------------------------------

/// Misspelt keywords and other malformed statements are ValidationException
/// with DynamoDB's prefix; a table that does not exist is
/// ResourceNotFoundException for a read and a write.
#[tokio::test]
async fn malformed_statements_and_unknown_tables_are_refused() {
    let client = shared_server().client();
    let t = "pq-errors";
    create_table(&client, t, Sat::S, None).await;
    for text in [
        format!("SELECTT * FROMM \"{t}\""),
        format!("SELECT * FROMM \"{t}\""),
        format!("SELECT * FROM \"{t}\" WHERE"),
        format!("INSERT INTO \"{t}\" VALUES {{'pk': 'x'}} extra"),
        format!("UPDATE \"{t}\" WHERE pk = 'x'"),
        format!("DELET FROM \"{t}\" WHERE pk = 'x'"),
    ] {
        let err = api_error(statement(&client, &text).send().await);
        assert_eq!(err.code, VE, "{text}: {err:?}");
        assert!(
            err.message.starts_with(NOT_WELL_FORMED),
            "{text}: {}",
            err.message
        );
    }

    let result = statement(&client, "SELECT * FROM \"pq-no-such-table\"")
        .send()
        .await;
    assert!(statement_error(result).is_resource_not_found_exception());
    let text = "INSERT INTO \"pq-no-such-table\" VALUE {'pk': 'x'}";
    let err = api_error(statement(&client, text).send().await);
    assert_eq!(err.code, "ResourceNotFoundException", "{err:?}");
}

/// `ReturnConsumedCapacity: TOTAL` answers the capacity a SELECT and an
/// INSERT consumed, named by table; without it there is none.
#[tokio::test]
async fn consumed_capacity_is_reported_when_asked() {
    let client = shared_server().client();
    let t = "pq-capacity";
    create_table(&client, t, Sat::S, None).await;

    let text = format!("INSERT INTO \"{t}\" VALUE {{'pk': 'k', 'v': 'small'}}");
    let out = ok(statement(&client, &text)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await);
    let consumed = out.consumed_capacity().expect("ConsumedCapacity");
    assert_eq!(consumed.table_name(), Some(t));
    assert_eq!(consumed.capacity_units(), Some(1.0), "{consumed:?}");

    let text = format!("SELECT * FROM \"{t}\" WHERE pk = 'k'");
    let out = ok(statement(&client, &text)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await);
    assert_eq!(out.items().len(), 1, "{out:?}");
    let consumed = out.consumed_capacity().expect("ConsumedCapacity");
    assert_eq!(consumed.table_name(), Some(t));
    assert!(
        consumed.capacity_units().is_some_and(|units| units > 0.0),
        "{consumed:?}"
    );

    let out = exec(&client, &text).await;
    assert_eq!(out.consumed_capacity(), None);
}

// ---------------------------------------------------------------------------
// BatchExecuteStatement
// ---------------------------------------------------------------------------

/// A batch of SELECTs of whole keys answers one response per statement in
/// order, with the table's name and the item (none when it is missing); a
/// table that does not exist fails only its own statement.
#[tokio::test]
async fn a_batch_of_reads_answers_each_statement() {
    let client = shared_server().client();
    let (t, c) = ("pq-batch-read", "pq-batch-read-composite");
    create_table(&client, t, Sat::S, None).await;
    create_table(&client, c, Sat::S, Some(Sat::S)).await;
    let a = item([("pk", s("a")), ("v", n("1"))]);
    put_item(&client, t, a.clone()).await;
    let row = item([("pk", s("p")), ("sk", s("s")), ("v", n("2"))]);
    put_item(&client, c, row.clone()).await;

    let out = ok(client
        .batch_execute_statement()
        .statements(batch_statement(&format!(
            "SELECT * FROM \"{t}\" WHERE pk = 'a'"
        )))
        .statements(batch_statement(&format!(
            "SELECT * FROM \"{c}\" WHERE pk = 'p' AND sk = 's'"
        )))
        .statements(batch_statement(&format!(
            "SELECT * FROM \"{t}\" WHERE pk = 'missing'"
        )))
        .statements(batch_statement(
            "SELECT * FROM \"pq-no-such-table\" WHERE pk = 'a'",
        ))
        .statements(batch_statement(&format!(
            "SELECT v FROM \"{t}\" WHERE pk = 'a'"
        )))
        .send()
        .await);
    let responses = out.responses();
    assert_eq!(responses.len(), 5, "{out:?}");
    assert_eq!(responses[0].table_name(), Some(t));
    assert_eq!(responses[0].item(), Some(&a));
    assert_eq!(responses[0].error(), None);
    assert_eq!(responses[1].table_name(), Some(c));
    assert_eq!(responses[1].item(), Some(&row));
    assert_eq!(responses[2].table_name(), Some(t));
    assert_eq!(responses[2].item(), None, "{:?}", responses[2]);
    assert_eq!(responses[2].error(), None);
    let error = responses[3]
        .error()
        .expect("an error for the unknown table");
    assert_eq!(error.code(), Some(&Code::ResourceNotFound), "{error:?}");
    assert_eq!(responses[3].item(), None);
    assert_eq!(responses[4].item(), Some(&item([("v", n("1"))])));
}

/// A batch of writes applies each statement on its own: successes answer
/// the table's name, failures an error code (`DuplicateItem`,
/// `ConditionalCheckFailed`, `ValidationError`, `ResourceNotFound`) while
/// the others still apply.
#[tokio::test]
async fn a_batch_of_writes_fails_statements_one_by_one() {
    let client = shared_server().client();
    let t = "pq-batch-write";
    create_table(&client, t, Sat::S, None).await;
    put_item(&client, t, item([("pk", s("old")), ("n", n("1"))])).await;

    let texts = [
        format!("INSERT INTO \"{t}\" VALUE {{'pk': 'new', 'n': 1}}"),
        format!("UPDATE \"{t}\" SET n = n + 1 WHERE pk = 'old'"),
        format!("INSERT INTO \"{t}\" VALUE {{'pk': 'old', 'n': 100}}"),
        format!("UPDATE \"{t}\" SET n = 100 WHERE pk = 'old' AND n = 100"),
        format!("UPDATE \"{t}\" SET n = 100 WHERE n = 2"),
        "INSERT INTO \"pq-no-such-table\" VALUE {'pk': 'x'}".to_string(),
        format!("DELETE FROM \"{t}\" WHERE pk = 'new' AND n = 99"),
        format!("UPDATE \"{t}\" SET n = 100 WHERE pk = 'nobody'"),
        format!("INSERT INTO \"{t}\" VALUE {{'pk': 'third'}}"),
    ];
    let mut statements: Vec<BatchStatementRequest> =
        texts.iter().map(|text| batch_statement(text)).collect();
    // With ALL_OLD a failed condition's error carries the item as it is.
    statements.push(
        BatchStatementRequest::builder()
            .statement(format!(
                "UPDATE \"{t}\" SET n = 100 WHERE pk = 'old' AND n = 42"
            ))
            .return_values_on_condition_check_failure(OnFailure::AllOld)
            .build()
            .unwrap(),
    );
    let out = ok(client
        .batch_execute_statement()
        .set_statements(Some(statements))
        .send()
        .await);
    let responses = out.responses();
    assert_eq!(responses.len(), texts.len() + 1, "{out:?}");
    let codes: Vec<Option<&Code>> = responses
        .iter()
        .map(|r| r.error().and_then(|e| e.code()))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            None,
            Some(&Code::DuplicateItem),
            Some(&Code::ConditionalCheckFailed),
            Some(&Code::ValidationError),
            Some(&Code::ResourceNotFound),
            Some(&Code::ConditionalCheckFailed),
            Some(&Code::ConditionalCheckFailed),
            None,
            Some(&Code::ConditionalCheckFailed),
        ],
        "{out:?}"
    );
    for i in [0, 1, 8] {
        assert_eq!(responses[i].table_name(), Some(t), "{:?}", responses[i]);
        assert_eq!(responses[i].item(), None, "{:?}", responses[i]);
    }
    let old = item([("pk", s("old")), ("n", n("2"))]);
    assert_eq!(responses[3].error().unwrap().item(), None);
    assert_eq!(responses[9].error().unwrap().item(), Some(&old));

    let new = item([("pk", s("new")), ("n", n("1"))]);
    assert_eq!(read(&client, t, key("new")).await, Some(new));
    assert_eq!(read(&client, t, key("old")).await, Some(old));
    assert_eq!(read(&client, t, key("third")).await, Some(key("third")));
    assert_eq!(read(&client, t, key("nobody")).await, None);
}

/// A batch holds 1 to 25 statements, and never reads and writes together.
#[tokio::test]
async fn a_batch_holds_up_to_25_statements_all_reads_or_all_writes() {
    let client = shared_server().client();
    let t = "pq-batch-limits";
    create_table(&client, t, Sat::S, None).await;
    let inserts = |count: usize, prefix: &str| -> Vec<BatchStatementRequest> {
        (0..count)
            .map(|i| {
                batch_statement(&format!(
                    "INSERT INTO \"{t}\" VALUE {{'pk': '{prefix}-{i}'}}"
                ))
            })
            .collect()
    };

    let out = ok(client
        .batch_execute_statement()
        .set_statements(Some(inserts(25, "ok")))
        .send()
        .await);
    assert_eq!(out.responses().len(), 25);
    assert!(
        out.responses().iter().all(|r| r.error().is_none()),
        "{out:?}"
    );
    assert_eq!(read(&client, t, key("ok-24")).await, Some(key("ok-24")));

    let result = client
        .batch_execute_statement()
        .set_statements(Some(inserts(26, "many")))
        .send()
        .await;
    let err = api_error(result);
    assert_eq!(err.code, VE);
    let tail = "at 'statements' failed to satisfy constraint: Member must have length less than or equal to 25";
    assert!(
        err.message
            .starts_with("1 validation error detected: Value ")
            && err.message.ends_with(tail),
        "{}",
        err.message
    );
    assert_eq!(read(&client, t, key("many-0")).await, None);

    let result = client
        .batch_execute_statement()
        .set_statements(Some(Vec::new()))
        .send()
        .await;
    assert_eq!(api_error(result).code, VE);

    let result = client
        .batch_execute_statement()
        .statements(batch_statement(&format!(
            "SELECT * FROM \"{t}\" WHERE pk = 'ok-0'"
        )))
        .statements(batch_statement(&format!(
            "INSERT INTO \"{t}\" VALUE {{'pk': 'mixed'}}"
        )))
        .send()
        .await;
    assert_error(
        result,
        VE,
        "Read and write requests together in the same batch is not supported.",
    );
    assert_eq!(read(&client, t, key("mixed")).await, None);
}

// ---------------------------------------------------------------------------
// ExecuteTransaction
// ---------------------------------------------------------------------------

/// The writes of a transaction commit together; one failing statement (a
/// duplicate INSERT, an UPDATE of a missing item) cancels all with a
/// reason per statement in order, and nothing is written.
#[tokio::test]
async fn transaction_writes_commit_together_or_not_at_all() {
    let client = shared_server().client();
    let t = "pq-txn";
    create_table(&client, t, Sat::S, None).await;
    put_item(&client, t, item([("pk", s("counter")), ("n", n("1"))])).await;
    put_item(&client, t, key("doomed")).await;

    let out = ok(client
        .execute_transaction()
        .transact_statements(transact_statement(&format!(
            "INSERT INTO \"{t}\" VALUE {{'pk': 'made', 'v': 'x'}}"
        )))
        .transact_statements(transact_statement(&format!(
            "UPDATE \"{t}\" SET n = n + 1 WHERE pk = 'counter'"
        )))
        .transact_statements(transact_statement(&format!(
            "DELETE FROM \"{t}\" WHERE pk = 'doomed'"
        )))
        .send()
        .await);
    assert!(out.responses().is_empty(), "{out:?}");
    let made = item([("pk", s("made")), ("v", s("x"))]);
    assert_eq!(read(&client, t, key("made")).await, Some(made.clone()));
    let counter = item([("pk", s("counter")), ("n", n("2"))]);
    assert_eq!(
        read(&client, t, key("counter")).await,
        Some(counter.clone())
    );
    assert_eq!(read(&client, t, key("doomed")).await, None);

    // A duplicate INSERT cancels the other INSERT and the UPDATE.
    let result = client
        .execute_transaction()
        .transact_statements(transact_statement(&format!(
            "INSERT INTO \"{t}\" VALUE {{'pk': 'fresh'}}"
        )))
        .transact_statements(transact_statement(&format!(
            "INSERT INTO \"{t}\" VALUE {{'pk': 'made', 'v': 'again'}}"
        )))
        .transact_statements(transact_statement(&format!(
            "UPDATE \"{t}\" SET n = n + 1 WHERE pk = 'counter'"
        )))
        .send()
        .await;
    let e = transaction_canceled(result);
    assert_reasons(&e, &["None", "DuplicateItem", "None"]);
    assert_eq!(read(&client, t, key("fresh")).await, None);
    assert_eq!(read(&client, t, key("made")).await, Some(made));
    assert_eq!(
        read(&client, t, key("counter")).await,
        Some(counter.clone())
    );

    // An UPDATE of a missing item fails its condition.
    let result = client
        .execute_transaction()
        .transact_statements(transact_statement(&format!(
            "UPDATE \"{t}\" SET n = n + 1 WHERE pk = 'counter'"
        )))
        .transact_statements(transact_statement(&format!(
            "UPDATE \"{t}\" SET n = 1 WHERE pk = 'ghost'"
        )))
        .send()
        .await;
    let e = transaction_canceled(result);
    assert_reasons(&e, &["None", "ConditionalCheckFailed"]);
    assert_eq!(
        read(&client, t, key("counter")).await,
        Some(counter.clone())
    );
    assert_eq!(read(&client, t, key("ghost")).await, None);

    // A failed extra condition with ALL_OLD: its reason carries the item.
    let result = client
        .execute_transaction()
        .transact_statements(transact_statement(&format!(
            "INSERT INTO \"{t}\" VALUE {{'pk': 'fresh'}}"
        )))
        .transact_statements(
            ParameterizedStatement::builder()
                .statement(format!(
                    "UPDATE \"{t}\" SET n = 5 WHERE pk = 'counter' AND n = 99"
                ))
                .return_values_on_condition_check_failure(OnFailure::AllOld)
                .build()
                .unwrap(),
        )
        .send()
        .await;
    let e = transaction_canceled(result);
    assert_reasons(&e, &["None", "ConditionalCheckFailed"]);
    let reasons = e.cancellation_reasons();
    assert_eq!(reasons[0].item(), None);
    assert_eq!(reasons[1].item(), Some(&counter));
    assert_eq!(read(&client, t, key("fresh")).await, None);
    assert_eq!(read(&client, t, key("counter")).await, Some(counter));
}

/// The same ClientRequestToken sent twice runs the transaction once: an
/// `n = n + 1` is applied a single time, and a new token runs it again.
#[tokio::test]
async fn a_retried_transaction_token_runs_once() {
    let client = shared_server().client();
    let t = "pq-txn-token";
    create_table(&client, t, Sat::S, None).await;
    put_item(&client, t, item([("pk", s("k")), ("n", n("0"))])).await;
    let bump = |token: &str| {
        client
            .execute_transaction()
            .transact_statements(transact_statement(&format!(
                "UPDATE \"{t}\" SET n = n + 1 WHERE pk = 'k'"
            )))
            .transact_statements(transact_statement(&format!(
                "INSERT INTO \"{t}\" VALUE {{'pk': 'log-{token}'}}"
            )))
            .client_request_token(token)
    };
    let counted = || async { read(&client, t, key("k")).await.unwrap()["n"].clone() };

    ok(bump("pq-token-1").send().await);
    assert_eq!(counted().await, n("1"));
    // Run again it would fail its INSERT; replayed it succeeds.
    ok(bump("pq-token-1").send().await);
    assert_eq!(counted().await, n("1"));
    ok(bump("pq-token-2").send().await);
    assert_eq!(counted().await, n("2"));
}

/// A read transaction of whole keys answers `Responses` in statement
/// order: the item (projected as the SELECT asks), or no item when it is
/// missing.
#[tokio::test]
async fn a_read_transaction_answers_items_in_order() {
    let client = shared_server().client();
    let (t, c) = ("pq-txn-read", "pq-txn-read-composite");
    create_table(&client, t, Sat::S, None).await;
    create_table(&client, c, Sat::S, Some(Sat::S)).await;
    let a = item([("pk", s("a")), ("v", n("1")), ("w", s("x"))]);
    let b = item([("pk", s("b")), ("v", n("2"))]);
    put_item(&client, t, a).await;
    put_item(&client, t, b.clone()).await;
    let c_item = item([("pk", s("c")), ("v", n("3"))]);
    put_item(&client, t, c_item.clone()).await;
    let row = item([("pk", s("p")), ("sk", s("s"))]);
    put_item(&client, c, row.clone()).await;

    let out = ok(client
        .execute_transaction()
        .transact_statements(transact_statement(&format!(
            "SELECT * FROM \"{t}\" WHERE pk = 'b'"
        )))
        .transact_statements(transact_statement(&format!(
            "SELECT * FROM \"{t}\" WHERE pk = 'missing'"
        )))
        .transact_statements(transact_statement(&format!(
            "SELECT * FROM \"{c}\" WHERE pk = 'p' AND sk = 's'"
        )))
        .transact_statements(transact_statement(&format!(
            "SELECT * FROM \"{t}\" WHERE pk = 'c'"
        )))
        .transact_statements(transact_statement(&format!(
            "SELECT w FROM \"{t}\" WHERE pk = 'a'"
        )))
        .send()
        .await);
    let items: Vec<Option<&Item>> = out.responses().iter().map(|r| r.item()).collect();
    let projected = item([("w", s("x"))]);
    assert_eq!(
        items,
        [Some(&b), None, Some(&row), Some(&c_item), Some(&projected)],
        "{out:?}"
    );
}

/// A transaction is all reads or all writes, without RETURNING, on tables
/// that exist, and holds 1 to 100 statements.
#[tokio::test]
async fn a_transaction_holds_up_to_100_statements_all_reads_or_all_writes() {
    let client = shared_server().client();
    let t = "pq-txn-limits";
    create_table(&client, t, Sat::S, None).await;
    put_item(&client, t, key("there")).await;

    let result = client
        .execute_transaction()
        .transact_statements(transact_statement(&format!(
            "SELECT * FROM \"{t}\" WHERE pk = 'there'"
        )))
        .transact_statements(transact_statement(&format!(
            "INSERT INTO \"{t}\" VALUE {{'pk': 'mixed'}}"
        )))
        .send()
        .await;
    assert_error(
        result,
        VE,
        "ExecuteTransaction API does not support both read and write operations in the same request.",
    );
    assert_eq!(read(&client, t, key("mixed")).await, None);

    let result = client
        .execute_transaction()
        .transact_statements(transact_statement(&format!(
            "INSERT INTO \"{t}\" VALUE {{'pk': 'returning'}}"
        )))
        .transact_statements(transact_statement(&format!(
            "UPDATE \"{t}\" SET v = 1 WHERE pk = 'there' RETURNING ALL NEW *"
        )))
        .send()
        .await;
    assert_error(
        result,
        VE,
        "Validation failed in TransactStatements[1]: RETURNING clause is not supported in ExecuteTransaction.",
    );
    assert_eq!(read(&client, t, key("returning")).await, None);

    let result = client
        .execute_transaction()
        .transact_statements(transact_statement(&format!(
            "INSERT INTO \"{t}\" VALUE {{'pk': 'unknown'}}"
        )))
        .transact_statements(transact_statement(
            "INSERT INTO \"pq-no-such-table\" VALUE {'pk': 'x'}",
        ))
        .send()
        .await;
    assert_eq!(api_error(result).code, "ResourceNotFoundException");
    assert_eq!(read(&client, t, key("unknown")).await, None);

    let inserts = |count: usize, prefix: &str| -> Vec<ParameterizedStatement> {
        (0..count)
            .map(|i| {
                transact_statement(&format!(
                    "INSERT INTO \"{t}\" VALUE {{'pk': '{prefix}-{i}'}}"
                ))
            })
            .collect()
    };
    let result = client
        .execute_transaction()
        .set_transact_statements(Some(inserts(101, "many")))
        .send()
        .await;
    let err = api_error(result);
    assert_eq!(err.code, VE);
    let tail = "at 'transactStatements' failed to satisfy constraint: Member must have length less than or equal to 100";
    assert!(
        err.message
            .starts_with("1 validation error detected: Value ")
            && err.message.ends_with(tail),
        "{}",
        err.message
    );
    assert_eq!(read(&client, t, key("many-0")).await, None);

    ok(client
        .execute_transaction()
        .set_transact_statements(Some(inserts(100, "ok")))
        .send()
        .await);
    assert_eq!(read(&client, t, key("ok-0")).await, Some(key("ok-0")));
    assert_eq!(read(&client, t, key("ok-99")).await, Some(key("ok-99")));

    let result = client
        .execute_transaction()
        .set_transact_statements(Some(Vec::new()))
        .send()
        .await;
    assert_eq!(api_error(result).code, VE);
}
