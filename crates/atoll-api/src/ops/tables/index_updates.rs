//! UpdateTable's `GlobalSecondaryIndexUpdates`: creating and deleting a
//! global secondary index on a live table, one at a time, as DynamoDB
//! allows (docs/research/secondary-indexes.md §3 holds the checks and
//! their order).

use atoll_model::table::{BillingMode, IndexStatus, TableDefinition};

use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{self, Object};
use crate::ops::indexes::{IndexInput, check_projection, global_index_definitions, index_inputs};
use crate::ops::keys::{
    AttributeDefinitionInput, attribute_definitions, check_key_schema_semantics,
};

/// One entry of `GlobalSecondaryIndexUpdates`.
pub(crate) enum IndexUpdate {
    /// Create an index.
    Create(IndexInput),
    /// Change an index's throughput.
    Update(String),
    /// Delete an index.
    Delete(String),
}

impl IndexUpdate {
    fn name(&self) -> &str {
        match self {
            IndexUpdate::Create(index) => index.name.as_deref().unwrap_or_default(),
            IndexUpdate::Update(name) | IndexUpdate::Delete(name) => name,
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
            (None, Some(update), None) => IndexUpdate::Update(name_of(update)),
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
/// create or delete (DynamoDB changes one at a time).
pub(crate) fn resolve_index_updates(
    table: &TableDefinition,
    input: &Object,
    updates: Vec<IndexUpdate>,
    changes_throughput_or_stream: (bool, bool),
    max_global_indexes: usize,
) -> ApiResult<IndexChange> {
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
    let (throughput, stream) = changes_throughput_or_stream;
    if online == 1 && throughput {
        return Err(ApiError::invalid_parameter(
            "You cannot create or delete index while updating table IOPS",
        ));
    }
    if online == 1 && stream {
        return Err(ApiError::invalid_parameter(
            "You cannot create or delete index while changing stream status",
        ));
    }
    let mut change = None;
    for update in updates {
        match update {
            IndexUpdate::Create(index) => {
                change = Some(check_create(table, input, index, max_global_indexes)?);
            }
            IndexUpdate::Delete(name) => {
                check_existing(table, &name, "delete")?;
                change = Some(IndexChange::Delete(name));
            }
            IndexUpdate::Update(name) => {
                check_existing(table, &name, "update")?;
                return Err(crate::ops::unsupported_parameter(
                    "GlobalSecondaryIndexUpdates.Update",
                ));
            }
        }
    }
    change.ok_or_else(|| crate::ops::unsupported_parameter("GlobalSecondaryIndexUpdates.Update"))
}

/// The index change an UpdateTable makes.
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
