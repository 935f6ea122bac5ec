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
    let mut child = Command::new("timeout")
        .args(["60", BIN, "serve", "--transport", "stdio", "--log", "debug"])
        .env("RAMPART_DATA_DIR", &data.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let requests = [
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "raw", "version": "0" } } }),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "system_health", "arguments": {} } }),
    ];
    for request in &requests {
        writeln!(stdin, "{request}").unwrap();
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["id"], 1);
    assert_eq!(first["result"]["serverInfo"]["name"], "rampart");
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["id"], 2);
    assert_eq!(second["result"]["structuredContent"]["status"], "ok");
    drop(stdin); // EOF ends the session
    let status = wait(&mut child);
    assert!(status.success(), "exit on stdin EOF: {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.is_empty(), "nothing else on stdout: {rest:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
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
