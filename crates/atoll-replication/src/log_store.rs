//! A group's Raft log: recent entries in memory, all of them in the shared
//! `raft_log` keyspace, written by the node-wide log writer.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

use atoll_storage::Keyspace;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};

use crate::codec::{MetaTag, decode, encode, index_of_log_key, log_key, meta_key};
use crate::log_writer::{EncodedEntry, LogWriterHandle, WriteRequest};
use crate::typ::{Entry, LogId, Vote};
use crate::{GroupId, TypeConfig};

/// Entries kept in memory per group once durable, so that the state machine
/// and replication read them back without touching the engine; bounded by
/// count and by bytes (items can be 400 KB each).
const CACHED_ENTRIES: usize = 1024;
const CACHED_BYTES: usize = 16 * 1024 * 1024;

/// What the log writer and the group's log store share.
pub(crate) struct LogShared {
    pub(crate) log_ks: Keyspace,
    pub(crate) meta_ks: Keyspace,
    pub(crate) writer: LogWriterHandle,
}

struct CachedEntry {
    entry: Entry,
    size_bytes: usize,
    durable: bool,
}

#[derive(Default)]
struct GroupLogInner {
    cache: BTreeMap<u64, CachedEntry>,
    cached_bytes: usize,
    last_log_id: Option<LogId>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// The in-memory state of one group's log.
pub(crate) struct GroupLogState {
    pub(crate) group: GroupId,
    inner: Mutex<GroupLogInner>,
}

impl GroupLogInner {
    /// Drops the oldest durable entries while the cache is over its bounds.
    fn evict(&mut self) {
        while self.cache.len() > CACHED_ENTRIES || self.cached_bytes > CACHED_BYTES {
            match self.cache.first_entry() {
                Some(first) if first.get().durable => {
                    self.cached_bytes -= first.remove().size_bytes;
                }
                _ => break,
            }
        }
    }

    /// Drops cached entries whose index fails `keep`.
    fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        let mut dropped_bytes = 0;
        self.cache.retain(|index, cached| {
            let kept = keep(*index);
            if !kept {
                dropped_bytes += cached.size_bytes;
            }
            kept
        });
        self.cached_bytes -= dropped_bytes;
    }
}

impl GroupLogState {
    fn lock(&self) -> MutexGuard<'_, GroupLogInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the writer once `written` are fsynced: they may leave the cache.
    pub(crate) fn mark_durable(&self, written: &[LogId]) {
        let mut inner = self.lock();
        for log_id in written {
            if let Some(cached) = inner.cache.get_mut(&log_id.index)
                && cached.entry.log_id == *log_id
            {
                cached.durable = true;
            }
        }
        inner.evict();
    }
}

/// One group's log storage and reader.
#[derive(Clone)]
pub(crate) struct GroupLogStore {
    state: Arc<GroupLogState>,
    shared: Arc<LogShared>,
}

impl GroupLogStore {
    /// Loads a group's log state (empty for a new group).
    pub(crate) fn open(group: GroupId, shared: Arc<LogShared>) -> io::Result<Self> {
        let mut inner = GroupLogInner::default();
        let read_meta = |tag| -> io::Result<Option<atoll_storage::Bytes>> {
            shared
                .meta_ks
                .get(&meta_key(group, tag))
                .map_err(io::Error::other)
        };
        if let Some(bytes) = read_meta(MetaTag::Vote)? {
            inner.vote = Some(decode(&bytes)?);
        }
        if let Some(bytes) = read_meta(MetaTag::Committed)? {
            inner.committed = Some(decode(&bytes)?);
        }
        if let Some(bytes) = read_meta(MetaTag::LastPurged)? {
            inner.last_purged = Some(decode(&bytes)?);
        }
        let last = shared
            .log_ks
            .last_with_prefix(&group.to_be_bytes())
            .map_err(io::Error::other)?;
        inner.last_log_id = match last {
            Some((_, bytes)) => Some(decode::<Entry>(&bytes)?.log_id),
            None => inner.last_purged,
        };
        Ok(GroupLogStore {
            state: Arc::new(GroupLogState {
                group,
                inner: Mutex::new(inner),
            }),
            shared,
        })
    }

    fn group(&self) -> GroupId {
        self.state.group
    }

    /// Queues deletion of the group's whole log and its records.
    pub(crate) fn destroy(&self) -> io::Result<()> {
        let mut inner = self.state.lock();
        let first = inner.last_purged.map_or(0, |id| id.index + 1);
        if let Some(last) = inner.last_log_id
            && last.index >= first
        {
            self.shared.writer.send(WriteRequest::DeleteRange {
                group: self.group(),
                from: first,
                to: last.index,
            })?;
        }
        for tag in [MetaTag::Vote, MetaTag::Committed, MetaTag::LastPurged] {
            self.shared.writer.send(WriteRequest::Meta {
                key: meta_key(self.group(), tag).to_vec(),
                value: None,
                sync: false,
                done: None,
            })?;
        }
        inner.retain(|_| false);
        Ok(())
    }

    fn read_range(&self, start: u64, end_exclusive: u64) -> io::Result<Vec<Entry>> {
        let inner = self.state.lock();
        let cache_first = inner.cache.keys().next().copied().unwrap_or(u64::MAX);
        let mut entries = Vec::new();
        if start < cache_first.min(end_exclusive) {
            // Older than the cache: durable, so the engine has it.
            let disk_end = cache_first.min(end_exclusive);
            let iter = self.shared.log_ks.range(
                Bound::Included(log_key(self.group(), start).to_vec()),
                Bound::Excluded(log_key(self.group(), disk_end).to_vec()),
                false,
            );
            for item in iter {
                let (key, value) = item.map_err(io::Error::other)?;
                let entry: Entry = decode(&value)?;
                if index_of_log_key(&key) != Some(entry.log_id.index) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "raft log entry stored under a foreign index",
                    ));
                }
                entries.push(entry);
            }
        }
        // A range wholly below the cache (or an empty cache) reads nothing
        // here; `BTreeMap::range` panics on a start past its end.
        let cached_from = start.max(cache_first);
        if cached_from < end_exclusive {
            for (_, cached) in inner.cache.range(cached_from..end_exclusive) {
                entries.push(cached.entry.clone());
            }
        }
        Ok(entries)
    }
}

fn bounds_to_range<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(x) => *x,
        Bound::Excluded(x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(x) => x.saturating_add(1),
        Bound::Excluded(x) => *x,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for GroupLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = bounds_to_range(&range);
        self.read_range(start, end)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.state.lock().vote)
    }
}

impl RaftLogStorage<TypeConfig> for GroupLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let inner = self.state.lock();
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: inner.last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.state.lock().vote = Some(*vote);
        self.shared.writer.send(WriteRequest::Meta {
            key: meta_key(self.group(), MetaTag::Vote).to_vec(),
            value: Some(encode(vote)?),
            sync: true,
            done: Some(done),
        })?;
        wait.await.map_err(io::Error::other)?
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.state.lock().committed = committed;
        // Not fsynced: after a crash the group re-learns its commit point from
        // the log (a single voter commits its whole durable log on election).
        self.shared.writer.send(WriteRequest::Meta {
            key: meta_key(self.group(), MetaTag::Committed).to_vec(),
            value: Some(encode(&committed)?),
            sync: false,
            done: None,
        })
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.state.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        {
            let mut inner = self.state.lock();
            for entry in entries {
                let bytes = encode(&entry)?;
                let size_bytes = bytes.len();
                encoded.push(EncodedEntry {
                    log_id: entry.log_id,
                    bytes,
                });
                inner.last_log_id = Some(entry.log_id);
                inner.cached_bytes += size_bytes;
                let replaced = inner.cache.insert(
                    entry.index(),
                    CachedEntry {
                        entry,
                        size_bytes,
                        durable: false,
                    },
                );
                if let Some(replaced) = replaced {
                    inner.cached_bytes -= replaced.size_bytes;
                }
            }
            inner.evict();
        }
        self.shared.writer.send(WriteRequest::Append {
            state: self.state.clone(),
            entries: encoded,
            callback,
        })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let mut inner = self.state.lock();
        let from = last_log_id.map_or(0, |id| id.index + 1);
        let old_last = inner.last_log_id.map(|id| id.index);
        inner.retain(|index| index < from);
        inner.last_log_id = last_log_id.or(inner.last_purged);
        if let Some(to) = old_last
            && to >= from
        {
            self.shared.writer.send(WriteRequest::DeleteRange {
                group: self.group(),
                from,
                to,
            })?;
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut inner = self.state.lock();
        let from = inner.last_purged.map_or(0, |id| id.index + 1);
        inner.retain(|index| index > log_id.index);
        inner.last_purged = Some(log_id);
        if inner
            .last_log_id
            .is_none_or(|last| last.index < log_id.index)
        {
            inner.last_log_id = Some(log_id);
        }
        // The purge point is recorded before entries go, so a crash in between
        // leaves entries openraft ignores rather than a hole it trips over.
        self.shared.writer.send(WriteRequest::Meta {
            key: meta_key(self.group(), MetaTag::LastPurged).to_vec(),
            value: Some(encode(&log_id)?),
            sync: false,
            done: None,
        })?;
        if log_id.index >= from {
            self.shared.writer.send(WriteRequest::DeleteRange {
                group: self.group(),
                from,
                to: log_id.index,
            })?;
        }
        Ok(())
    }
}
