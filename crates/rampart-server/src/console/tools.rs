//! The Tools page (stub: filled in by the tools work).

use std::sync::Arc;

use axum::{
    Extension,
    extract::{Path, State},
    response::Response,
};
use maud::html;

use super::{Console, Page, Signed};

/// `GET /console/tools`.
pub(crate) async fn page(State(_console): State<Arc<Console>>, Extension(signed): Extension<Signed>) -> Response {
    super::page(&signed, Page::Tools, "Tools", html! { p { "Coming." } })
}

/// `GET /console/tools/{name}`.
pub(crate) async fn form(Path(_name): Path<String>, Extension(signed): Extension<Signed>) -> Response {
    super::page(&signed, Page::Tools, "Tools", html! { p { "Coming." } })
}

/// `POST /console/tools/{name}`.
pub(crate) async fn call(Path(_name): Path<String>, Extension(signed): Extension<Signed>) -> Response {
    super::page(&signed, Page::Tools, "Tools", html! { p { "Coming." } })
}
