//! The operations: each parses its input, validates it in DynamoDB's order and
//! executes it against the cluster.

mod batch;
mod capacity;
mod describe;
mod expressions;
mod index_reads;
mod index_writes;
pub(crate) use index_writes::empty_index_key_error;
mod indexes;
mod items;
mod keys;
mod legacy_input;
mod pages;
mod partiql;
mod query;
mod reads;
mod scan;
mod streams;
mod table_settings;
mod tables;
mod tags;
mod transactions;
mod ttl;
mod update_item;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::Object;
use crate::operation::Operation;
use crate::{Api, RequestContext};

/// A successful response body.
#[derive(Debug)]
pub(crate) enum Output {
    /// A JSON value, serialised on the way out.
    Json(Value),
    /// JSON text written directly (the hot read paths).
    Raw(Vec<u8>),
}

impl From<Value> for Output {
    fn from(value: Value) -> Self {
        Output::Json(value)
    }
}

/// Builds a JSON object as text, member by member.
pub(crate) struct RawObject {
    buffer: Vec<u8>,
    empty: bool,
}

impl RawObject {
    /// An object with room for about `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut buffer = Vec::with_capacity(capacity + 2);
        buffer.push(b'{');
        RawObject {
            buffer,
            empty: true,
        }
    }

    /// Starts member `name`; the caller writes its value into the returned buffer.
    pub(crate) fn member(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.buffer.push(b',');
        }
        self.empty = false;
        self.buffer.push(b'"');
        self.buffer.extend_from_slice(name.as_bytes());
        self.buffer.extend_from_slice(b"\":");
        &mut self.buffer
    }

    /// Adds member `name` with a JSON value.
    pub(crate) fn value(&mut self, name: &str, value: &Value) {
        let buffer = self.member(name);
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(buffer, value);
    }

    /// The finished object.
    pub(crate) fn finish(mut self) -> Output {
        self.buffer.push(b'}');
        Output::Raw(self.buffer)
    }
}

/// Runs `operation` on `input`.
pub(crate) async fn dispatch(
    api: &Api,
    context: &RequestContext,
    operation: Operation,
    input: &Object,
) -> ApiResult<Output> {
    let json = |result: ApiResult<Value>| result.map(Output::from);
    match operation {
        Operation::CreateTable => json(tables::create_table(api, context, input).await),
        Operation::DescribeTable => json(tables::describe_table(api, context, input).await),
        Operation::ListTables => json(tables::list_tables(api, input).await),
        Operation::UpdateTable => json(tables::update_table(api, context, input).await),
        Operation::DeleteTable => json(tables::delete_table(api, context, input).await),
        Operation::DescribeLimits => json(Ok(json!({
            "AccountMaxReadCapacityUnits": 80000,
            "AccountMaxWriteCapacityUnits": 80000,
            "TableMaxReadCapacityUnits": 40000,
            "TableMaxWriteCapacityUnits": 40000,
        }))),
        Operation::DescribeEndpoints => json(Ok(json!({
            "Endpoints": [{"Address": api.config.endpoint_address, "CachePeriodInMinutes": 1440}]
        }))),
        Operation::TagResource => tags::tag_resource(api, context, input)
            .await
            .map(|()| Output::Raw(Vec::new())),
        Operation::UntagResource => tags::untag_resource(api, context, input)
            .await
            .map(|()| Output::Raw(Vec::new())),
        Operation::ListTagsOfResource => {
            json(tags::list_tags_of_resource(api, context, input).await)
        }
        Operation::PutItem => json(items::put_item(api, input).await),
        Operation::GetItem => items::get_item(api, input).await,
        Operation::DeleteItem => json(items::delete_item(api, input).await),
        Operation::UpdateItem => json(update_item::update_item(api, input).await),
        Operation::Query => query::query(api, input).await,
        Operation::Scan => scan::scan(api, input).await,
        Operation::BatchGetItem => json(batch::batch_get_item(api, input).await),
        Operation::BatchWriteItem => json(batch::batch_write_item(api, input).await),
        Operation::ListStreams => json(streams::list_streams(api, context, input).await),
        Operation::DescribeStream => json(streams::describe_stream(api, context, input).await),
        Operation::GetShardIterator => json(streams::get_shard_iterator(api, context, input).await),
        Operation::GetRecords => json(streams::get_records(api, context, input).await),
        Operation::UpdateTimeToLive => json(ttl::update_time_to_live(api, input).await),
        Operation::DescribeTimeToLive => json(ttl::describe_time_to_live(api, input).await),
        Operation::TransactWriteItems => json(transactions::transact_write_items(api, input).await),
        Operation::TransactGetItems => json(transactions::transact_get_items(api, input).await),
        Operation::ExecuteStatement => json(partiql::execute_statement(api, input).await),
        Operation::BatchExecuteStatement => {
            json(partiql::batch_execute_statement(api, input).await)
        }
        Operation::ExecuteTransaction => json(partiql::execute_transaction(api, input).await),
        other => Err(unsupported_operation(other)),
    }
}

/// The answer to an operation Atoll does not implement yet.
fn unsupported_operation(operation: Operation) -> ApiError {
    ApiError::new(
        ErrorKind::UnknownOperation,
        format!(
            "Atoll does not support the operation {} yet: it is not supported",
            operation.name()
        ),
    )
}

/// The answer to a request parameter Atoll does not implement yet.
fn unsupported_parameter(parameter: &str) -> ApiError {
    ApiError::validation(format!("{parameter} is not supported by Atoll yet"))
}

/// DynamoDB's checks of expression parameters against their legacy
/// counterparts: both kinds at once, or names/values with no expression.
/// `legacy` and `expressions` are the parameter names of each kind that the
/// operation has; `values_hint` completes DynamoDB's message for unused values
/// (`None` where the operation has no `ExpressionAttributeValues`), and
/// values count as used only with one of `value_expressions`. `hint` says
/// whether the values message names the missing expressions (the classic
/// wording; DynamoDB's 2026 layer on writes stops after "expressions").
fn check_expression_parameters(
    input: &Object,
    legacy: &[&str],
    expressions: &[&str],
    values_hint: Option<(&str, &[&str])>,
    hint: bool,
) -> ApiResult<()> {
    let present = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|name| crate::input::has(input, name))
            .map(|name| name.to_string())
            .collect()
    };
    let legacy_present = present(legacy);
    let expressions_present = present(expressions);
    if !legacy_present.is_empty() && !expressions_present.is_empty() {
        return Err(ApiError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            legacy_present.join(", "),
            expressions_present.join(", ")
        )));
    }
    if expressions_present.is_empty() && crate::input::has(input, "ExpressionAttributeNames") {
        return Err(ApiError::validation(
            "ExpressionAttributeNames can only be specified when using expressions",
        ));
    }
    if let Some((values_hint, value_expressions)) = values_hint
        && present(value_expressions).is_empty()
        && crate::input::has(input, "ExpressionAttributeValues")
    {
        let message = "ExpressionAttributeValues can only be specified when using expressions";
        return Err(ApiError::validation(if hint {
            format!("{message}: {values_hint}")
        } else {
            message.to_string()
        }));
    }
    Ok(())
}
