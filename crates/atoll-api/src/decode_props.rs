//! Property test of request decoding: arbitrary JSON bodies, shaped like
//! DynamoDB requests, never panic the server and never produce an internal
//! error — they succeed or get a DynamoDB client error.

use std::sync::Arc;

use atoll_cluster::{Cluster, ClusterOptions};
use atoll_replication::NodeOptions;
use atoll_storage::Storage;
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::error::ErrorKind;
use crate::operation::Operation;
use crate::{Api, ApiConfig, RequestContext};

/// Member names and type tags requests are made of, so random bodies reach
/// deep into the validation code instead of being ignored as unknown members.
const WORDS: &[&str] = &[
    "TableName",
    "Item",
    "Key",
    "Keys",
    "S",
    "N",
    "B",
    "SS",
    "NS",
    "BS",
    "M",
    "L",
    "NULL",
    "BOOL",
    "KeySchema",
    "AttributeDefinitions",
    "AttributeName",
    "AttributeType",
    "KeyType",
    "HASH",
    "RANGE",
    "BillingMode",
    "ProvisionedThroughput",
    "ReadCapacityUnits",
    "WriteCapacityUnits",
    "ReturnValues",
    "ReturnConsumedCapacity",
    "RequestItems",
    "PutRequest",
    "DeleteRequest",
    "AttributesToGet",
    "ConsistentRead",
    "Limit",
    "ExclusiveStartTableName",
    "Tags",
    "Key",
    "Value",
    "ResourceArn",
    "TagKeys",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "IndexName",
    "Projection",
    "ProjectionType",
    "NonKeyAttributes",
    "StreamSpecification",
    "StreamEnabled",
    "StreamViewType",
    "DeletionProtectionEnabled",
    "TableClass",
    "pk",
    "sk",
    "tbl",
    "ALL_OLD",
    "TOTAL",
    "PAY_PER_REQUEST",
    "PROVISIONED",
    "ConditionExpression",
    "ExpressionAttributeValues",
    "Expected",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_string),
        1 => "[a-zA-Z0-9_.:#-]{0,8}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        word().prop_map(Value::String),
        "[0-9.eE+-]{0,12}".prop_map(Value::String),
        "[A-Za-z0-9+/=]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((word(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn operations() -> impl Strategy<Value = Operation> {
    proptest::sample::select(vec![
        Operation::CreateTable,
        Operation::DescribeTable,
        Operation::ListTables,
        Operation::UpdateTable,
        Operation::DeleteTable,
        Operation::TagResource,
        Operation::UntagResource,
        Operation::ListTagsOfResource,
        Operation::PutItem,
        Operation::GetItem,
        Operation::DeleteItem,
        Operation::BatchGetItem,
        Operation::BatchWriteItem,
        Operation::UpdateItem,
        Operation::Query,
        Operation::Scan,
    ])
}

fn api(runtime: &tokio::runtime::Runtime) -> Arc<Api> {
    runtime.block_on(async {
        let cluster = Cluster::open(
            Storage::in_memory(),
            ClusterOptions {
                node: NodeOptions::default(),
                ..ClusterOptions::default()
            },
        )
        .await
        .expect("cluster");
        Api::new(
            cluster,
            ApiConfig {
                max_global_indexes: crate::DEFAULT_MAX_GLOBAL_INDEXES,
                account_id: atoll_model::table::DEFAULT_ACCOUNT_ID.into(),
                ttl_change_interval_ms: crate::DEFAULT_TTL_CHANGE_INTERVAL_MS,
                stream_retention_ms: 24 * 60 * 60 * 1000,
                default_region: "us-east-1".into(),
                endpoint_address: "localhost:8000".into(),
                message_style: crate::MessageStyle::default(),
                metrics: None,
                keys: crate::auth::KeyStore::default(),
            },
        )
    })
}

/// Valid requests that mutations start from, so they reach execution too.
fn templates() -> Vec<(Operation, Value)> {
    use serde_json::json;
    vec![
        (
            Operation::CreateTable,
            json!({"TableName": "tbl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}], "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}], "BillingMode": "PAY_PER_REQUEST"}),
        ),
        (
            Operation::PutItem,
            json!({"TableName": "tbl", "Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "m": {"M": {"l": {"L": [{"NS": ["1", "2"]}, {"B": "AAE="}]}}}}, "ReturnValues": "ALL_OLD"}),
        ),
        (
            Operation::GetItem,
            json!({"TableName": "tbl", "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}, "AttributesToGet": ["m"], "ConsistentRead": true}),
        ),
        (
            Operation::DeleteItem,
            json!({"TableName": "tbl", "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}, "ReturnValues": "ALL_OLD"}),
        ),
        (
            Operation::BatchWriteItem,
            json!({"RequestItems": {"tbl": [{"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": "2"}}}}, {"DeleteRequest": {"Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}}}]}}),
        ),
        (
            Operation::BatchGetItem,
            json!({"RequestItems": {"tbl": {"Keys": [{"pk": {"S": "b"}, "sk": {"N": "2"}}]}}}),
        ),
        (
            Operation::UpdateTable,
            json!({"TableName": "tbl", "BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}),
        ),
        (
            Operation::TagResource,
            json!({"ResourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/tbl", "Tags": [{"Key": "k", "Value": "v"}]}),
        ),
    ]
}

/// Replaces (or, with `None`, removes) the node that `choices` steers to.
fn mutate(value: &mut Value, choices: &[u32], replacement: Option<Value>) {
    let Some((first, rest)) = choices.split_first() else {
        if let Some(replacement) = replacement {
            *value = replacement;
        }
        return;
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            let index = *first as usize % map.len();
            let Some(key) = map.keys().nth(index).cloned() else {
                return;
            };
            if rest.is_empty() && replacement.is_none() {
                map.remove(&key);
            } else if let Some(child) = map.get_mut(&key) {
                mutate(child, rest, replacement);
            }
        }
        Value::Array(list) if !list.is_empty() => {
            let index = *first as usize % list.len();
            if rest.is_empty() && replacement.is_none() {
                list.remove(index);
            } else if let Some(child) = list.get_mut(index) {
                mutate(child, rest, replacement);
            }
        }
        other => {
            if let Some(replacement) = replacement {
                *other = replacement;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_requests_never_panic_or_fail_internally(
        operation in operations(),
        body in proptest::collection::vec((word(), json()), 0..8),
    ) {
        thread_local! {
            static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            static API: std::cell::OnceCell<Arc<Api>> = const { std::cell::OnceCell::new() };
        }
        let input: Map<String, Value> = body.into_iter().collect();
        let result = RUNTIME.with(|runtime| {
            let api = API.with(|cell| cell.get_or_init(|| api(runtime)).clone());
            runtime.block_on(async {
                let context = RequestContext {
                    region: "us-east-1".into(),
                    account_id: atoll_model::table::DEFAULT_ACCOUNT_ID.into(),
                };
                crate::ops::dispatch(&api, &context, operation, &input).await
            })
        });
        if let Err(error) = result {
            prop_assert_ne!(error.kind, ErrorKind::InternalServerError, "{:?} {}", operation, error);
        }
    }

    #[test]
    fn mutated_valid_requests_never_panic_or_fail_internally(
        template in 0usize..11,
        mutations in proptest::collection::vec(
            (proptest::collection::vec(any::<u32>(), 0..6), proptest::option::of(json())),
            1..4,
        ),
    ) {
        thread_local! {
            static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            static API: std::cell::OnceCell<Arc<Api>> = const { std::cell::OnceCell::new() };
        }
        let templates = templates();
        let Some((operation, mut body)) = templates.get(template % templates.len()).cloned() else {
            return Ok(());
        };
        for (choices, replacement) in mutations {
            mutate(&mut body, &choices, replacement);
        }
        let Value::Object(input) = body else { return Ok(()) };
        let result = RUNTIME.with(|runtime| {
            let api = API.with(|cell| cell.get_or_init(|| api(runtime)).clone());
            runtime.block_on(async {
                let context = RequestContext {
                    region: "us-east-1".into(),
                    account_id: atoll_model::table::DEFAULT_ACCOUNT_ID.into(),
                };
                // The table the templates use exists (creation may fail later: already there).
                let create = templates
                    .first()
                    .and_then(|(_, v)| v.as_object().cloned())
                    .unwrap_or_default();
                let _ = crate::ops::dispatch(&api, &context, Operation::CreateTable, &create).await;
                crate::ops::dispatch(&api, &context, operation, &input).await
            })
        });
        if let Err(error) = result {
            prop_assert_ne!(error.kind, ErrorKind::InternalServerError, "{:?} {}", operation, error);
        }
    }
}

#[test]
fn the_templates_are_valid_requests() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let api = api(&runtime);
    runtime.block_on(async {
        let context = RequestContext {
            region: "us-east-1".into(),
            account_id: atoll_model::table::DEFAULT_ACCOUNT_ID.into(),
        };
        for (operation, body) in templates() {
            let Value::Object(input) = body else {
                panic!("template of {operation:?} is not an object")
            };
            let result = crate::ops::dispatch(&api, &context, operation, &input).await;
            assert!(result.is_ok(), "{operation:?}: {result:?}");
        }
    });
}
