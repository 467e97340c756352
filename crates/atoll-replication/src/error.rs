use thiserror::Error;

use crate::NodeId;

/// Errors of the replication layer.
#[derive(Debug, Error)]
pub enum ReplicationError {
    /// This node does not lead the group; the request belongs to `leader`.
    #[error("not the leader of group {group}; leader is {leader:?}")]
    NotLeader {
        /// The group asked.
        group: u64,
        /// The leader, when known.
        leader: Option<NodeId>,
    },
    /// The group is not hosted on this node (moved, deleted or not yet created).
    #[error("group {0} is not hosted on this node")]
    UnknownGroup(u64),
    /// The write's outcome is unknown: its entry may or may not commit.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The group stopped (shutdown, or a storage failure made it stop).
    #[error("raft group stopped: {0}")]
    Stopped(String),
    /// A peer could not be reached, or refused the call: it did not act on it.
    #[error("node {node} unreachable: {reason}")]
    Unreachable {
        /// The peer.
        node: NodeId,
        /// Why.
        reason: String,
    },
    /// The group did not become ready in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] atoll_storage::StorageError),
}

impl ReplicationError {
    /// Whether retrying the same request (possibly elsewhere) can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ReplicationError::NotLeader { .. }
                | ReplicationError::Timeout(_)
                | ReplicationError::Unreachable { .. }
                | ReplicationError::UnknownGroup(_)
        )
    }
}
