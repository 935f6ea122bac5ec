//! DNS-rebinding protection (MCP 2025-11-25, Streamable HTTP "Security Warning": servers
//! MUST validate `Origin`). A request whose `Host` or `Origin` is not allowed gets 403
//! before authentication or session handling.
//!
//! Allowed `Host`: `localhost`, `127.0.0.1`, `[::1]` (any port), plus
//! `server.allowed_hosts` (`host` for any port, or `host:port`). Allowed `Origin`: absent,
//! `http(s)://` with one of the loopback names (any port), or an exact entry of
//! `server.allowed_origins`.

const LOOPBACK_NAMES: &[&str] = &["localhost", "127.0.0.1", "[::1]", "::1"];

/// The allow-lists, normalised to lower case.
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginGuard {
    hosts: Vec<String>,
    origins: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    Host(String),
    Origin(String),
}

impl Refusal {
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Host(host) => format!("Host '{host}' is not allowed; add it to server.allowed_hosts"),
            Self::Origin(origin) => format!("Origin '{origin}' is not allowed; add it to server.allowed_origins"),
        }
    }
}

/// Splits `host[:port]` (with `[v6]` brackets) into the host part.
fn host_part(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map_or(authority, |(h, _)| &authority[..h.len() + 2]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { authority })
}

impl OriginGuard {
    pub(crate) fn new(hosts: &[String], origins: &[String]) -> Self {
        let lower = |v: &[String]| v.iter().map(|s| s.trim().trim_end_matches('/').to_ascii_lowercase()).collect();
        Self { hosts: lower(hosts), origins: lower(origins) }
    }

    fn host_allowed(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        let host = host_part(&authority);
        LOOPBACK_NAMES.contains(&host) || self.hosts.iter().any(|allowed| *allowed == authority || *allowed == host)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let Some((scheme, authority)) = origin.split_once("://") else { return false };
        matches!(scheme, "http" | "https") && !authority.contains('/') && LOOPBACK_NAMES.contains(&host_part(authority))
    }

    /// Checks a request's `Host` and `Origin` header values.
    pub(crate) fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), Refusal> {
        match host {
            Some(host) if self.host_allowed(host) => {}
            other => return Err(Refusal::Host(other.unwrap_or("").to_owned())),
        }
        match origin {
            None => Ok(()),
            Some(origin) if self.origin_allowed(origin) => Ok(()),
            Some(origin) => Err(Refusal::Origin(origin.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_origin_table() {
        let guard = OriginGuard::new(
            &["mcp.example.com".into(), "api.example.com:8443".into()],
            &["https://app.example.com".into()],
        );
        let ok = Ok(());
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Result<(), Refusal>);
        let cases: &[Case<'_>] = &[
            (Some("127.0.0.1:8080"), None, ok.clone()),
            (Some("localhost"), None, ok.clone()),
            (Some("LOCALHOST:1"), None, ok.clone()),
            (Some("[::1]:8080"), None, ok.clone()),
            (Some("127.0.0.1:8080"), Some("http://127.0.0.1:8080"), ok.clone()),
            (Some("127.0.0.1:8080"), Some("http://localhost:3000"), ok.clone()),
            (Some("mcp.example.com"), None, ok.clone()),
            (Some("mcp.example.com:443"), None, ok.clone()),
            (Some("api.example.com:8443"), None, ok.clone()),
            (Some("127.0.0.1"), Some("https://app.example.com"), ok.clone()),
            (Some("evil.example.com"), Some("http://evil.example.com"), Err(Refusal::Host("evil.example.com".into()))),
            (Some("api.example.com:9999"), None, Err(Refusal::Host("api.example.com:9999".into()))),
            (Some("localhost.evil.com"), None, Err(Refusal::Host("localhost.evil.com".into()))),
            (Some("127.0.0.1.nip.io"), None, Err(Refusal::Host("127.0.0.1.nip.io".into()))),
            (None, None, Err(Refusal::Host(String::new()))),
            (
                Some("127.0.0.1:8080"),
                Some("http://evil.example.com"),
                Err(Refusal::Origin("http://evil.example.com".into())),
            ),
            (Some("127.0.0.1:8080"), Some("null"), Err(Refusal::Origin("null".into()))),
            (
                Some("127.0.0.1:8080"),
                Some("http://localhost.evil.com"),
                Err(Refusal::Origin("http://localhost.evil.com".into())),
            ),
            (Some("127.0.0.1:8080"), Some("file://localhost"), Err(Refusal::Origin("file://localhost".into()))),
            (
                Some("127.0.0.1:8080"),
                Some("https://app.example.com.evil"),
                Err(Refusal::Origin("https://app.example.com.evil".into())),
            ),
        ];
        for (host, origin, expected) in cases {
            assert_eq!(&guard.check(*host, *origin), expected, "host {host:?} origin {origin:?}");
        }
    }
}
