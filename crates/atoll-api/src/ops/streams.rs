//! The DynamoDB Streams operations on the API port (`DynamoDBStreams_20120810.*`):
//! ListStreams, DescribeStream, GetShardIterator and GetRecords. Streams
//! are named by their table and label; shards and records come from the
//! table's partitions through the data plane (docs/research/streams-ttl.md
//! holds DynamoDB's formats, texts and order of checks).

use std::sync::Arc;

use atoll_cluster::data::StreamShard;
use atoll_model::table::TableDefinition;
use serde_json::{Value, json};

use crate::constraints::{Shown, Violations, enum_constraint, is_valid_name};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{self, Object};
use crate::ops::describe::{label_ms, now_ms};
use crate::shape::common::{LONG, STRING};
use crate::shape::{Shape, check_members};
use crate::{Api, RequestContext};

mod reads;

pub(crate) use reads::{get_records, get_shard_iterator};

static LIST_STREAMS: &[(&str, &Shape)] = &[
    ("TableName", &STRING),
    ("Limit", &LONG),
    ("ExclusiveStartStreamArn", &STRING),
];
static SHARD_FILTER: Shape =
    Shape::Struct("ShardFilter", &[("Type", &STRING), ("ShardId", &STRING)]);
static DESCRIBE_STREAM: &[(&str, &Shape)] = &[
    ("StreamArn", &STRING),
    ("Limit", &LONG),
    ("ExclusiveStartShardId", &STRING),
    ("ShardFilter", &SHARD_FILTER),
];

/// A stream: its table, label and settings.
struct Stream {
    table: Arc<TableDefinition>,
    arn: String,
    label: String,
    view_type: String,
    /// Records are written to it now.
    enabled: bool,
}

// ---------------------------------------------------------------------------
// Member checks
// ---------------------------------------------------------------------------

/// Length constraints of a string member, DynamoDB's wording.
fn check_length(
    violations: &mut Violations,
    member: &str,
    value: Option<&str>,
    (min, max): (usize, usize),
) {
    let Some(value) = value else { return };
    let length = value.chars().count();
    if length < min {
        let constraint = format!("Member must have length greater than or equal to {min}");
        violations.add(member, Shown::Text(value), member, &constraint);
    }
    if length > max {
        let constraint = format!("Member must have length less than or equal to {max}");
        violations.add(member, Shown::Text(value), member, &constraint);
    }
}

/// Range constraints of a `Limit`.
fn check_limit(violations: &mut Violations, limit: Option<i64>, max: i64) {
    let Some(limit) = limit else { return };
    if limit < 1 {
        let shown = limit.to_string();
        let constraint = "Member must have value greater than or equal to 1";
        violations.add("limit", Shown::Text(&shown), "limit", constraint);
    }
    if limit > max {
        let shown = limit.to_string();
        let constraint = format!("Member must have value less than or equal to {max}");
        violations.add("limit", Shown::Text(&shown), "limit", &constraint);
    }
}

fn stream_not_found(arn: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("Requested resource not found: Stream: {arn} not found"),
    )
}

fn trimmed() -> ApiError {
    ApiError::new(
        ErrorKind::TrimmedDataAccess,
        "The data you are trying to access has been trimmed",
    )
}

fn shard_not_found() -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        "Requested resource not found: Shard does not exist",
    )
}

// ---------------------------------------------------------------------------
// Streams by ARN
// ---------------------------------------------------------------------------

/// The table name and label a stream ARN names, if it is one of this
/// account and region's; `Err` when it is not a stream ARN at all.
fn parse_stream_arn<'a>(
    context: &RequestContext,
    arn: &'a str,
) -> ApiResult<Option<(&'a str, &'a str)>> {
    let invalid = || ApiError::validation("Invalid StreamArn");
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_mark, _partition, service, region, account, resource] = parts.as_slice() else {
        return Err(invalid());
    };
    if *arn_mark != "arn" || *service != "dynamodb" {
        return Err(invalid());
    }
    let Some((table, label)) = resource
        .strip_prefix("table/")
        .and_then(|rest| rest.split_once("/stream/"))
    else {
        return Err(invalid());
    };
    if table.is_empty() || label.is_empty() {
        return Err(invalid());
    }
    let ours = *region == context.region && *account == context.account_id;
    Ok(ours.then_some((table, label)))
}

/// The stream `arn` names, if it is readable: the table's latest, or an
/// earlier one turned off less than the retention ago.
async fn resolve_stream(api: &Api, context: &RequestContext, arn: &str) -> ApiResult<Stream> {
    let Some((table_name, label)) = parse_stream_arn(context, arn)? else {
        return Err(stream_not_found(arn));
    };
    let table = api
        .cluster
        .catalog()
        .table_or_catch_up(table_name)
        .await
        .filter(|t| t.index_of.is_none())
        .ok_or_else(|| stream_not_found(arn))?;
    streams_of(&table, context, api.config.stream_retention_ms)
        .into_iter()
        .find(|stream| stream.label == label)
        .ok_or_else(|| stream_not_found(arn))
}

/// The readable streams of `table`: earlier ones still within their
/// retention (`retention_ms` after they were turned off), then its latest.
fn streams_of(
    table: &Arc<TableDefinition>,
    context: &RequestContext,
    retention_ms: u64,
) -> Vec<Stream> {
    let now = now_ms();
    let arn = |label: &str| format!("{}/stream/{label}", context.table_arn(&table.name));
    let mut streams: Vec<Stream> = table
        .past_streams
        .iter()
        .filter(|past| now.saturating_sub(past.closed_ms) < retention_ms)
        .map(|past| Stream {
            table: table.clone(),
            arn: arn(&past.label),
            label: past.label.clone(),
            view_type: past.view_type.clone(),
            enabled: false,
        })
        .collect();
    if let Some(latest) = &table.stream
        && let Some(label) = &latest.label
    {
        let closed_long_ago = table
            .stream_closed_ms
            .is_some_and(|closed| now.saturating_sub(closed) >= retention_ms);
        if latest.enabled || !closed_long_ago {
            streams.push(Stream {
                table: table.clone(),
                arn: arn(label),
                label: label.clone(),
                view_type: latest.view_type.clone().unwrap_or_default(),
                enabled: latest.enabled,
            });
        }
    }
    streams
}

/// The shards of `stream`, in shard-id order.
async fn shards_of(api: &Api, stream: &Stream) -> ApiResult<Vec<StreamShard>> {
    let mut shards: Vec<StreamShard> = api
        .data
        .stream_shards(&stream.table)
        .await?
        .into_iter()
        .filter(|s| s.shard.label == stream.label)
        .collect();
    shards.sort_by_key(StreamShard::shard_id);
    Ok(shards)
}

// ---------------------------------------------------------------------------
// ListStreams
// ---------------------------------------------------------------------------

/// ListStreams.
pub(crate) async fn list_streams(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    check_members(LIST_STREAMS, input)?;
    let table_name = input::string(input, "TableName");
    let limit = input::long(input, "Limit");
    let start = input::string(input, "ExclusiveStartStreamArn");
    let mut violations = Violations::new(&["tableName", "limit", "exclusiveStartStreamArn"]);
    if let Some(name) = table_name {
        check_length(&mut violations, "tableName", Some(name), (3, 255));
        if !is_valid_name(name) {
            violations.add(
                "tableName",
                Shown::Text(name),
                "tableName",
                crate::constraints::NAME_PATTERN_CONSTRAINT,
            );
        }
    }
    check_limit(&mut violations, limit, 100);
    check_length(
        &mut violations,
        "exclusiveStartStreamArn",
        start,
        (37, 1024),
    );
    violations.into_result()?;
    if let Some(start) = start {
        parse_stream_arn(context, start)?;
    }
    let limit = limit.unwrap_or(100).clamp(1, 100) as usize;
    let names = match table_name {
        Some(name) => vec![name.to_string()],
        None => api.cluster.catalog().table_names_caught_up().await,
    };
    let mut entries: Vec<(String, String, String)> = Vec::new();
    for name in names {
        let Some(table) = api.cluster.catalog().table(&name) else {
            continue;
        };
        if table.index_of.is_some() {
            continue;
        }
        for stream in streams_of(&table, context, api.config.stream_retention_ms) {
            entries.push((stream.arn, table.name.clone(), stream.label));
        }
    }
    entries.sort();
    entries.retain(|(arn, _, _)| start.is_none_or(|start| arn.as_str() > start));
    let more = entries.len() > limit;
    entries.truncate(limit);
    let streams: Vec<Value> = entries
        .iter()
        .map(|(arn, table, label)| json!({"StreamArn": arn, "TableName": table, "StreamLabel": label}))
        .collect();
    let mut output = json!({"Streams": streams});
    if more && let Some((arn, _, _)) = entries.last() {
        output["LastEvaluatedStreamArn"] = json!(arn);
    }
    Ok(output)
}

// ---------------------------------------------------------------------------
// DescribeStream
// ---------------------------------------------------------------------------

/// DescribeStream.
pub(crate) async fn describe_stream(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    check_members(DESCRIBE_STREAM, input)?;
    let arn = input::string(input, "StreamArn");
    let limit = input::long(input, "Limit");
    let start = input::string(input, "ExclusiveStartShardId");
    let filter = input::object(input, "ShardFilter");
    let filter_type = filter.and_then(|f| input::string(f, "Type"));
    let filter_shard = filter.and_then(|f| input::string(f, "ShardId"));
    let mut violations =
        Violations::new(&["streamArn", "limit", "exclusiveStartShardId", "shardFilter"]);
    match arn {
        None => violations.not_null("streamArn", "streamArn"),
        Some(arn) => check_length(&mut violations, "streamArn", Some(arn), (37, 1024)),
    }
    check_limit(&mut violations, limit, 100);
    check_length(&mut violations, "exclusiveStartShardId", start, (28, 65));
    if filter.is_some() {
        match filter_type {
            None => violations.not_null("shardFilter", "shardFilter.type"),
            Some(t) if t != "CHILD_SHARDS" => violations.add(
                "shardFilter",
                Shown::Text(t),
                "shardFilter.type",
                &enum_constraint(&["CHILD_SHARDS"]),
            ),
            Some(_) => {}
        }
        match filter_shard {
            None => violations.not_null("shardFilter", "shardFilter.shardId"),
            Some(id) => check_length(&mut violations, "shardFilter.shardId", Some(id), (28, 65)),
        }
    }
    violations.into_result()?;
    let arn = arn.unwrap_or_default();
    let stream = resolve_stream(api, context, arn).await?;
    let shards = shards_of(api, &stream).await?;
    let ids: Vec<String> = shards.iter().map(StreamShard::shard_id).collect();
    let parent_id = |shard: &StreamShard| {
        let parent = shard.shard.parent?;
        shards
            .iter()
            .find(|s| s.group == parent.group && s.shard.number == parent.number)
            .map(StreamShard::shard_id)
    };
    let limit = limit.unwrap_or(100).clamp(1, 100) as usize;
    let mut listed: Vec<Value> = Vec::new();
    let mut last_id = None;
    let mut more = false;
    for (shard, id) in shards.iter().zip(&ids) {
        if start.is_some_and(|start| id.as_str() <= start) {
            continue;
        }
        let parent = parent_id(shard);
        if filter_shard.is_some() && parent.as_deref() != filter_shard {
            continue;
        }
        if listed.len() == limit {
            more = true;
            break;
        }
        listed.push(shard_description(shard, id, parent));
        last_id = Some(id.clone());
    }
    let key_schema = {
        let keys = &stream.table.key_schema;
        let mut schema = vec![json!({"AttributeName": keys.partition_key.name, "KeyType": "HASH"})];
        if let Some(sort) = &keys.sort_key {
            schema.push(json!({"AttributeName": sort.name, "KeyType": "RANGE"}));
        }
        schema
    };
    let mut description = json!({
        "StreamArn": stream.arn,
        "StreamLabel": stream.label,
        "StreamStatus": if stream.enabled { "ENABLED" } else { "DISABLED" },
        "StreamViewType": stream.view_type,
        "CreationRequestDateTime": label_ms(&stream.label).map_or(0.0, |ms| ms as f64 / 1000.0),
        "TableName": stream.table.name,
        "KeySchema": key_schema,
        "Shards": listed,
    });
    if more && let Some(last) = last_id {
        description["LastEvaluatedShardId"] = json!(last);
    }
    Ok(json!({"StreamDescription": description}))
}

fn shard_description(shard: &StreamShard, id: &str, parent: Option<String>) -> Value {
    let mut range = json!({
        "StartingSequenceNumber": shard.shard.starting_sequence().to_wire(),
    });
    if let Some(end) = shard.shard.ending_sequence() {
        range["EndingSequenceNumber"] = json!(end.to_wire());
    }
    let mut described = json!({"ShardId": id, "SequenceNumberRange": range});
    if let Some(parent) = parent {
        described["ParentShardId"] = json!(parent);
    }
    described
}
