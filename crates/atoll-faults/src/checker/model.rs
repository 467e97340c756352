//! The sequential specification of one item: its state is the value of `v`,
//! or `None` when there is no item.

use super::{Op, Ret};

/// Stands for every value that no operation of the key can ever observe
/// (see `anonymize` in the parent module). Such values behave alike, so the
/// search treats them as one state.
pub(super) const UNOBSERVED: i64 = i64::MIN;

/// Applies `op` to `state`. `ret` is the observed answer, or `None` when the
/// outcome is unknown (any answer is accepted). Returns the state after the
/// operation, or `None` if the answer is impossible in `state`.
pub fn step(state: Option<i64>, op: Op, ret: Option<Ret>) -> Option<Option<i64>> {
    step_in(state, op, ret, false)
}

/// `step`, where `merged` says that `UNOBSERVED` stands for unobservable
/// values: incrementing one yields another.
pub(super) fn step_in(
    state: Option<i64>,
    op: Op,
    ret: Option<Ret>,
    merged: bool,
) -> Option<Option<i64>> {
    match op {
        Op::Read => match ret {
            None => Some(state),
            Some(Ret::Read(seen)) if seen == state => Some(state),
            Some(_) => None,
        },
        Op::Put(v) => accept_written(ret, Some(v)),
        Op::Delete => accept_written(ret, None),
        Op::PutIfAbsent(v) => conditional(state, state.is_none(), Some(v), ret),
        Op::PutIfEquals { expected, value } => {
            conditional(state, state == Some(expected), Some(value), ret)
        }
        Op::Increment => {
            // An overflowing ADD is a ValidationException in DynamoDB; the
            // workload never gets near it, so treat it as impossible.
            let new = match state {
                Some(UNOBSERVED) if merged => UNOBSERVED,
                _ => state.unwrap_or(0).checked_add(1)?,
            };
            match ret {
                None => Some(Some(new)),
                Some(Ret::Incremented(seen)) if seen == new => Some(Some(new)),
                Some(_) => None,
            }
        }
    }
}

/// An unconditional write: any state, always applied.
fn accept_written(ret: Option<Ret>, new: Option<i64>) -> Option<Option<i64>> {
    match ret {
        None | Some(Ret::Written) => Some(new),
        Some(_) => None,
    }
}

/// A conditional put: applied iff `holds`; the answer must say which.
fn conditional(
    state: Option<i64>,
    holds: bool,
    new: Option<i64>,
    ret: Option<Ret>,
) -> Option<Option<i64>> {
    match (ret, holds) {
        (None, true) | (Some(Ret::Written), true) => Some(new),
        (None, false) | (Some(Ret::ConditionFailed), false) => Some(state),
        _ => None,
    }
}
