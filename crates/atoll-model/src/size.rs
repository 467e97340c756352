//! DynamoDB's item-size rules and limits.
//!
//! Sources: the AWS developer guide page "DynamoDB item sizes and formats"
//! (CapacityUnitCalculations.html) and dynalite's `itemSize`/`valSize`
//! (db/index.js), whose putItem boundary tests were run against DynamoDB:
//! - attribute name: its UTF-8 bytes (also for keys inside maps);
//! - S: UTF-8 bytes; B: raw bytes (not base64); N: [`Number::size_bytes`];
//! - BOOL and NULL: 1 byte;
//! - L and M: 3 bytes, plus per element 1 byte and the element's size (for
//!   maps the element's size includes its key's name bytes);
//! - SS, NS, BS: the sum of the elements' sizes.
//!
//! dynalite counts JavaScript string length (UTF-16 units); we follow the
//! AWS guide's UTF-8 wording, which is what DynamoDB enforces.

use crate::number::Number;
use crate::value::{AttributeValue, Item};

/// Largest item DynamoDB stores: 400 KB.
pub const MAX_ITEM_SIZE_BYTES: usize = 400 * 1024;
/// Largest partition key value.
pub const MAX_PARTITION_KEY_SIZE_BYTES: usize = 2048;
/// Largest sort key value.
pub const MAX_SORT_KEY_SIZE_BYTES: usize = 1024;
/// Longest attribute name, in UTF-8 bytes (65,536 is refused, though
/// DynamoDB's documentation says 64 KB). Key attributes have their own
/// 255-byte limit, checked where tables are defined.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 65_535;
/// Deepest nesting DynamoDB accepts, as [`AttributeValue::nesting_depth`] counts it.
pub const MAX_NESTING_DEPTH: usize = 32;

/// Bytes a value contributes to its item's size, excluding its attribute name.
pub fn attribute_value_size_bytes(value: &AttributeValue) -> usize {
    const CONTAINER_OVERHEAD_BYTES: usize = 3;
    const ELEMENT_OVERHEAD_BYTES: usize = 1;
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number.size_bytes(),
        AttributeValue::B(bytes) => bytes.len(),
        AttributeValue::Bool(_) | AttributeValue::Null => 1,
        AttributeValue::L(list) => {
            CONTAINER_OVERHEAD_BYTES
                + list
                    .iter()
                    .map(|element| ELEMENT_OVERHEAD_BYTES + attribute_value_size_bytes(element))
                    .sum::<usize>()
        }
        AttributeValue::M(map) => {
            CONTAINER_OVERHEAD_BYTES
                + map
                    .iter()
                    .map(|(name, element)| {
                        ELEMENT_OVERHEAD_BYTES + name.len() + attribute_value_size_bytes(element)
                    })
                    .sum::<usize>()
        }
        AttributeValue::Ss(texts) => texts.iter().map(String::len).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(Number::size_bytes).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(Vec::len).sum(),
    }
}

/// An item's size as DynamoDB computes it for the 400 KB limit and capacity.
pub fn item_size_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + attribute_value_size_bytes(value))
        .sum()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).unwrap())
    }

    #[test]
    fn scalar_sizes() {
        assert_eq!(
            attribute_value_size_bytes(&AttributeValue::S("héllo".into())),
            6
        );
        assert_eq!(
            attribute_value_size_bytes(&AttributeValue::B(vec![0; 7])),
            7
        );
        assert_eq!(attribute_value_size_bytes(&AttributeValue::Bool(false)), 1);
        assert_eq!(attribute_value_size_bytes(&AttributeValue::Null), 1);
        assert_eq!(attribute_value_size_bytes(&n("0")), 1);
        assert_eq!(attribute_value_size_bytes(&n("1")), 2);
    }

    #[test]
    fn number_sizes_match_dynamodb_boundaries() {
        // The lengths dynalite's putItem tests established against DynamoDB.
        let cases = [
            (format!("1{}", "0".repeat(125)), 2),
            (format!("11{}", "0".repeat(124)), 2),
            (format!("11111{}", "0".repeat(121)), 4),
            (format!("111111{}", "0".repeat(120)), 4),
            (format!("1111111{}", "0".repeat(119)), 5),
            (format!("{}{}", "1".repeat(38), "0".repeat(88)), 20),
        ];
        for (text, size) in cases {
            assert_eq!(attribute_value_size_bytes(&n(&text)), size, "{text}");
        }
        // Leading digit weight even and even digit count: one more pair byte.
        assert_eq!(attribute_value_size_bytes(&n("1.2")), 3);
        assert_eq!(attribute_value_size_bytes(&n("12")), 2);
        assert_eq!(attribute_value_size_bytes(&n("123")), 3);
        assert_eq!(attribute_value_size_bytes(&n("-1")), 3);
        assert_eq!(attribute_value_size_bytes(&n("0.5")), 2);
    }

    #[test]
    fn containers_have_overheads() {
        let empty_list = AttributeValue::L(vec![]);
        assert_eq!(attribute_value_size_bytes(&empty_list), 3);
        let list = AttributeValue::L(vec![AttributeValue::S("ab".into()), AttributeValue::Null]);
        assert_eq!(attribute_value_size_bytes(&list), 3 + (1 + 2) + (1 + 1));
        let map = AttributeValue::M(BTreeMap::from([
            ("key".to_owned(), AttributeValue::S("ab".into())),
            ("z".to_owned(), AttributeValue::M(BTreeMap::new())),
        ]));
        assert_eq!(
            attribute_value_size_bytes(&map),
            3 + (1 + 3 + 2) + (1 + 1 + 3)
        );
    }

    #[test]
    fn sets_sum_their_elements() {
        let ss = AttributeValue::Ss(vec!["a".into(), "bcd".into()]);
        assert_eq!(attribute_value_size_bytes(&ss), 4);
        let ns = AttributeValue::Ns(vec![Number::from_i64(1), Number::from_i64(-12)]);
        assert_eq!(attribute_value_size_bytes(&ns), 2 + 3);
        let bs = AttributeValue::Bs(vec![vec![1, 2], vec![3]]);
        assert_eq!(attribute_value_size_bytes(&bs), 3);
    }

    #[test]
    fn item_size_adds_names() {
        // dynalite's "just small enough" case: a (S key) plus b (S filler) fills 400 KB.
        let key = "k".repeat(10);
        let filler = "a".repeat(MAX_ITEM_SIZE_BYTES - key.len() - 2);
        let item = Item::from([
            ("a".to_owned(), AttributeValue::S(key)),
            ("b".to_owned(), AttributeValue::S(filler)),
        ]);
        assert_eq!(item_size_bytes(&item), MAX_ITEM_SIZE_BYTES);
        assert_eq!(item_size_bytes(&Item::new()), 0);
    }
}
