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

fn token(server: &Server, name: &str, role: &str, config: &std::path::Path) -> String {
    let (code, stdout, stderr) =
        server.cli(&["token", "create", "--name", name, "--role", role, "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    stdout.trim().to_owned()
}

#[tokio::test]
async fn a_toolbox_changing_its_tools_reaches_the_clients_that_can_see_them() {
    let dir = TempDir::new("live-catalog");
    let config = dir.0.join("rampart.toml");
    std::fs::write(&config, "").unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap(), "--profile", "conformance"]);
    let admin = server.admin_token();
    let reader = token(&server, "reader", "reader", &config);
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
    let ops = token(&server, "ops", "ops", &config);
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
