//! Conversions between `rampart-core` types and rmcp's model. Both sides follow MCP's JSON
//! shapes, so conversion goes through `serde_json::Value`; this keeps us independent of
//! rmcp's constructors (many of its types are `#[non_exhaustive]`).

use rampart_core::CallError;
use rmcp::{ErrorData, model::ErrorCode};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// Re-types `value` as rmcp's `T` through JSON.
pub(crate) fn retype<T: DeserializeOwned>(value: &impl Serialize) -> Result<T, ErrorData> {
    serde_json::to_value(value).and_then(serde_json::from_value).map_err(|error| {
        tracing::error!(%error, type_name = std::any::type_name::<T>(), "cannot convert to the MCP wire type");
        ErrorData::internal_error("internal error", None)
    })
}

/// Re-types a JSON value as rmcp's `T`.
pub(crate) fn from_json<T: DeserializeOwned>(value: Value) -> Result<T, ErrorData> {
    retype(&value)
}

/// A tool's output as rmcp's `CallToolResult`. Text, by far the most common content, is
/// moved across as is; anything else goes through JSON like every other conversion here.
pub(crate) fn call_result(output: rampart_core::ToolOutput) -> Result<rmcp::model::CallToolResult, ErrorData> {
    use rampart_core::Content;
    use rmcp::model::{CallToolResult, ContentBlock};
    let content = if output.content.iter().all(|c| matches!(c, Content::Text { .. })) {
        output
            .content
            .into_iter()
            .filter_map(|content| match content {
                Content::Text { text } => Some(ContentBlock::text(text)),
                _ => None,
            })
            .collect()
    } else {
        retype(&output.content)?
    };
    let mut result = if output.is_error { CallToolResult::error(content) } else { CallToolResult::success(content) };
    result.structured_content = output.structured_content;
    Ok(result)
}

/// The one place where a pipeline refusal becomes a JSON-RPC error (MCP 2025-11-25
/// "Error Handling": unknown tool and bad params are -32602, a missing resource -32002).
pub(crate) fn call_error(error: CallError) -> ErrorData {
    match error {
        CallError::UnknownTool(name) => ErrorData::invalid_params(
            format!("Unknown tool: {name} (no such tool, or no role of this principal grants tool '{name}')"),
            None,
        ),
        CallError::UnknownPrompt(name) => ErrorData::invalid_params(format!("Unknown prompt: {name}"), None),
        CallError::ResourceNotFound(uri) => {
            ErrorData::resource_not_found(format!("Resource not found: {uri}"), Some(serde_json::json!({ "uri": uri })))
        }
        CallError::UnknownTask(id) => ErrorData::invalid_params(format!("unknown task: {id}"), None),
        CallError::InvalidParams(message) => ErrorData::invalid_params(message, None),
        CallError::Refused(refusal) => ErrorData::new(ErrorCode(-32000), refusal.to_string(), None),
        CallError::Cancelled => ErrorData::internal_error("request cancelled", None),
        CallError::Internal => ErrorData::internal_error("internal error", None),
    }
}
