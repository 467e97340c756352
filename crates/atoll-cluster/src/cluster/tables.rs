//! Table lifecycles as the API asks for them: create, update (settings,
//! indexes' throughput, Time to Live, tags), delete, and statistics; each a
//! catalog change, finished by the parts that host and route.

use std::sync::Arc;

use atoll_model::table::TableDefinition;

use super::{Cluster, TableStats, now_ms};
use crate::catalog::{CatalogCommand, IndexThroughputUpdate, TableUpdate};
use crate::error::ClusterError;

impl Cluster {
    /// Creates a table from `definition` (partitions are assigned here) and
    /// returns it as DynamoDB's CreateTable reports it: CREATING.
    pub async fn create_table(
        self: &Arc<Self>,
        mut definition: TableDefinition,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        let _lifecycle = self.lifecycle.lock().await;
        self.prepare_new_table(&mut definition);
        // The indexes' tables first: the table's partitions feed them from
        // its first write.
        let index_tables = self.create_index_tables(&mut definition).await?;
        let name = definition.name.clone();
        let created = self
            .catalog
            .propose(CatalogCommand::CreateTableBy {
                definition: Box::new(definition),
                proposer: self.node.node_id(),
            })
            .await?
            .map_err(|r| r.into_error(&name))?
            .ok_or_else(|| ClusterError::Catalog("create produced no table".into()))?;
        for index_table in &index_tables {
            self.activate(index_table).await?;
        }
        self.activate(&created).await?;
        Ok(created)
    }

    /// A random table id; drawn from the node's seed when it has one (a
    /// simulation: the id travels in requests whose fate it must not change).
    pub(super) fn new_table_id(&self) -> String {
        let Some(seed) = self.rng_seed else {
            return uuid::Uuid::new_v4().to_string();
        };
        let count = self
            .table_ids_drawn
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut state = seed ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
        }
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// Deletes a table and all its data; returns it as DeleteTable reports it: DELETING.
    pub async fn delete_table(
        self: &Arc<Self>,
        name: &str,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        let _lifecycle = self.lifecycle.lock().await;
        let deleting = self
            .catalog
            .propose(CatalogCommand::BeginDelete {
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
        self.update_table_and_indexes(name, update, Vec::new())
            .await
    }

    /// Changes settings of an ACTIVE table and the provisioned throughput
    /// of its global indexes, in one catalog change.
    pub async fn update_table_and_indexes(
        &self,
        name: &str,
        update: TableUpdate,
        indexes: Vec<IndexThroughputUpdate>,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        let now_ms = now_ms();
        let changes_stream = update.stream.is_some();
        let command = match indexes.is_empty() {
            // Nodes of earlier versions read only this one.
            true => CatalogCommand::UpdateTable {
                name: name.to_string(),
                update,
                now_ms,
            },
            false => CatalogCommand::UpdateTableAndIndexes {
                name: name.to_string(),
                update,
                indexes,
                now_ms,
            },
        };
        let updated = self
            .catalog
            .propose(command)
            .await?
            .map_err(|r| r.into_error(name))?
            .ok_or_else(|| ClusterError::Catalog("update produced no table".into()))?;
        // The partitions write to the new stream (or stop) before the
        // answer; a crash before then is mended by the catalog's leader.
        if changes_stream {
            self.feed_stream(name).await?;
        }
        Ok(updated)
    }

    /// Sets the Time to Live of ACTIVE table `name`.
    pub async fn set_time_to_live(
        &self,
        name: &str,
        attribute: &str,
        enabled: bool,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        self.catalog
            .propose(CatalogCommand::SetTimeToLive {
                name: name.to_string(),
                attribute: attribute.to_string(),
                enabled,
                now_ms: now_ms(),
            })
            .await?
            .map_err(|r| r.into_error(name))?
            .ok_or_else(|| ClusterError::Catalog("a TTL change produced no table".into()))
    }

    /// Adds or overwrites tags of a table.
    pub async fn tag_table(
        &self,
        name: &str,
        tags: Vec<(String, String)>,
    ) -> Result<(), ClusterError> {
        self.catalog
            .propose(CatalogCommand::Tag {
                name: name.to_string(),
                tags,
            })
            .await?
            .map_err(|r| r.into_error(name))?;
        Ok(())
    }

    /// Removes tags of a table.
    pub async fn untag_table(&self, name: &str, keys: Vec<String>) -> Result<(), ClusterError> {
        self.catalog
            .propose(CatalogCommand::Untag {
                name: name.to_string(),
                keys,
            })
            .await?
            .map_err(|r| r.into_error(name))?;
        Ok(())
    }

    /// Item count and size of a table: summed over its partitions, each as
    /// a replica knows it (this node's, or another node's when it holds
    /// none; a partition no replica answers for counts nothing).
    pub async fn table_stats(&self, table: &TableDefinition) -> TableStats {
        let mut stats = TableStats::default();
        for partition in &table.partitions {
            let group = partition.group_id;
            if let Some(handle) = self.host.handle(group) {
                stats.item_count += handle.stats.item_count();
                stats.size_bytes += handle.stats.size_bytes();
                continue;
            }
            if let Some((item_count, size_bytes)) = self.remote_stats(group).await {
                stats.item_count += item_count;
                stats.size_bytes += size_bytes;
            }
        }
        stats
    }
}
