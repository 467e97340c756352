//! Human-readable rendering of operations and counterexamples.

use std::fmt;

use super::{Counterexample, Op, Operation, Outcome, Ret};

/// Nanoseconds as seconds with microsecond precision (`12.345678s`).
pub fn format_time(nanos: u64) -> String {
    format!(
        "{}.{:06}s",
        nanos / 1_000_000_000,
        (nanos % 1_000_000_000) / 1_000
    )
}

fn value(v: Option<i64>) -> String {
    match v {
        None => "absent".to_string(),
        Some(super::model::UNOBSERVED) => "(a value nobody observed)".to_string(),
        Some(v) => v.to_string(),
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Read => write!(f, "Read"),
            Op::Put(v) => write!(f, "Put({v})"),
            Op::PutIfAbsent(v) => write!(f, "PutIfAbsent({v})"),
            Op::PutIfEquals { expected, value } => write!(f, "PutIfEquals({expected} -> {value})"),
            Op::Increment => write!(f, "Increment"),
            Op::Delete => write!(f, "Delete"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(Ret::Read(v)) => write!(f, "{}", value(*v)),
            Outcome::Ok(Ret::Written) => write!(f, "ok"),
            Outcome::Ok(Ret::ConditionFailed) => write!(f, "condition failed"),
            Outcome::Ok(Ret::Incremented(v)) => write!(f, "{v}"),
            Outcome::Fail => write!(f, "fail"),
            Outcome::Unknown => write!(f, "unknown"),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ret = match self.outcome {
            Outcome::Unknown => "?".to_string(),
            _ => format_time(self.ret),
        };
        write!(
            f,
            "client {:>2}  {:>17} .. {:>17}  {} => {}",
            self.client,
            format_time(self.call),
            ret,
            self.op,
            self.outcome
        )
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {:?} is not linearizable.", self.key)?;
        if let Some((_, culprit, _)) = self.prefix.iter().find(|(i, _, _)| *i == self.culprit) {
            writeln!(
                f,
                "No order of the operations before it explains the return of op #{}: {}",
                self.culprit, culprit
            )?;
        }
        let states: Vec<String> = self.states_before.iter().map(|s| value(*s)).collect();
        writeln!(
            f,
            "Item states consistent with everything that returned earlier: {}",
            if states.is_empty() {
                "none".to_string()
            } else {
                states.join(", ")
            }
        )?;
        let total = self.prefix.len();
        let shown = total.min(self.max_printed_ops.max(1));
        writeln!(
            f,
            "Shortest non-linearizable prefix: {total} operations by call time \
             (> the culprit, * still pending at its return){}:",
            if shown < total {
                format!("; the first {} are not shown", total - shown)
            } else {
                String::new()
            }
        )?;
        for (index, op, pending) in &self.prefix[total - shown..] {
            let mark = if *index == self.culprit {
                '>'
            } else if *pending {
                '*'
            } else {
                ' '
            };
            writeln!(f, "  {mark} #{index:<6} {op}")?;
        }
        Ok(())
    }
}
