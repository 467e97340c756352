//! Which global indexes a table's partition feeds: a set that changes only
//! through the partition's log (`SetGlobalIndexes`, or a backfill step),
//! kept in the statistics keyspace, handed to the partitions a split makes
//! and carried by snapshots, so every replica of every partition of the
//! table feeds the same indexes from the same entry on.

use std::ops::Bound;
use std::sync::{Arc, RwLock};

use atoll_model::table::KeySchema;
use atoll_replication::ApplyContext;
use atoll_storage::{Keyspace, StorageError};

use super::{PartitionStateMachine, corrupt};
use crate::command::PartitionOutput;
use crate::error::PartitionError;
use crate::global_index::{GlobalIndexSet, GlobalIndexes};
use crate::stored::stored_item;

/// What is called when an apply writes outbox records.
pub type OutboxListener = Arc<dyn Fn() + Send + Sync>;

/// A record of the statistics keyspace: its key and value.
type Record = (Vec<u8>, Vec<u8>);

/// A table partition's global indexes.
pub(super) struct GlobalFeed {
    table_keys: KeySchema,
    current: RwLock<Arc<(GlobalIndexSet, GlobalIndexes)>>,
}

impl GlobalFeed {
    fn new(table_keys: KeySchema, set: GlobalIndexSet) -> GlobalFeed {
        let indexes = GlobalIndexes::new(table_keys.clone(), set.indexes.clone());
        GlobalFeed {
            table_keys,
            current: RwLock::new(Arc::new((set, indexes))),
        }
    }

    /// The set fed now, and the indexes built from it.
    pub(super) fn current(&self) -> Arc<(GlobalIndexSet, GlobalIndexes)> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn replace(&self, set: GlobalIndexSet) {
        let indexes = GlobalIndexes::new(self.table_keys.clone(), set.indexes.clone());
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new((set, indexes));
    }
}

/// The key of a partition's global index set in the statistics keyspace.
pub(super) fn set_key(group_id: u64) -> Vec<u8> {
    super::record_key(group_id, b"gsi", None)
}

fn handoff_set_key(group_id: u64, at_token: u64) -> Vec<u8> {
    super::record_key(group_id, b"gsi-handoff", Some(at_token))
}

impl PartitionStateMachine {
    /// This partition of a user's table, feeding its table's global
    /// secondary indexes through an outbox in `aux` (the table's index
    /// keyspace). Which indexes it feeds is its own record's: empty for a
    /// new table (its creation sets them through the log), the parent's
    /// at the split for a partition a split made (see `pinned_global_indexes`).
    pub fn with_global_indexes(
        mut self,
        aux: Keyspace,
        table_keys: KeySchema,
    ) -> Result<Self, PartitionError> {
        let set = match self.stats_keyspace.get(&set_key(self.group_id))? {
            Some(bytes) => GlobalIndexSet::decode(&bytes)?,
            None => GlobalIndexSet::default(),
        };
        self.aux = Some(aux);
        self.global = Some(GlobalFeed::new(table_keys, set));
        self.find_holds()?;
        Ok(self)
    }

    /// Calls `listener` whenever an apply writes outbox records (after the
    /// round commits they can be shipped), so a shipper need not poll.
    pub fn on_outbox_write(&self, listener: OutboxListener) {
        let _ = self.outbox_listener.set(listener);
    }

    pub(super) fn signal_outbox(&self) {
        if let Some(listener) = self.outbox_listener.get() {
            listener();
        }
    }

    /// The global indexes fed now, when there are any.
    pub(super) fn global_indexes(&self) -> Option<Arc<(GlobalIndexSet, GlobalIndexes)>> {
        let current = self.global.as_ref()?.current();
        (!current.0.indexes.is_empty()).then_some(current)
    }

    /// The set of global indexes this partition feeds (empty on an index
    /// table's partition).
    pub fn global_index_set(&self) -> GlobalIndexSet {
        self.global
            .as_ref()
            .map(|feed| feed.current().0.clone())
            .unwrap_or_default()
    }

    /// The set this partition fed as of `view` (a snapshot's position).
    pub(super) fn global_index_set_at(
        &self,
        view: &atoll_storage::ReadView,
    ) -> Result<GlobalIndexSet, StorageError> {
        if self.global.is_none() {
            return Ok(GlobalIndexSet::default());
        }
        match view.get(&self.stats_keyspace, &set_key(self.group_id))? {
            Some(bytes) => GlobalIndexSet::decode(&bytes).map_err(corrupt),
            None => Ok(GlobalIndexSet::default()),
        }
    }

    /// Takes `set` if it is newer than the partition's.
    pub(super) fn apply_global_index_set(
        &self,
        ctx: &mut ApplyContext,
        set: GlobalIndexSet,
    ) -> Result<PartitionOutput, StorageError> {
        let Some(feed) = &self.global else {
            return Ok(PartitionOutput::GlobalIndexesSet { epoch: 0 });
        };
        let current = feed.current().0.epoch;
        if set.epoch <= current {
            return Ok(PartitionOutput::GlobalIndexesSet { epoch: current });
        }
        let epoch = set.epoch;
        ctx.put(
            &self.stats_keyspace,
            set_key(self.group_id),
            set.encode().map_err(corrupt)?,
        );
        feed.replace(set);
        Ok(PartitionOutput::GlobalIndexesSet { epoch })
    }

    /// Takes a set carried by a snapshot, whatever its epoch (the snapshot
    /// is the partition's state as of a later entry).
    pub(super) fn import_global_index_set(&self, set: GlobalIndexSet) -> Option<Record> {
        let feed = self.global.as_ref()?;
        let record = set
            .encode()
            .ok()
            .map(|bytes| (set_key(self.group_id), bytes));
        feed.replace(set);
        record
    }

    /// Records the set a split hands to the partition it makes.
    pub(super) fn hand_off_global_indexes(
        &self,
        ctx: &mut ApplyContext,
        at_token: u64,
    ) -> Result<(), StorageError> {
        if let Some(feed) = &self.global {
            let bytes = feed.current().0.encode().map_err(corrupt)?;
            ctx.put(
                &self.stats_keyspace,
                handoff_set_key(self.group_id, at_token),
                bytes,
            );
        }
        Ok(())
    }

    /// The record (key, value in the statistics keyspace) that makes a
    /// new replica of `group_id`, split from `parent` at `at_token`, feed
    /// the global indexes its parent fed at the split, when this storage's
    /// replica of the parent applied it; written before its group starts.
    pub fn pinned_global_indexes(
        stats_keyspace: &Keyspace,
        group_id: u64,
        parent: u64,
        at_token: u64,
    ) -> Result<Option<Record>, PartitionError> {
        Ok(stats_keyspace
            .get(&handoff_set_key(parent, at_token))?
            .map(|bytes| (set_key(group_id), bytes.to_vec())))
    }

    /// A backfill step: the entries of up to `max_items` items from `from`
    /// on, for the index whose entries live in `index_table`, into the
    /// outbox as of this entry. Reads the engine overlaid with this apply
    /// round's writes, as the items are at this entry.
    pub(super) fn apply_backfill(
        &self,
        ctx: &mut ApplyContext,
        index_table: &str,
        from: Vec<u8>,
        max_items: u32,
        log_index: u64,
    ) -> Result<PartitionOutput, StorageError> {
        let (first, last) = self.range();
        let done = PartitionOutput::Backfilled {
            next: None,
            range_last: last,
        };
        let Some(current) = self.global_indexes() else {
            return Ok(done);
        };
        let (set, indexes) = &*current;
        let Some(index) = set.index(index_table) else {
            return Ok(done);
        };
        let (range_start, range_end) = super::row_key_bounds(first, last);
        let start = from.max(range_start);
        let limit = max_items.max(1) as usize;
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(limit);
        let end_bound = range_end.clone().map_or(Bound::Unbounded, Bound::Excluded);
        for pair in self
            .items
            .range(Bound::Included(start.clone()), end_bound, false)
            .take(limit)
        {
            keys.push(pair?.0.to_vec());
        }
        // Where this step's reading stops: after its last key when it read
        // its fill, else at the range's end.
        let full = keys.len() == limit;
        let step_end: Option<Vec<u8>> = match (full, keys.last()) {
            (true, Some(last_key)) => Some(successor(last_key)),
            _ => range_end.clone(),
        };
        for (key, value) in ctx.pending_in_range(&self.items, &start, step_end.as_deref()) {
            if value.is_some() && !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys.sort();
        let aux = self.aux.clone();
        let mut sequence = 0u32;
        for key in keys {
            let Some(value) = ctx.get(&self.items, &key)? else {
                continue;
            };
            let item = stored_item(&value).map_err(corrupt)?;
            let entry = indexes
                .backfill(index, &key, &item, (self.group_id, log_index))
                .map_err(corrupt)?;
            if let (Some(entry), Some(aux)) = (entry, &aux) {
                let bytes = crate::global_index::encode_outbox_entry(&entry).map_err(corrupt)?;
                ctx.put(
                    aux,
                    crate::global_index::outbox_key(self.group_id, log_index, sequence),
                    bytes,
                );
                sequence += 1;
            }
        }
        let next = if full { step_end } else { None };
        Ok(PartitionOutput::Backfilled {
            next,
            range_last: last,
        })
    }
}

/// The smallest key after `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}
