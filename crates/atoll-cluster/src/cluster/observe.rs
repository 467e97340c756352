//! Gauges of this node's share of the cluster, read when `/metrics` is
//! scraped rather than kept up to date on every request: partition sizes
//! and traffic, the state of each Raft group it hosts, its disk use.

use atoll_replication::Group;
use metrics::{counter, gauge};

use super::Cluster;

impl Cluster {
    /// Sets the node's gauges and traffic counters to their values now;
    /// the metrics endpoint calls it before it renders.
    pub fn record_metrics(&self) {
        gauge!("atoll_storage_disk_bytes").set(self.storage.disk_space_bytes() as f64);
        record_group("0", self.catalog.group());
        for table in self.catalog.view().tables() {
            for partition in &table.partitions {
                let Some(handle) = self.host.handle(partition.group_id) else {
                    continue;
                };
                let group = partition.group_id.to_string();
                let labels = [("table", table.name.clone()), ("partition", group.clone())];
                gauge!("atoll_partition_items", &labels).set(handle.stats.item_count() as f64);
                gauge!("atoll_partition_size_bytes", &labels).set(handle.stats.size_bytes() as f64);
                // The replica's own counts: they restart from zero with it,
                // which Prometheus's rate() reads as a counter reset.
                counter!("atoll_partition_reads_total", &labels).absolute(handle.traffic.reads());
                counter!("atoll_partition_writes_total", &labels).absolute(handle.traffic.writes());
                record_group(&group, &handle.group);
            }
        }
    }
}

/// The Raft gauges of one hosted group (`group` 0 is the catalog).
fn record_group<O>(group: &str, replica: &Group<O>) {
    let status = replica.status();
    let label = [("group", group.to_string())];
    gauge!("atoll_raft_term", &label).set(status.term as f64);
    gauge!("atoll_raft_is_leader", &label).set(if status.is_leader { 1.0 } else { 0.0 });
    gauge!("atoll_raft_apply_lag_entries", &label).set(status.apply_lag_entries as f64);
}
