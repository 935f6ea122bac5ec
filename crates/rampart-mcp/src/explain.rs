//! Why a connection failed, in words a person can act on: the error chains of rmcp,
//! reqwest, hyper and the OS become "connection refused: is a server listening on …?",
//! "the server wants valid credentials (HTTP 401) …" — never a library's type names.

use std::error::Error;

/// What the error chain of a failed HTTP connection says, before [`HttpFailure::explain`].
/// `answered`: a server answered in a way a legacy HTTP+SSE server would (worth trying).
pub(crate) struct HttpFailure {
    host: String,
    message: String,
    answered: bool,
    /// The request could not be sent (rmcp keeps the HTTP client's cause out of the
    /// chain): ask the network why.
    probe: bool,
    https: bool,
}

/// The words for a server that took the connection but did not answer `initialize` in
/// `waited`.
pub(crate) fn handshake_timeout(url: &str, waited: std::time::Duration) -> String {
    format!("no answer from {url} in {} s (timeout): is it an MCP server, and is it overloaded?", waited.as_secs())
}

/// Reads the chain of `error`, a failed connection to `url`.
pub(crate) fn http_failure(url: &str, error: &(dyn Error + 'static)) -> HttpFailure {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_owned());
    let (message, answered) = from_chain(url, &host, error);
    let probe = error.to_string().contains("error sending request");
    HttpFailure { host, message, answered, probe, https: url.starts_with("https://") }
}

impl HttpFailure {
    /// What went wrong, and whether a server answered at all (an HTTP status): only then
    /// is another transport worth trying.
    pub(crate) async fn explain(self) -> (String, bool) {
        let Self { host, message, answered, probe, https } = self;
        if !probe {
            return (message, answered);
        }
        let probe = tokio::time::timeout(std::time::Duration::from_secs(3), tokio::net::TcpStream::connect(&host));
        match probe.await {
            Ok(Err(io)) => {
                if let Some(message) = io_failure(&host, &io) {
                    return (message, false);
                }
                if io.to_string().contains("lookup") {
                    return (format!("cannot resolve the host of {host} (DNS)"), false);
                }
                return (io.to_string(), false);
            }
            Err(_) => return (format!("no answer from {host} in time (timeout)"), false),
            // Something listens, yet the request could not be sent: over https, that is
            // the TLS handshake.
            Ok(Ok(_)) if https => {
                return (
                    format!(
                        "TLS handshake with {host} failed: does it serve https (a plain-HTTP server is reached with \
                         http://), with a certificate this machine trusts?"
                    ),
                    false,
                );
            }
            Ok(Ok(_)) => {}
        }
        (message, answered)
    }
}

fn from_chain(url: &str, host: &str, error: &(dyn Error + 'static)) -> (String, bool) {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(message) = io_failure(host, io)
        {
            return (message, false);
        }
        if let Some(http) = error.downcast_ref::<reqwest::Error>() {
            if http.is_timeout() {
                return (format!("no answer from {host} in time (timeout)"), false);
            }
            if let Some(status) = http.status() {
                return (status_failure(url, status.as_u16()), legacy_may_answer(status.as_u16()));
            }
        }
        source = error.source();
    }
    let text = error.to_string();
    if let Some(status) = text.split("HTTP ").nth(1).and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok()) {
        return (status_failure(url, status), legacy_may_answer(status));
    }
    if text.contains("Auth required") {
        return (status_failure(url, 401), false);
    }
    if let Some(rest) = text.strip_prefix("JSON-RPC error: ") {
        // `CODE: message(data)`: the server's own words.
        let message = rest.split_once(": ").map_or(rest, |(_, message)| message);
        let message = message.split_once("({").map_or(message, |(message, _)| message);
        return (message.to_owned(), true);
    }
    if text.contains("dns error") || text.contains("failed to lookup address") {
        return (format!("cannot resolve the host of {url} (DNS)"), false);
    }
    if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
        return (format!("TLS failed with {host}: {}", innermost(error)), false);
    }
    (innermost(error), true)
}

/// What went wrong starting `program` or talking to it over stdio.
pub(crate) fn stdio_failure(program: &str, error: &(dyn Error + 'static)) -> String {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::NotFound => {
                    return format!("command not found: {program} (is it installed, and on PATH?)");
                }
                std::io::ErrorKind::PermissionDenied => {
                    return format!("permission denied running {program} (is it executable?)");
                }
                _ => {}
            }
        }
        source = error.source();
    }
    let text = error.to_string();
    if text.contains("connection closed") || text.contains("Transport closed") || text.contains("channel closed") {
        return format!("{program} exited (or closed stdout) before answering initialize; run it alone to see why");
    }
    innermost(error)
}

fn io_failure(host: &str, io: &std::io::Error) -> Option<String> {
    Some(match io.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused: is a server listening on {host}? (`rampart serve` starts one)")
        }
        std::io::ErrorKind::TimedOut => format!("no answer from {host} in time (timeout)"),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
            format!("{host} closed the connection")
        }
        std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
            format!("{host} is unreachable from here")
        }
        _ => return None,
    })
}

/// A streamable HTTP POST refused with this status may come from a server of the
/// 2024-11-05 era, which speaks HTTP+SSE (MCP 2025-03-26 "Backwards Compatibility").
fn legacy_may_answer(status: u16) -> bool {
    matches!(status, 400 | 404 | 405)
}

fn status_failure(url: &str, status: u16) -> String {
    match status {
        401 => "the server wants valid credentials (HTTP 401): pass --token or set RAMPART_TOKEN, and check that \
                the token is current (not revoked or expired); for an upstream: its headers or oauth"
            .into(),
        403 => "the server refused these credentials (HTTP 403)".into(),
        404 => format!("no MCP endpoint at {url} (HTTP 404): is the path right? Rampart serves /mcp"),
        405 => format!("{url} does not accept MCP requests (HTTP 405)"),
        421 | 400 => format!("the server refused the request (HTTP {status}): check its allowed hosts and origins"),
        status => format!("the server answered HTTP {status}"),
    }
}

/// The deepest message of the chain: usually the one that names the cause.
fn innermost(error: &(dyn Error + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("Send message error Transport [rmcp::transport::worker::WorkerTransport<X>] error: {0}")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn causes_are_named_without_library_types() {
        let refused = Wrapped(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let (message, answered) = from_chain("http://127.0.0.1:1/mcp", "127.0.0.1:1", &refused);
        assert_eq!(message, "connection refused: is a server listening on 127.0.0.1:1? (`rampart serve` starts one)");
        assert!(!answered);
        let missing = Wrapped(std::io::Error::from(std::io::ErrorKind::NotFound));
        let message = stdio_failure("mcp-server-nope", &missing);
        assert_eq!(message, "command not found: mcp-server-nope (is it installed, and on PATH?)");
        let unauthorized = std::io::Error::other("Auth required");
        let (message, answered) = from_chain("http://h/mcp", "h:80", &unauthorized);
        assert!(message.starts_with("the server wants valid credentials (HTTP 401)"), "{message}");
        assert!(!answered, "401 is not a legacy server's answer");
    }
}
