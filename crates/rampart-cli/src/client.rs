//! `tools` and `call`: a client for any MCP server, over HTTP or a stdio child.

use anyhow::{Context, bail};
use rampart_mcp::{ClientTarget, McpClient, ToolInfo};
use serde_json::{Map, Value, json};

use crate::{
    args::{
        CallArgs, ClientArgs, Command, CompleteArgs, CompleteRef, ConfigCommand, PromptArgs, PromptCommand, ReadArgs,
        ResourceCommand, ToolArgs, UpstreamCommand,
    },
    display,
    output::{Data, Report, Status, View},
    progress::CallProgress,
    tool_cache, tool_command,
};

pub(crate) fn target(args: &ClientArgs) -> anyhow::Result<ClientTarget> {
    if let Some(name) = &args.server {
        let servers = named_servers()?;
        let server = servers.get(name).with_context(|| {
            let names: Vec<&String> = servers.keys().collect();
            format!("no server named '{name}' in {} (it names {names:?})", servers_file().display())
        })?;
        return target(&server.client_args(args)?);
    }
    match (&args.url, &args.stdio) {
        (Some(url), None) => Ok(ClientTarget::Http { url: url.clone(), token: args.token.clone() }),
        (None, Some(command)) => {
            let command = shlex::split(command).context("--stdio: unbalanced quotes")?;
            if command.is_empty() {
                bail!("--stdio needs a command, e.g. --stdio \"rampart serve --transport stdio\"");
            }
            Ok(ClientTarget::Stdio { command, show_stderr: args.verbose })
        }
        (None, None) => bail!(
            "say where the server is: --url http://127.0.0.1:8080/mcp (or RAMPART_URL), --stdio \"COMMAND\", or \
             --server NAME (from {})",
            servers_file().display()
        ),
        (Some(_), Some(_)) => bail!("give either --url or --stdio, not both"),
    }
}

/// The client file: `$XDG_CONFIG_HOME/rampart/servers.toml` (`~/.config/…` by default).
pub(crate) fn servers_file() -> std::path::PathBuf {
    crate::output::xdg_dir("XDG_CONFIG_HOME", ".config", "servers.toml")
}

/// A server of the client file, `[servers.NAME]`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NamedServer {
    /// Streamable HTTP endpoint.
    url: Option<String>,
    /// The environment variable holding its bearer token (never the token itself).
    token_env: Option<String>,
    /// Or a command speaking MCP on stdio.
    stdio: Option<String>,
}

impl NamedServer {
    /// `current` pointed at this server.
    pub(crate) fn client_args(&self, current: &ClientArgs) -> anyhow::Result<ClientArgs> {
        let token = match &self.token_env {
            Some(var) => Some(std::env::var(var).with_context(|| format!("token_env: {var} is not set"))?),
            None => None,
        };
        match (&self.url, &self.stdio) {
            (Some(_), None) | (None, Some(_)) => Ok(ClientArgs {
                url: self.url.clone(),
                stdio: self.stdio.clone(),
                server: None,
                token,
                ..current.clone()
            }),
            _ => bail!("a server of {} needs exactly one of url or stdio", servers_file().display()),
        }
    }
}

/// `[llm]` of the client file: the model API `rampart chat` talks to.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LlmSettings {
    /// e.g. `http://127.0.0.1:11434/v1` (Ollama) or `https://api.openai.com/v1`.
    pub(crate) base_url: Option<String>,
    pub(crate) model: Option<String>,
    /// The environment variable holding the API key (never the key itself).
    pub(crate) api_key_env: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    #[serde(default)]
    servers: std::collections::BTreeMap<String, NamedServer>,
    #[serde(default)]
    llm: LlmSettings,
}

fn client_file() -> anyhow::Result<ClientFile> {
    let path = servers_file();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            Ok(toml::from_str::<ClientFile>(&text).with_context(|| format!("{} is not valid", path.display()))?)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(ClientFile { servers: Default::default(), llm: LlmSettings::default() })
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `[llm]` of the client file (empty when there is none).
///
/// # Errors
/// The file cannot be read or is not valid.
pub(crate) fn llm_settings() -> anyhow::Result<LlmSettings> {
    Ok(client_file()?.llm)
}

/// Writes `bytes` to `path` whole or not at all (mode 0644), replacing it.
///
/// # Errors
/// The directory is not writable.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_whole(path, bytes, 0o644, Existing::Replace)
}

/// The servers of the client file (none when it does not exist).
///
/// # Errors
/// The file cannot be read or is not valid.
pub(crate) fn named_servers() -> anyhow::Result<std::collections::BTreeMap<String, NamedServer>> {
    Ok(client_file()?.servers)
}

/// The client arguments of `command` when it talks to a server (`tools`, `call`, `tool`,
/// `resources`, `read`, `prompts`, `prompt`, `upstream list|show|approve|restart`,
/// `config reload`): such a command runs on a connection ([`run`]).
pub(crate) fn client_args(command: &Command) -> Option<&ClientArgs> {
    match command {
        Command::Tools(args) | Command::Resources(args) | Command::Prompts(args) => Some(args),
        Command::Call(CallArgs { client, .. })
        | Command::Tool(ToolArgs { client, .. })
        | Command::Complete(CompleteArgs { client, .. })
        | Command::Resource {
            command: ResourceCommand::Read(ReadArgs { client, .. }) | ResourceCommand::List(client),
        }
        | Command::Prompt { command: PromptCommand::Get(PromptArgs { client, .. }) | PromptCommand::List(client) } => {
            Some(client)
        }
        Command::Upstream { command } => match command {
            UpstreamCommand::List(client)
            | UpstreamCommand::Show { client, .. }
            | UpstreamCommand::Approve { client, .. }
            | UpstreamCommand::Restart { client, .. } => Some(client),
            UpstreamCommand::Import { .. } => None,
        },
        Command::Config { command: ConfigCommand::Reload(args) } => Some(args),
        _ => None,
    }
}

/// Connects to the server `args` name.
///
/// # Errors
/// Where the server is not said, or it cannot be reached (in words a person can act on).
pub(crate) async fn connect(args: &ClientArgs) -> anyhow::Result<McpClient> {
    Ok(McpClient::connect(&target(args)?).await?)
}

/// Runs a client command (see [`client_args`]) on a connected server.
///
/// # Errors
/// The server's JSON-RPC errors, bad arguments; a tool's own error is a report (exit 1).
pub(crate) async fn run(command: Command, client: &McpClient) -> anyhow::Result<Report> {
    match command {
        Command::Tools(args) => {
            let tools = client.list_tools().await?;
            tool_cache::store(&args, &tools);
            let raw: Vec<&Value> = tools.iter().map(|t| &t.raw).collect();
            Ok(Report::new(json!(raw), display::tools_table(&tools)))
        }
        Command::Call(args) => {
            let arguments = arguments(args.args.as_deref(), &args.pairs)?;
            let report = call_tool(client, &args.tool, arguments, Show::Structured, args.client.json).await?;
            save_media(report, &args.tool, args.save.as_deref())
        }
        Command::Tool(args) => {
            let tools = client.list_tools().await?;
            tool_cache::store(&args.client, &tools);
            let report = tool(client, &tools, &args.words, args.client.json).await?;
            match args.words.first() {
                Some(name) => save_media(report, name, args.save.as_deref()),
                None => Ok(report),
            }
        }
        Command::Resource { command: ResourceCommand::List(_) } | Command::Resources(_) => {
            let resources = list_or_empty(client, "resources/list", "resources").await?;
            let templates = list_or_empty(client, "resources/templates/list", "resourceTemplates").await?;
            let view = display::resources_table(&resources, &templates);
            Ok(Report::new(json!({ "resources": resources, "resourceTemplates": templates }), view))
        }
        Command::Resource { command: ResourceCommand::Read(args) } => {
            read(client, &args.uri, args.save.as_deref()).await
        }
        Command::Complete(args) => complete(client, &args).await,
        Command::Prompt { command: PromptCommand::List(_) } | Command::Prompts(_) => {
            let prompts = list_or_empty(client, "prompts/list", "prompts").await?;
            let view = display::prompts_table(&prompts);
            Ok(Report::new(json!(prompts), view))
        }
        Command::Prompt { command: PromptCommand::Get(args) } => {
            let mut arguments = Map::new();
            for pair in &args.pairs {
                let (key, value) =
                    pair.split_once('=').with_context(|| format!("argument '{pair}' is not key=value"))?;
                arguments.insert(key.to_owned(), Value::String(value.to_owned()));
            }
            let result = client.request("prompts/get", json!({ "name": args.name, "arguments": arguments })).await?;
            let view = display::prompt_messages(&result);
            Ok(Report::new(result, view))
        }
        Command::Upstream { command } => upstream(client, command).await,
        Command::Config { command: ConfigCommand::Reload(args) } => {
            call_tool(client, "admin_config_reload", Map::new(), Show::Structured, args.json).await
        }
        _ => bail!("this command does not talk to a server"),
    }
}

/// Builds the arguments object: `--args` JSON first, then `key=value` (string) and
/// `key:=json` pairs on top.
pub(crate) fn arguments(json: Option<&str>, pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut arguments = match json {
        Some(text) => match serde_json::from_str::<Value>(text).context("--args is not valid JSON")? {
            Value::Object(map) => map,
            _ => bail!("--args must be a JSON object, e.g. --args '{{\"timezone\":\"UTC\"}}'"),
        },
        None => Map::new(),
    };
    for pair in pairs {
        if let Some((key, raw)) = pair.split_once(":=") {
            let value = serde_json::from_str(raw).with_context(|| format!("{key}:= expects JSON, got {raw}"))?;
            arguments.insert(key.to_owned(), value);
        } else if let Some((key, value)) = pair.split_once('=') {
            arguments.insert(key.to_owned(), Value::String(value.to_owned()));
        } else {
            bail!("argument '{pair}' is not key=value or key:=json");
        }
    }
    Ok(arguments)
}

/// Every item of a list the server may not offer at all (no such capability): empty then.
async fn list_or_empty(client: &McpClient, method: &str, key: &str) -> anyhow::Result<Vec<Value>> {
    match client.list_all(method, key).await {
        Ok(items) => Ok(items),
        Err(rampart_mcp::ClientError::Rpc { code: -32601, .. }) => Ok(Vec::new()),
        Err(error) => Err(error.into()),
    }
}

/// Whether [`write_whole`] may replace a file that is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Replace,
    Refuse,
}

/// Writes `bytes` to `path` whole or not at all, with permissions `mode`: a temporary
/// file beside it, synced, then renamed over it (`Existing::Replace`) or linked only
/// if `path` does not exist yet (`Existing::Refuse`).
fn write_whole(path: &std::path::Path, bytes: &[u8], mode: u32, existing: Existing) -> anyhow::Result<()> {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(directory)
        .with_context(|| format!("cannot write in {}", directory.display()))?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    file.as_file().sync_all()?;
    match existing {
        Existing::Replace => file.persist(path).map(drop),
        Existing::Refuse => file.persist_noclobber(path).map(drop),
    }
    .with_context(|| match existing {
        Existing::Replace => format!("cannot write {}", path.display()),
        Existing::Refuse => format!("cannot create {} (it must not exist yet)", path.display()),
    })
}

/// `rampart completions SHELL`: clap's script for the commands and flags, and a hook
/// that completes `rampart tool`'s tool names, flags and enum values from the server's
/// cached tool list (`rampart __complete`).
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<Report> {
    let mut command = <crate::args::Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "rampart", &mut script);
    let mut script = String::from_utf8(script).context("the completion script is not UTF-8")?;
    script.push_str(match shell {
        clap_complete::Shell::Bash => BASH_TOOL_HOOK,
        clap_complete::Shell::Zsh => ZSH_TOOL_HOOK,
        clap_complete::Shell::Fish => FISH_TOOL_HOOK,
        _ => "",
    });
    Ok(Report::view_only(View::Text(script)))
}

const BASH_TOOL_HOOK: &str = r#"
# `rampart tool`: tool names, flags and values from the server's cached tool list.
_rampart_with_tools() {
    if [[ ${COMP_CWORD} -ge 2 && ${COMP_WORDS[1]} == tool ]]; then
        local IFS=$'\n'
        COMPREPLY=( $(rampart __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
        [[ ${#COMPREPLY[@]} -gt 0 ]] && return 0
    fi
    _rampart "$@"
}
complete -F _rampart_with_tools -o bashdefault -o default rampart
"#;

const ZSH_TOOL_HOOK: &str = r#"
# `rampart tool`: tool names, flags and values from the server's cached tool list.
_rampart_with_tools() {
    if [[ ${words[2]} == tool && CURRENT -gt 2 ]]; then
        local -a candidates
        candidates=(${(f)"$(rampart __complete ${words[2,CURRENT]} 2>/dev/null)"})
        if (( ${#candidates} )); then compadd -Q -- $candidates; return; fi
    fi
    _rampart "$@"
}
compdef _rampart_with_tools rampart
"#;

const FISH_TOOL_HOOK: &str = r#"
# `rampart tool`: tool names, flags and values from the server's cached tool list.
complete -c rampart -n '__fish_seen_subcommand_from tool' -f -a '(rampart __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
"#;

/// `rampart __complete WORDS… PARTIAL`: the candidates for PARTIAL after `rampart WORDS`
/// (for `tool`: tool names, then the tool's flags, or the values of an enum flag), one
/// per line, from the cached tool list (refreshed, within three seconds, when there is
/// none). Anything else completes to nothing: the static script handles it.
pub(crate) async fn dynamic_complete(words: &[String]) -> Report {
    let candidates = match words.split_last() {
        Some((partial, before)) => tool_candidates(before, partial).await,
        None => Vec::new(),
    };
    let text = candidates.iter().map(|c| format!("{c}\n")).collect();
    Report::view_only(View::Text(text))
}

async fn tool_candidates(before: &[String], partial: &str) -> Vec<String> {
    let argv = std::iter::once("rampart".to_owned()).chain(before.iter().cloned());
    let Ok(crate::args::Cli { command: Command::Tool(args) }) =
        <crate::args::Cli as clap::Parser>::try_parse_from(argv)
    else {
        return Vec::new();
    };
    let tools = match tool_cache::load(&args.client, None) {
        Some(tools) => tools,
        None => {
            let fetched = tokio::time::timeout(std::time::Duration::from_secs(3), async {
                let client = connect(&args.client).await.ok()?;
                let tools = client.list_tools().await.ok();
                client.close().await;
                tools
            })
            .await;
            let Ok(Some(tools)) = fetched else { return Vec::new() };
            tool_cache::store(&args.client, &tools);
            tools
        }
    };
    let candidates: Vec<String> = match args.words.split_first() {
        None if partial.starts_with('-') => return Vec::new(),
        None => tools
            .iter()
            .map(|t| if partial.contains('-') { tool_command::kebab(&t.name) } else { t.name.clone() })
            .collect(),
        Some((name, flags)) => {
            let Some(tool) = tool_command::find(&tools, name) else { return Vec::new() };
            tool_command::completions(tool, flags)
        }
    };
    candidates.into_iter().filter(|c| c.starts_with(partial)).collect()
}

/// `rampart read URI [--save FILE]`.
async fn read(client: &McpClient, uri: &str, save: Option<&std::path::Path>) -> anyhow::Result<Report> {
    let result = client.request("resources/read", json!({ "uri": uri })).await?;
    let Some(path) = save else {
        let view = display::resource_contents(&result);
        return Ok(Report::new(result, view));
    };
    let contents = result["contents"].get(0).context("the server returned no contents")?;
    let bytes = match (contents["text"].as_str(), contents["blob"].as_str()) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(blob)) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(blob).context("the blob is not base64")?
        }
        _ => bail!("the contents are neither text nor a blob"),
    };
    write_whole(path, &bytes, 0o644, Existing::Replace)?;
    let saved = json!({ "uri": uri, "file": path.display().to_string(), "bytes": bytes.len() });
    Ok(Report {
        data: Data::Pretty(saved),
        ..Report::note(format!("wrote {} bytes to {}", bytes.len(), path.display()))
    })
}

/// `rampart complete prompt|resource REF ARGUMENT [VALUE]`: the server's suggestions
/// (MCP 2025-11-25 "Completion": `completion/complete`), one per line.
async fn complete(client: &McpClient, args: &CompleteArgs) -> anyhow::Result<Report> {
    let reference = match args.kind {
        CompleteRef::Prompt => json!({ "type": "ref/prompt", "name": args.reference }),
        CompleteRef::Resource => json!({ "type": "ref/resource", "uri": args.reference }),
    };
    let mut params = json!({ "ref": reference, "argument": { "name": args.argument, "value": args.value } });
    if !args.context.is_empty() {
        let mut context = Map::new();
        for pair in &args.context {
            let (key, value) = pair.split_once('=').with_context(|| format!("--context '{pair}' is not key=value"))?;
            context.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        params["context"] = json!({ "arguments": context });
    }
    let result = client.request("completion/complete", params).await?;
    let completion = &result["completion"];
    let mut text: String = completion["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|v| format!("{v}\n"))
        .collect();
    if completion["hasMore"] == true {
        let total = completion["total"].as_u64().map_or_else(String::new, |t| format!(" of {t}"));
        text.push_str(&format!("(more{total}: type more of the value)\n"));
    }
    Ok(Report::new(completion.clone(), View::Text(text)))
}

/// Writes the images, audio and blobs of a tool result to `dir` (`TOOL-N.EXT`), a note
/// for each; without `dir`, the report as it is.
fn save_media(report: Report, tool: &str, dir: Option<&std::path::Path>) -> anyhow::Result<Report> {
    use base64::Engine;
    let Some(dir) = dir else { return Ok(report) };
    let View::ToolResult(mut result) = report.view.clone() else { return Ok(report) };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut notes = Vec::new();
    for (n, block) in result["content"].as_array_mut().into_iter().flatten().enumerate() {
        let (data, mime) = match block["type"].as_str() {
            Some("image" | "audio") => (block["data"].as_str(), block["mimeType"].as_str()),
            Some("resource") => (block["resource"]["blob"].as_str(), block["resource"]["mimeType"].as_str()),
            _ => continue,
        };
        let Some(data) = data else { continue };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .with_context(|| format!("content block {n} is not base64"))?;
        let path = dir.join(format!("{}-{n}.{}", tool_command::kebab(tool), extension(mime.unwrap_or_default())));
        write_whole(&path, &bytes, 0o644, Existing::Replace)?;
        notes.push(format!("wrote {} bytes to {}", bytes.len(), path.display()));
        // People see where it went; --json keeps the result as the server sent it.
        *block = json!({ "type": "text", "text": format!("[{} saved to {}]", mime.unwrap_or("blob"), path.display()) });
    }
    let report = Report { view: View::ToolResult(result), ..report };
    Ok(notes.into_iter().fold(report, Report::with_note))
}

/// A file extension for a MIME type.
fn extension(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "application/pdf" => "pdf",
        "application/json" => "json",
        m if m.starts_with("text/") => "txt",
        _ => "bin",
    }
}

/// `rampart tool NAME --help` from the cached tool list, without connecting; `None` when
/// it is not that, or the cache has no fresh entry for the tool.
pub(crate) fn tool_help_from_cache(args: &ToolArgs) -> Option<Report> {
    let (name, flags) = args.words.split_first()?;
    if !flags.iter().any(|f| f == "--help" || f == "-h") {
        return None;
    }
    let tools = tool_cache::load(&args.client, Some(tool_cache::FRESH_FOR))?;
    let tool = tool_command::find(&tools, name)?;
    let help = tool_command::command(tool).render_long_help().to_string();
    Some(Report::view_only(View::Text(help)))
}

/// `rampart tool [NAME [FLAGS…]]`: the tools of the server, or one called with flags
/// built from its input schema.
pub(crate) async fn tool(
    client: &McpClient,
    tools: &[ToolInfo],
    words: &[String],
    json: bool,
) -> anyhow::Result<Report> {
    let Some((name, flags)) = words.split_first() else {
        let raw: Vec<&Value> = tools.iter().map(|t| &t.raw).collect();
        return Ok(Report::new(json!(raw), display::tools_grouped(tools))
            .with_note("`rampart tool NAME --help` shows a tool's flags."));
    };
    let Some(tool) = tool_command::find(tools, name) else {
        bail!("this server has no tool '{name}' (or it is not granted to you); `rampart tool` lists them");
    };
    let matches = match tool_command::command(tool).try_get_matches_from(flags) {
        Ok(matches) => matches,
        // --help shows and succeeds; a bad flag says what is wrong and fails, before
        // anything is sent.
        Err(error) if error.use_stderr() => {
            return Ok(Report::note(error.render().to_string().trim_end()).with_status(Status::Usage));
        }
        Err(help) => {
            return Ok(Report::view_only(View::Text(help.render().to_string())));
        }
    };
    let arguments = tool_command::arguments(tool, &matches);
    call_tool(client, &tool.name, arguments, Show::Structured, json).await
}

/// Which part of a result a person is shown (`--json` prints it whole either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    /// The structured content when there is some (what `rampart call` shows).
    Structured,
    /// The text the tool wrote for people (status lines, diffs).
    Text,
}

/// Calls `tool` with a progress display (unless `json`); Ctrl-C cancels the call on the
/// server. A tool's error result is a report with exit status 1.
pub(crate) async fn call_tool(
    client: &McpClient,
    tool: &str,
    arguments: Map<String, Value>,
    show: Show,
    json: bool,
) -> anyhow::Result<Report> {
    let result = match call_interruptible(client, tool, arguments, !json).await {
        Err(rampart_mcp::ClientError::Cancelled) => {
            return Ok(
                Report::note("interrupted: the call was cancelled on the server").with_status(Status::Interrupted)
            );
        }
        result => result?,
    };
    let mut report = Report::tool_result(result.clone());
    if show == Show::Text
        && let Some(mut text_only) = result.as_object().cloned()
    {
        text_only.remove("structuredContent");
        report.view = View::ToolResult(Value::Object(text_only));
    }
    Ok(report)
}

/// Calls `tool`, drawing its progress on stderr when `progress`; Ctrl-C (SIGINT) cancels
/// the call on the server (MCP `notifications/cancelled`) instead of leaving it running.
async fn call_interruptible(
    client: &McpClient,
    tool: &str,
    arguments: Map<String, Value>,
    progress: bool,
) -> Result<Value, rampart_mcp::ClientError> {
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_interrupt = cancel.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let (updates, _display) = CallProgress::start(tool, progress);
    let result = client.call_tool_with(tool, arguments, updates, &cancel).await;
    watcher.abort();
    result
}

/// `rampart upstream list|show|approve|restart`: the running server's `admin_upstream_*`
/// tools.
async fn upstream(client: &McpClient, command: UpstreamCommand) -> anyhow::Result<Report> {
    let upstream = |name: String| Map::from_iter([("upstream".to_owned(), Value::String(name))]);
    let (tool, arguments, json) = match command {
        UpstreamCommand::List(args) => ("admin_upstream_list", Map::new(), args.json),
        UpstreamCommand::Show { name, client } => ("admin_upstream_show", upstream(name), client.json),
        UpstreamCommand::Restart { name, client } => ("admin_upstream_restart", upstream(name), client.json),
        UpstreamCommand::Approve { name, tool, client } => {
            let mut arguments = upstream(name);
            if let Some(tool) = tool {
                arguments.insert("tool".into(), Value::String(tool));
            }
            ("admin_upstream_approve", arguments, client.json)
        }
        UpstreamCommand::Import { .. } => bail!("upstream import runs offline"),
    };
    call_tool(client, tool, arguments, Show::Text, json).await
}

/// `rampart upstream import FILE [--secrets FILE]`: offline.
pub(crate) fn import(file: &std::path::Path, secrets: Option<&std::path::Path>) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let env_file = secrets.map(|path| path.display().to_string());
    let imported = rampart_gateway::import::import(&text, env_file.as_deref())
        .with_context(|| format!("cannot import {}", file.display()))?;
    if let Some(path) = secrets
        && !imported.secrets.is_empty()
    {
        // Secrets: readable by the owner only, never half written, never over a file.
        write_whole(path, imported.secrets_dotenv().as_bytes(), 0o600, Existing::Refuse)?;
    }
    let names: Vec<&str> = imported.secrets.iter().map(|(name, _)| name.as_str()).collect();
    let data = json!({
        "toml": imported.toml, "upstreams": imported.upstreams, "warnings": imported.warnings, "secrets": names,
    });
    let mut report = Report::new(data, View::Text(imported.toml.clone()));
    for warning in &imported.warnings {
        report = report.with_note(format!("warning: {warning}"));
    }
    if !names.is_empty() {
        report = report.with_note(match secrets {
            Some(path) => format!("wrote {} secret(s) to {}: {}", names.len(), path.display(), names.join(", ")),
            None => format!(
                "note: {} secret(s) were replaced by ${{VAR}} references ({}); set them in the environment, or run \
                 again with --secrets FILE to write them to a dotenv file",
                names.len(),
                names.join(", ")
            ),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::arguments;

    #[test]
    fn argument_table() {
        let pairs = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (None, pairs(&["timezone=Europe/Paris"]), json!({"timezone": "Europe/Paris"})),
            (None, pairs(&["n:=3", "s=3"]), json!({"n": 3, "s": "3"})),
            (None, pairs(&["eq=a=b"]), json!({"eq": "a=b"})),
            (Some(r#"{"a":1,"b":2}"#), pairs(&["b:=true"]), json!({"a": 1, "b": true})),
        ];
        for (json, pairs, expected) in cases {
            assert_eq!(serde_json::Value::Object(arguments(json, &pairs).unwrap()), expected);
        }
        assert!(arguments(Some("[1]"), &[]).is_err());
        assert!(arguments(None, &pairs(&["novalue"])).is_err());
        assert!(arguments(None, &pairs(&["n:=notjson"])).is_err());
    }
}
