//! The one call pipeline. Every `tools/call`, `resources/read` and `prompts/get`, from
//! every transport and for every toolbox, goes through [`Pipeline`]; this is where
//! authorization, rate limits and audit plug in, so that no tool can forget them.
//!
//! Order of a tool call: look up the tool → (authorize) → (rate-limit) → run it under the
//! client's cancellation and a panic guard → turn a [`ToolError`] into an `isError` result
//! → (audit) → log one line.

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use futures::FutureExt;
use serde_json::{Map, Value};

use crate::{
    CallContext, CompletionRef, PromptOutput, PromptSpec, ResourceContents, ResourceSpec, ResourceTemplateSpec,
    ToolError, ToolOutput, ToolSpec, Toolbox,
};

/// A request the pipeline refuses as a protocol error rather than a tool result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No tool of that name is visible to the caller (MCP: JSON-RPC -32602).
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    /// No prompt of that name is visible to the caller.
    #[error("unknown prompt: {0}")]
    UnknownPrompt(String),
    /// No resource at that URI is visible to the caller (MCP: -32002).
    #[error("resource not found: {0}")]
    ResourceNotFound(String),
    /// Bad arguments to a prompt (MCP: -32602).
    #[error("{0}")]
    InvalidParams(String),
    /// The call was cancelled.
    #[error("request cancelled")]
    Cancelled,
    /// Anything else; the detail is logged, the client sees "internal error".
    #[error("internal error")]
    Internal,
}

/// Two toolboxes declared the same tool or prompt name.
#[derive(Debug, thiserror::Error)]
#[error("{kind} '{name}' is declared by both toolbox '{first}' and toolbox '{second}'")]
pub struct DuplicateName {
    kind: &'static str,
    name: String,
    first: String,
    second: String,
}

struct ToolEntry {
    spec: ToolSpec,
    toolbox: Arc<dyn Toolbox>,
}

/// Collects toolboxes, then builds a [`Pipeline`].
#[derive(Default)]
pub struct PipelineBuilder {
    toolboxes: Vec<Arc<dyn Toolbox>>,
}

impl PipelineBuilder {
    /// Adds a toolbox.
    pub fn toolbox(mut self, toolbox: Arc<dyn Toolbox>) -> Self {
        self.toolboxes.push(toolbox);
        self
    }

    /// Builds the pipeline.
    ///
    /// # Errors
    /// [`DuplicateName`] when two toolboxes declare the same tool or prompt.
    pub fn build(self) -> Result<Pipeline, DuplicateName> {
        let mut tools: HashMap<String, ToolEntry> = HashMap::new();
        let mut tool_order = Vec::new();
        let mut prompts: HashMap<String, (PromptSpec, Arc<dyn Toolbox>)> = HashMap::new();
        let mut prompt_order = Vec::new();
        for toolbox in &self.toolboxes {
            for spec in toolbox.tools() {
                if let Some(existing) = tools.get(&spec.name) {
                    return Err(duplicate("tool", &spec.name, &existing.toolbox, toolbox));
                }
                tool_order.push(spec.name.clone());
                tools.insert(spec.name.clone(), ToolEntry { spec, toolbox: toolbox.clone() });
            }
            for spec in toolbox.prompts() {
                if let Some((_, existing)) = prompts.get(&spec.name) {
                    return Err(duplicate("prompt", &spec.name, existing, toolbox));
                }
                prompt_order.push(spec.name.clone());
                prompts.insert(spec.name.clone(), (spec, toolbox.clone()));
            }
        }
        Ok(Pipeline {
            toolboxes: self.toolboxes,
            tools,
            tool_order,
            prompts,
            prompt_order,
            in_flight: AtomicUsize::new(0),
        })
    }
}

fn duplicate(kind: &'static str, name: &str, first: &Arc<dyn Toolbox>, second: &Arc<dyn Toolbox>) -> DuplicateName {
    DuplicateName { kind, name: name.into(), first: first.name().into(), second: second.name().into() }
}

/// The one path from a request to a toolbox. Cheap to share (`Arc<Pipeline>`).
pub struct Pipeline {
    toolboxes: Vec<Arc<dyn Toolbox>>,
    tools: HashMap<String, ToolEntry>,
    tool_order: Vec<String>,
    prompts: HashMap<String, (PromptSpec, Arc<dyn Toolbox>)>,
    prompt_order: Vec<String>,
    in_flight: AtomicUsize,
}

/// Decrements the in-flight count when a call ends, however it ends.
struct InFlightGuard<'a>(&'a AtomicUsize);

impl<'a> InFlightGuard<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("tools", &self.tool_order).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Starts a builder.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// Tool calls running now; graceful shutdown waits for this to reach zero.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Names of the enabled toolboxes, in registration order.
    pub fn toolbox_names(&self) -> Vec<String> {
        self.toolboxes.iter().map(|t| t.name().to_owned()).collect()
    }

    /// The tools the caller of `context` may see, in registration order.
    pub fn list_tools(&self, _context: &CallContext) -> Vec<ToolSpec> {
        self.tool_order.iter().filter_map(|name| self.tools.get(name)).map(|e| e.spec.clone()).collect()
    }

    /// The spec of one tool, if the caller may see it.
    pub fn tool(&self, name: &str, _context: &CallContext) -> Option<&ToolSpec> {
        self.tools.get(name).map(|e| &e.spec)
    }

    /// Calls a tool through the pipeline.
    ///
    /// Tool failures, bad arguments and panics come back as `Ok` with `is_error: true`
    /// (MCP 2025-11-25: tool execution errors, so the model can correct itself).
    ///
    /// # Errors
    /// [`CallError::UnknownTool`]; [`CallError::Cancelled`] when the client cancels.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        context: &CallContext,
    ) -> Result<ToolOutput, CallError> {
        let entry = self.tools.get(name).ok_or_else(|| CallError::UnknownTool(name.to_owned()))?;
        let _in_flight = InFlightGuard::enter(&self.in_flight);
        let started = Instant::now();
        let call = entry.toolbox.call_tool(name, arguments.unwrap_or_default(), context);
        let result = tokio_util::future::FutureExt::with_cancellation_token(
            AssertUnwindSafe(call).catch_unwind(),
            &context.cancellation,
        )
        .await;
        let output = match result {
            None => Err(ToolError::Cancelled),
            Some(Err(_panic)) => Err(ToolError::Internal(format!("tool '{name}' panicked"))),
            Some(Ok(result)) => result,
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let output = match output {
            Ok(output) => output,
            Err(ToolError::Cancelled) => {
                tracing::info!(tool = name, principal = %context.caller.principal, elapsed_ms, "tool call cancelled");
                return Err(CallError::Cancelled);
            }
            Err(ToolError::Internal(detail)) => {
                tracing::error!(tool = name, principal = %context.caller.principal, %detail, "tool call failed internally");
                ToolOutput::error(format!("tool '{name}' failed with an internal error; see the server log"))
            }
            Err(error) => ToolOutput::error(error.to_string()),
        };
        tracing::info!(
            tool = name,
            principal = %context.caller.principal,
            transport = ?context.caller.transport,
            is_error = output.is_error,
            elapsed_ms,
            "tool call"
        );
        Ok(output)
    }

    /// Concrete resources the caller may see.
    pub fn list_resources(&self, _context: &CallContext) -> Vec<ResourceSpec> {
        self.toolboxes.iter().flat_map(|t| t.resources()).collect()
    }

    /// Resource templates the caller may see.
    pub fn list_resource_templates(&self, _context: &CallContext) -> Vec<ResourceTemplateSpec> {
        self.toolboxes.iter().flat_map(|t| t.resource_templates()).collect()
    }

    /// Reads a resource from the first toolbox that serves `uri`.
    ///
    /// # Errors
    /// [`CallError::ResourceNotFound`], [`CallError::InvalidParams`], [`CallError::Internal`].
    pub async fn read_resource(&self, uri: &str, context: &CallContext) -> Result<Vec<ResourceContents>, CallError> {
        for toolbox in &self.toolboxes {
            let read = AssertUnwindSafe(toolbox.read_resource(uri, context)).catch_unwind().await;
            match read {
                Ok(Ok(Some(contents))) => return Ok(contents),
                Ok(Ok(None)) => continue,
                Ok(Err(error)) => return Err(protocol_error(error, || CallError::ResourceNotFound(uri.into()))),
                Err(_panic) => {
                    tracing::error!(uri, "resource read panicked");
                    return Err(CallError::Internal);
                }
            }
        }
        Err(CallError::ResourceNotFound(uri.into()))
    }

    /// Prompts the caller may see, in registration order.
    pub fn list_prompts(&self, _context: &CallContext) -> Vec<PromptSpec> {
        self.prompt_order.iter().filter_map(|name| self.prompts.get(name)).map(|(spec, _)| spec.clone()).collect()
    }

    /// Renders a prompt.
    ///
    /// # Errors
    /// [`CallError::UnknownPrompt`], [`CallError::InvalidParams`], [`CallError::Internal`].
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<PromptOutput, CallError> {
        let (spec, toolbox) = self.prompts.get(name).ok_or_else(|| CallError::UnknownPrompt(name.into()))?;
        if let Some(missing) = spec.arguments.iter().find(|a| a.required && !arguments.contains_key(&a.name)) {
            return Err(CallError::InvalidParams(format!("prompt '{name}' requires argument '{}'", missing.name)));
        }
        match AssertUnwindSafe(toolbox.get_prompt(name, arguments, context)).catch_unwind().await {
            Ok(result) => result.map_err(|e| protocol_error(e, || CallError::UnknownPrompt(name.into()))),
            Err(_panic) => {
                tracing::error!(prompt = name, "prompt panicked");
                Err(CallError::Internal)
            }
        }
    }

    /// Completion values from every toolbox, at most 100 (MCP "completion/complete").
    pub fn complete(&self, reference: &CompletionRef, argument: &str, value: &str) -> Vec<String> {
        let mut values: Vec<String> =
            self.toolboxes.iter().flat_map(|t| t.complete(reference, argument, value)).collect();
        values.truncate(100);
        values
    }
}

fn protocol_error(error: ToolError, not_found: impl FnOnce() -> CallError) -> CallError {
    match error {
        ToolError::NotFound(_) => not_found(),
        ToolError::InvalidArguments(message) | ToolError::Failed(message) => CallError::InvalidParams(message),
        ToolError::Cancelled => CallError::Cancelled,
        ToolError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            CallError::Internal
        }
    }
}
