//! The checks of one parsed expression against a request's
//! `ExpressionAttributeNames` and `ExpressionAttributeValues`, in DynamoDB's
//! order.
//!
//! A condition is checked bottom-up, left to right: each path (too deep:
//! `The document path has too many nesting levels; nesting levels: 33`;
//! then each `#name`: `An expression attribute name used in the document
//! path is not defined; attribute name: #n`), each `:value` (`An expression
//! attribute value used in expression is not defined; attribute value:
//! :v`), then the operator over its operands ([`operators`]), then the count
//! of operators (`The expression contains too many operators; operator
//! count: 301`).
//!
//! DynamoDB builds an update's and a projection's list of actions or paths
//! by popping a stack, so it checks them last-written first: first every
//! target path (resolved, then inserted into the tree of [`paths`]), then
//! every action's operands (an `ADD` or `DELETE` value's type last).

pub(crate) mod operators;
pub(crate) mod paths;

use std::collections::{HashMap, HashSet};

use atoll_model::AttributeValue;
use atoll_model::size::attribute_value_size_bytes;

use crate::parser::tree::{
    ActionNode, CondNode, OperandNode, PathNode, SetValueNode, Step, UpdateNode,
};
use operators::{Kid, check, check_add_delete, lookup};
use paths::{Elem, Node};

use crate::parser::MAX_OPERATORS;

/// The deepest document path.
const MAX_PATH_DEPTH: usize = 32;

/// One expression's check against the request's placeholders, and what it
/// learns along the way.
pub(crate) struct Validator<'a> {
    names: Option<&'a HashMap<String, String>>,
    values: Option<&'a HashMap<String, AttributeValue>>,
    /// Name placeholders used (with `.:v` keys, which DynamoDB counts as names).
    pub used_names: HashSet<String>,
    /// Value placeholders used.
    pub used_values: HashSet<String>,
    operators: u32,
    /// Bytes the placeholders add, once per use, for the 1 MB limit.
    pub parameter_bytes: usize,
    /// Top-level attributes referenced, resolved, first use first.
    pub top_level: Vec<String>,
    /// Top-level attributes reached into (`a.b`, `a[0]`).
    pub nested_top_level: Vec<String>,
    /// Without a request: placeholders stand for themselves, values are
    /// of unknown type.
    lenient: bool,
}

type Checked<T> = Result<T, String>;

fn push_once(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|existing| existing == name) {
        list.push(name.to_owned());
    }
}

impl<'a> Validator<'a> {
    pub fn new(
        names: Option<&'a HashMap<String, String>>,
        values: Option<&'a HashMap<String, AttributeValue>>,
    ) -> Self {
        Validator {
            names,
            values,
            used_names: HashSet::new(),
            used_values: HashSet::new(),
            operators: 0,
            parameter_bytes: 0,
            top_level: Vec::new(),
            nested_top_level: Vec::new(),
            lenient: false,
        }
    }

    /// A validator for an expression without a request: only the checks
    /// that do not depend on names and values.
    pub fn lenient() -> Self {
        Validator {
            lenient: true,
            ..Validator::new(None, None)
        }
    }

    fn count_operator(&mut self) -> Checked<()> {
        self.operators += 1;
        if self.operators as usize > MAX_OPERATORS {
            return Err(format!(
                "The expression contains too many operators; operator count: {}",
                self.operators
            ));
        }
        Ok(())
    }

    /// Resolves a path's placeholders.
    pub fn path(&mut self, path: &PathNode) -> Checked<Vec<Elem>> {
        if path.steps.len() > MAX_PATH_DEPTH {
            return Err(format!(
                "The document path has too many nesting levels; nesting levels: {}",
                path.steps.len()
            ));
        }
        let mut elems = Vec::with_capacity(path.steps.len());
        for step in &path.steps {
            elems.push(match step {
                Step::Name(name) if name.starts_with('#') && self.lenient => Elem::Map(name.clone()),
                Step::Name(name) if name.starts_with('#') => {
                    self.used_names.insert(name.clone());
                    let resolved = self.names.and_then(|names| names.get(name)).ok_or_else(|| {
                        format!(
                            "An expression attribute name used in the document path is not defined; attribute name: {name}"
                        )
                    })?;
                    self.parameter_bytes = self.parameter_bytes.saturating_add(resolved.len());
                    Elem::Map(resolved.clone())
                }
                Step::Name(name) => Elem::Map(name.clone()),
                Step::Index(digits) => Elem::List(digits.parse().map_err(|_| {
                    format!("List index is not within the allowable range; index: [{digits}]")
                })?),
                Step::ValueKey(key) => {
                    self.used_names.insert(key.clone());
                    return Err(if self.values.is_some_and(|values| values.contains_key(key)) {
                        // unverified: DynamoDB's dictionary access by value is internal
                        // (its service once answered it with an internal failure).
                        format!(
                            "The document path cannot contain attribute value parameters; attribute value: {key}"
                        )
                    } else {
                        format!(
                            "An expression attribute name used in the document path is not defined; attribute name: {key}"
                        )
                    });
                }
            });
        }
        if let Some(Elem::Map(head)) = elems.first() {
            push_once(&mut self.top_level, head);
            if elems.len() > 1 {
                push_once(&mut self.nested_top_level, head);
            }
        }
        Ok(elems)
    }

    fn value(&mut self, name: &str) -> Checked<&'a AttributeValue> {
        self.used_values.insert(name.to_owned());
        let value = self.values.and_then(|values| values.get(name)).ok_or_else(|| {
            format!(
                "An expression attribute value used in expression is not defined; attribute value: {name}"
            )
        })?;
        self.parameter_bytes = self
            .parameter_bytes
            .saturating_add(attribute_value_size_bytes(value));
        Ok(value)
    }

    fn operand(&mut self, node: &OperandNode) -> Checked<Kid<'a>> {
        match node {
            OperandNode::Path(path) => Ok(Kid::Path(self.path(path)?)),
            OperandNode::Value(_) if self.lenient => Ok(Kid::Unknown),
            OperandNode::Value(name) => Ok(Kid::Value(self.value(name)?)),
            OperandNode::Call(call) => {
                let kids = call
                    .args
                    .iter()
                    .map(|arg| self.operand(arg))
                    .collect::<Checked<Vec<_>>>()?;
                let op = lookup(&call.name)
                    .ok_or_else(|| format!("Invalid function name; function: {}", call.name))?;
                check(&op, &kids)?;
                self.count_operator()?;
                Ok(Kid::Op(op.returns))
            }
        }
    }

    fn operator(&mut self, name: &str, operands: &[&OperandNode]) -> Checked<()> {
        let kids = operands
            .iter()
            .map(|node| self.operand(node))
            .collect::<Checked<Vec<_>>>()?;
        let op = lookup(name).ok_or_else(|| format!("Invalid function name; function: {name}"))?;
        check(&op, &kids)?;
        self.count_operator()
    }

    /// Checks a condition.
    pub fn condition(&mut self, node: &CondNode) -> Checked<()> {
        match node {
            CondNode::Compare(comparator, left, right) => self.operator(
                crate::parser::comparator_symbol(*comparator),
                &[left, right],
            ),
            CondNode::In(left, list) => {
                let operands: Vec<&OperandNode> = std::iter::once(left).chain(list).collect();
                self.operator("IN", &operands)
            }
            CondNode::Between(value, low, high) => self.operator("BETWEEN", &[value, low, high]),
            CondNode::Call(call) => {
                let operands: Vec<&OperandNode> = call.args.iter().collect();
                self.operator(&call.name, &operands)
            }
            CondNode::Not(count, inner) => {
                self.condition(inner)?;
                (0..*count).try_for_each(|_| self.count_operator())
            }
            CondNode::And(items) | CondNode::Or(items) => {
                items.iter().try_for_each(|item| self.condition(item))?;
                (1..items.len()).try_for_each(|_| self.count_operator())
            }
        }
    }

    /// Checks an update: targets, then operands, last action first.
    pub fn update(&mut self, node: &UpdateNode) -> Checked<()> {
        let actions: Vec<&ActionNode> = node.actions().collect();
        let mut tree = Node::default();
        for action in actions.iter().rev() {
            let path = self.path(action.path())?;
            tree.insert(&path, 0)?;
        }
        for action in actions.iter().rev() {
            match action {
                ActionNode::Set(_, SetValueNode::Operand(operand)) => {
                    self.operand(operand)?;
                }
                ActionNode::Set(_, SetValueNode::Arithmetic { left, plus, right }) => {
                    self.operator(if *plus { "+" } else { "-" }, &[left, right])?;
                }
                ActionNode::Remove(_) => {}
                ActionNode::Add(..) | ActionNode::Delete(..) if self.lenient => {}
                ActionNode::Add(_, value) => check_add_delete(self.value(value)?, true)?,
                ActionNode::Delete(_, value) => check_add_delete(self.value(value)?, false)?,
            }
        }
        Ok(())
    }

    /// Checks a projection's paths, last first.
    pub fn projection(&mut self, paths: &[PathNode]) -> Checked<()> {
        let mut tree = Node::default();
        for path in paths.iter().rev() {
            let path = self.path(path)?;
            tree.insert(&path, 0)?;
        }
        Ok(())
    }
}
