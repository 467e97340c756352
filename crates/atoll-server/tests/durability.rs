//! Crash and restart: what a client was told is stored must still be there,
//! intact, after `kill -9` and a restart on the same data directory.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, ProvisionedThroughput, PutRequest,
    ScalarAttributeType as Sat, Tag, WriteRequest,
};
use common::*;

const WRITERS: usize = 32;
/// Acknowledged writes before each SIGKILL: the first crash (puts), then a
/// second one on the recovered data directory (puts and deletes).
const ROUND_TARGETS: [usize; 2] = [10_000, 5_000];
const WRITE_PHASE_LIMIT: Duration = Duration::from_secs(60);

/// Writes straight to stderr, past the test harness's output capture, so the
/// counts show in every run.
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn key(round: usize, writer: usize, seq: u64) -> String {
    format!("r{round}-w{writer:02}-{seq:08}")
}

/// ~200 bytes derived from the key, so a torn or mixed-up item shows.
fn payload(pk: &str) -> String {
    pk.repeat(200 / pk.len() + 1)
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn durable_item(pk: &str, seq: u64) -> HashMap<String, AttributeValue> {
    let p = payload(pk);
    item([
        ("pk", s(pk)),
        ("n", n(&seq.to_string())),
        ("check", n(&fnv1a(p.as_bytes()).to_string())),
        ("payload", s(&p)),
    ])
}

/// Checks that a stored item is exactly what was written for `pk`.
fn verify_item(pk: &str, seq: u64, got: &HashMap<String, AttributeValue>) -> Result<(), String> {
    let expected = durable_item(pk, seq);
    if got == &expected {
        return Ok(());
    }
    // Say what is wrong: payload vs check vs sequence.
    let payload_ok = got.get("payload") == expected.get("payload");
    let check_consistent = match (got.get("payload"), got.get("check")) {
        (Some(AttributeValue::S(p)), Some(AttributeValue::N(c))) => {
            c == &fnv1a(p.as_bytes()).to_string()
        }
        _ => false,
    };
    Err(format!(
        "{pk}: stored item differs (payload ok: {payload_ok}, check consistent: {check_consistent}): {got:?}"
    ))
}

#[derive(Default, Debug, Clone)]
struct WriterLog {
    round: usize,
    writer: usize,
    /// Sequence numbers whose PutItem was acknowledged (0..acked).
    acked: u64,
    /// The put that was in flight when the server died, if any.
    in_flight: Option<u64>,
    /// Filled in by the next round, which deletes this round's keys in
    /// order: deletes of 0..deleted were acknowledged.
    deleted: u64,
    /// The delete that was in flight when the server died, if any.
    delete_in_flight: Option<u64>,
    /// An error that arrived before the kill: a server bug.
    unexpected_error: Option<String>,
}

/// One writer: puts its keys of `round` in order and, after each put, deletes
/// the next of its keys from `delete_from` (the previous round), if any left.
async fn writer(
    client: Client,
    table: String,
    round: usize,
    w: usize,
    delete_from: Option<WriterLog>,
    killed: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> (WriterLog, Option<WriterLog>) {
    let mut log = WriterLog {
        round,
        writer: w,
        ..WriterLog::default()
    };
    let mut old = delete_from;
    let failed = |log: &mut WriterLog, what: String, e: &dyn std::error::Error| {
        if !killed.load(Ordering::SeqCst) {
            log.unexpected_error = Some(format!("{what}: {}", DisplayErrorContext(e)));
        }
    };
    for seq in 0..1_000_000u64 {
        let pk = key(round, w, seq);
        let result = client
            .put_item()
            .table_name(&table)
            .set_item(Some(durable_item(&pk, seq)))
            .send()
            .await;
        if let Err(e) = result {
            // Whether or not the server applied it is unknown.
            log.in_flight = Some(seq);
            failed(&mut log, format!("PutItem {pk}"), &e);
            break;
        }
        log.acked = seq + 1;
        acks.fetch_add(1, Ordering::Relaxed);

        if let Some(old) = old.as_mut().filter(|o| o.deleted < o.acked) {
            let old_pk = key(old.round, w, old.deleted);
            let result = client
                .delete_item()
                .table_name(&table)
                .key("pk", s(&old_pk))
                .send()
                .await;
            if let Err(e) = result {
                old.delete_in_flight = Some(old.deleted);
                failed(&mut log, format!("DeleteItem {old_pk}"), &e);
                break;
            }
            old.deleted += 1;
            acks.fetch_add(1, Ordering::Relaxed);
        }
    }
    (log, old)
}

#[derive(Default, Debug)]
struct Verdict {
    intact: usize,
    missing: Vec<String>,
    corrupt: Vec<String>,
    resurrected: Vec<String>,
    deleted_absent: usize,
    extra_present: usize,
    extra_absent: usize,
    never_sent_present: Vec<String>,
}

impl Verdict {
    fn add(&mut self, v: Verdict) {
        self.intact += v.intact;
        self.missing.extend(v.missing);
        self.corrupt.extend(v.corrupt);
        self.resurrected.extend(v.resurrected);
        self.deleted_absent += v.deleted_absent;
        self.extra_present += v.extra_present;
        self.extra_absent += v.extra_absent;
        self.never_sent_present.extend(v.never_sent_present);
    }
}

async fn verify_writer(client: Client, table: String, log: WriterLog) -> Verdict {
    let key = |seq: u64| key(log.round, log.writer, seq);
    let mut v = Verdict::default();
    let get = |pk: String| {
        let client = client.clone();
        let table = table.clone();
        async move {
            let out = client
                .get_item()
                .table_name(&table)
                .key("pk", s(&pk))
                .consistent_read(true)
                .send()
                .await;
            match out {
                Ok(out) => out.item,
                Err(e) => panic!(
                    "GetItem {pk} after restart failed: {}",
                    DisplayErrorContext(&e)
                ),
            }
        }
    };
    for seq in 0..log.acked {
        let pk = key(seq);
        let got = get(pk.clone()).await;
        if seq < log.deleted {
            // Acknowledged delete: must stay deleted.
            match got {
                None => v.deleted_absent += 1,
                Some(it) => v.resurrected.push(format!("{pk}: {it:?}")),
            }
            continue;
        }
        let delete_unknown = log.delete_in_flight == Some(seq);
        match got {
            None if delete_unknown => v.extra_absent += 1,
            None => v.missing.push(pk),
            Some(it) => match verify_item(&pk, seq, &it) {
                Ok(()) if delete_unknown => v.extra_present += 1,
                Ok(()) => v.intact += 1,
                Err(e) => v.corrupt.push(e),
            },
        }
    }
    if let Some(seq) = log.in_flight {
        let pk = key(seq);
        match get(pk.clone()).await {
            None => v.extra_absent += 1,
            Some(it) => match verify_item(&pk, seq, &it) {
                Ok(()) => v.extra_present += 1,
                Err(e) => v.corrupt.push(format!("unacknowledged {e}")),
            },
        }
    }
    // Keys after the last attempt were never sent.
    let next = log.in_flight.map_or(log.acked, |s| s + 1);
    for seq in next..next + 2 {
        let pk = key(seq);
        if get(pk.clone()).await.is_some() {
            v.never_sent_present.push(pk);
        }
    }
    v
}

/// Runs the writers until `target` writes (puts, and deletes of the
/// `previous` round's keys) are acknowledged, SIGKILLs the server under that
/// load and returns what each writer was told: this round's logs and the
/// previous round's, updated with the deletes.
async fn write_until_kill(
    server: &TestServer,
    table: &str,
    round: usize,
    target: usize,
    previous: Option<Vec<WriterLog>>,
) -> (Vec<WriterLog>, Vec<WriterLog>) {
    let killed = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut previous: Vec<Option<WriterLog>> = match previous {
        Some(logs) => logs.into_iter().map(Some).collect(),
        None => vec![None; WRITERS],
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(writer(
                server.client(),
                table.to_string(),
                round,
                w,
                previous[w].take(),
                Arc::clone(&killed),
                Arc::clone(&acks),
            ))
        })
        .collect();
    loop {
        let done = acks.load(Ordering::Relaxed);
        if done >= target {
            break;
        }
        if writers.iter().any(|h| h.is_finished()) {
            break; // a writer hit an error before the kill: reported below
        }
        assert!(
            started.elapsed() < WRITE_PHASE_LIMIT,
            "round {round}: only {done} writes acknowledged after {WRITE_PHASE_LIMIT:?} ({WRITERS} writers)"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    killed.store(true, Ordering::SeqCst);
    server.kill9();
    let write_phase = started.elapsed();

    let mut logs = Vec::new();
    let mut updated = Vec::new();
    for h in writers {
        let (log, old) = tokio::time::timeout(Duration::from_secs(40), h)
            .await
            .expect("writer stops after the kill")
            .unwrap();
        logs.push(log);
        updated.extend(old);
    }
    let unexpected: Vec<&String> = logs
        .iter()
        .filter_map(|l| l.unexpected_error.as_ref())
        .collect();
    assert!(
        unexpected.is_empty(),
        "round {round}: a write failed before the server was killed: {unexpected:?}"
    );
    let puts: u64 = logs.iter().map(|l| l.acked).sum();
    let deletes: u64 = updated.iter().map(|l| l.deleted).sum();
    assert!(
        (puts + deletes) as usize >= target,
        "round {round}: only {puts} puts and {deletes} deletes acknowledged before the kill"
    );
    let in_flight = logs.iter().filter(|l| l.in_flight.is_some()).count()
        + updated
            .iter()
            .filter(|l| l.delete_in_flight.is_some())
            .count();
    assert!(
        in_flight > 0,
        "round {round}: the server was killed while no write was in flight"
    );
    report(&format!(
        "durability round {round}: {WRITERS} writers, {puts} puts and {deletes} deletes acknowledged \
         in {write_phase:.1?}, SIGKILL with {in_flight} writes in flight"
    ));
    (logs, updated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill9() {
    let mut server = TestServer::start();
    let table = "durable".to_string();
    create_table(&server.client(), &table, Sat::S, None).await;

    // Round 0 puts; then a crash. Round 1 puts new keys and deletes round 0's
    // keys on a server that recovered from the first crash; then a second
    // crash. A recovery that loses, reorders or overwrites its own log shows.
    let (round0, _) = write_until_kill(&server, &table, 0, ROUND_TARGETS[0], None).await;
    let restart_at = Instant::now();
    server.restart();
    report(&format!(
        "durability: restart after round 0 took {:.1?}",
        restart_at.elapsed()
    ));
    let (round1, round0) =
        write_until_kill(&server, &table, 1, ROUND_TARGETS[1], Some(round0)).await;
    let restart_at = Instant::now();
    server.restart();
    report(&format!(
        "durability: restart after round 1 took {:.1?}",
        restart_at.elapsed()
    ));
    let logs: Vec<WriterLog> = round0.into_iter().chain(round1).collect();
    let client = server.client();
    let puts: u64 = logs.iter().map(|l| l.acked).sum();
    let deletes: u64 = logs.iter().map(|l| l.deleted).sum();
    let unknown_deletes = logs.iter().filter(|l| l.delete_in_flight.is_some()).count();

    let verify_at = Instant::now();
    let checks: Vec<_> = logs
        .into_iter()
        .map(|log| tokio::spawn(verify_writer(client.clone(), table.clone(), log)))
        .collect();
    let mut total = Verdict::default();
    for h in checks {
        total.add(h.await.unwrap());
    }
    report(&format!(
        "durability: verified in {:.1?}: {puts} acknowledged puts, {deletes} of them deleted (acknowledged): \
         {} intact, {} missing, {} corrupt, {} deleted, {} resurrected; \
         in flight at a kill: {} present and intact, {} absent",
        verify_at.elapsed(),
        total.intact,
        total.missing.len(),
        total.corrupt.len(),
        total.deleted_absent,
        total.resurrected.len(),
        total.extra_present,
        total.extra_absent,
    ));
    assert!(
        total.missing.is_empty(),
        "{} acknowledged items lost, e.g. {:?}",
        total.missing.len(),
        &total.missing[..total.missing.len().min(10)]
    );
    assert!(
        total.corrupt.is_empty(),
        "{} items corrupt, e.g. {:?}",
        total.corrupt.len(),
        &total.corrupt[..total.corrupt.len().min(5)]
    );
    assert!(
        total.resurrected.is_empty(),
        "{} items came back after an acknowledged delete, e.g. {:?}",
        total.resurrected.len(),
        &total.resurrected[..total.resurrected.len().min(5)]
    );
    assert!(
        total.never_sent_present.is_empty(),
        "never-written keys exist: {:?}",
        total.never_sent_present
    );
    assert_eq!(total.deleted_absent as u64, deletes);
    assert_eq!(
        total.intact as u64 + deletes + unknown_deletes as u64,
        puts,
        "every acknowledged put is accounted for"
    );

    // The restarted server keeps working.
    ok(client
        .put_item()
        .table_name(&table)
        .set_item(Some(durable_item("after", 0)))
        .send()
        .await);
    let got = ok(client
        .get_item()
        .table_name(&table)
        .key("pk", s("after"))
        .consistent_read(true)
        .send()
        .await)
    .item;
    assert_eq!(got, Some(durable_item("after", 0)));
    assert_eq!(
        ok(client.describe_table().table_name(&table).send().await)
            .table
            .and_then(|t| t.table_status),
        Some(aws_sdk_dynamodb::types::TableStatus::Active)
    );
}

#[tokio::test]
async fn acknowledged_table_changes_survive_kill9() {
    let mut server = TestServer::start();
    let client = server.client();
    let pt = ProvisionedThroughput::builder()
        .read_capacity_units(3)
        .write_capacity_units(4)
        .build()
        .unwrap();
    ok(client
        .create_table()
        .table_name("meta-kept")
        .key_schema(key_element("h", KeyType::Hash))
        .key_schema(key_element("r", KeyType::Range))
        .attribute_definitions(attr_def("h", Sat::B))
        .attribute_definitions(attr_def("r", Sat::N))
        .provisioned_throughput(pt)
        .tags(Tag::builder().key("k").value("v").build().unwrap())
        .send()
        .await);
    wait_active(&client, "meta-kept").await;
    ok(client
        .update_table()
        .table_name("meta-kept")
        .deletion_protection_enabled(true)
        .send()
        .await);
    wait_active(&client, "meta-kept").await;
    create_table(&client, "meta-dropped", Sat::S, None).await;
    ok(client
        .put_item()
        .table_name("meta-dropped")
        .set_item(Some(item([("pk", s("x"))])))
        .send()
        .await);
    ok(client
        .delete_table()
        .table_name("meta-dropped")
        .send()
        .await);
    // An item of every type on a B/N-keyed table.
    let every_type = item([
        ("h", b(b"\x00\xffkey")),
        ("r", n("-12.5")),
        ("s", s("text ü")),
        ("b", b(&[0, 1, 2, 255])),
        ("bool", AttributeValue::Bool(true)),
        ("null", AttributeValue::Null(true)),
        ("ss", AttributeValue::Ss(vec!["x".into()])),
        ("ns", AttributeValue::Ns(vec!["1E-130".into()])),
        (
            "bs",
            AttributeValue::Bs(vec![aws_sdk_dynamodb::primitives::Blob::new(vec![9])]),
        ),
        ("l", AttributeValue::L(vec![s(""), n("0")])),
        (
            "m",
            AttributeValue::M(item([("k", AttributeValue::L(vec![]))])),
        ),
    ]);
    ok(client
        .put_item()
        .table_name("meta-kept")
        .set_item(Some(every_type))
        .send()
        .await);
    let stored = ok(client
        .get_item()
        .table_name("meta-kept")
        .key("h", b(b"\x00\xffkey"))
        .key("r", n("-12.5"))
        .consistent_read(true)
        .send()
        .await)
    .item
    .expect("stored");
    let before = ok(client.describe_table().table_name("meta-kept").send().await)
        .table
        .unwrap();

    server.restart(); // SIGKILL, then start on the same directory
    let client = server.client();
    let after = ok(client.describe_table().table_name("meta-kept").send().await)
        .table
        .unwrap();
    assert_eq!(after.table_id(), before.table_id());
    assert_eq!(after.table_arn(), before.table_arn());
    assert_eq!(after.key_schema(), before.key_schema());
    assert_eq!(
        after.attribute_definitions(),
        before.attribute_definitions()
    );
    assert_eq!(after.deletion_protection_enabled(), Some(true));
    assert_eq!(after.creation_date_time(), before.creation_date_time());
    let pt = after.provisioned_throughput().unwrap();
    assert_eq!(
        (pt.read_capacity_units(), pt.write_capacity_units()),
        (Some(3), Some(4))
    );
    let after_item = ok(client
        .get_item()
        .table_name("meta-kept")
        .key("h", b(b"\x00\xffkey"))
        .key("r", n("-12.5"))
        .consistent_read(true)
        .send()
        .await)
    .item;
    assert_eq!(after_item, Some(stored), "item changed over the crash");
    let tags = ok(client
        .list_tags_of_resource()
        .resource_arn(after.table_arn().unwrap())
        .send()
        .await);
    assert_eq!(
        tags.tags(),
        [Tag::builder().key("k").value("v").build().unwrap()]
    );

    // The deleted table stays deleted (DeleteTable may finish asynchronously,
    // so allow it to be DELETING for a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client
            .describe_table()
            .table_name("meta-dropped")
            .send()
            .await
        {
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                break;
            }
            Err(e) => panic!("{}", DisplayErrorContext(&e)),
            Ok(out) => {
                let status = out.table.and_then(|t| t.table_status);
                assert_eq!(
                    status,
                    Some(aws_sdk_dynamodb::types::TableStatus::Deleting),
                    "deleted table came back"
                );
                assert!(
                    Instant::now() < deadline,
                    "deleted table still DELETING after 10 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let names = ok(client.list_tables().send().await)
        .table_names
        .unwrap_or_default();
    assert_eq!(names, ["meta-kept"]);
}

#[tokio::test]
async fn sigterm_and_sigint_stop_cleanly_and_keep_data() {
    let dir = tempfile::Builder::new()
        .prefix("atoll-e2e-graceful-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let data = dir.path().join("data");
    let server = TestServer::start_in(&data);
    let client = server.client();
    create_table(&client, "graceful", Sat::S, None).await;
    let writes: Vec<WriteRequest> = (0..25)
        .map(|i| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(durable_item(&format!("g{i}"), i)))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();
    ok(client
        .batch_write_item()
        .request_items("graceful", writes)
        .send()
        .await);

    let status = server.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "SIGTERM exit status: {status:?}\n{}",
        server.stderr()
    );
    drop(server);

    let server = TestServer::start_in(&data);
    let client = server.client();
    for i in 0..25u64 {
        let pk = format!("g{i}");
        let got = ok(client
            .get_item()
            .table_name("graceful")
            .key("pk", s(&pk))
            .consistent_read(true)
            .send()
            .await)
        .item
        .unwrap_or_else(|| panic!("{pk} lost over a clean restart"));
        verify_item(&pk, i, &got).unwrap();
    }
    ok(client
        .update_table()
        .table_name("graceful")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(1)
                .write_capacity_units(1)
                .build()
                .unwrap(),
        )
        .send()
        .await);
    wait_active(&client, "graceful").await;

    // SIGINT (Ctrl-C) also stops it cleanly.
    let status = server.stop_with_signal(libc::SIGINT, Duration::from_secs(10));
    assert!(
        status.success(),
        "SIGINT exit status: {status:?}\n{}",
        server.stderr()
    );
    drop(server);

    let server = TestServer::start_in(&data);
    let desc = ok(server
        .client()
        .describe_table()
        .table_name("graceful")
        .send()
        .await)
    .table
    .unwrap();
    let pt = desc.provisioned_throughput().unwrap();
    assert_eq!(
        (pt.read_capacity_units(), pt.write_capacity_units()),
        (Some(1), Some(1))
    );
}
