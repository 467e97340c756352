//! A key-value state machine the replication tests drive groups with.

use std::collections::BTreeMap;
use std::ops::Bound;

use atoll_replication::{
    ApplyContext, GroupStateMachine, ImportWriter, SnapshotReader, SnapshotWriter,
};
use atoll_storage::{Keyspace, ReadView, StorageError};

/// A command "key=value" sets key and returns the old value (`Option<Vec<u8>>`).
pub struct Kv {
    pub keyspace: Keyspace,
}

impl GroupStateMachine for Kv {
    type Output = Option<Vec<u8>>;

    fn apply(
        &self,
        ctx: &mut ApplyContext,
        _log_index: u64,
        command: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let text = String::from_utf8_lossy(command);
        let (key, value) = text.split_once('=').unwrap_or((&text, ""));
        let old = ctx.get(&self.keyspace, key.as_bytes())?.map(|v| v.to_vec());
        ctx.put(
            &self.keyspace,
            key.as_bytes().to_vec(),
            value.as_bytes().to_vec(),
        );
        Ok(old)
    }

    fn export(&self, view: &ReadView, out: &mut SnapshotWriter<'_>) -> Result<(), StorageError> {
        for pair in view.range(&self.keyspace, Bound::Unbounded, Bound::Unbounded) {
            let (key, value) = pair?;
            out.record(&key, &value)?;
        }
        Ok(())
    }

    fn import(
        &self,
        input: &mut SnapshotReader,
        out: &mut ImportWriter,
    ) -> Result<(), StorageError> {
        let mut pairs = BTreeMap::new();
        while let Some((key, value)) = input.next_record()? {
            pairs.insert(key, value);
        }
        for pair in self
            .keyspace
            .range(Bound::Unbounded, Bound::Unbounded, false)
        {
            let (key, _) = pair?;
            if !pairs.contains_key(key.as_ref()) {
                out.delete(&self.keyspace, key.to_vec())?;
            }
        }
        for (key, value) in pairs {
            out.put(&self.keyspace, key, value)?;
        }
        Ok(())
    }
}
