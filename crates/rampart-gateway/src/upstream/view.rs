//! What an upstream serves, as Rampart serves it: its lists fetched, filtered, renamed,
//! prefixed and checked against the pinned definitions.

use super::*;

/// What the upstream serves now, as Rampart serves it.
#[derive(Default)]
pub(super) struct View {
    pub(super) tools: Vec<ToolSpec>,
    /// Served tool name → upstream tool name.
    pub(super) tool_names: HashMap<String, String>,
    /// Pinned tools whose definition changed: hidden until approved.
    pub(super) hidden: Vec<ChangedTool>,
    pub(super) resources: Vec<ResourceSpec>,
    pub(super) templates: Vec<ResourceTemplateSpec>,
    pub(super) prompts: Vec<PromptSpec>,
    pub(super) prompt_names: HashMap<String, String>,
}

/// A pinned tool whose definition is not the pinned one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedTool {
    /// The upstream's tool name.
    pub tool: String,
    /// The name it is served under once approved.
    pub served_as: String,
    /// Unified diff, pinned → now.
    pub diff: String,
    #[serde(skip)]
    pub(super) pin: Pin,
}

impl Inner {
    /// Fetches the upstream's lists, applies filters, renames and pins, and installs the
    /// new view.
    pub(super) async fn refresh(&self) -> Result<(), String> {
        let Some(primary) = self.primary.load_full() else { return Err("not connected".into()) };
        let client = &primary.client;
        let capabilities = client.server_info()["capabilities"].clone();
        let has = |name: &str| capabilities.get(name).is_some_and(|c| !c.is_null());
        let fetch = |method: &'static str, key: &'static str, wanted: bool| async move {
            if wanted {
                client.list_all(method, key).await.map_err(|e| format!("{method}: {e}"))
            } else {
                Ok(Vec::new())
            }
        };
        let tools = fetch("tools/list", "tools", has("tools")).await?;
        let resources = fetch("resources/list", "resources", has("resources")).await.unwrap_or_default();
        let templates =
            fetch("resources/templates/list", "resourceTemplates", has("resources")).await.unwrap_or_default();
        let prompts = fetch("prompts/list", "prompts", has("prompts")).await?;
        let view = self.build_view(tools, &resources, &templates, &prompts).await;
        self.view.store(Arc::new(view));
        Ok(())
    }

    pub(super) async fn refresh_and_tell(self: &Arc<Self>) {
        if let Err(error) = self.refresh().await {
            tracing::warn!(upstream = %self.name, %error, "upstream lists not refreshed");
            return;
        }
        let changes = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(changes) = changes {
            changes.changed().await;
        }
    }

    pub(super) fn served_name(&self, upstream_name: &str) -> String {
        let base = self.config.tools.rename.get(upstream_name).map_or(upstream_name, String::as_str);
        format!("{}{base}", self.prefix)
    }

    /// The tools pinned for this upstream, as a view: what a lazy upstream serves
    /// before its first start. `None` when nothing is pinned (or pinning is off): then
    /// the upstream must run to say what it serves.
    pub(super) async fn pinned_view(&self) -> Option<View> {
        let pins = self.pins.as_ref()?.pins(&self.name).await.ok()?;
        if pins.is_empty() {
            return None;
        }
        let tools = pins.into_iter().map(|pin| pin.definition).collect();
        Some(self.build_view(tools, &[], &[], &[]).await)
    }

    pub(super) async fn build_view(
        &self,
        tools: Vec<Value>,
        resources: &[Value],
        templates: &[Value],
        prompts: &[Value],
    ) -> View {
        let mut view = View::default();
        let previous = self.view.load();
        let pins: Option<HashMap<String, Pin>> = match &self.pins {
            None => None,
            Some(store) => match store.pins(&self.name).await {
                Ok(pins) => Some(pins.into_iter().map(|pin| (pin.tool.clone(), pin)).collect()),
                Err(error) => {
                    // Fail closed: a tool is served only once its pin is saved.
                    tracing::error!(upstream = %self.name, %error, "pins unreadable; a tool is served once pinned");
                    let served: HashMap<String, Pin> = HashMap::new();
                    Some(served)
                }
            },
        };
        for tool in tools {
            let Some(upstream_name) = tool["name"].as_str().map(str::to_owned) else { continue };
            if !self.filter.serves(&upstream_name) {
                continue;
            }
            let served_as = self.served_name(&upstream_name);
            if let (Some(store), Some(pins)) = (&self.pins, &pins) {
                let fingerprint = pin::fingerprint(&tool);
                let current = Pin {
                    tool: upstream_name.clone(),
                    fingerprint: fingerprint.clone(),
                    definition: pin::pinned_part(&tool),
                    pinned_at_ms: jiff::Timestamp::now().as_millisecond(),
                };
                match pins.get(&upstream_name) {
                    None => {
                        if let Err(error) = store.save(&self.name, &current).await {
                            tracing::error!(upstream = %self.name, tool = upstream_name, %error, "tool not pinned; not served");
                            continue;
                        }
                    }
                    Some(pinned) if pinned.fingerprint == fingerprint => {}
                    Some(pinned) => {
                        let diff = pin::diff(&pinned.definition, &current.definition);
                        let known =
                            previous.hidden.iter().any(|c| c.tool == upstream_name && c.pin.fingerprint == fingerprint);
                        if !known {
                            tracing::warn!(upstream = %self.name, tool = upstream_name, "a pinned tool's definition changed: hidden until `rampart upstream approve {} {upstream_name}`\n{diff}", self.name);
                            store.changed(&self.name, &upstream_name, &diff).await;
                        }
                        view.hidden.push(ChangedTool { tool: upstream_name, served_as, diff, pin: current });
                        continue;
                    }
                }
            }
            let Some(spec) = self.tool_spec(&served_as, &upstream_name, &tool) else { continue };
            view.tool_names.insert(served_as, upstream_name);
            view.tools.push(spec);
        }
        for resource in resources {
            let (Some(uri), Some(name)) = (resource["uri"].as_str(), resource["name"].as_str()) else { continue };
            view.resources.push(ResourceSpec {
                uri: uri.to_owned(),
                name: format!("{}{name}", self.prefix),
                title: text(resource, "title"),
                description: text(resource, "description"),
                mime_type: text(resource, "mimeType"),
            });
        }
        for template in templates {
            let (Some(uri_template), Some(name)) = (template["uriTemplate"].as_str(), template["name"].as_str()) else {
                continue;
            };
            view.templates.push(ResourceTemplateSpec {
                uri_template: uri_template.to_owned(),
                name: format!("{}{name}", self.prefix),
                description: text(template, "description"),
                mime_type: text(template, "mimeType"),
            });
        }
        for prompt in prompts {
            let Some(name) = prompt["name"].as_str() else { continue };
            let served_as = format!("{}{name}", self.prefix);
            let arguments = prompt["arguments"].as_array().map(Vec::as_slice).unwrap_or_default();
            view.prompts.push(PromptSpec {
                name: served_as.clone(),
                title: text(prompt, "title"),
                description: text(prompt, "description"),
                arguments: arguments
                    .iter()
                    .filter_map(|argument| {
                        Some(PromptArgument {
                            name: argument["name"].as_str()?.to_owned(),
                            description: text(argument, "description"),
                            required: argument["required"].as_bool().unwrap_or(false),
                        })
                    })
                    .collect(),
            });
            view.prompt_names.insert(served_as, name.to_owned());
        }
        view
    }

    pub(super) fn tool_spec(&self, served_as: &str, upstream_name: &str, tool: &Value) -> Option<ToolSpec> {
        let Some(Value::Object(input_schema)) = tool.get("inputSchema").cloned() else {
            tracing::warn!(upstream = %self.name, tool = upstream_name, "tool without an object inputSchema; not served");
            return None;
        };
        let description = match self.config.tools.descriptions.get(upstream_name) {
            Some(description) => description.clone(),
            None => text(tool, "description").unwrap_or_default(),
        };
        let annotations =
            tool.get("annotations").and_then(|a| serde_json::from_value::<ToolAnnotations>(a.clone()).ok());
        let mut spec = ToolSpec::with_schema(served_as, &description, input_schema)
            .annotations(annotations.unwrap_or_default())
            // An upstream server's tool may run for as long as that server takes.
            .task_support(TaskSupport::Optional);
        spec.title = text(tool, "title");
        spec.output_schema = tool.get("outputSchema").and_then(Value::as_object).cloned();
        Some(spec)
    }
}

pub(super) fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}
