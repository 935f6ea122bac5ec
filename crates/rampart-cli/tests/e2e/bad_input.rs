//! Malformed and hostile input over HTTP: each gets a clear status or JSON-RPC error, and
//! the server keeps serving.

use serde_json::{Value, json};

use crate::support::{Server, mcp_post, open_session, post_in_session};

fn error_code(messages: &[Value]) -> Option<i64> {
    messages.iter().find_map(|m| m["error"]["code"].as_i64())
}

#[tokio::test]
async fn each_bad_request_gets_a_clear_error_and_the_server_keeps_serving() {
    let server = Server::open(&[]);
    let client = reqwest::Client::new();
    let session = open_session(&client, &server.url).await;
    // (case, body, expected HTTP status, expected JSON-RPC error code)
    let cases: Vec<(&str, String, u16, i64)> = vec![
        ("malformed JSON", "{bad json".into(), 400, -32700),
        ("empty body", String::new(), 400, -32700),
        ("JSON-RPC batch", json!([{ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }]).to_string(), 400, -32600),
        (
            "wrong jsonrpc version",
            json!({ "jsonrpc": "1.0", "id": 3, "method": "tools/list" }).to_string(),
            400,
            -32600,
        ),
        ("not an object", "42".into(), 400, -32600),
        ("unknown method", json!({ "jsonrpc": "2.0", "id": 4, "method": "nope/nope" }).to_string(), 200, -32601),
        (
            "unknown tool",
            json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": { "name": "nope" } }).to_string(),
            200,
            -32602,
        ),
    ];
    for (case, body, status, code) in cases {
        let (got_status, messages) = post_in_session(&client, &server.url, &session, body).await;
        assert_eq!(got_status, status, "{case}: status");
        assert_eq!(error_code(&messages), Some(code), "{case}: {messages:?}");
        server.assert_alive().await;
    }
}

#[tokio::test]
async fn arguments_that_fail_the_schema_are_a_tool_error_naming_the_field() {
    let server = Server::open(&[]);
    let client = reqwest::Client::new();
    let session = open_session(&client, &server.url).await;
    let cases = [
        (json!({ "source_timezone": "UTC" }), "convert_time", "missing field `time`"),
        (json!({ "timezone": 42 }), "get_current_time", "expected a string"),
        (json!({ "timezone": "UTC", "extra": 1 }), "get_current_time", "unknown field `extra`"),
        (
            json!({ "source_timezone": "UTC", "time": "25:00", "target_timezone": "UTC" }),
            "convert_time",
            "invalid time '25:00'",
        ),
    ];
    for (arguments, tool, expected) in cases {
        let body = json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": { "name": tool, "arguments": arguments } });
        let (status, messages) = post_in_session(&client, &server.url, &session, body.to_string()).await;
        assert_eq!(status, 200);
        let result = &messages.iter().find(|m| m.get("result").is_some()).expect("a result")["result"];
        assert_eq!(result["isError"], true, "{arguments}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(expected), "{arguments}: {text}");
    }
    server.assert_alive().await;
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let server = Server::open(&[]);
    let client = reqwest::Client::new();
    let session = open_session(&client, &server.url).await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "a".repeat(5 * 1024 * 1024)
    );
    let (status, messages) = post_in_session(&client, &server.url, &session, big).await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&messages), Some(-32600));
    server.assert_alive().await;
}

#[tokio::test]
async fn transport_level_mistakes_get_their_http_status() {
    let server = Server::open(&[]);
    let client = reqwest::Client::new();
    let session = open_session(&client, &server.url).await;
    let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });

    let missing_accept = client
        .post(&server.url)
        .header("content-type", "application/json")
        .header("mcp-session-id", &session)
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(missing_accept.status(), 406, "missing Accept");
    assert!(missing_accept.text().await.unwrap().contains("text/event-stream"));

    let unknown_session =
        mcp_post(&client, &server.url).header("mcp-session-id", "no-such-session").json(&list).send().await.unwrap();
    assert_eq!(unknown_session.status(), 404, "unknown session id");

    let no_session = mcp_post(&client, &server.url).json(&list).send().await.unwrap();
    assert_eq!(no_session.status(), 400, "non-initialize request without a session");

    let wrong_type = client
        .post(&server.url)
        .header("content-type", "text/plain")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .body(list.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415, "wrong Content-Type");

    let deleted = client.delete(&server.url).header("mcp-session-id", &session).send().await.unwrap();
    assert!(deleted.status().is_success(), "DELETE ends the session: {}", deleted.status());
    let after_delete =
        mcp_post(&client, &server.url).header("mcp-session-id", &session).json(&list).send().await.unwrap();
    assert_eq!(after_delete.status(), 404, "a deleted session is gone");
    server.assert_alive().await;
}
