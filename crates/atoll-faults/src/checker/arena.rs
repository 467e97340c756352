//! Data structures of the search: the doubly linked event lists, bitsets,
//! and the memo of visited search nodes.

use std::collections::HashMap;

/// "No node".
pub(super) const NIL: usize = usize::MAX;
/// Head of the list of known operations' calls and returns.
pub(super) const MAIN: usize = 0;
/// Head of the list of unknown operations' calls.
pub(super) const UNKNOWN: usize = 1;

/// Events as linked-list nodes. Linearizing an operation unlinks its events
/// ("lift") and backtracking links them back in reverse order ("unlift"),
/// so both are O(1).
pub(super) struct Arena {
    pub next: Vec<usize>,
    prev: Vec<usize>,
    /// Operation of each node (unused for the two heads).
    pub op: Vec<usize>,
    pub is_call: Vec<bool>,
    pub seq: Vec<usize>,
    call_node: Vec<usize>,
    ret_node: Vec<usize>,
}

impl Arena {
    /// Two empty lists for `n` operations.
    pub fn new(n: usize) -> Arena {
        Arena {
            next: vec![NIL, NIL],
            prev: vec![NIL, NIL],
            op: vec![NIL, NIL],
            is_call: vec![false, false],
            seq: vec![NIL, NIL],
            call_node: vec![NIL; n],
            ret_node: vec![NIL; n],
        }
    }

    /// Appends an event of `op` after `tail` and makes it the new tail.
    pub fn append(&mut self, tail: &mut usize, op: usize, is_call: bool, seq: usize) {
        let node = self.next.len();
        self.next.push(NIL);
        self.prev.push(*tail);
        self.op.push(op);
        self.is_call.push(is_call);
        self.seq.push(seq);
        self.next[*tail] = node;
        *tail = node;
        if is_call {
            self.call_node[op] = node;
        } else {
            self.ret_node[op] = node;
        }
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    /// Removes `op`'s events from their lists.
    pub fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        if self.ret_node[op] != NIL {
            self.unlink(self.ret_node[op]);
        }
    }

    /// Undoes the last `lift`, which must have been of `op`.
    pub fn unlift(&mut self, op: usize) {
        if self.ret_node[op] != NIL {
            self.relink(self.ret_node[op]);
        }
        self.relink(self.call_node[op]);
    }
}

/// A set of operations as bits.
#[derive(Debug, Clone)]
pub(super) struct BitSet(Vec<u64>);

impl BitSet {
    /// An empty set over `n` elements.
    pub fn new(n: usize) -> BitSet {
        BitSet(vec![0; n.div_ceil(64)])
    }

    pub fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    pub fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn words(&self) -> &[u64] {
        &self.0
    }
}

/// A set of linearized known operations in a compact, canonical form:
/// every operation below `base * 64` is linearized, and `bits` holds the
/// words from `base` to the last non-zero one. Known operations are indexed
/// in call order and run for a bounded time, so `bits` stays short however
/// long the history is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Frontier {
    base: u32,
    bits: Box<[u64]>,
}

pub(super) fn frontier(words: &[u64]) -> Frontier {
    let base = words
        .iter()
        .position(|&w| w != u64::MAX)
        .unwrap_or(words.len());
    let end = words.iter().rposition(|&w| w != 0).map_or(0, |p| p + 1);
    let bits: Box<[u64]> = if end > base {
        words[base..end].into()
    } else {
        Box::new([])
    };
    Frontier {
        base: u32::try_from(base).unwrap_or(u32::MAX),
        bits,
    }
}

fn is_subset(small: &[u64], big: &[u64]) -> bool {
    small.iter().zip(big).all(|(s, b)| s & !b == 0)
}

/// Index of the lowest element not in the set.
pub(super) fn lowest_missing(words: &[u64]) -> usize {
    words
        .iter()
        .position(|&w| w != u64::MAX)
        .map_or(words.len() * 64, |i| {
            i * 64 + words[i].trailing_ones() as usize
        })
}

/// A model state as the memo sees it: values no remaining operation can
/// observe are all alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum StateKey {
    Absent,
    Value(i64),
    Unobservable,
}

/// The linearized unknown operations of a search node: by identity where
/// identity still matters, else as a count per class of interchangeable
/// operations.
#[derive(Debug, Clone)]
pub(super) struct UnknownKey {
    pub live: Box<[u64]>,
    pub counts: Box<[u32]>,
}

impl UnknownKey {
    /// Whether a node with `self` has at least the options of one with
    /// `other`: it used a subset of the identified operations and no more
    /// of each class.
    fn covers(&self, other: &UnknownKey) -> bool {
        is_subset(&self.live, &other.live)
            && self
                .counts
                .iter()
                .zip(other.counts.iter())
                .all(|(a, b)| a <= b)
    }
}

/// Search nodes seen: (known set, state, state before the current unknown
/// run) to the unknown operations they were reached with, minimal under
/// `covers`. A node is redundant if a seen node with the same key covers
/// it: it has no option the seen one lacks.
#[derive(Default)]
pub(super) struct Memo {
    seen: HashMap<(Frontier, StateKey, Option<StateKey>), Vec<UnknownKey>>,
}

impl Memo {
    /// Records a node; false if a seen node makes it redundant.
    pub fn insert(
        &mut self,
        known: &BitSet,
        state: StateKey,
        run_start: Option<StateKey>,
        unknown: UnknownKey,
    ) -> bool {
        let seen = self
            .seen
            .entry((frontier(known.words()), state, run_start))
            .or_default();
        if seen.iter().any(|u| u.covers(&unknown)) {
            return false;
        }
        // Entries the new one covers can never prune anything it would not.
        seen.retain(|u| !unknown.covers(u));
        seen.push(unknown);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_is_canonical() {
        let f = frontier(&[u64::MAX, u64::MAX, 0b101, 0, 0]);
        assert_eq!(f.base, 2);
        assert_eq!(&*f.bits, &[0b101]);
        let g = frontier(&[u64::MAX, 0, 0]);
        assert_eq!(g.base, 1);
        assert!(g.bits.is_empty());
        let h = frontier(&[0b1, 0, 0b10]);
        assert_eq!(h.base, 0);
        assert_eq!(&*h.bits, &[0b1, 0, 0b10]);
    }

    #[test]
    fn subset_checks_every_word() {
        assert!(is_subset(&[0b01, 0b10], &[0b11, 0b10]));
        assert!(!is_subset(&[0b01, 0b10], &[0b11, 0b01]));
        assert!(is_subset(&[], &[]));
    }

    #[test]
    fn memo_prunes_covered_nodes_only() {
        let key = |live: &[u64], counts: &[u32]| UnknownKey {
            live: live.into(),
            counts: counts.into(),
        };
        let mut memo = Memo::default();
        let known = BitSet::new(3);
        let v = StateKey::Value(1);
        assert!(memo.insert(&known, v, None, key(&[0b01], &[1])));
        assert!(!memo.insert(&known, v, None, key(&[0b11], &[1])));
        assert!(!memo.insert(&known, v, None, key(&[0b01], &[2])));
        assert!(memo.insert(&known, v, None, key(&[0b11], &[0])));
        assert!(memo.insert(&known, StateKey::Unobservable, None, key(&[0b11], &[1])));
        assert!(memo.insert(&known, v, Some(StateKey::Absent), key(&[0b11], &[1])));
        assert!(memo.insert(&known, v, None, key(&[0], &[0])));
        assert!(!memo.insert(&known, v, None, key(&[0b01], &[0])));
    }

    #[test]
    fn lowest_missing_counts_full_words() {
        assert_eq!(lowest_missing(&[]), 0);
        assert_eq!(lowest_missing(&[0b0111]), 3);
        assert_eq!(lowest_missing(&[u64::MAX, 0]), 64);
        assert_eq!(lowest_missing(&[u64::MAX]), 64);
    }

    #[test]
    fn lift_and_unlift_restore_the_lists() {
        let mut arena = Arena::new(2);
        let mut tail = MAIN;
        arena.append(&mut tail, 0, true, 0);
        arena.append(&mut tail, 1, true, 1);
        arena.append(&mut tail, 0, false, 2);
        arena.append(&mut tail, 1, false, 3);
        let order = |arena: &Arena| {
            let mut seqs = Vec::new();
            let mut node = arena.next[MAIN];
            while node != NIL {
                seqs.push(arena.seq[node]);
                node = arena.next[node];
            }
            seqs
        };
        arena.lift(0);
        assert_eq!(order(&arena), vec![1, 3]);
        arena.lift(1);
        assert_eq!(order(&arena), Vec::<usize>::new());
        arena.unlift(1);
        arena.unlift(0);
        assert_eq!(order(&arena), vec![0, 1, 2, 3]);
    }
}
