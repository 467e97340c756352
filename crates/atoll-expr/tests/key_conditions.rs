//! KeyConditionExpressions turned into the key range a Query reads.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use atoll_expr::key_condition::{KeyConditions, SortKeyCondition};
use atoll_expr::{Env, ExpressionKind, KeyCondition, extract_key_conditions, key_condition};
use atoll_model::AttributeValue;
use atoll_model::table::{KeyAttribute, KeySchema, ScalarType};
use common::*;

fn schema(partition: (&str, ScalarType), sort: Option<(&str, ScalarType)>) -> KeySchema {
    KeySchema {
        partition_key: KeyAttribute {
            name: partition.0.to_owned(),
            scalar_type: partition.1,
        },
        sort_key: sort.map(|(name, scalar_type)| KeyAttribute {
            name: name.to_owned(),
            scalar_type,
        }),
    }
}

/// Checks the expression as a request would, then extracts its conditions.
fn extract(
    text: &str,
    name_map: &HashMap<String, String>,
    value_map: &HashMap<String, AttributeValue>,
) -> Result<KeyConditions, String> {
    // Only the values the text uses, so none is reported unused.
    let value_map: HashMap<String, AttributeValue> = value_map
        .iter()
        .filter(|(key, _)| {
            text.match_indices(key.as_str()).any(|(at, _)| {
                !text[at + key.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let value_map = &value_map;
    let validated = check(ExpressionKind::KeyCondition, text, name_map, value_map)
        .map_err(|e| e.message().to_owned())?;
    let condition = validated.key_condition.ok_or("no key condition")?;
    let env = Env {
        names: name_map,
        values: value_map,
    };
    extract_key_conditions(condition.condition(), &env).map_err(|e| e.message().to_owned())
}

fn bind(
    text: &str,
    value_map: &HashMap<String, AttributeValue>,
    schema: &KeySchema,
) -> Result<KeyCondition, String> {
    extract(text, &names(&[]), value_map)?
        .bind(schema)
        .map_err(|e| e.message().to_owned())
}

fn extraction_error(text: &str) -> String {
    let v = values(&[(":a", s("1")), (":b", s("1")), (":t", s("S"))]);
    match extract(text, &names(&[]), &v) {
        Ok(_) => "ok".to_owned(),
        Err(message) => message,
    }
}

#[test]
fn table_independent_errors() {
    // verified (dynalite's tests against DynamoDB, whose texts then lacked the
    // `Invalid KeyConditionExpression: ` prefix the service adds now: moto's
    // AWS-verified tests, dynoxide's captures)
    let cases: &[(&str, &str)] = &[
        (
            "a > b and size(b) > c or a > c",
            "Invalid operator used in KeyConditionExpression: OR",
        ),
        (
            "a in (b, size(c), d)",
            "Invalid operator used in KeyConditionExpression: IN",
        ),
        (
            "attribute_exists(a)",
            "Invalid operator used in KeyConditionExpression: attribute_exists",
        ),
        (
            "attribute_not_exists(a)",
            "Invalid operator used in KeyConditionExpression: attribute_not_exists",
        ),
        (
            "contains(a.d, b)",
            "Invalid operator used in KeyConditionExpression: contains",
        ),
        (
            "not a > b",
            "Invalid operator used in KeyConditionExpression: NOT",
        ),
        (
            "a <> b",
            "Invalid operator used in KeyConditionExpression: <>",
        ),
        (
            "attribute_type(a, :t)",
            "Invalid operator used in KeyConditionExpression: attribute_type",
        ),
        (
            "begins_with(:a, b) and a > :b",
            "Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand",
        ),
        (
            "size(b) > a AND a.b > b AND b > c",
            "Invalid KeyConditionExpression: KeyConditionExpressions cannot contain nested operations",
        ),
        (
            "a > size(b.d)",
            "Invalid KeyConditionExpression: KeyConditionExpressions cannot contain nested operations",
        ),
        (
            "a between size(b) and size(a)",
            "Invalid KeyConditionExpression: KeyConditionExpressions cannot contain nested operations",
        ),
        (
            "b > a.b",
            "Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
        ),
        (
            "b between c[1] and d",
            "Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
        ),
        (
            "begins_with(a, b)",
            "Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
        ),
        (
            "b.d > a AND c.d > e.f",
            "Invalid KeyConditionExpression: KeyConditionExpressions cannot have conditions on nested attributes",
        ),
        (
            "a.d > c",
            "Invalid KeyConditionExpression: KeyConditionExpressions cannot have conditions on nested attributes",
        ),
        (
            "b[0] > a",
            "Invalid KeyConditionExpression: KeyConditionExpressions cannot have conditions on nested attributes",
        ),
        (
            ":b > :a AND a < :b",
            "Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: No key attribute specified",
        ),
        (
            ":a > b AND :a < :b",
            "Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: No key attribute specified",
        ),
        (
            "b > :a AND b < :a and c = :a and d = :a",
            "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key",
        ),
        (
            "(a > :a and b > :a) and (b > :a and c > :a)",
            "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key",
        ),
        (
            ":a = a and b = :a and :a = c",
            "Conditions can be of length 1 or 2 only",
        ),
        (
            "(a > :a and b > :a) and (c > :a and d > :a) and (e > :a and f > :a)",
            "Conditions can be of length 1 or 2 only",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(extraction_error(text), *expected, "{text}");
    }
    // `:a between size(b) and ...` fails on its first operand (verified).
    let v = values(&[(":a", s("1")), (":b", s("1"))]);
    assert_eq!(
        extract(":a between :a and :b and b > :b", &names(&[]), &v)
            .err()
            .as_deref(),
        Some(
            "Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand"
        )
    );
}

#[test]
fn binding_to_the_key_schema() {
    let hash = schema(("a", ScalarType::S), None);
    let ranged = schema(("a", ScalarType::S), Some(("b", ScalarType::N)));
    let v = values(&[(":a", s("1")), (":n", n("1")), (":m", n("5"))]);
    // verified (conformance, dynalite)
    let cases: &[(&str, &KeySchema, &str)] = &[
        (
            "z = :a",
            &hash,
            "Query condition missed key schema element: a",
        ),
        (
            "b = :n",
            &ranged,
            "Query condition missed key schema element: a",
        ),
        (
            "a = :a and c = :n",
            &ranged,
            "Query condition missed key schema element: b",
        ),
        ("a > :a", &hash, "Query key condition not supported"),
        (":a <= a", &hash, "Query key condition not supported"),
        (
            "begins_with(a, :a)",
            &hash,
            "Query key condition not supported",
        ),
        (
            "a between :a and :a",
            &hash,
            "Query key condition not supported",
        ),
        (
            "a = :a AND b = :n",
            &hash,
            "Query key condition not supported",
        ),
        (
            "y = :a and z = :a",
            &hash,
            "Query key condition not supported",
        ),
        (
            ":n > a",
            &hash,
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "a = :a AND b = :a",
            &ranged,
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
    ];
    for (text, key_schema, expected) in cases {
        assert_eq!(
            bind(text, &v, key_schema).err().as_deref(),
            Some(*expected),
            "{text}"
        );
    }
    let bound = bind("a = :a", &v, &ranged);
    assert_eq!(
        bound,
        Ok(KeyCondition {
            partition_key: "a".to_owned(),
            partition_value: s("1"),
            sort: None,
        })
    );
    // A value on the left flips the comparison (verified).
    let bound = bind(":n <= b AND a = :a", &v, &ranged).map(|k| k.sort);
    assert_eq!(
        bound,
        Ok(Some(("b".to_owned(), SortKeyCondition::Ge(n("1")))))
    );
    let bound = bind("a = :a AND b BETWEEN :n AND :m", &v, &ranged).map(|k| k.sort);
    assert_eq!(
        bound,
        Ok(Some((
            "b".to_owned(),
            SortKeyCondition::Between(n("1"), n("5"))
        )))
    );
    let long = values(&[
        (":a", s("1")),
        (":big", AttributeValue::N(atoll_model::Number::from_i64(1))),
    ]);
    assert!(bind("a = :a AND b > :big", &long, &ranged).is_ok());
    let text_sort = schema(("a", ScalarType::S), Some(("t", ScalarType::S)));
    let big = values(&[(":a", s("1")), (":t", s(&"x".repeat(1025)))]);
    assert_eq!(
        bind("a = :a AND t > :t", &big, &text_sort).err().as_deref(),
        Some(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
        )
    );
    let prefix = values(&[(":a", s("1")), (":p", s("x"))]);
    assert_eq!(
        bind("begins_with(t, :p) AND a = :a", &prefix, &text_sort).map(|k| k.sort),
        Ok(Some(("t".to_owned(), SortKeyCondition::BeginsWith(s("x")))))
    );
}

#[test]
fn names_resolve_and_parentheses_are_fine() {
    let n = names(&[("#pk", "pk"), ("#sk", "sk")]);
    let v = values(&[(":pk", s("p")), (":sk", s("s"))]);
    for text in [
        "#pk = :pk AND #sk = :sk",
        "(#pk = :pk) AND (#sk = :sk)",
        "(#pk = :pk AND #sk = :sk)",
        "(#pk = :pk AND (#sk = :sk))",
        "#sk = :sk AND #pk = :pk",
    ] {
        let validated = check(ExpressionKind::KeyCondition, text, &n, &v);
        let condition = validated.ok().and_then(|v| v.key_condition);
        let env = Env {
            names: &n,
            values: &v,
        };
        let bound = condition.map(|c| key_condition(c.condition(), "pk", Some("sk"), &env));
        assert_eq!(
            bound,
            Some(Ok(KeyCondition {
                partition_key: "pk".to_owned(),
                partition_value: s("p"),
                sort: Some(("sk".to_owned(), SortKeyCondition::Eq(s("s")))),
            })),
            "{text}"
        );
    }
    // verified (conformance): a nested path on a key attribute.
    let nested = check(
        ExpressionKind::KeyCondition,
        "#pk = :pk AND #sk.foo = :sk",
        &n,
        &v,
    )
    .ok()
    .and_then(|v| v.key_condition);
    let env = Env {
        names: &n,
        values: &v,
    };
    let error = nested.map(|c| key_condition(c.condition(), "pk", Some("sk"), &env));
    assert_eq!(
        error
            .and_then(Result::err)
            .map(|e| e.message().to_owned())
            .as_deref(),
        Some(
            "Invalid KeyConditionExpression: KeyConditionExpressions cannot have conditions on nested attributes"
        )
    );
}
