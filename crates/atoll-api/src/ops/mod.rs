//! The operations: each parses its input, validates it in DynamoDB's order and
//! executes it against the cluster.

mod batch;
mod capacity;
mod describe;
mod expressions;
mod indexes;
mod items;
mod keys;
mod legacy_input;
mod pages;
mod query;
mod reads;
mod scan;
mod table_settings;
mod tables;
mod tags;
mod update_item;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::Object;
use crate::operation::Operation;
use crate::{Api, RequestContext};

/// Runs `operation` on `input`.
pub(crate) async fn dispatch(
    api: &Api,
    context: &RequestContext,
    operation: Operation,
    input: &Object,
) -> ApiResult<Value> {
    match operation {
        Operation::CreateTable => tables::create_table(api, context, input).await,
        Operation::DescribeTable => tables::describe_table(api, context, input),
        Operation::ListTables => tables::list_tables(api, input),
        Operation::UpdateTable => tables::update_table(api, context, input).await,
        Operation::DeleteTable => tables::delete_table(api, context, input).await,
        Operation::DescribeLimits => Ok(json!({
            "AccountMaxReadCapacityUnits": 80000,
            "AccountMaxWriteCapacityUnits": 80000,
            "TableMaxReadCapacityUnits": 40000,
            "TableMaxWriteCapacityUnits": 40000,
        })),
        Operation::DescribeEndpoints => Ok(json!({
            "Endpoints": [{"Address": api.config.endpoint_address, "CachePeriodInMinutes": 1440}]
        })),
        Operation::TagResource => tags::tag_resource(api, context, input).await,
        Operation::UntagResource => tags::untag_resource(api, context, input).await,
        Operation::ListTagsOfResource => tags::list_tags_of_resource(api, context, input),
        Operation::PutItem => items::put_item(api, input).await,
        Operation::GetItem => items::get_item(api, input).await,
        Operation::DeleteItem => items::delete_item(api, input).await,
        Operation::UpdateItem => update_item::update_item(api, input).await,
        Operation::Query => query::query(api, input).await,
        Operation::Scan => scan::scan(api, input).await,
        Operation::BatchGetItem => batch::batch_get_item(api, input).await,
        Operation::BatchWriteItem => batch::batch_write_item(api, input).await,
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

/// Maps an error of the cluster to the wire for item operations.
fn cluster_error(error: atoll_cluster::ClusterError) -> ApiError {
    use atoll_cluster::ClusterError as E;
    match error {
        // A partition disappears with its table: a request racing DeleteTable
        // sees the table as gone.
        E::TableNotFound(_) | E::NoPartition { .. } => ApiError::item_table_not_found(),
        E::TableInUse(name) => ApiError::new(
            ErrorKind::ResourceInUse,
            format!(
                "Attempt to change a resource which is still in use: Table is being created: {name}"
            ),
        ),
        e if e.is_retryable() => ApiError::new(ErrorKind::ServiceUnavailable, e.to_string()),
        e => ApiError::internal(e.to_string()),
    }
}
