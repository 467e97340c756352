//! Lookahead for the grammar's few decisions that one or two tokens cannot
//! settle, the way DynamoDB's parser (ANTLR, adaptive LL(*)) settles them.
//!
//! At such a decision every alternative is recognized ahead (no tree, no
//! checks) until all but one have failed. The survivor is chosen even if it
//! fails later, so checks that fire while parsing it (redundant parentheses)
//! still run before its syntax error; when the last alternatives fail on the
//! same token, that token is the syntax error. Recognition is memoized, so
//! the lookahead stays linear however deeply parentheses nest.
//!
//! The decisions:
//! - a condition's operand: `(` opens a grouped condition or a parenthesized
//!   operand; `f(` starts a function condition or a function operand; after
//!   an operand, the next token picks comparison, `IN` or `BETWEEN`;
//! - the right-hand side of SET: an operand, or `a + b` / `a - b`, possibly
//!   parenthesized.

use std::collections::HashMap;

use super::Fail;
use crate::lexer::{Tok, Tokens};

/// How deep parentheses and function calls may nest. DynamoDB sets no
/// documented limit (a valid expression has at most 300 operators, and
/// nesting needs them); the bound keeps recursion, and so the stack, small:
/// a debug build needs about 2 KB of stack per level, a release build less
/// than 1 KB.
pub(crate) const MAX_DEPTH: u32 = 200;

/// The outcome of recognizing a construct from some token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rec {
    /// Recognized, ending before this token.
    Ok(usize),
    /// Failed at this token.
    Dead(usize),
}

/// Where a condition ends: at the end of the input, or at the `)` of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CondEnd {
    Eof,
    RParen,
}

/// Where an arithmetic expression ends: after the SET value, or at a `)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ArithEnd {
    Update,
    RParen,
}

/// The alternatives of a condition's primary, in DynamoDB's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PrimaryAlt {
    Compare,
    In,
    Between,
    Function,
    Grouping,
}

/// The alternatives of a SET value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SetValueAlt {
    Operand,
    Arithmetic,
}

/// The alternatives of an arithmetic expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ArithAlt {
    PlusMinus,
    Parens,
}

/// The result of a decision: the chosen alternative (if any) and how far it
/// gets (`Ok` when it completes and the next token may follow it).
pub(crate) type Choice<A> = (Option<A>, Rec);

/// The parser's state, shared by lookahead and parsing.
pub(crate) struct Parser<'t, 'a> {
    pub tokens: &'t Tokens<'a>,
    pub pos: usize,
    operand_memo: HashMap<usize, Rec>,
    condition_memo: HashMap<(usize, CondEnd), Rec>,
    primary_memo: HashMap<(usize, CondEnd), Choice<PrimaryAlt>>,
    arith_memo: HashMap<(usize, ArithEnd), Choice<ArithAlt>>,
}

fn is_comparator(kind: Tok) -> bool {
    matches!(
        kind,
        Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
    )
}

fn follows_update_value(kind: Tok) -> bool {
    matches!(
        kind,
        Tok::Comma | Tok::Set | Tok::Add | Tok::Delete | Tok::Remove | Tok::Eof
    )
}

/// Picks the alternative DynamoDB's parser commits to: any that completes
/// with a valid next token (the first such, as ANTLR resolves ambiguity), or
/// else the one that fails last if it fails alone.
fn choose<A: Copy>(alternatives: &[(A, Rec)]) -> Choice<A> {
    if let Some(&(alt, rec)) = alternatives
        .iter()
        .find(|(_, rec)| matches!(rec, Rec::Ok(_)))
    {
        return (Some(alt), rec);
    }
    let last = alternatives
        .iter()
        .filter_map(|(_, rec)| match rec {
            Rec::Dead(at) => Some(*at),
            Rec::Ok(_) => None,
        })
        .max()
        .unwrap_or(0);
    let mut at_last = alternatives
        .iter()
        .filter(|(_, rec)| *rec == Rec::Dead(last));
    match (at_last.next(), at_last.next()) {
        (Some(&(alt, _)), None) => (Some(alt), Rec::Dead(last)),
        _ => (None, Rec::Dead(last)),
    }
}

impl<'t, 'a> Parser<'t, 'a> {
    pub fn new(tokens: &'t Tokens<'a>) -> Self {
        Parser {
            tokens,
            pos: 0,
            operand_memo: HashMap::new(),
            condition_memo: HashMap::new(),
            primary_memo: HashMap::new(),
            arith_memo: HashMap::new(),
        }
    }

    pub fn kind_at(&self, index: usize) -> Tok {
        self.tokens.kind(index)
    }

    pub(crate) fn deeper(depth: u32) -> Result<u32, Fail> {
        if depth >= MAX_DEPTH {
            Err(Fail::TooDeep)
        } else {
            Ok(depth + 1)
        }
    }

    /// `path`: a name or `#name`, then `.name`, `.#name`, `.:value` or
    /// `[index]` steps.
    pub fn rec_path(&self, start: usize) -> Rec {
        if !matches!(self.kind_at(start), Tok::Id | Tok::NameSub) {
            return Rec::Dead(start);
        }
        let mut at = start + 1;
        loop {
            match self.kind_at(at) {
                Tok::Dot => match self.kind_at(at + 1) {
                    Tok::Id | Tok::NameSub | Tok::ValueSub => at += 2,
                    _ => return Rec::Dead(at + 1),
                },
                Tok::LBracket => {
                    if self.kind_at(at + 1) != Tok::Index {
                        return Rec::Dead(at + 1);
                    }
                    if self.kind_at(at + 2) != Tok::RBracket {
                        return Rec::Dead(at + 2);
                    }
                    at += 3;
                }
                _ => return Rec::Ok(at),
            }
        }
    }

    /// A comma-separated operand list and its closing `)`, from the first operand.
    fn rec_operand_list(&mut self, start: usize, depth: u32) -> Result<Rec, Fail> {
        let mut at = start;
        loop {
            match self.rec_operand(at, depth)? {
                Rec::Ok(end) => match self.kind_at(end) {
                    Tok::Comma => at = end + 1,
                    Tok::RParen => return Ok(Rec::Ok(end + 1)),
                    _ => return Ok(Rec::Dead(end)),
                },
                dead => return Ok(dead),
            }
        }
    }

    /// `name(operand, ...)`.
    pub fn rec_call(&mut self, start: usize, depth: u32) -> Result<Rec, Fail> {
        if self.kind_at(start) != Tok::Id {
            return Ok(Rec::Dead(start));
        }
        if self.kind_at(start + 1) != Tok::LParen {
            return Ok(Rec::Dead(start + 1));
        }
        let depth = Self::deeper(depth)?;
        self.rec_operand_list(start + 2, depth)
    }

    /// An operand: a path, a `:value`, a function call, or `( operand )`.
    pub fn rec_operand(&mut self, start: usize, depth: u32) -> Result<Rec, Fail> {
        if let Some(&rec) = self.operand_memo.get(&start) {
            return Ok(rec);
        }
        let rec = match self.kind_at(start) {
            Tok::Id if self.kind_at(start + 1) == Tok::LParen => self.rec_call(start, depth)?,
            Tok::Id | Tok::NameSub => self.rec_path(start),
            Tok::ValueSub => Rec::Ok(start + 1),
            Tok::LParen => match self.rec_operand(start + 1, Self::deeper(depth)?)? {
                Rec::Ok(end) if self.kind_at(end) == Tok::RParen => Rec::Ok(end + 1),
                Rec::Ok(end) => Rec::Dead(end),
                dead => dead,
            },
            _ => Rec::Dead(start),
        };
        self.operand_memo.insert(start, rec);
        Ok(rec)
    }

    fn follows_condition(&self, at: usize, end: CondEnd) -> bool {
        match self.kind_at(at) {
            Tok::And | Tok::Or => true,
            Tok::Eof => end == CondEnd::Eof,
            Tok::RParen => end == CondEnd::RParen,
            _ => false,
        }
    }

    /// What follows a completed alternative: `Ok` if its next token may follow
    /// a condition, else a failure on that token.
    fn then_follow(&self, rec: Rec, end: CondEnd) -> Rec {
        match rec {
            Rec::Ok(at) if !self.follows_condition(at, end) => Rec::Dead(at),
            other => other,
        }
    }

    /// Chooses between a condition's primary alternatives at `start` (after
    /// any `NOT`s).
    pub fn predict_primary(
        &mut self,
        start: usize,
        end: CondEnd,
        depth: u32,
    ) -> Result<Choice<PrimaryAlt>, Fail> {
        if let Some(&choice) = self.primary_memo.get(&(start, end)) {
            return Ok(choice);
        }
        let mut alternatives = Vec::with_capacity(5);
        // Comparison, IN and BETWEEN share their first operand.
        match self.rec_operand(start, depth)? {
            Rec::Dead(at) => {
                // All three fail together, so none of them is chosen alone.
                for alt in [PrimaryAlt::Compare, PrimaryAlt::In, PrimaryAlt::Between] {
                    alternatives.push((alt, Rec::Dead(at)));
                }
            }
            Rec::Ok(after) => {
                let kind = self.kind_at(after);
                let (alt, rec) = if is_comparator(kind) {
                    (PrimaryAlt::Compare, self.rec_operand(after + 1, depth)?)
                } else if kind == Tok::In {
                    let rec = if self.kind_at(after + 1) == Tok::LParen {
                        self.rec_operand_list(after + 2, Self::deeper(depth)?)?
                    } else {
                        Rec::Dead(after + 1)
                    };
                    (PrimaryAlt::In, rec)
                } else if kind == Tok::Between {
                    let rec = match self.rec_operand(after + 1, depth)? {
                        Rec::Ok(low_end) if self.kind_at(low_end) == Tok::And => {
                            self.rec_operand(low_end + 1, depth)?
                        }
                        Rec::Ok(low_end) => Rec::Dead(low_end),
                        dead => dead,
                    };
                    (PrimaryAlt::Between, rec)
                } else {
                    (PrimaryAlt::Compare, Rec::Dead(after))
                };
                alternatives.push((alt, self.then_follow(rec, end)));
                // The other two failed on the token after the operand.
                for other in [PrimaryAlt::Compare, PrimaryAlt::In, PrimaryAlt::Between] {
                    if other != alt {
                        alternatives.push((other, Rec::Dead(after)));
                    }
                }
            }
        }
        let function = self.rec_call(start, depth)?;
        alternatives.push((PrimaryAlt::Function, self.then_follow(function, end)));
        let grouping = if self.kind_at(start) == Tok::LParen {
            match self.rec_condition(start + 1, CondEnd::RParen, Self::deeper(depth)?)? {
                Rec::Ok(close) if self.kind_at(close) == Tok::RParen => {
                    self.then_follow(Rec::Ok(close + 1), end)
                }
                Rec::Ok(close) => Rec::Dead(close),
                dead => dead,
            }
        } else {
            Rec::Dead(start)
        };
        alternatives.push((PrimaryAlt::Grouping, grouping));
        alternatives.sort_by_key(|&(alt, _)| alt);
        let choice = choose(&alternatives);
        self.primary_memo.insert((start, end), choice);
        Ok(choice)
    }

    /// A whole condition from `start`: primaries (each after any `NOT`s)
    /// joined by `AND` and `OR`.
    pub fn rec_condition(&mut self, start: usize, end: CondEnd, depth: u32) -> Result<Rec, Fail> {
        if let Some(&rec) = self.condition_memo.get(&(start, end)) {
            return Ok(rec);
        }
        let mut at = start;
        let rec = loop {
            while self.kind_at(at) == Tok::Not {
                at += 1;
            }
            match self.predict_primary(at, end, depth)?.1 {
                Rec::Ok(after) if matches!(self.kind_at(after), Tok::And | Tok::Or) => {
                    at = after + 1;
                }
                other => break other,
            }
        };
        self.condition_memo.insert((start, end), rec);
        Ok(rec)
    }

    fn follows_arith(&self, at: usize, end: ArithEnd) -> bool {
        match end {
            ArithEnd::Update => follows_update_value(self.kind_at(at)),
            ArithEnd::RParen => self.kind_at(at) == Tok::RParen,
        }
    }

    /// Chooses between `a + b` / `a - b` and `( arithmetic )` at `start`.
    pub fn predict_arith(
        &mut self,
        start: usize,
        end: ArithEnd,
        depth: u32,
    ) -> Result<Choice<ArithAlt>, Fail> {
        if let Some(&choice) = self.arith_memo.get(&(start, end)) {
            return Ok(choice);
        }
        let plus_minus = match self.rec_operand(start, depth)? {
            Rec::Ok(op) if matches!(self.kind_at(op), Tok::Plus | Tok::Minus) => {
                self.rec_operand(op + 1, depth)?
            }
            Rec::Ok(op) => Rec::Dead(op),
            dead => dead,
        };
        let parens = if self.kind_at(start) == Tok::LParen {
            match self
                .predict_arith(start + 1, ArithEnd::RParen, Self::deeper(depth)?)?
                .1
            {
                Rec::Ok(close) if self.kind_at(close) == Tok::RParen => Rec::Ok(close + 1),
                Rec::Ok(close) => Rec::Dead(close),
                dead => dead,
            }
        } else {
            Rec::Dead(start)
        };
        let follow = |rec: Rec| match rec {
            Rec::Ok(at) if !self.follows_arith(at, end) => Rec::Dead(at),
            other => other,
        };
        let alternatives = [
            (ArithAlt::PlusMinus, follow(plus_minus)),
            (ArithAlt::Parens, follow(parens)),
        ];
        let choice = choose(&alternatives);
        self.arith_memo.insert((start, end), choice);
        Ok(choice)
    }

    /// Chooses between an operand and arithmetic as the value of a SET action.
    pub fn predict_set_value(&mut self, start: usize) -> Result<Choice<SetValueAlt>, Fail> {
        let operand = match self.rec_operand(start, 0)? {
            Rec::Ok(at) if !follows_update_value(self.kind_at(at)) => Rec::Dead(at),
            other => other,
        };
        let arithmetic = self.predict_arith(start, ArithEnd::Update, 0)?.1;
        Ok(choose(&[
            (SetValueAlt::Operand, operand),
            (SetValueAlt::Arithmetic, arithmetic),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    #[test]
    fn choose_prefers_completion_then_the_last_lone_failure() {
        assert_eq!(
            choose(&[(1, Rec::Dead(3)), (2, Rec::Ok(5))]),
            (Some(2), Rec::Ok(5))
        );
        assert_eq!(
            choose(&[(1, Rec::Dead(3)), (2, Rec::Dead(4))]),
            (Some(2), Rec::Dead(4))
        );
        assert_eq!(
            choose(&[(1, Rec::Dead(4)), (2, Rec::Dead(4))]),
            (None, Rec::Dead(4))
        );
        assert_eq!(
            choose(&[(1, Rec::Ok(4)), (2, Rec::Ok(4))]),
            (Some(1), Rec::Ok(4))
        );
    }

    #[test]
    fn primary_lookahead() {
        let tokens = tokenize("((a)) = b");
        let mut parser = Parser::new(&tokens);
        assert_eq!(
            parser.predict_primary(0, CondEnd::Eof, 0),
            Ok((Some(PrimaryAlt::Compare), Rec::Ok(7)))
        );
        let tokens = tokenize("((a))");
        let mut parser = Parser::new(&tokens);
        assert_eq!(
            parser.predict_primary(0, CondEnd::Eof, 0),
            Ok((None, Rec::Dead(5)))
        );
        let tokens = tokenize("(a = b) AND c");
        let mut parser = Parser::new(&tokens);
        assert_eq!(
            parser.predict_primary(0, CondEnd::Eof, 0),
            Ok((Some(PrimaryAlt::Grouping), Rec::Ok(5)))
        );
    }
}
