//! Resolved document paths, and the check that the paths of a projection or
//! of an update's targets neither overlap nor conflict.
//!
//! DynamoDB inserts the paths into a tree, last written first, and reports
//! the first path that meets an existing one: "overlap" when one path is a
//! prefix of the other (or they are equal), "conflict" when one indexes a
//! list where the other names a map key. The message's path one is the path
//! being inserted; path two is rebuilt from the tree by following, from the
//! node where they met, each node's first key in Java `HashMap` order — so
//! with several siblings it can name a path that does not overlap at all
//! (observed: `path one: [createdAt], path two: [cost]`).
//! Verified shapes: `a, a.b` → `path one: [a], path two: [a, b]`;
//! `SET #c[3].#d = a, #c[3] = a` (`#d` = "[3]") → `[c, [3], [3]]`,
//! `[c, [3]]`; `REMOVE a.#c SET a[1] = #d` → conflict `[a, c]`, `[a, [1]]`.

use crate::java;

/// One element of a resolved path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    /// A map key (an attribute name at the top).
    Map(String),
    /// A list index.
    List(u32),
}

impl Elem {
    /// The element's hash as DynamoDB computes it
    /// (`new HashCodeBuilder(8191, 127).append(x).toHashCode()`).
    fn java_hash(&self) -> i32 {
        const SEED: i32 = 8191 * 127;
        match self {
            Elem::Map(name) => SEED.wrapping_add(java::string_hash(name)),
            // Indexes fit a Java int (the parser checks the range).
            Elem::List(index) => SEED.wrapping_add(i32::try_from(*index).unwrap_or(i32::MAX)),
        }
    }

    fn is_list(&self) -> bool {
        matches!(self, Elem::List(_))
    }
}

/// DynamoDB's rendering of a path: `[a, b, [1]]`.
pub(crate) fn display(path: &[Elem]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|elem| match elem {
            Elem::Map(name) => name.clone(),
            Elem::List(index) => format!("[{index}]"),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A node of the path tree; a child is `None` where a path ends.
#[derive(Default)]
pub(crate) struct Node {
    children: Vec<(Elem, Option<Node>)>,
}

impl Node {
    fn first(&self) -> Option<&(Elem, Option<Node>)> {
        let hashes: Vec<i32> = self
            .children
            .iter()
            .map(|(elem, _)| elem.java_hash())
            .collect();
        let capacity = java::grown_capacity(hashes.len());
        java::first_in_order(&hashes, capacity).and_then(|index| self.children.get(index))
    }

    /// `path[..depth]`, then each node's first key down to a leaf.
    fn rebuild(&self, path: &[Elem], depth: usize) -> Vec<Elem> {
        let mut elems: Vec<Elem> = path.iter().take(depth).cloned().collect();
        let mut node = self;
        while let Some((elem, child)) = node.first() {
            elems.push(elem.clone());
            match child {
                Some(child) if !child.children.is_empty() => node = child,
                _ => break,
            }
        }
        elems
    }

    fn chain(rest: &[Elem]) -> Option<Node> {
        let (first, rest) = rest.split_first()?;
        Some(Node {
            children: vec![(first.clone(), Self::chain(rest))],
        })
    }

    /// Inserts `path` (from `depth` on), or reports why it cannot be.
    pub fn insert(&mut self, path: &[Elem], depth: usize) -> Result<(), String> {
        let Some(elem) = path.get(depth) else {
            return Ok(());
        };
        let found = self
            .children
            .iter()
            .position(|(existing, _)| existing == elem);
        let Some(index) = found else {
            if let Some((first, _)) = self.first()
                && first.is_list() != elem.is_list()
            {
                return Err(message("conflict", path, &self.rebuild(path, depth)));
            }
            let rest = path.get(depth + 1..).unwrap_or_default();
            self.children.push((elem.clone(), Self::chain(rest)));
            return Ok(());
        };
        let more = depth + 1 < path.len();
        let rebuilt = self.rebuild(path, depth);
        match self.children.get_mut(index) {
            Some((_, Some(child))) if more => child.insert(path, depth + 1),
            _ => Err(message("overlap", path, &rebuilt)),
        }
    }
}

fn message(problem: &str, one: &[Elem], two: &[Elem]) -> String {
    format!(
        "Two document paths {problem} with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
        display(one),
        display(two)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(name: &str) -> Elem {
        Elem::Map(name.to_owned())
    }

    fn insert_all(paths: &[Vec<Elem>]) -> Result<(), String> {
        let mut root = Node::default();
        paths.iter().rev().try_for_each(|path| root.insert(path, 0))
    }

    #[test]
    fn overlaps_and_conflicts() {
        assert_eq!(
            insert_all(&[vec![map("a")], vec![map("a"), map("b")]])
                .err()
                .as_deref(),
            Some(
                "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"
            )
        );
        assert_eq!(
            insert_all(&[vec![map("a"), map("c")], vec![map("a"), Elem::List(1)]])
                .err()
                .as_deref(),
            Some(
                "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, c], path two: [a, [1]]"
            )
        );
        assert!(insert_all(&[vec![map("a"), map("b")], vec![map("a"), map("c")]]).is_ok());
    }

    #[test]
    fn path_two_follows_first_keys() {
        // dynalite's notes of DynamoDB's answers: the last-written path is
        // inserted first, and path two starts from the root's first key.
        let three = map("[3]");
        let err = insert_all(&[
            vec![map("c"), map("b"), map("c")],
            vec![map("c")],
            vec![three.clone()],
        ]);
        assert!(
            err.err()
                .unwrap_or_default()
                .ends_with("path one: [c, b, c], path two: [[3]]")
        );
        let err = insert_all(&[vec![map("a")], vec![map("a")], vec![map("c")], vec![three]]);
        assert!(
            err.err()
                .unwrap_or_default()
                .ends_with("path one: [a], path two: [[3]]")
        );
    }
}
