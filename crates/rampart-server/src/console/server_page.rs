//! The Server page: version, transports, toolboxes with their tool counts, readiness of
//! each backing service (what `/readyz` reports), console sessions, audit queue.

use std::sync::Arc;

use axum::{Extension, extract::State, response::Response};
use maud::html;

use super::{Console, Page, Signed};

/// `GET /console/server`.
pub(crate) async fn page(State(console): State<Arc<Console>>, Extension(signed): Extension<Signed>) -> Response {
    let (ready, services) = crate::http::readiness(&console.store, &console.pipeline).await;
    let tools = console.pipeline.all_tools();
    let toolboxes = console.pipeline.toolbox_names();
    let audit = console.guard.audit();
    let body = html! {
        div.cards #server {
            div.card {
                h2 { "Rampart" }
                p { "Version " code #version { (rampart_core::VERSION) } }
                p { "Status: " span class={ "state-" (if ready { "ok" } else { "bad" }) } #readiness { (if ready { "ready" } else { "degraded" }) } }
                p { "Console sessions open: " (console.sessions.count()) }
            }
            div.card {
                h2 { "Transports" }
                ul #transports { @for transport in &console.transports { li { code { (transport) } } } }
            }
            div.card {
                h2 { "Audit log" }
                @match audit {
                    Some(audit) => {
                        p { "Healthy: " span class={ "state-" (if audit.is_healthy() { "ok" } else { "bad" }) } { (audit.is_healthy()) } }
                        p { "Records queued: " (audit.queue_depth()) }
                    }
                    None => { p.state-bad { "Disabled: calls are not recorded." } }
                }
            }
        }
        h2 { "Services" }
        table #services {
            thead { tr { th scope="col" { "Service" } th scope="col" { "Status" } th scope="col" { "Detail" } } }
            tbody {
                @for (name, service) in services.as_object().into_iter().flatten() {
                    @let status = service["status"].as_str().unwrap_or("?");
                    tr {
                        th scope="row" { (name) }
                        td class={ "state-" (if status == "ok" { "ok" } else { "bad" }) } { (status) }
                        td.muted { (service.get("detail").or(service.get("error")).or(service.get("backend")).and_then(|v| v.as_str()).unwrap_or("")) }
                    }
                }
            }
        }
        h2 { "Toolboxes" }
        table #toolboxes {
            thead { tr { th scope="col" { "Toolbox" } } }
            tbody { @for name in &toolboxes { tr { td { code { (name) } } } } }
        }
        p.muted { (tools.len()) " tools in all." }
    };
    super::page(&signed, Page::Server, "Server", body)
}
