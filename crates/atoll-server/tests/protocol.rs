//! The HTTP envelope, driven with hand-written HTTP/1.1: malformed bodies,
//! targets, authentication, checksums, compression, health check,
//! keep-alive.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;

use common::*;
use serde_json::json;

fn addr() -> &'static str {
    shared_server().addr()
}

const SERIALIZATION: &str = "com.amazon.coral.service#SerializationException";
const UNKNOWN_OP: &str = "com.amazon.coral.service#UnknownOperationException";

/// Every response carries a request id and a CRC32 of its body.
#[track_caller]
fn assert_envelope(resp: &RawResponse) {
    let id = resp
        .header("x-amzn-RequestId")
        .unwrap_or_else(|| panic!("no x-amzn-RequestId in {:?}", resp.headers));
    assert!(!id.is_empty(), "empty x-amzn-RequestId");
    let crc = resp
        .header("x-amz-crc32")
        .unwrap_or_else(|| panic!("no x-amz-crc32 in {:?}", resp.headers));
    assert_eq!(
        crc,
        crc32fast::hash(&resp.body).to_string(),
        "x-amz-crc32 does not match the body {:?}",
        resp.text()
    );
}

#[track_caller]
fn assert_json_error(resp: &RawResponse, status: u16, expected: serde_json::Value) {
    assert_envelope(resp);
    assert_eq!(resp.status, status, "status of {:?}", resp.text());
    assert_eq!(resp.json(), expected);
}

#[test]
fn malformed_json_is_a_serialization_exception_without_message() {
    for body in [&b"{"[..], b"not json", b"{\"TableName\": }", b"\xff\xfe"] {
        let resp = raw(
            addr(),
            &RawRequest::dynamodb(Some("DynamoDB_20120810.ListTables"), body),
        );
        assert_json_error(&resp, 400, json!({"__type": SERIALIZATION}));
    }
    // Malformed JSON wins over an unknown target and missing credentials.
    let resp = raw(
        addr(),
        &RawRequest::dynamodb(Some("DynamoDB_20120810.NoSuchOp"), "{").unsigned(),
    );
    assert_json_error(&resp, 400, json!({"__type": SERIALIZATION}));
}

#[test]
fn unknown_or_missing_target_is_unknown_operation() {
    for target in [
        Some("DynamoDB_20120810.ListTable"),
        Some("DynamoDB_20120810.listTables"),
        Some("DynamoDB_20120810."),
        Some("Foo_20120810.ListTables"),
        Some("ListTables"),
        None,
    ] {
        let resp = raw(addr(), &RawRequest::dynamodb(target, "{}"));
        assert_json_error(&resp, 400, json!({"__type": UNKNOWN_OP}));
    }
}

#[test]
fn missing_or_non_sigv4_authorization_is_refused() {
    let expected = json!({
        "__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
        "message": "Request is missing Authentication Token",
    });
    let resp = raw(addr(), &RawRequest::op("ListTables", &json!({})).unsigned());
    assert_json_error(&resp, 400, expected.clone());
    for header in ["Basic dXNlcjpwYXNz", "AWS4", "X"] {
        let req = RawRequest::op("ListTables", &json!({}))
            .unsigned()
            .header("Authorization", header);
        assert_json_error(&raw(addr(), &req), 400, expected.clone());
    }
}

#[test]
fn wrong_json_types_are_serialization_exceptions_with_message() {
    let cases = [
        (
            "DescribeTable",
            json!({"TableName": 5}),
            "NUMBER_VALUE cannot be converted to String",
        ),
        (
            "DescribeTable",
            json!({"TableName": 1.5}),
            "DECIMAL_VALUE cannot be converted to String",
        ),
        (
            "DescribeTable",
            json!({"TableName": true}),
            "TRUE_VALUE cannot be converted to String",
        ),
        (
            "DescribeTable",
            json!({"TableName": false}),
            "FALSE_VALUE cannot be converted to String",
        ),
        (
            "DescribeTable",
            json!({"TableName": {}}),
            "Start of structure or map found where not expected",
        ),
        (
            "ListTables",
            json!({"Limit": "5"}),
            "STRING_VALUE cannot be converted to Integer",
        ),
        (
            "GetItem",
            json!({"TableName": "t", "Key": []}),
            "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>",
        ),
        (
            "PutItem",
            json!({"TableName": "t", "Item": 5}),
            "Unexpected field type",
        ),
    ];
    for (op, body, message) in cases {
        let resp = raw(addr(), &RawRequest::op(op, &body));
        assert_json_error(
            &resp,
            400,
            json!({"__type": SERIALIZATION, "Message": message}),
        );
    }
}

#[test]
fn empty_table_name_is_a_validation_error() {
    // SDKs refuse an empty TableName before sending; other clients do not.
    let resp = raw(
        addr(),
        &RawRequest::op(
            "PutItem",
            &json!({"TableName": "", "Item": {"pk": {"S": "k"}}}),
        ),
    );
    assert_json_error(
        &resp,
        400,
        json!({
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": "1 validation error detected: Value '' at 'tableName' failed to satisfy constraint: \
                        Member must have length greater than or equal to 1",
        }),
    );
    let resp = raw(
        addr(),
        &RawRequest::op("DescribeTable", &json!({"TableName": ""})),
    );
    assert_json_error(
        &resp,
        400,
        json!({
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": "2 validation errors detected: \
                        Value '' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3; \
                        Value '' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        }),
    );
}

#[test]
fn malformed_attribute_values() {
    let put = |value: serde_json::Value| {
        raw(
            addr(),
            &RawRequest::op(
                "PutItem",
                &json!({"TableName": "proto-values", "Item": {"pk": {"S": "a"}, "v": value}}),
            ),
        )
    };
    let validation = |message: &str| json!({"__type": "com.amazon.coral.validate#ValidationException", "message": message});
    let cases = [
        (
            json!({}),
            validation(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ),
        ),
        (
            json!({"S": "a", "N": "1"}),
            validation(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
            ),
        ),
        // The content of each type is checked before the type count. PutItem
        // runs DynamoDB's current value layer, inside the validation envelope.
        (
            json!({"S": "a", "N": "b"}),
            validation(
                "1 validation error detected: The parameter cannot be converted to a numeric value: b",
            ),
        ),
        (
            json!({"M": {"inner": {}}}),
            validation(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ),
        ),
        (
            json!({"B": "23456"}),
            json!({"__type": SERIALIZATION, "Message": "Base64 encoded length is expected a multiple of 4 bytes but found: 5"}),
        ),
        (
            json!({"B": 5}),
            json!({"__type": SERIALIZATION, "Message": "only base-64-encoded strings are convertible to bytes"}),
        ),
    ];
    // The table does not exist: value checks come first.
    for (value, expected) in cases {
        let resp = put(value.clone());
        assert_envelope(&resp);
        assert_eq!(resp.status, 400, "{value}: {}", resp.text());
        assert_eq!(resp.json(), expected, "{value}");
    }
}

#[test]
fn empty_body_with_valid_target_is_a_serialization_exception() {
    let resp = raw(
        addr(),
        &RawRequest::dynamodb(Some("DynamoDB_20120810.ListTables"), ""),
    );
    assert_json_error(&resp, 400, json!({"__type": SERIALIZATION}));
}

#[test]
fn successful_responses_have_exact_bodies_and_checksums() {
    let resp = raw(addr(), &RawRequest::op("DescribeLimits", &json!({})));
    assert_envelope(&resp);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("Content-Type"),
        Some("application/x-amz-json-1.0")
    );
    assert_eq!(
        resp.json(),
        json!({
            "AccountMaxReadCapacityUnits": 80000,
            "AccountMaxWriteCapacityUnits": 80000,
            "TableMaxReadCapacityUnits": 40000,
            "TableMaxWriteCapacityUnits": 40000,
        })
    );

    // Unknown members are ignored.
    let resp = raw(addr(), &RawRequest::op("ListTables", &json!({"hi": "yo"})));
    assert_envelope(&resp);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.json()["TableNames"].is_array());

    // Item operations on a fresh table: the bodies DynamoDB sends.
    let create = json!({
        "TableName": "proto-bodies",
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    });
    let resp = raw(addr(), &RawRequest::op("CreateTable", &create));
    assert_envelope(&resp);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let desc = &resp.json()["TableDescription"];
    assert_eq!(desc["TableName"], "proto-bodies");
    assert!(
        desc["CreationDateTime"].is_number(),
        "CreationDateTime must be epoch seconds: {desc}"
    );
    wait_active_raw("proto-bodies");

    let cases = [
        (
            "PutItem",
            json!({"TableName": "proto-bodies", "Item": {"pk": {"S": "a"}, "n": {"N": "1.50"}}}),
            json!({}),
        ),
        (
            "GetItem",
            json!({"TableName": "proto-bodies", "Key": {"pk": {"S": "missing"}}}),
            json!({}),
        ),
        (
            "GetItem",
            json!({"TableName": "proto-bodies", "Key": {"pk": {"S": "a"}}, "ConsistentRead": true}),
            json!({"Item": {"pk": {"S": "a"}, "n": {"N": "1.5"}}}),
        ),
        (
            "BatchWriteItem",
            json!({"RequestItems": {"proto-bodies": [{"PutRequest": {"Item": {"pk": {"S": "b"}}}}]}}),
            json!({"UnprocessedItems": {}}),
        ),
        (
            "BatchGetItem",
            json!({"RequestItems": {"proto-bodies": {"Keys": [{"pk": {"S": "b"}}, {"pk": {"S": "zz"}}]}}}),
            json!({"Responses": {"proto-bodies": [{"pk": {"S": "b"}}]}, "UnprocessedKeys": {}}),
        ),
        (
            "DeleteItem",
            json!({"TableName": "proto-bodies", "Key": {"pk": {"S": "a"}}}),
            json!({}),
        ),
        (
            "DeleteItem",
            json!({"TableName": "proto-bodies", "Key": {"pk": {"S": "b"}}, "ReturnValues": "ALL_OLD"}),
            json!({"Attributes": {"pk": {"S": "b"}}}),
        ),
        (
            "DeleteItem",
            json!({"TableName": "proto-bodies", "Key": {"pk": {"S": "b"}}, "ReturnValues": "ALL_OLD"}),
            json!({}),
        ),
    ];
    for (op, body, expected) in cases {
        let resp = raw(addr(), &RawRequest::op(op, &body));
        assert_envelope(&resp);
        assert_eq!(resp.status, 200, "{op} {body}: {}", resp.text());
        assert_eq!(resp.json(), expected, "{op} {body}");
    }

    // Errors from the API layer carry `message` and the full __type.
    let resp = raw(
        addr(),
        &RawRequest::op("DescribeTable", &json!({"TableName": "proto-missing"})),
    );
    assert_json_error(
        &resp,
        400,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            "message": "Requested resource not found: Table: proto-missing not found",
        }),
    );
    let resp = raw(addr(), &RawRequest::op("DescribeTable", &json!({})));
    assert_json_error(
        &resp,
        400,
        json!({
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": "The parameter 'TableName' is required but was not present in the request",
        }),
    );
    let resp = raw(addr(), &RawRequest::op("CreateTable", &create));
    assert_json_error(
        &resp,
        400,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            "message": "Table already exists: proto-bodies",
        }),
    );
}

fn wait_active_raw(table: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let resp = raw(
            addr(),
            &RawRequest::op("DescribeTable", &json!({"TableName": table})),
        );
        if resp.status == 200 && resp.json()["Table"]["TableStatus"] == "ACTIVE" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{table} not ACTIVE: {}",
            resp.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn request_ids_are_unique() {
    let mut ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let resp = raw(addr(), &RawRequest::op("ListTables", &json!({})));
        assert_envelope(&resp);
        assert!(
            ids.insert(resp.header("x-amzn-RequestId").unwrap().to_string()),
            "request id repeated"
        );
    }
}

#[test]
fn application_json_content_type_is_echoed() {
    let mut req = RawRequest::op("ListTables", &json!({}));
    req.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
    req.headers
        .push(("Content-Type".into(), "application/json".into()));
    let resp = raw(addr(), &req);
    assert_envelope(&resp);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
}

#[test]
fn gzip_compressed_request_body_is_accepted() {
    let body = serde_json::to_vec(&json!({"Limit": 3})).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&body).unwrap();
    let gz = enc.finish().unwrap();
    let req = RawRequest::dynamodb(Some("DynamoDB_20120810.ListTables"), gz)
        .header("Content-Encoding", "gzip");
    let resp = raw(addr(), &req);
    assert_envelope(&resp);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let names = resp.json()["TableNames"]
        .as_array()
        .cloned()
        .expect("TableNames");
    assert!(
        names.len() <= 3,
        "Limit from the compressed body was ignored: {names:?}"
    );

    // A gzip body that is not valid JSON once inflated.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"{oops").unwrap();
    let req = RawRequest::dynamodb(Some("DynamoDB_20120810.ListTables"), enc.finish().unwrap())
        .header("Content-Encoding", "gzip");
    assert_json_error(&raw(addr(), &req), 400, json!({"__type": SERIALIZATION}));
}

#[test]
fn health_check() {
    let resp = raw(addr(), &RawRequest::get("/"));
    assert_envelope(&resp);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "healthy: dynamodb.us-east-1.amazonaws.com ");
}

#[test]
fn region_flag_names_health_check_and_arns() {
    let server = TestServer::start_with_args(&["--region", "eu-west-2"]);
    let resp = raw(server.addr(), &RawRequest::get("/"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "healthy: dynamodb.eu-west-2.amazonaws.com ");
    let create = json!({
        "TableName": "proto-region",
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    });
    // A client of that endpoint signs for its region.
    let req = RawRequest::op("CreateTable", &create).region("eu-west-2");
    let resp = raw(server.addr(), &req);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json()["TableDescription"]["TableArn"],
        "arn:aws:dynamodb:eu-west-2:123456789012:table/proto-region"
    );
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let mut conn = RawConnection::open(addr());
    for round in 0..3 {
        let resp = conn.send(&RawRequest::op("ListTables", &json!({})));
        assert_envelope(&resp);
        assert_eq!(resp.status, 200, "round {round}");
        let resp = conn.send(&RawRequest::dynamodb(
            Some("DynamoDB_20120810.ListTables"),
            "{bad",
        ));
        assert_json_error(&resp, 400, json!({"__type": SERIALIZATION}));
        let resp = conn.send(&RawRequest::dynamodb(Some("DynamoDB_20120810.Nope"), "{}"));
        assert_json_error(&resp, 400, json!({"__type": UNKNOWN_OP}));
        let resp = conn.send(&RawRequest::get("/"));
        assert_eq!(resp.status, 200);
        let resp = conn.send(&RawRequest::op("DescribeLimits", &json!({})));
        assert_eq!(resp.status, 200);
    }
    // Pipelined: two requests written back to back, two answers in order.
    let host = addr().to_string();
    let first = raw_bytes(
        &RawRequest::op("DescribeTable", &json!({"TableName": "proto-pipe-1"})),
        &host,
    );
    let second = raw_bytes(
        &RawRequest::op("DescribeTable", &json!({"TableName": "proto-pipe-2"})),
        &host,
    );
    let one = conn.send_bytes(&[first, second].concat());
    assert!(one.text().contains("proto-pipe-1"), "{}", one.text());
    let two = conn.read_next();
    assert!(two.text().contains("proto-pipe-2"), "{}", two.text());
}

fn raw_bytes(req: &RawRequest, host: &str) -> Vec<u8> {
    req.to_bytes(host)
}

#[test]
fn stdout_holds_only_the_listening_line() {
    let server = shared_server();
    // Make sure the server has done some work first.
    let _ = raw(addr(), &RawRequest::op("ListTables", &json!({})));
    assert_eq!(
        server.stdout_lines(),
        [format!("atoll: listening on {}", server.endpoint())],
        "logs belong on stderr"
    );
}

#[test]
fn amz_date_formats_known_instants() {
    assert_eq!(amz_date(0), "19700101T000000Z");
    assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    assert_eq!(amz_date(1_767_225_599), "20251231T235959Z");
}
