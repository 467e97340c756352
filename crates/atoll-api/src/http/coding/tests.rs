use std::io::Write;

use hyper::HeaderMap;
use hyper::header::{ACCEPT_ENCODING, CONTENT_ENCODING, HeaderValue};

use super::{Coding, DecodeError, compress, decode_request_body, response_coding};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn decode(encodings: &[&str], body: Vec<u8>) -> Result<Vec<u8>, DecodeError> {
    let mut headers = HeaderMap::new();
    for encoding in encodings {
        headers.append(CONTENT_ENCODING, HeaderValue::from_str(encoding).unwrap());
    }
    decode_request_body(&headers, body.into(), 1024).map(|b| b.to_vec())
}

#[test]
fn request_codings_are_undone_last_first() {
    let text = b"{\"a\":1}".to_vec();
    assert_eq!(decode(&[], text.clone()), Ok(text.clone()));
    assert_eq!(decode(&["identity"], text.clone()), Ok(text.clone()));
    assert_eq!(decode(&["gzip"], gzip(&text)), Ok(text.clone()));
    assert_eq!(decode(&["GZip"], gzip(&text)), Ok(text.clone()));
    assert_eq!(decode(&["deflate"], zlib(&text)), Ok(text.clone()));
    // gzip applied first, then deflate: deflate is undone first.
    assert_eq!(
        decode(&["gzip, deflate"], zlib(&gzip(&text))),
        Ok(text.clone())
    );
    assert_eq!(
        decode(&["gzip", "deflate"], zlib(&gzip(&text))),
        Ok(text.clone())
    );
    assert_eq!(
        decode(&["gzip, deflate"], gzip(&zlib(&text))),
        Err(DecodeError::Corrupt)
    );
    assert_eq!(decode(&["br"], text.clone()), Err(DecodeError::Unsupported));
    assert_eq!(
        decode(&["gzip, zstd"], gzip(&text)),
        Err(DecodeError::Unsupported)
    );
}

#[test]
fn gzip_members_follow_one_another_and_trailing_junk_is_ignored() {
    let mut two = gzip(b"{\"a\":");
    two.extend(gzip(b"1}"));
    assert_eq!(decode(&["gzip"], two), Ok(b"{\"a\":1}".to_vec()));
    let mut junk = gzip(b"{}");
    junk.extend_from_slice(b"junk");
    assert_eq!(decode(&["gzip"], junk), Ok(b"{}".to_vec()));
    // A second member that starts well but breaks is an error.
    let mut broken = gzip(b"{}");
    let second = gzip(b"more");
    broken.extend_from_slice(&second[..second.len() - 3]);
    assert_eq!(decode(&["gzip"], broken), Err(DecodeError::Corrupt));
}

#[test]
fn corrupt_bodies_are_refused() {
    let text = b"{\"TableName\":\"abc\"}";
    let full = gzip(text);
    for body in [
        Vec::new(),
        text.to_vec(),
        full[..full.len() - 1].to_vec(),
        full[..10].to_vec(),
    ] {
        assert_eq!(decode(&["gzip"], body.clone()), Err(DecodeError::Corrupt));
    }
    let full = zlib(text);
    for body in [Vec::new(), text.to_vec(), full[..full.len() - 1].to_vec()] {
        assert_eq!(decode(&["deflate"], body), Err(DecodeError::Corrupt));
    }
}

#[test]
fn the_limit_applies_to_the_decoded_body() {
    let big = vec![b' '; 1025];
    assert_eq!(decode(&["gzip"], gzip(&big)), Err(DecodeError::TooLarge));
    assert_eq!(decode(&["deflate"], zlib(&big)), Err(DecodeError::TooLarge));
    let exact = vec![b' '; 1024];
    assert_eq!(decode(&["gzip"], gzip(&exact)), Ok(exact));
    // Several members together count against one limit.
    let mut two = gzip(&[b' '; 600]);
    two.extend(gzip(&[b' '; 600]));
    assert_eq!(decode(&["gzip"], two), Err(DecodeError::TooLarge));
}

fn accepted(value: &str) -> Option<Coding> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
    response_coding(&headers)
}

/// Cases from Alternator's `test_accept_encoding_header`, which pins what
/// DynamoDB answers.
#[test]
fn accept_encoding_is_read_as_dynamodb_reads_it() {
    use Coding::{Deflate, Gzip};
    let cases: &[(&str, Option<Coding>)] = &[
        ("", None),
        ("identity", None),
        ("br", None),
        ("zstd", None),
        ("compress", None),
        ("x-gzip", None),
        ("gzip", Some(Gzip)),
        ("deflate", Some(Deflate)),
        ("gzip, deflate", Some(Gzip)),
        ("br, identity, deflate, gzip", Some(Deflate)),
        ("GZIP, identity", Some(Gzip)),
        ("dog, gzip ,, cat", Some(Gzip)),
        ("gzip;q=0.5, deflate", Some(Deflate)),
        ("gzip;q=0, deflate;q=0", None),
        ("gzip;q=0", None),
        ("gzip; q=0", None),
        ("gzip;q =0;q=1", Some(Gzip)),
        ("gzip;q=0;q=1", None),
        ("gzip;q=2, deflate;q=1", Some(Gzip)),
        ("deflate;q=-1, gzip", Some(Deflate)),
        ("deflate;q=0.x, gzip", Some(Deflate)),
        ("gzip;q=0.0001", Some(Gzip)),
        ("*", Some(Gzip)),
        ("*, deflate", Some(Deflate)),
        ("*, gzip;q=0.5", Some(Deflate)),
        ("*;q=0", None),
        ("*;q=0.5,identity", Some(Gzip)),
        ("\"gzip\"", None),
        ("gzip br", None),
        ("gzip:q=1", None),
    ];
    for (value, want) in cases {
        assert_eq!(accepted(value), *want, "Accept-Encoding: {value:?}");
    }
}

#[test]
fn only_the_first_accept_encoding_header_counts() {
    let mut headers = HeaderMap::new();
    headers.append(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    headers.append(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    assert_eq!(response_coding(&headers), None);
}

#[test]
fn compressed_responses_decode_back() {
    let body = vec![b'x'; 10_000];
    for coding in [Coding::Gzip, Coding::Deflate] {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
        let packed = compress(coding, &body);
        assert!(packed.len() < body.len() / 10);
        let back = decode_request_body(&headers, packed.into(), 20_000).unwrap();
        assert_eq!(back.as_ref(), body.as_slice());
    }
}
