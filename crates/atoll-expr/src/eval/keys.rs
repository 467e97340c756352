//! Key attributes are scalars: an expression may name them, but never step
//! into them. These checks need the table's key schema, so they run after
//! the table lookup (dynalite's order, from its suite run against DynamoDB).

use atoll_model::table::KeySchema;

use super::resolve_name;
use crate::Env;
use crate::ast::{
    Condition, Operand, Path, PathElement, SetOperand, SetValue, Update, UpdateAction,
};
use crate::error::ExprError;

/// Every document path `condition` reads, in written order.
pub fn condition_paths(condition: &Condition) -> Vec<&Path> {
    let mut paths = Vec::new();
    let mut pending = vec![condition];
    while let Some(condition) = pending.pop() {
        let operands: Vec<&Operand> = match condition {
            Condition::And(left, right) | Condition::Or(left, right) => {
                pending.push(right);
                pending.push(left);
                continue;
            }
            Condition::Not(inner) => {
                pending.push(inner);
                continue;
            }
            Condition::AttributeExists(path) | Condition::AttributeNotExists(path) => {
                paths.push(path);
                continue;
            }
            Condition::AttributeType(path, operand) => {
                paths.push(path);
                vec![operand]
            }
            Condition::Compare(_, left, right)
            | Condition::BeginsWith(left, right)
            | Condition::Contains(left, right) => vec![left, right],
            Condition::Between(value, low, high) => vec![value, low, high],
            Condition::In(value, list) => std::iter::once(value).chain(list).collect(),
        };
        paths.extend(operands.into_iter().filter_map(|operand| match operand {
            Operand::Path(path) | Operand::Size(path) => Some(path),
            Operand::Value(_) => None,
        }));
    }
    paths
}

/// Every document path `update` writes or reads, in written order (each
/// action's target, then the paths of its right-hand side).
pub fn update_paths(update: &Update) -> Vec<&Path> {
    fn operand_paths<'a>(operand: &'a SetOperand, paths: &mut Vec<&'a Path>) {
        // Iterative over the chain of nested functions.
        let mut pending = vec![operand];
        while let Some(operand) = pending.pop() {
            match operand {
                SetOperand::Path(path) => paths.push(path),
                SetOperand::Value(_) => {}
                SetOperand::IfNotExists(path, fallback) => {
                    paths.push(path);
                    pending.push(fallback);
                }
                SetOperand::ListAppend(first, second) => {
                    pending.push(second);
                    pending.push(first);
                }
            }
        }
    }
    let mut paths = Vec::new();
    for action in &update.actions {
        match action {
            UpdateAction::Set(path, value) => {
                paths.push(path);
                match value {
                    SetValue::Operand(operand) => operand_paths(operand, &mut paths),
                    SetValue::Plus(left, right) | SetValue::Minus(left, right) => {
                        operand_paths(left, &mut paths);
                        operand_paths(right, &mut paths);
                    }
                }
            }
            UpdateAction::Remove(path)
            | UpdateAction::Add(path, _)
            | UpdateAction::Delete(path, _) => paths.push(path),
        }
    }
    paths
}

/// Refuses a path that steps into a key attribute of the table (`Key:`) or
/// of one of its indexes (`IndexKey:`, `index_keys` being their attribute
/// names): "Key attributes must be scalars; list random access '[]' and
/// map lookup '.' are not allowed: Key: a". Table keys are checked first,
/// partition key before sort key, then index keys in the order given.
pub fn check_key_paths<'p>(
    paths: impl IntoIterator<Item = &'p Path>,
    env: &Env,
    key: &KeySchema,
    index_keys: &[&str],
) -> Result<(), ExprError> {
    let mut nested_heads = Vec::new();
    for path in paths {
        if let [PathElement::Attribute(head), _, ..] = path.0.as_slice() {
            nested_heads.push(resolve_name(head, env)?);
        }
    }
    let table_keys = std::iter::once(key.partition_key.name.as_str())
        .chain(key.sort_key.as_ref().map(|k| k.name.as_str()))
        .map(|name| (name, "Key"));
    let index_keys = index_keys.iter().map(|name| (*name, "IndexKey"));
    for (name, kind) in table_keys.chain(index_keys) {
        if nested_heads.contains(&name) {
            return Err(ExprError::validation(format!(
                "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: {kind}: {name}"
            )));
        }
    }
    Ok(())
}

/// Refuses a Query filter that names a key attribute of the table or index
/// queried (partition key checked first): "<parameter> can only contain
/// non-primary key attributes: Primary key attribute: a", `parameter`
/// being "Filter Expression" for a FilterExpression (dynalite's text, from
/// its suite run against DynamoDB) and "QueryFilter" for the legacy
/// parameter (see [`crate::legacy::check_query_filter_keys`]).
pub fn check_filter_key_attributes<'p>(
    paths: impl IntoIterator<Item = &'p Path>,
    env: &Env,
    key: &KeySchema,
    parameter: &str,
) -> Result<(), ExprError> {
    let mut heads = Vec::new();
    for path in paths {
        if let Some(PathElement::Attribute(head)) = path.0.first() {
            heads.push(resolve_name(head, env)?);
        }
    }
    let keys = std::iter::once(&key.partition_key).chain(key.sort_key.as_ref());
    for key in keys {
        if heads.contains(&key.name.as_str()) {
            return Err(ExprError::validation(format!(
                "{parameter} can only contain non-primary key attributes: Primary key attribute: {}",
                key.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
