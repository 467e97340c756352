//! Consumed capacity, by DynamoDB's rounding rules.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::constraints::{Shown, Violations, enum_constraint};

/// What the request asked back about consumed capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReturnCapacity {
    /// Nothing.
    None,
    /// The total per table.
    Total,
    /// The total, the table's part and each index's.
    Indexes,
}

pub(crate) const RETURN_CAPACITY_VALUES: &[&str] = &["INDEXES", "TOTAL", "NONE"];

impl ReturnCapacity {
    /// Parses the member, recording an enum violation if it is not valid.
    pub(crate) fn parse(violations: &mut Violations, text: Option<&str>) -> ReturnCapacity {
        match text {
            None | Some("NONE") => ReturnCapacity::None,
            Some("TOTAL") => ReturnCapacity::Total,
            Some("INDEXES") => ReturnCapacity::Indexes,
            Some(other) => {
                violations.add(
                    "returnConsumedCapacity",
                    Shown::Text(other),
                    "returnConsumedCapacity",
                    &enum_constraint(RETURN_CAPACITY_VALUES),
                );
                ReturnCapacity::None
            }
        }
    }

    /// The `ConsumedCapacity` value for `units` consumed on `table`, if asked for.
    pub(crate) fn report(self, table: &str, units: f64) -> Option<Value> {
        self.report_indexed(table, units, &IndexUnits::default())
    }

    /// The `ConsumedCapacity` value for `table_units` consumed on `table`
    /// and `index_units` on its secondary indexes, if asked for.
    pub(crate) fn report_indexed(
        self,
        table: &str,
        table_units: f64,
        index_units: &IndexUnits,
    ) -> Option<Value> {
        let total = table_units
            + index_units.local.values().sum::<f64>()
            + index_units.global.values().sum::<f64>();
        match self {
            ReturnCapacity::None => None,
            ReturnCapacity::Total => Some(json!({"TableName": table, "CapacityUnits": total})),
            ReturnCapacity::Indexes => {
                let mut consumed = json!({
                    "TableName": table,
                    "CapacityUnits": total,
                    "Table": {"CapacityUnits": table_units}
                });
                for (member, units) in [
                    ("LocalSecondaryIndexes", &index_units.local),
                    ("GlobalSecondaryIndexes", &index_units.global),
                ] {
                    if !units.is_empty()
                        && let Some(object) = consumed.as_object_mut()
                    {
                        let indexes: serde_json::Map<String, Value> = units
                            .iter()
                            .map(|(name, units)| (name.clone(), json!({"CapacityUnits": units})))
                            .collect();
                        object.insert(member.into(), Value::Object(indexes));
                    }
                }
                Some(consumed)
            }
        }
    }
}

/// Capacity units consumed on secondary indexes, by index name.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct IndexUnits {
    /// On local secondary indexes.
    pub(crate) local: BTreeMap<String, f64>,
    /// On global secondary indexes.
    pub(crate) global: BTreeMap<String, f64>,
}

impl IndexUnits {
    /// Adds `units` on index `index` of `table`.
    pub(crate) fn add(
        &mut self,
        table: &atoll_model::table::TableDefinition,
        index: &str,
        units: f64,
    ) {
        let on = if table.global_index(index).is_some() {
            &mut self.global
        } else {
            &mut self.local
        };
        *on.entry(index.to_string()).or_insert(0.0) += units;
    }
}

/// Write capacity units for an item of `size_bytes`: 1 per started KB, at least 1.
pub(crate) fn write_units(size_bytes: usize) -> f64 {
    size_bytes.div_ceil(1024).max(1) as f64
}

/// Read capacity units for `size_bytes` read: 1 per started 4 KB (at least 1),
/// halved for eventually consistent reads.
pub(crate) fn read_units(size_bytes: usize, consistent: bool) -> f64 {
    let units = size_bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_up_per_started_block() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
    }
}
