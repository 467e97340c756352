//! Condition, filter and key-condition expressions: parsing never panics.
#![no_main]

use atoll_expr::{ExpressionKind, parse_condition, parse_condition_expression};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for kind in [
        ExpressionKind::Condition,
        ExpressionKind::Filter,
        ExpressionKind::KeyCondition,
    ] {
        let _ = parse_condition_expression(&text, kind);
    }
    let _ = parse_condition(&text, ExpressionKind::Condition);
});
