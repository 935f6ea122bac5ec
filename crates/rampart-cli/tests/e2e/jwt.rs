//! Issue #4: JWT bearer tokens (OAuth 2.1 resource server), each failure mode, scopes,
//! and the RFC 9728 metadata document.

use std::path::{Path, PathBuf};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::support::{Server, TempDir, initialize_body, mcp_post};

const ISSUER: &str = "https://idp.example.test/realms/acme";
const AUDIENCE: &str = "https://mcp.example.test/mcp";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn claims() -> Value {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now() + 600, "iat": now(), "scope": "mcp mcp:read", "roles": ["reader"] })
}

fn sign_with(key_file: &str, kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&std::fs::read(fixture(key_file)).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).unwrap()
}

fn sign(claims: &Value) -> String {
    sign_with("jwt-rsa-private.pem", Some("key-1"), claims)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The JWT server: keys from a JWKS file, scope `mcp` required.
fn server(dir: &TempDir, keys: &str) -> Server {
    let config = dir.0.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[auth.jwt]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n{keys}\nrequired_scopes = [\"mcp\"]\n\
             scope_roles = {{ \"mcp:write\" = [\"writer\"] }}\njwks_refresh_min_secs = 1\n"
        ),
    )
    .unwrap();
    Server::start(&["--config", config.to_str().unwrap()])
}

async fn status(server: &Server, token: &str) -> (u16, String) {
    let response = mcp_post(&reqwest::Client::new(), &server.url)
        .bearer_auth(token)
        .json(&initialize_body(1, "2025-11-25"))
        .send()
        .await
        .unwrap();
    let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (response.status().as_u16(), challenge)
}

#[tokio::test]
async fn every_jwt_failure_mode_is_refused_and_a_valid_token_is_served() {
    let dir = TempDir::new("jwt");
    let jwks = format!("jwks_file = \"{}\"", fixture("jwks-key1.json").display());
    let server = server(&dir, &jwks);
    assert!(!server.stderr().contains("First run"), "no bootstrap token when JWTs are accepted");

    let valid = sign(&claims());
    assert_eq!(status(&server, &valid).await.0, 200, "a valid token");

    let public_pem = std::fs::read(fixture("jwt-rsa-public.pem")).unwrap();
    let hs256_confusion =
        encode(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(&public_pem)).unwrap();
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims().to_string().as_bytes()));
    let with = |key: &str, value: Value| {
        let mut c = claims();
        c[key] = value;
        sign(&c)
    };
    let without = |key: &str| {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(key);
        sign(&c)
    };
    let cases: Vec<(&str, String)> = vec![
        ("bad signature (another key, same kid)", sign_with("jwt-rsa-other-private.pem", Some("key-1"), &claims())),
        ("alg: none", none),
        ("HS256 signed with the RSA public key", hs256_confusion),
        ("wrong aud", with("aud", json!("https://other.example.test/mcp"))),
        ("missing aud", without("aud")),
        ("wrong iss", with("iss", json!("https://evil.example.test"))),
        ("missing iss", without("iss")),
        ("expired", with("exp", json!(now() - 3600))),
        ("not yet valid", with("nbf", json!(now() + 3600))),
        ("unknown kid", sign_with("jwt-rsa-other-private.pem", Some("key-9"), &claims())),
        ("truncated", valid[..valid.len() - 10].to_owned()),
    ];
    for (case, token) in cases {
        let (code, challenge) = status(&server, &token).await;
        assert_eq!(code, 401, "{case}");
        assert!(
            challenge
                .contains("resource_metadata=\"https://mcp.example.test/.well-known/oauth-protected-resource/mcp\""),
            "{case}: {challenge}"
        );
    }

    let no_scope = with("scope", json!("other"));
    let (code, challenge) = status(&server, &no_scope).await;
    assert_eq!(code, 403, "a valid token without the scope");
    assert!(challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"mcp\""), "{challenge}");

    let (_, audit, _) = server.cli_until(&["audit", "search", "--principal", "unauthenticated", "--json"], |audit| {
        audit.contains("insufficient_scope") && audit.contains("invalid")
    });
    assert!(audit.contains("insufficient_scope") && audit.contains("invalid"), "failures audited: {audit}");
    for secret in [&valid[valid.len() - 20..], &no_scope[no_scope.len() - 20..]] {
        assert!(!server.stderr().contains(secret), "tokens never logged");
    }
}

#[tokio::test]
async fn jwt_roles_and_scopes_map_to_rampart_roles() {
    let dir = TempDir::new("jwt-roles");
    let jwks = format!("jwks_file = \"{}\"", fixture("jwks-key1.json").display());
    let server = server(&dir, &jwks);
    let list = |token: String| {
        let url = server.url.clone();
        async move {
            let client = reqwest::Client::new();
            let init = mcp_post(&client, &url)
                .bearer_auth(&token)
                .json(&initialize_body(1, "2025-11-25"))
                .send()
                .await
                .unwrap();
            let session = init.headers()["mcp-session-id"].to_str().unwrap().to_owned();
            let _ = init.text().await;
            let body = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list" });
            let (_, messages) =
                crate::support::post_in_session_with(&client, &url, &session, &token, body.to_string()).await;
            let tools = messages.into_iter().find(|m| m["id"] == 3).unwrap()["result"]["tools"].clone();
            tools.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    let reader = list(sign(&claims())).await;
    assert!(
        reader.contains(&"get_current_time".to_owned()) && !reader.contains(&"admin_token_list".to_owned()),
        "{reader:?}"
    );
    let mut nobody = claims();
    nobody["roles"] = json!([]);
    assert!(list(sign(&nobody)).await.is_empty(), "no role, no tools");
    let (_, audit, _) = server
        .cli_until(&["audit", "search", "--principal", "jwt:alice", "--json"], |audit| audit.contains("tools/list"));
    assert!(audit.contains("tools/list"), "{audit}");
}

#[tokio::test]
async fn the_protected_resource_metadata_document() {
    let dir = TempDir::new("jwt-meta");
    let jwks = format!("jwks_file = \"{}\"", fixture("jwks-key1.json").display());
    let server = server(&dir, &jwks);
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let document: Value = reqwest::get(format!("{}{path}", server.base)).await.unwrap().json().await.unwrap();
        assert_eq!(document["resource"], AUDIENCE, "{path}");
        assert_eq!(document["authorization_servers"], json!([ISSUER]));
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
        assert!(document["scopes_supported"].as_array().unwrap().contains(&json!("mcp")));
    }
    let (code, challenge) = status(&server, "").await;
    assert_eq!(code, 401);
    assert!(challenge.contains("resource_metadata="), "{challenge}");
}

/// A one-file HTTP server for the JWKS, on loopback; its body can be swapped.
async fn jwks_server(body: std::sync::Arc<std::sync::Mutex<String>>) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        for _ in 0..50 {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
            let text = body.lock().unwrap().clone();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    (url, task)
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_jwks_at_most_once_per_interval() {
    let body = std::sync::Arc::new(std::sync::Mutex::new(std::fs::read_to_string(fixture("jwks-key1.json")).unwrap()));
    let (url, task) = jwks_server(body.clone()).await;
    let dir = TempDir::new("jwt-url");
    let server = server(&dir, &format!("jwks_url = \"{url}\""));
    assert_eq!(status(&server, &sign(&claims())).await.0, 200, "keys fetched on first use");
    let rotated = sign_with("jwt-rsa-other-private.pem", Some("key-2"), &claims());
    assert_eq!(status(&server, &rotated).await.0, 401, "key-2 is not published yet");
    *body.lock().unwrap() = std::fs::read_to_string(fixture("jwks-both.json")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(status(&server, &rotated).await.0, 200, "an unknown kid refreshed the JWKS");
    task.abort();
}

/// What the fake authorization server saw of the console's login.
#[derive(Default)]
struct Authorizations {
    /// state → (code_challenge, redirect_uri) of each `/authorize`.
    challenges: std::collections::HashMap<String, (String, String)>,
    /// The parameters of the last `/authorize` and `/token` requests.
    authorize: Vec<(String, String)>,
    token: Vec<(String, String)>,
}

/// A fake OAuth 2.1 authorization server on loopback: its metadata (RFC 8414), an
/// `/authorize` that signs everyone in as `sub` (302 back with a code), and a `/token`
/// that checks the PKCE verifier (S256) against the challenge before minting a JWT for
/// `aud` with the fixture key.
async fn authorization_server(
    sub: &'static str,
    aud: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Authorizations>>, tokio::task::JoinHandle<()>) {
    use axum::{extract::RawQuery, response::IntoResponse, routing::get};
    use sha2::Digest;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Authorizations::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let pairs = |text: &str| -> Vec<(String, String)> {
        reqwest::Url::parse(&format!("http://x/?{text}"))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    };
    let metadata = json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "code_challenge_methods_supported": ["S256"],
    });
    let (on_authorize, on_token) = (seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route("/.well-known/oauth-authorization-server", get(move || async move { axum::Json(metadata) }))
        .route(
            "/authorize",
            get(move |RawQuery(query): RawQuery| async move {
                let params = pairs(&query.unwrap_or_default());
                let get =
                    |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
                let (state, redirect) = (get("state"), get("redirect_uri"));
                let mut seen = on_authorize.lock().unwrap();
                seen.challenges.insert(state.clone(), (get("code_challenge"), redirect.clone()));
                seen.authorize = params.clone();
                let location = format!("{redirect}?code=code-{state}&state={state}");
                (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, location)]).into_response()
            }),
        )
        .route(
            "/token",
            axum::routing::post(move |body: String| async move {
                let params = pairs(&body);
                let get =
                    |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
                let mut seen = on_token.lock().unwrap();
                seen.token = params.clone();
                let state = get("code").strip_prefix("code-").unwrap_or_default().to_owned();
                let verified = seen.challenges.remove(&state).is_some_and(|(challenge, redirect)| {
                    b64(&sha2::Sha256::digest(get("code_verifier").as_bytes())) == challenge
                        && redirect == get("redirect_uri")
                        && get("grant_type") == "authorization_code"
                });
                if !verified {
                    let error = json!({ "error": "invalid_grant", "error_description": "PKCE or code check failed" });
                    return (axum::http::StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
                }
                let claims = json!({ "iss": ISSUER, "aud": aud, "sub": sub, "exp": now() + 600, "iat": now(),
                                     "scope": "openid mcp", "roles": ["console-admin"] });
                axum::Json(json!({ "access_token": sign(&claims), "token_type": "Bearer", "expires_in": 600 }))
                    .into_response()
            }),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, seen, task)
}

/// The console server signing in through the fake authorization server at `base`.
fn console_server(dir: &TempDir, base: &str) -> Server {
    let config = dir.0.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nconsole = true\n\n[auth.jwt]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"{}\"\n\
             required_scopes = [\"mcp\"]\nconsole_client_id = \"rampart-console\"\n\
             authorization_endpoint = \"{base}/authorize\"\ntoken_endpoint = \"{base}/token\"\n\n\
             [roles.console-admin]\nincludes = [\"admin\"]\n",
            fixture("jwks-key1.json").display()
        ),
    )
    .unwrap();
    Server::start(&["--config", config.to_str().unwrap()])
}

/// The cookie `name=value` a response sets.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")) && !v.contains("Max-Age=0"))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// Issue #21: the console's "Sign in with" (authorization code + PKCE): the browser goes
/// to the authorization server and back, the code is exchanged with the verifier, the
/// access token is checked like a bearer token, and a session opens. A callback whose
/// state this browser did not start, a replayed one, and a token for another audience are
/// refused.
#[tokio::test]
async fn the_console_signs_in_with_openid_connect_authorization_code_and_pkce() {
    let (base, seen, task) = authorization_server("alice", AUDIENCE).await;
    let dir = TempDir::new("console-oidc");
    let server = console_server(&dir, &base);
    let origin = server.url.trim_end_matches("/mcp").to_owned();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // The sign-in page offers the authorization server.
    let page = client.get(format!("{origin}/console/login")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"sign-in-oidc\"") && page.contains(ISSUER), "{page}");

    // 1. Off to the authorization server, with a state bound to this browser by a cookie.
    let start = client.get(format!("{origin}/console/login/oidc?next=/console/tokens")).send().await.unwrap();
    assert_eq!(start.status(), 303);
    let binding = set_cookie(&start, "rampart_oidc").expect("the login binds its state to the browser");
    let authorize = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&format!("{base}/authorize?")), "{authorize}");

    // 2. The authorization server signs alice in and sends the browser back.
    let back = client.get(&authorize).send().await.unwrap();
    assert_eq!(back.status(), 302);
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    {
        let seen = seen.lock().unwrap();
        let param = |name: &str| seen.authorize.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(param("response_type").as_deref(), Some("code"));
        assert_eq!(param("client_id").as_deref(), Some("rampart-console"));
        assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(param("resource").as_deref(), Some(AUDIENCE), "RFC 8707: the token is asked for this server");
        assert_eq!(param("redirect_uri"), Some(format!("{origin}/console/login/oidc/callback")));
        assert!(param("scope").unwrap().split(' ').any(|s| s == "openid"));
    }

    // A callback carrying the right state, from a browser that did not start the login
    // (login CSRF: an attacker's code planted in someone's browser), is refused; the
    // state stays pending for the browser that holds its cookie.
    let foreign = client.get(&callback).send().await.unwrap();
    assert_eq!(foreign.status(), 400, "no binding cookie: refused");
    assert!(set_cookie(&foreign, "rampart_console").is_none());

    // 3. The owner's callback: the code is exchanged with the verifier, a session opens.
    let signed = client.get(&callback).header("cookie", &binding).send().await.unwrap();
    assert_eq!(signed.status(), 200);
    let session = set_cookie(&signed, "rampart_console").expect("a console session");
    let page = signed.text().await.unwrap();
    assert!(page.contains("url=/console/tokens"), "goes on to `next`: {page}");
    {
        let seen = seen.lock().unwrap();
        let param = |name: &str| seen.token.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(param("grant_type").as_deref(), Some("authorization_code"));
        assert!(param("code_verifier").is_some_and(|v| v.len() >= 43), "PKCE verifier sent");
        assert_eq!(param("resource").as_deref(), Some(AUDIENCE));
    }
    let tokens = client.get(format!("{origin}/console/tokens")).header("cookie", &session).send().await.unwrap();
    assert_eq!(tokens.status(), 200);
    let html = tokens.text().await.unwrap();
    let principal = html.split("<span id=\"principal\">").nth(1).and_then(|rest| rest.split("</span>").next());
    assert!(principal.is_some_and(|p| p.contains("alice")), "signed in as the token's subject: {principal:?}");

    // The same callback again (a replay): the state was used up.
    let replay = client.get(&callback).header("cookie", &binding).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(set_cookie(&replay, "rampart_console").is_none());

    // A made-up state with a matching cookie: never started here.
    let forged = client
        .get(format!("{origin}/console/login/oidc/callback?code=code-x&state=x"))
        .header("cookie", "rampart_oidc=x")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    server.stop();
    task.abort();

    // An authorization server minting tokens for another audience: the access token does
    // not authenticate here, so no session.
    let (base, _, task) = authorization_server("mallory", "https://other.example.test/mcp").await;
    let dir = TempDir::new("console-oidc-aud");
    let server = console_server(&dir, &base);
    let origin = server.url.trim_end_matches("/mcp").to_owned();
    let start = client.get(format!("{origin}/console/login/oidc")).send().await.unwrap();
    let binding = set_cookie(&start, "rampart_oidc").unwrap();
    let back = client.get(start.headers()["location"].to_str().unwrap()).send().await.unwrap();
    let refused =
        client.get(back.headers()["location"].to_str().unwrap()).header("cookie", &binding).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(set_cookie(&refused, "rampart_console").is_none());
    server.stop();
    task.abort();
}
