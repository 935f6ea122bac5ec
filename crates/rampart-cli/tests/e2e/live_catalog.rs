//! Issue #13, the live catalog and configuration reload: a toolbox whose tools change, and
//! a reloaded configuration, reach connected clients (rmcp's and the official Python SDK)
//! as `notifications/tools/list_changed` — only clients that can see the change — and the
//! next call follows the new configuration; an invalid reload keeps the running one.

use std::time::Duration;

use rampart_mcp::{ClientTarget, McpClient, ServerNotice};
use serde_json::{Value, json};

use crate::support::{Server, TempDir, run};

async fn connect(server: &Server, token: Option<&str>) -> McpClient {
    let target = ClientTarget::Http { url: server.url.clone(), token: token.map(str::to_owned) };
    McpClient::connect(&target).await.expect("connects")
}

async fn names(client: &McpClient) -> Vec<String> {
    client.list_tools().await.expect("lists").into_iter().map(|tool| tool.name).collect()
}

/// The next tools/list_changed within `wait`, skipping other notices.
async fn tool_list_changed(client: &McpClient, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
        match client.next_notice(left).await {
            Some(ServerNotice::ToolListChanged) => return true,
            Some(_) => continue,
            None => return false,
        }
    }
    false
}

#[tokio::test]
async fn a_toolbox_changing_its_tools_reaches_the_clients_that_can_see_them() {
    let dir = TempDir::new("live-catalog");
    let config = dir.0.join("rampart.toml");
    std::fs::write(&config, "").unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap(), "--profile", "conformance"]);
    let admin = server.admin_token();
    let reader = server.token("reader", "reader", Some(&config));
    let watcher = connect(&server, Some(&admin)).await;
    let bystander = connect(&server, Some(&reader)).await;
    assert!(!names(&watcher).await.contains(&"test_dynamic_tool".to_owned()));
    let before = names(&bystander).await;

    let toggled = watcher.call_tool("test_toggle_dynamic_tool", serde_json::Map::new()).await.unwrap();
    assert_eq!(toggled["isError"], false, "{toggled}");
    assert!(tool_list_changed(&watcher, Duration::from_secs(5)).await, "the admin session hears of it");
    assert!(names(&watcher).await.contains(&"test_dynamic_tool".to_owned()), "and lists the new tool");
    assert!(
        !tool_list_changed(&bystander, Duration::from_millis(500)).await,
        "a reader, who sees none of the conformance tools, is not told"
    );
    assert_eq!(names(&bystander).await, before);
    watcher.close().await;
    bystander.close().await;
}

#[test]
fn the_python_sdk_hears_list_changed_and_lists_the_new_tool() {
    let server = Server::open(&["--profile", "conformance"]);
    let Some(python) = crate::real_clients::python() else {
        return crate::support::skip("Python MCP SDK client", "tests/clients/.venv is missing");
    };
    let (code, output) = crate::real_clients::python_client(
        &python,
        &["http", &server.url, "--list-tools", "--call", "test_toggle_dynamic_tool", "--await-list-changed"],
    );
    assert_eq!(code, 0, "{output}");
    assert_eq!(output["listChanged"], true, "{output}");
    let listed = |key: &str| output[key].as_array().unwrap().iter().any(|name| name == "test_dynamic_tool");
    assert!(!listed("tools") && listed("toolsAfter"), "{output}");
}

fn send_hangup(server: &Server) {
    let pid = server.server_pid().to_string();
    let status = std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(status.success());
}

/// Calls `tool` as `token` in a new session; whether it is served (not refused as unknown).
async fn served(server: &Server, token: &str, tool: &str) -> bool {
    let response = crate::support::call_tool(server, token, tool, json!({})).await;
    response.get("result").is_some_and(|result| result["isError"] == false)
}

#[tokio::test]
async fn sighup_applies_a_changed_role_to_the_next_call_and_an_invalid_one_changes_nothing() {
    let dir = TempDir::new("reload");
    let config = dir.0.join("rampart.toml");
    std::fs::write(&config, "[roles.ops]\nincludes = [\"reader\"]\n").unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let admin = server.admin_token();
    let ops = server.token("ops", "ops", Some(&config));
    assert!(!served(&server, &ops, "admin_token_list").await, "not granted yet");
    let session = connect(&server, Some(&ops)).await;
    assert!(!names(&session).await.contains(&"admin_token_list".to_owned()));

    // Grant it and signal: the next call is served, and the open session is told.
    std::fs::write(&config, "[roles.ops]\nincludes = [\"reader\"]\ntools = [\"admin_token_list\"]\n").unwrap();
    send_hangup(&server);
    assert!(server.stderr_eventually_contains("SIGHUP reload applied"), "{}", server.stderr());
    assert!(served(&server, &ops, "admin_token_list").await, "the next call follows the new role");
    assert!(tool_list_changed(&session, Duration::from_secs(5)).await, "the open session hears of it");
    assert!(names(&session).await.contains(&"admin_token_list".to_owned()));

    // A broken file is refused with config check's words; the running configuration stays.
    std::fs::write(&config, "[roles.ops\nincludes = [\"reader\"]\n").unwrap();
    send_hangup(&server);
    assert!(server.stderr_eventually_contains("SIGHUP reload refused"), "{}", server.stderr());
    assert!(served(&server, &ops, "admin_token_list").await, "still the last good configuration");

    // `rampart config reload` is the same tool over MCP: a setting only a restart applies
    // is named, and nothing is applied.
    std::fs::write(&config, "[server]\nmax_body_bytes = 1000\n[roles.ops]\nincludes = [\"reader\"]\n").unwrap();
    let env = [("RAMPART_URL", server.url.as_str()), ("RAMPART_TOKEN", admin.as_str())];
    let (code, stdout, stderr) = run(&["config", "reload"], &env, None);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("server.max_body_bytes") && stderr.contains("restart"), "{stderr}");
    assert!(served(&server, &ops, "admin_token_list").await, "nothing was applied");

    // The reloads were calls of the local operator and of the admin, each recorded.
    let (code, stdout, stderr) = server.cli(&[
        "audit",
        "search",
        "--tool",
        "admin_config_reload",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let records: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let who: Vec<(&str, &str)> =
        records.iter().map(|r| (r["principal"].as_str().unwrap(), r["outcome"].as_str().unwrap())).collect();
    assert_eq!(who, [("local", "ok"), ("local", "tool_error"), ("token:admin", "tool_error")], "{stdout}");
    session.close().await;
}

/// A 2026-07-28 stateless request to the conformance server.
fn stateless_request(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "e2e", "version": "0" },
    });
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

fn post_stateless(client: &reqwest::Client, server: &Server, body: &Value) -> reqwest::RequestBuilder {
    crate::support::mcp_post(client, &server.url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", body["method"].as_str().unwrap())
        .json(body)
}

/// Reads SSE `data:` messages from `response` until one satisfies `wanted`; panics
/// after 10 s.
async fn read_until(response: &mut reqwest::Response, seen: &mut Vec<Value>, wanted: impl Fn(&Value) -> bool) -> Value {
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for data in event.lines().filter_map(|line| line.strip_prefix("data:")) {
                if let Ok(message) = serde_json::from_str::<Value>(data.trim()) {
                    seen.push(message.clone());
                    if wanted(&message) {
                        return message;
                    }
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("nothing wanted on the stream within 10 s; seen {seen:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended; seen {seen:?}"));
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// `subscriptions/listen` (2026-07-28): the stream is acknowledged, then carries
/// `tools/list_changed` (tagged with the subscription's id) when the tools change; a
/// subscription to a resource the caller cannot read is refused with the pipeline's
/// answer.
#[tokio::test]
async fn a_2026_client_listens_for_list_changes() {
    let server = Server::start(&["--profile", "conformance", "--insecure-no-auth"]);
    let client = reqwest::Client::new();
    let listen = stateless_request(7, "subscriptions/listen", json!({ "notifications": { "toolsListChanged": true } }));
    let mut stream = post_stateless(&client, &server, &listen).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = Vec::new();
    let ack = read_until(&mut stream, &mut seen, |m| m["method"] == "notifications/subscriptions/acknowledged").await;
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], true, "{ack}");

    let toggle = stateless_request(8, "tools/call", json!({ "name": "test_toggle_dynamic_tool", "arguments": {} }));
    let toggled = post_stateless(&client, &server, &toggle).header("mcp-name", "test_toggle_dynamic_tool").send().await;
    assert_eq!(toggled.unwrap().status(), 200);
    let changed = read_until(&mut stream, &mut seen, |m| m["method"] == "notifications/tools/list_changed").await;
    assert_eq!(changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 7, "{changed}");

    let refused = stateless_request(
        9,
        "subscriptions/listen",
        json!({ "notifications": { "resourceSubscriptions": ["test://no-such-resource"] } }),
    );
    let response = post_stateless(&client, &server, &refused).send().await.unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let body = response.text().await.unwrap();
    let answer = crate::support::messages(&content_type, &body).into_iter().find(|m| m["id"] == 9);
    let answer = answer.unwrap_or_else(|| panic!("{body}"));
    // -32602 in 2026-07-28 (SEP-2164), -32002 before.
    assert_eq!(answer["error"]["code"], -32602, "no such resource, no subscription: {answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("Resource not found"), "{answer}");
}
