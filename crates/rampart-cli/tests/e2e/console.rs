//! The web console (`server.console`) end to end. Its pages are driven in headless
//! Chromium through chromedriver (WebDriver, with fantoccini), the way an operator uses
//! them. Its defences are checked over plain HTTP: no page without a session, the cookie's
//! flags and the Content-Security-Policy, requests from other origins and changes without
//! the CSRF token refused, refused sign-ins audited, `next=` kept on the site.
//!
//! The browser test saves a screenshot of every page under `target/console-screenshots/`
//! for review. `docs/console-live.png` is a copy of its `live.png`, made once by hand
//! (`cp target/console-screenshots/live.png docs/`): a test run never writes the tree.
//! Without Chromium and chromedriver (Debian packages `chromium`, `chromium-driver`) the
//! browser test says it was skipped, and fails under `MCP_TEST_REQUIRE_CLIENTS=1` (CI).

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};

use crate::support::{BIN, Server, TempDir, call_tool, call_tool_status, skip};

/// The roles of these tests besides the built-in ones: `viewer` sees the Live, Audit and
/// Tools pages; the built-in `reader` sees no page of the console; `admin` every page.
const ROLES: &str = r#"
[roles.viewer]
description = "watches calls and searches the audit log from the console"
includes = ["reader"]
scopes = { console = [{ name = "live", access = "read" }, { name = "audit", access = "read" }, { name = "tools", access = "read" }] }
"#;

/// The pages an admin sees, in the navigation's order, with their titles.
const PAGES: [(&str, &str); 7] = [
    ("/console/live", "Live"),
    ("/console/audit", "Audit"),
    ("/console/tokens", "Tokens"),
    ("/console/policy", "Policy"),
    ("/console/tools", "Tools"),
    ("/console/upstreams", "Upstreams"),
    ("/console/server", "Server"),
];

/// What the console's refusal of another origin says (the listener's own Host/Origin
/// check says something else: "Origin '…' is not allowed").
const OTHER_SITE: &str = "This request came from another site";

/// A `rampart serve` with the console on (`RAMPART_CONSOLE=true`) and [`ROLES`].
struct Console {
    server: Server,
    config: String,
    _dir: TempDir,
}

impl Console {
    fn start() -> Self {
        Self::start_with("")
    }

    /// With `extra` appended to the configuration file.
    fn start_with(extra: &str) -> Self {
        let dir = TempDir::new("console");
        let config = dir.0.join("rampart.toml");
        std::fs::write(&config, format!("{ROLES}\n{extra}")).unwrap();
        let config = config.to_str().unwrap().to_owned();
        let server = Server::start_with_env(&["--config", &config], &[("RAMPART_CONSOLE", "true")]);
        Self { server, config, _dir: dir }
    }

    /// A new token `name` with `role` (principal `token:NAME`).
    fn token(&self, name: &str, role: &str) -> String {
        self.server.token(name, role, Some(Path::new(&self.config)))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    /// The audit records `rampart audit search FILTERS` finds, once `seen` holds of them
    /// (10 s at most: records are stored a moment after the answer).
    fn records(&self, filters: &[&str], seen: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let parse = |out: &str| out.lines().map(|line| serde_json::from_str(line).unwrap()).collect::<Vec<Value>>();
        let args = [&["audit", "search", "--json", "--config", &self.config], filters].concat();
        let (code, out, err) = self.server.cli_until(&args, |out| seen(&parse(out)));
        assert_eq!(code, 0, "{err}");
        parse(&out)
    }

    /// A token's status in `rampart token list` (`active`, `revoked`).
    fn token_status(&self, name: &str) -> String {
        let (code, out, err) = self.server.cli(&["token", "list", "--json", "--config", &self.config]);
        assert_eq!(code, 0, "{err}");
        let tokens: Value = serde_json::from_str(&out).unwrap();
        let token = tokens.as_array().unwrap().iter().find(|t| t["name"] == name).expect("the token is listed");
        token["status"].as_str().unwrap().to_owned()
    }
}

/// Whether an MCP client holding `token` is let in: the HTTP status of its initialize.
async fn mcp_status(console: &Console, token: &str) -> u16 {
    call_tool_status(&console.server.url, token, "get_current_time", json!({ "timezone": "UTC" })).await.0
}

// ---------------------------------------------------------------------------------------
// Over plain HTTP.

/// An HTTP client that shows redirects rather than following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `application/x-www-form-urlencoded` of `fields`.
fn form(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(name, value)| format!("{}={}", encode(name), encode(value))).collect::<Vec<_>>().join("&")
}

/// `POST /console/login` with `token` (and `next`), no cookie.
async fn sign_in(console: &Console, token: &str, next: Option<&str>) -> reqwest::Response {
    let mut fields = vec![("token", token)];
    fields.extend(next.map(|next| ("next", next)));
    http()
        .post(console.url("/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&fields))
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|value| value.to_str().unwrap().to_owned())
}

/// A console session opened over HTTP: the cookie (`rampart_console=…`) and CSRF token.
struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Session {
    /// Signs in with `token`; panics unless it is let in.
    async fn open(console: &Console, token: &str) -> Self {
        let response = sign_in(console, token, None).await;
        assert_eq!(response.status(), 303, "signed in");
        let set_cookie = header(&response, "set-cookie").expect("a session cookie");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let mut session = Self { http: http(), base: console.server.base.clone(), cookie, csrf: String::new() };
        let landing = header(&response, "location").unwrap();
        let page = session.get(&landing).send().await.unwrap();
        assert_eq!(page.status(), 200, "{landing}");
        session.csrf = csrf_of(&page.text().await.unwrap());
        session
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base)).header("cookie", &self.cookie)
    }

    /// A form POST of `fields`, as sent (add `_csrf` to send the session's token).
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields))
    }

    /// GET `path`: (status, body).
    async fn page(&self, path: &str) -> (u16, String) {
        let response = self.get(path).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// The CSRF token a page carries (`<body data-csrf=…>`).
fn csrf_of(html: &str) -> String {
    let start = html.find("data-csrf=\"").expect("the page carries a CSRF token") + "data-csrf=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The titles of the navigation bar's links.
fn nav_titles(html: &str) -> Vec<String> {
    let Some(nav) = html.split("<nav").nth(1).and_then(|rest| rest.split("</nav>").next()) else { return Vec::new() };
    nav.split("<a ").skip(1).filter_map(|link| link.split('>').nth(1)?.split('<').next()).map(str::to_owned).collect()
}

/// Whether a redirect's `Location` stays on this site: a path, not `//host` or `/\host`
/// (which browsers read as another host) nor an absolute URL.
fn on_site(location: &str) -> bool {
    location.starts_with('/') && !location.starts_with("//") && !location.starts_with("/\\")
}

fn assert_security_headers(response: &reqwest::Response, what: &str) {
    let csp = header(response, "content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{what}: CSP lacks {directive}: {csp}");
    }
    assert_eq!(header(response, "x-frame-options").as_deref(), Some("DENY"), "{what}");
    assert_eq!(header(response, "x-content-type-options").as_deref(), Some("nosniff"), "{what}");
}

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

/// Polls `probe` every 25 ms until it returns something; panics naming `what` after `limit`.
async fn until<T>(what: &str, limit: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const FIVE_SECONDS: Duration = Duration::from_secs(5);

/// chromedriver on a free loopback port, in a process group of its own with the browser it
/// starts, under `timeout` so that the group ends even if this test process dies first;
/// dropping it ends the group.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(program: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("timeout")
            .args(["--signal=TERM", "300"])
            .arg(program)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Self { child, url: format!("http://127.0.0.1:{port}") };
        until("chromedriver answers", Duration::from_secs(10), async || driver.ready().await.then_some(())).await;
        driver
    }

    async fn ready(&self) -> bool {
        let Ok(response) = reqwest::get(format!("{}/status", self.url)).await else { return false };
        response.json::<Value>().await.is_ok_and(|status| status["value"]["ready"] == true)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A program on `PATH`.
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// Where screenshots go: `console-screenshots/` in the target directory, found from the
/// binary under test (`<target>/debug/rampart`) wherever `CARGO_TARGET_DIR` put it.
fn screenshot_dir() -> PathBuf {
    let profile = Path::new(BIN).parent().expect("the binary is in a profile directory");
    profile.parent().expect("in the target directory").join("console-screenshots")
}

fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|line| line.strip_prefix("Uid:"));
    uid.is_some_and(|ids| ids.split_whitespace().nth(1) == Some("0"))
}

/// Headless Chromium on one console, driven through its own chromedriver.
struct Browser {
    client: Client,
    base: String,
    screenshots: PathBuf,
    _driver: Driver,
    _profile: TempDir,
}

impl Browser {
    /// Chromium and chromedriver, or `None` after saying `what` is skipped (a failure
    /// under `MCP_TEST_REQUIRE_CLIENTS=1`).
    fn programs(what: &str) -> Option<(PathBuf, PathBuf)> {
        match (program("chromium"), program("chromedriver")) {
            (Some(chromium), Some(driver)) => Some((chromium, driver)),
            _ => {
                skip(what, "chromium or chromedriver is not installed (apt-get install chromium chromium-driver)");
                None
            }
        }
    }

    async fn start(base: &str, (chromium, chromedriver): (PathBuf, PathBuf)) -> Self {
        let driver = Driver::start(&chromedriver).await;
        let profile = TempDir::new("chromium-profile");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--disable-gpu".into(),
            "--window-size=1280,800".into(),
            "--hide-scrollbars".into(),
            "--no-first-run".into(),
            format!("--user-data-dir={}", profile.0.display()),
        ];
        if running_as_root() {
            args.push("--no-sandbox".into());
        }
        let capabilities =
            json!({ "browserName": "chrome", "goog:chromeOptions": { "binary": chromium, "args": args } });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|error| panic!("chromedriver started no Chromium: {error}"));
        // A 1280×800 page: the window is that much larger than its page.
        let inner = client.execute("return [window.innerWidth, window.innerHeight];", vec![]).await.unwrap();
        let (width, height) = (inner[0].as_u64().unwrap() as u32, inner[1].as_u64().unwrap() as u32);
        client.set_window_size(2 * 1280 - width, 2 * 800 - height).await.unwrap();
        let screenshots = screenshot_dir();
        std::fs::create_dir_all(&screenshots).unwrap();
        Self { client, base: base.to_owned(), screenshots, _driver: driver, _profile: profile }
    }

    /// Ends the WebDriver session (the browser quits); dropping the driver ends the rest.
    async fn stop(self) {
        let _ = self.client.close().await;
    }

    async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// The first element matching `css`, waiting for it (5 s at most).
    async fn find(&self, css: &str) -> Element {
        let wait = self.client.wait().at_most(FIVE_SECONDS).every(Duration::from_millis(25));
        wait.for_element(Locator::Css(css)).await.unwrap_or_else(|error| panic!("no {css} within 5 s: {error}"))
    }

    /// Every element matching `css` now.
    async fn all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// The rendered text of every element matching `css` now (read in one script, so that
    /// a page being replaced cannot leave a stale element half-way).
    async fn texts(&self, css: &str) -> Vec<String> {
        let script = "return Array.from(document.querySelectorAll(arguments[0]), (e) => e.innerText.trim());";
        let texts = self.client.execute(script, vec![json!(css)]).await.unwrap();
        serde_json::from_value(texts).unwrap()
    }

    /// Waits (5 s at most) for the page at `path`.
    async fn until_path(&self, path: &str) {
        let at = async || self.client.current_url().await.ok().filter(|url| url.path() == path);
        until(&format!("the page {path}"), FIVE_SECONDS, at).await;
    }

    /// Waits (5 s at most) until the text of `css` is `expected`.
    async fn until_text(&self, css: &str, expected: &str) {
        let probe = async || {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            (element.text().await.ok()? == expected).then_some(())
        };
        until(&format!("{css} says {expected:?}"), FIVE_SECONDS, probe).await;
    }

    /// Types `value` into the field `name` of `form` (picks it, in a `select`).
    async fn fill(&self, form: &str, name: &str, value: &str) {
        let field = self.find(&format!(r#"{form} [name="{name}"]"#)).await;
        if field.tag_name().await.unwrap() == "select" {
            field.select_by_value(value).await.unwrap();
        } else {
            field.clear().await.unwrap();
            field.send_keys(value).await.unwrap();
        }
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.screenshots.join(format!("{name}.png")), png).unwrap();
    }

    /// `fetch(path)` from the page, with the session's cookie (and the page's CSRF token
    /// in `x-csrf-token` when `csrf`): the response's status.
    async fn fetch(&self, method: &str, path: &str, body: &str, csrf: bool) -> u64 {
        let script = r#"
            const [method, path, body, csrf, done] = arguments;
            const headers = { "content-type": "application/x-www-form-urlencoded" };
            if (csrf) headers["x-csrf-token"] = document.body.dataset.csrf;
            const init = { method, headers, credentials: "same-origin", redirect: "manual" };
            if (method !== "GET") init.body = body;
            fetch(path, init).then((response) => done(response.status), (error) => done(String(error)));
        "#;
        let args = vec![json!(method), json!(path), json!(body), json!(csrf)];
        let status = self.client.execute_async(script, args).await.unwrap();
        status.as_u64().unwrap_or_else(|| panic!("fetch {method} {path}: {status}"))
    }
}

/// The tokens of the browser test's principals.
struct Tokens {
    operator: String,
    agent: String,
    viewer: String,
    victim: String,
}

#[tokio::test]
async fn console_in_a_browser() {
    let Some(programs) = Browser::programs("the console's browser test (Chromium)") else { return };
    let console = Console::start();
    let tokens = Tokens {
        operator: console.token("operator", "admin"),
        agent: console.token("agent", "reader"),
        viewer: console.token("watcher", "viewer"),
        victim: console.token("victim", "reader"),
    };
    let browser = Browser::start(&console.server.base, programs).await;
    signs_in(&browser, &tokens.operator, "token:operator").await;
    live_shows_calls_as_they_happen(&console, &browser, &tokens.agent).await;
    audit_search_finds_calls(&browser).await;
    token_created_used_and_revoked(&console, &browser).await;
    tool_called_from_its_form(&console, &browser).await;
    every_page_renders(&browser).await;
    forged_changes_are_refused(&console, &browser, &tokens.victim).await;
    viewer_sees_no_token_page(&browser, &tokens.viewer).await;
    browser.stop().await;
}

/// Scenario 1: sign in with a token; the Live page opens.
async fn signs_in(browser: &Browser, token: &str, principal: &str) {
    browser.goto("/console/login").await;
    browser.screenshot("login").await;
    browser.find("#token").await.send_keys(token).await.unwrap();
    browser.click("#sign-in").await;
    browser.until_path("/console/live").await;
    assert_eq!(browser.text("main h1").await, "Live");
    assert_eq!(browser.text("#principal").await, principal);
}

/// Scenario 2: a call an MCP client makes appears on the Live page (over SSE) within a
/// second of its answer.
async fn live_shows_calls_as_they_happen(console: &Console, browser: &Browser, agent: &str) {
    browser.until_text("#live-status", "Streaming live.").await;
    let agents_rows = r#"#live-calls tbody tr.call[data-principal="token:agent"]"#;
    assert!(browser.all(agents_rows).await.is_empty(), "no call of the agent yet");
    let answer = call_tool(&console.server, agent, "get_current_time", json!({ "timezone": "UTC" })).await;
    let answered = Instant::now();
    assert!(answer["result"].is_object() && answer["result"]["isError"] != true, "{answer}");
    let probe = async || browser.all(agents_rows).await.into_iter().next();
    let row = until("the agent's call on the Live page", Duration::from_secs(1), probe).await;
    eprintln!("the call was on the Live page {:?} after its answer", answered.elapsed());
    assert_eq!(row.attr("data-tool").await.unwrap().as_deref(), Some("get_current_time"));
    let text = row.text().await.unwrap();
    for expected in ["token:agent", "streamable_http", "get_current_time", "allow"] {
        assert!(text.contains(expected), "{expected} in the row: {text}");
    }

    // More calls, for the audit search and a Live page worth a screenshot: three
    // conversions and one refused call (an admin tool the reader role does not grant).
    for target in ["Asia/Tokyo", "America/New_York", "Europe/Paris"] {
        let arguments = json!({ "source_timezone": "UTC", "time": "09:30", "target_timezone": target });
        call_tool(&console.server, agent, "convert_time", arguments).await;
    }
    call_tool(&console.server, agent, "admin_token_list", json!({})).await;
    let five = async || (browser.all(agents_rows).await.len() == 5).then_some(());
    until("the agent's five calls on the Live page", FIVE_SECONDS, five).await;
    browser.goto("/console/live").await;
    browser.until_text("#live-status", "Streaming live.").await;
    browser.screenshot("live").await;
}

/// Scenario 3: the audit log searched by principal, tool, decision and outcome.
async fn audit_search_finds_calls(browser: &Browser) {
    browser.goto("/console/audit").await;
    // Searches the agent's records with (tool, decision, outcome); expects one row per
    // tool of `expected`, newest first.
    let search = async |(tool, decision, outcome): (&str, &str, &str), expected: &[&str]| {
        let fields = [("principal", "token:agent"), ("tool", tool), ("decision", decision), ("outcome", outcome)];
        for (name, value) in fields {
            browser.fill("#audit-search", name, value).await;
        }
        browser.click("#audit-search [type=submit]").await;
        let probe = async || {
            // The page of this search (a GET form), not the one before it.
            let url = browser.client.current_url().await.ok()?;
            let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let searched =
                fields.iter().all(|(name, value)| query.contains(&((*name).to_owned(), (*value).to_owned())));
            let rows = browser.texts("table#audit-results tr.record").await;
            let none = browser.texts("table#audit-results tr.empty").await;
            let matches = rows.len() == expected.len()
                && (!rows.is_empty() || none.len() == 1)
                && rows.iter().zip(expected).all(|(row, tool)| row.contains(tool) && row.contains("token:agent"));
            (searched && matches).then_some(rows)
        };
        until(&format!("audit records {fields:?} → {expected:?}"), FIVE_SECONDS, probe).await
    };
    let found = search(("convert_time", "", ""), &["convert_time"; 3]).await;
    assert!(found.iter().all(|row| row.contains("allow")), "{found:?}");
    browser.screenshot("audit").await;
    let denied = search(("", "deny", ""), &["admin_token_list"]).await;
    assert!(denied[0].contains("denied"), "{denied:?}");
    search(("get_current_time", "", "ok"), &["get_current_time"]).await;
    search(("get_current_time", "deny", ""), &[]).await;
}

/// Scenario 4: a token created on the Tokens page works over MCP, then revoked there (the
/// confirmation accepted) gets 401.
async fn token_created_used_and_revoked(console: &Console, browser: &Browser) {
    browser.goto("/console/tokens").await;
    browser.fill("#create-token", "name", "ci-bot").await;
    browser.fill("#create-token", "roles", "reader").await;
    browser.fill("#create-token", "expires_in", "30d").await;
    browser.click("#create-token-submit").await;
    let secret = browser.text("#new-token-secret").await;
    assert!(secret.starts_with("rpt_"), "{secret}");
    browser.screenshot("tokens").await;
    assert_eq!(mcp_status(console, &secret).await, 200, "the new token works over MCP");

    browser.click(r#"tr.token[data-name="ci-bot"] form[action="/console/tokens/revoke"] button"#).await;
    let question = until("the confirmation", FIVE_SECONDS, async || browser.client.get_alert_text().await.ok()).await;
    assert!(question.contains("Revoke 'ci-bot'?"), "{question}");
    browser.client.accept_alert().await.unwrap();
    browser.find(r#"tr.token[data-name="ci-bot"][data-status="revoked"]"#).await;
    assert_eq!(console.token_status("ci-bot"), "revoked");
    assert_eq!(mcp_status(console, &secret).await, 401, "the revoked token is refused");
}

/// Scenario 5: a tool called from the form generated from its input schema; the result on
/// the page, the call in the audit log with transport `console`.
async fn tool_called_from_its_form(console: &Console, browser: &Browser) {
    browser.goto("/console/tools").await;
    let tools = browser.texts("table#tools tr.tool th").await;
    for tool in ["convert_time", "get_current_time", "admin_token_create"] {
        assert!(tools.iter().any(|name| name == tool), "{tool} in {tools:?}");
    }
    browser.screenshot("tools").await;
    browser.click(r#"tr.tool[data-name="convert_time"] a"#).await;
    browser.until_path("/console/tools/convert_time").await;
    browser.fill("#tool-form", "arg.source_timezone", "Europe/Paris").await;
    browser.fill("#tool-form", "arg.time", "09:30").await;
    browser.fill("#tool-form", "arg.target_timezone", "Asia/Tokyo").await;
    browser.click("#call-tool").await;
    let probe = async || {
        let text = browser.client.find(Locator::Css("#tool-result-area #tool-result")).await.ok()?.text().await.ok()?;
        text.contains("Asia/Tokyo").then_some(text)
    };
    let result = until("the tool's result on the page", FIVE_SECONDS, probe).await;
    // 09:30 in Paris is 16:30 or 17:30 in Tokyo, with or without summer time.
    assert!(result.contains("16:30") || result.contains("17:30"), "{result}");
    browser.screenshot("tool-result").await;

    let records = console.records(&["--principal", "token:operator", "--tool", "convert_time"], |r| !r.is_empty());
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!((record["transport"].as_str(), record["outcome"].as_str()), (Some("console"), Some("ok")));
    assert_eq!(record["arguments"]["time"], "09:30", "{record}");
}

/// Every page an admin may see, under its title in the navigation; screenshots of those
/// the scenarios have not shown.
async fn every_page_renders(browser: &Browser) {
    for (path, title) in PAGES {
        browser.goto(path).await;
        assert_eq!(browser.text("main h1").await, title, "{path}");
        assert_eq!(browser.text(r#"nav a[aria-current="page"]"#).await, title, "{path}");
        assert_eq!(browser.texts("nav a").await, PAGES.map(|(_, title)| title), "{path}");
        if ["/console/policy", "/console/upstreams", "/console/server"].contains(&path) {
            browser.screenshot(path.trim_start_matches("/console/")).await;
        }
    }
}

/// Scenario 7: a change without the page's CSRF token is refused (403), as is a form
/// another origin posts (a page on another port of this host is the same site, so the
/// `SameSite=Strict` cookie goes with it: the console's Origin check refuses it); the same
/// request with the token goes through.
async fn forged_changes_are_refused(console: &Console, browser: &Browser, victim: &str) {
    browser.goto("/console/tokens").await;
    assert_eq!(browser.fetch("POST", "/console/tokens/revoke", "id=victim", false).await, 403);
    assert_eq!(console.token_status("victim"), "active", "nothing changed");

    let evil = EvilSite::start(&console.url("/console/tokens/revoke")).await;
    browser.client.goto(&evil.url).await.unwrap();
    browser.until_path("/console/tokens/revoke").await;
    assert_eq!(browser.text("main h1").await, "403 Forbidden");
    assert!(browser.text("main").await.contains(OTHER_SITE));
    assert_eq!(console.token_status("victim"), "active", "nothing changed");
    assert_eq!(mcp_status(console, victim).await, 200);

    browser.goto("/console/tokens").await;
    assert_eq!(browser.fetch("POST", "/console/tokens/revoke", "id=victim", true).await, 200);
    assert_eq!(console.token_status("victim"), "revoked");
}

/// A page on another loopback port whose form posts itself to the console at once.
struct EvilSite {
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl EvilSite {
    async fn start(target: &str) -> Self {
        let page = format!(
            "<!doctype html><form id=f method=post action=\"{target}\"><input name=id value=victim></form>\
             <script>document.getElementById('f').submit()</script>"
        );
        let app = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, server }
    }
}

impl Drop for EvilSite {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Scenario 6: after signing out, a viewer (Live, Audit, Tools) signs in: no Tokens link,
/// and the Tokens page is 404 like a page that does not exist.
async fn viewer_sees_no_token_page(browser: &Browser, viewer: &str) {
    browser.click("form.signout button").await;
    browser.until_path("/console/login").await;
    browser.goto("/console/live").await;
    browser.until_path("/console/login").await;
    signs_in(browser, viewer, "token:watcher").await;
    assert_eq!(browser.texts("nav a").await, ["Live", "Audit", "Tools"]);
    assert!(browser.all(r#"a[href="/console/tokens"]"#).await.is_empty());
    browser.goto("/console/tokens").await;
    assert_eq!(browser.text("main h1").await, "404 Not Found");
    assert!(browser.all("#create-token, table#tokens").await.is_empty());
    assert_eq!(browser.fetch("GET", "/console/tokens", "", false).await, 404);
    assert_eq!(browser.fetch("GET", "/console/nowhere", "", false).await, 404, "the same as no page at all");
}
