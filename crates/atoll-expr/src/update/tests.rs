use atoll_model::{AttributeValue, Item};

use super::*;
use crate::ast::{SetValue as V, UpdateAction as A};
use crate::eval::test_support::*;

fn placeholders(values: &[(&str, AttributeValue)]) -> Placeholders {
    let mut placeholders = Placeholders::default().name("#n", "name");
    for (placeholder, value) in values {
        placeholders = placeholders.value(placeholder, value.clone());
    }
    placeholders
}

pub(super) fn run(
    actions: Vec<A>,
    before: &Item,
    values: &[(&str, AttributeValue)],
) -> Result<Item, String> {
    apply_update(&update(actions), before, &placeholders(values).env())
        .map_err(|e| e.message().to_owned())
}

pub(super) fn ok(actions: Vec<A>, before: &Item, values: &[(&str, AttributeValue)]) -> Item {
    run(actions, before, values).expect("update applies")
}

fn base() -> Item {
    item(vec![
        ("pk", s("key")),
        ("n", n("10")),
        ("s", s("text")),
        (
            "map",
            m(vec![("x", n("1")), ("inner", m(vec![("y", s("deep"))]))]),
        ),
        ("list", l(vec![s("a"), s("b"), s("c")])),
        ("tags", ss(&["a", "b"])),
        ("nums", ns(&["1", "2"])),
    ])
}

#[test]
fn set_assigns_values_and_keeps_the_rest() {
    let after = ok(
        vec![set("s", op(v(":v"))), set("new", op(v(":w")))],
        &base(),
        &[(":v", s("changed")), (":w", n("100"))],
    );
    assert_eq!(after.get("s"), Some(&s("changed")));
    assert_eq!(after.get("new"), Some(&n("100")));
    assert_eq!(after.get("n"), Some(&n("10")));
    assert_eq!(after.len(), base().len() + 1);
    // Through a name placeholder, on an item holding only its key.
    let key = item(vec![("pk", s("key"))]);
    let after = ok(vec![set("#n", op(v(":v")))], &key, &[(":v", s("x"))]);
    assert_eq!(after, item(vec![("pk", s("key")), ("name", s("x"))]));
}

#[test]
fn right_hand_sides_read_the_original_item() {
    let before = item(vec![("a", n("1")), ("b", n("2"))]);
    let after = ok(
        vec![set("a", op(from("b"))), set("b", op(from("a")))],
        &before,
        &[],
    );
    assert_eq!(after, item(vec![("a", n("2")), ("b", n("1"))]));
    // The key can be read too (an update of a new item starts from its key).
    let after = ok(
        vec![set("copy", op(if_not_exists("copy", from("pk"))))],
        &base(),
        &[],
    );
    assert_eq!(after.get("copy"), Some(&s("key")));
}

#[test]
fn arithmetic_is_exact() {
    let after = ok(
        vec![set("n", V::Plus(from("n"), v(":v")))],
        &base(),
        &[(":v", n("5"))],
    );
    assert_eq!(after.get("n"), Some(&n("15")));
    let after = ok(
        vec![set("n", V::Minus(from("n"), v(":v")))],
        &base(),
        &[(":v", n("10.5"))],
    );
    assert_eq!(after.get("n"), Some(&n("-0.5")));
    let big = "99999999999999999999999999999999999999";
    let before = item(vec![("n", n(big))]);
    let after = ok(
        vec![set("n", V::Minus(from("n"), v(":v")))],
        &before,
        &[(":v", n("1"))],
    );
    assert_eq!(
        after.get("n"),
        Some(&n("99999999999999999999999999999999999998"))
    );
    let after = ok(
        vec![set("n", V::Plus(v(":v"), v(":w")))],
        &Item::new(),
        &[(":v", n("0.1")), (":w", n("0.2"))],
    );
    assert_eq!(after.get("n"), Some(&n("0.3")));
    // Nested, both sides attributes.
    let after = ok(
        vec![set("map.x", V::Plus(from("map.x"), from("n")))],
        &base(),
        &[],
    );
    assert_eq!(resolve_in(&after, "map.x"), Some(n("11")));
}

fn resolve_in(item: &Item, text: &str) -> Option<AttributeValue> {
    crate::eval::resolve(item, &path(text), &Placeholders::default().env())
        .expect("resolves")
        .cloned()
}

#[test]
fn arithmetic_errors() {
    let max = "9.9999999999999999999999999999999999999E+125";
    let before = item(vec![("n", n(max)), ("s", s("x"))]);
    assert_eq!(
        run(vec![set("n", V::Plus(from("n"), v(":v")))], &before, &[(":v", n("1E+125"))]),
        Err("Number overflow. Attempting to store a number with magnitude larger than supported range".into())
    );
    // A result needing more than 38 digits: DynamoDB calls it an overflow
    // (Alternator's test_update_expression_plus_imprecise, run against it).
    assert_eq!(
        run(
            vec![set("n", V::Plus(v(":v"), v(":w")))],
            &before,
            &[(":v", n("1E+30")), (":w", n("1E-30"))]
        ),
        Err("Number overflow. Attempting to store a number with magnitude larger than supported range".into())
    );
    assert_eq!(
        run(
            vec![set("x", V::Plus(from("missing"), v(":v")))],
            &before,
            &[(":v", n("1"))]
        ),
        Err(MISSING_ATTRIBUTE.into())
    );
    assert_eq!(
        run(
            vec![set("x", V::Minus(v(":v"), from("missing")))],
            &before,
            &[(":v", n("1"))]
        ),
        Err(MISSING_ATTRIBUTE.into())
    );
    assert_eq!(
        run(
            vec![set("x", V::Plus(from("s"), v(":v")))],
            &before,
            &[(":v", n("1"))]
        ),
        Err(INCORRECT_TYPE.into())
    );
    assert_eq!(
        run(vec![set("x", V::Minus(from("n"), from("s")))], &before, &[]),
        Err(INCORRECT_TYPE.into())
    );
    // The left operand is examined fully first.
    assert_eq!(
        run(
            vec![set("x", V::Plus(from("s"), from("missing")))],
            &before,
            &[]
        ),
        Err(INCORRECT_TYPE.into())
    );
}

#[test]
fn if_not_exists_and_list_append() {
    let values = [
        (":d", s("default")),
        (":l", l(vec![s("d")])),
        (":e", l(vec![])),
    ];
    let after = ok(
        vec![
            set("s", op(if_not_exists("s", v(":d")))),
            set("other", op(if_not_exists("other", v(":d")))),
        ],
        &base(),
        &values,
    );
    assert_eq!(after.get("s"), Some(&s("text")));
    assert_eq!(after.get("other"), Some(&s("default")));
    let after = ok(
        vec![set("list", op(list_append(from("list"), v(":l"))))],
        &base(),
        &values,
    );
    assert_eq!(
        after.get("list"),
        Some(&l(vec![s("a"), s("b"), s("c"), s("d")]))
    );
    let after = ok(
        vec![set("list", op(list_append(v(":l"), from("list"))))],
        &base(),
        &values,
    );
    assert_eq!(
        after.get("list"),
        Some(&l(vec![s("d"), s("a"), s("b"), s("c")]))
    );
    // The usual idiom: append to a list that may not exist yet.
    let after = ok(
        vec![set(
            "fresh",
            op(list_append(if_not_exists("fresh", v(":e")), v(":l"))),
        )],
        &base(),
        &values,
    );
    assert_eq!(after.get("fresh"), Some(&l(vec![s("d")])));
    assert_eq!(
        run(vec![set("x", op(from("missing")))], &base(), &values),
        Err(MISSING_ATTRIBUTE.into())
    );
    assert_eq!(
        run(
            vec![set("x", op(if_not_exists("missing", from("other"))))],
            &base(),
            &values
        ),
        Err(MISSING_ATTRIBUTE.into())
    );
    assert_eq!(
        run(
            vec![set("x", op(list_append(from("missing"), v(":l"))))],
            &base(),
            &values
        ),
        Err(MISSING_ATTRIBUTE.into())
    );
    assert_eq!(
        run(
            vec![set("x", op(list_append(from("s"), v(":l"))))],
            &base(),
            &values
        ),
        Err(INCORRECT_TYPE.into())
    );
    assert_eq!(
        run(
            vec![set("x", op(list_append(v(":l"), from("tags"))))],
            &base(),
            &values
        ),
        Err(INCORRECT_TYPE.into())
    );
}

#[test]
fn nested_targets_need_their_parent() {
    let values = [(":v", s("new"))];
    let after = ok(
        vec![set("map.inner.y", op(v(":v"))), set("map.z", op(v(":v")))],
        &base(),
        &values,
    );
    assert_eq!(resolve_in(&after, "map.inner.y"), Some(s("new")));
    assert_eq!(resolve_in(&after, "map.z"), Some(s("new")));
    assert_eq!(resolve_in(&after, "map.x"), Some(n("1")));
    let after = ok(vec![set("map.inner", op(v(":v")))], &base(), &values);
    assert_eq!(
        resolve_in(&after, "map"),
        Some(m(vec![("x", n("1")), ("inner", s("new"))]))
    );
    for target in [
        "missing.x",
        "missing.x.y",
        "map.missing.y",
        "s.x",
        "list.x",
        "map[0]",
        "s[0]",
        "missing[0]",
        "list[7].x",
        "list[0].x",
    ] {
        for action in [
            set(target, op(v(":v"))),
            remove(target),
            add(target, ":n"),
            delete(target, ":ss"),
        ] {
            assert_eq!(
                run(
                    vec![action],
                    &base(),
                    &[(":v", s("x")), (":n", n("1")), (":ss", ss(&["a"]))]
                ),
                Err(INVALID_PATH.into()),
                "{target}"
            );
        }
    }
    // A key-only item has no nested parents either.
    let key = item(vec![("pk", s("key"))]);
    assert_eq!(
        run(vec![set("b.a", op(from("pk")))], &key, &[]),
        Err(INVALID_PATH.into())
    );
    assert_eq!(
        run(vec![set("b[1]", op(from("pk")))], &key, &[]),
        Err(INVALID_PATH.into())
    );
}

#[test]
fn list_indexes_refer_to_the_original_list() {
    let values = [
        (":v", s("new")),
        (":w", s("other")),
        (":x", s("x")),
        (":y", s("y")),
    ];
    let after = ok(vec![set("list[1]", op(v(":v")))], &base(), &values);
    assert_eq!(after.get("list"), Some(&l(vec![s("a"), s("new"), s("c")])));
    // Past the end appends, several in index order whatever the written order.
    let after = ok(vec![set("list[7]", op(v(":v")))], &base(), &values);
    assert_eq!(
        after.get("list"),
        Some(&l(vec![s("a"), s("b"), s("c"), s("new")]))
    );
    let after = ok(
        vec![
            set("list[84]", op(v(":v"))),
            set("list[37]", op(v(":w"))),
            set("list[17]", op(v(":x"))),
            set("list[50]", op(v(":y"))),
        ],
        &base(),
        &values,
    );
    assert_eq!(
        after.get("list"),
        Some(&l(vec![
            s("a"),
            s("b"),
            s("c"),
            s("x"),
            s("other"),
            s("y"),
            s("new")
        ]))
    );
    let empty = item(vec![("list", l(vec![]))]);
    assert_eq!(
        ok(vec![set("list[0]", op(v(":v")))], &empty, &values).get("list"),
        Some(&l(vec![s("new")]))
    );
    // REMOVE and SET in one update, in either order (Alternator, checked on DynamoDB).
    let before = item(vec![(
        "a",
        l(["2", "3", "4", "5", "6", "7"]
            .iter()
            .map(|x| n(x))
            .collect()),
    )]);
    let expected = Some(l(["2", "4", "17", "6", "7"].iter().map(|x| n(x)).collect()));
    for actions in [
        vec![remove("a[1]"), set("a[3]", op(v(":v")))],
        vec![set("a[3]", op(v(":v"))), remove("a[1]")],
    ] {
        assert_eq!(
            ok(actions, &before, &[(":v", n("17"))]).get("a").cloned(),
            expected
        );
    }
    // Several removals, past the end ignored; emptied containers stay.
    let after = ok(
        vec![remove("list[2]"), remove("list[0]"), remove("list[9]")],
        &base(),
        &[],
    );
    assert_eq!(after.get("list"), Some(&l(vec![s("b")])));
    let after = ok(
        vec![remove("list[0]"), remove("list[1]"), remove("list[2]")],
        &base(),
        &[],
    );
    assert_eq!(after.get("list"), Some(&l(vec![])));
    let after = ok(vec![remove("map.x"), remove("map.inner")], &base(), &[]);
    assert_eq!(after.get("map"), Some(&m(vec![])));
}

#[test]
fn remove_of_what_is_not_there_does_nothing() {
    let after = ok(
        vec![
            remove("missing"),
            remove("map.missing"),
            remove("list[3]"),
            remove("map.inner.nope"),
        ],
        &base(),
        &[],
    );
    assert_eq!(after, base());
    let after = ok(
        vec![remove("s"), remove("map.inner.y"), remove("list[1]")],
        &base(),
        &[],
    );
    assert_eq!(after.get("s"), None);
    assert_eq!(resolve_in(&after, "map.inner"), Some(m(vec![])));
    assert_eq!(after.get("list"), Some(&l(vec![s("a"), s("c")])));
}

#[test]
fn nested_updates_as_dynalite_checked_them() {
    // dynalite's "should update nested attributes", run against DynamoDB.
    let key = s("key");
    let before = item(vec![
        ("a", key.clone()),
        ("b", m(vec![("a", n("1")), ("b", n("2")), ("c", n("3"))])),
        ("c", l(vec![n("1"), n("3")])),
    ]);
    let actions = vec![
        set("b.c", V::Plus(from("c[1]"), from("b.a"))),
        set("b.a", op(from("a"))),
        set("c[1]", op(from("a"))),
        set("c[4]", V::Minus(from("b.a"), from("b.b"))),
        set("c[2]", op(from("b.c"))),
        add("c[8]", ":b"),
        add("c[6]", ":a"),
    ];
    let values = [(":a", n("2")), (":b", ss(&["a"]))];
    let after = ok(actions.clone(), &before, &values);
    assert_eq!(
        after,
        item(vec![
            ("a", key.clone()),
            (
                "b",
                m(vec![("a", key.clone()), ("b", n("2")), ("c", n("4"))])
            ),
            (
                "c",
                l(vec![
                    n("1"),
                    key.clone(),
                    n("3"),
                    n("-1"),
                    n("2"),
                    ss(&["a"])
                ])
            ),
        ])
    );
    let env = placeholders(&values);
    let returned = updated_attributes(&update(actions), &after, &env.env()).expect("projects");
    assert_eq!(
        returned,
        item(vec![
            ("b", m(vec![("a", key.clone()), ("c", n("4"))])),
            ("c", l(vec![key, n("3"), n("2")])),
        ])
    );
}

#[test]
fn updated_attributes_project_the_targets() {
    let actions = vec![
        set("map.x", op(v(":v"))),
        remove("s"),
        add("n", ":n"),
        set("list[1]", op(v(":v"))),
    ];
    let values = [(":v", s("new")), (":n", n("1"))];
    let env = placeholders(&values);
    let before = base();
    let after = ok(actions.clone(), &before, &values);
    let old = updated_attributes(&update(actions.clone()), &before, &env.env()).expect("projects");
    let new = updated_attributes(&update(actions), &after, &env.env()).expect("projects");
    assert_eq!(
        old,
        item(vec![
            ("map", m(vec![("x", n("1"))])),
            ("s", s("text")),
            ("n", n("10")),
            ("list", l(vec![s("b")]))
        ])
    );
    assert_eq!(
        new,
        item(vec![
            ("map", m(vec![("x", s("new"))])),
            ("n", n("11")),
            ("list", l(vec![s("new")]))
        ])
    );
}
