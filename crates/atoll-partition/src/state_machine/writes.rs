//! Single-item writes: what a Put, Update or Delete makes of an item,
//! applied with its statistics, local index entries and outbox records.

use atoll_expr::Env;
use atoll_model::{Item, MAX_ITEM_SIZE_BYTES, encode_item, item_size_bytes};
use atoll_replication::ApplyContext;
use atoll_storage::StorageError;

use super::indexing::{CollectionSizes, ItemChange, Sequences};
use super::{PartitionStateMachine, corrupt, corrupt_expr};
use crate::command::{
    ItemWrite, PartitionOutput, ReturnValues, WriteAction, WriteOp, WriteRejection,
};
use crate::stored::{stored_item, stored_size, stored_value};

impl PartitionStateMachine {
    /// Applies one unconditional batch write, keeping statistics; returns the
    /// size of the item it replaced or removed.
    pub(super) fn apply_op(
        &self,
        ctx: &mut ApplyContext,
        op: WriteOp,
    ) -> Result<u32, StorageError> {
        // A key outside the range belongs to another partition: writing it
        // here would resurrect it in a split-off half (`apply` refuses it).
        debug_assert!(
            self.owns(op.row_key()),
            "batch write outside the partition's range"
        );
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
    pub(super) fn apply_write(
        &self,
        ctx: &mut ApplyContext,
        write: ItemWrite,
        log_index: u64,
    ) -> Result<PartitionOutput, StorageError> {
        let mut sizes = CollectionSizes::default();
        let output = self.apply_write_in(
            ctx,
            write,
            log_index,
            (&mut Sequences::default(), &mut sizes),
            false,
        )?;
        self.write_collection_sizes(ctx, sizes);
        Ok(output)
    }

    /// `apply_write`, as one of several writes of one entry: they number
    /// their index and stream records in `sequences` and share collection
    /// `sizes`, which the caller writes once at the end. A `committed`
    /// transaction's write is refused nothing by the indexes (see
    /// `ItemChange::committed`).
    pub(super) fn apply_write_in(
        &self,
        ctx: &mut ApplyContext,
        write: ItemWrite,
        log_index: u64,
        (sequences, sizes): (&mut Sequences, &mut CollectionSizes),
        committed: bool,
    ) -> Result<PartitionOutput, StorageError> {
        debug_assert!(
            self.owns(&write.row_key),
            "write outside the partition's range"
        );
        let stored = ctx.get(&self.items, &write.row_key)?;
        let old_size_bytes = match &stored {
            Some(value) => stored_size(value).map_err(corrupt)?,
            None => 0,
        };
        // Decoding the old item is only needed for conditions, updates and
        // returned attributes; a plain put skips it.
        let needs_old = write.condition.is_some()
            || matches!(write.action, WriteAction::Update { .. })
            || write.return_values != ReturnValues::None
            || self.has_indexes();
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
                        old: old_item.filter(|_| write.return_old_on_condition_failure),
                        old_size_bytes,
                    });
                }
                Err(e) => return Ok(refused(&e)),
            }
        }
        // Everything that can fail happens before the first write to `ctx`:
        // a rejected write must leave nothing behind in the apply batch.
        let new = match new_state(&write, old_item.as_ref(), &env, self.has_indexes())? {
            Ok(new) => new,
            Err(NoWrite::Refused(output)) => return Ok(output),
            // Nothing to write: the item stays missing.
            Err(NoWrite::Nothing) => {
                debug_assert!(stored.is_none());
                return Ok(PartitionOutput::Written {
                    returned: None,
                    old_size_bytes,
                    new_size_bytes: 0,
                });
            }
        };
        let plan = if self.has_indexes() {
            let change = ItemChange {
                row_key: &write.row_key,
                old: old_item.as_ref(),
                old_size_bytes,
                new: new.item.as_ref(),
                new_size_bytes: new.size_bytes,
                by_service: false,
                committed,
            };
            match self.plan_indexes(ctx, &change, sizes, (self.group_id, log_index))? {
                Ok(plan) => Some(plan),
                Err(rejection) => return Ok(PartitionOutput::Refused(rejection)),
            }
        } else {
            None
        };
        let returned = returned_attributes(&write, old_item, new.item, &env)?;
        let old_count = i64::from(stored.is_some());
        let exists_after = new.value.is_some();
        match new.value {
            Some(value) => ctx.put(&self.items, write.row_key, value),
            None if stored.is_some() => ctx.delete(&self.items, write.row_key),
            None => {}
        }
        self.stats.apply_change(
            i64::from(exists_after) - old_count,
            i64::from(new.size_bytes) - i64::from(old_size_bytes),
        );
        let returned = returned.filter(|item| !item.is_empty());
        Ok(match plan {
            Some(plan) => {
                let collection_size_bytes = plan.collection_size(sizes);
                let index_writes = plan.index_writes.clone();
                self.write_index_plan(ctx, plan, log_index, sequences)?;
                PartitionOutput::WrittenInCollection {
                    returned,
                    old_size_bytes,
                    new_size_bytes: new.size_bytes,
                    collection_size_bytes,
                    index_writes,
                }
            }
            None => PartitionOutput::Written {
                returned,
                old_size_bytes,
                new_size_bytes: new.size_bytes,
            },
        })
    }
}

/// An item as a single write leaves it.
pub(super) struct NewState {
    /// The stored value (`None`: the item is gone).
    pub(super) value: Option<Vec<u8>>,
    /// The item, when the write decoded or built it.
    pub(super) item: Option<Item>,
    /// Its DynamoDB size (0 when gone).
    pub(super) size_bytes: u32,
}

/// Why a single write writes nothing.
pub(super) enum NoWrite {
    /// The write is invalid for the item as it is.
    Refused(PartitionOutput),
    /// An update of a missing item that only removes: it stays missing.
    Nothing,
}

/// The partition's refusal of a write whose expression failed on the item.
fn refused(e: &atoll_expr::ExprError) -> PartitionOutput {
    PartitionOutput::Refused(WriteRejection::Expression(e.message().to_string()))
}

/// What `write` makes of the item (`old_item`, decoded when the write
/// needs it).
pub(super) fn new_state(
    write: &ItemWrite,
    old_item: Option<&Item>,
    env: &Env<'_>,
    decode_put: bool,
) -> Result<Result<NewState, NoWrite>, StorageError> {
    Ok(Ok(match &write.action {
        WriteAction::Put { record, size_bytes } => {
            let value = stored_value(record, *size_bytes);
            let item = if decode_put || write.return_values == ReturnValues::AllNew {
                Some(stored_item(&value).map_err(corrupt)?)
            } else {
                None
            };
            NewState {
                value: Some(value),
                item,
                size_bytes: *size_bytes,
            }
        }
        WriteAction::Delete => NewState {
            value: None,
            item: None,
            size_bytes: 0,
        },
        // A missing item is created from its key, unless the update only
        // removes (atoll_expr::creates_missing_item holds the rule).
        WriteAction::Update { key, update } => {
            let applied = match old_item {
                Some(old) => atoll_expr::apply_update(update, old, env).map(Some),
                None => atoll_expr::apply_update_to_new_item(update, key, env),
            };
            let item = match applied {
                Ok(Some(item)) => item,
                Ok(None) => return Ok(Err(NoWrite::Nothing)),
                Err(e) => return Ok(Err(NoWrite::Refused(refused(&e)))),
            };
            let size_bytes = item_size_bytes(&item);
            if size_bytes > MAX_ITEM_SIZE_BYTES {
                return Ok(Err(NoWrite::Refused(PartitionOutput::Refused(
                    WriteRejection::ItemTooLarge,
                ))));
            }
            let size_bytes = size_bytes as u32;
            NewState {
                value: Some(stored_value(&encode_item(&item), size_bytes)),
                item: Some(item),
                size_bytes,
            }
        }
    }))
}

/// The attributes `write`'s `ReturnValues` asks for.
fn returned_attributes(
    write: &ItemWrite,
    old_item: Option<Item>,
    new_item: Option<Item>,
    env: &Env<'_>,
) -> Result<Option<Item>, StorageError> {
    Ok(match (write.return_values, &write.action) {
        (ReturnValues::None, _) => None,
        (ReturnValues::AllOld, _) => old_item,
        (ReturnValues::AllNew, _) => new_item,
        (ReturnValues::UpdatedOld, WriteAction::Update { update, .. }) => match &old_item {
            Some(old) => Some(
                atoll_expr::updated_attributes(update, old, env).map_err(|e| corrupt_expr(&e))?,
            ),
            None => None,
        },
        (ReturnValues::UpdatedNew, WriteAction::Update { update, .. }) => match &new_item {
            Some(new) => Some(
                atoll_expr::updated_attributes(update, new, env).map_err(|e| corrupt_expr(&e))?,
            ),
            None => None,
        },
        (ReturnValues::UpdatedOld | ReturnValues::UpdatedNew, _) => None,
    })
}
