use atoll_model::{AttributeValue, Item};
use proptest::prelude::*;

use super::test_support::*;
use super::*;
use crate::ast::{Comparator as C, Condition};

/// Evaluates with `:v`, `:w`, `:x` bound to the given values (when given).
fn eval_with(
    condition: &Condition,
    item: &Item,
    values: &[(&str, AttributeValue)],
) -> Result<bool, ExprError> {
    let mut placeholders = Placeholders::default().name("#n", "name");
    for (placeholder, value) in values {
        placeholders = placeholders.value(placeholder, value.clone());
    }
    evaluate(condition, item, &placeholders.env())
}

fn holds(condition: &Condition, item: &Item) -> bool {
    eval_with(condition, item, &[]).expect("evaluates")
}

/// `left <op> right` over two literal values.
fn compares(comparator: C, left: AttributeValue, right: AttributeValue) -> bool {
    holds(&cmp(comparator, lit(left), lit(right)), &Item::new())
}

fn nested_item() -> Item {
    item(vec![
        (
            "a",
            m(vec![
                ("b", l(vec![n("1"), m(vec![("c", s("deep"))])])),
                ("d", s("x")),
            ]),
        ),
        ("name", s("placeholder")),
        ("list", l(vec![s("zero"), s("one")])),
        ("str", s("hello")),
    ])
}

#[test]
fn resolve_walks_maps_and_lists() {
    let item = nested_item();
    let env = Placeholders::default().name("#n", "name").name("#b", "b");
    let env = env.env();
    let get = |text: &str| {
        resolve(&item, &path(text), &env)
            .expect("resolves")
            .cloned()
    };
    assert_eq!(get("a.d"), Some(s("x")));
    assert_eq!(get("a.#b[1].c"), Some(s("deep")));
    assert_eq!(get("#n"), Some(s("placeholder")));
    assert_eq!(get("list[1]"), Some(s("one")));
    // Missing steps, indexes past the end, and steps into the wrong kind.
    for missing in [
        "z",
        "a.z",
        "list[2]",
        "a[0]",
        "list.x",
        "str.x",
        "str[0]",
        "a.b[1].c.d",
        "a.b[7].c",
    ] {
        assert_eq!(get(missing), None, "{missing}");
    }
}

#[test]
fn undefined_placeholders_are_reported() {
    let item = nested_item();
    let env = Placeholders::default();
    let error = resolve(&item, &path("#missing"), &env.env()).unwrap_err();
    assert_eq!(
        error.message(),
        "An expression attribute name used in the document path is not defined; attribute name: #missing"
    );
    // Also below a value that is not a map.
    assert!(resolve(&item, &path("str.#missing"), &env.env()).is_err());
    let error = eval_with(&cmp(C::Eq, at("str"), val(":nope")), &item, &[]).unwrap_err();
    assert_eq!(
        error.message(),
        "An expression attribute value used in expression is not defined; attribute value: :nope"
    );
}

#[test]
fn equality_by_type() {
    for (i, a) in samples().into_iter().enumerate() {
        for (j, b) in samples().into_iter().enumerate() {
            assert_eq!(
                compares(C::Eq, a.clone(), b.clone()),
                i == j,
                "{a:?} = {b:?}"
            );
            assert_eq!(
                compares(C::Ne, a.clone(), b.clone()),
                i != j,
                "{a:?} <> {b:?}"
            );
        }
    }
    // Same type, different value.
    assert!(!compares(C::Eq, s("a"), s("b")));
    assert!(compares(C::Ne, n("1"), n("2")));
    assert!(!compares(
        C::Eq,
        AttributeValue::Bool(true),
        AttributeValue::Bool(false)
    ));
    // A number and the string of it differ.
    assert!(!compares(C::Eq, n("6"), s("6")));
    assert!(!compares(C::Eq, n("6"), ns(&["6"])));
}

#[test]
fn numbers_compare_by_value() {
    assert!(compares(C::Eq, n("1"), n("1.00")));
    assert!(compares(C::Eq, n("1E2"), n("100")));
    assert!(compares(C::Lt, n("9"), n("10")));
    assert!(compares(C::Lt, n("-10"), n("-9")));
    assert!(compares(C::Gt, n("0.1"), n("-0.1")));
    let big = "12345678901234567890123456789012345678";
    let bigger = "12345678901234567890123456789012345679";
    assert!(compares(C::Lt, n(big), n(bigger)));
    assert!(compares(C::Le, n(big), n(big)));
    assert!(compares(
        C::Ge,
        n("9.9999999999999999999999999999999999999E+125"),
        n("1E-130")
    ));
}

#[test]
fn strings_order_by_utf8_bytes_and_binaries_unsigned() {
    assert!(compares(C::Lt, s("A"), s("a")));
    assert!(compares(C::Lt, s("a"), s("aa")));
    assert!(compares(C::Lt, s(""), s("a")));
    // UTF-8 and UTF-16 orders differ here: U+FFFD is EF BF BD in UTF-8, an
    // emoji F0 ...; in UTF-16 the emoji's surrogate D83D comes first.
    assert!(compares(C::Lt, s("\u{FFFD}"), s("😀")));
    assert!(compares(C::Lt, b(&[127]), b(&[128])));
    assert!(compares(C::Le, b(&[1, 2]), b(&[1, 2])));
    assert!(compares(C::Gt, b(&[1, 2]), b(&[1])));
}

#[test]
fn only_s_n_b_are_ordered() {
    for value in samples() {
        let orderable = matches!(
            value,
            AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
        );
        for comparator in [C::Le, C::Ge] {
            assert_eq!(
                compares(comparator, value.clone(), value.clone()),
                orderable,
                "{value:?}"
            );
        }
        for comparator in [C::Lt, C::Gt] {
            assert!(!compares(comparator, value.clone(), value.clone()));
        }
    }
    // Different types never order.
    for comparator in [C::Lt, C::Le, C::Gt, C::Ge] {
        assert!(!compares(comparator, n("1"), s("2")));
        assert!(!compares(comparator, s("1"), b(b"2")));
    }
}

#[test]
fn missing_attributes_only_satisfy_not_equal() {
    let item = nested_item();
    for comparator in [C::Eq, C::Lt, C::Le, C::Gt, C::Ge] {
        assert!(!holds(&cmp(comparator, at("zz"), lit(n("1"))), &item));
        assert!(!holds(&cmp(comparator, lit(n("1")), at("zz")), &item));
        assert!(!holds(&cmp(comparator, at("zz"), at("yy")), &item));
        assert!(!holds(&cmp(comparator, at("zz"), at("zz")), &item));
    }
    assert!(holds(&cmp(C::Ne, at("zz"), lit(n("1"))), &item));
    assert!(holds(&cmp(C::Ne, at("zz"), at("yy")), &item));
    assert!(holds(&cmp(C::Ne, at("a.zz"), at("list[9]")), &item));
    // An empty item stands for a missing one.
    assert!(holds(&cmp(C::Ne, at("pk"), lit(s("k"))), &Item::new()));
}

#[test]
fn sets_compare_as_sets_lists_in_order_maps_by_key() {
    assert!(compares(C::Eq, ss(&["a", "b", "c"]), ss(&["c", "a", "b"])));
    assert!(!compares(C::Eq, ss(&["a", "b"]), ss(&["a", "b", "c"])));
    assert!(compares(C::Eq, ns(&["1", "2"]), ns(&["2.0", "1"])));
    assert!(compares(C::Eq, bs(&[b"x", b"y"]), bs(&[b"y", b"x"])));
    assert!(compares(C::Ne, ss(&["a"]), ns(&["1"])));
    assert!(compares(
        C::Eq,
        l(vec![n("1"), s("a")]),
        l(vec![n("1.0"), s("a")])
    ));
    assert!(!compares(
        C::Eq,
        l(vec![n("1"), s("a")]),
        l(vec![s("a"), n("1")])
    ));
    assert!(!compares(C::Eq, l(vec![n("1")]), l(vec![n("1"), n("1")])));
    let nested = |order: &[&str]| m(vec![("k", l(vec![ss(order)])), ("j", AttributeValue::Null)]);
    assert!(compares(C::Eq, nested(&["x", "y"]), nested(&["y", "x"])));
    assert!(!compares(C::Eq, nested(&["x", "y"]), nested(&["x"])));
    assert!(!compares(
        C::Eq,
        m(vec![("a", n("1"))]),
        m(vec![("b", n("1"))])
    ));
    assert!(compares(C::Eq, m(vec![]), m(vec![])));
}

#[test]
fn between_is_inclusive_and_typed() {
    let between = |value: AttributeValue, low: AttributeValue, high: AttributeValue| {
        holds(
            &Condition::Between(lit(value), lit(low), lit(high)),
            &Item::new(),
        )
    };
    assert!(between(n("1"), n("1"), n("2")));
    assert!(between(n("2"), n("1"), n("2")));
    assert!(between(n("1.5"), n("1"), n("2")));
    assert!(!between(n("2.0001"), n("1"), n("2")));
    assert!(between(s("cat"), s("aardvark"), s("dog")));
    assert!(between(b(&[127]), b(&[126]), b(&[128])));
    assert!(!between(n("1"), s("0"), s("2")));
    assert!(!between(l(vec![]), l(vec![]), l(vec![])));
    // Reversed bounds hold for nothing.
    assert!(!between(n("1"), n("2"), n("0")));
    let item = nested_item();
    assert!(!holds(
        &Condition::Between(at("zz"), lit(n("0")), lit(n("9"))),
        &item
    ));
    assert!(!holds(
        &Condition::Between(lit(n("1")), at("zz"), lit(n("9"))),
        &item
    ));
}

#[test]
fn in_matches_any_listed_value() {
    let item = nested_item();
    let within = |value: Operand, list: Vec<Operand>| holds(&Condition::In(value, list), &item);
    assert!(within(at("str"), vec![lit(s("x")), lit(s("hello"))]));
    assert!(!within(at("str"), vec![lit(s("x")), lit(n("1"))]));
    assert!(within(
        at("list"),
        vec![lit(n("1")), lit(l(vec![s("zero"), s("one")]))]
    ));
    assert!(!within(at("zz"), vec![lit(n("1")), at("yy")]));
    assert!(within(lit(ss(&["b", "a"])), vec![lit(ss(&["a", "b"]))]));
}

#[test]
fn boolean_connectives() {
    let item = nested_item();
    let yes = || Condition::AttributeExists(path("str"));
    let no = || Condition::AttributeExists(path("zz"));
    assert!(holds(&and(yes(), yes()), &item));
    assert!(!holds(&and(yes(), no()), &item));
    assert!(!holds(&and(no(), yes()), &item));
    assert!(holds(&or(no(), yes()), &item));
    assert!(!holds(&or(no(), no()), &item));
    assert!(holds(&not(no()), &item));
    assert!(!holds(&not(yes()), &item));
    assert!(holds(&or(and(no(), yes()), not(and(yes(), no()))), &item));
    // Short-circuit: the right side is not evaluated (it would fail).
    let failing = || cmp(C::Eq, at("str"), val(":undefined"));
    assert!(!holds(&and(no(), failing()), &item));
    assert!(holds(&or(yes(), failing()), &item));
    assert!(eval_with(&and(yes(), failing()), &item, &[]).is_err());
}

#[test]
fn deep_conditions_do_not_exhaust_the_stack() {
    let mut condition = Condition::AttributeExists(path("str"));
    for depth in 0..100_000 {
        condition = if depth % 3 == 0 {
            not(condition)
        } else if depth % 3 == 1 {
            and(Condition::AttributeExists(path("str")), condition)
        } else {
            or(Condition::AttributeExists(path("zz")), condition)
        };
    }
    let item = nested_item();
    // 33 334 NOTs (an even number) around a true condition. Dropping a
    // chain this deep recurses, so the test leaks it, also on failure.
    let condition = std::mem::ManuallyDrop::new(condition);
    assert!(holds(&condition, &item));
    let wrapped = std::mem::ManuallyDrop::new(not(std::mem::ManuallyDrop::into_inner(condition)));
    assert!(!holds(&wrapped, &item));
    assert!(
        check_condition_operands(&wrapped, &Placeholders::default().env(), "FilterExpression")
            .is_ok()
    );
}

#[test]
fn existence_functions() {
    let item = nested_item();
    assert!(holds(&Condition::AttributeExists(path("a.b[1].c")), &item));
    assert!(!holds(&Condition::AttributeExists(path("a.b[2]")), &item));
    assert!(holds(&Condition::AttributeNotExists(path("a.b[2]")), &item));
    assert!(!holds(&Condition::AttributeNotExists(path("#n")), &item));
    let with_null = item_with("x", AttributeValue::Null);
    assert!(holds(&Condition::AttributeExists(path("x")), &with_null));
}

fn item_with(name: &str, value: AttributeValue) -> Item {
    item(vec![(name, value)])
}

#[test]
fn attribute_type_matches_each_type() {
    for value in samples() {
        let subject = item_with("x", value.clone());
        for wanted in crate::eval::values::ATTRIBUTE_TYPE_NAMES {
            let condition = Condition::AttributeType(path("x"), val(":t"));
            let result = eval_with(&condition, &subject, &[(":t", s(wanted))]).expect("evaluates");
            assert_eq!(
                result,
                value.type_name() == wanted,
                "{value:?} is {wanted}?"
            );
        }
    }
    let missing = Condition::AttributeType(path("zz"), lit(s("S")));
    assert!(!holds(&missing, &Item::new()));
}

#[test]
fn attribute_type_with_a_bad_type_is_an_error() {
    let condition = Condition::AttributeType(path("x"), lit(s("DOG")));
    let error = eval_with(&condition, &Item::new(), &[]).unwrap_err();
    assert_eq!(
        error.message(),
        "Invalid attribute type name found; type: DOG, valid types: {N,BS,L,B,NULL,M,S,SS,NS,BOOL}"
    );
    let condition = Condition::AttributeType(path("x"), lit(n("1")));
    assert_eq!(
        eval_with(&condition, &Item::new(), &[])
            .unwrap_err()
            .message(),
        "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N"
    );
}

#[test]
fn begins_with_on_strings_and_binaries() {
    let begins = |value: AttributeValue, prefix: AttributeValue| {
        holds(
            &Condition::BeginsWith(lit(value), lit(prefix)),
            &Item::new(),
        )
    };
    assert!(begins(s("hello"), s("hell")));
    assert!(begins(s("hello"), s("")));
    assert!(begins(s("hello"), s("hello")));
    assert!(!begins(s("hello"), s("hello!")));
    assert!(!begins(s("hello"), s("H")));
    assert!(begins(b(b"hi there"), b(b"hi")));
    assert!(!begins(b(b"hi there"), b(b"there")));
    // Other types and mixed types are false, not errors, at evaluation.
    assert!(!begins(s("hi"), b(b"hi")));
    for value in samples() {
        if !matches!(value, AttributeValue::S(_) | AttributeValue::B(_)) {
            assert!(!begins(value.clone(), value.clone()), "{value:?}");
        }
    }
    // Operands may be in any order or both attributes.
    let item = item(vec![("a", s("hello")), ("c", s("he"))]);
    assert!(holds(&Condition::BeginsWith(at("a"), at("c")), &item));
    assert!(holds(
        &Condition::BeginsWith(lit(s("hellohi")), at("a")),
        &item
    ));
    assert!(!holds(&Condition::BeginsWith(at("zz"), lit(s(""))), &item));
}

#[test]
fn contains_substrings_members_and_elements() {
    let has = |haystack: AttributeValue, needle: AttributeValue| {
        holds(
            &Condition::Contains(lit(haystack), lit(needle)),
            &Item::new(),
        )
    };
    assert!(has(s("hello"), s("ell")));
    assert!(has(s("hello"), s("")));
    assert!(!has(s("hello"), s("dog")));
    assert!(has(b(b"hi there"), b(b"here")));
    assert!(!has(b(b"hi there"), b(b"dog")));
    assert!(has(ss(&["a", "b"]), s("b")));
    assert!(!has(ss(&["a", "b"]), s("c")));
    assert!(has(ns(&["2", "4", "7"]), n("4.0")));
    assert!(!has(ns(&["2", "4", "7"]), s("4")));
    assert!(has(bs(&[b"x"]), b(b"x")));
    assert!(!has(bs(&[b"x"]), s("x")));
    assert!(has(l(vec![n("2"), n("4")]), n("4")));
    assert!(has(l(vec![s("hi"), ns(&["1", "2"])]), ns(&["2", "1"])));
    assert!(has(
        l(vec![l(vec![n("3"), n("4")])]),
        l(vec![n("3"), n("4")])
    ));
    assert!(!has(l(vec![s("hello")]), s("ell")));
    assert!(!has(b(b"hi"), ss(&["h"])));
    assert!(!has(m(vec![("a", s("a"))]), s("a")));
    assert!(!has(n("123"), n("2")));
    assert!(!has(s("123"), n("2")));
    assert!(!holds(
        &Condition::Contains(at("zz"), lit(s("a"))),
        &nested_item()
    ));
}

#[test]
fn size_of_each_type() {
    let subject = item(vec![
        ("s", s("hello")),
        ("unicode", s("é𝄞")),
        ("b", b(b"hi there")),
        ("ss", ss(&["a", "b"])),
        ("ns", ns(&["2", "4", "7"])),
        ("bs", bs(&[b"x"])),
        ("l", l(vec![n("2"), s("dog"), n("7")])),
        (
            "m",
            m(vec![
                ("x", n("2")),
                ("y", m(vec![("m", n("3")), ("n", n("4"))])),
            ]),
        ),
        ("empty", s("")),
        ("n", n("5")),
        ("bool", AttributeValue::Bool(true)),
        ("null", AttributeValue::Null),
    ]);
    for (attribute, expected) in [
        ("s", "5"),
        ("unicode", "3"),
        ("b", "8"),
        ("ss", "2"),
        ("ns", "3"),
        ("bs", "1"),
        ("l", "3"),
        ("m", "2"),
        ("empty", "0"),
    ] {
        assert!(
            holds(&cmp(C::Eq, size(attribute), lit(n(expected))), &subject),
            "size({attribute})"
        );
    }
    assert!(holds(&cmp(C::Lt, size("s"), lit(n("7"))), &subject));
    assert!(holds(&cmp(C::Eq, size("s"), at("n")), &subject));
    // Comparing a size with a non-number is just false.
    assert!(!holds(&cmp(C::Eq, size("s"), lit(s("5"))), &subject));
    // Numbers, booleans, NULL and missing attributes have no size.
    for attribute in ["n", "bool", "null", "zz"] {
        for comparator in [C::Eq, C::Lt, C::Le, C::Gt, C::Ge] {
            assert!(!holds(
                &cmp(comparator, size(attribute), lit(n("1"))),
                &subject
            ));
        }
        // unverified: `<>` then holds, as for a missing attribute.
        assert!(holds(&cmp(C::Ne, size(attribute), lit(n("1"))), &subject));
    }
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        (any::<i64>(), 0u32..30).prop_map(|(m, e)| format!("{m}E-{e}")),
        (1u64..10, 0i32..120).prop_map(|(m, e)| format!("-{m}E{e}")),
    ]
}

proptest! {
    #[test]
    fn comparisons_agree_with_number_ordering(a in number(), b in number()) {
        let (x, y) = (num(&a), num(&b));
        prop_assert_eq!(compares(C::Lt, n(&a), n(&b)), x < y);
        prop_assert_eq!(compares(C::Le, n(&a), n(&b)), x <= y);
        prop_assert_eq!(compares(C::Gt, n(&a), n(&b)), x > y);
        prop_assert_eq!(compares(C::Ge, n(&a), n(&b)), x >= y);
        prop_assert_eq!(compares(C::Eq, n(&a), n(&b)), x == y);
        prop_assert_eq!(compares(C::Ne, n(&a), n(&b)), x != y);
        let low = std::cmp::min(x, y);
        let high = std::cmp::max(x, y);
        let between = Condition::Between(lit(n(&a)), lit(AttributeValue::N(low)), lit(AttributeValue::N(high)));
        prop_assert!(holds(&between, &Item::new()));
    }

    #[test]
    fn strings_order_like_their_bytes(a in ".{0,8}", b in ".{0,8}") {
        prop_assert_eq!(compares(C::Lt, s(&a), s(&b)), a.as_bytes() < b.as_bytes());
        prop_assert_eq!(compares(C::Lt, AttributeValue::B(a.clone().into_bytes()), AttributeValue::B(b.clone().into_bytes())), a.as_bytes() < b.as_bytes());
    }

    #[test]
    fn set_equality_ignores_order(mut items in proptest::collection::btree_set("[a-c]{1,3}", 1..6), rotate in 0usize..6) {
        let forward: Vec<String> = items.iter().cloned().collect();
        let mut rotated = forward.clone();
        rotated.rotate_left(rotate % forward.len());
        prop_assert!(values_equal(&AttributeValue::Ss(forward.clone()), &AttributeValue::Ss(rotated)));
        items.insert("zzz".into());
        prop_assert!(!values_equal(&AttributeValue::Ss(forward), &AttributeValue::Ss(items.into_iter().collect())));
    }
}
