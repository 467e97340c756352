//! DynamoDB's `N` type: an exact decimal of at most 38 significant digits
//! whose magnitude is zero or lies in 1E-130 ..= 9.99…9E+125.
//!
//! We write our own type because no crate covers this: `rust_decimal` holds
//! only 28 digits, `bigdecimal` is unbounded (so every bound check, the
//! exponent capping while parsing and DynamoDB's error texts would be ours
//! anyway) and none offers an order-preserving byte encoding for sort keys.
//! `bigdecimal` serves as the oracle in our tests instead.
//!
//! A value is `(-1)^negative × coefficient × 10^exponent` in one canonical
//! form (no trailing zeros in the coefficient, zero is `+0E0`), so the
//! derived `Eq` and `Hash` are numeric equality: `1 == 1.0`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

pub use crate::error::{NumberDecodeError, NumberError};

mod ordered;
pub use ordered::MAX_ENCODED_NUMBER_LEN_BYTES;
#[cfg(test)]
mod tests;

/// Most significant digits a DynamoDB number may have.
pub const MAX_SIGNIFICANT_DIGITS: u32 = 38;
/// Largest power of ten of a nonzero number's leading digit (9.9…E+125).
pub const MAX_ADJUSTED_EXPONENT: i32 = 125;
/// Smallest power of ten of a nonzero number's leading digit (1E-130).
pub const MIN_ADJUSTED_EXPONENT: i32 = -130;

/// Exponents beyond this are out of range whatever the digits, so parsing
/// saturates here instead of overflowing on inputs like "1e999999999999".
const EXPONENT_PARSE_CAP: i64 = 1_000_000_000_000;

/// An exact DynamoDB number (see the module documentation); `Default` is zero.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    coefficient: u128,
    exponent: i32,
}

/// `10^n` for `n <= 38`; every coefficient is below `10^38`.
fn pow10(n: u32) -> u128 {
    10u128.pow(n.min(MAX_SIGNIFICANT_DIGITS))
}

/// Decimal digits of a nonzero coefficient (1 for zero).
fn digit_count(coefficient: u128) -> u32 {
    coefficient.checked_ilog10().map_or(1, |log| log + 1)
}

/// DynamoDB checks range before precision (dynalite `checkNum`).
fn check_bounds(adjusted: i64, significant_digits: i64) -> Result<(), NumberError> {
    if adjusted > i64::from(MAX_ADJUSTED_EXPONENT) {
        Err(NumberError::Overflow)
    } else if adjusted < i64::from(MIN_ADJUSTED_EXPONENT) {
        Err(NumberError::Underflow)
    } else if significant_digits > i64::from(MAX_SIGNIFICANT_DIGITS) {
        Err(NumberError::Precision)
    } else {
        Ok(())
    }
}

impl Number {
    /// The number zero.
    pub const ZERO: Number = Number {
        negative: false,
        coefficient: 0,
        exponent: 0,
    };

    /// Parses a client's number string by DynamoDB's rules.
    pub fn parse(input: &str) -> Result<Number, NumberError> {
        if input.is_empty() {
            return Err(NumberError::Empty);
        }
        let invalid = || NumberError::Invalid {
            input: input.to_owned(),
        };
        let bytes = input.as_bytes();
        let (negative, unsigned) = match bytes.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, bytes),
        };
        let mantissa_len = unsigned
            .iter()
            .position(|b| matches!(b, b'e' | b'E'))
            .unwrap_or(unsigned.len());
        let (mantissa, exponent_part) = unsigned.split_at(mantissa_len);
        let (int_part, frac_part) = match mantissa.iter().position(|b| *b == b'.') {
            Some(dot) => {
                let (int_part, dot_and_frac) = mantissa.split_at(dot);
                (int_part, dot_and_frac.get(1..).unwrap_or_default())
            }
            None => (mantissa, &[][..]),
        };
        let all_digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
        if (int_part.is_empty() && frac_part.is_empty())
            || !all_digits(int_part)
            || !all_digits(frac_part)
        {
            return Err(invalid());
        }
        let exponent = match exponent_part.split_first() {
            None => 0,
            Some((_, text)) => parse_exponent(text).ok_or_else(invalid)?,
        };

        let digits = || int_part.iter().chain(frac_part).map(|b| b - b'0');
        let Some(first) = digits().position(|d| d != 0) else {
            return Ok(Number::ZERO);
        };
        let trailing_zeros = digits().rev().position(|d| d != 0).unwrap_or(0);
        let last = int_part.len() + frac_part.len() - 1 - trailing_zeros;
        let to_i64 = |n: usize| i64::try_from(n).map_err(|_| invalid());
        let (first, last, int_len) = (to_i64(first)?, to_i64(last)?, to_i64(int_part.len())?);
        // The digit at position p (0-based over int ‖ frac) weighs 10^(int_len - 1 - p).
        let adjusted = exponent + int_len - 1 - first;
        let count = last - first + 1;
        let significant = digits().skip_while(|d| *d == 0);
        Number::from_significant(negative, significant, count, adjusted)
    }

    /// Builds a number from its significant digits, most significant first;
    /// `adjusted` is the power of ten of the first digit.
    fn from_significant(
        negative: bool,
        digits: impl Iterator<Item = u8>,
        count: i64,
        adjusted: i64,
    ) -> Result<Number, NumberError> {
        check_bounds(adjusted, count)?;
        let mut coefficient = 0u128;
        for digit in digits.take(usize::try_from(count).unwrap_or(0)) {
            coefficient = coefficient * 10 + u128::from(digit);
        }
        // Within bounds: adjusted >= -130 and count <= 38, so this fits an i32.
        let exponent = i32::try_from(adjusted - count + 1).map_err(|_| NumberError::Underflow)?;
        Ok(Number {
            negative,
            coefficient,
            exponent,
        })
    }

    /// Builds `±magnitude × 10^exponent`, normalising and checking bounds.
    fn from_magnitude(
        negative: bool,
        magnitude: u128,
        exponent: i64,
    ) -> Result<Number, NumberError> {
        if magnitude == 0 {
            return Ok(Number::ZERO);
        }
        let (mut magnitude, mut exponent) = (magnitude, exponent);
        while magnitude % 10 == 0 {
            magnitude /= 10;
            exponent += 1;
        }
        let count = i64::from(digit_count(magnitude));
        check_bounds(exponent + count - 1, count)?;
        let exponent = i32::try_from(exponent).map_err(|_| NumberError::Overflow)?;
        Ok(Number {
            negative,
            coefficient: magnitude,
            exponent,
        })
    }

    /// Converts an integer; every i64 is a valid DynamoDB number.
    pub fn from_i64(value: i64) -> Number {
        let mut coefficient = u128::from(value.unsigned_abs());
        if coefficient == 0 {
            return Number::ZERO;
        }
        let mut exponent = 0;
        while coefficient % 10 == 0 {
            coefficient /= 10;
            exponent += 1;
        }
        Number {
            negative: value < 0,
            coefficient,
            exponent,
        }
    }

    /// The value as an i64, if it is an integer in i64's range.
    pub fn to_i64(&self) -> Option<i64> {
        let scale = 10u128.checked_pow(u32::try_from(self.exponent).ok()?)?;
        let magnitude = i128::try_from(self.coefficient.checked_mul(scale)?).ok()?;
        i64::try_from(if self.negative { -magnitude } else { magnitude }).ok()
    }

    /// Whether the value has no fractional part.
    pub fn is_integer(&self) -> bool {
        self.exponent >= 0
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.coefficient == 0
    }

    /// Whether the value is below zero (zero is never negative).
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Count of significant digits (1 for zero).
    pub fn significant_digits(&self) -> u32 {
        digit_count(self.coefficient)
    }

    /// Power of ten of the leading digit (0 for zero): 1.5E+3 → 3.
    pub fn adjusted_exponent(&self) -> i32 {
        // digits <= 38, so the sum stays far inside i32.
        self.exponent + self.significant_digits() as i32 - 1
    }

    /// The value with its sign flipped.
    pub fn negated(&self) -> Number {
        Number {
            negative: !self.negative && !self.is_zero(),
            ..*self
        }
    }

    /// Bytes DynamoDB charges for this number in item sizes.
    ///
    /// DynamoDB stores numbers as base-100 digit bytes after an exponent
    /// byte, plus a terminator byte for negatives; the AWS guide only says
    /// "approximately 1 byte per two significant digits + 1 byte". The exact
    /// rule is dynalite's `valSize` (db/index.js), verified against the live
    /// service by its putItem item-size boundary tests: zero is 1 byte, else
    /// `1 + ceil(digits / 2) + (1 if digits and the leading digit's power of
    /// ten are both even) + (1 if negative)`.
    pub fn size_bytes(&self) -> usize {
        if self.is_zero() {
            return 1;
        }
        let digits = self.significant_digits() as usize;
        let extra_pair = digits.is_multiple_of(2) && self.adjusted_exponent() % 2 == 0;
        1 + digits.div_ceil(2) + usize::from(extra_pair) + usize::from(self.negative)
    }

    /// `self + other`, exact, or the error DynamoDB gives for the result.
    pub fn checked_add(&self, other: &Number) -> Result<Number, NumberError> {
        if self.is_zero() {
            return Ok(*other);
        }
        if other.is_zero() {
            return Ok(*self);
        }
        let low = self.exponent.min(other.exponent);
        let shift_self = u32::try_from(self.exponent - low).unwrap_or(u32::MAX);
        let shift_other = u32::try_from(other.exponent - low).unwrap_or(u32::MAX);
        let fits = |n: &Number, shift: u32| {
            n.significant_digits().saturating_add(shift) <= MAX_SIGNIFICANT_DIGITS
        };
        if !(fits(self, shift_self) && fits(other, shift_other)) {
            return self.add_wide(other, low);
        }
        // Both aligned magnitudes are below 10^38, so the sum fits a u128.
        let a = self.coefficient * pow10(shift_self);
        let b = other.coefficient * pow10(shift_other);
        let (negative, magnitude) = if self.negative == other.negative {
            (self.negative, a + b)
        } else if a >= b {
            (self.negative, a - b)
        } else {
            (other.negative, b - a)
        };
        Number::from_magnitude(negative, magnitude, i64::from(low))
    }

    /// `self - other`, exact, or the error DynamoDB gives for the result.
    pub fn checked_sub(&self, other: &Number) -> Result<Number, NumberError> {
        self.checked_add(&other.negated())
    }

    /// Addition over decimal digit arrays for operands too far apart in
    /// scale for u128; the result may still fit (1E+38 - 1 has 38 digits).
    fn add_wide(&self, other: &Number, low: i32) -> Result<Number, NumberError> {
        let top = self.adjusted_exponent().max(other.adjusted_exponent()) + 1;
        let len = usize::try_from(top - low + 1).unwrap_or(0);
        let spread = |n: &Number| {
            let mut digits = vec![0u8; len];
            let mut rest = n.coefficient;
            let offset = usize::try_from(n.exponent - low).unwrap_or(0);
            for slot in digits.iter_mut().skip(offset) {
                if rest == 0 {
                    break;
                }
                *slot = (rest % 10) as u8;
                rest /= 10;
            }
            digits
        };
        let (big, small, negative) = if self.negative == other.negative {
            (spread(self), spread(other), self.negative)
        } else if self.cmp_magnitude(other) == Ordering::Less {
            (spread(other), spread(self), other.negative)
        } else {
            (spread(self), spread(other), self.negative)
        };
        let subtract = self.negative != other.negative;
        let mut result = Vec::with_capacity(len);
        let mut carry = 0i8;
        for (x, y) in big.iter().zip(&small) {
            let (x, y) = (*x as i8, *y as i8);
            let mut digit = if subtract {
                x - y + carry
            } else {
                x + y + carry
            };
            carry = 0;
            if digit < 0 {
                digit += 10;
                carry = -1;
            } else if digit >= 10 {
                digit -= 10;
                carry = 1;
            }
            result.push(digit as u8);
        }
        let Some(high) = result.iter().rposition(|d| *d != 0) else {
            return Ok(Number::ZERO);
        };
        let lowest = result.iter().position(|d| *d != 0).unwrap_or(high);
        let count = i64::try_from(high - lowest + 1).unwrap_or(i64::MAX);
        let adjusted = i64::from(low) + i64::try_from(high).unwrap_or(i64::MAX);
        let significant = result.iter().rev().skip_while(|d| **d == 0).copied();
        Number::from_significant(negative, significant, count, adjusted)
    }

    /// Compares absolute values.
    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let aligned =
            |n: &Number| n.coefficient * pow10(MAX_SIGNIFICANT_DIGITS - n.significant_digits());
        (self.adjusted_exponent(), aligned(self)).cmp(&(other.adjusted_exponent(), aligned(other)))
    }
}

/// Reads an exponent's optional sign and digits, saturating at the cap.
fn parse_exponent(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value = 0i64;
    for byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = (value * 10 + i64::from(byte - b'0')).min(EXPONENT_PARSE_CAP);
    }
    Some(if negative { -value } else { value })
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        let sign = |n: &Number| {
            if n.is_zero() {
                0
            } else if n.negative {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal if self.negative => other.cmp_magnitude(self),
            Ordering::Equal => self.cmp_magnitude(other),
            unequal => unequal,
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::ops::Neg for Number {
    type Output = Number;

    fn neg(self) -> Number {
        self.negated()
    }
}

impl From<i64> for Number {
    fn from(value: i64) -> Number {
        Number::from_i64(value)
    }
}

impl FromStr for Number {
    type Err = NumberError;

    fn from_str(text: &str) -> Result<Number, NumberError> {
        Number::parse(text)
    }
}

/// DynamoDB's normalised form: plain notation, never an exponent.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        let zeros = |f: &mut fmt::Formatter<'_>, count: i64| -> fmt::Result {
            (0..count).try_for_each(|_| f.write_char('0'))
        };
        if self.negative {
            f.write_char('-')?;
        }
        let digits = self.coefficient.to_string();
        let count = digits.len() as i64;
        let exponent = i64::from(self.exponent);
        if exponent >= 0 {
            f.write_str(&digits)?;
            zeros(f, exponent)
        } else if -exponent < count {
            let point = usize::try_from(count + exponent).unwrap_or(0);
            let (int_part, frac_part) = digits.split_at_checked(point).unwrap_or((&digits, ""));
            write!(f, "{int_part}.{frac_part}")
        } else {
            f.write_str("0.")?;
            zeros(f, -exponent - count)?;
            f.write_str(&digits)
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

impl serde::Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Number, D::Error> {
        struct NumberVisitor;

        impl serde::de::Visitor<'_> for NumberVisitor {
            type Value = Number;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a DynamoDB number as a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Number, E> {
                Number::parse(text).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(NumberVisitor)
    }
}
