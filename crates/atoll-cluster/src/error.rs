use thiserror::Error;

/// Errors of the control plane and of routing.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// No table of that name (or it is being deleted).
    #[error("table {0} not found")]
    TableNotFound(String),
    /// A table of that name already exists.
    #[error("table {0} already exists")]
    TableExists(String),
    /// The table is being created, updated or deleted.
    #[error("table {0} is in use")]
    TableInUse(String),
    /// DeleteTable on a table with deletion protection.
    #[error("table {0} has deletion protection enabled")]
    DeletionProtected(String),
    /// UpdateTable asked for the throughput the table already has.
    #[error("provisioned throughput unchanged")]
    ThroughputUnchanged,
    /// UpdateTable changed nothing at all.
    #[error("nothing to update")]
    NothingToUpdate,
    /// A tag operation would exceed the 50 tags a resource may carry.
    #[error("too many tags")]
    TooManyTags,
    /// The partition owning a token is not served here.
    #[error("no partition serves token {token:#018x} of table {table}")]
    NoPartition {
        /// Table name.
        table: String,
        /// The token.
        token: u64,
    },
    /// The partition map kept moving under a write (splits in quick
    /// succession); retrying it later succeeds.
    #[error("the partition owning a key of table {table} moved; retry")]
    PartitionMoved {
        /// Table name.
        table: String,
    },
    /// A node id that was decommissioned tried to register again.
    #[error(
        "node {0} was decommissioned and may not rejoin under that id; start it with a new --node-id and an empty data directory"
    )]
    NodeRemoved(String),
    /// A node the request named is not registered.
    #[error("node {0} is not a registered node of the cluster")]
    UnknownNode(u64),
    /// Decommissioning the node would leave no node to hold the data.
    #[error("node {0} is the last node of the cluster; it cannot be decommissioned")]
    LastNode(u64),
    /// Replication failed.
    #[error(transparent)]
    Replication(#[from] atoll_replication::ReplicationError),
    /// The partition layer failed.
    #[error(transparent)]
    Partition(#[from] atoll_partition::PartitionError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] atoll_storage::StorageError),
    /// The catalog's state could not be decoded or a command produced nothing.
    #[error("catalog: {0}")]
    Catalog(String),
}

impl ClusterError {
    /// Whether the same request may succeed if retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClusterError::Replication(e) => e.is_retryable(),
            ClusterError::TableInUse(_) | ClusterError::PartitionMoved { .. } => true,
            _ => false,
        }
    }
}
