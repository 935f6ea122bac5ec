//! What every test needs: a fixture HTTP server on `127.0.0.1:0` that records what it was
//! sent, a guard granting API scopes by name, calls that return the structured result or
//! the error text, a captured tracing log, and a child process holding the test secrets
//! (the environment is set by spawning, never by `set_var` in a threaded test binary).

use std::{
    collections::BTreeMap,
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use axum::{
    Router,
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use rampart_core::{
    Admission, CallContext, CallRecord, Caller, Denied, Guard, Principal, PrincipalKind, Refusal, Request as Attempt,
    ToolError, Toolbox,
};
use rampart_http::HttpToolbox;
use serde_json::{Map, Value, json};

/// One request as the fixture saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A local HTTP server with the routes the tests use (see `respond`).
pub struct Fixture {
    pub address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fixture {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let app = Router::new().fallback(move |request: Request| {
            let record = Arc::clone(&record);
            async move { respond(request, record).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, seen, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn respond(request: Request, record: Arc<Mutex<Vec<Seen>>>) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let query = parts.uri.query().map(str::to_owned);
    let params: BTreeMap<String, String> =
        url::form_urlencoded::parse(query.clone().unwrap_or_default().as_bytes()).into_owned().collect();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        headers: headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    record.lock().expect("lock").push(seen.clone());
    let path = parts.uri.path();
    let credential = headers.get("authorization").or_else(|| headers.get("x-api-key"));
    let authorization = credential.cloned().unwrap_or_default();
    match path {
        "/echo" | "/admin" | "/repos/rust-lang/rust" | "/user" => {
            let mut response = axum::Json(json!({
                "method": seen.method, "path": seen.path, "query": seen.query, "headers": headers, "body": seen.body,
            }))
            .into_response();
            let extra = response.headers_mut();
            extra.insert(header::SET_COOKIE, HeaderValue::from_static("session=abc123; HttpOnly"));
            extra.insert("x-ratelimit-remaining", HeaderValue::from_static("42"));
            extra.insert("x-internal-route", HeaderValue::from_static("backend-7"));
            if let Ok(value) = HeaderValue::from_str(&authorization) {
                extra.insert("x-echo-authorization", value.clone());
                extra.insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
        "/echo-text" => {
            // The credential near the end of a long text body: truncation cuts through it.
            let padding = params.get("pad").and_then(|pad| pad.parse().ok()).unwrap_or(0);
            text(StatusCode::OK, format!("{}{authorization} and more", "x".repeat(padding)))
        }
        "/json" => axum::Json(json!({"ok": true, "items": [1, 2, 3]})).into_response(),
        "/text" => text(StatusCode::OK, "hello, plain text".into()),
        "/bad-json" => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{not json").into_response(),
        "/problem" => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/problem+json")],
            r#"{"title":"Not Found","status":404}"#,
        )
            .into_response(),
        "/binary" => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "image/png")], vec![0x89, b'P', 0xff, 0xfe, 0x00]).into_response()
        }
        "/html" => (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], HTML).into_response(),
        "/big" => text(StatusCode::OK, "a".repeat(200_000)),
        "/endless" => stream(Duration::ZERO, 64 * 1024),
        "/drip" => stream(Duration::from_millis(100), 1),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            text(StatusCode::OK, "too late".into())
        }
        "/redirect" => {
            let status = params.get("status").and_then(|s| s.parse().ok()).unwrap_or(302);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
            let location = params.get("to").cloned().unwrap_or_default();
            (status, [(header::LOCATION, location)]).into_response()
        }
        "/loop" => (StatusCode::FOUND, [(header::LOCATION, "/loop")]).into_response(),
        "/items" if seen.method == "POST" => {
            let echoed: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
            (StatusCode::CREATED, axum::Json(json!({"created": echoed}))).into_response()
        }
        _ if path.starts_with("/status/") => {
            let code = path.trim_start_matches("/status/").parse().unwrap_or(500);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, axum::Json(json!({"status": code}))).into_response()
        }
        _ if path.starts_with("/pets") || path.starts_with("/repos/") || path.starts_with("/public/") => {
            axum::Json(json!({"method": seen.method, "path": seen.path, "query": seen.query, "body": seen.body}))
                .into_response()
        }
        _ => text(StatusCode::NOT_FOUND, format!("no route {path}")),
    }
}

const HTML: &str = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
    <script>alert('x')</script><h1>Rampart docs</h1><p>Read <a href=\"/x\">the guide</a>.</p>\
    <ul><li>one</li><li>two</li></ul></body></html>";

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// A body that never ends: `size` bytes every `interval`.
fn stream(interval: Duration, size: usize) -> Response {
    let chunks = futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(interval).await;
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(vec![b'z'; size])), ()))
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], Body::from_stream(chunks)).into_response()
}

/// The `[http.apis.NAME]` table of an API on `fixture`, allowed to reach it (loopback),
/// with `extra` settings on top.
pub fn local_api(fixture: &Fixture, extra: Value) -> Value {
    let mut api = json!({
        "base_url": fixture.url(),
        "methods": ["GET", "POST"],
        "allow_private": true,
        "timeout_ms": 2000,
        "max_response_bytes": 10_000,
    });
    if let (Some(api), Value::Object(extra)) = (api.as_object_mut(), extra) {
        api.extend(extra);
    }
    api
}

/// The toolbox for an `[http]` table.
pub fn toolbox(config: Value) -> HttpToolbox {
    HttpToolbox::from_config(config).expect("valid [http] config")
}

/// Grants API scopes by exact name, or all with `*`; denies everything else.
struct ScopeGuard {
    apis: Vec<String>,
}

#[async_trait]
impl Guard for ScopeGuard {
    fn authorize(&self, _: &Caller, request: &Attempt<'_>) -> Result<(), Denied> {
        let granted = match request {
            Attempt::Tool { .. } => true,
            Attempt::HttpApi { name } => self.apis.iter().any(|api| api == "*" || api == name),
            _ => false,
        };
        if granted { Ok(()) } else { Err(Denied { missing: request.to_string() }) }
    }

    async fn admit(&self, _: &Caller, _: &str, _: Option<&str>) -> Result<Admission, Refusal> {
        Ok(Admission::default())
    }

    async fn record(&self, _: CallRecord) -> Result<(), Refusal> {
        Ok(())
    }
}

/// A caller holding the API scopes `apis`.
pub fn caller(apis: &[&str]) -> CallContext {
    let principal = Principal { id: "agent".into(), kind: PrincipalKind::ApiToken, roles: vec!["agent".into()] };
    let guard = ScopeGuard { apis: apis.iter().map(|api| (*api).to_owned()).collect() };
    CallContext::detached(Caller::local(principal), Arc::new(guard))
}

/// A tool's result: structured content, its text, and `isError`.
#[derive(Debug)]
pub struct Called {
    pub value: Value,
    pub text: String,
    pub is_error: bool,
}

/// Calls `tool`; the result, or the error's text (`Denied:`-prefixed for policy refusals,
/// `Invalid:` for bad arguments, `NotFound:` for unknown tools).
pub async fn call(
    toolbox: &HttpToolbox,
    context: &CallContext,
    tool: &str,
    arguments: Value,
) -> Result<Called, String> {
    let arguments = match arguments {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    match toolbox.call_tool(tool, arguments, context).await {
        Ok(output) => {
            let text = output
                .content
                .iter()
                .map(|content| {
                    serde_json::to_value(content).unwrap_or_default()["text"].as_str().unwrap_or_default().to_owned()
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Called { value: output.structured_content.unwrap_or(Value::Null), text, is_error: output.is_error })
        }
        Err(ToolError::Failed(message)) => Err(message),
        Err(ToolError::Denied(denied)) => Err(format!("Denied: {denied}")),
        Err(ToolError::InvalidArguments(message)) => Err(format!("Invalid: {message}")),
        Err(ToolError::NotFound(message)) => Err(format!("NotFound: {message}")),
        Err(other) => Err(format!("Other: {other}")),
    }
}

/// `http_request` on `api`.
pub async fn request(
    toolbox: &HttpToolbox,
    context: &CallContext,
    api: &str,
    method: &str,
    path: &str,
) -> Result<Called, String> {
    call(toolbox, context, "http_request", json!({"api": api, "method": method, "path": path})).await
}

/// A tracing log captured at TRACE level for the current thread (the tests run on
/// Tokio's current-thread runtime, so the toolbox's events land here).
pub struct CapturedLog {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    pub fn start() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || BufferWriter(Arc::clone(&writer)))
            .finish();
        Self { buffer, _guard: tracing::subscriber::set_default(subscriber) }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().expect("lock")).into_owned()
    }
}

/// Marks the child process that holds the test secrets.
const CHILD: &str = "RAMPART_HTTP_TEST_CHILD";

/// The test secrets: variable and value.
pub const SECRETS: [(&str, &str); 3] = [
    ("RAMPART_HTTP_TEST_BEARER", "tok-S3CRET-bearer-9f8e7d6c"),
    ("RAMPART_HTTP_TEST_PASSWORD", "pw-S3CRET-basic-4b3a2918"),
    ("RAMPART_HTTP_TEST_KEY", "key-S3CRET-header-77665544"),
];

/// Whether this process holds [`SECRETS`] in its environment. When it does not, runs
/// `test` (its full path, e.g. `credentials::bearer`) in a child process of this test
/// binary that does, asserts that it passed, and returns `false`.
pub fn with_secrets(test: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .envs(SECRETS)
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stdout.contains("1 passed"), "child test {test} failed:\n{stdout}\n{stderr}");
    false
}

/// Asserts that none of the secrets' forms appears in `text`.
pub fn assert_no_secret(what: &str, text: &str) {
    use base64::Engine as _;
    for (_, secret) in SECRETS {
        assert!(!text.contains(secret), "{what} leaks a secret: {text}");
        // Any 8-character piece of it.
        for start in 0..secret.len().saturating_sub(8) {
            assert!(!text.contains(&secret[start..start + 8]), "{what} leaks part of a secret: {text}");
        }
    }
    let pair = format!("robot:{}", SECRETS[1].1);
    assert!(!text.contains(&base64::engine::general_purpose::STANDARD.encode(pair)), "{what} leaks the Basic value");
}
