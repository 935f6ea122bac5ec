//! Readable output for people (the `--json` forms are for scripts).

use std::fmt::Write;

use rampart_mcp::ToolInfo;
use serde_json::Value;

/// Longest description shown in the tools table, characters.
const DESCRIPTION_WIDTH: usize = 90;

/// `NAME  DESCRIPTION` table, one tool per line, first sentence of each description.
pub(crate) fn tools_table(tools: &[ToolInfo]) -> String {
    let width = tools.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:<width$}  DESCRIPTION\n", "NAME");
    for tool in tools {
        let line = tool.description.lines().next().unwrap_or_default();
        let mut description: String = line.chars().take(DESCRIPTION_WIDTH).collect();
        if line.chars().count() > DESCRIPTION_WIDTH {
            description.push('…');
        }
        let _ = writeln!(out, "{:<width$}  {description}", tool.name);
    }
    out
}

/// A tool result: structured content as indented JSON when present, else each content
/// block (text as is; images, audio and resources described).
pub(crate) fn call_result(result: &Value) -> String {
    let mut out = String::new();
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(structured).unwrap_or_default());
        return out;
    }
    for block in result["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => {
                let _ = writeln!(out, "{}", block["text"].as_str().unwrap_or_default());
            }
            Some(kind @ ("image" | "audio")) => {
                let bytes = block["data"].as_str().map_or(0, |d| d.len() * 3 / 4);
                let _ = writeln!(out, "[{kind} {}, about {bytes} bytes]", block["mimeType"].as_str().unwrap_or("?"));
            }
            Some("resource") => {
                let resource = &block["resource"];
                let _ = writeln!(out, "[resource {}]", resource["uri"].as_str().unwrap_or("?"));
                if let Some(text) = resource["text"].as_str() {
                    let _ = writeln!(out, "{text}");
                }
            }
            _ => {
                let _ = writeln!(out, "{block}");
            }
        }
    }
    out
}
