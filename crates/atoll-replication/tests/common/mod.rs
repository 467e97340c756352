//! A key-value state machine the replication tests drive groups with.

use atoll_replication::{ApplyContext, ApplyOutput, GroupStateMachine};
use atoll_storage::{Keyspace, StorageError};

/// A command "key=value" sets key and returns the old value (`Option<Vec<u8>>`).
pub struct Kv {
    pub keyspace: Keyspace,
}

impl GroupStateMachine for Kv {
    fn apply(
        &self,
        ctx: &mut ApplyContext,
        _log_index: u64,
        command: &[u8],
    ) -> Result<ApplyOutput, StorageError> {
        let text = String::from_utf8_lossy(command);
        let (key, value) = text.split_once('=').unwrap_or((&text, ""));
        let old = ctx.get(&self.keyspace, key.as_bytes())?.map(|v| v.to_vec());
        ctx.put(
            &self.keyspace,
            key.as_bytes().to_vec(),
            value.as_bytes().to_vec(),
        );
        Ok(ApplyOutput::new(old))
    }
}
