//! Routing of a transaction's commands and reads: its items grouped by the
//! partition owning each (across tables), one command or read per
//! partition, all at once; items a partition no longer owns (it split)
//! are grouped again on the current map.

use std::collections::BTreeMap;
use std::sync::Arc;

use atoll_model::table::TableDefinition;
use atoll_partition::{PartitionCommand, PartitionOutput, TransactionalRead, row_key_token};
use atoll_replication::{GroupId, ReplicationError};
use tokio::time::Instant;

use super::{ClusterReply, ClusterRequest, ROUTE_RETRY, Router, Target, backoff, unexpected_reply};
use crate::error::ClusterError;

/// One item a transaction touches, located on its table.
#[derive(Clone, Debug)]
pub(crate) struct TransactionItem {
    /// The item's table.
    pub(crate) table: Arc<TableDefinition>,
    /// The item's token.
    pub(crate) token: u64,
    /// The item's row key.
    pub(crate) row_key: Vec<u8>,
}

/// Items of one partition: its group, a token it owns, their positions.
type Share = (GroupId, u64, Vec<usize>);

/// What one partition answered for its items (their positions).
pub(crate) type ShareOutcome = (Vec<usize>, Result<PartitionOutput, ClusterError>);

impl Router {
    /// Groups the items at `positions` by the partition owning each on the
    /// catalog's current map.
    fn shares_of(
        &self,
        items: &[TransactionItem],
        positions: impl IntoIterator<Item = usize>,
    ) -> Result<Vec<Share>, ClusterError> {
        let mut shares: BTreeMap<GroupId, (u64, Vec<usize>)> = BTreeMap::new();
        for position in positions {
            let Some(item) = items.get(position) else {
                continue;
            };
            let group = self.group_for(&item.table, item.token)?;
            shares
                .entry(group)
                .or_insert_with(|| (item.token, Vec::new()))
                .1
                .push(position);
        }
        Ok(shares
            .into_iter()
            .map(|(group, (token, positions))| (group, token, positions))
            .collect())
    }

    /// Sends each partition holding some of `positions` of `items` the
    /// command `make` builds for its items there. Items of a partition
    /// that split them away, and shares refused with no effect (a leader
    /// change), are grouped again and sent again until `deadline`; any
    /// other failure comes back as that share's outcome.
    pub(crate) async fn send_transaction_shares(
        &self,
        items: &[TransactionItem],
        positions: Vec<usize>,
        make: impl Fn(&[usize]) -> PartitionCommand,
        deadline: Instant,
    ) -> Vec<ShareOutcome> {
        let mut done = Vec::new();
        let mut pending = positions;
        let mut attempt = 0;
        while !pending.is_empty() {
            let shares = match self.shares_of(items, pending.drain(..)) {
                Ok(shares) => shares,
                Err(e) => {
                    done.push((Vec::new(), Err(e)));
                    return done;
                }
            };
            let make = &make;
            let sends = shares
                .into_iter()
                .map(|(group, token, positions)| async move {
                    let command = make(&positions);
                    let outcome = self.write_to_group(group, token, &command, attempt).await;
                    (positions, outcome)
                });
            let mut last_error = None;
            for (positions, outcome) in futures_util::future::join_all(sends).await {
                match outcome {
                    Ok(PartitionOutput::WrongPartition) => pending.extend(positions),
                    Err(e) if e.is_retryable() && Instant::now() < deadline => {
                        pending.extend(positions);
                        last_error = Some(e);
                    }
                    outcome => done.push((positions, outcome)),
                }
            }
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let error = last_error.unwrap_or_else(|| ClusterError::PartitionMoved {
                    table: items
                        .first()
                        .map(|item| item.table.name.clone())
                        .unwrap_or_default(),
                });
                done.push((std::mem::take(&mut pending), Err(error)));
                break;
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
        done
    }

    /// Reads `items` for a transaction from their partitions' leaders, in
    /// their order (with `check`, the second round: versions read first).
    pub(crate) async fn read_for_transaction(
        &self,
        items: &[TransactionItem],
        check: bool,
    ) -> Result<Vec<TransactionalRead>, ClusterError> {
        let deadline = Instant::now() + ROUTE_RETRY;
        let mut reads: Vec<Option<TransactionalRead>> = vec![None; items.len()];
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            let shares = self.shares_of(items, pending.drain(..))?;
            let sends = shares.into_iter().map(|(group, _, positions)| async move {
                let row_keys: Vec<Vec<u8>> = positions
                    .iter()
                    .filter_map(|p| items.get(*p).map(|item| item.row_key.clone()))
                    .collect();
                let outcome = self
                    .read_share_for_transaction(group, row_keys, check, attempt)
                    .await;
                (positions, outcome)
            });
            let mut last_error = None;
            for (positions, outcome) in futures_util::future::join_all(sends).await {
                match outcome {
                    Ok(found) if found.len() == positions.len() => {
                        for (position, read) in positions.into_iter().zip(found) {
                            if let Some(slot) = reads.get_mut(position) {
                                *slot = Some(read);
                            }
                        }
                    }
                    Ok(_) => return Err(unexpected_reply()),
                    Err(e) => {
                        pending.extend(positions);
                        last_error = Some(e);
                    }
                }
            }
            if !pending.is_empty() {
                if Instant::now() >= deadline {
                    return Err(last_error.unwrap_or_else(unexpected_reply));
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
        reads
            .into_iter()
            .map(|read| read.ok_or_else(unexpected_reply))
            .collect()
    }

    /// One attempt at reading one partition's items for a transaction.
    async fn read_share_for_transaction(
        &self,
        group: GroupId,
        row_keys: Vec<Vec<u8>>,
        check: bool,
        attempt: u32,
    ) -> Result<Vec<TransactionalRead>, ClusterError> {
        let request = ClusterRequest::ReadForTransaction {
            group,
            row_keys,
            check,
        };
        let reply = match self.target(group, true, attempt) {
            None => {
                return Err(ReplicationError::NotLeader {
                    group,
                    leader: None,
                }
                .into());
            }
            Some(Target::Local(_)) => match self.read_here(request).await {
                reply @ ClusterReply::TransactionalReads(_) => reply,
                reply => return Err(reply.into_error(group, self.me)),
            },
            Some(Target::Remote(node)) => self.forward_to(group, node, &request).await?,
        };
        match reply {
            ClusterReply::TransactionalReads(reads) => Ok(reads),
            _ => Err(unexpected_reply()),
        }
    }

    /// Serves a transactional read from this node's replica, which must
    /// lead, hold its lease and own every key.
    pub(super) async fn read_for_transaction_here(
        &self,
        group: GroupId,
        row_keys: &[Vec<u8>],
        check: bool,
    ) -> Result<ClusterReply, ClusterReply> {
        let first = row_keys
            .first()
            .and_then(|key| row_key_token(key))
            .ok_or_else(|| ClusterReply::failed("a transactional read of no items", false))?;
        let handle = self.readable_replica(group, first, true).await?;
        let (start, end) = handle.sm.range();
        let owned = row_keys
            .iter()
            .all(|key| row_key_token(key).is_some_and(|t| start <= t && t <= end));
        if !owned {
            return Err(ClusterReply::WrongPartition);
        }
        handle.traffic.count_read(Some(first));
        let reads = match check {
            false => handle.sm.read_for_transaction(row_keys),
            true => handle.sm.check_for_transaction(row_keys),
        };
        reads
            .map(ClusterReply::TransactionalReads)
            .map_err(|e| ClusterReply::failed(e.to_string(), false))
    }
}

/// How long a transaction's commands keep being retried while partitions
/// split or leaders change.
pub(crate) const SHARE_RETRY: std::time::Duration = ROUTE_RETRY;
