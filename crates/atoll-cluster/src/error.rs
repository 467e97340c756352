use atoll_partition::WriteRejection;
use atoll_replication::{NodeId, ReplicationError};
use serde::{Deserialize, Serialize};
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
    /// A key's attributes are missing or not of the key schema's types.
    #[error("the key does not match the key schema")]
    KeyMismatch,
    /// A key value could not be encoded as a row key.
    #[error("unencodable key: {0}")]
    KeyEncoding(String),
    /// The table already has an index of that name.
    #[error("table {0} already has an index of that name")]
    IndexExists(String),
    /// The table has no such global secondary index.
    #[error("table {0} has no such global index")]
    IndexNotFound(String),
    /// Another index of the table is being created or deleted.
    #[error("an index of table {0} is being created or deleted")]
    IndexBusy(String),
    /// The partition refused a write for the item as it is; nothing was written.
    #[error("write rejected: {0}")]
    Rejected(WriteRejection),
    /// A partition answered a command with an outcome of another command
    /// (a bug, never the client's doing).
    #[error("unexpected outcome: {0}")]
    UnexpectedOutcome(String),
    /// A single write met an item a transaction holds; nothing was written.
    #[error("a transaction is ongoing for the item")]
    TransactionConflict,
    /// A transaction with the same request token is running now.
    #[error("a transaction with the same request token is in progress")]
    TransactionInProgress,
    /// The request token was used for another request within the window.
    #[error("the request token was used for another request")]
    IdempotentMismatch,
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

/// A `ClusterError` as it crosses nodes in a forwarded request's answer:
/// the kinds a caller acts on travel as themselves; the rest as their text,
/// saying whether the request certainly had no effect.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum RemoteError {
    TableNotFound(String),
    TableExists(String),
    TableInUse(String),
    DeletionProtected(String),
    ThroughputUnchanged,
    NothingToUpdate,
    TooManyTags,
    NoPartition {
        table: String,
        token: u64,
    },
    PartitionMoved {
        table: String,
    },
    NodeRemoved(String),
    UnknownNode(u64),
    LastNode(u64),
    Rejected(WriteRejection),
    KeyMismatch,
    /// Any other error: its text, and whether it is retryable.
    Other {
        message: String,
        retryable: bool,
    }, // Appended only: postcard numbers variants, and nodes of two versions
       // talk during a rolling upgrade.
}

impl From<ClusterError> for RemoteError {
    fn from(error: ClusterError) -> RemoteError {
        use ClusterError as E;
        match error {
            E::TableNotFound(name) => RemoteError::TableNotFound(name),
            E::TableExists(name) => RemoteError::TableExists(name),
            E::TableInUse(name) => RemoteError::TableInUse(name),
            E::DeletionProtected(name) => RemoteError::DeletionProtected(name),
            E::ThroughputUnchanged => RemoteError::ThroughputUnchanged,
            E::NothingToUpdate => RemoteError::NothingToUpdate,
            E::TooManyTags => RemoteError::TooManyTags,
            E::NoPartition { table, token } => RemoteError::NoPartition { table, token },
            E::PartitionMoved { table } => RemoteError::PartitionMoved { table },
            E::NodeRemoved(node) => RemoteError::NodeRemoved(node),
            E::UnknownNode(node) => RemoteError::UnknownNode(node),
            E::LastNode(node) => RemoteError::LastNode(node),
            E::Rejected(rejection) => RemoteError::Rejected(rejection),
            E::KeyMismatch => RemoteError::KeyMismatch,
            other => RemoteError::Other {
                retryable: other.is_retryable(),
                message: other.to_string(),
            },
        }
    }
}

impl RemoteError {
    /// The error as the caller sees it, `node` having answered with it. An
    /// untyped retryable error counts as `node` being unreachable (the
    /// request is tried elsewhere); any other as an unknown outcome.
    pub(crate) fn into_error(self, node: NodeId) -> ClusterError {
        use ClusterError as E;
        match self {
            RemoteError::TableNotFound(name) => E::TableNotFound(name),
            RemoteError::TableExists(name) => E::TableExists(name),
            RemoteError::TableInUse(name) => E::TableInUse(name),
            RemoteError::DeletionProtected(name) => E::DeletionProtected(name),
            RemoteError::ThroughputUnchanged => E::ThroughputUnchanged,
            RemoteError::NothingToUpdate => E::NothingToUpdate,
            RemoteError::TooManyTags => E::TooManyTags,
            RemoteError::NoPartition { table, token } => E::NoPartition { table, token },
            RemoteError::PartitionMoved { table } => E::PartitionMoved { table },
            RemoteError::NodeRemoved(node) => E::NodeRemoved(node),
            RemoteError::UnknownNode(node) => E::UnknownNode(node),
            RemoteError::LastNode(node) => E::LastNode(node),
            RemoteError::Rejected(rejection) => E::Rejected(rejection),
            RemoteError::KeyMismatch => E::KeyMismatch,
            RemoteError::Other {
                message,
                retryable: true,
            } => E::Replication(ReplicationError::Unreachable {
                node,
                reason: message,
            }),
            RemoteError::Other { message, .. } => {
                E::Replication(ReplicationError::OutcomeUnknown(message))
            }
        }
    }

    /// Whether the request may succeed if retried.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            RemoteError::TableInUse(_) | RemoteError::PartitionMoved { .. } => true,
            RemoteError::Other { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every typed kind arrives as itself after a trip through postcard.
    #[test]
    fn typed_errors_cross_nodes_as_themselves() {
        let sent = [
            ClusterError::TableNotFound("t".into()),
            ClusterError::TooManyTags,
            ClusterError::Rejected(WriteRejection::ItemTooLarge),
            ClusterError::Rejected(WriteRejection::Expression("bad".into())),
            ClusterError::PartitionMoved { table: "t".into() },
            ClusterError::KeyMismatch,
        ];
        for error in sent {
            let before = error.to_string();
            let wire = postcard::to_stdvec(&RemoteError::from(error)).unwrap_or_default();
            let remote: RemoteError = postcard::from_bytes(&wire).unwrap_or(RemoteError::Other {
                message: "undecodable".into(),
                retryable: false,
            });
            assert_eq!(remote.into_error(2).to_string(), before);
        }
    }

    #[test]
    fn untyped_errors_keep_whether_they_are_retryable() {
        let retryable = RemoteError::from(ClusterError::Replication(
            ReplicationError::OutcomeUnknown("lost".into()),
        ));
        assert!(!retryable.is_retryable());
        assert!(!retryable.into_error(3).is_retryable());
        let busy = RemoteError::Other {
            message: "stopping".into(),
            retryable: true,
        };
        assert!(busy.clone().into_error(3).is_retryable());
    }
}
