//! The web console at `/console` (`server.console = true`): pages where an operator sees
//! and steers the server, on the same listener and behind the same Host/Origin checks as
//! `/mcp`.
//!
//! - **Sign-in** (`/console/login`): an API token (or the static key, or a JWT) checked by
//!   the same [`Credentials`] as `/mcp`, with the same failed-login throttle and audit
//!   record of a failure. It opens a [`session`] whose id is the cookie
//!   `rampart_console` (`HttpOnly`, `SameSite=Strict`, `Path=/console`, `Secure` under
//!   TLS); every request re-authenticates the session's credential, so a revoked token
//!   ends its sessions at its next request (at once when revoked through this server,
//!   within the 2 s verification cache when by another process or replica without
//!   `[cluster]`), and the Live stream re-checks every 2 s.
//! - **The gate** ([`gate`]), in front of every page and API but the sign-in page and the
//!   static assets: a request from another origin (`Origin` or `Sec-Fetch-Site`) is
//!   refused; without a live session a page redirects to the sign-in page and anything
//!   else gets 401; a change (any method but GET/HEAD) must carry the session's CSRF token
//!   (form field `_csrf` or header `x-csrf-token`); a page the principal's roles do not
//!   grant is 404, like a page that does not exist.
//! - **Grants**: each [`Page`] is the typed scope `console:NAME` (read), granted by
//!   `[roles.X] scopes = { console = [{ name = "live", access = "read" }, …] }`
//!   (`admin` holds every one). A principal with none cannot sign in.
//! - **One way in**: every change a page makes (a token created, revoked or rotated, an
//!   upstream restarted or approved, a tool called) is a tool call through the
//!   [`Pipeline`] as the signed-in principal (transport `console` in its audit record):
//!   the console has no path of its own to the store. Reading the audit log is the one
//!   read the console makes from the store, under the `console:audit` grant.
//! - Every response carries a strict Content-Security-Policy (scripts and styles from
//!   `/console/assets` only, no inline code), `X-Frame-Options: DENY`, `nosniff`,
//!   `Referrer-Policy: same-origin` and `Cache-Control: no-store`.

mod assets;
mod audit;
mod layout;
mod live;
mod oidc;
mod policy;
mod server_page;
mod session;
mod tokens;
mod tools;
mod upstreams;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Form, Router,
    extract::{ConnectInfo, FromRequest as _, Query, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use rampart_core::{
    Access, CallContext, CallError, Caller, Pipeline, Principal, Request as Attempt, ToolOutput, Transport,
};
use rampart_store::Store;
use serde::Deserialize;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::{
    SecurityGuard,
    auth::{Credentials, Refused},
};

pub(crate) use layout::{csrf_field, error_page, page};
pub(crate) use live::Recent;

/// The cookie holding a console session's id.
const COOKIE: &str = "rampart_console";
/// The form field (or, from a script, the header `x-csrf-token`) carrying the CSRF token.
const CSRF_FIELD: &str = "_csrf";
/// The largest form body the console reads.
const MAX_FORM_BYTES: usize = 1024 * 1024;
/// The typed scope kind that grants console pages.
pub(crate) const SCOPE_KIND: &str = "console";

/// A page of the console, and the scope `console:NAME` that grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Page {
    Live,
    Audit,
    Tokens,
    Policy,
    Tools,
    Upstreams,
    Server,
}

impl Page {
    /// In the order of the navigation bar.
    pub(crate) const ALL: [Page; 7] =
        [Page::Live, Page::Audit, Page::Tokens, Page::Policy, Page::Tools, Page::Upstreams, Page::Server];

    /// Its scope name and path segment.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Page::Live => "live",
            Page::Audit => "audit",
            Page::Tokens => "tokens",
            Page::Policy => "policy",
            Page::Tools => "tools",
            Page::Upstreams => "upstreams",
            Page::Server => "server",
        }
    }

    /// Its title in the navigation bar.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Page::Live => "Live",
            Page::Audit => "Audit",
            Page::Tokens => "Tokens",
            Page::Policy => "Policy",
            Page::Tools => "Tools",
            Page::Upstreams => "Upstreams",
            Page::Server => "Server",
        }
    }

    /// `/console/NAME`.
    pub(crate) fn path(self) -> String {
        format!("/console/{}", self.name())
    }

    /// The page a console path belongs to (`/console/tools/x` → Tools).
    fn of_path(path: &str) -> Option<Page> {
        let segment = path.strip_prefix("/console/")?.split('/').next()?;
        Page::ALL.into_iter().find(|page| page.name() == segment)
    }
}

/// Everything the console's handlers share.
pub(crate) struct Console {
    pub(crate) credentials: Arc<Credentials>,
    pub(crate) guard: Arc<SecurityGuard>,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) store: Store,
    pub(crate) sessions: session::Sessions,
    /// Served over TLS: cookies are `Secure`, the expected origin `https://`.
    pub(crate) tls: bool,
    /// Calls per minute and their latencies over the last hour (the Live page's charts).
    pub(crate) recent: Arc<Recent>,
    /// The transports this server serves (the Server page).
    pub(crate) transports: Vec<&'static str>,
    /// Where the audit log and its checkpoints are (the Audit page).
    pub(crate) audit: audit::AuditSettings,
    /// "Sign in with …" (`[auth.jwt] console_client_id`).
    pub(crate) oidc: Option<oidc::Oidc>,
}

/// What [`Console::new`] needs.
pub(crate) struct ConsoleParts {
    /// Credentials checked at sign-in and on every request.
    pub credentials: Arc<Credentials>,
    /// Policy, limits, metrics, audit.
    pub guard: Arc<SecurityGuard>,
    /// The one call pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The store (the audit log's records).
    pub store: Store,
    /// Whether the listener serves TLS.
    pub tls: bool,
    /// The transports served.
    pub transports: Vec<&'static str>,
    /// `[audit] file`, when the audit log is a JSON-lines file rather than the store.
    pub audit_file: Option<std::path::PathBuf>,
    /// The configured audit checkpoint file and its public key.
    pub audit_checkpoints: crate::CheckpointFiles,
}

/// The signed-in principal of one console request, put in its extensions by [`gate`].
#[derive(Clone, Debug)]
pub(crate) struct Signed {
    /// The principal as a caller (transport `console`), for pipeline calls.
    pub(crate) caller: Caller,
    /// The session's CSRF token, for the forms of the page.
    pub(crate) csrf: String,
    /// The pages its roles grant.
    pub(crate) pages: Vec<Page>,
    /// Its session's id, for what outlives one request (the Live stream re-checks it).
    pub(crate) session: String,
}

impl Signed {
    /// Whether its roles grant `page`.
    pub(crate) fn may(&self, page: Page) -> bool {
        self.pages.contains(&page)
    }

    /// Its principal.
    pub(crate) fn principal(&self) -> &Principal {
        &self.caller.principal
    }
}

impl Console {
    /// The pages `roles` grant.
    fn pages_for(&self, roles: &[String]) -> Vec<Page> {
        let policy = self.guard.policy();
        Page::ALL
            .into_iter()
            .filter(|page| policy.allows(roles, &Attempt::scope(SCOPE_KIND, page.name(), Access::Read)))
            .collect()
    }

    /// Calls `tool` with `arguments` (a JSON object) through the pipeline as the signed-in
    /// principal: authorized, admitted, recorded like any MCP call.
    ///
    /// # Errors
    /// [`CallError`]: unknown or not granted (the same answer), refused, cancelled.
    pub(crate) async fn call(&self, signed: &Signed, tool: &str, arguments: Value) -> Result<ToolOutput, CallError> {
        let arguments = match arguments {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let context = CallContext::detached(signed.caller.clone(), self.pipeline.guard().clone());
        self.pipeline.call_tool(tool, Some(arguments), &context).await
    }

    /// Whether the session `id` is still open, its credential still authenticates and its
    /// roles still grant `page`: what a long-lived response (the Live stream) asks now and
    /// then, so that a revoked token stops receiving.
    pub(crate) async fn still_grants(&self, id: &str, page: Page) -> bool {
        let Some(open) = self.sessions.get(id) else { return false };
        match self.credentials.authenticate(Some(&open.authorization), None).await {
            Ok(principal) => self.pages_for(&principal.roles).contains(&page),
            Err(_) => {
                self.sessions.close(id);
                false
            }
        }
    }

    /// [`Console::call`], for a page: the structured result, or a message a person can
    /// act on (the tool's own error text; "not granted" for an unknown tool).
    pub(crate) async fn call_for_page(
        &self,
        signed: &Signed,
        tool: &str,
        arguments: Value,
    ) -> Result<ToolOutput, String> {
        match self.call(signed, tool, arguments).await {
            Ok(output) if output.is_error => Err(output_text(&output)),
            Ok(output) => Ok(output),
            Err(CallError::UnknownTool(_)) => Err(format!("Your roles do not grant the tool {tool}.")),
            Err(error) => Err(error.to_string()),
        }
    }

    /// The list a listing tool returns under `key` of its structured result
    /// (`admin_token_list` → `tokens`), through [`Console::call_for_page`].
    ///
    /// # Errors
    /// The message of a refused or failed call.
    pub(crate) async fn list(&self, signed: &Signed, tool: &str, key: &str) -> Result<Vec<Value>, String> {
        let output = self.call_for_page(signed, tool, Value::Object(Map::new())).await?;
        Ok(output
            .structured_content
            .and_then(|mut value| value[key].as_array_mut().map(std::mem::take))
            .unwrap_or_default())
    }

    /// The origin pages are served from, for this request's `Host`.
    pub(crate) fn expected_origin(&self, headers: &HeaderMap) -> Option<String> {
        let host = headers.get(header::HOST)?.to_str().ok()?;
        Some(format!("{}://{host}", if self.tls { "https" } else { "http" }))
    }

    /// Refuses a request another site made a browser send: an `Origin` that is not this
    /// console's own, or `Sec-Fetch-Site: cross-site`.
    fn same_origin(&self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let cross_site = headers.get("sec-fetch-site").is_some_and(|site| site.as_bytes() == b"cross-site");
        let origin = headers.get(header::ORIGIN).map(|origin| origin.to_str().unwrap_or("?"));
        let foreign = origin.is_some_and(|origin| Some(origin) != self.expected_origin(headers).as_deref());
        if cross_site || foreign {
            tracing::warn!(origin = origin.unwrap_or("-"), "console request from another origin refused");
            return Err(Box::new(error_page(
                StatusCode::FORBIDDEN,
                "This request came from another site; it was refused.",
            )));
        }
        Ok(())
    }

    /// A `Set-Cookie` value for one of the console's cookies: `HttpOnly`, `Secure` under
    /// TLS, with `path`, `same_site` and `max_age` (none: for the browser's session;
    /// zero: removes it).
    pub(crate) fn set_cookie(
        &self,
        (name, path, same_site): (&'static str, &'static str, cookie::SameSite),
        value: &str,
        max_age: Option<cookie::time::Duration>,
    ) -> HeaderValue {
        let mut cookie = cookie::Cookie::build((name, value.to_owned()))
            .path(path)
            .http_only(true)
            .secure(self.tls)
            .same_site(same_site);
        if let Some(age) = max_age {
            cookie = cookie.max_age(age);
        }
        HeaderValue::from_str(&cookie.build().to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The session cookie: sent back only by this site's own pages.
const SESSION_COOKIE: (&str, &str, cookie::SameSite) = (COOKIE, "/console", cookie::SameSite::Strict);

/// The text blocks of a tool result, one per line.
pub(crate) fn output_text(output: &ToolOutput) -> String {
    output
        .content
        .iter()
        .filter_map(|content| match content {
            rampart_core::Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Builds the console's routes (all under `/console`).
pub(crate) fn router(parts: ConsoleParts) -> Router {
    let recent = Recent::start(&parts.guard);
    let console = Arc::new(Console {
        credentials: parts.credentials.clone(),
        guard: parts.guard,
        pipeline: parts.pipeline,
        store: parts.store,
        sessions: session::Sessions::default(),
        tls: parts.tls,
        recent,
        oidc: parts.credentials.jwt().and_then(|jwt| oidc::Oidc::new(jwt.config())),
        transports: parts.transports,
        audit: audit::AuditSettings::new(parts.audit_file, parts.audit_checkpoints),
    });
    let pages = Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/live", get(live::page))
        .route("/console/live/events", get(live::events))
        .route("/console/audit", get(audit::page))
        .route("/console/audit/record", get(audit::record))
        .route("/console/audit/verify", post(audit::verify))
        .route("/console/audit/export", get(audit::export))
        .route("/console/tokens", get(tokens::page).post(tokens::create))
        .route("/console/tokens/revoke", post(tokens::revoke))
        .route("/console/tokens/rotate", post(tokens::rotate))
        .route("/console/policy", get(policy::page))
        .route("/console/tools", get(tools::page))
        .route("/console/tools/{name}", get(tools::form).post(tools::call))
        .route("/console/upstreams", get(upstreams::page))
        .route("/console/upstreams/{name}/restart", post(upstreams::restart))
        .route("/console/upstreams/{name}/approve", post(upstreams::approve))
        .route("/console/server", get(server_page::page))
        .route("/console/logout", post(sign_out))
        .layer(middleware::from_fn_with_state(console.clone(), gate))
        .layer(middleware::from_fn(server_timing));
    Router::new()
        .route("/console/login", get(sign_in_page).post(sign_in))
        .route("/console/login/oidc", get(oidc::start))
        .route(oidc::CALLBACK, get(oidc::callback))
        .route("/console/assets/{file}", get(assets::serve))
        .merge(pages)
        .layer(middleware::map_response(security_headers))
        .with_state(console)
}

/// The headers of every console response.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `Server-Timing: app;dur=MS` on every page behind the gate: the server's time for it,
/// the gate included, to the first byte of the body (`bench/console_audit.py` reads it).
async fn server_timing(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// The value of the cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// The session id in the request's `Cookie` header.
fn session_id(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE)
}

fn remote(request: &Request) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0)
}

/// Not signed in: a page goes to the sign-in page (and back after), anything else is 401.
fn not_signed_in(request: &Request) -> Response {
    if request.method() == Method::GET && !request.uri().path().ends_with("/events") {
        let next = request.uri().path_and_query().map_or("/console", |p| p.as_str());
        let target = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
        return Redirect::to(&format!("/console/login?{target}")).into_response();
    }
    error_page(StatusCode::UNAUTHORIZED, "Sign in first: your console session is missing or has ended.")
}

/// The gate in front of every console page and API (see the module's documentation).
async fn gate(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    if let Err(refused) = console.same_origin(request.headers()) {
        return *refused;
    }
    let Some(id) = session_id(request.headers()) else { return not_signed_in(&request) };
    let Some(open) = console.sessions.get(&id) else { return not_signed_in(&request) };
    let principal = match console.credentials.authenticate(Some(&open.authorization), None).await {
        Ok(principal) => principal,
        Err(error) => {
            tracing::info!(reason = error.reason(), "console session ended: its credential no longer authenticates");
            console.sessions.close(&id);
            return not_signed_in(&request);
        }
    };
    let pages = console.pages_for(&principal.roles);
    if pages.is_empty() {
        console.sessions.close(&id);
        return error_page(StatusCode::FORBIDDEN, "Your roles grant no page of the console.");
    }
    if let Some(page) = Page::of_path(request.uri().path())
        && !pages.contains(&page)
    {
        return error_page(StatusCode::NOT_FOUND, "No such page.");
    }
    let caller = Caller {
        principal,
        transport: Transport::Console,
        session: None,
        remote_addr: remote(&request).map(|r| r.to_string()),
    };
    let request = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
    } else {
        match checked_csrf(request, &open.csrf).await {
            Ok(request) => request,
            Err(refused) => {
                console
                    .guard
                    .record_refusal(
                        &caller,
                        "console",
                        rampart_core::Outcome::Refused,
                        "a change without the session's CSRF token".into(),
                    )
                    .await;
                return refused;
            }
        }
    };
    let mut request = request;
    request.extensions_mut().insert(Signed { caller, csrf: open.csrf, pages, session: id });
    next.run(request).await
}

/// The request, if it carries `csrf` (header `x-csrf-token`, or form field `_csrf` of a
/// URL-encoded body, which is read here and handed on).
async fn checked_csrf(request: Request, csrf: &str) -> Result<Request, Response> {
    let matches = |token: &str| bool::from(token.as_bytes().ct_eq(csrf.as_bytes()));
    let refused =
        || error_page(StatusCode::FORBIDDEN, "This change did not carry the page's CSRF token; it was refused.");
    if let Some(token) = request.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return if matches(token) { Ok(request) } else { Err(refused()) };
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| error_page(StatusCode::PAYLOAD_TOO_LARGE, "This form is too large."))?;
    let token = url::form_urlencoded::parse(&bytes).find(|(name, _)| name == CSRF_FIELD).map(|(_, value)| value);
    match token {
        Some(token) if matches(&token) => Ok(Request::from_parts(parts, axum::body::Body::from(bytes))),
        _ => Err(refused()),
    }
}

/// `/console`: the first page the principal may see.
async fn home(axum::Extension(signed): axum::Extension<Signed>) -> Response {
    let first = signed.pages.first().copied().unwrap_or(Page::Server);
    Redirect::to(&first.path()).into_response()
}

/// `/console/login?next=…`: where to go after signing in.
#[derive(Deserialize, Default)]
struct SignInQuery {
    next: Option<String>,
}

/// Where to go after signing in: a console path of this server, never another site.
fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| n.starts_with("/console") && !n.starts_with("//") && !n.contains('\\') && !n.contains("://"))
}

async fn sign_in_page(State(console): State<Arc<Console>>, Query(query): Query<SignInQuery>) -> Response {
    layout::sign_in(StatusCode::OK, safe_next(query.next.as_deref()), None, console.sign_in_with())
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
    next: Option<String>,
}

/// `POST /console/login`: checks the credential like `/mcp` would, opens a session.
async fn sign_in(State(console): State<Arc<Console>>, request: Request) -> Response {
    if let Err(refused) = console.same_origin(request.headers()) {
        return *refused;
    }
    let remote = remote(&request);
    let Ok(Form(form)) = Form::<SignIn>::from_request(request, &()).await else {
        return layout::sign_in(
            StatusCode::BAD_REQUEST,
            None,
            Some("Paste an API token to sign in."),
            console.sign_in_with(),
        );
    };
    let authorization = format!("Bearer {}", form.token.trim());
    match console.open_session(authorization, remote, safe_next(form.next.as_deref())).await {
        Ok((cookie, target)) => {
            let mut response = Redirect::to(&target).into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(refused) => refused,
    }
}

impl Console {
    /// The issuer of the "Sign in with" button, when the console has one.
    pub(crate) fn sign_in_with(&self) -> Option<&str> {
        self.oidc.as_ref().map(oidc::Oidc::issuer)
    }

    /// Authenticates `authorization` as `/mcp` would (the failed-login throttle, a failure
    /// audited) and, if its roles grant a page, opens a session: its cookie, and where to
    /// go (`next`, else the first page granted). Otherwise the sign-in page saying why.
    async fn open_session(
        &self,
        authorization: String,
        remote: Option<SocketAddr>,
        next: Option<&str>,
    ) -> Result<(HeaderValue, String), Response> {
        let refuse =
            |status: StatusCode, message: &str| layout::sign_in(status, next, Some(message), self.sign_in_with());
        let checked =
            self.credentials.check(Some(&authorization), None, remote, "/console/login", Transport::Console).await;
        let principal = match checked {
            Ok(principal) => principal,
            Err(Refused::Throttled(wait)) => {
                let message =
                    format!("Too many failed sign-ins from this address; try again in {} s.", wait.as_secs().max(1));
                return Err(refuse(StatusCode::TOO_MANY_REQUESTS, &message));
            }
            Err(Refused::Failed(_)) => return Err(refuse(StatusCode::UNAUTHORIZED, "This token was not accepted.")),
        };
        let pages = self.pages_for(&principal.roles);
        if pages.is_empty() {
            let caller = Caller {
                principal,
                transport: Transport::Console,
                session: None,
                remote_addr: remote.map(|r| r.to_string()),
            };
            let detail = "sign-in refused: no role grants a console page (scopes.console)".to_owned();
            self.guard.record_refusal(&caller, "console", rampart_core::Outcome::Denied, detail).await;
            return Err(refuse(StatusCode::FORBIDDEN, "This token's roles grant no console page (scopes.console)."));
        }
        tracing::info!(principal = %principal.id, remote = ?remote, "console sign-in");
        let caller = Caller {
            principal,
            transport: Transport::Console,
            session: None,
            remote_addr: remote.map(|r| r.to_string()),
        };
        let granted = pages.iter().map(|page| page.name()).collect::<Vec<_>>().join(", ");
        self.guard.record_console_session(&caller, "sign-in", format!("console pages: {granted}")).await;
        let id = self.sessions.open(authorization);
        let target = next.map_or_else(|| pages[0].path(), str::to_owned);
        Ok((self.set_cookie(SESSION_COOKIE, &id, None), target))
    }
}

/// `POST /console/logout`.
async fn sign_out(
    State(console): State<Arc<Console>>,
    axum::Extension(signed): axum::Extension<Signed>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = session_id(&headers) {
        console.sessions.close(&id);
    }
    console.guard.record_console_session(&signed.caller, "sign-out", "signed out".into()).await;
    let mut response = Redirect::to("/console/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, console.set_cookie(SESSION_COOKIE, "", Some(cookie::time::Duration::ZERO)));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn pages_by_path() {
        assert_eq!(Page::of_path("/console/tools/x"), Some(Page::Tools));
        assert_eq!(Page::of_path("/console/tokens"), Some(Page::Tokens));
        assert_eq!(Page::of_path("/console/login"), None);
        assert_eq!(Page::of_path("/console"), None);
    }

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(safe_next(Some("/console/audit?x=1")), Some("/console/audit?x=1"));
        for bad in ["//evil.example/console", "https://evil.example/", "/other", "/console\\..", "/console@x://"] {
            assert_eq!(safe_next(Some(bad)), None, "{bad}");
        }
    }
}
