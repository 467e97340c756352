//! Time to Live in apply: a sweep's list of expired items is checked
//! again against the items as they are at this entry, and those still
//! expired are deleted like a batch's deletes (indexes, stream records
//! marked as the service's), so every replica deletes the same.

use atoll_model::{AttributeValue, Item, Number};
use atoll_replication::ApplyContext;
use atoll_storage::StorageError;

use super::{PartitionStateMachine, corrupt};
use crate::command::{PartitionOutput, WriteOp};
use crate::stored::stored_item;

/// Expiry times further in the past than this are not expiry times
/// (DynamoDB ignores values more than five years old).
const OLDEST_EXPIRY_SECONDS: i64 = 5 * 365 * 24 * 60 * 60;

/// Whether `item` has expired at `now_ms` by its Time to Live attribute
/// `attribute`: a top-level Number of epoch seconds before now, and not
/// more than five years before. Any other value never expires.
pub fn is_expired(item: &Item, attribute: &str, now_ms: u64) -> bool {
    let Some(AttributeValue::N(expiry)) = item.get(attribute) else {
        return false;
    };
    let now_seconds = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let now = Number::from_i64(now_seconds);
    let oldest = Number::from_i64(now_seconds.saturating_sub(OLDEST_EXPIRY_SECONDS));
    *expiry < now && *expiry > oldest
}

impl PartitionStateMachine {
    /// Deletes the items of `row_keys` this partition owns that are still
    /// expired at the entry's clock.
    pub(super) fn apply_expire(
        &self,
        ctx: &mut ApplyContext,
        attribute: &str,
        row_keys: Vec<Vec<u8>>,
        log_index: u64,
    ) -> Result<PartitionOutput, StorageError> {
        let now_ms = self.entry_clock_ms();
        let mut ops = Vec::with_capacity(row_keys.len());
        for row_key in row_keys {
            // An item a transaction holds expires in a later sweep.
            if !self.owns(&row_key)
                || ops.iter().any(|op: &WriteOp| op.row_key() == row_key)
                || self.is_held(ctx, &row_key)?
            {
                continue;
            }
            let Some(value) = ctx.get(&self.items, &row_key)? else {
                continue;
            };
            let item = stored_item(&value).map_err(corrupt)?;
            if is_expired(&item, attribute, now_ms) {
                ops.push(WriteOp::Delete { row_key });
            }
        }
        let deleted = u32::try_from(ops.len()).unwrap_or(u32::MAX);
        if self.has_indexes() {
            self.apply_indexed_batch(ctx, ops, log_index, true)?;
        } else {
            for op in ops {
                self.apply_op(ctx, op)?;
            }
        }
        Ok(PartitionOutput::Expired { deleted })
    }
}
