//! The console's defences over plain HTTP: sessions, cookies, headers, origins, CSRF,
//! refused sign-ins, `next=`, roles, TLS.

use super::*;

#[tokio::test]
async fn console_is_off_by_default() {
    let server = Server::start(&[]);
    for path in ["/console/login", "/console/live", "/console/assets/console.js"] {
        let status = reqwest::get(format!("{}{path}", server.base)).await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
    let response = http().post(format!("{}/console/login", server.base)).body("token=x").send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn console_answers_nothing_without_a_session() {
    let console = Console::start();
    let _admin = console.token("operator", "admin");
    let pages = [
        "/console",
        "/console/",
        "/console/live",
        "/console/audit",
        "/console/audit/record?seq=1",
        "/console/audit/export",
        "/console/tokens",
        "/console/policy",
        "/console/tools",
        "/console/tools/get_current_time",
        "/console/upstreams",
        "/console/server",
    ];
    let changes = [
        "/console/audit/verify",
        "/console/tokens",
        "/console/tokens/revoke",
        "/console/tokens/rotate",
        "/console/tools/get_current_time",
        "/console/upstreams/time/restart",
        "/console/upstreams/time/approve",
        "/console/logout",
    ];
    let leaks =
        |body: &str| ["data-csrf", "<nav", "token:operator", "rpt_", "<table"].into_iter().find(|l| body.contains(l));
    // No cookie, and a cookie no session has: the same answers.
    for cookie in [None, Some("rampart_console=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] {
        for path in pages {
            let mut request = http().get(console.url(path));
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 303, "{path} ({cookie:?})");
            let location = header(&response, "location").unwrap();
            let target = reqwest::Url::parse(&console.url(&location)).unwrap();
            assert_eq!(target.path(), "/console/login", "{path}");
            let next = target.query_pairs().find(|(name, _)| name == "next").map(|(_, value)| value.into_owned());
            assert_eq!(next.as_deref(), Some(path), "back to {path} after signing in");
            let body = response.text().await.unwrap();
            assert_eq!(leaks(&body), None, "{path}: {body}");
        }
        let mut requests: Vec<(&str, reqwest::RequestBuilder)> =
            vec![("/console/live/events", http().get(console.url("/console/live/events")))];
        for path in changes {
            let request = http().post(console.url(path)).header("content-type", "application/x-www-form-urlencoded");
            requests.push((path, request.body("id=operator&name=x&roles=admin")));
        }
        for (path, mut request) in requests {
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{path} ({cookie:?})");
            let body = response.text().await.unwrap();
            assert!(body.contains("Sign in first"), "{path}: {body}");
            assert_eq!(leaks(&body), None, "{path}: {body}");
        }
    }
    assert_eq!(console.token_status("operator"), "active", "no change went through");
    // The two ways in that need no session.
    for path in ["/console/login", "/console/assets/console.js"] {
        assert_eq!(http().get(console.url(path)).send().await.unwrap().status(), 200, "{path}");
    }
}

#[tokio::test]
async fn console_cookie_flags_and_security_headers() {
    let console = Console::start();
    let admin = console.token("operator", "admin");
    let login = http().get(console.url("/console/login")).send().await.unwrap();
    assert_security_headers(&login, "the sign-in page");
    let unsigned = http().get(console.url("/console/live/events")).send().await.unwrap();
    assert_security_headers(&unsigned, "a 401");

    let response = sign_in(&console, &admin, None).await;
    assert_eq!(response.status(), 303);
    assert_eq!(header(&response, "location").as_deref(), Some("/console/live"));
    assert_security_headers(&response, "the sign-in redirect");
    let cookie = header(&response, "set-cookie").unwrap();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("rampart_console=") && attributes[0].len() > 40, "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(attributes.contains(&flag), "{flag}: {cookie}");
    }
    assert!(!attributes.contains(&"Secure"), "plain HTTP: a Secure cookie would never come back: {cookie}");

    // Every page: the headers, and nothing the policy would block (inline scripts, style
    // attributes, event handler attributes), which would break the page in a browser.
    let session = Session::open(&console, &admin).await;
    for path in PAGES.iter().map(|(path, _)| *path).chain(["/console/tools/convert_time"]) {
        let response = session.get(path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_security_headers(&response, path);
        assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"), "{path}");
        let body = response.text().await.unwrap();
        assert_eq!(body.matches("<script").count(), body.matches("<script src=\"/console/assets/").count(), "{path}");
        for inline in [" style=\"", " onclick=", " onsubmit=", " onload=", "javascript:"] {
            assert!(!body.contains(inline), "{path} has {inline}, which the CSP blocks");
        }
    }
}

#[tokio::test]
async fn console_refuses_requests_from_other_origins() {
    let console = Console::start();
    let admin = console.token("operator", "admin");
    let _victim = console.token("victim", "reader");
    let session = Session::open(&console, &admin).await;
    let own = console.server.base.clone();
    // Another loopback port passes the listener's Host/Origin check (loopback names, any
    // port): only the console's own check stands between it and the session.
    let port: u16 = own.rsplit(':').next().unwrap().parse().unwrap();
    let other_port = format!("http://127.0.0.1:{}", if port == 65535 { 1024 } else { port + 1 });
    let cases: &[(&str, &str, u16)] = &[
        ("origin", own.as_str(), 200),
        ("sec-fetch-site", "same-origin", 200),
        ("origin", other_port.as_str(), 403),
        ("origin", "http://evil.example", 403),
        ("origin", "null", 403),
        ("sec-fetch-site", "cross-site", 403),
    ];
    for (name, value, expected) in cases {
        let response = session.get("/console/live").header(*name, *value).send().await.unwrap();
        assert_eq!(response.status(), *expected, "GET with {name}: {value}");
        let body = response.text().await.unwrap();
        assert_eq!(body.contains("data-csrf"), *expected == 200, "{name}: {value}");
    }
    for (name, value) in [("origin", other_port.as_str()), ("sec-fetch-site", "cross-site")] {
        let response = session.get("/console/live").header(name, value).send().await.unwrap();
        assert!(response.text().await.unwrap().contains(OTHER_SITE), "the console's own check refused {value}");
        // A change with the right CSRF token, sent from the other origin.
        let fields = [("_csrf", session.csrf.as_str()), ("id", "victim")];
        let response = session.post("/console/tokens/revoke", &fields).header(name, value).send().await.unwrap();
        assert_eq!(response.status(), 403, "revoke with {name}: {value}");
        // Signing in from another origin.
        let response = http()
            .post(console.url("/console/login"))
            .header(name, value)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("token", &admin)]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "sign-in with {name}: {value}");
        assert!(header(&response, "set-cookie").is_none());
    }
    assert_eq!(console.token_status("victim"), "active");
}

#[tokio::test]
async fn console_refuses_changes_without_the_csrf_token() {
    let console = Console::start();
    let admin = console.token("operator", "admin");
    let victim = console.token("victim", "reader");
    let session = Session::open(&console, &admin).await;
    let own = console.server.base.clone();
    // (what, the form's fields, an x-csrf-token header)
    type Forged<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let forged: [Forged<'_>; 4] = [
        ("no token", &[("id", "victim")], None),
        ("an empty field", &[("_csrf", ""), ("id", "victim")], None),
        ("another token", &[("_csrf", other), ("id", "victim")], None),
        ("a wrong header", &[("id", "victim")], Some(other)),
    ];
    for (what, fields, csrf_header) in forged {
        let mut request = session.post("/console/tokens/revoke", fields).header("origin", &own);
        if let Some(token) = csrf_header {
            request = request.header("x-csrf-token", token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{what}");
        assert!(response.text().await.unwrap().contains("CSRF"), "{what}");
    }
    assert_eq!(console.token_status("victim"), "active", "nothing changed");
    assert_eq!(mcp_status(&console, &victim).await, 200, "the token still works");
    let refusals = console.records(&["--principal", "token:operator"], |records| {
        records.iter().filter(|r| r["method"] == "console" && r["outcome"] == "refused").count() >= forged.len()
    });
    let refused = refusals.iter().filter(|r| r["detail"].as_str().is_some_and(|d| d.contains("CSRF"))).count();
    assert_eq!(refused, forged.len(), "each refusal is audited: {refusals:?}");

    // The same request with the session's token goes through: what refused it was the token.
    let fields = [("_csrf", session.csrf.as_str()), ("id", "victim")];
    let response = session.post("/console/tokens/revoke", &fields).header("origin", &own).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(console.token_status("victim"), "revoked");
    assert_eq!(mcp_status(&console, &victim).await, 401);
}

#[tokio::test]
async fn console_sign_in_refusals_are_audited() {
    let console = Console::start();
    let agent = console.token("agent", "reader");
    let forged = format!("rpt_{}", "A".repeat(43));
    for (what, token, expected, message) in [
        ("a token nobody issued", forged.as_str(), 401, "This token was not accepted."),
        ("a principal no role grants a console page", agent.as_str(), 403, "grant no console page"),
    ] {
        let response = sign_in(&console, token, None).await;
        assert_eq!(response.status(), expected, "{what}");
        assert!(header(&response, "set-cookie").is_none(), "{what}: no session");
        assert!(response.text().await.unwrap().contains(message), "{what}");
    }
    let failures = console.records(&["--tool", "/console/login"], |records| !records.is_empty());
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!((failures[0]["outcome"].as_str(), failures[0]["method"].as_str()), (Some("auth_failed"), Some("auth")));
    let denied = console.records(&["--principal", "token:agent"], |records| !records.is_empty());
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!((denied[0]["decision"].as_str(), denied[0]["outcome"].as_str()), (Some("deny"), Some("denied")));
    assert_eq!(denied[0]["transport"], "console");
    // The token itself still works over MCP: the console refused the page, not the token.
    assert_eq!(mcp_status(&console, &agent).await, 200);
}

#[tokio::test]
async fn console_sign_in_goes_back_to_the_console_only() {
    let console = Console::start();
    let admin = console.token("operator", "admin");
    let response = sign_in(&console, &admin, Some("/console/audit?principal=token%3Aagent")).await;
    assert_eq!(header(&response, "location").as_deref(), Some("/console/audit?principal=token%3Aagent"));
    for next in [
        "//evil.example",
        "//evil.example/console",
        "https://evil.example",
        "https://evil.example/console/live",
        "/\\evil.example",
        "/console\\..\\..\\evil.example",
        "http:evil.example",
        "javascript:alert(1)",
    ] {
        let response = sign_in(&console, &admin, Some(next)).await;
        assert_eq!(response.status(), 303, "{next}");
        let location = header(&response, "location").unwrap();
        assert!(on_site(&location), "{next} → {location}");
        assert_eq!(location, "/console/live", "{next}: the first page instead");
        let page =
            http().get(console.url(&format!("/console/login?{}", form(&[("next", next)])))).send().await.unwrap();
        assert!(!page.text().await.unwrap().contains("evil.example"), "{next}: not carried into the form");
    }
}

#[tokio::test]
async fn console_session_ends_when_its_token_is_revoked() {
    let console = Console::start();
    let admin = console.token("operator", "admin");
    let viewer = console.token("watcher", "viewer");
    let session = Session::open(&console, &viewer).await;
    assert_eq!(session.page("/console/live").await.0, 200);
    // A Live stream open before the revocation outlives the request the gate checked.
    let mut stream = session.get("/console/live/events").send().await.unwrap();
    assert_eq!(stream.status(), 200);
    // Revoked through the admin tools, which applies at once (the CLI, another process,
    // within the 2 s the server trusts a verified token).
    let revoked = call_tool(&console.server, &admin, "admin_token_revoke", json!({ "id": "watcher" })).await;
    assert!(revoked["result"].is_object() && revoked["result"]["isError"] != true, "{revoked}");
    for _ in 0..2 {
        let response = session.get("/console/live").send().await.unwrap();
        assert_eq!(response.status(), 303, "the session ended with its token");
        assert!(header(&response, "location").unwrap().starts_with("/console/login?next="));
    }
    let ended = tokio::time::timeout(std::time::Duration::from_secs(6), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the open Live stream ended with its token (re-checked every 2 s)");
    let events = session.get("/console/live/events").send().await.unwrap();
    assert_eq!(events.status(), 401);
    let again = sign_in(&console, &viewer, None).await;
    assert_eq!(again.status(), 401, "nor can it sign in again");
}

#[tokio::test]
async fn console_pages_follow_the_roles() {
    let console = Console::start();
    let viewer = console.token("watcher", "viewer");
    let session = Session::open(&console, &viewer).await;
    let (status, live) = session.page("/console/live").await;
    assert_eq!(status, 200);
    assert_eq!(nav_titles(&live), ["Live", "Audit", "Tools"]);
    assert_eq!(session.page("/console").await.0, 303);
    for (path, _) in PAGES {
        let granted = ["/console/live", "/console/audit", "/console/tools"].contains(&path);
        let (status, body) = session.page(path).await;
        assert_eq!(status, if granted { 200 } else { 404 }, "{path}");
        if !granted {
            assert!(!body.contains("data-csrf"), "{path}: a 404 page, not the page");
        }
    }
    // A change on a page not granted: the same 404, and no token made.
    let fields = [("_csrf", session.csrf.as_str()), ("name", "sneaky"), ("roles", "admin")];
    let response =
        session.post("/console/tokens", &fields).header("origin", &console.server.base).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let (code, out, _) = console.server.cli(&["token", "list", "--json", "--config", &console.config]);
    assert_eq!(code, 0);
    assert!(!out.contains("sneaky"), "{out}");
}

#[tokio::test]
async fn console_cookie_is_secure_over_tls() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = TempDir::new("console-tls");
    let cert = dir.0.join("server.pem");
    let key = dir.0.join("server.key");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let console = Console::start_with(&format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n"));
    assert!(console.server.base.starts_with("https://"), "{}", console.server.base);
    let admin = console.token("operator", "admin");
    let tls = Tls::new(&console.server.base, certified.cert.pem());

    let body = form(&[("token", &admin)]);
    let head = tls.request("POST", "/console/login", &[("content-type", "application/x-www-form-urlencoded")], &body);
    let head = head.await;
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    let cookie = head
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("a session cookie: {head}"));
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(attributes.contains(&flag), "{flag}: {cookie}");
    }
    // The console's own origin is https:// now; the http:// one is another origin.
    let session_cookie = attributes[0];
    let own = format!("https://localhost:{}", tls.port);
    let other = format!("http://localhost:{}", tls.port);
    for (origin, expected) in [(own.as_str(), "HTTP/1.1 200"), (other.as_str(), "HTTP/1.1 403")] {
        let headers = [("cookie", session_cookie), ("origin", origin)];
        let head = tls.request("GET", "/console/live", &headers, "").await;
        assert!(head.starts_with(expected), "Origin {origin}: {head}");
    }
}

/// Raw HTTP/1.1 over TLS to a server whose certificate is `ca_pem` (reqwest here has no
/// TLS of its own).
struct Tls {
    port: String,
    config: std::sync::Arc<rustls::ClientConfig>,
}

impl Tls {
    fn new(base: &str, ca_pem: String) -> Self {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self { port: base.rsplit(':').next().unwrap().to_owned(), config: std::sync::Arc::new(config) }
    }

    /// Sends one request (`Host: localhost:PORT`); returns the response's status line and
    /// headers, the header names in lower case.
    async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{}", self.port)).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut stream = connector.connect(name, tcp).await.unwrap();
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n", self.port);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
        let response = String::from_utf8_lossy(&response).into_owned();
        let head = response.split("\r\n\r\n").next().unwrap_or_default();
        head.lines()
            .map(|line| match line.split_once(':') {
                Some((name, value)) if !line.starts_with("HTTP/") => {
                    format!("{}: {}", name.to_lowercase(), value.trim())
                }
                _ => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// ---------------------------------------------------------------------------------------
// In a browser.
