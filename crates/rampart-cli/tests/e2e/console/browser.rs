//! The console's pages in headless Chromium, as an operator uses them.

use super::*;

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
