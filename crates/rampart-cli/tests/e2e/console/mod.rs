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

mod browser;
mod http;

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
