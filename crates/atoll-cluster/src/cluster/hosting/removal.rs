//! Removing replicas: a table's when it is deleted, a replica that moved
//! to another node, and the Raft state and keyspaces nothing uses any more.

use atoll_model::table::{TableDefinition, TableStatus};
use atoll_partition::PartitionStateMachine;
use atoll_replication::{GroupId, NodeId};

use super::{PartitionHost, hold_for_tests};
use crate::cluster::rpc::{ClusterReply, ClusterRequest};
use crate::cluster::{CATALOG_GROUP_ID, Cluster, TABLE_KEYSPACE_PREFIX};
use crate::error::ClusterError;

impl PartitionHost {
    /// Stops and deletes this node's replica of `group` (its table is gone,
    /// or the replica moved to another node).
    pub(super) async fn destroy_partition(&self, group: GroupId) -> Result<(), ClusterError> {
        let hosted = self
            .partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group);
        if hosted.is_none() {
            return Ok(());
        }
        self.node.destroy_group(group).await?;
        let mut batch = atoll_storage::WriteBatch::new();
        for key in PartitionStateMachine::record_keys(group) {
            batch.delete(&self.stats_keyspace, key);
        }
        self.storage
            .commit(batch, atoll_storage::Durability::Buffered)?;
        Ok(())
    }

    /// Deletes the Raft state of groups this node neither hosts nor is
    /// placed on: partitions of tables dropped, or replicas moved away,
    /// while it was down (nobody told it; it would keep their logs forever).
    /// Only on a catalog caught up with its leader (a lagging one may not
    /// know of a placement here yet), and only groups whose table is gone
    /// or whose membership, as last applied here, no longer names this
    /// node: a voter that forgot its votes could elect a wrong leader.
    pub(in crate::cluster) async fn forget_orphaned_groups(&self) -> Result<(), ClusterError> {
        self.catalog.try_catch_up().await?;
        let _pass = self.hosting.lock().await;
        let me = self.node.node_id();
        let in_catalog = |group: GroupId| {
            self.catalog
                .view()
                .tables()
                .iter()
                .any(|table| table.partitions.iter().any(|p| p.group_id == group))
        };
        let joining = self
            .joining
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for group in self.node.groups_on_disk()? {
            let candidate = group != CATALOG_GROUP_ID
                && self.handle(group).is_none()
                && !joining.contains_key(&group)
                && !(in_catalog(group) && self.catalog.view().replicas(group).contains(&me));
            let orphaned = candidate
                && (!in_catalog(group)
                    || !self.node.applied_membership_names(group, me)?
                    || self.removed_from_group(group, None).await);
            if !orphaned {
                continue;
            }
            self.node.forget_group(group).await?;
            let mut batch = atoll_storage::WriteBatch::new();
            for key in PartitionStateMachine::record_keys(group) {
                batch.delete(&self.stats_keyspace, key);
            }
            self.storage
                .commit(batch, atoll_storage::Durability::Buffered)?;
            tracing::info!(
                group,
                "deleted the Raft state of a partition no longer placed here"
            );
        }
        Ok(())
    }

    /// Whether `group`'s leader (asked at `leader`, as this replica last
    /// knew it, then at the replicas the catalog names) confirms that its
    /// last committed membership lacks this node. `false` when no leader
    /// answers: a replica is only ever deleted on the group's word.
    pub(super) async fn removed_from_group(&self, group: GroupId, leader: Option<NodeId>) -> bool {
        let me = self.node.node_id();
        let mut ask: Vec<NodeId> = leader.into_iter().collect();
        for replica in self.catalog.view().replicas(group) {
            if !ask.contains(&replica) {
                ask.push(replica);
            }
        }
        let mut asked = 0;
        while let Some(node) = ask.get(asked).copied() {
            asked += 1;
            if node == me {
                continue;
            }
            match self
                .peers
                .forward(node, &ClusterRequest::Members { group })
                .await
            {
                Ok(ClusterReply::Members { members }) => return !members.contains(&me),
                Ok(ClusterReply::NotLeader {
                    leader: Some(leader),
                }) if !ask.contains(&leader) => ask.push(leader),
                _ => {}
            }
        }
        false
    }

    /// Drops table keyspaces no live table uses: a crash during DeleteTable
    /// can leave the keyspace behind after the catalog forgot the table,
    /// and other nodes drop theirs when they see it go.
    pub(super) fn drop_orphaned_keyspaces(&self) -> Result<(), ClusterError> {
        let referenced: std::collections::BTreeSet<String> = self
            .catalog
            .view()
            .tables()
            .iter()
            .filter(|t| t.status != TableStatus::Deleting)
            .flat_map(|t| [t.keyspace.clone(), t.index_keyspace()])
            .collect();
        let in_use: std::collections::BTreeSet<String> = self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(|handle| {
                let local = handle
                    .sm
                    .local_indexes()
                    .map(|l| l.keyspace().name().to_string());
                std::iter::once(handle.items.name().to_string()).chain(local)
            })
            .collect();
        for name in self.storage.keyspace_names() {
            if name.starts_with(TABLE_KEYSPACE_PREFIX)
                && !referenced.contains(&name)
                && !in_use.contains(&name)
            {
                tracing::info!(keyspace = %name, "dropping the keyspace of a deleted table");
                self.storage.drop_keyspace(&name)?;
            }
        }
        Ok(())
    }

    /// Stops and deletes this node's replicas of `table` and its items.
    pub(in crate::cluster) async fn destroy_table_replicas(
        &self,
        table: &TableDefinition,
    ) -> Result<(), ClusterError> {
        let _pass = self.hosting.lock().await;
        for partition in &table.partitions {
            if self.handle(partition.group_id).is_some() {
                self.destroy_partition(partition.group_id).await?;
            } else if self.node.has_group_state(partition.group_id)? {
                self.node.destroy_group(partition.group_id).await?;
            }
        }
        let names = self.storage.keyspace_names();
        for keyspace in [table.keyspace.clone(), table.index_keyspace()] {
            if names.contains(&keyspace) {
                self.storage.drop_keyspace(&keyspace)?;
            }
        }
        Ok(())
    }
}

impl Cluster {
    /// Deletes this node's replicas of a DELETING table and its items, then
    /// has the catalog forget the table. Every node holding a replica does
    /// its part when it sees the table DELETING; forgetting twice is harmless.
    pub(in crate::cluster) async fn finish_delete(
        &self,
        table: &TableDefinition,
    ) -> Result<(), ClusterError> {
        hold_for_tests("table-delete-hold-ms").await;
        self.host.destroy_table_replicas(table).await?;
        self.catalog
            .propose(crate::catalog::CatalogCommand::DropTable {
                name: table.name.clone(),
                table_id: table.table_id.clone(),
            })
            .await?
            .map_err(|r| r.into_error(&table.name))?;
        self.delete_index_tables(table).await
    }
}
