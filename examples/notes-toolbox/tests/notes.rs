//! The notes toolbox, tested twice: through the real `notes-toolbox` binary and its own
//! command line as the MCP client (tokens per role, calls allowed and refused, the audit
//! log), and in-process through `rampart::testing::TestServer` (scopes, progress,
//! resources, the prompt).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use notes_toolbox::Notes;
use rampart::{
    Rampart, serde_json,
    serde_json::Value,
    testing::{Program, TestServer},
};
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

fn text(output: &rampart::testing::Output) -> String {
    format!("{}{}", output.stdout, output.stderr)
}

#[test]
fn the_real_binary_serves_the_notes_by_role_and_records_the_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rampart.toml");
    std::fs::write(&config, example_config(dir.path())).unwrap();
    let program = Program::new(BIN, &config).unwrap();
    let served = program.serve(300).unwrap();
    let editor = program.token("ed", "notes-editor").unwrap();
    let reader = program.token("rd", "notes-reader").unwrap();
    let call = |token: &str, tool: &str, arguments: Value| program.call(&served, token, tool, &arguments).unwrap();

    // The editor writes the team's notebooks, and not the handbook.
    let created =
        call(&editor, "note_create", json!({"notebook": "team-ops", "title": "Deploy", "body": "make deploy"}));
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert_eq!(created.json()["structuredContent"]["notebook"], "team-ops", "{}", created.stdout);
    let team_note = created.json()["structuredContent"]["id"].as_i64().unwrap();
    let refused = call(&editor, "note_create", json!({"notebook": "handbook", "title": "Hi", "body": "welcome"}));
    assert_eq!(refused.code, 1, "a denied scope is a tool error: {}", text(&refused));
    assert!(text(&refused).contains("scope notebook read-write on 'handbook'"), "{}", text(&refused));

    // The reader sees only the read tools, reads what it may, and nothing else.
    let listed = program.run(&["tools", "--url", &served.url, "--token", &reader, "--json"]).unwrap();
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed = listed.json();
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|tool| tool["name"].as_str()).collect();
    assert!(names.contains(&"note_get") && names.contains(&"notes_search"), "{names:?}");
    assert!(!names.contains(&"note_create") && !names.contains(&"note_delete"), "{names:?}");
    let output = call(&reader, "note_get", json!({"id": team_note}));
    assert_eq!(output.code, 1, "the reader may not read team-ops: {}", text(&output));
    assert!(text(&output).contains("scope notebook read on 'team-ops'"));
    let output = call(&reader, "notes_search", json!({"query": "deploy"}));
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(output.json()["structuredContent"]["notes"], json!([]), "a search shows only readable notebooks");
    let output = call(&reader, "note_delete", json!({"id": team_note}));
    assert_eq!(output.code, 2, "a tool the role does not grant is unknown to it: {}", text(&output));
    assert!(output.stderr.contains("-32602"), "{}", output.stderr);

    // The editor still finds its note: the reader's refused delete did nothing.
    let output = call(&editor, "note_get", json!({"id": team_note}));
    assert_eq!(output.json()["structuredContent"]["title"], "Deploy", "{}", text(&output));

    // The command line reaches the toolbox like any other: `tool NAME --flags`.
    let args = ["tool", "--url", &served.url, "--token", &editor, "notes_list", "--notebook", "team-ops"];
    let output = program.run(&args).unwrap();
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stdout.contains("Deploy"), "{}", output.stdout);

    // The operator can ask the policy about a notebook without calling anything.
    let explain = |role: &str| {
        let args = ["policy", "explain", "--role", role, "--resource", "scope:notebook:write:team-ops", "--json"];
        program.run(&args).unwrap()
    };
    let (editor_may, reader_may) = (explain("notes-editor"), explain("notes-reader"));
    assert!(text(&editor_may).contains("allow"), "{}", text(&editor_may));
    assert!(text(&reader_may).contains("deny"), "{}", text(&reader_may));

    let denied = |records: &[Value]| records.iter().any(|r| r["decision"] == "deny" && r["tool"] == "note_delete");
    let records = program.audit("token:rd", denied).unwrap();
    assert!(denied(&records), "the refused delete is recorded: {records:#?}");
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
