//! `rampart shell`: a reedline shell on one MCP server. A line is a tool call
//! (`get_current_time timezone=Asia/Tokyo`, the tool's flags, or one JSON object), a
//! command of the command line's own table (`tools`, `read URI`, `token list`…: parsed by
//! the same clap definition, run by the same functions, drawn by the same printer), or a
//! shell built-in (`help`, `describe`, `use`, `json`, `whoami`, `history`, `exit`).

use std::{
    borrow::Cow,
    io::IsTerminal,
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use clap::{CommandFactory, Parser};
use rampart_mcp::{McpClient, ServerNotice, ToolInfo};
use reedline::{
    ColumnarMenu, Completer, CompletionResult, DefaultHinter, Emacs, ExternalPrinter, FileBackedHistory, History,
    KeyCode, KeyModifiers, MenuBuilder, Prompt, PromptEditMode, PromptHistorySearch, Reedline, ReedlineEvent,
    ReedlineMenu, SearchDirection, SearchQuery, Signal, Span, Suggestion, ValidationResult, Validator,
    default_emacs_keybindings,
};
use serde_json::{Value, json};
use tokio::runtime::Handle;

use crate::{
    args::{Cli, ClientArgs},
    client, display,
    output::{self, Printer, Report, View, first_line},
    tool_command,
};

/// Where the shell connects when neither `--url` nor `--stdio` is given: a local Rampart.
const DEFAULT_URL: &str = "http://127.0.0.1:8080/mcp";

/// Lines kept in each server's history file.
const HISTORY_LINES: usize = 5000;

/// The shell's own commands (besides the command line's and the tools).
const BUILTINS: &[(&str, &str)] = &[
    ("help", "this list; `help NAME` shows a command's or a tool's help"),
    ("describe", "describe TOOL: its description, annotations and arguments"),
    ("use", "use URL | use NAME (a [servers.NAME] of the client file): switch servers"),
    ("json", "json on|off: print JSON, as --json does"),
    ("whoami", "the principal and roles the server sees (its system_whoami tool)"),
    ("history", "the lines typed on this server, oldest first"),
    ("exit", "leave (or Ctrl-D)"),
];

/// Command-line commands that make no sense inside the shell.
const NOT_IN_SHELL: &[&str] = &["serve", "shell", "completions", "hash-password", "init"];

/// What the completer and the loop share about the connected server.
#[derive(Default)]
struct Catalog {
    tools: Vec<ToolInfo>,
    prompts: Vec<Value>,
}

struct Session {
    client: Arc<McpClient>,
    /// Where the server is (the key of its tool cache).
    args: ClientArgs,
    label: String,
    catalog: Arc<RwLock<Catalog>>,
    /// Set by a `list_changed` notification: the catalog is read again before the next line.
    stale: Arc<AtomicBool>,
    notices: tokio::task::JoinHandle<()>,
    editor: Reedline,
}

/// Runs the shell until `exit` or Ctrl-D.
///
/// # Errors
/// The first connection fails.
pub(crate) fn run(args: ClientArgs, runtime: &Handle) -> anyhow::Result<ExitCode> {
    let mut args = args;
    if args.url.is_none() && args.stdio.is_none() {
        args.url = Some(DEFAULT_URL.to_owned());
    }
    let mut json = args.json;
    let reading = Arc::new(AtomicBool::new(false));
    let mut session = runtime.block_on(Session::open(&args, runtime, &reading))?;
    if std::io::stdout().is_terminal() {
        eprintln!(
            "connected to {} ({} tools). `help` lists the commands; Tab completes; Ctrl-D exits.",
            session.label,
            session.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner).tools.len()
        );
    }
    loop {
        if session.stale.swap(false, Ordering::Relaxed) {
            runtime.block_on(session.refresh());
        }
        let prompt = ShellPrompt(format!("{}> ", session.label));
        reading.store(true, Ordering::Relaxed);
        let signal = session.editor.read_line(&prompt);
        reading.store(false, Ordering::Relaxed);
        let line = match signal {
            Ok(Signal::Success(line)) => line,
            Ok(Signal::CtrlC) => continue,
            Ok(Signal::CtrlD) => break,
            Ok(_) => continue,
            Err(error) => {
                output::error(&anyhow::anyhow!("cannot read the terminal: {error}"));
                break;
            }
        };
        let line = line.trim();
        match line {
            "" => continue,
            "exit" | "quit" => break,
            "json on" | "json off" => {
                json = line == "json on";
                continue;
            }
            "history" => {
                print(&history_report(session.editor.history()), json);
                continue;
            }
            _ => {}
        }
        if let Some(target) = line.strip_prefix("use ") {
            match runtime.block_on(switch(target.trim(), &args, runtime, &reading)) {
                Ok(next) => {
                    let previous = std::mem::replace(&mut session, next);
                    runtime.block_on(previous.close());
                    eprintln!("connected to {}", session.label);
                }
                Err(error) => {
                    output::error(&error);
                }
            }
            continue;
        }
        match runtime.block_on(session.line(line, json)) {
            Ok(report) => print(&report, json),
            Err(error) => {
                output::error(&error);
            }
        }
    }
    runtime.block_on(session.close());
    Ok(ExitCode::SUCCESS)
}

fn print(report: &Report, json: bool) {
    Printer::new(json).print(report);
}

impl Session {
    async fn open(args: &ClientArgs, runtime: &Handle, reading: &Arc<AtomicBool>) -> anyhow::Result<Self> {
        let client = Arc::new(client::connect(args).await?);
        let label = match (&args.url, &args.stdio) {
            (Some(url), _) => url.trim_start_matches("http://").trim_start_matches("https://").to_owned(),
            (None, Some(command)) => {
                command.split_whitespace().next().unwrap_or("stdio").rsplit('/').next().unwrap_or("stdio").to_owned()
            }
            (None, None) => "server".to_owned(),
        };
        let key = args.url.clone().or_else(|| args.stdio.clone()).unwrap_or_default();
        let stale = Arc::new(AtomicBool::new(false));
        let printer = ExternalPrinter::<String>::new(256);
        let notices =
            tokio::spawn(show_notices(Arc::clone(&client), printer.sender(), Arc::clone(reading), Arc::clone(&stale)));
        let history = history_file(&key);
        let catalog = Arc::default();
        let editor = editor(&history, &catalog, &client, runtime, printer);
        let session = Self { client, args: args.clone(), label, catalog, stale, notices, editor: Reedline::create() };
        let session = match editor {
            Ok(editor) => Self { editor, ..session },
            Err(error) => {
                session.close().await;
                return Err(error);
            }
        };
        session.refresh().await;
        Ok(session)
    }

    /// Reads the tools and prompts again (after a `list_changed`, or at the start).
    async fn refresh(&self) {
        let tools = self.client.list_tools().await.unwrap_or_default();
        crate::tool_cache::store(&self.args, &tools);
        let prompts = self.client.list_all("prompts/list", "prompts").await.unwrap_or_default();
        *self.catalog.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Catalog { tools, prompts };
    }

    async fn close(self) {
        drop(self.editor);
        self.notices.abort();
        let _ = self.notices.await;
        match Arc::try_unwrap(self.client) {
            Ok(client) => client.close().await,
            Err(_) => tracing::debug!("the client is still shared; dropped"),
        }
    }

    fn tools(&self) -> Vec<ToolInfo> {
        self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner).tools.clone()
    }

    /// Runs one line (not a loop built-in).
    async fn line(&self, line: &str, json: bool) -> anyhow::Result<Report> {
        let (first, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let tools = self.tools();
        match first {
            "help" => return Ok(help(&tools, rest)),
            "describe" => {
                let tool = tool_command::find(&tools, rest)
                    .with_context(|| format!("no tool '{rest}'; `tools` lists them"))?;
                return Ok(Report::new(tool.raw.clone(), display::tool_detail(tool)));
            }
            "whoami" => return self.whoami(&tools).await,
            _ => {}
        }
        let is_command = Cli::command().find_subcommand(first).is_some();
        if !is_command && let Some(tool) = tool_command::find(&tools, first) {
            let name = tool.name.clone();
            if rest.starts_with('{') {
                let arguments: Value = serde_json::from_str(rest).context("the arguments are not one JSON object")?;
                let Value::Object(arguments) = arguments else { anyhow::bail!("the arguments must be a JSON object") };
                return client::call_tool(&self.client, &name, arguments, client::Show::Structured, json).await;
            }
            let mut words = shlex::split(rest).context("unbalanced quotes")?;
            let json = json || words.iter().any(|w| w == "--json");
            words.retain(|w| w != "--json");
            let mut flags = vec![name];
            flags.extend(tool_command::pairs_to_flags(tool, &words)?);
            return client::tool(&self.client, &tools, &flags, json).await;
        }
        if NOT_IN_SHELL.contains(&first) {
            anyhow::bail!("`{first}` is not available in the shell; run `rampart {first}` from a terminal");
        }
        let words = shlex::split(line).context("unbalanced quotes")?;
        let mut command = match Cli::try_parse_from(std::iter::once("rampart".to_owned()).chain(words)) {
            Ok(cli) => cli.command,
            Err(error) if error.use_stderr() => {
                let text = error.render().to_string();
                let hint = if is_command { String::new() } else { "\n`help` lists the commands and tools".to_owned() };
                return Ok(Report::note(format!("{}{hint}", text.trim_end())).with_status(output::Status::Usage));
            }
            Err(help) => {
                return Ok(Report {
                    data: output::Data::None,
                    ..Report::new(Value::Null, View::Text(help.render().to_string()))
                });
            }
        };
        if let Some(flag) = command.json_flag() {
            *flag |= json;
        }
        // `chat` with no server named talks to the shell's server.
        if let crate::args::Command::Chat(chat) = &mut command
            && chat.urls.is_empty()
            && chat.stdios.is_empty()
            && chat.servers.is_empty()
        {
            chat.urls.extend(self.args.url.clone());
            chat.stdios.extend(self.args.stdio.clone());
            chat.servers.extend(self.args.server.clone());
            chat.token = chat.token.take().or_else(|| self.args.token.clone());
        }
        if client::client_args(&command).is_some() {
            // The shell's connection, not a new one (any --url or --stdio given is ignored).
            return client::run(command, &self.client).await;
        }
        crate::run(command, &Printer::new(json)).await
    }

    async fn whoami(&self, tools: &[ToolInfo]) -> anyhow::Result<Report> {
        if !tools.iter().any(|t| t.name == "system_whoami") {
            return Ok(Report::note(
                "this server does not say who you are (it has no system_whoami tool you may call)",
            ));
        }
        let result = self.client.call_tool("system_whoami", serde_json::Map::new()).await?;
        Ok(Report::tool_result(result))
    }
}

/// Connects to `target`: a URL, or a server named in the client file.
async fn switch(
    target: &str,
    current: &ClientArgs,
    runtime: &Handle,
    reading: &Arc<AtomicBool>,
) -> anyhow::Result<Session> {
    let args = if target.starts_with("http://") || target.starts_with("https://") {
        ClientArgs { url: Some(target.to_owned()), stdio: None, token: current.token.clone(), ..current.clone() }
    } else {
        let servers = client::named_servers()?;
        let server = servers.get(target).with_context(|| {
            let names: Vec<&String> = servers.keys().collect();
            format!("no server named '{target}' in {} (known: {names:?})", client::servers_file().display())
        })?;
        server.client_args(current)?
    };
    Session::open(&args, runtime, reading).await
}

/// Prints what the server says on its own as it arrives: above the prompt while a line
/// is being typed, straight to stderr while a command runs.
async fn show_notices(
    client: Arc<McpClient>,
    printer: std::sync::mpsc::SyncSender<String>,
    reading: Arc<AtomicBool>,
    stale: Arc<AtomicBool>,
) {
    loop {
        let Some(notice) = client.next_notice(Duration::from_secs(3600)).await else {
            if client.is_closed() {
                let _ = printer.try_send("the server closed the connection; `use` connects again".to_owned());
                return;
            }
            continue;
        };
        let line = match notice {
            ServerNotice::ToolListChanged | ServerNotice::PromptListChanged => {
                stale.store(true, Ordering::Relaxed);
                "(the server's tools or prompts changed)".to_owned()
            }
            ServerNotice::ResourceListChanged => "(the server's resources changed)".to_owned(),
            ServerNotice::ResourceUpdated(uri) => format!("(resource updated: {uri})"),
            ServerNotice::Log(params) => {
                let data = params["data"].as_str().map_or_else(|| params["data"].to_string(), str::to_owned);
                format!("[{}] {data}", params["level"].as_str().unwrap_or("log"))
            }
            ServerNotice::Progress(params) => {
                format!(
                    "progress {}/{}",
                    params["progress"],
                    params["total"].as_f64().map_or("?".into(), |t| t.to_string())
                )
            }
        };
        if reading.load(Ordering::Relaxed) {
            let _ = printer.try_send(line);
        } else {
            eprintln!("{line}");
        }
    }
}

/// `$XDG_STATE_HOME/rampart/history/<server>` (`~/.local/state/…` by default).
fn history_file(server: &str) -> PathBuf {
    let history = output::xdg_dir("XDG_STATE_HOME", ".local/state", "history");
    let name: String = server
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .take(120)
        .collect();
    history.join(name)
}

fn editor(
    history: &std::path::Path,
    catalog: &Arc<RwLock<Catalog>>,
    client: &Arc<McpClient>,
    runtime: &Handle,
    printer: ExternalPrinter<String>,
) -> anyhow::Result<Reedline> {
    if let Some(dir) = history.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let history = FileBackedHistory::with_file(HISTORY_LINES, history.to_path_buf())
        .with_context(|| format!("cannot open the history {}", history.display()))?;
    let mut keybindings = default_emacs_keybindings();
    keybindings.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![ReedlineEvent::Menu("completion".into()), ReedlineEvent::MenuNext]),
    );
    let completer = ShellCompleter {
        catalog: Arc::clone(catalog),
        client: Arc::clone(client),
        runtime: runtime.clone(),
        cli: Cli::command(),
    };
    Ok(Reedline::create()
        .with_history(Box::new(history))
        .with_completer(Box::new(completer))
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(ColumnarMenu::default().with_name("completion"))))
        .with_edit_mode(Box::new(Emacs::new(keybindings)))
        .with_hinter(Box::new(DefaultHinter::default()))
        .with_validator(Box::new(JsonValidator))
        .with_external_printer(printer))
}

fn history_report(history: &dyn History) -> Report {
    let lines: Vec<String> = history
        .search(SearchQuery::everything(SearchDirection::Forward, None))
        .unwrap_or_default()
        .into_iter()
        .map(|item| item.command_line)
        .collect();
    let text = lines.iter().enumerate().map(|(n, line)| format!("{:>5}  {line}\n", n + 1)).collect();
    Report::new(json!(lines), View::Text(text))
}

fn help(tools: &[ToolInfo], topic: &str) -> Report {
    if !topic.is_empty() {
        if let Some(tool) = tool_command::find(tools, topic) {
            let text = tool_command::command(tool).render_long_help().to_string();
            return Report::new(tool.raw.clone(), View::Text(text));
        }
        let mut command = Cli::command();
        for word in topic.split_whitespace() {
            match command.find_subcommand(word) {
                Some(sub) => command = sub.clone().bin_name(format!("rampart {topic}")),
                None => return Report::note(format!("no command or tool '{topic}'")),
            }
        }
        let help = command.render_long_help().to_string();
        return Report::view_only(View::Text(help));
    }
    let builtins = BUILTINS.iter().map(|(name, what)| [(*name).to_owned(), (*what).to_owned()]).collect();
    let commands = Cli::command()
        .get_subcommands()
        .filter(|c| !NOT_IN_SHELL.contains(&c.get_name()) && !c.is_hide_set())
        .map(|c| [c.get_name().to_owned(), c.get_about().map(|a| first_line(&a.to_string())).unwrap_or_default()])
        .collect();
    let view = View::Stack(vec![
        View::Text(
            "A line is a tool call (`TOOL key=value …`, `TOOL --flag value`, or `TOOL {JSON}`), a command, or a \
             built-in. Tab completes."
                .into(),
        ),
        View::table(["BUILT-IN", "WHAT"], builtins),
        View::table(["COMMAND", "WHAT (as on the command line, on this connection)"], commands),
        display::tools_table(tools),
    ]);
    Report::view_only(view)
}

/// A line with unclosed `{`/`[` (outside strings) continues on the next one: JSON
/// arguments can be typed over several lines.
struct JsonValidator;

impl Validator for JsonValidator {
    fn validate(&self, line: &str) -> ValidationResult {
        let (mut depth, mut in_string, mut escaped) = (0i32, false, false);
        for c in line.chars() {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (true, false, '"') => in_string = false,
                (false, _, '"') => in_string = true,
                (false, _, '{' | '[') => depth += 1,
                (false, _, '}' | ']') => depth -= 1,
                _ => {}
            }
        }
        if depth > 0 { ValidationResult::Incomplete } else { ValidationResult::Complete }
    }
}

struct ShellPrompt(String);

impl Prompt for ShellPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.0)
    }
    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn render_prompt_indicator(&self, _: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("... ")
    }
    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        Cow::Owned(format!("(search: {}) ", search.term))
    }
}

/// Completes tool names, commands, argument names, enum values and (through MCP
/// `completion/complete`) prompt argument values.
struct ShellCompleter {
    catalog: Arc<RwLock<Catalog>>,
    client: Arc<McpClient>,
    runtime: Handle,
    /// The command line's table, built once (not at each key press).
    cli: clap::Command,
}

impl Completer for ShellCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        CompletionResult::fresh(self.suggestions(line, pos))
    }
}

impl ShellCompleter {
    fn suggestions(&self, line: &str, pos: usize) -> Vec<Suggestion> {
        let before = line.get(..pos).unwrap_or(line);
        let partial = if before.ends_with(char::is_whitespace) {
            ""
        } else {
            before.rsplit(char::is_whitespace).next().unwrap_or("")
        };
        let start = pos - partial.len();
        let words: Vec<&str> = before[..start].split_whitespace().collect();
        let catalog = self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let span = Span { start, end: pos };
        let mut candidates: Vec<(String, String, bool)> = Vec::new();
        match words.as_slice() {
            [] => {
                candidates.extend(catalog.tools.iter().map(|t| (t.name.clone(), first_line(&t.description), true)));
                candidates.extend(BUILTINS.iter().map(|(n, w)| ((*n).to_owned(), (*w).to_owned(), true)));
                candidates.extend(
                    self.cli
                        .get_subcommands()
                        .filter(|c| !NOT_IN_SHELL.contains(&c.get_name()) && !c.is_hide_set())
                        .map(|c| {
                            (c.get_name().to_owned(), c.get_about().map(|a| a.to_string()).unwrap_or_default(), true)
                        }),
                );
            }
            ["describe" | "help"] => {
                candidates.extend(catalog.tools.iter().map(|t| (t.name.clone(), first_line(&t.description), true)));
            }
            ["prompt"] => {
                candidates.extend(catalog.prompts.iter().filter_map(|p| {
                    Some((
                        p["name"].as_str()?.to_owned(),
                        first_line(p["description"].as_str().unwrap_or_default()),
                        true,
                    ))
                }));
            }
            ["prompt", name, ..] => {
                let prompt = catalog.prompts.iter().find(|p| p["name"] == *name).cloned();
                drop(catalog);
                if let Some(prompt) = prompt {
                    candidates.extend(self.prompt_arguments(&prompt, partial));
                }
            }
            [first, rest @ ..] => {
                if let Some(tool) =
                    tool_command::find(&catalog.tools, first).filter(|_| self.cli.find_subcommand(first).is_none())
                {
                    candidates.extend(tool_arguments(tool, rest, partial));
                } else {
                    candidates.extend(command_words(&self.cli, &words, partial));
                }
            }
        }
        candidates
            .into_iter()
            .filter(|(value, _, _)| value.starts_with(partial))
            .map(|(value, description, append_whitespace)| Suggestion {
                value,
                description: (!description.is_empty()).then_some(description),
                span,
                append_whitespace,
                ..Suggestion::default()
            })
            .collect()
    }
}

/// `name=` for each argument not given yet; `name=value` for enum and boolean values.
fn tool_arguments(tool: &ToolInfo, given: &[&str], partial: &str) -> Vec<(String, String, bool)> {
    let properties = tool.raw["inputSchema"]["properties"].as_object().cloned().unwrap_or_default();
    if let Some((key, _)) = partial.split_once('=') {
        let Some(schema) = properties.get(key) else { return Vec::new() };
        let values = tool_command::enum_values(schema).unwrap_or_else(|| {
            if schema["type"] == "boolean" { vec!["true".into(), "false".into()] } else { Vec::new() }
        });
        return values.into_iter().map(|v| (format!("{key}={v}"), String::new(), true)).collect();
    }
    if partial.starts_with('-') {
        return properties
            .iter()
            .map(|(name, schema)| (format!("--{}", tool_command::kebab(name)), description(schema), true))
            .collect();
    }
    properties
        .iter()
        .filter(|(name, _)| !given.iter().any(|word| word.split_once('=').is_some_and(|(key, _)| key == name.as_str())))
        .map(|(name, schema)| (format!("{name}="), description(schema), false))
        .collect()
}

fn description(schema: &Value) -> String {
    first_line(schema["description"].as_str().unwrap_or_default())
}

/// Subcommands and long flags of a command of the command line's table.
fn command_words(cli: &clap::Command, words: &[&str], partial: &str) -> Vec<(String, String, bool)> {
    let mut command = cli;
    for word in words {
        if let Some(sub) = command.find_subcommand(word) {
            command = sub;
        }
    }
    let mut candidates: Vec<(String, String, bool)> = command
        .get_subcommands()
        .map(|c| (c.get_name().to_owned(), c.get_about().map(|a| a.to_string()).unwrap_or_default(), true))
        .collect();
    if partial.starts_with('-') {
        candidates.extend(command.get_arguments().filter_map(|arg| {
            Some((format!("--{}", arg.get_long()?), arg.get_help().map(|h| h.to_string()).unwrap_or_default(), true))
        }));
    }
    candidates
}

impl ShellCompleter {
    /// `name=` for a prompt's arguments; for `name=prefix`, the server's MCP completions
    /// (`completion/complete`, 2025-11-25 "Completion"), waited for at most a second.
    fn prompt_arguments(&self, prompt: &Value, partial: &str) -> Vec<(String, String, bool)> {
        let Some((key, prefix)) = partial.split_once('=') else {
            return prompt["arguments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| Some((format!("{}=", a["name"].as_str()?), description(a), false)))
                .collect();
        };
        let params = json!({
            "ref": { "type": "ref/prompt", "name": prompt["name"] },
            "argument": { "name": key, "value": prefix },
        });
        let client = Arc::clone(&self.client);
        let answer = self.runtime.block_on(async move {
            tokio::time::timeout(Duration::from_secs(1), client.request("completion/complete", params)).await
        });
        let values = match answer {
            Ok(Ok(result)) => result["completion"]["values"].as_array().cloned().unwrap_or_default(),
            _ => Vec::new(),
        };
        values.iter().filter_map(Value::as_str).map(|v| (format!("{key}={v}"), String::new(), true)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_spanning_lines_waits_for_its_end() {
        let validator = JsonValidator;
        assert!(matches!(validator.validate("tool {\"a\": [1,"), ValidationResult::Incomplete));
        assert!(matches!(validator.validate("tool {\"a\": \"}\"}"), ValidationResult::Complete));
        assert!(matches!(validator.validate("get_current_time timezone=UTC"), ValidationResult::Complete));
    }

    #[test]
    fn history_files_are_per_server() {
        let a = history_file("http://127.0.0.1:8080/mcp");
        let b = history_file("npx -y @modelcontextprotocol/server-everything");
        assert_ne!(a, b);
        assert!(a.ends_with("http___127.0.0.1_8080_mcp"), "{}", a.display());
    }
}
