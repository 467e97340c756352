//! Index maintenance in `apply`: a write's local index entries and item
//! collection size, its global index changes into the outbox; on a global
//! index's partition, shipped changes applied once each.

use std::collections::BTreeMap;
use std::ops::Bound;

use atoll_model::Item;
use atoll_replication::ApplyContext;
use atoll_storage::StorageError;

use super::{PartitionStateMachine, TokenRange, corrupt, row_key_bounds};
use crate::command::{PartitionOutput, WriteOp, WriteRejection};
use crate::error::PartitionError;
use crate::global_index::{
    IndexEntryChange, ItemVersion, OutboxEntry, VERSIONS, decode_outbox_entry, decode_version,
    encode_outbox_entry, encode_version, outbox_key, outbox_range, version_key,
};
use crate::local_index::{IndexChange, KeyRange, LocalIndexes, decode_collection_size};
use crate::stored::{stored_item, stored_size, stored_value};
use crate::stream::{SequenceNumber, ShardRef, StoredStreamRecord, record_of};

/// An item's change, as index and stream maintenance see it.
pub(super) struct ItemChange<'a> {
    pub(super) row_key: &'a [u8],
    pub(super) old: Option<&'a Item>,
    pub(super) old_size_bytes: u32,
    pub(super) new: Option<&'a Item>,
    pub(super) new_size_bytes: u32,
    /// Made by the service (a Time to Live deletion), not a user.
    pub(super) by_service: bool,
    /// A committed transaction's write: its prepare checked it, and
    /// nothing may refuse it now (a collection grown meanwhile by others'
    /// writes is let past its limit; an index added meanwhile whose key
    /// the item cannot have leaves the item out).
    pub(super) committed: bool,
}

/// Numbers of the records one log entry writes, by kind.
#[derive(Default)]
pub(super) struct Sequences {
    outbox: u32,
    stream: u32,
}

/// Item collection sizes as one command leaves them (a batch's writes may
/// share a collection), written once at its end.
#[derive(Default)]
pub(super) struct CollectionSizes {
    sizes: BTreeMap<Vec<u8>, u64>,
}

impl CollectionSizes {
    /// The collection's size so far in this command.
    fn current(
        &self,
        ctx: &ApplyContext,
        local: &LocalIndexes,
        key: &[u8],
    ) -> Result<u64, StorageError> {
        if let Some(size) = self.sizes.get(key) {
            return Ok(*size);
        }
        match ctx.get(local.keyspace(), key)? {
            Some(bytes) => decode_collection_size(&bytes).map_err(corrupt),
            None => Ok(0),
        }
    }
}

/// What a write does to the table's indexes and stream, planned before
/// anything is written (a refused write leaves nothing in the apply batch).
pub(super) struct IndexPlan {
    local: Option<IndexChange>,
    outbox: Vec<OutboxEntry>,
    stream: Option<(ShardRef, StoredStreamRecord)>,
    /// Index entries written or removed, as (index name, entry size).
    pub(super) index_writes: Vec<(String, u32)>,
}

impl IndexPlan {
    /// The size of the write's item collection after it (0 without local indexes).
    pub(super) fn collection_size(&self, sizes: &CollectionSizes) -> u64 {
        self.local
            .as_ref()
            .and_then(|change| sizes.sizes.get(&change.collection_key).copied())
            .unwrap_or(0)
    }
}

impl PartitionStateMachine {
    /// Whether writes here maintain indexes or a stream.
    pub(super) fn has_indexes(&self) -> bool {
        self.local.is_some() || self.global_indexes().is_some() || self.open_stream().is_some()
    }

    /// Plans what a write does to the indexes: the new item's index keys
    /// checked, its local entries' changes and its collection's size
    /// (counted in `sizes`, shared by a batch's writes) within the limit,
    /// and its global index changes at `version`.
    pub(super) fn plan_indexes(
        &self,
        ctx: &ApplyContext,
        change: &ItemChange<'_>,
        sizes: &mut CollectionSizes,
        version: ItemVersion,
    ) -> Result<Result<IndexPlan, WriteRejection>, StorageError> {
        let mut plan = IndexPlan {
            local: None,
            outbox: Vec::new(),
            stream: None,
            index_writes: Vec::new(),
        };
        if let Some(local) = &self.local {
            if let Some(new) = change.new
                && !change.committed
                && let Err(rejection) = local.check_keys(new)
            {
                return Ok(Err(rejection));
            }
            let entries = local
                .change(
                    change.row_key,
                    change.old,
                    change.old_size_bytes,
                    change.new,
                    change.new_size_bytes,
                )
                .map_err(corrupt)?;
            let before = sizes.current(ctx, local, &entries.collection_key)?;
            let after = before.saturating_add_signed(entries.collection_delta_bytes);
            if entries.collection_delta_bytes > 0
                && after > local.collection_limit_bytes()
                && !change.committed
            {
                return Ok(Err(WriteRejection::ItemCollectionTooLarge));
            }
            sizes.sizes.insert(entries.collection_key.clone(), after);
            plan.index_writes
                .extend(entries.entry_writes.iter().cloned());
            plan.local = Some(entries);
        }
        if let Some(current) = self.global_indexes() {
            let global = &current.1;
            let mut new = change.new;
            if let Some(item) = new
                && let Err(rejection) = global.check_keys(item)
            {
                if !change.committed {
                    return Ok(Err(rejection));
                }
                new = None;
            }
            let (outbox, writes) = global
                .changes(change.row_key, change.old, new, version)
                .map_err(corrupt)?;
            plan.outbox = outbox;
            plan.index_writes.extend(writes);
        }
        if let Some((spec, shard)) = self.open_stream() {
            let at_ms = self.entry_clock_ms();
            plan.stream = record_of(&spec, change.old, change.new, at_ms, change.by_service)
                .map(|record| (shard, record));
        }
        Ok(Ok(plan))
    }

    /// Writes a plan: local entries, outbox records and the stream record,
    /// numbered on from `sequences` within log entry `log_index`.
    pub(super) fn write_index_plan(
        &self,
        ctx: &mut ApplyContext,
        plan: IndexPlan,
        log_index: u64,
        sequences: &mut Sequences,
    ) -> Result<(), StorageError> {
        if let Some(record) = plan.stream {
            let sequence = SequenceNumber {
                log_index,
                sequence: sequences.stream,
            };
            self.write_stream_record(ctx, record, sequence)?;
            sequences.stream += 1;
        }
        let sequence = &mut sequences.outbox;
        if let (Some(local), Some(change)) = (&self.local, plan.local) {
            for key in change.deletes {
                ctx.delete(local.keyspace(), key);
            }
            for (key, value) in change.puts {
                ctx.put(local.keyspace(), key, value);
            }
        }
        if let Some(aux) = &self.aux {
            let wrote = !plan.outbox.is_empty();
            for entry in plan.outbox {
                let value = encode_outbox_entry(&entry).map_err(corrupt)?;
                ctx.put(aux, outbox_key(self.group_id, log_index, *sequence), value);
                *sequence += 1;
            }
            if wrote {
                self.signal_outbox();
            }
        }
        Ok(())
    }

    /// Writes the collection sizes a command leaves; an empty collection's record goes.
    pub(super) fn write_collection_sizes(&self, ctx: &mut ApplyContext, sizes: CollectionSizes) {
        let Some(local) = &self.local else { return };
        for (key, size_bytes) in sizes.sizes {
            if size_bytes == 0 {
                ctx.delete(local.keyspace(), key);
            } else {
                ctx.put(local.keyspace(), key, size_bytes.to_be_bytes().to_vec());
            }
        }
    }

    /// Applies a batch on a table with indexes: every write planned first
    /// (a batch that would overfill a collection or holds an unusable
    /// index key is refused whole, with nothing written), then written.
    pub(super) fn apply_indexed_batch(
        &self,
        ctx: &mut ApplyContext,
        ops: Vec<WriteOp>,
        log_index: u64,
        by_service: bool,
    ) -> Result<PartitionOutput, StorageError> {
        let mut sizes = CollectionSizes::default();
        let mut planned = Vec::with_capacity(ops.len());
        for op in ops {
            debug_assert!(
                self.owns(op.row_key()),
                "batch write outside the partition's range"
            );
            let stored = ctx.get(&self.items, op.row_key())?;
            let old_size_bytes = match &stored {
                Some(value) => stored_size(value).map_err(corrupt)?,
                None => 0,
            };
            let old = match &stored {
                Some(value) => Some(stored_item(value).map_err(corrupt)?),
                None => None,
            };
            let (new, new_size_bytes) = match &op {
                WriteOp::Put {
                    record, size_bytes, ..
                } => (
                    Some(
                        atoll_model::decode_item(record)
                            .map_err(|e| corrupt(PartitionError::Corrupt(e.to_string())))?,
                    ),
                    *size_bytes,
                ),
                WriteOp::Delete { .. } => (None, 0),
            };
            let change = ItemChange {
                row_key: op.row_key(),
                old: old.as_ref(),
                old_size_bytes,
                new: new.as_ref(),
                new_size_bytes,
                by_service,
                committed: false,
            };
            match self.plan_indexes(ctx, &change, &mut sizes, (self.group_id, log_index))? {
                Ok(plan) => planned.push((op, stored.is_some(), old_size_bytes, plan)),
                Err(rejection) => return Ok(PartitionOutput::Refused(rejection)),
            }
        }
        let mut old_sizes_bytes = Vec::with_capacity(planned.len());
        let mut collection_sizes_bytes = Vec::with_capacity(planned.len());
        let mut index_writes = Vec::with_capacity(planned.len());
        let mut sequences = Sequences::default();
        for (op, existed, old_size_bytes, plan) in planned {
            if self.local.is_some() {
                collection_sizes_bytes.push(plan.collection_size(&sizes));
            }
            index_writes.push(plan.index_writes.clone());
            let old_count = i64::from(existed);
            match op {
                WriteOp::Put {
                    row_key,
                    record,
                    size_bytes,
                } => {
                    self.stats.apply_change(
                        1 - old_count,
                        i64::from(size_bytes) - i64::from(old_size_bytes),
                    );
                    ctx.put(&self.items, row_key, stored_value(&record, size_bytes));
                }
                WriteOp::Delete { row_key } => {
                    self.stats
                        .apply_change(-old_count, -i64::from(old_size_bytes));
                    if existed {
                        ctx.delete(&self.items, row_key);
                    }
                }
            }
            self.write_index_plan(ctx, plan, log_index, &mut sequences)?;
            old_sizes_bytes.push(old_size_bytes);
        }
        self.write_collection_sizes(ctx, sizes);
        Ok(PartitionOutput::BatchWrittenInCollections {
            old_sizes_bytes,
            collection_sizes_bytes,
            index_writes,
        })
    }

    /// Applies changes shipped to this partition of a global index's table:
    /// each replaces the item's entry here only if its version is newer
    /// than the one recorded for the item under that index key.
    pub(super) fn apply_index_changes(
        &self,
        ctx: &mut ApplyContext,
        changes: Vec<IndexEntryChange>,
    ) -> Result<PartitionOutput, StorageError> {
        let Some(aux) = self.aux.as_ref().filter(|_| self.index_table) else {
            return Ok(PartitionOutput::IndexChangesApplied { applied: 0 });
        };
        let mut applied = 0u32;
        for change in changes {
            let record_key = version_key(&change.record);
            let held = match ctx.get(aux, &record_key)? {
                Some(bytes) => Some(decode_version(&bytes).map_err(corrupt)?),
                None => None,
            };
            if held
                .as_ref()
                .is_some_and(|(version, _)| *version >= change.version)
            {
                continue;
            }
            let held_key = held.and_then(|(_, key)| key);
            let new_key = change.entry.as_ref().map(|(key, _)| key.clone());
            if let Some(old_key) = held_key.filter(|old| Some(old) != new_key.as_ref()) {
                self.remove_entry(ctx, old_key)?;
            }
            if let Some((key, value)) = change.entry {
                self.put_entry(ctx, key, value)?;
            }
            ctx.put(
                aux,
                record_key,
                encode_version(change.version, new_key.as_deref()),
            );
            applied += 1;
        }
        Ok(PartitionOutput::IndexChangesApplied { applied })
    }

    /// Removes an index entry, keeping statistics.
    fn remove_entry(&self, ctx: &mut ApplyContext, key: Vec<u8>) -> Result<(), StorageError> {
        if let Some(value) = ctx.get(&self.items, &key)? {
            let size = stored_size(&value).map_err(corrupt)?;
            self.stats.apply_change(-1, -i64::from(size));
            ctx.delete(&self.items, key);
        }
        Ok(())
    }

    /// Writes an index entry, keeping statistics.
    fn put_entry(
        &self,
        ctx: &mut ApplyContext,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<(), StorageError> {
        let new_size = stored_size(&value).map_err(corrupt)?;
        let (old_count, old_size) = match ctx.get(&self.items, &key)? {
            Some(old) => (1, stored_size(&old).map_err(corrupt)?),
            None => (0, 0),
        };
        self.stats
            .apply_change(1 - old_count, i64::from(new_size) - i64::from(old_size));
        ctx.put(&self.items, key, value);
        Ok(())
    }

    /// Removes this partition's outbox records up to `through`.
    pub(super) fn apply_trim_outbox(
        &self,
        ctx: &mut ApplyContext,
        through: &[u8],
    ) -> Result<PartitionOutput, StorageError> {
        let Some(aux) = &self.aux else {
            return Ok(PartitionOutput::OutboxTrimmed { removed: 0 });
        };
        let (start, _) = outbox_range(self.group_id);
        // The stored records, overlaid with this round's writes: a replica
        // that applies the writes and their trim in one round must remove
        // what one applying them in separate rounds removes.
        let mut keys: std::collections::BTreeSet<Vec<u8>> = aux
            .range(
                Bound::Included(start.clone()),
                Bound::Included(through.to_vec()),
                false,
            )
            .map(|pair| pair.map(|(key, _)| key.to_vec()))
            .collect::<Result<_, _>>()?;
        let mut end = through.to_vec();
        end.push(0);
        for (key, value) in ctx.pending_in_range(aux, &start, Some(&end)) {
            match value {
                Some(_) => keys.insert(key),
                None => keys.remove(&key),
            };
        }
        let removed = u32::try_from(keys.len()).unwrap_or(u32::MAX);
        for key in keys {
            ctx.delete(aux, key);
        }
        Ok(PartitionOutput::OutboxTrimmed { removed })
    }

    /// Up to `limit` records of this partition's outbox, oldest first, as
    /// this replica has applied them (its leader ships them).
    pub fn outbox(&self, limit: usize) -> Result<Vec<(Vec<u8>, OutboxEntry)>, PartitionError> {
        self.outbox_after(None, u64::MAX, limit)
    }

    /// Up to `limit` records of this partition's outbox after key `after`
    /// (from its start without one), written by log entries up to
    /// `applied_through`, oldest first. A reader must stay behind what
    /// the group reports applied: the round applying later entries may be
    /// committing meanwhile, and a read racing it could see some of its
    /// records and not others (it would then skip those for good).
    pub fn outbox_after(
        &self,
        after: Option<&[u8]>,
        applied_through: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, OutboxEntry)>, PartitionError> {
        let Some(aux) = self.aux.as_ref().filter(|_| self.global.is_some()) else {
            return Ok(Vec::new());
        };
        let (start, whole_end) = outbox_range(self.group_id);
        let end = match applied_through.checked_add(1) {
            Some(next) => Bound::Excluded(outbox_key(self.group_id, next, 0)),
            None => whole_end,
        };
        let start = match after {
            Some(after) if after >= start.as_slice() => Bound::Excluded(after.to_vec()),
            _ => Bound::Included(start),
        };
        let mut entries = Vec::new();
        for pair in aux.range(start, end, false).take(limit) {
            let (key, value) = pair?;
            entries.push((key.to_vec(), decode_outbox_entry(&value)?));
        }
        Ok(entries)
    }

    /// How many records this replica's outbox holds (counting up to `cap`).
    pub fn outbox_depth(&self, cap: usize) -> Result<usize, PartitionError> {
        let Some(aux) = self.aux.as_ref().filter(|_| self.global.is_some()) else {
            return Ok(0);
        };
        let (start, end) = outbox_range(self.group_id);
        let mut count = 0;
        for pair in aux.range(Bound::Included(start), end, false).take(cap) {
            pair?;
            count += 1;
        }
        Ok(count)
    }

    /// The index keyspace's ranges this partition's snapshot carries: local
    /// index entries and collection sizes, or entry versions, of its
    /// tokens; and its own outbox.
    pub(super) fn aux_ranges(&self, range: TokenRange, streams: bool) -> Vec<KeyRange> {
        let mut ranges = Vec::new();
        if let Some(local) = &self.local {
            ranges.extend(local.token_ranges(range.0, range.1));
        }
        if self.index_table {
            let (start, end) = row_key_bounds(range.0, range.1);
            let prefixed = |bytes: Vec<u8>| {
                let mut key = vec![VERSIONS];
                key.extend_from_slice(&bytes);
                key
            };
            let end = match end {
                Some(end) => Bound::Excluded(prefixed(end)),
                None => Bound::Excluded(vec![VERSIONS + 1]),
            };
            ranges.push((prefixed(start), end));
        }
        if self.global.is_some() {
            ranges.push(outbox_range(self.group_id));
        }
        if streams {
            ranges.push(self.stream_range());
        }
        if self.global.is_some() {
            ranges.push(super::transactions::prepared_bounds(range));
        }
        ranges
    }
}
