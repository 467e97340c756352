//! Which partitions this node holds replicas of, kept in step with the
//! catalog: groups start when the catalog places a replica here, and are
//! destroyed when their table goes or their replica moves away.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use atoll_model::table::{PartitionDefinition, TableDefinition, TableStatus};
use atoll_partition::{LocalIndexes, PartitionOutput, PartitionStateMachine};
use atoll_replication::{Group, GroupId, RaftNode};
use atoll_storage::{Keyspace, Storage};

use super::catalog_client::CatalogClient;
use super::rpc::{ClusterReply, Peers};
use super::{Cluster, PARTITION_STATS_KEYSPACE, PartitionHandle};
use crate::error::ClusterError;

mod removal;
mod starting;

/// The partitions the catalog places on this node, by group, with their tables.
type WantedReplicas = BTreeMap<GroupId, (Arc<TableDefinition>, PartitionDefinition)>;

/// How often the hosted partitions are compared with the catalog even when
/// nothing changed (a start that failed is retried then).
const HOSTING_CHECK_INTERVAL: Duration = Duration::from_millis(500);

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
            None => sm
                .with_global_indexes(aux, table.key_schema.clone())?
                .with_streams()?,
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
}

impl Cluster {
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
        // A table created with global indexes feeds them from its first
        // write, and one created with a stream writes its records.
        if table.index_of.is_none() && table.global_index_epoch > 0 {
            self.feed_global_indexes(&table.name).await?;
        }
        if table.index_of.is_none() && table.stream_epoch > 0 {
            self.feed_stream(&table.name).await?;
        }
        hold_for_tests("table-activate-hold-ms").await;
        self.catalog.set_status(table, TableStatus::Active).await
    }
}

/// Waits as long as fail point `name` says (`return(MS)`), for tests that
/// need a step of a lifecycle to take time (a table held in CREATING or
/// DELETING).
/// Without the `failpoints` feature it returns at once.
pub(crate) async fn hold_for_tests(name: &str) {
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
