//! Binary encoding of Raft records (entries, votes, log ids, membership).

use std::io;

use crate::GroupId;

/// Encodes a Raft record compactly.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Decodes a Raft record read back from disk.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Key of a log entry: group then index, both big-endian so that a group's
/// entries are one contiguous, ordered range.
pub(crate) fn log_key(group: GroupId, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Index part of a log key, if the key is well formed.
pub(crate) fn index_of_log_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Key of a per-group metadata record (vote, committed, applied...).
pub(crate) fn meta_key(group: GroupId, tag: MetaTag) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8] = tag as u8;
    key
}

/// Which per-group record a metadata key holds.
#[derive(Clone, Copy, Debug)]
#[repr(u8)]
pub(crate) enum MetaTag {
    Vote = 1,
    Committed = 2,
    LastPurged = 3,
    Applied = 4,
    Membership = 5,
    Snapshot = 6,
    /// A received snapshot's meta while it is being imported.
    Installing = 7,
}

/// Converts any error into the `io::Error` openraft's storage traits expect.
pub(crate) fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}
