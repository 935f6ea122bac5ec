//! The one call pipeline. Every MCP request that touches tools, resources, prompts or
//! completions, from every transport and for every toolbox, goes through [`Pipeline`];
//! this is where authorization, admission (audit health, rate limits) and audit apply, so
//! that no tool can forget them.
//!
//! A tool call: look up the tool in the current [`Catalog`] and ask the [`Guard`] whether
//! the caller may use it (an unknown tool and a forbidden one get the same answer, so
//! nothing leaks) → admit → run it under the client's cancellation and a panic guard, with
//! the guard in its [`CallContext`] for scope checks → turn a [`ToolError`] into an
//! `isError` result → record → log one line. With audit failing closed, a result that
//! cannot be recorded is withheld. Resources, prompts and completions follow the same
//! steps with their own grants (`resources`, `prompts` in a role).

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use arc_swap::ArcSwap;
use futures::FutureExt;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tracing::{Instrument, field::Empty};

use crate::{
    CallContext, CallRecord, Caller, Catalog, CatalogChanges, CompletionRef, Decision, DuplicateName, Guard, Outcome,
    PromptOutput, PromptSpec, Refusal, Request, ResourceContents, ResourceSpec, ResourceTemplateSpec, TaskSupport,
    ToolError, ToolOutput, ToolSpec, Toolbox,
};

/// A request the pipeline refuses as a protocol error rather than a tool result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No tool of that name is visible to the caller: it does not exist, or no role of
    /// the caller grants it (the same answer for both). MCP: JSON-RPC -32602.
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    /// No prompt of that name is visible to the caller (the same answer for a missing
    /// and a forbidden one).
    #[error("unknown prompt: {0}")]
    UnknownPrompt(String),
    /// No resource at that URI is visible to the caller (MCP: -32002; the same answer
    /// for a missing and a forbidden one).
    #[error("resource not found: {0}")]
    ResourceNotFound(String),
    /// No task of that id belongs to the caller: it never existed, has expired, or is
    /// another principal's (the same answer for all three). Tasks extension (SEP-2663):
    /// -32602.
    #[error("unknown task: {0}")]
    UnknownTask(String),
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

/// Collects toolboxes for a guard, then builds a [`Pipeline`].
pub struct PipelineBuilder {
    toolboxes: Vec<Arc<dyn Toolbox>>,
    guard: Arc<dyn Guard>,
}

impl PipelineBuilder {
    /// Adds a toolbox.
    pub fn toolbox(mut self, toolbox: Arc<dyn Toolbox>) -> Self {
        self.toolboxes.push(toolbox);
        self
    }

    /// Collects the toolboxes' catalog and builds the pipeline.
    ///
    /// # Errors
    /// [`DuplicateName`] when two toolboxes declare the same tool or prompt.
    pub async fn build(self) -> Result<Arc<Pipeline>, DuplicateName> {
        let catalog = Catalog::collect(self.toolboxes).await?;
        let pipeline = Arc::new(Pipeline {
            guard: self.guard,
            catalog: ArcSwap::from_pointee(Catalog::empty()),
            generation: watch::Sender::new(0),
            updating: tokio::sync::Mutex::new(()),
            in_flight: AtomicUsize::new(0),
        });
        pipeline.update_catalog().await.install(catalog);
        Ok(pipeline)
    }
}

/// The one path from a request to a toolbox. Share it as `Arc<Pipeline>`.
pub struct Pipeline {
    guard: Arc<dyn Guard>,
    catalog: ArcSwap<Catalog>,
    /// Bumped whenever what a caller may see can have changed (a new catalog, a new
    /// policy); sessions watch it to send `list_changed`.
    generation: watch::Sender<u64>,
    /// One catalog update at a time (see [`CatalogUpdate`]).
    updating: tokio::sync::Mutex<()>,
    in_flight: AtomicUsize,
}

/// One update of a pipeline's catalog in progress ([`Pipeline::update_catalog`]).
pub struct CatalogUpdate<'a> {
    pipeline: &'a Arc<Pipeline>,
    _one: tokio::sync::MutexGuard<'a, ()>,
}

impl CatalogUpdate<'_> {
    /// Swaps in `catalog` (from [`Catalog::collect`], e.g. with a reloaded configuration's
    /// toolboxes): requests that started keep the catalog they started with, the next ones
    /// see the new one, and sessions are told. Toolboxes new to the pipeline are handed
    /// their [`CatalogChanges`] (a toolbox must not call [`CatalogChanges::changed`] from
    /// inside its own `tools()`: the update in progress waits for that).
    pub fn install(self, catalog: Catalog) {
        let pipeline = self.pipeline;
        let old = pipeline.catalog.load_full();
        for toolbox in &catalog.toolboxes {
            if !old.toolboxes.iter().any(|known| Arc::ptr_eq(known, toolbox)) {
                toolbox.watch(CatalogChanges { pipeline: Arc::downgrade(pipeline) });
            }
        }
        pipeline.catalog.store(Arc::new(catalog));
        pipeline.visibility_changed();
    }
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
        f.debug_struct("Pipeline").field("catalog", &self.catalog.load()).finish_non_exhaustive()
    }
}

/// One request's bookkeeping: what to put in its audit record.
struct Pending<'a> {
    context: &'a CallContext,
    method: &'static str,
    target: Option<String>,
    toolbox: Option<String>,
    arguments: Value,
    started: Instant,
    /// The request's span, which gets its decision and outcome (disabled unless spans
    /// are exported; `Span::none()` for requests that make none).
    span: tracing::Span,
}

impl Pipeline {
    /// Starts a builder; every pipeline has a guard (there is no default that allows
    /// everything).
    pub fn builder(guard: Arc<dyn Guard>) -> PipelineBuilder {
        PipelineBuilder { toolboxes: Vec::new(), guard }
    }

    /// The security hooks every request goes through.
    pub fn guard(&self) -> &Arc<dyn Guard> {
        &self.guard
    }

    /// Tool calls running now; graceful shutdown waits for this to reach zero.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Names of the toolboxes, in registration order.
    pub fn toolbox_names(&self) -> Vec<String> {
        self.catalog.load().toolbox_names()
    }

    /// Every tool, whoever asks (for the banner and `system_about`; never for clients).
    pub fn all_tools(&self) -> Vec<ToolSpec> {
        self.catalog.load().tools().cloned().collect()
    }

    /// A receiver that changes whenever what a caller may see may have changed (the
    /// catalog was swapped, or [`Self::visibility_changed`]): sessions compare what they
    /// see then with what they saw, and send `notifications/*/list_changed`.
    pub fn watch_catalog(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The generation [`Pipeline::watch_catalog`] announces: it changes whenever what a
    /// caller may see may have changed, so a cache of catalog-derived data keyed by it is
    /// never stale.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Whether `caller` may see (and so call) tool `name`, without recording anything.
    pub fn may_see_tool(&self, caller: &Caller, name: &str) -> bool {
        self.allows(caller, &Request::tool(name))
    }

    /// Tells sessions that visibility may have changed without a new catalog (a new
    /// policy).
    pub fn visibility_changed(&self) {
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// Collects every current toolbox's tools, resources and prompts again and swaps the
    /// catalog ([`CatalogChanges::changed`] calls this).
    ///
    /// # Errors
    /// [`DuplicateName`]; the old catalog stays.
    pub async fn refresh(self: &Arc<Self>) -> Result<(), DuplicateName> {
        let update = self.update_catalog().await;
        let toolboxes = self.catalog.load().toolboxes.clone();
        update.install(Catalog::collect(toolboxes).await?);
        Ok(())
    }

    /// Starts replacing the catalog: until the returned [`CatalogUpdate`] installs a new
    /// one (or is dropped), no other update runs, so a toolbox's change and a reload
    /// cannot undo each other. Collect the new catalog while holding it.
    pub async fn update_catalog(self: &Arc<Self>) -> CatalogUpdate<'_> {
        CatalogUpdate { pipeline: self, _one: self.updating.lock().await }
    }

    fn pending<'a>(
        &self,
        context: &'a CallContext,
        method: &'static str,
        target: Option<&str>,
        arguments: Value,
    ) -> Pending<'a> {
        Pending {
            context,
            method,
            target: target.map(str::to_owned),
            toolbox: None,
            arguments,
            started: Instant::now(),
            span: tracing::Span::none(),
        }
    }

    /// Records `pending` with `outcome`; a failed record becomes the request's error.
    async fn finish(
        &self,
        pending: Pending<'_>,
        decision: Decision,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<(), CallError> {
        let duration_ms = pending.started.elapsed().as_secs_f64() * 1000.0;
        if !pending.span.is_disabled() {
            pending.span.record("rampart.decision", decision.as_str());
            pending.span.record("rampart.outcome", outcome.as_str());
            if matches!(outcome, Outcome::Error | Outcome::TimedOut) {
                pending.span.record("otel.status_code", "ERROR");
            }
        }
        let record = CallRecord {
            caller: pending.context.caller.clone(),
            request_id: pending.context.request_id.clone(),
            task: pending.context.task.clone(),
            trace_id: pending.context.trace_id.clone(),
            method: pending.method.into(),
            target: pending.target,
            toolbox: pending.toolbox,
            arguments: pending.arguments,
            decision,
            outcome,
            detail,
            duration_ms,
        };
        self.guard.record(record).await.map_err(CallError::Refused)
    }

    /// Records a refused or failed request and returns its error.
    async fn fail<T>(
        &self,
        pending: Pending<'_>,
        decision: Decision,
        error: CallError,
        detail: Option<String>,
    ) -> Result<T, CallError> {
        let outcome = if decision == Decision::Deny { Outcome::Denied } else { error.outcome() };
        let detail = detail.or_else(|| Some(error.to_string()));
        if let Err(audit) = self.finish(pending, decision, outcome, detail).await {
            tracing::warn!(%audit, "refused request not recorded");
        }
        Err(error)
    }

    /// Admits `pending`, or records its refusal.
    async fn admit<'a>(&self, pending: Pending<'a>) -> Result<(Pending<'a>, crate::Admission), CallError> {
        let target = pending.target.clone();
        match self.guard.admit(&pending.context.caller, pending.method, target.as_deref()).await {
            Ok(admission) => Ok((pending, admission)),
            Err(refusal) => self.fail(pending, Decision::Allow, refusal.into(), None).await,
        }
    }

    /// Admits a listing and records it.
    async fn listing(&self, context: &CallContext, method: &'static str) -> Result<(), CallError> {
        let (pending, _admission) = self.admit(self.pending(context, method, None, Value::Null)).await?;
        self.finish(pending, Decision::Allow, Outcome::Ok, None).await
    }

    fn allows(&self, caller: &Caller, request: &Request<'_>) -> bool {
        self.guard.authorize(caller, request).is_ok()
    }

    /// The tools the caller of `context` may see, in registration order.
    ///
    /// # Errors
    /// [`CallError::Refused`].
    pub async fn list_tools(&self, context: &CallContext) -> Result<Vec<ToolSpec>, CallError> {
        self.listing(context, "tools/list").await?;
        Ok(self.visible_tools(&context.caller))
    }

    /// The tools `caller` may see, without recording anything: what a session compares
    /// to decide whether to send `notifications/tools/list_changed`.
    pub fn visible_tools(&self, caller: &Caller) -> Vec<ToolSpec> {
        let catalog = self.catalog.load();
        catalog.tools().filter(|spec| self.allows(caller, &Request::tool(spec.name.as_str()))).cloned().collect()
    }

    /// The spec of tool `name` when `caller` may see it: for validating a request's shape
    /// against the tool's schema before the call itself is authorized and recorded.
    pub fn tool_spec(&self, caller: &Caller, name: &str) -> Option<ToolSpec> {
        if !self.allows(caller, &Request::tool(name)) {
            return None;
        }
        self.catalog.load().tool(name).map(|entry| entry.spec.clone())
    }

    /// Whether a call of tool `name` by `caller` may run as a task ([`TaskSupport`]);
    /// `Forbidden` for a tool the caller cannot see. Without copying the spec: asked on
    /// every `tools/call`.
    pub fn task_support(&self, caller: &Caller, name: &str) -> TaskSupport {
        if !self.allows(caller, &Request::tool(name)) {
            return TaskSupport::Forbidden;
        }
        self.catalog.load().tool(name).map_or(TaskSupport::Forbidden, |entry| entry.spec.task_support)
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
        self.call_tool_recorded(name, arguments, context).await.map(|(output, _)| output)
    }

    /// [`Pipeline::call_tool`], with the outcome the audit record got: a task tells a
    /// tool's own error ([`Outcome::ToolError`], the task completes with `isError`) from
    /// a server fault ([`Outcome::Error`], the task fails).
    ///
    /// # Errors
    /// As [`Pipeline::call_tool`].
    pub async fn call_tool_recorded(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        context: &CallContext,
    ) -> Result<(ToolOutput, Outcome), CallError> {
        // A child of the transport's span for the request (the current one). Disabled, and
        // free, unless spans are exported (`TRACE_TARGET`); no arguments in it, and the
        // tool's name once it is known to be one (not whatever a caller sent).
        let span = tracing::info_span!(
            target: crate::TRACE_TARGET,
            "pipeline",
            gen_ai.tool.name = Empty,
            rampart.principal = context.caller.principal.id.as_str(),
            rampart.toolbox = Empty,
            rampart.decision = Empty,
            rampart.outcome = Empty,
            otel.status_code = Empty,
        );
        self.call_tool_in_span(name, arguments, context, span.clone()).instrument(span).await
    }

    async fn call_tool_in_span(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        context: &CallContext,
        span: tracing::Span,
    ) -> Result<(ToolOutput, Outcome), CallError> {
        let arguments = arguments.unwrap_or_default();
        let mut pending = self.pending(context, "tools/call", Some(name), Value::Object(arguments.clone()));
        pending.span = span;
        let toolbox = {
            let catalog = self.catalog.load();
            catalog.tool(name).map(|entry| catalog.toolboxes[entry.toolbox].clone())
        };
        let Some(toolbox) = toolbox else {
            let error = CallError::UnknownTool(name.to_owned());
            return self.fail(pending, Decision::Allow, error, Some("no such tool".into())).await;
        };
        pending.toolbox = Some(toolbox.name().to_owned());
        if !pending.span.is_disabled() {
            pending.span.record("gen_ai.tool.name", name).record("rampart.toolbox", toolbox.name());
        }
        if let Err(denied) = self.guard.authorize(&context.caller, &Request::tool(name)) {
            let error = CallError::UnknownTool(name.to_owned());
            return self.fail(pending, Decision::Deny, error, Some(denied.to_string())).await;
        }
        let admission = match self.guard.admit(&context.caller, "tools/call", Some(name)).await {
            Ok(admission) => admission,
            Err(refusal @ Refusal::RateLimited { .. }) => {
                // A tool error the model can read and act on (wait, then retry).
                let message = refusal.to_string();
                self.finish(pending, Decision::Allow, Outcome::RateLimited, Some(message.clone())).await?;
                return Ok((ToolOutput::error(message), Outcome::RateLimited));
            }
            Err(refusal) => return self.fail(pending, Decision::Allow, refusal.into(), None).await,
        };
        let _in_flight = InFlightGuard::enter(&self.in_flight);
        let tool_context = context.clone().with_guard(self.guard.clone());
        // The tool's own run, without the pipeline's checks and records around it.
        let tool_span = tracing::info_span!(
            target: crate::TRACE_TARGET,
            "tool",
            otel.name = %format_args!("execute_tool {name}"),
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = name,
            rampart.toolbox = toolbox.name(),
        );
        let call = toolbox.call_tool(name, arguments, &tool_context).instrument(tool_span);
        let call = AssertUnwindSafe(call).catch_unwind();
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
        let (output, decision, outcome, detail) = match result {
            Ok(output) => {
                let outcome = if output.is_error { Outcome::ToolError } else { Outcome::Ok };
                (output, Decision::Allow, outcome, None)
            }
            Err(ToolError::Cancelled) => {
                tracing::info!(tool = name, principal = %context.caller.principal, "tool call cancelled");
                return self.fail(pending, Decision::Allow, CallError::Cancelled, None).await;
            }
            Err(ToolError::Internal(detail)) => {
                tracing::error!(tool = name, principal = %context.caller.principal, %detail, "tool call failed internally");
                let message = format!("tool '{name}' failed with an internal error; see the server log");
                (ToolOutput::error(message), Decision::Allow, Outcome::Error, Some(detail))
            }
            Err(ToolError::Denied(denied)) => {
                let message = denied.to_string();
                (ToolOutput::error(message.clone()), Decision::Deny, Outcome::Denied, Some(message))
            }
            Err(error) => {
                let message = error.to_string();
                let outcome = if timed_out { Outcome::TimedOut } else { Outcome::ToolError };
                (ToolOutput::error(message.clone()), Decision::Allow, outcome, Some(message))
            }
        };
        let elapsed_ms = pending.started.elapsed().as_secs_f64() * 1000.0;
        // At debug: the audit log is the record of every call; a text line per call at
        // info cost ~6% of a call's CPU under load (formatting, a write to stderr).
        tracing::debug!(
            tool = name,
            principal = %context.caller.principal,
            session = context.caller.session.as_deref().unwrap_or("-"),
            request_id = context.request_id.as_deref().unwrap_or("-"),
            transport = ?context.caller.transport,
            is_error = output.is_error,
            elapsed_ms,
            "tool call"
        );
        self.finish(pending, decision, outcome, detail).await?;
        Ok((output, outcome))
    }

    /// Admits a `tasks/get`, `tasks/update` or `tasks/cancel` request (the tasks
    /// extension, SEP-2663) from the caller of `context` about task `task`, which
    /// `owner` created (`None`: no such task, or it expired).
    ///
    /// A task is visible to its creator only: another principal's task is answered as
    /// unknown, like a task that never existed, and recorded as denied. Rate limits and
    /// audit health apply as to any request. `tasks/update` and `tasks/cancel` are
    /// recorded; `tasks/get` polls (one a second per task) are not: the call's own record,
    /// written when it ends, carries the task id.
    ///
    /// # Errors
    /// [`CallError::UnknownTask`], [`CallError::Refused`].
    pub async fn task_request(
        &self,
        context: &CallContext,
        method: &'static str,
        task: &str,
        owner: Option<&str>,
    ) -> Result<(), CallError> {
        let context = context.clone().with_task(task);
        let pending = self.pending(&context, method, None, Value::Null);
        match owner {
            None => return Err(CallError::UnknownTask(task.to_owned())),
            Some(owner) if owner != context.caller.principal.id => {
                tracing::warn!(principal = %context.caller.principal, method, "request for another principal's task refused");
                let detail = Some(format!("{method} for a task that belongs to another principal"));
                return self.fail(pending, Decision::Deny, CallError::UnknownTask(task.to_owned()), detail).await;
            }
            Some(_) => {}
        }
        let (pending, _admission) = self.admit(pending).await?;
        if method == "tasks/get" { Ok(()) } else { self.finish(pending, Decision::Allow, Outcome::Ok, None).await }
    }

    /// Concrete resources the caller may see (a `resources` grant matching the URI).
    ///
    /// # Errors
    /// [`CallError::Refused`].
    pub async fn list_resources(&self, context: &CallContext) -> Result<Vec<ResourceSpec>, CallError> {
        self.listing(context, "resources/list").await?;
        Ok(self.visible_resources(&context.caller))
    }

    /// The resources `caller` may see, without recording anything.
    pub fn visible_resources(&self, caller: &Caller) -> Vec<ResourceSpec> {
        let catalog = self.catalog.load();
        let visible = catalog.resources.iter().filter(|e| self.allows(caller, &Request::resource(e.spec.uri.as_str())));
        visible.map(|entry| entry.spec.clone()).collect()
    }

    /// Resource templates the caller may see (a `resources` grant matching the template
    /// as written, e.g. `test://template/**` for `test://template/{id}/data`).
    ///
    /// # Errors
    /// [`CallError::Refused`].
    pub async fn list_resource_templates(&self, context: &CallContext) -> Result<Vec<ResourceTemplateSpec>, CallError> {
        self.listing(context, "resources/templates/list").await?;
        let catalog = self.catalog.load();
        let caller = &context.caller;
        let visible =
            catalog.templates.iter().filter(|e| self.allows(caller, &Request::resource(e.spec.uri_template.as_str())));
        Ok(visible.map(|entry| entry.spec.clone()).collect())
    }

    /// Checks that `uri` is granted to the caller and served by some toolbox; the
    /// toolboxes that may serve it, in order.
    async fn find_resource<'a>(
        &self,
        pending: Pending<'a>,
        uri: &str,
    ) -> Result<(Pending<'a>, Vec<Arc<dyn Toolbox>>), CallError> {
        if let Err(denied) = self.guard.authorize(&pending.context.caller, &Request::resource(uri)) {
            let error = CallError::ResourceNotFound(uri.into());
            return self.fail(pending, Decision::Deny, error, Some(denied.to_string())).await;
        }
        let servers: Vec<Arc<dyn Toolbox>> = {
            let catalog = self.catalog.load();
            catalog.resource_servers(uri).into_iter().map(|i| catalog.toolboxes[i].clone()).collect()
        };
        if servers.is_empty() {
            return self.fail(pending, Decision::Allow, CallError::ResourceNotFound(uri.into()), None).await;
        }
        Ok((pending, servers))
    }

    /// Reads a resource from the toolbox that lists it, or the first whose template
    /// serves it.
    ///
    /// # Errors
    /// [`CallError::ResourceNotFound`] (missing or not granted), [`CallError::InvalidParams`],
    /// [`CallError::Refused`], [`CallError::Internal`].
    pub async fn read_resource(&self, uri: &str, context: &CallContext) -> Result<Vec<ResourceContents>, CallError> {
        let pending = self.pending(context, "resources/read", Some(uri), Value::Null);
        let (pending, servers) = self.find_resource(pending, uri).await?;
        let (pending, _admission) = self.admit(pending).await?;
        let tool_context = context.clone().with_guard(self.guard.clone());
        let mut pending = pending;
        for toolbox in servers {
            pending.toolbox = Some(toolbox.name().to_owned());
            match AssertUnwindSafe(toolbox.read_resource(uri, &tool_context)).catch_unwind().await {
                Ok(Ok(Some(contents))) => {
                    self.finish(pending, Decision::Allow, Outcome::Ok, None).await?;
                    return Ok(contents);
                }
                Ok(Ok(None)) => continue,
                Ok(Err(error)) => {
                    let error = protocol_error(error, || CallError::ResourceNotFound(uri.into()));
                    return self.fail(pending, Decision::Allow, error, None).await;
                }
                Err(_panic) => {
                    tracing::error!(uri, "resource read panicked");
                    return self.fail(pending, Decision::Allow, CallError::Internal, Some("panicked".into())).await;
                }
            }
        }
        self.fail(pending, Decision::Allow, CallError::ResourceNotFound(uri.into()), None).await
    }

    /// Subscribes the caller to updates of `uri` (`resources/subscribe`): granted and
    /// served like a read, without reading it, recorded as what it is.
    ///
    /// # Errors
    /// [`CallError::ResourceNotFound`] (missing or not granted), [`CallError::Refused`].
    pub async fn subscribe_resource(&self, uri: &str, context: &CallContext) -> Result<(), CallError> {
        let pending = self.pending(context, "resources/subscribe", Some(uri), Value::Null);
        let (mut pending, servers) = self.find_resource(pending, uri).await?;
        let Some(toolbox) = servers.into_iter().next() else {
            return self.fail(pending, Decision::Allow, CallError::ResourceNotFound(uri.into()), None).await;
        };
        pending.toolbox = Some(toolbox.name().to_owned());
        let (pending, _admission) = self.admit(pending).await?;
        let tool_context = context.clone().with_guard(self.guard.clone());
        match AssertUnwindSafe(toolbox.subscribe(uri, &tool_context)).catch_unwind().await {
            Ok(Ok(())) => self.finish(pending, Decision::Allow, Outcome::Ok, None).await,
            Ok(Err(error)) => {
                let error = protocol_error(error, || CallError::ResourceNotFound(uri.into()));
                self.fail(pending, Decision::Allow, error, None).await
            }
            Err(_panic) => {
                tracing::error!(uri, "resource subscription panicked");
                self.fail(pending, Decision::Allow, CallError::Internal, Some("panicked".into())).await
            }
        }
    }

    /// Ends the caller's subscription to `uri` (`resources/unsubscribe`); recorded.
    ///
    /// # Errors
    /// [`CallError::Refused`] when its record cannot be written under fail-closed audit.
    pub async fn unsubscribe_resource(&self, uri: &str, context: &CallContext) -> Result<(), CallError> {
        let pending = self.pending(context, "resources/unsubscribe", Some(uri), Value::Null);
        let servers: Vec<Arc<dyn Toolbox>> = {
            let catalog = self.catalog.load();
            catalog.resource_servers(uri).into_iter().map(|i| catalog.toolboxes[i].clone()).collect()
        };
        let tool_context = context.clone().with_guard(self.guard.clone());
        for toolbox in servers {
            if AssertUnwindSafe(toolbox.unsubscribe(uri, &tool_context)).catch_unwind().await.is_err() {
                tracing::error!(uri, "resource unsubscription panicked");
            }
        }
        self.finish(pending, Decision::Allow, Outcome::Ok, None).await
    }

    /// Prompts the caller may see (a `prompts` grant matching the name), in registration
    /// order.
    ///
    /// # Errors
    /// [`CallError::Refused`].
    pub async fn list_prompts(&self, context: &CallContext) -> Result<Vec<PromptSpec>, CallError> {
        self.listing(context, "prompts/list").await?;
        Ok(self.visible_prompts(&context.caller))
    }

    /// The prompts `caller` may see, without recording anything.
    pub fn visible_prompts(&self, caller: &Caller) -> Vec<PromptSpec> {
        let catalog = self.catalog.load();
        let visible = catalog.prompts.iter().filter(|e| self.allows(caller, &Request::prompt(e.spec.name.as_str())));
        visible.map(|entry| entry.spec.clone()).collect()
    }

    /// The toolbox serving prompt `name` and its spec, when the caller may use it.
    async fn find_prompt<'a>(
        &self,
        pending: Pending<'a>,
        name: &str,
    ) -> Result<(Pending<'a>, PromptSpec, Arc<dyn Toolbox>), CallError> {
        let found = {
            let catalog = self.catalog.load();
            catalog.prompt(name).map(|entry| (entry.spec.clone(), catalog.toolboxes[entry.toolbox].clone()))
        };
        let Some((spec, toolbox)) = found else {
            return self.fail(pending, Decision::Allow, CallError::UnknownPrompt(name.into()), None).await;
        };
        if let Err(denied) = self.guard.authorize(&pending.context.caller, &Request::prompt(name)) {
            let error = CallError::UnknownPrompt(name.into());
            return self.fail(pending, Decision::Deny, error, Some(denied.to_string())).await;
        }
        Ok((pending, spec, toolbox))
    }

    /// Renders a prompt.
    ///
    /// # Errors
    /// [`CallError::UnknownPrompt`] (missing or not granted), [`CallError::InvalidParams`],
    /// [`CallError::Refused`], [`CallError::Internal`].
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<PromptOutput, CallError> {
        let pending = self.pending(context, "prompts/get", Some(name), Value::Object(arguments.clone()));
        let (mut pending, spec, toolbox) = self.find_prompt(pending, name).await?;
        pending.toolbox = Some(toolbox.name().to_owned());
        let (pending, _admission) = self.admit(pending).await?;
        if let Some(missing) = spec.arguments.iter().find(|a| a.required && !arguments.contains_key(&a.name)) {
            let error = CallError::InvalidParams(format!("prompt '{name}' requires argument '{}'", missing.name));
            return self.fail(pending, Decision::Allow, error, None).await;
        }
        let tool_context = context.clone().with_guard(self.guard.clone());
        match AssertUnwindSafe(toolbox.get_prompt(name, arguments, &tool_context)).catch_unwind().await {
            Ok(Ok(output)) => {
                self.finish(pending, Decision::Allow, Outcome::Ok, None).await?;
                Ok(output)
            }
            Ok(Err(error)) => {
                let error = protocol_error(error, || CallError::UnknownPrompt(name.into()));
                self.fail(pending, Decision::Allow, error, None).await
            }
            Err(_panic) => {
                tracing::error!(prompt = name, "prompt panicked");
                self.fail(pending, Decision::Allow, CallError::Internal, Some("panicked".into())).await
            }
        }
    }

    /// Completion values for `argument` of a prompt or resource template (MCP
    /// `completion/complete`), at most 100: the prompt or template must be granted like
    /// using it, the request is admitted and recorded.
    ///
    /// # Errors
    /// [`CallError::UnknownPrompt`] / [`CallError::ResourceNotFound`] (missing or not
    /// granted), [`CallError::Refused`].
    pub async fn complete(
        &self,
        reference: &CompletionRef,
        argument: &str,
        value: &str,
        context: &CallContext,
    ) -> Result<Vec<String>, CallError> {
        let (target, arguments) = match reference {
            CompletionRef::Prompt(name) => {
                (name.as_str(), json!({ "ref": "prompt", "argument": argument, "value": value }))
            }
            CompletionRef::ResourceTemplate(uri) => {
                (uri.as_str(), json!({ "ref": "resource", "argument": argument, "value": value }))
            }
        };
        let pending = self.pending(context, "completion/complete", Some(target), arguments);
        let (pending, toolbox) = match reference {
            CompletionRef::Prompt(name) => {
                let (pending, _, toolbox) = self.find_prompt(pending, name).await?;
                (pending, toolbox)
            }
            CompletionRef::ResourceTemplate(uri) => self.find_template(pending, uri).await?,
        };
        let (pending, _admission) = self.admit(pending).await?;
        let tool_context = context.clone().with_guard(self.guard.clone());
        let completed = AssertUnwindSafe(toolbox.complete(reference, argument, value, &tool_context)).catch_unwind();
        match completed.await {
            Ok(mut values) => {
                values.truncate(100);
                self.finish(pending, Decision::Allow, Outcome::Ok, None).await?;
                Ok(values)
            }
            Err(_panic) => {
                tracing::error!(target, "completion panicked");
                self.fail(pending, Decision::Allow, CallError::Internal, Some("panicked".into())).await
            }
        }
    }

    /// The toolbox serving the resource template `uri_template`, when the caller may use
    /// it.
    async fn find_template<'a>(
        &self,
        pending: Pending<'a>,
        uri_template: &str,
    ) -> Result<(Pending<'a>, Arc<dyn Toolbox>), CallError> {
        let found = {
            let catalog = self.catalog.load();
            catalog.template(uri_template).map(|entry| catalog.toolboxes[entry.toolbox].clone())
        };
        let Some(toolbox) = found else {
            return self.fail(pending, Decision::Allow, CallError::ResourceNotFound(uri_template.into()), None).await;
        };
        if let Err(denied) = self.guard.authorize(&pending.context.caller, &Request::resource(uri_template)) {
            let error = CallError::ResourceNotFound(uri_template.into());
            return self.fail(pending, Decision::Deny, error, Some(denied.to_string())).await;
        }
        Ok((pending, toolbox))
    }

    /// Tells every toolbox that `session` ended (blocking: toolboxes may delete files).
    pub fn end_session(&self, session: &str) {
        for toolbox in &self.catalog.load().toolboxes {
            toolbox.session_closed(session);
        }
    }

    /// Every toolbox's backing services, for `/readyz`.
    pub async fn readiness(&self) -> Vec<crate::ServiceStatus> {
        let catalog = self.catalog.load_full();
        let checks = catalog.toolboxes.iter().map(|toolbox| toolbox.readiness());
        futures::future::join_all(checks).await.into_iter().flatten().collect()
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
