//! Running a benchmark: setup, load, and timed workloads with warm-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::BenchError;
use crate::client::{Connection, Endpoint, Reply};
use crate::distribution::{Distribution, KeyChooser};
use crate::report::{Report, Stats, process_cpu_time};
use crate::sigv4::{Signer, amz_date_now};
use crate::workload::{Bodies, KeySpace, Op, Workload};

/// What every command needs to reach the endpoint (or the nodes of a
/// cluster: connections are spread over them in turn).
#[derive(Clone, Debug)]
pub struct Target {
    /// The endpoints, each with its request signer (the host is signed).
    endpoints: Arc<Vec<(Endpoint, Arc<Signer>)>>,
    /// Which endpoint the next connection goes to.
    next: Arc<AtomicU64>,
    /// Table name.
    pub table: String,
}

impl Target {
    /// A target from command-line values; `endpoints` is one URL or several
    /// separated by commas.
    pub fn new(
        endpoints: &str,
        table: &str,
        region: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Result<Target, BenchError> {
        let mut parsed = Vec::new();
        for url in endpoints
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            let endpoint = Endpoint::parse(url)?;
            let signer = Signer::new(
                access_key,
                secret_key,
                region,
                &endpoint.authority,
                &amz_date_now(),
            );
            parsed.push((endpoint, Arc::new(signer)));
        }
        if parsed.is_empty() {
            return Err(BenchError::Usage("no endpoint given".into()));
        }
        Ok(Target {
            endpoints: Arc::new(parsed),
            next: Arc::new(AtomicU64::new(0)),
            table: table.to_string(),
        })
    }

    pub(crate) async fn connection(&self) -> Result<Connection, BenchError> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        let (endpoint, signer) = self
            .endpoints
            .get(turn % self.endpoints.len())
            .ok_or_else(|| BenchError::Usage("no endpoint given".into()))?;
        Connection::open(endpoint, signer.clone()).await
    }
}

/// Creates the benchmark table (hash `pk` S, range `sk` S, on-demand),
/// with `gsis` global secondary indexes and a stream of view type
/// `stream`, and waits until it is ACTIVE.
pub async fn setup(target: &Target, gsis: u8, stream: Option<&str>) -> Result<(), BenchError> {
    let mut connection = target.connection().await?;
    let index = |name: &str, projection: &str| {
        format!(
            r#"{{"IndexName":"{name}","KeySchema":[{{"AttributeName":"sk","KeyType":"HASH"}},{{"AttributeName":"pk","KeyType":"RANGE"}}],"Projection":{{"ProjectionType":"{projection}"}}}}"#
        )
    };
    let indexes: Vec<String> = [("gsi1", "KEYS_ONLY"), ("gsi2", "ALL")]
        .iter()
        .take(usize::from(gsis))
        .map(|(name, projection)| index(name, projection))
        .collect();
    let global_indexes = if indexes.is_empty() {
        String::new()
    } else {
        format!(r#","GlobalSecondaryIndexes":[{}]"#, indexes.join(","))
    };
    let stream = match stream {
        Some(view) => {
            format!(r#","StreamSpecification":{{"StreamEnabled":true,"StreamViewType":"{view}"}}"#)
        }
        None => String::new(),
    };
    let body = format!(
        r#"{{"TableName":"{}","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}},{{"AttributeName":"sk","KeyType":"RANGE"}}],"AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}},{{"AttributeName":"sk","AttributeType":"S"}}],"BillingMode":"PAY_PER_REQUEST"{global_indexes}{stream}}}"#,
        target.table
    );
    let reply = connection.call("CreateTable", body).await?;
    if reply.status != 200 && reply.error_type() != "ResourceInUseException" {
        return Err(BenchError::Request(format!(
            "CreateTable failed: {}",
            String::from_utf8_lossy(&reply.body)
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reply = connection
            .call(
                "DescribeTable",
                format!(r#"{{"TableName":"{}"}}"#, target.table),
            )
            .await?;
        let status: Option<String> = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["Table"]["TableStatus"].as_str().map(str::to_string));
        if status.as_deref() == Some("ACTIVE") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Request(format!(
                "table {} did not become ACTIVE",
                target.table
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Shape of the data set.
#[derive(Clone, Debug)]
pub struct DataSet {
    /// Items loaded.
    pub items: u64,
    /// Partition keys they spread over.
    pub partitions: u64,
    /// Approximate size of an item.
    pub item_size_bytes: usize,
}

/// Largest BatchWriteItem DynamoDB accepts.
pub const MAX_BATCH_ITEMS: u64 = 25;

/// Writes items `0..items` with `concurrency` connections, `batch_items` per
/// request (1: PutItem, more: BatchWriteItem, unprocessed items resent);
/// returns the report of the load.
pub async fn load(
    target: &Target,
    data: &DataSet,
    concurrency: usize,
    batch_items: u64,
    progress: bool,
) -> Result<Report, BenchError> {
    if !(1..=MAX_BATCH_ITEMS).contains(&batch_items) {
        return Err(BenchError::Usage(format!(
            "--batch must be between 1 and {MAX_BATCH_ITEMS}, not {batch_items}"
        )));
    }
    let bodies = Arc::new(Bodies::new(
        &target.table,
        KeySpace {
            partitions: data.partitions,
        },
        data.item_size_bytes,
    ));
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let items = data.items;
    let started = Instant::now();
    let cpu_before = process_cpu_time();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let mut connection = target.connection().await?;
        let (bodies, next, done) = (bodies.clone(), next.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            loop {
                let first = next.fetch_add(batch_items, Ordering::Relaxed);
                if first >= items {
                    return Ok::<Stats, BenchError>(stats);
                }
                let end = first.saturating_add(batch_items).min(items);
                let began = Instant::now();
                let reply = if batch_items == 1 {
                    connection.call("PutItem", bodies.put(first)).await?
                } else {
                    write_batch(&mut connection, bodies.batch_put(first..end)).await?
                };
                if reply.status == 200 {
                    stats.record(Op::Insert, began.elapsed());
                } else {
                    stats.error(reply.error_type());
                }
                done.fetch_add(end - first, Ordering::Relaxed);
            }
        }));
    }
    let ticker = progress.then(|| spawn_progress(done.clone(), "load"));
    let stats = join_workers(workers).await?;
    if let Some(ticker) = ticker {
        ticker.abort();
        eprintln!();
    }
    Ok(Report {
        label: format!(
            "load {} items of ~{} B, concurrency {concurrency}, {batch_items} per request",
            data.items, data.item_size_bytes
        ),
        elapsed: started.elapsed(),
        stats,
        client_cpu: process_cpu_time().saturating_sub(cpu_before),
    })
}

/// Sends a BatchWriteItem and resends its UnprocessedItems (with a short
/// growing pause, as the SDKs do) until none are left or a request fails.
async fn write_batch(connection: &mut Connection, body: String) -> Result<Reply, BenchError> {
    let mut body = body;
    let mut pause = Duration::from_millis(5);
    loop {
        let reply = connection.call("BatchWriteItem", body).await?;
        if reply.status != 200 {
            return Ok(reply);
        }
        let parsed: serde_json::Value = serde_json::from_slice(&reply.body)
            .map_err(|e| BenchError::Request(format!("BatchWriteItem reply is not JSON: {e}")))?;
        let unprocessed = &parsed["UnprocessedItems"];
        if unprocessed
            .as_object()
            .is_none_or(|tables| tables.is_empty())
        {
            return Ok(reply);
        }
        body = serde_json::json!({ "RequestItems": unprocessed }).to_string();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Waits for every worker and adds up their statistics.
async fn join_workers(
    workers: Vec<tokio::task::JoinHandle<Result<Stats, BenchError>>>,
) -> Result<Stats, BenchError> {
    let mut stats = Stats::default();
    for worker in workers {
        stats.merge(
            worker
                .await
                .map_err(|e| BenchError::Request(e.to_string()))??,
        );
    }
    Ok(stats)
}

fn spawn_progress(done: Arc<AtomicU64>, what: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = done.load(Ordering::Relaxed);
            eprint!(
                "\r{what}: {now} ops, {} ops/s, {:.0} s elapsed   ",
                now - last,
                started.elapsed().as_secs_f64()
            );
            last = now;
        }
    })
}

/// How long a run lasts.
#[derive(Clone, Copy, Debug)]
pub enum Length {
    /// Measure for this long.
    Duration(Duration),
    /// Measure this many operations.
    Operations(u64),
}

/// A timed run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Workload.
    pub workload: Workload,
    /// Key distribution.
    pub distribution: Distribution,
    /// Connections, each with one request in flight.
    pub concurrency: usize,
    /// Measurement length.
    pub length: Length,
    /// Unmeasured warm-up before it.
    pub warmup: Duration,
    /// The data set the load wrote.
    pub data: DataSet,
}

async fn one_op(
    connection: &mut Connection,
    op: Op,
    key: u64,
    bodies: &Bodies,
    (next_insert, items): (&AtomicU64, u64),
    rng: &mut fastrand::Rng,
) -> Result<Result<(), String>, BenchError> {
    let check = |reply: crate::client::Reply| {
        if reply.status == 200 {
            Ok(())
        } else {
            Err(reply.error_type())
        }
    };
    Ok(match op {
        Op::Read => check(connection.call("GetItem", bodies.get(key)).await?),
        Op::Update => check(
            connection
                .call("UpdateItem", bodies.update(key, false))
                .await?,
        ),
        Op::Insert => {
            let index = next_insert.fetch_add(1, Ordering::Relaxed);
            check(connection.call("PutItem", bodies.put(index)).await?)
        }
        Op::Scan => {
            let limit = rng.u32(1..=10);
            check(connection.call("Query", bodies.query(key, limit)).await?)
        }
        Op::Transact(count) => check(
            connection
                .call("TransactWriteItems", bodies.transact(key, count, items))
                .await?,
        ),
        Op::ReadModifyWrite => match check(connection.call("GetItem", bodies.get(key)).await?) {
            Ok(()) => check(
                connection
                    .call("UpdateItem", bodies.update(key, true))
                    .await?,
            ),
            failed => failed,
        },
    })
}

/// Runs a workload: warm-up, then the measured part.
pub async fn run(target: &Target, spec: &RunSpec, progress: bool) -> Result<Report, BenchError> {
    let bodies = Arc::new(Bodies::new(
        &target.table,
        KeySpace {
            partitions: spec.data.partitions,
        },
        spec.data.item_size_bytes,
    ));
    let chooser = Arc::new(KeyChooser::new(spec.distribution, spec.data.items));
    // Inserts of D/E/write go past the loaded keys (write: over the loaded keys again).
    let first_insert = if spec.workload == Workload::Write {
        0
    } else {
        spec.data.items
    };
    let next_insert = Arc::new(AtomicU64::new(first_insert));
    let measuring = Arc::new(AtomicBool::new(spec.warmup.is_zero()));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let budget = match spec.length {
        Length::Operations(n) => Some(Arc::new(AtomicU64::new(n))),
        Length::Duration(_) => None,
    };
    let mut workers = Vec::new();
    for worker in 0..spec.concurrency.max(1) {
        let mut connection = target.connection().await?;
        let (bodies, chooser, next_insert) = (bodies.clone(), chooser.clone(), next_insert.clone());
        let (measuring, stop, done, budget) = (
            measuring.clone(),
            stop.clone(),
            done.clone(),
            budget.clone(),
        );
        let workload = spec.workload;
        let items = spec.data.items;
        workers.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(0x5eed ^ worker as u64);
            let mut stats = Stats::default();
            while !stop.load(Ordering::Relaxed) {
                let counted = measuring.load(Ordering::Relaxed);
                if counted
                    && let Some(budget) = &budget
                    && budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_err()
                {
                    break;
                }
                let op = workload.next_op(&mut rng);
                let newest = next_insert
                    .load(Ordering::Relaxed)
                    .saturating_sub(1)
                    .max(items.saturating_sub(1));
                let key = chooser.next(&mut rng, newest);
                let began = Instant::now();
                let outcome = one_op(
                    &mut connection,
                    op,
                    key,
                    &bodies,
                    (&next_insert, items),
                    &mut rng,
                )
                .await?;
                if counted {
                    match outcome {
                        Ok(()) => stats.record(op, began.elapsed()),
                        Err(kind) => stats.error(kind),
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<Stats, BenchError>(stats)
        }));
    }
    tokio::time::sleep(spec.warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let cpu_before = process_cpu_time();
    let ticker = progress.then(|| spawn_progress(done.clone(), "run"));
    if let Length::Duration(duration) = spec.length {
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
    }
    let stats = join_workers(workers).await?;
    let elapsed = started.elapsed();
    let client_cpu = process_cpu_time().saturating_sub(cpu_before);
    if let Some(ticker) = ticker {
        ticker.abort();
        eprintln!();
    }
    Ok(Report {
        label: format!(
            "workload {:?}, {:?} keys over {} items, concurrency {}",
            spec.workload, spec.distribution, spec.data.items, spec.concurrency
        ),
        elapsed,
        stats,
        client_cpu,
    })
}
