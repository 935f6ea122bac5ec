//! The HTTP authentication middleware: `Authorization` → [`Principal`] → a [`Caller`] in
//! the request's extensions, which the MCP handler reads. Failures are 401 with
//! `WWW-Authenticate` (RFC 9110 §11.6.1) and a log line with the remote address and the
//! reason, never the credential.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use rampart_auth::Authenticator;
use rampart_core::{Caller, Principal, Transport};

use crate::http::error_body;

pub(crate) async fn authenticate(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let remote = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let principal = if authenticator.is_enabled() {
        let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match authenticator.authenticate(header) {
            Ok(principal) => principal,
            Err(error) => {
                tracing::warn!(remote = ?remote, reason = error.reason(), path = %request.uri().path(), "authentication failed");
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    error_body("unauthorized", &format!("{error}: send Authorization: Bearer <key>")),
                )
                    .into_response();
                if let Ok(value) = HeaderValue::from_str(&authenticator.challenge()) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                return response;
            }
        }
    } else {
        Principal::anonymous()
    };
    request.extensions_mut().insert(Caller {
        principal,
        transport: Transport::StreamableHttp,
        session: None,
        remote_addr: remote.map(|r| r.to_string()),
    });
    next.run(request).await
}
