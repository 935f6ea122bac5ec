//! `rampart`: the server (`serve`), its set-up (`init`, `config check`, `hash-password`),
//! administration (`token`, `audit`, `policy`), and a client for any MCP server (`tools`,
//! `tool`, `call`, `resources`, `read`, `prompts`, `prompt`, `shell`).
//!
//! Every command returns a report that one printer (`output`) renders: data on stdout
//! (JSON under `--json`), everything else (notes, progress, errors) on stderr. Exit
//! status: 0 success, 1 the tool reported an error (`isError`), 2 usage, configuration,
//! connection or protocol error, 130 interrupted (the call cancelled on the server).

mod admin;
mod args;
mod chat;
mod client;
mod display;
mod output;
mod progress;
mod setup;
mod shell;
mod tool_cache;
mod tool_command;
mod verify;

use std::{process::ExitCode, sync::OnceLock};

use clap::Parser;
use rampart_server::ToolboxFactory;

use crate::{
    args::{Cli, Command, ConfigCommand},
    output::{Printer, Report},
};

/// The toolboxes the program adds (see [`main_with`]); set once, before any command runs.
static ADDED: OnceLock<Vec<ToolboxFactory>> = OnceLock::new();

/// The toolboxes the program added to Rampart's own.
pub(crate) fn added_toolboxes() -> Vec<ToolboxFactory> {
    ADDED.get().cloned().unwrap_or_default()
}

/// The `rampart` command line, reading the process's arguments: what the `rampart` binary
/// runs, and what a program built on Rampart runs with its own toolboxes `added` (served
/// by `serve` and checked by `config check` like the built-in ones). Returns the exit
/// status (0 success, 1 a tool reported an error, 2 usage/configuration/connection
/// error, 130 interrupted).
pub fn main_with(added: Vec<ToolboxFactory>) -> ExitCode {
    // A second call in one process keeps the first list (the command line runs once).
    let _ = ADDED.set(added);
    let mut cli = Cli::parse();
    if let Command::Tool(args) = &mut cli.command {
        args.take_json();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return output::error(&anyhow::anyhow!("cannot start the async runtime: {error}")),
    };
    let printer = Printer::new(cli.command.json_flag().is_some_and(|json| *json));
    match cli.command {
        Command::Serve(args) => runtime.block_on(setup::serve(args)).unwrap_or_else(|error| output::error(&error)),
        Command::Chat(args) => runtime.block_on(chat::run(args)).unwrap_or_else(|error| output::error(&error)),
        // The shell reads lines on this thread and runs each command on the runtime.
        Command::Shell(args) => shell::run(args, runtime.handle()).unwrap_or_else(|error| output::error(&error)),
        command => match runtime.block_on(run(command, &printer)) {
            Ok(report) => printer.print(&report),
            Err(error) => output::error(&error),
        },
    }
}

/// Runs one command of the table (the command line's and the shell's), connecting to
/// the server first when it is a client command.
///
/// # Errors
/// Usage, configuration, connection or protocol errors (exit status 2).
async fn run(command: Command, printer: &Printer) -> anyhow::Result<Report> {
    if let Command::Tool(args) = &command
        && let Some(help) = client::tool_help_from_cache(args)
    {
        return Ok(help);
    }
    if let Some(args) = client::client_args(&command) {
        let client = client::connect(args).await?;
        let report = client::run(command, &client).await;
        client.close().await;
        return report;
    }
    match command {
        Command::Init(args) => setup::init(&args),
        Command::Config { command: ConfigCommand::Check(args) } => setup::config_check(&args),
        Command::HashPassword => setup::hash_password(),
        Command::Token { command } => admin::token(command).await,
        Command::Audit { command } => admin::audit(command, printer).await,
        Command::Policy { command } => admin::policy(command).await,
        Command::Sandbox { command: args::SandboxCommand::Check { .. } } => admin::sandbox_check(),
        Command::Completions { shell } => client::completions(shell),
        Command::DynamicComplete { words } => Ok(client::dynamic_complete(&words).await),
        Command::Upstream { command: args::UpstreamCommand::Import { file, secrets, .. } } => {
            client::import(&file, secrets.as_deref())
        }
        // Inside the shell: a conversation on the shell's terminal.
        Command::Chat(args) => {
            let code = chat::run(args).await?;
            let status =
                if code == std::process::ExitCode::SUCCESS { output::Status::Success } else { output::Status::Failure };
            Ok(Report::status_only(status))
        }
        other => anyhow::bail!("`{}` cannot run here", other.name()),
    }
}
