//! Routing of item requests to the partition that owns their token, on the
//! catalog's current partition map, with the retries a split calls for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_model::Item;
use atoll_model::table::TableDefinition;
use atoll_partition::{PartitionCommand, PartitionOutput, WriteOp, read_item};
use atoll_replication::GroupId;
use atoll_storage::Keyspace;

use super::{Cluster, PARTITION_MOVE_RETRY, PartitionHandle};
use crate::error::ClusterError;

impl Cluster {
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
            partition.traffic.count_write(token);
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
        partition.traffic.count_read(Some(token));
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
        // Query and Scan: counted, but their token says little about load.
        partition.traffic.count_read(None);
        if consistent {
            partition.group.read_barrier().await?;
        }
        Ok(partition.items)
    }
}
