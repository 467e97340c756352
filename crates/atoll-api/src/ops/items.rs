//! PutItem, GetItem, DeleteItem.

use std::collections::HashMap;
use std::sync::Arc;

use atoll_model::table::TableDefinition;
use atoll_model::{Item, encode_item, item_size_bytes};
use atoll_partition::{ItemWrite, PartitionCommand, PartitionOutput, ReturnValues, WriteAction};
use serde_json::{Map, Value};

use super::capacity::{ReturnCapacity, read_units, write_units};
use super::keys::{check_item_key, check_key, locate};
use crate::Api;
use crate::attribute::{Layer, decode_item, decode_map, encode_map};
use crate::constraints::{Shown, Violations, check_table_name, enum_constraint};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{self, Object};
use crate::shape::common::{ATTRIBUTE_MAP, BOOLEAN, STRING, STRING_LIST, STRING_MAP};
use crate::shape::{Shape, check_members};

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

/// PutItem, UpdateItem and DeleteItem check values in DynamoDB's current layer, enveloped.
pub(crate) const WRITE_LAYER: Layer = Layer::Current { enveloped: true };
/// GetItem, BatchGetItem and Query check values in the current layer, bare.
pub(crate) const READ_LAYER: Layer = Layer::Current { enveloped: false };

const RETURN_VALUES: &[&str] = &["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"];

/// The table an item request names (a name or a table ARN).
pub(crate) fn resolve_table_name(name: &str) -> &str {
    name.strip_prefix("arn:")
        .and_then(|arn| arn.rsplit_once(":table/"))
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
pub(crate) fn item_table(api: &Api, name: &str) -> ApiResult<Arc<TableDefinition>> {
    api.cluster
        .active_table(resolve_table_name(name))
        .map_err(|_| ApiError::item_table_not_found())
}

fn check_enum(
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

/// Checks the conditional parameters of PutItem/DeleteItem as DynamoDB does,
/// then refuses them until conditions are implemented.
fn refuse_conditions(input: &Object) -> ApiResult<()> {
    super::check_expression_parameters(
        input,
        &["Expected", "ConditionalOperator"],
        &["ConditionExpression"],
        Some("ConditionExpression is null"),
    )?;
    for parameter in [
        "ConditionExpression",
        "Expected",
        "ConditionalOperator",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
    ] {
        if input::has(input, parameter) {
            return Err(super::unsupported_parameter(parameter));
        }
    }
    Ok(())
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

/// Replicates a single write through its partition and turns the outcome
/// into DynamoDB's response (or error).
pub(crate) async fn single_write(
    api: &Api,
    table: &TableDefinition,
    token: u64,
    write: ItemWrite,
    capacity: ReturnCapacity,
) -> ApiResult<Value> {
    let output = api
        .cluster
        .write(table, token, &PartitionCommand::Write(Box::new(write)))
        .await
        .map_err(super::cluster_error)?;
    match output {
        PartitionOutput::Written {
            returned,
            old_size_bytes,
            new_size_bytes,
        } => {
            let mut response = Map::new();
            if let Some(returned) = returned {
                response.insert("Attributes".into(), encode_map(&returned));
            }
            let units = write_units(old_size_bytes.max(new_size_bytes) as usize);
            if let Some(consumed) = capacity.report(&table.name, units) {
                response.insert("ConsumedCapacity".into(), consumed);
            }
            Ok(Value::Object(response))
        }
        PartitionOutput::ConditionFailed { old, .. } => {
            let mut error = ApiError::new(
                ErrorKind::ConditionalCheckFailed,
                "The conditional request failed",
            );
            if let Some(old) = old {
                let mut extra = Map::new();
                extra.insert("Item".into(), encode_map(&old));
                error.extra = Some(extra);
            }
            Err(error)
        }
        PartitionOutput::Rejected { message } => Err(ApiError::validation(message)),
        PartitionOutput::BatchWritten { .. } => {
            Err(ApiError::internal("unexpected outcome of a single write"))
        }
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
    refuse_conditions(input)?;
    let item = decode_item(
        input::value(input, "Item").unwrap_or(&Value::Null),
        WRITE_LAYER,
    )?;
    let return_values = put_or_delete_return_values(return_values)?;
    let size_bytes = item_size_bytes(&item);
    if size_bytes > atoll_model::MAX_ITEM_SIZE_BYTES {
        return Err(ApiError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    let name = input::string(input, "TableName").unwrap_or_default();
    let table = item_table(api, name)?;
    check_item_key(&table.key_schema, &item)?;
    let (token, row_key) = locate(&table.key_schema, &item)?;
    let write = ItemWrite {
        row_key,
        action: WriteAction::Put {
            record: encode_item(&item),
            size_bytes: size_bytes as u32,
        },
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_values,
        return_old_on_condition_failure: false,
    };
    single_write(api, &table, token, write, capacity).await
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
    refuse_conditions(input)?;
    let key = decode_map(
        input::value(input, "Key").unwrap_or(&Value::Null),
        WRITE_LAYER,
    )?;
    let return_values = put_or_delete_return_values(return_values)?;
    let name = input::string(input, "TableName").unwrap_or_default();
    let table = item_table(api, name)?;
    check_key(&table.key_schema, &key)?;
    let (token, row_key) = locate(&table.key_schema, &key)?;
    let write = ItemWrite {
        row_key,
        action: WriteAction::Delete,
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_values,
        return_old_on_condition_failure: false,
    };
    single_write(api, &table, token, write, capacity).await
}

/// Reads the legacy `AttributesToGet` list, refusing duplicates as DynamoDB does.
pub(crate) fn attributes_to_get(list: Option<&Vec<Value>>) -> ApiResult<Option<Vec<String>>> {
    let Some(list) = list else { return Ok(None) };
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for name in list.iter().filter_map(Value::as_str) {
        if names.iter().any(|n| n == name) {
            return Err(ApiError::invalid_parameter(format!(
                "Duplicate value in attribute name: {name}"
            )));
        }
        names.push(name.to_string());
    }
    Ok(Some(names))
}

/// Keeps only the named top-level attributes of `item`.
pub(crate) fn project(item: Item, names: Option<&[String]>) -> Item {
    match names {
        None => item,
        Some(names) => item
            .into_iter()
            .filter(|(name, _)| names.contains(name))
            .collect(),
    }
}

/// GetItem.
pub(crate) async fn get_item(api: &Api, input: &Object) -> ApiResult<Value> {
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
    )?;
    for parameter in ["ProjectionExpression", "ExpressionAttributeNames"] {
        if input::has(input, parameter) {
            return Err(super::unsupported_parameter(parameter));
        }
    }
    let key = decode_map(
        input::value(input, "Key").unwrap_or(&Value::Null),
        READ_LAYER,
    )?;
    let wanted = attributes_to_get(input::list(input, "AttributesToGet"))?;
    let consistent = input::boolean(input, "ConsistentRead").unwrap_or(false);
    let name = input::string(input, "TableName").unwrap_or_default();
    let table = item_table(api, name)?;
    check_key(&table.key_schema, &key)?;
    let (token, row_key) = locate(&table.key_schema, &key)?;
    let item = api
        .cluster
        .read_item(&table, token, &row_key, consistent)
        .await
        .map_err(super::cluster_error)?;
    let mut response = Map::new();
    let size_bytes = item.as_ref().map_or(0, item_size_bytes);
    if let Some(item) = item {
        response.insert("Item".into(), encode_map(&project(item, wanted.as_deref())));
    }
    if let Some(consumed) = capacity.report(&table.name, read_units(size_bytes, consistent)) {
        response.insert("ConsumedCapacity".into(), consumed);
    }
    Ok(Value::Object(response))
}
