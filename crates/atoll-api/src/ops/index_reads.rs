//! Query and Scan on a secondary index (`IndexName`): which index, what it
//! returns of each item, and its `ExclusiveStartKey`.

use std::sync::Arc;

use atoll_expr::ast::PathElement;
use atoll_expr::ast::Projection as ExprProjection;
use atoll_model::table::{GlobalIndex, KeySchema, LocalIndex, Projection, TableDefinition};
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
    /// The index keys of `ExclusiveStartKey`, when given.
    pub(crate) start: Option<IndexStart>,
    /// A global index's hidden table (`None`: a local index).
    pub(crate) global_table: Option<Arc<TableDefinition>>,
}

/// The index keys of an `ExclusiveStartKey`.
#[derive(Clone, Debug)]
pub(crate) struct IndexStart {
    /// The index partition key.
    pub(crate) partition: AttributeValue,
    /// The index sort key, when the index has one.
    pub(crate) sort: Option<AttributeValue>,
}

/// A secondary index a Query or Scan names.
#[derive(Clone, Debug)]
pub(crate) enum ReadIndex {
    /// A local secondary index.
    Local(LocalIndex),
    /// A global secondary index.
    Global(GlobalIndex),
}

impl ReadIndex {
    /// The index's name.
    pub(crate) fn name(&self) -> &str {
        match self {
            ReadIndex::Local(index) => &index.name,
            ReadIndex::Global(index) => &index.name,
        }
    }

    /// The index's keys.
    pub(crate) fn key_schema(&self) -> &KeySchema {
        match self {
            ReadIndex::Local(index) => &index.key_schema,
            ReadIndex::Global(index) => &index.key_schema,
        }
    }

    /// DynamoDB's checks of what a global index cannot do: consistent
    /// reads, and whole items when it does not project them.
    pub(crate) fn check_read(&self, select: Select, consistent: bool) -> ApiResult<()> {
        let ReadIndex::Global(index) = self else {
            return Ok(());
        };
        if consistent {
            return Err(ApiError::validation(
                "Consistent reads are not supported on global secondary indexes",
            ));
        }
        if select == Select::All && index.projection != Projection::All {
            return Err(ApiError::invalid_parameter(format!(
                "Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                index.name
            )));
        }
        Ok(())
    }

    /// The plan of a read of this index of `table`.
    pub(crate) fn plan(
        self,
        api: &crate::Api,
        table: &TableDefinition,
        read: (Select, Option<&ExprProjection>, &Expressions),
        start: Option<IndexStart>,
    ) -> ApiResult<IndexPlan> {
        let (select, projection, expressions) = read;
        let fetch_items = match &self {
            ReadIndex::Local(index) => fetches_items(table, index, select, projection, expressions),
            ReadIndex::Global(index) => {
                check_global_projection(table, index, select, projection, expressions)?;
                false
            }
        };
        let global_table = match &self {
            ReadIndex::Local(_) => None,
            ReadIndex::Global(index) => Some(
                api.cluster
                    .catalog()
                    .table(&index.table_name)
                    .ok_or_else(ApiError::item_table_not_found)?,
            ),
        };
        Ok(IndexPlan {
            name: self.name().to_string(),
            key_schema: self.key_schema().clone(),
            fetch_items,
            start,
            global_table,
        })
    }
}

/// The index `name` of `table`, or DynamoDB's error for a missing one.
pub(crate) fn resolve_index(
    table: &TableDefinition,
    name: Option<&str>,
) -> ApiResult<Option<ReadIndex>> {
    let Some(name) = name else {
        return Ok(None);
    };
    if let Some(index) = table.local_index(name) {
        return Ok(Some(ReadIndex::Local(index.clone())));
    }
    match table.global_index(name) {
        Some(index) => Ok(Some(ReadIndex::Global(index.clone()))),
        None => Err(ApiError::validation(format!(
            "The table does not have the specified index: {name}"
        ))),
    }
}

/// Whether a read of `index` must fetch whole items: whole items were asked
/// for (ALL_ATTRIBUTES) or a projection names an attribute the index does
/// not hold. A local index may do so; DynamoDB reads them from the table.
fn fetches_items(
    table: &TableDefinition,
    index: &LocalIndex,
    select: Select,
    projection: Option<&ExprProjection>,
    expressions: &Expressions,
) -> bool {
    match select {
        Select::All => index.projection != Projection::All,
        Select::Specific => {
            let held = (&index.projection, &table.key_schema, &index.key_schema);
            !unprojected_attributes(held, projection, expressions).is_empty()
        }
        Select::AllProjected | Select::Count => false,
    }
}

/// The top-level attributes `projection` names that an index projecting
/// `held` (its projection, the table's keys, its keys) does not hold, in
/// the order named; a name that does not resolve counts as not held.
fn unprojected_attributes(
    (index_projection, table_keys, index_keys): (&Projection, &KeySchema, &KeySchema),
    projection: Option<&ExprProjection>,
    expressions: &Expressions,
) -> Vec<String> {
    let env = expressions.env();
    let mut missing: Vec<String> = Vec::new();
    for path in projection.into_iter().flat_map(|p| p.paths.iter()) {
        let name = match path.0.first() {
            Some(PathElement::Attribute(name)) => {
                match (atoll_expr::eval::resolve_name(name, &env), name) {
                    (Ok(resolved), _) => resolved,
                    (
                        Err(_),
                        atoll_expr::ast::Name::Literal(text)
                        | atoll_expr::ast::Name::Placeholder(text),
                    ) => text,
                }
            }
            _ => continue,
        };
        if !index_projection.holds(name, table_keys, index_keys)
            && !missing.iter().any(|m| m == name)
        {
            missing.push(name.to_string());
        }
    }
    missing
}

/// DynamoDB refuses to read from a global index attributes it does not
/// project (it never fetches them from the table).
fn check_global_projection(
    table: &TableDefinition,
    index: &GlobalIndex,
    select: Select,
    projection: Option<&ExprProjection>,
    expressions: &Expressions,
) -> ApiResult<()> {
    if select != Select::Specific {
        return Ok(());
    }
    let held = (&index.projection, &table.key_schema, &index.key_schema);
    let missing = unprojected_attributes(held, projection, expressions);
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid_parameter(format!(
        "Global secondary index {} does not project [{}]",
        index.name,
        missing.join(", ")
    )))
}

/// Checks an `ExclusiveStartKey` of an index read: exactly the table's and
/// the index's key attributes, of their types. Returns the index keys.
pub(crate) fn check_index_start_key(
    table: &TableDefinition,
    index: &ReadIndex,
    key: &Item,
) -> ApiResult<IndexStart> {
    let index_keys = index.key_schema();
    let table_keys = &table.key_schema;
    let mut names: Vec<&str> = Vec::new();
    for attribute in [&table_keys.partition_key]
        .into_iter()
        .chain(table_keys.sort_key.as_ref())
        .chain([&index_keys.partition_key])
        .chain(index_keys.sort_key.as_ref())
    {
        if !names.contains(&attribute.name.as_str()) {
            names.push(&attribute.name);
        }
    }
    if key.len() != names.len() || names.iter().any(|name| !key.contains_key(*name)) {
        return Err(ApiError::validation(INVALID_START_KEY));
    }
    let index_value = |attribute: &atoll_model::table::KeyAttribute| -> ApiResult<AttributeValue> {
        let value = key
            .get(&attribute.name)
            .ok_or_else(|| ApiError::validation(INVALID_START_KEY))?;
        if !attribute.scalar_type.matches(value) {
            return Err(ApiError::validation(
                "The provided key element does not match the schema",
            ));
        }
        Ok(value.clone())
    };
    let start = IndexStart {
        partition: index_value(&index_keys.partition_key)?,
        sort: match &index_keys.sort_key {
            Some(sort) => Some(index_value(sort)?),
            None => None,
        },
    };
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
    Ok(start)
}

/// The key an index read's `LastEvaluatedKey` holds: the table's keys and the index's.
pub(crate) fn index_page_key(table: &TableDefinition, index: &IndexPlan, item: &Item) -> Item {
    let mut key = table.key_schema.key_of(item);
    key.extend(index.key_schema.key_of(item));
    key
}
