//! What Query and Scan share: Select, ExclusiveStartKey values, pages to
//! responses.

use atoll_expr::ast::{Condition, Projection};
use atoll_model::Item;
use atoll_model::table::TableDefinition;
use serde_json::json;

use super::capacity::{ReturnCapacity, read_units};
use super::expressions::Expressions;
use super::items::apply_projection;
use super::pages::Page;
use super::{Output, RawObject};
use crate::attribute::{Layer, decode_map, write_map};
use crate::constraints::{Shown, Violations, enum_constraint};
use crate::error::{ApiError, ApiResult};
use crate::input::{self, Object};

/// `Select` values in DynamoDB's enum order.
pub(crate) const SELECT_VALUES: &[&str] = &[
    "SPECIFIC_ATTRIBUTES",
    "COUNT",
    "ALL_ATTRIBUTES",
    "ALL_PROJECTED_ATTRIBUTES",
];

/// What a Query or Scan returns of each item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Select {
    /// Whole items (`ALL_ATTRIBUTES`, and the default on a table).
    All,
    /// What the index holds (`ALL_PROJECTED_ATTRIBUTES`, the default on an index).
    AllProjected,
    /// The projection.
    Specific,
    /// Counts only.
    Count,
}

/// Records a bad `Select` in the constraint violations.
pub(crate) fn check_select_constraint(violations: &mut Violations, input: &Object) {
    if let Some(select) = input::string(input, "Select")
        && !SELECT_VALUES.contains(&select)
    {
        violations.add(
            "select",
            Shown::Text(select),
            "select",
            &enum_constraint(SELECT_VALUES),
        );
    }
}

/// DynamoDB's rules combining `Select` with a projection; `enveloped` is
/// Query's wording of the SPECIFIC_ATTRIBUTES error (Scan's is bare).
pub(crate) fn select(input: &Object, enveloped: bool) -> ApiResult<Select> {
    let projection_parameter = if input::has(input, "ProjectionExpression") {
        Some("ProjectionExpression")
    } else if input::has(input, "AttributesToGet") {
        Some("AttributesToGet")
    } else {
        None
    };
    let cannot = |what: &str| -> ApiError {
        ApiError::validation(format!(
            "Cannot specify the {} when choosing to get {what}",
            projection_parameter.unwrap_or("ProjectionExpression")
        ))
    };
    let on_index = input::has(input, "IndexName");
    match (input::string(input, "Select"), projection_parameter) {
        (None, None) if on_index => Ok(Select::AllProjected),
        (Some("ALL_PROJECTED_ATTRIBUTES"), None) if on_index => Ok(Select::AllProjected),
        (None, None) | (Some("ALL_ATTRIBUTES"), None) => Ok(Select::All),
        (None, Some(_)) | (Some("SPECIFIC_ATTRIBUTES"), Some(_)) => Ok(Select::Specific),
        (Some("SPECIFIC_ATTRIBUTES"), None) => {
            let message = "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES";
            Err(ApiError::validation(if enveloped {
                format!("1 validation error detected: {message}")
            } else {
                message.to_string()
            }))
        }
        (Some("ALL_ATTRIBUTES"), Some(_)) => Err(cannot("ALL_ATTRIBUTES")),
        (Some("COUNT"), Some(_)) => Err(cannot("only the Count")),
        (Some("COUNT"), None) => Ok(Select::Count),
        (Some("ALL_PROJECTED_ATTRIBUTES"), Some(_)) => Err(cannot("ALL_PROJECTED_ATTRIBUTES")),
        (Some(_), _) => Err(ApiError::validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        )),
    }
}

/// Decodes `ExclusiveStartKey` values; DynamoDB prefixes some of their errors.
pub(crate) fn exclusive_start_key(input: &Object, layer: Layer) -> ApiResult<Option<Item>> {
    let Some(value) = input::value(input, "ExclusiveStartKey") else {
        return Ok(None);
    };
    decode_map(value, layer).map(Some).map_err(|error| {
        let message = error.message.unwrap_or_default();
        let bare = [
            "contains duplicates",
            "number set",
            "numeric value",
            "significant digits",
            "number with magnitude",
        ]
        .iter()
        .any(|fragment| message.contains(fragment));
        if bare {
            ApiError::validation(message)
        } else {
            ApiError::validation(format!("The provided starting key is invalid: {message}"))
        }
    })
}

/// The filter of a Query or Scan: `FilterExpression` or the legacy filter.
pub(crate) fn filter(expressions: &Expressions, legacy: Option<Condition>) -> Option<Condition> {
    match &expressions.filter {
        Some(filter) => Some((**filter).clone()),
        None => legacy,
    }
}

/// What a page's read is charged to, and what the request asked back.
pub(crate) struct ReadCharge<'a> {
    /// `ReturnConsumedCapacity`.
    pub(crate) capacity: ReturnCapacity,
    /// `ConsistentRead` (full units rather than half).
    pub(crate) consistent: bool,
    /// The index read, when it was one.
    pub(crate) index: Option<&'a str>,
}

/// The response to a page.
pub(crate) fn page_response(
    page: Page,
    select: Select,
    projection: Option<&Projection>,
    expressions: &Expressions,
    table: &TableDefinition,
    charge: &ReadCharge<'_>,
) -> ApiResult<Output> {
    let count = page.items.len();
    let mut response = RawObject::with_capacity(page.bytes_read as usize + 256);
    if select != Select::Count {
        let items = response.member("Items");
        items.push(b'[');
        for (index, item) in page.items.into_iter().enumerate() {
            if index > 0 {
                items.push(b',');
            }
            let item = match select {
                Select::Specific => apply_projection(item, projection, expressions)?,
                _ => item,
            };
            write_map(items, &item);
        }
        items.push(b']');
    }
    response.value("Count", &json!(count));
    response.value("ScannedCount", &json!(page.scanned_count));
    if let Some(key) = page.last_evaluated_key {
        write_map(response.member("LastEvaluatedKey"), &key);
    }
    let units = read_units(page.bytes_read as usize, charge.consistent);
    let consumed = match charge.index {
        None => charge.capacity.report(&table.name, units),
        Some(index) => {
            let mut index_units = super::capacity::IndexUnits::default();
            index_units.add(table, index, units);
            charge
                .capacity
                .report_indexed(&table.name, 0.0, &index_units)
        }
    };
    if let Some(consumed) = consumed {
        response.value("ConsumedCapacity", &consumed);
    }
    Ok(response.finish())
}
