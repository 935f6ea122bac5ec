//! `http_fetch`: read a web page on an allowed host, HTML converted to Markdown, in the
//! manner of the reference MCP fetch server (`max_length`, `start_index`, `raw`). Off by
//! default; every hop must stay on the host allowlist and pass the SSRF guard, no
//! credential is ever sent, and the policy is asked for the API scope `fetch:HOST`.

use globset::GlobSet;
use http::{HeaderMap, HeaderValue, Method, header};
use rampart_core::{CallContext, Request, ToolAnnotations, ToolError, ToolOutput, ToolSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    client::{Endpoint, Outgoing, Received},
    config::{self, FetchConfig, HttpConfigError},
    redact::Secrets,
    response::media_type,
    ssrf::{Policy, Refused},
    toolbox::request_error,
};

/// `max_length` when the caller gives none (as the reference server).
const DEFAULT_MAX_LENGTH: usize = 5000;
/// The largest `max_length` accepted, in characters.
const MAX_LENGTH_LIMIT: usize = 1_000_000;
/// Elements dropped from HTML before conversion.
const SKIPPED_TAGS: [&str; 9] = ["script", "style", "noscript", "template", "iframe", "svg", "head", "nav", "form"];

/// The fetch tool, when `[http.fetch] enabled = true`.
pub(crate) struct Fetcher {
    config: FetchConfig,
    hosts: GlobSet,
    endpoint: Endpoint,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FetchArguments {
    /// http(s) URL on one of the allowed hosts (see http_list_apis).
    url: String,
    /// Return at most this many characters (default 5000).
    #[serde(default)]
    max_length: Option<usize>,
    /// Start at this character, to continue a truncated page (default 0).
    #[serde(default)]
    start_index: Option<usize>,
    /// Return the page as received instead of converting HTML to Markdown.
    #[serde(default)]
    raw: bool,
}

/// `http_fetch` result.
#[derive(Serialize, JsonSchema)]
struct FetchResult {
    /// The URL read (after redirects).
    url: String,
    /// HTTP status code.
    status: u16,
    /// The response's media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    /// The page (Markdown for HTML unless `raw`), from `start_index`, at most `max_length`
    /// characters.
    content: String,
    /// Where to start the next call when there is more, else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_start_index: Option<usize>,
    /// Whether the body itself was cut at the server's byte limit.
    body_truncated: bool,
}

/// The tool's description; its input schema is `FetchArguments`'.
pub(crate) fn spec() -> ToolSpec {
    ToolSpec::named(
        "http_fetch",
        "Fetch a web page from an allowed host and return its content, HTML converted to Markdown. Long pages are \
         returned in parts: call again with start_index to read on.",
    )
    .title("Fetch a web page")
    .output::<FetchResult>()
    .annotations(ToolAnnotations::read_only().open_world(true))
}

impl Fetcher {
    /// The fetch tool for a validated `[http.fetch]` table.
    ///
    /// # Errors
    /// [`HttpConfigError`] when a host glob does not compile or the client cannot be built.
    pub(crate) fn new(config: FetchConfig) -> Result<Self, HttpConfigError> {
        Self::with_policy(config, Policy::new(None, None))
    }

    /// The fetch tool under `policy` (ports 80 and 443, nothing exempt, outside tests).
    fn with_policy(config: FetchConfig, policy: Policy) -> Result<Self, HttpConfigError> {
        let value_error = |key: String, message: String| HttpConfigError::Value { key, message };
        let hosts = config::host_globs(&config.hosts)
            .map_err(|(index, message)| value_error(format!("http.fetch.hosts[{index}]"), message))?;
        let timeout = std::time::Duration::from_millis(config.timeout_ms);
        let endpoint = Endpoint::new(policy, timeout, config.max_response_bytes)
            .map_err(|message| value_error("http.fetch".into(), format!("cannot build the HTTP client: {message}")))?;
        Ok(Self { config, hosts, endpoint })
    }

    /// The allowed host patterns.
    pub(crate) fn hosts(&self) -> Vec<String> {
        self.config.hosts.clone()
    }

    fn allowed(&self, url: &Url) -> Result<String, Refused> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if self.hosts.is_match(&host) {
            Ok(host)
        } else {
            Err(Refused(format!("host '{host}' is not on the fetch allowlist ({})", self.config.hosts.join(", "))))
        }
    }

    /// Runs `http_fetch`.
    pub(crate) async fn call(&self, arguments: FetchArguments, context: &CallContext) -> Result<ToolOutput, ToolError> {
        let url = Url::parse(&arguments.url).map_err(|error| ToolError::InvalidArguments(format!("url: {error}")))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        context.authorize(&Request::http_api(format!("fetch:{host}")))?;
        self.allowed(&url).map_err(|refused| ToolError::Failed(format!("refused: {refused}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html, text/*;q=0.9, */*;q=0.5"));
        let outgoing = Outgoing {
            method: Method::GET,
            url: url.clone(),
            json_body: None,
            origin: url.origin(),
            origin_headers: headers,
        };
        let hop = |next: &Url| self.allowed(next).map(|_| ());
        let received = tokio::select! {
            received = self.endpoint.send(outgoing, &hop) => received,
            () = context.cancellation.cancelled() => return Err(ToolError::Cancelled),
        };
        let target = format!("'{url}'");
        let received = received.map_err(|error| request_error(&target, &error, &Secrets::default()))?;
        tracing::debug!(host = %host, status = received.status.as_u16(), "http fetch");
        render(received, &arguments).await
    }
}

async fn render(received: Received, arguments: &FetchArguments) -> Result<ToolOutput, ToolError> {
    let content_type = media_type(&received.headers);
    let text = String::from_utf8_lossy(&received.body).into_owned();
    let html = content_type.as_deref().is_none_or(|kind| kind == "text/html" || kind == "application/xhtml+xml")
        || text.get(..100).unwrap_or(&text).to_ascii_lowercase().contains("<html");
    let textual = content_type.as_deref().is_none_or(|kind| {
        kind.starts_with("text/") || kind.contains("json") || kind.contains("xml") || kind.contains("javascript")
    });
    let (content, prefix) = if html && !arguments.raw {
        (markdown(text).await?, String::new())
    } else if textual {
        let kind = content_type.clone().unwrap_or_default();
        let prefix = if arguments.raw || html {
            String::new()
        } else {
            format!("Content type {kind} cannot be simplified to markdown, but here is the raw content:\n")
        };
        (text, prefix)
    } else {
        let kind = content_type.clone().unwrap_or_default();
        return Err(ToolError::Failed(format!(
            "'{}' is {kind} ({} bytes), which cannot be shown as text",
            received.url,
            received.body.len()
        )));
    };
    let (content, next_start_index) = window(&content, arguments)?;
    let status = received.status;
    let mut text = format!("{prefix}Contents of {}:\n{content}", received.url);
    if let Some(next) = next_start_index {
        text.push_str(&format!(
            "\n\n<error>Content truncated. Call the fetch tool with a start_index of {next} to get more content.</error>"
        ));
    }
    if !status.is_success() {
        text = format!("Failed to fetch {} - status code {}\n\n{text}", received.url, status.as_u16());
    }
    let result = FetchResult {
        url: received.url.to_string(),
        status: status.as_u16(),
        content_type,
        content,
        next_start_index,
        body_truncated: received.truncated,
    };
    let mut output = ToolOutput::structured(&result, text)?;
    output.is_error = !status.is_success();
    Ok(output)
}

/// The characters `start_index..start_index + max_length` of `content`, and where the
/// next part starts when there is more.
fn window(content: &str, arguments: &FetchArguments) -> Result<(String, Option<usize>), ToolError> {
    let max_length = arguments.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
    if max_length == 0 || max_length > MAX_LENGTH_LIMIT {
        return Err(ToolError::InvalidArguments(format!("max_length: between 1 and {MAX_LENGTH_LIMIT}")));
    }
    let start = arguments.start_index.unwrap_or(0);
    let total = content.chars().count();
    if start >= total && total > 0 {
        return Err(ToolError::Failed("No more content available.".into()));
    }
    let part: String = content.chars().skip(start).take(max_length).collect();
    let end = start + part.chars().count();
    Ok((part, (end < total).then_some(end)))
}

/// HTML to Markdown (htmd), off the async threads: pages can be large.
async fn markdown(html: String) -> Result<String, ToolError> {
    let convert = move || htmd::HtmlToMarkdown::builder().skip_tags(SKIPPED_TAGS.to_vec()).build().convert(&html);
    match tokio::task::spawn_blocking(convert).await {
        Ok(Ok(markdown)) => Ok(markdown.trim().to_owned()),
        Ok(Err(error)) => Err(ToolError::Failed(format!("the page could not be converted to Markdown: {error}"))),
        Err(error) => Err(ToolError::Internal(format!("converting HTML: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use axum::{Router, http::StatusCode, response::IntoResponse, routing::get};
    use http::HeaderMap;
    use rampart_core::{Caller, Principal, PrincipalKind};
    use serde_json::json;

    use super::*;

    const PAGE: &str = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
        <script>alert('x')</script><nav>menu</nav><h1>Rampart docs</h1>\
        <p>Read <a href=\"/guide\">the guide</a>.</p><ul><li>one</li><li>two</li></ul></body></html>";

    fn received(status: u16, content_type: &str, body: &str) -> Received {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        Received {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: body.as_bytes().to_vec(),
            truncated: false,
            url: Url::parse("https://docs.example.com/page").unwrap(),
        }
    }

    fn arguments(value: serde_json::Value) -> FetchArguments {
        let mut object = json!({"url": "https://docs.example.com/page"});
        object.as_object_mut().unwrap().extend(value.as_object().unwrap().clone());
        serde_json::from_value(object).unwrap()
    }

    fn text(output: &ToolOutput) -> String {
        serde_json::to_value(&output.content[0]).unwrap()["text"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn html_becomes_markdown_without_scripts_or_styles() {
        let output = render(received(200, "text/html; charset=utf-8", PAGE), &arguments(json!({}))).await.unwrap();
        let content = output.structured_content.as_ref().unwrap()["content"].as_str().unwrap().to_owned();
        assert!(content.contains("# Rampart docs"), "{content}");
        assert!(content.contains("[the guide](/guide)"), "{content}");
        assert!(content.contains("one") && content.contains("two"), "{content}");
        for absent in ["alert", "color:red", "menu", "<p>"] {
            assert!(!content.contains(absent), "{absent} in {content}");
        }
        assert!(text(&output).starts_with("Contents of https://docs.example.com/page:\n# Rampart docs"));
        let raw = render(received(200, "text/html", PAGE), &arguments(json!({"raw": true}))).await.unwrap();
        assert!(text(&raw).contains("<script>"), "raw is raw");
    }

    #[tokio::test]
    async fn long_content_comes_in_parts() {
        let body = "abcdefghij".repeat(3);
        let part = render(received(200, "text/plain", &body), &arguments(json!({"max_length": 12}))).await.unwrap();
        let value = part.structured_content.clone().unwrap();
        assert_eq!((value["content"].as_str(), value["next_start_index"].as_u64()), (Some("abcdefghijab"), Some(12)));
        assert!(text(&part).starts_with("Content type text/plain cannot be simplified to markdown"));
        assert!(text(&part).ends_with("Call the fetch tool with a start_index of 12 to get more content.</error>"));
        let last = json!({"max_length": 12, "start_index": 24});
        let value = render(received(200, "text/plain", &body), &arguments(last)).await.unwrap().structured_content;
        assert_eq!(value.unwrap()["content"], "efghij");
        let past = json!({"start_index": 30});
        let error = render(received(200, "text/plain", &body), &arguments(past)).await.unwrap_err();
        assert_eq!(error.to_string(), "No more content available.");
        let error = render(received(200, "image/png", "x"), &arguments(json!({}))).await.unwrap_err();
        assert!(error.to_string().contains("cannot be shown as text"), "{error}");
        let missing = render(received(404, "text/html", PAGE), &arguments(json!({}))).await.unwrap();
        assert!(
            missing.is_error
                && text(&missing).starts_with("Failed to fetch https://docs.example.com/page - status code 404")
        );
    }

    #[tokio::test]
    async fn every_redirect_hop_must_stay_on_the_allowlist() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let app = Router::new()
            .route("/page", get(|| async { ([(header::CONTENT_TYPE, "text/html")], PAGE) }))
            .route(
                "/away",
                get(move || async move {
                    (StatusCode::FOUND, [(header::LOCATION, format!("http://localhost:{}/page", address.port()))])
                }),
            )
            .route("/here", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/page")]).into_response() }))
            .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move { next.run(request).await }
            }));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let origin = Url::parse(&format!("http://{address}")).unwrap().origin();
        let config = FetchConfig { enabled: true, hosts: vec!["127.0.0.1".into()], ..FetchConfig::default() };
        let fetcher = Fetcher::with_policy(config, Policy::new(Some(address.port()), Some(origin))).unwrap();
        let principal = Principal { id: "agent".into(), kind: PrincipalKind::ApiToken, roles: vec![] };
        let context = CallContext::detached(Caller::local(principal), std::sync::Arc::new(rampart_core::OpenGuard));
        let fetch = |path: &str| {
            let arguments = arguments(json!({"url": format!("http://{address}{path}")}));
            let fetcher = &fetcher;
            let context = &context;
            async move { fetcher.call(arguments, context).await }
        };
        let page = fetch("/here").await.unwrap();
        assert!(text(&page).contains("# Rampart docs"), "{}", text(&page));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
        let error = fetch("/away").await.unwrap_err().to_string();
        assert!(error.contains("host 'localhost' is not on the fetch allowlist (127.0.0.1)"), "{error}");
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3, "the hop off the allowlist was not sent");
        server.abort();
    }
}
