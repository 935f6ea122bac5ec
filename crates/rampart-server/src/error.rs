//! Start-up errors: each names what to change.

use std::net::SocketAddr;

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
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
    /// A non-loopback address without authentication.
    #[error(
        "refusing to listen on {0} without authentication: set --auth-key (or RAMPART_AUTH_KEY, or [auth.basic]), \
         or pass --insecure-no-auth if something in front of Rampart authenticates"
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
