//! Property tests of the analyser (issue #19). Statements come from a small grammar of what
//! agents send and what attacks look like: queries with joins, subqueries, nested and
//! recursive CTEs, set operations and function calls (harmless ones and the deny-list's);
//! INSERT/UPDATE/DELETE (also inside CTEs), DDL, PRAGMA, ATTACH, VACUUM, COPY, SET,
//! transaction control, `SELECT … INTO`, `FOR UPDATE`, EXPLAIN [ANALYZE], several
//! statements, comments, any letter case.
//!
//! - Whatever [`read_only`] accepts for SQLite really is read-only: run, as accepted,
//!   inside a transaction on an in-memory SQLite database opened read-write (none of the
//!   engine's other layers: no `mode=ro`, no `query_only`, no commit hook), it changes no
//!   row, schema, setting or attachment (row checksums, `schema_version`,
//!   `total_changes()`, `PRAGMA database_list`, compared before and after).
//! - What the grammar knows writes, locks or reaches the host is refused in every dialect.
//! - What [`writable`] accepts leaves the call's transaction open and attaches nothing.
//! - Nothing panics or overflows the stack, whatever the text (random text, token soup,
//!   chains of operators up to [`MAX_STATEMENT_BYTES`]).
//!
//! `PROPTEST_CASES` sets the number of cases (default 256); `bench/fuzz.sh` runs them long.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use proptest::{
    prelude::*,
    sample::select,
    test_runner::{Config as ProptestConfig, TestCaseError, TestRunner},
};
use sqlx::{AssertSqlSafe, Connection, Executor, Row, SqliteConnection};

use super::*;

/// Statement text and whether it must be refused as read-only (it writes, locks, reaches
/// the host or controls the session, whatever the dialect).
#[derive(Debug, Clone)]
struct Sql {
    text: String,
    refuse: bool,
}

fn sql(text: impl Into<String>, refuse: bool) -> Sql {
    Sql { text: text.into(), refuse }
}

/// `parts` joined by spaces; refused when any part is.
fn join(parts: &[&Sql]) -> Sql {
    Sql {
        text: parts.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(" "),
        refuse: parts.iter().any(|p| p.refuse),
    }
}

fn words(choices: &'static [&'static str], refuse: bool) -> BoxedStrategy<Sql> {
    select(choices).prop_map(move |text| sql(text, refuse)).boxed()
}

const HARMLESS_FUNCTIONS: &[&str] = &[
    "abs",
    "length",
    "upper",
    "lower",
    "coalesce",
    "typeof",
    "quote",
    "hex",
    "random",
    "count",
    "sum",
    "max",
    "json_extract",
    "printf",
    "changes",
    "total_changes",
    "last_insert_rowid",
    "sqlite_version",
    "pg_sleep",
    "instr",
    "substr",
    "replace",
    "round",
    "nullif",
    "ifnull",
    "date",
    "unicode",
    "zeroblob",
    "likely",
];

/// Names on the deny-list, spelled as an attacker might.
const DENIED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "LOAD_EXTENSION",
    "main.load_extension",
    "\"load_extension\"",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
    "pg_read_file",
    "pg_catalog.pg_read_file",
    "pg_ls_dir",
    "lo_import",
    "lo_export",
    "dblink",
    "dblink_exec",
    "set_config",
    "nextval",
    "setval",
    "pg_advisory_lock",
    "pg_notify",
    "load_file",
    "pg_terminate_backend",
    "txid_current",
    "pg_stat_reset",
];

fn expression() -> BoxedStrategy<Sql> {
    let leaf = words(
        &["1", "0", "NULL", "'x'", "-2", "1.5", "x'00ff'", "?1", "a", "b", "t.a", "rowid", "'; DROP TABLE t; --'"],
        false,
    );
    leaf.prop_recursive(4, 24, 3, |inner| {
        let function = prop_oneof![
            4 => select(HARMLESS_FUNCTIONS).prop_map(|name| sql(name, false)),
            1 => select(DENIED_FUNCTIONS).prop_map(|name| sql(name, true)),
        ];
        prop_oneof![
            (
                inner.clone(),
                select(&["+", "-", "*", "||", "=", "<>", "<", "AND", "OR", "LIKE", "IS"][..]),
                inner.clone()
            )
                .prop_map(|(l, op, r)| {
                    let op = sql(op, false);
                    join(&[&sql("(", false), &l, &op, &r, &sql(")", false)])
                }),
            (function, prop::collection::vec(inner.clone(), 0..3)).prop_map(|(name, args)| {
                let refuse = name.refuse || args.iter().any(|a| a.refuse);
                let args = args.iter().map(|a| a.text.as_str()).collect::<Vec<_>>().join(", ");
                sql(format!("{}({args})", name.text), refuse)
            }),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, t, e)| join(&[
                &sql("CASE WHEN", false),
                &c,
                &sql("THEN", false),
                &t,
                &sql("ELSE", false),
                &e,
                &sql("END", false)
            ])),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| join(&[&l, &sql("IN (", false), &r, &sql(")", false)])),
            inner.clone().prop_map(|e| join(&[&sql("CAST(", false), &e, &sql("AS INTEGER)", false)])),
            inner.prop_map(|e| join(&[&sql("(SELECT", false), &e, &sql("FROM t)", false)])),
        ]
    })
    .boxed()
}

/// A table to read from: a table, a view, a table-valued function, a subquery.
fn table(query: BoxedStrategy<Sql>) -> BoxedStrategy<Sql> {
    prop_oneof![
        4 => words(&["t", "u", "v", "main.t", "\"t\"", "sqlite_master", "json_each('[1,2]')", "pragma_table_info('t')"], false),
        1 => words(&["fsdir('.')", "fsdir", "zipfile('x.zip')", "pg_ls_dir('.')", "main.readfile('x')"], true),
        1 => query.prop_map(|q| join(&[&sql("(", false), &q, &sql(") AS s", false)])),
    ]
    .boxed()
}

fn select_core(query: BoxedStrategy<Sql>) -> BoxedStrategy<Sql> {
    let columns = prop_oneof![
        1 => Just(sql("*", false)),
        3 => prop::collection::vec(expression(), 1..3).prop_map(|columns| {
            let refuse = columns.iter().any(|c| c.refuse);
            sql(columns.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join(", "), refuse)
        }),
    ];
    (
        prop::option::weighted(0.2, Just(sql("DISTINCT", false))),
        columns,
        prop::option::weighted(0.1, words(&["INTO x", "INTO TEMP x", "INTO OUTFILE '/tmp/rampart-props'"], true)),
        prop::option::weighted(0.8, table(query.clone())),
        prop::option::weighted(0.2, (table(query), expression())),
        prop::option::weighted(0.4, expression()),
        prop::option::weighted(0.1, words(&["GROUP BY 1", "GROUP BY a HAVING count(*) > 0"], false)),
        prop::option::weighted(
            0.1,
            words(&["FOR UPDATE", "FOR SHARE", "FOR UPDATE SKIP LOCKED", "LOCK IN SHARE MODE"], true),
        ),
    )
        .prop_map(|(distinct, columns, into, from, joined, filter, group, lock)| {
            let mut parts = vec![sql("SELECT", false)];
            parts.extend(distinct);
            parts.push(columns);
            parts.extend(into);
            if let Some(from) = from {
                parts.extend([sql("FROM", false), from]);
                if let Some((other, on)) = joined {
                    parts.extend([sql("JOIN", false), other, sql("ON", false), on]);
                }
            }
            if let Some(filter) = filter {
                parts.extend([sql("WHERE", false), filter]);
            }
            parts.extend(group);
            parts.extend(lock);
            join(&parts.iter().collect::<Vec<_>>())
        })
        .boxed()
}

/// A data-modifying statement: refused read-only, wherever it stands.
fn write() -> BoxedStrategy<Sql> {
    let expr = expression();
    prop_oneof![
        (expr.clone(), expr.clone()).prop_map(|(a, b)| join(&[
            &sql("INSERT INTO t (a, b) VALUES (", true),
            &a,
            &sql(",", true),
            &b,
            &sql(")", true)
        ])),
        expr.clone().prop_map(|a| join(&[&sql("UPDATE t SET a =", true), &a, &sql("RETURNING a", true)])),
        expr.clone().prop_map(|a| join(&[&sql("DELETE FROM t WHERE", true), &a])),
        words(
            &[
                "INSERT INTO t SELECT * FROM t RETURNING *",
                "INSERT OR REPLACE INTO t (a, b) VALUES (1, 2)",
                "REPLACE INTO u (x) VALUES (9)",
                "INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT DO NOTHING",
                "INSERT INTO v (a, b) VALUES (3, 4)",
                "UPDATE t SET b = b || 'x'",
                "DELETE FROM u",
                "MERGE INTO t USING u ON t.a = u.x WHEN MATCHED THEN DELETE",
            ],
            true
        ),
    ]
    .boxed()
}

/// Everything else a statement can be besides a query.
fn other_statement() -> BoxedStrategy<Sql> {
    words(
        &[
            "CREATE TABLE z (a)",
            "CREATE TEMP TABLE z AS SELECT 1",
            "CREATE VIEW w AS SELECT 1",
            "CREATE INDEX i ON t (a)",
            "CREATE TRIGGER tr AFTER DELETE ON t BEGIN DELETE FROM u; END",
            "DROP TABLE t",
            "DROP VIEW v",
            "ALTER TABLE t ADD COLUMN c",
            "ALTER TABLE t RENAME TO t2",
            "PRAGMA user_version = 5",
            "PRAGMA query_only = 0",
            "PRAGMA writable_schema = 1",
            "PRAGMA table_info(t)",
            "PRAGMA journal_mode",
            "ATTACH DATABASE ':memory:' AS aux",
            "ATTACH ':memory:' AS aux",
            "DETACH aux",
            "VACUUM",
            "VACUUM INTO '/tmp/rampart-props.db'",
            "ANALYZE",
            "ANALYZE t",
            "REINDEX",
            "BEGIN",
            "BEGIN IMMEDIATE",
            "COMMIT",
            "END",
            "ROLLBACK",
            "SAVEPOINT s",
            "RELEASE s",
            "COPY t FROM '/etc/passwd'",
            "COPY (SELECT 1) TO '/tmp/rampart-props'",
            "SET search_path = evil",
            "SET @a = 1",
            "LOCK TABLE t",
            "CALL f()",
            "DO $$ BEGIN END $$",
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
            "GRANT ALL ON t TO public",
            "TRUNCATE t",
            "DECLARE c CURSOR FOR SELECT 1",
            "PREPARE p AS SELECT 1",
            "EXECUTE p",
            "LISTEN x",
            "NOTIFY x",
            "UNLOCK TABLES",
            "KILL 1",
        ],
        true,
    )
}

fn query() -> BoxedStrategy<Sql> {
    let leaf = prop_oneof![words(&["SELECT 1", "VALUES (1, 2)", "SELECT * FROM t", "TABLE t"], false),].boxed();
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            3 => select_core(inner.clone()),
            1 => (inner.clone(), select(&["UNION", "UNION ALL", "EXCEPT", "INTERSECT"][..]), inner.clone())
                .prop_map(|(l, op, r)| join(&[&l, &sql(op, false), &r])),
            1 => (prop::bool::ANY, prop_oneof![3 => inner.clone(), 1 => write()], inner.clone())
                .prop_map(|(recursive, cte, body)| {
                    let with = sql(if recursive { "WITH RECURSIVE c AS (" } else { "WITH c AS (" }, false);
                    join(&[&with, &cte, &sql(")", false), &body])
                }),
            1 => prop::option::weighted(0.2, Just(sql("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", false)))
                .prop_map(|endless| endless.unwrap_or_else(|| sql("SELECT 2", false))),
            1 => (inner, expression()).prop_map(|(q, limit)| join(&[&q, &sql("LIMIT", false), &limit])),
        ]
    })
    .boxed()
}

fn statement() -> BoxedStrategy<Sql> {
    let single = prop_oneof![
        6 => query(),
        2 => write(),
        2 => other_statement(),
        1 => words(&["SHOW TABLES", "DESCRIBE t", "EXPLAIN SELECT 1"], false),
        1 => prop_oneof![query(), write()].prop_map(|s| join(&[&sql("EXPLAIN", false), &s])),
        1 => prop_oneof![query(), write()].prop_map(|s| join(&[&sql("EXPLAIN QUERY PLAN", false), &s])),
        1 => query().prop_map(|s| join(&[&sql("EXPLAIN ANALYZE", true), &s])),
    ]
    .boxed();
    let comment = words(&["", "/* c */", "-- c\n", "/* ; DELETE FROM t; */", "-- ; DROP TABLE t\n", "/*! c */"], false);
    (
        comment.clone(),
        single.clone(),
        prop::option::weighted(0.15, single),
        comment,
        select(&["", ";", " ;", ";;"][..]),
        0..3u8,
    )
        .prop_map(|(before, first, second, after, end, case)| {
            let mut parts = vec![before, first];
            if let Some(second) = second {
                // Two statements are refused, whatever they are.
                parts.extend([sql(";", true), second]);
            }
            parts.extend([after, sql(end, false)]);
            let Sql { text, refuse } = join(&parts.iter().collect::<Vec<_>>());
            let text = match case {
                0 => text,
                1 => text.to_lowercase(),
                _ => text.to_uppercase(),
            };
            sql(text, refuse)
        })
        .boxed()
}

fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = config();
    let cases = config.cases;
    if let Err(failure) = TestRunner::new(config).run(&strategy, test) {
        panic!("{failure}");
    }
    println!("proptest: {cases} cases"); // counted by bench/fuzz.sh
}

/// The fixture: tables, a view, triggers that write elsewhere when their table changes.
const FIXTURE: &str = "
    CREATE TABLE t (a, b);
    CREATE TABLE u (x INTEGER PRIMARY KEY AUTOINCREMENT);
    CREATE TABLE log (msg);
    CREATE VIEW v AS SELECT a, b FROM t;
    CREATE TRIGGER t_insert AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('insert'); END;
    CREATE TRIGGER v_insert INSTEAD OF INSERT ON v BEGIN INSERT INTO t VALUES (new.a, new.b); END;
    INSERT INTO t VALUES (1, 'one'), (2, 'two'), (NULL, x'00ff');
    INSERT INTO u (x) VALUES (1), (2);
    DELETE FROM log;";

/// Everything a statement could change, as text.
const SNAPSHOT: &[&str] = &[
    "SELECT group_concat(quote(rowid) || ':' || quote(a) || ':' || quote(b), '|') FROM (SELECT rowid, * FROM t ORDER BY rowid)",
    "SELECT group_concat(quote(x), '|') FROM (SELECT x FROM u ORDER BY x)",
    "SELECT group_concat(quote(msg), '|') FROM log",
    "SELECT group_concat(type || name || coalesce(sql, ''), '|') FROM (SELECT * FROM sqlite_schema ORDER BY name)",
    "SELECT group_concat(type || name || coalesce(sql, ''), '|') FROM (SELECT * FROM sqlite_temp_schema ORDER BY name)",
    "SELECT group_concat(name || seq, '|') FROM sqlite_sequence",
    "SELECT group_concat(name, '|') FROM pragma_database_list",
    "SELECT total_changes()",
    "SELECT schema_version || ':' || (SELECT user_version FROM pragma_user_version) FROM pragma_schema_version",
    "SELECT (SELECT query_only FROM pragma_query_only) || (SELECT foreign_keys FROM pragma_foreign_keys) \
     || (SELECT application_id FROM pragma_application_id)",
];

async fn snapshot(connection: &mut SqliteConnection) -> Vec<Option<String>> {
    let mut values = Vec::new();
    for query in SNAPSHOT {
        let row = connection.fetch_one(*query).await.unwrap();
        values.push(
            row.try_get::<Option<String>, _>(0)
                .unwrap_or_else(|_| row.try_get::<i64, _>(0).ok().map(|n| n.to_string())),
        );
    }
    values
}

/// Runs `text` (every statement in it, as sqlx's SQLite driver does) for at most 100 ms, as
/// the engine's deadline would (an endless recursive CTE); errors are fine.
async fn execute(connection: &mut SqliteConnection, text: &str) {
    let deadline = Instant::now() + Duration::from_millis(100);
    let mut handle = connection.lock_handle().await.unwrap();
    handle.set_progress_handler(1000, move || Instant::now() < deadline);
    drop(handle);
    let _ = connection.fetch_all(sqlx::raw_sql(AssertSqlSafe(text.to_owned()))).await;
    connection.lock_handle().await.unwrap().remove_progress_handler();
}

/// A read-write in-memory SQLite with the fixture tables, and no other protection.
fn fixture_database(runtime: &tokio::runtime::Runtime) -> SqliteConnection {
    runtime.block_on(async {
        let mut connection = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        connection.execute(FIXTURE).await.unwrap();
        connection
    })
}

#[test]
fn what_read_only_accepts_changes_nothing_in_a_writable_sqlite() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut connection = fixture_database(&runtime);
    let connection = std::cell::RefCell::new(&mut connection);
    run(statement(), |statement| {
        let Ok(accepted) = read_only(Dialect::Sqlite, &statement.text, 11) else { return Ok(()) };
        prop_assert!(!statement.refuse, "accepted {:?} as {accepted:?}", statement.text);
        let mut connection = connection.borrow_mut();
        runtime.block_on(async {
            connection.execute("BEGIN").await.unwrap();
            let before = snapshot(&mut connection).await;
            execute(&mut connection, &accepted).await;
            let after = snapshot(&mut connection).await;
            // The statement may have ended the transaction; what matters is the state.
            let _ = connection.execute("ROLLBACK").await;
            prop_assert_eq!(before, after, "{:?} accepted as {:?} changed the database", statement.text, accepted);
            Ok(())
        })
    });
}

#[test]
fn what_the_grammar_knows_writes_is_refused_in_every_dialect() {
    run(statement(), |statement| {
        for dialect in [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
            let result = read_only(dialect, &statement.text, 11);
            prop_assert!(
                !(statement.refuse && result.is_ok()),
                "{dialect:?} accepted {:?} as {result:?}",
                statement.text
            );
            let _ = writable(dialect, &statement.text);
        }
        Ok(())
    });
}

#[test]
fn what_writable_accepts_keeps_the_transaction_and_attaches_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut connection = fixture_database(&runtime);
    let connection = std::cell::RefCell::new(&mut connection);
    run(statement(), |statement| {
        let Ok(accepted) = writable(Dialect::Sqlite, &statement.text) else { return Ok(()) };
        let mut connection = connection.borrow_mut();
        runtime.block_on(async {
            connection.execute("BEGIN").await.unwrap();
            execute(&mut connection, &accepted).await;
            let databases: Vec<String> = connection
                .fetch_all("SELECT name FROM pragma_database_list")
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let still_open = connection.execute("ROLLBACK").await.is_ok();
            if !still_open {
                // Put the fixture back for the next case.
                connection.execute("DROP TABLE IF EXISTS t").await.ok();
            }
            prop_assert!(still_open, "{:?} accepted as {:?} ended the transaction", statement.text, accepted);
            // `temp` appears once a temporary table was created (a write `sql_execute` may make).
            let attached: Vec<&String> =
                databases.iter().filter(|name| !["main", "temp"].contains(&name.as_str())).collect();
            prop_assert!(attached.is_empty(), "{:?} accepted as {:?} attached {attached:?}", statement.text, accepted);
            Ok(())
        })
    });
}

/// Text an agent might send by mistake or on purpose: random characters, SQL tokens in
/// any order, and chains of operators as long as the length limit allows.
fn any_text() -> BoxedStrategy<String> {
    let token = select(&[
        "SELECT",
        "FROM",
        "WHERE",
        "(",
        ")",
        ",",
        ";",
        "'",
        "\"",
        "`",
        "[",
        "]",
        "--",
        "/*",
        "*/",
        "/*!",
        "$$",
        "$1",
        "?",
        ":=",
        "::",
        "->",
        "->>",
        "@",
        "#",
        "\\",
        "1",
        "1e999",
        "x'0",
        "INSERT",
        "INTO",
        "WITH",
        "RECURSIVE",
        "UNION",
        "CASE",
        "END",
        "AS",
        "a",
        "t",
        "+",
        "-",
        "NOT",
        "NULL",
        "IS",
        "IN",
        "LIMIT",
        "OFFSET",
        "FETCH",
        "FOR",
        "UPDATE",
        "PRAGMA",
        "ATTACH",
        "COPY",
        "VALUES",
        "EXPLAIN",
        "ANALYZE",
        "\n",
        "\u{0}",
        "é",
        "\u{202e}",
    ]);
    prop_oneof![
        6 => "\\PC{0,200}",
        6 => ".{0,80}",
        6 => prop::collection::vec(token, 0..60).prop_map(|tokens| tokens.join(" ")),
        1 => chain(0..1_000),
        // Rare, because a long text takes a while to parse in a debug build.
        1 => prop::option::weighted(0.05, chain(0..MAX_STATEMENT_BYTES / 4)).prop_map(Option::unwrap_or_default),
    ]
    .boxed()
}

/// `SELECT 1` and a link repeated: a parse tree as deep as the count.
fn chain(count: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    let link = select(
        &["+1", " UNION SELECT 1", " AND 1", "::int", "[1]", " IS NULL", "->'x'", " || 'x'", "-(", "(", " NOT"][..],
    );
    (link, count).prop_map(|(link, count)| format!("SELECT 1{}", link.repeat(count)))
}

#[test]
fn no_text_panics_or_overflows_the_stack() {
    let dialect = select(&[Dialect::Postgres, Dialect::MySql, Dialect::Sqlite][..]);
    run((dialect, any_text()), |(dialect, text)| {
        let _ = read_only(dialect, &text, 11);
        let _ = writable(dialect, &text);
        Ok(())
    });
}
