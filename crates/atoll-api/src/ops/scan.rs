//! Scan, including parallel scan (segments are disjoint token ranges).

use atoll_cluster::data::KeyRange;
use atoll_expr::ExpressionKind;
use serde_json::Value;

use super::capacity::ReturnCapacity;
use super::expressions::expression_error;
use super::items::{check_data_table_name, item_table};
use super::keys::locate;
use super::legacy_input::CONDITIONS;
use super::pages::{PagePlan, read_page};
use super::reads::{check_select_constraint, exclusive_start_key, filter, page_response, select};
use crate::Api;
use crate::attribute::Layer;
use crate::constraints::{
    NAME_PATTERN_CONSTRAINT, Shown, Violations, enum_constraint, is_valid_name,
};
use crate::error::{ApiError, ApiResult};
use crate::input::{self, Object};
use crate::shape::common::{ATTRIBUTE_MAP, BOOLEAN, INTEGER, STRING, STRING_LIST, STRING_MAP};
use crate::shape::{Shape, check_members};

static SCAN: &[(&str, &Shape)] = &[
    ("TableName", &STRING),
    ("IndexName", &STRING),
    ("AttributesToGet", &STRING_LIST),
    ("Limit", &INTEGER),
    ("Select", &STRING),
    ("ScanFilter", &CONDITIONS),
    ("ConditionalOperator", &STRING),
    ("ExclusiveStartKey", &ATTRIBUTE_MAP),
    ("ReturnConsumedCapacity", &STRING),
    ("TotalSegments", &INTEGER),
    ("Segment", &INTEGER),
    ("ProjectionExpression", &STRING),
    ("FilterExpression", &STRING),
    ("ExpressionAttributeNames", &STRING_MAP),
    ("ExpressionAttributeValues", &ATTRIBUTE_MAP),
    ("ConsistentRead", &BOOLEAN),
];
const SCAN_MEMBERS: &[&str] = &[
    "tableName",
    "indexName",
    "attributesToGet",
    "limit",
    "select",
    "scanFilter",
    "conditionalOperator",
    "exclusiveStartKey",
    "returnConsumedCapacity",
    "totalSegments",
    "segment",
    "projectionExpression",
    "filterExpression",
    "expressionAttributeNames",
    "expressionAttributeValues",
    "consistentRead",
];
const MAX_TOTAL_SEGMENTS: i64 = 1_000_000;

/// Scan runs DynamoDB's older value-validation layer.
const SCAN_LAYER: Layer = Layer::Older;

/// Constraints on IndexName and AttributesToGet that Query and Scan share.
pub(crate) fn check_index_and_attributes(violations: &mut Violations, input: &Object) {
    if let Some(index) = input::string(input, "IndexName") {
        let length = index.chars().count();
        if length < 3 {
            violations.add(
                "indexName",
                Shown::Text(index),
                "indexName",
                "Member must have length greater than or equal to 3",
            );
        }
        if length > 255 {
            violations.add(
                "indexName",
                Shown::Text(index),
                "indexName",
                "Member must have length less than or equal to 255",
            );
        }
        if !is_valid_name(index) {
            violations.add(
                "indexName",
                Shown::Text(index),
                "indexName",
                NAME_PATTERN_CONSTRAINT,
            );
        }
    }
    if input::list(input, "AttributesToGet").is_some_and(Vec::is_empty) {
        violations.add(
            "attributesToGet",
            Shown::Text("[]"),
            "attributesToGet",
            "Member must have length greater than or equal to 1",
        );
    }
    if let Some(operator) = input::string(input, "ConditionalOperator")
        && operator != "AND"
        && operator != "OR"
    {
        violations.add(
            "conditionalOperator",
            Shown::Text(operator),
            "conditionalOperator",
            &enum_constraint(&["OR", "AND"]),
        );
    }
}

/// Refuses duplicate names in `AttributesToGet`.
pub(crate) fn check_attributes_to_get(input: &Object) -> ApiResult<()> {
    let names: Vec<&str> = input::list(input, "AttributesToGet")
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (i, name) in names.iter().enumerate() {
        if names.iter().take(i).any(|n| n == name) {
            return Err(ApiError::invalid_parameter(format!(
                "Duplicate value in attribute name: {name}"
            )));
        }
    }
    Ok(())
}

/// The index a Query or Scan names: none exist yet, as in DynamoDB for a table without indexes.
pub(crate) fn check_index(index: Option<&str>) -> ApiResult<()> {
    match index {
        Some(index) => Err(ApiError::validation(format!(
            "The table does not have the specified index: {index}"
        ))),
        None => Ok(()),
    }
}

/// Scan.
pub(crate) async fn scan(api: &Api, input: &Object) -> ApiResult<super::Output> {
    check_members(SCAN, input)?;
    let mut violations = Violations::new(SCAN_MEMBERS);
    check_data_table_name(&mut violations, input::string(input, "TableName"));
    check_index_and_attributes(&mut violations, input);
    let limit = input::long(input, "Limit");
    if let Some(limit) = limit
        && limit < 1
    {
        violations.add(
            "limit",
            Shown::Text(&limit.to_string()),
            "limit",
            "Member must have value greater than or equal to 1",
        );
    }
    check_select_constraint(&mut violations, input);
    super::legacy_input::check_condition_constraints(
        &mut violations,
        "scanFilter",
        input,
        "ScanFilter",
    );
    let capacity = ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    let total_segments = input::long(input, "TotalSegments");
    let segment = input::long(input, "Segment");
    if let Some(total) = total_segments {
        if total < 1 {
            violations.add(
                "totalSegments",
                Shown::Text(&total.to_string()),
                "totalSegments",
                "Member must have value greater than or equal to 1",
            );
        }
        if total > MAX_TOTAL_SEGMENTS {
            violations.add(
                "totalSegments",
                Shown::Text(&total.to_string()),
                "totalSegments",
                "Member must have value less than or equal to 1000000",
            );
        }
    }
    if let Some(segment) = segment {
        if segment < 0 {
            violations.add(
                "segment",
                Shown::Text(&segment.to_string()),
                "segment",
                "Member must have value greater than or equal to 0",
            );
        }
        if segment > MAX_TOTAL_SEGMENTS - 1 {
            violations.add(
                "segment",
                Shown::Text(&segment.to_string()),
                "segment",
                "Member must have value less than or equal to 999999",
            );
        }
    }
    violations.into_result()?;
    super::check_expression_parameters(
        input,
        &["AttributesToGet", "ScanFilter", "ConditionalOperator"],
        &["ProjectionExpression", "FilterExpression"],
        Some(("FilterExpression is null", &["FilterExpression"])),
        true,
    )?;
    check_attributes_to_get(input)?;
    let scan_filter = super::legacy_input::conditions(input, "ScanFilter", SCAN_LAYER)?;
    let legacy_filter = atoll_expr::legacy::filter_condition(
        scan_filter.as_deref(),
        super::legacy_input::conditional_operator(input),
    )
    .map_err(|e| expression_error(e, SCAN_LAYER))?;
    let start_key = exclusive_start_key(input, SCAN_LAYER)?;
    let (segment, total_segments) = match (segment, total_segments) {
        (Some(_), None) => {
            return Err(ApiError::validation(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::validation(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            ));
        }
        (Some(segment), Some(total)) if segment >= total => {
            return Err(ApiError::validation(format!(
                "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {segment} is not less than TotalSegments: {total}"
            )));
        }
        (Some(segment), Some(total)) => (segment.max(0) as u64, total.max(1) as u64),
        (None, None) => (0, 1),
    };
    let expressions = super::expressions::read(
        api,
        input,
        &[ExpressionKind::Filter, ExpressionKind::Projection],
        SCAN_LAYER,
    )?;
    let select = select(input, false)?;
    let projection = match &expressions.projection {
        Some(projection) => Some((**projection).clone()),
        None => super::expressions::attributes_to_get(input, SCAN_LAYER)?,
    };
    let filter = filter(&expressions, legacy_filter);

    let name = input::string(input, "TableName").unwrap_or_default();
    let table = item_table(api, name).await?;
    check_index(input::string(input, "IndexName"))?;
    let mut exclusive_start = None;
    if let Some(key) = &start_key {
        // A key of the wrong shape "does not match the schema"; an empty
        // or oversized key value says why. Both behind DynamoDB's prefix.
        super::keys::check_key(&table.key_schema, key).map_err(invalid_start_key)?;
        let key = locate(&table.key_schema, key)?;
        if !key.in_segment(segment, total_segments) {
            return Err(ApiError::validation(format!(
                "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct Segment. TotalSegments: {total_segments} Segment: {segment}"
            )));
        }
        exclusive_start = Some(key);
    }
    let env = expressions.env();
    let mut key_paths: Vec<&atoll_expr::ast::Path> = Vec::new();
    if let Some(projection) = &projection {
        key_paths.extend(projection.paths.iter());
    }
    if let Some(filter) = &filter {
        key_paths.extend(atoll_expr::eval::keys::condition_paths(filter));
    }
    atoll_expr::eval::keys::check_key_paths(key_paths, &env, &table.key_schema, &[])
        .map_err(|e| expression_error(e, SCAN_LAYER))?;
    let consistent = input::boolean(input, "ConsistentRead").unwrap_or(false);
    let plan = PagePlan {
        table: table.clone(),
        range: KeyRange::Segment {
            segment,
            total: total_segments,
        },
        exclusive_start,
        reverse: false,
        limit: limit.map(|l| l.max(1) as usize),
        consistent,
    };
    let page = read_page(api, &plan, |item| match &filter {
        Some(filter) => {
            atoll_expr::evaluate(filter, item, &env).map_err(|e| ApiError::validation(e.message()))
        }
        None => Ok(true),
    })
    .await?;
    page_response(
        page,
        select,
        projection.as_ref(),
        &expressions,
        &table,
        capacity,
        consistent,
    )
}

/// A key error of an `ExclusiveStartKey`, behind DynamoDB's prefix.
pub(crate) fn invalid_start_key(error: ApiError) -> ApiError {
    ApiError::validation(format!(
        "The provided starting key is invalid: {}",
        error.message.unwrap_or_default()
    ))
}
