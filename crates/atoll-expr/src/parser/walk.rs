//! Checks DynamoDB makes on the syntax tree before it looks at a request's
//! names and values, in the order its tree walk meets them (so the first
//! problem in the text wins, a function counting at its name and an update
//! clause at its end):
//!
//! - bare names that are reserved words
//!   (`Attribute name is a reserved keyword; reserved keyword: Status`);
//! - list indexes beyond a Java `int`
//!   (`List index is not within the allowable range; index: [2147483648]`);
//! - unknown functions (`Invalid function name; function: foo`, names are
//!   case-sensitive) and functions of the other language
//!   (`The function is not allowed in a condition expression; function:
//!   if_not_exists`, `... in an update expression; function: size`);
//! - functions where they cannot stand: a condition may be a function only
//!   if it yields a boolean (not `size`), an operand may be a function only
//!   if it is `size` (conditions) or `if_not_exists` (inside an update's
//!   function or arithmetic): `The function is not allowed to be used this
//!   way in an expression; function: contains`;
//! - an update clause used twice
//!   (`The "SET" section can only be used once in an update expression;`).

use super::tree::{
    CallNode, CondNode, OperandNode, PathNode, Section, SetValueNode, Step, UpdateNode,
};
use crate::reserved::is_reserved;

type Walked = Result<(), String>;

/// Which language a function appears in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Language {
    Condition,
    Update,
}

const CONDITION_FUNCTIONS: [&str; 6] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
];

// unverified: DynamoDB Local also knows `convert`, `contains_key`,
// `contains_value` and `list_delete`; the service answers them as unknown
// functions (they are undocumented), as assumed here.
const UPDATE_FUNCTIONS: [&str; 2] = ["if_not_exists", "list_append"];

fn not_allowed(name: &str) -> String {
    format!("The function is not allowed to be used this way in an expression; function: {name}")
}

fn call(call: &CallNode, language: Language, nesting: u32) -> Walked {
    let name = call.name.as_str();
    let in_condition = CONDITION_FUNCTIONS.contains(&name);
    let in_update = UPDATE_FUNCTIONS.contains(&name);
    if !in_condition && !in_update {
        return Err(format!("Invalid function name; function: {name}"));
    }
    match language {
        Language::Condition => {
            if !in_condition {
                return Err(format!(
                    "The function is not allowed in a condition expression; function: {name}"
                ));
            }
            // At the top of a condition a function must be one; inside a
            // comparison or another function only `size` may appear.
            let boolean = name != "size";
            if (nesting == 0 && !boolean) || (nesting > 0 && name != "size") {
                return Err(not_allowed(name));
            }
        }
        Language::Update => {
            if !in_update {
                return Err(format!(
                    "The function is not allowed in an update expression; function: {name}"
                ));
            }
            if nesting > 0 && name != "if_not_exists" {
                return Err(not_allowed(name));
            }
        }
    }
    call.args
        .iter()
        .try_for_each(|arg| operand(arg, language, nesting + 1))
}

fn operand(node: &OperandNode, language: Language, nesting: u32) -> Walked {
    match node {
        OperandNode::Path(path) => walk_path(path),
        OperandNode::Value(_) => Ok(()),
        OperandNode::Call(node) => call(node, language, nesting),
    }
}

/// Reserved names and index ranges of one path.
pub(crate) fn walk_path(path: &PathNode) -> Walked {
    for step in &path.steps {
        match step {
            Step::Name(name) if !name.starts_with('#') && is_reserved(name) => {
                return Err(format!(
                    "Attribute name is a reserved keyword; reserved keyword: {name}"
                ));
            }
            Step::Index(digits) if digits.parse::<i32>().is_err() => {
                return Err(format!(
                    "List index is not within the allowable range; index: [{digits}]"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn condition_node(node: &CondNode, nesting: u32) -> Walked {
    let operand = |node: &OperandNode| operand(node, Language::Condition, nesting + 1);
    match node {
        CondNode::Compare(_, left, right) => [left, right].into_iter().try_for_each(operand),
        CondNode::In(left, list) => std::iter::once(left).chain(list).try_for_each(operand),
        CondNode::Between(value, low, high) => [value, low, high].into_iter().try_for_each(operand),
        CondNode::Call(node) => call(node, Language::Condition, nesting),
        CondNode::Not(_, inner) => condition_node(inner, nesting),
        CondNode::And(items) | CondNode::Or(items) => items
            .iter()
            .try_for_each(|item| condition_node(item, nesting)),
    }
}

/// The walk of a condition expression.
pub(crate) fn walk_condition(node: &CondNode) -> Walked {
    condition_node(node, 0)
}

/// The walk of an update expression.
pub(crate) fn walk_update(node: &UpdateNode) -> Walked {
    let mut seen: Vec<Section> = Vec::new();
    for (section, actions) in &node.sections {
        for action in actions {
            walk_path(action.path())?;
            if let super::tree::ActionNode::Set(_, value) = action {
                match value {
                    SetValueNode::Operand(node) => operand(node, Language::Update, 0)?,
                    SetValueNode::Arithmetic { left, right, .. } => {
                        operand(left, Language::Update, 1)?;
                        operand(right, Language::Update, 1)?;
                    }
                }
            }
        }
        if seen.contains(section) {
            return Err(format!(
                "The \"{}\" section can only be used once in an update expression;",
                section.keyword()
            ));
        }
        seen.push(*section);
    }
    Ok(())
}

/// The walk of a projection expression.
pub(crate) fn walk_projection(paths: &[PathNode]) -> Walked {
    paths.iter().try_for_each(walk_path)
}
