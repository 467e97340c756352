//! Secondary index definitions in CreateTable: reading them, DynamoDB's
//! checks, and the definitions the catalog keeps.

use std::collections::HashSet;

use atoll_model::table::{
    BillingMode, GlobalIndex, IndexStatus, KeyAttribute, KeySchema, LocalIndex, Projection,
    Throughput,
};
use serde_json::Value;

use super::keys::{
    AttributeDefinitionInput, KeyElement, check_key_schema_constraints, check_key_schema_semantics,
    defined_type, key_elements,
};
use super::table_settings::{
    MAX_LOCAL_INDEXES, ThroughputInput, check_throughput_bounds, check_throughput_constraints,
    throughput_input,
};
use crate::constraints::{
    NAME_PATTERN_CONSTRAINT, Shown, Violations, enum_constraint, is_valid_name,
};
use crate::error::{ApiError, ApiResult};
use crate::input::{self, Object};

/// A secondary index as sent.
pub(crate) struct IndexInput {
    pub(crate) name: Option<String>,
    pub(crate) key_schema_present: bool,
    pub(crate) key_schema: Vec<KeyElement>,
    pub(crate) projection: Option<(Option<String>, Option<Vec<String>>)>,
    pub(crate) throughput: Option<ThroughputInput>,
}

pub(crate) fn index_inputs(list: Option<&Vec<Value>>) -> Vec<IndexInput> {
    list.into_iter()
        .flatten()
        .map(|value| {
            let empty = Object::new();
            let index = value.as_object().unwrap_or(&empty);
            IndexInput {
                name: input::string(index, "IndexName").map(str::to_string),
                key_schema_present: input::has(index, "KeySchema"),
                key_schema: key_elements(input::list(index, "KeySchema")),
                projection: input::object(index, "Projection").map(|p| {
                    (
                        input::string(p, "ProjectionType").map(str::to_string),
                        input::list(p, "NonKeyAttributes").map(|l| {
                            l.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        }),
                    )
                }),
                throughput: throughput_input(input::object(index, "ProvisionedThroughput")),
            }
        })
        .collect()
}

pub(crate) fn check_index_constraints(
    violations: &mut Violations,
    member: &str,
    indexes: &[IndexInput],
) {
    for (i, index) in indexes.iter().enumerate() {
        check_one_index_constraints(
            violations,
            member,
            &format!("{member}.{}.member", i + 1),
            index,
        );
    }
}

/// The constraints of an index's name, at `at`.
pub(crate) fn check_index_name_constraints(
    violations: &mut Violations,
    member: &str,
    at: &str,
    name: Option<&str>,
) {
    let Some(name) = name else {
        violations.not_null(member, at);
        return;
    };
    if name.chars().count() < 3 {
        violations.add(
            member,
            Shown::Text(name),
            at,
            "Member must have length greater than or equal to 3",
        );
    }
    if name.chars().count() > 255 {
        violations.add(
            member,
            Shown::Text(name),
            at,
            "Member must have length less than or equal to 255",
        );
    }
    if !is_valid_name(name) {
        violations.add(member, Shown::Text(name), at, NAME_PATTERN_CONSTRAINT);
    }
}

/// The constraints of one index definition whose fields are at `path.*`.
pub(crate) fn check_one_index_constraints(
    violations: &mut Violations,
    member: &str,
    path: &str,
    index: &IndexInput,
) {
    let at = |field: &str| format!("{path}.{field}");
    check_index_name_constraints(violations, member, &at("indexName"), index.name.as_deref());
    check_key_schema_constraints(
        violations,
        member,
        &at("keySchema"),
        index.key_schema_present,
        &index.key_schema,
    );
    match &index.projection {
        None => violations.not_null(member, &at("projection")),
        Some((projection_type, non_key)) => {
            if let Some(t) = projection_type
                && !["ALL", "KEYS_ONLY", "INCLUDE"].contains(&t.as_str())
            {
                violations.add(
                    member,
                    Shown::Text(t),
                    &at("projection.projectionType"),
                    &enum_constraint(&["ALL", "INCLUDE", "KEYS_ONLY"]),
                );
            }
            if non_key.as_ref().is_some_and(Vec::is_empty) {
                violations.add(
                    member,
                    Shown::Text("[]"),
                    &at("projection.nonKeyAttributes"),
                    "Member must have length greater than or equal to 1",
                );
            }
        }
    }
    if let Some(pt) = &index.throughput {
        check_throughput_constraints(violations, member, &at("provisionedThroughput"), pt);
    }
}

pub(crate) fn check_projection(index: &IndexInput) -> ApiResult<()> {
    let name = index.name.as_deref().unwrap_or_default();
    let (projection_type, non_key) = index.projection.clone().unwrap_or((None, None));
    match (projection_type.as_deref(), non_key) {
        (None, _) => Err(ApiError::invalid_parameter("Unknown ProjectionType: null")),
        (Some(t @ ("KEYS_ONLY" | "ALL")), Some(_)) => Err(ApiError::invalid_parameter(format!(
            "ProjectionType is {t}, but NonKeyAttributes is specified"
        ))),
        (Some("INCLUDE"), None) => Err(ApiError::invalid_parameter(
            "ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
        )),
        (Some("INCLUDE"), Some(attributes)) => {
            let mut seen = HashSet::new();
            match attributes.iter().find(|a| !seen.insert(a.as_str())) {
                Some(duplicate) => Err(ApiError::validation(format!(
                    "Duplicate element in NonKeyAttributes: {duplicate}"
                ))),
                None => {
                    let _ = name;
                    Ok(())
                }
            }
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_local_indexes(
    indexes: &[IndexInput],
    table_keys: &[KeyElement],
    definitions: &[AttributeDefinitionInput],
) -> ApiResult<()> {
    if indexes.is_empty() {
        return Err(ApiError::invalid_parameter(
            "List of LocalSecondaryIndexes is empty",
        ));
    }
    if table_keys.len() < 2 {
        return Err(ApiError::invalid_parameter(
            "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
        ));
    }
    let mut names = HashSet::new();
    for index in indexes {
        let name = index.name.as_deref().unwrap_or_default();
        check_key_schema_semantics(&index.key_schema, definitions)?;
        if index.key_schema.len() < 2 {
            return Err(ApiError::invalid_parameter(format!(
                "Index KeySchema does not have a range key for index: {name}"
            )));
        }
        let index_hash = index
            .key_schema
            .first()
            .and_then(|k| k.name.as_deref())
            .unwrap_or_default();
        let table_hash = table_keys
            .first()
            .and_then(|k| k.name.as_deref())
            .unwrap_or_default();
        if index_hash != table_hash {
            return Err(ApiError::invalid_parameter(format!(
                "Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {index_hash}, table hash key: {table_hash}"
            )));
        }
        check_projection(index)?;
        if !names.insert(name) {
            return Err(ApiError::invalid_parameter(format!(
                "Duplicate index name: {name}"
            )));
        }
    }
    if indexes.len() > MAX_LOCAL_INDEXES {
        return Err(ApiError::invalid_parameter(
            "Number of LocalSecondaryIndexes exceeds per-table limit of 5",
        ));
    }
    Ok(())
}

pub(crate) fn check_global_indexes(
    indexes: &[IndexInput],
    local_names: &[&str],
    definitions: &[AttributeDefinitionInput],
    (billing_mode, max_global_indexes): (BillingMode, usize),
) -> ApiResult<()> {
    if indexes.is_empty() {
        return Err(ApiError::invalid_parameter(
            "List of GlobalSecondaryIndexes is empty",
        ));
    }
    let mut names: HashSet<&str> = local_names.iter().copied().collect();
    for index in indexes {
        let name = index.name.as_deref().unwrap_or_default();
        check_key_schema_semantics(&index.key_schema, definitions)?;
        check_projection(index)?;
        match (billing_mode, &index.throughput) {
            (BillingMode::PayPerRequest, Some(_)) => {
                return Err(ApiError::invalid_parameter(format!(
                    "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
                )));
            }
            (BillingMode::Provisioned, None) => {
                return Err(ApiError::invalid_parameter(format!(
                    "ProvisionedThroughput is not specified for index: {name}"
                )));
            }
            (_, Some(pt)) => check_throughput_bounds(pt)?,
            _ => {}
        }
        if !names.insert(name) {
            return Err(ApiError::invalid_parameter(format!(
                "Duplicate index name: {name}"
            )));
        }
    }
    if indexes.len() > max_global_indexes {
        return Err(ApiError::invalid_parameter(format!(
            "GlobalSecondaryIndex count exceeds the per-table limit of {max_global_indexes}"
        )));
    }
    Ok(())
}

/// The definitions of checked local secondary indexes, in request order.
pub(crate) fn local_index_definitions(
    indexes: &[IndexInput],
    definitions: &[AttributeDefinitionInput],
) -> ApiResult<Vec<LocalIndex>> {
    indexes
        .iter()
        .map(|index| {
            Ok(LocalIndex {
                name: index.name.clone().unwrap_or_default(),
                key_schema: index_key_schema(&index.key_schema, definitions)?,
                projection: projection(index),
            })
        })
        .collect()
}

/// The definitions of checked global secondary indexes, in request order
/// (their tables are named when the cluster creates them).
pub(crate) fn global_index_definitions(
    indexes: &[IndexInput],
    definitions: &[AttributeDefinitionInput],
) -> ApiResult<Vec<GlobalIndex>> {
    indexes
        .iter()
        .map(|index| {
            let units = |value: Option<i64>| value.unwrap_or(0).max(0) as u64;
            Ok(GlobalIndex {
                name: index.name.clone().unwrap_or_default(),
                key_schema: index_key_schema(&index.key_schema, definitions)?,
                projection: projection(index),
                throughput: Throughput {
                    read_capacity_units: units(index.throughput.as_ref().and_then(|t| t.read)),
                    write_capacity_units: units(index.throughput.as_ref().and_then(|t| t.write)),
                    ..Throughput::default()
                },
                status: IndexStatus::Active,
                backfilling: false,
                table_name: String::new(),
            })
        })
        .collect()
}

/// A checked index key schema with its attributes' defined types.
fn index_key_schema(
    elements: &[KeyElement],
    definitions: &[AttributeDefinitionInput],
) -> ApiResult<KeySchema> {
    let attribute = |element: Option<&KeyElement>| -> Option<KeyAttribute> {
        let name = element?.name.clone()?;
        let scalar_type = defined_type(definitions, &name)?;
        Some(KeyAttribute { name, scalar_type })
    };
    let partition_key = attribute(elements.first()).ok_or_else(|| {
        ApiError::validation("Invalid KeySchema: Some index key attribute have no definition")
    })?;
    Ok(KeySchema {
        partition_key,
        sort_key: attribute(elements.get(1)),
    })
}

/// A checked index's projection.
fn projection(index: &IndexInput) -> Projection {
    match &index.projection {
        Some((Some(t), _)) if t == "KEYS_ONLY" => Projection::KeysOnly,
        Some((Some(t), Some(attributes))) if t == "INCLUDE" => {
            Projection::Include(attributes.clone())
        }
        _ => Projection::All,
    }
}
