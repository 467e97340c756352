//! The grammar, parsed after lookahead has settled each decision.
//!
//! ```text
//! condition  := primary ((AND | OR) primary)*        -- NOT > AND > OR
//! primary    := NOT primary
//!             | operand comparator operand
//!             | operand IN ( operand (, operand)* )
//!             | operand BETWEEN operand AND operand
//!             | function
//!             | ( condition )
//! operand    := path | :value | function | ( operand )
//! function   := name ( operand (, operand)* )
//! path       := (name | #name) ( .name | .#name | .:value | [index] )*
//! update     := (SET set (, set)* | REMOVE path (, path)*
//!               | ADD path :value (, ...)* | DELETE path :value (, ...)*)+
//! set        := path = (operand | arithmetic)
//! arithmetic := operand (+ | -) operand | ( arithmetic )
//! projection := path (, path)*
//! ```
//!
//! A parenthesized group whose content is itself a parenthesized group of
//! the same kind — `((a = b))`, `((a))`, `((a + b))` — fails at once with
//! "The expression has redundant parentheses;", as DynamoDB's parser does
//! when it closes the outer group.

use super::Fail;
use super::predict::{ArithAlt, ArithEnd, CondEnd, Parser, PrimaryAlt, Rec, SetValueAlt};
use super::tree::{
    ActionNode, CallNode, CondNode, OperandNode, PathNode, Section, SetValueNode, Step, UpdateNode,
};
use crate::ast::Comparator;
use crate::lexer::Tok;

type Parsed<T> = Result<T, Fail>;

fn comparator(kind: Tok) -> Option<Comparator> {
    Some(match kind {
        Tok::Eq => Comparator::Eq,
        Tok::Ne => Comparator::Ne,
        Tok::Lt => Comparator::Lt,
        Tok::Le => Comparator::Le,
        Tok::Gt => Comparator::Gt,
        Tok::Ge => Comparator::Ge,
        _ => return None,
    })
}

/// One condition, or the chain of several under `AND` or `OR`.
fn chain(mut items: Vec<CondNode>, join: fn(Vec<CondNode>) -> CondNode) -> CondNode {
    match (items.pop(), items.is_empty()) {
        (Some(only), true) => only,
        (Some(last), false) => {
            items.push(last);
            join(items)
        }
        (None, _) => join(items),
    }
}

fn dead_at(rec: Rec) -> usize {
    match rec {
        Rec::Ok(at) | Rec::Dead(at) => at,
    }
}

impl Parser<'_, '_> {
    fn kind(&self) -> Tok {
        self.kind_at(self.pos)
    }

    fn text(&self) -> String {
        self.tokens.text_of(self.pos).to_owned()
    }

    fn expect(&mut self, kind: Tok) -> Parsed<()> {
        if self.kind() == kind {
            self.pos += 1;
            Ok(())
        } else {
            Err(Fail::Syntax(self.pos))
        }
    }

    /// A whole condition expression.
    pub fn condition_expression(&mut self) -> Parsed<CondNode> {
        let (condition, _) = self.condition(CondEnd::Eof, 0)?;
        self.expect(Tok::Eof)?;
        Ok(condition)
    }

    /// `condition`; the flag tells whether it is exactly one `( ... )` group.
    fn condition(&mut self, end: CondEnd, depth: u32) -> Parsed<(CondNode, bool)> {
        let mut alternatives = Vec::new();
        let mut single = true;
        let mut grouped;
        loop {
            let mut conjuncts = Vec::new();
            loop {
                let (primary, is_group) = self.negation(end, depth)?;
                grouped = is_group;
                conjuncts.push(primary);
                if self.kind() != Tok::And {
                    break;
                }
                single = false;
                self.pos += 1;
            }
            alternatives.push(chain(conjuncts, CondNode::And));
            if self.kind() != Tok::Or {
                break;
            }
            single = false;
            self.pos += 1;
        }
        Ok((chain(alternatives, CondNode::Or), single && grouped))
    }

    /// `NOT* primary`.
    fn negation(&mut self, end: CondEnd, depth: u32) -> Parsed<(CondNode, bool)> {
        let mut count = 0u32;
        while self.kind() == Tok::Not {
            self.pos += 1;
            count = count.saturating_add(1);
        }
        let (primary, grouped) = self.primary(end, depth)?;
        if count == 0 {
            Ok((primary, grouped))
        } else {
            Ok((CondNode::Not(count, Box::new(primary)), false))
        }
    }

    fn primary(&mut self, end: CondEnd, depth: u32) -> Parsed<(CondNode, bool)> {
        let (choice, rec) = self.predict_primary(self.pos, end, depth)?;
        let Some(alt) = choice else {
            return Err(Fail::Syntax(dead_at(rec)));
        };
        match alt {
            PrimaryAlt::Compare => {
                let (left, _) = self.operand(depth)?;
                let Some(op) = comparator(self.kind()) else {
                    return Err(Fail::Syntax(self.pos));
                };
                self.pos += 1;
                let (right, _) = self.operand(depth)?;
                Ok((CondNode::Compare(op, left, right), false))
            }
            PrimaryAlt::In => {
                let (left, _) = self.operand(depth)?;
                self.expect(Tok::In)?;
                self.expect(Tok::LParen)?;
                let list = self.operand_list(Self::deeper(depth)?)?;
                Ok((CondNode::In(left, list), false))
            }
            PrimaryAlt::Between => {
                let (operand, _) = self.operand(depth)?;
                self.expect(Tok::Between)?;
                let (low, _) = self.operand(depth)?;
                self.expect(Tok::And)?;
                let (high, _) = self.operand(depth)?;
                Ok((CondNode::Between(operand, low, high), false))
            }
            PrimaryAlt::Function => Ok((CondNode::Call(self.call(depth)?), false)),
            PrimaryAlt::Grouping => {
                self.expect(Tok::LParen)?;
                let (inner, grouped) = self.condition(CondEnd::RParen, Self::deeper(depth)?)?;
                self.expect(Tok::RParen)?;
                if grouped {
                    return Err(Fail::Redundant);
                }
                Ok((inner, true))
            }
        }
    }

    /// Operands separated by commas, through the closing `)`.
    fn operand_list(&mut self, depth: u32) -> Parsed<Vec<OperandNode>> {
        let mut list = Vec::new();
        loop {
            list.push(self.operand(depth)?.0);
            match self.kind() {
                Tok::Comma => self.pos += 1,
                Tok::RParen => {
                    self.pos += 1;
                    return Ok(list);
                }
                _ => return Err(Fail::Syntax(self.pos)),
            }
        }
    }

    /// `name ( operands )`.
    fn call(&mut self, depth: u32) -> Parsed<CallNode> {
        let name = self.text();
        self.expect(Tok::Id)?;
        self.expect(Tok::LParen)?;
        let args = self.operand_list(Self::deeper(depth)?)?;
        Ok(CallNode { name, args })
    }

    /// An operand; the flag tells whether it is a `( operand )` group.
    pub fn operand(&mut self, depth: u32) -> Parsed<(OperandNode, bool)> {
        match self.kind() {
            Tok::Id if self.kind_at(self.pos + 1) == Tok::LParen => {
                Ok((OperandNode::Call(self.call(depth)?), false))
            }
            Tok::Id | Tok::NameSub => Ok((OperandNode::Path(self.path()?), false)),
            Tok::ValueSub => {
                let value = self.text();
                self.pos += 1;
                Ok((OperandNode::Value(value), false))
            }
            Tok::LParen => {
                self.pos += 1;
                let (inner, grouped) = self.operand(Self::deeper(depth)?)?;
                self.expect(Tok::RParen)?;
                if grouped {
                    return Err(Fail::Redundant);
                }
                Ok((inner, true))
            }
            _ => Err(Fail::Syntax(self.pos)),
        }
    }

    /// A document path.
    pub fn path(&mut self) -> Parsed<PathNode> {
        if !matches!(self.kind(), Tok::Id | Tok::NameSub) {
            return Err(Fail::Syntax(self.pos));
        }
        let mut steps = vec![Step::Name(self.text())];
        self.pos += 1;
        loop {
            match self.kind() {
                Tok::Dot => {
                    self.pos += 1;
                    match self.kind() {
                        Tok::Id | Tok::NameSub => steps.push(Step::Name(self.text())),
                        Tok::ValueSub => steps.push(Step::ValueKey(self.text())),
                        _ => return Err(Fail::Syntax(self.pos)),
                    }
                    self.pos += 1;
                }
                Tok::LBracket => {
                    self.pos += 1;
                    let digits = self.text();
                    self.expect(Tok::Index)?;
                    self.expect(Tok::RBracket)?;
                    steps.push(Step::Index(digits));
                }
                _ => return Ok(PathNode { steps }),
            }
        }
    }

    /// A whole projection expression.
    pub fn projection_expression(&mut self) -> Parsed<Vec<PathNode>> {
        let mut paths = vec![self.path()?];
        while self.kind() == Tok::Comma {
            self.pos += 1;
            paths.push(self.path()?);
        }
        self.expect(Tok::Eof)?;
        Ok(paths)
    }

    /// A whole update expression.
    pub fn update_expression(&mut self) -> Parsed<UpdateNode> {
        let mut sections = Vec::new();
        loop {
            let section = match self.kind() {
                Tok::Set => Section::Set,
                Tok::Remove => Section::Remove,
                Tok::Add => Section::Add,
                Tok::Delete => Section::Delete,
                _ if sections.is_empty() => return Err(Fail::Syntax(self.pos)),
                _ => break,
            };
            self.pos += 1;
            let mut actions = Vec::new();
            loop {
                actions.push(self.action(section)?);
                if self.kind() != Tok::Comma {
                    break;
                }
                self.pos += 1;
            }
            sections.push((section, actions));
        }
        self.expect(Tok::Eof)?;
        Ok(UpdateNode { sections })
    }

    fn action(&mut self, section: Section) -> Parsed<ActionNode> {
        let path = self.path()?;
        match section {
            Section::Set => {
                self.expect(Tok::Eq)?;
                Ok(ActionNode::Set(path, self.set_value()?))
            }
            Section::Remove => Ok(ActionNode::Remove(path)),
            Section::Add | Section::Delete => {
                let value = self.text();
                self.expect(Tok::ValueSub)?;
                Ok(if section == Section::Add {
                    ActionNode::Add(path, value)
                } else {
                    ActionNode::Delete(path, value)
                })
            }
        }
    }

    fn set_value(&mut self) -> Parsed<SetValueNode> {
        let (choice, rec) = self.predict_set_value(self.pos)?;
        match choice {
            None => Err(Fail::Syntax(dead_at(rec))),
            Some(SetValueAlt::Operand) => Ok(SetValueNode::Operand(self.operand(0)?.0)),
            Some(SetValueAlt::Arithmetic) => Ok(self.arithmetic(ArithEnd::Update, 0)?.0),
        }
    }

    /// `a + b`, `a - b` or `( arithmetic )`; the flag tells whether it is a group.
    fn arithmetic(&mut self, end: ArithEnd, depth: u32) -> Parsed<(SetValueNode, bool)> {
        let (choice, rec) = self.predict_arith(self.pos, end, depth)?;
        match choice {
            None => Err(Fail::Syntax(dead_at(rec))),
            Some(ArithAlt::PlusMinus) => {
                let (left, _) = self.operand(depth)?;
                let plus = match self.kind() {
                    Tok::Plus => true,
                    Tok::Minus => false,
                    _ => return Err(Fail::Syntax(self.pos)),
                };
                self.pos += 1;
                let (right, _) = self.operand(depth)?;
                Ok((SetValueNode::Arithmetic { left, plus, right }, false))
            }
            Some(ArithAlt::Parens) => {
                self.expect(Tok::LParen)?;
                let (inner, grouped) = self.arithmetic(ArithEnd::RParen, Self::deeper(depth)?)?;
                self.expect(Tok::RParen)?;
                if grouped {
                    return Err(Fail::Redundant);
                }
                Ok((inner, true))
            }
        }
    }
}
