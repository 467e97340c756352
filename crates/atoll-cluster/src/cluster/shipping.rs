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

/// How long the shipper waits for an apply to signal new outbox records
/// before it looks anyway (a signal may come from a replica that is not
/// the leader yet, or a leadership may have just come here).
const IDLE_INTERVAL: Duration = Duration::from_millis(50);

/// How long after a signal the shipper reads the outbox (see `ship_outboxes`).
const SIGNAL_SETTLE: Duration = Duration::from_millis(1);

/// Most outbox records shipped in one round per partition.
const BATCH_RECORDS: usize = 1024;

/// How often a partition's shipped records are trimmed while more keep
/// coming (each trim is a log entry; once shipping pauses, at once).
const TRIM_INTERVAL: Duration = Duration::from_millis(100);

/// What the shipper knows of one led partition's outbox.
#[derive(Default)]
struct Shipping {
    /// When the oldest unshipped record was first seen here.
    waiting_since: Option<Instant>,
    /// The last record shipped (records up to it need not be read again).
    shipped_through: Option<Vec<u8>>,
    /// Whether records up to `shipped_through` still wait for their trim.
    untrimmed: bool,
    /// When the partition's outbox was last trimmed.
    last_trim: Option<Instant>,
}

/// Ships the outboxes of the table partitions this node leads.
pub(super) struct Shipper {
    catalog: Arc<CatalogClient>,
    host: Arc<PartitionHost>,
    router: Arc<Router>,
    // Told by applies that wrote outbox records.
    signal: Arc<tokio::sync::Notify>,
    partitions: Mutex<BTreeMap<GroupId, Shipping>>,
}

impl Shipper {
    pub(super) fn new(
        catalog: Arc<CatalogClient>,
        host: Arc<PartitionHost>,
        router: Arc<Router>,
        signal: Arc<tokio::sync::Notify>,
    ) -> Shipper {
        Shipper {
            catalog,
            host,
            router,
            signal,
            partitions: Mutex::new(BTreeMap::new()),
        }
    }

    /// One round: every led partition's outbox, a batch each. Returns
    /// whether anything was shipped (more may be waiting).
    async fn ship_round(&self) -> bool {
        let mut shipped_any = false;
        for handle in self.host.handles() {
            if !handle.group.is_leader() {
                // A later leadership here starts again from the outbox's start.
                self.lock_partitions().remove(&handle.group.id());
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

    /// Ships one batch of a partition's outbox (the records after those
    /// it shipped already), and trims what was shipped every
    /// `TRIM_INTERVAL`, or at once when nothing more waits; returns how
    /// many records went.
    async fn ship_partition(&self, handle: &PartitionHandle) -> Result<usize, ClusterError> {
        let group = handle.group.id();
        let after = self.with_state(group, |s| s.shipped_through.clone());
        // Only records of entries the group reports applied: their rounds
        // are committed whole (see `outbox_after`).
        let applied = handle.group.applied_index().unwrap_or(0);
        let records = handle
            .sm
            .outbox_after(after.as_deref(), applied, BATCH_RECORDS)?;
        let labels = [("partition", group.to_string())];
        let Some((last, _)) = records.last() else {
            let (untrimmed, through) =
                self.with_state(group, |s| (s.untrimmed, s.shipped_through.clone()));
            if let (true, Some(through)) = (untrimmed, through) {
                self.trim(handle, through).await?;
            }
            self.with_state(group, |s| s.waiting_since = None);
            gauge!("atoll_gsi_outbox_age_seconds", &labels).set(0.0);
            gauge!("atoll_gsi_outbox_records", &labels).set(0.0);
            return Ok(0);
        };
        let last = last.clone();
        let since = self.with_state(group, |s| *s.waiting_since.get_or_insert_with(Instant::now));
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
        counter!("atoll_gsi_changes_shipped_total").increment(count as u64);
        let trim_due = self.with_state(group, |s| {
            s.shipped_through = Some(last.clone());
            s.untrimmed = true;
            s.waiting_since = None;
            s.last_trim.is_none_or(|at| at.elapsed() >= TRIM_INTERVAL)
        });
        if trim_due {
            self.trim(handle, last).await?;
        }
        Ok(count)
    }

    /// Trims a partition's outbox through `through`, through its log.
    async fn trim(&self, handle: &PartitionHandle, through: Vec<u8>) -> Result<(), ClusterError> {
        propose_to(handle, &PartitionCommand::TrimOutbox { through }).await?;
        self.with_state(handle.group.id(), |s| {
            s.untrimmed = false;
            s.last_trim = Some(Instant::now());
        });
        Ok(())
    }

    /// How long the oldest unshipped record of `group` has waited, when
    /// this node leads it and has seen one.
    pub(super) fn waiting_ms(&self, group: GroupId) -> Option<u64> {
        self.lock_partitions()
            .get(&group)
            .and_then(|s| s.waiting_since)
            .map(|since| since.elapsed().as_millis() as u64)
    }

    fn with_state<T>(&self, group: GroupId, f: impl FnOnce(&mut Shipping) -> T) -> T {
        f(self.lock_partitions().entry(group).or_default())
    }

    fn lock_partitions(&self) -> std::sync::MutexGuard<'_, BTreeMap<GroupId, Shipping>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ships outboxes until the cluster is dropped.
pub(super) async fn ship_outboxes(shipper: Weak<Shipper>) {
    loop {
        let Some(shipper) = shipper.upgrade() else {
            return;
        };
        let busy = shipper.ship_round().await;
        let signal = shipper.signal.clone();
        drop(shipper);
        if !busy {
            let signalled = tokio::time::timeout(IDLE_INTERVAL, signal.notified()).await;
            // The signal comes from inside an apply round, before the round's
            // writes are committed: give them a moment to land.
            if signalled.is_ok() {
                tokio::time::sleep(SIGNAL_SETTLE).await;
            }
        }
    }
}
