//! The data plane: what the API calls to read and write items.
//!
//! Keys go in as attribute values (located once as an [`ItemKey`]); what
//! comes out is items and typed outcomes. Tokens, row keys, partitions and
//! what they answer while they split or change leaders stay behind this
//! interface, in the router (`cluster/routing.rs`).
//!
//! Room for what comes next: index maintenance and stream records are
//! derived from a write's old and new item inside `apply`, so they extend
//! [`WriteOutcome`] and the partition's command, not this call; a
//! transaction becomes one more call here that takes several
//! [`SingleWrite`]s (and condition checks) across partitions.

use std::collections::{HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use atoll_expr::ast::{Condition, Update};
pub use atoll_expr::key_condition::SortKeyCondition;
use atoll_model::table::{KeySchema, TableDefinition};
use atoll_model::{AttributeValue, Item, encode_item, encode_row_key, partition_token};
use atoll_model::{row_key_prefix_for_partition, table::PartitionDefinition};
use atoll_partition::{ItemWrite, PartitionCommand, PartitionOutput, WriteOp};

pub use atoll_partition::{ReturnValues, WriteRejection};

use crate::cluster::{RangeChunk, RangeRequest, Router};
use crate::error::ClusterError;

/// Where an item lives: its partition token and its row key. Opaque to
/// callers, who compare it (duplicate keys) and hand it back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ItemKey {
    token: u64,
    row_key: Vec<u8>,
}

impl ItemKey {
    /// The location of `item` (an item or a key) under `schema`; its key
    /// attributes must be present and of the schema's types.
    pub fn of(schema: &KeySchema, item: &Item) -> Result<ItemKey, ClusterError> {
        let (partition, sort) = schema.key_values(item).ok_or(ClusterError::KeyMismatch)?;
        let encoding = |e: atoll_model::KeyCodecError| ClusterError::KeyEncoding(e.to_string());
        Ok(ItemKey {
            token: partition_token(partition).map_err(encoding)?,
            row_key: encode_row_key(partition, sort).map_err(encoding)?,
        })
    }

    /// The item's token.
    pub(crate) fn token(&self) -> u64 {
        self.token
    }

    /// The item's row key.
    pub(crate) fn row_key(&self) -> &[u8] {
        &self.row_key
    }

    /// Whether the item falls in parallel-scan segment `segment` of `total`.
    pub fn in_segment(&self, segment: u64, total: u64) -> bool {
        let (first, last) = segment_tokens(segment, total);
        (first..=last).contains(&self.token)
    }
}

/// What a single write does to its item.
#[derive(Clone, Debug)]
pub enum WriteAction {
    /// Replace the item with `item`.
    Put {
        /// The new item.
        item: Item,
        /// Its DynamoDB size.
        size_bytes: u32,
    },
    /// Remove the item.
    Delete,
    /// Apply `update` to the item, creating it from `key` where the update
    /// writes (`atoll_expr::creates_missing_item`).
    Update {
        /// The key attributes of the item.
        key: Item,
        /// The update (an UpdateExpression or translated AttributeUpdates).
        update: Update,
    },
}

/// A single-item write (PutItem, DeleteItem, UpdateItem) with an optional
/// condition; every replica decides it the same way in `apply`.
#[derive(Clone, Debug)]
pub struct SingleWrite {
    /// The item written.
    pub key: ItemKey,
    /// What to do to it.
    pub action: WriteAction,
    /// Condition on the item before the write.
    pub condition: Option<Condition>,
    /// `ExpressionAttributeNames` of the request.
    pub names: HashMap<String, String>,
    /// `ExpressionAttributeValues` of the request.
    pub values: HashMap<String, AttributeValue>,
    /// Which attributes to return.
    pub return_values: ReturnValues,
    /// Whether a failed condition returns the item as it is.
    pub return_old_on_condition_failure: bool,
}

/// What a single write did.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOutcome {
    /// The write applied.
    Written {
        /// The attributes `return_values` asked for, if any.
        returned: Option<Item>,
        /// DynamoDB size of the item before (0 if there was none).
        old_size_bytes: u32,
        /// DynamoDB size of the item after (0 if there is none).
        new_size_bytes: u32,
        /// Size of the item's collection after (items and local index
        /// entries), on a table with local secondary indexes.
        collection_size_bytes: Option<u64>,
        /// Index entries written or removed, as (index name, entry size).
        index_writes: Vec<(String, u32)>,
    },
    /// The condition did not hold; nothing was written.
    ConditionFailed {
        /// The item, when asked for and present.
        old: Option<Item>,
        /// DynamoDB size of the item (0 if there is none).
        old_size_bytes: u32,
    },
}

/// What a batch did, write by write in the batch's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchOutcome {
    /// DynamoDB size of each item before its write (0 where there was none).
    pub old_sizes_bytes: Vec<u32>,
    /// Size of each write's item collection after the batch, on a table
    /// with local secondary indexes.
    pub collection_sizes_bytes: Vec<Option<u64>>,
    /// Index entries each write wrote or removed, as (index name, entry size).
    pub index_writes: Vec<Vec<(String, u32)>>,
}

impl BatchOutcome {
    /// Records a partition's share: the writes at `indices` had items of
    /// `old_sizes_bytes` and leave collections of `collection_sizes_bytes`
    /// (empty without local indexes).
    pub(crate) fn record(
        &mut self,
        indices: &[usize],
        old_sizes_bytes: &[u32],
        collection_sizes_bytes: &[u64],
        index_writes: Vec<Vec<(String, u32)>>,
    ) {
        for (index, writes) in indices.iter().zip(index_writes) {
            if let Some(slot) = self.index_writes.get_mut(*index) {
                *slot = writes;
            }
        }
        for (position, index) in indices.iter().enumerate() {
            if let (Some(slot), Some(size)) = (
                self.old_sizes_bytes.get_mut(*index),
                old_sizes_bytes.get(position),
            ) {
                *slot = *size;
            }
            if let (Some(slot), Some(size)) = (
                self.collection_sizes_bytes.get_mut(*index),
                collection_sizes_bytes.get(position),
            ) {
                *slot = Some(*size);
            }
        }
    }
}

/// One unconditional write of a batch (BatchWriteItem).
#[derive(Clone, Debug)]
pub struct BatchWrite(WriteOp);

impl BatchWrite {
    /// Store `item` (of DynamoDB size `size_bytes`) at `key`.
    pub fn put(key: ItemKey, item: &Item, size_bytes: u32) -> BatchWrite {
        BatchWrite(WriteOp::Put {
            row_key: key.row_key,
            record: encode_item(item),
            size_bytes,
        })
    }

    /// Remove the item at `key`.
    pub fn delete(key: ItemKey) -> BatchWrite {
        BatchWrite(WriteOp::Delete {
            row_key: key.row_key,
        })
    }
}

/// A range of items to read, in key order.
#[derive(Clone, Debug)]
pub enum KeyRange {
    /// The items of one partition key (Query).
    Partition {
        /// The partition key's value.
        partition: AttributeValue,
        /// Which of its sort keys (all without a condition).
        sort: Option<SortKeyCondition>,
    },
    /// The items of parallel-scan segment `segment` of `total` (0 of 1 is
    /// the whole table), partition after partition.
    Segment {
        /// The segment, from 0.
        segment: u64,
        /// How many segments the table is cut into.
        total: u64,
    },
}

/// A row-key range inside the partition owning `token`.
#[derive(Clone, Debug)]
struct Span {
    token: u64,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
}

/// Where a read of a [`KeyRange`] has got to: each call of
/// [`DataPlane::next_chunk`] reads the next partition's share.
#[derive(Debug)]
pub struct RangeCursor {
    table: Arc<TableDefinition>,
    spans: VecDeque<Span>,
    reverse: bool,
    consistent: bool,
    /// A read of a local secondary index rather than of the table.
    index: Option<IndexRead>,
}

/// Which local index a cursor reads, and what it returns.
#[derive(Clone, Copy, Debug)]
struct IndexRead {
    /// The index's storage number.
    number: u8,
    /// Return the indexed items rather than the entries.
    fetch_items: bool,
}

/// The data plane of a node: reads and writes of items, routed to the
/// partitions that own them wherever they are served.
#[derive(Clone)]
pub struct DataPlane {
    router: Arc<Router>,
    ledger: Arc<crate::cluster::ledger::Ledger>,
}

impl DataPlane {
    /// The data plane over a node's router (`Cluster::data_plane`).
    pub(crate) fn new(
        router: Arc<Router>,
        ledger: Arc<crate::cluster::ledger::Ledger>,
    ) -> DataPlane {
        DataPlane { router, ledger }
    }

    /// Replicates a single write through the partition owning its key.
    /// A write the item refuses fails with `ClusterError::Rejected`.
    pub async fn write_item(
        &self,
        table: &TableDefinition,
        write: SingleWrite,
    ) -> Result<WriteOutcome, ClusterError> {
        let token = write.key.token;
        let action = match write.action {
            WriteAction::Put { item, size_bytes } => atoll_partition::WriteAction::Put {
                record: encode_item(&item),
                size_bytes,
            },
            WriteAction::Delete => atoll_partition::WriteAction::Delete,
            WriteAction::Update { key, update } => {
                atoll_partition::WriteAction::Update { key, update }
            }
        };
        let command = PartitionCommand::Write(Box::new(ItemWrite {
            row_key: write.key.row_key,
            action,
            condition: write.condition,
            names: write.names,
            values: write.values,
            return_values: write.return_values,
            return_old_on_condition_failure: write.return_old_on_condition_failure,
        }));
        match self.router.write(table, token, &command).await? {
            PartitionOutput::Written {
                returned,
                old_size_bytes,
                new_size_bytes,
            } => Ok(WriteOutcome::Written {
                returned,
                old_size_bytes,
                new_size_bytes,
                collection_size_bytes: None,
                index_writes: Vec::new(),
            }),
            PartitionOutput::WrittenInCollection {
                returned,
                old_size_bytes,
                new_size_bytes,
                collection_size_bytes,
                index_writes,
            } => Ok(WriteOutcome::Written {
                returned,
                old_size_bytes,
                new_size_bytes,
                // Only tables with local indexes have item collections to report.
                collection_size_bytes: (!table.local_indexes.is_empty())
                    .then_some(collection_size_bytes),
                index_writes,
            }),
            PartitionOutput::ConditionFailed {
                old,
                old_size_bytes,
            } => Ok(WriteOutcome::ConditionFailed {
                old,
                old_size_bytes,
            }),
            PartitionOutput::Refused(rejection) => Err(ClusterError::Rejected(rejection)),
            PartitionOutput::TransactionConflict => Err(ClusterError::TransactionConflict),
            // A node of the previous version words it as DynamoDB does, as
            // the expression language does its errors.
            PartitionOutput::Rejected { message } => {
                Err(ClusterError::Rejected(WriteRejection::Expression(message)))
            }
            other => Err(ClusterError::UnexpectedOutcome(format!("{other:?}"))),
        }
    }

    /// Writes a batch on distinct keys, each partition's share as one
    /// command, all shares at once.
    pub async fn write_batch(
        &self,
        table: &TableDefinition,
        writes: Vec<BatchWrite>,
    ) -> Result<BatchOutcome, ClusterError> {
        let ops: Vec<WriteOp> = writes.into_iter().map(|write| write.0).collect();
        self.router.write_batch(table, &ops).await
    }

    /// Reads one item; a consistent read is served by the partition's
    /// leader under its lease, any other by any replica.
    pub async fn get_item(
        &self,
        table: &TableDefinition,
        key: &ItemKey,
        consistent: bool,
    ) -> Result<Option<Item>, ClusterError> {
        self.router
            .read_item(table, key.token, &key.row_key, consistent)
            .await
    }

    /// A cursor over `range` of `table`, in key order (descending with
    /// `reverse`), starting after `exclusive_start` when given.
    pub fn range_cursor(
        &self,
        table: Arc<TableDefinition>,
        range: &KeyRange,
        exclusive_start: Option<&ItemKey>,
        reverse: bool,
        consistent: bool,
    ) -> Result<RangeCursor, ClusterError> {
        let after = exclusive_start.map(|key| Bound::Excluded(key.row_key.clone()));
        let spans = match range {
            KeyRange::Partition { partition, sort } => {
                let (mut start, mut end) = sort_key_bounds(partition, sort.as_ref())?;
                match after {
                    Some(after) if reverse => end = tighter_end(end, after),
                    Some(after) => start = tighter_start(start, after),
                    None => {}
                }
                let token = partition_token(partition)
                    .map_err(|e| ClusterError::KeyEncoding(e.to_string()))?;
                VecDeque::from([Span { token, start, end }])
            }
            KeyRange::Segment { segment, total } => {
                segment_spans(&table.partitions, *segment, *total, after)
            }
        };
        Ok(RangeCursor {
            table,
            spans,
            reverse,
            consistent,
            index: None,
        })
    }

    /// Reads the next partition's share of the cursor's range: up to
    /// `max_items`, stopping once the items reach `max_bytes`. `None` once
    /// every partition was read.
    pub async fn next_chunk(
        &self,
        cursor: &mut RangeCursor,
        max_items: usize,
        max_bytes: u64,
    ) -> Result<Option<RangeChunk>, ClusterError> {
        let Some(span) = cursor.spans.pop_front() else {
            return Ok(None);
        };
        let request = RangeRequest {
            start: span.start,
            end: span.end,
            reverse: cursor.reverse,
            max_items,
            max_bytes,
        };
        let chunk = match cursor.index {
            None => {
                self.router
                    .read_range(&cursor.table, span.token, request, cursor.consistent)
                    .await
            }
            Some(index) => {
                self.router
                    .read_index_range(
                        &cursor.table,
                        span.token,
                        index.number,
                        index.fetch_items,
                        request,
                        cursor.consistent,
                    )
                    .await
            }
        };
        chunk.map(Some)
    }
}

mod local_index;
mod streams;
mod transactions;

pub use atoll_partition::CommittedWrite;
pub use local_index::GlobalIndexStart;
pub use streams::{EventName, SequenceNumber, Shard, StreamRecord, StreamShard, StreamViewType};
pub use transactions::{
    CancelReason, TransactAction, TransactGetOutcome, TransactOp, TransactRead, TransactWrite,
    TransactWriteOutcome,
};

/// A row-key range: its start and end.
type RowKeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Row-key bounds of the sort keys `sort` of partition key `partition`.
fn sort_key_bounds(
    partition: &AttributeValue,
    sort: Option<&SortKeyCondition>,
) -> Result<RowKeyBounds, ClusterError> {
    let encoding = |e: atoll_model::KeyCodecError| ClusterError::KeyEncoding(e.to_string());
    let encode = |sort: &AttributeValue| encode_row_key(partition, Some(sort)).map_err(encoding);
    let prefix = row_key_prefix_for_partition(partition).map_err(encoding)?;
    let whole_start = Bound::Included(prefix.clone());
    let whole_end = after_prefix(&prefix);
    Ok(match sort {
        None => (whole_start, whole_end),
        Some(SortKeyCondition::Eq(value)) => (
            Bound::Included(encode(value)?),
            Bound::Included(encode(value)?),
        ),
        Some(SortKeyCondition::Lt(value)) => (whole_start, Bound::Excluded(encode(value)?)),
        Some(SortKeyCondition::Le(value)) => (whole_start, Bound::Included(encode(value)?)),
        Some(SortKeyCondition::Gt(value)) => (Bound::Excluded(encode(value)?), whole_end),
        Some(SortKeyCondition::Ge(value)) => (Bound::Included(encode(value)?), whole_end),
        Some(SortKeyCondition::Between(low, high)) => (
            Bound::Included(encode(low)?),
            Bound::Included(encode(high)?),
        ),
        // Sort keys of S and B are stored as their raw bytes, so a prefix of
        // the value is a prefix of the row key.
        Some(SortKeyCondition::BeginsWith(value)) => {
            let start = encode(value)?;
            let end = after_prefix(&start);
            (Bound::Included(start), end)
        }
    })
}

/// The share of every partition overlapping a parallel-scan segment, in
/// token order, each starting after `after` when given.
fn segment_spans(
    partitions: &[PartitionDefinition],
    segment: u64,
    total: u64,
    after: Option<Bound<Vec<u8>>>,
) -> VecDeque<Span> {
    let (first_token, last_token) = segment_tokens(segment, total);
    let mut spans: Vec<&PartitionDefinition> = partitions
        .iter()
        .filter(|p| p.end_token >= first_token && p.start_token <= last_token)
        .collect();
    spans.sort_by_key(|p| p.start_token);
    spans
        .into_iter()
        .map(|p| {
            let (start, end) =
                token_bounds(p.start_token.max(first_token), p.end_token.min(last_token));
            let start = match &after {
                Some(after) => tighter_start(start, after.clone()),
                None => start,
            };
            Span {
                token: p.start_token,
                start,
                end,
            }
        })
        .collect()
}

/// The row key just after every key starting with `prefix`.
fn after_prefix(prefix: &[u8]) -> Bound<Vec<u8>> {
    atoll_storage::prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded)
}

/// Row-key bounds of a token range `[first, last]`.
fn token_bounds(first: u64, last: u64) -> RowKeyBounds {
    let start = Bound::Included(first.to_be_bytes().to_vec());
    let end = match last.checked_add(1) {
        Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
        None => Bound::Unbounded,
    };
    (start, end)
}

/// Token range `[first, last]` of parallel-scan segment `segment` of `total`.
fn segment_tokens(segment: u64, total: u64) -> (u64, u64) {
    let span: u128 = 1 << 64;
    let total = u128::from(total.max(1));
    let first = (u128::from(segment) * span).div_ceil(total);
    let next = (u128::from(segment) + 1) * span;
    let next = next.div_ceil(total);
    (first as u64, next.saturating_sub(1) as u64)
}

/// The later of two range starts.
fn tighter_start(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if x > y || (x == y && matches!(a, Bound::Excluded(_))) {
                a
            } else {
                b
            }
        }
    }
}

/// The earlier of two range ends.
fn tighter_end(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if x < y || (x == y && matches!(a, Bound::Excluded(_))) {
                a
            } else {
                b
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::segment_tokens;

    #[test]
    fn segments_cover_all_tokens_without_overlap() {
        for total in [1u64, 2, 3, 7, 1000, 1_000_000] {
            let mut expected_first = 0u128;
            let probes: Vec<u64> = if total <= 1000 {
                (0..total).collect()
            } else {
                vec![0, 1, total / 2, total - 2, total - 1]
            };
            for segment in probes {
                let (first, last) = segment_tokens(segment, total);
                if total <= 1000 {
                    assert_eq!(
                        u128::from(first),
                        expected_first,
                        "segment {segment} of {total}"
                    );
                    expected_first = u128::from(last) + 1;
                }
                assert!(first <= last);
            }
            if total <= 1000 {
                assert_eq!(expected_first, 1u128 << 64);
            }
        }
    }
}
