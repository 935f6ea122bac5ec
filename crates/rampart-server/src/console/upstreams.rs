//! The Upstreams page: each mounted MCP server's state, last error and counters, its
//! changed tool definitions with their diff; restart and approve are `admin_upstream_*`
//! tool calls through the pipeline.

use std::sync::Arc;

use axum::{
    Extension, Form,
    extract::{Path, State},
    response::Response,
};
use http::StatusCode;
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Console, Page, Signed, csrf_field, layout};

async fn render(console: &Console, signed: &Signed, notice: Option<Result<String, String>>) -> Response {
    let status = if matches!(notice, Some(Err(_))) { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let listed = console.list(signed, "admin_upstream_list", "upstreams").await;
    let upstreams: &[Value] = listed.as_deref().unwrap_or_default();
    let mut details = Vec::new();
    for upstream in upstreams {
        let name = upstream["name"].as_str().unwrap_or_default();
        if upstream["changed_tools"].as_u64().unwrap_or(0) > 0
            && let Ok(shown) = console.call_for_page(signed, "admin_upstream_show", json!({ "upstream": name })).await
        {
            details.push((name.to_owned(), shown.structured_content.unwrap_or_default()));
        }
    }
    let body = html! {
        @match &notice {
            Some(Ok(message)) => { (layout::notice(true, message)) }
            Some(Err(message)) => { (layout::notice(false, message)) }
            None => {}
        }
        @if let Err(message) = &listed { (layout::notice(false, message)) }
        table #upstreams {
            thead { tr {
                th scope="col" { "Upstream" } th scope="col" { "Transport" } th scope="col" { "State" } th scope="col" { "Since" }
                th scope="col" { "Tools" } th scope="col" { "Changed" } th scope="col" { "Calls / errors" }
                th scope="col" { "Last error" } th scope="col" { "Actions" }
            } }
            tbody {
                @for upstream in upstreams {
                    @let name = upstream["name"].as_str().unwrap_or_default();
                    @let state = upstream["state"].as_str().unwrap_or("?");
                    tr.upstream data-name=(name) {
                        th scope="row" { (name) }
                        td { (upstream["transport"].as_str().unwrap_or("")) " " code { (upstream["target"].as_str().unwrap_or("")) } }
                        td class={ "state-" (if state == "ready" { "ok" } else { "bad" }) } { (state) }
                        td { (upstream["since"].as_str().unwrap_or("")) }
                        td.num { (upstream["tools"]) } td.num { (upstream["changed_tools"]) }
                        td.num { (upstream["calls"]) " / " (upstream["errors"]) }
                        td.muted { (upstream["last_error"].as_str().unwrap_or("")) }
                        td {
                            form.inline method="post" action={ "/console/upstreams/" (name) "/restart" } data-confirm={ "Restart " (name) "?" } {
                                (csrf_field(signed)) button.quiet type="submit" { "Restart" }
                            }
                        }
                    }
                }
                @if upstreams.is_empty() { tr { td colspan="9" { "No upstream MCP servers are mounted ([upstreams.NAME] in rampart.toml)." } } }
            }
        }
        @for (name, detail) in &details {
            h2 { "Changed tool definitions of " (name) }
            @for changed in detail["changed_tools"].as_array().into_iter().flatten() {
                @let tool = changed["tool"].as_str().unwrap_or_default();
                section.card {
                    h3 { code { (tool) } " (served as " code { (changed["served_as"].as_str().unwrap_or("")) } ")" }
                    pre.diff { (changed["diff"].as_str().unwrap_or("")) }
                    form method="post" action={ "/console/upstreams/" (name) "/approve" } data-confirm={ "Approve the new definition of " (tool) "?" } {
                        (csrf_field(signed)) input type="hidden" name="tool" value=(tool);
                        button type="submit" { "Approve" }
                    }
                }
            }
        }
    };
    layout::page_with_status(status, signed, Page::Upstreams, "Upstreams", body)
}

/// `GET /console/upstreams`.
pub(crate) async fn page(State(console): State<Arc<Console>>, Extension(signed): Extension<Signed>) -> Response {
    render(&console, &signed, None).await
}

/// `POST /console/upstreams/{name}/restart`: `admin_upstream_restart`.
pub(crate) async fn restart(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
) -> Response {
    let result = console.call_for_page(&signed, "admin_upstream_restart", json!({ "upstream": name })).await;
    render(&console, &signed, Some(result.map(|output| super::output_text(&output)))).await
}

#[derive(Deserialize)]
pub(crate) struct Approve {
    #[serde(default)]
    tool: String,
}

/// `POST /console/upstreams/{name}/approve`: `admin_upstream_approve`.
pub(crate) async fn approve(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
    Form(form): Form<Approve>,
) -> Response {
    let mut arguments = json!({ "upstream": name });
    if !form.tool.is_empty() {
        arguments["tool"] = json!(form.tool);
    }
    let result = console.call_for_page(&signed, "admin_upstream_approve", arguments).await;
    render(&console, &signed, Some(result.map(|output| super::output_text(&output)))).await
}
