//! Time to Live sweeps: each partition's leader reads its items a slice at
//! a time, finds those whose Time to Live passed, and deletes them through
//! the partition's log (`ExpireItems`, checked again in apply), so the
//! deletes reach every replica, the table's indexes and its stream — never
//! a compaction filter, which replicas would run at different times. The
//! same pass trims stream records past their retention, through the log
//! too (`TrimStream`), so every replica trims alike.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Weak;
use std::time::{Duration, Instant};

use atoll_model::table::TableStatus;
use atoll_partition::{ItemRange, PartitionCommand, PartitionOutput, is_expired};
use metrics::{counter, histogram};

use super::{Cluster, PartitionHandle, now_ms};
use crate::error::ClusterError;

/// Items one sweep reads of one partition at most: a sweep is a slice of
/// the partition, so user traffic keeps its latency on a large one.
const SWEEP_SCAN_ITEMS: usize = 5_000;
/// Items one `ExpireItems` entry deletes at most.
const EXPIRE_BATCH_ITEMS: usize = 100;

/// Sweeps every `interval` until the cluster is dropped; stream records
/// older than `retention` go.
pub(super) async fn sweep_expired_items(
    cluster: Weak<Cluster>,
    interval: Duration,
    retention: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(cluster) = cluster.upgrade().filter(|c| !c.node.is_stopped()) else {
            return;
        };
        cluster.sweep_once().await;
        cluster.trim_streams(retention).await;
    }
}

impl Cluster {
    /// One sweep of every partition this node leads whose table has Time
    /// to Live on.
    async fn sweep_once(&self) {
        let mut attributes: BTreeMap<u64, String> = BTreeMap::new();
        for table in self.catalog.view().tables() {
            let Some(ttl) = table.time_to_live.as_ref().filter(|ttl| ttl.enabled) else {
                continue;
            };
            if table.status != TableStatus::Active || table.index_of.is_some() {
                continue;
            }
            for partition in &table.partitions {
                attributes.insert(partition.group_id, ttl.attribute.clone());
            }
        }
        for handle in self.host.handles() {
            let group = handle.group.id();
            let Some(attribute) = attributes.get(&group) else {
                continue;
            };
            if !handle.group.is_leader() {
                continue;
            }
            let started = Instant::now();
            match self.sweep_partition(&handle, attribute).await {
                Ok(deleted) => {
                    counter!("atoll_ttl_deleted_items_total").increment(deleted);
                }
                Err(e) => {
                    tracing::debug!(group, error = %e, "a Time to Live sweep failed; the next one goes on");
                    counter!("atoll_ttl_sweep_failures_total").increment(1);
                }
            }
            histogram!("atoll_ttl_sweep_seconds").record(started.elapsed().as_secs_f64());
        }
    }

    /// Trims the stream records past `retention` of every partition this
    /// node leads that has some.
    async fn trim_streams(&self, retention: Duration) {
        let before_ms = now_ms().saturating_sub(retention.as_millis() as u64);
        for handle in self.host.handles() {
            if !handle.group.is_leader() {
                continue;
            }
            let due = matches!(handle.sm.oldest_stream_record_ms(), Ok(Some(oldest)) if oldest < before_ms);
            if !due {
                continue;
            }
            let command = PartitionCommand::TrimStream { before_ms };
            match super::routing::propose_to(&handle, &command).await {
                Ok(PartitionOutput::StreamTrimmed { removed }) => {
                    counter!("atoll_stream_records_trimmed_total").increment(u64::from(removed));
                }
                Ok(other) => {
                    tracing::warn!(outcome = ?other, "unexpected outcome of a stream trim")
                }
                Err(e) => {
                    tracing::debug!(group = handle.group.id(), error = %e, "a stream trim failed; the next pass tries again")
                }
            }
        }
    }

    /// Sweeps the next slice of `handle`'s partition from where the last
    /// sweep stopped; returns how many items it deleted.
    async fn sweep_partition(
        &self,
        handle: &PartitionHandle,
        attribute: &str,
    ) -> Result<u64, ClusterError> {
        let group = handle.group.id();
        let (first, last) = handle.sm.range();
        let range_start = first.to_be_bytes().to_vec();
        let end = match last.checked_add(1) {
            Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        let cursor = self
            .ttl_cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
            .cloned()
            .filter(|cursor| *cursor >= range_start)
            .unwrap_or(range_start);
        let now = now_ms();
        let mut expired = Vec::new();
        let mut next: Option<Vec<u8>> = None;
        let items = ItemRange::new(&handle.items, Bound::Included(cursor), end, false);
        for (read, stored) in items.enumerate() {
            let stored = stored.map_err(|e| ClusterError::UnexpectedOutcome(e.to_string()))?;
            if read == SWEEP_SCAN_ITEMS {
                next = Some(stored.row_key.to_vec());
                break;
            }
            if is_expired(&stored.item, attribute, now) {
                expired.push(stored.row_key.to_vec());
            }
        }
        {
            let mut cursors = self.ttl_cursors.lock().unwrap_or_else(|e| e.into_inner());
            match next {
                Some(next) => cursors.insert(group, next),
                None => cursors.remove(&group),
            };
        }
        let mut deleted = 0u64;
        for chunk in expired.chunks(EXPIRE_BATCH_ITEMS) {
            let command = PartitionCommand::ExpireItems {
                attribute: attribute.to_string(),
                row_keys: chunk.to_vec(),
                now_ms: now,
            };
            match super::routing::propose_to(handle, &command).await? {
                PartitionOutput::Expired { deleted: n } => deleted += u64::from(n),
                other => return Err(ClusterError::UnexpectedOutcome(format!("{other:?}"))),
            }
        }
        Ok(deleted)
    }
}
