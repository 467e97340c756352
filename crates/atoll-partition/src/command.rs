//! Commands a partition's log carries, and what applying them returns.

use atoll_model::Item;
use serde::{Deserialize, Serialize};

use crate::error::PartitionError;

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

/// A command of a partition's log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PartitionCommand {
    /// One write whose previous item the proposer may want back.
    Single {
        /// The write.
        op: WriteOp,
        /// Whether to return the item the write replaced or removed.
        return_old: bool,
    },
    /// Several writes applied together, none returning anything (BatchWriteItem).
    Batch {
        /// The writes, on distinct row keys.
        ops: Vec<WriteOp>,
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

/// What applying a command produced.
#[derive(Clone, Debug, PartialEq)]
pub enum PartitionOutput {
    /// A single write applied; `old` is the replaced item when it was asked for.
    Written {
        /// The item before the write, when it was asked for.
        old: Option<Item>,
        /// DynamoDB size of the item before the write (0 if there was none),
        /// which capacity accounting needs even when the item is not returned.
        old_size_bytes: u32,
    },
    /// A batch applied.
    BatchWritten,
}
