//! Rampart's configuration, in two stages (like ripgrep's low/high args): a serde model of
//! `rampart.toml` ([`Config`]), then layering and validation ([`load()`]).
//!
//! Precedence, highest first: command-line flags > `RAMPART_*` environment variables (a
//! `.env` file in the working directory fills unset ones) > `rampart.toml` > defaults.
//! Unknown keys and bad values are errors that name the key and where it came from.
//!
//! - [`Config`]: one struct per table (`[server]` is [`ServerConfig`], `[auth]`
//!   [`AuthConfig`], …), every one `deny_unknown_fields`, every default documented on its
//!   field. The tables of the toolbox crates (`[fs]`, `[sql]`, `[http]`, `[exec]`,
//!   `[upstreams.NAME]`) stay [`serde_json::Value`] here: each crate validates its own, so
//!   this crate depends on none of them. `[roles.NAME]` is `rampart-policy`'s
//!   [`PolicyConfig`](rampart_policy::PolicyConfig).
//! - [`load()`] with [`LoadOptions`] → [`Loaded`] (the configuration and the file it read),
//!   or a [`ConfigError`] naming the key and its layer.
//! - [`ENV_VARS`]: every `RAMPART_*` variable and the key it sets; any other `RAMPART_*`
//!   variable is an error, so a typo is not silently ignored.
//! - [`Secret`]: keys and password hashes, printed as `***` by `Debug`, `Display` and
//!   `Serialize`.
//! - [`EXAMPLE_CONFIG`]: the commented file `rampart init` writes; it parses to the
//!   defaults.
//!
//! ```
//! use rampart_config::{LoadOptions, load};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let file = std::env::temp_dir().join(format!("rampart-config-doc-{}.toml", std::process::id()));
//! std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:9000\"\n[log]\nlevel = \"debug\"\n")?;
//! let loaded = load(LoadOptions {
//!     config_path: Some(file.clone()),
//!     // The environment beats the file (`None` reads the process's own)…
//!     env: Some(vec![("RAMPART_LOG".into(), "warn".into())]),
//!     // …and a flag beats both.
//!     overrides: vec![("server.listen", serde_json::json!("127.0.0.1:9100"))],
//!     dotenv: false,
//! })?;
//! assert_eq!(loaded.config.log.level, "warn");
//! assert_eq!(loaded.config.server.listen.port(), 9100);
//! assert_eq!(loaded.config.tools.enabled, ["system"]); // a default
//!
//! // An unknown key is an error that names it and the file.
//! std::fs::write(&file, "[server]\nlisten_on = \"127.0.0.1:9000\"\n")?;
//! let error = load(LoadOptions { config_path: Some(file.clone()), env: Some(vec![]), ..LoadOptions::default() })
//!     .unwrap_err();
//! let message = error.to_string();
//! assert!(message.contains("listen_on") && message.contains(&*file.to_string_lossy()), "{message}");
//! std::fs::remove_file(&file)?;
//! # Ok(()) }
//! ```

mod env_vars;
mod load;
mod model;
mod secret;

pub use env_vars::{ENV_VARS, EnvVar, EnvVarKind};
pub use load::{ConfigError, LoadOptions, Loaded, load};
pub use model::{
    AuditConfig, AuditFailure, AuthConfig, BasicAuthConfig, ClusterConfig, Config, DbusBus, DbusConfig, DbusUser,
    EXAMPLE_CONFIG, JwtConfig, LimitsConfig, LogConfig, LogFormat, Profile, ServerConfig, StdioConfig, StoreConfig,
    SystemToolsConfig, TelemetryConfig, TlsClient, TlsConfig, ToolLimit, ToolsConfig, TransportKind,
};
pub use secret::Secret;
