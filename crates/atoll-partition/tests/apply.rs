//! The partition state machine against the in-memory engine.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use atoll_expr::ast::{
    Comparator, Condition, Name, Operand, Path, PathElement, SetOperand, SetValue, Update,
    UpdateAction, ValueRef,
};
use atoll_model::{AttributeValue, Item, Number, encode_item, encode_row_key, item_size_bytes};
use atoll_partition::{
    ItemWrite, PartitionCommand, PartitionOutput, PartitionStateMachine, ReturnValues, WriteAction,
    WriteOp, read_item, row_key_token,
};
use atoll_replication::{ApplyContext, GroupStateMachine};
use atoll_storage::{Durability, Storage};

fn item(pk: &str, value: &str) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), AttributeValue::S(pk.into()));
    item.insert("v".into(), AttributeValue::S(value.into()));
    item
}

fn row_key(pk: &str) -> Vec<u8> {
    encode_row_key(&AttributeValue::S(pk.into()), None).expect("key")
}

fn write(pk: &str, action: WriteAction, return_values: ReturnValues) -> ItemWrite {
    ItemWrite {
        row_key: row_key(pk),
        action,
        condition: None,
        names: HashMap::new(),
        values: HashMap::new(),
        return_values,
        return_old_on_condition_failure: false,
    }
}

fn put(item: &Item, return_values: ReturnValues) -> PartitionCommand {
    let pk = match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => unreachable!("test items have a string pk"),
    };
    PartitionCommand::Write(Box::new(write(
        &pk,
        WriteAction::Put {
            record: encode_item(item),
            size_bytes: item_size_bytes(item) as u32,
        },
        return_values,
    )))
}

fn path(name: &str) -> Path {
    Path(vec![PathElement::Attribute(Name::Literal(name.into()))])
}

struct Partition {
    storage: Storage,
    sm: PartitionStateMachine,
}

impl Partition {
    fn new() -> Self {
        let storage = Storage::in_memory();
        let sm = PartitionStateMachine::open(
            9,
            storage.keyspace("items").unwrap(),
            storage.keyspace("stats").unwrap(),
            (0, u64::MAX),
        )
        .unwrap();
        Partition { storage, sm }
    }

    fn apply(&self, commands: &[PartitionCommand]) -> Vec<PartitionOutput> {
        let mut ctx = ApplyContext::new();
        let mut outputs = Vec::new();
        for (i, command) in commands.iter().enumerate() {
            let bytes = command.encode().expect("encode");
            let output = self
                .sm
                .apply(&mut ctx, i as u64 + 1, &bytes)
                .expect("apply");
            outputs.push(output);
        }
        self.storage
            .commit(ctx.into_batch(), Durability::Buffered)
            .expect("commit");
        outputs
    }

    fn get(&self, pk: &str) -> Option<Item> {
        read_item(self.sm.items(), &row_key(pk)).unwrap()
    }
}

#[test]
fn puts_in_one_round_see_each_other_and_keep_statistics() {
    let partition = Partition::new();
    let first = item("a", "one");
    let second = item("a", "two");
    let outputs = partition.apply(&[
        put(&first, ReturnValues::AllOld),
        put(&second, ReturnValues::AllOld),
    ]);
    let size = item_size_bytes(&first) as u32;
    assert_eq!(
        outputs,
        vec![
            PartitionOutput::Written {
                returned: None,
                old_size_bytes: 0,
                new_size_bytes: size
            },
            PartitionOutput::Written {
                returned: Some(first.clone()),
                old_size_bytes: size,
                new_size_bytes: item_size_bytes(&second) as u32
            },
        ]
    );
    assert_eq!(partition.get("a"), Some(second.clone()));
    assert_eq!(partition.sm.stats().item_count(), 1);

    let batch = PartitionCommand::Batch {
        ops: vec![
            WriteOp::Delete {
                row_key: row_key("a"),
            },
            WriteOp::Put {
                row_key: row_key("b"),
                record: encode_item(&item("b", "x")),
                size_bytes: item_size_bytes(&item("b", "x")) as u32,
            },
        ],
    };
    assert_eq!(
        partition.apply(&[batch]),
        vec![PartitionOutput::BatchWritten {
            old_sizes_bytes: vec![item_size_bytes(&second) as u32, 0]
        }]
    );
    assert_eq!(partition.get("a"), None);
    assert_eq!(partition.sm.stats().item_count(), 1);
    let reopened = PartitionStateMachine::open(
        9,
        partition.storage.keyspace("items").unwrap(),
        partition.storage.keyspace("stats").unwrap(),
        (0, u64::MAX),
    )
    .unwrap();
    assert_eq!(reopened.stats().item_count(), 1);
    assert_eq!(
        reopened.stats().size_bytes(),
        item_size_bytes(&item("b", "x")) as u64
    );
}

#[test]
fn a_false_condition_writes_nothing_and_can_return_the_item() {
    let partition = Partition::new();
    partition.apply(&[put(&item("a", "one"), ReturnValues::None)]);
    let mut conditional = write(
        "a",
        WriteAction::Put {
            record: encode_item(&item("a", "two")),
            size_bytes: item_size_bytes(&item("a", "two")) as u32,
        },
        ReturnValues::None,
    );
    conditional.condition = Some(Condition::AttributeNotExists(path("pk")));
    conditional.return_old_on_condition_failure = true;
    let outputs = partition.apply(&[PartitionCommand::Write(Box::new(conditional))]);
    assert_eq!(
        outputs,
        vec![PartitionOutput::ConditionFailed {
            old: Some(item("a", "one")),
            old_size_bytes: item_size_bytes(&item("a", "one")) as u32
        }]
    );
    assert_eq!(partition.get("a"), Some(item("a", "one")));
}

#[test]
fn updates_create_items_count_and_return_updated_attributes() {
    let partition = Partition::new();
    let mut key = Item::new();
    key.insert("pk".into(), AttributeValue::S("c".into()));
    let mut values = HashMap::new();
    values.insert(":one".to_string(), AttributeValue::N(Number::from_i64(1)));
    let increment = Update {
        actions: vec![UpdateAction::Set(
            path("n"),
            SetValue::Plus(
                SetOperand::IfNotExists(
                    path("n"),
                    Box::new(SetOperand::Value(ValueRef::Literal(AttributeValue::N(
                        Number::from_i64(0),
                    )))),
                ),
                SetOperand::Value(ValueRef::Placeholder(":one".into())),
            ),
        )],
    };
    let command = |return_values| {
        let mut w = write(
            "c",
            WriteAction::Update {
                key: key.clone(),
                update: increment.clone(),
            },
            return_values,
        );
        w.values = values.clone();
        w.condition = Some(Condition::Compare(
            Comparator::Ne,
            Operand::Path(path("n")),
            Operand::Value(ValueRef::Literal(AttributeValue::N(Number::from_i64(2)))),
        ));
        PartitionCommand::Write(Box::new(w))
    };
    let outputs = partition.apply(&[
        command(ReturnValues::UpdatedNew),
        command(ReturnValues::UpdatedOld),
        command(ReturnValues::None),
    ]);
    let n = |value: i64| {
        let mut item = Item::new();
        item.insert("n".into(), AttributeValue::N(Number::from_i64(value)));
        item
    };
    assert!(
        matches!(&outputs[0], PartitionOutput::Written { returned: Some(r), old_size_bytes: 0, .. } if *r == n(1))
    );
    assert!(
        matches!(&outputs[1], PartitionOutput::Written { returned: Some(r), .. } if *r == n(1))
    );
    // n is 2 now: the third update's condition fails.
    assert!(matches!(
        &outputs[2],
        PartitionOutput::ConditionFailed { old: None, .. }
    ));
    let mut expected = key.clone();
    expected.insert("n".into(), AttributeValue::N(Number::from_i64(2)));
    assert_eq!(partition.get("c"), Some(expected));
    assert_eq!(partition.sm.stats().item_count(), 1);
}

#[test]
fn a_split_moves_the_upper_tokens_out_of_range_and_statistics() {
    let partition = Partition::new();
    let names: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let mut tokens: Vec<(u64, &str)> = names
        .iter()
        .map(|pk| (row_key_token(&row_key(pk)).expect("token"), pk.as_str()))
        .collect();
    tokens.sort();
    let (at_token, _) = tokens[25];
    let size = |pk: &str| item_size_bytes(&item(pk, "v")) as u64;
    let upper_bytes: u64 = tokens[25..].iter().map(|(_, pk)| size(pk)).sum();

    // 39 items stored before the round; the 40th is written in the same
    // round as the split, so the split must count it from the round's writes.
    let (first, rest) = names.split_first().expect("names");
    let puts: Vec<PartitionCommand> = rest
        .iter()
        .map(|pk| put(&item(pk, "v"), ReturnValues::None))
        .collect();
    partition.apply(&puts);
    let outputs = partition.apply(&[
        put(&item(first, "v"), ReturnValues::None),
        PartitionCommand::Split { at_token },
    ]);
    assert_eq!(
        outputs[1],
        PartitionOutput::Split {
            moved_items: 15,
            moved_bytes: upper_bytes
        }
    );
    assert_eq!(partition.sm.range(), (0, at_token - 1));
    assert_eq!(partition.sm.stats().item_count(), 25);

    // Writes in the part that left are refused, whole batches included.
    let (_, upper) = tokens[30];
    let (_, lower) = tokens[3];
    assert_eq!(
        partition.apply(&[put(&item(upper, "new"), ReturnValues::None)]),
        vec![PartitionOutput::WrongPartition]
    );
    let mixed = PartitionCommand::Batch {
        ops: vec![
            WriteOp::Delete {
                row_key: row_key(lower),
            },
            WriteOp::Delete {
                row_key: row_key(upper),
            },
        ],
    };
    assert_eq!(
        partition.apply(&[mixed]),
        vec![PartitionOutput::WrongPartition]
    );
    assert_eq!(partition.get(lower), Some(item(lower, "v")));
    assert_eq!(partition.get(upper), Some(item(upper, "v")));

    // A retried split changes nothing; the range survives a reopen; a
    // partition opened on the upper part counts the items it finds there.
    assert_eq!(
        partition.apply(&[PartitionCommand::Split { at_token }]),
        vec![PartitionOutput::Split {
            moved_items: 0,
            moved_bytes: 0
        }]
    );
    let stats = partition.storage.keyspace("stats").unwrap();
    let items = partition.storage.keyspace("items").unwrap();
    let reopened =
        PartitionStateMachine::open(9, items.clone(), stats.clone(), (0, u64::MAX)).unwrap();
    assert_eq!(reopened.range(), (0, at_token - 1));
    assert_eq!(reopened.stats().item_count(), 25);
    let upper_partition =
        PartitionStateMachine::open(10, items, stats, (at_token, u64::MAX)).unwrap();
    assert_eq!(upper_partition.stats().item_count(), 15);
    assert_eq!(upper_partition.stats().size_bytes(), upper_bytes);
}

#[test]
fn an_export_replaces_another_replicas_range_and_recounts() {
    let leader = Partition::new();
    let names: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    let puts: Vec<PartitionCommand> = names
        .iter()
        .map(|pk| put(&item(pk, "leader"), ReturnValues::None))
        .collect();
    leader.apply(&puts);

    // A replica with other, stale contents imports the leader's state.
    let follower = Partition::new();
    follower.apply(&[
        put(&item("k3", "stale"), ReturnValues::None),
        put(&item("only-here", "stale"), ReturnValues::None),
    ]);
    let view = leader.storage.read_view();
    atoll_replication::transfer_state(&leader.sm, &view, &follower.sm, &follower.storage)
        .expect("export and import");

    assert_eq!(follower.get("k3"), Some(item("k3", "leader")));
    assert_eq!(follower.get("only-here"), None);
    assert_eq!(follower.sm.stats().item_count(), 30);
    assert_eq!(
        follower.sm.stats().size_bytes(),
        leader.sm.stats().size_bytes()
    );
    let reopened = PartitionStateMachine::open(
        9,
        follower.storage.keyspace("items").unwrap(),
        follower.storage.keyspace("stats").unwrap(),
        (0, u64::MAX),
    )
    .unwrap();
    assert_eq!(reopened.stats().item_count(), 30);
}
