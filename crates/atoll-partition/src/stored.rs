//! The stored form of an item: its DynamoDB size, then its record.

use atoll_model::{Item, decode_item};
use atoll_storage::Keyspace;

use crate::error::PartitionError;

const SIZE_PREFIX_BYTES: usize = 4;

/// Prefixes `record` with the item's size, so that statistics need not decode
/// an item being replaced or removed.
pub(crate) fn stored_value(record: &[u8], size_bytes: u32) -> Vec<u8> {
    let mut value = Vec::with_capacity(SIZE_PREFIX_BYTES + record.len());
    value.extend_from_slice(&size_bytes.to_le_bytes());
    value.extend_from_slice(record);
    value
}

/// Size of the item in a stored value.
pub(crate) fn stored_size(value: &[u8]) -> Result<u32, PartitionError> {
    let prefix: [u8; SIZE_PREFIX_BYTES] = value
        .get(..SIZE_PREFIX_BYTES)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| PartitionError::Corrupt("stored item shorter than its header".into()))?;
    Ok(u32::from_le_bytes(prefix))
}

/// Decodes the item in a stored value.
pub(crate) fn stored_item(value: &[u8]) -> Result<Item, PartitionError> {
    let record = value
        .get(SIZE_PREFIX_BYTES..)
        .ok_or_else(|| PartitionError::Corrupt("stored item shorter than its header".into()))?;
    decode_item(record).map_err(|e| PartitionError::Corrupt(e.to_string()))
}

/// Reads the item stored under `row_key` in a table's keyspace.
pub fn read_item(keyspace: &Keyspace, row_key: &[u8]) -> Result<Option<Item>, PartitionError> {
    match keyspace.get(row_key)? {
        Some(value) => Ok(Some(stored_item(&value)?)),
        None => Ok(None),
    }
}

/// Reads the item stored under `row_key`, with its DynamoDB size.
pub fn read_stored_item(
    keyspace: &Keyspace,
    row_key: &[u8],
) -> Result<Option<(Item, u32)>, PartitionError> {
    match keyspace.get(row_key)? {
        Some(value) => Ok(Some((stored_item(&value)?, stored_size(&value)?))),
        None => Ok(None),
    }
}
