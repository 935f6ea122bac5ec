//! The fixtures of the official MCP conformance suite (`@modelcontextprotocol/conformance`
//! server scenarios): tools, resources and prompts with the names and shapes its checks
//! expect. Served only under `--profile conformance`.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use rampart_core::{
    CallContext, CatalogChanges, CompletionRef, Content, LogLevel, PromptArgument, PromptMessage, PromptOutput,
    PromptRole, PromptSpec, ResourceContents, ResourceSpec, ResourceTemplateSpec, TaskSupport, ToolError, ToolOutput,
    ToolSpec, Toolbox,
};
use serde_json::{Map, Value, json};

/// A 1x1 red PNG, base64.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV, base64.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";
/// Spacing of the logging and progress notifications.
const STEP: Duration = Duration::from_millis(50);

/// Conformance-suite fixtures, plus Rampart's own (`test_sleep`, and
/// `test_toggle_dynamic_tool`, which adds or removes `test_dynamic_tool` at run time).
#[derive(Debug, Default)]
pub struct ConformanceToolbox {
    /// Whether `test_dynamic_tool` is served now.
    dynamic: AtomicBool,
    /// The pipeline's handle, to say that the tools changed.
    changes: Mutex<Option<CatalogChanges>>,
}

fn spec(name: &str, description: &str, schema: Value) -> ToolSpec {
    let input_schema = match schema {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    ToolSpec::with_schema(name, description, input_schema)
}

/// The tasks extension's fixtures (SEP-2663 scenarios of the conformance suite 0.2):
/// tools the server may run as tasks.
fn task_fixtures() -> Vec<ToolSpec> {
    let optional = |name, description, schema| spec(name, description, schema).task_support(TaskSupport::Optional);
    vec![
        spec(
            "greet",
            "Says hello (answered in the call, never a task)",
            string_argument_schema("name", "Who to greet"),
        ),
        optional(
            "slow_compute",
            "Sleeps for `seconds` seconds, then answers; runs as a task when the client can follow one",
            json!({
                "type": "object",
                "properties": {
                    "seconds": { "type": "number", "minimum": 0, "maximum": 600 },
                    "label": { "type": "string" },
                },
                "required": ["seconds"],
            }),
        ),
        spec("failing_job", "Fails as a tool (isError) after about a second; only as a task", empty_schema())
            .task_support(TaskSupport::Required),
        optional("protocol_error_job", "Fails with a server error; a task of it ends as failed", empty_schema()),
        optional(
            "confirm_delete",
            "Asks the user (elicitation) to confirm deleting `filename`, then answers",
            json!({ "type": "object", "properties": { "filename": { "type": "string" } } }),
        ),
        optional("multi_input", "Asks the user two questions at once (two elicitations), then answers", empty_schema()),
    ]
}

fn empty_schema() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn string_argument_schema(name: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": { name: { "type": "string", "description": description } },
        "required": [name],
    })
}

fn text_resource(uri: &str, mime_type: &str, text: &str) -> Content {
    Content::Resource {
        resource: ResourceContents::Text { uri: uri.into(), mime_type: Some(mime_type.into()), text: text.into() },
    }
}

fn image() -> Content {
    Content::Image { data: PNG.into(), mime_type: "image/png".into() }
}

fn string_argument(arguments: &Map<String, Value>, name: &str) -> Result<String, ToolError> {
    arguments
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ToolError::InvalidArguments(format!("'{name}' must be a string")))
}

impl ConformanceToolbox {
    async fn with_logging(context: &CallContext) -> ToolOutput {
        for (i, message) in
            ["Tool execution started", "Tool processing data", "Tool execution completed"].iter().enumerate()
        {
            if i > 0 {
                tokio::time::sleep(STEP).await;
            }
            context.log(LogLevel::Info, None, json!(message)).await;
        }
        ToolOutput::text("Tool with logging executed successfully")
    }

    async fn with_progress(context: &CallContext) -> ToolOutput {
        for (i, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(STEP).await;
            }
            context.progress(progress, Some(100.0), Some(format!("Completed step {progress} of 100"))).await;
        }
        ToolOutput::text("Progress reported")
    }

    async fn sampling(arguments: &Map<String, Value>, context: &CallContext) -> Result<ToolOutput, ToolError> {
        let prompt = string_argument(arguments, "prompt")?;
        let params = json!({
            "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
            "maxTokens": 100,
        });
        let result = context
            .request("sampling/createMessage", params)
            .await
            .map_err(|e| ToolError::Failed(format!("sampling failed: {e}")))?;
        let text = result["content"]["text"].as_str().unwrap_or("(no text)");
        Ok(ToolOutput::text(format!("LLM response: {text}")))
    }

    async fn elicit(context: &CallContext, params: Value) -> Result<ToolOutput, ToolError> {
        let result = context
            .request("elicitation/create", params)
            .await
            .map_err(|e| ToolError::Failed(format!("elicitation failed: {e}")))?;
        Ok(ToolOutput::text(format!(
            "User response: action={}, content={}",
            result["action"].as_str().unwrap_or("unknown"),
            result.get("content").cloned().unwrap_or(Value::Null)
        )))
    }
}

fn confirm_params(filename: &str) -> Value {
    json!({
        "message": format!("Delete {filename}?"),
        "requestedSchema": {
            "type": "object",
            "properties": { "confirm": { "type": "boolean", "description": "Delete it" } },
            "required": ["confirm"],
        },
    })
}

fn elicitation_params(arguments: &Map<String, Value>) -> Result<Value, ToolError> {
    Ok(json!({
        "message": string_argument(arguments, "message")?,
        "requestedSchema": {
            "type": "object",
            "properties": {
                "username": { "type": "string", "description": "User's response" },
                "email": { "type": "string", "description": "User's email address" },
            },
            "required": ["username", "email"],
        },
    }))
}

fn sep1034_defaults_params() -> Value {
    json!({
        "message": "Please review and update the form fields with defaults",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "name": { "type": "string", "description": "User name", "default": "John Doe" },
                "age": { "type": "integer", "description": "User age", "default": 30 },
                "score": { "type": "number", "description": "User score", "default": 95.5 },
                "status": { "type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active" },
                "verified": { "type": "boolean", "description": "Verification status", "default": true },
            },
            "required": [],
        },
    })
}

fn sep1330_enums_params() -> Value {
    let titled = |prefix: &str, word: &str| {
        json!([
            { "const": format!("{prefix}1"), "title": format!("First {word}") },
            { "const": format!("{prefix}2"), "title": format!("Second {word}") },
            { "const": format!("{prefix}3"), "title": format!("Third {word}") },
        ])
    };
    json!({
        "message": "Please select options from the enum fields",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "untitledSingle": { "type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"] },
                "titledSingle": { "type": "string", "description": "Select one option with titles", "oneOf": titled("value", "Option") },
                "legacyEnum": {
                    "type": "string", "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3,
                    "items": { "type": "string", "enum": ["option1", "option2", "option3"] },
                },
                "titledMulti": {
                    "type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3,
                    "items": { "anyOf": titled("value", "Choice") },
                },
            },
            "required": [],
        },
    })
}

#[async_trait]
impl Toolbox for ConformanceToolbox {
    fn name(&self) -> &str {
        "conformance"
    }

    async fn tools(&self) -> Vec<ToolSpec> {
        let mut tools = vec![
            spec("test_simple_text", "Tests simple text content response", empty_schema()),
            spec("test_image_content", "Tests image content response", empty_schema()),
            spec("test_audio_content", "Tests audio content response", empty_schema()),
            spec("test_embedded_resource", "Tests embedded resource content response", empty_schema()),
            spec(
                "test_multiple_content_types",
                "Tests response with multiple content types (text, image, resource)",
                empty_schema(),
            ),
            spec("test_tool_with_logging", "Tests tool that emits log messages during execution", empty_schema()),
            spec("test_tool_with_progress", "Tests tool that reports progress notifications", empty_schema()),
            spec("test_error_handling", "Tests error response handling", empty_schema()),
            spec(
                "test_sampling",
                "Tests server-initiated sampling (LLM completion request)",
                string_argument_schema("prompt", "The prompt to send to the LLM"),
            ),
            spec(
                "test_elicitation",
                "Tests server-initiated elicitation (user input request)",
                string_argument_schema("message", "The message to show the user"),
            ),
            spec(
                "test_elicitation_sep1034_defaults",
                "Tests elicitation with default values per SEP-1034",
                empty_schema(),
            ),
            spec(
                "test_elicitation_sep1330_enums",
                "Tests elicitation with enum schema improvements per SEP-1330",
                empty_schema(),
            ),
            spec(
                "test_sleep",
                "Sleeps for `ms` milliseconds, then answers (Rampart's own fixture for cancellation and graceful-shutdown tests)",
                json!({ "type": "object", "properties": { "ms": { "type": "integer", "minimum": 0, "maximum": 60000 } }, "required": ["ms"] }),
            ),
            spec(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "$defs": { "address": { "type": "object", "properties": { "street": { "type": "string" }, "city": { "type": "string" } } } },
                    "properties": { "name": { "type": "string" }, "address": { "$ref": "#/$defs/address" } },
                    "additionalProperties": false,
                }),
            ),
            spec(
                "test_toggle_dynamic_tool",
                "Adds test_dynamic_tool, or removes it (Rampart's own fixture for list_changed)",
                empty_schema(),
            ),
        ];
        tools.extend(task_fixtures());
        if self.dynamic.load(Ordering::SeqCst) {
            tools.push(spec("test_dynamic_tool", "Served only after test_toggle_dynamic_tool", empty_schema()));
        }
        tools
    }

    async fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        Ok(match tool {
            "test_simple_text" => ToolOutput::text("This is a simple text response for testing."),
            "test_image_content" => ToolOutput::content(vec![image()]),
            "test_audio_content" => {
                ToolOutput::content(vec![Content::Audio { data: WAV.into(), mime_type: "audio/wav".into() }])
            }
            "test_embedded_resource" => ToolOutput::content(vec![text_resource(
                "test://embedded-resource",
                "text/plain",
                "This is an embedded resource content.",
            )]),
            "test_multiple_content_types" => ToolOutput::content(vec![
                Content::text("Multiple content types test:"),
                image(),
                text_resource("test://mixed-content-resource", "application/json", r#"{"test":"data","value":123}"#),
            ]),
            "test_tool_with_logging" => Self::with_logging(context).await,
            "test_tool_with_progress" => Self::with_progress(context).await,
            "test_error_handling" => ToolOutput::error("This tool intentionally returns an error for testing"),
            "test_sampling" => Self::sampling(&arguments, context).await?,
            "test_elicitation" => Self::elicit(context, elicitation_params(&arguments)?).await?,
            "test_elicitation_sep1034_defaults" => Self::elicit(context, sep1034_defaults_params()).await?,
            "test_elicitation_sep1330_enums" => Self::elicit(context, sep1330_enums_params()).await?,
            "test_sleep" => {
                let ms = arguments
                    .get("ms")
                    .and_then(Value::as_u64)
                    .filter(|ms| *ms <= 60_000)
                    .ok_or_else(|| ToolError::InvalidArguments("'ms' must be an integer from 0 to 60000".into()))?;
                tracing::info!(ms, "test_sleep started");
                tokio::time::sleep(Duration::from_millis(ms)).await;
                ToolOutput::text(format!("slept {ms} ms"))
            }
            "test_toggle_dynamic_tool" => {
                let now = !self.dynamic.fetch_xor(true, Ordering::SeqCst);
                let changes = self.changes.lock().ok().and_then(|changes| changes.clone());
                if let Some(changes) = changes {
                    changes.changed().await;
                }
                ToolOutput::text(if now { "test_dynamic_tool added" } else { "test_dynamic_tool removed" })
            }
            "test_dynamic_tool" => ToolOutput::text("dynamic"),
            "greet" => ToolOutput::text(format!("Hello, {}!", string_argument(&arguments, "name")?)),
            "slow_compute" => {
                let seconds =
                    arguments.get("seconds").and_then(Value::as_f64).filter(|s| (0.0..=600.0).contains(s)).ok_or_else(
                        || ToolError::InvalidArguments("'seconds' must be a number from 0 to 600".into()),
                    )?;
                let label = arguments.get("label").and_then(Value::as_str).unwrap_or("compute");
                let steps = 10u32;
                for step in 1..=steps {
                    tokio::time::sleep(Duration::from_secs_f64(seconds / f64::from(steps))).await;
                    context.progress(f64::from(step), Some(f64::from(steps)), None).await;
                }
                ToolOutput::text(format!("{label}: computed after {seconds} s"))
            }
            "failing_job" => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                ToolOutput::error("failing_job failed, as it always does")
            }
            "protocol_error_job" => {
                return Err(ToolError::Internal("protocol_error_job: a server fault, on purpose".into()));
            }
            "confirm_delete" => {
                let filename = arguments.get("filename").and_then(Value::as_str).unwrap_or("example.txt");
                let answer = context
                    .request("elicitation/create", confirm_params(filename))
                    .await
                    .map_err(|e| ToolError::Failed(format!("elicitation failed: {e}")))?;
                let confirmed = answer["action"] == "accept" && answer["content"]["confirm"] != json!(false);
                ToolOutput::text(if confirmed { format!("Deleted {filename}") } else { format!("Kept {filename}") })
            }
            "multi_input" => {
                let (first, second) = tokio::join!(
                    context.request("elicitation/create", confirm_params("first.txt")),
                    context.request("elicitation/create", confirm_params("second.txt")),
                );
                let action = |answer: Result<Value, rampart_core::PeerError>| {
                    answer.map(|a| a["action"].as_str().unwrap_or("unknown").to_owned())
                };
                let first = action(first).map_err(|e| ToolError::Failed(format!("elicitation failed: {e}")))?;
                let second = action(second).map_err(|e| ToolError::Failed(format!("elicitation failed: {e}")))?;
                ToolOutput::text(format!("first: {first}, second: {second}"))
            }
            "json_schema_2020_12_tool" => {
                ToolOutput::text(format!("JSON Schema 2020-12 tool called with: {}", Value::Object(arguments)))
            }
            other => return Err(ToolError::NotFound(format!("tool '{other}'"))),
        })
    }

    async fn resources(&self) -> Vec<ResourceSpec> {
        let resource = |name: &str, title: &str, description: &str, mime: &str| ResourceSpec {
            uri: format!("test://{name}"),
            name: name.into(),
            title: Some(title.into()),
            description: Some(description.into()),
            mime_type: Some(mime.into()),
        };
        vec![
            resource("static-text", "Static Text Resource", "A static text resource for testing", "text/plain"),
            resource(
                "static-binary",
                "Static Binary Resource",
                "A static binary resource (image) for testing",
                "image/png",
            ),
            resource("watched-resource", "Watched Resource", "A resource that can be subscribed to", "text/plain"),
        ]
    }

    async fn resource_templates(&self) -> Vec<ResourceTemplateSpec> {
        vec![ResourceTemplateSpec {
            uri_template: "test://template/{id}/data".into(),
            name: "template".into(),
            description: Some("A resource template with parameter substitution".into()),
            mime_type: Some("application/json".into()),
        }]
    }

    async fn read_resource(
        &self,
        uri: &str,
        _context: &CallContext,
    ) -> Result<Option<Vec<ResourceContents>>, ToolError> {
        let text =
            |mime: &str, text: String| ResourceContents::Text { uri: uri.into(), mime_type: Some(mime.into()), text };
        let contents = match uri {
            "test://static-text" => text("text/plain", "This is the content of the static text resource.".into()),
            "test://static-binary" => {
                ResourceContents::Blob { uri: uri.into(), mime_type: Some("image/png".into()), blob: PNG.into() }
            }
            "test://watched-resource" => text("text/plain", "Watched resource content.".into()),
            _ => match uri.strip_prefix("test://template/").and_then(|rest| rest.strip_suffix("/data")) {
                Some(id) if !id.is_empty() && !id.contains('/') => text(
                    "application/json",
                    json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") }).to_string(),
                ),
                _ => return Ok(None),
            },
        };
        Ok(Some(vec![contents]))
    }

    async fn prompts(&self) -> Vec<PromptSpec> {
        let argument = |name: &str, description: &str| PromptArgument {
            name: name.into(),
            description: Some(description.into()),
            required: true,
        };
        let prompt = |name: &str, title: &str, description: &str, arguments: Vec<PromptArgument>| PromptSpec {
            name: name.into(),
            title: Some(title.into()),
            description: Some(description.into()),
            arguments,
        };
        vec![
            prompt("test_simple_prompt", "Simple Test Prompt", "A simple prompt without arguments", vec![]),
            prompt(
                "test_prompt_with_arguments",
                "Prompt With Arguments",
                "A prompt with required arguments",
                vec![argument("arg1", "First test argument"), argument("arg2", "Second test argument")],
            ),
            prompt(
                "test_prompt_with_embedded_resource",
                "Prompt With Embedded Resource",
                "A prompt that includes an embedded resource",
                vec![argument("resourceUri", "URI of the resource to embed")],
            ),
            prompt("test_prompt_with_image", "Prompt With Image", "A prompt that includes image content", vec![]),
        ]
    }

    async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        _context: &CallContext,
    ) -> Result<PromptOutput, ToolError> {
        let user = |content: Content| PromptMessage { role: PromptRole::User, content };
        let messages = match name {
            "test_simple_prompt" => vec![user(Content::text("This is a simple prompt for testing."))],
            "test_prompt_with_arguments" => {
                let arg1 = string_argument(&arguments, "arg1")?;
                let arg2 = string_argument(&arguments, "arg2")?;
                vec![user(Content::text(format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")))]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = string_argument(&arguments, "resourceUri")?;
                vec![
                    user(text_resource(&uri, "text/plain", "Embedded resource content for testing.")),
                    user(Content::text("Please process the embedded resource above.")),
                ]
            }
            "test_prompt_with_image" => vec![user(image()), user(Content::text("Please analyze the image above."))],
            other => return Err(ToolError::NotFound(format!("prompt '{other}'"))),
        };
        Ok(PromptOutput { description: None, messages })
    }

    async fn complete(&self, reference: &CompletionRef, argument: &str, value: &str, _: &CallContext) -> Vec<String> {
        match (reference, argument) {
            (CompletionRef::Prompt(name), "arg1" | "arg2") if name == "test_prompt_with_arguments" => {
                ["paris", "park", "party", "test", "testing"]
                    .iter()
                    .filter(|v| v.starts_with(value))
                    .map(|v| (*v).to_owned())
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    fn watch(&self, changes: CatalogChanges) {
        if let Ok(mut slot) = self.changes.lock() {
            *slot = Some(changes);
        }
    }
}
