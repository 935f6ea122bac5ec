//! PostgreSQL: `BEGIN TRANSACTION READ ONLY` + `SET LOCAL statement_timeout`, the
//! statement through the extended protocol (Parse/Bind/Execute: one statement, never the
//! simple protocol's `;`-separated list), rollback; and the session reset that
//! `DISCARD ALL` would do, minus deallocating sqlx's cached statements.

use std::{str::FromStr, time::Duration};

use serde_json::Value;
use sqlx::{
    AssertSqlSafe, Connection, Executor, Postgres, Row, SqlSafeStr, Statement, TypeInfo, ValueRef,
    postgres::{PgConnectOptions, PgPool, PgRow, types::PgInterval},
    types::{
        JsonValue, Uuid,
        chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc},
    },
};

use super::{
    Checkout, Collected, Limits, Rows, arguments, collect, column_infos, end_read, float, hex, pool_options, raw_value,
};

/// Everything `DISCARD ALL` resets except prepared statements (sqlx caches its own):
/// an open transaction, cursors, settings, role, listeners, advisory locks, temporary
/// tables, sequence state.
const RESET: &str = "ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
                     SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; DISCARD PLANS";

pub(super) fn pool(url: &str, password: Option<&str>) -> Result<PgPool, sqlx::Error> {
    let mut options = PgConnectOptions::from_str(url)?;
    if options.get_application_name().is_none() {
        options = options.application_name("rampart");
    }
    if let Some(password) = password {
        options = options.password(password);
    }
    Ok(pool_options::<Postgres>()
        .after_release(|connection, _| {
            Box::pin(async move {
                connection.execute(sqlx::raw_sql(RESET)).await?;
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

pub(super) async fn read(pool: &PgPool, sql: &str, params: &[Value], limits: Limits) -> Result<Rows, sqlx::Error> {
    let mut checkout = Checkout::acquire(pool).await?;
    let mut transaction = checkout.connection().begin_with("BEGIN TRANSACTION READ ONLY").await?;
    set_timeout(&mut transaction, limits.timeout).await?;
    let query = sqlx::query_with(AssertSqlSafe(sql.to_owned()), arguments::<Postgres>(params)?).persistent(false);
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

pub(super) async fn write(pool: &PgPool, sql: &str, params: &[Value], timeout: Duration) -> Result<u64, sqlx::Error> {
    let mut checkout = Checkout::acquire(pool).await?;
    let mut transaction = checkout.connection().begin_with("BEGIN TRANSACTION READ WRITE").await?;
    set_timeout(&mut transaction, timeout).await?;
    let query = sqlx::query_with(AssertSqlSafe(sql.to_owned()), arguments::<Postgres>(params)?).persistent(false);
    let affected = query.execute(&mut *transaction).await?.rows_affected();
    transaction.commit().await?;
    Ok(affected)
}

/// `SET LOCAL`: the timeout ends with the transaction.
async fn set_timeout(connection: &mut sqlx::PgConnection, timeout: Duration) -> Result<(), sqlx::Error> {
    let statement = format!("SET LOCAL statement_timeout = {}", timeout.as_millis());
    connection.execute(sqlx::raw_sql(AssertSqlSafe(statement))).await.map(drop)
}

/// Converts one cell to JSON by its type; types without a decoder here come out as text
/// when printable, else as hex (cast to `text` in the query to read those exactly).
fn value(row: &PgRow, index: usize) -> Value {
    let Ok(raw) = row.try_get_raw(index) else { return Value::Null };
    if raw.is_null() {
        return Value::Null;
    }
    let type_name = raw.type_info().name().to_owned();
    let typed = |value: Option<Value>| value.unwrap_or(Value::Null);
    match type_name.as_str() {
        "BOOL" => typed(row.try_get::<bool, _>(index).ok().map(Value::Bool)),
        "INT2" => typed(row.try_get::<i16, _>(index).ok().map(Value::from)),
        "INT4" => typed(row.try_get::<i32, _>(index).ok().map(Value::from)),
        "INT8" => typed(row.try_get::<i64, _>(index).ok().map(Value::from)),
        "OID" => typed(row.try_get::<sqlx::postgres::types::Oid, _>(index).ok().map(|oid| Value::from(oid.0))),
        "FLOAT4" => typed(row.try_get::<f32, _>(index).ok().map(|v| float(f64::from(v)))),
        "FLOAT8" => typed(row.try_get::<f64, _>(index).ok().map(float)),
        "NUMERIC" => typed(raw.as_bytes().ok().and_then(numeric).map(Value::String)),
        "JSON" | "JSONB" => typed(row.try_get::<JsonValue, _>(index).ok()),
        "UUID" => typed(row.try_get::<Uuid, _>(index).ok().map(|v| Value::String(v.to_string()))),
        "DATE" => typed(row.try_get::<NaiveDate, _>(index).ok().map(|v| Value::String(v.to_string()))),
        "TIME" => typed(row.try_get::<NaiveTime, _>(index).ok().map(|v| Value::String(v.to_string()))),
        "TIMESTAMP" => typed(row.try_get::<NaiveDateTime, _>(index).ok().map(|v| Value::String(v.to_string()))),
        "TIMESTAMPTZ" => typed(row.try_get::<DateTime<Utc>, _>(index).ok().map(|v| Value::String(v.to_rfc3339()))),
        "INTERVAL" => typed(row.try_get::<PgInterval, _>(index).ok().map(|v| Value::String(interval(&v)))),
        "BYTEA" => typed(raw.as_bytes().ok().map(|bytes| Value::String(hex(bytes)))),
        "TEXT[]" | "VARCHAR[]" | "NAME[]" | "CHAR[]" => array::<String>(row, index),
        "INT2[]" => array::<i16>(row, index),
        "INT4[]" => array::<i32>(row, index),
        "INT8[]" => array::<i64>(row, index),
        "FLOAT8[]" => array::<f64>(row, index),
        "BOOL[]" => array::<bool>(row, index),
        _ => raw.as_bytes().map_or(Value::Null, raw_value),
    }
}

fn array<T>(row: &PgRow, index: usize) -> Value
where
    T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres> + sqlx::postgres::PgHasArrayType + Into<Value>,
{
    row.try_get::<Vec<Option<T>>, _>(index)
        .map(|items| Value::Array(items.into_iter().map(|item| item.map_or(Value::Null, Into::into)).collect()))
        .unwrap_or(Value::Null)
}

/// A NUMERIC in PostgreSQL's binary form (ndigits, weight, sign, dscale, then base-10000
/// digits; `numeric_send` in `numeric.c`) as its exact decimal text.
fn numeric(bytes: &[u8]) -> Option<String> {
    let word = |at: usize| Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
    let ndigits = i32::from(word(0)?);
    let weight = i32::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digit = |position: i32| -> Option<u16> {
        if (0..ndigits).contains(&position) { word(8 + 2 * usize::try_from(position).ok()?) } else { Some(0) }
    };
    let mut text = String::from(if sign == 0x4000 { "-" } else { "" });
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&digit(0)?.to_string());
        for position in 1..=weight {
            text.push_str(&format!("{:04}", digit(position)?));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        for group in 1..=i32::try_from(dscale.div_ceil(4)).ok()? {
            fraction.push_str(&format!("{:04}", digit(weight + group)?));
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Some(text)
}

/// An interval in PostgreSQL's default output style: `1 year 2 mons 3 days 04:05:06.5`.
fn interval(value: &PgInterval) -> String {
    let mut parts = Vec::new();
    let (years, months) = (value.months / 12, value.months % 12);
    for (amount, unit) in [(years, "year"), (months, "mon"), (value.days, "day")] {
        if amount != 0 {
            parts.push(format!("{amount} {unit}{}", if amount == 1 { "" } else { "s" }));
        }
    }
    let micros = value.microseconds;
    if micros != 0 || parts.is_empty() {
        let sign = if micros < 0 { "-" } else { "" };
        let micros = micros.unsigned_abs();
        let seconds = micros / 1_000_000;
        let fraction = micros % 1_000_000;
        let mut time = format!("{sign}{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
        if fraction != 0 {
            time.push_str(format!(".{fraction:06}").trim_end_matches('0'));
        }
        parts.push(time);
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_decode_exactly() {
        // 12345.6789: ndigits 3, weight 1, sign +, dscale 4, digits 1 2345 6789.
        let bytes = [0, 3, 0, 1, 0, 0, 0, 4, 0, 1, 0x09, 0x29, 0x1a, 0x85];
        assert_eq!(numeric(&bytes).as_deref(), Some("12345.6789"));
        // -0.0012: ndigits 1, weight -1, sign -, dscale 4, digits 12.
        let bytes = [0, 1, 0xff, 0xff, 0x40, 0, 0, 4, 0, 12];
        assert_eq!(numeric(&bytes).as_deref(), Some("-0.0012"));
        // 0 with scale 2.
        assert_eq!(numeric(&[0, 0, 0, 0, 0, 0, 0, 2]).as_deref(), Some("0.00"));
        assert_eq!(numeric(&[0, 0, 0, 0, 0xC0, 0, 0, 0]).as_deref(), Some("NaN"));
        assert_eq!(numeric(&[0, 1]), None, "truncated input is not a panic");
    }

    #[test]
    fn intervals_read_like_postgres() {
        let check = |months, days, microseconds, expected: &str| {
            assert_eq!(interval(&PgInterval { months, days, microseconds }), expected);
        };
        check(14, 3, 14_706_500_000, "1 year 2 mons 3 days 04:05:06.5");
        check(0, 0, 0, "00:00:00");
        check(0, -1, -1_000_000, "-1 days -00:00:01");
    }
}
