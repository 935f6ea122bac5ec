//! The live catalog: every toolbox's tools, resources, resource templates and prompts,
//! collected into one immutable snapshot ([`Catalog`]) that the pipeline swaps atomically
//! when a toolbox reports a change ([`CatalogChanges`]) or a reload replaces toolboxes.
//! A request reads one snapshot from start to end; sessions are told (MCP
//! `notifications/*/list_changed`) when what they may see changed.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
};

use crate::{PromptSpec, ResourceSpec, ResourceTemplateSpec, ToolSpec, Toolbox};

/// Two toolboxes declared the same tool or prompt name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} '{name}' is declared by both toolbox '{first}' and toolbox '{second}'")]
pub struct DuplicateName {
    /// `tool` or `prompt`.
    pub kind: &'static str,
    /// The name both declare.
    pub name: String,
    /// The toolbox that declared it first.
    pub first: String,
    /// The toolbox that declared it again.
    pub second: String,
}

/// One tool and the toolbox (by position in [`Catalog::toolboxes`]) that serves it.
#[derive(Debug, Clone)]
pub(crate) struct Entry<S> {
    pub(crate) spec: S,
    pub(crate) toolbox: usize,
}

/// An immutable snapshot of everything the toolboxes serve, in registration order.
pub struct Catalog {
    pub(crate) toolboxes: Vec<Arc<dyn Toolbox>>,
    pub(crate) tools: Vec<Entry<ToolSpec>>,
    tool_index: HashMap<String, usize>,
    pub(crate) resources: Vec<Entry<ResourceSpec>>,
    pub(crate) templates: Vec<Entry<ResourceTemplateSpec>>,
    pub(crate) prompts: Vec<Entry<PromptSpec>>,
    prompt_index: HashMap<String, usize>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("toolboxes", &self.toolbox_names())
            .field("tools", &self.tools.len())
            .field("resources", &self.resources.len())
            .field("prompts", &self.prompts.len())
            .finish()
    }
}

impl Catalog {
    /// A catalog with no toolbox.
    pub(crate) fn empty() -> Self {
        Self {
            toolboxes: Vec::new(),
            tools: Vec::new(),
            tool_index: HashMap::new(),
            resources: Vec::new(),
            templates: Vec::new(),
            prompts: Vec::new(),
            prompt_index: HashMap::new(),
        }
    }

    /// Asks every toolbox for what it serves now.
    ///
    /// # Errors
    /// [`DuplicateName`] when two toolboxes declare the same tool or prompt name.
    pub async fn collect(toolboxes: Vec<Arc<dyn Toolbox>>) -> Result<Self, DuplicateName> {
        let mut catalog = Self::empty();
        for (index, toolbox) in toolboxes.iter().enumerate() {
            for spec in toolbox.tools().await {
                if let Some(&existing) = catalog.tool_index.get(&spec.name) {
                    let first = catalog.tools[existing].toolbox;
                    return Err(duplicate("tool", &spec.name, &toolboxes[first], toolbox));
                }
                catalog.tool_index.insert(spec.name.clone(), catalog.tools.len());
                catalog.tools.push(Entry { spec, toolbox: index });
            }
            for spec in toolbox.prompts().await {
                if let Some(&existing) = catalog.prompt_index.get(&spec.name) {
                    let first = catalog.prompts[existing].toolbox;
                    return Err(duplicate("prompt", &spec.name, &toolboxes[first], toolbox));
                }
                catalog.prompt_index.insert(spec.name.clone(), catalog.prompts.len());
                catalog.prompts.push(Entry { spec, toolbox: index });
            }
            catalog.resources.extend(toolbox.resources().await.into_iter().map(|spec| Entry { spec, toolbox: index }));
            catalog
                .templates
                .extend(toolbox.resource_templates().await.into_iter().map(|spec| Entry { spec, toolbox: index }));
        }
        catalog.toolboxes = toolboxes;
        Ok(catalog)
    }

    /// Names of the toolboxes, in registration order.
    pub fn toolbox_names(&self) -> Vec<String> {
        self.toolboxes.iter().map(|t| t.name().to_owned()).collect()
    }

    /// Every tool, whoever asks (for the banner and `system_about`; never for clients).
    pub fn tools(&self) -> impl Iterator<Item = &ToolSpec> {
        self.tools.iter().map(|entry| &entry.spec)
    }

    pub(crate) fn tool(&self, name: &str) -> Option<&Entry<ToolSpec>> {
        self.tool_index.get(name).and_then(|&i| self.tools.get(i))
    }

    pub(crate) fn prompt(&self, name: &str) -> Option<&Entry<PromptSpec>> {
        self.prompt_index.get(name).and_then(|&i| self.prompts.get(i))
    }

    /// The toolbox that lists `uri` as a resource, else those whose templates match it,
    /// in registration order.
    pub(crate) fn resource_servers(&self, uri: &str) -> Vec<usize> {
        if let Some(entry) = self.resources.iter().find(|entry| entry.spec.uri == uri) {
            return vec![entry.toolbox];
        }
        let mut servers: Vec<usize> = self
            .templates
            .iter()
            .filter(|entry| template_matches(&entry.spec.uri_template, uri))
            .map(|entry| entry.toolbox)
            .collect();
        servers.dedup();
        servers
    }

    /// The template `uri_template` serves, if any toolbox has it.
    pub(crate) fn template(&self, uri_template: &str) -> Option<&Entry<ResourceTemplateSpec>> {
        self.templates.iter().find(|entry| entry.spec.uri_template == uri_template)
    }
}

fn duplicate(kind: &'static str, name: &str, first: &Arc<dyn Toolbox>, second: &Arc<dyn Toolbox>) -> DuplicateName {
    DuplicateName { kind, name: name.to_owned(), first: first.name().to_owned(), second: second.name().to_owned() }
}

/// Whether `uri` is an expansion of the RFC 6570 level-1 template `template`: each
/// `{variable}` stands for one or more characters other than `/` (simple string expansion
/// percent-encodes reserved characters, so a value never holds a `/`), the rest literally.
pub(crate) fn template_matches(template: &str, uri: &str) -> bool {
    let Some(open) = template.find('{') else { return template == uri };
    let Some(close) = template[open..].find('}').map(|i| open + i) else { return template == uri };
    let (literal, rest) = (&template[..open], &template[close + 1..]);
    let Some(value_and_rest) = uri.strip_prefix(literal) else { return false };
    // The variable takes 1..n non-'/' characters; try each split (templates are short).
    let limit = value_and_rest.find('/').unwrap_or(value_and_rest.len());
    (1..=limit)
        .filter(|&end| value_and_rest.is_char_boundary(end))
        .any(|end| template_matches(rest, &value_and_rest[end..]))
}

/// A toolbox's handle for telling the pipeline that what it serves changed (an upstream
/// server's `list_changed`, a toolbox reconfigured): the catalog is collected again and
/// swapped, and sessions are told what changed for them. Given to each toolbox by
/// [`Toolbox::watch`] when it joins a pipeline; it does not keep the pipeline alive.
#[derive(Clone)]
pub struct CatalogChanges {
    pub(crate) pipeline: Weak<crate::Pipeline>,
}

impl std::fmt::Debug for CatalogChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogChanges").field("live", &(self.pipeline.strong_count() > 0)).finish()
    }
}

impl CatalogChanges {
    /// Collects every toolbox's tools, resources and prompts again and swaps the catalog.
    /// A change that would declare a name twice is refused: the old catalog stays and the
    /// conflict is logged.
    pub async fn changed(&self) {
        let Some(pipeline) = self.pipeline.upgrade() else { return };
        if let Err(error) = pipeline.refresh().await {
            tracing::error!(%error, "a toolbox's change was not applied: the catalog would name something twice");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::template_matches;

    #[test]
    fn level_one_templates_match_their_expansions_only() {
        let cases = [
            ("test://template/{id}/data", "test://template/7/data", true),
            ("test://template/{id}/data", "test://template/abc-9/data", true),
            ("test://template/{id}/data", "test://template//data", false),
            ("test://template/{id}/data", "test://template/a/b/data", false),
            ("test://template/{id}/data", "test://template/7/data/x", false),
            ("test://static", "test://static", true),
            ("file:///{a}/{b}", "file:///x/y", true),
            ("file:///{a}/{b}", "file:///x", false),
            ("notes://{book}", "notes://é", true),
        ];
        for (template, uri, expected) in cases {
            assert_eq!(template_matches(template, uri), expected, "{template} ~ {uri}");
        }
    }
}
