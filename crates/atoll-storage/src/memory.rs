//! The in-memory engine: one `BTreeMap` per keyspace, for unit tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use crate::{BatchOp, Bytes, KeyValue, KeyspaceInner, StorageError};

#[derive(Default)]
pub(crate) struct MemoryEngine {
    keyspaces: RwLock<HashMap<String, Arc<MemoryKeyspace>>>,
    // Serialises commits so that a batch is applied atomically with respect
    // to other batches, as the journal does in fjall.
    commit_lock: std::sync::Mutex<()>,
}

#[derive(Default)]
pub(crate) struct MemoryKeyspace {
    map: RwLock<BTreeMap<Vec<u8>, Bytes>>,
}

impl MemoryEngine {
    pub(crate) fn keyspace(&self, name: &str) -> Arc<MemoryKeyspace> {
        let mut keyspaces = self.keyspaces.write().unwrap_or_else(|e| e.into_inner());
        keyspaces.entry(name.to_string()).or_default().clone()
    }

    pub(crate) fn exists(&self, name: &str) -> bool {
        let keyspaces = self.keyspaces.read().unwrap_or_else(|e| e.into_inner());
        keyspaces.contains_key(name)
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let keyspaces = self.keyspaces.read().unwrap_or_else(|e| e.into_inner());
        keyspaces.keys().cloned().collect()
    }

    pub(crate) fn drop_keyspace(&self, name: &str) {
        let mut keyspaces = self.keyspaces.write().unwrap_or_else(|e| e.into_inner());
        if let Some(ks) = keyspaces.remove(name) {
            ks.map.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    pub(crate) fn commit(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
        let _guard = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        for op in ops {
            match op {
                BatchOp::Put(ks, key, value) => {
                    memory_keyspace(&ks.inner)?
                        .write()
                        .insert(key, Bytes::from(value));
                }
                BatchOp::Delete(ks, key) => {
                    memory_keyspace(&ks.inner)?.write().remove(&key);
                }
            }
        }
        Ok(())
    }
}

fn memory_keyspace(inner: &KeyspaceInner) -> Result<&MemoryKeyspace, StorageError> {
    match inner {
        KeyspaceInner::Memory(ks) => Ok(ks),
        KeyspaceInner::Fjall(_) => Err(StorageError::EngineMismatch),
    }
}

impl MemoryKeyspace {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Bytes>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Bytes>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.read().get(key).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// Copies the range out, which gives the iterator snapshot semantics.
    pub(crate) fn range(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Vec<KeyValue> {
        if let (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) =
            (&start, &end)
            && s > e
        {
            return Vec::new();
        }
        let map = self.read();
        let iter = map
            .range((start, end))
            .map(|(k, v)| (Bytes::from(k.as_slice()), v.clone()));
        if reverse {
            iter.rev().collect()
        } else {
            iter.collect()
        }
    }
}
