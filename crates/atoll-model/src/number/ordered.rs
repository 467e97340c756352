//! Order-preserving, self-delimiting byte encoding of numbers, so numeric
//! sort keys order correctly under the storage engine's byte comparison and
//! can be followed by further key components.
//!
//! Layout (at most 22 bytes):
//! - zero: `0x02`.
//! - positive: `0x03`, `adjusted + 130` (one byte: the adjusted exponent
//!   spans exactly -130..=125), the significant digits as base-100 pairs
//!   (an odd count padded with a 0 digit), each stored as `pair + 1`, then
//!   the terminator `0x00`, which sorts below every pair byte so that a
//!   number sorts before any longer one sharing its leading digits.
//! - negative: `0x01`, then the same fields mirrored so that larger
//!   magnitudes sort first: `255 - (adjusted + 130)`, pairs as `100 - pair`,
//!   and the terminator `0xFF`.
//!
//! Canonical numbers have no trailing zeros, so the pair sequence (minus a
//! trailing pad digit) is unique and comparing pairs compares magnitudes.

use super::{MAX_ADJUSTED_EXPONENT, MAX_SIGNIFICANT_DIGITS, MIN_ADJUSTED_EXPONENT, Number, pow10};
use crate::error::NumberDecodeError;

const TAG_NEGATIVE: u8 = 0x01;
const TAG_ZERO: u8 = 0x02;
const TAG_POSITIVE: u8 = 0x03;
const POSITIVE_END: u8 = 0x00;
const NEGATIVE_END: u8 = 0xFF;
const MAX_PAIRS: usize = MAX_SIGNIFICANT_DIGITS as usize / 2;

/// Longest encoding: tag, exponent, 19 pairs, terminator.
pub const MAX_ENCODED_NUMBER_LEN_BYTES: usize = 3 + MAX_PAIRS;

impl Number {
    /// Appends the order-preserving encoding; see the `ordered` module docs.
    pub fn encode_ordered(&self, out: &mut Vec<u8>) {
        if self.is_zero() {
            out.push(TAG_ZERO);
            return;
        }
        // Range invariant: adjusted + 130 is in 0..=255.
        let exponent_byte = (self.adjusted_exponent() - MIN_ADJUSTED_EXPONENT) as u8;
        let digits = self.significant_digits();
        // Left-aligning to exactly 38 digits lets pairs be read from the top.
        let aligned = self.coefficient * pow10(MAX_SIGNIFICANT_DIGITS - digits);
        let pairs = (0..digits.div_ceil(2))
            .map(|i| ((aligned / pow10(MAX_SIGNIFICANT_DIGITS - 2 - 2 * i)) % 100) as u8);
        if self.negative {
            out.push(TAG_NEGATIVE);
            out.push(u8::MAX - exponent_byte);
            out.extend(pairs.map(|pair| 100 - pair));
            out.push(NEGATIVE_END);
        } else {
            out.push(TAG_POSITIVE);
            out.push(exponent_byte);
            out.extend(pairs.map(|pair| pair + 1));
            out.push(POSITIVE_END);
        }
    }

    /// Decodes one number from the front of `bytes`, returning it and the
    /// count of bytes it used; rejects every non-canonical encoding.
    pub fn decode_ordered(bytes: &[u8]) -> Result<(Number, usize), NumberDecodeError> {
        let malformed = |reason| NumberDecodeError::Malformed { reason };
        let (&tag, rest) = bytes.split_first().ok_or(NumberDecodeError::Truncated)?;
        let negative = match tag {
            TAG_ZERO => return Ok((Number::ZERO, 1)),
            TAG_NEGATIVE => true,
            TAG_POSITIVE => false,
            _ => return Err(malformed("unknown sign tag")),
        };
        let (&exponent_byte, rest) = rest.split_first().ok_or(NumberDecodeError::Truncated)?;
        let exponent_byte = if negative {
            u8::MAX - exponent_byte
        } else {
            exponent_byte
        };
        let adjusted = i32::from(exponent_byte) + MIN_ADJUSTED_EXPONENT;
        debug_assert!(adjusted <= MAX_ADJUSTED_EXPONENT);

        let mut coefficient = 0u128;
        let mut pair_count = 0usize;
        let mut last_pair = 0u8;
        let mut terminated = false;
        for &byte in rest.iter().take(MAX_PAIRS + 1) {
            let pair = match (negative, byte) {
                (false, POSITIVE_END) | (true, NEGATIVE_END) => {
                    terminated = true;
                    break;
                }
                (false, 1..=100) => byte - 1,
                (true, 1..=100) => 100 - byte,
                _ => return Err(malformed("digit byte out of range")),
            };
            if pair_count == MAX_PAIRS {
                return Err(malformed("more than 38 digits"));
            }
            if pair_count == 0 && pair < 10 {
                return Err(malformed("leading zero digit"));
            }
            coefficient = coefficient * 100 + u128::from(pair);
            pair_count += 1;
            last_pair = pair;
        }
        if !terminated {
            return Err(if rest.len() > MAX_PAIRS {
                malformed("more than 38 digits")
            } else {
                NumberDecodeError::Truncated
            });
        }
        if pair_count == 0 {
            return Err(malformed("no digits"));
        }
        if last_pair == 0 {
            return Err(malformed("trailing zero digits"));
        }
        // pair_count <= 19, so these casts cannot truncate.
        let mut digits = 2 * pair_count as i32;
        if last_pair.is_multiple_of(10) {
            coefficient /= 10;
            digits -= 1;
        }
        let number = Number {
            negative,
            coefficient,
            exponent: adjusted - digits + 1,
        };
        Ok((number, 3 + pair_count))
    }
}
