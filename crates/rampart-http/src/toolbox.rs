//! [`HttpToolbox`]: the tools, their arguments, the policy checks, the credential
//! injection, and the one place where request failures become tool errors.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use base64::Engine as _;
use futures::future::BoxFuture;
use globset::GlobSet;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use rampart_core::{
    CallContext, NoArguments, Request, Routes, ServiceStatus, Structured, ToolAnnotations, ToolError, ToolOutput,
    ToolRouter, ToolSpec, Toolbox,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use url::Url;

use crate::{
    client::{Endpoint, Outgoing, Received, RequestError},
    config::{self, ApiConfig, AuthConfig, HttpConfig, HttpConfigError},
    fetch::{self, FetchArguments, Fetcher},
    openapi::{self, Operation},
    path,
    redact::Secrets,
    response::HttpResponse,
    ssrf::Policy,
};

/// The tools every configuration has (and `http_fetch`); generated names may not take them.
const BUILTIN_TOOLS: [&str; 3] = ["http_list_apis", "http_request", "http_fetch"];
/// How long `/readyz` waits for each API.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// The `http` toolbox.
pub struct HttpToolbox {
    apis: BTreeMap<String, Api>,
    fetch: Option<Fetcher>,
    operations: BTreeMap<String, Operation>,
    tools: ToolRouter<Self>,
}

/// Names and base URLs only (the configuration holds no secret, but keep it short).
impl std::fmt::Debug for HttpToolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let apis: BTreeMap<&String, &str> = self.apis.iter().map(|(name, api)| (name, api.base.as_str())).collect();
        f.debug_struct("HttpToolbox")
            .field("apis", &apis)
            .field("fetch", &self.fetch.is_some())
            .field("operations", &self.operations.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One configured API, ready to call.
pub(crate) struct Api {
    pub(crate) name: String,
    pub(crate) config: ApiConfig,
    pub(crate) base: Url,
    methods: Vec<String>,
    paths: GlobSet,
    headers: HeaderMap,
    endpoint: Endpoint,
}

impl HttpToolbox {
    /// The toolbox for the `[http]` table of `rampart.toml` (as JSON). Builds one guarded
    /// client per API and reads the OpenAPI documents; connects to nothing. Credentials
    /// are read from the environment at each request, so a missing variable is reported
    /// by `/readyz` and by the calls, not here.
    ///
    /// # Errors
    /// [`HttpConfigError`] naming the offending key: an unknown key, a bad URL, method,
    /// glob or header, an unreadable OpenAPI document.
    pub fn from_config(value: Value) -> Result<Self, HttpConfigError> {
        Self::new(HttpConfig::from_value(value)?)
    }

    /// The toolbox for an already validated [`HttpConfig`].
    ///
    /// # Errors
    /// As [`HttpToolbox::from_config`].
    pub fn new(config: HttpConfig) -> Result<Self, HttpConfigError> {
        let mut apis = BTreeMap::new();
        let mut operations = BTreeMap::new();
        for (name, api) in config.apis {
            let api = Api::new(name.clone(), api)?;
            if let Some(document) = &api.config.openapi {
                for operation in openapi::load(&name, document, &api.methods)? {
                    if BUILTIN_TOOLS.contains(&operation.tool.as_str()) || operations.contains_key(&operation.tool) {
                        return Err(HttpConfigError::Value {
                            key: format!("http.apis.{name}.openapi"),
                            message: format!("the tool name '{}' is already taken", operation.tool),
                        });
                    }
                    operations.insert(operation.tool.clone(), operation);
                }
            }
            apis.insert(name, api);
        }
        let fetch = if config.fetch.enabled { Some(Fetcher::new(config.fetch)?) } else { None };
        let tools = Self::tools(fetch.is_some(), operations.values());
        Ok(Self { apis, fetch, operations, tools })
    }

    /// The tools, each a method below: `http_fetch` when enabled, and one tool per
    /// OpenAPI operation, whose schema comes from the document.
    fn tools<'a>(fetch: bool, operations: impl Iterator<Item = &'a Operation>) -> ToolRouter<Self> {
        let mut tools = ToolRouter::new()
            .tool(
                ToolSpec::named(
                    "http_list_apis",
                    "List the configured HTTP APIs you may call: name, base URL, allowed methods and path globs.",
                )
                .title("List HTTP APIs")
                .read_only(),
                Self::list_apis,
            )
            .tool(
                ToolSpec::named(
                    "http_request",
                    "Call a configured HTTP API: method and path (below its base URL, within its allowed methods \
                     and paths), optional query parameters and JSON body. Credentials are added server-side. \
                     Returns the status, selected headers and the body (parsed when JSON, truncated at the API's \
                     size limit); a non-2xx status is an error result that still carries the response.",
                )
                .title("Call an HTTP API")
                .output::<HttpResponse>()
                .annotations(ToolAnnotations::write().destructive(true).open_world(true)),
                Self::request,
            );
        if fetch {
            tools = tools.tool(fetch::spec(), Self::fetch);
        }
        for operation in operations {
            tools = tools.dynamic_tool(operation.spec(), operation_tool(operation.clone()));
        }
        tools
    }

    /// Asks the policy, then finds the API: an unknown name and a forbidden one are both
    /// refused by the policy unless a scope matches the name.
    fn api(&self, context: &CallContext, name: &str) -> Result<&Api, ToolError> {
        context.authorize(&Request::http_api(name))?;
        self.apis.get(name).ok_or_else(|| {
            ToolError::Failed(format!("unknown api '{name}': http_list_apis lists the ones you may use"))
        })
    }
}

impl Api {
    fn new(name: String, config: ApiConfig) -> Result<Self, HttpConfigError> {
        let key = format!("http.apis.{name}");
        let value_error =
            |field: &str, message: String| HttpConfigError::Value { key: format!("{key}{field}"), message };
        let base = config::base_url(&config.base_url).map_err(|message| value_error(".base_url", message))?;
        let paths = config::path_globs(&config.paths)
            .map_err(|(index, message)| value_error(&format!(".paths[{index}]"), message))?;
        let mut headers = HeaderMap::new();
        for (header, value) in &config.headers {
            let parsed = HeaderName::from_bytes(header.as_bytes()).ok().zip(HeaderValue::from_str(value).ok());
            let (header, value) = parsed.ok_or_else(|| value_error(&format!(".headers.{header}"), "invalid".into()))?;
            headers.insert(header, value);
        }
        let policy = Policy::new(base.port(), config.allow_private.then(|| base.origin()));
        let endpoint = Endpoint::new(policy, Duration::from_millis(config.timeout_ms), config.max_response_bytes)
            .map_err(|message| value_error("", format!("cannot build the HTTP client: {message}")))?;
        Ok(Self { methods: config.method_list(), name, config, base, paths, headers, endpoint })
    }

    /// The configured headers plus the credential read from the environment now, and the
    /// secret's forms to hide.
    fn origin_headers(&self) -> Result<(HeaderMap, Secrets), ToolError> {
        let mut headers = self.headers.clone();
        let Some(auth) = &self.config.auth else { return Ok((headers, Secrets::default())) };
        let unavailable = || {
            ToolError::Failed(format!(
                "api '{}': its credential is not available (the environment variable {} is not set or not \
                 valid); ask the operator",
                self.name,
                auth.env()
            ))
        };
        let secret = std::env::var(auth.env()).ok().filter(|secret| !secret.is_empty()).ok_or_else(unavailable)?;
        let (name, value, mut forms) = match auth {
            AuthConfig::Bearer { .. } => (http::header::AUTHORIZATION, format!("Bearer {secret}"), vec![]),
            AuthConfig::Basic { user, .. } => {
                let pair = format!("{user}:{secret}");
                let encoded = base64::engine::general_purpose::STANDARD.encode(&pair);
                (http::header::AUTHORIZATION, format!("Basic {encoded}"), vec![pair, encoded])
            }
            AuthConfig::Header { name, .. } => {
                (HeaderName::from_bytes(name.as_bytes()).map_err(|_| unavailable())?, secret.clone(), vec![])
            }
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| unavailable())?;
        value.set_sensitive(true);
        headers.insert(name, value);
        forms.push(secret);
        Ok((headers, Secrets::new(forms)))
    }

    /// Checks the method and the path against the allowlists.
    fn check(&self, method: &str, path: &str) -> Result<(Method, String), ToolError> {
        let method = method.to_ascii_uppercase();
        if !self.methods.contains(&method) {
            return Err(ToolError::Failed(format!(
                "method {method} is not allowed for api '{}' (allowed: {})",
                self.name,
                self.methods.join(", ")
            )));
        }
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ToolError::InvalidArguments(format!("method: '{method}' is not a method")))?;
        let decoded = path::decoded(path).map_err(|reason| ToolError::Failed(format!("path refused: {reason}")))?;
        if !self.paths.is_match(&decoded) {
            return Err(ToolError::Failed(format!(
                "path '{decoded}' is not allowed for api '{}' (allowed: {})",
                self.name,
                self.config.paths.join(", ")
            )));
        }
        Ok((method, decoded))
    }

    /// Checks, sends and renders one request (in a client span, while spans are exported).
    /// Everything returned is redacted.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        query: Option<&Map<String, Value>>,
        json_body: Option<&Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let (method, decoded) = self.check(method, path)?;
        if json_body.is_some() && matches!(method, Method::GET | Method::HEAD) {
            return Err(ToolError::InvalidArguments(format!("json_body: a {method} request has no body")));
        }
        let json_body = json_body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|error| ToolError::InvalidArguments(format!("json_body: {error}")))?;
        let url = path::join(&self.base, path, query).map_err(ToolError::InvalidArguments)?;
        let (mut origin_headers, secrets) = self.origin_headers()?;
        // Disabled unless spans are exported; then the API gets its `traceparent` (sent to
        // the API's origin only, like its configured headers), and nothing else of the call.
        let span = tracing::info_span!(
            target: rampart_core::TRACE_TARGET,
            "http",
            otel.name = %format_args!("{method} {}", self.name),
            otel.kind = "client",
            http.request.method = %method,
            url.path = %decoded,
            rampart.api = self.name.as_str(),
            http.response.status_code = tracing::field::Empty,
        );
        if let Some(traceparent) = traceparent_of(&span) {
            origin_headers.insert(HeaderName::from_static(TRACEPARENT), traceparent);
        }
        let outgoing = Outgoing { method: method.clone(), url, json_body, origin: self.base.origin(), origin_headers };
        let started = std::time::Instant::now();
        let received = tokio::select! {
            received = self.endpoint.send(outgoing, &|_| Ok(())).instrument(span.clone()) => received,
            () = context.cancellation.cancelled() => return Err(ToolError::Cancelled),
        };
        if let Ok(received) = &received
            && !span.is_disabled()
        {
            span.record("http.response.status_code", received.status.as_u16());
        }
        let elapsed_ms = started.elapsed().as_millis();
        let received = received.map_err(|error| {
            let error = request_error(&format!("api '{}'", self.name), &error, &secrets);
            tracing::info!(api = %self.name, %method, path = %decoded, elapsed_ms, %error, "http request failed");
            error
        })?;
        tracing::debug!(api = %self.name, %method, path = %decoded, status = received.status.as_u16(), elapsed_ms,
            truncated = received.truncated, "http request");
        self.output(&received, &secrets)
    }

    fn output(&self, received: &Received, secrets: &Secrets) -> Result<ToolOutput, ToolError> {
        let response = HttpResponse::new(received, secrets);
        let reason = received.status.canonical_reason().unwrap_or_default();
        let text = response.text(reason, self.config.max_response_bytes);
        let mut output = ToolOutput::structured(&response, text)?;
        output.is_error = !received.status.is_success();
        Ok(output)
    }

    async fn readiness(&self) -> ServiceStatus {
        let name = format!("http:{}", self.name);
        if let Some(auth) = &self.config.auth
            && std::env::var(auth.env()).map_or(true, |secret| secret.is_empty())
        {
            let detail = format!("the credential variable {} is not set", auth.env());
            return ServiceStatus { name, ok: false, detail: Some(detail) };
        }
        let outgoing = Outgoing {
            method: Method::HEAD,
            url: self.base.clone(),
            json_body: None,
            origin: self.base.origin(),
            origin_headers: HeaderMap::new(),
        };
        let (ok, detail) =
            match tokio::time::timeout(READINESS_TIMEOUT, self.endpoint.send(outgoing, &|_| Ok(()))).await {
                Ok(Ok(received)) => (true, format!("{} answers HTTP {}", self.base, received.status.as_u16())),
                Ok(Err(error)) => (false, request_error(self.base.as_str(), &error, &Secrets::default()).to_string()),
                Err(_) => (false, format!("{}: no answer within {} s", self.base, READINESS_TIMEOUT.as_secs())),
            };
        ServiceStatus { name, ok, detail: Some(detail) }
    }
}

/// The one mapping from request failures to tool errors, each message starting with its
/// class (`refused:`, `timeout:`, `connection:`) and redacted.
/// The W3C Trace Context header: the only data of a call's trace an API is sent.
const TRACEPARENT: &str = "traceparent";

/// `span`'s `traceparent` (through the installed propagator), when it is exported.
fn traceparent_of(span: &tracing::Span) -> Option<HeaderValue> {
    struct Capture(Option<String>);
    impl opentelemetry::propagation::Injector for Capture {
        fn set(&mut self, key: &str, value: String) {
            if key == TRACEPARENT {
                self.0 = Some(value);
            }
        }
    }
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let mut capture = Capture(None);
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut capture));
    capture.0.and_then(|value| HeaderValue::from_str(&value).ok())
}

pub(crate) fn request_error(target: &str, error: &RequestError, secrets: &Secrets) -> ToolError {
    let message = match error {
        RequestError::Refused(reason) => format!("refused: the request to {target} was blocked: {reason}"),
        RequestError::Timeout(timeout) => {
            format!("timeout: {target} did not answer completely within {} ms", timeout.as_millis())
        }
        RequestError::Connection(detail) => format!("connection: could not reach {target}: {detail}"),
        RequestError::TooManyRedirects => {
            format!("refused: {target} redirected more than {} times", crate::client::MAX_REDIRECTS)
        }
    };
    ToolError::Failed(secrets.redact(&message))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RequestArguments {
    /// Configured API name (see http_list_apis).
    api: String,
    /// HTTP method, one of the API's allowed methods (e.g. GET).
    method: String,
    /// Path below the API's base URL, starting with '/', e.g. '/repos/rust-lang/rust'.
    /// Percent-encode reserved characters inside a segment; no '..', no query string.
    path: String,
    /// Query parameters: values are strings, numbers, booleans, or arrays of them
    /// (repeated keys).
    #[serde(default)]
    query: Option<Map<String, Value>>,
    /// A JSON request body (not for GET or HEAD).
    #[serde(default)]
    json_body: Option<Value>,
}

/// `http_list_apis` result.
#[derive(Serialize, JsonSchema)]
struct ApiList {
    /// APIs the caller may use.
    apis: Vec<ApiEntry>,
    /// Hosts `http_fetch` may read, when it is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    fetch_hosts: Option<Vec<String>>,
}

/// One configured API (never its credential).
#[derive(Serialize, JsonSchema)]
struct ApiEntry {
    /// Name to pass as `api`.
    name: String,
    /// What the API is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Requests go below this URL.
    base_url: String,
    /// Allowed methods.
    methods: Vec<String>,
    /// Allowed path globs ('*' within a segment, '**' across segments).
    paths: Vec<String>,
    /// Whether a credential is added server-side (you never see or send it).
    authenticated: bool,
    /// Time limit of one call, ms.
    timeout_ms: u64,
    /// Bodies longer than this many bytes are truncated.
    max_response_bytes: u64,
    /// Tools generated from the API's OpenAPI document.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<String>,
}

#[async_trait]
impl Toolbox for HttpToolbox {
    fn name(&self) -> &str {
        "http"
    }

    fn routes(&self) -> Option<Routes<'_>> {
        Some(self.tools.bind(self))
    }

    async fn readiness(&self) -> Vec<ServiceStatus> {
        futures::future::join_all(self.apis.values().map(Api::readiness)).await
    }
}

impl HttpToolbox {
    async fn list_apis(&self, _: NoArguments, context: &CallContext) -> Result<Structured<ApiList>, ToolError> {
        let apis = self
            .apis
            .values()
            .filter(|api| context.authorize(&Request::http_api(api.name.as_str())).is_ok())
            .map(|api| ApiEntry {
                name: api.name.clone(),
                description: api.config.description.clone(),
                base_url: api.base.to_string(),
                methods: api.methods.clone(),
                paths: api.config.paths.clone(),
                authenticated: api.config.auth.is_some(),
                timeout_ms: api.config.timeout_ms,
                max_response_bytes: api.config.max_response_bytes,
                tools: self.operations.values().filter(|op| op.api == api.name).map(|op| op.tool.clone()).collect(),
            })
            .collect();
        let fetch_hosts = self.fetch.as_ref().map(Fetcher::hosts);
        Ok(Structured(ApiList { apis, fetch_hosts }))
    }

    /// The response, an error result for a non-2xx status; `HttpResponse`'s schema is set
    /// on the spec.
    async fn request(&self, arguments: RequestArguments, context: &CallContext) -> Result<ToolOutput, ToolError> {
        let api = self.api(context, &arguments.api)?;
        let (query, body) = (arguments.query.as_ref(), arguments.json_body.as_ref());
        api.request(&arguments.method, &arguments.path, query, body, context).await
    }

    /// `http_fetch`, served only when `[http.fetch]` is enabled.
    async fn fetch(&self, arguments: FetchArguments, context: &CallContext) -> Result<ToolOutput, ToolError> {
        let fetcher = self.fetch.as_ref().ok_or_else(|| ToolError::NotFound("tool 'http_fetch'".into()))?;
        fetcher.call(arguments, context).await
    }
}

/// What the function of an OpenAPI operation's tool returns.
type OperationCall<'a> = BoxFuture<'a, Result<ToolOutput, ToolError>>;

/// The function of an OpenAPI operation's tool: asks the policy about its API, then
/// sends the same checked request as `http_request`. A closure, to know its operation
/// (the router hands a function no tool name), so its future is boxed.
fn operation_tool(
    operation: Operation,
) -> impl for<'a> Fn(&'a HttpToolbox, Map<String, Value>, &'a CallContext) -> OperationCall<'a> + Send + Sync {
    move |toolbox, arguments, context| {
        let checked = toolbox.api(context, &operation.api).and_then(|api| Ok((api, operation.prepare(arguments)?)));
        Box::pin(async move {
            let (api, call) = checked?;
            api.request(&call.method, &call.path, Some(&call.query), call.body.as_ref(), context).await
        })
    }
}
