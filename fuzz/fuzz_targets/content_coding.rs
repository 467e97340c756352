//! Compressed request bodies and `Accept-Encoding` headers: decoding never
//! panics, never yields more than the limit, and what Atoll compresses
//! decodes back. The first input byte picks the `Content-Encoding`; the rest
//! is the body, and also read as an `Accept-Encoding` value.
#![no_main]

use atoll_api::coding::{Coding, DecodeError, compress, decode_request_body, response_coding};
use hyper::HeaderMap;
use hyper::header::{ACCEPT_ENCODING, CONTENT_ENCODING, HeaderValue};
use libfuzzer_sys::fuzz_target;

const ENCODINGS: &[&str] = &[
    "gzip",
    "deflate",
    "gzip, deflate",
    "deflate, gzip",
    "identity",
    "gzip, identity, gzip",
    "br",
];
const LIMIT_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let encoding = ENCODINGS[usize::from(pick) % ENCODINGS.len()];
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
    match decode_request_body(&headers, body.to_vec().into(), LIMIT_BYTES) {
        Ok(decoded) => assert!(decoded.len() <= LIMIT_BYTES),
        Err(DecodeError::Unsupported) => assert_eq!(encoding, "br"),
        Err(DecodeError::Corrupt | DecodeError::TooLarge) => {}
    }
    if let Ok(value) = HeaderValue::from_bytes(body) {
        let mut accept = HeaderMap::new();
        accept.insert(ACCEPT_ENCODING, value);
        let _ = response_coding(&accept);
    }
    for coding in [Coding::Gzip, Coding::Deflate] {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
        let packed = compress(coding, body);
        let back = decode_request_body(&headers, packed.into(), body.len())
            .expect("what Atoll compresses decodes back");
        assert_eq!(back.as_ref(), body);
    }
});
