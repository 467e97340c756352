//! Signature verification: a server given an access key (`--access-key`)
//! verifies every request's SigV4 signature and answers as DynamoDB does —
//! UnrecognizedClientException for a key (or session token) it does not
//! know, InvalidSignatureException for a wrong secret, a tampered body or
//! header, or a clock more than 15 minutes off, and
//! MissingAuthenticationTokenException for an unsigned request — through
//! the real SDK and raw HTTP. A server with no key accepts any credentials
//! (every other test file runs that way).

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::ScalarAttributeType;
use common::*;

/// The key the server knows: the one every test client signs with.
fn key_flag() -> String {
    format!("{ACCESS_KEY}:{SECRET_KEY}")
}

fn client_with(endpoint: &str, id: &str, secret: &str, token: Option<&str>) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            id,
            secret,
            token.map(str::to_string),
            None,
            "auth-tests",
        ))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

const WRONG_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const UNRECOGNIZED: &str = "The security token included in the request is invalid.";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The right key works for every kind of request; wrong ones are refused
/// with DynamoDB's errors, and nothing they asked for is done.
#[tokio::test]
async fn only_requests_signed_with_a_known_key_are_served() {
    let flag = key_flag();
    let server = TestServer::start_with_args(&["--access-key", &flag]);
    let client = server.client();
    create_table(&client, "auth-table", ScalarAttributeType::S, None).await;
    ok(client
        .put_item()
        .table_name("auth-table")
        .item("pk", s("a"))
        .send()
        .await);
    let found = ok(client
        .get_item()
        .table_name("auth-table")
        .key("pk", s("a"))
        .send()
        .await);
    assert!(found.item.is_some());

    // A wrong secret for the known key.
    let wrong_secret = client_with(server.endpoint(), ACCESS_KEY, "not-the-secret", None);
    assert_error(
        wrong_secret
            .put_item()
            .table_name("auth-table")
            .item("pk", s("forged"))
            .send()
            .await,
        "InvalidSignatureException",
        WRONG_SIGNATURE,
    );
    // An unknown key.
    let stranger = client_with(server.endpoint(), "AKIDUNKNOWN", SECRET_KEY, None);
    assert_error(
        stranger.list_tables().send().await,
        "UnrecognizedClientException",
        UNRECOGNIZED,
    );
    // A session token Atoll never issued (DynamoDB's text has no period).
    let temporary = client_with(server.endpoint(), ACCESS_KEY, SECRET_KEY, Some("FwoGZXIv"));
    assert_error(
        temporary.list_tables().send().await,
        "UnrecognizedClientException",
        "The security token included in the request is invalid",
    );
    let forged = ok(client
        .get_item()
        .table_name("auth-table")
        .key("pk", s("forged"))
        .consistent_read(true)
        .send()
        .await);
    assert!(forged.item.is_none(), "a refused write wrote");
}

/// Raw HTTP: an unsigned request, a body changed after signing, a header
/// changed after signing, and clocks 20 minutes off either way.
#[tokio::test]
async fn tampering_and_skew_are_refused() {
    let flag = key_flag();
    let server = TestServer::start_with_args(&["--access-key", &flag]);
    let list = || RawRequest::op("ListTables", &serde_json::json!({}));
    let answer = raw(server.addr(), &list());
    assert_eq!(answer.status, 200, "{}", answer.text());

    let unsigned = raw(server.addr(), &list().unsigned());
    assert_eq!(unsigned.status, 400);
    assert_eq!(
        unsigned.json()["__type"],
        "com.amazon.coral.service#MissingAuthenticationTokenException"
    );
    assert_eq!(
        unsigned.json()["message"],
        "Request is missing Authentication Token"
    );

    // The body signed is `{"Limit": 5}`; the one sent says 6.
    let signed = RawRequest::op("ListTables", &serde_json::json!({"Limit": 5}));
    let mut bytes = signed.to_bytes(server.addr());
    let at = bytes.len() - 2;
    assert_eq!(bytes[at], b'5');
    bytes[at] = b'6';
    let tampered = RawConnection::open(server.addr()).send_bytes(&bytes);
    assert_eq!(tampered.status, 400, "{}", tampered.text());
    assert_eq!(
        tampered.json()["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );
    assert_eq!(tampered.json()["message"], WRONG_SIGNATURE);

    // A signed header (the target) changed after signing.
    let bytes = list().to_bytes(server.addr());
    let text = String::from_utf8(bytes).unwrap();
    let changed = text.replace(
        "DynamoDB_20120810.ListTables",
        "DynamoDB_20120810.ListTablez",
    );
    assert_ne!(changed, text);
    let answer = RawConnection::open(server.addr()).send_bytes(changed.as_bytes());
    assert_eq!(answer.status, 400, "{}", answer.text());

    let late = raw(server.addr(), &list().signed_at(now() - 20 * 60));
    assert_eq!(late.status, 400);
    assert_eq!(
        late.json()["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );
    let message = late.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.starts_with("Signature expired: "), "{message}");
    assert!(message.ends_with(" - 15 min.)"), "{message}");
    let early = raw(server.addr(), &list().signed_at(now() + 20 * 60));
    let message = early.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.starts_with("Signature not yet current: "),
        "{message}"
    );
    // Within the 15 minutes is fine.
    let skewed = raw(server.addr(), &list().signed_at(now() - 10 * 60));
    assert_eq!(skewed.status, 200, "{}", skewed.text());
}

/// `--auth required` with no key refuses every request; the open default
/// accepts any credentials.
#[tokio::test]
async fn required_without_keys_refuses_and_open_accepts_anything() {
    let server = TestServer::start_with_args(&["--auth", "required"]);
    let client = server.client();
    assert_error(
        client.list_tables().send().await,
        "UnrecognizedClientException",
        UNRECOGNIZED,
    );
    let open = TestServer::start();
    let anyone = client_with(open.endpoint(), "whoever", "whatever", None);
    let tables = tokio::time::timeout(Duration::from_secs(30), anyone.list_tables().send())
        .await
        .unwrap();
    assert!(tables.is_ok(), "{tables:?}");
}
