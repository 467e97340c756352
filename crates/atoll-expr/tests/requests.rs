//! A request's expressions checked together against its placeholder maps.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use atoll_expr::{
    ExpressionCache, ExpressionRequest, check_attribute_maps, check_references,
    validate_expressions,
};
use common::*;

fn error(request: &ExpressionRequest) -> String {
    match check_references(request, None) {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.message().to_owned(),
    }
}

#[test]
fn placeholder_maps() {
    // verified (dynalite, conformance)
    let empty_names = names(&[]);
    let empty_values = values(&[]);
    let check = |n: Option<&_>, v: Option<&_>| match check_attribute_maps(n, v) {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.message().to_owned(),
    };
    assert_eq!(
        check(Some(&empty_names), Some(&empty_values)),
        "ExpressionAttributeNames must not be empty"
    );
    assert_eq!(
        check(Some(&names(&[("a", "a")])), Some(&empty_values)),
        r#"ExpressionAttributeNames contains invalid key: Syntax error; key: "a""#
    );
    assert_eq!(
        check(None, Some(&empty_values)),
        "ExpressionAttributeValues must not be empty"
    );
    assert_eq!(
        check(None, Some(&values(&[("b", s("a"))]))),
        r#"ExpressionAttributeValues contains invalid key: Syntax error; key: "b""#
    );
    assert_eq!(
        check(Some(&names(&[("#sryLiyD8D-", "x")])), None),
        r##"ExpressionAttributeNames contains invalid key: Syntax error; key: "#sryLiyD8D-""##
    );
    // model (DynamoDB's lexer): a key is one placeholder token.
    for bad in ["#", "#a b", "#a.b", ":a", "##a", "#ü"] {
        assert_eq!(
            check(Some(&names(&[(bad, "x")])), None),
            format!(r#"ExpressionAttributeNames contains invalid key: Syntax error; key: "{bad}""#)
        );
    }
    for good in ["#a", "#1", "#_", "#A_b9", " #a "] {
        assert_eq!(check(Some(&names(&[(good, "x")])), None), "ok", "{good}");
    }
    assert_eq!(
        check(None, Some(&values(&[(":1", s("x")), (":_a", s("y"))]))),
        "ok"
    );
    assert_eq!(
        check(None, Some(&values(&[("#a", s("x"))]))),
        r##"ExpressionAttributeValues contains invalid key: Syntax error; key: "#a""##
    );
    // model (DynamoDB Local's limits on keys)
    let long = format!("#{}", "a".repeat(255));
    assert_eq!(
        check(Some(&names(&[(long.as_str(), "x")])), None),
        "ExpressionAttributeNames contains invalid key: The expression attribute map contains a key that is too long; size of key: 256"
    );
    assert_eq!(
        check(Some(&names(&[("", "x")])), None),
        "ExpressionAttributeNames contains invalid key: The expression attribute map contains an empty key;"
    );
}

#[test]
fn names_must_be_attribute_names() {
    // verified (logged by an application)
    let n = names(&[("#DE", "")]);
    let request = ExpressionRequest {
        projection: Some("#DE"),
        names: Some(&n),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "ExpressionAttributeNames contains invalid value: Empty attribute name for key #DE"
    );
}

#[test]
fn unused_placeholders() {
    // verified (conformance)
    let n = names(&[("#unused", "someattr")]);
    let v = values(&[(":v", s("val"))]);
    let request = ExpressionRequest {
        key_condition: Some("pk = :v"),
        names: Some(&n),
        values: Some(&v),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}"
    );
    let v = values(&[(":pk", s("x")), (":unused", s("y"))]);
    let request = ExpressionRequest {
        key_condition: Some("pk = :pk"),
        values: Some(&v),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}"
    );
    // dynalite accepts either order; Java's HashSet prints these so (model).
    let n = names(&[("#a", "a"), ("#b", "b")]);
    let v = values(&[(":a", s("a")), (":b", s("a")), (":c", s("a"))]);
    let request = ExpressionRequest {
        update: Some("remove a set b = list_append(b, if_not_exists(a, :a))"),
        condition: Some("a = :b"),
        names: Some(&n),
        values: Some(&v),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"
    );
    let request = ExpressionRequest {
        update: Some("remove a"),
        condition: Some("a = :b"),
        values: Some(&v),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:a, :c}"
    );
    // Names used only on the right of SET, or only in a projection, count.
    let n = names(&[("#one", "c"), ("#two", "a")]);
    let request = ExpressionRequest {
        update: Some("SET #one = #two"),
        names: Some(&n),
        ..Default::default()
    };
    assert_eq!(error(&request), "ok");
    let n = names(&[("#one", "c"), ("#two", "a"), ("#three", "z")]);
    let request = ExpressionRequest {
        update: Some("SET #one = #two"),
        names: Some(&n),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#three}"
    );
    let n = names(&[("#p", "pk"), ("#x", "x")]);
    let v = values(&[(":v", s("a"))]);
    let request = ExpressionRequest {
        key_condition: Some("#p = :v"),
        projection: Some("#x"),
        names: Some(&n),
        values: Some(&v),
        ..Default::default()
    };
    assert_eq!(error(&request), "ok");
    // A value nothing uses.
    let v = values(&[(":v", s("a"))]);
    let request = ExpressionRequest {
        filter: Some("attribute_exists(a)"),
        values: Some(&v),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}"
    );
}

#[test]
fn order_between_expressions() {
    // Update before condition (dynalite, DynamoDB Local).
    let request = ExpressionRequest {
        update: Some(""),
        condition: Some(""),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Invalid UpdateExpression: The expression can not be empty;"
    );
    let request = ExpressionRequest {
        update: Some("SET a = :v"),
        condition: Some("!"),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :v"
    );
    // Key condition before filter (dynalite's tests against DynamoDB), filter before projection.
    let request = ExpressionRequest {
        key_condition: Some("a > 4"),
        filter: Some(""),
        ..Default::default()
    };
    assert!(error(&request).starts_with("Invalid KeyConditionExpression: Syntax error; "));
    let request = ExpressionRequest {
        filter: Some(""),
        projection: Some(""),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Invalid FilterExpression: The expression can not be empty;"
    );
    let request = ExpressionRequest {
        filter: Some("a > b"),
        projection: Some(""),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Invalid ProjectionExpression: The expression can not be empty;"
    );
    // Expression errors come before unused placeholders.
    let n = names(&[("#unused", "x")]);
    let request = ExpressionRequest {
        filter: Some("#missing = a"),
        names: Some(&n),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: #missing"
    );
    // Map keys before anything else.
    let n = names(&[("bad", "x")]);
    let request = ExpressionRequest {
        filter: Some(""),
        names: Some(&n),
        ..Default::default()
    };
    assert_eq!(
        error(&request),
        r#"ExpressionAttributeNames contains invalid key: Syntax error; key: "bad""#
    );
}

#[test]
fn substituted_size_limit() {
    // model: DynamoDB Local caps an expression with every placeholder use
    // counted at its size at 1 MB.
    let big = s(&"x".repeat(300 * 1024));
    let v = values(&[(":v", big)]);
    let fits = ExpressionRequest {
        condition: Some("a = :v OR b = :v OR c = :v"),
        values: Some(&v),
        ..Default::default()
    };
    assert_eq!(error(&fits), "ok");
    let over = ExpressionRequest {
        condition: Some("a = :v OR b = :v OR c = :v OR d = :v"),
        values: Some(&v),
        ..Default::default()
    };
    assert_eq!(
        error(&over),
        "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size;"
    );
}

#[test]
fn cache_gives_the_same_answers() {
    let cache = ExpressionCache::new(64);
    let n = names(&[("#a", "a")]);
    let v = values(&[(":v", n_value())]);
    let cases = [
        ExpressionRequest {
            condition: Some("#a = :v"),
            names: Some(&n),
            values: Some(&v),
            ..Default::default()
        },
        ExpressionRequest {
            condition: Some("#a = :v"),
            names: Some(&n),
            ..Default::default()
        },
        ExpressionRequest {
            filter: Some("#a = :v"),
            names: Some(&n),
            ..Default::default()
        },
        ExpressionRequest {
            update: Some("SET #a = :v"),
            projection: Some("#a"),
            names: Some(&n),
            values: Some(&v),
            ..Default::default()
        },
        ExpressionRequest {
            projection: Some("!"),
            ..Default::default()
        },
    ];
    for _ in 0..3 {
        for request in &cases {
            let cached = validate_expressions(request, Some(&cache))
                .map(|_| ())
                .map_err(|e| e.message().to_owned());
            let fresh = validate_expressions(request, None)
                .map(|_| ())
                .map_err(|e| e.message().to_owned());
            assert_eq!(cached, fresh);
        }
    }
    assert_eq!(cache.len(), 5);
}

fn n_value() -> atoll_model::AttributeValue {
    n("1")
}

#[test]
fn cache_is_safe_across_threads() {
    let cache = std::sync::Arc::new(ExpressionCache::new(128));
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let cache = std::sync::Arc::clone(&cache);
            std::thread::spawn(move || {
                for index in 0..500 {
                    let text = format!("a{} = :v", (index * 7 + thread) % 300);
                    assert!(
                        cache
                            .condition(&text, atoll_expr::ExpressionKind::Filter)
                            .is_ok()
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        assert!(thread.join().is_ok());
    }
    assert!(cache.len() <= cache.capacity());
}
