//! The credential reaches the API and nothing else: not the tool's output (headers, body,
//! text), not its errors, not the log, and not a redirect target on another origin. Each
//! test runs in a child process that holds the secrets in its environment.

use rampart_core::CallContext;
use rampart_http::HttpToolbox;
use serde_json::{Value, json};

use crate::support::{
    self, Called, CapturedLog, Fixture, SECRETS, assert_no_secret, call, caller, local_api, request, toolbox,
};

async fn redirect(toolbox: &HttpToolbox, agent: &CallContext, to: &str) -> Result<Called, String> {
    let arguments = json!({"api": "bearer", "method": "GET", "path": "/redirect", "query": {"to": to}});
    call(toolbox, agent, "http_request", arguments).await
}

fn apis(fixture: &Fixture) -> Value {
    json!({"apis": {
        "bearer": local_api(fixture, json!({"auth": {"kind": "bearer", "env": SECRETS[0].0}})),
        "basic": local_api(fixture, json!({"auth": {"kind": "basic", "user": "robot", "env": SECRETS[1].0}})),
        "keyed": local_api(fixture, json!({"auth": {"kind": "header", "name": "X-Api-Key", "env": SECRETS[2].0},
            "headers": {"Accept": "application/json"}})),
        "short": local_api(fixture, json!({"auth": {"kind": "bearer", "env": SECRETS[0].0}, "max_response_bytes": 120})),
    }})
}

#[tokio::test]
async fn the_credential_is_injected_and_never_returned() {
    if !support::with_secrets("credentials::the_credential_is_injected_and_never_returned") {
        return;
    }
    let log = CapturedLog::start();
    let fixture = Fixture::start().await;
    let toolbox = toolbox(apis(&fixture));
    let agent = caller(&["*"]);
    for (api, header, expected) in [
        ("bearer", "authorization", format!("Bearer {}", SECRETS[0].1)),
        ("basic", "authorization", {
            use base64::Engine as _;
            let pair = format!("robot:{}", SECRETS[1].1);
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        }),
        ("keyed", "x-api-key", SECRETS[2].1.to_owned()),
    ] {
        let result = request(&toolbox, &agent, api, "GET", "/echo").await.unwrap();
        let seen = fixture.requests().pop().unwrap();
        assert_eq!(seen.headers.get(header), Some(&expected), "{api}: the API received the credential");
        assert!(!result.is_error, "{api}: {}", result.text);
        let structured = result.value.to_string();
        assert_no_secret(api, &structured);
        assert_no_secret(api, &result.text);
        let headers = &result.value["headers"];
        assert!(headers.get("set-cookie").is_none() && headers.get("x-echo-authorization").is_none(), "{headers}");
        assert!(headers.get("x-internal-route").is_none(), "unselected headers are dropped: {headers}");
        assert_eq!(headers["x-ratelimit-remaining"], "42");
        assert_eq!(headers["content-type"], "application/json");
        // The echo of the credential in the body and in a selected header is masked.
        assert!(result.value["body"]["headers"][header].as_str().unwrap().contains("***"), "{structured}");
        assert!(headers["www-authenticate"].as_str().unwrap().contains("***"), "{headers}");
    }
    assert_eq!(fixture.requests().last().unwrap().headers.get("accept").map(String::as_str), Some("application/json"));

    // A non-2xx result echoing it, and a truncated body cutting through it.
    let failed =
        call(&toolbox, &agent, "http_request", json!({"api": "bearer", "method": "GET", "path": "/status/500"}))
            .await
            .unwrap();
    assert!(failed.is_error);
    for pad in 80..120 {
        let path = "/echo-text";
        let arguments = json!({"api": "short", "method": "GET", "path": path, "query": {"pad": pad}});
        let result = call(&toolbox, &agent, "http_request", arguments).await.unwrap();
        assert!(result.value["truncated"].as_bool().unwrap(), "pad {pad}");
        assert_no_secret(&format!("truncated at pad {pad}"), &result.value.to_string());
    }

    // Errors: a timeout, a refused redirect, a connection failure.
    for (path, to) in [("/slow", ""), ("/redirect", "http://169.254.169.254/"), ("/redirect", "/loop")] {
        let arguments = json!({"api": "bearer", "method": "GET", "path": path, "query": {"to": to}});
        let error = call(&toolbox, &agent, "http_request", arguments).await.err().unwrap_or_default();
        assert!(!error.is_empty(), "{path} {to}");
        assert_no_secret(path, &error);
    }
    let log = log.text();
    assert!(log.contains("http request"), "the log was captured: {log}");
    assert_no_secret("the log", &log);
}

#[tokio::test]
async fn a_missing_credential_is_an_error_naming_the_variable() {
    let fixture = Fixture::start().await;
    let config = json!({"apis": {"gh": local_api(&fixture, json!({
        "auth": {"kind": "bearer", "env": "RAMPART_HTTP_TEST_NEVER_SET"}}))}});
    let toolbox = toolbox(config);
    let error = request(&toolbox, &caller(&["gh"]), "gh", "GET", "/echo").await.unwrap_err();
    assert_eq!(
        error,
        "api 'gh': its credential is not available (the environment variable RAMPART_HTTP_TEST_NEVER_SET is not \
         set or not valid); ask the operator"
    );
    assert!(fixture.requests().is_empty(), "nothing was sent without the credential");
}

#[tokio::test]
async fn the_credential_does_not_follow_a_redirect_to_another_origin() {
    if !support::with_secrets("credentials::the_credential_does_not_follow_a_redirect_to_another_origin") {
        return;
    }
    let fixture = Fixture::start().await;
    let toolbox = toolbox(apis(&fixture));
    let agent = caller(&["*"]);
    // Same origin: followed, with the credential.
    let result = redirect(&toolbox, &agent, "/echo").await.unwrap();
    assert_eq!(result.value["status"], 200);
    let seen = fixture.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|seen| seen.headers.contains_key("authorization")));
    // Another origin: refused before any connection (another port on loopback).
    let other = Fixture::start().await;
    let error = redirect(&toolbox, &agent, &format!("{}/echo", other.url())).await.unwrap_err();
    assert!(error.starts_with("refused: "), "{error}");
    assert!(other.requests().is_empty(), "the other origin saw nothing");
}
