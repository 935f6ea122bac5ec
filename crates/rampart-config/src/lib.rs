//! Rampart's configuration, in two stages (like ripgrep's low/high args): a serde model of
//! `rampart.toml` ([`Config`]), then layering and validation ([`load`]).
//!
//! Precedence, highest first: command-line flags > `RAMPART_*` environment variables (a
//! `.env` file in the working directory fills unset ones) > `rampart.toml` > defaults.
//! Unknown keys and bad values are errors that name the key and where it came from.

mod env_vars;
mod load;
mod model;
mod secret;

pub use env_vars::{ENV_VARS, EnvVar, EnvVarKind};
pub use load::{ConfigError, LoadOptions, Loaded, load};
pub use model::{
    AuditConfig, AuditFailure, AuthConfig, BasicAuthConfig, Config, DbusBus, DbusConfig, DbusUser, EXAMPLE_CONFIG,
    JwtConfig, LimitsConfig, LogConfig, LogFormat, Profile, ServerConfig, StdioConfig, StoreConfig, SystemToolsConfig,
    TlsClient, TlsConfig, ToolLimit, ToolsConfig, TransportKind,
};
pub use secret::Secret;
