//! A recursive-descent parser of DynamoDB's PartiQL statements.

use crate::PartiqlError;
use crate::ast::{Change, Compare, Expr, Path, Projection, Returning, Statement, Step};
use crate::lexer::{Token, tokenize};

/// Words that are never bare identifiers.
const RESERVED: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "IS",
    "MISSING",
    "NULL",
    "TRUE",
    "FALSE",
    "INSERT",
    "INTO",
    "VALUE",
    "VALUES",
    "UPDATE",
    "SET",
    "REMOVE",
    "DELETE",
    "RETURNING",
    "ORDER",
];

/// Parses one statement.
pub fn parse(text: &str) -> Result<Statement, PartiqlError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        parameters: 0,
    };
    let statement = parser.statement()?;
    if let Some(token) = parser.peek() {
        return Err(PartiqlError::syntax(format!(
            "Unexpected token {} after the end of the statement",
            token.shown()
        )));
    }
    Ok(statement)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    // `?`s seen so far: each takes the next parameter.
    parameters: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.at + ahead)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        if token.is_some() {
            self.at += 1;
        }
        token
    }

    fn unexpected(&self, wanted: &str) -> PartiqlError {
        match self.peek() {
            Some(token) => PartiqlError::syntax(format!(
                "Unexpected token {} where {wanted} was expected",
                token.shown()
            )),
            None => PartiqlError::syntax(format!(
                "Unexpected end of statement; {wanted} was expected"
            )),
        }
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|t| t.is_keyword(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.at += 1;
        }
        found
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), PartiqlError> {
        match self.eat_keyword(keyword) {
            true => Ok(()),
            false => Err(self.unexpected(keyword)),
        }
    }

    fn at_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol)
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let found = self.at_symbol(symbol);
        if found {
            self.at += 1;
        }
        found
    }

    fn symbol(&mut self, symbol: &str) -> Result<(), PartiqlError> {
        match self.eat_symbol(symbol) {
            true => Ok(()),
            false => Err(self.unexpected(&format!("'{symbol}'"))),
        }
    }

    fn statement(&mut self) -> Result<Statement, PartiqlError> {
        if self.eat_keyword("SELECT") {
            self.select()
        } else if self.eat_keyword("INSERT") {
            self.insert()
        } else if self.eat_keyword("UPDATE") {
            self.update()
        } else if self.eat_keyword("DELETE") {
            self.delete()
        } else {
            Err(self.unexpected("SELECT, INSERT, UPDATE or DELETE"))
        }
    }

    /// An identifier: double-quoted, or a bare word that is not reserved.
    fn identifier(&mut self) -> Result<String, PartiqlError> {
        match self.peek() {
            Some(Token::Quoted(name)) => {
                let name = name.clone();
                self.at += 1;
                Ok(name)
            }
            Some(Token::Word(word)) if !RESERVED.iter().any(|r| word.eq_ignore_ascii_case(r)) => {
                let word = word.clone();
                self.at += 1;
                Ok(word)
            }
            _ => Err(self.unexpected("an identifier")),
        }
    }

    /// `"table"` or `"table"."index"`.
    fn table_ref(&mut self) -> Result<(String, Option<String>), PartiqlError> {
        let table = self.identifier()?;
        let index = match self.eat_symbol(".") {
            true => Some(self.identifier()?),
            false => None,
        };
        Ok((table, index))
    }

    fn select(&mut self) -> Result<Statement, PartiqlError> {
        let projection = if self.eat_symbol("*") {
            Projection::All
        } else {
            let mut paths = vec![self.path()?];
            while self.eat_symbol(",") {
                paths.push(self.path()?);
            }
            Projection::Paths(paths)
        };
        self.keyword("FROM")?;
        let (table, index) = self.table_ref()?;
        let condition = match self.eat_keyword("WHERE") {
            true => Some(self.expr()?),
            false => None,
        };
        let order_by = match self.eat_keyword("ORDER") {
            true => {
                self.keyword("BY")?;
                let path = self.path()?;
                let descending = if self.eat_keyword("DESC") {
                    true
                } else {
                    self.eat_keyword("ASC");
                    false
                };
                Some((path, descending))
            }
            false => None,
        };
        Ok(Statement::Select {
            projection,
            table,
            index,
            condition,
            order_by,
        })
    }

    fn insert(&mut self) -> Result<Statement, PartiqlError> {
        self.keyword("INTO")?;
        let table = self.identifier()?;
        self.keyword("VALUE")?;
        let item = self.primary()?;
        if !matches!(item, Expr::Map(_) | Expr::Parameter(_)) {
            return Err(PartiqlError::syntax("INSERT takes a tuple: VALUE {...}"));
        }
        Ok(Statement::Insert { table, item })
    }

    fn update(&mut self) -> Result<Statement, PartiqlError> {
        let table = self.identifier()?;
        let mut changes = Vec::new();
        loop {
            if self.eat_keyword("SET") {
                loop {
                    let path = self.path()?;
                    self.symbol("=")?;
                    let value = self.additive()?;
                    changes.push(Change::Set(path, value));
                    if !self.eat_symbol(",") {
                        break;
                    }
                }
            } else if self.eat_keyword("REMOVE") {
                loop {
                    changes.push(Change::Remove(self.path()?));
                    if !self.eat_symbol(",") {
                        break;
                    }
                }
            } else {
                break;
            }
        }
        if changes.is_empty() {
            return Err(self.unexpected("SET or REMOVE"));
        }
        self.keyword("WHERE")?;
        let condition = self.expr()?;
        let returning = self.returning()?;
        Ok(Statement::Update {
            table,
            changes,
            condition,
            returning,
        })
    }

    fn delete(&mut self) -> Result<Statement, PartiqlError> {
        self.keyword("FROM")?;
        let table = self.identifier()?;
        self.keyword("WHERE")?;
        let condition = self.expr()?;
        let returning = self.returning()?;
        Ok(Statement::Delete {
            table,
            condition,
            returning,
        })
    }

    /// `RETURNING (ALL|MODIFIED) (OLD|NEW) *`, if present.
    fn returning(&mut self) -> Result<Option<Returning>, PartiqlError> {
        if !self.eat_keyword("RETURNING") {
            return Ok(None);
        }
        let all = if self.eat_keyword("ALL") {
            true
        } else if self.eat_keyword("MODIFIED") {
            false
        } else {
            return Err(self.unexpected("ALL or MODIFIED"));
        };
        let old = if self.eat_keyword("OLD") {
            true
        } else if self.eat_keyword("NEW") {
            false
        } else {
            return Err(self.unexpected("OLD or NEW"));
        };
        self.symbol("*")?;
        Ok(Some(match (all, old) {
            (true, true) => Returning::AllOld,
            (true, false) => Returning::AllNew,
            (false, true) => Returning::ModifiedOld,
            (false, false) => Returning::ModifiedNew,
        }))
    }

    /// A path: a name, then `.name`, `[n]` or `['name']` steps.
    fn path(&mut self) -> Result<Path, PartiqlError> {
        let mut steps = vec![Step::Name(self.identifier()?)];
        loop {
            if self.eat_symbol(".") {
                steps.push(Step::Name(self.identifier()?));
            } else if self.eat_symbol("[") {
                match self.next() {
                    Some(Token::Number(digits)) => {
                        let index = digits.parse::<u32>().map_err(|_| {
                            PartiqlError::syntax(format!("Invalid list index {digits}"))
                        })?;
                        steps.push(Step::Index(index));
                    }
                    Some(Token::String(name)) => steps.push(Step::Name(name)),
                    _ => return Err(PartiqlError::syntax("A path's [] holds an index or a name")),
                }
                self.symbol("]")?;
            } else {
                return Ok(Path(steps));
            }
        }
    }

    /// `expr := or`.
    fn expr(&mut self) -> Result<Expr, PartiqlError> {
        let mut left = self.and()?;
        while self.eat_keyword("OR") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, PartiqlError> {
        let mut left = self.not()?;
        while self.eat_keyword("AND") {
            let right = self.not()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, PartiqlError> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }

    /// A comparison, BETWEEN, IN or IS, or an operand alone.
    fn predicate(&mut self) -> Result<Expr, PartiqlError> {
        let left = self.additive()?;
        let compare = match self.peek() {
            Some(Token::Symbol("=")) => Some(Compare::Eq),
            Some(Token::Symbol("<>" | "!=")) => Some(Compare::Ne),
            Some(Token::Symbol("<")) => Some(Compare::Lt),
            Some(Token::Symbol("<=")) => Some(Compare::Le),
            Some(Token::Symbol(">")) => Some(Compare::Gt),
            Some(Token::Symbol(">=")) => Some(Compare::Ge),
            _ => None,
        };
        if let Some(compare) = compare {
            self.at += 1;
            let right = self.additive()?;
            return Ok(Expr::Compare(compare, Box::new(left), Box::new(right)));
        }
        let negated = self.at_keyword("NOT")
            && self
                .peek_at(1)
                .is_some_and(|t| t.is_keyword("BETWEEN") || t.is_keyword("IN"));
        if negated {
            self.at += 1;
        }
        let predicate = if self.eat_keyword("BETWEEN") {
            let low = self.additive()?;
            self.keyword("AND")?;
            let high = self.additive()?;
            Expr::Between(Box::new(left), Box::new(low), Box::new(high))
        } else if self.eat_keyword("IN") {
            let close = if self.eat_symbol("(") {
                ")"
            } else if self.eat_symbol("[") {
                "]"
            } else {
                return Err(self.unexpected("'(' or '['"));
            };
            let mut values = vec![self.additive()?];
            while self.eat_symbol(",") {
                values.push(self.additive()?);
            }
            self.symbol(close)?;
            Expr::In(Box::new(left), values)
        } else if self.eat_keyword("IS") {
            let not = self.eat_keyword("NOT");
            if self.eat_keyword("MISSING") {
                return Ok(Expr::IsMissing(Box::new(left), not));
            }
            if self.eat_keyword("NULL") {
                return Ok(Expr::IsNull(Box::new(left), not));
            }
            return Err(self.unexpected("MISSING or NULL"));
        } else {
            return Ok(left);
        };
        Ok(match negated {
            true => Expr::Not(Box::new(predicate)),
            false => predicate,
        })
    }

    /// `a + b` and `a - b` (left to right).
    fn additive(&mut self) -> Result<Expr, PartiqlError> {
        let mut left = self.primary()?;
        loop {
            let plus = if self.eat_symbol("+") {
                true
            } else if self.eat_symbol("-") {
                false
            } else {
                return Ok(left);
            };
            let right = self.primary()?;
            left = Expr::Arithmetic(plus, Box::new(left), Box::new(right));
        }
    }

    fn primary(&mut self) -> Result<Expr, PartiqlError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.unexpected("a value"));
        };
        match token {
            Token::String(text) => {
                self.at += 1;
                Ok(Expr::String(text))
            }
            Token::Number(text) => {
                self.at += 1;
                Ok(Expr::Number(text))
            }
            Token::Symbol("-") if matches!(self.peek_at(1), Some(Token::Number(_))) => {
                self.at += 1;
                match self.next() {
                    Some(Token::Number(text)) => Ok(Expr::Number(format!("-{text}"))),
                    _ => Err(self.unexpected("a number")),
                }
            }
            Token::Question => {
                self.at += 1;
                let index = self.parameters;
                self.parameters += 1;
                Ok(Expr::Parameter(index))
            }
            Token::Symbol("(") => {
                self.at += 1;
                let inner = self.expr()?;
                self.symbol(")")?;
                Ok(inner)
            }
            Token::Symbol("{") => {
                self.at += 1;
                self.map()
            }
            Token::Symbol("[") => {
                self.at += 1;
                Ok(Expr::List(self.values_until("]")?))
            }
            Token::Symbol("<<") => {
                self.at += 1;
                Ok(Expr::Set(self.values_until(">>")?))
            }
            Token::Word(word) if word.eq_ignore_ascii_case("TRUE") => {
                self.at += 1;
                Ok(Expr::Bool(true))
            }
            Token::Word(word) if word.eq_ignore_ascii_case("FALSE") => {
                self.at += 1;
                Ok(Expr::Bool(false))
            }
            Token::Word(word) if word.eq_ignore_ascii_case("NULL") => {
                self.at += 1;
                Ok(Expr::Null)
            }
            Token::Word(word) if word.eq_ignore_ascii_case("MISSING") => {
                self.at += 1;
                Ok(Expr::Missing)
            }
            Token::Word(word) if matches!(self.peek_at(1), Some(Token::Symbol("("))) => {
                self.at += 2;
                let mut arguments = Vec::new();
                if !self.eat_symbol(")") {
                    arguments.push(self.expr()?);
                    while self.eat_symbol(",") {
                        arguments.push(self.expr()?);
                    }
                    self.symbol(")")?;
                }
                Ok(Expr::Function(word.to_ascii_lowercase(), arguments))
            }
            Token::Word(_) | Token::Quoted(_) => Ok(Expr::Path(self.path()?)),
            _ => Err(self.unexpected("a value")),
        }
    }

    /// The members of a `{...}` after its `{`.
    fn map(&mut self) -> Result<Expr, PartiqlError> {
        let mut members = Vec::new();
        if self.eat_symbol("}") {
            return Ok(Expr::Map(members));
        }
        loop {
            let name = match self.next() {
                Some(Token::String(name) | Token::Quoted(name)) => name,
                _ => {
                    return Err(PartiqlError::syntax(
                        "A tuple's attribute names are quoted strings",
                    ));
                }
            };
            self.symbol(":")?;
            let value = self.additive()?;
            members.push((name, value));
            if self.eat_symbol("}") {
                return Ok(Expr::Map(members));
            }
            self.symbol(",")?;
        }
    }

    /// Values separated by commas up to `close`.
    fn values_until(&mut self, close: &str) -> Result<Vec<Expr>, PartiqlError> {
        let mut values = Vec::new();
        if self.eat_symbol(close) {
            return Ok(values);
        }
        loop {
            values.push(self.additive()?);
            if self.eat_symbol(close) {
                return Ok(values);
            }
            self.symbol(",")?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Statement {
        match parse(text) {
            Ok(statement) => statement,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn selects_with_conditions_and_paths() {
        let statement = parsed(
            "SELECT a.b[0], \"c\" FROM \"t\".\"i\" WHERE pk = 'x' AND begins_with(\"sk\", ?) AND n NOT BETWEEN 1 AND 2",
        );
        let Statement::Select {
            projection: Projection::Paths(paths),
            table,
            index,
            condition: Some(_),
            ..
        } = statement
        else {
            panic!("not a select with paths");
        };
        assert_eq!(table, "t");
        assert_eq!(index.as_deref(), Some("i"));
        assert_eq!(
            paths[0],
            Path(vec![
                Step::Name("a".into()),
                Step::Name("b".into()),
                Step::Index(0)
            ])
        );
    }

    #[test]
    fn order_by_parses() {
        let Statement::Select { order_by, .. } =
            parsed("SELECT * FROM t WHERE pk = 'p' ORDER BY sk DESC")
        else {
            panic!("not a select");
        };
        assert_eq!(order_by, Some((Path(vec![Step::Name("sk".into())]), true)));
    }

    #[test]
    fn writes_parse() {
        assert!(matches!(
            parsed("INSERT INTO \"t\" VALUE {'pk': ?, 'n': 1, 'l': [1, 'a'], 's': <<'x'>>}"),
            Statement::Insert { .. }
        ));
        let Statement::Update {
            changes, returning, ..
        } = parsed(
            "UPDATE \"t\" SET a = a + 1, b = 'x' REMOVE c WHERE pk = 'k' RETURNING ALL NEW *",
        )
        else {
            panic!("not an update");
        };
        assert_eq!(changes.len(), 3);
        assert_eq!(returning, Some(Returning::AllNew));
        assert!(matches!(
            parsed("DELETE FROM \"t\" WHERE pk = 'k' AND x IS NOT MISSING"),
            Statement::Delete { .. }
        ));
    }

    #[test]
    fn misspelt_keywords_are_syntax_errors() {
        let error = parse("SELECTT * FROMM \"t\"").err().map(|e| e.message);
        assert!(error.is_some_and(|m| m.starts_with("Statement wasn't well formed")));
        assert!(parse("SELECT * FROM \"t\" WHERE").is_err());
        assert!(parse("SELECT * FROM \"t\" extra").is_err());
    }
}
