//! MCP over WebSocket at `/ws` with a real WebSocket client (tokio-tungstenite): a whole
//! session with progress and cancellation, the browser's token subprotocol, and what is
//! refused at the upgrade (no credentials, a foreign Origin, no `mcp` subprotocol, a
//! message over the size limit).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{
    Message,
    client::IntoClientRequest,
    http::{HeaderValue, StatusCode},
};

use crate::support::Server;

const KEY: &str = "websocket-key-1";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(server: &Server) -> String {
    format!("{}/ws", server.base.replace("http://", "ws://"))
}

async fn connect(server: &Server, headers: &[(&str, &str)]) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = ws_url(server).into_client_request().unwrap();
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().append(name, HeaderValue::from_str(value).unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
}

fn refused_with(result: Result<Socket, tokio_tungstenite::tungstenite::Error>) -> StatusCode {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status(),
        Err(other) => panic!("refused, but not with an HTTP status: {other}"),
        Ok(_) => panic!("the upgrade should have been refused"),
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::Text(message.to_string().into())).await.unwrap();
}

/// The next JSON-RPC message from the server.
async fn receive(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next()).await.expect("a frame within 20 s");
        match frame.expect("the connection is open").unwrap() {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn initialize(socket: &mut Socket) -> Value {
    send(
        socket,
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "ws-test", "version": "1" } } }),
    )
    .await;
    let answer = receive(socket).await;
    send(socket, json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_session_over_websocket_with_progress_and_cancellation() {
    let server = Server::start(&["--auth-key", KEY, "--profile", "conformance"]);
    let bearer = format!("Bearer {KEY}");
    let mut socket = connect(&server, &[("Authorization", &bearer), ("Sec-WebSocket-Protocol", "mcp")]).await.unwrap();
    let answer = initialize(&mut socket).await;
    assert_eq!(answer["result"]["protocolVersion"], "2025-11-25", "{answer}");

    send(
        &mut socket,
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "get_current_time", "arguments": { "timezone": "Asia/Tokyo" } } }),
    )
    .await;
    let answer = receive(&mut socket).await;
    assert!(answer["result"]["structuredContent"]["datetime"].as_str().unwrap().ends_with("+09:00"), "{answer}");

    // Progress notifications come on the same connection, then the result.
    send(
        &mut socket,
        json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": { "name": "test_tool_with_progress", "arguments": {}, "_meta": { "progressToken": "p-1" } } }),
    )
    .await;
    let mut progress = Vec::new();
    let result = loop {
        let message = receive(&mut socket).await;
        if message["method"] == "notifications/progress" {
            assert_eq!(message["params"]["progressToken"], "p-1");
            progress.push(message["params"]["progress"].as_f64().unwrap());
        } else {
            break message;
        }
    };
    assert_eq!(result["id"], 3, "{result}");
    assert_eq!(progress, [0.0, 50.0, 100.0]);

    // A long call cancelled by the client stops on the server; the session goes on.
    send(
        &mut socket,
        json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": { "name": "test_sleep", "arguments": { "ms": 20000 } } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&mut socket, json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 4 } }))
        .await;
    assert!(
        tokio::task::block_in_place(|| server.stderr_eventually_contains("tool call cancelled")),
        "the tool stopped long before its 20 s"
    );
    send(&mut socket, json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/list" })).await;
    let answer = receive(&mut socket).await;
    assert_eq!(answer["id"], 5, "{answer}");

    // Not JSON-RPC: an error frame, and the connection stays.
    socket.send(Message::Text("{not json".into())).await.unwrap();
    let answer = receive(&mut socket).await;
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    socket.close(None).await.unwrap();

    // Calls are audited as WebSocket calls.
    let (_, records, _) =
        server.cli_until(&["audit", "search", "--tool", "get_current_time", "--json"], |out| out.contains("websocket"));
    assert!(records.contains("\"transport\":\"websocket\""), "{records}");
}

#[tokio::test]
async fn the_upgrade_is_authenticated_origin_checked_and_bounded() {
    let server = Server::start(&["--auth-key", KEY]);
    let bearer = format!("Bearer {KEY}");
    // No credentials; wrong credentials.
    assert_eq!(refused_with(connect(&server, &[("Sec-WebSocket-Protocol", "mcp")]).await), StatusCode::UNAUTHORIZED);
    let wrong = [("Authorization", "Bearer nope"), ("Sec-WebSocket-Protocol", "mcp")];
    assert_eq!(refused_with(connect(&server, &wrong).await), StatusCode::UNAUTHORIZED);
    // A page of another site (DNS rebinding / cross-site WebSocket hijacking).
    let foreign =
        [("Authorization", bearer.as_str()), ("Sec-WebSocket-Protocol", "mcp"), ("Origin", "http://evil.example.com")];
    assert_eq!(refused_with(connect(&server, &foreign).await), StatusCode::FORBIDDEN);
    // No `mcp` subprotocol.
    assert_eq!(refused_with(connect(&server, &[("Authorization", bearer.as_str())]).await), StatusCode::BAD_REQUEST);

    // A browser: the token as a subprotocol, which is not echoed back.
    let browser = format!("mcp, bearer.{KEY}");
    let mut request = ws_url(&server).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(&browser).unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "mcp");
    let answer = initialize(&mut socket).await;
    assert!(answer["result"]["serverInfo"].is_object(), "{answer}");

    // A message over server.max_body_bytes closes the connection.
    let huge =
        json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": { "pad": "x".repeat(5 * 1024 * 1024) } });
    let _ = socket.send(Message::Text(huge.to_string().into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the connection is closed");
    // The server keeps serving.
    let socket = connect(&server, &[("Authorization", bearer.as_str()), ("Sec-WebSocket-Protocol", "mcp")]).await;
    assert!(socket.is_ok());
}

#[test]
fn rampart_s_own_client_speaks_websocket_urls() {
    let server = Server::start(&["--auth-key", KEY]);
    let url = ws_url(&server);
    let env = [("RAMPART_TOKEN", KEY)];
    let (code, stdout, stderr) =
        crate::support::run(&["call", "get_current_time", "timezone=Asia/Tokyo", "--url", &url, "--json"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+09:00"), "{stdout}");
    let (code, _, stderr) = crate::support::run(&["tools", "--url", &url], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("HTTP 401") && stderr.contains("--token"), "{stderr}");
}
