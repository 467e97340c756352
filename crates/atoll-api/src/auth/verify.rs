//! Verifying a request's AWS Signature Version 4 against the access keys
//! Atoll knows.
//!
//! Written here on `hmac`, `sha2` and `subtle` (constant-time comparison),
//! as DESIGN.md's chosen parts say: the AWS crates sign requests but
//! verify none, no maintained crate verifies SigV4 for a server, and the
//! answers must be DynamoDB's own errors and texts.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiResult, ErrorKind};

type HmacSha256 = Hmac<Sha256>;

/// How far a request's date may be from the server's clock (DynamoDB's
/// 15 minutes).
const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// A secret access key: never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret access key.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Whether requests must be signed with a known key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Any well-formed credentials are accepted (a laptop's default).
    #[default]
    Open,
    /// Every request must be signed with a key Atoll knows.
    Required,
}

/// The access keys requests may be signed with.
#[derive(Clone, Default)]
pub struct KeyStore {
    mode: AuthMode,
    keys: HashMap<String, Secret>,
    // The signing key each access key last signed with, by scope: deriving
    // one costs four HMACs, and a client signs a day's requests with one.
    signing_keys: Arc<RwLock<SigningKeys>>,
}

/// Per access key: the scope of its last signing key, and the key.
type SigningKeys = HashMap<String, (String, Arc<Vec<u8>>)>;

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("mode", &self.mode)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl KeyStore {
    /// Keys `keys`; `required` turns verification on even with none (any
    /// key turns it on).
    pub fn new(required: bool, keys: impl IntoIterator<Item = (String, Secret)>) -> KeyStore {
        let keys: HashMap<String, Secret> = keys.into_iter().collect();
        let mode = match required || !keys.is_empty() {
            true => AuthMode::Required,
            false => AuthMode::Open,
        };
        KeyStore {
            mode,
            keys,
            signing_keys: Arc::default(),
        }
    }

    /// The key `access_key_id` (secret `secret`) signs `scope` with.
    fn signing_key(&self, access_key_id: &str, secret: &Secret, scope: &str) -> Arc<Vec<u8>> {
        let cached = self
            .signing_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(access_key_id)
            .filter(|(cached_scope, _)| cached_scope == scope)
            .map(|(_, key)| key.clone());
        if let Some(key) = cached {
            return key;
        }
        let key = Arc::new(signing_key(&secret.0, scope));
        self.signing_keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(access_key_id.to_string(), (scope.to_string(), key.clone()));
        key
    }

    /// Whether signatures are verified.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// How many keys are known.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is known.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn secret(&self, access_key_id: &str) -> Option<&Secret> {
        self.keys.get(access_key_id)
    }
}

/// The parts of a SigV4 signature a request carries (header or query form).
pub(crate) struct Signed<'a> {
    pub(crate) access_key_id: &'a str,
    /// `date/region/service/aws4_request`.
    pub(crate) scope: String,
    pub(crate) signed_headers: &'a str,
    pub(crate) signature: &'a str,
    /// `X-Amz-Date` (basic ISO 8601).
    pub(crate) amz_date: &'a str,
    /// Whether the signature travels in the query string.
    pub(crate) in_query: bool,
}

/// The request as the signature covers it.
pub(crate) struct SignedRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    /// The body as sent (before any Content-Encoding is undone).
    pub(crate) body: &'a [u8],
}

/// UnrecognizedClientException for a key (or token) Atoll does not know.
fn unrecognized() -> ApiError {
    ApiError::new(
        ErrorKind::UnrecognizedClient,
        "The security token included in the request is invalid.",
    )
}

/// Verifies `signed` over `request` with the key store's secret.
pub(crate) fn verify(
    keys: &KeyStore,
    signed: &Signed<'_>,
    request: &SignedRequest<'_>,
    now_seconds: i64,
) -> ApiResult<()> {
    // DynamoDB's order: the date, the key, the signature, the token.
    check_time(signed.amz_date, now_seconds)?;
    let Some(secret) = keys.secret(signed.access_key_id) else {
        return Err(unrecognized());
    };
    let canonical = canonical_request(signed, request)?;
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        signed.amz_date,
        signed.scope,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = keys.signing_key(signed.access_key_id, secret, &signed.scope);
    let expected = hex(&hmac(&key, string_to_sign.as_bytes()));
    let matches: bool = expected
        .as_bytes()
        .ct_eq(signed.signature.to_ascii_lowercase().as_bytes())
        .into();
    if !matches {
        return Err(ApiError::new(
            ErrorKind::InvalidSignature,
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    // Long-term keys only: a session token names credentials Atoll never
    // issued (DynamoDB words this one without a period).
    let token = request
        .headers
        .get("x-amz-security-token")
        .is_some_and(|v| !v.is_empty());
    if token {
        return Err(ApiError::new(
            ErrorKind::UnrecognizedClient,
            "The security token included in the request is invalid",
        ));
    }
    Ok(())
}

/// The request's date is within 15 minutes of now.
fn check_time(amz_date: &str, now_seconds: i64) -> ApiResult<()> {
    let Some(signed_seconds) = parse_amz_date(amz_date) else {
        return Err(ApiError::new(
            ErrorKind::IncompleteSignature,
            format!(
                "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ),
        ));
    };
    if signed_seconds < now_seconds - MAX_SKEW_SECONDS {
        return Err(ApiError::new(
            ErrorKind::InvalidSignature,
            format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
                format_amz_date(now_seconds - MAX_SKEW_SECONDS),
                format_amz_date(now_seconds)
            ),
        ));
    }
    if signed_seconds > now_seconds + MAX_SKEW_SECONDS {
        return Err(ApiError::new(
            ErrorKind::InvalidSignature,
            format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
                format_amz_date(now_seconds + MAX_SKEW_SECONDS),
                format_amz_date(now_seconds)
            ),
        ));
    }
    Ok(())
}

/// SigV4's canonical request.
fn canonical_request(signed: &Signed<'_>, request: &SignedRequest<'_>) -> ApiResult<String> {
    let mut canonical = String::with_capacity(512);
    canonical.push_str(request.method);
    canonical.push('\n');
    canonical.push_str(&canonical_path(request.path));
    canonical.push('\n');
    canonical.push_str(&canonical_query(request.query, signed.in_query));
    canonical.push('\n');
    for name in signed.signed_headers.split(';') {
        let mut values = request.headers.get_all(name).iter().peekable();
        if values.peek().is_none() && name != "host" {
            // A signed header the request does not have: the signature
            // cannot be the one computed, as AWS answers too.
            return Err(ApiError::new(
                ErrorKind::InvalidSignature,
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            ));
        }
        canonical.push_str(name);
        canonical.push(':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                canonical.push(',');
            }
            push_canonical_value(&mut canonical, &String::from_utf8_lossy(value.as_bytes()));
        }
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(signed.signed_headers);
    canonical.push('\n');
    canonical.push_str(&hex(&Sha256::digest(request.body)));
    Ok(canonical)
}

/// Appends a header value with its ends trimmed and inner runs of spaces folded.
fn push_canonical_value(out: &mut String, value: &str) {
    for (i, word) in value.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The path as received (encoded once by the client) with each segment
/// encoded again, as SigV4 has it for every service but S3 (DynamoDB's
/// clients all send `/`).
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// The query's parameters sorted and URI-encoded (without the signature
/// itself in the query form).
fn canonical_query(query: Option<&str>, in_query: bool) -> String {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(key)),
                uri_encode(&percent_decode(value)),
            )
        })
        .filter(|(key, _)| !(in_query && key == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 encoding as SigV4 wants it (unreserved characters kept).
fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `%XX` escapes undone (an invalid one is kept as it is).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let escaped = match (byte, bytes.get(at + 1), bytes.get(at + 2)) {
            (b'%', Some(high), Some(low)) => {
                let digit = |c: u8| char::from(c).to_digit(16);
                match (digit(*high), digit(*low)) {
                    (Some(h), Some(l)) => Some((h * 16 + l) as u8),
                    _ => None,
                }
            }
            _ => None,
        };
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                at += 3;
            }
            None => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The key that signs for `scope` (`date/region/service/aws4_request`).
fn signing_key(secret: &str, scope: &str) -> Vec<u8> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        key = hmac(&key, part.as_bytes());
    }
    key
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        for nibble in [byte >> 4, byte & 15] {
            if let Some(digit) = DIGITS.get(usize::from(nibble)) {
                out.push(char::from(*digit));
            }
        }
    }
    out
}

/// Seconds since the epoch of a `YYYYMMDDTHHMMSSZ` date.
fn parse_amz_date(date: &str) -> Option<i64> {
    let digits =
        |range: std::ops::Range<usize>| -> Option<i64> { date.get(range)?.parse::<i64>().ok() };
    if date.len() != 16 || date.get(8..9) != Some("T") || date.get(15..16) != Some("Z") {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// `YYYYMMDDTHHMMSSZ` of seconds since the epoch.
fn format_amz_date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    /// AWS's published SigV4 example (the `get-vanilla` test of the
    /// signature test suite): its canonical request and signature.
    #[test]
    fn the_aws_test_suite_vanilla_get_verifies() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let keys = KeyStore::new(
            true,
            [(
                "AKIDEXAMPLE".to_string(),
                Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            )],
        );
        let signed = Signed {
            access_key_id: "AKIDEXAMPLE",
            scope: "20150830/us-east-1/service/aws4_request".into(),
            signed_headers: "host;x-amz-date",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            amz_date: "20150830T123600Z",
            in_query: false,
        };
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query: None,
            headers: &headers,
            body: b"",
        };
        let now = parse_amz_date("20150830T123600Z").unwrap_or_default();
        assert!(verify(&keys, &signed, &request, now).is_ok());
        let tampered = SignedRequest {
            body: b"x",
            ..request
        };
        let error = verify(&keys, &signed, &tampered, now).err();
        assert_eq!(error.map(|e| e.kind), Some(ErrorKind::InvalidSignature));
        // The date is checked before the key, as DynamoDB does.
        let stranger = Signed {
            access_key_id: "AKIDUNKNOWN",
            ..signed
        };
        let error = verify(&keys, &stranger, &request, now + 3600).err();
        assert!(
            error
                .and_then(|e| e.message)
                .is_some_and(|m| m.starts_with("Signature expired"))
        );
        let error = verify(&keys, &stranger, &request, now).err();
        assert_eq!(error.map(|e| e.kind), Some(ErrorKind::UnrecognizedClient));
    }

    #[test]
    fn dates_round_trip_and_skew_is_refused() {
        let seconds = parse_amz_date("20261208T010203Z").unwrap_or_default();
        assert_eq!(format_amz_date(seconds), "20261208T010203Z");
        let late = check_time("20261208T010203Z", seconds + 16 * 60).err();
        assert_eq!(
            late.and_then(|e| e.message),
            Some("Signature expired: 20261208T010203Z is now earlier than 20261208T010303Z (20261208T011803Z - 15 min.)".into())
        );
        assert!(check_time("20261208T010203Z", seconds - 14 * 60).is_ok());
        assert!(check_time("20261208T010203Z", seconds - 16 * 60).is_err());
    }

    #[test]
    fn secrets_are_never_printed() {
        let keys = KeyStore::new(false, [("AK".to_string(), Secret::new("hunter2"))]);
        assert!(!format!("{keys:?}").contains("hunter2"));
        assert_eq!(keys.mode(), AuthMode::Required);
    }
}
