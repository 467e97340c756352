//! Projection expressions: parsing never panics.
#![no_main]

use atoll_expr::{parse_projection, parse_projection_expression};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_projection_expression(&text);
    let _ = parse_projection(&text);
});
