//! BatchWriteItem and BatchGetItem.

use std::collections::HashSet;
use std::sync::Arc;

use atoll_cluster::data;
use atoll_expr::ast::Projection;
use atoll_model::table::TableDefinition;
use atoll_model::{Item, item_size_bytes};
use serde_json::{Map, Value, json};

use super::capacity::{ReturnCapacity, read_units, write_units};
use super::expressions::Expressions;
use super::items::{
    apply_projection, check_projection_keys, item_table, read_projection, resolve_table_name,
};
use super::keys::{check_batch_item_key, check_key, locate};
use crate::Api;
use crate::attribute::{Layer, decode_item, decode_map, encode_map};
use crate::constraints::{Shown, Violations, enum_constraint, is_valid_name};
use crate::error::{ApiError, ApiResult};
use crate::input::{self, Object};
use crate::shape::common::{
    ATTRIBUTE_MAP, ATTRIBUTE_MAP_LIST, BOOLEAN, STRING, STRING_LIST, STRING_MAP,
};
use crate::shape::{Shape, check_members};

static PUT_REQUEST: Shape = Shape::Struct("PutRequest", &[("Item", &ATTRIBUTE_MAP)]);
static DELETE_REQUEST: Shape = Shape::Struct("DeleteRequest", &[("Key", &ATTRIBUTE_MAP)]);
static WRITE_REQUEST: Shape = Shape::Struct(
    "WriteRequest",
    &[
        ("PutRequest", &PUT_REQUEST),
        ("DeleteRequest", &DELETE_REQUEST),
    ],
);
static WRITE_REQUESTS: Shape = Shape::List(&WRITE_REQUEST);
static WRITE_REQUEST_ITEMS: Shape = Shape::Map(
    &WRITE_REQUESTS,
    "java.util.Map<java.lang.String, java.util.List<com.amazonaws.dynamodb.v20120810.WriteRequest>>",
);
static BATCH_WRITE_ITEM: &[(&str, &Shape)] = &[
    ("RequestItems", &WRITE_REQUEST_ITEMS),
    ("ReturnConsumedCapacity", &STRING),
    ("ReturnItemCollectionMetrics", &STRING),
];
const BATCH_WRITE_ITEM_MEMBERS: &[&str] = &[
    "requestItems",
    "returnConsumedCapacity",
    "returnItemCollectionMetrics",
];

static KEYS_AND_ATTRIBUTES: Shape = Shape::Struct(
    "KeysAndAttributes",
    &[
        ("Keys", &ATTRIBUTE_MAP_LIST),
        ("AttributesToGet", &STRING_LIST),
        ("ConsistentRead", &BOOLEAN),
        ("ProjectionExpression", &STRING),
        ("ExpressionAttributeNames", &STRING_MAP),
    ],
);
static GET_REQUEST_ITEMS: Shape = Shape::Map(
    &KEYS_AND_ATTRIBUTES,
    "java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.KeysAndAttributes>",
);
static BATCH_GET_ITEM: &[(&str, &Shape)] = &[
    ("RequestItems", &GET_REQUEST_ITEMS),
    ("ReturnConsumedCapacity", &STRING),
];
const BATCH_GET_ITEM_MEMBERS: &[&str] = &["requestItems", "returnConsumedCapacity"];

const MAX_BATCH_WRITES: usize = 25;
const MAX_BATCH_KEYS: usize = 100;
/// DynamoDB stops a BatchGetItem response at 16 MB and returns the rest as unprocessed.
const MAX_BATCH_GET_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
const MAP_KEYS_CONSTRAINT: &str = "Map keys must satisfy constraint: [Member must have length less than or equal to 255, Member must have length greater than or equal to 3, Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]";

fn valid_batch_table_name(name: &str) -> bool {
    let length = name.chars().count();
    (3..=255).contains(&length) && is_valid_name(name) || name.starts_with("arn:")
}

/// The request map as DynamoDB echoes it in constraint messages: Java's
/// `Map.toString` (`{table=[...]}`). The elements are JSON; DynamoDB prints its
/// own objects there, which no client can rely on.
fn java_map_dump(tables: &Object) -> String {
    let entries: Vec<String> = tables
        .iter()
        .map(|(name, value)| {
            let inner = match value {
                Value::Array(elements) => format!(
                    "[{}]",
                    elements
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                other => other.to_string(),
            };
            format!("{name}={inner}")
        })
        .collect();
    format!("{{{}}}", entries.join(", "))
}

/// One write of a BatchWriteItem request.
enum BatchWrite {
    Put(Item),
    Delete(Item),
}

/// A checked BatchWriteItem request, before its tables are known.
struct BatchWriteItemRequest {
    capacity: ReturnCapacity,
    /// `ReturnItemCollectionMetrics` is SIZE.
    collection_metrics: bool,
    /// Each table's name and writes, in request order.
    tables: Vec<(String, Vec<BatchWrite>)>,
}

/// One table's share of a BatchWriteItem, keyed and ready to write.
struct TableWrites {
    table: Arc<TableDefinition>,
    writes: Vec<data::BatchWrite>,
    /// Each write's new item size (0 for a delete), for the write units.
    new_sizes_bytes: Vec<u32>,
    /// Each write's item key, for `ItemCollectionMetrics`.
    keys: Vec<Item>,
}

/// What one table's share of a BatchWriteItem consumed and reports.
struct TableWritten {
    name: String,
    /// Write units of the items.
    units: f64,
    /// Write units of local index entries, by index.
    index_units: super::capacity::IndexUnits,
    /// `ItemCollectionMetrics` of each write (tables with local indexes).
    collections: Vec<Value>,
}

/// BatchWriteItem.
pub(crate) async fn batch_write_item(api: &Api, input: &Object) -> ApiResult<Value> {
    let request = parse_batch_write_item(input)?;
    let resolved = resolve_batch_write_item(api, request.tables).await?;
    let written = execute_batch_writes(api, resolved).await?;
    Ok(batch_write_response(
        request.capacity,
        request.collection_metrics,
        &written,
    ))
}

/// The checks DynamoDB makes of a BatchWriteItem before it looks at any table.
fn parse_batch_write_item(input: &Object) -> ApiResult<BatchWriteItemRequest> {
    check_members(BATCH_WRITE_ITEM, input)?;
    let capacity = check_batch_write_constraints(input)?;
    let tables = input::object(input, "RequestItems")
        .cloned()
        .unwrap_or_default();
    if tables.is_empty() {
        return Err(ApiError::validation(
            "The requestItems parameter is required for BatchWriteItem",
        ));
    }
    let total: usize = tables
        .values()
        .filter_map(Value::as_array)
        .map(Vec::len)
        .sum();
    if total > MAX_BATCH_WRITES {
        return Err(ApiError::validation(
            "Too many items requested for the BatchWriteItem call",
        ));
    }
    let mut requests: Vec<(String, Vec<BatchWrite>)> = Vec::new();
    for (table, writes) in &tables {
        requests.push((table.clone(), parse_batch_writes(writes)?));
    }
    Ok(BatchWriteItemRequest {
        capacity,
        collection_metrics: input::string(input, "ReturnItemCollectionMetrics") == Some("SIZE"),
        tables: requests,
    })
}

/// BatchWriteItem's model constraints, all reported at once; returns ReturnConsumedCapacity.
fn check_batch_write_constraints(input: &Object) -> ApiResult<ReturnCapacity> {
    let mut violations = Violations::new(BATCH_WRITE_ITEM_MEMBERS);
    match input::object(input, "RequestItems") {
        None => violations.not_null("requestItems", "requestItems"),
        Some(tables) => check_write_request_items(&mut violations, tables),
    }
    let capacity = ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    if let Some(metrics) = input::string(input, "ReturnItemCollectionMetrics")
        && metrics != "SIZE"
        && metrics != "NONE"
    {
        violations.add(
            "returnItemCollectionMetrics",
            Shown::Text(metrics),
            "returnItemCollectionMetrics",
            &enum_constraint(&["SIZE", "NONE"]),
        );
    }
    violations.into_result()?;
    Ok(capacity)
}

/// RequestItems' violations: table names, write counts, puts and deletes missing item or key.
fn check_write_request_items(violations: &mut Violations, tables: &Object) {
    let dump = java_map_dump(tables);
    if tables.keys().any(|name| !valid_batch_table_name(name)) {
        violations.add(
            "requestItems",
            Shown::Text(&dump),
            "requestItems",
            MAP_KEYS_CONSTRAINT,
        );
    }
    if tables.values().any(|writes| {
        writes
            .as_array()
            .is_none_or(|w| w.is_empty() || w.len() > MAX_BATCH_WRITES)
    }) {
        violations.add(
            "requestItems",
            Shown::Text(&dump),
            "requestItems",
            "Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
        );
    }
    for (table, writes) in tables {
        for (i, write) in writes.as_array().into_iter().flatten().enumerate() {
            let Some(write) = write.as_object() else {
                continue;
            };
            let at = |rest: &str| format!("requestItems.{table}.member.{}.member.{rest}", i + 1);
            if let Some(put) = input::object(write, "PutRequest")
                && !input::has(put, "Item")
            {
                violations.not_null("requestItems", &at("putRequest.item"));
            }
            if let Some(delete) = input::object(write, "DeleteRequest")
                && !input::has(delete, "Key")
            {
                violations.not_null("requestItems", &at("deleteRequest.key"));
            }
        }
    }
}

/// One table's writes, each exactly one put or delete, its item within DynamoDB's size limit.
fn parse_batch_writes(writes: &Value) -> ApiResult<Vec<BatchWrite>> {
    let mut parsed = Vec::new();
    for write in writes.as_array().into_iter().flatten() {
        let empty = Object::new();
        let write = write.as_object().unwrap_or(&empty);
        let put = input::object(write, "PutRequest");
        let delete = input::object(write, "DeleteRequest");
        match (put, delete) {
            (Some(put), None) => {
                let item = decode_item(
                    input::value(put, "Item").unwrap_or(&Value::Null),
                    Layer::Older,
                )?;
                if item_size_bytes(&item) > atoll_model::MAX_ITEM_SIZE_BYTES {
                    return Err(ApiError::item_too_large());
                }
                parsed.push(BatchWrite::Put(item));
            }
            (None, Some(delete)) => {
                parsed.push(BatchWrite::Delete(decode_map(
                    input::value(delete, "Key").unwrap_or(&Value::Null),
                    Layer::Older,
                )?));
            }
            _ => {
                return Err(ApiError::validation(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                ));
            }
        }
    }
    Ok(parsed)
}

/// Looks up every table first, then checks each table's keys against its schema.
async fn resolve_batch_write_item(
    api: &Api,
    requests: Vec<(String, Vec<BatchWrite>)>,
) -> ApiResult<Vec<TableWrites>> {
    let mut tables = Vec::new();
    for (name, writes) in requests {
        let table = item_table(api, &name).await?;
        tables.push((table, writes));
    }
    let mut resolved = Vec::with_capacity(tables.len());
    for (table, writes) in tables {
        resolved.push(locate_batch_writes(table, &writes)?);
    }
    Ok(resolved)
}

/// Keys one table's writes, refusing a key that does not fit the schema or comes twice.
fn locate_batch_writes(
    table: Arc<TableDefinition>,
    writes: &[BatchWrite],
) -> ApiResult<TableWrites> {
    let mut seen = HashSet::new();
    let mut share = Vec::with_capacity(writes.len());
    let mut new_sizes_bytes = Vec::with_capacity(writes.len());
    let mut keys = Vec::with_capacity(writes.len());
    for write in writes {
        keys.push(match write {
            BatchWrite::Put(item) => table.key_schema.key_of(item),
            BatchWrite::Delete(key) => key.clone(),
        });
        let (key, new_size_bytes) = match write {
            BatchWrite::Put(item) => {
                check_batch_item_key(&table.key_schema, item)?;
                super::index_writes::check_index_keys(&table, item)?;
                (
                    locate(&table.key_schema, item)?,
                    item_size_bytes(item) as u32,
                )
            }
            BatchWrite::Delete(key) => {
                check_key(&table.key_schema, key)?;
                (locate(&table.key_schema, key)?, 0)
            }
        };
        if !seen.insert(key.clone()) {
            return Err(ApiError::validation(
                "Provided list of item keys contains duplicates",
            ));
        }
        share.push(match write {
            BatchWrite::Put(item) => data::BatchWrite::put(key, item, new_size_bytes),
            BatchWrite::Delete(_) => data::BatchWrite::delete(key),
        });
        new_sizes_bytes.push(new_size_bytes);
    }
    Ok(TableWrites {
        table,
        writes: share,
        new_sizes_bytes,
        keys,
    })
}

/// Writes every table's share at once; returns what each consumed (write
/// units on max(old, new) size) and its item collections' sizes.
async fn execute_batch_writes(api: &Api, shares: Vec<TableWrites>) -> ApiResult<Vec<TableWritten>> {
    // Tables replicate independently; writing them together lets their
    // log entries share the node's group commit.
    let writes = shares.into_iter().map(
        |TableWrites {
             table,
             writes,
             new_sizes_bytes,
             keys,
         }| async move {
            let outcome = api.data.write_batch(&table, writes).await?;
            let units: f64 = new_sizes_bytes
                .iter()
                .zip(outcome.old_sizes_bytes.iter().chain(std::iter::repeat(&0)))
                .map(|(new, old)| write_units((*new).max(*old) as usize))
                .sum();
            let index_writes: Vec<(String, u32)> =
                outcome.index_writes.into_iter().flatten().collect();
            let collections = keys
                .iter()
                .zip(&outcome.collection_sizes_bytes)
                .filter_map(|(key, size)| {
                    let size = (*size)?;
                    Some(super::index_writes::item_collection_metrics(
                        &table, key, size,
                    ))
                })
                .collect();
            Ok::<_, ApiError>(TableWritten {
                name: table.name.clone(),
                units,
                index_units: super::index_writes::index_write_units(&table, &index_writes),
                collections,
            })
        },
    );
    futures_util::future::join_all(writes)
        .await
        .into_iter()
        .collect()
}

/// BatchWriteItem's answer: nothing left unprocessed, the capacity and the
/// item collection metrics asked for.
fn batch_write_response(
    capacity: ReturnCapacity,
    collection_metrics: bool,
    written: &[TableWritten],
) -> Value {
    let mut response = Map::new();
    response.insert("UnprocessedItems".into(), json!({}));
    let consumed: Vec<Value> = written
        .iter()
        .filter_map(|t| capacity.report_indexed(&t.name, t.units, &t.index_units))
        .collect();
    if capacity != ReturnCapacity::None {
        response.insert("ConsumedCapacity".into(), Value::Array(consumed));
    }
    let collections: Map<String, Value> = written
        .iter()
        .filter(|t| !t.collections.is_empty())
        .map(|t| (t.name.clone(), Value::Array(t.collections.clone())))
        .collect();
    if collection_metrics && !collections.is_empty() {
        response.insert("ItemCollectionMetrics".into(), Value::Object(collections));
    }
    Value::Object(response)
}

/// A checked BatchGetItem request, before its tables are known.
struct BatchGetItemRequest {
    capacity: ReturnCapacity,
    tables: Vec<BatchGetTableRequest>,
}

/// One table's share of a BatchGetItem request.
struct BatchGetTableRequest {
    name: String,
    keys: Vec<Item>,
    projection: Option<Projection>,
    expressions: Expressions,
    consistent: bool,
    /// The table's request as sent: keys left unprocessed are returned in it.
    raw: Object,
}

/// BatchGetItem.
pub(crate) async fn batch_get_item(api: &Api, input: &Object) -> ApiResult<Value> {
    let request = parse_batch_get_item(api, input)?;
    let resolved = resolve_batch_get_item(api, request.tables).await?;
    execute_batch_get_item(api, request.capacity, resolved).await
}

/// The checks DynamoDB makes of a BatchGetItem before it looks at any table.
fn parse_batch_get_item(api: &Api, input: &Object) -> ApiResult<BatchGetItemRequest> {
    check_members(BATCH_GET_ITEM, input)?;
    let capacity = check_batch_get_constraints(input)?;
    let tables = input::object(input, "RequestItems")
        .cloned()
        .unwrap_or_default();
    check_batch_get_key_counts(&tables)?;
    let mut requests = Vec::new();
    for (name, request) in &tables {
        requests.push(parse_batch_get_table(api, name, request)?);
    }
    Ok(BatchGetItemRequest {
        capacity,
        tables: requests,
    })
}

/// BatchGetItem's model constraints, all reported at once; returns ReturnConsumedCapacity.
fn check_batch_get_constraints(input: &Object) -> ApiResult<ReturnCapacity> {
    let mut violations = Violations::new(BATCH_GET_ITEM_MEMBERS);
    let request_items = input::object(input, "RequestItems");
    match request_items {
        None => violations.not_null("requestItems", "requestItems"),
        Some(tables) => {
            if tables.keys().any(|name| !valid_batch_table_name(name)) {
                let dump = java_map_dump(tables);
                violations.add(
                    "requestItems",
                    Shown::Text(&dump),
                    "requestItems",
                    MAP_KEYS_CONSTRAINT,
                );
            }
        }
    }
    let capacity = ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    violations.into_result()?;
    Ok(capacity)
}

/// Refuses a request with no tables, a table with no keys or too many, or too many keys in all.
fn check_batch_get_key_counts(tables: &Object) -> ApiResult<()> {
    if tables.is_empty() {
        return Err(ApiError::validation(
            "The requestItems parameter is required for BatchGetItem",
        ));
    }
    for (table, request) in tables {
        let keys = request.as_object().and_then(|r| input::list(r, "Keys"));
        match keys {
            None => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value null at 'requestItems.{table}.member.keys' failed to satisfy constraint: Member must not be null"
                )));
            }
            Some(keys) if keys.is_empty() => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value at 'RequestItems.{table}.member.Keys' failed to satisfy constraint: Member must have length greater than or equal to 1"
                )));
            }
            Some(keys) if keys.len() > MAX_BATCH_KEYS => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value at 'RequestItems.{table}.member.Keys' failed to satisfy constraint: Member must have length less than or equal to 100"
                )));
            }
            Some(_) => {}
        }
    }
    let total: usize = tables
        .values()
        .filter_map(|r| r.as_object().and_then(|r| input::list(r, "Keys")))
        .map(Vec::len)
        .sum();
    if total > MAX_BATCH_KEYS {
        return Err(ApiError::validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    Ok(())
}

/// One table's keys (no key twice) and projection, read and checked without the table.
fn parse_batch_get_table(
    api: &Api,
    name: &str,
    request: &Value,
) -> ApiResult<BatchGetTableRequest> {
    let empty = Object::new();
    let request = request.as_object().unwrap_or(&empty);
    super::check_expression_parameters(
        request,
        &["AttributesToGet"],
        &["ProjectionExpression"],
        None,
        true,
    )?;
    let mut keys: Vec<Item> = Vec::new();
    for key in input::list(request, "Keys").into_iter().flatten() {
        let key = decode_map(key, Layer::Current { enveloped: false })?;
        if keys.contains(&key) {
            return Err(ApiError::validation(
                "Provided list of item keys contains duplicates",
            ));
        }
        keys.push(key);
    }
    let (projection, expressions) = read_projection(api, request)?;
    Ok(BatchGetTableRequest {
        name: name.to_string(),
        keys,
        projection,
        expressions,
        consistent: input::boolean(request, "ConsistentRead").unwrap_or(false),
        raw: request.clone(),
    })
}

/// Looks up each table in turn and checks its keys and projection against its schema.
async fn resolve_batch_get_item(
    api: &Api,
    requests: Vec<BatchGetTableRequest>,
) -> ApiResult<Vec<(Arc<TableDefinition>, BatchGetTableRequest)>> {
    let mut resolved = Vec::new();
    for request in requests {
        let table = item_table(api, &request.name).await?;
        for key in &request.keys {
            check_key(&table.key_schema, key)?;
        }
        check_projection_keys(request.projection.as_ref(), &request.expressions, &table)?;
        resolved.push((table, request));
    }
    Ok(resolved)
}

/// Reads the keys table by table, leaving unprocessed those past the response's size limit.
async fn execute_batch_get_item(
    api: &Api,
    capacity: ReturnCapacity,
    resolved: Vec<(Arc<TableDefinition>, BatchGetTableRequest)>,
) -> ApiResult<Value> {
    let mut responses = Map::new();
    let mut unprocessed = Map::new();
    let mut consumed = Vec::new();
    let mut response_bytes = 0usize;
    for (table, request) in resolved {
        let mut found = Vec::new();
        let mut left: Vec<Value> = Vec::new();
        let mut units = 0.0;
        for key in &request.keys {
            if response_bytes > MAX_BATCH_GET_RESPONSE_BYTES {
                left.push(encode_map(key));
                continue;
            }
            let item = api
                .data
                .get_item(&table, &locate(&table.key_schema, key)?, request.consistent)
                .await?;
            let size_bytes = item.as_ref().map_or(0, item_size_bytes);
            units += read_units(size_bytes, request.consistent);
            response_bytes += size_bytes;
            if let Some(item) = item {
                let item =
                    apply_projection(item, request.projection.as_ref(), &request.expressions)?;
                found.push(encode_map(&item));
            }
        }
        let response_name = resolve_table_name(&request.name).to_string();
        responses.insert(request.name.clone(), Value::Array(found));
        if !left.is_empty() {
            let mut rest = request.raw.clone();
            rest.insert("Keys".into(), Value::Array(left));
            unprocessed.insert(request.name.clone(), Value::Object(rest));
        }
        if let Some(report) = capacity.report(&response_name, units) {
            consumed.push(report);
        }
    }
    let mut response = Map::new();
    response.insert("Responses".into(), Value::Object(responses));
    response.insert("UnprocessedKeys".into(), Value::Object(unprocessed));
    if capacity != ReturnCapacity::None {
        response.insert("ConsumedCapacity".into(), Value::Array(consumed));
    }
    Ok(Value::Object(response))
}
