//! Table definitions as the catalog stores them and DescribeTable reports them.

use serde::{Deserialize, Serialize};

use crate::value::{AttributeValue, Item};

/// Type of a key attribute: DynamoDB allows only these three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScalarType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl ScalarType {
    /// The type's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarType::S => "S",
            ScalarType::N => "N",
            ScalarType::B => "B",
        }
    }

    /// Parses a wire type name.
    pub fn parse(name: &str) -> Option<ScalarType> {
        match name {
            "S" => Some(ScalarType::S),
            "N" => Some(ScalarType::N),
            "B" => Some(ScalarType::B),
            _ => None,
        }
    }

    /// Whether `value` is of this type.
    pub fn matches(self, value: &AttributeValue) -> bool {
        matches!(
            (self, value),
            (ScalarType::S, AttributeValue::S(_))
                | (ScalarType::N, AttributeValue::N(_))
                | (ScalarType::B, AttributeValue::B(_))
        )
    }
}

/// One key attribute: its name and type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttribute {
    /// Attribute name.
    pub name: String,
    /// Attribute type.
    pub scalar_type: ScalarType,
}

/// A table's (or index's) primary key: a partition key and an optional sort key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    /// The partition (HASH) key.
    pub partition_key: KeyAttribute,
    /// The sort (RANGE) key, if any.
    pub sort_key: Option<KeyAttribute>,
}

impl KeySchema {
    /// Whether `name` is one of the key attributes.
    pub fn is_key_attribute(&self, name: &str) -> bool {
        self.partition_key.name == name || self.sort_key.as_ref().is_some_and(|k| k.name == name)
    }

    /// The key attributes of `item` (partition key, optional sort key), if present.
    pub fn key_values<'a>(
        &self,
        item: &'a Item,
    ) -> Option<(&'a AttributeValue, Option<&'a AttributeValue>)> {
        let partition = item.get(&self.partition_key.name)?;
        match &self.sort_key {
            Some(sort_key) => Some((partition, Some(item.get(&sort_key.name)?))),
            None => Some((partition, None)),
        }
    }

    /// The item holding only the key attributes of `item`.
    pub fn key_of(&self, item: &Item) -> Item {
        let mut key = Item::new();
        for attribute in std::iter::once(&self.partition_key).chain(self.sort_key.as_ref()) {
            if let Some(value) = item.get(&attribute.name) {
                key.insert(attribute.name.clone(), value.clone());
            }
        }
        key
    }
}

/// How a table is billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    /// Fixed read/write capacity units.
    Provisioned,
    /// On-demand.
    PayPerRequest,
}

impl BillingMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Provisioned => "PROVISIONED",
            BillingMode::PayPerRequest => "PAY_PER_REQUEST",
        }
    }
}

/// Provisioned capacity and its change history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throughput {
    /// Read capacity units.
    pub read_capacity_units: u64,
    /// Write capacity units.
    pub write_capacity_units: u64,
    /// When capacity was last increased (epoch milliseconds).
    pub last_increase_ms: Option<u64>,
    /// When capacity was last decreased (epoch milliseconds).
    pub last_decrease_ms: Option<u64>,
    /// Decreases during the current UTC day.
    pub decreases_today: u64,
}

/// Storage class of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableClass {
    /// STANDARD.
    Standard,
    /// STANDARD_INFREQUENT_ACCESS.
    StandardInfrequentAccess,
}

impl TableClass {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TableClass::Standard => "STANDARD",
            TableClass::StandardInfrequentAccess => "STANDARD_INFREQUENT_ACCESS",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<TableClass> {
        match name {
            "STANDARD" => Some(TableClass::Standard),
            "STANDARD_INFREQUENT_ACCESS" => Some(TableClass::StandardInfrequentAccess),
            _ => None,
        }
    }
}

/// Stream settings as given at creation (stored; Streams arrive later).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSettings {
    /// Whether the stream is enabled.
    pub enabled: bool,
    /// KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or NEW_AND_OLD_IMAGES.
    pub view_type: Option<String>,
    /// Label of the stream, a creation timestamp.
    pub label: Option<String>,
}

/// One partition of a table: a token range served by a Raft group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDefinition {
    /// The Raft group replicating this partition.
    pub group_id: u64,
    /// First token of the range (inclusive).
    pub start_token: u64,
    /// Last token of the range (inclusive).
    pub end_token: u64,
}

/// Lifecycle state of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableStatus {
    /// Being created.
    Creating,
    /// Serving.
    Active,
    /// Being updated.
    Updating,
    /// Being deleted.
    Deleting,
}

impl TableStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Creating => "CREATING",
            TableStatus::Active => "ACTIVE",
            TableStatus::Updating => "UPDATING",
            TableStatus::Deleting => "DELETING",
        }
    }
}

/// Everything the catalog knows about a table.
///
/// Fields added from now on carry `#[serde(default)]` and go last: the
/// catalog must read records older versions wrote without them, which it
/// can in JSON (atoll-cluster's `catalog/codec.rs`; the change that adds
/// the first such field also turns its `WRITES_JSON` on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDefinition {
    /// Table name, unique per node/cluster.
    pub name: String,
    /// Unique id (a UUID), new for every creation of a name.
    pub table_id: String,
    /// Region the table was created in (from the creating request's signature).
    pub region: String,
    /// The primary key.
    pub key_schema: KeySchema,
    /// Attribute definitions as given (name, type), in request order.
    pub attribute_definitions: Vec<KeyAttribute>,
    /// Billing mode.
    pub billing_mode: BillingMode,
    /// Provisioned throughput (zeros for on-demand tables, as DynamoDB reports).
    pub throughput: Throughput,
    /// When billing mode was last set to PAY_PER_REQUEST (epoch milliseconds).
    pub last_on_demand_switch_ms: Option<u64>,
    /// Storage class.
    pub table_class: TableClass,
    /// Whether DeleteTable is refused.
    pub deletion_protection: bool,
    /// Stream settings.
    pub stream: Option<StreamSettings>,
    /// Tags, in insertion order.
    pub tags: Vec<(String, String)>,
    /// Creation time (epoch milliseconds).
    pub created_ms: u64,
    /// Lifecycle state.
    pub status: TableStatus,
    /// Storage keyspace holding the table's items.
    pub keyspace: String,
    /// The table's partitions, ordered by token range and covering all tokens.
    pub partitions: Vec<PartitionDefinition>,
    /// Local secondary indexes, in creation order (fixed for the table's
    /// life: the position is the index's number in storage).
    #[serde(default)]
    pub local_indexes: Vec<LocalIndex>,
    /// Global secondary indexes, in creation order.
    #[serde(default)]
    pub global_indexes: Vec<GlobalIndex>,
    /// For the hidden table holding a global secondary index's entries:
    /// the table and index it serves (`None` for a user's table).
    #[serde(default)]
    pub index_of: Option<IndexOwner>,
    /// Counts the changes of which global indexes the table's partitions
    /// feed (an index added, or one being deleted): each partition takes
    /// a set of indexes only if newer than its own.
    #[serde(default)]
    pub global_index_epoch: u64,
    /// Counts the changes of the table's stream (turned on or off): each
    /// partition takes a stream only if newer than its own.
    #[serde(default)]
    pub stream_epoch: u64,
    /// When the latest stream was turned off (epoch ms), while it is off.
    #[serde(default)]
    pub stream_closed_ms: Option<u64>,
    /// Time to Live: the attribute whose epoch seconds expire an item.
    #[serde(default)]
    pub time_to_live: Option<TimeToLive>,
    /// Streams the table had before its latest, readable until their
    /// retention ends.
    #[serde(default)]
    pub past_streams: Vec<PastStream>,
}

/// A table's Time to Live setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeToLive {
    /// The attribute holding each item's expiry, in epoch seconds.
    pub attribute: String,
    /// Whether expired items are deleted.
    pub enabled: bool,
    /// When it last changed (epoch ms), for DynamoDB's limit on changes.
    pub changed_ms: u64,
}

/// A stream the table had before its latest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastStream {
    /// Its label.
    pub label: String,
    /// What its records show.
    pub view_type: String,
    /// When it was turned off (epoch milliseconds).
    pub closed_ms: u64,
}

/// Lifecycle state of a global secondary index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexStatus {
    /// Being created (and backfilled).
    Creating,
    /// Serving.
    Active,
    /// Its throughput is changing.
    Updating,
    /// Being deleted.
    Deleting,
}

impl IndexStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexStatus::Creating => "CREATING",
            IndexStatus::Active => "ACTIVE",
            IndexStatus::Updating => "UPDATING",
            IndexStatus::Deleting => "DELETING",
        }
    }
}

/// A global secondary index: another partition key (and sort key) for the
/// table's items, its entries kept in partitions of their own (the hidden
/// table `table_name`), fed from the table's partitions asynchronously.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalIndex {
    /// Index name, unique among the table's indexes.
    pub name: String,
    /// The index's partition key and optional sort key.
    pub key_schema: KeySchema,
    /// What the index holds of each item.
    pub projection: Projection,
    /// Provisioned throughput (zeros for on-demand tables).
    pub throughput: Throughput,
    /// Lifecycle state.
    pub status: IndexStatus,
    /// Whether existing items are still being copied in.
    pub backfilling: bool,
    /// The hidden table holding the entries.
    pub table_name: String,
}

/// What a hidden index table serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexOwner {
    /// The table indexed.
    pub table: String,
    /// Which incarnation of it.
    pub table_id: String,
    /// The global secondary index.
    pub index: String,
}

/// What an index stores of each item besides the table's and the index's keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Projection {
    /// The keys only.
    KeysOnly,
    /// The keys and these attributes.
    Include(Vec<String>),
    /// The whole item.
    All,
}

impl Projection {
    /// The wire name of the projection type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Projection::KeysOnly => "KEYS_ONLY",
            Projection::Include(_) => "INCLUDE",
            Projection::All => "ALL",
        }
    }

    /// The attributes of `item` an index with this projection holds, given
    /// the table's and the index's key schemas.
    pub fn project(&self, item: &Item, table_keys: &KeySchema, index_keys: &KeySchema) -> Item {
        match self {
            Projection::All => item.clone(),
            Projection::KeysOnly | Projection::Include(_) => {
                let mut projected = table_keys.key_of(item);
                projected.extend(index_keys.key_of(item));
                if let Projection::Include(names) = self {
                    for name in names {
                        if let Some(value) = item.get(name) {
                            projected.insert(name.clone(), value.clone());
                        }
                    }
                }
                projected
            }
        }
    }

    /// Whether an index with this projection holds attribute `name`.
    pub fn holds(&self, name: &str, table_keys: &KeySchema, index_keys: &KeySchema) -> bool {
        match self {
            Projection::All => true,
            Projection::KeysOnly => {
                table_keys.is_key_attribute(name) || index_keys.is_key_attribute(name)
            }
            Projection::Include(names) => {
                table_keys.is_key_attribute(name)
                    || index_keys.is_key_attribute(name)
                    || names.iter().any(|n| n == name)
            }
        }
    }
}

/// A local secondary index: the table's partition key with another sort
/// key, stored beside the items in their partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalIndex {
    /// Index name, unique among the table's indexes.
    pub name: String,
    /// The table's partition key and the index's sort key.
    pub key_schema: KeySchema,
    /// What the index holds of each item.
    pub projection: Projection,
}

impl LocalIndex {
    /// The index's sort key (an LSI always has one).
    pub fn sort_key(&self) -> &KeyAttribute {
        self.key_schema
            .sort_key
            .as_ref()
            .unwrap_or(&self.key_schema.partition_key)
    }
}

/// The account id in ARNs when none is configured: the one AWS's
/// documentation uses for examples. It is not DynamoDB Local's
/// `000000000000`, which DynamoDB itself treats as another account.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";

impl TableDefinition {
    /// The storage keyspace of the table's index bookkeeping: local index
    /// entries and item collection sizes, the outbox of global index
    /// changes (any table may gain global indexes), or on a hidden index
    /// table the versions of its entries.
    pub fn index_keyspace(&self) -> String {
        format!("{}_idx", self.keyspace)
    }

    /// The global secondary index called `name`.
    pub fn global_index(&self, name: &str) -> Option<&GlobalIndex> {
        self.global_indexes.iter().find(|index| index.name == name)
    }

    /// The name of the hidden table holding global index `index` of the
    /// table `table` (incarnation `table_id`): a `/` keeps it apart from
    /// every name a user may give.
    pub fn index_table_name(table: &str, table_id: &str, index: &str) -> String {
        format!("{table}/index/{index}/{table_id}")
    }

    /// The local secondary index called `name`.
    pub fn local_index(&self, name: &str) -> Option<&LocalIndex> {
        self.local_indexes.iter().find(|index| index.name == name)
    }

    /// The partition owning `token`.
    pub fn partition_for_token(&self, token: u64) -> Option<&PartitionDefinition> {
        self.partitions
            .iter()
            .find(|p| p.start_token <= token && token <= p.end_token)
    }
}

/// ARN of table `name` of account `account_id` in `region`.
pub fn table_arn(account_id: &str, region: &str, name: &str) -> String {
    format!("arn:aws:dynamodb:{region}:{account_id}:table/{name}")
}

/// Whether `text` can be an AWS account id: twelve digits.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}
