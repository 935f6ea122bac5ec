//! Issue #13, the audit log's own defences: `rampart audit verify` compares every stored
//! column with the sealed record, and signed checkpoints make truncation and re-chaining
//! detectable by Rampart itself.

use std::path::{Path, PathBuf};

use rampart_audit::{AuditRecord, GENESIS_HASH, SealedRecord};
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
        ("UPDATE audit_records SET decision = 'deny' WHERE seq = 4".into(), said("decision", "deny")),
        ("UPDATE audit_records SET outcome = 'tool_error' WHERE seq = 4".into(), said("outcome", "tool_error")),
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

// ---- signed checkpoints ----

/// Checkpoints after every 3 records, none by time (the tests want them where the records
/// put them).
const CHECKPOINT_EVERY_3: &str = "[audit]\ncheckpoint_every = 3\ncheckpoint_interval_secs = 0\n";

/// Where a test's audit log lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Back {
    Sqlite,
    Postgres,
    Jsonl,
}

/// An audit log left by a server that signed checkpoints every 3 records: the first-run
/// token's record, then six calls (seven records), and the checkpoints of that run.
struct Logged {
    back: Back,
    /// The configuration and the JSON-lines audit file.
    dir: TempDir,
    /// The server's data directory: its SQLite store, signing key and checkpoints.
    data: TempDir,
    /// The PostgreSQL database, for `Back::Postgres`.
    url: Option<String>,
    /// What the server wrote on stderr.
    server_log: String,
}

impl Logged {
    /// `None`: PostgreSQL is not available (said loudly; CI requires it).
    async fn new(back: Back, name: &str) -> Option<Self> {
        let url = match back {
            Back::Postgres => Some(postgres_database(name)?),
            Back::Sqlite | Back::Jsonl => None,
        };
        let dir = TempDir::new("checkpoints");
        std::fs::write(dir.0.join("rampart.toml"), CHECKPOINT_EVERY_3).unwrap();
        let mut logged = Self { back, dir, data: TempDir::new("checkpoints-data"), url, server_log: String::new() };
        let config = logged.config().to_str().unwrap().to_owned();
        let env: Vec<(String, String)> =
            logged.env().into_iter().filter(|(key, _)| *key != "RAMPART_DATA_DIR").map(owned).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let data = std::mem::replace(&mut logged.data, TempDir(PathBuf::new()));
        let server = Server::start_in(data, &["--config", &config], &env);
        let admin = server.admin_token();
        make_records(&server, &admin).await;
        // The log once the server has stopped: checkpoints are signed in the background,
        // so one read while it runs may come before the first checkpoint's line.
        let mut server = server;
        let _ = server.terminate(15);
        server.stderr_eventually_contains("stopped");
        let server_log = server.stderr();
        logged.data = server.stop();
        logged.server_log = server_log;
        Some(logged)
    }

    fn config(&self) -> PathBuf {
        self.dir.0.join("rampart.toml")
    }

    fn audit_file(&self) -> PathBuf {
        self.dir.0.join("audit.jsonl")
    }

    /// The checkpoint file where the configuration puts it by default.
    fn checkpoint_file(&self) -> PathBuf {
        self.data.0.join("audit-checkpoints.jsonl")
    }

    /// What every command needs to find this log.
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("RAMPART_DATA_DIR", self.data.0.to_str().unwrap().to_owned()),
            ("RAMPART_CONFIG", self.config().to_str().unwrap().to_owned()),
        ];
        match self.back {
            Back::Sqlite => {}
            Back::Postgres => env.push(("RAMPART_DATABASE_URL", self.url.clone().unwrap())),
            Back::Jsonl => env.push(("RAMPART_AUDIT_FILE", self.audit_file().to_str().unwrap().to_owned())),
        }
        env
    }

    /// `rampart ARGS` on this log: (exit code, stdout, stderr).
    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run(args, &env, None)
    }

    /// `rampart audit verify ARGS`: (exit code, stdout and stderr).
    fn verify(&self, args: &[&str]) -> (i32, String) {
        let (code, stdout, stderr) = self.cli(&[&["audit", "verify"], args].concat());
        (code, format!("{stdout}{stderr}"))
    }

    /// The signed checkpoints the server wrote, in file order.
    fn checkpoints(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.checkpoint_file()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    /// The sequence numbers the checkpoints cover, ascending.
    fn checkpoint_seqs(&self) -> Vec<u64> {
        let mut seqs: Vec<u64> = self.checkpoints().iter().map(|c| c["seq"].as_u64().unwrap()).collect();
        seqs.sort_unstable();
        seqs
    }

    /// Every record, in chain order.
    fn records(&self) -> Vec<AuditRecord> {
        let (code, stdout, stderr) = self.cli(&["audit", "tail", "-n", "100000", "--json"]);
        assert_eq!(code, 0, "{stderr}");
        stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    /// Deletes the records from `seq` on, as whoever can write the store can.
    fn delete_from(&self, seq: u64) {
        let kept: Vec<SealedRecord> = self.records().into_iter().filter(|r| r.seq < seq).map(Into::into).collect();
        self.replace(&kept);
    }

    /// Replaces the whole log with `records`.
    fn replace(&self, records: &[SealedRecord]) {
        if self.back == Back::Jsonl {
            let lines: String = records.iter().map(|r| format!("{}\n", r.line())).collect();
            std::fs::write(self.audit_file(), lines).unwrap();
            return;
        }
        let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
        let mut sql = String::from("DELETE FROM audit_records;");
        for record in records {
            let tool = record.event.tool.as_deref().map_or("NULL".to_owned(), quote);
            sql.push_str(&format!(
                "INSERT INTO audit_records (seq, time_ms, principal, tool, decision, outcome, record) \
                 VALUES ({}, {}, {}, {tool}, {}, {}, {});",
                record.seq,
                record.event.time.as_millisecond(),
                quote(&record.event.principal),
                quote(record.event.decision.as_str()),
                quote(record.event.outcome.as_str()),
                quote(record.line())
            ));
        }
        match self.back {
            Back::Sqlite => sqlite(&self.data.0.join("rampart.db"), &sql),
            Back::Postgres => psql(self.url.as_deref().unwrap(), &format!("BEGIN; {sql} COMMIT;")),
            Back::Jsonl => unreachable!(),
        }
    }
}

fn owned((key, value): (&'static str, String)) -> (String, String) {
    (key.to_owned(), value)
}

/// `records` re-sealed from the genesis hash: a chain that verifies by itself.
fn rechain(records: Vec<AuditRecord>) -> Vec<SealedRecord> {
    let mut prev = GENESIS_HASH.to_owned();
    records
        .into_iter()
        .map(|record| {
            let sealed = SealedRecord::seal(record.event, record.seq, prev.clone());
            prev = sealed.hash.clone();
            sealed
        })
        .collect()
}

/// Moves `file` aside while `f` runs: what `verify` says without it.
fn without<T>(file: &Path, f: impl FnOnce() -> T) -> T {
    let aside = file.with_extension("aside");
    std::fs::rename(file, &aside).unwrap();
    let result = f();
    std::fs::rename(&aside, file).unwrap();
    result
}

#[tokio::test]
async fn a_server_signs_checkpoints_and_an_untouched_log_verifies_with_them() {
    let logged = Logged::new(Back::Sqlite, "untouched").await.unwrap();
    let checkpoints = logged.checkpoints();
    let seqs = logged.checkpoint_seqs();
    assert!(checkpoints.len() >= 2, "a checkpoint per 3 records and one at shutdown: {checkpoints:?}");
    assert_eq!(seqs.last(), Some(&7), "the last one covers the last record, stored at shutdown: {checkpoints:?}");
    let first = &checkpoints[0];
    for field in ["seq", "hash", "time", "key_id", "signature"] {
        assert!(!first[field].is_null(), "{field} in {first}");
    }
    assert!(
        logged.server_log.contains("audit checkpoint")
            && logged.server_log.contains(first["signature"].as_str().unwrap()),
        "the server log has each checkpoint: {}",
        logged.server_log
    );

    let key = logged.data.0.join("audit-signing-key.pem");
    let public = logged.data.0.join("audit-signing-key.pub.pem");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the signing key is private");
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));
    let public_pem = std::fs::read_to_string(&public).unwrap();
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{public_pem}");
    let (code, printed, stderr) = logged.cli(&["audit", "public-key"]);
    assert_eq!((code, printed.trim()), (0, public_pem.trim()), "{stderr}");

    let (code, output) = logged.verify(&[]);
    assert_eq!(code, 0, "{output}");
    assert!(output.starts_with("audit log intact: 7 records"), "{output}");
    let file = logged.checkpoint_file();
    let file = file.to_str().unwrap();
    assert!(output.contains(file) && output.contains(&format!("{} signed checkpoints", checkpoints.len())), "{output}");
    let (code, json, _) = logged.cli(&["audit", "verify", "--json"]);
    assert_eq!(code, 0, "{json}");
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["checkpoints"]["file"], file, "{json}");
    assert_eq!(json["checkpoints"]["checked"], checkpoints.len(), "{json}");
    assert_eq!(json["checkpoints"]["key_id"], first["key_id"], "{json}");
    let (code, output) = logged.verify(&["--checkpoints", file, "--public-key", public.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");

    // The signed head, for an operator to keep elsewhere.
    let (code, head, stderr) = logged.cli(&["audit", "checkpoint", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let head: Value = serde_json::from_str(head.trim()).unwrap();
    assert_eq!((head["seq"].as_u64(), &head["hash"]), (Some(7), &json["last_hash"]), "{head}");
    let (code, readable, stderr) = logged.cli(&["audit", "checkpoint"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(format!("{readable}{stderr}").contains("record 7"), "{readable}{stderr}");
}

/// Deleting the newest records leaves a chain that verifies by itself; the last signed
/// checkpoint names the record the log must reach.
async fn deleting_the_newest_records_is_detected(back: Back, name: &str) {
    let Some(logged) = Logged::new(back, name).await else { return };
    let seqs = logged.checkpoint_seqs();
    let (before_last, last) = (seqs[seqs.len() - 2], seqs[seqs.len() - 1]);
    logged.delete_from(before_last + 1);
    let (code, output) = without(&logged.checkpoint_file(), || logged.verify(&[]));
    assert_eq!(code, 0, "the chain alone cannot see it: {output}");
    let (code, output) = logged.verify(&[]);
    assert_eq!(code, 1, "{output}");
    let said = format!("records after {before_last} were deleted: a signed checkpoint covers record {last}");
    assert!(output.contains("TAMPERED") && output.contains(&said), "says {said:?}: {output}");
}

#[tokio::test]
async fn deleting_the_newest_records_is_detected_in_sqlite() {
    deleting_the_newest_records_is_detected(Back::Sqlite, "truncate").await;
}

#[tokio::test]
async fn deleting_the_newest_records_is_detected_in_postgres() {
    deleting_the_newest_records_is_detected(Back::Postgres, "truncate").await;
}

#[tokio::test]
async fn deleting_the_newest_records_is_detected_in_a_json_lines_file() {
    deleting_the_newest_records_is_detected(Back::Jsonl, "truncate").await;
}

/// Rewriting a record after the first checkpoint and re-sealing the whole chain: the chain
/// verifies by itself, but the next checkpoint's record has another hash.
async fn rewriting_and_rechaining_the_log_is_detected(back: Back, name: &str) {
    let Some(logged) = Logged::new(back, name).await else { return };
    let seqs = logged.checkpoint_seqs();
    let (first, next) = (seqs[0], seqs[1]);
    let mut records = logged.records();
    let changed = &mut records[usize::try_from(first).unwrap()];
    assert_eq!(changed.seq, first + 1);
    changed.event.principal = "someone-else".into();
    logged.replace(&rechain(records));
    let (code, output) = without(&logged.checkpoint_file(), || logged.verify(&[]));
    assert_eq!(code, 0, "the re-chained log verifies by itself: {output}");
    let (code, output) = logged.verify(&[]);
    assert_eq!(code, 1, "{output}");
    let said = format!("record {next} does not match its signed checkpoint");
    assert!(output.contains("TAMPERED") && output.contains("rewritten") && output.contains(&said), "{output}");
    if next > first + 1 {
        let between = format!("between records {} and {next}", first + 1);
        assert!(output.contains(&between), "says {between:?}: {output}");
    }
}

#[tokio::test]
async fn rewriting_and_rechaining_the_log_is_detected_in_sqlite() {
    rewriting_and_rechaining_the_log_is_detected(Back::Sqlite, "rechain").await;
}

#[tokio::test]
async fn rewriting_and_rechaining_the_log_is_detected_in_postgres() {
    rewriting_and_rechaining_the_log_is_detected(Back::Postgres, "rechain").await;
}

#[tokio::test]
async fn rewriting_and_rechaining_the_log_is_detected_in_a_json_lines_file() {
    rewriting_and_rechaining_the_log_is_detected(Back::Jsonl, "rechain").await;
}

#[tokio::test]
async fn a_checkpoint_does_not_verify_with_another_key() {
    let logged = Logged::new(Back::Sqlite, "wrong-key").await.unwrap();
    // Another installation's key: generated by its first audited command.
    let other = TempDir::new("other-key");
    let (code, _, stderr) = run(
        &["token", "create", "--name", "x", "--role", "reader"],
        &[("RAMPART_DATA_DIR", other.0.to_str().unwrap())],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let other_key = other.0.join("audit-signing-key.pub.pem");
    assert_ne!(
        std::fs::read(&other_key).unwrap(),
        std::fs::read(logged.data.0.join("audit-signing-key.pub.pem")).unwrap()
    );
    let first = logged.checkpoint_seqs()[0];
    let file = logged.checkpoint_file();
    let (code, output) =
        logged.verify(&["--checkpoints", file.to_str().unwrap(), "--public-key", other_key.to_str().unwrap()]);
    assert_eq!(code, 1, "{output}");
    let said = format!("checkpoint at line 1 of {} (record {first})", file.display());
    assert!(output.contains(&said) && output.contains("bad signature"), "says {said:?}: {output}");
}

/// `rampart audit checkpoint` prints a signed head an operator keeps elsewhere; a later
/// verification against it finds the records deleted since.
#[tokio::test]
async fn a_signed_head_kept_elsewhere_detects_a_later_truncation() {
    let logged = Logged::new(Back::Sqlite, "kept").await.unwrap();
    let (code, head, stderr) = logged.cli(&["audit", "checkpoint", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let kept = logged.dir.0.join("kept-elsewhere.jsonl");
    std::fs::write(&kept, &head).unwrap();
    std::fs::remove_file(logged.checkpoint_file()).unwrap();
    logged.delete_from(6);
    let (code, output) = logged.verify(&[]);
    assert_eq!(code, 0, "nothing to check it against: {output}");
    let (code, output) = logged.verify(&["--checkpoints", kept.to_str().unwrap()]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("records after 5 were deleted: a signed checkpoint covers record 7"), "{output}");
}
