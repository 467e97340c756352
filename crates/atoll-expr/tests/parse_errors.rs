//! Expressions DynamoDB refuses, and its exact message for each.
//!
//! Provenance, per group: "verified" texts come from tests run against
//! DynamoDB (dynalite's test suite, the nubo-db conformance suite, moto's
//! AWS-verified tests) or from messages applications logged; "model" texts
//! follow DynamoDB's own parser as shipped in DynamoDB Local (ANTLR grammar,
//! token/near rule, check order) without a check against the service. In
//! dynalite's syntax-error tests only the `Syntax error; ` prefix is
//! verified; the token and near parts there are the model's.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use atoll_expr::ExpressionKind::{self, Condition, Filter, KeyCondition, Projection, Update};
use atoll_model::AttributeValue;
use common::*;

type Case<'a> = (ExpressionKind, &'a str, &'a str);

fn run(
    cases: &[Case],
    name_map: &HashMap<String, String>,
    value_map: &HashMap<String, AttributeValue>,
) {
    for (kind, text, expected) in cases {
        let got = message(*kind, text, name_map, value_map);
        assert_eq!(got, *expected, "{} {text:?}", kind.parameter_name());
    }
}

fn run_plain(cases: &[Case]) {
    run(cases, &names(&[]), &values(&[]));
}

#[test]
fn empty_and_too_long() {
    // verified (dynalite, conformance, ExtendDB captures of DynamoDB)
    for kind in [Condition, Filter, KeyCondition, Projection, Update] {
        let expected = format!(
            "Invalid {}: The expression can not be empty;",
            kind.parameter_name()
        );
        assert_eq!(message(kind, "", &names(&[]), &values(&[])), expected);
    }
    let path = format!("a{}", "z".repeat(4096));
    let filter = format!("{path} = :v");
    assert_eq!(
        message(Filter, &filter, &names(&[]), &values(&[(":v", s("x"))])),
        format!(
            "Invalid FilterExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
            filter.len()
        )
    );
    let condition = format!("attribute_not_exists({path})");
    assert_eq!(
        message(Condition, &condition, &names(&[]), &values(&[])),
        format!(
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
            condition.len()
        )
    );
    for (kind, text) in [
        (KeyCondition, format!("pk = :p AND {path} = :q")),
        (Update, format!("SET {path} = :v")),
        (Projection, path.clone()),
    ] {
        assert_eq!(
            message(kind, &text, &names(&[]), &values(&[])),
            format!(
                "Invalid {}: Expression size has exceeded the maximum allowed size;",
                kind.parameter_name()
            )
        );
    }
    // model: the size counts UTF-16 code units (Java's String.length()), not bytes.
    let wide = "é".repeat(4096);
    assert!(message(Projection, &wide, &names(&[]), &values(&[])).contains("Syntax error"));
    let too_wide = "é".repeat(4097);
    assert_eq!(
        message(Projection, &too_wide, &names(&[]), &values(&[])),
        "Invalid ProjectionExpression: Expression size has exceeded the maximum allowed size;"
    );
}

#[test]
fn syntax_errors_verified() {
    run_plain(&[
        // conformance suite
        (
            Update,
            "INVALID SYNTAX HERE",
            r#"Invalid UpdateExpression: Syntax error; token: "INVALID", near: "INVALID SYNTAX""#,
        ),
        (
            Projection,
            "!!! INVALID !!!",
            r#"Invalid ProjectionExpression: Syntax error; token: "!", near: "!!""#,
        ),
        // moto (AWS-verified tests) and logged DynamoDB messages
        (
            Update,
            "SET #attr1 = :val1, #attr2 = :val2,",
            r#"Invalid UpdateExpression: Syntax error; token: "<EOF>", near: ",""#,
        ),
        (
            Update,
            "SET MyStr = myNum + 1",
            r#"Invalid UpdateExpression: Syntax error; token: "1", near: "+ 1""#,
        ),
        (
            Update,
            "SET MyStr = myNum Mystr2 myNum2",
            r#"Invalid UpdateExpression: Syntax error; token: "Mystr2", near: "myNum Mystr2 myNum2""#,
        ),
        (
            Update,
            "SET MyStr = my Num",
            r#"Invalid UpdateExpression: Syntax error; token: "Num", near: "my Num""#,
        ),
        (
            Update,
            "ADD str_set bad_value",
            r#"Invalid UpdateExpression: Syntax error; token: "bad_value", near: "str_set bad_value""#,
        ),
        (
            Update,
            "DELETE num_val badvalue",
            r#"Invalid UpdateExpression: Syntax error; token: "badvalue", near: "num_val badvalue""#,
        ),
        (
            Update,
            "SET path = VALUE 1",
            r#"Invalid UpdateExpression: Syntax error; token: "1", near: "VALUE 1""#,
        ),
        (
            Update,
            "ADD hits : incr",
            r#"Invalid UpdateExpression: Syntax error; token: ":", near: "hits : incr""#,
        ),
        (
            Update,
            "SET _123 = :val1",
            r#"Invalid UpdateExpression: Syntax error; token: "_", near: "SET _123""#,
        ),
        (
            Condition,
            "foo",
            r#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "foo""#,
        ),
        (
            KeyCondition,
            "[object Object]",
            r#"Invalid KeyConditionExpression: Syntax error; token: "[", near: "[object""#,
        ),
    ]);
}

#[test]
fn syntax_errors_model() {
    // The inputs are dynalite's (verified to be syntax errors).
    run_plain(&[
        (
            Filter,
            "things are not gonna be ok",
            r#"Invalid FilterExpression: Syntax error; token: "are", near: "things are not""#,
        ),
        (
            Filter,
            "a > 4",
            r#"Invalid FilterExpression: Syntax error; token: "4", near: "> 4""#,
        ),
        (
            Filter,
            "attribute_exists(Pictures-RearView)",
            r#"Invalid FilterExpression: Syntax error; token: "-", near: "Pictures-RearView""#,
        ),
        (
            Filter,
            "attribute_exists(\"Pictures.RearView\")",
            r#"Invalid FilterExpression: Syntax error; token: """, near: "("Pictures""#,
        ),
        (
            Filter,
            "attribute_exists(Pictures..RearView)",
            r#"Invalid FilterExpression: Syntax error; token: ".", near: "..RearView""#,
        ),
        (
            Filter,
            "attribute_exists(Pi#ctures.RearView)",
            r##"Invalid FilterExpression: Syntax error; token: "#ctures", near: "Pi#ctures.""##,
        ),
        (
            Filter,
            "attribute_exists(asdf[a])",
            r#"Invalid FilterExpression: Syntax error; token: "a", near: "[a]""#,
        ),
        (
            Filter,
            "a in b, c",
            r#"Invalid FilterExpression: Syntax error; token: "b", near: "in b,""#,
        ),
        (
            Filter,
            "a > between",
            r#"Invalid FilterExpression: Syntax error; token: "between", near: "> between""#,
        ),
        (
            Filter,
            "a in (b,c,)",
            r#"Invalid FilterExpression: Syntax error; token: ")", near: ",)""#,
        ),
        (
            Filter,
            "(a)between(b.(c.d))and(c)",
            r#"Invalid FilterExpression: Syntax error; token: "(", near: ".(c""#,
        ),
        (
            Filter,
            "(a)between(b.c.d)and((c)",
            r#"Invalid FilterExpression: Syntax error; token: "<EOF>", near: ")""#,
        ),
        (
            Filter,
            "#$.b > a",
            r##"Invalid FilterExpression: Syntax error; token: "#", near: "#$""##,
        ),
        (
            Filter,
            "a > :things.stuff",
            r#"Invalid FilterExpression: Syntax error; token: ".", near: ":things.stuff""#,
        ),
        (
            Filter,
            "b[:a] > a",
            r#"Invalid FilterExpression: Syntax error; token: ":a", near: "[:a]""#,
        ),
        (
            Filter,
            "b[#_] > a",
            r##"Invalid FilterExpression: Syntax error; token: "#_", near: "[#_]""##,
        ),
        (
            Filter,
            "ü > a",
            r#"Invalid FilterExpression: Syntax error; token: "ü", near: "ü >""#,
        ),
        (
            Filter,
            "(a)between(b.c[4.5].#d)and(:a)",
            r#"Invalid FilterExpression: Syntax error; token: ".", near: "4.5""#,
        ),
        (
            Filter,
            "size(a).b > a",
            r#"Invalid FilterExpression: Syntax error; token: ".", near: ").b""#,
        ),
        (
            Filter,
            "(size(a))[0] > a",
            r#"Invalid FilterExpression: Syntax error; token: "[", near: ")[0""#,
        ),
        (
            KeyCondition,
            "pk=:pk AND begins_with sk, :sk ",
            r#"Invalid KeyConditionExpression: Syntax error; token: "sk", near: "begins_with sk,""#,
        ),
        (
            Update,
            "whatever",
            r#"Invalid UpdateExpression: Syntax error; token: "whatever", near: "whatever""#,
        ),
        (
            Update,
            "set a",
            r#"Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "a""#,
        ),
        (
            Update,
            "set a=set",
            r#"Invalid UpdateExpression: Syntax error; token: "set", near: "=set""#,
        ),
        (
            Update,
            "remove a = b",
            r#"Invalid UpdateExpression: Syntax error; token: "=", near: "a = b""#,
        ),
        (
            Update,
            "delete a if_not_exist(b)",
            r#"Invalid UpdateExpression: Syntax error; token: "if_not_exist", near: "a if_not_exist(""#,
        ),
        (
            Update,
            "set :a = b",
            r#"Invalid UpdateExpression: Syntax error; token: ":a", near: "set :a =""#,
        ),
        (
            Update,
            "remove :a",
            r#"Invalid UpdateExpression: Syntax error; token: ":a", near: "remove :a""#,
        ),
        (
            Update,
            "set a = b / c",
            r#"Invalid UpdateExpression: Syntax error; token: "/", near: "b / c""#,
        ),
        (
            Update,
            "set a[1] = \"eight\"",
            r#"Invalid UpdateExpression: Syntax error; token: """, near: "= "eight""#,
        ),
        (
            Update,
            "SET a = if_not_exist(a, 100)",
            r#"Invalid UpdateExpression: Syntax error; token: "100", near: ", 100)""#,
        ),
        (
            Update,
            "SET if_not_exist(a, b) = a",
            r#"Invalid UpdateExpression: Syntax error; token: "(", near: "if_not_exist(a""#,
        ),
        (
            Update,
            "set (a = (b + c))",
            r#"Invalid UpdateExpression: Syntax error; token: "(", near: "set (a""#,
        ),
        (
            Update,
            "set a = (b.c).d + e",
            r#"Invalid UpdateExpression: Syntax error; token: ".", near: ").d""#,
        ),
        (
            Update,
            "set a = b + c + d",
            r#"Invalid UpdateExpression: Syntax error; token: "+", near: "c + d""#,
        ),
        (
            Update,
            "SET a = :v SET",
            r#"Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "SET""#,
        ),
        (
            Update,
            "SET a = :v,, b = :w",
            r#"Invalid UpdateExpression: Syntax error; token: ",", near: ",, b""#,
        ),
        (
            Update,
            "SET # = :val1",
            r##"Invalid UpdateExpression: Syntax error; token: "#", near: "SET # =""##,
        ),
        (
            Update,
            "SET a = :",
            r#"Invalid UpdateExpression: Syntax error; token: ":", near: "= :""#,
        ),
        (
            Update,
            "SET hi$there = :val1",
            r#"Invalid UpdateExpression: Syntax error; token: "$", near: "hi$there""#,
        ),
        (
            Update,
            "SET 123a = :val1",
            r#"Invalid UpdateExpression: Syntax error; token: "123", near: "SET 123a""#,
        ),
        (
            Update,
            "SET a[01] = :v",
            r#"Invalid UpdateExpression: Syntax error; token: "1", near: "01]""#,
        ),
        // Keywords are tokens in every expression kind.
        (
            Update,
            "SET and = :v",
            r#"Invalid UpdateExpression: Syntax error; token: "and", near: "SET and =""#,
        ),
        (
            Condition,
            "set = :v",
            r#"Invalid ConditionExpression: Syntax error; token: "set", near: "set =""#,
        ),
        (
            Projection,
            "pk, delete",
            r#"Invalid ProjectionExpression: Syntax error; token: "delete", near: ", delete""#,
        ),
        (
            Projection,
            "a b",
            r#"Invalid ProjectionExpression: Syntax error; token: "b", near: "a b""#,
        ),
        (
            Projection,
            "a,",
            r#"Invalid ProjectionExpression: Syntax error; token: "<EOF>", near: ",""#,
        ),
        (
            Projection,
            " ",
            r#"Invalid ProjectionExpression: Syntax error; token: "<EOF>", near: " ""#,
        ),
        (
            Projection,
            "a = b",
            r#"Invalid ProjectionExpression: Syntax error; token: "=", near: "a = b""#,
        ),
        (
            Projection,
            ":v",
            r#"Invalid ProjectionExpression: Syntax error; token: ":v", near: ":v""#,
        ),
        // With the last two candidates failing on one token, that token is
        // the error, even after a redundant pair (the parser never committed).
        (
            Condition,
            "((a))",
            r#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ")""#,
        ),
        (
            Condition,
            "NOT",
            r#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "NOT""#,
        ),
        (
            Condition,
            "a = :v AND",
            r#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "AND""#,
        ),
        (
            Condition,
            "a = :v)",
            r#"Invalid ConditionExpression: Syntax error; token: ")", near: ":v)""#,
        ),
        (
            Condition,
            "(a = :v",
            r#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ":v""#,
        ),
        (
            Condition,
            "a IN ()",
            r#"Invalid ConditionExpression: Syntax error; token: ")", near: "()""#,
        ),
        (
            Condition,
            "a BETWEEN :a",
            r#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ":a""#,
        ),
        (
            Condition,
            "a = :v b = :w",
            r#"Invalid ConditionExpression: Syntax error; token: "b", near: ":v b =""#,
        ),
        (
            Condition,
            "a != :v",
            r#"Invalid ConditionExpression: Syntax error; token: "!", near: "a !=""#,
        ),
        (
            Condition,
            "attribute_exists a",
            r#"Invalid ConditionExpression: Syntax error; token: "a", near: "attribute_exists a""#,
        ),
    ]);
}

#[test]
fn redundant_parentheses() {
    // verified (dynalite; conformance for key conditions)
    let cases: Vec<Case> = [
        "a=a and a > ((views))",
        "(a)between(((b.c)).d)and(c)",
        "a > whatever((:things), ((a)))",
        "a=a AND ((a=a AND a=a)) AND a=a",
        "a=a OR ((a=a OR a=a)) OR a=a",
        "a=a AND ((a=a AND (a=a AND a=a)))",
        "a=a OR ((a=a OR (a=a OR a=a)))",
        "((#pk = :pk)) AND ((#sk = :sk))",
        // model: the parser commits once the next token decides, so the
        // pair is reported before the later syntax error.
        "((a)) = ",
        "NOT ((a = :b))",
    ]
    .into_iter()
    .map(|text| {
        (
            Filter,
            text,
            "Invalid FilterExpression: The expression has redundant parentheses;",
        )
    })
    .collect();
    run_plain(&cases);
    run_plain(&[
        (
            Update,
            "SET a = ((b))",
            "Invalid UpdateExpression: The expression has redundant parentheses;",
        ),
        (
            Update,
            "SET a = ((b + c))",
            "Invalid UpdateExpression: The expression has redundant parentheses;",
        ),
        (
            Update,
            "SET a = list_append(((b)), c)",
            "Invalid UpdateExpression: The expression has redundant parentheses;",
        ),
    ]);
}

#[test]
fn walk_checks() {
    // verified (dynalite)
    run_plain(&[
        (
            Filter,
            "a=a and whatever((:things)) > a",
            "Invalid FilterExpression: Invalid function name; function: whatever",
        ),
        (
            Filter,
            "attRIbute_exIsts((views), #a)",
            "Invalid FilterExpression: Invalid function name; function: attRIbute_exIsts",
        ),
        (
            Filter,
            "a=a and attribute_exists((views), (#a)) > b",
            "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: attribute_exists",
        ),
        (
            Filter,
            "attribute_not_exists(things) > b",
            "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: attribute_not_exists",
        ),
        (
            Filter,
            "attribute_type(things, :a) > b",
            "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: attribute_type",
        ),
        (
            Filter,
            "begins_with(things, a) > b",
            "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: begins_with",
        ),
        (
            Filter,
            "contains(:things, c) > b",
            "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: contains",
        ),
        (
            Filter,
            "size(contains(a, b)) > a",
            "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: contains",
        ),
        (
            Filter,
            "size(things)",
            "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: size",
        ),
        (
            Filter,
            "a between b and attribute_exists(things)",
            "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: attribute_exists",
        ),
        (
            Filter,
            "a in (b, attribute_exists(things))",
            "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: attribute_exists",
        ),
        (
            Filter,
            "attribute_exists(views, #a)",
            "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: views",
        ),
        (
            Filter,
            ":a < abOrT",
            "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: abOrT",
        ),
        (
            Update,
            " set #c = :c set abOrt = true ",
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: abOrt",
        ),
        (
            Update,
            " remove Absolute ",
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: Absolute",
        ),
        (
            Update,
            "set #c = if_not_exist(:c) set c = d",
            "Invalid UpdateExpression: Invalid function name; function: if_not_exist",
        ),
        (
            Update,
            "set a = #c set c = :d",
            "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;",
        ),
        (
            Update,
            "remove #d set a = b remove e",
            "Invalid UpdateExpression: The \"REMOVE\" section can only be used once in an update expression;",
        ),
        (
            Update,
            "add #d :e set a = b add e :f",
            "Invalid UpdateExpression: The \"ADD\" section can only be used once in an update expression;",
        ),
        (
            Update,
            "delete #d :e set a = b delete #e :f",
            "Invalid UpdateExpression: The \"DELETE\" section can only be used once in an update expression;",
        ),
        (
            Projection,
            "pk, status",
            "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: status",
        ),
        (
            Update,
            "SET status = :val",
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status",
        ),
        (
            Condition,
            "status = :val",
            "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status",
        ),
    ]);
    // model (DynamoDB Local's walk)
    run_plain(&[
        (
            Condition,
            "if_not_exists(a, :v) = :v",
            "Invalid ConditionExpression: The function is not allowed in a condition expression; function: if_not_exists",
        ),
        (
            Condition,
            "list_append(a, :v) = :v",
            "Invalid ConditionExpression: The function is not allowed in a condition expression; function: list_append",
        ),
        (
            Update,
            "SET a = size(b)",
            "Invalid UpdateExpression: The function is not allowed in an update expression; function: size",
        ),
        (
            Update,
            "SET a = attribute_exists(b)",
            "Invalid UpdateExpression: The function is not allowed in an update expression; function: attribute_exists",
        ),
        (
            Update,
            "SET a = list_append(list_append(a, b), c)",
            "Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: list_append",
        ),
        (
            Update,
            "SET a = list_append(a, b) + c",
            "Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: list_append",
        ),
        (
            Update,
            "SET a = if_not_exists(a, list_append(b, c))",
            "Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: list_append",
        ),
        (
            Update,
            "SET a = list_delete(a, :i)",
            "Invalid UpdateExpression: Invalid function name; function: list_delete",
        ),
        (
            Filter,
            "a[2147483648] = :v",
            "Invalid FilterExpression: List index is not within the allowable range; index: [2147483648]",
        ),
        // The first problem in the text wins.
        (
            Update,
            "SET status = foo(a) SET b = :v",
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status",
        ),
        (
            Update,
            "SET a = :v SET status = :w",
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status",
        ),
        (
            Filter,
            "foo(a) = :v AND size = :v",
            "Invalid FilterExpression: Invalid function name; function: foo",
        ),
        (
            Filter,
            "size = :v AND foo(a) = :v",
            "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: size",
        ),
    ]);
}

#[test]
fn undefined_placeholders_and_operands() {
    // verified (dynalite, conformance)
    run_plain(&[
        (
            Filter,
            "attribute_exists(#Pictures.RearView, :a) and a=a",
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: #Pictures",
        ),
        (
            Filter,
            "begins_with(Pictures.#RearView)",
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: #RearView",
        ),
        (
            Filter,
            "(#P between :lo and :hi) and (#PC in (:cat1, :cat2))",
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: #P",
        ),
        (
            Filter,
            "#4g > a",
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: #4g",
        ),
        (
            Filter,
            "#_ > a",
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: #_",
        ),
        (
            Filter,
            "(a)between(b.c[45].#d)and(:a)",
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: #d",
        ),
        (
            Filter,
            "begins_with(:hello, #a, #b)",
            "Invalid FilterExpression: An expression attribute value used in expression is not defined; attribute value: :hello",
        ),
        (
            Filter,
            ":a < :b",
            "Invalid FilterExpression: An expression attribute value used in expression is not defined; attribute value: :a",
        ),
        (
            Filter,
            ":_ > a",
            "Invalid FilterExpression: An expression attribute value used in expression is not defined; attribute value: :_",
        ),
        (
            Filter,
            "attribute_exists(things, a) and a=a",
            "Invalid FilterExpression: Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2",
        ),
        (
            Filter,
            "attribute_not_exists(things, b)",
            "Invalid FilterExpression: Incorrect number of operands for operator or function; operator or function: attribute_not_exists, number of operands: 2",
        ),
        (
            Filter,
            "attribute_type(things)",
            "Invalid FilterExpression: Incorrect number of operands for operator or function; operator or function: attribute_type, number of operands: 1",
        ),
        (
            Filter,
            "begins_with(things, size(a), b)",
            "Invalid FilterExpression: Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 3",
        ),
        (
            Filter,
            "contains(things)",
            "Invalid FilterExpression: Incorrect number of operands for operator or function; operator or function: contains, number of operands: 1",
        ),
        (
            Filter,
            "size(things, a) > b",
            "Invalid FilterExpression: Incorrect number of operands for operator or function; operator or function: size, number of operands: 2",
        ),
        (
            Update,
            "set a = if_not_exists(c)",
            "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1",
        ),
        (
            Update,
            "set a = list_append(c)",
            "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1",
        ),
        (
            Filter,
            "#missing = :fv",
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: #missing",
        ),
        (
            Update,
            "SET a = :v",
            "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :v",
        ),
        (
            Projection,
            "#undef",
            "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #undef",
        ),
    ]);
    let ab = names(&[("#a", "a"), ("#b", "b")]);
    let two = values(&[(":a", s("a")), (":b", s("a"))]);
    run(
        &[
            (
                Update,
                "SET #c = if_not_exists(:c)",
                "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #c",
            ),
            (
                Update,
                "SET #a = if_not_exists(:c)",
                "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :c",
            ),
            (
                Update,
                "set a = if_not_exists(:a, c)",
                "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists",
            ),
            (
                Update,
                "set a = if_not_exists(if_not_exists(a, b), c)",
                "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists",
            ),
        ],
        &ab,
        &two,
    );
    // model: an update is checked last action first, targets before operands.
    run_plain(&[
        (
            Update,
            "SET a = :x, b = :y",
            "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :y",
        ),
        (
            Update,
            "SET #a = :x, #b = :y",
            "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #b",
        ),
        (
            Update,
            "SET a = #x, #b = :y",
            "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #b",
        ),
        (
            Projection,
            "#a, #b",
            "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #b",
        ),
        (
            Filter,
            "a.:v = :w",
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: :v",
        ),
    ]);
}

#[test]
fn operand_types() {
    // verified (dynalite, except the last group)
    let cases: &[(&str, AttributeValue, &str)] = &[
        (
            "attribute_type(a, size(a)) and a=a and a=:a",
            n("1"),
            "attribute_type, operand type: N",
        ),
        (
            "attribute_type(a, :a)",
            n("1"),
            "attribute_type, operand type: N",
        ),
        (
            "attribute_type(a, :a)",
            b(b"a"),
            "attribute_type, operand type: B",
        ),
        (
            "attribute_type(a, :a)",
            AttributeValue::Bool(true),
            "attribute_type, operand type: BOOL",
        ),
        (
            "attribute_type(a, :a)",
            AttributeValue::Null,
            "attribute_type, operand type: NULL",
        ),
        (
            "attribute_type(a, :a)",
            AttributeValue::L(vec![]),
            "attribute_type, operand type: L",
        ),
        (
            "attribute_type(a, :a)",
            ns(&["1"]),
            "attribute_type, operand type: NS",
        ),
        (
            "begins_with(a, size(a)) and a=:a",
            n("1"),
            "begins_with, operand type: N",
        ),
        ("begins_with(a, :a)", n("1"), "begins_with, operand type: N"),
        (
            "begins_with(a, :a)",
            AttributeValue::M(Default::default()),
            "begins_with, operand type: M",
        ),
        (
            "begins_with(a, :a)",
            ss(&["1"]),
            "begins_with, operand type: SS",
        ),
        (
            "begins_with(:a, a)",
            AttributeValue::Bool(false),
            "begins_with, operand type: BOOL",
        ),
        ("size(size(a)) > :a", n("1"), "size, operand type: N"),
        (
            "attribute_not_exists(size(:a))",
            n("1"),
            "size, operand type: N",
        ),
        (
            "size(:a) > a",
            AttributeValue::Bool(true),
            "size, operand type: BOOL",
        ),
        (
            "size(:a) > a",
            AttributeValue::Null,
            "size, operand type: NULL",
        ),
        // verified shape (conformance: the check fires before any item is read); model text
        (
            "a < :a",
            AttributeValue::Bool(true),
            "<, operand type: BOOL",
        ),
        (
            "a BETWEEN :a AND b",
            ss(&["x"]),
            "BETWEEN, operand type: SS",
        ),
    ];
    for (text, value, tail) in cases {
        let got = message(Filter, text, &names(&[]), &values(&[(":a", value.clone())]));
        assert_eq!(
            got,
            format!(
                "Invalid FilterExpression: Incorrect operand type for operator or function; operator or function: {tail}"
            ),
            "{text}"
        );
    }
    let one = values(&[(":a", s("1"))]);
    run(
        &[
            (
                Filter,
                "attribute_type(a, :a)",
                "Invalid FilterExpression: Invalid attribute type name found; type: 1, valid types: {N,BS,L,B,NULL,M,S,SS,NS,BOOL}",
            ),
            (
                Filter,
                "attribute_exists(:a) and a=a",
                "Invalid FilterExpression: Operator or function requires a document path; operator or function: attribute_exists",
            ),
            (
                Filter,
                "attribute_not_exists(size(:a))",
                "Invalid FilterExpression: Operator or function requires a document path; operator or function: attribute_not_exists",
            ),
            (
                KeyCondition,
                "attribute_type(a, b)",
                "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {NS,SS,L,BS,N,M,B,BOOL,NULL,S}",
            ),
        ],
        &names(&[]),
        &one,
    );
    // verified (dynalite)
    let update_values = values(&[
        (":a", s("a")),
        (":b", n("1")),
        (":c", b(b"a")),
        (":d", AttributeValue::Bool(false)),
        (":e", AttributeValue::Null),
        (":f", ss(&["a"])),
        (":g", ns(&["1"])),
        (":i", AttributeValue::M(Default::default())),
        (":j", AttributeValue::L(vec![])),
    ]);
    let update_cases: &[(&str, &str)] = &[
        ("set a = list_append(:a, a)", "list_append, operand type: S"),
        ("set a = list_append(a, :b)", "list_append, operand type: N"),
        ("set a = list_append(:c, a)", "list_append, operand type: B"),
        ("set a = list_append(:i, a)", "list_append, operand type: M"),
        ("set a = a + :a", "+, operand type: S"),
        ("set a = :a + :c", "+, operand type: S"),
        ("set a = :c + a", "+, operand type: B"),
        ("set a = a + :d", "+, operand type: BOOL"),
        ("set a = a + :e", "+, operand type: NULL"),
        ("set a = a - :f", "-, operand type: SS"),
        ("set a = a - :g", "-, operand type: NS"),
        ("set a = a - :j", "-, operand type: L"),
    ];
    for (text, tail) in update_cases {
        let used: std::collections::HashSet<&str> = text
            .split(|c: char| !(c == ':' || c.is_alphanumeric()))
            .collect();
        let value_map: HashMap<String, AttributeValue> = update_values
            .iter()
            .filter(|(key, _)| used.contains(key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            message(Update, text, &names(&[]), &value_map),
            format!(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: {tail}"
            ),
            "{text}"
        );
    }
    // verified (messages logged from DynamoDB: the typeSet suffix)
    let add_delete: &[(&str, AttributeValue, &str)] = &[
        (
            "add a.b :a",
            s("a"),
            "operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND",
        ),
        (
            "add a.b :a",
            AttributeValue::M(Default::default()),
            "operator: ADD, operand type: MAP, typeSet: ALLOWED_FOR_ADD_OPERAND",
        ),
        (
            "add a.b :a",
            AttributeValue::Null,
            "operator: ADD, operand type: NULL, typeSet: ALLOWED_FOR_ADD_OPERAND",
        ),
        (
            "add a.b :a",
            AttributeValue::Bool(true),
            "operator: ADD, operand type: BOOLEAN, typeSet: ALLOWED_FOR_ADD_OPERAND",
        ),
        (
            "add a.b :a",
            b(b"a"),
            "operator: ADD, operand type: BINARY, typeSet: ALLOWED_FOR_ADD_OPERAND",
        ),
        (
            "add a.b :a",
            AttributeValue::L(vec![]),
            "operator: ADD, operand type: LIST, typeSet: ALLOWED_FOR_ADD_OPERAND",
        ),
        (
            "delete a.b :a",
            s("a"),
            "operator: DELETE, operand type: STRING, typeSet: ALLOWED_FOR_DELETE_OPERAND",
        ),
        (
            "delete a.b :a",
            n("1"),
            "operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND",
        ),
    ];
    for (text, value, tail) in add_delete {
        assert_eq!(
            message(Update, text, &names(&[]), &values(&[(":a", value.clone())])),
            format!(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; {tail}"
            ),
            "{text}"
        );
    }
    for ok in ["add a :a", "delete a :a"] {
        assert_eq!(
            message(Update, ok, &names(&[]), &values(&[(":a", ss(&["x"]))])),
            "ok"
        );
    }
    assert_eq!(
        message(Update, "add a :a", &names(&[]), &values(&[(":a", n("1"))])),
        "ok"
    );
}

#[test]
fn distinct_operands() {
    // verified (dynalite)
    let a = names(&[("#a", "a")]);
    let cases: &[(&str, &str, &str)] = &[
        ("a = a AND #a = b AND :views > a", "=", "[a]"),
        ("#a <> a", "<>", "[a]"),
        ("a > #a", ">", "[a]"),
        ("((a=a) OR (a=a))", "=", "[a]"),
        (
            "contains(ab.bc[1].a, ab.bc[1].#a)",
            "contains",
            "[ab, bc, [1], a]",
        ),
        (
            "attribute_type(ab.bc[1].#a, ab.bc[1].a)",
            "attribute_type",
            "[ab, bc, [1], a]",
        ),
        (
            "begins_with(ab.bc[1].a, ab.bc[1].#a)",
            "begins_with",
            "[ab, bc, [1], a]",
        ),
        // model: IN, BETWEEN and if_not_exists check it too
        ("a IN (b, a)", "IN", "[a]"),
        ("a BETWEEN b AND #a", "BETWEEN", "[a]"),
    ];
    for (text, op, first) in cases {
        assert_eq!(
            message(Filter, text, &a, &values(&[])),
            format!(
                "Invalid FilterExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: {op}, first operand: {first}"
            ),
            "{text}"
        );
    }
    assert_eq!(
        message(
            Update,
            "SET b = if_not_exists(a, a)",
            &names(&[]),
            &values(&[])
        ),
        "Invalid UpdateExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: if_not_exists, first operand: [a]"
    );
    // Values may repeat.
    assert_eq!(
        message(Filter, ":a > :a", &names(&[]), &values(&[(":a", n("1"))])),
        "ok"
    );
}

#[test]
fn between_bounds() {
    // verified (dynalite, key-condition tests against DynamoDB)
    assert_eq!(
        message(
            KeyCondition,
            "a between :b and :a",
            &names(&[]),
            &values(&[(":a", s("a")), (":b", n("1"))])
        ),
        "Invalid KeyConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}"
    );
    assert_eq!(
        message(
            KeyCondition,
            "a between :b and :a",
            &names(&[]),
            &values(&[(":a", s("a")), (":b", s("b"))])
        ),
        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {S:b}, upper bound operand: AttributeValue: {S:a}"
    );
    assert_eq!(
        message(
            Condition,
            "a BETWEEN :lo AND :hi",
            &names(&[]),
            &values(&[(":lo", n("2")), (":hi", n("1"))])
        ),
        "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:2}, upper bound operand: AttributeValue: {N:1}"
    );
    assert_eq!(
        message(
            Condition,
            "a BETWEEN :lo AND :hi",
            &names(&[]),
            &values(&[(":lo", n("1")), (":hi", n("10"))])
        ),
        "ok"
    );
}

#[test]
fn overlapping_and_conflicting_paths() {
    let prefix = "Invalid UpdateExpression: Two document paths";
    // verified (dynalite, including its notes of DynamoDB's later answers)
    let cd = names(&[("#c", "c"), ("#d", "[3]")]);
    let cases: &[(&str, &str)] = &[
        (
            "set d[1] = a, d.b = a, c[1].a = a, #c = if_not_exists(a)",
            "overlap with each other; must remove or rewrite one of these paths; path one: [c, [1], a], path two: [c]",
        ),
        (
            "set #c[3].#d = a, #c[3] = a",
            "overlap with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path two: [c, [3]]",
        ),
        (
            "set c.b.#c = a, c = a, #d = a",
            "overlap with each other; must remove or rewrite one of these paths; path one: [c, b, c], path two: [[3]]",
        ),
        (
            "set a = b remove a, #c, #d",
            "overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [[3]]",
        ),
        (
            "remove c, #c.a, #d",
            "overlap with each other; must remove or rewrite one of these paths; path one: [c], path two: [[3]]",
        ),
        (
            "remove a, #c, a, #d",
            "overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [[3]]",
        ),
        (
            "set #c[3].#d = a, #c.#d[3] = if_not_exists(a)",
            "conflict with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path two: [c, [3], [3]]",
        ),
        (
            "remove a.#c set a[1] = #d",
            "conflict with each other; must remove or rewrite one of these paths; path one: [a, c], path two: [a, [1]]",
        ),
    ];
    for (text, tail) in cases {
        let got = message(Update, text, &cd, &values(&[]));
        // These tests carry unused names; only the overlap matters here.
        assert_eq!(got, format!("{prefix} {tail}"), "{text}");
    }
    // verified (moto, aiodynamo, Scylla's notes)
    let empty = names(&[]);
    let v = values(&[(":v", s("x")), (":w", s("y"))]);
    run(
        &[
            (
                Update,
                "SET a = :v REMOVE a",
                "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]",
            ),
            (
                Update,
                "SET a = :v, a = :w",
                "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]",
            ),
        ],
        &empty,
        &v,
    );
    let same = names(&[("#a1", "a"), ("#a2", "a")]);
    assert!(message(Update, "SET #a1 = :v, #a2 = :w", &same, &v).contains("overlap"));
    // verified (conformance, dynoxide captures)
    let ab = names(&[("#a", "a"), ("#b", "b")]);
    assert_eq!(
        message(Projection, "#a, #a.#b", &ab, &values(&[])),
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"
    );
    run_plain(&[
        (
            Projection,
            "a, a.b",
            "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
        ),
        (
            Projection,
            "top, top",
            "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [top], path two: [top]",
        ),
        (
            Projection,
            "a[0], a.b",
            "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, [0]], path two: [a, b]",
        ),
        (
            Projection,
            "a.b, a.c, a[1].x",
            "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, c], path two: [a, [1], x]",
        ),
    ]);
    assert_eq!(
        message(
            Projection,
            "a.b, a.c, b[0], b[1]",
            &names(&[]),
            &values(&[])
        ),
        "ok"
    );
}

#[test]
fn limits() {
    // model (DynamoDB Local's limits)
    let deep = format!("a{}", ".b".repeat(32));
    assert_eq!(
        message(Projection, &deep, &names(&[]), &values(&[])),
        "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33"
    );
    let ok_depth = format!("a{}", ".b".repeat(31));
    assert_eq!(
        message(Projection, &ok_depth, &names(&[]), &values(&[])),
        "ok"
    );
    let v = values(&[(":v", n("1"))]);
    let many = vec!["a = :v"; 301].join(" OR ");
    // 301 comparisons and 300 ORs: the 301st operator counted is a comparison.
    assert_eq!(
        message(Condition, &many, &names(&[]), &v),
        "Invalid ConditionExpression: The expression contains too many operators; operator count: 301"
    );
    let enough = vec!["a = :v"; 150].join(" OR ");
    assert_eq!(message(Condition, &enough, &names(&[]), &v), "ok");
    let list: Vec<String> = (0..101).map(|_| ":v".to_owned()).collect();
    assert_eq!(
        message(
            Filter,
            &format!("a IN ({})", list.join(", ")),
            &names(&[]),
            &v
        ),
        "Invalid FilterExpression: The IN operator is provided with too many operands; number of operands: 101"
    );
    assert_eq!(
        message(
            Filter,
            &format!("a IN ({})", list[..100].join(", ")),
            &names(&[]),
            &v
        ),
        "ok"
    );
    // Atoll's own bound on nesting (DynamoDB has none documented).
    let nested = format!("{}a{} = :v", "size(".repeat(401), ")".repeat(401));
    assert_eq!(
        message(Condition, &nested, &names(&[]), &v),
        "Invalid ConditionExpression: The expression has too many nested levels;"
    );
}
