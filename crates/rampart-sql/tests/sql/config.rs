//! Configuration errors name the key; the policy decides every access; `/readyz` reports
//! each database without failing when one is down.

use std::time::{Duration, Instant};

use rampart_core::{Access, Toolbox};
use rampart_sql::SqlToolbox;
use serde_json::{Value, json};

use crate::support::{self, call, caller, query, toolbox};

fn config_error(config: Value) -> String {
    SqlToolbox::from_config(config).map(|_| ()).expect_err("invalid config").to_string()
}

#[tokio::test]
async fn configuration_errors_name_the_key() {
    let cases = [
        (json!({"database": {}}), "sql: unknown field `database`, expected `databases`"),
        (json!({"databases": []}), "sql.databases: expected a table, found an array"),
        (
            json!({"databases": {"a": {"url": "sqlite://x.db", "writeable": true}}}),
            "sql.databases.a: unknown field `writeable`, expected one of",
        ),
        (json!({"databases": {"a": {"writable": true}}}), "sql.databases.a: missing field `url`"),
        (json!({"databases": {"a": {"url": "oracle://db"}}}), "sql.databases.a.url: unsupported database URL"),
        (
            json!({"databases": {"a": {"url": "sqlite://x", "max_rows": 0}}}),
            "sql.databases.a.max_rows: must be between 1",
        ),
        (
            json!({"databases": {"a": {"url": "sqlite://x", "statement_timeout_ms": 0}}}),
            "sql.databases.a.statement_timeout_ms: must be between 1",
        ),
        (json!({"databases": {"a b": {"url": "sqlite://x"}}}), "sql.databases.a b: a database name may use only"),
        (
            json!({"databases": {"a": {"url": "postgres://u@h/db", "password_env": "RAMPART_SQL_TEST_NEVER_SET"}}}),
            "sql.databases.a.password_env: the environment variable RAMPART_SQL_TEST_NEVER_SET is not set",
        ),
        (
            json!({"databases": {"a": {"url": "postgres://u@h:notaport/db"}}}),
            "sql.databases.a.url: invalid postgres URL",
        ),
    ];
    for (config, expected) in cases {
        let error = config_error(config.clone());
        assert!(error.starts_with(expected), "{config}\n  got: {error}\n  expected: {expected}");
    }
    assert!(SqlToolbox::from_config(Value::Null).is_ok(), "no [sql] table: no databases");
}

#[test]
fn creating_the_toolbox_outside_a_runtime_is_an_error_not_a_panic() {
    let error = config_error(json!({"databases": {"a": {"url": "sqlite://x.db"}}}));
    assert_eq!(error, "sql: the sql toolbox must be created inside a Tokio runtime");
}

#[tokio::test]
async fn the_policy_decides_every_database_access() {
    let fixture = support::Sqlite::new("policy").await;
    let toolbox = toolbox("lite", &fixture.url, json!({}));
    let nobody = caller(&[]);
    let listed = call(&toolbox, &nobody, "sql_list_databases", json!({})).await.unwrap();
    assert_eq!(listed, json!({"databases": []}), "a caller sees only databases it may read");
    for (tool, arguments) in [
        ("sql_query", json!({"database": "lite", "query": "SELECT 1"})),
        ("sql_list_tables", json!({"database": "lite"})),
        ("sql_describe_table", json!({"database": "lite", "table": "items"})),
    ] {
        let denied = call(&toolbox, &nobody, tool, arguments).await.unwrap_err();
        assert_eq!(denied, "Denied: permission denied: database read on 'lite'", "{tool}");
    }
    let other = caller(&[("other", Access::Read)]);
    let unknown = query(&toolbox, &other, "other", "SELECT 1", json!([])).await;
    assert_eq!(unknown, Err("unknown database 'other': sql_list_databases lists the ones you may use".into()));
    fixture.cleanup();
}

#[tokio::test]
async fn readiness_reports_each_database_and_survives_a_down_one() {
    let fixture = support::Sqlite::new("readiness").await;
    let mut databases = json!({
        "lite": {"url": fixture.url},
        "missing": {"url": "sqlite:///nonexistent/rampart/none.db"},
        "pg_down": {"url": "postgres://root@127.0.0.1:1/test", "password_env": "HOME"},
        "my_down": {"url": "mysql://root@127.0.0.1:1/test"},
    });
    let postgres = support::server_url("TEST_POSTGRES_URL", "readiness_reports_each_database");
    if let Some(url) = &postgres {
        databases["pg"] = json!({"url": url});
    }
    let toolbox = SqlToolbox::from_config(json!({ "databases": databases })).unwrap();
    let started = Instant::now();
    let statuses = toolbox.readiness().await;
    assert!(started.elapsed() < Duration::from_secs(4), "bounded: {:?}", started.elapsed());
    let state: Vec<(String, bool)> = statuses.iter().map(|s| (s.name.clone(), s.ok)).collect();
    let mut expected = vec![("sql:lite", true), ("sql:missing", false), ("sql:my_down", false), ("sql:pg_down", false)];
    if postgres.is_some() {
        expected.insert(3, ("sql:pg", true));
    }
    let expected: Vec<(String, bool)> = expected.into_iter().map(|(n, ok)| (n.to_owned(), ok)).collect();
    assert_eq!(state, expected, "{statuses:?}");
    let home = std::env::var("HOME").unwrap_or_default();
    for status in &statuses {
        let detail = status.detail.clone().unwrap_or_default();
        assert!(home.len() < 2 || !detail.contains(&home), "no credential in {detail}");
    }

    let started = Instant::now();
    let down = query(&toolbox, &caller(&[("pg_down", Access::Read)]), "pg_down", "SELECT 1", json!([])).await;
    let error = down.unwrap_err();
    assert!(error.starts_with("database 'pg_down' is unavailable:"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    fixture.cleanup();
}
