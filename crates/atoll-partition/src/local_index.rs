//! Local secondary indexes: each item's entries live in its own partition,
//! in the table's index keyspace, and change in the same apply batch as the
//! item, so an index never disagrees with its table on any replica.
//!
//! The index keyspace holds, per index, its entries under the index's
//! number (1 for the table's first LSI), and under number 0 the size of
//! each item collection (the items of one partition key and their
//! entries), which DynamoDB caps and reports (`ReturnItemCollectionMetrics`).

use std::ops::Bound;

use atoll_model::table::{KeySchema, LocalIndex};
use atoll_model::{
    AttributeValue, Item, encode_item, encode_local_index_key, item_size_bytes,
    row_key_partition_part,
};
use atoll_storage::Keyspace;

use crate::command::WriteRejection;
use crate::error::PartitionError;
use crate::stored::stored_value;

/// The number under which item collection sizes are kept.
const COLLECTION_SIZES: u8 = 0;

/// Most local secondary indexes a table has (DynamoDB's limit).
pub const MAX_LOCAL_INDEXES: u8 = 5;

/// Bytes DynamoDB counts for an index entry beyond its attributes.
const ENTRY_OVERHEAD_BYTES: u64 = 100;

/// DynamoDB's limit on an item collection of a table with local indexes.
pub const DEFAULT_ITEM_COLLECTION_LIMIT_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// A table's local secondary indexes, as one partition maintains them.
#[derive(Clone)]
pub struct LocalIndexes {
    keyspace: Keyspace,
    table_keys: KeySchema,
    indexes: Vec<LocalIndex>,
    collection_limit_bytes: u64,
}

/// One index entry an item has.
struct Entry {
    /// Position of its index among the table's.
    position: usize,
    key: Vec<u8>,
    value: Vec<u8>,
    size_bytes: u64,
}

/// What a write does to its item's index entries and collection.
pub(crate) struct IndexChange {
    /// Entries to remove.
    pub(crate) deletes: Vec<Vec<u8>>,
    /// Entries to write.
    pub(crate) puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Key of the item's collection size.
    pub(crate) collection_key: Vec<u8>,
    /// How the collection's size changes (items and entries).
    pub(crate) collection_delta_bytes: i64,
    /// Each entry written or removed, as (index name, entry size): what
    /// DynamoDB charges index writes by.
    pub(crate) entry_writes: Vec<(String, u32)>,
}

impl LocalIndexes {
    /// The indexes `indexes` of a table keyed by `table_keys`, whose
    /// entries live in `keyspace`; a write that would grow an item
    /// collection past `collection_limit_bytes` is refused.
    pub fn new(
        keyspace: Keyspace,
        table_keys: KeySchema,
        indexes: Vec<LocalIndex>,
        collection_limit_bytes: u64,
    ) -> LocalIndexes {
        debug_assert!(indexes.len() <= usize::from(MAX_LOCAL_INDEXES));
        LocalIndexes {
            keyspace,
            table_keys,
            indexes,
            collection_limit_bytes,
        }
    }

    /// The keyspace of the entries.
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// The largest size an item collection may grow to.
    pub(crate) fn collection_limit_bytes(&self) -> u64 {
        self.collection_limit_bytes
    }

    /// Refuses an item whose index sort key has a type or value no index
    /// key may have (absent is fine: the item is not in that index). The
    /// first offending index by name is reported, as DynamoDB does.
    pub(crate) fn check_keys(&self, item: &Item) -> Result<(), WriteRejection> {
        let mut by_name: Vec<&LocalIndex> = self.indexes.iter().collect();
        by_name.sort_by(|a, b| a.name.cmp(&b.name));
        for index in by_name {
            check_index_key(&index.name, index.sort_key(), item)?;
        }
        Ok(())
    }

    /// The entries `item` (stored under `row_key`) has: one per index whose
    /// sort key it holds with the right type.
    fn entries(&self, row_key: &[u8], item: &Item) -> Result<Vec<Entry>, PartitionError> {
        let mut entries = Vec::new();
        for (position, index) in self.indexes.iter().enumerate() {
            let key = index.sort_key();
            let Some(value) = item.get(&key.name).filter(|v| key.scalar_type.matches(v)) else {
                continue;
            };
            let number = index_number(position);
            let entry_key = encode_local_index_key(number, row_key, value)
                .map_err(|e| PartitionError::Corrupt(e.to_string()))?;
            let projected = index
                .projection
                .project(item, &self.table_keys, &index.key_schema);
            let projected_size = item_size_bytes(&projected);
            let size_bytes = projected_size as u64 + ENTRY_OVERHEAD_BYTES;
            entries.push(Entry {
                position,
                key: entry_key,
                value: stored_value(&encode_item(&projected), projected_size as u32),
                size_bytes,
            });
        }
        Ok(entries)
    }

    /// What replacing `old` (of `old_size_bytes`) by `new` (of
    /// `new_size_bytes`) under `row_key` does to the item's entries and
    /// its collection.
    pub(crate) fn change(
        &self,
        row_key: &[u8],
        old: Option<&Item>,
        old_size_bytes: u32,
        new: Option<&Item>,
        new_size_bytes: u32,
    ) -> Result<IndexChange, PartitionError> {
        let old_entries = match old {
            Some(item) => self.entries(row_key, item)?,
            None => Vec::new(),
        };
        let new_entries = match new {
            Some(item) => self.entries(row_key, item)?,
            None => Vec::new(),
        };
        let entry_bytes =
            |entries: &[Entry]| -> i64 { entries.iter().map(|e| e.size_bytes as i64).sum() };
        let collection_delta_bytes = i64::from(new_size_bytes) - i64::from(old_size_bytes)
            + entry_bytes(&new_entries)
            - entry_bytes(&old_entries);
        let mut entry_writes = Vec::new();
        let size = |entry: &Entry| u32::try_from(entry.size_bytes).unwrap_or(u32::MAX);
        let name = |entry: &Entry| {
            self.indexes
                .get(entry.position)
                .map(|index| index.name.clone())
                .unwrap_or_default()
        };
        let mut deletes = Vec::new();
        for old in &old_entries {
            if !new_entries.iter().any(|new| new.key == old.key) {
                entry_writes.push((name(old), size(old)));
                deletes.push(old.key.clone());
            }
        }
        let mut puts = Vec::new();
        for new in new_entries {
            let unchanged = old_entries
                .iter()
                .any(|old| old.key == new.key && old.value == new.value);
            if !unchanged {
                entry_writes.push((name(&new), size(&new)));
                puts.push((new.key, new.value));
            }
        }
        Ok(IndexChange {
            deletes,
            puts,
            collection_key: collection_key(row_key)?,
            collection_delta_bytes,
            entry_writes,
        })
    }

    /// Key ranges of the keyspace holding tokens `first..=last`: the
    /// collection sizes', then each index's, in key order.
    pub(crate) fn token_ranges(&self, first: u64, last: u64) -> Vec<KeyRange> {
        (0..=self.indexes.len())
            .map(|position| {
                let number = if position == 0 {
                    COLLECTION_SIZES
                } else {
                    index_number(position - 1)
                };
                let mut start = vec![number];
                start.extend_from_slice(&first.to_be_bytes());
                let end = match last.checked_add(1) {
                    Some(next) => {
                        let mut end = vec![number];
                        end.extend_from_slice(&next.to_be_bytes());
                        Bound::Excluded(end)
                    }
                    None => Bound::Excluded(vec![number + 1]),
                };
                (start, end)
            })
            .collect()
    }
}

/// A key range of a keyspace: its start (included) and its end.
pub(crate) type KeyRange = (Vec<u8>, Bound<Vec<u8>>);

/// Refuses `item`'s value of index key `key` (of index `index`) if no index
/// key may have it: a wrong type, or an empty string or binary. An absent
/// attribute is fine (the item is not in that index).
pub(crate) fn check_index_key(
    index: &str,
    key: &atoll_model::table::KeyAttribute,
    item: &Item,
) -> Result<(), WriteRejection> {
    let Some(value) = item.get(&key.name) else {
        return Ok(());
    };
    if !key.scalar_type.matches(value) {
        return Err(WriteRejection::IndexKeyType {
            index: index.to_string(),
            attribute: key.name.clone(),
            expected: key.scalar_type.as_str().to_string(),
            actual: value.type_name().to_string(),
        });
    }
    match value {
        AttributeValue::S(text) if text.is_empty() => {
            Err(WriteRejection::IndexKeyEmpty { binary: false })
        }
        AttributeValue::B(bytes) if bytes.is_empty() => {
            Err(WriteRejection::IndexKeyEmpty { binary: true })
        }
        _ => Ok(()),
    }
}

/// The storage number of the index at `position` among the table's LSIs.
pub fn index_number(position: usize) -> u8 {
    debug_assert!(position < usize::from(MAX_LOCAL_INDEXES));
    u8::try_from(position + 1).unwrap_or(u8::MAX)
}

/// The key under which the size of `row_key`'s item collection is kept.
fn collection_key(row_key: &[u8]) -> Result<Vec<u8>, PartitionError> {
    let partition =
        row_key_partition_part(row_key).map_err(|e| PartitionError::Corrupt(e.to_string()))?;
    let mut key = Vec::with_capacity(partition.len() + 1);
    key.push(COLLECTION_SIZES);
    key.extend_from_slice(partition);
    Ok(key)
}

/// A collection size as stored.
pub(crate) fn decode_collection_size(bytes: &[u8]) -> Result<u64, PartitionError> {
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| PartitionError::Corrupt("bad item collection size".into()))?;
    Ok(u64::from_be_bytes(raw))
}
