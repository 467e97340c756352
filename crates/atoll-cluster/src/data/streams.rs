//! Streams through the data plane: a table's shards, gathered from its
//! partitions, and a shard's records, read from any replica of the
//! partition that writes it.

use atoll_model::table::TableDefinition;

pub use atoll_partition::{
    EventName, SequenceNumber, Shard, StreamRecord, StreamViewType, shard_id,
};

use super::DataPlane;
use crate::error::ClusterError;

/// A shard of a table's stream: the partition (group) that writes it, and
/// the shard as the partition keeps it.
#[derive(Clone, Debug)]
pub struct StreamShard {
    /// The partition's group.
    pub group: u64,
    /// The shard.
    pub shard: Shard,
}

impl StreamShard {
    /// Its DynamoDB shard id.
    pub fn shard_id(&self) -> String {
        shard_id(self.group, &self.shard)
    }
}

impl DataPlane {
    /// Every shard the partitions of `table` keep (of every stream the
    /// table had that is not trimmed yet), partition by partition.
    pub async fn stream_shards(
        &self,
        table: &TableDefinition,
    ) -> Result<Vec<StreamShard>, ClusterError> {
        let mut shards = Vec::new();
        for partition in &table.partitions {
            let group = partition.group_id;
            let state = self.router.stream_state(group).await?;
            shards.extend(
                state
                    .shards
                    .into_iter()
                    .map(|shard| StreamShard { group, shard }),
            );
        }
        Ok(shards)
    }

    /// Shard `number` of the partition of group `group`, as a replica of
    /// it has applied it.
    pub async fn stream_shard(
        &self,
        group: u64,
        number: u32,
    ) -> Result<Option<StreamShard>, ClusterError> {
        let state = self.router.stream_state(group).await?;
        Ok(state
            .shard(number)
            .cloned()
            .map(|shard| StreamShard { group, shard }))
    }

    /// Up to `limit` records of `shard` from `from` on (stopping after the
    /// one that passes `max_bytes`), and whether more follow.
    pub async fn read_stream(
        &self,
        shard: &StreamShard,
        from: SequenceNumber,
        limit: usize,
        max_bytes: u64,
    ) -> Result<(Vec<StreamRecord>, bool), ClusterError> {
        self.router
            .read_stream((shard.group, shard.shard.number), from, limit, max_bytes)
            .await
    }

    /// The sequence number of `shard`'s last record, if it has one.
    pub async fn last_stream_sequence(
        &self,
        shard: &StreamShard,
    ) -> Result<Option<SequenceNumber>, ClusterError> {
        self.router
            .last_stream_sequence((shard.group, shard.shard.number))
            .await
    }
}
