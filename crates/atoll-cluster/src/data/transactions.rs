//! Transactions (TransactWriteItems, TransactGetItems) as DynamoDB runs
//! them (USENIX ATC 2023): this node coordinates. A write transaction is
//! begun in the ledger (which also answers a retried request token), its
//! actions are prepared in every partition holding one of its items (all
//! at once), the decision is recorded in the ledger, and only then is each
//! partition told to commit (or release). A coordinator that dies leaves
//! a PENDING entry and held items, which recovery finishes from the ledger
//! (`cluster/transaction_recovery.rs`). A read transaction writes nothing:
//! it reads every item with its version twice and succeeds when nothing
//! changed or was held in between.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use atoll_expr::ast::{Condition, Update};
use atoll_model::table::TableDefinition;
use atoll_model::{AttributeValue, Item, encode_item};
use atoll_partition::{
    CommittedWrite, PartitionCommand, PartitionOutput, TransactionAction, TransactionId,
    TransactionOp, Vote, WriteRejection,
};
use metrics::{counter, histogram};
use tokio::time::Instant;
use tracing::Instrument;

use super::{DataPlane, ItemKey};
use crate::cluster::ledger::{Begin, LedgerState};
use crate::cluster::{SHARE_RETRY, TransactionItem};
use crate::error::ClusterError;

/// Rounds a read transaction tries before it reports a conflict.
const READ_ATTEMPTS: u32 = 6;
/// How long a coordinator keeps telling partitions to commit before it
/// leaves the rest to recovery.
const COMMIT_RETRY: Duration = Duration::from_secs(30);

/// What a transaction does to one item.
#[derive(Clone, Debug)]
pub enum TransactOp {
    /// Replace the item with `item` (of DynamoDB size `size_bytes`).
    Put {
        /// The new item.
        item: Item,
        /// Its DynamoDB size.
        size_bytes: u32,
    },
    /// Apply `update`, creating the item from `key` where it writes.
    Update {
        /// The key attributes.
        key: Item,
        /// The update.
        update: Update,
    },
    /// Remove the item.
    Delete,
    /// Only check the condition.
    Check,
}

/// One action of a write transaction.
#[derive(Clone, Debug)]
pub struct TransactAction {
    /// The item's table.
    pub table: Arc<TableDefinition>,
    /// The item.
    pub key: ItemKey,
    /// What to do.
    pub op: TransactOp,
    /// Condition on the item as it is.
    pub condition: Option<Condition>,
    /// `ExpressionAttributeNames` of the action.
    pub names: HashMap<String, String>,
    /// `ExpressionAttributeValues` of the action.
    pub values: HashMap<String, AttributeValue>,
    /// Whether a failed condition returns the item.
    pub return_old_on_condition_failure: bool,
}

/// A write transaction (TransactWriteItems).
#[derive(Clone, Debug)]
pub struct TransactWrite {
    /// The client's request token, if any (ClientRequestToken).
    pub token: Option<String>,
    /// What identifies the request for its token (a canonical hash).
    pub request_hash: String,
    /// The actions, in request order, on distinct items.
    pub actions: Vec<TransactAction>,
}

/// Why an action kept its transaction from committing.
#[derive(Clone, Debug, PartialEq)]
pub enum CancelReason {
    /// The action was not the cause.
    None,
    /// The condition did not hold.
    ConditionalCheckFailed {
        /// The item, when asked for and present.
        item: Option<Item>,
    },
    /// Another transaction holds the item.
    TransactionConflict,
    /// The action is invalid for the item as it is.
    Invalid(WriteRejection),
}

/// What a write transaction did.
#[derive(Clone, Debug, PartialEq)]
pub enum TransactWriteOutcome {
    /// Committed; per action, what the write did (`None` for a check).
    Committed {
        /// Per action, in request order.
        writes: Vec<Option<CommittedWrite>>,
    },
    /// The same request (by its token) committed before: nothing ran.
    Replayed,
    /// Cancelled; nothing was written.
    Cancelled {
        /// One reason per action, in request order.
        reasons: Vec<CancelReason>,
    },
}

/// One item a read transaction read.
#[derive(Clone, Debug, PartialEq)]
pub struct TransactRead {
    /// The item, if present.
    pub item: Option<Item>,
    /// Its DynamoDB size (0 if missing).
    pub size_bytes: u32,
}

/// What a read transaction saw.
#[derive(Clone, Debug, PartialEq)]
pub enum TransactGetOutcome {
    /// Every item as of one moment, in request order.
    Read(Vec<TransactRead>),
    /// Writes kept changing or holding these items (true where so).
    Conflict(Vec<bool>),
}

impl DataPlane {
    /// Runs a write transaction; see the module's documentation.
    pub async fn transact_write(
        &self,
        request: TransactWrite,
    ) -> Result<TransactWriteOutcome, ClusterError> {
        let started = std::time::Instant::now();
        let ledger_key = match &request.token {
            Some(token) => format!("token/{token}"),
            None => format!("id/{}", uuid::Uuid::new_v4()),
        };
        let attempt = match self
            .ledger
            .begin(&ledger_key, &request.request_hash)
            .await?
        {
            Begin::Started { attempt } => attempt,
            Begin::Replay => {
                counter!("atoll_transactions_total", "outcome" => "replayed").increment(1);
                return Ok(TransactWriteOutcome::Replayed);
            }
            Begin::InProgress => return Err(ClusterError::TransactionInProgress),
            Begin::Mismatch => return Err(ClusterError::IdempotentMismatch),
        };
        let txn = TransactionId {
            ledger_key,
            attempt,
        };
        let span = tracing::debug_span!(
            "transaction",
            ledger_key = %txn.ledger_key,
            attempt = txn.attempt,
            actions = request.actions.len()
        );
        let items: Vec<TransactionItem> = request
            .actions
            .iter()
            .map(|action| TransactionItem {
                table: action.table.clone(),
                token: action.key.token,
                row_key: action.key.row_key.clone(),
            })
            .collect();
        let actions: Vec<TransactionAction> =
            request.actions.into_iter().map(partition_action).collect();
        let outcome = self
            .run_transaction(&txn, &items, &actions)
            .instrument(span)
            .await;
        let label = match &outcome {
            Ok(TransactWriteOutcome::Committed { .. }) => "committed",
            Ok(_) => "cancelled",
            Err(_) => "failed",
        };
        counter!("atoll_transactions_total", "outcome" => label).increment(1);
        histogram!("atoll_transaction_seconds").record(started.elapsed().as_secs_f64());
        outcome
    }

    /// Prepares, decides and commits (or releases) `txn`.
    async fn run_transaction(
        &self,
        txn: &TransactionId,
        items: &[TransactionItem],
        actions: &[TransactionAction],
    ) -> Result<TransactWriteOutcome, ClusterError> {
        let all: Vec<usize> = (0..items.len()).collect();
        let prepare = |positions: &[usize]| PartitionCommand::PrepareTransaction {
            txn: txn.clone(),
            actions: positions
                .iter()
                .filter_map(|p| actions.get(*p).cloned())
                .collect(),
        };
        let deadline = Instant::now() + SHARE_RETRY;
        let shares = self
            .router
            .send_transaction_shares(items, all.clone(), prepare, deadline)
            .await;
        let mut reasons = vec![CancelReason::None; items.len()];
        let mut ready = true;
        let mut failure = None;
        for (positions, outcome) in shares {
            match outcome {
                Ok(PartitionOutput::Prepared { votes }) if votes.len() == positions.len() => {
                    for (position, vote) in positions.iter().zip(votes) {
                        if vote != Vote::Ready {
                            ready = false;
                        }
                        if let Some(slot) = reasons.get_mut(*position) {
                            *slot = reason_of(vote);
                        }
                    }
                }
                Ok(other) => {
                    ready = false;
                    failure = Some(ClusterError::UnexpectedOutcome(format!("{other:?}")));
                }
                Err(e) => {
                    ready = false;
                    failure = Some(e);
                }
            }
        }
        // Tests stop a coordinator here, its items held and undecided.
        crate::cluster::hold_for_tests("transaction-prepared-hold-ms").await;
        let decided = match ready {
            true => self.decide(txn, LedgerState::Committed).await?,
            false => {
                // Best effort: a PENDING entry left behind is cancelled by
                // recovery, or by a retry of the request.
                if let Err(e) = self.decide(txn, LedgerState::Cancelled).await {
                    tracing::debug!(error = %e, "recording a cancelled transaction failed");
                }
                LedgerState::Cancelled
            }
        };
        if decided == LedgerState::Committed {
            // ... or here, decided but its items still held.
            crate::cluster::hold_for_tests("transaction-commit-hold-ms").await;
            let writes = self.finish(txn, items, true).await;
            return Ok(TransactWriteOutcome::Committed { writes });
        }
        self.finish(txn, items, false).await;
        if let Some(failure) = failure
            && reasons.iter().all(|reason| *reason == CancelReason::None)
        {
            return Err(failure);
        }
        if ready {
            // Recovery cancelled it while it prepared (it took too long).
            reasons = vec![CancelReason::TransactionConflict; items.len()];
        }
        Ok(TransactWriteOutcome::Cancelled { reasons })
    }

    /// Records `state` for `txn` in the ledger; returns the state it has
    /// (recovery may have cancelled it first). A write whose outcome is
    /// unknown is settled by reading the entry.
    async fn decide(
        &self,
        txn: &TransactionId,
        state: LedgerState,
    ) -> Result<LedgerState, ClusterError> {
        let error = match self
            .ledger
            .decide(&txn.ledger_key, txn.attempt, state)
            .await
        {
            Ok(state) => return Ok(state),
            Err(e) => e,
        };
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.ledger.entry(&txn.ledger_key).await {
                Ok(Some(entry)) if entry.attempt == txn.attempt => match entry.state {
                    LedgerState::Pending => {
                        return self
                            .ledger
                            .decide(&txn.ledger_key, txn.attempt, state)
                            .await;
                    }
                    decided => return Ok(decided),
                },
                Ok(_) => return Ok(LedgerState::Cancelled),
                Err(_) => continue,
            }
        }
        Err(error)
    }

    /// Tells every partition of `items` to commit (or release) `txn`'s
    /// share; returns what each write did, in the items' order. Shares
    /// that cannot be reached now are left to recovery.
    async fn finish(
        &self,
        txn: &TransactionId,
        items: &[TransactionItem],
        commit: bool,
    ) -> Vec<Option<CommittedWrite>> {
        let mut writes = vec![None; items.len()];
        let make = |positions: &[usize]| {
            let row_keys = positions
                .iter()
                .filter_map(|p| items.get(*p).map(|item| item.row_key.clone()))
                .collect();
            match commit {
                true => PartitionCommand::CommitTransaction {
                    txn: txn.clone(),
                    row_keys,
                },
                false => PartitionCommand::ReleaseTransaction {
                    txn: txn.clone(),
                    row_keys,
                },
            }
        };
        let deadline = Instant::now() + COMMIT_RETRY;
        let mut pending: Vec<usize> = (0..items.len()).collect();
        while !pending.is_empty() {
            let shares = self
                .router
                .send_transaction_shares(items, std::mem::take(&mut pending), &make, deadline)
                .await;
            for (positions, outcome) in shares {
                match outcome {
                    Ok(PartitionOutput::TransactionCommitted { writes: done })
                        if done.len() == positions.len() =>
                    {
                        for (position, write) in positions.into_iter().zip(done) {
                            if let Some(slot) = writes.get_mut(position) {
                                *slot = write;
                            }
                        }
                    }
                    Ok(_) => {}
                    // Unknown outcome: commit and release are idempotent.
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!(error = %e, "finishing a transaction's share failed; retrying");
                        pending.extend(positions);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, ledger_key = %txn.ledger_key, "a transaction's share is left to recovery");
                        counter!("atoll_transaction_shares_left_total").increment(1);
                    }
                }
            }
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        writes
    }

    /// Reads `gets` as one transaction (TransactGetItems).
    pub async fn transact_get(
        &self,
        gets: Vec<(Arc<TableDefinition>, ItemKey)>,
    ) -> Result<TransactGetOutcome, ClusterError> {
        let items: Vec<TransactionItem> = gets
            .into_iter()
            .map(|(table, key)| TransactionItem {
                table,
                token: key.token,
                row_key: key.row_key,
            })
            .collect();
        let mut troubled = vec![false; items.len()];
        for attempt in 0..READ_ATTEMPTS {
            if attempt > 0 {
                let pause_ms = 2u64 << attempt.min(5);
                tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            }
            let first = self.router.read_for_transaction(&items, false).await?;
            // An item a write transaction holds is not read (DynamoDB
            // cancels such a read with TransactionConflict).
            if first.iter().any(|read| read.held) {
                mark(&mut troubled, first.iter().map(|read| read.held));
                continue;
            }
            // One item needs no second look: its read is a moment of its own.
            if items.len() == 1 {
                return Ok(TransactGetOutcome::Read(reads(first)));
            }
            let second = self.router.read_for_transaction(&items, true).await?;
            let changed: Vec<bool> = first
                .iter()
                .zip(&second)
                .map(|(a, b)| b.held || a.version != b.version || a.item != b.item)
                .collect();
            if changed.iter().any(|c| *c) {
                mark(&mut troubled, changed.into_iter());
                continue;
            }
            return Ok(TransactGetOutcome::Read(reads(first)));
        }
        counter!("atoll_transactional_read_conflicts_total").increment(1);
        Ok(TransactGetOutcome::Conflict(troubled))
    }
}

fn mark(troubled: &mut [bool], now: impl Iterator<Item = bool>) {
    for (slot, flag) in troubled.iter_mut().zip(now) {
        *slot |= flag;
    }
}

fn reads(found: Vec<atoll_partition::TransactionalRead>) -> Vec<TransactRead> {
    found
        .into_iter()
        .map(|read| TransactRead {
            item: read.item,
            size_bytes: read.size_bytes,
        })
        .collect()
}

/// The reason a partition's vote gives.
fn reason_of(vote: Vote) -> CancelReason {
    match vote {
        Vote::Ready => CancelReason::None,
        Vote::ConditionFailed { old } => CancelReason::ConditionalCheckFailed { item: old },
        Vote::Conflict => CancelReason::TransactionConflict,
        Vote::Refused(rejection) => CancelReason::Invalid(rejection),
    }
}

/// An action as its partition takes it.
fn partition_action(action: TransactAction) -> TransactionAction {
    let op = match action.op {
        TransactOp::Put { item, size_bytes } => TransactionOp::Put {
            record: encode_item(&item),
            size_bytes,
        },
        TransactOp::Update { key, update } => TransactionOp::Update { key, update },
        TransactOp::Delete => TransactionOp::Delete,
        TransactOp::Check => TransactionOp::Check,
    };
    TransactionAction {
        row_key: action.key.row_key,
        op,
        condition: action.condition,
        names: action.names,
        values: action.values,
        return_old_on_condition_failure: action.return_old_on_condition_failure,
    }
}
