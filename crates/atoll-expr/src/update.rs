//! Applying an update (UpdateExpression, or legacy AttributeUpdates
//! translated by [`crate::legacy`]) to an item.
//!
//! DynamoDB's rules, verified against the service (Alternator's and
//! dynalite's suites, which run against it) unless marked otherwise:
//! - every right-hand side and every ADD/DELETE reads the item as it was
//!   before the update; list indexes name positions in the original list,
//!   so `REMOVE a[1] SET a[3] = :v` on `[2,3,4,5,6,7]` gives `[2,4,:v,6,7]`
//!   whatever the order of the clauses;
//! - a nested target needs its parent to exist and be a map (for `.key`) or
//!   a list (for `[i]`), else "The document path provided in the update
//!   expression is invalid for update" — for SET, REMOVE, ADD and DELETE
//!   alike; REMOVE of a missing key or an index past the end does nothing;
//! - SET of an index past the end appends; several such SETs append in
//!   index order;
//! - ADD adds numbers (a missing attribute counts as 0) and unites sets of
//!   the same type (a missing attribute counts as empty); DELETE subtracts
//!   from a set of the same type, a missing attribute is left alone and an
//!   emptied set disappears;
//! - arithmetic is exact ([`atoll_model::Number`]); results outside
//!   DynamoDB's range fail with its number errors.
//!
//! A [`ValueRef::Literal`] operand of ADD or DELETE marks an update that
//! came from the legacy `AttributeUpdates` parameter (the expression parser
//! only produces placeholders): such an ADD also appends lists, and type
//! mismatches are reported with the legacy text "Type mismatch for
//! attribute to update".

use std::borrow::Cow;

use atoll_model::{AttributeValue, Item};

use crate::Env;
use crate::ast::{Path, SetOperand, SetValue, Update, UpdateAction, ValueRef};
use crate::error::ExprError;
use crate::eval::{resolve, resolve_value};
use crate::projection::project_paths;

mod apply;
mod checks;

pub use checks::check_update_operands;

/// A nested target whose parent is missing or of the wrong kind.
pub(crate) const INVALID_PATH: &str =
    "The document path provided in the update expression is invalid for update";
/// A right-hand side reading an attribute the item does not have.
const MISSING_ATTRIBUTE: &str =
    "The provided expression refers to an attribute that does not exist in the item";
/// An item value of the wrong type for `+`, `-`, `list_append`, ADD or DELETE.
pub(crate) const INCORRECT_TYPE: &str =
    "An operand in the update expression has an incorrect data type";
/// The legacy AttributeUpdates' text for an ADD or DELETE on a value of another type.
pub(crate) const LEGACY_TYPE_MISMATCH: &str = "Type mismatch for attribute to update";

/// Deeper nesting of `if_not_exists` / `list_append` than a 4 KB expression
/// can hold; a guard for ASTs built elsewhere.
const MAX_OPERAND_DEPTH: usize = 1024;

/// The item after `update`. `item` is the item before it — for an item that
/// does not exist yet, its key attributes alone (so `if_not_exists(b, a)`
/// can read the key, as in DynamoDB).
///
/// The result is a valid DynamoDB item: sets emptied by DELETE are removed.
/// Item size and nesting depth are the caller's to check.
pub fn apply_update(update: &Update, item: &Item, env: &Env) -> Result<Item, ExprError> {
    apply::apply(update, item, env, true)
}

/// [`apply_update`] for an item that does not exist yet (`key` holds its key
/// attributes): the item to create, or `None` when the update creates
/// nothing. Two differences are DynamoDB's:
/// - REMOVE of a nested path whose parent is missing is silently ignored
///   instead of being an invalid document path (verified; Alternator
///   records it as a known difference);
/// - an update whose actions only remove (REMOVE, legacy DELETE without a
///   value) or only delete from sets (DELETE) creates no item, while an
///   update with no action at all creates the key-only item (see
///   [`creates_missing_item`]).
///
/// Every error the update would raise is still raised, so a refused update
/// is refused whether or not it would have created the item.
pub fn apply_update_to_new_item(
    update: &Update,
    key: &Item,
    env: &Env,
) -> Result<Option<Item>, ExprError> {
    let created = apply::apply(update, key, env, false)?;
    Ok(creates_missing_item(update).then_some(created))
}

/// Whether `update` applied to an item that does not exist creates it.
///
/// DynamoDB's rule, the one place Atoll states it: an update creates a
/// missing item when it has no action at all (a bare UpdateItem, or empty
/// `AttributeUpdates`: the key-only item) or when one of its actions writes a
/// value (SET, ADD, legacy PUT or ADD). An update made only of REMOVEs and
/// set DELETEs writes nothing, so the item stays missing (the service today;
/// older emulators created a key-only item).
pub fn creates_missing_item(update: &Update) -> bool {
    update.actions.is_empty()
        || update
            .actions
            .iter()
            .any(|action| matches!(action, UpdateAction::Set(..) | UpdateAction::Add(..)))
}

/// The targets of `update`'s actions, in written order.
pub fn updated_paths(update: &Update) -> impl Iterator<Item = &Path> {
    update.actions.iter().map(|action| match action {
        UpdateAction::Set(path, _)
        | UpdateAction::Remove(path)
        | UpdateAction::Add(path, _)
        | UpdateAction::Delete(path, _) => path,
    })
}

/// The parts of `item` the update touched, for ReturnValues `UPDATED_OLD`
/// (pass the old item) and `UPDATED_NEW` (pass the new item): the update's
/// target paths projected from `item`, so `SET a.b = :v` returns
/// `{a: {b: …}}`, and a removed attribute is absent from `UPDATED_NEW`.
/// List indexes are those written in the update, applied to the given item
/// (what DynamoDB returns, per dynalite's suite). `ALL_OLD` / `ALL_NEW` are
/// the items themselves.
pub fn updated_attributes(update: &Update, item: &Item, env: &Env) -> Result<Item, ExprError> {
    project_paths(item, updated_paths(update), env)
}

/// Refuses an update whose action targets a key attribute of the table:
/// "One or more parameter values were invalid: Cannot update attribute pk.
/// This attribute is part of the key" (verified by the conformance suite),
/// whatever the action and however deep the target (`SET pk.x` names `pk`
/// too). The partition key is checked before the sort key. Paths that only
/// read a key, or step into one, are [`crate::eval::keys::check_key_paths`]'s.
pub fn check_key_updates(
    update: &Update,
    env: &Env,
    key: &atoll_model::table::KeySchema,
) -> Result<(), ExprError> {
    let mut targets = Vec::with_capacity(update.actions.len());
    for path in updated_paths(update) {
        if let Some(crate::ast::PathElement::Attribute(head)) = path.0.first() {
            targets.push(crate::eval::resolve_name(head, env)?);
        }
    }
    let keys = std::iter::once(&key.partition_key).chain(key.sort_key.as_ref());
    for key in keys {
        if targets.contains(&key.name.as_str()) {
            return Err(ExprError::validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {}. This attribute is part of the key",
                key.name
            )));
        }
    }
    Ok(())
}

/// Whether an ADD or DELETE operand comes from the legacy parameter (see
/// the module documentation).
pub(crate) fn is_legacy(value: &ValueRef) -> bool {
    matches!(value, ValueRef::Literal(_))
}

/// The value a SET assigns, computed from the original item.
pub(crate) fn set_value(
    value: &SetValue,
    item: &Item,
    env: &Env,
) -> Result<AttributeValue, ExprError> {
    match value {
        SetValue::Operand(operand) => {
            Ok(required(set_operand(operand, item, env, 0)?)?.into_owned())
        }
        SetValue::Plus(left, right) => arithmetic(left, right, item, env, true),
        SetValue::Minus(left, right) => arithmetic(left, right, item, env, false),
    }
}

fn required(value: Option<Cow<'_, AttributeValue>>) -> Result<Cow<'_, AttributeValue>, ExprError> {
    value.ok_or_else(|| ExprError::validation(MISSING_ATTRIBUTE))
}

fn arithmetic(
    left: &SetOperand,
    right: &SetOperand,
    item: &Item,
    env: &Env,
    plus: bool,
) -> Result<AttributeValue, ExprError> {
    // Left operand fully (existence, then type) before the right one, as
    // dynalite does (unverified against DynamoDB for the order).
    let left = required(set_operand(left, item, env, 0)?)?;
    let AttributeValue::N(left) = left.as_ref() else {
        return Err(ExprError::validation(INCORRECT_TYPE));
    };
    let right = required(set_operand(right, item, env, 0)?)?;
    let AttributeValue::N(right) = right.as_ref() else {
        return Err(ExprError::validation(INCORRECT_TYPE));
    };
    let result = if plus {
        left.checked_add(right)
    } else {
        left.checked_sub(right)
    };
    result.map(AttributeValue::N).map_err(arithmetic_error)
}

/// The error of a sum or difference outside what a Number holds. DynamoDB
/// reports a result that needs more than 38 significant digits (`1e50 + 1`)
/// as an overflow, not with the precision text a stored literal gets
/// (verified: Alternator's `test_update_expression_plus_imprecise`).
pub(crate) fn arithmetic_error(error: atoll_model::NumberError) -> ExprError {
    let error = match error {
        atoll_model::NumberError::Precision => atoll_model::NumberError::Overflow,
        other => other,
    };
    ExprError::validation(error.message())
}

/// An operand of SET, or `None` for a path the item does not have.
fn set_operand<'a>(
    operand: &'a SetOperand,
    item: &'a Item,
    env: &Env<'a>,
    depth: usize,
) -> Result<Option<Cow<'a, AttributeValue>>, ExprError> {
    if depth > MAX_OPERAND_DEPTH {
        // unverified: DynamoDB's parser never lets such nesting through.
        return Err(ExprError::validation(
            "Invalid UpdateExpression: The expression is nested too deeply",
        ));
    }
    Ok(match operand {
        SetOperand::Path(path) => resolve(item, path, env)?.map(Cow::Borrowed),
        SetOperand::Value(value) => Some(Cow::Borrowed(resolve_value(value, env)?)),
        SetOperand::IfNotExists(path, fallback) => match resolve(item, path, env)? {
            Some(value) => Some(Cow::Borrowed(value)),
            None => set_operand(fallback, item, env, depth + 1)?,
        },
        SetOperand::ListAppend(first, second) => {
            let first = required(set_operand(first, item, env, depth + 1)?)?;
            let AttributeValue::L(first) = first.as_ref() else {
                return Err(ExprError::validation(INCORRECT_TYPE));
            };
            let second = required(set_operand(second, item, env, depth + 1)?)?;
            let AttributeValue::L(second) = second.as_ref() else {
                return Err(ExprError::validation(INCORRECT_TYPE));
            };
            let mut joined = Vec::with_capacity(first.len() + second.len());
            joined.extend(first.iter().cloned());
            joined.extend(second.iter().cloned());
            Some(Cow::Owned(AttributeValue::L(joined)))
        }
    })
}

#[cfg(test)]
mod tests;
