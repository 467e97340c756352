//! Expressions DynamoDB accepts, and the AST each becomes.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use atoll_expr::ExpressionKind::{Condition, Filter, KeyCondition};
use atoll_expr::{parse_condition, parse_projection, parse_update};
use common::*;

#[test]
fn conditions() {
    let cases: &[(&str, &str)] = &[
        ("a = :v", "(= a :v)"),
        ("a<>:v", "(<> a :v)"),
        ("a < :v", "(< a :v)"),
        ("a <= :v", "(<= a :v)"),
        ("a > :v", "(> a :v)"),
        ("a >= :v", "(>= a :v)"),
        (":v = a", "(= :v a)"),
        (":a = :b", "(= :a :b)"),
        (":a > :a", "(> :a :a)"),
        ("a = b", "(= a b)"),
        ("#n = :v", "(= #n :v)"),
        ("a.b.c = :v", "(= a.b.c :v)"),
        ("a[0] = :v", "(= a[0] :v)"),
        ("a[10][2].#b[0].c = :v", "(= a[10][2].#b[0].c :v)"),
        ("a [ 3 ] . b = :v", "(= a[3].b :v)"),
        ("a[2147483647] = :v", "(= a[2147483647] :v)"),
        ("#1 = :1", "(= #1 :1)"),
        ("#_ = :_", "(= #_ :_)"),
        ("A_1b = :v", "(= A_1b :v)"),
        (
            "andy = :v AND orange = :w",
            "(AND (= andy :v) (= orange :w))",
        ),
        ("a BETWEEN :lo AND :hi", "(BETWEEN a :lo :hi)"),
        ("a between :lo and :hi", "(BETWEEN a :lo :hi)"),
        ("(a)between(:b)and(:c)", "(BETWEEN a :b :c)"),
        ("a IN (:a)", "(IN a :a)"),
        ("a in (:a, :b, c, size(d))", "(IN a :a :b c size(d))"),
        ("attribute_exists(a)", "(exists a)"),
        ("attribute_exists((a.b))", "(exists a.b)"),
        ("attribute_not_exists(#pk)", "(not_exists #pk)"),
        ("attribute_type(a, :t)", "(type a :t)"),
        ("begins_with(a, :p)", "(begins_with a :p)"),
        ("begins_with(:p, a)", "(begins_with :p a)"),
        ("contains(a, :v)", "(contains a :v)"),
        ("contains(size(a), :v)", "(contains size(a) :v)"),
        ("size(a) > :n", "(> size(a) :n)"),
        ("(size(a)) = :n", "(= size(a) :n)"),
        (
            "((size(b)) = :b) AND c = :c",
            "(AND (= size(b) :b) (= c :c))",
        ),
        (
            "size(a) BETWEEN :a AND size(b)",
            "(BETWEEN size(a) :a size(b))",
        ),
        ("NOT a = :v", "(NOT (= a :v))"),
        ("NOT NOT a = :v", "(NOT (NOT (= a :v)))"),
        ("not attribute_exists(a)", "(NOT (exists a))"),
        ("a = :a AND b = :b", "(AND (= a :a) (= b :b))"),
        ("a = :a OR b = :b", "(OR (= a :a) (= b :b))"),
        // DynamoDB groups chains to the right.
        (
            "a = :a AND b = :b AND c = :c",
            "(AND (= a :a) (AND (= b :b) (= c :c)))",
        ),
        (
            "a = :a OR b = :b OR c = :c",
            "(OR (= a :a) (OR (= b :b) (= c :c)))",
        ),
        // NOT binds tighter than AND, AND than OR.
        (
            "a = :a OR b = :b AND c = :c",
            "(OR (= a :a) (AND (= b :b) (= c :c)))",
        ),
        (
            "a = :a AND b = :b OR c = :c",
            "(OR (AND (= a :a) (= b :b)) (= c :c))",
        ),
        ("NOT a = :a AND b = :b", "(AND (NOT (= a :a)) (= b :b))"),
        ("NOT (a = :a AND b = :b)", "(NOT (AND (= a :a) (= b :b)))"),
        (
            "a = :a OR b = :b AND NOT c = :c OR d = :d",
            "(OR (= a :a) (OR (AND (= b :b) (NOT (= c :c))) (= d :d)))",
        ),
        (
            "(a = :a OR b = :b) AND c = :c",
            "(AND (OR (= a :a) (= b :b)) (= c :c))",
        ),
        ("(a = :a)", "(= a :a)"),
        ("(a) = (:a)", "(= a :a)"),
        ("((a) = :a)", "(= a :a)"),
        (
            "(attribute_not_exists(pk) AND (attribute_not_exists(#s)))",
            "(AND (not_exists pk) (not_exists #s))",
        ),
        (
            "(#pk = :pk AND (#sk = :sk))",
            "(AND (= #pk :pk) (= #sk :sk))",
        ),
        (
            "((a=:a) AND (b=:b)) OR c=:c",
            "(OR (AND (= a :a) (= b :b)) (= c :c))",
        ),
        ("\t a\r\n=\n:v  ", "(= a :v)"),
    ];
    for (text, expected) in cases {
        let parsed = parse_condition(text, Condition);
        let rendered = parsed
            .as_ref()
            .map(condition)
            .map_err(|e| e.message().to_owned());
        assert_eq!(rendered.as_deref(), Ok(*expected), "{text}");
    }
}

#[test]
fn filters_and_key_conditions_share_the_grammar() {
    for kind in [Filter, KeyCondition] {
        let parsed = parse_condition("pk = :pk AND begins_with(sk, :p)", kind);
        assert_eq!(
            parsed.as_ref().map(condition).ok().as_deref(),
            Some("(AND (= pk :pk) (begins_with sk :p))")
        );
    }
}

#[test]
fn updates() {
    let cases: &[(&str, &str)] = &[
        ("SET a = :v", "SET a = :v"),
        ("set a = :v", "SET a = :v"),
        ("sEt b = :val1", "SET b = :val1"),
        ("  set   b=:val1  ", "SET b = :val1"),
        ("SET a = :a, b = :b", "SET a = :a; SET b = :b"),
        ("SET a = b", "SET a = b"),
        ("SET #one = #two", "SET #one = #two"),
        ("SET a.b[2].c = :v", "SET a.b[2].c = :v"),
        ("SET a = a + :n", "SET a = a + :n"),
        ("SET a = :n - a", "SET a = :n - a"),
        ("SET a=a-:n", "SET a = a - :n"),
        ("SET a = (b + c)", "SET a = b + c"),
        ("SET a = (b)", "SET a = b"),
        ("SET a = ((b.c.d)+(e))", "SET a = b.c.d + e"),
        ("SET a = (b) + (:c)", "SET a = b + :c"),
        (
            "SET a = if_not_exists(a, :v)",
            "SET a = if_not_exists(a, :v)",
        ),
        (
            "SET a = if_not_exists(a, if_not_exists(b, :v))",
            "SET a = if_not_exists(a, if_not_exists(b, :v))",
        ),
        (
            "SET a = if_not_exists(a, :z) + :n",
            "SET a = if_not_exists(a, :z) + :n",
        ),
        ("SET l = list_append(l, :v)", "SET l = list_append(l, :v)"),
        ("SET l = list_append(:v, l)", "SET l = list_append(:v, l)"),
        (
            "SET l = list_append(if_not_exists(l, :e), :v)",
            "SET l = list_append(if_not_exists(l, :e), :v)",
        ),
        ("REMOVE a", "REMOVE a"),
        ("REMOVE a, b.c, d[3]", "REMOVE a; REMOVE b.c; REMOVE d[3]"),
        ("ADD n :one", "ADD n :one"),
        ("ADD s :set, n :one", "ADD s :set; ADD n :one"),
        ("DELETE s :set", "DELETE s :set"),
        (
            "REMOVE a SET b = :v ADD c :n DELETE d :s",
            "REMOVE a; SET b = :v; ADD c :n; DELETE d :s",
        ),
        (
            "SET a = :a REMOVE b ADD c :c DELETE d :d",
            "SET a = :a; REMOVE b; ADD c :c; DELETE d :d",
        ),
        ("SET a = :v, b = :v", "SET a = :v; SET b = :v"),
        (
            "SET #Alpha_Numeric_123 = :val1",
            "SET #Alpha_Numeric_123 = :val1",
        ),
        ("SET A123_ = :v", "SET A123_ = :v"),
        ("SET a[0] = :v, a[1] = :w", "SET a[0] = :v; SET a[1] = :w"),
    ];
    for (text, expected) in cases {
        let parsed = parse_update(text);
        let rendered = parsed
            .as_ref()
            .map(update)
            .map_err(|e| e.message().to_owned());
        assert_eq!(rendered.as_deref(), Ok(*expected), "{text}");
    }
}

#[test]
fn projections() {
    let cases: &[(&str, &str)] = &[
        ("a", "a"),
        ("a, b", "a, b"),
        ("pk, #status", "pk, #status"),
        ("a.b, a.c", "a.b, a.c"),
        ("a[0], a[1].x", "a[0], a[1].x"),
        ("#l[2], #l[0]", "#l[2], #l[0]"),
        ("a , b , c", "a, b, c"),
        ("a.b.c.d.e", "a.b.c.d.e"),
    ];
    for (text, expected) in cases {
        let parsed = parse_projection(text);
        let rendered = parsed
            .as_ref()
            .map(projection)
            .map_err(|e| e.message().to_owned());
        assert_eq!(rendered.as_deref(), Ok(*expected), "{text}");
    }
    // 4096 characters is the limit, and allowed (verified).
    let long = format!("a{}", "z".repeat(4095));
    assert!(parse_projection(&long).is_ok());
}

#[test]
fn values_fold_what_the_ast_cannot_hold() {
    let no_names = names(&[]);
    let cases = [
        (
            "size(:s) = :n",
            values(&[(":s", s("héllo")), (":n", n("5"))]),
            "(= N(Number(5)) :n)",
        ),
        (
            "attribute_type(:s, :t)",
            values(&[(":s", s("x")), (":t", s("S"))]),
            "(= S(\"\") S(\"\"))",
        ),
        (
            "attribute_type(:s, :t)",
            values(&[(":s", s("x")), (":t", s("N"))]),
            "(<> S(\"\") S(\"\"))",
        ),
        (
            "attribute_type(size(a), :t)",
            values(&[(":t", s("N"))]),
            "(>= size(a) N(Number(0)))",
        ),
    ];
    for (text, value_map, expected) in cases {
        let checked = check(Filter, text, &no_names, &value_map);
        let rendered = checked
            .as_ref()
            .map(|v| {
                v.filter
                    .as_ref()
                    .map(|f| condition(f.condition()))
                    .unwrap_or_default()
            })
            .map_err(|e| e.message().to_owned());
        assert_eq!(rendered.as_deref(), Ok(expected), "{text}");
    }
}

#[test]
fn validated_expressions_resolve_references() {
    let name_map = names(&[("#a", "alpha"), ("#b", "beta")]);
    let value_map = values(&[(":v", s("x"))]);
    let checked = check(
        Condition,
        "#a.x = :v AND #b = :v AND c[0] = :v",
        &name_map,
        &value_map,
    )
    .ok()
    .and_then(|v| v.condition);
    let references = checked.map(|c| c.references).unwrap_or_default();
    assert_eq!(references.top_level, vec!["alpha", "beta", "c"]);
    assert_eq!(references.nested_top_level, vec!["alpha", "c"]);
}
