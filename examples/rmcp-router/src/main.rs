//! `rmcp-router`: an MCP server written with rmcp's `#[tool_router]` — `Counter` below is
//! exactly what one writes for rmcp alone — mounted unchanged in Rampart, which serves it
//! in-process with authentication, roles, limits, audit and its whole command line
//! (`rmcp-router serve`, `rmcp-router token create`, `rmcp-router tool counter_get`).

mod counter;

use std::process::ExitCode;

fn main() -> ExitCode {
    // A new Counter for each principal (its own count), as rmcp's streamable HTTP server
    // would make one per session.
    rampart::Rampart::new().rmcp_server("counter", counter::Counter::new).run()
}
