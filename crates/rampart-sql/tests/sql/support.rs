//! What every test needs: the servers' URLs (skipped loudly when absent, required under
//! `TEST_REQUIRE_SERVICES=1`), a fixture per test (a PostgreSQL schema, a MariaDB database,
//! an SQLite file) with the same tables, a guard granting database scopes, and calls that
//! return the structured result or the error text.

use std::{path::PathBuf, sync::Arc};

use async_trait::async_trait;
use rampart_core::{
    Access, Admission, CallContext, CallRecord, Caller, Denied, Guard, Principal, PrincipalKind, Refusal, Request,
    ToolError, Toolbox,
};
use rampart_sql::SqlToolbox;
use serde_json::{Map, Value, json};
use sqlx::{Connection, Executor};

/// A server URL from `variable`, or `None` after saying loudly that `test` was skipped.
///
/// # Panics
/// When the variable is unset and `TEST_REQUIRE_SERVICES=1` (CI).
pub fn server_url(variable: &str, test: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{variable} is required (TEST_REQUIRE_SERVICES=1)"
            );
            eprintln!("\n!!!!! SKIPPED: {test}: {variable} is not set !!!!!\n");
            None
        }
    }
}

/// `url` with its database (the path) replaced by `database`, query string kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// `url` with `key=value` added to its query string.
pub fn with_param(url: &str, key: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{key}={value}")
}

/// The tables every engine gets, in each dialect: `items` (id, name, price, note),
/// `orders` referencing it, an index, and three items.
pub const ITEMS: [&str; 3] = ["apple", "pear", "plum"];

/// A per-test PostgreSQL schema with the fixture tables.
pub struct Postgres {
    pub base_url: String,
    pub schema: String,
}

impl Postgres {
    pub async fn new(base_url: &str, test: &str) -> Self {
        let schema = format!("rampart_sql_{test}");
        let fixture = Self { base_url: base_url.to_owned(), schema };
        let s = &fixture.schema;
        fixture
            .admin(&format!(
                "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s};
                 CREATE TABLE {s}.items (id serial PRIMARY KEY, name text NOT NULL UNIQUE,
                     price numeric(10,2) DEFAULT 0, note text, tags text[], created date DEFAULT '2024-01-02');
                 CREATE TABLE {s}.orders (id int PRIMARY KEY, item_id int NOT NULL REFERENCES {s}.items(id),
                     quantity int NOT NULL);
                 CREATE INDEX orders_item ON {s}.orders (item_id, quantity);
                 INSERT INTO {s}.items (name, price, tags) VALUES
                     ('apple', 1.25, ARRAY['red','fruit']), ('pear', 2.50, NULL), ('plum', 0.10, '{{}}');
                 INSERT INTO {s}.orders VALUES (1, 1, 3);
                 CREATE FUNCTION {s}.evil() RETURNS int LANGUAGE sql VOLATILE AS
                     $$ INSERT INTO {s}.items (name) VALUES ('evil') RETURNING id $$;"
            ))
            .await;
        fixture
    }

    /// Runs `sql` (several statements allowed) as the fixture's owner.
    pub async fn admin(&self, sql: &str) {
        let mut connection = sqlx::PgConnection::connect(&self.base_url).await.expect("connect to PostgreSQL");
        connection.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))).await.expect("fixture SQL");
        let _ = connection.close().await;
    }

    /// One value from `sql` as the fixture's owner.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let mut connection = sqlx::PgConnection::connect(&self.base_url).await.expect("connect to PostgreSQL");
        let value: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut connection).await.expect("scalar");
        let _ = connection.close().await;
        value
    }

    pub async fn cleanup(&self) {
        self.admin(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)).await;
    }
}

/// A per-test MariaDB database with the fixture tables.
pub struct MySql {
    pub base_url: String,
    pub database: String,
    pub url: String,
}

impl MySql {
    pub async fn new(base_url: &str, test: &str) -> Self {
        let database = format!("rampart_sql_{test}");
        let url = with_database(base_url, &database);
        let fixture = Self { base_url: base_url.to_owned(), database, url };
        let d = &fixture.database;
        fixture.admin(&format!("DROP DATABASE IF EXISTS {d}; CREATE DATABASE {d}")).await;
        for statement in [
            format!(
                "CREATE TABLE {d}.items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL UNIQUE, \
                 price DECIMAL(10,2) DEFAULT 0, note TEXT, created DATE DEFAULT '2024-01-02')"
            ),
            format!(
                "CREATE TABLE {d}.orders (id INT PRIMARY KEY, item_id INT NOT NULL, quantity INT NOT NULL, \
                 INDEX orders_item (item_id, quantity), CONSTRAINT orders_item_fk FOREIGN KEY (item_id) \
                 REFERENCES {d}.items(id))"
            ),
            format!("INSERT INTO {d}.items (name, price) VALUES ('apple', 1.25), ('pear', 2.50), ('plum', 0.10)"),
            format!("INSERT INTO {d}.orders VALUES (1, 1, 3)"),
            format!(
                "CREATE FUNCTION {d}.evil() RETURNS INT MODIFIES SQL DATA \
                 BEGIN INSERT INTO {d}.items (name) VALUES ('evil'); RETURN 1; END"
            ),
        ] {
            fixture.admin(&statement).await;
        }
        fixture
    }

    pub async fn admin(&self, sql: &str) {
        let mut connection = sqlx::MySqlConnection::connect(&self.base_url).await.expect("connect to MariaDB");
        connection.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))).await.expect("fixture SQL");
        let _ = connection.close().await;
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let mut connection = sqlx::MySqlConnection::connect(&self.base_url).await.expect("connect to MariaDB");
        let value: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut connection).await.expect("scalar");
        let _ = connection.close().await;
        value
    }

    pub async fn cleanup(&self) {
        self.admin(&format!("DROP DATABASE IF EXISTS {}", self.database)).await;
    }
}

/// A per-test SQLite file with the fixture tables.
pub struct Sqlite {
    pub path: PathBuf,
    pub url: String,
}

impl Sqlite {
    pub async fn new(test: &str) -> Self {
        let directory = std::env::temp_dir().join("rampart-sql-tests");
        std::fs::create_dir_all(&directory).expect("temp dir");
        let path = directory.join(format!("{test}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}", path.display());
        let fixture = Self { path, url };
        fixture
            .admin(
                "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, price REAL DEFAULT 0,
                     note TEXT, created TEXT DEFAULT '2024-01-02');
                 CREATE TABLE orders (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id),
                     quantity INTEGER NOT NULL);
                 CREATE INDEX orders_item ON orders (item_id, quantity);
                 INSERT INTO items (name, price) VALUES ('apple', 1.25), ('pear', 2.5), ('plum', 0.1);
                 INSERT INTO orders VALUES (1, 1, 3);",
            )
            .await;
        fixture
    }

    pub async fn admin(&self, sql: &str) {
        let url = format!("{}?mode=rwc", self.url);
        let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("open SQLite");
        connection.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))).await.expect("fixture SQL");
        let _ = connection.close().await;
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let mut connection = sqlx::SqliteConnection::connect(&self.url).await.expect("open SQLite");
        let value: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut connection).await.expect("scalar");
        let _ = connection.close().await;
        value
    }

    pub fn cleanup(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A toolbox with one database `name` at `url`, plus `extra` settings.
pub fn toolbox(name: &str, url: &str, extra: Value) -> SqlToolbox {
    let mut database = json!({ "url": url, "max_rows": 50, "statement_timeout_ms": 1000 });
    if let (Some(database), Value::Object(extra)) = (database.as_object_mut(), extra) {
        database.extend(extra);
    }
    SqlToolbox::from_config(json!({ "databases": { name: database } })).expect("valid [sql] config")
}

/// Grants database scopes by exact name; denies everything else, like the policy would.
struct ScopeGuard {
    grants: Vec<(String, Access)>,
}

#[async_trait]
impl Guard for ScopeGuard {
    fn authorize(&self, _: &Caller, request: &Request<'_>) -> Result<(), Denied> {
        let granted = match request {
            Request::Tool { .. } => true,
            Request::Database { name, access } => {
                self.grants.iter().any(|(granted, grant)| granted == name && grant.satisfies(*access))
            }
            _ => false,
        };
        if granted { Ok(()) } else { Err(Denied { missing: request.to_string() }) }
    }

    async fn admit(&self, _: &Caller, _: &str, _: Option<&str>) -> Result<Admission, Refusal> {
        Ok(Admission::default())
    }

    async fn record(&self, _: CallRecord) -> Result<(), Refusal> {
        Ok(())
    }
}

/// A caller holding `grants`.
pub fn caller(grants: &[(&str, Access)]) -> CallContext {
    let principal = Principal { id: "agent".into(), kind: PrincipalKind::ApiToken, roles: vec!["agent".into()] };
    let guard = ScopeGuard { grants: grants.iter().map(|(name, access)| ((*name).to_owned(), *access)).collect() };
    CallContext::detached(Caller::local(principal), Arc::new(guard))
}

/// Calls `tool`; the structured result, or the error's text (`Denied:`-prefixed for policy
/// refusals, `Invalid:` for bad arguments).
pub async fn call(toolbox: &SqlToolbox, context: &CallContext, tool: &str, arguments: Value) -> Result<Value, String> {
    let arguments = match arguments {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    match toolbox.call_tool(tool, arguments, context).await {
        Ok(output) => {
            assert!(!output.is_error);
            Ok(output.structured_content.unwrap_or(Value::Null))
        }
        Err(ToolError::Failed(message)) => Err(message),
        Err(ToolError::Denied(denied)) => Err(format!("Denied: {denied}")),
        Err(ToolError::InvalidArguments(message)) => Err(format!("Invalid: {message}")),
        Err(other) => Err(format!("Other: {other}")),
    }
}

/// `sql_query` on database `name` with `params`.
pub async fn query(
    toolbox: &SqlToolbox,
    context: &CallContext,
    name: &str,
    sql: &str,
    params: Value,
) -> Result<Value, String> {
    call(toolbox, context, "sql_query", json!({ "database": name, "query": sql, "params": params })).await
}

/// The rows of a query result, as JSON.
pub fn rows(result: &Value) -> Vec<Value> {
    result["rows"].as_array().cloned().unwrap_or_default()
}
