//! Routing of item requests: to the partition that owns their token on the
//! catalog's current partition map, then to a replica of it: this node's
//! when it has one that may answer (the leader for writes and consistent
//! reads, any replica for other reads), otherwise another node's, through
//! a forwarded request. Splits, leader changes and unreachable nodes are
//! retried here, so a client sees none of them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use atoll_model::Item;
use atoll_model::table::TableDefinition;
use atoll_partition::{ItemRange, PartitionCommand, PartitionOutput, WriteOp, read_item};
use atoll_replication::{GroupId, NodeId, ReplicationError};

use crate::data::BatchOutcome;

mod index_reads;
mod index_writes;
mod stream_reads;
mod transactions;
use super::PartitionHandle;
use super::catalog_client::CatalogClient;
use super::hosting::PartitionHost;
use super::rpc::Peers;
use super::rpc::{
    ClusterReply, ClusterRequest, FORWARD_TIMEOUT, RangeChunk, RangeItem, RangeRequest,
};
use crate::error::ClusterError;
pub(crate) use transactions::{SHARE_RETRY, TransactionItem};

/// How long a request keeps retrying while partitions split or leaders change.
const ROUTE_RETRY: Duration = Duration::from_secs(10);

/// Where a request for a partition goes.
enum Target {
    Local(PartitionHandle),
    Remote(NodeId),
}

/// Pause before retry `attempt`: short at first (a split settles in
/// milliseconds), longer while an election runs.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((2u64 << attempt.min(6)).min(100))
}

/// Sends item requests to the partitions owning their keys: this node's
/// replica, or another node's through a forwarded request; remembers the
/// leaders that forwarded requests taught it.
pub(crate) struct Router {
    me: NodeId,
    catalog: Arc<CatalogClient>,
    host: Arc<PartitionHost>,
    peers: Peers,
    // Leaders of groups this node holds no replica of, as forwarded
    // requests taught them.
    leaders: RwLock<BTreeMap<GroupId, NodeId>>,
}

/// Replicates `command` through this node's replica `partition` (which
/// must lead) and returns what applying it produced.
pub(super) async fn propose_to(
    partition: &PartitionHandle,
    command: &PartitionCommand,
) -> Result<PartitionOutput, ClusterError> {
    let bytes = encode_for(partition, command)?;
    let proposal = partition.group.propose(bytes);
    let output = tokio::time::timeout(FORWARD_TIMEOUT, proposal)
        .await
        .map_err(|_| {
            ReplicationError::OutcomeUnknown(format!(
                "group {} did not commit the write in {FORWARD_TIMEOUT:?}",
                partition.group.id()
            ))
        })??;
    Ok(output)
}

/// `command` as `partition`'s log takes it: on a partition that has a
/// stream, item writes and splits carry the leader's clock, as does every
/// stream change, so every replica dates records and shards alike (a
/// shard's id holds the time it opened).
pub(super) fn encode_for(
    partition: &PartitionHandle,
    command: &PartitionCommand,
) -> Result<bytes::Bytes, ClusterError> {
    let dated = match command {
        // A prepare dates its held items, which recovery goes by.
        PartitionCommand::SetStream { .. } | PartitionCommand::PrepareTransaction { .. } => true,
        PartitionCommand::Write(_)
        | PartitionCommand::Batch { .. }
        | PartitionCommand::Split { .. }
        | PartitionCommand::CommitTransaction { .. } => partition.sm.stamps_writes(),
        _ => false,
    };
    Ok(match dated {
        true => PartitionCommand::Stamped {
            now_ms: super::now_ms(),
            command: Box::new(command.clone()),
        }
        .encode()?,
        false => command.encode()?,
    })
}

impl Router {
    pub(super) fn new(catalog: Arc<CatalogClient>, host: Arc<PartitionHost>, peers: Peers) -> Self {
        Router {
            me: peers.node_id(),
            catalog,
            host,
            peers,
            leaders: RwLock::new(BTreeMap::new()),
        }
    }

    /// The group of the partition owning `token` in the catalog's current
    /// map of `table` (the caller's copy of the table may predate a split).
    fn group_for(&self, table: &TableDefinition, token: u64) -> Result<GroupId, ClusterError> {
        let map = self.current_map(table, token)?;
        group_in(&map, token)
    }

    /// The catalog's current copy of `table` (the caller's may predate a
    /// split); `token` names the key that asked, for the error.
    fn current_map(
        &self,
        table: &TableDefinition,
        token: u64,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        self.catalog
            .view()
            .table(&table.name)
            .filter(|t| t.table_id == table.table_id)
            .ok_or_else(|| ClusterError::NoPartition {
                table: table.name.clone(),
                token,
            })
    }

    /// Where to send a request for `group`; `None` while no leader is known
    /// to a replica here (an election is under way) or no replica is known.
    fn target(&self, group: GroupId, needs_leader: bool, attempt: u32) -> Option<Target> {
        let me = self.me;
        if let Some(handle) = self.host.handle(group) {
            if handle.group.is_leader() {
                return Some(Target::Local(handle));
            }
            // A replica that joined empty has nothing to read until its
            // first snapshot or entry, and one importing a snapshot holds a
            // mix of old and new: another replica answers meanwhile.
            let caught_up =
                handle.group.applied_index().is_some() && !handle.group.is_installing_snapshot();
            if !needs_leader && caught_up {
                return Some(Target::Local(handle));
            }
            if needs_leader || handle.group.current_leader().is_some() {
                return match handle.group.current_leader() {
                    Some(leader) if leader != me => Some(Target::Remote(leader)),
                    _ => None,
                };
            }
        }
        if let Some(leader) = self.cached_leader(group) {
            return Some(Target::Remote(leader));
        }
        let others = self.catalog.other_replicas(group);
        let index = attempt as usize % others.len().max(1);
        others.get(index).copied().map(Target::Remote)
    }

    pub(super) fn cached_leader(&self, group: GroupId) -> Option<NodeId> {
        self.leaders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
            .copied()
    }

    /// Remembers what a forwarded request taught about `group`'s leader.
    fn learn_leader(&self, group: GroupId, leader: Option<NodeId>) {
        let mut leaders = self.leaders.write().unwrap_or_else(|e| e.into_inner());
        match leader {
            Some(node) if node != self.me => {
                leaders.insert(group, node);
            }
            _ => {
                leaders.remove(&group);
            }
        }
    }

    /// Sends `request` for `group` to `node`, learning its leader from the answer.
    async fn forward_to(
        &self,
        group: GroupId,
        node: NodeId,
        request: &ClusterRequest,
    ) -> Result<ClusterReply, ClusterError> {
        match self.peers.forward(node, request).await {
            Ok(ClusterReply::NotLeader { leader }) => {
                self.learn_leader(group, leader);
                Err(ClusterReply::NotLeader { leader }.into_error(group, node))
            }
            Ok(
                reply @ (ClusterReply::NotHosted
                | ClusterReply::WrongPartition
                | ClusterReply::Error(_)
                | ClusterReply::Failed { .. }),
            ) => {
                self.learn_leader(group, None);
                Err(reply.into_error(group, node))
            }
            Ok(reply) => Ok(reply),
            Err(e) => {
                self.learn_leader(group, None);
                Err(e)
            }
        }
    }

    /// One attempt at writing `command` through group `group`'s leader.
    async fn write_to_group(
        &self,
        group: GroupId,
        token: u64,
        command: &PartitionCommand,
        attempt: u32,
    ) -> Result<PartitionOutput, ClusterError> {
        match self.target(group, true, attempt) {
            None => Err(ReplicationError::NotLeader {
                group,
                leader: None,
            }
            .into()),
            Some(Target::Local(handle)) => {
                handle.traffic.count_write(token);
                propose_to(&handle, command).await
            }
            Some(Target::Remote(node)) => {
                let request = ClusterRequest::Write {
                    group,
                    command: command.clone(),
                };
                match self.forward_to(group, node, &request).await? {
                    ClusterReply::Written(output) => {
                        self.learn_leader(group, Some(node));
                        Ok(output)
                    }
                    other => Err(other.into_error(group, node)),
                }
            }
        }
    }

    /// Replicates `command` through the partition owning `token` and returns
    /// its outcome. A partition that split away the key refuses the command;
    /// it is then sent again on the current partition map (a batch regrouped
    /// by partition). Leader changes and unreachable replicas are retried
    /// too, as long as the write certainly had no effect.
    pub(crate) async fn write(
        &self,
        table: &TableDefinition,
        token: u64,
        command: &PartitionCommand,
    ) -> Result<PartitionOutput, ClusterError> {
        let deadline = Instant::now() + ROUTE_RETRY;
        let mut attempt = 0;
        loop {
            let group = self.group_for(table, token)?;
            let error = match self.write_to_group(group, token, command, attempt).await {
                Ok(PartitionOutput::WrongPartition) => {
                    if let PartitionCommand::Batch { ops } = command {
                        let written = self.write_regrouped(table, ops, deadline).await?;
                        return Ok(PartitionOutput::BatchWritten {
                            old_sizes_bytes: written.old_sizes_bytes,
                        });
                    }
                    ClusterError::PartitionMoved {
                        table: table.name.clone(),
                    }
                }
                Ok(output) => return Ok(output),
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            if Instant::now() >= deadline {
                return Err(error);
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Writes a batch of unconditional writes on distinct keys, each
    /// partition's share as one command, all shares at once (their log
    /// entries share the node's group commit). Returns the old size of
    /// each item (and its collection's size after, on a table with local
    /// indexes) in the batch's order.
    pub(crate) async fn write_batch(
        &self,
        table: &TableDefinition,
        ops: &[WriteOp],
    ) -> Result<BatchOutcome, ClusterError> {
        self.write_regrouped(table, ops, Instant::now() + ROUTE_RETRY)
            .await
    }

    /// Writes a batch that straddles partitions: each partition's share
    /// goes as its own batch; shares refused (a split, a leader change) are
    /// regrouped and sent again. Sizes come back in the batch's order. A
    /// share its partition refuses (an item collection that would overfill)
    /// fails the batch; other shares may have been written, as DynamoDB's
    /// BatchWriteItem is not atomic either.
    async fn write_regrouped(
        &self,
        table: &TableDefinition,
        ops: &[WriteOp],
        deadline: Instant,
    ) -> Result<BatchOutcome, ClusterError> {
        let mut written = BatchOutcome {
            old_sizes_bytes: vec![0u32; ops.len()],
            collection_sizes_bytes: vec![None; ops.len()],
            index_writes: vec![Vec::new(); ops.len()],
        };
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            // The map is looked up once per round, not once per write.
            let map = self.current_map(table, 0)?;
            let mut groups: BTreeMap<GroupId, (u64, Vec<usize>)> = BTreeMap::new();
            for index in pending.drain(..) {
                let Some(op) = ops.get(index) else { continue };
                let token = atoll_partition::row_key_token(op.row_key()).unwrap_or_default();
                let group = group_in(&map, token)?;
                groups
                    .entry(group)
                    .or_insert_with(|| (token, Vec::new()))
                    .1
                    .push(index);
            }
            let sends = groups
                .into_iter()
                .map(|(group, (token, indices))| async move {
                    let share = PartitionCommand::Batch {
                        ops: indices
                            .iter()
                            .filter_map(|i| ops.get(*i).cloned())
                            .collect(),
                    };
                    let outcome = self.write_to_group(group, token, &share, attempt).await;
                    (indices, outcome)
                });
            let mut last_error = None;
            for (indices, outcome) in futures_util::future::join_all(sends).await {
                match outcome {
                    Ok(PartitionOutput::BatchWritten {
                        old_sizes_bytes: sizes,
                    }) => written.record(&indices, &sizes, &[], Vec::new()),
                    Ok(PartitionOutput::BatchWrittenInCollections {
                        old_sizes_bytes: sizes,
                        collection_sizes_bytes,
                        index_writes,
                    }) => written.record(&indices, &sizes, &collection_sizes_bytes, index_writes),
                    Ok(PartitionOutput::Refused(rejection)) => {
                        return Err(ClusterError::Rejected(rejection));
                    }
                    Ok(PartitionOutput::TransactionConflict) => {
                        return Err(ClusterError::TransactionConflict);
                    }
                    Ok(PartitionOutput::WrongPartition) => pending.extend(indices),
                    Err(e) if e.is_retryable() => {
                        pending.extend(indices);
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e),
                    Ok(other) => {
                        return Err(ClusterError::UnexpectedOutcome(format!("{other:?}")));
                    }
                }
            }
            if !pending.is_empty() {
                if Instant::now() >= deadline {
                    return Err(last_error.unwrap_or(ClusterError::PartitionMoved {
                        table: table.name.clone(),
                    }));
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
        Ok(written)
    }

    /// Sends the read `request(group)` to a replica of the partition owning
    /// `token` (its leader when `consistent`), retrying as `write` does;
    /// reads have no effect, so every failure short of the deadline is
    /// retried. Returns the reply that carries the result.
    async fn routed_read(
        &self,
        table: &TableDefinition,
        token: u64,
        consistent: bool,
        request: impl Fn(GroupId) -> ClusterRequest,
    ) -> Result<ClusterReply, ClusterError> {
        let deadline = Instant::now() + ROUTE_RETRY;
        let mut attempt = 0;
        loop {
            let group = self.group_for(table, token)?;
            let outcome = match self.target(group, consistent, attempt) {
                None => Err(ReplicationError::NotLeader {
                    group,
                    leader: None,
                }
                .into()),
                Some(Target::Local(_)) => match self.read_here(request(group)).await {
                    reply @ (ClusterReply::Item(_) | ClusterReply::Range(_)) => Ok(reply),
                    reply => Err(reply.into_error(group, self.me)),
                },
                Some(Target::Remote(node)) => self.forward_to(group, node, &request(group)).await,
            };
            match outcome {
                Ok(reply) => return Ok(reply),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {}
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Reads one item; a consistent read is served by the partition's
    /// leader under its lease, any other by any replica.
    pub(crate) async fn read_item(
        &self,
        table: &TableDefinition,
        token: u64,
        row_key: &[u8],
        consistent: bool,
    ) -> Result<Option<Item>, ClusterError> {
        let request = |group| ClusterRequest::ReadItem {
            group,
            token,
            row_key: row_key.to_vec(),
            consistent,
        };
        match self.routed_read(table, token, consistent, request).await? {
            ClusterReply::Item(item) => Ok(item),
            _ => Err(unexpected_reply()),
        }
    }

    /// Reads items of `range` in the partition owning `token`: up to
    /// `range.max_items`, stopping once `range.max_bytes` are reached.
    pub(crate) async fn read_range(
        &self,
        table: &TableDefinition,
        token: u64,
        range: RangeRequest,
        consistent: bool,
    ) -> Result<RangeChunk, ClusterError> {
        let request = |group| ClusterRequest::ReadRange {
            group,
            token,
            range: range.clone(),
            consistent,
        };
        match self.routed_read(table, token, consistent, request).await? {
            ClusterReply::Range(chunk) => Ok(chunk),
            _ => Err(unexpected_reply()),
        }
    }

    /// Serves a read request from this node's replica.
    pub(super) async fn read_here(&self, request: ClusterRequest) -> ClusterReply {
        match request {
            ClusterRequest::ReadItem {
                group,
                token,
                row_key,
                consistent,
            } => match self
                .read_item_here(group, token, &row_key, consistent)
                .await
            {
                Ok(item) => ClusterReply::Item(item),
                Err(reply) => reply,
            },
            ClusterRequest::ReadRange {
                group,
                token,
                range,
                consistent,
            } => match self.read_range_here(group, token, range, consistent).await {
                Ok(chunk) => ClusterReply::Range(chunk),
                Err(reply) => reply,
            },
            ClusterRequest::ReadIndexRange {
                group,
                token,
                index,
                fetch_items,
                range,
                consistent,
            } => {
                let read = self
                    .read_index_range_here(group, token, (index, fetch_items), range, consistent)
                    .await;
                match read {
                    Ok(chunk) => ClusterReply::Range(chunk),
                    Err(reply) => reply,
                }
            }
            ClusterRequest::ReadForTransaction {
                group,
                row_keys,
                check,
            } => self
                .read_for_transaction_here(group, &row_keys, check)
                .await
                .unwrap_or_else(|reply| reply),
            stream @ (ClusterRequest::StreamState { .. }
            | ClusterRequest::ReadStream { .. }
            | ClusterRequest::LastStreamSequence { .. }) => {
                self.stream_read_here(&stream).unwrap_or_else(|reply| reply)
            }
            _ => ClusterReply::failed("not a read", false),
        }
    }

    /// This node's replica of `group`, ready to serve a read of `token`:
    /// for a consistent read it must lead and hold its lease, and the
    /// partition must still own the token (it may have split it away).
    async fn readable_replica(
        &self,
        group: GroupId,
        token: u64,
        consistent: bool,
    ) -> Result<PartitionHandle, ClusterReply> {
        let handle = self.host.handle(group).ok_or(ClusterReply::NotHosted)?;
        if consistent {
            match handle.group.read_barrier().await {
                Ok(()) => {}
                Err(ReplicationError::NotLeader { leader, .. }) => {
                    return Err(ClusterReply::NotLeader { leader });
                }
                Err(e) => {
                    return Err(ClusterReply::failed(e.to_string(), true));
                }
            }
        }
        let (first, last) = handle.sm.range();
        if token < first || token > last {
            return Err(ClusterReply::WrongPartition);
        }
        Ok(handle)
    }

    async fn read_item_here(
        &self,
        group: GroupId,
        token: u64,
        row_key: &[u8],
        consistent: bool,
    ) -> Result<Option<Item>, ClusterReply> {
        let handle = self.readable_replica(group, token, consistent).await?;
        handle.traffic.count_read(Some(token));
        read_item(&handle.items, row_key).map_err(|e| ClusterReply::failed(e.to_string(), false))
    }

    async fn read_range_here(
        &self,
        group: GroupId,
        token: u64,
        range: RangeRequest,
        consistent: bool,
    ) -> Result<RangeChunk, ClusterReply> {
        let handle = self.readable_replica(group, token, consistent).await?;
        // Query and Scan: counted, but their token says little about load.
        handle.traffic.count_read(None);
        let mut chunk = RangeChunk::default();
        let mut bytes = 0u64;
        for stored in ItemRange::new(&handle.items, range.start, range.end, range.reverse) {
            if chunk.items.len() >= range.max_items || bytes >= range.max_bytes {
                break;
            }
            let stored = stored.map_err(|e| ClusterReply::failed(e.to_string(), false))?;
            bytes += u64::from(stored.size_bytes);
            chunk.items.push(RangeItem {
                item: stored.item,
                size_bytes: stored.size_bytes,
            });
        }
        Ok(chunk)
    }
}

/// The group of the partition owning `token` in `map`.
fn group_in(map: &TableDefinition, token: u64) -> Result<GroupId, ClusterError> {
    map.partition_for_token(token)
        .map(|p| p.group_id)
        .ok_or_else(|| ClusterError::NoPartition {
            table: map.name.clone(),
            token,
        })
}

fn unexpected_reply() -> ClusterError {
    ClusterError::Replication(ReplicationError::OutcomeUnknown(
        "a replica answered a read with another reply".into(),
    ))
}
