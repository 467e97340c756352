//! The outbox shipper: the leader of each table partition with global
//! secondary indexes sends the index changes its apply wrote into the
//! partition's outbox to the partitions of the indexes' hidden tables,
//! then trims what they applied through its own log (so every replica
//! drops the same records). A new leader starts from the outbox's first
//! record: changes shipped twice are applied once (versions decide).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use atoll_partition::{IndexEntryChange, PartitionCommand};
use atoll_replication::GroupId;
use metrics::{counter, gauge};
use tokio::time::Instant;

use super::PartitionHandle;
use super::catalog_client::CatalogClient;
use super::hosting::PartitionHost;
use super::routing::{Router, propose_to};
use crate::error::ClusterError;

/// How often the shipper looks for outbox records when it found none.
const IDLE_INTERVAL: Duration = Duration::from_millis(10);

/// Most outbox records shipped in one round per partition.
const BATCH_RECORDS: usize = 1024;

/// Ships the outboxes of the table partitions this node leads.
pub(super) struct Shipper {
    catalog: Arc<CatalogClient>,
    host: Arc<PartitionHost>,
    router: Arc<Router>,
    // When each group's oldest unshipped record was first seen here.
    waiting_since: Mutex<BTreeMap<GroupId, Instant>>,
}

impl Shipper {
    pub(super) fn new(
        catalog: Arc<CatalogClient>,
        host: Arc<PartitionHost>,
        router: Arc<Router>,
    ) -> Shipper {
        Shipper {
            catalog,
            host,
            router,
            waiting_since: Mutex::new(BTreeMap::new()),
        }
    }

    /// One round: every led partition's outbox, a batch each. Returns
    /// whether anything was shipped (more may be waiting).
    async fn ship_round(&self) -> bool {
        let mut shipped_any = false;
        for handle in self.host.handles() {
            if !handle.group.is_leader() {
                continue;
            }
            match self.ship_partition(&handle).await {
                Ok(shipped) => shipped_any |= shipped > 0,
                Err(e) => {
                    tracing::warn!(
                        group = handle.group.id(),
                        error = %e,
                        "shipping index changes failed; will try again"
                    );
                }
            }
        }
        shipped_any
    }

    /// Ships one batch of a partition's outbox and trims it; returns how
    /// many records went.
    async fn ship_partition(&self, handle: &PartitionHandle) -> Result<usize, ClusterError> {
        let group = handle.group.id();
        let records = handle.sm.outbox(BATCH_RECORDS)?;
        let Some((through, _)) = records.last() else {
            self.lock_waiting().remove(&group);
            gauge!("atoll_gsi_outbox_age_seconds", "partition" => group.to_string()).set(0.0);
            return Ok(0);
        };
        let through = through.clone();
        let since = *self
            .lock_waiting()
            .entry(group)
            .or_insert_with(Instant::now);
        let labels = [("partition", group.to_string())];
        gauge!("atoll_gsi_outbox_age_seconds", &labels).set(since.elapsed().as_secs_f64());
        gauge!("atoll_gsi_outbox_records", &labels).set(records.len() as f64);
        let count = records.len();
        let mut by_table: HashMap<String, Vec<IndexEntryChange>> = HashMap::new();
        for (_, record) in records {
            by_table
                .entry(record.index_table)
                .or_default()
                .push(record.change);
        }
        let sends = by_table.into_iter().filter_map(|(name, changes)| {
            // An index deleted since: its changes have nowhere to go.
            let table = self.catalog.table(&name)?;
            Some(async move { self.router.write_index_changes(&table, changes).await })
        });
        for outcome in futures_util::future::join_all(sends).await {
            outcome?;
        }
        propose_to(handle, &PartitionCommand::TrimOutbox { through }).await?;
        self.lock_waiting().remove(&group);
        counter!("atoll_gsi_changes_shipped_total").increment(count as u64);
        Ok(count)
    }

    /// How long the oldest unshipped record of `group` has waited, when
    /// this node leads it and has seen one.
    pub(super) fn waiting_ms(&self, group: GroupId) -> Option<u64> {
        self.lock_waiting()
            .get(&group)
            .map(|since| since.elapsed().as_millis() as u64)
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, BTreeMap<GroupId, Instant>> {
        self.waiting_since.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ships outboxes until the cluster is dropped.
pub(super) async fn ship_outboxes(shipper: Weak<Shipper>) {
    loop {
        let Some(shipper) = shipper.upgrade() else {
            return;
        };
        let busy = shipper.ship_round().await;
        drop(shipper);
        if !busy {
            tokio::time::sleep(IDLE_INTERVAL).await;
        }
    }
}
