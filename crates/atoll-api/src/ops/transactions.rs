//! TransactWriteItems and TransactGetItems: DynamoDB's checks and texts
//! (docs/research/transactions.md), then the data plane's transaction
//! (coordinated on this node; see `atoll_cluster::data::transactions`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use atoll_cluster::ClusterError;
use atoll_cluster::data::{
    CancelReason, ItemKey, TransactAction, TransactGetOutcome, TransactOp, TransactWrite,
    TransactWriteOutcome,
};
use atoll_expr::ExpressionKind;
use atoll_model::table::TableDefinition;
use atoll_model::{AttributeValue, Item, item_size_bytes};
use serde_json::{Map, Value, json};

use super::capacity::{IndexUnits, ReturnCapacity, read_units, write_units};
use super::items::{READ_LAYER, apply_projection, check_projection_keys, item_table};
use super::keys::{check_item_key, check_key, locate};
use crate::Api;
use crate::attribute::{decode_item, decode_map, encode_map};
use crate::constraints::{Shown, Violations, enum_constraint};
use crate::error::{ApiError, ApiResult, Doing, ErrorKind};
use crate::input::{self, Object};
use crate::shape::common::{ATTRIBUTE_MAP, STRING, STRING_MAP};
use crate::shape::{Shape, check_members};

/// Most actions of one transaction.
const MAX_ACTIONS: usize = 100;
/// Largest total size of a transaction's items (DynamoDB's 4 MB).
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

static CONDITION_CHECK: Shape = Shape::Struct(
    "ConditionCheck",
    &[
        ("Key", &ATTRIBUTE_MAP),
        ("TableName", &STRING),
        ("ConditionExpression", &STRING),
        ("ExpressionAttributeNames", &STRING_MAP),
        ("ExpressionAttributeValues", &ATTRIBUTE_MAP),
        ("ReturnValuesOnConditionCheckFailure", &STRING),
    ],
);
static PUT: Shape = Shape::Struct(
    "Put",
    &[
        ("Item", &ATTRIBUTE_MAP),
        ("TableName", &STRING),
        ("ConditionExpression", &STRING),
        ("ExpressionAttributeNames", &STRING_MAP),
        ("ExpressionAttributeValues", &ATTRIBUTE_MAP),
        ("ReturnValuesOnConditionCheckFailure", &STRING),
    ],
);
static DELETE: Shape = Shape::Struct(
    "Delete",
    &[
        ("Key", &ATTRIBUTE_MAP),
        ("TableName", &STRING),
        ("ConditionExpression", &STRING),
        ("ExpressionAttributeNames", &STRING_MAP),
        ("ExpressionAttributeValues", &ATTRIBUTE_MAP),
        ("ReturnValuesOnConditionCheckFailure", &STRING),
    ],
);
static UPDATE: Shape = Shape::Struct(
    "Update",
    &[
        ("Key", &ATTRIBUTE_MAP),
        ("UpdateExpression", &STRING),
        ("TableName", &STRING),
        ("ConditionExpression", &STRING),
        ("ExpressionAttributeNames", &STRING_MAP),
        ("ExpressionAttributeValues", &ATTRIBUTE_MAP),
        ("ReturnValuesOnConditionCheckFailure", &STRING),
    ],
);
static TRANSACT_WRITE_ITEM: Shape = Shape::Struct(
    "TransactWriteItem",
    &[
        ("ConditionCheck", &CONDITION_CHECK),
        ("Put", &PUT),
        ("Delete", &DELETE),
        ("Update", &UPDATE),
    ],
);
static TRANSACT_WRITE_ITEM_LIST: Shape = Shape::List(&TRANSACT_WRITE_ITEM);
static TRANSACT_WRITE_ITEMS: &[(&str, &Shape)] = &[
    ("TransactItems", &TRANSACT_WRITE_ITEM_LIST),
    ("ReturnConsumedCapacity", &STRING),
    ("ReturnItemCollectionMetrics", &STRING),
    ("ClientRequestToken", &STRING),
];
const TRANSACT_WRITE_ITEMS_MEMBERS: &[&str] = &[
    "transactItems",
    "returnConsumedCapacity",
    "returnItemCollectionMetrics",
    "clientRequestToken",
];

static GET: Shape = Shape::Struct(
    "Get",
    &[
        ("Key", &ATTRIBUTE_MAP),
        ("TableName", &STRING),
        ("ProjectionExpression", &STRING),
        ("ExpressionAttributeNames", &STRING_MAP),
    ],
);
static TRANSACT_GET_ITEM: Shape = Shape::Struct("TransactGetItem", &[("Get", &GET)]);
static TRANSACT_GET_ITEM_LIST: Shape = Shape::List(&TRANSACT_GET_ITEM);
static TRANSACT_GET_ITEMS: &[(&str, &Shape)] = &[
    ("TransactItems", &TRANSACT_GET_ITEM_LIST),
    ("ReturnConsumedCapacity", &STRING),
];
const TRANSACT_GET_ITEMS_MEMBERS: &[&str] = &["transactItems", "returnConsumedCapacity"];

/// The four kinds of write action, as the request names them.
const WRITE_KINDS: [&str; 4] = ["ConditionCheck", "Put", "Delete", "Update"];

/// DynamoDB's text for two actions on one item.
const DUPLICATE_ITEM: &str = "Transaction request cannot include multiple operations on one item";

/// The length violations of list member `member`: at least one, at most
/// `max` (DynamoDB echoes the list as Java prints it).
pub(crate) fn check_list_length(
    violations: &mut Violations,
    member: &str,
    list: Option<&Vec<Value>>,
    max: usize,
) {
    let Some(list) = list else {
        violations.not_null(member, member);
        return;
    };
    let constraint = match list.len() {
        0 => "Member must have length greater than or equal to 1".to_string(),
        n if n > max => format!("Member must have length less than or equal to {max}"),
        _ => return,
    };
    let dump = format!(
        "[{}]",
        list.iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    violations.add(member, Shown::Text(&dump), member, &constraint);
}

/// The length violation of `ClientRequestToken` (1 to 36 characters).
pub(crate) fn check_request_token(violations: &mut Violations, token: Option<&str>) {
    let Some(token) = token else { return };
    let constraint = match token.chars().count() {
        0 => "Member must have length greater than or equal to 1",
        n if n > 36 => "Member must have length less than or equal to 36",
        _ => return,
    };
    violations.add(
        "clientRequestToken",
        Shown::Text(token),
        "clientRequestToken",
        constraint,
    );
}

/// The required members of each write action, with their paths.
fn check_write_members(violations: &mut Violations, actions: &[Value]) {
    for (i, action) in actions.iter().enumerate() {
        let Some(action) = action.as_object() else {
            continue;
        };
        for kind in WRITE_KINDS {
            let Some(body) = input::object(action, kind) else {
                continue;
            };
            let lower = lower_camel(kind);
            let mut required = vec!["TableName"];
            required.push(if kind == "Put" { "Item" } else { "Key" });
            match kind {
                "ConditionCheck" => required.push("ConditionExpression"),
                "Update" => required.push("UpdateExpression"),
                _ => {}
            }
            for member in required {
                if !input::has(body, member) {
                    let path = format!(
                        "transactItems.{}.member.{lower}.{}",
                        i + 1,
                        lower_camel(member)
                    );
                    violations.not_null("transactItems", &path);
                }
            }
            if let Some(value) = input::string(body, "ReturnValuesOnConditionCheckFailure")
                && value != "ALL_OLD"
                && value != "NONE"
            {
                let path = format!(
                    "transactItems.{}.member.{lower}.returnValuesOnConditionCheckFailure",
                    i + 1
                );
                violations.add(
                    "transactItems",
                    Shown::Text(value),
                    &path,
                    &enum_constraint(&["ALL_OLD", "NONE"]),
                );
            }
        }
    }
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// A write action parsed against its table.
struct ParsedWrite {
    table: Arc<TableDefinition>,
    key: Item,
    action: TransactAction,
}

/// TransactWriteItems.
pub(crate) async fn transact_write_items(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(TRANSACT_WRITE_ITEMS, input)?;
    let mut violations = Violations::new(TRANSACT_WRITE_ITEMS_MEMBERS);
    let actions = input::list(input, "TransactItems");
    check_list_length(&mut violations, "transactItems", actions, MAX_ACTIONS);
    if let Some(actions) = actions {
        check_write_members(&mut violations, actions);
    }
    let capacity = ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    super::items::check_enum(
        &mut violations,
        "returnItemCollectionMetrics",
        input::string(input, "ReturnItemCollectionMetrics"),
        &["SIZE", "NONE"],
    );
    let token = input::string(input, "ClientRequestToken");
    check_request_token(&mut violations, token);
    violations.into_result()?;
    let actions = actions.map(Vec::as_slice).unwrap_or_default();
    let mut parsed = Vec::with_capacity(actions.len());
    let mut seen = HashSet::new();
    let mut total_bytes = 0usize;
    for action in actions {
        let action = action.as_object().cloned().unwrap_or_default();
        let write = parse_write(api, &action).await?;
        if !seen.insert((write.table.table_id.clone(), write.action.key.clone())) {
            return Err(ApiError::validation(DUPLICATE_ITEM));
        }
        total_bytes += match &write.action.op {
            TransactOp::Put { size_bytes, .. } => *size_bytes as usize,
            _ => item_size_bytes(&write.key),
        };
        parsed.push(write);
    }
    if total_bytes > MAX_TRANSACTION_BYTES {
        return Err(ApiError::validation(
            "Collection size of items exceeded, which can also be caused by the aggregate size of the items in the transaction exceeding the 4MB limit",
        ));
    }
    let request_hash = request_fingerprint(input::value(input, "TransactItems"));
    let tables: Vec<(Arc<TableDefinition>, Item)> = parsed
        .iter()
        .map(|write| (write.table.clone(), write.key.clone()))
        .collect();
    let kinds: Vec<bool> = parsed
        .iter()
        .map(|write| matches!(write.action.op, TransactOp::Check))
        .collect();
    let request = TransactWrite {
        token: token.map(str::to_string),
        request_hash,
        actions: parsed.into_iter().map(|write| write.action).collect(),
    };
    let wants_metrics = input::string(input, "ReturnItemCollectionMetrics") == Some("SIZE");
    match api.data.transact_write(request).await? {
        TransactWriteOutcome::Committed { writes } => {
            let mut response = Map::new();
            let mut units: BTreeMap<String, Consumed> = BTreeMap::new();
            let mut metrics: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for (((table, key), write), check) in tables.iter().zip(&writes).zip(&kinds) {
                let consumed = units.entry(table.name.clone()).or_default();
                match write {
                    Some(write) => {
                        let size = write.old_size_bytes.max(write.new_size_bytes) as usize;
                        consumed.write += 2.0 * write_units(size);
                        let index =
                            super::index_writes::index_write_units(table, &write.index_writes);
                        consumed.add_indexes(&index);
                        if wants_metrics && let Some(size_bytes) = write.collection_size_bytes {
                            metrics.entry(table.name.clone()).or_default().push(
                                super::index_writes::item_collection_metrics(
                                    table, key, size_bytes,
                                ),
                            );
                        }
                    }
                    None if *check => consumed.read += 2.0,
                    None => consumed.write += 2.0,
                }
            }
            if let Some(consumed) = report_capacity(capacity, &units) {
                response.insert("ConsumedCapacity".into(), consumed);
            }
            if !metrics.is_empty() {
                let metrics: Map<String, Value> = metrics
                    .into_iter()
                    .map(|(table, list)| (table, Value::Array(list)))
                    .collect();
                response.insert("ItemCollectionMetrics".into(), Value::Object(metrics));
            }
            Ok(Value::Object(response))
        }
        TransactWriteOutcome::Replayed => Ok(json!({})),
        TransactWriteOutcome::Cancelled { reasons } => Err(cancelled(&reasons)),
    }
}

/// Parses one write action and checks it against its table.
async fn parse_write(api: &Api, action: &Object) -> ApiResult<ParsedWrite> {
    let present: Vec<&str> = WRITE_KINDS
        .into_iter()
        .filter(|kind| input::has(action, kind))
        .collect();
    let [kind] = present.as_slice() else {
        return Err(ApiError::validation(
            "TransactItems can only contain one of Check, Put, Update or Delete",
        ));
    };
    let body = input::object(action, kind).cloned().unwrap_or_default();
    let layer = api.write_layer();
    let name = input::string(&body, "TableName").unwrap_or_default();
    let (item, key) = match *kind {
        "Put" => {
            let item = decode_item(input::value(&body, "Item").unwrap_or(&Value::Null), layer)?;
            if item_size_bytes(&item) > atoll_model::MAX_ITEM_SIZE_BYTES {
                return Err(ApiError::item_too_large());
            }
            (Some(item), None)
        }
        _ => (
            None,
            Some(decode_map(
                input::value(&body, "Key").unwrap_or(&Value::Null),
                layer,
            )?),
        ),
    };
    let expression_kinds: &[ExpressionKind] = match *kind {
        "Update" => &[ExpressionKind::Update, ExpressionKind::Condition],
        _ => &[ExpressionKind::Condition],
    };
    let expressions = super::expressions::read(api, &body, expression_kinds, layer)?;
    let table = item_table(api, name).await?;
    let key = match (item.as_ref(), key) {
        (Some(item), _) => {
            check_item_key(&table.key_schema, item)?;
            super::index_writes::check_index_keys(&table, item)?;
            table.key_schema.key_of(item)
        }
        (None, Some(key)) => {
            check_key(&table.key_schema, &key)?;
            key
        }
        (None, None) => Item::new(),
    };
    let location: ItemKey = locate(&table.key_schema, &key)?;
    let op = match (*kind, item) {
        ("Put", Some(item)) => {
            let size_bytes = item_size_bytes(&item) as u32;
            TransactOp::Put { item, size_bytes }
        }
        ("Update", _) => {
            let update = expressions
                .update
                .as_ref()
                .map(|update| (**update).clone())
                .unwrap_or_default();
            atoll_expr::update::check_key_updates(&update, &expressions.env(), &table.key_schema)
                .map_err(|e| ApiError::validation(e.message()))?;
            TransactOp::Update {
                key: table.key_schema.key_of(&key),
                update,
            }
        }
        ("Delete", _) => TransactOp::Delete,
        _ => TransactOp::Check,
    };
    let action = TransactAction {
        table: table.clone(),
        key: location,
        op,
        condition: expressions.condition.as_ref().map(|c| (**c).clone()),
        names: expressions.names,
        values: expressions.values,
        return_old_on_condition_failure: input::string(
            &body,
            "ReturnValuesOnConditionCheckFailure",
        ) == Some("ALL_OLD"),
    };
    Ok(ParsedWrite { table, key, action })
}

/// Capacity consumed on one table by a transaction.
#[derive(Default)]
struct Consumed {
    read: f64,
    write: f64,
    indexes: IndexUnits,
}

impl Consumed {
    fn add_indexes(&mut self, units: &IndexUnits) {
        for (index, value) in &units.local {
            *self.indexes.local.entry(index.clone()).or_insert(0.0) += value;
        }
        for (index, value) in &units.global {
            *self.indexes.global.entry(index.clone()).or_insert(0.0) += value;
        }
    }
}

/// `ConsumedCapacity`: one entry per table, if asked for.
fn report_capacity(capacity: ReturnCapacity, units: &BTreeMap<String, Consumed>) -> Option<Value> {
    if capacity == ReturnCapacity::None {
        return None;
    }
    let entries: Vec<Value> = units
        .iter()
        .filter_map(|(table, consumed)| {
            let table_units = consumed.read + consumed.write;
            let mut entry = capacity.report_indexed(table, table_units, &consumed.indexes)?;
            if let Some(object) = entry.as_object_mut() {
                let index_write: f64 = consumed.indexes.local.values().sum::<f64>()
                    + consumed.indexes.global.values().sum::<f64>();
                if consumed.read > 0.0 {
                    object.insert("ReadCapacityUnits".into(), json!(consumed.read));
                }
                if consumed.write + index_write > 0.0 {
                    object.insert(
                        "WriteCapacityUnits".into(),
                        json!(consumed.write + index_write),
                    );
                }
            }
            Some(entry)
        })
        .collect();
    Some(Value::Array(entries))
}

/// A fingerprint of the request's actions, the same for the same request
/// whatever the order of its JSON members (a retry with the same token
/// is recognised by it).
fn request_fingerprint(actions: Option<&Value>) -> String {
    let canonical = canonical_json(actions.unwrap_or(&Value::Null));
    let token = atoll_model::partition_token(&AttributeValue::S(canonical.clone())).unwrap_or(0);
    format!("{token:016x}-{}", canonical.len())
}

/// `value` as JSON text with every object's members sorted by name.
fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = members
                .into_iter()
                .map(|(key, value)| {
                    format!("{}:{}", Value::String(key.clone()), canonical_json(value))
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(values) => {
            let inner: Vec<String> = values.iter().map(canonical_json).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// TransactionCanceledException with one reason per action.
pub(crate) fn cancelled(reasons: &[CancelReason]) -> ApiError {
    let mut codes = Vec::with_capacity(reasons.len());
    let mut entries = Vec::with_capacity(reasons.len());
    for reason in reasons {
        let (code, message, item) = match reason {
            CancelReason::None => ("None", None, None),
            CancelReason::ConditionalCheckFailed { item } => (
                "ConditionalCheckFailed",
                Some("The conditional request failed".to_string()),
                item.as_ref(),
            ),
            CancelReason::TransactionConflict => (
                "TransactionConflict",
                Some("Transaction is ongoing for the item".to_string()),
                None,
            ),
            CancelReason::Invalid(rejection) => {
                let error =
                    ApiError::from_cluster(ClusterError::Rejected(rejection.clone()), Doing::Items);
                let code = match error.kind {
                    ErrorKind::ItemCollectionSizeLimitExceeded => "ItemCollectionSizeLimitExceeded",
                    _ => "ValidationError",
                };
                (code, error.message, None)
            }
        };
        codes.push(code);
        let mut entry = Map::new();
        if let Some(item) = item {
            entry.insert("Item".into(), encode_map(item));
        }
        entry.insert("Code".into(), Value::String(code.into()));
        if let Some(message) = message {
            entry.insert("Message".into(), Value::String(message));
        }
        entries.push(Value::Object(entry));
    }
    cancellation(&codes, entries)
}

/// TransactionCanceledException from codes and their reason entries.
pub(crate) fn cancellation(codes: &[&str], entries: Vec<Value>) -> ApiError {
    let mut error = ApiError::new(
        ErrorKind::TransactionCanceled,
        format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
    );
    let mut extra = Map::new();
    extra.insert("CancellationReasons".into(), Value::Array(entries));
    error.extra = Some(extra);
    error
}

/// TransactGetItems.
pub(crate) async fn transact_get_items(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(TRANSACT_GET_ITEMS, input)?;
    let mut violations = Violations::new(TRANSACT_GET_ITEMS_MEMBERS);
    let actions = input::list(input, "TransactItems");
    check_list_length(&mut violations, "transactItems", actions, MAX_ACTIONS);
    for (i, action) in actions.into_iter().flatten().enumerate() {
        let Some(action) = action.as_object() else {
            continue;
        };
        match input::object(action, "Get") {
            None => violations.not_null(
                "transactItems",
                &format!("transactItems.{}.member.get", i + 1),
            ),
            Some(get) => {
                for member in ["TableName", "Key"] {
                    if !input::has(get, member) {
                        let path =
                            format!("transactItems.{}.member.get.{}", i + 1, lower_camel(member));
                        violations.not_null("transactItems", &path);
                    }
                }
            }
        }
    }
    let capacity = ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    violations.into_result()?;
    let actions = actions.map(Vec::as_slice).unwrap_or_default();
    // Request-level checks first (projections, tables, duplicates); a key
    // that does not fit its table is the action's cancellation reason.
    let mut gets = Vec::with_capacity(actions.len());
    let mut invalid = Vec::with_capacity(actions.len());
    let mut seen = HashSet::new();
    for action in actions {
        let get = action
            .as_object()
            .and_then(|action| input::object(action, "Get"))
            .cloned()
            .unwrap_or_default();
        let key = decode_map(
            input::value(&get, "Key").unwrap_or(&Value::Null),
            READ_LAYER,
        )?;
        let (projection, expressions) = super::items::read_projection(api, &get)?;
        let name = input::string(&get, "TableName").unwrap_or_default();
        let table = item_table(api, name).await?;
        check_projection_keys(projection.as_ref(), &expressions, &table)?;
        let location = match check_key(&table.key_schema, &key) {
            Ok(()) => Some(locate(&table.key_schema, &key)?),
            Err(error) => {
                invalid.push(error.message);
                gets.push((table, None, projection, expressions));
                continue;
            }
        };
        invalid.push(None);
        if let Some(location) = &location
            && !seen.insert((table.table_id.clone(), location.clone()))
        {
            return Err(ApiError::validation(DUPLICATE_ITEM));
        }
        gets.push((table, location, projection, expressions));
    }
    if invalid.iter().any(Option::is_some) {
        let codes: Vec<&str> = invalid
            .iter()
            .map(|message| {
                if message.is_some() {
                    "ValidationError"
                } else {
                    "None"
                }
            })
            .collect();
        let entries = invalid
            .iter()
            .zip(&codes)
            .map(|(message, code)| match message {
                Some(message) => json!({"Code": code, "Message": message}),
                None => json!({"Code": code}),
            })
            .collect();
        return Err(cancellation(&codes, entries));
    }
    let located: Vec<(Arc<TableDefinition>, ItemKey)> = gets
        .iter()
        .filter_map(|(table, location, _, _)| Some((table.clone(), location.clone()?)))
        .collect();
    let reads = match api.data.transact_get(located).await? {
        TransactGetOutcome::Read(reads) => reads,
        TransactGetOutcome::Conflict(flags) => {
            let reasons: Vec<CancelReason> = flags
                .into_iter()
                .map(|conflict| match conflict {
                    true => CancelReason::TransactionConflict,
                    false => CancelReason::None,
                })
                .collect();
            return Err(cancelled(&reasons));
        }
    };
    let mut responses = Vec::with_capacity(reads.len());
    let mut units: BTreeMap<String, Consumed> = BTreeMap::new();
    for ((table, _, projection, expressions), read) in gets.iter().zip(reads) {
        units.entry(table.name.clone()).or_default().read +=
            2.0 * read_units(read.size_bytes as usize, true);
        match read.item {
            Some(item) => {
                let item = apply_projection(item, projection.as_ref(), expressions)?;
                responses.push(json!({"Item": encode_map(&item)}));
            }
            None => responses.push(json!({})),
        }
    }
    let mut response = Map::new();
    if let Some(consumed) = report_capacity(capacity, &units) {
        response.insert("ConsumedCapacity".into(), consumed);
    }
    response.insert("Responses".into(), Value::Array(responses));
    Ok(Value::Object(response))
}
