//! The clients: single-item operations on a few shared items through random
//! nodes, one attempt each (no SDK retries), recorded with their call and
//! return times and what they returned.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atoll_faults::checker::{Op, Operation, Outcome, Ret};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::nodes::Cluster;

const TABLE: &str = "jepsen";

type History = Arc<Mutex<Vec<Operation>>>;

/// A client of `endpoint` that makes one attempt per call, with short timeouts.
pub(crate) fn client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("faults", "faults", None, None, "faults"))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(3))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// Creates the table through node 1 (retrying while the cluster settles).
pub async fn create_table(cluster: &Cluster) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = cluster.endpoints.get(&1).ok_or("no node 1")?;
    let client = client(endpoint);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let created = client
            .create_table()
            .table_name(TABLE)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("k")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("k")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("CreateTable: {e:?}").into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn nanos_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What an error says about the operation's effect.
fn outcome_of_error<E: ProvideErrorMetadata>(error: &SdkError<E>) -> Outcome {
    match error {
        SdkError::ServiceError(service) => match service.err().code() {
            Some("ConditionalCheckFailedException") => Outcome::Ok(Ret::ConditionFailed),
            // A 500 may follow an applied write; 503s and 4xx had no effect.
            Some("InternalServerError") | None => Outcome::Unknown,
            Some(_) => Outcome::Fail,
        },
        SdkError::DispatchFailure(failure) => {
            let text = format!("{failure:?}");
            if text.contains("Connection refused") || text.contains("ConnectionRefused") {
                Outcome::Fail
            } else {
                Outcome::Unknown
            }
        }
        SdkError::ConstructionFailure(_) => Outcome::Fail,
        _ => Outcome::Unknown,
    }
}

fn number(item: Option<&std::collections::HashMap<String, AttributeValue>>) -> Option<i64> {
    item?.get("v")?.as_n().ok()?.parse().ok()
}

/// Runs `op` on `key` through `client` and returns its outcome.
async fn perform(client: &Client, key: &str, op: Op) -> Outcome {
    let k = AttributeValue::S(key.to_string());
    let n = |v: i64| AttributeValue::N(v.to_string());
    match op {
        Op::Read => match client
            .get_item()
            .table_name(TABLE)
            .key("k", k)
            .consistent_read(true)
            .send()
            .await
        {
            Ok(out) => Outcome::Ok(Ret::Read(number(out.item()))),
            Err(e) => outcome_of_error(&e),
        },
        Op::Put(v) | Op::PutIfAbsent(v) | Op::PutIfEquals { value: v, .. } => {
            let mut put = client
                .put_item()
                .table_name(TABLE)
                .item("k", k)
                .item("v", n(v));
            put = match op {
                Op::PutIfAbsent(_) => put.condition_expression("attribute_not_exists(k)"),
                Op::PutIfEquals { expected, .. } => put
                    .condition_expression("v = :e")
                    .expression_attribute_values(":e", n(expected)),
                _ => put,
            };
            match put.send().await {
                Ok(_) => Outcome::Ok(Ret::Written),
                Err(e) => outcome_of_error(&e),
            }
        }
        Op::Increment => match client
            .update_item()
            .table_name(TABLE)
            .key("k", k)
            .update_expression("ADD v :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
        {
            Ok(out) => match out
                .attributes()
                .and_then(|a| a.get("v")?.as_n().ok()?.parse().ok())
            {
                Some(v) => Outcome::Ok(Ret::Incremented(v)),
                None => Outcome::Unknown,
            },
            Err(e) => outcome_of_error(&e),
        },
        Op::Delete => match client
            .delete_item()
            .table_name(TABLE)
            .key("k", k)
            .send()
            .await
        {
            Ok(_) => Outcome::Ok(Ret::Written),
            Err(e) => outcome_of_error(&e),
        },
    }
}

/// One client: random operations on random keys through random nodes until `deadline`.
pub async fn client_loop(
    id: usize,
    cluster: Arc<Cluster>,
    keys: usize,
    seed: u64,
    started: Instant,
    deadline: Instant,
    history: History,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let clients: Vec<Client> = cluster.endpoints.values().map(|e| client(e)).collect();
    let mut counter: i64 = 0;
    let mut last_seen: Option<i64> = None;
    while Instant::now() < deadline {
        counter += 1;
        // Unique values, so a read names the write it saw.
        let value = i64::try_from(id).unwrap_or(0) * 1_000_000_000 + counter * 1000;
        let key = format!("k{}", rng.gen_range(0..keys.max(1)));
        let op = match rng.gen_range(0..100) {
            0..=34 => Op::Read,
            35..=49 => Op::Put(value),
            50..=59 => Op::PutIfAbsent(value),
            60..=74 => Op::PutIfEquals {
                expected: last_seen.unwrap_or(0),
                value,
            },
            75..=94 => Op::Increment,
            _ => Op::Delete,
        };
        let Some(client) = clients.get(rng.gen_range(0..clients.len().max(1))) else {
            return;
        };
        let outcome = record(client, id, &key, op, started, &history).await;
        if let Outcome::Ok(Ret::Read(Some(v)) | Ret::Incremented(v)) = outcome {
            last_seen = Some(v);
        }
    }
}

/// Runs `op` on `key` for client `id`, adds it to `history` with its call
/// and return times, and returns its outcome.
async fn record(
    client: &Client,
    id: usize,
    key: &str,
    op: Op,
    started: Instant,
    history: &History,
) -> Outcome {
    let call = nanos_since(started);
    let outcome = perform(client, key, op).await;
    let ret = nanos_since(started);
    let operation = Operation {
        client: id,
        key: key.to_string(),
        op,
        call,
        ret,
        outcome,
    };
    history
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(operation);
    outcome
}

/// After the faults: a strongly consistent read of every key (retried until
/// one answers), so a lost acknowledged write shows in the history.
pub async fn final_reads(cluster: &Cluster, keys: usize, started: Instant, history: &History) {
    let clients: Vec<Client> = cluster.endpoints.values().map(|e| client(e)).collect();
    for index in 0..keys {
        let key = format!("k{index}");
        let deadline = Instant::now() + Duration::from_secs(60);
        for attempt in 0.. {
            let Some(client) = clients.get(attempt % clients.len().max(1)) else {
                return;
            };
            let outcome = record(client, usize::MAX, &key, Op::Read, started, history).await;
            if matches!(outcome, Outcome::Ok(_)) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
