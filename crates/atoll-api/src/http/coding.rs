//! Content codings: compressed request bodies (`Content-Encoding`) and
//! compressed responses (`Accept-Encoding`), as DynamoDB handles them.
//!
//! flate2 does the (de)compression; what is written here is DynamoDB's
//! choice of which codings apply, in which order, and what counts as a bad
//! body. DynamoDB's front end decodes as Java's `GZIPInputStream` and
//! `InflaterInputStream` do (observed through Alternator's tests, which run
//! against the service): gzip members may follow one another and bytes after
//! the last member that do not start another one are ignored (DynamoDB
//! accepts a gzip body with junk after it); `deflate` is one zlib stream.

use std::io::Read;

use hyper::HeaderMap;
use hyper::header::{ACCEPT_ENCODING, CONTENT_ENCODING};

/// Responses shorter than this are sent as they are (DynamoDB's threshold:
/// Alternator's `test_compressed_response.py`).
pub const RESPONSE_COMPRESSION_THRESHOLD_BYTES: usize = 4096;

/// The start of every gzip member: magic bytes and the deflate method.
const GZIP_MEMBER_START: [u8; 3] = [0x1f, 0x8b, 0x08];

/// A coding Atoll reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// RFC 1952 gzip.
    Gzip,
    /// RFC 1950 zlib-wrapped deflate (what HTTP calls `deflate`).
    Deflate,
}

impl Coding {
    /// The coding's name in HTTP headers.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }
}

/// Why a request body could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A coding Atoll does not know (DynamoDB: 500).
    Unsupported,
    /// The bytes are not what the coding says: garbage, truncated, empty
    /// (DynamoDB: 500, an InternalServerError).
    Corrupt,
    /// The decoded body is larger than the request size limit (413).
    TooLarge,
}

/// The request body with every coding of its `Content-Encoding` headers
/// undone, last applied first (RFC 9110 §8.4: codings are listed in the
/// order they were applied). Decoding stops at `limit_bytes` of output.
pub fn decode_request_body(
    headers: &HeaderMap,
    body: bytes::Bytes,
    limit_bytes: usize,
) -> Result<bytes::Bytes, DecodeError> {
    let mut codings = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| DecodeError::Unsupported)?;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            codings.push(match name.to_ascii_lowercase().as_str() {
                "identity" => continue,
                "gzip" | "x-gzip" => Coding::Gzip,
                "deflate" => Coding::Deflate,
                _ => return Err(DecodeError::Unsupported),
            });
        }
    }
    let mut body = body;
    for coding in codings.into_iter().rev() {
        let decoded = match coding {
            Coding::Gzip => gunzip(&body, limit_bytes)?,
            Coding::Deflate => inflate(&body, limit_bytes)?,
        };
        body = bytes::Bytes::from(decoded);
    }
    Ok(body)
}

/// Every gzip member of `input`, one after another; bytes after a member
/// that do not start another are ignored, as Java's `GZIPInputStream` does.
fn gunzip(mut input: &[u8], limit_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    loop {
        let mut member = flate2::bufread::GzDecoder::new(input);
        read_limited(&mut member, &mut out, limit_bytes)?;
        // The bufread decoder consumes exactly the member, trailer included.
        input = member.into_inner();
        if !input.starts_with(&GZIP_MEMBER_START) {
            return Ok(out);
        }
    }
}

/// One zlib stream; what follows it is ignored (Java's `InflaterInputStream`).
fn inflate(input: &[u8], limit_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    read_limited(
        &mut flate2::bufread::ZlibDecoder::new(input),
        &mut out,
        limit_bytes,
    )?;
    Ok(out)
}

/// Appends what `reader` yields to `out`, refusing to grow `out` past `limit_bytes`.
fn read_limited(
    reader: &mut impl Read,
    out: &mut Vec<u8>,
    limit_bytes: usize,
) -> Result<(), DecodeError> {
    let room = limit_bytes.saturating_sub(out.len()) as u64;
    let read = reader
        .take(room + 1)
        .read_to_end(out)
        .map_err(|_| DecodeError::Corrupt)?;
    if read as u64 > room {
        return Err(DecodeError::TooLarge);
    }
    Ok(())
}

/// The coding to answer with, from the request's `Accept-Encoding`.
///
/// DynamoDB's reading (Alternator's `test_accept_encoding_header`, run
/// against it): only the first header counts; names are case-insensitive;
/// the highest `q` wins, and among equal ones the coding listed first; a
/// coding named explicitly beats one reached through `*`, and `*` alone
/// means gzip; `q=0` refuses a coding; a `q` above 1, negative or
/// unreadable counts as 1, and only the first `q` of an element counts;
/// `identity` and unknown codings are ignored.
pub fn response_coding(headers: &HeaderMap) -> Option<Coding> {
    let header = headers.get(ACCEPT_ENCODING)?.to_str().ok()?;
    // (q, explicitly named, position) per coding; `*`'s q apart.
    let mut named: [Option<(f32, usize)>; 2] = [None, None];
    let mut wildcard_q: Option<f32> = None;
    for (position, element) in header.split(',').enumerate() {
        let mut parts = element.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts.find_map(quality).unwrap_or(1.0);
        let slot = match name.as_str() {
            "gzip" => &mut named[0],
            "deflate" => &mut named[1],
            "*" => {
                wildcard_q.get_or_insert(q);
                continue;
            }
            _ => continue,
        };
        slot.get_or_insert((q, position));
    }
    let candidates = [Coding::Gzip, Coding::Deflate].into_iter().zip(named);
    let mut best: Option<(Coding, Preference)> = None;
    for (coding, explicit) in candidates {
        let rank = match (explicit, wildcard_q) {
            (Some((q, position)), _) => (q, true, std::cmp::Reverse(position)),
            // Through `*`: after every named coding, gzip before deflate.
            (None, Some(q)) => (q, false, std::cmp::Reverse(usize::MAX)),
            (None, None) => continue,
        };
        if rank.0 <= 0.0 {
            continue;
        }
        if best.as_ref().is_none_or(|(_, held)| rank > *held) {
            best = Some((coding, rank));
        }
    }
    best.map(|(coding, _)| coding)
}

/// How much a client wants a coding: its `q` first, then named explicitly
/// before reached through `*`, then listed earlier before later.
type Preference = (f32, bool, std::cmp::Reverse<usize>);

/// The `q` of one `;`-separated parameter, if it is one: `q=` exactly (no
/// space before `=`), clamped to 1 and read as 1 when it is not a number
/// from 0 up.
fn quality(parameter: &str) -> Option<f32> {
    let value = parameter.trim().strip_prefix("q=")?;
    Some(match value.trim().parse::<f32>() {
        Ok(q) if (0.0..=1.0).contains(&q) => q,
        _ => 1.0,
    })
}

/// `body` compressed with `coding` at a fast level: responses are mostly
/// small JSON, and CPU spent here is taken from serving requests.
pub fn compress(coding: Coding, body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let level = flate2::Compression::fast();
    let out = Vec::with_capacity(body.len() / 4);
    // Writing into a Vec cannot fail.
    match coding {
        Coding::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(out, level);
            let _ = encoder.write_all(body);
            encoder.finish().unwrap_or_default()
        }
        Coding::Deflate => {
            let mut encoder = flate2::write::ZlibEncoder::new(out, level);
            let _ = encoder.write_all(body);
            encoder.finish().unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests;
