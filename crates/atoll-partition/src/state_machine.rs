//! Applying a partition's commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use atoll_replication::{ApplyContext, ApplyOutput, GroupStateMachine};
use atoll_storage::{Keyspace, StorageError};

use crate::command::{PartitionCommand, PartitionOutput, WriteOp};
use crate::error::PartitionError;
use crate::stored::{stored_item, stored_size, stored_value};

/// Item count and total item size of a partition, maintained by `apply`.
#[derive(Debug, Default)]
pub struct PartitionStats {
    item_count: AtomicU64,
    size_bytes: AtomicU64,
}

impl PartitionStats {
    /// Items stored.
    pub fn item_count(&self) -> u64 {
        self.item_count.load(Ordering::Relaxed)
    }

    /// Sum of DynamoDB item sizes.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes.load(Ordering::Relaxed)
    }

    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(16);
        bytes.extend_from_slice(&self.item_count().to_be_bytes());
        bytes.extend_from_slice(&self.size_bytes().to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<PartitionStats, PartitionError> {
        let read = |range: std::ops::Range<usize>| -> Result<u64, PartitionError> {
            let raw: [u8; 8] = bytes
                .get(range)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| PartitionError::Corrupt("short partition statistics".into()))?;
            Ok(u64::from_be_bytes(raw))
        };
        Ok(PartitionStats {
            item_count: AtomicU64::new(read(0..8)?),
            size_bytes: AtomicU64::new(read(8..16)?),
        })
    }

    fn apply_change(&self, count_delta: i64, size_delta: i64) {
        let update = |counter: &AtomicU64, delta: i64| {
            let current = counter.load(Ordering::Relaxed);
            counter.store(current.saturating_add_signed(delta), Ordering::Relaxed);
        };
        update(&self.item_count, count_delta);
        update(&self.size_bytes, size_delta);
    }
}

/// The state machine of one partition of one table.
pub struct PartitionStateMachine {
    group_id: u64,
    items: Keyspace,
    stats_keyspace: Keyspace,
    stats: Arc<PartitionStats>,
}

impl PartitionStateMachine {
    /// A partition whose items live in `items` and statistics in `stats_keyspace`.
    pub fn open(
        group_id: u64,
        items: Keyspace,
        stats_keyspace: Keyspace,
    ) -> Result<Self, PartitionError> {
        let stats = match stats_keyspace.get(&group_id.to_be_bytes())? {
            Some(bytes) => PartitionStats::decode(&bytes)?,
            None => PartitionStats::default(),
        };
        Ok(PartitionStateMachine {
            group_id,
            items,
            stats_keyspace,
            stats: Arc::new(stats),
        })
    }

    /// Live statistics of this partition.
    pub fn stats(&self) -> Arc<PartitionStats> {
        self.stats.clone()
    }

    /// The keyspace holding this partition's items.
    pub fn items(&self) -> &Keyspace {
        &self.items
    }

    /// Applies one write; returns the old stored value if wanted, and the old item's size.
    fn apply_op(
        &self,
        ctx: &mut ApplyContext,
        op: WriteOp,
        want_old: bool,
    ) -> Result<(Option<Vec<u8>>, u32), StorageError> {
        let old = ctx.get(&self.items, op.row_key())?;
        let old_size_bytes = match &old {
            Some(value) => stored_size(value).map_err(corrupt)?,
            None => 0,
        };
        let old_size = i64::from(old_size_bytes);
        let old_count = i64::from(old.is_some());
        match op {
            WriteOp::Put {
                row_key,
                record,
                size_bytes,
            } => {
                self.stats
                    .apply_change(1 - old_count, i64::from(size_bytes) - old_size);
                ctx.put(&self.items, row_key, stored_value(&record, size_bytes));
            }
            WriteOp::Delete { row_key } => {
                self.stats.apply_change(-old_count, -old_size);
                if old.is_some() {
                    ctx.delete(&self.items, row_key);
                }
            }
        }
        let old = if want_old {
            old.map(|v| v.to_vec())
        } else {
            None
        };
        Ok((old, old_size_bytes))
    }
}

fn corrupt(e: PartitionError) -> StorageError {
    StorageError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        e.to_string(),
    ))
}

impl GroupStateMachine for PartitionStateMachine {
    fn apply(
        &self,
        ctx: &mut ApplyContext,
        _log_index: u64,
        command: &[u8],
    ) -> Result<ApplyOutput, StorageError> {
        let command = PartitionCommand::decode(command).map_err(corrupt)?;
        let output = match command {
            PartitionCommand::Single { op, return_old } => {
                let (old, old_size_bytes) = self.apply_op(ctx, op, return_old)?;
                let old = match old {
                    Some(value) => Some(stored_item(&value).map_err(corrupt)?),
                    None => None,
                };
                PartitionOutput::Written {
                    old,
                    old_size_bytes,
                }
            }
            PartitionCommand::Batch { ops } => {
                for op in ops {
                    self.apply_op(ctx, op, false)?;
                }
                PartitionOutput::BatchWritten
            }
        };
        ctx.put(
            &self.stats_keyspace,
            self.group_id.to_be_bytes().to_vec(),
            self.stats.encode(),
        );
        Ok(ApplyOutput::new(output))
    }
}
