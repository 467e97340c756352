use atoll_model::Item;

use super::*;
use crate::eval::test_support::*;

/// The item of Alternator's projection test (checked against DynamoDB).
fn document() -> Item {
    item(vec![
        ("p", s("key")),
        (
            "a",
            m(vec![
                (
                    "b",
                    l(vec![
                        n("2"),
                        n("4"),
                        m(vec![("x", s("hi")), ("y", s("yo"))]),
                    ]),
                ),
                ("c", n("5")),
            ]),
        ),
        ("b", s("hello")),
    ])
}

fn projected(paths: &[&str]) -> Item {
    let placeholders = Placeholders::default().name("#n1", "a").name("#n2", "b");
    let projection = Projection {
        paths: paths.iter().map(|text| path(text)).collect(),
    };
    project(&document(), &projection, &placeholders.env()).expect("projects")
}

#[test]
fn top_level_attributes() {
    assert_eq!(projected(&["b"]), item(vec![("b", s("hello"))]));
    assert_eq!(
        projected(&["b", "p"]),
        item(vec![("b", s("hello")), ("p", s("key"))])
    );
    assert_eq!(
        projected(&["a"]),
        item(vec![("a", document().get("a").cloned().expect("a"))])
    );
    assert_eq!(projected(&["x"]), Item::new());
    assert_eq!(projected(&[]), Item::new());
}

#[test]
fn nested_paths_keep_their_structure() {
    let b_list = l(vec![
        n("2"),
        n("4"),
        m(vec![("x", s("hi")), ("y", s("yo"))]),
    ]);
    assert_eq!(
        projected(&["a.b"]),
        item(vec![("a", m(vec![("b", b_list)]))])
    );
    assert_eq!(
        projected(&["a.b[0]"]),
        item(vec![("a", m(vec![("b", l(vec![n("2")]))]))])
    );
    assert_eq!(
        projected(&["a.b[2]"]),
        item(vec![(
            "a",
            m(vec![(
                "b",
                l(vec![m(vec![("x", s("hi")), ("y", s("yo"))])])
            )])
        )])
    );
    assert_eq!(
        projected(&["a.b[2].y"]),
        item(vec![(
            "a",
            m(vec![("b", l(vec![m(vec![("y", s("yo"))])]))])
        )])
    );
    assert_eq!(
        projected(&["#n1.#n2[1]"]),
        item(vec![("a", m(vec![("b", l(vec![n("4")]))]))])
    );
}

#[test]
fn paths_that_do_not_resolve_are_skipped() {
    for missing in [
        "x",
        "a.b[3]",
        "a.x",
        "a.x.y",
        "a.b[3].x",
        "a.b.x",
        "a[0]",
        "a.b[0].x",
        "a.b[0][0]",
        "b.c",
    ] {
        assert_eq!(projected(&[missing]), Item::new(), "{missing}");
    }
    assert_eq!(
        projected(&["a.x", "a.b[0]", "x", "a.b[3].x"]),
        item(vec![("a", m(vec![("b", l(vec![n("2")]))]))])
    );
}

#[test]
fn several_paths_merge_and_list_elements_come_in_index_order() {
    assert_eq!(
        projected(&["a.b[0]", "a.b[1]"]),
        item(vec![("a", m(vec![("b", l(vec![n("2"), n("4")]))]))])
    );
    assert_eq!(
        projected(&["a.b[2].y", "a.b[0]"]),
        projected(&["a.b[0]", "a.b[2].y"])
    );
    assert_eq!(
        projected(&["a.b[2].y", "a.b[0]"]),
        item(vec![(
            "a",
            m(vec![("b", l(vec![n("2"), m(vec![("y", s("yo"))])]))])
        )])
    );
    assert_eq!(
        projected(&["a.b[2].x", "a.b[2].y"]),
        item(vec![(
            "a",
            m(vec![(
                "b",
                l(vec![m(vec![("x", s("hi")), ("y", s("yo"))])])
            )])
        )])
    );
    assert_eq!(
        projected(&["a.b[0]", "a.c"]),
        item(vec![("a", m(vec![("b", l(vec![n("2")])), ("c", n("5"))]))])
    );
    assert_eq!(
        projected(&["a.c", "b"]),
        item(vec![("a", m(vec![("c", n("5"))])), ("b", s("hello"))])
    );
}

#[test]
fn overlapping_paths_are_deterministic() {
    // The validator refuses these; should they come, the whole value wins.
    let whole = projected(&["a"]);
    assert_eq!(projected(&["a", "a.b[0]"]), whole);
    assert_eq!(projected(&["a.b[0]", "a"]), whole);
    assert_eq!(projected(&["b", "b"]), item(vec![("b", s("hello"))]));
}

#[test]
fn undefined_names_are_errors() {
    let projection = Projection {
        paths: vec![path("#nope")],
    };
    let error = project(&document(), &projection, &Placeholders::default().env()).unwrap_err();
    assert_eq!(
        error.message(),
        "An expression attribute name used in the document path is not defined; attribute name: #nope"
    );
}
