//! Tool calls run as tasks (the 2026-07-28 tasks extension, SEP-2663) through the real
//! server: a long `run_command` polled to completion, another cancelled, neither visible
//! to another principal, and each recorded once with its task id.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Server, TempDir, mcp_post, messages};

/// A stateless 2026-07-28 request from a client that declares the tasks extension (or,
/// with `tasks: false`, one that does not).
fn stateless(id: i64, method: &str, mut params: Value, tasks: bool) -> Value {
    let capabilities = if tasks { json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } }) } else { json!({}) };
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": { "name": "e2e", "version": "0" },
    });
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

/// Sends `body` as `token` and returns the JSON-RPC message answering it.
async fn send(client: &reqwest::Client, server: &Server, token: &str, body: &Value) -> Value {
    let method = body["method"].as_str().unwrap();
    let name = match method {
        "tools/call" => body["params"]["name"].as_str().unwrap(),
        _ => body["params"]["taskId"].as_str().unwrap(),
    };
    let response = mcp_post(client, &server.url)
        .bearer_auth(token)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .header("mcp-name", name)
        .json(body)
        .send()
        .await
        .unwrap();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = response.text().await.unwrap();
    messages(&content_type, &text).into_iter().find(|m| m["id"] == body["id"]).unwrap_or_else(|| panic!("{text}"))
}

/// Polls `tasks/get` until the task leaves `working`; panics after 30 s.
async fn settle(client: &reqwest::Client, server: &Server, token: &str, task: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in 1000.. {
        let got = send(client, server, token, &stateless(id, "tasks/get", json!({ "taskId": task }), true)).await;
        let status = got["result"]["status"].as_str().unwrap_or_else(|| panic!("{got}")).to_owned();
        if status != "working" {
            return got["result"].clone();
        }
        assert!(Instant::now() < deadline, "task {task} still working after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn a_long_command_runs_as_a_task_only_its_creator_sees() {
    if crate::support::sandbox_missing("exec tasks end-to-end") {
        return;
    }
    let dir = TempDir::new("tasks");
    let config = dir.0.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = [\"system\", \"exec\"]\n\n[exec]\nprograms = {{ sh = \"/bin/sh\", sleep = \"/bin/sleep\" }}\n\
             scratch_root = \"{}\"\n\n[roles.builder]\nincludes = [\"writer\"]\ncommands = [\"sh\", \"sleep\"]\n",
            dir.0.join("scratch").display()
        ),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let _admin = server.admin_token();
    let token = |name: &str| server.token(name, "builder", Some(&config));
    let (alice, bob) = (token("alice"), token("bob"));
    let client = reqwest::Client::new();
    let run = |id: i64, program: &str, args: Value, tasks: bool| {
        stateless(
            id,
            "tools/call",
            json!({ "name": "run_command", "arguments": { "program": program, "args": args } }),
            tasks,
        )
    };

    // Polled to completion.
    let created = send(&client, &server, &alice, &run(1, "sh", json!(["-c", "sleep 1; echo finished"]), true)).await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    assert_eq!(created["result"]["status"], "working", "{created}");
    let finished_id = created["result"]["taskId"].as_str().unwrap().to_owned();
    assert!(created["result"]["ttlMs"].as_u64().unwrap() >= 360_000, "at least the call timeout + 60 s: {created}");
    let done = settle(&client, &server, &alice, &finished_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["isError"], false, "{done}");
    assert!(done["result"].to_string().contains("finished"), "the command's output is the task's result: {done}");

    // Bob sees nothing of Alice's tasks: not the finished one, not a running one, and
    // cannot cancel it.
    let running = send(&client, &server, &alice, &run(2, "sleep", json!(["30"]), true)).await;
    let running_id = running["result"]["taskId"].as_str().unwrap().to_owned();
    for (id, method, task) in [
        (3, "tasks/get", &finished_id),
        (4, "tasks/get", &running_id),
        (5, "tasks/cancel", &running_id),
        (6, "tasks/update", &running_id),
    ] {
        let mut params = json!({ "taskId": task });
        if method == "tasks/update" {
            params["inputResponses"] = json!({});
        }
        let refused = send(&client, &server, &bob, &stateless(id, method, params, true)).await;
        assert_eq!(refused["error"]["code"], -32602, "{method} by another principal: {refused}");
        assert_eq!(
            refused["error"]["message"],
            format!("unknown task: {task}"),
            "the answer for no such task: {refused}"
        );
        assert!(!refused.to_string().contains("finished"), "{refused}");
    }
    let still = send(&client, &server, &alice, &stateless(7, "tasks/get", json!({ "taskId": running_id }), true)).await;
    assert_eq!(still["result"]["status"], "working", "Bob's cancel did nothing: {still}");

    // Cancelled by its creator: the sandboxed process stops, long before its 30 s.
    let started = Instant::now();
    let ack =
        send(&client, &server, &alice, &stateless(8, "tasks/cancel", json!({ "taskId": running_id }), true)).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    let cancelled = settle(&client, &server, &alice, &running_id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(started.elapsed() < Duration::from_secs(20), "cancelled, not run out: {:?}", started.elapsed());

    // A client that does not declare the extension gets its answer in the call.
    let direct = send(&client, &server, &alice, &run(9, "sh", json!(["-c", "echo direct"]), false)).await;
    assert_eq!(direct["result"]["resultType"], "complete", "{direct}");
    let quick = send(&client, &server, &alice, &run(11, "sh", json!(["-c", "echo quick"]), true)).await;
    assert_eq!(
        quick["result"]["resultType"], "complete",
        "a call that ends at once is answered in its response: {quick}"
    );
    assert!(quick["result"].to_string().contains("quick"), "{quick}");
    assert!(direct["result"].to_string().contains("direct"), "{direct}");
    let undeclared =
        send(&client, &server, &alice, &stateless(10, "tasks/get", json!({ "taskId": finished_id }), false)).await;
    assert_eq!(undeclared["error"]["code"], -32021, "tasks/get needs the extension declared: {undeclared}");

    // One record per call, with its task id and how it ended; Bob's attempts denied.
    let (code, out, err) = server.cli_until(&["audit", "search", "--limit", "1000", "--json"], |out| {
        out.contains(&running_id) && out.matches("\"tasks/").count() >= 5
    });
    assert_eq!(code, 0, "{err}");
    let records: Vec<Value> = out.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let of_task = |task: &str, method: &str| -> Vec<&Value> {
        records.iter().filter(|r| r["task"] == json!(task) && r["method"] == json!(method)).collect()
    };
    let calls = of_task(&finished_id, "tools/call");
    assert_eq!(calls.len(), 1, "one record for the finished task's call: {records:?}");
    assert_eq!((calls[0]["principal"].as_str(), calls[0]["outcome"].as_str()), (Some("token:alice"), Some("ok")));
    let calls = of_task(&running_id, "tools/call");
    assert_eq!(calls.len(), 1, "{records:?}");
    assert_eq!(calls[0]["outcome"], "cancelled", "{records:?}");
    let denied: Vec<&Value> =
        records.iter().filter(|r| r["principal"] == "token:bob" && r["decision"] == "deny").collect();
    assert_eq!(denied.len(), 4, "every attempt on another's task is recorded: {records:?}");
    assert!(denied.iter().all(|r| r["detail"].as_str().unwrap().contains("another principal")), "{denied:?}");
    let cancels = of_task(&running_id, "tasks/cancel");
    assert!(cancels.iter().any(|r| r["principal"] == "token:alice" && r["outcome"] == "ok"), "{records:?}");
}
