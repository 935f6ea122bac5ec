//! The `http` toolbox: named HTTP APIs for agents, with the credentials kept on the server.
//!
//! Tools: `http_list_apis`, `http_request(api, method, path, query?, json_body?)`, with
//! `[http.fetch] enabled = true` also `http_fetch(url)` for a host allowlist (HTML turned
//! into Markdown), and one tool per operation of an API's OpenAPI document
//! (`NAME_<operationId>`). Every call first asks the policy through
//! [`rampart_core::CallContext::authorize`] for [`rampart_core::Request::HttpApi`] with
//! the API's name (`fetch:HOST` for `http_fetch`); this crate has no permission logic of
//! its own.
//!
//! What stands between an agent and the network, in order:
//!
//! 1. **Allowlists** (`toolbox.rs`, `path.rs`): the API's methods and path globs, matched
//!    against the path as the server will decode it; `..`, encoded slashes, double
//!    encoding and authority tricks (`//host`, `@host`) are refused, and the URL is built
//!    from the base URL, never by concatenation.
//! 2. **The SSRF guard** (`ssrf.rs`), on every request and every redirect hop (at most
//!    five, followed by this crate, not by reqwest): http(s) only, no user info, ports 80,
//!    443 and the base URL's, and no loopback, private, link-local, CGNAT, multicast,
//!    reserved or documentation address in any spelling or IPv6 embedding, unless the API
//!    sets `allow_private` (for its own host only). Host names are checked inside reqwest's
//!    DNS resolver, which hands the connector exactly the addresses it checked, so DNS
//!    rebinding cannot slip between check and connect.
//! 3. **Credentials** (`toolbox.rs`, `redact.rs`): read from the environment at each
//!    request, sent only to the API's own origin (never to a redirect elsewhere), marked
//!    sensitive, and replaced by `***` in every header, body and error the call returns.
//! 4. **Limits** (`client.rs`): one deadline for the whole call (redirects and body
//!    included), bodies read as a stream up to `max_response_bytes`, no decompression.
//!
//! [`HttpToolbox::from_config`] builds the toolbox from the `[http]` table as JSON (as
//! `rampart-config` keeps it), [`HttpToolbox::new`] from an [`HttpConfig`] ([`ApiConfig`]
//! per API with its [`AuthConfig`], [`FetchConfig`] for `http_fetch`); it connects to
//! nothing, and fails with an [`HttpConfigError`] naming the key.

mod client;
mod config;
mod fetch;
mod openapi;
mod path;
mod redact;
mod response;
mod ssrf;
mod toolbox;

pub use config::{ApiConfig, AuthConfig, FetchConfig, HttpConfig, HttpConfigError};
pub use toolbox::HttpToolbox;
