//! `TableDescription` as DynamoDB returns it.

use atoll_cluster::TableStats;
use std::collections::BTreeMap;

use atoll_model::table::{BillingMode, IndexStatus, TableClass, TableDefinition, TableStatus};
use serde_json::{Map, Value, json};

use crate::RequestContext;

fn seconds(ms: u64) -> Value {
    // DynamoDB sends epoch seconds with a millisecond fraction.
    json!(ms as f64 / 1000.0)
}

/// The stream label of a table: its creation time as DynamoDB formats it.
pub(crate) fn stream_label(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// This node's clock, epoch milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The epoch milliseconds a stream label (`stream_label`'s format) names.
pub(crate) fn label_ms(label: &str) -> Option<u64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> { label.get(range)?.parse().ok() };
    if label.len() != 23 {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second, millis) = (
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..23)?,
    );
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(secs * 1000 + millis).ok()
}

/// A calendar date to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a calendar date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Describes `table` as seen from `region`, overriding its status if asked.
pub(crate) fn table_description(
    table: &TableDefinition,
    context: &RequestContext,
    stats: &DescribedStats,
    status: Option<TableStatus>,
) -> Value {
    let described_status = status.unwrap_or(table.status);
    let index_stats = &stats.global_indexes;
    let stats = stats.table;
    let mut d = Map::new();
    d.insert(
        "AttributeDefinitions".into(),
        Value::Array(
            table
                .attribute_definitions
                .iter()
                .map(|a| json!({"AttributeName": a.name, "AttributeType": a.scalar_type.as_str()}))
                .collect(),
        ),
    );
    d.insert("TableName".into(), json!(table.name));
    d.insert(
        "KeySchema".into(),
        key_schema_description(&table.key_schema),
    );
    d.insert("TableStatus".into(), json!(described_status.as_str()));
    d.insert("CreationDateTime".into(), seconds(table.created_ms));
    d.insert(
        "ProvisionedThroughput".into(),
        provisioned_throughput(table),
    );
    d.insert("TableSizeBytes".into(), json!(stats.size_bytes));
    d.insert("ItemCount".into(), json!(stats.item_count));
    let arn = context.table_arn(&table.name);
    d.insert("TableArn".into(), json!(arn));
    d.insert("TableId".into(), json!(table.table_id));
    if !table.local_indexes.is_empty() {
        d.insert(
            "LocalSecondaryIndexes".into(),
            local_index_descriptions(table, &arn),
        );
    }
    if !table.global_indexes.is_empty() {
        d.insert(
            "GlobalSecondaryIndexes".into(),
            global_index_descriptions(table, &arn, described_status, index_stats),
        );
    }
    if let Some(summary) = billing_mode_summary(table) {
        d.insert("BillingModeSummary".into(), summary);
    }
    if let Some(stream) = &table.stream {
        if stream.enabled {
            d.insert(
                "StreamSpecification".into(),
                json!({"StreamEnabled": true, "StreamViewType": stream.view_type}),
            );
        }
        if let Some(label) = &stream.label {
            d.insert("LatestStreamLabel".into(), json!(label));
            d.insert(
                "LatestStreamArn".into(),
                json!(format!("{arn}/stream/{label}")),
            );
        }
    }
    if table.table_class != TableClass::Standard {
        d.insert(
            "TableClassSummary".into(),
            json!({"TableClass": table.table_class.as_str()}),
        );
    }
    d.insert(
        "DeletionProtectionEnabled".into(),
        json!(table.deletion_protection),
    );
    let warm = match table.billing_mode {
        BillingMode::PayPerRequest => {
            json!({"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "ACTIVE"})
        }
        BillingMode::Provisioned => json!({
            "ReadUnitsPerSecond": table.throughput.read_capacity_units,
            "WriteUnitsPerSecond": table.throughput.write_capacity_units,
            "Status": "ACTIVE"
        }),
    };
    d.insert("WarmThroughput".into(), warm);
    Value::Object(d)
}

/// The description DeleteTable returns: DynamoDB leaves out the key schema,
/// attribute definitions, indexes and creation time it shows elsewhere
/// (Alternator's test_delete_table_description*, run against it).
pub(crate) fn deleted_table_description(
    table: &TableDefinition,
    context: &RequestContext,
    stats: TableStats,
) -> Value {
    let mut d = Map::new();
    d.insert("TableName".into(), json!(table.name));
    d.insert("TableStatus".into(), json!(TableStatus::Deleting.as_str()));
    d.insert(
        "ProvisionedThroughput".into(),
        provisioned_throughput(table),
    );
    d.insert("TableSizeBytes".into(), json!(stats.size_bytes));
    d.insert("ItemCount".into(), json!(stats.item_count));
    d.insert("TableArn".into(), json!(context.table_arn(&table.name)));
    d.insert("TableId".into(), json!(table.table_id));
    if let Some(summary) = billing_mode_summary(table) {
        d.insert("BillingModeSummary".into(), summary);
    }
    Value::Object(d)
}

fn provisioned_throughput(table: &TableDefinition) -> Value {
    throughput_description(&table.throughput)
}

/// A table's or global index's `ProvisionedThroughput`.
fn throughput_description(throughput: &atoll_model::table::Throughput) -> Value {
    let mut described = Map::new();
    if let Some(ms) = throughput.last_increase_ms {
        described.insert("LastIncreaseDateTime".into(), seconds(ms));
    }
    if let Some(ms) = throughput.last_decrease_ms {
        described.insert("LastDecreaseDateTime".into(), seconds(ms));
    }
    described.insert(
        "NumberOfDecreasesToday".into(),
        json!(throughput.decreases_today),
    );
    described.insert(
        "ReadCapacityUnits".into(),
        json!(throughput.read_capacity_units),
    );
    described.insert(
        "WriteCapacityUnits".into(),
        json!(throughput.write_capacity_units),
    );
    Value::Object(described)
}

/// `BillingModeSummary`, for a table that has been on demand at some time.
/// `LastUpdateToPayPerRequestDateTime` is the last switch to on demand, or
/// the creation of a table created on demand (DynamoDB's, per Alternator's
/// test_describe_table_billing; tables created before Atoll recorded it
/// fall back to their creation time).
fn billing_mode_summary(table: &TableDefinition) -> Option<Value> {
    let on_demand_since_ms = table
        .last_on_demand_switch_ms
        .or((table.billing_mode == BillingMode::PayPerRequest).then_some(table.created_ms))?;
    Some(json!({
        "BillingMode": table.billing_mode.as_str(),
        "LastUpdateToPayPerRequestDateTime": seconds(on_demand_since_ms),
    }))
}

/// Item counts and sizes DescribeTable reports: the table's, and each
/// global index's (by index name).
pub(crate) struct DescribedStats {
    /// The table's.
    pub(crate) table: TableStats,
    /// Each global index's.
    pub(crate) global_indexes: BTreeMap<String, TableStats>,
}

/// The statistics of `table` and of its global indexes' tables.
pub(crate) async fn described_stats(api: &crate::Api, table: &TableDefinition) -> DescribedStats {
    let mut global_indexes = BTreeMap::new();
    for index in &table.global_indexes {
        if let Some(index_table) = api.cluster.catalog().table(&index.table_name) {
            let stats = api.cluster.table_stats(&index_table).await;
            global_indexes.insert(index.name.clone(), stats);
        }
    }
    DescribedStats {
        table: api.cluster.table_stats(table).await,
        global_indexes,
    }
}

/// The table's global secondary indexes; while the table is being
/// created, so are they.
fn global_index_descriptions(
    table: &TableDefinition,
    table_arn: &str,
    table_status: TableStatus,
    stats: &BTreeMap<String, TableStats>,
) -> Value {
    Value::Array(
        table
            .global_indexes
            .iter()
            .map(|index| {
                let status = match table_status {
                    TableStatus::Creating => IndexStatus::Creating,
                    _ => index.status,
                };
                let index_stats = stats.get(&index.name).copied().unwrap_or_default();
                let mut d = json!({
                    "IndexName": index.name,
                    "KeySchema": key_schema_description(&index.key_schema),
                    "Projection": projection_description(&index.projection),
                    "IndexStatus": status.as_str(),
                    "ProvisionedThroughput": throughput_description(&index.throughput),
                    "IndexSizeBytes": index_stats.size_bytes,
                    "ItemCount": index_stats.item_count,
                    "IndexArn": format!("{table_arn}/index/{}", index.name),
                });
                // Only an index added to a live table says whether it is
                // backfilling; one created with its table never does.
                if index.status == IndexStatus::Creating
                    && let Some(object) = d.as_object_mut()
                {
                    object.insert("Backfilling".into(), json!(index.backfilling));
                }
                d
            })
            .collect(),
    )
}

/// A key schema as DynamoDB describes it: HASH, then RANGE.
fn key_schema_description(schema: &atoll_model::table::KeySchema) -> Value {
    let mut elements = vec![json!({"AttributeName": schema.partition_key.name, "KeyType": "HASH"})];
    if let Some(sort) = &schema.sort_key {
        elements.push(json!({"AttributeName": sort.name, "KeyType": "RANGE"}));
    }
    Value::Array(elements)
}

/// A projection as DynamoDB describes it.
fn projection_description(projection: &atoll_model::table::Projection) -> Value {
    match projection {
        atoll_model::table::Projection::Include(attributes) => {
            json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": attributes})
        }
        other => json!({"ProjectionType": other.type_name()}),
    }
}

/// The table's local secondary indexes. DynamoDB refreshes an index's
/// size and count about every six hours; Atoll does not count them yet
/// and reports 0 (issue 14's note).
fn local_index_descriptions(table: &TableDefinition, table_arn: &str) -> Value {
    Value::Array(
        table
            .local_indexes
            .iter()
            .map(|index| {
                json!({
                    "IndexName": index.name,
                    "KeySchema": key_schema_description(&index.key_schema),
                    "Projection": projection_description(&index.projection),
                    "IndexSizeBytes": 0,
                    "ItemCount": 0,
                    "IndexArn": format!("{table_arn}/index/{}", index.name),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::{label_ms, stream_label};

    #[test]
    fn stream_labels_are_utc_timestamps_with_milliseconds() {
        assert_eq!(stream_label(0), "1970-01-01T00:00:00.000");
        assert_eq!(stream_label(1_791_500_851_275), "2026-10-08T23:07:31.275");
        for ms in [0, 1_791_500_851_275, 951_782_400_999, 4_107_542_400_000] {
            assert_eq!(label_ms(&stream_label(ms)), Some(ms), "{ms}");
        }
        assert_eq!(label_ms("2026-10-08"), None);
    }
}
