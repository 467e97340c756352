//! Reading DynamoDB's legacy parameters (`Expected`, `QueryFilter`,
//! `ScanFilter`, `KeyConditions`, `AttributeUpdates`, `AttributesToGet`,
//! `ConditionalOperator`) from a request, for the translations of
//! `atoll_expr::legacy`.

use atoll_expr::legacy::{
    AttributeAction, AttributeValueUpdate, ComparisonOperator, ConditionalOperator,
    ExpectedAttribute, LegacyCondition,
};
use atoll_model::AttributeValue;

use crate::attribute::{Layer, decode_value};
use crate::error::ApiResult;
use crate::input::{self, Object};
use crate::shape::Shape;
use crate::shape::common::{ATTRIBUTE_LIST, ATTRIBUTE_VALUE, BOOLEAN, STRING};

/// Shape of a legacy `Condition` (QueryFilter, ScanFilter, KeyConditions entries).
pub(crate) static CONDITION: Shape = Shape::Struct(
    "Condition",
    &[
        ("AttributeValueList", &ATTRIBUTE_LIST),
        ("ComparisonOperator", &STRING),
    ],
);
/// Shape of `QueryFilter`, `ScanFilter` and `KeyConditions`.
pub(crate) static CONDITIONS: Shape = Shape::Map(
    &CONDITION,
    "java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.Condition>",
);
/// Shape of an `Expected` entry.
static EXPECTED_VALUE: Shape = Shape::Struct(
    "ExpectedAttributeValue",
    &[
        ("Value", &ATTRIBUTE_VALUE),
        ("Exists", &BOOLEAN),
        ("ComparisonOperator", &STRING),
        ("AttributeValueList", &ATTRIBUTE_LIST),
    ],
);
/// Shape of `Expected`.
pub(crate) static EXPECTED: Shape = Shape::Map(
    &EXPECTED_VALUE,
    "java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.ExpectedAttributeValue>",
);
/// Shape of an `AttributeUpdates` entry.
static ATTRIBUTE_VALUE_UPDATE: Shape = Shape::Struct(
    "AttributeValueUpdate",
    &[("Value", &ATTRIBUTE_VALUE), ("Action", &STRING)],
);
/// Shape of `AttributeUpdates`.
pub(crate) static ATTRIBUTE_UPDATES: Shape = Shape::Map(
    &ATTRIBUTE_VALUE_UPDATE,
    "java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValueUpdate>",
);

/// Wire names of the legacy comparison operators, in DynamoDB's enum order.
pub(crate) const COMPARISON_OPERATORS: &[&str] = &[
    "IN",
    "NULL",
    "BETWEEN",
    "LT",
    "NOT_CONTAINS",
    "EQ",
    "GT",
    "NOT_NULL",
    "NE",
    "LE",
    "BEGINS_WITH",
    "GE",
    "CONTAINS",
];

fn entries(object: Option<&Object>) -> impl Iterator<Item = (&String, &Object)> {
    object
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| value.as_object().map(|entry| (name, entry)))
}

fn value_list(entry: &Object, layer: Layer) -> ApiResult<Option<Vec<AttributeValue>>> {
    match input::list(entry, "AttributeValueList") {
        None => Ok(None),
        Some(list) => list
            .iter()
            .map(|value| decode_value(value, layer))
            .collect::<ApiResult<Vec<_>>>()
            .map(Some),
    }
}

fn operator(entry: &Object) -> Option<ComparisonOperator> {
    input::string(entry, "ComparisonOperator").and_then(ComparisonOperator::parse)
}

/// `Expected`, entries in request order (`None` when absent).
pub(crate) fn expected(
    input: &Object,
    layer: Layer,
) -> ApiResult<Option<Vec<(String, ExpectedAttribute)>>> {
    let Some(map) = input::object(input, "Expected") else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, entry) in entries(Some(map)) {
        out.push((
            name.clone(),
            ExpectedAttribute {
                value: input::value(entry, "Value")
                    .map(|v| decode_value(v, layer))
                    .transpose()?,
                exists: input::boolean(entry, "Exists"),
                comparison_operator: operator(entry),
                attribute_value_list: value_list(entry, layer)?,
            },
        ));
    }
    Ok(Some(out))
}

/// A map of legacy conditions (`QueryFilter`, `ScanFilter`, `KeyConditions`)
/// in request order; entries without a valid operator were already refused
/// by the constraint checks.
pub(crate) fn conditions(
    input: &Object,
    member: &str,
    layer: Layer,
) -> ApiResult<Option<Vec<(String, LegacyCondition)>>> {
    let Some(map) = input::object(input, member) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, entry) in entries(Some(map)) {
        let Some(comparison_operator) = operator(entry) else {
            continue;
        };
        out.push((
            name.clone(),
            LegacyCondition {
                comparison_operator,
                attribute_value_list: value_list(entry, layer)?,
            },
        ));
    }
    Ok(Some(out))
}

/// `AttributeUpdates` in request order (`None` when absent).
pub(crate) fn attribute_updates(
    input: &Object,
    layer: Layer,
) -> ApiResult<Option<Vec<(String, AttributeValueUpdate)>>> {
    let Some(map) = input::object(input, "AttributeUpdates") else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, entry) in entries(Some(map)) {
        crate::attribute::check_attribute_name(name, layer)?;
        out.push((
            name.clone(),
            AttributeValueUpdate {
                action: input::string(entry, "Action").and_then(AttributeAction::parse),
                value: input::value(entry, "Value")
                    .map(|v| decode_value(v, layer))
                    .transpose()?,
            },
        ));
    }
    Ok(Some(out))
}

/// Wire names of the legacy update actions, in the API model's order.
const ATTRIBUTE_ACTIONS: &[&str] = &["ADD", "PUT", "DELETE"];

/// Constraint check of `AttributeUpdates`: an `Action`, when given, must be
/// one DynamoDB knows (unverified: the order DynamoDB lists them in).
pub(crate) fn check_attribute_update_constraints(
    violations: &mut crate::constraints::Violations,
    input: &Object,
) {
    for (name, entry) in entries(input::object(input, "AttributeUpdates")) {
        if let Some(action) = input::string(entry, "Action")
            && AttributeAction::parse(action).is_none()
        {
            violations.add(
                "attributeUpdates",
                crate::constraints::Shown::Text(action),
                &format!("attributeUpdates.{name}.member.action"),
                &crate::constraints::enum_constraint(ATTRIBUTE_ACTIONS),
            );
        }
    }
}

/// `ConditionalOperator`.
pub(crate) fn conditional_operator(input: &Object) -> Option<ConditionalOperator> {
    input::string(input, "ConditionalOperator").and_then(ConditionalOperator::parse)
}

/// Constraint checks of a legacy condition map: each entry needs a valid
/// `ComparisonOperator` (`path` is the lower-camel member name).
pub(crate) fn check_condition_constraints(
    violations: &mut crate::constraints::Violations,
    member: &str,
    input: &Object,
    json_member: &str,
) {
    for (name, entry) in entries(input::object(input, json_member)) {
        let path = format!("{member}.{name}.member.comparisonOperator");
        match input::string(entry, "ComparisonOperator") {
            None => violations.not_null(member, &path),
            Some(op) if ComparisonOperator::parse(op).is_none() => violations.add(
                member,
                crate::constraints::Shown::Text(op),
                &path,
                &crate::constraints::enum_constraint(COMPARISON_OPERATORS),
            ),
            Some(_) => {}
        }
    }
}
