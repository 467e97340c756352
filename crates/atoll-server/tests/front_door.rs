//! The front door as DynamoDB keeps it, in hand-written HTTP/1.1 (no SDK
//! sends these requests): compressed request bodies and responses, CORS,
//! the request line and header limits, the `Server` header, and the empty
//! bodies of TagResource and UntagResource.
//!
//! Expectations come from Alternator's test_compressed_request.py,
//! test_compressed_response.py, test_cors.py and test_manual_requests.py,
//! which run against DynamoDB.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn addr() -> &'static str {
    shared_server().addr()
}

const INTERNAL: &str = "com.amazonaws.dynamodb.v20120810#InternalServerError";

/// Creates an on-demand table keyed by `pk` (S) and waits for it.
fn table(name: &str) {
    let create = json!({
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    });
    let resp = raw(addr(), &RawRequest::op("CreateTable", &create));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = raw(
            addr(),
            &RawRequest::op("DescribeTable", &json!({"TableName": name})),
        );
        if resp.json()["Table"]["TableStatus"] == "ACTIVE" {
            return;
        }
        assert!(Instant::now() < deadline, "{name} not ACTIVE");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn get_item(table: &str, pk: &str) -> Value {
    let resp = raw(
        addr(),
        &RawRequest::op(
            "GetItem",
            &json!({"TableName": table, "Key": {"pk": {"S": pk}}, "ConsistentRead": true}),
        ),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()
}

fn put_body(table: &str, pk: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"TableName": table, "Item": {"pk": {"S": pk}, "v": {"S": "x"}}}))
        .unwrap()
}

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

fn put_encoded(encoding: &str, body: Vec<u8>) -> RawResponse {
    let req = RawRequest::dynamodb(Some("DynamoDB_20120810.PutItem"), body)
        .header("Content-Encoding", encoding);
    raw(addr(), &req)
}

#[track_caller]
fn assert_crc(resp: &RawResponse) {
    assert_eq!(
        resp.header("x-amz-crc32"),
        Some(crc32fast::hash(&resp.body).to_string().as_str()),
        "x-amz-crc32 is over the bytes sent"
    );
}

#[test]
fn compressed_requests_are_decoded_in_the_order_given() {
    let t = "door-compressed";
    table(t);
    let cases: [(&str, &str, Vec<u8>); 6] = [
        ("gzip", "gzip", gzip(&put_body(t, "gzip"))),
        ("deflate", "deflate", zlib(&put_body(t, "deflate"))),
        ("upper", "GZIP", gzip(&put_body(t, "upper"))),
        // Applied gzip first, then deflate.
        ("both", "gzip, deflate", zlib(&gzip(&put_body(t, "both")))),
        ("identity", "identity", put_body(t, "identity")),
        // Two gzip members, one after the other.
        ("members", "gzip", {
            let body = put_body(t, "members");
            let mut two = gzip(&body[..10]);
            two.extend(gzip(&body[10..]));
            two
        }),
    ];
    for (pk, encoding, body) in cases {
        let resp = put_encoded(encoding, body);
        assert_eq!(resp.status, 200, "{encoding}: {}", resp.text());
        assert_eq!(resp.json(), json!({}));
        assert_eq!(
            get_item(t, pk)["Item"]["v"],
            json!({"S": "x"}),
            "{encoding}"
        );
    }
    // DynamoDB ignores bytes after the last gzip member (as Java's
    // GZIPInputStream does); Alternator records it as DynamoDB's bug.
    let mut junk = gzip(&put_body(t, "junk"));
    junk.extend_from_slice(b"junk");
    let resp = put_encoded("gzip", junk);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(get_item(t, "junk")["Item"]["v"], json!({"S": "x"}));
}

#[test]
fn bodies_that_are_not_their_coding_are_internal_errors_and_write_nothing() {
    let t = "door-corrupt";
    table(t);
    let whole = gzip(&put_body(t, "truncated"));
    let cases: [(&str, &str, Vec<u8>); 6] = [
        ("garbage", "gzip", put_body(t, "garbage")),
        ("truncated", "gzip", whole[..whole.len() - 1].to_vec()),
        ("empty", "gzip", Vec::new()),
        ("deflate-garbage", "deflate", put_body(t, "deflate-garbage")),
        ("unknown", "br", put_body(t, "unknown")),
        (
            "unknown-second",
            "gzip, zstd",
            gzip(&put_body(t, "unknown-second")),
        ),
    ];
    for (pk, encoding, body) in cases {
        let resp = put_encoded(encoding, body);
        assert_crc(&resp);
        assert_eq!(resp.status, 500, "{pk}: {}", resp.text());
        assert_eq!(resp.error_type(), INTERNAL, "{pk}");
        assert_eq!(get_item(t, pk), json!({}), "{pk} was written");
    }
}

#[test]
fn the_size_limit_applies_after_decompression() {
    let t = "door-oversized";
    table(t);
    let mut body = put_body(t, "big");
    // 17 MiB of spaces inside the JSON: tiny once compressed.
    let spaces = vec![b' '; 17 * 1024 * 1024];
    body.splice(1..1, spaces);
    let packed = gzip(&body);
    assert!(packed.len() < 1024 * 1024);
    let resp = put_encoded("gzip", packed);
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    assert_eq!(get_item(t, "big"), json!({}));
    // A body just under the limit once inflated is served.
    let mut body = put_body(t, "fits");
    let room = 16 * 1024 * 1024 - body.len();
    body.splice(1..1, vec![b' '; room]);
    let resp = put_encoded("gzip", gzip(&body));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(get_item(t, "fits")["Item"]["v"], json!({"S": "x"}));
}

fn inflate(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(body).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body).read_to_end(&mut out),
        other => panic!("unexpected Content-Encoding {other}"),
    }
    .expect("a well-formed compressed body");
    out
}

#[test]
fn large_responses_are_compressed_when_the_client_accepts_it() {
    let t = "door-responses";
    table(t);
    let filler = "f".repeat(2000);
    for i in 0..4 {
        let item =
            json!({"TableName": t, "Item": {"pk": {"S": format!("k{i}")}, "f": {"S": filler}}});
        assert_eq!(raw(addr(), &RawRequest::op("PutItem", &item)).status, 200);
    }
    let scan = RawRequest::op("Scan", &json!({"TableName": t, "ConsistentRead": true}));
    let plain = raw(addr(), &scan);
    assert_eq!(plain.header("Content-Encoding"), None);
    let expected = plain.json();
    assert_eq!(expected["Count"], 4);
    for (accept, coding) in [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("gzip, deflate", "gzip"),
        ("br, deflate;q=0.9, gzip;q=0.5", "deflate"),
    ] {
        let resp = raw(addr(), &scan.clone().header("Accept-Encoding", accept));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("Content-Encoding"), Some(coding), "{accept}");
        assert_crc(&resp);
        assert!(resp.body.len() < expected.to_string().len() / 2);
        let body: Value = serde_json::from_slice(&inflate(coding, &resp.body)).unwrap();
        assert_eq!(body, expected, "{accept}");
    }
    // Nothing the client refuses or does not know, and nothing small.
    for accept in ["identity", "br", "gzip;q=0", "*;q=0"] {
        let resp = raw(addr(), &scan.clone().header("Accept-Encoding", accept));
        assert_eq!(resp.header("Content-Encoding"), None, "{accept}");
        assert_eq!(resp.json(), expected);
    }
    let small = raw(
        addr(),
        &RawRequest::op("DescribeLimits", &json!({})).header("Accept-Encoding", "gzip"),
    );
    assert_eq!(small.header("Content-Encoding"), None);
    assert_eq!(small.json()["TableMaxReadCapacityUnits"], 40000);
}

#[test]
fn cors_preflight_and_exposed_headers() {
    let mut preflight = RawRequest::get("/")
        .header("Origin", "https://console.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, x-amz-target",
        );
    preflight.method = "OPTIONS".into();
    let resp = raw(addr(), &preflight);
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("Content-Length"), Some("0"));
    assert_eq!(resp.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(resp.header("Access-Control-Allow-Methods"), Some("POST"));
    assert_eq!(
        resp.header("Access-Control-Allow-Headers"),
        Some("authorization, content-type, x-amz-target")
    );
    assert_eq!(resp.header("Access-Control-Max-Age"), Some("172800"));
    // Only what was asked for is answered.
    let mut bare = RawRequest::get("/").header("Origin", "null");
    bare.method = "OPTIONS".into();
    let resp = raw(addr(), &bare);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Access-Control-Allow-Methods"), None);
    assert_eq!(resp.header("Access-Control-Allow-Headers"), None);
    // OPTIONS without Origin is no preflight: an unknown path to DynamoDB.
    let mut no_origin = RawRequest::get("/");
    no_origin.method = "OPTIONS".into();
    let resp = raw(addr(), &no_origin);
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("Access-Control-Allow-Origin"), None);

    // A request from a page: the answer allows any origin and exposes
    // what an SDK reads, on success and error alike.
    for req in [
        RawRequest::op("ListTables", &json!({})),
        RawRequest::op("DescribeTable", &json!({"TableName": "door-none"})),
    ] {
        let resp = raw(addr(), &req.header("Origin", "https://console.example"));
        assert_eq!(resp.header("Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(
            resp.header("Access-Control-Expose-Headers"),
            Some("x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,Date")
        );
        assert_eq!(resp.header("Access-Control-Max-Age"), None);
    }
    let resp = raw(addr(), &RawRequest::op("ListTables", &json!({})));
    assert_eq!(resp.header("Access-Control-Allow-Origin"), None);
    assert_eq!(resp.header("Access-Control-Expose-Headers"), None);
}

#[test]
fn overlong_request_lines_and_header_blocks_are_bad_requests() {
    let mut conn = RawConnection::open(addr());
    // Two 8 KiB headers: past DynamoDB's 16 KiB of headers.
    let big = "a".repeat(8192);
    let req = RawRequest::op("ListTables", &json!({}))
        .header("X-Filler-One", &big)
        .header("X-Filler-Two", &big);
    let resp = raw(addr(), &req);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    // One 8 KiB header is fine.
    let req = RawRequest::op("ListTables", &json!({})).header("X-Filler-One", &big);
    assert_eq!(conn.send(&req).status, 200);
    // A request line of 17,000 characters.
    let mut long = RawRequest::op("ListTables", &json!({}));
    long.path = format!("/{}", "p".repeat(17_000));
    let resp = raw(addr(), &long);
    assert_eq!(resp.status, 400, "{}", resp.text());
    // The server goes on serving.
    let resp = conn.send(&RawRequest::op("ListTables", &json!({})));
    assert_eq!(resp.status, 200);
}

#[test]
fn every_answer_names_its_server_as_dynamodb_does() {
    for req in [
        RawRequest::op("ListTables", &json!({})),
        RawRequest::op("DescribeTable", &json!({"TableName": "door-none"})),
        RawRequest::get("/"),
        RawRequest::get("/nowhere"),
    ] {
        let resp = raw(addr(), &req);
        assert_eq!(resp.header("Server"), Some("Server"), "{}", resp.text());
    }
}

#[test]
fn tag_and_untag_answer_with_an_empty_body() {
    let t = "door-tags";
    table(t);
    let arn = raw(
        addr(),
        &RawRequest::op("DescribeTable", &json!({"TableName": t})),
    )
    .json()["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_string();
    let tag = json!({"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]});
    let untag = json!({"ResourceArn": arn, "TagKeys": ["k"]});
    for (op, body) in [("TagResource", tag), ("UntagResource", untag)] {
        let resp = raw(addr(), &RawRequest::op(op, &body));
        assert_eq!(resp.status, 200, "{op}: {}", resp.text());
        assert!(resp.body.is_empty(), "{op}: {}", resp.text());
        assert_eq!(resp.header("Content-Length"), Some("0"), "{op}");
        assert_eq!(resp.header("x-amz-crc32"), Some("0"), "{op}");
    }
    let listed = raw(
        addr(),
        &RawRequest::op("ListTagsOfResource", &json!({"ResourceArn": arn})),
    );
    assert_eq!(listed.json(), json!({"Tags": []}));
}

/// The value of the sample `name{labels}` (labels as rendered, in order).
fn sample(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

fn scrape() -> String {
    let resp = raw(addr(), &RawRequest::get("/metrics"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        resp.header("Content-Type")
    );
    resp.text()
}

#[test]
fn metrics_count_requests_errors_latency_and_partition_traffic() {
    let t = "door-metrics";
    table(t);
    let before = scrape();
    for i in 0..3 {
        let put = json!({"TableName": t, "Item": {"pk": {"S": format!("m{i}")}}});
        assert_eq!(raw(addr(), &RawRequest::op("PutItem", &put)).status, 200);
    }
    let missing = json!({"TableName": "door-no-table", "Key": {"pk": {"S": "x"}}});
    assert_eq!(
        raw(addr(), &RawRequest::op("GetItem", &missing)).status,
        400
    );
    let failing = json!({
        "TableName": t,
        "Item": {"pk": {"S": "m0"}},
        "ConditionExpression": "attribute_not_exists(pk)",
    });
    assert_eq!(
        raw(addr(), &RawRequest::op("PutItem", &failing)).status,
        400
    );
    let after = scrape();

    let grew = |name: &str, by: f64| {
        let (was, now) = (sample(&before, name), sample(&after, name));
        assert!(now - was >= by, "{name}: {was} -> {now}\n{after}");
    };
    grew(
        r#"atoll_successful_request_latency_seconds_count{operation="PutItem"}"#,
        3.0,
    );
    grew(
        r#"atoll_user_errors_total{operation="GetItem",error="ResourceNotFoundException"}"#,
        1.0,
    );
    grew(
        r#"atoll_conditional_check_failed_requests_total{operation="PutItem"}"#,
        1.0,
    );
    grew("atoll_log_fsync_seconds_count", 3.0);
    assert!(
        after.contains(
            r#"atoll_successful_request_latency_seconds_bucket{operation="PutItem",le="0.01"}"#
        ),
        "latency is a histogram with buckets:\n{after}"
    );
    // Scrape-time gauges: the table's partition, the catalog group.
    let writes = after
        .lines()
        .find(|line| line.starts_with(&format!("atoll_partition_writes_total{{table=\"{t}\"")))
        .unwrap_or_else(|| panic!("no partition writes of {t}:\n{after}"));
    let written: f64 = writes.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(written >= 4.0, "{writes}");
    assert_eq!(
        sample(&after, r#"atoll_raft_is_leader{group="0"}"#),
        1.0,
        "{after}"
    );
    assert!(sample(&after, "atoll_storage_disk_bytes") > 0.0, "{after}");
}
