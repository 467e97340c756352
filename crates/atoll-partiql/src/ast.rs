//! A parsed statement.

/// One step of a path: an attribute (or map key) name, or a list index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A name.
    Name(String),
    /// A list index.
    Index(u32),
}

/// A document path (`a.b[0]`), never empty; its first step is a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path(pub Vec<Step>);

impl Path {
    /// The last name of the path (what a SELECT of it calls the result).
    pub fn last_name(&self) -> Option<&str> {
        self.0.iter().rev().find_map(|step| match step {
            Step::Name(name) => Some(name.as_str()),
            Step::Index(_) => None,
        })
    }

    /// The path's single name, when it is a top-level attribute.
    pub fn top_level(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Step::Name(name)] => Some(name),
            _ => None,
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// `=`.
    Eq,
    /// `<>` or `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl Compare {
    /// The operator as DynamoDB's expression language writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            Compare::Eq => "=",
            Compare::Ne => "<>",
            Compare::Lt => "<",
            Compare::Le => "<=",
            Compare::Gt => ">",
            Compare::Ge => ">=",
        }
    }
}

/// An expression: a value, a path, or a condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A document path.
    Path(Path),
    /// A string literal.
    String(String),
    /// A number literal, as written.
    Number(String),
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// `NULL`.
    Null,
    /// `MISSING`.
    Missing,
    /// The `n`th `?` (from 0).
    Parameter(usize),
    /// `{'k': v, ...}`.
    Map(Vec<(String, Expr)>),
    /// `[v, ...]`.
    List(Vec<Expr>),
    /// `<<v, ...>>`.
    Set(Vec<Expr>),
    /// `a op b`.
    Compare(Compare, Box<Expr>, Box<Expr>),
    /// `a BETWEEN low AND high`.
    Between(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `a IN (v, ...)` or `a IN [v, ...]`.
    In(Box<Expr>, Vec<Expr>),
    /// `a IS [NOT] MISSING` (`negated` with NOT).
    IsMissing(Box<Expr>, bool),
    /// `a IS [NOT] NULL`.
    IsNull(Box<Expr>, bool),
    /// `a AND b`.
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`.
    Or(Box<Expr>, Box<Expr>),
    /// `NOT a`.
    Not(Box<Expr>),
    /// `name(args)` (begins_with, contains, size, attribute_type, ...).
    Function(String, Vec<Expr>),
    /// `a + b` or `a - b` (in SET).
    Arithmetic(bool, Box<Expr>, Box<Expr>),
}

/// What a SELECT returns of each item.
#[derive(Clone, Debug, PartialEq)]
pub enum Projection {
    /// `*`: every attribute.
    All,
    /// These paths.
    Paths(Vec<Path>),
}

/// One change of an UPDATE.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// `SET path = value`.
    Set(Path, Expr),
    /// `REMOVE path`.
    Remove(Path),
}

/// What a write returns (`RETURNING ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returning {
    /// `ALL OLD *`.
    AllOld,
    /// `MODIFIED OLD *`.
    ModifiedOld,
    /// `ALL NEW *`.
    AllNew,
    /// `MODIFIED NEW *`.
    ModifiedNew,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    /// `SELECT projection FROM "table"[."index"] [WHERE condition]`.
    Select {
        /// What to return.
        projection: Projection,
        /// The table.
        table: String,
        /// The index, if one is read.
        index: Option<String>,
        /// The condition.
        condition: Option<Expr>,
        /// `ORDER BY path [ASC|DESC]`: the path, and whether descending.
        order_by: Option<(Path, bool)>,
    },
    /// `INSERT INTO "table" VALUE {...}`.
    Insert {
        /// The table.
        table: String,
        /// The item (a map expression).
        item: Expr,
    },
    /// `UPDATE "table" SET/REMOVE ... WHERE condition [RETURNING ...]`.
    Update {
        /// The table.
        table: String,
        /// The changes, in order.
        changes: Vec<Change>,
        /// The condition (naming the whole key).
        condition: Expr,
        /// What to return.
        returning: Option<Returning>,
    },
    /// `DELETE FROM "table" WHERE condition [RETURNING ALL OLD *]`.
    Delete {
        /// The table.
        table: String,
        /// The condition (naming the whole key).
        condition: Expr,
        /// What to return.
        returning: Option<Returning>,
    },
}

impl Statement {
    /// The table the statement names.
    pub fn table(&self) -> &str {
        match self {
            Statement::Select { table, .. }
            | Statement::Insert { table, .. }
            | Statement::Update { table, .. }
            | Statement::Delete { table, .. } => table,
        }
    }

    /// Whether the statement only reads.
    pub fn is_read(&self) -> bool {
        matches!(self, Statement::Select { .. })
    }
}
