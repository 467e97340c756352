//! Attribute values on the wire: decoding with DynamoDB's checks, and encoding.

use std::collections::{BTreeMap, HashSet};

use atoll_model::{AttributeValue, Item, Number, NumberError};
use base64::Engine;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::shape::{coerce_bool, decode_blob};

const EMPTY_VALUE: &str =
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
const SEVERAL_TYPES: &str = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";
const INVALID_PARAMETER: &str = "One or more parameter values were invalid: ";

/// Which of DynamoDB's two value-validation layers an operation runs. They
/// word bad numbers and duplicate set members differently (observed on the
/// real service in 2026: PutItem/UpdateItem/DeleteItem/GetItem/BatchGetItem/
/// Query run the current layer; BatchWriteItem, Scan and transactions the older).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The current layer; `enveloped` wraps errors in `1 validation error detected: `
    /// (PutItem, UpdateItem, DeleteItem).
    Current {
        /// Whether errors are wrapped.
        enveloped: bool,
    },
    /// The older layer.
    Older,
}

impl Layer {
    /// A value error of this layer.
    pub fn error(self, message: impl Into<String>) -> ApiError {
        let message = message.into();
        match self {
            Layer::Current { enveloped: true } => {
                ApiError::validation(format!("1 validation error detected: {message}"))
            }
            _ => ApiError::validation(message),
        }
    }
}

/// Refuses an attribute name DynamoDB does not store: empty, or longer
/// than [`atoll_model::MAX_ATTRIBUTE_NAME_BYTES`] (the long-name text is the
/// live service's, measured in 2026; the empty-name text is DynamoDB
/// Local's, which the service's checks on `ExpressionAttributeNames` share).
pub fn check_attribute_name(name: &str, layer: Layer) -> ApiResult<()> {
    if name.is_empty() {
        return Err(layer.error("Empty attribute name"));
    }
    if name.len() > atoll_model::MAX_ATTRIBUTE_NAME_BYTES {
        return Err(layer.error("Attribute name is too large, must be less than 65536 bytes"));
    }
    Ok(())
}

fn parse_number(text: &str, layer: Layer) -> ApiResult<Number> {
    Number::parse(text).map_err(|e| match (&e, layer) {
        // The current layer keeps the colon (and the empty input after it).
        (NumberError::Empty, Layer::Current { .. }) => {
            layer.error("The parameter cannot be converted to a numeric value: ")
        }
        _ => layer.error(e.message()),
    })
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The members of a set with a repeat as the current layer lists them: in
/// byte order up to the first repeat, then the repeat, then the rest as sent.
fn current_layer_listing<T: AsRef<[u8]> + Clone>(members: &[T]) -> Vec<T> {
    let mut seen: Vec<T> = Vec::new();
    for (index, member) in members.iter().enumerate() {
        if seen.iter().any(|m| m.as_ref() == member.as_ref()) {
            seen.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            let mut listing = seen;
            listing.extend(members.iter().skip(index).cloned());
            return listing;
        }
        seen.push(member.clone());
    }
    seen
}

fn duplicate_strings(set: &[String], layer: Layer) -> ApiError {
    match layer {
        Layer::Older => layer.error(format!(
            "{INVALID_PARAMETER}Input collection [{}] contains duplicates.",
            set.join(", ")
        )),
        Layer::Current { .. } => {
            let listed: Vec<String> = current_layer_listing(set)
                .iter()
                .map(|s| serde_json::to_string(s).unwrap_or_default())
                .collect();
            layer.error(format!(
                "{INVALID_PARAMETER}Input collection [{}] contains duplicates.",
                listed.join(", ")
            ))
        }
    }
}

fn duplicate_binaries(set: &[Vec<u8>], layer: Layer) -> ApiError {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match layer {
        Layer::Older => {
            let shown: Vec<String> = set.iter().map(|b| b64(b)).collect();
            layer.error(format!(
                "{INVALID_PARAMETER}Input collection [{}]of type BS contains duplicates.",
                shown.join(", ")
            ))
        }
        Layer::Current { .. } => {
            let shown: Vec<String> = current_layer_listing(set)
                .iter()
                .map(|b| format!("\"{}\"", b64(b)))
                .collect();
            layer.error(format!(
                "{INVALID_PARAMETER}Input collection [{}]of type BS contains duplicates.",
                shown.join(",")
            ))
        }
    }
}

/// Decodes one attribute value (already type-checked against its shape).
pub fn decode_value(value: &Value, layer: Layer) -> ApiResult<AttributeValue> {
    let Some(members) = value.as_object() else {
        return Err(ApiError::validation(EMPTY_VALUE));
    };
    let mut decoded: Option<AttributeValue> = None;
    let mut types = 0usize;
    for (name, member) in members {
        if member.is_null() {
            continue;
        }
        let this = match name.as_str() {
            "S" => AttributeValue::S(member.as_str().unwrap_or_default().to_string()),
            "N" => AttributeValue::N(parse_number(member.as_str().unwrap_or_default(), layer)?),
            "B" => AttributeValue::B(decode_blob(member.as_str().unwrap_or_default())?),
            "BOOL" => AttributeValue::Bool(as_bool(member)),
            "NULL" => {
                if !as_bool(member) {
                    return Err(layer.error(format!(
                        "{INVALID_PARAMETER}Null attribute value types must have the value of true"
                    )));
                }
                AttributeValue::Null
            }
            "SS" => {
                let set: Vec<String> = strings(member).map(str::to_string).collect();
                if set.is_empty() {
                    return Err(layer.error(format!(
                        "{INVALID_PARAMETER}An string set  may not be empty"
                    )));
                }
                let mut seen = HashSet::new();
                if !set.iter().all(|s| seen.insert(s.as_str())) {
                    return Err(duplicate_strings(&set, layer));
                }
                AttributeValue::Ss(set)
            }
            "NS" => {
                let mut set = Vec::new();
                for text in strings(member) {
                    set.push(parse_number(text, layer)?);
                }
                if set.is_empty() {
                    return Err(layer.error(format!(
                        "{INVALID_PARAMETER}An number set  may not be empty"
                    )));
                }
                let mut seen = HashSet::new();
                if !set.iter().all(|n| seen.insert(*n)) {
                    return Err(match layer {
                        Layer::Older => layer.error("Input collection contains duplicates"),
                        Layer::Current { .. } => layer.error(format!(
                            "{INVALID_PARAMETER}Input collection contains duplicates."
                        )),
                    });
                }
                AttributeValue::Ns(set)
            }
            "BS" => {
                let mut set = Vec::new();
                for text in strings(member) {
                    set.push(decode_blob(text)?);
                }
                if set.is_empty() {
                    return Err(layer.error(format!(
                        "{INVALID_PARAMETER}Binary sets should not be empty"
                    )));
                }
                let mut seen = HashSet::new();
                if !set.iter().all(|b| seen.insert(b.as_slice())) {
                    return Err(duplicate_binaries(&set, layer));
                }
                AttributeValue::Bs(set)
            }
            "M" => {
                let map = decode_map(member, layer)?;
                // Nested names have the length limit too (measured); an
                // empty one is left alone, unverified either way.
                if let Some(long) = map
                    .keys()
                    .find(|name| name.len() > atoll_model::MAX_ATTRIBUTE_NAME_BYTES)
                {
                    check_attribute_name(long, layer)?;
                }
                AttributeValue::M(map)
            }
            "L" => {
                let mut list = Vec::new();
                for element in member.as_array().into_iter().flatten() {
                    list.push(decode_value(element, layer)?);
                }
                AttributeValue::L(list)
            }
            _ => continue,
        };
        types += 1;
        decoded = Some(this);
    }
    match (decoded, types) {
        (Some(value), 1) => Ok(value),
        (None, _) => Err(ApiError::validation(EMPTY_VALUE)),
        _ => Err(ApiError::validation(SEVERAL_TYPES)),
    }
}

fn as_bool(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(text) => coerce_bool(text).unwrap_or(false),
        _ => false,
    }
}

/// Decodes a map of attribute values (an item, a key, or an `M`).
pub fn decode_map(value: &Value, layer: Layer) -> ApiResult<BTreeMap<String, AttributeValue>> {
    let mut map = BTreeMap::new();
    if let Some(entries) = value.as_object() {
        for (name, member) in entries {
            map.insert(name.clone(), decode_value(member, layer)?);
        }
    }
    Ok(map)
}

/// Decodes an item and checks its attribute names and DynamoDB's nesting limit.
pub fn decode_item(value: &Value, layer: Layer) -> ApiResult<Item> {
    let item = decode_map(value, layer)?;
    for name in item.keys() {
        check_attribute_name(name, layer)?;
    }
    check_nesting(&item, layer)?;
    Ok(item)
}

/// Refuses items nested deeper than DynamoDB allows.
pub fn check_nesting(item: &Item, layer: Layer) -> ApiResult<()> {
    if item
        .values()
        .any(|value| value.nesting_depth() > atoll_model::MAX_NESTING_DEPTH)
    {
        return Err(layer.error(
            "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit",
        ));
    }
    Ok(())
}

/// Encodes an attribute value as DynamoDB returns it.
pub fn encode_value(value: &AttributeValue) -> Value {
    let b64 = |bytes: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    let (tag, encoded) = match value {
        AttributeValue::S(s) => ("S", Value::String(s.clone())),
        AttributeValue::N(n) => ("N", Value::String(n.to_string())),
        AttributeValue::B(b) => ("B", b64(b)),
        AttributeValue::Bool(b) => ("BOOL", Value::Bool(*b)),
        AttributeValue::Null => ("NULL", Value::Bool(true)),
        AttributeValue::M(m) => ("M", encode_map(m)),
        AttributeValue::L(l) => ("L", Value::Array(l.iter().map(encode_value).collect())),
        AttributeValue::Ss(ss) => (
            "SS",
            Value::Array(ss.iter().map(|s| Value::String(s.clone())).collect()),
        ),
        AttributeValue::Ns(ns) => (
            "NS",
            Value::Array(ns.iter().map(|n| Value::String(n.to_string())).collect()),
        ),
        AttributeValue::Bs(bs) => ("BS", Value::Array(bs.iter().map(|b| b64(b)).collect())),
    };
    let mut object = Map::with_capacity(1);
    object.insert(tag.to_string(), encoded);
    Value::Object(object)
}

/// Writes a JSON string (escaped) to `out`.
fn write_string(out: &mut Vec<u8>, text: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    if let Some(target) = out.get_mut(start..)
        && let Ok(written) = base64::engine::general_purpose::STANDARD.encode_slice(bytes, target)
    {
        out.truncate(start + written);
    }
    out.push(b'"');
}

/// Writes an attribute value as DynamoDB returns it, straight to JSON text:
/// the hot read paths skip building a `serde_json::Value` per item.
pub fn write_value(out: &mut Vec<u8>, value: &AttributeValue) {
    let list = |out: &mut Vec<u8>,
                tag: &[u8],
                count: usize,
                write: &mut dyn FnMut(&mut Vec<u8>, usize)| {
        out.extend_from_slice(tag);
        out.push(b'[');
        for index in 0..count {
            if index > 0 {
                out.push(b',');
            }
            write(out, index);
        }
        out.extend_from_slice(b"]}");
    };
    match value {
        AttributeValue::S(s) => {
            out.extend_from_slice(b"{\"S\":");
            write_string(out, s);
            out.push(b'}');
        }
        AttributeValue::N(n) => {
            out.extend_from_slice(b"{\"N\":\"");
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\"}");
        }
        AttributeValue::B(b) => {
            out.extend_from_slice(b"{\"B\":");
            write_base64(out, b);
            out.push(b'}');
        }
        AttributeValue::Bool(b) => out.extend_from_slice(if *b {
            b"{\"BOOL\":true}"
        } else {
            b"{\"BOOL\":false}"
        }),
        AttributeValue::Null => out.extend_from_slice(b"{\"NULL\":true}"),
        AttributeValue::M(m) => {
            out.extend_from_slice(b"{\"M\":");
            write_map(out, m);
            out.push(b'}');
        }
        AttributeValue::L(l) => list(out, b"{\"L\":", l.len(), &mut |out, i| {
            if let Some(v) = l.get(i) {
                write_value(out, v);
            }
        }),
        AttributeValue::Ss(ss) => list(out, b"{\"SS\":", ss.len(), &mut |out, i| {
            if let Some(v) = ss.get(i) {
                write_string(out, v);
            }
        }),
        AttributeValue::Ns(ns) => list(out, b"{\"NS\":", ns.len(), &mut |out, i| {
            if let Some(v) = ns.get(i) {
                out.push(b'"');
                out.extend_from_slice(v.to_string().as_bytes());
                out.push(b'"');
            }
        }),
        AttributeValue::Bs(bs) => list(out, b"{\"BS\":", bs.len(), &mut |out, i| {
            if let Some(v) = bs.get(i) {
                write_base64(out, v);
            }
        }),
    }
}

/// Writes a map of attribute values (an item) straight to JSON text.
pub fn write_map(out: &mut Vec<u8>, map: &BTreeMap<String, AttributeValue>) {
    out.push(b'{');
    for (index, (name, value)) in map.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

/// Encodes a map of attribute values.
pub fn encode_map(map: &BTreeMap<String, AttributeValue>) -> Value {
    Value::Object(
        map.iter()
            .map(|(name, value)| (name.clone(), encode_value(value)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(value: Value) -> String {
        decode_value(&value, Layer::Older)
            .err()
            .and_then(|e| e.message)
            .unwrap_or_default()
    }

    #[test]
    fn values_are_checked_as_dynamodb_checks_them() {
        assert_eq!(error(json!({})), EMPTY_VALUE);
        assert_eq!(error(json!({"S": "a", "N": "1"})), SEVERAL_TYPES);
        assert_eq!(
            error(json!({"S": "a", "N": "b"})),
            "The parameter cannot be converted to a numeric value: b"
        );
        assert_eq!(
            error(json!({"NULL": false})),
            "One or more parameter values were invalid: Null attribute value types must have the value of true"
        );
        assert_eq!(
            error(json!({"SS": []})),
            "One or more parameter values were invalid: An string set  may not be empty"
        );
        assert_eq!(
            error(json!({"SS": ["a", "a"]})),
            "One or more parameter values were invalid: Input collection [a, a] contains duplicates."
        );
        assert_eq!(
            error(json!({"NS": ["1", "1.0"]})),
            "Input collection contains duplicates"
        );
        assert_eq!(error(json!({"M": {"a": {}}})), EMPTY_VALUE);
    }

    #[test]
    fn the_current_layer_words_duplicates_and_numbers_as_dynamodb_does() {
        let current = |value: Value| {
            decode_value(&value, Layer::Current { enveloped: true })
                .err()
                .and_then(|e| e.message)
                .unwrap_or_default()
        };
        assert_eq!(
            current(json!({"SS": ["b", "a", "b"]})),
            "1 validation error detected: One or more parameter values were invalid: Input collection [\"a\", \"b\", \"b\"] contains duplicates."
        );
        assert_eq!(
            current(json!({"BS": ["/w==", "AA==", "AA=="]})),
            "1 validation error detected: One or more parameter values were invalid: Input collection [\"AA==\",\"/w==\",\"AA==\"]of type BS contains duplicates."
        );
        assert_eq!(
            current(json!({"NS": ["2", "1", "2"]})),
            "1 validation error detected: One or more parameter values were invalid: Input collection contains duplicates."
        );
        assert_eq!(
            current(json!({"N": ""})),
            "1 validation error detected: The parameter cannot be converted to a numeric value: "
        );
        assert_eq!(
            error(json!({"SS": ["b", "a", "b"]})),
            "One or more parameter values were invalid: Input collection [b, a, b] contains duplicates."
        );
    }

    #[test]
    fn direct_json_writing_matches_the_value_encoding() {
        let input = json!({"M": {
            "s": {"S": "quote \" and \\ and \u{1}"}, "n": {"N": "-1.50"}, "b": {"B": "AAEC"},
            "t": {"BOOL": true}, "z": {"NULL": true}, "l": {"L": [{"S": "x"}, {"N": "2"}]},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": ["AA==", "AAE="]},
            "m": {"M": {}}, "e": {"L": []}
        }});
        let decoded = decode_value(&input, Layer::Older).expect("valid");
        let mut written = Vec::new();
        write_value(&mut written, &decoded);
        let reparsed: Value = serde_json::from_slice(&written).expect("valid JSON");
        assert_eq!(reparsed, encode_value(&decoded));
    }

    #[test]
    fn values_round_trip_in_dynamodbs_normal_form() {
        let input = json!({"M": {"n": {"N": "1.50"}, "l": {"L": [{"NULL": true}, {"BOOL": false}]}, "b": {"B": "AAE="}}});
        let decoded = decode_value(&input, Layer::Older).expect("valid");
        assert_eq!(
            encode_value(&decoded),
            json!({"M": {"b": {"B": "AAE="}, "l": {"L": [{"NULL": true}, {"BOOL": false}]}, "n": {"N": "1.5"}}})
        );
    }
}
