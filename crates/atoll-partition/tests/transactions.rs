//! A partition's part in transactions, against the in-memory engine: a
//! prepare votes on every action and holds the items only when all can
//! apply; a commit applies exactly what was prepared and frees the items;
//! a release frees them writing nothing; while held, no other write
//! (single, batch, another transaction's prepare, a Time to Live sweep)
//! touches them; held items travel in snapshots and stay with their
//! tokens across a split; transactional reads' versions change only when
//! the item may have been written.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::collections::HashMap;

use atoll_expr::ExpressionKind;
use atoll_model::table::{KeyAttribute, KeySchema, LocalIndex, Projection, ScalarType};
use atoll_model::{
    AttributeValue, Item, MAX_ITEM_SIZE_BYTES, Number, encode_item, encode_row_key, item_size_bytes,
};
use atoll_partition::{
    CommittedWrite, DEFAULT_ITEM_COLLECTION_LIMIT_BYTES, GlobalIndexSet, GlobalIndexSpec,
    ItemWrite, LocalIndexes, PartitionCommand, PartitionOutput, PartitionStateMachine,
    ReturnValues, StreamSpec, StreamViewType, TokenRange, TransactionAction, TransactionId,
    TransactionOp, TransactionalRead, Vote, WriteAction, WriteOp, WriteRejection, read_item,
    row_key_token,
};
use atoll_replication::{ApplyContext, GroupStateMachine, transfer_state};
use atoll_storage::{Durability, Storage};

const GROUP: u64 = 31;
const FULL: TokenRange = (0, u64::MAX);
const ITEMS: &str = "items";
const STATS: &str = "stats";
const AUX: &str = "items_idx";

// ---------------------------------------------------------------------------
// Items, keys and commands

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(Number::from_i64(value))
}

/// An item `pk` with attributes `attributes`.
fn item(pk: &str, attributes: &[(&str, AttributeValue)]) -> Item {
    let mut item = Item::from([("pk".to_string(), s(pk))]);
    for (name, value) in attributes {
        item.insert((*name).to_string(), value.clone());
    }
    item
}

fn keys(pk: &str) -> Item {
    item(pk, &[])
}

fn row_key(pk: &str) -> Vec<u8> {
    encode_row_key(&s(pk), None).unwrap()
}

fn row_keys(pks: &[&str]) -> Vec<Vec<u8>> {
    pks.iter().map(|pk| row_key(pk)).collect()
}

fn size(item: &Item) -> u32 {
    item_size_bytes(item) as u32
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

fn values(values: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
    values
        .iter()
        .map(|(name, value)| ((*name).to_string(), value.clone()))
        .collect()
}

fn put(it: &Item) -> PartitionCommand {
    let pk = match it.get("pk") {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => unreachable!("test items have a string pk"),
    };
    PartitionCommand::Write(Box::new(ItemWrite {
        row_key: row_key(&pk),
        action: WriteAction::Put {
            record: encode_item(it),
            size_bytes: size(it),
        },
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_values: ReturnValues::None,
        return_old_on_condition_failure: false,
    }))
}

fn batch_put(it: &Item) -> WriteOp {
    let pk = match it.get("pk") {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => unreachable!("test items have a string pk"),
    };
    WriteOp::Put {
        row_key: row_key(&pk),
        record: encode_item(it),
        size_bytes: size(it),
    }
}

fn stamped(now_ms: u64, command: PartitionCommand) -> PartitionCommand {
    PartitionCommand::Stamped {
        now_ms,
        command: Box::new(command),
    }
}

fn txn(ledger_key: &str, attempt: u64) -> TransactionId {
    TransactionId {
        ledger_key: ledger_key.into(),
        attempt,
    }
}

/// An action on `pk` without a condition.
fn action(pk: &str, op: TransactionOp) -> TransactionAction {
    TransactionAction {
        row_key: row_key(pk),
        op,
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_old_on_condition_failure: false,
    }
}

/// `action` with condition `condition` and `:values` (for the condition
/// and, on an update, the update).
fn conditional(
    mut action: TransactionAction,
    condition: &str,
    vals: &[(&str, AttributeValue)],
) -> TransactionAction {
    action.condition =
        Some(atoll_expr::parse_condition(condition, ExpressionKind::Condition).unwrap());
    action.values.extend(values(vals));
    action
}

fn put_op(it: &Item) -> TransactionOp {
    TransactionOp::Put {
        record: encode_item(it),
        size_bytes: size(it),
    }
}

/// An Update of `pk` with `expression` and its `:values`.
fn update_action(pk: &str, expression: &str, vals: &[(&str, AttributeValue)]) -> TransactionAction {
    let mut action = action(
        pk,
        TransactionOp::Update {
            key: keys(pk),
            update: atoll_expr::parse_update(expression).unwrap(),
        },
    );
    action.values = values(vals);
    action
}

fn prepare(txn: &TransactionId, actions: Vec<TransactionAction>) -> PartitionCommand {
    PartitionCommand::PrepareTransaction {
        txn: txn.clone(),
        actions,
    }
}

fn commit(txn: &TransactionId, pks: &[&str]) -> PartitionCommand {
    PartitionCommand::CommitTransaction {
        txn: txn.clone(),
        row_keys: row_keys(pks),
    }
}

fn release(txn: &TransactionId, pks: &[&str]) -> PartitionCommand {
    PartitionCommand::ReleaseTransaction {
        txn: txn.clone(),
        row_keys: row_keys(pks),
    }
}

fn prepared(votes: Vec<Vote>) -> PartitionOutput {
    PartitionOutput::Prepared { votes }
}

/// What a commit reports for a write without local indexes.
fn committed_write(old_size_bytes: u32, new_size_bytes: u32) -> Option<CommittedWrite> {
    Some(CommittedWrite {
        old_size_bytes,
        new_size_bytes,
        collection_size_bytes: None,
        index_writes: Vec::new(),
    })
}

// ---------------------------------------------------------------------------
// Partitions

/// A table's partition as a node hosts it: global indexes and streams fed
/// through the table's index keyspace, which holds the prepared records.
fn open(storage: &Storage, group: u64, range: TokenRange) -> PartitionStateMachine {
    PartitionStateMachine::open(
        group,
        storage.keyspace(ITEMS).unwrap(),
        storage.keyspace(STATS).unwrap(),
        range,
    )
    .unwrap()
    .with_global_indexes(storage.keyspace(AUX).unwrap(), key_schema())
    .unwrap()
    .with_streams()
    .unwrap()
}

struct Partition {
    storage: Storage,
    sm: PartitionStateMachine,
    next_index: Cell<u64>,
}

impl Partition {
    fn new() -> Partition {
        let storage = Storage::in_memory();
        let sm = open(&storage, GROUP, FULL);
        Partition {
            storage,
            sm,
            next_index: Cell::new(1),
        }
    }

    /// A partition of a table keyed by pk and sk, with local index `by_n`
    /// (n N, ALL) and item collections of at most `limit` bytes, opened as
    /// a node opens it (local indexes in the same index keyspace).
    fn with_local_index(limit: u64) -> Partition {
        let storage = Storage::in_memory();
        let sm = PartitionStateMachine::open(
            GROUP,
            storage.keyspace(ITEMS).unwrap(),
            storage.keyspace(STATS).unwrap(),
            FULL,
        )
        .unwrap()
        .with_local_indexes(LocalIndexes::new(
            storage.keyspace(AUX).unwrap(),
            sorted_key_schema(),
            vec![by_n()],
            limit,
        ))
        .with_global_indexes(storage.keyspace(AUX).unwrap(), sorted_key_schema())
        .unwrap()
        .with_streams()
        .unwrap();
        Partition {
            storage,
            sm,
            next_index: Cell::new(1),
        }
    }

    /// Another partition on the same storage (as a split makes it).
    fn sibling(&self, group: u64, range: TokenRange) -> Partition {
        Partition {
            storage: self.storage.clone(),
            sm: open(&self.storage, group, range),
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
                self.sm.apply(&mut ctx, index, &bytes).expect("apply")
            })
            .collect();
        self.storage
            .commit(ctx.into_batch(), Durability::Buffered)
            .unwrap();
        outputs
    }

    fn apply_one(&self, command: PartitionCommand) -> PartitionOutput {
        self.apply(&[command]).pop().unwrap()
    }

    fn get(&self, pk: &str) -> Option<Item> {
        read_item(self.sm.items(), &row_key(pk)).unwrap()
    }

    fn read(&self, pks: &[&str]) -> Vec<TransactionalRead> {
        self.sm.read_for_transaction(&row_keys(pks)).unwrap()
    }

    fn held(&self, pks: &[&str]) -> Vec<bool> {
        self.read(pks).iter().map(|read| read.held).collect()
    }

    fn version(&self, pk: &str) -> (u64, u64) {
        self.read(&[pk])[0].version
    }

    /// Row keys of the items held since before `before_ms`, in order.
    fn held_since_before(&self, before_ms: u64) -> Vec<Vec<u8>> {
        self.sm
            .held_since_before(before_ms, 100)
            .unwrap()
            .into_iter()
            .map(|record| record.action.row_key)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// 1. Prepare and commit

#[test]
fn a_prepare_holds_the_items_and_the_commit_applies_exactly_the_writes() {
    let p = Partition::new();
    let u = item("u", &[("v", s("1")), ("n", n(1))]);
    let d = item("d", &[("v", s("1"))]);
    let c = item("c", &[("v", s("1"))]);
    p.apply(&[put(&u), put(&d), put(&c)]);
    let before = p.read(&["p", "u", "d", "c"]);

    let new_p = item("p", &[("v", s("new"))]);
    let a = txn("t1", 1);
    let actions = vec![
        conditional(action("p", put_op(&new_p)), "attribute_not_exists(pk)", &[]),
        conditional(
            update_action(
                "u",
                "SET v = :v ADD n :one",
                &[(":v", s("2")), (":one", n(1))],
            ),
            "v = :old",
            &[(":old", s("1"))],
        ),
        action("d", TransactionOp::Delete),
        conditional(
            action("c", TransactionOp::Check),
            "v = :old",
            &[(":old", s("1"))],
        ),
    ];
    assert_eq!(
        p.apply_one(prepare(&a, actions)),
        prepared(vec![Vote::Ready; 4])
    );
    // Held, and nothing written yet.
    let during = p.read(&["p", "u", "d", "c"]);
    assert_eq!(during.iter().map(|r| r.held).collect::<Vec<_>>(), [true; 4]);
    for (was, is) in before.iter().zip(&during) {
        assert!(!was.held);
        assert_eq!(was.item, is.item);
        assert_eq!(was.size_bytes, is.size_bytes);
    }
    assert_eq!(p.get("p"), None);
    assert_eq!(p.get("u"), Some(u.clone()));
    assert_eq!(p.get("d"), Some(d.clone()));
    assert_eq!(p.sm.stats().item_count(), 3);
    let records = p.held_since_before(u64::MAX);
    assert_eq!(records.len(), 4);

    let new_u = item("u", &[("v", s("2")), ("n", n(2))]);
    assert_eq!(
        p.apply_one(commit(&a, &["p", "u", "d", "c"])),
        PartitionOutput::TransactionCommitted {
            writes: vec![
                committed_write(0, size(&new_p)),
                committed_write(size(&u), size(&new_u)),
                committed_write(size(&d), 0),
                None,
            ]
        }
    );
    assert_eq!(p.get("p"), Some(new_p.clone()));
    assert_eq!(p.get("u"), Some(new_u.clone()));
    assert_eq!(p.get("d"), None);
    assert_eq!(p.get("c"), Some(c.clone()));
    assert_eq!(p.held(&["p", "u", "d", "c"]), [false; 4]);
    assert!(p.held_since_before(u64::MAX).is_empty());
    // Statistics follow the writes: p in, d out.
    assert_eq!(p.sm.stats().item_count(), 3);
    assert_eq!(
        p.sm.stats().size_bytes(),
        u64::from(size(&new_p) + size(&new_u) + size(&c))
    );
    // The freed items take writes again.
    assert!(matches!(
        p.apply_one(put(&item("u", &[("v", s("3"))]))),
        PartitionOutput::Written { .. }
    ));
}

// ---------------------------------------------------------------------------
// 2. A failing condition

#[test]
fn a_failing_condition_votes_so_and_holds_nothing() {
    for return_old in [false, true] {
        let p = Partition::new();
        let a_item = item("a", &[("v", s("1"))]);
        let b_item = item("b", &[("v", s("1"))]);
        p.apply(&[put(&a_item), put(&b_item)]);
        let mut failing = conditional(
            action("b", TransactionOp::Delete),
            "v = :want",
            &[(":want", s("2"))],
        );
        failing.return_old_on_condition_failure = return_old;
        let t = txn("t2", 1);
        let output = p.apply_one(prepare(
            &t,
            vec![action("a", put_op(&item("a", &[("v", s("new"))]))), failing],
        ));
        assert_eq!(
            output,
            prepared(vec![
                Vote::Ready,
                Vote::ConditionFailed {
                    old: return_old.then(|| b_item.clone())
                },
            ]),
            "return_old={return_old}"
        );
        // All or nothing: not even the action that could apply holds its item.
        assert_eq!(p.held(&["a", "b"]), [false, false]);
        assert!(p.held_since_before(u64::MAX).is_empty());
        assert_eq!(p.get("a"), Some(a_item.clone()));
        assert_eq!(p.get("b"), Some(b_item.clone()));
        assert!(matches!(
            p.apply_one(put(&item("a", &[("v", s("2"))]))),
            PartitionOutput::Written { .. }
        ));
        // A commit of what was not prepared writes nothing.
        assert_eq!(
            p.apply_one(commit(&t, &["a", "b"])),
            PartitionOutput::TransactionCommitted {
                writes: vec![None, None]
            }
        );
        assert_eq!(p.get("a"), Some(item("a", &[("v", s("2"))])));
        assert_eq!(p.get("b"), Some(b_item));
    }
}

// ---------------------------------------------------------------------------
// 3. Release

#[test]
fn a_release_frees_the_items_writing_nothing_and_is_idempotent() {
    let p = Partition::new();
    let a_item = item("a", &[("v", s("1"))]);
    let b_item = item("b", &[("v", s("1"))]);
    p.apply(&[put(&a_item), put(&b_item)]);
    let t = txn("t3", 2);
    assert_eq!(
        p.apply_one(prepare(
            &t,
            vec![
                action("a", put_op(&item("a", &[("v", s("new"))]))),
                action("b", TransactionOp::Delete),
            ]
        )),
        prepared(vec![Vote::Ready, Vote::Ready])
    );
    // Another attempt of the same transaction, or another transaction,
    // neither frees nor commits what this attempt holds.
    for other in [txn("t3", 1), txn("t3", 3), txn("other", 2)] {
        assert_eq!(
            p.apply_one(release(&other, &["a", "b"])),
            PartitionOutput::TransactionReleased { released: 0 },
            "{other:?}"
        );
        assert_eq!(
            p.apply_one(commit(&other, &["a", "b"])),
            PartitionOutput::TransactionCommitted {
                writes: vec![None, None]
            },
            "{other:?}"
        );
        assert_eq!(p.held(&["a", "b"]), [true, true]);
    }
    assert_eq!(p.get("a"), Some(a_item.clone()));
    assert_eq!(p.get("b"), Some(b_item.clone()));

    assert_eq!(
        p.apply_one(release(&t, &["a", "b"])),
        PartitionOutput::TransactionReleased { released: 2 }
    );
    assert_eq!(p.held(&["a", "b"]), [false, false]);
    assert_eq!(p.get("a"), Some(a_item.clone()));
    assert_eq!(p.get("b"), Some(b_item.clone()));
    // Again: nothing more to free; a late commit finds nothing held.
    assert_eq!(
        p.apply_one(release(&t, &["a", "b"])),
        PartitionOutput::TransactionReleased { released: 0 }
    );
    assert_eq!(
        p.apply_one(commit(&t, &["a", "b"])),
        PartitionOutput::TransactionCommitted {
            writes: vec![None, None]
        }
    );
    assert_eq!(p.get("a"), Some(a_item));
    assert_eq!(p.get("b"), Some(b_item));
    assert_eq!(p.held(&["a", "b"]), [false, false]);
    assert_eq!(p.sm.stats().item_count(), 2);
}

// ---------------------------------------------------------------------------
// 4. Conflicts

#[test]
fn a_held_item_refuses_other_writes_and_other_transactions() {
    let p = Partition::new();
    let a_item = item("a", &[("v", s("1"))]);
    let b_item = item("b", &[("v", s("1"))]);
    p.apply(&[put(&a_item), put(&b_item)]);
    let txn_a = txn("A", 1);
    let a_action = update_action("a", "SET v = :v", &[(":v", s("by A"))]);
    assert_eq!(
        p.apply_one(prepare(&txn_a, vec![a_action.clone()])),
        prepared(vec![Vote::Ready])
    );

    // A single write.
    assert_eq!(
        p.apply_one(put(&item("a", &[("v", s("single"))]))),
        PartitionOutput::TransactionConflict
    );
    assert_eq!(p.get("a"), Some(a_item.clone()));
    // A batch: refused whole, its write to a free item included.
    let batch = PartitionCommand::Batch {
        ops: vec![
            batch_put(&item("b", &[("v", s("batch"))])),
            batch_put(&item("new", &[("v", s("batch"))])),
            WriteOp::Delete {
                row_key: row_key("a"),
            },
        ],
    };
    assert_eq!(p.apply_one(batch), PartitionOutput::TransactionConflict);
    assert_eq!(p.get("a"), Some(a_item.clone()));
    assert_eq!(p.get("b"), Some(b_item.clone()));
    assert_eq!(p.get("new"), None);
    assert_eq!(p.sm.stats().item_count(), 2);
    // Another transaction: a conflict, and its free item is not held either.
    let txn_b = txn("B", 1);
    assert_eq!(
        p.apply_one(prepare(
            &txn_b,
            vec![
                action("b", TransactionOp::Delete),
                action("a", TransactionOp::Check),
            ]
        )),
        prepared(vec![Vote::Ready, Vote::Conflict])
    );
    assert_eq!(p.held(&["a", "b"]), [true, false]);
    assert_eq!(
        p.apply_one(commit(&txn_b, &["b", "a"])),
        PartitionOutput::TransactionCommitted {
            writes: vec![None, None]
        }
    );
    assert_eq!(p.get("b"), Some(b_item.clone()));
    // A's retry: ready again.
    assert_eq!(
        p.apply_one(prepare(&txn_a, vec![a_action])),
        prepared(vec![Vote::Ready])
    );
    assert_eq!(p.held_since_before(u64::MAX), [row_key("a")]);
    // A commits its own write; the item is free again.
    let by_a = item("a", &[("v", s("by A"))]);
    assert_eq!(
        p.apply_one(commit(&txn_a, &["a"])),
        PartitionOutput::TransactionCommitted {
            writes: vec![committed_write(size(&a_item), size(&by_a))]
        }
    );
    assert_eq!(p.get("a"), Some(by_a));
    assert!(matches!(
        p.apply_one(put(&item("a", &[("v", s("single"))]))),
        PartitionOutput::Written { .. }
    ));
}

#[test]
fn holds_take_effect_within_the_apply_round_that_makes_them() {
    let p = Partition::new();
    let a_item = item("a", &[("v", s("1"))]);
    p.apply(&[put(&a_item)]);
    let t = txn("round", 1);
    let by_t = item("a", &[("v", s("t"))]);
    let outputs = p.apply(&[
        prepare(&t, vec![action("a", put_op(&by_t))]),
        put(&item("a", &[("v", s("refused"))])),
        prepare(&txn("other", 1), vec![action("a", TransactionOp::Delete)]),
        commit(&t, &["a"]),
        put(&item("a", &[("v", s("after"))])),
    ]);
    assert_eq!(
        outputs,
        [
            prepared(vec![Vote::Ready]),
            PartitionOutput::TransactionConflict,
            prepared(vec![Vote::Conflict]),
            PartitionOutput::TransactionCommitted {
                writes: vec![committed_write(size(&a_item), size(&by_t))]
            },
            PartitionOutput::Written {
                returned: None,
                old_size_bytes: size(&by_t),
                new_size_bytes: size(&item("a", &[("v", s("after"))])),
            },
        ]
    );
    assert_eq!(p.get("a"), Some(item("a", &[("v", s("after"))])));
    assert_eq!(p.held(&["a"]), [false]);
}

// ---------------------------------------------------------------------------
// 5. An action invalid for the item

#[test]
fn an_update_that_cannot_apply_is_refused_and_holds_nothing() {
    let p = Partition::new();
    let a_item = item("a", &[("v", s("text"))]);
    let b_item = item("b", &[("v", s("1"))]);
    p.apply(&[put(&a_item), put(&b_item)]);
    let free = action("b", TransactionOp::Delete);

    // ADD of a number to a string.
    let output = p.apply_one(prepare(
        &txn("t5", 1),
        vec![
            free.clone(),
            update_action("a", "ADD v :one", &[(":one", n(1))]),
        ],
    ));
    let PartitionOutput::Prepared { votes } = output else {
        panic!("not a prepare's output: {output:?}");
    };
    assert_eq!(votes[0], Vote::Ready);
    assert!(
        matches!(&votes[1], Vote::Refused(WriteRejection::Expression(_))),
        "{votes:?}"
    );
    assert_eq!(p.held(&["a", "b"]), [false, false]);

    // An item grown past 400 KB.
    let big = "x".repeat(MAX_ITEM_SIZE_BYTES);
    assert_eq!(
        p.apply_one(prepare(
            &txn("t5", 2),
            vec![
                free,
                update_action("a", "SET big = :big", &[(":big", s(&big))]),
            ],
        )),
        prepared(vec![
            Vote::Ready,
            Vote::Refused(WriteRejection::ItemTooLarge)
        ])
    );
    assert_eq!(p.held(&["a", "b"]), [false, false]);
    assert!(p.held_since_before(u64::MAX).is_empty());
    assert_eq!(p.get("a"), Some(a_item));
    assert_eq!(p.get("b"), Some(b_item));
}

// ---------------------------------------------------------------------------
// 6. Snapshots

fn stream_spec() -> StreamSpec {
    StreamSpec {
        label: "L1".into(),
        view_type: StreamViewType::NewAndOldImages,
        key_schema: key_schema(),
    }
}

#[test]
fn a_snapshot_carries_held_items_and_their_actions() {
    // Without a stream, and with one (its records share the index keyspace).
    for with_stream in [false, true] {
        let leader = Partition::new();
        if with_stream {
            leader.apply_one(PartitionCommand::SetStream {
                epoch: 1,
                spec: Some(stream_spec()),
            });
        }
        let a_item = item("a", &[("v", s("1"))]);
        let b_item = item("b", &[("v", s("1"))]);
        leader.apply(&[put(&a_item), put(&b_item), put(&item("c", &[]))]);
        let t = txn("t6", 1);
        assert_eq!(
            leader.apply_one(stamped(
                5_000,
                prepare(
                    &t,
                    vec![
                        update_action("a", "SET v = :v", &[(":v", s("2"))]),
                        action("b", TransactionOp::Delete),
                    ]
                )
            )),
            prepared(vec![Vote::Ready, Vote::Ready])
        );

        let follower = Partition::new();
        transfer_state(
            &leader.sm,
            &leader.storage.read_view(),
            &follower.sm,
            &follower.storage,
        )
        .expect("transfer");
        assert_eq!(follower.held(&["a", "b", "c"]), [true, true, false]);
        assert_eq!(follower.get("a"), Some(a_item.clone()));
        let records = follower.sm.held_since_before(u64::MAX, 10).unwrap();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.txn == t && r.prepared_ms == 5_000));
        // The held records keep refusing writes there.
        follower.next_index.set(leader.next_index.get());
        assert_eq!(
            follower.apply_one(put(&item("b", &[]))),
            PartitionOutput::TransactionConflict
        );
        leader.apply_one(put(&item("b", &[])));

        // The commit applies the held actions on both alike (stamped with
        // the proposer's clock, as a leader with a stream stamps it).
        let stamped = || PartitionCommand::Stamped {
            now_ms: 6_000,
            command: Box::new(commit(&t, &["a", "b"])),
        };
        let on_leader = leader.apply_one(stamped());
        let on_follower = follower.apply_one(stamped());
        assert_eq!(on_follower, on_leader, "with_stream={with_stream}");
        let PartitionOutput::TransactionCommitted { writes } = &on_follower else {
            panic!("not a commit's output: {on_follower:?}");
        };
        assert!(writes.iter().all(Option::is_some), "{writes:?}");
        assert_eq!(follower.get("a"), Some(item("a", &[("v", s("2"))])));
        assert_eq!(follower.get("b"), None);
        assert_eq!(follower.held(&["a", "b"]), [false, false]);
        assert_eq!(follower.sm.stats().item_count(), 2);
        if with_stream {
            let from = atoll_partition::SequenceNumber {
                log_index: 0,
                sequence: 0,
            };
            assert_eq!(
                follower.sm.read_stream(0, from, 100, u64::MAX).unwrap(),
                leader.sm.read_stream(0, from, 100, u64::MAX).unwrap()
            );
        }
    }
}

#[test]
fn a_snapshot_without_held_items_frees_the_followers() {
    let leader = Partition::new();
    leader.apply(&[put(&item("a", &[("v", s("leader"))]))]);

    // A follower that prepared a transaction the leader's state no longer has.
    let follower = Partition::new();
    follower.apply(&[put(&item("z", &[("v", s("stale"))]))]);
    let t = txn("gone", 1);
    assert_eq!(
        follower.apply_one(prepare(&t, vec![action("z", TransactionOp::Delete)])),
        prepared(vec![Vote::Ready])
    );
    assert_eq!(follower.held(&["z"]), [true]);

    transfer_state(
        &leader.sm,
        &leader.storage.read_view(),
        &follower.sm,
        &follower.storage,
    )
    .expect("transfer");
    assert_eq!(follower.held(&["z"]), [false]);
    assert!(follower.held_since_before(u64::MAX).is_empty());
    assert_eq!(follower.get("z"), None);
    assert_eq!(follower.get("a"), Some(item("a", &[("v", s("leader"))])));
    // Nothing left to commit; the key takes writes.
    assert_eq!(
        follower.apply_one(commit(&t, &["z"])),
        PartitionOutput::TransactionCommitted { writes: vec![None] }
    );
    assert_eq!(follower.get("z"), None);
    assert!(matches!(
        follower.apply_one(put(&item("z", &[]))),
        PartitionOutput::Written { .. }
    ));
}

// ---------------------------------------------------------------------------
// 7. Splits

#[test]
fn held_items_stay_with_their_tokens_across_a_split() {
    let parent = Partition::new();
    let mut keyed: Vec<(u64, &str)> = ["a", "b", "c", "d", "e", "f"]
        .into_iter()
        .map(|pk| (row_key_token(&row_key(pk)).unwrap(), pk))
        .collect();
    keyed.sort();
    let (low, high) = (keyed[0].1, keyed[5].1);
    let at_token = keyed[3].0;
    let low_item = item(low, &[("v", s("1"))]);
    let high_item = item(high, &[("v", s("1"))]);
    parent.apply(&[put(&low_item), put(&high_item)]);
    let t = txn("t7", 1);
    let set_v = |pk: &str| update_action(pk, "SET v = :v", &[(":v", s("2"))]);
    assert_eq!(
        parent.apply_one(stamped(1_000, prepare(&t, vec![set_v(low), set_v(high)]))),
        prepared(vec![Vote::Ready, Vote::Ready])
    );
    assert_eq!(
        parent.held_since_before(u64::MAX),
        [row_key(low), row_key(high)]
    );
    // Held since 1000: not before it.
    assert!(parent.held_since_before(1_000).is_empty());

    assert_eq!(
        parent.apply_one(stamped(2_000, PartitionCommand::Split { at_token })),
        PartitionOutput::Split {
            moved_items: 1,
            moved_bytes: u64::from(size(&high_item))
        }
    );
    assert_eq!(parent.held_since_before(u64::MAX), [row_key(low)]);
    assert_eq!(parent.held_since_before(1_001), [row_key(low)]);

    let child = parent.sibling(GROUP + 1, (at_token, u64::MAX));
    assert_eq!(child.held_since_before(u64::MAX), [row_key(high)]);
    let records = child.sm.held_since_before(u64::MAX, 10).unwrap();
    assert_eq!(records[0].txn, t);
    assert_eq!(records[0].prepared_ms, 1_000);
    assert_eq!(child.held(&[high]), [true]);
    // The child refuses writes to the held item too.
    assert_eq!(
        child.apply_one(put(&item(high, &[]))),
        PartitionOutput::TransactionConflict
    );

    // The parent no longer answers for the key it gave away.
    assert_eq!(
        parent.apply_one(commit(&t, &[high])),
        PartitionOutput::WrongPartition
    );
    assert_eq!(
        parent.apply_one(commit(&t, &[low, high])),
        PartitionOutput::WrongPartition
    );
    assert_eq!(
        parent.apply_one(release(&t, &[high])),
        PartitionOutput::WrongPartition
    );
    assert_eq!(child.held(&[high]), [true]);
    assert_eq!(parent.get(low), Some(low_item.clone()));

    // Each commits its own share.
    let low_after = item(low, &[("v", s("2"))]);
    let high_after = item(high, &[("v", s("2"))]);
    assert_eq!(
        parent.apply_one(commit(&t, &[low])),
        PartitionOutput::TransactionCommitted {
            writes: vec![committed_write(size(&low_item), size(&low_after))]
        }
    );
    assert_eq!(
        child.apply_one(commit(&t, &[high])),
        PartitionOutput::TransactionCommitted {
            writes: vec![committed_write(size(&high_item), size(&high_after))]
        }
    );
    assert_eq!(parent.get(low), Some(low_after));
    assert_eq!(child.get(high), Some(high_after));
    assert!(parent.held_since_before(u64::MAX).is_empty());
    assert!(child.held_since_before(u64::MAX).is_empty());
    assert_eq!(parent.sm.stats().item_count(), 1);
    assert_eq!(child.sm.stats().item_count(), 1);
}

#[test]
fn a_prepare_outside_the_range_is_refused_whole() {
    let parent = Partition::new();
    let mut keyed: Vec<(u64, &str)> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|pk| (row_key_token(&row_key(pk)).unwrap(), pk))
        .collect();
    keyed.sort();
    let (low, high) = (keyed[0].1, keyed[3].1);
    parent.apply_one(PartitionCommand::Split {
        at_token: keyed[2].0,
    });
    assert_eq!(
        parent.apply_one(prepare(
            &txn("t7b", 1),
            vec![
                action(low, TransactionOp::Check),
                action(high, TransactionOp::Check),
            ]
        )),
        PartitionOutput::WrongPartition
    );
    assert_eq!(parent.held(&[low]), [false]);
}

// ---------------------------------------------------------------------------
// 8. Versions

#[test]
fn a_version_changes_when_and_only_when_the_item_is_written() {
    let p = Partition::new();
    p.apply(&[put(&item("a", &[("v", s("1"))]))]);
    let first = p.version("a");
    assert_eq!(p.version("a"), first, "a second read");
    assert_eq!(
        p.sm.check_for_transaction(&[row_key("a")]).unwrap()[0].version,
        first
    );
    // A prepare writes no item.
    let t = txn("t8", 1);
    p.apply_one(prepare(
        &t,
        vec![update_action("a", "SET v = :v", &[(":v", s("2"))])],
    ));
    let held = p.read(&["a"]).remove(0);
    assert!(held.held);
    assert_eq!(held.version, first, "after a prepare");

    // Every kind of write makes a new version.
    let mut seen = vec![first];
    let mut expect_new = |what: &str| {
        let version = p.version("a");
        assert!(
            !seen.contains(&version),
            "{what}: version {version:?} seen before in {seen:?}"
        );
        assert_eq!(p.version("a"), version, "{what}: a second read");
        seen.push(version);
    };
    p.apply_one(commit(&t, &["a"]));
    expect_new("a commit");
    p.apply_one(put(&item("a", &[("v", s("3"))])));
    expect_new("a write");
    p.apply_one(PartitionCommand::Batch {
        ops: vec![batch_put(&item("a", &[("v", s("4"))]))],
    });
    expect_new("a batch");
    p.apply_one(PartitionCommand::Write(Box::new(ItemWrite {
        row_key: row_key("a"),
        action: WriteAction::Delete,
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_values: ReturnValues::None,
        return_old_on_condition_failure: false,
    })));
    expect_new("a delete");
    assert_eq!(p.read(&["a"])[0].item, None);
}

#[test]
fn a_version_read_before_an_import_is_stale_after_it() {
    let leader = Partition::new();
    leader.apply(&[put(&item("a", &[("v", s("leader"))]))]);
    let follower = Partition::new();
    follower.apply(&[put(&item("a", &[("v", s("follower"))]))]);
    let before = follower.version("a");
    transfer_state(
        &leader.sm,
        &leader.storage.read_view(),
        &follower.sm,
        &follower.storage,
    )
    .expect("transfer");
    let after = follower.read(&["a"]).remove(0);
    assert_eq!(after.item, Some(item("a", &[("v", s("leader"))])));
    assert_ne!(after.version, before);
}

// ---------------------------------------------------------------------------
// 9. Time to Live

#[test]
fn a_held_item_does_not_expire_until_freed() {
    const NOW_MS: u64 = 1_800_000_000_000;
    let now_s = (NOW_MS / 1000) as i64;
    let p = Partition::new();
    let expired = item("e", &[("v", s("1")), ("exp", n(now_s - 10))]);
    let other = item("o", &[("exp", n(now_s - 10))]);
    p.apply(&[put(&expired), put(&other)]);
    let t = txn("t9", 1);
    assert_eq!(
        p.apply_one(prepare(&t, vec![action("e", TransactionOp::Check)])),
        prepared(vec![Vote::Ready])
    );
    let sweep = || PartitionCommand::ExpireItems {
        attribute: "exp".into(),
        row_keys: row_keys(&["e", "o"]),
        now_ms: NOW_MS,
    };
    // Only the free item goes.
    assert_eq!(
        p.apply_one(sweep()),
        PartitionOutput::Expired { deleted: 1 }
    );
    assert_eq!(p.get("e"), Some(expired.clone()));
    assert_eq!(p.get("o"), None);
    assert_eq!(p.held(&["e"]), [true]);

    assert_eq!(
        p.apply_one(release(&t, &["e"])),
        PartitionOutput::TransactionReleased { released: 1 }
    );
    assert_eq!(
        p.apply_one(sweep()),
        PartitionOutput::Expired { deleted: 1 }
    );
    assert_eq!(p.get("e"), None);
    assert_eq!(p.sm.stats().item_count(), 0);
}

// ---------------------------------------------------------------------------
// 10. Local secondary indexes and item collections

fn sorted_key_schema() -> KeySchema {
    KeySchema {
        partition_key: KeyAttribute {
            name: "pk".into(),
            scalar_type: ScalarType::S,
        },
        sort_key: Some(KeyAttribute {
            name: "sk".into(),
            scalar_type: ScalarType::S,
        }),
    }
}

/// Local index `by_n`: n N, projecting ALL.
fn by_n() -> LocalIndex {
    LocalIndex {
        name: "by_n".into(),
        key_schema: KeySchema {
            partition_key: KeyAttribute {
                name: "pk".into(),
                scalar_type: ScalarType::S,
            },
            sort_key: Some(KeyAttribute {
                name: "n".into(),
                scalar_type: ScalarType::N,
            }),
        },
        projection: Projection::All,
    }
}

/// An item of the sorted table.
fn sorted_item(pk: &str, sk: &str, attributes: &[(&str, AttributeValue)]) -> Item {
    let mut it = item(pk, attributes);
    it.insert("sk".into(), s(sk));
    it
}

fn sorted_row_key(it: &Item) -> Vec<u8> {
    encode_row_key(&it["pk"], Some(&it["sk"])).unwrap()
}

fn sorted_put(it: &Item) -> PartitionCommand {
    PartitionCommand::Write(Box::new(ItemWrite {
        row_key: sorted_row_key(it),
        action: WriteAction::Put {
            record: encode_item(it),
            size_bytes: size(it),
        },
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_values: ReturnValues::None,
        return_old_on_condition_failure: false,
    }))
}

fn sorted_put_action(it: &Item) -> TransactionAction {
    TransactionAction {
        row_key: sorted_row_key(it),
        op: put_op(it),
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_old_on_condition_failure: false,
    }
}

fn sorted_get(p: &Partition, it: &Item) -> Option<Item> {
    read_item(p.sm.items(), &sorted_row_key(it)).unwrap()
}

#[test]
fn a_commit_on_a_table_with_local_indexes_reports_its_collection_and_entries() {
    let p = Partition::with_local_index(DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let a1 = sorted_item("a", "1", &[("n", n(1))]);
    let a2 = sorted_item("a", "2", &[("n", n(2))]);
    p.apply_one(sorted_put(&a1));
    let t = txn("lsi", 1);
    assert_eq!(
        p.apply_one(prepare(&t, vec![sorted_put_action(&a2)])),
        prepared(vec![Vote::Ready])
    );
    assert_eq!(sorted_get(&p, &a2), None);
    // An ALL entry is the item and 100 bytes.
    let cost = |it: &Item| u64::from(size(it)) * 2 + 100;
    assert_eq!(
        p.apply_one(PartitionCommand::CommitTransaction {
            txn: t,
            row_keys: vec![sorted_row_key(&a2)],
        }),
        PartitionOutput::TransactionCommitted {
            writes: vec![Some(CommittedWrite {
                old_size_bytes: 0,
                new_size_bytes: size(&a2),
                collection_size_bytes: Some(cost(&a1) + cost(&a2)),
                index_writes: vec![("by_n".to_string(), size(&a2) + 100)],
            })]
        }
    );
    assert_eq!(sorted_get(&p, &a2), Some(a2));
}

#[test]
fn an_index_key_of_the_wrong_type_is_refused_at_prepare() {
    let p = Partition::with_local_index(DEFAULT_ITEM_COLLECTION_LIMIT_BYTES);
    let wrong = sorted_item("a", "1", &[("n", s("not a number"))]);
    let output = p.apply_one(prepare(&txn("lsi", 1), vec![sorted_put_action(&wrong)]));
    assert!(
        matches!(
            &output,
            PartitionOutput::Prepared { votes }
                if matches!(votes[..], [Vote::Refused(WriteRejection::IndexKeyType { .. })])
        ),
        "{output:?}"
    );
    assert!(p.held_since_before(u64::MAX).is_empty());
}

#[test]
fn a_prepared_write_is_applied_at_commit_even_if_its_collection_filled_meanwhile() {
    let filler = "y".repeat(300);
    let a1 = sorted_item("a", "1", &[("y", s(&filler))]);
    let a2 = sorted_item("a", "2", &[("y", s(&filler))]);
    let a3 = sorted_item("a", "3", &[("y", s(&filler))]);
    // No n: no entries; the collection is its items. Two fit, three do not.
    let item_size = u64::from(size(&a1));
    assert_eq!(size(&a2), size(&a1));
    assert_eq!(size(&a3), size(&a1));
    let p = Partition::with_local_index(3 * item_size - 1);
    p.apply_one(sorted_put(&a1));
    let t = txn("full", 1);
    assert_eq!(
        p.apply_one(prepare(&t, vec![sorted_put_action(&a2)])),
        prepared(vec![Vote::Ready])
    );
    // Another item of the collection, not held, is written meanwhile: the
    // collection holds two items, the held one would make three.
    let third = p.apply_one(sorted_put(&a3));
    let commit = p.apply_one(PartitionCommand::CommitTransaction {
        txn: t,
        row_keys: vec![sorted_row_key(&a2)],
    });
    // The transaction voted ready here, so it committed: its write must
    // apply (or the write of a3 must have been refused for the room the
    // held write takes).
    let a2_written = sorted_get(&p, &a2) == Some(a2.clone());
    let a3_refused = third == PartitionOutput::Refused(WriteRejection::ItemCollectionTooLarge);
    assert!(
        a2_written || a3_refused,
        "the write of a3 answered {third:?}; the commit answered {commit:?}; \
         a2 is now {:?}",
        sorted_get(&p, &a2)
    );
}

// ---------------------------------------------------------------------------
// 11. Global secondary indexes

#[test]
fn a_prepared_write_is_applied_at_commit_even_if_an_index_came_meanwhile() {
    let p = Partition::new();
    let old = item("a", &[("v", s("1"))]);
    p.apply_one(put(&old));
    let new = item("a", &[("g", s("text"))]);
    let t = txn("gsi", 1);
    assert_eq!(
        p.apply_one(prepare(&t, vec![action("a", put_op(&new))])),
        prepared(vec![Vote::Ready])
    );
    // A global index keyed by g as a number comes between prepare and commit.
    let set = GlobalIndexSet {
        epoch: 1,
        indexes: vec![GlobalIndexSpec {
            name: "by_g".into(),
            index_table: "t.by_g".into(),
            key_schema: KeySchema {
                partition_key: KeyAttribute {
                    name: "g".into(),
                    scalar_type: ScalarType::N,
                },
                sort_key: None,
            },
            projection: Projection::KeysOnly,
        }],
    };
    assert_eq!(
        p.apply_one(PartitionCommand::SetGlobalIndexes { set }),
        PartitionOutput::GlobalIndexesSet { epoch: 1 }
    );
    let output = p.apply_one(commit(&t, &["a"]));
    assert_eq!(
        p.get("a"),
        Some(new.clone()),
        "the commit answered {output:?} and left the item as it was"
    );
}
