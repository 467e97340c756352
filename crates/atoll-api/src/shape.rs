//! Type-checking a request body against the operation's input shape.
//!
//! DynamoDB deserialises requests with a Java framework and reports the first
//! member of the wrong JSON type (in document order) as a
//! SerializationException whose text names Java types. This walks the body the
//! same way so that clients see the same messages; the typed extraction that
//! follows can then rely on every member having the right JSON type.

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// The JSON shape of a request member.
pub enum Shape {
    /// A string.
    String,
    /// A boolean (some strings are coerced, as DynamoDB does).
    Boolean,
    /// A 64-bit integer (`Long` in DynamoDB's model).
    Long,
    /// A 32-bit integer.
    Integer,
    /// Base64-encoded bytes.
    Blob,
    /// A list of members of one shape; the name is the element's Java class for messages.
    List(&'static Shape),
    /// A map from strings to one shape; the name is the Java map type for messages.
    Map(&'static Shape, &'static str),
    /// A structure: its Java class name and its members.
    Struct(&'static str, &'static [(&'static str, &'static Shape)]),
}

/// Where a value sits: as a structure member ("field") or as a list/map element ("value").
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    Field,
    Value,
}

fn scalar_kind(value: &Value) -> &'static str {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => "NUMBER_VALUE",
        Value::Number(_) => "DECIMAL_VALUE",
        Value::Bool(true) => "TRUE_VALUE",
        Value::Bool(false) => "FALSE_VALUE",
        Value::String(_) => "STRING_VALUE",
        _ => "VALUE",
    }
}

const START_OF_STRUCTURE: &str = "Start of structure or map found where not expected";

/// Whether a JSON string is one DynamoDB coerces to a boolean, and to which.
pub fn coerce_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Decodes a Blob member as DynamoDB does, with its error texts.
pub fn decode_blob(text: &str) -> ApiResult<Vec<u8>> {
    let length = text.len();
    if !length.is_multiple_of(4) {
        return Err(ApiError::serialization(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {length}"
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| ApiError::serialization("Invalid last non-pad Base64 character dectected"))
}

impl Shape {
    /// Checks `value` against this shape.
    #[cfg(test)]
    pub fn check(&self, value: &Value) -> ApiResult<()> {
        self.check_at(value, Position::Field)
    }

    fn check_at(&self, value: &Value, position: Position) -> ApiResult<()> {
        if value.is_null() {
            return Ok(());
        }
        match self {
            Shape::String => match value {
                Value::String(_) => Ok(()),
                Value::Array(_) => Err(ApiError::serialization(
                    "Unrecognized collection type class java.lang.String",
                )),
                Value::Object(_) => Err(ApiError::serialization(START_OF_STRUCTURE)),
                other => Err(ApiError::serialization(format!(
                    "{} cannot be converted to String",
                    scalar_kind(other)
                ))),
            },
            Shape::Boolean => match value {
                Value::Bool(_) => Ok(()),
                Value::String(text) if coerce_bool(text).is_some() => Ok(()),
                Value::String(_) => Err(ApiError::serialization(
                    "Unexpected token received from parser",
                )),
                Value::Array(_) => Err(ApiError::serialization(
                    "Unrecognized collection type class java.lang.Boolean",
                )),
                Value::Object(_) => Err(ApiError::serialization(START_OF_STRUCTURE)),
                other => Err(ApiError::serialization(format!(
                    "{} cannot be converted to Boolean",
                    scalar_kind(other)
                ))),
            },
            Shape::Long | Shape::Integer => {
                let java = if matches!(self, Shape::Long) {
                    "Long"
                } else {
                    "Integer"
                };
                match value {
                    Value::Number(_) => Ok(()),
                    Value::Array(_) => Err(ApiError::serialization(format!(
                        "Unrecognized collection type class java.lang.{java}"
                    ))),
                    Value::Object(_) => Err(ApiError::serialization(START_OF_STRUCTURE)),
                    other => Err(ApiError::serialization(format!(
                        "{} cannot be converted to {java}",
                        scalar_kind(other)
                    ))),
                }
            }
            Shape::Blob => match value {
                Value::String(text) => decode_blob(text).map(|_| ()),
                Value::Array(_) => Err(ApiError::serialization(
                    "Unrecognized collection type class java.nio.ByteBuffer",
                )),
                Value::Object(_) => Err(ApiError::serialization(START_OF_STRUCTURE)),
                _ => Err(ApiError::serialization(
                    "only base-64-encoded strings are convertible to bytes",
                )),
            },
            Shape::List(element) => match value {
                Value::Array(items) => {
                    for item in items {
                        element.check_at(item, Position::Value)?;
                    }
                    Ok(())
                }
                Value::Object(_) => Err(ApiError::serialization(START_OF_STRUCTURE)),
                _ => Err(ApiError::serialization("Unexpected field type")),
            },
            Shape::Map(element, java_type) => match value {
                Value::Object(entries) => {
                    for item in entries.values() {
                        element.check_at(item, Position::Value)?;
                    }
                    Ok(())
                }
                Value::Array(_) => Err(ApiError::serialization(format!(
                    "Unrecognized collection type {java_type}"
                ))),
                _ => Err(ApiError::serialization("Unexpected field type")),
            },
            Shape::Struct(class, members) => match value {
                Value::Object(entries) => check_members(members, entries),
                Value::Array(_) => Err(ApiError::serialization(format!(
                    "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.{class}"
                ))),
                _ if position == Position::Value => {
                    Err(ApiError::serialization("Unexpected value type in payload"))
                }
                _ => Err(ApiError::serialization("Unexpected field type")),
            },
        }
    }
}

/// Checks the members of an object in document order; unknown members are ignored.
pub fn check_members(
    members: &[(&'static str, &'static Shape)],
    entries: &Map<String, Value>,
) -> ApiResult<()> {
    for (name, value) in entries {
        if let Some((_, shape)) = members.iter().find(|(member, _)| member == name) {
            shape.check_at(value, Position::Field)?;
        }
    }
    Ok(())
}

/// Shapes shared by several operations.
pub mod common {
    use super::Shape;

    /// A string.
    pub static STRING: Shape = Shape::String;
    /// A boolean.
    pub static BOOLEAN: Shape = Shape::Boolean;
    /// A 64-bit integer.
    pub static LONG: Shape = Shape::Long;
    /// A 32-bit integer.
    pub static INTEGER: Shape = Shape::Integer;
    /// Bytes.
    pub static BLOB: Shape = Shape::Blob;
    /// A list of strings.
    pub static STRING_LIST: Shape = Shape::List(&STRING);
    /// A list of blobs.
    pub static BLOB_LIST: Shape = Shape::List(&BLOB);
    /// Map of strings (ExpressionAttributeNames).
    pub static STRING_MAP: Shape =
        Shape::Map(&STRING, "java.util.Map<java.lang.String, java.lang.String>");

    /// An AttributeValue, recursively.
    pub static ATTRIBUTE_VALUE: Shape = Shape::Struct(
        "AttributeValue",
        &[
            ("S", &STRING),
            ("N", &STRING),
            ("B", &BLOB),
            ("SS", &STRING_LIST),
            ("NS", &STRING_LIST),
            ("BS", &BLOB_LIST),
            ("M", &ATTRIBUTE_MAP),
            ("L", &ATTRIBUTE_LIST),
            ("NULL", &BOOLEAN),
            ("BOOL", &BOOLEAN),
        ],
    );
    /// A map of attribute values (an item, a key, an `M`).
    pub static ATTRIBUTE_MAP: Shape = Shape::Map(
        &ATTRIBUTE_VALUE,
        "java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>",
    );
    /// A list of attribute values.
    pub static ATTRIBUTE_LIST: Shape = Shape::List(&ATTRIBUTE_VALUE);
    /// A list of items or keys.
    pub static ATTRIBUTE_MAP_LIST: Shape = Shape::List(&ATTRIBUTE_MAP);
}

#[cfg(test)]
mod tests {
    use super::common::*;
    use super::*;
    use serde_json::json;

    fn message(shape: &Shape, value: Value) -> Option<String> {
        shape.check(&value).err().and_then(|e| e.message)
    }

    #[test]
    fn wrong_types_get_dynamodbs_serialization_messages() {
        assert_eq!(
            message(&STRING, json!(5)).as_deref(),
            Some("NUMBER_VALUE cannot be converted to String")
        );
        assert_eq!(
            message(&STRING, json!(1.5)).as_deref(),
            Some("DECIMAL_VALUE cannot be converted to String")
        );
        assert_eq!(
            message(&STRING, json!(true)).as_deref(),
            Some("TRUE_VALUE cannot be converted to String")
        );
        assert_eq!(
            message(&STRING, json!({})).as_deref(),
            Some(START_OF_STRUCTURE)
        );
        assert_eq!(
            message(&BOOLEAN, json!("23")).as_deref(),
            Some("Unexpected token received from parser")
        );
        assert_eq!(message(&BOOLEAN, json!("yes")), None);
        assert_eq!(
            message(&LONG, json!("5")).as_deref(),
            Some("STRING_VALUE cannot be converted to Long")
        );
        assert_eq!(
            message(&BLOB, json!("23456")).as_deref(),
            Some("Base64 encoded length is expected a multiple of 4 bytes but found: 5")
        );
        assert_eq!(
            message(&ATTRIBUTE_MAP, json!({"a": 5})).as_deref(),
            Some("Unexpected value type in payload")
        );
        assert_eq!(
            message(&ATTRIBUTE_MAP, json!({"a": {"M": {"b": {"S": 1}}}})).as_deref(),
            Some("NUMBER_VALUE cannot be converted to String")
        );
        assert_eq!(message(&ATTRIBUTE_MAP, json!({"a": {"S": null}})), None);
    }
}
