//! Rampart's built-in toolboxes. Each implements [`rampart_core::Toolbox`] and knows
//! nothing of transports or security: the pipeline applies those.
//!
//! - [`SystemToolbox`]: health, about, current time and time-zone conversion.
//! - [`ConformanceToolbox`]: the fixtures the official MCP conformance suite calls; only
//!   in `--profile conformance`, never by default.

mod conformance;
mod system;
mod time;

pub use conformance::ConformanceToolbox;
pub use system::{SystemInfo, SystemToolbox};
