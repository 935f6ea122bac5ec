//! `[upstreams.NAME]`: one MCP server mounted behind Rampart, as `rampart.toml` declares
//! it. The shape follows what people already have (Claude Desktop's and Cursor's
//! `mcpServers`: `command`/`args`/`env`, or `url` with `headers`), plus what a gateway
//! needs: a prefix, tool filters, start mode, session sharing and pinning.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use globset::{Glob, GlobSet, GlobSetBuilder};
use rampart_mcp::{ClientTarget, ConnectOptions};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::oauth::OAuthConfig;

/// A configuration error, naming the upstream and the field.
#[derive(Debug, thiserror::Error)]
#[error("upstreams.{upstream}: {message}")]
pub struct UpstreamConfigError {
    /// The upstream's name.
    pub upstream: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// When a stdio upstream's process (or a URL upstream's session) is started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// On its first call, when its tools are pinned (they are served from the pins
    /// until then); otherwise in the background when the server starts (it must run to
    /// say what it serves): the server serves at once and the upstream's tools join the
    /// catalog when it answers (sessions are told).
    #[default]
    Lazy,
    /// Before the server serves: start-up waits (up to 30 s) so that the first catalog
    /// has the upstream's tools. A failure is logged and retried, never fatal.
    Eager,
}

/// `[upstreams.NAME.tools]`: which of the upstream's tools are served, and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsConfig {
    /// Globs over the upstream's own tool names; when set, only matching tools are served.
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs over the upstream's own tool names never served (applied after `include`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Upstream name → name served (before the prefix), e.g. `{ read_file = "read" }`.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Upstream name → description served instead of the upstream's.
    #[serde(default)]
    pub descriptions: BTreeMap<String, String>,
}

/// One `[upstreams.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Program of a stdio upstream (found on `PATH` like a shell would), e.g. `npx`.
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables added to the child's (values may use `${VAR}` from Rampart's
    /// own environment or `env_file`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A dotenv file of secrets for `${VAR}` in `env` and `headers` (kept out of
    /// `rampart.toml`); a relative path starts in the configuration file's directory.
    pub env_file: Option<PathBuf>,
    /// Working directory of the child.
    pub cwd: Option<PathBuf>,
    /// Streamable HTTP endpoint of a URL upstream, e.g. `https://mcp.example.com/mcp`.
    pub url: Option<String>,
    /// HTTP headers sent to a URL upstream (values may use `${VAR}`). The caller's own
    /// headers, `Authorization` above all, are never forwarded.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Prepended to every tool and prompt name; default `NAME_`, `""` for none.
    pub prefix: Option<String>,
    /// When the upstream is started.
    #[serde(default)]
    pub start: Start,
    /// `true`: one upstream session shared by every caller (the upstream keeps no
    /// per-caller state). Default `false`: one upstream session per principal.
    #[serde(default)]
    pub stateless: bool,
    /// Trust on first use of tool definitions (default `true`): a pinned tool whose
    /// definition changes is hidden until `rampart upstream approve`.
    #[serde(default = "yes")]
    pub pin: bool,
    /// Tool filters, renames and description overrides.
    #[serde(default)]
    pub tools: ToolsConfig,
    /// Longest time a call may wait for the upstream, in seconds (default: the server's
    /// per-call timeout alone).
    pub timeout_secs: Option<u64>,
    /// OAuth client credentials: Rampart obtains its own access token for a URL upstream
    /// that requires one (`[upstreams.NAME.oauth]`).
    pub oauth: Option<OAuthConfig>,
}

fn yes() -> bool {
    true
}

/// Every `[upstreams.*]` table, by name.
pub type UpstreamsConfig = BTreeMap<String, UpstreamConfig>;

/// Parses the `[upstreams]` table (as JSON; `null` when absent).
///
/// # Errors
/// [`UpstreamConfigError`] for an unknown field, a bad name, or an upstream that is
/// neither a command nor a URL.
pub fn parse_upstreams(value: &Value) -> Result<UpstreamsConfig, UpstreamConfigError> {
    if value.is_null() {
        return Ok(UpstreamsConfig::new());
    }
    let Value::Object(tables) = value else {
        return Err(UpstreamConfigError { upstream: "*".into(), message: "must be a table of tables".into() });
    };
    let mut upstreams = UpstreamsConfig::new();
    for (name, table) in tables {
        let error = |message: String| UpstreamConfigError { upstream: name.clone(), message };
        let config: UpstreamConfig = serde_json::from_value(table.clone()).map_err(|e| error(e.to_string()))?;
        config.check(name).map_err(error)?;
        upstreams.insert(name.clone(), config);
    }
    Ok(upstreams)
}

/// Whether `name` can name an upstream: 1-32 of `a-z`, `0-9`, `-`, `_`, starting with a
/// letter (it becomes part of tool names and of `upstream:NAME`).
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl UpstreamConfig {
    fn check(&self, name: &str) -> Result<(), String> {
        if !valid_name(name) {
            return Err("the name must be 1-32 characters of a-z, 0-9, '-' or '_', starting with a letter".into());
        }
        match (&self.command, &self.url) {
            (Some(_), Some(_)) => return Err("set either command (stdio) or url (HTTP), not both".into()),
            (None, None) => return Err("set command = \"...\" (a stdio server) or url = \"...\" (an HTTP one)".into()),
            (Some(command), None) if command.trim().is_empty() => return Err("command is empty".into()),
            (None, Some(url)) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(format!("url '{url}' must start with http:// or https://"));
            }
            _ => {}
        }
        if self.url.is_some() && (!self.args.is_empty() || !self.env.is_empty() || self.cwd.is_some()) {
            return Err("args, env and cwd are for stdio upstreams (command = ...), not url ones".into());
        }
        if self.command.is_some() && !self.headers.is_empty() {
            return Err("headers are for url upstreams, not stdio ones (use env)".into());
        }
        if self.oauth.is_some() {
            if self.url.is_none() {
                return Err("oauth is for url upstreams".into());
            }
            if self.headers.keys().any(|name| name.eq_ignore_ascii_case("authorization")) {
                return Err("set either headers.Authorization or oauth, not both".into());
            }
        }
        self.check_serving()
    }

    /// What any mounted server's table must get right, wherever the server runs: the
    /// prefix, the renames and the filters of the names it serves.
    ///
    /// # Errors
    /// A message naming the setting.
    pub fn check_serving(&self) -> Result<(), String> {
        if let Some(prefix) = &self.prefix
            && !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!("prefix '{prefix}' may hold only letters, digits, '-', '_' and '.'"));
        }
        for (from, to) in &self.tools.rename {
            if to.is_empty() {
                return Err(format!("tools.rename.{from} is empty"));
            }
        }
        self.tools.filter().map(drop)
    }

    /// The prefix of served names: `prefix`, or `NAME_`.
    pub fn prefix_for(&self, name: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("{name}_"))
    }

    /// Where and how to connect, with `${VAR}` expanded from the environment and
    /// `env_file` (read once; relative paths from `base`, the configuration file's
    /// directory). A stdio child gets a clean environment (only `env` added).
    ///
    /// # Errors
    /// A message naming a variable that is not set or an unreadable `env_file`.
    pub fn resolve(&self, base: Option<&Path>) -> Result<Resolved, String> {
        let file_vars = self.file_vars(base)?;
        let expand_all = |map: &BTreeMap<String, String>, what: &str| -> Result<Vec<(String, String)>, String> {
            map.iter()
                .map(|(key, value)| {
                    expand(value, &file_vars)
                        .map(|value| (key.clone(), value))
                        .map_err(|e| format!("{what}.{key}: {e}"))
                })
                .collect()
        };
        let options = ConnectOptions {
            client_name: Some("rampart-gateway".into()),
            env: expand_all(&self.env, "env")?,
            headers: expand_all(&self.headers, "headers")?,
            cwd: self.cwd.as_ref().map(|cwd| match base {
                Some(base) if cwd.is_relative() => base.join(cwd),
                _ => cwd.clone(),
            }),
            clean_env: true,
            ..ConnectOptions::default()
        };
        let target = match (&self.command, &self.url) {
            (Some(command), _) => {
                let mut argv = vec![command.clone()];
                argv.extend(self.args.iter().cloned());
                ClientTarget::Stdio { command: argv, show_stderr: false }
            }
            (None, Some(url)) => ClientTarget::Http { url: url.clone(), token: None },
            (None, None) => return Err("neither command nor url".into()),
        };
        let oauth_secret = match &self.oauth {
            Some(oauth) => {
                Some(expand(&oauth.client_secret, &file_vars).map_err(|e| format!("oauth.client_secret: {e}"))?)
            }
            None => None,
        };
        Ok(Resolved { target, options, oauth_secret })
    }
}

/// An upstream's configuration with its variables expanded: what connecting needs.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The command or URL.
    pub target: ClientTarget,
    /// Headers, environment, working directory.
    pub options: ConnectOptions,
    /// `oauth.client_secret`, when `oauth` is set.
    pub oauth_secret: Option<String>,
}

impl UpstreamConfig {
    /// The variables of `env_file`, if any.
    fn file_vars(&self, base: Option<&Path>) -> Result<BTreeMap<String, String>, String> {
        let Some(path) = &self.env_file else { return Ok(BTreeMap::new()) };
        let path = match base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.clone(),
        };
        let vars = dotenvy::from_path_iter(&path).map_err(|e| format!("env_file {}: {e}", path.display()))?;
        vars.collect::<Result<BTreeMap<_, _>, _>>().map_err(|e| format!("env_file {}: {e}", path.display()))
    }
}

/// The `[upstreams]` table (as JSON) fit to print: every literal value of `env`,
/// `headers` and `oauth.client_secret` becomes `***` (a value holding a `${VAR}`
/// reference is shown: the secret lives in the variable).
pub fn mask_secrets(upstreams: &mut Value) {
    let Some(tables) = upstreams.as_object_mut() else { return };
    let mask = |value: &mut Value| {
        if value.as_str().is_some_and(|text| !text.contains("${")) {
            *value = Value::String("***".into());
        }
    };
    for table in tables.values_mut() {
        for section in ["env", "headers"] {
            if let Some(map) = table.get_mut(section).and_then(Value::as_object_mut) {
                map.values_mut().for_each(mask);
            }
        }
        if let Some(secret) = table.get_mut("oauth").and_then(|oauth| oauth.get_mut("client_secret")) {
            mask(secret);
        }
    }
}

/// `value` with each `${NAME}` replaced from `file_vars`, then the process environment.
///
/// # Errors
/// A message naming the first variable set in neither.
pub fn expand(value: &str, file_vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed '${{' in '{value}'"));
        };
        let name = &after[..end];
        let resolved = file_vars.get(name).cloned().or_else(|| std::env::var(name).ok());
        match resolved {
            Some(resolved) => out.push_str(&resolved),
            None => return Err(format!("${{{name}}} is not set (in the environment or env_file)")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The compiled `[upstreams.NAME.tools]` filter.
#[derive(Debug, Clone)]
pub(crate) struct ToolFilter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl ToolFilter {
    pub(crate) fn serves(&self, upstream_name: &str) -> bool {
        self.include.as_ref().is_none_or(|include| include.is_match(upstream_name))
            && !self.exclude.is_match(upstream_name)
    }
}

impl ToolsConfig {
    pub(crate) fn filter(&self) -> Result<ToolFilter, String> {
        let set = |globs: &[String], what: &str| -> Result<GlobSet, String> {
            let mut builder = GlobSetBuilder::new();
            for glob in globs {
                builder.add(Glob::new(glob).map_err(|e| format!("tools.{what}: '{glob}': {e}"))?);
            }
            builder.build().map_err(|e| format!("tools.{what}: {e}"))
        };
        let include = if self.include.is_empty() { None } else { Some(set(&self.include, "include")?) };
        Ok(ToolFilter { include, exclude: set(&self.exclude, "exclude")? })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn an_upstream_is_a_command_or_a_url_not_both_nor_neither() {
        let both = json!({ "x": { "command": "a", "url": "http://b" } });
        assert!(parse_upstreams(&both).unwrap_err().to_string().contains("not both"));
        let neither = json!({ "x": { "args": ["a"] } });
        assert!(parse_upstreams(&neither).unwrap_err().to_string().contains("set command"));
        let ok = json!({ "time": { "command": "uvx", "args": ["mcp-server-time"] } });
        assert_eq!(parse_upstreams(&ok).unwrap()["time"].args, ["mcp-server-time"]);
    }

    #[test]
    fn unknown_fields_and_bad_names_are_refused() {
        let typo = json!({ "x": { "comand": "a" } });
        assert!(parse_upstreams(&typo).unwrap_err().to_string().contains("unknown field `comand`"));
        let bad = json!({ "X Y": { "command": "a" } });
        assert!(parse_upstreams(&bad).unwrap_err().to_string().starts_with("upstreams.X Y: the name"));
        let glob = json!({ "x": { "command": "a", "tools": { "include": ["[a"] } } });
        assert!(parse_upstreams(&glob).unwrap_err().to_string().contains("tools.include"));
    }

    #[test]
    fn variables_expand_from_the_env_file_first_and_missing_ones_are_named() {
        let vars = BTreeMap::from([("TOKEN".to_owned(), "s3cret".to_owned())]);
        assert_eq!(expand("Bearer ${TOKEN}", &vars).unwrap(), "Bearer s3cret");
        assert_eq!(expand("plain", &vars).unwrap(), "plain");
        let missing = expand("${RAMPART_TEST_SURELY_UNSET_VAR}", &vars).unwrap_err();
        assert!(missing.contains("RAMPART_TEST_SURELY_UNSET_VAR"), "{missing}");
    }

    #[test]
    fn printing_masks_literal_secrets_and_keeps_references() {
        let mut upstreams = json!({ "gh": {
            "url": "https://x",
            "headers": { "Authorization": "Bearer ghp_literal", "X-Key": "${KEY}" },
            "oauth": { "client_secret": "literal-secret", "client_id": "id" },
        }, "t": { "command": "x", "env": { "TOKEN": "abc", "TZ": "${TZ}" } } });
        mask_secrets(&mut upstreams);
        let text = upstreams.to_string();
        for secret in ["ghp_literal", "literal-secret", "abc"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("${KEY}") && text.contains("${TZ}") && text.contains("\"client_id\":\"id\""), "{text}");
    }

    #[test]
    fn filters_include_then_exclude() {
        let tools =
            ToolsConfig { include: vec!["get_*".into()], exclude: vec!["get_secret".into()], ..Default::default() };
        let filter = tools.filter().unwrap();
        assert!(filter.serves("get_time"));
        assert!(!filter.serves("get_secret"));
        assert!(!filter.serves("set_time"));
        assert!(ToolsConfig::default().filter().unwrap().serves("anything"));
    }
}
