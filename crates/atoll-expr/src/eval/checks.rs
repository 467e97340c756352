//! Checks of a condition's literal operands, made once per request before
//! any item is read: DynamoDB rejects `begins_with(a, :n)` with a number
//! `:n` even when a scan matches nothing (verified), whereas the same
//! number stored in an item only makes the condition false.
//!
//! The checks need the request's values, so they cannot be part of the
//! cached parse; the validator runs them after the references check.

use atoll_model::AttributeValue;

use super::resolve_value;
use super::values::{ATTRIBUTE_TYPE_NAMES, compare_values, is_orderable};
use crate::Env;
use crate::ast::{Comparator, Condition, Operand};
use crate::error::ExprError;

/// What a literal-less operand stands for when its type matters: `size()`
/// is a number; a path has no type until an item is read.
enum Known<'a> {
    Value(&'a AttributeValue),
    Size,
    Path,
}

fn known<'a>(operand: &'a Operand, env: &Env<'a>) -> Result<Known<'a>, ExprError> {
    Ok(match operand {
        Operand::Value(value) => Known::Value(resolve_value(value, env)?),
        Operand::Size(_) => Known::Size,
        Operand::Path(_) => Known::Path,
    })
}

fn incorrect_type(function: &str, type_name: &str) -> String {
    format!(
        "Incorrect operand type for operator or function; operator or function: {function}, operand type: {type_name}"
    )
}

fn comparator_symbol(comparator: Comparator) -> &'static str {
    match comparator {
        Comparator::Eq => "=",
        Comparator::Ne => "<>",
        Comparator::Lt => "<",
        Comparator::Le => "<=",
        Comparator::Gt => ">",
        Comparator::Ge => ">=",
    }
}

/// Checks the operand types of `condition` that DynamoDB validates before
/// evaluation, in the order the operands are written; the first problem is
/// reported as `Invalid <expression>: <reason>`, `expression` being the
/// request parameter ("ConditionExpression", "FilterExpression",
/// "KeyConditionExpression").
///
/// - ordering comparisons and BETWEEN need S, N or B literals
///   (`Incorrect operand type for operator or function; operator or
///   function: <, operand type: L`; the short type names are what DynamoDB
///   prints for functions and for PartiQL — unverified: that it prints
///   them for expression comparisons too);
/// - BETWEEN with two literal bounds needs them of one type and in order
///   (`The BETWEEN operator requires same data type for lower and upper
///   bounds; ...` / `... requires upper bound to be greater than or equal to
///   lower bound; ...`, dynalite, checked against DynamoDB);
/// - `begins_with` needs S or B literals (a `size()` counts as N);
/// - `attribute_type` needs a literal string naming a type
///   (`Invalid attribute type name found; type: X, valid types:
///   {N,BS,L,B,NULL,M,S,SS,NS,BOOL}`).
///
/// An undefined value placeholder is reported with DynamoDB's text, though
/// the references check normally reports it first.
pub fn check_condition_operands(
    condition: &Condition,
    env: &Env,
    expression: &str,
) -> Result<(), ExprError> {
    check(condition, env).map_err(|error| match error {
        Problem::Reason(reason) => ExprError::validation(format!("Invalid {expression}: {reason}")),
        Problem::Reference(error) => {
            ExprError::validation(format!("Invalid {expression}: {}", error.message()))
        }
    })
}

enum Problem {
    Reason(String),
    Reference(ExprError),
}

impl From<ExprError> for Problem {
    fn from(error: ExprError) -> Self {
        Problem::Reference(error)
    }
}

/// Walks the condition in written order with an explicit stack, so deep
/// conditions cannot exhaust the thread's stack.
fn check(condition: &Condition, env: &Env) -> Result<(), Problem> {
    let mut pending = vec![condition];
    while let Some(condition) = pending.pop() {
        match condition {
            Condition::And(left, right) | Condition::Or(left, right) => {
                pending.push(right);
                pending.push(left);
            }
            Condition::Not(inner) => pending.push(inner),
            Condition::Compare(comparator, left, right) => {
                if !matches!(comparator, Comparator::Eq | Comparator::Ne) {
                    for side in [left, right] {
                        orderable(side, env, comparator_symbol(*comparator))?;
                    }
                }
            }
            Condition::Between(value, low, high) => {
                for side in [value, low, high] {
                    orderable(side, env, "BETWEEN")?;
                }
                if let (Known::Value(low), Known::Value(high)) =
                    (known(low, env)?, known(high, env)?)
                {
                    between_bounds(low, high)?;
                }
            }
            Condition::BeginsWith(value, prefix) => {
                for side in [value, prefix] {
                    let type_name = match known(side, env)? {
                        Known::Value(value) => value.type_name(),
                        Known::Size => "N",
                        Known::Path => continue,
                    };
                    if !matches!(type_name, "S" | "B") {
                        return Err(Problem::Reason(incorrect_type("begins_with", type_name)));
                    }
                }
            }
            Condition::AttributeType(_, type_name) => {
                let reason = match known(type_name, env)? {
                    Known::Value(value) => match attribute_type_name(Some(value)) {
                        Ok(_) => None,
                        Err(error) => Some(error.message().to_owned()),
                    },
                    Known::Size => Some(incorrect_type("attribute_type", "N")),
                    // dynalite's text for a path here (checked against
                    // DynamoDB with a regex, as the set's order is a
                    // HashSet's): unverified beyond the prefix.
                    Known::Path => Some(incorrect_type(
                        "attribute_type",
                        "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}",
                    )),
                };
                if let Some(reason) = reason {
                    return Err(Problem::Reason(reason));
                }
            }
            Condition::In(..)
            | Condition::Contains(..)
            | Condition::AttributeExists(_)
            | Condition::AttributeNotExists(_) => {}
        }
    }
    Ok(())
}

fn orderable(operand: &Operand, env: &Env, function: &str) -> Result<(), Problem> {
    if let Known::Value(value) = known(operand, env)?
        && !is_orderable(value)
    {
        return Err(Problem::Reason(incorrect_type(function, value.type_name())));
    }
    Ok(())
}

fn between_bounds(low: &AttributeValue, high: &AttributeValue) -> Result<(), Problem> {
    let bounds = || {
        format!(
            "lower bound operand: AttributeValue: {}, upper bound operand: AttributeValue: {}",
            render(low),
            render(high)
        )
    };
    if low.type_name() != high.type_name() {
        return Err(Problem::Reason(format!(
            "The BETWEEN operator requires same data type for lower and upper bounds; {}",
            bounds()
        )));
    }
    if compare_values(low, high) == Some(std::cmp::Ordering::Greater) {
        return Err(Problem::Reason(format!(
            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; {}",
            bounds()
        )));
    }
    Ok(())
}

/// `{S:a}`, `{N:1}` as DynamoDB echoes a scalar literal; binaries are shown
/// in base64 as on the wire (unverified: DynamoDB's rendering of B).
fn render(value: &AttributeValue) -> String {
    let body = match value {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.to_string(),
        AttributeValue::B(b) => base64(b),
        other => other.type_name().to_owned(),
    };
    format!("{{{}:{body}}}", value.type_name())
}

/// Standard base64 with padding, for error texts only.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let [b0, b1, b2] = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let index = usize::try_from((n >> shift) & 63).unwrap_or(0);
                out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The type `attribute_type` asks for: `Ok(None)` when the operand has no
/// value (it then matches nothing), an error naming DynamoDB's reason when
/// it is not a string or not a type name.
pub(super) fn attribute_type_name(
    value: Option<&AttributeValue>,
) -> Result<Option<&'static str>, ExprError> {
    match value {
        None => Ok(None),
        Some(AttributeValue::S(name)) => ATTRIBUTE_TYPE_NAMES
            .iter()
            .find(|known| **known == name.as_str())
            .map(|known| Some(*known))
            .ok_or_else(|| {
                ExprError::validation(format!(
                    "Invalid attribute type name found; type: {name}, valid types: {{{}}}",
                    ATTRIBUTE_TYPE_NAMES.join(",")
                ))
            }),
        Some(other) => Err(ExprError::validation(incorrect_type(
            "attribute_type",
            other.type_name(),
        ))),
    }
}

#[cfg(test)]
mod tests;
