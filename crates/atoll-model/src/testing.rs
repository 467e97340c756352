//! Proptest strategies shared by the unit tests.

use std::collections::BTreeMap;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use proptest::prelude::*;

use crate::number::Number;
use crate::value::{AttributeValue, Item};

/// The exact value of a number, for comparison against `bigdecimal`.
pub fn big(number: &Number) -> BigDecimal {
    BigDecimal::from_str(&number.to_string()).unwrap()
}

/// Numbers over DynamoDB's whole range, plus dense small values so that
/// ties and near-ties are common.
pub fn arb_number() -> impl Strategy<Value = Number> {
    let wide = (any::<bool>(), 1u32..=38, any::<u128>(), -130i32..=125).prop_map(
        |(negative, digits, raw, adjusted)| {
            let low = 10u128.pow(digits - 1);
            let coefficient = low + raw % (9 * low);
            let exponent = adjusted - digits as i32 + 1;
            let sign = if negative { "-" } else { "" };
            Number::parse(&format!("{sign}{coefficient}E{exponent}")).unwrap()
        },
    );
    let dense = (-1000i64..1000, -3i32..3).prop_map(|(coefficient, exponent)| {
        Number::parse(&format!("{coefficient}E{exponent}")).unwrap()
    });
    prop_oneof![
        4 => wide,
        2 => dense,
        1 => any::<i64>().prop_map(Number::from_i64),
        1 => prop::sample::select(vec![
            "0",
            "1E-130",
            "-1E-130",
            "9.9999999999999999999999999999999999999E+125",
            "-9.9999999999999999999999999999999999999E+125",
            "99999999999999999999999999999999999999",
            "1E+38",
            "0.1",
            "-0.1",
        ])
        .prop_map(|text| Number::parse(text).unwrap()),
    ]
}

/// Short strings, often sharing prefixes, with NUL bytes and non-ASCII.
pub fn arb_key_string() -> impl Strategy<Value = String> {
    prop_oneof!["[ab\u{0}\u{e9}\u{1F600}]{0,6}", any::<String>(),]
}

/// Short binaries dense in 0x00 and 0xFF, the escape-relevant bytes.
pub fn arb_key_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(vec![0u8, 1, 0xFE, 0xFF]), 0..6),
        prop::collection::vec(any::<u8>(), 0..24),
    ]
}

/// Any attribute value, nested a few levels.
pub fn arb_attribute_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        arb_key_string().prop_map(AttributeValue::S),
        arb_number().prop_map(AttributeValue::N),
        arb_key_bytes().prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        prop::collection::vec(arb_key_string(), 1..4).prop_map(AttributeValue::Ss),
        prop::collection::vec(arb_number(), 1..4).prop_map(AttributeValue::Ns),
        prop::collection::vec(arb_key_bytes(), 1..4).prop_map(AttributeValue::Bs),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(AttributeValue::L),
            prop::collection::btree_map(arb_key_string(), inner, 0..6).prop_map(AttributeValue::M),
        ]
    })
}

/// Any item of a few attributes.
pub fn arb_item() -> impl Strategy<Value = Item> {
    prop::collection::btree_map(arb_key_string(), arb_attribute_value(), 0..8)
        .prop_map(|map: BTreeMap<String, AttributeValue>| map)
}
