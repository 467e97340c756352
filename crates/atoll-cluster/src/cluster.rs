//! A node's view of the cluster: the catalog group, the partition groups it
//! hosts, and routing of item requests to them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atoll_model::Item;
use atoll_model::table::{PartitionDefinition, TableDefinition, TableStatus};
use atoll_partition::{
    PartitionCommand, PartitionOutput, PartitionStateMachine, PartitionStats, TokenRange, WriteOp,
    read_item,
};
use atoll_replication::{Group, GroupId, NodeOptions, RaftNode};
use atoll_storage::{Keyspace, Storage};

use crate::catalog::{CatalogCommand, CatalogOutcome, CatalogStateMachine, TableUpdate};
use crate::error::ClusterError;

const CATALOG_GROUP_ID: GroupId = 0;
const CATALOG_KEYSPACE: &str = "catalog";
const PARTITION_STATS_KEYSPACE: &str = "partition_stats";
/// Prefix of the keyspace holding a table's items.
const TABLE_KEYSPACE_PREFIX: &str = "t_";

/// DynamoDB splits a partition that grows past 10 GB.
pub const DEFAULT_SPLIT_SIZE_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// How long a write keeps retrying while the partition map changes under it.
const PARTITION_MOVE_RETRY: Duration = Duration::from_secs(5);

/// How this node takes part in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Raft settings of this node.
    pub node: NodeOptions,
    /// A partition whose items exceed this size splits in two.
    pub split_size_bytes: u64,
    /// How often partition sizes are checked against `split_size_bytes`.
    pub split_check_interval: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            node: NodeOptions::default(),
            split_size_bytes: DEFAULT_SPLIT_SIZE_BYTES,
            split_check_interval: Duration::from_secs(1),
        }
    }
}

/// A partition served by this node.
#[derive(Clone)]
struct PartitionHandle {
    group: Group,
    items: Keyspace,
    stats: Arc<PartitionStats>,
    sm: Arc<PartitionStateMachine>,
}

/// Item count and size of a table, summed over its partitions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Items in the table.
    pub item_count: u64,
    /// Total DynamoDB size of the items.
    pub size_bytes: u64,
}

/// The control plane and router of one node.
pub struct Cluster {
    storage: Storage,
    node: Arc<RaftNode>,
    catalog: Arc<CatalogStateMachine>,
    catalog_group: Group,
    stats_keyspace: Keyspace,
    partitions: RwLock<HashMap<GroupId, PartitionHandle>>,
    // Serialises table lifecycle work (create, delete, split) on this node.
    lifecycle: tokio::sync::Mutex<()>,
    split_size_bytes: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Cluster {
    /// Opens the node: recovers the catalog, then every partition of every
    /// table, finishing creations and deletions a crash interrupted.
    pub async fn open(
        storage: Storage,
        options: ClusterOptions,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let node = RaftNode::open(storage.clone(), options.node)?;
        let catalog = Arc::new(CatalogStateMachine::open(
            storage.keyspace(CATALOG_KEYSPACE)?,
        )?);
        let catalog_group = node.start_group(CATALOG_GROUP_ID, catalog.clone()).await?;
        let split_check_interval = options.split_check_interval;
        let cluster = Arc::new(Cluster {
            split_size_bytes: options.split_size_bytes,
            stats_keyspace: storage.keyspace(PARTITION_STATS_KEYSPACE)?,
            storage,
            node,
            catalog,
            catalog_group,
            partitions: RwLock::new(HashMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
        });
        cluster.drop_orphaned_keyspaces()?;
        for table in cluster.catalog.tables() {
            match table.status {
                TableStatus::Deleting => cluster.finish_delete(&table).await?,
                TableStatus::Creating => {
                    cluster.start_partitions(&table).await?;
                    cluster.set_status(&table, TableStatus::Active).await?;
                }
                TableStatus::Active | TableStatus::Updating => {
                    cluster.start_partitions(&table).await?;
                    cluster.finish_interrupted_splits(&table.name).await?;
                }
            }
        }
        tokio::spawn(watch_partition_sizes(
            Arc::downgrade(&cluster),
            split_check_interval,
        ));
        Ok(cluster)
    }

    /// Drops table keyspaces the catalog no longer references: a crash during
    /// DeleteTable can leave the keyspace behind after the catalog forgot it.
    fn drop_orphaned_keyspaces(&self) -> Result<(), ClusterError> {
        let referenced: std::collections::HashSet<String> = self
            .catalog
            .tables()
            .iter()
            .map(|t| t.keyspace.clone())
            .collect();
        for name in self.storage.keyspace_names() {
            if name.starts_with(TABLE_KEYSPACE_PREFIX) && !referenced.contains(&name) {
                tracing::info!(keyspace = %name, "dropping the keyspace of a deleted table");
                self.storage.drop_keyspace(&name)?;
            }
        }
        Ok(())
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

    /// The storage of this node.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    async fn propose_catalog(
        &self,
        command: CatalogCommand,
    ) -> Result<CatalogOutcome, ClusterError> {
        let bytes =
            postcard::to_stdvec(&command).map_err(|e| ClusterError::Catalog(e.to_string()))?;
        let output = self
            .catalog_group
            .propose(bytes::Bytes::from(bytes))
            .await?;
        let outcome = output
            .downcast::<CatalogOutcome>()
            .ok_or_else(|| ClusterError::Catalog("catalog command produced no outcome".into()))?;
        Ok((*outcome).clone())
    }

    fn partition_state_machine(
        &self,
        table: &TableDefinition,
        partition: &PartitionDefinition,
    ) -> Result<Arc<PartitionStateMachine>, ClusterError> {
        let items = self.storage.keyspace(&table.keyspace)?;
        Ok(Arc::new(PartitionStateMachine::open(
            partition.group_id,
            items,
            self.stats_keyspace.clone(),
            (partition.start_token, partition.end_token),
        )?))
    }

    async fn start_partition(
        &self,
        table: &TableDefinition,
        partition: &PartitionDefinition,
    ) -> Result<(), ClusterError> {
        let sm = self.partition_state_machine(table, partition)?;
        let handle_sm = sm.clone();
        let stats = sm.stats();
        let items = sm.items().clone();
        let group = self.node.start_group(partition.group_id, sm).await?;
        self.partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                partition.group_id,
                PartitionHandle {
                    group,
                    items,
                    stats,
                    sm: handle_sm,
                },
            );
        Ok(())
    }

    async fn start_partitions(&self, table: &TableDefinition) -> Result<(), ClusterError> {
        for partition in &table.partitions {
            self.start_partition(table, partition).await?;
        }
        Ok(())
    }

    fn handle(&self, group_id: GroupId) -> Option<PartitionHandle> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group_id)
            .cloned()
    }

    /// A partition whose log fenced off a split the catalog never recorded
    /// (a crash in between) finishes the split now.
    async fn finish_interrupted_splits(&self, table_name: &str) -> Result<(), ClusterError> {
        loop {
            let Some(table) = self.catalog.table(table_name) else {
                return Ok(());
            };
            let unfinished = table.partitions.iter().find_map(|p| {
                let (_, last) = self.handle(p.group_id)?.sm.range();
                (last < p.end_token).then(|| (p.group_id, last + 1))
            });
            match unfinished {
                Some((group_id, at_token)) => {
                    tracing::info!(table = %table_name, group_id, at_token, "finishing an interrupted partition split");
                    self.record_split(&table, group_id, at_token).await?;
                }
                None => return Ok(()),
            }
        }
    }

    /// Splits partition `group_id` of `table_name` at `at_token`: the
    /// partition's own log fences off the upper tokens first (from then on
    /// it refuses writes there, and writes that were ordered before are
    /// applied), then the catalog records the new partition, which starts on
    /// the same items keyspace and counts what it finds in its range. Writes
    /// refused in between are retried by `write` on the new map.
    pub async fn split_partition(
        &self,
        table_name: &str,
        group_id: GroupId,
        at_token: u64,
    ) -> Result<(), ClusterError> {
        let _lifecycle = self.lifecycle.lock().await;
        let table = self.active_table(table_name)?;
        let handle = self
            .handle(group_id)
            .ok_or_else(|| ClusterError::NoPartition {
                table: table_name.to_string(),
                token: at_token,
            })?;
        let fenced = handle
            .group
            .propose(PartitionCommand::Split { at_token }.encode()?)
            .await?
            .downcast::<PartitionOutput>()
            .ok_or_else(|| ClusterError::Catalog("split produced no outcome".into()))?;
        match &*fenced {
            PartitionOutput::Split { .. } => {}
            PartitionOutput::Rejected { message } => {
                return Err(ClusterError::Catalog(format!("split refused: {message}")));
            }
            other => {
                return Err(ClusterError::Catalog(format!(
                    "unexpected outcome of a split: {other:?}"
                )));
            }
        }
        self.record_split(&table, group_id, at_token).await
    }

    async fn record_split(
        &self,
        table: &TableDefinition,
        group_id: GroupId,
        at_token: u64,
    ) -> Result<(), ClusterError> {
        let updated = self
            .propose_catalog(CatalogCommand::SplitPartition {
                name: table.name.clone(),
                table_id: table.table_id.clone(),
                group_id,
                at_token,
            })
            .await?
            .map_err(|r| r.into_error(&table.name))?
            .ok_or_else(|| ClusterError::Catalog("split produced no table".into()))?;
        let upper = updated
            .partitions
            .iter()
            .find(|p| p.start_token == at_token)
            .cloned()
            .ok_or_else(|| ClusterError::Catalog("split left no upper partition".into()))?;
        if self.handle(upper.group_id).is_none() {
            self.start_partition(&updated, &upper).await?;
        }
        tracing::info!(
            table = %table.name,
            from_group = group_id,
            new_group = upper.group_id,
            at_token = format_args!("{at_token:#018x}"),
            partitions = updated.partitions.len(),
            "split partition"
        );
        Ok(())
    }

    /// Splits every partition that has grown past the size threshold, at a
    /// token that leaves about half of its bytes on each side.
    async fn split_large_partitions(&self) -> Result<(), ClusterError> {
        for table in self.catalog.tables() {
            if table.status != TableStatus::Active {
                continue;
            }
            for partition in &table.partitions {
                let Some(handle) = self.handle(partition.group_id) else {
                    continue;
                };
                if handle.stats.size_bytes() <= self.split_size_bytes {
                    continue;
                }
                let range = handle.sm.range();
                let items = handle.items.clone();
                let half = handle.stats.size_bytes() / 2;
                let point = tokio::task::spawn_blocking(move || split_point(&items, range, half))
                    .await
                    .map_err(|e| ClusterError::Catalog(e.to_string()))??;
                if let Some(at_token) = point {
                    self.split_partition(&table.name, partition.group_id, at_token)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn set_status(
        &self,
        table: &TableDefinition,
        status: TableStatus,
    ) -> Result<(), ClusterError> {
        self.propose_catalog(CatalogCommand::SetStatus {
            name: table.name.clone(),
            table_id: table.table_id.clone(),
            status,
        })
        .await?
        .map_err(|r| r.into_error(&table.name))?;
        Ok(())
    }

    async fn finish_delete(&self, table: &TableDefinition) -> Result<(), ClusterError> {
        for partition in &table.partitions {
            self.partitions
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&partition.group_id);
            let sm = self.partition_state_machine(table, partition)?;
            self.node.destroy_group(partition.group_id, sm).await?;
            let mut batch = atoll_storage::WriteBatch::new();
            for key in PartitionStateMachine::record_keys(partition.group_id) {
                batch.delete(&self.stats_keyspace, key);
            }
            self.storage
                .commit(batch, atoll_storage::Durability::Buffered)?;
        }
        self.storage.drop_keyspace(&table.keyspace)?;
        self.propose_catalog(CatalogCommand::DropTable {
            name: table.name.clone(),
            table_id: table.table_id.clone(),
        })
        .await?
        .map_err(|r| r.into_error(&table.name))?;
        Ok(())
    }

    /// The table called `name` in any state (DescribeTable shows all states).
    pub fn table(&self, name: &str) -> Option<Arc<TableDefinition>> {
        self.catalog.table(name)
    }

    /// The table called `name` if it can serve item requests.
    pub fn active_table(&self, name: &str) -> Result<Arc<TableDefinition>, ClusterError> {
        match self.catalog.table(name) {
            Some(t) if matches!(t.status, TableStatus::Active | TableStatus::Updating) => Ok(t),
            _ => Err(ClusterError::TableNotFound(name.to_string())),
        }
    }

    /// Names of all tables, in order.
    pub fn table_names(&self) -> Vec<String> {
        self.catalog
            .tables()
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    /// Creates a table from `definition` (partitions are assigned here) and
    /// returns it as DynamoDB's CreateTable reports it: CREATING.
    pub async fn create_table(
        &self,
        mut definition: TableDefinition,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        let _lifecycle = self.lifecycle.lock().await;
        definition.table_id = uuid::Uuid::new_v4().to_string();
        definition.keyspace = format!(
            "{TABLE_KEYSPACE_PREFIX}{}",
            definition.table_id.replace('-', "")
        );
        definition.created_ms = now_ms();
        definition.partitions.clear();
        let name = definition.name.clone();
        let created = self
            .propose_catalog(CatalogCommand::CreateTable {
                definition: Box::new(definition),
            })
            .await?
            .map_err(|r| r.into_error(&name))?
            .ok_or_else(|| ClusterError::Catalog("create produced no table".into()))?;
        self.start_partitions(&created).await?;
        self.set_status(&created, TableStatus::Active).await?;
        Ok(created)
    }

    /// Deletes a table and all its data; returns it as DeleteTable reports it: DELETING.
    pub async fn delete_table(&self, name: &str) -> Result<Arc<TableDefinition>, ClusterError> {
        let _lifecycle = self.lifecycle.lock().await;
        let deleting = self
            .propose_catalog(CatalogCommand::BeginDelete {
                name: name.to_string(),
            })
            .await?
            .map_err(|r| r.into_error(name))?
            .ok_or_else(|| ClusterError::Catalog("delete produced no table".into()))?;
        self.finish_delete(&deleting).await?;
        Ok(deleting)
    }

    /// Applies `update` to an ACTIVE table and returns the result.
    pub async fn update_table(
        &self,
        name: &str,
        update: TableUpdate,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        self.propose_catalog(CatalogCommand::UpdateTable {
            name: name.to_string(),
            update,
            now_ms: now_ms(),
        })
        .await?
        .map_err(|r| r.into_error(name))?
        .ok_or_else(|| ClusterError::Catalog("update produced no table".into()))
    }

    /// Adds or overwrites tags of a table.
    pub async fn tag_table(
        &self,
        name: &str,
        tags: Vec<(String, String)>,
    ) -> Result<(), ClusterError> {
        self.propose_catalog(CatalogCommand::Tag {
            name: name.to_string(),
            tags,
        })
        .await?
        .map_err(|r| r.into_error(name))?;
        Ok(())
    }

    /// Removes tags of a table.
    pub async fn untag_table(&self, name: &str, keys: Vec<String>) -> Result<(), ClusterError> {
        self.propose_catalog(CatalogCommand::Untag {
            name: name.to_string(),
            keys,
        })
        .await?
        .map_err(|r| r.into_error(name))?;
        Ok(())
    }

    /// Item count and size of a table.
    pub fn table_stats(&self, table: &TableDefinition) -> TableStats {
        let partitions = self.partitions.read().unwrap_or_else(|e| e.into_inner());
        let mut stats = TableStats::default();
        for partition in &table.partitions {
            if let Some(handle) = partitions.get(&partition.group_id) {
                stats.item_count += handle.stats.item_count();
                stats.size_bytes += handle.stats.size_bytes();
            }
        }
        stats
    }

    /// The partition owning `token` in the catalog's current map of `table`
    /// (the caller's copy may predate a split). A partition the catalog has
    /// just recorded may take a moment to start here; that wait is bounded.
    async fn partition(
        &self,
        table: &TableDefinition,
        token: u64,
    ) -> Result<PartitionHandle, ClusterError> {
        let no_partition = || ClusterError::NoPartition {
            table: table.name.clone(),
            token,
        };
        let deadline = Instant::now() + PARTITION_MOVE_RETRY;
        loop {
            let current = self
                .catalog
                .table(&table.name)
                .filter(|t| t.table_id == table.table_id)
                .ok_or_else(no_partition)?;
            let definition = current
                .partition_for_token(token)
                .ok_or_else(no_partition)?;
            if let Some(handle) = self.handle(definition.group_id) {
                return Ok(handle);
            }
            if Instant::now() >= deadline {
                return Err(no_partition());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn propose_to(
        &self,
        partition: &PartitionHandle,
        command: &PartitionCommand,
    ) -> Result<PartitionOutput, ClusterError> {
        let output = partition.group.propose(command.encode()?).await?;
        let output = output
            .downcast::<PartitionOutput>()
            .ok_or_else(|| ClusterError::Catalog("partition command produced no outcome".into()))?;
        Ok(Arc::try_unwrap(output).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// Replicates `command` through the partition owning `token` and returns
    /// its outcome. A partition that split away the key refuses the command;
    /// it is then sent again on the current partition map (a batch regrouped
    /// by partition), so callers never see a split.
    pub async fn write(
        &self,
        table: &TableDefinition,
        token: u64,
        command: &PartitionCommand,
    ) -> Result<PartitionOutput, ClusterError> {
        let deadline = Instant::now() + PARTITION_MOVE_RETRY;
        loop {
            let partition = self.partition(table, token).await?;
            match self.propose_to(&partition, command).await? {
                PartitionOutput::WrongPartition => {}
                output => return Ok(output),
            }
            if let PartitionCommand::Batch { ops } = command {
                return self.write_regrouped(table, ops, deadline).await;
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::PartitionMoved {
                    table: table.name.clone(),
                });
            }
            // The catalog records a split just after the partition fences it.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Writes a batch that straddles partitions: each partition's share
    /// goes as its own batch; shares refused by a partition that split are
    /// regrouped and sent again. Old sizes come back in the batch's order.
    async fn write_regrouped(
        &self,
        table: &TableDefinition,
        ops: &[WriteOp],
        deadline: Instant,
    ) -> Result<PartitionOutput, ClusterError> {
        let mut old_sizes_bytes = vec![0u32; ops.len()];
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        while !pending.is_empty() {
            let mut groups: HashMap<GroupId, (PartitionHandle, Vec<usize>)> = HashMap::new();
            for index in pending.drain(..) {
                let Some(op) = ops.get(index) else { continue };
                let token = atoll_partition::row_key_token(op.row_key()).unwrap_or_default();
                let handle = self.partition(table, token).await?;
                groups
                    .entry(handle.group.id())
                    .or_insert_with(|| (handle, Vec::new()))
                    .1
                    .push(index);
            }
            let sends = groups.into_values().map(|(handle, indices)| async move {
                let share = PartitionCommand::Batch {
                    ops: indices
                        .iter()
                        .filter_map(|i| ops.get(*i).cloned())
                        .collect(),
                };
                (indices, self.propose_to(&handle, &share).await)
            });
            for (indices, outcome) in futures_util::future::join_all(sends).await {
                match outcome? {
                    PartitionOutput::BatchWritten {
                        old_sizes_bytes: sizes,
                    } => {
                        for (index, size) in indices.into_iter().zip(sizes) {
                            if let Some(slot) = old_sizes_bytes.get_mut(index) {
                                *slot = size;
                            }
                        }
                    }
                    PartitionOutput::WrongPartition => pending.extend(indices),
                    other => {
                        return Err(ClusterError::Catalog(format!(
                            "unexpected outcome of a batch: {other:?}"
                        )));
                    }
                }
            }
            if !pending.is_empty() {
                if Instant::now() >= deadline {
                    return Err(ClusterError::PartitionMoved {
                        table: table.name.clone(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        Ok(PartitionOutput::BatchWritten { old_sizes_bytes })
    }

    /// Reads one item; a consistent read first confirms this replica leads
    /// its partition and has applied everything committed.
    pub async fn read_item(
        &self,
        table: &TableDefinition,
        token: u64,
        row_key: &[u8],
        consistent: bool,
    ) -> Result<Option<Item>, ClusterError> {
        let partition = self.partition(table, token).await?;
        if consistent {
            partition.group.read_barrier().await?;
        }
        Ok(read_item(&partition.items, row_key)?)
    }

    /// The items keyspace of the partition owning `token`, ready for range
    /// reads; a consistent read first confirms this replica leads the partition
    /// and has applied everything committed.
    pub async fn partition_items(
        &self,
        table: &TableDefinition,
        token: u64,
        consistent: bool,
    ) -> Result<Keyspace, ClusterError> {
        let partition = self.partition(table, token).await?;
        if consistent {
            partition.group.read_barrier().await?;
        }
        Ok(partition.items)
    }

    /// How long to wait for something that should be quick on one node.
    pub fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }
}

/// Checks partition sizes every `interval` until the cluster is dropped.
async fn watch_partition_sizes(cluster: Weak<Cluster>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        if let Err(e) = cluster.split_large_partitions().await {
            tracing::warn!(error = %e, "splitting a large partition failed; will try again");
        }
    }
}

/// A token that splits `range` of `items` with about `half_bytes` of item
/// size below it: the token of the first item at which the running size
/// reaches half, or the next token up when that is the range's first. All
/// items of one partition key share a token, so a split never divides one;
/// a range whose data sits under a single token has no split point.
fn split_point(
    items: &Keyspace,
    (first, last): TokenRange,
    half_bytes: u64,
) -> Result<Option<u64>, ClusterError> {
    let start = std::ops::Bound::Included(first.to_be_bytes().to_vec());
    let end = last
        .checked_add(1)
        .map_or(std::ops::Bound::Unbounded, |next| {
            std::ops::Bound::Excluded(next.to_be_bytes().to_vec())
        });
    let mut running = 0u64;
    let mut candidate: Option<u64> = None;
    for item in atoll_partition::ItemRange::new(items, start, end, false) {
        let item = item?;
        let token = atoll_partition::row_key_token(&item.row_key).unwrap_or(first);
        match candidate {
            Some(at) if token > at => return Ok(Some(token)),
            Some(_) => continue,
            None => {}
        }
        running += u64::from(item.size_bytes);
        if running >= half_bytes {
            if token > first {
                return Ok(Some(token));
            }
            // Half the bytes sit at the range's first token: split above it.
            candidate = Some(token);
        }
    }
    Ok(None)
}
