//! Transactions in apply: a prepare votes on each action against the item
//! as it is and holds the items when all can apply; a commit applies the
//! held actions through the single-write path (so indexes, stream records
//! and statistics come out as for any write); a release frees them.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use atoll_expr::Env;
use atoll_model::Item;
use atoll_replication::ApplyContext;
use atoll_storage::StorageError;

use super::indexing::{CollectionSizes, ItemChange, Sequences};
use super::writes::{NoWrite, new_state};
use super::{PartitionStateMachine, TokenRange, corrupt, row_key_bounds};
use crate::command::{PartitionOutput, WriteRejection};
use crate::error::PartitionError;
use crate::stored::{stored_item, stored_size};
use crate::transaction::{
    CommittedWrite, PREPARED, PreparedRecord, TransactionAction, TransactionId, TransactionalRead,
    Vote, prepared_key,
};

/// Slots of the write clock: items share a slot by hash, so a write to one
/// may make a transactional read of another retry, never miss a change.
pub(super) const WRITE_CLOCK_SLOTS: usize = 1024;

/// The write clock's slot of `row_key` (FNV-1a: row keys of one partition
/// key share their first 8 bytes, so all of them are hashed).
fn clock_slot(row_key: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in row_key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % WRITE_CLOCK_SLOTS as u64) as usize
}

impl PartitionStateMachine {
    /// The prepared record holding the item under `row_key`, as this
    /// entry sees it.
    pub(super) fn held_by(
        &self,
        ctx: &ApplyContext,
        row_key: &[u8],
    ) -> Result<Option<PreparedRecord>, StorageError> {
        let Some(aux) = self.aux.as_ref().filter(|_| self.may_hold()) else {
            return Ok(None);
        };
        match ctx.get(aux, &prepared_key(row_key))? {
            Some(bytes) => Ok(Some(PreparedRecord::decode(&bytes).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    /// Whether a transaction holds the item under `row_key`.
    pub(super) fn is_held(&self, ctx: &ApplyContext, row_key: &[u8]) -> Result<bool, StorageError> {
        match self.aux.as_ref().filter(|_| self.may_hold()) {
            Some(aux) => Ok(ctx.get(aux, &prepared_key(row_key))?.is_some()),
            None => Ok(false),
        }
    }

    fn may_hold(&self) -> bool {
        self.may_hold.load(Ordering::Relaxed)
    }

    /// Notes that items may be held from now on (a prepare, an import).
    pub(super) fn note_possible_holds(&self) {
        self.may_hold.store(true, Ordering::Relaxed);
    }

    /// Looks for held items in the partition's range (at open).
    pub(super) fn find_holds(&self) -> Result<(), PartitionError> {
        let Some(aux) = &self.aux else {
            return Ok(());
        };
        let (start, end) = prepared_bounds(self.range());
        let any = aux
            .range(Bound::Included(start), end, false)
            .next()
            .transpose()?
            .is_some();
        self.may_hold.store(any, Ordering::Relaxed);
        Ok(())
    }

    /// Whether a transaction holds an item a batch writes (the batch is
    /// refused whole); ticks the write clock of every item it writes.
    pub(super) fn any_held(
        &self,
        ctx: &ApplyContext,
        ops: &[crate::command::WriteOp],
        log_index: u64,
    ) -> Result<bool, StorageError> {
        self.tick_write_clock(ops.iter().map(|op| op.row_key()), log_index);
        for op in ops {
            if self.is_held(ctx, op.row_key())? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Records that the items of `row_keys` are written at `log_index`.
    pub(super) fn tick_write_clock<'a>(
        &self,
        row_keys: impl IntoIterator<Item = &'a [u8]>,
        log_index: u64,
    ) {
        for row_key in row_keys {
            if let Some(slot) = self.write_clock.get(clock_slot(row_key)) {
                slot.fetch_max(log_index, Ordering::Relaxed);
            }
        }
    }

    /// Makes every version read so far stale (an import replaced the items).
    pub(super) fn reset_write_clock(&self) {
        self.clock_incarnation.fetch_add(1, Ordering::Relaxed);
    }

    fn version_of(&self, row_key: &[u8]) -> (u64, u64) {
        let slot = self
            .write_clock
            .get(clock_slot(row_key))
            .map_or(0, |slot| slot.load(Ordering::Relaxed));
        (self.clock_incarnation.load(Ordering::Relaxed), slot)
    }

    /// Checks a transaction's actions here; holds their items when all can apply.
    pub(super) fn apply_prepare(
        &self,
        ctx: &mut ApplyContext,
        txn: TransactionId,
        actions: Vec<TransactionAction>,
        log_index: u64,
    ) -> Result<PartitionOutput, StorageError> {
        let Some(aux) = self.aux.clone() else {
            return Err(corrupt(PartitionError::Corrupt(
                "a transaction on a partition without an index keyspace".into(),
            )));
        };
        let mut sizes = CollectionSizes::default();
        let mut votes = Vec::with_capacity(actions.len());
        for action in &actions {
            votes.push(self.vote(ctx, &txn, action, &mut sizes, log_index)?);
        }
        if votes.iter().all(|vote| *vote == Vote::Ready) {
            self.note_possible_holds();
            let prepared_ms = self.entry_clock_ms();
            for action in actions {
                // A retried prepare keeps the first one's time: recovery
                // goes by how long the items have been held.
                if self.held_by(ctx, &action.row_key)?.is_some() {
                    continue;
                }
                let key = prepared_key(&action.row_key);
                let record = PreparedRecord {
                    txn: txn.clone(),
                    prepared_ms,
                    action,
                };
                ctx.put(&aux, key, record.encode().map_err(corrupt)?);
            }
        }
        Ok(PartitionOutput::Prepared { votes })
    }

    /// Whether `action` can apply to its item as this entry sees it.
    fn vote(
        &self,
        ctx: &ApplyContext,
        txn: &TransactionId,
        action: &TransactionAction,
        sizes: &mut CollectionSizes,
        log_index: u64,
    ) -> Result<Vote, StorageError> {
        match self.held_by(ctx, &action.row_key)? {
            Some(record) if record.txn == *txn => return Ok(Vote::Ready),
            Some(_) => return Ok(Vote::Conflict),
            None => {}
        }
        let stored = ctx.get(&self.items, &action.row_key)?;
        let old_size_bytes = match &stored {
            Some(value) => stored_size(value).map_err(corrupt)?,
            None => 0,
        };
        let old_item = match &stored {
            Some(value) => Some(stored_item(value).map_err(corrupt)?),
            None => None,
        };
        let env = Env {
            names: &action.names,
            values: &action.values,
        };
        if let Some(condition) = &action.condition {
            let empty = Item::new();
            match atoll_expr::evaluate(condition, old_item.as_ref().unwrap_or(&empty), &env) {
                Ok(true) => {}
                Ok(false) => {
                    return Ok(Vote::ConditionFailed {
                        old: old_item.filter(|_| action.return_old_on_condition_failure),
                    });
                }
                Err(e) => {
                    return Ok(Vote::Refused(WriteRejection::Expression(
                        e.message().to_string(),
                    )));
                }
            }
        }
        let Some(write) = action.committed_write() else {
            return Ok(Vote::Ready);
        };
        let new = match new_state(&write, old_item.as_ref(), &env, self.has_indexes())? {
            Ok(new) => new,
            Err(NoWrite::Nothing) => return Ok(Vote::Ready),
            Err(NoWrite::Refused(PartitionOutput::Refused(rejection))) => {
                return Ok(Vote::Refused(rejection));
            }
            Err(NoWrite::Refused(other)) => {
                return Err(corrupt(PartitionError::Corrupt(format!(
                    "a write's refusal is not a rejection: {other:?}"
                ))));
            }
        };
        if self.has_indexes() {
            let change = ItemChange {
                row_key: &action.row_key,
                old: old_item.as_ref(),
                old_size_bytes,
                new: new.item.as_ref(),
                new_size_bytes: new.size_bytes,
                by_service: false,
                committed: false,
            };
            // Planned only to check index keys and collection sizes; the
            // commit plans again and writes.
            if let Err(rejection) =
                self.plan_indexes(ctx, &change, sizes, (self.group_id, log_index))?
            {
                return Ok(Vote::Refused(rejection));
            }
        }
        Ok(Vote::Ready)
    }

    /// Applies what `txn` prepared on the items of `row_keys`, and frees them.
    pub(super) fn apply_commit(
        &self,
        ctx: &mut ApplyContext,
        txn: &TransactionId,
        row_keys: Vec<Vec<u8>>,
        log_index: u64,
    ) -> Result<PartitionOutput, StorageError> {
        let mut sequences = Sequences::default();
        let mut sizes = CollectionSizes::default();
        let mut writes = Vec::with_capacity(row_keys.len());
        for row_key in row_keys {
            let record = match self.held_by(ctx, &row_key)? {
                Some(record) if record.txn == *txn => record,
                _ => {
                    writes.push(None);
                    continue;
                }
            };
            if let Some(aux) = &self.aux {
                ctx.delete(aux, prepared_key(&row_key));
            }
            let Some(write) = record.action.committed_write() else {
                writes.push(None);
                continue;
            };
            let output =
                self.apply_write_in(ctx, write, log_index, (&mut sequences, &mut sizes), true)?;
            writes.push(Some(committed(output)));
        }
        self.write_collection_sizes(ctx, sizes);
        Ok(PartitionOutput::TransactionCommitted { writes })
    }

    /// Frees the items of `row_keys` that `txn` holds.
    pub(super) fn apply_release(
        &self,
        ctx: &mut ApplyContext,
        txn: &TransactionId,
        row_keys: Vec<Vec<u8>>,
    ) -> Result<PartitionOutput, StorageError> {
        let mut released = 0u32;
        for row_key in row_keys {
            if let Some(record) = self.held_by(ctx, &row_key)?
                && record.txn == *txn
                && let Some(aux) = &self.aux
            {
                ctx.delete(aux, prepared_key(&row_key));
                released += 1;
            }
        }
        Ok(PartitionOutput::TransactionReleased { released })
    }

    /// Items of this partition held since before `before_ms` (as this
    /// replica applied), up to `max`, with their records: a coordinator
    /// that went quiet for so long is presumed gone.
    pub fn held_since_before(
        &self,
        before_ms: u64,
        max: usize,
    ) -> Result<Vec<PreparedRecord>, PartitionError> {
        let Some(aux) = &self.aux else {
            return Ok(Vec::new());
        };
        let (start, end) = prepared_bounds(self.range());
        let mut found = Vec::new();
        for pair in aux.range(Bound::Included(start), end, false) {
            let (_, value) = pair?;
            let record = PreparedRecord::decode(&value)?;
            if record.prepared_ms < before_ms {
                found.push(record);
                if found.len() >= max {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The committed items of `row_keys` (all in this partition), with
    /// whether a transaction holds each and its version. The write clock
    /// moves when a write is applied, a moment before the write is visible
    /// in storage: reading the item first and the version after, and in
    /// the second round (`check_for_transaction`) the version first and the
    /// item after, a write between the rounds shows in the version or in
    /// the item.
    pub fn read_for_transaction(
        &self,
        row_keys: &[Vec<u8>],
    ) -> Result<Vec<TransactionalRead>, PartitionError> {
        row_keys
            .iter()
            .map(|row_key| {
                let stored = self.items.get(row_key)?;
                let held = match &self.aux {
                    Some(aux) => aux.get(&prepared_key(row_key))?.is_some(),
                    None => false,
                };
                let version = self.version_of(row_key);
                let (item, size_bytes) = match stored {
                    Some(value) => (Some(stored_item(&value)?), stored_size(&value)?),
                    None => (None, 0),
                };
                Ok(TransactionalRead {
                    item,
                    size_bytes,
                    held,
                    version,
                })
            })
            .collect()
    }

    /// Versions and holds of the items of `row_keys`, read before the
    /// items (the check of a transactional read's second round).
    pub fn check_for_transaction(
        &self,
        row_keys: &[Vec<u8>],
    ) -> Result<Vec<TransactionalRead>, PartitionError> {
        row_keys
            .iter()
            .map(|row_key| {
                let version = self.version_of(row_key);
                let held = match &self.aux {
                    Some(aux) => aux.get(&prepared_key(row_key))?.is_some(),
                    None => false,
                };
                let stored = self.items.get(row_key)?;
                let (item, size_bytes) = match stored {
                    Some(value) => (Some(stored_item(&value)?), stored_size(&value)?),
                    None => (None, 0),
                };
                Ok(TransactionalRead {
                    item,
                    size_bytes,
                    held,
                    version,
                })
            })
            .collect()
    }
}

/// The index keyspace's range of the prepared records of tokens `range`.
pub(super) fn prepared_bounds(range: TokenRange) -> (Vec<u8>, Bound<Vec<u8>>) {
    let (start, end) = row_key_bounds(range.0, range.1);
    let prefixed = |bytes: Vec<u8>| {
        let mut key = vec![PREPARED];
        key.extend_from_slice(&bytes);
        key
    };
    let end = match end {
        Some(end) => Bound::Excluded(prefixed(end)),
        None => Bound::Excluded(vec![PREPARED + 1]),
    };
    (prefixed(start), end)
}

/// A committed write's sizes, from the single-write path's output.
fn committed(output: PartitionOutput) -> CommittedWrite {
    match output {
        PartitionOutput::Written {
            old_size_bytes,
            new_size_bytes,
            ..
        } => CommittedWrite {
            old_size_bytes,
            new_size_bytes,
            collection_size_bytes: None,
            index_writes: Vec::new(),
        },
        PartitionOutput::WrittenInCollection {
            old_size_bytes,
            new_size_bytes,
            collection_size_bytes,
            index_writes,
            ..
        } => CommittedWrite {
            old_size_bytes,
            new_size_bytes,
            collection_size_bytes: Some(collection_size_bytes),
            index_writes,
        },
        // The prepare checked the write against the item, which nothing
        // could change since; only a collection grown by other items'
        // writes in the meantime can refuse it now. Failing the entry
        // would stop the partition, so the item is left as it was.
        other => {
            tracing::warn!(outcome = ?other, "a prepared write did not apply at commit");
            CommittedWrite {
                old_size_bytes: 0,
                new_size_bytes: 0,
                collection_size_bytes: None,
                index_writes: Vec::new(),
            }
        }
    }
}
