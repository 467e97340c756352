//! Replication: one Raft group per partition, all groups of a node on one storage.
//!
//! Every mutation of a partition (and of the metadata catalog) is an entry in
//! its group's Raft log. On one node a group has one voter; later work adds
//! peers to the same groups, so there is no second, unreplicated write path.
//!
//! The groups of a node share the `raft_log` keyspace, keyed by (group, index),
//! and one [`log_writer`] thread that gathers the appends of all groups into one
//! batch and one fsync (group commit).

mod codec;
mod error;
#[cfg(feature = "failpoints")]
pub mod fail_points;
mod group;
mod log_store;
mod log_writer;
mod node;
mod service;
pub mod sim;
mod snapshot;
mod state_machine;
mod transport;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

pub use error::ReplicationError;
pub use group::{Group, GroupStatus, Untyped};
pub use node::{NodeOptions, RaftNode};
pub use service::{ServiceFuture, ServiceHandler};
pub use snapshot::{ImportWriter, Record, SnapshotReader, SnapshotWriter, transfer_state};
pub use state_machine::{ApplyContext, GroupStateMachine};

/// Identifies a Raft group (a partition, or the metadata catalog) on every node.
pub type GroupId = u64;

/// Identifies a node in the cluster.
pub type NodeId = u64;

/// A command as it travels through the log: opaque bytes, encoded and decoded
/// by the state machine that owns the group, so this crate knows nothing of items.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogCommand(pub bytes::Bytes);

impl fmt::Debug for LogCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogCommand({} bytes)", self.0.len())
    }
}

impl fmt::Display for LogCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What applying a command produced, on its way back to the proposer.
///
/// openraft's type configuration has one response type for all groups of a
/// node, so outputs travel through it type-erased; `Group<O>::propose` is
/// the one place that takes them back out as the state machine's `Output`.
/// It never crosses the network (only the proposer on the leader reads it),
/// so it is not serialised; serde sees it as unit.
#[derive(Clone, Default)]
pub struct ApplyOutput(Option<Arc<dyn Any + Send + Sync>>);

impl ApplyOutput {
    /// Wraps a state machine's result.
    pub(crate) fn new<T: Any + Send + Sync>(value: T) -> Self {
        ApplyOutput(Some(Arc::new(value)))
    }

    /// Takes the result back out as the type the state machine produced
    /// (see `Group<O>`, which knows that type).
    pub(crate) fn take<T: Any + Clone + Send + Sync>(self) -> Option<T> {
        let shared = self.0?.downcast::<T>().ok()?;
        Some(Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone()))
    }
}

impl fmt::Debug for ApplyOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApplyOutput")
    }
}

impl serde::Serialize for ApplyOutput {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de> serde::Deserialize<'de> for ApplyOutput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <()>::deserialize(deserializer)?;
        Ok(ApplyOutput(None))
    }
}

/// Tokio, with openraft's random draws (election timeouts) taken from a
/// seeded generator: a simulation that fixes the seeds replays exactly.
pub type Runtime = openraft::rt::deterministic_rng::DeterministicRng<openraft::impls::TokioRuntime>;

openraft::declare_raft_types!(
    /// The Raft type configuration shared by every group.
    pub TypeConfig:
        D = LogCommand,
        R = ApplyOutput,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        AsyncRuntime = Runtime,
);

/// Handle types of this configuration.
pub(crate) mod typ {
    use super::TypeConfig;
    pub type Entry = openraft::alias::EntryOf<TypeConfig>;
    pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
    pub type Vote = openraft::alias::VoteOf<TypeConfig>;
    pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
    pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
}
