//! Nodes joining a running cluster (`atoll serve --join ADDR`), and the
//! catalog group's voters kept at three live nodes.
//!
//! A joining node hosts an empty replica of the catalog and asks any member
//! to admit it; the catalog's leader adds it as a learner (it catches up
//! from the log or a snapshot), and as a voter while the catalog has fewer
//! than three. The node then registers itself like any other, and
//! partitions with fewer replicas than the replication factor gain one on
//! it (see `repair`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use atoll_replication::{Group, NodeId, RaftNode, ReplicationError};
use atoll_storage::{Durability, Storage, WriteBatch};

use super::repair::ReplicaController;
use super::rpc::{ClusterReply, ClusterRequest, JOIN_TIMEOUT};
use super::{CATALOG_GROUP_ID, CATALOG_RETRY, ClusterOptions};
use crate::catalog::{CatalogCommand, CatalogOutcome, CatalogStateMachine};
use crate::error::ClusterError;
use crate::placement::REPLICATION_FACTOR;

/// How long a joining node waits between attempts to reach the cluster.
const JOIN_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Keyspace of facts about this node itself.
const NODE_KEYSPACE: &str = "node";
/// Key of this node's incarnation in `NODE_KEYSPACE`.
const INCARNATION_KEY: &[u8] = b"incarnation";

/// This node's incarnation: a random number drawn the first time it joins a
/// cluster and kept on disk (fsynced before it asks), so the catalog's
/// leader can tell a retried join from the same id coming back with its
/// data lost (drawn from the seed in a simulation).
pub(super) fn incarnation(storage: &Storage, rng_seed: Option<u64>) -> Result<u64, ClusterError> {
    let keyspace = storage.keyspace(NODE_KEYSPACE)?;
    if let Some(bytes) = keyspace.get(INCARNATION_KEY)?
        && let Ok(bytes) = <[u8; 8]>::try_from(bytes.as_ref())
    {
        return Ok(u64::from_be_bytes(bytes));
    }
    let drawn = match rng_seed {
        Some(seed) => seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        None => uuid::Uuid::new_v4().as_u64_pair().0 | 1,
    };
    let mut batch = WriteBatch::new();
    batch.put(
        &keyspace,
        INCARNATION_KEY.to_vec(),
        drawn.to_be_bytes().to_vec(),
    );
    storage.commit(batch, Durability::Synced)?;
    Ok(drawn)
}

/// Joins the cluster that the node at `seed_addr` (its inter-node address)
/// belongs to: hosts an empty replica of the catalog, asks to be admitted
/// as `incarnation` (retrying until some member answers), and returns once
/// this replica has applied the catalog as the leader knew it then.
pub(super) async fn join_catalog(
    node: &Arc<RaftNode>,
    catalog: &Arc<CatalogStateMachine>,
    seed_addr: &str,
    incarnation: u64,
) -> Result<Group<CatalogOutcome>, ClusterError> {
    let group = node.join_group(CATALOG_GROUP_ID, catalog.clone()).await?;
    let request = ClusterRequest::JoinAs {
        node_id: node.node_id(),
        cluster_addr: node.advertise_addr().to_string(),
        incarnation,
    };
    let payload =
        postcard::to_stdvec(&request).map_err(|e| ClusterError::Catalog(e.to_string()))?;
    loop {
        let reply = node
            .call_service_at(seed_addr, payload.clone(), JOIN_TIMEOUT)
            .await
            .map_err(ClusterError::from)
            .and_then(|bytes| {
                postcard::from_bytes::<ClusterReply>(&bytes)
                    .map_err(|e| ClusterError::Catalog(format!("undecodable reply: {e}")))
            });
        match reply {
            Ok(ClusterReply::Joined { applied_index }) => {
                group.wait_applied(applied_index, CATALOG_RETRY).await?;
                tracing::info!(seed = seed_addr, "joined the cluster");
                return Ok(group);
            }
            Ok(ClusterReply::Failed {
                message,
                retryable: false,
            }) => {
                return Err(ClusterError::Catalog(format!(
                    "the cluster at {seed_addr} refused to admit node {}: {message}",
                    node.node_id()
                )));
            }
            Ok(ClusterReply::Error(refusal)) if !refusal.is_retryable() => {
                return Err(ClusterError::Catalog(format!(
                    "the cluster at {seed_addr} refused to admit node {}: {}",
                    node.node_id(),
                    refusal.into_error(0)
                )));
            }
            Ok(other) => {
                let e = other.into_error(CATALOG_GROUP_ID, 0);
                tracing::info!(seed = seed_addr, error = %e, "waiting to be admitted to the cluster");
            }
            Err(e) => {
                tracing::info!(seed = seed_addr, error = %e, "waiting to reach the cluster");
            }
        }
        tokio::time::sleep(JOIN_RETRY_INTERVAL).await;
    }
}

/// An error on the way to admitting a node. Admitting is idempotent (a
/// member is added again as nothing), so the joining node may always try
/// again: only a deliberate refusal stops it.
fn retry_join(error: ClusterError) -> ClusterReply {
    ClusterReply::failed(error.to_string(), true)
}

impl ReplicaController {
    /// Admits node `node_id` (reached at `cluster_addr`) to the catalog
    /// group: on its leader, adds it (as a voter while there are fewer than
    /// three); elsewhere, passes the request to the leader.
    pub(super) async fn admit(
        &self,
        node_id: NodeId,
        cluster_addr: String,
        incarnation: Option<u64>,
    ) -> ClusterReply {
        if !self.catalog.group().is_leader() {
            return self
                .pass_join_to_leader(node_id, cluster_addr, incarnation)
                .await;
        }
        if let Err(refusal) = self.check_admission(node_id, incarnation).await {
            return refusal;
        }
        let as_voter = self.catalog.group().voters().len() < REPLICATION_FACTOR;
        self.node.learn_peer_addr(node_id, cluster_addr.clone());
        match self
            .catalog
            .group()
            .add_member(node_id, cluster_addr, as_voter)
            .await
        {
            Ok(()) => {
                tracing::info!(node = node_id, as_voter, "admitted a node to the cluster");
                // What a read now would see (the applied-index metric may lag).
                let applied = self.catalog.group().applied_index().unwrap_or(0);
                let seen = self.catalog.group().read_barrier_index().await.unwrap_or(0);
                ClusterReply::Joined {
                    applied_index: applied.max(seen),
                }
            }
            Err(e) => retry_join(e.into()),
        }
    }

    /// Passes a join to the catalog's leader (a member that does not lead).
    async fn pass_join_to_leader(
        &self,
        node_id: NodeId,
        cluster_addr: String,
        incarnation: Option<u64>,
    ) -> ClusterReply {
        let Some(leader) = self.catalog.group().current_leader() else {
            return ClusterReply::NotLeader { leader: None };
        };
        let request = match incarnation {
            Some(incarnation) => ClusterRequest::JoinAs {
                node_id,
                cluster_addr,
                incarnation,
            },
            None => ClusterRequest::Join {
                node_id,
                cluster_addr,
            },
        };
        self.peers
            .forward(leader, &request)
            .await
            .unwrap_or_else(retry_join)
    }

    /// Refuses a node that lost its data (an id registered or admitted
    /// before) or was decommissioned; records a first admission's
    /// incarnation. The refusal is the reply to send.
    async fn check_admission(
        &self,
        node_id: NodeId,
        incarnation: Option<u64>,
    ) -> Result<(), ClusterReply> {
        // A node that registered before and asks again has lost its data: as
        // a voter it would have forgotten its votes, which Raft cannot allow.
        if self
            .catalog
            .view()
            .nodes()
            .iter()
            .any(|n| n.node_id == node_id)
        {
            return Err(ClusterReply::failed(
                format!(
                    "node id {node_id} is already a registered node of this cluster; a node that lost its data must join under a new id"
                ),
                false,
            ));
        }
        if self.catalog.view().is_removed(node_id) {
            return Err(ClusterReply::from_error(ClusterError::NodeRemoved(
                node_id.to_string(),
            )));
        }
        // The first admission of an id records its incarnation; the same id
        // with another one lost its data after being admitted (perhaps as a
        // voter) and before registering. (A `Join` from a node of an older
        // version carries none and is not checked.)
        if let Some(incarnation) = incarnation {
            match self.catalog.view().admitted_incarnation(node_id) {
                Some(recorded) if recorded != incarnation => {
                    return Err(ClusterReply::failed(
                        format!(
                            "node id {node_id} was admitted before and has since lost its data; a node that lost its data must join under a new id"
                        ),
                        false,
                    ));
                }
                Some(_) => {}
                None => {
                    let recorded = self
                        .catalog
                        .propose_here(CatalogCommand::AdmitNode {
                            node_id,
                            incarnation,
                        })
                        .await;
                    match recorded {
                        Ok(Ok(_)) => {}
                        Ok(Err(_)) => {
                            return Err(ClusterReply::failed(
                                format!("node id {node_id} was admitted under another incarnation"),
                                false,
                            ));
                        }
                        Err(e) => return Err(retry_join(e)),
                    }
                }
            }
        }
        Ok(())
    }

    /// On the catalog's leader: marks nodes silent for `dead_after` down
    /// (and up again once they answer), and keeps the catalog's voters at
    /// three (or every member, when fewer) by promoting a learner that
    /// answers, in place of a voter silent for `dead_after` or to fill a
    /// missing seat. `silent_since` carries silences between calls.
    pub(super) async fn tend_catalog_voters(
        &self,
        dead_after: Duration,
        silent_since: &mut BTreeMap<NodeId, Instant>,
    ) -> Result<(), ClusterError> {
        let group = self.catalog.group();
        if !group.is_leader() {
            silent_since.clear();
            return Ok(());
        }
        let now = Instant::now();
        let silences = group.member_silence();
        silent_since.retain(|node, _| silences.iter().any(|(id, _)| id == node));
        let mut dead_voter = None;
        for (node, silence) in &silences {
            if silence.is_some_and(|s| s < super::repair::SILENCE) {
                silent_since.remove(node);
                continue;
            }
            let since = *silent_since.entry(*node).or_insert(now);
            if group.voters().contains(node) && now.duration_since(since) >= dead_after {
                dead_voter = Some(*node);
            }
        }
        let registered: Vec<NodeId> = self
            .catalog
            .view()
            .nodes()
            .iter()
            .map(|n| n.node_id)
            .collect();
        let seen = CatalogSilences {
            silences,
            silent_since,
            now,
            dead_after,
        };
        self.mark_down_nodes(&registered, &seen).await?;
        self.move_catalog_seats(&registered, &seen.silences, dead_voter, silent_since)
            .await
    }

    /// Marks for placement: down after the dead-node time, up once it
    /// answers again (a restart also clears it, by registering).
    async fn mark_down_nodes(
        &self,
        registered: &[NodeId],
        seen: &CatalogSilences<'_>,
    ) -> Result<(), ClusterError> {
        for node in registered {
            let dead = seen
                .silent_since
                .get(node)
                .is_some_and(|since| seen.now.duration_since(*since) >= seen.dead_after);
            let marked = self.catalog.view().is_down(*node);
            let answers = answering(&seen.silences, node);
            if *node != self.node.node_id() && marked != dead && (answers || dead) {
                self.catalog
                    .propose_here(CatalogCommand::SetNodeDown {
                        node_id: *node,
                        down: dead,
                    })
                    .await?
                    .map_err(|r| r.into_error(""))?;
                tracing::info!(node, down = dead, "marked a node");
            }
        }
        Ok(())
    }

    /// Moves the catalog's seats: a leaving leader hands the catalog over;
    /// a leaving or dead voter's seat goes to an answering learner, or a
    /// missing seat is filled by one.
    async fn move_catalog_seats(
        &self,
        registered: &[NodeId],
        silences: &[(NodeId, Option<Duration>)],
        dead_voter: Option<NodeId>,
        silent_since: &mut BTreeMap<NodeId, Instant>,
    ) -> Result<(), ClusterError> {
        let group = self.catalog.group();
        let answering = |node: &NodeId| answering(silences, node);
        let me = self.node.node_id();
        if self.catalog.view().is_leaving(me) {
            // A leaving leader hands the catalog over; the next one moves
            // this node's seat.
            let successor = group
                .voters()
                .into_iter()
                .find(|id| *id != me && answering(id) && !self.catalog.view().is_leaving(*id));
            if let Some(successor) = successor {
                group.transfer_leadership(successor).await;
            }
            return Ok(());
        }
        let leaving_voter = group
            .voters()
            .into_iter()
            .find(|id| self.catalog.view().is_leaving(*id));
        let learner = group
            .learners()
            .into_iter()
            .filter(|id| {
                registered.contains(id) && answering(id) && !self.catalog.view().is_leaving(*id)
            })
            .min();
        let Some(learner) = learner else {
            if let Some(leaving) = leaving_voter
                && group.voters().len() > 1
            {
                // No node to take the seat: the catalog has one voter fewer.
                group.remove_voter(leaving, true).await?;
                tracing::info!(node = leaving, "a leaving node gave up its catalog vote");
            }
            return Ok(());
        };
        if let Some(leaving) = leaving_voter.filter(|_| dead_voter.is_none()) {
            group.swap_voter_for_learner(leaving, learner, true).await?;
            tracing::info!(
                node = leaving,
                new = learner,
                "a leaving node's catalog vote moved"
            );
        } else if let Some(dead) = dead_voter {
            // The dead voter stays a learner: should it come back, it still
            // follows the catalog.
            group.swap_voter_for_learner(dead, learner, true).await?;
            silent_since.remove(&dead);
            tracing::info!(dead, new = learner, "replaced a dead catalog voter");
        } else if group.voters().len() < REPLICATION_FACTOR {
            let addr = self.node.peer_addr(learner).unwrap_or_default();
            group.add_member(learner, addr, true).await?;
            tracing::info!(new = learner, "made a catalog learner a voter");
        }
        Ok(())
    }
}

/// What the catalog's leader saw of its members' silences in one check.
struct CatalogSilences<'a> {
    silences: Vec<(NodeId, Option<Duration>)>,
    silent_since: &'a BTreeMap<NodeId, Instant>,
    now: Instant,
    dead_after: Duration,
}

/// Whether `node` answered the catalog's leader lately.
fn answering(silences: &[(NodeId, Option<Duration>)], node: &NodeId) -> bool {
    silences
        .iter()
        .any(|(id, silence)| id == node && silence.is_some_and(|s| s < super::repair::SILENCE))
}

/// Starts (or recovers) this node's replica of the catalog. With a cluster,
/// waits for as long as it takes a quorum of its members to come up.
pub(super) async fn start_catalog(
    storage: &Storage,
    node: &Arc<RaftNode>,
    catalog: &Arc<CatalogStateMachine>,
    options: &ClusterOptions,
) -> Result<Group<CatalogOutcome>, ClusterError> {
    let me = node.node_id();
    let alone = BTreeMap::from([(me, node.advertise_addr().to_string())]);
    // The founder writes the catalog's first membership: the node itself
    // when it runs alone, the smallest of `--peers`, and never a node that
    // joins a running cluster (its catalog comes from that cluster).
    let (members, founder) = if let Some(seed) = &options.join {
        if !node.has_group_state(CATALOG_GROUP_ID)? {
            let incarnation = super::membership::incarnation(storage, options.node.rng_seed)?;
            return super::membership::join_catalog(node, catalog, seed, incarnation).await;
        }
        (alone, NodeId::MAX)
    } else if options.initial_members.len() <= 1 {
        (alone, me)
    } else {
        let founder = options.initial_members.keys().next().copied().unwrap_or(me);
        (options.initial_members.clone(), founder)
    };
    loop {
        match node
            .start_group_founded_by(CATALOG_GROUP_ID, catalog.clone(), members.clone(), founder)
            .await
        {
            Ok(group) => return Ok(group),
            Err(ReplicationError::Timeout(reason)) => {
                tracing::info!(%reason, "waiting for a quorum of the cluster to start");
            }
            Err(e) => return Err(e.into()),
        }
    }
}
