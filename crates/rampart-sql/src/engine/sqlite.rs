//! SQLite: a database not configured `writable` is opened read-only (`mode=ro`); every
//! pooled connection has `PRAGMA query_only = ON`; a read runs in a transaction that is
//! rolled back, under a commit hook that turns any commit into a rollback and a progress
//! handler that interrupts it at the deadline (SQLite has no statement timeout).
//!
//! SQLite has no prepared-statement protocol: sqlx's driver runs every statement of a
//! `;`-separated text. The single statement re-rendered by the analyser is the first guard
//! against stacking; the read-only file, `query_only` and the commit hook are the layers
//! behind it.

use std::{
    str::FromStr,
    time::{Duration, Instant},
};

use serde_json::Value;
use sqlx::{
    AssertSqlSafe, Connection, Executor, Row, SqlSafeStr, Sqlite, Statement, TypeInfo, ValueRef,
    sqlite::{LockedSqliteHandle, SqliteConnectOptions, SqlitePool, SqliteRow},
};

use super::{
    Checkout, Collected, ColumnInfo, Limits, Rows, arguments, collect, column_infos, end_read, float, hex, pool_options,
};

/// Virtual-machine instructions between two deadline checks.
const PROGRESS_INSTRUCTIONS: i32 = 1000;

pub(super) fn pool(url: &str, writable: bool) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?.read_only(!writable).pragma("query_only", "ON");
    Ok(pool_options::<Sqlite>()
        .after_release(|connection, _| {
            Box::pin(async move {
                let mut handle = connection.lock_handle().await?;
                handle.remove_progress_handler();
                handle.remove_commit_hook();
                drop(handle);
                connection.execute(sqlx::raw_sql("PRAGMA query_only = ON")).await?;
                Ok(!connection.is_in_transaction())
            })
        })
        .connect_lazy_with(options))
}

pub(super) async fn read(pool: &SqlitePool, sql: &str, params: &[Value], limits: Limits) -> Result<Rows, sqlx::Error> {
    let mut checkout = Checkout::acquire(pool).await?;
    let mut handle = checkout.connection().lock_handle().await?;
    set_deadline(&mut handle, limits.timeout);
    handle.set_commit_hook(|| false);
    drop(handle);
    checkout.connection().execute(sqlx::raw_sql("PRAGMA query_only = ON")).await?;
    let mut transaction = checkout.connection().begin().await?;
    let query = sqlx::query_with(AssertSqlSafe(sql.to_owned()), arguments::<Sqlite>(params)?).persistent(false);
    let Collected { columns, rows, truncated } =
        collect(query.fetch(&mut *transaction), limits.max_rows, value).await?;
    let columns = match columns {
        Some(columns) => with_value_types(columns, rows.first()),
        None => column_infos(transaction.prepare(AssertSqlSafe(sql.to_owned()).into_sql_str()).await?.columns()),
    };
    if end_read(transaction).await {
        let mut handle = checkout.connection().lock_handle().await?;
        handle.remove_commit_hook();
        handle.remove_progress_handler();
        drop(handle);
        checkout.finish();
    }
    Ok(Rows { columns, rows, truncated })
}

pub(super) async fn write(
    pool: &SqlitePool,
    sql: &str,
    params: &[Value],
    timeout: Duration,
) -> Result<u64, sqlx::Error> {
    let mut checkout = Checkout::acquire(pool).await?;
    set_deadline(&mut checkout.connection().lock_handle().await?, timeout);
    checkout.connection().execute(sqlx::raw_sql("PRAGMA query_only = OFF")).await?;
    let mut transaction = checkout.connection().begin().await?;
    let query = sqlx::query_with(AssertSqlSafe(sql.to_owned()), arguments::<Sqlite>(params)?).persistent(false);
    let affected = query.execute(&mut *transaction).await?.rows_affected();
    transaction.commit().await?;
    Ok(affected)
}

/// Interrupts whatever runs on the connection after `timeout` (`sqlite3_progress_handler`;
/// the statement fails with SQLITE_INTERRUPT).
fn set_deadline(handle: &mut LockedSqliteHandle<'_>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    handle.set_progress_handler(PROGRESS_INSTRUCTIONS, move || Instant::now() < deadline);
}

/// SQLite reports no type for an expression column (`NULL`); use the first row's value's.
fn with_value_types(columns: Vec<ColumnInfo>, first: Option<&Vec<Value>>) -> Vec<ColumnInfo> {
    columns
        .into_iter()
        .enumerate()
        .map(|(index, mut column)| {
            if column.type_name == "NULL" {
                let inferred = match first.and_then(|row| row.get(index)) {
                    Some(Value::Number(number)) if number.is_i64() => "INTEGER",
                    Some(Value::Number(_)) => "REAL",
                    Some(Value::String(_)) => "TEXT",
                    _ => "NULL",
                };
                column.type_name = inferred.to_owned();
            }
            column
        })
        .collect()
}

/// Converts one cell by its storage class (SQLite types values, not columns).
fn value(row: &SqliteRow, index: usize) -> Value {
    let Ok(raw) = row.try_get_raw(index) else { return Value::Null };
    if raw.is_null() {
        return Value::Null;
    }
    let storage = raw.type_info().name().to_owned();
    let converted = match storage.as_str() {
        "INTEGER" => row.try_get_unchecked::<i64, _>(index).map(Value::from),
        "REAL" => row.try_get_unchecked::<f64, _>(index).map(float),
        "BLOB" => row.try_get_unchecked::<Vec<u8>, _>(index).map(|bytes| Value::String(hex(&bytes))),
        _ => row.try_get_unchecked::<String, _>(index).map(Value::String),
    };
    converted.unwrap_or(Value::Null)
}
