//! Tables' streams on the cluster: each partition is told through its log
//! which stream it writes records to (`SetStream`), when the table is
//! created with one and whenever UpdateTable turns it on or off; the
//! catalog's leader tells again what a node that died did not finish.

use std::sync::Arc;

use atoll_model::table::{TableDefinition, TableStatus};
use atoll_partition::{PartitionCommand, StreamSpec, StreamViewType};
use metrics::counter;
use tracing::Instrument;

use super::Cluster;
use crate::error::ClusterError;

/// The stream `table`'s partitions are to write to, if it has one on.
pub(super) fn stream_spec(table: &TableDefinition) -> Option<StreamSpec> {
    let stream = table.stream.as_ref().filter(|s| s.enabled)?;
    Some(StreamSpec {
        label: stream.label.clone()?,
        view_type: stream
            .view_type
            .as_deref()
            .and_then(StreamViewType::parse)?,
        key_schema: table.key_schema.clone(),
    })
}

impl Cluster {
    /// Tells every partition of table `name` the table's stream (or that
    /// it has none now), until each has taken the table's stream change.
    pub(super) async fn feed_stream(&self, name: &str) -> Result<(), ClusterError> {
        let fed = self
            .tell_every_partition(name, |table| {
                let command = PartitionCommand::SetStream {
                    epoch: table.stream_epoch,
                    spec: stream_spec(table),
                };
                (table.stream_epoch, command)
            })
            .await?;
        if let Some(table) = self.catalog.table(name) {
            self.fed_streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(table.table_id.clone(), fed);
        }
        Ok(())
    }

    /// Feeds the stream of every ACTIVE table whose stream changed since
    /// this node last told its partitions (the node that took the change
    /// may have died before it did); called by the catalog's leader.
    pub(super) fn resume_stream_feeds(self: &Arc<Self>) {
        for table in self.catalog.view().tables() {
            if table.index_of.is_some()
                || table.stream_epoch == 0
                || table.status != TableStatus::Active
            {
                continue;
            }
            let fed = self
                .fed_streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&table.table_id)
                .copied();
            if fed.is_some_and(|fed| fed >= table.stream_epoch) {
                continue;
            }
            // Marked fed before it is, so that one feed runs at a time;
            // a failure clears the mark and the next look tries again.
            self.fed_streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(table.table_id.clone(), table.stream_epoch);
            let cluster = Arc::downgrade(self);
            let (name, table_id) = (table.name.clone(), table.table_id.clone());
            let span = tracing::info_span!("stream_feed", table = %name);
            tokio::spawn(
                async move {
                    let Some(cluster) = cluster.upgrade() else {
                        return;
                    };
                    if let Err(e) = cluster.feed_stream(&name).await {
                        tracing::warn!(error = %e, "telling partitions of a stream change failed; the catalog's leader tries again");
                        counter!("atoll_stream_feed_failures_total").increment(1);
                        cluster
                            .fed_streams
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&table_id);
                    }
                }
                .instrument(span),
            );
        }
    }
}
