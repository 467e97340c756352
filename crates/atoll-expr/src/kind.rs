//! Which request parameter an expression came from.

/// The five expression parameters of DynamoDB requests. The kind selects the
/// grammar (conditions, filters and key conditions share one) and names the
/// parameter in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExpressionKind {
    /// `ConditionExpression`.
    Condition,
    /// `FilterExpression`.
    Filter,
    /// `KeyConditionExpression`.
    KeyCondition,
    /// `ProjectionExpression`.
    Projection,
    /// `UpdateExpression`.
    Update,
}

impl ExpressionKind {
    /// The request parameter, as DynamoDB names it in messages.
    pub fn parameter_name(self) -> &'static str {
        match self {
            ExpressionKind::Condition => "ConditionExpression",
            ExpressionKind::Filter => "FilterExpression",
            ExpressionKind::KeyCondition => "KeyConditionExpression",
            ExpressionKind::Projection => "ProjectionExpression",
            ExpressionKind::Update => "UpdateExpression",
        }
    }

    /// Whether the kind uses the condition grammar.
    pub fn is_condition(self) -> bool {
        matches!(
            self,
            ExpressionKind::Condition | ExpressionKind::Filter | ExpressionKind::KeyCondition
        )
    }

    /// `Invalid <parameter>: <reason>`, the form of every parse and
    /// validation error of an expression.
    pub(crate) fn invalid(self, reason: impl std::fmt::Display) -> crate::ExprError {
        crate::ExprError::validation(format!("Invalid {}: {reason}", self.parameter_name()))
    }
}
