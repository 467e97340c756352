use thiserror::Error;

/// Errors of expressions. Every one reaches the client as a
/// ValidationException whose message is the text given here, which is
/// DynamoDB's own.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ExprError {
    /// The request is invalid; the text is DynamoDB's message.
    #[error("{0}")]
    Validation(String),
}

impl ExprError {
    /// A ValidationException with DynamoDB's `message`.
    pub fn validation(message: impl Into<String>) -> Self {
        ExprError::Validation(message.into())
    }

    /// The message the client sees.
    pub fn message(&self) -> &str {
        match self {
            ExprError::Validation(message) => message,
        }
    }
}
