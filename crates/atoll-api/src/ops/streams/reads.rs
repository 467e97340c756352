//! GetShardIterator and GetRecords: where a consumer starts in a shard,
//! and the records it reads from there.

use atoll_cluster::data::{SequenceNumber, StreamRecord, StreamShard};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{check_length, check_limit, resolve_stream, shard_not_found, shards_of, trimmed};
use crate::attribute::encode_map;
use crate::constraints::{Shown, Violations, enum_constraint};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{self, Object};
use crate::ops::describe::now_ms;
use crate::shape::common::{LONG, STRING};
use crate::shape::{Shape, check_members};
use crate::{Api, RequestContext};

/// A shard iterator expires this long after it was made (DynamoDB's 15 minutes).
const ITERATOR_LIFETIME_MS: u64 = 15 * 60 * 1000;
/// Most records GetRecords returns, and its default.
const MAX_RECORDS: i64 = 1000;
/// GetRecords stops after the record that passes this many bytes.
const MAX_RECORDS_BYTES: u64 = 1024 * 1024;
const ITERATOR_TYPES: &[&str] = &[
    "TRIM_HORIZON",
    "LATEST",
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
];

static GET_SHARD_ITERATOR: &[(&str, &Shape)] = &[
    ("StreamArn", &STRING),
    ("ShardId", &STRING),
    ("ShardIteratorType", &STRING),
    ("SequenceNumber", &STRING),
];
static GET_RECORDS: &[(&str, &Shape)] = &[("ShardIterator", &STRING), ("Limit", &LONG)];

/// Where a shard iterator points: a shard (by its partition's group and
/// number) and the first sequence number to read; when it was made.
#[derive(Serialize, Deserialize)]
struct IteratorPosition {
    group: u64,
    number: u32,
    log_index: u64,
    sequence: u32,
    issued_ms: u64,
}

// ---------------------------------------------------------------------------
// GetShardIterator
// ---------------------------------------------------------------------------

/// GetShardIterator.
pub(crate) async fn get_shard_iterator(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    check_members(GET_SHARD_ITERATOR, input)?;
    let arn = input::string(input, "StreamArn");
    let shard_id = input::string(input, "ShardId");
    let kind = input::string(input, "ShardIteratorType");
    let sequence = input::string(input, "SequenceNumber");
    let mut violations = Violations::new(&[
        "streamArn",
        "shardId",
        "shardIteratorType",
        "sequenceNumber",
    ]);
    match arn {
        None => violations.not_null("streamArn", "streamArn"),
        Some(arn) => check_length(&mut violations, "streamArn", Some(arn), (37, 1024)),
    }
    match shard_id {
        None => violations.not_null("shardId", "shardId"),
        Some(id) => check_length(&mut violations, "shardId", Some(id), (28, 65)),
    }
    match kind {
        None => violations.not_null("shardIteratorType", "shardIteratorType"),
        Some(kind) if !ITERATOR_TYPES.contains(&kind) => violations.add(
            "shardIteratorType",
            Shown::Text(kind),
            "shardIteratorType",
            &enum_constraint(ITERATOR_TYPES),
        ),
        Some(_) => {}
    }
    check_length(&mut violations, "sequenceNumber", sequence, (21, 40));
    violations.into_result()?;
    let (arn, shard_id, kind) = (
        arn.unwrap_or_default(),
        shard_id.unwrap_or_default(),
        kind.unwrap_or_default(),
    );
    let at_sequence = matches!(kind, "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER");
    match (at_sequence, sequence) {
        (true, None) => {
            return Err(ApiError::validation(format!(
                "Must specify a sequence number for iterator type: {kind}"
            )));
        }
        (false, Some(_)) => {
            return Err(ApiError::validation(format!(
                "Sequence number must not be specified for iterator type: {kind}"
            )));
        }
        _ => {}
    }
    let stream = resolve_stream(api, context, arn).await?;
    let shard = shards_of(api, &stream)
        .await?
        .into_iter()
        .find(|s| s.shard_id() == shard_id)
        .ok_or_else(shard_not_found)?;
    let from = match kind {
        "TRIM_HORIZON" => shard.shard.trim_horizon(),
        "LATEST" => match api.data.last_stream_sequence(&shard).await? {
            Some(last) => last.next(),
            None => shard.shard.trim_horizon(),
        },
        _ => {
            let given = sequence.unwrap_or_default();
            let parsed = SequenceNumber::parse(given)
                .ok_or_else(|| ApiError::validation(format!("Invalid SequenceNumber: {given}")))?;
            let outside = parsed < shard.shard.starting_sequence()
                || shard
                    .shard
                    .ending_sequence()
                    .is_some_and(|end| parsed > end);
            if outside {
                return Err(ApiError::validation(format!(
                    "Invalid SequenceNumber {given} for shard {shard_id}"
                )));
            }
            if parsed < shard.shard.trim_horizon() {
                return Err(trimmed());
            }
            match kind {
                "AFTER_SEQUENCE_NUMBER" => parsed.next(),
                _ => parsed,
            }
        }
    };
    Ok(json!({"ShardIterator": encode_iterator(&stream.arn, &shard, from)?}))
}

/// DynamoDB's shape of an iterator: the stream ARN, `|1|`, then an opaque
/// base64 position.
fn encode_iterator(arn: &str, shard: &StreamShard, from: SequenceNumber) -> ApiResult<String> {
    let position = IteratorPosition {
        group: shard.group,
        number: shard.shard.number,
        log_index: from.log_index,
        sequence: from.sequence,
        issued_ms: now_ms(),
    };
    let bytes = serde_json::to_vec(&position)
        .map_err(|e| ApiError::internal(format!("encoding an iterator: {e}")))?;
    let payload = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(format!("{arn}|1|{payload}"))
}

/// The stream ARN and position of an iterator Atoll made.
fn decode_iterator(iterator: &str) -> Option<(&str, IteratorPosition)> {
    let (rest, payload) = iterator.rsplit_once('|')?;
    let arn = rest.strip_suffix("|1")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()?;
    let position = serde_json::from_slice(&bytes).ok()?;
    Some((arn, position))
}

// ---------------------------------------------------------------------------
// GetRecords
// ---------------------------------------------------------------------------

/// GetRecords.
pub(crate) async fn get_records(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    check_members(GET_RECORDS, input)?;
    let iterator = input::string(input, "ShardIterator");
    let limit = input::long(input, "Limit");
    let mut violations = Violations::new(&["shardIterator", "limit"]);
    match iterator {
        None => violations.not_null("shardIterator", "shardIterator"),
        Some(it) => check_length(&mut violations, "shardIterator", Some(it), (1, 2048)),
    }
    check_limit(&mut violations, limit, MAX_RECORDS);
    violations.into_result()?;
    let iterator = iterator.unwrap_or_default();
    let (arn, position) =
        decode_iterator(iterator).ok_or_else(|| ApiError::validation("Invalid ShardIterator"))?;
    let now = now_ms();
    if now.saturating_sub(position.issued_ms) > ITERATOR_LIFETIME_MS {
        return Err(ApiError::new(
            ErrorKind::ExpiredIterator,
            "Iterator expired. The iterator was created more than 15 minutes ago",
        ));
    }
    let stream = resolve_stream(api, context, arn).await?;
    let shard = api
        .data
        .stream_shard(position.group, position.number)
        .await?
        .filter(|s| s.shard.label == stream.label)
        .ok_or_else(shard_not_found)?;
    let from = SequenceNumber {
        log_index: position.log_index,
        sequence: position.sequence,
    };
    if from < shard.shard.trim_horizon() {
        return Err(trimmed());
    }
    let limit = limit.unwrap_or(MAX_RECORDS).clamp(1, MAX_RECORDS) as usize;
    let (records, more) = api
        .data
        .read_stream(&shard, from, limit, MAX_RECORDS_BYTES)
        .await?;
    let next_from = records.last().map_or(from, |r| r.sequence.next());
    let listed: Vec<Value> = records
        .iter()
        .map(|record| record_json(record, &shard, &stream.view_type, &context.region))
        .collect();
    let mut output = json!({"Records": listed});
    // A closed shard read to its end has no next iterator.
    let drained = shard.shard.last_index.is_some() && !more;
    if !drained {
        output["NextShardIterator"] = json!(encode_iterator(&stream.arn, &shard, next_from)?);
    }
    Ok(output)
}

/// A record as DynamoDB Streams shows it.
fn record_json(record: &StreamRecord, shard: &StreamShard, view_type: &str, region: &str) -> Value {
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": record.created_ms / 1000,
        "Keys": encode_map(&record.keys),
        "SequenceNumber": record.sequence.to_wire(),
        "SizeBytes": record.size_bytes,
        "StreamViewType": view_type,
    });
    if let Some(new) = &record.new {
        dynamodb["NewImage"] = encode_map(new);
    }
    if let Some(old) = &record.old {
        dynamodb["OldImage"] = encode_map(old);
    }
    let mut out = json!({
        "eventID": event_id(shard, record.sequence),
        "eventName": record.event.as_str(),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
    });
    if record.by_service {
        out["userIdentity"] = json!({"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"});
    }
    out
}

/// A record's id: 32 hexadecimal digits, the same whichever replica or
/// call shows it.
fn event_id(shard: &StreamShard, sequence: SequenceNumber) -> String {
    let mix = |mut x: u64| {
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    // Each part goes through the mix before the next joins, so no two
    // (group, shard, place) share an id by cancelling out.
    let shard_part = mix(mix(shard.group) ^ u64::from(shard.shard.number));
    let high = mix(shard_part ^ sequence.log_index);
    let low = mix(high ^ u64::from(sequence.sequence) ^ 0x9e37_79b9_7f4a_7c15);
    format!("{high:016x}{low:016x}")
}
