//! The Policy page: every role with its grants (built-in ones with what the configuration
//! adds), and "explain" for a principal (a token's name, or roles) and a tool: the
//! decision exactly as the pipeline would make it, the roles reached and the rules that
//! came closest.

use std::sync::Arc;

use axum::{
    Extension,
    extract::{Query, State},
    response::Response,
};
use maud::html;
use rampart_core::Request as Attempt;
use serde::Deserialize;
use serde_json::Value;

use super::{Console, Page, Signed, layout};

#[derive(Deserialize, Default)]
pub(crate) struct Explain {
    #[serde(default)]
    principal: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    tool: String,
}

/// The roles of the token named `name`, through `admin_token_list` (so only a principal
/// granted that tool can look tokens up).
async fn token_roles(console: &Console, signed: &Signed, name: &str) -> Result<Vec<String>, String> {
    let tokens = console.list(signed, "admin_token_list", "tokens").await?;
    tokens
        .iter()
        .find(|token| token["name"] == name || token["id"] == name)
        .map(|token| {
            token["roles"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
        })
        .ok_or_else(|| format!("No token is named '{name}'."))
}

/// `GET /console/policy[?principal=…|roles=…&tool=…]`.
pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(explain): Query<Explain>,
) -> Response {
    let policy = console.guard.policy();
    let asked = !explain.tool.trim().is_empty();
    let explanation = if asked {
        let roles = if explain.principal.trim().is_empty() {
            Ok(explain.roles.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect())
        } else {
            token_roles(&console, &signed, explain.principal.trim()).await
        };
        Some(
            roles
                .map(|roles: Vec<String>| (roles.clone(), policy.explain(&roles, &Attempt::tool(explain.tool.trim())))),
        )
    } else {
        None
    };
    let config = policy.effective_config();
    let roles = serde_json::to_value(&config).unwrap_or_default();
    let body = html! {
        h2 { "Explain a decision" }
        form.filters #explain method="get" action="/console/policy" {
            div { label for="p-principal" { "Token name " span.hint { "(or leave empty and give roles)" } } input #p-principal name="principal" value=(explain.principal); }
            div { label for="p-roles" { "Roles " span.hint { "(comma-separated)" } } input #p-roles name="roles" value=(explain.roles); }
            div { label for="p-tool" { "Tool" } input #p-tool name="tool" required value=(explain.tool); }
            button type="submit" { "Explain" }
        }
        @match &explanation {
            Some(Ok((roles, explanation))) => {
                section #explanation aria-live="polite" {
                    p { "Roles: " code { (if roles.is_empty() { "(none)".to_owned() } else { roles.join(", ") }) } }
                    @let verdict = if explanation.decision.is_allowed() { "allow" } else { "deny" };
                    p #verdict class={ "decision-" (verdict) } { "Decision: " (verdict) }
                    pre { (explanation.to_string()) }
                }
            }
            Some(Err(message)) => { (layout::notice(false, message)) }
            None => {}
        }
        h2 { "Roles" }
        table #roles {
            thead { tr { th scope="col" { "Role" } th scope="col" { "Grants" } } }
            tbody {
                @for (name, role) in roles.as_object().into_iter().flatten() {
                    tr.role data-role=(name) {
                        th scope="row" { (name) }
                        td { (layout::json_block(&prune(role))) }
                    }
                }
            }
        }
    };
    super::page(&signed, Page::Policy, "Policy", body)
}

/// A role's table without its empty lists, for reading.
fn prune(role: &Value) -> Value {
    match role {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| {
                    !matches!(v, Value::Null)
                        && v.as_array().is_none_or(|a| !a.is_empty())
                        && v.as_object().is_none_or(|o| !o.is_empty())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}
