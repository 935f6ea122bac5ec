//! Property tests of what reaches `/mcp` (issue #19): whatever a client POSTs — arbitrary
//! bytes, mutated messages, or JSON-RPC-shaped objects with wrong types and missing or
//! conflicting members — the whole router (this layer, then rmcp and the pipeline) answers
//! within a deadline, does not panic, and answers with JSON-RPC:
//!
//! - not JSON: 400, -32700; JSON but not a well-formed envelope: 400, -32600 or -32602
//!   (the rules of `jsonrpc.rs`, restated here as the oracle), echoing a usable `id`;
//! - a well-formed request: a response carrying its `id` (-32601 for an unknown method);
//! - a notification, or a response in a session: 202 and no body.
//!
//! Never a plain-text transport status (rmcp's 415 for what it cannot read) or a 5xx.
//! Each property runs over a session (2025-11-25) and stateless. `PROPTEST_CASES` sets
//! the number of cases (default 256); `bench/fuzz.sh` runs them for as long as asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, TestCaseError, TestRunner},
};
use rampart_config::{Config, LoadOptions};
use rampart_core::Transport;
use serde_json::{Map, Value, json};

use crate::{Running, build, start_http};

/// How long one answer may take before the case counts as a hang.
const DEADLINE: Duration = Duration::from_secs(10);

/// Methods rmcp reads into typed parameters (a sample; `handler.rs` has the full list).
const KNOWN: &[&str] = &[
    "ping",
    "initialize",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
];

/// The server under test on a loopback port, on a fresh store, nobody authenticating
/// (every caller admin).
struct App {
    url: String,
    client: reqwest::Client,
    session: Option<String>,
    running: Running,
    _data: tempfile::TempDir,
}

impl App {
    async fn start(stateless: bool) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.listen = ([127, 0, 0, 1], 0).into();
        config.server.insecure_no_auth = true;
        config.server.stateless = stateless;
        config.store.data_dir = Some(data.path().to_path_buf());
        config.audit.enabled = false;
        let options = LoadOptions { config_path: None, overrides: Vec::new(), dotenv: false, env: Some(Vec::new()) };
        let built = build(&config, Transport::StreamableHttp, options, Vec::new()).await.unwrap();
        let running = start_http(&config, &built).await.unwrap();
        let url = format!("http://{}/mcp", running.local_addr);
        let mut app = Self { url, client: reqwest::Client::new(), session: None, running, _data: data };
        if !stateless {
            let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "props", "version": "1"}}});
            let answer = app.post(initialize.to_string().into_bytes()).await.unwrap();
            app.session = answer.headers.get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned());
            assert!(app.session.is_some(), "no session: {answer:?}");
            let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            assert_eq!(app.post(initialized.to_string().into_bytes()).await.unwrap().status, StatusCode::ACCEPTED);
        }
        app
    }

    /// POSTs `body` as a well-behaved client would (headers right, the body wrong).
    async fn post(&self, body: Vec<u8>) -> Result<Answer, String> {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body);
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        let exchange = async {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let (status, headers) = (response.status(), response.headers().clone());
            let body = response.text().await.map_err(|e| e.to_string())?;
            Ok(Answer { status, headers, body })
        };
        tokio::time::timeout(DEADLINE, exchange).await.map_err(|_| format!("no answer within {DEADLINE:?}"))?
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
    }
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    /// The JSON-RPC messages of the body: one JSON document, or SSE `data:` lines.
    fn messages(&self) -> Vec<Value> {
        let sse = self.headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if !sse {
            return serde_json::from_str(&self.body).into_iter().collect();
        }
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect()
    }
}

/// What the server must answer to a body.
#[derive(Debug, PartialEq)]
enum Expect {
    /// 400 with this JSON-RPC error code and the usable `id` (else `null`).
    Refused(i64),
    /// A response with the request's `id`; an error with this code if given.
    Answered { method_not_found: bool },
    /// 202 and no body.
    Accepted,
    /// A response sent to the server: 202 in a session; stateless, rmcp's -32600.
    Response,
}

/// The oracle: JSON-RPC 2.0 §4–§5 with MCP's rules (`id` a string or an integer, never
/// null; `params` an object or `null`, `_meta` in it an object).
fn expect(body: &[u8]) -> Expect {
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return Expect::Refused(-32700) };
    let Value::Object(message) = value else { return Expect::Refused(-32600) };
    if message.get("jsonrpc") != Some(&json!("2.0")) || message.get("id").is_some_and(|id| !usable_id(id)) {
        return Expect::Refused(-32600);
    }
    let has_id = message.contains_key("id");
    match (message.get("method"), message.get("result"), message.get("error")) {
        (Some(Value::String(method)), None, None) => match message.get("params") {
            Some(Value::Array(_)) => Expect::Refused(-32602),
            Some(Value::Object(params)) if params.get("_meta").is_some_and(|meta| !meta.is_object()) => {
                Expect::Refused(-32602)
            }
            Some(params) if !params.is_object() && !params.is_null() => Expect::Refused(-32600),
            _ if has_id => Expect::Answered { method_not_found: !KNOWN.contains(&method.as_str()) },
            _ => Expect::Accepted,
        },
        (None, Some(_), None) if has_id => Expect::Response,
        (None, None, Some(Value::Object(error)))
            if has_id
                && error.get("code").and_then(Value::as_i64).is_some_and(|c| i32::try_from(c).is_ok())
                && error.get("message").is_some_and(Value::is_string) =>
        {
            Expect::Response
        }
        _ => Expect::Refused(-32600),
    }
}

fn usable_id(id: &Value) -> bool {
    id.is_string() || id.is_i64()
}

/// Checks `answer` against `expect(body)`.
fn check(body: &[u8], answer: &Answer, stateless: bool) -> Result<(), TestCaseError> {
    let expected = expect(body);
    let context = || format!("body {:?}\nexpected {expected:?}\nanswer {answer:?}", String::from_utf8_lossy(body));
    let id = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .filter(usable_id)
        .unwrap_or(Value::Null);
    let messages = answer.messages();
    let error_code = |message: &Value| message.pointer("/error/code").and_then(Value::as_i64);
    let well_formed = |message: &Value| {
        message["jsonrpc"] == "2.0"
            && (message.get("result").is_some()
                || (error_code(message).is_some() && message.pointer("/error/message").is_some_and(Value::is_string)))
    };
    match expected {
        Expect::Refused(code) => {
            prop_assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", context());
            prop_assert!(messages.len() == 1 && well_formed(&messages[0]), "{}", context());
            prop_assert_eq!(error_code(&messages[0]), Some(code), "{}", context());
            prop_assert_eq!(&messages[0]["id"], &id, "{}", context());
        }
        Expect::Answered { method_not_found } => {
            prop_assert_eq!(answer.status, StatusCode::OK, "{}", context());
            let response = messages.iter().find(|m| m.get("id") == Some(&id) && well_formed(m));
            prop_assert!(response.is_some(), "no response with the request's id: {}", context());
            if method_not_found {
                prop_assert_eq!(response.and_then(error_code), Some(-32601), "{}", context());
            }
        }
        Expect::Accepted => {
            prop_assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", context());
            prop_assert!(answer.body.is_empty(), "{}", context());
        }
        Expect::Response if stateless => {
            prop_assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", context());
            prop_assert!(messages.len() == 1 && error_code(&messages[0]) == Some(-32600), "{}", context());
        }
        Expect::Response => {
            prop_assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", context());
        }
    }
    Ok(())
}

/// Runs `strategy`'s bodies against a session and a stateless server.
fn run_against_both(strategy: impl Strategy<Value = Vec<u8>>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for stateless in [false, true] {
        let app = runtime.block_on(App::start(stateless));
        let config = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
        let cases = config.cases;
        let result = TestRunner::new(config).run(&strategy, |body| {
            let answer = runtime.block_on(app.post(body.clone())).map_err(TestCaseError::fail)?;
            check(&body, &answer, stateless)
        });
        if let Err(failure) = result {
            panic!("{} server: {failure}", if stateless { "stateless" } else { "session" });
        }
        println!("proptest: {cases} cases"); // counted by bench/fuzz.sh
    }
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(("[a-z_]{0,6}", inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Sometimes absent, sometimes this, sometimes any JSON at all.
fn member(usual: impl Strategy<Value = Value> + 'static, absent: u32) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![absent => Just(None), 6 => usual.prop_map(Some), 1 => any_json().prop_map(Some)]
}

fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        "[a-z0-9-]{0,8}".prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(1.5)),
        Just(Value::Null),
    ]
}

fn method() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(KNOWN).prop_map(Value::from),
        1 => prop::sample::select(&["notifications/initialized", "notifications/cancelled", "notifications/progress"][..])
            .prop_map(Value::from),
        1 => "[a-z/_]{0,16}".prop_map(Value::from),
    ]
}

/// Parameters that are near what each method takes, or not near at all.
fn params() -> impl Strategy<Value = Value> {
    let tool = prop::sample::select(&["system_health", "get_current_time", "system_whoami", "nope", ""][..]);
    prop_oneof![
        (tool, prop::option::of(any_json())).prop_map(|(name, arguments)| {
            let mut params = json!({ "name": name });
            if let Some(arguments) = arguments {
                params["arguments"] = arguments;
            }
            params
        }),
        "\\PC{0,16}".prop_map(|uri| json!({ "uri": uri })),
        prop::sample::select(&["debug", "info", "loud", ""][..]).prop_map(|level| json!({ "level": level })),
        any_json().prop_map(|meta| json!({ "_meta": meta })),
        Just(json!({ "_meta": { "progressToken": 7 } })),
        Just(json!({})),
        prop::collection::vec(any_json(), 0..3).prop_map(Value::from),
    ]
}

fn error_object() -> impl Strategy<Value = Value> {
    (any_json(), any_json()).prop_map(|(code, message)| json!({ "code": code, "message": message })).boxed().prop_union(
        (any::<i32>(), "\\PC{0,8}").prop_map(|(code, message)| json!({ "code": code, "message": message })).boxed(),
    )
}

/// A JSON-RPC-shaped object: each member present or not, right or wrong.
fn envelope() -> impl Strategy<Value = Value> {
    (
        member(Just(json!("2.0")), 1),
        member(id(), 2),
        member(method(), 1),
        member(params(), 2),
        prop::option::weighted(0.15, any_json()),
        prop::option::weighted(0.15, error_object()),
        prop::option::weighted(0.1, ("[a-z]{1,6}", any_json())),
    )
        .prop_map(|(jsonrpc, id, method, params, result, error, extra)| {
            let mut message = Map::new();
            let named = [("jsonrpc", jsonrpc), ("id", id), ("method", method), ("params", params)];
            for (name, value) in named.into_iter().chain([("result", result), ("error", error)]) {
                if let Some(value) = value {
                    message.insert(name.into(), value);
                }
            }
            if let Some((name, value)) = extra {
                message.entry(name).or_insert(value);
            }
            Value::Object(message)
        })
}

/// Bytes: random, text, or a message with a few bytes changed, dropped or inserted.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0..3u8);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        "\\PC{0,64}".prop_map(String::into_bytes),
        (envelope(), prop::collection::vec(edit, 1..4)).prop_map(|(message, edits)| {
            let mut bytes = message.to_string().into_bytes();
            for (at, byte, kind) in edits {
                let index = at.index(bytes.len() + 1);
                match kind {
                    0 => bytes.insert(index, byte),
                    _ if index == bytes.len() => {}
                    1 => bytes[index] = byte,
                    _ => {
                        bytes.remove(index);
                    }
                }
            }
            bytes
        }),
        (1..200usize).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
    ]
}

#[test]
fn arbitrary_bytes_get_a_jsonrpc_answer() {
    run_against_both(bytes());
}

#[test]
fn malformed_envelopes_get_the_right_jsonrpc_error() {
    run_against_both(envelope().prop_map(|message| message.to_string().into_bytes()));
}

/// Found by the property above: rmcp answered these with a plain-text 415 ("fail to
/// deserialize request body") because the check let them through, and a known method
/// with parameters it could not read with -32601 "method not found".
#[tokio::test]
async fn regression_envelopes_rmcp_cannot_read() {
    let cases = [
        (json!({"jsonrpc": "2.0"}), Expect::Refused(-32600)),
        (json!({"jsonrpc": "2.0", "id": 1, "method": 42}), Expect::Refused(-32600)),
        (json!({"jsonrpc": "2.0", "id": {}, "method": "ping"}), Expect::Refused(-32600)),
        (json!({"jsonrpc": "2.0", "id": null, "method": "ping"}), Expect::Refused(-32600)),
        (json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}), Expect::Refused(-32600)),
        (json!({"jsonrpc": "2.0", "id": u64::MAX, "method": "ping"}), Expect::Refused(-32600)),
        (json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": "x"}), Expect::Refused(-32600)),
        (json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]}), Expect::Refused(-32602)),
        (json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": 5}}), Expect::Refused(-32602)),
        (json!({"jsonrpc": "2.0", "method": "notifications/x", "params": 5}), Expect::Refused(-32600)),
        (json!({"jsonrpc": "2.0", "id": 1, "error": 5}), Expect::Refused(-32600)),
        // rmcp reads `"params": null` as none; it must still pass.
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": null}),
            Expect::Answered { method_not_found: false },
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "nope", "params": null}),
            Expect::Answered { method_not_found: true },
        ),
        (json!({"jsonrpc": "2.0", "method": "notifications/initialized", "params": null}), Expect::Accepted),
        (json!({"jsonrpc": "2.0", "result": {}}), Expect::Refused(-32600)),
        (
            json!({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "x"}}),
            Expect::Refused(-32600),
        ),
        (json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "result": {}}), Expect::Refused(-32600)),
    ];
    for stateless in [false, true] {
        let app = App::start(stateless).await;
        for (body, expected) in &cases {
            let body = body.to_string().into_bytes();
            assert_eq!(&expect(&body), expected, "oracle");
            let answer = app.post(body.clone()).await.unwrap();
            check(&body, &answer, stateless).unwrap();
        }
        let bad_params = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": 5}});
        let answer = app.post(bad_params.to_string().into_bytes()).await.unwrap();
        let codes: Vec<_> = answer.messages().iter().filter_map(|m| m.pointer("/error/code").cloned()).collect();
        assert_eq!(codes, [json!(-32602)], "{answer:?}");
    }
}
