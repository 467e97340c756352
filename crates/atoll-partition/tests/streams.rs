//! Stream records as a partition writes them, against the in-memory
//! engine: one record per item change in the entry's apply (none for a
//! write that changes nothing), images per view type, times from the
//! proposer's stamp, shards that close and open at stream changes and
//! splits (the split-off partition's first shard continuing the parent's),
//! and snapshots that carry records and shards.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::collections::HashMap;

use atoll_expr::ast::{
    Name, Path, PathElement, SetOperand, SetValue, Update, UpdateAction, ValueRef,
};
use atoll_model::table::{KeyAttribute, KeySchema, ScalarType};
use atoll_model::{AttributeValue, Item, encode_item, encode_row_key, item_size_bytes};
use atoll_partition::{
    EventName, ItemWrite, PartitionCommand, PartitionOutput, PartitionStateMachine, ReturnValues,
    SequenceNumber, ShardRef, StreamRecord, StreamSpec, StreamViewType, WriteAction, WriteOp,
    row_key_token,
};
use atoll_replication::{ApplyContext, GroupStateMachine, transfer_state};
use atoll_storage::{Durability, Storage};

const GROUP: u64 = 21;

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn item(pk: &str, v: &str) -> Item {
    Item::from([("pk".to_string(), s(pk)), ("v".to_string(), s(v))])
}

fn keys(pk: &str) -> Item {
    Item::from([("pk".to_string(), s(pk))])
}

fn row_key(pk: &str) -> Vec<u8> {
    encode_row_key(&s(pk), None).unwrap()
}

fn key_schema() -> KeySchema {
    KeySchema {
        partition_key: KeyAttribute {
            name: "pk".into(),
            scalar_type: ScalarType::S,
        },
        sort_key: None,
    }
}

fn spec(label: &str, view_type: StreamViewType) -> StreamSpec {
    StreamSpec {
        label: label.into(),
        view_type,
        key_schema: key_schema(),
    }
}

fn set_stream(epoch: u64, spec: Option<StreamSpec>) -> PartitionCommand {
    PartitionCommand::SetStream { epoch, spec }
}

fn stamped(now_ms: u64, command: PartitionCommand) -> PartitionCommand {
    PartitionCommand::Stamped {
        now_ms,
        command: Box::new(command),
    }
}

fn single(pk: &str, action: WriteAction) -> PartitionCommand {
    PartitionCommand::Write(Box::new(ItemWrite {
        row_key: row_key(pk),
        action,
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_values: ReturnValues::None,
        return_old_on_condition_failure: false,
    }))
}

fn put(pk: &str, v: &str) -> PartitionCommand {
    let it = item(pk, v);
    single(
        pk,
        WriteAction::Put {
            record: encode_item(&it),
            size_bytes: item_size_bytes(&it) as u32,
        },
    )
}

fn delete(pk: &str) -> PartitionCommand {
    single(pk, WriteAction::Delete)
}

/// `SET v = :v`.
fn set_v(pk: &str, v: &str) -> PartitionCommand {
    let update = Update {
        actions: vec![UpdateAction::Set(
            Path(vec![PathElement::Attribute(Name::Literal("v".into()))]),
            SetValue::Operand(SetOperand::Value(ValueRef::Placeholder(":v".into()))),
        )],
    };
    let mut write = ItemWrite {
        row_key: row_key(pk),
        action: WriteAction::Update {
            key: keys(pk),
            update,
        },
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_values: ReturnValues::None,
        return_old_on_condition_failure: false,
    };
    write.values.insert(":v".into(), s(v));
    PartitionCommand::Write(Box::new(write))
}

fn batch(puts: &[(&str, &str)], deletes: &[&str]) -> PartitionCommand {
    let mut ops: Vec<WriteOp> = puts
        .iter()
        .map(|(pk, v)| {
            let it = item(pk, v);
            WriteOp::Put {
                row_key: row_key(pk),
                record: encode_item(&it),
                size_bytes: item_size_bytes(&it) as u32,
            }
        })
        .collect();
    ops.extend(deletes.iter().map(|pk| WriteOp::Delete {
        row_key: row_key(pk),
    }));
    PartitionCommand::Batch { ops }
}

struct Partition {
    storage: Storage,
    sm: PartitionStateMachine,
    next_index: Cell<u64>,
}

impl Partition {
    fn new(group: u64) -> Partition {
        let storage = Storage::in_memory();
        let sm = open(&storage, group);
        Partition {
            storage,
            sm,
            next_index: Cell::new(1),
        }
    }

    /// Applies `commands` as consecutive log entries, in one apply round.
    fn apply(&self, commands: &[PartitionCommand]) -> Vec<PartitionOutput> {
        let mut ctx = ApplyContext::new();
        let outputs = commands
            .iter()
            .map(|command| {
                let index = self.next_index.get();
                self.next_index.set(index + 1);
                let bytes = command.encode().unwrap();
                self.sm.apply(&mut ctx, index, &bytes).unwrap()
            })
            .collect();
        self.storage
            .commit(ctx.into_batch(), Durability::Buffered)
            .unwrap();
        outputs
    }

    fn records(&self, number: u32) -> Vec<StreamRecord> {
        let from = SequenceNumber {
            log_index: 0,
            sequence: 0,
        };
        self.sm
            .read_stream(number, from, 10_000, u64::MAX)
            .unwrap()
            .0
    }
}

fn open(storage: &Storage, group: u64) -> PartitionStateMachine {
    PartitionStateMachine::open(
        group,
        storage.keyspace("items").unwrap(),
        storage.keyspace("stats").unwrap(),
        (0, u64::MAX),
    )
    .unwrap()
    .with_global_indexes(storage.keyspace("items_idx").unwrap(), key_schema())
    .unwrap()
    .with_streams()
    .unwrap()
}

/// A record as a line: event, keys, old and new `v`, time.
fn line(record: &StreamRecord) -> String {
    let v = |image: &Option<Item>| match image.as_ref().map(|i| i.get("v")) {
        None => "-".to_string(),
        Some(None) => "no v".to_string(),
        Some(Some(AttributeValue::S(v))) => v.clone(),
        Some(Some(other)) => format!("{other:?}"),
    };
    let pk = match record.keys.get("pk") {
        Some(AttributeValue::S(pk)) => pk.clone(),
        other => format!("{other:?}"),
    };
    format!(
        "{} {pk} old={} new={} at={}",
        record.event.as_str(),
        v(&record.old),
        v(&record.new),
        record.created_ms
    )
}

#[test]
fn every_item_change_makes_one_record_and_a_change_of_nothing_none() {
    let p = Partition::new(GROUP);
    p.apply(&[set_stream(
        1,
        Some(spec("L1", StreamViewType::NewAndOldImages)),
    )]);
    p.apply(&[
        stamped(1_000, put("a", "1")),
        stamped(2_000, put("a", "1")), // the same item: no record
        stamped(3_000, set_v("a", "2")),
        stamped(4_000, set_v("a", "2")), // sets what is there: no record
        stamped(5_000, delete("a")),
        stamped(6_000, delete("a")),     // no item: no record
        stamped(7_000, set_v("n", "9")), // an update that creates: INSERT
        stamped(8_000, batch(&[("b", "1"), ("c", "1"), ("n", "9")], &["zz"])),
    ]);
    let records = p.records(0);
    let lines: Vec<String> = records.iter().map(line).collect();
    assert_eq!(
        lines,
        [
            "INSERT a old=- new=1 at=1000",
            "MODIFY a old=1 new=2 at=3000",
            "REMOVE a old=2 new=- at=5000",
            "INSERT n old=- new=9 at=7000",
            "INSERT b old=- new=1 at=8000",
            "INSERT c old=- new=1 at=8000",
        ]
    );
    // Sequence numbers grow, and the batch's two records share its entry.
    let sequences: Vec<SequenceNumber> = records.iter().map(|r| r.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    assert_eq!(sequences[4].log_index, sequences[5].log_index);
    assert_eq!((sequences[4].sequence, sequences[5].sequence), (0, 1));
    // Sizes count the keys and the images the record holds.
    let insert = &records[0];
    let expected = item_size_bytes(&keys("a")) + item_size_bytes(&item("a", "1"));
    assert_eq!(insert.size_bytes as usize, expected);
    assert!(!insert.by_service);
    // Reading from a sequence number starts at it.
    let (from, more) = p.sm.read_stream(0, sequences[3], 10, u64::MAX).unwrap();
    assert_eq!((from.len(), more), (3, false));
    let (two, more) = p.sm.read_stream(0, sequences[0], 2, u64::MAX).unwrap();
    assert_eq!((two.len(), more), (2, true), "the limit");
    let (one, more) = p.sm.read_stream(0, sequences[0], 10, 1).unwrap();
    assert_eq!(
        one.len(),
        1,
        "the byte budget stops after the record that passes it"
    );
    assert!(more);
    let (all, more) = p.sm.read_stream(0, sequences[0], 6, u64::MAX).unwrap();
    assert_eq!(
        (all.len(), more),
        (6, false),
        "a read that takes the last record says so"
    );
    assert_eq!(p.sm.last_stream_sequence(0).unwrap(), Some(sequences[5]));
    assert_eq!(p.sm.last_stream_sequence(1).unwrap(), None);
}

#[test]
fn records_hold_what_their_view_type_shows() {
    for (view, old, new) in [
        (StreamViewType::KeysOnly, "-", "-"),
        (StreamViewType::NewImage, "-", "2"),
        (StreamViewType::OldImage, "1", "-"),
        (StreamViewType::NewAndOldImages, "1", "2"),
    ] {
        let p = Partition::new(GROUP);
        p.apply(&[
            stamped(10, put("a", "1")), // before the stream: no record
            stamped(20, set_stream(1, Some(spec("L1", view)))),
            stamped(30, put("a", "2")),
        ]);
        let lines: Vec<String> = p.records(0).iter().map(line).collect();
        assert_eq!(
            lines,
            [format!("MODIFY a old={old} new={new} at=30")],
            "{view:?}"
        );
    }
}

#[test]
fn turning_the_stream_off_and_on_closes_a_shard_and_opens_another() {
    let p = Partition::new(GROUP);
    p.apply(&[stamped(
        100,
        set_stream(1, Some(spec("L1", StreamViewType::KeysOnly))),
    )]);
    p.apply(&[stamped(200, put("a", "1"))]);
    // An older epoch changes nothing.
    let out = p.apply(&[set_stream(0, None)]);
    assert_eq!(out, [PartitionOutput::StreamSet { epoch: 1 }]);
    p.apply(&[stamped(300, set_stream(2, None))]);
    p.apply(&[stamped(400, put("b", "1"))]); // no stream: no record
    p.apply(&[stamped(
        500,
        set_stream(3, Some(spec("L2", StreamViewType::NewImage))),
    )]);
    p.apply(&[stamped(600, put("c", "1"))]);
    let state = p.sm.stream_state();
    assert_eq!(state.epoch, 3);
    type Seen<'a> = (u32, &'a str, Option<u64>, u64, Option<u64>);
    let shards: Vec<Seen<'_>> = state
        .shards
        .iter()
        .map(|s| {
            (
                s.number,
                s.label.as_str(),
                s.last_index,
                s.opened_ms,
                s.closed_ms,
            )
        })
        .collect();
    assert_eq!(
        shards,
        [
            (0, "L1", Some(4), 100, Some(300)),
            (1, "L2", None, 500, None)
        ]
    );
    let first: Vec<String> = p.records(0).iter().map(line).collect();
    assert_eq!(first, ["INSERT a old=- new=- at=200"]);
    let second: Vec<String> = p.records(1).iter().map(line).collect();
    assert_eq!(second, ["INSERT c old=- new=1 at=600"]);
    // The state survives a restart.
    let reopened = open(&p.storage, GROUP);
    assert_eq!(*reopened.stream_state(), *state);
}

#[test]
fn a_split_closes_the_shard_and_both_halves_continue_it() {
    let p = Partition::new(GROUP);
    p.apply(&[stamped(
        100,
        set_stream(1, Some(spec("L1", StreamViewType::NewAndOldImages))),
    )]);
    // Two items on either side of the split point.
    let (low, high) = {
        let mut keyed: Vec<(u64, &str)> = ["a", "b", "c", "d", "e", "f"]
            .into_iter()
            .map(|pk| (row_key_token(&row_key(pk)).unwrap(), pk))
            .collect();
        keyed.sort();
        (keyed[0], keyed[5])
    };
    let at_token = high.0;
    p.apply(&[
        stamped(200, put(low.1, "1")),
        stamped(200, put(high.1, "1")),
    ]);
    let split_index = p.next_index.get();
    p.apply(&[stamped(300, PartitionCommand::Split { at_token })]);
    p.apply(&[stamped(400, put(low.1, "2"))]);
    let state = p.sm.stream_state();
    let parent = ShardRef {
        group: GROUP,
        number: 0,
    };
    let shards: Vec<(u32, Option<ShardRef>, u64, Option<u64>)> = state
        .shards
        .iter()
        .map(|s| (s.number, s.parent, s.first_index, s.last_index))
        .collect();
    assert_eq!(
        shards,
        [
            (0, None, 1, Some(split_index)),
            (1, Some(parent), split_index, None)
        ]
    );
    let before: Vec<String> = p.records(0).iter().map(line).collect();
    assert_eq!(before.len(), 2);
    let after: Vec<String> = p.records(1).iter().map(line).collect();
    assert_eq!(after, [format!("MODIFY {} old=1 new=2 at=400", low.1)]);

    // The split-off partition, started on this storage's items, writes to
    // its own shard 0, a child of the same parent.
    let (key, value) = PartitionStateMachine::pinned_stream(
        &p.storage.keyspace("stats").unwrap(),
        99,
        GROUP,
        at_token,
    )
    .unwrap()
    .expect("a handoff record");
    let mut batch = atoll_storage::WriteBatch::new();
    batch.put(&p.storage.keyspace("stats").unwrap(), key, value);
    p.storage.commit(batch, Durability::Buffered).unwrap();
    let child = PartitionStateMachine::open(
        99,
        p.storage.keyspace("items").unwrap(),
        p.storage.keyspace("stats").unwrap(),
        (at_token, u64::MAX),
    )
    .unwrap()
    .with_global_indexes(p.storage.keyspace("items_idx").unwrap(), key_schema())
    .unwrap()
    .with_streams()
    .unwrap();
    let child_state = child.stream_state();
    assert_eq!(child_state.shards.len(), 1);
    assert_eq!(child_state.shards[0].parent, Some(parent));
    assert_eq!(
        child_state.spec.as_ref().map(|s| s.label.as_str()),
        Some("L1")
    );
    let mut ctx = ApplyContext::new();
    let command = stamped(500, put(high.1, "2")).encode().unwrap();
    child.apply(&mut ctx, 1, &command).unwrap();
    p.storage
        .commit(ctx.into_batch(), Durability::Buffered)
        .unwrap();
    let from = SequenceNumber {
        log_index: 0,
        sequence: 0,
    };
    let child_records: Vec<String> = child
        .read_stream(0, from, 10, u64::MAX)
        .unwrap()
        .0
        .iter()
        .map(line)
        .collect();
    assert_eq!(
        child_records,
        [format!("MODIFY {} old=1 new=2 at=500", high.1)]
    );
    // The parent's shards hold nothing of the child's.
    assert_eq!(p.records(1).len(), 1);
}

#[test]
fn a_snapshot_carries_the_shards_and_their_records() {
    let leader = Partition::new(GROUP);
    leader.apply(&[stamped(
        100,
        set_stream(1, Some(spec("L1", StreamViewType::NewAndOldImages))),
    )]);
    leader.apply(&[
        stamped(200, put("a", "1")),
        stamped(300, set_v("a", "2")),
        stamped(400, batch(&[("b", "1")], &["a"])),
    ]);
    let follower = Partition::new(GROUP);
    // A follower that lags holds nothing of the stream yet.
    assert!(follower.records(0).is_empty());
    let view = leader.storage.read_view();
    transfer_state(&leader.sm, &view, &follower.sm, &follower.storage).unwrap();
    assert_eq!(*follower.sm.stream_state(), *leader.sm.stream_state());
    assert_eq!(follower.records(0), leader.records(0));
    assert_eq!(follower.records(0).len(), 4);
    // Both go on alike.
    follower.next_index.set(leader.next_index.get());
    let more = [stamped(500, put("c", "1")), stamped(600, delete("b"))];
    assert_eq!(leader.apply(&more), follower.apply(&more));
    assert_eq!(follower.records(0), leader.records(0));
    let events: Vec<EventName> = leader.records(0).iter().map(|r| r.event).collect();
    assert_eq!(events.len(), 6);
}

fn with_expiry(pk: &str, expiry: AttributeValue) -> PartitionCommand {
    let mut it = item(pk, "1");
    it.insert("exp".into(), expiry);
    single(
        pk,
        WriteAction::Put {
            record: encode_item(&it),
            size_bytes: item_size_bytes(&it) as u32,
        },
    )
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(atoll_model::Number::from_i64(value))
}

#[test]
fn expired_items_are_deleted_as_the_service_and_only_if_still_expired() {
    const NOW_MS: u64 = 1_800_000_000_000;
    let now_s = (NOW_MS / 1000) as i64;
    let p = Partition::new(GROUP);
    p.apply(&[stamped(
        100,
        set_stream(1, Some(spec("L1", StreamViewType::NewAndOldImages))),
    )]);
    p.apply(&[
        with_expiry("past", n(now_s - 10)),
        with_expiry("now", n(now_s)),
        with_expiry("future", n(now_s + 10)),
        with_expiry("ancient", n(now_s - 6 * 365 * 24 * 3600)),
        with_expiry("text", s("1")),
        put("none", "1"),
    ]);
    let keys: Vec<Vec<u8>> = [
        "past", "now", "future", "ancient", "text", "none", "missing",
    ]
    .iter()
    .map(|pk| row_key(pk))
    .collect();
    let out = p.apply(&[PartitionCommand::ExpireItems {
        attribute: "exp".into(),
        row_keys: keys,
        now_ms: NOW_MS,
    }]);
    assert_eq!(out, [PartitionOutput::Expired { deleted: 1 }]);
    let removes: Vec<(String, bool, u64)> = p
        .records(0)
        .iter()
        .filter(|r| r.event == EventName::Remove)
        .map(|r| (line(r), r.by_service, r.created_ms))
        .collect();
    assert_eq!(removes.len(), 1, "{removes:?}");
    assert!(removes[0].0.starts_with("REMOVE past old=1"), "{removes:?}");
    assert!(removes[0].1, "the service made it");
    assert_eq!(removes[0].2, NOW_MS, "dated by the sweep's clock");
    // An item whose expiry moved to the future since the sweep stays.
    p.apply(&[with_expiry("moved", n(now_s - 10))]);
    p.apply(&[with_expiry("moved", n(now_s + 100))]);
    let out = p.apply(&[PartitionCommand::ExpireItems {
        attribute: "exp".into(),
        row_keys: vec![row_key("moved")],
        now_ms: NOW_MS,
    }]);
    assert_eq!(out, [PartitionOutput::Expired { deleted: 0 }]);
}

#[test]
fn trimming_removes_old_records_and_forgets_emptied_closed_shards() {
    let p = Partition::new(GROUP);
    p.apply(&[stamped(
        100,
        set_stream(1, Some(spec("L1", StreamViewType::KeysOnly))),
    )]);
    p.apply(&[stamped(100, put("a", "1")), stamped(150, put("b", "1"))]);
    p.apply(&[stamped(200, set_stream(2, None))]); // shard 0 closes
    p.apply(&[stamped(
        300,
        set_stream(3, Some(spec("L2", StreamViewType::KeysOnly))),
    )]);
    p.apply(&[stamped(400, put("c", "1")), stamped(500, put("d", "1"))]);
    assert_eq!(p.sm.oldest_stream_record_ms().unwrap(), Some(100));
    // Nothing is old enough: nothing goes.
    let out = p.apply(&[PartitionCommand::TrimStream { before_ms: 50 }]);
    assert_eq!(out, [PartitionOutput::StreamTrimmed { removed: 0 }]);
    // The first record of shard 0 goes; the shard stays (it has another).
    let out = p.apply(&[PartitionCommand::TrimStream { before_ms: 120 }]);
    assert_eq!(out, [PartitionOutput::StreamTrimmed { removed: 1 }]);
    let state = p.sm.stream_state();
    let kept = p.records(0);
    assert_eq!(kept.len(), 1);
    assert_eq!(state.shards[0].trim_horizon(), kept[0].sequence);
    // Shard 0 empties and, closed before the cut, is forgotten; shard 1
    // loses its first record only.
    let out = p.apply(&[PartitionCommand::TrimStream { before_ms: 450 }]);
    assert_eq!(out, [PartitionOutput::StreamTrimmed { removed: 2 }]);
    let state = p.sm.stream_state();
    let numbers: Vec<u32> = state.shards.iter().map(|s| s.number).collect();
    assert_eq!(numbers, [1]);
    let left: Vec<String> = p.records(1).iter().map(line).collect();
    assert_eq!(left, ["INSERT d old=- new=- at=500"]);
    assert_eq!(p.sm.oldest_stream_record_ms().unwrap(), Some(500));
    // A replica restarted reads the same.
    assert_eq!(*open(&p.storage, GROUP).stream_state(), *state);
}
