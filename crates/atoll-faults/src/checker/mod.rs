//! Linearizability checker for single-item histories, in the style of
//! Porcupine and Knossos.
//!
//! The model is one DynamoDB item per key holding an integer attribute `v`,
//! or no item at all. Keys are independent objects, so each key's
//! sub-history is checked on its own (P-compositionality): a history is
//! linearizable iff every key's sub-history is.
//!
//! Each key is searched with the Wing & Gong algorithm as refined by Lowe
//! (memoising the pair "set of linearized operations, model state"). Two
//! refinements keep histories with many indeterminate operations tractable:
//!
//! - An operation with an `Unknown` outcome never returned, so it may take
//!   effect at any point after its call or never; its result is
//!   unconstrained. The search succeeds as soon as every operation with a
//!   known outcome is linearized: leftover unknown ones are placed "after the
//!   end of time", which is the same as never happening.
//! - A search node that has linearized a superset of the unknown operations
//!   of an already seen node with the same known set and state is pruned
//!   too: it has fewer options left. Known operations are tried before
//!   unknown ones so that the cheaper nodes come first.
//! - Only canonical linearizations are explored, in which an unknown
//!   operation is placed only where it explains the next known answer (see
//!   `search`).
//!
//! A counterexample is the shortest prefix of the key's events that cannot
//! be linearized, where operations still running at the end of the prefix
//! may or may not have taken effect, with any result.
//!
//! The search is bounded by a budget of explored nodes per key; past it the
//! key's verdict is "unknown" instead of a hang.

mod arena;
mod model;
mod report;
mod search;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use model::step;
pub use report::format_time;

/// One client request against one key, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Strongly consistent GetItem.
    Read,
    /// Unconditional PutItem of `v`.
    Put(i64),
    /// PutItem of `v` with `attribute_not_exists(k)`.
    PutIfAbsent(i64),
    /// PutItem of `value` with `v = :expected`.
    PutIfEquals {
        /// The value the condition requires.
        expected: i64,
        /// The value written if the condition holds.
        value: i64,
    },
    /// UpdateItem `ADD v :one`, returning the new value (absent counts as 0).
    Increment,
    /// Unconditional DeleteItem.
    Delete,
}

/// The answer of a request that completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    /// A read's observation: the value of `v`, or no item.
    Read(Option<i64>),
    /// A write (Put, Delete, or a conditional put whose condition held) was applied.
    Written,
    /// A conditional put answered ConditionalCheckFailedException.
    ConditionFailed,
    /// An increment's new value.
    Incremented(i64),
}

/// What a client learned about its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The request completed with this answer.
    Ok(Ret),
    /// The request definitely had no effect (refused before sending, or a
    /// 4xx answer other than a condition failure).
    Fail,
    /// The request may or may not have taken effect (timeout, reset, 5xx).
    Unknown,
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The client (worker) that issued it; a client runs one op at a time.
    pub client: usize,
    /// The item's partition key.
    pub key: String,
    /// What was requested.
    pub op: Op,
    /// Call time, nanoseconds on a monotonic clock.
    pub call: u64,
    /// Return time (for `Unknown`, when the client gave up; not used).
    pub ret: u64,
    /// What came back.
    pub outcome: Outcome,
}

/// Knobs of the checker.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Search nodes explored per key before giving up with "unknown".
    pub budget: u64,
    /// Operations printed when a counterexample is displayed (the rest of
    /// the prefix is summarised).
    pub max_printed_ops: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            budget: 500_000,
            max_printed_ops: 40,
        }
    }
}

/// A history the checker cannot interpret (a harness bug, not a database bug).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("history operation #{index} is malformed: {reason}")]
pub struct HistoryError {
    /// Position of the operation in the history.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// The verdict for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A linearization exists.
    Linearizable,
    /// No linearization exists.
    Violation(Box<Counterexample>),
    /// The search budget ran out before a verdict.
    BudgetExceeded,
}

/// The result of checking one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReport {
    /// The key.
    pub key: String,
    /// Operations of this key that constrain the search (not `Fail`, not
    /// unknown reads).
    pub ops: usize,
    /// Search nodes explored.
    pub explored: u64,
    /// The verdict.
    pub verdict: KeyVerdict,
}

/// The shortest prefix of one key's history that cannot be linearized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    /// The key.
    pub key: String,
    /// History index of the operation whose return cannot be explained: the
    /// prefix ends with that return.
    pub culprit: usize,
    /// The prefix's operations as (history index, operation, still pending
    /// at the culprit's return), ordered by call time.
    pub prefix: Vec<(usize, Operation, bool)>,
    /// Model states the search reached right before the culprit's return
    /// (every earlier return linearized); `None` is "no item". Capped.
    pub states_before: Vec<Option<i64>>,
    /// Printing limit for `Display`.
    pub max_printed_ops: usize,
}

/// The verdict over all keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Per-key results, ordered by key.
    pub keys: Vec<KeyReport>,
}

/// Overall outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every key is linearizable.
    Linearizable,
    /// At least one key is not.
    Violation,
    /// No violation found, but at least one key ran out of budget.
    Unknown,
}

impl Report {
    /// Violation if any key has one, else Unknown if any key ran out of
    /// budget, else Linearizable.
    pub fn verdict(&self) -> Verdict {
        let mut verdict = Verdict::Linearizable;
        for key in &self.keys {
            match key.verdict {
                KeyVerdict::Violation(_) => return Verdict::Violation,
                KeyVerdict::BudgetExceeded => verdict = Verdict::Unknown,
                KeyVerdict::Linearizable => {}
            }
        }
        verdict
    }

    /// The counterexamples found, by key.
    pub fn violations(&self) -> impl Iterator<Item = &Counterexample> {
        self.keys.iter().filter_map(|k| match &k.verdict {
            KeyVerdict::Violation(c) => Some(c.as_ref()),
            _ => None,
        })
    }
}

/// Checks a whole history, one key at a time.
pub fn check(history: &[Operation], opts: &CheckOptions) -> Result<Report, HistoryError> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, operation) in history.iter().enumerate() {
        validate(index, operation)?;
        by_key.entry(&operation.key).or_default().push(index);
    }
    let keys = by_key
        .into_iter()
        .map(|(key, indices)| check_key(key, history, &indices, opts))
        .collect();
    Ok(Report { keys })
}

/// Checks the operations `indices` of `history`, which all concern `key`.
fn check_key(
    key: &str,
    history: &[Operation],
    indices: &[usize],
    opts: &CheckOptions,
) -> KeyReport {
    // Failed operations had no effect and unknown reads constrain nothing:
    // neither can matter to any linearization.
    let relevant: Vec<usize> = indices
        .iter()
        .copied()
        .filter(|&i| match history[i].outcome {
            Outcome::Fail => false,
            Outcome::Unknown => history[i].op != Op::Read,
            Outcome::Ok(_) => true,
        })
        .collect();
    let originals: Vec<&Operation> = relevant.iter().map(|&i| &history[i]).collect();
    let (merged, rewritten) = anonymize(originals.iter().copied());
    let ops: Vec<&Operation> = rewritten.iter().collect();
    let full = search::search(&ops, opts.budget, merged, false);
    let mut explored = full.explored;
    let verdict = match &full.outcome {
        search::SearchOutcome::Linearizable => KeyVerdict::Linearizable,
        search::SearchOutcome::BudgetExceeded => KeyVerdict::BudgetExceeded,
        search::SearchOutcome::Violation {
            culprit,
            culprit_return,
            states,
        } => {
            // The full search's frontier is where the shortest failing
            // prefix can start: every shorter prefix was linearized.
            let (cut, culprit, states) = shortest_prefix(
                &ops,
                &full,
                &originals,
                *culprit_return,
                opts,
                merged,
                &mut explored,
            )
            .unwrap_or((*culprit_return, *culprit, states.clone()));
            let mut prefix: Vec<(usize, Operation, bool)> = full
                .events
                .iter()
                .filter(|e| e.is_call && e.seq < cut)
                .map(|e| {
                    let pending = full.return_seq[e.op].is_none_or(|r| r > cut);
                    (relevant[e.op], history[relevant[e.op]].clone(), pending)
                })
                .collect();
            prefix.sort_by_key(|(index, op, _)| (op.call, *index));
            KeyVerdict::Violation(Box::new(Counterexample {
                key: key.to_string(),
                culprit: relevant[culprit],
                prefix,
                states_before: states,
                max_printed_ops: opts.max_printed_ops,
            }))
        }
    };
    KeyReport {
        key: key.to_string(),
        ops: relevant.len(),
        explored,
        verdict,
    }
}

/// Finds the shortest prefix of `full`'s events, ending with a return at or
/// after `from`, that cannot be linearized when the operations still running
/// at its end count as unknown. Failing prefixes are closed under extension,
/// so a binary search over the return events finds it; usually the first
/// candidate already fails. Returns (the cut's event position, the culprit
/// whose return ends it, the states the item can be in when everything
/// that returned before the culprit is linearized), or `None` if the budget
/// ran out on every candidate.
fn shortest_prefix(
    ops: &[&Operation],
    full: &search::SearchResult,
    originals: &[&Operation],
    from: usize,
    opts: &CheckOptions,
    merged: bool,
    explored: &mut u64,
) -> Option<(usize, usize, Vec<Option<i64>>)> {
    let mut call_seq = vec![0; ops.len()];
    for e in full.events.iter().filter(|e| e.is_call) {
        call_seq[e.op] = e.seq;
    }
    // The operations called before `cut`, those still running then unknown.
    let prefix = |cut: usize, ops: &[&Operation]| -> Vec<Operation> {
        let mut sub: Vec<Operation> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if call_seq[i] >= cut {
                continue;
            }
            let mut op = (*op).clone();
            if full.return_seq[i].is_none_or(|r| r >= cut) {
                if op.op == Op::Read {
                    continue;
                }
                op.outcome = Outcome::Unknown;
            }
            sub.push(op);
        }
        sub
    };
    let mut fails = |cut: usize| -> bool {
        // Up to and including the return at `cut`.
        let sub = prefix(cut + 1, ops);
        let refs: Vec<&Operation> = sub.iter().collect();
        let result = search::search(&refs, opts.budget, merged, false);
        *explored += result.explored;
        matches!(result.outcome, search::SearchOutcome::Violation { .. })
    };
    let returns: Vec<usize> = full
        .events
        .iter()
        .filter(|e| !e.is_call && e.seq >= from)
        .map(|e| e.seq)
        .collect();
    let mut hi = 0;
    if !fails(*returns.first()?) {
        let mut lo = 0;
        hi = returns.len() - 1;
        if !fails(returns[hi]) {
            return None;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fails(returns[mid]) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
    }
    let cut = returns[hi];
    let culprit = full.events[cut].op;
    // Where the item can be just before the culprit returns: the final
    // states of the prefix without that return, with real values.
    let sub = prefix(cut, originals);
    let refs: Vec<&Operation> = sub.iter().collect();
    let result = search::search(&refs, opts.budget, false, true);
    *explored += result.explored;
    Some((cut, culprit, result.final_states))
}

/// Rewrites every written value that no operation of the key could ever
/// observe into `UNOBSERVED`, so that such writes become identical and
/// their states one. A value `v` is observable if a read, an increment's
/// result or a conditional put's expected value lies in `v ..= v + n`, `n`
/// being the number of increments (each can add one before it is seen).
/// Everything else about an unobservable value is the same for all of them:
/// the item is present and matches no expected value. Returns false (and
/// the operations unchanged) if some value already is `UNOBSERVED`.
fn anonymize<'a>(ops: impl Iterator<Item = &'a Operation>) -> (bool, Vec<Operation>) {
    let mut ops: Vec<Operation> = ops.cloned().collect();
    let increments = ops.iter().filter(|o| o.op == Op::Increment).count() as i64;
    let mut seen: Vec<i64> = Vec::new();
    let mut written: Vec<i64> = Vec::new();
    for o in &ops {
        match o.op {
            Op::Put(v) | Op::PutIfAbsent(v) => written.push(v),
            Op::PutIfEquals { expected, value } => {
                seen.push(expected);
                written.push(value);
            }
            Op::Read | Op::Increment | Op::Delete => {}
        }
        match o.outcome {
            Outcome::Ok(Ret::Read(Some(v))) | Outcome::Ok(Ret::Incremented(v)) => seen.push(v),
            _ => {}
        }
    }
    if seen.iter().chain(&written).any(|&v| v == model::UNOBSERVED) {
        return (false, ops);
    }
    seen.sort_unstable();
    let observable = |v: i64| {
        let first = seen.partition_point(|&x| x < v);
        seen.get(first)
            .is_some_and(|&x| x <= v.saturating_add(increments))
    };
    let hide = |v: i64| if observable(v) { v } else { model::UNOBSERVED };
    for o in &mut ops {
        o.op = match o.op {
            Op::Put(v) => Op::Put(hide(v)),
            Op::PutIfAbsent(v) => Op::PutIfAbsent(hide(v)),
            Op::PutIfEquals { expected, value } => Op::PutIfEquals {
                expected,
                value: hide(value),
            },
            other => other,
        };
    }
    (true, ops)
}

/// Rejects operations whose answer does not fit the request.
fn validate(index: usize, operation: &Operation) -> Result<(), HistoryError> {
    let fail = |reason: String| Err(HistoryError { index, reason });
    if let Outcome::Ok(ret) = operation.outcome {
        if operation.ret < operation.call {
            return fail(format!(
                "returns at {} before its call at {}",
                operation.ret, operation.call
            ));
        }
        let fits = match operation.op {
            Op::Read => matches!(ret, Ret::Read(_)),
            Op::Put(_) | Op::Delete => ret == Ret::Written,
            Op::PutIfAbsent(_) | Op::PutIfEquals { .. } => {
                matches!(ret, Ret::Written | Ret::ConditionFailed)
            }
            Op::Increment => matches!(ret, Ret::Incremented(_)),
        };
        if !fits {
            return fail(format!("{:?} cannot answer {:?}", operation.op, ret));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
