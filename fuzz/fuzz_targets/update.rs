//! Update expressions: parsing never panics.
#![no_main]

use atoll_expr::{parse_update, parse_update_expression};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_update_expression(&text);
    let _ = parse_update(&text);
});
