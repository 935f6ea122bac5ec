//! Issue #3 end to end: API tokens, deny-by-default roles, and the hash-chained audit log,
//! on the embedded SQLite store and on the real PostgreSQL server.

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use serde_json::{Value, json};

use crate::support::{Server, TempDir, eventually, initialize_body, mcp_post, run};

/// Calls a tool over raw HTTP with `token`; returns (HTTP status, JSON-RPC response).
async fn call(server: &Server, token: &str, tool: &str, arguments: Value) -> (u16, Value) {
    crate::support::call_tool_status(&server.url, token, tool, arguments).await
}

async fn list_tools(server: &Server, token: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let init =
        mcp_post(&client, &server.url).bearer_auth(token).json(&initialize_body(1, "2025-11-25")).send().await.unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = init.text().await;
    let body = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list" });
    let (_, messages) =
        crate::support::post_in_session_with(&client, &server.url, &session, token, body.to_string()).await;
    let result = messages.into_iter().find(|m| m.get("id") == Some(&json!(3))).unwrap();
    result["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

fn create_token(server: &Server, name: &str, role: &str, extra: &[&str]) -> String {
    let (code, stdout, stderr) = server.cli(&[&["token", "create", "--name", name, "--role", role], extra].concat());
    assert_eq!(code, 0, "{stderr}");
    stdout.trim().to_owned()
}

#[tokio::test]
async fn first_run_prints_an_admin_token_once() {
    let server = Server::start(&[]);
    let admin = server.admin_token();
    assert!(server.stderr().contains("rampart token create"), "says how to make more");
    assert!(list_tools(&server, &admin).await.contains(&"admin_token_create".to_owned()));
    let (code, stdout, stderr) =
        server.cli_until(&["audit", "search", "--principal", "local", "--json"], |out| !out.is_empty());
    assert_eq!(code, 0, "{stderr}");
    let created: Value = serde_json::from_str(stdout.lines().next().expect("the first-run token is audited")).unwrap();
    assert_eq!(
        (created["tool"].as_str(), created["arguments"]["roles"].clone()),
        (Some("admin_token_create"), json!(["admin"]))
    );
    assert!(!stdout.contains(&admin[4..]), "never the secret: {stdout}");
    let data = server.stop();
    let again = Server::start_in(data, &[], &[]);
    assert!(again.stderr_eventually_contains("tools:"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!again.stderr().contains("First run"), "a second start creates no token: {}", again.stderr());
}

#[tokio::test]
async fn token_lifecycle_roles_and_refusals() {
    let server = Server::start(&[]);
    let _admin = server.admin_token();
    let reader = create_token(&server, "ci", "reader", &[]);
    assert!(reader.starts_with("rpt_") && reader.len() == 53, "{reader}");

    // A reader sees read tools only, and a write tool looks like it does not exist.
    let tools = list_tools(&server, &reader).await;
    assert_eq!(tools, ["system_health", "system_about", "system_whoami", "get_current_time", "convert_time"]);
    let (_, ok) = call(&server, &reader, "get_current_time", json!({ "timezone": "UTC" })).await;
    assert_eq!(ok["result"]["isError"], false, "{ok}");
    let (_, denied) = call(&server, &reader, "admin_token_create", json!({ "name": "x", "roles": ["admin"] })).await;
    let (_, unknown) = call(&server, &reader, "no_such_tool", json!({})).await;
    assert_eq!(denied["error"]["code"], -32602, "{denied}");
    let strip = |v: &Value, name: &str| v["error"]["message"].as_str().unwrap().replace(name, "NAME");
    assert_eq!(strip(&denied, "admin_token_create"), strip(&unknown, "no_such_tool"), "no difference leaks");
    assert!(denied["error"]["message"].as_str().unwrap().contains("grants tool 'admin_token_create'"), "{denied}");

    // A token one character off is refused without a lookup; so is a made-up one.
    let mut chars: Vec<char> = reader.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == 'a' { 'b' } else { 'a' };
    let one_off: String = chars.into_iter().collect();
    assert_eq!(call(&server, &one_off, "system_health", json!({})).await.0, 401);

    // A revocation by the CLI (another process) applies within the 2 s the server trusts a
    // verified token; one through the admin tools applies at once (admin_tools_... test).
    let (code, _, stderr) = server.cli(&["token", "revoke", "ci"]);
    assert_eq!(code, 0, "{stderr}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(call(&server, &reader, "system_health", json!({})).await.0, 401);

    // Expired tokens are refused.
    let short = create_token(&server, "short", "reader", &["--expires", "1s"]);
    assert_eq!(call(&server, &short, "system_health", json!({})).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(call(&server, &short, "system_health", json!({})).await.0, 401, "expired");

    // Rotation: the old secret stops, the new one works, same name and roles.
    let writer = create_token(&server, "deploy", "writer", &[]);
    let (code, rotated, _) = server.cli(&["token", "rotate", "deploy"]);
    assert_eq!(code, 0);
    let rotated = rotated.trim().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(call(&server, &writer, "system_health", json!({})).await.0, 401);
    assert_eq!(call(&server, &rotated, "system_health", json!({})).await.1["result"]["isError"], false);

    let (code, listing, _) = server.cli(&["token", "list", "--json"]);
    assert_eq!(code, 0);
    let listing: Value = serde_json::from_str(&listing).unwrap();
    let status = |name: &str| listing.as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["status"].clone();
    assert_eq!(
        (status("ci"), status("short"), status("deploy")),
        (json!("revoked"), json!("expired"), json!("active"))
    );
    assert!(!listing.to_string().contains(&rotated[8..]), "secrets are never listed");

    let (code, _, stderr) = server.cli(&["token", "create", "--name", "bad", "--role", "superuser"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown role(s): superuser"), "{stderr}");
}

#[tokio::test]
async fn admin_tools_manage_tokens_over_mcp() {
    let server = Server::start(&[]);
    let admin = server.admin_token();
    let (_, created) =
        call(&server, &admin, "admin_token_create", json!({ "name": "bot", "roles": ["reader"], "expires_in": "30d" }))
            .await;
    let token = created["result"]["structuredContent"]["token"].as_str().unwrap().to_owned();
    assert_eq!(call(&server, &token, "system_health", json!({})).await.1["result"]["isError"], false);
    let (_, listed) = call(&server, &admin, "admin_token_list", json!({})).await;
    let names: Vec<&str> = listed["result"]["structuredContent"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "bot"]);
    let (_, revoked) = call(&server, &admin, "admin_token_revoke", json!({ "id": "bot" })).await;
    assert_eq!(revoked["result"]["structuredContent"]["status"], "revoked", "{revoked}");
    assert_eq!(call(&server, &token, "system_health", json!({})).await.0, 401, "in-process revocation applies at once");
    // The audit log has the creation's arguments but never the token it returned.
    let (_, audit, _) = server
        .cli_until(&["audit", "search", "--tool", "admin_token_create", "--json"], |audit| audit.contains("\"bot\""));
    assert!(audit.contains("\"bot\"") && !audit.contains(&token), "{audit}");
}

#[tokio::test]
async fn denied_calls_and_failed_logins_are_audited_and_the_chain_verifies() {
    let server = Server::start(&[]);
    let _admin = server.admin_token();
    let reader = create_token(&server, "ci", "reader", &[]);
    call(&server, &reader, "get_current_time", json!({ "timezone": "UTC" })).await;
    call(&server, &reader, "admin_token_list", json!({})).await;
    assert_eq!(call(&server, "rpt_wrong", "system_health", json!({})).await.0, 401);

    let (code, stdout, stderr) = server.cli_until(&["audit", "search", "--principal", "token:ci", "--json"], |audit| {
        audit.contains("admin_token_list") && audit.contains("get_current_time")
    });
    assert_eq!(code, 0, "{stderr}");
    let records: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let denied = records.iter().find(|r| r["tool"] == "admin_token_list").expect("the denied call is audited");
    assert_eq!((denied["decision"].as_str(), denied["outcome"].as_str()), (Some("deny"), Some("denied")));
    assert!(denied["detail"].as_str().unwrap().contains("tool 'admin_token_list'"), "{denied}");
    let allowed = records.iter().find(|r| r["tool"] == "get_current_time").unwrap();
    assert_eq!(allowed["arguments"]["timezone"], "UTC");
    for field in
        ["time", "request_id", "session", "transport", "remote_addr", "method", "duration_us", "prev_hash", "hash"]
    {
        assert!(allowed.get(field).is_some(), "record has {field}: {allowed}");
    }
    let (_, failures, _) = server
        .cli_until(&["audit", "search", "--principal", "unauthenticated", "--json"], |audit| {
            audit.contains("auth_failed")
        });
    assert!(failures.contains("auth_failed") && failures.contains("127.0.0.1"), "{failures}");
    // The same search narrowed by decision, outcome and time (the store's own columns).
    let tools = |filters: &[&str]| {
        let (code, out, err) =
            server.cli(&[&["audit", "search", "--principal", "token:ci", "--json"], filters].concat());
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["tool"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(tools(&["--decision", "deny"]), ["admin_token_list"]);
    assert_eq!(tools(&["--outcome", "ok"]), ["get_current_time"]);
    assert_eq!(tools(&["--decision", "allow", "--outcome", "denied"]), Vec::<String>::new());
    assert!(tools(&["--until", "1h"]).is_empty(), "nothing recorded an hour ago");
    assert_eq!(tools(&["--since", "1h", "--until", "2999-01-01T00:00:00Z"]).len(), 2);

    let (code, stdout, _) = server.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with("audit log intact"), "{stdout}");
    let (code, tail, _) = server.cli(&["audit", "tail", "-n", "2"]);
    assert_eq!((code, tail.lines().count()), (0, 2), "{tail}");
}

#[tokio::test]
async fn secrets_never_reach_the_audit_log_or_the_server_log() {
    let key = "static-key-VERY-SECRET-0042";
    let server = Server::start_with_env(&["--auth-key", key, "--log", "debug"], &[]);
    let planted = json!({
        "timezone": "UTC",
        "password": "hunter2-password-value",
        "api_key": "sk_live_abcdefghijklmnop",
        "note": format!("the key is {key}"),
        "header": "Bearer rpt_0000000000000000000000000000000000000000000000000",
    });
    let (_, result) = call(&server, key, "get_current_time", planted).await;
    assert_eq!(result["result"]["isError"], true, "extra fields fail the schema: {result}");
    let (_, audit, _) = server.cli_until(&["audit", "tail", "--json"], |audit| audit.contains("[REDACTED]"));
    assert!(audit.contains("[REDACTED]"), "{audit}");
    // Read once the record is stored: the database file and its write-ahead log.
    let mut database = std::fs::read(server.data.0.join("rampart.db")).unwrap();
    database.extend(std::fs::read(server.data.0.join("rampart.db-wal")).unwrap_or_default());
    let database = String::from_utf8_lossy(&database);
    assert!(database.contains("[REDACTED]"), "the files read hold the record");
    for secret in [key, "hunter2-password-value", "sk_live_abcdefghijklmnop", "rpt_000000000000"] {
        assert!(!audit.contains(secret), "{secret} in the audit log: {audit}");
        assert!(!database.contains(secret), "{secret} in the database file");
        assert!(!server.stderr().contains(secret), "{secret} in the server log");
    }
}

#[test]
fn policy_explain_names_the_grant_or_its_absence() {
    let dir = TempDir::new("explain");
    let env = [("RAMPART_DATA_DIR", dir.0.to_str().unwrap())];
    let (code, _, stderr) = run(&["token", "create", "--name", "ci", "--role", "reader"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = run(&["policy", "explain", "--token-name", "ci", "--tool", "get_current_time"], &env, None);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("allow") && stdout.contains("reader"), "{stdout}");
    let (code, stdout, _) =
        run(&["policy", "explain", "--token-name", "ci", "--tool", "admin_token_create"], &env, None);
    assert_eq!(code, 1, "a deny exits 1");
    assert!(stdout.contains("deny") && stdout.contains("admin"), "names who would be allowed: {stdout}");
    let (code, stdout, _) =
        run(&["policy", "explain", "--role", "reader", "--resource", "fs:write:/etc/passwd", "--json"], &env, None);
    assert_eq!(code, 1);
    let explained: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(explained["explanation"]["decision"]["effect"], "deny", "{explained}");
}

// ---- tampering, on both back-ends ----

/// Runs SQL against the SQLite store (Python's standard sqlite3 module).
pub(crate) fn sqlite(db: &std::path::Path, sql: &str) {
    let status = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
        .arg(db)
        .arg(sql)
        .status()
        .unwrap();
    assert!(status.success());
}

const EDIT: &str = "UPDATE audit_records SET record = replace(record, '\"UTC\"', '\"CET\"') WHERE seq = 3;";
const DELETE: &str = "DELETE FROM audit_records WHERE seq = 3;";
const REORDER: &str = "UPDATE audit_records SET seq = -1 WHERE seq = 3; UPDATE audit_records SET seq = 3 WHERE seq = 4; \
                       UPDATE audit_records SET seq = 4 WHERE seq = -1;";

pub(crate) async fn make_records(server: &Server, token: &str) {
    for _ in 0..6 {
        call(server, token, "get_current_time", json!({ "timezone": "UTC" })).await;
    }
}

fn verify(env: &[(&str, &str)]) -> (i32, String) {
    let (code, stdout, stderr) = run(&["audit", "verify"], env, None);
    (code, format!("{stdout}{stderr}"))
}

#[tokio::test]
async fn audit_verify_catches_edited_deleted_and_reordered_records_in_sqlite() {
    let server = Server::start(&[]);
    let admin = server.admin_token();
    make_records(&server, &admin).await;
    let data = server.stop();
    let db = data.0.join("rampart.db");
    let dir = data.0.to_str().unwrap().to_owned();
    assert_eq!(verify(&[("RAMPART_DATA_DIR", &dir)]).0, 0);
    for (tamper, expected) in [(EDIT, "3"), (DELETE, "3"), (REORDER, "3")] {
        let copy = TempDir::new("tamper");
        std::fs::copy(&db, copy.0.join("rampart.db")).unwrap();
        sqlite(&copy.0.join("rampart.db"), tamper);
        let (code, output) = verify(&[("RAMPART_DATA_DIR", copy.0.to_str().unwrap())]);
        assert_eq!(code, 1, "{tamper}: {output}");
        assert!(output.contains("TAMPERED") && output.contains(expected), "{tamper} names record {expected}: {output}");
    }
}

/// A fresh PostgreSQL database for one test, or `None` (said loudly; CI requires it).
pub(crate) fn postgres_database(name: &str) -> Option<String> {
    let Ok(base) = std::env::var("TEST_POSTGRES_URL") else {
        assert!(std::env::var("TEST_REQUIRE_SERVICES").as_deref() != Ok("1"), "TEST_POSTGRES_URL is required");
        eprintln!("\n!!!!! SKIPPED: PostgreSQL test {name}: TEST_POSTGRES_URL is not set !!!!!\n");
        return None;
    };
    let database = format!("rampart_e2e_{}_{name}", std::process::id());
    psql(&base, &format!("DROP DATABASE IF EXISTS {database}"));
    psql(&base, &format!("CREATE DATABASE {database}"));
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{database}"))
}

pub(crate) fn psql(url: &str, sql: &str) {
    let output = Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]).output().unwrap();
    assert!(output.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn postgres_store_serves_tokens_and_audit_and_catches_tampering() {
    let Some(url) = postgres_database("store") else { return };
    let env = [("RAMPART_DATABASE_URL", url.as_str())];
    let server = Server::start_with_env(&[], &env);
    assert!(server.stderr_eventually_contains("store:     postgres://"), "{}", server.stderr());
    let admin = server.admin_token();
    let (code, reader, stderr) = run(&["token", "create", "--name", "ci", "--role", "reader"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    let reader = reader.trim();
    let (_, denied) = call(&server, reader, "admin_token_list", json!({})).await;
    assert_eq!(denied["error"]["code"], -32602);
    make_records(&server, &admin).await;
    let ready: Value = reqwest::get(format!("{}/readyz", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["services"]["store"]["backend"], "postgres", "{ready}");
    drop(server);
    assert_eq!(verify(&env).0, 0);
    let (_, search, _) = run(&["audit", "search", "--principal", "token:ci", "--json"], &env, None);
    assert!(search.contains("\"denied\""), "{search}");
    // Records: 1 the first-run admin token, 2 `token create ci`, 3 the denied call, 4.. the
    // calls with "UTC".
    psql(&url, &EDIT.replace("seq = 3", "seq = 4"));
    let (code, output) = verify(&env);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("TAMPERED") && output.contains("record 4"), "{output}");
}

#[tokio::test]
async fn a_down_database_degrades_readiness_and_audit_fails_closed() {
    let env = [("RAMPART_DATABASE_URL", "postgres://nobody@127.0.0.1:1/down")];
    let server = Server::start_with_env(&["--insecure-no-auth"], &env);
    let client = reqwest::Client::new();
    let health = client.get(format!("{}/healthz", server.base)).send().await.unwrap();
    assert_eq!(health.status(), 200, "the server is up");
    let ready = client.get(format!("{}/readyz", server.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["services"]["store"]["status"].as_str()),
        (Some("degraded"), Some("unavailable"))
    );
    let (_, refused) = call(&server, "anything", "system_health", json!({})).await;
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("audit log is unavailable"),
        "fails closed: {refused}"
    );
}

#[tokio::test]
async fn audit_fails_open_when_configured() {
    let dir = TempDir::new("fail-open");
    let config = dir.0.join("rampart.toml");
    std::fs::write(&config, "[audit]\non_failure = \"open\"\n").unwrap();
    let env = [("RAMPART_DATABASE_URL", "postgres://nobody@127.0.0.1:1/down")];
    let server = Server::start_with_env(&["--insecure-no-auth", "--config", config.to_str().unwrap()], &env);
    let (_, served) = call(&server, "anything", "system_health", json!({})).await;
    assert_eq!(served["result"]["structuredContent"]["status"], "ok", "served while audit is down: {served}");
    assert!(server.stderr_eventually_contains("audit record lost"), "and says so: {}", server.stderr());
}

#[tokio::test]
async fn audit_to_a_json_lines_file_verifies_and_catches_an_edit() {
    let dir = TempDir::new("jsonl");
    let file = dir.0.join("audit.jsonl");
    let env = [("RAMPART_AUDIT_FILE", file.to_str().unwrap())];
    let server = Server::start_with_env(&["--insecure-no-auth"], &env);
    make_records(&server, "anything").await;
    // Records are stored by the writer just after the results go out (asynchronous commit).
    let count = || std::fs::read_to_string(&file).unwrap().lines().count();
    eventually("six records in the file", || count() >= 6).await;
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 6, "{lines}");
    drop(server);
    assert_eq!(verify(&env).0, 0);
    let (_, tail, _) = run(&["audit", "tail", "-n", "1", "--json"], &env, None);
    assert!(tail.contains("\"seq\":6"), "{tail}");
    std::fs::write(&file, lines.replacen("\"UTC\"", "\"CET\"", 1)).unwrap();
    let (code, output) = verify(&env);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("TAMPERED") && output.contains('1'), "{output}");
}

/// `rampart token create|revoke` run beside a server on the same audit log (the store's
/// table, or a JSON-lines file): each command leaves a record naming the `admin` tool it
/// mirrors, never the secret; the server keeps serving (another writer on the log is not
/// an outage) and the two writers leave one chain that verifies.
async fn token_commands_are_audited_beside_a_running_server(audit_file: Option<&std::path::Path>) {
    let file = audit_file.map(|f| f.to_str().unwrap().to_owned());
    let extra: Vec<(&str, &str)> = file.iter().map(|f| ("RAMPART_AUDIT_FILE", f.as_str())).collect();
    let server = Server::start_with_env(&[], &extra);
    let _admin = server.admin_token();
    let dir = server.data.0.to_str().unwrap().to_owned();
    let env: Vec<(&str, &str)> =
        [("RAMPART_DATA_DIR", dir.as_str())].into_iter().chain(extra.iter().copied()).collect();
    let cli = |args: &[&str]| {
        let (code, stdout, stderr) = run(args, &env, None);
        assert_eq!(code, 0, "rampart {args:?}: {stderr}");
        stdout
    };
    let reader = cli(&["token", "create", "--name", "ci", "--role", "reader"]).trim().to_owned();
    for round in 0..3 {
        let (status, response) = call(&server, &reader, "get_current_time", json!({ "timezone": "UTC" })).await;
        assert!(status == 200 && served(&response), "round {round}: {status} {response}");
        let spare = cli(&["token", "create", "--name", &format!("spare{round}"), "--role", "reader"]);
        assert!(!spare.trim().is_empty());
        cli(&["token", "revoke", &format!("spare{round}")]);
    }
    let (status, response) = call(&server, &reader, "get_current_time", json!({ "timezone": "UTC" })).await;
    assert!(status == 200 && served(&response), "still serving: {status} {response}");
    eventually("the server's four calls recorded", || ok_records(&env, "get_current_time") >= 4).await;

    let (code, stdout, stderr) = run(&["audit", "search", "--principal", "local", "--json"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    let records: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let tools: Vec<&str> = records.iter().map(|r| r["tool"].as_str().unwrap()).collect();
    assert_eq!(
        tools,
        [
            "admin_token_create",
            "admin_token_create",
            "admin_token_create",
            "admin_token_revoke",
            "admin_token_create",
            "admin_token_revoke",
            "admin_token_create",
            "admin_token_revoke"
        ],
        "{stdout}"
    );
    assert_eq!(records[0]["arguments"]["name"], "admin", "the first-run token: {}", records[0]);
    let first = &records[1];
    assert_eq!((first["transport"].as_str(), first["outcome"].as_str()), (Some("cli"), Some("ok")), "{first}");
    assert_eq!(first["arguments"]["name"], "ci");
    assert_eq!(first["arguments"]["roles"], json!(["reader"]));
    let (_, everything, _) = run(&["audit", "tail", "-n", "1000", "--json"], &env, None);
    assert!(!everything.contains(&reader[4..]), "the secret is never recorded: {everything}");
    let (code, verified, _) = run(&["audit", "verify"], &env, None);
    assert_eq!(code, 0, "{verified}");
    assert!(verified.starts_with("audit log intact"), "{verified}");
}

#[tokio::test]
async fn token_commands_are_audited_beside_a_running_server_in_sqlite() {
    token_commands_are_audited_beside_a_running_server(None).await;
}

#[tokio::test]
async fn token_commands_are_audited_beside_a_running_server_in_a_json_lines_file() {
    let dir = TempDir::new("cli-audit-jsonl");
    token_commands_are_audited_beside_a_running_server(Some(&dir.0.join("audit.jsonl"))).await;
}

/// Fail-closed from the command line: an audit log whose last record is unreadable stops
/// `rampart token create` before it creates anything.
#[test]
fn token_commands_refuse_to_run_unrecorded() {
    let dir = TempDir::new("cli-audit-closed");
    let file = dir.0.join("audit.jsonl");
    std::fs::write(&file, "{\"seq\":1,\"not\":\"a record\"}\n").unwrap();
    let data = dir.0.join("data");
    let env = [("RAMPART_DATA_DIR", data.to_str().unwrap()), ("RAMPART_AUDIT_FILE", file.to_str().unwrap())];
    let (code, stdout, stderr) = run(&["token", "create", "--name", "ghost", "--role", "reader"], &env, None);
    assert_ne!(code, 0, "{stdout}");
    assert!(stdout.is_empty() && stderr.contains("audit"), "says why: {stderr}");
    // Listing is an audited call too, so it is refused on that log: read the store with the
    // store's own audit log.
    let (code, list, stderr) = run(&["token", "list", "--json"], &env[..1], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(!list.contains("ghost"), "nothing was created: {list}");
}

fn served(response: &Value) -> bool {
    response["result"]["structuredContent"]["timezone"] == "UTC"
}

/// Records with outcome `ok` for `tool` in the store of `env`.
fn ok_records(env: &[(&str, &str)], tool: &str) -> usize {
    let (code, stdout, stderr) = run(&["audit", "search", "--tool", tool, "--limit", "1000000", "--json"], env, None);
    assert_eq!(code, 0, "{stderr}");
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .flat_map(|value| if let Value::Array(records) = value { records } else { vec![value] })
        .filter(|record| record["outcome"] == "ok")
        .count()
}

/// The audit database goes away mid-traffic (PostgreSQL stops taking connections): a call
/// already running finishes and is answered, its record is held by the writer, new calls
/// are refused (fail closed), and once the database is back every call that got a result
/// has its record, in one intact chain. Records are committed asynchronously (the
/// default), so this is what makes that safe.
#[tokio::test]
async fn a_database_outage_loses_no_record_of_a_served_call() {
    let Some(url) = postgres_database("outage") else { return };
    let base = std::env::var("TEST_POSTGRES_URL").unwrap();
    let database = url.rsplit('/').next().unwrap().to_owned();
    let env = [("RAMPART_DATABASE_URL", url.as_str())];
    let server = std::sync::Arc::new(Server::start_with_env(&["--insecure-no-auth", "--profile", "conformance"], &env));
    let time = json!({ "timezone": "UTC" });
    assert!(served(&call(&server, "-", "get_current_time", time.clone()).await.1));

    // A call in flight when the database goes away.
    let in_flight = tokio::spawn({
        let server = std::sync::Arc::clone(&server);
        async move { call(&server, "-", "test_sleep", json!({ "ms": 1500 })).await.1 }
    });
    eventually("the call started", || server.stderr().contains("test_sleep started")).await;
    psql(&base, &format!("ALTER DATABASE {database} ALLOW_CONNECTIONS false"));
    psql(&base, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"));
    let slept = in_flight.await.unwrap();
    assert_eq!(slept["result"]["isError"], false, "answered: its record is queued, not awaited: {slept}");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut served_calls = 1;
    let refusal = loop {
        let (status, response) = call(&server, "-", "get_current_time", time.clone()).await;
        if !served(&response) {
            break format!("{status} {response}");
        }
        served_calls += 1;
        assert!(std::time::Instant::now() < deadline, "calls still served 60 s into the outage");
    };
    assert!(refusal.contains("audit log is unavailable"), "fails closed: {refusal}");

    psql(&base, &format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true"));
    loop {
        let (_, response) = call(&server, "-", "get_current_time", time.clone()).await;
        if served(&response) {
            served_calls += 1;
            break;
        }
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(60), "not served again");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(std::sync::Arc::into_inner(server).expect("no task holds the server"));
    assert_eq!(ok_records(&env, "get_current_time"), served_calls, "one record per served call, none twice");
    assert_eq!(ok_records(&env, "test_sleep"), 1, "the call that ran through the outage is recorded");
    assert_eq!(verify(&env).0, 0, "one intact chain");
}

/// SIGTERM while the audit writer is stuck (another session holds a lock on the audit
/// table): calls are still served (their records are queued, not awaited), and the records
/// still queued at the signal are stored before the server exits, not lost with it.
#[tokio::test]
async fn a_graceful_shutdown_stores_the_records_still_queued() {
    let Some(url) = postgres_database("drain") else { return };
    let env = [("RAMPART_DATABASE_URL", url.as_str())];
    let mut server = Server::start_with_env(&["--insecure-no-auth"], &env);
    let time = json!({ "timezone": "UTC" });
    assert!(served(&call(&server, "-", "get_current_time", time.clone()).await.1));

    let mut locker = Command::new("psql")
        .args([&url, "-v", "ON_ERROR_STOP=1", "-q"])
        .args(["-c", "BEGIN", "-c", "LOCK TABLE audit_records IN ACCESS EXCLUSIVE MODE"])
        .args(["-c", "SELECT pg_sleep(4)", "-c", "COMMIT"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let locked = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                  WHERE c.relname = 'audit_records' AND l.mode = 'AccessExclusiveLock' AND l.granted";
    eventually("the lock is taken", || {
        let output = Command::new("psql").args([&url, "-tA", "-c", locked]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).trim() == "1"
    })
    .await;
    let calls = 10;
    for _ in 0..calls {
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            call(&server, "-", "get_current_time", time.clone()),
        )
        .await
        .expect("served while the audit table is locked: the result does not wait for its record");
        assert!(served(&response.1), "{:?}", response.1);
    }
    let status = server.terminate(20).expect("exits after the lock is released");
    assert!(status.success(), "{status:?}: {}", server.stderr());
    assert!(locker.wait().unwrap().success());
    assert_eq!(ok_records(&env, "get_current_time"), calls + 1, "the queued records were stored at shutdown");
    assert_eq!(verify(&env).0, 0);
}

/// `kill -9` under load (asynchronous commit): the records still queued die with the
/// process, but nothing is half-written: the chain verifies, and a restarted server
/// continues it.
#[tokio::test]
async fn kill_9_under_load_leaves_a_chain_that_verifies_and_continues() {
    let server = Server::start(&["--insecure-no-auth"]);
    let answered = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let url = server.url.clone();
            let answered = answered.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let Ok(init) = mcp_post(&client, &url).json(&initialize_body(1, "2025-11-25")).send().await else {
                    return 0;
                };
                let Some(session) =
                    init.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
                else {
                    return 0;
                };
                let _ = init.text().await;
                let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                   "params": { "name": "get_current_time", "arguments": { "timezone": "UTC" } } });
                let mut calls = 0;
                // Until the server is gone.
                while let Ok(response) =
                    mcp_post(&client, &url).header("mcp-session-id", &session).json(&call).send().await
                {
                    let _ = response.text().await;
                    calls += 1;
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                calls
            })
        })
        .collect();
    eventually("the server under load", || answered.load(Ordering::Relaxed) > 60).await;
    // SIGKILL the server itself (not the timeout wrapper): no chance to drain.
    let children = Command::new("pgrep").args(["-P", &server.pid().to_string()]).output().unwrap();
    for child in String::from_utf8_lossy(&children.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-9", child]).status();
    }
    let mut calls = 0;
    for task in load {
        calls += task.await.unwrap();
    }
    assert!(calls > 50, "the server was under load when killed: {calls} calls");
    let data = server.stop();
    let dir = data.0.to_str().unwrap().to_owned();
    let env = [("RAMPART_DATA_DIR", dir.as_str())];
    let (code, output) = verify(&env);
    assert_eq!(code, 0, "the chain left by kill -9 verifies: {output}");
    let stored = ok_records(&env, "get_current_time");
    // A record is queued just before its response goes out: up to one per session may
    // be stored for a response the client never read.
    assert!(stored > 0 && stored <= calls + 8, "{stored} records for {calls} calls");

    let server = Server::start_in(data, &["--insecure-no-auth"], &[]);
    assert!(served(&call(&server, "-", "get_current_time", json!({ "timezone": "UTC" })).await.1));
    let data = server.stop();
    let dir = data.0.to_str().unwrap().to_owned();
    let env = [("RAMPART_DATA_DIR", dir.as_str())];
    assert_eq!(verify(&env).0, 0, "the restarted server continued the chain");
    assert_eq!(ok_records(&env, "get_current_time"), stored + 1);
}
