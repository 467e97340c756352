//! Decommissioning a node for good. An operator marks it leaving
//! (`atoll admin decommission N`, `SetNodeLeaving`); from then on:
//! - placement leaves it out (new partitions, rebuilt and added replicas);
//! - it hands every leadership it holds to another voter;
//! - each partition leader moves the replica it holds to another node
//!   (`balance.rs` picks these moves before any balance move), or, with no
//!   node free, removes it (the replication factor is then the node count);
//! - the catalog's leader gives its catalog seat to a learner, or drops it;
//! - once no partition names it and it holds no catalog vote, the catalog
//!   forgets it (`RemoveNode`, after which its id may not register again)
//!   and drops it from the catalog group; the node then stops by itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use atoll_replication::NodeId;

use super::repair::ReplicaController;
use super::repair::SILENCE;
use super::{Cluster, PartitionHandle};
use crate::catalog::CatalogCommand;
use crate::error::ClusterError;

/// How often a node checks whether the catalog has forgotten it.
const REMOVED_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// How long a forgotten node stays silent before the catalog group drops
/// it (it stops within `REMOVED_CHECK_INTERVAL` of applying its removal).
const REMOVED_NODE_SILENCE: Duration = Duration::from_secs(2);

impl Cluster {
    /// Starts decommissioning node `node_id` (see the module doc); returns
    /// once the catalog has recorded it. Asking again changes nothing.
    pub async fn decommission(&self, node_id: NodeId) -> Result<(), ClusterError> {
        self.catalog.try_catch_up().await?;
        let nodes = self.catalog.view().nodes();
        if !nodes.iter().any(|n| n.node_id == node_id) {
            return Err(ClusterError::UnknownNode(node_id));
        }
        let staying = nodes
            .iter()
            .filter(|n| n.node_id != node_id && !self.catalog.view().is_leaving(n.node_id))
            .count();
        if staying == 0 {
            return Err(ClusterError::LastNode(node_id));
        }
        self.catalog
            .propose(CatalogCommand::SetNodeLeaving { node_id })
            .await?
            .map_err(|r| r.into_error(""))?;
        tracing::info!(node = node_id, "decommissioning a node");
        Ok(())
    }

    /// Whether node `node_id` is being decommissioned.
    pub fn is_leaving(&self, node_id: NodeId) -> bool {
        self.catalog.view().is_leaving(node_id)
    }

    /// Resolves once the catalog, as applied here, has forgotten this node
    /// (it was decommissioned): the node has nothing left to serve.
    pub async fn decommissioned(&self) {
        let me = self.node.node_id();
        while !self.catalog.view().is_removed(me) {
            tokio::time::sleep(REMOVED_CHECK_INTERVAL).await;
        }
    }
}

impl ReplicaController {
    /// Whether node `node` can take new replicas: up and not leaving.
    pub(super) fn is_available(&self, node: NodeId) -> bool {
        !self.catalog.view().is_down(node) && !self.catalog.view().is_leaving(node)
    }

    /// On a leaving node: hands the leadership of `handle`'s group to an
    /// answering voter that stays. `true` when it asked one to take over.
    pub(super) async fn hand_over_if_leaving(&self, handle: &PartitionHandle) -> bool {
        let me = self.node.node_id();
        if !self.catalog.view().is_leaving(me) || !handle.group.is_leader() {
            return false;
        }
        let target = handle
            .group
            .follower_silence()
            .into_iter()
            .filter(|(voter, silence)| {
                silence.is_some_and(|s| s < SILENCE) && !self.catalog.view().is_leaving(*voter)
            })
            .map(|(voter, _)| voter)
            .min();
        let Some(target) = target else {
            return false;
        };
        tracing::info!(
            group = handle.group.id(),
            to = target,
            "handing a leadership over: this node is leaving"
        );
        handle.group.transfer_leadership(target).await;
        true
    }

    /// Removes `leaving`'s replica from `handle`'s group when no node is
    /// free to take it, and records the smaller replica set.
    pub(super) async fn drop_leaving_replica(
        self: &Arc<Self>,
        handle: &PartitionHandle,
        leaving: NodeId,
    ) -> Result<(), ClusterError> {
        handle.group.remove_voter(leaving, false).await?;
        self.catalog
            .propose(CatalogCommand::SetReplicas {
                group_id: handle.group.id(),
                replicas: handle.group.voters(),
            })
            .await?
            .map_err(|r| r.into_error(""))?;
        Ok(())
    }

    /// On the catalog's leader: forgets leaving nodes that no partition
    /// names any more and that hold no catalog vote, and drops them from
    /// the catalog group once they have gone silent (`silent_since`, kept by
    /// `tend_catalog_voters`): until then they still receive the log, and
    /// with it the news of their removal, on which they stop. A learner
    /// dropped at once would never hear of it and keep running.
    pub(super) async fn remove_drained_nodes(
        &self,
        silent_since: &BTreeMap<NodeId, Instant>,
    ) -> Result<(), ClusterError> {
        let group = self.catalog.group();
        if !group.is_leader() {
            return Ok(());
        }
        let voters = group.voters();
        for node in self.catalog.view().nodes() {
            let id = node.node_id;
            let drained = self.catalog.view().is_leaving(id)
                && !voters.contains(&id)
                && self.replica_count(id) == 0;
            if !drained {
                continue;
            }
            let outcome = self
                .catalog
                .propose_here(CatalogCommand::RemoveNode { node_id: id })
                .await?;
            if outcome.is_ok() {
                tracing::info!(node = id, "a decommissioned node left the cluster");
            }
        }
        // Learners the catalog has forgotten stop following it.
        for learner in group.learners() {
            let stopped = silent_since
                .get(&learner)
                .is_some_and(|since| since.elapsed() >= REMOVED_NODE_SILENCE);
            if self.catalog.view().is_removed(learner) && stopped {
                group.remove_learner(learner).await?;
            }
        }
        Ok(())
    }
}
