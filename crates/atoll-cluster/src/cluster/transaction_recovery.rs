//! Recovery of transactions whose coordinator went quiet: each partition's
//! leader looks for items held longer than the ledger's staleness bound,
//! asks the ledger what became of their transaction (cancelling it there
//! if it is still PENDING, which a live coordinator's decision would have
//! beaten), and commits or releases them through the partition's log. So
//! no item stays held once its coordinator is gone, and every held item
//! ends as the ledger says.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::Duration;

use atoll_partition::{PartitionCommand, PartitionOutput, TransactionId};
use metrics::counter;

use super::ledger::LedgerState;
use super::{Cluster, PartitionHandle, now_ms};
use crate::error::ClusterError;

/// Held items one pass looks at per partition at most.
const HELD_PER_PASS: usize = 200;

/// Looks for abandoned transactions every `interval` until the cluster is dropped.
pub(super) async fn recover_transactions(cluster: Weak<Cluster>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(cluster) = cluster.upgrade().filter(|c| !c.node.is_stopped()) else {
            return;
        };
        cluster.recover_once().await;
    }
}

impl Cluster {
    /// One pass over the partitions this node leads.
    async fn recover_once(&self) {
        if !self.ledger.exists() {
            return;
        }
        let stale_ms = self.ledger.stale_after().as_millis() as u64;
        let before_ms = now_ms().saturating_sub(stale_ms);
        for handle in self.host.handles() {
            if !handle.group.is_leader() {
                continue;
            }
            let held = match handle.sm.held_since_before(before_ms, HELD_PER_PASS) {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(group = handle.group.id(), error = %e, "could not list held items");
                    continue;
                }
            };
            let mut by_transaction: BTreeMap<(String, u64), Vec<Vec<u8>>> = BTreeMap::new();
            for record in held {
                by_transaction
                    .entry((record.txn.ledger_key, record.txn.attempt))
                    .or_default()
                    .push(record.action.row_key);
            }
            for ((ledger_key, attempt), row_keys) in by_transaction {
                let txn = TransactionId {
                    ledger_key,
                    attempt,
                };
                if let Err(e) = self.recover(&handle, txn, row_keys).await {
                    tracing::debug!(group = handle.group.id(), error = %e, "recovering a transaction failed; the next pass tries again");
                }
            }
        }
    }

    /// Ends `txn`'s hold on `row_keys` of `handle`'s partition as the ledger decides.
    async fn recover(
        &self,
        handle: &PartitionHandle,
        txn: TransactionId,
        row_keys: Vec<Vec<u8>>,
    ) -> Result<(), ClusterError> {
        let state = match self.ledger.entry(&txn.ledger_key).await? {
            Some(entry) if entry.attempt == txn.attempt => match entry.state {
                LedgerState::Pending => {
                    self.ledger
                        .decide(&txn.ledger_key, txn.attempt, LedgerState::Cancelled)
                        .await?
                }
                decided => decided,
            },
            // Gone, or replaced by a later attempt: this one never committed.
            _ => LedgerState::Cancelled,
        };
        let (command, decision) = match state {
            LedgerState::Committed => (
                PartitionCommand::CommitTransaction {
                    txn: txn.clone(),
                    row_keys,
                },
                "committed",
            ),
            _ => (
                PartitionCommand::ReleaseTransaction {
                    txn: txn.clone(),
                    row_keys,
                },
                "released",
            ),
        };
        match super::routing::propose_to(handle, &command).await? {
            PartitionOutput::TransactionCommitted { .. }
            | PartitionOutput::TransactionReleased { .. } => {
                tracing::info!(ledger_key = %txn.ledger_key, attempt = txn.attempt, decision, "finished an abandoned transaction");
                counter!("atoll_transactions_recovered_total", "decision" => decision).increment(1);
                Ok(())
            }
            other => Err(ClusterError::UnexpectedOutcome(format!("{other:?}"))),
        }
    }
}
