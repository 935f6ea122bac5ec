//! The `sql` toolbox through the real server: a SQLite database, a role with a database
//! scope, a refused write, and readiness.

use serde_json::{Value, json};

use crate::support::{Server, TempDir, call_tool};

#[tokio::test]
async fn an_analyst_queries_but_cannot_write_and_readiness_lists_the_database() {
    let dir = TempDir::new("sql");
    let db = dir.0.join("shop.db");
    let status = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript('CREATE TABLE orders(id INTEGER PRIMARY KEY, name TEXT, total REAL); INSERT INTO orders(name,total) VALUES (\"acme\",912.5),(\"bolt\",450);'); c.commit()"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(status.success());
    let config = dir.0.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = [\"system\", \"sql\"]\n\n[sql.databases.shop]\nurl = \"sqlite://{}\"\n\n\
             [roles.analyst]\nincludes = [\"reader\"]\ndatabases = [{{ name = \"shop\", access = \"read\" }}]\n",
            db.display()
        ),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let _admin = server.admin_token();
    let (code, analyst, err) =
        server.cli(&["token", "create", "--name", "a", "--role", "analyst", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let analyst = analyst.trim();
    let (_, reader, _) =
        server.cli(&["token", "create", "--name", "r", "--role", "reader", "--config", config.to_str().unwrap()]);
    let reader = reader.trim();

    let rows = call_tool(&server, analyst, "sql_query", json!({ "database": "shop", "query": "SELECT name FROM orders WHERE total > ? ORDER BY total DESC", "params": [100] })).await;
    assert_eq!(rows["result"]["isError"], false, "{rows}");
    assert_eq!(rows["result"]["structuredContent"]["rows"], json!([["acme"], ["bolt"]]), "{rows}");

    let drop =
        call_tool(&server, analyst, "sql_query", json!({ "database": "shop", "query": "SELECT 1; DROP TABLE orders" }))
            .await;
    assert_eq!(drop["result"]["isError"], true, "{drop}");
    let no_scope = call_tool(&server, reader, "sql_query", json!({ "database": "shop", "query": "SELECT 1" })).await;
    assert_eq!(no_scope["result"]["isError"], true, "a reader without the database scope: {no_scope}");
    assert!(no_scope.to_string().contains("permission denied"), "{no_scope}");

    let ready: Value = reqwest::get(format!("{}/readyz", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["services"]["sql:shop"]["status"], "ok", "{ready}");
}
