//! A Query's KeyConditionExpression turned into the key range it reads.
//!
//! In two steps, as DynamoDB makes them. [`extract_key_conditions`], before
//! the table is looked up, splits the condition at its `AND`s into one
//! condition per attribute; its errors read `Invalid KeyConditionExpression:
//! <reason>` (verified with the prefix for "Multiple attribute names",
//! "nested attributes" and "one condition per key" by tests against the
//! service since 2023; dynalite's older tests lack the prefix; assumed for
//! the others of the family):
//!
//! - only `=`, `<`, `<=`, `>`, `>=`, `BETWEEN` and `begins_with` are allowed
//!   (`Invalid operator used in KeyConditionExpression: OR`, also `NOT`,
//!   `IN`, `<>`, `attribute_exists`, `attribute_not_exists`,
//!   `attribute_type`, `contains`);
//! - each names one top-level attribute and values (`Invalid condition in
//!   KeyConditionExpression: Multiple attribute names used in one
//!   condition`, `KeyConditionExpressions cannot have conditions on nested
//!   attributes`, `KeyConditionExpressions cannot contain nested
//!   operations`, `Invalid condition in KeyConditionExpression: No key
//!   attribute specified`, `Invalid condition in KeyConditionExpression:
//!   BETWEEN operator must have the key attribute as its first operand`, the
//!   same for `begins_with`); a value on the left flips the comparison
//!   (`:v <= sk` is `sk >= :v`, verified);
//! - each attribute at most once (`KeyConditionExpressions must only contain
//!   one condition per key`), one or two in all (`Conditions can be of
//!   length 1 or 2 only`, without the prefix: the check is shared with the
//!   legacy KeyConditions).
//!
//! [`KeyConditions::bind`] then matches them to the key schema: `Query key
//! condition not supported` (more conditions than keys, or a partition key
//! condition other than `=`), `Query condition missed key schema element:
//! pk` (verified), `One or more parameter values were invalid: Condition
//! parameter type does not match schema type`, and sort key values over
//! 1024 bytes.

use atoll_model::AttributeValue;
use atoll_model::size::{MAX_SORT_KEY_SIZE_BYTES, attribute_value_size_bytes};
use atoll_model::table::{KeySchema, ScalarType};

use crate::ast::{Comparator, Condition, Name, Operand, PathElement};
use crate::eval::{resolve_name, resolve_value};
use crate::kind::ExpressionKind;
use crate::{Env, ExprError};

/// The comparison of one key condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOperator {
    /// `=`.
    Eq,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `BETWEEN low AND high`.
    Between,
    /// `begins_with`.
    BeginsWith,
}

impl KeyOperator {
    fn flipped(self) -> KeyOperator {
        match self {
            KeyOperator::Lt => KeyOperator::Gt,
            KeyOperator::Gt => KeyOperator::Lt,
            KeyOperator::Le => KeyOperator::Ge,
            KeyOperator::Ge => KeyOperator::Le,
            other => other,
        }
    }
}

/// One attribute's condition: the attribute (resolved), the comparison, and
/// its values (one, or two for BETWEEN).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyPredicate {
    /// The attribute name.
    pub attribute: String,
    /// The comparison, with the attribute on the left.
    pub operator: KeyOperator,
    /// The values compared with.
    pub values: Vec<AttributeValue>,
}

/// The conditions of a KeyConditionExpression, one per attribute, in the
/// order written.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyConditions {
    /// One or two conditions.
    pub predicates: Vec<KeyPredicate>,
}

/// A sort key condition.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKeyCondition {
    /// `sk = v`.
    Eq(AttributeValue),
    /// `sk < v`.
    Lt(AttributeValue),
    /// `sk <= v`.
    Le(AttributeValue),
    /// `sk > v`.
    Gt(AttributeValue),
    /// `sk >= v`.
    Ge(AttributeValue),
    /// `sk BETWEEN low AND high`.
    Between(AttributeValue, AttributeValue),
    /// `begins_with(sk, prefix)`.
    BeginsWith(AttributeValue),
}

/// What a Query reads: one partition key value and an optional sort key
/// condition.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyCondition {
    /// The partition key attribute.
    pub partition_key: String,
    /// Its value.
    pub partition_value: AttributeValue,
    /// The sort key attribute and its condition, if any.
    pub sort: Option<(String, SortKeyCondition)>,
}

fn invalid(message: &str) -> ExprError {
    ExprError::validation(message)
}

/// An error of the key-condition extraction.
fn extraction(reason: &str) -> ExprError {
    ExpressionKind::KeyCondition.invalid(reason)
}

/// Without the `Invalid KeyConditionExpression: ` prefix: the texts quoted
/// from the service by client libraries' tests (Surge) and bug reports have none.
fn invalid_operator(name: &str) -> ExprError {
    invalid(&format!(
        "Invalid operator used in KeyConditionExpression: {name}"
    ))
}

fn invalid_condition(reason: &str) -> ExprError {
    extraction(&format!(
        "Invalid condition in KeyConditionExpression: {reason}"
    ))
}

fn comparator_operator(comparator: Comparator) -> Result<KeyOperator, ExprError> {
    Ok(match comparator {
        Comparator::Eq => KeyOperator::Eq,
        Comparator::Lt => KeyOperator::Lt,
        Comparator::Le => KeyOperator::Le,
        Comparator::Gt => KeyOperator::Gt,
        Comparator::Ge => KeyOperator::Ge,
        Comparator::Ne => return Err(invalid_operator("<>")),
    })
}

fn predicate(
    operator: KeyOperator,
    operator_name: &str,
    operands: &[&Operand],
    env: &Env,
    found: &mut Vec<KeyPredicate>,
) -> Result<(), ExprError> {
    let mut attribute: Option<String> = None;
    let mut operator = operator;
    let mut values = Vec::new();
    for operand in operands {
        match operand {
            Operand::Path(path) => {
                if attribute.is_some() {
                    return Err(invalid_condition(
                        "Multiple attribute names used in one condition",
                    ));
                }
                let [PathElement::Attribute(name)] = path.0.as_slice() else {
                    return Err(extraction(
                        "KeyConditionExpressions cannot have conditions on nested attributes",
                    ));
                };
                attribute = Some(match name {
                    Name::Literal(name) => name.clone(),
                    Name::Placeholder(_) => resolve_name(name, env)?.to_owned(),
                });
            }
            Operand::Value(value) => {
                if attribute.is_none() {
                    if matches!(operator, KeyOperator::Between | KeyOperator::BeginsWith) {
                        return Err(invalid_condition(&format!(
                            "{operator_name} operator must have the key attribute as its first operand"
                        )));
                    }
                    operator = operator.flipped();
                }
                values.push(resolve_value(value, env)?.clone());
            }
            Operand::Size(_) => {
                return Err(extraction(
                    "KeyConditionExpressions cannot contain nested operations",
                ));
            }
        }
    }
    let Some(attribute) = attribute else {
        return Err(invalid_condition("No key attribute specified"));
    };
    if found.iter().any(|existing| existing.attribute == attribute) {
        return Err(extraction(
            "KeyConditionExpressions must only contain one condition per key",
        ));
    }
    found.push(KeyPredicate {
        attribute,
        operator,
        values,
    });
    Ok(())
}

fn split(condition: &Condition, env: &Env, found: &mut Vec<KeyPredicate>) -> Result<(), ExprError> {
    match condition {
        Condition::And(left, right) => {
            split(left, env, found)?;
            split(right, env, found)
        }
        Condition::Compare(comparator, left, right) => predicate(
            comparator_operator(*comparator)?,
            "",
            &[left, right],
            env,
            found,
        ),
        Condition::Between(value, low, high) => predicate(
            KeyOperator::Between,
            "BETWEEN",
            &[value, low, high],
            env,
            found,
        ),
        Condition::BeginsWith(value, prefix) => predicate(
            KeyOperator::BeginsWith,
            "begins_with",
            &[value, prefix],
            env,
            found,
        ),
        Condition::Or(..) => Err(invalid_operator("OR")),
        Condition::Not(_) => Err(invalid_operator("NOT")),
        Condition::In(..) => Err(invalid_operator("IN")),
        Condition::AttributeExists(_) => Err(invalid_operator("attribute_exists")),
        Condition::AttributeNotExists(_) => Err(invalid_operator("attribute_not_exists")),
        Condition::AttributeType(..) => Err(invalid_operator("attribute_type")),
        Condition::Contains(..) => Err(invalid_operator("contains")),
    }
}

/// Splits a validated KeyConditionExpression into its per-attribute
/// conditions (no table needed).
pub fn extract_key_conditions(
    condition: &Condition,
    env: &Env,
) -> Result<KeyConditions, ExprError> {
    let mut predicates = Vec::new();
    split(condition, env, &mut predicates)?;
    if predicates.is_empty() || predicates.len() > 2 {
        return Err(invalid("Conditions can be of length 1 or 2 only"));
    }
    Ok(KeyConditions { predicates })
}

fn type_mismatch() -> ExprError {
    invalid(
        "One or more parameter values were invalid: Condition parameter type does not match schema type",
    )
}

fn check_types(values: &[AttributeValue], expected: Option<ScalarType>) -> Result<(), ExprError> {
    match expected {
        Some(expected) if !values.iter().all(|value| expected.matches(value)) => {
            Err(type_mismatch())
        }
        _ => Ok(()),
    }
}

impl KeyConditions {
    /// Matches the conditions to a table's or index's key schema.
    pub fn bind(&self, schema: &KeySchema) -> Result<KeyCondition, ExprError> {
        self.bind_names(
            (
                &schema.partition_key.name,
                Some(schema.partition_key.scalar_type),
            ),
            schema
                .sort_key
                .as_ref()
                .map(|key| (key.name.as_str(), Some(key.scalar_type))),
        )
    }

    fn bind_names(
        &self,
        partition: (&str, Option<ScalarType>),
        sort: Option<(&str, Option<ScalarType>)>,
    ) -> Result<KeyCondition, ExprError> {
        let schema_size = if sort.is_some() { 2 } else { 1 };
        if self.predicates.len() > schema_size {
            return Err(invalid("Query key condition not supported"));
        }
        let find = |name: &str| self.predicates.iter().find(|p| p.attribute == name);
        let (partition_name, partition_type) = partition;
        let missed = |name: &str| {
            ExprError::validation(format!("Query condition missed key schema element: {name}"))
        };
        let hash = find(partition_name).ok_or_else(|| missed(partition_name))?;
        check_types(&hash.values, partition_type)?;
        let (KeyOperator::Eq, [partition_value]) = (hash.operator, hash.values.as_slice()) else {
            return Err(invalid("Query key condition not supported"));
        };
        let mut bound = KeyCondition {
            partition_key: partition_name.to_owned(),
            partition_value: partition_value.clone(),
            sort: None,
        };
        let Some((sort_name, sort_type)) = sort else {
            return Ok(bound);
        };
        let Some(range) = find(sort_name) else {
            if self.predicates.len() > 1 {
                return Err(missed(sort_name));
            }
            return Ok(bound);
        };
        if range
            .values
            .iter()
            .any(|value| attribute_value_size_bytes(value) > MAX_SORT_KEY_SIZE_BYTES)
        {
            return Err(invalid(
                "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
            ));
        }
        check_types(&range.values, sort_type)?;
        let value = |index: usize| range.values.get(index).cloned().ok_or_else(type_mismatch);
        let condition = match range.operator {
            KeyOperator::Eq => SortKeyCondition::Eq(value(0)?),
            KeyOperator::Lt => SortKeyCondition::Lt(value(0)?),
            KeyOperator::Le => SortKeyCondition::Le(value(0)?),
            KeyOperator::Gt => SortKeyCondition::Gt(value(0)?),
            KeyOperator::Ge => SortKeyCondition::Ge(value(0)?),
            KeyOperator::Between => SortKeyCondition::Between(value(0)?, value(1)?),
            KeyOperator::BeginsWith => SortKeyCondition::BeginsWith(value(0)?),
        };
        bound.sort = Some((sort_name.to_owned(), condition));
        Ok(bound)
    }
}

/// Both steps for a key schema known by name only (no type checks).
pub fn key_condition(
    condition: &Condition,
    partition_key: &str,
    sort_key: Option<&str>,
    env: &Env,
) -> Result<KeyCondition, ExprError> {
    extract_key_conditions(condition, env)?
        .bind_names((partition_key, None), sort_key.map(|name| (name, None)))
}
