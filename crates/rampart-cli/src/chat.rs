//! `rampart chat`: an LLM agent over the tools of one or more MCP servers. The model
//! (any OpenAI-compatible Chat Completions endpoint) sees each server's tools as function
//! tools; its tool calls go to the servers through the same client as `rampart tool`
//! (progress, Ctrl-C), and the results go back to it — up to `--max-steps` requests per
//! question. A tool that may change something (not `readOnlyHint`, or `destructiveHint`)
//! runs only once a person said yes (`--yes` says it for them).

mod llm;

use std::{
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::Context;
use rampart_mcp::{McpClient, ToolInfo};
use serde_json::{Map, Value, json};

use crate::{
    args::{ChatArgs, ClientArgs},
    client,
    output::{self, Printer, Report, View, first_line},
};

/// Function names the Chat Completions API accepts: `^[a-zA-Z0-9_-]{1,64}$`.
const NAME_LIMIT: usize = 64;

/// A connected MCP server and the name its tools are offered under.
struct Server {
    label: String,
    client: McpClient,
    tools: Vec<ToolInfo>,
}

/// A tool as offered to the model, and where it really is.
struct OfferedTool {
    /// The function name the model uses.
    name: String,
    server: usize,
    tool: ToolInfo,
}

impl OfferedTool {
    fn read_only(&self) -> bool {
        let annotations = &self.tool.raw["annotations"];
        annotations["readOnlyHint"] == true && annotations["destructiveHint"] != true
    }

    fn function(&self) -> Value {
        let mut parameters = self.tool.raw["inputSchema"].clone();
        if !parameters.is_object() {
            parameters = json!({ "type": "object", "properties": {} });
        }
        json!({
            "type": "function",
            "function": { "name": self.name, "description": self.tool.description, "parameters": parameters },
        })
    }
}

/// How a question ended.
enum Outcome {
    Answer(String),
    /// The model asked for tools `--max-steps` times without answering.
    StepLimit,
}

struct Agent {
    servers: Vec<Server>,
    tools: Vec<OfferedTool>,
    llm: llm::Llm,
    messages: Vec<Value>,
    system: Option<String>,
    max_steps: usize,
    yes: bool,
    verbose: bool,
    printer: Printer,
}

/// Runs `rampart chat`: one question (`--once`) or a conversation.
///
/// # Errors
/// Configuration (no model), connection and model API errors (exit status 2).
pub(crate) async fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let settings = client::llm_settings()?;
    let model = args
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .or(settings.model)
        .context("say which model to use: --model NAME, RAMPART_LLM_MODEL, or [llm] model in the client file")?;
    let base_url = args
        .base_url
        .clone()
        .filter(|u| !u.is_empty())
        .or(settings.base_url)
        .unwrap_or_else(|| "https://api.openai.com/v1".into());
    let key_variable = args
        .api_key_env
        .clone()
        .filter(|v| !v.is_empty())
        .or(settings.api_key_env)
        .unwrap_or_else(|| "OPENAI_API_KEY".into());
    let llm = llm::Llm::new(&base_url, &model, &key_variable);
    let printer = Printer::new(args.json);
    let servers = connect_all(&args).await?;
    let tools = offer(&servers, args.read_only);
    let mut agent = Agent {
        servers,
        tools,
        llm,
        messages: Vec::new(),
        system: args.system.clone(),
        max_steps: args.max_steps.max(1),
        yes: args.yes,
        verbose: args.verbose,
        printer,
    };
    agent.reset();
    let code = match &args.once {
        Some(question) => agent.once(question).await,
        None => agent.conversation().await,
    };
    for server in agent.servers {
        server.client.close().await;
    }
    code
}

/// The servers of `--url`, `--stdio` and `--server` (each repeatable); none given: the
/// one of RAMPART_URL / RAMPART_SERVER, or a local Rampart.
async fn connect_all(args: &ChatArgs) -> anyhow::Result<Vec<Server>> {
    let base = ClientArgs {
        url: None,
        server: None,
        token: args.token.clone(),
        stdio: None,
        verbose: args.verbose,
        json: args.json,
    };
    let mut targets: Vec<(Option<String>, ClientArgs)> = Vec::new();
    for url in &args.urls {
        targets.push((None, ClientArgs { url: Some(url.clone()), ..base.clone() }));
    }
    for command in &args.stdios {
        targets.push((None, ClientArgs { stdio: Some(command.clone()), ..base.clone() }));
    }
    for name in &args.servers {
        targets.push((Some(name.clone()), ClientArgs { server: Some(name.clone()), ..base.clone() }));
    }
    if targets.is_empty() {
        let url = std::env::var("RAMPART_URL").ok().filter(|u| !u.is_empty());
        let server = std::env::var("RAMPART_SERVER").ok().filter(|s| !s.is_empty());
        targets.push(match (server, url) {
            (Some(name), _) => (Some(name.clone()), ClientArgs { server: Some(name), ..base.clone() }),
            (None, url) => {
                (None, ClientArgs { url: Some(url.unwrap_or_else(|| "http://127.0.0.1:8080/mcp".into())), ..base })
            }
        });
    }
    let mut servers = Vec::new();
    for (name, target) in targets {
        let client = client::connect(&target).await?;
        let label = name.unwrap_or_else(|| {
            let info = client.server_info();
            sanitize(info["serverInfo"]["name"].as_str().or_else(|| info["name"].as_str()).unwrap_or("mcp"), 24)
        });
        let mut label = label;
        let mut n = 2;
        while servers.iter().any(|s: &Server| s.label == label) {
            label = format!("{}{n}", label.trim_end_matches(char::is_numeric));
            n += 1;
        }
        let tools = match client.list_tools().await {
            Ok(tools) => tools,
            Err(error) => {
                client.close().await;
                return Err(error.into());
            }
        };
        servers.push(Server { label, client, tools });
    }
    Ok(servers)
}

/// Letters, digits, `_` and `-` only, at most `limit` characters.
fn sanitize(name: &str, limit: usize) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(limit)
        .collect();
    if clean.is_empty() { "tool".into() } else { clean }
}

/// The function tools offered to the model: every tool of every server (only read-only
/// ones with `--read-only`), named `SERVER__TOOL` when there are several servers, in the
/// characters the API accepts (a suffix tells apart names that became equal).
fn offer(servers: &[Server], read_only: bool) -> Vec<OfferedTool> {
    let several = servers.len() > 1;
    let mut offered: Vec<OfferedTool> = Vec::new();
    for (index, server) in servers.iter().enumerate() {
        for tool in &server.tools {
            let wanted = if several { format!("{}__{}", server.label, tool.name) } else { tool.name.clone() };
            let mut name = sanitize(&wanted, NAME_LIMIT);
            let mut n = 2;
            while offered.iter().any(|o| o.name == name) {
                let suffix = format!("_{n}");
                name = format!("{}{suffix}", sanitize(&wanted, NAME_LIMIT - suffix.len()));
                n += 1;
            }
            let candidate = OfferedTool { name, server: index, tool: tool.clone() };
            if !read_only || candidate.read_only() {
                offered.push(candidate);
            }
        }
    }
    offered
}

impl Agent {
    /// Forgets the conversation (the system message stays).
    fn reset(&mut self) {
        self.messages.clear();
        if let Some(system) = &self.system {
            self.messages.push(json!({ "role": "system", "content": system }));
        }
    }

    async fn once(&mut self, question: &str) -> anyhow::Result<ExitCode> {
        match self.ask(question).await? {
            Outcome::Answer(answer) if !answer.trim().is_empty() => Ok(ExitCode::SUCCESS),
            Outcome::Answer(_) => {
                output::note("the model gave no answer");
                Ok(ExitCode::from(1))
            }
            Outcome::StepLimit => {
                output::note(&format!(
                    "no answer after {} requests to the model (--max-steps): it kept calling tools",
                    self.max_steps
                ));
                Ok(ExitCode::from(1))
            }
        }
    }

    /// A person's question, then requests to the model until it answers without tools.
    async fn ask(&mut self, question: &str) -> anyhow::Result<Outcome> {
        self.push(json!({ "role": "user", "content": question }));
        let functions: Vec<Value> = self.tools.iter().map(OfferedTool::function).collect();
        for _ in 0..self.max_steps {
            let printer = self.printer;
            let mut streamed = false;
            let mut on_text = |text: &str| {
                if !printer.json && !text.is_empty() {
                    streamed = true;
                    printer.stream(text);
                }
            };
            let turn = self.llm.complete(&self.messages, &functions, &mut on_text).await?;
            if streamed {
                self.printer.stream("\n");
            }
            let mut assistant = json!({ "role": "assistant", "content": turn.content });
            if turn.tool_calls.is_empty() {
                self.push(assistant);
                return Ok(Outcome::Answer(turn.content));
            }
            assistant["tool_calls"] = turn
                .tool_calls
                .iter()
                .map(|call| json!({ "id": call.id, "type": "function", "function": { "name": call.name, "arguments": call.arguments } }))
                .collect();
            self.push(assistant);
            for call in &turn.tool_calls {
                let (content, detail) = self.run_tool(call).await;
                let mut message = json!({ "role": "tool", "tool_call_id": call.id, "content": content });
                self.messages.push(message.clone());
                if self.printer.json {
                    message["name"] = json!(call.name);
                    message["arguments"] = serde_json::from_str(&call.arguments).unwrap_or(json!(call.arguments));
                    message["mcp"] = detail;
                    self.printer.json_line(&message);
                }
            }
        }
        Ok(Outcome::StepLimit)
    }

    /// Adds a message to the conversation (and to the `--json` transcript).
    fn push(&mut self, message: Value) {
        if self.printer.json {
            self.printer.json_line(&message);
        }
        self.messages.push(message);
    }

    /// Runs one tool call: what goes back to the model, and the MCP result (or refusal)
    /// for the transcript.
    async fn run_tool(&self, call: &llm::ToolCall) -> (String, Value) {
        let Some(offered) = self.tools.iter().find(|t| t.name == call.name) else {
            let known: Vec<&str> = self.tools.iter().map(|t| t.name.as_str()).collect();
            let text = format!("There is no tool '{}'. The tools are: {}.", call.name, known.join(", "));
            return (text, json!({ "refused": "unknown tool" }));
        };
        let arguments: Map<String, Value> = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(Value::Object(map)) => map,
            Ok(_) | Err(_) => {
                let text = format!("The arguments of {} must be one JSON object; got: {}", call.name, call.arguments);
                return (text, json!({ "refused": "arguments are not a JSON object" }));
            }
        };
        let shown = format!("{} {}", offered.name, Value::Object(arguments.clone()));
        if !self.printer.json {
            output::note(&format!("→ {shown}"));
        }
        if !offered.read_only() && !self.yes {
            match confirm(&shown, offered).await {
                Confirmation::Yes => {}
                Confirmation::No => {
                    return (
                        "The user declined to run this tool; do not call it again for this request.".into(),
                        json!({ "refused": "declined by the user" }),
                    );
                }
                Confirmation::NoTerminal => {
                    output::note(&format!(
                        "not run: {} may change things and nobody can confirm it here (no terminal); --yes allows it",
                        offered.name
                    ));
                    return (
                        "The tool was not run: it needs a person's confirmation, which is not available.".into(),
                        json!({ "refused": "no terminal to confirm" }),
                    );
                }
            }
        }
        let server = &self.servers[offered.server];
        let report = client::call_tool(
            &server.client,
            &offered.tool.name,
            arguments,
            client::Show::Structured,
            self.printer.json,
        )
        .await;
        let result = match report {
            Ok(report) => match report.data {
                output::Data::Pretty(result) => result,
                _ => json!({ "isError": true, "content": [{ "type": "text", "text": "interrupted" }] }),
            },
            Err(error) => json!({ "isError": true, "content": [{ "type": "text", "text": format!("{error:#}") }] }),
        };
        if !self.printer.json {
            if self.verbose {
                output::note(self.printer.render(&View::ToolResult(result.clone())).trim_end());
            } else {
                output::note(&format!("← {}", summary(&result)));
            }
        }
        (for_the_model(&result), result)
    }

    /// The conversation: a reedline prompt until Ctrl-D or `/exit`.
    async fn conversation(&mut self) -> anyhow::Result<ExitCode> {
        let history = history_file();
        if let Some(dir) = history.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let history = reedline::FileBackedHistory::with_file(1000, history).context("cannot open the chat history")?;
        let mut editor = reedline::Reedline::create().with_history(Box::new(history));
        let prompt = reedline::DefaultPrompt::new(
            reedline::DefaultPromptSegment::Basic("you".into()),
            reedline::DefaultPromptSegment::Empty,
        );
        output::note(&format!(
            "{} tools from {} server(s), model {}. /tools, /reset, /save FILE, /exit; Ctrl-C cancels a turn.",
            self.tools.len(),
            self.servers.len(),
            self.llm.model()
        ));
        loop {
            let line = match tokio::task::block_in_place(|| editor.read_line(&prompt)) {
                Ok(reedline::Signal::Success(line)) => line,
                Ok(reedline::Signal::CtrlC) => continue,
                Ok(_) => break,
                Err(error) => anyhow::bail!("cannot read the terminal: {error}"),
            };
            let line = line.trim();
            match line {
                "" => continue,
                "/exit" | "/quit" => break,
                "/reset" => {
                    self.reset();
                    output::note("(conversation reset)");
                    continue;
                }
                "/tools" => {
                    self.printer.print(&self.tools_report());
                    continue;
                }
                _ => {}
            }
            if let Some(file) = line.strip_prefix("/save ") {
                match self.save(file.trim()) {
                    Ok(note) => output::note(&note),
                    Err(error) => {
                        output::error(&error);
                    }
                }
                continue;
            }
            let turn = self.ask(line);
            tokio::select! {
                outcome = turn => match outcome {
                    Ok(Outcome::Answer(_)) => {}
                    Ok(Outcome::StepLimit) => output::note(&format!("(no answer after {} requests: --max-steps)", self.max_steps)),
                    Err(error) => { output::error(&error); }
                },
                _ = tokio::signal::ctrl_c() => output::note("(turn cancelled)"),
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    fn tools_report(&self) -> Report {
        let rows = self
            .tools
            .iter()
            .map(|t| {
                [
                    t.name.clone(),
                    self.servers[t.server].label.clone(),
                    if t.read_only() { "read-only".into() } else { "asks first".into() },
                    first_line(&t.tool.description),
                ]
            })
            .collect();
        let data: Vec<Value> = self.tools.iter().map(OfferedTool::function).collect();
        Report::new(json!(data), View::table(["FUNCTION", "SERVER", "RUNS", "DESCRIPTION"], rows))
    }

    /// `/save FILE`: the conversation as JSON lines, written whole.
    fn save(&self, file: &str) -> anyhow::Result<String> {
        let path = PathBuf::from(file);
        let text: String = self.messages.iter().map(|m| format!("{m}\n")).collect();
        client::write_file(&path, text.as_bytes())?;
        Ok(format!("saved {} messages to {}", self.messages.len(), path.display()))
    }
}

/// A tool result on one line (collapsed): `key=value …` of its structured content, else
/// its first line of text; `--verbose` shows it whole.
fn summary(result: &Value) -> String {
    let line = match result.get("structuredContent").and_then(Value::as_object) {
        Some(fields) => fields
            .iter()
            .map(|(key, value)| format!("{key}={}", value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
            .collect::<Vec<_>>()
            .join(" "),
        None => first_line(&for_the_model(result)),
    };
    let error = if result["isError"] == true && !line.starts_with("Error") { "error: " } else { "" };
    let mut line = format!("{error}{line}");
    if line.chars().count() > 120 {
        line = line.chars().take(119).collect::<String>() + "…";
    }
    line
}

/// What the model is told a tool returned: the structured content as JSON, else the text
/// blocks, images and audio described; an error result says so.
fn for_the_model(result: &Value) -> String {
    let mut text = String::new();
    if result["isError"] == true {
        text.push_str("Error: ");
    }
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
        text.push_str(&structured.to_string());
        return text;
    }
    let blocks: Vec<String> = result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|block| match block["type"].as_str() {
            Some("text") => block["text"].as_str().unwrap_or_default().to_owned(),
            _ => output::content_block(block).trim_end().to_owned(),
        })
        .collect();
    text.push_str(&blocks.join("\n"));
    text
}

enum Confirmation {
    Yes,
    No,
    NoTerminal,
}

/// Asks the person at the terminal whether `offered` may run (`[y/N]`, no by default).
async fn confirm(shown: &str, offered: &OfferedTool) -> Confirmation {
    if !std::io::stdin().is_terminal() {
        return Confirmation::NoTerminal;
    }
    let why = if offered.tool.raw["annotations"]["destructiveHint"] == true {
        "may destroy data"
    } else {
        "may change things"
    };
    let question = format!("run {shown}? it {why} [y/N] ");
    let answer = tokio::task::spawn_blocking(move || {
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "{question}");
        let _ = stderr.flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await;
    match answer {
        Ok(Ok(line)) if matches!(line.trim(), "y" | "Y" | "yes") => Confirmation::Yes,
        _ => Confirmation::No,
    }
}

fn history_file() -> PathBuf {
    output::xdg_dir("XDG_STATE_HOME", ".local/state", "chat-history")
}
