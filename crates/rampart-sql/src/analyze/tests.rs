//! The analyser as a table: statement in, SQL to run or refusal out. The same attacks run
//! against the real databases in `tests/`; these pin down what the first layer alone does.

use super::*;

/// The row cap used throughout (a limit of 10 rows, plus one).
const CAP: u64 = 11;

/// `expected`: `Ok(sql)` for the exact SQL that would run, `Err(text)` for a part of the
/// refusal's message.
fn check(dialect: Dialect, statement: &str, expected: Result<&str, &str>) {
    let actual = read_only(dialect, statement, CAP);
    match (&actual, expected) {
        (Ok(sql), Ok(want)) => assert_eq!(sql, want, "{dialect:?}: {statement}"),
        (Err(rejection), Err(want)) => {
            let message = rejection.to_string();
            assert!(message.contains(want), "{dialect:?}: {statement}\n  refused with: {message}\n  expected: {want}");
        }
        _ => panic!("{dialect:?}: {statement}\n  got: {actual:?}\n  expected: {expected:?}"),
    }
}

fn check_write(dialect: Dialect, statement: &str, expected: Result<&str, &str>) {
    let actual = writable(dialect, statement);
    match (&actual, expected) {
        (Ok(sql), Ok(want)) => assert_eq!(sql, want, "{dialect:?}: {statement}"),
        (Err(rejection), Err(want)) => {
            let message = rejection.to_string();
            assert!(message.contains(want), "{dialect:?}: {statement}\n  refused with: {message}\n  expected: {want}");
        }
        _ => panic!("{dialect:?}: {statement}\n  got: {actual:?}\n  expected: {expected:?}"),
    }
}

const FUNCTION: &str = "is not allowed: it has side effects";

#[test]
fn postgres_reads_are_accepted_and_capped() {
    use Dialect::Postgres as P;
    check(P, "select 1", Ok("SELECT 1 LIMIT 11"));
    check(P, "SELECT * FROM t LIMIT 5", Ok("SELECT * FROM t LIMIT 5"));
    check(P, "SELECT * FROM t LIMIT 500 OFFSET 2", Ok("SELECT * FROM t LIMIT 11 OFFSET 2"));
    check(P, "SELECT * FROM t OFFSET 2", Ok("SELECT * FROM t LIMIT 11 OFFSET 2"));
    check(P, "SELECT * FROM t LIMIT $1", Ok("SELECT * FROM t LIMIT $1"));
    check(P, "SELECT * FROM t FETCH FIRST 5 ROWS ONLY", Ok("SELECT * FROM t FETCH FIRST 5 ROWS ONLY"));
    check(P, "WITH x AS (SELECT 1 AS a) SELECT a FROM x", Ok("WITH x AS (SELECT 1 AS a) SELECT a FROM x LIMIT 11"));
    check(P, "VALUES (1), (2);", Ok("VALUES (1), (2) LIMIT 11"));
    check(P, "SELECT $1::int + 1 -- trailing comment", Ok("SELECT $1::INT + 1 LIMIT 11"));
    check(P, "EXPLAIN SELECT * FROM t", Ok("EXPLAIN SELECT * FROM t"));
    check(P, "EXPLAIN (ANALYZE false) SELECT 1", Ok("EXPLAIN (ANALYZE false) SELECT 1"));
    check(P, "SHOW statement_timeout", Ok("SHOW statement_timeout"));
    check(P, "SELECT pg_sleep(10)", Ok("SELECT pg_sleep(10) LIMIT 11"));
    check(P, "SELECT 'it''s', E'a\\nb'", Ok("SELECT 'it''s', E'a\\nb' LIMIT 11"));
}

#[test]
fn stacked_statements_are_refused() {
    for dialect in [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
        check(
            dialect,
            "SELECT 1; DROP TABLE t",
            Err("only a single statement is allowed: found 2 (SELECT, DROP TABLE)"),
        );
        check(dialect, "COMMIT; DELETE FROM t", Err("found 2 (COMMIT, DELETE FROM)"));
        check(dialect, "SELECT 1 /* ; */ ; /* x */ DrOp TaBlE t", Err("found 2 (SELECT, DROP TABLE)"));
        // A no-break space is no separator to sqlparser (nor to the servers): refused either way.
        assert!(read_only(dialect, "SELECT 1;\u{a0}DROP TABLE t", CAP).is_err());
        check(dialect, "", Err("no statement found"));
        check(dialect, " ; -- nothing", Err("no statement found"));
    }
}

#[test]
fn writes_and_locks_are_refused_anywhere_in_the_tree() {
    use Dialect::Postgres as P;
    check(P, "DROP TABLE t", Err("only a single read-only statement is allowed: found DROP TABLE"));
    check(P, "/* select */ dElEtE FROM t", Err("found DELETE FROM"));
    check(P, "INSERT INTO t VALUES (1)", Err("found INSERT INTO"));
    check(P, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", Err("found DELETE FROM"));
    check(P, "WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT 1", Err("found UPDATE"));
    check(P, "WITH a AS (SELECT 1), b AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT 1", Err("found INSERT INTO"));
    check(P, "SELECT * INTO newt FROM t", Err("SELECT … INTO is not allowed"));
    check(P, "SELECT * FROM t FOR UPDATE", Err("FOR UPDATE / FOR SHARE"));
    check(P, "SELECT * FROM t FOR SHARE NOWAIT", Err("FOR UPDATE / FOR SHARE"));
    check(P, "SELECT * FROM (SELECT * FROM t FOR UPDATE) s", Err("FOR UPDATE / FOR SHARE"));
    check(P, "SET TRANSACTION READ WRITE", Err("found SET TRANSACTION"));
    check(P, "SET default_transaction_read_only = off", Err("found SET"));
    check(P, "BEGIN", Err("found BEGIN"));
    check(P, "COPY t TO '/tmp/out'", Err("found COPY"));
    check(P, "CALL p()", Err("found CALL"));
    check(P, "EXPLAIN ANALYZE SELECT 1", Err("EXPLAIN ANALYZE runs the statement"));
    check(P, "EXPLAIN (ANALYZE) SELECT 1", Err("EXPLAIN ANALYZE"));
    check(P, "EXPLAIN (FORMAT JSON, ANALYZE true) SELECT 1", Err("EXPLAIN ANALYZE"));
    check(P, "EXPLAIN DELETE FROM t", Err("found DELETE FROM"));
}

#[test]
fn deny_listed_functions_are_refused_wherever_they_appear() {
    use Dialect::Postgres as P;
    let cases = [
        ("SELECT set_config('transaction_read_only', 'off', false)", "set_config"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("SELECT pg_catalog.PG_READ_BINARY_FILE('/etc/passwd')", "pg_read_binary_file"),
        ("SELECT \"pg_read_file\"('/etc/passwd')", "pg_read_file"),
        ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
        ("SELECT * FROM t, LATERAL pg_read_file('x') f", "pg_read_file"),
        ("SELECT * FROM dblink('host=evil', 'SELECT 1') AS r(a int)", "dblink"),
        ("SELECT (SELECT max(a) FROM (SELECT dblink_exec('x', 'DROP TABLE t') a) s)", "dblink_exec"),
        ("SELECT lo_import('/etc/passwd')", "lo_import"),
        ("SELECT lo_export(1, '/tmp/x')", "lo_export"),
        ("SELECT nextval('s')", "nextval"),
        ("SELECT setval('s', 1)", "setval"),
        ("SELECT txid_current()", "txid_current"),
        ("SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
        ("SELECT pg_try_advisory_xact_lock(1)", "pg_try_advisory_xact_lock"),
        ("SELECT pg_notify('c', 'x')", "pg_notify"),
        ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
        ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
        ("SELECT query_to_xml('DELETE FROM t', true, true, '')", "query_to_xml"),
        ("SELECT 1 UNION SELECT length(pg_read_file('x'))", "pg_read_file"),
        ("SELECT * FROM t ORDER BY pg_read_file('x')", "pg_read_file"),
        ("SELECT * FROM t WHERE a IN (SELECT pg_ls_dir('.'))", "pg_ls_dir"),
        ("SELECT count(*) FILTER (WHERE set_config('a.b', 'c', true) IS NULL) FROM t", "set_config"),
        ("SELECT CASE WHEN true THEN pg_read_file('x') END", "pg_read_file"),
        ("WITH x AS (SELECT pg_read_file('x')) SELECT * FROM x", "pg_read_file"),
        ("EXPLAIN SELECT pg_read_file('x')", "pg_read_file"),
    ];
    for (statement, function) in cases {
        check(P, statement, Err(&format!("function {function}() {FUNCTION}")));
    }
}

#[test]
fn unicode_escapes_do_not_hide_a_function() {
    // PostgreSQL would read U&"\0070g_read_file" as pg_read_file; sqlparser reads `U & "…"`,
    // and the re-rendered statement keeps the spaces, so PostgreSQL reads it the same way.
    check(
        Dialect::Postgres,
        r#"SELECT U&"\0070g_read_file"('/etc/passwd')"#,
        Ok(r#"SELECT U & "\0070g_read_file"('/etc/passwd') LIMIT 11"#),
    );
}

#[test]
fn mysql_specific_tricks_are_refused() {
    use Dialect::MySql as M;
    check(M, "SELECT load_file('/etc/passwd')", Err("function load_file()"));
    check(M, "SELECT 1 /*! , load_file('/etc/passwd') */", Err("function load_file()"));
    check(M, "SELECT sleep(10)", Err("function sleep()"));
    check(M, "SELECT benchmark(100000000, md5('a'))", Err("function benchmark()"));
    check(M, "SELECT get_lock('x', 1)", Err("function get_lock()"));
    check(M, "SELECT sys_exec('id')", Err("function sys_exec()"));
    check(M, "SELECT @a := 1", Err("variable assignment (:=) is not allowed"));
    check(M, "SELECT 1 INTO @a", Err("SELECT … INTO"));
    check(M, "SELECT 1 INTO OUTFILE '/tmp/x'", Err("does not parse as mysql SQL"));
    check(M, "SELECT * FROM t LOCK IN SHARE MODE", Err("does not parse"));
    check(M, "SELECT * FROM t FOR UPDATE", Err("FOR UPDATE"));
    check(M, "SET SESSION TRANSACTION READ WRITE", Err("found SET"));
    check(M, "HANDLER t OPEN", Err("does not parse"));
}

#[test]
fn mysql_reads_keep_their_escapes() {
    use Dialect::MySql as M;
    check(M, r"SELECT 'it\'s', 'a\\b'", Ok(r"SELECT 'it\'s', 'a\\b' LIMIT 11"));
    check(M, "SELECT * FROM t LIMIT 2, 500", Ok("SELECT * FROM t LIMIT 2, 11"));
    check(M, "SELECT * FROM t WHERE a = ?", Ok("SELECT * FROM t WHERE a = ? LIMIT 11"));
    check(M, "SHOW TABLES", Ok("SHOW TABLES"));
    check(M, "DESCRIBE t", Ok("DESCRIBE t"));
}

#[test]
fn sqlite_file_functions_and_pragmas_are_refused() {
    use Dialect::Sqlite as S;
    check(S, "SELECT load_extension('/tmp/evil.so')", Err("function load_extension()"));
    check(S, "SELECT readfile('/etc/passwd')", Err("function readfile()"));
    check(S, "SELECT writefile('/tmp/x', 'y')", Err("function writefile()"));
    check(S, "SELECT * FROM fsdir('/')", Err("function fsdir()"));
    check(S, "SELECT name FROM fsdir WHERE dir = '/'", Err("function fsdir()"));
    check(S, "PRAGMA query_only = 0", Err("found PRAGMA"));
    check(S, "ATTACH DATABASE '/tmp/x.db' AS x", Err("found ATTACH DATABASE"));
    check(S, "SELECT * FROM pragma_table_info('t')", Ok("SELECT * FROM pragma_table_info('t') LIMIT 11"));
    check(S, "SELECT * FROM t WHERE a = ?1", Ok("SELECT * FROM t WHERE a = ?1 LIMIT 11"));
}

#[test]
fn writes_take_one_statement_without_session_control_or_file_access() {
    use Dialect::{Postgres as P, Sqlite as S};
    check_write(P, "INSERT INTO t VALUES (nextval('s'))", Ok("INSERT INTO t VALUES (nextval('s'))"));
    check_write(P, "UPDATE t SET a = $1 WHERE id = $2", Ok("UPDATE t SET a = $1 WHERE id = $2"));
    check_write(P, "INSERT INTO t VALUES (1); DROP TABLE u", Err("only a single statement is allowed"));
    check_write(P, "COMMIT", Err("COMMIT is not allowed: each call runs in its own transaction"));
    check_write(P, "SET search_path = evil", Err("SET is not allowed"));
    check_write(P, "COPY t FROM '/etc/passwd'", Err("COPY is not allowed"));
    check_write(P, "INSERT INTO t SELECT pg_read_file('/etc/passwd')", Err("function pg_read_file()"));
    check_write(P, "CALL dblink_exec('x')", Err("function dblink_exec()"));
    check_write(S, "ATTACH DATABASE '/tmp/x.db' AS x", Err("ATTACH DATABASE is not allowed"));
    check_write(S, "PRAGMA writable_schema = 1", Err("PRAGMA is not allowed"));
}

/// Found by the property tests (`props.rs`): a long chain of operators or set operations
/// parses into a tree as deep as the chain, and rendering, walking and dropping that tree
/// recurse once per level. `SELECT 1+1+…` of 60 KB (well under the 4 MiB body limit)
/// overflowed a 2 MiB stack (a tokio worker's, and a test thread's), which aborts the
/// whole server.
#[test]
fn long_operator_chains_neither_overflow_the_stack_nor_pass_the_length_limit() {
    use Dialect::{MySql as M, Postgres as P, Sqlite as S};
    let sum = format!("SELECT 1{}", "+1".repeat(30_000));
    assert!(read_only(S, &sum, CAP).is_ok_and(|sql| sql.ends_with("+ 1 LIMIT 11")));
    let unions = format!("SELECT 1{}", " UNION SELECT 1".repeat(10_000));
    assert!(read_only(P, &unions, CAP).is_ok());
    let ands = format!("UPDATE t SET a = 1 WHERE 1{}", " AND 1".repeat(25_000));
    assert!(writable(M, &ands).is_ok());
    let too_long = format!("SELECT 1{}", "+1".repeat(MAX_STATEMENT_BYTES / 2));
    for dialect in [P, M, S] {
        let refused = Err(Rejection::TooLong { bytes: too_long.len(), limit: MAX_STATEMENT_BYTES });
        assert_eq!(read_only(dialect, &too_long, CAP), refused);
        assert_eq!(writable(dialect, &too_long), refused);
    }
}

/// Found by the property tests (`props.rs`): sqlparser reads `TABLE name` (a query body in
/// a set operation or after WITH) by taking the next three tokens whatever they are, so
/// the two after a lone name vanished: `SELECT 1 UNION TABLE t; VACUUM` was accepted as one
/// statement, `SELECT 1 UNION TABLE t`, and `INSERT INTO x TABLE t; COMMIT` as the INSERT
/// alone. What ran was what had been checked, but not what was sent; the shorthand is
/// refused instead.
#[test]
fn the_table_shorthand_is_refused_because_the_parser_drops_what_follows_it() {
    use Dialect::{MySql as M, Postgres as P, Sqlite as S};
    let shorthand = "TABLE name";
    for dialect in [P, M, S] {
        check(dialect, "SELECT 1 UNION TABLE t; VACUUM", Err(shorthand));
        check(dialect, "WITH c AS (SELECT 1) TABLE t ; COMMIT", Err(shorthand));
        check(dialect, "SELECT 1 UNION TABLE s.t", Err(shorthand));
        assert!(read_only(dialect, "SELECT * FROM (SELECT 1 UNION TABLE t) AS x", CAP).is_err());
    }
    check_write(M, "INSERT INTO x TABLE t; COMMIT", Err(shorthand));
    check_write(S, "INSERT INTO x SELECT 1 UNION TABLE t; DELETE", Err(shorthand));
}
