//! Who is calling and over what: the identity that authentication produces and that
//! authorization, rate limits and audit consume.

use std::fmt;

/// How a principal was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// The operator of a stdio server: whoever started the process.
    LocalOperator,
    /// Nobody authenticated (public paths, or `--insecure-no-auth`).
    Anonymous,
    /// The static bearer key (`--auth-key`).
    StaticKey,
    /// HTTP Basic, `[auth.basic]` (RFC 7617).
    Basic,
    /// A Rampart API token (`rpt_…`).
    ApiToken,
    /// A JWT from an OAuth 2.1 authorization server.
    Jwt,
    /// A TLS client certificate (mutual TLS).
    ClientCertificate,
    /// A local Unix user, as the D-Bus daemon vouches for a connection
    /// (`GetConnectionUnixUser`).
    UnixUser,
}

/// An authenticated identity: a stable id, how it was established, and its roles.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    /// Stable identifier, e.g. `local`, `anonymous`, `basic:alice`.
    pub id: String,
    /// How this principal was authenticated.
    pub kind: PrincipalKind,
    /// Role names granted to this principal (resolved by policy).
    pub roles: Vec<String>,
}

impl Principal {
    /// The local operator of a stdio server.
    pub fn local_operator() -> Self {
        Self { id: "local".into(), kind: PrincipalKind::LocalOperator, roles: vec!["admin".into()] }
    }

    /// The unauthenticated caller, with `roles`.
    pub fn anonymous(roles: Vec<String>) -> Self {
        Self { id: "anonymous".into(), kind: PrincipalKind::Anonymous, roles }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// The transport a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// MCP over stdin/stdout.
    Stdio,
    /// Streamable HTTP (MCP 2025-06-18 and later, including stateless 2026-07-28).
    StreamableHttp,
    /// The legacy HTTP+SSE transport (MCP 2024-11-05): `GET /sse`, `POST /messages`.
    HttpSse,
    /// MCP over WebSocket at `/ws` (subprotocol `mcp`).
    WebSocket,
    /// MCP over D-Bus (`org.rampart.Mcp1`).
    Dbus,
    /// A `rampart` command on the server's machine (`rampart token create`, the first-run
    /// admin token): the local operator calling a tool through the pipeline directly.
    Cli,
    /// The web console at `/console` (`server.console`): a signed-in operator's page
    /// calling a tool (an `admin_*` one for every change) through the pipeline.
    Console,
}

/// Everything known about the origin of one request.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Caller {
    /// Who is calling.
    pub principal: Principal,
    /// Over which transport.
    pub transport: Transport,
    /// The MCP session id, when the transport has sessions.
    pub session: Option<String>,
    /// The remote socket address, for HTTP.
    pub remote_addr: Option<String>,
}

impl Caller {
    /// A caller on stdio: the local operator, no session id, no address.
    pub fn stdio() -> Self {
        Self::local(Principal::local_operator())
    }

    /// A caller on stdio acting as `principal`.
    pub fn local(principal: Principal) -> Self {
        Self { principal, transport: Transport::Stdio, session: None, remote_addr: None }
    }

    /// The local operator `principal` running a `rampart` command.
    pub fn cli(principal: Principal) -> Self {
        Self { principal, transport: Transport::Cli, session: None, remote_addr: None }
    }
}
