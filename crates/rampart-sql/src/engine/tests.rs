//! The layers under the analyser, tested without it: statements the analyser would refuse
//! are sent to [`Pool::read`] directly, and the protocol, the read-only transaction and the
//! session reset must hold on their own. Real servers from `TEST_POSTGRES_URL` and
//! `TEST_MYSQL_URL` (skipped loudly when unset, required under `TEST_REQUIRE_SERVICES=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, Executor};

use super::*;

const LIMITS: Limits = Limits { max_rows: 10, timeout: Duration::from_secs(2) };

fn server_url(variable: &str, test: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(std::env::var("TEST_REQUIRE_SERVICES").as_deref() != Ok("1"), "{variable} is required");
            eprintln!("\n!!!!! SKIPPED: {test}: {variable} is not set !!!!!\n");
            None
        }
    }
}

fn config(url: &str, writable: bool) -> DatabaseConfig {
    DatabaseConfig { url: url.into(), password_env: None, writable, max_rows: 10, statement_timeout_ms: 2000 }
}

async fn admin<C: Connection>(url: &str, sql: &str)
where
    for<'c> &'c mut C: Executor<'c>,
{
    let mut connection = C::connect(url).await.expect("connect");
    connection.execute(sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))).await.expect("fixture SQL");
}

/// Polls `check` for up to two seconds (the reset runs as the connection is released).
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn postgres_without_the_analyser_still_cannot_write_or_keep_session_state() {
    let Some(url) = server_url("TEST_POSTGRES_URL", "postgres_layers") else { return };
    let s = "rampart_sql_layers";
    admin::<sqlx::PgConnection>(
        &url,
        &format!("DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}; CREATE TABLE {s}.t (a int); INSERT INTO {s}.t VALUES (1)"),
    )
    .await;
    let pool = Pool::connect_lazy(&config(&url, false), None).unwrap();
    let stacked = pool.read(&format!("SELECT 1; DELETE FROM {s}.t"), &[], LIMITS).await.unwrap_err();
    assert!(stacked.to_string().contains("cannot insert multiple commands into a prepared statement"), "{stacked}");
    let write = pool.read(&format!("DELETE FROM {s}.t"), &[], LIMITS).await.unwrap_err();
    assert!(write.to_string().contains("read-only transaction"), "{write}");
    let escape = pool.read("SET TRANSACTION READ WRITE", &[], LIMITS).await;
    let escape_then_write =
        pool.read(&format!("WITH d AS (DELETE FROM {s}.t RETURNING 1) SELECT 1"), &[], LIMITS).await;
    assert!(escape.is_ok() || escape_then_write.is_err());
    assert!(escape_then_write.is_err(), "each read starts a fresh READ ONLY transaction");

    // A session-level advisory lock survives the rollback; the release hook drops it.
    pool.read("SELECT pg_advisory_lock(424242)", &[], LIMITS).await.unwrap();
    let mut probe = sqlx::PgConnection::connect(&url).await.unwrap();
    let released = eventually(async || {
        let held: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242")
                .fetch_one(&mut probe)
                .await
                .unwrap();
        held == 0
    })
    .await;
    assert!(released, "the advisory lock was released before the connection went back to the pool");
    let count: i64 =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {s}.t"))).fetch_one(&mut probe).await.unwrap();
    assert_eq!(count, 1);
    admin::<sqlx::PgConnection>(&url, &format!("DROP SCHEMA {s} CASCADE")).await;
}

#[tokio::test]
async fn mariadb_without_the_analyser_still_cannot_write_or_keep_session_state() {
    let Some(url) = server_url("TEST_MYSQL_URL", "mariadb_layers") else { return };
    admin::<sqlx::MySqlConnection>(&url, "DROP TABLE IF EXISTS rampart_sql_layers").await;
    admin::<sqlx::MySqlConnection>(&url, "CREATE TABLE rampart_sql_layers (a INT)").await;
    admin::<sqlx::MySqlConnection>(&url, "INSERT INTO rampart_sql_layers VALUES (1)").await;
    let pool = Pool::connect_lazy(&config(&url, false), None).unwrap();
    let stacked = pool.read("SELECT 1; DELETE FROM rampart_sql_layers", &[], LIMITS).await.unwrap_err();
    assert!(stacked.to_string().contains("SQL syntax"), "{stacked}");
    let write = pool.read("DELETE FROM rampart_sql_layers", &[], LIMITS).await.unwrap_err();
    assert!(write.to_string().contains("READ ONLY transaction"), "{write}");

    pool.read("SELECT GET_LOCK('rampart_sql_layers', 0)", &[], LIMITS).await.unwrap();
    let mut probe = sqlx::MySqlConnection::connect(&url).await.unwrap();
    let released = eventually(async || {
        let free: i64 =
            sqlx::query_scalar("SELECT IS_FREE_LOCK('rampart_sql_layers')").fetch_one(&mut probe).await.unwrap();
        free == 1
    })
    .await;
    assert!(released, "the named lock was released before the connection went back to the pool");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM rampart_sql_layers").fetch_one(&mut probe).await.unwrap();
    assert_eq!(count, 1);
    admin::<sqlx::MySqlConnection>(&url, "DROP TABLE rampart_sql_layers").await;
}

#[tokio::test]
async fn sqlite_without_the_analyser_still_cannot_write() {
    let path = std::env::temp_dir().join(format!("rampart-sql-layers-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    admin::<sqlx::SqliteConnection>(&format!("{url}?mode=rwc"), "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1)")
        .await;
    // sqlx runs every statement of a text on SQLite, so stacked statements reach the
    // database here; whatever they do must not last.
    for writable in [false, true] {
        let pool = Pool::connect_lazy(&config(&url, writable), None).unwrap();
        let error = pool.read("DELETE FROM t", &[], LIMITS).await.unwrap_err().to_string();
        assert!(error.contains("readonly"), "writable={writable}: {error}");
        for statement in [
            "SELECT 1; DELETE FROM t",
            "PRAGMA query_only = 0; DELETE FROM t",
            "COMMIT; PRAGMA query_only = 0; DELETE FROM t",
            "ROLLBACK; PRAGMA query_only = 0; DELETE FROM t",
        ] {
            let _ = pool.read(statement, &[], LIMITS).await;
            let rows = pool.read("SELECT a FROM t", &[], LIMITS).await.unwrap();
            assert_eq!(rows.rows, [[json!(1)]], "writable={writable}: {statement}");
        }
    }
    let _ = std::fs::remove_file(&path);
}
