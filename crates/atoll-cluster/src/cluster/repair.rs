//! Re-replication: a partition's leader that has not heard from one of its
//! replicas for longer than the dead-node time rebuilds that replica on
//! another node (a zone its other replicas do not use first, then the least
//! loaded), so the partition gets back to three copies. A partition with
//! fewer copies than the replication factor (created while the cluster had
//! fewer nodes) gains one on a node that joined since, the same way. The
//! same steps move a replica to an emptier node for balance (`balance.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use atoll_replication::{GroupId, NodeId, RaftNode};

use super::PartitionHandle;
use super::catalog_client::CatalogClient;
use super::hosting::PartitionHost;
use super::rpc::{ClusterReply, ClusterRequest, Peers};
use crate::catalog::CatalogCommand;
use crate::error::ClusterError;
use crate::placement::{NodeInfo, REPLICATION_FACTOR, addition_for, replacement_for};

/// A follower that has not acknowledged anything for this long counts as
/// silent (heartbeats go out every 100 ms).
pub(super) const SILENCE: Duration = Duration::from_secs(1);

/// How often leaders look for dead replicas.
const REPAIR_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Leaderships are balanced every this many checks (one move per node each
/// time, so the spread settles over a few rounds without churning).
const BALANCE_EVERY_TICKS: u64 = 5;

/// How long a replica a leader asked this node to host is kept before the
/// catalog names this node one of its replicas (the voter change between
/// the two may take a snapshot's transfer).
pub(super) const JOIN_GRACE: Duration = Duration::from_secs(300);

/// Looks for dead replicas of the partitions this node leads until the
/// controller is dropped.
pub(super) async fn watch_replicas(cluster: Weak<ReplicaController>, dead_after: Duration) {
    let mut silent_since: BTreeMap<(GroupId, NodeId), Instant> = BTreeMap::new();
    let mut catalog_silent_since: BTreeMap<NodeId, Instant> = BTreeMap::new();
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(REPAIR_CHECK_INTERVAL).await;
        let Some(cluster) = cluster.upgrade().filter(|c| !c.node.is_stopped()) else {
            return;
        };
        if let Err(e) = cluster
            .tend_catalog_voters(dead_after, &mut catalog_silent_since)
            .await
        {
            tracing::warn!(error = %e, "changing the catalog's voters failed; will try again");
        }
        if let Err(e) = cluster.remove_drained_nodes(&catalog_silent_since).await {
            tracing::warn!(error = %e, "removing decommissioned nodes failed; will try again");
        }
        let live_nodes = cluster
            .catalog
            .view()
            .nodes()
            .iter()
            .filter(|n| cluster.is_available(n.node_id))
            .count();
        let wanted_copies = REPLICATION_FACTOR.min(live_nodes);
        ticks += 1;
        if ticks.is_multiple_of(BALANCE_EVERY_TICKS) {
            cluster.balance_leadership().await;
        }
        // Each check: a move takes its own time, and only one runs at once.
        cluster.balance_replicas(wanted_copies);
        let leading: Vec<PartitionHandle> = cluster
            .host
            .handles()
            .into_iter()
            .filter(|handle| handle.group.is_leader())
            .collect();
        let mut seen = Vec::new();
        for handle in leading {
            if cluster.hand_over_if_leaving(&handle).await {
                continue;
            }
            let all_answer = cluster
                .rebuild_silent_replicas(&handle, dead_after, &mut silent_since, &mut seen)
                .await;
            if all_answer {
                cluster.tend_partition(&handle, wanted_copies).await;
            }
        }
        silent_since.retain(|key, _| seen.contains(key));
    }
}

impl ReplicaController {
    /// Rebuilds elsewhere each replica of `handle`'s partition silent for
    /// longer than `dead_after` (`silent_since` remembers since when; each
    /// silent one goes into `seen`). Returns whether every replica answers.
    async fn rebuild_silent_replicas(
        self: &Arc<Self>,
        handle: &PartitionHandle,
        dead_after: Duration,
        silent_since: &mut BTreeMap<(GroupId, NodeId), Instant>,
        seen: &mut Vec<(GroupId, NodeId)>,
    ) -> bool {
        let group = handle.group.id();
        let now = Instant::now();
        let mut all_answer = true;
        for (node, silence) in handle.group.follower_silence() {
            if silence.is_some_and(|s| s < SILENCE) {
                continue;
            }
            all_answer = false;
            seen.push((group, node));
            let since = *silent_since.entry((group, node)).or_insert(now);
            if now.duration_since(since) < dead_after {
                continue;
            }
            match self.rebuild_replica(handle, Some(node)).await {
                Ok(Some(new)) => {
                    tracing::info!(group, dead = node, new, "rebuilt a dead node's replica");
                    silent_since.remove(&(group, node));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(group, dead = node, error = %e, "rebuilding a dead node's replica failed; will try again");
                }
            }
        }
        all_answer
    }

    /// For a partition whose replicas all answer: records its voters in the
    /// catalog if the record differs (a leader that failed between a voter
    /// change and its record left them apart), and adds a copy when it has
    /// fewer than `wanted_copies` (one that lacks a copy for a dead node is
    /// mended by `rebuild_silent_replicas`, after the dead time).
    async fn tend_partition(self: &Arc<Self>, handle: &PartitionHandle, wanted_copies: usize) {
        let group = handle.group.id();
        if handle.group.learners().is_empty()
            && !handle.group.in_joint_membership()
            && handle.group.members_caught_up()
        {
            let mut voters = handle.group.voters();
            let mut recorded = self.catalog.view().replicas(group);
            voters.sort_unstable();
            recorded.sort_unstable();
            if voters != recorded {
                tracing::info!(group, ?voters, ?recorded, "recording a partition's voters");
                let recorded = self
                    .catalog
                    .propose(CatalogCommand::SetReplicas {
                        group_id: group,
                        replicas: voters,
                    })
                    .await;
                if let Err(e) = recorded {
                    tracing::warn!(group, error = %e, "recording a partition's voters failed");
                }
            }
        }
        if handle.group.voters().len() < wanted_copies {
            match self.rebuild_replica(handle, None).await {
                Ok(Some(new)) => tracing::info!(group, new, "added a replica"),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(group, error = %e, "adding a replica failed; will try again");
                }
            }
        }
    }
}

/// The replica controller: rebuilds the replicas of dead nodes, adds
/// missing copies, balances leaderships and replicas, moves replicas off
/// leaving nodes, and keeps the catalog's own voters in step with the nodes.
pub(super) struct ReplicaController {
    pub(super) node: Arc<RaftNode>,
    pub(super) catalog: Arc<CatalogClient>,
    pub(super) host: Arc<PartitionHost>,
    pub(super) peers: Peers,
    // Whether a replica move this node started for balance is under way.
    pub(super) moving_replica: AtomicBool,
}

impl ReplicaController {
    pub(super) fn new(
        node: Arc<RaftNode>,
        catalog: Arc<CatalogClient>,
        host: Arc<PartitionHost>,
        peers: Peers,
    ) -> ReplicaController {
        ReplicaController {
            node,
            catalog,
            host,
            peers,
            moving_replica: AtomicBool::new(false),
        }
    }

    /// Moves `handle`'s replica on `dead` to another node, or with no
    /// `dead` adds a replica on a node that holds none: asks that node to
    /// host the group, changes the voters (the new replica first catches up
    /// from a snapshot), then records the new replica set. Returns the new
    /// node, or `None` when no node is free.
    async fn rebuild_replica(
        self: &Arc<Self>,
        handle: &PartitionHandle,
        dead: Option<NodeId>,
    ) -> Result<Option<NodeId>, ClusterError> {
        let mut excluded = handle.group.voters();
        loop {
            let nodes = self.live_node_loads();
            let chosen = match dead {
                Some(dead) => replacement_for(&nodes, &excluded, dead),
                None => addition_for(&nodes, &excluded),
            };
            let Some(new) = chosen else {
                return Ok(None);
            };
            excluded.push(new);
            if self.place_replica(handle, new, dead).await? {
                return Ok(Some(new));
            }
        }
    }

    /// Puts a replica of `handle`'s group on `new`, in place of the one on
    /// `replacing` when given: asks `new` to host the group, changes the
    /// voters (the new replica first catches up from a snapshot), then
    /// records the new replica set. `false` when `new` would not host it.
    pub(super) async fn place_replica(
        self: &Arc<Self>,
        handle: &PartitionHandle,
        new: NodeId,
        replacing: Option<NodeId>,
    ) -> Result<bool, ClusterError> {
        let group = handle.group.id();
        match self
            .peers
            .forward(new, &ClusterRequest::HostReplica { group })
            .await
        {
            Ok(ClusterReply::Hosted) => {}
            Ok(_) | Err(_) => return Ok(false),
        }
        let addr = self.node.peer_addr(new).unwrap_or_default();
        match replacing {
            Some(old) => handle.group.replace_voter(old, new, addr).await?,
            None => handle.group.add_voter(new, addr).await?,
        }
        let replicas = handle.group.voters();
        self.catalog
            .propose(CatalogCommand::SetReplicas {
                group_id: group,
                replicas,
            })
            .await?
            .map_err(|r| r.into_error(""))?;
        Ok(true)
    }

    /// The nodes that may take replicas (up, not leaving) as placement
    /// sees them: zone and replica count.
    pub(super) fn live_node_loads(&self) -> Vec<NodeInfo> {
        self.catalog
            .view()
            .nodes()
            .into_iter()
            .filter(|n| self.is_available(n.node_id))
            .map(|n| NodeInfo {
                id: n.node_id,
                zone: n.zone,
                replica_count: self.replica_count(n.node_id),
            })
            .collect()
    }

    /// Partitions whose replica set, as the catalog records it, includes `node`.
    pub(super) fn replica_count(&self, node: NodeId) -> usize {
        self.catalog
            .view()
            .tables()
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| self.catalog.view().replicas(p.group_id).contains(&node))
            .count()
    }
}
