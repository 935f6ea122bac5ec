//! `tools` and `call`: a client for any MCP server, over HTTP or a stdio child.

use std::process::ExitCode;

use anyhow::{Context, bail};
use rampart_mcp::{ClientTarget, McpClient};
use serde_json::{Map, Value};

use crate::{
    args::{CallArgs, ClientArgs, PromptArgs, ReadArgs, ToolArgs, UpstreamCommand},
    display, tool_command,
};

fn target(args: &ClientArgs) -> anyhow::Result<ClientTarget> {
    match (&args.url, &args.stdio) {
        (Some(url), None) => Ok(ClientTarget::Http { url: url.clone(), token: args.token.clone() }),
        (None, Some(command)) => {
            let command = shlex::split(command).context("--stdio: unbalanced quotes")?;
            if command.is_empty() {
                bail!("--stdio needs a command, e.g. --stdio \"rampart serve --transport stdio\"");
            }
            Ok(ClientTarget::Stdio { command, show_stderr: args.verbose })
        }
        (None, None) => {
            bail!("say where the server is: --url http://127.0.0.1:8080/mcp (or RAMPART_URL), or --stdio \"COMMAND\"")
        }
        (Some(_), Some(_)) => bail!("give either --url or --stdio, not both"),
    }
}

pub(crate) async fn tools(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let client = McpClient::connect(&target(&args)?).await?;
    let tools = client.list_tools().await;
    client.close().await;
    let tools = tools?;
    if args.json {
        let raw: Vec<&Value> = tools.iter().map(|t| &t.raw).collect();
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else {
        print!("{}", display::tools_table(&tools));
    }
    Ok(ExitCode::SUCCESS)
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

/// `rampart resources`: resources and resource templates.
pub(crate) async fn resources(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let client = McpClient::connect(&target(&args)?).await?;
    let resources = list_or_empty(&client, "resources/list", "resources").await;
    let templates = list_or_empty(&client, "resources/templates/list", "resourceTemplates").await;
    client.close().await;
    let (resources, templates) = (resources?, templates?);
    if args.json {
        let all = serde_json::json!({ "resources": resources, "resourceTemplates": templates });
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print!("{}", display::resources_table(&resources, &templates));
    }
    Ok(ExitCode::SUCCESS)
}

/// `rampart read URI [--save FILE]`.
pub(crate) async fn read(args: ReadArgs) -> anyhow::Result<ExitCode> {
    let client = McpClient::connect(&target(&args.client)?).await?;
    let result = client.request("resources/read", serde_json::json!({ "uri": args.uri })).await;
    client.close().await;
    let result = result?;
    if let Some(path) = &args.save {
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
        eprintln!("wrote {} bytes to {}", bytes.len(), path.display());
    } else if args.client.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", display::resource_contents(&result));
    }
    Ok(ExitCode::SUCCESS)
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

/// `rampart prompts`.
pub(crate) async fn prompts(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let client = McpClient::connect(&target(&args)?).await?;
    let prompts = list_or_empty(&client, "prompts/list", "prompts").await;
    client.close().await;
    let prompts = prompts?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&prompts)?);
    } else {
        print!("{}", display::prompts_table(&prompts));
    }
    Ok(ExitCode::SUCCESS)
}

/// `rampart prompt NAME key=value…`.
pub(crate) async fn prompt(args: PromptArgs) -> anyhow::Result<ExitCode> {
    let mut arguments = Map::new();
    for pair in &args.pairs {
        let (key, value) = pair.split_once('=').with_context(|| format!("argument '{pair}' is not key=value"))?;
        arguments.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    let client = McpClient::connect(&target(&args.client)?).await?;
    let result = client.request("prompts/get", serde_json::json!({ "name": args.name, "arguments": arguments })).await;
    client.close().await;
    let result = result?;
    if args.client.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", display::prompt_messages(&result));
    }
    Ok(ExitCode::SUCCESS)
}

/// `rampart completions SHELL`.
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut command = <crate::args::Cli as clap::CommandFactory>::command();
    // Into memory first: clap_complete panics when its writer fails (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "rampart", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `rampart tool [NAME [FLAGS…]]`: the tools of the server, or one called with flags
/// built from its input schema.
pub(crate) async fn tool(args: ToolArgs) -> anyhow::Result<ExitCode> {
    let client = McpClient::connect(&target(&args.client)?).await?;
    let tools = match client.list_tools().await {
        Ok(tools) => tools,
        Err(error) => {
            client.close().await;
            return Err(error.into());
        }
    };
    let Some((name, flags)) = args.words.split_first() else {
        client.close().await;
        if args.client.json {
            let raw: Vec<&Value> = tools.iter().map(|t| &t.raw).collect();
            println!("{}", serde_json::to_string_pretty(&raw)?);
        } else {
            print!("{}", display::tools_table(&tools));
            println!("\n`rampart tool NAME --help` shows a tool's flags.");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let Some(tool) = tool_command::find(&tools, name) else {
        client.close().await;
        bail!("this server has no tool '{name}' (or it is not granted to you); `rampart tool` lists them");
    };
    let matches = match tool_command::command(tool).try_get_matches_from(flags) {
        Ok(matches) => matches,
        Err(error) => {
            client.close().await;
            // --help prints and succeeds; a bad flag prints what is wrong and fails,
            // before anything is sent.
            let _ = error.print();
            return Ok(if error.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS });
        }
    };
    let arguments = tool_command::arguments(tool, &matches);
    let result = call_interruptible(&client, &tool.name, arguments).await;
    client.close().await;
    match result {
        Err(rampart_mcp::ClientError::Cancelled) => Ok(interrupted()),
        result => show_result(result?, args.client.json, Show::Structured),
    }
}

pub(crate) async fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
    let arguments = arguments(args.args.as_deref(), &args.pairs)?;
    call_tool(&args.client, &args.tool, arguments, Show::Structured).await
}

/// Which part of a result a person is shown (`--json` prints it whole either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    /// The structured content when there is some (what `rampart call` prints).
    Structured,
    /// The text the tool wrote for people (status lines, diffs).
    Text,
}

/// Calls `tool` on the server of `client` and shows its result: on stdout, or on stderr
/// with exit status 1 when the tool reported an error.
async fn call_tool(
    client: &ClientArgs,
    tool: &str,
    arguments: Map<String, Value>,
    show: Show,
) -> anyhow::Result<ExitCode> {
    let json = client.json;
    let client = McpClient::connect(&target(client)?).await?;
    let result = call_interruptible(&client, tool, arguments).await;
    client.close().await;
    match result {
        Err(rampart_mcp::ClientError::Cancelled) => Ok(interrupted()),
        result => show_result(result?, json, show),
    }
}

/// Calls `tool`; Ctrl-C (SIGINT) cancels the call on the server (MCP
/// `notifications/cancelled`) instead of leaving it running there.
async fn call_interruptible(
    client: &McpClient,
    tool: &str,
    arguments: Map<String, Value>,
) -> Result<Value, rampart_mcp::ClientError> {
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_interrupt = cancel.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let result = client.call_tool_with(tool, arguments, None, &cancel).await;
    watcher.abort();
    result
}

/// Exit status after Ctrl-C (128 + SIGINT), the call cancelled on the server.
fn interrupted() -> ExitCode {
    eprintln!("interrupted: the call was cancelled on the server");
    ExitCode::from(130)
}

/// Prints a tool result: on stdout, or on stderr with exit status 1 when the tool
/// reported an error.
fn show_result(mut result: Value, json: bool, show: Show) -> anyhow::Result<ExitCode> {
    let is_error = result["isError"].as_bool().unwrap_or(false);
    if show == Show::Text
        && !json
        && let Some(result) = result.as_object_mut()
    {
        result.remove("structuredContent");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else if is_error {
        eprint!("{}", display::call_result(&result));
    } else {
        print!("{}", display::call_result(&result));
    }
    Ok(if is_error { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `rampart upstream …`: the running server's `admin_upstream_*` tools, or an offline
/// import.
pub(crate) async fn upstream(command: UpstreamCommand) -> anyhow::Result<ExitCode> {
    let upstream = |name: String| Map::from_iter([("upstream".to_owned(), Value::String(name))]);
    match command {
        UpstreamCommand::List(client) => call_tool(&client, "admin_upstream_list", Map::new(), Show::Text).await,
        UpstreamCommand::Show { name, client } => {
            call_tool(&client, "admin_upstream_show", upstream(name), Show::Text).await
        }
        UpstreamCommand::Restart { name, client } => {
            call_tool(&client, "admin_upstream_restart", upstream(name), Show::Text).await
        }
        UpstreamCommand::Approve { name, tool, client } => {
            let mut arguments = upstream(name);
            if let Some(tool) = tool {
                arguments.insert("tool".into(), Value::String(tool));
            }
            call_tool(&client, "admin_upstream_approve", arguments, Show::Text).await
        }
        UpstreamCommand::Import { file, secrets, json } => import(&file, secrets.as_deref(), json),
    }
}

fn import(file: &std::path::Path, secrets: Option<&std::path::Path>, json: bool) -> anyhow::Result<ExitCode> {
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
    if json {
        let names: Vec<&str> = imported.secrets.iter().map(|(name, _)| name.as_str()).collect();
        let report = serde_json::json!({
            "toml": imported.toml, "upstreams": imported.upstreams, "warnings": imported.warnings, "secrets": names,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", imported.toml);
        for warning in &imported.warnings {
            eprintln!("warning: {warning}");
        }
        if !imported.secrets.is_empty() {
            let names: Vec<&str> = imported.secrets.iter().map(|(name, _)| name.as_str()).collect();
            match secrets {
                Some(path) => eprintln!("wrote {} secret(s) to {}: {}", names.len(), path.display(), names.join(", ")),
                None => eprintln!(
                    "note: {} secret(s) were replaced by ${{VAR}} references ({}); set them in the environment, or \
                     run again with --secrets FILE to write them to a dotenv file",
                    names.len(),
                    names.join(", ")
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rampart config reload`: calls the running server's `admin_config_reload` tool.
pub(crate) async fn config_reload(args: ClientArgs) -> anyhow::Result<ExitCode> {
    call_tool(&args, "admin_config_reload", Map::new(), Show::Structured).await
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
