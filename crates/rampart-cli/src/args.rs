//! Command-line arguments (clap). Every flag of `serve` overrides the configuration key
//! named in its help.
//!
//! The doc comments here are `--help` text, printed as written: `[llm] model`, a bare
//! URL or `Bearer <token>` are meant for a terminal, and escaping them for rustdoc would
//! print the backslashes.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls, rustdoc::invalid_html_tags)]

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit status: 0 success; 1 the tool reported an error; 2 usage, configuration, connection or protocol error;
130 interrupted (Ctrl-C: the call was cancelled on the server).
Configuration precedence: flags > RAMPART_* environment (and ./.env) > rampart.toml > defaults.";

/// Rampart: a secure MCP server and gateway.
#[derive(Debug, Parser)]
// The about line holds for a program built on Rampart too (its binary's own name is
// used in the usage line).
#[command(
    name = "rampart",
    version,
    about = "Rampart: a secure MCP server and gateway, and a client, shell and agent for any MCP server.",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve MCP over streamable HTTP (default, 127.0.0.1:8080/mcp, with legacy SSE at /sse
    /// and WebSocket at /ws), stdio, or D-Bus.
    Serve(ServeArgs),
    /// Write a commented example rampart.toml.
    Init(InitArgs),
    /// Check the configuration, or reload it in a running server.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Read a password on stdin and print its argon2 hash for [auth.basic] password_hash.
    HashPassword,
    /// Manage API tokens in the local store (the server need not run).
    ///
    /// Each command calls the admin_token_* tool it names through the same pipeline as an
    /// MCP call, as the local operator ([stdio] principal and roles, transport cli): it is
    /// authorized, and recorded in the audit log (a command whose record cannot be stored
    /// shows no result, and no secret).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Read and verify the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Inspect the authorization policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Report which sandbox layers this machine enforces for the exec toolbox.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// List the tools of an MCP server (Rampart or any other).
    Tools(ClientArgs),
    /// Call a tool on an MCP server: `rampart call get_current_time timezone=Asia/Tokyo`.
    Call(CallArgs),
    /// Call a tool with flags made from its input schema:
    /// `rampart tool get-current-time --timezone Asia/Tokyo`. Alone, list the tools.
    ///
    /// Each tool of the connected server is a command: snake_case properties are
    /// kebab-case flags, types and enum values are checked before anything is sent, and
    /// `rampart tool NAME --help` shows the tool's description, its flags, their defaults
    /// and allowed values. Server options (--url, --token, --stdio, --json) go before NAME.
    Tool(ToolArgs),
    /// List the resources and resource templates of an MCP server (= `resource list`).
    Resources(ClientArgs),
    /// Resources: `rampart resource read test://static-text [--save FILE]`, `resource list`.
    Resource {
        #[command(subcommand)]
        command: ResourceCommand,
    },
    /// List the prompts of an MCP server (= `prompt list`).
    Prompts(ClientArgs),
    /// Prompts: `rampart prompt get code_review code=...`, `prompt list`.
    Prompt {
        #[command(subcommand)]
        command: PromptCommand,
    },
    /// Ask the server to complete an argument of a prompt or a resource template (MCP
    /// `completion/complete`): `rampart complete prompt code_review language py`.
    Complete(CompleteArgs),
    /// An interactive shell on one MCP server (Rampart's by default): every tool and
    /// command, with completion from the tools' schemas, history and progress.
    ///
    /// Type a tool's name and its arguments (`get_current_time timezone=Asia/Tokyo`, or
    /// its flags, or one JSON object), any command of this CLI (`tools`, `read URI`,
    /// `token list`, `audit tail`…), or `help`. Tab completes tool names, argument
    /// names and enum values; Ctrl-C cancels a running call on the server; Ctrl-D exits.
    /// History is kept per server under $XDG_STATE_HOME/rampart/history.
    Shell(ClientArgs),
    /// Ask an LLM agent (any OpenAI-compatible API) a question it answers with the tools
    /// of MCP servers: `rampart chat --once "What time is it in Tokyo?"`.
    ///
    /// The model sees every tool of the servers (named SERVER__TOOL when there are several)
    /// and calls them through this client, up to --max-steps requests per question. A tool
    /// that is not read-only runs only after you say yes (--yes allows all; --read-only
    /// offers only read-only tools). The answer is streamed on stdout, tool calls and
    /// their results are shown on stderr (--verbose in full), --json prints the transcript
    /// as JSON lines. Without --once: a conversation (/tools, /reset, /save FILE, /exit;
    /// Ctrl-C cancels a turn). Exit status with --once: 0 answered, 1 no answer (step
    /// limit), 2 configuration, connection or model API error.
    Chat(ChatArgs),
    /// Print a shell completion script: `rampart completions bash > ~/.local/share/bash-completion/completions/rampart`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Candidates for the word being completed, for the completion scripts (tool names
    /// and flags from the cached tool list of the server the words name).
    #[command(name = "__complete", hide = true)]
    DynamicComplete {
        /// The words typed before the one being completed, after `rampart`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// The MCP servers mounted behind a running Rampart ([upstreams.NAME], the gateway).
    ///
    /// list, show, approve and restart call the running server's admin_upstream_* tools
    /// (through its pipeline: an admin token is needed over HTTP); import converts a
    /// client's server list offline.
    Upstream {
        #[command(subcommand)]
        command: UpstreamCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UpstreamCommand {
    /// Each upstream's state (ready, starting, backing off since…), last error, tool
    /// count, calls, p50/p99 latency.
    List(ClientArgs),
    /// One upstream, with the diff of each pinned tool whose definition changed.
    Show {
        /// The upstream's name in [upstreams.NAME].
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Serve again a pinned tool whose definition changed, after showing its diff.
    Approve {
        /// The upstream's name in [upstreams.NAME].
        name: String,
        /// The changed tool (its upstream or served name); none: every changed tool.
        tool: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Close an upstream's sessions (its processes) and connect again.
    Restart {
        /// The upstream's name in [upstreams.NAME].
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Convert the MCP servers of claude_desktop_config.json, Cursor's or VS Code's
    /// mcp.json into [upstreams.NAME] tables for rampart.toml (printed on stdout).
    ///
    /// Literal secrets in env and headers are not printed: each becomes a ${VAR}
    /// reference, and --secrets FILE writes their values to a dotenv file (mode 0600)
    /// that the tables name as env_file.
    Import {
        /// The JSON file (an object with "mcpServers" or "servers").
        file: PathBuf,
        /// Write the secrets to this dotenv file (created with mode 0600, never
        /// overwritten).
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// Print JSON (toml, warnings, upstreams, secret names) for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the configuration and print the effective result, secrets masked.
    Check(ConfigCheckArgs),
    /// Make a running server re-read its configuration (its admin_config_reload tool; the
    /// same as sending it SIGHUP). Roles, limits and toolbox settings apply at once; an
    /// invalid configuration, or a change only a restart applies, is refused and the
    /// running one stays (exit 1).
    Reload(ClientArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TransportArg {
    /// Streamable HTTP at /mcp.
    Http,
    /// MCP on stdin/stdout.
    Stdio,
    /// MCP over D-Bus (org.rampart.Mcp1; callers mapped by [dbus.users.UID]).
    Dbus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BusArg {
    /// The user's session bus.
    Session,
    /// The system bus.
    System,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ProfileArg {
    /// The configured toolboxes only.
    Default,
    /// Adds the MCP conformance-suite fixtures (tests only).
    Conformance,
}

#[derive(Debug, Args)]
#[command(after_long_help = crate::setup::environment_help())]
pub(crate) struct ServeArgs {
    /// Configuration file [env: RAMPART_CONFIG] [default: ./rampart.toml if present].
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// Transport (server.transport) [default: http].
    #[arg(long, value_enum)]
    pub(crate) transport: Option<TransportArg>,
    /// The bus of --transport dbus (dbus.bus) [default: session].
    #[arg(long, value_enum)]
    pub(crate) bus: Option<BusArg>,
    /// HTTP listen address (server.listen) [default: 127.0.0.1:8080].
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
    /// Serve streamable HTTP without sessions, for load balancers (server.stateless).
    #[arg(long)]
    pub(crate) stateless: bool,
    /// Tool profile (server.profile) [default: default].
    #[arg(long, value_enum)]
    pub(crate) profile: Option<ProfileArg>,
    /// Static bearer key required on HTTP (auth.key). Prefer RAMPART_AUTH_KEY: flags are
    /// visible to other local users in the process list.
    #[arg(long, value_name = "KEY")]
    pub(crate) auth_key: Option<String>,
    /// Allow a non-loopback address without authentication (server.insecure_no_auth).
    #[arg(long)]
    pub(crate) insecure_no_auth: bool,
    /// Accept this Host header value too (server.allowed_hosts); repeatable.
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub(crate) allowed_hosts: Vec<String>,
    /// Accept this Origin too, e.g. https://app.example.com (server.allowed_origins);
    /// repeatable.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub(crate) allowed_origins: Vec<String>,
    /// Log filter, e.g. debug or rampart_server=debug,info (log.level).
    #[arg(long, value_name = "FILTER")]
    pub(crate) log: Option<String>,
    /// Log format (log.format) [default: text].
    #[arg(long, value_enum)]
    pub(crate) log_format: Option<LogFormatArg>,
    /// Serve /metrics on this separate address, without authentication
    /// (server.metrics_listen) [default: /metrics on the main address, authenticated].
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Where to write it.
    #[arg(long, default_value = "rampart.toml")]
    pub(crate) path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigCheckArgs {
    /// Configuration file [env: RAMPART_CONFIG] [default: ./rampart.toml if present].
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// Print JSON instead of TOML.
    #[arg(long)]
    pub(crate) json: bool,
    /// Treat warnings as errors (exit 2): e.g. a toolbox section such as [[fs.roots]]
    /// whose toolbox is not in tools.enabled, which does nothing.
    #[arg(long)]
    pub(crate) strict: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ClientArgs {
    /// Streamable HTTP endpoint of the server, e.g. http://127.0.0.1:8080/mcp.
    #[arg(long, env = "RAMPART_URL", conflicts_with = "stdio")]
    pub(crate) url: Option<String>,
    /// A server named in the client file ($XDG_CONFIG_HOME/rampart/servers.toml:
    /// [servers.NAME] with url and token_env, or stdio).
    #[arg(long, value_name = "NAME", env = "RAMPART_SERVER", conflicts_with = "stdio")]
    pub(crate) server: Option<String>,
    /// Bearer token sent as Authorization: Bearer <token>.
    #[arg(long, env = "RAMPART_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Start the server as a child speaking MCP on stdio, e.g. "rampart serve --transport stdio".
    #[arg(long, value_name = "COMMAND")]
    pub(crate) stdio: Option<String>,
    /// Show the stdio server's stderr.
    #[arg(long, short)]
    pub(crate) verbose: bool,
    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// An MCP server over streamable HTTP; repeatable [default: RAMPART_URL, else
    /// http://127.0.0.1:8080/mcp].
    #[arg(long = "url", value_name = "URL")]
    pub(crate) urls: Vec<String>,
    /// An MCP server started as a child speaking stdio; repeatable.
    #[arg(long = "stdio", value_name = "COMMAND")]
    pub(crate) stdios: Vec<String>,
    /// A server named in the client file ([servers.NAME]); repeatable.
    #[arg(long = "server", value_name = "NAME")]
    pub(crate) servers: Vec<String>,
    /// Bearer token for the --url servers.
    #[arg(long, env = "RAMPART_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// The model, e.g. gpt-4o-mini or llama3.1 [env: RAMPART_LLM_MODEL, or [llm] model].
    #[arg(long, env = "RAMPART_LLM_MODEL")]
    pub(crate) model: Option<String>,
    /// The OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1 for Ollama [default:
    /// https://api.openai.com/v1, or [llm] base_url].
    #[arg(long, env = "RAMPART_LLM_BASE_URL", value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// The environment variable holding the API key [default: OPENAI_API_KEY, or [llm]
    /// api_key_env].
    #[arg(long, env = "RAMPART_LLM_API_KEY_ENV", value_name = "VAR")]
    pub(crate) api_key_env: Option<String>,
    /// A system message opening the conversation.
    #[arg(long, value_name = "TEXT")]
    pub(crate) system: Option<String>,
    /// Requests to the model per question, at most (each may call tools).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub(crate) max_steps: usize,
    /// Ask this one question, print the answer and exit.
    #[arg(long, value_name = "QUESTION")]
    pub(crate) once: Option<String>,
    /// Run tools that may change things without asking.
    #[arg(long)]
    pub(crate) yes: bool,
    /// Offer the model only the tools annotated read-only.
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Show each tool result in full (and the stdio servers' stderr).
    #[arg(long, short)]
    pub(crate) verbose: bool,
    /// Print the transcript as JSON lines.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ResourceCommand {
    /// Read a resource: text printed, a blob described (or written with --save FILE).
    Read(ReadArgs),
    /// The resources and resource templates.
    List(ClientArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum PromptCommand {
    /// Render a prompt with key=value arguments.
    Get(PromptArgs),
    /// The prompts, with their arguments (* = required).
    List(ClientArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CompleteRef {
    /// A prompt, by name (`ref/prompt`).
    Prompt,
    /// A resource template, by URI template (`ref/resource`).
    Resource,
}

#[derive(Debug, Args)]
pub(crate) struct CompleteArgs {
    /// What the argument belongs to.
    #[arg(value_enum)]
    pub(crate) kind: CompleteRef,
    /// The prompt's name or the resource template's URI template.
    pub(crate) reference: String,
    /// The argument to complete.
    pub(crate) argument: String,
    /// What is typed so far [default: empty].
    #[arg(default_value = "")]
    pub(crate) value: String,
    /// Arguments already given (context.arguments), key=value; repeatable.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub(crate) context: Vec<String>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    /// The resource's URI.
    pub(crate) uri: String,
    /// Write the contents to this file (a blob decoded from base64) instead of printing.
    #[arg(long, value_name = "FILE")]
    pub(crate) save: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PromptArgs {
    /// The prompt's name.
    pub(crate) name: String,
    /// Arguments: key=value.
    #[arg(value_name = "KEY=VALUE")]
    pub(crate) pairs: Vec<String>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ToolArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// Write the images, audio and blobs of the result to this directory (named
    /// TOOL-N.EXT) instead of describing them.
    #[arg(long, value_name = "DIR")]
    pub(crate) save: Option<PathBuf>,
    /// The tool's name (as listed or in kebab-case, e.g. get-current-time), then its
    /// flags; `rampart tool NAME --help` lists them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "NAME [FLAGS]")]
    pub(crate) words: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// Tool name.
    pub(crate) tool: String,
    /// Arguments: key=value (a string) or key:=JSON (a number, boolean, array, object).
    #[arg(value_name = "KEY=VALUE")]
    pub(crate) pairs: Vec<String>,
    /// All arguments as one JSON object (merged under the key=value pairs).
    #[arg(long, value_name = "JSON")]
    pub(crate) args: Option<String>,
    /// Write the images, audio and blobs of the result to this directory (named
    /// TOOL-N.EXT) instead of describing them.
    #[arg(long, value_name = "DIR")]
    pub(crate) save: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// Where the configuration is (for commands that open the store).
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Configuration file [env: RAMPART_CONFIG] [default: ./rampart.toml if present].
    #[arg(long, short, global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Print JSON for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token; it is printed once, on stdout.
    Create {
        /// Unique name, e.g. ci.
        #[arg(long)]
        name: String,
        /// Role to grant; repeatable (reader, writer, admin, or a configured role).
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// Lifetime, e.g. 90m, 12h, 30d, 8w [default: never expires].
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Revoke a token by id or name; it stops working at once.
    Revoke {
        /// Token id (tok_...) or name.
        id: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Replace a token's secret; the old one stops working; the new one is printed once.
    Rotate {
        /// Token id (tok_...) or name.
        id: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// The newest records, oldest first.
    Tail {
        /// How many.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: i64,
        /// Keep printing new records as they are written (Ctrl-C to stop).
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Records matching all the given filters, in order.
    Search {
        /// Principal id, e.g. token:ci.
        #[arg(long)]
        principal: Option<String>,
        /// Tool name.
        #[arg(long)]
        tool: Option<String>,
        /// Only allowed or only denied requests.
        #[arg(long, value_parser = ["allow", "deny"])]
        decision: Option<String>,
        /// Only records with this outcome.
        #[arg(long, value_parser = ["ok", "tool_error", "denied", "refused", "rate_limited", "timed_out", "error", "cancelled", "auth_failed"])]
        outcome: Option<String>,
        /// Since a time (RFC 3339) or a duration ago (e.g. 1h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Until a time (RFC 3339) or a duration ago, inclusive.
        #[arg(long)]
        until: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Check the hash chain, every stored column, and the signed checkpoints: exit 0 when
    /// intact, 1 naming the first bad record (or checkpoint).
    ///
    /// Without --checkpoints, the configured checkpoint file ([audit] checkpoints) is used
    /// when it exists; without --public-key, the public key beside the configured signing
    /// key ([audit] signing_key).
    Verify {
        /// Signed checkpoints to check the log against (JSON lines, e.g. kept from
        /// `rampart audit checkpoint`).
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
        /// The public key (PEM) that verifies the checkpoints' signatures.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Sign the log's current head (its last record) with the configured key and print it
    /// as one checkpoint line, to keep somewhere the log's writers cannot change.
    Checkpoint {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the public key (PEM) that verifies the checkpoints, for whoever verifies the log.
    PublicKey {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Show the decision for a principal and a tool (or resource), and the grant behind it.
    Explain {
        /// The principal: an API token's name.
        #[arg(long, conflicts_with = "roles")]
        token_name: Option<String>,
        /// Or explicit roles; repeatable.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Tool name.
        #[arg(long)]
        tool: Option<String>,
        /// An MCP resource or prompt, or a scope: resource:URI, prompt:NAME, fs:read:/path,
        /// fs:write:/path, command:NAME, db:read:NAME, db:write:NAME, http:NAME, or a
        /// toolbox's own kind, scope:KIND:read:NAME / scope:KIND:write:NAME.
        #[arg(long)]
        resource: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SandboxCommand {
    /// Probe Landlock, seccomp and namespaces; exit 1 when one is missing.
    Check {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl ToolArgs {
    /// Moves a `--json` typed among the tool's flags (`rampart tool NAME … --json`) to
    /// Rampart's own flag: people put it last. (A tool argument called `json` is then set
    /// with `--json=VALUE` or in the shell as `json=VALUE`.)
    pub(crate) fn take_json(&mut self) {
        if let Some(flags) = self.words.get_mut(1..)
            && flags.iter().any(|word| word == "--json")
        {
            self.client.json = true;
            let name = self.words.remove(0);
            self.words.retain(|word| word != "--json");
            self.words.insert(0, name);
        }
    }
}

impl Command {
    /// The command's name on the command line, e.g. `serve`.
    pub(crate) fn name(&self) -> String {
        format!("{self:?}").split(['(', ' ', '{']).next().unwrap_or_default().to_lowercase()
    }

    /// The command's `--json` flag, for the commands that have one.
    pub(crate) fn json_flag(&mut self) -> Option<&mut bool> {
        match self {
            Self::Config { command: ConfigCommand::Check(args) } => Some(&mut args.json),
            Self::Config { command: ConfigCommand::Reload(args) }
            | Self::Tools(args)
            | Self::Resources(args)
            | Self::Prompts(args)
            | Self::Shell(args) => Some(&mut args.json),
            Self::Call(CallArgs { client, .. })
            | Self::Tool(ToolArgs { client, .. })
            | Self::Complete(CompleteArgs { client, .. })
            | Self::Resource {
                command: ResourceCommand::Read(ReadArgs { client, .. }) | ResourceCommand::List(client),
            }
            | Self::Prompt { command: PromptCommand::Get(PromptArgs { client, .. }) | PromptCommand::List(client) } => {
                Some(&mut client.json)
            }
            Self::Token { command } => match command {
                TokenCommand::Create { config, .. }
                | TokenCommand::List { config }
                | TokenCommand::Revoke { config, .. }
                | TokenCommand::Rotate { config, .. } => Some(&mut config.json),
            },
            Self::Audit { command } => match command {
                AuditCommand::Tail { config, .. }
                | AuditCommand::Search { config, .. }
                | AuditCommand::Verify { config, .. }
                | AuditCommand::Checkpoint { config }
                | AuditCommand::PublicKey { config } => Some(&mut config.json),
            },
            Self::Policy { command: PolicyCommand::Explain { config, .. } } => Some(&mut config.json),
            Self::Sandbox { command: SandboxCommand::Check { json } } => Some(json),
            Self::Upstream { command } => match command {
                UpstreamCommand::List(client)
                | UpstreamCommand::Show { client, .. }
                | UpstreamCommand::Approve { client, .. }
                | UpstreamCommand::Restart { client, .. } => Some(&mut client.json),
                UpstreamCommand::Import { json, .. } => Some(json),
            },
            Self::Chat(args) => Some(&mut args.json),
            Self::Serve(_)
            | Self::Init(_)
            | Self::HashPassword
            | Self::Completions { .. }
            | Self::DynamicComplete { .. } => None,
        }
    }
}
