//! Readable output for people (the `--json` forms are for scripts).

use std::fmt::Write;

use rampart_mcp::ToolInfo;
use serde_json::Value;

/// Longest description shown in the tools table, characters.
const DESCRIPTION_WIDTH: usize = 90;

/// `NAME  DESCRIPTION` table, one tool per line, first sentence of each description.
pub(crate) fn tools_table(tools: &[ToolInfo]) -> String {
    let rows: Vec<(&str, &str)> = tools.iter().map(|t| (t.name.as_str(), t.description.as_str())).collect();
    two_columns("NAME", &rows)
}

/// A `KEY  DESCRIPTION` table: the first line of each description, cut to
/// [`DESCRIPTION_WIDTH`].
fn two_columns(heading: &str, rows: &[(&str, &str)]) -> String {
    let width = rows.iter().map(|(key, _)| key.chars().count()).max().unwrap_or(0).max(heading.len());
    let mut out = format!("{heading:<width$}  DESCRIPTION\n");
    for (key, description) in rows {
        let line = description.lines().next().unwrap_or_default();
        let mut description: String = line.chars().take(DESCRIPTION_WIDTH).collect();
        if line.chars().count() > DESCRIPTION_WIDTH {
            description.push('…');
        }
        let _ = writeln!(out, "{key:<width$}  {description}");
    }
    out
}

/// Resources (`resources/list` items) then resource templates, one per line.
pub(crate) fn resources_table(resources: &[Value], templates: &[Value]) -> String {
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    let describe = |v: &Value| {
        let mut line = text(v, "name");
        if let Some(description) = v["description"].as_str() {
            line = format!("{line}: {description}");
        }
        if let Some(mime) = v["mimeType"].as_str() {
            line = format!("{line} [{mime}]");
        }
        line
    };
    let rows: Vec<(String, String)> = resources
        .iter()
        .map(|r| (text(r, "uri"), describe(r)))
        .chain(templates.iter().map(|t| (text(t, "uriTemplate"), format!("(template) {}", describe(t)))))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    two_columns("URI", &rows)
}

/// Prompts (`prompts/list` items): name, arguments (`*` required), description.
pub(crate) fn prompts_table(prompts: &[Value]) -> String {
    let rows: Vec<(String, String)> = prompts
        .iter()
        .map(|p| {
            let arguments: Vec<String> = p["arguments"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    let name = a["name"].as_str().unwrap_or_default();
                    if a["required"].as_bool() == Some(true) { format!("{name}*") } else { name.to_owned() }
                })
                .collect();
            let name = p["name"].as_str().unwrap_or_default();
            let key = if arguments.is_empty() { name.to_owned() } else { format!("{name}({})", arguments.join(", ")) };
            (key, p["description"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    two_columns("PROMPT", &rows)
}

/// A resource's contents (`resources/read` result): text as is, blobs described.
pub(crate) fn resource_contents(result: &Value) -> String {
    let mut out = String::new();
    for contents in result["contents"].as_array().into_iter().flatten() {
        match (contents["text"].as_str(), contents["blob"].as_str()) {
            (Some(text), _) => {
                let _ = writeln!(out, "{text}");
            }
            (None, Some(blob)) => {
                let _ = writeln!(
                    out,
                    "[{} {}, about {} bytes: --save FILE writes it]",
                    contents["uri"].as_str().unwrap_or("?"),
                    contents["mimeType"].as_str().unwrap_or("blob"),
                    blob.len() * 3 / 4
                );
            }
            _ => {}
        }
    }
    out
}

/// A rendered prompt (`prompts/get` result): each message as `role: text`.
pub(crate) fn prompt_messages(result: &Value) -> String {
    let mut out = String::new();
    if let Some(description) = result["description"].as_str() {
        let _ = writeln!(out, "# {description}");
    }
    for message in result["messages"].as_array().into_iter().flatten() {
        let role = message["role"].as_str().unwrap_or("?");
        let content = json_content_block(&message["content"]);
        let _ = writeln!(out, "{role}: {}", content.trim_end());
    }
    out
}

/// One content block as `call_result` shows it.
fn json_content_block(block: &Value) -> String {
    call_result(&serde_json::json!({ "content": [block] }))
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
