//! The one call pipeline. Every MCP request that touches tools, resources or prompts, from
//! every transport and for every toolbox, goes through [`Pipeline`]; this is where
//! authorization, admission (audit health, rate limits) and audit apply, so that no tool
//! can forget them.
//!
//! A tool call: look up the tool and ask the [`Guard`] whether the caller may use it (an
//! unknown tool and a forbidden one get the same answer, so nothing leaks) → admit →
//! run it under the client's cancellation and a panic guard, with the guard in its
//! [`CallContext`] for resource checks → turn a [`ToolError`] into an `isError` result →
//! record → log one line. With audit failing closed, a result that cannot be recorded is
//! withheld.

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
    CallContext, CallRecord, CompletionRef, Guard, OpenGuard, Outcome, PromptOutput, PromptSpec, Refusal,
    ResourceContents, ResourceSpec, ResourceTemplateSpec, ToolError, ToolOutput, ToolSpec, Toolbox,
};

/// A request the pipeline refuses as a protocol error rather than a tool result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No tool of that name is visible to the caller: it does not exist, or no role of
    /// the caller grants it (the same answer for both). MCP: JSON-RPC -32602.
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
    /// Refused before running: audit unavailable, rate limited.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The call was cancelled.
    #[error("request cancelled")]
    Cancelled,
    /// Anything else; the detail is logged, the client sees "internal error".
    #[error("internal error")]
    Internal,
}

impl CallError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(Refusal::RateLimited { .. }) => Outcome::RateLimited,
            Self::Refused(_) => Outcome::Refused,
            Self::Cancelled => Outcome::Cancelled,
            _ => Outcome::Error,
        }
    }
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

/// Collects toolboxes and the guard, then builds a [`Pipeline`].
pub struct PipelineBuilder {
    toolboxes: Vec<Arc<dyn Toolbox>>,
    guard: Arc<dyn Guard>,
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        Self { toolboxes: Vec::new(), guard: Arc::new(OpenGuard) }
    }
}

impl PipelineBuilder {
    /// Adds a toolbox.
    pub fn toolbox(mut self, toolbox: Arc<dyn Toolbox>) -> Self {
        self.toolboxes.push(toolbox);
        self
    }

    /// Sets the security hooks (default: [`OpenGuard`], everything allowed).
    pub fn guard(mut self, guard: Arc<dyn Guard>) -> Self {
        self.guard = guard;
        self
    }

    /// Builds the pipeline.
    ///
    /// # Errors
    /// [`DuplicateName`] when two toolboxes declare the same tool or prompt.
    pub fn build(self) -> Result<Pipeline, DuplicateName> {
        let mut tools: HashMap<String, ToolEntry> = HashMap::new();
        let mut tool_order = Vec::new();
        let mut prompts: HashMap<String, (PromptSpec, usize)> = HashMap::new();
        let mut prompt_order = Vec::new();
        let mut toolbox_tools = Vec::new();
        for (index, toolbox) in self.toolboxes.iter().enumerate() {
            let mut names = Vec::new();
            for spec in toolbox.tools() {
                if let Some(existing) = tools.get(&spec.name) {
                    return Err(duplicate("tool", &spec.name, &existing.toolbox, toolbox));
                }
                tool_order.push(spec.name.clone());
                names.push(spec.name.clone());
                tools.insert(spec.name.clone(), ToolEntry { spec, toolbox: toolbox.clone() });
            }
            toolbox_tools.push(names);
            for spec in toolbox.prompts() {
                if let Some((_, existing)) = prompts.get(&spec.name) {
                    return Err(duplicate("prompt", &spec.name, &self.toolboxes[*existing], toolbox));
                }
                prompt_order.push(spec.name.clone());
                prompts.insert(spec.name.clone(), (spec, index));
            }
        }
        Ok(Pipeline {
            toolboxes: self.toolboxes,
            toolbox_tools,
            tools,
            tool_order,
            prompts,
            prompt_order,
            guard: self.guard,
            in_flight: AtomicUsize::new(0),
        })
    }
}

fn duplicate(kind: &'static str, name: &str, first: &Arc<dyn Toolbox>, second: &Arc<dyn Toolbox>) -> DuplicateName {
    DuplicateName { kind, name: name.into(), first: first.name().into(), second: second.name().into() }
}

/// The one path from a request to a toolbox. Share it as `Arc<Pipeline>`.
pub struct Pipeline {
    toolboxes: Vec<Arc<dyn Toolbox>>,
    /// Tool names per toolbox (same index as `toolboxes`).
    toolbox_tools: Vec<Vec<String>>,
    tools: HashMap<String, ToolEntry>,
    tool_order: Vec<String>,
    prompts: HashMap<String, (PromptSpec, usize)>,
    prompt_order: Vec<String>,
    guard: Arc<dyn Guard>,
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

/// One request's bookkeeping: what to put in its audit record.
struct Request<'a> {
    context: &'a CallContext,
    method: &'static str,
    target: Option<String>,
    arguments: Value,
    started: Instant,
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

    /// Every tool, whoever asks (for the banner and `system_about`; never for clients).
    pub fn all_tools(&self) -> Vec<ToolSpec> {
        self.tool_order.iter().filter_map(|name| self.tools.get(name)).map(|e| e.spec.clone()).collect()
    }

    fn request<'a>(
        &self,
        context: &'a CallContext,
        method: &'static str,
        target: Option<&str>,
        arguments: Value,
    ) -> Request<'a> {
        Request { context, method, target: target.map(str::to_owned), arguments, started: Instant::now() }
    }

    /// Records `request` with `outcome`; a failed record becomes the request's error.
    async fn finish(
        &self,
        request: Request<'_>,
        allowed: bool,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<(), CallError> {
        let duration_ms = request.started.elapsed().as_secs_f64() * 1000.0;
        let record = CallRecord {
            caller: request.context.caller.clone(),
            request_id: request.context.request_id.clone(),
            method: request.method.into(),
            target: request.target,
            arguments: request.arguments,
            allowed,
            outcome,
            detail,
            duration_ms,
        };
        self.guard.record(record).await.map_err(CallError::Refused)
    }

    /// Records a refused or failed request and returns its error.
    async fn fail<T>(
        &self,
        request: Request<'_>,
        allowed: bool,
        error: CallError,
        detail: Option<String>,
    ) -> Result<T, CallError> {
        let outcome = if allowed { error.outcome() } else { Outcome::Denied };
        let detail = detail.or_else(|| Some(error.to_string()));
        if let Err(audit) = self.finish(request, allowed, outcome, detail).await {
            tracing::warn!(%audit, "refused request not recorded");
        }
        Err(error)
    }

    /// Admits a listing and records it.
    async fn listing(&self, context: &CallContext, method: &'static str) -> Result<(), CallError> {
        let request = self.request(context, method, None, Value::Null);
        if let Err(refusal) = self.guard.admit(&context.caller, method, None).await {
            return self.fail(request, true, refusal.into(), None).await;
        }
        self.finish(request, true, Outcome::Ok, None).await
    }

    /// The tools the caller of `context` may see, in registration order.
    ///
    /// # Errors
    /// [`CallError::Refused`].
    pub async fn list_tools(&self, context: &CallContext) -> Result<Vec<ToolSpec>, CallError> {
        self.listing(context, "tools/list").await?;
        Ok(self.visible_tools(context))
    }

    fn visible_tools(&self, context: &CallContext) -> Vec<ToolSpec> {
        self.tool_order
            .iter()
            .filter(|name| self.guard.check_tool(&context.caller, name).is_ok())
            .filter_map(|name| self.tools.get(name))
            .map(|e| e.spec.clone())
            .collect()
    }

    /// The spec of tool `name`, whoever asks: for validating a request's shape against
    /// the tool's schema, never for showing it (visibility is `list_tools`/`call_tool`'s).
    pub fn tool_spec(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.get(name).map(|e| &e.spec)
    }

    /// Calls a tool through the pipeline.
    ///
    /// Tool failures, bad arguments, resource denials and panics come back as `Ok` with
    /// `is_error: true` (MCP 2025-11-25: tool execution errors, so the model can correct
    /// itself).
    ///
    /// # Errors
    /// [`CallError::UnknownTool`] (unknown or not granted), [`CallError::Refused`],
    /// [`CallError::Cancelled`].
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        context: &CallContext,
    ) -> Result<ToolOutput, CallError> {
        let arguments = arguments.unwrap_or_default();
        let request = self.request(context, "tools/call", Some(name), Value::Object(arguments.clone()));
        let Some(entry) = self.tools.get(name) else {
            return self
                .fail(request, true, CallError::UnknownTool(name.to_owned()), Some("no such tool".into()))
                .await;
        };
        if let Err(denied) = self.guard.check_tool(&context.caller, name) {
            return self.fail(request, false, CallError::UnknownTool(name.to_owned()), Some(denied.to_string())).await;
        }
        let admission = match self.guard.admit(&context.caller, "tools/call", Some(name)).await {
            Ok(admission) => admission,
            Err(refusal @ Refusal::RateLimited { .. }) => {
                // A tool error the model can read and act on (wait, then retry).
                let message = refusal.to_string();
                self.finish(request, true, Outcome::RateLimited, Some(message.clone())).await?;
                return Ok(ToolOutput::error(message));
            }
            Err(refusal) => return self.fail(request, true, refusal.into(), None).await,
        };
        let _in_flight = InFlightGuard::enter(&self.in_flight);
        let tool_context = context.clone().with_guard(self.guard.clone());
        let call = AssertUnwindSafe(entry.toolbox.call_tool(name, arguments, &tool_context)).catch_unwind();
        let call = async {
            match admission.timeout {
                Some(limit) => tokio::time::timeout(limit, call).await.map_err(|_| limit),
                None => Ok(call.await),
            }
        };
        let result = tokio_util::future::FutureExt::with_cancellation_token(call, &context.cancellation).await;
        drop(admission.permit);
        let mut timed_out = false;
        let result = match result {
            None => Err(ToolError::Cancelled),
            Some(Err(limit)) => {
                timed_out = true;
                Err(ToolError::Failed(format!(
                    "tool '{name}' timed out after {} s (limits.call_timeout_secs)",
                    limit.as_secs_f64()
                )))
            }
            Some(Ok(Err(_panic))) => Err(ToolError::Internal(format!("tool '{name}' panicked"))),
            Some(Ok(Ok(result))) => result,
        };
        let (output, allowed, outcome, detail) = match result {
            Ok(output) => {
                let outcome = if output.is_error { Outcome::ToolError } else { Outcome::Ok };
                (output, true, outcome, None)
            }
            Err(ToolError::Cancelled) => {
                tracing::info!(tool = name, principal = %context.caller.principal, "tool call cancelled");
                return self.fail(request, true, CallError::Cancelled, None).await;
            }
            Err(ToolError::Internal(detail)) => {
                tracing::error!(tool = name, principal = %context.caller.principal, %detail, "tool call failed internally");
                let message = format!("tool '{name}' failed with an internal error; see the server log");
                (ToolOutput::error(message), true, Outcome::Error, Some(detail))
            }
            Err(ToolError::Denied(denied)) => {
                let message = denied.to_string();
                (ToolOutput::error(message.clone()), false, Outcome::Denied, Some(message))
            }
            Err(error) => {
                let message = error.to_string();
                let outcome = if timed_out { Outcome::TimedOut } else { Outcome::ToolError };
                (ToolOutput::error(message.clone()), true, outcome, Some(message))
            }
        };
        let elapsed_ms = request.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            tool = name,
            principal = %context.caller.principal,
            session = context.caller.session.as_deref().unwrap_or("-"),
            request_id = context.request_id.as_deref().unwrap_or("-"),
            transport = ?context.caller.transport,
            is_error = output.is_error,
            elapsed_ms,
            "tool call"
        );
        self.finish(request, allowed, outcome, detail).await?;
        Ok(output)
    }

    /// Indexes of the toolboxes whose resources and prompts the caller may use: those
    /// with at least one tool the caller may call (a toolbox without tools is visible to
    /// every caller).
    fn usable_toolboxes(&self, context: &CallContext) -> Vec<usize> {
        (0..self.toolboxes.len())
            .filter(|&i| {
                let names = &self.toolbox_tools[i];
                names.is_empty() || names.iter().any(|n| self.guard.check_tool(&context.caller, n).is_ok())
            })
            .collect()
    }

    /// Concrete resources the caller may see.
    ///
    /// # Errors
    /// [`CallError::Refused`].
    pub async fn list_resources(&self, context: &CallContext) -> Result<Vec<ResourceSpec>, CallError> {
        self.listing(context, "resources/list").await?;
        Ok(self.usable_toolboxes(context).into_iter().flat_map(|i| self.toolboxes[i].resources()).collect())
    }

    /// Resource templates the caller may see.
    ///
    /// # Errors
    /// [`CallError::Refused`].
    pub async fn list_resource_templates(&self, context: &CallContext) -> Result<Vec<ResourceTemplateSpec>, CallError> {
        self.listing(context, "resources/templates/list").await?;
        Ok(self.usable_toolboxes(context).into_iter().flat_map(|i| self.toolboxes[i].resource_templates()).collect())
    }

    /// Reads a resource from the first usable toolbox that serves `uri`.
    ///
    /// # Errors
    /// [`CallError::ResourceNotFound`], [`CallError::InvalidParams`], [`CallError::Refused`],
    /// [`CallError::Internal`].
    pub async fn read_resource(&self, uri: &str, context: &CallContext) -> Result<Vec<ResourceContents>, CallError> {
        let request = self.request(context, "resources/read", Some(uri), Value::Null);
        if let Err(refusal) = self.guard.admit(&context.caller, "resources/read", Some(uri)).await {
            return self.fail(request, true, refusal.into(), None).await;
        }
        let tool_context = context.clone().with_guard(self.guard.clone());
        for index in self.usable_toolboxes(context) {
            let read = AssertUnwindSafe(self.toolboxes[index].read_resource(uri, &tool_context)).catch_unwind().await;
            match read {
                Ok(Ok(Some(contents))) => {
                    self.finish(request, true, Outcome::Ok, None).await?;
                    return Ok(contents);
                }
                Ok(Ok(None)) => continue,
                Ok(Err(error)) => {
                    let error = protocol_error(error, || CallError::ResourceNotFound(uri.into()));
                    return self.fail(request, true, error, None).await;
                }
                Err(_panic) => {
                    tracing::error!(uri, "resource read panicked");
                    return self.fail(request, true, CallError::Internal, Some("panicked".into())).await;
                }
            }
        }
        self.fail(request, true, CallError::ResourceNotFound(uri.into()), None).await
    }

    /// Prompts the caller may see, in registration order.
    ///
    /// # Errors
    /// [`CallError::Refused`].
    pub async fn list_prompts(&self, context: &CallContext) -> Result<Vec<PromptSpec>, CallError> {
        self.listing(context, "prompts/list").await?;
        let usable = self.usable_toolboxes(context);
        Ok(self
            .prompt_order
            .iter()
            .filter_map(|name| self.prompts.get(name))
            .filter(|(_, index)| usable.contains(index))
            .map(|(spec, _)| spec.clone())
            .collect())
    }

    /// Renders a prompt.
    ///
    /// # Errors
    /// [`CallError::UnknownPrompt`], [`CallError::InvalidParams`], [`CallError::Refused`],
    /// [`CallError::Internal`].
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<PromptOutput, CallError> {
        let request = self.request(context, "prompts/get", Some(name), Value::Object(arguments.clone()));
        let usable = self.usable_toolboxes(context);
        let Some((spec, index)) = self.prompts.get(name).filter(|(_, index)| usable.contains(index)) else {
            return self.fail(request, true, CallError::UnknownPrompt(name.into()), None).await;
        };
        if let Err(refusal) = self.guard.admit(&context.caller, "prompts/get", Some(name)).await {
            return self.fail(request, true, refusal.into(), None).await;
        }
        if let Some(missing) = spec.arguments.iter().find(|a| a.required && !arguments.contains_key(&a.name)) {
            let error = CallError::InvalidParams(format!("prompt '{name}' requires argument '{}'", missing.name));
            return self.fail(request, true, error, None).await;
        }
        let tool_context = context.clone().with_guard(self.guard.clone());
        match AssertUnwindSafe(self.toolboxes[*index].get_prompt(name, arguments, &tool_context)).catch_unwind().await {
            Ok(Ok(output)) => {
                self.finish(request, true, Outcome::Ok, None).await?;
                Ok(output)
            }
            Ok(Err(error)) => {
                let error = protocol_error(error, || CallError::UnknownPrompt(name.into()));
                self.fail(request, true, error, None).await
            }
            Err(_panic) => {
                tracing::error!(prompt = name, "prompt panicked");
                self.fail(request, true, CallError::Internal, Some("panicked".into())).await
            }
        }
    }

    /// Tells every toolbox that `session` ended (blocking: toolboxes may delete files).
    pub fn end_session(&self, session: &str) {
        for toolbox in &self.toolboxes {
            toolbox.session_closed(session);
        }
    }

    /// Every toolbox's backing services, for `/readyz`.
    pub async fn readiness(&self) -> Vec<crate::ServiceStatus> {
        let checks = self.toolboxes.iter().map(|toolbox| toolbox.readiness());
        futures::future::join_all(checks).await.into_iter().flatten().collect()
    }

    /// Completion values from the usable toolboxes, at most 100 (MCP "completion/complete").
    pub fn complete(
        &self,
        reference: &CompletionRef,
        argument: &str,
        value: &str,
        context: &CallContext,
    ) -> Vec<String> {
        let mut values: Vec<String> = self
            .usable_toolboxes(context)
            .into_iter()
            .flat_map(|i| self.toolboxes[i].complete(reference, argument, value))
            .collect();
        values.truncate(100);
        values
    }
}

fn protocol_error(error: ToolError, not_found: impl FnOnce() -> CallError) -> CallError {
    match error {
        ToolError::NotFound(_) => not_found(),
        ToolError::InvalidArguments(message) | ToolError::Failed(message) => CallError::InvalidParams(message),
        ToolError::Denied(denied) => CallError::InvalidParams(denied.to_string()),
        ToolError::Cancelled => CallError::Cancelled,
        ToolError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            CallError::Internal
        }
    }
}

#[cfg(test)]
mod tests;
