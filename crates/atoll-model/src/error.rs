//! Errors of the model crate.
//!
//! The house rule is one error type per crate: [`ModelError`]. Each module's
//! functions return the narrower enum for their own failures so callers can
//! match exactly; all of them convert into [`ModelError`] with `?`.

use thiserror::Error;

/// Any error produced by `atoll-model`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// A number could not be parsed or does not fit DynamoDB's number type.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// Stored number bytes are corrupt.
    #[error(transparent)]
    NumberDecode(#[from] NumberDecodeError),
    /// A key could not be encoded or a stored row key could not be decoded.
    #[error(transparent)]
    KeyCodec(#[from] KeyCodecError),
    /// A stored item record is corrupt or of an unknown version.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// Why a string or a computation is not a valid DynamoDB number.
///
/// The Display texts are DynamoDB's own `ValidationException` messages, as
/// recorded by dynalite (validations/index.js `checkNum`, checked there
/// against the live service by its test suite): they reach clients verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NumberError {
    /// The input was the empty string; DynamoDB omits the ": value" suffix here.
    #[error("The parameter cannot be converted to a numeric value")]
    Empty,
    /// The input is not a decimal number literal.
    #[error("The parameter cannot be converted to a numeric value: {input}")]
    Invalid {
        /// The client's text, echoed as DynamoDB does.
        input: String,
    },
    /// The magnitude is 1E+126 or more.
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    Overflow,
    /// The magnitude is nonzero and below 1E-130.
    #[error(
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    )]
    Underflow,
    /// More than 38 significant digits.
    #[error("Attempting to store more than 38 significant digits in a Number")]
    Precision,
}

impl NumberError {
    /// The message DynamoDB sends to the client for this error.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Why bytes are not a valid order-preserving number encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NumberDecodeError {
    /// The bytes end inside the number.
    #[error("encoded number is truncated")]
    Truncated,
    /// The bytes are not an encoding this codec produces.
    #[error("encoded number is malformed: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
}

/// Why a key cannot be encoded, or a stored row key cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyCodecError {
    /// Key attributes must be S, N or B.
    #[error("key attributes must be of type S, N or B, not {type_name}")]
    UnsupportedKeyType {
        /// DynamoDB's name of the offending type, e.g. "BOOL".
        type_name: &'static str,
    },
    /// The bytes end before the key is complete.
    #[error("row key is truncated")]
    Truncated,
    /// A type tag byte is not one this codec writes.
    #[error("row key has unknown type tag {tag:#04x}")]
    UnknownTag {
        /// The byte found where a tag was expected.
        tag: u8,
    },
    /// A 0x00 byte inside the escaped partition key is not followed by 0xFF or 0x01.
    #[error("row key has an invalid escape sequence")]
    BadEscape,
    /// A string key is not valid UTF-8.
    #[error("row key string is not valid UTF-8")]
    InvalidUtf8,
    /// A number key is not a canonical DynamoDB number.
    #[error("row key number is invalid")]
    InvalidNumber,
    /// Bytes remain after a numeric sort key.
    #[error("row key has trailing bytes")]
    TrailingBytes,
    /// The stored token is not the hash of the stored partition key.
    #[error("row key token does not match its partition key")]
    TokenMismatch,
}

/// Why a stored item record cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// Shorter than the fixed header and checksum.
    #[error("item record is truncated")]
    Truncated,
    /// The CRC32 does not match the content: the record is corrupt.
    #[error("item record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum stored in the record.
        stored: u32,
        /// The checksum of the bytes actually read.
        computed: u32,
    },
    /// Written by a format version this build does not know.
    #[error("item record has unsupported format version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The content does not follow the format although its checksum matched.
    #[error("item record is malformed: {reason}")]
    Malformed {
        /// What was wrong, for logs and the scrubber.
        reason: &'static str,
    },
}
