//! Commands a partition's log carries, and what applying them returns.

use std::collections::HashMap;

use atoll_expr::ast::{Condition, Update};
use atoll_model::{AttributeValue, Item};
use serde::{Deserialize, Serialize};

use crate::error::PartitionError;
use crate::global_index::{GlobalIndexSet, IndexEntryChange};
use crate::transaction::{CommittedWrite, TransactionAction, TransactionId, Vote};

/// One item write. Row keys are computed by the proposer, so the state machine
/// needs no key schema; items travel in the on-disk record encoding.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WriteOp {
    /// Store `record` (an encoded item) under `row_key`, replacing any item there.
    Put {
        /// Row key of the item.
        row_key: Vec<u8>,
        /// The encoded item.
        record: Vec<u8>,
        /// DynamoDB size of the item, kept for table statistics.
        size_bytes: u32,
    },
    /// Remove the item under `row_key`, if any.
    Delete {
        /// Row key of the item.
        row_key: Vec<u8>,
    },
}

impl WriteOp {
    /// The row key written.
    pub fn row_key(&self) -> &[u8] {
        match self {
            WriteOp::Put { row_key, .. } | WriteOp::Delete { row_key } => row_key,
        }
    }
}

/// What a single write does to its item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WriteAction {
    /// Replace the item with `record` (an encoded item).
    Put {
        /// The encoded item.
        record: Vec<u8>,
        /// DynamoDB size of the item.
        size_bytes: u32,
    },
    /// Remove the item.
    Delete,
    /// Apply an update to the item, creating it from `key` if it does not exist.
    Update {
        /// The key attributes of the item.
        key: Item,
        /// The update (UpdateExpression or translated AttributeUpdates).
        update: Update,
    },
}

/// Which attributes a single write returns (DynamoDB's `ReturnValues`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReturnValues {
    /// Nothing.
    None,
    /// The whole item before the write.
    AllOld,
    /// The updated attributes, as they were before.
    UpdatedOld,
    /// The whole item after the write.
    AllNew,
    /// The updated attributes, as they are after.
    UpdatedNew,
}

/// A single-item write: PutItem, DeleteItem or UpdateItem, with an optional
/// condition. Evaluated in `apply`, so every replica decides the same.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ItemWrite {
    /// Row key of the item.
    pub row_key: Vec<u8>,
    /// What to do.
    pub action: WriteAction,
    /// Condition on the item before the write; the write happens only if it holds.
    pub condition: Option<Condition>,
    /// `ExpressionAttributeNames` of the request.
    pub names: HashMap<String, String>,
    /// `ExpressionAttributeValues` of the request.
    pub values: HashMap<String, AttributeValue>,
    /// Which attributes to return.
    pub return_values: ReturnValues,
    /// Whether a failed condition returns the item (`ReturnValuesOnConditionCheckFailure=ALL_OLD`).
    pub return_old_on_condition_failure: bool,
}

/// A command of a partition's log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PartitionCommand {
    /// One write, conditional or not, returning what was asked.
    Write(Box<ItemWrite>),
    /// Several unconditional writes applied together, none returning anything (BatchWriteItem).
    Batch {
        /// The writes, on distinct row keys.
        ops: Vec<WriteOp>,
    },
    /// Hand the tokens from `at_token` to the end of this partition's range
    /// to a new partition: from this entry on, this partition refuses writes
    /// there, and its statistics no longer count the items there.
    Split {
        /// First token of the part that leaves.
        at_token: u64,
    },
    // Appended only: the log holds commands of earlier versions.
    /// Apply changes of items' entries shipped from a table's outboxes (to
    /// a partition of a global index's table): each only if newer than
    /// what the partition holds for its item there.
    ApplyIndexChanges {
        /// The changes, their records' tokens all in this partition.
        changes: Vec<IndexEntryChange>,
    },
    /// Remove this partition's outbox records up to and including key
    /// `through` (their changes reached the index partitions).
    TrimOutbox {
        /// The last outbox key shipped.
        through: Vec<u8>,
    },
    /// Feed these global indexes from this entry on (ignored unless newer
    /// than the partition's).
    SetGlobalIndexes {
        /// The indexes.
        set: GlobalIndexSet,
    },
    /// Take `set` as `SetGlobalIndexes` does, then put into the outbox the
    /// entries of up to `max_items` items, from row key `from` on, for the
    /// index whose entries live in `index_table` (a backfill's step).
    BackfillIndex {
        /// The indexes, the one backfilled among them.
        set: GlobalIndexSet,
        /// The hidden table of the index backfilled.
        index_table: String,
        /// The row key to start at.
        from: Vec<u8>,
        /// Most items to read.
        max_items: u32,
    },
    /// Apply `command` as of `now_ms`, the proposer's clock: stream
    /// records take their time from it, so every replica writes the same.
    Stamped {
        /// Epoch milliseconds.
        now_ms: u64,
        /// The command.
        command: Box<PartitionCommand>,
    },
    /// Write stream records to the table's stream `spec` from this entry
    /// on (`None`: stop), if `epoch` is newer than the partition's.
    SetStream {
        /// Which change of the table's stream this is.
        epoch: u64,
        /// The stream.
        spec: Option<crate::stream::StreamSpec>,
    },
    /// Delete those of the items under `row_keys` whose Time to Live
    /// attribute `attribute` has passed at `now_ms` (checked again here:
    /// a write since the sweep may have moved it), as the service does:
    /// their stream records name it.
    ExpireItems {
        /// The table's Time to Live attribute.
        attribute: String,
        /// Items the sweep found expired.
        row_keys: Vec<Vec<u8>>,
        /// The sweeping leader's clock (epoch milliseconds).
        now_ms: u64,
    },
    /// Remove the stream records made before `before_ms` (their retention
    /// ended), and the closed shards they leave empty.
    TrimStream {
        /// Epoch milliseconds.
        before_ms: u64,
    },
    /// Check a transaction's actions on this partition's items; if every
    /// one can apply, hold the items for it (prepared records) until its
    /// commit or release. Idempotent: an item already held by `txn` votes
    /// ready again.
    PrepareTransaction {
        /// The transaction.
        txn: TransactionId,
        /// Its actions here, on distinct items.
        actions: Vec<TransactionAction>,
    },
    /// Apply what `txn` prepared on the items of `row_keys` and free them;
    /// an item no longer held by it (committed already) is skipped.
    CommitTransaction {
        /// The transaction.
        txn: TransactionId,
        /// Row keys of its items here.
        row_keys: Vec<Vec<u8>>,
    },
    /// Free the items of `row_keys` that `txn` holds, writing nothing.
    ReleaseTransaction {
        /// The transaction.
        txn: TransactionId,
        /// Row keys of its items here.
        row_keys: Vec<Vec<u8>>,
    },
}

impl PartitionCommand {
    /// Encodes the command for the log.
    pub fn encode(&self) -> Result<bytes::Bytes, PartitionError> {
        postcard::to_stdvec(self)
            .map(bytes::Bytes::from)
            .map_err(|e| PartitionError::Corrupt(e.to_string()))
    }

    /// Decodes a command read from the log.
    pub fn decode(bytes: &[u8]) -> Result<PartitionCommand, PartitionError> {
        postcard::from_bytes(bytes).map_err(|e| PartitionError::Corrupt(e.to_string()))
    }
}

/// Why a partition refused a command it could decode. Carries facts, not
/// wording: the API says it in DynamoDB's words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteRejection {
    /// The condition or update expression failed on the stored item; the
    /// text is the expression language's (`atoll_expr::ExprError`).
    Expression(String),
    /// The updated item would exceed DynamoDB's 400 KB item size.
    ItemTooLarge,
    /// A split point outside the partition's token range.
    SplitPointOutside {
        /// The split point asked for.
        at_token: u64,
        /// First token of the partition.
        first: u64,
        /// Last token of the partition.
        last: u64,
    }, // Appended only: rejections travel in forwarded replies.
    /// The write gives an index key attribute a type the index's key does
    /// not have.
    IndexKeyType {
        /// The index.
        index: String,
        /// The key attribute.
        attribute: String,
        /// The key's type (S, N or B).
        expected: String,
        /// The type written.
        actual: String,
    },
    /// An update sets an index key attribute to an empty string or binary.
    IndexKeyEmpty {
        /// Binary rather than string.
        binary: bool,
    },
    /// The write would grow an item collection past its size limit.
    ItemCollectionTooLarge,
}

impl std::fmt::Display for WriteRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteRejection::Expression(message) => f.write_str(message),
            WriteRejection::ItemTooLarge => f.write_str("the updated item exceeds 400 KB"),
            WriteRejection::SplitPointOutside {
                at_token,
                first,
                last,
            } => write!(f, "split point {at_token} is not inside {first}..={last}"),
            WriteRejection::IndexKeyType {
                index,
                attribute,
                expected,
                actual,
            } => write!(
                f,
                "index {index}'s key {attribute} is of type {expected}, not {actual}"
            ),
            WriteRejection::IndexKeyEmpty { binary: false } => {
                f.write_str("an index key may not be an empty string")
            }
            WriteRejection::IndexKeyEmpty { binary: true } => {
                f.write_str("an index key may not be an empty binary value")
            }
            WriteRejection::ItemCollectionTooLarge => {
                f.write_str("the item collection exceeds its size limit")
            }
        }
    }
}

/// What applying a command produced (sent back to a forwarding node as is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PartitionOutput {
    /// A single write applied.
    Written {
        /// The attributes ReturnValues asked for, if any.
        returned: Option<Item>,
        /// DynamoDB size of the item before the write (0 if there was none).
        old_size_bytes: u32,
        /// DynamoDB size of the item after the write (0 if deleted).
        new_size_bytes: u32,
    },
    /// The condition did not hold; nothing was written.
    ConditionFailed {
        /// The item, when asked for and present.
        old: Option<Item>,
        /// DynamoDB size of the item (0 if there is none), for capacity.
        old_size_bytes: u32,
    },
    /// The write was invalid for the item as it is; nothing was written.
    /// Sent by nodes of the previous version (with DynamoDB's message);
    /// this one sends `Refused`.
    Rejected {
        /// DynamoDB's message.
        message: String,
    },
    /// The write's key is outside this partition's token range (the
    /// partition split); nothing was written, and the router retries on the
    /// partition that owns the key now.
    WrongPartition,
    /// The partition gave up the tokens from the split point on.
    Split {
        /// Items that now belong to the new partition.
        moved_items: u64,
        /// Their total DynamoDB size.
        moved_bytes: u64,
    },
    /// A batch applied.
    BatchWritten {
        /// DynamoDB size of each item before its write (0 where there was none),
        /// in the order of the batch, for capacity.
        old_sizes_bytes: Vec<u32>,
    },
    // Appended only: outputs travel in forwarded replies.
    /// The command is invalid for the partition as it is (an update on a
    /// wrong type, an item grown past 400 KB, a split point outside the
    /// range); nothing was written.
    Refused(WriteRejection),
    /// `Written`, on a table with local secondary indexes.
    WrittenInCollection {
        /// The attributes ReturnValues asked for, if any.
        returned: Option<Item>,
        /// DynamoDB size of the item before the write (0 if there was none).
        old_size_bytes: u32,
        /// DynamoDB size of the item after the write (0 if deleted).
        new_size_bytes: u32,
        /// Size of the item's collection after the write (items and local
        /// index entries; 0 on a table without local indexes).
        collection_size_bytes: u64,
        /// Index entries written or removed, as (index name, entry size).
        index_writes: Vec<(String, u32)>,
    },
    /// `BatchWritten`, on a table with local secondary indexes.
    BatchWrittenInCollections {
        /// DynamoDB size of each item before its write, in batch order.
        old_sizes_bytes: Vec<u32>,
        /// Size of each write's item collection after the batch, in batch
        /// order (empty on a table without local indexes).
        collection_sizes_bytes: Vec<u64>,
        /// Index entries written or removed, as (index name, entry size), in batch order.
        index_writes: Vec<Vec<(String, u32)>>,
    },
    /// Index changes applied (`ApplyIndexChanges`).
    IndexChangesApplied {
        /// How many were newer than what the partition held.
        applied: u32,
    },
    /// Outbox records removed (`TrimOutbox`).
    OutboxTrimmed {
        /// How many.
        removed: u32,
    },
    /// The partition feeds the global indexes of this epoch (`SetGlobalIndexes`).
    GlobalIndexesSet {
        /// The partition's epoch after the command (it may be newer).
        epoch: u64,
    },
    /// A backfill step read its items (`BackfillIndex`).
    Backfilled {
        /// Where the next step starts, or `None` at the end of the
        /// partition's range.
        next: Option<Vec<u8>>,
        /// The last token of the partition's range (the backfill goes on
        /// after it once `next` is `None`).
        range_last: u64,
    },
    /// The partition writes to the stream of this epoch (`SetStream`).
    StreamSet {
        /// The partition's epoch after the command (it may be newer).
        epoch: u64,
    },
    /// Expired items deleted (`ExpireItems`).
    Expired {
        /// How many were still expired and deleted.
        deleted: u32,
    },
    /// Stream records removed (`TrimStream`).
    StreamTrimmed {
        /// How many.
        removed: u32,
    },
    /// A transaction's share prepared, or not (`PrepareTransaction`).
    Prepared {
        /// One vote per action, in the command's order; the items are held
        /// only if every vote is `Ready`.
        votes: Vec<Vote>,
    },
    /// A transaction's share committed (`CommitTransaction`).
    TransactionCommitted {
        /// Per row key of the command: what the write did (`None` for a
        /// check, or an item the transaction no longer held).
        writes: Vec<Option<CommittedWrite>>,
    },
    /// A transaction's items freed (`ReleaseTransaction`).
    TransactionReleased {
        /// How many it held.
        released: u32,
    },
    /// A write met an item a transaction holds; nothing was written.
    TransactionConflict,
}
