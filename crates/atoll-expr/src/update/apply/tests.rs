use atoll_model::AttributeValue;
use proptest::prelude::*;

use crate::ast::{UpdateAction as A, ValueRef};
use crate::eval::test_support::*;
use crate::update::tests::{ok, run};
use crate::update::{
    INCORRECT_TYPE, INVALID_PATH, LEGACY_TYPE_MISMATCH, apply_update, apply_update_to_new_item,
    creates_missing_item,
};

#[test]
fn add_numbers_and_sets() {
    let values = [
        (":n", n("3")),
        (":ss", ss(&["b", "c"])),
        (":ns", ns(&["2.0", "3"])),
        (":bs", bs(&[b"y"])),
        (":l", l(vec![s("z")])),
        (":s", s("x")),
    ];
    let before = item(vec![
        ("n", n("10")),
        ("tags", ss(&["a", "b"])),
        ("nums", ns(&["1", "2"])),
        ("bin", bs(&[b"x"])),
        ("s", s("x")),
    ]);
    let after = ok(
        vec![
            add("n", ":n"),
            add("tags", ":ss"),
            add("nums", ":ns"),
            add("bin", ":bs"),
            add("fresh", ":n"),
            add("fresh_set", ":ss"),
        ],
        &before,
        &values,
    );
    assert_eq!(after.get("n"), Some(&n("13")));
    assert_eq!(after.get("tags"), Some(&ss(&["a", "b", "c"])));
    assert_eq!(after.get("nums"), Some(&ns(&["1", "2", "3"])));
    assert_eq!(after.get("bin"), Some(&bs(&[b"x", b"y"])));
    assert_eq!(after.get("fresh"), Some(&n("3")));
    assert_eq!(after.get("fresh_set"), Some(&ss(&["b", "c"])));
    for (target, operand) in [
        ("s", ":n"),
        ("n", ":ss"),
        ("tags", ":ns"),
        ("nums", ":n"),
        ("bin", ":ss"),
    ] {
        assert_eq!(
            run(vec![add(target, operand)], &before, &values),
            Err(INCORRECT_TYPE.into()),
            "{target} {operand}"
        );
    }
    // An operand the parser's checks refuse is refused here too.
    assert_eq!(
        run(vec![add("n", ":s")], &before, &values),
        Err("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING".into())
    );
    assert_eq!(
        run(vec![add("l", ":l")], &before, &values),
        Err("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: LIST".into())
    );
    let max = "9.9999999999999999999999999999999999999E+125";
    assert_eq!(
        run(vec![add("n", ":n")], &item(vec![("n", n(max))]), &[(":n", n(max))]),
        Err("Number overflow. Attempting to store a number with magnitude larger than supported range".into())
    );
}

#[test]
fn delete_from_sets() {
    let values = [
        (":ss", ss(&["b", "z"])),
        (":all", ss(&["a", "b"])),
        (":ns", ns(&["1.0"])),
        (":n", n("1")),
    ];
    let before = item(vec![
        ("tags", ss(&["a", "b"])),
        ("nums", ns(&["1", "2"])),
        ("s", s("x")),
        ("m", m(vec![("t", ss(&["a", "b"]))])),
    ]);
    let after = ok(
        vec![
            delete("tags", ":ss"),
            delete("nums", ":ns"),
            delete("missing", ":ss"),
            delete("m.t", ":all"),
        ],
        &before,
        &values,
    );
    assert_eq!(after.get("tags"), Some(&ss(&["a"])));
    assert_eq!(after.get("nums"), Some(&ns(&["2"])));
    assert_eq!(after.get("missing"), None);
    assert_eq!(after.get("m"), Some(&m(vec![])));
    let after = ok(vec![delete("tags", ":all")], &before, &values);
    assert_eq!(after.get("tags"), None);
    for (target, operand) in [("nums", ":ss"), ("s", ":ss"), ("tags", ":ns")] {
        assert_eq!(
            run(vec![delete(target, operand)], &before, &values),
            Err(INCORRECT_TYPE.into())
        );
    }
    assert_eq!(
        run(vec![delete("nums", ":n")], &before, &values),
        Err("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER".into())
    );
}

#[test]
fn legacy_add_and_delete() {
    let legacy_add =
        |target: &str, value: AttributeValue| A::Add(path(target), ValueRef::Literal(value));
    let legacy_delete =
        |target: &str, value: AttributeValue| A::Delete(path(target), ValueRef::Literal(value));
    let before = item(vec![
        ("list", l(vec![n("1")])),
        ("n", n("2")),
        ("tags", ss(&["a"])),
    ]);
    let after = ok(
        vec![
            legacy_add("list", l(vec![n("1"), s("x")])),
            legacy_add("new_list", l(vec![n("7")])),
            legacy_add("n", n("-3.5")),
        ],
        &before,
        &[],
    );
    assert_eq!(after.get("list"), Some(&l(vec![n("1"), n("1"), s("x")])));
    assert_eq!(after.get("new_list"), Some(&l(vec![n("7")])));
    assert_eq!(after.get("n"), Some(&n("-1.5")));
    for action in [
        legacy_add("tags", n("1")),
        legacy_add("tags", l(vec![])),
        legacy_add("list", ss(&["a"])),
        legacy_add("n", l(vec![])),
        legacy_delete("tags", ns(&["1"])),
        legacy_delete("n", ns(&["1"])),
    ] {
        assert_eq!(
            run(vec![action], &before, &[]),
            Err(LEGACY_TYPE_MISMATCH.into())
        );
    }
}

#[test]
fn removal_under_a_missing_item_is_ignored() {
    let key = item(vec![("pk", s("k"))]);
    let env = Placeholders::default().value(":v", s("x"));
    let env = env.env();
    // Removals alone create nothing.
    let after = apply_update_to_new_item(
        &update(vec![remove("x.y"), remove("x[0]"), remove("z")]),
        &key,
        &env,
    )
    .expect("applies");
    assert_eq!(after, None);
    // With a SET beside them, the item is created and the removals ignored.
    let after = apply_update_to_new_item(
        &update(vec![remove("x.y"), set("a", op(v(":v")))]),
        &key,
        &env,
    )
    .expect("applies");
    assert_eq!(after, Some(item(vec![("pk", s("k")), ("a", s("x"))])));
    let error =
        apply_update_to_new_item(&update(vec![set("x.y", op(v(":v")))]), &key, &env).unwrap_err();
    assert_eq!(error.message(), INVALID_PATH);
    // On an existing item the same removal is an invalid path.
    assert_eq!(
        apply_update(&update(vec![remove("x.y")]), &key, &env)
            .unwrap_err()
            .message(),
        INVALID_PATH
    );
}

#[test]
fn only_writing_actions_create_a_missing_item() {
    assert!(creates_missing_item(&update(vec![])));
    assert!(creates_missing_item(&update(vec![set("a", op(v(":v")))])));
    assert!(creates_missing_item(&update(vec![
        remove("x"),
        add("n", ":one")
    ])));
    assert!(!creates_missing_item(&update(vec![remove("x")])));
    assert!(!creates_missing_item(&update(vec![delete("s", ":ss")])));
    assert!(!creates_missing_item(&update(vec![
        remove("x.y"),
        delete("s", ":ss")
    ])));
    // Errors still fire on an update that would create nothing.
    let key = item(vec![("pk", s("k"))]);
    let values = Placeholders::default().value(":n", n("1"));
    let error = apply_update_to_new_item(&update(vec![delete("s", ":n")]), &key, &values.env())
        .unwrap_err();
    assert!(error.message().contains("operator: DELETE"), "{error:?}");
}

fn string_set() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_set("[a-e]{1,2}", 1..6).prop_map(|set| set.into_iter().collect())
}

proptest! {
    #[test]
    fn add_then_delete_of_new_elements_restores_the_set(original in string_set(), added in string_set()) {
        let fresh: Vec<String> = added.into_iter().filter(|x| !original.contains(x)).collect();
        prop_assume!(!fresh.is_empty());
        let before = item(vec![("tags", AttributeValue::Ss(original.clone()))]);
        let values = [(":v", AttributeValue::Ss(fresh.clone()))];
        let grown = ok(vec![add("tags", ":v")], &before, &values);
        let Some(AttributeValue::Ss(grown_set)) = grown.get("tags") else { panic!("a set") };
        prop_assert_eq!(grown_set.len(), original.len() + fresh.len());
        let restored = ok(vec![delete("tags", ":v")], &grown, &values);
        prop_assert!(crate::eval::values_equal(restored.get("tags").expect("kept"), &AttributeValue::Ss(original)));
    }

    #[test]
    fn add_of_numbers_is_exact_addition(a in any::<i64>(), b in any::<i64>(), scale in 0u32..20) {
        let x = format!("{a}E-{scale}");
        let y = format!("{b}");
        let before = item(vec![("n", n(&x))]);
        let after = ok(vec![add("n", ":v")], &before, &[(":v", n(&y))]);
        let expected = num(&x).checked_add(&num(&y)).expect("fits");
        prop_assert_eq!(after.get("n"), Some(&AttributeValue::N(expected)));
    }
}
