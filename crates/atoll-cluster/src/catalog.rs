//! The catalog state machine: table definitions and their partitions.
//!
//! The catalog is a Raft group like any partition, so table changes are
//! replicated log entries and every node can hold the same catalog. Checks that
//! depend on the catalog's state (does the table exist, is it protected) happen
//! in `apply`, where the state is authoritative.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use atoll_model::table::{TableDefinition, TableStatus};
use atoll_replication::{
    ApplyContext, GroupStateMachine, ImportWriter, SnapshotReader, SnapshotWriter,
};
use atoll_storage::{Keyspace, ReadView, StorageError};
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

mod codec;
mod commands;
mod global_indexes;
pub(crate) mod legacy;
mod nodes;
mod tables;

pub use commands::{CatalogCommand, CatalogCommandOf, IndexThroughputUpdate, TableUpdate};
use nodes::Placements;
pub use nodes::{GroupOrigin, NodeRecord};

const NEXT_GROUP_ID_KEY: &[u8] = b"next_group_id";
const TABLE_KEY_PREFIX: &[u8] = b"table:";
/// Group ids below this are reserved (0 is the catalog itself).
const FIRST_PARTITION_GROUP_ID: u64 = 16;

impl CatalogCommand {
    /// The command as the catalog's log holds it (see `codec`).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, ClusterError> {
        codec::encode(self).map_err(ClusterError::Catalog)
    }
}

/// A command as it travels to the catalog's leader (`codec`'s JSON).
pub(crate) fn encode_command(command: &CatalogCommand) -> Result<Vec<u8>, ClusterError> {
    codec::encode_json(command).map_err(ClusterError::Catalog)
}

/// Reads what `encode_command` wrote.
pub(crate) fn decode_command(bytes: &[u8]) -> Result<CatalogCommand, ClusterError> {
    codec::decode_json(bytes).map_err(ClusterError::Catalog)
}

/// A command's outcome as it travels back from the catalog's leader.
pub(crate) fn encode_outcome(outcome: &CatalogOutcome) -> Result<Vec<u8>, ClusterError> {
    let shaped: Result<Option<&TableDefinition>, &Rejection> =
        outcome.as_ref().map(|table| table.as_deref());
    codec::encode_json(&shaped).map_err(ClusterError::Catalog)
}

/// Reads what `encode_outcome` wrote.
pub(crate) fn decode_outcome(bytes: &[u8]) -> Result<CatalogOutcome, ClusterError> {
    let shaped: Result<Option<TableDefinition>, Rejection> =
        codec::decode_json(bytes).map_err(ClusterError::Catalog)?;
    Ok(shaped.map(|table| table.map(Arc::new)))
}

/// Why the catalog refused a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Rejection {
    NotFound,
    Exists,
    InUse,
    DeletionProtected,
    ThroughputUnchanged,
    TooManyTags,
    // Appended only: rejections travel in forwarded replies.
    NodeRemoved,
    /// The table has an index of that name.
    IndexExists,
    /// The table has no such global index.
    IndexNotFound,
    /// Another index of the table is being created or deleted.
    IndexBusy,
}

impl Rejection {
    pub(crate) fn into_error(self, name: &str) -> ClusterError {
        match self {
            Rejection::NotFound => ClusterError::TableNotFound(name.to_string()),
            Rejection::Exists => ClusterError::TableExists(name.to_string()),
            Rejection::InUse => ClusterError::TableInUse(name.to_string()),
            Rejection::DeletionProtected => ClusterError::DeletionProtected(name.to_string()),
            Rejection::ThroughputUnchanged => ClusterError::ThroughputUnchanged,
            Rejection::TooManyTags => ClusterError::TooManyTags,
            Rejection::NodeRemoved => ClusterError::NodeRemoved(name.to_string()),
            Rejection::IndexExists => ClusterError::IndexExists(name.to_string()),
            Rejection::IndexNotFound => ClusterError::IndexNotFound(name.to_string()),
            Rejection::IndexBusy => ClusterError::IndexBusy(name.to_string()),
        }
    }
}

/// The outcome of a catalog command.
pub(crate) type CatalogOutcome = Result<Option<Arc<TableDefinition>>, Rejection>;

/// Maximum tags per resource.
pub const MAX_TAGS: usize = 50;

/// The catalog's state machine, with its tables also held in memory.
pub(crate) struct CatalogStateMachine {
    keyspace: Keyspace,
    tables: RwLock<BTreeMap<String, Arc<TableDefinition>>>,
    next_group_id: RwLock<u64>,
    placements: Placements,
    /// Woken after every applied command, so nodes adjust what they host.
    pub(crate) changed: Arc<tokio::sync::Notify>,
    /// Woken after every applied command too, for the index changes the
    /// catalog's leader drives (a `Notify` wakes one waiter).
    pub(crate) index_work: Arc<tokio::sync::Notify>,
}

fn table_key(name: &str) -> Vec<u8> {
    let mut key = TABLE_KEY_PREFIX.to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        e.to_string(),
    ))
}

/// A table record as this version keeps it: a table an earlier version
/// created with a stream never counted that stream change, so its
/// partitions would never be told of it; it counts as change 1 (every
/// replica decodes alike, so all agree).
fn decode_table(bytes: &[u8]) -> Result<TableDefinition, String> {
    let mut definition = codec::decode::<TableDefinition, legacy::TableDefinitionV1>(bytes)?;
    let streaming = definition.stream.as_ref().is_some_and(|s| s.enabled);
    if streaming && definition.stream_epoch == 0 {
        definition.stream_epoch = 1;
    }
    Ok(definition)
}

impl CatalogStateMachine {
    /// Loads the catalog from `keyspace`.
    pub(crate) fn open(keyspace: Keyspace) -> Result<Self, ClusterError> {
        let mut tables = BTreeMap::new();
        for entry in keyspace.prefix(TABLE_KEY_PREFIX) {
            let (_, value) = entry?;
            let definition = decode_table(&value).map_err(ClusterError::Catalog)?;
            tables.insert(definition.name.clone(), Arc::new(definition));
        }
        let next_group_id = match keyspace.get(NEXT_GROUP_ID_KEY)? {
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| ClusterError::Catalog("bad next group id".into()))?,
            ),
            None => FIRST_PARTITION_GROUP_ID,
        };
        let mut records = Vec::new();
        for prefix in nodes::PLACEMENT_KEY_PREFIXES {
            for entry in keyspace.prefix(prefix) {
                let (key, value) = entry?;
                records.push((key.to_vec(), value.to_vec()));
            }
        }
        let placements =
            Placements::load(records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))?;
        Ok(CatalogStateMachine {
            keyspace,
            tables: RwLock::new(tables),
            next_group_id: RwLock::new(next_group_id),
            placements,
            changed: Arc::new(tokio::sync::Notify::new()),
            index_work: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The table called `name`, in any state.
    pub(crate) fn table(&self, name: &str) -> Option<Arc<TableDefinition>> {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// All tables, ordered by name.
    pub(crate) fn tables(&self) -> Vec<Arc<TableDefinition>> {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Every registered node.
    pub(crate) fn nodes(&self) -> Vec<NodeRecord> {
        self.placements.nodes()
    }

    /// Whether node `node_id` is marked down (`SetNodeDown`).
    pub(crate) fn is_down(&self, node_id: u64) -> bool {
        self.placements.is_down(node_id)
    }

    /// Whether node `node_id` is being decommissioned (`SetNodeLeaving`).
    pub(crate) fn is_leaving(&self, node_id: u64) -> bool {
        self.placements.is_leaving(node_id)
    }

    /// The incarnation node `node_id` was first admitted as (`AdmitNode`).
    pub(crate) fn admitted_incarnation(&self, node_id: u64) -> Option<u64> {
        self.placements.admitted_incarnation(node_id)
    }

    /// Whether node `node_id` was decommissioned (`RemoveNode`).
    pub(crate) fn is_removed(&self, node_id: u64) -> bool {
        self.placements.is_removed(node_id)
    }

    /// The nodes holding group `group_id`'s replicas.
    pub(crate) fn replicas(&self, group_id: u64) -> Vec<u64> {
        self.placements.replicas(group_id)
    }

    /// How group `group_id` came to be.
    pub(crate) fn origin(&self, group_id: u64) -> GroupOrigin {
        self.placements.origin(group_id)
    }

    fn store(
        &self,
        ctx: &mut ApplyContext,
        definition: TableDefinition,
    ) -> Result<Arc<TableDefinition>, StorageError> {
        let bytes = codec::encode(&definition).map_err(corrupt)?;
        ctx.put(&self.keyspace, table_key(&definition.name), bytes);
        let definition = Arc::new(definition);
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(definition.name.clone(), definition.clone());
        Ok(definition)
    }

    fn active(&self, name: &str) -> Result<Arc<TableDefinition>, Rejection> {
        match self.table(name) {
            None => Err(Rejection::NotFound),
            Some(t) if t.status == TableStatus::Deleting => Err(Rejection::NotFound),
            Some(t) if t.status != TableStatus::Active => Err(Rejection::InUse),
            Some(t) => Ok(t),
        }
    }

    fn execute(
        &self,
        ctx: &mut ApplyContext,
        command: CatalogCommand,
    ) -> Result<CatalogOutcome, StorageError> {
        match command {
            CatalogCommand::CreateTable { definition } => self.create_table(ctx, *definition, None),
            CatalogCommand::CreateTableBy {
                definition,
                proposer,
            } => self.create_table(ctx, *definition, Some(proposer)),
            CatalogCommand::SetNodeDown { node_id, down } => {
                self.placements.set_down(ctx, &self.keyspace, node_id, down);
                Ok(Ok(None))
            }
            CatalogCommand::SetStatus {
                name,
                table_id,
                status,
            } => self.set_status(ctx, &name, &table_id, status),
            CatalogCommand::UpdateTable {
                name,
                update,
                now_ms,
            } => self.update_table(ctx, &name, &update, &[], now_ms),
            CatalogCommand::UpdateTableAndIndexes {
                name,
                update,
                indexes,
                now_ms,
            } => self.update_table(ctx, &name, &update, &indexes, now_ms),
            CatalogCommand::SetTimeToLive {
                name,
                attribute,
                enabled,
                now_ms,
            } => self.set_time_to_live(ctx, &name, (attribute, enabled), now_ms),
            CatalogCommand::BeginDelete { name } => self.begin_delete(ctx, &name),
            CatalogCommand::DropTable { name, table_id } => {
                self.drop_table(ctx, &name, &table_id);
                Ok(Ok(None))
            }
            CatalogCommand::Tag { name, tags } => self.tag(ctx, &name, tags),
            CatalogCommand::Untag { name, keys } => self.untag(ctx, &name, &keys),
            CatalogCommand::SplitPartition {
                name,
                table_id,
                group_id,
                at_token,
            } => {
                let founder = self.placements.origin(group_id).founder;
                self.split(ctx, name, table_id, group_id, at_token, founder)
            }
            CatalogCommand::SplitPartitionBy {
                name,
                table_id,
                group_id,
                at_token,
                founder,
            } => self.split(ctx, name, table_id, group_id, at_token, founder),
            CatalogCommand::SetNodeLeaving { node_id } => {
                self.placements.set_leaving(ctx, &self.keyspace, node_id);
                Ok(Ok(None))
            }
            CatalogCommand::AdmitNode {
                node_id,
                incarnation,
            } => {
                if self
                    .placements
                    .admit(ctx, &self.keyspace, node_id, incarnation)
                {
                    Ok(Ok(None))
                } else {
                    Ok(Err(Rejection::Exists))
                }
            }
            CatalogCommand::RemoveNode { node_id } => {
                if self.placements.remove_node(ctx, &self.keyspace, node_id) {
                    Ok(Ok(None))
                } else {
                    Ok(Err(Rejection::InUse))
                }
            }
            CatalogCommand::RegisterNode { node } => self.register_node(ctx, node),
            CatalogCommand::SetReplicas { group_id, replicas } => {
                self.placements
                    .set_replicas(ctx, &self.keyspace, group_id, replicas)?;
                Ok(Ok(None))
            }
            CatalogCommand::AddGlobalIndex {
                name,
                table_id,
                index,
            } => self.add_global_index(ctx, &name, &table_id, index),
            CatalogCommand::SetGlobalIndexState {
                name,
                table_id,
                index,
                status,
                backfilling,
            } => self.set_global_index_state(ctx, (&name, &table_id), &index, status, backfilling),
            CatalogCommand::RemoveGlobalIndex {
                name,
                table_id,
                index,
            } => self.remove_global_index(ctx, &name, &table_id, &index),
        }
    }

    /// Records a node as it starts (refused for a decommissioned id).
    fn register_node(
        &self,
        ctx: &mut ApplyContext,
        node: NodeRecord,
    ) -> Result<CatalogOutcome, StorageError> {
        if self.placements.is_removed(node.node_id) {
            return Ok(Err(Rejection::NodeRemoved));
        }
        if !self.placements.is_registered(node.node_id) {
            // Groups with no replica record live on the first registered
            // nodes; a new node must not change that.
            for table in self.tables() {
                for partition in &table.partitions {
                    self.placements
                        .pin_replicas(ctx, &self.keyspace, partition.group_id)?;
                }
            }
        }
        // A node registers as it starts: it is up.
        self.placements
            .set_down(ctx, &self.keyspace, node.node_id, false);
        self.placements.register(ctx, &self.keyspace, node)?;
        Ok(Ok(None))
    }
}

impl GroupStateMachine for CatalogStateMachine {
    type Output = CatalogOutcome;

    fn apply(
        &self,
        ctx: &mut ApplyContext,
        _log_index: u64,
        command: &[u8],
    ) -> Result<CatalogOutcome, StorageError> {
        let command =
            codec::decode::<CatalogCommand, legacy::CatalogCommandV1>(command).map_err(corrupt)?;
        let outcome = self.execute(ctx, command)?;
        self.changed.notify_one();
        self.index_work.notify_one();
        Ok(outcome)
    }

    /// Every record of the catalog keyspace (tables and the next group id).
    fn export(&self, view: &ReadView, out: &mut SnapshotWriter<'_>) -> Result<(), StorageError> {
        for pair in view.range(&self.keyspace, Bound::Unbounded, Bound::Unbounded) {
            let (key, value) = pair?;
            out.record(&key, &value)?;
        }
        Ok(())
    }

    /// Replaces every record, and the tables held in memory, with the
    /// export's (a catalog is small: its records are read whole).
    fn import(
        &self,
        input: &mut SnapshotReader,
        out: &mut ImportWriter,
    ) -> Result<(), StorageError> {
        let mut records = BTreeMap::new();
        while let Some((key, value)) = input.next_record()? {
            records.insert(key, value);
        }
        for pair in self
            .keyspace
            .range(Bound::Unbounded, Bound::Unbounded, false)
        {
            let (key, _) = pair?;
            if !records.contains_key(key.as_ref()) {
                out.delete(&self.keyspace, key.to_vec())?;
            }
        }
        let mut tables = BTreeMap::new();
        let mut next_group_id = FIRST_PARTITION_GROUP_ID;
        for (key, value) in &records {
            if key.starts_with(TABLE_KEY_PREFIX) {
                let definition = decode_table(value).map_err(corrupt)?;
                tables.insert(definition.name.clone(), Arc::new(definition));
            } else if key == NEXT_GROUP_ID_KEY {
                let bytes: [u8; 8] = value
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("bad next group id"))?;
                next_group_id = u64::from_be_bytes(bytes);
            }
            out.put(&self.keyspace, key.clone(), value.clone())?;
        }
        let placements =
            Placements::load(records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))?;
        self.placements.replace_with(placements);
        self.changed.notify_one();
        self.index_work.notify_one();
        *self.tables.write().unwrap_or_else(|e| e.into_inner()) = tables;
        *self
            .next_group_id
            .write()
            .unwrap_or_else(|e| e.into_inner()) = next_group_id;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
