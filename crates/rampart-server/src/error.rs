//! Start-up errors: each names what to change.

use std::net::SocketAddr;

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration does not load (a file that cannot be read or parsed, an unknown
    /// key, a bad value), with the source's message.
    #[error("{0}")]
    Config(String),
    /// `tools.enabled` names a toolbox that does not exist.
    #[error("unknown toolbox '{name}' in tools.enabled (known: {known})")]
    UnknownToolbox {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A toolbox rejected its configuration.
    #[error("toolbox '{toolbox}': {message}")]
    Toolbox {
        /// Toolbox name.
        toolbox: String,
        /// What is wrong.
        message: String,
    },
    /// Two toolboxes declare the same name.
    #[error("{0}")]
    Duplicate(String),
    /// Authentication is misconfigured.
    #[error("{0}")]
    Auth(String),
    /// The roles do not validate.
    #[error("roles: {0}")]
    Policy(String),
    /// The store cannot be opened.
    #[error("store: {0}")]
    Store(String),
    /// `[cluster] redis_url` is invalid or Redis does not answer.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The D-Bus transport could not start (no bus, name taken).
    #[error("D-Bus: {0}")]
    Dbus(String),
    /// TLS cannot be set up.
    #[error("{0}")]
    Tls(String),
    /// The audit log cannot be opened.
    #[error("audit log: {0}")]
    Audit(String),
    /// A non-loopback address where unauthenticated callers would get more than `public`.
    #[error(
        "refusing to listen on {0} without authentication: auth.anonymous lets unauthenticated callers in with \
         roles beyond 'public'; use API tokens (rampart token create), or pass --insecure-no-auth if something in \
         front of Rampart authenticates"
    )]
    Unauthenticated(SocketAddr),
    /// The address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// The transport failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
