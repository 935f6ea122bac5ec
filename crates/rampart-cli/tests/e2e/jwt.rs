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
