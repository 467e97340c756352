//! CreateTable.

use atoll_model::table::{
    BillingMode, GlobalIndex, KeyAttribute, KeySchema, LocalIndex, StreamSettings, TableClass,
    TableDefinition, TableStatus, Throughput,
};
use serde_json::{Value, json};

use super::{now_ms, required_table_name};
use crate::constraints::{Violations, check_table_name};
use crate::error::{ApiError, ApiResult, Doing};
use crate::input::{self, Object};
use crate::ops::describe::{stream_label, table_description};
use crate::ops::indexes::{
    IndexInput, check_global_indexes, check_index_constraints, check_local_indexes,
    global_index_definitions, index_inputs, local_index_definitions,
};
use crate::ops::keys::{
    AttributeDefinitionInput, KeyElement, attribute_definitions,
    check_attribute_definition_constraints, check_duplicate_definitions,
    check_key_schema_constraints, check_key_schema_semantics, defined_type, key_elements,
};
use crate::ops::table_settings::{
    ATTRIBUTE_DEFINITIONS, GLOBAL_INDEXES, KEY_SCHEMA, LOCAL_INDEXES, ON_DEMAND_THROUGHPUT,
    PROVISIONED_THROUGHPUT, SSE_SPECIFICATION, STREAM_SPECIFICATION, TAGS, ThroughputInput,
    WARM_THROUGHPUT, check_settings_constraints, check_sse_semantics, check_throughput_bounds,
    parse_billing_mode, parse_table_class, throughput_input,
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

/// CreateTable's members as sent, before any check.
struct CreateTableMembers<'a> {
    name: &'a str,
    definitions: Vec<AttributeDefinitionInput>,
    table_keys: Vec<KeyElement>,
    local_indexes: Option<Vec<IndexInput>>,
    global_indexes: Option<Vec<IndexInput>>,
    billing_text: Option<&'a str>,
    throughput: Option<ThroughputInput>,
    stream: Option<&'a Object>,
    sse: Option<&'a Object>,
}

impl CreateTableMembers<'_> {
    /// Whether the request names secondary indexes of either kind.
    fn has_indexes(&self) -> bool {
        self.local_indexes.is_some() || self.global_indexes.is_some()
    }
}

/// A checked CreateTable request: the table to create.
struct CreateTableRequest<'a> {
    name: &'a str,
    definitions: Vec<AttributeDefinitionInput>,
    table_keys: Vec<KeyElement>,
    billing_mode: BillingMode,
    throughput: Option<ThroughputInput>,
    stream: Option<StreamSettings>,
    tags: Vec<(String, String)>,
    table_class: Option<TableClass>,
    deletion_protection: bool,
    local_indexes: Vec<LocalIndex>,
    global_indexes: Vec<GlobalIndex>,
}

/// CreateTable.
pub(crate) async fn create_table(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    let request = parse_create_table(input, api.config.max_global_indexes)?;
    resolve_create_table(api, request.name)?;
    execute_create_table(api, context, request).await
}

/// Every check DynamoDB makes of a CreateTable request before it looks at the name's table.
fn parse_create_table(
    input: &Object,
    max_global_indexes: usize,
) -> ApiResult<CreateTableRequest<'_>> {
    check_members(CREATE_TABLE, input)?;
    let members = read_create_table_members(input)?;
    check_create_table_constraints(input, &members)?;
    let billing_mode =
        check_create_table_billing(members.billing_text, members.throughput.as_ref())?;
    check_create_table_keys(&members, billing_mode, max_global_indexes)?;
    let stream = create_stream_settings(members.stream)?;
    check_sse_semantics(members.sse)?;
    check_on_demand_throughput(input, billing_mode)?;
    let tags = read_tags(input::list(input, "Tags"));
    check_tags(&tags, 0)?;
    let table_class = parse_table_class(input::string(input, "TableClass"))?;
    if input::has(input, "WarmThroughput") {
        return Err(crate::ops::unsupported_parameter("WarmThroughput"));
    }
    if input::has(input, "ResourcePolicy") {
        return Err(crate::ops::unsupported_parameter("ResourcePolicy"));
    }
    let global_indexes = match &members.global_indexes {
        Some(indexes) => global_index_definitions(indexes, &members.definitions)?,
        None => Vec::new(),
    };
    let local_indexes = match &members.local_indexes {
        Some(indexes) => local_index_definitions(indexes, &members.definitions)?,
        None => Vec::new(),
    };
    Ok(CreateTableRequest {
        name: members.name,
        definitions: members.definitions,
        table_keys: members.table_keys,
        billing_mode,
        throughput: members.throughput,
        stream,
        tags,
        table_class,
        deletion_protection: input::boolean(input, "DeletionProtectionEnabled").unwrap_or(false),
        local_indexes,
        global_indexes,
    })
}

/// Reads the members the checks share; only a missing TableName fails here.
fn read_create_table_members(input: &Object) -> ApiResult<CreateTableMembers<'_>> {
    Ok(CreateTableMembers {
        name: required_table_name(input)?,
        definitions: attribute_definitions(input::list(input, "AttributeDefinitions")),
        table_keys: key_elements(input::list(input, "KeySchema")),
        local_indexes: input::has(input, "LocalSecondaryIndexes")
            .then(|| index_inputs(input::list(input, "LocalSecondaryIndexes"))),
        global_indexes: input::has(input, "GlobalSecondaryIndexes")
            .then(|| index_inputs(input::list(input, "GlobalSecondaryIndexes"))),
        billing_text: input::string(input, "BillingMode"),
        throughput: throughput_input(input::object(input, "ProvisionedThroughput")),
        stream: input::object(input, "StreamSpecification"),
        sse: input::object(input, "SSESpecification"),
    })
}

/// DynamoDB reports every model constraint violation of the request at once.
fn check_create_table_constraints(input: &Object, members: &CreateTableMembers) -> ApiResult<()> {
    let mut violations = Violations::new(CREATE_TABLE_MEMBERS);
    check_table_name(&mut violations, "tableName", "tableName", members.name, 3);
    check_attribute_definition_constraints(
        &mut violations,
        input::has(input, "AttributeDefinitions"),
        &members.definitions,
    );
    check_key_schema_constraints(
        &mut violations,
        "keySchema",
        "keySchema",
        input::has(input, "KeySchema"),
        &members.table_keys,
    );
    if let Some(indexes) = &members.local_indexes {
        check_index_constraints(&mut violations, "localSecondaryIndexes", indexes);
    }
    if let Some(indexes) = &members.global_indexes {
        check_index_constraints(&mut violations, "globalSecondaryIndexes", indexes);
    }
    check_settings_constraints(
        &mut violations,
        members.billing_text,
        members.throughput.as_ref(),
        members.stream,
        members.sse,
    );
    violations.into_result()
}

/// The billing mode asked for (PROVISIONED by default), and throughput only as it allows.
fn check_create_table_billing(
    billing_text: Option<&str>,
    throughput: Option<&ThroughputInput>,
) -> ApiResult<BillingMode> {
    let billing_mode = parse_billing_mode(billing_text);
    match (billing_mode, throughput) {
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
    Ok(billing_mode)
}

/// The table's and the indexes' key schemas against the attribute definitions.
fn check_create_table_keys(
    members: &CreateTableMembers,
    billing_mode: BillingMode,
    max_global_indexes: usize,
) -> ApiResult<()> {
    let CreateTableMembers {
        definitions,
        table_keys,
        local_indexes,
        global_indexes,
        ..
    } = members;
    check_duplicate_definitions(definitions)?;
    if table_keys.len() > definitions.len() {
        return Err(ApiError::validation(
            "Invalid KeySchema: Some index key attribute have no definition",
        ));
    }
    check_key_schema_semantics(table_keys, definitions)?;
    let has_indexes = members.has_indexes();
    if !has_indexes && definitions.len() != table_keys.len() {
        return Err(ApiError::invalid_parameter(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    if let Some(indexes) = local_indexes {
        check_local_indexes(indexes, table_keys, definitions)?;
    }
    if let Some(indexes) = global_indexes {
        let local_names: Vec<&str> = local_indexes
            .iter()
            .flatten()
            .filter_map(|i| i.name.as_deref())
            .collect();
        let limits = (billing_mode, max_global_indexes);
        check_global_indexes(indexes, &local_names, definitions, limits)?;
    }
    if has_indexes {
        check_unused_definitions(members)?;
    }
    Ok(())
}

/// With indexes, every attribute definition must be a key of the table or of an index.
fn check_unused_definitions(members: &CreateTableMembers) -> ApiResult<()> {
    let definitions = &members.definitions;
    let mut used: Vec<&str> = members
        .table_keys
        .iter()
        .filter_map(|k| k.name.as_deref())
        .collect();
    for index in members
        .local_indexes
        .iter()
        .flatten()
        .chain(members.global_indexes.iter().flatten())
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
    Ok(())
}

/// The stream a new table starts with; its label waits for the creation time.
fn create_stream_settings(stream: Option<&Object>) -> ApiResult<Option<StreamSettings>> {
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
    Ok(stream_settings)
}

/// OnDemandThroughput is not supported yet; a provisioned table refuses it in DynamoDB's words.
fn check_on_demand_throughput(input: &Object, billing_mode: BillingMode) -> ApiResult<()> {
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
    Ok(())
}

/// Refuses a name already taken, in DynamoDB's words for the state of the table holding it.
fn resolve_create_table(api: &Api, name: &str) -> ApiResult<()> {
    // One still being deleted "already exists" (live service, 2026).
    match api.cluster.catalog().table(name).map(|t| t.status) {
        Some(TableStatus::Creating) => Err(ApiError::being_created(name)),
        Some(_) => Err(ApiError::table_exists(name)),
        None => Ok(()),
    }
}

/// Creates the table and describes it, CREATING.
async fn execute_create_table(
    api: &Api,
    context: &RequestContext,
    request: CreateTableRequest<'_>,
) -> ApiResult<Value> {
    let name = request.name;
    let definition = table_definition(context, request)?;
    let created = api
        .cluster
        .create_table(definition)
        .await
        .map_err(|e| ApiError::from_cluster(e, Doing::Table(name)))?;
    let stats = crate::ops::describe::described_stats(api, &created).await;
    Ok(json!({
        "TableDescription": table_description(&created, context, &stats, Some(TableStatus::Creating))
    }))
}

/// The definition the cluster creates; the cluster fills in the id, keyspace and partitions.
fn table_definition(
    context: &RequestContext,
    request: CreateTableRequest<'_>,
) -> ApiResult<TableDefinition> {
    let CreateTableRequest {
        name,
        definitions,
        table_keys,
        billing_mode,
        throughput,
        stream,
        tags,
        table_class,
        deletion_protection,
        local_indexes,
        global_indexes,
    } = request;
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
    Ok(TableDefinition {
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
        deletion_protection,
        stream: stream.map(|s| StreamSettings {
            label: Some(stream_label(created_ms)),
            ..s
        }),
        tags,
        created_ms,
        status: TableStatus::Creating,
        keyspace: String::new(),
        partitions: Vec::new(),
        local_indexes,
        global_indexes,
        index_of: None,
        global_index_epoch: 0,
        stream_epoch: 0,
        stream_closed_ms: None,
        time_to_live: None,
        past_streams: Vec::new(),
    })
}
