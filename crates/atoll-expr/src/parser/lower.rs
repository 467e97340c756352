//! From the syntax tree to the shared AST.
//!
//! Lowering succeeds for every tree that passes validation, with two
//! exceptions DynamoDB accepts but the AST has no node for: `size()` of a
//! value and `attribute_type()` of something other than a path. Those are
//! folded once the request's values are known (`size(:v)` becomes the
//! number, `attribute_type(:v, :t)` a constant condition,
//! `attribute_type(size(p), :t)` a test on `size(p)`); without values they
//! do not lower.

use std::collections::HashMap;

use atoll_model::{AttributeValue, Number};

use super::tree::{
    ActionNode, CallNode, CondNode, OperandNode, PathNode, SetValueNode, Step, UpdateNode,
};
use crate::ast::{
    Comparator, Condition, Name, Operand, Path, PathElement, Projection, SetOperand, SetValue,
    Update, UpdateAction, ValueRef,
};
use crate::eval::values::size_of;

/// The request's values, when known.
type Values<'a> = Option<&'a HashMap<String, AttributeValue>>;

pub(crate) fn path(node: &PathNode) -> Option<Path> {
    let elements = node
        .steps
        .iter()
        .map(|step| match step {
            Step::Name(name) if name.starts_with('#') => {
                Some(PathElement::Attribute(Name::Placeholder(name.clone())))
            }
            Step::Name(name) => Some(PathElement::Attribute(Name::Literal(name.clone()))),
            Step::Index(digits) => digits.parse::<u32>().ok().map(PathElement::Index),
            Step::ValueKey(_) => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Path(elements))
}

fn placeholder(name: &str) -> ValueRef {
    ValueRef::Placeholder(name.to_owned())
}

fn literal(value: AttributeValue) -> Operand {
    Operand::Value(ValueRef::Literal(value))
}

/// A condition that is always true or always false.
fn constant(truth: bool) -> Condition {
    let empty = || literal(AttributeValue::S(String::new()));
    let comparator = if truth {
        Comparator::Eq
    } else {
        Comparator::Ne
    };
    Condition::Compare(comparator, empty(), empty())
}

fn value_of<'v>(node: &OperandNode, values: Values<'v>) -> Option<&'v AttributeValue> {
    match node {
        OperandNode::Value(name) => values?.get(name),
        _ => None,
    }
}

fn operand(node: &OperandNode, values: Values) -> Option<Operand> {
    match node {
        OperandNode::Path(node) => Some(Operand::Path(path(node)?)),
        OperandNode::Value(name) => Some(Operand::Value(placeholder(name))),
        OperandNode::Call(call) => match (call.name.as_str(), call.args.as_slice()) {
            ("size", [OperandNode::Path(node)]) => Some(Operand::Size(path(node)?)),
            ("size", [arg]) => {
                let size = size_of(value_of(arg, values)?)?;
                Some(literal(AttributeValue::N(size)))
            }
            _ => None,
        },
    }
}

fn attribute_type(args: &[OperandNode], values: Values) -> Option<Condition> {
    let [subject, type_name] = args else {
        return None;
    };
    match subject {
        OperandNode::Path(node) => Some(Condition::AttributeType(
            path(node)?,
            operand(type_name, values)?,
        )),
        OperandNode::Value(_) => {
            let AttributeValue::S(wanted) = value_of(type_name, values)? else {
                return None;
            };
            Some(constant(value_of(subject, values)?.type_name() == wanted))
        }
        // `size(...)` is a number whenever it exists; of a value (which
        // validation requires to have a size) it always exists.
        OperandNode::Call(CallNode { name, args }) if name == "size" => {
            let AttributeValue::S(wanted) = value_of(type_name, values)? else {
                return None;
            };
            match args.as_slice() {
                _ if wanted != "N" => Some(constant(false)),
                [OperandNode::Path(node)] => Some(Condition::Compare(
                    Comparator::Ge,
                    Operand::Size(path(node)?),
                    literal(AttributeValue::N(Number::from_i64(0))),
                )),
                _ => Some(constant(true)),
            }
        }
        OperandNode::Call(_) => None,
    }
}

fn call(node: &CallNode, values: Values) -> Option<Condition> {
    let two = |args: &[OperandNode]| match args {
        [a, b] => Some((operand(a, values)?, operand(b, values)?)),
        _ => None,
    };
    match (node.name.as_str(), node.args.as_slice()) {
        ("attribute_exists", [OperandNode::Path(p)]) => Some(Condition::AttributeExists(path(p)?)),
        ("attribute_not_exists", [OperandNode::Path(p)]) => {
            Some(Condition::AttributeNotExists(path(p)?))
        }
        ("attribute_type", args) => attribute_type(args, values),
        ("begins_with", args) => two(args).map(|(a, b)| Condition::BeginsWith(a, b)),
        ("contains", args) => two(args).map(|(a, b)| Condition::Contains(a, b)),
        _ => None,
    }
}

/// Joins a chain to the right, as DynamoDB groups `a AND b AND c`.
fn fold(
    items: &[CondNode],
    values: Values,
    join: fn(Box<Condition>, Box<Condition>) -> Condition,
) -> Option<Condition> {
    let mut lowered = items
        .iter()
        .map(|item| condition(item, values))
        .collect::<Option<Vec<_>>>()?;
    let mut result = lowered.pop()?;
    while let Some(left) = lowered.pop() {
        result = join(Box::new(left), Box::new(result));
    }
    Some(result)
}

/// The condition for `node`, if it lowers.
pub(crate) fn condition(node: &CondNode, values: Values) -> Option<Condition> {
    Some(match node {
        CondNode::Compare(op, left, right) => {
            Condition::Compare(*op, operand(left, values)?, operand(right, values)?)
        }
        CondNode::In(left, list) => Condition::In(
            operand(left, values)?,
            list.iter()
                .map(|item| operand(item, values))
                .collect::<Option<Vec<_>>>()?,
        ),
        CondNode::Between(value, low, high) => Condition::Between(
            operand(value, values)?,
            operand(low, values)?,
            operand(high, values)?,
        ),
        CondNode::Call(node) => call(node, values)?,
        CondNode::Not(count, inner) => {
            let mut result = condition(inner, values)?;
            for _ in 0..*count {
                result = Condition::Not(Box::new(result));
            }
            result
        }
        CondNode::And(items) => fold(items, values, Condition::And)?,
        CondNode::Or(items) => fold(items, values, Condition::Or)?,
    })
}

fn set_operand(node: &OperandNode) -> Option<SetOperand> {
    match node {
        OperandNode::Path(node) => Some(SetOperand::Path(path(node)?)),
        OperandNode::Value(name) => Some(SetOperand::Value(placeholder(name))),
        OperandNode::Call(call) => match (call.name.as_str(), call.args.as_slice()) {
            ("if_not_exists", [OperandNode::Path(p), fallback]) => Some(SetOperand::IfNotExists(
                path(p)?,
                Box::new(set_operand(fallback)?),
            )),
            ("list_append", [a, b]) => Some(SetOperand::ListAppend(
                Box::new(set_operand(a)?),
                Box::new(set_operand(b)?),
            )),
            _ => None,
        },
    }
}

/// The update for `node`, actions in the order written, if it lowers.
pub(crate) fn update(node: &UpdateNode) -> Option<Update> {
    let actions = node
        .actions()
        .map(|action| {
            Some(match action {
                ActionNode::Set(target, value) => UpdateAction::Set(
                    path(target)?,
                    match value {
                        SetValueNode::Operand(node) => SetValue::Operand(set_operand(node)?),
                        SetValueNode::Arithmetic {
                            left,
                            plus: true,
                            right,
                        } => SetValue::Plus(set_operand(left)?, set_operand(right)?),
                        SetValueNode::Arithmetic {
                            left,
                            plus: false,
                            right,
                        } => SetValue::Minus(set_operand(left)?, set_operand(right)?),
                    },
                ),
                ActionNode::Remove(target) => UpdateAction::Remove(path(target)?),
                ActionNode::Add(target, value) => {
                    UpdateAction::Add(path(target)?, placeholder(value))
                }
                ActionNode::Delete(target, value) => {
                    UpdateAction::Delete(path(target)?, placeholder(value))
                }
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Update { actions })
}

/// The projection for `paths`, in the order written, if it lowers.
pub(crate) fn projection(paths: &[PathNode]) -> Option<Projection> {
    Some(Projection {
        paths: paths.iter().map(path).collect::<Option<Vec<_>>>()?,
    })
}
