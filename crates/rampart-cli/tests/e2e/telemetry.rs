//! `[telemetry]`: the real server exports its spans over OTLP/HTTP to a collector in this
//! test (axum on 127.0.0.1, decoding the protobuf the exporter POSTs to `/v1/traces`). One
//! call's spans form one tree under the caller's W3C `traceparent` (an HTTP header, or
//! `_meta.traceparent` per SEP-414), its audit record names the trace, and an upstream MCP
//! server behind the gateway is handed the trace (header and `_meta`).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, any_value},
};
use prost::Message as _;
use serde_json::{Value, json};

use crate::{
    gateway::Fixture,
    real_clients::python,
    support::{Server, TempDir, initialize_body, mcp_post, messages, run, skip},
};

/// One exported span, as the test looks at it (ids in lower-case hex).
#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    /// OTLP's `SpanKind`: 1 internal, 2 server, 3 client.
    kind: i32,
    attributes: Vec<(String, String)>,
    /// The (trace id, span id) of each link.
    links: Vec<(String, String)>,
    service: String,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// An OTLP/HTTP trace collector on 127.0.0.1 (protobuf, as the exporter sends by default).
struct Collector {
    /// `http://127.0.0.1:PORT`, the `[telemetry] otlp_endpoint`.
    endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Self {
        async fn export(
            State(spans): State<Arc<Mutex<Vec<Span>>>>,
            body: Bytes,
        ) -> (StatusCode, [(&'static str, &'static str); 1]) {
            let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                return (StatusCode::BAD_REQUEST, [("content-type", "text/plain")]);
            };
            let mut received = Vec::new();
            for resource_spans in request.resource_spans {
                let service = resource_spans
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .map(|kv| text(kv.value.as_ref()))
                    .unwrap_or_default();
                for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                    received.push(Span {
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        name: span.name,
                        kind: span.kind,
                        attributes: span
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                            .collect(),
                        links: span.links.iter().map(|l| (hex(&l.trace_id), hex(&l.span_id))).collect(),
                        service: service.clone(),
                    });
                }
            }
            spans.lock().unwrap().extend(received);
            // An empty ExportTraceServiceResponse: everything accepted.
            (StatusCode::OK, [("content-type", "application/x-protobuf")])
        }
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().route("/v1/traces", post(export)).with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { endpoint, spans, task }
    }

    /// The spans of trace `trace_id` once `done` holds for them (15 s at most).
    async fn trace(&self, trace_id: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        for _ in 0..300 {
            let spans: Vec<Span> =
                self.spans.lock().unwrap().iter().filter(|s| s.trace_id == trace_id).cloned().collect();
            if done(&spans) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let all = self.spans.lock().unwrap().clone();
        panic!("trace {trace_id} incomplete after 15 s; every span received: {all:#?}");
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The one span named `name`, or a panic listing them all.
fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one span '{name}' expected in {spans:#?}");
    found[0]
}

fn has(spans: &[Span], name: &str) -> bool {
    spans.iter().any(|s| s.name == name)
}

/// The server's environment: the collector, and batches sent every `delay_ms`.
fn telemetry_env(collector: &Collector, delay_ms: &str) -> Vec<(String, String)> {
    vec![
        ("RAMPART_TELEMETRY_OTLP_ENDPOINT".into(), collector.endpoint.clone()),
        ("RAMPART_TELEMETRY_SERVICE_NAME".into(), "rampart-e2e".into()),
        ("OTEL_BSP_SCHEDULE_DELAY".into(), delay_ms.into()),
    ]
}

fn start(args: &[&str], env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_with_env(&[&["--insecure-no-auth"], args].concat(), &env)
}

/// Opens a session and sends one `tools/call` (with `headers`); returns its response.
async fn call(server: &Server, params: Value, headers: &[(&str, &str)]) -> Value {
    let client = reqwest::Client::new();
    let init = mcp_post(&client, &server.url).json(&initialize_body(1, "2025-11-25")).send().await.unwrap();
    assert_eq!(init.status(), 200, "initialize");
    let session = init.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = init.text().await;
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let response = mcp_post(&client, &server.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&initialized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let mut request = mcp_post(&client, &server.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = response.text().await.unwrap();
    messages(&content_type, &body).into_iter().find(|m| m["id"] == 2).unwrap_or_else(|| panic!("no answer: {body}"))
}

/// The audit records of tool `tool` in the store in `data` once one has `trace_id`.
fn audit_records(data: &TempDir, tool: &str, trace_id: &str) -> Vec<Value> {
    let dir = data.0.to_str().unwrap().to_owned();
    let args = ["audit", "search", "--tool", tool, "--json"];
    for _ in 0..200 {
        let (code, stdout, stderr) = run(&args, &[("RAMPART_DATA_DIR", &dir)], None);
        assert_eq!(code, 0, "{stderr}");
        if stdout.contains(trace_id) {
            return stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no audit record of {tool} names trace {trace_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_s_spans_form_a_tree_under_the_caller_s_traceparent_and_its_audit_record_names_the_trace() {
    let collector = Collector::start().await;
    let server = start(&[], &telemetry_env(&collector, "100"));
    server.assert_alive().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    let answer =
        call(&server, json!({ "name": "system_health", "arguments": {} }), &[("traceparent", &traceparent)]).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");

    // The innermost span ends (and may be exported) first: wait for the outermost too.
    let spans =
        collector.trace(trace_id, |spans| has(spans, "execute_tool system_health") && has(spans, "POST /mcp")).await;
    // HTTP request → MCP request → pipeline → the tool's run, each the child of the one before.
    let http = named(&spans, "POST /mcp");
    assert_eq!(http.parent_span_id, caller_span, "the HTTP span continues the caller's span");
    assert_eq!(http.kind, 2, "server");
    assert_eq!(http.service, "rampart-e2e");
    let mcp = named(&spans, "tools/call system_health");
    assert_eq!(mcp.parent_span_id, http.span_id, "{spans:#?}");
    assert_eq!((mcp.kind, mcp.attribute("mcp.method.name")), (2, Some("tools/call")));
    let pipeline = named(&spans, "pipeline");
    assert_eq!(pipeline.parent_span_id, mcp.span_id, "{spans:#?}");
    assert_eq!(pipeline.attribute("gen_ai.tool.name"), Some("system_health"));
    assert_eq!(pipeline.attribute("rampart.principal"), Some("anonymous"), "{pipeline:?}");
    assert_eq!(pipeline.attribute("rampart.toolbox"), Some("system"));
    assert_eq!(pipeline.attribute("rampart.decision"), Some("allow"));
    assert_eq!(pipeline.attribute("rampart.outcome"), Some("ok"));
    let tool = named(&spans, "execute_tool system_health");
    assert_eq!(tool.parent_span_id, pipeline.span_id, "{spans:#?}");
    assert!(spans.iter().all(|s| !s.attributes.iter().any(|(k, _)| k == "arguments")), "no arguments in spans");

    let records = audit_records(&server.data, "system_health", trace_id);
    let record = records.iter().find(|r| r["trace_id"] == trace_id).unwrap();
    assert_eq!(record["method"], "tools/call");
    assert_eq!(record["outcome"], "ok");

    // A call without a traceparent starts a trace of its own, also named in its record.
    let answer = call(&server, json!({ "name": "system_whoami", "arguments": {} }), &[]).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let (code, stdout, stderr) =
        server.cli_until(&["audit", "search", "--tool", "system_whoami", "--json"], |out| out.contains("trace_id"));
    assert_eq!(code, 0, "{stderr}");
    let record: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let own = record["trace_id"].as_str().unwrap_or_else(|| panic!("{record}"));
    assert!(own.len() == 32 && own != trace_id && own.bytes().all(|b| b.is_ascii_hexdigit()), "{own}");
    let spans = collector.trace(own, |spans| has(spans, "execute_tool system_whoami") && has(spans, "POST /mcp")).await;
    assert_eq!(named(&spans, "POST /mcp").parent_span_id, "", "a root: {spans:#?}");
    // Probes are not traced, and no span is made for the log alone.
    let all = collector.spans.lock().unwrap().clone();
    assert!(all.iter().all(|s| s.name != "GET /healthz" && s.name != "http"), "{all:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_in_meta_is_continued_and_the_last_spans_are_sent_when_the_server_stops() {
    let collector = Collector::start().await;
    // Batches every 10 minutes: what arrives was sent when the server stopped.
    let server = start(&[], &telemetry_env(&collector, "600000"));
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let client_span = "b7ad6b7169203331";
    let meta = json!({ "traceparent": format!("00-{trace_id}-{client_span}-01") });
    let answer = call(&server, json!({ "name": "system_health", "arguments": {}, "_meta": meta }), &[]).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let records = audit_records(&server.data, "system_health", trace_id);
    assert!(records.iter().any(|r| r["trace_id"] == trace_id), "{records:?}");
    assert!(collector.spans.lock().unwrap().is_empty(), "nothing sent before the batch is due");

    let _data = server.stop();
    let spans = collector.trace(trace_id, |spans| has(spans, "execute_tool system_health")).await;
    let mcp = named(&spans, "tools/call system_health");
    assert_eq!(mcp.parent_span_id, client_span, "the MCP span continues the _meta traceparent");
    // The HTTP request, which carried no traceparent, is a trace of its own, linked.
    assert!(!has(&spans, "POST /mcp"), "{spans:#?}");
    let (http_trace, http_span) = mcp.links.first().cloned().unwrap_or_else(|| panic!("no link: {mcp:?}"));
    let all = collector.spans.lock().unwrap().clone();
    let http = all.iter().find(|s| s.span_id == http_span).unwrap_or_else(|| panic!("{all:#?}"));
    assert_eq!((http.name.as_str(), http.trace_id.as_str()), ("POST /mcp", http_trace.as_str()));
    assert_eq!(named(&spans, "pipeline").parent_span_id, mcp.span_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_behind_the_gateway_gets_the_trace_in_its_header_and_meta() {
    let Some(python) = python() else {
        skip("telemetry through the gateway", "tests/clients/.venv (the Python SDK fixture) is not installed");
        return;
    };
    let collector = Collector::start().await;
    let dir = TempDir::new("telemetry-upstream");
    let fixture = Fixture::start(&python, &dir.0, 0);
    let config = dir.0.join("rampart.toml");
    std::fs::write(&config, format!("[upstreams.fx]\nurl = \"{}\"\nstart = \"eager\"\n", fixture.url)).unwrap();
    let server = start(&["--config", config.to_str().unwrap()], &telemetry_env(&collector, "100"));
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let traceparent = format!("00-{trace_id}-eee19b7ec3c1b174-01");
    let params = json!({ "name": "fx_echo", "arguments": { "text": "traced" } });
    let answer = call(&server, params, &[("traceparent", &traceparent)]).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");

    // The upstream's span ends first and may be exported a batch before its parents.
    let complete = |spans: &[Span]| has(spans, "tools/call echo") && has(spans, "POST /mcp");
    let spans = collector.trace(trace_id, complete).await;
    let tool = named(&spans, "execute_tool fx_echo");
    let upstream = named(&spans, "tools/call echo");
    assert_eq!(upstream.parent_span_id, tool.span_id, "{spans:#?}");
    assert_eq!((upstream.kind, upstream.attribute("rampart.upstream")), (3, Some("fx")));
    // What the upstream received: the upstream span as parent, in the header and in _meta.
    let expected = format!("00-{trace_id}-{}-01", upstream.span_id);
    let requests = std::fs::read_to_string(dir.0.join("headers.jsonl")).unwrap();
    let request: Value = requests
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|request| request["rpcMethod"] == "tools/call")
        .unwrap_or_else(|| panic!("no tools/call reached the upstream: {requests}"));
    assert_eq!(request["headers"]["traceparent"], expected.as_str(), "{request}");
    assert_eq!(request["rpcMeta"]["traceparent"], expected.as_str(), "{request}");
    assert!(request["headers"].get("tracestate").is_none() && request["rpcMeta"].get("tracestate").is_none());
    let records = audit_records(&server.data, "fx_echo", trace_id);
    assert!(records.iter().any(|r| r["trace_id"] == trace_id && r["toolbox"] == "upstream:fx"), "{records:?}");
}
