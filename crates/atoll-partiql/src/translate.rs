//! A statement's clauses in DynamoDB's expression language: a WHERE as a
//! condition expression, SET/REMOVE as an update expression, each with its
//! `ExpressionAttributeNames` and `ExpressionAttributeValues`, so the
//! expression crate parses, validates and evaluates them as it does any
//! request's; literals and `?` parameters as attribute values.

use std::collections::HashMap;

use atoll_model::{AttributeValue, Number};

use crate::PartiqlError;
use crate::ast::{Change, Expr, Path, Step};

/// DynamoDB's text when the `?`s and the parameters differ in number.
pub const PARAMETER_COUNT_MISMATCH: &str =
    "Number of parameters in request and statement don't match.";

/// Names and values a translation gives placeholders to.
pub struct Placeholders<'a> {
    parameters: &'a [AttributeValue],
    /// `ExpressionAttributeNames`.
    pub names: HashMap<String, String>,
    /// `ExpressionAttributeValues`.
    pub values: HashMap<String, AttributeValue>,
    by_name: HashMap<String, String>,
}

impl<'a> Placeholders<'a> {
    /// Placeholders for a statement whose `?`s take `parameters`.
    pub fn new(parameters: &'a [AttributeValue]) -> Placeholders<'a> {
        Placeholders {
            parameters,
            names: HashMap::new(),
            values: HashMap::new(),
            by_name: HashMap::new(),
        }
    }

    fn name(&mut self, name: &str) -> String {
        if let Some(placeholder) = self.by_name.get(name) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), name.to_string());
        self.by_name.insert(name.to_string(), placeholder.clone());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `path` with its names as placeholders.
    pub fn path(&mut self, path: &Path) -> String {
        let mut text = String::new();
        for step in &path.0 {
            match step {
                Step::Name(name) => {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    let placeholder = self.name(name);
                    text.push_str(&placeholder);
                }
                Step::Index(index) => text.push_str(&format!("[{index}]")),
            }
        }
        text
    }

    /// An operand: a path, `size(path)`, or a value.
    fn operand(&mut self, expr: &Expr) -> Result<String, PartiqlError> {
        match expr {
            Expr::Path(path) => Ok(self.path(path)),
            Expr::Function(name, arguments) if name == "size" => match arguments.as_slice() {
                [Expr::Path(path)] => Ok(format!("size({})", self.path(path))),
                _ => Err(PartiqlError::invalid("size takes one path")),
            },
            other => {
                let value = value_of(other, self.parameters)?;
                Ok(self.value(value))
            }
        }
    }

    /// A WHERE clause as a condition expression.
    pub fn condition(&mut self, expr: &Expr) -> Result<String, PartiqlError> {
        Ok(match expr {
            Expr::And(a, b) => format!("({}) AND ({})", self.condition(a)?, self.condition(b)?),
            Expr::Or(a, b) => format!("({}) OR ({})", self.condition(a)?, self.condition(b)?),
            Expr::Not(a) => format!("NOT ({})", self.condition(a)?),
            Expr::Compare(op, a, b) => {
                format!("{} {} {}", self.operand(a)?, op.symbol(), self.operand(b)?)
            }
            Expr::Between(a, low, high) => format!(
                "{} BETWEEN {} AND {}",
                self.operand(a)?,
                self.operand(low)?,
                self.operand(high)?
            ),
            Expr::In(a, values) => {
                let subject = self.operand(a)?;
                let mut listed = Vec::with_capacity(values.len());
                for value in values {
                    listed.push(self.operand(value)?);
                }
                format!("{subject} IN ({})", listed.join(", "))
            }
            Expr::IsMissing(a, negated) => {
                let path = self.path_of(a)?;
                match negated {
                    false => format!("attribute_not_exists({path})"),
                    true => format!("attribute_exists({path})"),
                }
            }
            Expr::IsNull(a, negated) => {
                let path = self.path_of(a)?;
                let null = self.value(AttributeValue::S("NULL".into()));
                match negated {
                    false => format!("attribute_type({path}, {null})"),
                    true => format!("NOT attribute_type({path}, {null})"),
                }
            }
            Expr::Function(name, arguments) => self.function(name, arguments)?,
            Expr::Bool(true) => {
                let yes = self.value(AttributeValue::Bool(true));
                format!("{yes} = {yes}")
            }
            other => {
                return Err(PartiqlError::invalid(format!(
                    "Unsupported condition in the WHERE clause: {other:?}"
                )));
            }
        })
    }

    fn path_of(&mut self, expr: &Expr) -> Result<String, PartiqlError> {
        match expr {
            Expr::Path(path) => Ok(self.path(path)),
            _ => Err(PartiqlError::invalid("IS MISSING and IS NULL take a path")),
        }
    }

    fn function(&mut self, name: &str, arguments: &[Expr]) -> Result<String, PartiqlError> {
        match (name, arguments) {
            ("begins_with" | "contains" | "attribute_type", [Expr::Path(path), value]) => {
                let path = self.path(path);
                let value = self.operand(value)?;
                Ok(format!("{name}({path}, {value})"))
            }
            ("attribute_exists" | "attribute_not_exists", [Expr::Path(path)]) => {
                Ok(format!("{name}({})", self.path(path)))
            }
            ("exists", _) => Err(PartiqlError::invalid(
                "EXISTS is supported only as a condition check of ExecuteTransaction",
            )),
            _ => Err(PartiqlError::invalid(format!(
                "Unsupported function {name} with {} arguments",
                arguments.len()
            ))),
        }
    }

    /// An UPDATE's changes as an update expression.
    pub fn update(&mut self, changes: &[Change]) -> Result<String, PartiqlError> {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut adds = Vec::new();
        let mut deletes = Vec::new();
        for change in changes {
            match change {
                Change::Remove(path) => removes.push(self.path(path)),
                Change::Set(path, Expr::Function(name, arguments))
                    if name == "set_add" || name == "set_delete" =>
                {
                    let [Expr::Path(source), value] = arguments.as_slice() else {
                        return Err(PartiqlError::invalid(format!(
                            "{name} takes a path and a set"
                        )));
                    };
                    if source != path {
                        return Err(PartiqlError::invalid(format!(
                            "{name} must name the attribute it sets"
                        )));
                    }
                    let target = self.path(path);
                    let value = self.operand(value)?;
                    match name.as_str() {
                        "set_add" => adds.push(format!("{target} {value}")),
                        _ => deletes.push(format!("{target} {value}")),
                    }
                }
                Change::Set(path, value) => {
                    let target = self.path(path);
                    let value = self.set_value(value)?;
                    sets.push(format!("{target} = {value}"));
                }
            }
        }
        let mut clauses = Vec::new();
        for (keyword, parts) in [
            ("SET", sets),
            ("REMOVE", removes),
            ("ADD", adds),
            ("DELETE", deletes),
        ] {
            if !parts.is_empty() {
                clauses.push(format!("{keyword} {}", parts.join(", ")));
            }
        }
        Ok(clauses.join(" "))
    }

    /// The value a SET gives: an operand, `a + b`, `a - b`, list_append or if_not_exists.
    fn set_value(&mut self, expr: &Expr) -> Result<String, PartiqlError> {
        match expr {
            Expr::Arithmetic(plus, a, b) => {
                let sign = if *plus { "+" } else { "-" };
                Ok(format!("{} {sign} {}", self.operand(a)?, self.operand(b)?))
            }
            Expr::Function(name, arguments)
                if (name == "list_append" || name == "if_not_exists") && arguments.len() == 2 =>
            {
                let mut parts = Vec::with_capacity(2);
                for argument in arguments {
                    parts.push(self.operand(argument)?);
                }
                Ok(format!("{name}({})", parts.join(", ")))
            }
            other => self.operand(other),
        }
    }
}

/// The value `expr` (a literal, a tuple, a list, a set or a parameter) stands for.
pub fn value_of(
    expr: &Expr,
    parameters: &[AttributeValue],
) -> Result<AttributeValue, PartiqlError> {
    Ok(match expr {
        Expr::String(text) => AttributeValue::S(text.clone()),
        Expr::Number(text) => AttributeValue::N(
            Number::parse(text)
                .map_err(|e| PartiqlError::invalid(format!("Invalid number {text}: {e}")))?,
        ),
        Expr::Bool(value) => AttributeValue::Bool(*value),
        Expr::Null => AttributeValue::Null,
        Expr::Parameter(index) => parameters
            .get(*index)
            .cloned()
            .ok_or_else(|| PartiqlError::invalid(PARAMETER_COUNT_MISMATCH))?,
        Expr::Map(members) => {
            let mut map = std::collections::BTreeMap::new();
            for (name, value) in members {
                if matches!(value, Expr::Missing) {
                    continue;
                }
                map.insert(name.clone(), value_of(value, parameters)?);
            }
            AttributeValue::M(map)
        }
        Expr::List(values) => AttributeValue::L(
            values
                .iter()
                .map(|value| value_of(value, parameters))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Set(values) => set_of(values, parameters)?,
        other => {
            return Err(PartiqlError::invalid(format!(
                "Expected a value, found {other:?}"
            )));
        }
    })
}

/// A set literal: its members all strings, all numbers or all binaries.
fn set_of(values: &[Expr], parameters: &[AttributeValue]) -> Result<AttributeValue, PartiqlError> {
    let members: Vec<AttributeValue> = values
        .iter()
        .map(|value| value_of(value, parameters))
        .collect::<Result<_, _>>()?;
    let mixed =
        || PartiqlError::invalid("A set's members must all be strings, numbers or binaries");
    match members.first() {
        None => Err(PartiqlError::invalid("A set may not be empty")),
        Some(AttributeValue::S(_)) => members
            .into_iter()
            .map(|m| match m {
                AttributeValue::S(s) => Ok(s),
                _ => Err(mixed()),
            })
            .collect::<Result<_, _>>()
            .map(AttributeValue::Ss),
        Some(AttributeValue::N(_)) => members
            .into_iter()
            .map(|m| match m {
                AttributeValue::N(n) => Ok(n),
                _ => Err(mixed()),
            })
            .collect::<Result<_, _>>()
            .map(AttributeValue::Ns),
        Some(AttributeValue::B(_)) => members
            .into_iter()
            .map(|m| match m {
                AttributeValue::B(b) => Ok(b),
                _ => Err(mixed()),
            })
            .collect::<Result<_, _>>()
            .map(AttributeValue::Bs),
        Some(_) => Err(mixed()),
    }
}

/// The conditions `expr` ANDs together, outermost first.
pub fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::And(a, b) => {
            let mut all = conjuncts(a);
            all.extend(conjuncts(b));
            all
        }
        other => vec![other],
    }
}

/// The top-level attribute and the value side of `expr` when it is an
/// equality between the two (either way round).
pub fn equality(expr: &Expr) -> Option<(&str, &Expr)> {
    let Expr::Compare(crate::ast::Compare::Eq, a, b) = expr else {
        return None;
    };
    match (a.as_ref(), b.as_ref()) {
        (Expr::Path(path), value) | (value, Expr::Path(path))
            if !matches!(value, Expr::Path(_)) =>
        {
            path.top_level().map(|name| (name, value))
        }
        _ => None,
    }
}

/// How many `?`s `expr` holds (each takes one parameter).
pub fn parameter_count(statement: &crate::Statement) -> usize {
    fn count(expr: &Expr) -> usize {
        match expr {
            Expr::Parameter(_) => 1,
            Expr::Map(members) => members.iter().map(|(_, v)| count(v)).sum(),
            Expr::List(values) | Expr::Set(values) | Expr::Function(_, values) => {
                values.iter().map(count).sum()
            }
            Expr::Compare(_, a, b)
            | Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Arithmetic(_, a, b) => count(a) + count(b),
            Expr::Between(a, b, c) => count(a) + count(b) + count(c),
            Expr::In(a, values) => count(a) + values.iter().map(count).sum::<usize>(),
            Expr::IsMissing(a, _) | Expr::IsNull(a, _) | Expr::Not(a) => count(a),
            _ => 0,
        }
    }
    match statement {
        crate::Statement::Select { condition, .. } => condition.as_ref().map_or(0, count),
        crate::Statement::Insert { item, .. } => count(item),
        crate::Statement::Update {
            changes, condition, ..
        } => {
            changes
                .iter()
                .map(|change| match change {
                    Change::Set(_, value) => count(value),
                    Change::Remove(_) => 0,
                })
                .sum::<usize>()
                + count(condition)
        }
        crate::Statement::Delete { condition, .. } => count(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Statement, parse};

    #[test]
    fn a_where_clause_becomes_a_condition_expression() {
        let Ok(Statement::Select {
            condition: Some(condition),
            ..
        }) = parse(
            "SELECT * FROM t WHERE pk = ? AND begins_with(sk, 'a') AND n IN (1, 2) AND m IS MISSING",
        )
        else {
            panic!("no condition");
        };
        let parameters = [AttributeValue::S("k".into())];
        let mut placeholders = Placeholders::new(&parameters);
        let text = placeholders.condition(&condition).unwrap_or_default();
        assert_eq!(
            text,
            "(((#n0 = :v0) AND (begins_with(#n1, :v1))) AND (#n2 IN (:v2, :v3))) AND (attribute_not_exists(#n3))"
        );
        assert_eq!(
            placeholders.values.get(":v0"),
            Some(&AttributeValue::S("k".into()))
        );
        assert_eq!(conjuncts(&condition).len(), 4);
    }

    #[test]
    fn changes_become_an_update_expression() {
        let Ok(Statement::Update { changes, .. }) =
            parse("UPDATE t SET a = a + 1, s = set_add(s, <<'x'>>) REMOVE b WHERE pk = 'k'")
        else {
            panic!("not an update");
        };
        let mut placeholders = Placeholders::new(&[]);
        let text = placeholders.update(&changes).unwrap_or_default();
        assert_eq!(text, "SET #n0 = #n0 + :v0 REMOVE #n2 ADD #n1 :v1");
    }

    #[test]
    fn missing_parameters_are_refused() {
        assert!(value_of(&Expr::Parameter(1), &[AttributeValue::Null]).is_err());
    }
}
