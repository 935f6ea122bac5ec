//! What a tool is ([`ToolSpec`]), what a call returns ([`ToolOutput`], [`ToolError`]), and
//! the one trait every provider of tools implements ([`Toolbox`]).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::{
    CallContext, CatalogChanges, Content, PromptOutput, PromptSpec, ResourceContents, ResourceSpec,
    ResourceTemplateSpec,
};

/// Behaviour hints for clients (MCP 2025-11-25 "ToolAnnotations"). Hints, not guarantees:
/// Rampart's policy never trusts them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    /// The tool does not modify its environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may perform destructive updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Repeating the call with the same arguments has no further effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool talks to an open world (the internet) rather than a closed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

impl ToolAnnotations {
    /// A read-only, idempotent, closed-world tool.
    pub fn read_only() -> Self {
        Self {
            read_only_hint: Some(true),
            destructive_hint: Some(false),
            idempotent_hint: Some(true),
            open_world_hint: Some(false),
        }
    }

    /// A tool that changes its environment: not read-only, not destructive (it only adds
    /// or updates), not idempotent, closed world. Adjust with [`Self::destructive`],
    /// [`Self::idempotent`] and [`Self::open_world`].
    pub fn write() -> Self {
        Self {
            read_only_hint: Some(false),
            destructive_hint: Some(false),
            idempotent_hint: Some(false),
            open_world_hint: Some(false),
        }
    }

    /// Sets `destructiveHint` (the tool may delete or overwrite).
    #[must_use]
    pub fn destructive(mut self, destructive: bool) -> Self {
        self.destructive_hint = Some(destructive);
        self
    }

    /// Sets `idempotentHint` (calling again with the same arguments changes nothing more).
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent_hint = Some(idempotent);
        self
    }

    /// Sets `openWorldHint` (the tool talks to the internet or another open system).
    #[must_use]
    pub fn open_world(mut self, open_world: bool) -> Self {
        self.open_world_hint = Some(open_world);
        self
    }
}

/// The description of one tool, as `tools/list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec {
    /// Unique name across the server, e.g. `get_current_time`.
    pub name: String,
    /// Human-readable title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema (2020-12) of the arguments object; always `"type": "object"`.
    pub input_schema: Map<String, Value>,
    /// JSON Schema of `structuredContent`, when the tool returns structured output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Map<String, Value>>,
    /// Behaviour hints.
    pub annotations: ToolAnnotations,
    /// Whether a call may run as a task (the 2026-07-28 tasks extension, SEP-2663). The
    /// server decides per call; not sent in `tools/list`.
    #[serde(skip)]
    pub task_support: TaskSupport,
}

/// Whether a tool's calls may run as tasks (SEP-2663: task creation is server-directed;
/// the client only says it can follow one, in its per-request capabilities).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskSupport {
    /// Always answered in the call (quick tools). The default.
    #[default]
    Forbidden,
    /// Run as a task when the client can follow one, in the call otherwise: tools that
    /// may run long (commands, queries, upstream servers).
    Optional,
    /// Only as a task: a client that cannot follow one gets -32021 (missing required
    /// client capability).
    Required,
}

impl ToolSpec {
    /// A spec whose input schema is generated from `Args` (schemars).
    pub fn new<Args: JsonSchema>(name: &str, description: &str) -> Self {
        Self::with_schema(name, description, input_schema_for::<Args>())
    }

    /// A spec for [`crate::ToolRouter::tool`], which fills in the input and output
    /// schemas from the tool function's types (until then: no arguments).
    pub fn named(name: &str, description: &str) -> Self {
        Self::new::<crate::NoArguments>(name, description)
    }

    /// A spec with `input_schema` as given (a JSON Schema object: one read from an
    /// OpenAPI document, an upstream server, a fixture), everything else default.
    pub fn with_schema(name: &str, description: &str, input_schema: Map<String, Value>) -> Self {
        Self {
            name: name.into(),
            title: None,
            description: description.into(),
            input_schema,
            output_schema: None,
            annotations: ToolAnnotations::default(),
            task_support: TaskSupport::Forbidden,
        }
    }

    /// Says whether calls may run as tasks ([`TaskSupport`]).
    pub fn task_support(mut self, support: TaskSupport) -> Self {
        self.task_support = support;
        self
    }

    /// Sets the title.
    pub fn title(mut self, title: &str) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Declares structured output whose schema is generated from `Out`.
    pub fn output<Out: JsonSchema>(mut self) -> Self {
        self.output_schema = Some(output_schema_for::<Out>());
        self
    }

    /// Sets the annotations.
    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.annotations = annotations;
        self
    }

    /// Marks the tool read-only ([`ToolAnnotations::read_only`]).
    pub fn read_only(self) -> Self {
        self.annotations(ToolAnnotations::read_only())
    }
}

/// The JSON Schema of `T` as an object schema for `inputSchema`.
///
/// MCP requires `"type": "object"`; a unit-like `T` yields `{"type": "object",
/// "properties": {}}`.
pub fn input_schema_for<T: JsonSchema>() -> Map<String, Value> {
    let mut map = schema_object::<T>();
    map.insert("type".into(), Value::String("object".into()));
    map.entry("properties").or_insert_with(|| Value::Object(Map::new()));
    map
}

/// The JSON Schema of `T` for `outputSchema`.
pub fn output_schema_for<T: JsonSchema>() -> Map<String, Value> {
    schema_object::<T>()
}

fn schema_object<T: JsonSchema>() -> Map<String, Value> {
    let schema = schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
    match schema.to_value() {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Deserializes call arguments into `T`.
///
/// # Errors
/// [`ToolError::InvalidArguments`] with serde's message (e.g. "missing field `time`").
pub fn parse_arguments<T: DeserializeOwned>(arguments: Map<String, Value>) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(arguments)).map_err(|error| ToolError::InvalidArguments(error.to_string()))
}

/// The result of a tool call: content for the model, optional structured content matching
/// the tool's `outputSchema`, and whether the tool failed (MCP "CallToolResult").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolOutput {
    /// Content blocks.
    pub content: Vec<Content>,
    /// Structured result, matching the declared output schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// `true` when the tool failed; `content` then says why.
    pub is_error: bool,
}

impl ToolOutput {
    /// A successful text result.
    pub fn text(text: impl Into<String>) -> Self {
        Self { content: vec![Content::text(text)], structured_content: None, is_error: false }
    }

    /// A successful result with structured content and its readable rendering.
    ///
    /// # Errors
    /// [`ToolError::Internal`] when `value` does not serialize to JSON.
    pub fn structured(value: &impl Serialize, text: impl Into<String>) -> Result<Self, ToolError> {
        let value =
            serde_json::to_value(value).map_err(|error| ToolError::Internal(format!("serializing result: {error}")))?;
        Ok(Self { content: vec![Content::text(text)], structured_content: Some(value), is_error: false })
    }

    /// A successful result made of several blocks.
    pub fn content(content: Vec<Content>) -> Self {
        Self { content, structured_content: None, is_error: false }
    }

    /// The text of its text blocks, one per line (what a person reads of it).
    pub fn to_text(&self) -> String {
        self.content.iter().filter_map(Content::as_text).collect::<Vec<_>>().join("\n")
    }

    /// A failed result whose text a person can act on.
    pub fn error(message: impl Into<String>) -> Self {
        Self { content: vec![Content::text(message)], structured_content: None, is_error: true }
    }
}

/// Why a tool, resource read or prompt failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not match the input schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and failed in a way the caller can act on.
    #[error("{0}")]
    Failed(String),
    /// The policy refused a resource the tool needed.
    #[error(transparent)]
    Denied(#[from] crate::Denied),
    /// The named prompt or resource does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The call was cancelled by the client.
    #[error("cancelled")]
    Cancelled,
    /// A bug or an unexpected condition; the detail is logged, not sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which completion the client asks for (MCP "completion/complete" `ref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionRef {
    /// An argument of the named prompt.
    Prompt(String),
    /// A variable of the resource template with this URI template.
    ResourceTemplate(String),
}

/// A provider of tools (and optionally resources and prompts): built-in toolboxes, a
/// user's own Rust toolbox, and upstream MCP servers all implement this one trait, and the
/// [`crate::Pipeline`] applies the same security to each.
#[async_trait]
pub trait Toolbox: Send + Sync + 'static {
    /// The toolbox's name, e.g. `system`; shown by `system_about` and the banner.
    fn name(&self) -> &str;

    /// The toolbox's tools as a [`crate::ToolRouter`] bound to the toolbox,
    /// `Some(self.tools.bind(self))`: then [`Toolbox::tools`] and [`Toolbox::call_tool`]
    /// need not be written. `None` (the default) for a toolbox that implements those two
    /// itself (an upstream server's tools).
    fn routes(&self) -> Option<crate::Routes<'_>> {
        None
    }

    /// The tools this toolbox serves now (by default, its [`Toolbox::routes`]'). Names
    /// must be unique across the server. Asked when the pipeline collects its catalog (at
    /// start, on a reload, and after [`CatalogChanges::changed`]), never per request: a
    /// toolbox whose tools change calls that to have them collected again.
    async fn tools(&self) -> Vec<ToolSpec> {
        self.routes().map(|routes| routes.specs()).unwrap_or_default()
    }

    /// Runs `tool` with `arguments` (already known to belong to this toolbox; by default
    /// through its [`Toolbox::routes`]).
    ///
    /// # Errors
    /// A [`ToolError`]; the pipeline turns it into an `isError` result.
    async fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        match self.routes() {
            Some(routes) => routes.call(tool, arguments, context).await,
            None => Err(ToolError::NotFound(format!("tool '{tool}'"))),
        }
    }

    /// Concrete resources this toolbox serves now (collected like [`Toolbox::tools`]).
    async fn resources(&self) -> Vec<ResourceSpec> {
        Vec::new()
    }

    /// Resource templates this toolbox serves now (collected like [`Toolbox::tools`]).
    async fn resource_templates(&self) -> Vec<ResourceTemplateSpec> {
        Vec::new()
    }

    /// Reads `uri`; `Ok(None)` when this toolbox does not serve it.
    ///
    /// # Errors
    /// A [`ToolError`] when the resource exists but cannot be read.
    async fn read_resource(
        &self,
        _uri: &str,
        _context: &CallContext,
    ) -> Result<Option<Vec<ResourceContents>>, ToolError> {
        Ok(None)
    }

    /// The caller subscribed to `uri` (already granted, and served by this toolbox):
    /// a toolbox that can tell when it changes keeps `context.peer()` and calls
    /// [`crate::ClientPeer::notify_resource_updated`] then. The default accepts and never
    /// tells.
    ///
    /// # Errors
    /// A [`ToolError`] when the subscription cannot be made (the upstream refused it).
    async fn subscribe(&self, _uri: &str, _context: &CallContext) -> Result<(), ToolError> {
        Ok(())
    }

    /// The caller's session no longer wants updates of `uri`.
    async fn unsubscribe(&self, _uri: &str, _context: &CallContext) {}

    /// Prompts this toolbox serves now (collected like [`Toolbox::tools`]).
    async fn prompts(&self) -> Vec<PromptSpec> {
        Vec::new()
    }

    /// Renders prompt `name` (one of [`Toolbox::prompts`]).
    ///
    /// # Errors
    /// [`ToolError::InvalidArguments`] for missing arguments, [`ToolError::NotFound`].
    async fn get_prompt(
        &self,
        name: &str,
        _arguments: Map<String, Value>,
        _context: &CallContext,
    ) -> Result<PromptOutput, ToolError> {
        Err(ToolError::NotFound(format!("prompt '{name}'")))
    }

    /// Completion values for `argument` of a prompt or resource template of this toolbox
    /// (already known to be granted to the caller), starting with `value`; the pipeline
    /// keeps the first 100.
    async fn complete(
        &self,
        _reference: &CompletionRef,
        _argument: &str,
        _value: &str,
        _context: &CallContext,
    ) -> Vec<String> {
        Vec::new()
    }

    /// The state of each backing service this toolbox uses (databases, upstream
    /// servers), for `/readyz`. Must not block for long (the caller bounds it to a few
    /// seconds) and must not fail the toolbox: a down service is reported, not fatal.
    async fn readiness(&self) -> Vec<ServiceStatus> {
        Vec::new()
    }

    /// The MCP session `session` ended (DELETE, idle timeout, stdio EOF): release what the
    /// toolbox kept for it (e.g. a scratch directory). Called from a blocking thread.
    fn session_closed(&self, _session: &str) {}

    /// The toolbox joined a pipeline: keep `changes` and call [`CatalogChanges::changed`]
    /// when the tools, resources or prompts it serves change (an upstream server's
    /// `list_changed`), so that the catalog is collected again and sessions are told.
    fn watch(&self, _changes: CatalogChanges) {}
}

/// One backing service's state, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    /// Service name, e.g. `sql:analytics`.
    pub name: String,
    /// Whether it answers.
    pub ok: bool,
    /// What is wrong, or what it is (never a credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
