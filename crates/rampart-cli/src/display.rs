//! Views of what MCP servers list and return (the [`crate::output`] printer draws them).

use rampart_mcp::ToolInfo;
use serde_json::Value;

use crate::output::{View, content_block, first_line};

/// The group of a tool in `rampart tool`'s listing: its prefix before the first `_`
/// (`fs_read` → `fs`, an upstream's `github_…` → `github`) when another tool shares it.
fn group_of(tools: &[ToolInfo], name: &str) -> Option<String> {
    let (prefix, _) = name.split_once('_')?;
    let shared = tools.iter().filter(|t| t.name.split_once('_').is_some_and(|(p, _)| p == prefix)).count() > 1;
    shared.then(|| prefix.to_owned())
}

/// `NAME  DESCRIPTION`, one tool per row, the first line of each description.
pub(crate) fn tools_table(tools: &[ToolInfo]) -> View {
    View::table(["NAME", "DESCRIPTION"], tools.iter().map(|t| [t.name.clone(), first_line(&t.description)]).collect())
}

/// Tools grouped by toolbox prefix (`fs_`, `sql_`, an upstream's `NAME_`), the others last.
pub(crate) fn tools_grouped(tools: &[ToolInfo]) -> View {
    let mut groups: Vec<(Option<String>, Vec<ToolInfo>)> = Vec::new();
    for tool in tools {
        let group = group_of(tools, &tool.name);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push(tool.clone()),
            None => groups.push((group, vec![tool.clone()])),
        }
    }
    if groups.len() <= 1 {
        return tools_table(tools);
    }
    groups.sort_by_key(|(group, _)| group.is_none());
    View::Stack(
        groups
            .into_iter()
            .map(|(group, members)| {
                let heading = group.map_or_else(|| "other tools:".to_owned(), |g| format!("{g}_*:"));
                View::Section(heading, Box::new(tools_table(&members)))
            })
            .collect(),
    )
}

/// A tool in full: name, title, description, annotations and its input schema's
/// properties (`*` required).
pub(crate) fn tool_detail(tool: &ToolInfo) -> View {
    let mut pairs = vec![("name".to_owned(), tool.name.clone())];
    if let Some(title) = &tool.title {
        pairs.push(("title".into(), title.clone()));
    }
    pairs.push(("description".into(), tool.description.clone()));
    if let Some(annotations) = tool.raw["annotations"].as_object() {
        let hints: Vec<String> = annotations
            .iter()
            .filter(|(key, _)| key.ends_with("Hint"))
            .map(|(key, value)| format!("{}={value}", key.trim_end_matches("Hint")))
            .collect();
        if !hints.is_empty() {
            pairs.push(("annotations".into(), hints.join(" ")));
        }
    }
    let schema = &tool.raw["inputSchema"];
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let rows: Vec<[String; 3]> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, property)| {
            let marker = if required.contains(&name.as_str()) { "*" } else { "" };
            let mut kind = property["type"].as_str().map_or_else(|| property["type"].to_string(), str::to_owned);
            if let Some(values) = property["enum"].as_array() {
                kind = values.iter().map(crate::output::cell).collect::<Vec<_>>().join("|");
            }
            let description = property["description"].as_str().unwrap_or_default();
            [format!("{name}{marker}"), kind, first_line(description)]
        })
        .collect();
    if rows.is_empty() {
        View::Panel(pairs)
    } else {
        View::Stack(vec![View::Panel(pairs), View::table(["ARGUMENT", "TYPE", "DESCRIPTION"], rows)])
    }
}

/// Resources (`resources/list` items) then resource templates.
pub(crate) fn resources_table(resources: &[Value], templates: &[Value]) -> View {
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    let row = |v: &Value, uri: String| {
        let mut description = text(v, "name");
        if let Some(more) = v["description"].as_str() {
            description = format!("{description}: {}", first_line(more));
        }
        [uri, text(v, "mimeType"), description]
    };
    let rows = resources
        .iter()
        .map(|r| row(r, text(r, "uri")))
        .chain(templates.iter().map(|t| row(t, format!("{} (template)", text(t, "uriTemplate")))))
        .collect();
    View::table(["URI", "TYPE", "DESCRIPTION"], rows)
}

/// Prompts (`prompts/list` items): name with its arguments (`*` required), description.
pub(crate) fn prompts_table(prompts: &[Value]) -> View {
    let rows = prompts
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
            [key, first_line(p["description"].as_str().unwrap_or_default())]
        })
        .collect();
    View::table(["PROMPT", "DESCRIPTION"], rows)
}

/// A resource's contents (`resources/read` result): text as is, blobs described.
pub(crate) fn resource_contents(result: &Value) -> View {
    let mut out = String::new();
    for contents in result["contents"].as_array().into_iter().flatten() {
        match (contents["text"].as_str(), contents["blob"].as_str()) {
            (Some(text), _) => {
                out.push_str(text);
                if !text.ends_with('\n') {
                    out.push('\n');
                }
            }
            (None, Some(blob)) => out.push_str(&format!(
                "[{} {}, about {} bytes: --save FILE writes it]\n",
                contents["uri"].as_str().unwrap_or("?"),
                contents["mimeType"].as_str().unwrap_or("blob"),
                blob.len() * 3 / 4
            )),
            _ => {}
        }
    }
    View::Text(out)
}

/// A rendered prompt (`prompts/get` result): each message as `role: text`.
pub(crate) fn prompt_messages(result: &Value) -> View {
    let mut out = String::new();
    if let Some(description) = result["description"].as_str() {
        out.push_str(&format!("# {description}\n"));
    }
    for message in result["messages"].as_array().into_iter().flatten() {
        let role = message["role"].as_str().unwrap_or("?");
        out.push_str(&format!("{role}: {}\n", content_block(&message["content"]).trim_end()));
    }
    View::Text(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::output::Printer;

    fn render(view: &View) -> String {
        Printer { json: false, color: false, width: Some(100) }.render(view)
    }

    fn tool(name: &str, description: &str, schema: Value) -> ToolInfo {
        let raw = json!({"name": name, "description": description, "inputSchema": schema,
            "annotations": {"readOnlyHint": true, "title": "x"}});
        ToolInfo { name: name.into(), title: None, description: description.into(), raw }
    }

    fn tools() -> Vec<ToolInfo> {
        vec![
            tool("system_health", "Liveness and readiness.", json!({"type": "object"})),
            tool("system_about", "Version and toolboxes.\nMore.", json!({"type": "object"})),
            tool("fs_read", "Read a file under a root.", json!({"type": "object"})),
            tool("fs_write", "Write a file, whole or not at all.", json!({"type": "object"})),
            tool(
                "get_current_time",
                "Current time in a timezone.",
                json!({"type": "object", "properties": {
                    "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Paris."},
                    "format": {"type": "string", "enum": ["iso", "unix"]}},
                    "required": ["timezone"]}),
            ),
        ]
    }

    #[test]
    fn tools_grouped_by_prefix() {
        insta::assert_snapshot!(render(&tools_grouped(&tools())));
    }

    #[test]
    fn tool_detail_lists_arguments() {
        insta::assert_snapshot!(render(&tool_detail(&tools()[4])));
    }

    #[test]
    fn resources_prompts_and_messages() {
        let resources = [json!({"uri": "test://static-text", "name": "static", "mimeType": "text/plain"})];
        let templates = [json!({"uriTemplate": "test://template/{id}/data", "name": "data", "description": "By id."})];
        insta::assert_snapshot!("resources", render(&resources_table(&resources, &templates)));
        let prompts = [json!({"name": "review", "description": "Review code.",
            "arguments": [{"name": "code", "required": true}, {"name": "style"}]})];
        insta::assert_snapshot!("prompts", render(&prompts_table(&prompts)));
        let messages = json!({"description": "A review", "messages": [
            {"role": "user", "content": {"type": "text", "text": "Review this"}}]});
        insta::assert_snapshot!("prompt_messages", render(&prompt_messages(&messages)));
        let blob = json!({"contents": [{"uri": "test://b", "mimeType": "image/png", "blob": "AAAA"}]});
        insta::assert_snapshot!("blob", render(&resource_contents(&blob)));
    }
}
