//! The Audit page (stub: filled in by the audit work).

use std::sync::Arc;

use axum::{
    Extension,
    extract::State,
    response::{IntoResponse, Response},
};
use maud::html;

use super::{Console, Page, Signed};

pub(crate) async fn page_stub(signed: &Signed) -> Response {
    super::page(signed, Page::Audit, "Audit", html! { p { "Coming." } })
}

/// `GET /console/audit`.
pub(crate) async fn page(State(_console): State<Arc<Console>>, Extension(signed): Extension<Signed>) -> Response {
    page_stub(&signed).await
}

/// `GET /console/audit/record`.
pub(crate) async fn record(Extension(signed): Extension<Signed>) -> Response {
    page_stub(&signed).await
}

/// `POST /console/audit/verify`.
pub(crate) async fn verify(Extension(signed): Extension<Signed>) -> Response {
    page_stub(&signed).await
}

/// `GET /console/audit/export`.
pub(crate) async fn export(Extension(_signed): Extension<Signed>) -> Response {
    "".into_response()
}
