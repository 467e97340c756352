//! The mechanics of an update: every action is first turned into an edit
//! computed from the original item (a new value for a path, or its
//! removal); the edits are then merged into a tree keyed by map key and
//! original list index, and the tree is applied in one pass. This is what
//! makes list indexes refer to the original list.

use std::collections::{BTreeMap, BTreeSet};

use atoll_model::{AttributeValue, Item, Number};

use super::{INCORRECT_TYPE, INVALID_PATH, LEGACY_TYPE_MISMATCH, is_legacy, set_value};
use crate::Env;
use crate::ast::{Path, PathElement, Update, UpdateAction};
use crate::error::ExprError;
use crate::eval::values::type_word;
use crate::eval::{resolve_name, resolve_value};

/// One step of a path with its name resolved.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(u32),
}

/// What happens at one path.
enum Edit {
    Put(AttributeValue),
    Remove,
}

/// The edits under one value: its own edit and those of its map keys or
/// list elements (original indexes).
#[derive(Default)]
struct Node {
    edit: Option<Edit>,
    keys: BTreeMap<String, Node>,
    indexes: BTreeMap<u32, Node>,
}

pub(super) fn apply(
    update: &Update,
    item: &Item,
    env: &Env,
    item_exists: bool,
) -> Result<Item, ExprError> {
    // Right-hand sides first, in written order, all against the original
    // item (dynalite's order of errors; unverified beyond that).
    let mut assigned = Vec::with_capacity(update.actions.len());
    for action in &update.actions {
        assigned.push(match action {
            UpdateAction::Set(_, value) => Some(set_value(value, item, env)?),
            _ => None,
        });
    }
    let mut root = Node::default();
    for (action, assigned) in update.actions.iter().zip(assigned) {
        match action {
            UpdateAction::Set(path, _) => {
                let steps = steps(path, env)?;
                check_parent(item, &steps)?;
                if let Some(value) = assigned {
                    root.insert(&steps, Edit::Put(value));
                }
            }
            UpdateAction::Remove(path) => {
                let steps = steps(path, env)?;
                match check_parent(item, &steps) {
                    Ok(()) => root.insert(&steps, Edit::Remove),
                    // DynamoDB ignores REMOVE x.y on an item that does not exist.
                    Err(_) if !item_exists => {}
                    Err(error) => return Err(error),
                }
            }
            UpdateAction::Add(path, operand) => {
                let steps = steps(path, env)?;
                check_parent(item, &steps)?;
                let value = add(
                    lookup(item, &steps),
                    resolve_value(operand, env)?,
                    is_legacy(operand),
                )?;
                root.insert(&steps, Edit::Put(value));
            }
            UpdateAction::Delete(path, operand) => {
                let steps = steps(path, env)?;
                check_parent(item, &steps)?;
                let result = delete(
                    lookup(item, &steps),
                    resolve_value(operand, env)?,
                    is_legacy(operand),
                )?;
                if let Some(edit) = result {
                    root.insert(&steps, edit);
                }
            }
        }
    }
    let mut updated = item.clone();
    apply_to_map(&mut updated, root.keys);
    Ok(updated)
}

fn steps<'a>(path: &'a Path, env: &Env<'a>) -> Result<Vec<Step<'a>>, ExprError> {
    path.0
        .iter()
        .map(|element| {
            Ok(match element {
                PathElement::Attribute(name) => Step::Key(resolve_name(name, env)?),
                PathElement::Index(index) => Step::Index(*index),
            })
        })
        .collect()
}

fn lookup<'a>(item: &'a Item, steps: &[Step]) -> Option<&'a AttributeValue> {
    let (Step::Key(first), rest) = steps.split_first()? else {
        return None;
    };
    let mut current = item.get(*first)?;
    for step in rest {
        current = match (step, current) {
            (Step::Key(key), AttributeValue::M(map)) => map.get(*key)?,
            (Step::Index(index), AttributeValue::L(list)) => {
                list.get(usize::try_from(*index).ok()?)?
            }
            _ => return None,
        };
    }
    Some(current)
}

/// A target is valid when it is a top-level attribute, or when its parent
/// exists and is a map (for a key) or a list (for an index).
fn check_parent(item: &Item, steps: &[Step]) -> Result<(), ExprError> {
    let valid = match steps.split_last() {
        Some((Step::Key(_), [])) => true,
        Some((last, parent)) if !parent.is_empty() => matches!(
            (lookup(item, parent), last),
            (Some(AttributeValue::M(_)), Step::Key(_))
                | (Some(AttributeValue::L(_)), Step::Index(_))
        ),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ExprError::validation(INVALID_PATH))
    }
}

impl Node {
    /// Records `edit` at `steps`. Paths in one update never overlap (the
    /// validator rejects it); if they did, the later edit of a path wins.
    fn insert(&mut self, steps: &[Step], edit: Edit) {
        let mut node = self;
        for step in steps {
            node = match step {
                Step::Key(key) => node.keys.entry((*key).to_owned()).or_default(),
                Step::Index(index) => node.indexes.entry(*index).or_default(),
            };
        }
        node.edit = Some(edit);
    }
}

fn apply_to_map(map: &mut BTreeMap<String, AttributeValue>, keys: BTreeMap<String, Node>) {
    for (key, node) in keys {
        let existing = map.remove(&key);
        if let Some(value) = apply_node(existing, node) {
            map.insert(key, value);
        }
    }
}

/// The value after the edits in `node`, `None` if it is removed or was
/// missing and stays so.
fn apply_node(existing: Option<AttributeValue>, node: Node) -> Option<AttributeValue> {
    let mut value = match node.edit {
        Some(Edit::Remove) => return None,
        Some(Edit::Put(value)) => value,
        None => existing?,
    };
    match &mut value {
        AttributeValue::M(map) if !node.keys.is_empty() => apply_to_map(map, node.keys),
        AttributeValue::L(list) if !node.indexes.is_empty() => {
            let original = std::mem::take(list);
            *list = apply_to_list(original, node.indexes);
        }
        _ => {}
    }
    Some(value)
}

/// Edits a list by original index: elements are replaced or removed in
/// place, and edits past the end append in index order.
fn apply_to_list(
    list: Vec<AttributeValue>,
    mut indexes: BTreeMap<u32, Node>,
) -> Vec<AttributeValue> {
    let mut out = Vec::with_capacity(list.len() + indexes.len());
    for (position, element) in list.into_iter().enumerate() {
        let node = u32::try_from(position)
            .ok()
            .and_then(|index| indexes.remove(&index));
        match node {
            Some(node) => out.extend(apply_node(Some(element), node)),
            None => out.push(element),
        }
    }
    // What is left lies past the end: REMOVE does nothing there, SET
    // appends (ascending index order: BTreeMap iteration).
    for node in indexes.into_values() {
        out.extend(apply_node(None, node));
    }
    out
}

fn mismatch(legacy: bool) -> ExprError {
    ExprError::validation(if legacy {
        LEGACY_TYPE_MISMATCH
    } else {
        INCORRECT_TYPE
    })
}

/// ADD `operand` to `existing`.
fn add(
    existing: Option<&AttributeValue>,
    operand: &AttributeValue,
    legacy: bool,
) -> Result<AttributeValue, ExprError> {
    use AttributeValue as V;
    match operand {
        V::N(_) | V::Ss(_) | V::Ns(_) | V::Bs(_) => {}
        V::L(_) if legacy => {}
        other if legacy => {
            return Err(ExprError::validation(format!(
                "One or more parameter values were invalid: ADD action is not supported for the type {}",
                other.type_name()
            )));
        }
        other => {
            return Err(ExprError::validation(format!(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: {}",
                type_word(other)
            )));
        }
    }
    let Some(existing) = existing else {
        return Ok(dedup(operand));
    };
    Ok(match (existing, operand) {
        (V::N(a), V::N(b)) => V::N(add_numbers(a, b)?),
        (V::Ss(a), V::Ss(b)) => V::Ss(union(a, b)),
        (V::Ns(a), V::Ns(b)) => V::Ns(union(a, b)),
        (V::Bs(a), V::Bs(b)) => V::Bs(union(a, b)),
        (V::L(a), V::L(b)) => V::L(a.iter().chain(b).cloned().collect()),
        _ => return Err(mismatch(legacy)),
    })
}

fn add_numbers(a: &Number, b: &Number) -> Result<Number, ExprError> {
    a.checked_add(b).map_err(super::arithmetic_error)
}

/// The elements of `a`, then those of `b` not already present: DynamoDB
/// sets hold no duplicates (for numbers, by value: `1` = `1.0`, which is
/// `Number`'s equality and order). A tree of seen elements keeps large
/// sets (a 400 KB item holds many thousands) from quadratic work.
fn union<T: Clone + Ord>(a: &[T], b: &[T]) -> Vec<T> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<T> = Vec::with_capacity(a.len() + b.len());
    for element in a.iter().chain(b) {
        if seen.insert(element) {
            out.push(element.clone());
        }
    }
    out
}

/// `value` with any duplicate set elements dropped (request values are
/// validated, so this only guards the invariant).
fn dedup(value: &AttributeValue) -> AttributeValue {
    use AttributeValue as V;
    match value {
        V::Ss(set) => V::Ss(union(set, &[])),
        V::Ns(set) => V::Ns(union(set, &[])),
        V::Bs(set) => V::Bs(union(set, &[])),
        other => other.clone(),
    }
}

/// DELETE `operand`'s elements from `existing`: `None` leaves the item as it
/// is (nothing to delete from), else the edit to make.
fn delete(
    existing: Option<&AttributeValue>,
    operand: &AttributeValue,
    legacy: bool,
) -> Result<Option<Edit>, ExprError> {
    use AttributeValue as V;
    match operand {
        V::Ss(_) | V::Ns(_) | V::Bs(_) => {}
        other if legacy => {
            return Err(ExprError::validation(format!(
                "One or more parameter values were invalid: DELETE action with value is not supported for the type {}",
                other.type_name()
            )));
        }
        other => {
            return Err(ExprError::validation(format!(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: {}",
                type_word(other)
            )));
        }
    }
    let Some(existing) = existing else {
        return Ok(None);
    };
    let remaining = match (existing, operand) {
        (V::Ss(a), V::Ss(b)) => difference(a, b, V::Ss),
        (V::Ns(a), V::Ns(b)) => difference(a, b, V::Ns),
        (V::Bs(a), V::Bs(b)) => difference(a, b, V::Bs),
        _ => return Err(mismatch(legacy)),
    };
    Ok(Some(remaining.map_or(Edit::Remove, Edit::Put)))
}

/// `a` without the elements of `b`; `None` when nothing is left, since
/// DynamoDB has no empty sets.
fn difference<T: Clone + Ord>(
    a: &[T],
    b: &[T],
    wrap: fn(Vec<T>) -> AttributeValue,
) -> Option<AttributeValue> {
    let removed: BTreeSet<&T> = b.iter().collect();
    let kept: Vec<T> = a
        .iter()
        .filter(|element| !removed.contains(element))
        .cloned()
        .collect();
    (!kept.is_empty()).then(|| wrap(kept))
}

#[cfg(test)]
mod tests;
