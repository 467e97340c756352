//! Parsing of condition (filter, key condition), update and projection
//! expressions into a syntax tree, with every check DynamoDB makes before it
//! looks at the request's names and values.
//!
//! In DynamoDB's order: the empty expression (`The expression can not be
//! empty;`), the size limit (4096 UTF-16 code units: `Expression size has
//! exceeded the maximum allowed size;`, condition and filter expressions
//! adding ` expression size: <n>`), syntax errors and redundant
//! parentheses, whichever the parser meets first (module `grammar`), then the
//! checks of the tree walk (module `walk`). The result is independent of the
//! request, so it is cached by text ([`crate::ExpressionCache`]); the
//! request's placeholders are checked by [`crate::validate_expressions`].

mod grammar;
pub(crate) mod lower;
pub(crate) mod predict;
pub(crate) mod tree;
mod walk;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::ExprError;
use crate::ast::{Comparator, Condition, Projection, Update};
use crate::kind::ExpressionKind;
use crate::lexer::{Tok, tokenize, utf16_len};
use predict::Parser;
use tree::{CondNode, PathNode, UpdateNode};

/// The longest expression, in UTF-16 code units.
pub const MAX_EXPRESSION_LENGTH: usize = 4096;

/// Why parsing stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    /// A syntax error at this token.
    Syntax(usize),
    /// `((...))`.
    Redundant,
    /// Nested beyond [`predict::MAX_DEPTH`].
    TooDeep,
}

/// The comparison as DynamoDB writes it.
pub(crate) fn comparator_symbol(comparator: Comparator) -> &'static str {
    match comparator {
        Comparator::Eq => "=",
        Comparator::Ne => "<>",
        Comparator::Lt => "<",
        Comparator::Le => "<=",
        Comparator::Gt => ">",
        Comparator::Ge => ">=",
    }
}

/// The most operators an expression may hold.
pub(crate) const MAX_OPERATORS: usize = 300;

fn operand_operators(node: &tree::OperandNode) -> usize {
    match node {
        tree::OperandNode::Call(call) => 1 + call.args.iter().map(operand_operators).sum::<usize>(),
        _ => 0,
    }
}

/// How many operators DynamoDB counts in a condition.
fn operator_count(node: &CondNode) -> usize {
    match node {
        CondNode::Compare(_, left, right) => 1 + operand_operators(left) + operand_operators(right),
        CondNode::In(left, list) => {
            1 + operand_operators(left) + list.iter().map(operand_operators).sum::<usize>()
        }
        CondNode::Between(a, b, c) => {
            1 + operand_operators(a) + operand_operators(b) + operand_operators(c)
        }
        CondNode::Call(call) => 1 + call.args.iter().map(operand_operators).sum::<usize>(),
        CondNode::Not(count, inner) => *count as usize + operator_count(inner),
        CondNode::And(items) | CondNode::Or(items) => {
            items.len().saturating_sub(1) + items.iter().map(operator_count).sum::<usize>()
        }
    }
}

/// A condition, filter or key-condition expression that parsed.
#[derive(Debug)]
pub struct ParsedCondition {
    pub(crate) kind: ExpressionKind,
    pub(crate) length: usize,
    pub(crate) tree: CondNode,
    pub(crate) ast: Option<Arc<Condition>>,
}

/// An update expression that parsed.
#[derive(Debug)]
pub struct ParsedUpdate {
    pub(crate) length: usize,
    pub(crate) tree: UpdateNode,
    pub(crate) ast: Option<Arc<Update>>,
}

/// A projection expression that parsed.
#[derive(Debug)]
pub struct ParsedProjection {
    pub(crate) length: usize,
    pub(crate) paths: Vec<PathNode>,
    pub(crate) ast: Option<Arc<Projection>>,
}

impl ParsedCondition {
    /// The parameter the expression came from.
    pub fn kind(&self) -> ExpressionKind {
        self.kind
    }
}

/// The checks every expression gets before parsing.
fn check_text(text: &str, kind: ExpressionKind) -> Result<usize, ExprError> {
    if text.is_empty() {
        return Err(kind.invalid("The expression can not be empty;"));
    }
    let length = utf16_len(text);
    if length > MAX_EXPRESSION_LENGTH {
        // Verified (captured from DynamoDB): only condition and filter
        // expressions report their size.
        let suffix = match kind {
            ExpressionKind::Condition | ExpressionKind::Filter => {
                format!(" expression size: {length}")
            }
            _ => String::new(),
        };
        return Err(kind.invalid(format!(
            "Expression size has exceeded the maximum allowed size;{suffix}"
        )));
    }
    Ok(length)
}

fn parse_error(fail: Fail, tokens: &crate::lexer::Tokens, kind: ExpressionKind) -> ExprError {
    match fail {
        Fail::Syntax(at) => kind.invalid(tokens.syntax_error(at)),
        Fail::Redundant => kind.invalid("The expression has redundant parentheses;"),
        // Atoll's own: DynamoDB's parser has no documented bound (deep
        // nesting there ends in an internal failure).
        Fail::TooDeep => kind.invalid("The expression has too many nested levels;"),
    }
}

/// Parses a condition, filter or key-condition expression (`kind` names the
/// parameter in messages; an update or projection kind is treated as a
/// condition).
pub fn parse_condition_expression(
    text: &str,
    kind: ExpressionKind,
) -> Result<ParsedCondition, ExprError> {
    let length = check_text(text, kind)?;
    let tokens = tokenize(text);
    let tree = Parser::new(&tokens)
        .condition_expression()
        .map_err(|fail| parse_error(fail, &tokens, kind))?;
    walk::walk_condition(&tree).map_err(|reason| kind.invalid(reason))?;
    // A tree over the operator limit never passes validation; not lowering
    // it keeps every AST within that many levels.
    let ast = (operator_count(&tree) <= MAX_OPERATORS)
        .then(|| lower::condition(&tree, None).map(Arc::new))
        .flatten();
    Ok(ParsedCondition {
        kind,
        length,
        tree,
        ast,
    })
}

/// Parses an update expression.
pub fn parse_update_expression(text: &str) -> Result<ParsedUpdate, ExprError> {
    let kind = ExpressionKind::Update;
    let length = check_text(text, kind)?;
    let tokens = tokenize(text);
    let tree = Parser::new(&tokens)
        .update_expression()
        .map_err(|fail| parse_error(fail, &tokens, kind))?;
    walk::walk_update(&tree).map_err(|reason| kind.invalid(reason))?;
    let ast = lower::update(&tree).map(Arc::new);
    Ok(ParsedUpdate { length, tree, ast })
}

/// Parses a projection expression.
pub fn parse_projection_expression(text: &str) -> Result<ParsedProjection, ExprError> {
    let kind = ExpressionKind::Projection;
    let length = check_text(text, kind)?;
    let tokens = tokenize(text);
    let paths = Parser::new(&tokens)
        .projection_expression()
        .map_err(|fail| parse_error(fail, &tokens, kind))?;
    walk::walk_projection(&paths).map_err(|reason| kind.invalid(reason))?;
    let ast = lower::projection(&paths).map(Arc::new);
    Ok(ParsedProjection { length, paths, ast })
}

/// Whether `key` is a valid `ExpressionAttributeNames` key (`#name`) or, with
/// `value`, a valid `ExpressionAttributeValues` key (`:name`): exactly one
/// such token, surrounding whitespace allowed (as DynamoDB's lexer has it).
pub(crate) fn is_placeholder_key(key: &str, value: bool) -> bool {
    let tokens = tokenize(key);
    let wanted = if value { Tok::ValueSub } else { Tok::NameSub };
    tokens.kind(0) == wanted && tokens.kind(1) == Tok::Eof
}
