//! Reads of local secondary indexes: ranges of a partition's index
//! entries, or the items they index, routed as item ranges are.

use std::ops::Bound;

use atoll_model::table::TableDefinition;
use atoll_partition::{ItemRange, read_stored_item};

use super::{
    ClusterReply, ClusterRequest, RangeChunk, RangeItem, RangeRequest, Router, unexpected_reply,
};
use crate::error::ClusterError;
use atoll_replication::GroupId;

impl Router {
    /// Reads entries of local index `index` (its storage number) in the
    /// partition owning `token`, as `read_range` reads items; with
    /// `fetch_items`, the items the entries index.
    pub(crate) async fn read_index_range(
        &self,
        table: &TableDefinition,
        token: u64,
        index: u8,
        fetch_items: bool,
        range: RangeRequest,
        consistent: bool,
    ) -> Result<RangeChunk, ClusterError> {
        let request = |group| ClusterRequest::ReadIndexRange {
            group,
            token,
            index,
            fetch_items,
            range: range.clone(),
            consistent,
        };
        match self.routed_read(table, token, consistent, request).await? {
            ClusterReply::Range(chunk) => Ok(chunk),
            _ => Err(unexpected_reply()),
        }
    }

    /// Reads index entries (or, with `fetch_items`, the items they index)
    /// from this node's replica. The range must lie within index `index`'s
    /// part of the keyspace.
    pub(super) async fn read_index_range_here(
        &self,
        group: GroupId,
        token: u64,
        (index, fetch_items): (u8, bool),
        range: RangeRequest,
        consistent: bool,
    ) -> Result<RangeChunk, ClusterReply> {
        let handle = self.readable_replica(group, token, consistent).await?;
        handle.traffic.count_read(None);
        let Some(local) = handle.sm.local_indexes() else {
            return Err(ClusterReply::failed(
                "the partition's table has no local indexes",
                false,
            ));
        };
        let within_index = match &range.start {
            Bound::Included(start) | Bound::Excluded(start) => start.first() == Some(&index),
            Bound::Unbounded => false,
        };
        if !within_index {
            return Err(ClusterReply::failed(
                "an index range outside its index",
                false,
            ));
        }
        let failed = |e: &dyn std::fmt::Display| ClusterReply::failed(e.to_string(), false);
        let mut chunk = RangeChunk::default();
        let mut bytes = 0u64;
        for stored in ItemRange::new(local.keyspace(), range.start, range.end, range.reverse) {
            if chunk.items.len() >= range.max_items || bytes >= range.max_bytes {
                break;
            }
            let stored = stored.map_err(|e| failed(&e))?;
            let (item, size_bytes) = if fetch_items {
                let row_key = atoll_model::local_index_entry_row_key(&stored.row_key)
                    .map_err(|e| failed(&e))?;
                // An item deleted since its entry was read is skipped: its
                // entry went in the same apply batch.
                match read_stored_item(&handle.items, &row_key).map_err(|e| failed(&e))? {
                    Some((item, size_bytes)) => (item, size_bytes),
                    None => continue,
                }
            } else {
                (stored.item, stored.size_bytes)
            };
            bytes += u64::from(size_bytes);
            chunk.items.push(RangeItem { item, size_bytes });
        }
        Ok(chunk)
    }
}
