//! Authentication: parsing SigV4 signatures (the `Authorization` header or
//! the query-string form), then verifying them against the access keys
//! Atoll knows (`verify.rs`) when a key store requires it.
//!
//! A signature must always be well formed, refused with DynamoDB's errors
//! otherwise, and the region of its credential scope names the region of
//! the request (used in ARNs). With no key configured (`AuthMode::Open`)
//! any credentials are accepted, so a laptop needs no set-up.

mod verify;

use hyper::HeaderMap;

use crate::error::{ApiError, ApiResult, ErrorKind};
pub use verify::{AuthMode, KeyStore, Secret};
pub(crate) use verify::{SignedRequest, verify};

/// What a request's signature says about its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Access key id.
    pub access_key_id: String,
    /// Region of the credential scope.
    pub region: String,
    /// The credential scope (`date/region/service/aws4_request`).
    pub scope: String,
    /// The headers signed, `;`-separated.
    pub signed_headers: String,
    /// The signature (hex).
    pub signature: String,
    /// The request's `X-Amz-Date`.
    pub amz_date: String,
    /// Whether the signature came in the query string.
    pub in_query: bool,
}

impl Caller {
    /// The signature's parts, for verification.
    pub(crate) fn signed(&self) -> verify::Signed<'_> {
        verify::Signed {
            access_key_id: &self.access_key_id,
            scope: self.scope.clone(),
            signed_headers: &self.signed_headers,
            signature: &self.signature,
            amz_date: &self.amz_date,
            in_query: self.in_query,
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

fn is_iso8601_basic(date: &str) -> bool {
    let bytes = date.as_bytes();
    bytes.len() == 16
        && bytes.get(8) == Some(&b'T')
        && bytes.get(15) == Some(&b'Z')
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 8 || i == 15 || b.is_ascii_digit())
}

/// Checks the request's SigV4 authentication and returns the caller.
pub fn authenticate(headers: &HeaderMap, query: Option<&str>) -> ApiResult<Caller> {
    let authorization = header(headers, "authorization");
    let query_algorithm = query.and_then(|q| query_param(q, "X-Amz-Algorithm"));
    if authorization.is_some() && query_algorithm.is_some() {
        return Err(ApiError::new(
            ErrorKind::InvalidSignature,
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
        ));
    }
    if let (Some(query), Some(_)) = (query, query_algorithm) {
        return authenticate_query(headers, query);
    }
    let Some(authorization) = authorization.filter(|a| a.starts_with("AWS4-")) else {
        return Err(ApiError::new(
            ErrorKind::MissingAuthenticationToken,
            "Request is missing Authentication Token",
        ));
    };
    let mut tokens = authorization
        .split([',', ' '])
        .filter(|token| !token.is_empty());
    let algorithm = tokens.next().unwrap_or_default();
    let mut credential = None;
    let mut signature = None;
    let mut signed_headers = None;
    for token in tokens {
        if let Some((key, value)) = token.split_once('=') {
            match key {
                "Credential" => credential = Some(value),
                "Signature" => signature = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                _ => {}
            }
        }
    }
    let date = header(headers, "x-amz-date").or_else(|| header(headers, "date"));
    let mut missing = String::new();
    if credential.is_none() {
        missing.push_str("Authorization header requires 'Credential' parameter. ");
    }
    if signature.is_none() {
        missing.push_str("Authorization header requires 'Signature' parameter. ");
    }
    if signed_headers.is_none() {
        missing.push_str("Authorization header requires 'SignedHeaders' parameter. ");
    }
    if date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if !missing.is_empty() {
        return Err(ApiError::new(
            ErrorKind::IncompleteSignature,
            format!("{missing}Authorization={authorization}"),
        ));
    }
    if algorithm != "AWS4-HMAC-SHA256" {
        return Err(ApiError::new(
            ErrorKind::IncompleteSignature,
            format!("Unsupported AWS 'algorithm': '{algorithm}' (only AWS4-HMAC-SHA256 for now). "),
        ));
    }
    let mut caller = check_scope(
        credential.unwrap_or_default(),
        header(headers, "x-amz-date"),
    )?;
    caller.signed_headers = signed_headers.unwrap_or_default().to_string();
    caller.signature = signature.unwrap_or_default().to_string();
    caller.amz_date = date.unwrap_or_default().to_string();
    Ok(caller)
}

fn authenticate_query(headers: &HeaderMap, query: &str) -> ApiResult<Caller> {
    let mut missing = String::new();
    for param in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
    ] {
        if query_param(query, param).is_none_or(str::is_empty) {
            missing.push_str(&format!(
                "AWS query-string parameters must include '{param}'. "
            ));
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::new(
            ErrorKind::IncompleteSignature,
            format!("{missing}Re-examine the query-string parameters."),
        ));
    }
    let credential = query_param(query, "X-Amz-Credential").unwrap_or_default();
    let credential = credential.replace("%2F", "/").replace("%2f", "/");
    let _ = headers;
    let mut caller = check_scope(&credential, query_param(query, "X-Amz-Date"))?;
    caller.signed_headers = query_param(query, "X-Amz-SignedHeaders")
        .unwrap_or_default()
        .replace("%3B", ";")
        .replace("%3b", ";");
    caller.signature = query_param(query, "X-Amz-Signature")
        .unwrap_or_default()
        .to_string();
    caller.amz_date = query_param(query, "X-Amz-Date")
        .unwrap_or_default()
        .to_string();
    caller.in_query = true;
    Ok(caller)
}

fn check_scope(credential: &str, amz_date: Option<&str>) -> ApiResult<Caller> {
    if let Some(date) = amz_date
        && !is_iso8601_basic(date)
    {
        return Err(ApiError::new(
            ErrorKind::IncompleteSignature,
            format!(
                "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ),
        ));
    }
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts.as_slice() else {
        return Err(ApiError::new(
            ErrorKind::IncompleteSignature,
            format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            ),
        ));
    };
    let mut problems = String::new();
    if region.is_empty() {
        problems.push_str(&format!(
            "Credential should be scoped to a valid region, not '{region}'. "
        ));
    }
    if *service != "dynamodb" {
        problems.push_str("Credential should be scoped to correct service: 'dynamodb'. ");
    }
    if *terminator != "aws4_request" {
        problems.push_str(&format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
        ));
    }
    if let Some(date) = amz_date
        && date.get(..8) != Some(*scope_date)
    {
        problems.push_str(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{}', from '{date}'.",
            date.get(..8).unwrap_or_default()
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::new(
            ErrorKind::InvalidSignature,
            problems.trim_end().to_string(),
        ));
    }
    Ok(Caller {
        access_key_id: (*access_key_id).to_string(),
        region: (*region).to_string(),
        scope: format!("{scope_date}/{region}/{service}/{terminator}"),
        signed_headers: String::new(),
        signature: String::new(),
        amz_date: String::new(),
        in_query: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    fn failure(pairs: &[(&'static str, &str)]) -> (ErrorKind, String) {
        let error = authenticate(&headers(pairs), None).expect_err("must fail");
        (error.kind, error.message.unwrap_or_default())
    }

    #[test]
    fn a_well_formed_header_names_its_region() {
        let caller = authenticate(
            &headers(&[
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-2/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
                ),
                ("x-amz-date", "20260101T000000Z"),
            ]),
            None,
        )
        .expect("valid");
        assert_eq!(caller.region, "eu-west-2");
        assert_eq!(caller.access_key_id, "AKID");
    }

    #[test]
    fn malformed_headers_get_dynamodbs_errors() {
        assert_eq!(
            failure(&[]),
            (
                ErrorKind::MissingAuthenticationToken,
                "Request is missing Authentication Token".into()
            )
        );
        assert_eq!(
            failure(&[("authorization", "Basic abc")]).0,
            ErrorKind::MissingAuthenticationToken
        );
        assert_eq!(
            failure(&[("authorization", "AWS4-")]),
            (
                ErrorKind::IncompleteSignature,
                "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-".into()
            )
        );
        let (kind, message) = failure(&[
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=x",
            ),
            ("x-amz-date", "20130609T095204Z"),
        ]);
        assert_eq!(kind, ErrorKind::IncompleteSignature);
        assert!(message.starts_with("Credential must have exactly 5 slash-delimited elements"));
        let (kind, message) = failure(&[
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=x",
            ),
            ("x-amz-date", "20130609T095204Z"),
        ]);
        assert_eq!(kind, ErrorKind::InvalidSignature);
        assert!(message.contains("Credential should be scoped to correct service: 'dynamodb'."));
    }
}
