//! What an agent (or a hostile API) might try: paths outside the allowlist in every
//! encoding, methods not allowed, IP literals in every spelling, redirects to refused
//! addresses, bodies too big, endless or slow. Every refusal is checked to have sent
//! nothing (the fixture saw no request) or to have stopped at the first hop.

use std::time::{Duration, Instant};

use rampart_core::CallContext;
use rampart_http::HttpToolbox;
use serde_json::json;

use crate::support::{Called, Fixture, call, caller, local_api, request, toolbox};

async fn redirect_to(toolbox: &HttpToolbox, agent: &CallContext, to: &str, status: u16) -> Result<Called, String> {
    let query = json!({"to": to, "status": status});
    call(toolbox, agent, "http_request", json!({"api": "local", "method": "GET", "path": "/redirect", "query": query}))
        .await
}

#[tokio::test]
async fn method_and_path_allowlists_hold_in_every_encoding() {
    let fixture = Fixture::start().await;
    let api = local_api(&fixture, json!({"methods": ["get"], "paths": ["/repos/**", "/user"]}));
    let toolbox = toolbox(json!({"apis": {"gh": api}}));
    let agent = caller(&["gh"]);
    let not_allowed = "path '/admin' is not allowed for api 'gh' (allowed: /repos/**, /user)";
    for (method, path, expected) in [
        ("POST", "/user", "method POST is not allowed for api 'gh' (allowed: GET)"),
        ("DELETE", "/repos/x", "method DELETE is not allowed for api 'gh' (allowed: GET)"),
        ("TRACE", "/user", "method TRACE is not allowed"),
        ("GET", "/admin", not_allowed),
        ("GET", "/users", "path '/users' is not allowed"),
        ("GET", "/user/", "path '/user/' is not allowed"),
        ("GET", "/REPOS/x", "path '/REPOS/x' is not allowed"),
        ("GET", "/repos", "path '/repos' is not allowed"),
        ("GET", "/repos/../admin", "path refused: the path may not contain a '..' segment"),
        ("GET", "/user/../admin", "path refused: the path may not contain a '..' segment"),
        ("GET", "/repos/%2e%2e/admin", "path refused: the path may not contain a '..' segment"),
        ("GET", "/repos/%2E%2E/admin", "path refused: the path may not contain a '..' segment"),
        ("GET", "/repos/.%2e/admin", "path refused: the path may not contain a '..' segment"),
        ("GET", "/repos/./../admin", "path refused: the path may not contain a '.' segment"),
        ("GET", "/repos/x%2f..%2f..%2fadmin", "path refused: the path may not encode '/' (%2F)"),
        ("GET", "/repos%2F..%2Fadmin", "path refused: the path may not encode '/' (%2F)"),
        ("GET", "/repos/%252e%252e/admin", "path refused: the path encodes '%'"),
        ("GET", "/repos/x%5c..%5cadmin", "path refused: the path encodes '\\\\'"),
        ("GET", "/repos\\..\\admin", "path refused: the path may not contain '\\\\'"),
        ("GET", "//evil.com/x", "path refused: the path may not start with '//'"),
        ("GET", "@evil.com/x", "path refused: the path must start with '/'"),
        ("GET", "http://evil.com/repos/x", "path refused: the path must start with '/'"),
        ("GET", "/repos//admin", "path refused: the path may not contain an empty segment"),
        ("GET", "/repos/x?admin=1", "path refused: the path may not contain '?'"),
        ("GET", "/repos/x#frag", "path refused: the path may not contain '#'"),
        ("GET", "/repos/x%00", "path refused: the path encodes '\\0'"),
    ] {
        let error = request(&toolbox, &agent, "gh", method, path).await.unwrap_err();
        assert!(error.starts_with(expected), "{method} {path}\n  got: {error}\n  expected: {expected}");
    }
    assert!(fixture.requests().is_empty(), "nothing was sent: {:?}", fixture.requests());

    for path in ["/repos/rust-lang/rust", "/user", "/repos/a/b/c/d", "/repos/%40scope/pkg"] {
        let result = request(&toolbox, &agent, "gh", "get", path).await.unwrap();
        assert_eq!(result.value["status"], 200, "{path}");
    }
    let paths: Vec<String> = fixture.requests().into_iter().map(|seen| seen.path).collect();
    assert_eq!(paths, ["/repos/rust-lang/rust", "/user", "/repos/a/b/c/d", "/repos/%40scope/pkg"]);
}

#[tokio::test]
async fn the_base_path_is_a_prefix_that_cannot_be_left() {
    let fixture = Fixture::start().await;
    let api = local_api(&fixture, json!({"base_url": format!("{}/public/", fixture.url())}));
    let toolbox = toolbox(json!({"apis": {"pub": api}}));
    let agent = caller(&["pub"]);
    for path in ["/../admin", "/%2e%2e/admin", "/..%2fadmin", "//127.0.0.1/admin"] {
        let error = request(&toolbox, &agent, "pub", "GET", path).await.unwrap_err();
        assert!(error.starts_with("path refused: "), "{path}: {error}");
    }
    let result = request(&toolbox, &agent, "pub", "GET", "/docs/@x").await.unwrap();
    assert_eq!(result.value["body"]["path"], "/public/docs/@x");
    assert_eq!(fixture.requests().len(), 1);
}

#[tokio::test]
async fn ip_literals_in_every_spelling_are_refused_before_connecting() {
    let fixture = Fixture::start().await;
    let port = fixture.address.port();
    // Through http_fetch (any host name allowed by the glob): nothing but the guard stops it.
    let fetcher = toolbox(json!({"fetch": {"enabled": true, "hosts": ["*"]}}));
    let agent = caller(&["*"]);
    for (url, address) in [
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://0x7f.0.0.1/", "127.0.0.1"),
        ("http://127.0.0.1./", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
        ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
        ("http://[::1]/", "::1"),
        ("http://[::]/", "::"),
        ("http://0.0.0.0/", "0.0.0.0"),
        ("http://0/", "0.0.0.0"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254"),
        ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1::"),
    ] {
        let error = call(&fetcher, &agent, "http_fetch", json!({"url": url})).await.unwrap_err();
        let expected = format!("was blocked: address {address} is ");
        assert!(error.starts_with("refused: the request to 'http"), "{url}: {error}");
        assert!(error.contains(&expected), "{url}\n  got: {error}\n  expected: {expected}");
    }
    for url in [format!("http://127.0.0.1:{port}/echo"), "ftp://127.0.0.1/".into(), "http://u:p@127.0.0.1/".into()] {
        let error = call(&fetcher, &agent, "http_fetch", json!({"url": url})).await.unwrap_err();
        assert!(error.starts_with("refused: "), "{url}: {error}");
    }

    // Through an API whose base URL is loopback without allow_private, in several spellings.
    let base_urls = [
        fixture.url(),
        format!("http://2130706433:{port}"),
        format!("http://0x7f000001:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://localhost:{port}"),
    ];
    for base_url in base_urls {
        let api = local_api(&fixture, json!({"base_url": base_url, "allow_private": false}));
        let guarded = toolbox(json!({"apis": {"local": api}}));
        let error = request(&guarded, &caller(&["local"]), "local", "GET", "/echo").await.unwrap_err();
        assert!(error.starts_with("refused: the request to api 'local' was blocked: "), "{base_url}: {error}");
        assert!(error.contains("loopback"), "{base_url}: {error}");
    }
    assert!(fixture.requests().is_empty(), "the fixture was never reached");

    // allow_private lets the API reach its own host, by name too.
    let api = local_api(&fixture, json!({"base_url": format!("http://localhost:{port}")}));
    let exempt = toolbox(json!({"apis": {"local": api}}));
    let result = request(&exempt, &caller(&["local"]), "local", "GET", "/json").await.unwrap();
    assert_eq!(result.value["body"], json!({"ok": true, "items": [1, 2, 3]}));
}

#[tokio::test]
async fn redirects_to_refused_addresses_are_not_followed() {
    let fixture = Fixture::start().await;
    let other = Fixture::start().await;
    let port = fixture.address.port();
    let toolbox = toolbox(json!({"apis": {"local": local_api(&fixture, json!({}))}}));
    let agent = caller(&["local"]);
    for (to, expected) in [
        (format!("{}/echo", other.url()), format!("port {} is not allowed", other.address.port())),
        ("http://127.0.0.1/".into(), "address 127.0.0.1 is loopback".into()),
        ("http://169.254.169.254/latest/meta-data/".into(), "address 169.254.169.254 is link-local".into()),
        ("http://2130706433/".into(), "address 127.0.0.1 is loopback".into()),
        ("http://0x7f000001/".into(), "address 127.0.0.1 is loopback".into()),
        ("http://0177.0.0.1/".into(), "address 127.0.0.1 is loopback".into()),
        ("http://127.1/".into(), "address 127.0.0.1 is loopback".into()),
        (format!("http://[::ffff:127.0.0.1]:{port}/echo"), "address ::ffff:127.0.0.1 is an IPv4-mapped form".into()),
        (format!("http://[::1]:{port}/echo"), "address ::1 is loopback".into()),
        ("http://0.0.0.0/".into(), "address 0.0.0.0 is unspecified".into()),
        (format!("http://localhost:{port}/echo"), "host 'localhost' resolves to ".into()),
        (format!("https://127.0.0.1:{port}/echo"), "address 127.0.0.1 is loopback".into()),
        ("ftp://127.0.0.1/".into(), "scheme 'ftp' is not allowed".into()),
        (format!("http://user:pw@127.0.0.1:{port}/echo"), "URLs with user info are not allowed".into()),
    ] {
        for status in [302, 307] {
            let error = redirect_to(&toolbox, &agent, &to, status).await.unwrap_err();
            let expected = format!("refused: the request to api 'local' was blocked: {expected}");
            assert!(error.starts_with(&expected), "{status} to {to}\n  got: {error}\n  expected: {expected}");
        }
    }
    assert!(fixture.requests().iter().all(|seen| seen.path == "/redirect"), "no hop past the first");
    assert!(other.requests().is_empty(), "the other port saw nothing");

    // The same origin, even spelled differently, is followed; a loop is cut after 5 hops.
    let result = redirect_to(&toolbox, &agent, &format!("http://0x7f000001:{port}/json"), 301).await.unwrap();
    assert_eq!(result.value["body"]["ok"], true);
    let before = fixture.requests().len();
    let error = request(&toolbox, &agent, "local", "GET", "/loop").await.unwrap_err();
    assert_eq!(error, "refused: api 'local' redirected more than 5 times");
    assert_eq!(fixture.requests().len() - before, 6, "the first request and five redirects");
}

#[tokio::test]
async fn oversized_and_endless_bodies_are_cut_at_the_limit() {
    let fixture = Fixture::start().await;
    let big = local_api(&fixture, json!({"max_response_bytes": 1000}));
    let toolbox = toolbox(json!({"apis": {"local": big}}));
    let agent = caller(&["local"]);
    let result = request(&toolbox, &agent, "local", "GET", "/big").await.unwrap();
    assert_eq!(result.value["truncated"], true);
    assert_eq!(result.value["body"].as_str().unwrap().len(), 1000);
    assert!(result.text.ends_with("[body truncated at 1000 bytes]"), "{}", result.text);
    assert!(!result.is_error);

    let started = Instant::now();
    let result = request(&toolbox, &agent, "local", "GET", "/endless").await.unwrap();
    assert_eq!(result.value["truncated"], true);
    assert_eq!(result.value["body"].as_str().unwrap().len(), 1000, "memory stays bounded by the limit");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    // JSON cut short is returned as text, not parsed into something misleading.
    let result = request(&toolbox, &agent, "local", "GET", "/echo").await.unwrap();
    assert!(result.value["body"].is_string() || !result.value["truncated"].as_bool().unwrap());
}

#[tokio::test]
async fn slow_answers_and_dripping_bodies_hit_the_deadline() {
    let fixture = Fixture::start().await;
    let api = local_api(&fixture, json!({"timeout_ms": 500, "max_response_bytes": 1_000_000}));
    let toolbox = toolbox(json!({"apis": {"local": api}}));
    let agent = caller(&["local"]);
    for path in ["/slow", "/drip"] {
        let started = Instant::now();
        let error = request(&toolbox, &agent, "local", "GET", path).await.unwrap_err();
        assert_eq!(error, "timeout: api 'local' did not answer completely within 500 ms", "{path}");
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(1500), "{path}: {elapsed:?}");
    }
}

#[tokio::test]
async fn a_closed_port_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let api = json!({"base_url": format!("http://127.0.0.1:{port}"), "allow_private": true});
    let toolbox = toolbox(json!({"apis": {"down": api}}));
    let error = request(&toolbox, &caller(&["down"]), "down", "GET", "/").await.unwrap_err();
    assert!(error.starts_with("connection: could not reach api 'down': "), "{error}");
}

#[tokio::test]
async fn a_cancelled_call_stops_at_once() {
    let fixture = Fixture::start().await;
    let toolbox = toolbox(json!({"apis": {"local": local_api(&fixture, json!({"timeout_ms": 5000}))}}));
    let agent = caller(&["local"]);
    let token = agent.cancellation.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
    });
    let started = Instant::now();
    let error = request(&toolbox, &agent, "local", "GET", "/drip").await.unwrap_err();
    assert_eq!(error, "Other: cancelled");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}
