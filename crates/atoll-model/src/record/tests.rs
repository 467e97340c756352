use proptest::prelude::*;

use super::*;
use crate::testing::arb_item;

fn sample_item() -> Item {
    Item::from([
        ("id".to_owned(), AttributeValue::S("user#1".into())),
        (
            "n".to_owned(),
            AttributeValue::N(Number::parse("-12.5").unwrap()),
        ),
        ("bin".to_owned(), AttributeValue::B(vec![0, 255])),
        ("yes".to_owned(), AttributeValue::Bool(true)),
        ("no".to_owned(), AttributeValue::Bool(false)),
        ("nothing".to_owned(), AttributeValue::Null),
        (
            "doc".to_owned(),
            AttributeValue::M(BTreeMap::from([(
                "list".to_owned(),
                AttributeValue::L(vec![
                    AttributeValue::Null,
                    AttributeValue::M(BTreeMap::new()),
                ]),
            )])),
        ),
        (
            "ss".to_owned(),
            AttributeValue::Ss(vec!["b".into(), "a".into()]),
        ),
        (
            "ns".to_owned(),
            AttributeValue::Ns(vec![Number::from_i64(3), Number::ZERO]),
        ),
        ("bs".to_owned(), AttributeValue::Bs(vec![vec![], vec![1]])),
    ])
}

/// Wraps a raw payload as a record with a valid checksum.
fn seal(payload: &[u8]) -> Vec<u8> {
    let mut record = vec![RECORD_FORMAT_VERSION];
    record.extend_from_slice(payload);
    let checksum = crc32fast::hash(&record);
    record.extend_from_slice(&checksum.to_le_bytes());
    record
}

fn nested(depth: usize) -> AttributeValue {
    (0..depth).fold(AttributeValue::Null, |inner, _| {
        AttributeValue::L(vec![inner])
    })
}

#[test]
fn round_trips_every_type_and_keeps_set_order() {
    let item = sample_item();
    assert_eq!(decode_item(&encode_item(&item)), Ok(item));
    assert_eq!(decode_item(&encode_item(&Item::new())), Ok(Item::new()));
}

#[test]
fn encoding_is_deterministic_and_starts_with_the_version() {
    let bytes = encode_item(&sample_item());
    assert_eq!(
        bytes,
        encode_item(&sample_item().into_iter().rev().collect())
    );
    assert_eq!(bytes.first(), Some(&RECORD_FORMAT_VERSION));
}

#[test]
fn rejects_bad_envelopes() {
    assert_eq!(decode_item(&[]), Err(RecordError::Truncated));
    assert_eq!(decode_item(&[1, 2, 3]), Err(RecordError::Truncated));
    let empty_body = 0u32.to_le_bytes();
    assert_eq!(crc32fast::hash(&[]), 0);
    assert_eq!(decode_item(&empty_body), Err(RecordError::Truncated));
    let mut other_version = vec![9, 0];
    other_version.extend_from_slice(&crc32fast::hash(&[9, 0]).to_le_bytes());
    assert_eq!(
        decode_item(&other_version),
        Err(RecordError::UnsupportedVersion { version: 9 })
    );
    let mut flipped = encode_item(&sample_item());
    flipped[3] ^= 0x10;
    assert!(matches!(
        decode_item(&flipped),
        Err(RecordError::ChecksumMismatch { .. })
    ));
}

#[test]
fn rejects_malformed_payloads_with_valid_checksums() {
    let payloads: [&[u8]; 10] = [
        &[],
        &[1],
        &[1, 1, b'a'],
        &[1, 1, b'a', 99],
        &[1, 1, b'a', TAG_S, 5, b'x'],
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        &[1, 1, 0xC3, TAG_NULL],
        &[2, 1, b'a', TAG_NULL, 1, b'a', TAG_NULL],
        &[1, 1, b'a', TAG_N, 0x03, 130, 1, 0x00],
        &[0, 0],
    ];
    for payload in payloads {
        assert!(
            matches!(
                decode_item(&seal(payload)),
                Err(RecordError::Malformed { .. } | RecordError::Truncated)
            ),
            "{payload:?}"
        );
    }
}

#[test]
fn bounds_nesting_depth() {
    let deep_ok = Item::from([("a".to_owned(), nested(MAX_RECORD_NESTING_DEPTH))]);
    assert_eq!(decode_item(&encode_item(&deep_ok)), Ok(deep_ok));
    let too_deep = Item::from([("a".to_owned(), nested(MAX_RECORD_NESTING_DEPTH + 1))]);
    assert_eq!(
        decode_item(&encode_item(&too_deep)),
        Err(RecordError::Malformed {
            reason: "nesting too deep"
        })
    );
    // A forged record of a million nested lists fails fast instead of recursing.
    let mut payload = vec![1, 1, b'a'];
    for _ in 0..1_000_000 {
        payload.extend_from_slice(&[TAG_L, 1]);
    }
    payload.push(TAG_NULL);
    assert!(decode_item(&seal(&payload)).is_err());
}

#[test]
fn huge_declared_counts_do_not_allocate() {
    // Count 2^40 of lists: rejected by the remaining-bytes bound, not by an allocator abort.
    let mut payload = vec![1, 1, b'a', TAG_L];
    payload.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    assert!(decode_item(&seal(&payload)).is_err());
}

proptest! {
    #[test]
    fn arbitrary_items_round_trip(item in arb_item()) {
        prop_assert_eq!(decode_item(&encode_item(&item)), Ok(item));
    }

    #[test]
    fn corrupted_records_are_detected(item in arb_item(), index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = encode_item(&item);
        let at = index.index(bytes.len());
        bytes[at] ^= flip;
        prop_assert!(decode_item(&bytes).is_err());
    }

    #[test]
    fn truncated_records_never_panic(item in arb_item(), index in any::<prop::sample::Index>()) {
        let bytes = encode_item(&item);
        let _ = decode_item(&bytes[..index.index(bytes.len())]);
    }

    #[test]
    fn random_payloads_with_valid_checksums_never_panic(payload in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(item) = decode_item(&seal(&payload)) {
            prop_assert_eq!(decode_item(&encode_item(&item)), Ok(item));
        }
    }
}
