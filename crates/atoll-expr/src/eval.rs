//! Evaluation of conditions (ConditionExpression, FilterExpression,
//! KeyConditionExpression and the legacy conditions translated onto the
//! same AST) against an item, with DynamoDB's semantics:
//!
//! - a comparison involving a missing attribute is false, except `<>`,
//!   which is then true (verified against DynamoDB, also for two missing
//!   attributes);
//! - values of different types are never equal (`<>` is true) and never
//!   ordered (`<`, `<=`, `>`, `>=`, BETWEEN are false);
//! - only N, S and B are ordered: numbers numerically, strings by UTF-8
//!   bytes, binaries by unsigned bytes;
//! - sets compare as sets, lists element-wise, maps key by key.
//!
//! Type errors that DynamoDB reports as ValidationException (a literal
//! value of the wrong type, say `begins_with(a, :number)`) are decided
//! before any item is read, by [`check_condition_operands`]; an item's own
//! values never cause an error, only a false condition.

use std::borrow::Cow;

use atoll_model::{AttributeValue, Item};

use crate::Env;
use crate::ast::{Comparator, Condition, Name, Operand, Path, PathElement, ValueRef};
use crate::error::ExprError;

mod checks;
pub mod keys;
pub mod values;

pub use checks::check_condition_operands;
pub use values::{begins_with, compare_values, contains, size_of, values_equal};

/// Resolves an attribute name: a literal as written, a `#placeholder`
/// through `ExpressionAttributeNames`.
///
/// References are validated before evaluation, so an undefined placeholder
/// is a safety net; it reports DynamoDB's text for it (without the
/// "Invalid ...Expression: " prefix, which only the validator knows).
pub fn resolve_name<'a>(name: &'a Name, env: &Env<'a>) -> Result<&'a str, ExprError> {
    match name {
        Name::Literal(name) => Ok(name),
        Name::Placeholder(placeholder) => env
            .names
            .get(placeholder)
            .map(String::as_str)
            .ok_or_else(|| {
                ExprError::validation(format!(
                    "An expression attribute name used in the document path is not defined; attribute name: {placeholder}"
                ))
            }),
    }
}

/// Resolves a value: a `:placeholder` through `ExpressionAttributeValues`,
/// or a value given directly by a legacy parameter.
pub fn resolve_value<'a>(
    value: &'a ValueRef,
    env: &Env<'a>,
) -> Result<&'a AttributeValue, ExprError> {
    match value {
        ValueRef::Literal(value) => Ok(value),
        ValueRef::Placeholder(placeholder) => env.values.get(placeholder).ok_or_else(|| {
            ExprError::validation(format!(
                "An expression attribute value used in expression is not defined; attribute value: {placeholder}"
            ))
        }),
    }
}

/// The value at `path` in `item`, or `None` when any step is missing: an
/// absent attribute or map key, an index past the end of a list, or a step
/// into a value of the wrong kind (a key of a list, an index of a map, any
/// step into a scalar).
pub fn resolve<'a>(
    item: &'a Item,
    path: &Path,
    env: &Env,
) -> Result<Option<&'a AttributeValue>, ExprError> {
    let mut steps = path.0.iter();
    let current = match steps.next() {
        Some(PathElement::Attribute(name)) => item.get(resolve_name(name, env)?),
        // A path always starts with an attribute; one that does not names
        // nothing in the item.
        Some(PathElement::Index(_)) | None => return Ok(None),
    };
    let Some(mut current) = current else {
        return Ok(None);
    };
    for step in steps {
        let next = match (step, current) {
            (PathElement::Attribute(name), AttributeValue::M(map)) => {
                map.get(resolve_name(name, env)?)
            }
            (PathElement::Index(index), AttributeValue::L(list)) => {
                usize::try_from(*index).ok().and_then(|i| list.get(i))
            }
            (PathElement::Attribute(name), _) => {
                // Still resolve the name so an undefined placeholder is
                // reported whatever the item holds.
                resolve_name(name, env)?;
                None
            }
            (PathElement::Index(_), _) => None,
        };
        match next {
            Some(value) => current = value,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// Evaluates `condition` against `item` (an empty item stands for a missing
/// one). Errors only on undefined placeholders and on the literal-operand
/// type errors [`check_condition_operands`] reports up front (here without
/// the "Invalid ...Expression: " prefix).
///
/// AND, OR and NOT are evaluated with an explicit stack, left to right with
/// short-circuit, so arbitrarily deep conditions cannot exhaust the stack.
pub fn evaluate(condition: &Condition, item: &Item, env: &Env) -> Result<bool, ExprError> {
    enum Task<'c> {
        Eval(&'c Condition),
        /// The left operand of AND is on the result stack; `Condition` is the right one.
        AndRight(&'c Condition),
        /// The left operand of OR is on the result stack.
        OrRight(&'c Condition),
        Not,
    }
    let mut tasks = vec![Task::Eval(condition)];
    let mut results: Vec<bool> = Vec::new();
    while let Some(task) = tasks.pop() {
        match task {
            Task::Eval(Condition::And(left, right)) => {
                tasks.push(Task::AndRight(right));
                tasks.push(Task::Eval(left));
            }
            Task::Eval(Condition::Or(left, right)) => {
                tasks.push(Task::OrRight(right));
                tasks.push(Task::Eval(left));
            }
            Task::Eval(Condition::Not(inner)) => {
                tasks.push(Task::Not);
                tasks.push(Task::Eval(inner));
            }
            Task::Eval(leaf) => results.push(evaluate_leaf(leaf, item, env)?),
            Task::AndRight(right) => {
                if results.pop().unwrap_or(false) {
                    tasks.push(Task::Eval(right));
                } else {
                    results.push(false);
                }
            }
            Task::OrRight(right) => {
                if results.pop().unwrap_or(false) {
                    results.push(true);
                } else {
                    tasks.push(Task::Eval(right));
                }
            }
            Task::Not => {
                let value = results.pop().unwrap_or(false);
                results.push(!value);
            }
        }
    }
    Ok(results.pop().unwrap_or(false))
}

/// The value of an operand: an attribute of the item, a value, or the size
/// of an attribute. `None` when the attribute is missing or has no size.
fn operand<'a>(
    operand: &'a Operand,
    item: &'a Item,
    env: &Env<'a>,
) -> Result<Option<Cow<'a, AttributeValue>>, ExprError> {
    Ok(match operand {
        Operand::Path(path) => resolve(item, path, env)?.map(Cow::Borrowed),
        Operand::Value(value) => Some(Cow::Borrowed(resolve_value(value, env)?)),
        Operand::Size(path) => resolve(item, path, env)?
            .and_then(values::size_of)
            .map(|size| Cow::Owned(AttributeValue::N(size))),
    })
}

/// Evaluates a condition without AND, OR or NOT at its top.
fn evaluate_leaf(condition: &Condition, item: &Item, env: &Env) -> Result<bool, ExprError> {
    Ok(match condition {
        Condition::Compare(comparator, left, right) => {
            let left = operand(left, item, env)?;
            let right = operand(right, item, env)?;
            compare(*comparator, left.as_deref(), right.as_deref())
        }
        Condition::Between(value, low, high) => {
            let value = operand(value, item, env)?;
            let low = operand(low, item, env)?;
            let high = operand(high, item, env)?;
            match (value.as_deref(), low.as_deref(), high.as_deref()) {
                (Some(value), Some(low), Some(high)) => {
                    compare(Comparator::Ge, Some(value), Some(low))
                        && compare(Comparator::Le, Some(value), Some(high))
                }
                _ => false,
            }
        }
        Condition::In(value, candidates) => {
            let Some(value) = operand(value, item, env)? else {
                return Ok(false);
            };
            for candidate in candidates {
                if let Some(candidate) = operand(candidate, item, env)?
                    && values::values_equal(&value, &candidate)
                {
                    return Ok(true);
                }
            }
            false
        }
        Condition::AttributeExists(path) => resolve(item, path, env)?.is_some(),
        Condition::AttributeNotExists(path) => resolve(item, path, env)?.is_none(),
        Condition::AttributeType(path, type_name) => {
            let wanted = operand(type_name, item, env)?;
            match checks::attribute_type_name(wanted.as_deref())? {
                Some(wanted) => {
                    resolve(item, path, env)?.is_some_and(|value| value.type_name() == wanted)
                }
                None => false,
            }
        }
        Condition::BeginsWith(value, prefix) => {
            let value = operand(value, item, env)?;
            let prefix = operand(prefix, item, env)?;
            match (value.as_deref(), prefix.as_deref()) {
                (Some(value), Some(prefix)) => values::begins_with(value, prefix),
                _ => false,
            }
        }
        Condition::Contains(haystack, needle) => {
            let haystack = operand(haystack, item, env)?;
            let needle = operand(needle, item, env)?;
            match (haystack.as_deref(), needle.as_deref()) {
                (Some(haystack), Some(needle)) => values::contains(haystack, needle),
                _ => false,
            }
        }
        // Boolean connectives are handled by `evaluate`; reaching here would
        // be a bug in it, so answer what a re-evaluation would.
        Condition::And(..) | Condition::Or(..) | Condition::Not(_) => {
            evaluate(condition, item, env)?
        }
    })
}

/// A comparison of two operand values (`None`: missing attribute).
fn compare(
    comparator: Comparator,
    left: Option<&AttributeValue>,
    right: Option<&AttributeValue>,
) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let (Some(left), Some(right)) = (left, right) else {
        // A missing attribute equals nothing, not even another missing one,
        // so only `<>` holds.
        return comparator == Comparator::Ne;
    };
    match comparator {
        Comparator::Eq => values::values_equal(left, right),
        Comparator::Ne => !values::values_equal(left, right),
        Comparator::Lt => values::compare_values(left, right) == Some(Less),
        Comparator::Le => matches!(values::compare_values(left, right), Some(Less | Equal)),
        Comparator::Gt => values::compare_values(left, right) == Some(Greater),
        Comparator::Ge => matches!(values::compare_values(left, right), Some(Greater | Equal)),
    }
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
