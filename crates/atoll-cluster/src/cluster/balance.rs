//! Leadership balance: a node that leads more partitions than its share
//! hands one leadership at a time to a voter of that partition that leads
//! fewer. Failovers and restarts pile leaderships onto the nodes that
//! stayed up; a leader does a partition's writes and consistent reads, so
//! an even spread is an even load.

use std::collections::BTreeMap;

use atoll_replication::NodeId;

use super::Cluster;
use super::repair::SILENCE;

impl Cluster {
    /// Moves at most one leadership away from this node when it leads more
    /// of the partitions it hosts than its share (those partitions' leaders
    /// divided over the nodes that lead or follow them, rounded up), to the
    /// answering voter that leads the fewest, if that one is under its share.
    pub(super) async fn balance_leadership(&self) {
        let me = self.node.node_id();
        let handles: Vec<_> = self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
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
                    .filter(|(_, silence)| silence.is_some_and(|s| s < SILENCE))
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
