//! The transactional workload (`--workload bank`): clients move money
//! between a few accounts with TransactWriteItems (the source's balance a
//! condition; each transfer adds its id to both accounts) and audit every
//! account with TransactGetItems, one attempt each through random nodes,
//! while the nemesis works. The history is checked against what
//! serializable transactions promise: every audit sees the opening total;
//! afterwards the total is conserved, each account's balance is what the
//! transfers it records make of it, every acknowledged transfer is in both
//! its accounts, every cancelled one in neither, every unanswered one in
//! both or neither, and no account is left held by a transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Get, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, TransactGetItem, TransactWriteItem, Update, WriteRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::nodes::Cluster;
use crate::workload::client;

const TABLE: &str = "bank";
const OPENING_BALANCE: i64 = 100;

/// What became of one transfer, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Acknowledged.
    Committed,
    /// TransactionCanceledException (or another error that says nothing ran).
    Cancelled,
    /// No answer either way.
    Unknown,
}

/// One transfer of the history.
#[derive(Clone, Debug)]
pub struct Transfer {
    from: usize,
    to: usize,
    amount: i64,
    fate: Fate,
}

/// The history of the workload.
#[derive(Default)]
pub struct BankHistory {
    transfers: BTreeMap<String, Transfer>,
    audits: Vec<i64>,
    audit_failures: usize,
}

type Shared = Arc<Mutex<BankHistory>>;

fn account(i: usize) -> String {
    format!("a{i:02}")
}

/// Creates the bank's table and opens `accounts` accounts.
pub async fn open_bank(
    cluster: &Cluster,
    accounts: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = cluster.endpoints.get(&1).ok_or("no node 1")?;
    let client = client(endpoint);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let created = client
            .create_table()
            .table_name(TABLE)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => return Err(format!("CreateTable: {e:?}").into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let puts: Vec<WriteRequest> = (0..accounts)
        .map(|i| {
            let put = PutRequest::builder()
                .item("pk", AttributeValue::S(account(i)))
                .item("balance", AttributeValue::N(OPENING_BALANCE.to_string()))
                .build()?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    for chunk in puts.chunks(25) {
        loop {
            let written = client
                .batch_write_item()
                .request_items(TABLE, chunk.to_vec())
                .send()
                .await;
            match written {
                Ok(out) if out.unprocessed_items.as_ref().is_none_or(|u| u.is_empty()) => break,
                _ if Instant::now() > deadline => return Err("opening the accounts".into()),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    Ok(())
}

/// What an error says about a transfer.
fn fate_of_error<E: ProvideErrorMetadata>(error: &SdkError<E>) -> Fate {
    match error {
        SdkError::ServiceError(service) => match service.err().code() {
            // An error from a ledger or partition write whose outcome is unknown.
            Some("InternalServerError") | None => Fate::Unknown,
            // Cancelled, conflicting, throttled, unavailable: nothing ran.
            Some(_) => Fate::Cancelled,
        },
        SdkError::DispatchFailure(failure) => {
            let text = format!("{failure:?}");
            match text.contains("Connection refused") || text.contains("ConnectionRefused") {
                true => Fate::Cancelled,
                false => Fate::Unknown,
            }
        }
        SdkError::ConstructionFailure(_) => Fate::Cancelled,
        _ => Fate::Unknown,
    }
}

/// One transfer, one attempt.
async fn transfer(client: &Client, id: &str, t: &Transfer) -> Fate {
    let amount = AttributeValue::N(t.amount.to_string());
    let mark = AttributeValue::Ss(vec![id.to_string()]);
    let debit = Update::builder()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(account(t.from)))
        .update_expression("SET balance = balance - :amount ADD applied :id")
        .condition_expression("balance >= :amount")
        .expression_attribute_values(":amount", amount.clone())
        .expression_attribute_values(":id", mark.clone())
        .build();
    let credit = Update::builder()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(account(t.to)))
        .update_expression("SET balance = balance + :amount ADD applied :id")
        .expression_attribute_values(":amount", amount)
        .expression_attribute_values(":id", mark)
        .build();
    let (Ok(debit), Ok(credit)) = (debit, credit) else {
        return Fate::Cancelled;
    };
    let sent = client
        .transact_write_items()
        .client_request_token(id)
        .transact_items(TransactWriteItem::builder().update(debit).build())
        .transact_items(TransactWriteItem::builder().update(credit).build())
        .send()
        .await;
    match sent {
        Ok(_) => Fate::Committed,
        Err(e) => fate_of_error(&e),
    }
}

/// The total of every account in one TransactGetItems, if it answered.
async fn audit(client: &Client, accounts: usize) -> Option<i64> {
    let mut request = client.transact_get_items();
    for i in 0..accounts {
        let get = Get::builder()
            .table_name(TABLE)
            .key("pk", AttributeValue::S(account(i)))
            .build()
            .ok()?;
        request = request.transact_items(TransactGetItem::builder().get(get).build());
    }
    let out = request.send().await.ok()?;
    let mut total = 0;
    for response in out.responses() {
        total += response
            .item()?
            .get("balance")?
            .as_n()
            .ok()?
            .parse::<i64>()
            .ok()?;
    }
    Some(total)
}

/// One client: transfers (and, one time in four, audits) until `deadline`.
pub async fn bank_client(
    id: usize,
    cluster: Arc<Cluster>,
    accounts: usize,
    seed: u64,
    deadline: Instant,
    history: Shared,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let clients: Vec<Client> = cluster.endpoints.values().map(|e| client(e)).collect();
    let mut counter = 0u64;
    while Instant::now() < deadline {
        let Some(client) = clients.get(rng.gen_range(0..clients.len().max(1))) else {
            return;
        };
        if rng.gen_range(0..4) == 0 {
            let total = audit(client, accounts).await;
            let mut history = history.lock().unwrap_or_else(|e| e.into_inner());
            match total {
                Some(total) => history.audits.push(total),
                None => history.audit_failures += 1,
            }
            continue;
        }
        counter += 1;
        let from = rng.gen_range(0..accounts);
        let to = (from + rng.gen_range(1..accounts)) % accounts;
        let mut t = Transfer {
            from,
            to,
            amount: rng.gen_range(1..40),
            fate: Fate::Unknown,
        };
        let name = format!("c{id}-{counter}");
        t.fate = transfer(client, &name, &t).await;
        history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .transfers
            .insert(name, t);
    }
}

/// Balance and transfer ids of every account, once a plain write of each
/// succeeds (no transaction holds it); retried through every node.
async fn settle(
    cluster: &Cluster,
    accounts: usize,
) -> Result<Vec<(i64, BTreeSet<String>)>, String> {
    let clients: Vec<Client> = cluster.endpoints.values().map(|e| client(e)).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut found = Vec::with_capacity(accounts);
    for i in 0..accounts {
        let mut attempt = 0usize;
        let item: HashMap<String, AttributeValue> = loop {
            attempt += 1;
            let client = &clients[attempt % clients.len()];
            let touched = client
                .update_item()
                .table_name(TABLE)
                .key("pk", AttributeValue::S(account(i)))
                .update_expression("SET settled = :yes")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            match touched {
                Ok(out) => break out.attributes.unwrap_or_default(),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("{} stays unwritable: {:?}", account(i), e.code()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        };
        let balance = item
            .get("balance")
            .and_then(|b| b.as_n().ok())
            .and_then(|b| b.parse().ok())
            .ok_or_else(|| format!("{} has no balance", account(i)))?;
        let applied = match item.get("applied") {
            Some(AttributeValue::Ss(ids)) => ids.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        found.push((balance, applied));
    }
    Ok(found)
}

/// Checks the history and the settled accounts; returns what is wrong.
pub async fn check_bank(cluster: &Cluster, accounts: usize, history: &Shared) -> Vec<String> {
    let expected_total = OPENING_BALANCE * accounts as i64;
    let history = {
        let guard = history.lock().unwrap_or_else(|e| e.into_inner());
        (
            guard.transfers.clone(),
            guard.audits.clone(),
            guard.audit_failures,
        )
    };
    let (transfers, audits, audit_failures) = history;
    let count = |fate| transfers.values().filter(|t| t.fate == fate).count();
    println!(
        "history: {} transfers ({} committed, {} cancelled, {} unknown); {} audits ({audit_failures} not answered)",
        transfers.len(),
        count(Fate::Committed),
        count(Fate::Cancelled),
        count(Fate::Unknown),
        audits.len()
    );
    let mut wrong = Vec::new();
    for total in audits.iter().filter(|total| **total != expected_total) {
        wrong.push(format!(
            "an audit saw a total of {total}, not {expected_total}"
        ));
    }
    let found = match settle(cluster, accounts).await {
        Ok(found) => found,
        Err(e) => {
            wrong.push(e);
            return wrong;
        }
    };
    let total: i64 = found.iter().map(|(balance, _)| balance).sum();
    if total != expected_total {
        wrong.push(format!("the final total is {total}, not {expected_total}"));
    }
    for (i, (balance, applied)) in found.iter().enumerate() {
        let mut expected = OPENING_BALANCE;
        for id in applied {
            match transfers.get(id) {
                Some(t) if t.from == i => expected -= t.amount,
                Some(t) if t.to == i => expected += t.amount,
                _ => wrong.push(format!(
                    "{} records a transfer {id} it is not part of",
                    account(i)
                )),
            }
        }
        if *balance != expected {
            wrong.push(format!(
                "{}'s balance {balance} is not the {expected} its transfers make",
                account(i)
            ));
        }
    }
    for (id, t) in &transfers {
        let (Some(from), Some(to)) = (found.get(t.from), found.get(t.to)) else {
            continue;
        };
        let (in_from, in_to) = (from.1.contains(id), to.1.contains(id));
        if in_from != in_to {
            wrong.push(format!("transfer {id} applied on one side only"));
        }
        match t.fate {
            Fate::Committed if !in_from => wrong.push(format!("acknowledged transfer {id} lost")),
            Fate::Cancelled if in_from => wrong.push(format!("cancelled transfer {id} applied")),
            _ => {}
        }
    }
    wrong
}
