use atoll_model::{AttributeValue, Item};

use super::ComparisonOperator as Op;
use super::*;
use crate::apply_update;
use crate::eval::test_support::*;

/// An item with one attribute of most types, shared by the legacy tests.
pub(super) fn subject() -> Item {
    item(vec![
        ("n", n("5")),
        ("s", s("hello")),
        ("b", b(b"hi there")),
        ("set", ns(&["2", "4", "7"])),
        ("list", l(vec![n("2"), n("4"), s("x")])),
        ("null", AttributeValue::Null),
    ])
}

#[test]
fn operator_names_round_trip() {
    for operator in Op::ALL {
        assert_eq!(Op::parse(operator.as_str()), Some(operator));
    }
    assert_eq!(Op::parse("eq"), None);
    assert_eq!(
        ConditionalOperator::parse("OR"),
        Some(ConditionalOperator::Or)
    );
    assert_eq!(
        ConditionalOperator::parse("AND").map(ConditionalOperator::as_str),
        Some("AND")
    );
    assert_eq!(
        AttributeAction::parse("DELETE"),
        Some(AttributeAction::Delete)
    );
    assert_eq!(AttributeAction::parse("put"), None);
}

fn updates(
    entries: Vec<(&str, Option<AttributeAction>, Option<AttributeValue>)>,
) -> Result<crate::ast::Update, String> {
    let entries: Vec<(String, AttributeValueUpdate)> = entries
        .into_iter()
        .map(|(name, action, value)| (name.to_owned(), AttributeValueUpdate { action, value }))
        .collect();
    attribute_updates(&entries).map_err(|e| e.message().to_owned())
}

#[test]
fn attribute_updates_apply() {
    let update = updates(vec![
        ("s", None, Some(s("new"))),
        ("n", Some(AttributeAction::Add), Some(n("1.5"))),
        ("list", Some(AttributeAction::Add), Some(l(vec![s("y")]))),
        ("set", Some(AttributeAction::Delete), Some(ns(&["2", "4"]))),
        ("null", Some(AttributeAction::Delete), None),
        ("added", Some(AttributeAction::Add), Some(ss(&["a"]))),
        ("put", Some(AttributeAction::Put), Some(m(vec![]))),
        ("missing", Some(AttributeAction::Delete), None),
    ])
    .expect("valid");
    let after = apply_update(&update, &subject(), &Placeholders::default().env()).expect("applies");
    let expected = item(vec![
        ("n", n("6.5")),
        ("s", s("new")),
        ("b", b(b"hi there")),
        ("set", ns(&["7"])),
        ("list", l(vec![n("2"), n("4"), s("x"), s("y")])),
        ("added", ss(&["a"])),
        ("put", m(vec![])),
    ]);
    assert_eq!(after, expected);
    // Type mismatches are reported with the legacy text.
    let mismatch = updates(vec![("s", Some(AttributeAction::Add), Some(n("1")))]).expect("valid");
    assert_eq!(
        apply_update(&mismatch, &subject(), &Placeholders::default().env())
            .unwrap_err()
            .message(),
        "Type mismatch for attribute to update"
    );
    // An emptied set disappears.
    let emptied = updates(vec![(
        "set",
        Some(AttributeAction::Delete),
        Some(ns(&["2", "4", "7"])),
    )])
    .expect("valid");
    assert_eq!(
        apply_update(&emptied, &subject(), &Placeholders::default().env())
            .expect("applies")
            .get("set"),
        None
    );
}

#[test]
fn attribute_update_messages() {
    let prefix = "One or more parameter values were invalid: ";
    for action in [None, Some(AttributeAction::Put), Some(AttributeAction::Add)] {
        assert_eq!(
            updates(vec![("a", action, None)]).unwrap_err(),
            format!("{prefix}Only DELETE action is allowed when no attribute value is specified")
        );
    }
    for value in samples() {
        let type_name = value.type_name();
        let deleted = updates(vec![(
            "a",
            Some(AttributeAction::Delete),
            Some(value.clone()),
        )]);
        if matches!(type_name, "SS" | "NS" | "BS") {
            assert!(deleted.is_ok());
        } else {
            assert_eq!(
                deleted.unwrap_err(),
                format!(
                    "{prefix}DELETE action with value is not supported for the type {type_name}"
                )
            );
        }
        let added = updates(vec![("a", Some(AttributeAction::Add), Some(value.clone()))]);
        if matches!(type_name, "N" | "SS" | "NS" | "BS" | "L") {
            assert!(added.is_ok());
        } else {
            assert_eq!(
                added.unwrap_err(),
                format!("{prefix}ADD action is not supported for the type {type_name}")
            );
        }
        assert!(updates(vec![("a", Some(AttributeAction::Put), Some(value))]).is_ok());
    }
}

#[test]
fn attributes_to_get() {
    let names: Vec<String> = vec!["s".into(), "missing".into(), "a.b".into()];
    let projection = super::attributes_to_get(&names).expect("valid");
    let mut source = subject();
    source.insert("a.b".into(), n("1"));
    let projected =
        crate::project(&source, &projection, &Placeholders::default().env()).expect("projects");
    assert_eq!(projected, item(vec![("s", s("hello")), ("a.b", n("1"))]));
    let duplicated: Vec<String> = vec!["a".into(), "b".into(), "b".into(), "a".into()];
    assert_eq!(
        super::attributes_to_get(&duplicated).unwrap_err().message(),
        "One or more parameter values were invalid: Duplicate value in attribute name: b"
    );
}
