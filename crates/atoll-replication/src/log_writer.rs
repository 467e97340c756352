//! The node-wide log writer: group commit for the Raft logs of all groups.
//!
//! Appends from every group queue up here while the previous fsync runs; the
//! thread then writes all of them in one storage batch and makes them durable
//! with one fsync before completing their callbacks. Throughput under
//! concurrency is therefore bounded by fsyncs per second times the batch size,
//! not by one fsync per request.

use std::io;
use std::sync::Arc;
use std::sync::mpsc;

use atoll_storage::{Durability, Keyspace, Storage, WriteBatch};
use openraft::storage::IOFlushed;

use crate::codec::{io_error, log_key};
use crate::log_store::GroupLogState;
use crate::typ::LogId;
use crate::{GroupId, TypeConfig};

/// Most requests gathered into one batch; bounds the latency of the first one.
const MAX_REQUESTS_PER_BATCH: usize = 4096;

/// One entry to append: its id (to recognise it in the cache later) and bytes.
pub(crate) struct EncodedEntry {
    pub(crate) log_id: LogId,
    pub(crate) bytes: Vec<u8>,
}

/// Work for the writer thread, processed strictly in arrival order.
pub(crate) enum WriteRequest {
    /// Append entries of one group; `callback` fires once they are fsynced.
    Append {
        state: Arc<GroupLogState>,
        entries: Vec<EncodedEntry>,
        callback: IOFlushed<TypeConfig>,
    },
    /// Write a per-group record; `sync` demands an fsync before `done` fires.
    Meta {
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        sync: bool,
        done: Option<tokio::sync::oneshot::Sender<io::Result<()>>>,
    },
    /// Delete a group's entries with index in `from..=to` (truncation, purge, removal).
    DeleteRange { group: GroupId, from: u64, to: u64 },
    /// Completes once everything queued before it is durable.
    Barrier {
        done: tokio::sync::oneshot::Sender<io::Result<()>>,
    },
}

enum Completion {
    Flushed {
        state: Arc<GroupLogState>,
        written: Vec<LogId>,
        callback: IOFlushed<TypeConfig>,
    },
    Done(tokio::sync::oneshot::Sender<io::Result<()>>),
}

/// Sends work to the writer thread, or, on the in-memory engine, does it
/// at once on the caller's task (commits there are immediate; doing them
/// inline keeps tests and simulations free of a thread's timing).
#[derive(Clone)]
pub(crate) enum LogWriterHandle {
    Thread(mpsc::Sender<WriteRequest>),
    Inline(Arc<Writer>),
}

/// What the writer writes to.
pub(crate) struct Writer {
    storage: Storage,
    log_ks: Keyspace,
    meta_ks: Keyspace,
    metrics: WriterMetrics,
}

/// What the writer records of each batch: how much one fsync carries is
/// what group commit buys, and the fsync's time is the floor of a write's
/// latency.
struct WriterMetrics {
    /// Requests (appends and record writes, of any group) per batch.
    batch_requests: metrics::Histogram,
    /// Storage entries per batch.
    batch_entries: metrics::Histogram,
    /// Time to commit a batch that must be durable, fsync included.
    fsync_seconds: metrics::Histogram,
}

impl WriterMetrics {
    fn register() -> WriterMetrics {
        WriterMetrics {
            batch_requests: metrics::histogram!("atoll_log_writer_batch_requests"),
            batch_entries: metrics::histogram!("atoll_log_writer_batch_entries"),
            fsync_seconds: metrics::histogram!("atoll_log_fsync_seconds"),
        }
    }
}

impl LogWriterHandle {
    /// Starts the writer over the given keyspaces.
    pub(crate) fn start(storage: Storage, log_ks: Keyspace, meta_ks: Keyspace) -> io::Result<Self> {
        let writer = Writer {
            storage,
            log_ks,
            meta_ks,
            metrics: WriterMetrics::register(),
        };
        if writer.storage.is_in_memory() {
            return Ok(LogWriterHandle::Inline(Arc::new(writer)));
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("atoll-log-writer".into())
            .spawn(move || run(writer, rx))?;
        Ok(LogWriterHandle::Thread(tx))
    }

    /// Queues a request; fails only when the writer thread is gone.
    pub(crate) fn send(&self, request: WriteRequest) -> io::Result<()> {
        match self {
            LogWriterHandle::Thread(tx) => tx
                .send(request)
                .map_err(|_| io::Error::other("the log writer has stopped")),
            LogWriterHandle::Inline(writer) => {
                writer.write(vec![request]);
                Ok(())
            }
        }
    }

    /// Waits until everything queued so far is durable.
    pub(crate) async fn barrier(&self) -> io::Result<()> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(WriteRequest::Barrier { done })?;
        wait.await.map_err(io_error)?
    }
}

fn run(writer: Writer, rx: mpsc::Receiver<WriteRequest>) {
    while let Ok(first) = rx.recv() {
        let mut requests = vec![first];
        while requests.len() < MAX_REQUESTS_PER_BATCH {
            match rx.try_recv() {
                Ok(request) => requests.push(request),
                Err(_) => break,
            }
        }
        writer.write(requests);
    }
}

impl Writer {
    /// Writes `requests` in one batch (one fsync if any needs it), then
    /// completes each.
    fn write(&self, requests: Vec<WriteRequest>) {
        let (storage, log_ks, meta_ks) = (&self.storage, &self.log_ks, &self.meta_ks);
        let request_count = requests.len();
        let mut batch = WriteBatch::new();
        let mut completions = Vec::with_capacity(requests.len());
        let mut needs_sync = false;
        let mut result: Result<(), String> = Ok(());
        for request in requests {
            match request {
                WriteRequest::Append {
                    state,
                    entries,
                    callback,
                } => {
                    let mut written = Vec::with_capacity(entries.len());
                    for entry in entries {
                        batch.put(
                            log_ks,
                            log_key(state.group, entry.log_id.index),
                            entry.bytes,
                        );
                        written.push(entry.log_id);
                    }
                    needs_sync = true;
                    completions.push(Completion::Flushed {
                        state,
                        written,
                        callback,
                    });
                }
                WriteRequest::Meta {
                    key,
                    value,
                    sync,
                    done,
                } => {
                    match value {
                        Some(value) => batch.put(meta_ks, key, value),
                        None => batch.delete(meta_ks, key),
                    }
                    needs_sync |= sync;
                    if let Some(done) = done {
                        completions.push(Completion::Done(done));
                    }
                }
                WriteRequest::DeleteRange { group, from, to } => {
                    // A key must not be written twice in one engine batch, so
                    // everything queued before the deletion is committed first.
                    let earlier = std::mem::take(&mut batch);
                    if let Err(e) = storage.commit(earlier, Durability::Buffered) {
                        result = Err(e.to_string());
                    }
                    let mut deletes = WriteBatch::new();
                    for index in from..=to {
                        deletes.delete(log_ks, log_key(group, index));
                    }
                    if let Err(e) = storage.commit(deletes, Durability::Buffered) {
                        result = Err(e.to_string());
                    }
                }
                WriteRequest::Barrier { done } => {
                    needs_sync = true;
                    completions.push(Completion::Done(done));
                }
            }
        }
        let durability = if needs_sync {
            Durability::Synced
        } else {
            Durability::Buffered
        };
        let entries = batch.len();
        let committing = std::time::Instant::now();
        if let Err(e) = storage.commit(batch, durability) {
            result = Err(e.to_string());
        }
        if needs_sync {
            self.metrics
                .fsync_seconds
                .record(committing.elapsed().as_secs_f64());
        }
        self.metrics.batch_requests.record(request_count as f64);
        self.metrics.batch_entries.record(entries as f64);
        if let Err(e) = &result {
            tracing::error!(error = %e, "raft log write failed");
        }
        for completion in completions {
            let outcome = result.clone().map_err(io::Error::other);
            match completion {
                Completion::Flushed {
                    state,
                    written,
                    callback,
                } => {
                    if outcome.is_ok() {
                        state.mark_durable(&written);
                    }
                    callback.io_completed(outcome);
                }
                Completion::Done(done) => {
                    let _ = done.send(outcome);
                }
            }
        }
    }
}
