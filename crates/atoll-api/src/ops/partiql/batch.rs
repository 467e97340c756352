//! BatchExecuteStatement (up to 25 statements, each answered on its own)
//! and ExecuteTransaction (up to 100, all reads as a TransactGetItems or
//! all writes as a TransactWriteItems).

use serde_json::{Map, Value, json};

use super::{
    DUPLICATE_ITEM, Options, Parsed, WriteOperation, check_statement, parse_statement, run,
    whole_key, write_request,
};
use crate::Api;
use crate::constraints::Violations;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{self, Object};
use crate::shape::common::{ATTRIBUTE_LIST, BOOLEAN, STRING};
use crate::shape::{Shape, check_members};
use atoll_partiql::Statement;

use super::super::transactions::{cancellation, check_list_length, check_request_token};

static BATCH_STATEMENT_REQUEST: Shape = Shape::Struct(
    "BatchStatementRequest",
    &[
        ("Statement", &STRING),
        ("Parameters", &ATTRIBUTE_LIST),
        ("ConsistentRead", &BOOLEAN),
        ("ReturnValuesOnConditionCheckFailure", &STRING),
    ],
);
static BATCH_STATEMENTS: Shape = Shape::List(&BATCH_STATEMENT_REQUEST);
static BATCH_EXECUTE_STATEMENT: &[(&str, &Shape)] = &[
    ("Statements", &BATCH_STATEMENTS),
    ("ReturnConsumedCapacity", &STRING),
];
const BATCH_EXECUTE_STATEMENT_MEMBERS: &[&str] = &["statements", "returnConsumedCapacity"];

static PARAMETERIZED_STATEMENT: Shape = Shape::Struct(
    "ParameterizedStatement",
    &[
        ("Statement", &STRING),
        ("Parameters", &ATTRIBUTE_LIST),
        ("ReturnValuesOnConditionCheckFailure", &STRING),
    ],
);
static TRANSACT_STATEMENTS: Shape = Shape::List(&PARAMETERIZED_STATEMENT);
static EXECUTE_TRANSACTION: &[(&str, &Shape)] = &[
    ("TransactStatements", &TRANSACT_STATEMENTS),
    ("ClientRequestToken", &STRING),
    ("ReturnConsumedCapacity", &STRING),
];
const EXECUTE_TRANSACTION_MEMBERS: &[&str] = &[
    "transactStatements",
    "clientRequestToken",
    "returnConsumedCapacity",
];

/// The statements of a batch or transaction, checked.
fn statements<'a>(
    violations: &mut Violations,
    member: &str,
    list: Option<&'a Vec<Value>>,
) -> Vec<&'a Object> {
    let mut found = Vec::new();
    for (i, statement) in list.into_iter().flatten().enumerate() {
        if let Some(statement) = statement.as_object() {
            check_statement(
                violations,
                member,
                &format!("{member}.{}.member", i + 1),
                statement,
            );
            found.push(statement);
        }
    }
    found
}

/// A statement's failure as a batch answers it.
fn statement_error(error: &ApiError) -> Value {
    let code = match error.kind {
        ErrorKind::ResourceNotFound => "ResourceNotFound",
        ErrorKind::ConditionalCheckFailed => "ConditionalCheckFailed",
        ErrorKind::DuplicateItem => "DuplicateItem",
        ErrorKind::TransactionConflict => "TransactionConflict",
        ErrorKind::ItemCollectionSizeLimitExceeded => "ItemCollectionSizeLimitExceeded",
        ErrorKind::Validation | ErrorKind::Serialization => "ValidationError",
        _ => "InternalServerError",
    };
    let mut body = Map::new();
    body.insert("Code".into(), json!(code));
    if let Some(message) = &error.message {
        body.insert("Message".into(), json!(message));
    }
    if let Some(item) = error.extra.as_ref().and_then(|extra| extra.get("Item")) {
        body.insert("Item".into(), item.clone());
    }
    Value::Object(body)
}

/// BatchExecuteStatement.
pub(crate) async fn batch_execute_statement(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(BATCH_EXECUTE_STATEMENT, input)?;
    let mut violations = Violations::new(BATCH_EXECUTE_STATEMENT_MEMBERS);
    let list = input::list(input, "Statements");
    check_list_length(&mut violations, "statements", list, 25);
    let objects = statements(&mut violations, "statements", list);
    let _ = super::ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    violations.into_result()?;
    let parsed: Vec<ApiResult<Parsed>> = objects
        .iter()
        .map(|object| parse_statement(api, object))
        .collect();
    let reads = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .filter(|p| p.statement.is_read())
        .count();
    let well_formed = parsed.iter().filter(|p| p.is_ok()).count();
    if reads > 0 && reads < well_formed {
        return Err(ApiError::validation(
            "Read and write requests together in the same batch is not supported.",
        ));
    }
    let mut responses = Vec::with_capacity(parsed.len());
    for (object, parsed) in objects.iter().zip(parsed) {
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                responses.push(json!({"Error": statement_error(&error)}));
                continue;
            }
        };
        let table = parsed.statement.table().to_string();
        let options = Options {
            consistent: input::boolean(object, "ConsistentRead").unwrap_or(false),
            return_old_on_failure: input::string(object, "ReturnValuesOnConditionCheckFailure")
                .map(str::to_string),
            ..Options::default()
        };
        match run_batch_member(api, &parsed, &options).await {
            Ok(item) => {
                let mut response = Map::new();
                response.insert("TableName".into(), json!(table));
                if let Some(item) = item {
                    response.insert("Item".into(), item);
                }
                responses.push(Value::Object(response));
            }
            Err(error) => {
                let mut response = Map::new();
                response.insert("Error".into(), statement_error(&error));
                if error.kind != ErrorKind::ResourceNotFound {
                    response.insert("TableName".into(), json!(table));
                }
                responses.push(Value::Object(response));
            }
        }
    }
    Ok(json!({ "Responses": responses }))
}

/// One statement of a batch: a read of one item (its whole key named), or a write.
async fn run_batch_member(
    api: &Api,
    parsed: &Parsed,
    options: &Options,
) -> ApiResult<Option<Value>> {
    if let Statement::Select {
        condition, index, ..
    } = &parsed.statement
    {
        let table = super::item_table(api, parsed.statement.table()).await?;
        let condition = condition
            .as_ref()
            .ok_or_else(|| ApiError::validation(super::WHOLE_KEY))?;
        if index.is_some() {
            return Err(ApiError::validation(
                "Reads on indices are not supported in a batch",
            ));
        }
        whole_key(&table.key_schema, condition, &parsed.parameters)?;
    }
    let answer = run(api, parsed, options).await?;
    Ok(match parsed.statement.is_read() {
        true => answer
            .get("Items")
            .and_then(Value::as_array)
            .and_then(|items| items.first())
            .cloned(),
        false => None,
    })
}

/// ExecuteTransaction.
pub(crate) async fn execute_transaction(api: &Api, input: &Object) -> ApiResult<Value> {
    check_members(EXECUTE_TRANSACTION, input)?;
    let mut violations = Violations::new(EXECUTE_TRANSACTION_MEMBERS);
    let list = input::list(input, "TransactStatements");
    check_list_length(&mut violations, "transactStatements", list, 100);
    let objects = statements(&mut violations, "transactStatements", list);
    check_request_token(&mut violations, input::string(input, "ClientRequestToken"));
    let _ = super::ReturnCapacity::parse(
        &mut violations,
        input::string(input, "ReturnConsumedCapacity"),
    );
    violations.into_result()?;
    let mut parsed = Vec::with_capacity(objects.len());
    for object in &objects {
        parsed.push(parse_statement(api, object)?);
    }
    let reads = parsed.iter().filter(|p| p.statement.is_read()).count();
    if reads > 0 && reads < parsed.len() {
        return Err(ApiError::validation(
            "ExecuteTransaction API does not support both read and write operations in the same request.",
        ));
    }
    let capacity = input::string(input, "ReturnConsumedCapacity");
    match reads > 0 {
        true => transact_reads(api, &parsed, capacity).await,
        false => {
            let token = input::string(input, "ClientRequestToken");
            transact_writes(api, &parsed, &objects, token, capacity).await
        }
    }
}

/// A read transaction: TransactGetItems of the items the SELECTs name.
async fn transact_reads(api: &Api, parsed: &[Parsed], capacity: Option<&str>) -> ApiResult<Value> {
    let mut gets = Vec::with_capacity(parsed.len());
    for (i, statement) in parsed.iter().enumerate() {
        let Statement::Select {
            condition, index, ..
        } = &statement.statement
        else {
            continue;
        };
        if index.is_some() {
            return Err(ApiError::validation(format!(
                "Validation failed in TransactStatements[{i}]: Reads on indices are not supported within transactions."
            )));
        }
        let table = super::item_table(api, statement.statement.table()).await?;
        let condition = condition
            .as_ref()
            .ok_or_else(|| ApiError::validation(super::WHOLE_KEY))?;
        let (key, _) = whole_key(&table.key_schema, condition, &statement.parameters)?;
        gets.push(
            json!({"Get": {"TableName": table.name, "Key": crate::attribute::encode_map(&key)}}),
        );
    }
    let mut request = Map::new();
    request.insert("TransactItems".into(), Value::Array(gets));
    if let Some(capacity) = capacity {
        request.insert("ReturnConsumedCapacity".into(), json!(capacity));
    }
    let mut answer = super::super::transactions::transact_get_items(api, &request).await?;
    // Each SELECT's projection, on what it read.
    if let Some(responses) = answer.get_mut("Responses").and_then(Value::as_array_mut) {
        for (response, statement) in responses.iter_mut().zip(parsed) {
            let Statement::Select { projection, .. } = &statement.statement else {
                continue;
            };
            if let Some(item) = response.get("Item") {
                let item = crate::attribute::decode_item(item, super::super::items::READ_LAYER)?;
                *response = json!({"Item": crate::attribute::encode_map(&super::project(item, projection))});
            }
        }
    }
    Ok(answer)
}

/// A write transaction: TransactWriteItems of the statements' writes.
async fn transact_writes(
    api: &Api,
    parsed: &[Parsed],
    objects: &[&Object],
    token: Option<&str>,
    capacity: Option<&str>,
) -> ApiResult<Value> {
    let mut actions = Vec::with_capacity(parsed.len());
    let mut inserts = Vec::with_capacity(parsed.len());
    for (i, (statement, object)) in parsed.iter().zip(objects).enumerate() {
        let returning = matches!(
            statement.statement,
            Statement::Update {
                returning: Some(_),
                ..
            } | Statement::Delete {
                returning: Some(_),
                ..
            }
        );
        if returning {
            return Err(ApiError::validation(format!(
                "Validation failed in TransactStatements[{i}]: RETURNING clause is not supported in ExecuteTransaction."
            )));
        }
        let table = super::item_table(api, statement.statement.table()).await?;
        let options = Options {
            return_old_on_failure: input::string(object, "ReturnValuesOnConditionCheckFailure")
                .map(str::to_string),
            ..Options::default()
        };
        let (operation, request) = write_request(&table, statement, &options)?;
        let kind = match operation {
            WriteOperation::Put => "Put",
            WriteOperation::Update => "Update",
            WriteOperation::Delete => "Delete",
        };
        inserts.push(operation == WriteOperation::Put);
        actions.push(json!({ kind: Value::Object(request) }));
    }
    let mut request = Map::new();
    request.insert("TransactItems".into(), Value::Array(actions));
    if let Some(token) = token {
        request.insert("ClientRequestToken".into(), json!(token));
    }
    if let Some(capacity) = capacity {
        request.insert("ReturnConsumedCapacity".into(), json!(capacity));
    }
    match super::super::transactions::transact_write_items(api, &request).await {
        Ok(mut answer) => {
            if let Some(object) = answer.as_object_mut() {
                object.insert("Responses".into(), json!([]));
            }
            Ok(answer)
        }
        Err(error) if error.kind == ErrorKind::TransactionCanceled => {
            Err(duplicates_named(error, &inserts))
        }
        Err(error) => Err(error),
    }
}

/// A cancellation whose INSERTs failed their no-such-item condition: their
/// reason is `DuplicateItem`, as DynamoDB words it.
fn duplicates_named(error: ApiError, inserts: &[bool]) -> ApiError {
    let Some(mut reasons) = error
        .extra
        .as_ref()
        .and_then(|extra| extra.get("CancellationReasons"))
        .and_then(Value::as_array)
        .cloned()
    else {
        return error;
    };
    for (reason, insert) in reasons.iter_mut().zip(inserts) {
        if *insert && reason["Code"] == "ConditionalCheckFailed" {
            *reason = json!({"Code": "DuplicateItem", "Message": DUPLICATE_ITEM});
        }
    }
    let codes: Vec<&str> = reasons
        .iter()
        .map(|reason| reason["Code"].as_str().unwrap_or("None"))
        .collect();
    cancellation(&codes, reasons.clone())
}
