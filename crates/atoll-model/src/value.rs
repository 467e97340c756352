//! DynamoDB attribute values and items, independent of any wire format
//! (the API crate owns the JSON shape).

use std::collections::BTreeMap;

use crate::number::Number;

/// An item: attribute names to values. A `BTreeMap` so iteration, and hence
/// every encoding of an item, is deterministic across replicas.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB attribute value.
///
/// Sets keep the client's element order, which DynamoDB echoes back; the
/// derived `PartialEq` is therefore order-sensitive for sets, and set
/// semantics (e.g. in condition expressions) belong to the evaluator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AttributeValue {
    /// String.
    S(String),
    /// Number.
    N(Number),
    /// Binary.
    B(Vec<u8>),
    /// Boolean.
    Bool(bool),
    /// Null (DynamoDB only allows `NULL: true`).
    Null,
    /// Map of named values.
    M(BTreeMap<String, AttributeValue>),
    /// List of values.
    L(Vec<AttributeValue>),
    /// String set.
    Ss(Vec<String>),
    /// Number set.
    Ns(Vec<Number>),
    /// Binary set.
    Bs(Vec<Vec<u8>>),
}

impl AttributeValue {
    /// DynamoDB's type descriptor: "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS" or "BS".
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }

    /// Levels of nesting, counting the value itself: a scalar or set is 1,
    /// a map or list is one more than its deepest element (1 when empty).
    ///
    /// Compare with [`crate::size::MAX_NESTING_DEPTH`]: DynamoDB accepts a
    /// scalar inside 31 maps (depth 32) and rejects one inside 32, as measured
    /// against the live service (nubo-db/dynoxide issue #110).
    pub fn nesting_depth(&self) -> usize {
        match self {
            AttributeValue::M(map) => 1 + map.values().map(Self::nesting_depth).max().unwrap_or(0),
            AttributeValue::L(list) => 1 + list.iter().map(Self::nesting_depth).max().unwrap_or(0),
            _ => 1,
        }
    }

    /// Whether the value may be a key attribute (S, N or B).
    pub fn is_key_type(&self) -> bool {
        matches!(
            self,
            AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nest(depth: usize) -> AttributeValue {
        (1..depth).fold(AttributeValue::Null, |inner, i| {
            if i % 2 == 0 {
                AttributeValue::L(vec![inner])
            } else {
                AttributeValue::M(BTreeMap::from([("k".to_owned(), inner)]))
            }
        })
    }

    #[test]
    fn type_names_are_dynamodb_descriptors() {
        let cases = [
            (AttributeValue::S(String::new()), "S"),
            (AttributeValue::N(Number::ZERO), "N"),
            (AttributeValue::B(vec![]), "B"),
            (AttributeValue::Bool(true), "BOOL"),
            (AttributeValue::Null, "NULL"),
            (AttributeValue::M(BTreeMap::new()), "M"),
            (AttributeValue::L(vec![]), "L"),
            (AttributeValue::Ss(vec![]), "SS"),
            (AttributeValue::Ns(vec![]), "NS"),
            (AttributeValue::Bs(vec![]), "BS"),
        ];
        for (value, name) in cases {
            assert_eq!(value.type_name(), name);
        }
    }

    #[test]
    fn nesting_depth_counts_levels() {
        assert_eq!(AttributeValue::S("x".into()).nesting_depth(), 1);
        assert_eq!(AttributeValue::Ss(vec!["x".into()]).nesting_depth(), 1);
        assert_eq!(AttributeValue::M(BTreeMap::new()).nesting_depth(), 1);
        assert_eq!(AttributeValue::L(vec![]).nesting_depth(), 1);
        for depth in [1, 2, 3, 32, 33] {
            assert_eq!(nest(depth).nesting_depth(), depth);
        }
        let uneven = AttributeValue::L(vec![AttributeValue::Null, nest(4), nest(2)]);
        assert_eq!(uneven.nesting_depth(), 5);
    }

    #[test]
    fn only_scalars_s_n_b_are_key_types() {
        assert!(AttributeValue::S("a".into()).is_key_type());
        assert!(AttributeValue::N(Number::from_i64(1)).is_key_type());
        assert!(AttributeValue::B(vec![1]).is_key_type());
        assert!(!AttributeValue::Bool(true).is_key_type());
        assert!(!AttributeValue::Ss(vec![]).is_key_type());
    }
}
