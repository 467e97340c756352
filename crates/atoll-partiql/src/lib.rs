//! DynamoDB's PartiQL dialect (ExecuteStatement, BatchExecuteStatement,
//! ExecuteTransaction): a statement parsed into [`Statement`], and its
//! clauses translated into DynamoDB's expression language
//! ([`translate`]), so that the API runs it on the same operations as
//! GetItem, Query, Scan, PutItem, UpdateItem and DeleteItem.
//!
//! Written here rather than taken from a crate: `partiql-parser` parses
//! the full PartiQL language but refuses `?` parameters and the
//! INSERT/UPDATE/DELETE forms DynamoDB defines, and DynamoDB's subset is
//! small (see DESIGN.md "Chosen parts").

pub mod ast;
mod lexer;
mod parser;
pub mod translate;

pub use ast::Statement;
pub use parser::parse;

/// A statement that is not well formed, or uses what DynamoDB's dialect lacks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PartiqlError {
    /// DynamoDB's message.
    pub message: String,
}

impl PartiqlError {
    /// A syntax error, worded as DynamoDB words them.
    pub(crate) fn syntax(detail: impl AsRef<str>) -> PartiqlError {
        PartiqlError {
            message: format!(
                "Statement wasn't well formed, can't be processed: {}",
                detail.as_ref()
            ),
        }
    }

    /// Any other invalid statement.
    pub fn invalid(message: impl Into<String>) -> PartiqlError {
        PartiqlError {
            message: message.into(),
        }
    }
}
