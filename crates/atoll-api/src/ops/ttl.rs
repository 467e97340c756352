//! UpdateTimeToLive and DescribeTimeToLive: a table's Time to Live setting,
//! with DynamoDB's checks in its order (docs/research/streams-ttl.md §6).

use atoll_model::table::TableStatus;
use serde_json::{Value, json};

use super::describe::now_ms;
use super::tables::required_table_name;
use crate::Api;
use crate::constraints::{Shown, Violations, check_table_name};
use crate::error::{ApiError, ApiResult, Doing, ErrorKind};
use crate::input::{self, Object};
use crate::ops::items::resolve_table_name;
use crate::shape::common::{BOOLEAN, STRING};
use crate::shape::{Shape, check_members};

static TTL_SPECIFICATION: Shape = Shape::Struct(
    "TimeToLiveSpecification",
    &[("Enabled", &BOOLEAN), ("AttributeName", &STRING)],
);
static UPDATE_TTL: &[(&str, &Shape)] = &[
    ("TableName", &STRING),
    ("TimeToLiveSpecification", &TTL_SPECIFICATION),
];
static DESCRIBE_TTL: &[(&str, &Shape)] = &[("TableName", &STRING)];

/// UpdateTimeToLive.
pub(crate) async fn update_time_to_live(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(UPDATE_TTL, input)?;
    let given_name = required_table_name(input)?;
    let spec = input::object(input, "TimeToLiveSpecification");
    let enabled = spec.and_then(|s| input::boolean(s, "Enabled"));
    let attribute = spec.and_then(|s| input::string(s, "AttributeName"));
    let mut violations = Violations::new(&["tableName", "timeToLiveSpecification"]);
    check_table_name(&mut violations, "tableName", "tableName", given_name, 3);
    match spec {
        None => violations.not_null("timeToLiveSpecification", "timeToLiveSpecification"),
        Some(_) => {
            let member = "timeToLiveSpecification";
            match attribute {
                None => violations.not_null(member, "timeToLiveSpecification.attributeName"),
                Some(name) => {
                    let path = "timeToLiveSpecification.attributeName";
                    let length = name.chars().count();
                    if length < 1 {
                        let constraint = "Member must have length greater than or equal to 1";
                        violations.add(member, Shown::Text(name), path, constraint);
                    }
                    if length > 255 {
                        let constraint = "Member must have length less than or equal to 255";
                        violations.add(member, Shown::Text(name), path, constraint);
                    }
                }
            }
            if enabled.is_none() {
                violations.not_null(member, "timeToLiveSpecification.enabled");
            }
        }
    }
    violations.into_result()?;
    let name = resolve_table_name(given_name);
    let (attribute, enabled) = (attribute.unwrap_or_default(), enabled.unwrap_or(false));
    let table = api
        .cluster
        .catalog()
        .table_or_catch_up(name)
        .await
        .filter(|t| t.index_of.is_none())
        .ok_or_else(|| ApiError::table_not_found(name))?;
    match table.status {
        TableStatus::Active | TableStatus::Updating => {}
        TableStatus::Creating => return Err(ApiError::being_created(name)),
        TableStatus::Deleting => return Err(ApiError::table_not_found(name)),
    }
    let current = table.time_to_live.as_ref().filter(|ttl| ttl.enabled);
    match (current, enabled) {
        (Some(current), true) if current.attribute == attribute => {
            return Err(ApiError::validation("TimeToLive is already enabled"));
        }
        (Some(current), _) if current.attribute != attribute => {
            return Err(ApiError::validation(format!(
                "TimeToLive is active on a different AttributeName: current AttributeName is {}",
                current.attribute
            )));
        }
        (None, false) => return Err(ApiError::validation("TimeToLive is already disabled")),
        _ => {}
    }
    let interval_ms = api.config.ttl_change_interval_ms;
    if let Some(last) = &table.time_to_live
        && now_ms().saturating_sub(last.changed_ms) < interval_ms
    {
        return Err(ApiError::validation(
            "Time to live has been modified multiple times within a fixed interval",
        ));
    }
    api.cluster
        .set_time_to_live(name, attribute, enabled)
        .await
        .map_err(|e| ApiError::from_cluster(e, Doing::Table(name)))?;
    Ok(json!({"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}))
}

/// DescribeTimeToLive.
pub(crate) async fn describe_time_to_live(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(DESCRIBE_TTL, input)?;
    let given_name = required_table_name(input)?;
    let mut violations = Violations::new(&["tableName"]);
    check_table_name(&mut violations, "tableName", "tableName", given_name, 1);
    violations.into_result()?;
    let name = resolve_table_name(given_name);
    let table = api
        .cluster
        .catalog()
        .table_or_catch_up(name)
        .await
        .filter(|t| t.index_of.is_none())
        .ok_or_else(|| ApiError::table_not_found(name))?;
    if matches!(table.status, TableStatus::Creating | TableStatus::Deleting) {
        let state = table.status.as_str();
        return Err(ApiError::new(
            ErrorKind::Validation,
            format!(
                "Cannot describe time to live while table is in {state} state: Current table state is {state}"
            ),
        ));
    }
    let description = match table.time_to_live.as_ref().filter(|ttl| ttl.enabled) {
        Some(ttl) => json!({"TimeToLiveStatus": "ENABLED", "AttributeName": ttl.attribute}),
        None => json!({"TimeToLiveStatus": "DISABLED"}),
    };
    Ok(json!({"TimeToLiveDescription": description}))
}
