//! Query: one partition key, an optional sort-key condition, in sort order.

use atoll_cluster::data::{KeyRange, SortKeyCondition};
use atoll_expr::ExpressionKind;
use atoll_expr::ast::{Comparator, Condition, Operand, PathElement, Projection};
use atoll_expr::legacy::{ComparisonOperator, LegacyCondition};
use atoll_model::table::{KeySchema, TableDefinition};
use atoll_model::{AttributeValue, Item};

use super::capacity::ReturnCapacity;
use super::expressions::{Expressions, expression_error};
use super::index_reads::{check_index_start_key, resolve_index};
use super::items::{READ_LAYER, check_data_table_name, item_table};
use super::legacy_input::CONDITIONS;
use super::pages::{PagePlan, read_page};
use super::reads::{
    ReadCharge, Select, check_select_constraint, exclusive_start_key, filter, page_response, select,
};
use super::scan::{check_attributes_to_get, check_index_and_attributes};
use crate::Api;
use crate::constraints::{Shown, Violations};
use crate::error::{ApiError, ApiResult};
use crate::input::{self, Object};
use crate::shape::common::{ATTRIBUTE_MAP, BOOLEAN, INTEGER, STRING, STRING_LIST, STRING_MAP};
use crate::shape::{Shape, check_members};

static QUERY: &[(&str, &Shape)] = &[
    ("TableName", &STRING),
    ("IndexName", &STRING),
    ("Select", &STRING),
    ("AttributesToGet", &STRING_LIST),
    ("Limit", &INTEGER),
    ("ConsistentRead", &BOOLEAN),
    ("KeyConditions", &CONDITIONS),
    ("QueryFilter", &CONDITIONS),
    ("ConditionalOperator", &STRING),
    ("ScanIndexForward", &BOOLEAN),
    ("ExclusiveStartKey", &ATTRIBUTE_MAP),
    ("ReturnConsumedCapacity", &STRING),
    ("ProjectionExpression", &STRING),
    ("FilterExpression", &STRING),
    ("KeyConditionExpression", &STRING),
    ("ExpressionAttributeNames", &STRING_MAP),
    ("ExpressionAttributeValues", &ATTRIBUTE_MAP),
];
const QUERY_MEMBERS: &[&str] = &[
    "tableName",
    "indexName",
    "select",
    "attributesToGet",
    "limit",
    "consistentRead",
    "keyConditions",
    "queryFilter",
    "conditionalOperator",
    "scanIndexForward",
    "exclusiveStartKey",
    "returnConsumedCapacity",
    "projectionExpression",
    "filterExpression",
    "keyConditionExpression",
    "expressionAttributeNames",
    "expressionAttributeValues",
];

const INVALID_START_KEY: &str = "The provided starting key is invalid";

/// The key conditions of an expression, as (attribute, legacy condition)
/// pairs, so one set of schema checks serves both forms.
fn key_conditions_of(
    condition: &Condition,
    expressions: &Expressions,
) -> ApiResult<Vec<(String, LegacyCondition)>> {
    let env = expressions.env();
    let not_supported = || ApiError::validation("Query key condition not supported");
    let mut pending = vec![condition];
    let mut out = Vec::new();
    while let Some(condition) = pending.pop() {
        let (path, operator, operands) = match condition {
            Condition::And(left, right) => {
                pending.push(right);
                pending.push(left);
                continue;
            }
            Condition::Compare(comparator, Operand::Path(path), value @ Operand::Value(_)) => {
                let operator = match comparator {
                    Comparator::Eq => ComparisonOperator::Eq,
                    Comparator::Lt => ComparisonOperator::Lt,
                    Comparator::Le => ComparisonOperator::Le,
                    Comparator::Gt => ComparisonOperator::Gt,
                    Comparator::Ge => ComparisonOperator::Ge,
                    Comparator::Ne => return Err(not_supported()),
                };
                (path, operator, vec![value])
            }
            // `:v < sk` states `sk > :v`.
            Condition::Compare(comparator, value @ Operand::Value(_), Operand::Path(path)) => {
                let operator = match comparator {
                    Comparator::Eq => ComparisonOperator::Eq,
                    Comparator::Lt => ComparisonOperator::Gt,
                    Comparator::Le => ComparisonOperator::Ge,
                    Comparator::Gt => ComparisonOperator::Lt,
                    Comparator::Ge => ComparisonOperator::Le,
                    Comparator::Ne => return Err(not_supported()),
                };
                (path, operator, vec![value])
            }
            Condition::Between(Operand::Path(path), low, high) => {
                (path, ComparisonOperator::Between, vec![low, high])
            }
            Condition::BeginsWith(Operand::Path(path), prefix) => {
                (path, ComparisonOperator::BeginsWith, vec![prefix])
            }
            _ => return Err(not_supported()),
        };
        let [PathElement::Attribute(name)] = path.0.as_slice() else {
            return Err(ApiError::validation(
                "KeyConditionExpressions cannot have conditions on nested attributes",
            ));
        };
        let name = atoll_expr::eval::resolve_name(name, &env)
            .map_err(|e| ApiError::validation(e.message()))?;
        let mut values = Vec::with_capacity(operands.len());
        for operand in operands {
            let Operand::Value(value) = operand else {
                return Err(not_supported());
            };
            values.push(
                atoll_expr::eval::resolve_value(value, &env)
                    .map_err(|e| ApiError::validation(e.message()))?
                    .clone(),
            );
        }
        out.push((
            name.to_string(),
            LegacyCondition {
                comparison_operator: operator,
                attribute_value_list: Some(values),
            },
        ));
    }
    Ok(out)
}

/// The keys a query's key conditions (already checked against the schema) select.
fn key_range(schema: &KeySchema, conditions: &[(String, LegacyCondition)]) -> ApiResult<KeyRange> {
    let value_of = |name: &str| -> Option<(&LegacyCondition, &[AttributeValue])> {
        conditions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| (c, c.attribute_value_list.as_deref().unwrap_or_default()))
    };
    let partition = value_of(&schema.partition_key.name)
        .and_then(|(_, values)| values.first().cloned())
        .ok_or_else(|| {
            ApiError::validation(format!(
                "Query condition missed key schema element: {}",
                schema.partition_key.name
            ))
        })?;
    let sort_condition = schema
        .sort_key
        .as_ref()
        .and_then(|sort_key| value_of(&sort_key.name));
    let Some((condition, values)) = sort_condition else {
        return Ok(KeyRange::Partition {
            partition,
            sort: None,
        });
    };
    let not_supported = || ApiError::validation("Query key condition not supported");
    let first = values.first().cloned().ok_or_else(not_supported)?;
    let sort = match condition.comparison_operator {
        ComparisonOperator::Eq => SortKeyCondition::Eq(first),
        ComparisonOperator::Lt => SortKeyCondition::Lt(first),
        ComparisonOperator::Le => SortKeyCondition::Le(first),
        ComparisonOperator::Gt => SortKeyCondition::Gt(first),
        ComparisonOperator::Ge => SortKeyCondition::Ge(first),
        ComparisonOperator::Between => {
            let high = values.get(1).cloned().ok_or_else(not_supported)?;
            SortKeyCondition::Between(first, high)
        }
        ComparisonOperator::BeginsWith => SortKeyCondition::BeginsWith(first),
        _ => {
            return Err(ApiError::validation(
                "Attempted conditional constraint is not an indexable operation",
            ));
        }
    };
    Ok(KeyRange::Partition {
        partition,
        sort: Some(sort),
    })
}

/// DynamoDB's checks of a Query's ExclusiveStartKey against the table's key schema.
fn check_table_start_key(table: &TableDefinition, key: &Item) -> ApiResult<()> {
    let schema = &table.key_schema;
    let expected = 1 + usize::from(schema.sort_key.is_some());
    if key.len() != expected {
        return Err(ApiError::validation(INVALID_START_KEY));
    }
    for attribute in std::iter::once(&schema.partition_key).chain(schema.sort_key.as_ref()) {
        match key.get(&attribute.name) {
            None => return Err(ApiError::validation(INVALID_START_KEY)),
            Some(value) if !attribute.scalar_type.matches(value) => {
                return Err(ApiError::validation(
                    "The provided key element does not match the schema",
                ));
            }
            Some(_) => {}
        }
    }
    // Shape and types are right; an empty or oversized value is refused as
    // a GetItem key would be, behind the start key's prefix (dynalite's
    // tests, made against DynamoDB).
    super::keys::check_key(schema, key).map_err(super::scan::invalid_start_key)
}

/// DynamoDB's checks of a Query's ExclusiveStartKey against the key
/// conditions on `schema` (the table's or the index's).
fn check_start_key_bounds(
    schema: &KeySchema,
    key: &Item,
    partition: &AttributeValue,
    conditions: &[(String, LegacyCondition)],
) -> ApiResult<()> {
    let same_partition = key.get(&schema.partition_key.name) == Some(partition);
    let sort_condition = schema.sort_key.as_ref().and_then(|sort| {
        conditions
            .iter()
            .find(|(n, _)| *n == sort.name)
            .map(|(_, c)| (sort, c))
    });
    match sort_condition {
        None if !same_partition => Err(ApiError::validation(
            "The provided starting key is outside query boundaries based on provided conditions",
        )),
        None => Ok(()),
        Some((sort, condition)) => {
            let probe = atoll_expr::legacy::filter_condition(
                Some(&[(sort.name.clone(), condition.clone())]),
                None,
            )
            .map_err(|e| ApiError::validation(e.message()))?;
            let names = std::collections::HashMap::new();
            let values = std::collections::HashMap::new();
            let env = atoll_expr::Env {
                names: &names,
                values: &values,
            };
            let matches = match probe {
                Some(probe) => atoll_expr::evaluate(&probe, key, &env)
                    .map_err(|e| ApiError::validation(e.message()))?,
                None => true,
            };
            if !matches {
                return Err(ApiError::validation(
                    "The provided starting key does not match the range key predicate",
                ));
            }
            if !same_partition {
                return Err(ApiError::validation(
                    "The query can return at most one row and cannot be restarted",
                ));
            }
            Ok(())
        }
    }
}

/// A checked Query request: what to read and how to answer, before the table is known.
struct QueryRequest<'a> {
    table_name: &'a str,
    index_name: Option<&'a str>,
    capacity: ReturnCapacity,
    limit: Option<i64>,
    /// `QueryFilter`, kept for the check of its keys against the schema.
    query_filter: Option<Vec<(String, LegacyCondition)>>,
    start_key: Option<Item>,
    expressions: Expressions,
    key_conditions: Vec<(String, LegacyCondition)>,
    select: Select,
    projection: Option<Projection>,
    filter: Option<Condition>,
    reverse: bool,
    consistent: bool,
}

/// Query.
pub(crate) async fn query(api: &Api, input: &Object) -> ApiResult<super::Output> {
    let request = parse_query(api, input)?;
    let plan = resolve_query(api, &request).await?;
    execute_query(api, &request, plan).await
}

/// The checks DynamoDB makes of a Query before it looks at the table.
fn parse_query<'a>(api: &Api, input: &'a Object) -> ApiResult<QueryRequest<'a>> {
    check_members(QUERY, input)?;
    let (capacity, limit) = check_query_constraints(input)?;
    check_query_expression_parameters(input)?;
    let query_filter = super::legacy_input::conditions(input, "QueryFilter", READ_LAYER)?;
    let legacy_filter = atoll_expr::legacy::filter_condition(
        query_filter.as_deref(),
        super::legacy_input::conditional_operator(input),
    )
    .map_err(|e| expression_error(e, READ_LAYER))?;
    check_attributes_to_get(input)?;
    let start_key = exclusive_start_key(input, READ_LAYER)?;
    if !input::has(input, "KeyConditions") && !input::has(input, "KeyConditionExpression") {
        return Err(ApiError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ));
    }
    let expressions = super::expressions::read(
        api,
        input,
        &[
            ExpressionKind::KeyCondition,
            ExpressionKind::Filter,
            ExpressionKind::Projection,
        ],
        READ_LAYER,
    )?;
    let key_conditions = parse_key_conditions(input, &expressions)?;
    let select = select(input, true)?;
    let projection = super::expressions::chosen_projection(&expressions, input, READ_LAYER)?;
    let filter = filter(&expressions, legacy_filter);
    Ok(QueryRequest {
        table_name: input::string(input, "TableName").unwrap_or_default(),
        index_name: input::string(input, "IndexName"),
        capacity,
        limit,
        query_filter,
        start_key,
        expressions,
        key_conditions,
        select,
        projection,
        filter,
        reverse: input::boolean(input, "ScanIndexForward") == Some(false),
        consistent: input::boolean(input, "ConsistentRead").unwrap_or(false),
    })
}

/// Query's model constraints, all reported at once; returns ReturnConsumedCapacity and Limit.
fn check_query_constraints(input: &Object) -> ApiResult<(ReturnCapacity, Option<i64>)> {
    let mut violations = Violations::new(QUERY_MEMBERS);
    check_data_table_name(&mut violations, input::string(input, "TableName"));
    check_index_and_attributes(&mut violations, input);
    check_select_constraint(&mut violations, input);
    super::legacy_input::check_condition_constraints(
        &mut violations,
        "keyConditions",
        input,
        "KeyConditions",
    );
    super::legacy_input::check_condition_constraints(
        &mut violations,
        "queryFilter",
        input,
        "QueryFilter",
    );
    let capacity = ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    let limit = input::long(input, "Limit");
    let bad_limit = limit.is_some_and(|l| l < 1);
    if bad_limit && violations.is_empty() {
        // Query words this one as DynamoDB's newer validation framework does.
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'Limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
        ));
    }
    if let Some(limit) = limit.filter(|_| bad_limit) {
        violations.add(
            "limit",
            Shown::Text(&limit.to_string()),
            "limit",
            "Member must have value greater than or equal to 1",
        );
    }
    violations.into_result()?;
    Ok((capacity, limit))
}

/// Refuses expression parameters mixed with legacy ones, or placeholders without expressions.
fn check_query_expression_parameters(input: &Object) -> ApiResult<()> {
    // KeyConditions counts as a legacy parameter only beside KeyConditionExpression.
    let mut legacy = vec!["AttributesToGet", "QueryFilter", "ConditionalOperator"];
    if input::has(input, "KeyConditionExpression") {
        legacy.push("KeyConditions");
    }
    super::check_expression_parameters(
        input,
        &legacy,
        &[
            "ProjectionExpression",
            "FilterExpression",
            "KeyConditionExpression",
        ],
        Some((
            "FilterExpression and KeyConditionExpression are null",
            &["FilterExpression", "KeyConditionExpression"],
        )),
        true,
    )
}

/// The key conditions, from KeyConditionExpression or KeyConditions, checked for shape only.
fn parse_key_conditions(
    input: &Object,
    expressions: &Expressions,
) -> ApiResult<Vec<(String, LegacyCondition)>> {
    let key_conditions = match &expressions.key_condition {
        Some(condition) => {
            // DynamoDB's structural checks of a key condition come before the
            // table; only the count of conditions waits for the key schema.
            match atoll_expr::extract_key_conditions(condition, &expressions.env()) {
                Ok(_) => key_conditions_of(condition, expressions)?,
                Err(e) if e.message() == "Conditions can be of length 1 or 2 only" => {
                    key_conditions_of(condition, expressions)?
                }
                Err(e) => return Err(expression_error(e, READ_LAYER)),
            }
        }
        None => {
            let legacy = super::legacy_input::conditions(input, "KeyConditions", READ_LAYER)?
                .unwrap_or_default();
            atoll_expr::legacy::key_conditions_condition(&legacy)
                .map_err(|e| expression_error(e, READ_LAYER))?;
            legacy
        }
    };
    Ok(key_conditions)
}

/// Looks up the table (and the index) and checks key conditions, start key
/// and key paths against its schema.
async fn resolve_query(api: &Api, request: &QueryRequest<'_>) -> ApiResult<PagePlan> {
    let table = item_table(api, request.table_name).await?;
    // After the lookup: a missing table's error wins over a missing index's.
    let index = resolve_index(&table, request.index_name)?;
    if let Some(index) = &index {
        index.check_read(request.select, request.consistent)?;
    }
    let schema = index.as_ref().map_or(&table.key_schema, |i| i.key_schema());
    let key_conditions = &request.key_conditions;
    let key_count = 1 + usize::from(schema.sort_key.is_some());
    if request.expressions.key_condition.is_some() && key_conditions.len() > key_count {
        return Err(ApiError::validation(format!(
            "The number of query conditions ({}) exceeds the number of key attributes defined in the schema ({key_count})",
            key_conditions.len()
        )));
    }
    atoll_expr::legacy::check_key_conditions(key_conditions, schema)
        .map_err(|e| expression_error(e, READ_LAYER))?;
    let range = key_range(schema, key_conditions)?;
    let mut exclusive_start = None;
    let mut start = None;
    if let (Some(key), KeyRange::Partition { partition, .. }) = (&request.start_key, &range) {
        match &index {
            None => check_table_start_key(&table, key)?,
            Some(index) => start = Some(check_index_start_key(&table, index, key)?),
        }
        check_start_key_bounds(schema, key, partition, key_conditions)?;
        let table_key = table.key_schema.key_of(key);
        exclusive_start = Some(super::keys::locate(&table.key_schema, &table_key)?);
    }
    check_query_key_paths(request, &table.key_schema, schema)?;
    let read = (
        request.select,
        request.projection.as_ref(),
        &request.expressions,
    );
    let index = match index {
        Some(index) => Some(index.plan(api, &table, read, start)?),
        None => None,
    };
    Ok(PagePlan {
        table,
        range,
        exclusive_start,
        reverse: request.reverse,
        limit: request.limit.map(|l| l.max(1) as usize),
        consistent: request.consistent,
        index,
    })
}

/// Refuses projection paths that step into a key attribute and, as DynamoDB
/// does for Query only, a filter on a key attribute of what is queried
/// (`schema`: the table's or the index's).
fn check_query_key_paths(
    request: &QueryRequest<'_>,
    table_keys: &KeySchema,
    schema: &KeySchema,
) -> ApiResult<()> {
    let env = request.expressions.env();
    let mut key_paths: Vec<&atoll_expr::ast::Path> = Vec::new();
    if let Some(projection) = &request.projection {
        key_paths.extend(projection.paths.iter());
    }
    let index_keys: Vec<&str> = std::iter::once(&schema.partition_key)
        .chain(schema.sort_key.as_ref())
        .map(|k| k.name.as_str())
        .filter(|name| !table_keys.is_key_attribute(name))
        .collect();
    atoll_expr::eval::keys::check_key_paths(key_paths, &env, table_keys, &index_keys)
        .map_err(|e| expression_error(e, READ_LAYER))?;
    if let Some(filter) = &request.expressions.filter {
        atoll_expr::eval::keys::check_filter_key_attributes(
            atoll_expr::eval::keys::condition_paths(filter),
            &env,
            schema,
            "Filter Expression",
        )
        .map_err(|e| expression_error(e, READ_LAYER))?;
    } else if let Some(query_filter) = &request.query_filter {
        atoll_expr::legacy::check_query_filter_keys(query_filter, schema)
            .map_err(|e| expression_error(e, READ_LAYER))?;
    }
    Ok(())
}

/// Reads one page, filters it and answers it.
async fn execute_query(
    api: &Api,
    request: &QueryRequest<'_>,
    plan: PagePlan,
) -> ApiResult<super::Output> {
    let env = request.expressions.env();
    let page = read_page(api, &plan, |item| match &request.filter {
        Some(filter) => {
            atoll_expr::evaluate(filter, item, &env).map_err(|e| ApiError::validation(e.message()))
        }
        None => Ok(true),
    })
    .await?;
    page_response(
        page,
        request.select,
        request.projection.as_ref(),
        &request.expressions,
        &plan.table,
        &ReadCharge {
            capacity: request.capacity,
            consistent: request.consistent,
            index: plan.index.as_ref().map(|i| i.name.as_str()),
        },
    )
}
