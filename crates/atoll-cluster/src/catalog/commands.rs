//! The catalog's commands: what its log holds.

use atoll_model::table::{BillingMode, StreamSettings, TableClass, TableDefinition, TableStatus};
use serde::{Deserialize, Serialize};

use super::NodeRecord;

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

/// A global secondary index's new provisioned throughput (validated
/// against the request rules).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexThroughputUpdate {
    /// The index.
    pub index: String,
    /// New read capacity units.
    pub read: u64,
    /// New write capacity units.
    pub write: u64,
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
    /// `UpdateTable` that also changes global indexes' throughput (an
    /// UpdateTable without such changes stays `UpdateTable`, which nodes of
    /// earlier versions read).
    UpdateTableAndIndexes {
        /// Table name.
        name: String,
        /// The table's changes.
        update: TableUpdate,
        /// The indexes' new throughput.
        indexes: Vec<IndexThroughputUpdate>,
        /// The proposer's clock (epoch milliseconds).
        now_ms: u64,
    },
    /// Set an ACTIVE table's Time to Live (its checks made by the proposer).
    SetTimeToLive {
        /// Table name.
        name: String,
        /// The attribute.
        attribute: String,
        /// Whether expired items are deleted.
        enabled: bool,
        /// The proposer's clock (epoch milliseconds).
        now_ms: u64,
    },
}
