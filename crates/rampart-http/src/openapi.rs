//! `[http.apis.NAME] openapi = "spec.json"`: each operation of an OpenAPI 3 document
//! (JSON) becomes a tool `NAME_<operationId>` whose input schema has the operation's path
//! and query parameters and, for a JSON request body, `json_body`. A call is turned into
//! the same checked request as `http_request` (policy, method and path allowlists, SSRF
//! guard, credential), so a document cannot widen what the API's configuration allows:
//! operations whose method is not allowed are not served at all.
//!
//! The document's `servers` are ignored: requests go to the configured `base_url`.
//! Supported: local `$ref`s to `#/components/parameters/…` (resolved) and
//! `#/components/schemas/…` (kept as `$defs`). Operations with a required header or
//! cookie parameter are skipped (with a warning), as are other parameters of those kinds.

use std::collections::BTreeSet;

use rampart_core::{ToolAnnotations, ToolError, ToolSpec};
use serde_json::{Map, Value, json};

use crate::config::{HttpConfigError, METHODS};

/// The longest tool name MCP clients accept.
const MAX_TOOL_NAME: usize = 128;
/// The longest description kept from the document, in characters.
const MAX_DESCRIPTION: usize = 1024;
/// The argument carrying the request body.
const BODY: &str = "json_body";

/// One operation served as a tool.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    /// The tool's name, `API_operationId`.
    pub(crate) tool: String,
    /// The API it calls.
    pub(crate) api: String,
    method: String,
    /// The path template, e.g. `/pets/{petId}`.
    template: String,
    path_parameters: Vec<String>,
    query_parameters: Vec<String>,
    has_body: bool,
    description: String,
    input_schema: Map<String, Value>,
}

/// An operation call turned into `http_request`'s terms.
pub(crate) struct PreparedCall {
    /// The method.
    pub(crate) method: String,
    /// The path with its parameters percent-encoded in.
    pub(crate) path: String,
    /// The query parameters given.
    pub(crate) query: Map<String, Value>,
    /// The JSON body given.
    pub(crate) body: Option<Value>,
}

/// Reads the document at `file` (relative to the working directory) and returns the
/// operations of API `api` whose method is in `methods`.
///
/// # Errors
/// [`HttpConfigError::Value`] at `http.apis.API.openapi`: unreadable, not JSON, not
/// OpenAPI 3, or two operations with the same tool name.
pub(crate) fn load(api: &str, file: &str, methods: &[String]) -> Result<Vec<Operation>, HttpConfigError> {
    let key = format!("http.apis.{api}.openapi");
    let error = |message: String| HttpConfigError::Value { key: key.clone(), message };
    let text = std::fs::read_to_string(file).map_err(|e| error(format!("cannot read '{file}': {e}")))?;
    let document: Value = serde_json::from_str(&text).map_err(|e| error(format!("'{file}' is not JSON: {e}")))?;
    if !document.get("openapi").and_then(Value::as_str).is_some_and(|version| version.starts_with("3.")) {
        return Err(error(format!("'{file}' is not an OpenAPI 3 document (no \"openapi\": \"3.x\")")));
    }
    let mut operations = Vec::new();
    let mut names = BTreeSet::new();
    let paths = document.get("paths").and_then(Value::as_object).cloned().unwrap_or_default();
    for (template, item) in &paths {
        let Some(item) = item.as_object() else { continue };
        let shared = item.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
        for (method, operation) in item {
            let method = method.to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) || !methods.contains(&method) {
                continue;
            }
            let Some(operation) = operation.as_object() else { continue };
            let Some(built) = build(api, &document, template, &method, operation, &shared) else { continue };
            if !names.insert(built.tool.clone()) {
                return Err(error(format!("two operations make the tool name '{}'", built.tool)));
            }
            operations.push(built);
        }
    }
    Ok(operations)
}

/// `text` with characters outside `[A-Za-z0-9_-]` replaced by `_`.
fn sanitize(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

fn build(
    api: &str,
    document: &Value,
    template: &str,
    method: &str,
    operation: &Map<String, Value>,
    shared: &[Value],
) -> Option<Operation> {
    let id = match operation.get("operationId").and_then(Value::as_str) {
        Some(id) => sanitize(id),
        None => sanitize(&format!("{}{}", method.to_ascii_lowercase(), template.replace(['{', '}'], ""))),
    };
    let tool = format!("{api}_{}", id.trim_matches('_'));
    if tool.len() > MAX_TOOL_NAME {
        tracing::warn!(api, tool, "OpenAPI operation skipped: the tool name is longer than 128 characters");
        return None;
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    let (mut path_parameters, mut query_parameters) = (Vec::new(), Vec::new());
    let own = operation.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    // Operation-level parameters override path-level ones of the same name and location.
    let mut seen = BTreeSet::new();
    for parameter in own.iter().chain(shared) {
        let parameter = resolve(document, parameter);
        let name = parameter.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let location = parameter.get("in").and_then(Value::as_str).unwrap_or_default();
        let is_required = parameter.get("required").and_then(Value::as_bool).unwrap_or(location == "path");
        if name.is_empty() || !seen.insert((name.clone(), location.to_owned())) {
            continue;
        }
        match location {
            "path" => path_parameters.push(name.clone()),
            "query" => query_parameters.push(name.clone()),
            _ if is_required => {
                tracing::warn!(api, tool, parameter = name, "OpenAPI operation skipped: required {location} parameter");
                return None;
            }
            _ => continue,
        }
        if properties.contains_key(&name) || name == BODY {
            tracing::warn!(api, tool, parameter = name, "OpenAPI operation skipped: clashing parameter names");
            return None;
        }
        let mut schema = parameter.get("schema").map(rewrite_refs).unwrap_or_else(|| json!({}));
        if let (Some(description), Some(object)) = (parameter.get("description"), schema.as_object_mut()) {
            object.insert("description".into(), description.clone());
        }
        properties.insert(name.clone(), schema);
        if is_required {
            required.push(Value::String(name));
        }
    }
    let body = operation.get("requestBody").map(|body| resolve(document, body));
    let body_schema = body.as_ref().and_then(json_body_schema);
    if let (Some(body), Some(schema)) = (&body, &body_schema) {
        properties.insert(BODY.into(), schema.clone());
        if body.get("required").and_then(Value::as_bool).unwrap_or(false) {
            required.push(Value::String(BODY.into()));
        }
    }
    let mut input_schema = Map::new();
    input_schema.insert("type".into(), json!("object"));
    input_schema.insert("properties".into(), Value::Object(properties));
    input_schema.insert("required".into(), Value::Array(required));
    input_schema.insert("additionalProperties".into(), json!(false));
    let schemas = document.pointer("/components/schemas").filter(|_| uses_refs(&input_schema));
    if let Some(schemas) = schemas {
        input_schema.insert("$defs".into(), rewrite_refs(schemas));
    }
    Some(Operation {
        tool,
        api: api.to_owned(),
        method: method.to_owned(),
        template: template.to_owned(),
        path_parameters,
        query_parameters,
        has_body: body_schema.is_some(),
        description: describe(api, method, template, operation),
        input_schema,
    })
}

fn describe(api: &str, method: &str, template: &str, operation: &Map<String, Value>) -> String {
    let text = |key: &str| operation.get(key).and_then(Value::as_str).unwrap_or_default().trim().to_owned();
    let (summary, details) = (text("summary"), text("description"));
    let mut description = format!("{method} {template} on API '{api}'.");
    for part in [summary, details] {
        if !part.is_empty() && !description.contains(&part) {
            description.push(' ');
            description.push_str(&part);
        }
    }
    description.chars().take(MAX_DESCRIPTION).collect()
}

/// The JSON schema of a request body's `application/json` (or `+json`) content.
fn json_body_schema(body: &Value) -> Option<Value> {
    let content = body.get("content")?.as_object()?;
    let (_, media) = content.iter().find(|(kind, _)| *kind == "application/json" || kind.ends_with("+json"))?;
    Some(media.get("schema").map(rewrite_refs).unwrap_or_else(|| json!({})))
}

/// A `$ref` to `#/components/…` resolved (one level, for parameters and bodies).
fn resolve(document: &Value, value: &Value) -> Value {
    let target = value.get("$ref").and_then(Value::as_str).and_then(|reference| reference.strip_prefix('#'));
    target.and_then(|pointer| document.pointer(pointer)).cloned().unwrap_or_else(|| value.clone())
}

/// Schema `$ref`s from `#/components/schemas/X` to `#/$defs/X`.
fn rewrite_refs(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| match (key.as_str(), item.as_str()) {
                    ("$ref", Some(reference)) => {
                        (key.clone(), Value::String(reference.replace("#/components/schemas/", "#/$defs/")))
                    }
                    _ => (key.clone(), rewrite_refs(item)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(rewrite_refs).collect()),
        other => other.clone(),
    }
}

fn uses_refs(schema: &Map<String, Value>) -> bool {
    serde_json::to_string(schema).is_ok_and(|text| text.contains("\"$ref\""))
}

impl Operation {
    /// The tool's description.
    pub(crate) fn spec(&self) -> ToolSpec {
        let read_only = matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS");
        let annotations =
            if read_only { ToolAnnotations::read_only() } else { ToolAnnotations::write().destructive(true) };
        ToolSpec::with_schema(&self.tool, &self.description, self.input_schema.clone())
            .annotations(annotations.open_world(true))
    }

    /// Turns the arguments into a method, a path and a query.
    ///
    /// # Errors
    /// [`ToolError::InvalidArguments`] for unknown or missing arguments and path values
    /// that are not strings, numbers or booleans.
    pub(crate) fn prepare(&self, mut arguments: Map<String, Value>) -> Result<PreparedCall, ToolError> {
        let invalid = ToolError::InvalidArguments;
        let mut path = self.template.clone();
        for name in &self.path_parameters {
            let value = arguments.remove(name).ok_or_else(|| invalid(format!("missing field `{name}`")))?;
            let text = match value {
                Value::String(text) => text,
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                _ => return Err(invalid(format!("{name}: use a string, number or boolean"))),
            };
            path = path.replace(&format!("{{{name}}}"), &encode_segment(&text));
        }
        let mut query = Map::new();
        for name in &self.query_parameters {
            if let Some(value) = arguments.remove(name) {
                query.insert(name.clone(), value);
            }
        }
        let body = if self.has_body { arguments.remove(BODY) } else { None };
        if let Some(unknown) = arguments.keys().next() {
            return Err(invalid(format!("unknown field `{unknown}`")));
        }
        let required = self.input_schema.get("required").and_then(Value::as_array);
        if let Some(missing) = required.into_iter().flatten().filter_map(Value::as_str).find(|name| match *name {
            BODY => body.is_none(),
            name => self.query_parameters.iter().any(|q| q == name) && !query.contains_key(name),
        }) {
            return Err(invalid(format!("missing field `{missing}`")));
        }
        Ok(PreparedCall { method: self.method.clone(), path, query, body })
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so that a value stays
/// one segment (`/` becomes `%2F`, which the path check then refuses).
fn encode_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
