//! The `http` toolbox against fixture servers on 127.0.0.1 (port 0). Refusals of other
//! addresses happen before any connection: these tests never send a packet off loopback.
//!
//! `attacks`: allowlist bypasses, SSRF (IP literals in every spelling, redirects to
//! refused addresses), oversized, endless and slow bodies. `credentials`: the secret
//! reaches the API and nothing else. `tools`: what agents use. `config`: configuration
//! errors, permissions, readiness.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod attacks;
mod config;
mod credentials;
mod support;
mod tools;
