//! The databases behind the toolbox: one lazily connected pool per configured database,
//! and the two ways a statement runs on it.
//!
//! [`Pool::read`] is the read-only path: a connection from the pool, a READ ONLY
//! transaction with the statement timeout set inside it, the statement sent through the
//! extended (prepared) protocol with bound parameters, rows streamed and converted one by
//! one until the cap plus one, then a rollback. [`Pool::write`] commits, and its connection
//! is closed afterwards instead of returning to the pool, so no session state a write
//! leaves behind reaches a later read. A connection whose call did not finish (timeout,
//! cancellation, error mid-stream) is closed too ([`Checkout`]); one that finished is
//! reset by the pool's `after_release` hook before anyone else gets it.

mod mysql;
mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;

use std::time::Duration;

use futures::{TryStreamExt, stream::BoxStream};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use sqlx::{
    Arguments, Column, Database, Encode, Row, Type, TypeInfo,
    pool::{PoolConnection, PoolOptions},
};

use crate::{analyze::Dialect, config::DatabaseConfig};

/// Connections per database. Small: agents' queries are few and each holds a transaction.
const MAX_CONNECTIONS: u32 = 4;
/// How long a call waits for a connection (also bounds connecting to a down server).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// The most JSON a read returns (cells' text, about); past it the result is truncated like
/// one over the row cap, so that one wide result cannot flood the client.
const MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;
/// How long ending a read may take. Rows a truncated result left unread must be drained
/// before the rollback; past this the connection is closed instead (the server then stops).
const DRAIN_TIMEOUT: Duration = Duration::from_millis(250);

/// The limits of one read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Rows returned at most; one more is fetched to know whether there were more.
    pub(crate) max_rows: usize,
    /// The statement timeout.
    pub(crate) timeout: Duration,
}

/// A result column: name and the database's type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct ColumnInfo {
    /// Column name (or alias).
    pub(crate) name: String,
    /// The database's type name, e.g. `INT4`, `VARCHAR`, `TEXT`.
    #[serde(rename = "type")]
    pub(crate) type_name: String,
}

/// The rows of one read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rows {
    /// The result's columns.
    pub(crate) columns: Vec<ColumnInfo>,
    /// At most `max_rows` rows, each one JSON value per column.
    pub(crate) rows: Vec<Vec<Value>>,
    /// Whether the result had more rows than returned.
    pub(crate) truncated: bool,
}

/// A configured database's connection pool, by engine.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
    /// MySQL or MariaDB.
    MySql(mysql::MySqlDatabase),
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
}

impl Pool {
    /// A pool that connects on first use, so that the server starts while the database is
    /// down.
    ///
    /// # Errors
    /// A message when the URL does not parse (without the URL: it may hold a password).
    pub(crate) fn connect_lazy(config: &DatabaseConfig, password: Option<&str>) -> Result<Self, String> {
        let dialect = config.dialect()?;
        let invalid = |error: sqlx::Error| format!("invalid {} URL: {error}", dialect.name());
        Ok(match dialect {
            Dialect::Postgres => Self::Postgres(postgres::pool(&config.url, password).map_err(invalid)?),
            Dialect::MySql => Self::MySql(mysql::MySqlDatabase::new(&config.url, password).map_err(invalid)?),
            Dialect::Sqlite => Self::Sqlite(sqlite::pool(&config.url, config.writable).map_err(invalid)?),
        })
    }

    /// The SQL dialect for analysis.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Postgres(_) => Dialect::Postgres,
            Self::MySql(_) => Dialect::MySql,
            Self::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Runs `sql` (already checked) read-only with positional `params`.
    ///
    /// # Errors
    /// The database's error: unavailable, timed out, refused.
    pub(crate) async fn read(&self, sql: &str, params: &[Value], limits: Limits) -> Result<Rows, sqlx::Error> {
        match self {
            Self::Postgres(pool) => postgres::read(pool, sql, params, limits).await,
            Self::MySql(database) => database.read(sql, params, limits).await,
            Self::Sqlite(pool) => sqlite::read(pool, sql, params, limits).await,
        }
    }

    /// Runs `sql` (already checked) in its own committed transaction; returns the number of
    /// rows affected.
    ///
    /// # Errors
    /// The database's error.
    pub(crate) async fn write(&self, sql: &str, params: &[Value], timeout: Duration) -> Result<u64, sqlx::Error> {
        match self {
            Self::Postgres(pool) => postgres::write(pool, sql, params, timeout).await,
            Self::MySql(database) => database.write(sql, params, timeout).await,
            Self::Sqlite(pool) => sqlite::write(pool, sql, params, timeout).await,
        }
    }

    /// Opens (or reuses) a connection and pings it.
    ///
    /// # Errors
    /// Why the database does not answer.
    pub(crate) async fn ping(&self) -> Result<(), sqlx::Error> {
        use sqlx::Connection;
        match self {
            Self::Postgres(pool) => pool.acquire().await?.ping().await,
            Self::MySql(database) => database.pool().acquire().await?.ping().await,
            Self::Sqlite(pool) => pool.acquire().await?.ping().await,
        }
    }
}

/// Pool options shared by the engines; each adds its `after_release` reset.
fn pool_options<DB: Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(IDLE_TIMEOUT)
}

/// A connection taken from the pool that is closed, not returned, unless the call marks
/// it [`finished`](Checkout::finish): a call cut short by a timeout, a cancellation or an
/// error may have left the session mid-statement or mid-transaction.
pub(crate) struct Checkout<DB: Database> {
    connection: PoolConnection<DB>,
    finished: bool,
}

impl<DB: Database> Checkout<DB> {
    async fn acquire(pool: &sqlx::Pool<DB>) -> Result<Self, sqlx::Error> {
        Ok(Self { connection: pool.acquire().await?, finished: false })
    }

    /// The connection.
    fn connection(&mut self) -> &mut DB::Connection {
        &mut self.connection
    }

    /// The call completed cleanly: return the connection to the pool (which resets it).
    fn finish(mut self) {
        self.finished = true;
    }
}

impl<DB: Database> Drop for Checkout<DB> {
    fn drop(&mut self) {
        if !self.finished {
            self.connection.close_on_drop();
        }
    }
}

/// Ends a read by rolling back within [`DRAIN_TIMEOUT`]; `true` when the connection is
/// clean enough to go back to the pool. The rows are already read, so a rollback that fails
/// or takes too long (the rest of a huge result still arriving) costs the connection, not
/// the result: the transaction was read-only.
async fn end_read<DB: Database>(transaction: sqlx::Transaction<'_, DB>) -> bool {
    matches!(tokio::time::timeout(DRAIN_TIMEOUT, transaction.rollback()).await, Ok(Ok(())))
}

/// Binds JSON parameters positionally: null, booleans, integers (i64, or f64 beyond),
/// floats and strings as themselves; arrays and objects as their JSON text.
fn arguments<DB>(params: &[Value]) -> Result<DB::Arguments, sqlx::Error>
where
    DB: Database,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let mut arguments = DB::Arguments::default();
    for param in params {
        let added = match param {
            Value::Null => arguments.add(None::<String>),
            Value::Bool(value) => arguments.add(*value),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => arguments.add(integer),
                None => arguments.add(number.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(text) => arguments.add(text.clone()),
            Value::Array(_) | Value::Object(_) => arguments.add(param.to_string()),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(arguments)
}

/// What [`collect`] read.
struct Collected {
    columns: Option<Vec<ColumnInfo>>,
    rows: Vec<Vec<Value>>,
    truncated: bool,
}

/// Reads rows from `stream` one at a time, converting each with `value`, and stops after
/// `max_rows` (reading one more only to learn that there were more) or
/// [`MAX_RESULT_BYTES`]: memory stays bounded by the cap, whatever the result's size.
async fn collect<R: Row>(
    mut stream: BoxStream<'_, Result<R, sqlx::Error>>,
    max_rows: usize,
    value: fn(&R, usize) -> Value,
) -> Result<Collected, sqlx::Error> {
    let mut collected = Collected { columns: None, rows: Vec::new(), truncated: false };
    let mut bytes = 0;
    while let Some(row) = stream.try_next().await? {
        if collected.columns.is_none() {
            collected.columns = Some(column_infos(row.columns()));
        }
        if collected.rows.len() >= max_rows {
            collected.truncated = true;
            break;
        }
        let converted: Vec<Value> = (0..row.len()).map(|index| value(&row, index)).collect();
        bytes += converted.iter().map(json_size).sum::<usize>();
        if bytes > MAX_RESULT_BYTES {
            collected.truncated = true;
            break;
        }
        collected.rows.push(converted);
    }
    Ok(collected)
}

/// About the size of `value` as JSON, without serialising it.
fn json_size(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len() + 2,
        Value::Array(items) => items.iter().map(json_size).sum::<usize>() + items.len() + 2,
        Value::Object(map) => map.iter().map(|(key, item)| key.len() + 3 + json_size(item)).sum::<usize>() + 2,
        _ => 8,
    }
}

fn column_infos<C: Column>(columns: &[C]) -> Vec<ColumnInfo> {
    columns
        .iter()
        .map(|column| ColumnInfo { name: column.name().to_owned(), type_name: column.type_info().name().to_owned() })
        .collect()
}

/// A value no typed decoder took: its text when the bytes are printable UTF-8 (enums,
/// domains over text, MySQL DECIMAL and ENUM), else `\x` and hex.
fn raw_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) => {
            Value::String(text.to_owned())
        }
        _ => Value::String(hex(bytes)),
    }
}

/// `\x` followed by lower-case hex, PostgreSQL's bytea output.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(2 + bytes.len() * 2);
    text.push_str("\\x");
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// A float as JSON; NaN and infinities, which JSON lacks, as strings.
fn float(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or_else(|| Value::String(value.to_string()), Value::Number)
}
