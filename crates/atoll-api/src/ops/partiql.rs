//! ExecuteStatement (and the statements BatchExecuteStatement and
//! ExecuteTransaction run): a PartiQL statement parsed
//! (`atoll_partiql`) and run as the item operation it amounts to — a
//! SELECT with an equality on the partition key as a Query, any other as
//! a Scan, both filtered and projected here; INSERT as a PutItem that may
//! not replace; UPDATE and DELETE as UpdateItem and DeleteItem of the one
//! item their WHERE names — built as those operations' requests, so they
//! check and answer exactly as those do.

mod batch;

pub(crate) use batch::{batch_execute_statement, execute_transaction};

use std::sync::Arc;

use atoll_expr::{Env, ExpressionKind};
use atoll_model::table::{KeySchema, TableDefinition};
use atoll_model::{AttributeValue, Item};
use atoll_partiql::ast::{Compare, Expr, Projection, Returning, Statement, Step};
use atoll_partiql::translate::{Placeholders, conjuncts, equality, parameter_count, value_of};
use atoll_partiql::{PartiqlError, parse};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::capacity::ReturnCapacity;
use super::items::{check_enum, item_table};
use crate::Api;
use crate::attribute::{decode_value, encode_map, encode_value};
use crate::constraints::{Shown, Violations};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{self, Object};
use crate::shape::common::{ATTRIBUTE_LIST, BOOLEAN, INTEGER, STRING};
use crate::shape::{Shape, check_members};

static EXECUTE_STATEMENT: &[(&str, &Shape)] = &[
    ("Statement", &STRING),
    ("Parameters", &ATTRIBUTE_LIST),
    ("ConsistentRead", &BOOLEAN),
    ("NextToken", &STRING),
    ("ReturnConsumedCapacity", &STRING),
    ("Limit", &INTEGER),
    ("ReturnValuesOnConditionCheckFailure", &STRING),
];
const EXECUTE_STATEMENT_MEMBERS: &[&str] = &[
    "statement",
    "parameters",
    "consistentRead",
    "nextToken",
    "returnConsumedCapacity",
    "limit",
    "returnValuesOnConditionCheckFailure",
];

/// DynamoDB's text for an UPDATE or DELETE whose WHERE does not name the item.
const WHOLE_KEY: &str = "Where clause does not contain a mandatory equality on all key attributes";
/// DynamoDB's text for an INSERT of a key that exists.
pub(crate) const DUPLICATE_ITEM: &str = "Duplicate primary key exists in table";

/// A statement with its parameters, as one request (or one member of a
/// batch or transaction) gives it.
pub(crate) struct Parsed {
    /// The statement.
    pub(crate) statement: Statement,
    /// Its `?`s' values, in order.
    pub(crate) parameters: Vec<AttributeValue>,
}

/// The constraints of a statement and its parameters, recorded at `path`
/// (`statement`, or a batch member's path) into `violations`.
pub(crate) fn check_statement(
    violations: &mut Violations,
    member: &str,
    prefix: &str,
    object: &Object,
) {
    let at = |name: &str| match prefix {
        "" => name.to_string(),
        prefix => format!("{prefix}.{name}"),
    };
    match input::string(object, "Statement") {
        None => violations.not_null(member, &at("statement")),
        Some(text) => {
            let length = text.chars().count();
            let constraint = match length {
                0 => Some("Member must have length greater than or equal to 1"),
                n if n > 8192 => Some("Member must have length less than or equal to 8192"),
                _ => None,
            };
            if let Some(constraint) = constraint {
                violations.add(member, Shown::Text(text), &at("statement"), constraint);
            }
        }
    }
    if input::list(object, "Parameters").is_some_and(Vec::is_empty) {
        violations.add(
            member,
            Shown::Text("[]"),
            &at("parameters"),
            "Member must have length greater than or equal to 1",
        );
    }
}

/// Parses the statement of `object` and decodes its parameters.
pub(crate) fn parse_statement(api: &Api, object: &Object) -> ApiResult<Parsed> {
    let text = input::string(object, "Statement").unwrap_or_default();
    let statement = parse(text).map_err(partiql_error)?;
    let mut parameters = Vec::new();
    for value in input::list(object, "Parameters").into_iter().flatten() {
        parameters.push(decode_value(value, api.write_layer())?);
    }
    if parameter_count(&statement) != parameters.len() {
        return Err(ApiError::validation(
            atoll_partiql::translate::PARAMETER_COUNT_MISMATCH,
        ));
    }
    Ok(Parsed {
        statement,
        parameters,
    })
}

/// A statement's error as a ValidationException.
pub(crate) fn partiql_error(error: PartiqlError) -> ApiError {
    ApiError::validation(error.message)
}

/// ExecuteStatement.
pub(crate) async fn execute_statement(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(EXECUTE_STATEMENT, input)?;
    let mut violations = Violations::new(EXECUTE_STATEMENT_MEMBERS);
    check_statement(&mut violations, "statement", "", input);
    if let Some(limit) = input::long(input, "Limit")
        && limit < 1
    {
        violations.add(
            "limit",
            Shown::Text(&limit.to_string()),
            "limit",
            "Member must have value greater than or equal to 1",
        );
    }
    let _ = ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    check_enum(
        &mut violations,
        "returnValuesOnConditionCheckFailure",
        input::string(input, "ReturnValuesOnConditionCheckFailure"),
        &["ALL_OLD", "NONE"],
    );
    violations.into_result()?;
    let parsed = parse_statement(api, input)?;
    let options = Options {
        consistent: input::boolean(input, "ConsistentRead").unwrap_or(false),
        limit: input::long(input, "Limit"),
        next_token: input::string(input, "NextToken").map(str::to_string),
        capacity: input::string(input, "ReturnConsumedCapacity").map(str::to_string),
        return_old_on_failure: input::string(input, "ReturnValuesOnConditionCheckFailure")
            .map(str::to_string),
    };
    run(api, &parsed, &options).await
}

/// What a request asks of a statement besides the statement.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) consistent: bool,
    pub(crate) limit: Option<i64>,
    pub(crate) next_token: Option<String>,
    pub(crate) capacity: Option<String>,
    pub(crate) return_old_on_failure: Option<String>,
}

/// Runs one statement; its answer as ExecuteStatement gives it.
pub(crate) async fn run(api: &Api, parsed: &Parsed, options: &Options) -> ApiResult<Value> {
    let table = item_table(api, parsed.statement.table()).await?;
    match &parsed.statement {
        Statement::Select { .. } => select(api, &table, parsed, options).await,
        _ => {
            let (operation, request) = write_request(&table, parsed, options)?;
            let response = match operation {
                WriteOperation::Put => super::items::put_item(api, &request).await,
                WriteOperation::Update => super::update_item::update_item(api, &request).await,
                WriteOperation::Delete => super::items::delete_item(api, &request).await,
            };
            let response = match (response, operation) {
                (Err(e), WriteOperation::Put) if e.kind == ErrorKind::ConditionalCheckFailed => {
                    return Err(ApiError::new(ErrorKind::DuplicateItem, DUPLICATE_ITEM));
                }
                (response, _) => response?,
            };
            let mut answer = Map::new();
            let items = match response.get("Attributes") {
                Some(attributes) => vec![attributes.clone()],
                None => Vec::new(),
            };
            answer.insert("Items".into(), Value::Array(items));
            if let Some(consumed) = response.get("ConsumedCapacity") {
                answer.insert("ConsumedCapacity".into(), consumed.clone());
            }
            Ok(Value::Object(answer))
        }
    }
}

/// Which item operation a write statement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteOperation {
    Put,
    Update,
    Delete,
}

/// The PutItem, UpdateItem or DeleteItem request a write statement amounts to.
pub(crate) fn write_request(
    table: &TableDefinition,
    parsed: &Parsed,
    options: &Options,
) -> ApiResult<(WriteOperation, Object)> {
    let mut request = Map::new();
    request.insert("TableName".into(), json!(table.name));
    if let Some(capacity) = &options.capacity {
        request.insert("ReturnConsumedCapacity".into(), json!(capacity));
    }
    if let Some(value) = &options.return_old_on_failure {
        request.insert("ReturnValuesOnConditionCheckFailure".into(), json!(value));
    }
    let mut placeholders = Placeholders::new(&parsed.parameters);
    let mut conditions = Vec::new();
    let operation = match &parsed.statement {
        Statement::Insert { item, .. } => {
            let item = match value_of(item, &parsed.parameters).map_err(partiql_error)? {
                AttributeValue::M(item) => item,
                _ => return Err(ApiError::validation("INSERT takes a tuple of attributes")),
            };
            request.insert("Item".into(), encode_map(&item));
            let key = placeholders.path(&atoll_partiql::ast::Path(vec![Step::Name(
                table.key_schema.partition_key.name.clone(),
            )]));
            conditions.push(format!("attribute_not_exists({key})"));
            WriteOperation::Put
        }
        Statement::Update {
            changes,
            condition,
            returning,
            ..
        } => {
            let (key, rest) = whole_key(&table.key_schema, condition, &parsed.parameters)?;
            request.insert("Key".into(), encode_map(&key));
            let update = placeholders.update(changes).map_err(partiql_error)?;
            request.insert("UpdateExpression".into(), json!(update));
            // UPDATE changes an item that exists; it never creates one.
            let exists = placeholders.path(&atoll_partiql::ast::Path(vec![Step::Name(
                table.key_schema.partition_key.name.clone(),
            )]));
            conditions.push(format!("attribute_exists({exists})"));
            for conjunct in rest {
                conditions.push(placeholders.condition(conjunct).map_err(partiql_error)?);
            }
            if let Some(returning) = returning {
                let values = match returning {
                    Returning::AllOld => "ALL_OLD",
                    Returning::AllNew => "ALL_NEW",
                    Returning::ModifiedOld => "UPDATED_OLD",
                    Returning::ModifiedNew => "UPDATED_NEW",
                };
                request.insert("ReturnValues".into(), json!(values));
            }
            WriteOperation::Update
        }
        Statement::Delete {
            condition,
            returning,
            ..
        } => {
            let (key, rest) = whole_key(&table.key_schema, condition, &parsed.parameters)?;
            request.insert("Key".into(), encode_map(&key));
            for conjunct in rest {
                conditions.push(placeholders.condition(conjunct).map_err(partiql_error)?);
            }
            match returning {
                None => {}
                Some(Returning::AllOld) => {
                    request.insert("ReturnValues".into(), json!("ALL_OLD"));
                }
                Some(_) => {
                    return Err(ApiError::validation(
                        "DELETE supports only RETURNING ALL OLD *",
                    ));
                }
            }
            WriteOperation::Delete
        }
        Statement::Select { .. } => {
            return Err(ApiError::validation("A SELECT is not a write"));
        }
    };
    if !conditions.is_empty() {
        let condition = conditions
            .iter()
            .map(|c| format!("({c})"))
            .collect::<Vec<_>>()
            .join(" AND ");
        request.insert("ConditionExpression".into(), json!(condition));
    }
    insert_placeholders(&mut request, placeholders);
    Ok((operation, request))
}

fn insert_placeholders(request: &mut Object, placeholders: Placeholders<'_>) {
    if !placeholders.names.is_empty() {
        let names: Map<String, Value> = placeholders
            .names
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        request.insert("ExpressionAttributeNames".into(), Value::Object(names));
    }
    if !placeholders.values.is_empty() {
        let values: Map<String, Value> = placeholders
            .values
            .iter()
            .map(|(k, v)| (k.clone(), encode_value(v)))
            .collect();
        request.insert("ExpressionAttributeValues".into(), Value::Object(values));
    }
}

/// The key a WHERE names by equalities on every key attribute, and its
/// other conditions.
pub(crate) fn whole_key<'e>(
    schema: &KeySchema,
    condition: &'e Expr,
    parameters: &[AttributeValue],
) -> ApiResult<(Item, Vec<&'e Expr>)> {
    let mut key = Item::new();
    let mut rest = Vec::new();
    for conjunct in conjuncts(condition) {
        match equality(conjunct) {
            Some((name, value)) if schema.is_key_attribute(name) && !key.contains_key(name) => {
                key.insert(
                    name.to_string(),
                    value_of(value, parameters).map_err(partiql_error)?,
                );
            }
            _ => rest.push(conjunct),
        }
    }
    let named = std::iter::once(&schema.partition_key)
        .chain(schema.sort_key.as_ref())
        .all(|attribute| key.contains_key(&attribute.name));
    if !named {
        return Err(ApiError::validation(WHOLE_KEY));
    }
    Ok((key, rest))
}

/// Where the next page of a SELECT starts (`NextToken`, opaque to clients).
fn encode_next_token(last_key: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(last_key.to_string())
}

fn decode_next_token(token: &str) -> ApiResult<Value> {
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::validation("Invalid NextToken"))
}

/// The key schema a SELECT reads by: the table's, or its index's.
fn read_schema(table: &TableDefinition, index: Option<&str>) -> ApiResult<KeySchema> {
    match index {
        None => Ok(table.key_schema.clone()),
        Some(name) => table
            .global_index(name)
            .map(|index| index.key_schema.clone())
            .or_else(|| {
                table
                    .local_index(name)
                    .map(|index| index.key_schema.clone())
            })
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "The table does not have the specified index: {name}"
                ))
            }),
    }
}

/// A SELECT: a Query when its WHERE fixes the partition key, a Scan
/// otherwise; the WHERE filters what they read, then the projection.
async fn select(
    api: &Api,
    table: &Arc<TableDefinition>,
    parsed: &Parsed,
    options: &Options,
) -> ApiResult<Value> {
    let Statement::Select {
        projection,
        index,
        condition,
        order_by,
        ..
    } = &parsed.statement
    else {
        return Err(ApiError::validation("not a SELECT"));
    };
    let schema = read_schema(table, index.as_deref())?;
    let mut request = Map::new();
    request.insert("TableName".into(), json!(table.name));
    if let Some(index) = index {
        request.insert("IndexName".into(), json!(index));
    }
    if options.consistent {
        request.insert("ConsistentRead".into(), json!(true));
    }
    if let Some(limit) = options.limit {
        request.insert("Limit".into(), json!(limit));
    }
    if let Some(capacity) = &options.capacity {
        request.insert("ReturnConsumedCapacity".into(), json!(capacity));
    }
    if let Some(token) = &options.next_token {
        request.insert("ExclusiveStartKey".into(), decode_next_token(token)?);
    }
    // The key condition: the partition key's equality, and one condition
    // on the sort key if there is one.
    let mut keys = Placeholders::new(&parsed.parameters);
    let mut key_conditions = Vec::new();
    if let Some(condition) = condition {
        let all = conjuncts(condition);
        let partition = &schema.partition_key.name;
        let fixed = all
            .iter()
            .find(|c| equality(c).is_some_and(|(name, _)| name == partition));
        if let Some(fixed) = fixed {
            key_conditions.push(keys.condition(fixed).map_err(partiql_error)?);
            if let Some(sort) = &schema.sort_key
                && let Some(range) = all.iter().find(|c| is_sort_condition(c, &sort.name))
            {
                key_conditions.push(keys.condition(range).map_err(partiql_error)?);
            }
        }
    }
    let querying = !key_conditions.is_empty();
    if let Some((path, descending)) = order_by {
        let sorts_by_key = schema
            .sort_key
            .as_ref()
            .is_some_and(|sort| path.top_level() == Some(sort.name.as_str()))
            || path.top_level() == Some(schema.partition_key.name.as_str());
        if !querying {
            return Err(ApiError::validation(
                "Must have WHERE clause in the statement when using ORDER BY clause.",
            ));
        }
        if !sorts_by_key {
            return Err(ApiError::validation(
                "Variable reference in ORDER BY clause must be a key attribute.",
            ));
        }
        if *descending {
            request.insert("ScanIndexForward".into(), json!(false));
        }
    }
    if querying {
        request.insert(
            "KeyConditionExpression".into(),
            json!(key_conditions.join(" AND ")),
        );
        insert_placeholders(&mut request, keys);
    }
    let output = match querying {
        true => super::query::query(api, &request).await?,
        false => super::scan::scan(api, &request).await?,
    };
    let output = match output {
        super::Output::Json(value) => value,
        super::Output::Raw(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(format!("a read's answer: {e}")))?,
    };
    // The WHERE as a whole filters what was read.
    let filter = match condition {
        Some(condition) => {
            let mut placeholders = Placeholders::new(&parsed.parameters);
            let text = placeholders.condition(condition).map_err(partiql_error)?;
            let parsed_condition = atoll_expr::parse_condition(&text, ExpressionKind::Condition)
                .map_err(|e| ApiError::validation(e.message()))?;
            Some((parsed_condition, placeholders.names, placeholders.values))
        }
        None => None,
    };
    let mut items = Vec::new();
    for item in output
        .get("Items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let item = crate::attribute::decode_item(item, super::items::READ_LAYER)?;
        if let Some((condition, names, values)) = &filter {
            let env = Env { names, values };
            let keep = atoll_expr::evaluate(condition, &item, &env)
                .map_err(|e| ApiError::validation(e.message()))?;
            if !keep {
                continue;
            }
        }
        items.push(encode_map(&project(item, projection)));
    }
    let mut answer = Map::new();
    answer.insert("Items".into(), Value::Array(items));
    if let Some(last_key) = output.get("LastEvaluatedKey") {
        answer.insert("NextToken".into(), json!(encode_next_token(last_key)));
        answer.insert("LastEvaluatedKey".into(), last_key.clone());
    }
    if let Some(consumed) = output.get("ConsumedCapacity") {
        answer.insert("ConsumedCapacity".into(), consumed.clone());
    }
    Ok(Value::Object(answer))
}

/// Whether `condition` constrains sort key `sort` as a key condition may.
fn is_sort_condition(condition: &Expr, sort: &str) -> bool {
    let names = |expr: &Expr| matches!(expr, Expr::Path(path) if path.top_level() == Some(sort));
    let value = |expr: &Expr| !matches!(expr, Expr::Path(_));
    match condition {
        Expr::Compare(op, a, b) => *op != Compare::Ne && names(a) && value(b),
        Expr::Between(a, low, high) => names(a) && value(low) && value(high),
        Expr::Function(name, arguments) if name == "begins_with" => {
            matches!(arguments.as_slice(), [a, b] if names(a) && value(b))
        }
        _ => false,
    }
}

/// The attributes a SELECT returns of `item`: all, or each path's value
/// under the path's last name.
fn project(item: Item, projection: &Projection) -> Item {
    let Projection::Paths(paths) = projection else {
        return item;
    };
    let mut projected = Item::new();
    for path in paths {
        let mut steps = path.0.iter();
        let Some(Step::Name(first)) = steps.next() else {
            continue;
        };
        let mut current = item.get(first);
        for step in steps {
            current = match (current, step) {
                (Some(AttributeValue::M(map)), Step::Name(name)) => map.get(name),
                (Some(AttributeValue::L(list)), Step::Index(index)) => list.get(*index as usize),
                _ => None,
            };
        }
        if let (Some(value), Some(name)) = (current, path.last_name()) {
            projected.insert(name.to_string(), value.clone());
        }
    }
    projected
}
