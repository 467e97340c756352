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
