//! DynamoDB's legacy (pre-expression) parameters translated onto the
//! shared AST, with the validation DynamoDB applies to them:
//! `Expected` + `ConditionalOperator` → [`Condition`], `QueryFilter` /
//! `ScanFilter` + `ConditionalOperator` → [`Condition`], `KeyConditions` →
//! [`Condition`], `AttributeUpdates` → [`Update`], `AttributesToGet` →
//! [`Projection`].
//!
//! Inputs are already decoded (the API crate owns JSON and checks each
//! AttributeValue, enum value and map key); maps are taken as slices of
//! `(attribute name, entry)` pairs in request order, because the first
//! invalid entry is the one reported. Messages are DynamoDB's as recorded
//! by dynalite's suite (run against DynamoDB) unless marked unverified.
//!
//! Legacy attribute names are literal top-level names (a dot is part of the
//! name) and values are [`ValueRef::Literal`]s, which is also how the
//! evaluator recognises a legacy ADD or DELETE (see [`crate::update`]).

use atoll_model::AttributeValue;

use crate::ast::{
    Condition, Name, Path, PathElement, Projection, SetOperand, SetValue, Update, UpdateAction,
    ValueRef,
};
use crate::error::ExprError;

mod conditions;

pub use conditions::{
    check_key_conditions, check_query_filter_keys, expected_condition, filter_condition,
    key_conditions_condition,
};

/// The prefix of most legacy validation messages.
const INVALID: &str = "One or more parameter values were invalid: ";

/// A legacy `ComparisonOperator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComparisonOperator {
    /// `EQ`
    Eq,
    /// `NE`
    Ne,
    /// `LE`
    Le,
    /// `LT`
    Lt,
    /// `GE`
    Ge,
    /// `GT`
    Gt,
    /// `NOT_NULL`: the attribute exists.
    NotNull,
    /// `NULL`: the attribute does not exist.
    Null,
    /// `CONTAINS`
    Contains,
    /// `NOT_CONTAINS`
    NotContains,
    /// `BEGINS_WITH`
    BeginsWith,
    /// `IN`
    In,
    /// `BETWEEN`
    Between,
}

impl ComparisonOperator {
    /// Every operator, in DynamoDB's enum order.
    pub const ALL: [ComparisonOperator; 13] = [
        Self::Eq,
        Self::Ne,
        Self::Le,
        Self::Lt,
        Self::Ge,
        Self::Gt,
        Self::NotNull,
        Self::Null,
        Self::Contains,
        Self::NotContains,
        Self::BeginsWith,
        Self::In,
        Self::Between,
    ];

    /// The operator's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "EQ",
            Self::Ne => "NE",
            Self::Le => "LE",
            Self::Lt => "LT",
            Self::Ge => "GE",
            Self::Gt => "GT",
            Self::NotNull => "NOT_NULL",
            Self::Null => "NULL",
            Self::Contains => "CONTAINS",
            Self::NotContains => "NOT_CONTAINS",
            Self::BeginsWith => "BEGINS_WITH",
            Self::In => "IN",
            Self::Between => "BETWEEN",
        }
    }

    /// Parses a wire name (case-sensitive, as DynamoDB's enum check is).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Whether `count` values suit the operator.
    fn takes(self, count: usize) -> bool {
        match self {
            Self::NotNull | Self::Null => count == 0,
            Self::In => count >= 1,
            Self::Between => count == 2,
            _ => count == 1,
        }
    }

    /// Whether a value of type `type_name` may be given to the operator.
    /// EQ and NE take any type ("supported for all data types, including
    /// lists and maps" — AWS docs; unverified for BOOL, NULL, L and M
    /// values); the rest are verified by dynalite's suite, except BOOL and
    /// NULL for CONTAINS / NOT_CONTAINS (unverified, the docs allow only
    /// String, Number or Binary).
    fn accepts(self, type_name: &str) -> bool {
        match self {
            Self::Eq | Self::Ne | Self::NotNull | Self::Null => true,
            Self::BeginsWith => matches!(type_name, "S" | "B"),
            _ => matches!(type_name, "S" | "N" | "B"),
        }
    }
}

/// A legacy `ConditionalOperator`: how several conditions combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionalOperator {
    /// `AND` (the default).
    And,
    /// `OR`
    Or,
}

impl ConditionalOperator {
    /// The operator's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::And => "AND",
            Self::Or => "OR",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "AND" => Some(Self::And),
            "OR" => Some(Self::Or),
            _ => None,
        }
    }
}

/// One entry of `Expected`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExpectedAttribute {
    /// `Value`.
    pub value: Option<AttributeValue>,
    /// `Exists`.
    pub exists: Option<bool>,
    /// `ComparisonOperator`.
    pub comparison_operator: Option<ComparisonOperator>,
    /// `AttributeValueList`.
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// One entry of `QueryFilter`, `ScanFilter` or `KeyConditions` (a
/// `Condition` on the wire; its ComparisonOperator is required there).
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyCondition {
    /// `ComparisonOperator`.
    pub comparison_operator: ComparisonOperator,
    /// `AttributeValueList`.
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// An `AttributeUpdates` action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttributeAction {
    /// `PUT` (the default).
    Put,
    /// `ADD`
    Add,
    /// `DELETE`
    Delete,
}

impl AttributeAction {
    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "PUT" => Some(Self::Put),
            "ADD" => Some(Self::Add),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// One entry of `AttributeUpdates` (an `AttributeValueUpdate` on the wire).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttributeValueUpdate {
    /// `Action`; absent means PUT.
    pub action: Option<AttributeAction>,
    /// `Value`.
    pub value: Option<AttributeValue>,
}

/// Checks the use of `ConditionalOperator` with the conditions it combines;
/// `conditions` is the number of entries of `Expected` / `QueryFilter` /
/// `ScanFilter`, `None` when that parameter is absent.
///
/// - absent conditions: "ConditionalOperator cannot be used without Filter
///   or Expected" (unverified: the text of Amazon's DAX client, which
///   mirrors the service's checks);
/// - fewer than two: "ConditionalOperator can only be used when Filter or
///   Expected has two or more elements" (seen from DynamoDB by the
///   conformance suite for a one-entry ScanFilter; also DAX's text).
pub fn check_conditional_operator(
    conditions: Option<usize>,
    conditional_operator: Option<ConditionalOperator>,
) -> Result<(), ExprError> {
    match (conditional_operator, conditions) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(ExprError::validation(
            "ConditionalOperator cannot be used without Filter or Expected",
        )),
        (Some(_), Some(count)) if count < 2 => Err(ExprError::validation(
            "ConditionalOperator can only be used when Filter or Expected has two or more elements",
        )),
        (Some(_), Some(_)) => Ok(()),
    }
}

/// `AttributeUpdates` as an [`Update`], checked entry by entry in request
/// order:
/// - no `Value` with PUT or ADD: "One or more parameter values were
///   invalid: Only DELETE action is allowed when no attribute value is
///   specified";
/// - DELETE with a `Value` that is not a set: "... DELETE action with value
///   is not supported for the type N";
/// - ADD of anything but a number, a set or a list: "... ADD action is not
///   supported for the type S".
///
/// PUT becomes SET, ADD stays ADD (numbers, sets, and — legacy only —
/// lists, which it appends), DELETE with a value subtracts a set, DELETE
/// without one removes the attribute. Key attributes are the caller's to
/// refuse ("Cannot update attribute …"), as for UpdateExpression.
pub fn attribute_updates(updates: &[(String, AttributeValueUpdate)]) -> Result<Update, ExprError> {
    let mut actions = Vec::with_capacity(updates.len());
    for (name, update) in updates {
        let action = update.action.unwrap_or(AttributeAction::Put);
        let path = top_level(name);
        actions.push(match (action, &update.value) {
            (AttributeAction::Delete, None) => UpdateAction::Remove(path),
            (_, None) => {
                return Err(ExprError::validation(format!(
                    "{INVALID}Only DELETE action is allowed when no attribute value is specified"
                )));
            }
            (AttributeAction::Put, Some(value)) => {
                UpdateAction::Set(path, SetValue::Operand(SetOperand::Value(literal(value))))
            }
            (AttributeAction::Add, Some(value)) => {
                if !matches!(
                    value,
                    AttributeValue::N(_)
                        | AttributeValue::Ss(_)
                        | AttributeValue::Ns(_)
                        | AttributeValue::Bs(_)
                        | AttributeValue::L(_)
                ) {
                    return Err(ExprError::validation(format!(
                        "{INVALID}ADD action is not supported for the type {}",
                        value.type_name()
                    )));
                }
                UpdateAction::Add(path, literal(value))
            }
            (AttributeAction::Delete, Some(value)) => {
                if !matches!(
                    value,
                    AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
                ) {
                    return Err(ExprError::validation(format!(
                        "{INVALID}DELETE action with value is not supported for the type {}",
                        value.type_name()
                    )));
                }
                UpdateAction::Delete(path, literal(value))
            }
        });
    }
    Ok(Update { actions })
}

/// `AttributesToGet` as a [`Projection`]; a name listed twice is refused
/// with "One or more parameter values were invalid: Duplicate value in
/// attribute name: a" (the first name seen twice).
pub fn attributes_to_get(names: &[String]) -> Result<Projection, ExprError> {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(ExprError::validation(format!(
                "{INVALID}Duplicate value in attribute name: {name}"
            )));
        }
    }
    Ok(Projection {
        paths: names.iter().map(|name| top_level(name)).collect(),
    })
}

/// The path of a top-level attribute named literally.
fn top_level(name: &str) -> Path {
    Path(vec![PathElement::Attribute(Name::Literal(name.to_owned()))])
}

fn literal(value: &AttributeValue) -> ValueRef {
    ValueRef::Literal(value.clone())
}

/// Joins conditions with AND or OR as a balanced tree: the same meaning as
/// a left-to-right chain (both are associative), but a depth logarithmic in
/// the number of conditions, so serialising one for the log cannot recurse
/// deeply whatever the request holds.
fn combine(mut conditions: Vec<Condition>, operator: ConditionalOperator) -> Option<Condition> {
    while conditions.len() > 1 {
        let mut paired = Vec::with_capacity(conditions.len().div_ceil(2));
        let mut drain = conditions.into_iter();
        while let Some(left) = drain.next() {
            paired.push(match drain.next() {
                Some(right) => match operator {
                    ConditionalOperator::And => Condition::And(Box::new(left), Box::new(right)),
                    ConditionalOperator::Or => Condition::Or(Box::new(left), Box::new(right)),
                },
                None => left,
            });
        }
        conditions = paired;
    }
    conditions.pop()
}

#[cfg(test)]
mod tests;
