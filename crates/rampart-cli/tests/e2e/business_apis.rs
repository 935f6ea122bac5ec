//! `examples/business-apis` through the real server: the committed `rampart.toml` and
//! OpenAPI documents, with the base URLs pointed at a local fixture of the three APIs (CRM,
//! payments, chat) that records what it receives. Roles see and call only their
//! operations, the credentials are injected on the server (and hidden from the results),
//! a refused operation answers like an unknown tool and is audited as denied, and the
//! allowlists keep destructive operations out of reach even for `admin`.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
};
use base64::Engine as _;
use rampart_mcp::{ClientError, ClientTarget, McpClient};
use serde_json::{Map, Value, json};

use crate::support::{Server, TempDir};

/// The test secrets, set as the environment variables the example's `auth` tables name.
const CRM_API_TOKEN: &str = "crm-test-token-5c1e0a9f";
const PAYMENTS_SECRET_KEY: &str = "sk_test_payments_7d2b41e8";
const CHAT_API_KEY: &str = "chat-test-key-93fa6b20";
/// The CRM's Basic user in the example.
const CRM_USER: &str = "rampart-bot@example.com/token";

/// The example's directory in this repository.
fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/business-apis").canonicalize().unwrap()
}

/// One request the fixture received.
#[derive(Debug, Clone)]
struct Seen {
    api: &'static str,
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

#[derive(Clone)]
struct Api {
    name: &'static str,
    log: Log,
}

/// The three APIs, one listener each (each API has its own origin, as in production).
struct Fixture {
    addresses: Vec<(&'static str, SocketAddr)>,
    log: Log,
}

impl Fixture {
    async fn start() -> Self {
        let log = Log::default();
        let mut addresses = Vec::new();
        for name in ["crm", "payments", "chat"] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addresses.push((name, listener.local_addr().unwrap()));
            let app = Router::new().fallback(answer).with_state(Api { name, log: log.clone() });
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        Self { addresses, log }
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// The last request `api` received at `method` `path`.
    fn last(&self, api: &str, method: &str, path: &str) -> Seen {
        let seen = self.seen();
        seen.iter()
            .rev()
            .find(|s| s.api == api && s.method == method && s.path == path)
            .cloned()
            .unwrap_or_else(|| panic!("{api} received no {method} {path}: {seen:#?}"))
    }
}

/// The fixture's answers: what a real CRM, payments API and chat would answer to the
/// operations of the example's documents (paths include the base URLs' paths).
async fn answer(
    State(api): State<Api>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if method == Method::HEAD {
        // `/readyz` probing the base URL: any answer means reachable.
        return (StatusCode::NOT_FOUND, Json(Value::Null));
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    api.log.lock().unwrap().push(Seen {
        api: api.name,
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let ticket = json!({
        "id": 4711, "subject": "Charged twice for order 10293", "status": "open", "priority": "high",
        "requester_email": "dana@acme.example", "created_at": "2026-03-02T09:14:00Z"
    });
    let answer = match (api.name, method.as_str(), path.as_str()) {
        ("crm", "GET", "/api/v2/tickets") => json!({ "tickets": [ticket] }),
        ("crm", "GET", "/api/v2/tickets/4711") => ticket,
        ("crm", "PATCH", "/api/v2/tickets/4711") => {
            let mut ticket = ticket;
            ticket["status"] = body["status"].clone();
            ticket
        }
        ("payments", "GET", "/v1/payment_intents/pi_3PqA1bQ") => json!({
            "id": "pi_3PqA1bQ", "customer": "cus_Q8dana", "amount": 4999, "amount_refunded": 0,
            "currency": "eur", "status": "succeeded", "description": "Order 10293"
        }),
        // An API that echoes the credential it was sent (some do, in errors or debug output).
        ("payments", "GET", "/v1/customers/cus_Q8dana") => json!({
            "id": "cus_Q8dana", "email": "dana@acme.example", "name": "Dana Scully",
            "debug": { "authorization": headers.get("authorization").and_then(|v| v.to_str().ok()) }
        }),
        ("payments", "POST", "/v1/refunds") => json!({
            "id": "re_1Rk9Tz", "payment_intent": body["payment_intent"], "amount": body["amount"],
            "currency": "eur", "reason": body["reason"], "status": "succeeded"
        }),
        ("chat", "GET", "/api/channels") => json!({ "channels": [
            { "id": "C024BE91L", "name": "support", "topic": "Customer issues", "is_archived": false },
            { "id": "C04AAB7PQ", "name": "billing", "topic": "Refunds and invoices", "is_archived": false }
        ]}),
        ("chat", "POST", "/api/channels/C024BE91L/messages") => json!({
            "id": "1712345678.000200", "channel_id": "C024BE91L", "text": body["text"], "author": "rampart-bot",
            "posted_at": "2026-03-02T09:20:00Z"
        }),
        _ => return (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))),
    };
    let status = if method == Method::POST { StatusCode::CREATED } else { StatusCode::OK };
    (status, Json(answer))
}

/// The committed `rampart.toml` with each API's base URL moved to the fixture (same path),
/// `allow_private = true` (the fixture is on loopback; test only) and the `openapi` paths
/// made absolute (they are relative to the committed file, which the copy is not beside).
/// Fails if the example does not have the three APIs.
fn example_config(dir: &TempDir, fixture: &Fixture) -> PathBuf {
    let text = std::fs::read_to_string(example_dir().join("rampart.toml")).unwrap();
    let mut config: toml::Table = text.parse().unwrap();
    let apis = config
        .get_mut("http")
        .and_then(|http| http.get_mut("apis"))
        .and_then(toml::Value::as_table_mut)
        .expect("the example has [http.apis.*]");
    let names: Vec<&String> = apis.keys().collect();
    assert_eq!(names, ["chat", "crm", "payments"], "the example's APIs");
    for (name, address) in &fixture.addresses {
        let api = apis.get_mut(*name).and_then(toml::Value::as_table_mut).unwrap();
        let base_url = reqwest::Url::parse(api["base_url"].as_str().unwrap()).unwrap();
        assert!(base_url.host_str().unwrap().ends_with(".example.com"), "a placeholder host: {base_url}");
        assert!(api.get("allow_private").is_none(), "the committed example never reaches private addresses");
        api.insert("base_url".into(), format!("http://{address}{}", base_url.path()).into());
        api.insert("allow_private".into(), true.into());
        let openapi = example_dir().join(api["openapi"].as_str().unwrap());
        assert!(openapi.is_file(), "{name}: {} exists", openapi.display());
        api.insert("openapi".into(), openapi.to_str().unwrap().into());
        let auth = api["auth"].as_table().unwrap();
        assert!(
            auth.contains_key("env") && !auth.contains_key("token"),
            "{name}: the credential comes from the environment"
        );
    }
    let path = dir.0.join("rampart.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    path
}

fn arguments(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

async fn connect(server: &Server, token: &str) -> McpClient {
    McpClient::connect(&ClientTarget::Http { url: server.url.clone(), token: Some(token.to_owned()) }).await.unwrap()
}

/// The caller's tools of the http toolbox (its own and the APIs' operations).
async fn api_tools(client: &McpClient) -> BTreeSet<String> {
    let tools = client.list_tools().await.unwrap();
    tools
        .into_iter()
        .map(|tool| tool.name)
        .filter(|name| ["http_", "crm_", "payments_", "chat_"].iter().any(|prefix| name.starts_with(prefix)))
        .collect()
}

/// A successful call: the response's body as the API sent it.
async fn call_ok(client: &McpClient, tool: &str, args: Value) -> Value {
    let result = client.call_tool(tool, arguments(args)).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert_eq!(result["isError"], false, "{tool}: {result}");
    let status = result["structuredContent"]["status"].as_u64().unwrap();
    assert!((200..300).contains(&status), "{tool}: {result}");
    result["structuredContent"]["body"].clone()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

const SUPPORT_TOOLS: [&str; 12] = [
    "http_list_apis",
    "crm_listTickets",
    "crm_getTicket",
    "crm_searchContacts",
    "crm_getContact",
    "payments_listCustomers",
    "payments_getCustomer",
    "payments_listPaymentIntents",
    "payments_getPaymentIntent",
    "chat_listChannels",
    "chat_listMessages",
    "chat_postMessage",
];
const BILLING_ONLY: [&str; 4] = ["crm_createTicket", "crm_updateTicket", "payments_createRefund", "payments_getRefund"];

#[tokio::test]
async fn the_business_apis_example_injects_credentials_and_holds_each_role_to_its_operations() {
    let fixture = Fixture::start().await;
    let dir = TempDir::new("business-apis");
    let config = example_config(&dir, &fixture);
    let server = Server::start_with_env(
        &["--config", config.to_str().unwrap()],
        &[
            ("CRM_API_TOKEN", CRM_API_TOKEN),
            ("PAYMENTS_SECRET_KEY", PAYMENTS_SECRET_KEY),
            ("CHAT_API_KEY", CHAT_API_KEY),
        ],
    );
    let admin = server.admin_token();
    let support = server.token("support-agent", "support", Some(config.as_path()));
    let billing = server.token("billing-agent", "billing", Some(config.as_path()));

    // Each role sees its operations and no other; DELETE operations of the documents are
    // not served at all (not an allowed method), not even to admin.
    let support = connect(&server, &support).await;
    let billing = connect(&server, &billing).await;
    let admin = connect(&server, &admin).await;
    assert_eq!(api_tools(&support).await, set(&SUPPORT_TOOLS));
    let billing_tools = set(&[&SUPPORT_TOOLS[..], &BILLING_ONLY[..]].concat());
    assert_eq!(api_tools(&billing).await, billing_tools);
    let mut admin_tools = billing_tools.clone();
    admin_tools.insert("http_request".into());
    assert_eq!(api_tools(&admin).await, admin_tools, "every operation whose method is allowed, and no DELETE");

    // Support reads a CRM ticket list: Basic credentials and the static header added on
    // the server, the query built from the operation's parameters.
    let tickets = call_ok(&support, "crm_listTickets", json!({ "status": "open", "limit": 5 })).await;
    assert_eq!(tickets["tickets"][0]["id"], 4711, "{tickets}");
    assert_eq!(tickets["tickets"][0]["subject"], "Charged twice for order 10293");
    let seen = fixture.last("crm", "GET", "/api/v2/tickets");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CRM_USER}:{CRM_API_TOKEN}"));
    assert_eq!(seen.header("authorization"), Some(format!("Basic {basic}").as_str()), "{seen:?}");
    assert_eq!(seen.header("accept"), Some("application/json"));
    let query: BTreeSet<&str> = seen.query.split('&').collect();
    assert_eq!(query, BTreeSet::from(["status=open", "limit=5"]), "{seen:?}");

    // ... looks up the payment behind it (bearer key), ...
    let intent = call_ok(&support, "payments_getPaymentIntent", json!({ "payment_intent_id": "pi_3PqA1bQ" })).await;
    assert_eq!((intent["amount"].as_u64(), intent["status"].as_str()), (Some(4999), Some("succeeded")), "{intent}");
    let seen = fixture.last("payments", "GET", "/v1/payment_intents/pi_3PqA1bQ");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {PAYMENTS_SECRET_KEY}").as_str()), "{seen:?}");
    assert_eq!(seen.header("payments-version"), Some("2024-06-01"));

    // ... and tells the team in chat (API key header, JSON body).
    let text = "Ticket 4711: customer was charged twice for order 10293, billing please refund 15.00 EUR";
    let posted =
        call_ok(&support, "chat_postMessage", json!({ "channel_id": "C024BE91L", "json_body": { "text": text } }))
            .await;
    assert_eq!((posted["id"].as_str(), posted["text"].as_str()), (Some("1712345678.000200"), Some(text)));
    let seen = fixture.last("chat", "POST", "/api/channels/C024BE91L/messages");
    assert_eq!(seen.header("x-api-key"), Some(CHAT_API_KEY), "{seen:?}");
    assert_eq!(seen.body, json!({ "text": text }));
    let channels = call_ok(&support, "chat_listChannels", json!({})).await;
    assert_eq!(channels["channels"][1]["name"], "billing", "{channels}");

    // Each credential went to its own API only, and never came back to the agent: an API
    // echoing it gets it masked.
    let secrets =
        [("crm", [CRM_API_TOKEN, basic.as_str()]), ("payments", [PAYMENTS_SECRET_KEY; 2]), ("chat", [CHAT_API_KEY; 2])];
    for seen in fixture.seen() {
        let headers = format!("{:?}", seen.headers);
        for (api, forms) in &secrets {
            if *api != seen.api {
                assert!(!forms.iter().any(|form| headers.contains(form)), "{api}'s credential sent to {seen:?}");
            }
        }
    }
    let result =
        support.call_tool("payments_getCustomer", arguments(json!({ "customer_id": "cus_Q8dana" }))).await.unwrap();
    assert_eq!(result["structuredContent"]["body"]["debug"]["authorization"], "Bearer ***", "{result}");
    assert!(!result.to_string().contains(PAYMENTS_SECRET_KEY), "{result}");

    // Support may not refund: the operation answers exactly like one that does not exist,
    // and nothing reaches the payments API.
    let refund = json!({ "json_body": { "payment_intent": "pi_3PqA1bQ", "amount": 1500 } });
    let denied = support.call_tool("payments_createRefund", arguments(refund.clone())).await;
    let unknown = support.call_tool("payments_refundEverything", arguments(refund.clone())).await;
    let (
        Err(ClientError::Rpc { code: -32602, message: denied }),
        Err(ClientError::Rpc { code: -32602, message: unknown }),
    ) = (&denied, &unknown)
    else {
        panic!("refused like an unknown tool (-32602): {denied:?} / {unknown:?}");
    };
    assert_eq!(denied.replace("payments_createRefund", "TOOL"), unknown.replace("payments_refundEverything", "TOOL"));
    let deleted = support.call_tool("crm_deleteTicket", arguments(json!({ "ticket_id": 4711 }))).await;
    assert!(matches!(deleted, Err(ClientError::Rpc { code: -32602, .. })), "{deleted:?}");
    assert!(!fixture.seen().iter().any(|s| s.path == "/v1/refunds"), "no refund was sent: {:#?}", fixture.seen());

    // Billing may: the refund and the ticket update reach their APIs with their credentials.
    let refund = json!({ "json_body": { "payment_intent": "pi_3PqA1bQ", "amount": 1500, "reason": "duplicate" } });
    let refunded = call_ok(&billing, "payments_createRefund", refund.clone()).await;
    assert_eq!((refunded["id"].as_str(), refunded["amount"].as_u64()), (Some("re_1Rk9Tz"), Some(1500)), "{refunded}");
    let seen = fixture.last("payments", "POST", "/v1/refunds");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {PAYMENTS_SECRET_KEY}").as_str()));
    assert_eq!(seen.body, refund["json_body"]);
    let solved = call_ok(
        &billing,
        "crm_updateTicket",
        json!({ "ticket_id": 4711, "json_body": { "status": "solved", "comment": "Refunded 15.00 EUR." } }),
    )
    .await;
    assert_eq!(solved["status"], "solved", "{solved}");
    let seen = fixture.last("crm", "PATCH", "/api/v2/tickets/4711");
    assert_eq!(seen.header("authorization"), Some(format!("Basic {basic}").as_str()));

    // Even admin's raw http_request stays within the allowlists: no DELETE, no path outside.
    for (api, method, path, refusal) in [
        ("crm", "DELETE", "/tickets/4711", "method DELETE is not allowed for api 'crm'"),
        ("payments", "POST", "/payouts", "path '/payouts' is not allowed for api 'payments'"),
        ("chat", "DELETE", "/channels/C024BE91L/messages/1712345678.000200", "method DELETE is not allowed"),
    ] {
        let request = json!({ "api": api, "method": method, "path": path });
        let result = admin.call_tool("http_request", arguments(request)).await.unwrap();
        assert_eq!(result["isError"], true, "{result}");
        assert!(result.to_string().contains(refusal), "{refusal}: {result}");
    }
    let methods: BTreeSet<String> = fixture.seen().into_iter().map(|s| s.method).collect();
    assert!(!methods.contains("DELETE"), "{methods:?}");
    assert!(!fixture.seen().iter().any(|s| s.path.contains("payouts")));

    // The refused refund is in the audit log, denied, with the missing permission; the
    // allowed calls too; and no credential is in the log or the server's output.
    let (_, audit, _) = server
        .cli_until(&["audit", "search", "--principal", "token:support-agent", "--json"], |audit| {
            audit.contains("payments_createRefund") && audit.contains("chat_postMessage")
        });
    let records: Vec<Value> = audit.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let find = |tool: &str| records.iter().find(|r| r["tool"] == tool).unwrap_or_else(|| panic!("{tool}: {audit}"));
    let refused = find("payments_createRefund");
    assert_eq!((&refused["decision"], &refused["method"]), (&json!("deny"), &json!("tools/call")), "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("payments_createRefund"), "{refused}");
    assert_eq!(find("chat_postMessage")["decision"], "allow", "{audit}");
    assert_eq!(find("chat_postMessage")["toolbox"], "http", "{audit}");
    let (_, everything, _) = server.cli(&["audit", "search", "--limit", "1000", "--json"]);
    for secret in [CRM_API_TOKEN, PAYMENTS_SECRET_KEY, CHAT_API_KEY, &basic] {
        assert!(!everything.contains(secret) && !server.stderr().contains(secret), "a credential was logged");
    }

    // /readyz names each API (reachable, its credential variable set).
    let ready: Value = reqwest::get(format!("{}/readyz", server.base)).await.unwrap().json().await.unwrap();
    for api in ["crm", "payments", "chat"] {
        assert_eq!(ready["services"][format!("http:{api}")]["status"], "ok", "{ready}");
    }
    for client in [support, billing, admin] {
        client.close().await;
    }
}
