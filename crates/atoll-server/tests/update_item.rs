//! UpdateItem against the real binary: SET (values, arithmetic, functions,
//! nested map paths, list indexes), REMOVE, ADD, DELETE, the snapshot rule,
//! every ReturnValues, creating missing items, refusals (key attributes,
//! runtime type errors, item size), the legacy AttributeUpdates, conditions
//! with updates, and parse errors.
//!
//! Expectations come from DynamoDB's documentation and the research notes
//! (`/work/research/item-api-behaviour.md` §3, §4, §7): request-level errors
//! of write operations carry the `1 validation error detected: ` envelope.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::{
    AttributeAction, AttributeValue, AttributeValueUpdate, ExpectedAttributeValue, ReturnValue,
    ScalarAttributeType as Sat,
};
use common::*;

type Item = HashMap<String, AttributeValue>;

const VE: &str = "ValidationException";
const CCF: &str = "ConditionalCheckFailedException";

fn client() -> Client {
    shared_server().client()
}

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

fn pk(v: &str) -> Item {
    item([("pk", s(v))])
}

/// Sets come back in no particular order: sort them (recursively).
fn canon(v: &AttributeValue) -> AttributeValue {
    match v {
        AttributeValue::Ss(xs) => {
            let mut xs = xs.clone();
            xs.sort();
            AttributeValue::Ss(xs)
        }
        AttributeValue::Ns(xs) => {
            let mut xs = xs.clone();
            xs.sort();
            AttributeValue::Ns(xs)
        }
        AttributeValue::Bs(xs) => {
            let mut xs = xs.clone();
            xs.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            AttributeValue::Bs(xs)
        }
        AttributeValue::L(xs) => AttributeValue::L(xs.iter().map(canon).collect()),
        AttributeValue::M(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), canon(v))).collect())
        }
        other => other.clone(),
    }
}

fn canon_item(it: &Item) -> Item {
    it.iter().map(|(k, v)| (k.clone(), canon(v))).collect()
}

#[track_caller]
fn assert_same(got: Option<&Item>, want: Option<&Item>) {
    assert_eq!(got.map(canon_item), want.map(canon_item));
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

async fn try_update(
    client: &Client,
    table: &str,
    key: &Item,
    expression: &str,
    x: &Ex,
    rv: ReturnValue,
) -> Result<
    UpdateItemOutput,
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>,
> {
    client
        .update_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .update_expression(expression)
        .set_expression_attribute_names(x.names())
        .set_expression_attribute_values(x.values())
        .return_values(rv)
        .send()
        .await
}

/// A successful update; returns `Attributes`.
async fn update(
    client: &Client,
    table: &str,
    key: &Item,
    expression: &str,
    x: &Ex,
    rv: ReturnValue,
) -> Option<Item> {
    ok(try_update(client, table, key, expression, x, rv).await).attributes
}

async fn update_error(
    client: &Client,
    table: &str,
    key: &Item,
    expression: &str,
    x: &Ex,
) -> ApiError {
    api_error(try_update(client, table, key, expression, x, ReturnValue::None).await)
}

// ---------------------------------------------------------------------------
// SET
// ---------------------------------------------------------------------------

#[tokio::test]
async fn set_values_arithmetic_and_functions() {
    let client = client();
    let table = "upd-set";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            ("n", n("10")),
            ("s", s("str")),
            ("l", list(vec![n("1"), n("2")])),
        ]),
    )
    .await;
    let x = ex()
        .val(":a", s("x"))
        .val(":one", n("1"))
        .val(":three", n("3"))
        .val(":dflt", s("default"))
        .val(":more", list(vec![n("3")]))
        .val(":empty", list(vec![]))
        .val(":tenth", n("0.1"))
        .val(":fifth", n("0.2"))
        .val(":big", n("7.5"));
    let new = update(
        &client,
        table,
        &key,
        "SET a = :a, n = n + :one, d = n - :three, e = :one + :three, \
         f = if_not_exists(absent, :dflt), g = if_not_exists(s, :dflt), \
         l2 = list_append(l, :more), l3 = list_append(:more, l), \
         l4 = list_append(if_not_exists(nolist, :empty), :more), \
         total_sum = :tenth + :fifth, neg = :three - :big, h = if_not_exists(absent, s)",
        &x,
        ReturnValue::AllNew,
    )
    .await;
    let want = item([
        ("pk", s("k")),
        ("s", s("str")),
        ("l", list(vec![n("1"), n("2")])),
        ("a", s("x")),
        ("n", n("11")),
        ("d", n("7")),
        ("e", n("4")),
        ("f", s("default")),
        ("g", s("str")),
        ("l2", list(vec![n("1"), n("2"), n("3")])),
        ("l3", list(vec![n("3"), n("1"), n("2")])),
        ("l4", list(vec![n("3")])),
        ("total_sum", n("0.3")),
        ("neg", n("-4.5")),
        ("h", s("str")),
    ]);
    assert_eq!(new.as_ref(), Some(&want));
    assert_eq!(get(&client, table, key).await, Some(want));
}

#[tokio::test]
async fn arithmetic_is_exact_to_38_digits() {
    let client = client();
    let table = "upd-exact";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            ("a", n("12345678901234567890123456789012345678")),
            ("b", n("99999999999999999999999999999999999999")),
            ("c", n("0.0000000000000000000000000000000000001")),
        ]),
    )
    .await;
    let new = update(
        &client,
        table,
        &key,
        "SET a = a + :one, c = c + :one ADD b :one, d :small",
        &ex()
            .val(":one", n("1"))
            .val(":small", n("-0.0000000000000000000000000000000000001")),
        ReturnValue::UpdatedNew,
    )
    .await;
    assert_eq!(
        new,
        Some(item([
            ("a", n("12345678901234567890123456789012345679")),
            ("b", n("100000000000000000000000000000000000000")),
            ("c", n("1.0000000000000000000000000000000000001")),
            ("d", n("-0.0000000000000000000000000000000000001")),
        ]))
    );
    // x - x is zero, written "0".
    let new = update(
        &client,
        table,
        &key,
        "SET z = a - a",
        &ex(),
        ReturnValue::UpdatedNew,
    )
    .await;
    assert_eq!(new, Some(item([("z", n("0"))])));

    // A result that needs a 39th digit, or leaves DynamoDB's range, is
    // refused and nothing is written. DynamoDB calls both an overflow
    // (Alternator's test_update_expression_plus_imprecise, run against it);
    // whether runtime errors carry the envelope is unpinned, so both forms
    // are accepted.
    let overflow =
        "Number overflow. Attempting to store a number with magnitude larger than supported range";
    let cases = [
        ("SET a = a + :tiny", ex().val(":tiny", n("0.1")), overflow),
        (
            "SET b = :big - :one",
            ex().val(":big", n("1e50")).val(":one", n("1")),
            overflow,
        ),
        ("ADD a :tiny", ex().val(":tiny", n("0.1")), overflow),
        (
            "SET h = :huge + :huge",
            ex().val(":huge", n("9.9E125")),
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
        (
            "ADD h :huge, h2 :huge",
            ex().val(":huge", n("-9.9E125")),
            "",
        ),
    ];
    for (expression, x, message) in cases {
        if message.is_empty() {
            // Two separate attributes: each within range.
            update(&client, table, &key, expression, &x, ReturnValue::None).await;
            continue;
        }
        let err = update_error(&client, table, &key, expression, &x).await;
        assert!(
            err.code == VE && (err.message == message || err.message == enveloped(message)),
            "{expression:?}: {err:?}"
        );
    }
    let stored = get(&client, table, key.clone()).await.unwrap();
    assert_eq!(stored["a"], n("12345678901234567890123456789012345679"));
    // DynamoDB writes numbers out in full: -9.9E125 is -99 and 124 zeros.
    assert_eq!(stored["h"], n(&format!("-99{}", "0".repeat(124))));
    let err = update_error(
        &client,
        table,
        &key,
        "ADD h :huge",
        &ex().val(":huge", n("-9.9E125")),
    )
    .await;
    assert!(
        err.code == VE && (err.message == overflow || err.message == enveloped(overflow)),
        "{err:?}"
    );
}

#[tokio::test]
async fn set_on_nested_map_paths() {
    let client = client();
    let table = "upd-nested";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            ("m", map([("a", n("1")), ("deep", map([("x", s("y"))]))])),
            ("s", s("text")),
        ]),
    )
    .await;
    update(
        &client,
        table,
        &key,
        "SET m.b = :v, m.deep.z = :w, m.a = m.a + :one, #dotted = :v",
        &ex()
            .name("#dotted", "m.b")
            .val(":v", s("v"))
            .val(":w", s("w"))
            .val(":one", n("1")),
        ReturnValue::None,
    )
    .await;
    assert_eq!(
        get(&client, table, key.clone()).await,
        Some(item([
            ("pk", s("k")),
            (
                "m",
                map([
                    ("a", n("2")),
                    ("b", s("v")),
                    ("deep", map([("x", s("y")), ("z", s("w"))])),
                ]),
            ),
            ("s", s("text")),
            // The placeholder names a top-level attribute called "m.b".
            ("m.b", s("v")),
        ]))
    );
}

#[tokio::test]
async fn functions_and_actions_on_nested_paths() {
    let client = client();
    let table = "upd-nested-actions";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            (
                "m",
                map([
                    ("n", n("1")),
                    ("l", list(vec![s("a")])),
                    ("tags", ss(&["x", "y"])),
                    ("gone", ss(&["g"])),
                    ("kept", s("old")),
                ]),
            ),
            ("l", list(vec![map([("n", n("5"))])])),
        ]),
    )
    .await;
    let new = update(
        &client,
        table,
        &key,
        "SET m.kept = if_not_exists(m.kept, :v), m.fresh = if_not_exists(m.fresh, :v), \
         m.l = list_append(m.l, :more), l[0].n = l[0].n - :one \
         ADD m.n :one, m.tags :z DELETE m.gone :g",
        &ex()
            .val(":v", s("new"))
            .val(":more", list(vec![s("b")]))
            .val(":one", n("1"))
            .val(":z", ss(&["z"]))
            .val(":g", ss(&["g"])),
        ReturnValue::UpdatedNew,
    )
    .await;
    assert_same(
        new.as_ref(),
        Some(&item([
            (
                "m",
                map([
                    ("n", n("2")),
                    ("l", list(vec![s("a"), s("b")])),
                    ("tags", ss(&["x", "y", "z"])),
                    ("kept", s("old")),
                    ("fresh", s("new")),
                ]),
            ),
            ("l", list(vec![map([("n", n("4"))])])),
        ])),
    );
    assert_same(
        get(&client, table, key).await.as_ref(),
        Some(&item([
            ("pk", s("k")),
            (
                "m",
                map([
                    ("n", n("2")),
                    ("l", list(vec![s("a"), s("b")])),
                    ("tags", ss(&["x", "y", "z"])),
                    ("kept", s("old")),
                    ("fresh", s("new")),
                ]),
            ),
            ("l", list(vec![map([("n", n("4"))])])),
        ])),
    );
}

#[tokio::test]
async fn set_on_list_indexes() {
    let client = client();
    let table = "upd-list-index";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            ("l", list(vec![s("a"), s("b"), s("c")])),
            ("e", list(vec![])),
            ("m", map([("l", list(vec![n("1")]))])),
        ]),
    )
    .await;
    // Replace an element; an index past the end appends; [0] of an empty
    // list works; a list inside a map.
    update(
        &client,
        table,
        &key,
        "SET l[1] = :x, l[10] = :y, e[0] = :z, m.l[0] = :n",
        &ex()
            .val(":x", s("x"))
            .val(":y", s("y"))
            .val(":z", s("z"))
            .val(":n", n("9")),
        ReturnValue::None,
    )
    .await;
    assert_eq!(
        get(&client, table, key.clone()).await,
        Some(item([
            ("pk", s("k")),
            ("l", list(vec![s("a"), s("x"), s("c"), s("y")])),
            ("e", list(vec![s("z")])),
            ("m", map([("l", list(vec![n("9")]))])),
        ]))
    );
}

// ---------------------------------------------------------------------------
// REMOVE, ADD, DELETE
// ---------------------------------------------------------------------------

#[tokio::test]
async fn remove_attributes_nested_paths_and_list_elements() {
    let client = client();
    let table = "upd-remove";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            ("a", s("a")),
            ("b", s("b")),
            ("m", map([("x", n("1")), ("y", n("2"))])),
            ("l", list(vec![n("0"), n("1"), n("2"), n("3"), n("4")])),
        ]),
    )
    .await;
    // Indexes name elements of the list as it was: 1 and 3 go, the rest
    // shift down. Missing attributes, keys and indexes are no-ops.
    update(
        &client,
        table,
        &key,
        "REMOVE a, m.x, l[1], l[3], nope, m.nope, l[10]",
        &ex(),
        ReturnValue::None,
    )
    .await;
    assert_eq!(
        get(&client, table, key.clone()).await,
        Some(item([
            ("pk", s("k")),
            ("b", s("b")),
            ("m", map([("y", n("2"))])),
            ("l", list(vec![n("0"), n("2"), n("4")])),
        ]))
    );
    update(
        &client,
        table,
        &key,
        "REMOVE l[0]",
        &ex(),
        ReturnValue::None,
    )
    .await;
    assert_eq!(
        get(&client, table, key.clone()).await.unwrap()["l"],
        list(vec![n("2"), n("4")])
    );
    // Emptying a map or a list keeps the (empty) attribute.
    update(
        &client,
        table,
        &key,
        "REMOVE m.y, l[0], l[1]",
        &ex(),
        ReturnValue::None,
    )
    .await;
    assert_eq!(
        get(&client, table, key.clone()).await,
        Some(item([
            ("pk", s("k")),
            ("b", s("b")),
            ("m", AttributeValue::M(HashMap::new())),
            ("l", list(vec![])),
        ]))
    );
}

#[tokio::test]
async fn add_numbers_and_sets() {
    let client = client();
    let table = "upd-add";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            ("n", n("5")),
            ("ss", ss(&["a", "b"])),
            ("ns", ns(&["1", "2"])),
            ("bs", bs(&[&[1], &[2]])),
        ]),
    )
    .await;
    let new = update(
        &client,
        table,
        &key,
        "ADD n :neg, fresh :five, ss :ss, ns :ns, bs :bs, newset :ss",
        &ex()
            .val(":neg", n("-7.5"))
            .val(":five", n("5"))
            .val(":ss", ss(&["b", "c"]))
            .val(":ns", ns(&["2.0", "3"]))
            .val(":bs", bs(&[&[2], &[3]])),
        ReturnValue::AllNew,
    )
    .await;
    let want = item([
        ("pk", s("k")),
        ("n", n("-2.5")),
        ("fresh", n("5")),
        ("ss", ss(&["a", "b", "c"])),
        ("ns", ns(&["1", "2", "3"])),
        ("bs", bs(&[&[1], &[2], &[3]])),
        ("newset", ss(&["b", "c"])),
    ]);
    assert_same(new.as_ref(), Some(&want));
    assert_same(get(&client, table, key.clone()).await.as_ref(), Some(&want));
    // Adding members already present changes nothing.
    update(
        &client,
        table,
        &key,
        "ADD ss :ss",
        &ex().val(":ss", ss(&["a", "c"])),
        ReturnValue::None,
    )
    .await;
    assert_same(get(&client, table, key).await.as_ref(), Some(&want));
}

#[tokio::test]
async fn delete_set_members() {
    let client = client();
    let table = "upd-delete";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            ("ss", ss(&["a", "b", "c"])),
            ("ns", ns(&["1", "2"])),
            ("bs", bs(&[&[1], &[2]])),
            ("m", map([("deep", ss(&["x", "y"]))])),
        ]),
    )
    .await;
    update(
        &client,
        table,
        &key,
        "DELETE ss :ab, ns :n1, bs :both, nope :ab, m.deep :x",
        &ex()
            .val(":ab", ss(&["a", "b", "zz"]))
            .val(":n1", ns(&["1.00"]))
            .val(":both", bs(&[&[1], &[2]]))
            .val(":x", ss(&["x"])),
        ReturnValue::None,
    )
    .await;
    // The emptied set is gone; a missing attribute stays missing.
    assert_same(
        get(&client, table, key.clone()).await.as_ref(),
        Some(&item([
            ("pk", s("k")),
            ("ss", ss(&["c"])),
            ("ns", ns(&["2"])),
            ("m", map([("deep", ss(&["y"]))])),
        ])),
    );
    let new = update(
        &client,
        table,
        &key,
        "DELETE ss :c, m.deep :y",
        &ex().val(":c", ss(&["c"])).val(":y", ss(&["y"])),
        ReturnValue::AllNew,
    )
    .await;
    let want = item([
        ("pk", s("k")),
        ("ns", ns(&["2"])),
        ("m", AttributeValue::M(HashMap::new())),
    ]);
    assert_same(new.as_ref(), Some(&want));
    assert_same(get(&client, table, key).await.as_ref(), Some(&want));
}

#[tokio::test]
async fn right_hand_sides_read_the_item_before_the_update() {
    let client = client();
    let table = "upd-snapshot";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            ("a", s("old")),
            ("x", n("1")),
            ("y", n("2")),
        ]),
    )
    .await;
    update(
        &client,
        table,
        &key,
        "SET a = :v, b = a, x = y, y = x, c = if_not_exists(c, a)",
        &ex().val(":v", s("new")),
        ReturnValue::None,
    )
    .await;
    assert_eq!(
        get(&client, table, key.clone()).await,
        Some(item([
            ("pk", s("k")),
            ("a", s("new")),
            ("b", s("old")),
            ("x", n("2")),
            ("y", n("1")),
            ("c", s("old")),
        ]))
    );
    // A condition reads the item before the update too.
    update_with_condition_reads_old(&client, table, &key).await;
}

async fn update_with_condition_reads_old(client: &Client, table: &str, key: &Item) {
    ok(client
        .update_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .update_expression("SET a = :newer")
        .condition_expression("a = :new")
        .expression_attribute_values(":new", s("new"))
        .expression_attribute_values(":newer", s("newer"))
        .send()
        .await);
    assert_eq!(
        get(client, table, key.clone()).await.unwrap()["a"],
        s("newer")
    );
}

// ---------------------------------------------------------------------------
// ReturnValues
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_return_values_option() {
    let client = client();
    let table = "upd-return-values";
    create_table(&client, table, Sat::S, None).await;
    let original = |k: &str| {
        item([
            ("pk", s(k)),
            ("a", n("1")),
            ("b", n("2")),
            ("m", map([("x", n("1")), ("y", n("2"))])),
            ("l", list(vec![n("10"), n("20"), n("30")])),
        ])
    };
    let v = || ex().val(":v", n("7"));
    let cases: Vec<(&str, Ex, ReturnValue, Option<Item>)> = vec![
        ("SET a = :v, c = :v", v(), ReturnValue::None, None),
        (
            "SET a = :v, c = :v",
            v(),
            ReturnValue::AllOld,
            Some(original("k")),
        ),
        (
            "SET a = :v, c = :v",
            v(),
            ReturnValue::AllNew,
            Some({
                let mut it = original("k");
                it.insert("a".into(), n("7"));
                it.insert("c".into(), n("7"));
                it
            }),
        ),
        // Only the updated attributes, before and after; c did not exist.
        (
            "SET a = :v, c = :v",
            v(),
            ReturnValue::UpdatedOld,
            Some(item([("a", n("1"))])),
        ),
        (
            "SET a = :v, c = :v",
            v(),
            ReturnValue::UpdatedNew,
            Some(item([("a", n("7")), ("c", n("7"))])),
        ),
        // An unchanged value still counts as updated.
        (
            "SET a = :one",
            ex().val(":one", n("1")),
            ReturnValue::UpdatedNew,
            Some(item([("a", n("1"))])),
        ),
        // Nested paths come back as fragments, without siblings.
        (
            "SET m.x = :v",
            v(),
            ReturnValue::UpdatedOld,
            Some(item([("m", map([("x", n("1"))]))])),
        ),
        (
            "SET m.x = :v",
            v(),
            ReturnValue::UpdatedNew,
            Some(item([("m", map([("x", n("7"))]))])),
        ),
        (
            "SET l[1] = :v",
            v(),
            ReturnValue::UpdatedOld,
            Some(item([("l", list(vec![n("20")]))])),
        ),
        (
            "SET l[1] = :v",
            v(),
            ReturnValue::UpdatedNew,
            Some(item([("l", list(vec![n("7")]))])),
        ),
        (
            "SET m.x = :v, m.y = :v",
            v(),
            ReturnValue::UpdatedNew,
            Some(item([("m", map([("x", n("7")), ("y", n("7"))]))])),
        ),
        // Several list elements come back in index order.
        (
            "SET l[2] = :v, l[0] = :v",
            v(),
            ReturnValue::UpdatedOld,
            Some(item([("l", list(vec![n("10"), n("30")]))])),
        ),
        (
            "SET l[2] = :v, l[0] = :v",
            v(),
            ReturnValue::UpdatedNew,
            Some(item([("l", list(vec![n("7"), n("7")]))])),
        ),
        // REMOVE: the old value, and nothing new.
        (
            "REMOVE b",
            ex(),
            ReturnValue::UpdatedOld,
            Some(item([("b", n("2"))])),
        ),
        ("REMOVE b", ex(), ReturnValue::UpdatedNew, None),
        (
            "REMOVE m.y",
            ex(),
            ReturnValue::UpdatedOld,
            Some(item([("m", map([("y", n("2"))]))])),
        ),
        // ADD
        (
            "ADD a :v",
            v(),
            ReturnValue::UpdatedOld,
            Some(item([("a", n("1"))])),
        ),
        (
            "ADD a :v",
            v(),
            ReturnValue::UpdatedNew,
            Some(item([("a", n("8"))])),
        ),
        // Nothing to project: no Attributes at all.
        ("REMOVE nope", ex(), ReturnValue::UpdatedOld, None),
        ("SET c = :v", v(), ReturnValue::UpdatedOld, None),
    ];
    let mut wrong = Vec::new();
    for (i, (expression, x, rv, want)) in cases.into_iter().enumerate() {
        let k = format!("k{i}");
        put(&client, table, original(&k)).await;
        let mut want = want;
        if let Some(w) = want.as_mut()
            && w.contains_key("pk")
        {
            w.insert("pk".into(), s(&k));
        }
        let got = update(&client, table, &pk(&k), expression, &x, rv.clone()).await;
        if got != want {
            wrong.push(format!(
                "{expression:?} with {rv:?}:\n  got  {got:?}\n  want {want:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // On a new item: no old image; the new one has the key.
    let cases = [
        (ReturnValue::AllOld, None),
        (ReturnValue::UpdatedOld, None),
        (ReturnValue::UpdatedNew, Some(item([("a", n("7"))]))),
        (
            ReturnValue::AllNew,
            Some(item([("pk", s("new-3")), ("a", n("7"))])),
        ),
    ];
    for (i, (rv, want)) in cases.into_iter().enumerate() {
        let key = pk(&format!("new-{i}"));
        let got = update(&client, table, &key, "SET a = :v", &v(), rv.clone()).await;
        assert_eq!(got, want, "{rv:?} on a new item");
    }
}

// ---------------------------------------------------------------------------
// Missing items
// ---------------------------------------------------------------------------

#[tokio::test]
async fn updating_a_missing_item_creates_it() {
    let client = client();
    let table = "upd-create";
    create_table(&client, table, Sat::S, Some(Sat::N)).await;
    let key = |k: &str| item([("pk", s(k)), ("sk", n("1"))]);
    update(
        &client,
        table,
        &key("set"),
        "SET a = :v, b = if_not_exists(b, :one)",
        &ex().val(":v", s("v")).val(":one", n("1")),
        ReturnValue::None,
    )
    .await;
    assert_eq!(
        get(&client, table, key("set")).await,
        Some(item([
            ("pk", s("set")),
            ("sk", n("1")),
            ("a", s("v")),
            ("b", n("1")),
        ]))
    );
    update(
        &client,
        table,
        &key("add"),
        "ADD n :one, s :s",
        &ex().val(":one", n("1")).val(":s", ss(&["a"])),
        ReturnValue::None,
    )
    .await;
    assert_eq!(
        get(&client, table, key("add")).await,
        Some(item([
            ("pk", s("add")),
            ("sk", n("1")),
            ("n", n("1")),
            ("s", ss(&["a"])),
        ]))
    );
    // No UpdateExpression at all: a key-only item, and an empty answer.
    let out = ok(client
        .update_item()
        .table_name(table)
        .set_key(Some(key("bare")))
        .send()
        .await);
    assert_eq!(out.attributes, None);
    assert_eq!(get(&client, table, key("bare")).await, Some(key("bare")));
    // ... which leaves an existing item as it is.
    put(
        &client,
        table,
        item([("pk", s("kept")), ("sk", n("1")), ("a", s("a"))]),
    )
    .await;
    let out = ok(client
        .update_item()
        .table_name(table)
        .set_key(Some(key("kept")))
        .return_values(ReturnValue::AllNew)
        .send()
        .await);
    assert_eq!(
        out.attributes,
        Some(item([("pk", s("kept")), ("sk", n("1")), ("a", s("a"))]))
    );
}

/// An update that only removes attributes or deletes from sets creates no
/// item and returns nothing, whatever ReturnValues asks (DynamoDB today;
/// older emulators wrote the key-only item). A nested REMOVE is no error on
/// a missing item. An update with something to write does create it.
#[tokio::test]
async fn remove_or_delete_alone_creates_nothing() {
    let client = client();
    let table = "upd-create-noop";
    create_table(&client, table, Sat::S, Some(Sat::N)).await;
    let key = |k: &str| item([("pk", s(k)), ("sk", n("1"))]);
    let set_a = ex().val(":s", ss(&["a"]));
    let cases = [
        ("REMOVE x", ex()),
        ("REMOVE x.y, z[2], m.n.o", ex()),
        ("DELETE s :s", set_a.clone()),
        ("REMOVE x DELETE s :s", set_a.clone()),
    ];
    let return_values = [
        ReturnValue::None,
        ReturnValue::AllOld,
        ReturnValue::UpdatedOld,
        ReturnValue::AllNew,
        ReturnValue::UpdatedNew,
    ];
    for (i, (expression, x)) in cases.iter().enumerate() {
        for rv in &return_values {
            let k = key(&format!("noop-{i}"));
            let got = update(&client, table, &k, expression, x, rv.clone()).await;
            assert_eq!(got, None, "{expression} with {rv:?}");
            assert_eq!(get(&client, table, k).await, None, "{expression} created");
        }
    }
    // A condition on the missing item is still evaluated.
    let err = api_error(
        client
            .update_item()
            .table_name(table)
            .set_key(Some(key("cond")))
            .update_expression("REMOVE x")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await,
    );
    assert_eq!(err.code, CCF, "{err:?}");
    // The legacy DELETE, with and without a value, creates nothing either.
    let out = ok(client
        .update_item()
        .table_name(table)
        .set_key(Some(key("legacy")))
        .attribute_updates("x", au(AttributeAction::Delete, None))
        .attribute_updates("s", au(AttributeAction::Delete, Some(ss(&["a"]))))
        .return_values(ReturnValue::AllNew)
        .send()
        .await);
    assert_eq!(out.attributes, None);
    assert_eq!(get(&client, table, key("legacy")).await, None);
    // Empty AttributeUpdates: the key-only item, as with no update at all.
    ok(client
        .update_item()
        .table_name(table)
        .set_key(Some(key("empty")))
        .set_attribute_updates(Some(HashMap::new()))
        .send()
        .await);
    assert_eq!(get(&client, table, key("empty")).await, Some(key("empty")));
    // A SET beside the removals creates the item, the removals ignored.
    let got = update(
        &client,
        table,
        &key("mixed"),
        "REMOVE x.y SET a = :s DELETE t :s",
        &set_a,
        ReturnValue::AllNew,
    )
    .await;
    let want = item([("pk", s("mixed")), ("sk", n("1")), ("a", ss(&["a"]))]);
    assert_eq!(got, Some(want.clone()));
    assert_eq!(get(&client, table, key("mixed")).await, Some(want));
    let scanned = ok(client.scan().table_name(table).send().await);
    assert_eq!(scanned.count, 2, "{:?}", scanned.items);
}

#[tokio::test]
async fn key_attributes_cannot_be_updated() {
    let client = client();
    let table = "upd-key-attrs";
    create_table(&client, table, Sat::S, Some(Sat::N)).await;
    let key = item([("pk", s("k")), ("sk", n("1"))]);
    put(
        &client,
        table,
        item([("pk", s("k")), ("sk", n("1")), ("a", n("1"))]),
    )
    .await;
    let refused = |attr: &str| {
        format!(
            "One or more parameter values were invalid: Cannot update attribute {attr}. This attribute is part of the key"
        )
    };
    let cases = [
        ("SET pk = :s", ex().val(":s", s("other")), "pk"),
        ("SET a = :n, sk = :n", ex().val(":n", n("2")), "sk"),
        (
            "SET sk = :n, pk = :s",
            ex().val(":n", n("2")).val(":s", s("x")),
            "pk",
        ),
        ("REMOVE sk", ex(), "sk"),
        ("ADD sk :n", ex().val(":n", n("2")), "sk"),
        ("SET pk.x = :s", ex().val(":s", s("x")), "pk"),
        ("SET #k = :s", ex().name("#k", "pk").val(":s", s("x")), "pk"),
    ];
    for (expression, x, attr) in &cases {
        let err = update_error(&client, table, &key, expression, x).await;
        assert_eq!(
            (err.code.as_str(), err.message.as_str()),
            (VE, refused(attr).as_str()),
            "{expression:?}"
        );
        // Refused on a missing item too, which is not created.
        let other = item([("pk", s("other")), ("sk", n("1"))]);
        let err = update_error(&client, table, &other, expression, x).await;
        assert_eq!(
            err.message,
            refused(attr),
            "{expression:?} on a missing item"
        );
    }
    // The key check comes before the condition is evaluated.
    assert_error(
        client
            .update_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .update_expression("SET pk = :s")
            .condition_expression("attribute_exists(nope)")
            .expression_attribute_values(":s", s("x"))
            .send()
            .await,
        VE,
        &refused("pk"),
    );
    // The legacy form too.
    assert_error(
        client
            .update_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .attribute_updates(
                "sk",
                AttributeValueUpdate::builder()
                    .action(AttributeAction::Put)
                    .value(n("2"))
                    .build(),
            )
            .send()
            .await,
        VE,
        &refused("sk"),
    );
    assert_eq!(
        get(&client, table, key).await,
        Some(item([("pk", s("k")), ("sk", n("1")), ("a", n("1"))]))
    );
    assert_eq!(
        get(&client, table, item([("pk", s("other")), ("sk", n("1"))])).await,
        None
    );
}

// ---------------------------------------------------------------------------
// Runtime refusals
// ---------------------------------------------------------------------------

const WRONG_TYPE: &str = "An operand in the update expression has an incorrect data type";
const NO_ATTRIBUTE: &str =
    "The provided expression refers to an attribute that does not exist in the item";
const BAD_PATH: &str = "The document path provided in the update expression is invalid for update";

#[tokio::test]
async fn runtime_type_and_path_errors() {
    let client = client();
    let table = "upd-runtime-errors";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    let original = item([
        ("pk", s("k")),
        ("n", n("1")),
        ("s", s("text")),
        ("ss", ss(&["a"])),
        ("l", list(vec![n("1")])),
        ("m", map([("x", n("1"))])),
    ]);
    put(&client, table, original.clone()).await;
    let one = || ex().val(":one", n("1"));
    let cases: Vec<(&str, Ex, &str)> = vec![
        ("SET x = s + :one", one(), WRONG_TYPE),
        ("SET x = :one - s", one(), WRONG_TYPE),
        (
            "SET x = list_append(s, :l)",
            ex().val(":l", list(vec![])),
            WRONG_TYPE,
        ),
        (
            "SET x = list_append(:l, m)",
            ex().val(":l", list(vec![])),
            WRONG_TYPE,
        ),
        ("ADD s :one", one(), WRONG_TYPE),
        ("ADD n :ss", ex().val(":ss", ss(&["a"])), WRONG_TYPE),
        ("ADD ss :ns", ex().val(":ns", ns(&["1"])), WRONG_TYPE),
        ("DELETE n :ss", ex().val(":ss", ss(&["a"])), WRONG_TYPE),
        ("DELETE ss :ns", ex().val(":ns", ns(&["1"])), WRONG_TYPE),
        ("SET x = nope + :one", one(), NO_ATTRIBUTE),
        (
            "SET x = list_append(nope, :l)",
            ex().val(":l", list(vec![])),
            NO_ATTRIBUTE,
        ),
        ("SET x = nope", ex(), NO_ATTRIBUTE),
        ("SET x = m.nope", ex(), NO_ATTRIBUTE),
        ("SET nope.a = :one", one(), BAD_PATH),
        ("SET s.a = :one", one(), BAD_PATH),
        ("SET m[0] = :one", one(), BAD_PATH),
        ("SET l.a = :one", one(), BAD_PATH),
        ("SET m.nope.deeper = :one", one(), BAD_PATH),
        ("SET nolist[0] = :one", one(), BAD_PATH),
        ("REMOVE nope.a", ex(), BAD_PATH),
        ("REMOVE s.a", ex(), BAD_PATH),
        ("REMOVE n[0]", ex(), BAD_PATH),
        ("ADD nope.a :one", one(), BAD_PATH),
        ("DELETE nope.a :ss", ex().val(":ss", ss(&["a"])), BAD_PATH),
    ];
    let mut wrong = Vec::new();
    for (expression, x, message) in &cases {
        let err = update_error(&client, table, &key, expression, x).await;
        // Runtime errors: the envelope is unpinned (item-api-behaviour.md
        // §9 point 4), so either form is accepted; the text is exact.
        let bare = (err.code.as_str(), err.message.as_str()) == (VE, *message);
        let wrapped = err.code == VE && err.message == enveloped(message);
        if !(bare || wrapped) {
            wrong.push(format!(
                "{expression:?}:\n  got  {}: {}\n  want {VE}: {message}",
                err.code, err.message
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_same(get(&client, table, key).await.as_ref(), Some(&original));

    // A nested SET on a missing item has no parent to write into.
    let err = update_error(&client, table, &pk("absent"), "SET b.a = :one", &one()).await;
    assert!(
        err.code == VE && (err.message == BAD_PATH || err.message == enveloped(BAD_PATH)),
        "{err:?}"
    );
    assert_eq!(get(&client, table, pk("absent")).await, None);
}

#[tokio::test]
async fn an_update_may_not_grow_the_item_past_400_kb() {
    let client = client();
    let table = "upd-size";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    let original = item([("pk", s("k")), ("big", s(&"x".repeat(300_000)))]);
    put(&client, table, original.clone()).await;
    let err = update_error(
        &client,
        table,
        &key,
        "SET more = :v",
        &ex().val(":v", s(&"y".repeat(110_000))),
    )
    .await;
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        (
            VE,
            "Item size to update has exceeded the maximum allowed size"
        )
    );
    // Appending to the string through list_append is no way round it either.
    let err = update_error(
        &client,
        table,
        &key,
        "SET l = list_append(if_not_exists(l, :empty), :chunk)",
        &ex()
            .val(":empty", list(vec![]))
            .val(":chunk", list(vec![s(&"z".repeat(120_000))])),
    )
    .await;
    assert_eq!(
        err.message,
        "Item size to update has exceeded the maximum allowed size"
    );
    assert_eq!(get(&client, table, key.clone()).await, Some(original));
    // Growing within the limit is fine.
    update(
        &client,
        table,
        &key,
        "SET more = :v",
        &ex().val(":v", s(&"y".repeat(100_000))),
        ReturnValue::None,
    )
    .await;
    assert_eq!(
        get(&client, table, key).await.unwrap()["more"],
        s(&"y".repeat(100_000))
    );
}

// ---------------------------------------------------------------------------
// Legacy AttributeUpdates
// ---------------------------------------------------------------------------

fn au(action: AttributeAction, value: Option<AttributeValue>) -> AttributeValueUpdate {
    AttributeValueUpdate::builder()
        .action(action)
        .set_value(value)
        .build()
}

#[tokio::test]
async fn legacy_attribute_updates() {
    use AttributeAction::{Add, Delete, Put};
    let client = client();
    let table = "upd-legacy";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    put(
        &client,
        table,
        item([
            ("pk", s("k")),
            ("n", n("5")),
            ("ss", ss(&["a", "b", "c"])),
            ("gone", s("x")),
            ("l", list(vec![n("1")])),
        ]),
    )
    .await;
    let out = ok(client
        .update_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .attribute_updates("p", au(Put, Some(s("put"))))
        .attribute_updates("n", au(Add, Some(n("-2"))))
        .attribute_updates("fresh", au(Add, Some(n("3"))))
        .attribute_updates("ss", au(Delete, Some(ss(&["a", "z"]))))
        .attribute_updates("newset", au(Add, Some(ss(&["q"]))))
        .attribute_updates("gone", au(Delete, None))
        .attribute_updates("l", au(Add, Some(list(vec![n("2")]))))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await);
    assert_same(
        out.attributes.as_ref(),
        Some(&item([
            ("p", s("put")),
            ("n", n("3")),
            ("fresh", n("3")),
            ("ss", ss(&["b", "c"])),
            ("newset", ss(&["q"])),
            ("l", list(vec![n("1"), n("2")])),
        ])),
    );
    let want = item([
        ("pk", s("k")),
        ("p", s("put")),
        ("n", n("3")),
        ("fresh", n("3")),
        ("ss", ss(&["b", "c"])),
        ("newset", ss(&["q"])),
        ("l", list(vec![n("1"), n("2")])),
    ]);
    assert_same(get(&client, table, key.clone()).await.as_ref(), Some(&want));

    // With Expected: applied only when it holds.
    assert_error(
        client
            .update_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .attribute_updates("p", au(Put, Some(s("again"))))
            .expected("n", ExpectedAttributeValue::builder().value(n("4")).build())
            .send()
            .await,
        CCF,
        "The conditional request failed",
    );
    ok(client
        .update_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .attribute_updates("p", au(Put, Some(s("again"))))
        .expected("n", ExpectedAttributeValue::builder().value(n("3")).build())
        .send()
        .await);
    assert_eq!(
        get(&client, table, key.clone()).await.unwrap()["p"],
        s("again")
    );

    // ADD onto an attribute of another type.
    let err = api_error(
        client
            .update_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .attribute_updates("p", au(Add, Some(n("1"))))
            .send()
            .await,
    );
    assert!(
        err.code == VE
            && (err.message == "Type mismatch for attribute to update"
                || err.message == enveloped("Type mismatch for attribute to update")),
        "{err:?}"
    );
    // A legacy update on a missing item creates it (ADD starts from 0).
    ok(client
        .update_item()
        .table_name(table)
        .key("pk", s("new"))
        .attribute_updates("n", au(Add, Some(n("2"))))
        .attribute_updates("x", au(Delete, None))
        .send()
        .await);
    assert_eq!(
        get(&client, table, pk("new")).await,
        Some(item([("pk", s("new")), ("n", n("2"))]))
    );
}

/// An Action DynamoDB does not know is a constraint violation, reported
/// with the request's other ones; nothing is written.
#[tokio::test]
async fn unknown_attribute_update_actions_are_refused() {
    let client = client();
    let table = "upd-legacy-action";
    create_table(&client, table, Sat::S, None).await;
    let err = api_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .attribute_updates("a", au(AttributeAction::from("DUNNO"), Some(n("1"))))
            .send()
            .await,
    );
    assert_eq!(err.code, VE);
    assert_eq!(
        err.message,
        "1 validation error detected: Value 'DUNNO' at 'attributeUpdates.a.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
    );
    let err = api_error(
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .attribute_updates("a", au(AttributeAction::from("put"), Some(n("1"))))
            .return_values(ReturnValue::from("EVERYTHING"))
            .send()
            .await,
    );
    assert!(
        err.message.starts_with("2 validation errors detected: ")
            && err.message.contains("'attributeUpdates.a.member.action'")
            && err.message.contains("'returnValues'"),
        "{err:?}"
    );
    assert_eq!(get(&client, table, pk("k")).await, None);
}

#[tokio::test]
async fn legacy_attribute_updates_errors() {
    use AttributeAction::{Add, Delete, Put};
    let client = client();
    let table = "upd-legacy-errors";
    create_table(&client, table, Sat::S, None).await;
    let cases = [
        (
            au(Put, None),
            "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified",
        ),
        (
            au(Add, Some(s("x"))),
            "One or more parameter values were invalid: ADD action is not supported for the type S",
        ),
        (
            au(Delete, Some(s("x"))),
            "One or more parameter values were invalid: DELETE action with value is not supported for the type S",
        ),
        (
            au(Delete, Some(n("1"))),
            "One or more parameter values were invalid: DELETE action with value is not supported for the type N",
        ),
    ];
    for (update, message) in cases {
        for t in [table, "upd-legacy-errors-no-such-table"] {
            assert_error(
                client
                    .update_item()
                    .table_name(t)
                    .key("pk", s("k"))
                    .attribute_updates("a", update.clone())
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
// Conditions with updates
// ---------------------------------------------------------------------------

#[tokio::test]
async fn conditional_counter() {
    let client = client();
    let table = "upd-counter";
    create_table(&client, table, Sat::S, None).await;
    let key = pk("k");
    let bump = || async {
        client
            .update_item()
            .table_name(table)
            .key("pk", s("k"))
            .update_expression("SET hits = if_not_exists(hits, :zero) + :one")
            .condition_expression("attribute_not_exists(hits) OR hits < :max")
            .expression_attribute_values(":zero", n("0"))
            .expression_attribute_values(":one", n("1"))
            .expression_attribute_values(":max", n("3"))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
    };
    for i in 1..=3 {
        let out = ok(bump().await);
        assert_eq!(out.attributes, Some(item([("hits", n(&i.to_string()))])));
    }
    assert_error(bump().await, CCF, "The conditional request failed");
    assert_eq!(
        get(&client, table, key).await,
        Some(item([("pk", s("k")), ("hits", n("3"))]))
    );
}

// ---------------------------------------------------------------------------
// Parse errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn update_expression_parse_errors() {
    let client = client();
    let table = "upd-parse-errors";
    create_table(&client, table, Sat::S, None).await;
    let v = || ex().val(":v", s("x"));
    let cases: Vec<(&str, Ex, &str)> = vec![
        ("", ex(), "The expression can not be empty;"),
        (
            "INVALID SYNTAX",
            ex(),
            "Syntax error; token: \"INVALID\", near: \"INVALID SYNTAX\"",
        ),
        (
            "SET a = :v SET b = :v",
            v(),
            "The \"SET\" section can only be used once in an update expression;",
        ),
        (
            "REMOVE a REMOVE b",
            ex(),
            "The \"REMOVE\" section can only be used once in an update expression;",
        ),
        (
            "SET a = :w",
            v(),
            "An expression attribute value used in expression is not defined; attribute value: :w",
        ),
        (
            "SET #a = :v",
            v(),
            "An expression attribute name used in the document path is not defined; attribute name: #a",
        ),
        (
            "SET a = :v, a = :v",
            v(),
            "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]",
        ),
        (
            "SET a = :v REMOVE a.b",
            v(),
            "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
        ),
        (
            "SET a.c = :v, a[1] = :v",
            v(),
            "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, c], path two: [a, [1]]",
        ),
        (
            "ADD a :v",
            v(),
            "Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND",
        ),
        (
            "ADD a :v",
            ex().val(":v", list(vec![])),
            "Incorrect operand type for operator or function; operator: ADD, operand type: LIST, typeSet: ALLOWED_FOR_ADD_OPERAND",
        ),
        (
            "DELETE a :v",
            ex().val(":v", n("1")),
            "Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND",
        ),
        (
            "SET a = list_append(b, :v)",
            v(),
            "Incorrect operand type for operator or function; operator or function: list_append, operand type: S",
        ),
        (
            "SET a = b + :v",
            v(),
            "Incorrect operand type for operator or function; operator or function: +, operand type: S",
        ),
        (
            "SET a = if_not_exists(b)",
            ex(),
            "Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1",
        ),
        (
            "SET a = if_not_exists(:v, b)",
            v(),
            "Operator or function requires a document path; operator or function: if_not_exists",
        ),
        (
            "SET a = foo(b)",
            ex(),
            "Invalid function name; function: foo",
        ),
        (
            "SET name = :v",
            v(),
            "Attribute name is a reserved keyword; reserved keyword: name",
        ),
    ];
    let mut wrong = Vec::new();
    for t in [table, "upd-parse-errors-no-such-table"] {
        for (expression, x, message) in &cases {
            let want = enveloped(&format!("Invalid UpdateExpression: {message}"));
            let err = update_error(&client, t, &pk("k"), expression, x).await;
            if (err.code.as_str(), err.message.as_str()) != (VE, want.as_str()) {
                wrong.push(format!(
                    "{expression:?} on {t}:\n  got  {}: {}\n  want {VE}: {want}",
                    err.code, err.message
                ));
            }
        }
    }
    // Unused placeholders.
    let err = update_error(
        &client,
        table,
        &pk("k"),
        "SET a = :v",
        &v().val(":unused", n("1")),
    )
    .await;
    let want = enveloped(
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
    );
    if err.message != want {
        wrong.push(format!(
            "unused value:\n  got  {}\n  want {want}",
            err.message
        ));
    }
    let err = update_error(
        &client,
        table,
        &pk("k"),
        "SET a = :v",
        &v().name("#unused", "b"),
    )
    .await;
    let want = enveloped(
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}",
    );
    if err.message != want {
        wrong.push(format!(
            "unused name:\n  got  {}\n  want {want}",
            err.message
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(get(&client, table, pk("k")).await, None);
}
