//! Property tests: no input makes a parser panic, recurse without bound or
//! take long. Random text and soups of the grammar's own tokens go through
//! every parser and through the request-level checks. Run with a large case
//! count for a deeper search: `PROPTEST_CASES=200000 cargo test -p
//! atoll-expr --release --test props`.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use atoll_expr::{
    ExpressionKind, ExpressionRequest, check_references, parse_condition,
    parse_condition_expression, parse_projection, parse_projection_expression, parse_update,
    parse_update_expression,
};
use common::*;
use proptest::prelude::*;

/// Generous: a debug build parses a 4 KB expression in well under a millisecond.
const SLOW: Duration = Duration::from_secs(2);

const TOKENS: &[&str] = &[
    "a",
    "b",
    "Status",
    "#n",
    "#m",
    ":v",
    ":w",
    "(",
    ")",
    "[",
    "]",
    "0",
    "12",
    "2147483648",
    ".",
    ",",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "and",
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "size",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "if_not_exists",
    "list_append",
    "foo",
    "!",
    "#",
    ":",
    "_",
    "\"",
    "é",
    "\u{1F600}",
    " ",
    "\t",
    "\n",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(TOKENS), prop::bool::ANY), 0..80).prop_map(
        |parts| {
            let mut text = String::new();
            for (token, space) in parts {
                text.push_str(token);
                if space {
                    text.push(' ');
                }
            }
            text
        },
    )
}

fn exercise(text: &str) {
    let start = Instant::now();
    for kind in [
        ExpressionKind::Condition,
        ExpressionKind::Filter,
        ExpressionKind::KeyCondition,
    ] {
        let _ = parse_condition_expression(text, kind);
        let _ = parse_condition(text, kind);
    }
    let _ = parse_update_expression(text);
    let _ = parse_update(text);
    let _ = parse_projection_expression(text);
    let _ = parse_projection(text);
    let n = names(&[("#n", "a"), ("#m", "[3]")]);
    let v = values(&[(":v", s("x")), (":w", n_one())]);
    for request in [
        ExpressionRequest {
            condition: Some(text),
            names: Some(&n),
            values: Some(&v),
            ..Default::default()
        },
        ExpressionRequest {
            update: Some(text),
            projection: Some(text),
            names: Some(&n),
            values: Some(&v),
            ..Default::default()
        },
        ExpressionRequest {
            key_condition: Some(text),
            filter: Some(text),
            ..Default::default()
        },
    ] {
        if let Ok(validated) = check_references(&request, None)
            && let Some(key) = validated.key_condition
        {
            let env = atoll_expr::Env {
                names: &n,
                values: &v,
            };
            let _ = atoll_expr::key_condition(key.condition(), "a", Some("b"), &env);
        }
    }
    assert!(start.elapsed() < SLOW, "slow on {text:?}");
}

fn n_one() -> atoll_model::AttributeValue {
    n("1")
}

proptest! {
    #[test]
    fn arbitrary_text(text in ".{0,300}") {
        exercise(&text);
    }

    #[test]
    fn token_soup(text in soup()) {
        exercise(&text);
    }

    #[test]
    fn valid_prefixes_with_noise(
        base in prop::sample::select(&[
            "a = :v AND (b < :w OR NOT contains(#n, :v))",
            "SET a = list_append(if_not_exists(a, :v), :w), #n[1] = :v REMOVE b ADD c :w",
            "a, b.c[2], #n.x",
            "size(a) BETWEEN :v AND :w",
        ][..]),
        cut in 0usize..80,
        noise in soup(),
    ) {
        let cut = base.char_indices().nth(cut).map_or(base.len(), |(at, _)| at);
        exercise(&format!("{}{noise}", &base[..cut]));
    }
}

/// The deepest nesting allowed, and beyond, parse within a small stack.
#[test]
fn deep_nesting_within_a_small_stack() {
    let inputs = vec![
        format!("{}a{} = :v", "size(".repeat(199), ")".repeat(199)),
        format!("{}a{} = :v", "size(".repeat(800), ")".repeat(800)),
        format!("{}a{}", "(".repeat(2000), ")".repeat(2000)),
        format!("{}a = :v{}", "(".repeat(2000), ")".repeat(2000)),
        format!("SET a = {}b{}", "(".repeat(2000), ")".repeat(2000)),
        format!("SET a = {}b + c{}", "(".repeat(2000), ")".repeat(2000)),
        format!(
            "SET a = {}b{}",
            "if_not_exists(a, ".repeat(500),
            ")".repeat(500)
        ),
        format!("{}a = :v", "NOT ".repeat(1000)),
        vec!["a = :v"; 580].join(" AND "),
        "(".repeat(4096),
        "a[".repeat(2000),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            for text in &inputs {
                exercise(text);
            }
        });
    let joined = handle.map(|thread| thread.join().is_ok());
    assert_eq!(joined.ok(), Some(true));
}
