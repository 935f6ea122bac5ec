//! Static analysis of the SQL an agent sends, before any database sees it: the first of
//! the read-only layers.
//!
//! The text is parsed with sqlparser for the database's dialect. [`read_only`] accepts one
//! statement that is a query (SELECT, WITH, VALUES), an EXPLAIN without ANALYZE, a SHOW or
//! a DESCRIBE, and walks the whole tree (subqueries, CTEs, FROM, function arguments):
//! no data-modifying statement anywhere, no `SELECT … INTO`, no `FOR UPDATE`/`FOR SHARE`,
//! no `:=` assignment, and no function of the [deny-list](deny). [`writable`] accepts one
//! statement that is not transaction control, with the same function check.
//!
//! What runs afterwards is the statement re-rendered from the tree, not the text received:
//! comments are gone (including MySQL's executable `/*! … */` comments, which sqlparser
//! reads as code and the checks therefore see), and a parser differential cannot smuggle a
//! second statement past the check. A read-only query also gets a `LIMIT` of the row cap
//! plus one, so that the database stops producing rows the toolbox would discard.

mod deny;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::ops::ControlFlow;

use sqlparser::{
    ast::{
        BinaryOperator, Expr, LimitClause, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement, TableFactor,
        Value, Visit, Visitor,
    },
    dialect::{Dialect as ParserDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect},
    parser::{Parser, ParserOptions},
};

/// The SQL dialect of a configured database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// The name used in messages and in `sql_list_databases`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
            Self::Sqlite => "sqlite",
        }
    }

    fn parser(self) -> &'static dyn ParserDialect {
        match self {
            Self::Postgres => &PostgreSqlDialect {},
            Self::MySql => &MySqlDialect {},
            Self::Sqlite => &SQLiteDialect {},
        }
    }
}

/// Why a statement was refused before reaching the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    /// sqlparser could not read it.
    #[error("the statement does not parse as {dialect} SQL: {message}")]
    Parse {
        /// `postgres`, `mysql` or `sqlite`.
        dialect: &'static str,
        /// sqlparser's message.
        message: String,
    },
    /// A statement text over [`MAX_STATEMENT_BYTES`].
    #[error("the statement is {bytes} bytes, over the limit of {limit} bytes")]
    TooLong {
        /// The text's length.
        bytes: usize,
        /// [`MAX_STATEMENT_BYTES`].
        limit: usize,
    },
    /// Nothing but whitespace, comments or semicolons.
    #[error("no statement found")]
    Empty,
    /// More than one statement (`SELECT 1; DROP TABLE t`).
    #[error("only a single statement is allowed: found {count} ({kinds})")]
    Multiple {
        /// How many.
        count: usize,
        /// Their kinds, e.g. `SELECT, DROP TABLE`.
        kinds: String,
    },
    /// A statement that is not a query, EXPLAIN, SHOW or DESCRIBE, at the top or nested.
    #[error("only a single read-only statement is allowed: found {0}")]
    NotReadOnly(String),
    /// A clause that writes or locks (`SELECT INTO`, `FOR UPDATE`, `:=`).
    #[error("{0} is not allowed in a read-only query")]
    Clause(&'static str),
    /// `TABLE name` as a query body: sqlparser (0.63, `parse_as_table`) reads the three
    /// tokens after `TABLE` whatever they are, so the two after a lone name vanish
    /// (`SELECT 1 UNION TABLE t; VACUUM` parses as one statement): what would run is not
    /// what was sent.
    #[error(
        "the TABLE name shorthand is not supported (the parser misreads what follows it): write SELECT * FROM name"
    )]
    TableShorthand,
    /// `EXPLAIN ANALYZE` executes the statement it explains.
    #[error("EXPLAIN ANALYZE runs the statement it explains, so it is not allowed in a read-only query")]
    ExplainAnalyze,
    /// A function of the deny-list.
    #[error("function {0}() is not allowed: it has side effects or reaches files, the network or other sessions")]
    Function(String),
    /// Transaction or session control, or file access, in `sql_execute` (`COMMIT`, `SET`,
    /// `COPY`, `ATTACH`…).
    #[error(
        "{0} is not allowed: each call runs in its own transaction, session settings are reset, and statements \
         that reach files or other databases are refused"
    )]
    SessionControl(String),
}

/// The longest statement text analysed, bytes: far above what a person or an agent writes,
/// and what bounds the depth of a parsed tree, hence the stack its analysis needs
/// ([`with_stack`]).
pub(crate) const MAX_STATEMENT_BYTES: usize = 256 * 1024;

/// Checks that `text` is one read-only statement and returns the SQL to run: the statement
/// re-rendered from its tree, with a `LIMIT` of `row_cap` when it is a query without a
/// smaller literal limit.
///
/// # Errors
/// A [`Rejection`] saying what was found.
pub(crate) fn read_only(dialect: Dialect, text: &str, row_cap: u64) -> Result<String, Rejection> {
    with_stack(text, || {
        let mut statement = single(dialect, text)?;
        if let ControlFlow::Break(rejection) = statement.visit(&mut ReadOnlyCheck) {
            return Err(rejection);
        }
        if let Statement::Query(query) = &mut statement {
            cap_rows(query, row_cap);
        }
        Ok(statement.to_string())
    })
}

/// Checks that `text` is one statement that may run in `sql_execute`'s own transaction
/// (no transaction control, no deny-listed function) and returns it re-rendered.
///
/// # Errors
/// A [`Rejection`] saying what was found.
pub(crate) fn writable(dialect: Dialect, text: &str) -> Result<String, Rejection> {
    with_stack(text, || {
        let statement = single(dialect, text)?;
        if is_session_control(&statement) {
            return Err(Rejection::SessionControl(kind(&statement)));
        }
        if let Statement::Call(function) = &statement {
            check_name(&function.name, false)?;
        }
        if let ControlFlow::Break(rejection) = statement.visit(&mut FunctionCheck { read_only: false }) {
            return Err(rejection);
        }
        Ok(statement.to_string())
    })
}

/// Stack per byte of statement text. A chain of operators or set operations (`1+1+…`,
/// `… UNION SELECT …`) parses into a tree one level deeper per link, and rendering,
/// walking and dropping the tree recurse once per level: measured, at most ~50 bytes of
/// stack per byte of text (`+1`: two bytes, ~100 bytes of stack per level, debug build).
const STACK_PER_BYTE: usize = 128;

/// Stack for everything else: the parser's frames (sqlparser grows its own stack when it
/// recurses, and limits nesting to 50) and the checks'.
const STACK_BASE: usize = 256 * 1024;

/// Runs `analyse` (parse, check, render and drop the tree of `text`) with enough stack for
/// the deepest tree `text` can parse into: on the caller's stack when enough of it is left
/// (any ordinary statement on a tokio worker's 2 MiB), else on a fresh stack of that size
/// (`stacker`; at most 32 MiB for the longest text, its pages touched only as used).
/// Without it a 200 KB statement overflowed the stack, which aborts the process.
fn with_stack<T>(text: &str, analyse: impl FnOnce() -> T) -> T {
    if text.len() > MAX_STATEMENT_BYTES {
        return analyse(); // refused before parsing
    }
    let needed = STACK_BASE + text.len() * STACK_PER_BYTE;
    stacker::maybe_grow(needed, needed, analyse)
}

/// Parses `text` into exactly one statement. Escapes stay as written (`unescape = false`) so
/// that re-rendering reproduces MySQL's backslash escapes exactly.
fn single(dialect: Dialect, text: &str) -> Result<Statement, Rejection> {
    if text.len() > MAX_STATEMENT_BYTES {
        return Err(Rejection::TooLong { bytes: text.len(), limit: MAX_STATEMENT_BYTES });
    }
    let options = ParserOptions::new().with_unescape(false);
    let mut statements = Parser::new(dialect.parser())
        .with_options(options)
        .try_with_sql(text)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|error| Rejection::Parse { dialect: dialect.name(), message: parse_message(&error) })?;
    match statements.len() {
        0 => Err(Rejection::Empty),
        1 => Ok(statements.remove(0)),
        count => {
            let kinds = statements.iter().map(kind).collect::<Vec<_>>().join(", ");
            Err(Rejection::Multiple { count, kinds })
        }
    }
}

fn parse_message(error: &sqlparser::parser::ParserError) -> String {
    let message = error.to_string();
    message.strip_prefix("sql parser error: ").unwrap_or(&message).to_owned()
}

/// A statement's kind for messages: its leading keyword, plus the object keyword that
/// follows it (`DROP TABLE`, `INSERT INTO`, `SET TRANSACTION`).
pub(crate) fn kind(statement: &Statement) -> String {
    const OBJECTS: &[&str] = &[
        "TABLE",
        "INTO",
        "FROM",
        "INDEX",
        "VIEW",
        "SCHEMA",
        "DATABASE",
        "TRANSACTION",
        "FUNCTION",
        "PROCEDURE",
        "SEQUENCE",
        "TYPE",
        "ROLE",
        "USER",
        "EXTENSION",
        "TRIGGER",
        "SESSION",
        "LOCAL",
        "OR",
        "TEMPORARY",
        "TEMP",
        "UNIQUE",
        "MATERIALIZED",
        "DATA",
    ];
    let rendered = statement.to_string();
    let mut words = rendered.split_whitespace();
    let first = words.next().unwrap_or("statement").trim_end_matches(';');
    match words.next() {
        Some(second) if OBJECTS.contains(&second) => format!("{first} {second}"),
        _ => first.to_owned(),
    }
}

/// Statements `sql_execute` refuses: transaction and session control (the call owns the
/// transaction; the session is reset), and statements that reach files or other databases.
fn is_session_control(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Set(_)
            | Statement::Pragma { .. }
            | Statement::Use(_)
            | Statement::Declare { .. }
            | Statement::Fetch { .. }
            | Statement::Close { .. }
            | Statement::Prepare { .. }
            | Statement::Execute { .. }
            | Statement::Deallocate { .. }
            | Statement::Discard { .. }
            | Statement::Kill { .. }
            | Statement::LockTables { .. }
            | Statement::UnlockTables
            | Statement::Copy { .. }
            | Statement::CopyIntoSnowflake { .. }
            | Statement::LoadData { .. }
            | Statement::Unload { .. }
            | Statement::AttachDatabase { .. }
            | Statement::AttachDuckDBDatabase { .. }
            | Statement::Install { .. }
            | Statement::Load { .. }
    )
}

/// The statements a read-only call may run (each is also walked for what it contains).
fn is_read_only_kind(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowFunctions { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowProcessList { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowCharset(_)
            | Statement::ShowObjects(_)
            | Statement::ShowTables { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowCollation { .. }
    )
}

/// Walks every node of a read-only candidate.
struct ReadOnlyCheck;

impl Visitor for ReadOnlyCheck {
    type Break = Rejection;

    /// Every statement, top-level or nested (a data-modifying CTE is a nested INSERT,
    /// UPDATE, DELETE or MERGE; EXPLAIN's target is nested too).
    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Rejection> {
        if !is_read_only_kind(statement) {
            return ControlFlow::Break(Rejection::NotReadOnly(kind(statement)));
        }
        if let Statement::Explain { analyze, options, .. } = statement {
            let analyze_option = options
                .iter()
                .flatten()
                .any(|option| option.name.value.eq_ignore_ascii_case("analyze") && !is_false(option.arg.as_ref()));
            if *analyze || analyze_option {
                return ControlFlow::Break(Rejection::ExplainAnalyze);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Rejection> {
        if table_shorthand(&query.body) {
            ControlFlow::Break(Rejection::TableShorthand)
        } else if query.locks.is_empty() {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(Rejection::Clause("FOR UPDATE / FOR SHARE (row locking)"))
        }
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<Rejection> {
        if select.into.is_some() {
            ControlFlow::Break(Rejection::Clause("SELECT … INTO"))
        } else {
            ControlFlow::Continue(())
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Rejection> {
        if let Expr::BinaryOp { op: BinaryOperator::Assignment, .. } = expr {
            return ControlFlow::Break(Rejection::Clause("variable assignment (:=)"));
        }
        check_expr(expr, true)
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Rejection> {
        check_table_factor(factor, true)
    }
}

/// Walks every node of a statement for `sql_execute`: functions only, and only the
/// [`deny::HOST`] list.
struct FunctionCheck {
    read_only: bool,
}

impl Visitor for FunctionCheck {
    type Break = Rejection;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Rejection> {
        if table_shorthand(&query.body) {
            ControlFlow::Break(Rejection::TableShorthand)
        } else {
            ControlFlow::Continue(())
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Rejection> {
        check_expr(expr, self.read_only)
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Rejection> {
        check_table_factor(factor, self.read_only)
    }
}

/// Whether `body` is, or combines, `TABLE name` ([`Rejection::TableShorthand`]); queries
/// nested in it are visited on their own.
fn table_shorthand(body: &SetExpr) -> bool {
    match body {
        SetExpr::Table(_) => true,
        SetExpr::SetOperation { left, right, .. } => table_shorthand(left) || table_shorthand(right),
        _ => false,
    }
}

/// `ANALYZE false` / `ANALYZE off` / `ANALYZE 0` leave EXPLAIN harmless.
fn is_false(arg: Option<&Expr>) -> bool {
    let Some(Expr::Value(value)) = arg else { return false };
    match &value.value {
        Value::Boolean(false) => true,
        Value::Number(number, _) => number == "0",
        Value::SingleQuotedString(text) => text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

fn check_expr(expr: &Expr, read_only: bool) -> ControlFlow<Rejection> {
    match expr {
        Expr::Function(function) => into_flow(check_name(&function.name, read_only)),
        _ => ControlFlow::Continue(()),
    }
}

/// Table functions in FROM: `FROM pg_ls_dir('.')`, `LATERAL pg_read_file(…)`, and
/// SQLite's eponymous virtual tables that reach the filesystem even without arguments.
fn check_table_factor(factor: &TableFactor, read_only: bool) -> ControlFlow<Rejection> {
    match factor {
        TableFactor::Table { name, args: Some(_), .. } | TableFactor::Function { name, .. } => {
            into_flow(check_name(name, read_only))
        }
        TableFactor::Table { name, args: None, .. } => match last_part(name) {
            Some(last) if deny::FILE_TABLES.contains(&last.as_str()) => ControlFlow::Break(Rejection::Function(last)),
            _ => ControlFlow::Continue(()),
        },
        _ => ControlFlow::Continue(()),
    }
}

fn check_name(name: &ObjectName, read_only: bool) -> Result<(), Rejection> {
    match last_part(name) {
        Some(last) if deny::is_denied(&last, read_only) => Err(Rejection::Function(last)),
        _ => Ok(()),
    }
}

fn into_flow(result: Result<(), Rejection>) -> ControlFlow<Rejection> {
    match result {
        Ok(()) => ControlFlow::Continue(()),
        Err(rejection) => ControlFlow::Break(rejection),
    }
}

/// The unqualified, lower-cased name (`PG_CATALOG."PG_READ_FILE"` → `pg_read_file`):
/// schema qualification, quoting and case do not get around the deny-list.
fn last_part(name: &ObjectName) -> Option<String> {
    name.0.last().map(|part| match part {
        ObjectNamePart::Identifier(ident) => ident.value.to_lowercase(),
        ObjectNamePart::Function(function) => function.name.value.to_lowercase(),
    })
}

/// Caps a query's rows at `row_cap` with a `LIMIT`, keeping a smaller literal limit and any
/// OFFSET. A limit that is an expression or a parameter, and `FETCH FIRST`, are left alone
/// (the row cap still applies while streaming).
fn cap_rows(query: &mut Query, row_cap: u64) {
    if query.fetch.is_some() {
        return;
    }
    let cap = Expr::value(Value::Number(row_cap.to_string(), false));
    match &mut query.limit_clause {
        None => {
            query.limit_clause =
                Some(LimitClause::LimitOffset { limit: Some(cap), offset: None, limit_by: Vec::new() });
        }
        Some(LimitClause::LimitOffset { limit: limit @ None, .. }) => *limit = Some(cap),
        Some(LimitClause::LimitOffset { limit: Some(limit), .. } | LimitClause::OffsetCommaLimit { limit, .. }) => {
            if literal(limit).is_some_and(|value| value > row_cap) {
                *limit = cap;
            }
        }
    }
}

fn literal(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Number(number, _) => number.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}
