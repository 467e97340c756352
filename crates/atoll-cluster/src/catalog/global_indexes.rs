//! Catalog changes of global secondary indexes on a live table.

use std::sync::Arc;

use atoll_model::table::{GlobalIndex, IndexStatus, KeyAttribute, TableDefinition, TableStatus};
use atoll_replication::ApplyContext;
use atoll_storage::StorageError;

use super::{CatalogOutcome, CatalogStateMachine, Rejection};

impl CatalogStateMachine {
    /// The table `name` if it is still incarnation `table_id`.
    fn incarnation(&self, name: &str, table_id: &str) -> Result<TableDefinition, Rejection> {
        match self.table(name) {
            Some(t) if t.table_id == table_id && t.status != TableStatus::Deleting => {
                Ok((*t).clone())
            }
            _ => Err(Rejection::NotFound),
        }
    }

    /// Adds a CREATING global index to an ACTIVE table.
    pub(super) fn add_global_index(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        table_id: &str,
        index: GlobalIndex,
    ) -> Result<CatalogOutcome, StorageError> {
        let mut table = match self.incarnation(name, table_id) {
            Ok(t) if t.status != TableStatus::Active => return Ok(Err(Rejection::InUse)),
            Ok(t) => t,
            Err(r) => return Ok(Err(r)),
        };
        let taken =
            table.local_index(&index.name).is_some() || table.global_index(&index.name).is_some();
        if taken {
            return Ok(Err(Rejection::IndexExists));
        }
        let busy = table
            .global_indexes
            .iter()
            .any(|i| matches!(i.status, IndexStatus::Creating | IndexStatus::Deleting));
        if busy {
            return Ok(Err(Rejection::IndexBusy));
        }
        let keys = std::iter::once(&index.key_schema.partition_key)
            .chain(index.key_schema.sort_key.as_ref());
        for key in keys {
            // A redeclared attribute keeps the type the table has.
            if !table
                .attribute_definitions
                .iter()
                .any(|a| a.name == key.name)
            {
                table.attribute_definitions.push(key.clone());
            }
        }
        table.global_indexes.push(GlobalIndex {
            status: IndexStatus::Creating,
            backfilling: false,
            ..index
        });
        table.global_index_epoch += 1;
        Ok(Ok(Some(self.store(ctx, table)?)))
    }

    /// Sets a global index's status; DELETING changes which indexes the
    /// table's partitions feed.
    pub(super) fn set_global_index_state(
        &self,
        ctx: &mut ApplyContext,
        (name, table_id): (&str, &str),
        index: &str,
        status: IndexStatus,
        backfilling: bool,
    ) -> Result<CatalogOutcome, StorageError> {
        let mut table = match self.incarnation(name, table_id) {
            Ok(t) => t,
            Err(r) => return Ok(Err(r)),
        };
        let Some(found) = table.global_indexes.iter_mut().find(|i| i.name == index) else {
            return Ok(Err(Rejection::IndexNotFound));
        };
        // Two builders of one index may overlap (the catalog's leadership
        // moved while the old leader still built it): a late one must not
        // take an ACTIVE index back to CREATING, nor revive a DELETING one.
        let backwards = match (found.status, status) {
            (IndexStatus::Active | IndexStatus::Updating, IndexStatus::Creating) => true,
            (IndexStatus::Deleting, other) => other != IndexStatus::Deleting,
            _ => false,
        };
        if backwards {
            return Ok(Ok(Some(Arc::new(table))));
        }
        let stops_feeding =
            status == IndexStatus::Deleting && found.status != IndexStatus::Deleting;
        found.status = status;
        found.backfilling = backfilling;
        if stops_feeding {
            table.global_index_epoch += 1;
        }
        Ok(Ok(Some(self.store(ctx, table)?)))
    }

    /// Forgets a global index and the attribute definitions no remaining
    /// key schema (the table's, a local or global index's) uses.
    pub(super) fn remove_global_index(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        table_id: &str,
        index: &str,
    ) -> Result<CatalogOutcome, StorageError> {
        let mut table = match self.incarnation(name, table_id) {
            Ok(t) => t,
            Err(r) => return Ok(Err(r)),
        };
        if table.global_index(index).is_none() {
            return Ok(Ok(Some(self.store(ctx, table)?)));
        }
        table.global_indexes.retain(|i| i.name != index);
        let used = |attribute: &KeyAttribute| {
            table.key_schema.is_key_attribute(&attribute.name)
                || table
                    .local_indexes
                    .iter()
                    .any(|i| i.key_schema.is_key_attribute(&attribute.name))
                || table
                    .global_indexes
                    .iter()
                    .any(|i| i.key_schema.is_key_attribute(&attribute.name))
        };
        let kept: Vec<KeyAttribute> = table
            .attribute_definitions
            .iter()
            .filter(|a| used(a))
            .cloned()
            .collect();
        table.attribute_definitions = kept;
        Ok(Ok(Some(self.store(ctx, table)?)))
    }
}
