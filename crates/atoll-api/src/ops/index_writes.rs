//! What writes owe to secondary indexes in DynamoDB's terms: the checks of
//! an item's index key attributes, `ItemCollectionMetrics`, and the write
//! capacity index entries consume.

use atoll_model::table::TableDefinition;
use atoll_model::{AttributeValue, Item};
use serde_json::{Value, json};

use super::capacity::{IndexUnits, write_units};
use crate::attribute::encode_map;
use crate::error::{ApiError, ApiResult};

/// Refuses an item whose index key attributes no index may hold (checked
/// after the table's keys, as DynamoDB does): a wrong type, or an empty
/// string or binary. An absent attribute leaves the item out of that
/// index. Several offenders: the first index by name is reported.
pub(crate) fn check_index_keys(table: &TableDefinition, item: &Item) -> ApiResult<()> {
    // An LSI's partition key is the table's, checked with the table's keys.
    let mut indexes: Vec<(&str, &atoll_model::table::KeyAttribute)> = table
        .local_indexes
        .iter()
        .map(|index| (index.name.as_str(), index.sort_key()))
        .collect();
    for index in &table.global_indexes {
        let keys = std::iter::once(&index.key_schema.partition_key)
            .chain(index.key_schema.sort_key.as_ref());
        indexes.extend(keys.map(|key| (index.name.as_str(), key)));
    }
    indexes.sort_by_key(|(name, _)| *name);
    for (index, key) in &indexes {
        let Some(value) = item.get(&key.name) else {
            continue;
        };
        if !key.scalar_type.matches(value) {
            return Err(ApiError::invalid_parameter(format!(
                "Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {index}",
                key.name,
                key.scalar_type.as_str(),
                value.type_name()
            )));
        }
        let empty = match value {
            AttributeValue::S(text) if text.is_empty() => "string",
            AttributeValue::B(bytes) if bytes.is_empty() => "binary",
            _ => continue,
        };
        return Err(ApiError::validation(format!(
            "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {empty} value. IndexName: {index}, IndexKey: {}",
            key.name
        )));
    }
    Ok(())
}

/// The error of an update that set an index key to an empty value.
pub(crate) fn empty_index_key_error(binary: bool) -> ApiError {
    let empty = if binary { "binary" } else { "string" };
    ApiError::validation(format!(
        "One or more parameter values are not valid. The update expression attempted to update a secondary index key to a value that is not supported. The AttributeValue for a key attribute cannot contain an empty {empty} value."
    ))
}

/// `ItemCollectionMetrics` of a write to `key`'s collection, now of
/// `size_bytes`: its partition key, and DynamoDB's estimate of its size as
/// a range of gigabytes.
pub(crate) fn item_collection_metrics(
    table: &TableDefinition,
    key: &Item,
    size_bytes: u64,
) -> Value {
    let partition = table.key_schema.partition_key.name.as_str();
    let mut collection_key = Item::new();
    if let Some(value) = key.get(partition) {
        collection_key.insert(partition.to_string(), value.clone());
    }
    const GB: f64 = 1024.0 * 1024.0 * 1024.0;
    let lower = (size_bytes as f64 / GB).floor();
    json!({
        "ItemCollectionKey": encode_map(&collection_key),
        "SizeEstimateRangeGB": [lower, lower + 1.0],
    })
}

/// Write units of index entries of `table` written or removed, by index.
pub(crate) fn index_write_units(
    table: &TableDefinition,
    index_writes: &[(String, u32)],
) -> IndexUnits {
    let mut units = IndexUnits::default();
    for (index, size_bytes) in index_writes {
        units.add(table, index, write_units(*size_bytes as usize));
    }
    units
}
