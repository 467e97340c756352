//! The partition state machine against the in-memory engine.

use std::collections::HashMap;

use atoll_expr::ast::{
    Comparator, Condition, Name, Operand, Path, PathElement, SetOperand, SetValue, Update,
    UpdateAction, ValueRef,
};
use atoll_model::{AttributeValue, Item, Number, encode_item, encode_row_key, item_size_bytes};
use atoll_partition::{
    ItemWrite, PartitionCommand, PartitionOutput, PartitionStateMachine, ReturnValues, WriteAction,
    WriteOp, read_item,
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
            outputs.push((*output.downcast::<PartitionOutput>().expect("output")).clone());
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
