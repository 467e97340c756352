//! The bridge between openraft's state machine interface and a group's own
//! state machine (a partition, or the metadata catalog).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use atoll_storage::{Bytes, Durability, Keyspace, ReadView, Storage, StorageError, WriteBatch};

use crate::snapshot::{
    GroupSnapshot, ImportWriter, SnapshotReader, SnapshotWriter, Spool, installing_path, read_spool,
};
use futures_util::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StoredMembership};

use crate::codec::{MetaTag, decode, encode, io_error, meta_key};
use crate::typ::{self, LogId, SnapshotMeta};
use crate::{ApplyOutput, GroupId, TypeConfig};

/// A group's deterministic state machine: every replica applies the same
/// commands in the same order and computes the same state.
pub trait GroupStateMachine: Send + Sync + 'static {
    /// What applying a command produces, handed to its proposer
    /// (`Group::propose`) on the replica that proposed it.
    type Output: Clone + Send + Sync + 'static;

    /// Applies one committed command. Its writes go into `ctx`, which commits
    /// them atomically with the group's applied index.
    fn apply(
        &self,
        ctx: &mut ApplyContext,
        log_index: u64,
        command: &[u8],
    ) -> Result<Self::Output, StorageError>;

    /// Writes the group's whole state as `view` sees it to `out`, in the
    /// form `import` reads: what a snapshot sends to a replica that is too
    /// far behind. Records are written as they are read, never gathered.
    fn export(&self, view: &ReadView, out: &mut SnapshotWriter<'_>) -> Result<(), StorageError> {
        let _ = (view, out);
        Err(unsupported("exporting this group's state"))
    }

    /// Replaces the group's whole state with the export `input` reads;
    /// the writes go through `out`, whose last batch commits with the
    /// snapshot's position. An import that stops half-way (a crash) is
    /// started again from the beginning, on whatever it had written.
    fn import(
        &self,
        input: &mut SnapshotReader,
        out: &mut ImportWriter,
    ) -> Result<(), StorageError> {
        let _ = (input, out);
        Err(unsupported("importing this group's state"))
    }
}

/// A `GroupStateMachine` with its output type erased. openraft's type
/// configuration names one response type for every group of the node, so
/// the groups' outputs travel through it as `ApplyOutput`; `Group<O>` turns
/// them back into the state machine's own type, the only place that does.
pub(crate) trait ErasedStateMachine: Send + Sync + 'static {
    fn apply_erased(
        &self,
        ctx: &mut ApplyContext,
        log_index: u64,
        command: &[u8],
    ) -> Result<ApplyOutput, StorageError>;

    fn export(&self, view: &ReadView, out: &mut SnapshotWriter<'_>) -> Result<(), StorageError>;

    fn import(
        &self,
        input: &mut SnapshotReader,
        out: &mut ImportWriter,
    ) -> Result<(), StorageError>;
}

impl<S: GroupStateMachine> ErasedStateMachine for S {
    fn apply_erased(
        &self,
        ctx: &mut ApplyContext,
        log_index: u64,
        command: &[u8],
    ) -> Result<ApplyOutput, StorageError> {
        GroupStateMachine::apply(self, ctx, log_index, command).map(ApplyOutput::new)
    }

    fn export(&self, view: &ReadView, out: &mut SnapshotWriter<'_>) -> Result<(), StorageError> {
        GroupStateMachine::export(self, view, out)
    }

    fn import(
        &self,
        input: &mut SnapshotReader,
        out: &mut ImportWriter,
    ) -> Result<(), StorageError> {
        GroupStateMachine::import(self, input, out)
    }
}

fn unsupported(what: &str) -> StorageError {
    StorageError::Io(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not supported"),
    ))
}

/// A keyspace and a key in it.
type KeyspaceKey = (Arc<str>, Vec<u8>);

/// The last write to a key in an apply round: its keyspace and new value (None: deleted).
type PendingWrite = (Keyspace, Option<Vec<u8>>);

/// Reads and writes of one apply round; later commands of the round see the
/// writes of earlier ones.
pub struct ApplyContext {
    // Last write per key: an engine batch must not hold one key twice.
    writes: HashMap<KeyspaceKey, PendingWrite>,
}

impl Default for ApplyContext {
    fn default() -> Self {
        ApplyContext::new()
    }
}

impl ApplyContext {
    /// An empty round (state machines' unit tests drive `apply` with one).
    pub fn new() -> Self {
        ApplyContext {
            writes: HashMap::new(),
        }
    }

    /// Reads `key`, seeing this round's earlier writes.
    pub fn get(&self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        if let Some((_, value)) = self.writes.get(&(Arc::from(keyspace.name()), key.to_vec())) {
            return Ok(value.as_ref().map(|v| Bytes::from(v.as_slice())));
        }
        keyspace.get(key)
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, keyspace: &Keyspace, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(
            (Arc::from(keyspace.name()), key),
            (keyspace.clone(), Some(value)),
        );
    }

    /// Removes `key`.
    pub fn delete(&mut self, keyspace: &Keyspace, key: Vec<u8>) {
        self.writes
            .insert((Arc::from(keyspace.name()), key), (keyspace.clone(), None));
    }

    /// This round's writes to `keyspace` with keys from `start` on (up to,
    /// not including, `end` when given): key and new value (`None`: removed).
    /// Range reads inside `apply` overlay these on what the engine holds.
    pub fn pending_in_range(
        &self,
        keyspace: &Keyspace,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.writes
            .iter()
            .filter(|((name, key), _)| {
                **name == *keyspace.name()
                    && key.as_slice() >= start
                    && end.is_none_or(|end| key.as_slice() < end)
            })
            .map(|((_, key), (_, value))| (key.clone(), value.clone()))
            .collect()
    }

    /// The round's writes as one engine batch.
    pub fn into_batch(self) -> WriteBatch {
        let mut batch = WriteBatch::new();
        for ((_, key), (keyspace, value)) in self.writes {
            match value {
                Some(value) => batch.put(&keyspace, key, value),
                None => batch.delete(&keyspace, key),
            }
        }
        batch
    }
}

/// openraft's view of a group's state machine.
pub(crate) struct GroupSm {
    group: GroupId,
    storage: Storage,
    sm_meta: Keyspace,
    inner: Arc<dyn ErasedStateMachine>,
    applied: Option<LogId>,
    membership: typ::StoredMembership,
    // Set while a received snapshot is imported, in batches: a local read
    // meanwhile would see the state half old, half new.
    installing: Arc<AtomicBool>,
}

impl GroupSm {
    /// Loads the applied state of `group`; `installing` is raised while a
    /// snapshot is being imported.
    pub(crate) fn open(
        group: GroupId,
        storage: Storage,
        sm_meta: Keyspace,
        inner: Arc<dyn ErasedStateMachine>,
        installing: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let applied = match sm_meta
            .get(&meta_key(group, MetaTag::Applied))
            .map_err(io_error)?
        {
            Some(bytes) => decode(&bytes)?,
            None => None,
        };
        let membership = match sm_meta
            .get(&meta_key(group, MetaTag::Membership))
            .map_err(io_error)?
        {
            Some(bytes) => decode(&bytes)?,
            None => StoredMembership::default(),
        };
        Ok(GroupSm {
            group,
            storage,
            sm_meta,
            inner,
            applied,
            membership,
            installing,
        })
    }

    /// Finishes an install that a crash interrupted (its marker is still
    /// there) by importing the kept snapshot again, before the group
    /// starts: the state is part old, part new until then. Removes a kept
    /// snapshot whose install had finished.
    pub(crate) async fn resume_install(&mut self) -> io::Result<()> {
        // The in-memory engine installs in one go and keeps no spool.
        let Some(dir) = self.storage.spool_dir() else {
            return Ok(());
        };
        let path = installing_path(&dir, self.group);
        let marker = self
            .sm_meta
            .get(&meta_key(self.group, MetaTag::Installing))
            .map_err(io_error)?;
        let Some(marker) = marker else {
            return remove_if_present(&path);
        };
        let meta: SnapshotMeta = decode(&marker)?;
        tracing::warn!(
            group = self.group,
            "importing again a snapshot whose install a stop interrupted"
        );
        let parts = self.install_parts();
        let (meta_owned, kept) = (meta.clone(), path.clone());
        blocking(&self.storage, move || {
            import_and_commit(&parts, &meta_owned, read_spool(&kept)?)
        })
        .await??;
        remove_if_present(&path)?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership;
        Ok(())
    }

    fn install_parts(&self) -> InstallParts {
        InstallParts {
            group: self.group,
            storage: self.storage.clone(),
            sm_meta: self.sm_meta.clone(),
            inner: self.inner.clone(),
        }
    }
}

/// Removes group `group`'s applied-state records and any snapshot kept for
/// an install (its state machine's own data is the caller's to drop).
pub(crate) fn delete_group_records(
    storage: &Storage,
    sm_meta: &Keyspace,
    group: GroupId,
) -> io::Result<()> {
    let mut batch = WriteBatch::new();
    for tag in [
        MetaTag::Applied,
        MetaTag::Membership,
        MetaTag::Snapshot,
        MetaTag::Installing,
    ] {
        batch.delete(sm_meta, meta_key(group, tag).to_vec());
    }
    storage
        .commit(batch, Durability::Buffered)
        .map_err(io_error)?;
    match storage.spool_dir() {
        Some(dir) => remove_if_present(&installing_path(&dir, group)),
        None => Ok(()),
    }
}

fn remove_if_present(path: &std::path::Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What installing a snapshot needs, taken to a blocking thread.
struct InstallParts {
    group: GroupId,
    storage: Storage,
    sm_meta: Keyspace,
    inner: Arc<dyn ErasedStateMachine>,
}

/// Installs a received snapshot. A spooled one is first kept under the
/// group's name and marked as being installed, durably: a crash during the
/// import (which commits in many batches) is then finished at the next
/// start, instead of leaving a state that matches no log position.
fn install_received(parts: &InstallParts, meta: &SnapshotMeta, spool: Spool) -> io::Result<()> {
    let file = match spool {
        Spool::Memory(_) => return import_and_commit(parts, meta, spool.reader()?),
        Spool::File(file) => file,
    };
    let dir = parts
        .storage
        .spool_dir()
        .ok_or_else(|| io::Error::other("a spooled snapshot on an engine without a spool"))?;
    let kept = installing_path(&dir, parts.group);
    file.keep_as(&kept)?;
    let mut marker = WriteBatch::new();
    marker.put(
        &parts.sm_meta,
        meta_key(parts.group, MetaTag::Installing).to_vec(),
        encode(meta)?,
    );
    parts
        .storage
        .commit(marker, Durability::Synced)
        .map_err(io_error)?;
    import_and_commit(parts, meta, read_spool(&kept)?)?;
    remove_if_present(&kept)
}

/// Imports the snapshot `reader` reads, then commits its position with
/// the last of the import's writes (and lifts the install marker), synced:
/// the log behind the snapshot is gone, so the state must be durable.
fn import_and_commit(
    parts: &InstallParts,
    meta: &SnapshotMeta,
    mut reader: SnapshotReader,
) -> io::Result<()> {
    let mut out = ImportWriter::new(parts.storage.clone());
    parts
        .inner
        .import(&mut reader, &mut out)
        .map_err(io_error)?;
    reader.expect_end()?;
    let mut batch = out.into_batch();
    let records = [
        (MetaTag::Applied, encode(&meta.last_log_id)?),
        (MetaTag::Membership, encode(&meta.last_membership)?),
        (MetaTag::Snapshot, encode(meta)?),
    ];
    for (tag, value) in records {
        batch.put(&parts.sm_meta, meta_key(parts.group, tag).to_vec(), value);
    }
    batch.delete(
        &parts.sm_meta,
        meta_key(parts.group, MetaTag::Installing).to_vec(),
    );
    parts
        .storage
        .commit(batch, Durability::Synced)
        .map_err(io_error)
}

/// Builds snapshots of a group.
pub(crate) struct GroupSnapshotBuilder {
    group: GroupId,
    storage: Storage,
    sm_meta: Keyspace,
    meta: SnapshotMeta,
    // Taken with `meta`, on the state machine's task, so the two agree.
    view: ReadView,
    sm: Arc<dyn ErasedStateMachine>,
}

impl RaftSnapshotBuilder<TypeConfig> for GroupSnapshotBuilder {
    type SnapshotData = GroupSnapshot;

    async fn build_snapshot(
        &mut self,
    ) -> Result<openraft::alias::SnapshotOf<TypeConfig, GroupSnapshot>, io::Error> {
        // Everything applied up to the snapshot point is made durable here,
        // because openraft purges the log behind a snapshot.
        let storage = self.storage.clone();
        let mut batch = WriteBatch::new();
        batch.put(
            &self.sm_meta,
            meta_key(self.group, MetaTag::Snapshot).to_vec(),
            encode(&self.meta)?,
        );
        blocking(&self.storage, move || {
            storage.commit(batch, Durability::Synced)
        })
        .await?
        .map_err(io_error)?;
        Ok(openraft::Snapshot {
            meta: self.meta.clone(),
            snapshot: GroupSnapshot::Local {
                view: self.view.clone(),
                sm: self.sm.clone(),
            },
        })
    }
}

struct ApplyRound {
    outputs: Vec<ApplyOutput>,
    applied: Option<LogId>,
    membership: Option<typ::StoredMembership>,
}

impl RaftStateMachine<TypeConfig> for GroupSm {
    type SnapshotData = GroupSnapshot;
    type SnapshotBuilder = GroupSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, typ::StoredMembership), io::Error> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut round = Vec::new();
        while let Some(item) = entries.try_next().await? {
            round.push(item);
        }
        if round.is_empty() {
            return Ok(());
        }
        let mut responders = Vec::with_capacity(round.len());
        let mut payloads = Vec::with_capacity(round.len());
        for (entry, responder) in round {
            responders.push(responder);
            payloads.push((entry.log_id, entry.payload));
        }
        let group = self.group;
        let storage = self.storage.clone();
        let sm_meta = self.sm_meta.clone();
        let inner = self.inner.clone();
        let applied_before = self.applied;
        // Applying reads and writes the engine, and a commit may wait behind
        // an fsync of the log writer: keep that off the async workers.
        let outcome = blocking(&self.storage, move || -> io::Result<ApplyRound> {
            let mut ctx = ApplyContext::new();
            let mut outputs = Vec::with_capacity(payloads.len());
            let mut applied = applied_before;
            let mut membership = None;
            for (log_id, payload) in payloads {
                // The applied index only grows: an entry applied twice, or
                // out of order, would make replicas diverge.
                debug_assert!(
                    applied.is_none_or(|before: LogId| log_id.index > before.index),
                    "group {group}: entry {} applied after {applied:?}",
                    log_id.index
                );
                let output = match payload {
                    EntryPayload::Blank => ApplyOutput::default(),
                    EntryPayload::Normal(command) => inner
                        .apply_erased(&mut ctx, log_id.index, &command.0)
                        .map_err(io_error)?,
                    EntryPayload::Membership(m) => {
                        membership = Some(StoredMembership::new(Some(log_id), m));
                        ApplyOutput::default()
                    }
                };
                outputs.push(output);
                applied = Some(log_id);
            }
            let mut batch = ctx.into_batch();
            batch.put(
                &sm_meta,
                meta_key(group, MetaTag::Applied).to_vec(),
                encode(&applied)?,
            );
            if let Some(m) = &membership {
                batch.put(
                    &sm_meta,
                    meta_key(group, MetaTag::Membership).to_vec(),
                    encode(m)?,
                );
            }
            // Not fsynced: the durable log replays anything lost.
            storage
                .commit(batch, Durability::Buffered)
                .map_err(io_error)?;
            Ok(ApplyRound {
                outputs,
                applied,
                membership,
            })
        })
        .await??;
        self.applied = outcome.applied;
        if let Some(m) = outcome.membership {
            self.membership = m;
        }
        for (responder, output) in responders.into_iter().zip(outcome.outputs) {
            if let Some(responder) = responder {
                responder.send(output);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        GroupSnapshotBuilder {
            group: self.group,
            storage: self.storage.clone(),
            sm_meta: self.sm_meta.clone(),
            meta: SnapshotMeta {
                last_log_id: self.applied,
                last_membership: self.membership.clone(),
            },
            view: self.storage.read_view(),
            sm: self.inner.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: GroupSnapshot,
    ) -> Result<(), io::Error> {
        let GroupSnapshot::Received(spool) = snapshot else {
            return Err(io::Error::other("a local snapshot cannot be installed"));
        };
        let parts = self.install_parts();
        let meta_owned = meta.clone();
        self.installing.store(true, Ordering::SeqCst);
        let outcome = blocking(&self.storage, move || {
            install_received(&parts, &meta_owned, spool)
        })
        .await;
        self.installing.store(false, Ordering::SeqCst);
        outcome??;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    /// The state as of the last applied entry, made durable first: a peer
    /// that receives it skips the log up to that entry, so the snapshot's
    /// position and the state it carries must agree, and must survive.
    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::alias::SnapshotOf<TypeConfig, GroupSnapshot>>, io::Error> {
        if self.applied.is_none() {
            return Ok(None);
        }
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
        };
        let stored: Option<SnapshotMeta> = match self
            .sm_meta
            .get(&meta_key(self.group, MetaTag::Snapshot))
            .map_err(io_error)?
        {
            Some(bytes) => Some(decode(&bytes)?),
            None => None,
        };
        if stored.as_ref().map(|m| m.last_log_id) != Some(meta.last_log_id) {
            let storage = self.storage.clone();
            let mut batch = WriteBatch::new();
            batch.put(
                &self.sm_meta,
                meta_key(self.group, MetaTag::Snapshot).to_vec(),
                encode(&meta)?,
            );
            blocking(&self.storage, move || {
                storage.commit(batch, Durability::Synced)
            })
            .await?
            .map_err(io_error)?;
        }
        Ok(Some(openraft::Snapshot {
            meta,
            snapshot: GroupSnapshot::Local {
                view: self.storage.read_view(),
                sm: self.inner.clone(),
            },
        }))
    }
}

/// Runs storage work off the async workers (a commit may wait behind an
/// fsync), or right here on the in-memory engine, whose commits are
/// immediate: inline work keeps tests and simulations free of thread timing.
async fn blocking<T: Send + 'static>(
    storage: &Storage,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    if storage.is_in_memory() {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work).await.map_err(io_error)
}
