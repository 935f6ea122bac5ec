//! Issue #13, the attacks first: a session belongs to the principal that opened it, nothing
//! keyed by a client-supplied id is shared across principals, resources, prompts and
//! completions need their own grants, a dribbled body is cut off, and a token command whose
//! record cannot be written shows no secret.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Server, TempDir, initialize_body, mcp_post, messages, run};

/// Makes a token with `role` through the CLI on `server`'s store.
/// Opens a session as `token`; returns its id.
async fn open_session_as(client: &reqwest::Client, url: &str, token: &str) -> String {
    let init = mcp_post(client, url).bearer_auth(token).json(&initialize_body(1, "2025-11-25")).send().await.unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = init.text().await;
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let response = in_session(client, url, token, &session, &initialized).await;
    assert_eq!(response.0, 202);
    session
}

/// POSTs `body` as `token` in `session`; returns (status, raw body).
async fn in_session(client: &reqwest::Client, url: &str, token: &str, session: &str, body: &Value) -> (u16, String) {
    let response = mcp_post(client, url)
        .bearer_auth(token)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The JSON-RPC message answering `id` in a response body.
fn answer(body: &str, id: i64) -> Value {
    let content_type = if body.contains("data:") { "text/event-stream" } else { "application/json" };
    messages(content_type, body).into_iter().find(|m| m["id"] == json!(id)).unwrap_or(Value::Null)
}

fn request(id: i64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

/// The audit records of `principal`, oldest first (waiting for at least `at_least`).
fn records_of(server: &Server, principal: &str, at_least: usize) -> Vec<Value> {
    let (code, stdout, stderr) = server
        .cli_until(&["audit", "search", "--principal", principal, "--limit", "1000", "--json"], |out| {
            out.lines().count() >= at_least
        });
    assert_eq!(code, 0, "{stderr}");
    stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test]
async fn another_principals_session_answers_like_an_unknown_session_and_is_audited() {
    let server = Server::start(&[]);
    let _admin = server.admin_token();
    let alice = server.token("alice", "reader", None);
    let bob = server.token("bob", "reader", None);
    let client = reqwest::Client::new();
    let session = open_session_as(&client, &server.url, &alice).await;
    let list = request(2, "tools/list", json!({}));

    // What any caller gets for a session that does not exist.
    let unknown = in_session(&client, &server.url, &bob, "no-such-session", &list).await;
    assert_eq!(unknown.0, 404, "{unknown:?}");

    // Bob holds Alice's session id: every way of using it answers exactly like that.
    let attempts = [
        list.clone(),
        request(3, "tools/call", json!({ "name": "system_whoami", "arguments": {} })),
        request(4, "logging/setLevel", json!({ "level": "emergency" })),
    ];
    for attempt in &attempts {
        let (status, body) = in_session(&client, &server.url, &bob, &session, attempt).await;
        assert_eq!((status, &body), (unknown.0, &unknown.1), "POST {attempt}");
    }
    let stream = client
        .get(&server.url)
        .bearer_auth(&bob)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 404, "GET stream");
    assert_eq!(stream.text().await.unwrap(), unknown.1, "GET stream: same body");
    let delete = client
        .delete(&server.url)
        .bearer_auth(&bob)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 404, "DELETE");

    // Alice's session is untouched: still there, still hers, at her log level.
    let (status, body) = in_session(&client, &server.url, &alice, &session, &list).await;
    assert_eq!(status, 200);
    assert!(answer(&body, 2)["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{body}");
    let whoami = request(5, "tools/call", json!({ "name": "system_whoami", "arguments": {} }));
    let (_, body) = in_session(&client, &server.url, &alice, &session, &whoami).await;
    let me = &answer(&body, 5)["result"]["structuredContent"];
    assert_eq!((me["principal"].as_str(), me["session"].as_str()), (Some("token:alice"), Some(session.as_str())));

    // Each attempt is in the audit log, as Bob's, refused.
    let refused: Vec<Value> = records_of(&server, "token:bob", 5)
        .into_iter()
        .filter(|r| r["method"] == "session" && r["decision"] == "deny")
        .collect();
    assert_eq!(refused.len(), 5, "POST×3, GET, DELETE: {refused:?}");
    assert!(refused.iter().all(|r| r["detail"].as_str().unwrap().contains("another principal")), "{refused:?}");
}

/// A stateless (2026-07-28) request's `Mcp-Session-Id` is the client's word, not a
/// session: a principal sending another's session id there gets nothing of that session (here,
/// the exec toolbox's scratch directory), and does not end it.
#[tokio::test]
async fn a_client_supplied_session_id_shares_nothing_across_principals() {
    if crate::support::sandbox_missing("exec scratch isolation") {
        return;
    }
    let dir = TempDir::new("stateless-scratch");
    let config = dir.0.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = [\"system\", \"exec\"]\n\n[exec]\nprograms = {{ tee = \"/usr/bin/tee\", cat = \"/bin/cat\" }}\n\
             scratch_root = \"{}\"\n\n[roles.builder]\nincludes = [\"writer\"]\ncommands = [\"tee\", \"cat\"]\n",
            dir.0.join("scratch").display()
        ),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let _admin = server.admin_token();
    let alice = server.token("alice", "builder", Some(&config));
    let bob = server.token("bob", "builder", Some(&config));
    let client = reqwest::Client::new();
    let session = open_session_as(&client, &server.url, &alice).await;
    let run = |program: &str, args: Value, stdin: Option<&str>| {
        let mut arguments = json!({ "program": program, "args": args });
        if let Some(stdin) = stdin {
            arguments["stdin"] = json!(stdin);
        }
        request(7, "tools/call", json!({ "name": "run_command", "arguments": arguments }))
    };
    let (_, wrote) =
        in_session(&client, &server.url, &alice, &session, &run("tee", json!(["secret.txt"]), Some("alice's secret")))
            .await;
    assert_eq!(answer(&wrote, 7)["result"]["isError"], false, "{wrote}");

    // Bob, stateless, naming Alice's session in the header.
    let mut stateless = run("cat", json!(["secret.txt"]), None);
    stateless["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "e2e", "version": "0" },
    });
    let response = mcp_post(&client, &server.url)
        .bearer_auth(&bob)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "run_command")
        .json(&stateless)
        .send()
        .await
        .unwrap();
    let read = response.text().await.unwrap();
    assert!(!read.contains("alice's secret"), "Bob read Alice's scratch file: {read}");

    // Alice's session kept its scratch directory.
    let (_, again) = in_session(&client, &server.url, &alice, &session, &run("cat", json!(["secret.txt"]), None)).await;
    assert!(again.contains("alice's secret"), "Alice's scratch survived: {again}");
}

/// The CVE-2026-25536 class: a stateless server answering many principals at once must
/// never hand one caller's result to another.
#[tokio::test]
async fn concurrent_stateless_callers_never_receive_each_others_results() {
    let server = Server::start(&["--stateless"]);
    let admin = server.admin_token();
    let client = reqwest::Client::new();
    let stateless = async |token: &str, id: i64, method: &str, params: Value| {
        let response = mcp_post(&client, &server.url)
            .bearer_auth(token)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&request(id, method, params))
            .send()
            .await
            .unwrap();
        answer(&response.text().await.unwrap(), id)
    };
    let mut callers = Vec::new();
    for n in 0..50 {
        let role = if n % 2 == 0 { "admin" } else { "reader" };
        let name = format!("caller{n}");
        let made = stateless(
            &admin,
            1,
            "tools/call",
            json!({ "name": "admin_token_create", "arguments": { "name": name, "roles": [role] } }),
        )
        .await;
        let secret =
            made["result"]["structuredContent"]["token"].as_str().unwrap_or_else(|| panic!("{made}")).to_owned();
        callers.push((format!("token:{name}"), role, secret));
    }
    let tasks = callers.into_iter().map(|(principal, role, secret)| {
        let url = server.url.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for round in 0..10 {
                let post = |id: i64, method: &str, params: Value| {
                    mcp_post(&client, &url)
                        .bearer_auth(&secret)
                        .header("mcp-protocol-version", "2025-11-25")
                        .json(&request(id, method, params))
                        .send()
                };
                let whoami =
                    post(round, "tools/call", json!({ "name": "system_whoami", "arguments": {} })).await.unwrap();
                let me = answer(&whoami.text().await.unwrap(), round);
                assert_eq!(me["result"]["structuredContent"]["principal"], json!(principal), "{me}");
                assert_eq!(me["result"]["structuredContent"]["roles"], json!([role]), "{me}");
                let listed = post(100 + round, "tools/list", json!({})).await.unwrap();
                let tools = answer(&listed.text().await.unwrap(), 100 + round).to_string();
                assert_eq!(tools.contains("admin_token_create"), role == "admin", "{principal}: {tools}");
            }
        })
    });
    // Every caller is spawned before any is awaited: they run at once.
    for task in tasks.collect::<Vec<_>>() {
        task.await.expect("a caller saw another's result");
    }
}

/// Resources, resource templates, prompts and completions are granted by `resources` and
/// `prompts` in a role, deny by default: a reader sees none of the conformance fixtures, a
/// role granting some sees those only, and every refusal is audited under its own method.
#[tokio::test]
async fn resources_prompts_and_completions_need_their_own_grants() {
    let dir = TempDir::new("resource-grants");
    let config = dir.0.join("rampart.toml");
    std::fs::write(
        &config,
        "[roles.viewer]\nincludes = [\"reader\"]\nresources = [\"test://static-*\"]\nprompts = [\"test_simple_prompt\"]\n",
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap(), "--profile", "conformance"]);
    let admin = server.admin_token();
    let reader = server.token("reader", "reader", Some(&config));
    let viewer = server.token("viewer", "viewer", Some(&config));
    let client = reqwest::Client::new();
    let ask = async |token: &str, id: i64, method: &str, params: Value| {
        let session = open_session_as(&client, &server.url, token).await;
        let (_, body) = in_session(&client, &server.url, token, &session, &request(id, method, params)).await;
        answer(&body, id)
    };
    let names = |answer: &Value, list: &str, key: &str| -> Vec<String> {
        answer["result"][list].as_array().unwrap().iter().map(|i| i[key].as_str().unwrap().to_owned()).collect()
    };
    let complete = json!({ "ref": { "type": "ref/prompt", "name": "test_prompt_with_arguments" }, "argument": { "name": "arg1", "value": "" } });
    let subscribe = json!({ "uri": "test://watched-resource" });

    // The admin role grants every resource and prompt.
    assert_eq!(names(&ask(&admin, 1, "resources/list", json!({})).await, "resources", "uri").len(), 3);
    assert_eq!(names(&ask(&admin, 1, "prompts/list", json!({})).await, "prompts", "name").len(), 4);
    assert!(ask(&admin, 1, "completion/complete", complete.clone()).await["result"]["completion"]["values"].is_array());
    assert!(ask(&admin, 1, "resources/subscribe", subscribe.clone()).await.get("result").is_some());

    // A reader: nothing listed, and each use answers like a missing name.
    assert!(names(&ask(&reader, 1, "resources/list", json!({})).await, "resources", "uri").is_empty());
    assert!(
        names(&ask(&reader, 1, "resources/templates/list", json!({})).await, "resourceTemplates", "name").is_empty()
    );
    assert!(names(&ask(&reader, 1, "prompts/list", json!({})).await, "prompts", "name").is_empty());
    let read = ask(&reader, 1, "resources/read", json!({ "uri": "test://static-text" })).await;
    let missing = ask(&reader, 1, "resources/read", json!({ "uri": "test://no-such-thing" })).await;
    assert_eq!(read["error"]["code"], -32002, "{read}");
    assert_eq!(
        read["error"]["message"].as_str().map(|m| m.replace("static-text", "X")),
        missing["error"]["message"].as_str().map(|m| m.replace("no-such-thing", "X"))
    );
    let prompt = ask(&reader, 1, "prompts/get", json!({ "name": "test_simple_prompt" })).await;
    assert_eq!(prompt["error"]["code"], -32602, "{prompt}");
    let completion = ask(&reader, 1, "completion/complete", complete.clone()).await;
    assert_eq!(completion["error"]["code"], -32602, "{completion}");
    let subscribed = ask(&reader, 1, "resources/subscribe", subscribe).await;
    assert_eq!(subscribed["error"]["code"], -32002, "{subscribed}");

    // A viewer: exactly what its role grants.
    let listed = names(&ask(&viewer, 1, "resources/list", json!({})).await, "resources", "uri");
    assert_eq!(listed, ["test://static-text", "test://static-binary"]);
    assert_eq!(names(&ask(&viewer, 1, "prompts/list", json!({})).await, "prompts", "name"), ["test_simple_prompt"]);
    let text = ask(&viewer, 1, "resources/read", json!({ "uri": "test://static-text" })).await;
    assert!(text["result"]["contents"][0]["text"].is_string(), "{text}");
    let other = ask(&viewer, 1, "resources/read", json!({ "uri": "test://template/7/data" })).await;
    assert_eq!(other["error"]["code"], -32002, "{other}");

    // The reader's refusals are audited, each under its own method, as denials.
    let records = records_of(&server, "token:reader", 5);
    let denied = |method: &str| records.iter().any(|r| r["method"] == method && r["decision"] == "deny");
    for method in ["resources/read", "prompts/get", "completion/complete", "resources/subscribe"] {
        assert!(denied(method), "{method} refused and audited: {records:?}");
    }
    assert!(
        !records.iter().any(|r| r["method"] == "resources/read" && r["tool"] == "test://watched-resource"),
        "a subscription is not recorded as a read: {records:?}"
    );
}

/// An authenticated client that sends its body one byte per second is cut off with 408 at
/// `limits.body_read_timeout_secs`; the server keeps serving.
#[tokio::test]
async fn a_body_dribbled_one_byte_per_second_is_cut_off_with_408() {
    let dir = TempDir::new("dribble");
    let config = dir.0.join("rampart.toml");
    std::fs::write(&config, "[limits]\nbody_read_timeout_secs = 2\n").unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let admin = server.admin_token();
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = request(1, "tools/list", json!({})).to_string();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let dribble = async {
        for byte in body.as_bytes() {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), dribble).await;
    let mut response = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(6), stream.read(&mut response)).await.unwrap().unwrap();
    let response = String::from_utf8_lossy(&response[..read]).into_owned();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("body_read_timeout_secs"), "names the setting: {response}");
    assert!(started.elapsed() < Duration::from_secs(5), "cut off at the bound: {:?}", started.elapsed());
    server.assert_alive().await;
    let metrics = reqwest::Client::new().get(format!("{}/metrics", server.base)).bearer_auth(&admin).send().await;
    let metrics = metrics.unwrap().text().await.unwrap();
    assert!(metrics.contains("reason=\"body_read_timeout\""), "counted: {metrics}");
}

/// Fail closed from the command line: when the token's record cannot be stored, the new
/// secret is never shown.
#[test]
fn a_token_command_whose_record_cannot_be_written_prints_no_secret() {
    let data = TempDir::new("unwritable-audit");
    let dir = data.0.to_str().unwrap().to_owned();
    let env = [("RAMPART_DATA_DIR", dir.as_str())];
    let (code, _, stderr) = run(&["token", "list"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    let trigger = "CREATE TRIGGER refuse BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'read-only'); END;";
    let script = format!(
        "import sqlite3; c = sqlite3.connect({:?}); c.execute({trigger:?}); c.commit()",
        data.0.join("rampart.db")
    );
    let python = std::process::Command::new("python3").args(["-c", &script]).status().unwrap();
    assert!(python.success());
    let (code, stdout, stderr) = run(&["token", "create", "--name", "ci", "--role", "reader"], &env, None);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains("rpt_") && !stderr.contains("rpt_"), "no secret: {stdout}{stderr}");
    assert!(stderr.contains("audit"), "says why: {stderr}");
}
