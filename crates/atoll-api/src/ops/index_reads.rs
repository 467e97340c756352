//! Query and Scan on a secondary index (`IndexName`): which index, what it
//! returns of each item, and its `ExclusiveStartKey`.

use atoll_expr::ast::PathElement;
use atoll_expr::ast::Projection as ExprProjection;
use atoll_model::table::{KeySchema, LocalIndex, TableDefinition};
use atoll_model::{AttributeValue, Item};

use super::expressions::Expressions;
use super::reads::Select;
use crate::error::{ApiError, ApiResult};

const INVALID_START_KEY: &str = "The provided starting key is invalid";

/// An index a Query or Scan reads, as its page plan needs it.
#[derive(Clone, Debug)]
pub(crate) struct IndexPlan {
    /// The index's name.
    pub(crate) name: String,
    /// The index's key schema.
    pub(crate) key_schema: KeySchema,
    /// Read the indexed items rather than the index's entries (attributes
    /// the index does not project were asked for).
    pub(crate) fetch_items: bool,
    /// The index sort key of `ExclusiveStartKey`, when given.
    pub(crate) start_sort: Option<AttributeValue>,
}

/// The index `name` of `table`, or DynamoDB's error for a missing one.
pub(crate) fn resolve_index(
    table: &TableDefinition,
    name: Option<&str>,
) -> ApiResult<Option<LocalIndex>> {
    match name {
        None => Ok(None),
        Some(name) => match table.local_index(name) {
            Some(index) => Ok(Some(index.clone())),
            None => Err(ApiError::validation(format!(
                "The table does not have the specified index: {name}"
            ))),
        },
    }
}

/// Whether a read of `index` must fetch whole items: whole items were asked
/// for (ALL_ATTRIBUTES) or a projection names an attribute the index does
/// not hold. A local index may do so; DynamoDB reads them from the table.
pub(crate) fn fetches_items(
    table: &TableDefinition,
    index: &LocalIndex,
    select: Select,
    projection: Option<&ExprProjection>,
    expressions: &Expressions,
) -> bool {
    let held = |name: &str| {
        index
            .projection
            .holds(name, &table.key_schema, &index.key_schema)
    };
    match select {
        Select::All => index.projection != atoll_model::table::Projection::All,
        Select::Specific => {
            let env = expressions.env();
            projection
                .into_iter()
                .flat_map(|p| p.paths.iter())
                .any(|path| match path.0.first() {
                    Some(PathElement::Attribute(name)) => {
                        match atoll_expr::eval::resolve_name(name, &env) {
                            Ok(name) => !held(name),
                            Err(_) => true,
                        }
                    }
                    _ => true,
                })
        }
        Select::AllProjected | Select::Count => false,
    }
}

/// Checks an `ExclusiveStartKey` of an index read: exactly the table's and
/// the index's key attributes, of their types. Returns the index sort key.
pub(crate) fn check_index_start_key(
    table: &TableDefinition,
    index: &LocalIndex,
    key: &Item,
) -> ApiResult<AttributeValue> {
    let table_keys = &table.key_schema;
    let mut names: Vec<&str> = Vec::new();
    for attribute in [&table_keys.partition_key]
        .into_iter()
        .chain(table_keys.sort_key.as_ref())
        .chain([&index.key_schema.partition_key])
        .chain(index.key_schema.sort_key.as_ref())
    {
        if !names.contains(&attribute.name.as_str()) {
            names.push(&attribute.name);
        }
    }
    if key.len() != names.len() || names.iter().any(|name| !key.contains_key(*name)) {
        return Err(ApiError::validation(INVALID_START_KEY));
    }
    let index_sort = index.sort_key();
    let sort = key
        .get(&index_sort.name)
        .ok_or_else(|| ApiError::validation(INVALID_START_KEY))?;
    if !index_sort.scalar_type.matches(sort) {
        return Err(ApiError::validation(
            "The provided key element does not match the schema",
        ));
    }
    for attribute in [&table_keys.partition_key]
        .into_iter()
        .chain(table_keys.sort_key.as_ref())
    {
        if key
            .get(&attribute.name)
            .is_some_and(|v| !attribute.scalar_type.matches(v))
        {
            return Err(ApiError::validation(format!(
                "{INVALID_START_KEY}: The provided key element does not match the schema"
            )));
        }
    }
    let table_key = table_keys.key_of(key);
    super::keys::check_key(table_keys, &table_key).map_err(super::scan::invalid_start_key)?;
    Ok(sort.clone())
}

/// The key an index read's `LastEvaluatedKey` holds: the table's keys and the index's.
pub(crate) fn index_page_key(table: &TableDefinition, index: &IndexPlan, item: &Item) -> Item {
    let mut key = table.key_schema.key_of(item);
    key.extend(index.key_schema.key_of(item));
    key
}
