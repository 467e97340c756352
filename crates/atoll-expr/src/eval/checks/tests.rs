use atoll_model::AttributeValue;

use super::check_condition_operands;
use crate::ast::{Comparator as C, Condition};
use crate::eval::test_support::*;

fn check(condition: &Condition, values: &[(&str, AttributeValue)]) -> Result<(), String> {
    let mut placeholders = Placeholders::default();
    for (placeholder, value) in values {
        placeholders = placeholders.value(placeholder, value.clone());
    }
    check_condition_operands(condition, &placeholders.env(), "ConditionExpression")
        .map_err(|e| e.message().to_owned())
}

#[test]
fn literal_operands_of_ordering_comparisons_must_be_orderable() {
    for value in samples() {
        for (comparator, symbol) in [(C::Lt, "<"), (C::Le, "<="), (C::Gt, ">"), (C::Ge, ">=")] {
            let result = check(
                &cmp(comparator, at("a"), val(":v")),
                &[(":v", value.clone())],
            );
            let reversed = check(
                &cmp(comparator, val(":v"), at("a")),
                &[(":v", value.clone())],
            );
            if matches!(
                value,
                AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
            ) {
                assert_eq!(result, Ok(()));
                assert_eq!(reversed, Ok(()));
            } else {
                let expected = format!(
                    "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: {symbol}, operand type: {}",
                    value.type_name()
                );
                assert_eq!(result, Err(expected.clone()));
                assert_eq!(reversed, Err(expected));
            }
        }
        // Equality takes anything.
        assert_eq!(
            check(&cmp(C::Eq, at("a"), val(":v")), &[(":v", value.clone())]),
            Ok(())
        );
        assert_eq!(
            check(&cmp(C::Ne, at("a"), val(":v")), &[(":v", value.clone())]),
            Ok(())
        );
        assert_eq!(
            check(
                &Condition::In(at("a"), vec![val(":v")]),
                &[(":v", value.clone())]
            ),
            Ok(())
        );
        assert_eq!(
            check(&Condition::Contains(at("a"), val(":v")), &[(":v", value)]),
            Ok(())
        );
    }
}

#[test]
fn between_literal_checks() {
    let between = |low: AttributeValue, high: AttributeValue| {
        check(
            &Condition::Between(at("a"), val(":lo"), val(":hi")),
            &[(":lo", low), (":hi", high)],
        )
    };
    assert_eq!(between(n("1"), n("2")), Ok(()));
    assert_eq!(between(s("a"), s("a")), Ok(()));
    assert_eq!(
        between(n("1"), s("a")),
        Err("Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}".into())
    );
    assert_eq!(
        between(s("b"), s("a")),
        Err("Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {S:b}, upper bound operand: AttributeValue: {S:a}".into())
    );
    assert_eq!(
        between(b(&[0xfb, 0xff]), b(&[0x00])),
        Err("Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {B:+/8=}, upper bound operand: AttributeValue: {B:AA==}".into())
    );
    assert_eq!(
        between(l(vec![]), l(vec![])),
        Err("Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: L".into())
    );
    // Only literals are checked: an attribute bound is known later.
    assert_eq!(
        check(
            &Condition::Between(at("a"), at("b"), val(":lo")),
            &[(":lo", n("1"))]
        ),
        Ok(())
    );
}

#[test]
fn begins_with_and_attribute_type_literal_checks() {
    for value in samples() {
        let type_name = value.type_name();
        let result = check(
            &Condition::BeginsWith(at("a"), val(":v")),
            &[(":v", value.clone())],
        );
        let reversed = check(
            &Condition::BeginsWith(val(":v"), at("a")),
            &[(":v", value.clone())],
        );
        if matches!(type_name, "S" | "B") {
            assert_eq!(result, Ok(()));
            assert_eq!(reversed, Ok(()));
        } else {
            let expected = format!(
                "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: {type_name}"
            );
            assert_eq!(result, Err(expected.clone()));
            assert_eq!(reversed, Err(expected));
        }
        let result = check(
            &Condition::AttributeType(path("a"), val(":v")),
            &[(":v", value.clone())],
        );
        if type_name == "S" {
            assert_eq!(
                result,
                Err("Invalid ConditionExpression: Invalid attribute type name found; type: a, valid types: {N,BS,L,B,NULL,M,S,SS,NS,BOOL}".into())
            );
        } else {
            assert_eq!(
                result,
                Err(format!(
                    "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {type_name}"
                ))
            );
        }
    }
    assert_eq!(
        check(&Condition::BeginsWith(at("a"), size("a")), &[]),
        Err("Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N".into())
    );
    assert_eq!(
        check(&Condition::AttributeType(path("a"), size("a")), &[]),
        Err("Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N".into())
    );
    assert!(check(&Condition::AttributeType(path("a"), at("b")), &[]).is_err());
    assert_eq!(
        check(
            &Condition::AttributeType(path("a"), val(":t")),
            &[(":t", s("NS"))]
        ),
        Ok(())
    );
}

#[test]
fn operand_checks_report_the_first_problem_in_written_order() {
    let condition = or(
        and(
            cmp(C::Eq, at("a"), val(":ok")),
            Condition::BeginsWith(at("a"), val(":first")),
        ),
        cmp(C::Lt, at("a"), val(":second")),
    );
    let result = check(
        &condition,
        &[(":ok", n("1")), (":first", n("1")), (":second", l(vec![]))],
    );
    assert!(result.unwrap_err().contains("begins_with"));
    let undefined = check(&not(cmp(C::Lt, at("a"), val(":nope"))), &[]);
    assert_eq!(
        undefined,
        Err("Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :nope".into())
    );
}
