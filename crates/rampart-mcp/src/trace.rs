//! Distributed tracing at the MCP boundary (W3C Trace Context): the span of each request
//! Rampart serves, continuing the caller's trace from `_meta.traceparent` (SEP-414) or
//! from the HTTP request's span (whose parent is a `traceparent` header), and the
//! `traceparent` of the current span for what Rampart calls (an upstream MCP server:
//! `_meta.traceparent` on every request, and the header over HTTP).
//!
//! Only `traceparent` travels, in either direction: a caller's `tracestate` and `baggage`
//! are neither read nor forwarded. Everything here does nothing unless spans are exported
//! ([`exporting`]): the program installs the OpenTelemetry layer and the propagator
//! (`opentelemetry::global::set_text_map_propagator`), `rampart serve` when `[telemetry]`
//! names an endpoint.

use std::{collections::HashMap, sync::Arc};

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector},
    trace::TraceContextExt,
};
use rampart_core::{TRACE_TARGET, Transport};
use rmcp::{
    RoleServer,
    model::{ClientJsonRpcMessage, GetMeta, JsonRpcMessage},
    service::RequestContext,
    transport::streamable_http_client::{StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse},
};
use sse_stream::{Error as SseError, Sse};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C Trace Context field (an HTTP header, a `_meta` key): the only one Rampart reads
/// or writes.
pub const TRACEPARENT: &str = "traceparent";

/// The most of a request's tool or prompt name that goes into its span's name.
pub const MAX_NAME_TARGET: usize = 128;

/// The HTTP request's span, which the HTTP layer puts in the request's extensions while
/// spans are exported: the parent of the MCP request's span, unless the request's
/// `_meta.traceparent` names another.
#[derive(Debug, Clone)]
pub struct HttpSpan(pub tracing::Span);

/// Whether spans are exported: whether a subscriber (the OpenTelemetry layer) enables
/// Rampart's trace spans ([`TRACE_TARGET`]). A cached check at the call site.
pub fn exporting() -> bool {
    tracing::span_enabled!(target: TRACE_TARGET, tracing::Level::INFO)
}

/// The remote parent a `traceparent` value names, through the installed propagator;
/// `None` when it is malformed (or no propagator is installed).
pub fn parent_from_traceparent(traceparent: &str) -> Option<Context> {
    struct One<'a>(&'a str);
    impl Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == TRACEPARENT).then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec![TRACEPARENT]
        }
    }
    let context = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&One(traceparent)));
    context.span().span_context().is_valid().then_some(context)
}

/// The `traceparent` of `span` (through the installed propagator), if it has a valid
/// trace context.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    struct Capture(Option<String>);
    impl Injector for Capture {
        fn set(&mut self, key: &str, value: String) {
            if key == TRACEPARENT {
                self.0 = Some(value);
            }
        }
    }
    let mut capture = Capture(None);
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut capture));
    capture.0
}

/// The `traceparent` of the current span, while spans are exported: what Rampart sends
/// to an upstream MCP server with each request.
pub fn current_traceparent() -> Option<String> {
    if !exporting() {
        return None;
    }
    let span = tracing::Span::current();
    if span.is_disabled() { None } else { traceparent_of(&span) }
}

/// The trace id of `span` (32 lower-case hex digits), if it has a valid trace context.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// The span of one MCP request Rampart serves (`tools/call NAME`, kind server), and its
/// trace id for the audit record; `(Span::none(), None)` unless spans are exported.
/// `target` (a tool or prompt name as the caller sent it) goes into the span's name,
/// at most [`MAX_NAME_TARGET`] bytes of it; a resource's URI, which may carry a
/// credential, does not.
///
/// Its parent: the request's `_meta.traceparent` (SEP-414: the client's own MCP span; the
/// HTTP request's span, if any, is then linked), else the HTTP request's span (which
/// continued a `traceparent` header, or started the trace), else none: a new trace.
pub(crate) fn request_span(
    method: &'static str,
    target: Option<&str>,
    context: &RequestContext<RoleServer>,
    transport: Transport,
) -> (tracing::Span, Option<String>) {
    if !exporting() {
        return (tracing::Span::none(), None);
    }
    let span = tracing::info_span!(
        target: TRACE_TARGET,
        "mcp",
        otel.name = span_name(method, target),
        otel.kind = "server",
        mcp.method.name = method,
        jsonrpc.request.id = %context.id,
        rampart.transport = ?transport,
    );
    let http = context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<HttpSpan>())
        .map(|http| http.0.context());
    let parent = match context.meta.get_traceparent().and_then(parent_from_traceparent) {
        Some(parent) => {
            if let Some(http) = http {
                span.add_link(http.span().span_context().clone());
            }
            parent
        }
        None => http.unwrap_or_default(),
    };
    // Only a span the layer has not started yet takes a parent; this one is new.
    let _ = span.set_parent(parent);
    let trace_id = trace_id_of(&span);
    (span, trace_id)
}

/// `METHOD TARGET`, with at most [`MAX_NAME_TARGET`] bytes of the target.
fn span_name(method: &str, target: Option<&str>) -> String {
    let Some(target) = target else { return method.to_owned() };
    let mut end = target.len().min(MAX_NAME_TARGET);
    while !target.is_char_boundary(end) {
        end -= 1;
    }
    format!("{method} {}", &target[..end])
}

/// The `traceparent` a message to an upstream carries in its `_meta` (put there from
/// [`current_traceparent`]), as a header.
pub(crate) fn traceparent_header(message: &ClientJsonRpcMessage) -> Option<HeaderValue> {
    let JsonRpcMessage::Request(request) = message else { return None };
    request.request.get_meta().get_traceparent().and_then(|value| HeaderValue::from_str(value).ok())
}

/// `headers` with the message's `traceparent`, if it has one.
fn with_traceparent(
    message: &ClientJsonRpcMessage,
    mut headers: HashMap<HeaderName, HeaderValue>,
) -> HashMap<HeaderName, HeaderValue> {
    if let Some(value) = traceparent_header(message) {
        headers.insert(HeaderName::from_static(TRACEPARENT), value);
    }
    headers
}

/// rmcp's streamable HTTP client over reqwest, which also sends each POSTed request's
/// `_meta.traceparent` as the `traceparent` header (for the HTTP infrastructure in front
/// of an upstream, which reads headers, not bodies). Everything else is reqwest's.
#[derive(Clone)]
pub(crate) struct TraceHeaderClient(pub(crate) reqwest::Client);

impl TraceHeaderClient {
    /// The client rmcp's transport would build for itself (its builder is private): no
    /// idle connections kept (a body not fully read stalls the next request on one), and
    /// only same-origin 307/308 redirects followed (they keep the method and body; another
    /// origin must not get the session id and configured headers), at most 10.
    pub(crate) fn new() -> Result<Self, reqwest::Error> {
        const MAX_REDIRECTS: usize = 10;
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let keeps_body = matches!(
                attempt.status(),
                reqwest::StatusCode::TEMPORARY_REDIRECT | reqwest::StatusCode::PERMANENT_REDIRECT
            );
            let same_origin = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
            if !keeps_body || !same_origin {
                attempt.stop()
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else {
                attempt.follow()
            }
        });
        reqwest::Client::builder().pool_max_idle_per_host(0).redirect(redirects).build().map(Self)
    }
}

impl StreamableHttpClient for TraceHeaderClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = with_traceparent(&message, custom_headers);
        self.0.post_message(uri, message, session_id, auth_header, headers).await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = with_traceparent(&message, custom_headers);
        self.0
            .post_message_with_max_sse_event_size(uri, message, session_id, auth_header, headers, max_sse_event_size)
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.0.delete_session(uri, session_id, auth_header, custom_headers).await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        self.0.get_stream(uri, session_id, last_event_id, auth_header, custom_headers).await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        self.0
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rmcp::model::{CallToolRequestParams, ClientRequest, Request, RequestId};

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_request_s_meta_traceparent_becomes_its_header_and_nothing_else_does() {
        let mut request = ClientRequest::CallToolRequest(Request::new(CallToolRequestParams::new("echo")));
        let message = ClientJsonRpcMessage::request(request.clone(), RequestId::Number(1));
        assert!(with_traceparent(&message, HashMap::new()).is_empty(), "no _meta, no header");
        request.get_meta_mut().set_traceparent(PARENT);
        request.get_meta_mut().set_tracestate("vendor=secret");
        let message = ClientJsonRpcMessage::request(request, RequestId::Number(2));
        let headers = with_traceparent(&message, HashMap::new());
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!(headers[&HeaderName::from_static(TRACEPARENT)], PARENT);
    }

    #[test]
    fn a_span_is_named_after_the_method_and_at_most_128_bytes_of_its_target() {
        assert_eq!(span_name("resources/read", None), "resources/read");
        assert_eq!(span_name("tools/call", Some("fs_read")), "tools/call fs_read");
        let long = "é".repeat(100);
        let name = span_name("tools/call", Some(&long));
        assert_eq!(name.len(), "tools/call ".len() + MAX_NAME_TARGET, "{name}");
        assert!(name.ends_with('é'));
    }

    #[test]
    fn without_a_propagator_or_an_exporter_nothing_is_read_or_sent() {
        // The global propagator is a no-op until the program installs one.
        assert!(parent_from_traceparent(PARENT).is_none());
        assert!(!exporting());
        assert_eq!(current_traceparent(), None);
    }
}
