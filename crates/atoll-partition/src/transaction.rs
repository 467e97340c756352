//! A partition's part in a transaction (DynamoDB's TransactWriteItems, as
//! the ATC 2023 paper describes it): a prepare checks the transaction's
//! actions on this partition's items and, when all of them can apply,
//! records each as a prepared record beside the item; until the commit
//! (or the release) that names the same transaction, no other write may
//! touch those items. The records live in the table's index keyspace,
//! keyed by row key, so a split hands them to the new partition with the
//! items and a snapshot carries them.

use std::collections::HashMap;

use atoll_expr::ast::{Condition, Update};
use atoll_model::{AttributeValue, Item};
use serde::{Deserialize, Serialize};

use crate::command::{ItemWrite, ReturnValues, WriteAction, WriteRejection};
use crate::error::PartitionError;

/// Prefix of prepared records in the index keyspace (above the local
/// indexes', entry versions', the outbox's and the stream's).
pub(crate) const PREPARED: u8 = 0xA0;

/// Which transaction, and which attempt at it, holds a prepared item.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransactionId {
    /// The transaction's key in the ledger.
    pub ledger_key: String,
    /// The attempt: a retry of the same request is a new attempt, and
    /// only the attempt the ledger names may commit.
    pub attempt: u64,
}

/// What a transaction does to one item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TransactionOp {
    /// Replace the item with `record` (an encoded item).
    Put {
        /// The encoded item.
        record: Vec<u8>,
        /// DynamoDB size of the item.
        size_bytes: u32,
    },
    /// Apply an update, creating the item from `key` if it is missing.
    Update {
        /// The key attributes of the item.
        key: Item,
        /// The update.
        update: Update,
    },
    /// Remove the item.
    Delete,
    /// Only check the condition (ConditionCheck): the item stays as it is.
    Check,
}

/// One action of a transaction on an item of this partition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TransactionAction {
    /// Row key of the item.
    pub row_key: Vec<u8>,
    /// What to do.
    pub op: TransactionOp,
    /// Condition on the item as it is.
    pub condition: Option<Condition>,
    /// `ExpressionAttributeNames` of the action.
    pub names: HashMap<String, String>,
    /// `ExpressionAttributeValues` of the action.
    pub values: HashMap<String, AttributeValue>,
    /// Whether a failed condition returns the item
    /// (`ReturnValuesOnConditionCheckFailure=ALL_OLD`).
    pub return_old_on_condition_failure: bool,
}

impl TransactionAction {
    /// The write the action makes once committed (`None` for a check);
    /// its condition was checked by the prepare.
    pub(crate) fn committed_write(&self) -> Option<ItemWrite> {
        let action = match &self.op {
            TransactionOp::Put { record, size_bytes } => WriteAction::Put {
                record: record.clone(),
                size_bytes: *size_bytes,
            },
            TransactionOp::Update { key, update } => WriteAction::Update {
                key: key.clone(),
                update: update.clone(),
            },
            TransactionOp::Delete => WriteAction::Delete,
            TransactionOp::Check => return None,
        };
        Some(ItemWrite {
            row_key: self.row_key.clone(),
            action,
            condition: None,
            names: self.names.clone(),
            values: self.values.clone(),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: false,
        })
    }
}

/// A partition's answer to one action of a prepare.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Vote {
    /// The action can apply (and is prepared, if every action of the
    /// partition's share can).
    Ready,
    /// The condition does not hold.
    ConditionFailed {
        /// The item, when asked for and present.
        old: Option<Item>,
    },
    /// Another transaction holds the item.
    Conflict,
    /// The action is invalid for the item as it is.
    Refused(WriteRejection),
}

/// What committing a transaction did to one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommittedWrite {
    /// DynamoDB size of the item before (0 if there was none).
    pub old_size_bytes: u32,
    /// DynamoDB size of the item after (0 if there is none).
    pub new_size_bytes: u32,
    /// Size of the item's collection after, on a table with local indexes.
    pub collection_size_bytes: Option<u64>,
    /// Index entries written or removed, as (index name, entry size).
    pub index_writes: Vec<(String, u32)>,
}

/// An item held by a transaction, as the partition stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreparedRecord {
    /// The transaction holding the item.
    pub txn: TransactionId,
    /// When the prepare was proposed (the proposer's clock, epoch ms).
    pub prepared_ms: u64,
    /// What the transaction does to the item.
    pub action: TransactionAction,
}

impl PreparedRecord {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, PartitionError> {
        postcard::to_stdvec(self).map_err(|e| PartitionError::Corrupt(e.to_string()))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<PreparedRecord, PartitionError> {
        postcard::from_bytes(bytes).map_err(|e| PartitionError::Corrupt(e.to_string()))
    }
}

/// The key of the prepared record of the item under `row_key`.
pub(crate) fn prepared_key(row_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(row_key.len() + 1);
    key.push(PREPARED);
    key.extend_from_slice(row_key);
    key
}

/// An item read for a transaction (TransactGetItems): as committed, with
/// what tells whether it changed between two reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransactionalRead {
    /// The item, if present.
    pub item: Option<Item>,
    /// Its DynamoDB size (0 if missing).
    pub size_bytes: u32,
    /// Whether a transaction holds it (prepared, not yet committed).
    pub held: bool,
    /// Changes whenever the item may have been written (see
    /// `PartitionStateMachine::write_clock`).
    pub version: (u64, u64),
}
