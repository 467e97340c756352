//! What DynamoDB checks of each operator and function once the operands are
//! known, in its order: the number of operands; each operand's type (a
//! value's own type, a function's result type; a path passes); that the
//! first operand, if a path, is not repeated; then the checks of the
//! particular operator.

use atoll_model::AttributeValue;

use super::paths::{Elem, display};
use crate::eval::values::compare_values;

/// A set of attribute types.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Types(u16);

/// The ten attribute types, in the order DynamoDB prints a path's possible
/// types (`{NS,SS,L,BS,N,M,B,BOOL,NULL,S}`, dynalite from the service).
const TYPE_ORDER: [(&str, u16); 10] = [
    ("NS", 1 << 0),
    ("SS", 1 << 1),
    ("L", 1 << 2),
    ("BS", 1 << 3),
    ("N", 1 << 4),
    ("M", 1 << 5),
    ("B", 1 << 6),
    ("BOOL", 1 << 7),
    ("NULL", 1 << 8),
    ("S", 1 << 9),
];

impl Types {
    pub const ALL: Types = Types(0x3ff);
    const ORDERED: Types = Types((1 << 9) | (1 << 4) | (1 << 6));
    const STRING_BINARY: Types = Types((1 << 9) | (1 << 6));
    const ITERABLE: Types = Types((1 << 9) | (1 << 6) | 1 | 2 | (1 << 3) | (1 << 2) | (1 << 5));
    const NUMBER: Types = Types(1 << 4);
    const BOOLEAN: Types = Types(1 << 7);
    const LIST: Types = Types(1 << 2);

    fn of(value: &AttributeValue) -> Types {
        let name = value.type_name();
        TYPE_ORDER
            .iter()
            .find(|(type_name, _)| *type_name == name)
            .map_or(Types(0), |&(_, bit)| Types(bit))
    }

    fn meets(self, other: Types) -> bool {
        self.0 & other.0 != 0
    }

    /// `N`, or `{NS,SS,...}` for several types.
    fn describe(self) -> String {
        let names: Vec<&str> = TYPE_ORDER
            .iter()
            .filter(|(_, bit)| self.0 & bit != 0)
            .map(|(name, _)| *name)
            .collect();
        match names.as_slice() {
            [one] => (*one).to_owned(),
            _ => format!("{{{}}}", names.join(",")),
        }
    }
}

/// What an operand turned out to be.
pub(crate) enum Kid<'v> {
    Path(Vec<Elem>),
    Value(&'v AttributeValue),
    /// The result of an operator or function, of these possible types.
    Op(Types),
    /// A value not known (checks without a request).
    Unknown,
}

impl Kid<'_> {
    fn types(&self) -> Types {
        match self {
            Kid::Path(_) => Types::ALL,
            Kid::Value(value) => Types::of(value),
            Kid::Op(types) => *types,
            Kid::Unknown => Types::ALL,
        }
    }

    fn supports(&self, wanted: Types) -> bool {
        match self {
            Kid::Path(_) | Kid::Unknown => true,
            other => other.types().meets(wanted),
        }
    }
}

/// An operator or function and its signature.
pub(crate) struct Op {
    pub name: &'static str,
    required: usize,
    more: bool,
    operands: Types,
    /// Whether the first operand must differ from the others.
    distinct: bool,
    pub returns: Types,
}

const fn op(
    name: &'static str,
    required: usize,
    operands: Types,
    distinct: bool,
    returns: Types,
) -> Op {
    Op {
        name,
        required,
        more: false,
        operands,
        distinct,
        returns,
    }
}

/// The comparison operators, the structural ones and the functions.
pub(crate) fn lookup(name: &str) -> Option<Op> {
    Some(match name {
        "=" => op("=", 2, Types::ALL, true, Types::BOOLEAN),
        "<>" => op("<>", 2, Types::ALL, true, Types::BOOLEAN),
        "<" => op("<", 2, Types::ORDERED, true, Types::BOOLEAN),
        "<=" => op("<=", 2, Types::ORDERED, true, Types::BOOLEAN),
        ">" => op(">", 2, Types::ORDERED, true, Types::BOOLEAN),
        ">=" => op(">=", 2, Types::ORDERED, true, Types::BOOLEAN),
        "BETWEEN" => op("BETWEEN", 3, Types::ORDERED, true, Types::BOOLEAN),
        "IN" => Op {
            more: true,
            ..op("IN", 1, Types::ALL, true, Types::BOOLEAN)
        },
        "attribute_exists" => op("attribute_exists", 1, Types::ALL, true, Types::BOOLEAN),
        "attribute_not_exists" => op("attribute_not_exists", 1, Types::ALL, true, Types::BOOLEAN),
        "attribute_type" => op("attribute_type", 2, Types::ALL, true, Types::BOOLEAN),
        "begins_with" => op("begins_with", 2, Types::STRING_BINARY, true, Types::BOOLEAN),
        "contains" => op("contains", 2, Types::ALL, true, Types::BOOLEAN),
        "size" => op("size", 1, Types::ITERABLE, true, Types::NUMBER),
        "if_not_exists" => op("if_not_exists", 2, Types::ALL, true, Types::ALL),
        "list_append" => op("list_append", 2, Types::LIST, false, Types::LIST),
        "+" => op("+", 2, Types::NUMBER, false, Types::NUMBER),
        "-" => op("-", 2, Types::NUMBER, false, Types::NUMBER),
        _ => return None,
    })
}

/// The attribute types `attribute_type` accepts, as DynamoDB lists them.
const TYPE_NAMES: [&str; 10] = crate::eval::values::ATTRIBUTE_TYPE_NAMES;

fn incorrect_type(op: &Op, kid: &Kid) -> String {
    format!(
        "Incorrect operand type for operator or function; operator or function: {}, operand type: {}",
        op.name,
        kid.types().describe()
    )
}

fn requires_path(op: &Op) -> String {
    format!(
        "Operator or function requires a document path; operator or function: {}",
        op.name
    )
}

/// `AttributeValue: {N:1}`, as the BETWEEN messages print a bound.
fn describe_value(value: &AttributeValue) -> String {
    let shown = match value {
        AttributeValue::S(text) => text.clone(),
        AttributeValue::N(number) => number.to_string(),
        // unverified: how DynamoDB prints a binary bound; base64 as on the wire.
        AttributeValue::B(bytes) => crate::references::base64(bytes),
        other => other.type_name().to_owned(),
    };
    format!("AttributeValue: {{{}:{shown}}}", value.type_name())
}

/// The checks of `op` over its operands, in DynamoDB's order.
pub(crate) fn check(op: &Op, kids: &[Kid]) -> Result<(), String> {
    let count = kids.len();
    let count_ok = if op.more {
        count >= op.required
    } else {
        count == op.required
    };
    if !count_ok {
        return Err(format!(
            "Incorrect number of operands for operator or function; operator or function: {}, number of operands: {count}",
            op.name
        ));
    }
    if let Some(kid) = kids.iter().find(|kid| !kid.supports(op.operands)) {
        return Err(incorrect_type(op, kid));
    }
    if op.distinct
        && let Some((Kid::Path(first), rest)) = kids.split_first()
        && rest
            .iter()
            .any(|kid| matches!(kid, Kid::Path(other) if other == first))
    {
        return Err(format!(
            "The first operand must be distinct from the remaining operands for this operator or function; operator: {}, first operand: {}",
            op.name,
            display(first)
        ));
    }
    match (op.name, kids) {
        ("attribute_exists" | "attribute_not_exists" | "if_not_exists", [first, ..])
            if !matches!(first, Kid::Path(_)) =>
        {
            Err(requires_path(op))
        }
        ("attribute_type", [_, type_name]) => match type_name {
            Kid::Value(AttributeValue::S(name)) if !TYPE_NAMES.contains(&name.as_str()) => {
                Err(format!(
                    "Invalid attribute type name found; type: {name}, valid types: {{{}}}",
                    TYPE_NAMES.join(",")
                ))
            }
            Kid::Value(AttributeValue::S(_)) | Kid::Unknown => Ok(()),
            other => Err(incorrect_type(op, other)),
        },
        ("BETWEEN", [_, Kid::Value(low), Kid::Value(high)]) => {
            let bounds = format!(
                "lower bound operand: {}, upper bound operand: {}",
                describe_value(low),
                describe_value(high)
            );
            if low.type_name() != high.type_name() {
                Err(format!(
                    "The BETWEEN operator requires same data type for lower and upper bounds; {bounds}"
                ))
            } else if compare_values(low, high) == Some(std::cmp::Ordering::Greater) {
                Err(format!(
                    "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; {bounds}"
                ))
            } else {
                Ok(())
            }
        }
        ("IN", _) if count > 101 => Err(format!(
            "The IN operator is provided with too many operands; number of operands: {}",
            count - 1
        )),
        _ => Ok(()),
    }
}

/// The name DynamoDB prints for an update operand's type, and whether ADD
/// (`add`) or DELETE accepts it.
pub(crate) fn check_add_delete(value: &AttributeValue, add: bool) -> Result<(), String> {
    let (type_name, accepted) = match value {
        AttributeValue::S(_) => ("STRING", false),
        AttributeValue::N(_) => ("NUMBER", add),
        AttributeValue::B(_) => ("BINARY", false),
        AttributeValue::Bool(_) => ("BOOLEAN", false),
        AttributeValue::Null => ("NULL", false),
        AttributeValue::M(_) => ("MAP", false),
        AttributeValue::L(_) => ("LIST", false),
        AttributeValue::Ss(_) => ("STRING_SET", true),
        AttributeValue::Ns(_) => ("NUMBER_SET", true),
        AttributeValue::Bs(_) => ("BINARY_SET", true),
    };
    if accepted {
        return Ok(());
    }
    let (operator, set) = if add {
        ("ADD", "ALLOWED_FOR_ADD_OPERAND")
    } else {
        ("DELETE", "ALLOWED_FOR_DELETE_OPERAND")
    };
    Err(format!(
        "Incorrect operand type for operator or function; operator: {operator}, operand type: {type_name}, typeSet: {set}"
    ))
}
