//! `rampart upstream import`: `mcpServers` blocks → `[upstreams.NAME]` tables.
//!
//! [`import`] reads the MCP server lists people already have and writes the `rampart.toml`
//! tables that mount the same servers behind Rampart:
//!
//! - `{"mcpServers": {NAME: ENTRY, …}}`: Claude Desktop's `claude_desktop_config.json`,
//!   Cursor's and Windsurf's `mcp.json`, Claude Code's `.mcp.json`;
//! - `{"servers": {NAME: ENTRY, …}}`: VS Code's `.vscode/mcp.json` (or `{"mcp": {"servers":
//!   …}}` in its `settings.json`); comments and trailing commas are accepted, as VS Code
//!   does;
//!
//! where ENTRY is `{"command", "args", "env", "cwd", "envFile"}` (a stdio server) or
//! `{"url" | "serverUrl", "headers"}` (an HTTP one), with an optional `"type"` (`"stdio"`,
//! `"http"`, `"streamable-http"`, `"sse"`).
//!
//! Secrets stay out of `rampart.toml`: every literal value of `env` and `headers` becomes a
//! `${VAR}` reference, and the `(VAR, value)` pairs are returned for a dotenv file (mode
//! 0600) that the tables name as `env_file`. Values that already are references are kept,
//! translated to Rampart's `${VAR}` (`${env:VAR}` → `${VAR}`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

/// What [`import`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// `rampart.toml` text: the line `# Imported by rampart upstream import from FORMAT`,
    /// then one `[upstreams.NAME]` table per imported server with only the fields it had
    /// (`command`, `args`, `cwd`, `url`, `env_file`, `env`, `headers`), e.g.
    ///
    /// ```toml
    /// [upstreams.github]
    /// command = "npx"
    /// args = ["-y", "@modelcontextprotocol/server-github"]
    /// env_file = "rampart.secrets.env"
    ///
    /// [upstreams.github.env]
    /// GITHUB_TOKEN = "${GITHUB_TOKEN}"
    /// ```
    ///
    /// It is what [`crate::config::parse_upstreams`] reads.
    pub toml: String,
    /// `(VAR, value)` for each `${VAR}` that replaced a literal `env` or `headers` value,
    /// each VAR once, in the file's order: the contents of the secrets file that `env_file`
    /// names (see [`Imported::secrets_dotenv`]). An `env` value keeps its key as VAR
    /// (`GITHUB_TOKEN`); a header gets `SERVER_HEADER` (`Authorization` of `api` →
    /// `API_AUTHORIZATION`), as does an `env` key already taken by another value.
    pub secrets: Vec<(String, String)>,
    /// What the user should know or fix, one sentence each naming the server (as written
    /// in the file): servers skipped or renamed, settings not imported, variables Rampart
    /// cannot expand. Never holds a secret value.
    pub warnings: Vec<String>,
    /// The names of the imported upstreams, in the file's order.
    pub upstreams: Vec<String>,
}

impl Imported {
    /// [`Imported::secrets`] as dotenv text: one `VAR="value"` line each, with `\`, `"`,
    /// `$` and newlines escaped so the file reads back (with `dotenvy`, as `env_file` is
    /// read) exactly as the values were. The caller writes it with mode 0600.
    pub fn secrets_dotenv(&self) -> String {
        let mut out = String::new();
        for (var, value) in &self.secrets {
            out.push_str(var);
            out.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' | '"' | '$' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\n' => out.push_str("\\n"),
                    _ => out.push(c),
                }
            }
            out.push_str("\"\n");
        }
        out
    }
}

/// Why a file cannot be imported; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not JSON (JSONC comments and trailing commas are fine).
    #[error(
        "not JSON ({0}); pass the contents of claude_desktop_config.json, a Cursor or Windsurf mcp.json, \
         a Claude Code .mcp.json or a VS Code .vscode/mcp.json"
    )]
    NotJson(#[source] serde_json::Error),
    /// Neither an `mcpServers` nor a `servers` object at the top level.
    #[error(
        "no \"mcpServers\" object (Claude Desktop, Cursor, Claude Code) nor \"servers\" object (VS Code) \
         at the top level; pass the file that lists the MCP servers"
    )]
    NoServers,
    /// A server entry with neither `command` nor `url` (nor `serverUrl`).
    #[error(
        "server \"{server}\" has neither \"command\" (a stdio server) nor \"url\" (an HTTP one); \
         add one, or remove the entry"
    )]
    Neither {
        /// The server's name in the file.
        server: String,
    },
    /// Two server names that normalise to the same upstream name.
    #[error("servers \"{first}\" and \"{second}\" would both be imported as upstreams.{name}; rename one of them")]
    Collision {
        /// The first server's name in the file.
        first: String,
        /// The second one's.
        second: String,
        /// The upstream name both become.
        name: String,
    },
    /// A server entry Rampart cannot mount as written: not an object, a value of the wrong
    /// type, both `command` and `url`, an empty `command`, a `url` that is not http(s).
    #[error("server \"{server}\": {message}")]
    Invalid {
        /// The server's name in the file.
        server: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The TOML could not be written (not expected: every value is a string).
    #[error("cannot write the TOML: {0}")]
    Toml(#[from] toml::ser::Error),
}

/// Converts an MCP client's server list into `[upstreams.NAME]` tables.
///
/// `json` is the file's text: `{"mcpServers": {…}}` or `{"servers": {…}}` (see the module
/// documentation). Server names become upstream names Rampart accepts (lowercase, other
/// characters `-`, `mcp-` before a leading non-letter, at most 32 characters; a rename is
/// a warning). Servers with `"disabled": true` are skipped, unknown keys (`autoApprove`,
/// `timeout`, …) are left out, `"type": "sse"` is imported as a streamable HTTP url: each
/// with a warning. Literal `env` and `headers` values become `${VAR}` references returned
/// in [`Imported::secrets`]; `env_file`, when given, is written as `env_file = "…"` in each
/// table that uses one of them or a VS Code `${input:…}` (which becomes a variable the user
/// is told to set there). When `None`, the references are still made and the caller decides
/// where the secrets go.
///
/// # Errors
/// [`ImportError`]: not JSON, no `mcpServers`/`servers` object, a server with neither
/// `command` nor `url`, two names that normalise alike, or an entry that cannot be mounted.
pub fn import(json: &str, env_file: Option<&str>) -> Result<Imported, ImportError> {
    let root: Value = serde_json::from_str(&strip_jsonc(json)).map_err(ImportError::NotJson)?;
    let mut warnings = Vec::new();
    let (format, entries) = find_servers(&root, &mut warnings)?;

    // Pass 1: read every entry, translating `${…}` references and noting the variables
    // they name, so that no secret is given a name the environment is expected to supply.
    let mut referenced = BTreeSet::new();
    let mut servers: Vec<Server> = Vec::new();
    let mut originals: BTreeMap<String, String> = BTreeMap::new();
    for (original, entry) in entries {
        let mut reader =
            Reader { original, format, inputs: false, referenced: &mut referenced, warnings: &mut warnings };
        let Some(server) = reader.read(entry)? else { continue };
        if let Some(first) = originals.insert(server.name.clone(), original.clone()) {
            return Err(ImportError::Collision { first, second: original.clone(), name: server.name });
        }
        servers.push(server);
    }
    if servers.is_empty() {
        warnings.push(format!("no server to import in \"{}\"", format.key()));
    }

    // Pass 2: literal values → secrets, and the tables.
    let mut vault = Vault { secrets: Vec::new(), reserved: &referenced };
    let mut tables = BTreeMap::new();
    let mut upstreams = Vec::new();
    for server in servers {
        let prefix = upper_var(&server.name);
        let mut uses_secrets = false;
        let mut env = BTreeMap::new();
        for (key, value) in server.env {
            let value = match value {
                Val::Kept(value) => value,
                Val::Secret(value) => {
                    uses_secrets = true;
                    let mut candidates = Vec::new();
                    if is_var_name(&key) {
                        candidates.push(key.clone());
                    }
                    candidates.push(format!("{prefix}_{}", upper_var(&key)));
                    format!("${{{}}}", vault.put(&candidates, value))
                }
            };
            env.insert(key, value);
        }
        let mut headers = BTreeMap::new();
        for (key, value) in server.headers {
            let value = match value {
                Val::Kept(value) => value,
                Val::Secret(value) => {
                    uses_secrets = true;
                    format!("${{{}}}", vault.put(&[format!("{prefix}_{}", upper_var(&key))], value))
                }
            };
            headers.insert(key, value);
        }
        // A VS Code input becomes a variable the user is told to put in the secrets file.
        let table_env_file = match (uses_secrets || server.inputs, env_file) {
            (true, Some(path)) => {
                if let Some(own) = &server.env_file
                    && own != path
                {
                    warnings.push(format!(
                        "server \"{}\": its envFile is replaced by the secrets file {path} (a table has one \
                         env_file); copy the variables it needs from {own} into {path}",
                        server.original
                    ));
                }
                Some(path.to_owned())
            }
            _ => server.env_file,
        };
        upstreams.push(server.name.clone());
        tables.insert(
            server.name,
            Table {
                command: server.command,
                args: server.args,
                cwd: server.cwd,
                url: server.url,
                env_file: table_env_file,
                env,
                headers,
            },
        );
    }

    let body = toml::to_string(&Document { upstreams: &tables })?;
    let toml = format!("# Imported by rampart upstream import from {}\n\n{body}", format.describe());
    Ok(Imported { toml, secrets: vault.secrets, warnings, upstreams })
}

/// Which list the file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `mcpServers`: Claude Desktop, Cursor, Windsurf, Claude Code.
    McpServers,
    /// `servers`: VS Code.
    VsCode,
}

impl Format {
    fn key(self) -> &'static str {
        match self {
            Format::McpServers => "mcpServers",
            Format::VsCode => "servers",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Format::McpServers => "mcpServers (Claude Desktop, Cursor, Claude Code)",
            Format::VsCode => "servers (VS Code)",
        }
    }
}

/// The server list: `mcpServers`, else `servers` (or VS Code settings' `mcp.servers`).
fn find_servers<'a>(
    root: &'a Value,
    warnings: &mut Vec<String>,
) -> Result<(Format, &'a Map<String, Value>), ImportError> {
    let vscode = root.get("servers").or_else(|| root.get("mcp").and_then(|mcp| mcp.get("servers")));
    match (root.get("mcpServers"), vscode) {
        (Some(Value::Object(servers)), other) => {
            if other.is_some_and(Value::is_object) {
                warnings.push(
                    "the file has both \"mcpServers\" and \"servers\": only \"mcpServers\" is imported \
                     (import the other list separately)"
                        .into(),
                );
            }
            Ok((Format::McpServers, servers))
        }
        (_, Some(Value::Object(servers))) => Ok((Format::VsCode, servers)),
        _ => Err(ImportError::NoServers),
    }
}

/// An `env` or `headers` value.
enum Val {
    /// Written as is: empty, or holding `${…}` references (translated).
    Kept(String),
    /// A literal: moved to the secrets, replaced by a reference.
    Secret(String),
}

/// One server, read.
struct Server {
    original: String,
    name: String,
    command: Option<String>,
    args: Vec<String>,
    cwd: Option<String>,
    url: Option<String>,
    env_file: Option<String>,
    /// Whether `env` or `headers` use a `${input:…}` (now a variable for the secrets file).
    inputs: bool,
    env: BTreeMap<String, Val>,
    headers: BTreeMap<String, Val>,
}

/// The keys of an entry that are imported (or, for `type` and `disabled`, understood).
const KNOWN_KEYS: &[&str] =
    &["type", "command", "args", "env", "envFile", "cwd", "url", "serverUrl", "headers", "disabled"];

/// Variables the editors (VS Code, Cursor) expand themselves.
const EDITOR_VARIABLES: &[&str] = &[
    "userHome",
    "workspaceFolder",
    "workspaceFolderBasename",
    "workspaceRoot",
    "pathSeparator",
    "/",
    "cwd",
    "execPath",
    "file",
    "fileBasename",
    "fileDirname",
    "relativeFile",
];

/// Reads one entry, pushing warnings.
struct Reader<'a> {
    original: &'a String,
    format: Format,
    /// Whether a `${input:…}` was met.
    inputs: bool,
    referenced: &'a mut BTreeSet<String>,
    warnings: &'a mut Vec<String>,
}

impl Reader<'_> {
    fn invalid(&self, message: impl Into<String>) -> ImportError {
        ImportError::Invalid { server: self.original.clone(), message: message.into() }
    }

    fn warn(&mut self, message: impl std::fmt::Display) {
        self.warnings.push(format!("server \"{}\": {message}", self.original));
    }

    /// The server, `None` when it is disabled.
    fn read(&mut self, entry: &Value) -> Result<Option<Server>, ImportError> {
        let Value::Object(entry) = entry else {
            return Err(self.invalid("must be an object with \"command\" (a stdio server) or \"url\" (an HTTP one)"));
        };
        if entry.get("disabled").is_some_and(|disabled| disabled == &Value::Bool(true)) {
            self.warn("skipped: it is disabled (\"disabled\": true)");
            return Ok(None);
        }
        for key in entry.keys().filter(|key| !KNOWN_KEYS.contains(&key.as_str())) {
            let hint = match key.as_str() {
                "autoApprove" | "alwaysAllow" => "Rampart's roles and policy decide who may call which tool",
                "timeout" => "set timeout_secs in the table for a per-call limit",
                "disabledTools" => "list those tools under tools.exclude in the table",
                _ => "Rampart has no such setting",
            };
            let message = format!("\"{key}\" is not imported ({hint})");
            self.warn(message);
        }

        let kind = match entry.get("type") {
            None => None,
            Some(Value::String(kind)) => Some(kind.as_str()),
            Some(_) => return Err(self.invalid("\"type\" must be a string such as \"stdio\" or \"http\"")),
        };
        let command = self.string(entry, "command")?;
        let url = match (self.string(entry, "url")?, self.string(entry, "serverUrl")?) {
            (Some(url), Some(server_url)) if url != server_url => {
                return Err(self.invalid("\"url\" and \"serverUrl\" differ; keep one"));
            }
            (url, server_url) => url.or(server_url),
        };
        match (&command, &url) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "has both \"command\" and \"url\"; keep the one to connect with (a stdio command or an HTTP URL)",
                ));
            }
            (None, None) => return Err(ImportError::Neither { server: self.original.clone() }),
            (Some(command), None) if command.trim().is_empty() => {
                return Err(self.invalid("\"command\" is empty; set the program to run"));
            }
            (None, Some(url)) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(self.invalid(
                    "the url must start with http:// or https:// (Rampart reaches URL upstreams over streamable \
                     HTTP, and does not expand ${...} in url); write the server's address",
                ));
            }
            _ => {}
        }

        let name = normalise(self.original);
        if name != *self.original {
            let message = format!(
                "imported as upstreams.{name} (an upstream name is 1-32 of a-z, 0-9, '-' and '_', \
                 starting with a letter)"
            );
            self.warn(message);
        }
        let stdio = command.is_some();
        match (kind, stdio) {
            (None, _) | (Some("stdio"), true) | (Some("http" | "streamable-http" | "streamableHttp"), false) => {}
            (Some("sse"), false) => self.warn(
                "\"type\": \"sse\": Rampart speaks streamable HTTP to upstreams (the legacy SSE fallback is not \
                 implemented yet), so this url may not answer; use the server's streamable HTTP endpoint (often \
                 /mcp rather than /sse) if it has one",
            ),
            (Some(kind), _) => {
                let known = ["stdio", "http", "streamable-http", "streamableHttp", "sse"].contains(&kind);
                let message = format!(
                    "\"type\": \"{kind}\" {}; imported as {} from its {}",
                    if known { "does not match the entry" } else { "is not one Rampart knows" },
                    if stdio { "a stdio upstream" } else { "a URL upstream" },
                    if stdio { "command" } else { "url" },
                );
                self.warn(message);
            }
        }

        let mut args = self.strings(entry, "args")?;
        let mut cwd = self.string(entry, "cwd")?;
        let env_file = self.string(entry, "envFile")?;
        let env = self.values(entry, "env")?;
        let headers = self.values(entry, "headers")?;
        let (env, headers) = if stdio {
            if !headers.is_empty() {
                self.warn("\"headers\" are for HTTP servers; not imported for a stdio one");
            }
            (env, Vec::new())
        } else {
            for (key, present) in [("args", !args.is_empty()), ("env", !env.is_empty()), ("cwd", cwd.is_some())] {
                if present {
                    self.warn(format!("\"{key}\" is for stdio servers; not imported for a URL one"));
                }
            }
            args.clear();
            cwd = None;
            (Vec::new(), headers)
        };

        // Only `env` and `headers` are expanded by Rampart.
        let mut unexpanded: Vec<String> = Vec::new();
        if command.as_deref().is_some_and(|command| command.contains("${")) {
            unexpanded.push("\"command\"".into());
        }
        for (i, arg) in args.iter().enumerate() {
            if arg.contains("${") {
                unexpanded.push(format!("args[{i}]"));
            }
        }
        for (what, value) in [("\"url\"", &url), ("\"cwd\"", &cwd), ("\"envFile\"", &env_file)] {
            if value.as_deref().is_some_and(|value| value.contains("${")) {
                unexpanded.push(what.into());
            }
        }
        if !unexpanded.is_empty() {
            let message = format!(
                "{} {} ${{...}}, which Rampart expands only in env and headers; replace it with the value",
                unexpanded.join(", "),
                if unexpanded.len() == 1 { "holds" } else { "hold" }
            );
            self.warn(message);
        }
        let secret_args: Vec<String> = args
            .iter()
            .enumerate()
            .filter(|(_, arg)| looks_secret(arg) && arg.starts_with('-'))
            .map(|(i, _)| format!("args[{i}]"))
            .collect();
        if !secret_args.is_empty() {
            let message = format!(
                "{} {} like a secret passed on the command line, which is written into rampart.toml as is; \
                 pass it through env if the server can read it from there",
                secret_args.join(", "),
                if secret_args.len() == 1 { "looks" } else { "look" }
            );
            self.warn(message);
        }
        if url.as_deref().and_then(|url| url.split_once('?')).is_some_and(|(_, query)| looks_secret(query)) {
            self.warn("the url's query looks like it holds a secret, which is written into rampart.toml as is");
        }
        if let Some(path) = &env_file {
            let message = format!(
                "envFile {path} becomes env_file, which Rampart reads only for ${{VAR}} in env and headers: its \
                 variables are not passed to the server by themselves; add KEY = \"${{KEY}}\" under env for each \
                 one it needs"
            );
            self.warn(message);
        }

        let env = env.into_iter().map(|(key, value)| (key.clone(), self.val(&format!("env.{key}"), value))).collect();
        let headers =
            headers.into_iter().map(|(key, value)| (key.clone(), self.val(&format!("headers.{key}"), value))).collect();
        Ok(Some(Server {
            original: self.original.clone(),
            name,
            command,
            args,
            cwd,
            url,
            env_file,
            inputs: self.inputs,
            env,
            headers,
        }))
    }

    /// `entry[key]` as a string (numbers and booleans too), `None` when absent or null.
    fn string(&self, entry: &Map<String, Value>, key: &str) -> Result<Option<String>, ImportError> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => scalar(value).map(Some).ok_or_else(|| self.invalid(format!("\"{key}\" must be a string"))),
        }
    }

    /// `entry[key]` as an array of strings (empty when absent or null).
    fn strings(&self, entry: &Map<String, Value>, key: &str) -> Result<Vec<String>, ImportError> {
        let error = || self.invalid(format!("\"{key}\" must be an array of strings"));
        match entry.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|item| scalar(item).ok_or_else(error)).collect(),
            Some(_) => Err(error()),
        }
    }

    /// `entry[key]` as an object of strings (empty when absent or null), in the file's order.
    fn values(&self, entry: &Map<String, Value>, key: &str) -> Result<Vec<(String, String)>, ImportError> {
        let error = || self.invalid(format!("\"{key}\" must be an object of strings, e.g. {{\"NAME\": \"value\"}}"));
        match entry.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(items)) => items
                .iter()
                .map(|(name, item)| scalar(item).map(|item| (name.clone(), item)).ok_or_else(error))
                .collect(),
            Some(_) => Err(error()),
        }
    }

    /// An `env` or `headers` value: kept when empty or holding references, else a secret.
    fn val(&mut self, at: &str, value: String) -> Val {
        if value.is_empty() {
            return Val::Kept(value);
        }
        match self.translate(at, &value) {
            Some(translated) => Val::Kept(translated),
            None => Val::Secret(value),
        }
    }

    /// `value` with each `${…}` translated to Rampart's `${VAR}`; `None` when it holds no
    /// complete reference (a literal, even with an unclosed `${`).
    fn translate(&mut self, at: &str, value: &str) -> Option<String> {
        let mut pieces: Vec<(&str, &str)> = Vec::new(); // (text before, reference)
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let end = after.find('}')?;
            pieces.push((&rest[..start], &after[..end]));
            rest = &after[end + 1..];
        }
        if pieces.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(value.len());
        for (before, reference) in pieces {
            out.push_str(before);
            let var = self.reference(at, reference);
            out.push_str("${");
            out.push_str(&var);
            out.push('}');
        }
        out.push_str(rest);
        Some(out)
    }

    /// The Rampart variable for the reference `${inner}` found at `at`.
    fn reference(&mut self, at: &str, inner: &str) -> String {
        let var = if let Some(var) = inner.strip_prefix("env:") {
            var.to_owned()
        } else if let Some(id) = inner.strip_prefix("input:") {
            let var = upper_var(id);
            self.inputs = true;
            let message = format!(
                "{at} uses ${{input:{id}}}, which VS Code prompts for; Rampart reads ${{{var}}} instead: set {var} in \
                 the env_file or in Rampart's environment"
            );
            self.warn(message);
            var
        } else if let Some((var, _default)) = inner.split_once(":-")
            && self.format == Format::McpServers
            && is_var_name(var)
        {
            let message = format!(
                "{at}: the default of ${{{var}:-...}} is dropped (Rampart's ${{VAR}} has none); set {var} in the \
                 env_file or in Rampart's environment"
            );
            self.warn(message);
            var.to_owned()
        } else if self.format == Format::McpServers && is_var_name(inner) && !EDITOR_VARIABLES.contains(&inner) {
            inner.to_owned()
        } else {
            let message = format!(
                "{at}: ${{{inner}}} is an editor variable Rampart does not expand (it would read an environment \
                 variable of that name); replace it with its value"
            );
            self.warn(message);
            inner.to_owned()
        };
        if is_var_name(&var) {
            self.referenced.insert(var.clone());
        }
        var
    }
}

/// A JSON string, number or boolean as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Whether an argument or query string names a credential (`--api-key`, `token=`, …).
fn looks_secret(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["token", "secret", "password", "apikey", "api-key", "api_key", "access-key", "access_key"]
        .iter()
        .any(|word| text.contains(word))
}

/// The secrets, and the variable names they may not take.
struct Vault<'a> {
    secrets: Vec<(String, String)>,
    /// Variables referenced as `${VAR}` by the imported servers: left to the environment.
    reserved: &'a BTreeSet<String>,
}

impl Vault<'_> {
    /// The variable holding `value`: the first of `candidates` (then the last one with
    /// `_2`, `_3`, …) that is free or already holds this value.
    fn put(&mut self, candidates: &[String], value: String) -> String {
        let last = candidates.last().cloned().unwrap_or_else(|| "SECRET".to_owned());
        let mut n = 0;
        loop {
            let var = match candidates.get(n) {
                Some(candidate) => candidate.clone(),
                None => format!("{last}_{}", n + 2 - candidates.len()),
            };
            n += 1;
            if self.reserved.contains(&var) {
                continue;
            }
            match self.secrets.iter().find(|(taken, _)| *taken == var) {
                Some((_, held)) if *held == value => return var,
                Some(_) => continue,
                None => {
                    self.secrets.push((var.clone(), value));
                    return var;
                }
            }
        }
    }
}

/// A name `valid_name` accepts: ASCII lowercase, every other character `-` (runs of them
/// once, none at the ends), `mcp-` before a leading non-letter, at most 32 characters.
fn normalise(original: &str) -> String {
    let mut name = String::with_capacity(original.len());
    for c in original.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let trimmed = name.trim_matches('-');
    let mut name = if trimmed.starts_with(|c: char| c.is_ascii_lowercase()) {
        trimmed.to_owned()
    } else {
        format!("mcp-{trimmed}")
    };
    name.truncate(32);
    while name.ends_with('-') {
        name.pop();
    }
    name
}

/// Whether `name` is an environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_var_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` as an upper-case variable name: `my-api` → `MY_API`, `X-Api-Key` → `X_API_KEY`.
fn upper_var(text: &str) -> String {
    let var: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') { var } else { format!("_{var}") }
}

/// `text` with `//` and `/* */` comments and trailing commas blanked out (JSONC, as VS
/// Code writes it), keeping lines and columns for error messages.
fn strip_jsonc(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut in_string = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        if in_string {
            out.push(c);
            if c == '\\' {
                out.extend(next);
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
        } else if c == '/' && next == Some('/') {
            while let Some(&c) = chars.get(i).filter(|&&c| c != '\n') {
                out.push(blank(c));
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            out.extend([' ', ' ']);
            i += 2;
            while let Some(&c) = chars.get(i) {
                if c == '*' && chars.get(i + 1) == Some(&'/') {
                    out.extend([' ', ' ']);
                    i += 2;
                    break;
                }
                out.push(blank(c));
                i += 1;
            }
        } else {
            in_string = c == '"';
            out.push(c);
            i += 1;
        }
    }
    let mut in_string = false;
    let mut escaped = false;
    for i in 0..out.len() {
        let c = out[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ',' && out[i + 1..].iter().find(|c| !c.is_whitespace()).is_some_and(|c| *c == '}' || *c == ']') {
            out[i] = ' ';
        }
    }
    out.into_iter().collect()
}

/// `[upstreams.NAME]` with only the fields the server had.
#[derive(Serialize)]
struct Table {
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env_file: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Document<'a> {
    upstreams: &'a BTreeMap<String, Table>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::{UpstreamsConfig, parse_upstreams, valid_name};

    fn read_back(toml: &str) -> UpstreamsConfig {
        let value: toml::Value = toml::from_str(toml).unwrap();
        let json = serde_json::to_value(value).unwrap();
        parse_upstreams(&json["upstreams"]).unwrap()
    }

    const CLAUDE_DESKTOP: &str = r#"{
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "github": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "env": { "GITHUB_TOKEN": "ghp_s3cret" }
            },
            "api": {
                "type": "http",
                "url": "https://api.example.com/mcp",
                "headers": { "Authorization": "Bearer abc123" }
            }
        }
    }"#;

    #[test]
    fn claude_desktop_secrets_become_references_in_an_env_file() {
        let imported = import(CLAUDE_DESKTOP, Some("rampart.secrets.env")).unwrap();
        assert!(
            imported.toml.starts_with("# Imported by rampart upstream import from mcpServers"),
            "{}",
            imported.toml
        );
        assert_eq!(imported.upstreams, ["github", "api"]);
        assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
        assert_eq!(
            imported.secrets,
            [
                ("GITHUB_TOKEN".to_owned(), "ghp_s3cret".to_owned()),
                ("API_AUTHORIZATION".to_owned(), "Bearer abc123".to_owned())
            ]
        );
        for secret in ["ghp_s3cret", "abc123"] {
            assert!(!imported.toml.contains(secret), "{}", imported.toml);
        }
        // Minimal: none of the defaults.
        for field in ["start", "stateless", "pin", "tools", "prefix", "timeout_secs"] {
            assert!(!imported.toml.contains(&format!("{field} =")), "{}", imported.toml);
        }

        let upstreams = read_back(&imported.toml);
        let github = &upstreams["github"];
        assert_eq!(github.command.as_deref(), Some("npx"));
        assert_eq!(github.args, ["-y", "@modelcontextprotocol/server-github"]);
        assert_eq!(github.env["GITHUB_TOKEN"], "${GITHUB_TOKEN}");
        assert_eq!(github.env_file.as_deref(), Some(std::path::Path::new("rampart.secrets.env")));
        assert!(github.pin, "defaults come back");
        let api = &upstreams["api"];
        assert_eq!(api.url.as_deref(), Some("https://api.example.com/mcp"));
        assert_eq!(api.headers["Authorization"], "${API_AUTHORIZATION}");
        assert_eq!(api.command, None);
    }

    #[test]
    fn the_secrets_file_reads_back_as_the_values() {
        let mut imported = import(CLAUDE_DESKTOP, None).unwrap();
        assert!(!imported.toml.contains("env_file"), "no path, no env_file: {}", imported.toml);
        let tricky = "a \"b\" $c ${D} 'e' \\f #g\nh\ti\r\nj\\";
        imported.secrets.push(("TRICKY".into(), tricky.into()));
        let text = imported.secrets_dotenv();
        let read: Vec<(String, String)> = dotenvy::from_read_iter(text.as_bytes()).collect::<Result<_, _>>().unwrap();
        assert_eq!(read, imported.secrets, "{text}");
    }

    const VSCODE: &str = r#"// .vscode/mcp.json
    {
        "inputs": [{ "type": "promptString", "id": "api-key", "password": true }],
        "servers": {
            "My Server": {
                "type": "stdio",
                "command": "uvx",
                "args": ["mcp-x", "--root", "${workspaceFolder}"],
                "env": {
                    "TOKEN": "${env:GH_TOKEN}",
                    "KEY": "${input:api-key}",
                    "AUTH": "Bearer ${env:GH_TOKEN}", /* a template */
                    "LEVEL": "debug",
                },
            },
            "remote.api": {
                "type": "sse",
                "url": "https://example.com/sse",
                "headers": { "X-Key": "${input:api-key}" },
            },
        },
    }"#;

    #[test]
    fn vscode_references_are_translated_and_inputs_warned() {
        let imported = import(VSCODE, Some(".env.rampart")).unwrap();
        assert!(imported.toml.starts_with("# Imported by rampart upstream import from servers (VS Code)\n"));
        assert_eq!(imported.upstreams, ["my-server", "remote-api"]);
        assert_eq!(imported.secrets, [("LEVEL".to_owned(), "debug".to_owned())]);
        let upstreams = read_back(&imported.toml);
        let server = &upstreams["my-server"];
        assert_eq!(server.env["TOKEN"], "${GH_TOKEN}");
        assert_eq!(server.env["KEY"], "${API_KEY}");
        assert_eq!(server.env["AUTH"], "Bearer ${GH_TOKEN}");
        assert_eq!(server.env["LEVEL"], "${LEVEL}");
        assert_eq!(server.args, ["mcp-x", "--root", "${workspaceFolder}"]);
        assert!(server.env_file.is_some());
        let remote = &upstreams["remote-api"];
        assert_eq!(remote.url.as_deref(), Some("https://example.com/sse"));
        assert_eq!(remote.headers["X-Key"], "${API_KEY}");
        assert!(remote.env_file.is_some(), "for API_KEY, the input");

        let warned = |needle: &str| imported.warnings.iter().any(|warning| warning.contains(needle));
        assert!(warned("server \"My Server\": imported as upstreams.my-server"), "{:#?}", imported.warnings);
        assert!(warned("server \"remote.api\": imported as upstreams.remote-api"), "{:#?}", imported.warnings);
        assert!(warned("env.KEY uses ${input:api-key}, which VS Code prompts for; Rampart reads ${API_KEY}"));
        assert!(warned("headers.X-Key uses ${input:api-key}"));
        assert!(warned("server \"remote.api\": \"type\": \"sse\": Rampart speaks streamable HTTP"));
        assert!(warned("args[2] holds ${...}"), "{:#?}", imported.warnings);
        assert!(!warned("GH_TOKEN}"), "env references are not worth a warning: {:#?}", imported.warnings);
    }

    #[test]
    fn names_that_normalise_alike_collide() {
        let json = r#"{"mcpServers": {"My Server": {"command": "a"}, "my.server": {"command": "b"}}}"#;
        let error = import(json, None).unwrap_err();
        assert!(matches!(&error, ImportError::Collision { name, .. } if name == "my-server"), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("\"My Server\"") && message.contains("\"my.server\""), "{message}");
        assert!(message.contains("rename one"), "{message}");
    }

    #[test]
    fn a_server_needs_a_command_or_a_url() {
        let error = import(r#"{"mcpServers": {"x": {"args": ["a"]}}}"#, None).unwrap_err();
        assert!(matches!(&error, ImportError::Neither { server } if server == "x"), "{error:?}");
        assert!(error.to_string().contains("neither \"command\""), "{error}");
        let both = import(r#"{"mcpServers": {"x": {"command": "a", "url": "https://b"}}}"#, None).unwrap_err();
        assert!(both.to_string().contains("both \"command\" and \"url\""), "{both}");
        let ws = import(r#"{"mcpServers": {"x": {"url": "ws://b"}}}"#, None).unwrap_err();
        assert!(ws.to_string().contains("must start with http:// or https://"), "{ws}");
        let args = import(r#"{"mcpServers": {"x": {"command": "a", "args": "b c"}}}"#, None).unwrap_err();
        assert!(args.to_string().contains("\"args\" must be an array of strings"), "{args}");
    }

    #[test]
    fn not_json_and_no_server_list_are_errors() {
        assert!(matches!(import("{ nope", None), Err(ImportError::NotJson(_))));
        let error = import(r#"{"servers_": {}}"#, None).unwrap_err();
        assert!(matches!(error, ImportError::NoServers));
        assert!(error.to_string().contains("\"mcpServers\""));
        assert!(matches!(import(r#"{"mcpServers": []}"#, None), Err(ImportError::NoServers)));
    }

    #[test]
    fn disabled_servers_and_unknown_keys_are_warnings() {
        let json = r#"{"mcpServers": {
            "off": {"command": "a", "disabled": true},
            "on": {"command": "b", "disabled": false, "autoApprove": ["x"], "timeout": 60},
            "web": {"url": "https://w/mcp", "serverUrl": "https://w/mcp", "env": {"A": "b"}, "transportType": "x"},
            "odd": {"type": "ws", "url": "https://o/mcp"},
            "mixed": {"type": "http", "command": "m"}
        }}"#;
        let imported = import(json, None).unwrap();
        assert_eq!(imported.upstreams, ["on", "web", "odd", "mixed"]);
        let warnings = imported.warnings.join("\n");
        assert!(warnings.contains("server \"off\": skipped: it is disabled"), "{warnings}");
        assert!(warnings.contains("server \"on\": \"autoApprove\" is not imported"), "{warnings}");
        assert!(warnings.contains("server \"on\": \"timeout\" is not imported (set timeout_secs"), "{warnings}");
        assert!(warnings.contains("server \"web\": \"transportType\" is not imported"), "{warnings}");
        assert!(warnings.contains("server \"web\": \"env\" is for stdio servers"), "{warnings}");
        assert!(!warnings.contains("disabled\" is not imported"), "{warnings}");
        assert!(warnings.contains("server \"odd\": \"type\": \"ws\" is not one Rampart knows; imported as a URL"));
        assert!(
            warnings.contains("server \"mixed\": \"type\": \"http\" does not match the entry; imported as a stdio")
        );
        assert!(imported.secrets.is_empty(), "dropped env is not a secret");
        let upstreams = read_back(&imported.toml);
        assert!(upstreams["web"].env.is_empty());
        assert!(!upstreams.contains_key("off"));
    }

    #[test]
    fn secret_names_never_clash() {
        let json = r#"{"mcpServers": {
            "a": {"command": "a", "env": {"API_KEY": "one", "HOME_DIR": "${HOME}", "x-y": "z"}},
            "b": {"command": "b", "env": {"API_KEY": "two"}},
            "c": {"command": "c", "env": {"API_KEY": "one", "HOME": "/home/me"}},
            "d": {"command": "d", "env": {"EMPTY": ""}}
        }}"#;
        let imported = import(json, Some("s.env")).unwrap();
        let secrets: BTreeMap<_, _> = imported.secrets.iter().cloned().collect();
        assert_eq!(secrets["API_KEY"], "one");
        assert_eq!(secrets["B_API_KEY"], "two", "a different value gets the server's prefix");
        assert_eq!(secrets["C_HOME"], "/home/me", "HOME is referenced as the environment's");
        assert_eq!(secrets["A_X_Y"], "z");
        assert_eq!(secrets.len(), 4, "{secrets:?}");
        let upstreams = read_back(&imported.toml);
        assert_eq!(upstreams["c"].env["API_KEY"], "${API_KEY}", "the same value is shared");
        assert_eq!(upstreams["a"].env["HOME_DIR"], "${HOME}");
        assert_eq!(upstreams["d"].env["EMPTY"], "");
        assert_eq!(upstreams["d"].env_file, None);
    }

    #[test]
    fn claude_code_defaults_are_dropped_with_a_warning() {
        let json = r#"{"mcpServers": {"x": {"type": "streamable-http", "url": "https://x/mcp",
            "headers": {"Authorization": "Bearer ${TOKEN:-dev-secret}"}}}}"#;
        let imported = import(json, None).unwrap();
        assert_eq!(read_back(&imported.toml)["x"].headers["Authorization"], "Bearer ${TOKEN}");
        let warnings = imported.warnings.join("\n");
        assert!(warnings.contains("the default of ${TOKEN:-...} is dropped"), "{warnings}");
        assert!(!warnings.contains("dev-secret"), "warnings hold no secret: {warnings}");
    }

    #[test]
    fn env_file_of_the_entry_is_kept_or_replaced() {
        let json = r#"{"servers": {"x": {"command": "a", "envFile": ".env.x", "env": {"K": "v"}}}}"#;
        let kept = import(json, None).unwrap();
        assert_eq!(read_back(&kept.toml)["x"].env_file.as_deref(), Some(std::path::Path::new(".env.x")));
        assert!(kept.warnings.iter().any(|w| w.contains("envFile .env.x becomes env_file")), "{:?}", kept.warnings);
        let replaced = import(json, Some("secrets.env")).unwrap();
        assert_eq!(read_back(&replaced.toml)["x"].env_file.as_deref(), Some(std::path::Path::new("secrets.env")));
        assert!(replaced.warnings.iter().any(|w| w.contains("its envFile is replaced by the secrets file")));
    }

    #[test]
    fn secrets_in_args_are_pointed_out() {
        let json = r#"{"mcpServers": {"x": {"command": "a", "args": ["--api-key", "sk-1"]}}}"#;
        let imported = import(json, None).unwrap();
        assert!(imported.warnings.iter().any(|w| w.contains("args[0] looks like a secret")), "{:?}", imported.warnings);
        assert!(imported.warnings.iter().all(|w| !w.contains("sk-1")));
    }

    #[test]
    fn names_are_normalised_to_valid_ones() {
        for (original, expected) in [
            ("github", "github"),
            ("GitHub", "github"),
            ("My Server (beta)", "my-server-beta"),
            ("@scope/server.name", "scope-server-name"),
            ("123", "mcp-123"),
            ("_x", "mcp-_x"),
            ("", "mcp"),
            ("éé", "mcp"),
            ("a-very-long-server-name-that-goes-on-and-on", "a-very-long-server-name-that-goe"),
            ("abcdefghijklmnopqrstuvwxyz12345. x", "abcdefghijklmnopqrstuvwxyz12345"),
        ] {
            let name = normalise(original);
            assert_eq!(name, expected, "{original}");
            assert!(valid_name(&name), "{name}");
        }
    }

    #[test]
    fn jsonc_comments_and_trailing_commas_are_blanked_outside_strings() {
        let text = "{\"a\": \"// not /* a comment */,}\", // c\n \"b\": [1, 2,], /* x\n y */}";
        let value: Value = serde_json::from_str(&strip_jsonc(text)).unwrap();
        assert_eq!(value, serde_json::json!({"a": "// not /* a comment */,}", "b": [1, 2]}));
        assert_eq!(strip_jsonc(r#"{"a\"//": 1}"#), r#"{"a\"//": 1}"#);
    }
}
