//! The syntax tree: what was written, before any name or value is known.
//!
//! It keeps what the AST cannot hold and DynamoDB still reports later with a
//! request's names and values: functions with the wrong number of operands,
//! `attribute_exists(:v)`, `a.:v`. Parentheses are not kept; they only matter
//! while parsing.

use crate::ast::Comparator;

/// One element of a written document path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A name (`a`) or a name placeholder (`#n`, kept with its `#`).
    Name(String),
    /// `[digits]`, the digits as written (range-checked by the walk).
    Index(String),
    /// `.:v`: a value placeholder used as a map key.
    ValueKey(String),
}

/// A written document path; the first step is always a `Name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathNode {
    pub steps: Vec<Step>,
}

/// A function call `name(args)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CallNode {
    pub name: String,
    pub args: Vec<OperandNode>,
}

/// An operand.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum OperandNode {
    Path(PathNode),
    /// A value placeholder, with its `:`.
    Value(String),
    Call(CallNode),
}

/// A condition. `And` and `Or` hold the chain of their operands as written;
/// DynamoDB groups them to the right (`a AND (b AND c)`), which only shows
/// in the order operators are counted and is reproduced where it matters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CondNode {
    Compare(Comparator, OperandNode, OperandNode),
    In(OperandNode, Vec<OperandNode>),
    Between(OperandNode, OperandNode, OperandNode),
    Call(CallNode),
    /// `NOT` applied `count` times.
    Not(u32, Box<CondNode>),
    And(Vec<CondNode>),
    Or(Vec<CondNode>),
}

/// The right-hand side of a SET action.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SetValueNode {
    Operand(OperandNode),
    /// `a + b` (`plus`) or `a - b`.
    Arithmetic {
        left: OperandNode,
        plus: bool,
        right: OperandNode,
    },
}

/// The four clauses of an update expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Set,
    Remove,
    Add,
    Delete,
}

impl Section {
    pub fn keyword(self) -> &'static str {
        match self {
            Section::Set => "SET",
            Section::Remove => "REMOVE",
            Section::Add => "ADD",
            Section::Delete => "DELETE",
        }
    }
}

/// One action of an update expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ActionNode {
    Set(PathNode, SetValueNode),
    Remove(PathNode),
    /// `ADD path :v`.
    Add(PathNode, String),
    /// `DELETE path :v`.
    Delete(PathNode, String),
}

impl ActionNode {
    pub fn path(&self) -> &PathNode {
        match self {
            ActionNode::Set(path, _)
            | ActionNode::Remove(path)
            | ActionNode::Add(path, _)
            | ActionNode::Delete(path, _) => path,
        }
    }
}

/// An update expression: its clauses as written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UpdateNode {
    pub sections: Vec<(Section, Vec<ActionNode>)>,
}

impl UpdateNode {
    /// The actions in the order written.
    pub fn actions(&self) -> impl DoubleEndedIterator<Item = &ActionNode> {
        self.sections.iter().flat_map(|(_, actions)| actions.iter())
    }
}
