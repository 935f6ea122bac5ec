//! MySQL and MariaDB: the session's statement timeout (`max_statement_time` on MariaDB,
//! `max_execution_time` on MySQL), `START TRANSACTION READ ONLY`, the statement as a
//! prepared statement (COM_STMT_PREPARE takes exactly one statement), rollback; on
//! release, the timeout back to its default and any named locks released.

use std::{
    str::FromStr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use serde_json::Value;
use sqlx::{
    AssertSqlSafe, Connection, Executor, MySql, MySqlConnection, Row, SqlSafeStr, Statement, TypeInfo, ValueRef,
    mysql::{MySqlConnectOptions, MySqlPool, MySqlRow, types::MySqlTime},
    types::{
        JsonValue,
        chrono::{DateTime, NaiveDate, NaiveDateTime, Utc},
    },
};

use super::{
    Checkout, Collected, Limits, Rows, arguments, collect, column_infos, end_read, float, pool_options, raw_value,
};

/// Which server answers: the timeout variable differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    MariaDb,
    MySql,
}

impl Flavor {
    fn set_timeout(self, timeout: Duration) -> String {
        match self {
            Self::MariaDb => format!("SET SESSION max_statement_time = {:.3}", timeout.as_secs_f64()),
            Self::MySql => format!("SET SESSION max_execution_time = {}", timeout.as_millis()),
        }
    }

    fn reset_timeout(self) -> &'static str {
        match self {
            Self::MariaDb => "SET SESSION max_statement_time = DEFAULT",
            Self::MySql => "SET SESSION max_execution_time = DEFAULT",
        }
    }
}

/// A MySQL/MariaDB pool and the server's flavor, learnt on first use.
#[derive(Debug, Clone)]
pub(crate) struct MySqlDatabase {
    pool: MySqlPool,
    flavor: Arc<OnceLock<Flavor>>,
}

impl MySqlDatabase {
    pub(super) fn new(url: &str, password: Option<&str>) -> Result<Self, sqlx::Error> {
        let mut options = MySqlConnectOptions::from_str(url)?;
        if let Some(password) = password {
            options = options.password(password);
        }
        let flavor: Arc<OnceLock<Flavor>> = Arc::new(OnceLock::new());
        let known = Arc::clone(&flavor);
        let pool = pool_options::<MySql>()
            .after_release(move |connection, _| {
                let flavor = known.get().copied();
                Box::pin(async move {
                    connection.execute(sqlx::raw_sql("ROLLBACK")).await?;
                    connection.execute(sqlx::raw_sql("DO RELEASE_ALL_LOCKS()")).await?;
                    if let Some(flavor) = flavor {
                        connection.execute(sqlx::raw_sql(flavor.reset_timeout())).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        Ok(Self { pool, flavor })
    }

    pub(super) fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    pub(super) async fn read(&self, sql: &str, params: &[Value], limits: Limits) -> Result<Rows, sqlx::Error> {
        let mut checkout = Checkout::acquire(&self.pool).await?;
        self.set_timeout(checkout.connection(), limits.timeout).await?;
        let mut transaction = checkout.connection().begin_with("START TRANSACTION READ ONLY").await?;
        let query = sqlx::query_with(AssertSqlSafe(sql.to_owned()), arguments::<MySql>(params)?).persistent(false);
        let Collected { columns, rows, truncated } =
            collect(query.fetch(&mut *transaction), limits.max_rows, value).await?;
        let columns = match columns {
            Some(columns) => columns,
            None => column_infos(transaction.prepare(AssertSqlSafe(sql.to_owned()).into_sql_str()).await?.columns()),
        };
        if end_read(transaction).await {
            checkout.finish();
        }
        Ok(Rows { columns, rows, truncated })
    }

    pub(super) async fn write(&self, sql: &str, params: &[Value], timeout: Duration) -> Result<u64, sqlx::Error> {
        let mut checkout = Checkout::acquire(&self.pool).await?;
        self.set_timeout(checkout.connection(), timeout).await?;
        let mut transaction = checkout.connection().begin_with("START TRANSACTION READ WRITE").await?;
        let query = sqlx::query_with(AssertSqlSafe(sql.to_owned()), arguments::<MySql>(params)?).persistent(false);
        let affected = query.execute(&mut *transaction).await?.rows_affected();
        transaction.commit().await?;
        Ok(affected)
    }

    async fn set_timeout(&self, connection: &mut MySqlConnection, timeout: Duration) -> Result<(), sqlx::Error> {
        let flavor = match self.flavor.get() {
            Some(flavor) => *flavor,
            None => {
                let version: String = sqlx::query_scalar("SELECT VERSION()").fetch_one(&mut *connection).await?;
                let flavor = if version.contains("MariaDB") { Flavor::MariaDb } else { Flavor::MySql };
                *self.flavor.get_or_init(|| flavor)
            }
        };
        connection.execute(sqlx::raw_sql(AssertSqlSafe(flavor.set_timeout(timeout)))).await.map(drop)
    }
}

/// Converts one cell to JSON by its type; DECIMAL stays exact as a string; types without
/// a decoder here come out as text when printable, else as hex.
fn value(row: &MySqlRow, index: usize) -> Value {
    let Ok(raw) = row.try_get_raw(index) else { return Value::Null };
    if raw.is_null() {
        return Value::Null;
    }
    let type_name = raw.type_info().name().to_owned();
    let typed = |value: Option<Value>| value.unwrap_or(Value::Null);
    match type_name.as_str() {
        "BOOLEAN" => typed(row.try_get::<bool, _>(index).ok().map(Value::Bool)),
        "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" => {
            typed(row.try_get::<i64, _>(index).ok().map(Value::from))
        }
        name if name.ends_with(" UNSIGNED") => typed(row.try_get::<u64, _>(index).ok().map(Value::from)),
        "FLOAT" => typed(row.try_get::<f32, _>(index).ok().map(|v| float(f64::from(v)))),
        "DOUBLE" => typed(row.try_get::<f64, _>(index).ok().map(float)),
        "DATE" => typed(row.try_get::<NaiveDate, _>(index).ok().map(|v| Value::String(v.to_string()))),
        "DATETIME" => typed(row.try_get::<NaiveDateTime, _>(index).ok().map(|v| Value::String(v.to_string()))),
        "TIMESTAMP" => typed(row.try_get::<DateTime<Utc>, _>(index).ok().map(|v| Value::String(v.to_rfc3339()))),
        "TIME" => typed(row.try_get::<MySqlTime, _>(index).ok().map(|v| Value::String(v.to_string()))),
        "YEAR" => typed(row.try_get_unchecked::<u16, _>(index).ok().map(Value::from)),
        "BIT" => typed(row.try_get::<u64, _>(index).ok().map(Value::from)),
        "JSON" => typed(row.try_get::<JsonValue, _>(index).ok()),
        _ => row.try_get_unchecked::<&[u8], _>(index).map_or(Value::Null, raw_value),
    }
}
