//! Conditional writes against the real binary: ConditionExpression on
//! PutItem, DeleteItem and UpdateItem (every comparator, BETWEEN, IN, the
//! boolean operators and their precedence, every function, nested paths,
//! placeholders), conditions on missing items, ConditionalCheckFailedException
//! with and without the old item, the legacy `Expected` parameter, and the
//! request-level errors (mixing, placeholders, syntax, reserved words).
//!
//! Expectations come from DynamoDB's documentation and the research notes
//! (`/work/research/item-api-behaviour.md` §4, `dynamodb-behaviour.md` §0.1,
//! §4.7, §8.2): write operations put request-level validation errors in the
//! `1 validation error detected: ` envelope.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeAction, AttributeValue, AttributeValueUpdate, ComparisonOperator, ConditionalOperator,
    ExpectedAttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure as OnFailure,
    ScalarAttributeType as Sat,
};
use common::*;

type Item = HashMap<String, AttributeValue>;

const CCF: &str = "ConditionalCheckFailedException";
const CCF_MESSAGE: &str = "The conditional request failed";
const VE: &str = "ValidationException";

fn client() -> Client {
    shared_server().client()
}

/// `1 validation error detected: <message>`: the envelope of PutItem,
/// UpdateItem and DeleteItem request errors.
fn enveloped(message: &str) -> String {
    format!("1 validation error detected: {message}")
}

/// Expression placeholders of one request.
#[derive(Clone, Default)]
struct Ex {
    names: HashMap<String, String>,
    values: Item,
}

fn ex() -> Ex {
    Ex::default()
}

impl Ex {
    fn name(mut self, placeholder: &str, name: &str) -> Ex {
        self.names.insert(placeholder.to_string(), name.to_string());
        self
    }

    fn val(mut self, placeholder: &str, value: AttributeValue) -> Ex {
        self.values.insert(placeholder.to_string(), value);
        self
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<Item> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn ss(v: &[&str]) -> AttributeValue {
    AttributeValue::Ss(v.iter().map(|x| x.to_string()).collect())
}

fn ns(v: &[&str]) -> AttributeValue {
    AttributeValue::Ns(v.iter().map(|x| x.to_string()).collect())
}

fn bs(v: &[&[u8]]) -> AttributeValue {
    AttributeValue::Bs(
        v.iter()
            .map(|x| aws_sdk_dynamodb::primitives::Blob::new(x.to_vec()))
            .collect(),
    )
}

fn list(v: Vec<AttributeValue>) -> AttributeValue {
    AttributeValue::L(v)
}

fn map<const N: usize>(pairs: [(&str, AttributeValue); N]) -> AttributeValue {
    AttributeValue::M(item(pairs))
}

async fn put(client: &Client, table: &str, it: Item) {
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(it))
        .send()
        .await);
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

fn pk(v: &str) -> Item {
    item([("pk", s(v))])
}

/// PutItem of `it` under `condition`: `true` if it was written, `false` on
/// ConditionalCheckFailedException; any other answer fails the test.
async fn put_if(client: &Client, table: &str, it: &Item, condition: &str, x: &Ex) -> bool {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(it.clone()))
        .condition_expression(condition)
        .set_expression_attribute_names(x.names())
        .set_expression_attribute_values(x.values())
        .send()
        .await;
    match result {
        Ok(_) => true,
        Err(e) if e.code() == Some(CCF) => {
            assert_eq!(e.message(), Some(CCF_MESSAGE), "{condition}");
            false
        }
        Err(e) => panic!(
            "condition {condition:?}: unexpected error {:?}: {:?}",
            e.code(),
            e.message()
        ),
    }
}

/// Checks each `(condition, placeholders, expected)` against `stored` by
/// writing `stored` back under the condition; collects every mismatch so one
/// run shows them all.
async fn check_all(client: &Client, table: &str, stored: &Item, cases: &[(&str, Ex, bool)]) {
    put(client, table, stored.clone()).await;
    let mut wrong = Vec::new();
    for (condition, x, expected) in cases {
        let got = put_if(client, table, stored, condition, x).await;
        if got != *expected {
            wrong.push(format!("{condition:?} gave {got}, expected {expected}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "wrong condition results:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        get(client, table, pk("k")).await.as_ref(),
        Some(stored),
        "the item must be unchanged"
    );
}

/// The request-level error of a PutItem with this condition (on `table`,
/// which need not exist).
async fn put_condition_error(client: &Client, table: &str, condition: &str, x: &Ex) -> ApiError {
    api_error(
        client
            .put_item()
            .table_name(table)
            .set_item(Some(pk("k")))
            .condition_expression(condition)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .send()
            .await,
    )
}

// ---------------------------------------------------------------------------
// Comparators
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_comparator_on_numbers_strings_and_binaries() {
    let client = client();
    let table = "cond-comparators";
    create_table(&client, table, Sat::S, None).await;
    let stored = item([
        ("pk", s("k")),
        ("n", n("5")),
        ("ten", n("10")),
        ("s", s("m")),
        ("capital", s("M")),
        ("b", b(&[0x80])),
        ("tags", ss(&["a", "b"])),
        ("flag", AttributeValue::Bool(true)),
    ]);
    let v = |x: AttributeValue| ex().val(":v", x);
    let cases = [
        // = and <> on numbers compare by value, across spellings.
        ("n = :v", v(n("5")), true),
        ("n = :v", v(n("5.000")), true),
        ("n = :v", v(n("6")), false),
        ("n = :v", v(s("5")), false),
        ("n <> :v", v(n("5")), false),
        ("n <> :v", v(n("6")), true),
        ("n <> :v", v(s("5")), true),
        // < <= > >= on numbers: numeric order, not text order ("5" > "10").
        ("n < :v", v(n("6")), true),
        ("n < :v", v(n("5")), false),
        ("n < :v", v(n("10")), true),
        ("n < :v", v(s("9")), false),
        ("n <= :v", v(n("5")), true),
        ("n <= :v", v(n("4.99")), false),
        ("n > :v", v(n("4")), true),
        ("n > :v", v(n("5")), false),
        ("n > :v", v(n("-10")), true),
        ("n >= :v", v(n("5")), true),
        ("n >= :v", v(n("5.000001")), false),
        // Strings compare by UTF-8 bytes: "M" < "m", a prefix sorts first.
        ("s = :v", v(s("m")), true),
        ("s = :v", v(s("M")), false),
        ("s < :v", v(s("n")), true),
        ("s < :v", v(s("m")), false),
        ("s < :v", v(s("ma")), true),
        ("s > :v", v(s("M")), true),
        ("s > :v", v(s("z")), false),
        ("s >= :v", v(s("m")), true),
        ("s <= :v", v(s("l")), false),
        // Binaries compare as unsigned bytes.
        ("b = :v", v(b(&[0x80])), true),
        ("b > :v", v(b(&[0x7f])), true),
        ("b < :v", v(b(&[0x80, 0x00])), true),
        ("b >= :v", v(b(&[0x81])), false),
        // Two paths.
        ("n < ten", ex(), true),
        ("s > capital", ex(), true),
        ("n = s", ex(), false),
        ("n <> s", ex(), true),
        // A value on the left.
        (":v < n", v(n("4")), true),
        (":v > n", v(n("4")), false),
        // Booleans.
        ("flag = :v", v(AttributeValue::Bool(true)), true),
        ("flag = :v", v(AttributeValue::Bool(false)), false),
        ("flag <> :v", v(AttributeValue::Bool(false)), true),
        // Sets are equal whatever the order of their members.
        ("tags = :v", v(ss(&["b", "a"])), true),
        ("tags = :v", v(ss(&["a"])), false),
    ];
    check_all(&client, table, &stored, &cases).await;
}

/// The same conditions decide UpdateItem and DeleteItem: an update that
/// changes nothing (`REMOVE nope`) and a delete, each under the condition.
#[tokio::test]
async fn comparators_on_update_and_delete() {
    let client = client();
    let table = "cond-update-delete";
    create_table(&client, table, Sat::S, None).await;
    let stored = item([("pk", s("k")), ("n", n("5")), ("s", s("m"))]);
    let v = |x: AttributeValue| ex().val(":v", x);
    let cases = [
        ("n = :v", v(n("5")), true),
        ("n <> :v", v(n("5")), false),
        ("n < :v", v(n("10")), true),
        ("n <= :v", v(n("4")), false),
        ("n > :v", v(n("4")), true),
        ("n >= :v", v(n("6")), false),
        (
            "n BETWEEN :lo AND :hi",
            ex().val(":lo", n("5")).val(":hi", n("6")),
            true,
        ),
        (
            "n IN (:a, :b)",
            ex().val(":a", n("4")).val(":b", n("6")),
            false,
        ),
        ("begins_with(s, :v)", v(s("m")), true),
        (
            "attribute_exists(n) AND NOT attribute_exists(x)",
            ex(),
            true,
        ),
        (
            "s > :v OR n < :w",
            ex().val(":v", s("n")).val(":w", n("5")),
            false,
        ),
    ];
    let mut wrong = Vec::new();
    for (condition, x, expected) in &cases {
        put(&client, table, stored.clone()).await;
        let updated = client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .update_expression("REMOVE nope")
            .condition_expression(*condition)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .send()
            .await;
        let got = match updated {
            Ok(_) => true,
            Err(e) if e.code() == Some(CCF) => false,
            Err(e) => panic!("{condition:?}: {:?} {:?}", e.code(), e.message()),
        };
        if got != *expected {
            wrong.push(format!("UpdateItem {condition:?} gave {got}"));
        }
        let deleted = client
            .delete_item()
            .table_name(table)
            .key("pk", s("k"))
            .condition_expression(*condition)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .send()
            .await;
        let got = match deleted {
            Ok(_) => true,
            Err(e) if e.code() == Some(CCF) => false,
            Err(e) => panic!("{condition:?}: {:?} {:?}", e.code(), e.message()),
        };
        if got != *expected {
            wrong.push(format!("DeleteItem {condition:?} gave {got}"));
        }
        let left = get(&client, table, pk("k")).await;
        if left != (!expected).then(|| stored.clone()) {
            wrong.push(format!("{condition:?} left {left:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn between_and_in() {
    let client = client();
    let table = "cond-between-in";
    create_table(&client, table, Sat::S, None).await;
    let stored = item([("pk", s("k")), ("n", n("5")), ("s", s("m"))]);
    let range = |lo: AttributeValue, hi: AttributeValue| ex().val(":lo", lo).val(":hi", hi);
    let cases = [
        ("n BETWEEN :lo AND :hi", range(n("5"), n("5")), true),
        ("n BETWEEN :lo AND :hi", range(n("1"), n("5")), true),
        ("n BETWEEN :lo AND :hi", range(n("5"), n("9")), true),
        ("n BETWEEN :lo AND :hi", range(n("-1"), n("100")), true),
        ("n BETWEEN :lo AND :hi", range(n("6"), n("9")), false),
        ("n BETWEEN :lo AND :hi", range(n("1"), n("4")), false),
        ("s BETWEEN :lo AND :hi", range(s("a"), s("z")), true),
        ("s BETWEEN :lo AND :hi", range(s("ma"), s("z")), false),
        ("n BETWEEN :lo AND :hi", range(s("a"), s("z")), false),
        ("NOT n BETWEEN :lo AND :hi", range(n("6"), n("9")), true),
        (
            "n IN (:a, :b, :c)",
            ex().val(":a", n("1")).val(":b", n("5")).val(":c", n("9")),
            true,
        ),
        (
            "n IN (:a, :b)",
            ex().val(":a", n("1")).val(":b", n("2")),
            false,
        ),
        ("n IN (:a)", ex().val(":a", n("5.0")), true),
        ("n IN (:a)", ex().val(":a", s("5")), false),
        (
            "s IN (:a, :b)",
            ex().val(":a", s("x")).val(":b", s("m")),
            true,
        ),
        ("s IN (n, :v)", ex().val(":v", s("m")), true),
    ];
    check_all(&client, table, &stored, &cases).await;

    // Bounds in the wrong order or of different types are refused before the
    // item is read.
    let err = put_condition_error(
        &client,
        table,
        "n BETWEEN :lo AND :hi",
        &range(n("6"), n("4")),
    )
    .await;
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        (
            VE,
            enveloped(
                "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:6}, upper bound operand: AttributeValue: {N:4}"
            )
            .as_str()
        )
    );
    let err = put_condition_error(
        &client,
        table,
        "n BETWEEN :lo AND :hi",
        &range(n("1"), s("a")),
    )
    .await;
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        (
            VE,
            enveloped(
                "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}"
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn and_or_not_precedence_and_parentheses() {
    let client = client();
    let table = "cond-precedence";
    create_table(&client, table, Sat::S, None).await;
    let stored = item([("pk", s("k")), ("a", s("x")), ("b", s("y"))]);
    let xyz = || ex().val(":x", s("x")).val(":y", s("y")).val(":z", s("z"));
    let cases = [
        // AND binds tighter than OR: x OR (y AND z).
        ("a = :x OR a = :y AND b = :z", xyz(), true),
        ("(a = :x OR a = :y) AND b = :z", xyz(), false),
        ("b = :z AND a = :y OR a = :x", xyz(), true),
        ("b = :z AND (a = :y OR a = :x)", xyz(), false),
        // NOT binds tighter than AND and OR.
        (
            "NOT a = :y AND b = :z",
            ex().val(":y", s("y")).val(":z", s("z")),
            false,
        ),
        (
            "NOT (a = :y AND b = :z)",
            ex().val(":y", s("y")).val(":z", s("z")),
            true,
        ),
        (
            "NOT a = :x OR b = :y",
            ex().val(":x", s("x")).val(":y", s("y")),
            true,
        ),
        (
            "NOT (a = :x OR b = :y)",
            ex().val(":x", s("x")).val(":y", s("y")),
            false,
        ),
        (
            "a = :x AND NOT b = :y",
            ex().val(":x", s("x")).val(":y", s("y")),
            false,
        ),
        // Single parentheses around parts are fine.
        (
            "(a = :x) AND (b = :y)",
            ex().val(":x", s("x")).val(":y", s("y")),
            true,
        ),
        (
            "a = :x AND (b = :z OR attribute_exists(a))",
            ex().val(":x", s("x")).val(":z", s("z")),
            true,
        ),
        (
            "(a = :x AND b = :y)",
            ex().val(":x", s("x")).val(":y", s("y")),
            true,
        ),
        // Keywords are case-insensitive.
        (
            "a = :x and not b = :x or b = :x",
            ex().val(":x", s("x")),
            true,
        ),
    ];
    check_all(&client, table, &stored, &cases).await;

    let err = put_condition_error(&client, table, "((a = :x))", &ex().val(":x", s("x"))).await;
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        (
            VE,
            enveloped("Invalid ConditionExpression: The expression has redundant parentheses;")
                .as_str()
        )
    );
}

// ---------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_function() {
    let client = client();
    let table = "cond-functions";
    create_table(&client, table, Sat::S, None).await;
    let stored = item([
        ("pk", s("k")),
        ("s", s("Hello wörld")),
        ("u", s("é𝄞")),
        ("blank", s("")),
        ("n", n("5")),
        ("b", b(&[1, 2, 3])),
        ("bool", AttributeValue::Bool(true)),
        ("nul", AttributeValue::Null(true)),
        ("ss", ss(&["a", "b"])),
        ("ns", ns(&["1", "2"])),
        ("bs", bs(&[&[1], &[2]])),
        ("l", list(vec![s("x"), n("1"), list(vec![s("y")])])),
        ("m", map([("k", s("v")), ("k2", s("w"))])),
    ]);
    let v = |x: AttributeValue| ex().val(":v", x);
    let t = |name: &str| ex().val(":t", s(name));
    let mut cases = vec![
        ("attribute_exists(s)", ex(), true),
        ("attribute_exists(nope)", ex(), false),
        ("attribute_not_exists(nope)", ex(), true),
        ("attribute_not_exists(s)", ex(), false),
        ("attribute_exists(nul)", ex(), true),
        ("attribute_exists(blank)", ex(), true),
        // attribute_type for every type, and a mismatch.
        ("attribute_type(s, :t)", t("S"), true),
        ("attribute_type(n, :t)", t("N"), true),
        ("attribute_type(b, :t)", t("B"), true),
        ("attribute_type(bool, :t)", t("BOOL"), true),
        ("attribute_type(nul, :t)", t("NULL"), true),
        ("attribute_type(ss, :t)", t("SS"), true),
        ("attribute_type(ns, :t)", t("NS"), true),
        ("attribute_type(bs, :t)", t("BS"), true),
        ("attribute_type(l, :t)", t("L"), true),
        ("attribute_type(m, :t)", t("M"), true),
        ("attribute_type(s, :t)", t("N"), false),
        ("attribute_type(ss, :t)", t("S"), false),
        ("attribute_type(nope, :t)", t("S"), false),
        // begins_with on strings (bytes, case-sensitive) and binaries.
        ("begins_with(s, :v)", v(s("Hel")), true),
        ("begins_with(s, :v)", v(s("Hello wö")), true),
        ("begins_with(s, :v)", v(s("hel")), false),
        ("begins_with(s, :v)", v(s("Hello world")), false),
        ("begins_with(b, :v)", v(b(&[1, 2])), true),
        ("begins_with(b, :v)", v(b(&[2])), false),
        ("begins_with(n, :v)", v(s("5")), false),
        // contains: substring, set member, list element, binary subsequence.
        ("contains(s, :v)", v(s("wör")), true),
        ("contains(s, :v)", v(s("xyz")), false),
        ("contains(ss, :v)", v(s("a")), true),
        ("contains(ss, :v)", v(s("c")), false),
        ("contains(ns, :v)", v(n("2")), true),
        ("contains(ns, :v)", v(n("3")), false),
        ("contains(bs, :v)", v(b(&[2])), true),
        ("contains(l, :v)", v(s("x")), true),
        ("contains(l, :v)", v(n("1")), true),
        ("contains(l, :v)", v(s("y")), false),
        ("contains(b, :v)", v(b(&[2, 3])), true),
        ("contains(b, :v)", v(b(&[3, 2])), false),
        ("contains(n, :v)", v(n("5")), false),
        ("contains(m, :v)", v(s("k")), false),
        ("NOT contains(s, :v)", v(s("xyz")), true),
        // size: UTF-8 bytes of S, bytes of B, members of sets, elements of
        // L and M.
        // size of a string counts UTF-16 code units, as DynamoDB does
        // (verified against the service: size("é𝄞") = 3; ExtendDB #60).
        ("size(s) = :v", v(n("11")), true),
        ("size(s) = :v", v(n("12")), false),
        ("size(u) = :v", v(n("3")), true),
        ("size(u) = :v", v(n("6")), false),
        ("size(blank) = :v", v(n("0")), true),
        ("size(b) = :v", v(n("3")), true),
        ("size(ss) = :v", v(n("2")), true),
        ("size(ns) = :v", v(n("2")), true),
        ("size(bs) = :v", v(n("2")), true),
        ("size(l) = :v", v(n("3")), true),
        ("size(m) = :v", v(n("2")), true),
        ("size(l) > :v", v(n("2")), true),
        ("size(l) < :v", v(n("3")), false),
        (
            "size(s) BETWEEN :lo AND :hi",
            ex().val(":lo", n("10")).val(":hi", n("11")),
            true,
        ),
        ("size(m) < size(l)", ex(), true),
        ("size(n) >= :v", v(n("0")), false),
        ("size(bool) >= :v", v(n("0")), false),
        ("size(nope) >= :v", v(n("0")), false),
        ("NOT size(nope) >= :v", v(n("0")), true),
    ];
    cases.push((
        "size(s) IN (:a, :b)",
        ex().val(":a", n("1")).val(":b", n("11")),
        true,
    ));
    check_all(&client, table, &stored, &cases).await;
}

#[tokio::test]
async fn nested_paths_and_name_placeholders() {
    let client = client();
    let table = "cond-paths";
    create_table(&client, table, Sat::S, None).await;
    let stored = item([
        ("pk", s("k")),
        (
            "a",
            map([(
                "b",
                list(vec![
                    map([("c", n("1"))]),
                    map([("c", n("2")), ("d", s("x"))]),
                ]),
            )]),
        ),
        // A top-level attribute whose name contains a dot.
        ("a.b", s("literal")),
        ("status", s("on")),
        ("l", list(vec![list(vec![s("deep")])])),
    ]);
    let two = || ex().val(":v", n("2"));
    let cases = [
        ("a.b[1].c = :v", two(), true),
        ("a.b[0].c = :v", two(), false),
        ("a.b[1].c > a.b[0].c", ex(), true),
        ("attribute_exists(a.b[1].d)", ex(), true),
        ("attribute_not_exists(a.b[0].d)", ex(), true),
        ("attribute_not_exists(a.b[5])", ex(), true),
        ("attribute_exists(a.b[5].c)", ex(), false),
        ("attribute_exists(a.b[1].c.z)", ex(), false),
        ("attribute_exists(a[0])", ex(), false),
        ("attribute_exists(a.b.c)", ex(), false),
        ("size(a.b) = :v", two(), true),
        ("l[0][0] = :v", ex().val(":v", s("deep")), true),
        ("attribute_type(a.b[1], :t)", ex().val(":t", s("M")), true),
        // `a.b` in an expression is a path; the dotted name needs a
        // placeholder.
        ("a.b = :v", ex().val(":v", s("literal")), false),
        (
            "#ab = :v",
            ex().name("#ab", "a.b").val(":v", s("literal")),
            true,
        ),
        (
            "#a.#b[1].#c = :v",
            ex().name("#a", "a")
                .name("#b", "b")
                .name("#c", "c")
                .val(":v", n("2")),
            true,
        ),
        (
            "#a.b[1].d = :v",
            ex().name("#a", "a").val(":v", s("x")),
            true,
        ),
        // A reserved word through a placeholder; one placeholder used twice.
        (
            "#st = :on AND attribute_type(#st, :t)",
            ex().name("#st", "status")
                .val(":on", s("on"))
                .val(":t", s("S")),
            true,
        ),
        (
            "#st = :off",
            ex().name("#st", "status").val(":off", s("off")),
            false,
        ),
    ];
    check_all(&client, table, &stored, &cases).await;
}

// ---------------------------------------------------------------------------
// Missing items, failures, returned items
// ---------------------------------------------------------------------------

#[tokio::test]
async fn conditions_on_a_missing_item() {
    let client = client();
    let table = "cond-missing";
    create_table(&client, table, Sat::S, None).await;
    let v = |x: AttributeValue| ex().val(":v", x);
    // What each condition gives when the item does not exist: only
    // attribute_not_exists, <> and negations hold.
    let cases = [
        ("attribute_not_exists(pk)", ex(), true),
        ("attribute_not_exists(x)", ex(), true),
        ("x <> :v", v(s("a")), true),
        ("NOT attribute_exists(x)", ex(), true),
        ("NOT x = :v", v(s("a")), true),
        (
            "#s <> :v OR #u < :t",
            ex().name("#s", "state")
                .name("#u", "updated")
                .val(":v", s("x"))
                .val(":t", n("1")),
            true,
        ),
        ("attribute_exists(pk)", ex(), false),
        ("attribute_exists(x)", ex(), false),
        ("x = :v", v(s("a")), false),
        ("x < :v", v(n("1")), false),
        ("x <= :v", v(n("1")), false),
        ("x > :v", v(n("1")), false),
        ("x >= :v", v(n("1")), false),
        (
            "x BETWEEN :lo AND :hi",
            ex().val(":lo", n("1")).val(":hi", n("2")),
            false,
        ),
        ("x IN (:v)", v(n("1")), false),
        ("begins_with(x, :v)", v(s("a")), false),
        ("contains(x, :v)", v(s("a")), false),
        ("attribute_type(x, :v)", v(s("S")), false),
        ("size(x) >= :v", v(n("0")), false),
        ("pk = :v", v(s("ghost-pk")), false),
    ];
    let mut wrong = Vec::new();
    for (i, (condition, x, expected)) in cases.iter().enumerate() {
        let key = format!("ghost-{i}");
        let it = item([("pk", s(&key)), ("marker", n(&i.to_string()))]);
        let got = put_if(&client, table, &it, condition, x).await;
        if got != *expected {
            wrong.push(format!("{condition:?} gave {got}, expected {expected}"));
        }
        let stored = get(&client, table, pk(&key)).await;
        let want = expected.then(|| it.clone());
        if stored != want {
            wrong.push(format!("{condition:?} left {stored:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // DeleteItem and UpdateItem read a missing item the same way.
    assert_error(
        client
            .delete_item()
            .table_name(table)
            .key("pk", s("nobody"))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await,
        CCF,
        CCF_MESSAGE,
    );
    ok(client
        .delete_item()
        .table_name(table)
        .key("pk", s("nobody"))
        .condition_expression("x <> :v")
        .expression_attribute_values(":v", s("a"))
        .send()
        .await);
    assert_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("nobody"))
            .update_expression("SET a = :v")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":v", s("a"))
            .send()
            .await,
        CCF,
        CCF_MESSAGE,
    );
    assert_eq!(
        get(&client, table, pk("nobody")).await,
        None,
        "a failed condition creates no item"
    );
    ok(client
        .update_item()
        .table_name(table)
        .key("pk", s("somebody"))
        .update_expression("SET a = :v")
        .condition_expression("attribute_not_exists(pk)")
        .expression_attribute_values(":v", s("a"))
        .send()
        .await);
    assert_eq!(
        get(&client, table, pk("somebody")).await,
        Some(item([("pk", s("somebody")), ("a", s("a"))]))
    );
}

#[tokio::test]
async fn a_failed_condition_writes_nothing_and_a_true_one_writes() {
    let client = client();
    let table = "cond-effects";
    create_table(&client, table, Sat::S, Some(Sat::N)).await;
    let key = item([("pk", s("k")), ("sk", n("1"))]);
    let original = item([("pk", s("k")), ("sk", n("1")), ("v", n("1"))]);
    put(&client, table, original.clone()).await;

    // PutItem
    assert_error(
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item([("pk", s("k")), ("sk", n("1")), ("v", n("2"))])))
            .condition_expression("v = :two")
            .expression_attribute_values(":two", n("2"))
            .send()
            .await,
        CCF,
        CCF_MESSAGE,
    );
    assert_eq!(
        get(&client, table, key.clone()).await,
        Some(original.clone())
    );
    // UpdateItem
    assert_error(
        client
            .update_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .update_expression("SET v = :two, w = :two")
            .condition_expression("v > :two")
            .expression_attribute_values(":two", n("2"))
            .send()
            .await,
        CCF,
        CCF_MESSAGE,
    );
    assert_eq!(
        get(&client, table, key.clone()).await,
        Some(original.clone())
    );
    // DeleteItem
    assert_error(
        client
            .delete_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .condition_expression("attribute_not_exists(v)")
            .send()
            .await,
        CCF,
        CCF_MESSAGE,
    );
    assert_eq!(
        get(&client, table, key.clone()).await,
        Some(original.clone())
    );

    // The same three with conditions that hold.
    let replaced = item([("pk", s("k")), ("sk", n("1")), ("v", n("2"))]);
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(replaced.clone()))
        .condition_expression("v = :one AND sk = :one")
        .expression_attribute_values(":one", n("1"))
        .send()
        .await);
    assert_eq!(get(&client, table, key.clone()).await, Some(replaced));
    ok(client
        .update_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .update_expression("SET v = v + :one")
        .condition_expression("v = :two")
        .expression_attribute_values(":one", n("1"))
        .expression_attribute_values(":two", n("2"))
        .send()
        .await);
    assert_eq!(
        get(&client, table, key.clone()).await,
        Some(item([("pk", s("k")), ("sk", n("1")), ("v", n("3"))]))
    );
    ok(client
        .delete_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .condition_expression("v = :three")
        .expression_attribute_values(":three", n("3"))
        .send()
        .await);
    assert_eq!(get(&client, table, key).await, None);
}

#[tokio::test]
async fn conditional_check_failure_returns_the_old_item_on_request() {
    let client = client();
    let table = "cond-return-old";
    create_table(&client, table, Sat::S, None).await;
    let old = item([
        ("pk", s("k")),
        ("v", n("1")),
        ("m", map([("x", ss(&["p"]))])),
    ]);
    put(&client, table, old.clone()).await;

    // PutItem with ALL_OLD: the item is on the error.
    let err = client
        .put_item()
        .table_name(table)
        .set_item(Some(pk("k")))
        .condition_expression("v = :v")
        .expression_attribute_values(":v", n("2"))
        .return_values_on_condition_check_failure(OnFailure::AllOld)
        .send()
        .await
        .expect_err("condition fails");
    match err.into_service_error() {
        PutItemError::ConditionalCheckFailedException(e) => {
            assert_eq!(e.message(), Some(CCF_MESSAGE));
            assert_eq!(e.item, Some(old.clone()));
        }
        other => panic!("unexpected error {other:?}"),
    }
    // NONE, or nothing: no item.
    for on_failure in [Some(OnFailure::None), None] {
        let err = client
            .put_item()
            .table_name(table)
            .set_item(Some(pk("k")))
            .condition_expression("attribute_not_exists(pk)")
            .set_return_values_on_condition_check_failure(on_failure)
            .send()
            .await
            .expect_err("condition fails");
        match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(e) => assert_eq!(e.item, None),
            other => panic!("unexpected error {other:?}"),
        }
    }
    // UpdateItem and DeleteItem carry it too.
    let err = client
        .update_item()
        .table_name(table)
        .key("pk", s("k"))
        .update_expression("SET v = :v")
        .condition_expression("v = :v")
        .expression_attribute_values(":v", n("2"))
        .return_values_on_condition_check_failure(OnFailure::AllOld)
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .expect_err("condition fails");
    match err.into_service_error() {
        UpdateItemError::ConditionalCheckFailedException(e) => {
            assert_eq!(e.item, Some(old.clone()))
        }
        other => panic!("unexpected error {other:?}"),
    }
    let err = client
        .delete_item()
        .table_name(table)
        .key("pk", s("k"))
        .condition_expression("attribute_not_exists(v)")
        .return_values_on_condition_check_failure(OnFailure::AllOld)
        .send()
        .await
        .expect_err("condition fails");
    match err.into_service_error() {
        DeleteItemError::ConditionalCheckFailedException(e) => {
            assert_eq!(e.item, Some(old.clone()))
        }
        other => panic!("unexpected error {other:?}"),
    }
    // With the legacy Expected as well.
    let err = client
        .delete_item()
        .table_name(table)
        .key("pk", s("k"))
        .expected("v", ExpectedAttributeValue::builder().value(n("7")).build())
        .return_values_on_condition_check_failure(OnFailure::AllOld)
        .send()
        .await
        .expect_err("condition fails");
    match err.into_service_error() {
        DeleteItemError::ConditionalCheckFailedException(e) => {
            assert_eq!(e.item, Some(old.clone()))
        }
        other => panic!("unexpected error {other:?}"),
    }
    // No item to return when there was none.
    let err = client
        .update_item()
        .table_name(table)
        .key("pk", s("absent"))
        .update_expression("SET v = :v")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":v", n("2"))
        .return_values_on_condition_check_failure(OnFailure::AllOld)
        .send()
        .await
        .expect_err("condition fails");
    match err.into_service_error() {
        UpdateItemError::ConditionalCheckFailedException(e) => assert_eq!(e.item, None),
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(get(&client, table, pk("k")).await, Some(old));
    assert_eq!(get(&client, table, pk("absent")).await, None);
}

// ---------------------------------------------------------------------------
// Legacy Expected
// ---------------------------------------------------------------------------

fn expect_value(v: AttributeValue) -> ExpectedAttributeValue {
    ExpectedAttributeValue::builder().value(v).build()
}

fn expect_exists(exists: bool) -> ExpectedAttributeValue {
    ExpectedAttributeValue::builder().exists(exists).build()
}

fn expect_op(op: ComparisonOperator, args: Vec<AttributeValue>) -> ExpectedAttributeValue {
    ExpectedAttributeValue::builder()
        .comparison_operator(op)
        .set_attribute_value_list((!args.is_empty()).then_some(args))
        .build()
}

#[tokio::test]
async fn legacy_expected() {
    use ComparisonOperator as Op;
    let client = client();
    let table = "cond-expected";
    create_table(&client, table, Sat::S, None).await;
    let stored = item([
        ("pk", s("k")),
        ("n", n("5")),
        ("s", s("abc")),
        ("ss", ss(&["a", "b"])),
    ]);
    put(&client, table, stored.clone()).await;
    type Case = (
        Vec<(&'static str, ExpectedAttributeValue)>,
        Option<ConditionalOperator>,
        bool,
    );
    let one = |name: &'static str,
               e: ExpectedAttributeValue|
     -> Vec<(&'static str, ExpectedAttributeValue)> { vec![(name, e)] };
    let cases: Vec<Case> = vec![
        (one("n", expect_value(n("5"))), None, true),
        (one("n", expect_value(n("6"))), None, false),
        (
            one(
                "n",
                ExpectedAttributeValue::builder()
                    .value(n("5"))
                    .exists(true)
                    .build(),
            ),
            None,
            true,
        ),
        (one("nope", expect_exists(false)), None, true),
        (one("n", expect_exists(false)), None, false),
        (one("n", expect_op(Op::Eq, vec![n("5")])), None, true),
        (one("n", expect_op(Op::Ne, vec![n("5")])), None, false),
        (one("n", expect_op(Op::Ne, vec![n("6")])), None, true),
        (one("n", expect_op(Op::Lt, vec![n("6")])), None, true),
        (one("n", expect_op(Op::Lt, vec![n("5")])), None, false),
        (one("n", expect_op(Op::Le, vec![n("5")])), None, true),
        (one("n", expect_op(Op::Gt, vec![n("5")])), None, false),
        (one("n", expect_op(Op::Gt, vec![n("4")])), None, true),
        (one("n", expect_op(Op::Ge, vec![n("5")])), None, true),
        (
            one("n", expect_op(Op::Between, vec![n("1"), n("5")])),
            None,
            true,
        ),
        (
            one("n", expect_op(Op::Between, vec![n("6"), n("9")])),
            None,
            false,
        ),
        (
            one("n", expect_op(Op::In, vec![n("1"), n("5")])),
            None,
            true,
        ),
        (
            one("n", expect_op(Op::In, vec![n("1"), n("2")])),
            None,
            false,
        ),
        (
            one("s", expect_op(Op::BeginsWith, vec![s("ab")])),
            None,
            true,
        ),
        (
            one("s", expect_op(Op::BeginsWith, vec![s("b")])),
            None,
            false,
        ),
        (one("s", expect_op(Op::Contains, vec![s("bc")])), None, true),
        (one("ss", expect_op(Op::Contains, vec![s("a")])), None, true),
        (
            one("ss", expect_op(Op::Contains, vec![s("z")])),
            None,
            false,
        ),
        (
            one("s", expect_op(Op::NotContains, vec![s("z")])),
            None,
            true,
        ),
        (
            one("s", expect_op(Op::NotContains, vec![s("b")])),
            None,
            false,
        ),
        (one("nope", expect_op(Op::Null, vec![])), None, true),
        (one("n", expect_op(Op::Null, vec![])), None, false),
        (one("n", expect_op(Op::NotNull, vec![])), None, true),
        (one("nope", expect_op(Op::NotNull, vec![])), None, false),
        // Several conditions: AND unless ConditionalOperator says OR.
        (
            vec![("n", expect_value(n("5"))), ("s", expect_value(s("zzz")))],
            None,
            false,
        ),
        (
            vec![("n", expect_value(n("5"))), ("s", expect_value(s("zzz")))],
            Some(ConditionalOperator::And),
            false,
        ),
        (
            vec![("n", expect_value(n("5"))), ("s", expect_value(s("zzz")))],
            Some(ConditionalOperator::Or),
            true,
        ),
        (
            vec![("n", expect_value(n("6"))), ("s", expect_value(s("zzz")))],
            Some(ConditionalOperator::Or),
            false,
        ),
        (
            vec![("n", expect_value(n("5"))), ("s", expect_value(s("abc")))],
            None,
            true,
        ),
    ];
    let mut wrong = Vec::new();
    for (i, (expected_map, operator, want)) in cases.into_iter().enumerate() {
        let result = client
            .put_item()
            .table_name(table)
            .set_item(Some(stored.clone()))
            .set_expected(Some(
                expected_map
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ))
            .set_conditional_operator(operator)
            .send()
            .await;
        let got = match result {
            Ok(_) => true,
            Err(e) if e.code() == Some(CCF) => false,
            Err(e) => panic!(
                "case {i}: unexpected error {:?}: {:?}",
                e.code(),
                e.message()
            ),
        };
        if got != want {
            wrong.push(format!(
                "case {i} {expected_map:?} gave {got}, expected {want}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Expected on UpdateItem and DeleteItem.
    assert_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .attribute_updates(
                "n",
                AttributeValueUpdate::builder()
                    .action(AttributeAction::Put)
                    .value(n("9"))
                    .build(),
            )
            .expected("n", expect_op(Op::Gt, vec![n("5")]))
            .send()
            .await,
        CCF,
        CCF_MESSAGE,
    );
    assert_error(
        client
            .delete_item()
            .table_name(table)
            .key("pk", s("k"))
            .expected("s", expect_exists(false))
            .send()
            .await,
        CCF,
        CCF_MESSAGE,
    );
    assert_eq!(get(&client, table, pk("k")).await, Some(stored));
    ok(client
        .delete_item()
        .table_name(table)
        .key("pk", s("k"))
        .expected("s", expect_value(s("abc")))
        .send()
        .await);
    assert_eq!(get(&client, table, pk("k")).await, None);
    // On a missing item, Exists false holds and a Value does not.
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(pk("fresh")))
        .expected("pk", expect_exists(false))
        .send()
        .await);
    assert_error(
        client
            .put_item()
            .table_name(table)
            .set_item(Some(pk("fresh2")))
            .expected("pk", expect_value(s("fresh2")))
            .send()
            .await,
        CCF,
        CCF_MESSAGE,
    );
    assert_eq!(get(&client, table, pk("fresh2")).await, None);
}

#[tokio::test]
async fn legacy_expected_errors() {
    let client = client();
    let table = "cond-expected-errors";
    create_table(&client, table, Sat::S, None).await;
    let cases = [
        (
            ExpectedAttributeValue::builder().exists(true).build(),
            "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a",
        ),
        (
            ExpectedAttributeValue::builder()
                .exists(false)
                .value(s("x"))
                .build(),
            "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: a",
        ),
        (
            ExpectedAttributeValue::builder()
                .exists(true)
                .comparison_operator(ComparisonOperator::Eq)
                .attribute_value_list(s("x"))
                .build(),
            "One or more parameter values were invalid: Exists and ComparisonOperator cannot be used together for Attribute: a",
        ),
        (
            ExpectedAttributeValue::builder()
                .comparison_operator(ComparisonOperator::Between)
                .attribute_value_list(s("x"))
                .build(),
            "One or more parameter values were invalid: Invalid number of argument(s) for the BETWEEN ComparisonOperator",
        ),
    ];
    for (expected, message) in cases {
        // Refused before the table is looked up, and on an existing table.
        for t in [table, "cond-expected-no-such-table"] {
            assert_error(
                client
                    .put_item()
                    .table_name(t)
                    .set_item(Some(pk("k")))
                    .expected("a", expected.clone())
                    .send()
                    .await,
                VE,
                &enveloped(message),
            );
        }
    }
    assert_eq!(get(&client, table, pk("k")).await, None);
}

// ---------------------------------------------------------------------------
// Request-level errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn expression_and_legacy_parameters_do_not_mix() {
    let client = client();
    let table = "cond-mixing";
    create_table(&client, table, Sat::S, None).await;
    let mixing = |legacy: &str, expressions: &str| {
        enveloped(&format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{legacy}}} Expression parameters: {{{expressions}}}"
        ))
    };
    assert_error(
        client
            .put_item()
            .table_name(table)
            .set_item(Some(pk("k")))
            .condition_expression("attribute_exists(a)")
            .expected("a", expect_exists(false))
            .send()
            .await,
        VE,
        &mixing("Expected", "ConditionExpression"),
    );
    assert_error(
        client
            .delete_item()
            .table_name(table)
            .key("pk", s("k"))
            .condition_expression("attribute_exists(a)")
            .expected("a", expect_exists(false))
            .send()
            .await,
        VE,
        &mixing("Expected", "ConditionExpression"),
    );
    let put_update = AttributeValueUpdate::builder()
        .action(AttributeAction::Put)
        .value(s("x"))
        .build();
    assert_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .attribute_updates("a", put_update.clone())
            .update_expression("SET b = :v")
            .expression_attribute_values(":v", s("x"))
            .send()
            .await,
        VE,
        &mixing("AttributeUpdates", "UpdateExpression"),
    );
    assert_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .attribute_updates("a", put_update.clone())
            .condition_expression("attribute_exists(a)")
            .send()
            .await,
        VE,
        &mixing("AttributeUpdates", "ConditionExpression"),
    );
    assert_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .attribute_updates("a", put_update)
            .expected("a", expect_exists(false))
            .update_expression("SET b = :v")
            .condition_expression("attribute_exists(a)")
            .expression_attribute_values(":v", s("x"))
            .send()
            .await,
        VE,
        &mixing(
            "AttributeUpdates, Expected",
            "UpdateExpression, ConditionExpression",
        ),
    );
    assert_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .expected("a", expect_exists(false))
            .update_expression("SET b = :v")
            .expression_attribute_values(":v", s("x"))
            .send()
            .await,
        VE,
        &mixing("Expected", "UpdateExpression"),
    );
    // Placeholders without any expression.
    assert_error(
        client
            .put_item()
            .table_name(table)
            .set_item(Some(pk("k")))
            .expression_attribute_names("#a", "a")
            .send()
            .await,
        VE,
        &enveloped("ExpressionAttributeNames can only be specified when using expressions"),
    );
    assert_eq!(get(&client, table, pk("k")).await, None);
}

/// The new validation cohort words this without the "...: ConditionExpression
/// is null" tail of the classic one (dynamodb-behaviour.md §0.1, captured).
#[tokio::test]
async fn values_without_an_expression_are_refused() {
    let client = client();
    let table = "cond-values-no-expression";
    create_table(&client, table, Sat::S, None).await;
    let message =
        enveloped("ExpressionAttributeValues can only be specified when using expressions");
    assert_error(
        client
            .put_item()
            .table_name(table)
            .set_item(Some(pk("k")))
            .expression_attribute_values(":a", s("a"))
            .send()
            .await,
        VE,
        &message,
    );
    assert_error(
        client
            .delete_item()
            .table_name(table)
            .key("pk", s("k"))
            .expected("a", expect_exists(false))
            .expression_attribute_values(":a", s("a"))
            .send()
            .await,
        VE,
        &message,
    );
    assert_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .expression_attribute_values(":a", s("a"))
            .send()
            .await,
        VE,
        &message,
    );
    assert_eq!(get(&client, table, pk("k")).await, None);
}

#[tokio::test]
async fn unused_and_undefined_placeholders() {
    let client = client();
    let table = "cond-placeholders";
    create_table(&client, table, Sat::S, None).await;
    let cases = [
        (
            "attribute_exists(a)",
            ex().name("#unused", "a"),
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}",
        ),
        (
            "attribute_exists(a)",
            ex().val(":unused", s("a")),
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
        ),
        (
            "a = :v",
            ex().val(":w", s("a")),
            "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v",
        ),
        (
            "#x = :v",
            ex().name("#y", "a").val(":v", s("a")),
            "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #x",
        ),
        (
            "a = :v",
            ex(),
            "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v",
        ),
    ];
    // The same answers whether or not the table exists: these precede the
    // table lookup.
    for t in [table, "cond-placeholders-no-such-table"] {
        for (condition, x, message) in &cases {
            let err = put_condition_error(&client, t, condition, x).await;
            assert_eq!(
                (err.code.as_str(), err.message.as_str()),
                (VE, enveloped(message).as_str()),
                "{condition:?} on {t}"
            );
        }
    }
    // Malformed placeholder maps.
    let malformed = [
        (
            Some(HashMap::from([("a".to_string(), "a".to_string())])),
            None,
            "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\"",
        ),
        (
            None,
            Some(item([("v", s("x"))])),
            "ExpressionAttributeValues contains invalid key: Syntax error; key: \"v\"",
        ),
        (
            Some(HashMap::new()),
            None,
            "ExpressionAttributeNames must not be empty",
        ),
        (
            None,
            Some(HashMap::new()),
            "ExpressionAttributeValues must not be empty",
        ),
    ];
    for (names, values, message) in malformed {
        assert_error(
            client
                .put_item()
                .table_name(table)
                .set_item(Some(pk("k")))
                .condition_expression("attribute_not_exists(a)")
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .send()
                .await,
            VE,
            &enveloped(message),
        );
    }
    // DeleteItem and UpdateItem alike.
    assert_error(
        client
            .delete_item()
            .table_name(table)
            .key("pk", s("k"))
            .condition_expression("attribute_exists(#a)")
            .expression_attribute_names("#a", "a")
            .expression_attribute_names("#b", "b")
            .send()
            .await,
        VE,
        &enveloped("Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"),
    );
    assert_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .update_expression("SET a = :a")
            .condition_expression("b = :v")
            .expression_attribute_values(":a", s("a"))
            .send()
            .await,
        VE,
        &enveloped(
            "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v",
        ),
    );
    assert_eq!(get(&client, table, pk("k")).await, None);
}

#[tokio::test]
async fn syntax_errors_and_reserved_words() {
    let client = client();
    let table = "cond-syntax";
    create_table(&client, table, Sat::S, None).await;
    let v = |x: AttributeValue| ex().val(":v", x);
    let cases = [
        ("", ex(), "The expression can not be empty;"),
        (
            "a = = b",
            ex(),
            "Syntax error; token: \"=\", near: \"= = b\"",
        ),
        (
            "((a = :v))",
            v(s("x")),
            "The expression has redundant parentheses;",
        ),
        (
            "status = :v",
            v(s("x")),
            "Attribute name is a reserved keyword; reserved keyword: status",
        ),
        ("foo(a)", ex(), "Invalid function name; function: foo"),
        (
            "size(a)",
            ex(),
            "The function is not allowed to be used this way in an expression; function: size",
        ),
        (
            "attribute_exists(a, b)",
            ex(),
            "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2",
        ),
        (
            "attribute_exists(:v)",
            v(s("x")),
            "Operator or function requires a document path; operator or function: attribute_exists",
        ),
        (
            "size(:v) > a",
            v(n("1")),
            "Incorrect operand type for operator or function; operator or function: size, operand type: N",
        ),
        (
            "begins_with(a, :v)",
            v(n("1")),
            "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
        ),
        (
            "attribute_type(a, :v)",
            v(n("1")),
            "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
        ),
        (
            "a = a",
            ex(),
            "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]",
        ),
    ];
    let mut wrong = Vec::new();
    for t in [table, "cond-syntax-no-such-table"] {
        for (condition, x, message) in &cases {
            let want = enveloped(&format!("Invalid ConditionExpression: {message}"));
            let err = put_condition_error(&client, t, condition, x).await;
            if (err.code.as_str(), err.message.as_str()) != (VE, want.as_str()) {
                wrong.push(format!(
                    "{condition:?} on {t}:\n  got  {}: {}\n  want {VE}: {want}",
                    err.code, err.message
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // A reserved word is fine through a placeholder.
    ok(client
        .put_item()
        .table_name(table)
        .set_item(Some(pk("k")))
        .condition_expression("attribute_not_exists(#status)")
        .expression_attribute_names("#status", "status")
        .send()
        .await);
    // DeleteItem and UpdateItem report the same way.
    assert_error(
        client
            .delete_item()
            .table_name(table)
            .key("pk", s("k"))
            .condition_expression("a = = b")
            .send()
            .await,
        VE,
        &enveloped("Invalid ConditionExpression: Syntax error; token: \"=\", near: \"= = b\""),
    );
    assert_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .update_expression("SET a = :v")
            .condition_expression("")
            .expression_attribute_values(":v", s("x"))
            .send()
            .await,
        VE,
        &enveloped("Invalid ConditionExpression: The expression can not be empty;"),
    );
    assert_eq!(get(&client, table, pk("k")).await, Some(pk("k")));
}

/// The list of valid type names, in the order the service prints it
/// (item-api-behaviour.md §4.3; medium confidence).
#[tokio::test]

async fn attribute_type_of_an_unknown_type_is_refused() {
    let client = client();
    let err = put_condition_error(
        &client,
        "cond-attribute-type-no-such-table",
        "attribute_type(a, :v)",
        &ex().val(":v", s("X")),
    )
    .await;
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        (
            VE,
            enveloped(
                "Invalid ConditionExpression: Invalid attribute type name found; type: X, valid types: {N,BS,L,B,NULL,M,S,SS,NS,BOOL}"
            )
            .as_str()
        )
    );
}

/// Expressions are capped at 4,096 bytes as sent and at 300 operators
/// (item-api-behaviour.md §3.2, §8).
#[tokio::test]
async fn expressions_are_capped_in_bytes_and_operators() {
    let client = client();
    let table = "cond-size-cap";
    create_table(&client, table, Sat::S, None).await;
    // Comparisons of a 200-character name, joined by OR, padded with
    // leading spaces to the exact length: few operators, many bytes.
    let long_name = "a".repeat(200);
    let condition = |len: usize| {
        let clause = format!("{long_name} = :v");
        let mut c = clause.clone();
        while c.len() + 4 + clause.len() <= len {
            c.push_str(" OR ");
            c.push_str(&clause);
        }
        while c.len() < len {
            c.insert(0, ' ');
        }
        assert_eq!(c.len(), len);
        c
    };
    let put = |c: String| {
        client
            .put_item()
            .table_name(table)
            .set_item(Some(pk("k")))
            .condition_expression(c)
            .expression_attribute_values(":v", s("x"))
            .send()
    };
    // 4,096 bytes is accepted (and false on a missing item).
    assert_error(put(condition(4096)).await, CCF, CCF_MESSAGE);
    let err = api_error(put(condition(4097)).await);
    assert_eq!(err.code, VE);
    assert!(
        err.message.starts_with(
            "1 validation error detected: Invalid ConditionExpression: Expression size has exceeded the maximum allowed size"
        ),
        "{}",
        err.message
    );
    // 150 comparisons, 149 ORs and a NOT are 300 operators (and true on a
    // missing item); one more NOT is one too many.
    let ors = vec!["a = :v"; 150].join(" OR ");
    ok(put(format!("NOT {ors}")).await);
    assert_error(
        put(format!("NOT NOT {ors}")).await,
        VE,
        &enveloped(
            "Invalid ConditionExpression: The expression contains too many operators; operator count: 301",
        ),
    );
}
