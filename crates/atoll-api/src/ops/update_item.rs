//! UpdateItem.

use atoll_cluster::data::{ReturnValues, SingleWrite, WriteAction};
use atoll_expr::ExpressionKind;
use atoll_expr::ast::Update;
use serde_json::Value;

use super::capacity::ReturnCapacity;
use super::expressions::expression_error;
use super::items::{
    WriteReport, check_data_table_name, check_enum, envelope, item_table, read_write_expressions,
    return_old_on_condition_failure, single_write,
};
use super::keys::{check_key, locate};
use super::legacy_input::{ATTRIBUTE_UPDATES, EXPECTED};
use crate::Api;
use crate::attribute::decode_map;
use crate::constraints::Violations;
use crate::error::ApiResult;
use crate::input::{self, Object};
use crate::shape::common::{ATTRIBUTE_MAP, STRING, STRING_MAP};
use crate::shape::{Shape, check_members};

static UPDATE_ITEM: &[(&str, &Shape)] = &[
    ("TableName", &STRING),
    ("Key", &ATTRIBUTE_MAP),
    ("AttributeUpdates", &ATTRIBUTE_UPDATES),
    ("Expected", &EXPECTED),
    ("ConditionalOperator", &STRING),
    ("ReturnValues", &STRING),
    ("ReturnConsumedCapacity", &STRING),
    ("ReturnItemCollectionMetrics", &STRING),
    ("UpdateExpression", &STRING),
    ("ConditionExpression", &STRING),
    ("ExpressionAttributeNames", &STRING_MAP),
    ("ExpressionAttributeValues", &ATTRIBUTE_MAP),
    ("ReturnValuesOnConditionCheckFailure", &STRING),
];
const UPDATE_ITEM_MEMBERS: &[&str] = &[
    "tableName",
    "key",
    "attributeUpdates",
    "expected",
    "conditionalOperator",
    "returnValues",
    "returnConsumedCapacity",
    "returnItemCollectionMetrics",
    "updateExpression",
    "conditionExpression",
    "expressionAttributeNames",
    "expressionAttributeValues",
    "returnValuesOnConditionCheckFailure",
];
const RETURN_VALUES: &[&str] = &["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"];

fn return_values(text: Option<&str>) -> ReturnValues {
    match text {
        Some("ALL_OLD") => ReturnValues::AllOld,
        Some("UPDATED_OLD") => ReturnValues::UpdatedOld,
        Some("ALL_NEW") => ReturnValues::AllNew,
        Some("UPDATED_NEW") => ReturnValues::UpdatedNew,
        _ => ReturnValues::None,
    }
}

/// UpdateItem.
pub(crate) async fn update_item(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(UPDATE_ITEM, input)?;
    let mut violations = Violations::new(UPDATE_ITEM_MEMBERS);
    check_data_table_name(&mut violations, input::string(input, "TableName"));
    if !input::has(input, "Key") {
        violations.not_null("key", "key");
    }
    let returned = input::string(input, "ReturnValues");
    check_enum(&mut violations, "returnValues", returned, RETURN_VALUES);
    let capacity = ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    check_enum(
        &mut violations,
        "returnItemCollectionMetrics",
        input::string(input, "ReturnItemCollectionMetrics"),
        &["SIZE", "NONE"],
    );
    check_enum(
        &mut violations,
        "conditionalOperator",
        input::string(input, "ConditionalOperator"),
        &["OR", "AND"],
    );
    super::legacy_input::check_attribute_update_constraints(&mut violations, input);
    check_enum(
        &mut violations,
        "returnValuesOnConditionCheckFailure",
        input::string(input, "ReturnValuesOnConditionCheckFailure"),
        &["ALL_OLD", "NONE"],
    );
    violations.into_result()?;
    super::check_expression_parameters(
        input,
        &["AttributeUpdates", "Expected"],
        &["UpdateExpression", "ConditionExpression"],
        Some((
            "UpdateExpression and ConditionExpression are null",
            &["UpdateExpression", "ConditionExpression"],
        )),
        super::items::classic_hint(api),
    )
    .map_err(|e| envelope(e, api.write_layer()))?;
    let key = decode_map(
        input::value(input, "Key").unwrap_or(&Value::Null),
        api.write_layer(),
    )?;
    let legacy_update = match super::legacy_input::attribute_updates(input, api.write_layer())? {
        Some(updates) => Some(
            atoll_expr::legacy::attribute_updates(&updates)
                .map_err(|e| expression_error(e, api.write_layer()))?,
        ),
        None => None,
    };
    let (condition, expressions) = read_write_expressions(
        api,
        input,
        &[ExpressionKind::Update, ExpressionKind::Condition],
    )?;
    let update: Update = match (&expressions.update, legacy_update) {
        (Some(update), _) => (**update).clone(),
        (None, Some(update)) => update,
        // An update with nothing to do still creates the item (key only).
        (None, None) => Update::default(),
    };
    let name = input::string(input, "TableName").unwrap_or_default();
    let table = item_table(api, name).await?;
    check_key(&table.key_schema, &key)?;
    // Checked against the table, after the envelope-wrapped request checks: bare.
    atoll_expr::update::check_key_updates(&update, &expressions.env(), &table.key_schema)
        .map_err(|e| crate::error::ApiError::validation(e.message()))?;
    let report = WriteReport::of(input, capacity, &key);
    let write = SingleWrite {
        key: locate(&table.key_schema, &key)?,
        action: WriteAction::Update {
            key: table.key_schema.key_of(&key),
            update,
        },
        condition,
        names: expressions.names,
        values: expressions.values,
        return_values: return_values(returned),
        return_old_on_condition_failure: return_old_on_condition_failure(input),
    };
    single_write(api, &table, write, report).await
}
