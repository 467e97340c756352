//! Scan, including parallel scan (segments are disjoint token ranges).

use atoll_cluster::data::KeyRange;
use atoll_expr::ExpressionKind;
use atoll_expr::ast::{Condition, Projection};
use atoll_model::Item;
use serde_json::Value;

use super::capacity::ReturnCapacity;
use super::expressions::{Expressions, expression_error};
use super::index_reads::{ReadIndex, check_index_start_key, resolve_index};
use super::items::{check_data_table_name, item_table};
use super::keys::locate;
use super::legacy_input::CONDITIONS;
use super::pages::{PagePlan, read_page};
use super::reads::{
    ReadCharge, Select, check_select_constraint, exclusive_start_key, filter, page_response, select,
};
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

/// A checked Scan request: what to read and how to answer, before the table is known.
struct ScanRequest<'a> {
    table_name: &'a str,
    index_name: Option<&'a str>,
    capacity: ReturnCapacity,
    limit: Option<i64>,
    start_key: Option<Item>,
    segment: u64,
    total_segments: u64,
    expressions: Expressions,
    select: Select,
    projection: Option<Projection>,
    filter: Option<Condition>,
    consistent: bool,
}

/// Scan.
pub(crate) async fn scan(api: &Api, input: &Object) -> ApiResult<super::Output> {
    let request = parse_scan(api, input)?;
    let plan = resolve_scan(api, &request).await?;
    execute_scan(api, &request, plan).await
}

/// The checks DynamoDB makes of a Scan before it looks at the table.
fn parse_scan<'a>(api: &Api, input: &'a Object) -> ApiResult<ScanRequest<'a>> {
    check_members(SCAN, input)?;
    let (capacity, limit) = check_scan_constraints(input)?;
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
    let (segment, total_segments) = parse_segment(
        input::long(input, "Segment"),
        input::long(input, "TotalSegments"),
    )?;
    let expressions = super::expressions::read(
        api,
        input,
        &[ExpressionKind::Filter, ExpressionKind::Projection],
        SCAN_LAYER,
    )?;
    let select = select(input, false)?;
    let projection = super::expressions::chosen_projection(&expressions, input, SCAN_LAYER)?;
    let filter = filter(&expressions, legacy_filter);
    Ok(ScanRequest {
        table_name: input::string(input, "TableName").unwrap_or_default(),
        index_name: input::string(input, "IndexName"),
        capacity,
        limit,
        start_key,
        segment,
        total_segments,
        expressions,
        select,
        projection,
        filter,
        consistent: input::boolean(input, "ConsistentRead").unwrap_or(false),
    })
}

/// Scan's model constraints, all reported at once; returns ReturnConsumedCapacity and Limit.
fn check_scan_constraints(input: &Object) -> ApiResult<(ReturnCapacity, Option<i64>)> {
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
    check_segment_constraints(&mut violations, input);
    violations.into_result()?;
    Ok((capacity, limit))
}

/// Records TotalSegments and Segment out of their ranges.
fn check_segment_constraints(violations: &mut Violations, input: &Object) {
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
}

/// The segment to scan and the total, as (segment, total): the whole table when neither is given.
fn parse_segment(segment: Option<i64>, total_segments: Option<i64>) -> ApiResult<(u64, u64)> {
    match (segment, total_segments) {
        (Some(_), None) => Err(ApiError::validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        )),
        (None, Some(_)) => Err(ApiError::validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        )),
        (Some(segment), Some(total)) if segment >= total => Err(ApiError::validation(format!(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {segment} is not less than TotalSegments: {total}"
        ))),
        (Some(segment), Some(total)) => Ok((segment.max(0) as u64, total.max(1) as u64)),
        (None, None) => Ok((0, 1)),
    }
}

/// Looks up the table (and the index) and checks the start key and key
/// paths against its schema.
async fn resolve_scan(api: &Api, request: &ScanRequest<'_>) -> ApiResult<PagePlan> {
    let table = item_table(api, request.table_name).await?;
    // After the lookup: a missing table's error wins over a missing index's.
    let index = resolve_index(&table, request.index_name)?;
    if let Some(index) = &index {
        index.check_read(request.select, request.consistent)?;
    }
    let (segment, total_segments) = (request.segment, request.total_segments);
    let mut exclusive_start = None;
    let mut start = None;
    if let Some(key) = &request.start_key {
        // A key of the wrong shape "does not match the schema"; an empty
        // or oversized key value says why. Both behind DynamoDB's prefix.
        let table_key = match &index {
            None => {
                super::keys::check_key(&table.key_schema, key).map_err(invalid_start_key)?;
                key.clone()
            }
            Some(index) => {
                start = Some(check_index_start_key(&table, index, key)?);
                table.key_schema.key_of(key)
            }
        };
        // A global index's segments cut its own tokens.
        let segment_key = match &index {
            Some(index @ ReadIndex::Global(_)) => locate(index.key_schema(), key)?,
            _ => locate(&table.key_schema, &table_key)?,
        };
        let key = locate(&table.key_schema, &table_key)?;
        if !segment_key.in_segment(segment, total_segments) {
            return Err(ApiError::validation(format!(
                "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct Segment. TotalSegments: {total_segments} Segment: {segment}"
            )));
        }
        exclusive_start = Some(key);
    }
    let env = request.expressions.env();
    let mut key_paths: Vec<&atoll_expr::ast::Path> = Vec::new();
    if let Some(projection) = &request.projection {
        key_paths.extend(projection.paths.iter());
    }
    if let Some(filter) = &request.filter {
        key_paths.extend(atoll_expr::eval::keys::condition_paths(filter));
    }
    let index_keys: Vec<&str> = index
        .iter()
        .flat_map(|index| {
            let keys = index.key_schema();
            std::iter::once(&keys.partition_key).chain(keys.sort_key.as_ref())
        })
        .map(|key| key.name.as_str())
        .filter(|name| !table.key_schema.is_key_attribute(name))
        .collect();
    atoll_expr::eval::keys::check_key_paths(key_paths, &env, &table.key_schema, &index_keys)
        .map_err(|e| expression_error(e, SCAN_LAYER))?;
    let read = (
        request.select,
        request.projection.as_ref(),
        &request.expressions,
    );
    let index = match index {
        Some(index) => Some(index.plan(api, &table, read, start)?),
        None => None,
    };
    Ok(PagePlan {
        table,
        range: KeyRange::Segment {
            segment,
            total: total_segments,
        },
        exclusive_start,
        reverse: false,
        limit: request.limit.map(|l| l.max(1) as usize),
        consistent: request.consistent,
        index,
    })
}

/// Reads one page, filters it and answers it.
async fn execute_scan(
    api: &Api,
    request: &ScanRequest<'_>,
    plan: PagePlan,
) -> ApiResult<super::Output> {
    let env = request.expressions.env();
    let page = read_page(api, &plan, |item| match &request.filter {
        Some(filter) => {
            atoll_expr::evaluate(filter, item, &env).map_err(|e| ApiError::validation(e.message()))
        }
        None => Ok(true),
    })
    .await?;
    page_response(
        page,
        request.select,
        request.projection.as_ref(),
        &request.expressions,
        &plan.table,
        &ReadCharge {
            capacity: request.capacity,
            consistent: request.consistent,
            index: plan.index.as_ref().map(|i| i.name.as_str()),
        },
    )
}

/// A key error of an `ExclusiveStartKey`, behind DynamoDB's prefix.
pub(crate) fn invalid_start_key(error: ApiError) -> ApiError {
    ApiError::validation(format!(
        "The provided starting key is invalid: {}",
        error.message.unwrap_or_default()
    ))
}
