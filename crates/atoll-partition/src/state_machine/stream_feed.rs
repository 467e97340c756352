//! A table partition's streams: the stream it writes records to changes
//! only through its log (`SetStream`), its shards close and open at splits
//! (the partition a split makes gets its first shard, continuing the
//! parent's, through a handoff record), the state is kept in the
//! statistics keyspace and carried by snapshots, so every replica writes
//! the same records under the same shards.

use std::ops::Bound;
use std::sync::{Arc, RwLock};

use atoll_replication::ApplyContext;
use atoll_storage::{Keyspace, StorageError};

use super::{PartitionStateMachine, corrupt};
use crate::command::PartitionOutput;
use crate::error::PartitionError;
use crate::local_index::KeyRange;
use crate::stream::{
    SequenceNumber, Shard, ShardRef, StoredStreamRecord, StreamRecord, StreamSpec, StreamState,
    group_prefix, record_key, sequence_of, shard_prefix,
};

/// A record of the statistics keyspace: its key and value.
type Record = (Vec<u8>, Vec<u8>);

/// The partition's stream state, as applies leave it.
#[derive(Default)]
pub(super) struct StreamFeed {
    state: RwLock<Arc<StreamState>>,
}

impl StreamFeed {
    fn current(&self) -> Arc<StreamState> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, state: StreamState) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
    }
}

/// The key of a partition's stream state in the statistics keyspace.
fn state_key(group_id: u64) -> Vec<u8> {
    super::record_key(group_id, b"stream", None)
}

fn handoff_key(group_id: u64, at_token: u64) -> Vec<u8> {
    super::record_key(group_id, b"stream-handoff", Some(at_token))
}

impl PartitionStateMachine {
    /// This partition of a user's table, writing stream records when its
    /// table has a stream (into `aux`, set by `with_global_indexes`): none
    /// for a new table (its creation or UpdateTable turns the stream on
    /// through the log), the parent's at the split for a partition a split
    /// made (see `pinned_stream`).
    pub fn with_streams(mut self) -> Result<Self, PartitionError> {
        let state = match self.stats_keyspace.get(&state_key(self.group_id))? {
            Some(bytes) => StreamState::decode(&bytes)?,
            None => StreamState::default(),
        };
        let feed = StreamFeed::default();
        feed.replace(state);
        self.stream = Some(feed);
        Ok(self)
    }

    /// The partition's streams and shards as applied so far.
    pub fn stream_state(&self) -> Arc<StreamState> {
        self.stream
            .as_ref()
            .map(StreamFeed::current)
            .unwrap_or_default()
    }

    /// Whether item writes here should carry their proposer's clock
    /// (`PartitionCommand::Stamped`): the partition has had a stream.
    pub fn stamps_writes(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(|feed| feed.current().epoch > 0)
    }

    /// The stream records go to now, and the shard.
    pub(super) fn open_stream(&self) -> Option<(StreamSpec, ShardRef)> {
        let state = self.stream.as_ref()?.current();
        let spec = state.spec.clone()?;
        let shard = state.open_shard()?;
        Some((
            spec,
            ShardRef {
                group: self.group_id,
                number: shard.number,
            },
        ))
    }

    /// Takes the table's stream `spec` (none: off) if `epoch` is newer than
    /// the partition's: closes the open shard when the stream changes, and
    /// opens a shard of the new stream.
    pub(super) fn apply_set_stream(
        &self,
        ctx: &mut ApplyContext,
        (epoch, spec): (u64, Option<StreamSpec>),
        log_index: u64,
    ) -> Result<PartitionOutput, StorageError> {
        let Some(feed) = &self.stream else {
            return Ok(PartitionOutput::StreamSet { epoch: 0 });
        };
        let mut state = (*feed.current()).clone();
        if epoch <= state.epoch {
            return Ok(PartitionOutput::StreamSet { epoch: state.epoch });
        }
        let now_ms = self.entry_clock_ms();
        let same_stream = match (&state.spec, &spec) {
            (Some(old), Some(new)) => old.label == new.label,
            _ => false,
        };
        if !same_stream {
            state.close(log_index, now_ms);
        }
        state.epoch = epoch;
        state.spec = spec;
        if state.spec.is_some() && state.open_shard().is_none() {
            state.open(log_index, now_ms, None);
        }
        self.store_stream_state(ctx, state)?;
        Ok(PartitionOutput::StreamSet { epoch })
    }

    fn store_stream_state(
        &self,
        ctx: &mut ApplyContext,
        state: StreamState,
    ) -> Result<(), StorageError> {
        let Some(feed) = &self.stream else {
            return Ok(());
        };
        ctx.put(
            &self.stats_keyspace,
            state_key(self.group_id),
            state.encode().map_err(corrupt)?,
        );
        feed.replace(state);
        Ok(())
    }

    /// At a split (entry `log_index`): closes the open shard, opens the
    /// next (its parent the closed one), and records the state the
    /// partition the split makes starts with: the same stream, its shard 0
    /// with the same parent.
    pub(super) fn split_stream(
        &self,
        ctx: &mut ApplyContext,
        at_token: u64,
        log_index: u64,
    ) -> Result<(), StorageError> {
        let Some(feed) = &self.stream else {
            return Ok(());
        };
        let mut state = (*feed.current()).clone();
        let Some(closing) = state.open_shard().map(|shard| shard.number) else {
            return Ok(());
        };
        let now_ms = self.entry_clock_ms();
        let parent = ShardRef {
            group: self.group_id,
            number: closing,
        };
        state.close(log_index, now_ms);
        state.open(log_index, now_ms, Some(parent));
        let mut child = StreamState {
            epoch: state.epoch,
            spec: state.spec.clone(),
            shards: Vec::new(),
        };
        child.open(0, now_ms, Some(parent));
        ctx.put(
            &self.stats_keyspace,
            handoff_key(self.group_id, at_token),
            child.encode().map_err(corrupt)?,
        );
        self.store_stream_state(ctx, state)
    }

    /// The record that makes a new replica of `group_id`, split from
    /// `parent` at `at_token`, start the shard its parent's split opened
    /// for it, when this storage's replica of the parent applied the split;
    /// written before its group starts.
    pub fn pinned_stream(
        stats_keyspace: &Keyspace,
        group_id: u64,
        parent: u64,
        at_token: u64,
    ) -> Result<Option<Record>, PartitionError> {
        Ok(stats_keyspace
            .get(&handoff_key(parent, at_token))?
            .map(|bytes| (state_key(group_id), bytes.to_vec())))
    }

    /// The records (key, value in the statistics keyspace) a new replica of
    /// `group_id`, split from `parent` at `at_token`, starts with, when this
    /// storage's replica of the parent applied the split: the global
    /// indexes it feeds and its stream state. Written before its group starts.
    pub fn pinned_split_records(
        stats_keyspace: &Keyspace,
        group_id: u64,
        parent: u64,
        at_token: u64,
    ) -> Result<Vec<Record>, PartitionError> {
        let pinned = [
            Self::pinned_global_indexes(stats_keyspace, group_id, parent, at_token)?,
            Self::pinned_stream(stats_keyspace, group_id, parent, at_token)?,
        ];
        Ok(pinned.into_iter().flatten().collect())
    }

    /// Writes the stream record of one item change at `sequence` in the
    /// open shard (the caller checked there is one).
    pub(super) fn write_stream_record(
        &self,
        ctx: &mut ApplyContext,
        (shard, record): (ShardRef, StoredStreamRecord),
        sequence: SequenceNumber,
    ) -> Result<(), StorageError> {
        let Some(aux) = &self.aux else {
            return Ok(());
        };
        ctx.put(
            aux,
            record_key(shard, sequence),
            record.encode().map_err(corrupt)?,
        );
        Ok(())
    }

    /// The state carried by a snapshot's header, taken whatever its epoch
    /// (the snapshot is the partition as of a later entry).
    pub(super) fn import_stream_state(&self, state: StreamState) -> Option<Record> {
        let feed = self.stream.as_ref()?;
        let record = state
            .encode()
            .ok()
            .map(|bytes| (state_key(self.group_id), bytes));
        feed.replace(state);
        record
    }

    /// The state as of `view` (a snapshot's position).
    pub(super) fn stream_state_at(
        &self,
        view: &atoll_storage::ReadView,
    ) -> Result<StreamState, StorageError> {
        if self.stream.is_none() {
            return Ok(StreamState::default());
        }
        match view.get(&self.stats_keyspace, &state_key(self.group_id))? {
            Some(bytes) => StreamState::decode(&bytes).map_err(corrupt),
            None => Ok(StreamState::default()),
        }
    }

    /// The index keyspace's range holding this group's stream records.
    pub(super) fn stream_range(&self) -> KeyRange {
        let start = group_prefix(self.group_id);
        let end = group_prefix(self.group_id.wrapping_add(1));
        let end = match self.group_id.checked_add(1) {
            Some(_) => Bound::Excluded(end),
            None => Bound::Excluded(vec![crate::stream::STREAM + 1]),
        };
        (start, end)
    }

    /// Up to `limit` records of shard `number` from `from` on, in order,
    /// stopping after the one that passes `max_bytes` in all; read from
    /// this replica's applied state. Says too whether records follow.
    pub fn read_stream(
        &self,
        number: u32,
        from: SequenceNumber,
        limit: usize,
        max_bytes: u64,
    ) -> Result<(Vec<StreamRecord>, bool), PartitionError> {
        let Some(aux) = &self.aux else {
            return Ok((Vec::new(), false));
        };
        let shard = ShardRef {
            group: self.group_id,
            number,
        };
        let start = record_key(shard, from);
        let mut records = Vec::new();
        let mut bytes = 0u64;
        let range = aux.range(Bound::Included(start), self.shard_end(number), false);
        for pair in range {
            if records.len() >= limit || bytes >= max_bytes {
                return Ok((records, true));
            }
            let (key, value) = pair?;
            let Some(sequence) = sequence_of(&key) else {
                return Err(PartitionError::Corrupt("bad stream record key".into()));
            };
            let record = StoredStreamRecord::decode(&value, sequence)?;
            bytes += u64::from(record.size_bytes);
            records.push(record);
        }
        Ok((records, false))
    }

    /// The sequence number of the last record of shard `number` on this
    /// replica, if it has any.
    pub fn last_stream_sequence(
        &self,
        number: u32,
    ) -> Result<Option<SequenceNumber>, PartitionError> {
        let Some(aux) = &self.aux else {
            return Ok(None);
        };
        let start = shard_prefix(ShardRef {
            group: self.group_id,
            number,
        });
        let last = aux
            .range(Bound::Included(start), self.shard_end(number), true)
            .next()
            .transpose()?;
        Ok(last.and_then(|(key, _)| sequence_of(&key)))
    }

    /// Where the keys of shard `number`'s records end.
    fn shard_end(&self, number: u32) -> Bound<Vec<u8>> {
        match number.checked_add(1) {
            Some(next) => Bound::Excluded(shard_prefix(ShardRef {
                group: self.group_id,
                number: next,
            })),
            None => self.stream_range().1,
        }
    }

    /// Removes the records made before `before_ms`, shard by shard (each
    /// shard's records are in log order, so its trimming stops at its
    /// first newer record), and forgets closed shards left empty that
    /// closed before then. Reads the engine overlaid with this round.
    pub(super) fn apply_trim_stream(
        &self,
        ctx: &mut ApplyContext,
        before_ms: u64,
    ) -> Result<PartitionOutput, StorageError> {
        let (Some(feed), Some(aux)) = (&self.stream, &self.aux) else {
            return Ok(PartitionOutput::StreamTrimmed { removed: 0 });
        };
        let mut state = (*feed.current()).clone();
        let mut removed = 0u32;
        let mut emptied = Vec::new();
        for shard in &mut state.shards {
            let shard_ref = ShardRef {
                group: self.group_id,
                number: shard.number,
            };
            let start = shard_prefix(shard_ref);
            let mut kept_any = false;
            // Records this round wrote are newer than any trimmed here; a
            // record an earlier entry of the round removed reads as gone.
            let stored = aux.range(Bound::Included(start), self.shard_end(shard.number), false);
            for pair in stored {
                let (key, _) = pair?;
                let Some(value) = ctx.get(aux, &key)? else {
                    continue;
                };
                let Some(sequence) = sequence_of(&key) else {
                    continue;
                };
                let created_ms = StoredStreamRecord::created_ms(&value).map_err(corrupt)?;
                if created_ms >= before_ms {
                    shard.trimmed_to = Some(sequence);
                    kept_any = true;
                    break;
                }
                ctx.delete(aux, key.to_vec());
                removed += 1;
                shard.trimmed_to = Some(sequence.next());
            }
            let closed_long_ago = shard.closed_ms.is_some_and(|closed| closed < before_ms);
            if closed_long_ago && !kept_any {
                emptied.push(shard.number);
            }
        }
        state
            .shards
            .retain(|shard| !emptied.contains(&shard.number));
        if removed > 0 || !emptied.is_empty() {
            self.store_stream_state(ctx, state)?;
        }
        Ok(PartitionOutput::StreamTrimmed { removed })
    }

    /// When the oldest stream record here was made, if there is one.
    pub fn oldest_stream_record_ms(&self) -> Result<Option<u64>, PartitionError> {
        let Some(aux) = &self.aux else {
            return Ok(None);
        };
        let mut oldest: Option<u64> = None;
        for shard in &self.stream_state().shards {
            let start = shard_prefix(ShardRef {
                group: self.group_id,
                number: shard.number,
            });
            let first = aux
                .range(Bound::Included(start), self.shard_end(shard.number), false)
                .next()
                .transpose()?;
            if let Some((_, value)) = first {
                let created_ms = StoredStreamRecord::created_ms(&value)?;
                oldest = Some(oldest.map_or(created_ms, |o| o.min(created_ms)));
            }
        }
        Ok(oldest)
    }

    /// The shard `number` of this partition.
    pub fn stream_shard(&self, number: u32) -> Option<Shard> {
        self.stream_state().shard(number).cloned()
    }
}
