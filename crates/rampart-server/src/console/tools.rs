//! The Tools page: every tool the signed-in principal may call, with its schemas, and a
//! form generated from a tool's input schema to call it — like the MCP Inspector, but
//! through the caller's own grants: the call goes through the pipeline as that principal
//! (authorized, rate-limited, recorded with transport `console`).
//!
//! Without JavaScript the form posts and the result comes back in the page. With it, the
//! script asks for `text/event-stream`: `progress` events while the tool reports progress,
//! then one `result` event carrying the rendered result; closing the page cancels the call.

use std::{convert::Infallible, sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{
    Extension,
    extract::{Path, State},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use maud::{Markup, html};
use rampart_core::{CallContext, CallError, ClientPeer, Content, LogLevel, PeerError, ToolOutput, ToolSpec};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Console, Page, Signed, csrf_field, layout};

/// The prefix of a form field that carries an argument (`arg.timezone`).
const ARG: &str = "arg.";
/// The form field that carries the whole arguments object as JSON, when filled.
const RAW: &str = "arguments_json";

/// `GET /console/tools`.
pub(crate) async fn page(State(console): State<Arc<Console>>, Extension(signed): Extension<Signed>) -> Response {
    let mut tools = console.pipeline.visible_tools(&signed.caller);
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let body = html! {
        p.muted { (tools.len()) " tools your roles grant. Calls made here are recorded like any other, with transport "
            code { "console" } "." }
        table #tools {
            thead { tr { th scope="col" { "Tool" } th scope="col" { "Description" } th scope="col" { "Hints" } } }
            tbody {
                @for tool in &tools {
                    tr.tool data-name=(tool.name) {
                        th scope="row" { a href={ "/console/tools/" (tool.name) } { code { (tool.name) } } }
                        td { (tool.title.as_deref().map(|t| format!("{t}: ")).unwrap_or_default()) (tool.description) }
                        td.muted { (hints(tool)) }
                    }
                }
                @if tools.is_empty() { tr { td colspan="3" { "Your roles grant no tool." } } }
            }
        }
    };
    super::page(&signed, Page::Tools, "Tools", body)
}

fn hints(tool: &ToolSpec) -> String {
    let a = &tool.annotations;
    let mut hints = Vec::new();
    if a.read_only_hint == Some(true) {
        hints.push("read-only");
    }
    if a.destructive_hint == Some(true) {
        hints.push("destructive");
    }
    if a.idempotent_hint == Some(true) {
        hints.push("idempotent");
    }
    if a.open_world_hint == Some(true) {
        hints.push("open world");
    }
    hints.join(", ")
}

/// A property's JSON Schema type, when it names one simple type (`["string", "null"]` is
/// a string that may be left out).
fn simple_type(schema: &Value) -> Option<&str> {
    match &schema["type"] {
        Value::String(kind) => Some(kind.as_str()),
        Value::Array(kinds) => {
            let mut named = kinds.iter().filter_map(Value::as_str).filter(|kind| *kind != "null");
            let first = named.next();
            if named.next().is_some() { None } else { first }
        }
        _ => None,
    }
}

/// The properties of an input schema, in order, with whether each is required.
fn properties(spec: &ToolSpec) -> Vec<(String, Value, bool)> {
    let required: Vec<&str> = spec
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    spec.input_schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, schema)| (name.clone(), schema.clone(), required.contains(&name.as_str())))
        .collect()
}

/// One input of the generated form, holding `value` (what was sent, when the page comes
/// back after a call).
fn field(name: &str, schema: &Value, required: bool, value: Option<&str>) -> Markup {
    let id = format!("arg-{name}");
    let input_name = format!("{ARG}{name}");
    let description = schema["description"].as_str().unwrap_or("");
    let default = match &schema["default"] {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let kind = simple_type(schema);
    let choices: Option<Vec<String>> = schema["enum"]
        .as_array()
        .map(|values| values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect());
    html! {
        div.field {
            label for=(id) {
                code { (name) } @if required { " (required)" }
                @if let Some(kind) = kind { " " span.hint { (kind) } }
                @if !description.is_empty() { br; span.hint { (description) } }
            }
            @if let Some(choices) = &choices {
                select id=(id) name=(input_name) required[required] {
                    @if !required { option value="" { "—" } }
                    @for choice in choices { option value=(choice) selected[value == Some(choice.as_str())] { (choice) } }
                }
            } @else {
                @match kind {
                    Some("string") => {
                        input id=(id) name=(input_name) type="text" required[required] placeholder=(default) value=[value];
                    }
                    Some("integer") => {
                        input id=(id) name=(input_name) type="number" step="1" required[required] placeholder=(default) value=[value];
                    }
                    Some("number") => {
                        input id=(id) name=(input_name) type="number" step="any" required[required] placeholder=(default) value=[value];
                    }
                    Some("boolean") => {
                        select id=(id) name=(input_name) required[required] {
                            option value="" { "—" }
                            option value="true" selected[value == Some("true")] { "true" }
                            option value="false" selected[value == Some("false")] { "false" }
                        }
                    }
                    _ => {
                        textarea id=(id) name=(input_name) required[required] placeholder={ "JSON" @if !default.is_empty() { ", e.g. " (default) } } {
                            (value.unwrap_or(""))
                        }
                    }
                }
            }
        }
    }
}

fn tool_page(
    signed: &Signed,
    spec: &ToolSpec,
    sent: &[(String, String)],
    result: Option<Markup>,
    status: StatusCode,
) -> Response {
    let value_of = |name: &str| {
        let key = format!("{ARG}{name}");
        sent.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    };
    let raw = sent.iter().find(|(k, _)| k == RAW).map_or("", |(_, v)| v.as_str());
    let body = html! {
        p { (spec.description) }
        @let hint = hints(spec);
        @if !hint.is_empty() { p.muted { "Hints: " (hint) } }
        form.stack #tool-form method="post" action={ "/console/tools/" (spec.name) } {
            (csrf_field(signed))
            @for (name, schema, required) in properties(spec) { (field(&name, &schema, required, value_of(&name))) }
            details {
                summary { "Arguments as JSON (replaces the fields above when filled)" }
                textarea #arguments-json name=(RAW) placeholder="{}" { (raw) }
            }
            div {
                button #call-tool type="submit" { "Call " (spec.name) }
                " "
                progress #tool-progress hidden {}
                " "
                span #tool-progress-message.muted role="status" {}
            }
        }
        div #tool-result-area aria-live="polite" { @if let Some(result) = result { (result) } }
        details {
            summary { "Input schema" }
            (layout::json_block(&Value::Object(spec.input_schema.clone())))
        }
        @if let Some(output) = &spec.output_schema {
            details { summary { "Output schema" } (layout::json_block(&Value::Object(output.clone()))) }
        }
    };
    layout::page_with_status(status, signed, Page::Tools, &spec.name, body)
}

/// The tool `name` as `signed` may see it; otherwise the same 404 for a missing and a
/// forbidden one.
fn visible(console: &Console, signed: &Signed, name: &str) -> Result<ToolSpec, Box<Response>> {
    console
        .pipeline
        .tool_spec(&signed.caller, name)
        .ok_or_else(|| Box::new(super::error_page(StatusCode::NOT_FOUND, &format!("No tool named '{name}'."))))
}

/// `GET /console/tools/{name}`.
pub(crate) async fn form(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
) -> Response {
    match visible(&console, &signed, &name) {
        Ok(spec) => tool_page(&signed, &spec, &[], None, StatusCode::OK),
        Err(refused) => *refused,
    }
}

/// The arguments object from the form: the JSON field when filled, else one value per
/// `arg.NAME` field, typed by the schema (empty fields are left out).
fn arguments(spec: &ToolSpec, sent: &[(String, String)]) -> Result<Map<String, Value>, String> {
    if let Some((_, raw)) = sent.iter().find(|(k, v)| k == RAW && !v.trim().is_empty()) {
        return match serde_json::from_str(raw) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("The arguments must be a JSON object.".into()),
            Err(error) => Err(format!("The arguments are not valid JSON: {error}")),
        };
    }
    let mut arguments = Map::new();
    for (name, schema, _) in properties(spec) {
        let key = format!("{ARG}{name}");
        let Some((_, text)) = sent.iter().find(|(k, _)| *k == key) else { continue };
        if text.is_empty() {
            continue;
        }
        let value = match simple_type(&schema) {
            _ if schema["enum"].is_array() => schema["enum"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned) == *text)
                .cloned()
                .ok_or_else(|| format!("{name}: not one of the allowed values"))?,
            Some("string") => Value::String(text.clone()),
            Some("integer") => {
                Value::from(text.trim().parse::<i64>().map_err(|_| format!("{name}: '{text}' is not an integer"))?)
            }
            Some("number") => {
                let number = text.trim().parse::<f64>().map_err(|_| format!("{name}: '{text}' is not a number"))?;
                json!(number)
            }
            Some("boolean") => Value::Bool(text == "true"),
            _ => serde_json::from_str(text).map_err(|error| format!("{name}: not valid JSON ({error})"))?,
        };
        arguments.insert(name, value);
    }
    Ok(arguments)
}

/// A tool's result as HTML: its text, images, other content and structured content.
fn rendered(result: &Result<ToolOutput, String>) -> Markup {
    match result {
        Ok(output) => html! {
            section #tool-result class=(if output.is_error { "result error" } else { "result ok" }) {
                h2 { @if output.is_error { "The tool reported an error" } @else { "Result" } }
                @for content in &output.content {
                    @match content {
                        Content::Text { text } => { pre.text { (text) } }
                        Content::Image { data, mime_type, .. }
                            if mime_type.starts_with("image/") && base64::engine::general_purpose::STANDARD.decode(data).is_ok() => {
                            img alt="An image the tool returned" src={ "data:" (mime_type) ";base64," (data) };
                        }
                        other => { (layout::json_block(&serde_json::to_value(other).unwrap_or_default())) }
                    }
                }
                @if let Some(structured) = &output.structured_content {
                    details { summary { "Structured content" } (layout::json_block(structured)) }
                }
            }
        },
        Err(message) => html! {
            section #tool-result.result.error role="alert" { h2 { "The call failed" } p { (message) } }
        },
    }
}

fn call_failed(error: CallError) -> String {
    match error {
        CallError::UnknownTool(name) => format!("No tool named '{name}' (or your roles no longer grant it)."),
        other => other.to_string(),
    }
}

/// Progress the tool reports, handed to the page's stream: at most [`PROGRESS_BACKLOG`]
/// reports wait for a slow page; beyond that the newest are dropped (the next one tells
/// the page where the call is anyway).
struct ProgressPeer(mpsc::Sender<Value>);

/// Progress reports that may wait for the page.
const PROGRESS_BACKLOG: usize = 64;

#[async_trait]
impl ClientPeer for ProgressPeer {
    async fn notify_progress(&self, _: &Value, progress: f64, total: Option<f64>, message: Option<String>) {
        let _ = self.0.try_send(json!({ "progress": progress, "total": total, "message": message }));
    }
    async fn log(&self, _: LogLevel, _: Option<&str>, _: Value) {}
    async fn request(&self, _: &str, _: Value) -> Result<Value, PeerError> {
        Err(PeerError::Unsupported)
    }
}

fn wants_events(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/event-stream"))
}

/// `POST /console/tools/{name}`: calls the tool through the pipeline as the signed-in
/// principal.
pub(crate) async fn call(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let spec = match visible(&console, &signed, &name) {
        Ok(spec) => spec,
        Err(refused) => return *refused,
    };
    let sent: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .filter(|(k, _)| k != super::CSRF_FIELD)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let arguments = match arguments(&spec, &sent) {
        Ok(arguments) => arguments,
        Err(message) => {
            let result = rendered(&Err(message));
            return if wants_events(&headers) {
                (StatusCode::UNPROCESSABLE_ENTITY, result.into_string()).into_response()
            } else {
                tool_page(&signed, &spec, &sent, Some(result), StatusCode::UNPROCESSABLE_ENTITY)
            };
        }
    };
    let (progress, mut reports) = mpsc::channel(PROGRESS_BACKLOG);
    let cancel = CancellationToken::new();
    let context =
        CallContext::new(signed.caller.clone(), Arc::new(ProgressPeer(progress)), console.pipeline.guard().clone())
            .with_cancellation(cancel.clone())
            .with_progress_token(Some(json!(format!("console-{}", super::session::random_token()))));
    let pipeline = console.pipeline.clone();
    let tool = spec.name.clone();
    let call =
        tokio::spawn(async move { pipeline.call_tool(&tool, Some(arguments), &context).await.map_err(call_failed) });
    if !wants_events(&headers) {
        let result = call.await.unwrap_or_else(|_| Err("The call stopped unexpectedly.".into()));
        return tool_page(&signed, &spec, &sent, Some(rendered(&result)), StatusCode::OK);
    }
    // The stream owns a guard that cancels the call when the page goes away.
    let guard = cancel.drop_guard();
    let stream = async_stream(move |emit| async move {
        let _guard = guard;
        let mut call = call;
        loop {
            tokio::select! {
                Some(report) = reports.recv() => emit.send(Event::default().event("progress").data(report.to_string())).await,
                finished = &mut call => {
                    while let Ok(report) = reports.try_recv() {
                        emit.send(Event::default().event("progress").data(report.to_string())).await;
                    }
                    let result = finished.unwrap_or_else(|_| Err("The call stopped unexpectedly.".into()));
                    emit.send(Event::default().event("result").data(rendered(&result).into_string())).await;
                    break;
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))).into_response()
}

/// Sends events into a channel-backed stream from an async body (the stream ends when the
/// body returns).
struct Emitter(mpsc::Sender<Event>);

impl Emitter {
    async fn send(&self, event: Event) {
        let _ = self.0.send(event).await;
    }
}

fn async_stream<F, Fut>(body: F) -> impl futures::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(Emitter) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(64);
    let task = tokio::spawn(body(Emitter(sender)));
    let abort = task.abort_handle();
    futures::stream::unfold((receiver, AbortOnDrop(abort)), |(mut receiver, abort)| async move {
        receiver.recv().await.map(|event| (Ok(event), (receiver, abort)))
    })
}

/// Aborts the producing task when the stream is dropped (the page went away), which drops
/// its cancellation guard and so cancels the call.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn spec(schema: Value) -> ToolSpec {
        let mut spec = ToolSpec::named("t", "a tool");
        spec.input_schema = schema.as_object().cloned().unwrap();
        spec
    }

    fn sent(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn form_fields_become_typed_arguments() {
        let spec = spec(json!({
            "type": "object",
            "properties": {
                "text": { "type": "string" },
                "count": { "type": "integer" },
                "ratio": { "type": ["number", "null"] },
                "flag": { "type": "boolean" },
                "unit": { "enum": ["a", "b"] },
                "tags": { "type": "array", "items": { "type": "string" } },
                "empty": { "type": "string" }
            },
            "required": ["text"]
        }));
        let arguments = arguments(
            &spec,
            &sent(&[
                ("arg.text", "hello"),
                ("arg.count", "3"),
                ("arg.ratio", "0.5"),
                ("arg.flag", "false"),
                ("arg.unit", "b"),
                ("arg.tags", r#"["x"]"#),
                ("arg.empty", ""),
                ("arg.unknown", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(arguments),
            json!({ "text": "hello", "count": 3, "ratio": 0.5, "flag": false, "unit": "b", "tags": ["x"] })
        );
        assert!(super::arguments(&spec, &sent(&[("arg.count", "3.5")])).unwrap_err().contains("not an integer"));
        assert!(super::arguments(&spec, &sent(&[("arg.unit", "c")])).unwrap_err().contains("allowed"));
        let raw = super::arguments(&spec, &sent(&[("arg.text", "x"), (RAW, r#"{"text":"y"}"#)])).unwrap();
        assert_eq!(raw["text"], "y");
        assert!(super::arguments(&spec, &sent(&[(RAW, "[1]")])).is_err());
    }

    #[test]
    fn fields_escape_what_they_show() {
        let markup =
            field("q", &json!({ "type": "string", "description": "<script>x</script>" }), true, Some("\"><b>"));
        let html = markup.into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"><b>"), "{html}");
        assert!(html.contains("required"));
    }
}
