//! Configuration errors name the key; the policy decides every API access before anything
//! is sent; `/readyz` reports each API without failing when one is down.

use std::time::{Duration, Instant};

use rampart_core::Toolbox;
use rampart_http::{HttpConfig, HttpToolbox};
use serde_json::{Value, json};

use crate::support::{Fixture, caller, local_api, request, toolbox};

fn config_error(config: Value) -> String {
    HttpToolbox::from_config(config).map(|_| ()).expect_err("invalid config").to_string()
}

#[test]
fn configuration_errors_name_the_key() {
    let api = |extra: Value| {
        let mut api = json!({"base_url": "https://api.example.com"});
        api.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"apis": {"crm": api}})
    };
    let cases = [
        (json!({"api": {}}), "http.api: unknown field `api`, expected `apis` or `fetch`"),
        (json!({"apis": []}), "http.apis: invalid type: sequence, expected a map"),
        (json!({"apis": {"crm": {}}}), "http.apis.crm: missing field `base_url`"),
        (api(json!({"method": ["GET"]})), "http.apis.crm.method: unknown field `method`"),
        (api(json!({"methods": ["GET", "FETCH"]})), "http.apis.crm.methods[1]: unknown method \"FETCH\""),
        (api(json!({"methods": []})), "http.apis.crm.methods: allow at least one method"),
        (api(json!({"paths": ["/ok", "repos/**"]})), "http.apis.crm.paths[1]: path pattern \"repos/**\" must start"),
        (api(json!({"paths": ["/a[b"]})), "http.apis.crm.paths[0]: "),
        (api(json!({"base_url": "ftp://x.example.com"})), "http.apis.crm.base_url: scheme 'ftp' is not allowed"),
        (api(json!({"base_url": "https://u:pw@x.example.com"})), "http.apis.crm.base_url: user info in the URL"),
        (api(json!({"base_url": "https://x.example.com/?a=1"})), "http.apis.crm.base_url: a base URL may not have"),
        (api(json!({"base_url": "not a url"})), "http.apis.crm.base_url: not a URL"),
        (api(json!({"headers": {"Host": "evil"}})), "http.apis.crm.headers.Host: the client sets Host itself"),
        (api(json!({"headers": {"Authorization": "Bearer x"}})), "http.apis.crm.headers.Authorization: a credential"),
        (api(json!({"headers": {"X-A": "a\nb"}})), "http.apis.crm.headers.X-A: not a valid header value"),
        (api(json!({"auth": {"kind": "oauth", "env": "X"}})), "http.apis.crm.auth.kind: unknown variant `oauth`"),
        (api(json!({"auth": {"kind": "bearer"}})), "http.apis.crm.auth: missing field `env`"),
        (
            api(json!({"auth": {"kind": "bearer", "env": "X", "token": "t"}})),
            "http.apis.crm.auth: unknown field `token`",
        ),
        (api(json!({"auth": {"kind": "basic", "user": "a:b", "env": "X"}})), "http.apis.crm.auth.user: a Basic user"),
        (
            api(json!({"auth": {"kind": "header", "name": "bad name", "env": "X"}})),
            "http.apis.crm.auth.name: not a valid",
        ),
        (api(json!({"timeout_ms": 0})), "http.apis.crm.timeout_ms: must be between 1 and 300000"),
        (api(json!({"max_response_bytes": 0})), "http.apis.crm.max_response_bytes: must be between 1"),
        (api(json!({"allow_private": "yes"})), "http.apis.crm.allow_private: invalid type: string"),
        (
            api(json!({"openapi": "/nonexistent/spec.json"})),
            "http.apis.crm.openapi: cannot read '/nonexistent/spec.json'",
        ),
        (json!({"apis": {"a b": {"base_url": "https://x.example.com"}}}), "http.apis.a b: an API name may use only"),
        (json!({"fetch": {"enabled": true}}), "http.fetch.hosts: fetch is enabled but allows no host"),
        (json!({"fetch": {"hosts": ["docs.rs", "https://x"]}}), "http.fetch.hosts[1]: \"https://x\" is not a host"),
        (json!({"fetch": {"enable": true}}), "http.fetch.enable: unknown field `enable`"),
    ];
    let mut wrong = Vec::new();
    for (config, expected) in cases {
        let error = config_error(config.clone());
        if !error.starts_with(expected) {
            wrong.push(format!("{config}\n  got: {error}\n  expected: {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(HttpConfig::from_value(Value::Null).unwrap(), HttpConfig::default(), "no [http] table");
    assert!(
        HttpConfig::from_value(json!({"apis": {"x": {"base_url": "https://x.example.com", "openapi": "/nope"}}}))
            .is_ok(),
        "validation alone reads no file"
    );
}

#[tokio::test]
async fn the_policy_decides_every_api_access_before_anything_is_sent() {
    let fixture = Fixture::start().await;
    let toolbox = toolbox(json!({"apis": {"crm": local_api(&fixture, json!({}))}}));
    let error = request(&toolbox, &caller(&["other"]), "crm", "GET", "/json").await.unwrap_err();
    assert_eq!(error, "Denied: permission denied: HTTP API 'crm'");
    let error = request(&toolbox, &caller(&["other"]), "other", "GET", "/json").await.unwrap_err();
    assert_eq!(error, "unknown api 'other': http_list_apis lists the ones you may use");
    let error = request(&toolbox, &caller(&[]), "nope", "GET", "/json").await.unwrap_err();
    assert!(error.starts_with("Denied: "), "unknown and forbidden look alike without a scope: {error}");
    assert!(fixture.requests().is_empty());
}

#[tokio::test]
async fn readiness_reports_each_api_and_survives_a_down_one() {
    let fixture = Fixture::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap().port();
    drop(listener);
    let toolbox = toolbox(json!({"apis": {
        "up": local_api(&fixture, json!({})),
        "down": {"base_url": format!("http://127.0.0.1:{closed}"), "allow_private": true},
        "guarded": {"base_url": fixture.url()},
        "nokey": local_api(&fixture, json!({"auth": {"kind": "bearer", "env": "RAMPART_HTTP_TEST_NEVER_SET"}})),
    }}));
    let started = Instant::now();
    let statuses = toolbox.readiness().await;
    assert!(started.elapsed() < Duration::from_secs(3), "bounded: {:?}", started.elapsed());
    let state: Vec<(&str, bool)> = statuses.iter().map(|status| (status.name.as_str(), status.ok)).collect();
    assert_eq!(state, [("http:down", false), ("http:guarded", false), ("http:nokey", false), ("http:up", true)]);
    let detail = |index: usize| statuses[index].detail.clone().unwrap_or_default();
    assert!(detail(0).contains("connection: could not reach"), "{}", detail(0));
    assert!(detail(1).starts_with("refused: "), "{}", detail(1));
    assert_eq!(detail(2), "the credential variable RAMPART_HTTP_TEST_NEVER_SET is not set");
    assert_eq!(detail(3), format!("{}/ answers HTTP 404", fixture.url()));
}
