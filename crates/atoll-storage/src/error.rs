use thiserror::Error;

/// Errors of the storage layer.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The engine reported a failure (I/O, corruption, poisoned after a failed fsync).
    #[error("storage engine: {0}")]
    Engine(#[from] fjall::Error),
    /// A file-system operation failed.
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A keyspace name the engine cannot hold.
    #[error("invalid keyspace name {0:?}")]
    InvalidKeyspaceName(String),
    /// A keyspace of one engine was used with another.
    #[error("keyspace belongs to a different storage engine")]
    EngineMismatch,
}
