//! Global secondary index maintenance, property-tested against the
//! in-memory engine: whatever the order in which a table's outbox records
//! reach the index partitions (reordered, repeated, re-shipped by a new
//! leader, delivered late after a trim), and whatever splits the table's
//! partitions go through, once everything is delivered each index
//! partition holds exactly the projection of the table's items.
//!
//! A second property applies every table partition's log on a follower
//! replica that groups the entries into apply rounds differently (as a
//! lagging follower, or a restart replaying its log, does): its state must
//! be the leader's.
//!
//! The expected index entries are computed here, independently of the
//! state machine, from the items the table stores (and the items are
//! checked against a model of the writes). No proptest: a seeded xorshift
//! generates plans, and a failing plan is shrunk by removing steps.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};

use atoll_model::table::{KeyAttribute, KeySchema, Projection, ScalarType};
use atoll_model::{
    AttributeValue, Item, Number, decode_item, encode_global_index_key, encode_item,
    encode_row_key, item_size_bytes, row_key_prefix_for_partition,
};
use atoll_partition::{
    GlobalIndexSet, GlobalIndexSpec, IndexEntryChange, ItemWrite, OutboxEntry, PartitionCommand,
    PartitionOutput, PartitionStateMachine, ReturnValues, TokenRange, WriteAction, WriteOp,
    WriteRejection, row_key_token,
};
use atoll_replication::{ApplyContext, GroupStateMachine};
use atoll_storage::{Durability, Keyspace, Storage, WriteBatch};

const TABLE_GROUP: u64 = 16;
const FULL: TokenRange = (0, u64::MAX);
/// The hidden table of index `by_g` (`g` S HASH, `n` N RANGE, INCLUDE v).
const BY_G: &str = "t.by_g";
/// The hidden table of index `by_v` (`v` S HASH, KEYS_ONLY).
const BY_V: &str = "t.by_v";
const INDEX_TABLES: [&str; 2] = [BY_G, BY_V];
/// Items are `p0`..`p7`.
const KEYS: u8 = 8;
const VALUES: [&str; 3] = ["a", "b", "c"];

// ---------------------------------------------------------------------------
// Randomness

/// xorshift64*: small, seedable, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut rng = Rng((seed ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1);
        for _ in 0..4 {
            rng.next();
        }
        rng
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next() % n
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------
// Schema, items, keys

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn num(value: i64) -> AttributeValue {
    AttributeValue::N(Number::from_i64(value))
}

fn key_attribute(name: &str, scalar_type: ScalarType) -> KeyAttribute {
    KeyAttribute {
        name: name.into(),
        scalar_type,
    }
}

fn table_keys() -> KeySchema {
    KeySchema {
        partition_key: key_attribute("pk", ScalarType::S),
        sort_key: None,
    }
}

fn index_set() -> GlobalIndexSet {
    GlobalIndexSet {
        epoch: 1,
        indexes: vec![
            GlobalIndexSpec {
                name: "by_g".into(),
                index_table: BY_G.into(),
                key_schema: KeySchema {
                    partition_key: key_attribute("g", ScalarType::S),
                    sort_key: Some(key_attribute("n", ScalarType::N)),
                },
                projection: Projection::Include(vec!["v".into()]),
            },
            GlobalIndexSpec {
                name: "by_v".into(),
                index_table: BY_V.into(),
                key_schema: KeySchema {
                    partition_key: key_attribute("v", ScalarType::S),
                    sort_key: None,
                },
                projection: Projection::KeysOnly,
            },
        ],
    }
}

fn pk_name(pk: u8) -> String {
    format!("p{pk}")
}

fn row_key(pk: u8) -> Vec<u8> {
    encode_row_key(&s(&pk_name(pk)), None).unwrap()
}

fn token(pk: u8) -> u64 {
    row_key_token(&row_key(pk)).unwrap()
}

/// A value of an index key attribute as a write gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    S(&'static str),
    /// An empty string: refused as an index key.
    Empty,
    /// A number: the wrong type for either index's key.
    Num(i64),
}

impl Key {
    fn value(self) -> AttributeValue {
        match self {
            Key::S(text) => s(text),
            Key::Empty => s(""),
            Key::Num(n) => num(n),
        }
    }
}

/// An item written whole (its `pk` aside).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Spec {
    g: Option<Key>,
    n: Option<i64>,
    v: Option<Key>,
    /// An attribute neither index projects.
    x: Option<i64>,
}

impl Spec {
    fn item(&self, pk: u8) -> Item {
        let mut item = Item::new();
        item.insert("pk".into(), s(&pk_name(pk)));
        if let Some(g) = self.g {
            item.insert("g".into(), g.value());
        }
        if let Some(n) = self.n {
            item.insert("n".into(), num(n));
        }
        if let Some(v) = self.v {
            item.insert("v".into(), v.value());
        }
        if let Some(x) = self.x {
            item.insert("x".into(), num(x));
        }
        item
    }
}

/// An UpdateItem, by the expression it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Upd {
    /// `SET g = :g`
    SetG(Key),
    /// `REMOVE g`
    RemoveG,
    /// `SET v = :v, n = :n`
    SetVN(Key, i64),
    /// `REMOVE v, n`
    RemoveVN,
    /// `ADD n :d`
    AddN(i64),
    /// `SET x = :x`
    SetX(i64),
    /// `SET g = :g REMOVE v`
    SetGRemoveV(Key),
}

impl Upd {
    fn expression(&self) -> (&'static str, Vec<(&'static str, AttributeValue)>) {
        match self {
            Upd::SetG(g) => ("SET g = :g", vec![(":g", g.value())]),
            Upd::RemoveG => ("REMOVE g", vec![]),
            Upd::SetVN(v, n) => (
                "SET v = :v, n = :n",
                vec![(":v", v.value()), (":n", num(*n))],
            ),
            Upd::RemoveVN => ("REMOVE v, n", vec![]),
            Upd::AddN(d) => ("ADD n :d", vec![(":d", num(*d))]),
            Upd::SetX(x) => ("SET x = :x", vec![(":x", num(*x))]),
            Upd::SetGRemoveV(g) => ("SET g = :g REMOVE v", vec![(":g", g.value())]),
        }
    }

    /// The item the update leaves (the model): `None` when a missing item
    /// stays missing (an update that only removes).
    fn apply(&self, pk: u8, old: Option<&Item>) -> Option<Item> {
        let removes_only = matches!(self, Upd::RemoveG | Upd::RemoveVN);
        if old.is_none() && removes_only {
            return None;
        }
        let mut item = old.cloned().unwrap_or_else(|| {
            let mut key = Item::new();
            key.insert("pk".into(), s(&pk_name(pk)));
            key
        });
        match self {
            Upd::SetG(g) => {
                item.insert("g".into(), g.value());
            }
            Upd::RemoveG => {
                item.remove("g");
            }
            Upd::SetVN(v, n) => {
                item.insert("v".into(), v.value());
                item.insert("n".into(), num(*n));
            }
            Upd::RemoveVN => {
                item.remove("v");
                item.remove("n");
            }
            Upd::AddN(d) => {
                let before = match item.get("n") {
                    Some(AttributeValue::N(n)) => n.to_string().parse::<i64>().unwrap(),
                    _ => 0,
                };
                item.insert("n".into(), num(before + d));
            }
            Upd::SetX(x) => {
                item.insert("x".into(), num(*x));
            }
            Upd::SetGRemoveV(g) => {
                item.insert("g".into(), g.value());
                item.remove("v");
            }
        }
        Some(item)
    }
}

/// Whether either index refuses the item's keys (wrong type, empty string).
fn valid(item: &Item) -> bool {
    ["g", "n", "v"]
        .iter()
        .all(|name| match (*name, item.get(*name)) {
            (_, None) => true,
            ("n", Some(AttributeValue::N(_))) => true,
            ("g" | "v", Some(AttributeValue::S(text))) => !text.is_empty(),
            _ => false,
        })
}

/// An item, shortly.
fn show(item: &Item) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in item.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let text = match value {
            AttributeValue::S(text) => format!("{text:?}"),
            AttributeValue::N(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        let _ = write!(out, "{name}={text}");
    }
    out.push('}');
    out
}

fn show_opt(item: Option<&Item>) -> String {
    item.map_or_else(|| "-".into(), show)
}

// ---------------------------------------------------------------------------
// Plans

/// A batch's writes: puts (`Some`) and deletes.
type BatchOps = Vec<(u8, Option<Spec>)>;

/// One command a client sends (routed to the partition owning its key).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cmd {
    Put(u8, Spec),
    Delete(u8),
    Update(u8, Upd),
    /// A BatchWriteItem, on distinct keys.
    Batch(BatchOps),
    /// Split the table partition owning this token there.
    Split(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// Commands, applied in one round per partition they go to.
    Round(Vec<Cmd>),
    /// The shipper delivers a random part of the outboxes, in random
    /// order, some records again, then trims random delivered prefixes.
    Ship(u64),
    /// Stale deliveries: records shipped long ago (maybe trimmed since)
    /// arrive again.
    Stale(u64),
    /// The follower applies some of the entries it lags behind.
    Follow(u64),
}

fn gen_key(rng: &mut Rng) -> Option<Key> {
    match rng.below(100) {
        0..25 => None,
        25..27 => Some(Key::Num(1)),
        27..29 => Some(Key::Empty),
        _ => Some(Key::S(VALUES[rng.index(VALUES.len())])),
    }
}

fn gen_good_key(rng: &mut Rng) -> Key {
    match rng.below(100) {
        0..3 => Key::Num(2),
        3..5 => Key::Empty,
        _ => Key::S(VALUES[rng.index(VALUES.len())]),
    }
}

fn gen_spec(rng: &mut Rng) -> Spec {
    Spec {
        g: gen_key(rng),
        n: (!rng.chance(1, 6)).then(|| rng.below(3) as i64),
        v: gen_key(rng),
        x: rng.chance(1, 3).then(|| rng.below(3) as i64),
    }
}

fn gen_upd(rng: &mut Rng) -> Upd {
    match rng.below(7) {
        0 => Upd::SetG(gen_good_key(rng)),
        1 => Upd::RemoveG,
        2 => Upd::SetVN(gen_good_key(rng), rng.below(3) as i64),
        3 => Upd::RemoveVN,
        4 => Upd::AddN(rng.below(3) as i64 - 1),
        5 => Upd::SetX(rng.below(3) as i64),
        _ => Upd::SetGRemoveV(gen_good_key(rng)),
    }
}

fn gen_cmd(rng: &mut Rng) -> Cmd {
    let pk = rng.below(u64::from(KEYS)) as u8;
    match rng.below(100) {
        0..40 => Cmd::Put(pk, gen_spec(rng)),
        40..52 => Cmd::Delete(pk),
        52..82 => Cmd::Update(pk, gen_upd(rng)),
        82..97 => {
            let mut keys: Vec<u8> = (0..KEYS).collect();
            rng.shuffle(&mut keys);
            let len = 1 + rng.index(4);
            Cmd::Batch(
                keys[..len]
                    .iter()
                    .map(|&pk| (pk, (!rng.chance(1, 4)).then(|| gen_spec(rng))))
                    .collect(),
            )
        }
        // Split where an item is (so it moves), or anywhere.
        _ if rng.chance(1, 2) => Cmd::Split(token(pk)),
        _ => Cmd::Split(rng.next()),
    }
}

fn gen_plan(seed: u64) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let len = 30 + rng.below(171);
    (0..len)
        .map(|_| match rng.below(100) {
            0..55 => Step::Round((0..1 + rng.below(4)).map(|_| gen_cmd(&mut rng)).collect()),
            55..85 => Step::Ship(rng.next()),
            85..90 => Step::Stale(rng.next()),
            _ => Step::Follow(rng.next()),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Replicas

/// One replica of the table's partitions: their state machines on one storage.
struct TableReplica {
    storage: Storage,
    items: Keyspace,
    stats: Keyspace,
    aux: Keyspace,
    parts: BTreeMap<u64, PartitionStateMachine>,
}

impl TableReplica {
    fn new() -> TableReplica {
        let storage = Storage::in_memory();
        let mut replica = TableReplica {
            items: storage.keyspace("items").unwrap(),
            stats: storage.keyspace("stats").unwrap(),
            aux: storage.keyspace("aux").unwrap(),
            storage,
            parts: BTreeMap::new(),
        };
        replica.open(TABLE_GROUP, FULL);
        replica
    }

    fn open(&mut self, group: u64, range: TokenRange) {
        let sm = PartitionStateMachine::open(group, self.items.clone(), self.stats.clone(), range)
            .unwrap()
            .with_global_indexes(self.aux.clone(), table_keys())
            .unwrap();
        self.parts.insert(group, sm);
    }

    /// Opens the partition `child` that `parent`'s split at `at_token` made,
    /// feeding the indexes the parent fed, as a node starting its replica does.
    fn open_child(&mut self, child: u64, parent: u64, at_token: u64) -> TokenRange {
        let range = PartitionStateMachine::handed_off_range(&self.stats, parent, at_token)
            .unwrap()
            .expect("the parent's replica applied the split");
        if let Some((key, value)) =
            PartitionStateMachine::pinned_global_indexes(&self.stats, child, parent, at_token)
                .unwrap()
        {
            let mut batch = WriteBatch::new();
            batch.put(&self.stats, key, value);
            self.storage.commit(batch, Durability::Buffered).unwrap();
        }
        self.open(child, range);
        range
    }

    /// Applies `commands` as entries `first_index..` of `group`'s log, in one
    /// round; returns each output and the partition's range after it.
    fn apply(
        &self,
        group: u64,
        first_index: u64,
        commands: &[PartitionCommand],
    ) -> Vec<(PartitionOutput, TokenRange)> {
        let sm = &self.parts[&group];
        let mut ctx = ApplyContext::new();
        let mut outputs = Vec::with_capacity(commands.len());
        for (i, command) in commands.iter().enumerate() {
            let bytes = command.encode().unwrap();
            let output = sm.apply(&mut ctx, first_index + i as u64, &bytes).unwrap();
            outputs.push((output, sm.range()));
        }
        self.storage
            .commit(ctx.into_batch(), Durability::Buffered)
            .unwrap();
        outputs
    }

    fn owner(&self, token: u64) -> u64 {
        let owners: Vec<u64> = self
            .parts
            .iter()
            .filter(|(_, sm)| {
                let (first, last) = sm.range();
                first <= token && token <= last
            })
            .map(|(group, _)| *group)
            .collect();
        assert_eq!(owners.len(), 1, "token {token} owned by {owners:?}");
        owners[0]
    }
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

/// A partition of an index's hidden table, covering all tokens.
struct IndexPartition {
    storage: Storage,
    sm: PartitionStateMachine,
    applied: u64,
}

impl IndexPartition {
    fn new(group: u64) -> IndexPartition {
        let storage = Storage::in_memory();
        let sm = PartitionStateMachine::open(
            group,
            storage.keyspace("items").unwrap(),
            storage.keyspace("stats").unwrap(),
            FULL,
        )
        .unwrap()
        .as_index_table(storage.keyspace("aux").unwrap());
        IndexPartition {
            storage,
            sm,
            applied: 0,
        }
    }

    /// Applies these commands in one round.
    fn apply(&mut self, commands: &[PartitionCommand]) -> Vec<PartitionOutput> {
        let mut ctx = ApplyContext::new();
        let mut outputs = Vec::new();
        for command in commands {
            self.applied += 1;
            let bytes = command.encode().unwrap();
            outputs.push(self.sm.apply(&mut ctx, self.applied, &bytes).unwrap());
        }
        self.storage
            .commit(ctx.into_batch(), Durability::Buffered)
            .unwrap();
        outputs
    }

    /// The entries: key, decoded item, stored size.
    fn entries(&self) -> BTreeMap<Vec<u8>, (Item, u32)> {
        dump(self.sm.items())
            .into_iter()
            .map(|(key, value)| {
                let size = u32::from_le_bytes(value[..4].try_into().unwrap());
                (key, (decode_item(&value[4..]).unwrap(), size))
            })
            .collect()
    }
}

/// A table partition's log as the leader applied it.
struct Log {
    entries: Vec<(PartitionCommand, PartitionOutput)>,
    /// For a partition a split made: its parent, the split point, and the
    /// split's index in the parent's log.
    parent: Option<(u64, u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// A write's outcome is not what the model expects.
    Output(String),
    /// The table's items are not the model's.
    Items(String),
    /// An index partition does not hold the projection of the items.
    Index(String),
    /// The follower's state is not the leader's.
    Replica(String),
    /// Something panicked.
    Panic(String),
}

impl Failure {
    fn kind(&self) -> u8 {
        match self {
            Failure::Output(_) => 0,
            Failure::Items(_) => 1,
            Failure::Index(_) => 2,
            Failure::Replica(_) => 3,
            Failure::Panic(_) => 4,
        }
    }
}

/// Which replicas a run has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The leader's only.
    Leader,
    /// A follower too, applying the logs in rounds of any length.
    Follower,
    /// A follower whose rounds each start at a `TrimOutbox` entry (never
    /// holding one after other entries), and a leader whose rounds hold
    /// one trim at most.
    FollowerTrimsStartRounds,
}

/// The whole system: the table's partitions (leader and follower
/// replicas), the indexes' partitions, the shipper's bookkeeping and the
/// model of the items.
struct World {
    leader: TableReplica,
    follower: Option<TableReplica>,
    /// Whether the follower's rounds start at each trim (and the leader's
    /// hold one trim at most).
    trims_start_rounds: bool,
    /// Entries of each table partition's log the follower applied.
    follower_applied: BTreeMap<u64, u64>,
    logs: BTreeMap<u64, Log>,
    next_group: u64,
    indexes: BTreeMap<&'static str, IndexPartition>,
    /// Outbox keys each partition's shipper delivered.
    delivered: BTreeMap<u64, BTreeSet<Vec<u8>>>,
    /// Trims waiting to be proposed with a partition's next writes.
    queued_trims: BTreeMap<u64, Vec<PartitionCommand>>,
    /// Every outbox record ever read (stale deliveries pick from these).
    seen: BTreeMap<(u64, Vec<u8>), OutboxEntry>,
    model: BTreeMap<u8, Item>,
    /// What happened, to explain a failure.
    trace: Vec<String>,
    /// Names of index records, for the trace.
    record_names: HashMap<Vec<u8>, String>,
}

impl World {
    fn new(mode: Mode) -> World {
        let mut record_names = HashMap::new();
        for value in VALUES {
            for pk in 0..KEYS {
                let mut record = row_key_prefix_for_partition(&s(value)).unwrap();
                record.extend_from_slice(&row_key(pk));
                record_names.insert(record, format!("{value}/p{pk}"));
            }
        }
        let mut world = World {
            leader: TableReplica::new(),
            follower: (mode != Mode::Leader).then(TableReplica::new),
            trims_start_rounds: mode == Mode::FollowerTrimsStartRounds,
            follower_applied: BTreeMap::from([(TABLE_GROUP, 0)]),
            logs: BTreeMap::from([(
                TABLE_GROUP,
                Log {
                    entries: Vec::new(),
                    parent: None,
                },
            )]),
            next_group: TABLE_GROUP + 1,
            indexes: BTreeMap::from([
                (BY_G, IndexPartition::new(1000)),
                (BY_V, IndexPartition::new(1001)),
            ]),
            delivered: BTreeMap::from([(TABLE_GROUP, BTreeSet::new())]),
            queued_trims: BTreeMap::new(),
            seen: BTreeMap::new(),
            model: BTreeMap::new(),
            trace: Vec::new(),
            record_names,
        };
        let outputs = world.propose(
            TABLE_GROUP,
            vec![PartitionCommand::SetGlobalIndexes { set: index_set() }],
        );
        assert_eq!(outputs[0].0, PartitionOutput::GlobalIndexesSet { epoch: 1 });
        world
    }

    /// Proposes commands to table partition `group` (with any trims queued
    /// for it first); the leader applies them in one round. Opens the
    /// partitions its splits make.
    fn propose(
        &mut self,
        group: u64,
        commands: Vec<PartitionCommand>,
    ) -> Vec<(PartitionOutput, TokenRange)> {
        let trims = self.queued_trims.remove(&group).unwrap_or_default();
        let trim_count = trims.len();
        let commands: Vec<PartitionCommand> = trims.into_iter().chain(commands).collect();
        let range_before = self.leader.parts[&group].range();
        let log = self.logs.get_mut(&group).unwrap();
        let first_index = log.entries.len() as u64 + 1;
        let outputs = self.leader.apply(group, first_index, &commands);
        for (command, (output, _)) in commands.iter().zip(&outputs) {
            log.entries.push((command.clone(), output.clone()));
        }
        // Splits that gave tokens away make partitions.
        let mut range = range_before;
        for (i, (command, (_, after))) in commands.iter().zip(&outputs).enumerate() {
            if let PartitionCommand::Split { at_token } = command
                && *after != range
            {
                assert_eq!(*after, (range.0, at_token - 1));
                let child = self.next_group;
                self.next_group += 1;
                let child_range = self.leader.open_child(child, group, *at_token);
                assert_eq!(child_range, (*at_token, range.1));
                assert_eq!(
                    self.leader.parts[&child].global_index_set(),
                    index_set(),
                    "a split-off partition feeds its parent's indexes"
                );
                self.logs.insert(
                    child,
                    Log {
                        entries: Vec::new(),
                        parent: Some((group, *at_token, first_index + i as u64)),
                    },
                );
                self.follower_applied.insert(child, 0);
                self.delivered.insert(child, BTreeSet::new());
                self.trace.push(format!(
                    "split group {group} at {at_token:#018x}: group {child} owns {:#018x}..={:#018x}",
                    child_range.0, child_range.1
                ));
                range = *after;
            }
        }
        outputs.into_iter().skip(trim_count).collect()
    }

    /// Routes a step's commands to their partitions, one round per
    /// partition; commands refused as sent to the wrong partition (a split
    /// in their round moved their key) go again to the new owner.
    fn round(&mut self, cmds: Vec<Cmd>) -> Result<(), Failure> {
        let mut pending = cmds;
        for _ in 0..8 {
            if pending.is_empty() {
                return Ok(());
            }
            // By owner, in order of first appearance; batches regrouped.
            let mut groups: Vec<(u64, Vec<Cmd>)> = Vec::new();
            let mut add = |owner: u64, cmd: Cmd| match groups.iter_mut().find(|(g, _)| *g == owner)
            {
                Some((_, list)) => list.push(cmd),
                None => groups.push((owner, vec![cmd])),
            };
            for cmd in pending.drain(..) {
                match cmd {
                    Cmd::Batch(ops) => {
                        let mut by_owner: Vec<(u64, BatchOps)> = Vec::new();
                        for op in ops {
                            let owner = self.leader.owner(token(op.0));
                            match by_owner.iter_mut().find(|(g, _)| *g == owner) {
                                Some((_, list)) => list.push(op),
                                None => by_owner.push((owner, vec![op])),
                            }
                        }
                        for (owner, ops) in by_owner {
                            add(owner, Cmd::Batch(ops));
                        }
                    }
                    Cmd::Split(at) => add(self.leader.owner(at), cmd),
                    Cmd::Put(pk, _) | Cmd::Delete(pk) | Cmd::Update(pk, _) => {
                        add(self.leader.owner(token(pk)), cmd);
                    }
                }
            }
            for (group, cmds) in groups {
                let commands: Vec<PartitionCommand> = cmds.iter().map(command_of).collect();
                let outputs = self.propose(group, commands);
                for (cmd, (output, range)) in cmds.into_iter().zip(outputs) {
                    if output == PartitionOutput::WrongPartition {
                        self.trace
                            .push(format!("group {group}: {cmd:?} -> wrong partition, again"));
                        pending.push(cmd);
                        continue;
                    }
                    self.check_output(group, &cmd, &output, range)?;
                }
            }
        }
        Err(Failure::Output(format!(
            "commands still sent to the wrong partition: {pending:?}"
        )))
    }

    /// Checks a command's outcome against the model, and updates it.
    fn check_output(
        &mut self,
        group: u64,
        cmd: &Cmd,
        output: &PartitionOutput,
        range: TokenRange,
    ) -> Result<(), Failure> {
        let written = |output: &PartitionOutput| {
            matches!(
                output,
                PartitionOutput::Written { .. } | PartitionOutput::WrittenInCollection { .. }
            )
        };
        let refused_keys = |output: &PartitionOutput| {
            matches!(
                output,
                PartitionOutput::Refused(
                    WriteRejection::IndexKeyType { .. } | WriteRejection::IndexKeyEmpty { .. }
                )
            )
        };
        let unexpected = |what: String| -> Result<(), Failure> {
            Err(Failure::Output(format!(
                "group {group}: {cmd:?}: {what}, got {output:?}"
            )))
        };
        match cmd {
            Cmd::Put(pk, spec) => {
                let item = spec.item(*pk);
                if valid(&item) {
                    if !written(output) {
                        return unexpected("expected the put written".into());
                    }
                    self.trace.push(format!(
                        "group {group}: put {} (was {})",
                        show(&item),
                        show_opt(self.model.get(pk))
                    ));
                    self.model.insert(*pk, item);
                } else if !refused_keys(output) {
                    return unexpected("expected the put refused".into());
                }
            }
            Cmd::Delete(pk) => {
                if !written(output) {
                    return unexpected("expected the delete written".into());
                }
                self.trace.push(format!(
                    "group {group}: delete p{pk} (was {})",
                    show_opt(self.model.get(pk))
                ));
                self.model.remove(pk);
            }
            Cmd::Update(pk, upd) => match upd.apply(*pk, self.model.get(pk)) {
                None => {
                    if !written(output) {
                        return unexpected("expected the update to do nothing".into());
                    }
                }
                Some(item) if valid(&item) => {
                    if !written(output) {
                        return unexpected(format!("expected {}", show(&item)));
                    }
                    self.trace.push(format!(
                        "group {group}: update p{pk} {:?}: {} -> {}",
                        upd.expression().0,
                        show_opt(self.model.get(pk)),
                        show(&item)
                    ));
                    self.model.insert(*pk, item);
                }
                Some(_) => {
                    if !refused_keys(output) {
                        return unexpected("expected the update refused".into());
                    }
                }
            },
            Cmd::Batch(ops) => {
                let items: Vec<(u8, Option<Item>)> = ops
                    .iter()
                    .map(|(pk, spec)| (*pk, spec.as_ref().map(|spec| spec.item(*pk))))
                    .collect();
                if items
                    .iter()
                    .all(|(_, item)| item.as_ref().is_none_or(valid))
                {
                    if !matches!(output, PartitionOutput::BatchWrittenInCollections { .. }) {
                        return unexpected("expected the batch written".into());
                    }
                    for (pk, item) in items {
                        self.trace.push(format!(
                            "group {group}: batch {} p{pk} (was {})",
                            item.as_ref().map_or_else(|| "delete".into(), show),
                            show_opt(self.model.get(&pk))
                        ));
                        match item {
                            Some(item) => self.model.insert(pk, item),
                            None => self.model.remove(&pk),
                        };
                    }
                } else if !refused_keys(output) {
                    return unexpected("expected the batch refused".into());
                }
            }
            Cmd::Split(at) => match output {
                PartitionOutput::Split { .. } => {}
                PartitionOutput::Refused(WriteRejection::SplitPointOutside { first, .. })
                    if *at <= *first && *first == range.0 => {}
                _ => return unexpected("expected a split".into()),
            },
        }
        Ok(())
    }

    fn describe(&self, change: &IndexEntryChange) -> String {
        let record = self
            .record_names
            .get(&change.record)
            .cloned()
            .unwrap_or_else(|| format!("{:02x?}", change.record));
        let entry = match &change.entry {
            Some((_, value)) => show(&decode_item(&value[4..]).unwrap()),
            None => "none".into(),
        };
        format!(
            "{record}@({},{}) -> {entry}",
            change.version.0, change.version.1
        )
    }

    /// Delivers `records`, in this order, to the index partitions: in
    /// commands of a few changes, in rounds of a few commands.
    fn deliver(&mut self, records: Vec<OutboxEntry>, rng: &mut Rng) -> Result<(), Failure> {
        let mut tables = INDEX_TABLES;
        rng.shuffle(&mut tables);
        for table in tables {
            let changes: Vec<IndexEntryChange> = records
                .iter()
                .filter(|record| record.index_table == table)
                .map(|record| record.change.clone())
                .collect();
            if changes.is_empty() {
                continue;
            }
            let mut commands = Vec::new();
            let mut rest = changes.as_slice();
            while !rest.is_empty() {
                let take = (1 + rng.index(4)).min(rest.len());
                commands.push(PartitionCommand::ApplyIndexChanges {
                    changes: rest[..take].to_vec(),
                });
                rest = &rest[take..];
            }
            let mut commands = commands.as_slice();
            while !commands.is_empty() {
                let take = (1 + rng.index(3)).min(commands.len());
                self.apply_index_round(table, &commands[..take])?;
                commands = &commands[take..];
            }
        }
        Ok(())
    }

    fn apply_index_round(
        &mut self,
        table: &'static str,
        commands: &[PartitionCommand],
    ) -> Result<(), Failure> {
        let mut line = format!("deliver to {table} in one round:");
        for command in commands {
            if let PartitionCommand::ApplyIndexChanges { changes } = command {
                let list: Vec<String> = changes.iter().map(|c| self.describe(c)).collect();
                let _ = write!(line, " [{}]", list.join(", "));
            }
        }
        self.trace.push(line);
        let outputs = self.indexes.get_mut(table).unwrap().apply(commands);
        for output in outputs {
            if !matches!(output, PartitionOutput::IndexChangesApplied { .. }) {
                return Err(Failure::Index(format!(
                    "{table} refused changes: {output:?}"
                )));
            }
        }
        Ok(())
    }

    /// The outbox of a table partition, remembering its records.
    fn outbox(&mut self, group: u64) -> Vec<(Vec<u8>, OutboxEntry)> {
        let records = self.leader.parts[&group].outbox(usize::MAX).unwrap();
        for (key, record) in &records {
            self.seen.insert((group, key.clone()), record.clone());
        }
        records
    }

    fn ship(&mut self, seed: u64) -> Result<(), Failure> {
        let mut rng = Rng::new(seed);
        let groups: Vec<u64> = self.leader.parts.keys().copied().collect();
        let mut sends = Vec::new();
        let mut sent = Vec::new();
        for &group in &groups {
            if !rng.chance(3, 4) {
                continue;
            }
            for (key, record) in self.outbox(group) {
                let delivered = self.delivered[&group].contains(&key);
                // Undelivered ones often; delivered ones now and then (a
                // new leader ships its whole outbox again).
                if (!delivered && rng.chance(1, 2)) || (delivered && rng.chance(1, 8)) {
                    sends.push(record);
                    sent.push((group, key));
                }
            }
        }
        if !sends.is_empty() && rng.chance(1, 4) {
            let again = sends[rng.index(sends.len())].clone();
            sends.push(again);
        }
        rng.shuffle(&mut sends);
        self.deliver(sends, &mut rng)?;
        for (group, key) in sent {
            self.delivered.get_mut(&group).unwrap().insert(key);
        }
        // Trims, of delivered prefixes only.
        for &group in &groups {
            if !rng.chance(2, 5) {
                continue;
            }
            let keys: Vec<Vec<u8>> = self.outbox(group).into_iter().map(|(k, _)| k).collect();
            let prefix = keys
                .iter()
                .take_while(|key| self.delivered[&group].contains(*key))
                .count();
            if prefix == 0 {
                continue;
            }
            let cut = rng.index(prefix);
            let through = keys[cut].clone();
            self.trace.push(format!(
                "trim group {group} through its record {} of {}",
                cut + 1,
                keys.len()
            ));
            let trim = PartitionCommand::TrimOutbox { through };
            // Proposed now (checked), unless trims wait already.
            if rng.chance(1, 2) && !self.queued_trims.contains_key(&group) {
                let output = self.propose(group, vec![trim]).remove(0).0;
                let expected = PartitionOutput::OutboxTrimmed {
                    removed: cut as u32 + 1,
                };
                if output != expected {
                    return Err(Failure::Output(format!(
                        "trim of group {group}: expected {expected:?}, got {output:?}"
                    )));
                }
                let left: Vec<Vec<u8>> = self.outbox(group).into_iter().map(|(k, _)| k).collect();
                if left != keys[cut + 1..] {
                    return Err(Failure::Output(format!(
                        "trim of group {group} through record {} left the wrong records",
                        cut + 1
                    )));
                }
            } else {
                // Proposed with the partition's next writes.
                let queued = self.queued_trims.entry(group).or_default();
                if self.trims_start_rounds {
                    // One trim a round (the furthest): a second one in the
                    // round would see the first's removals as pending.
                    let through = |c: &PartitionCommand| match c {
                        PartitionCommand::TrimOutbox { through } => through.clone(),
                        _ => Vec::new(),
                    };
                    if queued.first().is_none_or(|q| through(q) < through(&trim)) {
                        *queued = vec![trim];
                    }
                } else {
                    queued.push(trim);
                }
            }
        }
        Ok(())
    }

    fn stale(&mut self, seed: u64) -> Result<(), Failure> {
        let mut rng = Rng::new(seed);
        if self.seen.is_empty() {
            return Ok(());
        }
        let seen: Vec<OutboxEntry> = self.seen.values().cloned().collect();
        let mut sends: Vec<OutboxEntry> = (0..1 + rng.index(4))
            .map(|_| seen[rng.index(seen.len())].clone())
            .collect();
        rng.shuffle(&mut sends);
        self.trace.push("stale deliveries:".into());
        self.deliver(sends, &mut rng)
    }

    /// The follower applies some of what it lags behind, in rounds of
    /// random length; `all`: everything.
    fn follow(&mut self, seed: u64, all: bool) -> Result<(), Failure> {
        let Some(follower) = self.follower.as_mut() else {
            return Ok(());
        };
        let mut rng = Rng::new(seed);
        // Parents first: a split-off partition's id is larger.
        for (&group, log) in &self.logs {
            if !follower.parts.contains_key(&group) {
                let (parent, at_token, split_index) =
                    log.parent.expect("only splits make partitions");
                if self.follower_applied[&parent] < split_index {
                    continue;
                }
                follower.open_child(group, parent, at_token);
            }
            let applied = self.follower_applied.get_mut(&group).unwrap();
            let total = log.entries.len() as u64;
            while *applied < total && (all || rng.chance(2, 3)) {
                let mut take = 1 + rng.below(total - *applied);
                let from = *applied as usize;
                if self.trims_start_rounds
                    && let Some(trim) = log.entries[from + 1..from + take as usize]
                        .iter()
                        .position(|(c, _)| matches!(c, PartitionCommand::TrimOutbox { .. }))
                {
                    take = trim as u64 + 1;
                }
                let to = from + take as usize;
                let commands: Vec<PartitionCommand> = log.entries[from..to]
                    .iter()
                    .map(|(command, _)| command.clone())
                    .collect();
                let outputs = follower.apply(group, *applied + 1, &commands);
                for (i, ((_, leader), (output, _))) in
                    log.entries[from..to].iter().zip(outputs).enumerate()
                {
                    if *leader != output {
                        return Err(Failure::Replica(format!(
                            "group {group} entry {}: the leader's output {leader:?}, the follower's {output:?}",
                            from + i + 1
                        )));
                    }
                }
                self.trace.push(format!(
                    "follower: group {group} applies entries {}..={} in one round",
                    from + 1,
                    to
                ));
                *applied += take;
            }
        }
        Ok(())
    }

    fn step(&mut self, step: &Step) -> Result<(), Failure> {
        match step {
            Step::Round(cmds) => self.round(cmds.clone()),
            Step::Ship(seed) => self.ship(*seed),
            Step::Stale(seed) => self.stale(*seed),
            Step::Follow(seed) => self.follow(*seed, false),
        }
    }

    /// Proposes the queued trims, then delivers every record left in the
    /// outboxes, in random order.
    fn finish(&mut self, seed: u64) -> Result<(), Failure> {
        let mut rng = Rng::new(seed);
        let queued: Vec<u64> = self.queued_trims.keys().copied().collect();
        for group in queued {
            self.propose(group, Vec::new());
        }
        let groups: Vec<u64> = self.leader.parts.keys().copied().collect();
        let mut sends = Vec::new();
        for group in groups {
            for (key, record) in self.outbox(group) {
                sends.push(record);
                self.delivered.get_mut(&group).unwrap().insert(key);
            }
        }
        rng.shuffle(&mut sends);
        self.trace.push("final delivery:".into());
        self.deliver(sends, &mut rng)
    }

    /// The table's items, by key.
    fn items(&self) -> BTreeMap<Vec<u8>, Item> {
        dump(&self.leader.items)
            .into_iter()
            .map(|(key, value)| (key, decode_item(&value[4..]).unwrap()))
            .collect()
    }

    /// What index `table` must hold for the table's items: entry key ->
    /// projected item (computed here, not by the crate's projection).
    fn expected_entries(&self, table: &str) -> BTreeMap<Vec<u8>, Item> {
        let mut expected = BTreeMap::new();
        for (row_key, item) in self.items() {
            let mut entry = Item::new();
            entry.insert("pk".into(), item["pk"].clone());
            let key = match table {
                BY_G => match (item.get("g"), item.get("n")) {
                    (Some(g @ AttributeValue::S(_)), Some(n @ AttributeValue::N(_))) => {
                        entry.insert("g".into(), g.clone());
                        entry.insert("n".into(), n.clone());
                        if let Some(v) = item.get("v") {
                            entry.insert("v".into(), v.clone());
                        }
                        encode_global_index_key(g, Some(n), &row_key).unwrap()
                    }
                    _ => continue,
                },
                _ => match item.get("v") {
                    Some(v @ AttributeValue::S(_)) => {
                        entry.insert("v".into(), v.clone());
                        encode_global_index_key(v, None, &row_key).unwrap()
                    }
                    _ => continue,
                },
            };
            expected.insert(key, entry);
        }
        expected
    }

    /// The items are the model's, the partitions' statistics count them,
    /// and each index holds exactly their projection.
    fn check(&self) -> Result<(), Failure> {
        let items = self.items();
        for pk in 0..KEYS {
            let stored = items.get(&row_key(pk));
            if stored != self.model.get(&pk) {
                return Err(Failure::Items(format!(
                    "p{pk}: stored {}, the model says {}",
                    show_opt(stored),
                    show_opt(self.model.get(&pk))
                )));
            }
        }
        for (group, sm) in &self.leader.parts {
            let (first, last) = sm.range();
            let count = items
                .keys()
                .filter(|key| (first..=last).contains(&row_key_token(key).unwrap()))
                .count() as u64;
            if sm.stats().item_count() != count {
                return Err(Failure::Items(format!(
                    "group {group} counts {} items, holds {count}",
                    sm.stats().item_count()
                )));
            }
        }
        for table in INDEX_TABLES {
            let expected = self.expected_entries(table);
            let partition = &self.indexes[table];
            let actual = partition.entries();
            let mut problems = Vec::new();
            for (key, item) in &expected {
                match actual.get(key) {
                    None => problems.push(format!("missing {}", show(item))),
                    Some((held, _)) if held != item => problems.push(format!(
                        "holds {} where the item says {}",
                        show(held),
                        show(item)
                    )),
                    Some((held, size)) if *size as usize != item_size_bytes(held) => {
                        problems.push(format!("{} stored with size {size}", show(held)))
                    }
                    Some(_) => {}
                }
            }
            for (key, (held, _)) in &actual {
                if !expected.contains_key(key) {
                    problems.push(format!("extra {}", show(held)));
                }
            }
            // The same, as sets of items (the key aside).
            let mut expected_items: Vec<String> = expected.values().map(show).collect();
            let mut actual_items: Vec<String> = actual.values().map(|(i, _)| show(i)).collect();
            expected_items.sort();
            actual_items.sort();
            if problems.is_empty() && expected_items != actual_items {
                problems.push(format!(
                    "items {actual_items:?}, expected {expected_items:?}"
                ));
            }
            let stats = partition.sm.stats();
            let size: u64 = actual.values().map(|(_, size)| u64::from(*size)).sum();
            if problems.is_empty()
                && (stats.item_count() != actual.len() as u64 || stats.size_bytes() != size)
            {
                problems.push(format!(
                    "statistics say {} entries of {} bytes, it holds {} of {size}",
                    stats.item_count(),
                    stats.size_bytes(),
                    actual.len()
                ));
            }
            if !problems.is_empty() {
                return Err(Failure::Index(format!(
                    "{table}: {}; table items: {}",
                    problems.join("; "),
                    items.values().map(show).collect::<Vec<_>>().join(" ")
                )));
            }
        }
        Ok(())
    }

    /// The follower, caught up, holds what the leader holds.
    fn check_follower(&mut self, seed: u64) -> Result<(), Failure> {
        self.follow(seed, true)?;
        let Some(follower) = &self.follower else {
            return Ok(());
        };
        let pairs = [
            ("items", &self.leader.items, &follower.items),
            ("index keyspace", &self.leader.aux, &follower.aux),
            ("statistics", &self.leader.stats, &follower.stats),
        ];
        for (name, leader, follower) in pairs {
            let (leader, follower) = (dump(leader), dump(follower));
            if leader != follower {
                let only_leader: Vec<String> = leader
                    .iter()
                    .filter(|(k, v)| follower.get(*k) != Some(*v))
                    .map(|(k, _)| format!("{k:02x?}"))
                    .collect();
                let only_follower: Vec<String> = follower
                    .iter()
                    .filter(|(k, v)| leader.get(*k) != Some(*v))
                    .map(|(k, _)| format!("{k:02x?}"))
                    .collect();
                return Err(Failure::Replica(format!(
                    "{name} differ: the leader's alone {only_leader:?}, the follower's alone {only_follower:?}"
                )));
            }
        }
        for (group, sm) in &self.leader.parts {
            let theirs = &follower.parts[group];
            if sm.range() != theirs.range()
                || sm.stats().item_count() != theirs.stats().item_count()
                || sm.stats().size_bytes() != theirs.stats().size_bytes()
            {
                return Err(Failure::Replica(format!(
                    "group {group}: range or statistics differ"
                )));
            }
        }
        Ok(())
    }
}

fn command_of(cmd: &Cmd) -> PartitionCommand {
    let write = |pk: u8, action: WriteAction, values: Vec<(&str, AttributeValue)>| {
        PartitionCommand::Write(Box::new(ItemWrite {
            row_key: row_key(pk),
            action,
            condition: None,
            names: HashMap::new(),
            values: values
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: false,
        }))
    };
    let put_action = |pk: u8, spec: &Spec| {
        let item = spec.item(pk);
        WriteAction::Put {
            record: encode_item(&item),
            size_bytes: item_size_bytes(&item) as u32,
        }
    };
    match cmd {
        Cmd::Put(pk, spec) => write(*pk, put_action(*pk, spec), vec![]),
        Cmd::Delete(pk) => write(*pk, WriteAction::Delete, vec![]),
        Cmd::Update(pk, upd) => {
            let (expression, values) = upd.expression();
            let mut key = Item::new();
            key.insert("pk".into(), s(&pk_name(*pk)));
            let update = atoll_expr::parse_update(expression).unwrap();
            write(*pk, WriteAction::Update { key, update }, values)
        }
        Cmd::Batch(ops) => PartitionCommand::Batch {
            ops: ops
                .iter()
                .map(|(pk, spec)| match spec {
                    Some(spec) => {
                        let item = spec.item(*pk);
                        WriteOp::Put {
                            row_key: row_key(*pk),
                            record: encode_item(&item),
                            size_bytes: item_size_bytes(&item) as u32,
                        }
                    }
                    None => WriteOp::Delete {
                        row_key: row_key(*pk),
                    },
                })
                .collect(),
        },
        Cmd::Split(at_token) => PartitionCommand::Split {
            at_token: *at_token,
        },
    }
}

// ---------------------------------------------------------------------------
// Running and shrinking plans

/// Runs a plan; `trace` gets what happened.
fn run_traced(
    plan: &[Step],
    finish_seed: u64,
    mode: Mode,
    trace: &mut Vec<String>,
) -> Result<(), Failure> {
    let mut world = World::new(mode);
    let outcome = (|| {
        for step in plan {
            world.step(step)?;
        }
        world.finish(finish_seed)?;
        world.check()?;
        if mode != Mode::Leader {
            world.check_follower(finish_seed)?;
        }
        Ok(())
    })();
    *trace = std::mem::take(&mut world.trace);
    outcome
}

fn run(plan: &[Step], finish_seed: u64, mode: Mode) -> Result<(), Failure> {
    let mut trace = Vec::new();
    match catch_unwind(AssertUnwindSafe(|| {
        run_traced(plan, finish_seed, mode, &mut trace)
    })) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Failure::Panic(message))
        }
    }
}

/// A smaller plan failing the same way: steps, then commands, removed
/// while the failure stays.
fn shrink(plan: Vec<Step>, finish_seed: u64, mode: Mode, kind: u8) -> Vec<Step> {
    let fails = |plan: &[Step]| {
        run(plan, finish_seed, mode)
            .err()
            .is_some_and(|f| f.kind() == kind)
    };
    let mut plan = plan;
    loop {
        let before = plan.clone();
        let mut chunk = plan.len().div_ceil(2).max(1);
        while chunk >= 1 {
            let mut at = 0;
            while at < plan.len() {
                let mut candidate = plan.clone();
                candidate.drain(at..(at + chunk).min(plan.len()));
                if fails(&candidate) {
                    plan = candidate;
                } else {
                    at += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
        for i in 0..plan.len() {
            let Step::Round(cmds) = &plan[i] else {
                continue;
            };
            let mut cmds = cmds.clone();
            let mut j = 0;
            while j < cmds.len() && cmds.len() > 1 {
                let mut fewer = cmds.clone();
                fewer.remove(j);
                let mut candidate = plan.clone();
                candidate[i] = Step::Round(fewer.clone());
                if fails(&candidate) {
                    cmds = fewer;
                    plan = candidate;
                } else {
                    j += 1;
                }
            }
            for j in 0..cmds.len() {
                let Cmd::Batch(ops) = &cmds[j] else { continue };
                let mut ops = ops.clone();
                let mut k = 0;
                while k < ops.len() && ops.len() > 1 {
                    let mut fewer = ops.clone();
                    fewer.remove(k);
                    let mut fewer_cmds = cmds.clone();
                    fewer_cmds[j] = Cmd::Batch(fewer.clone());
                    let mut candidate = plan.clone();
                    candidate[i] = Step::Round(fewer_cmds.clone());
                    if fails(&candidate) {
                        ops = fewer;
                        cmds = fewer_cmds;
                        plan = candidate;
                    } else {
                        k += 1;
                    }
                }
            }
        }
        if plan == before {
            return plan;
        }
    }
}

/// Runs the plans of `seeds`; on a failure, shrinks it and panics with the
/// smallest plan found and what it did.
fn check_seeds(seeds: std::ops::Range<u64>, mode: Mode) {
    for seed in seeds {
        let plan = gen_plan(seed);
        let finish_seed = seed ^ 0xF1;
        if let Err(failure) = run(&plan, finish_seed, mode) {
            let small = shrink(plan, finish_seed, mode, failure.kind());
            let mut trace = Vec::new();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                run_traced(&small, finish_seed, mode, &mut trace)
            }));
            let mut report = format!(
                "seed {seed} fails: {failure:?}\nshrunk to {} steps (finish seed {finish_seed}):\n",
                small.len()
            );
            for step in &small {
                let _ = writeln!(report, "  {step:?}");
            }
            let _ = writeln!(report, "which did:");
            for line in &trace {
                let _ = writeln!(report, "  {line}");
            }
            let _ = writeln!(report, "and ended: {outcome:?}");
            panic!("{report}");
        }
    }
}

#[test]
fn index_partitions_converge_to_the_projection_of_the_items() {
    check_seeds(0..200, Mode::Leader);
}

#[test]
fn replicas_applying_the_log_in_other_rounds_agree() {
    check_seeds(0..100, Mode::Follower);
}

/// The same, with the follower's rounds never holding a trim after other
/// entries: `TrimOutbox` reads the engine only, not the round's earlier
/// writes (see the regression test below), and this checks that nothing
/// else depends on how the log is cut into rounds.
#[test]
fn replicas_agree_when_each_trim_starts_a_round() {
    check_seeds(0..100, Mode::FollowerTrimsStartRounds);
}

// ---------------------------------------------------------------------------
// Deterministic cases

fn spec(g: Option<&'static str>, n: Option<i64>, v: Option<&'static str>) -> Spec {
    Spec {
        g: g.map(Key::S),
        n,
        v: v.map(Key::S),
        x: None,
    }
}

/// The records of `group`'s outbox, remembered.
fn outbox_records(world: &mut World, group: u64) -> Vec<OutboxEntry> {
    world.outbox(group).into_iter().map(|(_, r)| r).collect()
}

/// Delivers each record on its own, in the order given.
fn deliver_one_by_one(world: &mut World, records: &[OutboxEntry]) {
    for record in records {
        let command = PartitionCommand::ApplyIndexChanges {
            changes: vec![record.change.clone()],
        };
        world
            .apply_index_round(
                INDEX_TABLES
                    .iter()
                    .find(|t| **t == record.index_table)
                    .unwrap(),
                &[command],
            )
            .unwrap();
    }
}

fn entries(world: &World, table: &str) -> Vec<Item> {
    world.indexes[table]
        .entries()
        .into_values()
        .map(|(item, _)| item)
        .collect()
}

fn entry(pk: u8, attributes: &[(&str, AttributeValue)]) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(&pk_name(pk)));
    for (name, value) in attributes {
        item.insert((*name).into(), value.clone());
    }
    item
}

fn assert_converged(world: &World) {
    if let Err(failure) = world.check() {
        panic!("{failure:?}\n{}", world.trace.join("\n"));
    }
}

#[test]
fn a_key_going_a_b_a_converges_with_its_changes_delivered_in_reverse() {
    let mut world = World::new(Mode::Leader);
    // g: a -> b -> a, with the sort key and projected attribute changing
    // too, so the final entry under `a` is not the first one's key.
    world
        .round(vec![Cmd::Put(3, spec(Some("a"), Some(1), Some("a")))])
        .unwrap();
    world
        .round(vec![Cmd::Put(3, spec(Some("b"), Some(1), Some("b")))])
        .unwrap();
    world
        .round(vec![Cmd::Update(3, Upd::SetG(Key::S("a")))])
        .unwrap();
    world
        .round(vec![Cmd::Update(3, Upd::SetVN(Key::S("a"), 2))])
        .unwrap();
    let records = outbox_records(&mut world, TABLE_GROUP);
    // put a; del a, put b; del b, put a; put a (new sort key) — per index.
    assert!(records.len() >= 6, "{records:?}");
    let mut reversed = records.clone();
    reversed.reverse();
    deliver_one_by_one(&mut world, &reversed);
    assert_eq!(
        entries(&world, BY_G),
        vec![entry(3, &[("g", s("a")), ("n", num(2)), ("v", s("a"))])]
    );
    assert_eq!(entries(&world, BY_V), vec![entry(3, &[("v", s("a"))])]);
    assert_converged(&world);
    // Everything again, in order: nothing changes.
    deliver_one_by_one(&mut world, &records);
    assert_converged(&world);
    // The first change (put under a, n = 1) arriving last of all changes nothing.
    deliver_one_by_one(&mut world, &records[..1]);
    assert_converged(&world);
}

#[test]
fn a_key_going_a_b_a_converges_when_the_middle_arrives_last() {
    let mut world = World::new(Mode::Leader);
    world
        .round(vec![Cmd::Put(5, spec(Some("a"), Some(1), None))])
        .unwrap();
    world
        .round(vec![Cmd::Put(5, spec(Some("b"), Some(1), None))])
        .unwrap();
    world
        .round(vec![Cmd::Put(5, spec(Some("a"), Some(1), None))])
        .unwrap();
    let records = outbox_records(&mut world, TABLE_GROUP);
    // v1: put a; v2: del a, put b; v3: del b, put a.
    assert_eq!(records.len(), 5, "{records:?}");
    let order = [0, 3, 4, 1, 2];
    let ordered: Vec<OutboxEntry> = order.iter().map(|&i| records[i].clone()).collect();
    deliver_one_by_one(&mut world, &ordered);
    assert_eq!(
        entries(&world, BY_G),
        vec![entry(5, &[("g", s("a")), ("n", num(1))])]
    );
    assert_converged(&world);
}

#[test]
fn a_move_between_index_keys_converges_with_the_old_delete_after_the_new_put() {
    let mut world = World::new(Mode::Leader);
    world
        .round(vec![Cmd::Put(1, spec(Some("a"), Some(7), Some("a")))])
        .unwrap();
    let first = outbox_records(&mut world, TABLE_GROUP);
    deliver_one_by_one(&mut world, &first);
    assert_converged(&world);
    world.propose(
        TABLE_GROUP,
        vec![PartitionCommand::TrimOutbox {
            through: world.leader.parts[&TABLE_GROUP]
                .outbox(usize::MAX)
                .unwrap()
                .last()
                .unwrap()
                .0
                .clone(),
        }],
    );
    // a -> b (and v a -> b): a delete under a, a put under b, per index.
    world
        .round(vec![Cmd::Put(1, spec(Some("b"), Some(7), Some("b")))])
        .unwrap();
    let records = outbox_records(&mut world, TABLE_GROUP);
    let (deletes, puts): (Vec<OutboxEntry>, Vec<OutboxEntry>) = records
        .into_iter()
        .partition(|record| record.change.entry.is_none());
    assert_eq!((deletes.len(), puts.len()), (2, 2));
    deliver_one_by_one(&mut world, &puts);
    // For now the item is under both keys ...
    assert_eq!(entries(&world, BY_G).len(), 2);
    deliver_one_by_one(&mut world, &deletes);
    // ... then under b alone.
    assert_eq!(
        entries(&world, BY_G),
        vec![entry(1, &[("g", s("b")), ("n", num(7)), ("v", s("b"))])]
    );
    assert_eq!(entries(&world, BY_V), vec![entry(1, &[("v", s("b"))])]);
    assert_converged(&world);
    // The old put under a, re-shipped late (it was trimmed), changes nothing.
    deliver_one_by_one(&mut world, &first);
    assert_converged(&world);
}

#[test]
fn an_old_delete_arriving_before_the_put_it_follows_leaves_no_entry() {
    let mut world = World::new(Mode::Leader);
    world
        .round(vec![Cmd::Put(2, spec(Some("a"), Some(1), None))])
        .unwrap();
    world
        .round(vec![Cmd::Put(2, spec(Some("c"), Some(1), None))])
        .unwrap();
    let records = outbox_records(&mut world, TABLE_GROUP);
    assert_eq!(records.len(), 3, "{records:?}");
    // The delete under a first (a tombstone), then the put under c, then
    // the first put under a, which must not come back.
    deliver_one_by_one(
        &mut world,
        &[records[1].clone(), records[2].clone(), records[0].clone()],
    );
    assert_eq!(
        entries(&world, BY_G),
        vec![entry(2, &[("g", s("c")), ("n", num(1))])]
    );
    assert_converged(&world);
}

#[test]
fn a_split_off_partitions_changes_win_over_its_parents_later_log_positions() {
    let mut world = World::new(Mode::Leader);
    // The parent writes the item many times: its versions' log indexes grow.
    for n in 0..20 {
        world
            .round(vec![Cmd::Put(4, spec(Some("a"), Some(n), Some("a")))])
            .unwrap();
    }
    let at_token = token(4);
    world.round(vec![Cmd::Split(at_token)]).unwrap();
    let child = TABLE_GROUP + 1;
    assert_eq!(world.leader.owner(at_token), child);
    // The new partition writes it at its log's first entries.
    world
        .round(vec![Cmd::Put(4, spec(Some("b"), Some(0), Some("b")))])
        .unwrap();
    let parent = outbox_records(&mut world, TABLE_GROUP);
    let child_records = outbox_records(&mut world, child);
    assert!(child_records.iter().all(|r| r.change.version.0 == child));
    deliver_one_by_one(&mut world, &child_records);
    deliver_one_by_one(&mut world, &parent);
    assert_eq!(
        entries(&world, BY_G),
        vec![entry(4, &[("g", s("b")), ("n", num(0)), ("v", s("b"))])]
    );
    assert_converged(&world);
}

/// Regression (found by `replicas_applying_the_log_in_other_rounds_agree`,
/// seed 0): a replica that applies a write and the `TrimOutbox` of its
/// records in one round (a follower catching up, a node replaying its log
/// after a restart) keeps the records the leader removed, and its trim
/// reports removing fewer. `apply_trim_outbox` lists the records to remove
/// from the engine alone, not overlaid with the round's earlier writes
/// (`ctx.pending_in_range`), as `apply_split` and `apply_backfill` do.
#[test]
fn a_replica_applying_writes_and_their_trim_in_one_round_removes_the_records() {
    let mut world = World::new(Mode::Follower);
    world
        .round(vec![Cmd::Put(6, spec(Some("c"), Some(1), Some("a")))])
        .unwrap();
    let records = world.outbox(TABLE_GROUP);
    assert_eq!(records.len(), 2, "an entry in each index");
    let changes: Vec<OutboxEntry> = records.iter().map(|(_, r)| r.clone()).collect();
    deliver_one_by_one(&mut world, &changes);
    // The leader's shipper trims what was delivered: entry 3 of the log.
    let through = records[1].0.clone();
    let outputs = world.propose(TABLE_GROUP, vec![PartitionCommand::TrimOutbox { through }]);
    assert_eq!(outputs[0].0, PartitionOutput::OutboxTrimmed { removed: 2 });
    assert!(world.outbox(TABLE_GROUP).is_empty());

    // A follower applies entries 1..=3 (set the indexes, the put, the
    // trim) in one round.
    let log: Vec<PartitionCommand> = world.logs[&TABLE_GROUP]
        .entries
        .iter()
        .map(|(command, _)| command.clone())
        .collect();
    assert_eq!(log.len(), 3);
    let follower = world.follower.as_ref().unwrap();
    let outputs = follower.apply(TABLE_GROUP, 1, &log);
    let left = follower.parts[&TABLE_GROUP].outbox(usize::MAX).unwrap();
    assert_eq!(
        (&outputs[2].0, left.len()),
        (&PartitionOutput::OutboxTrimmed { removed: 2 }, 0),
        "the follower's trim must remove the records its round wrote, as the leader's did"
    );
    assert_eq!(dump(&follower.aux), dump(&world.leader.aux));
}

/// Regression, the same cause: two trims in one round (the shipper's
/// trims of two batches committed together) both count the records the
/// first removed, so the round's outputs differ from a replica's that
/// applied them in two rounds (`removed: 2, 2` here, against `2, 0`).
#[test]
fn a_second_trim_in_a_round_does_not_count_what_the_first_removed() {
    let mut world = World::new(Mode::Follower);
    world
        .round(vec![Cmd::Put(6, spec(Some("c"), Some(1), Some("a")))])
        .unwrap();
    let records = world.outbox(TABLE_GROUP);
    let changes: Vec<OutboxEntry> = records.iter().map(|(_, r)| r.clone()).collect();
    deliver_one_by_one(&mut world, &changes);
    let through = records[1].0.clone();
    let trim = PartitionCommand::TrimOutbox { through };
    let outputs = world.propose(TABLE_GROUP, vec![trim.clone(), trim]);
    assert_eq!(
        outputs.iter().map(|(o, _)| o.clone()).collect::<Vec<_>>(),
        vec![
            PartitionOutput::OutboxTrimmed { removed: 2 },
            PartitionOutput::OutboxTrimmed { removed: 0 },
        ]
    );
}
