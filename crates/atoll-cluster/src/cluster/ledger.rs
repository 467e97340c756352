//! The transaction ledger: one item per transaction in a hidden table of
//! its own (partitioned, replicated and split like any table), keyed by the
//! client's request token (or a random id). It is where a transaction's
//! fate is decided, once: the coordinator writes COMMITTED only while the
//! entry still names its attempt as PENDING, and recovery writes
//! CANCELLED only under the same condition, so exactly one of them wins.
//! It also answers a retried request with the first one's outcome
//! (ClientRequestToken idempotency); entries expire ten minutes after
//! their decision through the table's Time to Live.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use atoll_expr::ExpressionKind;
use atoll_model::table::{
    BillingMode, KeyAttribute, KeySchema, ScalarType, TableClass, TableDefinition, TableStatus,
    Throughput, TimeToLive,
};
use atoll_model::{AttributeValue, Item, Number, encode_item, item_size_bytes};
use atoll_partition::{ItemWrite, PartitionCommand, PartitionOutput, ReturnValues, WriteAction};

use super::catalog_client::CatalogClient;
use super::routing::Router;
use super::{Cluster, now_ms};
use crate::data::ItemKey;
use crate::error::ClusterError;

/// The ledger's table: the `/` keeps the name apart from every user's.
pub const LEDGER_TABLE: &str = "atoll/transactions";

/// How long a decided entry answers retries of its request (DynamoDB's
/// idempotency window).
pub(crate) const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(600);

/// How long a transaction waits for the ledger's table to be made.
const LEDGER_CREATE_TIMEOUT: Duration = Duration::from_secs(20);

/// A transaction's state in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LedgerState {
    /// Running: its items may be held; not decided.
    Pending,
    /// Decided to commit: every held item is to be committed.
    Committed,
    /// Decided not to: every held item is to be released.
    Cancelled,
}

impl LedgerState {
    fn as_str(self) -> &'static str {
        match self {
            LedgerState::Pending => "PENDING",
            LedgerState::Committed => "COMMITTED",
            LedgerState::Cancelled => "CANCELLED",
        }
    }

    fn parse(text: &str) -> Option<LedgerState> {
        match text {
            "PENDING" => Some(LedgerState::Pending),
            "COMMITTED" => Some(LedgerState::Committed),
            "CANCELLED" => Some(LedgerState::Cancelled),
            _ => None,
        }
    }
}

/// A ledger entry as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LedgerEntry {
    /// The attempt the entry names.
    pub(crate) attempt: u64,
    /// Its state.
    pub(crate) state: LedgerState,
    /// What identifies the request (its canonical hash).
    pub(crate) request: String,
    /// When the attempt began (epoch ms).
    pub(crate) created_ms: u64,
    /// When the entry stops answering retries (epoch seconds), once decided.
    pub(crate) expires_s: Option<u64>,
}

/// How beginning a transaction in the ledger went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Begin {
    /// A new attempt, PENDING.
    Started {
        /// The attempt.
        attempt: u64,
    },
    /// The same request committed within the window: answer as it did.
    Replay,
    /// The same request is running now.
    InProgress,
    /// The token was used for another request within the window.
    Mismatch,
}

/// The ledger, over this node's router.
pub(crate) struct Ledger {
    router: Arc<Router>,
    catalog: Arc<CatalogClient>,
    // Creates the ledger's table on first use.
    cluster: OnceLock<Weak<Cluster>>,
    // A PENDING attempt older than this has lost its coordinator.
    stale_after: Duration,
}

impl Ledger {
    /// The ledger reached through `router`.
    pub(super) fn new(
        router: Arc<Router>,
        catalog: Arc<CatalogClient>,
        stale_after: Duration,
    ) -> Ledger {
        Ledger {
            router,
            catalog,
            cluster: OnceLock::new(),
            stale_after,
        }
    }

    /// Lets the ledger create its table through `cluster`.
    pub(super) fn attach(&self, cluster: Weak<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// A coordinator quiet for this long is presumed gone.
    pub(crate) fn stale_after(&self) -> Duration {
        self.stale_after
    }

    /// The ledger's table, created (and made ACTIVE) on first use.
    async fn table(&self) -> Result<Arc<TableDefinition>, ClusterError> {
        if let Some(table) = self.catalog.table(LEDGER_TABLE)
            && table.status == TableStatus::Active
        {
            return Ok(table);
        }
        let cluster = self
            .cluster
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| ClusterError::Catalog("the node is stopping".into()))?;
        // The first transactions of a cluster wait while its ledger is made.
        let deadline = tokio::time::Instant::now() + LEDGER_CREATE_TIMEOUT;
        loop {
            match cluster.ensure_ledger_table().await {
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Whether the ledger's table exists yet (recovery has nothing to ask before).
    pub(crate) fn exists(&self) -> bool {
        self.catalog.table(LEDGER_TABLE).is_some()
    }

    /// Begins transaction `key` for `request` at `now_ms`: a new PENDING
    /// attempt, unless the key's entry answers otherwise.
    pub(crate) async fn begin(&self, key: &str, request: &str) -> Result<Begin, ClusterError> {
        let table = self.table().await?;
        let mut expected: Option<u64> = None;
        // Twice at most: an entry that may be replaced is replaced on the
        // condition that it still names the attempt seen.
        for _ in 0..3 {
            let attempt = fresh_attempt();
            let entry = pending_entry(key, attempt, request);
            let condition = match expected {
                None => "attribute_not_exists(id)".to_string(),
                Some(_) => "attempt = :seen".to_string(),
            };
            let mut values = HashMap::new();
            if let Some(seen) = expected {
                values.insert(":seen".to_string(), AttributeValue::S(seen.to_string()));
            }
            let written = self
                .write(&table, key, put(entry), Some((&condition, values)))
                .await?;
            let existing = match written {
                PartitionOutput::ConditionFailed { old: Some(old), .. } => old,
                PartitionOutput::ConditionFailed { old: None, .. } => {
                    expected = None;
                    continue;
                }
                _ => return Ok(Begin::Started { attempt }),
            };
            let Some(existing) = entry_of(&existing) else {
                return Err(ClusterError::Catalog(format!(
                    "an unreadable ledger entry for {key}"
                )));
            };
            let now_s = now_ms() / 1000;
            if existing.expires_s.is_some_and(|expires| expires <= now_s) {
                expected = Some(existing.attempt);
                continue;
            }
            if existing.request != request {
                return Ok(Begin::Mismatch);
            }
            match existing.state {
                LedgerState::Committed => return Ok(Begin::Replay),
                LedgerState::Cancelled => {}
                LedgerState::Pending => {
                    let age_ms = now_ms().saturating_sub(existing.created_ms);
                    if age_ms < self.stale_after.as_millis() as u64 {
                        return Ok(Begin::InProgress);
                    }
                    // Its coordinator is gone: cancel that attempt (its held
                    // items are released by recovery), then run again.
                    let decided = self
                        .decide(key, existing.attempt, LedgerState::Cancelled)
                        .await?;
                    if decided == LedgerState::Committed {
                        return Ok(Begin::Replay);
                    }
                }
            }
            expected = Some(existing.attempt);
        }
        Ok(Begin::InProgress)
    }

    /// Decides `attempt` of transaction `key` as `state`, if it is still
    /// PENDING; returns the state it has now (another party may have
    /// decided first; an entry gone or naming another attempt counts as
    /// cancelled, since that attempt can no longer commit).
    pub(crate) async fn decide(
        &self,
        key: &str,
        attempt: u64,
        state: LedgerState,
    ) -> Result<LedgerState, ClusterError> {
        debug_assert!(state != LedgerState::Pending);
        let table = self.table().await?;
        let expires_s = (now_ms() / 1000) + IDEMPOTENCY_WINDOW.as_secs();
        let update = atoll_expr::parse_update("SET #state = :state, expires = :expires")
            .map_err(|e| ClusterError::Catalog(e.to_string()))?;
        let mut values = HashMap::new();
        values.insert(
            ":state".to_string(),
            AttributeValue::S(state.as_str().into()),
        );
        values.insert(
            ":expires".to_string(),
            AttributeValue::N(Number::from_i64(expires_s as i64)),
        );
        values.insert(
            ":attempt".to_string(),
            AttributeValue::S(attempt.to_string()),
        );
        values.insert(
            ":pending".to_string(),
            AttributeValue::S(LedgerState::Pending.as_str().into()),
        );
        let mut key_item = Item::new();
        key_item.insert("id".into(), AttributeValue::S(key.to_string()));
        let action = WriteAction::Update {
            key: key_item,
            update,
        };
        let condition = "attempt = :attempt AND #state = :pending";
        let output = self
            .write(&table, key, action, Some((condition, values)))
            .await?;
        match output {
            PartitionOutput::ConditionFailed { old, .. } => Ok(old
                .as_ref()
                .and_then(entry_of)
                .filter(|entry| entry.attempt == attempt)
                .map_or(LedgerState::Cancelled, |entry| entry.state)),
            _ => Ok(state),
        }
    }

    /// The entry of transaction `key`, read consistently.
    pub(crate) async fn entry(&self, key: &str) -> Result<Option<LedgerEntry>, ClusterError> {
        let table = self.table().await?;
        let location = ledger_key(&table, key)?;
        let item = self
            .router
            .read_item(&table, location.token(), location.row_key(), true)
            .await?;
        Ok(item.as_ref().and_then(entry_of))
    }

    /// Writes `action` on the entry of `key` under `condition`.
    async fn write(
        &self,
        table: &TableDefinition,
        key: &str,
        action: WriteAction,
        condition: Option<(&str, HashMap<String, AttributeValue>)>,
    ) -> Result<PartitionOutput, ClusterError> {
        let location = ledger_key(table, key)?;
        let (condition, values) = match condition {
            Some((text, values)) => (
                Some(
                    atoll_expr::parse_condition(text, ExpressionKind::Condition)
                        .map_err(|e| ClusterError::Catalog(e.to_string()))?,
                ),
                values,
            ),
            None => (None, HashMap::new()),
        };
        let mut names = HashMap::new();
        if matches!(action, WriteAction::Update { .. }) {
            names.insert("#state".to_string(), "state".to_string());
        }
        let command = PartitionCommand::Write(Box::new(ItemWrite {
            row_key: location.row_key().to_vec(),
            action,
            condition,
            names,
            values,
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        }));
        match self.router.write(table, location.token(), &command).await? {
            PartitionOutput::Refused(rejection) => Err(ClusterError::Rejected(rejection)),
            output => Ok(output),
        }
    }
}

impl Cluster {
    /// The ledger's table: created and made ACTIVE if it is not yet.
    pub(super) async fn ensure_ledger_table(
        self: &Arc<Self>,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        let _lifecycle = self.lifecycle.lock().await;
        let table = match self.catalog.table_or_catch_up(LEDGER_TABLE).await {
            Some(table) => table,
            None => {
                let mut definition = ledger_definition();
                self.prepare_new_table(&mut definition);
                let created = self
                    .catalog
                    .propose(crate::catalog::CatalogCommand::CreateTableBy {
                        definition: Box::new(definition),
                        proposer: self.node.node_id(),
                    })
                    .await?;
                match created {
                    Ok(Some(table)) => table,
                    // Another node created it meanwhile (this node's
                    // catalog may not have applied that yet).
                    _ => self
                        .catalog
                        .table_or_catch_up(LEDGER_TABLE)
                        .await
                        .ok_or_else(|| ClusterError::TableInUse(LEDGER_TABLE.into()))?,
                }
            }
        };
        if table.status == TableStatus::Creating {
            self.activate(&table).await?;
        }
        self.catalog
            .table_or_catch_up(LEDGER_TABLE)
            .await
            .filter(|table| table.status == TableStatus::Active)
            .ok_or_else(|| ClusterError::TableInUse(LEDGER_TABLE.into()))
    }
}

/// The ledger's table: keyed by `id`, on demand, entries expiring by
/// `expires`.
fn ledger_definition() -> TableDefinition {
    let id = KeyAttribute {
        name: "id".into(),
        scalar_type: ScalarType::S,
    };
    TableDefinition {
        name: LEDGER_TABLE.into(),
        table_id: String::new(),
        region: String::new(),
        key_schema: KeySchema {
            partition_key: id.clone(),
            sort_key: None,
        },
        attribute_definitions: vec![id],
        billing_mode: BillingMode::PayPerRequest,
        throughput: Throughput::default(),
        last_on_demand_switch_ms: None,
        table_class: TableClass::Standard,
        deletion_protection: false,
        stream: None,
        tags: Vec::new(),
        created_ms: 0,
        status: TableStatus::Creating,
        keyspace: String::new(),
        partitions: Vec::new(),
        local_indexes: Vec::new(),
        global_indexes: Vec::new(),
        index_of: None,
        global_index_epoch: 0,
        stream_epoch: 0,
        stream_closed_ms: None,
        time_to_live: Some(TimeToLive {
            attribute: "expires".into(),
            enabled: true,
            changed_ms: 0,
        }),
        past_streams: Vec::new(),
    }
}

/// Where the entry of `key` lives.
fn ledger_key(table: &TableDefinition, key: &str) -> Result<ItemKey, ClusterError> {
    let mut item = Item::new();
    item.insert("id".into(), AttributeValue::S(key.to_string()));
    ItemKey::of(&table.key_schema, &item)
}

/// A new PENDING entry.
fn pending_entry(key: &str, attempt: u64, request: &str) -> Item {
    let mut item = Item::new();
    item.insert("id".into(), AttributeValue::S(key.to_string()));
    item.insert("attempt".into(), AttributeValue::S(attempt.to_string()));
    item.insert(
        "state".into(),
        AttributeValue::S(LedgerState::Pending.as_str().into()),
    );
    item.insert("request".into(), AttributeValue::S(request.to_string()));
    item.insert(
        "created_ms".into(),
        AttributeValue::N(Number::from_i64(now_ms() as i64)),
    );
    item
}

fn put(item: Item) -> WriteAction {
    let size_bytes = item_size_bytes(&item) as u32;
    WriteAction::Put {
        record: encode_item(&item),
        size_bytes,
    }
}

/// The entry an item of the ledger holds.
fn entry_of(item: &Item) -> Option<LedgerEntry> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(text)) => Some(text.as_str()),
        _ => None,
    };
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.to_i64().and_then(|n| u64::try_from(n).ok()),
        _ => None,
    };
    Some(LedgerEntry {
        attempt: text("attempt")?.parse().ok()?,
        state: LedgerState::parse(text("state")?)?,
        request: text("request")?.to_string(),
        created_ms: number("created_ms")?,
        expires_s: number("expires"),
    })
}

/// A random attempt number.
fn fresh_attempt() -> u64 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let mut half = [0u8; 8];
    half.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(half)
}
