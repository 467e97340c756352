//! A request's expressions checked together against its
//! `ExpressionAttributeNames` and `ExpressionAttributeValues`.
//!
//! DynamoDB's order, which the API layer follows by calling, in turn:
//!
//! 1. [`check_attribute_maps`]: `ExpressionAttributeNames must not be
//!    empty`, then each name key (`ExpressionAttributeNames contains invalid
//!    key: Syntax error; key: "a"`), then the same for the values map;
//! 2. the API's own check of each value (`ExpressionAttributeValues contains
//!    invalid value: <why> for key :v`);
//! 3. [`validate_expressions`]: each name (`ExpressionAttributeNames contains
//!    invalid value: Empty attribute name for key #n`); each expression,
//!    parsed (or taken from the cache) and checked against the maps
//!    ([`crate::validate`]) in the order UpdateExpression,
//!    ConditionExpression, KeyConditionExpression, FilterExpression,
//!    ProjectionExpression; the 1 MB limit on an expression with its
//!    placeholders substituted; then `Value provided in
//!    ExpressionAttributeNames unused in expressions: keys: {#a, #b}` and
//!    the same for values (keys in the order of a Java `HashSet`).
//!
//! [`check_references`] runs 1 and 3 for callers with nothing to do between.
//!
//! unverified: KeyConditionExpression before FilterExpression follows
//! dynalite's tests (made against DynamoDB); DynamoDB Local checks the
//! filter and the projection first.

use std::collections::HashMap;
use std::sync::Arc;

use atoll_model::AttributeValue;

use crate::ExprError;
use crate::ast::{Condition, Projection, Update};
use crate::cache::ExpressionCache;
use crate::java;
use crate::kind::ExpressionKind;
use crate::lexer::utf16_len;
use crate::parser::{self, ParsedCondition, ParsedProjection, ParsedUpdate, lower};
use crate::validate::Validator;

/// The longest placeholder key, in UTF-16 code units.
const MAX_KEY_LENGTH: usize = 255;

/// The longest attribute name, in UTF-8 bytes.
const MAX_NAME_BYTES: usize = atoll_model::MAX_ATTRIBUTE_NAME_BYTES;

/// The limit on an expression's length plus the size of every placeholder
/// use (DynamoDB Local's `MAX_EXPRESSION_TREE_SIZE`).
const MAX_SUBSTITUTED_SIZE: usize = 1024 * 1024;

/// A request's expressions and placeholder maps, as received.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExpressionRequest<'a> {
    /// `UpdateExpression`.
    pub update: Option<&'a str>,
    /// `ConditionExpression`.
    pub condition: Option<&'a str>,
    /// `KeyConditionExpression`.
    pub key_condition: Option<&'a str>,
    /// `FilterExpression`.
    pub filter: Option<&'a str>,
    /// `ProjectionExpression`.
    pub projection: Option<&'a str>,
    /// `ExpressionAttributeNames`.
    pub names: Option<&'a HashMap<String, String>>,
    /// `ExpressionAttributeValues`.
    pub values: Option<&'a HashMap<String, AttributeValue>>,
}

/// What a checked expression references, with its names resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    /// The top-level attributes used, each once.
    pub top_level: Vec<String>,
    /// The top-level attributes reached into (`a.b`, `a[0]`).
    pub nested_top_level: Vec<String>,
}

/// A condition, filter or key condition that passed every check.
#[derive(Clone, Debug)]
pub struct ValidatedCondition {
    ast: Arc<Condition>,
    /// What it references.
    pub references: References,
}

impl ValidatedCondition {
    /// The condition.
    pub fn condition(&self) -> &Condition {
        &self.ast
    }

    /// The condition, shared.
    pub fn shared(&self) -> Arc<Condition> {
        Arc::clone(&self.ast)
    }
}

/// An update that passed every check.
#[derive(Clone, Debug)]
pub struct ValidatedUpdate {
    ast: Arc<Update>,
    /// What it references (its targets and operands).
    pub references: References,
}

impl ValidatedUpdate {
    /// The update.
    pub fn update(&self) -> &Update {
        &self.ast
    }

    /// The update, shared.
    pub fn shared(&self) -> Arc<Update> {
        Arc::clone(&self.ast)
    }
}

/// A projection that passed every check.
#[derive(Clone, Debug)]
pub struct ValidatedProjection {
    ast: Arc<Projection>,
    /// What it references.
    pub references: References,
}

impl ValidatedProjection {
    /// The projection.
    pub fn projection(&self) -> &Projection {
        &self.ast
    }

    /// The projection, shared.
    pub fn shared(&self) -> Arc<Projection> {
        Arc::clone(&self.ast)
    }
}

/// A request's expressions, each present one checked.
#[derive(Clone, Debug, Default)]
pub struct ValidatedExpressions {
    /// `UpdateExpression`.
    pub update: Option<ValidatedUpdate>,
    /// `ConditionExpression`.
    pub condition: Option<ValidatedCondition>,
    /// `KeyConditionExpression`.
    pub key_condition: Option<ValidatedCondition>,
    /// `FilterExpression`.
    pub filter: Option<ValidatedCondition>,
    /// `ProjectionExpression`.
    pub projection: Option<ValidatedProjection>,
}

/// Map keys in the order DynamoDB meets them (a Java `HashMap`'s order;
/// unverified for maps whose keys share a bucket).
fn java_order<'k>(keys: impl Iterator<Item = &'k String>) -> Vec<&'k String> {
    let mut keys: Vec<&String> = keys.collect();
    keys.sort();
    let capacity = java::grown_capacity(keys.len());
    keys.sort_by_key(|key| java::bucket(java::string_hash(key), capacity));
    keys
}

fn check_keys<'k>(
    parameter: &str,
    keys: impl Iterator<Item = &'k String>,
    value: bool,
) -> Result<(), ExprError> {
    for key in java_order(keys) {
        let invalid = |reason: String| {
            ExprError::validation(format!("{parameter} contains invalid key: {reason}"))
        };
        if key.is_empty() {
            return Err(invalid(
                "The expression attribute map contains an empty key;".to_owned(),
            ));
        }
        let length = utf16_len(key);
        if length > MAX_KEY_LENGTH {
            // DynamoDB Local reports the length for names only.
            let size = if value {
                String::new()
            } else {
                format!(" size of key: {length}")
            };
            return Err(invalid(format!(
                "The expression attribute map contains a key that is too long;{size}"
            )));
        }
        if !parser::is_placeholder_key(key, value) {
            return Err(invalid(format!("Syntax error; key: \"{key}\"")));
        }
    }
    Ok(())
}

/// Step 1: the maps are not empty and their keys are placeholders.
pub fn check_attribute_maps(
    names: Option<&HashMap<String, String>>,
    values: Option<&HashMap<String, AttributeValue>>,
) -> Result<(), ExprError> {
    if let Some(names) = names {
        if names.is_empty() {
            return Err(ExprError::validation(
                "ExpressionAttributeNames must not be empty",
            ));
        }
        check_keys("ExpressionAttributeNames", names.keys(), false)?;
    }
    if let Some(values) = values {
        if values.is_empty() {
            return Err(ExprError::validation(
                "ExpressionAttributeValues must not be empty",
            ));
        }
        check_keys("ExpressionAttributeValues", values.keys(), true)?;
    }
    Ok(())
}

/// The names of `ExpressionAttributeNames` are attribute names.
fn check_attribute_names(names: Option<&HashMap<String, String>>) -> Result<(), ExprError> {
    let Some(names) = names else {
        return Ok(());
    };
    for key in java_order(names.keys()) {
        let name = names.get(key).map_or("", String::as_str);
        let reason = if name.is_empty() {
            // Verified (seen from DynamoDB by an application).
            "Empty attribute name"
        } else if name.len() > MAX_NAME_BYTES {
            // unverified: DynamoDB Local's text.
            "Attribute name is too large, must be less than 65536 bytes"
        } else {
            continue;
        };
        return Err(ExprError::validation(format!(
            "ExpressionAttributeNames contains invalid value: {reason} for key {key}"
        )));
    }
    Ok(())
}

/// The placeholders every checked expression used.
#[derive(Default)]
struct Usage {
    names: std::collections::HashSet<String>,
    values: std::collections::HashSet<String>,
}

impl Usage {
    fn add(&mut self, validator: &mut Validator) {
        self.names.extend(validator.used_names.drain());
        self.values.extend(validator.used_values.drain());
    }
}

fn references(validator: &mut Validator) -> References {
    References {
        top_level: std::mem::take(&mut validator.top_level),
        nested_top_level: std::mem::take(&mut validator.nested_top_level),
    }
}

fn check_substituted_size(
    kind: ExpressionKind,
    length: usize,
    validator: &Validator,
) -> Result<(), ExprError> {
    if length.saturating_add(validator.parameter_bytes) > MAX_SUBSTITUTED_SIZE {
        return Err(kind.invalid("Expression size has exceeded the maximum allowed size;"));
    }
    Ok(())
}

fn unsupported(kind: ExpressionKind) -> ExprError {
    // Never expected: every tree that passes validation lowers.
    kind.invalid("The expression cannot be evaluated;")
}

fn condition(
    parsed: &ParsedCondition,
    request: &ExpressionRequest,
    usage: &mut Usage,
) -> Result<ValidatedCondition, ExprError> {
    let kind = parsed.kind;
    let mut validator = Validator::new(request.names, request.values);
    validator
        .condition(&parsed.tree)
        .map_err(|reason| kind.invalid(reason))?;
    check_substituted_size(kind, parsed.length, &validator)?;
    usage.add(&mut validator);
    let ast = match &parsed.ast {
        Some(ast) => Arc::clone(ast),
        None => Arc::new(
            lower::condition(&parsed.tree, request.values).ok_or_else(|| unsupported(kind))?,
        ),
    };
    Ok(ValidatedCondition {
        ast,
        references: references(&mut validator),
    })
}

fn get_condition(
    text: &str,
    kind: ExpressionKind,
    cache: Option<&ExpressionCache>,
) -> Result<Arc<ParsedCondition>, ExprError> {
    match cache {
        Some(cache) => cache.condition(text, kind),
        None => parser::parse_condition_expression(text, kind).map(Arc::new),
    }
}

/// Step 3: the names' values, every expression, and unused placeholders.
pub fn validate_expressions(
    request: &ExpressionRequest,
    cache: Option<&ExpressionCache>,
) -> Result<ValidatedExpressions, ExprError> {
    check_attribute_names(request.names)?;
    let mut usage = Usage::default();
    let mut validated = ValidatedExpressions::default();
    if let Some(text) = request.update {
        let parsed: Arc<ParsedUpdate> = match cache {
            Some(cache) => cache.update(text)?,
            None => Arc::new(parser::parse_update_expression(text)?),
        };
        let kind = ExpressionKind::Update;
        let mut validator = Validator::new(request.names, request.values);
        validator
            .update(&parsed.tree)
            .map_err(|reason| kind.invalid(reason))?;
        check_substituted_size(kind, parsed.length, &validator)?;
        usage.add(&mut validator);
        let ast = parsed.ast.clone().ok_or_else(|| unsupported(kind))?;
        validated.update = Some(ValidatedUpdate {
            ast,
            references: references(&mut validator),
        });
    }
    let conditions = [
        (request.condition, ExpressionKind::Condition),
        (request.key_condition, ExpressionKind::KeyCondition),
        (request.filter, ExpressionKind::Filter),
    ];
    for (text, kind) in conditions {
        let Some(text) = text else {
            continue;
        };
        let parsed = get_condition(text, kind, cache)?;
        let checked = Some(condition(&parsed, request, &mut usage)?);
        match kind {
            ExpressionKind::Condition => validated.condition = checked,
            ExpressionKind::KeyCondition => validated.key_condition = checked,
            _ => validated.filter = checked,
        }
    }
    if let Some(text) = request.projection {
        let parsed: Arc<ParsedProjection> = match cache {
            Some(cache) => cache.projection(text)?,
            None => Arc::new(parser::parse_projection_expression(text)?),
        };
        let kind = ExpressionKind::Projection;
        // A projection has no values.
        let mut validator = Validator::new(request.names, None);
        validator
            .projection(&parsed.paths)
            .map_err(|reason| kind.invalid(reason))?;
        check_substituted_size(kind, parsed.length, &validator)?;
        usage.add(&mut validator);
        let ast = parsed.ast.clone().ok_or_else(|| unsupported(kind))?;
        validated.projection = Some(ValidatedProjection {
            ast,
            references: references(&mut validator),
        });
    }
    check_unused(
        "ExpressionAttributeNames",
        request.names.map(|m| m.keys()),
        &usage.names,
    )?;
    check_unused(
        "ExpressionAttributeValues",
        request.values.map(|m| m.keys()),
        &usage.values,
    )?;
    Ok(validated)
}

fn check_unused<'k>(
    parameter: &str,
    keys: Option<impl Iterator<Item = &'k String>>,
    used: &std::collections::HashSet<String>,
) -> Result<(), ExprError> {
    let Some(keys) = keys else {
        return Ok(());
    };
    let mut unused: Vec<String> = keys.filter(|key| !used.contains(*key)).cloned().collect();
    if unused.is_empty() {
        return Ok(());
    }
    unused.sort();
    let unused = java::hash_set_order(unused);
    Err(ExprError::validation(format!(
        "Value provided in {parameter} unused in expressions: keys: {{{}}}",
        unused.join(", ")
    )))
}

/// Steps 1 and 3 together, for callers that have no values to check between.
pub fn check_references(
    request: &ExpressionRequest,
    cache: Option<&ExpressionCache>,
) -> Result<ValidatedExpressions, ExprError> {
    check_attribute_maps(request.names, request.values)?;
    validate_expressions(request, cache)
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let symbol = |index: u32| {
        ALPHABET
            .get((index & 63) as usize)
            .map_or('=', |&byte| char::from(byte))
    };
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        for (slot, byte) in group.iter_mut().zip(chunk) {
            *slot = *byte;
        }
        let bits = (u32::from(group[0]) << 16) | (u32::from(group[1]) << 8) | u32::from(group[2]);
        out.push(symbol(bits >> 18));
        out.push(symbol(bits >> 12));
        out.push(if chunk.len() > 1 {
            symbol(bits >> 6)
        } else {
            '='
        });
        out.push(if chunk.len() > 2 { symbol(bits) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_wire() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
