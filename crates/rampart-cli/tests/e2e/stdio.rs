//! `rampart serve --transport stdio` driven by rmcp's client, and the stdout discipline
//! (only MCP messages on stdout).

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::Duration,
};

use rampart_mcp::{ClientTarget, McpClient};
use serde_json::{Map, Value, json};

use crate::support::{BIN, TempDir, stdio_command};

fn stdio_target(data: &TempDir) -> ClientTarget {
    ClientTarget::Stdio { command: stdio_command(data), show_stderr: false }
}

fn arguments(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

#[tokio::test]
async fn rmcp_client_lists_and_calls_tools_over_stdio() {
    let data = TempDir::new("stdio");
    let client = McpClient::connect(&stdio_target(&data)).await.unwrap();
    assert_eq!(client.server_info()["serverInfo"]["name"], "rampart");
    let tools = client.list_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "system_health",
            "system_about",
            "system_whoami",
            "get_current_time",
            "convert_time",
            "admin_token_create",
            "admin_token_list",
            "admin_token_revoke",
            "admin_token_rotate",
            "admin_config_reload",
            "admin_upstream_list",
            "admin_upstream_show",
            "admin_upstream_approve",
            "admin_upstream_restart",
        ],
        "the local operator is admin"
    );
    let time = tools.iter().find(|t| t.name == "get_current_time").unwrap();
    assert_eq!(time.raw["annotations"]["readOnlyHint"], true);
    assert_eq!(time.raw["outputSchema"]["properties"]["is_dst"]["type"], "boolean");

    let result = client.call_tool("get_current_time", arguments(json!({ "timezone": "Europe/Paris" }))).await.unwrap();
    assert_eq!(result["isError"], false);
    let structured = &result["structuredContent"];
    assert_eq!(structured["timezone"], "Europe/Paris");
    let datetime = structured["datetime"].as_str().unwrap();
    assert!(datetime.ends_with("+01:00") || datetime.ends_with("+02:00"), "{datetime}");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, structured, "the text block carries the same JSON");

    let converted = client
        .call_tool(
            "convert_time",
            arguments(json!({ "source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Kathmandu" })),
        )
        .await
        .unwrap();
    assert_eq!(converted["structuredContent"]["time_difference"], "+5.75h");

    let about = client.call_tool("system_about", Map::new()).await.unwrap();
    assert_eq!(about["structuredContent"]["toolboxes"], json!(["system", "admin"]));
    assert!(about["structuredContent"]["protocol_versions"].as_array().unwrap().contains(&json!("2026-07-28")));
    client.close().await;
}

#[tokio::test]
async fn tool_failures_are_results_and_unknown_tools_are_protocol_errors() {
    let data = TempDir::new("stdio");
    let client = McpClient::connect(&stdio_target(&data)).await.unwrap();
    let result = client.call_tool("get_current_time", arguments(json!({ "timezone": "Mars/Olympus" }))).await.unwrap();
    assert_eq!(result["isError"], true);
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("unknown timezone 'Mars/Olympus'"), "{text}");

    let unknown = client.call_tool("no_such_tool", Map::new()).await.unwrap_err().to_string();
    assert!(unknown.contains("Unknown tool: no_such_tool"), "{unknown}");

    // The session survives both.
    let health = client.call_tool("system_health", Map::new()).await.unwrap();
    assert_eq!(health["structuredContent"]["status"], "ok");
    client.close().await;
}

#[test]
fn stdout_carries_only_mcp_messages_and_logs_go_to_stderr() {
    let data = TempDir::new("stdio-raw");
    let mut server = RawStdio::start(&data, &["--log", "debug"]);
    server.initialize();
    server.call_health(2);
    let first = server.recv(Duration::from_secs(30)).unwrap();
    assert_eq!(first["id"], 1);
    assert_eq!(first["result"]["serverInfo"]["name"], "rampart");
    let second = server.recv(Duration::from_secs(30)).unwrap();
    assert_eq!(second["id"], 2);
    assert_eq!(second["result"]["structuredContent"]["status"], "ok");
    let (status, stderr, rest) = server.finish(); // EOF ends the session
    assert!(status.success(), "exit on stdin EOF: {status:?}");
    assert!(rest.is_empty(), "nothing else on stdout: {rest:?}");
    assert!(stderr.contains("transport: stdio"), "banner on stderr: {stderr}");
    assert!(stderr.contains("tool call"), "debug logs on stderr: {stderr}");
}

fn wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the server did not exit");
}

/// A tool call running as a task when stdin closes (the stdio session ends, nobody will
/// poll it) is cancelled and recorded before the server exits, not dropped unrecorded.
#[test]
fn a_task_running_at_stdin_eof_is_cancelled_and_recorded() {
    let data = TempDir::new("stdio-task");
    let mut child = Command::new("timeout")
        .args(["60", BIN, "serve", "--transport", "stdio", "--profile", "conformance"])
        .env("RAMPART_DATA_DIR", &data.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let tasks = json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } });
    for message in [
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-11-25", "capabilities": tasks, "clientInfo": { "name": "raw", "version": "0" } } }),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "slow_compute", "arguments": { "seconds": 120 } } }),
    ] {
        writeln!(stdin, "{message}").unwrap();
    }
    let created = lines
        .by_ref()
        .map_while(Result::ok)
        .map(|line| serde_json::from_str::<Value>(&line).unwrap())
        .find(|message| message["id"] == 2)
        .unwrap();
    let task = created["result"]["taskId"].as_str().unwrap_or_else(|| panic!("a task: {created}")).to_owned();
    drop(stdin);
    let started = std::time::Instant::now();
    assert!(wait(&mut child).success());
    assert!(started.elapsed() < Duration::from_secs(20), "the task does not hold the exit: {:?}", started.elapsed());
    let (code, out, err) =
        crate::support::run(&["audit", "search", "--json"], &[("RAMPART_DATA_DIR", data.0.to_str().unwrap())], None);
    assert_eq!(code, 0, "{err}");
    let record = out
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|record| record["task"] == json!(task) && record["method"] == "tools/call")
        .unwrap_or_else(|| panic!("the task's call is recorded: {out}"));
    assert_eq!(record["outcome"], "cancelled", "{record}");
}

// ---- the audit log's head, read off the first answer's path ----

/// `rampart serve --transport stdio` on `data`, its stdout read line by line on a thread.
struct RawStdio {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

/// A line of stdout as an MCP message; anything else fails the test.
fn message(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|_| panic!("not an MCP message on stdout: {line:?}"))
}

impl RawStdio {
    fn start(data: &TempDir, args: &[&str]) -> Self {
        let mut child = Command::new("timeout")
            .args(["60", BIN, "serve", "--transport", "stdio"])
            .args(args)
            .env("RAMPART_DATA_DIR", &data.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { stdin: child.stdin.take(), child, lines }
    }

    /// The next message on stdout, waiting at most `timeout`.
    fn recv(&self, timeout: Duration) -> Result<Value, std::sync::mpsc::RecvTimeoutError> {
        self.lines.recv_timeout(timeout).map(|line| message(&line))
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    fn initialize(&mut self) {
        self.send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "raw", "version": "0" } } }));
    }

    fn call_health(&mut self, id: u64) {
        self.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": "system_health", "arguments": {} } }));
    }

    /// Closes stdin (the session ends) and waits for the exit: the exit status, stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String, Vec<Value>) {
        drop(self.stdin.take());
        self.exit()
    }

    /// Waits for the server to exit by itself (stdin still open): the exit status, stderr,
    /// and the messages not read yet.
    fn exit(mut self) -> (std::process::ExitStatus, String, Vec<Value>) {
        let status = wait(&mut self.child);
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status, stderr, self.lines.iter().map(|line| message(&line)).collect())
    }
}

/// One stdio session calling `system_health`: a store with a record in it.
fn store_with_a_record(data: &TempDir) {
    let mut server = RawStdio::start(data, &[]);
    server.initialize();
    server.call_health(2);
    let answer = std::iter::from_fn(|| server.recv(Duration::from_secs(30)).ok()).find(|message| message["id"] == 2);
    let answer = answer.expect("the call is answered");
    assert_eq!(answer["result"]["structuredContent"]["status"], "ok", "{answer}");
    let (status, stderr, _) = server.finish();
    assert!(status.success(), "{stderr}");
}

/// Another process holding the SQLite store locked (no reader gets in) until `release`.
struct StoreLock(std::process::Child);

impl StoreLock {
    fn take(db: &std::path::Path) -> Self {
        let script = "import sqlite3,sys\n\
                      c=sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                      c.execute('PRAGMA locking_mode=EXCLUSIVE'); c.execute('BEGIN EXCLUSIVE')\n\
                      c.execute('SELECT count(*) FROM audit_records').fetchall()\n\
                      print('locked', flush=True); sys.stdin.readline()\n\
                      c.execute('COMMIT'); c.close(); print('released', flush=True)";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut said = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut said).unwrap();
        assert_eq!(said.trim(), "locked");
        Self(child)
    }

    fn release(mut self) {
        writeln!(self.0.stdin.as_mut().unwrap()).unwrap();
        assert!(self.0.wait().unwrap().success());
    }
}

/// The store's busy timeout (rampart-store: `PRAGMA busy_timeout = 5000`): how long the
/// first answer waited on a locked store when the log read its head before serving.
const STORE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Stdio cold start: the first answer does not wait for the store (the audit log reads its
/// chain's head in the background), but no call runs before the head is read, and the
/// call made meanwhile is recorded, chained after what was stored.
#[test]
fn the_first_answer_does_not_wait_for_the_store_and_no_call_runs_before_the_audit_head_is_read() {
    // Failing open too: a call must not run unrecorded before the head is read.
    for on_failure in ["closed", "open"] {
        let data = TempDir::new("stdio-locked-store");
        let config = data.0.join("rampart.toml");
        std::fs::write(&config, format!("[audit]\non_failure = \"{on_failure}\"\n")).unwrap();
        let args = ["--config", config.to_str().unwrap()];
        store_with_a_record(&data);
        let lock = StoreLock::take(&data.0.join("rampart.db"));
        let mut server = RawStdio::start(&data, &args);
        let started = std::time::Instant::now();
        server.initialize();
        let first = server.recv(STORE_BUSY_TIMEOUT - Duration::from_secs(1));
        let first =
            first.unwrap_or_else(|_| panic!("{on_failure}: initialize waited for the store: {:?}", started.elapsed()));
        assert_eq!(first["result"]["serverInfo"]["name"], "rampart", "{first}");

        server.call_health(2);
        let early = server.recv(Duration::from_millis(500));
        assert!(early.is_err(), "{on_failure}: a call answered before the audit log read its head: {early:?}");
        lock.release();
        let answer = server.recv(Duration::from_secs(10)).expect("the call runs once the store opens");
        assert_eq!(answer["id"], 2);
        assert_eq!(answer["result"]["structuredContent"]["status"], "ok", "{on_failure}: {answer}");
        let (status, stderr, _) = server.finish();
        assert!(status.success(), "{stderr}");

        let env = [("RAMPART_DATA_DIR", data.0.to_str().unwrap())];
        let (code, out, err) = crate::support::run(&["audit", "verify"], &env, None);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) =
            crate::support::run(&["audit", "search", "--tool", "system_health", "--json"], &env, None);
        assert_eq!(code, 0, "{err}");
        let calls: Vec<Value> = out.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(calls.len(), 2, "{on_failure}: both sessions' calls are recorded: {out}");
        assert!(calls.iter().all(|call| call["outcome"] == "ok"), "{out}");
    }
}

/// A stdio server whose audit chain ends in an edited record answers `initialize` (the
/// head is read in the background) but runs no call, and exits naming the fix.
#[test]
fn a_stdio_server_on_an_edited_audit_tail_runs_no_call_and_exits() {
    let data = TempDir::new("stdio-tampered-tail");
    store_with_a_record(&data);
    crate::security::sqlite(
        &data.0.join("rampart.db"),
        "UPDATE audit_records SET record = replace(record, '\"system_health\"', '\"system_about\"') \
         WHERE seq = (SELECT max(seq) FROM audit_records);",
    );
    let mut server = RawStdio::start(&data, &[]);
    server.initialize();
    server.call_health(2);
    let (status, stderr, messages) = server.exit();
    assert_eq!(status.code(), Some(2), "refuses to serve: {stderr}");
    assert!(stderr.contains("does not match its hash") && stderr.contains("rampart audit verify"), "{stderr}");
    let ran = messages.iter().find(|message| {
        message["id"] == 2 && message.get("result").is_some_and(|result| result["isError"] != json!(true))
    });
    assert!(ran.is_none(), "the call ran: {messages:?}");
    let env = [("RAMPART_DATA_DIR", data.0.to_str().unwrap())];
    let (code, out, _) = crate::support::run(&["audit", "search", "--tool", "system_health", "--json"], &env, None);
    assert_eq!((code, out.lines().count()), (0, 1), "nothing chained onto the edited record: {out}");
}
