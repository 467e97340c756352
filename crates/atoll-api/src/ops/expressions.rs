//! A request's expressions: the placeholder maps, each expression parsed
//! (through the node's cache) and checked against them, in DynamoDB's order.
//! This module is the only one that talks to `atoll-expr`'s parsers.

use std::collections::HashMap;
use std::sync::Arc;

use atoll_expr::ast::{Condition, Projection, Update};
use atoll_expr::{Env, ExpressionKind};
use atoll_model::AttributeValue;

use crate::Api;
use crate::attribute::{Layer, decode_value};
use crate::error::{ApiError, ApiResult};
use crate::input::{self, Object};

/// The parsed expressions of one request and what their placeholders stand for.
#[derive(Default)]
pub(crate) struct Expressions {
    /// `ExpressionAttributeNames`.
    pub names: HashMap<String, String>,
    /// `ExpressionAttributeValues`.
    pub values: HashMap<String, AttributeValue>,
    /// `ConditionExpression`.
    pub condition: Option<Arc<Condition>>,
    /// `FilterExpression`.
    pub filter: Option<Arc<Condition>>,
    /// `KeyConditionExpression`.
    pub key_condition: Option<Arc<Condition>>,
    /// `ProjectionExpression`.
    pub projection: Option<Arc<Projection>>,
    /// `UpdateExpression`.
    pub update: Option<Arc<Update>>,
}

impl Expressions {
    /// The placeholders' environment for evaluation.
    pub(crate) fn env(&self) -> Env<'_> {
        Env {
            names: &self.names,
            values: &self.values,
        }
    }
}

/// The legacy `AttributesToGet` list as a projection, if the request has one.
pub(crate) fn attributes_to_get(
    input: &Object,
    layer: Layer,
) -> ApiResult<Option<atoll_expr::ast::Projection>> {
    let Some(list) = crate::input::list(input, "AttributesToGet") else {
        return Ok(None);
    };
    let names: Vec<String> = list
        .iter()
        .filter_map(serde_json::Value::as_str)
        .map(str::to_string)
        .collect();
    for name in &names {
        crate::attribute::check_attribute_name(name, layer)?;
    }
    atoll_expr::legacy::attributes_to_get(&names)
        .map(Some)
        .map_err(|e| expression_error(e, layer))
}

/// Maps an expression error to the wire: write operations wrap it in
/// DynamoDB's validation envelope, reads do not.
pub(crate) fn expression_error(error: atoll_expr::ExprError, layer: Layer) -> ApiError {
    match layer {
        Layer::Current { enveloped: true } => layer.error(error.message()),
        _ => ApiError::validation(error.message()),
    }
}

fn decode_values(
    input: &Object,
    layer: Layer,
) -> ApiResult<Option<HashMap<String, AttributeValue>>> {
    let Some(map) = input::object(input, "ExpressionAttributeValues") else {
        return Ok(None);
    };
    let mut values = HashMap::with_capacity(map.len());
    for (key, value) in map {
        let decoded = match layer {
            // The older layer names the placeholder; the current one does not.
            Layer::Older => decode_value(value, Layer::Older).map_err(|e| {
                ApiError::validation(format!(
                    "ExpressionAttributeValues contains invalid value: {} for key {key}",
                    e.message.unwrap_or_default()
                ))
            })?,
            current => decode_value(value, current)?,
        };
        values.insert(key.clone(), decoded);
    }
    Ok(Some(values))
}

fn decode_names(input: &Object) -> Option<HashMap<String, String>> {
    input::object(input, "ExpressionAttributeNames").map(|map| {
        map.iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect()
    })
}

/// Reads the placeholder maps and the expressions of `kinds` (the ones the
/// operation has), parses them through the node's cache and checks every
/// reference and operand, in DynamoDB's order: map keys, then values, then
/// the expressions, then unused placeholders.
pub(crate) fn read(
    api: &Api,
    input: &Object,
    kinds: &[ExpressionKind],
    layer: Layer,
) -> ApiResult<Expressions> {
    let names = decode_names(input);
    // The values' keys are checked before the values themselves.
    let value_keys: Option<HashMap<String, AttributeValue>> =
        input::object(input, "ExpressionAttributeValues").map(|map| {
            map.keys()
                .map(|k| (k.clone(), AttributeValue::Null))
                .collect()
        });
    atoll_expr::check_attribute_maps(names.as_ref(), value_keys.as_ref())
        .map_err(|e| expression_error(e, layer))?;
    let values = decode_values(input, layer)?;
    let text = |kind: ExpressionKind| {
        kinds
            .contains(&kind)
            .then(|| input::string(input, kind.parameter_name()))
            .flatten()
    };
    let request = atoll_expr::ExpressionRequest {
        update: text(ExpressionKind::Update),
        condition: text(ExpressionKind::Condition),
        key_condition: text(ExpressionKind::KeyCondition),
        filter: text(ExpressionKind::Filter),
        projection: text(ExpressionKind::Projection),
        names: names.as_ref(),
        values: values.as_ref(),
    };
    let validated = atoll_expr::validate_expressions(&request, Some(&api.expressions))
        .map_err(|e| expression_error(e, layer))?;
    let expressions = Expressions {
        names: names.unwrap_or_default(),
        values: values.unwrap_or_default(),
        condition: validated.condition.map(|c| c.shared()),
        filter: validated.filter.map(|c| c.shared()),
        key_condition: validated.key_condition.map(|c| c.shared()),
        projection: validated.projection.map(|p| p.shared()),
        update: validated.update.map(|u| u.shared()),
    };
    let env = expressions.env();
    for (kind, condition) in [
        (ExpressionKind::Condition, &expressions.condition),
        (ExpressionKind::KeyCondition, &expressions.key_condition),
        (ExpressionKind::Filter, &expressions.filter),
    ] {
        if let Some(condition) = condition {
            atoll_expr::check_condition_operands(condition, &env, kind.parameter_name())
                .map_err(|e| expression_error(e, layer))?;
        }
    }
    if let Some(update) = &expressions.update {
        atoll_expr::check_update_operands(update, &env).map_err(|e| expression_error(e, layer))?;
    }
    Ok(expressions)
}

/// The projection a read asked for: its ProjectionExpression, else its
/// legacy `AttributesToGet` (read only when there is no expression).
pub(crate) fn chosen_projection(
    expressions: &Expressions,
    input: &Object,
    layer: Layer,
) -> ApiResult<Option<Projection>> {
    match &expressions.projection {
        Some(projection) => Ok(Some((**projection).clone())),
        None => attributes_to_get(input, layer),
    }
}
