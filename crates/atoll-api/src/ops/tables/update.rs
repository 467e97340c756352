//! UpdateTable.

use atoll_cluster::TableUpdate;
use atoll_model::table::{BillingMode, StreamSettings, TableStatus};
use serde_json::{Value, json};

use super::{now_ms, required_table_name};
use crate::constraints::{Violations, check_table_name};
use crate::error::{ApiError, ApiResult, Doing};
use crate::input::{self, Object};
use crate::ops::describe::{stream_label, table_description};
use crate::ops::items::resolve_table_name;
use crate::ops::keys::{attribute_definitions, check_attribute_definition_constraints};
use crate::ops::table_settings::{
    ATTRIBUTE_DEFINITIONS, GSI_UPDATES, ON_DEMAND_THROUGHPUT, PROVISIONED_THROUGHPUT,
    SSE_SPECIFICATION, STREAM_SPECIFICATION, WARM_THROUGHPUT, check_settings_constraints,
    check_sse_semantics, check_throughput_bounds, parse_billing_mode, parse_table_class,
    throughput_input,
};
use crate::shape::common::{BOOLEAN, STRING};
use crate::shape::{Shape, check_members};
use crate::{Api, RequestContext};

static UPDATE_TABLE: &[(&str, &Shape)] = &[
    ("AttributeDefinitions", &ATTRIBUTE_DEFINITIONS),
    ("TableName", &STRING),
    ("BillingMode", &STRING),
    ("ProvisionedThroughput", &PROVISIONED_THROUGHPUT),
    ("GlobalSecondaryIndexUpdates", &GSI_UPDATES),
    ("StreamSpecification", &STREAM_SPECIFICATION),
    ("SSESpecification", &SSE_SPECIFICATION),
    ("TableClass", &STRING),
    ("DeletionProtectionEnabled", &BOOLEAN),
    ("OnDemandThroughput", &ON_DEMAND_THROUGHPUT),
    ("WarmThroughput", &WARM_THROUGHPUT),
];
const UPDATE_TABLE_MEMBERS: &[&str] = &[
    "attributeDefinitions",
    "tableName",
    "billingMode",
    "provisionedThroughput",
    "globalSecondaryIndexUpdates",
    "streamSpecification",
    "sSESpecification",
    "replicaUpdates",
    "tableClass",
    "deletionProtectionEnabled",
    "multiRegionConsistency",
    "globalTableWitnessUpdates",
    "onDemandThroughput",
    "warmThroughput",
];

/// UpdateTable.
pub(crate) async fn update_table(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    check_members(UPDATE_TABLE, input)?;
    let given_name = required_table_name(input)?;
    let billing_text = input::string(input, "BillingMode");
    let throughput = throughput_input(input::object(input, "ProvisionedThroughput"));
    let stream = input::object(input, "StreamSpecification");
    let definitions = attribute_definitions(input::list(input, "AttributeDefinitions"));
    let mut violations = Violations::new(UPDATE_TABLE_MEMBERS);
    check_table_name(&mut violations, "tableName", "tableName", given_name, 3);
    let name = resolve_table_name(given_name);
    if input::has(input, "AttributeDefinitions") {
        check_attribute_definition_constraints(&mut violations, true, &definitions);
    }
    check_settings_constraints(
        &mut violations,
        billing_text,
        throughput.as_ref(),
        stream,
        input::object(input, "SSESpecification"),
    );
    violations.into_result()?;

    let deletion_protection = input::boolean(input, "DeletionProtectionEnabled");
    let table_class_text = input::string(input, "TableClass");
    let other_changes = billing_text.is_some()
        || throughput.is_some()
        || stream.is_some()
        || input::has(input, "GlobalSecondaryIndexUpdates")
        || input::has(input, "SSESpecification")
        || input::has(input, "OnDemandThroughput")
        || input::has(input, "WarmThroughput");
    if !other_changes && deletion_protection.is_none() && table_class_text.is_none() {
        return Err(ApiError::validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, MultiRegionConsistency, DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is required",
        ));
    }
    if deletion_protection.is_some() && (other_changes || table_class_text.is_some()) {
        return Err(ApiError::invalid_parameter(
            "DeletionProtection modification must be the only operation in the request",
        ));
    }
    if table_class_text.is_some() && other_changes {
        return Err(ApiError::invalid_parameter(
            "TableClass modification must be the only operation in the request",
        ));
    }
    let table_class = parse_table_class(table_class_text)?;
    let table = api
        .cluster
        .table_now(name)
        .await
        .ok_or_else(|| ApiError::table_not_found(name))?;
    if table.status == TableStatus::Deleting {
        return Err(ApiError::table_not_found(name));
    }
    let billing_mode = billing_text.map(|t| parse_billing_mode(Some(t)));
    let target_mode = billing_mode.unwrap_or(table.billing_mode);
    if let Some(pt) = &throughput {
        if target_mode == BillingMode::PayPerRequest {
            return Err(ApiError::invalid_parameter(
                "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ));
        }
        check_throughput_bounds(pt)?;
    }
    if billing_mode == Some(BillingMode::Provisioned)
        && table.billing_mode == BillingMode::PayPerRequest
        && throughput.is_none()
    {
        return Err(ApiError::invalid_parameter(
            "ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
        ));
    }
    let requested = throughput.as_ref().map(|pt| {
        (
            pt.read.unwrap_or(0).max(0) as u64,
            pt.write.unwrap_or(0).max(0) as u64,
        )
    });
    if let Some((read, write)) = requested
        && table.billing_mode == BillingMode::Provisioned
        && read == table.throughput.read_capacity_units
        && write == table.throughput.write_capacity_units
    {
        return Err(ApiError::validation(format!(
            "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {}. Requested ReadCapacityUnits: {read}. Current WriteCapacityUnits provisioned for the table: {}. Requested WriteCapacityUnits: {write}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
            table.throughput.read_capacity_units, table.throughput.write_capacity_units
        )));
    }
    let stream_update = match stream {
        None => None,
        Some(spec) => {
            let enabled = input::boolean(spec, "StreamEnabled").unwrap_or(false);
            let view_type = input::string(spec, "StreamViewType");
            let currently_enabled = table.stream.as_ref().is_some_and(|s| s.enabled);
            match (enabled, view_type) {
                (true, None) => {
                    return Err(ApiError::invalid_parameter(
                        "If stream is being enabled then UpdateViewType is required",
                    ));
                }
                (false, Some(_)) => {
                    return Err(ApiError::invalid_parameter(
                        "If stream is being disabled, then UpdateViewType must not be specified",
                    ));
                }
                (true, Some(_)) if currently_enabled => {
                    return Err(ApiError::validation(format!(
                        "Table already has an enabled stream: TableName: {name}"
                    )));
                }
                (false, None) if !currently_enabled => {
                    return Err(ApiError::validation(format!(
                        "Table has no stream to disable: TableName: {name}"
                    )));
                }
                (true, Some(view)) => Some(StreamSettings {
                    enabled: true,
                    view_type: Some(view.to_string()),
                    label: Some(stream_label(now_ms())),
                }),
                (false, None) => Some(StreamSettings {
                    enabled: false,
                    view_type: None,
                    label: table.stream.as_ref().and_then(|s| s.label.clone()),
                }),
            }
        }
    };
    if input::has(input, "GlobalSecondaryIndexUpdates") {
        return Err(crate::ops::unsupported_parameter(
            "GlobalSecondaryIndexUpdates",
        ));
    }
    check_sse_semantics(input::object(input, "SSESpecification"))?;
    if input::has(input, "OnDemandThroughput") {
        return Err(crate::ops::unsupported_parameter("OnDemandThroughput"));
    }
    if input::has(input, "WarmThroughput") {
        return Err(crate::ops::unsupported_parameter("WarmThroughput"));
    }
    let updating = billing_mode.is_some_and(|m| m != table.billing_mode)
        || requested.is_some()
        || stream_update.is_some();
    let update = TableUpdate {
        billing_mode,
        throughput: requested,
        deletion_protection,
        table_class,
        stream: stream_update,
    };
    let updated = api
        .cluster
        .update_table(name, update)
        .await
        .map_err(|e| ApiError::from_cluster(e, Doing::Table(name)))?;
    let stats = api.cluster.table_stats(&updated).await;
    let status = updating.then_some(TableStatus::Updating);
    Ok(json!({"TableDescription": table_description(&updated, &context.region, stats, status)}))
}
