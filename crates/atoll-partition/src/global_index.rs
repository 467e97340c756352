//! Global secondary indexes, as partitions see them.
//!
//! A global index keeps its entries in partitions of its own (a hidden
//! table partitioned by the index's partition key). A table's partition
//! cannot write there in its apply batch, so it writes each change of an
//! item's entry into an outbox in that batch instead, keyed by its log
//! position; its leader ships the outbox to the index's partitions and
//! trims what they applied (`Shipper` in atoll-cluster).
//!
//! Shipping may repeat or reorder changes (a new leader ships again what
//! the old one had shipped; a change for one index key and a change for
//! another travel to different partitions). So each change carries its
//! item's version (the table partition's group and log index: a group
//! made by a split has a larger id than its parent, and writes its items
//! only after the parent stopped), and an index partition keeps, per item
//! and index partition key, the version it holds and the entry it has
//! there: it applies a change only if newer. The index then converges to
//! the projection of the table whatever the order of delivery.

use atoll_model::table::{KeySchema, Projection};
use atoll_model::{
    Item, encode_global_index_key, encode_item, item_size_bytes, row_key_prefix_for_partition,
};
use serde::{Deserialize, Serialize};

use crate::command::WriteRejection;
use crate::error::PartitionError;
use crate::stored::stored_value;

/// Leading byte of the outbox's records in a table's index keyspace.
pub(crate) const OUTBOX: u8 = 0x80;

/// Leading byte of entry versions in an index table's index keyspace.
pub(crate) const VERSIONS: u8 = 0x40;

/// An item's version: the table partition's group and log index.
pub type ItemVersion = (u64, u64);

/// What one item's entry in one global index partition is, as of a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntryChange {
    /// The record this changes: the index partition key's row-key prefix
    /// (its token first) and the item's row key.
    pub record: Vec<u8>,
    /// The item's version at the change.
    pub version: ItemVersion,
    /// The entry the item has under this index partition key now: its key
    /// in the index table and its stored value; `None`: no entry.
    pub entry: Option<(Vec<u8>, Vec<u8>)>,
}

impl IndexEntryChange {
    /// The token of the index partition key: where the change is applied.
    pub fn token(&self) -> u64 {
        crate::state_machine::row_key_token(&self.record).unwrap_or_default()
    }
}

/// One record of a table partition's outbox: a change for a global index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The hidden table holding the index's entries.
    pub index_table: String,
    /// The change.
    pub change: IndexEntryChange,
}

/// An index entry written or removed: its index's name and its size.
pub type IndexWrite = (String, u32);

/// A global index as a table's partitions maintain it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalIndexSpec {
    /// The index's name.
    pub name: String,
    /// The hidden table holding its entries.
    pub index_table: String,
    /// The index's keys.
    pub key_schema: KeySchema,
    /// What it holds of each item.
    pub projection: Projection,
}

/// The global indexes a table's partitions feed, as of a catalog change
/// (`epoch` counts the table's index changes; a partition takes a set only
/// if it is newer than its own). It travels through each partition's log,
/// so every replica feeds the same indexes from the same entry on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalIndexSet {
    /// Which change of the table's indexes this is.
    pub epoch: u64,
    /// The indexes.
    pub indexes: Vec<GlobalIndexSpec>,
}

impl GlobalIndexSet {
    /// Encodes the set for a record or a snapshot header.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, PartitionError> {
        postcard::to_stdvec(self).map_err(|e| PartitionError::Corrupt(e.to_string()))
    }

    /// Decodes what `encode` wrote.
    pub(crate) fn decode(bytes: &[u8]) -> Result<GlobalIndexSet, PartitionError> {
        postcard::from_bytes(bytes).map_err(|e| PartitionError::Corrupt(e.to_string()))
    }

    /// The index whose entries live in `index_table`.
    pub(crate) fn index(&self, index_table: &str) -> Option<&GlobalIndexSpec> {
        self.indexes.iter().find(|i| i.index_table == index_table)
    }
}

/// A table's global indexes, as one of its partitions feeds them.
#[derive(Clone, Debug)]
pub struct GlobalIndexes {
    table_keys: KeySchema,
    indexes: Vec<GlobalIndexSpec>,
}

/// An item's entry in one global index.
struct Entry {
    record: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
    size_bytes: u32,
}

/// Bytes DynamoDB counts for an index entry beyond its attributes.
const ENTRY_OVERHEAD_BYTES: u32 = 100;

impl GlobalIndexes {
    /// The indexes `indexes` of a table keyed by `table_keys`.
    pub fn new(table_keys: KeySchema, indexes: Vec<GlobalIndexSpec>) -> GlobalIndexes {
        GlobalIndexes {
            table_keys,
            indexes,
        }
    }

    /// Refuses an item whose index key attributes no index may hold: a
    /// wrong type, or an empty string or binary (first index by name).
    pub(crate) fn check_keys(&self, item: &Item) -> Result<(), WriteRejection> {
        let mut by_name: Vec<&GlobalIndexSpec> = self.indexes.iter().collect();
        by_name.sort_by(|a, b| a.name.cmp(&b.name));
        for index in by_name {
            let keys = std::iter::once(&index.key_schema.partition_key)
                .chain(index.key_schema.sort_key.as_ref());
            for key in keys {
                crate::local_index::check_index_key(&index.name, key, item)?;
            }
        }
        Ok(())
    }

    /// The entry `item` (stored under `row_key`) has in `index`: none
    /// unless it holds the index's keys with their types (sparse index).
    fn entry(
        &self,
        index: &GlobalIndexSpec,
        row_key: &[u8],
        item: &Item,
    ) -> Result<Option<Entry>, PartitionError> {
        let key_of = |name: &str, attribute: &atoll_model::table::KeyAttribute| {
            item.get(name).filter(|v| attribute.scalar_type.matches(v))
        };
        let partition = &index.key_schema.partition_key;
        let Some(pk) = key_of(&partition.name, partition) else {
            return Ok(None);
        };
        let sk = match &index.key_schema.sort_key {
            Some(sort) => match key_of(&sort.name, sort) {
                Some(value) => Some(value),
                None => return Ok(None),
            },
            None => None,
        };
        let corrupt = |e: atoll_model::KeyCodecError| PartitionError::Corrupt(e.to_string());
        let mut record = row_key_prefix_for_partition(pk).map_err(corrupt)?;
        record.extend_from_slice(row_key);
        let key = encode_global_index_key(pk, sk, row_key).map_err(corrupt)?;
        let projected = index
            .projection
            .project(item, &self.table_keys, &index.key_schema);
        let size = item_size_bytes(&projected) as u32;
        Ok(Some(Entry {
            record,
            key,
            value: stored_value(&encode_item(&projected), size),
            size_bytes: size + ENTRY_OVERHEAD_BYTES,
        }))
    }

    /// The outbox entry that gives `index` the entry `item` (stored under
    /// `row_key`) has, as of `version` (a backfill of the index).
    pub(crate) fn backfill(
        &self,
        index: &GlobalIndexSpec,
        row_key: &[u8],
        item: &Item,
        version: ItemVersion,
    ) -> Result<Option<OutboxEntry>, PartitionError> {
        Ok(self.entry(index, row_key, item)?.map(|entry| OutboxEntry {
            index_table: index.index_table.clone(),
            change: IndexEntryChange {
                record: entry.record,
                version,
                entry: Some((entry.key, entry.value)),
            },
        }))
    }

    /// The outbox entries of replacing `old` by `new` under `row_key` at
    /// `version`, and the index writes they cost (index name, entry size).
    pub(crate) fn changes(
        &self,
        row_key: &[u8],
        old: Option<&Item>,
        new: Option<&Item>,
        version: ItemVersion,
    ) -> Result<(Vec<OutboxEntry>, Vec<IndexWrite>), PartitionError> {
        let mut outbox = Vec::new();
        let mut writes = Vec::new();
        for index in &self.indexes {
            let old = match old {
                Some(item) => self.entry(index, row_key, item)?,
                None => None,
            };
            let new = match new {
                Some(item) => self.entry(index, row_key, item)?,
                None => None,
            };
            let change = |record: Vec<u8>, entry: Option<(Vec<u8>, Vec<u8>)>| OutboxEntry {
                index_table: index.index_table.clone(),
                change: IndexEntryChange {
                    record,
                    version,
                    entry,
                },
            };
            match (old, new) {
                (None, None) => {}
                (Some(old), Some(new)) if old.key == new.key && old.value == new.value => {}
                (Some(old), Some(new)) if old.record == new.record => {
                    writes.push((index.name.clone(), new.size_bytes));
                    if old.key != new.key {
                        writes.push((index.name.clone(), old.size_bytes));
                    }
                    outbox.push(change(new.record, Some((new.key, new.value))));
                }
                (old, new) => {
                    if let Some(old) = old {
                        writes.push((index.name.clone(), old.size_bytes));
                        outbox.push(change(old.record, None));
                    }
                    if let Some(new) = new {
                        writes.push((index.name.clone(), new.size_bytes));
                        outbox.push(change(new.record, Some((new.key, new.value))));
                    }
                }
            }
        }
        Ok((outbox, writes))
    }
}

/// The key of outbox record `sequence` of log entry `log_index` of group `group_id`.
pub(crate) fn outbox_key(group_id: u64, log_index: u64, sequence: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(21);
    key.push(OUTBOX);
    key.extend_from_slice(&group_id.to_be_bytes());
    key.extend_from_slice(&log_index.to_be_bytes());
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

/// The key range of group `group_id`'s outbox.
pub(crate) fn outbox_range(group_id: u64) -> (Vec<u8>, std::ops::Bound<Vec<u8>>) {
    let mut start = vec![OUTBOX];
    start.extend_from_slice(&group_id.to_be_bytes());
    let end = match group_id.checked_add(1) {
        Some(next) => {
            let mut end = vec![OUTBOX];
            end.extend_from_slice(&next.to_be_bytes());
            std::ops::Bound::Excluded(end)
        }
        None => std::ops::Bound::Excluded(vec![OUTBOX + 1]),
    };
    (start, end)
}

/// Encodes an outbox entry.
pub(crate) fn encode_outbox_entry(entry: &OutboxEntry) -> Result<Vec<u8>, PartitionError> {
    postcard::to_stdvec(entry).map_err(|e| PartitionError::Corrupt(e.to_string()))
}

/// Decodes an outbox entry.
pub fn decode_outbox_entry(bytes: &[u8]) -> Result<OutboxEntry, PartitionError> {
    postcard::from_bytes(bytes).map_err(|e| PartitionError::Corrupt(e.to_string()))
}

/// A version record: the version, then the entry key the item has (empty: none).
pub(crate) fn encode_version(version: ItemVersion, entry_key: Option<&[u8]>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + entry_key.map_or(0, <[u8]>::len));
    bytes.extend_from_slice(&version.0.to_be_bytes());
    bytes.extend_from_slice(&version.1.to_be_bytes());
    if let Some(key) = entry_key {
        bytes.extend_from_slice(key);
    }
    bytes
}

/// Reads a version record.
pub(crate) fn decode_version(
    bytes: &[u8],
) -> Result<(ItemVersion, Option<Vec<u8>>), PartitionError> {
    let read = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let (Some(group), Some(index)) = (read(0), read(8)) else {
        return Err(PartitionError::Corrupt("short index entry version".into()));
    };
    let key = bytes
        .get(16..)
        .filter(|k| !k.is_empty())
        .map(<[u8]>::to_vec);
    Ok(((group, index), key))
}

/// The key of the version record of `record`.
pub(crate) fn version_key(record: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(record.len() + 1);
    key.push(VERSIONS);
    key.extend_from_slice(record);
    key
}
