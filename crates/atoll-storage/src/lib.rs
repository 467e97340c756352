//! Atoll's storage engine interface.
//!
//! One [`Storage`] per node holds every keyspace: the Raft logs of all groups,
//! their state machines (items, applied index) and the metadata catalog. Two
//! engines sit behind it: fjall (an LSM tree with a journal, memtables and
//! SSTables) for real use, and a `BTreeMap` for unit tests of the layers above.
//! The enum dispatch keeps the interface small and free of generics that would
//! otherwise spread into the Raft type configuration.

mod error;
mod memory;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::StorageError;
pub use fjall::Slice as Bytes;

use memory::{MemoryEngine, MemoryKeyspace};

/// Result of a storage operation.
pub type Result<T> = std::result::Result<T, StorageError>;

/// How durable a committed batch must be before `commit` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Written to the engine's journal buffer; survives a process crash only
    /// once a later `persist` or synced commit reaches the disk.
    Buffered,
    /// Written and fsynced.
    Synced,
}

/// Values at least this large go to blob files in a log keyspace.
const LOG_VALUE_SEPARATION_BYTES: u32 = 256;

/// Blob file size of a log keyspace: small enough that purging the log
/// soon leaves whole files dead, so they are deleted rather than rewritten.
const LOG_BLOB_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Tuning for the on-disk engine.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// Block cache size.
    pub cache_size_bytes: u64,
    /// Memtable size per keyspace before it is flushed to an SSTable.
    pub max_memtable_size_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            cache_size_bytes: 64 * 1024 * 1024,
            max_memtable_size_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A node's storage: a set of named keyspaces with atomic batches across them.
#[derive(Clone)]
pub struct Storage {
    engine: Engine,
}

#[derive(Clone)]
enum Engine {
    Fjall {
        db: fjall::Database,
        options: Arc<StorageOptions>,
        path: Arc<Path>,
    },
    Memory(Arc<MemoryEngine>),
}

/// A handle to one keyspace; cheap to clone.
#[derive(Clone)]
pub struct Keyspace {
    name: Arc<str>,
    inner: KeyspaceInner,
}

#[derive(Clone)]
enum KeyspaceInner {
    Fjall(fjall::Keyspace),
    Memory(Arc<MemoryKeyspace>),
}

/// Writes to apply atomically, possibly across keyspaces.
#[derive(Default)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

enum BatchOp {
    Put(Keyspace, Vec<u8>, Vec<u8>),
    Delete(Keyspace, Vec<u8>),
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch::default()
    }

    /// Sets `key` to `value` in `keyspace`.
    pub fn put(&mut self, keyspace: &Keyspace, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops
            .push(BatchOp::Put(keyspace.clone(), key.into(), value.into()));
    }

    /// Removes `key` from `keyspace`.
    pub fn delete(&mut self, keyspace: &Keyspace, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Delete(keyspace.clone(), key.into()));
    }

    /// Number of writes in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no writes.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl Storage {
    /// Opens (or creates) the on-disk engine in `path`, recovering its journal.
    pub fn open(path: &Path, options: StorageOptions) -> Result<Storage> {
        std::fs::create_dir_all(path)?;
        let db = fjall::Database::builder(path)
            .cache_size(options.cache_size_bytes)
            // Durability is decided per batch by the callers (the Raft log
            // writer fsyncs); nothing else should fsync behind their back.
            .manual_journal_persist(true)
            .open()?;
        Ok(Storage {
            engine: Engine::Fjall {
                db,
                options: Arc::new(options),
                path: Arc::from(path),
            },
        })
    }

    /// A directory of the caller's own, beside the engine's files, for data
    /// too large to hold in memory (a snapshot being received); `None` for
    /// the in-memory engine. The engine reads only its own subdirectories.
    pub fn spool_dir(&self) -> Option<PathBuf> {
        match &self.engine {
            Engine::Fjall { path, .. } => Some(path.join("spool")),
            Engine::Memory(_) => None,
        }
    }

    /// Whether this is the in-memory engine (tests and simulations: its
    /// commits are immediate, so callers may run them inline).
    pub fn is_in_memory(&self) -> bool {
        matches!(self.engine, Engine::Memory(_))
    }

    /// A volatile engine for unit tests.
    pub fn in_memory() -> Storage {
        Storage {
            engine: Engine::Memory(Arc::new(MemoryEngine::default())),
        }
    }

    /// Opens the keyspace `name`, creating it if needed.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        self.open_keyspace(name, false)
    }

    /// Opens the keyspace `name` for a log: large values written once, read
    /// rarely, deleted oldest first. Values of 256 bytes or more live in
    /// blob files beside the tree, so compaction moves only keys and a
    /// purged stretch of log frees whole files, instead of every entry being
    /// rewritten level after level. The layout is chosen when the keyspace
    /// is created; an existing keyspace keeps the one it was created with.
    pub fn log_keyspace(&self, name: &str) -> Result<Keyspace> {
        self.open_keyspace(name, true)
    }

    fn open_keyspace(&self, name: &str, separate_values: bool) -> Result<Keyspace> {
        if name.is_empty() || name.len() > 255 {
            return Err(StorageError::InvalidKeyspaceName(name.to_string()));
        }
        let inner = match &self.engine {
            Engine::Fjall { db, options, .. } => {
                let memtable_bytes = options.max_memtable_size_bytes;
                KeyspaceInner::Fjall(db.keyspace(name, || {
                    let create = fjall::KeyspaceCreateOptions::default()
                        .max_memtable_size(memtable_bytes)
                        .manual_journal_persist(true)
                        .index_block_pinning_policy(fjall::config::PinningPolicy::all(true))
                        .filter_block_pinning_policy(fjall::config::PinningPolicy::all(true));
                    if separate_values {
                        create.with_kv_separation(Some(
                            fjall::KvSeparationOptions::default()
                                .separation_threshold(LOG_VALUE_SEPARATION_BYTES)
                                .file_target_size(LOG_BLOB_FILE_BYTES),
                        ))
                    } else {
                        // fjall leaves its first two levels uncompressed by
                        // default; data bulk-imported from a snapshot sits
                        // there (measured: 1.4 GB on disk for 0.8 GB of
                        // items, against 0.3 GB once compacted deeper).
                        create.data_block_compression_policy(fjall::config::CompressionPolicy::all(
                            fjall::CompressionType::Lz4,
                        ))
                    }
                })?)
            }
            Engine::Memory(engine) => KeyspaceInner::Memory(engine.keyspace(name)),
        };
        Ok(Keyspace {
            name: Arc::from(name),
            inner,
        })
    }

    /// Whether a keyspace called `name` exists.
    pub fn keyspace_exists(&self, name: &str) -> bool {
        match &self.engine {
            Engine::Fjall { db, .. } => db.keyspace_exists(name),
            Engine::Memory(engine) => engine.exists(name),
        }
    }

    /// Names of all keyspaces.
    pub fn keyspace_names(&self) -> Vec<String> {
        match &self.engine {
            Engine::Fjall { db, .. } => db
                .list_keyspace_names()
                .into_iter()
                .map(|name| name.to_string())
                .collect(),
            Engine::Memory(engine) => engine.names(),
        }
    }

    /// Drops a whole keyspace and its data (used by DeleteTable: no row-by-row deletes).
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        match &self.engine {
            Engine::Fjall { db, .. } => {
                if db.keyspace_exists(name) {
                    let handle = db.keyspace(name, fjall::KeyspaceCreateOptions::default)?;
                    db.delete_keyspace(handle)?;
                }
            }
            Engine::Memory(engine) => engine.drop_keyspace(name),
        }
        Ok(())
    }

    /// Applies `batch` atomically.
    pub fn commit(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        if batch.ops.is_empty() {
            if durability == Durability::Synced {
                self.persist()?;
            }
            return Ok(());
        }
        match &self.engine {
            Engine::Fjall { db, .. } => {
                let mut fjall_batch = db.batch();
                for op in batch.ops {
                    match op {
                        BatchOp::Put(ks, key, value) => {
                            fjall_batch.insert(ks.fjall()?, key, value);
                        }
                        BatchOp::Delete(ks, key) => fjall_batch.remove(ks.fjall()?, key),
                    }
                }
                let mode = match durability {
                    Durability::Buffered => fjall::PersistMode::Buffer,
                    Durability::Synced => fjall::PersistMode::SyncData,
                };
                fjall_batch.durability(Some(mode)).commit()?;
            }
            Engine::Memory(engine) => engine.commit(batch.ops)?,
        }
        Ok(())
    }

    /// Makes everything committed so far durable (fsync of the journal).
    pub fn persist(&self) -> Result<()> {
        match &self.engine {
            Engine::Fjall { db, .. } => db.persist(fjall::PersistMode::SyncData)?,
            Engine::Memory(_) => {}
        }
        Ok(())
    }

    /// Writes every keyspace's memtable to disk as a table, so the journal
    /// holds nothing a restart would have to replay (called on clean
    /// shutdown: start-up then takes milliseconds, not a journal's replay).
    pub fn flush_memtables(&self) -> Result<()> {
        if let Engine::Fjall { db, .. } = &self.engine {
            for name in db.list_keyspace_names() {
                let name: &str = name.as_ref();
                let keyspace = db.keyspace(name, fjall::KeyspaceCreateOptions::default)?;
                keyspace.rotate_memtable_and_wait()?;
            }
        }
        Ok(())
    }

    /// Bytes written to memtables and not yet flushed to tables (0 in
    /// memory): what a bulk writer waits on so its writes do not outrun the
    /// engine's flushes.
    pub fn unflushed_bytes(&self) -> u64 {
        match &self.engine {
            Engine::Fjall { db, .. } => db.write_buffer_size(),
            Engine::Memory(_) => 0,
        }
    }

    /// Bytes the engine occupies on disk (0 in memory).
    pub fn disk_space_bytes(&self) -> u64 {
        match &self.engine {
            Engine::Fjall { db, .. } => db.disk_space().unwrap_or(0),
            Engine::Memory(_) => 0,
        }
    }
}

/// A consistent, point-in-time view of every keyspace (an engine snapshot):
/// later writes are invisible to it. Hold it briefly: the engine keeps the
/// old versions it can see until it is dropped. (The in-memory engine, used
/// by unit tests, has no snapshots: its view reads live data.)
#[derive(Clone)]
pub struct ReadView {
    inner: ReadViewInner,
}

#[derive(Clone)]
enum ReadViewInner {
    Fjall(fjall::Snapshot),
    Live,
}

impl Storage {
    /// A point-in-time view of all keyspaces as of now.
    pub fn read_view(&self) -> ReadView {
        ReadView {
            inner: match &self.engine {
                Engine::Fjall { db, .. } => ReadViewInner::Fjall(db.snapshot()),
                Engine::Memory(_) => ReadViewInner::Live,
            },
        }
    }
}

impl ReadView {
    /// Iterates over keys of `keyspace` in `(start, end)`, ascending, as the view sees them.
    pub fn range(
        &self,
        keyspace: &Keyspace,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> RangeIter<'static> {
        match (&self.inner, &keyspace.inner) {
            (ReadViewInner::Fjall(snapshot), KeyspaceInner::Fjall(ks)) => {
                use fjall::Readable;
                let iter = snapshot.range::<Vec<u8>, _>(ks, (start, end));
                Box::new(iter.map(|guard| guard.into_inner().map_err(StorageError::from)))
            }
            _ => keyspace.range(start, end, false),
        }
    }

    /// The value of `key` in `keyspace` as the view sees it.
    pub fn get(&self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Bytes>> {
        let exactly = || Bound::Included(key.to_vec());
        let found = self
            .range(keyspace, exactly(), exactly())
            .next()
            .transpose()?;
        Ok(found.map(|(_, value)| value))
    }
}

/// Items yielded by range iterators: key and value.
pub type KeyValue = (Bytes, Bytes);

/// Iterator over a key range.
pub type RangeIter<'a> = Box<dyn Iterator<Item = Result<KeyValue>> + Send + 'a>;

impl Keyspace {
    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn fjall(&self) -> Result<&fjall::Keyspace> {
        match &self.inner {
            KeyspaceInner::Fjall(ks) => Ok(ks),
            KeyspaceInner::Memory(_) => Err(StorageError::EngineMismatch),
        }
    }

    /// Reads one key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        match &self.inner {
            KeyspaceInner::Fjall(ks) => Ok(ks.get(key)?),
            KeyspaceInner::Memory(ks) => Ok(ks.get(key)),
        }
    }

    /// Iterates over keys in `(start, end)`, ascending or descending.
    pub fn range(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> RangeIter<'static> {
        match &self.inner {
            KeyspaceInner::Fjall(ks) => {
                let iter = ks.range::<Vec<u8>, _>((start, end));
                let map = |guard: fjall::Guard| guard.into_inner().map_err(StorageError::from);
                if reverse {
                    Box::new(iter.rev().map(map))
                } else {
                    Box::new(iter.map(map))
                }
            }
            KeyspaceInner::Memory(ks) => {
                Box::new(ks.range(start, end, reverse).into_iter().map(Ok))
            }
        }
    }

    /// Iterates over all keys starting with `prefix`, ascending.
    pub fn prefix(&self, prefix: &[u8]) -> RangeIter<'static> {
        let end = prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        self.range(Bound::Included(prefix.to_vec()), end, false)
    }

    /// The last key-value pair whose key starts with `prefix`.
    pub fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<KeyValue>> {
        let end = prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        self.range(Bound::Included(prefix.to_vec()), end, true)
            .next()
            .transpose()
    }

    /// Approximate number of keys (cheap; counts tombstones on disk).
    pub fn approximate_len(&self) -> usize {
        match &self.inner {
            KeyspaceInner::Fjall(ks) => ks.approximate_len(),
            KeyspaceInner::Memory(ks) => ks.len(),
        }
    }

    /// Bytes this keyspace occupies on disk (0 in memory).
    pub fn disk_space_bytes(&self) -> u64 {
        match &self.inner {
            KeyspaceInner::Fjall(ks) => ks.disk_space(),
            KeyspaceInner::Memory(_) => 0,
        }
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests;
