//! The expression AST shared by the parser, the legacy translations and the
//! evaluator. Placeholders stay unresolved (`#n`, `:v`), so a parsed
//! expression can be cached by its text and reused with other values.
//!
//! The AST is serialisable: write commands carry their condition and update
//! in the Raft log, and every replica evaluates them identically.

use serde::{Deserialize, Serialize};

/// An attribute name as written: literally, or as a `#placeholder`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Name {
    /// A name written in the expression (or given by a legacy parameter).
    Literal(String),
    /// `#placeholder`, resolved through `ExpressionAttributeNames` (stored with its `#`).
    Placeholder(String),
}

/// One step of a document path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathElement {
    /// A top-level attribute or a map key (`a`, `.b`, `#n`).
    Attribute(Name),
    /// A list index (`[3]`).
    Index(u32),
}

/// A document path such as `a.b[3].#c`. The first element is always an `Attribute`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Path(pub Vec<PathElement>);

/// A value placeholder `:v` (stored with its `:`), resolved through
/// `ExpressionAttributeValues`, or a value given directly by a legacy parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ValueRef {
    /// `:placeholder`.
    Placeholder(String),
    /// A value from a legacy parameter (`Expected`, `QueryFilter`, ...), already decoded.
    Literal(atoll_model::AttributeValue),
}

/// An operand of a condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Operand {
    /// The value at a document path (absent if the path does not resolve).
    Path(Path),
    /// A value.
    Value(ValueRef),
    /// `size(path)`.
    Size(Path),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A condition (ConditionExpression, FilterExpression, KeyConditionExpression,
/// and the legacy conditions translated onto it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    /// `a <op> b`.
    Compare(Comparator, Operand, Operand),
    /// `a BETWEEN low AND high`.
    Between(Operand, Operand, Operand),
    /// `a IN (b, c, ...)`.
    In(Operand, Vec<Operand>),
    /// `x AND y`.
    And(Box<Condition>, Box<Condition>),
    /// `x OR y`.
    Or(Box<Condition>, Box<Condition>),
    /// `NOT x`.
    Not(Box<Condition>),
    /// `attribute_exists(path)`.
    AttributeExists(Path),
    /// `attribute_not_exists(path)`.
    AttributeNotExists(Path),
    /// `attribute_type(path, :type)`.
    AttributeType(Path, Operand),
    /// `begins_with(a, b)`.
    BeginsWith(Operand, Operand),
    /// `contains(a, b)`.
    Contains(Operand, Operand),
}

/// An operand on the right-hand side of a SET action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SetOperand {
    /// The value at a path of the item before the update.
    Path(Path),
    /// A value.
    Value(ValueRef),
    /// `if_not_exists(path, operand)`.
    IfNotExists(Path, Box<SetOperand>),
    /// `list_append(a, b)`.
    ListAppend(Box<SetOperand>, Box<SetOperand>),
}

/// The right-hand side of a SET action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SetValue {
    /// `operand`.
    Operand(SetOperand),
    /// `a + b` (numbers).
    Plus(SetOperand, SetOperand),
    /// `a - b` (numbers).
    Minus(SetOperand, SetOperand),
}

/// One action of an update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UpdateAction {
    /// `SET path = value`.
    Set(Path, SetValue),
    /// `REMOVE path`.
    Remove(Path),
    /// `ADD path :value` (number addition, set union).
    Add(Path, ValueRef),
    /// `DELETE path :value` (set difference).
    Delete(Path, ValueRef),
}

/// An update (UpdateExpression or legacy AttributeUpdates): every right-hand
/// side is evaluated against the item as it was before the update.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// The actions, in the order written.
    pub actions: Vec<UpdateAction>,
}

/// A projection: the document paths to return.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// The paths, in the order written.
    pub paths: Vec<Path>,
}
