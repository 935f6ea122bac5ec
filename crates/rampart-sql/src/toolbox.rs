//! [`SqlToolbox`]: the tools, their arguments and results, the policy checks, and the one
//! place where database errors become tool errors.

use std::{collections::BTreeMap, future::Future, time::Duration};

use async_trait::async_trait;
use rampart_core::{
    Access, CallContext, NoArguments, Request, Routes, ServiceStatus, Structured, TaskSupport, ToolAnnotations,
    ToolError, ToolOutput, ToolRouter, ToolSpec, Toolbox,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::{
    analyze,
    config::{DatabaseConfig, SqlConfig, SqlConfigError},
    engine::{ColumnInfo, Limits, Pool},
    metadata, render,
};

/// Time allowed past the statement timeout before the client side gives up (the server's
/// own timeout should fire first; this covers a server that does not answer at all).
const CLIENT_GRACE: Duration = Duration::from_secs(2);
/// How long `/readyz` waits for each database.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// The `sql` toolbox.
pub struct SqlToolbox {
    databases: BTreeMap<String, Database>,
    tools: ToolRouter<Self>,
}

/// Names and engines only: the pools' connection options hold credentials.
impl std::fmt::Debug for SqlToolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let databases = self.databases.iter().map(|(name, database)| (name, database.pool.dialect().name()));
        f.debug_struct("SqlToolbox").field("databases", &databases.collect::<BTreeMap<_, _>>()).finish()
    }
}

struct Database {
    config: DatabaseConfig,
    pool: Pool,
}

impl Database {
    fn limits(&self, max_rows: Option<u64>) -> Limits {
        let cap = max_rows.map_or(self.config.max_rows, |asked| asked.min(self.config.max_rows));
        Limits {
            max_rows: usize::try_from(cap).unwrap_or(usize::MAX),
            timeout: Duration::from_millis(self.config.statement_timeout_ms),
        }
    }
}

impl SqlToolbox {
    /// The toolbox for the `[sql]` table of `rampart.toml` (as JSON). Pools connect lazily:
    /// nothing is opened until a tool or `/readyz` needs it. Must run inside a Tokio
    /// runtime (the pools' maintenance tasks are spawned on it).
    ///
    /// # Errors
    /// [`SqlConfigError`] naming the offending key: an unknown key, an unsupported URL, a
    /// `password_env` variable that is not set.
    pub fn from_config(value: Value) -> Result<Self, SqlConfigError> {
        Self::new(SqlConfig::from_value(value)?)
    }

    /// The toolbox for an already parsed [`SqlConfig`].
    ///
    /// # Errors
    /// As [`SqlToolbox::from_config`].
    pub fn new(config: SqlConfig) -> Result<Self, SqlConfigError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SqlConfigError::Value {
                key: "sql".into(),
                message: "the sql toolbox must be created inside a Tokio runtime".into(),
            });
        }
        let mut databases = BTreeMap::new();
        for (name, config) in config.databases {
            let password = config.password(&name)?;
            let pool = Pool::connect_lazy(&config, password.as_deref())
                .map_err(|message| SqlConfigError::Value { key: format!("sql.databases.{name}.url"), message })?;
            databases.insert(name, Database { config, pool });
        }
        Ok(Self { databases, tools: Self::tools() })
    }

    /// The tools, each a method below (`tools` lists `sql_execute` only when a database is
    /// configured writable).
    fn tools() -> ToolRouter<Self> {
        ToolRouter::new()
            .tool(
                ToolSpec::named(
                    "sql_list_databases",
                    "List the configured SQL databases you may read: name, engine, whether writable, row cap and \
                     timeout.",
                )
                .title("List databases")
                .read_only(),
                Self::list_databases,
            )
            .tool(
                ToolSpec::named("sql_list_tables", "List the tables and views of a database.")
                    .title("List tables")
                    .read_only(),
                Self::list_tables,
            )
            .tool(
                ToolSpec::named(
                    "sql_describe_table",
                    "Describe a table: columns with types, nullability and defaults, primary key, indexes, foreign \
                     keys.",
                )
                .title("Describe a table")
                .read_only(),
                Self::describe_table,
            )
            .tool(
                ToolSpec::named(
                    "sql_query",
                    "Run one read-only SQL query (SELECT, WITH, VALUES, EXPLAIN, SHOW) with bound parameters. Returns \
                     columns with types and rows, capped at the database's row cap (truncated says whether more \
                     existed). Writes, locking clauses and side-effecting functions are refused.",
                )
                .title("Query a database")
                .output::<QueryResult>()
                .read_only()
                .task_support(TaskSupport::Optional),
                Self::query,
            )
            .tool(
                ToolSpec::named(
                    "sql_execute",
                    "Run one writing SQL statement (INSERT, UPDATE, DELETE, DDL) on a database configured writable, \
                     in its own transaction, committed on success. Returns the number of rows affected.",
                )
                .title("Write to a database")
                .output::<ExecuteResult>()
                .annotations(ToolAnnotations::write().destructive(true))
                .task_support(TaskSupport::Optional),
                Self::execute,
            )
    }

    /// Asks the policy, then finds the database: an unknown name and a forbidden one are
    /// both refused by the policy unless a scope matches the name.
    fn database(&self, context: &CallContext, name: &str, access: Access) -> Result<&Database, ToolError> {
        context.authorize(&Request::database(name, access))?;
        self.databases.get(name).ok_or_else(|| {
            ToolError::Failed(format!("unknown database '{name}': sql_list_databases lists the ones you may use"))
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListTablesArguments {
    /// Configured database name (see sql_list_databases).
    database: String,
    /// Only this schema (PostgreSQL schema, MySQL database, SQLite attached database).
    /// Default: every user schema (PostgreSQL), the connection's database (MySQL), all (SQLite).
    schema: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DescribeTableArguments {
    /// Configured database name.
    database: String,
    /// Table or view name, optionally qualified: 'orders' or 'sales.orders'.
    table: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct QueryArguments {
    /// Configured database name.
    database: String,
    /// One read-only statement: SELECT, WITH, VALUES, EXPLAIN (without ANALYZE), SHOW.
    /// Use placeholders for values: $1, $2 on PostgreSQL; ? on MySQL and SQLite.
    query: String,
    /// Values for the placeholders, in order. Strings bind as text, so on PostgreSQL cast
    /// where a column is not text: `WHERE created > $1::date`.
    #[serde(default)]
    params: Option<Vec<Value>>,
    /// Return at most this many rows (never more than the database's configured cap).
    max_rows: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExecuteArguments {
    /// Configured database name; it must be configured writable.
    database: String,
    /// One statement (INSERT, UPDATE, DELETE, DDL…), committed on success. No transaction
    /// control, session settings or file access.
    statement: String,
    /// Values for the placeholders, in order.
    #[serde(default)]
    params: Option<Vec<Value>>,
}

/// `sql_list_databases` result.
#[derive(Serialize, JsonSchema)]
struct DatabaseList {
    /// Databases the caller may read.
    databases: Vec<DatabaseEntry>,
}

/// One configured database.
#[derive(Serialize, JsonSchema)]
struct DatabaseEntry {
    /// Name to pass as `database`.
    name: String,
    /// `postgres`, `mysql` or `sqlite`.
    engine: String,
    /// Whether sql_execute may write to it (for callers with its read-write scope).
    writable: bool,
    /// The row cap of sql_query.
    max_rows: u64,
    /// The statement timeout, ms.
    statement_timeout_ms: u64,
}

/// `sql_query` result.
#[derive(Serialize, JsonSchema)]
struct QueryResult {
    /// Result columns with the database's type names.
    columns: Vec<ColumnInfo>,
    /// Rows, one value per column.
    rows: Vec<Vec<Value>>,
    /// Number of rows returned.
    row_count: usize,
    /// Whether the query had more rows than returned (the row cap, or 8 MiB of result).
    truncated: bool,
}

/// `sql_execute` result.
#[derive(Serialize, JsonSchema)]
struct ExecuteResult {
    /// The database written.
    database: String,
    /// Rows inserted, updated or deleted.
    rows_affected: u64,
}

#[async_trait]
impl Toolbox for SqlToolbox {
    fn name(&self) -> &str {
        "sql"
    }

    async fn tools(&self) -> Vec<ToolSpec> {
        let mut tools = self.tools.specs();
        // Routed whatever the configuration (it refuses a read-only database), listed only
        // when there is a writable one.
        if !self.databases.values().any(|database| database.config.writable) {
            tools.retain(|tool| tool.name != "sql_execute");
        }
        tools
    }

    fn routes(&self) -> Option<Routes<'_>> {
        Some(self.tools.bind(self))
    }

    async fn readiness(&self) -> Vec<ServiceStatus> {
        let checks = self.databases.iter().map(|(name, database)| async move {
            let engine = database.pool.dialect().name();
            let (ok, detail) = match tokio::time::timeout(READINESS_TIMEOUT, database.pool.ping()).await {
                Ok(Ok(())) => (true, engine.to_owned()),
                Ok(Err(error)) => (false, format!("{engine}: {}", unavailable_reason(&error))),
                Err(_) => (false, format!("{engine}: no answer within {} s", READINESS_TIMEOUT.as_secs())),
            };
            ServiceStatus { name: format!("sql:{name}"), ok, detail: Some(detail) }
        });
        futures::future::join_all(checks).await
    }
}

impl SqlToolbox {
    async fn list_databases(
        &self,
        _: NoArguments,
        context: &CallContext,
    ) -> Result<Structured<DatabaseList>, ToolError> {
        let databases: Vec<DatabaseEntry> = self
            .databases
            .iter()
            .filter(|(name, _)| context.authorize(&Request::database(name.as_str(), Access::Read)).is_ok())
            .map(|(name, database)| DatabaseEntry {
                name: name.clone(),
                engine: database.pool.dialect().name().into(),
                writable: database.config.writable,
                max_rows: database.config.max_rows,
                statement_timeout_ms: database.config.statement_timeout_ms,
            })
            .collect();
        Ok(Structured(DatabaseList { databases }))
    }

    async fn list_tables(
        &self,
        arguments: ListTablesArguments,
        context: &CallContext,
    ) -> Result<Structured<metadata::TableList>, ToolError> {
        let database = self.database(context, &arguments.database, Access::Read)?;
        let limits = database.limits(None);
        let run = metadata::list_tables(&database.pool, &arguments.database, arguments.schema.as_deref(), limits);
        Ok(Structured(bounded(&arguments.database, limits.timeout, run).await?))
    }

    async fn describe_table(
        &self,
        arguments: DescribeTableArguments,
        context: &CallContext,
    ) -> Result<Structured<metadata::TableDescription>, ToolError> {
        let database = self.database(context, &arguments.database, Access::Read)?;
        let limits = database.limits(None);
        let run = metadata::describe_table(&database.pool, &arguments.database, &arguments.table, limits);
        // Four catalog queries, each with the statement timeout.
        let result = bounded(&arguments.database, limits.timeout * 4, run).await?.ok_or_else(|| {
            ToolError::Failed(format!("no table or view '{}' in database '{}'", arguments.table, arguments.database))
        })?;
        Ok(Structured(result))
    }

    /// The rows rendered as a table for the text; `QueryResult`'s schema is set on the spec.
    async fn query(&self, arguments: QueryArguments, context: &CallContext) -> Result<ToolOutput, ToolError> {
        let database = self.database(context, &arguments.database, Access::Read)?;
        let limits = database.limits(arguments.max_rows);
        let row_cap = u64::try_from(limits.max_rows).unwrap_or(u64::MAX).saturating_add(1);
        let sql = analyze::read_only(database.pool.dialect(), &arguments.query, row_cap)
            .map_err(|rejection| ToolError::Failed(rejection.to_string()))?;
        let params = arguments.params.unwrap_or_default();
        let run = database.pool.read(&sql, &params, limits);
        let span = statement_span("sql_query", &arguments.database, database.pool.dialect());
        let rows = bounded(&arguments.database, limits.timeout, run).instrument(span).await?;
        let text = render::table(&rows.columns, &rows.rows, rows.truncated);
        let result = QueryResult {
            row_count: rows.rows.len(),
            columns: rows.columns,
            rows: rows.rows,
            truncated: rows.truncated,
        };
        ToolOutput::structured(&result, text)
    }

    /// A sentence for the text; `ExecuteResult`'s schema is set on the spec.
    async fn execute(&self, arguments: ExecuteArguments, context: &CallContext) -> Result<ToolOutput, ToolError> {
        let database = self.database(context, &arguments.database, Access::ReadWrite)?;
        if !database.config.writable {
            return Err(ToolError::Failed(format!(
                "database '{}' is read-only: sql_execute needs `writable = true` in its configuration",
                arguments.database
            )));
        }
        let sql = analyze::writable(database.pool.dialect(), &arguments.statement)
            .map_err(|rejection| ToolError::Failed(rejection.to_string()))?;
        let timeout = database.limits(None).timeout;
        let params = arguments.params.unwrap_or_default();
        let run = database.pool.write(&sql, &params, timeout);
        let span = statement_span("sql_execute", &arguments.database, database.pool.dialect());
        let rows_affected = bounded(&arguments.database, timeout, run).instrument(span).await?;
        let result = ExecuteResult { database: arguments.database, rows_affected };
        let text = format!("{rows_affected} row(s) affected in database '{}'", result.database);
        ToolOutput::structured(&result, text)
    }
}

/// The span of one statement on `database` (a client span; disabled unless spans are
/// exported): the tool, the database and its engine, never the statement or its
/// parameters (the audit record has the arguments, redacted).
fn statement_span(tool: &'static str, database: &str, dialect: analyze::Dialect) -> tracing::Span {
    let system = match dialect {
        analyze::Dialect::Postgres => "postgresql",
        analyze::Dialect::MySql => "mysql",
        analyze::Dialect::Sqlite => "sqlite",
    };
    tracing::info_span!(
        target: rampart_core::TRACE_TARGET,
        "sql",
        otel.name = %format_args!("{tool} {database}"),
        otel.kind = "client",
        db.system.name = system,
        db.namespace = database,
    )
}

/// Runs `work` under a client-side deadline of `timeout` plus a grace period, and turns
/// its database error into a tool error. A call cut off here closes its connection.
async fn bounded<T>(
    database: &str,
    timeout: Duration,
    work: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, ToolError> {
    match tokio::time::timeout(timeout + CLIENT_GRACE, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(database_error(database, timeout, &error)),
        Err(_) => Err(timed_out(database, timeout)),
    }
}

fn timed_out(database: &str, timeout: Duration) -> ToolError {
    ToolError::Failed(format!(
        "the statement on database '{database}' exceeded its time limit of {} ms and was cancelled",
        timeout.as_millis()
    ))
}

/// The one mapping from sqlx errors to tool errors: timeouts, unavailable databases, bad
/// parameters, and the database's own refusal with its SQLSTATE.
fn database_error(database: &str, timeout: Duration, error: &sqlx::Error) -> ToolError {
    match error {
        sqlx::Error::Database(refusal) if is_timeout(refusal.as_ref()) => timed_out(database, timeout),
        sqlx::Error::Database(refusal) => {
            let code = refusal.code().map(|code| format!(" (SQLSTATE {code})")).unwrap_or_default();
            ToolError::Failed(format!("database '{database}' refused the statement: {}{code}", refusal.message()))
        }
        sqlx::Error::Encode(source) => ToolError::InvalidArguments(format!("params: {source}")),
        sqlx::Error::Configuration(_)
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => {
            ToolError::Failed(format!("database '{database}' is unavailable: {}", unavailable_reason(error)))
        }
        other => ToolError::Failed(format!("database '{database}': {other}")),
    }
}

/// PostgreSQL `query_canceled` (57014), MariaDB `max_statement_time` (1969), MySQL
/// `max_execution_time` (3024), SQLite `SQLITE_INTERRUPT` (9, the progress handler).
fn is_timeout(error: &dyn sqlx::error::DatabaseError) -> bool {
    let code = error.code();
    let message = error.message();
    matches!(code.as_deref(), Some("57014" | "70100" | "9"))
        || message.contains("max_statement_time")
        || message.contains("maximum statement execution time")
        || message == "interrupted"
}

fn unavailable_reason(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::PoolTimedOut => "no connection could be opened in time (is the server up?)".into(),
        other => other.to_string(),
    }
}
