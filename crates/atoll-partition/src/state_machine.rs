//! Applying a partition's commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use atoll_replication::{ApplyContext, ApplyOutput, GroupStateMachine};
use atoll_storage::{Keyspace, StorageError};

use atoll_expr::Env;
use atoll_model::{Item, MAX_ITEM_SIZE_BYTES, encode_item, item_size_bytes};

use crate::command::{
    ItemWrite, PartitionCommand, PartitionOutput, ReturnValues, WriteAction, WriteOp,
};
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

    /// Applies one unconditional batch write, keeping statistics; returns the
    /// size of the item it replaced or removed.
    fn apply_op(&self, ctx: &mut ApplyContext, op: WriteOp) -> Result<u32, StorageError> {
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
        Ok(old_size_bytes)
    }

    /// Applies a single write: condition, action, statistics, returned attributes.
    fn apply_write(
        &self,
        ctx: &mut ApplyContext,
        write: ItemWrite,
    ) -> Result<PartitionOutput, StorageError> {
        let stored = ctx.get(&self.items, &write.row_key)?;
        let old_size_bytes = match &stored {
            Some(value) => stored_size(value).map_err(corrupt)?,
            None => 0,
        };
        // Decoding the old item is only needed for conditions, updates and
        // returned attributes; a plain put skips it.
        let needs_old = write.condition.is_some()
            || matches!(write.action, WriteAction::Update { .. })
            || write.return_values != ReturnValues::None;
        let old_item = match (&stored, needs_old) {
            (Some(value), true) => Some(stored_item(value).map_err(corrupt)?),
            _ => None,
        };
        let env = Env {
            names: &write.names,
            values: &write.values,
        };
        if let Some(condition) = &write.condition {
            let empty = Item::new();
            match atoll_expr::evaluate(condition, old_item.as_ref().unwrap_or(&empty), &env) {
                Ok(true) => {}
                Ok(false) => {
                    return Ok(PartitionOutput::ConditionFailed {
                        old: if write.return_old_on_condition_failure {
                            old_item
                        } else {
                            None
                        },
                        old_size_bytes,
                    });
                }
                Err(e) => {
                    return Ok(PartitionOutput::Rejected {
                        message: e.message().to_string(),
                    });
                }
            }
        }
        // Everything that can fail happens before the first write to `ctx`:
        // a rejected write must leave nothing behind in the apply batch.
        let rejected = |e: atoll_expr::ExprError| PartitionOutput::Rejected {
            message: e.message().to_string(),
        };
        let (new_value, new_item, new_size_bytes) = match &write.action {
            WriteAction::Put { record, size_bytes } => {
                let value = stored_value(record, *size_bytes);
                let new_item = if write.return_values == ReturnValues::AllNew {
                    Some(stored_item(&value).map_err(corrupt)?)
                } else {
                    None
                };
                (Some(value), new_item, *size_bytes)
            }
            WriteAction::Delete => (None, None, 0),
            // A missing item is created from its key even when the update only
            // removes (dynalite's tests, made against DynamoDB, show the key-only item).
            WriteAction::Update { key, update } => {
                let applied = match &old_item {
                    Some(old) => atoll_expr::apply_update(update, old, &env),
                    None => atoll_expr::apply_update_to_new_item(update, key, &env),
                };
                let new_item = match applied {
                    Ok(item) => item,
                    Err(e) => return Ok(rejected(e)),
                };
                let size_bytes = item_size_bytes(&new_item);
                if size_bytes > MAX_ITEM_SIZE_BYTES {
                    return Ok(PartitionOutput::Rejected {
                        message: "Item size to update has exceeded the maximum allowed size"
                            .to_string(),
                    });
                }
                let size_bytes = size_bytes as u32;
                let value = stored_value(&encode_item(&new_item), size_bytes);
                (Some(value), Some(new_item), size_bytes)
            }
        };
        let returned = match (write.return_values, &write.action) {
            (ReturnValues::None, _) => None,
            (ReturnValues::AllOld, _) => old_item,
            (ReturnValues::AllNew, _) => new_item,
            (ReturnValues::UpdatedOld, WriteAction::Update { update, .. }) => match &old_item {
                Some(old) => Some(
                    atoll_expr::updated_attributes(update, old, &env)
                        .map_err(|e| corrupt_expr(&e))?,
                ),
                None => None,
            },
            (ReturnValues::UpdatedNew, WriteAction::Update { update, .. }) => match &new_item {
                Some(new) => Some(
                    atoll_expr::updated_attributes(update, new, &env)
                        .map_err(|e| corrupt_expr(&e))?,
                ),
                None => None,
            },
            (ReturnValues::UpdatedOld | ReturnValues::UpdatedNew, _) => None,
        };
        let old_count = i64::from(stored.is_some());
        let exists_after = new_value.is_some();
        match new_value {
            Some(value) => ctx.put(&self.items, write.row_key, value),
            None if stored.is_some() => ctx.delete(&self.items, write.row_key),
            None => {}
        }
        self.stats.apply_change(
            i64::from(exists_after) - old_count,
            i64::from(new_size_bytes) - i64::from(old_size_bytes),
        );
        Ok(PartitionOutput::Written {
            returned: returned.filter(|item| !item.is_empty()),
            old_size_bytes,
            new_size_bytes,
        })
    }
}

/// Projecting the updated paths of items the update itself produced cannot
/// fail unless the state machine is wrong; treat it as corruption.
fn corrupt_expr(e: &atoll_expr::ExprError) -> StorageError {
    corrupt(PartitionError::Corrupt(e.to_string()))
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
            PartitionCommand::Write(write) => self.apply_write(ctx, *write)?,
            PartitionCommand::Batch { ops } => {
                let mut old_sizes_bytes = Vec::with_capacity(ops.len());
                for op in ops {
                    old_sizes_bytes.push(self.apply_op(ctx, op)?);
                }
                PartitionOutput::BatchWritten { old_sizes_bytes }
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
