//! PutItem, GetItem, DeleteItem.

use std::sync::Arc;

use atoll_cluster::data::{ReturnValues, SingleWrite, WriteAction, WriteOutcome};
use atoll_model::table::TableDefinition;
use atoll_model::{Item, item_size_bytes};
use serde_json::{Map, Value};

use super::capacity::{ReturnCapacity, read_units, write_units};
use super::expressions::{Expressions, expression_error};
use super::keys::{check_item_key, check_key, locate};
use crate::Api;
use crate::attribute::{Layer, decode_item, decode_map, encode_map};
use crate::constraints::{Shown, Violations, check_table_name, enum_constraint};
use crate::error::{ApiError, ApiResult};
use crate::input::{self, Object};
use crate::shape::common::{ATTRIBUTE_MAP, BOOLEAN, STRING, STRING_LIST, STRING_MAP};
use crate::shape::{Shape, check_members};
use atoll_expr::ExpressionKind;
use atoll_expr::ast::{Condition, Projection};

/// Shape of the legacy `Expected` map (type-checked, then refused as not supported yet).
static EXPECTED: Shape = Shape::Map(
    &EXPECTED_VALUE,
    "java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.ExpectedAttributeValue>",
);
static EXPECTED_VALUE: Shape = Shape::Struct(
    "ExpectedAttributeValue",
    &[
        ("Value", &crate::shape::common::ATTRIBUTE_VALUE),
        ("Exists", &BOOLEAN),
        ("ComparisonOperator", &STRING),
        ("AttributeValueList", &crate::shape::common::ATTRIBUTE_LIST),
    ],
);

static PUT_ITEM: &[(&str, &Shape)] = &[
    ("TableName", &STRING),
    ("Item", &ATTRIBUTE_MAP),
    ("Expected", &EXPECTED),
    ("ReturnValues", &STRING),
    ("ReturnConsumedCapacity", &STRING),
    ("ReturnItemCollectionMetrics", &STRING),
    ("ConditionalOperator", &STRING),
    ("ConditionExpression", &STRING),
    ("ExpressionAttributeNames", &STRING_MAP),
    ("ExpressionAttributeValues", &ATTRIBUTE_MAP),
    ("ReturnValuesOnConditionCheckFailure", &STRING),
];
const PUT_ITEM_MEMBERS: &[&str] = &[
    "tableName",
    "item",
    "expected",
    "returnValues",
    "returnConsumedCapacity",
    "returnItemCollectionMetrics",
    "conditionalOperator",
    "conditionExpression",
    "expressionAttributeNames",
    "expressionAttributeValues",
    "returnValuesOnConditionCheckFailure",
];

static DELETE_ITEM: &[(&str, &Shape)] = &[
    ("TableName", &STRING),
    ("Key", &ATTRIBUTE_MAP),
    ("Expected", &EXPECTED),
    ("ConditionalOperator", &STRING),
    ("ReturnValues", &STRING),
    ("ReturnConsumedCapacity", &STRING),
    ("ReturnItemCollectionMetrics", &STRING),
    ("ConditionExpression", &STRING),
    ("ExpressionAttributeNames", &STRING_MAP),
    ("ExpressionAttributeValues", &ATTRIBUTE_MAP),
    ("ReturnValuesOnConditionCheckFailure", &STRING),
];
const DELETE_ITEM_MEMBERS: &[&str] = &[
    "tableName",
    "key",
    "expected",
    "conditionalOperator",
    "returnValues",
    "returnConsumedCapacity",
    "returnItemCollectionMetrics",
    "conditionExpression",
    "expressionAttributeNames",
    "expressionAttributeValues",
    "returnValuesOnConditionCheckFailure",
];

static GET_ITEM: &[(&str, &Shape)] = &[
    ("TableName", &STRING),
    ("Key", &ATTRIBUTE_MAP),
    ("AttributesToGet", &STRING_LIST),
    ("ConsistentRead", &BOOLEAN),
    ("ReturnConsumedCapacity", &STRING),
    ("ProjectionExpression", &STRING),
    ("ExpressionAttributeNames", &STRING_MAP),
];
const GET_ITEM_MEMBERS: &[&str] = &[
    "tableName",
    "key",
    "attributesToGet",
    "consistentRead",
    "returnConsumedCapacity",
    "projectionExpression",
    "expressionAttributeNames",
];

/// GetItem, BatchGetItem and Query check values in the current layer, bare.
pub(crate) const READ_LAYER: Layer = Layer::Current { enveloped: false };

const RETURN_VALUES: &[&str] = &["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"];

/// The table an item request names (a name or a table ARN).
pub(crate) fn resolve_table_name(name: &str) -> &str {
    name.strip_prefix("arn:")
        .and_then(|arn| arn.rsplit_once(":table/"))
        // A `/` names one of Atoll's hidden tables (an index's, the
        // transaction ledger): the ARN then names no table.
        .filter(|(_, table)| !table.contains('/'))
        .map_or(name, |(_, table)| table)
}

/// Checks the `TableName` of a data-plane request (1..1024 characters, or an ARN).
pub(crate) fn check_data_table_name(violations: &mut Violations, name: Option<&str>) {
    match name {
        None => violations.not_null("tableName", "tableName"),
        Some(name) => check_table_name(violations, "tableName", "tableName", name, 1),
    }
}

/// The ACTIVE table an item request names.
pub(crate) async fn item_table(api: &Api, name: &str) -> ApiResult<Arc<TableDefinition>> {
    api.cluster
        .catalog()
        .active_table_or_catch_up(resolve_table_name(name))
        .await
        .map_err(|_| ApiError::item_table_not_found())
}

/// Adds DynamoDB's enum violation when `value` is not one of `allowed`.
pub(crate) fn check_enum(
    violations: &mut Violations,
    member: &'static str,
    value: Option<&str>,
    allowed: &[&str],
) {
    if let Some(value) = value
        && !allowed.contains(&value)
    {
        violations.add(
            member,
            Shown::Text(value),
            member,
            &enum_constraint(allowed),
        );
    }
}

/// Model constraints of the options PutItem and DeleteItem share; returns
/// ReturnValues and ReturnConsumedCapacity.
fn check_write_options<'a>(
    violations: &mut Violations,
    input: &'a Object,
) -> (Option<&'a str>, ReturnCapacity) {
    let return_values = input::string(input, "ReturnValues");
    check_enum(violations, "returnValues", return_values, RETURN_VALUES);
    let capacity =
        ReturnCapacity::parse(violations, input::string(input, "ReturnConsumedCapacity"));
    check_enum(
        violations,
        "returnItemCollectionMetrics",
        input::string(input, "ReturnItemCollectionMetrics"),
        &["SIZE", "NONE"],
    );
    check_enum(
        violations,
        "conditionalOperator",
        input::string(input, "ConditionalOperator"),
        &["OR", "AND"],
    );
    check_enum(
        violations,
        "returnValuesOnConditionCheckFailure",
        input::string(input, "ReturnValuesOnConditionCheckFailure"),
        &["ALL_OLD", "NONE"],
    );
    (return_values, capacity)
}

/// DynamoDB's check that PutItem/DeleteItem mix no condition parameters of
/// both kinds, before their values are read.
fn check_condition_parameters(api: &Api, input: &Object) -> ApiResult<()> {
    super::check_expression_parameters(
        input,
        &["Expected", "ConditionalOperator"],
        &["ConditionExpression"],
        Some(("ConditionExpression is null", &["ConditionExpression"])),
        classic_hint(api),
    )
    .map_err(|e| envelope(e, api.write_layer()))
}

/// Whether write-operation messages keep the classic wording's details.
pub(crate) fn classic_hint(api: &Api) -> bool {
    api.write_layer() == Layer::Older
}

/// Write operations put request-level validation errors in DynamoDB's envelope.
pub(crate) fn envelope(error: ApiError, layer: Layer) -> ApiError {
    match layer {
        Layer::Current { enveloped: true } => layer.error(error.message.unwrap_or_default()),
        _ => error,
    }
}

/// The condition of a write, from `ConditionExpression` or from the legacy
/// `Expected` + `ConditionalOperator`, with the request's expressions.
/// `kinds` lists the expressions the operation parses, in DynamoDB's order.
pub(crate) fn read_write_expressions(
    api: &Api,
    input: &Object,
    kinds: &[ExpressionKind],
) -> ApiResult<(Option<Condition>, Expressions)> {
    let expected = super::legacy_input::expected(input, api.write_layer())?;
    let legacy = atoll_expr::legacy::expected_condition(
        expected.as_deref(),
        super::legacy_input::conditional_operator(input),
    )
    .map_err(|e| expression_error(e, api.write_layer()))?;
    let expressions = super::expressions::read(api, input, kinds, api.write_layer())?;
    let condition = match &expressions.condition {
        Some(condition) => Some((**condition).clone()),
        None => legacy,
    };
    Ok((condition, expressions))
}

/// Whether a failed condition returns the item (`ReturnValuesOnConditionCheckFailure`).
pub(crate) fn return_old_on_condition_failure(input: &Object) -> bool {
    input::string(input, "ReturnValuesOnConditionCheckFailure") == Some("ALL_OLD")
}

/// ReturnValues of PutItem/DeleteItem, refusing what they do not allow.
fn put_or_delete_return_values(return_values: Option<&str>) -> ApiResult<ReturnValues> {
    match return_values {
        None | Some("NONE") => Ok(ReturnValues::None),
        Some("ALL_OLD") => Ok(ReturnValues::AllOld),
        Some(_) => Err(ApiError::validation(
            "ReturnValues can only be ALL_OLD or NONE",
        )),
    }
}

/// What a single write reports besides its returned attributes.
pub(crate) struct WriteReport {
    /// `ReturnConsumedCapacity`.
    pub(crate) capacity: ReturnCapacity,
    /// The item's key, when `ReturnItemCollectionMetrics` is SIZE.
    pub(crate) collection_of: Option<Item>,
}

impl WriteReport {
    /// The report `input` asks for on a write of the item keyed `key`.
    pub(crate) fn of(input: &Object, capacity: ReturnCapacity, key: &Item) -> WriteReport {
        let wants_metrics = input::string(input, "ReturnItemCollectionMetrics") == Some("SIZE");
        WriteReport {
            capacity,
            collection_of: wants_metrics.then(|| key.clone()),
        }
    }
}

/// Replicates a single write through its partition and turns the outcome
/// into DynamoDB's response (or error).
pub(crate) async fn single_write(
    api: &Api,
    table: &TableDefinition,
    write: SingleWrite,
    report: WriteReport,
) -> ApiResult<Value> {
    match api.data.write_item(table, write).await? {
        WriteOutcome::Written {
            returned,
            old_size_bytes,
            new_size_bytes,
            collection_size_bytes,
            index_writes,
        } => {
            let mut response = Map::new();
            if let Some(returned) = returned {
                response.insert("Attributes".into(), encode_map(&returned));
            }
            let units = write_units(old_size_bytes.max(new_size_bytes) as usize);
            let index_units = super::index_writes::index_write_units(table, &index_writes);
            if let Some(consumed) = report
                .capacity
                .report_indexed(&table.name, units, &index_units)
            {
                response.insert("ConsumedCapacity".into(), consumed);
            }
            // Only tables with local indexes have item collections to report.
            if let (Some(key), Some(size_bytes)) = (&report.collection_of, collection_size_bytes) {
                response.insert(
                    "ItemCollectionMetrics".into(),
                    super::index_writes::item_collection_metrics(table, key, size_bytes),
                );
            }
            Ok(Value::Object(response))
        }
        WriteOutcome::ConditionFailed { old, .. } => Err(ApiError::conditional_check_failed(
            old.as_ref().map(encode_map),
        )),
    }
}

/// PutItem.
pub(crate) async fn put_item(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(PUT_ITEM, input)?;
    let mut violations = Violations::new(PUT_ITEM_MEMBERS);
    check_data_table_name(&mut violations, input::string(input, "TableName"));
    if !input::has(input, "Item") {
        violations.not_null("item", "item");
    }
    let (return_values, capacity) = check_write_options(&mut violations, input);
    violations.into_result()?;
    check_condition_parameters(api, input)?;
    let item = decode_item(
        input::value(input, "Item").unwrap_or(&Value::Null),
        api.write_layer(),
    )?;
    let return_values = put_or_delete_return_values(return_values)?;
    let size_bytes = item_size_bytes(&item);
    if size_bytes > atoll_model::MAX_ITEM_SIZE_BYTES {
        return Err(ApiError::item_too_large());
    }
    let (condition, expressions) =
        read_write_expressions(api, input, &[ExpressionKind::Condition])?;
    let name = input::string(input, "TableName").unwrap_or_default();
    let table = item_table(api, name).await?;
    check_item_key(&table.key_schema, &item)?;
    super::index_writes::check_index_keys(&table, &item)?;
    let report = WriteReport::of(input, capacity, &table.key_schema.key_of(&item));
    let write = SingleWrite {
        key: locate(&table.key_schema, &item)?,
        action: WriteAction::Put {
            item,
            size_bytes: size_bytes as u32,
        },
        condition,
        names: expressions.names,
        values: expressions.values,
        return_values,
        return_old_on_condition_failure: return_old_on_condition_failure(input),
    };
    single_write(api, &table, write, report).await
}

/// DeleteItem.
pub(crate) async fn delete_item(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(DELETE_ITEM, input)?;
    let mut violations = Violations::new(DELETE_ITEM_MEMBERS);
    check_data_table_name(&mut violations, input::string(input, "TableName"));
    if !input::has(input, "Key") {
        violations.not_null("key", "key");
    }
    let (return_values, capacity) = check_write_options(&mut violations, input);
    violations.into_result()?;
    check_condition_parameters(api, input)?;
    let key = decode_map(
        input::value(input, "Key").unwrap_or(&Value::Null),
        api.write_layer(),
    )?;
    let return_values = put_or_delete_return_values(return_values)?;
    let (condition, expressions) =
        read_write_expressions(api, input, &[ExpressionKind::Condition])?;
    let name = input::string(input, "TableName").unwrap_or_default();
    let table = item_table(api, name).await?;
    check_key(&table.key_schema, &key)?;
    let report = WriteReport::of(input, capacity, &key);
    let write = SingleWrite {
        key: locate(&table.key_schema, &key)?,
        action: WriteAction::Delete,
        condition,
        names: expressions.names,
        values: expressions.values,
        return_values,
        return_old_on_condition_failure: return_old_on_condition_failure(input),
    };
    single_write(api, &table, write, report).await
}

/// The projection of a read, from `ProjectionExpression` or from the legacy
/// `AttributesToGet`, with the request's expressions (names for the paths).
pub(crate) fn read_projection(
    api: &Api,
    input: &Object,
) -> ApiResult<(Option<Projection>, Expressions)> {
    let legacy = super::expressions::attributes_to_get(input, READ_LAYER)?;
    let expressions =
        super::expressions::read(api, input, &[ExpressionKind::Projection], READ_LAYER)?;
    let projection = match &expressions.projection {
        Some(projection) => Some((**projection).clone()),
        None => legacy,
    };
    Ok((projection, expressions))
}

/// DynamoDB refuses projections that reach inside key attributes.
pub(crate) fn check_projection_keys(
    projection: Option<&Projection>,
    expressions: &Expressions,
    table: &TableDefinition,
) -> ApiResult<()> {
    if let Some(projection) = projection {
        atoll_expr::eval::keys::check_key_paths(
            &projection.paths,
            &expressions.env(),
            &table.key_schema,
            &[],
        )
        .map_err(|e| expression_error(e, READ_LAYER))?;
    }
    Ok(())
}

/// Keeps the projected parts of `item` (all of it without a projection).
pub(crate) fn apply_projection(
    item: Item,
    projection: Option<&Projection>,
    expressions: &Expressions,
) -> ApiResult<Item> {
    match projection {
        None => Ok(item),
        Some(projection) => atoll_expr::project(&item, projection, &expressions.env())
            .map_err(|e| ApiError::validation(e.message())),
    }
}

/// GetItem.
pub(crate) async fn get_item(api: &Api, input: &Object) -> ApiResult<super::Output> {
    check_members(GET_ITEM, input)?;
    let mut violations = Violations::new(GET_ITEM_MEMBERS);
    check_data_table_name(&mut violations, input::string(input, "TableName"));
    if !input::has(input, "Key") {
        violations.not_null("key", "key");
    }
    if input::list(input, "AttributesToGet").is_some_and(Vec::is_empty) {
        violations.add(
            "attributesToGet",
            Shown::Text("[]"),
            "attributesToGet",
            "Member must have length greater than or equal to 1",
        );
    }
    let capacity = ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    violations.into_result()?;
    super::check_expression_parameters(
        input,
        &["AttributesToGet"],
        &["ProjectionExpression"],
        None,
        true,
    )?;
    let key = decode_map(
        input::value(input, "Key").unwrap_or(&Value::Null),
        READ_LAYER,
    )?;
    let (projection, expressions) = read_projection(api, input)?;
    let consistent = input::boolean(input, "ConsistentRead").unwrap_or(false);
    let name = input::string(input, "TableName").unwrap_or_default();
    let table = item_table(api, name).await?;
    check_key(&table.key_schema, &key)?;
    check_projection_keys(projection.as_ref(), &expressions, &table)?;
    let item = api
        .data
        .get_item(&table, &locate(&table.key_schema, &key)?, consistent)
        .await?;
    let size_bytes = item.as_ref().map_or(0, item_size_bytes);
    let mut response = super::RawObject::with_capacity(size_bytes + 128);
    if let Some(item) = item {
        let item = apply_projection(item, projection.as_ref(), &expressions)?;
        crate::attribute::write_map(response.member("Item"), &item);
    }
    if let Some(consumed) = capacity.report(&table.name, read_units(size_bytes, consistent)) {
        response.value("ConsumedCapacity", &consumed);
    }
    Ok(response.finish())
}
