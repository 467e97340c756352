//! Snapshots as streams: what a leader sends a replica that is behind its
//! purged log, without ever holding a whole partition in memory.
//!
//! A state machine exports its state as a header and a series of records
//! (`SnapshotWriter`), which the sender hands out in chunks as it reads
//! them. The receiver spools the chunks to a file beside the engine, and
//! the state machine imports from it record by record (`SnapshotReader`),
//! writing in bounded batches (`ImportWriter`). The in-memory engine of
//! tests and simulations keeps the spool in memory.
//!
//! The stream format is Atoll's own (there is no crate for "a sorted dump
//! of some keyspaces"): a version byte, a header frame, record frames and an
//! end frame that carries the record count, so a truncated spool is caught.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use atoll_storage::{Durability, Keyspace, ReadView, Storage, StorageError, WriteBatch};
use tokio::io::AsyncWriteExt;

use crate::GroupId;
use crate::state_machine::{ErasedStateMachine, GroupStateMachine};

/// Bytes of snapshot per chunk on the wire.
pub(crate) const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Bytes of writes an import gathers before it commits them.
const IMPORT_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Unflushed engine bytes above which an import waits for flushes: the
/// engine lets memtables queue up without bound while a bulk writer
/// outruns them (measured: half of a 1 GB import held in memory).
const IMPORT_MAX_UNFLUSHED_BYTES: u64 = 96 * 1024 * 1024;

/// How long an import waits on flushes that make no progress before going
/// on regardless (unflushed bytes of other writers may never be flushed
/// while they stay below a memtable's size).
const IMPORT_FLUSH_STALL_MS: u64 = 2_000;

/// Largest header, key or value a reader accepts: a longer length is a
/// corrupt spool, refused before it is allocated.
const MAX_PART_BYTES: u32 = 64 * 1024 * 1024;

const FORMAT_VERSION: u8 = 1;
const TAG_HEADER: u8 = 0;
const TAG_RECORD: u8 = 1;
const TAG_END: u8 = 2;

/// Where a chunk of an export goes (the network, or a buffer).
pub(crate) type ChunkSink<'a> = &'a mut dyn FnMut(Vec<u8>) -> io::Result<()>;

/// Writes a group's exported state: one header, then records, in chunks.
pub struct SnapshotWriter<'a> {
    chunk: Vec<u8>,
    header_written: bool,
    records: u64,
    sink: ChunkSink<'a>,
}

impl<'a> SnapshotWriter<'a> {
    pub(crate) fn new(sink: ChunkSink<'a>) -> Self {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        chunk.push(FORMAT_VERSION);
        SnapshotWriter {
            chunk,
            header_written: false,
            records: 0,
            sink,
        }
    }

    /// Writes the state machine's header (what is not a record, such as a
    /// partition's range): once, before any record. Without one the header
    /// is empty.
    pub fn header(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        if self.header_written {
            return Err(invalid("a snapshot header after the header or a record").into());
        }
        self.header_written = true;
        self.chunk.push(TAG_HEADER);
        put_part(&mut self.chunk, bytes)?;
        self.flush_full()
    }

    /// Writes one record (a key and its value).
    pub fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        if !self.header_written {
            self.header(&[])?;
        }
        self.chunk.push(TAG_RECORD);
        put_part(&mut self.chunk, key)?;
        put_part(&mut self.chunk, value)?;
        self.records += 1;
        self.flush_full()
    }

    /// Ends the stream and hands out its last chunk.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        if !self.header_written {
            self.header(&[]).map_err(io::Error::other)?;
        }
        self.chunk.push(TAG_END);
        self.chunk.extend_from_slice(&self.records.to_be_bytes());
        let last = std::mem::take(&mut self.chunk);
        (self.sink)(last)
    }

    fn flush_full(&mut self) -> Result<(), StorageError> {
        if self.chunk.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES));
            (self.sink)(full)?;
        }
        Ok(())
    }
}

fn put_part(out: &mut Vec<u8>, part: &[u8]) -> io::Result<()> {
    let length = u32::try_from(part.len())
        .ok()
        .filter(|length| *length <= MAX_PART_BYTES)
        .ok_or_else(|| invalid("a snapshot record part over 64 MiB"))?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(part);
    Ok(())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A record of a snapshot: a key and its value.
pub type Record = (Vec<u8>, Vec<u8>);

/// Reads an exported state back: its header, then its records in order.
pub struct SnapshotReader {
    input: Box<dyn Read + Send>,
    header: Vec<u8>,
    records: u64,
    ended: bool,
}

impl SnapshotReader {
    pub(crate) fn new(input: Box<dyn Read + Send>) -> io::Result<Self> {
        let mut reader = SnapshotReader {
            input,
            header: Vec::new(),
            records: 0,
            ended: false,
        };
        let mut version = [0u8; 1];
        reader.read_exact(&mut version)?;
        if version[0] != FORMAT_VERSION {
            return Err(invalid("a snapshot of an unknown format version"));
        }
        let mut tag = [0u8; 1];
        reader.read_exact(&mut tag)?;
        if tag[0] != TAG_HEADER {
            return Err(invalid("a snapshot without its header"));
        }
        reader.header = reader.read_part()?;
        Ok(reader)
    }

    /// The state machine's header (empty when it wrote none).
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The next record, or `None` after the last one.
    pub fn next_record(&mut self) -> Result<Option<Record>, StorageError> {
        if self.ended {
            return Ok(None);
        }
        let mut tag = [0u8; 1];
        self.read_exact(&mut tag)?;
        match tag[0] {
            TAG_RECORD => {
                let key = self.read_part()?;
                let value = self.read_part()?;
                self.records += 1;
                Ok(Some((key, value)))
            }
            TAG_END => {
                let mut count = [0u8; 8];
                self.read_exact(&mut count)?;
                if u64::from_be_bytes(count) != self.records {
                    return Err(invalid("a snapshot whose record count does not match").into());
                }
                self.ended = true;
                Ok(None)
            }
            _ => Err(invalid("a snapshot frame of an unknown kind").into()),
        }
    }

    /// Checks that every record was read, up to the stream's end.
    pub(crate) fn expect_end(&mut self) -> io::Result<()> {
        match self.next_record().map_err(io::Error::other)? {
            None => Ok(()),
            Some(_) => Err(invalid("a snapshot imported only in part")),
        }
    }

    fn read_exact(&mut self, buffer: &mut [u8]) -> io::Result<()> {
        self.input.read_exact(buffer).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                invalid("a snapshot cut short")
            } else {
                e
            }
        })
    }

    fn read_part(&mut self) -> io::Result<Vec<u8>> {
        let mut length = [0u8; 4];
        self.read_exact(&mut length)?;
        let length = u32::from_be_bytes(length);
        if length > MAX_PART_BYTES {
            return Err(invalid("a snapshot record part over 64 MiB"));
        }
        let mut part = vec![0u8; length as usize];
        self.read_exact(&mut part)?;
        Ok(part)
    }
}

/// The writes of an import, committed in batches of bounded size as they
/// come; what is left commits with the snapshot's position. A key must be
/// written at most once per import (an engine batch must not hold a key
/// twice, and the import does not know where its batches end).
pub struct ImportWriter {
    storage: Storage,
    batch: WriteBatch,
    pending_bytes: usize,
}

impl ImportWriter {
    pub(crate) fn new(storage: Storage) -> Self {
        ImportWriter {
            storage,
            batch: WriteBatch::new(),
            pending_bytes: 0,
        }
    }

    /// Sets `key` to `value`.
    pub fn put(
        &mut self,
        keyspace: &Keyspace,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<(), StorageError> {
        self.pending_bytes += key.len() + value.len();
        self.batch.put(keyspace, key, value);
        self.commit_if_full()
    }

    /// Removes `key`.
    pub fn delete(&mut self, keyspace: &Keyspace, key: Vec<u8>) -> Result<(), StorageError> {
        self.pending_bytes += key.len();
        self.batch.delete(keyspace, key);
        self.commit_if_full()
    }

    /// Not synced: the import is durable only with its last batch, which
    /// is, and a crash before it redoes the import from the spool.
    fn commit_if_full(&mut self) -> Result<(), StorageError> {
        if self.pending_bytes >= IMPORT_BATCH_BYTES {
            let full = std::mem::take(&mut self.batch);
            self.pending_bytes = 0;
            self.storage.commit(full, Durability::Buffered)?;
            self.wait_for_flushes();
            // Tests stop an import here, after some of it is written, as a
            // crash would (without the `failpoints` feature: nothing).
            fail::fail_point!("snapshot-import-interrupted", |_| Err(io::Error::other(
                "import interrupted by fault injection"
            )
            .into()));
        }
        Ok(())
    }

    fn wait_for_flushes(&self) {
        let mut lowest = self.storage.unflushed_bytes();
        let mut since_progress = std::time::Instant::now();
        while lowest > IMPORT_MAX_UNFLUSHED_BYTES
            && since_progress.elapsed() < std::time::Duration::from_millis(IMPORT_FLUSH_STALL_MS)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let now = self.storage.unflushed_bytes();
            if now < lowest {
                lowest = now;
                since_progress = std::time::Instant::now();
            }
        }
    }

    /// The writes not committed yet.
    pub(crate) fn into_batch(self) -> WriteBatch {
        self.batch
    }
}

/// Exports `from` as `view` sees it and imports that into `into`, whose
/// writes are committed to `storage`: a snapshot's journey without Raft or
/// network, for state machines' own tests.
pub fn transfer_state<A: GroupStateMachine, B: GroupStateMachine>(
    from: &A,
    view: &ReadView,
    into: &B,
    storage: &Storage,
) -> Result<(), StorageError> {
    let mut bytes = Vec::new();
    let mut sink = |chunk: Vec<u8>| {
        bytes.extend_from_slice(&chunk);
        Ok(())
    };
    let mut writer = SnapshotWriter::new(&mut sink);
    from.export(view, &mut writer)?;
    writer.finish()?;
    let mut reader = SnapshotReader::new(Box::new(io::Cursor::new(bytes)))?;
    let mut out = ImportWriter::new(storage.clone());
    into.import(&mut reader, &mut out)?;
    reader.expect_end()?;
    storage.commit(out.into_batch(), Durability::Buffered)
}

/// A snapshot's data. A group's state already lives in the engine, so a
/// local snapshot is an engine view at the snapshot's log position, exported
/// only when a replica needs it; one received from a leader is spooled.
pub enum GroupSnapshot {
    /// This replica's state at the snapshot point.
    Local {
        /// The engine as it was at the snapshot point.
        view: ReadView,
        /// The group's state machine, which knows what of the engine is its state.
        sm: Arc<dyn ErasedStateMachine>,
    },
    /// A leader's export, to install.
    Received(Spool),
}

impl GroupSnapshot {
    /// Streams the exported state to `sink`, chunk by chunk.
    pub(crate) fn stream(self, sink: ChunkSink<'_>) -> io::Result<()> {
        match self {
            GroupSnapshot::Local { view, sm } => {
                let mut writer = SnapshotWriter::new(sink);
                sm.export(&view, &mut writer).map_err(io::Error::other)?;
                writer.finish()
            }
            // openraft sends what `get_current_snapshot` builds, never one
            // it was sent.
            GroupSnapshot::Received(_) => Err(io::Error::other(
                "a received snapshot is installed, not sent on",
            )),
        }
    }
}

impl std::fmt::Debug for GroupSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupSnapshot::Local { .. } => f.write_str("GroupSnapshot::Local"),
            GroupSnapshot::Received(spool) => write!(f, "GroupSnapshot::Received({spool:?})"),
        }
    }
}

/// A received snapshot, whole: in a file beside the engine, or in memory.
#[derive(Debug)]
pub enum Spool {
    /// The in-memory engine's spool.
    Memory(Vec<u8>),
    /// A file, fsynced.
    File(SpoolFile),
}

impl Spool {
    /// A reader of the snapshot from its beginning.
    pub(crate) fn reader(&self) -> io::Result<SnapshotReader> {
        match self {
            Spool::Memory(bytes) => SnapshotReader::new(Box::new(io::Cursor::new(bytes.clone()))),
            Spool::File(file) => read_spool(&file.path),
        }
    }
}

/// Reads the snapshot spooled at `path`.
pub(crate) fn read_spool(path: &Path) -> io::Result<SnapshotReader> {
    let file = File::open(path)?;
    SnapshotReader::new(Box::new(BufReader::with_capacity(1024 * 1024, file)))
}

/// A spool file, removed when dropped unless it was moved to where an
/// install keeps it.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    armed: bool,
}

impl SpoolFile {
    /// Renames the file to `to`, durably, and leaves it there.
    pub(crate) fn keep_as(mut self, to: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.armed = false;
        sync_dir(to)
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Fsyncs the directory holding `path`, so a rename or a new file in it survives a crash.
fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Where an install keeps group `group`'s snapshot until it has imported
/// it: a node that crashes meanwhile imports it again when it restarts.
pub(crate) fn installing_path(dir: &Path, group: GroupId) -> PathBuf {
    dir.join(format!("group-{group}.snapshot"))
}

/// Removes spool files of snapshots that were still arriving when the node
/// stopped (nothing refers to them).
pub(crate) fn remove_partial_spools(dir: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "part") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// A snapshot arriving on one connection, chunk by chunk.
pub(crate) struct IncomingSnapshot {
    group: GroupId,
    received_bytes: u64,
    target: IncomingTarget,
}

enum IncomingTarget {
    Memory(Vec<u8>),
    File {
        file: tokio::fs::File,
        spool: SpoolFile,
    },
}

/// Tells spool files of one process apart (two connections may bring the
/// same group's snapshot, one after the other failed).
static SPOOL_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl IncomingSnapshot {
    /// Starts receiving a snapshot of `group`: into a new file in `dir`, or
    /// in memory without one.
    pub(crate) async fn start(group: GroupId, dir: Option<PathBuf>) -> io::Result<Self> {
        let target = match dir {
            None => IncomingTarget::Memory(Vec::new()),
            Some(dir) => {
                tokio::fs::create_dir_all(&dir).await?;
                let sequence = SPOOL_SEQUENCE.fetch_add(1, Ordering::Relaxed);
                let path = dir.join(format!(
                    "incoming-{group}-{}-{sequence}.part",
                    std::process::id()
                ));
                let file = tokio::fs::File::create(&path).await?;
                IncomingTarget::File {
                    file,
                    spool: SpoolFile { path, armed: true },
                }
            }
        };
        Ok(IncomingSnapshot {
            group,
            received_bytes: 0,
            target,
        })
    }

    /// The group whose snapshot this is.
    pub(crate) fn group(&self) -> GroupId {
        self.group
    }

    /// Bytes received so far.
    pub(crate) fn received_bytes(&self) -> u64 {
        self.received_bytes
    }

    /// Adds the next chunk.
    pub(crate) async fn append(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.target {
            IncomingTarget::Memory(bytes) => bytes.extend_from_slice(data),
            IncomingTarget::File { file, .. } => file.write_all(data).await?,
        }
        self.received_bytes += data.len() as u64;
        Ok(())
    }

    /// The whole snapshot, on disk (fsynced) or in memory.
    pub(crate) async fn finish(self) -> io::Result<Spool> {
        match self.target {
            IncomingTarget::Memory(bytes) => Ok(Spool::Memory(bytes)),
            IncomingTarget::File { mut file, spool } => {
                file.flush().await?;
                file.sync_all().await?;
                Ok(Spool::File(spool))
            }
        }
    }
}

/// The chunks of a snapshot being sent, produced as they are read.
pub(crate) enum ChunkSource {
    /// All chunks, exported up front (simulations run on one thread).
    Collected(std::vec::IntoIter<io::Result<Vec<u8>>>),
    /// Chunks from an export running on a blocking thread, a few ahead.
    Streamed(tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>),
}

impl ChunkSource {
    /// Starts exporting `snapshot`: on a blocking thread, or with `inline`
    /// all of it right here.
    pub(crate) fn start(snapshot: GroupSnapshot, inline: bool) -> ChunkSource {
        if inline {
            let mut chunks = Vec::new();
            let outcome = snapshot.stream(&mut |chunk| {
                chunks.push(Ok(chunk));
                Ok(())
            });
            if let Err(e) = outcome {
                chunks.push(Err(e));
            }
            return ChunkSource::Collected(chunks.into_iter());
        }
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            let outcome = snapshot.stream(&mut |chunk| {
                sender
                    .blocking_send(Ok(chunk))
                    .map_err(|_| io::Error::other("the snapshot's receiver went away"))
            });
            if let Err(e) = outcome {
                let _ = sender.blocking_send(Err(e));
            }
        });
        ChunkSource::Streamed(receiver)
    }

    /// The next chunk; `None` after the last.
    pub(crate) async fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        match self {
            ChunkSource::Collected(chunks) => chunks.next(),
            ChunkSource::Streamed(receiver) => receiver.recv().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(build: impl FnOnce(&mut SnapshotWriter<'_>)) -> Vec<u8> {
        let mut chunks = Vec::new();
        let mut sink = |chunk: Vec<u8>| {
            chunks.push(chunk);
            Ok(())
        };
        let mut writer = SnapshotWriter::new(&mut sink);
        build(&mut writer);
        writer.finish().unwrap();
        chunks.concat()
    }

    #[test]
    fn records_come_back_in_order_after_the_header() {
        let bytes = written(|w| {
            w.header(b"range").unwrap();
            w.record(b"a", b"1").unwrap();
            w.record(b"b", b"").unwrap();
        });
        let mut reader = SnapshotReader::new(Box::new(io::Cursor::new(bytes))).unwrap();
        assert_eq!(reader.header(), b"range");
        assert_eq!(
            reader.next_record().unwrap(),
            Some((b"a".to_vec(), b"1".to_vec()))
        );
        assert_eq!(
            reader.next_record().unwrap(),
            Some((b"b".to_vec(), Vec::new()))
        );
        assert_eq!(reader.next_record().unwrap(), None);
        reader.expect_end().unwrap();
    }

    #[test]
    fn a_cut_short_or_altered_stream_is_refused() {
        let bytes = written(|w| {
            w.record(b"key", b"value").unwrap();
        });
        for cut in 1..bytes.len() {
            let outcome = SnapshotReader::new(Box::new(io::Cursor::new(bytes[..cut].to_vec())))
                .and_then(|mut reader| {
                    while reader.next_record().map_err(io::Error::other)?.is_some() {}
                    Ok(())
                });
            assert!(outcome.is_err(), "a stream cut at {cut} was read whole");
        }
        // One record fewer than the end frame counts.
        let mut fewer = written(|_| {});
        let count_at = fewer.len() - 8;
        fewer[count_at + 7] = 1;
        let mut reader = SnapshotReader::new(Box::new(io::Cursor::new(fewer))).unwrap();
        assert!(reader.next_record().is_err());
    }

    #[test]
    fn an_export_larger_than_a_chunk_is_handed_out_in_chunks() {
        let mut sizes = Vec::new();
        let mut sink = |chunk: Vec<u8>| {
            sizes.push(chunk.len());
            Ok(())
        };
        let mut writer = SnapshotWriter::new(&mut sink);
        let value = vec![7u8; 64 * 1024];
        for index in 0u32..200 {
            writer.record(&index.to_be_bytes(), &value).unwrap();
        }
        writer.finish().unwrap();
        assert!(sizes.len() >= 3, "{sizes:?}");
        assert!(sizes.iter().all(|size| *size < CHUNK_BYTES + 80 * 1024));
    }
}
