//! DynamoDB's expression languages.
//!
//! Condition, filter, key-condition, projection and update expressions are
//! parsed into one AST ([`ast`]); the legacy parameters (`Expected`,
//! `AttributeUpdates`, `KeyConditions`, `QueryFilter`, `ScanFilter`,
//! `AttributesToGet`) are translated onto the same AST, so one evaluator serves
//! both. Parsed expressions keep their `#name` and `:value` placeholders and are
//! cached by text; an [`Env`] resolves placeholders at evaluation time.
//!
//! Written by hand: no parser crate reproduces DynamoDB's grammar, its
//! reserved words and its exact error texts, which clients see.

pub mod ast;
mod error;
pub mod eval;
pub mod legacy;
pub mod projection;
pub mod update;

// Parsing and request-level validation of the expression languages.
mod cache;
mod java;
pub mod key_condition;
mod kind;
mod lexer;
pub mod parser;
mod references;
mod reserved;
mod standalone;
mod validate;

pub use cache::ExpressionCache;
pub use key_condition::{KeyCondition, extract_key_conditions, key_condition};
pub use kind::ExpressionKind;
pub use parser::{
    ParsedCondition, ParsedProjection, ParsedUpdate, parse_condition_expression,
    parse_projection_expression, parse_update_expression,
};
pub use references::{
    ExpressionRequest, References, ValidatedCondition, ValidatedExpressions, ValidatedProjection,
    ValidatedUpdate, check_attribute_maps, check_references, validate_expressions,
};
pub use standalone::{parse_condition, parse_projection, parse_update};

pub use error::ExprError;
pub use eval::{check_condition_operands, evaluate, resolve};
pub use projection::project;
pub use update::{
    apply_update, apply_update_to_new_item, check_update_operands, creates_missing_item,
    updated_attributes,
};

use std::collections::HashMap;

use atoll_model::AttributeValue;

/// What an expression's placeholders stand for in one request.
#[derive(Clone, Copy, Debug)]
pub struct Env<'a> {
    /// `ExpressionAttributeNames`: `#n` → attribute name.
    pub names: &'a HashMap<String, String>,
    /// `ExpressionAttributeValues`: `:v` → value.
    pub values: &'a HashMap<String, AttributeValue>,
}
