//! Issue #13, the audit log's own defences: `rampart audit verify` compares every stored
//! column with the sealed record, and signed checkpoints make truncation and re-chaining
//! detectable by Rampart itself.

use serde_json::Value;

use crate::{
    security::{make_records, postgres_database, psql, sqlite},
    support::{Server, TempDir, run},
};

/// `rampart audit verify ARGS` against `env`: (exit code, stdout and stderr).
fn verify(env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let (code, stdout, stderr) = run(&[&["audit", "verify"], args].concat(), env, None);
    (code, format!("{stdout}{stderr}"))
}

/// The last seq `audit verify --json` reports on an intact log.
fn last_seq(env: &[(&str, &str)]) -> u64 {
    let (code, stdout, stderr) = run(&["audit", "verify", "--json"], env, None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    summary["last_seq"].as_u64().unwrap()
}

/// Each edit of a column `audit search` filters on, with what `verify` must say about it
/// (`{last}`: the last record's seq). Record 4 is a call of the admin token.
fn column_edits(last: u64) -> Vec<(String, Vec<String>)> {
    let said = |column: &str, stored: &str| vec![format!("record 4 was edited"), format!("'{column}'"), stored.into()];
    vec![
        ("UPDATE audit_records SET principal = 'someone-else' WHERE seq = 4".into(), said("principal", "someone-else")),
        ("UPDATE audit_records SET tool = 'system_health' WHERE seq = 4".into(), said("tool", "system_health")),
        ("UPDATE audit_records SET tool = NULL WHERE seq = 4".into(), said("tool", "NULL")),
        ("UPDATE audit_records SET time_ms = time_ms - 86400000 WHERE seq = 4".into(), said("time_ms", "")),
        // The last record's seq: the chain alone cannot see this one (its order is unchanged).
        (
            format!("UPDATE audit_records SET seq = {} WHERE seq = {last}", last + 1000),
            vec![format!("record {last} was edited"), "'seq'".into(), format!("{}", last + 1000)],
        ),
    ]
}

fn assert_detected(code: i32, output: &str, edit: &str, expected: &[String]) {
    assert_eq!(code, 1, "{edit}: {output}");
    assert!(output.contains("TAMPERED"), "{edit}: {output}");
    for needle in expected {
        assert!(output.contains(needle.as_str()), "{edit}: says {needle:?}: {output}");
    }
}

#[tokio::test]
async fn editing_any_stored_column_is_detected_in_sqlite() {
    let server = Server::start(&[]);
    let admin = server.admin_token();
    make_records(&server, &admin).await;
    let data = server.stop();
    let dir = data.0.to_str().unwrap().to_owned();
    let last = last_seq(&[("RAMPART_DATA_DIR", &dir)]);
    for (edit, expected) in column_edits(last) {
        let copy = TempDir::new("columns");
        std::fs::copy(data.0.join("rampart.db"), copy.0.join("rampart.db")).unwrap();
        sqlite(&copy.0.join("rampart.db"), &edit);
        let (code, output) = verify(&[("RAMPART_DATA_DIR", copy.0.to_str().unwrap())], &[]);
        assert_detected(code, &output, &edit, &expected);
    }
}

#[tokio::test]
async fn editing_any_stored_column_is_detected_in_postgres() {
    let Some(url) = postgres_database("columns") else { return };
    let env = [("RAMPART_DATABASE_URL", url.as_str())];
    let server = Server::start_with_env(&[], &env);
    let admin = server.admin_token();
    make_records(&server, &admin).await;
    drop(server);
    let last = last_seq(&env);
    for (edit, expected) in column_edits(last) {
        psql(&url, "BEGIN; CREATE TABLE pristine AS SELECT * FROM audit_records; COMMIT;");
        psql(&url, &edit);
        let (code, output) = verify(&env, &[]);
        psql(
            &url,
            "BEGIN; DELETE FROM audit_records; INSERT INTO audit_records SELECT * FROM pristine; DROP TABLE pristine; COMMIT;",
        );
        assert_detected(code, &output, &edit, &expected);
        assert_eq!(verify(&env, &[]).0, 0, "restored after {edit}");
    }
}
