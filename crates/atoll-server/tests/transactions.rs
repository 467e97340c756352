//! Transactions against the real binary, through `aws-sdk-dynamodb`:
//! TransactWriteItems' four kinds of action across tables, all committed or
//! none (TransactionCanceledException with one reason per action, in order,
//! and the old item where ALL_OLD asks for it); the request's checks and
//! texts; ClientRequestToken idempotency (a retry runs once, a changed
//! request with the same token is refused, a retry while the first runs is
//! told it is in progress); items held while a transaction runs (single
//! writes refused with TransactionConflictException, other transactions
//! cancelled with TransactionConflict, reads answered with the last
//! committed value); a server killed -9 in the middle of a transaction
//! finishing it as its ledger decided once it is back; global indexes and
//! streams fed by transactions; consumed capacity and item collection
//! metrics; and TransactGetItems.
//!
//! Expectations come from DynamoDB's documented and observed behaviour
//! (`docs/research/transactions.md` §1-§4), not from Atoll's code. Fail
//! points (`transaction-prepared-hold-ms`, `transaction-commit-hold-ms`)
//! hold a coordinator between its steps, so that a test can act while a
//! transaction's items are held.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, ConditionCheck, ConsumedCapacity, Delete, Get,
    GlobalSecondaryIndex, KeyType, LocalSecondaryIndex, Projection, ProjectionType, Put,
    PutRequest, ReturnConsumedCapacity, ReturnItemCollectionMetrics as Ricm,
    ReturnValuesOnConditionCheckFailure as OnFailure, ScalarAttributeType as Sat,
    StreamSpecification, StreamViewType, TransactGetItem, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use common::*;

type Item = HashMap<String, AttributeValue>;

const VE: &str = "ValidationException";
/// The text of TransactionConflictException and of a TransactionConflict
/// reason.
const ONGOING: &str = "Transaction is ongoing for the item";
/// The text of a ConditionalCheckFailed reason.
const CONDITION_FAILED: &str = "The conditional request failed";
/// How long index entries, stream records and recovery may take to show.
const SETTLED_WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(25);
/// How long the fail point holds a transaction in the conflict tests.
const HOLD: &str = "return(1500)";
/// How long after its start a held transaction has surely prepared.
const PREPARED_AFTER: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// Actions and requests
// ---------------------------------------------------------------------------

fn key(pk: &str) -> Item {
    item([("pk", s(pk))])
}

/// `ExpressionAttributeValues` from pairs (`None` when there are none).
fn values(pairs: &[(&str, AttributeValue)]) -> Option<Item> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    })
}

fn put(table: &str, it: Item) -> TransactWriteItem {
    let put = Put::builder().table_name(table).set_item(Some(it));
    TransactWriteItem::builder()
        .put(put.build().unwrap())
        .build()
}

/// A Put that only creates (`attribute_not_exists(pk)`), returning the old
/// item on failure when `on_failure` says so.
fn put_new(table: &str, it: Item, on_failure: Option<OnFailure>) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(it))
        .condition_expression("attribute_not_exists(pk)")
        .set_return_values_on_condition_check_failure(on_failure);
    TransactWriteItem::builder()
        .put(put.build().unwrap())
        .build()
}

fn update(
    table: &str,
    key: Item,
    expression: &str,
    condition: Option<&str>,
    vals: &[(&str, AttributeValue)],
) -> TransactWriteItem {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expression)
        .set_condition_expression(condition.map(str::to_string))
        .set_expression_attribute_values(values(vals));
    TransactWriteItem::builder()
        .update(update.build().unwrap())
        .build()
}

fn delete(table: &str, key: Item) -> TransactWriteItem {
    let delete = Delete::builder().table_name(table).set_key(Some(key));
    TransactWriteItem::builder()
        .delete(delete.build().unwrap())
        .build()
}

fn check(
    table: &str,
    key: Item,
    condition: &str,
    vals: &[(&str, AttributeValue)],
) -> TransactWriteItem {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(condition)
        .set_expression_attribute_values(values(vals));
    TransactWriteItem::builder()
        .condition_check(check.build().unwrap())
        .build()
}

fn get(table: &str, key: Item) -> TransactGetItem {
    let get = Get::builder().table_name(table).set_key(Some(key));
    TransactGetItem::builder().get(get.build().unwrap()).build()
}

/// TransactWriteItems of `actions` (the SDK adds a fresh ClientRequestToken).
fn transact(client: &Client, actions: Vec<TransactWriteItem>) -> TransactWriteItemsFluentBuilder {
    client
        .transact_write_items()
        .set_transact_items(Some(actions))
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

/// Makes the transaction ledger (the first transaction does) with a
/// transaction that is cancelled, so that a fail point holding committed
/// transactions does not hold this one.
async fn make_ledger(client: &Client, table: &str) {
    let never = check(table, key("no-such-item"), "attribute_exists(pk)", &[]);
    let result = transact(client, vec![never]).send().await;
    assert_reasons(&write_canceled(result), &["ConditionalCheckFailed"]);
}

// ---------------------------------------------------------------------------
// Cancellations
// ---------------------------------------------------------------------------

/// The TransactionCanceledException of a TransactWriteItems call.
#[track_caller]
fn write_canceled<T: Debug>(
    result: Result<T, SdkError<TransactWriteItemsError, HttpResponse>>,
) -> TransactionCanceledException {
    match result {
        Ok(out) => panic!("expected TransactionCanceledException, got success: {out:?}"),
        Err(e) => match e.into_service_error() {
            TransactWriteItemsError::TransactionCanceledException(e) => e,
            other => panic!("expected TransactionCanceledException, got {other:?}"),
        },
    }
}

/// The TransactionCanceledException of a TransactGetItems call.
#[track_caller]
fn get_canceled<T: Debug>(
    result: Result<T, SdkError<TransactGetItemsError, HttpResponse>>,
) -> TransactionCanceledException {
    match result {
        Ok(out) => panic!("expected TransactionCanceledException, got success: {out:?}"),
        Err(e) => match e.into_service_error() {
            TransactGetItemsError::TransactionCanceledException(e) => e,
            other => panic!("expected TransactionCanceledException, got {other:?}"),
        },
    }
}

fn codes(e: &TransactionCanceledException) -> Vec<&str> {
    e.cancellation_reasons()
        .iter()
        .map(|reason| reason.code().unwrap_or("<no code>"))
        .collect()
}

/// The message names `expected` in order, and so do the reasons' codes,
/// each with DynamoDB's message for its code.
#[track_caller]
fn assert_reasons(e: &TransactionCanceledException, expected: &[&str]) {
    let message = format!(
        "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
        expected.join(", ")
    );
    assert_eq!(e.message(), Some(message.as_str()), "{e:?}");
    assert_eq!(codes(e), expected, "{e:?}");
    for reason in e.cancellation_reasons() {
        let text = match reason.code() {
            Some("None") => None,
            Some("ConditionalCheckFailed") => Some(CONDITION_FAILED),
            Some("TransactionConflict") => Some(ONGOING),
            // ValidationError's text depends on what was invalid.
            _ => continue,
        };
        assert_eq!(reason.message(), text, "{reason:?}");
    }
}

// ---------------------------------------------------------------------------
// What a user sees of a transaction
// ---------------------------------------------------------------------------

/// Put, Update, Delete and ConditionCheck on two tables (one with a sort
/// key) in one transaction: every effect is there for the next consistent
/// read, and the answer carries nothing that was not asked for.
#[tokio::test]
async fn actions_of_every_kind_on_two_tables_commit_together() {
    let client = shared_server().client();
    let (hash, composite) = ("txn-commit-hash", "txn-commit-composite");
    create_table(&client, hash, Sat::S, None).await;
    create_table(&client, composite, Sat::S, Some(Sat::S)).await;
    let counter = item([
        ("pk", s("counter")),
        ("tally", n("1")),
        ("note", s("before")),
    ]);
    put_item(&client, hash, counter).await;
    put_item(&client, hash, item([("pk", s("doomed")), ("note", s("x"))])).await;
    put_item(
        &client,
        hash,
        item([("pk", s("guard")), ("flag", s("open"))]),
    )
    .await;
    let old_row = item([("pk", s("p")), ("sk", s("old")), ("v", n("1"))]);
    put_item(&client, composite, old_row).await;

    let new_row = item([("pk", s("p")), ("sk", s("new")), ("v", n("2"))]);
    let old_row_key = item([("pk", s("p")), ("sk", s("old"))]);
    let made = item([("pk", s("made")), ("note", s("created"))]);
    let out = ok(transact(
        &client,
        vec![
            put(composite, new_row.clone()),
            update(
                hash,
                key("counter"),
                "SET note = :note ADD tally :one",
                None,
                &[(":note", s("after")), (":one", n("1"))],
            ),
            delete(composite, old_row_key.clone()),
            delete(hash, key("doomed")),
            check(hash, key("guard"), "flag = :open", &[(":open", s("open"))]),
            put(hash, made.clone()),
        ],
    )
    .send()
    .await);
    assert!(out.consumed_capacity().is_empty(), "{out:?}");
    assert_eq!(out.item_collection_metrics(), None);

    let new_key = item([("pk", s("p")), ("sk", s("new"))]);
    assert_eq!(read(&client, composite, new_key).await, Some(new_row));
    assert_eq!(read(&client, composite, old_row_key).await, None);
    let counter = item([
        ("pk", s("counter")),
        ("tally", n("2")),
        ("note", s("after")),
    ]);
    assert_eq!(read(&client, hash, key("counter")).await, Some(counter));
    assert_eq!(read(&client, hash, key("doomed")).await, None);
    let guard = item([("pk", s("guard")), ("flag", s("open"))]);
    assert_eq!(read(&client, hash, key("guard")).await, Some(guard));
    assert_eq!(read(&client, hash, key("made")).await, Some(made));
}

/// One failed condition cancels everything: the message and the reasons
/// name every action in order (`None` for those that would have passed),
/// the failed one says `The conditional request failed` and carries the
/// old item only with ReturnValuesOnConditionCheckFailure ALL_OLD (and only
/// when there is one), and nothing is written.
#[tokio::test]
async fn a_failed_condition_cancels_the_whole_transaction() {
    let client = shared_server().client();
    let t = "txn-cancel";
    create_table(&client, t, Sat::S, None).await;
    let taken = item([("pk", s("taken")), ("note", s("original"))]);
    put_item(&client, t, taken.clone()).await;
    let fresh = item([("pk", s("fresh")), ("note", s("new"))]);
    let clash = item([("pk", s("taken")), ("note", s("replaced"))]);

    // Without ALL_OLD: no item in the reason.
    let result = transact(
        &client,
        vec![
            put_new(t, fresh.clone(), None),
            put_new(t, clash.clone(), None),
        ],
    )
    .send()
    .await;
    let e = write_canceled(result);
    assert_reasons(&e, &["None", "ConditionalCheckFailed"]);
    assert!(e.cancellation_reasons().iter().all(|r| r.item().is_none()));
    assert_eq!(read(&client, t, key("fresh")).await, None);
    assert_eq!(read(&client, t, key("taken")).await, Some(taken.clone()));

    // With ALL_OLD on both: the failed action's reason has the whole old
    // item, the passing one has none.
    let result = transact(
        &client,
        vec![
            put_new(t, fresh.clone(), Some(OnFailure::AllOld)),
            put_new(t, clash, Some(OnFailure::AllOld)),
        ],
    )
    .send()
    .await;
    let e = write_canceled(result);
    assert_reasons(&e, &["None", "ConditionalCheckFailed"]);
    let reasons = e.cancellation_reasons();
    assert_eq!(reasons[0].item(), None);
    assert_eq!(reasons[1].item(), Some(&taken));
    assert_eq!(read(&client, t, key("fresh")).await, None);
    assert_eq!(read(&client, t, key("taken")).await, Some(taken.clone()));

    // A condition on an absent item fails as on an empty one: no item to
    // return, and no item made by the Update. Both failures are reported.
    let ghost = Update::builder()
        .table_name(t)
        .set_key(Some(key("ghost")))
        .update_expression("SET note = :v")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":v", s("boo"))
        .return_values_on_condition_check_failure(OnFailure::AllOld);
    let ghost = TransactWriteItem::builder()
        .update(ghost.build().unwrap())
        .build();
    let result = transact(
        &client,
        vec![
            ghost,
            check(t, key("taken"), "note = :v", &[(":v", s("original"))]),
            check(t, key("fresh"), "attribute_exists(pk)", &[]),
        ],
    )
    .send()
    .await;
    let e = write_canceled(result);
    let expected = ["ConditionalCheckFailed", "None", "ConditionalCheckFailed"];
    assert_reasons(&e, &expected);
    assert!(e.cancellation_reasons().iter().all(|r| r.item().is_none()));
    assert_eq!(read(&client, t, key("ghost")).await, None);
    assert_eq!(read(&client, t, key("taken")).await, Some(taken));
}

/// Requests DynamoDB refuses before anything runs, with its texts: no
/// actions, more than 100, two actions on one item, a table that does not
/// exist, a ClientRequestToken over 36 characters. None writes anything.
#[tokio::test]
async fn invalid_transactions_are_refused_before_anything_runs() {
    let client = shared_server().client();
    let t = "txn-invalid";
    create_table(&client, t, Sat::S, None).await;

    let empty = transact(&client, Vec::new()).send().await;
    let message = "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1";
    assert_error(empty, VE, message);

    let many: Vec<TransactWriteItem> = (0..101)
        .map(|i| put(t, key(&format!("many-{i}"))))
        .collect();
    let err = api_error(transact(&client, many).send().await);
    assert_eq!(err.code, VE);
    let (head, tail) = (
        "1 validation error detected: Value '[",
        "]' at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100",
    );
    assert!(
        err.message.starts_with(head) && err.message.ends_with(tail),
        "{}",
        err.message
    );
    assert_eq!(read(&client, t, key("many-0")).await, None);
    // One hundred is allowed.
    let hundred: Vec<TransactWriteItem> = (0..100)
        .map(|i| put(t, key(&format!("many-{i}"))))
        .collect();
    ok(transact(&client, hundred).send().await);
    assert_eq!(read(&client, t, key("many-99")).await, Some(key("many-99")));

    let twice = vec![
        put(t, item([("pk", s("dup")), ("note", s("x"))])),
        check(t, key("dup"), "attribute_not_exists(pk)", &[]),
    ];
    let message = "Transaction request cannot include multiple operations on one item";
    assert_error(transact(&client, twice).send().await, VE, message);
    assert_eq!(read(&client, t, key("dup")).await, None);

    let missing = vec![
        put(t, key("before-missing")),
        put("txn-no-such-table", key("x")),
    ];
    let result = transact(&client, missing).send().await;
    assert_error(
        result,
        "ResourceNotFoundException",
        "Requested resource not found",
    );
    assert_eq!(read(&client, t, key("before-missing")).await, None);

    let long = "t".repeat(37);
    let result = transact(&client, vec![put(t, key("long-token"))])
        .client_request_token(&long)
        .send()
        .await;
    let message = format!(
        "1 validation error detected: Value '{long}' at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36"
    );
    assert_error(result, VE, &message);
    assert_eq!(read(&client, t, key("long-token")).await, None);
    // Thirty-six characters (a UUID's length) are allowed.
    ok(transact(&client, vec![put(t, key("long-token"))])
        .client_request_token("t".repeat(36))
        .send()
        .await);
    assert_eq!(
        read(&client, t, key("long-token")).await,
        Some(key("long-token"))
    );
}

/// A request sent again with the same ClientRequestToken succeeds without
/// running again (an `ADD` is applied once); the same token with another
/// request is IdempotentParameterMismatchException; another token runs.
#[tokio::test]
async fn a_retried_token_runs_its_transaction_once() {
    let client = shared_server().client();
    let t = "txn-idempotent";
    create_table(&client, t, Sat::S, None).await;
    let add = |token: &str, by: &str| {
        let action = update(t, key("k"), "ADD tally :by", None, &[(":by", n(by))]);
        transact(&client, vec![action]).client_request_token(token)
    };
    let tally = || async {
        read(&client, t, key("k"))
            .await
            .map(|it| it["tally"].clone())
    };

    ok(add("idempotent-token-1", "1").send().await);
    ok(add("idempotent-token-1", "1").send().await);
    assert_eq!(tally().await, Some(n("1")));

    let err = api_error(add("idempotent-token-1", "2").send().await);
    assert_eq!(err.code, "IdempotentParameterMismatchException", "{err:?}");
    assert_eq!(tally().await, Some(n("1")));

    ok(add("idempotent-token-2", "1").send().await);
    assert_eq!(tally().await, Some(n("2")));
    // The first token still answers for its request.
    ok(add("idempotent-token-1", "1").send().await);
    assert_eq!(tally().await, Some(n("2")));
}

// ---------------------------------------------------------------------------
// Held items
// ---------------------------------------------------------------------------

/// While a transaction holds an item (decided, not yet applied: the
/// coordinator is held by a fail point), single writes of it are refused
/// with TransactionConflictException, another transaction on it is
/// cancelled with TransactionConflict (and a transactional read too),
/// while GetItem answers the last committed value and items outside the
/// transaction stay writable. Once it finishes, its value is there and the
/// item is writable again.
#[tokio::test]
async fn a_running_transaction_holds_its_items() {
    let server = TestServer::start_with_fail_points(&format!("transaction-commit-hold-ms={HOLD}"));
    let client = server.client();
    let t = "txn-held";
    create_table(&client, t, Sat::S, None).await;
    let old = item([("pk", s("held")), ("color", s("old"))]);
    let free = item([("pk", s("free")), ("color", s("free"))]);
    put_item(&client, t, old.clone()).await;
    put_item(&client, t, free.clone()).await;
    make_ledger(&client, t).await;

    let new = item([("pk", s("held")), ("color", s("new"))]);
    let writer = client.clone();
    let first = {
        let new = new.clone();
        tokio::spawn(async move { transact(&writer, vec![put(t, new)]).send().await })
    };
    tokio::time::sleep(PREPARED_AFTER).await;

    let other = item([("pk", s("held")), ("color", s("other"))]);
    let put_result = client
        .put_item()
        .table_name(t)
        .set_item(Some(other.clone()))
        .send()
        .await;
    assert_error(put_result, "TransactionConflictException", ONGOING);
    let update_result = client
        .update_item()
        .table_name(t)
        .set_key(Some(key("held")))
        .update_expression("SET color = :c")
        .expression_attribute_values(":c", s("other"))
        .send()
        .await;
    assert_error(update_result, "TransactionConflictException", ONGOING);
    let delete_result = client
        .delete_item()
        .table_name(t)
        .set_key(Some(key("held")))
        .send()
        .await;
    assert_error(delete_result, "TransactionConflictException", ONGOING);
    let batch_put = WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(other.clone()))
                .build()
                .unwrap(),
        )
        .build();
    let batch_result = client
        .batch_write_item()
        .request_items(t, vec![batch_put])
        .send()
        .await;
    assert_eq!(api_error(batch_result).code, "TransactionConflictException");
    assert_eq!(read(&client, t, key("held")).await, Some(old.clone()));

    let changed_free = item([("pk", s("free")), ("color", s("changed"))]);
    let second = transact(&client, vec![put(t, changed_free), put(t, other)])
        .send()
        .await;
    assert_reasons(&write_canceled(second), &["None", "TransactionConflict"]);
    assert_eq!(read(&client, t, key("free")).await, Some(free.clone()));
    let both = client
        .transact_get_items()
        .transact_items(get(t, key("free")))
        .transact_items(get(t, key("held")))
        .send()
        .await;
    assert_reasons(&get_canceled(both), &["None", "TransactionConflict"]);
    // The hold is the held item's only.
    let free_again = item([("pk", s("free")), ("color", s("still free"))]);
    put_item(&client, t, free_again.clone()).await;
    assert!(!first.is_finished(), "the checks above outlasted the hold");

    ok(first.await.unwrap());
    assert_eq!(read(&client, t, key("held")).await, Some(new));
    let after = item([("pk", s("held")), ("color", s("after"))]);
    put_item(&client, t, after.clone()).await;
    assert_eq!(read(&client, t, key("held")).await, Some(after));
    assert_eq!(read(&client, t, key("free")).await, Some(free_again));
}

/// A TransactGetItems of one item that a running transaction holds is
/// cancelled with TransactionConflict, as it is with more items: DynamoDB
/// rejects a read transaction when "an item within a TransactGetItems
/// request is part of an ongoing TransactWriteItems" (Developer Guide,
/// transaction conflict handling), whatever the number of items.
#[tokio::test]
async fn a_transactional_read_of_one_held_item_is_cancelled() {
    let server = TestServer::start_with_fail_points(&format!("transaction-commit-hold-ms={HOLD}"));
    let client = server.client();
    let t = "txn-held-read";
    create_table(&client, t, Sat::S, None).await;
    put_item(&client, t, item([("pk", s("held")), ("color", s("old"))])).await;
    make_ledger(&client, t).await;
    let writer = client.clone();
    let first = tokio::spawn(async move {
        let new = item([("pk", s("held")), ("color", s("new"))]);
        transact(&writer, vec![put(t, new)]).send().await
    });
    tokio::time::sleep(PREPARED_AFTER).await;
    let result = client
        .transact_get_items()
        .transact_items(get(t, key("held")))
        .send()
        .await;
    assert!(!first.is_finished(), "the read outlasted the hold");
    ok(first.await.unwrap());
    assert_reasons(&get_canceled(result), &["TransactionConflict"]);
}

/// The same request with the same token, sent again while the first is
/// still running, is TransactionInProgressException; the first succeeds,
/// and a later retry succeeds without running again.
#[tokio::test]
async fn a_retry_while_the_first_request_runs_is_in_progress() {
    let server =
        TestServer::start_with_fail_points(&format!("transaction-prepared-hold-ms={HOLD}"));
    let client = server.client();
    let t = "txn-in-progress";
    create_table(&client, t, Sat::S, None).await;
    let send = || {
        let action = update(t, key("k"), "ADD tally :one", None, &[(":one", n("1"))]);
        transact(&client, vec![action])
            .client_request_token("in-progress-token")
            .send()
    };
    let (first, second) = tokio::join!(send(), async {
        tokio::time::sleep(PREPARED_AFTER).await;
        send().await
    });
    // The first to reach the ledger runs (the first sent, most likely:
    // the other is sent while it is held); the other is refused.
    let refused = match (first, second) {
        (Ok(_), refused) | (refused, Ok(_)) => refused,
        both => panic!("neither call succeeded: {both:?}"),
    };
    assert_error(
        refused,
        "TransactionInProgressException",
        "Transaction from previous request is still in progress",
    );
    ok(send().await);
    let tally = read(&client, t, key("k"))
        .await
        .map(|it| it["tally"].clone());
    assert_eq!(tally, Some(n("1")));
}

// ---------------------------------------------------------------------------
// A server killed in the middle of a transaction
// ---------------------------------------------------------------------------

/// `--transaction-recovery-ms` of the crash tests: a silent coordinator's
/// items are finished from the ledger after half a second.
const RECOVERY_MS: &str = "500";
const LISTENING_PREFIX: &str = "atoll: listening on ";

/// `atoll serve` on a directory the test keeps across kills, with
/// `--transaction-recovery-ms` and, optionally, fail points (which
/// `TestServer` cannot combine with flags, and keeps across restarts).
struct CrashServer {
    child: Option<Child>,
    endpoint: String,
}

impl CrashServer {
    fn start(dir: &Path, run: u32, fail_points: Option<&str>) -> CrashServer {
        let stderr_path = dir.join(format!("stderr-{run}.log"));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atoll"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--transaction-recovery-ms", RECOVERY_MS])
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        // Settings from the environment must not leak into the test.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ATOLL_") {
                cmd.env_remove(name);
            }
        }
        if let Some(fail_points) = fail_points {
            cmd.env("FAILPOINTS", fail_points);
        }
        // SAFETY: prctl(2) is async-signal-safe. The server dies with the
        // test's thread, even if no destructor runs.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start atoll serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        // Keeps draining stdout so the server never blocks on the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let endpoint = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix(LISTENING_PREFIX) {
                        break url.trim().to_string();
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "atoll did not serve.\n--- stderr ---\n{}",
                        std::fs::read_to_string(&stderr_path).unwrap_or_default()
                    );
                }
            }
        };
        CrashServer {
            child: Some(child),
            endpoint,
        }
    }

    fn client(&self) -> Client {
        sdk_client(&self.endpoint)
    }

    /// SIGKILL, and the process reaped.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 atoll");
            child.wait().expect("reap atoll");
        }
    }
}

impl Drop for CrashServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn crash_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("atoll-e2e-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// The transaction of the crash tests: `SET color = :new ADD tally :one` on
/// `a` and `b`, with `token`.
fn crash_transaction(client: &Client, table: &str, token: &str) -> TransactWriteItemsFluentBuilder {
    let vals = [(":new", s("new")), (":one", n("1"))];
    let set = "SET color = :new ADD tally :one";
    transact(
        client,
        vec![
            update(table, key("a"), set, None, &vals),
            update(table, key("b"), set, None, &vals),
        ],
    )
    .client_request_token(token)
}

/// Waits until `a` and `b` are held: a TransactGetItems of both is
/// cancelled with TransactionConflict.
async fn wait_held(client: &Client, table: &str) {
    let deadline = Instant::now() + SETTLED_WITHIN;
    loop {
        let result = client
            .transact_get_items()
            .transact_items(get(table, key("a")))
            .transact_items(get(table, key("b")))
            .send()
            .await;
        if result.is_err() {
            let e = get_canceled(result);
            assert!(codes(&e).contains(&"TransactionConflict"), "{e:?}");
            return;
        }
        assert!(Instant::now() < deadline, "a and b never held");
        tokio::time::sleep(POLL).await;
    }
}

/// `a` and `b` read in one TransactGetItems, once neither is held.
async fn read_both_when_free(client: &Client, table: &str) -> (Item, Item) {
    let deadline = Instant::now() + SETTLED_WITHIN;
    loop {
        let result = client
            .transact_get_items()
            .transact_items(get(table, key("a")))
            .transact_items(get(table, key("b")))
            .send()
            .await;
        match result {
            Ok(out) => {
                let items: Vec<Item> = out
                    .responses()
                    .iter()
                    .map(|response| response.item().cloned().unwrap_or_default())
                    .collect();
                return (items[0].clone(), items[1].clone());
            }
            Err(e) => {
                let e = get_canceled::<()>(Err(e));
                assert!(Instant::now() < deadline, "still held: {e:?}");
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Sets up `a` and `b`, starts the crash transaction on a server held by
/// `fail_point`, and kill -9s the server once both items are held; returns
/// the directory and the table, for the restart.
async fn crash_in_transaction(fail_point: &str, token: &str) -> (tempfile::TempDir, &'static str) {
    let dir = crash_dir();
    let t = "txn-crash";
    let mut server =
        CrashServer::start(dir.path(), 1, Some(&format!("{fail_point}=return(10000)")));
    let client = server.client();
    create_table(&client, t, Sat::S, None).await;
    put_item(&client, t, item([("pk", s("a")), ("color", s("old"))])).await;
    put_item(&client, t, item([("pk", s("b")), ("color", s("old"))])).await;
    let request = crash_transaction(&client, t, token);
    let pending = tokio::spawn(request.send());
    wait_held(&client, t).await;
    // Time for the decision, well before the server's own recovery.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.kill9();
    let answer = pending.await.unwrap();
    assert!(answer.is_err(), "the client learned nothing: {answer:?}");
    (dir, t)
}

/// A server killed -9 after its transaction was decided COMMITTED (and
/// before its items were told) comes back with the items held; recovery
/// commits them: both carry the transaction's values, once (the client's
/// retry with its token succeeds without applying it again), and both are
/// writable.
#[tokio::test]
async fn a_transaction_decided_before_a_crash_commits_after_it() {
    let token = "crash-after-commit";
    let (dir, t) = crash_in_transaction("transaction-commit-hold-ms", token).await;
    let server = CrashServer::start(dir.path(), 2, None);
    let client = server.client();
    let expected = |pk: &str| item([("pk", s(pk)), ("color", s("new")), ("tally", n("1"))]);
    let (a, b) = read_both_when_free(&client, t).await;
    assert_eq!((a, b), (expected("a"), expected("b")));
    ok(crash_transaction(&client, t, token).send().await);
    assert_eq!(read(&client, t, key("a")).await, Some(expected("a")));
    assert_eq!(read(&client, t, key("b")).await, Some(expected("b")));
    for pk in ["a", "b"] {
        let after = item([("pk", s(pk)), ("color", s("after"))]);
        put_item(&client, t, after.clone()).await;
        assert_eq!(read(&client, t, key(pk)).await, Some(after));
    }
}

/// A server killed -9 after its transaction prepared (and before it was
/// decided) comes back with the items held; recovery cancels it: both
/// keep their old values and are released. The client's retry with its
/// token then runs the transaction, once.
#[tokio::test]
async fn a_transaction_undecided_at_a_crash_is_cancelled_after_it() {
    let token = "crash-before-decision";
    let (dir, t) = crash_in_transaction("transaction-prepared-hold-ms", token).await;
    let server = CrashServer::start(dir.path(), 2, None);
    let client = server.client();
    let (a, b) = read_both_when_free(&client, t).await;
    let old = |pk: &str| item([("pk", s(pk)), ("color", s("old"))]);
    assert_eq!((a, b), (old("a"), old("b")));
    ok(crash_transaction(&client, t, token).send().await);
    for pk in ["a", "b"] {
        let new = item([("pk", s(pk)), ("color", s("new")), ("tally", n("1"))]);
        assert_eq!(read(&client, t, key(pk)).await, Some(new));
        let after = item([("pk", s(pk)), ("color", s("after"))]);
        put_item(&client, t, after.clone()).await;
        assert_eq!(read(&client, t, key(pk)).await, Some(after));
    }
}

// ---------------------------------------------------------------------------
// Indexes and streams
// ---------------------------------------------------------------------------

/// Attribute values as text, so that an item and a stream image (whose
/// `AttributeValue`s are distinct types of the two SDKs) compare.
fn shown<V: Debug>(map: &HashMap<String, V>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.clone(), format!("{v:?}")))
        .collect()
}

/// A stream record as (event, new image, old image), images shown.
type Change = (
    String,
    Option<BTreeMap<String, String>>,
    Option<BTreeMap<String, String>>,
);

fn change(event: &str, new: Option<&Item>, old: Option<&Item>) -> Change {
    (event.to_string(), new.map(shown), old.map(shown))
}

fn changes(records: &[Record]) -> Vec<Change> {
    records
        .iter()
        .map(|record| {
            let d = record.dynamodb().unwrap();
            (
                record.event_name().unwrap().as_str().to_string(),
                d.new_image().map(shown),
                d.old_image().map(shown),
            )
        })
        .collect()
}

/// Every record of the table's stream, read again from TRIM_HORIZON until
/// there are at least `at_least`.
async fn stream_records(
    client: &Client,
    streams: &StreamsClient,
    table: &str,
    at_least: usize,
) -> Vec<Record> {
    let described = ok(client.describe_table().table_name(table).send().await);
    let arn = described.table().unwrap().latest_stream_arn().unwrap();
    let deadline = Instant::now() + SETTLED_WITHIN;
    loop {
        let mut records = Vec::new();
        let stream = ok(streams.describe_stream().stream_arn(arn).send().await);
        for shard in stream.stream_description().unwrap().shards() {
            let iterator = ok(streams
                .get_shard_iterator()
                .stream_arn(arn)
                .shard_id(shard.shard_id().unwrap())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await);
            let mut next = iterator.shard_iterator;
            while let Some(it) = next {
                let out = ok(streams.get_records().shard_iterator(it).send().await);
                let page = out.records.unwrap_or_default();
                next = out.next_shard_iterator.filter(|_| !page.is_empty());
                records.extend(page);
            }
        }
        if records.len() >= at_least || Instant::now() >= deadline {
            return records;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A transaction's writes reach the table's global index and its stream
/// as single writes do: one INSERT per item put, none for a
/// ConditionCheck, none for a Put that writes the item as it is, a MODIFY
/// with both images for an Update.
#[tokio::test]
async fn transactions_feed_global_indexes_and_streams() {
    let server = shared_server();
    let client = server.client();
    let streams = server.streams_client();
    let t = "txn-stream";
    let by_g = GlobalSecondaryIndex::builder()
        .index_name("by_g")
        .key_schema(key_element("g", KeyType::Hash))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .unwrap();
    ok(client
        .create_table()
        .table_name(t)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S))
        .attribute_definitions(attr_def("g", Sat::S))
        .global_secondary_indexes(by_g)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await);
    wait_active(&client, t).await;
    let guard = item([("pk", s("guard")), ("g", s("other"))]);
    put_item(&client, t, guard.clone()).await;

    let a = item([("pk", s("a")), ("g", s("grp")), ("color", s("red"))]);
    let b = item([("pk", s("b")), ("g", s("grp"))]);
    ok(transact(
        &client,
        vec![
            put(t, a.clone()),
            put(t, b.clone()),
            check(t, key("guard"), "attribute_exists(pk)", &[]),
        ],
    )
    .send()
    .await);

    let deadline = Instant::now() + SETTLED_WITHIN;
    loop {
        let out = ok(client
            .query()
            .table_name(t)
            .index_name("by_g")
            .key_condition_expression("g = :g")
            .expression_attribute_values(":g", s("grp"))
            .send()
            .await);
        let mut found: Vec<BTreeMap<String, String>> = out.items().iter().map(shown).collect();
        found.sort();
        if found == [shown(&a), shown(&b)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "by_g still holds {found:?} after {SETTLED_WITHIN:?}"
        );
        tokio::time::sleep(POLL).await;
    }

    let mut seen = changes(&stream_records(&client, &streams, t, 3).await);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], change("INSERT", Some(&guard), None));
    // Items of one transaction may show in either order.
    seen[1..].sort();
    assert_eq!(
        seen[1..],
        [
            change("INSERT", Some(&a), None),
            change("INSERT", Some(&b), None),
        ]
    );

    // `a` as it is (no record), `b` changed (MODIFY), then a marker written
    // alone: nothing may come between the MODIFY and the marker.
    let b2 = item([("pk", s("b")), ("g", s("grp")), ("color", s("blue"))]);
    ok(transact(
        &client,
        vec![
            put(t, a.clone()),
            update(t, key("b"), "SET color = :c", None, &[(":c", s("blue"))]),
        ],
    )
    .send()
    .await);
    let marker = key("marker");
    put_item(&client, t, marker.clone()).await;
    let seen = changes(&stream_records(&client, &streams, t, 5).await);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(
        seen[3..],
        [
            change("MODIFY", Some(&b2), Some(&b)),
            change("INSERT", Some(&marker), None),
        ]
    );
}

// ---------------------------------------------------------------------------
// Capacity and item collections
// ---------------------------------------------------------------------------

/// `ConsumedCapacity` as (table, CapacityUnits, ReadCapacityUnits,
/// WriteCapacityUnits), by table.
fn capacity(consumed: &[ConsumedCapacity]) -> Vec<(String, f64, Option<f64>, Option<f64>)> {
    let mut out: Vec<_> = consumed
        .iter()
        .map(|c| {
            (
                c.table_name().unwrap_or_default().to_string(),
                c.capacity_units().unwrap_or(-1.0),
                c.read_capacity_units(),
                c.write_capacity_units(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Transactional writes cost two write units per started KB of the larger
/// of the old and new item, reported as one entry per table; item
/// collection metrics are reported for tables with local secondary
/// indexes only.
#[tokio::test]
async fn transactions_report_capacity_and_item_collections() {
    let client = shared_server().client();
    let (t, other) = ("txn-capacity", "txn-capacity-other");
    create_table(&client, t, Sat::S, None).await;
    create_table(&client, other, Sat::S, None).await;

    let small = |pk: &str| item([("pk", s(pk)), ("color", s("red"))]);
    let out = ok(
        transact(&client, vec![put(t, small("one")), put(t, small("two"))])
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await,
    );
    let t_name = t.to_string();
    assert_eq!(
        capacity(out.consumed_capacity()),
        [(t_name.clone(), 4.0, None, Some(4.0))]
    );

    // 1.5 KB: two started KB, twice. Shrinking it is charged at its old size.
    let big = item([("pk", s("big")), ("payload", s(&"x".repeat(1500)))]);
    let out = ok(transact(&client, vec![put(t, big), put(other, small("x"))])
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await);
    assert_eq!(
        capacity(out.consumed_capacity()),
        [
            (t_name.clone(), 4.0, None, Some(4.0)),
            (other.to_string(), 2.0, None, Some(2.0)),
        ]
    );
    let shrink = update(t, key("big"), "REMOVE payload", None, &[]);
    let out = ok(transact(&client, vec![shrink])
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await);
    assert_eq!(
        capacity(out.consumed_capacity()),
        [(t_name.clone(), 4.0, None, Some(4.0))]
    );
    let out = ok(transact(&client, vec![put(t, small("three"))])
        .return_consumed_capacity(ReturnConsumedCapacity::None)
        .send()
        .await);
    assert!(out.consumed_capacity().is_empty(), "{out:?}");

    let lsi_table = "txn-capacity-lsi";
    let by_lk = LocalSecondaryIndex::builder()
        .index_name("by_lk")
        .key_schema(key_element("pk", KeyType::Hash))
        .key_schema(key_element("lk", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .unwrap();
    ok(client
        .create_table()
        .table_name(lsi_table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .key_schema(key_element("sk", KeyType::Range))
        .attribute_definitions(attr_def("pk", Sat::S))
        .attribute_definitions(attr_def("sk", Sat::S))
        .attribute_definitions(attr_def("lk", Sat::S))
        .local_secondary_indexes(by_lk)
        .send()
        .await);
    wait_active(&client, lsi_table).await;
    let row = item([("pk", s("p")), ("sk", s("a")), ("lk", s("x"))]);
    let out = ok(
        transact(&client, vec![put(lsi_table, row), put(t, small("four"))])
            .return_item_collection_metrics(Ricm::Size)
            .send()
            .await,
    );
    let metrics = out
        .item_collection_metrics()
        .expect("ItemCollectionMetrics");
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        [lsi_table],
        "only tables with local indexes: {metrics:?}"
    );
    let collections = &metrics[lsi_table];
    assert_eq!(collections.len(), 1, "{collections:?}");
    assert_eq!(collections[0].item_collection_key(), Some(&key("p")));
    let range = collections[0].size_estimate_range_gb();
    let ordered = range.len() == 2 && 0.0 <= range[0] && range[0] < range[1];
    assert!(ordered, "SizeEstimateRangeGB {range:?}");
}

// ---------------------------------------------------------------------------
// TransactGetItems
// ---------------------------------------------------------------------------

/// TransactGetItems answers in request order across tables, with an entry
/// without Item for a missing item and the projection applied; it costs
/// two read units per started 4 KB per item (a missing one too), per table;
/// a key that does not fit its table cancels it with a ValidationError
/// reason; the request's own errors are DynamoDB's.
#[tokio::test]
async fn transactional_reads_answer_in_request_order() {
    let client = shared_server().client();
    let (hash, composite) = ("txn-get-hash", "txn-get-composite");
    create_table(&client, hash, Sat::S, None).await;
    create_table(&client, composite, Sat::S, Some(Sat::S)).await;
    let a = item([("pk", s("a")), ("color", s("red")), ("tally", n("1"))]);
    let big = item([("pk", s("big")), ("payload", s(&"x".repeat(5000)))]);
    let row = item([("pk", s("p")), ("sk", s("x")), ("note", s("hello"))]);
    put_item(&client, hash, a.clone()).await;
    put_item(&client, hash, big.clone()).await;
    put_item(&client, composite, row.clone()).await;

    let projected = Get::builder()
        .table_name(hash)
        .set_key(Some(key("a")))
        .projection_expression("color")
        .build()
        .unwrap();
    let out = ok(client
        .transact_get_items()
        .transact_items(get(composite, item([("pk", s("p")), ("sk", s("x"))])))
        .transact_items(get(hash, key("nope")))
        .transact_items(TransactGetItem::builder().get(projected).build())
        .transact_items(get(hash, key("big")))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await);
    let items: Vec<Option<&Item>> = out.responses().iter().map(|r| r.item()).collect();
    let color = item([("color", s("red"))]);
    assert_eq!(items, [Some(&row), None, Some(&color), Some(&big)]);
    // 2 (p/x) | 2 (missing) + 2 (a) + 4 (5 KB).
    assert_eq!(
        capacity(out.consumed_capacity()),
        [
            (composite.to_string(), 2.0, Some(2.0), None),
            (hash.to_string(), 8.0, Some(8.0), None),
        ]
    );

    let result = client
        .transact_get_items()
        .transact_items(get(hash, key("a")))
        .transact_items(get(hash, Item::new()))
        .send()
        .await;
    assert_reasons(&get_canceled(result), &["None", "ValidationError"]);

    let empty = client
        .transact_get_items()
        .set_transact_items(Some(Vec::new()))
        .send()
        .await;
    let message = "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1";
    assert_error(empty, VE, message);
    let missing = client
        .transact_get_items()
        .transact_items(get(hash, key("a")))
        .transact_items(get("txn-no-such-table", key("a")))
        .send()
        .await;
    assert_error(
        missing,
        "ResourceNotFoundException",
        "Requested resource not found",
    );
    let twice = client
        .transact_get_items()
        .transact_items(get(hash, key("a")))
        .transact_items(get(hash, key("a")))
        .send()
        .await;
    assert_eq!(api_error(twice).code, VE);
}
