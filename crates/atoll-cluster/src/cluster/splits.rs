//! Partition splits: fencing in the partition's log, recording in the
//! catalog, starting the new partition, finishing interrupted splits, and
//! the size watcher that decides when and where to split.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use atoll_model::table::{TableDefinition, TableStatus};
use atoll_partition::{PartitionCommand, PartitionOutput, PartitionStateMachine, TokenRange};
use atoll_replication::{GroupId, RaftNode};
use atoll_storage::{Keyspace, Storage};

use super::catalog_client::CatalogClient;
use super::hosting::PartitionHost;
use crate::catalog::CatalogCommand;
use crate::error::ClusterError;

/// The split controller: splits partitions grown past the size threshold
/// or hot past the load threshold, and finishes splits a crash interrupted.
pub(super) struct Splitter {
    storage: Storage,
    node: Arc<RaftNode>,
    catalog: Arc<CatalogClient>,
    host: Arc<PartitionHost>,
    // Serialises table lifecycle work (create, delete, split) on this node;
    // shared with the table lifecycles of `Cluster`.
    lifecycle: Arc<tokio::sync::Mutex<()>>,
    split_size_bytes: u64,
    split_load_ops_per_second: f64,
}

impl Splitter {
    pub(super) fn new(
        storage: Storage,
        node: Arc<RaftNode>,
        catalog: Arc<CatalogClient>,
        host: Arc<PartitionHost>,
        lifecycle: Arc<tokio::sync::Mutex<()>>,
        options: &super::ClusterOptions,
    ) -> Splitter {
        Splitter {
            storage,
            node,
            catalog,
            host,
            lifecycle,
            split_size_bytes: options.split_size_bytes,
            split_load_ops_per_second: options.split_load_ops_per_second,
        }
    }

    /// Turns the request counts of every hosted partition into rates.
    fn sample_traffic(&self) {
        let now = Instant::now();
        for handle in self.host.handles() {
            handle.traffic.sample(now, self.split_load_ops_per_second);
        }
    }

    /// A partition whose log fenced off a split the catalog never recorded
    /// (a crash in between) finishes the split now.
    pub(super) async fn finish_interrupted_splits(
        &self,
        table_name: &str,
    ) -> Result<(), ClusterError> {
        loop {
            let Some(table) = self.catalog.view().table(table_name) else {
                return Ok(());
            };
            // Only a replica that fenced the split through its log holds the
            // right items for the new partition, which it then founds.
            let unfinished = table.partitions.iter().find_map(|p| {
                let (_, last) = self.host.handle(p.group_id)?.sm.range();
                let at_token = last.checked_add(1).filter(|_| last < p.end_token)?;
                PartitionStateMachine::handed_off_through_log(
                    self.host.stats_keyspace(),
                    p.group_id,
                    at_token,
                )
                .unwrap_or(false)
                .then_some((p.group_id, at_token))
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
        let table = self.catalog.active_table(table_name)?;
        let handle = self
            .host
            .handle(group_id)
            .ok_or_else(|| ClusterError::NoPartition {
                table: table_name.to_string(),
                token: at_token,
            })?;
        let fenced = handle
            .group
            .propose(super::routing::encode_for(
                &handle,
                &PartitionCommand::Split { at_token },
            )?)
            .await?;
        match fenced {
            PartitionOutput::Split { .. } => {}
            PartitionOutput::Refused(rejection) => {
                return Err(ClusterError::Rejected(rejection));
            }
            PartitionOutput::Rejected { message } => {
                return Err(ClusterError::Catalog(format!("split refused: {message}")));
            }
            other => {
                return Err(ClusterError::Catalog(format!(
                    "unexpected outcome of a split: {other:?}"
                )));
            }
        }
        // A crash here leaves the split fenced but unrecorded; restarts and
        // the periodic check finish it.
        fail::fail_point!("split-after-fence", |_| Err(ClusterError::Catalog(
            "fail point split-after-fence".into()
        )));
        self.record_split(&table, group_id, at_token).await
    }

    async fn record_split(
        &self,
        table: &TableDefinition,
        group_id: GroupId,
        at_token: u64,
    ) -> Result<(), ClusterError> {
        let updated = self
            .catalog
            .propose(CatalogCommand::SplitPartitionBy {
                name: table.name.clone(),
                table_id: table.table_id.clone(),
                group_id,
                at_token,
                founder: self.node.node_id(),
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
        if self.host.handle(upper.group_id).is_none() {
            // This node founds the new group (it fenced the split).
            self.host.host_partitions(true).await?;
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
    /// token that leaves about half of its bytes on each side, and every
    /// partition whose traffic stayed over the load threshold, at the median
    /// token of the requests it saw.
    async fn split_large_partitions(&self) -> Result<(), ClusterError> {
        for table in self.catalog.view().tables() {
            if table.status != TableStatus::Active {
                continue;
            }
            {
                // A split that fenced but failed to record (the catalog
                // proposal failed) is finished here rather than at the next start.
                let _lifecycle = self.lifecycle.lock().await;
                self.finish_interrupted_splits(&table.name).await?;
            }
            for partition in &table.partitions {
                // The leader decides: its log fences the split.
                let Some(handle) = self
                    .host
                    .handle(partition.group_id)
                    .filter(|handle| handle.group.is_leader())
                else {
                    continue;
                };
                let range = handle.sm.range();
                if handle.stats.size_bytes() > self.split_size_bytes {
                    let items = handle.items.clone();
                    let half = handle.stats.size_bytes() / 2;
                    // On the in-memory engine (simulations) inline, so that
                    // no thread outside the runtime decides the timing.
                    let point = if self.storage.is_in_memory() {
                        split_point(&items, range, half)?
                    } else {
                        tokio::task::spawn_blocking(move || split_point(&items, range, half))
                            .await
                            .map_err(|e| ClusterError::Catalog(e.to_string()))??
                    };
                    if let Some(at_token) = point {
                        self.split_partition(&table.name, partition.group_id, at_token)
                            .await?;
                        continue;
                    }
                }
                if handle.traffic.hot_samples() >= LOAD_SPLIT_SAMPLES {
                    let point = load_split_point(handle.traffic.token_sample(), range);
                    handle.traffic.reset_load();
                    if let Some(at_token) = point {
                        tracing::info!(
                            table = %table.name,
                            group_id = partition.group_id,
                            "partition stayed over the load threshold; splitting"
                        );
                        self.split_partition(&table.name, partition.group_id, at_token)
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Checks in a row a partition's request rate must exceed the load
/// threshold before it splits for load (5 s at the default interval).
const LOAD_SPLIT_SAMPLES: u32 = 5;

/// Where to split a partition for load: the median of the tokens its
/// requests were for (inside `range`), so each half gets about half of the
/// traffic whatever the keys' spread; if that is the range's first token,
/// the next token seen above it. When one key (one token) carries so much
/// of the traffic that either side would get less than a fifth of it, there
/// is no split point: splitting cannot spread one key's load.
pub(super) fn load_split_point(mut tokens: Vec<u64>, (first, last): TokenRange) -> Option<u64> {
    tokens.retain(|token| first <= *token && *token <= last);
    tokens.sort_unstable();
    let median = *tokens.get(tokens.len() / 2)?;
    let at = if median > first {
        median
    } else {
        *tokens.iter().find(|token| **token > median)?
    };
    let below = tokens.partition_point(|token| *token < at);
    let above = tokens.len() - below;
    (below.min(above) * 5 >= tokens.len()).then_some(at)
}

/// Checks partition sizes and loads every `interval` until the splitter is dropped.
pub(super) async fn watch_partition_sizes(splitter: Weak<Splitter>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(splitter) = splitter.upgrade().filter(|s| !s.node.is_stopped()) else {
            return;
        };
        splitter.sample_traffic();
        if let Err(e) = splitter.split_large_partitions().await {
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

#[cfg(test)]
mod tests {
    use super::load_split_point;

    #[test]
    fn load_split_point_is_the_median_seen_not_the_midpoint() {
        let range = (0, u64::MAX);
        // Traffic on small tokens only: the split lands among them.
        let tokens: Vec<u64> = (1..=9).map(|t| t * 1000).collect();
        assert_eq!(load_split_point(tokens, range), Some(5000));
        // One hot key: nowhere to split, even with a little other traffic.
        assert_eq!(load_split_point(vec![77; 500], range), None);
        let mut mostly_one = vec![77; 500];
        mostly_one.extend([3, 5, 900, 1000]);
        assert_eq!(load_split_point(mostly_one, range), None);
        assert_eq!(load_split_point(Vec::new(), range), None);
        // Tokens outside the partition's range (from before a split) do not count.
        assert_eq!(
            load_split_point(vec![5, 10, 20, 30, 400], (10, 100)),
            Some(20)
        );
        // A median on the range's first token moves up to the next one seen.
        assert_eq!(
            load_split_point(vec![10, 10, 10, 10, 12], (10, 100)),
            Some(12)
        );
    }
}
