//! Control-plane operations against the real binary: CreateTable,
//! DescribeTable, ListTables, UpdateTable, DeleteTable, tags, DescribeLimits,
//! DescribeEndpoints. One server for the whole file; every test uses its own
//! table names.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType, ProvisionedThroughput,
    ScalarAttributeType as Sat, TableDescription, TableStatus, Tag,
};
use common::*;

fn client() -> Client {
    shared_server().client()
}

fn throughput(read: i64, write: i64) -> ProvisionedThroughput {
    ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build()
        .unwrap()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

async fn describe(client: &Client, name: &str) -> TableDescription {
    ok(client.describe_table().table_name(name).send().await)
        .table
        .expect("DescribeTable returns Table")
}

async fn assert_table_absent(client: &Client, name: &str) {
    assert_error(
        client.describe_table().table_name(name).send().await,
        "ResourceNotFoundException",
        &format!("Requested resource not found: Table: {name} not found"),
    );
}

/// Polls until DescribeTable says the table is gone (DeleteTable may be
/// asynchronous, as in DynamoDB).
async fn wait_gone(client: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.describe_table().table_name(name).send().await {
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return;
            }
            Err(e) => panic!(
                "DescribeTable failed: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ),
            Ok(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "table {name} still exists 10 s after DeleteTable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_uuid_v4(id: &str) {
    let bytes = id.as_bytes();
    let ok_shape = id.len() == 36
        && bytes.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
        && bytes[14] == b'4'
        && matches!(bytes[19], b'8' | b'9' | b'a' | b'b');
    assert!(ok_shape, "TableId is not a lowercase UUID v4: {id:?}");
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Checks the parts of a description that do not depend on the billing mode.
fn assert_common_description(desc: &TableDescription, name: &str) {
    assert_eq!(desc.table_name(), Some(name));
    assert_eq!(
        desc.table_arn(),
        Some(format!("arn:aws:dynamodb:us-east-1:123456789012:table/{name}").as_str())
    );
    assert_uuid_v4(desc.table_id().expect("TableId"));
    let created = desc
        .creation_date_time()
        .expect("CreationDateTime")
        .as_secs_f64();
    assert!(
        (created - now_secs()).abs() < 300.0,
        "CreationDateTime {created} is not close to now ({})",
        now_secs()
    );
    assert_eq!(desc.deletion_protection_enabled(), Some(false));
    assert!(desc.global_secondary_indexes().is_empty());
    assert!(desc.local_secondary_indexes().is_empty());
}

#[tokio::test]
async fn create_provisioned_hash_only_table_and_describe_it() {
    let client = client();
    let name = "tables-prov-hash";
    let created = ok(client
        .create_table()
        .table_name(name)
        .key_schema(key_element("id", KeyType::Hash))
        .attribute_definitions(attr_def("id", Sat::S))
        .provisioned_throughput(throughput(5, 7))
        .send()
        .await)
    .table_description
    .expect("CreateTable returns TableDescription");
    assert_common_description(&created, name);
    assert!(
        matches!(
            created.table_status(),
            Some(TableStatus::Creating | TableStatus::Active)
        ),
        "status after create: {:?}",
        created.table_status()
    );
    assert_eq!(created.item_count(), Some(0));
    assert_eq!(created.table_size_bytes(), Some(0));

    wait_active(&client, name).await;
    let desc = describe(&client, name).await;
    assert_common_description(&desc, name);
    assert_eq!(desc.table_status(), Some(&TableStatus::Active));
    assert_eq!(desc.key_schema(), [key_element("id", KeyType::Hash)]);
    assert_eq!(desc.attribute_definitions(), [attr_def("id", Sat::S)]);
    assert_eq!(
        desc.table_id(),
        created.table_id(),
        "TableId must be stable"
    );
    let pt = desc
        .provisioned_throughput()
        .expect("ProvisionedThroughput");
    assert_eq!(pt.read_capacity_units(), Some(5));
    assert_eq!(pt.write_capacity_units(), Some(7));
    assert_eq!(pt.number_of_decreases_today(), Some(0));
    assert!(
        desc.billing_mode_summary().is_none(),
        "a table created PROVISIONED has no BillingModeSummary: {:?}",
        desc.billing_mode_summary()
    );
    assert_eq!(desc.item_count(), Some(0));
    assert_eq!(desc.table_size_bytes(), Some(0));
}

#[tokio::test]
async fn create_on_demand_hash_range_tables_with_every_key_type() {
    let client = client();
    for (hash, range) in [(Sat::S, Sat::N), (Sat::N, Sat::B), (Sat::B, Sat::S)] {
        let name = format!("tables-ppr-{}-{}", hash.as_str(), range.as_str()).to_lowercase();
        let created = ok(client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("h", KeyType::Hash))
            .key_schema(key_element("r", KeyType::Range))
            .attribute_definitions(attr_def("h", hash.clone()))
            .attribute_definitions(attr_def("r", range.clone()))
            .send()
            .await)
        .table_description
        .expect("TableDescription");
        assert_common_description(&created, &name);
        wait_active(&client, &name).await;

        let desc = describe(&client, &name).await;
        assert_common_description(&desc, &name);
        assert_eq!(
            desc.key_schema(),
            [
                key_element("h", KeyType::Hash),
                key_element("r", KeyType::Range)
            ]
        );
        let mut defs = desc.attribute_definitions().to_vec();
        defs.sort_by(|a, b| a.attribute_name().cmp(b.attribute_name()));
        assert_eq!(
            defs,
            [attr_def("h", hash.clone()), attr_def("r", range.clone())]
        );
        assert_eq!(
            desc.billing_mode_summary().and_then(|s| s.billing_mode()),
            Some(&BillingMode::PayPerRequest)
        );
        let pt = desc
            .provisioned_throughput()
            .expect("ProvisionedThroughput");
        assert_eq!(
            (
                pt.read_capacity_units(),
                pt.write_capacity_units(),
                pt.number_of_decreases_today()
            ),
            (Some(0), Some(0), Some(0))
        );
    }
    let names = ok(client.list_tables().send().await).table_names;
    for expected in ["tables-ppr-b-s", "tables-ppr-n-b", "tables-ppr-s-n"] {
        assert!(
            names.as_ref().unwrap().iter().any(|n| n == expected),
            "{expected} not listed: {names:?}"
        );
    }
}

#[tokio::test]
async fn describe_reports_item_count_and_size_after_puts() {
    let client = client();
    let name = "tables-counts";
    create_table(&client, name, Sat::S, None).await;
    // DynamoDB item size: attribute name bytes + value size.
    // {pk:"k1", data:"hello"}  = 2+2 + 4+5 = 13
    // {pk:"k2", num:123}      = 2+2 + 3+3 = 10 (N "123" is 1 + ceil(3/2) = 3 bytes)
    // {pk:"k3", flag:true}    = 2+2 + 4+1 = 9
    let items = [
        item([("pk", s("k1")), ("data", s("hello"))]),
        item([("pk", s("k2")), ("num", n("123"))]),
        item([
            ("pk", s("k3")),
            ("flag", aws_sdk_dynamodb::types::AttributeValue::Bool(true)),
        ]),
    ];
    for it in items {
        ok(client
            .put_item()
            .table_name(name)
            .set_item(Some(it))
            .send()
            .await);
    }
    let desc = describe(&client, name).await;
    assert_eq!(desc.item_count(), Some(3));
    assert_eq!(desc.table_size_bytes(), Some(13 + 10 + 9));

    // Overwrite and delete: counts follow.
    ok(client
        .put_item()
        .table_name(name)
        .set_item(Some(item([("pk", s("k1"))])))
        .send()
        .await);
    ok(client
        .delete_item()
        .table_name(name)
        .key("pk", s("k2"))
        .send()
        .await);
    let desc = describe(&client, name).await;
    assert_eq!(desc.item_count(), Some(2));
    assert_eq!(desc.table_size_bytes(), Some(4 + 9));
}

#[tokio::test]
async fn list_tables_pages_in_sorted_order() {
    let client = client();
    let ours = [
        "lst-page-a",
        "lst-page-b",
        "lst-page-c",
        "lst-page-d",
        "lst-page-e",
    ];
    // Created out of order: the listing must sort.
    for name in [
        "lst-page-d",
        "lst-page-b",
        "lst-page-e",
        "lst-page-a",
        "lst-page-c",
    ] {
        create_table(&client, name, Sat::S, None).await;
    }

    // Page through everything with Limit 2. Other tests create tables
    // concurrently, so only ordering and our own names are asserted.
    let mut all = Vec::new();
    let mut start: Option<String> = None;
    for _ in 0..1000 {
        let out = ok(client
            .list_tables()
            .limit(2)
            .set_exclusive_start_table_name(start.clone())
            .send()
            .await);
        let page = out.table_names().to_vec();
        assert!(page.len() <= 2, "Limit 2 returned {page:?}");
        if let Some(s) = &start {
            assert!(page.iter().all(|n| n > s), "page {page:?} not after {s}");
        }
        all.extend(page.iter().cloned());
        match out.last_evaluated_table_name() {
            Some(last) => {
                assert_eq!(
                    Some(last),
                    page.last().map(String::as_str),
                    "LastEvaluatedTableName"
                );
                start = Some(last.to_string());
            }
            None => break,
        }
    }
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "names not strictly ascending: {all:?}"
    );
    let listed: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("lst-page-"))
        .collect();
    assert_eq!(listed, ours);

    // ExclusiveStartTableName need not exist; names strictly after it follow.
    for (start, first) in [
        ("lst-page-b", "lst-page-c"),
        ("lst-page-bb", "lst-page-c"),
        ("lst-page-", "lst-page-a"),
    ] {
        let out = ok(client
            .list_tables()
            .exclusive_start_table_name(start)
            .limit(2)
            .send()
            .await);
        assert_eq!(
            out.table_names().first().map(String::as_str),
            Some(first),
            "after {start}"
        );
    }
    // Limit 1 with more tables after it must say where to continue.
    let out = ok(client
        .list_tables()
        .exclusive_start_table_name("lst-page-c")
        .limit(1)
        .send()
        .await);
    assert_eq!(out.table_names(), ["lst-page-d"]);
    assert_eq!(out.last_evaluated_table_name(), Some("lst-page-d"));
}

#[tokio::test]
async fn list_tables_rejects_out_of_range_limits() {
    let client = client();
    assert_error(
        client.list_tables().limit(0).send().await,
        "ValidationException",
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    assert_error(
        client.list_tables().limit(101).send().await,
        "ValidationException",
        "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100",
    );
    assert_error(
        client
            .list_tables()
            .exclusive_start_table_name("")
            .send()
            .await,
        "ValidationException",
        "2 validation errors detected: \
         Value '' at 'exclusiveStartTableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
         Value '' at 'exclusiveStartTableName' failed to satisfy constraint: Member must have length greater than or equal to 3",
    );
    let out = ok(client.list_tables().limit(100).send().await);
    assert!(out.table_names().len() <= 100);
}

#[tokio::test]
async fn update_table_throughput_and_billing_mode() {
    let client = client();
    let name = "tables-update";
    ok(client
        .create_table()
        .table_name(name)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S))
        .provisioned_throughput(throughput(5, 5))
        .send()
        .await);
    wait_active(&client, name).await;

    // Throughput change.
    let out = ok(client
        .update_table()
        .table_name(name)
        .provisioned_throughput(throughput(10, 20))
        .send()
        .await);
    let desc = out
        .table_description
        .expect("UpdateTable returns TableDescription");
    assert!(
        matches!(
            desc.table_status(),
            Some(TableStatus::Updating | TableStatus::Active)
        ),
        "{:?}",
        desc.table_status()
    );
    wait_active(&client, name).await;
    let pt = describe(&client, name)
        .await
        .provisioned_throughput
        .expect("PT");
    assert_eq!(
        (pt.read_capacity_units(), pt.write_capacity_units()),
        (Some(10), Some(20))
    );

    // The same throughput again is refused.
    assert_error(
        client
            .update_table()
            .table_name(name)
            .provisioned_throughput(throughput(10, 20))
            .send()
            .await,
        "ValidationException",
        "The provisioned throughput for the table will not change. The requested value equals the current value. \
         Current ReadCapacityUnits provisioned for the table: 10. Requested ReadCapacityUnits: 10. \
         Current WriteCapacityUnits provisioned for the table: 20. Requested WriteCapacityUnits: 20. \
         Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
    );

    // Nothing to change.
    assert_error(
        client.update_table().table_name(name).send().await,
        "ValidationException",
        "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, \
         SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, MultiRegionConsistency, \
         DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is required",
    );

    // PROVISIONED -> PAY_PER_REQUEST.
    ok(client
        .update_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await);
    wait_active(&client, name).await;
    let desc = describe(&client, name).await;
    assert_eq!(
        desc.billing_mode_summary().and_then(|s| s.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let pt = desc.provisioned_throughput().expect("PT");
    assert_eq!(
        (pt.read_capacity_units(), pt.write_capacity_units()),
        (Some(0), Some(0))
    );

    // Throughput on an on-demand table.
    assert_error(
        client
            .update_table()
            .table_name(name)
            .provisioned_throughput(throughput(1, 1))
            .send()
            .await,
        "ValidationException",
        "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
    );
    // Back to PROVISIONED needs throughput.
    assert_error(
        client
            .update_table()
            .table_name(name)
            .billing_mode(BillingMode::Provisioned)
            .send()
            .await,
        "ValidationException",
        "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
    );
    ok(client
        .update_table()
        .table_name(name)
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(throughput(3, 4))
        .send()
        .await);
    wait_active(&client, name).await;
    let desc = describe(&client, name).await;
    let pt = desc.provisioned_throughput().expect("PT");
    assert_eq!(
        (pt.read_capacity_units(), pt.write_capacity_units()),
        (Some(3), Some(4))
    );
    if let Some(summary) = desc.billing_mode_summary() {
        assert_eq!(summary.billing_mode(), Some(&BillingMode::Provisioned));
    }

    // Unknown table.
    assert_error(
        client
            .update_table()
            .table_name("tables-update-missing")
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await,
        "ResourceNotFoundException",
        "Requested resource not found: Table: tables-update-missing not found",
    );
}

#[tokio::test]
async fn deletion_protection_blocks_delete_until_disabled() {
    let client = client();
    let name = "tables-protected";
    let created = ok(client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S))
        .deletion_protection_enabled(true)
        .send()
        .await)
    .table_description
    .unwrap();
    assert_eq!(created.deletion_protection_enabled(), Some(true));
    wait_active(&client, name).await;

    assert_error(
        client.delete_table().table_name(name).send().await,
        "ValidationException",
        "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
    );
    assert_eq!(
        describe(&client, name).await.deletion_protection_enabled(),
        Some(true)
    );

    assert_error(
        client
            .update_table()
            .table_name(name)
            .deletion_protection_enabled(false)
            .billing_mode(BillingMode::Provisioned)
            .provisioned_throughput(throughput(1, 1))
            .send()
            .await,
        "ValidationException",
        "One or more parameter values were invalid: DeletionProtection modification must be the only operation in the request",
    );

    ok(client
        .update_table()
        .table_name(name)
        .deletion_protection_enabled(false)
        .send()
        .await);
    wait_active(&client, name).await;
    assert_eq!(
        describe(&client, name).await.deletion_protection_enabled(),
        Some(false)
    );
    ok(client.delete_table().table_name(name).send().await);
    wait_gone(&client, name).await;
}

#[tokio::test]
async fn delete_table_then_describe_is_not_found_and_name_is_reusable() {
    let client = client();
    let name = "tables-delete";
    create_table(&client, name, Sat::S, None).await;
    ok(client
        .put_item()
        .table_name(name)
        .set_item(Some(item([("pk", s("old"))])))
        .send()
        .await);

    let desc = ok(client.delete_table().table_name(name).send().await)
        .table_description
        .expect("DeleteTable returns TableDescription");
    assert_eq!(desc.table_name(), Some(name));
    assert!(
        matches!(
            desc.table_status(),
            Some(TableStatus::Deleting | TableStatus::Active)
        ),
        "{:?}",
        desc.table_status()
    );
    wait_gone(&client, name).await;
    assert_table_absent(&client, name).await;
    assert_error(
        client.delete_table().table_name(name).send().await,
        "ResourceNotFoundException",
        &format!("Requested resource not found: Table: {name} not found"),
    );
    let listed = ok(client.list_tables().send().await)
        .table_names
        .unwrap_or_default();
    assert!(
        !listed.iter().any(|n| n == name),
        "deleted table still listed"
    );
    assert_error(
        client
            .get_item()
            .table_name(name)
            .key("pk", s("old"))
            .send()
            .await,
        "ResourceNotFoundException",
        "Requested resource not found",
    );

    // Re-created under the same name: a new, empty table.
    create_table(&client, name, Sat::S, None).await;
    let got = ok(client
        .get_item()
        .table_name(name)
        .key("pk", s("old"))
        .consistent_read(true)
        .send()
        .await);
    assert!(
        got.item.is_none(),
        "re-created table still holds old data: {:?}",
        got.item
    );
    assert_ne!(
        describe(&client, name).await.table_id(),
        desc.table_id(),
        "new table needs a new TableId"
    );
}

#[tokio::test]
async fn create_existing_table_is_resource_in_use() {
    let client = client();
    let name = "tables-exists";
    create_table(&client, name, Sat::S, None).await;
    assert_error(
        client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("pk", KeyType::Hash))
            .attribute_definitions(attr_def("pk", Sat::S))
            .send()
            .await,
        "ResourceInUseException",
        &format!("Table already exists: {name}"),
    );
}

#[tokio::test]
async fn table_names_at_the_limits_are_accepted() {
    let client = client();
    let longest = format!("T{}", "n".repeat(254));
    for name in ["abc", "A.b_c-9.Z", longest.as_str()] {
        create_table(&client, name, Sat::S, None).await;
        ok(client
            .put_item()
            .table_name(name)
            .set_item(Some(item([("pk", s(name))])))
            .send()
            .await);
        let got = ok(client
            .get_item()
            .table_name(name)
            .key("pk", s(name))
            .consistent_read(true)
            .send()
            .await);
        assert_eq!(got.item, Some(item([("pk", s(name))])), "table {name}");
        assert_eq!(describe(&client, name).await.table_name(), Some(name));
    }
    // Names are case-sensitive.
    assert_table_absent(&client, "ABC").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_create_of_one_name_has_one_winner() {
    let client = client();
    let name = "tables-race";
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                // Different key types: the winner's schema must be the one kept.
                let ty = if i % 2 == 0 { Sat::S } else { Sat::N };
                let result = client
                    .create_table()
                    .table_name(name)
                    .billing_mode(BillingMode::PayPerRequest)
                    .key_schema(key_element("pk", KeyType::Hash))
                    .attribute_definitions(attr_def("pk", ty.clone()))
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok((ty, out.table_description.and_then(|d| d.table_id))),
                    Err(e) => Err(api_error::<(), _>(Err(e))),
                }
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(winner) => winners.push(winner),
            Err(err) => assert_eq!(
                (err.code.as_str(), err.message.as_str()),
                (
                    "ResourceInUseException",
                    "Table already exists: tables-race"
                )
            ),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    wait_active(&client, name).await;
    let desc = describe(&client, name).await;
    assert_eq!(desc.table_id(), winners[0].1.as_deref());
    assert_eq!(
        desc.attribute_definitions(),
        [attr_def("pk", winners[0].0.clone())]
    );
}

#[tokio::test]
async fn list_tables_default_page_is_100() {
    let client = client();
    // Names sort after everything else other tests create.
    for i in 0..101 {
        ok(client
            .create_table()
            .table_name(format!("zzmany-{i:03}"))
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("pk", KeyType::Hash))
            .attribute_definitions(attr_def("pk", Sat::S))
            .send()
            .await);
    }
    let out = ok(client
        .list_tables()
        .exclusive_start_table_name("zzmany-")
        .send()
        .await);
    let names = out.table_names();
    assert_eq!(names.len(), 100);
    assert_eq!(names.first().map(String::as_str), Some("zzmany-000"));
    assert_eq!(names.last().map(String::as_str), Some("zzmany-099"));
    assert_eq!(out.last_evaluated_table_name(), Some("zzmany-099"));
    let out = ok(client
        .list_tables()
        .exclusive_start_table_name("zzmany-099")
        .send()
        .await);
    assert_eq!(out.table_names(), ["zzmany-100"]);
    assert_eq!(out.last_evaluated_table_name(), None);
}

#[tokio::test]
async fn table_arn_is_accepted_where_a_table_name_is() {
    let client = client();
    let name = "tables-by-arn";
    create_table(&client, name, Sat::S, None).await;
    let arn = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{name}");
    let desc = describe(&client, &arn).await;
    assert_eq!(desc.table_name(), Some(name));
    assert_eq!(desc.table_arn(), Some(arn.as_str()));
    ok(client
        .put_item()
        .table_name(&arn)
        .set_item(Some(item([("pk", s("via-arn"))])))
        .send()
        .await);
    let got = ok(client
        .get_item()
        .table_name(name)
        .key("pk", s("via-arn"))
        .consistent_read(true)
        .send()
        .await);
    assert_eq!(got.item, Some(item([("pk", s("via-arn"))])));
    ok(client
        .delete_item()
        .table_name(&arn)
        .key("pk", s("via-arn"))
        .send()
        .await);
    let got = ok(client
        .get_item()
        .table_name(&arn)
        .key("pk", s("via-arn"))
        .consistent_read(true)
        .send()
        .await);
    assert!(got.item.is_none());
}

#[tokio::test]
async fn describe_missing_table_is_not_found() {
    let client = client();
    assert_table_absent(&client, "tables-never-created").await;
}

/// One CreateTable request to validate: PAY_PER_REQUEST unless throughput
/// is given.
struct Spec {
    name: String,
    keys: Vec<(&'static str, KeyType)>,
    defs: Vec<(&'static str, Sat)>,
    billing: Option<BillingMode>,
    throughput: Option<(i64, i64)>,
}

impl Spec {
    fn new(name: &str) -> Spec {
        Spec {
            name: name.to_string(),
            keys: vec![("pk", KeyType::Hash)],
            defs: vec![("pk", Sat::S)],
            billing: Some(BillingMode::PayPerRequest),
            throughput: None,
        }
    }

    fn request(
        &self,
        client: &Client,
    ) -> aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder {
        let mut req = client
            .create_table()
            .table_name(&self.name)
            .set_billing_mode(self.billing.clone());
        for (k, t) in &self.keys {
            req = req.key_schema(key_element(k, t.clone()));
        }
        for (k, t) in &self.defs {
            req = req.attribute_definitions(attr_def(k, t.clone()));
        }
        if let Some((r, w)) = self.throughput {
            req = req.provisioned_throughput(throughput(r, w));
        }
        req
    }
}

#[tokio::test]
async fn create_table_validation_errors() {
    let client = client();
    let long = "x".repeat(256);
    let mut cases: Vec<(Spec, &str)> = Vec::new();

    cases.push((
        Spec::new("ab"),
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3",
    ));
    let too_long = format!(
        "1 validation error detected: Value '{long}' at 'tableName' failed to satisfy constraint: Member must have length less than or equal to 255"
    );
    cases.push((Spec::new(&long), &too_long));
    cases.push((
        Spec::new("bad table!"),
        "1 validation error detected: Value 'bad table!' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
    ));

    let mut spec = Spec::new("tables-v-first-range");
    spec.keys = vec![("pk", KeyType::Range)];
    cases.push((
        spec,
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
    ));

    let mut spec = Spec::new("tables-v-second-hash");
    spec.keys = vec![("pk", KeyType::Hash), ("sk", KeyType::Hash)];
    spec.defs = vec![("pk", Sat::S), ("sk", Sat::S)];
    cases.push((
        spec,
        "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
    ));

    let mut spec = Spec::new("tables-v-same-name");
    spec.keys = vec![("pk", KeyType::Hash), ("pk", KeyType::Range)];
    cases.push((
        spec,
        "Invalid KeySchema: Some index key attribute have no definition",
    ));

    let mut spec = Spec::new("tables-v-undefined");
    spec.defs = vec![("other", Sat::S)];
    cases.push((
        spec,
        "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [pk], AttributeDefinitions: [other]",
    ));

    let mut spec = Spec::new("tables-v-extra-def");
    spec.defs = vec![("pk", Sat::S), ("extra", Sat::N)];
    cases.push((
        spec,
        "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
    ));

    let mut spec = Spec::new("tables-v-ppr-pt");
    spec.throughput = Some((1, 1));
    cases.push((
        spec,
        "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
    ));

    let mut spec = Spec::new("tables-v-prov-no-pt");
    spec.billing = Some(BillingMode::Provisioned);
    cases.push((
        spec,
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
    ));

    let mut spec = Spec::new("tables-v-default-no-pt");
    spec.billing = None;
    cases.push((
        spec,
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
    ));

    let mut spec = Spec::new("tables-v-zero-read");
    spec.billing = Some(BillingMode::Provisioned);
    spec.throughput = Some((0, 5));
    cases.push((
        spec,
        "1 validation error detected: Value '0' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1",
    ));

    for (spec, message) in cases {
        let result = spec.request(&client).send().await;
        let err = api_error(result);
        assert_eq!(
            (err.code.as_str(), err.message.as_str()),
            ("ValidationException", message),
            "CreateTable {}",
            spec.name
        );
        if spec.name.len() >= 3 && spec.name.len() <= 255 && !spec.name.contains(' ') {
            assert_table_absent(&client, &spec.name).await;
        }
    }

    // Three key elements: the value is Java's dump of the list; only the
    // frame is pinned.
    let mut spec = Spec::new("tables-v-three-keys");
    spec.keys = vec![
        ("pk", KeyType::Hash),
        ("sk", KeyType::Range),
        ("extra", KeyType::Range),
    ];
    spec.defs = vec![("pk", Sat::S), ("sk", Sat::S), ("extra", Sat::S)];
    let err = api_error(spec.request(&client).send().await);
    assert_eq!(err.code, "ValidationException");
    assert!(
        err.message.starts_with("1 validation error detected: Value '[")
            && err.message.ends_with(
                "]' at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2"
            ),
        "{}",
        err.message
    );
    assert_table_absent(&client, "tables-v-three-keys").await;
}

#[tokio::test]
async fn an_invalid_global_secondary_index_gets_dynamodbs_message() {
    let client = client();
    // An invalid index gets DynamoDB's own message, and no table is made.
    let bad_gsi = GlobalSecondaryIndex::builder()
        .index_name("by-other")
        .key_schema(key_element("other", KeyType::Hash))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .build(),
        )
        .build()
        .unwrap();
    assert_error(
        client
            .create_table()
            .table_name("tables-gsi-bad")
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("pk", KeyType::Hash))
            .attribute_definitions(attr_def("pk", Sat::S))
            .attribute_definitions(attr_def("other", Sat::S))
            .global_secondary_indexes(bad_gsi)
            .send()
            .await,
        "ValidationException",
        "One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
    );
    assert_table_absent(&client, "tables-gsi-bad").await;
}

#[tokio::test]
async fn tag_list_untag() {
    let client = client();
    let name = "tables-tags";
    let arn = ok(client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S))
        .tags(tag("team", "storage"))
        .send()
        .await)
    .table_description
    .and_then(|d| d.table_arn)
    .expect("TableArn");
    wait_active(&client, name).await;

    async fn listed(client: &Client, arn: &str) -> Vec<(String, String)> {
        let mut tags: Vec<(String, String)> = ok(client
            .list_tags_of_resource()
            .resource_arn(arn)
            .send()
            .await)
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
        tags.sort();
        tags
    }
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());

    assert_eq!(listed(&client, &arn).await, [pair("team", "storage")]);
    ok(client
        .tag_resource()
        .resource_arn(&arn)
        .tags(tag("env", "test"))
        .tags(tag("team", "core"))
        .tags(tag("empty", ""))
        .send()
        .await);
    assert_eq!(
        listed(&client, &arn).await,
        [pair("empty", ""), pair("env", "test"), pair("team", "core")]
    );
    ok(client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .tag_keys("not-there")
        .send()
        .await);
    assert_eq!(
        listed(&client, &arn).await,
        [pair("empty", ""), pair("env", "test")]
    );

    assert_error(
        client
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(vec![]))
            .send()
            .await,
        "ValidationException",
        "Atleast one Tag needs to be provided as Input.",
    );
    assert_error(
        client
            .untag_resource()
            .resource_arn(&arn)
            .set_tag_keys(Some(vec![]))
            .send()
            .await,
        "ValidationException",
        "Atleast one Tag Key needs to be provided as Input.",
    );
    assert_error(
        client
            .tag_resource()
            .resource_arn(&arn)
            .tags(tag("aws:owner", "x"))
            .send()
            .await,
        "ValidationException",
        "Tag Key cannot be prefixed with aws:, Key: aws:owner",
    );
    assert_eq!(
        listed(&client, &arn).await,
        [pair("empty", ""), pair("env", "test")]
    );

    // A table without tags lists none.
    create_table(&client, "tables-no-tags", Sat::S, None).await;
    assert!(
        listed(
            &client,
            "arn:aws:dynamodb:us-east-1:123456789012:table/tables-no-tags"
        )
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn describe_limits_reports_dynamodb_defaults() {
    let out = ok(client().describe_limits().send().await);
    assert_eq!(out.account_max_read_capacity_units(), Some(80_000));
    assert_eq!(out.account_max_write_capacity_units(), Some(80_000));
    assert_eq!(out.table_max_read_capacity_units(), Some(40_000));
    assert_eq!(out.table_max_write_capacity_units(), Some(40_000));
}

#[tokio::test]
async fn describe_endpoints_returns_one_cached_endpoint() {
    let out = ok(client().describe_endpoints().send().await);
    let endpoints = out.endpoints();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert!(!endpoints[0].address().is_empty());
    assert_eq!(endpoints[0].cache_period_in_minutes(), 1440);
}

// ---------------------------------------------------------------------------
// Details DynamoDB users meet (issue 20)
// ---------------------------------------------------------------------------

/// DeleteTable describes the table in fewer words than DescribeTable: no key
/// schema, attribute definitions or creation time (Alternator's
/// test_delete_table_description*, run against DynamoDB).
#[test]
fn delete_table_returns_dynamodb_s_short_description() {
    let addr = shared_server().addr();
    let create = serde_json::json!({
        "TableName": "tables-short-delete",
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    });
    assert_eq!(
        raw(addr, &RawRequest::op("CreateTable", &create)).status,
        200
    );
    let name = serde_json::json!({"TableName": "tables-short-delete"});
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw(addr, &RawRequest::op("DescribeTable", &name)).json()["Table"]["TableStatus"]
        != "ACTIVE"
    {
        assert!(Instant::now() < deadline, "table not ACTIVE");
        std::thread::sleep(Duration::from_millis(20));
    }
    let resp = raw(addr, &RawRequest::op("DeleteTable", &name));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let desc = resp.json()["TableDescription"].clone();
    let mut fields: Vec<&str> = desc
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "BillingModeSummary",
            "ItemCount",
            "ProvisionedThroughput",
            "TableArn",
            "TableId",
            "TableName",
            "TableSizeBytes",
            "TableStatus",
        ]
    );
    assert_eq!(desc["TableStatus"], "DELETING");
    assert_eq!(desc["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST");
    assert!(desc["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"].is_number());
    assert_eq!(
        desc["ProvisionedThroughput"],
        serde_json::json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0})
    );
}

/// `LastUpdateToPayPerRequestDateTime` is the creation time of a table
/// created on demand, and the time of the switch for one switched to it.
#[tokio::test]
async fn billing_mode_summary_dates_the_move_to_on_demand() {
    let client = client();
    create_table(&client, "tables-billing-ppr", Sat::S, None).await;
    let desc = describe(&client, "tables-billing-ppr").await;
    let summary = desc.billing_mode_summary().expect("BillingModeSummary");
    assert_eq!(summary.billing_mode(), Some(&BillingMode::PayPerRequest));
    assert_eq!(
        summary.last_update_to_pay_per_request_date_time(),
        desc.creation_date_time()
    );

    let name = "tables-billing-switch";
    ok(client
        .create_table()
        .table_name(name)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S))
        .provisioned_throughput(throughput(5, 5))
        .send()
        .await);
    wait_active(&client, name).await;
    assert_eq!(describe(&client, name).await.billing_mode_summary(), None);
    let before_switch = now_secs();
    let updated = ok(client
        .update_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await)
    .table_description
    .expect("TableDescription");
    wait_active(&client, name).await;
    for desc in [updated, describe(&client, name).await] {
        let summary = desc.billing_mode_summary().expect("BillingModeSummary");
        assert_eq!(summary.billing_mode(), Some(&BillingMode::PayPerRequest));
        let switched = summary
            .last_update_to_pay_per_request_date_time()
            .expect("LastUpdateToPayPerRequestDateTime")
            .as_secs_f64();
        assert!(
            switched >= before_switch - 1.0 && switched <= now_secs() + 1.0,
            "switch dated {switched}, asked at {before_switch}"
        );
    }
}

#[tokio::test]
async fn duplicate_attribute_definitions_name_the_attribute() {
    let client = client();
    for second in [Sat::S, Sat::N] {
        assert_error(
            client
                .create_table()
                .table_name("tables-duplicate-defs")
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key_element("pk", KeyType::Hash))
                .attribute_definitions(attr_def("pk", Sat::S))
                .attribute_definitions(attr_def("pk", second))
                .send()
                .await,
            "ValidationException",
            "Attribute Name is duplicated: pk",
        );
    }
    assert_table_absent(&client, "tables-duplicate-defs").await;
}

/// A malformed ARN, one of a table that does not exist, and one of another
/// account get DynamoDB's three different answers.
#[tokio::test]
async fn tagging_tells_bad_arns_from_missing_tables() {
    let client = client();
    let missing = "arn:aws:dynamodb:us-east-1:123456789012:table/tables-no-such";
    let not_found = format!("Requested resource not found: ResourceArn: {missing} not found");
    assert_error(
        client
            .tag_resource()
            .resource_arn(missing)
            .tags(tag("k", "v"))
            .send()
            .await,
        "ResourceNotFoundException",
        &not_found,
    );
    assert_error(
        client
            .untag_resource()
            .resource_arn(missing)
            .tag_keys("k")
            .send()
            .await,
        "ResourceNotFoundException",
        &not_found,
    );
    assert_error(
        client
            .list_tags_of_resource()
            .resource_arn(missing)
            .send()
            .await,
        "ResourceNotFoundException",
        &not_found,
    );
    assert_error(
        client
            .tag_resource()
            .resource_arn("junk")
            .tags(tag("k", "v"))
            .send()
            .await,
        "ValidationException",
        "One or more parameter values were invalid: ARNs must start with 'arn:': junk",
    );
    let foreign = "arn:aws:dynamodb:us-east-1:111111111111:table/tables-no-such";
    let err = api_error(
        client
            .list_tags_of_resource()
            .resource_arn(foreign)
            .send()
            .await,
    );
    assert_eq!(err.code, "AccessDeniedException", "{err:?}");
    // DynamoDB Local's account is another account to DynamoDB, and to Atoll.
    let local = "arn:aws:dynamodb:us-east-1:000000000000:table/tables-no-such";
    assert_error(
        client
            .list_tags_of_resource()
            .resource_arn(local)
            .send()
            .await,
        "AccessDeniedException",
        &format!(
            "User: arn:aws:iam::123456789012:root is not authorized to perform: dynamodb:ListTagsOfResource on resource: {local} because no identity-based policy allows the dynamodb:ListTagsOfResource action"
        ),
    );
}

/// `--account-id` names the account in ARNs; the default's ARNs are then another account's.
#[tokio::test]
async fn the_account_id_is_configurable() {
    let server = TestServer::start_with_args(&["--account-id", "210987654321"]);
    let client = server.client();
    let name = "tables-account";
    ok(client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", Sat::S))
        .send()
        .await);
    let arn = format!("arn:aws:dynamodb:us-east-1:210987654321:table/{name}");
    assert_eq!(
        describe(&client, name).await.table_arn(),
        Some(arn.as_str())
    );
    ok(client
        .list_tags_of_resource()
        .resource_arn(&arn)
        .send()
        .await);
    let default_arn = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{name}");
    let err = api_error(
        client
            .list_tags_of_resource()
            .resource_arn(default_arn)
            .send()
            .await,
    );
    assert_eq!(err.code, "AccessDeniedException", "{err:?}");
}

/// While a table is being created or deleted, DynamoDB answers requests on
/// it by its state. Atoll finishes both before answering, so fail points
/// hold each step for a while.
#[tokio::test]
async fn tables_being_created_or_deleted_are_in_use() {
    let server = TestServer::start_with_fail_points(
        "table-activate-hold-ms=return(2000);table-delete-hold-ms=return(2000)",
    );
    let client = server.client();
    let name = "tables-held";
    let arn = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{name}");
    let create = || {
        client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("pk", KeyType::Hash))
            .attribute_definitions(attr_def("pk", Sat::S))
            .send()
    };
    let wait_status = |status: TableStatus| {
        let client = client.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            // The table may not exist yet: the spawned request may not have run.
            while client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .ok()
                .and_then(|out| out.table?.table_status)
                != Some(status.clone())
            {
                assert!(Instant::now() < deadline, "never {status:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    let creating = tokio::spawn(create());
    wait_status(TableStatus::Creating).await;
    let being_created = format!(
        "Attempt to change a resource which is still in use: Table is being created: {name}"
    );
    assert_error(create().await, "ResourceInUseException", &being_created);
    assert_error(
        client.delete_table().table_name(name).send().await,
        "ResourceInUseException",
        &being_created,
    );
    assert_error(
        client
            .tag_resource()
            .resource_arn(&arn)
            .tags(tag("k", "v"))
            .send()
            .await,
        "ResourceNotFoundException",
        &format!("Requested resource not found: ResourceArn: {arn} not found"),
    );
    ok(creating.await.expect("CreateTable task"));
    wait_status(TableStatus::Active).await;

    let deleting = tokio::spawn(client.delete_table().table_name(name).send());
    wait_status(TableStatus::Deleting).await;
    assert_error(
        create().await,
        "ResourceInUseException",
        &format!("Table already exists: {name}"),
    );
    let being_deleted = format!(
        "Attempt to change a resource which is still in use: Table is being deleted: {name}"
    );
    assert_error(
        client.delete_table().table_name(name).send().await,
        "ResourceInUseException",
        &being_deleted,
    );
    assert_error(
        client
            .tag_resource()
            .resource_arn(&arn)
            .tags(tag("k", "v"))
            .send()
            .await,
        "ResourceInUseException",
        &being_deleted,
    );
    let deleted = ok(deleting.await.expect("DeleteTable task"));
    assert_eq!(
        deleted.table_description().and_then(|d| d.table_status()),
        Some(&TableStatus::Deleting)
    );
    wait_gone(&client, name).await;
    // The name is free again.
    ok(create().await);
}
