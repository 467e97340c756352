use atoll_model::table::{KeyAttribute, ScalarType};
use atoll_model::{AttributeValue, Item};

use crate::eval::test_support::*;
use crate::evaluate;
use crate::legacy::ComparisonOperator as Op;
use crate::legacy::tests::subject;
use crate::legacy::*;

fn expected(value: Option<AttributeValue>, exists: Option<bool>) -> ExpectedAttribute {
    ExpectedAttribute {
        value,
        exists,
        ..ExpectedAttribute::default()
    }
}

fn with_operator(operator: Op, list: Option<Vec<AttributeValue>>) -> ExpectedAttribute {
    ExpectedAttribute {
        comparison_operator: Some(operator),
        attribute_value_list: list,
        ..ExpectedAttribute::default()
    }
}

fn one(name: &str, entry: ExpectedAttribute) -> Vec<(String, ExpectedAttribute)> {
    vec![(name.to_owned(), entry)]
}

fn expected_error(entries: Vec<(String, ExpectedAttribute)>) -> String {
    expected_condition(Some(&entries), None)
        .unwrap_err()
        .message()
        .to_owned()
}

fn holds(condition: &crate::ast::Condition, item: &Item) -> bool {
    evaluate(condition, item, &Placeholders::default().env()).expect("evaluates")
}

/// Whether `operator` with `values` holds for attribute `name` of [`subject`],
/// as an `Expected` entry and as a filter entry (they must agree).
fn legacy_holds(name: &str, operator: Op, values: Vec<AttributeValue>) -> bool {
    let entries = one(name, with_operator(operator, Some(values.clone())));
    let expected = expected_condition(Some(&entries), None)
        .expect("valid")
        .expect("a condition");
    let filter = vec![(
        name.to_owned(),
        LegacyCondition {
            comparison_operator: operator,
            attribute_value_list: Some(values),
        },
    )];
    let filtered = filter_condition(Some(&filter), None)
        .expect("valid")
        .expect("a condition");
    let result = holds(&expected, &subject());
    assert_eq!(result, holds(&filtered, &subject()));
    result
}

#[test]
fn comparison_operators() {
    assert!(legacy_holds("n", Op::Eq, vec![n("5.0")]));
    assert!(!legacy_holds("n", Op::Eq, vec![s("5")]));
    assert!(!legacy_holds("missing", Op::Eq, vec![n("5")]));
    assert!(legacy_holds("set", Op::Eq, vec![ns(&["7", "2", "4"])]));
    assert!(legacy_holds("n", Op::Ne, vec![n("4")]));
    assert!(legacy_holds("n", Op::Ne, vec![s("5")]));
    assert!(legacy_holds("missing", Op::Ne, vec![n("5")]));
    assert!(!legacy_holds("n", Op::Ne, vec![n("5")]));
    assert!(legacy_holds("n", Op::Le, vec![n("5")]));
    assert!(!legacy_holds("n", Op::Lt, vec![n("5")]));
    assert!(legacy_holds("n", Op::Ge, vec![n("5")]));
    assert!(legacy_holds("n", Op::Gt, vec![n("4")]));
    assert!(!legacy_holds("n", Op::Gt, vec![s("4")]));
    assert!(!legacy_holds("list", Op::Lt, vec![n("4")]));
    assert!(legacy_holds("s", Op::Lt, vec![s("world")]));
    assert!(legacy_holds("b", Op::Gt, vec![b(b"hi")]));
    assert!(!legacy_holds("missing", Op::Le, vec![n("4")]));
}

#[test]
fn existence_operators() {
    assert!(legacy_holds("null", Op::NotNull, vec![]));
    assert!(!legacy_holds("null", Op::Null, vec![]));
    assert!(legacy_holds("missing", Op::Null, vec![]));
    assert!(!legacy_holds("missing", Op::NotNull, vec![]));
    // NULL may come without any AttributeValueList.
    let entries = one("missing", with_operator(Op::Null, None));
    assert!(holds(
        &expected_condition(Some(&entries), None)
            .expect("valid")
            .expect("condition"),
        &subject()
    ));
}

#[test]
fn contains_begins_with_in_between() {
    assert!(legacy_holds("s", Op::Contains, vec![s("ell")]));
    assert!(legacy_holds("set", Op::Contains, vec![n("4")]));
    assert!(legacy_holds("list", Op::Contains, vec![n("4")]));
    assert!(legacy_holds("b", Op::Contains, vec![b(b"here")]));
    assert!(!legacy_holds("s", Op::Contains, vec![s("dog")]));
    assert!(!legacy_holds("set", Op::Contains, vec![n("1")]));
    assert!(!legacy_holds("missing", Op::Contains, vec![n("1")]));
    assert!(legacy_holds("s", Op::NotContains, vec![s("dog")]));
    assert!(legacy_holds("set", Op::NotContains, vec![n("1")]));
    assert!(!legacy_holds("list", Op::NotContains, vec![n("4")]));
    // Unlike NE, NOT_CONTAINS fails on a missing attribute.
    assert!(!legacy_holds("missing", Op::NotContains, vec![n("1")]));
    assert!(legacy_holds("s", Op::BeginsWith, vec![s("he")]));
    assert!(!legacy_holds("s", Op::BeginsWith, vec![s("lo")]));
    assert!(legacy_holds("b", Op::BeginsWith, vec![b(b"hi")]));
    assert!(legacy_holds("n", Op::In, vec![n("1"), n("5")]));
    assert!(!legacy_holds("n", Op::In, vec![n("1"), n("2")]));
    assert!(!legacy_holds("missing", Op::In, vec![n("1")]));
    assert!(legacy_holds("n", Op::Between, vec![n("5"), n("6")]));
    assert!(legacy_holds("s", Op::Between, vec![s("a"), s("z")]));
    assert!(!legacy_holds("n", Op::Between, vec![n("6"), n("9")]));
    assert!(!legacy_holds("list", Op::Between, vec![n("1"), n("2")]));
}

#[test]
fn value_and_exists() {
    let equal = one("n", expected(Some(n("5")), None));
    assert!(holds(
        &expected_condition(Some(&equal), None)
            .expect("valid")
            .expect("condition"),
        &subject()
    ));
    let equal = one("n", expected(Some(n("5")), Some(true)));
    assert!(holds(
        &expected_condition(Some(&equal), None)
            .expect("valid")
            .expect("condition"),
        &subject()
    ));
    let unequal = one("n", expected(Some(n("6")), Some(true)));
    assert!(!holds(
        &expected_condition(Some(&unequal), None)
            .expect("valid")
            .expect("condition"),
        &subject()
    ));
    let missing = one("missing", expected(Some(n("5")), None));
    assert!(!holds(
        &expected_condition(Some(&missing), None)
            .expect("valid")
            .expect("condition"),
        &subject()
    ));
    let absent = one("missing", expected(None, Some(false)));
    assert!(holds(
        &expected_condition(Some(&absent), None)
            .expect("valid")
            .expect("condition"),
        &subject()
    ));
    let present = one("n", expected(None, Some(false)));
    assert!(!holds(
        &expected_condition(Some(&present), None)
            .expect("valid")
            .expect("condition"),
        &subject()
    ));
}

#[test]
fn expected_messages() {
    let prefix = "One or more parameter values were invalid: ";
    assert_eq!(
        expected_error(one("a", expected(None, Some(true)))),
        format!("{prefix}Value must be provided when Exists is true for Attribute: a")
    );
    assert_eq!(
        expected_error(one("a", expected(None, None))),
        format!("{prefix}Value must be provided when Exists is null for Attribute: a")
    );
    assert_eq!(
        expected_error(one("a", expected(Some(s("x")), Some(false)))),
        format!("{prefix}Value cannot be used when Exists is false for Attribute: a")
    );
    let both = ExpectedAttribute {
        value: Some(s("x")),
        attribute_value_list: Some(vec![s("x")]),
        comparison_operator: Some(Op::Eq),
        exists: Some(true),
    };
    assert_eq!(
        expected_error(one("a", both)),
        format!("{prefix}Value and AttributeValueList cannot be used together for Attribute: a")
    );
    let clash = ExpectedAttribute {
        exists: Some(false),
        ..with_operator(Op::Eq, Some(vec![s("x")]))
    };
    assert_eq!(
        expected_error(one("a", clash)),
        format!("{prefix}Exists and ComparisonOperator cannot be used together for Attribute: a")
    );
    assert_eq!(
        expected_error(one("a", with_operator(Op::Eq, None))),
        format!(
            "{prefix}Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a"
        )
    );
    let list_only = ExpectedAttribute {
        attribute_value_list: Some(vec![s("x")]),
        ..ExpectedAttribute::default()
    };
    assert_eq!(
        expected_error(one("a", list_only)),
        format!(
            "{prefix}AttributeValueList can only be used with a ComparisonOperator for Attribute: a"
        )
    );
    assert_eq!(
        expected_error(one("a", with_operator(Op::Between, Some(vec![n("1")])))),
        format!("{prefix}Invalid number of argument(s) for the BETWEEN ComparisonOperator")
    );
    // `Value` counts as the single value of a comparison.
    let value_with_operator = ExpectedAttribute {
        value: Some(n("4")),
        ..with_operator(Op::Gt, None)
    };
    let condition = expected_condition(Some(&one("n", value_with_operator)), None)
        .expect("valid")
        .expect("condition");
    assert!(holds(&condition, &subject()));
    // The first invalid entry in request order is reported.
    let entries = vec![
        ("ok".to_owned(), expected(Some(s("x")), None)),
        ("first".to_owned(), expected(None, Some(true))),
        ("second".to_owned(), expected(Some(s("x")), Some(false))),
    ];
    assert!(expected_error(entries).ends_with("Attribute: first"));
}

#[test]
fn value_counts_types_and_bounds() {
    let prefix = "One or more parameter values were invalid: ";
    let check = |operator: Op, values: Vec<AttributeValue>| {
        let filter = vec![(
            "a".to_owned(),
            LegacyCondition {
                comparison_operator: operator,
                attribute_value_list: Some(values),
            },
        )];
        filter_condition(Some(&filter), None)
            .map(|_| ())
            .map_err(|e| e.message().to_owned())
    };
    let count = |operator: Op| {
        Err(format!(
            "{prefix}Invalid number of argument(s) for the {} ComparisonOperator",
            operator.as_str()
        ))
    };
    for operator in Op::ALL {
        let needed = match operator {
            Op::Null | Op::NotNull => 0,
            Op::Between => 2,
            _ => 1,
        };
        for given in 0..4 {
            let values = vec![s("1"); given];
            let result = check(operator, values);
            let fits = given == needed || (operator == Op::In && given >= 1);
            assert_eq!(result.is_ok(), fits, "{operator:?} with {given}");
            if !fits {
                assert_eq!(result, count(operator));
            }
        }
    }
    assert_eq!(
        check(Op::In, vec![s("b"), n("1")]),
        Err(format!(
            "{prefix}AttributeValues inside AttributeValueList must be of same type"
        ))
    );
    for value in samples() {
        let type_name = value.type_name();
        for operator in [
            Op::Lt,
            Op::Le,
            Op::Gt,
            Op::Ge,
            Op::In,
            Op::Contains,
            Op::NotContains,
            Op::BeginsWith,
            Op::Eq,
            Op::Ne,
        ] {
            let accepted = match operator {
                Op::Eq | Op::Ne => true,
                Op::BeginsWith => matches!(type_name, "S" | "B"),
                _ => matches!(type_name, "S" | "N" | "B"),
            };
            let result = check(operator, vec![value.clone()]);
            if accepted {
                assert_eq!(result, Ok(()), "{operator:?} {type_name}");
            } else {
                assert_eq!(
                    result,
                    Err(format!(
                        "{prefix}ComparisonOperator {} is not valid for {type_name} AttributeValue type",
                        operator.as_str()
                    ))
                );
            }
        }
        let between = check(Op::Between, vec![value.clone(), value.clone()]);
        assert_eq!(
            between.is_ok(),
            matches!(type_name, "S" | "N" | "B"),
            "BETWEEN {type_name}"
        );
    }
    assert_eq!(
        check(Op::Between, vec![s("b"), s("a")]),
        Err("The BETWEEN condition was provided a range where the lower bound is greater than the upper bound".into())
    );
    assert_eq!(check(Op::Between, vec![n("2"), n("2")]), Ok(()));
}

#[test]
fn conditional_operator() {
    let a = ("a".to_owned(), expected(Some(n("1")), None));
    let b = ("n".to_owned(), expected(Some(n("5")), None));
    let and = expected_condition(Some(&[a.clone(), b.clone()]), None)
        .expect("valid")
        .expect("condition");
    let or = expected_condition(Some(&[a.clone(), b.clone()]), Some(ConditionalOperator::Or))
        .expect("valid")
        .expect("condition");
    assert!(!holds(&and, &subject()));
    assert!(holds(&or, &subject()));
    assert_eq!(expected_condition(Some(&[]), None), Ok(None));
    assert_eq!(expected_condition(None, None), Ok(None));
    assert_eq!(
        expected_condition(
            Some(std::slice::from_ref(&a)),
            Some(ConditionalOperator::And)
        )
        .unwrap_err()
        .message(),
        "ConditionalOperator can only be used when Filter or Expected has two or more elements"
    );
    assert_eq!(
        expected_condition(Some(&[]), Some(ConditionalOperator::Or))
            .unwrap_err()
            .message(),
        "ConditionalOperator can only be used when Filter or Expected has two or more elements"
    );
    assert_eq!(
        filter_condition(None, Some(ConditionalOperator::Or))
            .unwrap_err()
            .message(),
        "ConditionalOperator cannot be used without Filter or Expected"
    );
}

#[test]
fn many_conditions_make_a_shallow_tree() {
    let entries: Vec<(String, ExpectedAttribute)> = (0..10_000)
        .map(|i| (format!("a{i}"), expected(None, Some(false))))
        .collect();
    let condition = expected_condition(Some(&entries), Some(ConditionalOperator::And))
        .expect("valid")
        .expect("condition");
    fn depth(condition: &crate::ast::Condition) -> usize {
        match condition {
            crate::ast::Condition::And(x, y) | crate::ast::Condition::Or(x, y) => {
                1 + depth(x).max(depth(y))
            }
            crate::ast::Condition::Not(x) => 1 + depth(x),
            _ => 1,
        }
    }
    assert!(depth(&condition) <= 15);
    assert!(holds(&condition, &subject()));
    let mut with_one = subject();
    with_one.insert("a9999".into(), n("1"));
    assert!(!holds(&condition, &with_one));
}

fn key_condition(
    name: &str,
    operator: Op,
    values: Vec<AttributeValue>,
) -> (String, LegacyCondition) {
    (
        name.to_owned(),
        LegacyCondition {
            comparison_operator: operator,
            attribute_value_list: Some(values),
        },
    )
}

fn schema(range: bool) -> atoll_model::table::KeySchema {
    atoll_model::table::KeySchema {
        partition_key: KeyAttribute {
            name: "pk".into(),
            scalar_type: ScalarType::S,
        },
        sort_key: range.then(|| KeyAttribute {
            name: "sk".into(),
            scalar_type: ScalarType::N,
        }),
    }
}

#[test]
fn key_conditions() {
    let conditions = vec![
        key_condition("pk", Op::Eq, vec![s("p")]),
        key_condition("sk", Op::Between, vec![n("1"), n("5")]),
    ];
    let condition = key_conditions_condition(&conditions).expect("valid");
    assert_eq!(check_key_conditions(&conditions, &schema(true)), Ok(()));
    assert!(holds(
        &condition,
        &item(vec![("pk", s("p")), ("sk", n("3"))])
    ));
    assert!(!holds(
        &condition,
        &item(vec![("pk", s("p")), ("sk", n("6"))])
    ));
    let begins = vec![
        key_condition("pk", Op::Eq, vec![s("p")]),
        key_condition("sk", Op::BeginsWith, vec![s("x")]),
    ];
    assert!(key_conditions_condition(&begins).is_ok());
    assert_eq!(
        key_conditions_condition(&[]).unwrap_err().message(),
        "Conditions can be of length 1 or 2 only"
    );
    let three = vec![
        key_condition("a", Op::Eq, vec![s("p")]),
        key_condition("b", Op::Eq, vec![s("p")]),
        key_condition("c", Op::Eq, vec![s("p")]),
    ];
    assert_eq!(
        key_conditions_condition(&three).unwrap_err().message(),
        "Conditions can be of length 1 or 2 only"
    );
    assert_eq!(
        key_conditions_condition(&[key_condition("pk", Op::Eq, vec![])])
            .unwrap_err()
            .message(),
        "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"
    );
}

#[test]
fn key_conditions_against_the_schema() {
    let check = |conditions: Vec<(String, LegacyCondition)>, range: bool| {
        check_key_conditions(&conditions, &schema(range)).map_err(|e| e.message().to_owned())
    };
    let pk = || key_condition("pk", Op::Eq, vec![s("p")]);
    assert_eq!(check(vec![pk()], false), Ok(()));
    assert_eq!(check(vec![pk()], true), Ok(()));
    assert_eq!(
        check(vec![pk(), key_condition("sk", Op::Eq, vec![n("1")])], false),
        Err("Query key condition not supported".into())
    );
    assert_eq!(
        check(vec![key_condition("sk", Op::Eq, vec![n("1")])], true),
        Err("Query condition missed key schema element: pk".into())
    );
    assert_eq!(
        check(
            vec![pk(), key_condition("other", Op::Eq, vec![n("1")])],
            true
        ),
        Err("Query condition missed key schema element: sk".into())
    );
    for operator in [
        Op::Null,
        Op::NotNull,
        Op::Ne,
        Op::Contains,
        Op::NotContains,
        Op::In,
    ] {
        let values = if matches!(operator, Op::Null | Op::NotNull) {
            vec![]
        } else {
            vec![s("p")]
        };
        assert_eq!(
            check(vec![key_condition("pk", operator, values.clone())], false),
            Err("Attempted conditional constraint is not an indexable operation".into())
        );
        let sort_values = values.iter().map(|_| n("1")).collect();
        assert_eq!(
            check(vec![pk(), key_condition("sk", operator, sort_values)], true),
            Err("Attempted conditional constraint is not an indexable operation".into())
        );
    }
    assert_eq!(
        check(vec![key_condition("pk", Op::Eq, vec![n("1")])], false),
        Err("One or more parameter values were invalid: Condition parameter type does not match schema type".into())
    );
    assert_eq!(
        check(vec![pk(), key_condition("sk", Op::Gt, vec![s("1")])], true),
        Err("One or more parameter values were invalid: Condition parameter type does not match schema type".into())
    );
    for operator in [Op::Le, Op::Lt, Op::Ge, Op::Gt, Op::BeginsWith] {
        assert_eq!(
            check(vec![key_condition("pk", operator, vec![s("p")])], false),
            Err("Query key condition not supported".into())
        );
    }
    assert_eq!(
        check(
            vec![key_condition("pk", Op::Between, vec![s("a"), s("b")])],
            false
        ),
        Err("Query key condition not supported".into())
    );
    for operator in [Op::Eq, Op::Le, Op::Lt, Op::Ge, Op::Gt] {
        assert_eq!(
            check(
                vec![pk(), key_condition("sk", operator, vec![n("1")])],
                true
            ),
            Ok(())
        );
    }
}
