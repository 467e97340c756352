//! Global secondary indexes added to and deleted from a live table.
//!
//! Adding one: the catalog records it CREATING; its hidden table is created
//! and served; every partition of the table is told, through its log, to
//! feed it from then on; then a backfill walks the table's items in token
//! order, one partition's step per log entry, putting each item's entry in
//! the outbox as of that entry. A write after a step has a newer version
//! than the step's, and a write before it is superseded by it, so the order
//! of backfill and writes never loses a change. Then it is ACTIVE.
//!
//! Deleting one: the catalog records it DELETING (the partitions stop
//! feeding it), its hidden table is deleted, then the catalog forgets it.
//!
//! Both run in the background after UpdateTable answers, driven by the
//! node that leads the catalog (`drive_index_changes`): when it dies or
//! loses the lead, the next leader takes them up from the catalog's state.
//! Every step may be repeated, and two builders overlapping for a moment
//! (a leadership change) do no harm: the catalog never takes an index
//! back to an earlier state.

use std::sync::{Arc, Weak};
use std::time::Duration;

use atoll_model::table::{GlobalIndex, IndexStatus, TableDefinition};
use atoll_partition::{GlobalIndexSet, GlobalIndexSpec, PartitionCommand, PartitionOutput};
use metrics::counter;
use tracing::Instrument;

use super::Cluster;
use crate::catalog::CatalogCommand;
use crate::error::ClusterError;

/// Items one backfill step reads.
const BACKFILL_STEP_ITEMS: u32 = 256;

/// How often the catalog's leader looks for index changes to drive even
/// when the catalog did not change (a failed attempt is retried then, and
/// a new leader takes over within this).
const INDEX_WORK_INTERVAL: Duration = Duration::from_secs(1);

/// While this node leads the catalog, drives every CREATING or DELETING
/// global index to its end, until the cluster is dropped.
pub(super) async fn drive_index_changes(cluster: Weak<Cluster>) {
    let Some(woken) = cluster
        .upgrade()
        .map(|c| c.catalog.view().index_work.clone())
    else {
        return;
    };
    loop {
        let _ = tokio::time::timeout(INDEX_WORK_INTERVAL, woken.notified()).await;
        let Some(cluster) = cluster.upgrade().filter(|c| !c.node.is_stopped()) else {
            return;
        };
        if cluster.catalog.group().is_leader() {
            cluster.resume_index_changes();
            cluster.resume_stream_feeds();
        }
    }
}

/// The global indexes `table`'s partitions are to feed: all but those
/// being deleted.
pub(super) fn global_index_set(table: &TableDefinition) -> GlobalIndexSet {
    GlobalIndexSet {
        epoch: table.global_index_epoch,
        indexes: table
            .global_indexes
            .iter()
            .filter(|index| index.status != IndexStatus::Deleting)
            .map(|index| GlobalIndexSpec {
                name: index.name.clone(),
                index_table: index.table_name.clone(),
                key_schema: index.key_schema.clone(),
                projection: index.projection.clone(),
            })
            .collect(),
    }
}

impl Cluster {
    /// Adds global index `index` to table `name` (CREATING) and builds it
    /// in the background; returns the table as the catalog has it then.
    pub async fn create_global_index(
        self: &Arc<Self>,
        name: &str,
        mut index: GlobalIndex,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        let table = self.catalog.active_table_or_catch_up(name).await?;
        index.table_name =
            TableDefinition::index_table_name(&table.name, &table.table_id, &index.name);
        let updated = self
            .catalog
            .propose(CatalogCommand::AddGlobalIndex {
                name: name.to_string(),
                table_id: table.table_id.clone(),
                index,
            })
            .await?
            .map_err(|r| r.into_error(name))?
            .ok_or_else(|| ClusterError::Catalog("adding an index produced no table".into()))?;
        // The catalog's leader builds it (`drive_index_changes`).
        Ok(updated)
    }

    /// Starts deleting global index `index` of table `name` (DELETING) and
    /// finishes in the background; returns the table as the catalog has it then.
    pub async fn delete_global_index(
        self: &Arc<Self>,
        name: &str,
        index: &str,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        let table = self.catalog.active_table_or_catch_up(name).await?;
        let updated = self
            .catalog
            .propose(CatalogCommand::SetGlobalIndexState {
                name: name.to_string(),
                table_id: table.table_id.clone(),
                index: index.to_string(),
                status: IndexStatus::Deleting,
                backfilling: false,
            })
            .await?
            .map_err(|r| r.into_error(name))?
            .ok_or_else(|| ClusterError::Catalog("deleting an index produced no table".into()))?;
        // The catalog's leader finishes it (`drive_index_changes`).
        Ok(updated)
    }

    /// Runs what a CREATING or DELETING index of `table` still needs,
    /// unless this node does already.
    fn spawn_index_work(self: &Arc<Self>, table: &str, index: &str) {
        let change = (table.to_string(), index.to_string());
        let newly_driven = self
            .driven_index_changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(change.clone());
        if !newly_driven {
            return;
        }
        let cluster = Arc::downgrade(self);
        let span = tracing::info_span!("index_change", table = %change.0, index = %change.1);
        tokio::spawn(
            async move {
                let Some(cluster) = cluster.upgrade() else {
                    return;
                };
                let (table, index) = &change;
                if let Err(e) = cluster.finish_index_change(table, index).await {
                    tracing::warn!(error = %e, "a global index change failed; the catalog's leader tries again");
                    counter!("atoll_gsi_change_failures_total").increment(1);
                }
                cluster
                    .driven_index_changes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&change);
            }
            .instrument(span),
        );
    }

    /// Starts driving every index change the catalog holds.
    fn resume_index_changes(self: &Arc<Self>) {
        for table in self.catalog.view().tables() {
            for index in &table.global_indexes {
                if matches!(index.status, IndexStatus::Creating | IndexStatus::Deleting)
                    && table.status == atoll_model::table::TableStatus::Active
                {
                    self.spawn_index_work(&table.name, &index.name);
                }
            }
        }
    }

    /// Takes index `index` of table `name` from CREATING to ACTIVE, or
    /// from DELETING to gone.
    async fn finish_index_change(
        self: &Arc<Self>,
        name: &str,
        index: &str,
    ) -> Result<(), ClusterError> {
        let _changing = self.index_changes.lock().await;
        let Some(table) = self.catalog.table(name) else {
            return Ok(());
        };
        let Some(found) = table.global_index(index).cloned() else {
            return Ok(());
        };
        match found.status {
            IndexStatus::Creating => self.build_global_index(&table, &found).await,
            IndexStatus::Deleting => self.drop_global_index(&table, &found).await,
            IndexStatus::Active | IndexStatus::Updating => Ok(()),
        }
    }

    async fn build_global_index(
        self: &Arc<Self>,
        table: &TableDefinition,
        index: &GlobalIndex,
    ) -> Result<(), ClusterError> {
        let started = std::time::Instant::now();
        tracing::info!(table = %table.name, index = %index.name, "building global index");
        let index_table = match self.catalog.table(&index.table_name) {
            Some(existing) => existing,
            None => self.create_index_table(table, index).await?,
        };
        if index_table.status == atoll_model::table::TableStatus::Creating {
            self.activate(&index_table).await?;
        }
        self.feed_global_indexes(&table.name).await?;
        self.set_index_state(table, &index.name, IndexStatus::Creating, true)
            .await?;
        let still_creating = self
            .catalog
            .table(&table.name)
            .and_then(|t| t.global_index(&index.name).map(|i| i.status))
            == Some(IndexStatus::Creating);
        if !still_creating {
            return Ok(()); // another builder finished it, or it is being deleted
        }
        super::hosting::hold_for_tests("gsi-backfill-hold-ms").await;
        let items = self.backfill(&table.name, &index.table_name).await?;
        self.set_index_state(table, &index.name, IndexStatus::Active, false)
            .await?;
        tracing::info!(
            table = %table.name,
            index = %index.name,
            items,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "global index built"
        );
        Ok(())
    }

    async fn drop_global_index(
        &self,
        table: &TableDefinition,
        index: &GlobalIndex,
    ) -> Result<(), ClusterError> {
        self.feed_global_indexes(&table.name).await?;
        self.delete_index_table_named(&index.table_name).await?;
        self.catalog
            .propose(CatalogCommand::RemoveGlobalIndex {
                name: table.name.clone(),
                table_id: table.table_id.clone(),
                index: index.name.clone(),
            })
            .await?
            .map_err(|r| r.into_error(&table.name))?;
        Ok(())
    }

    async fn set_index_state(
        &self,
        table: &TableDefinition,
        index: &str,
        status: IndexStatus,
        backfilling: bool,
    ) -> Result<(), ClusterError> {
        self.catalog
            .propose(CatalogCommand::SetGlobalIndexState {
                name: table.name.clone(),
                table_id: table.table_id.clone(),
                index: index.to_string(),
                status,
                backfilling,
            })
            .await?
            .map_err(|r| r.into_error(&table.name))?;
        Ok(())
    }

    /// Tells every partition of table `name`, through its log, which
    /// global indexes to feed, until every partition of the current map
    /// (splits may add some meanwhile) has taken the current set.
    pub(super) async fn feed_global_indexes(&self, name: &str) -> Result<(), ClusterError> {
        self.tell_every_partition(name, |table| {
            let set = global_index_set(table);
            let epoch = set.epoch;
            (epoch, PartitionCommand::SetGlobalIndexes { set })
        })
        .await
        .map(|_| ())
    }

    /// Proposes the command `told` makes of table `name` (with the epoch
    /// it carries) to every partition of the table's current map, until
    /// each has taken it at the table's current epoch; partitions a split
    /// adds meanwhile are told too. Returns the epoch all took.
    pub(super) async fn tell_every_partition(
        &self,
        name: &str,
        told: impl Fn(&TableDefinition) -> (u64, PartitionCommand),
    ) -> Result<u64, ClusterError> {
        let mut done: Vec<(u64, u64)> = Vec::new();
        loop {
            let table = self
                .catalog
                .table(name)
                .ok_or_else(|| ClusterError::TableNotFound(name.to_string()))?;
            let (epoch, command) = told(&table);
            let mut all_told = true;
            for partition in &table.partitions {
                if done.contains(&(partition.group_id, epoch)) {
                    continue;
                }
                all_told = false;
                match self
                    .router
                    .write(&table, partition.start_token, &command)
                    .await?
                {
                    PartitionOutput::GlobalIndexesSet { .. }
                    | PartitionOutput::StreamSet { .. } => {
                        done.push((partition.group_id, epoch));
                    }
                    other => return Err(ClusterError::UnexpectedOutcome(format!("{other:?}"))),
                }
            }
            if all_told {
                return Ok(epoch);
            }
        }
    }

    /// Backfills the index whose entries live in `index_table` from every
    /// item of table `name`, in token order; returns the steps taken.
    async fn backfill(&self, name: &str, index_table: &str) -> Result<u64, ClusterError> {
        let mut from = 0u64.to_be_bytes().to_vec();
        let mut steps = 0u64;
        loop {
            let table = self
                .catalog
                .table(name)
                .ok_or_else(|| ClusterError::TableNotFound(name.to_string()))?;
            let token = atoll_partition::row_key_token(&from).unwrap_or_default();
            let command = PartitionCommand::BackfillIndex {
                set: global_index_set(&table),
                index_table: index_table.to_string(),
                from: from.clone(),
                max_items: BACKFILL_STEP_ITEMS,
            };
            steps += 1;
            counter!("atoll_gsi_backfill_steps_total").increment(1);
            match self.router.write(&table, token, &command).await? {
                PartitionOutput::Backfilled {
                    next: Some(next), ..
                } => from = next,
                PartitionOutput::Backfilled {
                    next: None,
                    range_last,
                } => match range_last.checked_add(1) {
                    Some(next_token) => from = next_token.to_be_bytes().to_vec(),
                    None => return Ok(steps),
                },
                other => return Err(ClusterError::UnexpectedOutcome(format!("{other:?}"))),
            }
        }
    }
}
