//! A key-value state machine the replication tests drive groups with.

use std::ops::Bound;

use atoll_replication::{ApplyContext, ApplyOutput, GroupStateMachine};
use atoll_storage::{Keyspace, ReadView, StorageError};

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

    fn export(&self, view: &ReadView) -> Result<Vec<u8>, StorageError> {
        let mut pairs = Vec::new();
        for pair in view.range(&self.keyspace, Bound::Unbounded, Bound::Unbounded) {
            let (key, value) = pair?;
            pairs.push((key.to_vec(), value.to_vec()));
        }
        Ok(postcard::to_stdvec(&pairs).expect("encode"))
    }

    fn import(&self, ctx: &mut ApplyContext, data: &[u8]) -> Result<(), StorageError> {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = postcard::from_bytes(data).expect("decode");
        for pair in self
            .keyspace
            .range(Bound::Unbounded, Bound::Unbounded, false)
        {
            let (key, _) = pair?;
            ctx.delete(&self.keyspace, key.to_vec());
        }
        for (key, value) in pairs {
            ctx.put(&self.keyspace, key, value);
        }
        Ok(())
    }
}
