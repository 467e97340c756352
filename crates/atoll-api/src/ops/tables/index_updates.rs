//! UpdateTable's `GlobalSecondaryIndexUpdates`: creating and deleting a
//! global secondary index on a live table, one at a time, as DynamoDB
//! allows (docs/research/secondary-indexes.md §3 holds the checks and
//! their order).

use atoll_cluster::IndexThroughputUpdate;
use atoll_model::table::{BillingMode, IndexStatus, TableDefinition};

use crate::constraints::Violations;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{self, Object};
use crate::ops::indexes::{
    IndexInput, check_index_name_constraints, check_one_index_constraints, check_projection,
    global_index_definitions, index_inputs,
};
use crate::ops::keys::{
    AttributeDefinitionInput, attribute_definitions, check_key_schema_semantics,
};
use crate::ops::table_settings::{
    MAX_CAPACITY_UNITS, ThroughputInput, check_throughput_constraints, throughput_input,
};

/// One entry of `GlobalSecondaryIndexUpdates`.
pub(crate) enum IndexUpdate {
    /// Create an index.
    Create(IndexInput),
    /// Change an index's throughput.
    Update(ThroughputChangeInput),
    /// Delete an index.
    Delete(String),
}

/// An `Update` entry as sent.
pub(crate) struct ThroughputChangeInput {
    name: String,
    throughput: Option<ThroughputInput>,
    /// `OnDemandThroughput` or `WarmThroughput`, when given (not supported).
    unsupported: Option<&'static str>,
}

impl IndexUpdate {
    fn name(&self) -> &str {
        match self {
            IndexUpdate::Create(index) => index.name.as_deref().unwrap_or_default(),
            IndexUpdate::Update(change) => &change.name,
            IndexUpdate::Delete(name) => name,
        }
    }
}

/// The constraints of `GlobalSecondaryIndexUpdates`' members, each at its
/// path (`globalSecondaryIndexUpdates.N.member.create.indexName`, …).
pub(crate) fn check_index_update_constraints(violations: &mut Violations, input: &Object) {
    const MEMBER: &str = "globalSecondaryIndexUpdates";
    let Some(list) = input::list(input, "GlobalSecondaryIndexUpdates") else {
        return;
    };
    for (i, entry) in list.iter().enumerate() {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let at = |action: &str| format!("{MEMBER}.{}.member.{action}", i + 1);
        if let Some(create) = input::value(entry, "Create") {
            for index in index_inputs(Some(&vec![create.clone()])) {
                check_one_index_constraints(violations, MEMBER, &at("create"), &index);
            }
        }
        if let Some(update) = input::object(entry, "Update") {
            let name = input::string(update, "IndexName");
            check_index_name_constraints(violations, MEMBER, &at("update.indexName"), name);
            if let Some(pt) = throughput_input(input::object(update, "ProvisionedThroughput")) {
                let path = at("update.provisionedThroughput");
                check_throughput_constraints(violations, MEMBER, &path, &pt);
            }
        }
        if let Some(delete) = input::object(entry, "Delete") {
            let name = input::string(delete, "IndexName");
            check_index_name_constraints(violations, MEMBER, &at("delete.indexName"), name);
        }
    }
}

/// The checks DynamoDB makes of the updates before it looks at the table;
/// `None` when the request has none (an empty list alone counts as none).
pub(crate) fn parse_index_updates(
    input: &Object,
    other_changes: bool,
) -> ApiResult<Option<Vec<IndexUpdate>>> {
    let Some(list) = input::list(input, "GlobalSecondaryIndexUpdates") else {
        return Ok(None);
    };
    if list.is_empty() {
        return match other_changes {
            true => Err(ApiError::invalid_parameter(
                "List of GlobalSecondaryIndexUpdates is empty",
            )),
            false => Ok(None),
        };
    }
    let mut updates = Vec::with_capacity(list.len());
    for entry in list {
        let empty = Object::new();
        let entry = entry.as_object().unwrap_or(&empty);
        let create = input::value(entry, "Create");
        let update = input::object(entry, "Update");
        let delete = input::object(entry, "Delete");
        let name_of = |action: &Object| {
            input::string(action, "IndexName")
                .unwrap_or_default()
                .to_string()
        };
        updates.push(match (create, update, delete) {
            (None, None, None) => {
                return Err(ApiError::invalid_parameter(
                    "One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Delete must not be null",
                ));
            }
            (Some(create), None, None) => {
                let indexes = index_inputs(Some(&vec![create.clone()]));
                match indexes.into_iter().next() {
                    Some(index) => IndexUpdate::Create(index),
                    None => return Err(ApiError::validation("Invalid Create")),
                }
            }
            (None, Some(update), None) => IndexUpdate::Update(ThroughputChangeInput {
                name: name_of(update),
                throughput: throughput_input(input::object(update, "ProvisionedThroughput")),
                unsupported: ["OnDemandThroughput", "WarmThroughput"]
                    .into_iter()
                    .find(|member| input::has(update, member)),
            }),
            (None, None, Some(delete)) => IndexUpdate::Delete(name_of(delete)),
            _ => {
                return Err(ApiError::invalid_parameter(
                    "Only one global secondary index action is allowed per GlobalSecondaryIndexUpdate object",
                ));
            }
        });
    }
    for (i, update) in updates.iter().enumerate() {
        if updates.iter().take(i).any(|u| u.name() == update.name()) {
            return Err(ApiError::invalid_parameter(format!(
                "Only one global secondary index update per index is allowed simultaneously. Index: {}",
                update.name()
            )));
        }
    }
    Ok(Some(updates))
}

fn limit_exceeded(message: &str) -> ApiError {
    ApiError::new(
        ErrorKind::LimitExceeded,
        format!("Subscriber limit exceeded: {message}"),
    )
}

/// What the updates ask of `table`, checked against it: the one index to
/// create or delete (DynamoDB changes one at a time) and the throughput
/// changes of others.
pub(crate) fn resolve_index_updates(
    table: &TableDefinition,
    input: &Object,
    updates: Vec<IndexUpdate>,
    request: &TableChangeContext,
    max_global_indexes: usize,
) -> ApiResult<IndexChanges> {
    let online = updates
        .iter()
        .filter(|u| !matches!(u, IndexUpdate::Update(_)))
        .count();
    let busy = table
        .global_indexes
        .iter()
        .any(|i| matches!(i.status, IndexStatus::Creating | IndexStatus::Deleting));
    if online > 1 || (online == 1 && busy) {
        return Err(limit_exceeded(
            "Only 1 online index can be created or deleted simultaneously per table",
        ));
    }
    if online == 1 && request.changes_table_throughput {
        return Err(ApiError::invalid_parameter(
            "You cannot create or delete index while updating table IOPS",
        ));
    }
    if online == 1 && request.changes_stream {
        return Err(ApiError::invalid_parameter(
            "You cannot create or delete index while changing stream status",
        ));
    }
    let mut changes = IndexChanges::default();
    for update in updates {
        match update {
            IndexUpdate::Create(index) => {
                changes.online = Some(check_create(table, input, index, max_global_indexes)?);
            }
            IndexUpdate::Delete(name) => {
                check_existing(table, &name, "delete")?;
                changes.online = Some(IndexChange::Delete(name));
            }
            IndexUpdate::Update(change) => {
                let update = check_throughput_change(table, change, request)?;
                changes.throughput.push(update);
            }
        }
    }
    Ok(changes)
}

/// What else the UpdateTable changes, as the index updates' checks need it.
pub(crate) struct TableChangeContext {
    /// The request sets the table's ProvisionedThroughput.
    pub(crate) changes_table_throughput: bool,
    /// The request sets a StreamSpecification.
    pub(crate) changes_stream: bool,
    /// The table's billing mode after the request.
    pub(crate) billing_mode: BillingMode,
    /// The request switches the billing mode.
    pub(crate) switching_mode: bool,
}

/// The index changes an UpdateTable makes.
#[derive(Default)]
pub(crate) struct IndexChanges {
    /// The index to create or delete.
    pub(crate) online: Option<IndexChange>,
    /// New throughput of indexes.
    pub(crate) throughput: Vec<IndexThroughputUpdate>,
}

/// DynamoDB's checks of an Update (a change of an index's throughput).
fn check_throughput_change(
    table: &TableDefinition,
    change: ThroughputChangeInput,
    request: &TableChangeContext,
) -> ApiResult<IndexThroughputUpdate> {
    let name = change.name;
    check_existing(table, &name, "update")?;
    if let Some(member) = change.unsupported {
        return Err(crate::ops::unsupported_parameter(&format!(
            "GlobalSecondaryIndexUpdates.Update.{member}"
        )));
    }
    if request.billing_mode == BillingMode::PayPerRequest {
        return Err(ApiError::invalid_parameter(format!(
            "The only Updates for index: {name} when TableThroughputMode is PAY_PER_REQUEST can be to OnDemandThroughput, WarmThroughput"
        )));
    }
    let Some(pt) = change.throughput else {
        return Err(ApiError::invalid_parameter(format!(
            "ProvisionedThroughput must be specified for index: {name}"
        )));
    };
    if let Some(index) = table.global_index(&name) {
        match index.status {
            IndexStatus::Creating => return Err(index_in_use("Index is being created")),
            IndexStatus::Deleting => return Err(index_in_use("Index is being deleted")),
            IndexStatus::Active | IndexStatus::Updating => {}
        }
    }
    let (read, write) = (pt.read.unwrap_or(0), pt.write.unwrap_or(0));
    if read > MAX_CAPACITY_UNITS || write > MAX_CAPACITY_UNITS {
        return Err(ApiError::validation(
            "This operation cannot be performed with given input values. Please contact DynamoDB service team for more info: Action Blocked: IndexUpdate",
        ));
    }
    let (read, write) = (read.max(0) as u64, write.max(0) as u64);
    let current = table
        .global_index(&name)
        .map(|i| &i.throughput)
        .map(|t| (t.read_capacity_units, t.write_capacity_units))
        .unwrap_or_default();
    if (read, write) == current && !request.switching_mode {
        return Err(ApiError::validation(format!(
            "The provisioned throughput for the index {name} will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for index {name}: {}. Requested ReadCapacityUnits: {read}. Current WriteCapacityUnits provisioned for index {name}: {}. Requested WriteCapacityUnits: {write}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
            current.0, current.1
        )));
    }
    Ok(IndexThroughputUpdate {
        index: name,
        read,
        write,
    })
}

fn index_in_use(reason: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceInUse,
        format!("Attempt to change a resource which is still in use: {reason}"),
    )
}

/// A switch to PROVISIONED must give every global index its throughput.
pub(crate) fn check_indexes_provisioned(
    table: &TableDefinition,
    request: &TableChangeContext,
    changes: &IndexChanges,
) -> ApiResult<()> {
    if !(request.switching_mode && request.billing_mode == BillingMode::Provisioned) {
        return Ok(());
    }
    let missing: Vec<&str> = table
        .global_indexes
        .iter()
        .filter(|i| i.status != IndexStatus::Deleting)
        .map(|i| i.name.as_str())
        .filter(|name| !changes.throughput.iter().any(|c| c.index == *name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid_parameter(format!(
        "ProvisionedThroughput must be specified for index: {}",
        missing.join(",")
    )))
}

/// The index change an UpdateTable makes online.
pub(crate) enum IndexChange {
    /// Create this index.
    Create(atoll_model::table::GlobalIndex),
    /// Delete the index of this name.
    Delete(String),
}

/// Refuses a Delete or Update of an index the table has not as a GSI.
fn check_existing(table: &TableDefinition, name: &str, verb: &str) -> ApiResult<()> {
    if table.global_index(name).is_some() {
        return Ok(());
    }
    if table.local_index(name).is_some() {
        return Err(ApiError::validation(format!(
            "Cannot {verb} an index that is not a GlobalSecondaryIndex: {name}"
        )));
    }
    Err(ApiError::new(
        ErrorKind::ResourceNotFound,
        format!(
            "Requested resource not found: Index {name} for table {}",
            table.name
        ),
    ))
}

/// DynamoDB's checks of a Create, in its order.
fn check_create(
    table: &TableDefinition,
    input: &Object,
    index: IndexInput,
    max_global_indexes: usize,
) -> ApiResult<IndexChange> {
    let name = index.name.clone().unwrap_or_default();
    if table.global_index(&name).is_some() || table.local_index(&name).is_some() {
        return Err(ApiError::validation(
            "Attempting to create an index which already exists",
        ));
    }
    if !input::has(input, "AttributeDefinitions") {
        return Err(ApiError::invalid_parameter(format!(
            "AttributeDefinitions is not specified for index: {name}"
        )));
    }
    let definitions: Vec<AttributeDefinitionInput> =
        attribute_definitions(input::list(input, "AttributeDefinitions"));
    let keys: Vec<&str> = index
        .key_schema
        .iter()
        .filter_map(|k| k.name.as_deref())
        .collect();
    let defined = |key: &&str| definitions.iter().any(|d| d.name.as_deref() == Some(*key));
    if !keys.iter().all(defined) {
        let listed: Vec<&str> = definitions
            .iter()
            .filter_map(|d| d.name.as_deref())
            .collect();
        return Err(ApiError::invalid_parameter(format!(
            "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            keys.join(", "),
            listed.join(", ")
        )));
    }
    check_key_schema_semantics(&index.key_schema, &definitions)?;
    check_projection(&index)?;
    match (table.billing_mode, &index.throughput) {
        (BillingMode::Provisioned, None) => {
            return Err(ApiError::invalid_parameter(format!(
                "Both ReadCapacityUnits and WriteCapacityUnits must be specified for index: {name}"
            )));
        }
        (BillingMode::PayPerRequest, Some(_)) => {
            return Err(ApiError::invalid_parameter(format!(
                "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
            )));
        }
        _ => {}
    }
    if table.global_indexes.len() >= max_global_indexes {
        return Err(limit_exceeded(&format!(
            "Number of global secondary indexes exceeds per-table limit of {max_global_indexes}"
        )));
    }
    // A redeclared attribute keeps the table's type; the catalog merges.
    let mut defined_types = definitions;
    for existing in &table.attribute_definitions {
        if let Some(definition) = defined_types
            .iter_mut()
            .find(|d| d.name.as_deref() == Some(existing.name.as_str()))
        {
            definition.attribute_type = Some(existing.scalar_type.as_str().to_string());
        }
    }
    let mut created = global_index_definitions(std::slice::from_ref(&index), &defined_types)?;
    created
        .pop()
        .map(IndexChange::Create)
        .ok_or_else(|| ApiError::validation("Invalid Create"))
}
