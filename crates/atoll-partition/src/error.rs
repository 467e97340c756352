use thiserror::Error;

/// Errors of the partition layer.
#[derive(Debug, Error)]
pub enum PartitionError {
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] atoll_storage::StorageError),
    /// A stored item or command could not be decoded (corruption or a bug).
    #[error("corrupt partition data: {0}")]
    Corrupt(String),
}
