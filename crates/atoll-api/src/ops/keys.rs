//! Key schemas and attribute definitions in requests (tables and indexes), and
//! the checks of key values in item requests.

use atoll_cluster::data::ItemKey;
use atoll_model::table::{KeySchema, ScalarType};
use atoll_model::{AttributeValue, Item, MAX_PARTITION_KEY_SIZE_BYTES, MAX_SORT_KEY_SIZE_BYTES};
use serde_json::Value;

use crate::constraints::{Shown, Violations, enum_constraint};
use crate::error::{ApiError, ApiResult};
use crate::input::{self, Object};

/// One `KeySchemaElement` as sent.
pub(crate) struct KeyElement {
    pub(crate) name: Option<String>,
    pub(crate) key_type: Option<String>,
}

/// One `AttributeDefinition` as sent.
pub(crate) struct AttributeDefinitionInput {
    pub(crate) name: Option<String>,
    pub(crate) attribute_type: Option<String>,
}

fn objects(list: Option<&Vec<Value>>) -> impl Iterator<Item = Option<&Object>> {
    list.into_iter().flatten().map(Value::as_object)
}

/// Reads a `KeySchema` list.
pub(crate) fn key_elements(list: Option<&Vec<Value>>) -> Vec<KeyElement> {
    objects(list)
        .map(|element| KeyElement {
            name: element
                .and_then(|e| input::string(e, "AttributeName"))
                .map(str::to_string),
            key_type: element
                .and_then(|e| input::string(e, "KeyType"))
                .map(str::to_string),
        })
        .collect()
}

/// Reads an `AttributeDefinitions` list.
pub(crate) fn attribute_definitions(list: Option<&Vec<Value>>) -> Vec<AttributeDefinitionInput> {
    objects(list)
        .map(|element| AttributeDefinitionInput {
            name: element
                .and_then(|e| input::string(e, "AttributeName"))
                .map(str::to_string),
            attribute_type: element
                .and_then(|e| input::string(e, "AttributeType"))
                .map(str::to_string),
        })
        .collect()
}

/// Refuses an attribute defined twice, whatever its types: DynamoDB's
/// "Attribute Name is duplicated: p" (the live service, 2026; no envelope).
pub(crate) fn check_duplicate_definitions(
    definitions: &[AttributeDefinitionInput],
) -> ApiResult<()> {
    let mut seen = std::collections::HashSet::new();
    for name in definitions.iter().filter_map(|d| d.name.as_deref()) {
        if !seen.insert(name) {
            return Err(ApiError::validation(format!(
                "Attribute Name is duplicated: {name}"
            )));
        }
    }
    Ok(())
}

/// Java's rendering of a key schema list, as DynamoDB echoes it in messages.
fn render_key_schema(elements: &[KeyElement]) -> String {
    let rendered: Vec<String> = elements
        .iter()
        .map(|e| {
            format!(
                "KeySchemaElement(attributeName={}, keyType={})",
                e.name.as_deref().unwrap_or("null"),
                e.key_type.as_deref().unwrap_or("null")
            )
        })
        .collect();
    format!("[{}]", rendered.join(", "))
}

fn check_attribute_name(violations: &mut Violations, member: &str, path: &str, name: Option<&str>) {
    match name {
        None => violations.not_null(member, path),
        Some(name) if name.is_empty() => violations.add(
            member,
            Shown::Text(name),
            path,
            "Member must have length greater than or equal to 1",
        ),
        Some(name) if name.len() > 255 => violations.add(
            member,
            Shown::Text(name),
            path,
            "Member must have length less than or equal to 255",
        ),
        Some(_) => {}
    }
}

/// Framework constraints of a key schema at `path` (top-level `member`).
pub(crate) fn check_key_schema_constraints(
    violations: &mut Violations,
    member: &str,
    path: &str,
    present: bool,
    elements: &[KeyElement],
) {
    if !present {
        violations.not_null(member, path);
        return;
    }
    let rendered = render_key_schema(elements);
    if elements.is_empty() {
        violations.add(
            member,
            Shown::Text(&rendered),
            path,
            "Member must have length greater than or equal to 1",
        );
    }
    if elements.len() > 2 {
        violations.add(
            member,
            Shown::Text(&rendered),
            path,
            "Member must have length less than or equal to 2",
        );
    }
    for (i, element) in elements.iter().enumerate() {
        let at = |field: &str| format!("{path}.{}.member.{field}", i + 1);
        check_attribute_name(
            violations,
            member,
            &at("attributeName"),
            element.name.as_deref(),
        );
        match element.key_type.as_deref() {
            None => violations.not_null(member, &at("keyType")),
            Some(t) if t != "HASH" && t != "RANGE" => violations.add(
                member,
                Shown::Text(t),
                &at("keyType"),
                &enum_constraint(&["HASH", "RANGE"]),
            ),
            Some(_) => {}
        }
    }
}

/// Framework constraints of attribute definitions.
pub(crate) fn check_attribute_definition_constraints(
    violations: &mut Violations,
    present: bool,
    definitions: &[AttributeDefinitionInput],
) {
    if !present {
        violations.not_null("attributeDefinitions", "attributeDefinitions");
        return;
    }
    for (i, definition) in definitions.iter().enumerate() {
        let at = |field: &str| format!("attributeDefinitions.{}.member.{field}", i + 1);
        match definition.attribute_type.as_deref() {
            None => violations.not_null("attributeDefinitions", &at("attributeType")),
            Some(t) if ScalarType::parse(t).is_none() => violations.add(
                "attributeDefinitions",
                Shown::Text(t),
                &at("attributeType"),
                &enum_constraint(&["B", "N", "S"]),
            ),
            Some(_) => {}
        }
        check_attribute_name(
            violations,
            "attributeDefinitions",
            &at("attributeName"),
            definition.name.as_deref(),
        );
    }
}

/// DynamoDB's semantic checks of one key schema (table or index) against the
/// attribute definitions; `index` names the index for index-specific texts.
pub(crate) fn check_key_schema_semantics(
    elements: &[KeyElement],
    definitions: &[AttributeDefinitionInput],
) -> ApiResult<()> {
    let defined = |name: &str| definitions.iter().any(|d| d.name.as_deref() == Some(name));
    let key_names: Vec<&str> = elements.iter().filter_map(|e| e.name.as_deref()).collect();
    if key_names.iter().any(|name| !defined(name)) {
        let defs: Vec<&str> = definitions
            .iter()
            .filter_map(|d| d.name.as_deref())
            .collect();
        return Err(ApiError::invalid_parameter(format!(
            "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            key_names.join(", "),
            defs.join(", ")
        )));
    }
    if let [first, second] = key_names.as_slice()
        && first == second
    {
        return Err(ApiError::validation(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ));
    }
    if elements.first().and_then(|e| e.key_type.as_deref()) != Some("HASH") {
        return Err(ApiError::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    if let Some(second) = elements.get(1)
        && second.key_type.as_deref() != Some("RANGE")
    {
        return Err(ApiError::validation(
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
        ));
    }
    Ok(())
}

/// The declared type of `name` among the definitions.
pub(crate) fn defined_type(
    definitions: &[AttributeDefinitionInput],
    name: &str,
) -> Option<ScalarType> {
    definitions
        .iter()
        .find(|d| d.name.as_deref() == Some(name))
        .and_then(|d| d.attribute_type.as_deref())
        .and_then(ScalarType::parse)
}

/// UTF-8 or raw size of a key value, as DynamoDB limits it (numbers are not limited).
fn key_size_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        _ => 0,
    }
}

fn check_key_not_empty(name: &str, value: &AttributeValue) -> ApiResult<()> {
    let kind = match value {
        AttributeValue::S(s) if s.is_empty() => "string",
        AttributeValue::B(b) if b.is_empty() => "binary",
        _ => return Ok(()),
    };
    Err(ApiError::validation(format!(
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {name}"
    )))
}

fn check_key_sizes(
    schema: &KeySchema,
    partition: &AttributeValue,
    sort: Option<&AttributeValue>,
) -> ApiResult<()> {
    if key_size_bytes(partition) > MAX_PARTITION_KEY_SIZE_BYTES {
        return Err(ApiError::invalid_parameter(
            "Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    if schema.sort_key.is_some()
        && sort.is_some_and(|s| key_size_bytes(s) > MAX_SORT_KEY_SIZE_BYTES)
    {
        return Err(ApiError::invalid_parameter(
            "Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ));
    }
    Ok(())
}

/// Checks the key attributes of an item to be written (PutItem's wording).
pub(crate) fn check_item_key(schema: &KeySchema, item: &Item) -> ApiResult<()> {
    for attribute in std::iter::once(&schema.partition_key).chain(schema.sort_key.as_ref()) {
        let Some(value) = item.get(&attribute.name) else {
            return Err(ApiError::invalid_parameter(format!(
                "Missing the key {} in the item",
                attribute.name
            )));
        };
        if !attribute.scalar_type.matches(value) {
            return Err(ApiError::invalid_parameter(format!(
                "Type mismatch for key {} expected: {} actual: {}",
                attribute.name,
                attribute.scalar_type.as_str(),
                value.type_name()
            )));
        }
        check_key_not_empty(&attribute.name, value)?;
    }
    let (partition, sort) = schema.key_values(item).ok_or_else(|| {
        ApiError::validation("The provided key element does not match the schema")
    })?;
    check_key_sizes(schema, partition, sort)
}

/// Checks the key attributes of an item written by BatchWriteItem (its wording).
pub(crate) fn check_batch_item_key(schema: &KeySchema, item: &Item) -> ApiResult<()> {
    for attribute in std::iter::once(&schema.partition_key).chain(schema.sort_key.as_ref()) {
        match item.get(&attribute.name) {
            Some(value) if attribute.scalar_type.matches(value) => {
                check_key_not_empty(&attribute.name, value)?
            }
            _ => {
                return Err(ApiError::validation(
                    "The provided key element does not match the schema",
                ));
            }
        }
    }
    let (partition, sort) = schema.key_values(item).ok_or_else(|| {
        ApiError::validation("The provided key element does not match the schema")
    })?;
    check_key_sizes(schema, partition, sort)
}

/// Checks a `Key` parameter: exactly the key attributes, of the declared types.
pub(crate) fn check_key(schema: &KeySchema, key: &Item) -> ApiResult<()> {
    let expected = 1 + usize::from(schema.sort_key.is_some());
    let mismatch = || ApiError::validation("The provided key element does not match the schema");
    if key.len() != expected {
        return Err(mismatch());
    }
    for attribute in std::iter::once(&schema.partition_key).chain(schema.sort_key.as_ref()) {
        match key.get(&attribute.name) {
            Some(value) if attribute.scalar_type.matches(value) => {}
            _ => return Err(mismatch()),
        }
    }
    for attribute in std::iter::once(&schema.partition_key).chain(schema.sort_key.as_ref()) {
        if let Some(value) = key.get(&attribute.name) {
            check_key_not_empty(&attribute.name, value)?;
        }
    }
    let (partition, sort) = schema.key_values(key).ok_or_else(mismatch)?;
    check_key_sizes(schema, partition, sort)
}

/// Where the item or key (already checked against `schema`) lives.
pub(crate) fn locate(schema: &KeySchema, item: &Item) -> ApiResult<ItemKey> {
    ItemKey::of(schema, item).map_err(ApiError::from)
}
