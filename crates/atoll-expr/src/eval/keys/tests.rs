use atoll_model::table::{KeyAttribute, KeySchema, ScalarType};

use super::*;
use crate::ast::{Comparator as C, SetValue as V};
use crate::eval::test_support::*;
use crate::update::check_key_updates;

fn schema() -> KeySchema {
    KeySchema {
        partition_key: KeyAttribute {
            name: "a".into(),
            scalar_type: ScalarType::S,
        },
        sort_key: Some(KeyAttribute {
            name: "b".into(),
            scalar_type: ScalarType::S,
        }),
    }
}

fn names(paths: Vec<&Path>) -> Vec<String> {
    paths.iter().map(|path| format!("{path:?}")).collect()
}

#[test]
fn paths_of_conditions_and_updates_in_written_order() {
    let condition = or(
        and(
            cmp(C::Lt, at("x.y"), val(":v")),
            Condition::Contains(size("l"), at("m[1]")),
        ),
        not(Condition::In(at("i"), vec![val(":v"), at("j")])),
    );
    assert_eq!(
        names(condition_paths(&condition)),
        names(vec![
            &path("x.y"),
            &path("l"),
            &path("m[1]"),
            &path("i"),
            &path("j")
        ])
    );
    let update = update(vec![
        set("t", V::Plus(from("p"), v(":v"))),
        set(
            "u",
            op(list_append(if_not_exists("q", from("r")), from("s"))),
        ),
        remove("w"),
        add("z", ":v"),
    ]);
    assert_eq!(
        names(update_paths(&update)),
        names(vec![
            &path("t"),
            &path("p"),
            &path("u"),
            &path("q"),
            &path("r"),
            &path("s"),
            &path("w"),
            &path("z")
        ])
    );
}

#[test]
fn stepping_into_a_key_is_refused() {
    let env = Placeholders::default().name("#k", "b");
    let env = env.env();
    let check = |paths: &[&str]| {
        let paths: Vec<Path> = paths.iter().map(|text| path(text)).collect();
        check_key_paths(&paths, &env, &schema(), &["c", "d"]).map_err(|e| e.message().to_owned())
    };
    assert_eq!(check(&["a", "b", "c", "x.y", "e[1]"]), Ok(()));
    assert_eq!(
        check(&["x.y", "a[0]"]),
        Err("Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: a".into())
    );
    assert_eq!(
        check(&["d.x", "#k.z"]),
        Err("Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: b".into())
    );
    assert_eq!(
        check(&["d[1]"]),
        Err("Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: IndexKey: d".into())
    );
}

#[test]
fn updating_a_key_is_refused() {
    let env = Placeholders::default().name("#k", "a");
    let env = env.env();
    let check = |actions| {
        check_key_updates(&update(actions), &env, &schema()).map_err(|e| e.message().to_owned())
    };
    let refused = |name: &str| {
        Err(format!(
            "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
        ))
    };
    // dynalite's cases, checked against DynamoDB.
    assert_eq!(check(vec![add("a.b", ":a")]), refused("a"));
    assert_eq!(check(vec![delete("a", ":a")]), refused("a"));
    assert_eq!(
        check(vec![
            remove("d"),
            set("b", op(v(":a"))),
            set("a", op(v(":a")))
        ]),
        refused("a")
    );
    assert_eq!(check(vec![delete("b", ":a"), remove("a")]), refused("a"));
    assert_eq!(
        check(vec![set("a", V::Plus(from("a.b"), from("a[1]")))]),
        refused("a")
    );
    assert_eq!(
        check(vec![set("d[1]", op(v(":a"))), add("b.b", ":a")]),
        refused("b")
    );
    assert_eq!(check(vec![set("#k", op(v(":a")))]), refused("a"));
    // Reading a key is fine here.
    assert_eq!(
        check(vec![set("c", op(from("a"))), set("d", op(from("b")))]),
        Ok(())
    );
}

#[test]
fn query_filters_may_not_name_key_attributes() {
    let env = Placeholders::default().name("#k", "b");
    let env = env.env();
    let check = |paths: &[&str]| {
        let paths: Vec<Path> = paths.iter().map(|text| path(text)).collect();
        check_filter_key_attributes(&paths, &env, &schema(), "Filter Expression")
            .map_err(|e| e.message().to_owned())
    };
    assert_eq!(check(&["x", "y.z"]), Ok(()));
    assert_eq!(
        check(&["x", "#k"]),
        Err("Filter Expression can only contain non-primary key attributes: Primary key attribute: b".into())
    );
    assert_eq!(
        check(&["b", "a.x"]),
        Err("Filter Expression can only contain non-primary key attributes: Primary key attribute: a".into())
    );
    let filter = vec![(
        "b".to_owned(),
        crate::legacy::LegacyCondition {
            comparison_operator: crate::legacy::ComparisonOperator::NotNull,
            attribute_value_list: None,
        },
    )];
    assert_eq!(
        crate::legacy::check_query_filter_keys(&filter, &schema())
            .unwrap_err()
            .message(),
        "QueryFilter can only contain non-primary key attributes: Primary key attribute: b"
    );
    assert_eq!(
        crate::legacy::check_query_filter_keys(&filter[..0], &schema()),
        Ok(())
    );
}
