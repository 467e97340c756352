//! Balance. Leaderships: a node that leads more partitions than its share
//! hands one leadership at a time to a voter of that partition that leads
//! fewer. Failovers and restarts pile leaderships onto the nodes that
//! stayed up; a leader does a partition's writes and consistent reads, so
//! an even spread is an even load. Replicas: a node that joins a full
//! cluster holds nothing until leaders move replicas of their partitions
//! onto it, one move at a time per leader node, until no node holds two
//! replicas more than another that could take one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use atoll_replication::NodeId;

use super::PartitionHandle;
use super::repair::ReplicaController;
use super::repair::SILENCE;
use crate::placement::{rebalance_move, replacement_for};

impl ReplicaController {
    /// Moves at most one leadership away from this node when it leads more
    /// of the partitions it hosts than its share (those partitions' leaders
    /// divided over the nodes that lead or follow them, rounded up), to the
    /// answering voter that leads the fewest, if that one is under its share.
    pub(super) async fn balance_leadership(&self) {
        let me = self.node.node_id();
        let handles: Vec<_> = self.host.handles().into_iter().collect();
        let mut leading: BTreeMap<NodeId, usize> = BTreeMap::new();
        for handle in &handles {
            for voter in handle.group.voters() {
                leading.entry(voter).or_insert(0);
            }
            if let Some(leader) = handle.group.current_leader() {
                *leading.entry(leader).or_insert(0) += 1;
            }
        }
        let total: usize = leading.values().sum();
        let share = total.div_ceil(leading.len().max(1));
        if leading.get(&me).copied().unwrap_or(0) <= share {
            return;
        }
        // Not a group with a member catching up (a replica joining empty
        // waits for a snapshot this leader's log was compacted for).
        let best = handles
            .iter()
            .filter(|handle| {
                handle.group.is_leader()
                    && handle.group.learners().is_empty()
                    && handle.group.members_caught_up()
            })
            .flat_map(|handle| {
                handle
                    .group
                    .follower_silence()
                    .into_iter()
                    .filter(|(voter, silence)| {
                        silence.is_some_and(|s| s < SILENCE)
                            && !self.catalog.view().is_leaving(*voter)
                    })
                    .map(move |(voter, _)| (handle, voter))
            })
            .map(|(handle, voter)| (leading.get(&voter).copied().unwrap_or(0), voter, handle))
            .filter(|(count, ..)| *count < share)
            .min_by_key(|(count, voter, handle)| (*count, *voter, handle.group.id()));
        if let Some((_, voter, handle)) = best {
            tracing::debug!(
                group = handle.group.id(),
                to = voter,
                "handing a leadership over for balance"
            );
            handle.group.transfer_leadership(voter).await;
        }
    }
}

impl ReplicaController {
    /// Starts at most one replica move (see the module doc, and
    /// `decommission.rs` for leaving nodes) from a partition this node
    /// leads, unless one it started is still under way: a move copies a
    /// whole partition, which must not hold up the repair loop that calls
    /// this. Only followers' replicas move; the leader's own moves after
    /// leadership balance has handed it over.
    pub(super) fn balance_replicas(self: &Arc<Self>, wanted_copies: usize) {
        if self.moving_replica.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some((handle, from, to)) = self.replica_move(wanted_copies) else {
            self.moving_replica.store(false, Ordering::Release);
            return;
        };
        let cluster = self.clone();
        tokio::spawn(async move {
            let group = handle.group.id();
            let outcome = match to {
                Some(to) => cluster.place_replica(&handle, to, Some(from)).await,
                None => cluster
                    .drop_leaving_replica(&handle, from)
                    .await
                    .map(|()| true),
            };
            match outcome {
                Ok(true) => tracing::info!(group, from, ?to, "moved a replica"),
                Ok(false) => {
                    tracing::debug!(
                        group,
                        ?to,
                        "the node chosen for a replica would not host it"
                    )
                }
                Err(e) => tracing::warn!(group, from, ?to, error = %e, "moving a replica failed"),
            }
            cluster.moving_replica.store(false, Ordering::Release);
        });
    }

    /// The replica to move, from the settled partitions this node leads
    /// (every member answering and caught up, no learner, no change under
    /// way, a full set of voters, the catalog's record equal to them): one
    /// on a leaving node first — to the node a dead one's would be rebuilt
    /// on, or nowhere (`None`: dropped) when no node is free — else the
    /// move that narrows the spread of replica counts most.
    fn replica_move(
        &self,
        wanted_copies: usize,
    ) -> Option<(PartitionHandle, NodeId, Option<NodeId>)> {
        let me = self.node.node_id();
        let nodes = self.live_node_loads();
        let count = |id: NodeId| {
            nodes
                .iter()
                .find(|n| n.id == id)
                .map_or(0, |n| n.replica_count)
        };
        let handles: Vec<PartitionHandle> = self
            .host
            .handles()
            .into_iter()
            .filter(|handle| {
                let group = &handle.group;
                let settled = group.is_leader()
                    && group.learners().is_empty()
                    && !group.in_joint_membership()
                    && group.members_caught_up()
                    && group
                        .follower_silence()
                        .iter()
                        .all(|(_, silence)| silence.is_some_and(|s| s < SILENCE));
                if !settled {
                    return false;
                }
                let mut voters = group.voters();
                voters.sort_unstable();
                let mut recorded = self.catalog.view().replicas(group.id());
                recorded.sort_unstable();
                voters.len() >= wanted_copies && recorded == voters
            })
            .collect();
        for handle in &handles {
            let voters = handle.group.voters();
            let leaving = voters
                .iter()
                .copied()
                .find(|v| *v != me && self.catalog.view().is_leaving(*v));
            if let Some(leaving) = leaving {
                let to = replacement_for(&nodes, &voters, leaving);
                return Some((handle.clone(), leaving, to));
            }
        }
        handles
            .into_iter()
            .filter_map(|handle| {
                let voters = handle.group.voters();
                let movable: Vec<NodeId> = voters.iter().copied().filter(|v| *v != me).collect();
                let (from, to) = rebalance_move(&nodes, &voters, &movable)?;
                Some((count(from) - count(to), handle, from, to))
            })
            .max_by_key(|(gap, handle, ..)| (*gap, std::cmp::Reverse(handle.group.id())))
            .map(|(_, handle, from, to)| (handle, from, Some(to)))
    }
}
