//! The keys already stored in a range, read a page at a time.

use std::collections::VecDeque;
use std::ops::Bound;

use atoll_storage::{Keyspace, StorageError};

/// Keys fetched per page.
const PAGE_KEYS: usize = 1024;

/// Walks the stored keys of a range while the caller writes into it. No
/// iterator stays open between pages: an open fjall iterator holds its
/// snapshot, and with it every memtable written after it, so one held for
/// a whole snapshot import kept the imported data in memory until the end.
pub(crate) struct StoredKeys<'a> {
    keyspace: &'a Keyspace,
    /// Where the next page starts.
    next_start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    page: VecDeque<Vec<u8>>,
    exhausted: bool,
}

impl<'a> StoredKeys<'a> {
    /// The keys of `keyspace` from `start` (included) to `end`.
    pub(crate) fn new(keyspace: &'a Keyspace, start: Vec<u8>, end: Bound<Vec<u8>>) -> Self {
        StoredKeys {
            keyspace,
            next_start: Bound::Included(start),
            end,
            page: VecDeque::new(),
            exhausted: false,
        }
    }

    /// The next stored key after `written_through`, the last key the
    /// caller wrote: keys up to it are the caller's own writes, not the
    /// stored keys this walk is about.
    pub(crate) fn next(
        &mut self,
        written_through: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if self.page.is_empty() && !self.exhausted {
            if let Some(written) = written_through
                && !starts_after(&self.next_start, written)
            {
                self.next_start = Bound::Excluded(written.to_vec());
            }
            let mut keys = self
                .keyspace
                .range(self.next_start.clone(), self.end.clone(), false);
            while self.page.len() < PAGE_KEYS {
                match keys.next().transpose()? {
                    Some((key, _)) => self.page.push_back(key.to_vec()),
                    None => {
                        self.exhausted = true;
                        break;
                    }
                }
            }
            if let Some(last) = self.page.back() {
                self.next_start = Bound::Excluded(last.clone());
            }
        }
        Ok(self.page.pop_front())
    }
}

/// Whether every key the bound admits is greater than `key`.
fn starts_after(start: &Bound<Vec<u8>>, key: &[u8]) -> bool {
    match start {
        Bound::Included(from) => from.as_slice() > key,
        Bound::Excluded(after) => after.as_slice() >= key,
        Bound::Unbounded => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_storage::{Durability, Storage, WriteBatch};

    fn put_all(storage: &Storage, keyspace: &Keyspace, keys: impl IntoIterator<Item = u32>) {
        let mut batch = WriteBatch::new();
        for key in keys {
            batch.put(keyspace, key.to_be_bytes().to_vec(), vec![0]);
        }
        storage.commit(batch, Durability::Buffered).ok();
    }

    #[test]
    fn pages_skip_what_the_caller_wrote_meanwhile() {
        let storage = Storage::in_memory();
        let Ok(keyspace) = storage.keyspace("k") else {
            panic!("keyspace")
        };
        // Stored: the even numbers below 3000 (three pages).
        put_all(&storage, &keyspace, (0..1500).map(|n| n * 2));
        let mut walk = StoredKeys::new(&keyspace, 0u32.to_be_bytes().to_vec(), Bound::Unbounded);
        let mut seen = Vec::new();
        let mut written_through: Option<Vec<u8>> = None;
        while let Ok(Some(key)) = walk.next(written_through.as_deref()) {
            let number = u32::from_be_bytes(key.as_slice().try_into().unwrap_or_default());
            seen.push(number);
            // The caller writes the odd number after each stored key, as an
            // import writes snapshot keys between the stored ones.
            put_all(&storage, &keyspace, [number + 1]);
            written_through = Some((number + 1).to_be_bytes().to_vec());
        }
        let expected: Vec<u32> = (0..1500).map(|n| n * 2).collect();
        assert_eq!(seen, expected);
    }
}
