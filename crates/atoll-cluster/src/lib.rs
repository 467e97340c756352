//! The control plane of a node: the catalog of tables (itself a Raft group),
//! the partitions of each table and the Raft groups serving them, and the
//! lifecycle of tables (create, update, tag, delete).
//!
//! Data-plane requests go through [`DataPlane`] (module [`data`]), which
//! routes them to the partitions that own their keys.

mod catalog;
mod cluster;
pub mod data;
mod error;
pub mod placement;
mod trace;

pub use atoll_partition::DEFAULT_ITEM_COLLECTION_LIMIT_BYTES;
pub use catalog::{CatalogCommand, IndexThroughputUpdate, NodeRecord, TableUpdate};
pub use cluster::{
    Cluster, ClusterOptions, ClusterReport, DEFAULT_DEAD_NODE_AFTER,
    DEFAULT_SPLIT_LOAD_OPS_PER_SECOND, DEFAULT_SPLIT_SIZE_BYTES, DEFAULT_STREAM_RETENTION,
    DEFAULT_TRANSACTION_RECOVERY_AFTER, DEFAULT_TTL_SWEEP_INTERVAL, NodeReport, PartitionReport,
    RangeChunk, RangeItem, TableReport, TableStats,
};
pub use data::DataPlane;
pub use error::ClusterError;
pub use trace::{current_request_id, with_request_id};

/// Arms the fail points the `FAILPOINTS` environment variable names
/// (fail-rs's `name=action;...`) for the life of the process, so tests can
/// stop the real binary at chosen steps. Builds without the `failpoints`
/// feature (every release build) have no fail points, and this does nothing.
pub fn arm_fail_points_from_env() {
    #[cfg(feature = "failpoints")]
    atoll_replication::fail_points::arm_from_env();
}
