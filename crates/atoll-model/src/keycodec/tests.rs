use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;
use crate::testing::{arb_key_bytes, arb_key_string, arb_number, big};

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn num(text: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(text).unwrap())
}

fn arb_key() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        arb_key_string().prop_map(AttributeValue::S),
        arb_number().prop_map(AttributeValue::N),
        arb_key_bytes().prop_map(AttributeValue::B),
    ]
}

/// Two sort keys of one type, as one table's schema guarantees.
fn arb_sort_key_pair() -> impl Strategy<Value = (AttributeValue, AttributeValue)> {
    prop_oneof![
        (arb_key_string(), arb_key_string())
            .prop_map(|(a, b)| (AttributeValue::S(a), AttributeValue::S(b))),
        (arb_number(), arb_number())
            .prop_map(|(a, b)| (AttributeValue::N(a), AttributeValue::N(b))),
        (arb_key_bytes(), arb_key_bytes())
            .prop_map(|(a, b)| (AttributeValue::B(a), AttributeValue::B(b))),
    ]
}

/// DynamoDB's sort-key order: S and B by bytes, N numerically (bigdecimal as oracle).
fn dynamodb_order(a: &AttributeValue, b: &AttributeValue) -> Ordering {
    match (a, b) {
        (AttributeValue::S(a), AttributeValue::S(b)) => a.as_bytes().cmp(b.as_bytes()),
        (AttributeValue::B(a), AttributeValue::B(b)) => a.cmp(b),
        (AttributeValue::N(a), AttributeValue::N(b)) => big(a).cmp(&big(b)),
        _ => unreachable!("one table has one sort key type"),
    }
}

#[test]
fn layout_is_token_tag_escaped_key_terminator_sort_key() {
    let pk = AttributeValue::B(vec![7, 0, 9]);
    let key = encode_row_key(&pk, Some(&s("x"))).unwrap();
    let token = partition_token(&pk).unwrap();
    let mut expected = token.to_be_bytes().to_vec();
    expected.extend_from_slice(&[TAG_B, 7, 0x00, 0xFF, 9, 0x00, 0x01, TAG_S, b'x']);
    assert_eq!(key, expected);
    assert_eq!(row_key_token(&key), Ok(token));
}

#[test]
fn token_distinguishes_types_but_not_spellings() {
    assert_ne!(partition_token(&s("1")), partition_token(&num("1")));
    assert_ne!(
        partition_token(&s("1")),
        partition_token(&AttributeValue::B(b"1".to_vec()))
    );
    assert_eq!(partition_token(&num("1")), partition_token(&num("1.00")));
    assert_eq!(
        encode_row_key(&num("1e2"), None),
        encode_row_key(&num("100"), None)
    );
}

#[test]
fn rejects_non_key_types() {
    let error = KeyCodecError::UnsupportedKeyType { type_name: "BOOL" };
    assert_eq!(
        partition_token(&AttributeValue::Bool(true)),
        Err(error.clone())
    );
    assert_eq!(
        encode_row_key(&AttributeValue::Bool(true), None),
        Err(error.clone())
    );
    assert_eq!(
        encode_row_key(&s("a"), Some(&AttributeValue::Bool(true))),
        Err(error)
    );
    assert!(encode_row_key(&AttributeValue::Ss(vec![]), None).is_err());
}

#[test]
fn decode_rejects_corrupt_keys() {
    let good = encode_row_key(&s("ab"), Some(&num("-1.5"))).unwrap();
    let partition_len = row_key_prefix_for_partition(&s("ab")).unwrap().len();
    for len in (0..good.len()).filter(|len| *len != partition_len) {
        assert!(
            decode_row_key(&good[..len]).is_err(),
            "prefix of {len} bytes"
        );
    }
    let mut wrong_token = good.clone();
    wrong_token[0] ^= 1;
    assert_eq!(
        decode_row_key(&wrong_token),
        Err(KeyCodecError::TokenMismatch)
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(decode_row_key(&trailing), Err(KeyCodecError::TrailingBytes));
    let mut bad_tag = good.clone();
    bad_tag[TOKEN_LEN_BYTES] = 0x09;
    assert_eq!(
        decode_row_key(&bad_tag),
        Err(KeyCodecError::UnknownTag { tag: 0x09 })
    );
    let mut bad_escape = encode_row_key(&AttributeValue::B(vec![0]), None).unwrap();
    bad_escape[TOKEN_LEN_BYTES + 2] = 0x05;
    assert_eq!(decode_row_key(&bad_escape), Err(KeyCodecError::BadEscape));
    // A non-normalised number text never hashes to a stored token.
    let mut spelled = 0u64.to_be_bytes().to_vec();
    spelled.extend_from_slice(&[TAG_N, b'1', b'.', b'0', 0x00, 0x01]);
    let token = token_of(TAG_N, b"1.0").to_be_bytes();
    spelled[..TOKEN_LEN_BYTES].copy_from_slice(&token);
    assert_eq!(decode_row_key(&spelled), Err(KeyCodecError::InvalidNumber));
}

proptest! {
    #[test]
    fn sort_keys_order_as_dynamodb_within_a_partition(pk in arb_key(), (a, b) in arb_sort_key_pair()) {
        let key_a = encode_row_key(&pk, Some(&a)).unwrap();
        let key_b = encode_row_key(&pk, Some(&b)).unwrap();
        prop_assert_eq!(key_a.cmp(&key_b), dynamodb_order(&a, &b));
    }

    #[test]
    fn row_keys_round_trip(pk in arb_key(), sk in proptest::option::of(arb_key())) {
        let key = encode_row_key(&pk, sk.as_ref()).unwrap();
        prop_assert_eq!(decode_row_key(&key), Ok((pk, sk)));
    }

    #[test]
    fn partition_prefix_holds_exactly_its_rows(
        pk in arb_key(),
        other in arb_key(),
        sk in proptest::option::of(arb_key()),
        other_sk in proptest::option::of(arb_key()),
    ) {
        let prefix = row_key_prefix_for_partition(&pk).unwrap();
        prop_assert!(encode_row_key(&pk, sk.as_ref()).unwrap().starts_with(&prefix));
        let foreign = encode_row_key(&other, other_sk.as_ref()).unwrap();
        prop_assert_eq!(foreign.starts_with(&prefix), pk == other);
    }

    #[test]
    fn prefix_freedom_holds_for_colliding_tokens(a in arb_key_bytes(), b in arb_key_bytes(), sk in arb_key_bytes()) {
        // Same token, different keys: only the escaping keeps the ranges apart.
        let row = |pk: &[u8]| {
            let mut key = row_key_prefix_for_partition(&AttributeValue::B(pk.to_vec())).unwrap();
            key.drain(..TOKEN_LEN_BYTES);
            key
        };
        let mut row_b = row(&b);
        row_b.push(TAG_B);
        row_b.extend_from_slice(&sk);
        prop_assert_eq!(row_b.starts_with(&row(&a)), a == b);
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
        let _ = decode_row_key(&bytes);
        let _ = row_key_token(&bytes);
    }

    #[test]
    fn decoding_mutated_keys_never_panics(pk in arb_key(), sk in arb_key(), index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut key = encode_row_key(&pk, Some(&sk)).unwrap();
        let at = index.index(key.len());
        key[at] = byte;
        if let Ok((pk2, sk2)) = decode_row_key(&key) {
            prop_assert_eq!(encode_row_key(&pk2, sk2.as_ref()).unwrap(), key);
        }
    }
}

fn arb_sort_key() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        arb_key_string().prop_map(AttributeValue::S),
        arb_number().prop_map(AttributeValue::N),
    ]
}

/// DynamoDB's order of two sort keys of one type.
fn sort_order(a: &AttributeValue, b: &AttributeValue) -> Ordering {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => x.as_bytes().cmp(y.as_bytes()),
        (AttributeValue::N(x), AttributeValue::N(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

proptest! {
    #[test]
    fn index_entries_sort_by_index_sort_key_then_table_sort_key(
        pk in arb_key(),
        index_a in arb_sort_key(), index_b in arb_sort_key(),
        table_a in arb_key_string(), table_b in arb_key_string(),
    ) {
        prop_assume!(std::mem::discriminant(&index_a) == std::mem::discriminant(&index_b));
        let row_a = encode_row_key(&pk, Some(&AttributeValue::S(table_a.clone()))).unwrap();
        let row_b = encode_row_key(&pk, Some(&AttributeValue::S(table_b.clone()))).unwrap();
        let entry_a = encode_local_index_key(3, &row_a, &index_a).unwrap();
        let entry_b = encode_local_index_key(3, &row_b, &index_b).unwrap();
        let expected = sort_order(&index_a, &index_b)
            .then_with(|| table_a.as_bytes().cmp(table_b.as_bytes()));
        prop_assert_eq!(entry_a.cmp(&entry_b), expected);
        // Each entry leads back to its item, and lies under its prefixes.
        prop_assert_eq!(local_index_entry_row_key(&entry_a).unwrap(), row_a.clone());
        prop_assert!(entry_a.starts_with(&local_index_prefix(3, &pk).unwrap()));
        prop_assert!(entry_a.starts_with(&local_index_sort_prefix(3, &pk, &index_a, false).unwrap()));
        let partition_prefix = row_key_prefix_for_partition(&pk).unwrap();
        prop_assert_eq!(row_key_partition_part(&row_a).unwrap(), partition_prefix.as_slice());
    }

    #[test]
    fn begins_with_prefixes_cover_exactly_the_values_that_begin_so(
        pk in arb_key(), value in arb_key_string(), prefix in arb_key_string(),
    ) {
        let row = encode_row_key(&pk, None).unwrap();
        let entry = encode_local_index_key(1, &row, &AttributeValue::S(value.clone())).unwrap();
        let under = local_index_sort_prefix(1, &pk, &AttributeValue::S(prefix.clone()), true).unwrap();
        prop_assert_eq!(entry.starts_with(&under), value.as_bytes().starts_with(prefix.as_bytes()));
    }
}

#[test]
fn index_entry_of_a_hash_only_row_key_has_no_table_sort_key() {
    let row = encode_row_key(&s("a\0b"), None).unwrap();
    let entry = encode_local_index_key(2, &row, &num("-12.5")).unwrap();
    assert_eq!(entry[0], 2);
    assert_eq!(local_index_entry_row_key(&entry).unwrap(), row);
}
