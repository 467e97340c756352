//! Applying a partition's commands.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use atoll_replication::{
    ApplyContext, GroupStateMachine, ImportWriter, SnapshotReader, SnapshotWriter,
};
use atoll_storage::{Keyspace, ReadView, StorageError};

use crate::command::{PartitionCommand, PartitionOutput, WriteRejection};
use crate::error::PartitionError;
use crate::local_index::LocalIndexes;
use crate::snapshot;

mod expiry;
mod global_feed;
mod indexing;
mod stream_feed;
mod transactions;
mod writes;

use crate::stored::stored_size;
pub use expiry::is_expired;
use global_feed::GlobalFeed;
pub use global_feed::OutboxListener;
use stream_feed::StreamFeed;

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

    fn set(&self, item_count: u64, size_bytes: u64) {
        self.item_count.store(item_count, Ordering::Relaxed);
        self.size_bytes.store(size_bytes, Ordering::Relaxed);
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

/// Inclusive token range `(first, last)` a partition owns.
pub type TokenRange = (u64, u64);

/// The token of a row key: its first 8 bytes, big-endian.
pub fn row_key_token(row_key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = row_key.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Row keys of tokens `first..=last`: from `first`, up to (excluding) the
/// first row key of `last + 1`, or to the end.
pub(crate) fn row_key_bounds(first: u64, last: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        first.to_be_bytes().to_vec(),
        last.checked_add(1).map(|next| next.to_be_bytes().to_vec()),
    )
}

/// Counts the items stored in tokens `first..=last` of `items`.
fn scan_stats(items: &Keyspace, first: u64, last: u64) -> Result<(u64, u64), PartitionError> {
    let (start, end) = row_key_bounds(first, last);
    let end = end.map_or(Bound::Unbounded, Bound::Excluded);
    let mut count = 0u64;
    let mut size = 0u64;
    for pair in items.range(Bound::Included(start), end, false) {
        let (_, value) = pair?;
        count += 1;
        size += u64::from(stored_size(&value)?);
    }
    Ok((count, size))
}

/// The state machine of one partition of one table.
pub struct PartitionStateMachine {
    group_id: u64,
    items: Keyspace,
    stats_keyspace: Keyspace,
    stats: Arc<PartitionStats>,
    // Changes only by a Split entry; persisted with it, so a replica that
    // restarts refuses what it gave away even before the catalog knows.
    range: Mutex<TokenRange>,
    // The table's local secondary indexes (fixed for the table's life, so
    // every replica and every replay of the log maintains the same ones).
    local: Option<LocalIndexes>,
    // The table's global secondary indexes, fed through the outbox (a
    // table's partition; `None` on an index table's).
    global: Option<GlobalFeed>,
    // The keyspace of index bookkeeping (local index entries, collection
    // sizes, the outbox; on an index table, entry versions).
    aux: Option<Keyspace>,
    // Whether this is a partition of a global index's hidden table.
    index_table: bool,
    // Told when an apply writes outbox records (the node's shipper).
    outbox_listener: std::sync::OnceLock<global_feed::OutboxListener>,
    // The table's stream (a table's partition; `None` on an index table's).
    stream: Option<StreamFeed>,
    // The clock of the entry being applied (its proposer's, when stamped).
    entry_clock_ms: AtomicU64,
    // The log index of the last write to any item of each slot (by hash
    // of row key), for transactional reads to see that an item changed
    // between their two rounds; `clock_incarnation` changes when the
    // clock starts over (an open, an import).
    write_clock: Box<[AtomicU64]>,
    clock_incarnation: AtomicU64,
    // Whether any item of the partition may be held by a transaction:
    // false only while none is (found none at open, applied no prepare,
    // imported nothing since), so single writes of tables that never see
    // a transaction skip looking for a hold.
    may_hold: std::sync::atomic::AtomicBool,
}

impl PartitionStateMachine {
    /// A partition whose items live in `items` and statistics in
    /// `stats_keyspace`, owning `range` unless a split it applied says
    /// otherwise. A partition with no statistics yet (new, or created by a
    /// split) counts the items already stored in its range.
    pub fn open(
        group_id: u64,
        items: Keyspace,
        stats_keyspace: Keyspace,
        range: TokenRange,
    ) -> Result<Self, PartitionError> {
        let range = match stats_keyspace.get(&range_key(group_id))? {
            Some(bytes) => decode_range(&bytes)?,
            None => range,
        };
        let stats = match stats_keyspace.get(&group_id.to_be_bytes())? {
            Some(bytes) => PartitionStats::decode(&bytes)?,
            None => {
                let (count, size) = scan_stats(&items, range.0, range.1)?;
                PartitionStats {
                    item_count: AtomicU64::new(count),
                    size_bytes: AtomicU64::new(size),
                }
            }
        };
        Ok(PartitionStateMachine {
            group_id,
            items,
            stats_keyspace,
            stats: Arc::new(stats),
            range: Mutex::new(range),
            local: None,
            global: None,
            aux: None,
            index_table: false,
            outbox_listener: std::sync::OnceLock::new(),
            stream: None,
            entry_clock_ms: AtomicU64::new(0),
            write_clock: (0..transactions::WRITE_CLOCK_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            // Distinct from any earlier instance's of this group here.
            clock_incarnation: AtomicU64::new(wall_clock_ms().wrapping_mul(1024)),
            may_hold: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// This partition, maintaining its table's local secondary indexes.
    pub fn with_local_indexes(mut self, local: LocalIndexes) -> Self {
        self.aux = Some(local.keyspace().clone());
        self.local = Some(local);
        self
    }

    /// This partition, a partition of a global index's hidden table, its
    /// entries' versions kept in `aux`.
    pub fn as_index_table(mut self, aux: Keyspace) -> Self {
        self.aux = Some(aux);
        self.index_table = true;
        self
    }

    /// The keyspace of this partition's index bookkeeping, if it has one.
    pub fn aux_keyspace(&self) -> Option<&Keyspace> {
        self.aux.as_ref()
    }

    /// This partition's group.
    pub fn group_id(&self) -> u64 {
        self.group_id
    }

    /// The table's local secondary indexes, if it has any.
    pub fn local_indexes(&self) -> Option<&LocalIndexes> {
        self.local.as_ref()
    }

    /// The token range this partition owns, as its log has decided.
    pub fn range(&self) -> TokenRange {
        *self.range.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether partition `group_id`'s replica in this storage applied the
    /// split at `at_token` from its log, so its items from that token on are
    /// exactly what they were at the split: the new partition may start on
    /// them. (A replica that caught up from a snapshot taken after the split
    /// has stale items there; the snapshot carried only the kept range.)
    pub fn handed_off_through_log(
        stats_keyspace: &Keyspace,
        group_id: u64,
        at_token: u64,
    ) -> Result<bool, PartitionError> {
        Ok(stats_keyspace
            .get(&handoff_key(group_id, at_token))?
            .is_some())
    }

    /// The token range that partition `group_id`'s replica in this storage
    /// handed off at `at_token` when it applied that split from its log;
    /// `None` with no handoff, or one recorded by a version that did not
    /// name the range.
    pub fn handed_off_range(
        stats_keyspace: &Keyspace,
        group_id: u64,
        at_token: u64,
    ) -> Result<Option<TokenRange>, PartitionError> {
        match stats_keyspace.get(&handoff_key(group_id, at_token))? {
            Some(bytes) if !bytes.is_empty() => Ok(Some(decode_range(&bytes)?)),
            _ => Ok(None),
        }
    }

    /// The record (key, value in the statistics keyspace) that fixes the
    /// range a new replica of `group_id` starts with. Written before the
    /// replica's group first starts: until a split or a snapshot rewrites
    /// it, a restart reopens the replica with that range, not with the
    /// catalog's, which may have narrowed since (its log still holds
    /// writes to the part split away).
    pub fn range_record(group_id: u64, range: TokenRange) -> (Vec<u8>, Vec<u8>) {
        (range_key(group_id), encode_range(range))
    }

    /// Keys of this partition's records in the statistics keyspace (for removal).
    pub fn record_keys(group_id: u64) -> [Vec<u8>; 3] {
        [
            group_id.to_be_bytes().to_vec(),
            range_key(group_id),
            global_feed::set_key(group_id),
        ]
    }

    fn owns(&self, row_key: &[u8]) -> bool {
        let (first, last) = self.range();
        row_key_token(row_key).is_some_and(|token| first <= token && token <= last)
    }

    /// Gives away tokens `at_token..` of the range: counts the items there
    /// (the engine's, overlaid with this round's writes), takes them out of
    /// the statistics and records the shorter range.
    fn apply_split(
        &self,
        ctx: &mut ApplyContext,
        at_token: u64,
        log_index: u64,
    ) -> Result<PartitionOutput, StorageError> {
        let (first, last) = self.range();
        if at_token > last {
            // Already split there (a retried proposal): nothing moves.
            return Ok(PartitionOutput::Split {
                moved_items: 0,
                moved_bytes: 0,
            });
        }
        if at_token <= first {
            return Ok(PartitionOutput::Refused(
                WriteRejection::SplitPointOutside {
                    at_token,
                    first,
                    last,
                },
            ));
        }
        let (start, end) = row_key_bounds(at_token, last);
        let end_bound = end.clone().map_or(Bound::Unbounded, Bound::Excluded);
        let mut sizes: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
        for pair in self
            .items
            .range(Bound::Included(start.clone()), end_bound, false)
        {
            let (key, value) = pair?;
            sizes.insert(key.to_vec(), stored_size(&value).map_err(corrupt)?);
        }
        for (key, value) in ctx.pending_in_range(&self.items, &start, end.as_deref()) {
            match value {
                Some(value) => {
                    sizes.insert(key, stored_size(&value).map_err(corrupt)?);
                }
                None => {
                    sizes.remove(&key);
                }
            }
        }
        let moved_items = sizes.len() as u64;
        let moved_bytes: u64 = sizes.values().map(|size| u64::from(*size)).sum();
        self.stats.apply_change(
            -i64::try_from(moved_items).unwrap_or(i64::MAX),
            -i64::try_from(moved_bytes).unwrap_or(i64::MAX),
        );
        let kept = (first, at_token - 1);
        *self.range.lock().unwrap_or_else(|e| e.into_inner()) = kept;
        ctx.put(
            &self.stats_keyspace,
            range_key(self.group_id),
            encode_range(kept),
        );
        // The marker names the range handed off: the new partition's
        // replicas start with it, whatever the catalog's range of that
        // partition has become since (it may have split again).
        ctx.put(
            &self.stats_keyspace,
            handoff_key(self.group_id, at_token),
            encode_range((at_token, last)),
        );
        // The new partition feeds the global indexes this one feeds now,
        // and writes to the stream this one writes to, in a child shard.
        self.hand_off_global_indexes(ctx, at_token)?;
        self.split_stream(ctx, at_token, log_index)?;
        Ok(PartitionOutput::Split {
            moved_items,
            moved_bytes,
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
}

/// The key of partition `group_id`'s record `name` in the statistics
/// keyspace; a split's handoff records also name its first token.
pub(super) fn record_key(group_id: u64, name: &[u8], at_token: Option<u64>) -> Vec<u8> {
    let mut key = group_id.to_be_bytes().to_vec();
    key.extend_from_slice(name);
    if let Some(token) = at_token {
        key.extend_from_slice(&token.to_be_bytes());
    }
    key
}

fn range_key(group_id: u64) -> Vec<u8> {
    record_key(group_id, b"range", None)
}

fn handoff_key(group_id: u64, at_token: u64) -> Vec<u8> {
    record_key(group_id, b"handoff", Some(at_token))
}

pub(crate) fn encode_range((first, last): TokenRange) -> Vec<u8> {
    let mut bytes = first.to_be_bytes().to_vec();
    bytes.extend_from_slice(&last.to_be_bytes());
    bytes
}

pub(crate) fn decode_range(bytes: &[u8]) -> Result<TokenRange, PartitionError> {
    let read = |at: usize| -> Option<u64> {
        let raw: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_be_bytes(raw))
    };
    match (read(0), read(8)) {
        (Some(first), Some(last)) if first <= last => Ok((first, last)),
        _ => Err(PartitionError::Corrupt("bad partition range record".into())),
    }
}

/// Projecting the updated paths of items the update itself produced cannot
/// fail unless the state machine is wrong; treat it as corruption.
fn corrupt_expr(e: &atoll_expr::ExprError) -> StorageError {
    corrupt(PartitionError::Corrupt(e.to_string()))
}

pub(crate) fn corrupt(e: PartitionError) -> StorageError {
    StorageError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        e.to_string(),
    ))
}

impl GroupStateMachine for PartitionStateMachine {
    type Output = PartitionOutput;

    fn apply(
        &self,
        ctx: &mut ApplyContext,
        log_index: u64,
        command: &[u8],
    ) -> Result<PartitionOutput, StorageError> {
        let command = PartitionCommand::decode(command).map_err(corrupt)?;
        // An entry its proposer did not stamp (an earlier version's) takes
        // this replica's clock: its stream records' times may differ by
        // replica, never their order or content.
        self.entry_clock_ms
            .store(wall_clock_ms(), Ordering::Relaxed);
        let output = self.apply_command(ctx, log_index, command)?;
        ctx.put(
            &self.stats_keyspace,
            self.group_id.to_be_bytes().to_vec(),
            self.stats.encode(),
        );
        Ok(output)
    }

    /// The range as of `view` (a split applied since must not narrow what
    /// the view holds), then every item in it, in row-key order, then the
    /// local index entries of its tokens (see `snapshot`).
    fn export(&self, view: &ReadView, out: &mut SnapshotWriter<'_>) -> Result<(), StorageError> {
        let range = match view.get(&self.stats_keyspace, &range_key(self.group_id))? {
            Some(bytes) => decode_range(&bytes).map_err(corrupt)?,
            None => self.range(),
        };
        // The global index set and the streams as of the view, like the range.
        let set = self.global_index_set_at(view)?;
        let stream = self.stream_state_at(view)?;
        let streams = stream.epoch > 0;
        // A table's partition always sections: its prepared records (held
        // items) travel in the index section.
        let sectioned = self.local.is_some()
            || self.index_table
            || self.global.is_some()
            || set.epoch > 0
            || streams;
        let export = snapshot::Export {
            range,
            items: &self.items,
            local: self
                .aux
                .as_ref()
                .filter(|_| sectioned)
                .map(|aux| (aux, self.aux_ranges(range, streams))),
            global_set: (set.epoch > 0).then_some(set),
            stream: streams.then_some(stream),
        };
        snapshot::export(&export, view, out)
    }

    /// Makes this replica's items (and index entries) in the exported
    /// range the export's, takes the export's range, and recounts the
    /// statistics. Only the export's range is replaced: tokens outside it
    /// (given away by a split this replica had not applied) belong to
    /// another partition, whose items may share this keyspace.
    fn import(
        &self,
        input: &mut SnapshotReader,
        out: &mut ImportWriter,
    ) -> Result<(), StorageError> {
        let snapshot::Header {
            range,
            sectioned,
            global_set,
            stream,
        } = snapshot::read_header(input).map_err(corrupt)?;
        // Local indexes and index tables are fixed by the table's
        // definition, which both ends share: a snapshot without their
        // sections cannot be this partition's.
        let must_section = self.local.is_some() || self.index_table;
        if (must_section && !sectioned) || (sectioned && self.aux.is_none()) {
            return Err(corrupt(PartitionError::Corrupt(
                "a snapshot's index sections do not match the partition's indexes".into(),
            )));
        }
        let mut import = snapshot::Import::new(input, sectioned);
        let (item_count, size_bytes) =
            snapshot::import_items(&mut import, &self.items, range, out)?;
        if let Some(aux) = self.aux.as_ref().filter(|_| sectioned) {
            let ranges = self.aux_ranges(range, stream.is_some());
            snapshot::import_local_indexes(&mut import, aux, ranges, out)?;
        }
        if let Some((key, value)) = self.import_global_index_set(global_set.unwrap_or_default()) {
            out.put(&self.stats_keyspace, key, value)?;
        }
        if let Some((key, value)) = self.import_stream_state(stream.unwrap_or_default()) {
            out.put(&self.stats_keyspace, key, value)?;
        }
        import.finish()?;
        self.reset_write_clock();
        self.note_possible_holds();
        self.stats.set(item_count, size_bytes);
        *self.range.lock().unwrap_or_else(|e| e.into_inner()) = range;
        out.put(
            &self.stats_keyspace,
            self.group_id.to_be_bytes().to_vec(),
            self.stats.encode(),
        )?;
        out.put(
            &self.stats_keyspace,
            range_key(self.group_id),
            encode_range(range),
        )
    }
}

impl PartitionStateMachine {
    /// The clock of the entry being applied, epoch milliseconds.
    pub(super) fn entry_clock_ms(&self) -> u64 {
        self.entry_clock_ms.load(Ordering::Relaxed)
    }

    fn apply_command(
        &self,
        ctx: &mut ApplyContext,
        log_index: u64,
        command: PartitionCommand,
    ) -> Result<PartitionOutput, StorageError> {
        Ok(match command {
            PartitionCommand::Write(write) if !self.owns(&write.row_key) => {
                PartitionOutput::WrongPartition
            }
            PartitionCommand::Write(write) => {
                self.tick_write_clock([write.row_key.as_slice()], log_index);
                if self.is_held(ctx, &write.row_key)? {
                    PartitionOutput::TransactionConflict
                } else {
                    self.apply_write(ctx, *write, log_index)?
                }
            }
            // A batch is refused whole, before any of it is applied, so the
            // router can regroup it by the new partition map.
            PartitionCommand::Batch { ops } if !ops.iter().all(|op| self.owns(op.row_key())) => {
                PartitionOutput::WrongPartition
            }
            PartitionCommand::Split { at_token } => self.apply_split(ctx, at_token, log_index)?,
            PartitionCommand::ApplyIndexChanges { changes }
                if !changes.iter().all(|c| self.owns(&c.record)) =>
            {
                PartitionOutput::WrongPartition
            }
            PartitionCommand::ApplyIndexChanges { changes } => {
                self.apply_index_changes(ctx, changes)?
            }
            PartitionCommand::TrimOutbox { through } => self.apply_trim_outbox(ctx, &through)?,
            PartitionCommand::SetGlobalIndexes { set } => self.apply_global_index_set(ctx, set)?,
            // A step starts in the partition that owns its first key.
            PartitionCommand::BackfillIndex { from, .. } if !self.owns(&from) => {
                PartitionOutput::WrongPartition
            }
            PartitionCommand::BackfillIndex {
                set,
                index_table,
                from,
                max_items,
            } => {
                self.apply_global_index_set(ctx, set)?;
                self.apply_backfill(ctx, &index_table, from, max_items, log_index)?
            }
            PartitionCommand::Batch { ops } if self.any_held(ctx, &ops, log_index)? => {
                PartitionOutput::TransactionConflict
            }
            PartitionCommand::Batch { ops } => match self.has_indexes() {
                true => self.apply_indexed_batch(ctx, ops, log_index, false)?,
                false => {
                    let mut old_sizes_bytes = Vec::with_capacity(ops.len());
                    for op in ops {
                        old_sizes_bytes.push(self.apply_op(ctx, op)?);
                    }
                    PartitionOutput::BatchWritten { old_sizes_bytes }
                }
            },
            PartitionCommand::Stamped { now_ms, command } => {
                self.entry_clock_ms.store(now_ms, Ordering::Relaxed);
                self.apply_command(ctx, log_index, *command)?
            }
            PartitionCommand::SetStream { epoch, spec } => {
                self.apply_set_stream(ctx, (epoch, spec), log_index)?
            }
            PartitionCommand::ExpireItems {
                attribute,
                row_keys,
                now_ms,
            } => {
                self.entry_clock_ms.store(now_ms, Ordering::Relaxed);
                self.tick_write_clock(row_keys.iter().map(Vec::as_slice), log_index);
                self.apply_expire(ctx, &attribute, row_keys, log_index)?
            }
            PartitionCommand::TrimStream { before_ms } => self.apply_trim_stream(ctx, before_ms)?,
            PartitionCommand::PrepareTransaction { actions, .. }
                if !actions.iter().all(|a| self.owns(&a.row_key)) =>
            {
                PartitionOutput::WrongPartition
            }
            PartitionCommand::PrepareTransaction { txn, actions } => {
                self.apply_prepare(ctx, txn, actions, log_index)?
            }
            PartitionCommand::CommitTransaction { row_keys, .. }
            | PartitionCommand::ReleaseTransaction { row_keys, .. }
                if !row_keys.iter().all(|key| self.owns(key)) =>
            {
                PartitionOutput::WrongPartition
            }
            PartitionCommand::CommitTransaction { txn, row_keys } => {
                self.tick_write_clock(row_keys.iter().map(Vec::as_slice), log_index);
                self.apply_commit(ctx, &txn, row_keys, log_index)?
            }
            PartitionCommand::ReleaseTransaction { txn, row_keys } => {
                self.apply_release(ctx, &txn, row_keys)?
            }
        })
    }
}

/// This node's clock, epoch milliseconds.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
