use super::*;

fn engines() -> Vec<(Storage, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Storage::open(dir.path(), StorageOptions::default()).expect("open");
    vec![(Storage::in_memory(), None), (disk, Some(dir))]
}

fn collect(iter: RangeIter<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.map(|kv| {
        let (k, v) = kv.expect("iterate");
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

#[test]
fn batches_apply_across_keyspaces_and_ranges_iterate_both_ways() {
    for (storage, _dir) in engines() {
        let a = storage.keyspace("a").unwrap();
        let b = storage.keyspace("b").unwrap();
        let mut batch = WriteBatch::new();
        for i in 0u8..5 {
            batch.put(&a, vec![1, i], vec![i]);
        }
        batch.put(&b, b"x".to_vec(), b"y".to_vec());
        batch.put(&a, vec![2], vec![9]);
        storage.commit(batch, Durability::Synced).unwrap();

        assert_eq!(b.get(b"x").unwrap().as_deref(), Some(&b"y"[..]));
        let forward = collect(a.prefix(&[1]));
        assert_eq!(forward.len(), 5);
        assert_eq!(forward[0].0, vec![1, 0]);
        let backward = collect(a.range(
            Bound::Included(vec![1, 1]),
            Bound::Excluded(vec![1, 4]),
            true,
        ));
        assert_eq!(
            backward.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            vec![vec![1, 3], vec![1, 2], vec![1, 1]]
        );
        assert_eq!(
            a.last_with_prefix(&[1]).unwrap().unwrap().0.to_vec(),
            vec![1, 4]
        );

        let mut batch = WriteBatch::new();
        batch.delete(&a, vec![1, 0]);
        storage.commit(batch, Durability::Buffered).unwrap();
        assert!(a.get(&[1, 0]).unwrap().is_none());

        storage.drop_keyspace("b").unwrap();
        assert!(!storage.keyspace_exists("b"));
    }
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let storage = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        let ks = storage.keyspace("items").unwrap();
        let mut batch = WriteBatch::new();
        batch.put(&ks, b"k".to_vec(), b"v".to_vec());
        storage.commit(batch, Durability::Synced).unwrap();
    }
    let storage = Storage::open(dir.path(), StorageOptions::default()).unwrap();
    let ks = storage.keyspace("items").unwrap();
    assert_eq!(ks.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn prefix_successor_handles_all_ff() {
    assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
    assert_eq!(prefix_successor(&[1, 255]), Some(vec![2]));
    assert_eq!(prefix_successor(&[255, 255]), None);
}
