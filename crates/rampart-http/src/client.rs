//! One guarded HTTP client ([`Endpoint`]) per API (and one for `http_fetch`): it follows
//! redirects itself (at most [`MAX_REDIRECTS`] hops, each checked by the SSRF guard),
//! sends the origin's headers and credential only to that origin, bounds the whole call
//! by one deadline, and reads at most the configured number of body bytes.

use std::{error::Error as _, time::Duration};

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use url::{Origin, Url};

use crate::ssrf::{GuardedResolver, Policy, Refused};

/// The most redirects followed for one call.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Clients whose every connection goes through the SSRF guard.
pub(crate) struct Endpoint {
    /// For every URL but the exempt origin: its resolver refuses non-public addresses.
    strict: reqwest::Client,
    /// For the exempt origin only (an API with `allow_private`).
    exempt: Option<reqwest::Client>,
    policy: Policy,
    timeout: Duration,
    max_bytes: usize,
}

/// One request to send.
pub(crate) struct Outgoing {
    /// The method of the first hop.
    pub(crate) method: Method,
    /// The URL of the first hop.
    pub(crate) url: Url,
    /// A JSON body, sent as `application/json`.
    pub(crate) json_body: Option<Vec<u8>>,
    /// The origin that may receive `origin_headers`.
    pub(crate) origin: Origin,
    /// Configured headers and the credential: sent only to `origin`.
    pub(crate) origin_headers: HeaderMap,
}

/// A final (non-redirect) response with its body read up to the cap.
pub(crate) struct Received {
    /// The status.
    pub(crate) status: StatusCode,
    /// The response headers, unfiltered.
    pub(crate) headers: HeaderMap,
    /// Up to `max_bytes` of the body.
    pub(crate) body: Vec<u8>,
    /// Whether the body was longer than the cap.
    pub(crate) truncated: bool,
    /// The URL of the last hop.
    pub(crate) url: Url,
}

/// Why no response came back.
#[derive(Debug)]
pub(crate) enum RequestError {
    /// The SSRF guard (or a hop check) refused a URL or an address.
    Refused(String),
    /// The call's deadline passed.
    Timeout(Duration),
    /// The connection failed or broke (DNS, TCP, TLS, a truncated stream).
    Connection(String),
    /// More than [`MAX_REDIRECTS`] redirects.
    TooManyRedirects,
}

impl Endpoint {
    /// A client for `policy`, with `timeout` for a whole call and `max_bytes` of body.
    ///
    /// # Errors
    /// reqwest's message when the client cannot be built (e.g. no TLS roots).
    pub(crate) fn new(policy: Policy, timeout: Duration, max_bytes: u64) -> Result<Self, String> {
        let strict = client(GuardedResolver { exempt: false }, timeout)?;
        let exempt =
            if policy.has_exemption() { Some(client(GuardedResolver { exempt: true }, timeout)?) } else { None };
        let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        Ok(Self { strict, exempt, policy, timeout, max_bytes })
    }

    /// The client for `url`: the exempt one for the exempt origin, else the strict one.
    fn client_for(&self, url: &Url) -> &reqwest::Client {
        match &self.exempt {
            Some(exempt) if self.policy.is_exempt(url) => exempt,
            _ => &self.strict,
        }
    }

    /// Sends `request`, following redirects; `hop` is an extra check for every URL (the
    /// fetch host allowlist). The whole call, body included, is bounded by the timeout.
    ///
    /// # Errors
    /// [`RequestError`].
    pub(crate) async fn send(
        &self,
        request: Outgoing,
        hop: &(dyn Fn(&Url) -> Result<(), Refused> + Sync),
    ) -> Result<Received, RequestError> {
        match tokio::time::timeout(self.timeout, self.follow(request, hop)).await {
            Ok(result) => result,
            Err(_) => Err(RequestError::Timeout(self.timeout)),
        }
    }

    async fn follow(
        &self,
        request: Outgoing,
        hop: &(dyn Fn(&Url) -> Result<(), Refused> + Sync),
    ) -> Result<Received, RequestError> {
        let Outgoing { mut method, mut url, json_body: mut body, origin, origin_headers } = request;
        for _ in 0..=MAX_REDIRECTS {
            self.policy.check_url(&url).map_err(|refused| RequestError::Refused(refused.0))?;
            hop(&url).map_err(|refused| RequestError::Refused(refused.0))?;
            let mut builder = self.client_for(&url).request(method.clone(), url.as_str());
            if url.origin() == origin {
                builder = builder.headers(origin_headers.clone());
            }
            if let Some(body) = &body {
                builder = builder
                    .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.clone());
            }
            let mut response = builder.send().await.map_err(|error| self.classify(&error))?;
            if let Some(next) = redirect_target(&response, &url) {
                (method, body) = redirected(response.status(), method, body);
                url = next;
                continue;
            }
            let (bytes, truncated) = self.read_capped(&mut response).await?;
            return Ok(Received {
                status: response.status(),
                headers: std::mem::take(response.headers_mut()),
                body: bytes,
                truncated,
                url,
            });
        }
        Err(RequestError::TooManyRedirects)
    }

    /// Reads the body up to the cap, keeping memory bounded by the cap plus one chunk.
    async fn read_capped(&self, response: &mut reqwest::Response) -> Result<(Vec<u8>, bool), RequestError> {
        let expected = response.content_length().and_then(|length| usize::try_from(length).ok());
        let mut body = Vec::with_capacity(expected.unwrap_or(0).min(self.max_bytes).min(1 << 20));
        loop {
            let chunk = response.chunk().await.map_err(|error| self.classify(&error))?;
            let Some(chunk) = chunk else { return Ok((body, false)) };
            let room = self.max_bytes - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Ok((body, true));
            }
            body.extend_from_slice(&chunk);
        }
    }

    /// The one mapping from reqwest's errors: a refusal by the resolver, a timeout, or a
    /// connection failure with its causes.
    fn classify(&self, error: &reqwest::Error) -> RequestError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<Refused>() {
                return RequestError::Refused(refused.0.clone());
            }
            source = cause.source();
        }
        if error.is_timeout() {
            return RequestError::Timeout(self.timeout);
        }
        RequestError::Connection(chain(error))
    }
}

/// A client that never follows redirects or uses a proxy, resolving through `resolver`.
fn client(resolver: GuardedResolver, timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(resolver)
        .connect_timeout(timeout)
        .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| chain(&error))
}

/// The next URL when `response` is a redirect (301, 302, 303, 307, 308) with a usable
/// `Location`.
fn redirect_target(response: &reqwest::Response, current: &Url) -> Option<Url> {
    let redirect = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
    let location = response.headers().get(header::LOCATION)?.to_str().ok()?;
    if !redirect {
        return None;
    }
    current.join(location).ok()
}

/// The method and body of the next hop (RFC 9110 §15.4): 303 becomes GET, and 301/302
/// turn POST into GET as browsers do; 307 and 308 keep both.
fn redirected(status: StatusCode, method: Method, body: Option<Vec<u8>>) -> (Method, Option<Vec<u8>>) {
    match status.as_u16() {
        303 if method == Method::HEAD => (method, None),
        303 => (Method::GET, None),
        301 | 302 if method == Method::POST => (Method::GET, None),
        _ => (method, body),
    }
}

/// An error and its causes, `: `-separated, without repeats.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use axum::{Router, extract::Request, http::StatusCode, response::IntoResponse};

    use super::*;

    /// A server answering `/start` with a redirect to `target`, and recording each
    /// request's path and `Authorization` header.
    async fn server(target: Option<String>) -> (Url, Arc<Mutex<Vec<(String, Option<String>)>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let app = Router::new().fallback(move |request: Request| {
            let authorization = request.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
            record.lock().unwrap().push((request.uri().path().to_owned(), authorization));
            let target = target.clone();
            async move {
                match target {
                    Some(target) if request.uri().path() == "/start" => {
                        (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]).into_response()
                    }
                    _ => "done".into_response(),
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    #[tokio::test]
    async fn origin_headers_go_to_their_origin_only() {
        let (other, other_seen) = server(None).await;
        let (base, base_seen) = server(Some(format!("{other}landing"))).await;
        let policy = Policy::new(base.port(), Some(base.origin())).also_exempt(other.port().unwrap(), other.origin());
        let endpoint = Endpoint::new(policy, Duration::from_secs(2), 1000).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret"));
        let outgoing = Outgoing {
            method: Method::POST,
            url: base.join("/start").unwrap(),
            json_body: Some(b"{}".to_vec()),
            origin: base.origin(),
            origin_headers: headers,
        };
        let received = endpoint.send(outgoing, &|_| Ok(())).await.unwrap();
        assert_eq!((received.status, received.body.as_slice()), (StatusCode::OK, b"done".as_slice()));
        assert_eq!(*base_seen.lock().unwrap(), [("/start".to_owned(), Some("Bearer secret".to_owned()))]);
        assert_eq!(*other_seen.lock().unwrap(), [("/landing".to_owned(), None)], "no credential cross-origin");
    }

    #[test]
    fn redirected_methods_follow_rfc_9110() {
        let body = Some(vec![1]);
        let cases = [
            (303, Method::POST, Method::GET, false),
            (303, Method::HEAD, Method::HEAD, false),
            (302, Method::POST, Method::GET, false),
            (301, Method::PUT, Method::PUT, true),
            (307, Method::POST, Method::POST, true),
            (308, Method::PATCH, Method::PATCH, true),
        ];
        for (status, method, expected, keeps_body) in cases {
            let (next, next_body) = redirected(StatusCode::from_u16(status).unwrap(), method, body.clone());
            assert_eq!((next, next_body.is_some()), (expected, keeps_body), "{status}");
        }
    }
}
