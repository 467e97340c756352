//! Helpers shared by the expression tests.
#![allow(dead_code)]

use std::collections::HashMap;

use atoll_expr::{ExprError, ExpressionKind, ExpressionRequest, ValidatedExpressions};
use atoll_model::{AttributeValue, Number};

/// A string value.
pub fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

/// A number value.
pub fn n(text: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(text).expect("a test number"))
}

/// A binary value.
pub fn b(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(bytes.to_vec())
}

/// A string set.
pub fn ss(items: &[&str]) -> AttributeValue {
    AttributeValue::Ss(items.iter().map(|item| (*item).to_owned()).collect())
}

/// A number set.
pub fn ns(items: &[&str]) -> AttributeValue {
    AttributeValue::Ns(
        items
            .iter()
            .map(|item| Number::parse(item).expect("a test number"))
            .collect(),
    )
}

/// Name placeholders.
pub fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Value placeholders.
pub fn values(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Checks one expression of `kind` with the given maps (absent when empty).
pub fn check(
    kind: ExpressionKind,
    text: &str,
    name_map: &HashMap<String, String>,
    value_map: &HashMap<String, AttributeValue>,
) -> Result<ValidatedExpressions, ExprError> {
    let mut request = ExpressionRequest {
        names: (!name_map.is_empty()).then_some(name_map),
        values: (!value_map.is_empty()).then_some(value_map),
        ..ExpressionRequest::default()
    };
    match kind {
        ExpressionKind::Condition => request.condition = Some(text),
        ExpressionKind::Filter => request.filter = Some(text),
        ExpressionKind::KeyCondition => request.key_condition = Some(text),
        ExpressionKind::Projection => request.projection = Some(text),
        ExpressionKind::Update => request.update = Some(text),
    }
    atoll_expr::check_references(&request, None)
}

/// The error message of checking one expression, or "ok".
pub fn message(
    kind: ExpressionKind,
    text: &str,
    name_map: &HashMap<String, String>,
    value_map: &HashMap<String, AttributeValue>,
) -> String {
    match check(kind, text, name_map, value_map) {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.message().to_owned(),
    }
}

use atoll_expr::ast::{
    Comparator, Condition, Name, Operand, Path, PathElement, Projection, SetOperand, SetValue,
    Update, UpdateAction, ValueRef,
};

/// A path as written: `a.#b[1]`.
pub fn path(path: &Path) -> String {
    let mut out = String::new();
    for (index, element) in path.0.iter().enumerate() {
        match element {
            PathElement::Attribute(Name::Literal(name) | Name::Placeholder(name)) => {
                if index > 0 {
                    out.push('.');
                }
                out.push_str(name);
            }
            PathElement::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

fn value(value: &ValueRef) -> String {
    match value {
        ValueRef::Placeholder(name) => name.clone(),
        ValueRef::Literal(value) => format!("{value:?}"),
    }
}

fn operand(operand: &Operand) -> String {
    match operand {
        Operand::Path(p) => path(p),
        Operand::Value(v) => value(v),
        Operand::Size(p) => format!("size({})", path(p)),
    }
}

fn symbol(comparator: &Comparator) -> &'static str {
    match comparator {
        Comparator::Eq => "=",
        Comparator::Ne => "<>",
        Comparator::Lt => "<",
        Comparator::Le => "<=",
        Comparator::Gt => ">",
        Comparator::Ge => ">=",
    }
}

/// A condition in prefix notation: `(AND (= a :v) (NOT (exists b)))`.
pub fn condition(condition: &Condition) -> String {
    match condition {
        Condition::Compare(c, l, r) => format!("({} {} {})", symbol(c), operand(l), operand(r)),
        Condition::Between(a, l, h) => {
            format!("(BETWEEN {} {} {})", operand(a), operand(l), operand(h))
        }
        Condition::In(a, list) => {
            let list: Vec<String> = list.iter().map(operand).collect();
            format!("(IN {} {})", operand(a), list.join(" "))
        }
        Condition::And(l, r) => format!("(AND {} {})", self::condition(l), self::condition(r)),
        Condition::Or(l, r) => format!("(OR {} {})", self::condition(l), self::condition(r)),
        Condition::Not(c) => format!("(NOT {})", self::condition(c)),
        Condition::AttributeExists(p) => format!("(exists {})", path(p)),
        Condition::AttributeNotExists(p) => format!("(not_exists {})", path(p)),
        Condition::AttributeType(p, t) => format!("(type {} {})", path(p), operand(t)),
        Condition::BeginsWith(a, b) => format!("(begins_with {} {})", operand(a), operand(b)),
        Condition::Contains(a, b) => format!("(contains {} {})", operand(a), operand(b)),
    }
}

fn set_operand(node: &SetOperand) -> String {
    match node {
        SetOperand::Path(p) => path(p),
        SetOperand::Value(v) => value(v),
        SetOperand::IfNotExists(p, fallback) => {
            format!("if_not_exists({}, {})", path(p), set_operand(fallback))
        }
        SetOperand::ListAppend(a, b) => {
            format!("list_append({}, {})", set_operand(a), set_operand(b))
        }
    }
}

/// An update as `SET a = :v; REMOVE b; ...`.
pub fn update(update: &Update) -> String {
    let actions: Vec<String> = update
        .actions
        .iter()
        .map(|action| match action {
            UpdateAction::Set(p, SetValue::Operand(o)) => {
                format!("SET {} = {}", path(p), set_operand(o))
            }
            UpdateAction::Set(p, SetValue::Plus(a, b)) => {
                format!("SET {} = {} + {}", path(p), set_operand(a), set_operand(b))
            }
            UpdateAction::Set(p, SetValue::Minus(a, b)) => {
                format!("SET {} = {} - {}", path(p), set_operand(a), set_operand(b))
            }
            UpdateAction::Remove(p) => format!("REMOVE {}", path(p)),
            UpdateAction::Add(p, v) => format!("ADD {} {}", path(p), value(v)),
            UpdateAction::Delete(p, v) => format!("DELETE {} {}", path(p), value(v)),
        })
        .collect();
    actions.join("; ")
}

/// A projection as `a, b.c`.
pub fn projection(projection: &Projection) -> String {
    let paths: Vec<String> = projection.paths.iter().map(path).collect();
    paths.join(", ")
}
