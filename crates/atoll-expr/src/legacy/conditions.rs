//! The legacy conditions: `Expected`, `QueryFilter` / `ScanFilter` and
//! `KeyConditions`.
//!
//! Semantics, verified against DynamoDB by Alternator's suite: NE holds for
//! a missing attribute and for a value of another type; NOT_CONTAINS does
//! not hold for a missing attribute (so CONTAINS and NOT_CONTAINS are then
//! both false); NULL / NOT_NULL test existence, not the NULL type;
//! `{Value: v}` alone means "equals v"; `{Exists: false}` means "absent".

use atoll_model::AttributeValue;
use atoll_model::table::KeySchema;

use super::{
    ComparisonOperator, ConditionalOperator, ExpectedAttribute, INVALID, LegacyCondition,
    check_conditional_operator, combine, literal, top_level,
};
use crate::ast::{Comparator, Condition, Operand, Path};
use crate::error::ExprError;
use crate::eval::compare_values;

fn invalid(reason: impl std::fmt::Display) -> ExprError {
    ExprError::validation(format!("{INVALID}{reason}"))
}

/// `Expected` + `ConditionalOperator` as a condition on the item (`None`
/// when there is nothing to check). `expected` is `None` when the request
/// has no `Expected`.
///
/// Each entry is checked in request order, as DynamoDB does:
/// 1. `Value` with `AttributeValueList`: "... Value and AttributeValueList
///    cannot be used together for Attribute: a";
/// 2. with a ComparisonOperator: `Exists` → "... Exists and
///    ComparisonOperator cannot be used together for Attribute: a"; no value
///    for an operator needing one → "... Value or AttributeValueList must
///    be used with ComparisonOperator: EQ for Attribute: a"; then the
///    values as for filters (count, one type, allowed types — unverified
///    for Expected: dynalite skips the type check, but DynamoDB refuses
///    e.g. LE with a list — and BETWEEN's order);
/// 3. without one: `AttributeValueList` → "... AttributeValueList can only
///    be used with a ComparisonOperator for Attribute: a"; `Exists` true or
///    absent without `Value` → "... Value must be provided when Exists is
///    true for Attribute: a" (`null` when absent); `Exists` false with
///    `Value` → "... Value cannot be used when Exists is false for
///    Attribute: a".
///
/// `ConditionalOperator` is checked first (see
/// [`check_conditional_operator`]; the order is unverified).
pub fn expected_condition(
    expected: Option<&[(String, ExpectedAttribute)]>,
    conditional_operator: Option<ConditionalOperator>,
) -> Result<Option<Condition>, ExprError> {
    check_conditional_operator(expected.map(<[_]>::len), conditional_operator)?;
    let mut conditions = Vec::new();
    for (name, entry) in expected.unwrap_or_default() {
        conditions.push(expected_entry(name, entry)?);
    }
    Ok(combine(
        conditions,
        conditional_operator.unwrap_or(ConditionalOperator::And),
    ))
}

fn expected_entry(name: &str, entry: &ExpectedAttribute) -> Result<Condition, ExprError> {
    if entry.value.is_some() && entry.attribute_value_list.is_some() {
        return Err(invalid(format_args!(
            "Value and AttributeValueList cannot be used together for Attribute: {name}"
        )));
    }
    if let Some(operator) = entry.comparison_operator {
        if entry.exists.is_some() {
            return Err(invalid(format_args!(
                "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
            )));
        }
        let values: &[AttributeValue] = match (&entry.attribute_value_list, &entry.value) {
            (Some(list), _) => list,
            (None, Some(value)) => std::slice::from_ref(value),
            (None, None) => {
                if !matches!(
                    operator,
                    ComparisonOperator::Null | ComparisonOperator::NotNull
                ) {
                    return Err(invalid(format_args!(
                        "Value or AttributeValueList must be used with ComparisonOperator: {} for Attribute: {name}",
                        operator.as_str()
                    )));
                }
                &[]
            }
        };
        check_values(operator, values)?;
        return Ok(operator_condition(top_level(name), operator, values));
    }
    if entry.attribute_value_list.is_some() {
        return Err(invalid(format_args!(
            "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
        )));
    }
    match (entry.exists, &entry.value) {
        (Some(false), None) => Ok(Condition::AttributeNotExists(top_level(name))),
        (Some(false), Some(_)) => Err(invalid(format_args!(
            "Value cannot be used when Exists is false for Attribute: {name}"
        ))),
        (exists, None) => Err(invalid(format_args!(
            "Value must be provided when Exists is {} for Attribute: {name}",
            if exists.is_some() { "true" } else { "null" }
        ))),
        (_, Some(value)) => Ok(Condition::Compare(
            Comparator::Eq,
            Operand::Path(top_level(name)),
            Operand::Value(literal(value)),
        )),
    }
}

/// `QueryFilter` or `ScanFilter` + `ConditionalOperator` as a condition on
/// each item (`None` when there is nothing to check); `filter` is `None`
/// when the request has no filter. Entries are checked in request order by
/// [`check_condition`].
pub fn filter_condition(
    filter: Option<&[(String, LegacyCondition)]>,
    conditional_operator: Option<ConditionalOperator>,
) -> Result<Option<Condition>, ExprError> {
    check_conditional_operator(filter.map(<[_]>::len), conditional_operator)?;
    let mut conditions = Vec::new();
    for (name, condition) in filter.unwrap_or_default() {
        conditions.push(legacy_condition(name, condition)?);
    }
    Ok(combine(
        conditions,
        conditional_operator.unwrap_or(ConditionalOperator::And),
    ))
}

/// `KeyConditions` as a condition (their AND). Each entry is checked as a
/// filter's; then there must be one or two: "Conditions can be of length 1
/// or 2 only". Checks that need the key schema are
/// [`check_key_conditions`]'s.
pub fn key_conditions_condition(
    conditions: &[(String, LegacyCondition)],
) -> Result<Condition, ExprError> {
    let mut translated = Vec::with_capacity(conditions.len());
    for (name, condition) in conditions {
        translated.push(legacy_condition(name, condition)?);
    }
    if !(1..=2).contains(&translated.len()) {
        return Err(ExprError::validation(
            "Conditions can be of length 1 or 2 only",
        ));
    }
    combine(translated, ConditionalOperator::And)
        .ok_or_else(|| ExprError::validation("Conditions can be of length 1 or 2 only"))
}

/// The checks of `KeyConditions` against the key schema of the table or
/// index queried, after the table lookup, key by key (partition key first):
/// - a one-key schema with two conditions: "Query key condition not
///   supported";
/// - a key without a condition (the partition key always; the sort key
///   when two conditions are given): "Query condition missed key schema
///   element: a";
/// - NULL, NOT_NULL, NE, CONTAINS, NOT_CONTAINS or IN on a key: "Attempted
///   conditional constraint is not an indexable operation";
/// - a value not of the key's type: "One or more parameter values were
///   invalid: Condition parameter type does not match schema type";
/// - anything but EQ on the partition key: "Query key condition not
///   supported".
pub fn check_key_conditions(
    conditions: &[(String, LegacyCondition)],
    schema: &KeySchema,
) -> Result<(), ExprError> {
    let count = conditions.len();
    if schema.sort_key.is_none() && count > 1 {
        return Err(ExprError::validation("Query key condition not supported"));
    }
    let keys = std::iter::once((&schema.partition_key, true))
        .chain(schema.sort_key.as_ref().map(|key| (key, false)));
    for (key, is_partition_key) in keys {
        let Some((_, condition)) = conditions.iter().find(|(name, _)| *name == key.name) else {
            if is_partition_key || count > 1 {
                return Err(ExprError::validation(format!(
                    "Query condition missed key schema element: {}",
                    key.name
                )));
            }
            continue;
        };
        let operator = condition.comparison_operator;
        if matches!(
            operator,
            ComparisonOperator::Null
                | ComparisonOperator::NotNull
                | ComparisonOperator::Ne
                | ComparisonOperator::Contains
                | ComparisonOperator::NotContains
                | ComparisonOperator::In
        ) {
            return Err(ExprError::validation(
                "Attempted conditional constraint is not an indexable operation",
            ));
        }
        let values = condition
            .attribute_value_list
            .as_deref()
            .unwrap_or_default();
        if values.iter().any(|value| !key.scalar_type.matches(value)) {
            return Err(invalid(
                "Condition parameter type does not match schema type",
            ));
        }
        if is_partition_key && operator != ComparisonOperator::Eq {
            return Err(ExprError::validation("Query key condition not supported"));
        }
    }
    Ok(())
}

/// Refuses a `QueryFilter` on a key attribute of the table or index
/// queried: "QueryFilter can only contain non-primary key attributes:
/// Primary key attribute: a" (dynalite's text, checked against DynamoDB).
pub fn check_query_filter_keys(
    filter: &[(String, LegacyCondition)],
    schema: &KeySchema,
) -> Result<(), ExprError> {
    let paths: Vec<Path> = filter.iter().map(|(name, _)| top_level(name)).collect();
    let no_placeholders = std::collections::HashMap::new();
    let no_values = std::collections::HashMap::new();
    let env = crate::Env {
        names: &no_placeholders,
        values: &no_values,
    };
    crate::eval::keys::check_filter_key_attributes(&paths, &env, schema, "QueryFilter")
}

/// One filter or key condition, checked by [`check_values`] and translated.
fn legacy_condition(name: &str, condition: &LegacyCondition) -> Result<Condition, ExprError> {
    let values = condition
        .attribute_value_list
        .as_deref()
        .unwrap_or_default();
    check_values(condition.comparison_operator, values)?;
    Ok(operator_condition(
        top_level(name),
        condition.comparison_operator,
        values,
    ))
}

/// The checks of an operator's values, in DynamoDB's order:
/// 1. their number: "One or more parameter values were invalid: Invalid
///    number of argument(s) for the BETWEEN ComparisonOperator";
/// 2. one type for all: "... AttributeValues inside AttributeValueList must
///    be of same type";
/// 3. a type the operator takes: "... ComparisonOperator IN is not valid for
///    SS AttributeValue type";
/// 4. BETWEEN's bounds in order: "The BETWEEN condition was provided a range
///    where the lower bound is greater than the upper bound".
pub(crate) fn check_values(
    operator: ComparisonOperator,
    values: &[AttributeValue],
) -> Result<(), ExprError> {
    if !operator.takes(values.len()) {
        return Err(invalid(format_args!(
            "Invalid number of argument(s) for the {} ComparisonOperator",
            operator.as_str()
        )));
    }
    if let Some(first) = values.first()
        && values
            .iter()
            .any(|value| value.type_name() != first.type_name())
    {
        return Err(invalid(
            "AttributeValues inside AttributeValueList must be of same type",
        ));
    }
    if let Some(value) = values
        .iter()
        .find(|value| !operator.accepts(value.type_name()))
    {
        return Err(invalid(format_args!(
            "ComparisonOperator {} is not valid for {} AttributeValue type",
            operator.as_str(),
            value.type_name()
        )));
    }
    if operator == ComparisonOperator::Between
        && let [low, high] = values
        && compare_values(low, high) == Some(std::cmp::Ordering::Greater)
    {
        return Err(ExprError::validation(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ));
    }
    Ok(())
}

/// The condition an operator states about the attribute at `path`, given
/// values already checked by [`check_values`].
fn operator_condition(
    path: Path,
    operator: ComparisonOperator,
    values: &[AttributeValue],
) -> Condition {
    let attribute = || Operand::Path(path.clone());
    let value = |index: usize| {
        // Checked counts make the fallback unreachable; NULL keeps the
        // condition well-formed (and false) should it ever be reached.
        Operand::Value(literal(values.get(index).unwrap_or(&AttributeValue::Null)))
    };
    let compare = |comparator| Condition::Compare(comparator, attribute(), value(0));
    match operator {
        ComparisonOperator::Eq => compare(Comparator::Eq),
        ComparisonOperator::Ne => compare(Comparator::Ne),
        ComparisonOperator::Le => compare(Comparator::Le),
        ComparisonOperator::Lt => compare(Comparator::Lt),
        ComparisonOperator::Ge => compare(Comparator::Ge),
        ComparisonOperator::Gt => compare(Comparator::Gt),
        ComparisonOperator::NotNull => Condition::AttributeExists(path),
        ComparisonOperator::Null => Condition::AttributeNotExists(path),
        ComparisonOperator::Contains => Condition::Contains(attribute(), value(0)),
        // False for a missing attribute, unlike NOT contains(...).
        ComparisonOperator::NotContains => Condition::And(
            Box::new(Condition::AttributeExists(path.clone())),
            Box::new(Condition::Not(Box::new(Condition::Contains(
                attribute(),
                value(0),
            )))),
        ),
        ComparisonOperator::BeginsWith => Condition::BeginsWith(attribute(), value(0)),
        ComparisonOperator::In => Condition::In(
            attribute(),
            values.iter().map(|v| Operand::Value(literal(v))).collect(),
        ),
        ComparisonOperator::Between => Condition::Between(attribute(), value(0), value(1)),
    }
}

#[cfg(test)]
mod tests;
