//! [`Toolbox`] for [`UpstreamToolbox`]: each request forwarded to the caller's upstream
//! session, with what comes back relayed.

use tracing::Instrument;

use super::*;

#[async_trait]
impl Toolbox for UpstreamToolbox {
    #[expect(clippy::misnamed_getters, reason = "the toolbox's name is `upstream:NAME`, not the upstream's NAME")]
    fn name(&self) -> &str {
        &self.inner.toolbox_name
    }

    async fn tools(&self) -> Vec<ToolSpec> {
        let inner = &self.inner;
        // The first catalog: an eager upstream is waited for; a lazy one whose tools are
        // pinned serves them without running until its first call. Later collections
        // serve what is there.
        if !inner.first_listed.swap(true, Ordering::AcqRel) {
            match inner.config.start {
                Start::Eager => {
                    let ready = inner.ready.notified();
                    inner.ensure_started();
                    if inner.state().phase != Phase::Ready {
                        let _ = tokio::time::timeout(CONNECT_TIMEOUT, ready).await;
                    }
                }
                Start::Lazy if !inner.started.load(Ordering::Acquire) => {
                    if let Some(view) = inner.pinned_view().await {
                        inner.view.store(Arc::new(view));
                        inner.on_demand.store(true, Ordering::Release);
                    }
                }
                Start::Lazy => {}
            }
        }
        inner.view.load().tools.clone()
    }

    async fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let inner = &self.inner;
        let Some(upstream_name) = inner.view.load().tool_names.get(tool).cloned() else {
            return Err(ToolError::NotFound(format!("tool '{tool}'")));
        };
        let started = Instant::now();
        // The call to the upstream (its session started first if need be): the current
        // span then, whose `traceparent` the client sends it (`rampart_mcp::trace`).
        let span = tracing::info_span!(
            target: rampart_core::TRACE_TARGET,
            "upstream",
            otel.name = %format_args!("tools/call {upstream_name}"),
            otel.kind = "client",
            mcp.method.name = "tools/call",
            gen_ai.tool.name = upstream_name.as_str(),
            rampart.upstream = inner.name.as_str(),
        );
        let conn = match inner.connection(context).instrument(span.clone()).await {
            Ok(conn) => conn,
            Err(error) => {
                inner.record(started, true);
                return Err(error);
            }
        };
        let _in_flight = conn.events.enter(context);
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let progress = context.progress_token().map(|_| progress_tx);
        let call =
            conn.client.call_tool_with(&upstream_name, arguments, progress, &context.cancellation).instrument(span);
        let call = async {
            match inner.config.timeout_secs {
                Some(secs) => tokio::time::timeout(Duration::from_secs(secs), call).await.map_err(|_| secs),
                None => Ok(call.await),
            }
        };
        tokio::pin!(call);
        let result = loop {
            tokio::select! {
                biased;
                Some(params) = progress_rx.recv() => relay_progress(context, &params).await,
                result = &mut call => break result,
            }
        };
        // Progress the upstream sent just before its result: the client waited for it
        // (`McpClient::call_tool_with`), and it is in the channel; relay it before the result.
        while let Ok(params) = progress_rx.try_recv() {
            relay_progress(context, &params).await;
        }
        let result = match result {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => {
                conn.check(&error);
                inner.record(started, !matches!(error, ClientError::Cancelled));
                return Err(upstream_error(&inner.name, &error));
            }
            Err(secs) => {
                inner.record(started, true);
                return Err(ToolError::Failed(format!("upstream '{}' did not answer within {secs}s", inner.name)));
            }
        };
        let output = output_from(&result).map_err(|error| {
            ToolError::Failed(format!("upstream '{}' sent a result Rampart cannot read: {error}", inner.name))
        });
        inner.record(started, output.as_ref().map_or(true, |output| output.is_error));
        output
    }

    async fn resources(&self) -> Vec<ResourceSpec> {
        self.inner.view.load().resources.clone()
    }

    async fn resource_templates(&self) -> Vec<ResourceTemplateSpec> {
        self.inner.view.load().templates.clone()
    }

    async fn read_resource(
        &self,
        uri: &str,
        context: &CallContext,
    ) -> Result<Option<Vec<ResourceContents>>, ToolError> {
        let result = self.inner.request(context, "resources/read", json!({ "uri": uri })).await?;
        let contents = serde_json::from_value(result["contents"].clone()).map_err(|error| {
            ToolError::Failed(format!("upstream '{}' sent contents Rampart cannot read: {error}", self.inner.name))
        })?;
        Ok(Some(contents))
    }

    async fn prompts(&self) -> Vec<PromptSpec> {
        self.inner.view.load().prompts.clone()
    }

    async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<PromptOutput, ToolError> {
        let Some(upstream_name) = self.inner.view.load().prompt_names.get(name).cloned() else {
            return Err(ToolError::NotFound(format!("prompt '{name}'")));
        };
        let params = json!({ "name": upstream_name, "arguments": arguments });
        let result = self.inner.request(context, "prompts/get", params).await?;
        serde_json::from_value(result).map_err(|error| {
            ToolError::Failed(format!("upstream '{}' sent a prompt Rampart cannot read: {error}", self.inner.name))
        })
    }

    async fn complete(
        &self,
        reference: &CompletionRef,
        argument: &str,
        value: &str,
        context: &CallContext,
    ) -> Vec<String> {
        let reference = match reference {
            CompletionRef::Prompt(name) => match self.inner.view.load().prompt_names.get(name) {
                Some(upstream_name) => json!({ "type": "ref/prompt", "name": upstream_name }),
                None => return Vec::new(),
            },
            CompletionRef::ResourceTemplate(uri) => json!({ "type": "ref/resource", "uri": uri }),
        };
        let params = json!({ "ref": reference, "argument": { "name": argument, "value": value } });
        match self.inner.request(context, "completion/complete", params).await {
            Ok(result) => result["completion"]["values"]
                .as_array()
                .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            Err(error) => {
                tracing::debug!(upstream = %self.inner.name, %error, "completion failed");
                Vec::new()
            }
        }
    }

    async fn subscribe(&self, uri: &str, context: &CallContext) -> Result<(), ToolError> {
        let inner = &self.inner;
        let conn = inner.connection(context).await?;
        let session = context.caller.session.clone().unwrap_or_default();
        let first = {
            let mut subscriptions = conn.events.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let subscribers = subscriptions.entry(uri.to_owned()).or_default();
            subscribers.retain(|(existing, _)| *existing != session);
            subscribers.push((session, context.peer()));
            subscribers.len() == 1
        };
        if first {
            let _in_flight = conn.events.enter(context);
            conn.client
                .request("resources/subscribe", json!({ "uri": uri }))
                .await
                .map_err(|error| upstream_error(&inner.name, &error))?;
        }
        Ok(())
    }

    async fn unsubscribe(&self, uri: &str, context: &CallContext) {
        let inner = &self.inner;
        let Ok(conn) = inner.connection(context).await else { return };
        let session = context.caller.session.clone().unwrap_or_default();
        let last = {
            let mut subscriptions = conn.events.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(subscribers) = subscriptions.get_mut(uri) else { return };
            subscribers.retain(|(existing, _)| *existing != session);
            let last = subscribers.is_empty();
            if last {
                subscriptions.remove(uri);
            }
            last
        };
        if last && let Err(error) = conn.client.request("resources/unsubscribe", json!({ "uri": uri })).await {
            tracing::debug!(upstream = %inner.name, %error, "upstream unsubscribe failed");
        }
    }

    async fn readiness(&self) -> Vec<ServiceStatus> {
        let status = self.inner.status(0);
        // Not started yet is not down: it starts on its first call.
        let ok = matches!(status.state, Phase::Ready | Phase::Idle);
        let detail = match (&status.state, &status.last_error) {
            (Phase::Ready, _) => format!("{} tools", status.tools),
            (Phase::Idle, _) => format!("{} pinned tools; starts on its first call", status.tools),
            (phase, Some(error)) => format!("{phase} since {}: {error}", status.since),
            (phase, None) => format!("{phase} since {}", status.since),
        };
        vec![ServiceStatus { name: self.inner.toolbox_name.clone(), ok, detail: Some(detail) }]
    }

    fn session_closed(&self, session: &str) {
        let inner = &self.inner;
        let mut conns: Vec<Arc<Conn>> = inner.primary.load_full().into_iter().collect();
        // A blocking thread (the trait's contract): waiting for the lock is fine, and
        // skipping it when busy would keep the ended session's subscriptions.
        conns.extend(inner.sessions.blocking_lock().values().cloned());
        for conn in conns {
            let mut subscriptions = conn.events.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for subscribers in subscriptions.values_mut() {
                subscribers.retain(|(existing, _)| existing != session);
            }
            subscriptions.retain(|_, subscribers| !subscribers.is_empty());
        }
    }

    fn watch(&self, changes: CatalogChanges) {
        *self.inner.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(changes);
        if !self.inner.on_demand.load(Ordering::Acquire) {
            self.inner.ensure_started();
        }
    }
}

/// Sends the caller a progress notification the upstream sent (params as JSON) under the
/// caller's own progress token.
async fn relay_progress(context: &CallContext, params: &Value) {
    let Some(progress) = params["progress"].as_f64() else { return };
    let message = params["message"].as_str().map(str::to_owned);
    context.progress(progress, params["total"].as_f64(), message).await;
}

/// A `CallToolResult` (JSON) as a [`ToolOutput`].
fn output_from(result: &Value) -> Result<ToolOutput, serde_json::Error> {
    let content: Vec<Content> = match result.get("content") {
        Some(content) => serde_json::from_value(content.clone())?,
        None => Vec::new(),
    };
    Ok(ToolOutput {
        content,
        structured_content: result.get("structuredContent").filter(|v| !v.is_null()).cloned(),
        is_error: result["isError"].as_bool().unwrap_or(false),
    })
}
