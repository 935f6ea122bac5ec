//! The tools as agents use them, on all three engines: listing, describing, querying with
//! parameters and typed results, and writing where configured and granted.

use rampart_core::{Access, ToolError, Toolbox};
use rampart_sql::SqlToolbox;
use serde_json::{Value, json};

use crate::support::{self, call, caller, query, rows, toolbox};

/// What one engine's fixture should look like through the tools.
struct Expected {
    /// Configured database name.
    name: &'static str,
    /// Schema argument for sql_list_tables, and the schema the tables are in.
    schema: Option<String>,
    listed_schema: String,
    /// How to name the tables in describe and queries.
    items: String,
    orders: String,
    /// The referenced table as sql_describe_table reports it.
    referenced: String,
    /// A query with one parameter, its expected columns and rows.
    query: String,
    columns: Value,
    rows: Value,
}

async fn lists_describes_and_queries(toolbox: &SqlToolbox, expected: &Expected) {
    let name = expected.name;
    let context = caller(&[(name, Access::Read)]);

    let databases = call(toolbox, &context, "sql_list_databases", json!({})).await.unwrap();
    assert_eq!(databases["databases"][0]["name"], name);
    assert_eq!(databases["databases"][0]["writable"], false);

    let tables =
        call(toolbox, &context, "sql_list_tables", json!({"database": name, "schema": expected.schema})).await.unwrap();
    let s = &expected.listed_schema;
    assert_eq!(
        tables["tables"],
        json!([{"schema": s, "name": "items", "kind": "table"}, {"schema": s, "name": "orders", "kind": "table"}]),
        "{name}"
    );

    let items = call(toolbox, &context, "sql_describe_table", json!({"database": name, "table": expected.items}))
        .await
        .unwrap();
    let column_names: Vec<&str> =
        items["columns"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(column_names.first(), Some(&"id"), "{name}: {items}");
    assert!(column_names.contains(&"price") && column_names.contains(&"created"), "{name}: {items}");
    assert_eq!(items["primary_key"], json!(["id"]), "{name}");
    assert_eq!(
        (items["columns"][0]["nullable"].clone(), items["columns"][0]["primary_key"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(items["columns"][3]["nullable"], true, "{name}: note is nullable");
    let unique_name =
        items["indexes"].as_array().unwrap().iter().any(|i| i["unique"] == true && i["columns"] == json!(["name"]));
    assert!(unique_name, "{name}: the UNIQUE index on name is listed: {items}");

    let orders = call(toolbox, &context, "sql_describe_table", json!({"database": name, "table": expected.orders}))
        .await
        .unwrap();
    let key = &orders["foreign_keys"][0];
    assert_eq!(
        (key["columns"].clone(), key["references_table"].clone()),
        (json!(["item_id"]), json!(expected.referenced))
    );
    assert_eq!(key["references_columns"], json!(["id"]), "{name}");
    let composite =
        orders["indexes"].as_array().unwrap().iter().any(|i| i["columns"] == json!(["item_id", "quantity"]));
    assert!(composite, "{name}: the composite index is listed: {orders}");

    let missing = call(toolbox, &context, "sql_describe_table", json!({"database": name, "table": "nope"})).await;
    assert_eq!(missing, Err(format!("no table or view 'nope' in database '{name}'")));

    let result = query(toolbox, &context, name, &expected.query, json!([1])).await.unwrap();
    assert_eq!(result["columns"], expected.columns, "{name}");
    assert_eq!(result["rows"], expected.rows, "{name}");
    assert_eq!((result["row_count"].clone(), result["truncated"].clone()), (json!(2), json!(false)));

    let empty =
        query(toolbox, &context, name, &format!("SELECT id, name FROM {} WHERE 1 = 0", expected.items), json!([]))
            .await
            .unwrap();
    assert_eq!(rows(&empty).len(), 0);
    let empty_columns: Vec<&str> =
        empty["columns"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(empty_columns, ["id", "name"], "{name}: columns of an empty result");

    let output = toolbox
        .call_tool("sql_query", args(json!({"database": name, "query": expected.query, "params": [1]})), &context)
        .await
        .unwrap();
    let text = serde_json::to_value(&output.content).unwrap()[0]["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.starts_with("id | name"), "{name}: {text}");
    assert!(text.contains("apple") && text.ends_with("(2 rows)"), "{name}: {text}");
}

fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn sqlite_lists_describes_and_queries() {
    let fixture = support::Sqlite::new("tools").await;
    let expected = Expected {
        name: "lite",
        schema: None,
        listed_schema: "main".into(),
        items: "items".into(),
        orders: "orders".into(),
        referenced: "items".into(),
        query: "SELECT id, name, price, created FROM items WHERE price > ? ORDER BY id".into(),
        columns: json!([{"name": "id", "type": "INTEGER"}, {"name": "name", "type": "TEXT"},
                        {"name": "price", "type": "REAL"}, {"name": "created", "type": "TEXT"}]),
        rows: json!([[1, "apple", 1.25, "2024-01-02"], [2, "pear", 2.5, "2024-01-02"]]),
    };
    lists_describes_and_queries(&toolbox("lite", &fixture.url, json!({})), &expected).await;
    fixture.cleanup();
}

#[tokio::test]
async fn postgres_lists_describes_and_queries() {
    let Some(url) = support::server_url("TEST_POSTGRES_URL", "postgres_lists_describes_and_queries") else { return };
    let fixture = support::Postgres::new(&url, "tools").await;
    let s = fixture.schema.clone();
    let expected = Expected {
        name: "pg",
        schema: Some(s.clone()),
        listed_schema: s.clone(),
        items: format!("{s}.items"),
        orders: format!("{s}.orders"),
        referenced: format!("{s}.items"),
        query: format!("SELECT id, name, price, tags, created FROM {s}.items WHERE price > $1 ORDER BY id"),
        columns: json!([{"name": "id", "type": "INT4"}, {"name": "name", "type": "TEXT"},
                        {"name": "price", "type": "NUMERIC"}, {"name": "tags", "type": "TEXT[]"},
                        {"name": "created", "type": "DATE"}]),
        rows: json!([[1, "apple", "1.25", ["red", "fruit"], "2024-01-02"], [2, "pear", "2.50", null, "2024-01-02"]]),
    };
    lists_describes_and_queries(&toolbox("pg", &url, json!({})), &expected).await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn mariadb_lists_describes_and_queries() {
    let Some(url) = support::server_url("TEST_MYSQL_URL", "mariadb_lists_describes_and_queries") else { return };
    let fixture = support::MySql::new(&url, "tools").await;
    let d = fixture.database.clone();
    let expected = Expected {
        name: "my",
        schema: None,
        listed_schema: d.clone(),
        items: "items".into(),
        orders: format!("{d}.orders"),
        referenced: format!("{d}.items"),
        query: "SELECT id, name, price, created FROM items WHERE price > ? ORDER BY id".into(),
        columns: json!([{"name": "id", "type": "INT"}, {"name": "name", "type": "VARCHAR"},
                        {"name": "price", "type": "DECIMAL"}, {"name": "created", "type": "DATE"}]),
        rows: json!([[1, "apple", "1.25", "2024-01-02"], [2, "pear", "2.50", "2024-01-02"]]),
    };
    lists_describes_and_queries(&toolbox("my", &fixture.url, json!({})), &expected).await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn postgres_values_convert_by_type() {
    let Some(url) = support::server_url("TEST_POSTGRES_URL", "postgres_values_convert_by_type") else { return };
    let toolbox = toolbox("pg", &url, json!({}));
    let sql = r#"SELECT true, 1::int2, 2::int8, 1.5::float4, 'NaN'::float8, -12345.678::numeric(12,3),
                 '{"a": [1, null]}'::jsonb, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
                 '2024-01-02 03:04:05.5'::timestamp, '2024-01-02 03:04:05+02'::timestamptz, '03:04:05'::time,
                 '1 year 2 days 03:00:00.25'::interval, '\xdeadbeef'::bytea, NULL::text, ARRAY[1, NULL]::int4[],
                 'monday'::name, 42::oid, 'hello'::varchar(10)"#;
    let result = query(&toolbox, &caller(&[("pg", Access::Read)]), "pg", sql, json!([])).await.unwrap();
    assert_eq!(
        result["rows"][0],
        json!([true, 1, 2, 1.5, "NaN", "-12345.678", {"a": [1, null]}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
               "2024-01-02 03:04:05.500", "2024-01-02T01:04:05+00:00", "03:04:05", "1 year 2 days 03:00:00.25",
               "\\xdeadbeef", null, [1, null], "monday", 42, "hello"])
    );
    let types: Vec<&str> = result["columns"].as_array().unwrap().iter().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(&types[..4], ["BOOL", "INT2", "INT8", "FLOAT4"]);
}

#[tokio::test]
async fn mariadb_values_convert_by_type() {
    let Some(url) = support::server_url("TEST_MYSQL_URL", "mariadb_values_convert_by_type") else { return };
    let toolbox = toolbox("my", &url, json!({}));
    let sql = "SELECT CAST(1 AS UNSIGNED), -5, 1.5e0, CAST(12.345 AS DECIMAL(6,3)), CAST('2024-01-02 03:04:05' AS DATETIME), \
               CAST('-12:00:01' AS TIME), CAST('2024-01-02' AS DATE), x'DEADBEEF', NULL, 'text', JSON_OBJECT('a', 1)";
    let result = query(&toolbox, &caller(&[("my", Access::Read)]), "my", sql, json!([])).await.unwrap();
    assert_eq!(
        result["rows"][0],
        json!([
            1,
            -5,
            1.5,
            "12.345",
            "2024-01-02 03:04:05",
            "-12:00:01",
            "2024-01-02",
            "\\xdeadbeef",
            null,
            "text",
            "{\"a\": 1}"
        ])
    );
}

#[tokio::test]
async fn sql_execute_needs_a_writable_database_and_the_read_write_scope() {
    let fixture = support::Sqlite::new("execute").await;
    let read_only = toolbox("lite", &fixture.url, json!({}));
    assert!(
        !read_only.tools().await.iter().any(|tool| tool.name == "sql_execute"),
        "not listed without a writable database"
    );
    for tool in read_only.tools().await {
        assert_eq!(tool.annotations.read_only_hint, Some(true), "{}", tool.name);
    }
    let writable = toolbox("lite", &fixture.url, json!({"writable": true}));
    let execute = writable.tools().await.into_iter().find(|tool| tool.name == "sql_execute").expect("listed");
    assert_eq!((execute.annotations.read_only_hint, execute.annotations.destructive_hint), (Some(false), Some(true)));

    let insert =
        json!({"database": "lite", "statement": "INSERT INTO items (name, price) VALUES (?, ?)", "params": ["fig", 3]});
    let reader = caller(&[("lite", Access::Read)]);
    let denied = call(&writable, &reader, "sql_execute", insert.clone()).await.unwrap_err();
    assert!(denied.starts_with("Denied: permission denied"), "{denied}");
    let not_writable = call(&read_only, &caller(&[("lite", Access::ReadWrite)]), "sql_execute", insert.clone()).await;
    assert_eq!(
        not_writable,
        Err("database 'lite' is read-only: sql_execute needs `writable = true` in its configuration".into())
    );
    let writer = caller(&[("lite", Access::ReadWrite)]);
    let written = call(&writable, &writer, "sql_execute", insert).await.unwrap();
    assert_eq!(written, json!({"database": "lite", "rows_affected": 1}));
    assert_eq!(fixture.scalar("SELECT count(*) FROM items").await, 4);

    for (statement, refusal) in [
        ("INSERT INTO items (name) VALUES ('a'); DROP TABLE items", "only a single statement is allowed"),
        ("COMMIT", "COMMIT is not allowed"),
        ("ATTACH DATABASE '/tmp/rampart-evil.db' AS evil", "ATTACH DATABASE is not allowed"),
        ("INSERT INTO items (name) SELECT readfile('/etc/passwd')", "function readfile() is not allowed"),
    ] {
        let error = call(&writable, &writer, "sql_execute", json!({"database": "lite", "statement": statement})).await;
        assert!(error.as_ref().is_err_and(|e| e.contains(refusal)), "{statement}: {error:?}");
    }
    let read_after = query(&writable, &reader, "lite", "DELETE FROM items", json!([])).await;
    assert!(
        read_after.is_err_and(|e| e.contains("found DELETE FROM")),
        "sql_query stays read-only on a writable database"
    );
    assert_eq!(fixture.scalar("SELECT count(*) FROM items").await, 4);
    fixture.cleanup();
}

#[tokio::test]
async fn sql_execute_writes_on_postgres_and_mariadb() {
    if let Some(url) = support::server_url("TEST_POSTGRES_URL", "sql_execute_writes_on_postgres") {
        let fixture = support::Postgres::new(&url, "execute").await;
        let toolbox = toolbox("pg", &url, json!({"writable": true}));
        let statement = format!("UPDATE {}.items SET price = price + $1 WHERE name <> $2", fixture.schema);
        let args = json!({"database": "pg", "statement": statement, "params": [1, "plum"]});
        let written = call(&toolbox, &caller(&[("pg", Access::ReadWrite)]), "sql_execute", args).await;
        assert_eq!(written.unwrap()["rows_affected"], 2);
        let sum = format!("SELECT (sum(price) * 100)::int8 FROM {}.items", fixture.schema);
        assert_eq!(fixture.scalar(&sum).await, 585);
        fixture.cleanup().await;
    }
    if let Some(url) = support::server_url("TEST_MYSQL_URL", "sql_execute_writes_on_mariadb") {
        let fixture = support::MySql::new(&url, "execute").await;
        let toolbox = toolbox("my", &fixture.url, json!({"writable": true}));
        let args = json!({"database": "my", "statement": "DELETE FROM orders WHERE id = ?", "params": [1]});
        let written = call(&toolbox, &caller(&[("my", Access::ReadWrite)]), "sql_execute", args).await;
        assert_eq!(written.unwrap()["rows_affected"], 1);
        assert_eq!(fixture.scalar(&format!("SELECT count(*) FROM {}.orders", fixture.database)).await, 0);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn bad_arguments_are_invalid_arguments() {
    let fixture = support::Sqlite::new("arguments").await;
    let toolbox = toolbox("lite", &fixture.url, json!({}));
    let context = caller(&[("lite", Access::Read)]);
    let unknown_field =
        toolbox.call_tool("sql_query", args(json!({"database": "lite", "sql": "SELECT 1"})), &context).await;
    assert!(matches!(unknown_field, Err(ToolError::InvalidArguments(ref m)) if m.contains("unknown field `sql`")));
    fixture.cleanup();
}
