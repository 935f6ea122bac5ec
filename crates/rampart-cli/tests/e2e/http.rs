//! Streamable HTTP: rmcp's client end to end, authentication, DNS-rebinding protection,
//! public paths, stateless mode.

use rampart_mcp::{ClientTarget, McpClient};
use serde_json::{Map, Value, json};

use crate::support::{Server, TempDir, initialize_body, mcp_post, run};

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
