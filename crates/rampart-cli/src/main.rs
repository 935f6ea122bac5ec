//! `rampart`: the server (`serve`), its set-up (`init`, `config check`, `hash-password`),
//! and a client for any MCP server (`tools`, `call`).
//!
//! Data goes to stdout, everything else (logs, banner, errors) to stderr. Exit status:
//! 0 success, 1 the tool reported an error (`isError`), 2 usage, configuration,
//! connection or protocol error.

mod admin;
mod args;
mod client;
mod display;
mod setup;
mod tool_command;
mod verify;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, ConfigCommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => setup::serve(args).await,
            Command::Init(args) => setup::init(&args),
            Command::Config { command: ConfigCommand::Check(args) } => setup::config_check(&args),
            Command::Config { command: ConfigCommand::Reload(args) } => client::config_reload(args).await,
            Command::HashPassword => setup::hash_password(),
            Command::Token { command } => admin::token(command).await,
            Command::Audit { command } => admin::audit(command).await,
            Command::Policy { command } => admin::policy(command).await,
            Command::Sandbox { command: args::SandboxCommand::Check { json } } => admin::sandbox_check(json),
            Command::Tools(args) => client::tools(args).await,
            Command::Call(args) => client::call(args).await,
            Command::Tool(args) => client::tool(args).await,
            Command::Resources(args) => client::resources(args).await,
            Command::Read(args) => client::read(args).await,
            Command::Prompts(args) => client::prompts(args).await,
            Command::Prompt(args) => client::prompt(args).await,
            Command::Completions { shell } => client::completions(shell),
            Command::Upstream { command } => client::upstream(command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
