//! Projection (ProjectionExpression, legacy AttributesToGet, and the
//! updated-paths view behind UpdateItem's `UPDATED_OLD` / `UPDATED_NEW`).
//!
//! DynamoDB's rules, verified against the service by the Alternator and
//! dynalite test suites:
//! - each path that resolves contributes its value at the same place in a
//!   new item, so `a.b` gives `{a: {b: …}}` and `a.b[2].y` gives
//!   `{a: {b: [{y: …}]}}`;
//! - list elements selected by index come back in a list in index order,
//!   without holes: `a[3], a[1]` gives `{a: [a[1], a[3]]}`;
//! - paths that do not resolve (missing attribute or key, index past the
//!   end, a step into the wrong kind of value) are skipped, so a projection
//!   may yield an empty item.

use std::collections::BTreeMap;

use atoll_model::{AttributeValue, Item};

use crate::Env;
use crate::ast::{Path, PathElement, Projection};
use crate::error::ExprError;
use crate::eval::{resolve, resolve_name};

/// The attributes of `item` named by `projection`, nested structure
/// preserved (see the module documentation).
pub fn project(item: &Item, projection: &Projection, env: &Env) -> Result<Item, ExprError> {
    project_paths(item, &projection.paths, env)
}

/// [`project`] over any list of paths.
pub fn project_paths<'p>(
    item: &Item,
    paths: impl IntoIterator<Item = &'p Path>,
    env: &Env,
) -> Result<Item, ExprError> {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for path in paths {
        let Some(value) = resolve(item, path, env)? else {
            continue;
        };
        insert(&mut root, path, env, value)?;
    }
    Ok(root
        .into_iter()
        .map(|(name, node)| (name, node.into_value()))
        .collect())
}

/// The projected item under construction. Only paths that resolved in the
/// item are inserted, so the depth is bounded by the item's (at most 32).
enum Node {
    /// A whole value: the end of a projected path.
    Value(AttributeValue),
    /// Selected keys of a map.
    Map(BTreeMap<String, Node>),
    /// Selected elements of a list, by their index in the original list.
    List(BTreeMap<u32, Node>),
}

impl Node {
    fn for_step(step: Option<&PathElement>) -> Node {
        match step {
            Some(PathElement::Index(_)) => Node::List(BTreeMap::new()),
            _ => Node::Map(BTreeMap::new()),
        }
    }

    fn into_value(self) -> AttributeValue {
        match self {
            Node::Value(value) => value,
            Node::Map(map) => AttributeValue::M(
                map.into_iter()
                    .map(|(name, node)| (name, node.into_value()))
                    .collect(),
            ),
            // Index order, holes squeezed out.
            Node::List(list) => {
                AttributeValue::L(list.into_values().map(Node::into_value).collect())
            }
        }
    }
}

/// Places `value` at `path` in the projected item. Overlapping paths are
/// rejected by the validator; should they arrive anyway, the outcome is
/// still deterministic: a whole value wins over parts of it.
fn insert(
    root: &mut BTreeMap<String, Node>,
    path: &Path,
    env: &Env,
    value: &AttributeValue,
) -> Result<(), ExprError> {
    let Some((PathElement::Attribute(first), rest)) = path.0.split_first() else {
        return Ok(());
    };
    let mut slot = root
        .entry(resolve_name(first, env)?.to_owned())
        .or_insert_with(|| Node::for_step(rest.first()));
    for (position, step) in rest.iter().enumerate() {
        let next_step = rest.get(position + 1);
        slot = match (slot, step) {
            (Node::Map(map), PathElement::Attribute(name)) => map
                .entry(resolve_name(name, env)?.to_owned())
                .or_insert_with(|| Node::for_step(next_step)),
            (Node::List(list), PathElement::Index(index)) => list
                .entry(*index)
                .or_insert_with(|| Node::for_step(next_step)),
            // Already projected whole, or (impossible for a resolved path)
            // a container of the other kind: nothing to add.
            _ => return Ok(()),
        };
    }
    *slot = Node::Value(value.clone());
    Ok(())
}

#[cfg(test)]
mod tests;
