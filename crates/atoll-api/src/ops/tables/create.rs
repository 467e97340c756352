//! CreateTable.

use atoll_model::table::{
    BillingMode, KeyAttribute, KeySchema, StreamSettings, TableClass, TableDefinition, TableStatus,
    Throughput,
};
use serde_json::{Value, json};

use super::{now_ms, required_table_name};
use crate::constraints::{Violations, check_table_name};
use crate::error::{ApiError, ApiResult, Doing};
use crate::input::{self, Object};
use crate::ops::describe::{stream_label, table_description};
use crate::ops::indexes::{
    check_global_indexes, check_index_constraints, check_local_indexes, index_inputs,
};
use crate::ops::keys::{
    KeyElement, attribute_definitions, check_attribute_definition_constraints,
    check_duplicate_definitions, check_key_schema_constraints, check_key_schema_semantics,
    defined_type, key_elements,
};
use crate::ops::table_settings::{
    ATTRIBUTE_DEFINITIONS, GLOBAL_INDEXES, KEY_SCHEMA, LOCAL_INDEXES, ON_DEMAND_THROUGHPUT,
    PROVISIONED_THROUGHPUT, SSE_SPECIFICATION, STREAM_SPECIFICATION, TAGS, WARM_THROUGHPUT,
    check_settings_constraints, check_sse_semantics, check_throughput_bounds, parse_billing_mode,
    parse_table_class, throughput_input,
};
use crate::ops::tags::{check_tags, read_tags};
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
        return Err(crate::ops::unsupported_parameter("OnDemandThroughput"));
    }
    let tags = read_tags(input::list(input, "Tags"));
    check_tags(&tags, 0)?;
    let table_class = parse_table_class(input::string(input, "TableClass"))?;
    if input::has(input, "WarmThroughput") {
        return Err(crate::ops::unsupported_parameter("WarmThroughput"));
    }
    if input::has(input, "ResourcePolicy") {
        return Err(crate::ops::unsupported_parameter("ResourcePolicy"));
    }
    if has_indexes {
        return Err(crate::ops::unsupported_parameter(
            "Secondary indexes (LocalSecondaryIndexes, GlobalSecondaryIndexes)",
        ));
    }
    // DynamoDB's texts by the state of the table holding the name; one still
    // being deleted "already exists" (live service, 2026).
    match api.cluster.table(name).map(|t| t.status) {
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
