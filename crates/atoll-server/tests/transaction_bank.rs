//! The bank test of transactions on a three-node `atoll dev-cluster`: 48
//! accounts spread over several partitions (the table splits by size as
//! it fills), transfer workers on every node moving money between random
//! accounts with TransactWriteItems (the source's balance a condition),
//! audit workers reading every account with TransactGetItems, while the
//! node leading the most partitions — a coordinator of transfers too —
//! is `kill -9`ed mid-run.
//!
//! Every audit must see the same total. Afterwards: the total is
//! conserved; every account's balance is exactly what the transfers it
//! records (each transfer adds its id to both accounts it touches) make
//! of it, so none applied twice or half; every acknowledged transfer is in
//! both its accounts, every cancelled one in neither, and one whose
//! outcome the client never learned in both or neither; and no account is
//! left held by a transaction (a plain write of each succeeds). A few
//! coordinators everywhere stall past the recovery bound (fail points), so
//! recovery finishes transactions of live coordinators too.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The test holds `exclusive()` (a std mutex) for its whole run, across
// awaits: every test has its own runtime, so this only serialises the tests.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, Get, KeyType, PutRequest, ScalarAttributeType, TableStatus,
    TransactGetItem, TransactWriteItem, Update, WriteRequest,
};
use common::cluster::*;
use common::*;

const TABLE: &str = "bank";
const ACCOUNTS: usize = 48;
const OPENING_BALANCE: i64 = 1_000;
const TOTAL: i64 = ACCOUNTS as i64 * OPENING_BALANCE;
const TRANSFER_WORKERS: usize = 6;
const AUDIT_WORKERS: usize = 2;
/// How long the workload runs before the kill, and after it.
const BEFORE_KILL: Duration = Duration::from_secs(4);
const AFTER_KILL: Duration = Duration::from_secs(8);
/// Attempts at one transfer whose outcome is unknown (same token each time).
const TRANSFER_ATTEMPTS: usize = 8;
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Some coordinators stall past the recovery bound (1 s): after every
/// partition prepared (recovery cancels them under their feet), or after
/// their decision (recovery commits for them), so recovery runs on live
/// coordinators as well as on the killed node's.
const SLOW_COORDINATORS: &str =
    "transaction-prepared-hold-ms=3%return(2500);transaction-commit-hold-ms=3%return(2500)";

fn account(i: usize) -> String {
    format!("acct-{i:02}")
}

/// What became of one transfer, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Acknowledged: it committed.
    Committed,
    /// TransactionCanceledException: it did not.
    Cancelled,
    /// Never answered either way.
    Unknown,
}

#[derive(Clone, Debug)]
struct Transfer {
    from: usize,
    to: usize,
    amount: i64,
    fate: Fate,
}

/// Shared between workers and the checks.
#[derive(Default)]
struct Ledger {
    transfers: Mutex<BTreeMap<String, Transfer>>,
    audits: AtomicU64,
    audit_conflicts: AtomicU64,
    bad_audits: Mutex<Vec<i64>>,
    next_id: AtomicU64,
}

async fn create_bank(client: &Client) -> Result<(), String> {
    let request = client
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S));
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("ResourceInUse") => Ok(()),
        Err(e) => Err(error_text(e)),
    }
}

async fn active(client: &Client) -> Result<(), String> {
    let out = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(error_text)?;
    match out.table().and_then(|t| t.table_status()) {
        Some(TableStatus::Active) => Ok(()),
        other => Err(format!("table {other:?}")),
    }
}

/// One transfer, sent through `clients` from `first` on (the next node
/// when one fails), retried with the same token until its fate is known.
async fn transfer(clients: &[Client], first: usize, id: &str, t: &Transfer) -> Fate {
    let debit = Update::builder()
        .table_name(TABLE)
        .key("pk", s(&account(t.from)))
        .update_expression("SET balance = balance - :amount ADD applied :id")
        .condition_expression("balance >= :amount")
        .expression_attribute_values(":amount", n(&t.amount.to_string()))
        .expression_attribute_values(":id", AttributeValue::Ss(vec![id.to_string()]))
        .build()
        .unwrap();
    let credit = Update::builder()
        .table_name(TABLE)
        .key("pk", s(&account(t.to)))
        .update_expression("SET balance = balance + :amount ADD applied :id")
        .expression_attribute_values(":amount", n(&t.amount.to_string()))
        .expression_attribute_values(":id", AttributeValue::Ss(vec![id.to_string()]))
        .build()
        .unwrap();
    for attempt in 0..TRANSFER_ATTEMPTS {
        let client = &clients[(first + attempt) % clients.len()];
        let sent = client
            .transact_write_items()
            .client_request_token(id)
            .transact_items(TransactWriteItem::builder().update(debit.clone()).build())
            .transact_items(TransactWriteItem::builder().update(credit.clone()).build())
            .send()
            .await;
        match sent {
            Ok(_) => return Fate::Committed,
            Err(e) if e.code() == Some("TransactionCanceledException") => {
                // A retry after an unknown outcome is cancelled if the first
                // attempt holds the items still; the ledger then knows.
                if attempt == 0 {
                    return Fate::Cancelled;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Fate::Unknown
}

/// Reads every account in one TransactGetItems; their total, or `None` on
/// a conflict or a failure.
async fn audit(client: &Client) -> Result<i64, Option<String>> {
    let mut request = client.transact_get_items();
    for i in 0..ACCOUNTS {
        let get = Get::builder()
            .table_name(TABLE)
            .key("pk", s(&account(i)))
            .build()
            .unwrap();
        request = request.transact_items(TransactGetItem::builder().get(get).build());
    }
    let out = match request.send().await {
        Ok(out) => out,
        Err(e) if e.code() == Some("TransactionCanceledException") => return Err(None),
        Err(e) => return Err(Some(error_text(e))),
    };
    let mut total = 0;
    for response in out.responses() {
        let balance = response
            .item()
            .and_then(|item| item.get("balance"))
            .and_then(|b| b.as_n().ok())
            .ok_or_else(|| Some("an account without a balance".to_string()))?;
        total += balance.parse::<i64>().map_err(|e| Some(e.to_string()))?;
    }
    Ok(total)
}

/// The balance and the transfer ids of every account (consistent reads).
async fn accounts(client: &Client) -> Result<Vec<(i64, BTreeSet<String>)>, String> {
    let mut found = Vec::with_capacity(ACCOUNTS);
    for i in 0..ACCOUNTS {
        let out = client
            .get_item()
            .table_name(TABLE)
            .key("pk", s(&account(i)))
            .consistent_read(true)
            .send()
            .await
            .map_err(error_text)?;
        let item = out
            .item
            .ok_or_else(|| format!("{} is missing", account(i)))?;
        let balance = item["balance"]
            .as_n()
            .map_err(|_| "no balance")?
            .parse()
            .map_err(|_| "bad balance")?;
        let applied = match item.get("applied") {
            Some(AttributeValue::Ss(ids)) => ids.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        found.push((balance, applied));
    }
    Ok(found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_and_audits_survive_a_coordinator_and_leader_kill() {
    let _exclusive = exclusive();
    let began = Instant::now();
    let cluster = DevCluster::start_with_env(
        3,
        &[
            "--partition-split-bytes",
            "6000",
            "--partition-check-ms",
            "200",
            "--transaction-recovery-ms",
            "1000",
        ],
        &[("FAILPOINTS", SLOW_COORDINATORS)],
    );
    let fail = |what: String| -> ! { panic!("{what}\n{}", cluster.logs()) };
    let clients: Vec<Client> = cluster.ids().map(|id| cluster.client(id)).collect();
    retry(SETTLE_TIMEOUT, || create_bank(&clients[0]))
        .await
        .unwrap_or_else(|e| fail(format!("CreateTable: {e}")));
    for client in &clients {
        retry(SETTLE_TIMEOUT, || active(client))
            .await
            .unwrap_or_else(|e| fail(format!("not ACTIVE: {e}")));
    }
    // Accounts padded so that the table splits as it fills.
    let padding = "p".repeat(400);
    let puts: Vec<WriteRequest> = (0..ACCOUNTS)
        .map(|i| {
            let put = PutRequest::builder()
                .item("pk", s(&account(i)))
                .item("balance", n(&OPENING_BALANCE.to_string()))
                .item("padding", s(&padding))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for chunk in puts.chunks(24) {
        retry(SETTLE_TIMEOUT, || async {
            let out = clients[0]
                .batch_write_item()
                .request_items(TABLE, chunk.to_vec())
                .send()
                .await
                .map_err(error_text)?;
            match out.unprocessed_items.unwrap_or_default().is_empty() {
                true => Ok(()),
                false => Err("unprocessed items".to_string()),
            }
        })
        .await
        .unwrap_or_else(|e| fail(format!("BatchWriteItem: {e}")));
    }
    let split = retry(SETTLE_TIMEOUT, || async {
        let count = partitions(&admin(cluster.endpoint(1)).await, TABLE).len();
        match count >= 3 {
            true => Ok(count),
            false => Err(format!("{count} partitions")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(format!("the bank did not split: {e}")));
    eprintln!("the bank has {split} partitions");

    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Clients of the node that may die are dropped from the rotation.
    let dead = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
    let mut workers = Vec::new();
    for worker in 0..TRANSFER_WORKERS {
        let (ledger, stop, dead, clients) =
            (ledger.clone(), stop.clone(), dead.clone(), clients.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(0x5eed + worker as u64);
            while !stop.load(Ordering::Relaxed) {
                let from = rng.below(ACCOUNTS);
                let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                let amount = 1 + rng.below(120) as i64;
                let id = format!("t{}", ledger.next_id.fetch_add(1, Ordering::Relaxed));
                let mut t = Transfer {
                    from,
                    to,
                    amount,
                    fate: Fate::Unknown,
                };
                let live: Vec<Client> = clients
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != dead.load(Ordering::Relaxed))
                    .map(|(_, c)| c.clone())
                    .collect();
                t.fate = transfer(&live, worker, &id, &t).await;
                ledger.transfers.lock().unwrap().insert(id, t);
            }
        }));
    }
    for worker in 0..AUDIT_WORKERS {
        let (ledger, stop, dead, clients) =
            (ledger.clone(), stop.clone(), dead.clone(), clients.clone());
        workers.push(tokio::spawn(async move {
            let mut turn = worker;
            while !stop.load(Ordering::Relaxed) {
                turn += 1;
                let node = turn % clients.len();
                if node == dead.load(Ordering::Relaxed) {
                    continue;
                }
                match audit(&clients[node]).await {
                    Ok(total) => {
                        ledger.audits.fetch_add(1, Ordering::Relaxed);
                        if total != TOTAL {
                            ledger.bad_audits.lock().unwrap().push(total);
                        }
                    }
                    Err(None) => {
                        ledger.audit_conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Some(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }));
    }

    tokio::time::sleep(BEFORE_KILL).await;
    // The node leading the most of the bank's partitions.
    let report = admin(cluster.endpoint(1)).await;
    let mut led: HashMap<u64, usize> = HashMap::new();
    for partition in partitions(&report, TABLE) {
        if let Some(leader) = partition["leader"].as_u64() {
            *led.entry(leader).or_default() += 1;
        }
    }
    let victim = led
        .iter()
        .max_by_key(|(_, count)| **count)
        .map(|(node, _)| u8::try_from(*node).unwrap())
        .unwrap_or(1);
    let before = ledger.transfers.lock().unwrap().len();
    dead.store(usize::from(victim) - 1, Ordering::Relaxed);
    cluster.kill9(victim);
    eprintln!(
        "kill -9 node {victim} (leading {} of the bank's partitions) after {before} transfers",
        led.get(&u64::from(victim)).copied().unwrap_or(0)
    );
    tokio::time::sleep(AFTER_KILL).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let transfers = ledger.transfers.lock().unwrap().clone();
    let bad = ledger.bad_audits.lock().unwrap().clone();
    let audits = ledger.audits.load(Ordering::Relaxed);
    let conflicts = ledger.audit_conflicts.load(Ordering::Relaxed);
    let count = |fate| transfers.values().filter(|t| t.fate == fate).count();
    eprintln!(
        "{} transfers: {} committed, {} cancelled, {} unknown; {audits} audits, {conflicts} cancelled by conflicts",
        transfers.len(),
        count(Fate::Committed),
        count(Fate::Cancelled),
        count(Fate::Unknown)
    );
    assert!(
        bad.is_empty(),
        "audits saw totals other than {TOTAL}: {bad:?}"
    );
    assert!(audits > 0, "no audit succeeded ({conflicts} conflicts)");
    assert!(count(Fate::Committed) > 50, "too few transfers committed");

    // No account stays held: a plain write of each succeeds (recovery
    // finishes what the dead coordinator held).
    let survivor = cluster.ids().find(|id| *id != victim).unwrap();
    let client = &clients[usize::from(survivor) - 1];
    for i in 0..ACCOUNTS {
        retry(SETTLE_TIMEOUT, || async {
            client
                .update_item()
                .table_name(TABLE)
                .key("pk", s(&account(i)))
                .update_expression("SET checked = :yes")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .send()
                .await
                .map(|_| ())
                .map_err(error_text)
        })
        .await
        .unwrap_or_else(|e| fail(format!("{} stays held: {e}", account(i))));
    }

    let found = retry(SETTLE_TIMEOUT, || accounts(client))
        .await
        .unwrap_or_else(|e| fail(format!("reading the accounts: {e}")));
    let total: i64 = found.iter().map(|(balance, _)| balance).sum();
    assert_eq!(total, TOTAL, "money was made or lost");
    for (i, (balance, applied)) in found.iter().enumerate() {
        let mut expected = OPENING_BALANCE;
        for id in applied {
            let t = transfers
                .get(id)
                .unwrap_or_else(|| fail(format!("{} records unknown transfer {id}", account(i))));
            assert!(t.from == i || t.to == i, "{id} recorded on {}", account(i));
            expected += if t.from == i { -t.amount } else { t.amount };
        }
        assert_eq!(
            *balance,
            expected,
            "{}'s balance against its transfers",
            account(i)
        );
        assert!(*balance >= 0, "{} overdrawn", account(i));
    }
    for (id, t) in &transfers {
        let in_from = found[t.from].1.contains(id);
        let in_to = found[t.to].1.contains(id);
        assert_eq!(
            in_from, in_to,
            "transfer {id} applied to one side only ({t:?})"
        );
        match t.fate {
            Fate::Committed => assert!(in_from, "acknowledged transfer {id} is lost"),
            Fate::Cancelled => assert!(!in_from, "cancelled transfer {id} applied"),
            Fate::Unknown => {}
        }
    }
    let recovered: usize = cluster
        .ids()
        .map(|id| {
            cluster
                .node_log(id)
                .matches("finished an abandoned transaction")
                .count()
        })
        .sum();
    eprintln!(
        "{recovered} held shares finished by recovery; done after {:?}",
        began.elapsed()
    );
}
