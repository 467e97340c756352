//! Builders for hand-made ASTs, values and items in the evaluator's tests
//! (the parser is written separately, so tests do not depend on it).

use std::collections::{BTreeMap, HashMap};

use atoll_model::{AttributeValue, Item, Number};

use crate::Env;
use crate::ast::{
    Comparator, Condition, Name, Operand, Path, PathElement, SetOperand as O, SetValue as V,
    Update, UpdateAction as A, ValueRef,
};

/// A path in expression syntax: `a.b[2].#c` (`#x` is a placeholder).
pub fn path(text: &str) -> Path {
    let mut elements = Vec::new();
    for part in text.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if !name.is_empty() {
            elements.push(PathElement::Attribute(
                if let Some(stripped) = name.strip_prefix('#') {
                    Name::Placeholder(format!("#{stripped}"))
                } else {
                    Name::Literal(name.to_owned())
                },
            ));
        }
        while let Some(open) = rest.strip_prefix('[') {
            let close = open.find(']').expect("test path: ]");
            elements.push(PathElement::Index(
                open[..close].parse().expect("test path: index"),
            ));
            rest = &open[close + 1..];
        }
    }
    Path(elements)
}

/// `S`
pub fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

/// `N` from its text.
pub fn n(text: &str) -> AttributeValue {
    AttributeValue::N(num(text))
}

/// A `Number` from its text.
pub fn num(text: &str) -> Number {
    Number::parse(text).expect("test number")
}

/// `B`
pub fn b(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(bytes.to_vec())
}

/// `SS`
pub fn ss(items: &[&str]) -> AttributeValue {
    AttributeValue::Ss(items.iter().map(|s| (*s).to_owned()).collect())
}

/// `NS`
pub fn ns(items: &[&str]) -> AttributeValue {
    AttributeValue::Ns(items.iter().map(|s| num(s)).collect())
}

/// `BS`
pub fn bs(items: &[&[u8]]) -> AttributeValue {
    AttributeValue::Bs(items.iter().map(|b| b.to_vec()).collect())
}

/// `L`
pub fn l(items: Vec<AttributeValue>) -> AttributeValue {
    AttributeValue::L(items)
}

/// `M`
pub fn m(entries: Vec<(&str, AttributeValue)>) -> AttributeValue {
    AttributeValue::M(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// An item.
pub fn item(entries: Vec<(&str, AttributeValue)>) -> Item {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// One sample of every type, for type-combination tests.
pub fn samples() -> Vec<AttributeValue> {
    vec![
        s("a"),
        n("1"),
        b(b"a"),
        AttributeValue::Bool(true),
        AttributeValue::Null,
        ss(&["a"]),
        ns(&["1"]),
        bs(&[b"a"]),
        l(vec![s("a")]),
        m(vec![("a", s("a"))]),
    ]
}

/// Placeholders for one request.
#[derive(Default)]
pub struct Placeholders {
    /// `ExpressionAttributeNames`.
    pub names: HashMap<String, String>,
    /// `ExpressionAttributeValues`.
    pub values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    /// With a name placeholder.
    pub fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.names.insert(placeholder.to_owned(), name.to_owned());
        self
    }

    /// With a value placeholder.
    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// The environment over these placeholders.
    pub fn env(&self) -> Env<'_> {
        Env {
            names: &self.names,
            values: &self.values,
        }
    }
}

/// Operand: the attribute at a path.
pub fn at(text: &str) -> Operand {
    Operand::Path(path(text))
}

/// Operand: a value placeholder.
pub fn val(placeholder: &str) -> Operand {
    Operand::Value(ValueRef::Placeholder(placeholder.to_owned()))
}

/// Operand: a literal value.
pub fn lit(value: AttributeValue) -> Operand {
    Operand::Value(ValueRef::Literal(value))
}

/// Operand: `size(path)`.
pub fn size(text: &str) -> Operand {
    Operand::Size(path(text))
}

/// `left <op> right`.
pub fn cmp(comparator: Comparator, left: Operand, right: Operand) -> Condition {
    Condition::Compare(comparator, left, right)
}

/// `x AND y`.
pub fn and(x: Condition, y: Condition) -> Condition {
    Condition::And(Box::new(x), Box::new(y))
}

/// `x OR y`.
pub fn or(x: Condition, y: Condition) -> Condition {
    Condition::Or(Box::new(x), Box::new(y))
}

/// `NOT x`.
pub fn not(x: Condition) -> Condition {
    Condition::Not(Box::new(x))
}

/// `SET target = value`.
pub fn set(target: &str, value: V) -> A {
    A::Set(path(target), value)
}

/// A SET value that is a single operand.
pub fn op(operand: O) -> V {
    V::Operand(operand)
}

/// SET operand: the attribute at a path.
pub fn from(text: &str) -> O {
    O::Path(path(text))
}

/// SET operand: a value placeholder.
pub fn v(placeholder: &str) -> O {
    O::Value(ValueRef::Placeholder(placeholder.to_owned()))
}

/// `if_not_exists(target, fallback)`.
pub fn if_not_exists(target: &str, fallback: O) -> O {
    O::IfNotExists(path(target), Box::new(fallback))
}

/// `list_append(first, second)`.
pub fn list_append(first: O, second: O) -> O {
    O::ListAppend(Box::new(first), Box::new(second))
}

/// `REMOVE target`.
pub fn remove(target: &str) -> A {
    A::Remove(path(target))
}

/// `ADD target :placeholder`.
pub fn add(target: &str, placeholder: &str) -> A {
    A::Add(path(target), ValueRef::Placeholder(placeholder.to_owned()))
}

/// `DELETE target :placeholder`.
pub fn delete(target: &str, placeholder: &str) -> A {
    A::Delete(path(target), ValueRef::Placeholder(placeholder.to_owned()))
}

/// An update of these actions.
pub fn update(actions: Vec<A>) -> Update {
    Update { actions }
}
