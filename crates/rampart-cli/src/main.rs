//! `rampart`: the server, its set-up and administration, and a client, shell and agent
//! for any MCP server. Everything is in the library ([`rampart_cli::main_with`]), which a
//! program built on Rampart also runs, with its own toolboxes.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    rampart_cli::main_with(Vec::new())
}
