//! A bare rmcp server: the baseline Rampart is measured against (issue #19).
//!
//! The official Rust SDK's streamable HTTP service on axum (TCP_NODELAY, as Rampart's
//! listener), one tool, `get_current_time {timezone}`, answering as Rampart's does (text
//! plus `structuredContent` with `timezone`, `datetime`, `day_of_week`, `is_dst`), and
//! nothing else: no authentication, no policy, no audit, no limits, no logging.
//!
//!     rampart-bench-bare serve --listen 127.0.0.1:0 [--stateless]
//!     rampart-bench-bare serve --transport stdio
//!
//! The same command line as `rampart serve` for what the bench scripts pass, and the same
//! banner line on stderr (`streamable HTTP at http://ADDR/mcp`), so the scripts start
//! either the same way. Stops on SIGTERM or SIGINT.

use std::{net::SocketAddr, sync::Arc};

use jiff::{Timestamp, tz::TimeZone};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult, PaginatedRequestParams,
        ServerConfig, Tool,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone)]
struct Bare {
    tool: Arc<Tool>,
}

impl Bare {
    fn new() -> Self {
        let tool = json!({
            "name": "get_current_time",
            "title": "Current time",
            "description": "Get the current time in an IANA time zone.",
            "inputSchema": {
                "type": "object",
                "properties": { "timezone": { "type": "string", "description": "IANA time zone name" } },
            },
            "annotations": { "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false },
        });
        Self { tool: Arc::new(serde_json::from_value(tool).expect("a valid tool")) }
    }
}

fn current_time(arguments: Option<&serde_json::Map<String, Value>>) -> CallToolResult {
    let name = arguments.and_then(|a| a.get("timezone")).and_then(Value::as_str).unwrap_or("UTC");
    let Ok(zone) = TimeZone::get(name) else {
        return CallToolResult::error(vec![ContentBlock::text(format!("unknown timezone '{name}'"))]);
    };
    let zoned = Timestamp::now().to_zoned(zone);
    let is_dst = zoned.time_zone().to_offset_info(zoned.timestamp()).dst().is_dst();
    let structured = json!({
        "timezone": name,
        "datetime": zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        "day_of_week": zoned.strftime("%A").to_string(),
        "is_dst": is_dst,
    });
    let mut result = CallToolResult::success(vec![ContentBlock::text(structured.to_string())]);
    result.structured_content = Some(structured);
    result
}

impl ServerHandler for Bare {
    fn get_info(&self) -> ServerConfig {
        serde_json::from_value(json!({
            "protocolVersion": rmcp::model::ProtocolVersion::LATEST_WITH_INITIALIZE,
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "rampart-bench-bare", "version": "0.0.0" },
        }))
        .expect("a valid server config")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![(*self.tool).clone()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        match request.name.as_ref() {
            "get_current_time" => Ok(current_time(request.arguments.as_ref()).into()),
            other => Err(ErrorData::invalid_params(format!("Unknown tool: {other}"), None)),
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: rampart-bench-bare serve (--listen ADDR [--stateless] | --transport stdio)");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("serve") {
        usage();
    }
    let (mut listen, mut stateless, mut stdio) = (None::<SocketAddr>, false, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().and_then(|a| a.parse().ok()).or_else(|| usage()),
            "--stateless" => stateless = true,
            "--transport" => stdio = args.next().as_deref() == Some("stdio"),
            // Flags the bench scripts pass to every server and that mean nothing here.
            "--insecure-no-auth" => {}
            "--log" => {
                args.next();
            }
            _ => usage(),
        }
    }
    if stdio {
        let running = Bare::new().serve(rmcp::transport::stdio()).await.expect("the stdio handshake");
        let _ = running.waiting().await;
        return;
    }
    let Some(listen) = listen else { usage() };
    let shutdown = signalled();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!stateless)
        .disable_allowed_hosts()
        .disable_allowed_origins();
    let bare = Bare::new();
    let service = StreamableHttpService::new(move || Ok(bare.clone()), Arc::new(LocalSessionManager::default()), config);
    let app = axum::Router::new().route_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let mode = if stateless { "stateless" } else { "sessions" };
    eprintln!("rampart-bench-bare: streamable HTTP at http://{address}/mcp ({mode})");
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.expect("serve");
}

/// Resolves on SIGTERM or SIGINT.
async fn signalled() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
