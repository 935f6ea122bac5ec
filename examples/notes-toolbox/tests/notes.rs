//! The notes toolbox, tested twice: through the real `notes-toolbox` binary and its own
//! command line as the MCP client (tokens per role, calls allowed and refused, the audit
//! log), and in-process through `rampart::testing::TestServer` (scopes, progress,
//! resources, the prompt).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use notes_toolbox::Notes;
use rampart::{Rampart, serde_json, serde_json::Value, testing::TestServer};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_notes-toolbox");

/// The example's own configuration, with the notes database in `dir`.
fn example_config(dir: &Path) -> String {
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rampart.toml")).unwrap();
    let database = dir.join("notes.db");
    let config = committed.replace("database = \"notes.db\"", &format!("database = {:?}", database.to_str().unwrap()));
    assert_ne!(config, committed, "the example names its database as the test expects");
    config
}

/// `notes-toolbox serve` on an OS-chosen loopback port, stopped (SIGTERM by PID, or its
/// `timeout`) when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path, data: &Path) -> Served {
    let mut child = Command::new("timeout")
        .args(["--signal=TERM", "300", BIN, "serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("RAMPART_DATA_DIR", data)
        .env_remove("RAMPART_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the server printed its banner").unwrap();
        if let Some(rest) = line.split("streamable HTTP at ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading stderr so that the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Served { child, url }
}

/// Runs `notes-toolbox ARGS` against `data`, returning (exit code, stdout, stderr).
fn cli(data: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new("timeout")
        .args(["60", BIN])
        .args(args)
        .env("RAMPART_DATA_DIR", data)
        .env_remove("RAMPART_CONFIG")
        .env_remove("RAMPART_URL")
        .env_remove("RAMPART_TOKEN")
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

fn token(data: &Path, config: &Path, name: &str, role: &str) -> String {
    let config = config.to_str().unwrap();
    let (code, stdout, stderr) = cli(data, &["token", "create", "--name", name, "--role", role, "--config", config]);
    assert_eq!(code, 0, "{stderr}");
    stdout.trim().to_owned()
}

/// `notes-toolbox call TOOL --args JSON --json` as the MCP client: (exit code, the
/// result or nothing, stderr).
fn call(served: &Served, data: &Path, token: &str, tool: &str, arguments: Value) -> (i32, Option<Value>, String) {
    let arguments = arguments.to_string();
    let (code, stdout, stderr) =
        cli(data, &["call", tool, "--args", &arguments, "--url", &served.url, "--token", token, "--json"]);
    (code, serde_json::from_str(&stdout).ok(), stderr)
}

fn audit(data: &Path, config: &Path, principal: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let config = config.to_str().unwrap();
    loop {
        let (code, stdout, stderr) =
            cli(data, &["audit", "search", "--principal", principal, "--config", config, "--json"]);
        assert_eq!(code, 0, "{stderr}");
        let records: Vec<Value> = serde_json::from_str::<Value>(&stdout)
            .ok()
            .and_then(|value| value.as_array().cloned().or_else(|| value["records"].as_array().cloned()))
            .unwrap_or_else(|| stdout.lines().filter_map(|line| serde_json::from_str(line).ok()).collect());
        // Records are stored a few milliseconds after the answer (asynchronous commit).
        if records.iter().any(|r| r["decision"] == "deny") || std::time::Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_real_binary_serves_the_notes_by_role_and_records_the_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = (dir.path().join("data"), dir.path().join("rampart.toml"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(&config, example_config(dir.path())).unwrap();
    let served = serve(&config, &data);
    let editor = token(&data, &config, "ed", "notes-editor");
    let reader = token(&data, &config, "rd", "notes-reader");

    // The editor writes the team's notebooks, and not the handbook.
    let (code, created, stderr) = call(
        &served,
        &data,
        &editor,
        "note_create",
        json!({"notebook": "team-ops", "title": "Deploy", "body": "make deploy"}),
    );
    assert_eq!(code, 0, "{stderr}");
    let created = created.unwrap();
    assert_eq!(created["structuredContent"]["notebook"], "team-ops", "{created}");
    let team_note = created["structuredContent"]["id"].as_i64().unwrap();
    let (code, refused, _) =
        call(&served, &data, &editor, "note_create", json!({"notebook": "handbook", "title": "Hi", "body": "welcome"}));
    assert_eq!(code, 1, "a denied scope is a tool error: {refused:?}");
    assert!(refused.unwrap().to_string().contains("scope notebook read-write on 'handbook'"));

    // The reader sees only the read tools, reads what it may, and nothing else.
    let (code, stdout, stderr) = cli(&data, &["tools", "--url", &served.url, "--token", &reader, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|tool| tool["name"].as_str()).collect();
    assert!(names.contains(&"note_get") && names.contains(&"notes_search"), "{names:?}");
    assert!(!names.contains(&"note_create") && !names.contains(&"note_delete"), "{names:?}");
    let (code, output, _) = call(&served, &data, &reader, "note_get", json!({"id": team_note}));
    assert_eq!(code, 1, "the reader may not read team-ops: {output:?}");
    assert!(output.unwrap().to_string().contains("scope notebook read on 'team-ops'"));
    let (code, output, _) = call(&served, &data, &reader, "notes_search", json!({"query": "deploy"}));
    assert_eq!(code, 0);
    assert_eq!(output.unwrap()["structuredContent"]["notes"], json!([]), "a search shows only readable notebooks");
    let (code, output, stderr) = call(&served, &data, &reader, "note_delete", json!({"id": team_note}));
    assert_eq!(code, 2, "a tool the role does not grant is unknown to it: {output:?}");
    assert!(stderr.contains("-32602"), "{stderr}");

    // The editor still finds its note: the reader's refused delete did nothing.
    let (code, output, _) = call(&served, &data, &editor, "note_get", json!({"id": team_note}));
    assert_eq!(code, 0);
    assert_eq!(output.unwrap()["structuredContent"]["title"], "Deploy");

    // The command line reaches the toolbox like any other: `tool NAME --flags`.
    let (code, stdout, stderr) =
        cli(&data, &["tool", "--url", &served.url, "--token", &editor, "notes_list", "--notebook", "team-ops"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Deploy"), "{stdout}");

    let records = audit(&data, &config, "token:rd");
    let denied: Vec<&Value> = records.iter().filter(|r| r["decision"] == "deny").collect();
    assert!(
        denied.iter().any(|r| r["tool"] == "note_delete" && r["method"] == "tools/call"),
        "the refused delete is recorded: {records:#?}"
    );
}

async fn test_server(dir: &Path) -> TestServer {
    let notes = Rampart::new().toolbox_from_settings("notes", Notes::from_settings);
    TestServer::start(notes, &example_config(dir)).await.unwrap()
}

#[tokio::test]
async fn an_import_reports_progress_and_notebook_scopes_hold_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let server = test_server(dir.path()).await;
    let editor = TestServer::caller("token:ed", &["notes-editor"]);
    let reader = TestServer::caller("token:rd", &["notes-reader"]);

    let notes: Vec<Value> = (1..=5).map(|n| json!({"title": format!("Runbook {n}"), "body": "steps"})).collect();
    let called = server.call(&editor, "notes_import", json!({"notebook": "team-ops", "notes": notes})).await.unwrap();
    assert!(!called.output.is_error, "{:?}", called.output);
    assert_eq!(called.output.structured_content.as_ref().unwrap()["imported"], 5);
    let steps: Vec<f64> = called.progress.iter().map(|(progress, _, _)| *progress).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(called.progress.iter().all(|(_, total, _)| *total == Some(5.0)));
    assert_eq!(called.progress[0].2.as_deref(), Some("imported 'Runbook 1'"));

    // The reader's role grants the tool but not the notebook: the toolbox refuses.
    let called = server.call(&reader, "notes_list", json!({"notebook": "team-ops"})).await.unwrap();
    assert!(called.output.is_error);
    assert!(called.output.to_text().contains("scope notebook read on 'team-ops'"), "{}", called.output.to_text());
    // A tool its role does not grant is unknown to it, and recorded as denied.
    assert!(server.call(&reader, "notes_import", json!({"notebook": "handbook", "notes": []})).await.is_err());
    let last = server.audit_records().pop().unwrap();
    assert_eq!((last["tool"].as_str(), last["decision"].as_str()), (Some("notes_import"), Some("deny")));

    // A resource per note, read under the same scopes; the prompt too.
    let uri = "note://team-ops/1";
    let contents = server.read_resource(&editor, uri).await.unwrap();
    assert!(serde_json::to_string(&contents).unwrap().contains("# Runbook 1"));
    assert!(server.read_resource(&reader, uri).await.is_err(), "the reader's resources do not cover team-ops");
    let prompt = server
        .get_prompt(&editor, "summarize_notebook", json!({"notebook": "team-ops"}).as_object().unwrap().clone())
        .await
        .unwrap();
    assert!(serde_json::to_string(&prompt).unwrap().contains("Runbook 5"));
}

#[tokio::test]
async fn bad_settings_stop_the_start_naming_the_toolbox() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path()).replace("\ndatabase = ", "\ncolour = 1\ndatabase = ");
    let error = TestServer::start(Rampart::new().toolbox_from_settings("notes", Notes::from_settings), &config)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("toolbox 'notes'") && error.contains("colour"), "{error}");
    let error = TestServer::start(Rampart::new(), &example_config(dir.path())).await.unwrap_err().to_string();
    assert!(error.contains("[toolbox.notes]"), "a section for a toolbox the program lacks: {error}");
}
