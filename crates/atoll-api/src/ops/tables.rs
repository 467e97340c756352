//! CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable.

use atoll_cluster::TableUpdate;
use atoll_model::table::{
    BillingMode, KeyAttribute, KeySchema, StreamSettings, TableClass, TableDefinition, TableStatus,
    Throughput,
};
use serde_json::{Value, json};

use super::describe::{deleted_table_description, stream_label, table_description};
use super::indexes::{
    check_global_indexes, check_index_constraints, check_local_indexes, index_inputs,
};
use super::items::resolve_table_name;
use super::keys::{
    KeyElement, attribute_definitions, check_attribute_definition_constraints,
    check_duplicate_definitions, check_key_schema_constraints, check_key_schema_semantics,
    defined_type, key_elements,
};
use super::table_settings::{
    ATTRIBUTE_DEFINITIONS, GLOBAL_INDEXES, GSI_UPDATES, KEY_SCHEMA, LOCAL_INDEXES,
    ON_DEMAND_THROUGHPUT, PROVISIONED_THROUGHPUT, SSE_SPECIFICATION, STREAM_SPECIFICATION, TAGS,
    WARM_THROUGHPUT, check_settings_constraints, check_sse_semantics, check_throughput_bounds,
    parse_billing_mode, parse_table_class, throughput_input,
};
use super::tags::{check_tags, read_tags};
use crate::constraints::{
    NAME_PATTERN_CONSTRAINT, Shown, Violations, check_table_name, is_valid_name,
};
use crate::error::{ApiError, ApiResult, Doing};
use crate::input::{self, Object};
use crate::shape::common::{BOOLEAN, STRING};
use crate::shape::{Shape, check_members};
use crate::{Api, RequestContext};

static CREATE_TABLE: &[(&str, &Shape)] = &[
    ("AttributeDefinitions", &ATTRIBUTE_DEFINITIONS),
    ("TableName", &STRING),
    ("KeySchema", &KEY_SCHEMA),
    ("LocalSecondaryIndexes", &LOCAL_INDEXES),
    ("GlobalSecondaryIndexes", &GLOBAL_INDEXES),
    ("BillingMode", &STRING),
    ("ProvisionedThroughput", &PROVISIONED_THROUGHPUT),
    ("StreamSpecification", &STREAM_SPECIFICATION),
    ("SSESpecification", &SSE_SPECIFICATION),
    ("Tags", &TAGS),
    ("TableClass", &STRING),
    ("DeletionProtectionEnabled", &BOOLEAN),
    ("WarmThroughput", &WARM_THROUGHPUT),
    ("ResourcePolicy", &STRING),
    ("OnDemandThroughput", &ON_DEMAND_THROUGHPUT),
];
const CREATE_TABLE_MEMBERS: &[&str] = &[
    "attributeDefinitions",
    "tableName",
    "keySchema",
    "localSecondaryIndexes",
    "globalSecondaryIndexes",
    "billingMode",
    "provisionedThroughput",
    "streamSpecification",
    "sSESpecification",
    "tags",
    "tableClass",
    "deletionProtectionEnabled",
    "warmThroughput",
    "resourcePolicy",
    "onDemandThroughput",
];

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

static TABLE_NAME_ONLY: &[(&str, &Shape)] = &[("TableName", &STRING)];
static LIST_TABLES: &[(&str, &Shape)] = &[
    ("ExclusiveStartTableName", &STRING),
    ("Limit", &crate::shape::common::INTEGER),
];

/// The `TableName` a control-plane operation requires.
fn required_table_name(input: &Object) -> ApiResult<&str> {
    input::string(input, "TableName").ok_or_else(|| {
        ApiError::validation(
            "The parameter 'TableName' is required but was not present in the request",
        )
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// CreateTable.
pub(crate) async fn create_table(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    check_members(CREATE_TABLE, input)?;
    let name = required_table_name(input)?;
    let definitions = attribute_definitions(input::list(input, "AttributeDefinitions"));
    let table_keys = key_elements(input::list(input, "KeySchema"));
    let local_indexes = input::has(input, "LocalSecondaryIndexes")
        .then(|| index_inputs(input::list(input, "LocalSecondaryIndexes")));
    let global_indexes = input::has(input, "GlobalSecondaryIndexes")
        .then(|| index_inputs(input::list(input, "GlobalSecondaryIndexes")));
    let billing_text = input::string(input, "BillingMode");
    let throughput = throughput_input(input::object(input, "ProvisionedThroughput"));
    let stream = input::object(input, "StreamSpecification");
    let sse = input::object(input, "SSESpecification");

    let mut violations = Violations::new(CREATE_TABLE_MEMBERS);
    check_table_name(&mut violations, "tableName", "tableName", name, 3);
    check_attribute_definition_constraints(
        &mut violations,
        input::has(input, "AttributeDefinitions"),
        &definitions,
    );
    check_key_schema_constraints(
        &mut violations,
        "keySchema",
        "keySchema",
        input::has(input, "KeySchema"),
        &table_keys,
    );
    if let Some(indexes) = &local_indexes {
        check_index_constraints(&mut violations, "localSecondaryIndexes", indexes);
    }
    if let Some(indexes) = &global_indexes {
        check_index_constraints(&mut violations, "globalSecondaryIndexes", indexes);
    }
    check_settings_constraints(
        &mut violations,
        billing_text,
        throughput.as_ref(),
        stream,
        sse,
    );
    violations.into_result()?;

    let billing_mode = parse_billing_mode(billing_text);
    match (billing_mode, &throughput) {
        (BillingMode::PayPerRequest, Some(_)) => {
            return Err(ApiError::invalid_parameter(
                "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ));
        }
        (BillingMode::Provisioned, None) => {
            return Err(ApiError::invalid_parameter(
                "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
            ));
        }
        (_, Some(pt)) => check_throughput_bounds(pt)?,
        _ => {}
    }
    check_duplicate_definitions(&definitions)?;
    if table_keys.len() > definitions.len() {
        return Err(ApiError::validation(
            "Invalid KeySchema: Some index key attribute have no definition",
        ));
    }
    check_key_schema_semantics(&table_keys, &definitions)?;
    let has_indexes = local_indexes.is_some() || global_indexes.is_some();
    if !has_indexes && definitions.len() != table_keys.len() {
        return Err(ApiError::invalid_parameter(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    if let Some(indexes) = &local_indexes {
        check_local_indexes(indexes, &table_keys, &definitions)?;
    }
    if let Some(indexes) = &global_indexes {
        let local_names: Vec<&str> = local_indexes
            .iter()
            .flatten()
            .filter_map(|i| i.name.as_deref())
            .collect();
        check_global_indexes(indexes, &local_names, &definitions, billing_mode)?;
    }
    if has_indexes {
        let mut used: Vec<&str> = table_keys
            .iter()
            .filter_map(|k| k.name.as_deref())
            .collect();
        for index in local_indexes
            .iter()
            .flatten()
            .chain(global_indexes.iter().flatten())
        {
            used.extend(index.key_schema.iter().filter_map(|k| k.name.as_deref()));
        }
        let unused: Vec<&str> = definitions
            .iter()
            .filter_map(|d| d.name.as_deref())
            .filter(|d| !used.contains(d))
            .collect();
        if !unused.is_empty() {
            let mut used_unique: Vec<&str> = Vec::new();
            for name in used {
                if !used_unique.contains(&name) {
                    used_unique.push(name);
                }
            }
            return Err(ApiError::invalid_parameter(format!(
                "Some AttributeDefinitions are not used. AttributeDefinitions: [{}], keys used: [{}]",
                definitions
                    .iter()
                    .filter_map(|d| d.name.as_deref())
                    .collect::<Vec<_>>()
                    .join(", "),
                used_unique.join(", ")
            )));
        }
    }
    let stream_settings = match stream {
        None => None,
        Some(spec) => {
            let enabled = input::boolean(spec, "StreamEnabled").unwrap_or(false);
            let view_type = input::string(spec, "StreamViewType");
            match (enabled, view_type) {
                (false, Some(_)) => {
                    return Err(ApiError::invalid_parameter(
                        "Table is being created with a stream disabled, UpdateViewType should not be specified",
                    ));
                }
                (true, None) => {
                    return Err(ApiError::invalid_parameter(
                        "Table is being created with a stream enabled, UpdateViewType is required",
                    ));
                }
                (false, None) => None,
                (true, Some(view)) => Some(StreamSettings {
                    enabled: true,
                    view_type: Some(view.to_string()),
                    label: None,
                }),
            }
        }
    };
    check_sse_semantics(sse)?;
    if let Some(on_demand) = input::object(input, "OnDemandThroughput") {
        if billing_mode == BillingMode::Provisioned {
            let member = if input::has(on_demand, "MaxReadRequestUnits") {
                "MaxReadRequestUnits"
            } else {
                "MaxWriteRequestUnits"
            };
            return Err(ApiError::invalid_parameter(format!(
                "{member} for OnDemandThroughput cannot be specified when table BillingMode is PROVISIONED."
            )));
        }
        return Err(super::unsupported_parameter("OnDemandThroughput"));
    }
    let tags = read_tags(input::list(input, "Tags"));
    check_tags(&tags, 0)?;
    let table_class = parse_table_class(input::string(input, "TableClass"))?;
    if input::has(input, "WarmThroughput") {
        return Err(super::unsupported_parameter("WarmThroughput"));
    }
    if input::has(input, "ResourcePolicy") {
        return Err(super::unsupported_parameter("ResourcePolicy"));
    }
    if has_indexes {
        return Err(super::unsupported_parameter(
            "Secondary indexes (LocalSecondaryIndexes, GlobalSecondaryIndexes)",
        ));
    }
    // DynamoDB's texts by the state of the table holding the name; one still
    // being deleted "already exists" (live service, 2026).
    match api.cluster.catalog().table(name).map(|t| t.status) {
        Some(TableStatus::Creating) => return Err(ApiError::being_created(name)),
        Some(_) => {
            return Err(ApiError::table_exists(name));
        }
        None => {}
    }

    let key_attribute = |element: Option<&KeyElement>| -> Option<KeyAttribute> {
        let name = element?.name.clone()?;
        let scalar_type = defined_type(&definitions, &name)?;
        Some(KeyAttribute { name, scalar_type })
    };
    let partition_key = key_attribute(table_keys.first()).ok_or_else(|| {
        ApiError::validation("Invalid KeySchema: Some index key attribute have no definition")
    })?;
    let sort_key = key_attribute(table_keys.get(1));
    let created_ms = now_ms();
    let definition = TableDefinition {
        name: name.to_string(),
        table_id: String::new(),
        region: context.region.clone(),
        key_schema: KeySchema {
            partition_key,
            sort_key,
        },
        attribute_definitions: definitions
            .iter()
            .filter_map(|d| {
                Some(KeyAttribute {
                    name: d.name.clone()?,
                    scalar_type: defined_type(&definitions, d.name.as_deref()?)?,
                })
            })
            .collect(),
        billing_mode,
        throughput: Throughput {
            read_capacity_units: throughput.as_ref().and_then(|t| t.read).unwrap_or(0).max(0)
                as u64,
            write_capacity_units: throughput
                .as_ref()
                .and_then(|t| t.write)
                .unwrap_or(0)
                .max(0) as u64,
            ..Throughput::default()
        },
        // Recorded by switches; a table created on demand is dated by its
        // creation (describe.rs), which the cluster fixes.
        last_on_demand_switch_ms: None,
        table_class: table_class.unwrap_or(TableClass::Standard),
        deletion_protection: input::boolean(input, "DeletionProtectionEnabled").unwrap_or(false),
        stream: stream_settings.map(|s| StreamSettings {
            label: Some(stream_label(created_ms)),
            ..s
        }),
        tags,
        created_ms,
        status: TableStatus::Creating,
        keyspace: String::new(),
        partitions: Vec::new(),
    };
    let created = api
        .cluster
        .create_table(definition)
        .await
        .map_err(|e| ApiError::from_cluster(e, Doing::Table(name)))?;
    let stats = api.cluster.table_stats(&created).await;
    Ok(json!({
        "TableDescription": table_description(&created, &context.region, stats, Some(TableStatus::Creating))
    }))
}

/// The table a DescribeTable/DeleteTable names: a name, or (since 2024) an ARN.
fn table_name_constraints(input: &Object) -> ApiResult<&str> {
    check_members(TABLE_NAME_ONLY, input)?;
    let name = required_table_name(input)?;
    let mut violations = Violations::new(&["tableName"]);
    check_table_name(&mut violations, "tableName", "tableName", name, 3);
    violations.into_result()?;
    Ok(resolve_table_name(name))
}

/// DescribeTable.
pub(crate) async fn describe_table(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    let name = table_name_constraints(input)?;
    let table = api
        .cluster
        .catalog()
        .table_or_catch_up(name)
        .await
        .ok_or_else(|| ApiError::table_not_found(name))?;
    let stats = api.cluster.table_stats(&table).await;
    Ok(json!({"Table": table_description(&table, &context.region, stats, None)}))
}

/// DeleteTable.
pub(crate) async fn delete_table(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    let name = table_name_constraints(input)?;
    let table = api
        .cluster
        .catalog()
        .table_or_catch_up(name)
        .await
        .ok_or_else(|| ApiError::table_not_found(name))?;
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
    Ok(json!({"TableDescription": deleted_table_description(&deleted, &context.region, stats)}))
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
        .catalog()
        .table_or_catch_up(name)
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
        return Err(super::unsupported_parameter("GlobalSecondaryIndexUpdates"));
    }
    check_sse_semantics(input::object(input, "SSESpecification"))?;
    if input::has(input, "OnDemandThroughput") {
        return Err(super::unsupported_parameter("OnDemandThroughput"));
    }
    if input::has(input, "WarmThroughput") {
        return Err(super::unsupported_parameter("WarmThroughput"));
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
