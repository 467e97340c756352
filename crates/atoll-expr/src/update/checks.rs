//! Checks of an UpdateExpression's literal operands, made once per request
//! before the item is read (DynamoDB answers them for a table that does
//! not even exist, per dynalite's suite).

use atoll_model::AttributeValue;

use crate::Env;
use crate::ast::{SetOperand, SetValue, Update, UpdateAction, ValueRef};
use crate::error::ExprError;
use crate::eval::resolve_value;
use crate::eval::values::type_word;

/// Checks the types of an UpdateExpression's literal operands, reporting
/// the first problem as DynamoDB does (texts from dynalite's suite, which
/// runs against DynamoDB):
///
/// 1. ADD takes a number or a set, DELETE a set:
///    `Invalid UpdateExpression: Incorrect operand type for operator or
///    function; operator: ADD, operand type: STRING` (type words STRING,
///    NUMBER, BINARY, BOOLEAN, NULL, LIST, MAP). These come before any
///    function problem, whatever the order of the clauses.
/// 2. `+` and `-` take number literals, `list_append` list literals:
///    `Invalid UpdateExpression: Incorrect operand type for operator or
///    function; operator or function: list_append, operand type: S` (type
///    descriptors). Nested functions are checked before the function
///    holding them; only literal operands are checked, a path's value is
///    only known when the item is read.
///
/// Operands given directly by the legacy AttributeUpdates
/// ([`ValueRef::Literal`]) are not expression operands and are skipped:
/// [`crate::legacy`] validates them with the legacy texts.
pub fn check_update_operands(update: &Update, env: &Env) -> Result<(), ExprError> {
    let prefix =
        |reason: String| ExprError::validation(format!("Invalid UpdateExpression: {reason}"));
    let reference = |error: ExprError| prefix(error.message().to_owned());
    for action in &update.actions {
        let (operator, operand, allowed): (&str, &ValueRef, fn(&AttributeValue) -> bool) =
            match action {
                UpdateAction::Add(_, operand) => ("ADD", operand, |v| {
                    matches!(
                        v,
                        AttributeValue::N(_)
                            | AttributeValue::Ss(_)
                            | AttributeValue::Ns(_)
                            | AttributeValue::Bs(_)
                    )
                }),
                UpdateAction::Delete(_, operand) => ("DELETE", operand, |v| {
                    matches!(
                        v,
                        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
                    )
                }),
                UpdateAction::Set(..) | UpdateAction::Remove(_) => continue,
            };
        if let ValueRef::Placeholder(_) = operand {
            let value = resolve_value(operand, env).map_err(reference)?;
            if !allowed(value) {
                return Err(prefix(format!(
                    "Incorrect operand type for operator or function; operator: {operator}, operand type: {}",
                    type_word(value)
                )));
            }
        }
    }
    for action in &update.actions {
        if let UpdateAction::Set(_, value) = action {
            let problem = match value {
                SetValue::Operand(operand) => operand_problem(operand, env, 0),
                SetValue::Plus(left, right) => function_problem("+", "N", [left, right], env, 0),
                SetValue::Minus(left, right) => function_problem("-", "N", [left, right], env, 0),
            };
            match problem {
                Ok(None) => {}
                Ok(Some(reason)) => return Err(prefix(reason)),
                Err(error) => return Err(reference(error)),
            }
        }
    }
    Ok(())
}

/// Deeper than a 4 KB expression can nest; beyond it nothing is checked
/// (evaluation has its own guard).
const MAX_DEPTH: usize = 1024;

fn operand_problem(
    operand: &SetOperand,
    env: &Env,
    depth: usize,
) -> Result<Option<String>, ExprError> {
    if depth > MAX_DEPTH {
        return Ok(None);
    }
    match operand {
        SetOperand::Path(_) | SetOperand::Value(_) => Ok(None),
        SetOperand::IfNotExists(_, fallback) => operand_problem(fallback, env, depth + 1),
        SetOperand::ListAppend(first, second) => function_problem(
            "list_append",
            "L",
            [first.as_ref(), second.as_ref()],
            env,
            depth,
        ),
    }
}

/// Checks the functions nested in `operands` first, then the literal
/// operands of the function itself, left to right.
fn function_problem(
    function: &str,
    wanted: &str,
    operands: [&SetOperand; 2],
    env: &Env,
    depth: usize,
) -> Result<Option<String>, ExprError> {
    for operand in operands {
        if let Some(problem) = operand_problem(operand, env, depth + 1)? {
            return Ok(Some(problem));
        }
    }
    for operand in operands {
        if let SetOperand::Value(value @ ValueRef::Placeholder(_)) = operand {
            let type_name = resolve_value(value, env)?.type_name();
            if type_name != wanted {
                return Ok(Some(format!(
                    "Incorrect operand type for operator or function; operator or function: {function}, operand type: {type_name}"
                )));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
