//! Which partitions this node holds replicas of, kept in step with the
//! catalog: groups start when the catalog places a replica here, and are
//! destroyed when their table goes or their replica moves away.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use atoll_model::table::{PartitionDefinition, TableDefinition, TableStatus};
use atoll_partition::{LocalIndexes, PartitionOutput, PartitionStateMachine};
use atoll_replication::{Group, GroupId, NodeId, RaftNode, ReplicationError};
use atoll_storage::{Keyspace, Storage};

use super::catalog_client::CatalogClient;
use super::rpc::{ClusterReply, ClusterRequest, Peers};
use super::{
    CATALOG_GROUP_ID, Cluster, ClusterOptions, PARTITION_STATS_KEYSPACE, PartitionHandle,
    TABLE_KEYSPACE_PREFIX,
};
use crate::catalog::{CatalogOutcome, CatalogStateMachine};
use crate::error::ClusterError;

/// The partitions the catalog places on this node, by group, with their tables.
type WantedReplicas = BTreeMap<GroupId, (Arc<TableDefinition>, PartitionDefinition)>;

/// How often the hosted partitions are compared with the catalog even when
/// nothing changed (a start that failed is retried then).
const HOSTING_CHECK_INTERVAL: Duration = Duration::from_millis(500);

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

/// Adjusts hosted partitions after every catalog change, and every
/// `HOSTING_CHECK_INTERVAL`, until the cluster is dropped.
pub(super) async fn watch_catalog(host: Weak<PartitionHost>) {
    // Only the notifier is held between passes: holding the host would
    // keep its storage open after the server dropped it.
    let Some(changed) = host.upgrade().map(|h| h.catalog.view().changed.clone()) else {
        return;
    };
    loop {
        let _ = tokio::time::timeout(HOSTING_CHECK_INTERVAL, changed.notified()).await;
        let Some(host) = host.upgrade().filter(|h| !h.node.is_stopped()) else {
            return;
        };
        if let Err(e) = host.host_partitions(false).await {
            tracing::warn!(error = %e, "adjusting hosted partitions failed; will try again");
        }
    }
}

/// The partition replicas this node runs, kept in step with the catalog.
pub(super) struct PartitionHost {
    storage: Storage,
    node: Arc<RaftNode>,
    catalog: Arc<CatalogClient>,
    peers: Peers,
    // Partition statistics and range records of every hosted group.
    stats_keyspace: Keyspace,
    partitions: RwLock<BTreeMap<GroupId, PartitionHandle>>,
    // Groups being started here (a start waits for the group's leader).
    starting: Mutex<BTreeSet<GroupId>>,
    // Replicas hosted at a leader's request, before the catalog names them.
    joining: Mutex<BTreeMap<GroupId, tokio::time::Instant>>,
    // Serialises passes over what this node should host.
    hosting: tokio::sync::Mutex<()>,
    // Where peers reach this node's inter-node port.
    advertise_addr: String,
    // The item collection size limit of tables with local indexes.
    item_collection_limit_bytes: u64,
    // Told when a hosted partition's apply writes outbox records.
    outbox_signal: Arc<tokio::sync::Notify>,
}

impl PartitionHost {
    pub(super) fn new(
        storage: Storage,
        node: Arc<RaftNode>,
        catalog: Arc<CatalogClient>,
        peers: Peers,
        (item_collection_limit_bytes, outbox_signal): (u64, Arc<tokio::sync::Notify>),
    ) -> Result<PartitionHost, ClusterError> {
        Ok(PartitionHost {
            item_collection_limit_bytes,
            outbox_signal,
            stats_keyspace: storage.keyspace(PARTITION_STATS_KEYSPACE)?,
            advertise_addr: node.advertise_addr().to_string(),
            storage,
            node,
            catalog,
            peers,
            partitions: RwLock::new(BTreeMap::new()),
            starting: Mutex::new(BTreeSet::new()),
            joining: Mutex::new(BTreeMap::new()),
            hosting: tokio::sync::Mutex::new(()),
        })
    }

    /// This node's replica of `group_id`, if it runs one.
    pub(super) fn handle(&self, group_id: GroupId) -> Option<PartitionHandle> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group_id)
            .cloned()
    }

    /// The keyspace of partition statistics and range records.
    pub(super) fn stats_keyspace(&self) -> &Keyspace {
        &self.stats_keyspace
    }

    /// Every replica this node runs, in group order.
    pub(super) fn handles(&self) -> Vec<PartitionHandle> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(super) fn partition_state_machine(
        &self,
        table: &TableDefinition,
        partition: &PartitionDefinition,
    ) -> Result<Arc<PartitionStateMachine>, ClusterError> {
        let items = self.storage.keyspace(&table.keyspace)?;
        let sm = PartitionStateMachine::open(
            partition.group_id,
            items,
            self.stats_keyspace.clone(),
            (partition.start_token, partition.end_token),
        )?;
        let aux = self.storage.keyspace(&table.index_keyspace())?;
        let mut sm = sm;
        if !table.local_indexes.is_empty() {
            sm = sm.with_local_indexes(LocalIndexes::new(
                aux.clone(),
                table.key_schema.clone(),
                table.local_indexes.clone(),
                self.item_collection_limit_bytes,
            ));
        }
        // A user's table may gain global indexes at any time; which it
        // feeds comes through each partition's log.
        sm = match table.index_of {
            Some(_) => sm.as_index_table(aux),
            None => sm.with_global_indexes(aux, table.key_schema.clone())?,
        };
        let signal = self.outbox_signal.clone();
        sm.on_outbox_write(Arc::new(move || signal.notify_one()));
        Ok(Arc::new(sm))
    }

    /// Brings hosted partitions in line with the catalog: destroys replicas
    /// of deleted tables and of partitions placed elsewhere, starts the ones
    /// placed here. With `wait`, starts are awaited (at open); otherwise
    /// each runs in the background, since a start waits for its group's leader.
    pub(super) async fn host_partitions(self: &Arc<Self>, wait: bool) -> Result<(), ClusterError> {
        let _pass = self.hosting.lock().await;
        let me = self.node.node_id();
        for node in self.catalog.view().nodes() {
            if node.node_id != me {
                self.node.learn_peer_addr(node.node_id, node.cluster_addr);
            }
        }
        let wanted = self.wanted_replicas();
        let joining: Vec<GroupId> = {
            let mut joining = self.joining.lock().unwrap_or_else(|e| e.into_inner());
            joining.retain(|group, since| {
                !wanted.contains_key(group) && since.elapsed() < super::repair::JOIN_GRACE
            });
            joining.keys().copied().collect()
        };
        for group in self.unwanted_replicas(&wanted, &joining).await {
            self.destroy_partition(group).await?;
        }
        self.drop_orphaned_keyspaces()?;
        self.start_wanted_replicas(wanted, wait).await
    }

    /// The partitions the catalog places a replica of on this node.
    fn wanted_replicas(&self) -> WantedReplicas {
        let me = self.node.node_id();
        let mut wanted: WantedReplicas = BTreeMap::new();
        for table in self.catalog.view().tables() {
            if table.status == TableStatus::Deleting {
                continue;
            }
            for partition in &table.partitions {
                if self
                    .catalog
                    .view()
                    .replicas(partition.group_id)
                    .contains(&me)
                {
                    wanted.insert(partition.group_id, (table.clone(), partition.clone()));
                }
            }
        }
        wanted
    }

    /// Replicas this node runs that the catalog no longer places here and
    /// that are not joining at a leader's request.
    async fn unwanted_replicas(
        &self,
        wanted: &WantedReplicas,
        joining: &[GroupId],
    ) -> Vec<GroupId> {
        let me = self.node.node_id();
        // A replica the catalog no longer names here is destroyed, unless
        // its group's membership (as applied here) still has this node as a
        // voter: the catalog lags a voter change whose leader failed before
        // recording it (the leader mends the record, see `repair`).
        let live_groups: std::collections::BTreeSet<GroupId> = self
            .catalog
            .view()
            .tables()
            .iter()
            .filter(|t| t.status != TableStatus::Deleting)
            .flat_map(|t| t.partitions.iter().map(|p| p.group_id))
            .collect();
        // Such a voter may also have been removed without ever hearing of
        // it (the group stops replicating to a removed member): it asks the
        // group's leader, and goes if the committed membership lacks it.
        let mut unwanted = Vec::new();
        let mut maybe_removed = Vec::new();
        for (group, handle) in self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if wanted.contains_key(group) || joining.contains(group) {
                continue;
            }
            let still_voter = live_groups.contains(group) && handle.group.voters().contains(&me);
            if !still_voter {
                unwanted.push(*group);
            } else if !handle.group.is_leader() {
                maybe_removed.push((*group, handle.group.current_leader()));
            }
        }
        for (group, leader) in maybe_removed {
            if self.removed_from_group(group, leader).await {
                tracing::info!(group, "the group removed this replica; deleting it");
                unwanted.push(group);
            }
        }
        unwanted
    }

    /// Starts the wanted replicas not running here yet, as the catalog says
    /// each may start; with `wait`, awaits the starts from disk.
    async fn start_wanted_replicas(
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
    pub(super) async fn seed_partition(
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
                    &super::rpc::ClusterRequest::CompactLog {
                        group,
                        any_replica: false,
                    },
                )
                .await
            {
                Ok(super::rpc::ClusterReply::Compacted) => {
                    // The other replicas too, so that a later leader also
                    // sends a snapshot (best effort: one that is down now
                    // may still lead later with its log whole).
                    for other in others.iter().filter(|node| **node != target) {
                        let request = super::rpc::ClusterRequest::CompactLog {
                            group,
                            any_replica: true,
                        };
                        if let Err(e) = self.peers.forward(*other, &request).await {
                            tracing::debug!(group, node = other, error = %e, "a replica did not compact its log");
                        }
                    }
                    return Ok(());
                }
                Ok(super::rpc::ClusterReply::NotLeader { leader }) => hint = leader,
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

    /// Records the range a new replica of `group` starts with (see
    /// `PartitionStateMachine::range_record`), before its group first starts.
    /// Writes the global index set a split-off replica starts with (its
    /// parent's at the split, when this node's replica of the parent applied it).
    fn pin_global_indexes(
        &self,
        group: GroupId,
        parent: GroupId,
        at_token: u64,
    ) -> Result<(), ClusterError> {
        let pinned = PartitionStateMachine::pinned_global_indexes(
            &self.stats_keyspace,
            group,
            parent,
            at_token,
        )?;
        if let Some((key, value)) = pinned {
            let mut batch = atoll_storage::WriteBatch::new();
            batch.put(&self.stats_keyspace, key, value);
            self.storage
                .commit(batch, atoll_storage::Durability::Synced)?;
        }
        Ok(())
    }

    pub(super) fn pin_initial_range(
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

    /// Serves `group` from this node's replica `sm`.
    pub(super) fn insert_handle(
        &self,
        group: Group<PartitionOutput>,
        sm: Arc<PartitionStateMachine>,
    ) {
        let handle = PartitionHandle {
            items: sm.items().clone(),
            stats: sm.stats(),
            sm,
            traffic: Arc::default(),
            group,
        };
        self.partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle.group.id(), handle);
    }

    /// Starts this node's replica of `partition` (recovering it from disk,
    /// or creating it with the replicas the catalog placed) and serves it.
    pub(super) async fn start_partition(
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
                self.pin_global_indexes(group_id, parent, partition.start_token)?;
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

    /// Stops and deletes this node's replica of `group` (its table is gone,
    /// or the replica moved to another node).
    async fn destroy_partition(&self, group: GroupId) -> Result<(), ClusterError> {
        let hosted = self
            .partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group);
        if hosted.is_none() {
            return Ok(());
        }
        self.node.destroy_group(group).await?;
        let mut batch = atoll_storage::WriteBatch::new();
        for key in PartitionStateMachine::record_keys(group) {
            batch.delete(&self.stats_keyspace, key);
        }
        self.storage
            .commit(batch, atoll_storage::Durability::Buffered)?;
        Ok(())
    }

    /// Deletes the Raft state of groups this node neither hosts nor is
    /// placed on: partitions of tables dropped, or replicas moved away,
    /// while it was down (nobody told it; it would keep their logs forever).
    /// Only on a catalog caught up with its leader (a lagging one may not
    /// know of a placement here yet), and only groups whose table is gone
    /// or whose membership, as last applied here, no longer names this
    /// node: a voter that forgot its votes could elect a wrong leader.
    pub(super) async fn forget_orphaned_groups(&self) -> Result<(), ClusterError> {
        self.catalog.try_catch_up().await?;
        let _pass = self.hosting.lock().await;
        let me = self.node.node_id();
        let in_catalog = |group: GroupId| {
            self.catalog
                .view()
                .tables()
                .iter()
                .any(|table| table.partitions.iter().any(|p| p.group_id == group))
        };
        let joining = self
            .joining
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for group in self.node.groups_on_disk()? {
            let candidate = group != CATALOG_GROUP_ID
                && self.handle(group).is_none()
                && !joining.contains_key(&group)
                && !(in_catalog(group) && self.catalog.view().replicas(group).contains(&me));
            let orphaned = candidate
                && (!in_catalog(group)
                    || !self.node.applied_membership_names(group, me)?
                    || self.removed_from_group(group, None).await);
            if !orphaned {
                continue;
            }
            self.node.forget_group(group).await?;
            let mut batch = atoll_storage::WriteBatch::new();
            for key in PartitionStateMachine::record_keys(group) {
                batch.delete(&self.stats_keyspace, key);
            }
            self.storage
                .commit(batch, atoll_storage::Durability::Buffered)?;
            tracing::info!(
                group,
                "deleted the Raft state of a partition no longer placed here"
            );
        }
        Ok(())
    }

    /// Whether `group`'s leader (asked at `leader`, as this replica last
    /// knew it, then at the replicas the catalog names) confirms that its
    /// last committed membership lacks this node. `false` when no leader
    /// answers: a replica is only ever deleted on the group's word.
    async fn removed_from_group(&self, group: GroupId, leader: Option<NodeId>) -> bool {
        let me = self.node.node_id();
        let mut ask: Vec<NodeId> = leader.into_iter().collect();
        for replica in self.catalog.view().replicas(group) {
            if !ask.contains(&replica) {
                ask.push(replica);
            }
        }
        let mut asked = 0;
        while let Some(node) = ask.get(asked).copied() {
            asked += 1;
            if node == me {
                continue;
            }
            match self
                .peers
                .forward(node, &ClusterRequest::Members { group })
                .await
            {
                Ok(ClusterReply::Members { members }) => return !members.contains(&me),
                Ok(ClusterReply::NotLeader {
                    leader: Some(leader),
                }) if !ask.contains(&leader) => ask.push(leader),
                _ => {}
            }
        }
        false
    }

    /// Drops table keyspaces no live table uses: a crash during DeleteTable
    /// can leave the keyspace behind after the catalog forgot the table,
    /// and other nodes drop theirs when they see it go.
    fn drop_orphaned_keyspaces(&self) -> Result<(), ClusterError> {
        let referenced: std::collections::BTreeSet<String> = self
            .catalog
            .view()
            .tables()
            .iter()
            .filter(|t| t.status != TableStatus::Deleting)
            .flat_map(|t| [t.keyspace.clone(), t.index_keyspace()])
            .collect();
        let in_use: std::collections::BTreeSet<String> = self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(|handle| {
                let local = handle
                    .sm
                    .local_indexes()
                    .map(|l| l.keyspace().name().to_string());
                std::iter::once(handle.items.name().to_string()).chain(local)
            })
            .collect();
        for name in self.storage.keyspace_names() {
            if name.starts_with(TABLE_KEYSPACE_PREFIX)
                && !referenced.contains(&name)
                && !in_use.contains(&name)
            {
                tracing::info!(keyspace = %name, "dropping the keyspace of a deleted table");
                self.storage.drop_keyspace(&name)?;
            }
        }
        Ok(())
    }

    /// Hosts a new, empty replica of `group` that its leader is about to
    /// add (see `rebuild_replica`).
    pub(super) async fn host_new_replica(&self, group: GroupId) -> ClusterReply {
        if self.handle(group).is_some() {
            return ClusterReply::Hosted;
        }
        let found = self.catalog.view().tables().into_iter().find_map(|table| {
            let partition = table
                .partitions
                .iter()
                .find(|p| p.group_id == group)
                .cloned()?;
            Some((table, partition))
        });
        let Some((table, partition)) = found else {
            return ClusterReply::NotHosted;
        };
        let joined = async {
            if !self.node.has_group_state(group)? {
                self.pin_initial_range(group, (partition.start_token, partition.end_token))?;
            }
            let sm = self.partition_state_machine(&table, &partition)?;
            let handle_sm = sm.clone();
            let joined = self.node.join_group(group, sm).await?;
            Ok::<_, ClusterError>((joined, handle_sm))
        };
        match joined.await {
            Ok((joined, sm)) => {
                self.joining
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(group, tokio::time::Instant::now());
                self.insert_handle(joined, sm);
                ClusterReply::Hosted
            }
            Err(e) => ClusterReply::failed(e.to_string(), true),
        }
    }

    /// Stops and deletes this node's replicas of `table` and its items.
    pub(super) async fn destroy_table_replicas(
        &self,
        table: &TableDefinition,
    ) -> Result<(), ClusterError> {
        let _pass = self.hosting.lock().await;
        for partition in &table.partitions {
            if self.handle(partition.group_id).is_some() {
                self.destroy_partition(partition.group_id).await?;
            } else if self.node.has_group_state(partition.group_id)? {
                self.node.destroy_group(partition.group_id).await?;
            }
        }
        let names = self.storage.keyspace_names();
        for keyspace in [table.keyspace.clone(), table.index_keyspace()] {
            if names.contains(&keyspace) {
                self.storage.drop_keyspace(&keyspace)?;
            }
        }
        Ok(())
    }
}

impl Cluster {
    /// Deletes this node's replicas of a DELETING table and its items, then
    /// has the catalog forget the table. Every node holding a replica does
    /// its part when it sees the table DELETING; forgetting twice is harmless.
    pub(super) async fn finish_delete(&self, table: &TableDefinition) -> Result<(), ClusterError> {
        hold_for_tests("table-delete-hold-ms").await;
        self.host.destroy_table_replicas(table).await?;
        self.catalog
            .propose(crate::catalog::CatalogCommand::DropTable {
                name: table.name.clone(),
                table_id: table.table_id.clone(),
            })
            .await?
            .map_err(|r| r.into_error(&table.name))?;
        self.delete_index_tables(table).await
    }

    /// Makes a CREATING table ACTIVE once each of its partitions has a
    /// leader that serves (the first consistent read through each succeeds).
    pub(super) async fn activate(
        self: &Arc<Self>,
        table: &TableDefinition,
    ) -> Result<(), ClusterError> {
        self.host.host_partitions(true).await?;
        for partition in &table.partitions {
            self.router
                .read_item(table, partition.start_token, &[], true)
                .await?;
        }
        // A table created with global indexes feeds them from its first write.
        if table.index_of.is_none() && table.global_index_epoch > 0 {
            self.feed_global_indexes(&table.name).await?;
        }
        hold_for_tests("table-activate-hold-ms").await;
        self.catalog.set_status(table, TableStatus::Active).await
    }
}

/// Waits as long as fail point `name` says (`return(MS)`), for tests that
/// need a step of a lifecycle to take time (a table held in CREATING or
/// DELETING).
/// Without the `failpoints` feature it returns at once.
async fn hold_for_tests(name: &str) {
    #[cfg(feature = "failpoints")]
    {
        let hold_ms = (|| {
            fail::fail_point!(name, |ms: Option<String>| ms
                .and_then(|ms| ms.parse::<u64>().ok()));
            None
        })();
        if let Some(ms) = hold_ms {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
