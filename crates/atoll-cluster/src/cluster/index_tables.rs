//! The hidden tables of global secondary indexes: each index's entries
//! live in a table of their own in the catalog (named so that no user's
//! table can be, see `TableDefinition::index_table_name`), whose
//! partitions are placed, split, repaired and moved like any table's.
//! They are created before their table and deleted after it.

use std::sync::Arc;

use atoll_model::table::{GlobalIndex, IndexOwner, KeyAttribute, TableDefinition, TableStatus};

use super::{Cluster, TABLE_KEYSPACE_PREFIX, now_ms};
use crate::catalog::CatalogCommand;
use crate::error::ClusterError;

impl Cluster {
    /// Gives a new table its id, keyspace and creation time.
    pub(super) fn prepare_new_table(&self, definition: &mut TableDefinition) {
        definition.table_id = self.new_table_id();
        definition.keyspace = format!(
            "{TABLE_KEYSPACE_PREFIX}{}",
            definition.table_id.replace('-', "")
        );
        definition.created_ms = now_ms();
        definition.partitions.clear();
    }

    /// Creates the hidden tables of `table`'s global indexes, CREATING
    /// (`table` has its id; its indexes get their tables' names here).
    pub(super) async fn create_index_tables(
        &self,
        table: &mut TableDefinition,
    ) -> Result<Vec<Arc<TableDefinition>>, ClusterError> {
        let mut created = Vec::with_capacity(table.global_indexes.len());
        for index in &mut table.global_indexes {
            index.table_name =
                TableDefinition::index_table_name(&table.name, &table.table_id, &index.name);
        }
        if !table.global_indexes.is_empty() {
            table.global_index_epoch = 1;
        }
        for index in &table.global_indexes {
            created.push(self.create_index_table(table, index).await?);
        }
        Ok(created)
    }

    /// Creates the hidden table of `table`'s global index `index`, CREATING.
    pub(super) async fn create_index_table(
        &self,
        table: &TableDefinition,
        index: &GlobalIndex,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        let mut definition = index_table_definition(table, index);
        self.prepare_new_table(&mut definition);
        let name = definition.name.clone();
        self.catalog
            .propose(CatalogCommand::CreateTableBy {
                definition: Box::new(definition),
                proposer: self.node.node_id(),
            })
            .await?
            .map_err(|r| r.into_error(&name))?
            .ok_or_else(|| ClusterError::Catalog("create produced no table".into()))
    }

    /// Deletes the hidden tables of `table`'s global indexes (after the
    /// table itself). One already gone is skipped.
    pub(super) async fn delete_index_tables(
        &self,
        table: &TableDefinition,
    ) -> Result<(), ClusterError> {
        for index in &table.global_indexes {
            self.delete_index_table_named(&index.table_name).await?;
        }
        Ok(())
    }

    /// Deletes the hidden index table `name`, if it still exists.
    pub(super) async fn delete_index_table_named(&self, name: &str) -> Result<(), ClusterError> {
        let deleting = match self.catalog.table(name) {
            Some(table) if table.status == TableStatus::Deleting => table,
            Some(_) => {
                let begun = self
                    .catalog
                    .propose(CatalogCommand::BeginDelete {
                        name: name.to_string(),
                    })
                    .await?;
                match begun {
                    Ok(Some(table)) => table,
                    Ok(None) | Err(crate::catalog::Rejection::NotFound) => return Ok(()),
                    Err(r) => return Err(r.into_error(name)),
                }
            }
            None => return Ok(()),
        };
        // Boxed: deleting a table deletes its index tables, which have none.
        Box::pin(self.finish_delete(&deleting)).await
    }

    /// Deletes hidden index tables whose table is gone: a crash may come
    /// between a table's deletion and its indexes', or between an index
    /// table's creation and its table's.
    pub(super) async fn delete_orphaned_index_tables(&self) {
        for table in self.catalog.view().tables() {
            let Some(owner) = &table.index_of else {
                continue;
            };
            let served = self
                .catalog
                .table(&owner.table)
                .is_some_and(|t| t.table_id == owner.table_id);
            if served || table.status == TableStatus::Creating {
                continue;
            }
            if let Err(e) = self.delete_index_table_named(&table.name).await {
                tracing::warn!(table = %table.name, error = %e, "could not delete an orphaned index table");
            }
        }
    }
}

/// The hidden table of `index` of `table`: keyed by the index's keys,
/// billed and classed as its table.
fn index_table_definition(table: &TableDefinition, index: &GlobalIndex) -> TableDefinition {
    let attribute_definitions: Vec<KeyAttribute> = std::iter::once(&index.key_schema.partition_key)
        .chain(index.key_schema.sort_key.as_ref())
        .cloned()
        .collect();
    TableDefinition {
        name: index.table_name.clone(),
        table_id: String::new(),
        region: table.region.clone(),
        key_schema: index.key_schema.clone(),
        attribute_definitions,
        billing_mode: table.billing_mode,
        throughput: index.throughput.clone(),
        last_on_demand_switch_ms: None,
        table_class: table.table_class,
        deletion_protection: false,
        stream: None,
        tags: Vec::new(),
        created_ms: 0,
        status: TableStatus::Creating,
        keyspace: String::new(),
        partitions: Vec::new(),
        local_indexes: Vec::new(),
        global_indexes: Vec::new(),
        index_of: Some(IndexOwner {
            table: table.name.clone(),
            table_id: table.table_id.clone(),
            index: index.name.clone(),
        }),
        global_index_epoch: 0,
        stream_epoch: 0,
        stream_closed_ms: None,
        time_to_live: None,
        past_streams: Vec::new(),
    }
}
