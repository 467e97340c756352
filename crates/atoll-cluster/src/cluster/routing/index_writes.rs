//! Writes of shipped global index changes to the partitions of an index's
//! hidden table, grouped by the partition owning each change's token.

use std::collections::BTreeMap;

use atoll_model::table::TableDefinition;
use atoll_partition::{IndexEntryChange, PartitionCommand, PartitionOutput};
use atoll_replication::GroupId;
use tokio::time::Instant;

use super::{ROUTE_RETRY, Router, backoff, group_in};
use crate::error::ClusterError;

impl Router {
    /// Applies `changes` on the partitions of `index_table` that own them,
    /// each partition's share as one command, all shares at once; shares
    /// refused (a split, a leader change) are regrouped and sent again.
    /// Applying a change twice is harmless (versions decide), so a share
    /// whose outcome is unknown is simply sent again.
    pub(crate) async fn write_index_changes(
        &self,
        index_table: &TableDefinition,
        changes: Vec<IndexEntryChange>,
    ) -> Result<(), ClusterError> {
        let deadline = Instant::now() + ROUTE_RETRY;
        let mut pending = changes;
        let mut attempt = 0;
        while !pending.is_empty() {
            let map = self.current_map(index_table, 0)?;
            let mut shares: BTreeMap<GroupId, (u64, Vec<IndexEntryChange>)> = BTreeMap::new();
            for change in pending.drain(..) {
                let token = change.token();
                let group = group_in(&map, token)?;
                shares
                    .entry(group)
                    .or_insert_with(|| (token, Vec::new()))
                    .1
                    .push(change);
            }
            let sends = shares
                .into_iter()
                .map(|(group, (token, changes))| async move {
                    let command = PartitionCommand::ApplyIndexChanges { changes };
                    let outcome = self.write_to_group(group, token, &command, attempt).await;
                    let PartitionCommand::ApplyIndexChanges { changes } = command else {
                        return (Vec::new(), outcome);
                    };
                    (changes, outcome)
                });
            let mut last_error = None;
            for (changes, outcome) in futures_util::future::join_all(sends).await {
                match outcome {
                    Ok(PartitionOutput::IndexChangesApplied { .. }) => {}
                    Ok(PartitionOutput::WrongPartition) => pending.extend(changes),
                    Ok(other) => {
                        return Err(ClusterError::UnexpectedOutcome(format!("{other:?}")));
                    }
                    Err(e) => {
                        pending.extend(changes);
                        last_error = Some(e);
                    }
                }
            }
            if !pending.is_empty() {
                if Instant::now() >= deadline {
                    return Err(last_error.unwrap_or(ClusterError::PartitionMoved {
                        table: index_table.name.clone(),
                    }));
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
        Ok(())
    }
}
