//! A node's view of the cluster: the catalog group, the partition groups it
//! hosts, and routing of item requests to them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atoll_model::table::TableStatus;
use atoll_partition::{PartitionOutput, PartitionStateMachine, PartitionStats};
use atoll_replication::{Group, GroupId, NodeId, NodeOptions, RaftNode, ReplicationError};
use atoll_storage::{Keyspace, Storage};
use tracing::Instrument;

use crate::catalog::{CatalogCommand, CatalogOutcome, CatalogStateMachine, NodeRecord};
use crate::error::ClusterError;

mod admin;
mod balance;
mod catalog_client;
mod decommission;
mod expiry;
mod hosting;
mod index_lifecycle;
mod index_tables;
pub(crate) mod ledger;
mod membership;
mod observe;
mod repair;
mod routing;
mod rpc;
mod shipping;
mod splits;
mod streams;
mod tables;
mod transaction_recovery;

pub use admin::{ClusterReport, NodeReport, PartitionReport, TableReport};
pub use catalog_client::CatalogClient;
use hosting::PartitionHost;
pub(crate) use hosting::hold_for_tests;

use repair::ReplicaController;
pub(crate) use routing::Router;
pub(crate) use routing::{SHARE_RETRY, TransactionItem};
use rpc::Peers;
pub(crate) use rpc::RangeRequest;
pub use rpc::{RangeChunk, RangeItem};
use splits::Splitter;

const CATALOG_GROUP_ID: GroupId = 0;
const CATALOG_KEYSPACE: &str = "catalog";
const PARTITION_STATS_KEYSPACE: &str = "partition_stats";
/// Prefix of the keyspace holding a table's items.
const TABLE_KEYSPACE_PREFIX: &str = "t_";

/// DynamoDB splits a partition that grows past 10 GB.
pub const DEFAULT_SPLIT_SIZE_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// A partition splits for load above this many requests per second: the
/// read capacity one DynamoDB partition serves (3,000 read units).
pub const DEFAULT_SPLIT_LOAD_OPS_PER_SECOND: f64 = 3000.0;

/// A node whose replicas stay silent this long is taken for dead, and its
/// replicas are rebuilt elsewhere.
pub const DEFAULT_DEAD_NODE_AFTER: Duration = Duration::from_secs(60);

/// How long stream records are kept by default: DynamoDB's 24 hours.
pub const DEFAULT_STREAM_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// How often each partition's leader looks for items whose Time to Live
/// passed, by default: an expired item on a lightly loaded node is
/// deleted within a few of these.
pub const DEFAULT_TTL_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// How long a transaction's coordinator may go quiet before its held
/// items are finished by recovery, by default: far beyond a transaction's
/// normal few milliseconds, and beyond a leader election.
pub const DEFAULT_TRANSACTION_RECOVERY_AFTER: Duration = Duration::from_secs(5);

/// How long a lookup that missed waits for this node's catalog to catch up.
const CATALOG_CATCH_UP: Duration = Duration::from_secs(2);

/// How long a catalog change keeps retrying while the catalog's leader changes.
const CATALOG_RETRY: Duration = Duration::from_secs(30);

/// How this node takes part in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Raft settings of this node.
    pub node: NodeOptions,
    /// A partition whose items exceed this size splits in two.
    pub split_size_bytes: u64,
    /// How often partition sizes are checked against `split_size_bytes`.
    pub split_check_interval: Duration,
    /// A partition whose routed requests stay above this many per second
    /// for `LOAD_SPLIT_SAMPLES` checks in a row splits in two (0: never).
    pub split_load_ops_per_second: f64,
    /// The nodes that form the cluster (id to inter-node address, this
    /// node among them); empty for a single node. Each member holds a
    /// replica of the catalog.
    pub initial_members: BTreeMap<NodeId, String>,
    /// The inter-node address of a member of a running cluster for this
    /// node to join, when it has not joined one before (`--join`).
    pub join: Option<String>,
    /// Where clients reach this node's API (shown in the admin view).
    pub api_addr: String,
    /// This node's availability zone, for placing replicas apart.
    pub zone: Option<String>,
    /// A replica silent this long is rebuilt on another node.
    pub dead_node_after: Duration,
    /// Largest item collection (items of one partition key and their local
    /// index entries) of a table with local indexes. DynamoDB's 10 GB;
    /// smaller in tests. Every node of a cluster must use the same.
    pub item_collection_limit_bytes: u64,
    /// How often each partition's leader looks for items whose Time to
    /// Live passed.
    pub ttl_sweep_interval: Duration,
    /// Stream records are kept this long (DynamoDB's 24 hours), then
    /// trimmed through their partition's log.
    pub stream_retention: Duration,
    /// A transaction's coordinator silent this long is presumed gone: its
    /// held items are finished from the ledger by their partitions' leaders.
    pub transaction_recovery_after: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            node: NodeOptions::default(),
            split_size_bytes: DEFAULT_SPLIT_SIZE_BYTES,
            split_check_interval: Duration::from_secs(1),
            split_load_ops_per_second: DEFAULT_SPLIT_LOAD_OPS_PER_SECOND,
            initial_members: BTreeMap::new(),
            join: None,
            api_addr: String::new(),
            zone: None,
            dead_node_after: DEFAULT_DEAD_NODE_AFTER,
            item_collection_limit_bytes: atoll_partition::DEFAULT_ITEM_COLLECTION_LIMIT_BYTES,
            ttl_sweep_interval: DEFAULT_TTL_SWEEP_INTERVAL,
            stream_retention: DEFAULT_STREAM_RETENTION,
            transaction_recovery_after: DEFAULT_TRANSACTION_RECOVERY_AFTER,
        }
    }
}

/// A partition served by this node.
#[derive(Clone)]
struct PartitionHandle {
    group: Group<PartitionOutput>,
    items: Keyspace,
    stats: Arc<PartitionStats>,
    sm: Arc<PartitionStateMachine>,
    traffic: Arc<admin::Traffic>,
}

/// Item count and size of a table, summed over its partitions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Items in the table.
    pub item_count: u64,
    /// Total DynamoDB size of the items.
    pub size_bytes: u64,
}

/// One node of the cluster, assembled from parts that each own one job:
/// the catalog client (changes through the catalog's leader, lookups with
/// catch-up), the partition host (the replicas this node runs), the router
/// behind the data plane (where an item request goes, the leader cache),
/// and two background controllers (splits; repair, balance, decommission).
/// `Cluster` itself runs table lifecycles (create, update, tag, delete),
/// which span the catalog and the host, and the operator calls. Maps in the
/// parts are ordered: the order of iteration decides the order of work,
/// which a simulation must be able to replay.
pub struct Cluster {
    storage: Storage,
    node: Arc<RaftNode>,
    peers: Peers,
    catalog: Arc<CatalogClient>,
    host: Arc<PartitionHost>,
    router: Arc<Router>,
    splitter: Arc<Splitter>,
    // Serialises table lifecycle work (create, delete, split) on this node.
    lifecycle: Arc<tokio::sync::Mutex<()>>,
    replicas: Arc<ReplicaController>,
    shipper: Arc<shipping::Shipper>,
    // Serialises changes of global indexes on this node.
    index_changes: tokio::sync::Mutex<()>,
    // The (table, index) changes this node drives now.
    driven_index_changes: std::sync::Mutex<std::collections::BTreeSet<(String, String)>>,
    // The stream change each table's partitions were told of by this node
    // (by table id).
    fed_streams: std::sync::Mutex<BTreeMap<String, u64>>,
    // Where each led partition's Time to Live sweep goes on (by group).
    ttl_cursors: std::sync::Mutex<BTreeMap<GroupId, Vec<u8>>>,
    // The transaction ledger.
    ledger: Arc<ledger::Ledger>,
    // Seed of table ids in a simulation (`NodeOptions::rng_seed`), and how
    // many were drawn.
    rng_seed: Option<u64>,
    table_ids_drawn: std::sync::atomic::AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Cluster {
    /// Opens the node: recovers the catalog (with a cluster, joins its
    /// group and waits for a quorum), registers the node, then starts the
    /// partitions it holds replicas of, finishing creations, deletions and
    /// splits a crash interrupted.
    pub async fn open(
        storage: Storage,
        options: ClusterOptions,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let node = RaftNode::open(storage.clone(), options.node.clone())?;
        let catalog = Arc::new(CatalogStateMachine::open(
            storage.keyspace(CATALOG_KEYSPACE)?,
        )?);
        // A decommissioned node's catalog recorded its removal: the
        // cluster will not take it back, so it does not start at all.
        if catalog.is_removed(options.node.node_id) {
            return Err(ClusterError::NodeRemoved(options.node.node_id.to_string()));
        }
        let catalog_group = membership::start_catalog(&storage, &node, &catalog, &options).await?;
        let cluster = Cluster::assemble(storage, node, catalog, catalog_group, &options)?;
        cluster.ledger.attach(Arc::downgrade(&cluster));
        cluster.node.set_service_handler(Arc::new(rpc::Endpoint {
            cluster: Arc::downgrade(&cluster),
        }));
        // Peers this node was not configured with (it joined, or they did)
        // are reached at the addresses they registered.
        for node in cluster.catalog.view().nodes() {
            if node.node_id != options.node.node_id {
                cluster
                    .node
                    .learn_peer_addr(node.node_id, node.cluster_addr);
            }
        }
        cluster
            .register(NodeRecord {
                node_id: options.node.node_id,
                cluster_addr: options.node.advertise_addr.clone(),
                api_addr: options.api_addr.clone(),
                zone: options.zone.clone(),
            })
            .await?;
        cluster.host.host_partitions(true).await?;
        cluster.finish_interrupted_work().await;
        tokio::spawn(hosting::watch_catalog(Arc::downgrade(&cluster.host)));
        tokio::spawn(repair::watch_replicas(
            Arc::downgrade(&cluster.replicas),
            options.dead_node_after,
        ));
        tokio::spawn(splits::watch_partition_sizes(
            Arc::downgrade(&cluster.splitter),
            options.split_check_interval,
        ));
        tokio::spawn(shipping::ship_outboxes(Arc::downgrade(&cluster.shipper)));
        tokio::spawn(
            index_lifecycle::drive_index_changes(Arc::downgrade(&cluster))
                .instrument(tracing::info_span!("index_changes")),
        );
        tokio::spawn(
            expiry::sweep_expired_items(
                Arc::downgrade(&cluster),
                options.ttl_sweep_interval,
                options.stream_retention,
            )
            .instrument(tracing::info_span!("ttl_sweep")),
        );
        let recovery_interval = (options.transaction_recovery_after / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(
            transaction_recovery::recover_transactions(Arc::downgrade(&cluster), recovery_interval)
                .instrument(tracing::info_span!("transaction_recovery")),
        );
        Ok(cluster)
    }

    /// Builds the node's parts around its catalog replica and group.
    fn assemble(
        storage: Storage,
        node: Arc<RaftNode>,
        catalog: Arc<CatalogStateMachine>,
        catalog_group: Group<CatalogOutcome>,
        options: &ClusterOptions,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let peers = Peers::new(node.clone());
        let catalog = Arc::new(CatalogClient::new(catalog, catalog_group, peers.clone()));
        let outbox_signal = Arc::new(tokio::sync::Notify::new());
        let host = Arc::new(PartitionHost::new(
            storage.clone(),
            node.clone(),
            catalog.clone(),
            peers.clone(),
            (options.item_collection_limit_bytes, outbox_signal.clone()),
        )?);
        let router = Arc::new(Router::new(catalog.clone(), host.clone(), peers.clone()));
        let ledger = Arc::new(ledger::Ledger::new(
            router.clone(),
            catalog.clone(),
            options.transaction_recovery_after,
        ));
        let lifecycle = Arc::new(tokio::sync::Mutex::new(()));
        let splitter = Arc::new(Splitter::new(
            storage.clone(),
            node.clone(),
            catalog.clone(),
            host.clone(),
            lifecycle.clone(),
            options,
        ));
        let replicas = Arc::new(ReplicaController::new(
            node.clone(),
            catalog.clone(),
            host.clone(),
            peers.clone(),
        ));
        let shipper = Arc::new(shipping::Shipper::new(
            catalog.clone(),
            host.clone(),
            router.clone(),
            outbox_signal,
        ));
        Ok(Arc::new(Cluster {
            storage,
            node,
            peers,
            catalog,
            host,
            router,
            shipper,
            index_changes: tokio::sync::Mutex::new(()),
            driven_index_changes: std::sync::Mutex::new(std::collections::BTreeSet::new()),
            fed_streams: std::sync::Mutex::new(BTreeMap::new()),
            ttl_cursors: std::sync::Mutex::new(BTreeMap::new()),
            splitter,
            lifecycle,
            replicas,
            ledger,
            rng_seed: options.node.rng_seed,
            table_ids_drawn: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Finishes the creations, deletions and splits a crash interrupted,
    /// and deletes the Raft state of groups no longer placed here. With
    /// peers down this may not finish now; it is not a reason to stop the
    /// node (the next start, or another node, finishes it).
    async fn finish_interrupted_work(self: &Arc<Self>) {
        for table in self.catalog.view().tables() {
            let finished = match table.status {
                TableStatus::Deleting => self.finish_delete(&table).await,
                TableStatus::Creating => self.activate(&table).await,
                TableStatus::Active | TableStatus::Updating => {
                    self.splitter.finish_interrupted_splits(&table.name).await
                }
            };
            if let Err(e) = finished {
                tracing::warn!(table = %table.name, error = %e, "could not finish what a crash interrupted");
            }
        }
        self.delete_orphaned_index_tables().await;
        if let Err(e) = self.host.forget_orphaned_groups().await {
            tracing::warn!(error = %e, "could not delete the state of groups no longer placed here");
        }
    }

    /// Records this node in the catalog (its addresses and zone may have
    /// changed since it last started). Registering is idempotent, so an
    /// attempt whose outcome is unknown (a lost answer) is simply made
    /// again, for as long as it takes: the node cannot serve before.
    async fn register(&self, record: NodeRecord) -> Result<(), ClusterError> {
        loop {
            if self.catalog.view().nodes().contains(&record) {
                return Ok(());
            }
            match self
                .catalog
                .propose(CatalogCommand::RegisterNode {
                    node: record.clone(),
                })
                .await
            {
                Ok(outcome) => {
                    outcome.map_err(|r| r.into_error(&record.node_id.to_string()))?;
                    return Ok(());
                }
                Err(e)
                    if e.is_retryable()
                        || matches!(
                            e,
                            ClusterError::Replication(ReplicationError::OutcomeUnknown(_))
                        ) =>
                {
                    tracing::info!(error = %e, "registering this node failed; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Stops all groups (the log writer syncs its last batch), then writes
    /// the memtables out so that a restart need not replay the journal.
    pub async fn shutdown(&self) {
        self.node.shutdown().await;
        let storage = self.storage.clone();
        let flushed = tokio::task::spawn_blocking(move || storage.flush_memtables()).await;
        if !matches!(flushed, Ok(Ok(()))) {
            // Nothing is lost: the journal still holds what was not flushed.
            tracing::warn!(
                ?flushed,
                "memtables not flushed at shutdown; the next start replays the journal"
            );
        }
    }

    /// Stops every group at once, as a crash would: no leadership is
    /// handed off and nothing is flushed (for simulations and tests).
    pub async fn crash(&self) {
        self.node.stop(false).await;
    }

    /// Splits partition `group_id` of `table_name` at `at_token` (see
    /// `Splitter::split_partition`); for tests and operators.
    pub async fn split_partition(
        &self,
        table_name: &str,
        group_id: GroupId,
        at_token: u64,
    ) -> Result<(), ClusterError> {
        self.splitter
            .split_partition(table_name, group_id, at_token)
            .await
    }

    /// This node's data plane: item reads and writes.
    pub fn data_plane(&self) -> crate::DataPlane {
        crate::DataPlane::new(self.router.clone(), self.ledger.clone())
    }

    /// This node's access to the catalog: table lookups and changes.
    pub fn catalog(&self) -> &CatalogClient {
        &self.catalog
    }

    /// The storage of this node.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// How long to wait for something that should be quick on one node.
    pub fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }
}
