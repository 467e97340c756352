//! TagResource, UntagResource, ListTagsOfResource, and tag validation.

use std::collections::HashSet;

use atoll_model::table::TableStatus;
use serde_json::{Value, json};

use super::table_settings::TAGS;
use crate::error::{ApiError, ApiResult, Doing, ErrorKind};
use crate::input::{self, Object};
use crate::shape::common::{STRING, STRING_LIST};
use crate::shape::{Shape, check_members};
use crate::{Api, RequestContext};

static TAG_RESOURCE: &[(&str, &Shape)] = &[("ResourceArn", &STRING), ("Tags", &TAGS)];
static UNTAG_RESOURCE: &[(&str, &Shape)] = &[("ResourceArn", &STRING), ("TagKeys", &STRING_LIST)];
static LIST_TAGS: &[(&str, &Shape)] = &[("ResourceArn", &STRING), ("NextToken", &STRING)];

const MAX_TAGS: usize = 50;

/// A tag as sent (either part may be missing).
pub(crate) type TagInput = (Option<String>, Option<String>);

/// Reads a `Tags` list.
pub(crate) fn read_tags(list: Option<&Vec<Value>>) -> Vec<(String, String)> {
    read_tag_inputs(list)
        .into_iter()
        .map(|(k, v)| (k.unwrap_or_default(), v.unwrap_or_default()))
        .collect()
}

fn read_tag_inputs(list: Option<&Vec<Value>>) -> Vec<TagInput> {
    list.into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|tag| {
            (
                input::string(tag, "Key").map(str::to_string),
                input::string(tag, "Value").map(str::to_string),
            )
        })
        .collect()
}

fn valid_tag_text(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "+-=._:/@".contains(c))
}

fn check_tag_key(key: Option<&str>) -> ApiResult<()> {
    match key {
        Some(key) if key.starts_with("aws:") => Err(ApiError::validation(format!(
            "Tag Key cannot be prefixed with aws:, Key: {key}"
        ))),
        Some(key) if !key.is_empty() && key.chars().count() <= 128 && valid_tag_text(key) => Ok(()),
        other => Err(ApiError::validation(format!(
            "The Tag Key provided is invalid, Key: {}",
            other.unwrap_or("null")
        ))),
    }
}

/// Checks tags as DynamoDB does; `existing` counts tags the resource already has.
pub(crate) fn check_tags(tags: &[(String, String)], existing: usize) -> ApiResult<()> {
    let mut seen = HashSet::new();
    for (key, value) in tags {
        check_tag_key(Some(key))?;
        if value.chars().count() > 256 || !valid_tag_text(value) {
            return Err(ApiError::validation(format!(
                "The Tag Value provided is invalid, Value: {value}"
            )));
        }
        if !seen.insert(key.as_str()) {
            return Err(ApiError::validation(format!(
                "Duplicate Tag Keys provided as input: Duplicate Tag Key found {key}"
            )));
        }
    }
    if tags.len() + existing > MAX_TAGS {
        return Err(ApiError::too_many_tags());
    }
    Ok(())
}

/// DynamoDB denies access to a table ARN it cannot resolve in the caller's account.
fn access_denied(context: &RequestContext, action: &str, arn: &str) -> ApiError {
    let account_id = &context.account_id;
    ApiError::new(
        ErrorKind::AccessDenied,
        format!(
            "User: arn:aws:iam::{account_id}:root is not authorized to perform: dynamodb:{action} on resource: {arn} because no identity-based policy allows the dynamodb:{action} action"
        ),
    )
}

/// The `ResourceArn` of a tagging request, as sent.
fn arn_of(input: &Object) -> &str {
    input::string(input, "ResourceArn").unwrap_or_default()
}

/// The table named by a tagging request's `ResourceArn`.
async fn table_of_arn(
    api: &Api,
    context: &RequestContext,
    input: &Object,
    action: &str,
) -> ApiResult<String> {
    let Some(arn) = input::string(input, "ResourceArn") else {
        return Err(ApiError::validation("Invalid TableArn"));
    };
    if !arn.starts_with("arn:") {
        return Err(ApiError::invalid_parameter(format!(
            "ARNs must start with 'arn:': {arn}"
        )));
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _partition, service, region, account, resource] = parts.as_slice() else {
        return Err(ApiError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        )));
    };
    if *service != "dynamodb" {
        return Err(ApiError::invalid_parameter(format!(
            "Provided Arn is not a DynamoDB resource arn: {arn}"
        )));
    }
    let Some(table) = resource.strip_prefix("table/") else {
        return Err(ApiError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        )));
    };
    if table.contains('/') {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid resource arn provided, only table or stream is accepted. Provided resource arn: {arn}"
        )));
    }
    if *region != context.region {
        return Err(ApiError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        )));
    }
    if *account != context.account_id {
        return Err(access_denied(context, action, arn));
    }
    // The live service (2026): a table being created is not found yet; one
    // being deleted is in use for the operations that change it.
    match api
        .cluster
        .catalog()
        .table_or_catch_up(table)
        .await
        .map(|t| t.status)
    {
        Some(TableStatus::Active | TableStatus::Updating) => Ok(table.to_string()),
        Some(TableStatus::Deleting) if action != "ListTagsOfResource" => {
            Err(ApiError::being_deleted(table))
        }
        _ => Err(ApiError::resource_not_found(arn)),
    }
}

/// TagResource. DynamoDB answers success with an empty body, not `{}`.
pub(crate) async fn tag_resource(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<()> {
    check_members(TAG_RESOURCE, input)?;
    if !input::has(input, "Tags") {
        return Err(ApiError::validation(
            "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
        ));
    }
    let table = table_of_arn(api, context, input, "TagResource").await?;
    let tags = read_tag_inputs(input::list(input, "Tags"));
    if tags.is_empty() {
        return Err(ApiError::validation(
            "Atleast one Tag needs to be provided as Input.",
        ));
    }
    for (key, value) in &tags {
        check_tag_key(key.as_deref())?;
        if value.is_none() {
            return Err(ApiError::validation(
                "The Tag Value provided is invalid, Value: null",
            ));
        }
    }
    let tags: Vec<(String, String)> = tags
        .into_iter()
        .map(|(k, v)| (k.unwrap_or_default(), v.unwrap_or_default()))
        .collect();
    let existing = api
        .cluster
        .catalog()
        .table(&table)
        .map(|t| t.tags.clone())
        .unwrap_or_default();
    // Tags the request overwrites do not count twice against the limit.
    let kept = existing
        .iter()
        .filter(|(key, _)| !tags.iter().any(|(new, _)| new == key))
        .count();
    check_tags(&tags, kept)?;
    api.cluster
        .tag_table(&table, tags)
        .await
        .map_err(|e| ApiError::from_cluster(e, Doing::Tags(arn_of(input))))
}

/// UntagResource. DynamoDB answers success with an empty body, not `{}`.
pub(crate) async fn untag_resource(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<()> {
    check_members(UNTAG_RESOURCE, input)?;
    if !input::has(input, "TagKeys") {
        return Err(ApiError::validation(
            "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
        ));
    }
    let table = table_of_arn(api, context, input, "UntagResource").await?;
    let keys: Vec<String> = input::list(input, "TagKeys")
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(ApiError::validation(
            "Atleast one Tag Key needs to be provided as Input.",
        ));
    }
    if keys.len() > MAX_TAGS {
        return Err(ApiError::too_many_tags());
    }
    for key in &keys {
        if key.is_empty() || key.chars().count() > 128 || !valid_tag_text(key) {
            return Err(ApiError::validation(format!(
                "The Tag Key provided is invalid, Key: {key}"
            )));
        }
    }
    api.cluster
        .untag_table(&table, keys)
        .await
        .map_err(|e| ApiError::from_cluster(e, Doing::Tags(arn_of(input))))
}

/// ListTagsOfResource.
pub(crate) async fn list_tags_of_resource(
    api: &Api,
    context: &RequestContext,
    input: &Object,
) -> ApiResult<Value> {
    check_members(LIST_TAGS, input)?;
    let table = table_of_arn(api, context, input, "ListTagsOfResource").await?;
    let tags: Vec<Value> = api
        .cluster
        .catalog()
        .table(&table)
        .map(|t| t.tags.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| json!({"Key": key, "Value": value}))
        .collect();
    Ok(json!({"Tags": tags}))
}
