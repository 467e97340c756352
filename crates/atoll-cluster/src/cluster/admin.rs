//! The admin view: nodes, tables, partitions with their token ranges,
//! sizes, leaders, replicas and request rates, as `GET /atoll/admin` and
//! `atoll admin` show them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tokio::time::Instant;

use serde::Serialize;

use atoll_replication::GroupId;

use super::Cluster;
use super::rpc::{ClusterReply, ClusterRequest};

/// The counts at the last sample, and the rates since the one before.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    reads: u64,
    writes: u64,
    reads_per_second: f64,
    writes_per_second: f64,
}

/// One routed request in this many has its token remembered.
const TOKEN_SAMPLE_EVERY: u64 = 4;

/// Tokens remembered per partition (the most recent ones).
const TOKEN_SAMPLE_CAPACITY: usize = 2048;

/// Requests routed to one partition on this node, their recent rate, and a
/// sample of the tokens they were for (where a split for load should go).
#[derive(Debug, Default)]
pub(super) struct Traffic {
    reads: AtomicU64,
    writes: AtomicU64,
    last: Mutex<Option<Sample>>,
    tokens: Mutex<VecDeque<u64>>,
    // Consecutive samples whose rate was over the load threshold.
    hot_samples: AtomicU32,
}

impl Traffic {
    /// Counts a read; `token` is the key's, when the read is for one key.
    pub(super) fn count_read(&self, token: Option<u64>) {
        let n = self.reads.fetch_add(1, Ordering::Relaxed);
        self.remember(n, token);
    }

    /// Reads counted since the replica started here.
    pub(super) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Writes counted since the replica started here.
    pub(super) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Counts a write for `token`.
    pub(super) fn count_write(&self, token: u64) {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        self.remember(n, Some(token));
    }

    fn remember(&self, n: u64, token: Option<u64>) {
        if let Some(token) = token.filter(|_| n.is_multiple_of(TOKEN_SAMPLE_EVERY)) {
            let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if tokens.len() >= TOKEN_SAMPLE_CAPACITY {
                tokens.pop_front();
            }
            tokens.push_back(token);
        }
    }

    /// The remembered tokens, in no particular order.
    pub(super) fn token_sample(&self) -> Vec<u64> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// How many samples in a row were over the load threshold.
    pub(super) fn hot_samples(&self) -> u32 {
        self.hot_samples.load(Ordering::Relaxed)
    }

    /// Forgets the tokens and the hot streak (after a split for load).
    pub(super) fn reset_load(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.hot_samples.store(0, Ordering::Relaxed);
    }

    /// Updates the rates from the counts since the previous sample, and the
    /// streak of samples over `hot_ops_per_second` (0: no threshold).
    pub(super) fn sample(&self, now: Instant, hot_ops_per_second: f64) {
        let reads = self.reads.load(Ordering::Relaxed);
        let writes = self.writes.load(Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let (reads_per_second, writes_per_second) = match *last {
            Some(before) => {
                let seconds = now.saturating_duration_since(before.at).as_secs_f64();
                if seconds <= 0.0 {
                    return;
                }
                (
                    reads.saturating_sub(before.reads) as f64 / seconds,
                    writes.saturating_sub(before.writes) as f64 / seconds,
                )
            }
            None => (0.0, 0.0),
        };
        *last = Some(Sample {
            at: now,
            reads,
            writes,
            reads_per_second,
            writes_per_second,
        });
        if hot_ops_per_second > 0.0 && reads_per_second + writes_per_second > hot_ops_per_second {
            self.hot_samples.fetch_add(1, Ordering::Relaxed);
        } else {
            self.hot_samples.store(0, Ordering::Relaxed);
        }
    }

    /// Reads and writes per second over the last sampling interval.
    fn rates(&self) -> (f64, f64) {
        match *self.last.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(sample) => (sample.reads_per_second, sample.writes_per_second),
            None => (0.0, 0.0),
        }
    }
}

/// What one node knows of the cluster.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterReport {
    /// The node that answered.
    pub node_id: u64,
    /// The nodes it knows.
    pub nodes: Vec<NodeReport>,
    /// Every table, by name.
    pub tables: Vec<TableReport>,
}

/// A node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    /// Node id.
    pub id: u64,
    /// Address of its inter-node port, when it runs one.
    pub raft_addr: Option<String>,
    /// Address of its DynamoDB API.
    pub api_addr: String,
    /// Its availability zone, if it has one.
    pub zone: Option<String>,
    /// Partition replicas the catalog places on it.
    pub replica_count: usize,
    /// Whether the catalog marks it down (silent for the dead-node time).
    pub down: bool,
    /// Whether it is being decommissioned (its replicas move away).
    pub leaving: bool,
}

/// A table and its partitions.
#[derive(Clone, Debug, Serialize)]
pub struct TableReport {
    /// Table name.
    pub name: String,
    /// Table id.
    pub table_id: String,
    /// Lifecycle state, as DescribeTable names it.
    pub status: String,
    /// Partitions in token order.
    pub partitions: Vec<PartitionReport>,
}

/// A partition.
#[derive(Clone, Debug, Serialize)]
pub struct PartitionReport {
    /// Its Raft group.
    pub group_id: u64,
    /// First token, as 16 hex digits.
    pub start_token: String,
    /// Last token, as 16 hex digits.
    pub end_token: String,
    /// Items stored.
    pub item_count: u64,
    /// Their total DynamoDB size.
    pub size_bytes: u64,
    /// The group's leader, as this node knows it.
    pub leader: Option<u64>,
    /// The group's voters.
    pub replicas: Vec<u64>,
    /// Reads routed here per second (last interval).
    pub reads_per_second: f64,
    /// Writes routed here per second (last interval).
    pub writes_per_second: f64,
    /// Global index changes in its outbox not yet shipped, as this node's
    /// replica holds them (counted up to `OUTBOX_COUNT_CAP`).
    pub outbox_records: u64,
    /// How long the oldest of them has waited, when this node ships them.
    pub outbox_age_ms: Option<u64>,
}

/// Most outbox records the report counts per partition.
const OUTBOX_COUNT_CAP: usize = 100_000;

impl Cluster {
    /// `report`, with the item count and size of each partition this node
    /// holds no replica of asked of a replica that does (all at once): the
    /// view `GET /atoll/admin` serves.
    pub async fn report_with_remote_stats(&self) -> ClusterReport {
        let mut report = self.report();
        let remote: Vec<GroupId> = report
            .tables
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.group_id)
            .filter(|group| self.host.handle(*group).is_none())
            .collect();
        let answers =
            futures_util::future::join_all(remote.iter().map(|group| self.remote_stats(*group)))
                .await;
        let found: BTreeMap<GroupId, (u64, u64)> = remote
            .into_iter()
            .zip(answers)
            .filter_map(|(group, stats)| Some((group, stats?)))
            .collect();
        for partition in report.tables.iter_mut().flat_map(|t| &mut t.partitions) {
            if let Some((item_count, size_bytes)) = found.get(&partition.group_id) {
                partition.item_count = *item_count;
                partition.size_bytes = *size_bytes;
            }
        }
        report
    }

    /// A partition's item count and size as the first of its other
    /// replicas that answers knows them.
    pub(super) async fn remote_stats(&self, group: GroupId) -> Option<(u64, u64)> {
        for node in self.catalog.other_replicas(group) {
            if let Ok(ClusterReply::Stats {
                item_count,
                size_bytes,
            }) = self
                .peers
                .forward(node, &ClusterRequest::Stats { group })
                .await
            {
                return Some((item_count, size_bytes));
            }
        }
        None
    }

    /// The admin view from this node: partitions it holds no replica of
    /// show no items (see `report_with_remote_stats`) and, like all, the request rates
    /// this node served.
    pub fn report(&self) -> ClusterReport {
        let tables: Vec<TableReport> = self
            .catalog
            .view()
            .tables()
            .iter()
            .map(|table| TableReport {
                name: table.name.clone(),
                table_id: table.table_id.clone(),
                status: table.status.as_str().to_string(),
                partitions: table
                    .partitions
                    .iter()
                    .map(|p| {
                        let handle = self.host.handle(p.group_id);
                        let (reads, writes) =
                            handle.as_ref().map_or((0.0, 0.0), |h| h.traffic.rates());
                        PartitionReport {
                            group_id: p.group_id,
                            start_token: format!("{:016x}", p.start_token),
                            end_token: format!("{:016x}", p.end_token),
                            item_count: handle.as_ref().map_or(0, |h| h.stats.item_count()),
                            size_bytes: handle.as_ref().map_or(0, |h| h.stats.size_bytes()),
                            leader: handle.as_ref().map_or_else(
                                || self.router.cached_leader(p.group_id),
                                |h| h.group.current_leader(),
                            ),
                            replicas: handle.as_ref().map_or_else(
                                || self.catalog.view().replicas(p.group_id),
                                |h| h.group.voters(),
                            ),
                            reads_per_second: reads,
                            writes_per_second: writes,
                            outbox_records: handle.as_ref().map_or(0, |h| {
                                h.sm.outbox_depth(OUTBOX_COUNT_CAP).unwrap_or(0) as u64
                            }),
                            outbox_age_ms: self.shipper.waiting_ms(p.group_id),
                        }
                    })
                    .collect(),
            })
            .collect();
        ClusterReport {
            node_id: self.node.node_id(),
            nodes: self.node_reports(&tables),
            tables,
        }
    }

    fn node_reports(&self, tables: &[TableReport]) -> Vec<NodeReport> {
        let replica_count = |id: u64| {
            tables
                .iter()
                .flat_map(|t| &t.partitions)
                .filter(|p| p.replicas.contains(&id))
                .count()
        };
        self.catalog
            .view()
            .nodes()
            .into_iter()
            .map(|node| NodeReport {
                id: node.node_id,
                raft_addr: Some(node.cluster_addr).filter(|_| self.node.raft_addr().is_some()),
                api_addr: node.api_addr,
                zone: node.zone,
                replica_count: replica_count(node.node_id),
                down: self.catalog.view().is_down(node.node_id),
                leaving: self.catalog.view().is_leaving(node.node_id),
            })
            .collect()
    }
}
