//! The client under test of the official MCP conformance suite's client scenarios
//! (`@modelcontextprotocol/conformance`, `conformance client --command …`): Rampart's
//! [`McpClient`], the client of the `rampart` CLI and of the gateway, driven the way each
//! scenario asks. `scripts/conformance-client.sh` runs it; by hand:
//!
//! ```sh
//! cargo build --example conformance_client -p rampart-mcp
//! conformance client --command target/debug/examples/conformance_client --scenario tools_call
//! ```
//!
//! The runner starts a test server and runs `conformance_client URL` with the scenario's
//! name in `MCP_CONFORMANCE_SCENARIO` and, for some, its data (client credentials) as JSON
//! in `MCP_CONFORMANCE_CONTEXT`. The exit status says whether the client got through; the
//! runner's own checks say whether it behaved. A scenario this client does not take part
//! in (an OAuth authorization-code flow: Rampart's client has none) exits 2.
//!
//! `RUST_LOG=debug` shows rmcp's view of the exchange on stderr.

use std::{process::ExitCode, sync::Arc, time::Duration};

use async_trait::async_trait;
use rampart_core::PeerError;
use rampart_mcp::{ClientEvents, ClientTarget, ConnectOptions, McpClient, ServerNotice};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _};

/// Longest wait for one tool call (sse-retry's answer comes after a 500 ms reconnect).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for one OAuth discovery or token request.
const OAUTH_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    // RUST_LOG as `target=level` directives; warnings only without it.
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::WARN));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter))
        .init();
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    // The runner appends the server's URL last.
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("usage: MCP_CONFORMANCE_SCENARIO=NAME conformance_client URL");
        return ExitCode::from(2);
    };
    let outcome = match scenario.as_str() {
        "initialize" => initialize(&url).await,
        "tools_call" => tools_call(&url).await,
        "elicitation-sep1034-client-defaults" => elicitation_defaults(&url).await,
        "sse-retry" => sse_retry(&url).await,
        "auth/client-credentials-basic" => client_credentials(&url).await,
        other => {
            eprintln!("conformance_client: scenario '{other}' is not one this client takes part in");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("conformance_client: {scenario}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn http(url: &str) -> ClientTarget {
    ClientTarget::Http { url: url.to_owned(), token: None }
}

fn options(events: Option<Arc<dyn ClientEvents>>) -> ConnectOptions {
    ConnectOptions { client_name: Some("rampart-conformance-client".into()), events, ..ConnectOptions::default() }
}

/// The handshake, then `tools/list`.
async fn initialize(url: &str) -> Result<(), String> {
    let client = McpClient::connect_with(&http(url), options(None)).await.map_err(|e| e.to_string())?;
    client.list_tools().await.map_err(|e| e.to_string())?;
    client.close().await;
    Ok(())
}

/// Calls `tool` with `arguments` (within [`CALL_TIMEOUT`]) and returns its text content;
/// a result with `isError: true` is an error.
async fn call(client: &McpClient, tool: &str, arguments: Value) -> Result<String, String> {
    let tools = client.list_tools().await.map_err(|e| e.to_string())?;
    if !tools.iter().any(|t| t.name == tool) {
        return Err(format!("the server does not list the tool {tool}"));
    }
    let Value::Object(arguments) = arguments else { return Err("arguments must be an object".into()) };
    let cancel = CancellationToken::new();
    let call = client.call_tool_with(tool, arguments, None, &cancel);
    let result = tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| format!("{tool}: no answer within {}s", CALL_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{tool}: {e}"))?;
    let text: Vec<&str> =
        result["content"].as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect();
    let text = text.join("\n");
    if result["isError"] == json!(true) {
        return Err(format!("{tool} failed: {text}"));
    }
    Ok(text)
}

/// `add_numbers{a, b}`, whose answer must carry the sum.
async fn tools_call(url: &str) -> Result<(), String> {
    let client = McpClient::connect_with(&http(url), options(None)).await.map_err(|e| e.to_string())?;
    let text = call(&client, "add_numbers", json!({ "a": 5, "b": 3 })).await?;
    client.close().await;
    if !text.contains('8') {
        return Err(format!("add_numbers(5, 3) answered '{text}'"));
    }
    Ok(())
}

/// A tool that asks for `elicitation/create` (SEP-1034: a schema whose fields carry
/// defaults), answered by [`DefaultsUser`].
async fn elicitation_defaults(url: &str) -> Result<(), String> {
    let events: Arc<dyn ClientEvents> = Arc::new(DefaultsUser);
    let client = McpClient::connect_with(&http(url), options(Some(events))).await.map_err(|e| e.to_string())?;
    let text = call(&client, "test_client_elicitation_defaults", json!({})).await?;
    client.close().await;
    if !text.starts_with("Elicitation completed") {
        return Err(format!("test_client_elicitation_defaults answered '{text}'"));
    }
    Ok(())
}

/// A user who accepts every elicitation with the form as the server filled it in: each
/// field of `requestedSchema` that has a `default` (MCP 2025-11-25 "Elicitation",
/// SEP-1034) gets it, and fields without one stay out. Sampling and anything else is not
/// offered.
struct DefaultsUser;

#[async_trait]
impl ClientEvents for DefaultsUser {
    fn notice(&self, _: ServerNotice) {}

    async fn request(&self, method: &str, params: Value) -> Result<Value, PeerError> {
        if method != "elicitation/create" {
            return Err(PeerError::Unsupported);
        }
        Ok(json!({ "action": "accept", "content": defaults(&params["requestedSchema"]) }))
    }
}

/// `{field: default}` for each property of an elicitation schema that has a default.
fn defaults(schema: &Value) -> Map<String, Value> {
    let properties = schema["properties"].as_object().into_iter().flatten();
    properties.filter_map(|(name, field)| Some((name.clone(), field.get("default")?.clone()))).collect()
}

/// `test_reconnection`: the server closes the call's SSE stream after a priming event
/// with `retry: 500`; the client must come back with a GET after 500 ms, carrying
/// `Last-Event-ID`, and get the answer there (SEP-1699). rmcp's streamable HTTP client
/// does this by itself.
async fn sse_retry(url: &str) -> Result<(), String> {
    let client = McpClient::connect_with(&http(url), options(None)).await.map_err(|e| e.to_string())?;
    let text = call(&client, "test_reconnection", json!({})).await?;
    client.close().await;
    if !text.contains("completed successfully") {
        return Err(format!("test_reconnection answered '{text}'"));
    }
    Ok(())
}

/// An access token by the OAuth client credentials grant, the way the gateway gets one
/// for an upstream (`[upstreams.NAME.oauth]`), then the MCP exchange with it as a bearer
/// token, sent the way the gateway sends it. The gateway is told its token endpoint; here it is discovered from the server's
/// 401 (MCP 2025-11-25 "Authorization": RFC 9728 protected resource metadata, then RFC
/// 8414 authorization server metadata).
async fn client_credentials(url: &str) -> Result<(), String> {
    let context = std::env::var("MCP_CONFORMANCE_CONTEXT").map_err(|_| "MCP_CONFORMANCE_CONTEXT is not set")?;
    let context: Value = serde_json::from_str(&context).map_err(|e| format!("MCP_CONFORMANCE_CONTEXT: {e}"))?;
    let field = |name: &str| {
        context[name].as_str().map(str::to_owned).ok_or_else(|| format!("MCP_CONFORMANCE_CONTEXT has no {name}"))
    };
    let (client_id, client_secret) = (field("client_id")?, field("client_secret")?);
    let http_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(OAUTH_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let token = oauth::client_credentials(&http_client, url, &client_id, &client_secret).await?;
    // As the gateway sends it (rampart-gateway's upstream.rs): a header on every request.
    let mut with_token = options(None);
    with_token.headers.push(("Authorization".into(), format!("Bearer {token}")));
    let client = McpClient::connect_with(&http(url), with_token).await.map_err(|e| e.to_string())?;
    client.list_tools().await.map_err(|e| e.to_string())?;
    client.close().await;
    Ok(())
}

/// OAuth discovery and the client credentials grant, as small as the scenario needs.
mod oauth {
    use reqwest::{StatusCode, Url, header};
    use serde_json::{Value, json};

    /// What the MCP server's 401 and its protected resource metadata say.
    struct Resource {
        /// RFC 8707 `resource`: the server's canonical URI.
        resource: String,
        /// The first of `authorization_servers`.
        issuer: String,
        /// Scopes to ask for: the 401's `scope`, else `scopes_supported`.
        scope: Option<String>,
    }

    /// An access token for `url` by the client credentials grant (RFC 6749 §4.4).
    pub(super) async fn client_credentials(
        http: &reqwest::Client,
        url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<String, String> {
        let resource = protected_resource(http, url).await?;
        let metadata = authorization_server(http, &resource.issuer).await?;
        let endpoint =
            metadata["token_endpoint"].as_str().ok_or("the authorization server metadata has no token_endpoint")?;
        // RFC 8414 §2: without the field, client_secret_basic is the default.
        let methods = metadata["token_endpoint_auth_methods_supported"].as_array();
        let supports = |method: &str| methods.is_none_or(|m| m.iter().any(|x| x == method));
        let mut form = vec![("grant_type", "client_credentials"), ("resource", resource.resource.as_str())];
        if let Some(scope) = &resource.scope {
            form.push(("scope", scope));
        }
        let mut request = http.post(endpoint).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if supports("client_secret_basic") {
            // RFC 6749 §2.3.1: each part form-urlencoded, then Basic.
            request = request.basic_auth(urlencode(client_id), Some(urlencode(client_secret)));
        } else if supports("client_secret_post") {
            form.extend([("client_id", client_id), ("client_secret", client_secret)]);
        } else {
            return Err(format!(
                "the token endpoint takes none of client_secret_basic, client_secret_post: {methods:?}"
            ));
        }
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        let response = request.body(body.join("&")).send().await.map_err(|e| format!("{endpoint}: {e}"))?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|e| format!("{endpoint}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{endpoint} refused the client credentials ({status}): {answer}"));
        }
        match (answer["access_token"].as_str(), answer["token_type"].as_str()) {
            (Some(token), Some(kind)) if kind.eq_ignore_ascii_case("bearer") => Ok(token.to_owned()),
            _ => Err(format!("{endpoint} answered no bearer token: {answer}")),
        }
    }

    /// Asks the MCP server without credentials; its 401 names the protected resource
    /// metadata (RFC 9728 §5.1), else that is at the well-known URIs of MCP 2025-11-25
    /// "Protected Resource Metadata Discovery".
    async fn protected_resource(http: &reqwest::Client, url: &str) -> Result<Resource, String> {
        let initialize = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": { "name": "rampart-conformance-client", "version": "0" } },
        });
        let response = http
            .post(url)
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(&initialize)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Err(format!("{url} answered {} without credentials, not 401", response.status()));
        }
        let challenge = response.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let base = Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let candidates = match parameter(challenge, "resource_metadata") {
            Some(metadata) => vec![metadata],
            None => well_known(&base, "oauth-protected-resource"),
        };
        let metadata = first_json(http, &candidates).await?;
        let resource = metadata["resource"].as_str().ok_or("the protected resource metadata has no resource")?;
        // RFC 9728 §3.3: metadata for another resource must not be used.
        if !same_resource(resource, url) {
            return Err(format!("the protected resource metadata is for {resource}, not {url}"));
        }
        let issuer = metadata["authorization_servers"][0]
            .as_str()
            .ok_or("the protected resource metadata names no authorization server")?;
        let scopes_supported = metadata["scopes_supported"]
            .as_array()
            .map(|scopes| scopes.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "));
        Ok(Resource {
            resource: resource.to_owned(),
            issuer: issuer.to_owned(),
            scope: parameter(challenge, "scope").or(scopes_supported).filter(|s| !s.is_empty()),
        })
    }

    /// The authorization server's metadata: RFC 8414, then OpenID Connect Discovery, at
    /// the URIs MCP 2025-11-25 "Authorization Server Metadata Discovery" lists.
    async fn authorization_server(http: &reqwest::Client, issuer: &str) -> Result<Value, String> {
        let base = Url::parse(issuer).map_err(|e| format!("authorization server {issuer}: {e}"))?;
        let mut candidates = well_known(&base, "oauth-authorization-server");
        candidates.extend(well_known(&base, "openid-configuration"));
        if !base.path().trim_end_matches('/').is_empty() {
            candidates.push(format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')));
        }
        first_json(http, &candidates).await
    }

    /// `{origin}/.well-known/{name}{path}`, then `{origin}/.well-known/{name}` when the
    /// path is not empty.
    fn well_known(base: &Url, name: &str) -> Vec<String> {
        let origin = base.origin().ascii_serialization();
        let path = base.path().trim_end_matches('/');
        let mut uris = vec![format!("{origin}/.well-known/{name}{path}")];
        if !path.is_empty() {
            uris.push(format!("{origin}/.well-known/{name}"));
        }
        uris
    }

    /// The first of `uris` that answers 200 with a JSON object.
    async fn first_json(http: &reqwest::Client, uris: &[String]) -> Result<Value, String> {
        let mut tried = Vec::new();
        for uri in uris {
            match http.get(uri).header(header::ACCEPT, "application/json").send().await {
                Ok(response) if response.status().is_success() => {
                    if let Ok(value @ Value::Object(_)) = response.json::<Value>().await {
                        return Ok(value);
                    }
                    tried.push(format!("{uri}: not a JSON object"));
                }
                Ok(response) => tried.push(format!("{uri}: {}", response.status())),
                Err(error) => tried.push(format!("{uri}: {error}")),
            }
        }
        Err(format!("no metadata found ({})", tried.join("; ")))
    }

    /// A parameter of a `WWW-Authenticate: Bearer k="v", …` challenge (RFC 6750 §3).
    fn parameter(challenge: &str, name: &str) -> Option<String> {
        let rest = challenge.split_once(' ').map_or(challenge, |(_, rest)| rest);
        rest.split(',').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim().eq_ignore_ascii_case(name)).then(|| value.trim().trim_matches('"').to_owned())
        })
    }

    /// Whether two resource URIs name the same resource (a trailing slash aside).
    fn same_resource(a: &str, b: &str) -> bool {
        a.trim_end_matches('/') == b.trim_end_matches('/')
    }

    /// `application/x-www-form-urlencoded` encoding of one value.
    fn urlencode(value: &str) -> String {
        value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => (b as char).to_string(),
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
}
