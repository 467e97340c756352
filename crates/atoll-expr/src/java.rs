//! The iteration order of Java's `HashMap`, which leaks into some DynamoDB
//! messages: the unused-keys list (`keys: {#a, #b}`) prints a `HashSet` of
//! the placeholders, and the "overlap"/"conflict" messages name the first
//! key of a document-path tree node. Reproducing the order makes those
//! messages deterministic and, as far as the JVM's hashing goes, identical.
//!
//! A `HashMap` iterates its buckets in index order and, within a bucket, in
//! insertion order; a key's bucket is `(h ^ (h >>> 16)) & (capacity - 1)`.
//! Tree bins (eight colliding keys in a table of 64 or more) are not
//! modelled.

/// Java's `String.hashCode()`: over UTF-16 code units, wrapping.
pub(crate) fn string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The bucket of `hash` in a table of `capacity` (a power of two).
pub(crate) fn bucket(hash: i32, capacity: usize) -> usize {
    // Reinterpreting the bits is the point: Java shifts the int unsigned.
    let bits = hash as u32;
    let spread = bits ^ (bits >> 16);
    (spread as usize) & capacity.saturating_sub(1)
}

/// The table size of a `HashMap` filled by `len` successive puts from empty
/// (16, doubled whenever the size exceeds three quarters of it).
pub(crate) fn grown_capacity(len: usize) -> usize {
    let mut capacity = 16usize;
    while len > capacity / 4 * 3 {
        capacity = capacity.saturating_mul(2);
    }
    capacity
}

/// The table size of `new HashSet<>(collection)` for a collection of `len`.
pub(crate) fn copied_capacity(len: usize) -> usize {
    // `Math.max((int) (len / .75f) + 1, 16)`, rounded up to a power of two.
    let wanted = (len.saturating_mul(4) / 3).saturating_add(1).max(16);
    wanted.checked_next_power_of_two().unwrap_or(usize::MAX)
}

/// The position of the first entry in iteration order, given each entry's
/// hash in insertion order.
pub(crate) fn first_in_order(hashes: &[i32], capacity: usize) -> Option<usize> {
    (0..hashes.len()).min_by_key(|&index| {
        let hash = hashes.get(index).copied().unwrap_or(0);
        (bucket(hash, capacity), index)
    })
}

/// The strings in the order a `HashSet` copied from them iterates; entries
/// sharing a bucket keep the order they are given in.
pub(crate) fn hash_set_order(mut keys: Vec<String>) -> Vec<String> {
    let capacity = copied_capacity(keys.len());
    keys.sort_by_key(|key| bucket(string_hash(key), capacity));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_string_hashes() {
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("#a"), 1182);
        assert_eq!(string_hash("hello"), 99_162_322);
        // Wraps like Java: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(string_hash("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn capacities() {
        assert_eq!(grown_capacity(0), 16);
        assert_eq!(grown_capacity(12), 16);
        assert_eq!(grown_capacity(13), 32);
        assert_eq!(copied_capacity(2), 16);
        assert_eq!(copied_capacity(11), 16);
        assert_eq!(copied_capacity(12), 32);
    }

    #[test]
    fn set_order_is_bucket_order() {
        let keys = vec![":c".to_owned(), ":a".to_owned()];
        assert_eq!(hash_set_order(keys), vec![":a".to_owned(), ":c".to_owned()]);
    }
}
