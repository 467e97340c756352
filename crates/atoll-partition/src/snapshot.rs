//! A partition's state as a snapshot carries it: a header naming its token
//! range, then its items in row-key order, then (for a table with local
//! secondary indexes) its index entries and collection sizes.
//!
//! A table without local indexes exports exactly what earlier versions
//! did: a 16-byte header (the range) and the items' row keys as they are.
//! With local indexes the header gains a mark byte, and each record's key
//! starts with its section (items, then index entries), so records stay in
//! strictly ascending order as the import checks.

use std::ops::Bound;

use atoll_replication::{ImportWriter, Record, SnapshotReader, SnapshotWriter};
use atoll_storage::{Keyspace, ReadView, StorageError};

use crate::error::PartitionError;
use crate::global_index::GlobalIndexSet;
use crate::local_index::KeyRange;
use crate::state_machine::{TokenRange, corrupt, decode_range, encode_range, row_key_token};
use crate::stored::stored_size;
use crate::stored_keys::StoredKeys;
use crate::stream::StreamState;

/// The header's mark of a sectioned snapshot.
const SECTIONED: u8 = b'L';
/// The header's mark of a sectioned snapshot of a partition with a stream:
/// the global index set's length (4 bytes), the set, then the stream state.
const SECTIONED_WITH_STREAM: u8 = b'S';
/// Section of the items' records.
const ITEMS: u8 = 0;
/// Section of the local index keyspace's records.
const LOCAL_INDEXES: u8 = 1;

/// The range and what a partition keeps in it, as a view sees them.
pub(crate) struct Export<'a> {
    pub(crate) range: TokenRange,
    pub(crate) items: &'a Keyspace,
    /// The index keyspace's ranges holding the partition's tokens.
    pub(crate) local: Option<(&'a Keyspace, Vec<KeyRange>)>,
    /// The global indexes the partition feeds, when it ever fed any.
    pub(crate) global_set: Option<GlobalIndexSet>,
    /// The partition's streams, when it ever had one.
    pub(crate) stream: Option<StreamState>,
}

/// Writes `export` as `view` sees it.
pub(crate) fn export(
    export: &Export<'_>,
    view: &ReadView,
    out: &mut SnapshotWriter<'_>,
) -> Result<(), StorageError> {
    let mut header = encode_range(export.range);
    match (&export.local, &export.stream) {
        (None, _) => {}
        (Some(_), None) => {
            header.push(SECTIONED);
            if let Some(set) = &export.global_set {
                header.extend_from_slice(&set.encode().map_err(corrupt)?);
            }
        }
        (Some(_), Some(stream)) => {
            header.push(SECTIONED_WITH_STREAM);
            let set = match &export.global_set {
                Some(set) => set.encode().map_err(corrupt)?,
                None => Vec::new(),
            };
            let set_len = u32::try_from(set.len()).map_err(|_| {
                corrupt(PartitionError::Corrupt("global index set too long".into()))
            })?;
            header.extend_from_slice(&set_len.to_be_bytes());
            header.extend_from_slice(&set);
            header.extend_from_slice(&stream.encode().map_err(corrupt)?);
        }
    }
    out.header(&header)?;
    let (start, end) = crate::state_machine::row_key_bounds(export.range.0, export.range.1);
    let end = end.map_or(Bound::Unbounded, Bound::Excluded);
    let section = export.local.as_ref().map(|_| ITEMS);
    for pair in view.range(export.items, Bound::Included(start), end) {
        let (key, value) = pair?;
        write_record(out, section, &key, &value)?;
    }
    if let Some((keyspace, ranges)) = &export.local {
        for (start, end) in ranges {
            for pair in view.range(keyspace, Bound::Included(start.clone()), end.clone()) {
                let (key, value) = pair?;
                write_record(out, Some(LOCAL_INDEXES), &key, &value)?;
            }
        }
    }
    Ok(())
}

fn write_record(
    out: &mut SnapshotWriter<'_>,
    section: Option<u8>,
    key: &[u8],
    value: &[u8],
) -> Result<(), StorageError> {
    match section {
        Some(section) => {
            let mut tagged = Vec::with_capacity(key.len() + 1);
            tagged.push(section);
            tagged.extend_from_slice(key);
            out.record(&tagged, value)
        }
        None => out.record(key, value),
    }
}

/// The records of a snapshot, section by section.
pub(crate) struct Import<'a> {
    input: &'a mut SnapshotReader,
    sectioned: bool,
    peeked: Option<Record>,
}

/// A snapshot's header: its range, whether its records are sectioned,
/// the global indexes the partition fed, and its streams.
pub(crate) struct Header {
    pub(crate) range: TokenRange,
    pub(crate) sectioned: bool,
    pub(crate) global_set: Option<GlobalIndexSet>,
    pub(crate) stream: Option<StreamState>,
}

/// The header of a snapshot.
pub(crate) fn read_header(input: &SnapshotReader) -> Result<Header, PartitionError> {
    let header = input.header();
    let range = decode_range(header.get(..16).unwrap_or(header))?;
    let plain = |sectioned, global_set| Header {
        range,
        sectioned,
        global_set,
        stream: None,
    };
    match (header.get(16), header.get(17..)) {
        (None, _) => Ok(plain(false, None)),
        (Some(&SECTIONED), None | Some([])) => Ok(plain(true, None)),
        (Some(&SECTIONED), Some(set)) => Ok(plain(true, Some(GlobalIndexSet::decode(set)?))),
        (Some(&SECTIONED_WITH_STREAM), Some(rest)) => {
            let short = || PartitionError::Corrupt("short snapshot header".into());
            let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
            let len = u32::from_be_bytes(*len) as usize;
            let set = rest.get(..len).ok_or_else(short)?;
            let stream = rest.get(len..).ok_or_else(short)?;
            Ok(Header {
                range,
                sectioned: true,
                global_set: (!set.is_empty())
                    .then(|| GlobalIndexSet::decode(set))
                    .transpose()?,
                stream: Some(StreamState::decode(stream)?),
            })
        }
        (Some(_), _) => Err(PartitionError::Corrupt("unknown snapshot header".into())),
    }
}

impl<'a> Import<'a> {
    pub(crate) fn new(input: &'a mut SnapshotReader, sectioned: bool) -> Import<'a> {
        Import {
            input,
            sectioned,
            peeked: None,
        }
    }

    /// The next record of `section`, its key without the section byte;
    /// `None` at the section's end.
    fn next_in(&mut self, section: u8) -> Result<Option<Record>, StorageError> {
        let record = match self.peeked.take() {
            Some(record) => record,
            None => match self.input.next_record()? {
                Some(record) => record,
                None => return Ok(None),
            },
        };
        if !self.sectioned {
            return Ok((section == ITEMS).then_some(record));
        }
        let (key, value) = record;
        match key.split_first() {
            Some((&found, rest)) if found == section => Ok(Some((rest.to_vec(), value))),
            Some((&found, _)) if found > section => {
                self.peeked = Some((key, value));
                Ok(None)
            }
            _ => Err(corrupt(PartitionError::Corrupt(
                "a snapshot's sections are out of order".into(),
            ))),
        }
    }

    /// Makes `keyspace`'s keys in `[start, end)` the next records of
    /// `section` that fall in it (a merge of the two sorted key sequences:
    /// each key is written once, and a key in both is overwritten, never
    /// missing meanwhile). `in_range` says whether a record's key belongs
    /// there; `each` sees every record kept.
    pub(crate) fn merge(
        &mut self,
        section_of: MergeTarget<'_>,
        out: &mut ImportWriter,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let MergeTarget {
            section,
            keyspace,
            start,
            end,
            in_range,
        } = section_of;
        let mut stored = StoredKeys::new(keyspace, start, end.clone());
        let mut stale = stored.next(None)?;
        let mut previous: Option<Vec<u8>> = None;
        loop {
            // A record past this range's end belongs to the section's next range.
            let record = match self.next_in(section)? {
                Some((key, value)) if before_end(&key, &end) => Some((key, value)),
                Some(record) => {
                    self.peeked = Some(self.retag(section, record));
                    None
                }
                None => None,
            };
            let Some((key, value)) = record else { break };
            if !in_range(&key) || previous.as_ref().is_some_and(|p| key <= *p) {
                return Err(corrupt(PartitionError::Corrupt(
                    "a snapshot's records are out of order or out of its range".into(),
                )));
            }
            while let Some(old) = stale.take_if(|old| *old <= key) {
                if old < key {
                    out.delete(keyspace, old)?;
                }
                stale = stored.next(previous.as_deref())?;
            }
            each(&key, &value)?;
            out.put(keyspace, key.clone(), value)?;
            previous = Some(key);
        }
        while let Some(old) = stale {
            out.delete(keyspace, old)?;
            stale = stored.next(previous.as_deref())?;
        }
        Ok(())
    }

    /// A record of `section` as it was read (with its section byte back).
    fn retag(&self, section: u8, (key, value): Record) -> Record {
        if !self.sectioned {
            return (key, value);
        }
        let mut tagged = Vec::with_capacity(key.len() + 1);
        tagged.push(section);
        tagged.extend_from_slice(&key);
        (tagged, value)
    }

    /// Fails unless every record was consumed.
    pub(crate) fn finish(self) -> Result<(), StorageError> {
        if self.peeked.is_some() || self.input.next_record()?.is_some() {
            return Err(corrupt(PartitionError::Corrupt(
                "a snapshot holds records this partition does not keep".into(),
            )));
        }
        Ok(())
    }
}

/// One key range of one keyspace, filled from one section of a snapshot.
pub(crate) struct MergeTarget<'a> {
    pub(crate) section: u8,
    pub(crate) keyspace: &'a Keyspace,
    pub(crate) start: Vec<u8>,
    pub(crate) end: Bound<Vec<u8>>,
    pub(crate) in_range: &'a dyn Fn(&[u8]) -> bool,
}

fn before_end(key: &[u8], end: &Bound<Vec<u8>>) -> bool {
    match end {
        Bound::Excluded(end) => key < end.as_slice(),
        Bound::Included(end) => key <= end.as_slice(),
        Bound::Unbounded => true,
    }
}

/// Imports the items of a snapshot of `range` into `items`; returns their
/// count and total size.
pub(crate) fn import_items(
    import: &mut Import<'_>,
    items: &Keyspace,
    range: TokenRange,
    out: &mut ImportWriter,
) -> Result<(u64, u64), StorageError> {
    let (start, end) = crate::state_machine::row_key_bounds(range.0, range.1);
    let in_range = |key: &[u8]| row_key_token(key).is_some_and(|t| range.0 <= t && t <= range.1);
    let (mut item_count, mut size_bytes) = (0u64, 0u64);
    import.merge(
        MergeTarget {
            section: ITEMS,
            keyspace: items,
            start,
            end: end.map_or(Bound::Unbounded, Bound::Excluded),
            in_range: &in_range,
        },
        out,
        |_, value| {
            size_bytes += u64::from(stored_size(value).map_err(corrupt)?);
            item_count += 1;
            Ok(())
        },
    )?;
    Ok((item_count, size_bytes))
}

/// Imports the index section of a snapshot into `keyspace`'s `ranges`.
pub(crate) fn import_local_indexes(
    import: &mut Import<'_>,
    keyspace: &Keyspace,
    ranges: Vec<KeyRange>,
    out: &mut ImportWriter,
) -> Result<(), StorageError> {
    for (start, end) in ranges {
        let bounds = (start.clone(), end.clone());
        let in_range = move |key: &[u8]| key >= bounds.0.as_slice() && before_end(key, &bounds.1);
        import.merge(
            MergeTarget {
                section: LOCAL_INDEXES,
                keyspace,
                start,
                end,
                in_range: &in_range,
            },
            out,
            |_, _| Ok(()),
        )?;
    }
    Ok(())
}
