//! Row keys inside a partition's keyspace (DESIGN.md, "Data layout"):
//!
//! ```text
//! token (8 bytes, big-endian) ‖ pk tag ‖ escaped pk bytes ‖ 0x00 0x01 ‖ [sk tag ‖ sk bytes]
//! ```
//!
//! - The token is the first 8 bytes of MD5(pk tag ‖ pk canonical bytes), so
//!   partition-key ranges are token ranges. The tag is hashed too, so S "1"
//!   and N 1 get different tokens although their canonical bytes agree (a
//!   table fixes its key types, but indexes and tools may mix tables).
//! - Canonical bytes: S its UTF-8, B its raw bytes, N its normalised string
//!   (`Number`'s Display), so equal numbers ("1", "1.0") share a partition.
//! - The partition key is escaped memcomparably (0x00 → 0x00 0xFF) and ends
//!   with 0x00 0x01, which no escaped content contains: the partition part is
//!   prefix-free, so one partition key's rows are exactly a prefix range.
//! - The sort key is the last component, so S and B are raw bytes (DynamoDB
//!   orders them bytewise) and N is [`Number::encode_ordered`].

use std::borrow::Cow;

use md5::{Digest, Md5};

use crate::error::KeyCodecError;
use crate::number::Number;
use crate::value::AttributeValue;

#[cfg(test)]
mod tests;

const TAG_S: u8 = 0x01;
const TAG_N: u8 = 0x02;
const TAG_B: u8 = 0x03;
const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

/// Length of the token that starts every row key.
pub const TOKEN_LEN_BYTES: usize = 8;

/// The type tag and canonical bytes of a key attribute.
fn key_parts(key: &AttributeValue) -> Result<(u8, Cow<'_, [u8]>), KeyCodecError> {
    match key {
        AttributeValue::S(text) => Ok((TAG_S, Cow::Borrowed(text.as_bytes()))),
        AttributeValue::B(bytes) => Ok((TAG_B, Cow::Borrowed(bytes))),
        AttributeValue::N(number) => Ok((TAG_N, Cow::Owned(number.to_string().into_bytes()))),
        other => Err(KeyCodecError::UnsupportedKeyType {
            type_name: other.type_name(),
        }),
    }
}

fn token_of(tag: u8, canonical: &[u8]) -> u64 {
    let digest = Md5::new()
        .chain_update([tag])
        .chain_update(canonical)
        .finalize();
    let first = digest.as_slice().first_chunk::<TOKEN_LEN_BYTES>().copied();
    u64::from_be_bytes(first.unwrap_or_default())
}

/// The partition token of a partition key: where it lives in the token ring.
pub fn partition_token(pk: &AttributeValue) -> Result<u64, KeyCodecError> {
    let (tag, canonical) = key_parts(pk)?;
    Ok(token_of(tag, &canonical))
}

/// The common prefix of every row key of partition key `pk`.
pub fn row_key_prefix_for_partition(pk: &AttributeValue) -> Result<Vec<u8>, KeyCodecError> {
    let (tag, canonical) = key_parts(pk)?;
    let mut out = Vec::with_capacity(TOKEN_LEN_BYTES + canonical.len() + 4);
    out.extend_from_slice(&token_of(tag, &canonical).to_be_bytes());
    out.push(tag);
    for &byte in canonical.iter() {
        if byte == ESCAPE {
            out.extend_from_slice(&[ESCAPE, ESCAPED_ZERO]);
        } else {
            out.push(byte);
        }
    }
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
    Ok(out)
}

/// The row key of the item with partition key `pk` and sort key `sk`.
pub fn encode_row_key(
    pk: &AttributeValue,
    sk: Option<&AttributeValue>,
) -> Result<Vec<u8>, KeyCodecError> {
    let mut out = row_key_prefix_for_partition(pk)?;
    match sk {
        None => {}
        Some(AttributeValue::S(text)) => {
            out.push(TAG_S);
            out.extend_from_slice(text.as_bytes());
        }
        Some(AttributeValue::B(bytes)) => {
            out.push(TAG_B);
            out.extend_from_slice(bytes);
        }
        Some(AttributeValue::N(number)) => {
            out.push(TAG_N);
            number.encode_ordered(&mut out);
        }
        Some(other) => {
            return Err(KeyCodecError::UnsupportedKeyType {
                type_name: other.type_name(),
            });
        }
    }
    Ok(out)
}

/// The token at the start of a row key, e.g. to find its partition range.
pub fn row_key_token(row_key: &[u8]) -> Result<u64, KeyCodecError> {
    let (token, _) = row_key
        .split_first_chunk::<TOKEN_LEN_BYTES>()
        .ok_or(KeyCodecError::Truncated)?;
    Ok(u64::from_be_bytes(*token))
}

/// Splits a row key back into its partition and sort key, checking that the
/// token matches the partition key so misplaced or corrupt rows are caught.
pub fn decode_row_key(
    row_key: &[u8],
) -> Result<(AttributeValue, Option<AttributeValue>), KeyCodecError> {
    let (token, rest) = row_key
        .split_first_chunk::<TOKEN_LEN_BYTES>()
        .ok_or(KeyCodecError::Truncated)?;
    let (&tag, rest) = rest.split_first().ok_or(KeyCodecError::Truncated)?;
    let (canonical, rest) = unescape(rest)?;
    if !matches!(tag, TAG_S | TAG_N | TAG_B) {
        return Err(KeyCodecError::UnknownTag { tag });
    }
    if token_of(tag, &canonical) != u64::from_be_bytes(*token) {
        return Err(KeyCodecError::TokenMismatch);
    }
    let pk = match tag {
        TAG_S => AttributeValue::S(utf8(canonical)?),
        TAG_N => {
            let text = utf8(canonical)?;
            let number = Number::parse(&text).map_err(|_| KeyCodecError::InvalidNumber)?;
            // Only the normalised text hashes to this row's token.
            if number.to_string() != text {
                return Err(KeyCodecError::InvalidNumber);
            }
            AttributeValue::N(number)
        }
        _ => AttributeValue::B(canonical),
    };
    let Some((&sk_tag, sk_bytes)) = rest.split_first() else {
        return Ok((pk, None));
    };
    let sk = match sk_tag {
        TAG_S => AttributeValue::S(utf8(sk_bytes.to_vec())?),
        TAG_B => AttributeValue::B(sk_bytes.to_vec()),
        TAG_N => {
            let (number, used) =
                Number::decode_ordered(sk_bytes).map_err(|_| KeyCodecError::InvalidNumber)?;
            if used != sk_bytes.len() {
                return Err(KeyCodecError::TrailingBytes);
            }
            AttributeValue::N(number)
        }
        other => return Err(KeyCodecError::UnknownTag { tag: other }),
    };
    Ok((pk, Some(sk)))
}

/// Reads an escaped, terminated segment; returns its content and the rest.
fn unescape(bytes: &[u8]) -> Result<(Vec<u8>, &[u8]), KeyCodecError> {
    let mut content = Vec::new();
    let mut rest = bytes;
    loop {
        let (&byte, after) = rest.split_first().ok_or(KeyCodecError::Truncated)?;
        rest = after;
        if byte != ESCAPE {
            content.push(byte);
            continue;
        }
        let (&marker, after) = rest.split_first().ok_or(KeyCodecError::Truncated)?;
        rest = after;
        match marker {
            ESCAPED_ZERO => content.push(ESCAPE),
            TERMINATOR => return Ok((content, rest)),
            _ => return Err(KeyCodecError::BadEscape),
        }
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String, KeyCodecError> {
    String::from_utf8(bytes).map_err(|_| KeyCodecError::InvalidUtf8)
}

/// Where a row key's partition part (token, tag, escaped partition key,
/// terminator) ends and its sort part begins.
fn partition_part_len(row_key: &[u8]) -> Result<usize, KeyCodecError> {
    // Token and tag, then escaped bytes up to the terminator.
    let mut at = TOKEN_LEN_BYTES + 1;
    loop {
        match (row_key.get(at), row_key.get(at + 1)) {
            (Some(&ESCAPE), Some(&TERMINATOR)) => return Ok(at + 2),
            (Some(&ESCAPE), Some(&ESCAPED_ZERO)) => at += 2,
            (Some(&ESCAPE), _) => return Err(KeyCodecError::BadEscape),
            (Some(_), _) => at += 1,
            (None, _) => return Err(KeyCodecError::Truncated),
        }
    }
}

/// The sort component of an index entry: the value's tag, then for S and
/// B its bytes escaped and terminated as a partition key's, for N its
/// ordered encoding (terminated already). Unlike a row key's sort key it
/// is followed by more (the table's sort key), so it must be prefix-free.
fn index_sort_component(value: &AttributeValue, out: &mut Vec<u8>) -> Result<(), KeyCodecError> {
    match value {
        AttributeValue::S(text) => escaped_terminated(TAG_S, text.as_bytes(), out),
        AttributeValue::B(bytes) => escaped_terminated(TAG_B, bytes, out),
        AttributeValue::N(number) => {
            out.push(TAG_N);
            number.encode_ordered(out);
        }
        other => {
            return Err(KeyCodecError::UnsupportedKeyType {
                type_name: other.type_name(),
            });
        }
    }
    Ok(())
}

fn escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        if byte == ESCAPE {
            out.extend_from_slice(&[ESCAPE, ESCAPED_ZERO]);
        } else {
            out.push(byte);
        }
    }
}

fn escaped_terminated(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    escaped(bytes, out);
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// The key of a local secondary index entry (DESIGN.md, "Data layout"):
///
/// ```text
/// index number ‖ token ‖ pk tag ‖ escaped pk ‖ 0x00 0x01 ‖ index sort component ‖ [table sort key]
/// ```
///
/// The index number comes first so that each index is one range of its
/// table's index keyspace (a Scan of it reads nothing else); after it, an
/// entry's key is its item's row key with the index's sort key inserted
/// before the table's, so entries of one partition key sort by index sort
/// key, ties by table sort key.
pub fn encode_local_index_key(
    index_number: u8,
    row_key: &[u8],
    index_sort: &AttributeValue,
) -> Result<Vec<u8>, KeyCodecError> {
    let split = partition_part_len(row_key)?;
    let (partition, sort) = row_key.split_at(split);
    let mut out = Vec::with_capacity(row_key.len() + 16);
    out.push(index_number);
    out.extend_from_slice(partition);
    index_sort_component(index_sort, &mut out)?;
    out.extend_from_slice(sort);
    Ok(out)
}

/// The common prefix of every entry of partition key `pk` in index `index_number`.
pub fn local_index_prefix(index_number: u8, pk: &AttributeValue) -> Result<Vec<u8>, KeyCodecError> {
    let mut out = vec![index_number];
    out.extend_from_slice(&row_key_prefix_for_partition(pk)?);
    Ok(out)
}

/// The prefix of every entry of partition key `pk` in index `index_number`
/// whose index sort key is `sort` (or, with `begins_with`, starts with it:
/// S and B only).
pub fn local_index_sort_prefix(
    index_number: u8,
    pk: &AttributeValue,
    sort: &AttributeValue,
    begins_with: bool,
) -> Result<Vec<u8>, KeyCodecError> {
    index_sort_prefix(local_index_prefix(index_number, pk)?, sort, begins_with)
}

/// `partition_prefix` (the prefix of every entry of one index partition
/// key) extended to the entries whose index sort key is `sort` (or, with
/// `begins_with`, starts with it: S and B only).
pub fn index_sort_prefix(
    partition_prefix: Vec<u8>,
    sort: &AttributeValue,
    begins_with: bool,
) -> Result<Vec<u8>, KeyCodecError> {
    let mut out = partition_prefix;
    match (sort, begins_with) {
        (AttributeValue::S(text), true) => {
            out.push(TAG_S);
            escaped(text.as_bytes(), &mut out);
        }
        (AttributeValue::B(bytes), true) => {
            out.push(TAG_B);
            escaped(bytes, &mut out);
        }
        _ => index_sort_component(sort, &mut out)?,
    }
    Ok(out)
}

/// The partition part of a row key (token to terminator), which names its
/// item collection: every item of one partition key shares it.
pub fn row_key_partition_part(row_key: &[u8]) -> Result<&[u8], KeyCodecError> {
    let split = partition_part_len(row_key)?;
    row_key.get(..split).ok_or(KeyCodecError::Truncated)
}

/// The row key of the item an index entry key (`encode_local_index_key`) was made from.
pub fn local_index_entry_row_key(entry_key: &[u8]) -> Result<Vec<u8>, KeyCodecError> {
    let row = entry_key.get(1..).ok_or(KeyCodecError::Truncated)?;
    let split = partition_part_len(row)?;
    let (partition, rest) = row.split_at(split);
    let (&tag, after_tag) = rest.split_first().ok_or(KeyCodecError::Truncated)?;
    let sort_len = match tag {
        TAG_S | TAG_B => {
            let (_, after) = unescape(after_tag)?;
            after_tag.len() - after.len()
        }
        TAG_N => {
            let (_, used) =
                Number::decode_ordered(after_tag).map_err(|_| KeyCodecError::InvalidNumber)?;
            used
        }
        other => return Err(KeyCodecError::UnknownTag { tag: other }),
    };
    let table_sort = after_tag.get(sort_len..).ok_or(KeyCodecError::Truncated)?;
    let mut out = Vec::with_capacity(partition.len() + table_sort.len());
    out.extend_from_slice(partition);
    out.extend_from_slice(table_sort);
    Ok(out)
}

/// The key of a global secondary index entry in the index's own table:
///
/// ```text
/// token ‖ pk tag ‖ escaped index pk ‖ 0x00 0x01 ‖ [index sort component] ‖ base row key
/// ```
///
/// Partitioned by the token of the index's partition key like a table's
/// row keys, so the index's partitions split and move as a table's do;
/// the item's row key at the end keeps entries of equal index keys apart.
pub fn encode_global_index_key(
    pk: &AttributeValue,
    sort: Option<&AttributeValue>,
    base_row_key: &[u8],
) -> Result<Vec<u8>, KeyCodecError> {
    let mut out = row_key_prefix_for_partition(pk)?;
    if let Some(sort) = sort {
        index_sort_component(sort, &mut out)?;
    }
    out.extend_from_slice(base_row_key);
    Ok(out)
}
