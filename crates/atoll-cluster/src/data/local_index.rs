//! Cursors over local secondary indexes: the entries of one partition key
//! (Query) or of a parallel-scan segment (Scan), in index order.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use atoll_expr::key_condition::SortKeyCondition;
use atoll_model::table::TableDefinition;
use atoll_model::{
    AttributeValue, encode_local_index_key, index_sort_prefix, local_index_prefix, partition_token,
};

use super::{
    DataPlane, IndexRead, ItemKey, KeyRange, RangeCursor, RowKeyBounds, Span, after_prefix,
    segment_tokens, tighter_end, tighter_start,
};
use crate::error::ClusterError;

impl DataPlane {
    /// A cursor over `range` of `table`'s local secondary index `index`, in
    /// index order (descending with `reverse`), starting after the entry
    /// of `exclusive_start` (the item's key and its index sort key) when
    /// given. It returns the index's entries, or with `fetch_items` the
    /// whole items they index.
    #[allow(clippy::too_many_arguments)]
    pub fn local_index_cursor(
        &self,
        table: Arc<TableDefinition>,
        index: &str,
        range: &KeyRange,
        exclusive_start: Option<(&ItemKey, &AttributeValue)>,
        reverse: bool,
        consistent: bool,
        fetch_items: bool,
    ) -> Result<RangeCursor, ClusterError> {
        let encoding = |e: atoll_model::KeyCodecError| ClusterError::KeyEncoding(e.to_string());
        let position = table
            .local_indexes
            .iter()
            .position(|i| i.name == index)
            .ok_or_else(|| {
                ClusterError::KeyEncoding(format!(
                    "table {} has no local index {index}",
                    table.name
                ))
            })?;
        let number = atoll_partition::index_number(position);
        let after = match exclusive_start {
            Some((key, sort)) => Some(Bound::Excluded(
                encode_local_index_key(number, &key.row_key, sort).map_err(encoding)?,
            )),
            None => None,
        };
        let spans = match range {
            KeyRange::Partition { partition, sort } => {
                let whole = local_index_prefix(number, partition).map_err(encoding)?;
                partition_span(partition, whole, sort.as_ref(), after, reverse)?
            }
            KeyRange::Segment { segment, total } => {
                index_segment_spans(&table, number, *segment, *total, after)
            }
        };
        Ok(RangeCursor {
            table,
            spans,
            reverse,
            consistent,
            index: Some(IndexRead {
                number,
                fetch_items,
            }),
        })
    }
}

/// The one span of an index read of partition key `partition`: the index
/// sort keys `sort` under `whole` (the prefix of its entries), narrowed by
/// the entry the read resumes after.
fn partition_span(
    partition: &AttributeValue,
    whole: Vec<u8>,
    sort: Option<&SortKeyCondition>,
    after: Option<Bound<Vec<u8>>>,
    reverse: bool,
) -> Result<VecDeque<Span>, ClusterError> {
    let (mut start, mut end) = index_sort_bounds(whole, sort)?;
    match after {
        Some(after) if reverse => end = tighter_end(end, after),
        Some(after) => start = tighter_start(start, after),
        None => {}
    }
    let token = partition_token(partition).map_err(|e| ClusterError::KeyEncoding(e.to_string()))?;
    Ok(VecDeque::from([Span { token, start, end }]))
}

/// Entry-key bounds of the index sort keys `sort` under `whole`, the
/// prefix of every entry of one index partition key. Every entry of one
/// index sort value starts with that value's prefix (the encoding is
/// prefix-free), so each condition is a range of prefixes.
pub(super) fn index_sort_bounds(
    whole: Vec<u8>,
    sort: Option<&SortKeyCondition>,
) -> Result<RowKeyBounds, ClusterError> {
    let encoding = |e: atoll_model::KeyCodecError| ClusterError::KeyEncoding(e.to_string());
    let exact =
        |value: &AttributeValue| index_sort_prefix(whole.clone(), value, false).map_err(encoding);
    let whole_start = Bound::Included(whole.clone());
    let whole_end = after_prefix(&whole);
    Ok(match sort {
        None => (whole_start, whole_end),
        Some(SortKeyCondition::Eq(value)) => {
            let prefix = exact(value)?;
            (Bound::Included(prefix.clone()), after_prefix(&prefix))
        }
        Some(SortKeyCondition::Lt(value)) => (whole_start, Bound::Excluded(exact(value)?)),
        Some(SortKeyCondition::Le(value)) => (whole_start, after_prefix(&exact(value)?)),
        Some(SortKeyCondition::Gt(value)) => (after_prefix(&exact(value)?), whole_end),
        Some(SortKeyCondition::Ge(value)) => (Bound::Included(exact(value)?), whole_end),
        Some(SortKeyCondition::Between(low, high)) => {
            (Bound::Included(exact(low)?), after_prefix(&exact(high)?))
        }
        Some(SortKeyCondition::BeginsWith(value)) => {
            let prefix = index_sort_prefix(whole.clone(), value, true).map_err(encoding)?;
            (Bound::Included(prefix.clone()), after_prefix(&prefix))
        }
    })
}

/// The share of every partition overlapping a parallel-scan segment, in
/// index `number`'s part of the keyspace, each starting after `after`.
fn index_segment_spans(
    table: &TableDefinition,
    number: u8,
    segment: u64,
    total: u64,
    after: Option<Bound<Vec<u8>>>,
) -> VecDeque<Span> {
    let (first_token, last_token) = segment_tokens(segment, total);
    let mut partitions: Vec<_> = table
        .partitions
        .iter()
        .filter(|p| p.end_token >= first_token && p.start_token <= last_token)
        .collect();
    partitions.sort_by_key(|p| p.start_token);
    partitions
        .into_iter()
        .map(|p| {
            let first = p.start_token.max(first_token);
            let last = p.end_token.min(last_token);
            let mut start = vec![number];
            start.extend_from_slice(&first.to_be_bytes());
            let end = match last.checked_add(1) {
                Some(next) => {
                    let mut end = vec![number];
                    end.extend_from_slice(&next.to_be_bytes());
                    Bound::Excluded(end)
                }
                None => Bound::Excluded(vec![number.saturating_add(1)]),
            };
            let start = match &after {
                Some(after) => tighter_start(Bound::Included(start), after.clone()),
                None => Bound::Included(start),
            };
            Span {
                token: p.start_token,
                start,
                end,
            }
        })
        .collect()
}

/// Where a read of a global index resumes: after the entry of an item
/// (its key in the table) under the index's keys.
pub struct GlobalIndexStart<'a> {
    /// The item's key in the table.
    pub item: &'a ItemKey,
    /// Its index partition key.
    pub partition: &'a AttributeValue,
    /// Its index sort key, when the index has one.
    pub sort: Option<&'a AttributeValue>,
}

impl DataPlane {
    /// A cursor over `range` of a global index whose entries live in
    /// `index_table` (its hidden table), in index order (descending with
    /// `reverse`), after `exclusive_start` when given. Global indexes are
    /// read eventually consistently, from any replica.
    pub fn global_index_cursor(
        &self,
        index_table: Arc<TableDefinition>,
        range: &KeyRange,
        exclusive_start: Option<GlobalIndexStart<'_>>,
        reverse: bool,
    ) -> Result<RangeCursor, ClusterError> {
        let encoding = |e: atoll_model::KeyCodecError| ClusterError::KeyEncoding(e.to_string());
        let after = match exclusive_start {
            Some(start) => Some(Bound::Excluded(
                atoll_model::encode_global_index_key(
                    start.partition,
                    start.sort,
                    &start.item.row_key,
                )
                .map_err(encoding)?,
            )),
            None => None,
        };
        let spans = match range {
            KeyRange::Partition { partition, sort } => {
                let whole =
                    atoll_model::row_key_prefix_for_partition(partition).map_err(encoding)?;
                partition_span(partition, whole, sort.as_ref(), after, reverse)?
            }
            KeyRange::Segment { segment, total } => {
                super::segment_spans(&index_table.partitions, *segment, *total, after)
            }
        };
        Ok(RangeCursor {
            table: index_table,
            spans,
            reverse,
            consistent: false,
            index: None,
        })
    }
}
