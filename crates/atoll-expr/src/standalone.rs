//! Expressions parsed without a request, for tools and tests: every check
//! that does not need `ExpressionAttributeNames` or
//! `ExpressionAttributeValues` (syntax, reserved words, functions, operand
//! counts, document-path operands, operators). Placeholders are taken as
//! defined and values as of any type; paths are compared as written, so
//! `#a, #b` do not overlap here even if both name `a`. Requests go through
//! [`crate::validate_expressions`] instead, which checks everything.

use crate::ExprError;
use crate::ast::{Condition, Projection, Update};
use crate::kind::ExpressionKind;
use crate::parser::{
    lower, parse_condition_expression, parse_projection_expression, parse_update_expression,
};
use crate::validate::Validator;

fn unsupported(kind: ExpressionKind) -> ExprError {
    kind.invalid("The expression cannot be evaluated without its values;")
}

/// Parses a condition, filter or key-condition expression into the AST.
///
/// `size()` of a value and `attribute_type()` of something other than a
/// path need the request's values; they are refused here.
pub fn parse_condition(text: &str, kind: ExpressionKind) -> Result<Condition, ExprError> {
    let parsed = parse_condition_expression(text, kind)?;
    Validator::lenient()
        .condition(&parsed.tree)
        .map_err(|reason| kind.invalid(reason))?;
    lower::condition(&parsed.tree, None).ok_or_else(|| unsupported(kind))
}

/// Parses an update expression into the AST.
pub fn parse_update(text: &str) -> Result<Update, ExprError> {
    let kind = ExpressionKind::Update;
    let parsed = parse_update_expression(text)?;
    Validator::lenient()
        .update(&parsed.tree)
        .map_err(|reason| kind.invalid(reason))?;
    lower::update(&parsed.tree).ok_or_else(|| unsupported(kind))
}

/// Parses a projection expression into the AST.
pub fn parse_projection(text: &str) -> Result<Projection, ExprError> {
    let kind = ExpressionKind::Projection;
    let parsed = parse_projection_expression(text)?;
    Validator::lenient()
        .projection(&parsed.paths)
        .map_err(|reason| kind.invalid(reason))?;
    lower::projection(&parsed.paths).ok_or_else(|| unsupported(kind))
}
