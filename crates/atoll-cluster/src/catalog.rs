//! The catalog state machine: table definitions and their partitions.
//!
//! The catalog is a Raft group like any partition, so table changes are
//! replicated log entries and every node can hold the same catalog. Checks that
//! depend on the catalog's state (does the table exist, is it protected) happen
//! in `apply`, where the state is authoritative.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use atoll_model::table::{
    BillingMode, PartitionDefinition, StreamSettings, TableClass, TableDefinition, TableStatus,
};
use atoll_replication::{
    ApplyContext, GroupStateMachine, ImportWriter, SnapshotReader, SnapshotWriter,
};
use atoll_storage::{Keyspace, ReadView, StorageError};
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

mod codec;
mod global_indexes;
pub(crate) mod legacy;
mod nodes;

use nodes::Placements;
pub use nodes::{GroupOrigin, NodeRecord};

const NEXT_GROUP_ID_KEY: &[u8] = b"next_group_id";
const TABLE_KEY_PREFIX: &[u8] = b"table:";
/// Group ids below this are reserved (0 is the catalog itself).
const FIRST_PARTITION_GROUP_ID: u64 = 16;

/// Changes UpdateTable asks for (already validated against the request rules).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TableUpdate {
    /// New billing mode.
    pub billing_mode: Option<BillingMode>,
    /// New provisioned throughput (read, write).
    pub throughput: Option<(u64, u64)>,
    /// New deletion protection setting.
    pub deletion_protection: Option<bool>,
    /// New table class.
    pub table_class: Option<TableClass>,
    /// New stream settings.
    pub stream: Option<StreamSettings>,
}

/// A command of the catalog's log. Ids and timestamps are fixed by the
/// proposer so that every replica applies the same values.
pub type CatalogCommand = CatalogCommandOf<TableDefinition>;

/// The catalog's commands over a shape of table definition: today's
/// (`CatalogCommand`), or the one postcard entries of earlier versions
/// hold (`legacy::TableDefinitionV1`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CatalogCommandOf<D> {
    /// Add a table in CREATING state; apply assigns its partitions' groups.
    CreateTable {
        /// The definition, without partitions.
        definition: Box<D>,
    },
    /// Move a table to another state.
    SetStatus {
        /// Table name.
        name: String,
        /// Which incarnation of the name.
        table_id: String,
        /// The new state.
        status: TableStatus,
    },
    /// Change settings of an ACTIVE table.
    UpdateTable {
        /// Table name.
        name: String,
        /// The changes.
        update: TableUpdate,
        /// The proposer's clock (epoch milliseconds).
        now_ms: u64,
    },
    /// Start deleting a table (refused under deletion protection).
    BeginDelete {
        /// Table name.
        name: String,
    },
    /// Forget a deleted table.
    DropTable {
        /// Table name.
        name: String,
        /// Which incarnation of the name.
        table_id: String,
    },
    /// Add or overwrite tags.
    Tag {
        /// Table name.
        name: String,
        /// Tags to set.
        tags: Vec<(String, String)>,
    },
    /// Remove tags.
    Untag {
        /// Table name.
        name: String,
        /// Keys to remove.
        keys: Vec<String>,
    },
    /// Record that partition `group_id` gave tokens `at_token..` to a new
    /// partition (after its own log fenced them off); apply assigns the new
    /// partition's group. Applying it again changes nothing.
    SplitPartition {
        /// Table name.
        name: String,
        /// Which incarnation of the name.
        table_id: String,
        /// The partition that split.
        group_id: u64,
        /// First token of the new partition.
        at_token: u64,
    },
    /// Add or update a node of the cluster (each node registers at start).
    RegisterNode {
        /// The node.
        node: NodeRecord,
    },
    /// `SplitPartition`, naming the node that split it (the one that
    /// fenced the split through its log): it founds the new group.
    SplitPartitionBy {
        /// Table name.
        name: String,
        /// Which incarnation of the name.
        table_id: String,
        /// The partition that split.
        group_id: u64,
        /// First token of the new partition.
        at_token: u64,
        /// The node that split it.
        founder: u64,
    },
    /// Record the nodes that hold a partition's replicas (after a voter
    /// was replaced).
    SetReplicas {
        /// The partition's group.
        group_id: u64,
        /// The nodes, in no particular order.
        replicas: Vec<u64>,
    },
    /// `CreateTable`, naming the node that asked: it founds the table's
    /// group when it is one of the replicas (it is up; a rotating founder
    /// could be a node that is down but not yet taken for dead).
    CreateTableBy {
        /// The table (name, key schema, settings).
        definition: Box<D>,
        /// The node that proposed it.
        proposer: u64,
    },
    /// Mark a node down (silent for the dead-node time: new partitions and
    /// rebuilt replicas avoid it) or up again.
    SetNodeDown {
        /// The node.
        node_id: u64,
        /// Down, or up again.
        down: bool,
    },
    /// Start decommissioning a registered node: its replicas and its
    /// catalog seat move to other nodes.
    SetNodeLeaving {
        /// The node.
        node_id: u64,
    },
    /// Forget a decommissioned node for good (refused while a partition's
    /// replicas include it); its id may not register again.
    RemoveNode {
        /// The node.
        node_id: u64,
    },
    /// Record that a joining node was admitted as `incarnation` (refused
    /// when that id was admitted as another).
    AdmitNode {
        /// The node.
        node_id: u64,
        /// Drawn by the node when it first joined.
        incarnation: u64,
    },
    // New commands go last: postcard numbers variants in order, and the
    // log holds commands written by older versions.
    /// Add a global secondary index to an ACTIVE table, CREATING (its
    /// table already named), its key attributes merged into the table's
    /// attribute definitions.
    AddGlobalIndex {
        /// Table name.
        name: String,
        /// Which incarnation of the name.
        table_id: String,
        /// The index.
        index: atoll_model::table::GlobalIndex,
    },
    /// Change a global secondary index's state (DELETING stops the
    /// table's partitions feeding it).
    SetGlobalIndexState {
        /// Table name.
        name: String,
        /// Which incarnation of the name.
        table_id: String,
        /// The index.
        index: String,
        /// Its new status.
        status: atoll_model::table::IndexStatus,
        /// Whether it is backfilling.
        backfilling: bool,
    },
    /// Forget a deleted global secondary index, and the attribute
    /// definitions no key uses any more.
    RemoveGlobalIndex {
        /// Table name.
        name: String,
        /// Which incarnation of the name.
        table_id: String,
        /// The index.
        index: String,
    },
}

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

impl CatalogStateMachine {
    /// Loads the catalog from `keyspace`.
    pub(crate) fn open(keyspace: Keyspace) -> Result<Self, ClusterError> {
        let mut tables = BTreeMap::new();
        for entry in keyspace.prefix(TABLE_KEY_PREFIX) {
            let (_, value) = entry?;
            let definition = codec::decode::<TableDefinition, legacy::TableDefinitionV1>(&value)
                .map_err(ClusterError::Catalog)?;
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
            } => self.update_table(ctx, &name, &update, now_ms),
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

    /// Sets the status of table `name`, if it is still the one `table_id` names.
    fn set_status(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        table_id: &str,
        status: TableStatus,
    ) -> Result<CatalogOutcome, StorageError> {
        match self.table(name) {
            Some(t) if t.table_id == table_id => {
                let mut definition = (*t).clone();
                definition.status = status;
                Ok(Ok(Some(self.store(ctx, definition)?)))
            }
            _ => Ok(Err(Rejection::NotFound)),
        }
    }

    /// Applies an UpdateTable to an ACTIVE table.
    fn update_table(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        update: &TableUpdate,
        now_ms: u64,
    ) -> Result<CatalogOutcome, StorageError> {
        let current = match self.active(name) {
            Ok(t) => t,
            Err(r) => return Ok(Err(r)),
        };
        match apply_update(&current, update, now_ms) {
            Ok(updated) => Ok(Ok(Some(self.store(ctx, updated)?))),
            Err(r) => Ok(Err(r)),
        }
    }

    /// Marks an ACTIVE, unprotected table DELETING.
    fn begin_delete(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
    ) -> Result<CatalogOutcome, StorageError> {
        let current = match self.table(name) {
            None => return Ok(Err(Rejection::NotFound)),
            Some(t) if t.status == TableStatus::Deleting => {
                return Ok(Err(Rejection::NotFound));
            }
            Some(t) if t.status != TableStatus::Active => return Ok(Err(Rejection::InUse)),
            Some(t) => t,
        };
        if current.deletion_protection {
            return Ok(Err(Rejection::DeletionProtected));
        }
        let mut definition = (*current).clone();
        definition.status = TableStatus::Deleting;
        Ok(Ok(Some(self.store(ctx, definition)?)))
    }

    /// Forgets table `name` and its partitions' placements, if it is still
    /// the one `table_id` names (dropping twice is harmless).
    fn drop_table(&self, ctx: &mut ApplyContext, name: &str, table_id: &str) {
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        if tables.get(name).is_some_and(|t| t.table_id == table_id) {
            if let Some(dropped) = tables.remove(name) {
                for partition in &dropped.partitions {
                    self.placements
                        .forget_group(ctx, &self.keyspace, partition.group_id);
                }
            }
            ctx.delete(&self.keyspace, table_key(name));
        }
    }

    /// Adds or overwrites tags, up to `MAX_TAGS`.
    fn tag(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        tags: Vec<(String, String)>,
    ) -> Result<CatalogOutcome, StorageError> {
        let current = match self.table(name) {
            Some(t) if t.status != TableStatus::Deleting => t,
            _ => return Ok(Err(Rejection::NotFound)),
        };
        let mut definition = (*current).clone();
        for (key, value) in tags {
            match definition.tags.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 = value,
                None => definition.tags.push((key, value)),
            }
        }
        if definition.tags.len() > MAX_TAGS {
            return Ok(Err(Rejection::TooManyTags));
        }
        Ok(Ok(Some(self.store(ctx, definition)?)))
    }

    /// Removes tags.
    fn untag(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        keys: &[String],
    ) -> Result<CatalogOutcome, StorageError> {
        let current = match self.table(name) {
            Some(t) if t.status != TableStatus::Deleting => t,
            _ => return Ok(Err(Rejection::NotFound)),
        };
        let mut definition = (*current).clone();
        definition.tags.retain(|(k, _)| !keys.contains(k));
        Ok(Ok(Some(self.store(ctx, definition)?)))
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

    /// Creates a table with one partition placed on new replicas. Its
    /// founder (usually its first leader) is `proposer` when that is one of
    /// them, otherwise one rotating over the replicas by group id, which
    /// spreads leaderships (leadership balancing evens them out later).
    fn create_table(
        &self,
        ctx: &mut ApplyContext,
        mut definition: TableDefinition,
        proposer: Option<u64>,
    ) -> Result<CatalogOutcome, StorageError> {
        if self.table(&definition.name).is_some() {
            return Ok(Err(Rejection::Exists));
        }
        let group_id = self.allocate_group_id(ctx);
        let replicas = self.placements.place_new();
        let founder = match proposer {
            Some(node) if replicas.contains(&node) => node,
            _ => replicas
                .get(group_id as usize % replicas.len().max(1))
                .copied()
                .unwrap_or_default(),
        };
        self.placements
            .set_replicas(ctx, &self.keyspace, group_id, replicas)?;
        let origin = GroupOrigin {
            founder,
            split_from: None,
        };
        self.placements
            .set_origin(ctx, &self.keyspace, group_id, origin)?;
        definition.partitions = vec![PartitionDefinition {
            group_id,
            start_token: 0,
            end_token: u64::MAX,
        }];
        definition.status = TableStatus::Creating;
        Ok(Ok(Some(self.store(ctx, definition)?)))
    }

    /// Records that partition `group_id` gave tokens `at_token..` to a new
    /// partition founded by `founder`. Recording it again changes nothing.
    fn split(
        &self,
        ctx: &mut ApplyContext,
        name: String,
        table_id: String,
        group_id: u64,
        at_token: u64,
        founder: u64,
    ) -> Result<CatalogOutcome, StorageError> {
        {
            let current = match self.table(&name) {
                Some(t) if t.table_id == table_id => t,
                _ => return Ok(Err(Rejection::NotFound)),
            };
            let already = current
                .partitions
                .iter()
                .any(|p| p.start_token == at_token && p.group_id != group_id);
            if already {
                return Ok(Ok(Some(current)));
            }
            let Some(at) = current.partitions.iter().position(|p| {
                p.group_id == group_id && p.start_token < at_token && at_token <= p.end_token
            }) else {
                return Ok(Err(Rejection::NotFound));
            };
            let mut definition = (*current).clone();
            let new_group_id = self.allocate_group_id(ctx);
            let Some(old) = definition.partitions.get_mut(at) else {
                return Ok(Err(Rejection::NotFound));
            };
            let upper = PartitionDefinition {
                group_id: new_group_id,
                start_token: at_token,
                end_token: old.end_token,
            };
            old.end_token = at_token - 1;
            definition.partitions.insert(at + 1, upper);
            // The new partition starts on its parent's copies of the items.
            let replicas = self.placements.replicas(group_id);
            self.placements
                .set_replicas(ctx, &self.keyspace, new_group_id, replicas)?;
            let origin = GroupOrigin {
                founder,
                split_from: Some(group_id),
            };
            self.placements
                .set_origin(ctx, &self.keyspace, new_group_id, origin)?;
            Ok(Ok(Some(self.store(ctx, definition)?)))
        }
    }

    fn allocate_group_id(&self, ctx: &mut ApplyContext) -> u64 {
        let mut next = self
            .next_group_id
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let id = *next;
        *next += 1;
        ctx.put(
            &self.keyspace,
            NEXT_GROUP_ID_KEY.to_vec(),
            next.to_be_bytes().to_vec(),
        );
        id
    }
}

/// Computes the definition after `update`, with DynamoDB's bookkeeping of
/// capacity changes.
fn apply_update(
    current: &TableDefinition,
    update: &TableUpdate,
    now_ms: u64,
) -> Result<TableDefinition, Rejection> {
    let mut next = current.clone();
    let switching_mode = update
        .billing_mode
        .is_some_and(|mode| mode != current.billing_mode);
    if let Some(mode) = update.billing_mode {
        next.billing_mode = mode;
        if switching_mode && mode == BillingMode::PayPerRequest {
            next.throughput.read_capacity_units = 0;
            next.throughput.write_capacity_units = 0;
            next.last_on_demand_switch_ms = Some(now_ms);
        }
        // A table created on demand has been on demand since its creation;
        // DynamoDB still dates that after it moves to provisioned.
        if switching_mode && mode == BillingMode::Provisioned {
            next.last_on_demand_switch_ms = current
                .last_on_demand_switch_ms
                .or(Some(current.created_ms));
        }
    }
    if let Some((read, write)) = update.throughput {
        let old_read = current.throughput.read_capacity_units;
        let old_write = current.throughput.write_capacity_units;
        if !switching_mode && read == old_read && write == old_write {
            return Err(Rejection::ThroughputUnchanged);
        }
        if read > old_read || write > old_write {
            next.throughput.last_increase_ms = Some(now_ms);
        }
        if (read < old_read || write < old_write) && !switching_mode {
            next.throughput.last_decrease_ms = Some(now_ms);
            next.throughput.decreases_today += 1;
        }
        next.throughput.read_capacity_units = read;
        next.throughput.write_capacity_units = write;
    }
    if let Some(protection) = update.deletion_protection {
        next.deletion_protection = protection;
    }
    if let Some(class) = update.table_class {
        next.table_class = class;
    }
    if let Some(stream) = &update.stream {
        next.stream = Some(stream.clone());
    }
    Ok(next)
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
                let definition = codec::decode::<TableDefinition, legacy::TableDefinitionV1>(value)
                    .map_err(corrupt)?;
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
