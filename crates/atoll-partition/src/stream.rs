//! DynamoDB Streams as a partition keeps them: the stream a table has (its
//! label and view type, given through the partition's log), the partition's
//! shards (one per stretch of its log between splits and stream changes),
//! and its stream records, written in the same apply batch as the item
//! change they describe.
//!
//! A shard is `(group, number)`: a partition opens shard 0 when the stream
//! starts there, closes its open shard and opens the next number when it
//! splits (the partition the split makes opens its shard 0 with the same
//! parent), and closes it when the stream is turned off. Records live in
//! the table's index keyspace under `STREAM ‖ group ‖ number ‖ log index ‖
//! sequence`, so a shard's records are in log order, and a sequence number
//! (log index, sequence) grows within a shard whoever leads the partition.

use atoll_model::table::KeySchema;
use atoll_model::{Item, decode_item, encode_item};
use serde::{Deserialize, Serialize};

use crate::error::PartitionError;

/// First byte of stream records' keys in the index keyspace.
pub(crate) const STREAM: u8 = 0x90;

/// What a stream record shows of the item (DynamoDB's `StreamViewType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamViewType {
    /// The key attributes only.
    KeysOnly,
    /// The item as it is after the change.
    NewImage,
    /// The item as it was before the change.
    OldImage,
    /// Both.
    NewAndOldImages,
}

impl StreamViewType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamViewType::KeysOnly => "KEYS_ONLY",
            StreamViewType::NewImage => "NEW_IMAGE",
            StreamViewType::OldImage => "OLD_IMAGE",
            StreamViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }

    /// The view type named `text`, if it is one.
    pub fn parse(text: &str) -> Option<StreamViewType> {
        [
            StreamViewType::KeysOnly,
            StreamViewType::NewImage,
            StreamViewType::OldImage,
            StreamViewType::NewAndOldImages,
        ]
        .into_iter()
        .find(|view| view.as_str() == text)
    }

    fn keeps_new(self) -> bool {
        matches!(
            self,
            StreamViewType::NewImage | StreamViewType::NewAndOldImages
        )
    }

    fn keeps_old(self) -> bool {
        matches!(
            self,
            StreamViewType::OldImage | StreamViewType::NewAndOldImages
        )
    }
}

/// A table's stream as its partitions are told of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSpec {
    /// The stream's label (its creation time), naming it in its ARN.
    pub label: String,
    /// What its records show.
    pub view_type: StreamViewType,
    /// The table's key schema (records carry the item's keys).
    pub key_schema: KeySchema,
}

/// A shard, named by the group that writes it and its number there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardRef {
    /// The partition's group.
    pub group: u64,
    /// Its number among the group's shards.
    pub number: u32,
}

/// DynamoDB's shape of a shard id: `shardId-`, the shard's creation time
/// in 20 digits of epoch milliseconds (consumers such as the Kinesis
/// adapter read it as that), a dash and 8 hexadecimal digits, here a hash
/// of the group and the shard's number there. Ids are resolved by looking
/// them up among the stream's shards.
pub fn shard_id(group: u64, shard: &Shard) -> String {
    // splitmix64 of (group, number): stable across versions and nodes.
    let mut x = group ^ (u64::from(shard.number) << 48) ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    format!("shardId-{:020}-{:08x}", shard.opened_ms, x as u32)
}

/// One shard of a partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Its number in the group.
    pub number: u32,
    /// The stream it belongs to.
    pub label: String,
    /// What its records show.
    pub view_type: StreamViewType,
    /// The shard it continues, when a split made it.
    pub parent: Option<ShardRef>,
    /// The log index it opened at: its records come after it.
    pub first_index: u64,
    /// The log index it closed at (a split, or the stream turned off).
    pub last_index: Option<u64>,
    /// When it opened and closed (the proposer's clock, epoch ms).
    pub opened_ms: u64,
    /// When it closed.
    pub closed_ms: Option<u64>,
    /// Records before this place were trimmed (their retention ended).
    #[serde(default)]
    pub trimmed_to: Option<SequenceNumber>,
}

impl Shard {
    /// The first place a reader may ask for: the start, or where trimming
    /// left it.
    pub fn trim_horizon(&self) -> SequenceNumber {
        self.trimmed_to
            .unwrap_or_else(|| self.starting_sequence())
            .max(self.starting_sequence())
    }

    /// The first sequence number a record of this shard may have.
    pub fn starting_sequence(&self) -> SequenceNumber {
        SequenceNumber {
            log_index: self.first_index,
            sequence: 0,
        }
    }

    /// The sequence number above every record of this closed shard.
    pub fn ending_sequence(&self) -> Option<SequenceNumber> {
        self.last_index.map(|log_index| SequenceNumber {
            log_index,
            sequence: 0,
        })
    }
}

/// A partition's streams: which change of the table's stream it took last,
/// and its shards (the open one last), those of earlier streams kept until
/// their retention ends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// Which change of the table's stream this is (`SetStream` is taken
    /// only if newer).
    pub epoch: u64,
    /// The stream records are written to now.
    pub spec: Option<StreamSpec>,
    /// The shards.
    pub shards: Vec<Shard>,
}

impl StreamState {
    /// The shard records go to now.
    pub fn open_shard(&self) -> Option<&Shard> {
        self.shards
            .last()
            .filter(|shard| shard.last_index.is_none())
    }

    /// Shard `number`.
    pub fn shard(&self, number: u32) -> Option<&Shard> {
        self.shards.iter().find(|shard| shard.number == number)
    }

    /// Closes the open shard at `log_index`.
    pub(crate) fn close(&mut self, log_index: u64, now_ms: u64) {
        if let Some(shard) = self.shards.last_mut().filter(|s| s.last_index.is_none()) {
            shard.last_index = Some(log_index);
            shard.closed_ms = Some(now_ms);
        }
    }

    /// Opens the next shard of `spec` at `log_index`, continuing `parent`.
    pub(crate) fn open(&mut self, log_index: u64, now_ms: u64, parent: Option<ShardRef>) {
        let Some(spec) = &self.spec else { return };
        let number = self.shards.last().map_or(0, |shard| shard.number + 1);
        self.shards.push(Shard {
            number,
            label: spec.label.clone(),
            view_type: spec.view_type,
            parent,
            first_index: log_index,
            last_index: None,
            opened_ms: now_ms,
            closed_ms: None,
            trimmed_to: None,
        });
    }

    /// Encodes the state for its record (JSON: it grows with new fields).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, PartitionError> {
        serde_json::to_vec(self).map_err(|e| PartitionError::Corrupt(e.to_string()))
    }

    /// Decodes what `encode` wrote.
    pub(crate) fn decode(bytes: &[u8]) -> Result<StreamState, PartitionError> {
        serde_json::from_slice(bytes).map_err(|e| PartitionError::Corrupt(e.to_string()))
    }
}

/// A record's place in its shard: the log entry of its change, and its
/// order among that entry's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SequenceNumber {
    /// The log index of the change.
    pub log_index: u64,
    /// Its order within the entry.
    pub sequence: u32,
}

impl SequenceNumber {
    /// The place right after this one.
    pub fn next(self) -> SequenceNumber {
        match self.sequence.checked_add(1) {
            Some(sequence) => SequenceNumber {
                log_index: self.log_index,
                sequence,
            },
            None => SequenceNumber {
                log_index: self.log_index.saturating_add(1),
                sequence: 0,
            },
        }
    }

    /// DynamoDB's shape: a string of digits (21 to 40 of them), growing
    /// with the record's place.
    pub fn to_wire(self) -> String {
        format!("{:020}{:010}", self.log_index, self.sequence)
    }

    /// The sequence number `text` shows, if it is one of Atoll's.
    pub fn parse(text: &str) -> Option<SequenceNumber> {
        if text.len() != 30 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(SequenceNumber {
            log_index: text.get(..20)?.parse().ok()?,
            sequence: text.get(20..)?.parse().ok()?,
        })
    }
}

/// What happened to the item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventName {
    /// A new item.
    Insert,
    /// An item changed.
    Modify,
    /// An item removed.
    Remove,
}

impl EventName {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Insert => "INSERT",
            EventName::Modify => "MODIFY",
            EventName::Remove => "REMOVE",
        }
    }
}

/// One stream record as stored: images in the record encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredStreamRecord {
    /// What happened.
    pub event: EventName,
    /// The item's key attributes.
    pub keys: Vec<u8>,
    /// The item before, when the view type keeps it.
    pub old: Option<Vec<u8>>,
    /// The item after, when the view type keeps it.
    pub new: Option<Vec<u8>>,
    /// When the change was made (the proposer's clock, epoch ms).
    pub created_ms: u64,
    /// DynamoDB's size of the record: its keys and images.
    pub size_bytes: u32,
    /// Made by the service (a TTL deletion), not a user.
    pub by_service: bool,
}

/// A stream record as read: its place and its decoded images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// Its sequence number.
    pub sequence: SequenceNumber,
    /// What happened.
    pub event: EventName,
    /// The item's key attributes.
    pub keys: Item,
    /// The item before.
    pub old: Option<Item>,
    /// The item after.
    pub new: Option<Item>,
    /// When the change was made (epoch ms).
    pub created_ms: u64,
    /// DynamoDB's size of the record.
    pub size_bytes: u32,
    /// Made by the service (a TTL deletion).
    pub by_service: bool,
}

/// The record a change of an item makes in a stream of `spec`, if it makes
/// one: none when the item did not change (a put of the same item, an
/// update that sets what was there, a delete of no item).
pub(crate) fn record_of(
    spec: &StreamSpec,
    old: Option<&Item>,
    new: Option<&Item>,
    created_ms: u64,
    by_service: bool,
) -> Option<StoredStreamRecord> {
    let event = match (old, new) {
        (None, None) => return None,
        (Some(old), Some(new)) if old == new => return None,
        (None, Some(_)) => EventName::Insert,
        (Some(_), Some(_)) => EventName::Modify,
        (Some(_), None) => EventName::Remove,
    };
    let any = new.or(old)?;
    let keys: Item = any
        .iter()
        .filter(|(name, _)| spec.key_schema.is_key_attribute(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let view = spec.view_type;
    let old = old.filter(|_| view.keeps_old());
    let new = new.filter(|_| view.keeps_new());
    let size = |item: Option<&Item>| item.map_or(0, atoll_model::item_size_bytes);
    let size_bytes = size(Some(&keys)) + size(old) + size(new);
    let size_bytes = u32::try_from(size_bytes).unwrap_or(u32::MAX);
    Some(StoredStreamRecord {
        event,
        keys: encode_item(&keys),
        old: old.map(encode_item),
        new: new.map(encode_item),
        created_ms,
        size_bytes,
        by_service,
    })
}

impl StoredStreamRecord {
    /// Encodes the record for the index keyspace.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, PartitionError> {
        postcard::to_stdvec(self).map_err(|e| PartitionError::Corrupt(e.to_string()))
    }

    /// When the record `bytes` encode was made, without decoding its images.
    pub(crate) fn created_ms(bytes: &[u8]) -> Result<u64, PartitionError> {
        let stored: StoredStreamRecord =
            postcard::from_bytes(bytes).map_err(|e| PartitionError::Corrupt(e.to_string()))?;
        Ok(stored.created_ms)
    }

    /// Decodes what `encode` wrote, with its images, at `sequence`.
    pub(crate) fn decode(
        bytes: &[u8],
        sequence: SequenceNumber,
    ) -> Result<StreamRecord, PartitionError> {
        let stored: StoredStreamRecord =
            postcard::from_bytes(bytes).map_err(|e| PartitionError::Corrupt(e.to_string()))?;
        let image =
            |bytes: &[u8]| decode_item(bytes).map_err(|e| PartitionError::Corrupt(e.to_string()));
        Ok(StreamRecord {
            sequence,
            event: stored.event,
            keys: image(&stored.keys)?,
            old: stored.old.as_deref().map(image).transpose()?,
            new: stored.new.as_deref().map(image).transpose()?,
            created_ms: stored.created_ms,
            size_bytes: stored.size_bytes,
            by_service: stored.by_service,
        })
    }
}

/// The key of the record of `shard` at `sequence`.
pub(crate) fn record_key(shard: ShardRef, sequence: SequenceNumber) -> Vec<u8> {
    let mut key = shard_prefix(shard);
    key.extend_from_slice(&sequence.log_index.to_be_bytes());
    key.extend_from_slice(&sequence.sequence.to_be_bytes());
    key
}

/// The sequence number a record key names.
pub(crate) fn sequence_of(key: &[u8]) -> Option<SequenceNumber> {
    let tail = key.get(13..25)?;
    Some(SequenceNumber {
        log_index: u64::from_be_bytes(tail.get(..8)?.try_into().ok()?),
        sequence: u32::from_be_bytes(tail.get(8..)?.try_into().ok()?),
    })
}

/// Every record key of `shard` starts with this.
pub(crate) fn shard_prefix(shard: ShardRef) -> Vec<u8> {
    let mut key = group_prefix(shard.group);
    key.extend_from_slice(&shard.number.to_be_bytes());
    key
}

/// Every record key of the group's shards starts with this.
pub(crate) fn group_prefix(group: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(STREAM);
    key.extend_from_slice(&group.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_and_sequence_numbers_have_dynamodbs_shape() {
        let shard = Shard {
            number: 3,
            label: "2026-12-07T21:00:00.000".into(),
            view_type: StreamViewType::KeysOnly,
            parent: None,
            first_index: 10,
            last_index: None,
            opened_ms: 1_765_141_200_123,
            closed_ms: None,
            trimmed_to: None,
        };
        let id = shard_id(17, &shard);
        assert!(id.starts_with("shardId-00000001765141200123-"), "{id}");
        assert_eq!(id.len(), 37);
        assert_ne!(id, shard_id(18, &shard), "groups differ");
        let next = Shard {
            number: 4,
            ..shard.clone()
        };
        assert_ne!(id, shard_id(17, &next), "numbers differ");
        let sequence = SequenceNumber {
            log_index: 42,
            sequence: 7,
        };
        let wire = sequence.to_wire();
        assert!((21..=40).contains(&wire.len()));
        assert_eq!(SequenceNumber::parse(&wire), Some(sequence));
        let later = SequenceNumber {
            log_index: 43,
            sequence: 0,
        };
        assert!(later.to_wire() > wire, "wire order is numeric order");
        let shard_ref = ShardRef {
            group: 17,
            number: 3,
        };
        let key = record_key(shard_ref, sequence);
        assert_eq!(sequence_of(&key), Some(sequence));
        assert!(key.starts_with(&shard_prefix(shard_ref)));
    }
}
