use atoll_model::AttributeValue;

use super::check_update_operands;
use crate::ast::{SetValue as V, UpdateAction as A, ValueRef};
use crate::eval::test_support::*;

fn placeholders(values: &[(&str, AttributeValue)]) -> Placeholders {
    let mut placeholders = Placeholders::default();
    for (placeholder, value) in values {
        placeholders = placeholders.value(placeholder, value.clone());
    }
    placeholders
}

fn check(actions: Vec<A>, values: &[(&str, AttributeValue)]) -> Result<(), String> {
    check_update_operands(&update(actions), &placeholders(values).env())
        .map_err(|e| e.message().to_owned())
}

#[test]
fn operand_checks_for_add_and_delete() {
    for value in samples() {
        let word = match &value {
            AttributeValue::S(_) => "STRING",
            AttributeValue::N(_) => "NUMBER",
            AttributeValue::B(_) => "BINARY",
            AttributeValue::Bool(_) => "BOOLEAN",
            AttributeValue::Null => "NULL",
            AttributeValue::L(_) => "LIST",
            AttributeValue::M(_) => "MAP",
            _ => "set",
        };
        let added = check(vec![add("a.b", ":a")], &[(":a", value.clone())]);
        let deleted = check(vec![delete("a.b", ":a")], &[(":a", value.clone())]);
        let message = |operator: &str| {
            Err(format!(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: {operator}, operand type: {word}"
            ))
        };
        match word {
            "set" => {
                assert_eq!(added, Ok(()));
                assert_eq!(deleted, Ok(()));
            }
            "NUMBER" => {
                assert_eq!(added, Ok(()));
                assert_eq!(deleted, message("DELETE"));
            }
            _ => {
                assert_eq!(added, message("ADD"));
                assert_eq!(deleted, message("DELETE"));
            }
        }
    }
}

#[test]
fn operand_checks_for_functions() {
    let values: Vec<(&str, AttributeValue)> = vec![
        (":s", s("a")),
        (":n", n("1")),
        (":l", l(vec![])),
        (":ss", ss(&["a"])),
        (":m", m(vec![])),
    ];
    let function = |name: &str, type_name: &str| {
        Err(format!(
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: {name}, operand type: {type_name}"
        ))
    };
    assert_eq!(
        check(vec![set("a", op(list_append(v(":s"), from("a"))))], &values),
        function("list_append", "S")
    );
    assert_eq!(
        check(vec![set("a", op(list_append(from("a"), v(":n"))))], &values),
        function("list_append", "N")
    );
    assert_eq!(
        check(vec![set("a", V::Plus(from("a"), v(":m")))], &values),
        function("+", "M")
    );
    assert_eq!(
        check(vec![set("a", V::Minus(v(":ss"), from("a")))], &values),
        function("-", "SS")
    );
    assert_eq!(
        check(vec![set("a", V::Plus(from("a"), v(":l")))], &values),
        function("+", "L")
    );
    assert_eq!(
        check(
            vec![
                set("a", V::Plus(from("a"), v(":n"))),
                set("b", op(list_append(v(":l"), from("b"))))
            ],
            &values
        ),
        Ok(())
    );
    // Only literal operands: a function's result is known when evaluated.
    assert_eq!(
        check(
            vec![set(
                "a",
                op(list_append(if_not_exists("a", v(":s")), v(":l")))
            )],
            &values
        ),
        Ok(())
    );
    // Inner functions first.
    assert_eq!(
        check(
            vec![set(
                "a",
                op(list_append(v(":n"), list_append(v(":s"), from("a"))))
            )],
            &values
        ),
        function("list_append", "S")
    );
    // ADD / DELETE problems come before function problems.
    assert_eq!(
        check(vec![set("a", op(list_append(v(":s"), from("a")))), add("b", ":s")], &values),
        Err("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING".into())
    );
    // Legacy literals are not checked here.
    assert_eq!(
        check(
            vec![A::Add(path("a"), ValueRef::Literal(l(vec![])))],
            &values
        ),
        Ok(())
    );
}
