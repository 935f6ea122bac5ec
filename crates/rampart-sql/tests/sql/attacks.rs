//! Adversarial statements through `sql_query`, on each engine: stacked statements,
//! writable CTEs, `SELECT INTO`, locking reads, transaction tricks, `set_config`, file and
//! network functions in expressions and in FROM, comment and case tricks, a function that
//! writes behind a SELECT, a sleep past the timeout, results far over the row cap. Every
//! refusal is checked by message; afterwards the data is unchanged, and on PostgreSQL the
//! tables' write counters (`pg_stat_user_tables`) did not move after any attempt.

use std::time::{Duration, Instant};

use rampart_core::Access;
use serde_json::{Value, json};

use crate::support::{self, ITEMS, call, caller, query, rows, toolbox};

/// (statement, part of the refusal). `{s}` is the test's schema (PostgreSQL) or nothing.
type Attack = (&'static str, &'static str);

const STACKED: &str = "only a single statement is allowed";
const NOT_READ_ONLY: &str = "only a single read-only statement is allowed: found";
const FUNCTION: &str = "is not allowed: it has side effects or reaches files, the network or other sessions";

const POSTGRES_ATTACKS: &[Attack] = &[
    ("SELECT 1; DROP TABLE {s}.items", "only a single statement is allowed: found 2 (SELECT, DROP TABLE)"),
    ("COMMIT; DELETE FROM {s}.items", "only a single statement is allowed: found 2 (COMMIT, DELETE FROM)"),
    ("SELECT 1; COMMIT; DELETE FROM {s}.items", "found 3 (SELECT, COMMIT, DELETE FROM)"),
    ("/* read only */ DrOp TaBlE {s}.items", "only a single read-only statement is allowed: found DROP TABLE"),
    ("-- comment\nDELETE FROM {s}.items", "found DELETE FROM"),
    ("UPDATE {s}.items SET price = 0", "found UPDATE"),
    ("INSERT INTO {s}.items (name) VALUES ('x') RETURNING id", "found INSERT INTO"),
    ("WITH gone AS (DELETE FROM {s}.items RETURNING *) SELECT count(*) FROM gone", "found DELETE FROM"),
    ("WITH a AS (SELECT 1), b AS (UPDATE {s}.items SET price = 0 RETURNING 1) SELECT * FROM a", "found UPDATE"),
    ("SELECT * INTO {s}.stolen FROM {s}.items", "SELECT … INTO is not allowed"),
    ("SELECT * FROM {s}.items FOR UPDATE", "FOR UPDATE / FOR SHARE (row locking) is not allowed"),
    ("SELECT * FROM {s}.items FOR SHARE SKIP LOCKED", "FOR UPDATE / FOR SHARE"),
    ("SET TRANSACTION READ WRITE", "found SET TRANSACTION"),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "found SET SESSION"),
    ("SELECT set_config('transaction_read_only', 'off', true)", "function set_config()"),
    ("SELECT pg_read_file('/etc/passwd')", "function pg_read_file()"),
    ("SELECT PG_CATALOG.\"pg_read_binary_file\"('/etc/passwd')", "function pg_read_binary_file()"),
    ("SELECT * FROM pg_ls_dir('.')", "function pg_ls_dir()"),
    ("SELECT i.name, f FROM {s}.items i, LATERAL pg_read_file('/etc/hostname') f", "function pg_read_file()"),
    ("SELECT * FROM dblink('dbname=test', 'DELETE FROM {s}.items') AS t(x text)", "function dblink()"),
    ("SELECT name FROM {s}.items WHERE length(dblink_exec('dbname=test', 'DELETE FROM x')) > 0", "dblink_exec()"),
    ("SELECT lo_import('/etc/passwd')", "function lo_import()"),
    ("SELECT lo_export(1, '/tmp/rampart-stolen')", "function lo_export()"),
    ("SELECT nextval('{s}.items_id_seq')", "function nextval()"),
    ("SELECT pg_advisory_lock(7)", "function pg_advisory_lock()"),
    ("SELECT pg_terminate_backend(pg_backend_pid())", "function pg_terminate_backend()"),
    ("SELECT query_to_xml('DELETE FROM {s}.items', true, true, '')", "function query_to_xml()"),
    ("EXPLAIN ANALYZE DELETE FROM {s}.items", "EXPLAIN ANALYZE runs the statement"),
    ("EXPLAIN (ANALYZE) DELETE FROM {s}.items", "EXPLAIN ANALYZE runs the statement"),
    ("PREPARE p AS DELETE FROM {s}.items", "found PREPARE"),
    ("COPY {s}.items TO '/tmp/rampart-stolen'", "found COPY"),
    ("DO $$ BEGIN DELETE FROM {s}.items; END $$", "does not parse"),
    ("CALL {s}.evil()", "found CALL"),
    // Past the analyser: the server refuses.
    ("SELECT {s}.evil()", "cannot execute INSERT in a read-only transaction (SQLSTATE 25006)"),
    (r#"SELECT U&"\0070g_read_file"('/etc/passwd')"#, "refused the statement"),
];

/// Each attack on a toolbox of its own, closed afterwards so that the server flushes the
/// session's statistics; then the counters must equal the fixture's four inserts.
#[tokio::test]
async fn postgres_refuses_every_attack_and_no_write_counter_moves() {
    let Some(url) = support::server_url("TEST_POSTGRES_URL", "postgres_attacks") else { return };
    let fixture = support::Postgres::new(&url, "attacks").await;
    let s = fixture.schema.clone();
    let counters = Counters { fixture: &fixture };
    assert_eq!(counters.settled(4).await, 4, "the fixture's 3 + 1 inserts are counted (the measure works)");
    let sequence = fixture.scalar(&format!("SELECT last_value FROM {s}.items_id_seq")).await;
    let context = caller(&[("pg", Access::Read)]);
    for (attempt, (statement, refusal)) in POSTGRES_ATTACKS.iter().enumerate() {
        let statement = statement.replace("{s}", &s);
        let application = format!("rampart_attack_{attempt}");
        let toolbox = toolbox("pg", &support::with_param(&url, "application_name", &application), json!({}));
        let result = query(&toolbox, &context, "pg", &statement, json!([])).await;
        let error = result.expect_err(&format!("not refused: {statement}"));
        assert!(error.contains(refusal), "{statement}\n  refused with: {error}\n  expected: {refusal}");
        drop(toolbox);
        counters.wait_closed(&application).await;
        assert_eq!(counters.writes().await, 4, "a write counter moved after: {statement}");
    }
    let same = fixture.scalar(&format!("SELECT last_value FROM {s}.items_id_seq")).await;
    assert_eq!(same, sequence, "the sequence did not move");
    assert_eq!(fixture.scalar(&format!("SELECT count(*) FROM {s}.items")).await, 3);

    // The measure sees a real write: the same procedure after one sql_execute.
    let application = "rampart_attack_control";
    let writer = toolbox("pg", &support::with_param(&url, "application_name", application), json!({"writable": true}));
    let written = call(
        &writer,
        &caller(&[("pg", Access::ReadWrite)]),
        "sql_execute",
        json!({"database": "pg", "statement": format!("INSERT INTO {s}.orders VALUES (2, 2, 1)")}),
    )
    .await;
    assert_eq!(written.unwrap()["rows_affected"], 1);
    drop(writer);
    counters.wait_closed(application).await;
    assert_eq!(counters.settled(5).await, 5, "the control write is counted");
    fixture.cleanup().await;
}

struct Counters<'a> {
    fixture: &'a support::Postgres,
}

impl Counters<'_> {
    /// Inserts + updates + deletes on the test schema's tables, aborted ones included.
    async fn writes(&self) -> i64 {
        let schema = &self.fixture.schema;
        self.fixture
            .scalar(&format!(
                "SELECT COALESCE(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::int8 FROM pg_stat_user_tables \
                 WHERE schemaname = '{schema}'"
            ))
            .await
    }

    /// Polls until the counters reach `expected` (statistics arrive asynchronously).
    async fn settled(&self, expected: i64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let writes = self.writes().await;
            if writes == expected || Instant::now() > deadline {
                return writes;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no session of `application` remains: a backend flushes its statistics
    /// when it exits.
    async fn wait_closed(&self, application: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application}'");
        while self.fixture.scalar(&sql).await > 0 {
            assert!(Instant::now() < deadline, "sessions of {application} did not close");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const MYSQL_ATTACKS: &[Attack] = &[
    ("SELECT 1; DROP TABLE items", "only a single statement is allowed: found 2 (SELECT, DROP TABLE)"),
    ("COMMIT; DELETE FROM items", "found 2 (COMMIT, DELETE FROM)"),
    ("/* read */ DeLeTe FROM items", "found DELETE FROM"),
    ("/*!50000 DROP TABLE items */", "found DROP TABLE"),
    ("SELECT 1 /*!, load_file('/etc/passwd') */", "function load_file()"),
    ("SELECT load_file('/etc/passwd')", "function load_file()"),
    ("SELECT LOAD_FILE(CONCAT('/etc/', 'passwd'))", "function load_file()"),
    ("SELECT * FROM items FOR UPDATE", "FOR UPDATE / FOR SHARE"),
    ("SELECT * FROM items LOCK IN SHARE MODE", "does not parse"),
    ("SELECT name INTO @stolen FROM items LIMIT 1", "SELECT … INTO is not allowed"),
    ("SELECT * FROM items INTO OUTFILE '/tmp/rampart-stolen'", "does not parse"),
    ("SET SESSION TRANSACTION READ WRITE", "found SET"),
    ("SET TRANSACTION READ WRITE", "found SET TRANSACTION"),
    ("SELECT @a := 1", "variable assignment (:=)"),
    ("SELECT get_lock('rampart', 1)", "function get_lock()"),
    ("SELECT sleep(30)", "function sleep()"),
    ("SELECT benchmark(100000000, md5('x'))", "function benchmark()"),
    ("SELECT sys_exec('touch /tmp/rampart-owned')", "function sys_exec()"),
    ("INSERT INTO items (name) VALUES ('x')", "found INSERT INTO"),
    ("REPLACE INTO items (name) VALUES ('x')", "found REPLACE INTO"),
    ("HANDLER items OPEN", "does not parse"),
    ("CALL evil()", "found CALL"),
    // Past the analyser: the server refuses (ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION).
    ("SELECT evil()", "READ ONLY transaction"),
];

#[tokio::test]
async fn mariadb_refuses_every_attack_and_the_data_is_unchanged() {
    let Some(url) = support::server_url("TEST_MYSQL_URL", "mariadb_attacks") else { return };
    let fixture = support::MySql::new(&url, "attacks").await;
    let toolbox = toolbox("my", &fixture.url, json!({}));
    let context = caller(&[("my", Access::Read)]);
    for (statement, refusal) in MYSQL_ATTACKS {
        let error = query(&toolbox, &context, "my", statement, json!([])).await.expect_err(statement);
        assert!(error.contains(refusal), "{statement}\n  refused with: {error}\n  expected: {refusal}");
    }
    let d = &fixture.database;
    assert_eq!(fixture.scalar(&format!("SELECT count(*) FROM {d}.items")).await, 3);
    assert_eq!(fixture.scalar(&format!("SELECT CAST(SUM(price * 100) AS SIGNED) FROM {d}.items")).await, 385);
    assert_eq!(fixture.scalar(&format!("SELECT count(*) FROM {d}.orders")).await, 1);
    fixture.cleanup().await;
}

const SQLITE_ATTACKS: &[Attack] = &[
    ("SELECT 1; DROP TABLE items", "only a single statement is allowed: found 2 (SELECT, DROP TABLE)"),
    ("COMMIT; DELETE FROM items", "found 2 (COMMIT, DELETE FROM)"),
    ("/* */ dRoP tAbLe items", "found DROP TABLE"),
    ("WITH x AS (SELECT 1) DELETE FROM items", "found DELETE FROM"),
    ("INSERT INTO items (name) VALUES ('x') RETURNING id", "found INSERT INTO"),
    ("SELECT load_extension('/tmp/evil.so')", "function load_extension()"),
    ("SELECT readfile('/etc/passwd')", "function readfile()"),
    ("SELECT writefile('/tmp/rampart-owned', 'x')", "function writefile()"),
    ("SELECT * FROM fsdir('/')", "function fsdir()"),
    ("ATTACH DATABASE '/tmp/rampart-evil.db' AS evil", "found ATTACH DATABASE"),
    ("PRAGMA query_only = 0", "found PRAGMA"),
    ("VACUUM INTO '/tmp/rampart-stolen.db'", "does not parse"),
];

#[tokio::test]
async fn sqlite_refuses_every_attack_and_the_file_is_unchanged() {
    let fixture = support::Sqlite::new("attacks").await;
    let before = std::fs::read(&fixture.path).unwrap();
    let toolbox = toolbox("lite", &fixture.url, json!({}));
    let context = caller(&[("lite", Access::Read)]);
    for (statement, refusal) in SQLITE_ATTACKS {
        let error = query(&toolbox, &context, "lite", statement, json!([])).await.expect_err(statement);
        assert!(error.contains(refusal), "{statement}\n  refused with: {error}\n  expected: {refusal}");
    }
    drop(toolbox);
    assert_eq!(std::fs::read(&fixture.path).unwrap(), before, "the database file is byte for byte the same");
    fixture.cleanup();
}

/// Parameters are data: a classic injection string matches nothing and deletes nothing.
#[tokio::test]
async fn parameters_cannot_inject_statements() {
    let injection = json!(["x'; DELETE FROM items; --"]);
    let fixture = support::Sqlite::new("injection").await;
    let lite = toolbox("lite", &fixture.url, json!({}));
    let context = caller(&[("lite", Access::Read)]);
    let result = query(&lite, &context, "lite", "SELECT * FROM items WHERE name = ?", injection.clone()).await;
    assert_eq!(rows(&result.unwrap()).len(), 0);
    assert_eq!(fixture.scalar("SELECT count(*) FROM items").await, 3);
    fixture.cleanup();

    if let Some(url) = support::server_url("TEST_POSTGRES_URL", "parameters_cannot_inject_statements") {
        let fixture = support::Postgres::new(&url, "injection").await;
        let pg = toolbox("pg", &url, json!({}));
        let sql = format!("SELECT * FROM {}.items WHERE name = $1", fixture.schema);
        let result = query(&pg, &caller(&[("pg", Access::Read)]), "pg", &sql, injection.clone()).await;
        assert_eq!(rows(&result.unwrap()).len(), 0);
        assert_eq!(fixture.scalar(&format!("SELECT count(*) FROM {}.items", fixture.schema)).await, 3);
        fixture.cleanup().await;
    }
    if let Some(url) = support::server_url("TEST_MYSQL_URL", "parameters_cannot_inject_statements") {
        let fixture = support::MySql::new(&url, "injection").await;
        let my = toolbox("my", &fixture.url, json!({}));
        let result =
            query(&my, &caller(&[("my", Access::Read)]), "my", "SELECT * FROM items WHERE name = ?", injection).await;
        assert_eq!(rows(&result.unwrap()).len(), 0);
        assert_eq!(fixture.scalar(&format!("SELECT count(*) FROM {}.items", fixture.database)).await, 3);
        fixture.cleanup().await;
    }
}

/// A statement running past `statement_timeout_ms` comes back as a timeout, promptly, and
/// the toolbox keeps working.
async fn times_out(toolbox: &rampart_sql::SqlToolbox, name: &str, slow: &str) {
    let context = caller(&[(name, Access::Read)]);
    let started = Instant::now();
    let error = query(toolbox, &context, name, slow, json!([])).await.expect_err("the slow statement must fail");
    let elapsed = started.elapsed();
    assert!(error.contains("exceeded its time limit of 500 ms"), "{name}: {error}");
    assert!(elapsed < Duration::from_secs(3), "{name}: took {elapsed:?}");
    let after = query(toolbox, &context, name, "SELECT 1 AS one", json!([])).await.unwrap();
    assert_eq!(rows(&after), [json!([1])], "{name}: usable after a timeout");
}

#[tokio::test]
async fn slow_statements_time_out_on_every_engine() {
    let timeout = json!({"statement_timeout_ms": 500});
    let fixture = support::Sqlite::new("timeout").await;
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    times_out(&toolbox("lite", &fixture.url, timeout.clone()), "lite", endless).await;
    fixture.cleanup();
    if let Some(url) = support::server_url("TEST_POSTGRES_URL", "slow_statements_time_out") {
        times_out(&toolbox("pg", &url, timeout.clone()), "pg", "SELECT pg_sleep(30)").await;
    }
    if let Some(url) = support::server_url("TEST_MYSQL_URL", "slow_statements_time_out") {
        let cross = "SELECT count(*) FROM information_schema.columns a, information_schema.columns b, \
                     information_schema.columns c";
        times_out(&toolbox("my", &url, timeout), "my", cross).await;
    }
}

/// A result far over the row cap returns the cap, flagged truncated, quickly: with the
/// injected LIMIT, and with a limit the analyser cannot lower (a parameter), by streaming.
async fn caps_rows(toolbox: &rampart_sql::SqlToolbox, name: &str, huge: &str, huge_with_limit: &str) {
    let context = caller(&[(name, Access::Read)]);
    for (sql, params) in [(huge, json!([])), (huge_with_limit, json!([100_000_000]))] {
        let started = Instant::now();
        let result = query(toolbox, &context, name, sql, params).await.unwrap_or_else(|e| panic!("{name}: {sql}: {e}"));
        assert_eq!(result["row_count"], 50, "{name}: {sql}");
        assert_eq!(rows(&result).len(), 50);
        assert_eq!(result["truncated"], true);
        assert!(started.elapsed() < Duration::from_secs(5), "{name}: {sql}: took {:?}", started.elapsed());
    }
    let asked = call(toolbox, &context, "sql_query", json!({"database": name, "query": huge, "max_rows": 3})).await;
    let asked = asked.unwrap();
    assert_eq!((asked["row_count"].clone(), asked["truncated"].clone()), (json!(3), json!(true)));
    let more = call(toolbox, &context, "sql_query", json!({"database": name, "query": huge, "max_rows": 5000})).await;
    assert_eq!(more.unwrap()["row_count"], 50, "{name}: a caller cannot raise the configured cap");
}

#[tokio::test]
async fn results_over_the_row_cap_are_truncated_on_every_engine() {
    let fixture = support::Sqlite::new("row_cap").await;
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";
    let limited = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c LIMIT ?";
    caps_rows(&toolbox("lite", &fixture.url, json!({})), "lite", endless, limited).await;
    fixture.cleanup();
    if let Some(url) = support::server_url("TEST_POSTGRES_URL", "results_over_the_row_cap") {
        // In the select list the series is produced row by row (in FROM it would be
        // materialised whole first, which the timeout would end).
        let series = "SELECT generate_series(1, 100000000) AS g";
        let limited = "SELECT generate_series(1, 100000000) AS g LIMIT $1";
        caps_rows(&toolbox("pg", &url, json!({})), "pg", series, limited).await;
    }
    if let Some(url) = support::server_url("TEST_MYSQL_URL", "results_over_the_row_cap") {
        let cross = "SELECT a.ordinal_position FROM information_schema.columns a, information_schema.columns b";
        let limited = format!("{cross} LIMIT ?");
        caps_rows(&toolbox("my", &url, json!({})), "my", cross, &limited).await;
    }
}

/// The refusals do not depend on case or on where the comment sits.
#[tokio::test]
async fn refusals_name_what_was_found() {
    let fixture = support::Sqlite::new("messages").await;
    let toolbox = toolbox("lite", &fixture.url, json!({}));
    let context = caller(&[("lite", Access::Read)]);
    for (statement, expected) in [
        ("dRoP tAbLe items", format!("{NOT_READ_ONLY} DROP TABLE")),
        ("SELECT 1;/**/DROP TABLE items", format!("{STACKED}: found 2 (SELECT, DROP TABLE)")),
        ("SELECT readfile('x') FROM items", format!("function readfile() {FUNCTION}")),
    ] {
        assert_eq!(query(&toolbox, &context, "lite", statement, Value::Null).await, Err(expected));
    }
    assert_eq!(fixture.scalar("SELECT count(*) FROM items").await, ITEMS.len() as i64);
    fixture.cleanup();
}

/// One wide result is cut at the result size cap, not sent whole.
#[tokio::test]
async fn huge_cells_are_truncated_by_size() {
    let fixture = support::Sqlite::new("wide").await;
    let toolbox = toolbox("lite", &fixture.url, json!({}));
    let wide =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 40) SELECT x, zeroblob(1000000) FROM c";
    let result = query(&toolbox, &caller(&[("lite", Access::Read)]), "lite", wide, json!([])).await.unwrap();
    assert_eq!(result["truncated"], true);
    let count = result["row_count"].as_u64().unwrap();
    assert!((1..40).contains(&count), "{count} rows of 2 MB of hex each stay under 8 MiB");
    fixture.cleanup();
}
