//! Whole requests: expressions and placeholder maps checked together, and
//! key conditions extracted, never panic. The input is split on NUL bytes:
//! expression text, then `#name=value` and `:value` entries.
#![no_main]

use std::collections::HashMap;

use atoll_expr::{Env, ExpressionCache, ExpressionRequest, key_condition, validate_expressions};
use atoll_model::{AttributeValue, Number};
use libfuzzer_sys::fuzz_target;

fn value(text: &str) -> AttributeValue {
    match text.as_bytes().first() {
        Some(b'n') => Number::parse(&text[1..]).map_or(AttributeValue::Null, AttributeValue::N),
        Some(b'l') => AttributeValue::L(vec![AttributeValue::S(text.to_owned())]),
        Some(b's') => AttributeValue::Ss(vec![text.to_owned()]),
        Some(b'b') => AttributeValue::B(text.as_bytes().to_vec()),
        _ => AttributeValue::S(text.to_owned()),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let expression = parts.next().unwrap_or_default();
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    for part in parts {
        match part.split_once('=') {
            Some((key, name)) => {
                names.insert(key.to_owned(), name.to_owned());
            }
            None => {
                let (key, rest) = part.split_at(part.find(' ').unwrap_or(part.len()));
                values.insert(key.to_owned(), value(rest.trim_start()));
            }
        }
    }
    let cache = ExpressionCache::new(16);
    let request = ExpressionRequest {
        update: Some(expression),
        condition: Some(expression),
        key_condition: Some(expression),
        filter: Some(expression),
        projection: Some(expression),
        names: (!names.is_empty()).then_some(&names),
        values: (!values.is_empty()).then_some(&values),
    };
    let _ = atoll_expr::check_attribute_maps(request.names, request.values);
    for request in [
        request,
        ExpressionRequest {
            update: None,
            projection: None,
            key_condition: None,
            ..request
        },
        ExpressionRequest {
            update: None,
            condition: None,
            filter: None,
            ..request
        },
    ] {
        if let Ok(validated) = validate_expressions(&request, Some(&cache))
            && let Some(key) = validated.key_condition
        {
            let env = Env {
                names: &names,
                values: &values,
            };
            let _ = key_condition(key.condition(), "a", Some("b"), &env);
        }
    }
});
