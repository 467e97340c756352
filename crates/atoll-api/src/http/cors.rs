//! CORS as DynamoDB serves browser clients (Alternator's `test_cors.py`,
//! checked against DynamoDB; dynalite's tests for the preflight's max age):
//! every answer to a request with `Origin` allows any origin and exposes
//! the headers an SDK reads; an `OPTIONS` preflight is a 200 with an empty
//! body that allows what it was asked for.

use hyper::HeaderMap;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, HeaderValue,
};

use super::{Answer, respond};

/// The response headers a browser page may read, as DynamoDB lists them.
const EXPOSED_HEADERS: &str = "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,Date";
/// How long a browser may cache a preflight's answer (two days, DynamoDB's).
const PREFLIGHT_MAX_AGE_SECONDS: &str = "172800";

/// Adds the headers every answer to a cross-origin request carries.
pub(super) fn add_response_headers(headers: &mut HeaderMap) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
}

/// The answer to a preflight: the method and headers asked for are
/// allowed as asked (each only when asked).
pub(super) fn preflight(request_headers: &HeaderMap) -> Answer {
    let mut answer = respond(200, None, Vec::new());
    answer.headers.insert(
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECONDS),
    );
    for (asked, allowed) in [
        (ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_ALLOW_HEADERS),
        (ACCESS_CONTROL_REQUEST_METHOD, ACCESS_CONTROL_ALLOW_METHODS),
    ] {
        if let Some(value) = request_headers.get(&asked) {
            answer.headers.insert(allowed, value.clone());
        }
    }
    answer
}
