//! Value semantics shared by conditions, updates and the legacy parameters:
//! DynamoDB's equality, ordering, `size`, `contains` and `begins_with` on
//! attribute values.
//!
//! Sets are unordered in DynamoDB although `AttributeValue` keeps the
//! client's order (it is echoed back), so set equality is decided here and
//! never by the derived `PartialEq`.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use atoll_model::{AttributeValue, Number};

/// Deeper than any valid item (DynamoDB allows 32 levels); a guard so that a
/// value built outside the validated paths cannot exhaust the stack.
const MAX_VALUE_DEPTH: usize = 256;

/// DynamoDB's `=`: same type and same value. Numbers compare numerically
/// (`1` = `1.0`), sets as sets (order-insensitive), lists element-wise in
/// order, maps key by key.
pub fn values_equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    equal_at(a, b, 0)
}

fn equal_at(a: &AttributeValue, b: &AttributeValue, depth: usize) -> bool {
    use AttributeValue as V;
    if depth > MAX_VALUE_DEPTH {
        return false;
    }
    match (a, b) {
        (V::S(x), V::S(y)) => x == y,
        (V::N(x), V::N(y)) => x == y,
        (V::B(x), V::B(y)) => x == y,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Null, V::Null) => true,
        (V::Ss(x), V::Ss(y)) => same_set(x.iter(), y.iter()),
        (V::Ns(x), V::Ns(y)) => same_set(x.iter(), y.iter()),
        (V::Bs(x), V::Bs(y)) => same_set(x.iter(), y.iter()),
        (V::L(x), V::L(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal_at(p, q, depth + 1))
        }
        (V::M(x), V::M(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| equal_at(p, q, depth + 1)))
        }
        _ => false,
    }
}

/// Set equality that tolerates duplicates and any order.
fn same_set<'a, T: Ord + 'a>(
    a: impl Iterator<Item = &'a T>,
    b: impl Iterator<Item = &'a T>,
) -> bool {
    a.collect::<BTreeSet<_>>() == b.collect::<BTreeSet<_>>()
}

/// DynamoDB's ordering for `<`, `<=`, `>`, `>=` and BETWEEN: numbers
/// numerically, strings by their UTF-8 bytes, binaries by unsigned bytes.
/// `None` when the two values are not of the same orderable type, which
/// makes every ordering comparison false.
pub fn compare_values(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    use AttributeValue as V;
    match (a, b) {
        (V::N(x), V::N(y)) => Some(x.cmp(y)),
        // `str`'s Ord is byte order, which is DynamoDB's order (and the
        // order of sort keys).
        (V::S(x), V::S(y)) => Some(x.as_str().cmp(y.as_str())),
        (V::B(x), V::B(y)) => Some(x.as_slice().cmp(y.as_slice())),
        _ => None,
    }
}

/// Whether values of this type can be ordered (S, N, B).
pub fn is_orderable(value: &AttributeValue) -> bool {
    matches!(
        value,
        AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
    )
}

/// `size(value)`: UTF-16 code units of a string (verified against DynamoDB:
/// `size("é𝄞")` is 3), bytes of a binary, elements of a set or list, entries
/// of a map. Numbers, booleans and NULL have no size (`None`): a comparison
/// with it is then false, as with a missing attribute (verified:
/// `size(number) = :n` fails the condition rather than erroring).
pub fn size_of(value: &AttributeValue) -> Option<Number> {
    use AttributeValue as V;
    let size = match value {
        V::S(s) => s.encode_utf16().count(),
        V::B(b) => b.len(),
        V::Ss(set) => set.len(),
        V::Ns(set) => set.len(),
        V::Bs(set) => set.len(),
        V::L(list) => list.len(),
        V::M(map) => map.len(),
        V::N(_) | V::Bool(_) | V::Null => return None,
    };
    // Sizes are bounded by the 400 KB item limit, far inside i64.
    Some(Number::from_i64(i64::try_from(size).unwrap_or(i64::MAX)))
}

/// `contains(haystack, needle)`: a substring of a string, a byte
/// subsequence of a binary, an element of a set of the needle's type, or an
/// element of a list (by DynamoDB equality). Anything else is false.
pub fn contains(haystack: &AttributeValue, needle: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (haystack, needle) {
        (V::S(h), V::S(n)) => h.contains(n.as_str()),
        (V::B(h), V::B(n)) => contains_bytes(h, n),
        (V::Ss(set), V::S(n)) => set.iter().any(|e| e == n),
        (V::Ns(set), V::N(n)) => set.iter().any(|e| e == n),
        (V::Bs(set), V::B(n)) => set.iter().any(|e| e == n),
        (V::L(list), n) => list.iter().any(|e| values_equal(e, n)),
        _ => false,
    }
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// `begins_with(value, prefix)`: string prefix or binary prefix of the same
/// type; false for any other pair.
pub fn begins_with(value: &AttributeValue, prefix: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (value, prefix) {
        (V::S(v), V::S(p)) => v.starts_with(p.as_str()),
        (V::B(v), V::B(p)) => v.starts_with(p),
        _ => false,
    }
}

/// The type names `attribute_type` accepts, in the order DynamoDB lists
/// them in its error message (as three emulators checked against the service
/// in 2026 print it; dynalite's older order was B,NULL,SS,BOOL,L,BS,N,NS,S,M).
pub const ATTRIBUTE_TYPE_NAMES: [&str; 10] =
    ["N", "BS", "L", "B", "NULL", "M", "S", "SS", "NS", "BOOL"];

/// The word DynamoDB uses for a type in ADD/DELETE operand errors
/// ("operand type: STRING"); sets keep their short descriptor because ADD
/// and DELETE accept them.
pub fn type_word(value: &AttributeValue) -> &'static str {
    use AttributeValue as V;
    match value {
        V::S(_) => "STRING",
        V::N(_) => "NUMBER",
        V::B(_) => "BINARY",
        V::Bool(_) => "BOOLEAN",
        V::Null => "NULL",
        V::M(_) => "MAP",
        V::L(_) => "LIST",
        V::Ss(_) => "SS",
        V::Ns(_) => "NS",
        V::Bs(_) => "BS",
    }
}
