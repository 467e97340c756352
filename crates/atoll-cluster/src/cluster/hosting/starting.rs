//! Starting this node's replicas: from disk, empty and then from a
//! snapshot of their leader, or (a split-off partition) once the parent's
//! replica here has applied the split.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atoll_model::table::{PartitionDefinition, TableDefinition};
use atoll_partition::{PartitionOutput, PartitionStateMachine};
use atoll_replication::{Group, GroupId, ReplicationError};

use super::{PartitionHost, WantedReplicas};
use crate::cluster::rpc;
use crate::error::ClusterError;

/// Where a replica this node does not host yet starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StartFrom {
    /// Its Raft state and items here (a new partition, a restart, or a
    /// split whose items were handed off here).
    Disk,
    /// Empty, then a snapshot from its leader.
    Snapshot,
    /// Not yet: wait for the parent's replica here to apply the split.
    NotYet,
}

/// How long a new split-off replica waits to apply its first entry before
/// purging its log's start.
const FIRST_APPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Snapshots `group` and purges its log once it has applied an entry (a
/// snapshot needs one); see `PartitionHost::start_partition`.
async fn purge_log_start(group: Group<PartitionOutput>) {
    if group.wait_applied(0, FIRST_APPLY_TIMEOUT).await.is_err() {
        tracing::warn!(
            group = group.id(),
            "a split-off replica applied nothing; its log start stays"
        );
        return;
    }
    if let Err(e) = group.compact_log().await {
        tracing::warn!(group = group.id(), error = %e, "purging a split-off replica's log start failed");
    }
}

impl PartitionHost {
    /// Starts the wanted replicas not running here yet, as the catalog says
    /// each may start; with `wait`, awaits the starts from disk.
    pub(super) async fn start_wanted_replicas(
        self: &Arc<Self>,
        wanted: WantedReplicas,
        wait: bool,
    ) -> Result<(), ClusterError> {
        let mut starts = Vec::new();
        for (group, (table, partition)) in wanted {
            if self.handle(group).is_some() {
                continue;
            }
            let how = self.how_to_start(group, &partition)?;
            if how == StartFrom::NotYet {
                continue;
            }
            if !self
                .starting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(group)
            {
                continue;
            }
            let cluster = self.clone();
            let start = async move {
                let outcome = match how {
                    StartFrom::Snapshot => cluster.seed_partition(&table, &partition).await,
                    _ => cluster.start_partition(&table, &partition).await,
                };
                cluster
                    .starting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&group);
                if let Err(e) = &outcome {
                    tracing::warn!(group, error = %e, "starting a partition replica failed; will try again");
                }
                outcome
            };
            // A seed waits for compactions and a snapshot, which may take
            // long: it never holds up a pass (nor the lock it holds).
            if wait && how != StartFrom::Snapshot {
                starts.push(start);
            } else {
                tokio::spawn(start);
            }
        }
        futures_util::future::join_all(starts).await;
        Ok(())
    }

    /// How this node may start its replica of `partition`, which it does
    /// not host. A partition made by a split starts on the items its parent
    /// handed off, which are right only on a replica whose parent applied
    /// the split from its log. A replica whose parent caught up from a
    /// snapshot taken after the split (or that holds no replica of the
    /// parent) has stale items or none there: it joins empty and is sent a
    /// snapshot. One whose parent has not reached the split yet waits.
    fn how_to_start(
        &self,
        group: GroupId,
        partition: &PartitionDefinition,
    ) -> Result<StartFrom, ClusterError> {
        if self.node.has_group_state(group)? {
            return Ok(StartFrom::Disk);
        }
        let Some(parent) = self.catalog.view().origin(group).split_from else {
            return Ok(StartFrom::Disk);
        };
        let handed_off = PartitionStateMachine::handed_off_through_log(
            &self.stats_keyspace,
            parent,
            partition.start_token,
        )?;
        if handed_off {
            return Ok(StartFrom::Disk);
        }
        if !self
            .catalog
            .view()
            .replicas(parent)
            .contains(&self.node.node_id())
        {
            return Ok(StartFrom::Snapshot);
        }
        // Until the parent's replica here runs and has moved past the split,
        // its log may still write items in the new partition's range.
        let past_split = self.handle(parent).is_some_and(|handle| {
            let (first, last) = handle.sm.range();
            partition.start_token < first || partition.start_token > last
        });
        Ok(if past_split {
            StartFrom::Snapshot
        } else {
            StartFrom::NotYet
        })
    }

    /// Starts this node's replica of `partition` empty, once the partition's
    /// leader has compacted its log: the leader then sends it a snapshot
    /// (which replaces whatever items this node holds in the range), never
    /// the log from its start, which lacks the items the split handed off.
    pub(in crate::cluster) async fn seed_partition(
        &self,
        table: &TableDefinition,
        partition: &PartitionDefinition,
    ) -> Result<(), ClusterError> {
        let group_id = partition.group_id;
        self.compact_at_leader(group_id).await?;
        if !self.node.has_group_state(group_id)? {
            self.pin_initial_range(group_id, (partition.start_token, partition.end_token))?;
        }
        let sm = self.partition_state_machine(table, partition)?;
        let group = self.node.join_group(group_id, sm.clone()).await?;
        self.insert_handle(group, sm);
        tracing::info!(
            group = group_id,
            "joined a split-off partition empty; its leader sends a snapshot"
        );
        Ok(())
    }

    /// Has the leader of `group` (found through the other replicas)
    /// snapshot the group and purge its log.
    async fn compact_at_leader(&self, group: GroupId) -> Result<(), ClusterError> {
        let me = self.node.node_id();
        let others = self.catalog.other_replicas(group);
        let mut hint = None;
        let mut last_error = None;
        for attempt in 0..others.len() * 3 {
            let Some(target) = hint
                .take()
                .filter(|node| *node != me)
                .or_else(|| others.get(attempt % others.len()).copied())
            else {
                break;
            };
            match self
                .peers
                .forward(
                    target,
                    &rpc::ClusterRequest::CompactLog {
                        group,
                        any_replica: false,
                    },
                )
                .await
            {
                Ok(rpc::ClusterReply::Compacted) => {
                    // The other replicas too, so that a later leader also
                    // sends a snapshot (best effort: one that is down now
                    // may still lead later with its log whole).
                    for other in others.iter().filter(|node| **node != target) {
                        let request = rpc::ClusterRequest::CompactLog {
                            group,
                            any_replica: true,
                        };
                        if let Err(e) = self.peers.forward(*other, &request).await {
                            tracing::debug!(group, node = other, error = %e, "a replica did not compact its log");
                        }
                    }
                    return Ok(());
                }
                Ok(rpc::ClusterReply::NotLeader { leader }) => hint = leader,
                Ok(other) => last_error = Some(other.into_error(group, target)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(
            last_error.unwrap_or(ClusterError::Replication(ReplicationError::NotLeader {
                group,
                leader: None,
            })),
        )
    }

    /// Writes what a split-off replica starts with of its parent's state at
    /// the split (see `PartitionStateMachine::pinned_split_records`).
    fn pin_split_records(
        &self,
        group: GroupId,
        parent: GroupId,
        at_token: u64,
    ) -> Result<(), ClusterError> {
        let keyspace = &self.stats_keyspace;
        let pinned =
            PartitionStateMachine::pinned_split_records(keyspace, group, parent, at_token)?;
        let mut batch = atoll_storage::WriteBatch::new();
        for (key, value) in pinned {
            batch.put(keyspace, key, value);
        }
        if !batch.is_empty() {
            self.storage
                .commit(batch, atoll_storage::Durability::Synced)?;
        }
        Ok(())
    }

    /// Records the range a new replica of `group` starts with (see
    /// `PartitionStateMachine::range_record`), before its group first starts.
    pub(in crate::cluster) fn pin_initial_range(
        &self,
        group: GroupId,
        range: atoll_partition::TokenRange,
    ) -> Result<(), ClusterError> {
        let (key, value) = PartitionStateMachine::range_record(group, range);
        let mut batch = atoll_storage::WriteBatch::new();
        batch.put(&self.stats_keyspace, key, value);
        self.storage
            .commit(batch, atoll_storage::Durability::Synced)?;
        Ok(())
    }

    /// Starts this node's replica of `partition` (recovering it from disk,
    /// or creating it with the replicas the catalog placed) and serves it.
    pub(in crate::cluster) async fn start_partition(
        &self,
        table: &TableDefinition,
        partition: &PartitionDefinition,
    ) -> Result<(), ClusterError> {
        let group_id = partition.group_id;
        if !self.node.has_group_state(group_id)? {
            // A split-off partition starts with the range its parent handed
            // off here, which is wider than the catalog's if it split again.
            let handed_off = match self.catalog.view().origin(group_id).split_from {
                Some(parent) => PartitionStateMachine::handed_off_range(
                    &self.stats_keyspace,
                    parent,
                    partition.start_token,
                )?,
                None => None,
            };
            self.pin_initial_range(
                group_id,
                handed_off.unwrap_or((partition.start_token, partition.end_token)),
            )?;
            // And feeds the global indexes its parent fed at the split.
            if let Some(parent) = self.catalog.view().origin(group_id).split_from {
                self.pin_split_records(group_id, parent, partition.start_token)?;
            }
        }
        let sm = self.partition_state_machine(table, partition)?;
        let me = self.node.node_id();
        let members: BTreeMap<_, _> = self
            .catalog
            .view()
            .replicas(group_id)
            .into_iter()
            .map(|node| {
                let addr = if node == me {
                    self.advertise_addr.clone()
                } else {
                    self.node.peer_addr(node).unwrap_or_default()
                };
                (node, addr)
            })
            .collect();
        let origin = self.catalog.view().origin(group_id);
        // Every replica that holds the handoff of a split (its parent's
        // replica here applied the split from its log, so its items are the
        // new partition's exactly) may found the new group, not only the
        // node named founder: if that one dies before any other replica got
        // the group's first entry, the others would wait for it forever.
        // openraft allows several nodes to initialise with one membership;
        // a replica without the handoff never does (it is sent a snapshot).
        let holds_handoff = match origin.split_from {
            Some(parent) => PartitionStateMachine::handed_off_through_log(
                &self.stats_keyspace,
                parent,
                partition.start_token,
            )?,
            None => false,
        };
        let founder = if holds_handoff {
            self.node.node_id()
        } else {
            origin.founder
        };
        let group = self
            .node
            .start_group_founded_by(group_id, sm.clone(), members, founder)
            .await?;
        // A split-off partition's first state came from its parent's
        // handoff, not from its log: a leader still holding the log from
        // its start would send a replica joining empty (`seed_partition`)
        // those entries rather than a snapshot. So every replica started
        // from a handoff purges that start at once (again after a restart,
        // if it had not yet), and `seed_partition` has the leader compact too.
        if origin.split_from.is_some() && !group.log_purged() {
            tokio::spawn(purge_log_start(group.clone()));
        }
        self.insert_handle(group, sm);
        Ok(())
    }
}
