//! Local secondary index maintenance in the partition state machine,
//! against the in-memory engine: entries always equal the projections of
//! the items, item collection sizes always equal their items and entries,
//! and snapshots carry both.
//!
//! The expected entries and sizes are computed here, independently of the
//! state machine, from the items it stores: every check compares the whole
//! index keyspace with what the items say it must hold.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use atoll_model::table::{KeyAttribute, KeySchema, LocalIndex, Projection, ScalarType};
use atoll_model::{
    AttributeValue, Item, Number, decode_item, encode_item, encode_local_index_key, encode_row_key,
    item_size_bytes, local_index_entry_row_key, local_index_prefix, row_key_partition_part,
    row_key_prefix_for_partition,
};
use atoll_partition::{
    DEFAULT_ITEM_COLLECTION_LIMIT_BYTES, ItemWrite, LocalIndexes, PartitionCommand,
    PartitionOutput, PartitionStateMachine, ReturnValues, TokenRange, WriteAction, WriteOp,
    WriteRejection, row_key_token,
};
use atoll_replication::{
    ApplyContext, GroupStateMachine, ImportWriter, Record, SnapshotReader, transfer_state,
};
use atoll_storage::{Durability, Keyspace, Storage, StorageError, WriteBatch};

const ITEMS: &str = "items";
const STATS: &str = "stats";
const LSI: &str = "lsi";
const GROUP: u64 = 9;
const FULL: TokenRange = (0, u64::MAX);
/// Bytes DynamoDB counts for an index entry beyond its attributes.
const ENTRY_OVERHEAD: u64 = 100;

// ---------------------------------------------------------------------------
// Items, keys and commands

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(Number::from_i64(value))
}

fn item(pk: &str, sk: &str, attributes: &[(&str, AttributeValue)]) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(pk));
    item.insert("sk".into(), s(sk));
    for (name, value) in attributes {
        item.insert((*name).into(), value.clone());
    }
    item
}

/// `item` with `name` set to `value` (`None`: removed).
fn with(item: &Item, name: &str, value: Option<AttributeValue>) -> Item {
    let mut changed = item.clone();
    match value {
        Some(value) => changed.insert(name.into(), value),
        None => changed.remove(name),
    };
    changed
}

fn keys_of(item: &Item) -> (String, String) {
    match (item.get("pk"), item.get("sk")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => (pk.clone(), sk.clone()),
        _ => unreachable!("test items have string pk and sk"),
    }
}

fn row_key(pk: &str, sk: &str) -> Vec<u8> {
    encode_row_key(&s(pk), Some(&s(sk))).unwrap()
}

fn row_key_of(item: &Item) -> Vec<u8> {
    let (pk, sk) = keys_of(item);
    row_key(&pk, &sk)
}

fn size(item: &Item) -> u32 {
    item_size_bytes(item) as u32
}

fn single(
    pk: &str,
    sk: &str,
    action: WriteAction,
    return_values: ReturnValues,
) -> PartitionCommand {
    PartitionCommand::Write(Box::new(ItemWrite {
        row_key: row_key(pk, sk),
        action,
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_values,
        return_old_on_condition_failure: false,
    }))
}

fn put(item: &Item) -> PartitionCommand {
    let (pk, sk) = keys_of(item);
    single(
        &pk,
        &sk,
        WriteAction::Put {
            record: encode_item(item),
            size_bytes: size(item),
        },
        ReturnValues::None,
    )
}

fn delete(pk: &str, sk: &str) -> PartitionCommand {
    single(pk, sk, WriteAction::Delete, ReturnValues::None)
}

/// An UpdateItem of `pk`/`sk` with `expression` and its `:values`.
fn update_returning(
    pk: &str,
    sk: &str,
    expression: &str,
    values: &[(&str, AttributeValue)],
    return_values: ReturnValues,
) -> PartitionCommand {
    let update = atoll_expr::parse_update(expression).expect("update expression");
    let mut key = Item::new();
    key.insert("pk".into(), s(pk));
    key.insert("sk".into(), s(sk));
    let mut command = single(pk, sk, WriteAction::Update { key, update }, return_values);
    if let PartitionCommand::Write(write) = &mut command {
        write.values = values
            .iter()
            .map(|(name, value)| ((*name).to_string(), value.clone()))
            .collect();
    }
    command
}

fn update(
    pk: &str,
    sk: &str,
    expression: &str,
    values: &[(&str, AttributeValue)],
) -> PartitionCommand {
    update_returning(pk, sk, expression, values, ReturnValues::None)
}

fn batch_put(item: &Item) -> WriteOp {
    WriteOp::Put {
        row_key: row_key_of(item),
        record: encode_item(item),
        size_bytes: size(item),
    }
}

fn batch_delete(pk: &str, sk: &str) -> WriteOp {
    WriteOp::Delete {
        row_key: row_key(pk, sk),
    }
}

// ---------------------------------------------------------------------------
// The table: pk S HASH, sk S RANGE; by_n (n N, ALL), by_t (t S, KEYS_ONLY or INCLUDE)

fn key_attribute(name: &str, scalar_type: ScalarType) -> KeyAttribute {
    KeyAttribute {
        name: name.into(),
        scalar_type,
    }
}

fn table_keys() -> KeySchema {
    KeySchema {
        partition_key: key_attribute("pk", ScalarType::S),
        sort_key: Some(key_attribute("sk", ScalarType::S)),
    }
}

fn local_index(
    name: &str,
    sort: &str,
    scalar_type: ScalarType,
    projection: Projection,
) -> LocalIndex {
    LocalIndex {
        name: name.into(),
        key_schema: KeySchema {
            partition_key: key_attribute("pk", ScalarType::S),
            sort_key: Some(key_attribute(sort, scalar_type)),
        },
        projection,
    }
}

/// #1 `by_n` (n N, ALL), #2 `by_t` (t S, `t_projection`).
fn indexes(t_projection: Projection) -> Vec<LocalIndex> {
    vec![
        local_index("by_n", "n", ScalarType::N, Projection::All),
        local_index("by_t", "t", ScalarType::S, t_projection),
    ]
}

/// What an entry of `index` holds of `item`, computed here (not by the
/// crate's `Projection::project`).
fn projected(index: &LocalIndex, item: &Item) -> Item {
    let sort = &index.key_schema.sort_key.as_ref().unwrap().name;
    let kept: Vec<&str> = match &index.projection {
        Projection::All => return item.clone(),
        Projection::KeysOnly => vec!["pk", "sk", sort],
        Projection::Include(names) => ["pk", "sk", sort.as_str()]
            .into_iter()
            .chain(names.iter().map(String::as_str))
            .collect(),
    };
    item.iter()
        .filter(|(name, _)| kept.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The index sort key value `item` has for `index`, when of the key's type.
fn index_value<'a>(index: &LocalIndex, item: &'a Item) -> Option<&'a AttributeValue> {
    let key = index.key_schema.sort_key.as_ref().unwrap();
    item.get(&key.name)
        .filter(|value| key.scalar_type.matches(value))
}

/// The entries `item` must have: (index number, entry key, projected item).
fn entries_of(indexes: &[LocalIndex], item: &Item) -> Vec<(u8, Vec<u8>, Item)> {
    let row_key = row_key_of(item);
    indexes
        .iter()
        .enumerate()
        .filter_map(|(position, index)| {
            let value = index_value(index, item)?;
            let number = position as u8 + 1;
            let key = encode_local_index_key(number, &row_key, value).unwrap();
            Some((number, key, projected(index, item)))
        })
        .collect()
}

/// The size DynamoDB counts for `item`'s entry in `index`.
fn entry_size(index: &LocalIndex, item: &Item) -> u32 {
    size(&projected(index, item)) + ENTRY_OVERHEAD as u32
}

/// What `item` adds to its collection: its size and its entries'.
fn cost(indexes: &[LocalIndex], item: &Item) -> u64 {
    u64::from(size(item))
        + indexes
            .iter()
            .filter(|index| index_value(index, item).is_some())
            .map(|index| u64::from(entry_size(index, item)))
            .sum::<u64>()
}

/// The key of the size record of partition key `pk`'s collection.
fn collection_key(pk: &str) -> Vec<u8> {
    let mut key = vec![0u8];
    key.extend_from_slice(&row_key_prefix_for_partition(&s(pk)).unwrap());
    key
}

// ---------------------------------------------------------------------------
// Partitions

fn open(
    storage: &Storage,
    group_id: u64,
    range: TokenRange,
    indexes: &[LocalIndex],
    limit: u64,
) -> PartitionStateMachine {
    let sm = PartitionStateMachine::open(
        group_id,
        storage.keyspace(ITEMS).unwrap(),
        storage.keyspace(STATS).unwrap(),
        range,
    )
    .unwrap();
    if indexes.is_empty() {
        return sm;
    }
    sm.with_local_indexes(LocalIndexes::new(
        storage.keyspace(LSI).unwrap(),
        table_keys(),
        indexes.to_vec(),
        limit,
    ))
}

fn dump(keyspace: &Keyspace) -> BTreeMap<Vec<u8>, Vec<u8>> {
    keyspace
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .map(|pair| {
            let (key, value) = pair.unwrap();
            (key.to_vec(), value.to_vec())
        })
        .collect()
}

/// Everything a partition's storage holds, to check that nothing changed.
#[derive(Debug, PartialEq)]
struct State {
    items: BTreeMap<Vec<u8>, Vec<u8>>,
    lsi: BTreeMap<Vec<u8>, Vec<u8>>,
    stats: BTreeMap<Vec<u8>, Vec<u8>>,
    item_count: u64,
    size_bytes: u64,
}

struct Partition {
    storage: Storage,
    indexes: Vec<LocalIndex>,
    sm: PartitionStateMachine,
}

impl Partition {
    fn new(t_projection: Projection, limit: u64) -> Partition {
        Partition::with_range(t_projection, limit, FULL)
    }

    fn with_range(t_projection: Projection, limit: u64, range: TokenRange) -> Partition {
        let storage = Storage::in_memory();
        let indexes = indexes(t_projection);
        let sm = open(&storage, GROUP, range, &indexes, limit);
        Partition {
            storage,
            indexes,
            sm,
        }
    }

    /// The same storage, opened again (as after a restart).
    fn reopen(&self, limit: u64) -> Partition {
        Partition {
            storage: self.storage.clone(),
            indexes: self.indexes.clone(),
            sm: open(&self.storage, GROUP, FULL, &self.indexes, limit),
        }
    }

    fn by_n(&self) -> &LocalIndex {
        &self.indexes[0]
    }

    fn by_t(&self) -> &LocalIndex {
        &self.indexes[1]
    }

    fn cost(&self, item: &Item) -> u64 {
        cost(&self.indexes, item)
    }

    /// Applies `commands` in one round, committed together.
    fn apply(&self, commands: &[PartitionCommand]) -> Vec<PartitionOutput> {
        apply_round(&self.sm, &self.storage, commands)
    }

    fn apply_one(&self, command: PartitionCommand) -> PartitionOutput {
        self.apply(&[command]).pop().unwrap()
    }

    fn items(&self) -> Keyspace {
        self.storage.keyspace(ITEMS).unwrap()
    }

    fn lsi(&self) -> Keyspace {
        self.storage.keyspace(LSI).unwrap()
    }

    fn get(&self, pk: &str, sk: &str) -> Option<Item> {
        atoll_partition::read_item(&self.items(), &row_key(pk, sk)).unwrap()
    }

    /// The entry of index `number` for the item under `row_key` with index sort key `value`.
    fn entry(&self, number: u8, pk: &str, sk: &str, value: &AttributeValue) -> Option<Item> {
        let key = encode_local_index_key(number, &row_key(pk, sk), value).unwrap();
        let stored = self.lsi().get(&key).unwrap()?;
        Some(decode_item(&stored[4..]).unwrap())
    }

    /// The stored size record of `pk`'s collection.
    fn collection_size(&self, pk: &str) -> Option<u64> {
        let stored = self.lsi().get(&collection_key(pk)).unwrap()?;
        Some(u64::from_be_bytes(stored.as_ref().try_into().unwrap()))
    }

    fn state(&self) -> State {
        State {
            items: dump(&self.items()),
            lsi: dump(&self.lsi()),
            stats: dump(&self.storage.keyspace(STATS).unwrap()),
            item_count: self.sm.stats().item_count(),
            size_bytes: self.sm.stats().size_bytes(),
        }
    }

    /// Checks the whole index keyspace against the items: one entry per
    /// item and index whose key it holds, equal to its projection, and one
    /// size record per non-empty collection, equal to the sum of its items
    /// and entries; and the statistics against the items of the range.
    fn check(&self) {
        check_keyspaces(&self.items(), &self.lsi(), &self.indexes);
        let (first, last) = self.sm.range();
        let (mut count, mut bytes) = (0u64, 0u64);
        for (key, value) in dump(&self.items()) {
            let token = row_key_token(&key).unwrap();
            if first <= token && token <= last {
                count += 1;
                bytes += u64::from(u32::from_le_bytes(value[..4].try_into().unwrap()));
            }
        }
        assert_eq!(self.sm.stats().item_count(), count, "item count");
        assert_eq!(self.sm.stats().size_bytes(), bytes, "size bytes");
    }
}

fn apply_round(
    sm: &PartitionStateMachine,
    storage: &Storage,
    commands: &[PartitionCommand],
) -> Vec<PartitionOutput> {
    let mut ctx = ApplyContext::new();
    let outputs = commands
        .iter()
        .enumerate()
        .map(|(i, command)| {
            let bytes = command.encode().unwrap();
            sm.apply(&mut ctx, i as u64 + 1, &bytes).expect("apply")
        })
        .collect();
    storage
        .commit(ctx.into_batch(), Durability::Buffered)
        .unwrap();
    outputs
}

fn check_keyspaces(items: &Keyspace, lsi: &Keyspace, indexes: &[LocalIndex]) {
    let mut expected_entries: BTreeMap<Vec<u8>, Item> = BTreeMap::new();
    let mut expected_sizes: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for (key, value) in dump(items) {
        let stored = decode_item(&value[4..]).unwrap();
        let stored_size = u32::from_le_bytes(value[..4].try_into().unwrap());
        assert_eq!(stored_size, size(&stored), "stored item size");
        assert_eq!(row_key_of(&stored), key, "item under its row key");
        let (pk, _) = keys_of(&stored);
        let mut partition_part = vec![0u8];
        partition_part.extend_from_slice(row_key_partition_part(&key).unwrap());
        assert_eq!(partition_part, collection_key(&pk));
        *expected_sizes.entry(collection_key(&pk)).or_default() += cost(indexes, &stored);
        for (number, entry_key, entry) in entries_of(indexes, &stored) {
            assert!(entry_key.starts_with(&local_index_prefix(number, &s(&pk)).unwrap()));
            assert_eq!(local_index_entry_row_key(&entry_key).unwrap(), key);
            expected_entries.insert(entry_key, entry);
        }
    }
    let mut entries: BTreeMap<Vec<u8>, Item> = BTreeMap::new();
    let mut sizes: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for (key, value) in dump(lsi) {
        match key.first() {
            Some(0) => {
                let raw: [u8; 8] = value.as_slice().try_into().expect("8-byte size record");
                sizes.insert(key, u64::from_be_bytes(raw));
            }
            Some(number) if usize::from(*number) <= indexes.len() => {
                let entry = decode_item(&value[4..]).unwrap();
                let stored_size = u32::from_le_bytes(value[..4].try_into().unwrap());
                assert_eq!(stored_size, size(&entry), "stored entry size");
                entries.insert(key, entry);
            }
            _ => panic!("a key of no index in the index keyspace: {key:?}"),
        }
    }
    assert_eq!(entries, expected_entries, "index entries");
    assert_eq!(sizes, expected_sizes, "item collection sizes");
}

/// Index writes as outputs report them: (index name, entry size).
fn writes(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter()
        .map(|(name, size)| ((*name).to_string(), *size))
        .collect()
}

fn written(
    old: Option<&Item>,
    new: Option<&Item>,
    collection_size_bytes: u64,
    index_writes: Vec<(&str, u32)>,
) -> PartitionOutput {
    PartitionOutput::WrittenInCollection {
        returned: None,
        old_size_bytes: old.map_or(0, size),
        new_size_bytes: new.map_or(0, size),
        collection_size_bytes,
        index_writes: writes(&index_writes),
    }
}

// ---------------------------------------------------------------------------
// 1. Writes keep entries equal to the projections

#[test]
fn single_writes_keep_entries_equal_to_the_projection_of_the_items() {
    let p = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let (by_n, by_t) = (p.by_n().clone(), p.by_t().clone());
    let a1 = item(
        "a",
        "1",
        &[("n", n(5)), ("t", s("m")), ("x", s("xx")), ("y", s("yy"))],
    );
    assert_eq!(
        p.apply_one(put(&a1)),
        written(
            None,
            Some(&a1),
            p.cost(&a1),
            vec![
                ("by_n", entry_size(&by_n, &a1)),
                ("by_t", entry_size(&by_t, &a1))
            ]
        )
    );
    p.check();
    // ALL holds the item; KEYS_ONLY the table keys and the index key, no more.
    assert_eq!(p.entry(1, "a", "1", &n(5)), Some(a1.clone()));
    assert_eq!(
        p.entry(2, "a", "1", &s("m")),
        Some(item("a", "1", &[("t", s("m"))]))
    );
    assert_eq!(p.collection_size("a"), Some(p.cost(&a1)));

    // An item without t is in by_n only (sparse); another collection is apart.
    let a2 = item("a", "2", &[("n", n(7))]);
    assert_eq!(
        p.apply_one(put(&a2)),
        written(
            None,
            Some(&a2),
            p.cost(&a1) + p.cost(&a2),
            vec![("by_n", entry_size(&by_n, &a2))]
        )
    );
    let b1 = item("b", "1", &[("t", s("q"))]);
    assert_eq!(
        p.apply_one(put(&b1)),
        written(
            None,
            Some(&b1),
            p.cost(&b1),
            vec![("by_t", entry_size(&by_t, &b1))]
        )
    );
    p.check();

    // Changing n moves the by_n entry (the old key goes); by_t is untouched.
    let a1_n9 = with(&a1, "n", Some(n(9)));
    assert_eq!(
        p.apply_one(update_returning(
            "a",
            "1",
            "SET n = :n",
            &[(":n", n(9))],
            ReturnValues::AllOld
        )),
        PartitionOutput::WrittenInCollection {
            returned: Some(a1.clone()),
            old_size_bytes: size(&a1),
            new_size_bytes: size(&a1_n9),
            collection_size_bytes: p.cost(&a1_n9) + p.cost(&a2),
            index_writes: writes(&[
                ("by_n", entry_size(&by_n, &a1)),
                ("by_n", entry_size(&by_n, &a1_n9)),
            ]),
        }
    );
    assert_eq!(p.entry(1, "a", "1", &n(5)), None);
    assert_eq!(p.entry(1, "a", "1", &n(9)), Some(a1_n9.clone()));
    p.check();

    // A non-key attribute: the ALL entry is rewritten in place, KEYS_ONLY is not.
    let a1_y = with(&a1_n9, "y", Some(s("a longer value of y")));
    assert_eq!(
        p.apply_one(update(
            "a",
            "1",
            "SET y = :y",
            &[(":y", s("a longer value of y"))]
        )),
        written(
            Some(&a1_n9),
            Some(&a1_y),
            p.cost(&a1_y) + p.cost(&a2),
            vec![("by_n", entry_size(&by_n, &a1_y))]
        )
    );
    assert_eq!(p.entry(1, "a", "1", &n(9)), Some(a1_y.clone()));
    p.check();

    // Removing n takes the item out of by_n.
    let a1_no_n = with(&a1_y, "n", None);
    assert_eq!(
        p.apply_one(update("a", "1", "REMOVE n", &[])),
        written(
            Some(&a1_y),
            Some(&a1_no_n),
            p.cost(&a1_no_n) + p.cost(&a2),
            vec![("by_n", entry_size(&by_n, &a1_y))]
        )
    );
    assert_eq!(p.entry(1, "a", "1", &n(9)), None);
    assert!(p.entry(2, "a", "1", &s("m")).is_some());
    p.check();

    // Changing t moves the by_t entry.
    let a1_t = with(&a1_no_n, "t", Some(s("k")));
    assert_eq!(
        p.apply_one(update("a", "1", "SET t = :t", &[(":t", s("k"))])),
        written(
            Some(&a1_no_n),
            Some(&a1_t),
            p.cost(&a1_t) + p.cost(&a2),
            vec![
                ("by_t", entry_size(&by_t, &a1_no_n)),
                ("by_t", entry_size(&by_t, &a1_t))
            ]
        )
    );
    assert_eq!(p.entry(2, "a", "1", &s("m")), None);
    assert_eq!(
        p.entry(2, "a", "1", &s("k")),
        Some(item("a", "1", &[("t", s("k"))]))
    );
    p.check();

    // A put that gives n back and changes x only: by_n gains its entry,
    // by_t (keys only, same t) is not written.
    let a1_put = with(&with(&a1_t, "n", Some(n(1))), "x", Some(s("other")));
    assert_eq!(
        p.apply_one(put(&a1_put)),
        written(
            Some(&a1_t),
            Some(&a1_put),
            p.cost(&a1_put) + p.cost(&a2),
            vec![("by_n", entry_size(&by_n, &a1_put))]
        )
    );
    p.check();

    // Deletes remove every entry; the last one of a collection its size record.
    assert_eq!(
        p.apply_one(delete("a", "1")),
        written(
            Some(&a1_put),
            None,
            p.cost(&a2),
            vec![
                ("by_n", entry_size(&by_n, &a1_put)),
                ("by_t", entry_size(&by_t, &a1_put))
            ]
        )
    );
    p.check();
    assert_eq!(
        p.apply_one(delete("a", "2")),
        written(Some(&a2), None, 0, vec![("by_n", entry_size(&by_n, &a2))])
    );
    assert_eq!(p.collection_size("a"), None);
    // Deleting what is not there changes nothing, and writes no record.
    assert_eq!(
        p.apply_one(delete("a", "3")),
        written(None, None, 0, vec![])
    );
    assert_eq!(p.collection_size("a"), None);
    p.check();
    assert_eq!(p.sm.stats().item_count(), 1);
}

#[test]
fn an_include_projection_holds_the_keys_and_the_included_attributes() {
    let p = Partition::new(
        Projection::Include(vec!["x".into()]),
        DEFAULT_ITEM_COLLECTION_LIMIT_BYTES,
    );
    let by_t = p.by_t().clone();
    let by_n = p.by_n().clone();
    let a1 = item("a", "1", &[("t", s("m")), ("x", s("xx")), ("y", s("yy"))]);
    p.apply_one(put(&a1));
    assert_eq!(
        p.entry(2, "a", "1", &s("m")),
        Some(item("a", "1", &[("t", s("m")), ("x", s("xx"))]))
    );
    p.check();

    // An included attribute changes: the entry is rewritten.
    let a1_x = with(&a1, "x", Some(s("a longer x")));
    assert_eq!(
        p.apply_one(update("a", "1", "SET x = :x", &[(":x", s("a longer x"))])),
        written(
            Some(&a1),
            Some(&a1_x),
            p.cost(&a1_x),
            vec![("by_t", entry_size(&by_t, &a1_x))]
        )
    );
    // An attribute not projected changes: the entry is not written.
    let a1_y = with(&a1_x, "y", Some(s("yyyyyy")));
    assert_eq!(
        p.apply_one(update("a", "1", "SET y = :y", &[(":y", s("yyyyyy"))])),
        written(Some(&a1_x), Some(&a1_y), p.cost(&a1_y), vec![])
    );
    // The included attribute goes: the entry stays, without it.
    let a1_no_x = with(&a1_y, "x", None);
    assert_eq!(
        p.apply_one(update("a", "1", "REMOVE x", &[])),
        written(
            Some(&a1_y),
            Some(&a1_no_x),
            p.cost(&a1_no_x),
            vec![("by_t", entry_size(&by_t, &a1_no_x))]
        )
    );
    assert_eq!(
        p.entry(2, "a", "1", &s("m")),
        Some(item("a", "1", &[("t", s("m"))]))
    );
    p.check();

    // An update creating an item with both index keys.
    let b1 = item("b", "1", &[("n", n(3)), ("t", s("z")), ("x", s("1"))]);
    assert_eq!(
        p.apply_one(update(
            "b",
            "1",
            "SET n = :n, t = :t, x = :x",
            &[(":n", n(3)), (":t", s("z")), (":x", s("1"))]
        )),
        written(
            None,
            Some(&b1),
            p.cost(&b1),
            vec![
                ("by_n", entry_size(&by_n, &b1)),
                ("by_t", entry_size(&by_t, &b1))
            ]
        )
    );
    p.check();
}

#[test]
fn writes_in_one_round_see_each_others_entries_and_sizes() {
    let p = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let by_n = p.by_n().clone();
    let a1 = item("a", "1", &[("n", n(1)), ("t", s("one"))]);
    let a2 = item("a", "2", &[("n", n(2)), ("t", s("two"))]);
    let a1_n = with(&a1, "n", Some(n(100)));
    let outputs = p.apply(&[
        put(&a1),
        put(&a2),
        update("a", "1", "SET n = :n", &[(":n", n(100))]),
        delete("a", "2"),
    ]);
    let sizes: Vec<u64> = outputs
        .iter()
        .map(|output| match output {
            PartitionOutput::WrittenInCollection {
                collection_size_bytes,
                ..
            } => *collection_size_bytes,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        sizes,
        vec![
            p.cost(&a1),
            p.cost(&a1) + p.cost(&a2),
            p.cost(&a1_n) + p.cost(&a2),
            p.cost(&a1_n)
        ]
    );
    assert_eq!(
        outputs[2],
        written(
            Some(&a1),
            Some(&a1_n),
            p.cost(&a1_n) + p.cost(&a2),
            vec![
                ("by_n", entry_size(&by_n, &a1)),
                ("by_n", entry_size(&by_n, &a1_n))
            ]
        )
    );
    p.check();
    assert_eq!(p.collection_size("a"), Some(p.cost(&a1_n)));
}

#[test]
fn batches_keep_entries_and_report_each_collection() {
    let p = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let (by_n, by_t) = (p.by_n().clone(), p.by_t().clone());
    let a1 = item("a", "1", &[("n", n(1)), ("t", s("one")), ("x", s("x"))]);
    let a2 = item("a", "2", &[("n", n(2))]);
    let b1 = item("b", "1", &[("t", s("b"))]);
    let outputs = p.apply(&[PartitionCommand::Batch {
        ops: vec![batch_put(&a1), batch_put(&a2), batch_put(&b1)],
    }]);
    let a_size = p.cost(&a1) + p.cost(&a2);
    assert_eq!(
        outputs,
        vec![PartitionOutput::BatchWrittenInCollections {
            old_sizes_bytes: vec![0, 0, 0],
            collection_sizes_bytes: vec![a_size, a_size, p.cost(&b1)],
            index_writes: vec![
                writes(&[
                    ("by_n", entry_size(&by_n, &a1)),
                    ("by_t", entry_size(&by_t, &a1))
                ]),
                writes(&[("by_n", entry_size(&by_n, &a2))]),
                writes(&[("by_t", entry_size(&by_t, &b1))]),
            ],
        }]
    );
    p.check();

    // Deletes, a put moving an entry, a put into another collection, a
    // delete of nothing.
    let a2_moved = item("a", "2", &[("n", n(20)), ("t", s("now"))]);
    let b2 = item("b", "2", &[("n", n(5)), ("t", s("b2"))]);
    let outputs = p.apply(&[PartitionCommand::Batch {
        ops: vec![
            batch_delete("a", "1"),
            batch_put(&a2_moved),
            batch_put(&b2),
            batch_delete("c", "1"),
        ],
    }]);
    let b_size = p.cost(&b1) + p.cost(&b2);
    assert_eq!(
        outputs,
        vec![PartitionOutput::BatchWrittenInCollections {
            old_sizes_bytes: vec![size(&a1), size(&a2), 0, 0],
            collection_sizes_bytes: vec![p.cost(&a2_moved), p.cost(&a2_moved), b_size, 0],
            index_writes: vec![
                writes(&[
                    ("by_n", entry_size(&by_n, &a1)),
                    ("by_t", entry_size(&by_t, &a1))
                ]),
                writes(&[
                    ("by_n", entry_size(&by_n, &a2)),
                    ("by_n", entry_size(&by_n, &a2_moved)),
                    ("by_t", entry_size(&by_t, &a2_moved)),
                ]),
                writes(&[
                    ("by_n", entry_size(&by_n, &b2)),
                    ("by_t", entry_size(&by_t, &b2))
                ]),
                writes(&[]),
            ],
        }]
    );
    assert_eq!(p.entry(1, "a", "2", &n(2)), None);
    p.check();
    assert_eq!(p.collection_size("c"), None);

    // A batch emptying a collection removes its size record.
    p.apply(&[PartitionCommand::Batch {
        ops: vec![batch_delete("b", "1"), batch_delete("b", "2")],
    }]);
    assert_eq!(p.collection_size("b"), None);
    p.check();
    assert_eq!(p.sm.stats().item_count(), 1);
}

// ---------------------------------------------------------------------------
// 2. Index key validation

#[test]
fn an_index_key_of_the_wrong_type_or_empty_is_refused_with_nothing_written() {
    let p = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let a1 = item("a", "1", &[("n", n(5)), ("t", s("m"))]);
    p.apply_one(put(&a1));
    let before = p.state();
    let n_is_a_string = WriteRejection::IndexKeyType {
        index: "by_n".into(),
        attribute: "n".into(),
        expected: "N".into(),
        actual: "S".into(),
    };

    assert_eq!(
        p.apply_one(update("a", "1", "SET n = :v", &[(":v", s("five"))])),
        PartitionOutput::Refused(n_is_a_string.clone())
    );
    assert_eq!(p.state(), before);
    assert_eq!(
        p.apply_one(update("a", "1", "SET t = :v", &[(":v", s(""))])),
        PartitionOutput::Refused(WriteRejection::IndexKeyEmpty { binary: false })
    );
    assert_eq!(p.state(), before);
    // Both wrong: the first index by name is reported.
    assert_eq!(
        p.apply_one(update(
            "a",
            "1",
            "SET t = :e, n = :v",
            &[(":e", s("")), (":v", s("five"))]
        )),
        PartitionOutput::Refused(n_is_a_string.clone())
    );
    // Puts and creating updates are checked too.
    assert_eq!(
        p.apply_one(put(&item("a", "9", &[("n", s("five"))]))),
        PartitionOutput::Refused(n_is_a_string.clone())
    );
    assert_eq!(
        p.apply_one(put(&item("a", "9", &[("t", s(""))]))),
        PartitionOutput::Refused(WriteRejection::IndexKeyEmpty { binary: false })
    );
    assert_eq!(
        p.apply_one(update("c", "1", "SET n = :v", &[(":v", s("five"))])),
        PartitionOutput::Refused(n_is_a_string)
    );
    assert_eq!(p.state(), before);

    // A batch with one bad put is refused whole.
    assert_eq!(
        p.apply_one(PartitionCommand::Batch {
            ops: vec![
                batch_put(&item("b", "1", &[("n", n(1))])),
                batch_delete("a", "1"),
                batch_put(&item("b", "2", &[("t", n(1))])),
            ],
        }),
        PartitionOutput::Refused(WriteRejection::IndexKeyType {
            index: "by_t".into(),
            attribute: "t".into(),
            expected: "S".into(),
            actual: "N".into(),
        })
    );
    assert_eq!(p.state(), before);

    // A refusal leaves nothing in its round: the next write of the round
    // sees the item and its entries as they were.
    let a1_t = with(&a1, "t", Some(s("k")));
    let outputs = p.apply(&[
        update("a", "1", "SET n = :v", &[(":v", s("five"))]),
        update("a", "1", "SET t = :v", &[(":v", s("k"))]),
    ]);
    assert_eq!(
        outputs[0],
        PartitionOutput::Refused(WriteRejection::IndexKeyType {
            index: "by_n".into(),
            attribute: "n".into(),
            expected: "N".into(),
            actual: "S".into(),
        })
    );
    assert_eq!(
        outputs[1],
        written(
            Some(&a1),
            Some(&a1_t),
            p.cost(&a1_t),
            // by_n projects ALL, so a new t rewrites its entry too.
            vec![
                ("by_t", entry_size(p.by_t(), &a1)),
                ("by_n", entry_size(p.by_n(), &a1_t)),
                ("by_t", entry_size(p.by_t(), &a1_t))
            ]
        )
    );
    assert_eq!(p.get("a", "1"), Some(a1_t));
    p.check();
}

// ---------------------------------------------------------------------------
// 3. Item collection sizes and their limit

#[test]
fn a_collection_may_not_grow_past_its_limit_but_may_shrink() {
    let indexes = indexes(Projection::KeysOnly);
    let big = |pk: &str, sk: &str, number: i64| {
        item(
            pk,
            sk,
            &[("n", n(number)), ("t", s("t")), ("y", s(&"y".repeat(300)))],
        )
    };
    let (a1, a2, a3, a4) = (
        big("a", "1", 1),
        big("a", "2", 2),
        big("a", "3", 3),
        big("a", "4", 4),
    );
    // The limit is exactly two such items with their entries.
    let limit = cost(&indexes, &a1) + cost(&indexes, &a2);
    assert_eq!(cost(&indexes, &a3), cost(&indexes, &a2));
    let storage = Storage::in_memory();
    let p = Partition {
        sm: open(&storage, GROUP, FULL, &indexes, limit),
        storage,
        indexes,
    };
    let outputs = p.apply(&[put(&a1), put(&a2)]);
    assert!(matches!(
        outputs[1],
        PartitionOutput::WrittenInCollection { collection_size_bytes, .. } if collection_size_bytes == limit
    ));
    assert_eq!(p.collection_size("a"), Some(limit));
    p.check();

    // Full: a put, a growing update, a batch that would overfill are refused.
    let before = p.state();
    assert_eq!(
        p.apply_one(put(&a3)),
        PartitionOutput::Refused(WriteRejection::ItemCollectionTooLarge)
    );
    assert_eq!(p.state(), before);
    assert_eq!(
        p.apply_one(update("a", "1", "SET z = :z", &[(":z", s("z"))])),
        PartitionOutput::Refused(WriteRejection::ItemCollectionTooLarge)
    );
    assert_eq!(p.state(), before);
    let b1 = big("b", "1", 1);
    assert_eq!(
        p.apply_one(PartitionCommand::Batch {
            ops: vec![batch_put(&b1), batch_put(&a3)],
        }),
        PartitionOutput::Refused(WriteRejection::ItemCollectionTooLarge)
    );
    assert_eq!(p.state(), before);
    // Puts that fit one by one but not all together are refused together.
    assert_eq!(
        p.apply_one(PartitionCommand::Batch {
            ops: vec![
                batch_put(&b1),
                batch_put(&big("b", "2", 2)),
                batch_put(&big("b", "3", 3))
            ],
        }),
        PartitionOutput::Refused(WriteRejection::ItemCollectionTooLarge)
    );
    assert_eq!(p.state(), before);

    // A write that does not grow it, and another collection, are fine.
    let a1_moved = with(&a1, "n", Some(n(8)));
    assert_eq!(cost(&p.indexes, &a1_moved), cost(&p.indexes, &a1));
    assert!(matches!(
        p.apply_one(update("a", "1", "SET n = :n", &[(":n", n(8))])),
        PartitionOutput::WrittenInCollection { collection_size_bytes, .. } if collection_size_bytes == limit
    ));
    assert!(matches!(
        p.apply_one(put(&b1)),
        PartitionOutput::WrittenInCollection { .. }
    ));
    // A batch replacing one item by another of the same size fits.
    assert!(matches!(
        p.apply_one(PartitionCommand::Batch {
            ops: vec![batch_delete("a", "2"), batch_put(&a3)],
        }),
        PartitionOutput::BatchWrittenInCollections { .. }
    ));
    p.check();

    // A delete frees room.
    assert_eq!(
        p.apply_one(delete("a", "1")),
        written(
            Some(&a1_moved),
            None,
            p.cost(&a3),
            vec![
                ("by_n", entry_size(p.by_n(), &a1_moved)),
                ("by_t", entry_size(p.by_t(), &a1_moved))
            ]
        )
    );
    assert!(matches!(
        p.apply_one(put(&a4)),
        PartitionOutput::WrittenInCollection { collection_size_bytes, .. } if collection_size_bytes == limit
    ));
    p.check();

    // With a lower limit the collection is over it: a shrinking write is
    // allowed (even if it stays over), a growing one is not.
    let a3_small = with(&a3, "y", None);
    let shrunk = p.cost(&a3_small) + p.cost(&a4);
    let lower = shrunk - 1;
    let p = p.reopen(lower);
    assert!(shrunk > lower, "the premise: still over the limit after");
    assert_eq!(
        p.apply_one(update("a", "3", "REMOVE y", &[])),
        written(
            Some(&a3),
            Some(&a3_small),
            shrunk,
            vec![("by_n", entry_size(p.by_n(), &a3_small))]
        )
    );
    let before = p.state();
    assert_eq!(
        p.apply_one(update("a", "3", "SET z = :z", &[(":z", s("z"))])),
        PartitionOutput::Refused(WriteRejection::ItemCollectionTooLarge)
    );
    assert_eq!(p.state(), before);
    assert_eq!(
        p.apply_one(delete("a", "4")),
        written(
            Some(&a4),
            None,
            p.cost(&a3_small),
            vec![
                ("by_n", entry_size(p.by_n(), &a4)),
                ("by_t", entry_size(p.by_t(), &a4))
            ]
        )
    );
    p.check();
}

// ---------------------------------------------------------------------------
// 4. Snapshots

/// Items over several collections, some in one index only.
fn leader_items() -> Vec<Item> {
    let mut items = Vec::new();
    for i in 0..12i64 {
        let pk = format!("k{i}");
        items.push(item(
            &pk,
            "1",
            &[("n", n(i)), ("t", s(&format!("t{i}"))), ("x", s("x"))],
        ));
        items.push(item(&pk, "2", &[("n", n(i * 10))]));
        items.push(item(&pk, "3", &[("t", s("only t")), ("y", s("y"))]));
    }
    // A partition key holding the escape byte.
    items.push(item("z\u{0}z", "1", &[("n", n(1)), ("t", s("\u{0}"))]));
    items
}

/// Writes `records` straight into `keyspace` (bypassing the state machine).
fn write_raw(storage: &Storage, keyspace: &Keyspace, records: &[(Vec<u8>, Vec<u8>)]) {
    let mut batch = WriteBatch::new();
    for (key, value) in records {
        batch.put(keyspace, key.clone(), value.clone());
    }
    storage.commit(batch, Durability::Buffered).unwrap();
}

#[test]
fn an_export_with_local_indexes_replaces_a_followers_items_entries_and_sizes() {
    let leader = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let puts: Vec<PartitionCommand> = leader_items().iter().map(put).collect();
    leader.apply(&puts);
    leader.check();

    // A follower with stale items (one at the same key with another n),
    // an item the leader does not have, and an entry and a size record
    // no item accounts for.
    let follower = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    follower.apply(&[
        put(&item("k3", "1", &[("n", n(333)), ("t", s("stale"))])),
        put(&item("k3", "4", &[("n", n(4)), ("t", s("stale"))])),
        put(&item("only-here", "1", &[("n", n(1)), ("t", s("x"))])),
    ]);
    let ghost_entry = encode_local_index_key(2, &row_key("ghost", "1"), &s("g")).unwrap();
    write_raw(
        &follower.storage,
        &follower.lsi(),
        &[
            (ghost_entry.clone(), vec![0, 0, 0, 0]),
            (collection_key("ghost"), 12345u64.to_be_bytes().to_vec()),
        ],
    );

    let view = leader.storage.read_view();
    transfer_state(&leader.sm, &view, &follower.sm, &follower.storage).expect("transfer");

    assert_eq!(dump(&follower.items()), dump(&leader.items()));
    assert_eq!(dump(&follower.lsi()), dump(&leader.lsi()));
    assert_eq!(follower.lsi().get(&ghost_entry).unwrap(), None);
    assert_eq!(follower.collection_size("ghost"), None);
    assert_eq!(follower.collection_size("only-here"), None);
    assert_eq!(follower.collection_size("k3"), leader.collection_size("k3"));
    assert_eq!(
        follower.sm.stats().item_count(),
        leader.sm.stats().item_count()
    );
    assert_eq!(
        follower.sm.stats().size_bytes(),
        leader.sm.stats().size_bytes()
    );
    assert_eq!(follower.sm.range(), FULL);
    follower.check();

    // Both go on applying the same commands identically, after a restart too.
    let follower = follower.reopen(DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let more = [
        update("k3", "1", "SET n = :n", &[(":n", n(-1))]),
        delete("k4", "1"),
        put(&item("k3", "9", &[("n", n(9)), ("t", s("new"))])),
        PartitionCommand::Batch {
            ops: vec![
                batch_delete("k5", "3"),
                batch_put(&item("k6", "7", &[("t", s("b"))])),
            ],
        },
    ];
    assert_eq!(leader.apply(&more), follower.apply(&more));
    assert_eq!(dump(&follower.items()), dump(&leader.items()));
    assert_eq!(dump(&follower.lsi()), dump(&leader.lsi()));
    follower.check();
}

#[test]
fn an_import_replaces_only_the_exported_range() {
    // The leader split: it owns the lower tokens only, though the upper
    // items and entries are still in its keyspaces (the new partition's).
    let leader = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let puts: Vec<PartitionCommand> = leader_items().iter().map(put).collect();
    leader.apply(&puts);
    let mut tokens: Vec<u64> = leader_items()
        .iter()
        .map(|item| row_key_token(&row_key_of(item)).unwrap())
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    let at_token = tokens[tokens.len() / 2];
    assert!(matches!(
        leader.apply_one(PartitionCommand::Split { at_token }),
        PartitionOutput::Split { .. }
    ));
    assert_eq!(leader.sm.range(), (0, at_token - 1));
    leader.check();

    // A follower that did not apply the split, with stale contents in both halves.
    let follower = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let stale: Vec<PartitionCommand> = (0..12)
        .flat_map(|i| {
            let pk = format!("k{i}");
            [
                put(&item(&pk, "1", &[("n", n(1000 + i)), ("t", s("stale"))])),
                put(&item(&pk, "5", &[("n", n(5)), ("y", s("stale"))])),
            ]
        })
        .chain((0..6).map(|i| put(&item(&format!("f{i}"), "1", &[("n", n(i)), ("t", s("f"))]))))
        .collect();
    follower.apply(&stale);
    let upper = |key: &[u8], token_at: usize| -> bool {
        let token = u64::from_be_bytes(key[token_at..token_at + 8].try_into().unwrap());
        token >= at_token
    };
    let split = |dump: BTreeMap<Vec<u8>, Vec<u8>>, token_at: usize, want_upper: bool| {
        dump.into_iter()
            .filter(|(key, _)| upper(key, token_at) == want_upper)
            .collect::<BTreeMap<_, _>>()
    };
    let follower_upper_items = split(dump(&follower.items()), 0, true);
    let follower_upper_lsi = split(dump(&follower.lsi()), 1, true);
    assert!(!follower_upper_items.is_empty() && !follower_upper_lsi.is_empty());
    assert!(!split(dump(&follower.items()), 0, false).is_empty());

    let view = leader.storage.read_view();
    transfer_state(&leader.sm, &view, &follower.sm, &follower.storage).expect("transfer");

    assert_eq!(follower.sm.range(), (0, at_token - 1));
    // The exported range is the leader's ...
    assert_eq!(
        split(dump(&follower.items()), 0, false),
        split(dump(&leader.items()), 0, false)
    );
    assert_eq!(
        split(dump(&follower.lsi()), 1, false),
        split(dump(&leader.lsi()), 1, false)
    );
    // ... the rest is left as it was, for the partition that owns it.
    assert_eq!(
        split(dump(&follower.items()), 0, true),
        follower_upper_items
    );
    assert_eq!(split(dump(&follower.lsi()), 1, true), follower_upper_lsi);
    assert_eq!(
        follower.sm.stats().item_count(),
        leader.sm.stats().item_count()
    );
    assert_eq!(
        follower.sm.stats().size_bytes(),
        leader.sm.stats().size_bytes()
    );
    follower.check();
}

#[test]
fn a_split_leaves_entries_and_sizes_to_the_new_partition() {
    let lower = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let items = leader_items();
    let puts: Vec<PartitionCommand> = items.iter().map(put).collect();
    lower.apply(&puts);
    let mut tokens: Vec<u64> = items
        .iter()
        .map(|item| row_key_token(&row_key_of(item)).unwrap())
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    let at_token = tokens[tokens.len() / 2];
    lower.apply_one(PartitionCommand::Split { at_token });
    let upper = Partition {
        storage: lower.storage.clone(),
        indexes: lower.indexes.clone(),
        sm: open(
            &lower.storage,
            GROUP + 1,
            (at_token, u64::MAX),
            &lower.indexes,
            DEFAULT_ITEM_COLLECTION_LIMIT_BYTES,
        ),
    };
    upper.check();
    lower.check();
    // Each goes on with its own collections.
    let in_upper = items
        .iter()
        .find(|item| row_key_token(&row_key_of(item)).unwrap() >= at_token)
        .unwrap();
    let (pk, sk) = keys_of(in_upper);
    let before = upper.collection_size(&pk).unwrap();
    let changed = with(in_upper, "n", Some(n(123_456)));
    let output = upper.apply_one(update(&pk, &sk, "SET n = :n", &[(":n", n(123_456))]));
    let expected = before - upper.cost(in_upper) + upper.cost(&changed);
    assert!(matches!(
        output,
        PartitionOutput::WrittenInCollection { collection_size_bytes, .. } if collection_size_bytes == expected
    ));
    assert_eq!(
        lower.apply_one(update(&pk, &sk, "SET n = :n", &[(":n", n(1))])),
        PartitionOutput::WrongPartition
    );
    upper.check();
    lower.check();
}

#[test]
fn an_import_committed_in_several_batches_still_replaces_every_entry() {
    // About 12 MB of items and as much of ALL entries: the import commits
    // its writes in several batches (8 MiB each), some inside the index
    // section, while stale entries interleave with the exported ones.
    let leader = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let big = "y".repeat(300_000);
    let puts: Vec<PartitionCommand> = (0..40i64)
        .map(|i| {
            put(&item(
                &format!("k{}", i % 8),
                &format!("{i}"),
                &[("n", n(2 * i)), ("t", s(&format!("t{i}"))), ("y", s(&big))],
            ))
        })
        .collect();
    leader.apply(&puts);
    let follower = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let stale: Vec<PartitionCommand> = (0..60i64)
        .map(|i| {
            put(&item(
                &format!("k{}", i % 8),
                &format!("{i}"),
                &[
                    ("n", n(2 * i + 1)),
                    ("t", s(&format!("s{i}"))),
                    ("y", s("stale")),
                ],
            ))
        })
        .collect();
    follower.apply(&stale);
    let view = leader.storage.read_view();
    transfer_state(&leader.sm, &view, &follower.sm, &follower.storage).expect("transfer");
    assert_eq!(dump(&follower.items()), dump(&leader.items()));
    assert_eq!(dump(&follower.lsi()), dump(&leader.lsi()));
    follower.check();
}

/// A snapshot as an import reads it: its header and its records.
type Exported = (Vec<u8>, Vec<Record>);

/// A state machine that only records what an import reads.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Option<Exported>>,
}

impl GroupStateMachine for Recorder {
    type Output = ();

    fn apply(&self, _: &mut ApplyContext, _: u64, _: &[u8]) -> Result<(), StorageError> {
        Ok(())
    }

    fn import(&self, input: &mut SnapshotReader, _: &mut ImportWriter) -> Result<(), StorageError> {
        let header = input.header().to_vec();
        let mut records = Vec::new();
        while let Some(record) = input.next_record()? {
            records.push(record);
        }
        *self.seen.lock().unwrap() = Some((header, records));
        Ok(())
    }
}

fn exported(sm: &PartitionStateMachine, storage: &Storage) -> Exported {
    let recorder = Recorder::default();
    transfer_state(sm, &storage.read_view(), &recorder, &Storage::in_memory()).unwrap();
    recorder.seen.lock().unwrap().take().unwrap()
}

#[test]
fn a_table_without_local_indexes_exports_the_old_format() {
    let storage = Storage::in_memory();
    let plain = open(&storage, GROUP, FULL, &[], 0);
    let puts: Vec<PartitionCommand> = leader_items().iter().map(put).collect();
    let outputs = apply_round(&plain, &storage, &puts);
    assert!(
        outputs
            .iter()
            .all(|o| matches!(o, PartitionOutput::Written { .. }))
    );
    assert!(!storage.keyspace_exists(LSI) || dump(&storage.keyspace(LSI).unwrap()).is_empty());

    // The header is the range alone, the records the items as stored.
    let (header, records) = exported(&plain, &storage);
    let mut range = 0u64.to_be_bytes().to_vec();
    range.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(header, range);
    let items: Vec<(Vec<u8>, Vec<u8>)> = dump(&storage.keyspace(ITEMS).unwrap())
        .into_iter()
        .collect();
    assert_eq!(records, items);

    // Two plain partitions still transfer.
    let other = Storage::in_memory();
    let follower = open(&other, GROUP, FULL, &[], 0);
    apply_round(
        &follower,
        &other,
        &[put(&item("k3", "1", &[("n", s("stale"))]))],
    );
    transfer_state(&plain, &storage.read_view(), &follower, &other).unwrap();
    assert_eq!(
        dump(&other.keyspace(ITEMS).unwrap()),
        dump(&storage.keyspace(ITEMS).unwrap())
    );
    assert_eq!(follower.stats().item_count(), plain.stats().item_count());

    // With local indexes: a marked header, then items, then the index keyspace.
    let leader = Partition::new(Projection::KeysOnly, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    leader.apply(&puts);
    let (header, records) = exported(&leader.sm, &leader.storage);
    let mut marked = range.clone();
    marked.push(b'L');
    assert_eq!(header, marked);
    let tagged = |tag: u8, dump: BTreeMap<Vec<u8>, Vec<u8>>| {
        dump.into_iter().map(move |(key, value)| {
            let mut with_tag = vec![tag];
            with_tag.extend_from_slice(&key);
            (with_tag, value)
        })
    };
    let expected: Vec<(Vec<u8>, Vec<u8>)> = tagged(0, dump(&leader.items()))
        .chain(tagged(1, dump(&leader.lsi())))
        .collect();
    assert_eq!(records, expected);
}

// ---------------------------------------------------------------------------
// 5. Reopening

#[test]
fn a_reopened_partition_goes_on_from_its_entries_and_sizes() {
    let p = Partition::new(
        Projection::Include(vec!["x".into()]),
        DEFAULT_ITEM_COLLECTION_LIMIT_BYTES,
    );
    let a1 = item("a", "1", &[("n", n(1)), ("t", s("one")), ("x", s("x1"))]);
    let a2 = item("a", "2", &[("n", n(2)), ("t", s("two"))]);
    p.apply(&[put(&a1), put(&a2)]);
    p.apply(&[update("a", "2", "SET x = :x", &[(":x", s("x2"))])]);
    let a2 = with(&a2, "x", Some(s("x2")));
    p.check();

    let p = p.reopen(DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    assert_eq!(p.sm.stats().item_count(), 2);
    p.check();
    let a1_n = with(&a1, "n", Some(n(11)));
    let a3 = item("a", "3", &[("t", s("three"))]);
    let outputs = p.apply(&[
        update("a", "1", "SET n = :n", &[(":n", n(11))]),
        put(&a3),
        delete("a", "2"),
    ]);
    assert_eq!(
        outputs,
        vec![
            written(
                Some(&a1),
                Some(&a1_n),
                p.cost(&a1_n) + p.cost(&a2),
                vec![
                    ("by_n", entry_size(p.by_n(), &a1)),
                    ("by_n", entry_size(p.by_n(), &a1_n))
                ]
            ),
            written(
                None,
                Some(&a3),
                p.cost(&a1_n) + p.cost(&a2) + p.cost(&a3),
                vec![("by_t", entry_size(p.by_t(), &a3))]
            ),
            written(
                Some(&a2),
                None,
                p.cost(&a1_n) + p.cost(&a3),
                vec![
                    ("by_n", entry_size(p.by_n(), &a2)),
                    ("by_t", entry_size(p.by_t(), &a2))
                ]
            ),
        ]
    );
    p.check();
    let p = p.reopen(DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    p.check();
    assert_eq!(p.collection_size("a"), Some(p.cost(&a1_n) + p.cost(&a3)));
}
