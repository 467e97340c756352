//! The Wing & Gong / Lowe search over one key's operations.
//!
//! The main event list holds the calls and returns of operations with a
//! known outcome, in time order; a second list holds the calls of unknown
//! operations, which never return. A search node's candidates are the known
//! calls before the first remaining return, then the unknown calls before
//! it: known ones first, because unknown steps are rarely needed.
//!
//! Unknown operations never have to precede anything, so any linearization
//! can be rewritten into a canonical one, and only canonical ones are
//! explored:
//! - an unknown step that leaves the state unchanged can be dropped (moved
//!   past the end), so it is never taken;
//! - identical unknown operations are taken in call order: the one called
//!   earlier can stand in for any later one;
//! - a run of unknown steps is followed by a known step that is impossible
//!   in the state before the run (a "target"). Otherwise the known step can
//!   move before the run: if it leaves the state alone the run has the same
//!   effect after it, and if it sets the state the run can be dropped. So a
//!   Put or Delete only ever starts a run, no run starts where every known
//!   candidate is possible, and an unknown step is only taken if some target
//!   can still become possible from its state. The state before the current
//!   run is part of the memo key.
//!
//! Once every operation that could observe a value has been linearized, the
//! value no longer matters: the memo treats all such states alike, and
//! unknown writes of such values (same kind, same condition) as
//! interchangeable, counting them instead of naming them. This keeps
//! exhaustive searches (the ones that prove a violation) from multiplying
//! by the subsets of unknown writes used along the way.

use std::collections::{HashMap, HashSet};

use super::arena::{Arena, BitSet, MAIN, Memo, NIL, StateKey, UNKNOWN, UnknownKey, lowest_missing};
use super::model::{UNOBSERVED, step_in};
use super::{Op, Operation, Outcome, Ret};

/// States remembered for the counterexample: enough to see what the
/// database "should" have answered without flooding the report.
const MAX_STATES: usize = 8;
/// States a target look-ahead may visit before it gives up (and allows the
/// step: giving up must never prune).
const LOOKAHEAD_LIMIT: usize = 256;

/// One call or return event, in time order.
#[derive(Debug, Clone, Copy)]
pub(super) struct Event {
    /// Index of the operation in the searched slice.
    pub op: usize,
    /// Call (true) or return.
    pub is_call: bool,
    /// Position in the time order.
    pub seq: usize,
}

/// How a search ended.
#[derive(Debug)]
pub(super) enum SearchOutcome {
    Linearizable,
    BudgetExceeded,
    Violation {
        /// The operation whose return no linearization could pass.
        culprit: usize,
        /// Sequence number of that return event.
        culprit_return: usize,
        /// States reached right before that return.
        states: Vec<Option<i64>>,
    },
}

/// A search's outcome plus what is needed to describe a counterexample.
#[derive(Debug)]
pub(super) struct SearchResult {
    pub outcome: SearchOutcome,
    pub explored: u64,
    pub events: Vec<Event>,
    /// Sequence number of each operation's return (None: unknown outcome).
    pub return_seq: Vec<Option<usize>>,
    /// With `collect`: states at the end of the linearizations found.
    pub final_states: Vec<Option<i64>>,
}

/// Where the candidate scan of the current search node stands.
#[derive(Debug, Clone, Copy)]
enum Cursor {
    Main(usize),
    Unknown(usize),
}

/// A linearized operation, to undo on backtrack.
#[derive(Debug)]
struct Frame {
    node: usize,
    state: Option<i64>,
    run_start: Option<Option<i64>>,
    bound: usize,
}

/// Everything about the operations that does not change during the search.
struct Ops<'a> {
    ops: &'a [&'a Operation],
    merged: bool,
    known: Vec<bool>,
    call_seq: Vec<usize>,
    /// Bit of each operation in the known or the unknown set; known ones are
    /// numbered in call order (see `Frontier`).
    bit: Vec<usize>,
    /// For each unknown operation, the previous unknown one (by call) that
    /// is the same request.
    twin_before: Vec<Option<usize>>,
    unknown_increments: Vec<usize>,
    unknown_if_absent: Vec<usize>,
    unknown_if_equals: HashMap<i64, Vec<usize>>,
    /// Unknown operation of each bit of the unknown set.
    unknown_op: Vec<usize>,
    /// Class of interchangeable unknown writes once their value is dead
    /// (see `dead_from`), per operation.
    class: Vec<Option<usize>>,
    classes: usize,
    /// Per classed unknown write: `dead_from` of its value.
    dead_from: Vec<usize>,
}

/// When values stop mattering. An operation observes value `v` if it reads
/// it, an increment returns it or a conditional put expects it; it may then
/// also observe `v - n` for `n` up to the number of increments. A value is
/// dead once every known operation observing it is linearized, that is once
/// the lowest unlinearized known operation (in call order) comes after all
/// of them; an unknown conditional put observes its expected value forever.
struct Liveness {
    /// (observed value, index of the observing known operation or
    /// `usize::MAX - 1` for "forever"), sorted.
    observations: Vec<(i64, usize)>,
    increments: i64,
    cache: HashMap<i64, usize>,
}

impl Liveness {
    /// The lowest unlinearized known index from which `v` is dead.
    fn dead_from(&mut self, v: i64) -> usize {
        if let Some(&d) = self.cache.get(&v) {
            return d;
        }
        let first = self.observations.partition_point(|&(x, _)| x < v);
        let last = v.saturating_add(self.increments);
        let d = self.observations[first..]
            .iter()
            .take_while(|&&(x, _)| x <= last)
            .map(|&(_, i)| i + 1)
            .max()
            .unwrap_or(0);
        self.cache.insert(v, d);
        d
    }

    fn state_key(&mut self, state: Option<i64>, lowest: usize) -> StateKey {
        match state {
            None => StateKey::Absent,
            Some(v) if self.dead_from(v) <= lowest => StateKey::Unobservable,
            Some(v) => StateKey::Value(v),
        }
    }
}

impl Ops<'_> {
    fn result(&self, i: usize) -> Option<Ret> {
        match self.ops[i].outcome {
            Outcome::Ok(ret) => Some(ret),
            Outcome::Fail | Outcome::Unknown => None,
        }
    }

    fn step(&self, state: Option<i64>, i: usize) -> Option<Option<i64>> {
        step_in(state, self.ops[i].op, self.result(i), self.merged)
    }

    /// Whether unknown operation `i` can still be linearized before `bound`.
    fn available(&self, unknown: &BitSet, i: usize, bound: usize) -> bool {
        self.call_seq[i] < bound && !unknown.contains(self.bit[i])
    }

    /// Whether a run continuing from `from` with non-erasing unknown steps
    /// can reach a state where one of `targets` is possible. Errs towards
    /// yes: it ignores that a step can be used only once (except for
    /// counting increments) and gives up after `LOOKAHEAD_LIMIT` states.
    fn leads_to_target(
        &self,
        from: Option<i64>,
        targets: &[usize],
        unknown: &BitSet,
        bound: usize,
    ) -> bool {
        let increments = self
            .unknown_increments
            .iter()
            .filter(|&&i| self.available(unknown, i, bound))
            .count();
        let mut queue = vec![(from, 0usize)];
        let mut seen: HashSet<Option<i64>> = HashSet::new();
        while let Some((state, used)) = queue.pop() {
            if !seen.insert(state) {
                continue;
            }
            if seen.len() > LOOKAHEAD_LIMIT {
                return true;
            }
            if targets.iter().any(|&t| self.step(state, t).is_some()) {
                return true;
            }
            let merged_value = self.merged && state == Some(UNOBSERVED);
            if used < increments
                && !merged_value
                && let Some(next) = state.unwrap_or(0).checked_add(1)
            {
                queue.push((Some(next), used + 1));
            }
            let conditional: &[usize] = match state {
                None => &self.unknown_if_absent,
                Some(v) => self.unknown_if_equals.get(&v).map_or(&[], |v| v.as_slice()),
            };
            for &i in conditional {
                if self.available(unknown, i, bound)
                    && let Some(next) = self.step(state, i)
                {
                    queue.push((next, used));
                }
            }
        }
        false
    }
}

impl Ops<'_> {
    /// The unknown set as the memo sees it (see `Liveness`).
    fn unknown_key(&self, unknown: &BitSet, lowest: usize) -> UnknownKey {
        let mut live: Box<[u64]> = unknown.words().into();
        let mut counts = vec![0u32; self.classes].into_boxed_slice();
        for (w, word) in unknown.words().iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let b = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let op = self.unknown_op[b];
                if let Some(c) = self.class[op]
                    && self.dead_from[op] <= lowest
                {
                    live[w] &= !(1 << (b % 64));
                    counts[c] += 1;
                }
            }
        }
        UnknownKey { live, counts }
    }
}

/// Whether `op` sets the item regardless of its previous state.
fn erases(op: Op) -> bool {
    matches!(op, Op::Put(_) | Op::Delete)
}

/// Searches for a linearization of `ops` (all of one key, none `Fail`),
/// exploring at most `budget` search nodes. `merged`: the written values
/// `UNOBSERVED` stand for unobservable ones (see `step_in`). `collect`:
/// instead of stopping at the first linearization, go on and collect the
/// final states of up to `MAX_STATES` of them (the outcome is then
/// meaningless).
pub(super) fn search(ops: &[&Operation], budget: u64, merged: bool, collect: bool) -> SearchResult {
    let n = ops.len();
    let known: Vec<bool> = ops
        .iter()
        .map(|o| matches!(o.outcome, Outcome::Ok(_)))
        .collect();

    // Calls sort before returns at the same instant: treating such
    // operations as concurrent can only accept more histories, never
    // report a violation that is not there.
    let mut raw: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        raw.push((op.call, true, i));
        if known[i] {
            raw.push((op.ret, false, i));
        }
    }
    raw.sort_by_key(|&(time, is_call, op)| (time, !is_call, op));
    let events: Vec<Event> = raw
        .iter()
        .enumerate()
        .map(|(seq, &(_, is_call, op))| Event { op, is_call, seq })
        .collect();

    let mut arena = Arena::new(n);
    let mut o = Ops {
        ops,
        merged,
        known,
        call_seq: vec![0; n],
        bit: vec![0; n],
        twin_before: vec![None; n],
        unknown_increments: Vec::new(),
        unknown_if_absent: Vec::new(),
        unknown_if_equals: HashMap::new(),
        unknown_op: Vec::new(),
        class: vec![None; n],
        classes: 2,
        dead_from: vec![0; n],
    };
    let mut liveness = Liveness {
        observations: Vec::new(),
        increments: ops.iter().filter(|op| op.op == Op::Increment).count() as i64,
        cache: HashMap::new(),
    };
    let mut if_equals_class: HashMap<i64, usize> = HashMap::new();
    let mut return_seq = vec![None; n];
    let (mut known_count, mut unknown_count) = (0, 0);
    let (mut main_tail, mut unknown_tail) = (MAIN, UNKNOWN);
    let mut last_of: HashMap<Op, usize> = HashMap::new();
    for e in &events {
        let i = e.op;
        if !e.is_call {
            return_seq[i] = Some(e.seq);
            arena.append(&mut main_tail, i, false, e.seq);
            continue;
        }
        o.call_seq[i] = e.seq;
        if o.known[i] {
            o.bit[i] = known_count;
            let seen = match (ops[i].op, ops[i].outcome) {
                (Op::PutIfEquals { expected, .. }, _) => Some(expected),
                (_, Outcome::Ok(Ret::Read(seen))) => seen,
                (_, Outcome::Ok(Ret::Incremented(seen))) => Some(seen),
                _ => None,
            };
            if let Some(seen) = seen {
                liveness.observations.push((seen, known_count));
            }
            known_count += 1;
            arena.append(&mut main_tail, i, true, e.seq);
            continue;
        }
        o.bit[i] = unknown_count;
        o.unknown_op.push(i);
        unknown_count += 1;
        arena.append(&mut unknown_tail, i, true, e.seq);
        o.twin_before[i] = last_of.insert(ops[i].op, i);
        match ops[i].op {
            Op::Increment => o.unknown_increments.push(i),
            Op::PutIfAbsent(_) => o.unknown_if_absent.push(i),
            Op::PutIfEquals { expected, .. } => {
                o.unknown_if_equals.entry(expected).or_default().push(i);
                liveness.observations.push((expected, usize::MAX - 1));
            }
            Op::Read | Op::Put(_) | Op::Delete => {}
        }
        o.class[i] = match ops[i].op {
            Op::Put(_) => Some(0),
            Op::PutIfAbsent(_) => Some(1),
            Op::PutIfEquals { expected, .. } => {
                let next = 2 + if_equals_class.len();
                Some(*if_equals_class.entry(expected).or_insert(next))
            }
            Op::Read | Op::Increment | Op::Delete => None,
        };
    }
    o.classes = 2 + if_equals_class.len();
    liveness.observations.sort_unstable();
    for (i, operation) in ops.iter().enumerate().take(n) {
        if let Op::Put(v) | Op::PutIfAbsent(v) | Op::PutIfEquals { value: v, .. } = operation.op
            && !o.known.get(i).copied().unwrap_or(true)
            && let Some(dead) = o.dead_from.get_mut(i)
        {
            *dead = liveness.dead_from(v);
        }
    }

    let mut known_set = BitSet::new(known_count);
    let mut unknown_set = BitSet::new(unknown_count);
    let mut memo = Memo::default();
    let mut explored = 0u64;
    let mut known_left = known_count;
    let mut state: Option<i64> = None;
    // The state before the current run of unknown steps, if the last step
    // was unknown.
    let mut run_start: Option<Option<i64>> = None;
    let mut stack: Vec<Frame> = Vec::new();
    let mut cursor = Cursor::Main(arena.next[MAIN]);
    // Unknown calls at or after this event are not candidates yet.
    let mut bound = NIL;
    // Known candidates impossible before the current run (see module doc).
    let mut targets: Vec<usize> = Vec::new();
    // The furthest blocking return any search node reached, and the
    // states seen there.
    let mut deepest: Option<(usize, usize)> = None;
    let mut deepest_states: Vec<Option<i64>> = Vec::new();
    let mut final_states: Vec<Option<i64>> = Vec::new();

    let outcome = loop {
        let candidate = if known_left == 0 {
            if !collect {
                break SearchOutcome::Linearizable;
            }
            if !final_states.contains(&state) {
                final_states.push(state);
                if final_states.len() >= MAX_STATES {
                    break SearchOutcome::Linearizable;
                }
            }
            None
        } else {
            match cursor {
                Cursor::Main(node) if node != NIL && arena.is_call[node] => Some(node),
                Cursor::Main(node) => {
                    // The first return of the main list blocks every later
                    // call; it is the frontier this search node reached.
                    if node != NIL {
                        let seq = arena.seq[node];
                        if deepest.is_none_or(|(s, _)| seq > s) {
                            deepest = Some((seq, arena.op[node]));
                            deepest_states.clear();
                        }
                        if deepest.is_some_and(|(s, _)| s == seq)
                            && deepest_states.len() < MAX_STATES
                            && !deepest_states.contains(&state)
                        {
                            deepest_states.push(state);
                        }
                        bound = seq;
                    } else {
                        bound = NIL;
                    }
                    find_targets(&o, &arena, run_start.unwrap_or(state), &mut targets);
                    cursor = if targets.is_empty() {
                        Cursor::Unknown(NIL)
                    } else {
                        Cursor::Unknown(arena.next[UNKNOWN])
                    };
                    continue;
                }
                Cursor::Unknown(node) if node != NIL && arena.seq[node] < bound => Some(node),
                Cursor::Unknown(_) => None,
            }
        };
        match candidate {
            Some(node) => {
                let op = arena.op[node];
                let known = o.known[op];
                let allowed = match run_start {
                    None => true,
                    Some(before) if known => o.step(before, op).is_none(),
                    Some(_) => !erases(ops[op].op),
                } && (known
                    || o.twin_before[op].is_none_or(|t| unknown_set.contains(o.bit[t])));
                let next_state = if allowed {
                    o.step(state, op).filter(|&s| {
                        known || (s != state && o.leads_to_target(s, &targets, &unknown_set, bound))
                    })
                } else {
                    None
                };
                if let Some(new_state) = next_state {
                    let set = if known {
                        &mut known_set
                    } else {
                        &mut unknown_set
                    };
                    set.insert(o.bit[op]);
                    let new_run_start = if known {
                        None
                    } else {
                        Some(run_start.unwrap_or(state))
                    };
                    let lowest = lowest_missing(known_set.words());
                    let state_key = liveness.state_key(new_state, lowest);
                    let run_key = new_run_start.map(|s| liveness.state_key(s, lowest));
                    let unknown_key = o.unknown_key(&unknown_set, lowest);
                    if memo.insert(&known_set, state_key, run_key, unknown_key) {
                        explored += 1;
                        if explored > budget {
                            break SearchOutcome::BudgetExceeded;
                        }
                        stack.push(Frame {
                            node,
                            state,
                            run_start,
                            bound,
                        });
                        arena.lift(op);
                        if known {
                            known_left -= 1;
                        }
                        state = new_state;
                        run_start = new_run_start;
                        cursor = Cursor::Main(arena.next[MAIN]);
                        continue;
                    }
                    let set = if known {
                        &mut known_set
                    } else {
                        &mut unknown_set
                    };
                    set.remove(o.bit[op]);
                }
                cursor = advance(&o, &arena, node);
            }
            None => {
                let Some(frame) = stack.pop() else {
                    let (culprit_return, culprit) = deepest.unwrap_or((NIL, NIL));
                    deepest_states.sort();
                    break SearchOutcome::Violation {
                        culprit,
                        culprit_return,
                        states: std::mem::take(&mut deepest_states),
                    };
                };
                let op = arena.op[frame.node];
                arena.unlift(op);
                if o.known[op] {
                    known_set.remove(o.bit[op]);
                    known_left += 1;
                } else {
                    unknown_set.remove(o.bit[op]);
                    // Back in this node's unknown phase: its targets again.
                    find_targets(
                        &o,
                        &arena,
                        frame.run_start.unwrap_or(frame.state),
                        &mut targets,
                    );
                }
                state = frame.state;
                run_start = frame.run_start;
                bound = frame.bound;
                cursor = advance(&o, &arena, frame.node);
            }
        }
    };
    final_states.sort();
    SearchResult {
        outcome,
        explored,
        events,
        return_seq,
        final_states,
    }
}

/// The known candidates of the current node that are impossible in
/// `before`, the state before the current run of unknown steps.
fn find_targets(o: &Ops<'_>, arena: &Arena, before: Option<i64>, targets: &mut Vec<usize>) {
    targets.clear();
    let mut node = arena.next[MAIN];
    while node != NIL && arena.is_call[node] {
        let op = arena.op[node];
        if o.step(before, op).is_none() {
            targets.push(op);
        }
        node = arena.next[node];
    }
}

/// The next candidate after `node` in its own list.
fn advance(o: &Ops<'_>, arena: &Arena, node: usize) -> Cursor {
    if o.known[arena.op[node]] {
        Cursor::Main(arena.next[node])
    } else {
        Cursor::Unknown(arena.next[node])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(call: u64, ret: u64, outcome: Outcome) -> Operation {
        Operation {
            client: 0,
            key: "k".into(),
            op: Op::Put(1),
            call,
            ret,
            outcome,
        }
    }

    #[test]
    fn result_reports_return_positions() {
        let a = put(0, 10, Outcome::Ok(Ret::Written));
        let b = put(5, 6, Outcome::Unknown);
        let result = search(&[&a, &b], 100, false, false);
        assert!(matches!(result.outcome, SearchOutcome::Linearizable));
        assert_eq!(result.return_seq, vec![Some(2), None]);
    }

    #[test]
    fn history_of_unknown_operations_only_is_linearizable() {
        let a = put(0, 10, Outcome::Unknown);
        let result = search(&[&a], 100, false, false);
        assert!(matches!(result.outcome, SearchOutcome::Linearizable));
        assert_eq!(result.explored, 0);
    }
}
