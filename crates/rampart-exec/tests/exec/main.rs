//! The `exec` toolbox's one integration test binary, written before the code: the attacks
//! its sandbox must stop, against real sandboxed processes (`attacks`: filesystem,
//! secrets, network, resources, process trees, signals, kernel attack surface), the
//! tools' behaviour (`tools`: arguments, output, timeouts, cancellation, streaming,
//! scratch directories) and the configuration and policy around them (`setup`).
//!
//! A test whose layer this machine does not enforce says so on stderr (`SKIPPED …`) and
//! passes; `sandbox_check_reports_every_layer` prints what this machine enforces, and
//! fails when a layer named in `SANDBOX_EXPECT_LAYERS` (e.g.
//! `landlock,seccomp,namespaces`, for CI on a machine known to have them) is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
mod common;
mod setup;
mod tools;
