//! The partition state machine against the in-memory engine.

use atoll_model::{AttributeValue, Item, encode_item, encode_row_key, item_size_bytes};
use atoll_partition::{
    PartitionCommand, PartitionOutput, PartitionStateMachine, WriteOp, read_item,
};
use atoll_replication::{ApplyContext, GroupStateMachine};
use atoll_storage::{Durability, Storage};

fn item(pk: &str, value: &str) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), AttributeValue::S(pk.into()));
    item.insert("v".into(), AttributeValue::S(value.into()));
    item
}

fn put(item: &Item, return_old: bool) -> PartitionCommand {
    let row_key = encode_row_key(&item["pk"], None).expect("key");
    PartitionCommand::Single {
        op: WriteOp::Put {
            row_key,
            record: encode_item(item),
            size_bytes: item_size_bytes(item) as u32,
        },
        return_old,
    }
}

fn apply(
    storage: &Storage,
    sm: &PartitionStateMachine,
    commands: &[PartitionCommand],
) -> Vec<PartitionOutput> {
    let mut ctx = ApplyContext::new();
    let mut outputs = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let bytes = command.encode().expect("encode");
        let output = sm.apply(&mut ctx, i as u64 + 1, &bytes).expect("apply");
        outputs.push((*output.downcast::<PartitionOutput>().expect("output")).clone());
    }
    storage
        .commit(ctx.into_batch(), Durability::Buffered)
        .expect("commit");
    outputs
}

#[test]
fn puts_and_deletes_return_old_items_and_keep_statistics() {
    let storage = Storage::in_memory();
    let items = storage.keyspace("items").unwrap();
    let stats = storage.keyspace("stats").unwrap();
    let sm = PartitionStateMachine::open(9, items.clone(), stats.clone()).unwrap();
    let first = item("a", "one");
    let second = item("a", "two");
    // Both writes in one apply round: the second must see the first.
    let outputs = apply(&storage, &sm, &[put(&first, true), put(&second, true)]);
    assert_eq!(
        outputs[0],
        PartitionOutput::Written {
            old: None,
            old_size_bytes: 0
        }
    );
    assert_eq!(
        outputs[1],
        PartitionOutput::Written {
            old: Some(first.clone()),
            old_size_bytes: item_size_bytes(&first) as u32
        }
    );
    let row_key = encode_row_key(&AttributeValue::S("a".into()), None).unwrap();
    assert_eq!(read_item(&items, &row_key).unwrap(), Some(second.clone()));
    assert_eq!(sm.stats().item_count(), 1);
    assert_eq!(sm.stats().size_bytes(), item_size_bytes(&second) as u64);

    let batch = PartitionCommand::Batch {
        ops: vec![
            WriteOp::Delete {
                row_key: row_key.clone(),
            },
            match put(&item("b", "x"), false) {
                PartitionCommand::Single { op, .. } => op,
                PartitionCommand::Batch { .. } => unreachable!(),
            },
        ],
    };
    assert_eq!(
        apply(&storage, &sm, &[batch]),
        vec![PartitionOutput::BatchWritten]
    );
    assert_eq!(read_item(&items, &row_key).unwrap(), None);
    assert_eq!(sm.stats().item_count(), 1);

    // Statistics are part of the applied state: a reopened partition has them.
    let reopened = PartitionStateMachine::open(9, items, stats).unwrap();
    assert_eq!(reopened.stats().item_count(), 1);
    assert_eq!(
        reopened.stats().size_bytes(),
        item_size_bytes(&item("b", "x")) as u64
    );
}
