//! Reads of a partition's items: one item, or a range of row keys in order.

use std::ops::Bound;

use atoll_model::Item;
use atoll_storage::{Bytes, Keyspace, RangeIter};

use crate::error::PartitionError;
use crate::stored::{stored_item, stored_size};

/// An item as stored: its row key, the item, and its DynamoDB size.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredItem {
    /// Row key (token, partition key, sort key).
    pub row_key: Bytes,
    /// The item.
    pub item: Item,
    /// DynamoDB size of the item.
    pub size_bytes: u32,
}

/// Items of a row-key range, in key order (or reverse), decoded as they are read.
pub struct ItemRange {
    inner: RangeIter<'static>,
}

impl ItemRange {
    /// Items with row keys in `(start, end)` of `keyspace`.
    pub fn new(
        keyspace: &Keyspace,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Self {
        ItemRange {
            inner: keyspace.range(start, end, reverse),
        }
    }
}

impl Iterator for ItemRange {
    type Item = Result<StoredItem, PartitionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (row_key, value) = match self.inner.next()? {
            Ok(pair) => pair,
            Err(e) => return Some(Err(e.into())),
        };
        Some(stored_size(&value).and_then(|size_bytes| {
            Ok(StoredItem {
                row_key,
                item: stored_item(&value)?,
                size_bytes,
            })
        }))
    }
}
