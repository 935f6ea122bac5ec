//! Streamable HTTP: rmcp's client end to end, authentication, DNS-rebinding protection,
//! public paths, stateless mode, one write for a quick answer.

use rampart_mcp::{ClientTarget, McpClient};
use serde_json::{Map, Value, json};

use crate::support::{Server, TempDir, initialize_body, mcp_post, messages, open_session, run};

const KEY: &str = "e2e-key-0123456789abcdef";

#[tokio::test]
async fn rmcp_client_calls_a_tool_with_a_bearer_key() {
    let server = Server::start(&["--auth-key", KEY]);
    let target = ClientTarget::Http { url: server.url.clone(), token: Some(KEY.into()) };
    let client = McpClient::connect(&target).await.unwrap();
    let tools = client.list_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "get_current_time"));
    let args: Map<String, Value> = json!({ "timezone": "Asia/Tokyo" }).as_object().cloned().unwrap();
    let result = client.call_tool("get_current_time", args).await.unwrap();
    assert!(result["structuredContent"]["datetime"].as_str().unwrap().ends_with("+09:00"));
    client.close().await;

    let without = McpClient::connect(&ClientTarget::Http { url: server.url.clone(), token: None }).await;
    assert!(without.is_err(), "no token, no session");
    let wrong = McpClient::connect(&ClientTarget::Http { url: server.url.clone(), token: Some("wrong".into()) }).await;
    assert!(wrong.is_err(), "wrong token, no session");
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401_with_a_challenge_and_are_logged_without_the_secret() {
    let server = Server::start(&["--auth-key", KEY]);
    let client = reqwest::Client::new();
    let one_off = format!("{}X", &KEY[..KEY.len() - 1]);
    let cases: [(Option<String>, &str); 4] = [
        (None, "missing"),
        (Some(format!("Bearer {one_off}")), "invalid"),
        (Some("Bearer WRONG-SECRET-VALUE".into()), "invalid"),
        (Some("Token abc".into()), "malformed"),
    ];
    for (authorization, reason) in &cases {
        let mut request = mcp_post(&client, &server.url).json(&initialize_body(1, "2025-11-25"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{authorization:?}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("credentials"), "{body}");
        let logged = format!("reason=\"{reason}\"");
        assert!(server.stderr_eventually_contains(&logged), "logged {logged}: {}", server.stderr());
    }
    let ok = mcp_post(&client, &server.url)
        .header("authorization", format!("Bearer {KEY}"))
        .json(&initialize_body(1, "2025-11-25"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let logs = server.stderr();
    assert!(
        logs.contains("authentication failed") && logs.contains("127.0.0.1"),
        "failures logged with the address: {logs}"
    );
    assert!(
        !logs.contains("WRONG-SECRET-VALUE") && !logs.contains(KEY) && !logs.contains(&one_off),
        "no secret in logs: {logs}"
    );
}

#[tokio::test]
async fn basic_auth_with_an_argon2_hash() {
    let (code, hash, _) = run(&["hash-password"], &[], None);
    assert_eq!(code, 2, "empty stdin is refused");
    assert!(hash.is_empty());
    let output = std::process::Command::new(crate::support::BIN)
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"correct horse\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let hash = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let dir = TempDir::new("basic");
    let config = dir.0.join("rampart.toml");
    std::fs::write(&config, format!("[auth.basic]\nuser = \"alice\"\npassword_hash = \"{hash}\"\n")).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let client = reqwest::Client::new();
    for (user, password, status) in
        [("alice", "correct horse", 200), ("alice", "wrong", 401), ("bob", "correct horse", 401)]
    {
        let response = mcp_post(&client, &server.url)
            .basic_auth(user, Some(password))
            .json(&initialize_body(1, "2025-11-25"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{user}:{password}");
        if status == 401 {
            assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("Basic"));
        }
    }
}

#[tokio::test]
async fn public_paths_need_no_credentials_and_everything_else_does() {
    let server = Server::start(&["--auth-key", KEY]);
    let client = reqwest::Client::new();
    for path in ["/", "/healthz", "/readyz"] {
        let response = client.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok", "{path}");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"), "{path}");
    }
    let ready: Value = client.get(format!("{}/readyz", server.base)).send().await.unwrap().json().await.unwrap();
    assert!(ready["services"].is_object());
    let mcp_get = client.get(&server.url).send().await.unwrap();
    assert_eq!(mcp_get.status(), 401, "GET /mcp needs credentials");
}

#[tokio::test]
async fn foreign_host_or_origin_gets_403_even_with_valid_credentials() {
    let server = Server::start(&["--auth-key", KEY, "--allowed-host", "mcp.example.com"]);
    let client = reqwest::Client::new();
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let cases = [
        (format!("evil.example.com:{port}"), None, 403),
        (format!("127.0.0.1:{port}"), Some("http://evil.example.com"), 403),
        (format!("127.0.0.1:{port}"), Some("null"), 403),
        (format!("localhost:{port}"), Some("http://localhost:3000"), 200),
        ("mcp.example.com".into(), None, 200),
        (format!("127.0.0.1:{port}"), None, 200),
    ];
    for (host, origin, status) in cases {
        let mut request = mcp_post(&client, &server.url)
            .header("host", &host)
            .header("authorization", format!("Bearer {KEY}"))
            .json(&initialize_body(1, "2025-11-25"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "host {host} origin {origin:?}");
        if status == 403 {
            let body: Value = response.json().await.unwrap();
            assert!(body["error"]["message"].as_str().unwrap().contains("not allowed"), "{body}");
        }
    }
    server.assert_alive().await;
}

#[test]
fn refuses_a_non_loopback_address_where_anonymous_callers_are_privileged() {
    let dir = TempDir::new("anonymous");
    let config = dir.0.join("rampart.toml");
    std::fs::write(&config, "[auth]\nanonymous = true\nanonymous_roles = [\"admin\"]\n").unwrap();
    // Refused before binding: nothing ever listens on 0.0.0.0.
    let (code, _, stderr) = run(&["serve", "--listen", "0.0.0.0:0", "--config", config.to_str().unwrap()], &[], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("refusing to listen on 0.0.0.0:0 without authentication"), "{stderr}");
    assert!(stderr.contains("--insecure-no-auth"), "says how to override: {stderr}");
}

#[tokio::test]
async fn stateless_mode_issues_no_session_and_still_serves() {
    let server = Server::open(&["--stateless"]);
    let client = reqwest::Client::new();
    let response = mcp_post(&client, &server.url).json(&initialize_body(1, "2025-11-25")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none(), "no session in stateless mode");
    let rmcp = McpClient::connect(&ClientTarget::Http { url: server.url.clone(), token: None }).await.unwrap();
    let result = rmcp.call_tool("system_health", Map::new()).await.unwrap();
    assert_eq!(result["structuredContent"]["status"], "ok");
    rmcp.close().await;
}

/// A quick call's answer leaves in one body of known length (headers, events and end in
/// one write, `coalesce.rs`), in session and in stateless mode; a long call's progress
/// still reaches the client as it happens, before the result.
#[tokio::test]
async fn a_quick_answer_is_one_body_of_known_length_and_a_long_call_still_streams() {
    for stateless in [false, true] {
        let mode = if stateless { "stateless" } else { "session" };
        let flags: &[&str] =
            if stateless { &["--profile", "conformance", "--stateless"] } else { &["--profile", "conformance"] };
        let server = Server::open(flags);
        let client = reqwest::Client::new();
        let session = if stateless { None } else { Some(open_session(&client, &server.url).await) };
        let post = |body: Value| {
            let request = mcp_post(&client, &server.url).header("mcp-protocol-version", "2025-11-25");
            match &session {
                Some(session) => request.header("mcp-session-id", session),
                None => request,
            }
            .json(&body)
        };

        // A debug build on a loaded test machine may now and then take longer than the
        // window for a quick call: one gathered answer out of five attempts shows the
        // gathering (without it, none is).
        let mut gathered = None;
        for _ in 0..5 {
            let quick = post(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": { "name": "get_current_time", "arguments": { "timezone": "UTC" } } }))
            .send()
            .await
            .unwrap();
            assert_eq!(quick.status(), 200, "{mode}");
            assert_eq!(quick.headers()["content-type"], "text/event-stream", "{mode}");
            if quick.headers().get("content-length").is_some() {
                gathered = Some(quick);
                break;
            }
            let _ = quick.text().await;
        }
        let quick = gathered.unwrap_or_else(|| panic!("{mode}: no quick answer came as one body of known length"));
        assert!(quick.headers().get("transfer-encoding").is_none(), "{mode}: {:?}", quick.headers());
        let length: usize = quick.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let body = quick.text().await.unwrap();
        assert_eq!(body.len(), length, "{mode}");
        let answers = messages("text/event-stream", &body);
        assert_eq!(answers.last().unwrap()["result"]["structuredContent"]["timezone"], "UTC", "{mode}: {body}");

        // 2 s in ten steps, a progress notification after each.
        let started = std::time::Instant::now();
        let mut long = post(json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": { "name": "slow_compute", "arguments": { "seconds": 2.0 }, "_meta": { "progressToken": "p-1" } } }))
        .send()
        .await
        .unwrap();
        assert_eq!(long.status(), 200, "{mode}");
        assert!(long.headers().get("content-length").is_none(), "{mode}: streamed, not gathered");
        let mut seen = String::new();
        while !seen.contains("notifications/progress") {
            let chunk = long.chunk().await.unwrap().expect("the stream goes on until the result");
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        let first_progress = started.elapsed();
        assert!(
            first_progress < std::time::Duration::from_millis(1500),
            "{mode}: first progress after {first_progress:?}"
        );
        while let Some(chunk) = long.chunk().await.unwrap() {
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        let answers = messages("text/event-stream", &seen);
        let progress = answers.iter().filter(|message| message["method"] == "notifications/progress").count();
        assert_eq!(progress, 10, "{mode}: {seen}");
        assert_eq!(answers.last().unwrap()["id"], 3, "{mode}: {seen}");
        assert!(started.elapsed() >= std::time::Duration::from_secs(2), "{mode}");
    }
}
