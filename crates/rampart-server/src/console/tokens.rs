//! The Tokens page: list, create (the secret shown once), revoke, rotate — each an
//! `admin_token_*` tool call through the pipeline as the signed-in principal.

use std::sync::Arc;

use axum::{Extension, Form, extract::State, response::Response};
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Console, Page, Signed, csrf_field, layout};

/// What a change left to show above the list.
enum Notice {
    /// A token created or rotated: its secret, shown this once.
    Secret {
        message: String,
        token: String,
    },
    Done(String),
    Failed(String),
}

async fn render(console: &Console, signed: &Signed, notice: Option<Notice>) -> Response {
    let status = match notice {
        Some(Notice::Failed(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let listed = console.list(signed, "admin_token_list", "tokens").await;
    let tokens: &[Value] = listed.as_deref().unwrap_or_default();
    let body = html! {
        @match &notice {
            Some(Notice::Secret { message, token }) => {
                div.notice.ok role="status" {
                    p { (message) " It is shown only now; copy it to where it will be used:" }
                    p.secret { code #new-token-secret { (token) } }
                }
            }
            Some(Notice::Done(message)) => { (layout::notice(true, message)) }
            Some(Notice::Failed(message)) => { (layout::notice(false, message)) }
            None => {}
        }
        @if let Err(message) = &listed { (layout::notice(false, message)) }
        h2 { "Create a token" }
        form.panel #create-token method="post" action="/console/tokens" {
            (csrf_field(signed))
            div { label for="t-name" { "Name" } input #t-name name="name" required pattern="[A-Za-z0-9._-]+" placeholder="ci"; }
            div { label for="t-roles" { "Roles " span.hint { "(comma-separated)" } } input #t-roles name="roles" required placeholder="reader"; }
            div { label for="t-expires" { "Expires in " span.hint { "(30d, 12h; empty: never)" } } input #t-expires name="expires_in" placeholder="30d"; }
            button #create-token-submit type="submit" { "Create" }
        }
        h2 { "Tokens" }
        (table(signed, tokens))
    };
    layout::page_with_status(status, signed, Page::Tokens, "Tokens", body)
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("—")
}

fn table(signed: &Signed, tokens: &[Value]) -> Markup {
    html! {
        table #tokens {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Prefix" } th scope="col" { "Roles" }
                th scope="col" { "Status" } th scope="col" { "Created" } th scope="col" { "Expires" }
                th scope="col" { "Last used" } th scope="col" { "Actions" }
            } }
            tbody {
                @for token in tokens {
                    @let name = text(&token["name"]);
                    @let id = text(&token["id"]);
                    @let status = text(&token["status"]);
                    tr.token data-name=(name) data-status=(status) {
                        td { (name) } td { code { (id) } } td { code { (text(&token["prefix"])) } }
                        td { (token["roles"].as_array().map(|roles| roles.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                        td class={ "state-" (if status == "active" { "ok" } else { "bad" }) } { (status) }
                        td { (text(&token["created_at"])) } td { (text(&token["expires_at"])) } td { (text(&token["last_used_at"])) }
                        td {
                            @if status == "active" {
                                form.inline method="post" action="/console/tokens/rotate" data-confirm={ "Rotate '" (name) "'? Its current secret stops working." } {
                                    (csrf_field(signed)) input type="hidden" name="id" value=(id);
                                    button.quiet type="submit" aria-label={ "Rotate " (name) } { "Rotate" }
                                }
                                " "
                                form.inline method="post" action="/console/tokens/revoke" data-confirm={ "Revoke '" (name) "'? It stops working at once." } {
                                    (csrf_field(signed)) input type="hidden" name="id" value=(id);
                                    button.danger type="submit" aria-label={ "Revoke " (name) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
                @if tokens.is_empty() { tr { td colspan="9" { "No tokens." } } }
            }
        }
    }
}

/// `GET /console/tokens`.
pub(crate) async fn page(State(console): State<Arc<Console>>, Extension(signed): Extension<Signed>) -> Response {
    render(&console, &signed, None).await
}

#[derive(Deserialize)]
pub(crate) struct Create {
    name: String,
    roles: String,
    #[serde(default)]
    expires_in: String,
}

fn secret_notice(result: Result<rampart_core::ToolOutput, String>, verb: &str) -> Notice {
    match result {
        Ok(output) => {
            let created = output.structured_content.unwrap_or_default();
            let name = text(&created["name"]).to_owned();
            match created["token"].as_str() {
                Some(token) => Notice::Secret { message: format!("Token '{name}' {verb}."), token: token.to_owned() },
                None => Notice::Failed("The server returned no token.".into()),
            }
        }
        Err(message) => Notice::Failed(message),
    }
}

/// `POST /console/tokens`: `admin_token_create`.
pub(crate) async fn create(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<Create>,
) -> Response {
    let roles: Vec<&str> = form.roles.split(',').map(str::trim).filter(|r| !r.is_empty()).collect();
    let mut arguments = json!({ "name": form.name.trim(), "roles": roles });
    if !form.expires_in.trim().is_empty() {
        arguments["expires_in"] = json!(form.expires_in.trim());
    }
    let result = console.call_for_page(&signed, "admin_token_create", arguments).await;
    let notice = secret_notice(result, "created");
    render(&console, &signed, Some(notice)).await
}

#[derive(Deserialize)]
pub(crate) struct Key {
    id: String,
}

/// `POST /console/tokens/revoke`: `admin_token_revoke`.
pub(crate) async fn revoke(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Form(key): Form<Key>,
) -> Response {
    let notice = match console.call_for_page(&signed, "admin_token_revoke", json!({ "id": key.id })).await {
        Ok(output) => Notice::Done(super::output_text(&output)),
        Err(message) => Notice::Failed(message),
    };
    render(&console, &signed, Some(notice)).await
}

/// `POST /console/tokens/rotate`: `admin_token_rotate`.
pub(crate) async fn rotate(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Form(key): Form<Key>,
) -> Response {
    let result = console.call_for_page(&signed, "admin_token_rotate", json!({ "id": key.id })).await;
    render(&console, &signed, Some(secret_notice(result, "rotated"))).await
}
