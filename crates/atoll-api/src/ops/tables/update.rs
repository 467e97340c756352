//! UpdateTable.

use atoll_cluster::TableUpdate;
use atoll_model::table::{
    BillingMode, IndexStatus, StreamSettings, TableClass, TableDefinition, TableStatus,
};
use serde_json::{Value, json};

use super::index_updates::{
    IndexChange, IndexChanges, IndexUpdate, TableChangeContext, check_index_update_constraints,
    check_indexes_provisioned, parse_index_updates, resolve_index_updates,
};
use super::{now_ms, required_table_name, table_or_not_found};
use crate::constraints::{Violations, check_table_name};
use crate::error::{ApiError, ApiResult, Doing};
use crate::input::{self, Object};
use crate::ops::describe::{stream_label, table_description};
use crate::ops::items::resolve_table_name;
use crate::ops::keys::{attribute_definitions, check_attribute_definition_constraints};
use crate::ops::table_settings::{
    ATTRIBUTE_DEFINITIONS, GSI_UPDATES, ON_DEMAND_THROUGHPUT, PROVISIONED_THROUGHPUT,
    SSE_SPECIFICATION, STREAM_SPECIFICATION, ThroughputInput, WARM_THROUGHPUT,
    check_settings_constraints, check_sse_semantics, check_throughput_bounds, parse_billing_mode,
    parse_table_class, throughput_input,
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

/// A checked UpdateTable request: the changes it asks for, before the table is known.
struct UpdateTableRequest<'a> {
    /// The table's name (an ARN resolved to it).
    name: &'a str,
    billing_mode: Option<BillingMode>,
    throughput: Option<ThroughputInput>,
    stream: Option<&'a Object>,
    deletion_protection: Option<bool>,
    table_class: Option<TableClass>,
    /// `GlobalSecondaryIndexUpdates`, checked as far as the request goes.
    gsi_updates: Option<Vec<IndexUpdate>>,
    /// The request, for the index updates' checks against the table.
    input: &'a Object,
    sse: Option<&'a Object>,
    on_demand_throughput: bool,
    warm_throughput: bool,
}

/// UpdateTable.
pub(crate) async fn update_table(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    let request = parse_update_table(input)?;
    let name = request.name;
    let (update, index_changes, updating) = resolve_update_table(api, request).await?;
    execute_update_table(api, context, name, (update, index_changes), updating).await
}

/// The checks DynamoDB makes of an UpdateTable request before it looks at the table.
fn parse_update_table(input: &Object) -> ApiResult<UpdateTableRequest<'_>> {
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
    check_index_update_constraints(&mut violations, input);
    violations.into_result()?;

    let deletion_protection = input::boolean(input, "DeletionProtectionEnabled");
    let table_class_text = input::string(input, "TableClass");
    let settings_changes = billing_text.is_some()
        || throughput.is_some()
        || stream.is_some()
        || input::has(input, "SSESpecification")
        || input::has(input, "OnDemandThroughput")
        || input::has(input, "WarmThroughput");
    // An empty list of index updates alone counts as none.
    let gsi_listed =
        input::list(input, "GlobalSecondaryIndexUpdates").is_some_and(|l| !l.is_empty());
    let other_changes = settings_changes || gsi_listed;
    check_one_kind_of_change(
        other_changes,
        deletion_protection.is_some(),
        table_class_text.is_some(),
    )?;
    let table_class = parse_table_class(table_class_text)?;
    let gsi_updates = parse_index_updates(input, settings_changes)?;
    Ok(UpdateTableRequest {
        name,
        billing_mode: billing_text.map(|t| parse_billing_mode(Some(t))),
        throughput,
        stream,
        deletion_protection,
        table_class,
        gsi_updates,
        input,
        sse: input::object(input, "SSESpecification"),
        on_demand_throughput: input::has(input, "OnDemandThroughput"),
        warm_throughput: input::has(input, "WarmThroughput"),
    })
}

/// DynamoDB changes deletion protection or the table class only on their own.
fn check_one_kind_of_change(
    other_changes: bool,
    deletion_protection: bool,
    table_class: bool,
) -> ApiResult<()> {
    if !other_changes && !deletion_protection && !table_class {
        return Err(ApiError::validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, MultiRegionConsistency, DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is required",
        ));
    }
    if deletion_protection && (other_changes || table_class) {
        return Err(ApiError::invalid_parameter(
            "DeletionProtection modification must be the only operation in the request",
        ));
    }
    if table_class && other_changes {
        return Err(ApiError::invalid_parameter(
            "TableClass modification must be the only operation in the request",
        ));
    }
    Ok(())
}

/// The cluster's update and index changes, checked against the table, and
/// whether they make the table UPDATING.
async fn resolve_update_table(
    api: &Api,
    request: UpdateTableRequest<'_>,
) -> ApiResult<(TableUpdate, IndexChanges, bool)> {
    let name = request.name;
    let table = table_or_not_found(api, name).await?;
    if table.status == TableStatus::Deleting {
        return Err(ApiError::table_not_found(name));
    }
    let requested = check_throughput_change(&request, &table)?;
    let stream_update = stream_update(request.stream, &table, name)?;
    let billing_mode = request.billing_mode;
    let context = TableChangeContext {
        changes_table_throughput: request.throughput.is_some(),
        changes_stream: request.stream.is_some(),
        billing_mode: billing_mode.unwrap_or(table.billing_mode),
        switching_mode: billing_mode.is_some_and(|m| m != table.billing_mode),
    };
    let index_changes = match request.gsi_updates {
        Some(updates) => resolve_index_updates(
            &table,
            request.input,
            updates,
            &context,
            api.config.max_global_indexes,
        )?,
        None => IndexChanges::default(),
    };
    check_indexes_provisioned(&table, &context, &index_changes)?;
    check_sse_semantics(request.sse)?;
    if request.on_demand_throughput {
        return Err(crate::ops::unsupported_parameter("OnDemandThroughput"));
    }
    if request.warm_throughput {
        return Err(crate::ops::unsupported_parameter("WarmThroughput"));
    }
    let updating = context.switching_mode
        || requested.is_some()
        || stream_update.is_some()
        || index_changes.online.is_some()
        || !index_changes.throughput.is_empty();
    let update = TableUpdate {
        // The mode the table has already changes nothing.
        billing_mode: billing_mode.filter(|_| context.switching_mode),
        throughput: requested,
        deletion_protection: request.deletion_protection,
        table_class: request.table_class,
        stream: stream_update,
    };
    Ok((update, index_changes, updating))
}

/// The (read, write) units asked for, if the table's billing mode takes them and they change.
fn check_throughput_change(
    request: &UpdateTableRequest<'_>,
    table: &TableDefinition,
) -> ApiResult<Option<(u64, u64)>> {
    let billing_mode = request.billing_mode;
    let throughput = &request.throughput;
    let target_mode = billing_mode.unwrap_or(table.billing_mode);
    if let Some(pt) = throughput {
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
    Ok(requested)
}

/// The stream change asked for, refused where it does not fit the table's stream.
fn stream_update(
    stream: Option<&Object>,
    table: &TableDefinition,
    name: &str,
) -> ApiResult<Option<StreamSettings>> {
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
                // The view type stays: the stream, off, is still read as it was.
                (false, None) => Some(StreamSettings {
                    enabled: false,
                    view_type: table.stream.as_ref().and_then(|s| s.view_type.clone()),
                    label: table.stream.as_ref().and_then(|s| s.label.clone()),
                }),
            }
        }
    };
    Ok(stream_update)
}

/// Applies the update (and the index changes) and describes the table.
async fn execute_update_table(
    api: &Api,
    context: &RequestContext,
    name: &str,
    (update, index_changes): (TableUpdate, IndexChanges),
    updating: bool,
) -> ApiResult<Value> {
    let cluster_error = |e| ApiError::from_cluster(e, Doing::Table(name));
    let switching_to_on_demand = update.billing_mode == Some(BillingMode::PayPerRequest);
    let IndexChanges { online, throughput } = index_changes;
    // The indexes whose throughput this changes, which the answer shows
    // UPDATING (as the table): the change itself is in force at once.
    let mut updating_indexes: Vec<String> = throughput.iter().map(|c| c.index.clone()).collect();
    let settings_change = update.billing_mode.is_some()
        || update.throughput.is_some()
        || update.deletion_protection.is_some()
        || update.table_class.is_some()
        || update.stream.is_some()
        || !throughput.is_empty();
    let mut updated = match (settings_change, &online) {
        (false, Some(_)) => None,
        _ => Some(
            api.cluster
                .update_table_and_indexes(name, update, throughput)
                .await
                .map_err(cluster_error)?,
        ),
    };
    if let Some(table) = &updated
        && switching_to_on_demand
    {
        updating_indexes.extend(table.global_indexes.iter().map(|i| i.name.clone()));
    }
    match online {
        Some(IndexChange::Create(index)) => {
            updated = Some(
                api.cluster
                    .create_global_index(name, index)
                    .await
                    .map_err(cluster_error)?,
            );
        }
        Some(IndexChange::Delete(index)) => {
            updated = Some(
                api.cluster
                    .delete_global_index(name, &index)
                    .await
                    .map_err(cluster_error)?,
            );
        }
        None => {}
    }
    let updated = match updated {
        Some(updated) => updated,
        None => table_or_not_found(api, name).await?,
    };
    let stats = crate::ops::describe::described_stats(api, &updated).await;
    let status = updating.then_some(TableStatus::Updating);
    let mut described = (*updated).clone();
    for index in &mut described.global_indexes {
        if index.status == IndexStatus::Active && updating_indexes.contains(&index.name) {
            index.status = IndexStatus::Updating;
        }
    }
    Ok(json!({"TableDescription": table_description(&described, context, &stats, status)}))
}
