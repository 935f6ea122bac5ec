//! Resources a toolbox offers (MCP 2025-11-25 "Resources").

use serde::Serialize;

/// A concrete resource, listed by `resources/list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceSpec {
    /// The resource URI, e.g. `test://static-text`.
    pub uri: String,
    /// Programmatic name.
    pub name: String,
    /// Human-readable title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the resource holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of its contents.
    #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// A family of resources addressed by an RFC 6570 URI template, listed by
/// `resources/templates/list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceTemplateSpec {
    /// RFC 6570 level-1 template, e.g. `test://template/{id}/data`.
    #[serde(rename = "uriTemplate")]
    pub uri_template: String,
    /// Programmatic name.
    pub name: String,
    /// What the resources hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of their contents.
    #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}
