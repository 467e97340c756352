//! Reading members of a type-checked request body.
//!
//! The body has already passed its shape check, so a member that is present
//! has the right JSON type; JSON `null` counts as absent, as in DynamoDB.

use serde_json::{Map, Value};

use crate::shape::coerce_bool;

/// A request body (or a nested structure of one).
pub type Object = Map<String, Value>;

fn present<'a>(object: &'a Object, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|v| !v.is_null())
}

/// A string member.
pub fn string<'a>(object: &'a Object, name: &str) -> Option<&'a str> {
    present(object, name).and_then(Value::as_str)
}

/// A boolean member (with DynamoDB's coercion of some strings).
pub fn boolean(object: &Object, name: &str) -> Option<bool> {
    match present(object, name)? {
        Value::Bool(b) => Some(*b),
        Value::String(text) => coerce_bool(text),
        _ => None,
    }
}

/// An integer member; fractions are truncated as DynamoDB does.
pub fn long(object: &Object, name: &str) -> Option<i64> {
    let value = present(object, name)?;
    value
        .as_i64()
        .or_else(|| value.as_u64().map(|v| i64::try_from(v).unwrap_or(i64::MAX)))
        .or_else(|| value.as_f64().map(|f| f as i64))
}

/// A list member.
pub fn list<'a>(object: &'a Object, name: &str) -> Option<&'a Vec<Value>> {
    present(object, name).and_then(Value::as_array)
}

/// A structure or map member.
pub fn object<'a>(object: &'a Object, name: &str) -> Option<&'a Object> {
    present(object, name).and_then(Value::as_object)
}

/// Whether a member is present (not absent, not null).
pub fn has(object: &Object, name: &str) -> bool {
    present(object, name).is_some()
}

/// A raw member value.
pub fn value<'a>(object: &'a Object, name: &str) -> Option<&'a Value> {
    present(object, name)
}
