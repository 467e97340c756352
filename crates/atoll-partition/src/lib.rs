//! A partition of a table: the state machine that applies item writes from
//! the partition's Raft log, and the reads served from its state.
//!
//! Every replica applies the same commands in the same order; everything that
//! decides an outcome (old item, sizes, counters) is computed inside `apply`
//! from replicated state only, so replicas never diverge.

mod command;
mod error;
mod global_index;
mod local_index;
mod read;
mod snapshot;
mod state_machine;
mod stored;
mod stored_keys;
mod stream;
mod transaction;

pub use command::{
    ItemWrite, PartitionCommand, PartitionOutput, ReturnValues, WriteAction, WriteOp,
    WriteRejection,
};
pub use error::PartitionError;
pub use global_index::{
    GlobalIndexSet, GlobalIndexSpec, GlobalIndexes, IndexEntryChange, ItemVersion, OutboxEntry,
    decode_outbox_entry,
};
pub use local_index::{
    DEFAULT_ITEM_COLLECTION_LIMIT_BYTES, LocalIndexes, MAX_LOCAL_INDEXES, index_number,
};
pub use read::{ItemRange, StoredItem};
pub use state_machine::{
    OutboxListener, PartitionStateMachine, PartitionStats, TokenRange, is_expired, row_key_token,
};
pub use stored::{read_item, read_stored_item};
pub use stream::{
    EventName, SequenceNumber, Shard, ShardRef, StreamRecord, StreamSpec, StreamState,
    StreamViewType, shard_id,
};
pub use transaction::{
    CommittedWrite, PreparedRecord, TransactionAction, TransactionId, TransactionOp,
    TransactionalRead, Vote,
};
