//! The on-disk item record.
//!
//! ```text
//! version (1 byte) ‖ payload ‖ CRC32 of version ‖ payload (4 bytes, little-endian)
//! ```
//!
//! The payload is the item as a map: a varint count, then per attribute (in
//! `BTreeMap` order, so every replica writes identical bytes for one item)
//! a varint-length name and a tagged value. Strings and binaries carry a
//! varint length; numbers use [`Number::encode_ordered`], which is compact
//! (at most 22 bytes) and self-delimiting; containers and sets a varint count.
//!
//! The checksum lets the scrubber find silent corruption end to end. The
//! decoder still trusts nothing after it: every length is bounded by the
//! bytes that remain and nesting by [`MAX_RECORD_NESTING_DEPTH`], so a
//! record that passes the CRC by chance cannot make it panic, recurse
//! without bound or allocate more than the record's own size suggests.

use std::collections::BTreeMap;

use crate::error::RecordError;
use crate::number::Number;
use crate::size::MAX_NESTING_DEPTH;
use crate::value::{AttributeValue, Item};

/// The format version this build writes and reads.
pub const RECORD_FORMAT_VERSION: u8 = 1;
/// Deepest nesting the decoder follows; above anything DynamoDB accepts, so
/// every valid item decodes, yet low enough to keep recursion shallow.
pub const MAX_RECORD_NESTING_DEPTH: usize = 2 * MAX_NESTING_DEPTH;

const CHECKSUM_LEN_BYTES: usize = 4;
/// Caps speculative preallocation; real lengths still grow past it.
const MAX_PREALLOCATED_ELEMENTS: usize = 1024;

const TAG_S: u8 = 1;
const TAG_N: u8 = 2;
const TAG_B: u8 = 3;
const TAG_TRUE: u8 = 4;
const TAG_FALSE: u8 = 5;
const TAG_NULL: u8 = 6;
const TAG_M: u8 = 7;
const TAG_L: u8 = 8;
const TAG_SS: u8 = 9;
const TAG_NS: u8 = 10;
const TAG_BS: u8 = 11;

/// Encodes an item as a checksummed record.
///
/// Items deeper than [`MAX_RECORD_NESTING_DEPTH`] encode but will not decode;
/// the API rejects such items long before they reach storage.
pub fn encode_item(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(RECORD_FORMAT_VERSION);
    encode_map(item, &mut out);
    let checksum = crc32fast::hash(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// Decodes a record written by [`encode_item`], verifying its checksum.
pub fn decode_item(record: &[u8]) -> Result<Item, RecordError> {
    let (body, checksum) = record
        .split_last_chunk::<CHECKSUM_LEN_BYTES>()
        .ok_or(RecordError::Truncated)?;
    let stored = u32::from_le_bytes(*checksum);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(RecordError::ChecksumMismatch { stored, computed });
    }
    let (&version, payload) = body.split_first().ok_or(RecordError::Truncated)?;
    if version != RECORD_FORMAT_VERSION {
        return Err(RecordError::UnsupportedVersion { version });
    }
    let mut reader = Reader { rest: payload };
    let item = reader.map(0)?;
    if !reader.rest.is_empty() {
        return Err(malformed("trailing bytes after the item"));
    }
    Ok(item)
}

fn malformed(reason: &'static str) -> RecordError {
    RecordError::Malformed { reason }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    put_varint(out, len as u64);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn encode_map(map: &BTreeMap<String, AttributeValue>, out: &mut Vec<u8>) {
    put_len(out, map.len());
    for (name, value) in map {
        put_bytes(out, name.as_bytes());
        encode_value(value, out);
    }
}

fn encode_value(value: &AttributeValue, out: &mut Vec<u8>) {
    match value {
        AttributeValue::S(text) => {
            out.push(TAG_S);
            put_bytes(out, text.as_bytes());
        }
        AttributeValue::N(number) => {
            out.push(TAG_N);
            number.encode_ordered(out);
        }
        AttributeValue::B(bytes) => {
            out.push(TAG_B);
            put_bytes(out, bytes);
        }
        AttributeValue::Bool(true) => out.push(TAG_TRUE),
        AttributeValue::Bool(false) => out.push(TAG_FALSE),
        AttributeValue::Null => out.push(TAG_NULL),
        AttributeValue::M(map) => {
            out.push(TAG_M);
            encode_map(map, out);
        }
        AttributeValue::L(list) => {
            out.push(TAG_L);
            put_len(out, list.len());
            list.iter().for_each(|element| encode_value(element, out));
        }
        AttributeValue::Ss(texts) => {
            out.push(TAG_SS);
            put_len(out, texts.len());
            texts
                .iter()
                .for_each(|text| put_bytes(out, text.as_bytes()));
        }
        AttributeValue::Ns(numbers) => {
            out.push(TAG_NS);
            put_len(out, numbers.len());
            numbers.iter().for_each(|number| number.encode_ordered(out));
        }
        AttributeValue::Bs(blobs) => {
            out.push(TAG_BS);
            put_len(out, blobs.len());
            blobs.iter().for_each(|blob| put_bytes(out, blob));
        }
    }
}

/// A cursor over untrusted payload bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, RecordError> {
        let (&byte, rest) = self.rest.split_first().ok_or(RecordError::Truncated)?;
        self.rest = rest;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7F);
            if shift == 63 && bits > 1 {
                return Err(malformed("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    /// A byte length or element count; every element takes at least one
    /// byte, so neither can exceed what remains.
    fn len(&mut self) -> Result<usize, RecordError> {
        let len = usize::try_from(self.varint()?).map_err(|_| malformed("length too large"))?;
        if len > self.rest.len() {
            return Err(malformed("length exceeds the record"));
        }
        Ok(len)
    }

    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let len = self.len()?;
        let (bytes, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(RecordError::Truncated)?;
        self.rest = rest;
        Ok(bytes)
    }

    fn string(&mut self) -> Result<String, RecordError> {
        let bytes = self.bytes()?;
        let text = std::str::from_utf8(bytes).map_err(|_| malformed("string is not UTF-8"))?;
        Ok(text.to_owned())
    }

    fn number(&mut self) -> Result<Number, RecordError> {
        let (number, used) =
            Number::decode_ordered(self.rest).map_err(|_| malformed("invalid number"))?;
        self.rest = self.rest.get(used..).ok_or(RecordError::Truncated)?;
        Ok(number)
    }

    fn list_of<T>(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<T, RecordError>,
    ) -> Result<Vec<T>, RecordError> {
        let count = self.len()?;
        let mut out = Vec::with_capacity(count.min(MAX_PREALLOCATED_ELEMENTS));
        for _ in 0..count {
            out.push(element(self)?);
        }
        Ok(out)
    }

    /// A map whose values sit at nesting `depth` (0 for the item itself).
    fn map(&mut self, depth: usize) -> Result<BTreeMap<String, AttributeValue>, RecordError> {
        let count = self.len()?;
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let name = self.string()?;
            let value = self.value(depth)?;
            if map.insert(name, value).is_some() {
                return Err(malformed("duplicate attribute name"));
            }
        }
        Ok(map)
    }

    fn value(&mut self, depth: usize) -> Result<AttributeValue, RecordError> {
        let tag = self.byte()?;
        if matches!(tag, TAG_M | TAG_L) && depth >= MAX_RECORD_NESTING_DEPTH {
            return Err(malformed("nesting too deep"));
        }
        Ok(match tag {
            TAG_S => AttributeValue::S(self.string()?),
            TAG_N => AttributeValue::N(self.number()?),
            TAG_B => AttributeValue::B(self.bytes()?.to_vec()),
            TAG_TRUE => AttributeValue::Bool(true),
            TAG_FALSE => AttributeValue::Bool(false),
            TAG_NULL => AttributeValue::Null,
            TAG_M => AttributeValue::M(self.map(depth + 1)?),
            TAG_L => AttributeValue::L(self.list_of(|reader| reader.value(depth + 1))?),
            TAG_SS => AttributeValue::Ss(self.list_of(Self::string)?),
            TAG_NS => AttributeValue::Ns(self.list_of(Self::number)?),
            TAG_BS => AttributeValue::Bs(self.list_of(|reader| Ok(reader.bytes()?.to_vec()))?),
            _ => return Err(malformed("unknown value tag")),
        })
    }
}

#[cfg(test)]
mod tests;
