//! CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable.

mod create;
mod index_updates;
mod update;

use atoll_model::table::TableStatus;
use serde_json::{Value, json};

use super::describe::{deleted_table_description, table_description};
use super::items::resolve_table_name;
use crate::constraints::{
    NAME_PATTERN_CONSTRAINT, Shown, Violations, check_table_name, is_valid_name,
};
use crate::error::{ApiError, ApiResult, Doing};
use crate::input::{self, Object};
use crate::shape::common::STRING;
use crate::shape::{Shape, check_members};
use crate::{Api, RequestContext};

pub(crate) use create::create_table;
pub(crate) use update::update_table;

static TABLE_NAME_ONLY: &[(&str, &Shape)] = &[("TableName", &STRING)];
static LIST_TABLES: &[(&str, &Shape)] = &[
    ("ExclusiveStartTableName", &STRING),
    ("Limit", &crate::shape::common::INTEGER),
];

/// The `TableName` a control-plane operation requires.
pub(crate) fn required_table_name(input: &Object) -> ApiResult<&str> {
    input::string(input, "TableName").ok_or_else(|| {
        ApiError::validation(
            "The parameter 'TableName' is required but was not present in the request",
        )
    })
}

use crate::ops::describe::now_ms;

/// The table a DescribeTable/DeleteTable names: a name, or (since 2024) an ARN.
fn table_name_constraints(input: &Object) -> ApiResult<&str> {
    check_members(TABLE_NAME_ONLY, input)?;
    let name = required_table_name(input)?;
    let mut violations = Violations::new(&["tableName"]);
    check_table_name(&mut violations, "tableName", "tableName", name, 3);
    violations.into_result()?;
    Ok(resolve_table_name(name))
}

/// The table a table request names, in any state, as table requests
/// word its absence.
pub(crate) async fn table_or_not_found(
    api: &Api,
    name: &str,
) -> ApiResult<std::sync::Arc<atoll_model::table::TableDefinition>> {
    api.cluster
        .catalog()
        .table_or_catch_up(name)
        .await
        .ok_or_else(|| ApiError::table_not_found(name))
}

/// DescribeTable.
pub(crate) async fn describe_table(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    let name = table_name_constraints(input)?;
    let table = table_or_not_found(api, name).await?;
    let stats = crate::ops::describe::described_stats(api, &table).await;
    Ok(json!({"Table": table_description(&table, context, &stats, None)}))
}

/// DeleteTable.
pub(crate) async fn delete_table(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    let name = table_name_constraints(input)?;
    let table = table_or_not_found(api, name).await?;
    match table.status {
        TableStatus::Creating => return Err(ApiError::being_created(name)),
        TableStatus::Deleting => return Err(ApiError::being_deleted(name)),
        TableStatus::Active | TableStatus::Updating => {}
    }
    let stats = api.cluster.table_stats(&table).await;
    let deleted = api
        .cluster
        .delete_table(name)
        .await
        .map_err(|e| ApiError::from_cluster(e, Doing::Table(name)))?;
    Ok(json!({"TableDescription": deleted_table_description(&deleted, context, stats)}))
}

/// ListTables.
pub(crate) async fn list_tables(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(LIST_TABLES, input)?;
    let start = input::string(input, "ExclusiveStartTableName");
    let limit = input::long(input, "Limit");
    let mut violations = Violations::new(&["exclusiveStartTableName", "limit"]);
    if let Some(start) = start {
        if !is_valid_name(start) {
            violations.add(
                "exclusiveStartTableName",
                Shown::Text(start),
                "exclusiveStartTableName",
                NAME_PATTERN_CONSTRAINT,
            );
        }
        let length = start.chars().count();
        if length < 3 {
            violations.add(
                "exclusiveStartTableName",
                Shown::Text(start),
                "exclusiveStartTableName",
                "Member must have length greater than or equal to 3",
            );
        }
        if length > 255 {
            violations.add(
                "exclusiveStartTableName",
                Shown::Text(start),
                "exclusiveStartTableName",
                "Member must have length less than or equal to 255",
            );
        }
    }
    if let Some(limit) = limit {
        if limit < 1 {
            violations.add(
                "limit",
                Shown::Text(&limit.to_string()),
                "limit",
                "Member must have value greater than or equal to 1",
            );
        }
        if limit > 100 {
            violations.add(
                "limit",
                Shown::Text(&limit.to_string()),
                "limit",
                "Member must have value less than or equal to 100",
            );
        }
    }
    violations.into_result()?;
    let limit = limit.unwrap_or(100).clamp(1, 100) as usize;
    let names: Vec<String> = api
        .cluster
        .catalog()
        .table_names_caught_up()
        .await
        .into_iter()
        .filter(|n| start.is_none_or(|s| n.as_str() > s))
        .collect();
    let more = names.len() > limit;
    let page: Vec<String> = names.into_iter().take(limit).collect();
    let mut output = json!({"TableNames": page});
    if more && let Some(last) = page.last() {
        output["LastEvaluatedTableName"] = json!(last);
    }
    Ok(output)
}
