//! `rampart chat` against a scripted OpenAI-compatible model (an axum fixture: it answers
//! with tool calls or streamed text, records what it is sent, or fails on purpose) and
//! real MCP servers: Rampart, and server-everything over stdio.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

use crate::support::{BIN, Server, TempDir, run};

/// What the model does on one request.
#[derive(Clone)]
pub(crate) enum Reply {
    /// Calls the offered tools whose names end with these suffixes, with these arguments.
    Calls(Vec<(&'static str, Value)>),
    /// Streams this text, a few characters per event.
    Text(&'static str),
    /// Answers this HTTP status and JSON body.
    Error(u16, Value),
}

#[derive(Default)]
struct Script {
    replies: Vec<Reply>,
    /// (Authorization header, request body) of each request.
    seen: Vec<(Option<String>, Value)>,
}

/// The scripted model, on a loopback port, for as long as it is alive.
pub(crate) struct ModelFixture {
    /// `http://127.0.0.1:PORT/v1`
    pub(crate) base_url: String,
    script: Arc<Mutex<Script>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl ModelFixture {
    pub(crate) fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Mutex::new(Script { replies, seen: Vec::new() }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, address) = std::sync::mpsc::channel::<SocketAddr>();
        let state = Arc::clone(&script);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new().route("/v1/chat/completions", post(completions)).with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(300), stopped).await;
                    })
                    .await;
            });
        });
        let address = address.recv_timeout(Duration::from_secs(10)).unwrap();
        Self { base_url: format!("http://{address}/v1"), script, _stop: stop }
    }

    /// The requests the model received: (Authorization header, body).
    pub(crate) fn seen(&self) -> Vec<(Option<String>, Value)> {
        self.script.lock().unwrap().seen.clone()
    }
}

async fn completions(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let reply = {
        let mut script = script.lock().unwrap();
        script.seen.push((authorization, body.clone()));
        if script.replies.is_empty() {
            Reply::Text("(the script has no more replies)")
        } else {
            script.replies.remove(0)
        }
    };
    let events: Vec<Value> = match reply {
        Reply::Error(status, body) => {
            return (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
        }
        Reply::Text(text) => {
            let chars: Vec<char> = text.chars().collect();
            let mut events: Vec<Value> = chars
                .chunks(4)
                .map(|chunk| json!({ "choices": [{ "index": 0, "delta": { "content": chunk.iter().collect::<String>() } }] }))
                .collect();
            events.push(json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }] }));
            events
        }
        Reply::Calls(calls) => {
            let offered: Vec<String> = body["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
                .collect();
            let mut events = Vec::new();
            for (index, (suffix, arguments)) in calls.iter().enumerate() {
                let name =
                    offered.iter().find(|name| name.ends_with(suffix)).cloned().unwrap_or_else(|| (*suffix).to_owned());
                let text = arguments.to_string();
                let (first, second) = text.split_at(text.len() / 2);
                events.push(json!({ "choices": [{ "index": 0, "delta": { "role": "assistant", "tool_calls": [
                    { "index": index, "id": format!("call_{index}"), "type": "function", "function": { "name": name, "arguments": first } }
                ] } }] }));
                events.push(json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [
                    { "index": index, "function": { "arguments": second } }
                ] } }] }));
            }
            events.push(json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "tool_calls" }] }));
            events
        }
    };
    // Streamed: one event at a time, a little apart, as a model writes.
    let mut frames: Vec<String> = events.iter().map(|event| format!("data: {event}\n\n")).collect();
    frames.push("data: [DONE]\n\n".into());
    let stream = futures::stream::unfold(frames.into_iter(), |mut frames| async move {
        let frame = frames.next()?;
        tokio::time::sleep(Duration::from_millis(5)).await;
        Some((Ok::<_, std::convert::Infallible>(frame), frames))
    });
    Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(stream)).unwrap()
}

/// `rampart chat` flags for this model.
fn model_flags(model: &ModelFixture) -> Vec<String> {
    vec![
        "--base-url".into(),
        model.base_url.clone(),
        "--model".into(),
        "fixture-model".into(),
        "--api-key-env".into(),
        "FIXTURE_KEY".into(),
    ]
}

fn chat(server_flags: &[&str], model: &ModelFixture, extra: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut args: Vec<String> = vec!["chat".into()];
    args.extend(server_flags.iter().map(|s| (*s).to_owned()));
    args.extend(model_flags(model));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args, env, None)
}

/// The `role: tool` messages of a request.
fn tool_messages(body: &Value) -> Vec<Value> {
    body["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "tool").cloned().collect()
}

#[test]
fn the_seed_s_question_is_answered_with_a_rampart_tool_whose_result_reaches_the_model() {
    let server = Server::start(&["--auth-key", "chat-key-1"]);
    let model = ModelFixture::start(vec![
        Reply::Calls(vec![("get_current_time", json!({ "timezone": "Asia/Tokyo" }))]),
        Reply::Text("Il est l'heure indiquée à Tokyo."),
    ]);
    let env = [("RAMPART_TOKEN", "chat-key-1"), ("FIXTURE_KEY", "sk-fixture")];
    let (code, stdout, stderr) =
        chat(&["--url", &server.url], &model, &["--once", "Quelle heure est-il à Tokyo ?"], &env);
    eprintln!("--- stdout\n{stdout}--- stderr\n{stderr}");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Il est l'heure indiquée à Tokyo.\n", "the answer, streamed, alone on stdout");
    assert!(stderr.contains("→ get_current_time {\"timezone\":\"Asia/Tokyo\"}"), "{stderr}");
    assert!(stderr.contains("← timezone=Asia/Tokyo datetime="), "the result, collapsed: {stderr}");

    let seen = model.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0.as_deref(), Some("Bearer sk-fixture"), "the key from --api-key-env");
    let first = &seen[0].1;
    assert_eq!(first["model"], "fixture-model");
    assert_eq!(first["stream"], true);
    assert_eq!(first["messages"][0], json!({ "role": "user", "content": "Quelle heure est-il à Tokyo ?" }));
    let offered: Vec<&Value> = first["tools"].as_array().unwrap().iter().collect();
    let time = offered.iter().find(|t| t["function"]["name"] == "get_current_time").expect("get_current_time offered");
    let timezone = &time["function"]["parameters"]["properties"]["timezone"];
    assert!(
        timezone["type"].to_string().contains("string") && timezone["description"].is_string(),
        "its schema: {time}"
    );
    // The tool result went back intact: the structured content, as JSON.
    let results = tool_messages(&seen[1].1);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["tool_call_id"], "call_0");
    let content: Value = serde_json::from_str(results[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["timezone"], "Asia/Tokyo");
    assert!(content["datetime"].as_str().unwrap().ends_with("+09:00"), "{content}");
    let assistant = &seen[1].1["messages"][1];
    assert_eq!(assistant["tool_calls"][0]["function"]["arguments"], "{\"timezone\":\"Asia/Tokyo\"}", "reassembled");

    // --json: the transcript as JSON lines, tool calls with their MCP result.
    let model = ModelFixture::start(vec![
        Reply::Calls(vec![("get_current_time", json!({ "timezone": "UTC" }))]),
        Reply::Text("Done."),
    ]);
    let (code, stdout, stderr) = chat(&["--url", &server.url], &model, &["--once", "Time?", "--json"], &env);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let roles: Vec<&str> = lines.iter().map(|l| l["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(lines[2]["mcp"]["structuredContent"]["timezone"], "UTC");
    assert_eq!(lines[3]["content"], "Done.");
}

#[test]
fn two_servers_are_namespaced_and_server_everything_runs_over_stdio() {
    let everything = crate::real_clients::workspace().join("tests/clients/node_modules/.bin/mcp-server-everything");
    if !everything.exists() {
        return crate::support::skip("server-everything", "tests/clients/node_modules is missing");
    }
    let server = Server::open(&[]);
    let model = ModelFixture::start(vec![
        Reply::Calls(vec![
            ("__echo", json!({ "message": "bonjour" })),
            ("__get_current_time", json!({ "timezone": "UTC" })),
        ]),
        Reply::Text("Both tools answered."),
    ]);
    let (code, stdout, stderr) = chat(
        &["--url", &server.url, "--stdio", everything.to_str().unwrap()],
        &model,
        &["--once", "Echo and time, please", "--yes"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "Both tools answered.");
    let seen = model.seen();
    let names: Vec<String> = seen[0].1["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"rampart__get_current_time".to_owned()), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("__echo") && !n.starts_with("rampart")), "{names:?}");
    assert!(
        names.iter().all(|n| n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    );
    let results = tool_messages(&seen[1].1);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["content"], "Echo: bonjour", "server-everything's text result, intact");
    assert!(results[1]["content"].as_str().unwrap().contains("\"timezone\":\"UTC\""), "{results:?}");
}

#[test]
fn model_api_failures_and_limits_are_said_in_words() {
    let server = Server::open(&[]);
    let url = ["--url", server.url.as_str()];
    let once = ["--once", "hello"];
    // (the model's reply, extra environment, what the person is told)
    type Case<'a> = (Reply, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            Reply::Error(401, json!({ "error": { "message": "no key" } })),
            &[],
            "the model API wants a key (HTTP 401): set FIXTURE_KEY",
        ),
        (
            Reply::Error(401, json!({ "error": { "message": "Incorrect API key provided" } })),
            &[("FIXTURE_KEY", "sk-wrong")],
            "refused the key in FIXTURE_KEY (HTTP 401): Incorrect API key provided",
        ),
        (
            Reply::Error(
                404,
                json!({ "error": { "message": "The model `fixture-model` does not exist", "code": "model_not_found" } }),
            ),
            &[],
            "model 'fixture-model' not found at",
        ),
        (
            Reply::Error(
                400,
                json!({ "error": { "message": "This model's maximum context length is 8192 tokens", "code": "context_length_exceeded" } }),
            ),
            &[],
            "the conversation is too long for model 'fixture-model'",
        ),
        (
            Reply::Error(
                400,
                json!({ "error": { "message": "Invalid schema for function 'convert_time': 'time' is not valid" } }),
            ),
            &[],
            "rejected a tool's schema (tool 'convert_time')",
        ),
    ];
    for (reply, env, expected) in cases {
        let model = ModelFixture::start(vec![reply.clone()]);
        let (code, _, stderr) = chat(&url, &model, &once, env);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(expected), "expected '{expected}' in: {stderr}");
    }

    // A model that only ever calls tools: the step limit, exit 1.
    let model = ModelFixture::start(vec![
        Reply::Calls(vec![("system_health", json!({}))]),
        Reply::Calls(vec![("system_health", json!({}))]),
        Reply::Calls(vec![("system_health", json!({}))]),
    ]);
    let (code, _, stderr) = chat(&url, &model, &["--once", "loop", "--max-steps", "2"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no answer after 2 requests to the model (--max-steps)"), "{stderr}");
    assert_eq!(model.seen().len(), 2);

    // No model API at all; no model named.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let (code, _, stderr) =
        run(&["chat", "--url", &server.url, "--base-url", &base, "--model", "m", "--once", "hi"], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains(&format!("cannot reach the model API at {base}")), "{stderr}");
    let home = TempDir::new("chat-no-model");
    let (code, _, stderr) = run(
        &["chat", "--url", &server.url, "--once", "hi"],
        &[("XDG_CONFIG_HOME", home.0.to_str().unwrap()), ("RAMPART_LLM_MODEL", "")],
        None,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("say which model to use: --model NAME, RAMPART_LLM_MODEL"), "{stderr}");
}

#[test]
fn a_tool_that_changes_things_runs_only_after_a_person_says_yes() {
    use expectrl::Expect;
    let server = Server::start(&["--auth-key", "chat-key-2"]);
    let create = |name: &str| Reply::Calls(vec![("admin_token_create", json!({ "name": name, "roles": ["reader"] }))]);
    let tokens = || server.cli(&["token", "list"]).1;
    for (answer, name, runs) in [("n", "declined-by-me", false), ("y", "allowed-by-me", true)] {
        let model = ModelFixture::start(vec![create(name), Reply::Text("Finished.")]);
        let mut command = std::process::Command::new(BIN);
        command
            .args(["chat", "--url", &server.url, "--once", "make a token"])
            .args(model_flags(&model))
            .env("RAMPART_TOKEN", "chat-key-2")
            .env("NO_COLOR", "1");
        let mut pty = expectrl::Session::spawn(command).unwrap();
        pty.set_expect_timeout(Some(Duration::from_secs(20)));
        pty.expect("may change things [y/N]").unwrap();
        pty.send(format!("{answer}\r")).unwrap();
        pty.expect("Finished.").unwrap();
        let declined = &model.seen()[1].1;
        let result = tool_messages(declined)[0]["content"].as_str().unwrap().to_owned();
        if runs {
            assert!(tokens().contains(name), "run after yes");
            assert!(result.contains(name), "the new token went back to the model: {result}");
        } else {
            assert!(!tokens().contains(name), "not run after no");
            assert!(result.contains("declined"), "{result}");
        }
    }

    // No terminal to ask, no --yes: not run, and the model is told why.
    let model = ModelFixture::start(vec![create("nobody-asked"), Reply::Text("Understood.")]);
    let (code, _, stderr) =
        chat(&["--url", &server.url], &model, &["--once", "make a token"], &[("RAMPART_TOKEN", "chat-key-2")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("not run: admin_token_create may change things"), "{stderr}");
    assert!(!tokens().contains("nobody-asked"));
    // --read-only: such tools are not even offered.
    let model = ModelFixture::start(vec![Reply::Text("ok")]);
    let (code, _, stderr) =
        chat(&["--url", &server.url], &model, &["--once", "hi", "--read-only"], &[("RAMPART_TOKEN", "chat-key-2")]);
    assert_eq!(code, 0, "{stderr}");
    let offered = model.seen()[0].1["tools"].to_string();
    assert!(offered.contains("get_current_time") && !offered.contains("admin_token_create"), "{offered}");
}

#[test]
fn a_conversation_keeps_its_context_lists_the_tools_and_saves_the_transcript() {
    use expectrl::Expect;

    use crate::shell::{exits, spawn, type_keys, until};
    let server = Server::open(&[]);
    let model = ModelFixture::start(vec![Reply::Text("First answer."), Reply::Text("Second answer.")]);
    let home = TempDir::new("chat-conversation");
    let saved = home.0.join("transcript.jsonl");
    let mut args = vec!["chat".to_owned(), "--url".into(), server.url.clone()];
    args.extend(model_flags(&model));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut pty = spawn(&args, &home.0, &[]);
    until(&mut pty, "/tools, /reset");
    until(&mut pty, "you");
    type_keys(&mut pty, "first question\r");
    until(&mut pty, "First answer.");
    until(&mut pty, "you");
    type_keys(&mut pty, "/tools\r");
    until(&mut pty, "asks first");
    until(&mut pty, "you");
    type_keys(&mut pty, "second question\r");
    until(&mut pty, "Second answer.");
    until(&mut pty, "you");
    type_keys(&mut pty, &format!("/save {}\r", saved.display()));
    until(&mut pty, "saved 4 messages");
    until(&mut pty, "you");
    pty.send("\x04").unwrap();
    exits(&mut pty);
    let seen = model.seen();
    let roles: Vec<&str> =
        seen[1].1["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"], "the second question came with the first exchange");
    let lines = std::fs::read_to_string(&saved).unwrap();
    assert_eq!(lines.lines().count(), 4, "{lines}");
    assert!(lines.contains("Second answer."), "{lines}");
}

#[test]
fn chat_in_the_shell_talks_to_the_shell_s_server() {
    use crate::shell::{exits, prompt, spawn, type_keys, until};
    let server = Server::open(&[]);
    let model = ModelFixture::start(vec![
        Reply::Calls(vec![("system_health", json!({}))]),
        Reply::Text("The server is healthy."),
    ]);
    let home = TempDir::new("chat-in-shell");
    let label = server.url.trim_start_matches("http://").to_owned();
    let mut pty = spawn(&["shell", "--url", &server.url], &home.0, &[]);
    prompt(&mut pty, &label);
    type_keys(&mut pty, &format!("chat --base-url {} --model fixture-model --once \"is it up?\"\r", model.base_url));
    until(&mut pty, "The server is healthy.");
    prompt(&mut pty, &label);
    expectrl::Expect::send(&mut pty, "\x04").unwrap();
    exits(&mut pty);
    let offered = model.seen()[0].1["tools"].to_string();
    assert!(offered.contains("\"system_health\""), "the shell's server, not namespaced: {offered}");
    assert_eq!(tool_messages(&model.seen()[1].1).len(), 1);
}
